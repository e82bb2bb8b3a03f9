-- Write paths: mismatches found by the randomized write tester
-- (test/difftest/writes.lua), each reduced to its smallest form.
local helper = require("spec.helper")
local quay = helper.quay

describe("Write paths (found by test/difftest/writes.lua)", function()
  local db, Owner, Item
  before_each(function()
    db = helper.open()
    Owner = db:model("Owner", {
      name = quay.string { max = 8 },
      score = quay.integer { default = 0 },
      data = quay.json { null = true },
    })
    Item = db:model("Item", {
      owner = quay.belongs_to("Owner", { on_delete = quay.CASCADE, related_name = "items" }),
      ref = quay.belongs_to("Owner", { null = true, on_delete = quay.SET_NULL, related_name = "refs" }),
      label = quay.string { max = 10 },
      n = quay.integer { null = true },
      qty = quay.decimal { digits = 6, places = 3, null = true },
      unique_together = { { "owner", "label" } },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)
  it("create, new, bulk_create, upsert, update_or_create and assignment take a relation with a key", function()
    local a = Owner:create { name = "a" }
    local b = Owner:create { name = "b" }
    local i1 = Item:create { owner = a.id, label = "x" }
    assert.equal(a.id, i1.owner_id)
    assert.equal(a, i1.owner)
    local i2 = Item:new { owner = a.id, ref = b.id, label = "y" }
    i2:save()
    assert.equal(b.id, Item:find(i2.id).ref_id)
    local rs = Item:bulk_create { { owner = b.id, label = "z" } }
    assert.equal(b.id, Item:find(rs[1].id).owner_id)
    local up = Item:upsert({ { owner = a.id, label = "x", n = 5 } }, { conflict = { "owner", "label" } })
    assert.equal(i1.id, up[1].id)
    assert.equal(5, Item:find(i1.id).n)
    local u, created = Item:update_or_create({ owner = a.id, label = "y" }, { ref = a.id })
    assert.is_false(created)
    assert.equal(a.id, Item:find(u.id).ref_id)
    i1.owner = b.id
    assert.equal(b, i1.owner)                   -- the new target loads
    i1:save()
    assert.equal(b.id, Item:find(i1.id).owner_id)
    helper.raises("integrity", Item.create, Item, { owner = 999999, label = "w" })
    local err = helper.raises("validation", Item.create, Item, { owner = "abc", label = "w" })
    helper.mentions(err, "Item")
    assert.equal(3, Item:count())
  end)

  it("records hold integers as stored: 3.0 given to an integer field reads 3", function()
    local o = Owner:create { name = "a", score = 3.0 }
    assert.equal("integer", math.type(o.score))
    local n = Owner:new { name = "b", score = 4.0 }
    n:save()
    assert.equal("integer", math.type(n.score))
    local rs = Owner:bulk_create { { name = "c", score = 5.0 } }
    assert.equal("integer", math.type(rs[1].score))
    local it = Item:create { owner = o, label = "x", n = 7.0 }
    assert.equal("integer", math.type(it.n))
    assert.same({}, o:changed())
    assert.same({}, rs[1]:changed())
  end)

  it("bulk_update stores json documents as save does and leaves the records clean", function()
    local a = Owner:create { name = "a" }
    local b = Owner:create { name = "b" }
    a.data = { k = 1, list = { 1, 2 } }
    b.data = "text"
    assert.equal(2, Owner:bulk_update({ a, b }, { "data" }))
    assert.same({ k = 1, list = { 1, 2 } }, Owner:find(a.id).data)
    assert.equal("text", Owner:find(b.id).data)
    assert.same({}, a:changed())
    assert.same({}, b:changed())
  end)

  it("bulk_update validates every record, also one whose row comes again later", function()
    local a = Owner:create { name = "a" }
    local r1, r2 = Owner:find(a.id), Owner:find(a.id)
    r1.name, r2.name = "much too long", "ok"
    local err = helper.raises("validation", Owner.bulk_update, Owner, { r1, r2 }, { "name" })
    helper.mentions(err, "Owner.name")
    r1.name, r2.name = "ok", 5
    helper.raises("validation", Owner.bulk_update, Owner, { r2, r1 }, { "name" })
    assert.equal("a", Owner:find(a.id).name)
  end)

  it("qs:update of a decimal field past its digits raises and writes nothing", function()
    local o = Owner:create { name = "a" }
    local it = Item:create { owner = o, label = "x", n = 999, qty = "999.5" }
    helper.raises("sql", function() return Item:query():update { qty = quay.F("n") + 3 } end)
    helper.raises("sql", function() return Item:query():update { qty = quay.F("qty") * 2 } end)
    helper.raises("sql", function() return Item:query():update { qty = quay.F("n") * -2 } end)
    assert.equal("999.500", Item:find(it.id).qty)
    assert.equal(1, Item:query():update { qty = quay.F("qty") - 999 })
    assert.equal("0.500", Item:find(it.id).qty)
    assert.equal(1, Item:query():update { qty = quay.F("n") * -1 })
    assert.equal("-999.000", Item:find(it.id).qty)
  end)
end)
