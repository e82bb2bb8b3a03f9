-- docs/reference.md "Loading related records": select_related,
-- prefetch_related, with, with_count, quay.prefetch; strict mode and
-- explain (issue 4 additions).
local helper = require("spec.helper")
local quay = helper.quay

describe("Eager loading", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local users = {}
    for i = 1, 20 do users[i] = { name = "u" .. i, email = i .. "@x" } end
    users = M.User:bulk_create(users)
    for i, u in ipairs(users) do
      if i % 2 == 0 then M.Profile:create { user = u, bio = "bio" .. i } end
    end
    local tags = {}
    for i = 1, 5 do tags[i] = M.Tag:create { name = "t" .. i } end
    for i = 1, 100 do
      local p = M.Post:create { title = "p" .. i, views = i, author = users[(i - 1) % 20 + 1] }
      p.tags:add(tags[(i - 1) % 5 + 1], tags[i % 5 + 1])
      M.Comment:create { post = p, body = "c" .. i }
    end
  end)
  after_each(function() db:close() end)

  it("select_related JOINs a 2-hop to-one path in 1 query", function()
    local n = helper.queries(db, function()
      local cs = M.Comment:select_related("post__author"):all()
      assert.equal(100, #cs)
      for _, c in ipairs(cs) do assert.truthy(c.post.author.name) end
    end)
    assert.equal(1, n)
    helper.raises("bad_lookup", function() M.User:select_related("posts") end)
    helper.raises("unknown_relation", function() M.Post:select_related("nope") end)
  end)

  it("select_related keeps NULL relations nil", function()
    local n = helper.queries(db, function()
      local us = M.User:select_related("profile"):order_by("id"):all()
      assert.is_nil(us[1].profile)
      assert.equal("bio2", us[2].profile.bio)
    end)
    assert.equal(1, n)
  end)

  it("prefetches users -> posts -> tags in exactly 3 queries", function()
    local n = helper.queries(db, function()
      local total = 0
      for _, u in ipairs(M.User:prefetch_related("posts__tags"):all()) do
        for _, p in ipairs(u.posts) do
          for _, t in ipairs(p.tags) do total = total + #t.name end
        end
      end
      assert.equal(200 * 2, total)
    end)
    assert.equal(3, n)
  end)

  it("reads prefetched relations through the same accessors, with no query", function()
    local us = M.User:prefetch_related("posts", "profile"):all()
    local n = helper.queries(db, function()
      assert.equal(5, #us[1].posts)
      assert.equal(5, us[1].posts:count())
      assert.is_nil(us[1].profile)
      assert.equal("bio2", us[2].profile.bio)
    end)
    assert.equal(0, n)
  end)

  it("quay.prefetch loads a filtered, ordered set into the relation or `to`", function()
    local recent = M.Post:filter { views__gt = 80 }:order_by("-views")
    local us = M.User:prefetch_related(quay.prefetch("posts", recent)):order_by("id"):all()
    assert.equal(1, #us[1].posts)
    assert.equal(81, us[1].posts[1].views)
    local us2 = M.User:prefetch_related(quay.prefetch("posts", recent, { to = "hot" }))
      :order_by("id"):all()
    assert.equal(1, #us2[1].hot)
    assert.equal(5, #us2[1].posts) -- untouched: loads lazily
  end)

  it("applies a limit inside quay.prefetch per owner (window function)", function()
    local top2 = M.Post:order_by("-views"):limit(2)
    local n = helper.queries(db, function()
      local us = M.User:prefetch_related(quay.prefetch("posts", top2, { to = "top" }))
        :order_by("id"):all()
      assert.equal(20, #us)
      for _, u in ipairs(us) do
        assert.equal(2, #u.top)
        assert.is_true(u.top[1].views > u.top[2].views)
      end
      assert.equal(81, us[1].top[1].views)
      assert.equal(61, us[1].top[2].views)
    end)
    assert.equal(2, n)
  end)

  it("honours prefetches inside the prefetch query set", function()
    local n = helper.queries(db, function()
      local us = M.User:prefetch_related(
        quay.prefetch("posts", M.Post:prefetch_related("comments"))):all()
      for _, u in ipairs(us) do
        for _, p in ipairs(u.posts) do assert.equal(1, #p.comments) end
      end
    end)
    assert.equal(3, n)
  end)

  it("with() picks JOIN for to-one and batch for to-many paths", function()
    local plan = M.Comment:with("post__author", "post__tags"):explain()
    local how = {}
    for _, step in ipairs(plan) do how[step.path] = step.how end
    assert.equal("join", how["post"])
    assert.equal("join", how["post__author"])
    assert.equal("batch", how["post__tags"])
    local n = helper.queries(db, function()
      for _, cm in ipairs(M.Comment:with("post__author", "post__tags"):all()) do
        assert.truthy(cm.post.author.name)
        assert.equal(2, #cm.post.tags)
      end
    end)
    assert.equal(2, n)
  end)

  it("does not fetch a level already JOINed", function()
    local n = helper.queries(db, function()
      local cs = M.Comment:select_related("post"):prefetch_related("post__tags"):all()
      assert.equal(2, #cs[1].post.tags)
    end)
    assert.equal(2, n)
  end)

  it("with_count adds <rel>_count, usable in order_by", function()
    local us = M.User:with_count("posts"):order_by("-posts_count", "id"):all()
    assert.equal(5, us[1].posts_count)
    local ts = M.Tag:with_count("posts"):all()
    assert.equal(40, ts[1].posts_count)
  end)

  it("prefetches through many_to_many in reverse and quay.through paths", function()
    local n = helper.queries(db, function()
      local ts = M.Tag:prefetch_related("posts__author"):all()
      assert.equal(40, #ts[1].posts)
      assert.truthy(ts[1].posts[1].author.name)
    end)
    assert.equal(3, n)
  end)

  it("strict mode raises lazy_load naming the relation", function()
    local ps = M.Post:strict():all()
    local err = helper.raises("lazy_load", function() return ps[1].author end)
    helper.mentions(err, "Post", "author")
    local ok = M.Post:strict():with("author"):all()
    assert.truthy(ok[1].author.name)
    local sdb = quay.open(helper.url, { strict = true })
    local S = sdb:model("User", { name = quay.string(), email = quay.string() })
    local SP = sdb:model("Post", { title = quay.string(), views = quay.integer(),
      author = quay.belongs_to("User", { related_name = "posts" }) })
    if not helper.is_pg then sdb:create_tables(); S:create { name = "a", email = "b" }
      SP:create { title = "t", views = 1, author = S:first() } end
    helper.raises("lazy_load", function() return SP:first().author end)
    sdb:close()
  end)

  it("explain() lists each path, JOIN or batch, with its SQL", function()
    local plan = M.User:select_related("profile"):prefetch_related("posts__tags"):explain()
    assert.equal("query", plan[1].how)
    assert.truthy(plan[1].sql:find("JOIN", 1, true))
    local paths = {}
    for _, s in ipairs(plan) do paths[s.path] = s end
    assert.equal("join", paths.profile.how)
    assert.equal("batch", paths.posts.how)
    assert.equal("batch", paths["posts__tags"].how)
    assert.truthy(paths["posts__tags"].sql:find("SELECT", 1, true))
  end)

  it("prefetches 100k keys in one query per level", function()
    local T = db:model("Node", { n = quay.integer() })
    local L = db:model("Leaf", { node = quay.belongs_to("Node", { related_name = "leaves" }) })
    db:create_tables()
    local nodes = {}
    for i = 1, 100000 do nodes[i] = { n = i } end
    nodes = T:bulk_create(nodes)
    local leaves = {}
    for i = 1, 100000, 3 do leaves[#leaves + 1] = { node = nodes[i] } end
    L:bulk_create(leaves)
    local n = helper.queries(db, function()
      local total = 0
      for _, nd in ipairs(T:prefetch_related("leaves"):all()) do total = total + #nd.leaves end
      assert.equal(#leaves, total)
    end)
    assert.equal(2, n)
  end)
end)

describe("Loaded sets keep the order of their query", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = {}
    M.User = db:model("User", {
      name = quay.string(),
      follows = quay.many_to_many("self", { related_name = "followers" }),
    })
    M.Post = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    })
    M.Student = db:model("Student", { name = quay.string(),
                                      courses = quay.through("enrolments", "course") })
    M.Course = db:model("Course", { name = quay.string(),
                                    students = quay.through("enrolments", "student") })
    M.Enrolment = db:model("Enrolment", {
      student = quay.belongs_to("Student", { on_delete = quay.CASCADE, related_name = "enrolments" }),
      course = quay.belongs_to("Course", { on_delete = quay.CASCADE, related_name = "enrolments" }),
      term = quay.integer(),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  local function ids(list)
    local out = {}
    for _, r in ipairs(list) do out[#out + 1] = r.id end
    return out
  end

  it("gives a reverse self many_to_many set, loaded or prefetched, the order of :all()", function()
    local us = {}
    for i = 1, 5 do us[i] = M.User:create { name = "u" .. i } end
    -- join rows inserted in an order that differs from the key order
    us[5].follows:add(us[1])
    us[2].follows:add(us[1])
    us[4].follows:add(us[1])
    us[3].follows:add(us[1])
    local want = ids(us[1].followers:all())
    assert.same({ us[2].id, us[3].id, us[4].id, us[5].id }, want)
    local fresh = M.User:find(us[1].id)
    assert.same(want, ids(fresh.followers))                -- lazily loaded
    local pre = M.User:filter { id = us[1].id }:prefetch_related("followers"):all()[1]
    assert.same(want, ids(pre.followers))
    local ordered = M.User:filter { id = us[1].id }
      :prefetch_related(quay.prefetch("followers", M.User:order_by("-name"))):all()[1]
    assert.same(ids(us[1].followers:order_by("-name"):all()), ids(ordered.followers))
  end)

  it("counts and loads a quay.through set without repeating a row reached twice", function()
    local s = M.Student:create { name = "s" }
    local c = M.Course:create { name = "c" }
    M.Enrolment:create { student = s, course = c, term = 1 }
    M.Enrolment:create { student = s, course = c, term = 2 }
    assert.equal(1, M.Course:find(c.id).students:count())
    assert.equal(1, #M.Course:find(c.id).students)
    assert.equal(1, #M.Course:prefetch_related("students"):all()[1].students)
    assert.equal(1, M.Course:with_count("students"):all()[1].students_count)
    assert.equal(1, #M.Student:prefetch_related("courses"):all()[1].courses)
    -- the rows themselves: the same as hand-written SQL
    local rows = db:rows("SELECT DISTINCT student_id FROM enrolments WHERE course_id = ?", { c.id })
    assert.equal(#rows, #M.Course:find(c.id).students)
  end)

  it("takes a per-owner window with no upper bound past the largest integer", function()
    local u = M.User:create { name = "a" }
    for i = 1, 3 do M.Post:create { title = "p" .. i, author = u } end
    local got = M.User:prefetch_related(
      quay.prefetch("posts", M.Post:limit(math.maxinteger):offset(1))):all()[1]
    assert.equal(2, #got.posts)
    assert.equal("p2", got.posts[1].title)
  end)

  it("plucks a set ordered by a with_count annotation", function()
    local a = M.User:create { name = "a" }
    local b = M.User:create { name = "b" }
    for i = 1, 3 do M.Post:create { title = "p" .. i, author = b } end
    M.Post:create { title = "q", author = a }
    local desc = M.User:with_count("posts"):order_by("-posts_count"):pluck("name")
    local asc = M.User:with_count("posts"):order_by("posts_count"):pluck("name")
    assert.same({ "b", "a" }, { desc[1], desc[2] })
    assert.same({ "a", "b" }, { asc[1], asc[2] })
  end)
end)

describe("To-one relations that hold no record", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  -- A to-one relation prefetched through a query set that leaves the
  -- target out holds nothing (reference.md "quay.prefetch"); it used to
  -- look stale and load the target lazily on access.
  it("a filtered to-one prefetch leaves the relation nil, with no query", function()
    local M = helper.blog(db)
    local u1 = M.User:create { name = "u1", email = "1@x" }
    local u2 = M.User:create { name = "u2", email = "2@x" }
    for i = 1, 4 do M.Post:create { title = "p" .. i, author = i == 1 and u1 or u2 } end
    local posts
    local n = helper.queries(db, function()
      posts = M.Post:prefetch_related(quay.prefetch("author", M.User:filter { name = "u1" }))
        :order_by("id"):limit(4):all()
    end)
    assert.equal(2, n)
    n = helper.queries(db, function()
      assert.equal(u1, posts[1].author)
      for i = 2, 4 do
        assert.is_nil(posts[i].author)
        assert.is_nil(posts[i].author)         -- still nothing, still no query
        assert.is_not_nil(posts[i].author_id)
      end
    end)
    assert.equal(0, n)
    -- a new key in the column is looked up again
    posts[2].author_id = u1.id
    assert.equal(u1, posts[2].author)
  end)

  it("a soft-deleted target reads nil without a query on every access", function()
    local d = helper.open()
    local U = d:model("User", { name = quay.string(), soft_delete = true })
    local P = d:model("Post", { title = quay.string(),
                                author = quay.belongs_to("User", { related_name = "posts" }) })
    d:create_tables()
    local a, b = U:create { name = "a" }, U:create { name = "b" }
    P:create { title = "1", author = a }
    P:create { title = "2", author = b }
    b:delete()
    local ps = P:order_by("id"):all()
    local n = helper.queries(d, function()
      assert.equal("a", ps[1].author.name)
      for _ = 1, 3 do assert.is_nil(ps[2].author) end
    end)
    assert.equal(1, n)                           -- one batched lazy load
    d:close()
  end)
end)
