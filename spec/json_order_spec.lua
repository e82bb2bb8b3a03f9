-- Ordered lookups on a value inside a JSON document (lt, lte, gt, gte,
-- between) compare only a value of the comparand's JSON kind: a number
-- with a number, a string with a string, a boolean with a boolean (false
-- before true); a value of another kind does not match, as NULL
-- (reference.md "More field types", JSON).  SQLite ordered any text above
-- any number, PostgreSQL's jsonb ordered the kinds its own way.  And a
-- json field as a whole has no order: order_by, values + order_by and
-- distinct on it raise bad_lookup, as quay.max does.
local helper = require("spec.helper")
local quay = helper.quay

describe("ordered json path lookups", function()
  local db, Doc

  before_each(function()
    db = helper.open()
    Doc = db:model("Doc", { name = quay.string(), data = quay.json { null = true } })
    db:create_tables()
    Doc:create { name = "n0", data = { v = 0 } }
    Doc:create { name = "n1", data = { v = 1 } }
    Doc:create { name = "n15", data = { v = 1.5 } }
    Doc:create { name = "s1", data = { v = "1" } }
    Doc:create { name = "sb", data = { v = "b" } }
    Doc:create { name = "t", data = { v = true } }
    Doc:create { name = "f", data = { v = false } }
    Doc:create { name = "arr", data = { v = { 1, 2 } } }
    Doc:create { name = "obj", data = { v = { w = 2 } } }
    Doc:create { name = "jnull", data = { v = quay.null } }
    Doc:create { name = "none", data = { w = 1 } }
    Doc:create { name = "sqlnull", data = quay.null }
  end)

  after_each(function() db:close() end)

  local function names(qs)
    return table.concat(qs:order_by("name"):pluck("name"), ",")
  end

  it("a number compares only with numbers, numerically", function()
    assert.equal("n1,n15", names(Doc:filter { data__v__gte = 1 }))
    assert.equal("n15", names(Doc:filter { data__v__gt = 1 }))
    assert.equal("n0,n1", names(Doc:filter { data__v__lt = 1.5 }))
    assert.equal("n0", names(Doc:filter { data__v__lte = 0 }))
    assert.equal("n1,n15", names(Doc:filter { data__v__between = { 0.5, 2 } }))
  end)

  it("a string compares only with strings", function()
    assert.equal("s1,sb", names(Doc:filter { data__v__gt = "" }))
    assert.equal("sb", names(Doc:filter { data__v__gt = "1" }))
    assert.equal("s1", names(Doc:filter { data__v__lt = "a" }))
    assert.equal("s1,sb", names(Doc:filter { data__v__between = { "0", "c" } }))
  end)

  it("a boolean compares only with booleans, false before true", function()
    assert.equal("t", names(Doc:filter { data__v__gt = false }))
    assert.equal("f", names(Doc:filter { data__v__lt = true }))
    assert.equal("f,t", names(Doc:filter { data__v__gte = false }))
  end)

  it("bounds of two kinds match nothing", function()
    assert.equal("", names(Doc:filter { data__v__between = { 0, "z" } }))
  end)

  it("exclude keeps the values of another kind, as NULL", function()
    assert.equal("arr,f,jnull,n0,n1,none,obj,s1,sb,sqlnull,t",
                 names(Doc:exclude { data__v__gt = 1 }))
    assert.equal("arr,f,jnull,n0,n1,n15,none,obj,s1,sqlnull,t",
                 names(Doc:exclude { data__v__gt = "a" }))
  end)

  it("text lookups do not apply inside JSON", function()
    for _, lk in ipairs { "contains", "icontains", "startswith", "endswith", "iexact" } do
      local err = helper.raises("bad_lookup", function()
        return Doc:filter { ["data__v__" .. lk] = "1" }:count()
      end)
      helper.mentions(err, "data__v__" .. lk)
    end
  end)
end)

describe("a json field has no order", function()
  local db, Doc

  before_each(function()
    db = helper.open()
    Doc = db:model("Doc", { name = quay.string(), data = quay.json { null = true } })
    db:create_tables()
    Doc:create { name = "a", data = { v = 1 } }
    Doc:create { name = "b", data = "x" }
  end)

  after_each(function() db:close() end)

  local function no_order(name, fn)
    local err = helper.raises("bad_lookup", fn)
    helper.mentions(err, name, "json", "order")
  end

  it("order_by of a json field raises bad_lookup, as quay.max does", function()
    no_order("data", function() return Doc:order_by("data"):all() end)
    no_order("data", function() return Doc:order_by("name", "-data"):all() end)
    no_order("data", function() return Doc:order_by(quay.F("data"):desc()):all() end)
    no_order("data", function() return Doc:values("data"):order_by("data"):all() end)
    no_order("m", function() return Doc:values { m = quay.F("data") }:order_by("m"):all() end)
    no_order("m", function() return Doc:annotate { m = quay.F("data") }:order_by("m"):all() end)
    no_order("data", function() return Doc:aggregate { m = quay.max("data") } end)
  end)

  it("other fields still order", function()
    assert.equal("b", Doc:order_by("-name"):first().name)
  end)
end)
