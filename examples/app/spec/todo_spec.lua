-- examples/app/spec/todo_spec.lua: run with `quay test` from examples/app.
local quay = require("quay")
local todo = require("todo")

describe("todo", function()
  local db, M
  before_each(function()
    db = quay.open("sqlite::memory:")
    M = todo.setup(db)
  end)
  after_each(function() db:close() end)

  it("runs under Lua 5.4 with Quay loaded", function()
    assert.equal("Lua 5.4", _VERSION)
    assert.is_string(quay.version)
  end)

  it("lists the open items of a list", function()
    local home = M.List:create { name = "home" }
    M.Item:create { title = "water plants", list = home }
    M.Item:create { title = "call mum", list = home, done = true }
    M.Item:create { title = "buy milk", list = home }
    assert.same({ "buy milk", "water plants" }, todo.open_titles(home))
  end)

  it("deletes a list's items with it", function()
    local work = M.List:create { name = "work" }
    M.Item:create { title = "report", list = work }
    local ok, err = pcall(M.List.create, M.List, { name = "work" })
    assert.is_false(ok)
    assert.equal("integrity", err.code)
    assert.equal(1, work:delete().Item)
    assert.equal(0, M.Item:count())
  end)
end)
