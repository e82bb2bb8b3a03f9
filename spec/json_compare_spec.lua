-- A value inside a JSON document compared by its JSON type as well as its
-- value (reference.md "More field types": path lookups data__key = v),
-- on both backends alike: true is not the number 1, false not 0 (SQLite's
-- json_extract gives 1 / 0 for them; difftest known.lua K18).
local helper = require("spec.helper")
local quay = helper.quay

describe("json path lookups compare JSON types", function()
  local db, Doc

  before_each(function()
    db = helper.open()
    Doc = db:model("Doc", { name = quay.string(), data = quay.json { null = true } })
    db:create_tables()
    Doc:create { name = "t", data = { v = true } }
    Doc:create { name = "f", data = { v = false } }
    Doc:create { name = "one", data = { v = 1 } }
    Doc:create { name = "zero", data = { v = 0 } }
    Doc:create { name = "s1", data = { v = "1" } }
    Doc:create { name = "none", data = { w = 1 } }
  end)

  after_each(function() db:close() end)

  local function names(qs)
    local t = qs:order_by("name"):pluck("name")
    return table.concat(t, ",")
  end

  it("a boolean equals only a boolean, a number only a number", function()
    assert.equal("t", names(Doc:filter { data__v = true }))
    assert.equal("f", names(Doc:filter { data__v = false }))
    assert.equal("one", names(Doc:filter { data__v = 1 }))
    assert.equal("zero", names(Doc:filter { data__v = 0 }))
    assert.equal("s1", names(Doc:filter { data__v = "1" }))
  end)

  it("ne, exclude, in and not_in follow the same equality", function()
    assert.equal("f,none,one,s1,zero", names(Doc:filter { data__v__ne = true }))
    assert.equal("f,none,s1,t,zero", names(Doc:exclude { data__v = 1 }))
    assert.equal("one,t", names(Doc:filter { data__v__in = { true, 1 } }))
    assert.equal("f,zero", names(Doc:filter { data__v__in = { false, 0 } }))
    assert.equal("f,none,one,s1", names(Doc:filter { data__v__not_in = { true, 0 } }))
  end)

  it("a long in list (past the inline limit) too", function()
    local list = { true }
    for i = 2, 100 do list[i] = 1000 + i end
    assert.equal("t", names(Doc:filter { data__v__in = list }))
    list[1] = 1
    assert.equal("one", names(Doc:filter { data__v__in = list }))
  end)
end)
