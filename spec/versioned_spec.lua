-- Versioned migrations (reference.md "Schema evolution"): `quay migrate
-- make | plan | apply | status`, checksums in quay_migrations, data
-- migrations in the same transaction, the refusals that name the file and
-- the fix, and two processes applying at once.
local helper = require("spec.helper")
local quay = helper.quay

assert(os.getenv("QUAY_BUILD_DIR"), "QUAY_BUILD_DIR (spec/run_busted.sh sets it)")
local quay_bin = helper.quay_bin
local shquote, slurp, write = helper.shquote, helper.slurp, helper.write_file
local quay_cmd = helper.quay_cmd

local V1 = [[
local quay = require("quay")
return function(db)
  local M = {}
  M.User = db:model("User", { name = quay.string() })
  M.Post = db:model("Post", { title = quay.string(), author = quay.belongs_to("User") })
  return M
end
]]

local V2 = [[
local quay = require("quay")
return function(db)
  local M = {}
  M.User = db:model("User", { name = quay.string() })
  M.Post = db:model("Post", {
    title = quay.text(),                                    -- string -> text
    author = quay.belongs_to("User"),
    editor = quay.belongs_to("User", { null = true, related_name = "edited" }),
    views = quay.integer { default = 0 },
  })
  return M
end
]]

local dir, url, dbpath
before_each(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shquote(dir)))
  if helper.is_pg then
    helper.open():close()
    url = helper.url
  else
    dbpath = dir .. "/app.db"
    url = "sqlite:" .. dbpath
  end
end)
after_each(function()
  os.execute("rm -rf " .. shquote(dir))
end)

local function open() return quay.open(url) end

describe("quay migrate", function()
  it("makes, plans, applies and reports migration files", function()
    write(dir .. "/models.lua", V1)
    local st, out, err = quay_cmd("migrate", "make", dir .. "/models.lua", "initial", "--db", url)
    assert.equal(0, st, err)
    assert.is_truthy(out:find("0001_initial.lua", 1, true))
    local file = slurp(dir .. "/migrations/0001_initial.lua")
    assert.is_truthy(file:find('op = "create_table"', 1, true))
    st, out = quay_cmd("migrate", "status", dir .. "/models.lua", "--db", url)
    assert.equal(0, st)
    assert.is_truthy(out:find("pending%s+0001_initial"))
    st, out = quay_cmd("migrate", "plan", dir .. "/models.lua", "--db", url)
    assert.equal(0, st)
    assert.is_truthy(out:find("CREATE TABLE", 1, true))
    st, out, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    assert.is_truthy(out:find("applied 0001_initial", 1, true))
    -- nothing left to make
    st, out = quay_cmd("migrate", "make", dir .. "/models.lua", "again", "--db", url)
    assert.equal(0, st)
    assert.is_truthy(out:find("no changes", 1, true))
    -- version 2: a rebuild on SQLite, new columns
    write(dir .. "/models.lua", V2)
    st, out, err = quay_cmd("migrate", "make", dir .. "/models.lua", "editor", "--db", url)
    assert.equal(0, st, err)
    st, out, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    assert.is_truthy(out:find("applied 0002_editor", 1, true))
    st, out = quay_cmd("migrate", "status", dir .. "/models.lua", "--db", url)
    assert.is_truthy(out:find("applied%s+0001_initial"))
    assert.is_truthy(out:find("applied%s+0002_editor"))
    assert.is_truthy(out:find("matches the models", 1, true))
    local db = open()
    local applied = db:applied_migrations()
    assert.equal(2, #applied)
    assert.equal("0001_initial", applied[1].name)
    assert.equal(quay.checksum and quay.checksum(file) or require("quay.core").checksum(file),
                 applied[1].checksum)
    -- the table Quay keeps its books in is not part of the schema
    for _, t in ipairs(db:inspect().tables) do assert.are_not.equal("quay_migrations", t.name) end
    db:close()
  end)

  it("refuses a changed or missing applied file, naming it and the fix", function()
    write(dir .. "/models.lua", V1)
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "initial", "--db", url)))
    assert.equal(0, (quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)))
    local path = dir .. "/migrations/0001_initial.lua"
    local text = slurp(path)
    write(path, text .. "-- an edit\n")
    local st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("0001_initial.lua", 1, true))
    assert.is_truthy(err:find("changed", 1, true) and err:find("restore", 1, true))
    assert.is_truthy(err:find("(migration)", 1, true))
    os.remove(path)
    st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("0001_initial", 1, true) and err:find("missing", 1, true))
    assert.is_truthy(err:find("(migration)", 1, true))
  end)

  it("refuses a model script that does not load, naming it", function()
    write(dir .. "/models.lua", "return function(db) db:model('X', { ")   -- syntax error
    local st, _, err = quay_cmd("migrate", "status", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("models.lua", 1, true) and err:find("(migration)", 1, true))
    write(dir .. "/models.lua", "return 42")
    st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("declare(db)", 1, true))
    write(dir .. "/models.lua", "return function(db) db:model('X', { y = 1 }) end")
    st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("models.lua", 1, true) and err:find("(migration)", 1, true))
    st = quay_cmd("migrate", "bogus", dir .. "/models.lua", "--db", url)
    assert.equal(2, st)
  end)

  it("writes destructive steps only with --allow-drop", function()
    write(dir .. "/models.lua", V2)
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "initial", "--db", url)))
    assert.equal(0, (quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)))
    write(dir .. "/models.lua", V1)                     -- drops editor and views
    local st, _, err = quay_cmd("migrate", "make", dir .. "/models.lua", "back", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("--allow-drop", 1, true))
    st, _, err = quay_cmd("migrate", "make", dir .. "/models.lua", "back", "--db", url, "--allow-drop")
    assert.equal(0, st, err)
    assert.equal(0, (quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)))
  end)

  it("runs a data migration in the file's transaction", function()
    write(dir .. "/models.lua", V1)
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "initial", "--db", url)))
    -- A hand-written file: a step and a data migration that fails.
    local file = dir .. "/migrations/0002_fill.lua"
    write(file, [[
return {
  steps = {
    { op = "create_table", table = "notes", sql = { "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" } },
  },
  data = function(db)
    db:execute("INSERT INTO notes (id, body) VALUES (1, 'from data')")
    error("the data step fails")
  end,
}
]])
    local st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(1, st)
    assert.is_truthy(err:find("the data step fails", 1, true))
    local db = open()
    assert.equal(1, #db:applied_migrations())           -- 0001 only
    local names = {}
    for _, t in ipairs(db:inspect().tables) do names[t.name] = true end
    assert.is_nil(names.notes)                           -- the step rolled back too
    db:close()
    write(file, [[
return {
  steps = {
    { op = "create_table", table = "notes", sql = { "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)" } },
  },
  data = function(db)
    db:execute("INSERT INTO notes (id, body) VALUES (1, 'from data')")
    local U = db:model("User")
    U:create { name = "made by the data migration" }
  end,
}
]])
    st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    db = open()
    assert.equal("from data", db:rows("SELECT body FROM notes")[1].body)
    assert.equal(1, #db:rows("SELECT id FROM users"))
    db:close()
  end)

  it("lets two processes apply at once: one waits, no step runs twice", function()
    write(dir .. "/models.lua", V1)
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "initial", "--db", url)))
    write(dir .. "/migrations/0002_slow.lua", [[
return {
  steps = {
    { op = "create_table", table = "log", sql = { "CREATE TABLE log (who TEXT)" } },
  },
  data = function(db)
    local t = os.clock()
    while os.clock() - t < 0.4 do end                   -- hold the lock a while
    db:execute("INSERT INTO log (who) VALUES ('data')")
  end,
}
]])
    local args = table.concat({ shquote(quay_bin), "migrate", "apply",
      shquote(dir .. "/models.lua"), "--db", shquote(url) }, " ")
    local cmd = ("(%s >%s/a.out 2>&1; echo $? >%s/a.st) & "
      .. "(%s >%s/b.out 2>&1; echo $? >%s/b.st) & wait"):format(
      args, dir, dir, args, dir, dir)
    assert(os.execute(cmd))
    assert.equal("0", slurp(dir .. "/a.st"):match("%d+"), slurp(dir .. "/a.out"))
    assert.equal("0", slurp(dir .. "/b.st"):match("%d+"), slurp(dir .. "/b.out"))
    local db = open()
    assert.equal(2, #db:applied_migrations())
    assert.equal(1, #db:rows("SELECT who FROM log"))
    db:close()
    local both = slurp(dir .. "/a.out") .. slurp(dir .. "/b.out")
    local n = 0
    for _ in both:gmatch("applied 0002_slow") do n = n + 1 end
    assert.equal(1, n)
  end)
end)
