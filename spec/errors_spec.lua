-- API.md "Errors"
local helper = require("spec.helper")
local quay = helper.quay

describe("Errors", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
  end)
  after_each(function() db:close() end)

  it("are tables with code, message and __tostring", function()
    local ok, err = pcall(function() return M.User:filter { nope = 1 } end)
    assert.is_false(ok)
    assert.equal("unknown_field", err.code)
    assert.is_string(err.message)
    assert.equal(err.message, tostring(err))
    helper.mentions(err, "User", "nope")
  end)

  it("cover every contract code", function()
    helper.raises("declaration", db.model, db, "X", { a = "b" })
    helper.raises("unknown_field", function() M.User:filter { x = 1 } end)
    helper.raises("unknown_relation", function() M.User:prefetch_related("x") end)
    helper.raises("bad_lookup", function() M.User:filter { name__x = 1 } end)
    helper.raises("validation", M.User.create, M.User, { name = {}, email = "e" })
    helper.raises("not_found", M.User.get, M.User, { name = "none" })
    M.User:create { name = "a", email = "a@x" }
    M.User:create { name = "a", email = "b@x" }
    helper.raises("multiple", M.User.get, M.User, { name = "a" })
    helper.raises("integrity", M.User.create, M.User, { name = "c", email = "a@x" })
    helper.raises("connection", quay.open, "nowhere://x")
    helper.raises("sql", db.execute, db, "THIS IS NOT SQL")
    local P = db:model("Guard", { u = quay.belongs_to("User", { on_delete = quay.PROTECT }) })
    local R = db:model("Keep", { u = quay.belongs_to("User", { on_delete = quay.RESTRICT }) })
    db:create_tables()
    local u = M.User:first()
    P:create { u = u }
    local e = helper.raises("protected", u.delete, u)
    helper.mentions(e, "User", "Guard")
    P:query():delete()
    R:create { u = u }
    e = helper.raises("restricted", u.delete, u)
    helper.mentions(e, "Keep")
  end)

  -- Issue 20: SQLite connections run with double-quoted strings off, so
  -- a misspelled "identifier" is an error, never the string 'identifier'.
  it("treats a double-quoted name as an identifier, never a string", function()
    M.User:create { name = "a", email = "a@x" }
    local err = helper.raises("sql", db.rows, db, 'SELECT "no_such_column" FROM users')
    helper.mentions(err, "no_such_column")
    helper.raises("sql", db.execute, db, 'CREATE INDEX ix_typo ON users ("editor_id")')
    helper.raises("sql", db.rows, db, 'SELECT id FROM users WHERE name = "a"')
    assert.equal(1, #db:rows("SELECT id FROM users WHERE name = 'a'"))
  end)
end)
