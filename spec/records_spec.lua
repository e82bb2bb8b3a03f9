-- docs/reference.md "Records"
local helper = require("spec.helper")
local quay = helper.quay

describe("Records", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
  end)
  after_each(function() db:close() end)

  it("creates, finds and gets", function()
    local u = M.User:create { name = "Jane", email = "jane@example.com" }
    assert.is_number(u.id)
    assert.equal("Jane", M.User:find(u.id).name)
    assert.is_nil(M.User:find(u.id + 1000))
    assert.equal(u, M.User:get { email = "jane@example.com" })
    helper.raises("not_found", M.User.get, M.User, { email = "nobody" })
    M.User:create { name = "Jane", email = "other@example.com" }
    local err = helper.raises("multiple", M.User.get, M.User, { name = "Jane" })
    helper.mentions(err, "User")
  end)

  it("new + save inserts, then save updates", function()
    local u = M.User:create { name = "A", email = "a@x" }
    local p = M.Post:new { title = "Draft", author = u }
    assert.is_nil(p.id)
    p:save()
    assert.is_number(p.id)
    p.title = "Hello"
    p:save()
    assert.equal("Hello", M.Post:find(p.id).title)
    assert.equal(1, M.Post:count())
  end)

  it("accepts the key column instead of the relation", function()
    local u = M.User:create { name = "A", email = "a@x" }
    local p = M.Post:create { title = "x", author_id = u.id }
    assert.equal(u.id, p.author_id)
    assert.equal("A", p.author.name)
  end)

  it("refreshes and converts to a plain table", function()
    local u = M.User:create { name = "A", email = "a@x" }
    M.User:filter { id = u.id }:update { name = "B" }
    assert.equal("A", u.name)
    u:refresh()
    assert.equal("B", u.name)
    local t = u:to_table()
    assert.same({ id = u.id, name = "B", email = "a@x" }, t)
    assert.is_nil(getmetatable(t))
  end)

  it("deletes and returns counts", function()
    local u = M.User:create { name = "A", email = "a@x" }
    M.Post:create { title = "x", author = u }
    local counts = u:delete()
    assert.same({ User = 1, Post = 1 }, counts)
    assert.equal(0, M.User:count())
  end)

  it("bulk_create inserts in one transaction and returns records", function()
    local rows = {}
    for i = 1, 50 do rows[i] = { name = "u" .. i, email = i .. "@x" } end
    local recs = M.User:bulk_create(rows)
    assert.equal(50, #recs)
    assert.equal(50, M.User:count())
    assert.is_number(recs[50].id)
    assert.equal("u50", M.User:find(recs[50].id).name)
    -- a failing row rolls back the whole batch
    local bad = { { name = "ok", email = "new@x" }, { name = "dup", email = "1@x" } }
    helper.raises("integrity", M.User.bulk_create, M.User, bad)
    assert.equal(50, M.User:count())
  end)

  it("explicit ids move the automatic key past them", function()
    -- PostgreSQL's identity does not see an explicit key by itself; a key
    -- it handed out next would collide (SQLite's AUTOINCREMENT goes past).
    M.User:bulk_create { { id = 5, name = "a", email = "a@x" }, { id = 7, name = "b", email = "b@x" } }
    assert.equal(8, M.User:create { name = "c", email = "c@x" }.id)
    M.User:create { id = 20, name = "d", email = "d@x" }
    assert.equal(21, M.User:create { name = "e", email = "e@x" }.id)
    local r = M.User:new { name = "f", email = "f@x" }
    r.id = 30
    r:save()
    M.User:upsert({ { id = 40, name = "g", email = "g@x" } }, { conflict = { "id" } })
    assert.equal(41, M.User:create { name = "h", email = "h@x" }.id)
    M.User:create { id = 3, name = "i", email = "i@x" }   -- below: no move back
    assert.equal(42, M.User:create { name = "j", email = "j@x" }.id)
    assert.equal(10, M.User:count())
  end)

  it("bulk_create of a model with no field but its key makes every row", function()
    local Ticket = db:model("Ticket", {})
    db:create_tables()
    local recs = Ticket:bulk_create { {}, {}, {} }
    assert.equal(3, #recs)
    assert.equal(3, Ticket:count())
    local ids = {}
    for _, r in ipairs(Ticket:order_by("id"):all()) do ids[#ids + 1] = r.id end
    assert.same(ids, { recs[1].id, recs[2].id, recs[3].id })
  end)

  it("compares records by primary key", function()
    local u = M.User:create { name = "A", email = "a@x" }
    assert.equal(u, M.User:find(u.id))
    assert.is_true(u == M.User:first())
    local v = M.User:create { name = "B", email = "b@x" }
    assert.is_false(u == v)
  end)

  it("raises unknown_field on reading or writing an unknown name", function()
    local u = M.User:create { name = "A", email = "a@x" }
    local err = helper.raises("unknown_field", function() return u.nickname end)
    helper.mentions(err, "User", "nickname")
    helper.raises("unknown_field", function() u.nickname = "x" end)
    helper.raises("unknown_field", M.User.create, M.User, { nick = "x" })
  end)

  it("validates types, nulls and lengths", function()
    local err = helper.raises("validation", M.User.create, M.User, { name = 5, email = "x" })
    helper.mentions(err, "User", "name")
    err = helper.raises("validation", M.User.create, M.User, { email = "x" })
    helper.mentions(err, "User", "name")
    helper.raises("validation", M.User.create, M.User, { name = quay.null, email = "x" })
    helper.raises("validation", M.User.create, M.User,
      { name = ("é"):rep(101), email = "x" })
    M.User:create { name = ("é"):rep(100), email = "x" } -- characters, not bytes
    local u = M.User:first()
    u.name = 42
    helper.raises("validation", u.save, u)
    helper.raises("validation", M.Post.create, M.Post, { title = "t", views = "many",
      author = u })
    helper.raises("validation", M.Post.create, M.Post, { title = "t" })
  end)

  it("applies defaults: values and functions", function()
    local n = 0
    local T = db:model("T", {
      a = quay.integer { default = 7 },
      b = quay.string { default = function() n = n + 1; return "gen" .. n end },
      c = quay.string { null = true, default = "d" },
    })
    db:create_tables()
    local t = T:create {}
    assert.equal(7, t.a)
    assert.equal("gen1", t.b)
    assert.equal("d", t.c)
    local t2 = T:create { a = 1, b = "given", c = quay.null }
    assert.equal(1, t2.a)
    assert.equal("given", t2.b)
    assert.is_nil(t2.c)
    assert.is_nil(T:find(t2.id).c)
    assert.equal(1, n)
  end)

  it("sets auto_now_add and auto_now", function()
    local T = db:model("Stamp", {
      created = quay.datetime { auto_now_add = true },
      updated = quay.datetime { auto_now = true },
      n = quay.integer(),
    })
    db:create_tables()
    local t = T:create { n = 1 }
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", t.created)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", t.updated)
    local before = t.created
    t.updated = "2000-01-01 00:00:00"
    t.n = 2
    t:save()
    assert.equal(before, T:find(t.id).created)
    -- auto_now is set on every save that writes (reference.md), over any value
    assert.is_true(T:find(t.id).updated > "2000-01-01 00:00:00")
    helper.raises("validation", T.create, T, { n = 3, created = "yesterday" })
  end)

  it("reads NULL as nil and round-trips values exactly", function()
    local T = db:model("V", {
      i = quay.integer { null = true }, r = quay.number { null = true },
      s = quay.text { null = true }, b = quay.boolean { null = true },
    })
    db:create_tables()
    local big = math.maxinteger
    local t = T:create { i = big, r = 0.1, s = "it's \"quoted\"", b = true }
    local x = T:find(t.id)
    assert.equal(big, x.i)
    assert.equal(math.type(big), math.type(x.i))
    assert.equal(0.1, x.r)
    assert.equal("it's \"quoted\"", x.s)
    assert.equal(true, x.b)
    local y = T:create {}
    assert.is_nil(T:find(y.id).i)
    T:create { i = math.mininteger }
    assert.equal(1, T:filter { i = math.mininteger }:count())
  end)
end)
