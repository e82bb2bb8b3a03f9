-- docs/reference.md "Transactions and raw SQL"; include/quay.h
-- "Transactions" (issue 17): a transaction Quay did not open.  A host
-- that shares its sqlite3 handle opens one with its own BEGIN; here, on
-- both backends, raw SQL does (db:execute "BEGIN"), which Quay sees the
-- same way.  Quay's levels nest inside it as savepoints, so its COMMIT or
-- ROLLBACK decides; ending it while a db:transaction is open is misuse.
local helper = require("spec.helper")
local quay = helper.quay

describe("Transactions Quay did not open", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    db:create_tables()
  end)
  after_each(function()
    pcall(db.execute, db, "ROLLBACK")
    db:close()
  end)

  -- Writes through every path that opens a level of Quay's own.
  local function work()
    local u = M.User:create { name = "u", email = "u@x" }
    M.Post:bulk_create { { title = "a", author = u }, { title = "b", author = u } }
    db:transaction(function() M.Post:create { title = "c", author = u } end)
    assert.is_false(pcall(db.transaction, db, function()
      M.Post:create { title = "gone", author = u }
      error("undo")
    end))
    local v = M.User:create { name = "v", email = "v@x" }
    M.Post:create { title = "d", author = v }
    assert.equal(1, v:delete().Post)              -- a cascade: its own level
    return u
  end

  it("nests Quay's levels inside it: ROLLBACK undoes them", function()
    db:execute("BEGIN")
    work()
    assert.equal(1, M.User:count())
    assert.equal(3, M.Post:count())
    db:execute("ROLLBACK")
    assert.equal(0, M.User:count())
    assert.equal(0, M.Post:count())
  end)

  it("nests Quay's levels inside it: COMMIT keeps them", function()
    db:execute("BEGIN")
    work()
    db:execute("COMMIT")
    assert.equal(1, M.User:count())
    assert.equal("a b c", table.concat(M.Post:order_by("title"):pluck("title"), " "))
  end)

  it("creates tables inside it, undone by its ROLLBACK", function()
    local Extra = db:model("Extra", { n = quay.integer() })
    db:execute("BEGIN")
    db:create_tables()
    Extra:create { n = 1 }
    assert.equal(1, Extra:count())
    db:execute("ROLLBACK")
    local err = helper.raises("sql", Extra.count, Extra)
    helper.mentions(err, "Extra")
  end)

  it("refuses transaction options there (a savepoint cannot take them)", function()
    db:execute("BEGIN")
    local err = helper.raises("misuse", db.transaction, db, function() end,
                              { readonly = true })
    helper.mentions(err, "did not open")
    db:execute("ROLLBACK")
  end)

  it("raises misuse when its transaction is ended inside db:transaction", function()
    local err = helper.raises("misuse", db.transaction, db, function()
      M.User:create { name = "u", email = "u@x" }
      db:execute("COMMIT")                 -- ends Quay's transaction
      M.User:create { name = "w", email = "w@x" }
    end)
    helper.mentions(err, "ended outside Quay", "COMMIT")
    -- What the COMMIT and the statements after it wrote stays: exactly
    -- what db:transaction could not undo, and why it raised.
    assert.equal(2, M.User:count())
    -- The db goes on: the next transaction is an ordinary one.
    db:transaction(function() M.User:create { name = "x", email = "x@x" } end)
    assert.equal(3, M.User:count())
  end)

  it("raises misuse, naming fn's error, when it cannot roll back", function()
    local err = helper.raises("misuse", db.transaction, db, function()
      M.User:create { name = "u", email = "u@x" }
      db:execute("ROLLBACK")
      M.User:create { name = "w", email = "w@x" }
      error("boom")
    end)
    helper.mentions(err, "ended outside Quay", "boom")
    assert.equal(1, M.User:count())        -- w: written in autocommit
  end)

  it("raises misuse when its savepoint is gone inside a raw BEGIN", function()
    db:execute("BEGIN")
    local err = helper.raises("misuse", db.transaction, db, function()
      M.User:create { name = "u", email = "u@x" }
      db:execute("ROLLBACK")
      db:execute("BEGIN")
    end)
    helper.mentions(err, "ended outside Quay")
    db:execute("ROLLBACK")
    assert.equal(0, M.User:count())
  end)
end)
