-- Where soft delete, hooks and validation meet the rest of the engine
-- (reference.md "Model behaviour"), on both backends.  Soft-deleted rows
-- sit on either side of every kind of relation; each read is compared
-- with hand-written SQL over the same rows (db:rows) where that gives an
-- independent truth.
--
-- Semantics chosen where the contract is silent (Laravel SoftDeletes /
-- django-softdelete):
-- * a soft-deleted row is absent from every path that reaches it: a
--   to-one relation to it reads nil (lazy, select_related, through), a
--   condition across a relation does not match it (`author__name = "bob"`
--   matches no post of a soft-deleted bob, and `exclude` keeps those
--   posts), a values() path through it reads nil;
-- * a soft-deleted row of a custom through model hides its pair;
-- * with_deleted()/only_deleted() widen the queried model only, never
--   the models its relations reach (Laravel's withTrashed);
-- * Model:raw runs the SQL as written (no filter is added).
local helper = require("spec.helper")
local quay = helper.quay

local function n(db, sql, params)
  return db:rows(sql, params)[1].n
end

local function sorted(list, key)
  local out = {}
  for i, r in ipairs(list) do out[i] = key and r[key] or r end
  table.sort(out)
  return out
end

describe("interactions of soft delete, hooks and validation", function()
  local db
  local User, Profile, Post, Tag, Comment, Student, Course, Enrolment
  local log

  before_each(function()
    db = helper.open()
    log = {}
    User = db:model("User", {
      name = quay.string(),
      email = quay.string { unique = true, null = true },
      karma = quay.integer { default = 0 },
      comments = quay.through("posts", "comments"),
      soft_delete = true,
    })
    Profile = db:model("Profile", {
      user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
      bio = quay.string(),
    })
    Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
      soft_delete = true,
    })
    Tag = db:model("Tag", { name = quay.string(), soft_delete = true })
    Comment = db:model("Comment", {
      body = quay.string(),
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      post_author = quay.through("post", "author"),
    })
    db:model("School", { name = quay.string(), courses = quay.through("students", "courses") })
    Student = db:model("Student", {
      name = quay.string(),
      school = quay.belongs_to("School", { null = true, related_name = "students" }),
      courses = quay.many_to_many("Course", { through = "Enrolment", related_name = "students" }),
    })
    Course = db:model("Course", { title = quay.string(), soft_delete = true })
    Enrolment = db:model("Enrolment", {
      student = quay.belongs_to("Student", { on_delete = quay.CASCADE }),
      course = quay.belongs_to("Course", { on_delete = quay.CASCADE }),
      grade = quay.integer { default = 0 },
      soft_delete = true,
    })
    db:create_tables()
  end)
  after_each(function() if db and db:is_open() then db:close() end end)

  -- ann (live) writes a (soft-deleted) and b; bob (soft-deleted) writes c;
  -- cat (live) writes d.  Tag "c" is soft-deleted.  Comments x, y, z, w
  -- on a, b, c, d.  Profiles for ann and bob.
  local S
  local function seed()
    S = {}
    S.ann = User:create { name = "ann", email = "ann@x" }
    S.bob = User:create { name = "bob", email = "bob@x" }
    S.cat = User:create { name = "cat", email = "cat@x" }
    S.pa = Profile:create { user = S.ann, bio = "pa" }
    S.pb = Profile:create { user = S.bob, bio = "pb" }
    S.a = Post:create { title = "a", views = 10, author = S.ann }
    S.b = Post:create { title = "b", views = 20, author = S.ann }
    S.c = Post:create { title = "c", views = 30, author = S.bob }
    S.d = Post:create { title = "d", views = 40, author = S.cat }
    S.lua = Tag:create { name = "lua" }
    S.ctag = Tag:create { name = "c" }
    S.a.tags:add(S.lua, S.ctag)
    S.b.tags:add(S.lua, S.ctag)
    S.d.tags:add(S.ctag)
    S.x = Comment:create { body = "x", post = S.a }
    S.y = Comment:create { body = "y", post = S.b }
    S.z = Comment:create { body = "z", post = S.c }
    S.w = Comment:create { body = "w", post = S.d }
    S.a:delete()
    S.bob:delete()
    S.ctag:delete()
    return S
  end

  -- Students s1 enrolled in k1 (live), k2 (soft-deleted course) and k3
  -- through a soft-deleted enrolment.
  local function seed_courses()
    local school = db:model("School"):create { name = "sc" }
    local s1 = Student:create { name = "s1", school = school }
    local s2 = Student:create { name = "s2", school = school }
    local k1, k2, k3 = Course:create { title = "k1" }, Course:create { title = "k2" },
      Course:create { title = "k3" }
    Enrolment:create { student = s1, course = k1, grade = 1 }
    Enrolment:create { student = s1, course = k2, grade = 2 }
    local e3 = Enrolment:create { student = s1, course = k3, grade = 3 }
    Enrolment:create { student = s2, course = k3, grade = 4 }
    k2:delete()
    e3:delete()
    return s1, s2, k1, k2, k3
  end

  describe("soft-deleted rows on either side of a relation", function()
    it("to-one lazy access to a soft-deleted target reads nil", function()
      seed()
      assert.is_nil(Comment:get { body = "x" }.post)
      local z = Comment:get { body = "z" }
      assert.equal("c", z.post.title)
      assert.is_nil(z.post.author)
      assert.is_nil(Profile:get { bio = "pb" }.user)
      assert.equal("ann", Profile:get { bio = "pa" }.user.name)
      -- the one_to_one reverse side: bob's profile is live, bob is not
      assert.is_nil(User:find(S.bob.id))
      assert.equal("pb", User:with_deleted():get { name = "bob" }.profile.bio)
    end)

    it("select_related, one and two hops, reads nil for a soft-deleted row", function()
      seed()
      local rows = Comment:select_related("post__author"):order_by("body"):all()
      assert.equal(4, #rows)
      local by = {}
      for _, r in ipairs(rows) do by[r.body] = r end
      local q = helper.queries(db, function()
        assert.is_nil(by.x.post)
        assert.equal("b", by.y.post.title)
        assert.equal("ann", by.y.post.author.name)
        assert.equal("c", by.z.post.title)
        assert.is_nil(by.z.post.author)
        assert.equal("cat", by.w.post.author.name)
      end)
      assert.equal(0, q)
      assert.is_nil(Profile:select_related("user"):get { bio = "pb" }.user)
      -- the JOIN must not drop the owner row
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM comments"), #rows)
    end)

    it("reverse sets: #, ipairs, count, exists leave soft-deleted rows out", function()
      seed()
      local ann = User:get { name = "ann" }
      local truth = n(db, "SELECT COUNT(*) AS n FROM posts WHERE author_id = ? AND deleted_at IS NULL",
        { ann.id })
      assert.equal(1, truth)
      assert.equal(truth, #ann.posts)
      local seen = {}
      for _, p in ipairs(ann.posts) do seen[#seen + 1] = p.title end
      assert.same({ "b" }, seen)
      assert.equal(truth, ann.posts:count())
      assert.is_true(ann.posts:exists())
      assert.is_false(ann.posts:filter { title = "a" }:exists())
      assert.equal(1, ann.posts:with_deleted():filter { title = "a" }:count())
      assert.is_true(ann.posts:only_deleted():exists())
      local a = Post:with_deleted():get { title = "a" }
      assert.equal(1, #a.comments)              -- comments have no soft delete
    end)

    it("auto many_to_many both ways leaves soft-deleted targets and owners out", function()
      seed()
      local b = Post:get { title = "b" }
      assert.same({ "lua" }, sorted(b.tags:all(), "name"))
      assert.equal(1, #b.tags)
      assert.equal(1, b.tags:count())
      assert.is_false(b.tags:filter { name = "c" }:exists())
      assert.is_false(b.tags:contains(S.ctag))
      local lua = Tag:get { name = "lua" }
      assert.same({ "b" }, sorted(lua.posts:all(), "title"))
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM posts_tags pt JOIN posts p ON p.id = pt.post_id "
        .. "WHERE pt.tag_id = ? AND p.deleted_at IS NULL", { lua.id }), lua.posts:count())
      local ps = Post:prefetch_related("tags"):order_by("title"):all()
      assert.equal(3, #ps)
      assert.equal(1, #ps[1].tags)
      assert.equal(0, #ps[3].tags)             -- d's only tag is soft-deleted
      local ts = Tag:prefetch_related("posts"):all()
      assert.equal(1, #ts)
      assert.equal(1, #ts[1].posts)
      assert.equal(2, b.tags:with_deleted():count())
    end)

    it("custom through: a soft-deleted course or enrolment hides the pair", function()
      local s1, s2, k1, _, k3 = seed_courses()
      s1 = Student:get { name = "s1" }
      assert.same({ "k1" }, sorted(s1.courses:all(), "title"))
      assert.equal(1, s1.courses:count())
      assert.equal(1, #s1.courses)
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM enrolments e JOIN courses c ON c.id = e.course_id "
        .. "WHERE e.student_id = ? AND e.deleted_at IS NULL AND c.deleted_at IS NULL", { s1.id }),
        s1.courses:count())
      local k3r = Course:get { title = "k3" }
      assert.same({ "s2" }, sorted(k3r.students:all(), "name"))
      local st = Student:prefetch_related("courses"):order_by("name"):all()
      assert.equal(1, #st[1].courses)
      assert.equal(1, #st[2].courses)
      assert.equal(1, Student:filter { courses__title = "k3" }:count())
      assert.equal(1, Student:with_count("courses"):get { name = "s1" }.courses_count)
      assert.equal(1, Student:where_has("courses", { title = "k3" }):count())
      assert.equal(1, s1.courses[1].pivot.grade)
      assert.equal(1, Student:filter { courses = k3 }:count())          -- the pivot alone answers
      assert.equal(1, Student:filter { courses__in = { k3 } }:count())
      assert.is_false(s1.courses:contains(k3))
      assert.is_true(s1.courses:contains(k1))
      assert.equal(1, s1.courses:filter { pivot__grade__gte = 0 }:count())
      -- a chain that repeats (students, then courses): distinct pairs of live rows
      local School = db:model("School")
      local sc = School:prefetch_related("courses"):first()
      assert.same({ "k1", "k3" }, sorted(sc.courses, "title"))
      assert.equal(2, School:first().courses:count())
      assert.equal(2, School:with_count("courses"):first().courses_count)
      assert.equal(1, School:filter { courses__title = "k3" }:count())
      assert.equal(0, School:filter { courses__title = "k2" }:count())
      local st2 = Student:prefetch_related(quay.prefetch("courses", Course:with_deleted(), { to = "cs" }))
        :order_by("name"):all()
      assert.same({ "k1", "k2" }, sorted(st2[1].cs, "title"))   -- k3's pivot row stays hidden
      -- the through model as an ordinary relation: its own live rows (k2's is live)
      assert.equal(3, Student:annotate { g = quay.sum("enrolment_set__grade") }:get { name = "s1" }.g)
      -- the through model's own queries see its soft-deleted rows on request
      assert.equal(3, Enrolment:count())
      assert.equal(4, Enrolment:with_deleted():count())
      _ = { s2, k1, k3 }
    end)

    it("a soft-deleted pivot row of a live target hides the pair everywhere", function()
      local Doc = db:model("Doc", {
        title = quay.string(),
        labels = quay.many_to_many("Label", { through = "DocLabel", related_name = "docs" }),
      })
      local Label = db:model("Label", { name = quay.string() })
      local DocLabel = db:model("DocLabel", {
        doc = quay.belongs_to("Doc", { on_delete = quay.CASCADE }),
        label = quay.belongs_to("Label", { on_delete = quay.CASCADE }),
        soft_delete = true,
      })
      db:create_tables()
      local d1, d2 = Doc:create { title = "d1" }, Doc:create { title = "d2" }
      local l1, l2 = Label:create { name = "l1" }, Label:create { name = "l2" }
      d1.labels:add(l1, l2)
      d2.labels:add(l2)
      DocLabel:filter { doc = d1, label = l2 }:delete()
      assert.equal(1, DocLabel:only_deleted():count())
      local truth = "SELECT COUNT(*) AS n FROM docs d WHERE EXISTS (SELECT 1 FROM doc_labels x WHERE "
        .. "x.doc_id = d.id AND x.label_id = ? AND x.deleted_at IS NULL)"
      assert.equal(n(db, truth, { l2.id }), Doc:filter { labels = l2 }:count())
      assert.equal(1, Doc:filter { labels = l2 }:count())          -- the pivot table alone
      assert.equal(1, Doc:filter { labels__in = { l2 } }:count())
      assert.equal(1, Doc:filter { labels__name = "l2" }:count())
      assert.equal(1, Doc:exclude { labels = l2 }:count())
      assert.equal(1, Doc:where_has("labels", { name = "l2" }):count())
      assert.same({ "l1" }, sorted(Doc:get { title = "d1" }.labels:all(), "name"))
      assert.same({ "d2" }, sorted(Label:get { name = "l2" }.docs:all(), "title"))
      assert.equal(1, Label:get { name = "l2" }.docs:count())
      assert.same({ 1, 1 }, Doc:with_count("labels"):order_by("title"):pluck("labels_count"))
      assert.equal(2, Label:aggregate { k = quay.count("docs") }.k)
      local ds = Doc:prefetch_related("labels"):order_by("title"):all()
      assert.equal(1, #ds[1].labels)
      assert.is_false(Doc:get { title = "d1" }.labels:contains(l2))
      assert.equal(0, Doc:where_doesnt_have("labels"):count())
      DocLabel:filter { doc = d2 }:delete()
      assert.same({ "d2" }, Doc:where_doesnt_have("labels"):pluck("title"))
      assert.same({ "d2" }, Doc:exclude { labels__name__in = { "l1", "l2" } }:pluck("title"))
      assert.equal(0, Label:get { name = "l2" }.docs:count())
      assert.equal(1, Label:where_has("docs"):count())
    end)

    it("quay.through paths skip soft-deleted hops", function()
      seed()
      assert.is_nil(Comment:get { body = "z" }.post_author)
      assert.is_nil(Comment:get { body = "x" }.post_author)
      assert.equal("ann", Comment:get { body = "y" }.post_author.name)
      local ann = User:get { name = "ann" }
      assert.same({ "y" }, sorted(ann.comments:all(), "body"))
      assert.equal(1, ann.comments:count())
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM comments c JOIN posts p ON p.id = c.post_id "
        .. "WHERE p.author_id = ? AND p.deleted_at IS NULL", { ann.id }), #ann.comments)
      assert.equal(1, User:filter { comments__body = "y" }:count())
      assert.equal(0, User:filter { comments__body = "x" }:count())
      local us = User:prefetch_related("comments"):order_by("name"):all()
      assert.equal(1, #us[1].comments)
      local cs = Comment:prefetch_related("post_author"):order_by("body"):all()
      local names = {}
      for _, c in ipairs(cs) do names[c.body] = c.post_author and c.post_author.name or false end
      assert.same({ w = "cat", x = false, y = "ann", z = false }, names)
    end)

    it("a quay.through set: every terminal skips rows behind a soft-deleted hop", function()
      seed()
      local ann = User:get { name = "ann" }
      local set = ann.comments
      assert.same({ "y" }, set:order_by("body"):pluck("body"))
      assert.equal(1, #set:values("body"):all())
      assert.equal(1, set:aggregate { k = quay.count() }.k)
      assert.is_false(set:filter { body = "x" }:exists())
      assert.is_nil(set:filter { body = "x" }:first())
      local seen = 0
      for _ in set:iter() do seen = seen + 1 end
      assert.equal(1, seen)
      assert.equal(1, set:order_by("-body"):limit(5):count())
      -- a two-hop through whose last hop is many_to_many with a soft pivot
      local s1 = seed_courses()
      local School = db:model("School")
      local sc = School:first()
      assert.same({ "k1", "k3" }, sc.courses:order_by("title"):pluck("title"))
      assert.is_false(sc.courses:filter { title = "k2" }:exists())
      _ = s1
    end)

    it("scopes keep the soft-delete mode of the query set they get", function()
      local Art = db:model("Art", {
        v = quay.integer(),
        soft_delete = true,
        scopes = { big = function(qs) return qs:filter { v__gt = 1 } end },
      })
      db:create_tables()
      Art:create { v = 2 }
      Art:create { v = 3 }:delete()
      Art:create { v = 1 }
      assert.equal(1, Art:big():count())
      assert.equal(2, Art:with_deleted():big():count())
      assert.equal(1, Art:only_deleted():big():count())
      assert.equal(2, Art:big():with_deleted():count())
      assert.equal(1, Art:big():only_deleted():count())
    end)

    it("nested prefetch and quay.prefetch (with a qs, with to) leave soft rows out", function()
      seed()
      local us = User:prefetch_related("posts__comments", "posts__tags"):order_by("name"):all()
      assert.equal(2, #us)
      assert.equal(1, #us[1].posts)
      assert.equal("y", us[1].posts[1].comments[1].body)
      assert.equal(1, #us[1].posts[1].tags)
      us = User:prefetch_related(quay.prefetch("posts", Post:order_by("-views"))):order_by("name"):all()
      assert.equal(1, #us[1].posts)
      assert.equal("b", us[1].posts[1].title)
      us = User:prefetch_related(quay.prefetch("posts", Post:filter { views__lt = 100 }, { to = "few" }))
        :order_by("name"):all()
      assert.equal(1, #us[1].few)
      assert.equal(1, #us[2].few)
      -- a with_deleted() query set in quay.prefetch widens that level
      us = User:prefetch_related(quay.prefetch("posts", Post:with_deleted(), { to = "all_posts" }))
        :order_by("name"):all()
      assert.equal(2, #us[1].all_posts)
      local cs = Comment:prefetch_related("post__author"):order_by("body"):all()
      assert.is_nil(cs[2].post)                  -- x
      assert.is_nil(cs[4].post.author)           -- z
    end)

    it("select_related and prefetch_related mixed on one path through soft-deleted rows", function()
      seed()
      local q
      local cs
      q = helper.queries(db, function()
        cs = Comment:select_related("post"):prefetch_related("post__author", "post__tags"):order_by("body"):all()
      end)
      assert.equal(3, q)                           -- the JOIN, then one query per prefetched level
      local got = {}
      for _, c in ipairs(cs) do
        got[#got + 1] = c.post and ((c.post.author and c.post.author.name or "-") .. "/" .. #c.post.tags) or "none"
      end
      assert.same({ "cat/0", "none", "ann/1", "-/0" }, got)
      q = helper.queries(db, function()
        for _, c in ipairs(cs) do local _ = c.post and c.post.author end
      end)
      assert.equal(0, q)
      local us = User:with("posts__comments", "profile"):order_by("name"):all()
      assert.equal("pa", us[1].profile.bio)
      assert.equal(1, #us[1].posts[1].comments)
      assert.is_nil(us[2].profile)
    end)

    it("with_count and annotate count/sum/exists over to-many paths", function()
      seed()
      local us = User:with_count("posts"):order_by("name"):all()
      assert.same({ 1, 1 }, { us[1].posts_count, us[2].posts_count })
      local truth = db:rows("SELECT u.name, (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id "
        .. "AND p.deleted_at IS NULL AND p.views > 5) AS n, (SELECT SUM(views) FROM posts p WHERE "
        .. "p.author_id = u.id AND p.deleted_at IS NULL) AS s FROM users u WHERE u.deleted_at IS NULL "
        .. "ORDER BY u.name")
      local rows = User:annotate {
        n = quay.count("posts", { filter = { posts__views__gt = 5 } }),
        s = quay.sum("posts__views"),
        e = quay.exists("posts__tags"),
        t = quay.count("posts__tags"),
        cm = quay.count("comments"),
      }:order_by("name"):all()
      assert.equal(#truth, #rows)
      for i, r in ipairs(rows) do
        assert.equal(truth[i].n, r.n)
        assert.equal(tonumber(truth[i].s), r.s)
      end
      assert.is_true(rows[1].e)                   -- ann: b has lua
      assert.is_false(rows[2].e)                  -- cat: d has only tag c
      assert.same({ 1, 0 }, { rows[1].t, rows[2].t })
      assert.same({ 1, 1 }, { rows[1].cm, rows[2].cm })
      local ps = Post:with_count("tags"):order_by("title"):all()
      assert.same({ 1, 0, 0 }, { ps[1].tags_count, ps[2].tags_count, ps[3].tags_count })
      local ts = Tag:with_deleted():with_count("posts"):order_by("name"):all()
      assert.same({ 2, 1 }, { ts[1].posts_count, ts[2].posts_count })   -- c: b, d; lua: b
    end)

    it("aggregates on related sets, grouped values and distinct over soft rows", function()
      seed()
      local ann = User:get { name = "ann" }
      assert.equal(20, ann.posts:aggregate { s = quay.sum("views") }.s)
      assert.equal(1, ann.posts:aggregate { k = quay.count("tags") }.k)
      assert.equal(1, ann.posts:with_count("tags"):first().tags_count)
      assert.equal(1, ann.comments:aggregate { k = quay.count("post") }.k)
      local s1 = seed_courses()
      s1 = Student:get { name = "s1" }
      assert.equal(1, s1.courses:aggregate { k = quay.count() }.k)
      assert.equal(1, s1.courses:aggregate { g = quay.sum("pivot__grade") }.g)
      assert.same({ "k1" }, s1.courses:values("title"):pluck("title"))
      local g = Post:values("author__name"):annotate { k = quay.count("tags"), e = quay.exists("comments") }
        :order_by("author__name"):all()
      local truth = db:rows("SELECT u.name AS name, (SELECT COUNT(*) FROM posts p2 JOIN posts_tags pt ON "
        .. "pt.post_id = p2.id JOIN tags t ON t.id = pt.tag_id LEFT JOIN users u2 ON u2.id = p2.author_id "
        .. "AND u2.deleted_at IS NULL WHERE p2.deleted_at IS NULL AND t.deleted_at IS NULL AND "
        .. "COALESCE(u2.name, '') = COALESCE(u.name, '')) AS k FROM posts p LEFT JOIN users u ON "
        .. "u.id = p.author_id AND u.deleted_at IS NULL WHERE p.deleted_at IS NULL GROUP BY u.name ORDER BY u.name"
        .. (helper.is_pg and " NULLS FIRST" or ""))
      assert.equal(#truth, #g)
      for i = 1, #g do
        assert.equal(truth[i].name, g[i].author__name)
        assert.equal(truth[i].k, g[i].k)
        assert.is_true(g[i].e)
      end
      -- a path that ends at the related key reads the foreign key column
      assert.equal(3, Post:aggregate { k = quay.count("author", { distinct = true }) }.k)
      assert.equal(2, Post:aggregate { k = quay.count("author__name", { distinct = true }) }.k)
      assert.equal(1, Tag:with_deleted():aggregate { k = quay.count("posts", { distinct = true }) }.k - 1)
      assert.equal(2, User:aggregate { k = quay.count("posts__tags", { distinct = true }) }.k + 1)
      local us = User:annotate { lua = quay.exists("posts", { filter = { posts__tags__name = "lua" } }) }
        :order_by("name"):all()
      assert.same({ true, false }, { us[1].lua, us[2].lua })
    end)

    it("aggregate across relations counts live rows at every hop", function()
      seed()
      local agg = User:aggregate { s = quay.sum("posts__views"), n = quay.count("posts"),
        t = quay.count("posts__tags") }
      assert.equal(tonumber(n(db, "SELECT SUM(p.views) AS n FROM posts p JOIN users u ON u.id = "
        .. "p.author_id WHERE p.deleted_at IS NULL AND u.deleted_at IS NULL")), agg.s)
      assert.equal(60, agg.s)
      assert.equal(2, agg.n)
      assert.equal(1, agg.t)
      local pa = Post:aggregate { n = quay.count("tags"), m = quay.max("author__karma") }
      assert.equal(1, pa.n)
      assert.equal(0, pa.m)
      local ca = Comment:aggregate { s = quay.sum("post__views") }
      assert.equal(n(db, "SELECT SUM(p.views) AS n FROM comments c JOIN posts p ON p.id = c.post_id "
        .. "WHERE p.deleted_at IS NULL"), ca.s)
    end)

    it("where_has and where_doesnt_have see live related rows only", function()
      seed()
      assert.equal(2, User:where_has("posts"):count())
      assert.equal(0, User:where_doesnt_have("posts"):count())
      assert.equal(0, User:where_has("posts", { title = "a" }):count())
      assert.equal(0, Post:where_has("tags", { name = "c" }):count())
      assert.same({ "c", "d" }, sorted(Post:where_doesnt_have("tags"):all(), "title"))
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM posts p WHERE p.deleted_at IS NULL AND NOT EXISTS "
        .. "(SELECT 1 FROM posts_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.post_id = p.id AND "
        .. "t.deleted_at IS NULL)"), Post:where_doesnt_have("tags"):count())
      assert.equal(1, Post:where_doesnt_have("author"):count())   -- c: its author is soft-deleted
      assert.equal(2, Post:where_has("author"):count())
      assert.equal(1, Post:where_has("author", function(q) return q:filter { name = "cat" } end):count())
      assert.equal(1, Post:with_deleted():where_doesnt_have("author"):count())
      assert.equal(2, Tag:with_deleted():where_has("posts"):count())
      -- a where_has query set may widen its own level, as quay.prefetch's does
      assert.equal(1, Post:where_has("author", function(q) return q:with_deleted():filter { name = "bob" } end)
        :count())
      assert.equal(1, Post:where_has("author", function(q) return q:only_deleted() end):count())
      assert.equal(1, User:where_has("posts", function(q) return q:only_deleted() end):count())
      assert.equal(0, User:where_doesnt_have("posts", function(q) return q:with_deleted() end):count())
    end)

    it("a relation test by key compares the column, as the owner's related set does", function()
      seed()
      local bob = User:with_deleted():get { name = "bob" }
      local truth = n(db, "SELECT COUNT(*) AS n FROM posts WHERE author_id = ? AND deleted_at IS NULL",
        { bob.id })
      assert.equal(1, truth)
      assert.equal(truth, bob.posts:count())
      assert.equal(truth, Post:filter { author = bob }:count())
      assert.equal(truth, Post:filter { author = bob.id }:count())
      assert.equal(truth, Post:filter { author__in = { bob } }:count())
      assert.equal(truth, Post:filter { author__id = bob.id }:count())
      assert.equal(truth, Post:filter { author_id = bob.id }:count())
      assert.equal(2, Post:exclude { author = bob }:count())
      assert.equal(0, Post:filter { author__isnull = true }:count())      -- author_id IS NULL
      assert.equal(3, Post:filter { author__isnull = false }:count())
      assert.equal(1, Post:where_doesnt_have("author"):count())           -- the live row is gone
      assert.equal(1, Comment:filter { post__author = bob }:count())
      assert.equal(1, Comment:filter { post_author = bob }:count())        -- the quay.through form
      assert.equal(0, Comment:filter { post_author__name = "bob" }:count())
      assert.equal(0, Comment:filter { post_author = S.ann }:count() - 1)  -- y only: a is hidden
      local a = Post:with_deleted():get { title = "a" }
      assert.equal(a.comments:count(), Comment:filter { post = a }:count())  -- x, by its post_id
      assert.equal(0, Comment:filter { post__title = "a" }:count())     -- the post's row is hidden
      -- many_to_many: a key test reads the pivot's column, as ctag.posts does
      local ctag = Tag:with_deleted():get { name = "c" }
      local pivot = n(db, "SELECT COUNT(DISTINCT p.id) AS n FROM posts p JOIN posts_tags pt ON pt.post_id = p.id "
        .. "WHERE pt.tag_id = ? AND p.deleted_at IS NULL", { ctag.id })
      assert.equal(2, pivot)                                             -- b and d
      assert.equal(pivot, ctag.posts:count())
      assert.equal(pivot, Post:filter { tags = ctag }:count())
      assert.equal(pivot, Post:filter { tags__in = { ctag } }:count())
      assert.equal(pivot, Post:filter { tags__id = ctag.id }:count())
      assert.equal(3 - pivot, Post:exclude { tags = ctag }:count())
      assert.equal(0, Post:filter { tags__name = "c" }:count())          -- the tag's row is hidden
      assert.is_false(Post:get { title = "b" }.tags:contains(ctag))     -- b's live tags
      -- get_or_create finds the row instead of making a second one
      local rec, created = Post:get_or_create({ author = bob, title = "c" }, { views = 1 })
      assert.is_false(created)
      assert.equal("c", rec.title)
      assert.equal(1, n(db, "SELECT COUNT(*) AS n FROM posts WHERE title = 'c'"))
      local r2, c2 = Post:update_or_create({ author = bob, title = "c" }, { views = 31 })
      assert.is_false(c2)
      assert.equal(rec, r2)
      assert.equal(31, n(db, "SELECT views AS n FROM posts WHERE title = 'c'"))
    end)

    it("conditions across relations do not match soft-deleted rows; exclude keeps them", function()
      seed()
      local total = Post:count()
      assert.equal(0, Post:filter { author__name = "bob" }:count())
      assert.equal(total, Post:exclude { author__name = "bob" }:count())
      assert.equal(0, Post:filter { author__email__endswith = "bob@x" }:count())
      assert.equal(0, Post:filter { tags__name = "c" }:count())
      assert.equal(total, Post:exclude { tags__name = "c" }:count())
      assert.equal(1, Post:filter { tags__name = "lua" }:count())
      assert.equal(0, Comment:filter { post__title = "a" }:count())
      assert.equal(0, Comment:filter { post__author__name = "bob" }:count())
      assert.equal(4, Comment:exclude { post__author__name = "bob" }:count())
      assert.equal(1, Comment:filter { post__author__name = "ann" }:count())
      assert.equal(0, Post:filter { quay.any { { author__name = "bob" }, { title = "zz" } } }:count())
      -- with_deleted widens the queried model only
      assert.equal(0, Post:with_deleted():filter { author__name = "bob" }:count())
      assert.equal(1, Post:with_deleted():filter { author__name = "ann" }:count() - 1)
    end)

    it("values and pluck through a to-one path to a soft-deleted row read nil, but for its key", function()
      seed()
      local rows = Post:values("title", "author__name", "author"):order_by("title"):all()
      assert.equal(3, #rows)
      assert.equal("b", rows[1].title)
      assert.equal("ann", rows[1].author__name)
      assert.equal("c", rows[2].title)
      assert.is_nil(rows[2].author__name)
      -- a path that ends at the related key reads the column (Django's
      -- values("author") is author_id), while rec.author reads nil
      assert.equal(S.bob.id, rows[2].author)
      assert.equal(S.bob.id, Post:values("author__id"):filter { title = "c" }:first().author__id)
      assert.equal(S.bob.id, Post:values("author_id"):filter { title = "c" }:first().author_id)
      local names = Comment:order_by("body"):pluck("post__author__name")
      assert.same({ "cat", nil, "ann", nil }, { names[1], names[2], names[3], names[4] })
      assert.equal(4, #Comment:order_by("body"):pluck("body"))
      local g = Post:values("author__name"):annotate { k = quay.count() }:order_by("author__name"):all()
      assert.equal(3, #g)
    end)

    it("exists, first, get, find and raw around soft-deleted rows", function()
      seed()
      assert.is_false(Post:filter { title = "a" }:exists())
      assert.is_nil(Post:filter { title = "a" }:first())
      assert.equal("b", Post:order_by("title"):first().title)
      local err = helper.raises("not_found", Post.get, Post, { title = "a" })
      helper.mentions(err, "Post")
      helper.raises("not_found", User.get, User, { name = "bob" })
      assert.is_nil(Post:find(S.a.id))
      assert.is_nil(User:find(S.bob.id))
      assert.equal("a", Post:with_deleted():get { id = S.a.id }.title)
      assert.equal("a", Post:only_deleted():get().title)
      -- raw runs the SQL as written
      local raw = Post:raw("SELECT id, title, views, author_id, deleted_at FROM posts ORDER BY title")
      assert.equal(4, #raw)
      assert.is_string(raw[1].deleted_at)
      assert.is_nil(raw[2].deleted_at)
    end)

    it("with_deleted and only_deleted combine with select_related, prefetch, count, annotate", function()
      seed()
      local ps = Post:with_deleted():select_related("author"):order_by("title"):all()
      assert.equal(4, #ps)
      assert.equal("ann", ps[1].author.name)
      assert.is_nil(ps[3].author)                  -- bob stays hidden
      ps = Post:only_deleted():prefetch_related("tags", "comments"):all()
      assert.equal(1, #ps)
      assert.equal(1, #ps[1].tags)                 -- lua; tag c stays hidden
      assert.equal(1, #ps[1].comments)
      assert.equal(2, User:only_deleted():count() + 1)
      local u = User:only_deleted():with_count("posts"):first()
      assert.equal("bob", u.name)
      assert.equal(1, u.posts_count)
      assert.equal(4, Post:with_deleted():aggregate { n = quay.count() }.n)
      assert.equal(1, Post:only_deleted():aggregate { s = quay.sum("views") }.s / 10)
      assert.equal(3, User:with_deleted():annotate { k = quay.count("posts") }:count())
      assert.same({ "a" }, Post:only_deleted():pluck("title"))
      assert.equal(1, #Post:only_deleted():values("title"):all())
    end)

    it("restore makes the row visible again to every read", function()
      seed()
      local z = Comment:get { body = "z" }
      assert.is_nil(z.post.author)
      local bob = User:with_deleted():get { name = "bob" }
      assert.is_true(bob:restore())
      assert.equal("bob", Comment:get { body = "z" }.post.author.name)
      assert.equal("bob", Comment:select_related("post__author"):get { body = "z" }.post.author.name)
      assert.equal(1, Post:filter { author__name = "bob" }:count())
      assert.equal(3, User:count())
      assert.equal(3, User:where_has("posts"):count())
      local a = Post:with_deleted():get { title = "a" }
      a:restore()
      assert.equal(2, User:get { name = "ann" }.posts:count())
      assert.equal("ann", Comment:get { body = "x" }.post_author.name)
      assert.equal(2, User:get { name = "ann" }:to_table().karma + 2)
    end)
  end)

  describe("has_many, has_one and self relations with soft-deleted rows", function()
    it("has_many / has_one declared on the parent skip soft-deleted children", function()
      local Box = db:model("Box", {
        name = quay.string(),
        items = quay.has_many("Thing", { foreign_key = "box_id" }),
        lid = quay.has_one("Lid", { foreign_key = "box_id" }),
      })
      local Thing = db:model("Thing", { box_id = quay.integer { null = true }, w = quay.integer(),
        soft_delete = true })
      local Lid = db:model("Lid", { box_id = quay.integer { null = true }, color = quay.string(),
        soft_delete = true })
      db:create_tables()
      local b = Box:create { name = "b" }
      Thing:create { box_id = b.id, w = 1 }
      Thing:create { box_id = b.id, w = 2 }:delete()
      Lid:create { box_id = b.id, color = "red" }:delete()
      Lid:create { box_id = b.id, color = "blue" }
      b = Box:first()
      assert.equal(1, #b.items)
      assert.equal(1, b.items:count())
      assert.equal("blue", b.lid.color)
      assert.equal("blue", Box:select_related("lid"):first().lid.color)
      assert.equal("blue", Box:prefetch_related("lid"):first().lid.color)
      assert.equal(1, Box:with_count("items"):first().items_count)
      assert.equal(1, Box:annotate { s = quay.sum("items__w") }:first().s)
      assert.equal(0, Box:filter { items__w = 2 }:count())
      assert.equal(0, Box:filter { lid__color = "red" }:count())
      assert.same({ "blue" }, Box:values("lid__color"):pluck("lid__color"))
      Lid:filter { color = "blue" }:delete()
      assert.is_nil(Box:first().lid)
      assert.is_nil(Box:select_related("lid"):first().lid)
      assert.equal(1, Box:where_doesnt_have("lid"):count())
    end)

    it("a self relation: children of a soft-deleted parent, the parent of a live child", function()
      local Node = db:model("Node", {
        name = quay.string(),
        parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE, related_name = "children" }),
        soft_delete = true,
      })
      db:create_tables()
      local root = Node:create { name = "root" }
      local mid = Node:create { name = "mid", parent = root }
      Node:create { name = "leaf", parent = mid }
      Node:create { name = "leaf2", parent = mid }:delete()
      mid:delete()
      assert.same({ "leaf", "root" }, Node:order_by("name"):pluck("name"))
      assert.is_nil(Node:get { name = "leaf" }.parent)
      assert.equal(0, #Node:get { name = "root" }.children)
      assert.equal(1, Node:with_deleted():get { name = "mid" }.children:count())
      assert.equal(0, Node:filter { parent__parent__name = "root" }:count())
      assert.equal(0, Node:filter { children__name = "leaf" }:count())
      assert.same({ 0, 0 }, Node:with_count("children"):order_by("name"):pluck("children_count"))
      local rows = Node:select_related("parent__parent"):order_by("name"):all()
      assert.is_nil(rows[1].parent)
      -- a hard delete of root cascades through the soft-deleted middle
      assert.same({ Node = 4 }, Node:get { name = "root" }:delete { hard = true })
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM nodes"))
    end)
  end)

  describe("deletes and writes on soft models", function()
    it("a hard delete cascades to soft and hard rows and counts them", function()
      seed()
      local ann = User:get { name = "ann" }
      local truth = {
        Post = n(db, "SELECT COUNT(*) AS n FROM posts WHERE author_id = ?", { ann.id }),
        Comment = n(db, "SELECT COUNT(*) AS n FROM comments c JOIN posts p ON p.id = c.post_id "
          .. "WHERE p.author_id = ?", { ann.id }),
        posts_tags = n(db, "SELECT COUNT(*) AS n FROM posts_tags pt JOIN posts p ON p.id = pt.post_id "
          .. "WHERE p.author_id = ?", { ann.id }),
      }
      assert.same({ User = 1, Profile = 1, Post = truth.Post, Comment = truth.Comment,
        posts_tags = truth.posts_tags }, ann:delete { dry_run = true, hard = true })
      assert.same({ User = 1, Profile = 1, Post = 2, Comment = 2, posts_tags = 4 },
        ann:delete { hard = true })
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM posts WHERE author_id = ?", { S.ann.id }))
      -- a hard delete of a soft-deleted row (bob)
      local bob = User:with_deleted():get { name = "bob" }
      assert.same({ User = 1, Profile = 1, Post = 1, Comment = 1 }, bob:delete { hard = true })
      -- a hard delete of a soft-deleted tag removes its join rows
      local ctag = Tag:with_deleted():get { name = "c" }
      assert.same({ Tag = 1, posts_tags = 1 }, ctag:delete { hard = true })
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM posts_tags"))
    end)

    it("qs:delete on a soft model counts only the rows it marks", function()
      seed()
      assert.same({ Post = 3 }, Post:query():delete())
      assert.equal(4, n(db, "SELECT COUNT(*) AS n FROM posts WHERE deleted_at IS NOT NULL"))
      assert.same({}, Post:with_deleted():delete())
      assert.same({ User = 2 }, User:query():delete())
      assert.equal(4, n(db, "SELECT COUNT(*) AS n FROM comments"))   -- no cascade
      assert.equal(0, #db:rows("SELECT * FROM users WHERE deleted_at IS NULL"))
      assert.same({ Post = 4, Comment = 4, posts_tags = 5 }, Post:with_deleted():delete { hard = true })
      -- a qs:delete through a relation of a soft-deleted owner
      assert.same({ Tag = 1 }, Tag:query():delete())     -- lua; c was already marked
      assert.same({}, Tag:with_deleted():filter { name = "lua" }:delete())
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM tags WHERE deleted_at IS NOT NULL"))
    end)

    it("a delete whose cascade reaches a soft-deleted row of a soft model deletes it for real", function()
      seed()
      -- Comment has no soft delete: deleting the (live) post b hard removes y
      local b = Post:get { title = "b" }
      assert.same({ Post = 1, Comment = 1, posts_tags = 2 }, b:delete { hard = true })
      -- a soft delete of a user never touches its posts
      local cat = User:get { name = "cat" }
      assert.same({ User = 1 }, cat:delete())
      assert.equal(1, Post:filter { title = "d" }:count())
    end)

    it("get_or_create finds no soft-deleted row; a unique clash raises integrity", function()
      seed()
      -- no unique field: a new row is made next to the soft-deleted one
      local rec, created = Post:get_or_create({ title = "a" }, { author = S.ann, views = 1 })
      assert.is_true(created)
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM posts WHERE title = 'a'"))
      assert.equal(rec, Post:get { title = "a" })
      -- a unique field held by a soft-deleted row: integrity, nothing written
      local err = helper.raises("integrity", User.get_or_create, User, { email = "bob@x" }, { name = "b2" })
      helper.mentions(err, "User", "email", "with_deleted", "restore")
      assert.equal(1, n(db, "SELECT COUNT(*) AS n FROM users WHERE email = 'bob@x'"))
      helper.raises("integrity", User.update_or_create, User, { email = "bob@x" }, { name = "b3" })
      assert.equal("bob", db:rows("SELECT name FROM users WHERE email = 'bob@x'")[1].name)
      -- the way out: find it with with_deleted() and restore it
      local r2 = User:with_deleted():get { email = "bob@x" }
      assert.is_true(r2:restore())
      local r3, c3 = User:get_or_create({ email = "bob@x" }, { name = "b2" })
      assert.is_false(c3)
      assert.equal(r2, r3)
    end)

    it("upsert onto a soft-deleted row updates it and keeps it soft-deleted", function()
      seed()
      local recs = User:upsert({ { email = "bob@x", name = "bobby" }, { email = "dan@x", name = "dan" } },
        { conflict = { "email" }, update = { "name" } })
      assert.equal(2, #recs)
      assert.equal(S.bob.id, recs[1].id)
      local row = db:rows("SELECT name, deleted_at FROM users WHERE email = 'bob@x'")[1]
      assert.equal("bobby", row.name)
      assert.truthy(row.deleted_at)
      assert.is_nil(User:find(S.bob.id))
      assert.equal(3, User:count())
    end)
  end)

  describe("more reads and writes around soft-deleted rows", function()
    it("qs:update and bulk_update leave soft-deleted rows alone unless widened", function()
      seed()
      assert.equal(3, Post:query():update { views = 1 })
      assert.equal(10, n(db, "SELECT views AS n FROM posts WHERE title = 'a'"))
      assert.equal(1, Post:only_deleted():update { views = 2 })
      assert.equal(2, n(db, "SELECT views AS n FROM posts WHERE title = 'a'"))
      assert.equal(4, Post:with_deleted():update { views = quay.F("views") + 1 })
      assert.equal(0, Post:filter { author__name = "bob" }:update { views = 9 })
      -- quay.F across a soft-deleted author reads NULL in update, as in filter
      db:execute("UPDATE users SET karma = 7")
      local err = helper.raises("integrity", function()
        return Post:filter { title = "c" }:update { views = quay.F("author__karma") }
      end)
      helper.mentions(err, "views")
      assert.equal(2, n(db, "SELECT views AS n FROM posts WHERE title = 'c'"))   -- unchanged
      assert.equal(1, Post:filter { title = "b" }:update { views = quay.F("author__karma") + 1 })
      assert.equal(8, n(db, "SELECT views AS n FROM posts WHERE title = 'b'"))
      assert.same({ 8, 2 }, Post:filter { title__in = { "b", "c" } }:order_by("title"):pluck("views"))
      assert.equal(1, Comment:filter { body = "z" }:update { body = "zz" })
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM posts p LEFT JOIN users u ON u.id = p.author_id AND "
        .. "u.deleted_at IS NULL WHERE p.deleted_at IS NULL AND u.karma IS NULL"),
        Post:filter { author__karma__isnull = true }:count())
      -- a record loaded before its soft delete still saves as an update
      local a = Post:with_deleted():get { title = "a" }
      a.views = 7
      assert.equal(1, Post:bulk_update({ a }, { "views" }))
      assert.equal(7, n(db, "SELECT views AS n FROM posts WHERE title = 'a'"))
      assert.is_nil(Post:find(a.id))
    end)

    it("a soft-deleted reverse one_to_one reads nil; iter and distinct counts skip soft rows", function()
      local Acc = db:model("Acc", { name = quay.string() })
      local Card = db:model("Card", {
        acc = quay.one_to_one("Acc", { related_name = "card", on_delete = quay.CASCADE }),
        n = quay.integer(),
        soft_delete = true,
      })
      db:create_tables()
      local a1, a2 = Acc:create { name = "a1" }, Acc:create { name = "a2" }
      Card:create { acc = a1, n = 1 }
      Card:create { acc = a2, n = 1 }:delete()
      assert.is_nil(Acc:get { name = "a2" }.card)
      assert.equal(1, Acc:get { name = "a1" }.card.n)
      local accs = Acc:select_related("card"):order_by("name"):all()
      assert.equal(1, accs[1].card.n)
      assert.is_nil(accs[2].card)
      accs = Acc:prefetch_related("card"):order_by("name"):all()
      assert.is_nil(accs[2].card)
      assert.equal(1, Acc:filter { card__n = 1 }:count())
      assert.equal(1, Acc:where_doesnt_have("card"):count())
      assert.same({ "a2" }, Acc:filter { card__isnull = true }:pluck("name"))
      local seen = 0
      for _ in Card:query():iter() do seen = seen + 1 end
      assert.equal(1, seen)
      assert.equal(1, Card:values("n"):distinct():count())
      assert.equal(1, Card:with_deleted():values("n"):distinct():count())
      assert.equal(2, Card:with_deleted():count())
    end)

    it("PROTECT and RESTRICT count soft-deleted blockers on a hard delete", function()
      local Owner = db:model("Owner", { name = quay.string() })
      local Pet = db:model("Pet", {
        owner = quay.belongs_to("Owner", { on_delete = quay.PROTECT, related_name = "pets" }),
        soft_delete = true,
      })
      db:create_tables()
      local o = Owner:create { name = "o" }
      Pet:create { owner = o }:delete()
      assert.equal(0, o.pets:count())
      -- the row is still there and its key still refers to o
      local err = helper.raises("protected", o.delete, o)
      helper.mentions(err, "Pet")
      assert.equal(1, n(db, "SELECT COUNT(*) AS n FROM owners"))
      Pet:only_deleted():delete { hard = true }
      assert.same({ Owner = 1 }, o:delete())
    end)

    it("many_to_many writes next to a soft-deleted target or pivot row", function()
      seed()
      local b = Post:get { title = "b" }
      local ctag = Tag:with_deleted():get { name = "c" }
      -- the pair (b, c) exists: adding it again is a no-op
      b.tags:add(ctag)
      assert.equal(n(db, "SELECT COUNT(*) AS n FROM posts_tags WHERE post_id = ?", { b.id }), 2)
      assert.equal(1, b.tags:count())
      -- set() replaces the live pairs; the soft-deleted tag's pair stays
      b.tags:set({ S.lua })
      assert.equal(1, b.tags:count())
      -- clear() removes every pair of the owner
      b.tags:clear()
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM posts_tags WHERE post_id = ?", { b.id }))
      assert.is_true(ctag:restore())
      assert.equal(0, b.tags:count())
      -- a custom through: adding back a pair whose pivot row is soft-deleted
      local s1, _, _, _, k3 = seed_courses()
      assert.is_false(s1.courses:contains(k3))
      s1.courses:add(k3, { grade = 9 })
      assert.is_true(s1.courses:contains(k3))
      assert.equal(9, s1.courses:filter { title = "k3" }:first().pivot.grade)
      local pairs_sql = "SELECT COUNT(*) AS n FROM enrolments WHERE student_id = ? AND course_id = ?"
      assert.equal(2, n(db, pairs_sql, { s1.id, k3.id }))          -- the old row stays, marked
      s1.courses:add(k3)                                             -- now a no-op
      assert.equal(2, n(db, pairs_sql, { s1.id, k3.id }))
      -- remove deletes the pair's through rows for real, marked ones too
      -- (as Laravel's detach)
      s1.courses:remove(k3)
      assert.is_false(s1.courses:contains(k3))
      assert.equal(0, n(db, pairs_sql, { s1.id, k3.id }))
      s1.courses:set({ k3 })
      assert.same({ "k3" }, sorted(s1.courses:all(), "title"))
      assert.equal(1, n(db, pairs_sql, { s1.id, k3.id }))
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM enrolments WHERE student_id = ? AND course_id <> ?",
        { s1.id, k3.id }))
    end)

    it("annotate over a to-many path with a filter crossing a soft-deleted relation", function()
      seed()
      local rows = User:annotate {
        lua = quay.count("posts", { filter = { posts__tags__name = "lua" } }),
        ctags = quay.count("posts", { filter = { posts__tags__name = "c" } }),
        v = quay.sum("posts__views", { filter = { posts__comments__body__in = { "x", "y", "w" } } }),
      }:order_by("name"):all()
      assert.same({ 1, 0 }, { rows[1].lua, rows[2].lua })
      assert.same({ 0, 0 }, { rows[1].ctags, rows[2].ctags })
      assert.same({ 20, 40 }, { rows[1].v, rows[2].v })
      local g = Post:values("author__name"):annotate { k = quay.count(), s = quay.sum("views") }
        :order_by("author__name"):all()
      local truth = db:rows("SELECT u.name AS name, COUNT(*) AS k, SUM(p.views) AS s FROM posts p "
        .. "LEFT JOIN users u ON u.id = p.author_id AND u.deleted_at IS NULL WHERE p.deleted_at IS NULL "
        .. "GROUP BY u.name ORDER BY u.name" .. (helper.is_pg and " NULLS FIRST" or ""))
      assert.equal(#truth, #g)
      for i = 1, #g do
        assert.equal(truth[i].name, g[i].author__name)
        assert.equal(truth[i].k, g[i].k)
        assert.equal(tonumber(truth[i].s), g[i].s)
      end
    end)
  end)

  describe("two-hop paths and key rules through soft-deleted rows", function()
    it("to-many chains with a soft-deleted middle row: filters, where_has, aggregates", function()
      seed()
      local live = "EXISTS (SELECT 1 FROM posts p JOIN comments c ON c.post_id = p.id WHERE "
        .. "p.author_id = u.id AND p.deleted_at IS NULL AND c.body = ?)"
      for _, body in ipairs { "x", "y", "z", "w" } do
        assert.equal(n(db, "SELECT COUNT(*) AS n FROM users u WHERE u.deleted_at IS NULL AND " .. live,
          { body }), User:filter { posts__comments__body = body }:count())
        assert.equal(n(db, "SELECT COUNT(*) AS n FROM users u WHERE u.deleted_at IS NULL AND " .. live,
          { body }), User:where_has("posts__comments", { body = body }):count())
      end
      assert.equal(0, User:filter { posts__comments__body = "x" }:count())
      assert.equal(2, User:exclude { posts__title = "a" }:count())
      assert.equal(2, User:aggregate { k = quay.count("posts__comments") }.k)
      local rows = User:annotate { k = quay.count("posts__comments"), e = quay.exists("posts__comments") }
        :order_by("name"):all()
      assert.same({ 1, 1 }, { rows[1].k, rows[2].k })
      assert.same({ true, true }, { rows[1].e, rows[2].e })
      local us = User:with_deleted():annotate { k = quay.count("posts__comments") }:order_by("name"):all()
      assert.same({ 1, 1, 1 }, { us[1].k, us[2].k, us[3].k })
      assert.same({}, Post:filter { author__name = "bob" }:delete())
      assert.equal(3, Post:count())
    end)

    it("quay.prefetch query sets widen or narrow one level only", function()
      seed()
      local ps = Post:prefetch_related(quay.prefetch("tags", Tag:with_deleted():order_by("name")))
        :order_by("title"):all()
      assert.same({ "c", "lua" }, { ps[1].tags[1].name, ps[1].tags[2].name })
      assert.equal(1, #ps[3].tags)                 -- d: tag c
      ps = Post:prefetch_related(quay.prefetch("tags", Tag:only_deleted(), { to = "gone" }))
        :order_by("title"):all()
      assert.equal(1, #ps[1].gone)
      assert.equal(1, #ps[1].tags)                 -- the relation itself is untouched
      local cs = Comment:prefetch_related(quay.prefetch("post", Post:query(), { to = "p" }))
        :order_by("body"):all()
      assert.is_nil(cs[2].p)                       -- x: its post is soft-deleted
      assert.equal("c", cs[4].p.title)
      cs = Comment:prefetch_related(quay.prefetch("post", Post:with_deleted())):order_by("body"):all()
      assert.equal("a", cs[2].post.title)
      assert.is_nil(cs[4].post.author)             -- bob stays hidden a level down
      local us = User:prefetch_related(quay.prefetch("posts", Post:select_related("author")))
        :order_by("name"):all()
      assert.equal("ann", us[1].posts[1].author.name)
    end)

    it("on_update CASCADE and SET_NULL reach soft-deleted rows too (they still hold the key)", function()
      local Acct = db:model("Acct", { code = quay.string { unique = true } })
      local Ent = db:model("Ent", {
        acct = quay.belongs_to("Acct", { to_field = "code", on_update = quay.CASCADE,
          on_delete = quay.SET_NULL, null = true, related_name = "ents" }),
        soft_delete = true,
      })
      db:create_tables()
      local a = Acct:create { code = "A" }
      local e1, e2 = Ent:create { acct = a }, Ent:create { acct = a }
      e2:delete()
      a.code = "B"
      a:save()
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM ents WHERE acct_id = 'B'"))
      assert.equal(1, a.ents:count())
      assert.equal(1, Acct:query():update { code = "C" })
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM ents WHERE acct_id = 'C'"))
      local acct = Acct:first()
      assert.same({ Acct = 1 }, acct:delete())
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM ents WHERE acct_id IS NULL"))
      assert.equal(1, Ent:only_deleted():count())
      _ = e1
    end)
  end)

  describe("ordering, expressions, batching and refresh around soft-deleted rows", function()
    it("order_by, quay.F and with across a soft-deleted to-one read it as NULL", function()
      seed()
      User:filter { name = "cat" }:update { karma = 5 }
      db:execute("UPDATE users SET karma = 7 WHERE name = 'bob'")
      local truth = db:rows("SELECT p.title FROM posts p LEFT JOIN users u ON u.id = p.author_id AND "
        .. "u.deleted_at IS NULL WHERE p.deleted_at IS NULL ORDER BY u.name DESC"
        .. (helper.is_pg and " NULLS LAST" or "") .. ", p.title")
      local got = Post:order_by("-author__name", "title"):pluck("title")
      -- NULL sorts as the smallest value on both backends
      assert.same({ "d", "b", "c" }, got)
      assert.same({ truth[1].title, truth[2].title, truth[3].title }, got)
      assert.equal(0, Post:filter { views__lt = quay.F("author__karma") }:count())
      assert.equal(1, Post:filter { author__karma__gt = 0 }:count())       -- d (cat); bob is hidden
      local rows = Post:annotate { k = quay.F("author__karma") }:order_by("title"):all()
      assert.same({ 0, "nil", 5 }, { rows[1].k, rows[2].k == nil and "nil" or rows[2].k, rows[3].k })
      local ps = Post:with("author"):order_by("title"):all()
      assert.is_nil(ps[2].author)
      assert.equal("cat", ps[3].author.name)
    end)

    it("lazy loads batch over a result, soft-deleted targets included, in one query", function()
      seed()
      local cs = Comment:order_by("body"):all()
      local names = {}
      local q = helper.queries(db, function()
        for i, c in ipairs(cs) do names[i] = c.post and c.post.title or false end
      end)
      assert.equal(1, q)
      assert.same({ "d", false, "b", "c" }, names)
      q = helper.queries(db, function()
        for _, c in ipairs(cs) do local _ = c.post and c.post.author end
      end)
      assert.equal(1, q)
      q = helper.queries(db, function()
        for _, c in ipairs(cs) do local _ = c.post and c.post.author end
      end)
      assert.equal(0, q)
    end)

    it("related sets: first, get, set[i], limit and offset skip soft-deleted rows", function()
      seed()
      local ann = User:get { name = "ann" }
      assert.equal("b", ann.posts:first().title)
      assert.equal("b", ann.posts[1].title)
      assert.is_nil(ann.posts[2])
      helper.raises("not_found", function() return ann.posts:get { title = "a" } end)
      assert.equal(1, ann.posts:order_by("title"):limit(5):count())
      assert.equal(0, Post:order_by("title"):offset(3):count())
      assert.same({ "c" }, Post:order_by("title"):offset(1):limit(1):pluck("title"))
      assert.same({ "a", "b" }, Post:with_deleted():order_by("title"):limit(2):pluck("title"))
      assert.equal("b", ann.posts:with_deleted():order_by("-title"):first().title)
    end)

    it("refresh reads a soft-deleted record back (as Django's and Laravel's refresh do)", function()
      seed()
      local a = Post:with_deleted():get { title = "a" }
      db:execute("UPDATE posts SET views = 99 WHERE id = ?", { a.id })
      a:refresh()
      assert.equal(99, a.views)
      assert.is_string(a.deleted_at)
      local b = Post:get { title = "b" }
      b:delete()
      b:refresh()
      assert.is_string(b.deleted_at)
      assert.is_true(b:restore())
      b:refresh()
      assert.is_nil(b.deleted_at)
      db:execute("DELETE FROM comments")
      db:execute("DELETE FROM posts_tags")
      db:execute("DELETE FROM posts WHERE id = ?", { a.id })
      helper.mentions(helper.raises("not_found", a.refresh, a), "Post")
    end)
  end)

  describe("hooks and validation inside other operations", function()
    local function hooked(extra)
      local H = db:model("Item", {
        name = quay.string { unique = true },
        n = quay.integer { default = 0 },
        hooks = {
          before_save = function(rec, creating) log[#log + 1] = { "bs", rec.name, creating } end,
          after_save = function(rec, created) log[#log + 1] = { "as", rec.name, created } end,
        },
        soft_delete = extra,
      })
      db:create_tables()
      return H
    end

    it("bulk_create runs every before_save, then the INSERTs, then every after_save, past a batch", function()
      -- 10,001 rows: more than one PostgreSQL batch (10,000 rows)
      local seen = {}
      local H = db:model("Item", {
        name = quay.string { unique = true },
        n = quay.integer { default = 0 },
        hooks = {
          before_save = function(rec)
            seen[#seen + 1] = "b"
            if rec.n == 1 or rec.n == 10001 then seen[#seen] = "b" .. db:model("Item"):count() end
          end,
          after_save = function(rec)
            seen[#seen + 1] = "a"
            if rec.n == 1 or rec.n == 10001 then seen[#seen] = "a" .. db:model("Item"):count() end
          end,
        },
      })
      db:create_tables()
      local rows = {}
      for i = 1, 10001 do rows[i] = { name = "r" .. i, n = i } end
      local recs = H:bulk_create(rows)
      assert.equal(10001, #recs)
      assert.equal(20002, #seen)
      -- the first and last before_save see no row written; both after_saves see them all
      assert.equal("b0", seen[1])
      assert.equal("b0", seen[10001])
      assert.equal("a10001", seen[10002])
      assert.equal("a10001", seen[20002])
      for i = 2, 10000 do assert.equal("b", seen[i]) end
      for i = 10003, 20001 do assert.equal("a", seen[i]) end
      assert.equal(10001, recs[10001].n)
      assert.equal(10001, H:count())
    end)

    it("save hooks get creating/created for create, save, bulk_create, upsert, update_or_create", function()
      local H = hooked()
      local r = H:create { name = "a" }
      assert.same({ { "bs", "a", true }, { "as", "a", true } }, log)
      log = {}
      r.n = 1; r:save()
      assert.same({ { "bs", "a", false }, { "as", "a", false } }, log)
      log = {}
      H:bulk_create { { name = "b" }, { name = "c" } }
      -- every before_save first, then the INSERTs, then every after_save,
      -- on both backends (reference.md "What each write runs")
      assert.same({ { "bs", "b", true }, { "bs", "c", true }, { "as", "b", true }, { "as", "c", true } },
        log)
      log = {}
      H:upsert({ { name = "a", n = 5 }, { name = "z", n = 6 } }, { conflict = { "name" } })
      assert.equal(4, #log)
      for _, e in ipairs(log) do assert.is_nil(e[3]) end
      log = {}
      H:update_or_create({ name = "a" }, { n = 9 })
      assert.same({ { "bs", "a", false }, { "as", "a", false } }, log)
      log = {}
      H:update_or_create({ name = "q" }, { n = 9 })
      assert.same({ { "bs", "q", true }, { "as", "q", true } }, log)
      log = {}
      local _, made = H:get_or_create({ name = "q" })
      assert.is_false(made)
      assert.same({}, log)
      assert.equal(9, n(db, "SELECT n FROM items WHERE name = 'a'"))
    end)

    it("delete hooks run for cascaded rows of hooked models only; the others stay set-based", function()
      local P = db:model("P", { name = quay.string() })
      db:model("C", {
        p = quay.belongs_to("P", { on_delete = quay.CASCADE, related_name = "cs" }),
        hooks = {
          before_delete = function(rec) log[#log + 1] = "bd" .. rec.id end,
          after_delete = function(rec) log[#log + 1] = "ad" .. rec.id end,
        },
      })
      local G = db:model("G", {
        c = quay.belongs_to("C", { on_delete = quay.CASCADE, related_name = "gs" }),
      })
      db:model("N", { p = quay.belongs_to("P", { on_delete = quay.CASCADE }) })
      db:create_tables()
      local p = P:create { name = "p" }
      local C, N = db:model("C"), db:model("N")
      local cs = {}
      for i = 1, 3 do cs[i] = C:create { p = p } end
      for i = 1, 10 do G:create { c = cs[(i % 3) + 1] }; N:create { p = p } end
      local stmts = {}
      db:on_query(function(sql) stmts[#stmts + 1] = sql end)
      local counts = p:delete()
      db:on_query(nil)
      assert.same({ P = 1, C = 3, G = 10, N = 10 }, counts)
      assert.equal(6, #log)
      -- the G and N rows go in set-based statements, never one per row
      local g_deletes, n_deletes = 0, 0
      for _, s in ipairs(stmts) do
        if s:match("^DELETE FROM \"gs\"") then g_deletes = g_deletes + 1 end
        if s:match("^DELETE FROM \"ns\"") then n_deletes = n_deletes + 1 end
      end
      assert.is_true(g_deletes >= 1 and g_deletes <= 2)
      assert.is_true(n_deletes >= 1 and n_deletes <= 2)
      assert.is_true(#stmts < 20)
    end)

    it("a hook error inside a nested transaction undoes only the savepoint", function()
      local fail = false
      local H = db:model("Item", {
        name = quay.string(),
        hooks = { after_save = function(rec) if fail then error("boom " .. rec.name) end end },
      })
      local L = db:model("Log", { msg = quay.string() })
      db:create_tables()
      db:transaction(function()
        H:create { name = "outer" }
        fail = true
        local ok, err = pcall(db.transaction, db, function()
          L:create { msg = "inner" }
          H:create { name = "inner" }
        end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("boom inner", 1, true))
        fail = false
        L:create { msg = "after" }
      end)
      assert.same({ "outer" }, H:pluck("name"))
      assert.same({ "after" }, L:pluck("msg"))
    end)

    it("a hook that bumps a counter on another model: kept on success, undone on validation failure", function()
      local Owner = db:model("Owner", { name = quay.string(), n = quay.integer { default = 0 } })
      local Thing = db:model("Thing", {
        owner = quay.belongs_to("Owner", { related_name = "things" }),
        size = quay.integer { max = 10 },
        hooks = {
          before_save = function(rec, creating)
            if creating then
              Owner:filter { id = rec.owner_id }:update { n = quay.F("n") + 1 }
            end
          end,
        },
      })
      db:create_tables()
      local o = Owner:create { name = "o" }
      Thing:create { owner = o, size = 1 }
      assert.equal(1, n(db, "SELECT n FROM owners"))
      local err = helper.raises("validation", Thing.create, Thing, { owner = o, size = 11 })
      assert.equal("Thing", err.model)
      assert.equal("size", err.field)
      assert.equal(1, n(db, "SELECT n FROM owners"))
      assert.equal(1, n(db, "SELECT COUNT(*) AS n FROM things"))
      -- bulk_create: one bad record undoes every hook's write
      helper.raises("validation", Thing.bulk_create, Thing, { { owner = o, size = 2 }, { owner = o, size = 12 } })
      assert.equal(1, n(db, "SELECT n FROM owners"))
      assert.equal(1, o.things:count())
    end)

    it("a delete hook error inside a nested transaction undoes only that delete", function()
      local fail = false
      local P = db:model("P", { name = quay.string() })
      local C = db:model("C", {
        p = quay.belongs_to("P", { on_delete = quay.CASCADE, related_name = "cs" }),
        hooks = { before_delete = function(rec) if fail then error({ boom = rec.id }) end end },
      })
      local L = db:model("Log", { msg = quay.string() })
      db:create_tables()
      local p1, p2 = P:create { name = "p1" }, P:create { name = "p2" }
      C:create { p = p1 }
      C:create { p = p2 }
      db:transaction(function()
        assert.same({ P = 1, C = 1 }, p1:delete())
        fail = true
        local ok, err = pcall(db.transaction, db, function()
          L:create { msg = "inner" }
          p2:delete()
        end)
        assert.is_false(ok)
        assert.is_number(err.boom)                 -- raised unchanged
        fail = false
        L:create { msg = "after" }
      end)
      assert.same({ "p2" }, P:pluck("name"))
      assert.equal(1, C:count())
      assert.same({ "after" }, L:pluck("msg"))
      assert.equal(p2.id, P:first().id)            -- the record kept its key
      assert.same({ P = 1, C = 1 }, p2:delete())
    end)

    it("a hook's own db:transaction nests in the write's savepoint", function()
      local Lg = db:model("Lg", { msg = quay.string() })
      local I = db:model("Item", {
        name = quay.string(),
        hooks = {
          before_save = function()
            local ok = pcall(db.transaction, db, function() Lg:create { msg = "in" }; error("x") end)
            assert(not ok)
            Lg:create { msg = "kept " .. tostring(ok) }
          end,
          after_delete = function() db:transaction(function() Lg:create { msg = "del" } end) end,
        },
      })
      db:create_tables()
      local i = I:create { name = "a" }
      assert.same({ "kept false" }, Lg:pluck("msg"))
      i:delete()
      assert.same({ "kept false", "del" }, Lg:order_by("id"):pluck("msg"))
      assert.is_false(pcall(db.transaction, db, function() I:create { name = "b" }; error("outer") end))
      assert.equal(0, I:count())
      assert.equal(2, Lg:count())
    end)

    it("delete hooks on a soft model run once per live row; a soft delete cascades no hooks", function()
      local Parent = db:model("Parent", {
        name = quay.string(),
        soft_delete = true,
        hooks = {
          before_delete = function(rec) log[#log + 1] = "bd " .. rec.name end,
          after_delete = function(rec) log[#log + 1] = "ad " .. rec.name .. " " .. tostring(rec.deleted_at ~= nil) end,
        },
      })
      db:model("Kid", {
        parent = quay.belongs_to("Parent", { on_delete = quay.CASCADE }),
        hooks = { before_delete = function() log[#log + 1] = "kid" end },
      })
      db:create_tables()
      local a = Parent:create { name = "a" }
      Parent:create { name = "b" }
      db:model("Kid"):create { parent = a }
      a:delete()
      assert.same({ "bd a", "ad a true" }, log)
      log = {}
      assert.same({ Parent = 1 }, Parent:query():delete())
      assert.same({ "bd b", "ad b true" }, log)
      log = {}
      assert.same({ Parent = 2, Kid = 1 }, Parent:with_deleted():delete { hard = true })
      table.sort(log)
      -- the rows loaded for the hooks carry their deleted_at
      assert.same({ "ad a true", "ad b true", "bd a", "bd b", "kid" }, log)
    end)

    it("a soft delete undone by a delete hook error leaves the record unmarked", function()
      local fail = true
      local Memo = db:model("Memo", {
        txt = quay.string(),
        soft_delete = true,
        hooks = { after_delete = function() if fail then error("kept") end end },
      })
      db:create_tables()
      local m = Memo:create { txt = "m" }
      local ok, err = pcall(m.delete, m)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("kept", 1, true))
      assert.is_nil(m.deleted_at)                  -- as before the call
      assert.equal(1, Memo:count())
      assert.is_false(m:restore())                 -- not soft-deleted
      ok = pcall(function() return Memo:query():delete() end)
      assert.is_false(ok)
      assert.equal(1, Memo:count())
      fail = false
      assert.same({ Memo = 1 }, m:delete())
      assert.is_string(m.deleted_at)
      local mark = m.deleted_at
      fail = true
      ok = pcall(m.delete, m, { hard = true })
      assert.is_false(ok)
      assert.equal(mark, m.deleted_at)             -- still the mark it had
      assert.equal(m.id, Memo:with_deleted():first().id)
    end)

    it("a save hook reading a relation sees soft delete; its writes to another model are undone on error", function()
      local Au = db:model("Au", { name = quay.string(), soft_delete = true })
      local Note = db:model("Note", { msg = quay.string() })
      local Bk = db:model("Bk", {
        au = quay.belongs_to("Au", { related_name = "bks" }),
        hooks = {
          after_save = function(rec)
            Note:create { msg = rec.au and rec.au.name or "no author" }
            if rec.au == nil then error("refused: no live author") end
          end,
        },
      })
      db:create_tables()
      local au = Au:create { name = "x" }
      Bk:create { au = au }
      assert.same({ "x" }, Note:pluck("msg"))
      au:delete()
      local ok, err = pcall(Bk.create, Bk, { au_id = au.id })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("no live author", 1, true))
      assert.same({ "x" }, Note:pluck("msg"))       -- the hook's own write is undone
      assert.equal(1, n(db, "SELECT COUNT(*) AS n FROM bks"))
    end)

    it("update_or_create / get_or_create beside a soft-deleted match make a new row, with created hooks", function()
      local H = db:model("Item", {
        name = quay.string(),
        n = quay.integer { default = 0 },
        soft_delete = true,
        hooks = {
          before_save = function(rec, creating) log[#log + 1] = { "bs", rec.n, creating } end,
          after_save = function(rec, created) log[#log + 1] = { "as", rec.n, created } end,
        },
      })
      db:create_tables()
      local old = H:create { name = "a", n = 1 }
      old:delete()
      log = {}
      local rec, created = H:update_or_create({ name = "a" }, { n = 2 })
      assert.is_true(created)
      assert.is_true(rec.id ~= old.id)
      assert.same({ { "bs", 2, true }, { "as", 2, true } }, log)
      assert.equal(1, n(db, "SELECT n FROM items WHERE id = ?", { old.id }))
      log = {}
      local r2, c2 = H:get_or_create { name = "a" }
      assert.is_false(c2)
      assert.equal(rec, r2)
      assert.same({}, log)
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM items"))
    end)

    it("a failed bulk_update puts every record back as before the call, as save does", function()
      local I = db:model("Item", {
        n = quay.integer { max = 10 },
        stamp = quay.string { null = true },
        hooks = { before_save = function(rec) rec.stamp = "s" .. tostring(rec.n) end },
      })
      db:create_tables()
      local a, b = I:create { n = 1 }, I:create { n = 2 }
      a.n = 50
      helper.raises("validation", a.save, a)
      assert.equal("s1", a.stamp)                  -- save: the hook's change is undone
      a.n, b.n = 5, 50
      local err = helper.raises("validation", I.bulk_update, I, { a, b }, { "n" })
      assert.equal("n", err.field)
      assert.same({ "s1", "s2" }, { a.stamp, b.stamp })
      assert.same({ 5, 50 }, { a.n, b.n })         -- the caller's changes stay, for a retry
      assert.same({ "n" }, a:changed())
      assert.same({ "s1", "s2" }, I:order_by("id"):pluck("stamp"))
      b.n = 6
      assert.equal(2, I:bulk_update({ a, b }, { "n", "stamp" }))
      assert.same({ "s5", "s6" }, I:order_by("id"):pluck("stamp"))
      assert.same({ 5, 6 }, I:order_by("id"):pluck("n"))
    end)

    it("many_to_many writes of a hooked through model: add runs no save hook, remove runs delete hooks", function()
      local St = db:model("St", { courses = quay.many_to_many("Co", { through = "En", related_name = "sts" }) })
      local Co = db:model("Co", { title = quay.string() })
      local En = db:model("En", {
        st = quay.belongs_to("St", { on_delete = quay.CASCADE }),
        co = quay.belongs_to("Co", { on_delete = quay.CASCADE }),
        grade = quay.integer { default = 0, min = 0 },
        hooks = {
          before_save = function() log[#log + 1] = "bs" end,
          before_delete = function(rec) log[#log + 1] = "bd " .. rec.co_id end,
          after_delete = function(rec) log[#log + 1] = "ad " .. rec.co_id end,
        },
      })
      db:create_tables()
      local s = St:create {}
      local c1, c2 = Co:create { title = "1" }, Co:create { title = "2" }
      s.courses:add(c1, c2, { grade = 1 })
      assert.same({}, log)
      assert.equal(2, En:count())
      s.courses:remove(c1)
      assert.same({ "bd " .. c1.id, "ad " .. c1.id }, log)
      log = {}
      s.courses:clear()
      assert.same({ "bd " .. c2.id, "ad " .. c2.id }, log)
      local err = helper.raises("validation", function() s.courses:add(c1, { grade = -1 }) end)
      assert.same({ "En", "grade" }, { err.model, err.field })
      assert.equal(0, En:count())
    end)

    it("validation errors name the model and field in every write path", function()
      local V = db:model("V", {
        name = quay.string { unique = true, max = 3 },
        k = quay.integer { default = 0, min = 0 },
      })
      db:create_tables()
      local function check(field, fn, ...)
        local err = helper.raises("validation", fn, ...)
        assert.equal("V", err.model)
        assert.equal(field, err.field)
      end
      check("name", V.create, V, { name = "long" })
      check("k", V.create, V, { name = "a", k = -1 })
      check("name", V.bulk_create, V, { { name = "a" }, { name = "toolong" } })
      check("k", V.upsert, V, { { name = "a", k = -2 } }, { conflict = { "name" } })
      check("k", V.update_or_create, V, { name = "a" }, { k = -3 })
      check("name", V.get_or_create, V, { name = "abcd" })
      V:create { name = "a" }
      check("k", function() return V:query():update { k = -4 } end)
      local r = V:first(); r.k = -5
      check("k", r.save, r)
      check("k", V.bulk_update, V, { r }, { "k" })
      assert.equal(0, db:rows("SELECT k FROM vs")[1].k)
      -- through values of a many_to_many add, and a reverse set's create
      local W = db:model("W", {
        vs = quay.many_to_many("V", { through = "WV", related_name = "ws" }),
      })
      db:model("WV", {
        w = quay.belongs_to("W", { on_delete = quay.CASCADE }),
        v = quay.belongs_to("V", { on_delete = quay.CASCADE }),
        rank = quay.integer { min = 1 },
      })
      local Z = db:model("Z", { v = quay.belongs_to("V", { related_name = "zs" }), k = quay.integer { max = 3 } })
      db:create_tables()
      local w = W:create {}
      local err = helper.raises("validation", function() w.vs:add(V:first(), { rank = 0 }) end)
      assert.equal("WV", err.model)
      assert.equal("rank", err.field)
      err = helper.raises("validation", function() V:first().zs:create { k = 4 } end)
      assert.equal("Z", err.model)
      assert.equal("k", err.field)
      assert.equal(0, n(db, "SELECT COUNT(*) AS n FROM wvs") + n(db, "SELECT COUNT(*) AS n FROM zs"))
    end)

    it("a model validate may read a relation, which sees soft delete", function()
      local Author = db:model("Author", { name = quay.string(), soft_delete = true })
      local Book = db:model("Book", {
        author = quay.belongs_to("Author", { related_name = "books" }),
        title = quay.string(),
        validate = function(rec)
          if rec.author == nil then return false, "the author is gone" end
          if rec.author.books:count() >= 2 and rec.id == nil then return false, "too many books" end
          return true
        end,
      })
      db:create_tables()
      local a = Author:create { name = "a" }
      Book:create { author = a, title = "1" }
      Book:create { author = a, title = "2" }
      local err = helper.raises("validation", Book.create, Book, { author = a, title = "3" })
      assert.equal("Book", err.model)
      assert.is_nil(err.field)
      helper.mentions(err, "too many books")
      local b2 = Author:create { name = "b" }
      err = helper.raises("validation", Book.bulk_create, Book,
        { { author = b2, title = "5" }, { author = b2, title = "6" }, { author = a, title = "7" } })
      helper.mentions(err, "too many books")
      assert.equal(0, b2.books:count())           -- the whole call is undone
      a:delete()
      err = helper.raises("validation", Book.create, Book, { author_id = a.id, title = "4" })
      helper.mentions(err, "the author is gone")
      err = helper.raises("validation", Book.upsert, Book, { { id = 1, author_id = a.id, title = "1b" } },
        { conflict = { "id" } })
      helper.mentions(err, "the author is gone")
      assert.equal(2, n(db, "SELECT COUNT(*) AS n FROM books"))
      assert.equal("1", db:rows("SELECT title FROM books WHERE id = 1")[1].title)
    end)
  end)
end)
