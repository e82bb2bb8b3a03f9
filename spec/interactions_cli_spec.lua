-- The quay command as an application team uses it over the years
-- (reference.md "Schema evolution", "Versioned files", "Model behaviour"
-- for quay types, "Schema" for quay describe; docs/migrations.md): model
-- versions made into files on a developer's database and applied to
-- another, plan and status, hand edits after apply, data migrations, two
-- deploys at once, a file failing half-way, odd names and bad command
-- lines, and the outputs of inspect, types and describe used as they are
-- meant to be.  spec/versioned_spec.lua and spec/inspect_spec.lua hold the
-- basic cases; these are the interactions between them.
local helper = require("spec.helper")
local quay = helper.quay

assert(os.getenv("QUAY_BUILD_DIR"), "QUAY_BUILD_DIR (spec/run_busted.sh sets it)")
local quay_bin = helper.quay_bin
local shquote, slurp, write = helper.shquote, helper.slurp, helper.write_file
local quay_cmd = helper.quay_cmd

-- Version 1 of an application's models, then version 2: a new field with
-- a default, a new model with a foreign key, an index.
local V1 = [[
local quay = require("quay")
return function(db)
  local M = {}
  M.Customer = db:model("Customer", { name = quay.string { max = 80 } })
  return M
end
]]
local V2 = [[
local quay = require("quay")
return function(db)
  local M = {}
  M.Customer = db:model("Customer", {
    name = quay.string { max = 80 },
    email = quay.string { default = "", index = true },
  })
  M.Order = db:model("Order", {
    total = quay.integer { default = 0 },
    customer = quay.belongs_to("Customer", { on_delete = quay.CASCADE, related_name = "orders" }),
  })
  return M
end
]]

local function ls(dir)
  local names = {}
  local p = io.popen("ls -A " .. shquote(dir) .. " 2>/dev/null")
  for n in p:lines() do names[#names + 1] = n end
  p:close()
  table.sort(names)
  return table.concat(names, " ")
end

local function tables_of(url)
  local db = quay.open(url)
  local names = {}
  for _, t in ipairs(db:inspect().tables) do names[#names + 1] = t.name end
  local applied = {}
  for _, a in ipairs(db:applied_migrations()) do applied[#applied + 1] = a.name end
  db:close()
  return table.concat(names, " "), table.concat(applied, " ")
end

local dir, models, url
before_each(function()
  dir = helper.tmpdir()
  models = dir .. "/models.lua"
  url = helper.shared_url()
end)
after_each(function() helper.remove_files() end)

local function mig(...) return quay_cmd("migrate", ...) end

-- The developer's database: 0001 from V1 applied, 0002 from V2 applied.
local function two_versions()
  write(models, V1)
  local st, out, err = mig("make", models, "initial", "--db", url)
  assert.equal(0, st, err)
  st, out, err = mig("apply", models, "--db", url)
  assert.equal(0, st, err)
  write(models, V2)
  st, out, err = mig("make", models, "orders", "--db", url)
  assert.equal(0, st, err .. out)
  st, out, err = mig("apply", models, "--db", url)
  assert.equal(0, st, err)
end

-- Another database with nothing applied: production, or a colleague's.
local function second_url()
  return helper.shared_url()
end

describe("a team's versioned migrations", function()
  it("make writes 0001 for the first models and 0002 with only the change", function()
    two_versions()
    assert.equal("0001_initial.lua 0002_orders.lua", ls(dir .. "/migrations"))
    local m1 = assert(load(slurp(dir .. "/migrations/0001_initial.lua"), "=m1", "t"))()
    local m2 = assert(load(slurp(dir .. "/migrations/0002_orders.lua"), "=m2", "t"))()
    assert.equal(helper.backend == "sqlite" and "sqlite" or "postgresql", m1.backend)
    local t1, t2 = {}, {}
    for _, s in ipairs(m1.steps) do t1[#t1 + 1] = s.op .. ":" .. s.table end
    for _, s in ipairs(m2.steps) do t2[s.op .. ":" .. s.table] = true end
    assert.same({ "create_table:customers" }, t1)
    assert.is_true(t2["create_table:orders"])
    assert.is_true(t2["add_column:customers"])
    assert.is_nil(t2["create_table:customers"])
  end)

  it("status on a database with none applied lists every file pending", function()
    two_versions()
    local other = second_url()
    local st, out, err = mig("status", models, "--db", other)
    assert.equal(0, st, err)
    assert.truthy(out:find("pending%s+0001_initial"), out)
    assert.truthy(out:find("pending%s+0002_orders"), out)
    assert.truthy(out:find("differs", 1, true), out)
    assert.is_nil(out:find("applied", 1, true))
  end)

  it("plan prints the SQL of every pending file in order and changes nothing", function()
    two_versions()
    local other = second_url()
    local st, out, err = mig("plan", models, "--db", other)
    assert.equal(0, st, err)
    local a, b = out:find("0001_initial", 1, true), out:find("0002_orders", 1, true)
    assert.truthy(a and b and a < b, out)
    assert.truthy(out:find('CREATE TABLE "customers"', 1, true), out)
    assert.truthy(out:find('CREATE TABLE "orders"', 1, true), out)
    local tables, applied = tables_of(other)
    assert.equal("", tables)
    assert.equal("", applied)
    local db = quay.open(other)
    assert.equal(0, #db:rows(helper.is_pg
      and "SELECT 1 FROM pg_tables WHERE tablename = 'quay_migrations'"
      or "SELECT 1 FROM sqlite_master WHERE name = 'quay_migrations'"))
    db:close()
  end)

  it("plan marks a step that loses data, as make --allow-drop wrote it", function()
    two_versions()
    write(models, V1)                                    -- Order and email go
    local st, out, err = mig("make", models, "back", "--db", url, "--allow-drop")
    assert.equal(0, st, err)
    st, out, err = mig("plan", models, "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("drop_table orders  (destructive", 1, true), out)
    assert.truthy(out:find("drop_column customers.email  (destructive", 1, true), out)
  end)

  it("apply on a database with none applied runs every file in order; then it matches", function()
    two_versions()
    local other = second_url()
    local st, out, err = mig("apply", models, "--db", other)
    assert.equal(0, st, err)
    local a, b = out:find("applied 0001_initial", 1, true), out:find("applied 0002_orders", 1, true)
    assert.truthy(a and b and a < b, out)
    assert.equal("", err)                         -- no "still differs" warning
    local tables, applied = tables_of(other)
    assert.equal("customers orders", tables)
    assert.equal("0001_initial 0002_orders", applied)
    st, out = mig("status", models, "--db", other)
    assert.equal(0, st)
    assert.truthy(out:find("applied%s+0001_initial") and out:find("applied%s+0002_orders"), out)
    assert.truthy(out:find("matches the models", 1, true), out)
    -- the application's models work on it
    local db = quay.open(other)
    local M = dofile(models)(db)
    local c = M.Customer:create { name = "Ann" }
    M.Order:create { customer = c, total = 3 }
    assert.equal(1, c.orders:count())
    db:close()
  end)

  it("apply a second time runs nothing and records nothing twice", function()
    two_versions()
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("nothing to apply", 1, true), out)
    local _, applied = tables_of(url)
    assert.equal("0001_initial 0002_orders", applied)
  end)

  it("make with no changes writes no file", function()
    two_versions()
    local before = ls(dir .. "/migrations")
    local st, out, err = mig("make", models, "nothing", "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("no changes", 1, true), out)
    assert.equal(before, ls(dir .. "/migrations"))
  end)

  it("make with no changes on a matching database creates no migrations directory", function()
    write(models, V1)
    local db = quay.open(url)
    dofile(models)(db)
    db:create_tables()
    db:close()
    local st, out, err = mig("make", models, "nothing", "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("no changes", 1, true), out)
    assert.equal("models.lua", ls(dir))
    -- plan and status only read: a path with no database yet (or a
    -- mistyped one) answers as for an empty database and leaves no file
    local out2
    for _, sub in ipairs { "plan", "status" } do
      st, out, err = mig(sub, models, "--db", "sqlite:" .. dir .. "/typo.db")
      assert.equal(0, st, err)
      out2 = out
    end
    assert.truthy(out2:find("differs", 1, true), out2)           -- as for an empty database
    assert.equal("models.lua", ls(dir))
  end)

  it("make refuses while a file is pending, naming it, and writes nothing", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    write(models, V2)
    local st, _, err = mig("make", models, "orders", "--db", url)
    assert.equal(1, st)
    assert.truthy(err:find("0001_initial", 1, true) and err:find("(migration)", 1, true), err)
    assert.equal("0001_initial.lua", ls(dir .. "/migrations"))
  end)
end)

describe("an applied file edited by hand", function()
  it("apply refuses with migration naming the file, and runs no pending file", function()
    two_versions()
    local other = second_url()
    assert.equal(0, (mig("apply", models, "--db", other)))
    -- a third version is made...
    write(models, V2:gsub("total = quay.integer { default = 0 },",
      "total = quay.integer { default = 0 },\n    note = quay.text { null = true },"))
    assert.equal(0, (mig("make", models, "note", "--db", url)))
    -- ...and someone "fixes" 0001 after it was applied everywhere
    local path = dir .. "/migrations/0001_initial.lua"
    write(path, slurp(path):gsub("written by", "written  by"))
    local st, out, err = mig("apply", models, "--db", other)
    assert.equal(1, st, out)
    assert.truthy(err:find("0001_initial.lua", 1, true), err)
    assert.truthy(err:find("changed", 1, true) and err:find("(migration)", 1, true), err)
    local _, applied = tables_of(other)
    assert.equal("0001_initial 0002_orders", applied)   -- 0003 not run
  end)

  it("plan refuses the same way instead of planning over it", function()
    two_versions()
    local path = dir .. "/migrations/0002_orders.lua"
    write(path, slurp(path) .. "-- reviewed\n")
    local st, out, err = mig("plan", models, "--db", url)
    assert.equal(1, st, out)
    assert.truthy(err:find("0002_orders.lua", 1, true) and err:find("(migration)", 1, true), err)
  end)

  it("status lists every file, the changed and the missing ones marked, then fails naming the first", function()
    two_versions()
    write(models, V2:gsub("total = quay.integer { default = 0 },",
      "total = quay.integer { default = 0 },\n    note = quay.text { null = true },"))
    assert.equal(0, (mig("make", models, "note", "--db", url)))
    local p1 = dir .. "/migrations/0001_initial.lua"
    write(p1, slurp(p1) .. "-- edited\n")
    os.remove(dir .. "/migrations/0002_orders.lua")
    local st, out, err = mig("status", models, "--db", url)
    assert.equal(1, st, out)
    assert.truthy(out:find("changed%s+0001_initial"), out)
    assert.truthy(out:find("missing%s+0002_orders"), out)
    assert.truthy(out:find("pending%s+0003_note"), out)
    assert.truthy(err:find("0001_initial.lua", 1, true) and err:find("(migration)", 1, true), err)
  end)

  it("a checkout that turns its line ends into \\r\\n is not a change", function()
    two_versions()
    local path = dir .. "/migrations/0001_initial.lua"
    write(path, (slurp(path):gsub("\n", "\r\n")))
    for _, sub in ipairs { "status", "plan", "apply" } do
      local st, out, err = mig(sub, models, "--db", url)
      assert.equal(0, st, sub .. ": " .. err)
    end
    write(path, (slurp(path):gsub("written by", "written  by")))   -- a real edit still is
    local st, _, err = mig("apply", models, "--db", url)
    assert.equal(1, st)
    assert.truthy(err:find("0001_initial.lua", 1, true) and err:find("changed", 1, true), err)
  end)

  it("a pending file may still be edited before it is applied", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    local path = dir .. "/migrations/0001_initial.lua"
    write(path, slurp(path) .. "-- reviewed before deploy\n")
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("applied 0001_initial", 1, true), out)
    local db = quay.open(url)
    assert.equal(require("quay.core").checksum(slurp(path)), db:applied_migrations()[1].checksum)
    db:close()
  end)
end)

describe("a file made on the other backend", function()
  it("apply refuses it with migration naming the file and both backends, recording nothing", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    local path = dir .. "/migrations/0001_initial.lua"
    local other = helper.is_pg and "sqlite" or "postgresql"
    write(path, (slurp(path):gsub('backend = "[%w]+"', 'backend = "' .. other .. '"')))
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(1, st, out)
    assert.truthy(err:find("0001_initial.lua", 1, true) and err:find(other, 1, true), err)
    assert.truthy(err:find("(migration)", 1, true), err)
    local tables, applied = tables_of(url)
    assert.equal("", tables)
    assert.equal("", applied)
  end)
end)

describe("a data migration", function()
  it("fills a new column from the old rows in the file's transaction", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    assert.equal(0, (mig("apply", models, "--db", url)))
    local db = quay.open(url)
    db:execute("INSERT INTO customers (name) VALUES ('ann'), ('bob')")
    db:close()
    write(models, V1:gsub("quay.string { max = 80 } }",
      "quay.string { max = 80 }, email = quay.string { default = \"\" } }"))
    assert.equal(0, (mig("make", models, "email", "--db", url)))
    local path = dir .. "/migrations/0002_email.lua"
    local text = slurp(path)
    local filled = text:gsub("  %-%- data = function%(db%) %.%.%. end,", [[
  data = function(db)
    for _, c in ipairs(db:rows("SELECT id, name FROM customers")) do
      db:execute("UPDATE customers SET email = ? WHERE id = ?", { c.name .. "@example.com", c.id })
    end
  end,]])
    assert.are_not.equal(text, filled)
    write(path, filled)
    local st, out, err = mig("plan", models, "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("data migration", 1, true), out)
    st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    db = quay.open(url)
    local rows = db:rows("SELECT name, email FROM customers ORDER BY name")
    assert.equal("ann@example.com", rows[1].email)
    assert.equal("bob@example.com", rows[2].email)
    db:close()
  end)
end)

describe("a misspelt data migration", function()
  it("apply and plan refuse a file with an unknown key, naming it, and run nothing", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    local path = dir .. "/migrations/0001_initial.lua"
    local text = slurp(path)
    local typo = text:gsub("  %-%- data = function%(db%) %.%.%. end,",
      "  date = function(db) db:execute(\"INSERT INTO customers (name) VALUES ('x')\") end,")
    assert.are_not.equal(text, typo)
    write(path, typo)
    for _, sub in ipairs { "plan", "apply" } do
      local st, out, err = mig(sub, models, "--db", url)
      assert.equal(1, st, out)
      assert.truthy(err:find("0001_initial.lua", 1, true) and err:find('"date"', 1, true), err)
      assert.truthy(err:find("(migration)", 1, true), err)
    end
    local tables, applied = tables_of(url)
    assert.equal("", tables)
    assert.equal("", applied)
  end)
end)

describe("a data migration that breaks a foreign key", function()
  it("is refused with integrity, its file rolled back, also when its file rebuilds a table (SQLite)", function()
    write(models, V2)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    assert.equal(0, (mig("apply", models, "--db", url)))
    -- customers.name string -> text: a rebuild on SQLite, with foreign keys off
    write(models, (V2:gsub("name = quay.string { max = 80 },", "name = quay.text(),")))
    assert.equal(0, (mig("make", models, "widen", "--db", url)))
    local path = dir .. "/migrations/0002_widen.lua"
    local text = slurp(path)
    local orphan = text:gsub("  %-%- data = function%(db%) %.%.%. end,", [[
  data = function(db)
    db:execute("INSERT INTO orders (total, customer_id) VALUES (1, 999)")
  end,]])
    assert.are_not.equal(text, orphan)
    write(path, orphan)
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(1, st, out)
    assert.truthy(err:find("0002_widen", 1, true) and err:find("(integrity)", 1, true), err)
    local _, applied = tables_of(url)
    assert.equal("0001_initial", applied)
    local db = quay.open(url)
    assert.equal(0, #db:rows("SELECT id FROM orders"))
    if not helper.is_pg then
      assert.equal(0, #db:rows("PRAGMA foreign_key_check"))
      assert.equal(1, db:rows("PRAGMA foreign_keys")[1].foreign_keys)
    end
    db:close()
  end)
end)

describe("two deploys applying at once", function()
  it("each of three files runs once; both exit 0", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    for i, name in ipairs { "0002_slow", "0003_after" } do
      write(dir .. "/migrations/" .. name .. ".lua", ([[
return {
  steps = {
    { op = "create_table", table = "log%d", sql = { "CREATE TABLE log%d (who TEXT)" } },
  },
  data = function(db)
    local t = os.clock()
    while os.clock() - t < 0.3 do end
    db:execute("INSERT INTO log%d (who) VALUES ('x')")
  end,
}
]]):format(i, i, i))
    end
    local args = table.concat({ shquote(quay_bin), "migrate", "apply",
      shquote(models), "--db", shquote(url) }, " ")
    local cmd = ("(%s >%s/a.out 2>&1; echo $? >%s/a.st) & "
      .. "(%s >%s/b.out 2>&1; echo $? >%s/b.st) & wait"):format(
      args, dir, dir, args, dir, dir)
    assert(os.execute(cmd))
    assert.equal("0", slurp(dir .. "/a.st"):match("%d+"), slurp(dir .. "/a.out"))
    assert.equal("0", slurp(dir .. "/b.st"):match("%d+"), slurp(dir .. "/b.out"))
    local db = quay.open(url)
    local names = {}
    for _, a in ipairs(db:applied_migrations()) do names[#names + 1] = a.name end
    assert.equal("0001_initial 0002_slow 0003_after", table.concat(names, " "))
    assert.equal(1, #db:rows("SELECT who FROM log1"))
    assert.equal(1, #db:rows("SELECT who FROM log2"))
    db:close()
    local both = slurp(dir .. "/a.out") .. slurp(dir .. "/b.out")
    for _, name in ipairs { "0001_initial", "0002_slow", "0003_after" } do
      local n = 0
      for _ in both:gmatch("applied " .. name) do n = n + 1 end
      assert.equal(1, n, both)
    end
  end)
end)

describe("a file failing half-way", function()
  it("leaves the database as before that file, unrecorded; the files before it stay", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    write(dir .. "/migrations/0002_broken.lua", [[
return {
  steps = {
    { op = "create_table", table = "audit", sql = { "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)" } },
    { op = "add_column", table = "customers", column = "vip",
      sql = { "ALTER TABLE customers ADD COLUMN vip INTEGER", "ALTER TABLE no_such_table ADD COLUMN x INTEGER" } },
  },
}
]])
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(1, st, out)
    assert.truthy(out:find("applied 0001_initial", 1, true), out)
    assert.truthy(err:find("no_such_table", 1, true), err)
    assert.truthy(err:find("0002_broken.lua", 1, true), err)         -- the file that failed
    local tables, applied = tables_of(url)
    assert.equal("customers", tables)
    assert.equal("0001_initial", applied)
    local db = quay.open(url)
    assert.equal(2, #db:inspect().tables[1].columns)       -- id, name: no vip
    db:close()
    -- fixed, it applies
    write(dir .. "/migrations/0002_broken.lua", [[
return {
  steps = {
    { op = "create_table", table = "audit", sql = { "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)" } },
  },
}
]])
    st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    tables, applied = tables_of(url)
    assert.equal("audit customers", tables)
    assert.equal("0001_initial 0002_broken", applied)
  end)
end)

describe("migration names", function()
  for _, name in ipairs { "add-tags", "add tags", "café", "../escape", "a.b", "" } do
    it(("make refuses the name %q with migration, writing nothing"):format(name), function()
      write(models, V1)
      local st, out, err = mig("make", models, name, "--db", url)
      assert.equal(1, st, out)
      assert.truthy(err:find("(migration)", 1, true), err)
      assert.truthy(err:find(("%q"):format(name), 1, true), err)
      assert.equal("models.lua", ls(dir))
    end)
  end

  it("a hand-made file named like a migration but not as one is refused, not skipped", function()
    two_versions()
    write(dir .. "/migrations/0003_add-notes.lua", [[
return { steps = { { op = "create_table", table = "notes", sql = { "CREATE TABLE notes (id INTEGER PRIMARY KEY)" } } } }
]])
    write(dir .. "/migrations/helpers.lua", "return {}\n")     -- not a migration: left alone
    for _, sub in ipairs { "apply", "status", "plan" } do
      local st, out, err = mig(sub, models, "--db", url)
      assert.equal(1, st, out)
      assert.truthy(err:find("0003_add-notes.lua", 1, true) and err:find("(migration)", 1, true), err)
    end
    os.rename(dir .. "/migrations/0003_add-notes.lua", dir .. "/migrations/0003_add_notes.lua")
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("applied 0003_add_notes", 1, true), out)
  end)

  it("make refuses a name longer than 100 characters with migration, writing nothing", function()
    write(models, V1)
    local st, out, err = mig("make", models, ("a"):rep(101), "--db", url)
    assert.equal(1, st, out)
    assert.truthy(err:find("(migration)", 1, true) and err:find("100", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
    assert.equal("models.lua", ls(dir))
    st, out, err = mig("make", models, ("a"):rep(100), "--db", url)
    assert.equal(0, st, err)
  end)

  it("make into a directory it cannot write says so with migration, no traceback", function()
    write(models, V1)
    write(dir .. "/migrations", "a file where the directory should be\n")
    local st, out, err = mig("make", models, "first", "--db", url)
    assert.equal(1, st, out)
    assert.truthy(err:find("(migration)", 1, true) and err:find("0001_first.lua", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
  end)

  it("make takes letters, digits and _ in any case, and status lists the file", function()
    write(models, V1)
    local st, out, err = mig("make", models, "Add_Customers_2", "--db", url)
    assert.equal(0, st, err)
    assert.equal("0001_Add_Customers_2.lua", ls(dir .. "/migrations"))
    st, out = mig("status", models, "--db", url)
    assert.truthy(out:find("pending%s+0001_Add_Customers_2"), out)
  end)
end)

describe("paths", function()
  it("a model script, its migrations and its database in a directory named with a space and a quote", function()
    local odd = dir .. "/it's my app"
    assert(os.execute("mkdir -p " .. shquote(odd)))
    write(odd .. "/models.lua", V1)
    local u = helper.is_pg and url or ("sqlite:" .. odd .. "/app db.sqlite")
    local st, out, err = mig("make", odd .. "/models.lua", "first", "--db", u)
    assert.equal(0, st, err)
    assert.equal("0001_first.lua", ls(odd .. "/migrations"))
    st, out, err = mig("apply", odd .. "/models.lua", "--db", u)
    assert.equal(0, st, err)
    st, out = mig("status", odd .. "/models.lua", "--db", u)
    assert.truthy(out:find("applied%s+0001_first") and out:find("matches the models", 1, true), out)
  end)
end)

describe("the command line", function()
  -- A usage error: exit status 2 (bindings/quay_main.c), the usage on
  -- stderr, and on its first line the problem with code misuse, which
  -- the usage text below it must not stand in for.
  local function usage_error(st, out, err)
    assert.equal(2, st, out .. err)
    assert.truthy(err:find("\nusage:", 1, true), err)
    local first = err:match("^[^\n]*")
    assert.truthy(first:find("(misuse)", 1, true), err)
    return first
  end

  it("--db missing: a usage error that names --db", function()
    write(models, V1)
    for _, sub in ipairs { "apply", "plan", "status" } do
      local st, out, err = mig(sub, models)
      assert.truthy(usage_error(st, out, err):find("--db", 1, true), err)
    end
    local st, out, err = mig("make", models, "x")
    usage_error(st, out, err)
    st, out, err = mig("apply", models, "--db")
    assert.truthy(usage_error(st, out, err):find("--db", 1, true), err)
  end)

  it("--db wrong: exit status 1 with a connection error naming the database", function()
    write(models, V1)
    local st, out, err = mig("status", models, "--db", "nosuch:x")
    assert.equal(1, st, out)
    assert.truthy(err:find("nosuch:x", 1, true) and err:find("(connection)", 1, true), err)
    st, out, err = mig("apply", models, "--db", "sqlite:" .. dir .. "/no/such/dir/app.db")
    assert.equal(1, st, out)
    assert.truthy(err:find("(connection)", 1, true), err)
    assert.equal("models.lua", ls(dir))
  end)

  it("--db with an unknown scheme: the error shows no password", function()
    write(models, V1)
    local st, out, err = mig("status", models, "--db", "pgsql://app:sekret@db.example/prod")
    assert.equal(1, st, out)
    assert.truthy(err:find("pgsql://", 1, true) and err:find("(connection)", 1, true), err)
    assert.is_nil(err:find("sekret", 1, true), err)
  end)

  it("an unknown option is a usage error naming it, never ignored", function()
    write(models, V1)
    local st, out, err = mig("apply", models, "--db", url, "--force")
    assert.truthy(usage_error(st, out, err):find("--force", 1, true), err)
    st, out, err = mig("apply", models, "--db=" .. url)
    usage_error(st, out, err)
    local tables = tables_of(url)
    assert.equal("", tables)
  end)

  it("--allow-drop on a command that does not take it is a usage error", function()
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    for _, sub in ipairs { "apply", "plan", "status" } do
      local st, out, err = mig(sub, models, "--db", url, "--allow-drop")
      assert.truthy(usage_error(st, out, err):find("--allow-drop", 1, true), err)
    end
    local _, applied = tables_of(url)
    assert.equal("", applied)
  end)

  it("an option given twice is a usage error", function()
    write(models, V1)
    local st, out, err = mig("status", models, "--db", url, "--dir", dir .. "/a", "--dir", dir .. "/b")
    assert.truthy(usage_error(st, out, err):find("--dir", 1, true), err)
  end)

  it("an unknown subcommand or an extra argument is a usage error", function()
    write(models, V1)
    local st, out, err = mig("upgrade", models, "--db", url)
    assert.truthy(usage_error(st, out, err):find("upgrade", 1, true), err)
    st, out, err = mig("apply", models, "extra", "--db", url)
    assert.truthy(usage_error(st, out, err):find("extra", 1, true), err)
    st, out, err = quay_cmd("migrate")
    usage_error(st, out, err)
    st, out, err = quay_cmd("inspect", url, "extra")
    usage_error(st, out, err)
    st, out, err = quay_cmd("types")
    usage_error(st, out, err)
    assert.equal("", (tables_of(url)))
  end)

  it("--version and --help take no argument: an extra one is a usage error naming it", function()
    for _, flag in ipairs { "--version", "-v", "--help", "-h" } do
      local st, out, err = quay_cmd(flag, "extra")
      assert.truthy(usage_error(st, out, err):find("extra", 1, true), err)
      assert.equal("", out)
      st, out = quay_cmd(flag)
      assert.equal(0, st, out)
      assert.truthy(out:find(flag:find("v") and "^quay %d" or "^usage:"), out)
    end
  end)

  it("an option where inspect and types take a URL or a script is a usage error", function()
    local st, out, err = quay_cmd("inspect", "--db", url)
    assert.truthy(usage_error(st, out, err):find("--db", 1, true), err)
    st, out, err = quay_cmd("types", "--verbose")
    assert.truthy(usage_error(st, out, err):find("--verbose", 1, true), err)
  end)
end)

describe("quay inspect", function()
  local RICH = [[
local quay = require("quay")
return function(db)
  local M = {}
  M.Author = db:model("Author", {
    name = quay.string { max = 80, unique = true }, born = quay.date { null = true },
    uid = quay.uuid { null = true }, score = quay.decimal { digits = 8, places = 3, default = "0" },
    meta = quay.json { null = true }, kind = quay.string { choices = { "a", "b" }, default = "a" },
    age = quay.integer { min = 0, max = 200, null = true }, ratio = quay.number { default = 1.5 },
    active = quay.boolean { default = true, index = true }, photo = quay.blob { null = true },
    seen = quay.datetime { null = true }, bio = quay.text { default = "" },
    unique_together = { { "name", "born" } }, indexes = { { "age", "ratio" } },
  })
  M.Tag = db:model("Tag", { label = quay.string() })
  M.Book = db:model("Book", {
    title = quay.string(),
    author = quay.belongs_to("Author", { on_delete = quay.CASCADE, related_name = "books" }),
    editor = quay.belongs_to("Author", { null = true, on_delete = quay.SET_NULL, related_name = "edited" }),
    tags = quay.many_to_many("Tag", { related_name = "books" }),
    parent = quay.belongs_to("Book", { null = true, related_name = "children" }),
  })
  M.Profile = db:model("Profile", {
    author = quay.one_to_one("Author", { related_name = "profile" }),
    site = quay.string { null = true },
  })
  return M
end
]]

  it("its output, run as the model script of the same database, has an empty schema_diff", function()
    write(models, RICH)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    assert.equal(0, (mig("apply", models, "--db", url)))
    local st, script, err = quay_cmd("inspect", url)
    assert.equal(0, st, err)
    write(dir .. "/back.lua", script)
    local db = quay.open(url)
    local M = dofile(dir .. "/back.lua")(db)
    local diff = db:schema_diff()
    local what = {}
    for _, s in ipairs(diff) do what[#what + 1] = s.what or s.op end
    assert.equal(0, #diff, table.concat(what, "; "))
    assert.truthy(M.Author and M.Book and M.Tag and M.Profile)
    db:close()
    -- and the migrate tools see nothing to make from it
    st, script, err = mig("make", dir .. "/back.lua", "nothing", "--db", url, "--dir", dir .. "/migrations")
    assert.equal(0, st, err)
    assert.truthy(script:find("no changes", 1, true), script)
  end)
end)

describe("quay inspect's header", function()
  it("leaves the connection's passwords out of the script it prints", function()
    local urls = {}
    if helper.is_pg then
      local sep = url:find("?", 1, true) and "&" or "?"
      urls[#urls + 1] = url:gsub("//([^:@/]+)@", "//%1:sekret1@") .. sep .. "password=sekret2"
      local user, host, port, name = url:match("^postgres%a*://([^:@/]+)@([^:/]+):(%d+)/([^?]+)$")
      if user then
        urls[#urls + 1] = ("host=%s port=%s user=%s password='sekret3 \\'x' dbname=%s sslpassword=sekret4")
          :format(host, port, user, name)
      end
    else
      urls[#urls + 1] = url                -- a path, printed as it is
    end
    for _, u in ipairs(urls) do
      local st, script, err = quay_cmd("inspect", u)
      assert.equal(0, st, err)
      local head = script:match("^[^\n]*")
      assert.is_nil(head:find("sekret", 1, true), head)
      assert.truthy(head:find(helper.is_pg and url:match("@([^:/]+)") or url, 1, true), head)
    end
  end)
end)

describe("quay types", function()
  it("prints a chunk that loads and names every field, relation, method and scope", function()
    write(models, [[
local quay = require("quay")
return function(db)
  local M = {}
  M.Author = db:model("Author", { name = quay.string(), ["end"] = quay.integer { null = true } })
  M.Post = db:model("Post", {
    title = quay.string(),
    author = quay.belongs_to("Author", { related_name = "posts" }),
    ["local"] = quay.belongs_to("Author", { null = true, related_name = "locals" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
    methods = { shout = function(self, loud, ...) end, ["and"] = function(self) end },
    scopes = { recent = function(q, days) return q end, ["or"] = function(q) return q end },
    soft_delete = true,
  })
  M.Tag = db:model("Tag", { label = quay.string() })
  return M
end
]])
    local st, out, err = quay_cmd("types", models)
    assert.equal(0, st, err)
    assert.truthy(load(out, "=types", "t"))
    for _, line in ipairs {
      "---@class Author: quay.Record", "---@class Post: quay.Record", "---@class Tag: quay.Record",
      "---@field name string", '---@field ["end"] integer?', "---@field title string",
      "---@field author Author?", '---@field ["local"] Author?', "---@field tags TagSet",
      "---@field posts PostSet", "---@field locals PostSet", "---@field label string",
      "function Post:shout(loud, ...) end", 'Post["and"] = function(self) end',
      "function PostQuerySet:recent(days) end", 'PostQuerySet["or"] = function(self) end',
      "function PostModel:recent(days) end", "function PostQuerySet:with_deleted() end",
      "---@field Post PostModel",
    } do
      assert.truthy(out:find(line, 1, true), line .. " missing from:\n" .. out)
    end
  end)

  it("takes a model script that looks a declared model up by name", function()
    write(models, [[
local quay = require("quay")
return function(db)
  db:model("User", { name = quay.string() })
  local M = { User = db:model("User") }
  M.Post = db:model("Post", { author = quay.belongs_to("User", { related_name = "posts" }) })
  return M
end
]])
    local st, out, err = quay_cmd("types", models)
    assert.equal(0, st, err)
    assert.truthy(load(out, "=types", "t"))
    assert.truthy(out:find("---@field posts PostSet", 1, true), out)
    assert.equal(1, select(2, out:gsub("---@class User: quay.Record", "")))
  end)

  it("prints a chunk that loads for an application of a hundred models", function()
    write(models, [[
local quay = require("quay")
return function(db)
  local M = {}
  for i = 1, 100 do
    M["Thing" .. i] = db:model("Thing" .. i, { name = quay.string(),
      prev = i > 1 and quay.belongs_to("Thing" .. (i - 1), { null = true }) or nil })
  end
  return M
end
]])
    local st, out, err = quay_cmd("types", models)
    assert.equal(0, st, err)
    local chunk, lerr = load(out, "=types", "t")
    assert.truthy(chunk, lerr)
    assert.truthy(out:find("---@class Thing100: quay.Record", 1, true))
    assert.truthy(out:find("---@field Thing100 Thing100Model", 1, true))
  end)

  it("names its Models class apart from a model called Models", function()
    write(models, [[
local quay = require("quay")
return function(db)
  return { Models = db:model("Models", { name = quay.string() }) }
end
]])
    local st, out, err = quay_cmd("types", models)
    assert.equal(0, st, err)
    assert.truthy(load(out, "=types", "t"))
    local n = 0
    for _ in out:gmatch("\n%-%-%-@class Models[\n:]") do n = n + 1 end
    assert.equal(1, n, out)
    assert.truthy(out:find("---@class Models: quay.Record", 1, true), out)
  end)
end)

-- A strict JSON reader: raises on anything RFC 8259 does not allow.
local function json_decode(s)
  local i = 1
  local function ws() i = s:find("[^ \t\r\n]", i) or #s + 1 end
  local value
  local function str()
    assert(s:sub(i, i) == '"', "string expected at " .. i)
    i = i + 1
    local out = {}
    while true do
      local c = s:sub(i, i)
      assert(c ~= "", "unterminated string")
      if c == '"' then i = i + 1; break end
      assert(c:byte() >= 32, "control character in a string at " .. i)
      if c == "\\" then
        local e = s:sub(i + 1, i + 1)
        local map = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                      n = "\n", r = "\r", t = "\t" }
        if e == "u" then
          local h = s:sub(i + 2, i + 5)
          assert(h:match("^%x%x%x%x$"), "bad \\u escape at " .. i)
          out[#out + 1] = utf8.char(tonumber(h, 16))
          i = i + 6
        else
          assert(map[e], "bad escape at " .. i)
          out[#out + 1] = map[e]
          i = i + 2
        end
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
    local r = table.concat(out)
    assert(utf8.len(r), "a string is not UTF-8")
    return r
  end
  function value()
    ws()
    local c = s:sub(i, i)
    if c == "{" then
      i = i + 1
      local t = {}
      ws()
      if s:sub(i, i) == "}" then i = i + 1; return t end
      while true do
        ws()
        local k = str()
        ws()
        assert(s:sub(i, i) == ":", "':' expected at " .. i)
        i = i + 1
        t[k] = value()
        ws()
        local d = s:sub(i, i)
        i = i + 1
        if d == "}" then return t end
        assert(d == ",", "',' expected at " .. (i - 1))
      end
    elseif c == "[" then
      i = i + 1
      local t = {}
      ws()
      if s:sub(i, i) == "]" then i = i + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(i, i)
        i = i + 1
        if d == "]" then return t end
        assert(d == ",", "',' expected at " .. (i - 1))
      end
    elseif c == '"' then
      return str()
    elseif s:find("^true", i) then i = i + 4; return true
    elseif s:find("^false", i) then i = i + 5; return false
    elseif s:find("^null", i) then i = i + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
      assert(num and num:match("^-?0?[1-9]?%d*%.?%d*") and tonumber(num), "bad value at " .. i)
      assert(not num:match("^-?0%d"), "leading zero at " .. i)
      i = i + #num
      return tonumber(num)
    end
  end
  local v = value()
  ws()
  assert(i == #s + 1, "trailing text at " .. i)
  return v
end

describe("quay describe", function()
  local SCRIPT = [[
local quay = require("quay")
local db = quay.open(...)
db:model("Doc", {
  description = "a document",
  meta = quay.json { default = { a = 1, list = { 1, 2 } } },
  label = quay.string { default = "tab\there \"q\"", choices = { "tab\there \"q\"", "y" } },
  price = quay.decimal { digits = 10, places = 2, null = true },
  ratio = quay.number { default = 0.1 },
  tags = quay.many_to_many("Tag", { related_name = "docs" }),
  owner = quay.belongs_to("Tag", { null = true, related_name = "owned" }),
  methods = { hi = function(self) end },
  scopes = { fresh = function(q) return q end },
})
db:model("Tag", { name = quay.string { description = "the tag's name" } })
print("the script's own output")
]]

  local function check_schema(d)
    assert.same({ "Doc", "Tag" }, (function()
      local k = {}
      for n in pairs(d) do k[#k + 1] = n end
      table.sort(k)
      return k
    end)())
    local doc = d.Doc
    assert.equal("docs", doc.table)
    assert.equal("a document", doc.description)
    local f = {}
    for _, x in ipairs(doc.fields) do f[#f + 1] = x.name end
    assert.equal("id meta label price ratio", table.concat(f, " "))
    assert.equal("tab\there \"q\"", doc.fields[3].default)
    assert.same({ "tab\there \"q\"", "y" }, doc.fields[3].choices)
    assert.same({ a = 1, list = { 1, 2 } }, doc.fields[2].default)
    assert.equal(0.1, doc.fields[5].default)
    local r = {}
    for _, x in ipairs(doc.relations) do r[x.name] = x.kind end
    assert.equal("many_to_many", r.tags)
    assert.equal("belongs_to", r.owner)
    assert.same({ "hi" }, doc.methods)
    assert.same({ "fresh" }, doc.scopes)
    assert.equal("the tag's name", d.Tag.fields[2].description)
    local tr = {}
    for _, x in ipairs(d.Tag.relations) do tr[x.name] = x.kind end
    assert.equal("reverse", tr.docs)
    assert.equal("reverse", tr.owned)
  end

  it("prints valid JSON naming every model, field, relation, method and scope", function()
    write(dir .. "/app.lua", SCRIPT .. "return db\n")
    local st, out, err = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(0, st, err)
    assert.truthy(err:find("the script's own output", 1, true), err)
    check_schema(json_decode(out))
  end)

  it("stays JSON for a blob default that is not UTF-8", function()
    write(dir .. "/app.lua", [[
local quay = require("quay")
local db = quay.open(...)
db:model("Icon", { data = quay.blob { default = "\255\0\1PNG" }, name = quay.string { default = "café" } })
]])
    local st, out, err = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(0, st, err)
    local d = json_decode(out)
    assert.equal(utf8.char(255) .. "\0\1PNG", d.Icon.fields[2].default)
    assert.equal("café", d.Icon.fields[3].default)
  end)

  it("describes a db the script closed at its end", function()
    write(dir .. "/app.lua", SCRIPT .. "db:close()\n")
    local st, out, err = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(0, st, err)
    check_schema(json_decode(out))
  end)

  it("prints the schema of a script that ends with os.exit(0)", function()
    write(dir .. "/app.lua", SCRIPT .. "os.exit(0)\n")
    local st, out, err = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(0, st, err)
    check_schema(json_decode(out))
  end)

  it("prints nothing and exits with the script's status after os.exit(3)", function()
    write(dir .. "/app.lua", SCRIPT .. "os.exit(3)\n")
    local st, out = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(3, st)
    assert.equal("", out)
  end)

  it("describes a db the script closed by <close>", function()
    write(dir .. "/app.lua", (SCRIPT:gsub("local db = quay.open%(%.%.%.%)",
      "local db <close> = quay.open(...)")))
    local st, out, err = quay_cmd("describe", dir .. "/app.lua", url)
    assert.equal(0, st, err)
    check_schema(json_decode(out))
  end)
end)

describe("what a migration file keeps", function()
  it("a default with \\r and \\r\\n reaches the database as the models have it", function()
    write(models, [[
local quay = require("quay")
return function(db)
  return { Note = db:model("Note", { body = quay.string { default = "one\r\ntwo\rthree" } }) }
end
]])
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    local st, _, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    local out
    st, out = mig("status", models, "--db", url)
    assert.truthy(out:find("matches the models", 1, true), out)
    local db = quay.open(url)
    local M = dofile(models)(db)
    db:execute("INSERT INTO notes DEFAULT VALUES")
    assert.equal("one\r\ntwo\rthree", db:rows("SELECT body FROM notes")[1].body)
    assert.equal(0, #db:schema_diff())
    db:close()
  end)

  it("apply runs 10000_ after 9999_, and make numbers the next 10001_", function()
    write(models, V1)
    local mdir = dir .. "/migrations"
    assert(os.execute("mkdir -p " .. shquote(mdir)))
    write(mdir .. "/9999_first.lua", [[
return { steps = { { op = "create_table", table = "a", sql = { "CREATE TABLE a (id INTEGER PRIMARY KEY)" } } } }
]])
    write(mdir .. "/10000_second.lua", [[
return { steps = { { op = "create_table", table = "b", sql = { "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id))" } } } }
]])
    local st, out, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    local a, b = out:find("applied 9999_first", 1, true), out:find("applied 10000_second", 1, true)
    assert.truthy(a and b and a < b, out)
    st, out, err = mig("make", models, "third", "--db", url, "--allow-drop")
    assert.equal(0, st, err)
    assert.truthy(out:find("10001_third.lua", 1, true), out)
  end)
end)

describe("the command behind a pooler", function()
  -- Behind PgBouncer in transaction mode the server connections outlive
  -- the command: it must leave no named prepared statement and no session
  -- setting (its busy_timeout) on them, or the next client of that
  -- connection fails ("prepared statement quay_s1 already exists") or
  -- waits by the wrong lock_timeout.  Only the pgbouncer pass has a pooler;
  -- elsewhere the session ends with the process.
  it("leaves no prepared statement nor lock_timeout on the server connections", function()
    -- every server connection of the pool (4) held at once: pid -> state
    local function pool_state()
      local seen, conns = {}, {}
      for i = 1, 4 do conns[i] = quay.open(url) end
      local function hold(i)
        if i > #conns then return end
        conns[i]:transaction(function()
          local c = conns[i]
          local pid = c:rows("SELECT pg_backend_pid() AS p")[1].p
          seen[pid] = c:rows("SELECT count(*) AS n FROM pg_prepared_statements")[1].n
            .. "/" .. c:rows("SHOW lock_timeout")[1].lock_timeout
          hold(i + 1)
        end)
      end
      hold(1)
      for _, c in ipairs(conns) do c:close() end
      return seen
    end
    local before = helper.pooled and pool_state() or {}
    write(models, V1)
    assert.equal(0, (mig("make", models, "initial", "--db", url)))
    local st, _, err = mig("apply", models, "--db", url)
    assert.equal(0, st, err)
    assert.equal(0, (quay_cmd("inspect", url)))
    if not helper.pooled then return end
    for pid, state in pairs(pool_state()) do
      assert.equal(before[pid] or "0/0", state, "server connection " .. pid)
    end
  end)
end)
