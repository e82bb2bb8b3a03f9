-- reference.md "Fields", "Details the second part fixes" (Dates, error shape):
-- values are validated and normalized the same way when stored and when
-- compared in a filter, on both backends.
local helper = require("spec.helper")
local quay = helper.quay

describe("Datetime values", function()
  local db, Event
  before_each(function()
    db = helper.open()
    Event = db:model("Event", {
      name = quay.string(),
      at = quay.datetime { null = true },
    })
    db:create_tables()
    Event:create { name = "a", at = "2020-05-05 10:00:00" }
  end)
  after_each(function() db:close() end)

  it("accepts ISO 8601 and stores the UTC normal form", function()
    local cases = {
      { "2021-01-02T03:04:05", "2021-01-02 03:04:05" },
      { "2021-01-02t03:04:05z", "2021-01-02 03:04:05" },
      { "2021-01-02T03:04:05Z", "2021-01-02 03:04:05" },
      { "2021-01-02T03:04:05+02:00", "2021-01-02 01:04:05" },
      { "2021-01-02T03:04:05-0130", "2021-01-02 04:34:05" },
      { "2021-01-02T03:04:05+05", "2021-01-01 22:04:05" },
      { "2021-01-01T23:30:00-01:00", "2021-01-02 00:30:00" },
      { "2024-02-28T23:00:00-02:00", "2024-02-29 01:00:00" },
      -- fractional seconds are truncated, never rounded up
      { "2021-01-02 03:04:05.999", "2021-01-02 03:04:05" },
      { "2021-12-31T23:59:59,999999Z", "2021-12-31 23:59:59" },
    }
    for _, c in ipairs(cases) do
      local e = Event:create { name = c[1], at = c[1] }
      assert.equal(c[2], e.at)                   -- the record holds it too
      assert.equal(c[2], Event:get { name = c[1] }.at)
      e.at = c[1]
      e:save()
      assert.equal(c[2], e.at)
    end
    local s = Event:first()
    s.at = "2022-06-01T12:00:00+01:00"
    s:save()
    assert.equal("2022-06-01 11:00:00", Event:find(s.id).at)
    assert.equal(1, Event:filter { id = s.id }:update { at = "2023-01-01T00:00:00Z" })
    assert.equal("2023-01-01 00:00:00", Event:find(s.id).at)
  end)

  it("normalizes filter values exactly as stored values", function()
    assert.equal(1, Event:filter { at = "2020-05-05T10:00:00" }:count())
    assert.equal(1, Event:filter { at = "2020-05-05T12:00:00+02:00" }:count())
    assert.equal(1, Event:filter { at = "2020-05-05 10:00:00.75" }:count())
    assert.equal(1, Event:filter { at__gte = "2020-05-05T09:59:59Z" }:count())
    assert.equal(0, Event:filter { at__gt = "2020-05-05T10:00:00Z" }:count())
    assert.equal(1, Event:filter { at__in = { "2019-01-01T00:00:00Z",
                                              "2020-05-05T11:00:00+01:00" } }:count())
    assert.equal(1, Event:filter { at__between = { "2020-05-05T00:00:00Z",
                                                   "2020-05-06T00:00:00Z" } }:count())
    assert.equal(0, Event:exclude { at = "2020-05-05T10:00:00Z" }:count())
  end)

  it("refuses malformed and impossible datetimes with validation naming model and field", function()
    for _, bad in ipairs {
      "2020", "2020-06", "garbage", "2020-05-05", "2020-05-05 10:00",
      "2024-02-30 10:00:00", "2023-02-29 00:00:00", "2020-13-01 00:00:00",
      "2020-00-10 00:00:00", "2020-01-01 24:00:00", "2020-01-01 23:60:00",
      "2020-01-01 23:59:60", "0000-01-01 00:00:00", "2020-01-01T10:00:00+24:00",
      "2020-01-01T10:00:00+02:", "2020-01-01 10:00:00.", "2020-01-01 10:00:00 ",
      "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
    } do
      local e = helper.raises("validation", Event.create, Event, { name = "x", at = bad })
      assert.equal("Event", e.model)
      assert.equal("at", e.field)
      helper.mentions(e, "Event", "at")
      e = helper.raises("validation", function()
        return Event:filter { at = bad }:count()
      end)
      assert.equal("Event", e.model)
      assert.equal("at", e.field)
      helper.raises("validation", function()
        return Event:filter { at__in = { "2020-05-05 10:00:00", bad } }:count()
      end)
      helper.raises("validation", function()
        return Event:filter { at__lt = bad }:count()
      end)
    end
    assert.equal(1, Event:count())
  end)

  it("accepts every real day, 29 February of leap years included", function()
    for _, ok in ipairs { "2024-02-29 00:00:00", "2000-02-29 12:00:00",
                          "2023-12-31 23:59:59", "0001-01-01 00:00:00",
                          "9999-12-31 23:59:59" } do
      assert.equal(ok, Event:create { name = ok, at = ok }.at)
      assert.equal(1, Event:filter { at = ok }:count())
    end
    helper.raises("validation", Event.create, Event, { name = "x", at = "1900-02-29 00:00:00" })
  end)

  it("normalizes a declared default and refuses a bad one", function()
    local D = db:model("D", { at = quay.datetime { default = "2021-03-04T05:06:07+01:00" } })
    db:create_tables()
    assert.equal("2021-03-04 04:06:07", D:create {}.at)
    helper.raises("declaration", db.model, db, "D2",
      { at = quay.datetime { default = "2021-02-29 00:00:00" } })
  end)
end)

describe("Number values", function()
  local db, N
  before_each(function()
    db = helper.open()
    N = db:model("N", {
      tag = quay.string(),
      x = quay.number { null = true },
      k = quay.integer { null = true },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("stores, reads and filters infinities on both backends", function()
    N:create { tag = "pos", x = math.huge }
    N:create { tag = "neg", x = -math.huge }
    N:create { tag = "one", x = 1.5 }
    assert.equal(math.huge, N:get { tag = "pos" }.x)
    assert.equal(-math.huge, N:get { tag = "neg" }.x)
    assert.equal("pos", N:get { x = math.huge }.tag)
    assert.equal(2, N:filter { x__gt = 1 }:count())
    assert.equal(1, N:filter { x__lt = -1e308 }:count())
    -- a short list is written inline, a long one as one array parameter
    for _, size in ipairs { 3, 100 } do
      local list = { math.huge, -math.huge }
      for i = 3, size do list[i] = 1000 + i end
      assert.equal(2, N:filter { x__in = list }:count())
      assert.equal(1, N:filter { x__not_in = list }:count())
    end
  end)

  it("refuses NaN with validation, stored or compared", function()
    local nan = 0 / 0
    local e = helper.raises("validation", N.create, N, { tag = "n", x = nan })
    assert.equal("N", e.model)
    assert.equal("x", e.field)
    helper.raises("validation", function() return N:filter { x = nan }:count() end)
    local list = {}
    for i = 1, 100 do list[i] = i end
    list[50] = nan
    helper.raises("validation", function() return N:filter { x__in = list }:count() end)
    assert.equal(0, N:count())
  end)

  it("compares integers with a number field as doubles (numbers are doubles)", function()
    N:create { tag = "big", x = 2 ^ 53 }
    local big = (1 << 53) + 1                    -- not a double: rounds to 2^53
    assert.equal(1, N:filter { x = big }:count())
    assert.equal(1, N:filter { x__in = { big } }:count())
    local list = {}
    for i = 1, 100 do list[i] = i end
    list[100] = big
    assert.equal(1, N:filter { x__in = list }:count())
    local r = N:create { tag = "int", x = big }
    assert.equal(2 ^ 53, r.x)
    assert.equal(math.type(2.0), math.type(N:get { tag = "int" }.x))
  end)

  it("refuses a number with a fraction for an integer field", function()
    local e = helper.raises("validation", N.create, N, { tag = "f", k = 3.5 })
    assert.equal("N", e.model)
    assert.equal("k", e.field)
    helper.raises("validation", N.create, N, { tag = "f", k = math.huge })
    helper.raises("validation", N.create, N, { tag = "f", k = 2 ^ 63 })
    helper.raises("validation", function() return N:filter { k = 3.5 }:count() end)
    assert.equal(3, N:create { tag = "i", k = 3.0 }.k)
    assert.equal(1, N:filter { k = 3.0 }:count())
  end)
end)

describe("Validation errors carry model and field", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
  end)
  after_each(function() db:close() end)

  it("for type, null, max and a missing value", function()
    local checks = {
      { "name", function() return M.User:create { name = 5, email = "a" } end },
      { "email", function() return M.User:create { name = "a" } end },
      { "name", function() return M.User:create { name = ("x"):rep(101), email = "a" } end },
      { "name", function() return M.User:create { name = quay.null, email = "a" } end },
      { "title", function() return M.Post:filter { title = true }:count() end },
    }
    for _, c in ipairs(checks) do
      local e = helper.raises("validation", c[2])
      assert.equal(c[1], e.field)
      assert.truthy(e.model == "User" or e.model == "Post")
    end
    local u = M.User:create { name = "a", email = "a" }
    local e = helper.raises("validation", M.Post.create, M.Post, { title = "t" })
    assert.equal("Post", e.model)
    assert.equal("author", e.field)
    u.name = ("y"):rep(101)
    e = helper.raises("validation", u.save, u)
    assert.equal("User", e.model)
    assert.equal("name", e.field)
  end)
end)

describe("Validation errors about relations carry model and field", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
  end)
  after_each(function() db:close() end)

  it("for assignments and set writes", function()
    local u = M.User:create { name = "a", email = "a" }
    local p = M.Post:create { title = "t", author = u }
    local t = M.Tag:create { name = "x" }
    for _, c in ipairs {
      { "author", function() p.author = t end },
      { "author", function() p.author = nil end },
      { "author", function() p.author = M.User:new { name = "n", email = "n" } end },
      { "posts", function() u.posts = {} end },
      { "tags", function() p.tags:add(u) end },
    } do
      local e = helper.raises("validation", c[2])
      assert.equal(c[1], e.field)
      assert.truthy(e.model == "Post" or e.model == "User")
    end
  end)
end)
