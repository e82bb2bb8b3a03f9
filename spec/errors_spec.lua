-- docs/reference.md "Errors"
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

  -- Issue 25: constraint failures name model and field on both backends
  -- (SQLite names table.column, PostgreSQL the constraint), missing tables
  -- point at the fix, and long messages are shortened between words.
  describe("messages", function()
    local U, P, Tag
    before_each(function()
      U = db:model("Account", {
        login = quay.string { unique = true, column = "mail" },
        nick = quay.string { null = true },
      })
      P = db:model("Entry", {
        title = quay.string(),
        slug = quay.string(),
        kind = quay.string(),
        owner = quay.belongs_to("Account", { on_delete = quay.NO_ACTION, related_name = "entries" }),
        labels = quay.many_to_many("Tag", { related_name = "entries" }),
        unique_together = { { "slug", "kind" } },
      })
      Tag = M.Tag
      db:create_tables()
    end)

    it("name Model.field for a unique violation", function()
      local a = U:create { login = "a@x" }
      local e = helper.raises("integrity", U.create, U, { login = "a@x" })
      helper.mentions(e, "Account.login", "unique")
      P:create { title = "t", slug = "s", kind = "k", owner = a }
      e = helper.raises("integrity", P.create, P, { title = "u", slug = "s", kind = "k", owner = a })
      helper.mentions(e, "Entry (slug, kind)", "unique together")
      local r = U:create { login = "b@x" }
      r.login = "a@x"
      e = helper.raises("integrity", r.save, r)
      helper.mentions(e, "Account.login")
    end)

    it("name Model.field for a NOT NULL violation", function()
      local a = U:create { login = "a@x" }
      local e = helper.raises("integrity", db.execute, db,
        "INSERT INTO entrys (title, slug, kind, owner_id) VALUES (NULL, 'x', 'y', ?)", { a.id })
      helper.mentions(e, "Entry.title", "NULL")
    end)

    it("name Model.relation for a foreign key violation, both ways", function()
      local a = U:create { login = "a@x" }
      local e = helper.raises("integrity", P.create, P,
        { title = "t", slug = "s", kind = "k", owner_id = a.id + 100 })
      helper.mentions(e, "Entry.owner", "does not exist")
      local p = P:create { title = "t", slug = "s", kind = "k", owner = a }
      e = helper.raises("integrity", a.delete, a)       -- NO_ACTION: the database refuses
      helper.mentions(e, "Account", "still referenced", "Entry.owner")
      local t = Tag:create { name = "t" }
      p.labels:add(t)
      e = helper.raises("integrity", db.execute, db,
        "INSERT INTO entrys_tags (entry_id, tag_id) VALUES (?, ?)", { p.id, t.id + 100 })
      helper.mentions(e, "Entry.labels")
      e = helper.raises("integrity", db.execute, db,
        "INSERT INTO entrys_tags (entry_id, tag_id) VALUES (?, ?)", { p.id, t.id })
      helper.mentions(e, "Entry.labels")
    end)

    it("point a missing table at db:create_tables() and db:migrate()", function()
      local e = helper.raises("sql", db.rows, db, "SELECT * FROM nowhere")
      helper.mentions(e, "nowhere", "db:create_tables()", "db:migrate()")
      db:execute("DROP TABLE entrys_tags")
      db:execute("DROP TABLE entrys")
      e = helper.raises("sql", P.count, P)
      helper.mentions(e, "Entry", "db:create_tables()", "db:migrate()")
      local a = U:create { login = "a@x" }
      e = helper.raises("sql", function() return a.entries:count() end)
      helper.mentions(e, "Entry", "db:create_tables()")
      db:create_tables()
      assert.equal(0, P:count())
    end)

    it("shorten a long message between words, ending with ...", function()
      local words = string.rep("word ", 200)
      local e
      if helper.is_pg then
        e = helper.raises("sql", db.rows, db, "SELECT ?::int AS n", { words })
      else
        e = helper.raises("sql", db.rows, db, 'SELECT * FROM "' .. words .. '"')
      end
      assert.truthy(e.message:find("...", 1, true), e.message)
      -- every "word" is whole: no "wo..." / "wor..."
      assert.is_nil(e.message:find("[^ ]word[^ ]"), e.message)
      assert.is_nil(e.message:find(" w?o?r?%.%.%."), e.message)
      assert.is_true(#e.message < 512)
    end)

    it("name the first failure whole when a PostgreSQL transaction was aborted", function()
      U:create { login = "a@x" }
      local ok, e = pcall(db.transaction, db, function()
        pcall(U.create, U, { login = "a@x" })
        return U:count()               -- PostgreSQL refuses: the txn is aborted
      end)
      if helper.is_pg then
        assert.is_false(ok)
        assert.equal("sql", e.code)
        helper.mentions(e, "accounts_mail_key")   -- whole, not cut mid-name
      else
        assert.is_true(ok)
        assert.equal(1, e)
      end
      assert.equal(1, U:count())
    end)
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
