-- Schema evolution (reference.md "Schema evolution"): db:inspect(),
-- db:schema_diff(), db:migrate { allow_drop, dry_run }, renamed_from, the
-- guards, one transaction per migration, the fixpoint, and
-- db:create_tables() on a database that drifted from the models.
-- Each test plays two versions of an application against one database:
-- the first makes the tables (declared models or raw SQL), the second
-- opens it again with new models.
local helper = require("spec.helper")
local quay = helper.quay
local test = require("quay.core")._test

-- A database two handles can open: a file on SQLite, the emptied public
-- schema on PostgreSQL.
local files = {}
local function fresh_url()
  if helper.is_pg then
    helper.open():close()
    return helper.url
  end
  local path = os.tmpname()
  os.remove(path)
  files[#files + 1] = path
  return "sqlite:" .. path
end

local function cleanup()
  for _, p in ipairs(files) do
    os.remove(p); os.remove(p .. "-wal"); os.remove(p .. "-shm")
  end
  files = {}
end

-- The live schema and every row, as one string (names ignored for
-- indexes: they are compared by columns).
local function snapshot(db)
  local parts = {}
  local live = db:inspect()
  for _, t in ipairs(live.tables) do
    local cols = {}
    for _, c in ipairs(t.columns) do
      cols[#cols + 1] = ("%s %s%s%s%s"):format(c.name, c.type:lower(),
        c.null and " null" or "", c.default and (" =" .. c.default) or "",
        c.primary_key and " pk" or "")
    end
    local idx = {}
    for _, x in ipairs(t.indexes) do
      local cs = {}
      for _, n in ipairs(x.columns) do cs[#cs + 1] = tostring(n) end
      idx[#idx + 1] = (x.unique and "u(" or "(") .. table.concat(cs, ",") .. ")"
    end
    table.sort(idx)
    local fks = {}
    for _, f in ipairs(t.foreign_keys) do
      fks[#fks + 1] = table.concat(f.columns, ",") .. ">" .. f.table
    end
    table.sort(fks)
    parts[#parts + 1] = t.name .. "[" .. table.concat(cols, "; ") .. "] "
      .. table.concat(idx, " ") .. " " .. table.concat(fks, " ")
    local cnames = {}
    for _, c in ipairs(t.columns) do cnames[#cnames + 1] = '"' .. c.name .. '"' end
    for _, r in ipairs(db:rows(('SELECT %s FROM "%s" ORDER BY 1'):format(
        table.concat(cnames, ", "), t.name))) do
      local cells = {}
      for _, c in ipairs(t.columns) do cells[#cells + 1] = tostring(r[c.name]) end
      parts[#parts + 1] = "  " .. table.concat(cells, "|")
    end
  end
  return table.concat(parts, "\n")
end

local function ops(steps)
  local t = {}
  for _, s in ipairs(steps) do t[#t + 1] = s.op end
  return table.concat(t, " ")
end

local function has_op(steps, op, column)
  for _, s in ipairs(steps) do
    if s.op == op and (column == nil or s.column == column) then return s end
  end
end

local function table_of(live, name)
  for _, t in ipairs(live.tables) do
    if t.name == name then return t end
  end
end

-- The blog of spec/helper.lua, version 1, with some rows.
local function blog_v1(url)
  local db = quay.open(url)
  local M = helper.blog(db)
  local u = M.User:create { name = "ann", email = "ann@x" }
  local tag = M.Tag:create { name = "lua" }
  for i = 1, 3 do
    local p = M.Post:create { title = "p" .. i, author = u, views = i }
    p.tags:add(tag)
    M.Comment:create { post = p, body = "c" .. i }
  end
  return db, M
end

describe("db:inspect()", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("reports tables in name order with columns, indexes, foreign keys and checks", function()
    helper.blog(db)
    db:execute([[CREATE TABLE audit (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 7,
      note VARCHAR(20), CHECK (n >= 0))]])
    local live = db:inspect()
    local names = {}
    for _, t in ipairs(live.tables) do names[#names + 1] = t.name end
    assert.same({ "audit", "comments", "posts", "posts_tags", "profiles", "tags", "users" }, names)
    local users = table_of(live, "users")
    assert.equal("id", users.columns[1].name)
    assert.is_true(users.columns[1].primary_key)
    assert.is_false(users.columns[1].null)
    local name = users.columns[2]
    assert.equal("name", name.name)
    assert.is_truthy(name.type:lower():find("varchar", 1, true) or
                     name.type:find("character varying", 1, true))
    assert.is_truthy(name.type:find("100", 1, true))
    local email_unique = false
    for _, x in ipairs(users.indexes) do
      if x.columns[1] == "email" and #x.columns == 1 and x.unique then email_unique = true end
    end
    assert.is_true(email_unique)
    local posts = table_of(live, "posts")
    assert.equal(1, #posts.foreign_keys)
    local fk = posts.foreign_keys[1]
    assert.same({ "author_id" }, fk.columns)
    assert.equal("users", fk.table)
    assert.same({ "id" }, fk.to)
    assert.equal("CASCADE", fk.on_update)
    assert.equal("NO ACTION", fk.on_delete)   -- Quay applies on_delete itself
    local views = posts.columns[3]
    assert.equal("views", views.name)
    assert.is_truthy(views.default and views.default:find("0", 1, true))
    local audit = table_of(live, "audit")
    assert.equal(1, #audit.checks)
    assert.is_truthy(audit.checks[1]:find("n", 1, true) and audit.checks[1]:find(">=", 1, true))
    assert.is_truthy(audit.columns[2].default:find("7", 1, true))
    assert.is_true(audit.columns[3].null)
    local pt = table_of(live, "posts_tags")
    assert.equal(2, #pt.foreign_keys)
    assert.equal("CASCADE", pt.foreign_keys[1].on_delete)
  end)

  it("leaves out Quay's bookkeeping and SQLite's own tables", function()
    db:execute("CREATE TABLE quay_migrations (id INTEGER PRIMARY KEY, name TEXT)")
    db:execute("CREATE TABLE kept (id INTEGER PRIMARY KEY)")
    if not helper.is_pg then
      db:execute("CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT)")
      db:execute("INSERT INTO auto DEFAULT VALUES")      -- makes sqlite_sequence
    end
    for _, t in ipairs(db:inspect().tables) do
      assert.is_nil(t.name:find("^sqlite_"))
      assert.are_not.equal("quay_migrations", t.name)
    end
    assert.is_truthy(table_of(db:inspect(), "kept"))
  end)
end)

describe("db:schema_diff() and db:migrate()", function()
  after_each(cleanup)

  it("finds nothing to do after create_tables, and after migrate (the fixpoint)", function()
    local db = helper.open()
    helper.blog(db)
    assert.same({}, db:schema_diff())
    assert.same({}, db:migrate())
    db:close()
  end)

  it("creates tables, indexes and foreign keys of an empty database", function()
    local db = helper.open()
    db:model("A", { name = quay.string { index = true } })
    db:model("B", { a = quay.belongs_to("A"), cs = quay.many_to_many("C") })
    db:model("C", { b = quay.belongs_to("B", { null = true }) })   -- a cycle
    local steps = db:schema_diff()
    assert.is_truthy(has_op(steps, "create_table"))
    assert.is_truthy(has_op(steps, "create_index"))
    for _, s in ipairs(steps) do
      assert.is_string(s.op)
      assert.is_string(s.table)
      assert.is_table(s.sql)
    end
    local done = db:migrate()
    assert.equal(#steps, #done)
    assert.same({}, db:schema_diff())
    db:close()
  end)

  it("adds, renames, alters and drops columns, keeping the data", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Note", { body = quay.text(), extra = quay.text { null = true },
                        stars = quay.integer(), title = quay.string { max = 10 } })
    db1:create_tables()
    db1:model("Note"):create { body = "kept", stars = 3, title = "t" }
    db1:close()
    local db = quay.open(url)
    local Note = db:model("Note", {
      text = quay.text { renamed_from = "body" },          -- rename
      stars = quay.number(),                                -- integer -> number: widening
      title = quay.string { max = 50 },                     -- a larger max: widening
      views = quay.integer { default = 0 },                 -- add, NOT NULL with default
      flag = quay.boolean { null = true },                  -- add, nullable
    })
    local steps = db:schema_diff()
    assert.is_truthy(has_op(steps, "rename_column", "text"))
    assert.is_truthy(has_op(steps, "add_column", "views"))
    assert.is_truthy(has_op(steps, "add_column", "flag"))
    assert.is_truthy(has_op(steps, "alter_column", "stars"))
    assert.is_truthy(has_op(steps, "alter_column", "title"))
    local drop = has_op(steps, "drop_column", "extra")
    assert.is_truthy(drop)
    assert.equal("notes", drop.table)
    assert.equal("Note", drop.model)
    -- dropping a column needs allow_drop; nothing changed
    local err = helper.raises("migration", db.migrate, db)
    helper.mentions(err, "extra", "allow_drop")
    assert.equal(#steps, #db:schema_diff())
    local done = db:migrate { allow_drop = true }
    assert.equal(#steps, #done)
    assert.same({}, db:schema_diff())
    local n = Note:first()
    assert.equal("kept", n.text)
    assert.equal(3.0, n.stars)
    assert.equal(0, n.views)
    assert.equal("t", n.title)
    db:close()
  end)

  it("renames a table with the model option renamed_from", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local A = db1:model("Article", { title = quay.string(), tags = quay.many_to_many("Tag") })
    local T = db1:model("Tag", { name = quay.string() })
    db1:create_tables()
    A:create { title = "a" }.tags:add(T:create { name = "x" })
    db1:close()
    local db = quay.open(url)
    local Post = db:model("Post", { title = quay.string(), renamed_from = "Article",
                                    tags = quay.many_to_many("Tag") })
    db:model("Tag", { name = quay.string() })
    local steps = db:schema_diff()
    assert.is_truthy(has_op(steps, "rename_table"))
    assert.is_nil(has_op(steps, "drop_table"))       -- the join table follows too
    assert.is_nil(has_op(steps, "drop_column"))
    db:migrate()
    assert.same({}, db:schema_diff())
    local p = Post:first()
    assert.equal("a", p.title)
    assert.equal("x", p.tags[1].name)
    db:close()
  end)

  it("renames a belongs_to column with renamed_from on the relation", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local U = db1:model("User", { name = quay.string() })
    local P = db1:model("Post", { author = quay.belongs_to("User") })
    db1:create_tables()
    P:create { author = U:create { name = "ann" } }
    db1:close()
    local db = quay.open(url)
    db:model("User", { name = quay.string() })
    local Post = db:model("Post", { writer = quay.belongs_to("User", { renamed_from = "author" }) })
    local steps = db:schema_diff()
    local r = has_op(steps, "rename_column", "writer_id")
    assert.is_truthy(r)
    assert.is_nil(has_op(steps, "drop_column"))
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.equal("ann", Post:first().writer.name)
    db:close()
  end)

  it("never guesses a rename: without renamed_from it is a drop and an add", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Note", { body = quay.text { null = true } })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    db:model("Note", { text = quay.text { null = true } })
    local steps = db:schema_diff()
    assert.is_truthy(has_op(steps, "drop_column", "body"))
    assert.is_truthy(has_op(steps, "add_column", "text"))
    assert.is_nil(has_op(steps, "rename_column"))
    db:close()
  end)

  it("refuses to narrow a type without allow_drop", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Item", { label = quay.string { max = 100 }, n = quay.number { null = true },
                        t = quay.text() })
    db1:create_tables()
    db1:close()
    for _, spec in ipairs {
      { label = quay.string { max = 20 } },            -- a smaller max
      { n = quay.integer { null = true } },             -- number -> integer
      { t = quay.string { max = 10 } },                 -- text -> string
      { n = quay.number() },                            -- NULL -> NOT NULL
    } do
      local db = quay.open(url)
      local full = { label = quay.string { max = 100 }, n = quay.number { null = true },
                     t = quay.text() }
      for k, v in pairs(spec) do full[k] = v end
      db:model("Item", full)
      local steps = db:schema_diff()
      assert.equal(1, #steps)
      assert.equal("alter_column", steps[1].op)
      assert.is_true(steps[1].destructive)
      local err = helper.raises("migration", db.migrate, db)
      helper.mentions(err, "allow_drop", steps[1].column)
      db:close()
    end
    local db = quay.open(url)
    db:model("Item", { label = quay.string { max = 20 }, n = quay.number { null = true },
                       t = quay.text() })
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    db:close()
  end)

  it("refuses a NOT NULL column without a default on a table with rows", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Item", { name = quay.string() })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    local Item = db:model("Item", { name = quay.string(), code = quay.string() })
    -- an empty table takes it
    db:migrate()
    assert.same({}, db:schema_diff())
    Item:create { name = "a", code = "c" }
    db:close()
    db = quay.open(url)
    db:model("Item", { name = quay.string(), code = quay.string(), size = quay.integer() })
    local err = helper.raises("migration", db.migrate, db)
    helper.mentions(err, "size", "default", "null = true")
    assert.equal(1, #db:schema_diff())
    db:close()
    db = quay.open(url)
    local It = db:model("Item", { name = quay.string(), code = quay.string(),
                                  size = quay.integer { default = 5 } })
    db:migrate()
    assert.equal(5, It:first().size)
    db:close()
  end)

  it("dry_run returns the steps and changes nothing", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("A", { x = quay.integer() })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    db:model("A", { x = quay.integer(), y = quay.text { null = true } })
    db:model("B", { z = quay.integer() })
    local before = snapshot(db)
    local steps = db:migrate { dry_run = true }
    assert.equal(#db:schema_diff(), #steps)
    assert.equal(before, snapshot(db))
    db:close()
  end)

  it("drops tables no model declares only with allow_drop", function()
    local db = helper.open()
    db:execute("CREATE TABLE legacy (id INTEGER PRIMARY KEY, x INTEGER)")
    db:model("A", { x = quay.integer() })
    local err = helper.raises("migration", db.migrate, db)
    helper.mentions(err, "legacy", "allow_drop")
    local done = db:migrate { allow_drop = true }
    assert.is_truthy(has_op(done, "drop_table"))
    assert.is_nil(table_of(db:inspect(), "legacy"))
    db:close()
  end)

  it("adds and drops indexes, unique constraints and foreign keys", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("U", { name = quay.string() })
    db1:model("P", { title = quay.string { index = true }, code = quay.string(),
                     owner = quay.belongs_to("U", { null = true }) })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    db:model("U", { name = quay.string { unique = true } })
    db:model("P", { title = quay.string(), code = quay.string { index = true },
                    owner_id = quay.integer { null = true, index = true },
                    unique_together = { { "title", "code" } } })
    local steps = db:schema_diff()
    assert.is_truthy(has_op(steps, "drop_index"))
    assert.is_truthy(has_op(steps, "create_index"))
    assert.is_truthy(has_op(steps, "drop_constraint"))                 -- the foreign key
    assert.is_truthy(has_op(steps, helper.is_pg and "add_constraint" or "create_index"))
    db:migrate()
    assert.same({}, db:schema_diff())
    db:close()
    -- and back: the foreign key comes again
    db = quay.open(url)
    db:model("U", { name = quay.string() })
    db:model("P", { title = quay.string { index = true }, code = quay.string(),
                    owner = quay.belongs_to("U", { null = true }) })
    assert.is_truthy(has_op(db:schema_diff(), "add_constraint"))
    db:migrate()
    assert.same({}, db:schema_diff())
    helper.raises("integrity", db.execute, db,
      "INSERT INTO ps (title, code, owner_id) VALUES ('t', 'c', 99)")
    db:close()
  end)

  it("leaves an index it did not make alone", function()
    local db = helper.open()
    db:model("A", { x = quay.integer(), y = quay.integer() })
    db:create_tables()
    db:execute('CREATE INDEX my_own_index ON "as" (x, y)')
    assert.same({}, db:schema_diff())
    db:close()
  end)

  it("keeps rows, references, indexes and triggers through a table rebuild", function()
    local url = fresh_url()
    local db1, M1 = blog_v1(url)
    if not helper.is_pg then
      db1:execute([[CREATE TRIGGER posts_touch AFTER UPDATE ON posts
                    BEGIN UPDATE tags SET name = name WHERE 0; END]])
    end
    db1:close()
    local db = quay.open(url)
    local M = {}
    M.User = db:model("User", { name = quay.string { max = 100 }, email = quay.string { unique = true } })
    M.Profile = db:model("Profile", {
      user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
      bio = quay.text { null = true } })
    M.Tag = db:model("Tag", { name = quay.string { unique = true } })
    M.Post = db:model("Post", {
      title = quay.text(),                               -- string -> text (SQLite: rebuild)
      views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
      rating = quay.number { default = 2.5 },            -- NOT NULL with a default
    })
    M.Comment = db:model("Comment", {
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      body = quay.text() })
    local done = db:migrate()
    if not helper.is_pg then
      local carrier = 0
      for _, s in ipairs(done) do
        if s.rebuild then assert.equal("posts", s.table) end
        if #s.sql > 0 and s.rebuild then carrier = carrier + 1 end
      end
      assert.equal(1, carrier)                         -- one rebuild for the table
      assert.same({ { integrity_check = "ok" } }, db:rows("PRAGMA integrity_check"))
      assert.same({}, db:rows("PRAGMA foreign_key_check"))
      assert.equal(1, #db:rows("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
      assert.equal(1, db:rows("PRAGMA foreign_keys")[1].foreign_keys)   -- on again
    end
    assert.same({}, db:schema_diff())
    assert.equal(3, M.Post:count())
    assert.equal(2.5, M.Post:first().rating)
    assert.equal(3, M.Comment:filter { post__title = "p2" }:count() + 2)
    assert.equal(3, #M.Tag:first().posts)
    assert.equal(3, #M.User:first().posts)
    -- the cascade planner still sees the references
    M.User:first():delete()
    assert.equal(0, M.Comment:count())
    db:close()
  end)

  -- Found by test/difftest/migrations.lua: an index keeps its name through
  -- a rename of its table or column, and a name Quay does not give is not
  -- Quay's; the models dropping the index later left it in place.
  it("makes its indexes again under new names when their table or column is renamed", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Item", { f = quay.integer { index = true }, a = quay.integer(), b = quay.integer(),
                        indexes = { { "a", "b" } } })
    db1:migrate()
    db1:close()
    local db2 = quay.open(url)
    db2:model("Thing", { renamed_from = "Item", g = quay.integer { index = true, renamed_from = "f" },
                         a = quay.integer(), b = quay.integer(), indexes = { { "a", "b" } } })
    db2:migrate()
    assert.same({}, db2:schema_diff())
    db2:close()
    local db = quay.open(url)
    db:model("Thing", { g = quay.integer(), a = quay.integer(), b = quay.integer() })
    db:migrate()
    assert.same({}, db:schema_diff())
    local things = table_of(db:inspect(), "things")
    for _, x in ipairs(things.indexes) do
      assert.is_nil(x.columns[1] == "g" or x.columns[1] == "a" or nil, "index " .. tostring(x.name) .. " left")
    end
    db:close()
  end)

  -- Found by test/difftest/migrations.lua: SQLite's rebuilt copy took its
  -- AUTOINCREMENT mark from the rows it copied, so the id of a deleted
  -- last row was handed out again.
  it("never hands out again the id of a deleted row after a table rebuild", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local A1 = db1:model("A", { x = quay.integer() })
    local B1 = db1:model("B", { x = quay.integer() })
    db1:create_tables()
    for i = 1, 3 do A1:create { x = i }; B1:create { x = i } end
    A1:get { id = 3 }:delete()                      -- the last row
    B1:query():delete()                             -- every row: nothing to copy
    db1:close()
    local db = quay.open(url)
    local A = db:model("A", { x = quay.number() })  -- integer -> number: SQLite rebuilds
    local B = db:model("B", { x = quay.number(), y = quay.text { null = true } })
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.equal(4, A:create { x = 4 }.id)
    assert.equal(4, B:create { x = 4 }.id)
    db:close()
  end)

  it("is one transaction: a step that fails leaves schema and data as they were", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local A = db1:model("A", { code = quay.string(), n = quay.integer() })
    db1:create_tables()
    A:create { code = "same", n = 1 }
    A:create { code = "same", n = 2 }
    db1:close()
    local db = quay.open(url)
    db:model("A", { code = quay.string { unique = true }, n = quay.integer(),
                    extra = quay.text { null = true } })
    db:model("B", { y = quay.integer() })
    local before = snapshot(db)
    local ok, err = pcall(db.migrate, db)
    assert.is_false(ok)
    assert.equal("integrity", err.code)                -- the duplicate codes
    assert.equal(before, snapshot(db))
    db:close()
  end)

  it("takes only the options allow_drop and dry_run", function()
    local db = helper.open()
    helper.raises("misuse", db.migrate, db, { allow_drops = true })
    helper.raises("misuse", db.migrate, db, "yes")
    helper.raises("misuse", db.migrate, db, { dry_run = 1 })
    db:close()
  end)

  it("cannot rebuild a SQLite table inside db:transaction; PostgreSQL can", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("A", { x = quay.integer() })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    db:model("A", { x = quay.number { null = true } })
    if helper.is_pg then
      db:transaction(function() db:migrate() end)
      assert.same({}, db:schema_diff())
    else
      local err = helper.raises("migration", db.transaction, db, function() db:migrate() end)
      helper.mentions(err, "db:transaction")
      assert.equal(1, #db:schema_diff())
    end
    db:close()
  end)

  it("waits for a migration of another handle and never runs a step twice", function()
    local url = fresh_url()
    local a, b = quay.open(url), quay.open(url)
    a:model("A", { x = quay.integer() })
    b:model("A", { x = quay.integer() })
    a:migrate()
    local done = b:migrate()                          -- diffed again under the lock
    assert.same({}, done)
    a:close(); b:close()
  end)

  -- A primary key change drops the key constraint on PostgreSQL, which a
  -- foreign key of a table no model declares depends on: migrate refuses
  -- before any statement, naming that table and constraint; SQLite's
  -- rebuild keeps the foreign key (its target stays unique).
  it("a primary key change referred to by a table no model declares", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local I1 = db1:model("Item", { code = quay.string { primary_key = true },
      alt = quay.string { unique = true } })
    db1:create_tables()
    I1:create { code = "a", alt = "x" }
    db1:execute([[CREATE TABLE ext (a INTEGER, b INTEGER, item_code VARCHAR(255),
      PRIMARY KEY (a, b),
      CONSTRAINT ext_item_fk FOREIGN KEY (item_code) REFERENCES items (code))]])
    db1:execute("INSERT INTO ext VALUES (1, 2, 'a')")
    db1:close()
    local db = quay.open(url)
    local I = db:model("Item", { code = quay.string { unique = true },
      alt = quay.string { primary_key = true } })
    local before = snapshot(db)
    if helper.is_pg then
      local e = helper.raises("migration", db.migrate, db, { allow_drop = true })
      helper.mentions(e, "ext", "ext_item_fk", "items", "DROP CONSTRAINT")
      e = helper.raises("migration", db.migrate, db, { allow_drop = true, dry_run = true })
      helper.mentions(e, "ext_item_fk")
      assert.equal(before, snapshot(db))
      -- the way through it names
      db:execute("ALTER TABLE ext DROP CONSTRAINT ext_item_fk")
    end
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    assert.equal("a", I:get { alt = "x" }.code)
    assert.equal(1, #db:rows("SELECT * FROM ext WHERE item_code = 'a'"))
    db:close()
  end)
end)

describe("db:create_tables() on a drifted database", function()
  after_each(cleanup)

  -- The issue's report: a new indexed column on an existing table.
  it("raises migration naming the first difference and creates nothing", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    local U1 = db1:model("User", { name = quay.string() })
    local P1 = db1:model("Post", { title = quay.string() })
    db1:create_tables()
    U1:create { name = "ann" }
    for i = 1, 3 do P1:create { title = "p" .. i } end
    db1:close()
    local db = quay.open(url)
    db:model("User", { name = quay.string() })
    local Post = db:model("Post", { title = quay.string(),
                                    editor = quay.belongs_to("User", { null = true }) })
    db:model("Draft", { body = quay.text() })          -- a new table: not made either
    local before = snapshot(db)
    local err = helper.raises("migration", db.create_tables, db)
    helper.mentions(err, "editor_id", "db:migrate()")
    assert.equal(before, snapshot(db))
    assert.is_nil(table_of(db:inspect(), "drafts"))
    db:migrate()
    assert.equal(3, Post:filter { editor = quay.null }:count())
    local p, ann = Post:first(), db:model("User"):get { name = "ann" }
    p.editor = ann
    p:save()
    assert.equal(1, Post:filter { editor = ann }:count())
    if not helper.is_pg then
      assert.same({ { integrity_check = "ok" } }, db:rows("PRAGMA integrity_check"))
    end
    db:create_tables()                                 -- nothing left to do
    db:close()
  end)

  -- Found by test/difftest/migrations.lua: a long first difference (a
  -- CHECK of many choices) pushed the fix out of the message.
  it("names db:migrate() also when the first difference is long", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("Item", { state = quay.string { max = 60 } })
    db1:create_tables()
    db1:close()
    local choices = {}
    for i = 1, 20 do choices[i] = ("choice é number %02d of a long list"):format(i) end
    local db = quay.open(url)
    db:model("Item", { state = quay.string { max = 60, choices = choices } })
    local err = helper.raises("migration", db.create_tables, db)
    helper.mentions(err, "db:migrate()", "items")
    assert.is_truthy(utf8.len(err.message))          -- cut at a character
    db:close()
  end)

  it("creates the tables that are missing when the rest agree", function()
    local url = fresh_url()
    local db1 = quay.open(url)
    db1:model("User", { name = quay.string() })
    db1:create_tables()
    db1:close()
    local db = quay.open(url)
    db:model("User", { name = quay.string() })
    local D = db:model("Draft", { author = quay.belongs_to("User"), body = quay.text() })
    db:execute("CREATE TABLE other (id INTEGER PRIMARY KEY)")   -- not ours: left alone
    db:create_tables()
    assert.equal(0, D:count())
    assert.is_truthy(table_of(db:inspect(), "other"))
    db:close()
  end)
end)

describe("Statement failure during a migration", function()
  if not test then
    it("needs a QUAY_TEST build (test hooks compiled in)", function()
      assert.is_nil(test)
    end)
    return
  end
  after_each(cleanup)

  -- Fail statement 1, 2, ... of the migration until it succeeds; every
  -- failed run leaves schema and data as they were.
  it("leaves schema and data as before at every statement", function()
    local url = fresh_url()
    local db1 = blog_v1(url)
    db1:execute('CREATE INDEX hand_made ON "posts" ("views")')
    db1:close()
    local db = quay.open(url)
    db:model("User", { name = quay.string { max = 100 }, email = quay.string { unique = true },
                       nick = quay.string { null = true } })
    db:model("Profile", {
      user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
      about = quay.text { null = true, renamed_from = "bio" } })
    db:model("Tag", { name = quay.string { unique = true } })
    db:model("Post", {
      title = quay.text(),
      views = quay.number { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
    })
    db:model("Comment", {
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      body = quay.text(), stars = quay.integer { default = 1, index = true } })
    db:model("Badge", { user = quay.belongs_to("User"), label = quay.string() })
    local before = snapshot(db)
    local k = 1
    while true do
      test.fail_statement(db, k)
      local ok, err = pcall(db.migrate, db, { allow_drop = true })
      test.fail_statement(db, 0)
      if ok then break end
      assert.equal("sql", err.code, tostring(err.message))
      assert.equal(before, snapshot(db), "statement " .. k .. " left changes")
      k = k + 1
      assert.is_true(k < 300)
    end
    assert.is_true(k > 10, "walked " .. k)
    assert.same({}, db:schema_diff())
    if not helper.is_pg then
      assert.same({ { integrity_check = "ok" } }, db:rows("PRAGMA integrity_check"))
      assert.equal(1, db:rows("PRAGMA foreign_keys")[1].foreign_keys)
    end
    db:close()
  end)
end)
