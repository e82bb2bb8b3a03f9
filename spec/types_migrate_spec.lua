-- The field types of issue 14 under schema evolution: a decimal's places
-- changed on a table with rows (SQLite keeps decimals as scaled integers,
-- so the rebuild rescales them; PostgreSQL alters NUMERIC), integers and
-- numbers turned into decimals, composite indexes, dates, JSON and UUIDs,
-- each ending at the fixpoint (no steps left) with the amounts intact.
local helper = require("spec.helper")
local quay = helper.quay

-- pluck's result as a plain list (it also carries n)
local function list(t)
  local r = {}
  for i = 1, #t do r[i] = t[i] end
  return r
end

local fresh_url = helper.shared_url

describe("field types under migrations", function()
  after_each(helper.remove_files)

  it("changes a decimal's places and keeps every amount", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local A = v1:model("Account", { amount = quay.decimal { digits = 10, places = 2 } })
    v1:create_tables()
    for _, s in ipairs({ "12.50", "-0.07", "99999999.99", "0.00" }) do A:create { amount = s } end
    v1:close()

    local v2 = quay.open(url)
    local B = v2:model("Account", { amount = quay.decimal { digits = 12, places = 3 } })
    local steps = v2:schema_diff()
    assert.equal(1, #steps)
    assert.equal("alter_column", steps[1].op)
    v2:migrate()
    assert.same({}, v2:schema_diff())
    assert.same({ "12.500", "-0.070", "99999999.990", "0.000" },
      list(B:query():order_by("id"):pluck("amount")))
    -- sums stay exact after the change
    assert.equal("100000012.420", B:aggregate { s = quay.sum("amount") }.s)
    v2:close()

    -- fewer places: a narrowing, refused without allow_drop, rounds with it
    local v3 = quay.open(url)
    local C = v3:model("Account", { amount = quay.decimal { digits = 12, places = 1 } })
    helper.raises("migration", function() return v3:migrate() end)
    v3:migrate { allow_drop = true }
    assert.same({}, v3:schema_diff())
    local got = list(C:query():order_by("id"):pluck("amount"))
    assert.equal("12.5", got[1])
    assert.equal("-0.1", got[2])
    assert.equal("100000000.0", got[3])
    v3:close()
  end)

  -- Found by test/difftest/migrations.lua: a decimal's default was left
  -- out of the DDL, so the rows there got NULL (or the column was refused
  -- as NOT NULL without a default).
  it("adds a decimal column with a default to a table with rows", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local P = v1:model("Price", { cents = quay.integer() })
    v1:create_tables()
    P:create { cents = 1 }
    P:create { cents = 2 }
    v1:close()
    local v2 = quay.open(url)
    local Q = v2:model("Price", {
      cents = quay.integer(),
      amount = quay.decimal { digits = 10, places = 2, default = "-0.07" },
      opt = quay.decimal { digits = 6, places = 0, null = true, default = 12 },
    })
    v2:migrate()
    assert.same({}, v2:schema_diff())
    assert.same({ "-0.07", "-0.07" }, list(Q:query():order_by("id"):pluck("amount")))
    assert.same({ "12", "12" }, list(Q:query():order_by("id"):pluck("opt")))
    v2:execute("INSERT INTO prices (cents) VALUES (3)")   -- the DEFAULT of the column
    assert.equal("-0.07", Q:get { cents = 3 }.amount)
    assert.equal("12", Q:get { cents = 3 }.opt)
    v2:close()
  end)

  it("turns integer cents into a decimal column", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local P = v1:model("Price", { cents = quay.integer() })
    v1:create_tables()
    P:create { cents = 1250 }
    P:create { cents = -3 }
    v1:close()
    local v2 = quay.open(url)
    local Q = v2:model("Price", { cents = quay.decimal { digits = 12, places = 2 } })
    v2:migrate { allow_drop = true }
    assert.same({}, v2:schema_diff())
    assert.same({ "1250.00", "-3.00" }, list(Q:query():order_by("id"):pluck("cents")))
    v2:close()
  end)

  it("widens integers and numbers into decimals that hold every value", function()
    -- reference.md "Narrowing": integer or number -> decimal with enough
    -- digits is a widening; the rows decide what is enough.
    local url = fresh_url()
    local v1 = quay.open(url)
    local P = v1:model("Price", { cents = quay.integer(), rate = quay.number() })
    v1:create_tables()
    P:create { cents = 1250, rate = 0.25 }
    P:create { cents = -3, rate = -12.5 }
    v1:close()
    local v2 = quay.open(url)
    local Q = v2:model("Price", {
      cents = quay.decimal { digits = 6, places = 2 },
      rate = quay.decimal { digits = 5, places = 2 },
    })
    v2:migrate()                                        -- no allow_drop
    assert.same({}, v2:schema_diff())
    assert.same({ "1250.00", "-3.00" }, list(Q:query():order_by("id"):pluck("cents")))
    assert.same({ "0.25", "-12.50" }, list(Q:query():order_by("id"):pluck("rate")))
    v2:close()
  end)

  it("refuses a decimal that cannot hold a value, and changes nothing", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local P = v1:model("Price", { cents = quay.integer(), rate = quay.number() })
    v1:create_tables()
    P:create { cents = 123456, rate = 0.125 }
    v1:close()
    -- 123456 needs six digits before the point: decimal(6, 2) has four
    local v2 = quay.open(url)
    v2:model("Price", { cents = quay.decimal { digits = 6, places = 2 }, rate = quay.number() })
    local err = helper.raises("migration", function() return v2:migrate() end)
    helper.mentions(err, "cents")
    err = helper.raises("migration", function() return v2:migrate { allow_drop = true } end)
    helper.mentions(err, "cents")
    v2:close()
    -- 0.125 has three places: refused, rounded with allow_drop
    local v3 = quay.open(url)
    local R = v3:model("Price", { cents = quay.integer(), rate = quay.decimal { digits = 6, places = 2 } })
    err = helper.raises("migration", function() return v3:migrate() end)
    helper.mentions(err, "rate", "allow_drop")
    assert.equal(123456, v3:rows("SELECT cents FROM prices")[1].cents)
    v3:migrate { allow_drop = true }
    assert.same({}, v3:schema_diff())
    local r = R:first().rate
    assert.truthy(r == "0.12" or r == "0.13", r)   -- float 0.125 rounds either way
    v3:close()
  end)

  it("creates composite indexes and the new types at the fixpoint", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    v1:model("User", { name = quay.string { max = 40 } })
    v1:model("Order", {
      user = quay.belongs_to("User"),
      placed = quay.date(),
      total = quay.decimal { digits = 10, places = 2 },
      data = quay.json { null = true },
      ref = quay.uuid { unique = true },
      indexes = { { "user", "placed" } },
    })
    v1:migrate()
    assert.same({}, v1:schema_diff())
    local found
    for _, t in ipairs(v1:inspect().tables) do
      if t.name == "orders" then
        for _, x in ipairs(t.indexes) do
          if #x.columns == 2 and x.columns[1] == "user_id" and x.columns[2] == "placed" then
            found = x
          end
        end
      end
    end
    assert.truthy(found)
    assert.is_false(found.unique)
    v1:close()
    -- a second version with the index gone drops it
    local v2 = quay.open(url)
    v2:model("User", { name = quay.string { max = 40 } })
    v2:model("Order", {
      user = quay.belongs_to("User"),
      placed = quay.date(),
      total = quay.decimal { digits = 10, places = 2 },
      data = quay.json { null = true },
      ref = quay.uuid { unique = true },
    })
    local steps = v2:schema_diff()
    assert.equal(1, #steps)
    assert.equal("drop_index", steps[1].op)
    v2:migrate()
    assert.same({}, v2:schema_diff())
    v2:close()
  end)

  it("sets a decimal from quay.F arithmetic in its own places", function()
    local db = helper.open()
    local L = db:model("Line", {
      price = quay.decimal { digits = 10, places = 2 },
      qty = quay.integer(),
      total = quay.decimal { digits = 12, places = 2, null = true },
    })
    db:create_tables()
    L:create { price = "2.50", qty = 3 }
    L:create { price = "0.99", qty = 7 }
    L:update { total = quay.F("price") * quay.F("qty") }
    assert.same({ "7.50", "6.93" }, list(L:query():order_by("id"):pluck("total")))
    L:update { total = quay.F("total") + quay.F("price") }
    assert.same({ "10.00", "7.92" }, list(L:query():order_by("id"):pluck("total")))
    db:close()
  end)
  -- Text, date, datetime, JSON and UUID fields were all TEXT columns on
  -- SQLite, so a change between them made no step (datetime -> date ran
  -- without allow_drop there and kept each row's time); PostgreSQL
  -- refused it.  Each type now has a column type of its own on SQLite.
  it("sees a change between text, date, datetime and json on both backends", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local E = v1:model("Event", {
      at = quay.datetime(), day = quay.date(), note = quay.text(),
      data = quay.json { null = true }, ref = quay.uuid(),
    })
    v1:create_tables()
    E:create { at = "2024-01-02 03:04:05", day = "2024-02-29", note = "2024-03-01",
               data = { a = 1 } }
    v1:close()

    -- datetime -> date, date -> datetime, text -> date, json -> text,
    -- uuid -> text: every one a narrowing (the contract's list of
    -- widenings has none of them)
    local changes = {
      { at = quay.date() }, { day = quay.datetime() }, { note = quay.date() },
      { data = quay.text { null = true } }, { ref = quay.text() },
    }
    for _, ch in ipairs(changes) do
      local db = quay.open(url)
      local decl = { at = quay.datetime(), day = quay.date(), note = quay.text(),
                     data = quay.json { null = true }, ref = quay.uuid() }
      local name = next(ch)
      decl[name] = ch[name]
      db:model("Event", decl)
      local steps = db:schema_diff()
      assert.equal(1, #steps, name)
      assert.equal("alter_column", steps[1].op, name)
      assert.equal(name, steps[1].column)
      local e = helper.raises("migration", function() return db:migrate() end)
      assert.truthy(tostring(e.message):find("allow_drop", 1, true), e.message)
      assert.equal(1, #db:schema_diff(), name)      -- nothing changed
      db:close()
    end

    -- with allow_drop a date becomes its midnight and a datetime its date,
    -- as PostgreSQL casts them
    local v2 = quay.open(url)
    local F = v2:model("Event", {
      at = quay.date(), day = quay.datetime(), note = quay.text(),
      data = quay.json { null = true }, ref = quay.uuid(),
    })
    v2:migrate { allow_drop = true }
    assert.same({}, v2:schema_diff())
    local r = F:query():first()
    assert.equal("2024-01-02", r.at)
    assert.equal("2024-02-29 00:00:00", r.day)
    assert.equal(1, F:filter { at = "2024-01-02" }:count())
    assert.equal(1, F:filter { day__year = 2024, day__month = 2 }:count())
    v2:close()

    -- the live schema reads each type back (quay inspect declares them)
    local v3 = quay.open(url)
    local cols = {}
    for _, t in ipairs(v3:inspect().tables) do
      if t.name == "events" then
        for _, c in ipairs(t.columns) do cols[c.name] = c.type end
      end
    end
    for _, n in ipairs({ "at", "day", "note", "data", "ref" }) do assert.is_string(cols[n], n) end
    assert.are_not.equal(cols.at, cols.day)
    assert.are_not.equal(cols.note, cols.data)
    assert.are_not.equal(cols.note, cols.ref)
    v3:close()
  end)
  -- A change with no conversion (a date into an integer) raised `sql` on
  -- PostgreSQL ("cannot cast type date to bigint") and copied the text
  -- into the integer column on SQLite.  Now both refuse it with
  -- `migration` while the column holds a value, even with allow_drop.
  it("refuses a type change with no conversion while the column holds values", function()
    local url = fresh_url()
    local v1 = quay.open(url)
    local E = v1:model("Stamp", { day = quay.date { null = true }, ref = quay.uuid { null = true },
                                  n = quay.integer() })
    v1:create_tables()
    E:create { day = "2024-02-29", n = 1 }
    E:create { n = 2 }
    v1:close()

    local function decl(db, day, ref)
      return db:model("Stamp", { day = day, ref = ref, n = quay.integer() })
    end
    local v2 = quay.open(url)
    decl(v2, quay.integer { null = true }, quay.boolean { null = true })
    local e = helper.raises("migration", function() return v2:migrate { allow_drop = true } end)
    helper.mentions(e, "day", "conversion")
    assert.equal(2, #v2:schema_diff())                   -- nothing changed
    v2:close()
    local v0 = quay.open(url)
    local S0 = decl(v0, quay.date { null = true }, quay.uuid { null = true })
    assert.same({}, v0:schema_diff())
    assert.equal("2024-02-29", S0:filter { n = 1 }:first().day)
    -- once the values are gone the change runs (with allow_drop: a narrowing)
    S0:query():update { day = quay.null, ref = quay.null }
    v0:close()

    local v3 = quay.open(url)
    local S = decl(v3, quay.integer { null = true }, quay.boolean { null = true })
    helper.raises("migration", function() return v3:migrate() end)
    v3:migrate { allow_drop = true }
    assert.same({}, v3:schema_diff())
    assert.equal(2, S:filter { day = quay.null }:count())
    S:filter { n = 1 }:update { day = 7, ref = true }
    assert.equal(7, S:filter { n = 1 }:first().day)
    v3:close()
  end)

  -- A string column into another type: the text as PostgreSQL's input
  -- reads it, on both backends (SQLite's own casts made "abc" 0, or kept
  -- it in the typed column); a text that does not convert is refused with
  -- migration, naming the column, and nothing changes.
  local conversions = {
    { "integer", {}, { " 7 ", "+4", "-3" }, { 7, 4, -3 }, { "abc", "1.5", "", "12abc", "99999999999999999999" } },
    { "number", {}, { "1e3", ".5", " -2 ", "-Infinity" }, { 1000.0, 0.5, -2.0, -math.huge }, { "abc", "NaN", "nan(1)", "1e999", "1 2" } },
    { "decimal", { digits = 6, places = 2 }, { "1.234", "-0.005", "1e2", " 3 " }, { "1.23", "-0.01", "100.00", "3.00" },
      { "abc", "12345.6", "NaN" } },
    { "boolean", {}, { "t", "YES", "tru", " off " }, { true, true, true, false }, { "abc", "", "o" } },
    { "date", {}, { "2024-1-2", "20240229", " 2024-01-02 " }, { "2024-01-02", "2024-02-29", "2024-01-02" },
      { "abc", "2024-02-30", "2023-02-29" } },
    { "datetime", {}, { "2024-01-02T03:04:05+02:00", "2024-01-02", "2024-01-02 03:04:05.9" },
      { "2024-01-02 01:04:05", "2024-01-02 00:00:00", "2024-01-02 03:04:05" }, { "abc", "2024-02-30 00:00:00" } },
    { "uuid", {}, { "0190F0E2-1234-7ABC-8DEF-0123456789AB", "{0190f0e212347abc8def0123456789ab}" },
      { "0190f0e2-1234-7abc-8def-0123456789ab", "0190f0e2-1234-7abc-8def-0123456789ab" }, { "abc", "0190f0e2" } },
    { "json", {}, { '{"b":1,"a":[true,null]}', '"x"', " 2 " }, { { a = { true, quay.null }, b = 1 }, "x", 2 },
      { "abc", "", "{'a':1}" } },
  }
  for _, c in ipairs(conversions) do
    it("converts string values into a " .. c[1] .. " as PostgreSQL does, and refuses the rest", function()
      local function new_type(db)
        local o = { null = true }
        for k, v in pairs(c[2]) do o[k] = v end
        return db:model("Note", { v = quay[c[1]](o), n = quay.integer() })
      end
      -- the good values convert
      local url = fresh_url()
      local v1 = quay.open(url)
      local N = v1:model("Note", { v = quay.string { null = true }, n = quay.integer() })
      v1:create_tables()
      for i, v in ipairs(c[3]) do N:create { v = v, n = i } end
      N:create { n = 0 }                                 -- NULL stays NULL
      v1:close()
      local v2 = quay.open(url)
      local M = new_type(v2)
      helper.raises("migration", function() return v2:migrate() end)   -- a narrowing
      v2:migrate { allow_drop = true }
      assert.same({}, v2:schema_diff())
      for i, want in ipairs(c[4]) do
        assert.same(want, M:filter { n = i }:first().v)
      end
      assert.is_nil(M:filter { n = 0 }:first().v)
      v2:close()
      -- each bad value alone is refused, and changes nothing
      for _, bad in ipairs(c[5]) do
        url = fresh_url()
        local v3 = quay.open(url)
        N = v3:model("Note", { v = quay.string { null = true }, n = quay.integer() })
        v3:create_tables()
        N:create { v = c[3][1], n = 1 }
        N:create { v = bad, n = 2 }
        v3:close()
        local v4 = quay.open(url)
        new_type(v4)
        local e = helper.raises("migration", function() return v4:migrate { allow_drop = true } end)
        helper.mentions(e, "v")
        assert.equal(1, #v4:schema_diff())
        assert.equal(bad, v4:rows("SELECT v FROM notes WHERE n = 2")[1].v)
        v4:close()
      end
    end)
  end

  it("writes a number changed to a string as PostgreSQL does: the fewest digits that read back", function()
    local values = { 2.5, 1e20, 0.1, 1 / 3, 1e-7, 123456.789, 1e15, 2.0 ^ 53, -0.5, 100.0, 1e-4 }
    local want = { "2.5", "1e+20", "0.1", "0.3333333333333333", "1e-07", "123456.789", "1e+15",
                   "9.007199254740992e+15", "-0.5", "100", "0.0001" }
    local url = fresh_url()
    local v1 = quay.open(url)
    local N = v1:model("Note", { v = quay.number { null = true }, n = quay.integer() })
    v1:create_tables()
    for i, v in ipairs(values) do N:create { v = v, n = i } end
    v1:close()
    local v2 = quay.open(url)
    local M = v2:model("Note", { v = quay.string { null = true }, n = quay.integer() })
    v2:migrate { allow_drop = true }
    for i, w in ipairs(want) do
      assert.equal(w, M:filter { n = i }:first().v)
      assert.equal(values[i], tonumber(w))             -- reads back as the same double
    end
    v2:close()
  end)
end)
