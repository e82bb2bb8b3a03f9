-- reference.md "Model behaviour" (Types) and "Details the second part fixes"
-- (Decimals, Dates, UUIDs): quay.date, quay.decimal, quay.json, quay.uuid,
-- composite indexes and what describe() reports, on both backends.  Bad
-- values raise validation naming model and field, and nothing is written.
local helper = require("spec.helper")
local quay = helper.quay

--- The rows of hand-written SQL as a list of tables.
local function rows(db, sql, params) return db:rows(sql, params or {}) end

--- The array part of a result (pluck results also carry n).
local function list(t)
  local out = {}
  for i = 1, #t do out[i] = t[i] end
  return out
end

describe("quay.date", function()
  local db, Trip
  before_each(function()
    db = helper.open()
    Trip = db:model("Trip", {
      name = quay.string(),
      on = quay.date { null = true, index = true },
    })
    db:create_tables()
    Trip:create { name = "a", on = "2024-02-29" }
    Trip:create { name = "b", on = "2023-12-31" }
    Trip:create { name = "c", on = "2024-03-01" }
  end)
  after_each(function() db:close() end)

  it("stores and reads YYYY-MM-DD", function()
    local t = Trip:filter { name = "a" }:first()
    assert.equal("2024-02-29", t.on)
    assert.same({ "b", "a", "c" }, list(Trip:order_by("on"):pluck("name")))
  end)

  it("refuses impossible and malformed dates naming model and field; nothing is written", function()
    for _, bad in ipairs { "2023-02-29", "2024-02-30", "2024-13-01", "0000-01-01",
                           "2024-1-01", "2024-01-01 00:00:00", "yesterday" } do
      local err = helper.raises("validation", Trip.create, Trip, { name = "x", on = bad })
      assert.equal("Trip", err.model)
      assert.equal("on", err.field)
      helper.mentions(err, "Trip.on")
    end
    helper.raises("validation", Trip.create, Trip, { name = "x", on = 20240101 })
    assert.equal(3, Trip:count())
    local err = helper.raises("validation", function()
      return Trip:filter { on__gt = "2024-02-30" }:all()
    end)
    assert.equal("on", err.field)
  end)

  it("filters by comparison and by __year, __month and __day", function()
    assert.same({ "a", "c" }, list(Trip:filter { on__gte = "2024-01-01" }:order_by("name"):pluck("name")))
    assert.same({ "a", "c" }, list(Trip:filter { on__year = 2024 }:order_by("name"):pluck("name")))
    assert.same({ "a" }, list(Trip:filter { on__month = 2 }:pluck("name")))
    assert.same({ "c" }, list(Trip:filter { on__day = 1 }:pluck("name")))
    assert.same({ "a" }, list(Trip:filter { on__in = { "2024-02-29", "2020-01-01" } }:pluck("name")))
  end)

  it("truncates with quay.trunc to a date", function()
    local got = {}
    for _, r in ipairs(Trip:values { m = quay.trunc("month", "on"), y = quay.trunc("year", "on"),
                                     d = quay.trunc("day", "on") }:order_by("m"):all()) do
      got[#got + 1] = r.m .. "|" .. r.y .. "|" .. r.d
    end
    assert.same({ "2023-12-01|2023-01-01|2023-12-31", "2024-02-01|2024-01-01|2024-02-29",
                  "2024-03-01|2024-01-01|2024-03-01" }, got)
  end)
end)

describe("quay.decimal", function()
  local db, Item
  before_each(function()
    db = helper.open()
    Item = db:model("Item", {
      name = quay.string(),
      price = quay.decimal { digits = 10, places = 2 },
      cost = quay.decimal { digits = 8, places = 3, null = true },
      qty = quay.integer { default = 1 },
      fee = quay.decimal { digits = 6, places = 2, default = "1.5" },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("reads as a string with exactly places decimals", function()
    local r = Item:create { name = "a", price = "12.5" }
    assert.equal("12.50", r.price)
    assert.equal("1.50", r.fee)
    assert.equal("12.50", Item:find(r.id).price)
    assert.equal("1.50", Item:find(r.id).fee)
    local cases = {
      { "7", "7.00" }, { 7, "7.00" }, { "+7.1", "7.10" }, { "-0.5", "-0.50" },
      { "-0", "0.00" }, { "007.00", "7.00" }, { ".5", "0.50" }, { "5.", "5.00" },
      { 0.1, "0.10" }, { -2.25, "-2.25" }, { 12345678.99, "12345678.99" },
      { "99999999.99", "99999999.99" }, { "-99999999.99", "-99999999.99" },
    }
    for _, c in ipairs(cases) do
      local x = Item:create { name = "c", price = c[1] }
      assert.equal(c[2], x.price, tostring(c[1]))
      assert.equal(c[2], Item:find(x.id).price, tostring(c[1]))
    end
  end)

  it("refuses what it would have to round, and non-numbers, naming model and field", function()
    local bad = { "1.234", "1.2345", "abc", "1e3", " 1", "1 ", "", "-", ".", "1.2.3",
                  "123456789.00", 0.125, 1 / 3, 0 / 0, math.huge, true, { 1 } }
    for _, v in ipairs(bad) do
      local err = helper.raises("validation", Item.create, Item, { name = "x", price = v })
      assert.equal("Item", err.model)
      assert.equal("price", err.field)
    end
    assert.equal(0, Item:count())
    local err = helper.raises("validation", function()
      return Item:filter { price = "1.001" }:all()
    end)
    assert.equal("price", err.field)
  end)

  it("sums, compares and orders exactly", function()
    for i = 1, 1000 do Item:create { name = "n" .. (i % 3), price = "0.10" } end
    local s = Item:aggregate { s = quay.sum("price"), mn = quay.min("price"), mx = quay.max("price"),
                                 a = quay.avg("price"), c = quay.count() }
    assert.equal("100.00", s.s)
    assert.equal("0.10", s.mn)
    assert.equal("0.10", s.mx)
    assert.equal("number", type(s.a))
    assert.near(0.1, s.a, 1e-12)
    Item:create { name = "big", price = "99999999.99" }
    Item:create { name = "neg", price = "-99999999.99" }
    Item:create { name = "tiny", price = "0.01" }
    assert.same({ "neg", "tiny" }, list(Item:order_by("price"):limit(2):pluck("name")))
    assert.same({ "big" }, list(Item:filter { price__gt = "99999999.98" }:pluck("name")))
    assert.same({ "neg" }, list(Item:filter { price__lt = -99999999 }:pluck("name")))
    assert.same({ "tiny" }, list(Item:filter { price = 0.01 }:pluck("name")))
    assert.equal(1000, Item:filter { price__between = { "0.05", "0.1" } }:count())
    assert.equal("100.01", Item:aggregate { s = quay.sum("price") }.s)
  end)

  it("gives the same SUM as hand-written SQL over the same rows", function()
    -- cents chosen so that a float sum would drift
    local cents, want = {}, 0
    for i = 1, 500 do
      local c = (i * 7919) % 100000 - 30000
      cents[i] = c
      want = want + c
      Item:create { name = "r", price = string.format("%s%d.%02d", c < 0 and "-" or "",
                                                       math.abs(c) // 100, math.abs(c) % 100) }
    end
    local got = Item:aggregate { s = quay.sum("price") }.s
    local function fmt(c)
      return string.format("%s%d.%02d", c < 0 and "-" or "", math.abs(c) // 100, math.abs(c) % 100)
    end
    assert.equal(fmt(want), got)
    -- the database's own sum of the stored column
    local r = rows(db, helper.is_pg and "SELECT CAST(SUM(price) AS TEXT) AS s FROM items"
                                     or "SELECT SUM(price) AS s FROM items")[1]
    if helper.is_pg then
      assert.equal(fmt(want), r.s)             -- NUMERIC(10, 2)
    else
      assert.equal(want, r.s)                  -- scaled integers: cents
    end
    -- grouped sums too
    local by = {}
    for _, v in ipairs(Item:values { "name" }:annotate { t = quay.sum("price") }:all()) do
      by[v.name] = v.t
    end
    assert.equal(fmt(want), by.r)
  end)

  it("keeps arithmetic exact where it can: + - and * with integers and decimals", function()
    Item:create { name = "a", price = "12.50", cost = "0.125", qty = 3 }
    local v = Item:values {
      twice = quay.F("price") * 2,
      plus = quay.F("price") + 1,
      minus = quay.F("price") - quay.F("cost"),
      total = quay.F("price") * quay.F("qty"),
      sq = quay.F("price") * quay.F("price"),
      half = quay.F("price") / 4,
      f = quay.F("price") * 1.5,
    }:first()
    assert.equal("25.00", v.twice)
    assert.equal("13.50", v.plus)
    assert.equal("12.375", v.minus)
    assert.equal("37.50", v.total)
    assert.equal("156.2500", v.sq)
    assert.equal(3.125, v.half)
    assert.equal(18.75, v.f)
    assert.same({ "a" }, list(Item:filter { price__gt = quay.F("cost") }:pluck("name")))
    assert.same({}, list(Item:filter { cost__gt = quay.F("price") }:pluck("name")))
    assert.same({ "a" }, list(Item:filter { price__gt = quay.F("qty") }:pluck("name")))
    assert.same({ "a" }, list(Item:filter { price = quay.F("price") * 1 }:pluck("name")))
    assert.same({ "a" }, list(Item:annotate { t = quay.F("price") * quay.F("qty") }
                                :filter { t = "37.5" }:pluck("name")))
  end)

  it("aggregates with defaults, filters groups, and updates", function()
    assert.equal("0.00", Item:aggregate { s = quay.sum("price", { default = 0 }) }.s)
    assert.equal("2.50", Item:aggregate { s = quay.max("price", { default = "2.5" }) }.s)
    Item:create { name = "a", price = "3.10" }
    Item:create { name = "a", price = "4.20" }
    Item:create { name = "b", price = "1.00" }
    local g = Item:values { "name" }:annotate { t = quay.sum("price") }:filter { t__gt = "7.2" }:all()
    assert.equal(1, #g)
    assert.equal("7.30", g[1].t)
    assert.equal(2, Item:filter { name = "a" }:update { price = "2.5" })
    assert.equal("6.00", Item:aggregate { s = quay.sum("price") }.s)
    local batch = {}
    for i = 1, 3 do batch[i] = { name = "bulk", price = i / 4 } end
    Item:bulk_create(batch)
    assert.same({ "0.25", "0.50", "0.75" }, list(Item:filter { name = "bulk" }:order_by("price"):pluck("price")))
    -- an __in list longer than the inline limit goes through the array form
    local many = {}
    for i = 1, 100 do many[i] = string.format("%d.25", i) end
    many[101] = "0.75"
    assert.same({ "0.75" }, list(Item:filter { price__in = many }:pluck("price")))
  end)

  it("is declared with digits (1 to 18) and places (0 to digits)", function()
    helper.raises("declaration", db.model, db, "D1", { p = quay.decimal() })
    helper.raises("declaration", db.model, db, "D2", { p = quay.decimal { digits = 19, places = 2 } })
    helper.raises("declaration", db.model, db, "D3", { p = quay.decimal { digits = 4, places = 5 } })
    helper.raises("declaration", db.model, db, "D4", { p = quay.integer { digits = 4, places = 1 } })
    helper.raises("declaration", db.model, db, "D5",
                  { p = quay.decimal { digits = 4, places = 1, default = "1.25" } })
    local D = db:model("D6", { p = quay.decimal { digits = 18, places = 0 } })
    db:create_tables()
    assert.equal("999999999999999999", D:create { p = "999999999999999999" }.p)
    helper.raises("bad_lookup", function() return Item:aggregate { s = quay.sum("name") } end)
  end)
end)

describe("quay.json", function()
  local db, Doc
  before_each(function()
    db = helper.open()
    Doc = db:model("Doc", {
      name = quay.string(),
      data = quay.json { null = true },
      meta = quay.json { default = { tags = {} } },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("stores tables, strings, numbers and booleans; a JSON null reads as quay.null", function()
    local values = {
      { a = 1, b = { 1, 2.5, "x", true, false }, c = { d = { e = "deep" } }, n = quay.null },
      "just a string", 42, 2.5, true, false, { 3, 2, 1 }, {}, "ünïcödé ✓",
    }
    for i, v in ipairs(values) do Doc:create { name = "d" .. i, data = v } end
    for i, v in ipairs(values) do
      local got = Doc:filter { name = "d" .. i }:first().data
      if v == quay.null then
        assert.equal(quay.null, got)
      elseif type(v) == "table" then
        assert.same(v, got)
      else
        assert.equal(v, got)
        assert.equal(math.type(v), math.type(got))
      end
    end
    local d1 = Doc:filter { name = "d1" }:first()
    assert.equal(quay.null, d1.data.n)
    assert.equal("deep", d1.data.c.d.e)
    assert.equal("integer", math.type(d1.data.a))
    assert.same({ tags = {} }, d1.meta)
  end)

  it("reads back a float past 64 bits, which jsonb writes as its digits", function()
    local d = Doc:create { name = "big", data = { a = 1e20, b = -1e19, n = 1, s = "12345678901234567890",
                                                  l = { 9223372036854775807, 9.3e18 } } }
    d:refresh()
    assert.equal(1e20, d.data.a)
    assert.equal("float", math.type(d.data.a))
    assert.equal(-1e19, d.data.b)
    assert.equal("integer", math.type(d.data.n))
    assert.equal("12345678901234567890", d.data.s)
    assert.equal(math.maxinteger, d.data.l[1])
    assert.equal("integer", math.type(d.data.l[1]))
    assert.equal(9.3e18, d.data.l[2])
    assert.equal(1e20, Doc:filter { name = "big" }:pluck("data")[1].a)
    assert.equal(1, Doc:filter { data__n = 1 }:count())
  end)

  it("a path into a document outside a filter is bad_lookup saying paths work in filters", function()
    Doc:create { name = "a", data = { k = 1 } }
    for _, call in ipairs {
      function() return Doc:values("data__k"):all() end,
      function() return Doc:order_by("-data__k"):all() end,
      function() return Doc:annotate { v = quay.F("data__k") }:all() end,
      function() return Doc:aggregate { m = quay.max("data__k") } end,
    } do
      local err = helper.raises("bad_lookup", call)
      helper.mentions(err, "data", "json", "'k'", "filters")
    end
    -- a path through a field of another type keeps its own message
    local err = helper.raises("bad_lookup", function() return Doc:values("name__k"):all() end)
    helper.mentions(err, "Doc.name", "'k'")
    assert.is_nil(tostring(err.message):find("json", 1, true))
  end)

  it("finds values by path and by has_key", function()
    Doc:create { name = "a", data = { user = { name = "ann", age = 30, admin = true }, score = 1.5, ["0"] = "zero" } }
    Doc:create { name = "b", data = { user = { name = "bob", age = 25, admin = false }, score = 3 } }
    Doc:create { name = "c", data = { user = { name = "cy" }, list = { "x" }, gone = quay.null } }
    Doc:create { name = "d", data = "a string" }
    Doc:create { name = "e" }
    local function names(cond) return list(Doc:filter(cond):order_by("name"):pluck("name")) end
    assert.same({ "a" }, names { data__user__name = "ann" })
    assert.same({ "a", "b" }, names { data__user__age__gte = 25 })
    assert.same({ "a" }, names { data__user__age__gt = 25 })
    assert.same({ "a" }, names { data__user__admin = true })
    assert.same({ "b" }, names { data__user__admin = false })
    assert.same({ "b" }, names { data__score = 3 })
    assert.same({ "b" }, names { data__score = 3.0 })
    assert.same({ "a" }, names { data__score__lt = 2 })
    assert.same({ "a", "c" }, names { data__user__name__in = { "ann", "cy", "zed" } })
    -- ne is null-safe, as everywhere: rows without the key differ too
    assert.same({ "b", "c", "d", "e" }, names { data__user__name__ne = "ann" })
    assert.same({ "a" }, names { data__0 = "zero" })
    assert.same({ "a", "b", "c" }, names { data__has_key = "user" })
    assert.same({ "a", "b" }, names { data__user__has_key = "age" })
    assert.same({ "c" }, names { data__has_key = "gone" })
    assert.same({}, names { data__list__has_key = "0" })
    assert.same({ "c", "d", "e" }, names { data__user__age__isnull = true })
    -- a JSON null reads as null, as a missing key does
    assert.same({ "a", "b", "c", "d", "e" }, names { data__gone__isnull = true })
    assert.same({ "c" }, names { data__gone__isnull = true, data__has_key = "gone" })
    assert.same({ "a", "b", "c", "d" }, names { data__isnull = false })
    assert.same({ "a", "b", "c" }, names { data__user__name__isnull = false })
  end)

  it("refuses lookups that do not apply inside JSON", function()
    helper.raises("bad_lookup", function() return Doc:filter { data = "x" }:all() end)
    helper.raises("bad_lookup", function() return Doc:filter { data__a__contains = "x" }:all() end)
    helper.raises("bad_lookup", function() return Doc:filter { data__a = quay.F("name") }:all() end)
    helper.raises("bad_lookup", function() return Doc:filter { data__has_key = 5 }:all() end)
    helper.raises("bad_lookup", function() return Doc:filter { ['data__a"b'] = 1 }:all() end)
    helper.raises("bad_lookup", function() return Doc:aggregate { m = quay.max("data") } end)
    helper.raises("bad_lookup", function() return Doc:aggregate { m = quay.sum("data") } end)
    helper.raises("bad_lookup", function() return Doc:filter { data__a = { 1 } }:all() end)
  end)

  it("refuses functions, non-UTF-8 strings and odd tables naming model and field; nothing is written", function()
    local bad = {
      { f = print }, { s = "\xff\xfe" }, "\xff", { ["\xff"] = 1 }, { 1, 2, x = 3 },
      { [1] = 1, [3] = 3 }, { [2.5] = 1 }, { nan = 0 / 0 }, setmetatable({}, {}),
      { co = coroutine.create(print) },
    }
    local deep = {}
    local t = deep
    for _ = 1, 300 do t.x = {}; t = t.x end
    bad[#bad + 1] = deep
    local loop = {}
    loop.self = loop
    bad[#bad + 1] = loop
    for i, v in ipairs(bad) do
      local err = helper.raises("validation", Doc.create, Doc, { name = "x", data = v })
      assert.equal("Doc", err.model, i)
      assert.equal("data", err.field, i)
    end
    assert.equal(0, Doc:count())
    -- a table is a JSON document only for a json field
    local err = helper.raises("validation", Doc.create, Doc, { name = { 1 } })
    assert.equal("name", err.field)
  end)

  it("updates and bulk-creates documents", function()
    local d = Doc:create { name = "a", data = { n = 1 } }
    d.data = { n = 2, list = { "a" } }
    d:save()
    assert.same({ n = 2, list = { "a" } }, Doc:find(d.id).data)
    assert.equal(1, Doc:filter { name = "a" }:update { data = { n = 3 } })
    assert.same({ n = 3 }, Doc:find(d.id).data)
    Doc:bulk_create { { name = "b", data = { k = "v" } }, { name = "c", data = 7 } }
    assert.same({ "b" }, list(Doc:filter { data__k = "v" }:pluck("name")))
    assert.equal(7, Doc:filter { name = "c" }:first().data)
  end)
end)

describe("quay.uuid", function()
  local db, Account, Entry
  before_each(function()
    db = helper.open()
    Account = db:model("Account", {
      id = quay.uuid { primary_key = true },
      name = quay.string(),
      ref = quay.uuid { unique = true, null = true },
    })
    Entry = db:model("Entry", {
      account = quay.belongs_to("Account", { on_delete = quay.CASCADE, related_name = "entries" }),
      note = quay.string(),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  local function is_v7(u)
    return type(u) == "string" and #u == 36 and
           u:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil and
           u == u:lower()
  end

  it("is generated (version 7) when not given, and usable as a primary and foreign key", function()
    local a = Account:create { name = "a" }
    local b = Account:create { name = "b" }
    assert.is_true(is_v7(a.id))
    assert.is_true(is_v7(a.ref))
    assert.are_not.equal(a.id, b.id)
    assert.equal("a", Account:find(a.id).name)
    Entry:create { account = a, note = "x" }
    Entry:create { account = a, note = "y" }
    Entry:create { account_id = b.id, note = "z" }
    assert.same({ "x", "y" }, list(Entry:filter { account = a }:order_by("note"):pluck("note")))
    assert.same({ "z" }, list(Entry:filter { account__name = "b" }:pluck("note")))
    local accts = Account:prefetch_related("entries"):order_by("name"):all()
    assert.equal(2, #accts[1].entries)
    assert.equal(a.id, Entry:select_related("account"):filter { note = "x" }:first().account.id)
    a:delete()
    assert.equal(1, Entry:count())
  end)

  it("is stored in lower case; a malformed UUID raises validation", function()
    local up = "0190A3F2-1B2C-7D4E-8F50-0123456789AB"
    local a = Account:create { id = up, name = "a" }
    assert.equal(up:lower(), a.id)
    assert.equal("a", Account:filter { id = up }:first().name)
    assert.equal("a", Account:find(up:lower()).name)
    for _, bad in ipairs { "x", "0190a3f2-1b2c-7d4e-8f50-0123456789a", "0190a3f21b2c7d4e8f500123456789ab",
                           "0190a3f2-1b2c-7d4e-8f50-0123456789ag", 5 } do
      local err = helper.raises("validation", Account.create, Account, { name = "b", ref = bad })
      assert.equal("Account", err.model)
      assert.equal("ref", err.field)
    end
    helper.raises("validation", function() return Account:filter { ref = "nope" }:all() end)
    assert.equal(1, Account:count())
    -- many keys: the loaders' array parameters carry uuids
    for i = 1, 80 do Entry:create { account = a, note = "n" .. i } end
    assert.equal(80, #Account:prefetch_related("entries"):first().entries)
  end)
end)

describe("Composite indexes and describe()", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  local function index_columns(table_name)
    local out = {}
    if helper.is_pg then
      for _, r in ipairs(rows(db, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ?", { table_name })) do
        out[r.indexname] = r.indexdef
      end
    else
      for _, r in ipairs(rows(db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                              { table_name })) do
        out[r.name] = r.sql
      end
    end
    return out
  end

  it("creates an index over fields and relations, in order", function()
    db:model("Author", { name = quay.string() })
    db:model("Book", {
      title = quay.string(),
      placed = quay.date(),
      author = quay.belongs_to("Author"),
      indexes = { { "author", "placed" }, { "title" } },
    })
    db:create_tables()
    db:create_tables()                      -- idempotent
    local idx = index_columns("books")
    assert.truthy(idx.books_author_id_placed_idx)
    assert.truthy(idx.books_author_id_placed_idx:find('"author_id", "placed"', 1, true) or
                  idx.books_author_id_placed_idx:find("author_id, placed", 1, true))
    assert.truthy(idx.books_title_idx)
    local err = helper.raises("declaration", function()
      db:model("Bad", { a = quay.string(), indexes = { { "a", "nope" } } })
      db:check()
    end)
    helper.mentions(err, "nope")
    helper.raises("declaration", db.model, db, "Bad2", { a = quay.string(), indexes = { "a" } })
  end)

  it("reports defaults, index, precision, auto_now and the model's indexes", function()
    db:model("Shop", {
      name = quay.string { default = "x", index = true },
      price = quay.decimal { digits = 10, places = 2, default = 5 },
      opened = quay.date { null = true, default = quay.null },
      at = quay.datetime { auto_now_add = true },
      seen = quay.datetime { auto_now = true },
      meta = quay.json { default = { a = 1 } },
      fn = quay.integer { default = function() return 1 end },
      unique_together = { { "name", "opened" } },
      indexes = { { "price", "name" } },
    })
    local d = db:describe().Shop
    local f = {}
    for _, x in ipairs(d.fields) do f[x.name] = x end
    assert.equal("x", f.name.default)
    assert.is_true(f.name.index)
    assert.is_false(f.price.index)
    assert.equal("decimal", f.price.type)
    assert.equal(10, f.price.digits)
    assert.equal(2, f.price.places)
    assert.equal("5.00", f.price.default)
    assert.equal(quay.null, f.opened.default)
    assert.equal("date", f.opened.type)
    assert.is_true(f.at.auto_now_add)
    assert.is_nil(f.at.auto_now)
    assert.is_true(f.seen.auto_now)
    assert.same({ a = 1 }, f.meta.default)
    assert.is_nil(f.fn.default)
    assert.is_nil(f.name.digits)
    assert.same({ { "price", "name" } }, d.indexes)
    assert.same({ { "name", "opened" } }, d.unique_together)
  end)
end)

describe("decimals through the set-based writes", function()
  it("upsert returns and bulk_update writes decimals in their places", function()
    local db = helper.open()
    local I = db:model("Item", { sku = quay.string { unique = true },
                                 price = quay.decimal { digits = 10, places = 2 } })
    db:create_tables()
    I:create { sku = "a", price = "1.50" }
    local rows = I:upsert({ { sku = "a", price = "2.25" }, { sku = "b", price = 3.1 } },
                          { conflict = { "sku" } })
    assert.equal("2.25", rows[1].price)
    assert.equal("3.10", rows[2].price)
    local all = I:query():order_by("sku"):all()
    all[1].price, all[2].price = "7.05", "0.5"
    I:bulk_update(all, { "price" })
    local hand = db:rows("SELECT sku FROM items ORDER BY price")
    assert.equal("b", hand[1].sku)
    assert.equal("7.05", I:get { sku = "a" }.price)
    assert.equal("0.50", I:get { sku = "b" }.price)
    assert.equal("7.55", I:aggregate { s = quay.sum("price") }.s)
    db:close()
  end)
end)

describe("ISO 8601 times and version-7 UUIDs, further", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("takes an ISO 8601 time without seconds, and refuses a bare date", function()
    local E = db:model("Ev", { at = quay.datetime() })
    db:create_tables()
    assert.equal("2024-03-01 10:20:00", E:create { at = "2024-03-01T10:20Z" }.at)
    assert.equal("2024-03-01 08:20:00", E:create { at = "2024-03-01T10:20+02:00" }.at)
    assert.equal("2024-02-29 23:30:00", E:create { at = "2024-03-01T01:30+02:00" }.at)
    for _, bad in ipairs { "2024-03-01", "2024-03-01T10:2", "2024-03-01T10:20.5Z", "2024-03-01T10:20:",
                           "2024-03-01 10:20" } do
      local e = helper.raises("validation", function() return E:create { at = bad } end)
      assert.equal("at", e.field)
    end
    assert.equal(3, E:count())
  end)

  it("generates UUIDs that sort in the order they were made", function()
    local T = db:model("Tok", { ref = quay.uuid(), n = quay.integer() })
    db:create_tables()
    local rows = {}
    for i = 1, 2000 do rows[i] = { n = i } end
    local recs = T:bulk_create(rows)
    for i = 2, #recs do
      assert.truthy(recs[i - 1].ref < recs[i].ref, recs[i - 1].ref .. " " .. recs[i].ref)
      assert.equal("7", recs[i].ref:sub(15, 15))              -- version 7
      assert.truthy(("89ab"):find(recs[i].ref:sub(20, 20), 1, true))  -- variant
    end
    -- and the database orders them the same way
    local ns = T:query():order_by("ref"):pluck("n")
    for i = 1, #ns do assert.equal(i, ns[i]) end
  end)
end)

-- SQLite keeps decimals as scaled integers; SUM raised "integer overflow"
-- once the scaled sum passed 64 bits (12 amounts of 9999999999999999.99),
-- where PostgreSQL's numeric sum is exact.
describe("decimal sums past 64 bits", function()
  it("are exact on both backends, in aggregate, groups and annotations", function()
    local db = helper.open()
    local U = db:model("U", { name = quay.string() })
    local A = db:model("A", { v = quay.decimal { digits = 18, places = 2 }, g = quay.integer(),
                              u = quay.belongs_to("U", { related_name = "as" }) })
    db:create_tables()
    local u1, u2 = U:create { name = "x" }, U:create { name = "y" }
    assert.is_nil(A:aggregate { s = quay.sum("v") }.s)
    for i = 1, 12 do A:create { v = "9999999999999999.99", g = i % 2, u = u1 } end
    A:create { v = "-0.05", g = 5, u = u2 }
    assert.equal("119999999999999999.83", A:aggregate { s = quay.sum("v") }.s)
    assert.equal("9999999999999999.99",
      A:filter { v__gt = "0" }:aggregate { s = quay.sum("v", { distinct = true }) }.s)
    local g = A:values("g"):annotate { s = quay.sum("v") }:order_by("g"):all()
    assert.same({ { g = 0, s = "59999999999999999.94" }, { g = 1, s = "59999999999999999.94" },
                  { g = 5, s = "-0.05" } }, g)
    local us = U:annotate { s = quay.sum("as__v") }:order_by("id"):all()
    assert.equal("119999999999999999.88", us[1].s)
    assert.equal("-0.05", us[2].s)
    -- below 64 bits the sum stays an integer in SQL: filters compare it
    assert.equal(1, #U:annotate { s = quay.sum("as__v") }:filter { s__lt = "0" }:all())
    db:close()
  end)
end)
