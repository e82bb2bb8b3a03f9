-- spec/contract_second_spec.lua: an acceptance sweep of the contract's
-- second part, "Aggregates, annotations, values and expressions" and "Writes
-- done right", with the bullets of "Details the second part fixes" that
-- concern them (docs/reference.md, Part two). One `it` per claim of the
-- text, read as an outsider would: examples verbatim, exact result types,
-- and no argument or option ever ignored.
local helper = require("spec.helper")
local quay = helper.quay

local statements = helper.statements

local function by(rows, key)
  local out = {}
  for _, r in ipairs(rows) do out[r[key]] = r end
  return out
end

-- helper.raises, with the line of the failing call in the message.
local function raises(code, fn, ...)
  local line = debug.getinfo(2, "l").currentline
  local ok, res = pcall(helper.raises, code, fn, ...)
  if not ok then error(("line %d: %s"):format(line, tostring(res)), 2) end
  return res
end

-- The array part of a result (pluck adds `n`).
local function arr(t)
  local out = {}
  for i = 1, #t do out[i] = t[i] end
  return out
end

local function is_int(v) return math.type(v) == "integer" end
local function is_float(v) return math.type(v) == "float" end

-- The schema of the examples: users with posts and comments.
local function schema(db)
  local M = {}
  M.User = db:model("User", {
    name = quay.string(),
    email = quay.string { unique = true, null = true },
    karma = quay.integer { default = 0 },
  })
  M.Tag = db:model("Tag", { name = quay.string { unique = true } })
  M.Post = db:model("Post", {
    title = quay.string(),
    views = quay.integer { default = 0 },
    likes = quay.integer { default = 0 },
    rating = quay.number { null = true },
    price = quay.decimal { digits = 10, places = 2, null = true },
    published = quay.boolean { default = false },
    created = quay.datetime { null = true },
    placed = quay.date { null = true },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                       related_name = "edited" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  M.Comment = db:model("Comment", {
    body = quay.text(),
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "comments" }),
    post = quay.belongs_to("Post", { null = true, on_delete = quay.CASCADE,
                                     related_name = "comments" }),
  })
  db:create_tables()
  return M
end

-- ann: 2 posts (p1 published, p2 not) and 3 comments; bob: 1 post, no
-- comment; cy: nothing.
local function fill(M)
  local F = {}
  F.ann = M.User:create { name = "Ann", email = "ann@x", karma = 5 }
  F.bob = M.User:create { name = "Bob", email = "bob@x" }
  F.cy = M.User:create { name = "Cy", email = "cy@x", karma = 1 }
  F.p1 = M.Post:create { title = "one", views = 10, likes = 12, published = true,
                         rating = 1.5, price = "10.25", created = "2024-01-15 10:00:00",
                         placed = "2024-01-15", author = F.ann }
  F.p2 = M.Post:create { title = "two", views = 20, likes = 1, rating = 2.0,
                         price = "3.10", created = "2024-02-01 08:30:00",
                         placed = "2024-02-01", author = F.ann }
  F.p3 = M.Post:create { title = "three", views = 7, likes = 7, published = true,
                         created = "2023-12-31 23:59:59", author = F.bob }
  for _, body in ipairs { "a", "b", "c" } do
    M.Comment:create { body = body, author = F.ann, post = F.p3 }
  end
  return F
end

describe("contract, second part: aggregates", function()
  local db, M, F

  before_each(function()
    db = helper.open()
    M = schema(db)
    F = fill(M)
  end)
  after_each(function() db:close() end)

  it("aggregate example: one query, a plain table of integers", function()
    local res
    local n = helper.queries(db, function()
      res = M.Post:filter { published = true }:aggregate {
        n = quay.count(), views = quay.sum("views"), top = quay.max("views") }
    end)
    assert.are.equal(1, n)
    assert.is_nil(getmetatable(res))
    assert.are.same({ n = 2, views = 17, top = 10 }, res)
    assert.is_true(is_int(res.n) and is_int(res.views) and is_int(res.top))
  end)

  it("annotate example with filter option, max, exists, filter on name, order", function()
    local users = M.User:annotate { n_posts = quay.count("posts"),
                    views   = quay.sum("posts__views", { filter = { posts__published = true } }),
                    last    = quay.max("posts__created"),
                    active  = quay.exists("comments") }
        :filter { n_posts__gte = 2 }:order_by("-views", "name"):all()
    assert.are.equal(1, #users)
    local u = users[1]
    assert.are.equal(F.ann, u)
    assert.are.equal(2, u.n_posts); assert.is_true(is_int(u.n_posts))
    assert.are.equal(10, u.views); assert.is_true(is_int(u.views))
    assert.are.equal("2024-02-01 08:30:00", u.last)
    assert.are.equal(true, u.active)
  end)

  it("annotate order_by over an annotation and a field, every owner kept", function()
    local users = M.User:annotate {
      views = quay.sum("posts__views", { filter = { posts__published = true } }),
      active = quay.exists("comments") }:order_by("-views", "name"):all()
    assert.are.equal(3, #users)
    local vs = {}
    for i, u in ipairs(users) do vs[i] = u.name end
    -- NULL sorts somewhere consistent per backend; the two non-null ones keep order
    local pos = {}
    for i, name in ipairs(vs) do pos[name] = i end
    assert.is_true(pos.Ann < pos.Bob)
    assert.are.equal(false, by(users, "name").Cy.active)
    assert.is_nil(by(users, "name").Cy.views)
  end)

  it("values + annotate example: grouped plain rows with n and a float avg", function()
    local rows = M.Post:values("author__name", "published")
        :annotate { n = quay.count(), avg = quay.avg("views") }
        :order_by("-n", "author__name", "published"):all()
    assert.are.equal(3, #rows)
    for _, r in ipairs(rows) do
      assert.is_nil(getmetatable(r))
      assert.is_true(is_int(r.n))
      assert.is_true(is_float(r.avg))
    end
    local ann_pub
    for _, r in ipairs(rows) do
      if r.author__name == "Ann" and r.published == true then ann_pub = r end
    end
    assert.are.same({ author__name = "Ann", published = true, n = 1, avg = 10.0 }, ann_pub)
    -- the example's own order_by("-n") runs as written
    local ex = M.Post:values("author__name", "published")
        :annotate { n = quay.count(), avg = quay.avg("views") }
        :order_by("-n"):all()
    assert.are.equal(3, #ex)
    local grouped = M.Post:values("author__name")
        :annotate { n = quay.count(), avg = quay.avg("views") }:order_by("-n"):all()
    assert.are.same({ author__name = "Ann", n = 2, avg = 15.0 }, grouped[1])
    assert.is_true(is_float(grouped[1].avg))
  end)

  it("values example: plain tables, not records", function()
    local rows = M.Post:values("title", "author__email"):all()
    assert.are.equal(3, #rows)
    for _, r in ipairs(rows) do
      assert.is_nil(getmetatable(r))
      local keys = 0
      for _ in pairs(r) do keys = keys + 1 end
      assert.are.equal(2, keys)
    end
    assert.are.equal("ann@x", by(rows, "title").one.author__email)
  end)

  it("Comment:values('author'):distinct():count() counts distinct authors", function()
    M.Comment:create { body = "d", author = F.bob }
    assert.are.equal(2, M.Comment:values("author"):distinct():count())
    assert.are.equal(4, M.Comment:values("author"):count())
    local rows = M.Comment:values("author"):distinct():order_by("author"):all()
    assert.are.same({ { author = F.ann.id }, { author = F.bob.id } }, rows)
  end)

  it("filter { views__gt = quay.F('likes') } compares two columns", function()
    local rows = M.Post:filter { views__gt = quay.F("likes") }:order_by("id"):all()
    assert.are.equal(1, #rows)
    assert.are.equal(F.p2, rows[1])
    assert.are.equal(F.p1, M.Post:filter { likes__gt = quay.F("views") }:first())
  end)

  it("update { views = quay.F('views') + 1 } is one atomic UPDATE", function()
    local changed
    local sent = statements(db, function()
      changed = M.Post:filter { id = F.p1.id }:update { views = quay.F("views") + 1 }
    end)
    assert.are.equal(1, changed)
    local updates = 0
    for _, s in ipairs(sent) do if s:match("^%s*UPDATE") then updates = updates + 1 end end
    assert.are.equal(1, updates)
    F.p1:refresh()
    assert.are.equal(11, F.p1.views)
  end)

  it("annotate { score = F('karma') * 2 + count('posts') }", function()
    local us = M.User:annotate { score = quay.F("karma") * 2 + quay.count("posts") }
      :order_by("name"):all()
    assert.are.equal(12, us[1].score)
    assert.are.equal(1, us[2].score)
    assert.are.equal(2, us[3].score)
    assert.is_true(is_int(us[1].score))
  end)

  it("count(path), sum, avg, min, max, exists over relation paths", function()
    local r = M.User:filter { id = F.ann.id }:aggregate {
      c = quay.count("posts"), s = quay.sum("posts__views"), a = quay.avg("posts__views"),
      lo = quay.min("posts__views"), hi = quay.max("posts__views"),
      e = quay.exists("comments"), ne = quay.exists("edited") }
    assert.are.same({ c = 2, s = 30, a = 15.0, lo = 10, hi = 20, e = true, ne = false }, r)
    assert.is_true(is_float(r.a))
  end)

  it("option filter counts only matching related rows", function()
    local r = M.User:annotate {
      n = quay.count("posts", { filter = { posts__published = true } }) }
      :order_by("name"):pluck("n")
    assert.are.same({ 1, 1, 0 }, arr(r))
  end)

  it("option distinct counts distinct values", function()
    M.Post:create { title = "dup", views = 10, author = F.cy }
    local r = M.Post:aggregate { n = quay.count("views", { distinct = true }),
                                 s = quay.sum("views", { distinct = true }),
                                 all = quay.count("views") }
    assert.are.same({ n = 3, s = 37, all = 4 }, r)
  end)

  it("option default is the result for an empty set", function()
    local r = M.Post:filter { views__gt = 1000 }:aggregate {
      s = quay.sum("views", { default = 0 }), a = quay.avg("views", { default = 0.5 }),
      lo = quay.min("views", { default = -1 }), hi = quay.max("title", { default = "none" }) }
    assert.are.same({ s = 0, a = 0.5, lo = -1, hi = "none" }, r)
    local u = M.User:annotate { s = quay.sum("posts__views", { default = 0 }) }
      :filter { id = F.cy.id }:first()
    assert.are.equal(0, u.s)
  end)

  it("empty sets: count 0, exists false, the others nil", function()
    local r = M.Post:filter { views__gt = 1000 }:aggregate {
      n = quay.count(), e = quay.exists("author"), s = quay.sum("views"),
      a = quay.avg("views"), lo = quay.min("views"), hi = quay.max("views") }
    assert.are.equal(0, r.n); assert.is_true(is_int(r.n))
    assert.are.equal(false, r.e)
    assert.is_nil(r.s); assert.is_nil(r.a); assert.is_nil(r.lo); assert.is_nil(r.hi)
    local cy = M.User:annotate { n = quay.count("posts"), s = quay.sum("posts__views"),
                                 a = quay.avg("posts__views"), e = quay.exists("posts") }
      :filter { id = F.cy.id }:first()
    assert.are.equal(0, cy.n); assert.are.equal(false, cy.e)
    assert.is_nil(cy.s); assert.is_nil(cy.a)
  end)

  it("types: sum of integer is integer, avg is float, min/max keep the field type", function()
    local r = M.Post:aggregate {
      s = quay.sum("views"), a = quay.avg("views"), ilo = quay.min("views"),
      rs = quay.sum("rating"), rlo = quay.min("rating"), rhi = quay.max("rating"),
      tlo = quay.min("title"), dhi = quay.max("created"), dlo = quay.min("placed"),
      blo = quay.min("published"), bhi = quay.max("published") }
    assert.are.equal(37, r.s); assert.is_true(is_int(r.s))
    assert.is_true(is_float(r.a))
    assert.is_true(math.abs(r.a - 37 / 3) < 1e-9)
    assert.are.equal(7, r.ilo); assert.is_true(is_int(r.ilo))
    assert.are.equal(3.5, r.rs); assert.is_true(is_float(r.rs))
    assert.are.equal(1.5, r.rlo); assert.is_true(is_float(r.rlo))
    assert.are.equal(2.0, r.rhi); assert.is_true(is_float(r.rhi))
    assert.are.equal("one", r.tlo)
    assert.are.equal("2024-02-01 08:30:00", r.dhi)
    assert.are.equal("2024-01-15", r.dlo)
    assert.are.equal(false, r.blo)
    assert.are.equal(true, r.bhi)
  end)

  it("avg of integers is a float even when whole", function()
    local r = M.Post:filter { author = F.ann }:aggregate { a = quay.avg("views") }
    assert.are.equal(15.0, r.a)
    assert.is_true(is_float(r.a))
  end)

  it("decimal sum/min/max are exact strings with the field's places", function()
    local r = M.Post:aggregate { s = quay.sum("price"), lo = quay.min("price"),
                                 hi = quay.max("price") }
    assert.are.same({ s = "13.35", lo = "3.10", hi = "10.25" }, r)
    local a = M.Post:aggregate { a = quay.avg("price") }
    assert.is_true(is_float(a.a))
    assert.is_true(math.abs(a.a - 6.675) < 1e-9)
    local u = M.User:annotate { s = quay.sum("posts__price") }:filter { id = F.ann.id }:first()
    assert.are.equal("13.35", u.s)
    M.Post:create { title = "x", price = "0.1", author = F.cy }
    M.Post:create { title = "y", price = "0.2", author = F.cy }
    local c = M.User:annotate { s = quay.sum("posts__price") }:filter { id = F.cy.id }:first()
    assert.are.equal("0.30", c.s)
  end)

  it("aggregate filter paths start from the aggregate's model", function()
    local r = M.User:aggregate {
      s = quay.sum("posts__views", { filter = { posts__published = true } }) }
    assert.are.equal(17, r.s)
    local r2 = M.User:aggregate {
      n = quay.count("posts", { filter = { posts__title__startswith = "t" } }) }
    assert.are.equal(2, r2.n)
  end)

  it("aggregate over to-many paths: each related row once per owner, several paths", function()
    -- ann has 2 posts (views 10, 20) and 3 comments
    local r = M.User:filter { id = F.ann.id }:aggregate {
      s = quay.sum("posts__views"), c = quay.count("comments"), p = quay.count("posts") }
    assert.are.same({ s = 30, c = 3, p = 2 }, r)
    -- a filter over a to-many path does not multiply the owners
    local r2 = M.User:filter { comments__body__in = { "a", "b", "c" } }:aggregate {
      s = quay.sum("posts__views"), n = quay.count() }
    assert.are.same({ s = 30, n = 1 }, r2)
    -- all users
    local r3 = M.User:aggregate { s = quay.sum("posts__views"), c = quay.count("comments"),
                                  n = quay.count() }
    assert.are.same({ s = 37, c = 3, n = 3 }, r3)
  end)

  it("no inflation: 2 posts and 3 comments read 2 and 3", function()
    local u = M.User:annotate { p = quay.count("posts"), c = quay.count("comments") }
      :filter { id = F.ann.id }:first()
    assert.are.equal(2, u.p)
    assert.are.equal(3, u.c)
    local u2 = M.User:annotate { s = quay.sum("posts__views"), c = quay.count("comments"),
                                 t = quay.count("posts__tags") }
      :filter { id = F.ann.id }:first()
    assert.are.equal(30, u2.s); assert.are.equal(3, u2.c); assert.are.equal(0, u2.t)
  end)

  it("annotating never duplicates or drops owner rows", function()
    local us = M.User:annotate { p = quay.count("posts"), c = quay.count("comments") }
      :order_by("name"):all()
    assert.are.equal(3, #us)
    assert.are.equal(3, M.User:annotate { p = quay.count("posts") }:count())
    local names = {}
    for i, u in ipairs(us) do names[i] = u.name end
    assert.are.same({ "Ann", "Bob", "Cy" }, names)
  end)

  it("annotation name in filter, exclude, order_by, values, pluck, later annotate", function()
    local qs = M.User:annotate { n = quay.count("posts") }
    assert.are.equal(F.ann, qs:filter { n__gte = 2 }:first())
    assert.are.equal(2, qs:exclude { n = 0 }:count())
    assert.are.same({ "Ann", "Bob", "Cy" }, arr(qs:order_by("-n"):pluck("name")))
    assert.are.same({ 2, 1, 0 }, arr(qs:order_by("-n"):pluck("n")))
    local vs = qs:values("name", "n"):order_by("name"):all()
    assert.are.same({ { name = "Ann", n = 2 }, { name = "Bob", n = 1 }, { name = "Cy", n = 0 } }, vs)
    local later = arr(qs:annotate { m = quay.F("n") * 10 }:order_by("name"):pluck("m"))
    assert.are.same({ 20, 10, 0 }, later)
  end)

  it("with_count's <rel>_count name is usable like an annotation", function()
    local qs = M.User:with_count("posts")
    assert.are.equal(F.bob, qs:filter { posts_count = 1 }:first())
    assert.are.equal(2, qs:exclude { posts_count = 0 }:count())
    assert.are.same({ 2, 1, 0 }, arr(qs:order_by("-posts_count"):pluck("posts_count")))
    assert.are.same({ { name = "Cy", posts_count = 0 } },
      qs:filter { name = "Cy" }:values("name", "posts_count"):all())
    assert.are.same({ 4, 2, 0 },
      arr(qs:annotate { d = quay.F("posts_count") * 2 }:order_by("name"):pluck("d")))
  end)

  it("an annotation name that clashes with a field or relation is misuse", function()
    raises("misuse", function() return M.User:annotate { name = quay.count("posts") }:all() end)
    raises("misuse", function() return M.User:annotate { posts = quay.count("posts") }:all() end)
    raises("misuse", function() return M.User:annotate { karma = quay.F("karma") }:all() end)
    raises("misuse", function() return M.User:annotate { email = quay.count("posts") } end)
    raises("misuse", function() return M.Post:annotate { author = quay.count("tags") } end)
    raises("misuse", function() return M.Post:annotate { author_id = quay.count("tags") } end)
    raises("misuse", function() return M.User:annotate { comments = quay.count("posts") } end)
  end)

  it("with_count's name may not clash with a field either", function()
    local W = db:model("Writer", { name = quay.string(), notes_count = quay.integer { default = 0 } })
    db:model("Note", { writer = quay.belongs_to("Writer", { related_name = "notes" }) })
    db:create_tables()
    raises("misuse", function() return W:with_count("notes"):all() end)
    raises("misuse", function() return W:annotate { notes_count = quay.count("notes") }:all() end)
  end)

  it("an aggregate over a to-many path counts each related row once per owner", function()
    local lua, c = M.Tag:create { name = "lua" }, M.Tag:create { name = "c" }
    F.p1.tags:add(lua, c)
    F.p2.tags:add(lua)
    -- p1 belongs to both tags: counted once for each
    assert.are.same({ n = 3 }, M.Tag:aggregate { n = quay.count("posts") })
    assert.are.same({ n = 2 }, M.Tag:aggregate { n = quay.count("posts", { distinct = true }) })
    assert.are.same({ n = 3, s = 40 },
      M.Tag:aggregate { n = quay.count("posts"), s = quay.sum("posts__views") })
    -- a multi-hop path and exists with a filter
    -- lua is reached twice from ann (through p1 and p2): one related row
    assert.are.same({ n = 2 }, M.User:aggregate { n = quay.count("posts__tags") })
    assert.are.same({ 2, 0, 0 },
      arr(M.User:annotate { n = quay.count("posts__tags") }:order_by("name"):pluck("n")))
    local u = M.User:annotate { e = quay.exists("posts__tags"),
                                big = quay.exists("posts", { filter = { posts__views__gt = 15 } }) }
      :order_by("name"):all()
    assert.are.same({ true, false, false }, { u[1].e, u[2].e, u[3].e })
    assert.are.same({ true, false, false }, { u[1].big, u[2].big, u[3].big })
    -- quay.count { filter = ... } counts the set's own rows that match
    assert.are.same({ n = 1 }, M.Post:aggregate { n = quay.count { filter = { views__gt = 10 } } })
  end)

  it("with_count('posts') equals annotate { posts_count = count('posts') }", function()
    local a = M.User:with_count("posts"):order_by("name"):all()
    local b = M.User:annotate { posts_count = quay.count("posts") }:order_by("name"):all()
    assert.are.equal(#a, #b)
    for i = 1, #a do
      assert.are.equal(b[i].posts_count, a[i].posts_count)
      assert.is_true(is_int(a[i].posts_count))
    end
    assert.are.same({ 2, 1, 0 }, { a[1].posts_count, a[2].posts_count, a[3].posts_count })
  end)

  it("sum/avg of a non-numeric field raise bad_lookup before any SQL", function()
    for _, agg in ipairs { "sum", "avg" } do
      for _, path in ipairs { "title", "published", "created", "placed" } do
        local n = helper.queries(db, function()
          raises("bad_lookup", function()
            return M.Post:aggregate { x = quay[agg](path) }
          end)
        end)
        assert.are.equal(0, n)
      end
      local n = helper.queries(db, function()
        raises("bad_lookup", function()
          return M.User:annotate { x = quay[agg]("posts__title") }:all()
        end)
      end)
      assert.are.equal(0, n)
    end
  end)
end)

describe("contract, second part: values", function()
  local db, M, F

  before_each(function()
    db = helper.open()
    M = schema(db)
    F = fill(M)
  end)
  after_each(function() db:close() end)

  it("a to-many path in values is bad_lookup", function()
    raises("bad_lookup", function() return M.User:values("posts__title"):all() end)
    raises("bad_lookup", function() return M.User:values("posts"):all() end)
    raises("bad_lookup", function() return M.Post:values("tags__name"):all() end)
  end)

  it("a path ending at a to-one relation gives the related key", function()
    local r = M.Post:values("author"):filter { id = F.p3.id }:first()
    assert.are.same({ author = F.bob.id }, r)
    assert.is_true(is_int(r.author))
    local r2 = M.Comment:values("post__author"):first()
    assert.are.same({ post__author = F.bob.id }, r2)
    local r3 = M.Post:values("editor"):filter { id = F.p1.id }:first()
    assert.are.same({}, r3)
  end)

  it("values() with no argument gives every field of the model", function()
    local r = M.Post:values():filter { id = F.p1.id }:first()
    assert.is_nil(getmetatable(r))
    assert.are.equal(F.p1.id, r.id)
    assert.are.equal("one", r.title)
    assert.are.equal(10, r.views)
    assert.are.equal(12, r.likes)
    assert.are.equal(1.5, r.rating)
    assert.are.equal("10.25", r.price)
    assert.are.equal(true, r.published)
    assert.are.equal("2024-01-15 10:00:00", r.created)
    assert.are.equal("2024-01-15", r.placed)
    -- the foreign key reads under its column, as rec:to_table() gives it
    assert.are.equal(F.ann.id, r.author_id)
    assert.is_nil(r.editor_id)
    assert.are.same(M.Post:find(F.p1.id):to_table(), r)
    local u = M.User:values():order_by("id"):first()
    assert.are.same({ id = F.ann.id, name = "Ann", email = "ann@x", karma = 5 }, u)
  end)

  it("values rows carry typed values (integers, booleans, decimals)", function()
    local r = M.Post:values("views", "published", "price", "rating"):filter { id = F.p2.id }:first()
    assert.are.same({ views = 20, published = false, price = "3.10", rating = 2.0 }, r)
    assert.is_true(is_int(r.views))
    assert.is_true(is_float(r.rating))
  end)

  it("values followed by annotate groups rows (GROUP BY)", function()
    local rows = M.Post:values("author"):annotate { n = quay.count(), s = quay.sum("views") }
      :order_by("author"):all()
    assert.are.same({ { author = F.ann.id, n = 2, s = 30 }, { author = F.bob.id, n = 1, s = 7 } }, rows)
    local sql = M.Post:values("author"):annotate { n = quay.count() }:sql()
    assert.is_truthy(sql:upper():find("GROUP BY", 1, true))
  end)

  it("distinct() removes duplicate rows of the selected values", function()
    local rows = M.Post:values("author__name"):distinct():order_by("author__name"):all()
    assert.are.same({ { author__name = "Ann" }, { author__name = "Bob" } }, rows)
    assert.are.equal(2, M.Post:values("author__name"):distinct():count())
    assert.are.equal(3, M.Post:values("author__name"):count())
  end)

  it("pluck takes one path; more is misuse", function()
    assert.are.same({ "one", "three", "two" }, arr(M.Post:order_by("title"):pluck("title")))
    raises("misuse", function() return M.Post:pluck("title", "views") end)
    raises("misuse", function() return M.Post:query():pluck("title", "views") end)
    raises("misuse", function() return M.Post:query():pluck() end)
  end)

  it("computed values columns: quay.trunc month groups", function()
    local Order = db:model("Order", { placed = quay.datetime(), total = quay.integer() })
    db:create_tables()
    Order:create { placed = "2024-01-15 10:00:00", total = 5 }
    Order:create { placed = "2024-01-20 11:00:00", total = 7 }
    Order:create { placed = "2024-02-01 09:30:00", total = 1 }
    local months = Order:values { month = quay.trunc("month", "placed") }
      :annotate { n = quay.count(), sum = quay.sum("total") }:order_by("month"):all()
    assert.are.equal(2, #months)
    assert.are.equal(2, months[1].n); assert.are.equal(12, months[1].sum)
    assert.are.equal(1, months[2].n); assert.are.equal(1, months[2].sum)
    assert.is_true(is_int(months[1].sum))
    assert.is_true(months[1].month < months[2].month)
    assert.is_truthy(tostring(months[1].month):find("2024-01", 1, true))
  end)

  it("quay.trunc year/day, on date and datetime fields", function()
    local ys = M.Post:values { y = quay.trunc("year", "created") }
      :annotate { n = quay.count() }:order_by("y"):all()
    assert.are.equal(2, #ys)
    assert.are.same({ 1, 2 }, { ys[1].n, ys[2].n })
    local ds = M.Post:filter { placed__isnull = false }
      :values { d = quay.trunc("day", "placed") }:order_by("d"):all()
    assert.are.equal(2, #ds)
    assert.is_truthy(tostring(ds[1].d):find("2024-01-15", 1, true))
    local ms = M.Post:filter { placed__isnull = false }
      :values { m = quay.trunc("month", "placed") }:order_by("m"):all()
    assert.is_truthy(tostring(ms[2].m):find("2024-02-01", 1, true))
  end)

  it("a computed values column is usable in order_by, filter and annotate", function()
    local qs = M.Post:values { m = quay.trunc("month", "created") }
      :annotate { n = quay.count() }
    local desc = qs:order_by("-m"):all()
    assert.are.equal(3, #desc)
    assert.is_true(desc[1].m > desc[2].m)
    local jan = M.Post:values { m = quay.trunc("month", "created") }
      :filter { m = desc[2].m }:all()
    assert.are.equal(1, #jan)
    local ann = M.Post:values { v2 = quay.F("views") * 2 }
      :annotate { v3 = quay.F("v2") + 1 }:order_by("v2"):all()
    assert.are.same({ { v2 = 14, v3 = 15 }, { v2 = 20, v3 = 21 }, { v2 = 40, v3 = 41 } }, ann)
    local f = M.Post:values { v2 = quay.F("views") * 2 }:filter { v2__gt = 15 }:count()
    assert.are.equal(2, f)
  end)

  it("values: a table argument names computed columns, among paths too", function()
    local rows = M.Post:values { "title", v2 = quay.F("views") * 2 }:order_by("title"):all()
    assert.are.same({ title = "one", v2 = 20 }, rows[1])
    local mixed = M.Post:values("title", { v2 = quay.F("views") * 2, m = quay.trunc("month", "created") },
                                "author__name"):order_by("title"):all()
    assert.are.equal(3, #mixed)
    assert.are.equal("one", mixed[1].title)
    assert.are.equal(20, mixed[1].v2)
    assert.are.equal("Ann", mixed[1].author__name)
    assert.is_truthy(tostring(mixed[1].m):find("2024-01", 1, true))
    local grouped = M.Post:values("author__name", { y = quay.trunc("year", "created") })
      :annotate { n = quay.count() }:order_by("author__name", "y"):all()
    assert.are.same({ 2, 1 }, { grouped[1].n, grouped[2].n })
    -- a non-expression under a name, or a non-string path, is misuse
    raises("misuse", function() return M.Post:values("title", { v2 = "views" }) end)
    raises("misuse", function() return M.Post:values("title", { 3 }) end)
    raises("misuse", function() return M.Post:values("title", 3) end)
    raises("misuse", function() return M.Post:values(quay.F("title")) end)
  end)
end)

describe("contract, second part: expressions and lookups", function()
  local db, M, F

  before_each(function()
    db = helper.open()
    M = schema(db)
    F = fill(M)
  end)
  after_each(function() db:close() end)

  it("quay.F in exclude", function()
    local rows = arr(M.Post:exclude { views__gt = quay.F("likes") }:order_by("id"):pluck("title"))
    assert.are.same({ "one", "three" }, rows)
  end)

  it("quay.F across a to-one relation", function()
    -- ann karma 5, bob 0
    local rows = arr(M.Post:filter { views__gt = quay.F("author__karma") }:order_by("id"):pluck("title"))
    assert.are.same({ "one", "two", "three" }, rows)
    local r2 = arr(M.Post:filter { likes__lt = quay.F("author__karma") }:pluck("title"))
    assert.are.same({ "two" }, r2)
  end)

  it("quay.F in order_by with :desc() and ascending", function()
    assert.are.same({ "two", "one", "three" }, arr(M.Post:order_by(quay.F("views"):desc()):pluck("title")))
    assert.are.same({ "three", "one", "two" }, arr(M.Post:order_by(quay.F("views")):pluck("title")))
    assert.are.same({ "one", "three", "two" },
      arr(M.Post:order_by((quay.F("likes") - quay.F("views")):desc()):pluck("title")))
  end)

  it("+ - * / combine expressions and Lua numbers, on either side", function()
    local r = M.Post:annotate { a = quay.F("views") + 1, b = 1 + quay.F("views"),
                                c = quay.F("views") - quay.F("likes"), d = 100 - quay.F("views"),
                                e = quay.F("views") * 3, f = 3 * quay.F("views"),
                                g = quay.F("views") / 4, h = 40 / quay.F("views") }
      :filter { id = F.p2.id }:first()
    assert.are.equal(21, r.a); assert.are.equal(21, r.b)
    assert.are.equal(19, r.c); assert.are.equal(80, r.d)
    assert.are.equal(60, r.e); assert.are.equal(60, r.f)
    assert.are.equal(5, r.g); assert.are.equal(2, r.h)
  end)

  it("quay.F in update across a to-one relation and with relations", function()
    local n = M.Post:filter { author = F.ann }:update { views = quay.F("author__karma") + quay.F("likes") }
    assert.are.equal(2, n)
    assert.are.same({ 17, 6 }, arr(M.Post:filter { author = F.ann }:order_by("id"):pluck("views")))
  end)

  it("date parts __year, __month, __day filter datetimes", function()
    assert.are.equal(2, M.Post:filter { created__year = 2024 }:count())
    assert.are.equal(1, M.Post:filter { created__year = 2024, created__month = 1 }:count())
    assert.are.equal(1, M.Post:filter { created__day = 31 }:count())
    assert.are.equal(2, M.Post:filter { created__month__gte = 2 }:count())
    assert.are.equal(1, M.Post:filter { created__year__lt = 2024 }:count())
    assert.are.equal(2, M.Post:filter { created__day__in = { 1, 31 } }:count())
  end)

  it("date parts on date fields", function()
    assert.are.equal(2, M.Post:filter { placed__year = 2024 }:count())
    assert.are.equal(1, M.Post:filter { placed__month = 2 }:count())
    assert.are.equal(1, M.Post:filter { placed__day = 15 }:count())
    assert.are.equal(1, M.Post:exclude { placed__day = 15 }:filter { placed__isnull = false }:count())
  end)

  it("date parts are UTC over ISO input with offsets", function()
    local p = M.Post:create { title = "tz", author = F.cy, created = "2025-03-01T01:30:00+02:00" }
    assert.are.equal(p, M.Post:filter { created__year = 2025, created__month = 2, created__day = 28 }:first())
  end)

  it("date parts on a non-date field are bad_lookup", function()
    raises("bad_lookup", function() return M.Post:filter { views__year = 2024 }:all() end)
    raises("bad_lookup", function() return M.Post:filter { title__month = 1 }:all() end)
  end)

  it("quay.trunc with an unknown unit or a non-date path is refused", function()
    local ok = pcall(function() return M.Post:values { m = quay.trunc("week", "created") }:all() end)
    assert.is_false(ok)
    local ok2 = pcall(function() return M.Post:values { m = quay.trunc("month", "title") }:all() end)
    assert.is_false(ok2)
  end)

  it("iexact, istartswith, iendswith are case-insensitive", function()
    assert.are.equal(F.ann, M.User:filter { name__iexact = "ANN" }:first())
    assert.are.equal(F.bob, M.User:filter { name__istartswith = "b" }:first())
    assert.are.equal(F.ann, M.User:filter { name__iendswith = "NN" }:first())
    assert.are.equal(0, M.User:filter { name__iexact = "AN" }:count())
    assert.are.equal(2, M.Post:filter { title__iendswith = "E" }:count())
    -- LIKE wildcards in the value are literal
    assert.are.equal(0, M.User:filter { name__istartswith = "%" }:count())
    assert.are.equal(0, M.User:filter { name__iexact = "A_N" }:count())
    assert.are.equal(0, M.User:filter { name__iendswith = "_" }:count())
  end)

  it("qs:sql() and qs:explain() on annotated and values sets", function()
    local sql, params = M.User:annotate { n = quay.count("posts") }:filter { n__gte = 1 }:sql()
    assert.are.equal("string", type(sql))
    assert.are.equal("table", type(params))
    local vsql = M.Post:values("title"):filter { views__gt = 3 }:sql()
    assert.are.equal("string", type(vsql))
    assert.is_truthy(vsql:upper():find("SELECT", 1, true))
    local plan = M.Post:values("title"):explain()
    assert.is_true(#plan >= 1)
    local plan2 = M.User:annotate { n = quay.count("posts") }:explain()
    assert.is_true(#plan2 >= 1)
  end)

  it("Model:raw with ? placeholders returns records that save as updates", function()
    local hot = M.Post:raw("SELECT * FROM posts WHERE views > ? ORDER BY id", { 8 })
    assert.are.equal(2, #hot)
    assert.are.equal(F.p1, hot[1])
    hot[1].title = "first"
    hot[1]:save()
    assert.are.equal(3, M.Post:count())
    assert.are.equal("first", M.Post:find(F.p1.id).title)
    local two = M.Post:raw("SELECT * FROM posts WHERE views > ? AND title = ?", { 8, "two" })
    assert.are.equal(1, #two)
    assert.are.equal(F.p2, two[1])
    assert.is_true(is_int(two[1].views))
    assert.are.equal("3.10", two[1].price)
    assert.are.equal(false, two[1].published)
  end)
end)

describe("contract, second part: misuse of the read calls", function()
  local db, M

  before_each(function()
    db = helper.open()
    M = schema(db)
    fill(M)
  end)
  after_each(function() db:close() end)

  it("aggregate: a non-table, a non-aggregate value, an extra argument", function()
    raises("misuse", function() return M.Post:aggregate() end)
    raises("misuse", function() return M.Post:aggregate("n") end)
    raises("misuse", function() return M.Post:aggregate { n = 1 } end)
    raises("misuse", function() return M.Post:aggregate({ n = quay.count() }, {}) end)
    raises("misuse", function() return M.Post:aggregate {} end)
    raises("misuse", function() return M.Post:aggregate { quay.count() } end)
  end)

  it("aggregate constructors: unknown option, wrong option types, extra arguments", function()
    raises("misuse", function() return quay.count("posts", { filtre = {} }) end)
    raises("misuse", function() return quay.sum("views", { default = 0 }, 3) end)
    raises("misuse", function() return quay.sum() end)
    raises("misuse", function() return quay.sum(3) end)
    raises("misuse", function() return quay.max("views", "x") end)
    raises("misuse", function() return quay.count("posts", { distinct = "yes" }) end)
    raises("misuse", function() return quay.count("posts", { filter = "x" }) end)
    raises("misuse", function() return quay.exists() end)
  end)

  it("annotate: non-table, empty, bad values, extra argument", function()
    raises("misuse", function() return M.User:annotate() end)
    raises("misuse", function() return M.User:annotate("n") end)
    raises("misuse", function() return M.User:annotate {} end)
    raises("misuse", function() return M.User:annotate { n = "posts" } end)
    raises("misuse", function() return M.User:annotate({ n = quay.count("posts") }, 1) end)
  end)

  it("values: bad argument types, extra mixing", function()
    raises("misuse", function() return M.Post:values(1) end)
    raises("misuse", function() return M.Post:values { m = "views" } end)
    raises("misuse", function() return M.Post:order_by(1) end)
    raises("misuse", function() return M.User:with_count("posts", 1) end)
    raises("unknown_field", function() return M.Post:values("nope"):all() end)
  end)

  it("distinct, count, exists, all, explain take no argument", function()
    raises("misuse", function() return M.Post:values("title"):distinct("title") end)
    raises("misuse", function() return M.Post:query():count("title") end)
    raises("misuse", function() return M.Post:query():exists(1) end)
    raises("misuse", function() return M.Post:query():all(1) end)
    raises("misuse", function() return M.Post:query():first(1) end)
    raises("misuse", function() return M.Post:query():iter(1) end)
    raises("misuse", function() return M.Post:count(1) end)
    raises("misuse", function() return M.Post:exists(1) end)
  end)

  it("quay.F and trunc argument shapes", function()
    raises("misuse", function() return quay.F() end)
    raises("misuse", function() return quay.F(1) end)
    raises("misuse", function() return quay.F("views", "likes") end)
    raises("misuse", function() return quay.trunc("month") end)
    raises("misuse", function() return quay.trunc("month", "placed", "x") end)
    raises("misuse", function() return quay.F("views"):desc(1) end)
  end)

  it("an unknown name in F is unknown_field; F across a to-many is bad_lookup", function()
    raises("unknown_field", function() return M.Post:filter { views__gt = quay.F("nope") }:all() end)
    raises("bad_lookup", function() return M.User:filter { karma__gt = quay.F("posts__views") }:all() end)
  end)

  it("an expression of another kind of type is bad_lookup before SQL", function()
    local n = helper.queries(db, function()
      raises("bad_lookup", function() return M.Post:filter { title = quay.F("views") }:all() end)
      raises("bad_lookup", function() return M.Post:query():update { title = quay.F("views") } end)
    end)
    assert.are.equal(0, n)
  end)

  it("Model:raw: argument shapes", function()
    raises("misuse", function() return M.Post:raw() end)
    raises("misuse", function() return M.Post:raw("SELECT * FROM posts", "x") end)
    raises("misuse", function() return M.Post:raw("SELECT * FROM posts", {}, 1) end)
  end)

  it("sql and explain take no argument", function()
    raises("misuse", function() return M.Post:query():sql(1) end)
    raises("misuse", function() return M.Post:query():explain(1) end)
  end)
end)

describe("contract, second part: model shortcuts", function()
  local db, M, F

  before_each(function()
    db = helper.open()
    M = schema(db)
    F = fill(M)
  end)
  after_each(function() db:close() end)

  it("every query-set method is a model method", function()
    local P = M.Post
    assert.are.same(P:query():aggregate { n = quay.count() }, P:aggregate { n = quay.count() })
    assert.are.same({ "one", "three", "two" }, arr(P:order_by("title"):pluck("title")))
    assert.are.same(arr(P:query():order_by("title"):pluck("title")), arr(P:order_by("title"):pluck("title")))
    assert.are.same(arr(P:query():order_by("id"):pluck("id")), arr(P:order_by("id"):pluck("id")))
    assert.are.equal(2, #P:limit(2):all())
    assert.are.equal(1, #P:order_by("id"):offset(2):all())
    assert.are.equal(1, #M.Post:offset(2):all())
    assert.are.equal(2, M.User:with_count("posts"):order_by("name"):first().posts_count)
    assert.are.equal(3, #P:values("title"):all())
    assert.are.equal(3, #P:values():all())
    assert.are.equal(2, P:distinct():values("author"):count())
    assert.are.equal(3, #P:annotate { n = quay.count("tags") }:all())
    assert.is_true(P:exists())
    assert.are.equal("string", type(P:sql()))
    assert.is_true(#P:explain() >= 1)
    assert.are.equal(3, #P:select_related("author"):all())
    assert.are.equal(3, #P:prefetch_related("tags"):all())
    assert.are.equal(3, #P:with("author"):all())
    assert.are.equal(1, M.User:where_has("comments"):count())
    assert.are.equal(2, M.User:where_doesnt_have("comments"):count())
    local n = 0
    for _ in P:iter() do n = n + 1 end
    assert.are.equal(3, n)
    db:transaction(function()
      assert.are.equal(3, #P:select_for_update():all())
      assert.are.equal(3, #P:select_for_update { nowait = true }:all())
    end)
    assert.are.equal(3, P:update { likes = 0 })
  end)

  it("scopes are model methods too", function()
    local S = db:model("Scoped", {
      title = quay.string(),
      scopes = { titled = function(qs, t) return qs:filter { title = t } end },
    })
    db:create_tables()
    S:create { title = "app" }; S:create { title = "b" }
    assert.are.equal(1, S:titled("app"):count())
    assert.are.equal(1, S:query():titled("app"):count())
    assert.are.equal(1, S:filter { id__gt = 0 }:titled("b"):count())
  end)

  it("filter/exclude take exactly one conditions table", function()
    raises("misuse", function() return M.Post:filter({ views = 1 }, { likes = 2 }) end)
    raises("misuse", function() return M.Post:exclude({ views = 1 }, { likes = 2 }) end)
    raises("misuse", function() return M.Post:query():filter({ views = 1 }, { likes = 2 }) end)
    raises("misuse", function() return M.Post:query():exclude({ views = 1 }, 1) end)
    raises("misuse", function() return M.Post:filter() end)
    raises("misuse", function() return M.Post:filter("views") end)
  end)

  it("filter {} / exclude {} / get {} raise misuse; Model:query() is all", function()
    raises("misuse", function() return M.Post:filter {} end)
    raises("misuse", function() return M.Post:exclude {} end)
    raises("misuse", function() return M.Post:get {} end)
    raises("misuse", function() return M.Post:query():filter {} end)
    raises("misuse", function() return M.Post:query():exclude {} end)
    raises("misuse", function() return M.Post:query():get {} end)
    raises("misuse", function() return F.ann.posts:filter {} end)
    assert.are.equal(3, #M.Post:query():all())
    local ok, err = pcall(M.Post.get, M.Post, {})
    assert.is_false(ok); assert.are.equal("misuse", err.code)
    local ok2, err2 = pcall(M.Post.filter, M.Post, {})
    assert.is_false(ok2); assert.are.equal("misuse", err2.code)
  end)

  it("limit/offset argument shapes", function()
    raises("misuse", function() return M.Post:limit() end)
    raises("misuse", function() return M.Post:limit("2") end)
    raises("misuse", function() return M.Post:limit(-1) end)
    raises("misuse", function() return M.Post:limit(1.5) end)
    raises("misuse", function() return M.Post:limit(1, 2) end)
    raises("misuse", function() return M.Post:offset(1, 2) end)
  end)
end)

describe("contract, second part: quay.open options and closed db", function()
  it("quay.open accepts busy_timeout, strict, prepare, replicas, sticky on SQLite", function()
    local db = quay.open("sqlite::memory:", { busy_timeout = 100, strict = true, prepare = false,
                                             replicas = {}, sticky = 2 })
    local T = db:model("T", { x = quay.integer() })
    db:create_tables()
    T:create { x = 1 }
    assert.are.equal(1, T:count())
    db:close()
    local db2 = quay.open("sqlite::memory:", { replicas = { "sqlite::memory:" }, sticky = 0 })
    local T2 = db2:model("T", { x = quay.integer() })
    db2:create_tables()
    T2:create { x = 1 }
    assert.are.equal(1, T2:count())
    db2:close()
  end)

  it("quay.open: any other key, or a wrong type, is misuse", function()
    raises("misuse", function() return quay.open(helper.url, { busy = 1 }) end)
    raises("misuse", function() return quay.open(helper.url, { prepare = "no" }) end)
    raises("misuse", function() return quay.open(helper.url, { sticky = "x" }) end)
    raises("misuse", function() return quay.open(helper.url, { replicas = "x" }) end)
    raises("misuse", function() return quay.open(helper.url, { strict = 1 }) end)
    raises("misuse", function() return quay.open("sqlite::memory:", { busy_timeout = "x" }) end)
    raises("misuse", function() return quay.open(helper.url, "x") end)
    raises("misuse", function() return quay.open(helper.url, {}, 1) end)
    raises("misuse", function() return quay.open() end)
  end)

  it("a closed db raises connection, saying it is closed, before any other check", function()
    local db = helper.open()
    local M = schema(db)
    local F = fill(M)
    local qs = M.Post:filter { views__gt = 1 }
    db:close()
    local calls = {
      function() return M.Post:filter {} end,                       -- misuse otherwise
      function() return M.Post:filter { nope = 1 } end,             -- unknown_field otherwise
      function() return M.Post:aggregate { s = quay.sum("title") } end,  -- bad_lookup otherwise
      function() return M.Post:aggregate { n = quay.count() } end,
      function() return qs:count() end,
      function() return qs:all() end,
      function() return qs:sql() end,
      function() return M.Post:values("title"):all() end,
      function() return M.Post:create { title = 5 } end,             -- validation otherwise
      function() return M.Post:upsert({ { title = "x" } }, { conflict = { "title" } }) end,
      function() F.p1.title = "new"; return F.p1:save() end,
      function() return F.p1:save { fieldz = {} } end,
      function() return M.Post:bulk_update({ F.p1 }, { "nope" }) end,
      function() return M.User:get_or_create({ email = "q@x" }, { name = "Q" }) end,
      function() return M.User:update_or_create({ email = "q@x" }, { name = "Q" }) end,
      function() return db:transaction(function() end, { isolation = "bogus" }) end,
      function() return db:transaction(function() end) end,
      function() return db:rows("SELECT 1", {}) end,
      function() return db:execute("SELECT 1", {}, 1) end,
      function() return M.Post:raw("SELECT * FROM posts") end,
      function() return F.p1.tags:add(1, 2, 3) end,
      function() return db:model("Late", { x = quay.integer(), bogus = 1 }) end,
      function() return M.Post:select_for_update():all() end,
    }
    for i, fn in ipairs(calls) do
      local ok, err = pcall(fn)
      assert.is_false(ok, "call " .. i .. " succeeded on a closed db")
      assert.are.equal("table", type(err), "call " .. i .. ": " .. tostring(err))
      assert.are.equal("connection", err.code, "call " .. i .. ": " .. tostring(err.message))
      assert.is_truthy(tostring(err.message):lower():find("closed", 1, true),
        "call " .. i .. ": " .. tostring(err.message))
    end
  end)
end)

describe("contract, second part: err.field on validation", function()
  local db

  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("every validation about one field carries err.field and err.model", function()
    local V = db:model("Val", {
      n = quay.integer { min = 0, max = 10, default = 1 },
      s = quay.string { max = 3, null = true },
      c = quay.string { choices = { "a", "b" }, default = "a" },
      v = quay.string { null = true, validate = function(x) return x ~= "bad", "is bad" end },
      d = quay.date { null = true },
      t = quay.datetime { null = true },
      m = quay.decimal { digits = 5, places = 2, null = true },
      req = quay.string { default = "r" },
      b = quay.boolean { default = false },
    })
    db:create_tables()
    local cases = {
      { "n", { n = "x" } },           -- type
      { "n", { n = 11 } },            -- max
      { "n", { n = -1 } },            -- min
      { "s", { s = "abcd" } },        -- string max
      { "c", { c = "z" } },           -- choices
      { "v", { v = "bad" } },         -- validate
      { "d", { d = "2023-02-29" } },  -- impossible date
      { "t", { t = "2024-02-30 00:00:00" } },
      { "m", { m = "1.234" } },       -- decimal places
      { "m", { m = "abc" } },
      { "req", { req = quay.null } }, -- null
      { "b", { b = "yes" } },
    }
    for _, case in ipairs(cases) do
      local field, vals = case[1], case[2]
      local err = raises("validation", function() return V:create(vals) end)
      assert.are.equal(field, err.field, "field for " .. field)
      assert.are.equal("Val", err.model, "model for " .. field)
    end
    assert.are.equal(0, V:count())
    -- assignment and save also carry it
    local r = V:create {}
    local err = raises("validation", function() r.n = "x"; return r:save() end)
    assert.are.equal("n", err.field)
    local err2 = raises("validation", function()
      return V:query():update { s = "abcdef" }
    end)
    assert.are.equal("s", err2.field)
    assert.are.equal("Val", err2.model)
    local err3 = raises("validation", function()
      return V:bulk_create { { n = 1 }, { n = 99 } }
    end)
    assert.are.equal("n", err3.field)
    assert.are.equal(1, V:count())
    local K = db:model("Keyed", { k = quay.string { unique = true }, n = quay.integer { max = 5, default = 0 } })
    db:create_tables()
    local errs = {
      raises("validation", function() return V:query():update { c = "z" } end),
      raises("validation", function() return V:query():update { m = "1.234" } end),
      raises("validation", function() return K:upsert({ { k = "a", n = 9 } }, { conflict = { "k" } }) end),
      raises("validation", function() return K:get_or_create({ k = "a" }, { n = 9 }) end),
      raises("validation", function() return K:update_or_create({ k = "a" }, { n = "x" }) end),
    }
    local want = { "c", "m", "n", "n", "n" }
    for i, e in ipairs(errs) do
      assert.are.equal(want[i], e.field)
      assert.is_truthy(e.model == "Val" or e.model == "Keyed")
    end
    local kr = K:create { k = "b" }
    kr.n = 7
    local e4 = raises("validation", function() return K:bulk_update({ kr }, { "n" }) end)
    assert.are.equal("n", e4.field); assert.are.equal("Keyed", e4.model)
    -- the model's own check names no field
    local Mv = db:model("ModelCheck", {
      a = quay.integer(), b = quay.integer(),
      validate = function(rec) if rec.a > rec.b then return false, "a after b" end return true end,
    })
    db:create_tables()
    local e5 = raises("validation", function() return Mv:create { a = 2, b = 1 } end)
    assert.is_nil(e5.field)
    assert.are.equal("ModelCheck", e5.model)
  end)
end)

describe("contract, second part: writes", function()
  local db, M

  before_each(function()
    db = helper.open()
    M = schema(db)
  end)
  after_each(function() db:close() end)

  it("save writes only changed fields, nothing when nothing changed", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    assert.are.equal(0, #ann:changed())
    assert.are.equal(0, #statements(db, function() ann:save() end))
    ann.name = "Anne"
    assert.are.same({ "name" }, ann:changed())
    local sent = statements(db, function() ann:save() end)
    assert.are.equal(1, #sent)
    assert.is_truthy(sent[1]:find('"name"', 1, true))
    assert.is_falsy(sent[1]:find('"karma"', 1, true))
    assert.is_falsy(sent[1]:find('"email"', 1, true))
    assert.are.equal(0, #ann:changed())
    assert.are.equal(0, #statements(db, function() ann:save() end))
    -- a loaded record too
    local again = M.User:find(ann.id)
    assert.are.equal(0, #statements(db, function() again:save() end))
    again.karma = 4
    local s2 = statements(db, function() again:save() end)
    assert.are.equal(1, #s2)
    assert.is_truthy(s2[1]:find('"karma"', 1, true))
    assert.is_falsy(s2[1]:find('"name"', 1, true))
  end)

  it("setting a field to its current value is no change", function()
    local ann = M.User:create { email = "ann@x", name = "Ann", karma = 2 }
    ann.name = "Ann"
    ann.karma = 2
    assert.are.equal(0, #ann:changed())
    assert.are.equal(0, #statements(db, function() ann:save() end))
  end)

  it("changed() lists every changed field name, relation as its field", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local bob = M.User:create { email = "bob@x", name = "Bob" }
    local p = M.Post:create { title = "t", author = ann }
    p.title = "u"; p.views = 3; p.author = bob
    local ch = p:changed()
    table.sort(ch)
    -- a relation is listed under its column, the name save { fields } takes
    assert.are.same({ "author_id", "title", "views" }, ch)
    raises("misuse", function() return p:changed(1) end)
    p:save { fields = p:changed() }
    assert.are.equal(0, #p:changed())
    local back = M.Post:find(p.id)
    assert.are.equal("u", back.title); assert.are.equal(3, back.views)
    assert.are.equal(bob.id, back.author_id)
  end)

  it("save { fields = {...} } writes exactly those fields", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    ann.name, ann.karma = "Other", 3
    local sent = statements(db, function() ann:save { fields = { "karma" } } end)
    assert.are.equal(1, #sent)
    assert.is_truthy(sent[1]:find('"karma"', 1, true))
    assert.is_falsy(sent[1]:find('"name"', 1, true))
    local fresh = M.User:find(ann.id)
    assert.are.equal("Ann", fresh.name); assert.are.equal(3, fresh.karma)
    -- name is still a pending change
    assert.are.same({ "name" }, ann:changed())
    -- an unchanged field named in fields is written all the same
    local s2 = statements(db, function() ann:save { fields = { "email" } } end)
    assert.are.equal(1, #s2)
    assert.is_truthy(s2[1]:find('"email"', 1, true))
    assert.is_falsy(s2[1]:find('"name"', 1, true))
  end)

  it("save options: unknown key, unknown field, wrong shapes are refused", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    ann.name = "X"
    raises("misuse", function() return ann:save { feilds = { "name" } } end)
    raises("misuse", function() return ann:save { fields = "name" } end)
    raises("misuse", function() return ann:save("name") end)
    raises("misuse", function() return ann:save({}, 1) end)
    raises("unknown_field", function() return ann:save { fields = { "nope" } } end)
    assert.are.equal("Ann", M.User:find(ann.id).name)
  end)

  it("auto_now set on every save that writes; auto_now_add/auto_now on every insert", function()
    local A = db:model("Stamp", {
      title = quay.string(),
      made = quay.datetime { auto_now_add = true },
      touched = quay.datetime { auto_now = true },
    })
    db:create_tables()
    local pat = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"
    local a = A:create { title = "a" }
    assert.is_truthy(a.made:match(pat)); assert.is_truthy(a.touched:match(pat))
    local b = A:new { title = "b" }; b:save()
    assert.is_truthy(b.made:match(pat)); assert.is_truthy(b.touched:match(pat))
    local c = A:bulk_create { { title = "c" } }[1]
    assert.is_truthy(c.made:match(pat)); assert.is_truthy(c.touched:match(pat))
    local Uq = db:model("StampU", {
      key = quay.string { unique = true },
      made = quay.datetime { auto_now_add = true },
      touched = quay.datetime { auto_now = true },
    })
    db:create_tables()
    local u = Uq:upsert({ { key = "k" } }, { conflict = { "key" } })[1]
    assert.is_truthy(u.made:match(pat)); assert.is_truthy(u.touched:match(pat))
    local stored = Uq:find(u.id)
    assert.is_truthy(stored.made:match(pat)); assert.is_truthy(stored.touched:match(pat))
    -- a save that writes sets auto_now; a save that writes nothing does not
    A:filter { id = a.id }:update { touched = "2000-01-01 00:00:00" }
    a:refresh()
    assert.are.equal(0, #statements(db, function() a:save() end))
    assert.are.equal("2000-01-01 00:00:00", A:find(a.id).touched)
    a.title = "a2"; a:save()
    assert.are_not.equal("2000-01-01 00:00:00", A:find(a.id).touched)
    assert.is_truthy(A:find(a.id).touched:match(pat))
    assert.are.equal(a.touched, A:find(a.id).touched)
    -- save { fields } writes, so sets auto_now too
    A:filter { id = a.id }:update { touched = "2000-01-01 00:00:00" }
    a:refresh()
    a:save { fields = { "title" } }
    assert.are_not.equal("2000-01-01 00:00:00", A:find(a.id).touched)
  end)

  it("auto_now/auto_now_add are truncated to the second, never rounded up", function()
    local A = db:model("Stamp", {
      made = quay.datetime { auto_now_add = true },
      touched = quay.datetime { auto_now = true },
      n = quay.integer { default = 0 },
    })
    db:create_tables()
    local function secs(s)
      local y, mo, d, h, mi, se = s:match("^(%d+)%-(%d+)%-(%d+) (%d+):(%d+):(%d+)$")
      assert.is_truthy(y, "not a whole-second datetime: " .. tostring(s))
      -- os.time with a UTC table: compare against os.time() via !*t
      return { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
               hour = tonumber(h), min = tonumber(mi), sec = tonumber(se) }
    end
    local function utc_now()
      local t = os.date("!*t")
      return t.year * 1e10 + t.month * 1e8 + t.day * 1e6 + t.hour * 1e4 + t.min * 1e2 + t.sec
    end
    local function key(t)
      return t.year * 1e10 + t.month * 1e8 + t.day * 1e6 + t.hour * 1e4 + t.min * 1e2 + t.sec
    end
    for _ = 1, 8 do
      local r = A:create {}
      local after = utc_now()
      assert.is_true(key(secs(r.made)) <= after, "rounded up: " .. r.made)
      assert.is_true(key(secs(A:find(r.id).touched)) <= after)
      r.n = r.n + 1; r:save()
      local after2 = utc_now()
      assert.is_true(key(secs(A:find(r.id).touched)) <= after2)
      local b = A:bulk_create { {} }[1]
      local after3 = utc_now()
      assert.is_true(key(secs(A:find(b.id).made)) <= after3)
      -- wait a fraction of a second to land elsewhere in the second
      local t0 = os.clock(); while os.clock() - t0 < 0.11 do end
    end
  end)

  it("get_or_create returns (record, created)", function()
    local bob, created = M.User:get_or_create({ email = "bob@x" }, { name = "Bob" })
    assert.are.equal(true, created)
    assert.are.equal("Bob", bob.name)
    assert.is_true(is_int(bob.id))
    local again, created2 = M.User:get_or_create({ email = "bob@x" }, { name = "Other" })
    assert.are.equal(false, created2)
    assert.are.equal(bob, again)
    assert.are.equal("Bob", again.name)
    assert.are.equal(1, M.User:count())
    -- defaults are optional when conds give every required field
    local cy, c3 = M.User:get_or_create { email = "cy@x", name = "Cy" }
    assert.are.equal(true, c3); assert.are.equal("Cy", cy.name)
    local n = select("#", M.User:get_or_create { email = "cy@x", name = "Cy" })
    assert.are.equal(2, n)
  end)

  it("update_or_create returns (record, created) and updates with defaults", function()
    M.User:get_or_create({ email = "bob@x" }, { name = "Bob" })
    local upd, created = M.User:update_or_create({ email = "bob@x" }, { name = "Robert" })
    assert.are.equal(false, created)
    assert.are.equal("Robert", upd.name)
    assert.are.equal("Robert", M.User:get { email = "bob@x" }.name)
    local new, created2 = M.User:update_or_create({ email = "dan@x" }, { name = "Dan", karma = 2 })
    assert.are.equal(true, created2)
    assert.are.equal(2, M.User:get { email = "dan@x" }.karma)
    assert.are.equal("Dan", new.name)
  end)

  it("get_or_create/update_or_create misuse: shapes, extra arguments", function()
    raises("misuse", function() return M.User:get_or_create() end)
    raises("misuse", function() return M.User:get_or_create {} end)
    raises("misuse", function() return M.User:get_or_create("x") end)
    raises("misuse", function() return M.User:get_or_create({ email = "a" }, "x") end)
    raises("misuse", function() return M.User:get_or_create({ email = "a" }, { name = "a" }, 1) end)
    raises("misuse", function() return M.User:update_or_create({}, { name = "a" }) end)
    raises("misuse", function() return M.User:update_or_create({ email = "a" }, { name = "a" }, 1) end)
    raises("unknown_field", function() return M.User:get_or_create({ email = "a" }, { nope = 1 }) end)
    assert.are.equal(0, M.User:count())
  end)

  it("get_or_create is safe against a concurrent insert of the same unique key", function()
    -- a second handle inserts the row between the lookup and the insert
    if not helper.is_pg then
      -- the in-memory SQLite db cannot be shared: use a file
      return
    end
    local db2 = quay.open(helper.url)
    local U2 = db2:model("User", {
      name = quay.string(),
      email = quay.string { unique = true, null = true },
      karma = quay.integer { default = 0 },
    })
    local first = true
    db:on_query(function(sql)
      if first and sql:match("^%s*INSERT") then
        first = false
        U2:create { name = "Racer", email = "race@x" }
      end
    end)
    local ok, rec, created = pcall(M.User.get_or_create, M.User, { email = "race@x" }, { name = "Me" })
    db:on_query(nil)
    db2:close()
    assert.is_true(ok, tostring(rec))
    assert.are.equal(false, created)
    assert.are.equal("Racer", rec.name)
    assert.are.equal(1, M.User:filter { email = "race@x" }:count())
  end)

  it("update_or_create is safe against a concurrent insert of the same unique key", function()
    if not helper.is_pg then return end
    local db2 = quay.open(helper.url)
    local U2 = db2:model("User", {
      name = quay.string(),
      email = quay.string { unique = true, null = true },
      karma = quay.integer { default = 0 },
    })
    local first = true
    db:on_query(function(sql)
      if first and sql:match("^%s*INSERT") then
        first = false
        U2:create { name = "Racer", email = "race@x" }
      end
    end)
    local ok, rec, created = pcall(M.User.update_or_create, M.User, { email = "race@x" }, { name = "Me" })
    db:on_query(nil)
    db2:close()
    assert.is_true(ok, tostring(rec))
    assert.are.equal(false, created)
    assert.are.equal("Me", rec.name)
    assert.are.equal(1, M.User:filter { email = "race@x" }:count())
    assert.are.equal("Me", M.User:get { email = "race@x" }.name)
  end)

  it("upsert example: conflict and update, records with keys", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    M.User:create { email = "bob@x", name = "Bob" }
    local recs = M.User:upsert({ { email = "ann@x", name = "Ann B" }, { email = "cy@x", name = "Cy" } },
                               { conflict = { "email" }, update = { "name" } })
    assert.are.equal(2, #recs)
    assert.are.equal(ann, recs[1])
    assert.is_true(is_int(recs[2].id))
    assert.are.equal(3, M.User:count())
    assert.are.equal("Ann B", M.User:find(ann.id).name)
    assert.are.equal("Cy", M.User:find(recs[2].id).name)
  end)

  it("upsert: update lists only the fields written on conflict", function()
    local ann = M.User:create { email = "ann@x", name = "Ann", karma = 1 }
    M.User:upsert({ { email = "ann@x", name = "New", karma = 9 } },
                  { conflict = { "email" }, update = { "karma" } })
    local r = M.User:find(ann.id)
    assert.are.equal("Ann", r.name); assert.are.equal(9, r.karma)
  end)

  it("upsert: update defaults to every non-conflict field given", function()
    local ann = M.User:create { email = "ann@x", name = "Ann", karma = 1 }
    M.User:upsert({ { email = "ann@x", name = "New" } }, { conflict = { "email" } })
    local r = M.User:find(ann.id)
    assert.are.equal("New", r.name)
    assert.are.equal(1, r.karma)   -- not given, not updated
  end)

  it("upsert is batched in one transaction", function()
    local rows = {}
    for i = 1, 60 do rows[i] = { email = "u" .. i .. "@x", name = "u" .. i } end
    local sent = statements(db, function()
      M.User:upsert(rows, { conflict = { "email" }, update = { "name" } })
    end)
    assert.is_true(#sent < 10, #sent .. " statements")
    assert.are.equal(60, M.User:count())
  end)

  it("upsert on the primary key and on a unique_together set", function()
    local K = db:model("Pair", {
      a = quay.string(), b = quay.string(), n = quay.integer { default = 0 },
      unique_together = { { "a", "b" } },
    })
    db:create_tables()
    K:create { a = "x", b = "y", n = 1 }
    local r = K:upsert({ { a = "x", b = "y", n = 5 }, { a = "x", b = "z", n = 2 } },
                       { conflict = { "a", "b" } })
    assert.are.equal(2, #r)
    assert.are.equal(2, K:count())
    assert.are.equal(5, K:get { a = "x", b = "y" }.n)
    local r2 = K:upsert({ { id = r[2].id, a = "x", b = "z", n = 7 } }, { conflict = { "id" } })
    assert.are.equal(r[2], r2[1])
    assert.are.equal(7, K:find(r[2].id).n)
    raises("misuse", function() return K:upsert({ { a = "x", b = "q" } }, { conflict = { "a" } }) end)
  end)

  it("upsert: non-unique conflict fields raise misuse before any SQL", function()
    local n = helper.queries(db, function()
      raises("misuse", function()
        return M.User:upsert({ { email = "d@x", name = "D" } }, { conflict = { "name" } })
      end)
    end)
    assert.are.equal(0, n)
    local ok, err = pcall(M.User.upsert, M.User, { { email = "d@x", name = "D" } }, { conflict = { "name" } })
    assert.is_false(ok); assert.are.equal("misuse", err.code)
    assert.are.equal(0, M.User:count())
  end)

  it("upsert: unknown option, missing conflict, wrong shapes, unknown field", function()
    local rows = { { email = "d@x", name = "D" } }
    local n = helper.queries(db, function()
      raises("misuse", function() return M.User:upsert(rows, { conflict = { "email" }, updates = { "name" } }) end)
      raises("misuse", function() return M.User:upsert(rows, { conflict = "email" }) end)
      raises("misuse", function() return M.User:upsert(rows, { conflict = { "email" }, update = "name" }) end)
      raises("misuse", function() return M.User:upsert(rows) end)
      raises("misuse", function() return M.User:upsert(rows, {}) end)
      raises("misuse", function() return M.User:upsert(rows, { conflict = {} }) end)
      raises("misuse", function() return M.User:upsert("x", { conflict = { "email" } }) end)
      raises("misuse", function() return M.User:upsert(rows, { conflict = { "email" } }, 1) end)
      raises("unknown_field", function() return M.User:upsert(rows, { conflict = { "nope" } }) end)
      raises("unknown_field", function() return M.User:upsert(rows, { conflict = { "email" }, update = { "nope" } }) end)
    end)
    assert.are.equal(0, n)
  end)

  it("bulk_update writes those fields in few statements and returns rows changed", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local posts = {}
    for i = 1, 50 do posts[i] = M.Post:create { title = "p" .. i, author = ann } end
    for i, p in ipairs(posts) do p.views = i; p.title = "changed" end
    local res
    local sent = statements(db, function() res = M.Post:bulk_update(posts, { "views" }) end)
    assert.are.equal(50, res)
    assert.is_true(is_int(res))
    assert.is_true(#sent < 10)
    assert.are.equal(7, M.Post:filter { title = "p7" }:first().views)
    assert.are.equal(0, M.Post:filter { title = "changed" }:count())
    -- a record deleted meanwhile is not a changed row
    M.Post:filter { id = posts[1].id }:delete()
    assert.are.equal(49, M.Post:bulk_update(posts, { "views", "title" }))
    assert.are.equal(49, M.Post:filter { title = "changed" }:count())
    assert.are.equal(0, M.Post:bulk_update({}, { "views" }))
  end)

  it("bulk_update misuse: shapes, unknown fields, other model's records", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local p = M.Post:create { title = "t", author = ann }
    raises("misuse", function() return M.Post:bulk_update({ p }) end)
    raises("misuse", function() return M.Post:bulk_update({ p }, "views") end)
    raises("misuse", function() return M.Post:bulk_update({ p }, {}) end)
    raises("misuse", function() return M.Post:bulk_update(p, { "views" }) end)
    raises("misuse", function() return M.Post:bulk_update({ p }, { "views" }, 1) end)
    raises("unknown_field", function() return M.Post:bulk_update({ p }, { "nope" }) end)
    local ok = pcall(function() return M.Post:bulk_update({ ann }, { "views" }) end)
    assert.is_false(ok)
  end)

  it("bulk_update accepts relation names", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local bob = M.User:create { email = "bob@x", name = "Bob" }
    local p = M.Post:create { title = "t", author = ann }
    p.author = bob
    assert.are.equal(1, M.Post:bulk_update({ p }, { "author" }))
    assert.are.equal(bob.id, M.Post:find(p.id).author_id)
  end)

  it("m2m add(r1, r2, ...), add(list) and set(list) take constant statements", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local posts = {}
    for i = 1, 4 do posts[i] = M.Post:create { title = "p" .. i, author = ann } end
    local tags = {}
    for i = 1, 40 do tags[i] = M.Tag:create { name = "t" .. i } end
    local few = #statements(db, function() posts[1].tags:add(tags[1], tags[2]) end)
    local many = #statements(db, function() posts[2].tags:add(tags) end)
    assert.are.equal(few, many)
    assert.are.equal(40, posts[2].tags:count())
    local varargs = #statements(db, function() posts[3].tags:add(table.unpack(tags, 1, 30)) end)
    assert.are.equal(few, varargs)
    assert.are.equal(30, posts[3].tags:count())
    local some = { table.unpack(tags, 1, 20) }
    few = #statements(db, function() posts[4].tags:set(some) end)
    many = #statements(db, function() posts[4].tags:set(tags) end)
    assert.are.equal(few, many)
    assert.are.equal(40, posts[4].tags:count())
    local fewer = #statements(db, function() posts[4].tags:set({ tags[1] }) end)
    assert.are.equal(few, fewer)
    assert.are.equal(1, posts[4].tags:count())
  end)

  it("qs:update accepts relation names with a record or a key", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    local bob = M.User:create { email = "bob@x", name = "Bob" }
    for i = 1, 3 do M.Post:create { title = "p" .. i, author = ann } end
    assert.are.equal(3, M.Post:filter { author = ann }:update { editor = bob })
    assert.are.equal(3, M.Post:filter { editor = bob }:count())
    assert.are.equal(3, M.Post:filter { author = ann }:update { editor = quay.null })
    assert.are.equal(0, M.Post:filter { editor__isnull = false }:count())
    assert.are.equal(3, M.Post:query():update { editor = ann.id })
    assert.are.equal(3, M.Post:filter { editor = ann }:count())
    assert.are.equal(1, M.Post:filter { title = "p1" }:update { author = bob })
    assert.are.equal(bob.id, M.Post:get { title = "p1" }.author_id)
    assert.are.equal(1, M.Post:filter { title = "p2" }:update { author = bob.id, editor = bob })
    assert.are.equal(2, M.Post:filter { author = bob }:count())
    raises("validation", function() return M.Post:query():update { author = quay.null } end)
    raises("validation", function() return M.Post:query():update { author = M.Tag:create { name = "x" } } end)
    raises("validation", function() return M.Post:query():update { tags = bob } end)
  end)

  it("qs:update misuse: non-table, empty, extra argument, unknown field", function()
    raises("misuse", function() return M.Post:query():update() end)
    raises("misuse", function() return M.Post:query():update("x") end)
    raises("misuse", function() return M.Post:query():update({ views = 1 }, 1) end)
    raises("unknown_field", function() return M.Post:query():update { nope = 1 } end)
  end)

  it("select_for_update outside a transaction is misuse; inside it reads", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    M.Post:create { title = "p1", author = ann }
    M.Post:create { title = "p2", author = ann }
    raises("misuse", function() return M.Post:select_for_update():all() end)
    raises("misuse", function() return M.Post:query():select_for_update():first() end)
    raises("misuse", function() return M.Post:select_for_update { nowait = true }:count() end)
    raises("misuse", function() return M.Post:select_for_update():exists() end)
    raises("misuse", function() return M.Post:select_for_update():values("title"):all() end)
    raises("misuse", function() return M.Post:select_for_update():aggregate { n = quay.count() } end)
    raises("misuse", function() return M.Post:select_for_update():pluck("title") end)
    raises("misuse", function() return M.Post:select_for_update():values("author"):distinct():pluck("author") end)
    raises("misuse", function() for _ in M.Post:select_for_update():iter() do end end)
    raises("misuse", function() return M.Post:select_for_update():get { title = "p1" } end)
    -- a readonly transaction cannot lock either
    raises("misuse", function()
      return db:transaction(function() return M.Post:select_for_update():all() end, { readonly = true })
    end)
    db:transaction(function()
      local locked = M.Post:filter { title = "p1" }:select_for_update { skip_locked = true }:all()
      assert.are.equal(1, #locked)
      assert.are.equal(2, #M.Post:select_for_update():all())
      assert.are.equal(2, #M.Post:select_for_update { nowait = true }:all())
      assert.are.equal(2, #M.Post:select_for_update { nowait = false, skip_locked = false }:all())
      assert.are.equal(2, M.Post:select_for_update():count())
      assert.is_true(M.Post:select_for_update():exists())
      assert.are.same({ { title = "p1" }, { title = "p2" } },
        M.Post:select_for_update():values("title"):order_by("title"):all())
      assert.are.same({ "p1", "p2" }, arr(M.Post:select_for_update():order_by("title"):pluck("title")))
      -- never a silently dropped lock: rows that cannot be locked are misuse
      raises("misuse", function() return M.Post:select_for_update():aggregate { n = quay.count() } end)
      raises("misuse", function() return M.Post:select_for_update():values("title"):distinct():all() end)
      raises("misuse", function()
        return M.Post:select_for_update():values("author"):annotate { n = quay.count() }:all()
      end)
      raises("misuse", function()
        return M.Post:select_for_update():values("author"):distinct():pluck("author")
      end)
    end)
  end)

  it("select_for_update() with no argument is { nowait = false, skip_locked = false }", function()
    local a = M.Post:filter { views = 1 }:select_for_update():sql()
    local b = M.Post:filter { views = 1 }:select_for_update { nowait = false, skip_locked = false }:sql()
    local c = M.Post:filter { views = 1 }:select_for_update {}:sql()
    assert.are.equal(b, a)
    assert.are.equal(b, c)
    if helper.is_pg then
      assert.is_truthy(a:find("FOR UPDATE", 1, true))
      assert.is_falsy(a:find("NOWAIT", 1, true))
      assert.is_falsy(a:find("SKIP LOCKED", 1, true))
      assert.is_truthy(M.Post:select_for_update { nowait = true }:sql():find("NOWAIT", 1, true))
      assert.is_truthy(M.Post:select_for_update { skip_locked = true }:sql():find("SKIP LOCKED", 1, true))
    end
  end)

  it("select_for_update locks rows on PostgreSQL (nowait, skip_locked)", function()
    if not helper.is_pg then return end
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    M.Post:create { title = "p1", author = ann }
    M.Post:create { title = "p2", author = ann }
    local db2 = quay.open(helper.url)
    local P2 = db2:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
    db:transaction(function()
      assert.are.equal(1, #M.Post:filter { title = "p1" }:select_for_update():all())
      db2:transaction(function()
        local got = arr(P2:select_for_update { skip_locked = true }:order_by("id"):pluck("title"))
        assert.are.same({ "p2" }, got)
        local recs = P2:select_for_update { skip_locked = true }:order_by("id"):all()
        assert.are.equal(1, #recs)
      end)
      -- every terminal call of a locked set locks: nowait fails on each
      for _, read in ipairs {
        function() return P2:select_for_update { nowait = true }:all() end,
        function() return P2:select_for_update { nowait = true }:count() end,
        function() return P2:select_for_update { nowait = true }:exists() end,
        function() return P2:select_for_update { nowait = true }:values("title"):all() end,
        function() return P2:select_for_update { nowait = true }:pluck("title") end,
      } do
        local ok, err = pcall(db2.transaction, db2, read)
        assert.is_false(ok)
        assert.are.equal("table", type(err))
      end
    end)
    db2:close()
  end)

  it("select_for_update misuse: unknown option, wrong types, extra argument", function()
    raises("misuse", function() return M.Post:select_for_update { no_wait = true } end)
    raises("misuse", function() return M.Post:select_for_update { nowait = "yes" } end)
    raises("misuse", function() return M.Post:select_for_update { skip_locked = 1 } end)
    raises("misuse", function() return M.Post:select_for_update("nowait") end)
    raises("misuse", function() return M.Post:select_for_update({}, 1) end)
    raises("misuse", function() return M.Post:select_for_update { nowait = true, skip_locked = true } end)
  end)

  it("transaction options: isolation levels and readonly", function()
    local ann = M.User:create { email = "ann@x", name = "Ann" }
    assert.are.equal(1, db:transaction(function() return M.User:count() end, { isolation = "serializable" }))
    local a, b = db:transaction(function() return 1, 2 end, { readonly = true })
    assert.are.same({ 1, 2 }, { a, b })
    db:transaction(function() assert.is_true(M.User:exists()) end, { readonly = false })
    db:transaction(function() assert.is_true(M.User:exists()) end,
                   { isolation = "serializable", readonly = true })
    if helper.is_pg then
      for _, level in ipairs { "read_committed", "repeatable_read", "serializable" } do
        local got = db:transaction(function()
          return db:rows("SHOW transaction_isolation", {})[1].transaction_isolation
        end, { isolation = level })
        assert.are.equal((level:gsub("_", " ")), got)
      end
      local ro = db:transaction(function()
        return db:rows("SHOW transaction_read_only", {})[1].transaction_read_only
      end, { readonly = true })
      assert.are.equal("on", ro)
    else
      for _, level in ipairs { "read_committed", "repeatable_read" } do
        local n = helper.queries(db, function()
          raises("misuse", function()
            return db:transaction(function() error("must not run") end, { isolation = level })
          end)
        end)
        assert.are.equal(0, n)
      end
    end
    ann.name = "x"; ann:save()
  end)

  it("a readonly transaction refuses writes", function()
    M.User:create { email = "ann@x", name = "Ann" }
    local ok = pcall(db.transaction, db, function() M.User:create { email = "b@x", name = "B" } end,
                     { readonly = true })
    assert.is_false(ok)
    assert.are.equal(1, M.User:count())
  end)

  it("transaction misuse: unknown option, bad level, wrong types, extra arguments", function()
    local function tx(...) return db:transaction(...) end
    raises("misuse", function() return tx(function() end, { isolaton = "serializable" }) end)
    raises("misuse", function() return tx(function() end, { isolation = "chaos" }) end)
    raises("misuse", function() return tx(function() end, { isolation = 1 }) end)
    raises("misuse", function() return tx(function() end, { readonly = "yes" }) end)
    raises("misuse", function() return tx(function() end, "serializable") end)
    raises("misuse", function() return tx(function() end, {}, 1) end)
    raises("misuse", function() return tx("fn") end)
    raises("misuse", function() return tx() end)
  end)

  it("transaction options on a nested call are misuse or honoured, never ignored", function()
    -- a nested call is a savepoint: an isolation level cannot apply there
    local ok, err = pcall(function()
      return db:transaction(function()
        return db:transaction(function() return 1 end, { isolation = "serializable" })
      end)
    end)
    if not ok then assert.are.equal("misuse", err.code) end
  end)
end)
