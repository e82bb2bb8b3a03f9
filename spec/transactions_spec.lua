-- docs/reference.md "Transactions and raw SQL"
local helper = require("spec.helper")
local quay = helper.quay

describe("Transactions and raw SQL", function()
  local db, T
  before_each(function()
    db = helper.open()
    T = db:model("T", { n = quay.integer() })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("commits and returns fn's results", function()
    local a, b = db:transaction(function(d)
      assert.equal(db, d)
      T:create { n = 1 }
      return "x", 2
    end)
    assert.equal("x", a)
    assert.equal(2, b)
    assert.equal(1, T:count())
  end)

  it("rolls back on error and raises it again", function()
    local ok, err = pcall(db.transaction, db, function()
      T:create { n = 1 }
      error({ mine = true })
    end)
    assert.is_false(ok)
    assert.is_true(err.mine)
    assert.equal(0, T:count())
  end)

  it("nests with savepoints", function()
    db:transaction(function()
      T:create { n = 1 }
      pcall(db.transaction, db, function()
        T:create { n = 2 }
        error("inner")
      end)
      db:transaction(function() T:create { n = 3 } end)
    end)
    assert.same({ 1, 3 }, { table.unpack(T:order_by("n"):pluck("n")) })
  end)

  it("executes raw SQL with ? placeholders on every backend", function()
    assert.equal(1, db:execute("INSERT INTO ts (n) VALUES (?)", { 10 }))
    db:execute("INSERT INTO ts (n) VALUES (?), (?)", { 20, 30 })
    assert.equal(2, db:execute("UPDATE ts SET n = n + 1 WHERE n > ?", { 15 }))
    local rows = db:rows("SELECT n FROM ts WHERE n > ? ORDER BY n", { 5 })
    assert.same({ { n = 10 }, { n = 21 }, { n = 31 } }, rows)
    assert.same({}, db:rows("SELECT n FROM ts WHERE n < ?", { 0 }))
    helper.raises("sql", db.rows, db, "SELECT nope FROM ts")
    local rows2 = db:rows("SELECT ? AS s", { "it's" })
    assert.equal("it's", rows2[1].s)
  end)

  -- Issue 21: a statement error is `sql` (not a lost connection), and no
  -- error leaves a transaction open behind it.
  describe("after an error", function()
    local U
    before_each(function()
      U = db:model("U", { email = quay.string { unique = true } })
      db:create_tables()
      U:create { email = "a@x" }
    end)

    -- Non-nil when the session is inside a transaction (an open one, or
    -- on PostgreSQL an aborted one, where every statement fails).
    local function in_txn()
      if helper.is_pg then
        -- SAVEPOINT fails outside a transaction block with 25P01
        local ok, e = pcall(db.execute, db, "SAVEPOINT probe")
        if ok then db:execute("RELEASE SAVEPOINT probe") end
        return ok or e.sqlstate ~= "25P01"
      end
      local ok = pcall(db.execute, db, "BEGIN")
      if not ok then return true end
      db:execute("ROLLBACK")
      return false
    end

    it("raises sql for too few or too many parameters, and the session goes on", function()
      local e = helper.raises("sql", db.rows, db, "SELECT ? AS a, ? AS b", { 1 })
      helper.mentions(e, "2", "1")
      helper.raises("sql", db.rows, db, "SELECT ? AS a", { 1, 2 })
      helper.raises("sql", db.execute, db, "UPDATE ts SET n = ? WHERE n = ?", { 1 })
      assert.is_false(in_txn())
      assert.equal(1, U:count())
    end)

    local failures = {
      { "a Lua error", nil, function() error("mine") end },
      { "an integrity error", "integrity", function() U:create { email = "a@x" } end },
      { "an sql error", "sql", function() db:rows("SELECT nope FROM ts") end },
      { "too few parameters", "sql", function() db:rows("SELECT ? AS a, ? AS b", { 1 }) end },
      { "a validation error", "validation", function() U:create { email = {} } end },
      { "an on_query error", nil, function()
          db:on_query(function() error("hook") end)
          local ok, e = pcall(U.count, U)
          db:on_query(nil)
          error(e, 0)
        end },
      { "an error caught inside fn", "any", function()
          pcall(U.create, U, { email = "a@x" })
        end },
      { "an error in a nested transaction", "integrity", function()
          db:transaction(function() U:create { email = "a@x" } end)
        end },
      { "an error in a failed bulk_create", "integrity", function()
          U:bulk_create { { email = "n1@x" }, { email = "n1@x" } }
        end },
    }
    for _, f in ipairs(failures) do
      it(("rolls the transaction back on %s and keeps the session usable"):format(f[1]), function()
        local ok, err = pcall(db.transaction, db, function()
          U:create { email = "in-txn@x" }
          T:create { n = 1 }
          f[3]()
        end)
        db:on_query(nil)
        if f[2] == "any" then
          -- SQLite goes on after a failed statement; PostgreSQL refuses to
          -- commit the transaction it aborted
          assert.equal(helper.is_pg, not ok)
        else
          assert.is_false(ok)
          if f[2] then assert.equal(f[2], err.code, tostring(err.message)) end
        end
        if ok then
          assert.equal(2, U:count())
          return
        end
        assert.is_false(in_txn())
        assert.equal(1, U:count())
        assert.equal(0, T:count())
        -- the session works, in and out of a transaction
        db:transaction(function() U:create { email = "b@x" } end)
        U:create { email = "c@x" }
        assert.equal(3, U:count())
      end)
    end

    -- Issue 23: an open iter() holds a read snapshot on SQLite; once
    -- another connection has committed, that snapshot cannot become a
    -- write transaction, and waiting (busy_timeout) cannot help.
    it("says what holds the old snapshot when a write follows an open iter()", function()
      local path, a, b
      if helper.is_pg then
        a, b = db, quay.open(helper.url)
      else
        path = os.tmpname()
        os.remove(path)
        a = quay.open("sqlite:" .. path)
        b = quay.open("sqlite:" .. path, { busy_timeout = 2000 })
      end
      local TA = a:model("S", { n = quay.integer() })
      local TB = b:model("S", { n = quay.integer() })
      a:create_tables()
      local rows = {}
      for i = 1, 600 do rows[i] = { n = i } end     -- more than one chunk
      TA:bulk_create(rows)
      local seen, err = 0, nil
      local t0 = os.time()
      for _ in TA:order_by("n"):iter() do
        seen = seen + 1
        if seen == 1 then
          TB:create { n = 10 }                       -- the other one commits
          local ok, e = pcall(a.transaction, a, function() TA:create { n = 20 } end)
          if not ok then err = e end
          if not helper.is_pg then
            -- a write outside a transaction meets the same snapshot
            local e2 = helper.raises("busy", TA.create, TA, { n = 21 })
            helper.mentions(e2, "iter()")
          end
        end
      end
      assert.equal(600, seen)
      if helper.is_pg then
        -- server-side cursors take no lock: the write simply works
        assert.is_nil(err)
        assert.equal(602, TA:count())
      else
        assert.truthy(err, "the write after another connection's commit succeeded")
        assert.equal("busy", err.code)
        helper.mentions(err, "iter()", "snapshot", "db:transaction")
        assert.is_nil(err.message:find("busy_timeout", 1, true))
        assert.is_true(os.time() - t0 < 2)           -- no point waiting
        -- once the loop is over, the same write works
        a:transaction(function() TA:create { n = 20 } end)
        assert.equal(602, TA:count())
      end
      if not helper.is_pg then
        a:close()
        b:close()
        os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
      else
        b:close()
        a:execute("DROP TABLE ss")
      end
    end)

    -- PostgreSQL runs a statement's second execution as Parse + Describe +
    -- Execute in one pipeline, and sibling prefetches as one batch: an
    -- error in either leaves the session usable too.
    it("keeps the session usable when a repeated statement fails at any execution", function()
      for round = 1, 3 do
        for i = 1, 4 do
          local ok, e = pcall(db.rows, db, "SELECT 10 / ? AS q", { i == round and 0 or 2 })
          if i == round and helper.is_pg then
            assert.is_false(ok)
            assert.equal("sql", e.code)
          elseif not helper.is_pg then
            assert.is_true(ok)                          -- SQLite: NULL
          else
            assert.equal(5, e[1].q)
          end
        end
        local ok = pcall(db.transaction, db, function()
          U:create { email = "r" .. round .. "@x" }
          for i = 1, 4 do
            db:rows("SELECT 10 / ? AS q2", { i == round and 0 or 2 })
          end
          U:create { email = "a@x" }                    -- fails on SQLite too
        end)
        assert.is_false(ok)
        assert.is_false(in_txn())
        assert.equal(1, U:count())
      end
    end)

    it("keeps the session usable when a batch of sibling prefetches fails", function()
      local B = helper.blog(db)
      local u = B.User:create { name = "a", email = "a@x" }
      B.Profile:create { user = u }
      B.Post:create { title = "t", author = u }
      db:execute("DROP TABLE profiles")
      for _ = 1, 3 do
        local e = helper.raises("sql", db.transaction, db, function()
          B.Post:create { title = "x", author = u }
          return B.User:prefetch_related("posts", "profile"):all()
        end)
        helper.mentions(e, "Profile", "db:create_tables()")
        assert.is_false(in_txn())
        assert.equal(1, B.Post:count())
      end
    end)

    it("rolls back a transaction the engine opened, whatever failed", function()
      helper.raises("integrity", U.bulk_create, U, { { email = "n@x" }, { email = "a@x" } })
      assert.is_false(in_txn())
      assert.equal(1, U:count())
      helper.raises("integrity", U.bulk_create, U, { { email = "n@x" }, { email = "n@x" } })
      assert.is_false(in_txn())
      U:create { email = "n@x" }
      assert.equal(2, U:count())
    end)
  end)
end)
