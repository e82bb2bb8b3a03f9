-- Decimal arithmetic in SQL (quay.F + - * on decimals) is exact or an
-- error, never a silently rounded float (reference.md "More field
-- types", decimals).  On SQLite, where a decimal is a scaled integer, a
-- scaled result past 64 bits used to become a float (99999999.99 squared
-- read ...8000002.0000); it now raises sql naming the expression, as
-- PostgreSQL's numeric raises on overflow (PostgreSQL computes these
-- exactly).  A decimal divided, or mixed with a float, reads as a float.
local helper = require("spec.helper")
local quay = helper.quay
local F = quay.F

describe("decimal arithmetic in SQL", function()
  local db, P

  before_each(function()
    db = helper.open()
    P = db:model("P", {
      name = quay.string(),
      price = quay.decimal { digits = 10, places = 2 },
      big = quay.decimal { digits = 18, places = 2, null = true },
    })
    db:create_tables()
    P:create { name = "a", price = "99999999.99", big = "9999999999999999.99" }
    P:create { name = "b", price = "1.50", big = "-9999999999999999.99" }
  end)

  after_each(function() db:close() end)

  local function ann(e, name)
    return P:filter { name = name or "a" }:annotate { x = e }:pluck("x")[1]
  end

  it("is exact within the 64-bit scaled integers on both backends", function()
    assert.equal("19999999999999999.98", ann(F("big") + F("big")))
    assert.equal("-19999999999999999.98", ann(F("big") + F("big"), "b"))
    assert.equal("0.00", ann(F("big") - F("big")))
    assert.equal("2.2500", ann(F("price") * F("price"), "b"))
  end)

  local function past_64(fn, name)
    if helper.is_pg then return fn() end
    local err = helper.raises("sql", fn)
    helper.mentions(err, name or "price")
  end

  it("past 64 bits scaled: exact on PostgreSQL, sql naming it on SQLite", function()
    local v = past_64(function() return ann(F("price") * F("price")) end)
    if helper.is_pg then assert.equal("9999999998000000.0001", v) end
    v = past_64(function()
      return P:filter { big__lt = F("price") * F("price") * 1000 }:count()
    end)
    if helper.is_pg then assert.equal(2, v) end
    v = past_64(function() return ann(F("big") * 10 + F("price")) end, "big")
    if helper.is_pg then assert.equal("100000000099999999.89", v) end
  end)

  it("a sum with NULL is NULL, however large the other side scaled", function()
    local Q = db:model("Q", { d = quay.decimal { digits = 10, places = 2, null = true },
                              n = quay.integer { null = true } })
    db:create_tables()
    local big = math.maxinteger - 5       -- times 100 it passes 64 bits
    Q:create { n = big }
    local function x(e) return Q:annotate { x = e }:pluck("x")[1] end
    assert.is_nil(x(F("d") + F("n")))
    assert.is_nil(x(F("n") - F("d")))
    assert.is_nil(x(F("d") * F("d") + F("n")))
    assert.equal(0, Q:filter { d__lt = F("n") - F("d") }:count())
    assert.equal(1, Q:filter { id = Q:first().id }:update { d = F("d") - F("n") })
    assert.is_nil(Q:first().d)
    -- with a value on both sides it is past 64 bits again (SQLite)
    Q:filter { n = big }:update { d = 1 }
    past_64(function() return x(F("d") + F("n")) end, "n")
  end)

  it("an update storing such an expression writes nothing on SQLite", function()
    local n = past_64(function()
      return P:filter { name = "a" }:update { big = F("price") * F("price") }
    end)
    local big = P:filter { name = "a" }:pluck("big")[1]
    if helper.is_pg then
      assert.equal(1, n)
      assert.equal("9999999998000000.00", big)
    else
      assert.equal("9999999999999999.99", big)
    end
  end)

  it("a decimal divided or mixed with a float reads as a float", function()
    local v = ann(F("price") / 2, "b")
    assert.equal("float", math.type(v))
    assert.equal(0.75, v)
    v = ann(F("price") * 1.5, "b")
    assert.equal("float", math.type(v))
    assert.equal(2.25, v)
  end)
end)
