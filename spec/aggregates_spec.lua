-- spec/aggregates_spec.lua: aggregates, annotations, values and expressions
-- (docs/reference.md "Aggregates, annotations, values and expressions").
-- Numbers are checked against hand-written SQL over the same rows.
local helper = require("spec.helper")
local quay = helper.quay

local function by(list, key)
  local out = {}
  for _, r in ipairs(list) do out[r[key]] = r end
  return out
end

local function list(t)
  local out = {}
  for i = 1, #t do out[i] = t[i] end
  return out
end

local function scalar(db, sql, params)
  local row = db:rows(sql, params or {})[1]
  local _, v = next(row or {})
  return v
end

describe("Aggregates and annotations", function()
  local db, M, ann, bob, cy

  before_each(function()
    db = helper.open()
    M = {}
    M.User = db:model("User", {
      name = quay.string(),
      karma = quay.integer { default = 0 },
    })
    M.Tag = db:model("Tag", { name = quay.string() })
    M.Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { default = 0 },
      likes = quay.integer { default = 0 },
      rating = quay.number { null = true },
      published = quay.boolean { default = false },
      created = quay.datetime(),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
    })
    M.Comment = db:model("Comment", {
      body = quay.text(),
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "comments" }),
    })
    db:create_tables()
    ann = M.User:create { name = "ann", karma = 3 }
    bob = M.User:create { name = "bob", karma = 1 }
    cy = M.User:create { name = "cy" }
    local lua, c = M.Tag:create { name = "lua" }, M.Tag:create { name = "c" }
    local p1 = M.Post:create { title = "a1", views = 10, likes = 2, rating = 1.5, published = true,
                               created = "2024-01-15 10:00:00", author = ann }
    local p2 = M.Post:create { title = "a2", views = 20, likes = 30, published = false,
                               created = "2024-02-01 08:30:00", author = ann }
    local p3 = M.Post:create { title = "b1", views = 5, likes = 1, rating = 4.0, published = true,
                               created = "2023-12-31 23:59:59", author = bob }
    p1.tags:add(lua, c)
    p3.tags:add(lua)
    -- ann: 2 posts, 3 comments (2 on p1 by bob and cy, 1 on p2 by bob)
    M.Comment:create { body = "x", post = p1, author = bob }
    M.Comment:create { body = "y", post = p1, author = cy }
    M.Comment:create { body = "z", post = p2, author = bob }
    M.Comment:create { body = "w", post = p3, author = ann }
  end)

  after_each(function() db:close() end)

  describe("aggregate", function()
    it("returns one plain table of typed values", function()
      local r = M.Post:aggregate { n = quay.count(), views = quay.sum("views"),
                                  top = quay.max("views"), avg = quay.avg("views"),
                                  first = quay.min("created") }
      assert.is_nil(getmetatable(r))
      assert.equal(3, r.n)
      assert.equal(math.type(r.n), "integer")
      assert.equal(35, r.views)
      assert.equal(math.type(r.views), "integer")
      assert.equal(20, r.top)
      assert.equal(35 / 3, r.avg, 1e-9)
      assert.equal("float", math.type(r.avg))
      assert.equal("2023-12-31 23:59:59", r.first)
      assert.equal(scalar(db, "SELECT SUM(views) AS s FROM posts"), r.views)
    end)

    it("gives count 0 and nil for the others on an empty set, unless a default", function()
      local r = M.Post:filter { views__gt = 1000 }:aggregate {
        n = quay.count(), s = quay.sum("views"), a = quay.avg("views"), lo = quay.min("views"),
        d = quay.sum("views", { default = 0 }) }
      assert.equal(0, r.n)
      assert.is_nil(r.s)
      assert.is_nil(r.a)
      assert.is_nil(r.lo)
      assert.equal(0, r.d)
    end)

    it("aggregates related rows once per owner across several to-many paths", function()
      local r = M.User:aggregate { posts = quay.count("posts"), comments = quay.count("comments"),
                                  tags = quay.count("posts__tags"),
                                  commenters = quay.count("posts__comments__author", { distinct = true }) }
      assert.equal(3, r.posts)
      assert.equal(4, r.comments)
      assert.equal(3, r.tags)
      assert.equal(scalar(db, "SELECT COUNT(DISTINCT c.author_id) AS n FROM comments c " ..
                              "JOIN posts p ON p.id = c.post_id"), r.commenters)
    end)

    it("respects filters and the limit of the set", function()
      assert.equal(15, M.Post:filter { published = true }:aggregate { v = quay.sum("views") }.v)
      -- the two most viewed posts: 20 + 10
      assert.equal(30, M.Post:order_by("-views"):limit(2):aggregate { v = quay.sum("views") }.v)
    end)
  end)

  describe("annotate", function()
    it("never inflates: three to-many paths at once equal each alone", function()
      local all = by(M.User:annotate { np = quay.count("posts"), nc = quay.count("comments"),
                                      nt = quay.count("posts__tags") }:all(), "name")
      for _, u in ipairs(M.User:query():all()) do
        local np = M.User:filter { id = u.id }:annotate { n = quay.count("posts") }:first().n
        local nc = M.User:filter { id = u.id }:annotate { n = quay.count("comments") }:first().n
        local nt = M.User:filter { id = u.id }:annotate { n = quay.count("posts__tags") }:first().n
        assert.equal(np, all[u.name].np)
        assert.equal(nc, all[u.name].nc)
        assert.equal(nt, all[u.name].nt)
        assert.equal(scalar(db, "SELECT COUNT(*) AS n FROM posts WHERE author_id = ?", { u.id }), np)
        assert.equal(scalar(db, "SELECT COUNT(*) AS n FROM comments WHERE author_id = ?", { u.id }), nc)
      end
      assert.equal(2, all.ann.np)
      assert.equal(1, all.ann.nc)
      assert.equal(2, all.ann.nt)
      assert.equal(0, all.cy.np)
      assert.equal(3, #M.User:annotate { np = quay.count("posts"), nc = quay.count("comments") }:all())
    end)

    it("takes filter, distinct and default options and reads nil for an empty sum", function()
      local u = by(M.User:annotate {
        pub = quay.sum("posts__views", { filter = { posts__published = true } }),
        vs = quay.sum("posts__views"),
        dv = quay.count("posts__comments__author", { distinct = true }),
        z = quay.sum("posts__views", { default = 0 }),
        last = quay.max("posts__created"),
        active = quay.exists("posts"),
      }:all(), "name")
      assert.equal(10, u.ann.pub)
      assert.equal(30, u.ann.vs)
      assert.equal(2, u.ann.dv)                -- bob and cy
      assert.is_nil(u.cy.vs)
      assert.equal(0, u.cy.z)
      assert.equal("2024-02-01 08:30:00", u.ann.last)
      assert.is_true(u.ann.active)
      assert.is_false(u.cy.active)
    end)

    it("is usable in filter, exclude, order_by, values and later expressions", function()
      local qs = M.User:annotate { n = quay.count("posts") }
      assert.same({ "ann", "bob" }, list(qs:filter { n__gte = 1 }:order_by("-n", "name"):pluck("name")))
      assert.same({ "cy" }, list(qs:exclude { n__gte = 1 }:pluck("name")))
      local rows = qs:values("name", "n"):order_by("name"):all()
      assert.same({ name = "ann", n = 2 }, rows[1])
      local s = qs:annotate { score = quay.F("karma") * 2 + quay.F("n") }:order_by("-score"):first()
      assert.equal("ann", s.name)
      assert.equal(8, s.score)
      assert.equal(2, qs:filter { n__gte = 1 }:count())
    end)

    it("refuses a name that is a field or an annotation already", function()
      helper.raises("misuse", function() return M.User:annotate { name = quay.count("posts") } end)
      helper.raises("misuse", function()
        return M.User:annotate { n = quay.count("posts") }:annotate { n = quay.count("comments") }
      end)
    end)

    it("works with select_related, prefetch querysets, per-owner limits and iter", function()
      local posts = M.Post:select_related("author"):annotate { nc = quay.count("comments") }
                      :order_by("id"):all()
      assert.equal("ann", posts[1].author.name)
      assert.equal(2, posts[1].nc)
      local users = M.User:order_by("name"):prefetch_related(
        quay.prefetch("posts", M.Post:annotate { nc = quay.count("comments") }:order_by("-nc"))):all()
      assert.equal(2, users[1].posts[1].nc)
      assert.equal(1, users[1].posts[2].nc)
      local top = M.User:order_by("name"):prefetch_related(
        quay.prefetch("posts", M.Post:annotate { nc = quay.count("comments") }:order_by("-nc"):limit(1))):all()
      assert.equal(1, #top[1].posts)
      assert.equal(2, top[1].posts[1].nc)
      local n = 0
      for u in M.User:annotate { np = quay.count("posts") }:iter() do
        n = n + 1
        assert.equal(M.User:filter { id = u.id }:annotate { np = quay.count("posts") }:first().np, u.np)
      end
      assert.equal(3, n)
    end)

    it("keeps with_count as an annotation", function()
      local u = by(M.User:with_count("posts"):all(), "name")
      assert.equal(2, u.ann.posts_count)
      assert.equal(2, by(M.User:annotate { posts_count = quay.count("posts") }:all(), "name").ann.posts_count)
    end)
  end)

  describe("values", function()
    it("returns plain tables of to-one paths, keys for relations", function()
      local rows = M.Post:values("title", "author__name", "author"):order_by("title"):all()
      assert.is_nil(getmetatable(rows[1]))
      assert.same({ title = "a1", author__name = "ann", author = ann.id }, rows[1])
      local all = M.Post:values():order_by("id"):first()
      assert.equal("a1", all.title)
      assert.equal(10, all.views)
      assert.is_true(all.published)
    end)

    it("groups with annotate after it", function()
      local rows = by(M.Post:values("author__name", "published")
        :annotate { n = quay.count(), avg = quay.avg("views"), nc = quay.count("comments") }
        :order_by("-n", "author__name"):all(), "author__name")
      -- ann has one published and one unpublished post: two groups
      local ann_rows = M.Post:values("author__name", "published"):annotate { n = quay.count() }
        :filter { author__name = "ann" }:all()
      assert.equal(2, #ann_rows)
      assert.equal(1, rows.bob.n)
      assert.equal(5.0, rows.bob.avg)
      local g = M.Post:values("author__name"):annotate { n = quay.count(), v = quay.sum("views"),
                                                          nc = quay.count("comments") }
                 :order_by("author__name"):all()
      assert.same({ author__name = "ann", n = 2, v = 30, nc = 3 }, g[1])
      assert.same({ author__name = "bob", n = 1, v = 5, nc = 1 }, g[2])
      local sql_rows = db:rows([[SELECT u.name AS name, COUNT(*) AS n FROM posts p
                                 JOIN users u ON u.id = p.author_id GROUP BY u.name ORDER BY u.name]])
      assert.equal(sql_rows[1].n, g[1].n)
    end)

    it("counts distinct related rows per group", function()
      local g = M.Post:values("author__name")
        :annotate { commenters = quay.count("comments__author", { distinct = true }),
                    ncomments = quay.count("comments") }
        :order_by("author__name"):all()
      assert.same({ author__name = "ann", commenters = 2, ncomments = 3 }, g[1])
      assert.same({ author__name = "bob", commenters = 1, ncomments = 1 }, g[2])
      local sql = db:rows([[SELECT u.name AS name, COUNT(DISTINCT c.author_id) AS n
                            FROM posts p JOIN users u ON u.id = p.author_id
                            JOIN comments c ON c.post_id = p.id
                            GROUP BY u.name ORDER BY u.name]])
      assert.equal(sql[1].n, g[1].commenters)
      assert.equal(sql[2].n, g[2].commenters)
    end)

    it("filters and orders groups on their aggregates", function()
      local g = M.Post:values("author__name"):annotate { n = quay.count() }:filter { n__gte = 2 }:all()
      assert.same({ { author__name = "ann", n = 2 } }, g)
      assert.equal(1, M.Post:values("author__name"):annotate { n = quay.count() }:filter { n__gte = 2 }:count())
    end)

    it("truncates dates into computed columns usable by name", function()
      local g = M.Post:values { month = quay.trunc("month", "created") }
        :annotate { n = quay.count() }:order_by("month"):all()
      assert.same({ month = "2023-12-01 00:00:00", n = 1 }, g[1])
      assert.same({ month = "2024-01-01 00:00:00", n = 1 }, g[2])
      local f = M.Post:values { y = quay.trunc("year", "created") }:annotate { n = quay.count() }
        :filter { y = "2024-01-01 00:00:00" }:all()
      assert.same({ { y = "2024-01-01 00:00:00", n = 2 } }, f)
    end)

    it("removes duplicate rows with distinct and counts them", function()
      assert.equal(3, M.Comment:values("author"):distinct():count())
      assert.equal(2, M.Comment:filter { post__author = ann }:values("author"):distinct():count())
      local rows = M.Comment:values("author"):distinct():order_by("author"):all()
      assert.equal(3, #rows)
    end)

    it("refuses a to-many path", function()
      helper.raises("bad_lookup", function() return M.User:values("posts__title") end)
    end)

    it("streams with iter and answers first", function()
      local n = 0
      for r in M.Post:values("title"):iter() do
        assert.is_string(r.title)
        n = n + 1
      end
      assert.equal(3, n)
      assert.same({ title = "a1" }, M.Post:values("title"):order_by("title"):first())
    end)
  end)

  describe("quay.F and lookups", function()
    it("compares two columns and columns across to-one relations", function()
      local ids = M.Post:filter { likes__gt = quay.F("views") }:pluck("title")
      assert.same({ "a2" }, { ids[1] })
      assert.equal(3, M.Post:filter { views__gt = quay.F("author__karma") * 3 }:count())
      assert.equal(1, M.Post:filter { views__gt = quay.F("author__karma") * 5 }:count())
      assert.equal(scalar(db, [[SELECT COUNT(*) AS n FROM posts p JOIN users u ON u.id = p.author_id
                                WHERE p.views > u.karma * 3]]),
                   M.Post:filter { views__gt = quay.F("author__karma") * 3 }:count())
    end)

    it("updates atomically in one UPDATE statement", function()
      local updates = 0
      db:on_query(function(sql) if sql:find("^UPDATE") then updates = updates + 1 end end)
      assert.equal(3, M.Post:update { views = quay.F("views") + 1 })
      db:on_query(nil)
      assert.equal(1, updates)
      assert.same({ 11, 21, 6 }, list(M.Post:order_by("id"):pluck("views")))
      -- across a to-one relation, and mixed with plain values
      M.Post:filter { author = ann }:update { likes = quay.F("author__karma") * 10, title = "t" }
      assert.same({ 30, 30, 1 }, list(M.Post:order_by("id"):pluck("likes")))
      assert.equal(scalar(db, "SELECT SUM(likes) AS s FROM posts"), 61)
      helper.raises("bad_lookup", function() return M.Post:update { views = quay.count("tags") } end)
      helper.raises("bad_lookup", function() return M.Post:update { views = quay.F("title") + 1 } end)
    end)

    it("orders by expressions", function()
      assert.same({ "a2", "a1", "b1" }, list(M.Post:order_by(quay.F("views"):desc()):pluck("title")))
      assert.same({ "b1", "a1", "a2" },
                  list(M.Post:order_by(quay.F("views") + quay.F("likes")):pluck("title")))
    end)

    it("filters on date parts and case-insensitive text", function()
      assert.equal(2, M.Post:filter { created__year = 2024 }:count())
      assert.equal(1, M.Post:filter { created__month = 2 }:count())
      assert.equal(1, M.Post:filter { created__year__lt = 2024 }:count())
      assert.equal(1, M.Post:filter { created__day = 31 }:count())
      assert.equal(1, M.User:filter { name__iexact = "ANN" }:count())
      assert.equal(1, M.User:filter { name__istartswith = "B" }:count())
      assert.equal(1, M.User:filter { name__iendswith = "Y" }:count())
      assert.equal(0, M.User:filter { name__iexact = "an" }:count())
    end)
  end)

  describe("bad input", function()
    it("raises the contract's codes before any SQL", function()
      local n0 = db:stats().queries
      helper.raises("unknown_field", function() return M.User:annotate { n = quay.sum("posts__nope") } end)
      helper.raises("unknown_relation", function() return M.User:with_count("nope") end)
      helper.raises("unknown_field", function() return M.User:annotate { n = quay.count("nope") } end)
      helper.raises("bad_lookup", function() return M.User:annotate { n = quay.sum("posts__title") } end)
      helper.raises("bad_lookup", function() return M.Post:aggregate { a = quay.avg("title") } end)
      helper.raises("bad_lookup", function() return M.Post:annotate { x = quay.F("title") * 2 } end)
      helper.raises("bad_lookup", function() return M.Post:filter { views = quay.count("tags") } end)
      helper.raises("bad_lookup", function() return M.Post:values { m = quay.trunc("month", "title") } end)
      helper.raises("misuse", function() return quay.sum("views", { fliter = {} }) end)
      helper.raises("misuse", function() return quay.F(5) end)
      helper.raises("misuse", function() return quay.F("views") + "x" end)
      helper.raises("misuse", function() return M.Post:aggregate {} end)
      helper.raises("misuse", function() return M.Post:annotate(5) end)
      assert.equal(n0, db:stats().queries)
    end)
  end)

  describe("sql, explain and raw", function()
    it("shows annotated and values sets", function()
      local sql = M.User:annotate { n = quay.count("posts") }:sql()
      assert.truthy(sql:find("COUNT", 1, true))
      local vsql = M.Post:values("author__name"):annotate { n = quay.count() }:sql()
      assert.truthy(vsql:find("GROUP BY", 1, true))
      local plan = M.Post:values("title"):explain()
      assert.equal("query", plan[1].how)
    end)

    it("makes records from raw SQL that save as updates", function()
      local ps = M.Post:raw("SELECT * FROM posts WHERE views > ? ORDER BY id", { 6 })
      assert.equal(2, #ps)
      assert.equal("a1", ps[1].title)
      assert.equal("ann", ps[1].author.name)
      ps[1].title = "renamed"
      ps[1]:save()
      assert.equal(3, M.Post:count())
      assert.equal("renamed", M.Post:find(ps[1].id).title)
      helper.raises("misuse", function() return M.Post:raw("SELECT title FROM posts") end)
    end)

    it("reads raw columns that are no field as annotations", function()
      local ps = M.Post:raw([[SELECT p.id, p.title, u.name AS who,
          CASE WHEN p.views > 6 THEN 'many' END AS note
        FROM posts p JOIN users u ON u.id = p.author_id ORDER BY p.id]])
      local hand = db:rows([[SELECT u.name AS who, p.views FROM posts p
        JOIN users u ON u.id = p.author_id ORDER BY p.id]])
      assert.equal(#hand, #ps)
      for i, p in ipairs(ps) do
        assert.equal(hand[i].who, p.who)
        -- NULL reads nil, not unknown_field
        assert.equal(hand[i].views > 6 and "many" or nil, p.note)
      end
      helper.raises("unknown_field", function() return ps[1].nothing end)
      -- a column named like a relation is refused, not dropped
      local err = helper.raises("misuse", function()
        return M.Post:raw("SELECT id, author_id AS author FROM posts")
      end)
      helper.mentions(err, "author")
    end)
  end)
end)
