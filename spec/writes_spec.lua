-- Writes that touch exactly the rows they name: reference.md "Query sets"
-- (update / delete / first / get of limited sets), "Records" (find, save),
-- "Deleting and cascades" (dry_run) and the auto_now rules of "Writes done
-- right".
local helper = require("spec.helper")
local quay = helper.quay

local function ids(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.id end
  return out
end

local function sorted(t)
  table.sort(t)
  return t
end

-- Every id of Model except those in list, in key order.
local function without(Model, list)
  local gone, out = {}, {}
  for _, id in ipairs(list) do gone[id] = true end
  for _, r in ipairs(Model:order_by("id"):all()) do
    if not gone[r.id] then out[#out + 1] = r.id end
  end
  return out
end

describe("Limited query sets write the rows they read", function()
  local db, User, Post, Tag
  before_each(function()
    db = helper.open()
    User = db:model("User", {
      name = quay.string(),
      age = quay.integer { index = true },
      mark = quay.integer { default = 0 },
    })
    Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { index = true },
      mark = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { through = "PostTag", related_name = "posts" }),
    })
    Tag = db:model("Tag", { name = quay.string(), mark = quay.integer { default = 0 } })
    db:model("PostTag", {
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE }),
      tag = quay.belongs_to("Tag", { on_delete = quay.CASCADE }),
      rank = quay.integer(),
    })
    db:create_tables()
    -- No order by age agrees with key order, and three users tie at 50.
    for i, age in ipairs { 30, 50, 10, 50, 40, 20, 50 } do
      User:create { name = "u" .. i, age = age }
    end
  end)
  after_each(function() db:close() end)

  -- qs:update touches exactly the rows of qs:all(); then qs:delete does.
  local function check(Model, make)
    local want = sorted(ids(make():all()))
    assert.is_true(#want > 0)
    assert.equal(#want, make():update { mark = 1 })
    assert.same(want, sorted(ids(Model:filter { mark = 1 }:all())))
    Model:update { mark = 0 }
    local keep = without(Model, want)
    make():delete()
    assert.same(keep, ids(Model:order_by("id"):all()))
  end

  it("breaks ties by primary key, as :all() reads them", function()
    assert.same({ 2, 4, 7, 5 }, ids(User:order_by("-age"):limit(4):all()))
    assert.same({ 4, 7 }, ids(User:order_by("-age"):offset(1):limit(2):all()))
  end)

  it("by a field, with limit, offset or both", function()
    check(User, function() return User:order_by("-age"):limit(2) end)
    check(User, function() return User:order_by("age"):offset(3) end)
    check(User, function() return User:order_by("-age", "name"):offset(1):limit(2) end)
  end)

  it("by a path across a to-one relation", function()
    for i = 1, 7 do
      Post:create { title = "p" .. i, views = i, author = User:find(8 - i) }
    end
    check(Post, function() return Post:order_by("-author__age", "-views"):limit(3) end)
    check(Post, function() return Post:order_by("author__name"):offset(1):limit(2) end)
  end)

  it("through a related set", function()
    local u = User:find(3)
    for i, views in ipairs { 5, 50, 20, 40, 1 } do
      Post:create { title = "p" .. i, views = views, author = u }
    end
    Post:create { title = "other", views = 100, author = User:find(1) }
    check(Post, function() return u.posts:order_by("-views"):limit(2) end)
    assert.same({ 1, 5, 20 }, sorted({ table.unpack(Post:filter { author = u }:pluck("views")) }))
  end)

  it("through a pivot field of a many-to-many set", function()
    local p = Post:create { title = "p", views = 1, author = User:find(1) }
    for i, rank in ipairs { 3, 1, 2 } do
      p.tags:add(Tag:create { name = "t" .. i }, { rank = rank })
    end
    Tag:create { name = "free" }
    check(Tag, function() return p.tags:order_by("-pivot__rank"):limit(2) end)
  end)

  it("by a count annotation", function()
    for i, n in ipairs { 1, 3, 0, 2, 0, 0, 4 } do
      for k = 1, n do
        Post:create { title = "p" .. i .. k, views = k, author = User:find(i) }
      end
    end
    local by_count = User:with_count("posts"):order_by("-posts_count")
    assert.same(ids(by_count:all()), { table.unpack(by_count:pluck("id")) })
    check(User, function()
      return User:with_count("posts"):order_by("-posts_count"):limit(2)
    end)
  end)

  it("changes the referenced key of the row it reads", function()
    local top = User:order_by("-age"):first()
    Post:create { title = "p", views = 1, author = top }
    assert.equal(1, User:order_by("-age"):limit(1):update { id = 100 })
    assert.equal(top.name, User:find(100).name)
    assert.equal(100, Post:get { title = "p" }.author_id)
  end)

  it("counts and tests existence of the rows it reads", function()
    for _, qs in ipairs {
      User:order_by("-age"):limit(2), User:order_by("age"):offset(5),
      User:offset(6):limit(5), User:offset(7), User:limit(0),
    } do
      assert.equal(#qs:all(), qs:count())
      assert.equal(#qs:all() > 0, qs:exists())
    end
  end)
end)

describe("first() and get() honour limit and offset", function()
  local db, User
  before_each(function()
    db = helper.open()
    User = db:model("User", { name = quay.string() })
    db:create_tables()
    for i = 1, 7 do User:create { name = "u" .. i } end
  end)
  after_each(function() db:close() end)

  it("reads nothing from limit(0)", function()
    assert.is_nil(User:limit(0):first())
    assert.is_nil(User:order_by("-id"):limit(0):first())
    helper.raises("not_found", function() return User:limit(0):get() end)
    helper.raises("not_found", function() return User:limit(0):get { name = "u1" } end)
    local u = User:find(1)
    assert.is_nil(User:filter { id = u.id }:limit(0):first())
  end)

  it("starts at the offset", function()
    assert.equal(6, User:order_by("id"):offset(5):first().id)
    assert.equal(2, User:order_by("-id"):offset(5):first().id)
    assert.is_nil(User:offset(7):first())
    assert.equal(6, User:order_by("id"):offset(5):limit(1):get().id)
    helper.raises("multiple", function() return User:offset(5):get() end)
    helper.raises("not_found", function() return User:offset(7):get() end)
  end)

  it("keeps the smaller of two limits", function()
    assert.same({}, User:limit(0):limit(5):all())
    assert.equal(2, #User:limit(2):limit(5):all())
    assert.equal(2, #User:limit(5):limit(2):all())
    assert.equal(2, User:limit(2):limit(5):count())
    assert.equal(1, User:order_by("id"):limit(1):get().id)
  end)
end)

describe("Records: find, stale saves and implicit ids", function()
  local db, User, Post, Tag, Code
  before_each(function()
    db = helper.open()
    User = db:model("User", { name = quay.string() })
    Tag = db:model("Tag", { name = quay.string() })
    Post = db:model("Post", {
      title = quay.string(),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
    })
    Code = db:model("Code", { code = quay.string { primary_key = true } })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("find(nil) is nil and a key of the wrong type is a validation error", function()
    User:create { name = "a" }
    Code:create { code = "x" }
    assert.is_nil(User:find(nil))
    assert.is_nil(User:find(quay.null))
    for _, bad in ipairs { {}, true, 1.5, "1", print } do
      local err = helper.raises("validation", User.find, User, bad)
      helper.mentions(err, "User", "id")
    end
    local err = helper.raises("validation", User.find, User, User:find(1))
    helper.mentions(err, "User", "id")
    err = helper.raises("validation", Code.find, Code, 1)
    helper.mentions(err, "Code", "code")
    assert.equal("x", Code:find("x").code)
    helper.raises("misuse", User.find, User)
  end)

  it("never reuses the id of a deleted row", function()
    local a = User:create { name = "a" }
    local id = a.id
    a:delete()
    local b = User:create { name = "b" }
    assert.is_true(b.id > id)
    local p, t1, t2 = Post:create { title = "p" }, Tag:create { name = "1" }, Tag:create { name = "2" }
    p.tags:add(t1)
    local link = db:rows("SELECT id FROM posts_tags")[1].id
    p.tags:remove(t1)
    p.tags:add(t2)
    assert.is_true(db:rows("SELECT id FROM posts_tags")[1].id > link)
  end)

  it("a save whose row is gone raises not_found and writes nothing", function()
    local a = User:create { name = "a" }
    local stale = User:find(a.id)
    a:delete()
    local b = User:create { name = "b" }
    stale.name = "stale"
    local err = helper.raises("not_found", stale.save, stale)
    helper.mentions(err, "User", tostring(stale.id))
    assert.equal("b", User:find(b.id).name)
    assert.equal(1, User:count())
    -- the same with no new row at all
    local c = User:create { name = "c" }
    local stale_c = User:find(c.id)
    User:filter { id = c.id }:delete()
    stale_c:save()                -- nothing changed: nothing is sent
    stale_c.name = "c2"
    err = helper.raises("not_found", stale_c.save, stale_c)
    helper.mentions(err, "User", tostring(c.id))
    assert.equal(1, User:count())
  end)
end)

describe("Deleting: dry_run and options", function()
  local db, User, Post
  before_each(function()
    db = helper.open()
    User = db:model("User", { name = quay.string() })
    Post = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("User", { on_delete = quay.NO_ACTION, related_name = "posts" }),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("dry_run raises integrity for a NO_ACTION reference, as the delete does", function()
    local u = User:create { name = "u" }
    Post:create { title = "p", author = u }
    local free = User:create { name = "free" }
    helper.raises("integrity", u.delete, u, { dry_run = true })
    helper.raises("integrity", function()
      return User:filter { id = u.id }:delete { dry_run = true }
    end)
    helper.raises("integrity", u.delete, u)
    assert.equal(2, User:count())
    assert.same({ User = 1 }, free:delete { dry_run = true })
    assert.equal(2, User:count())
    assert.same({ User = 1 }, User:filter { id = free.id }:delete { dry_run = true })
    assert.equal(2, User:count())
  end)

  it("dry_run inside a transaction leaves it usable", function()
    local u = User:create { name = "u" }
    Post:create { title = "p", author = u }
    local n = db:transaction(function()
      User:create { name = "inside" }
      helper.raises("integrity", u.delete, u, { dry_run = true })
      return User:count()
    end)
    assert.equal(2, n)
    assert.equal(2, User:count())
  end)

  it("raises misuse for an unknown option or a bad dry_run", function()
    local u = User:create { name = "u" }
    local err = helper.raises("misuse", u.delete, u, { dryrun = true })
    helper.mentions(err, "dryrun")
    helper.raises("misuse", u.delete, u, { dry_run = "yes" })
    helper.raises("misuse", u.delete, u, { true })
    err = helper.raises("misuse", function() return User:query():delete { force = true } end)
    helper.mentions(err, "force")
    helper.raises("misuse", function() return User:query():delete { dry_run = 1 } end)
    assert.equal(1, User:count())
  end)
end)

describe("auto_now and auto_now_add", function()
  local db, Stamp
  local OLD = "2000-01-01 00:00:00"
  local STAMP = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"
  before_each(function()
    db = helper.open()
    Stamp = db:model("Stamp", {
      created = quay.datetime { auto_now_add = true },
      updated = quay.datetime { auto_now = true },
      n = quay.integer(),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  local function backdate()
    db:execute("UPDATE stamps SET created = ?, updated = ?", { OLD, OLD })
  end

  it("fills both on every insert", function()
    local a = Stamp:create { n = 1 }
    local b = Stamp:new { n = 2 }
    b:save()
    local c = Stamp:bulk_create { { n = 3 }, { n = 4 } }
    for _, r in ipairs { a, b, c[1], c[2] } do
      assert.matches(STAMP, r.created)
      assert.matches(STAMP, r.updated)
      local stored = Stamp:find(r.id)
      assert.equal(r.created, stored.created)
      assert.equal(r.updated, stored.updated)
    end
    -- values given to an insert are kept (an import, say)
    local given = Stamp:create { n = 5, created = OLD, updated = OLD }
    assert.equal(OLD, Stamp:find(given.id).created)
    assert.equal(OLD, Stamp:find(given.id).updated)
  end)

  it("sets auto_now, and only it, on every save", function()
    local t = Stamp:create { n = 1 }
    backdate()
    t = Stamp:find(t.id)
    t.n = 2
    t:save()
    local stored = Stamp:find(t.id)
    assert.equal(OLD, stored.created)
    assert.matches(STAMP, stored.updated)
    assert.is_true(stored.updated > OLD)
    assert.equal(stored.updated, t.updated)
    -- a save that changes nothing writes nothing, so stamps nothing
    backdate()
    t = Stamp:find(t.id)
    assert.equal(0, helper.queries(db, function() t:save() end))
    assert.equal(OLD, Stamp:find(t.id).updated)
    -- save { fields = ... } writes, so it stamps too
    t:save { fields = { "n" } }
    assert.is_true(Stamp:find(t.id).updated > OLD)
    -- a value given for auto_now is replaced on save
    t.updated = OLD
    t:save()
    assert.is_true(Stamp:find(t.id).updated > OLD)
  end)

  it("leaves auto_now to qs:update unless it is given", function()
    local t = Stamp:create { n = 1 }
    backdate()
    assert.equal(1, Stamp:filter { id = t.id }:update { n = 5 })
    assert.equal(OLD, Stamp:find(t.id).updated)
    Stamp:filter { id = t.id }:update { updated = "2001-02-03 04:05:06" }
    assert.equal("2001-02-03 04:05:06", Stamp:find(t.id).updated)
  end)
end)
