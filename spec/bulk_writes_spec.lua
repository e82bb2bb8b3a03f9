-- docs/reference.md "Writes done right": upsert, bulk_update and
-- many-to-many writes of many records (issue 13).
local helper = require("spec.helper")
local quay = helper.quay

local function statements(db, fn)
  local list = {}
  db:on_query(function(sql) list[#list + 1] = sql end)
  local ok, err = pcall(fn)
  db:on_query(nil)
  if not ok then error(err, 0) end
  return list
end

-- Statements other than BEGIN / COMMIT / SAVEPOINT / RELEASE.
local function work(list)
  local n = 0
  for _, sql in ipairs(list) do
    if not (sql:match("^BEGIN") or sql:match("^COMMIT") or sql:match("^SAVEPOINT")
            or sql:match("^RELEASE")) then
      n = n + 1
    end
  end
  return n
end

describe("upsert", function()
  local db, User, Member, Stamp
  before_each(function()
    db = helper.open()
    User = db:model("User", {
      email = quay.string { unique = true },
      name = quay.string(),
      visits = quay.integer { default = 0 },
      note = quay.text { null = true },
    })
    Member = db:model("Member", {
      club = quay.string(), person = quay.string(), role = quay.string { default = "m" },
      unique_together = { { "club", "person" } },
    })
    Stamp = db:model("Stamp", {
      code = quay.string { unique = true },
      n = quay.integer { default = 0 },
      created = quay.datetime { auto_now_add = true },
      updated = quay.datetime { auto_now = true },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("inserts or updates on a unique field and returns stored records", function()
    local ann = User:create { email = "ann@x", name = "Ann", visits = 7 }
    local recs = User:upsert({ { email = "ann@x", name = "Ann B" }, { email = "cy@x", name = "Cy" } },
                             { conflict = { "email" }, update = { "name" } })
    assert.equal(2, #recs)
    assert.equal(ann, recs[1])
    assert.equal(ann.id, recs[1].id)
    assert.equal(7, recs[1].visits)             -- the stored row, not the input
    assert.equal("Ann B", recs[1].name)
    assert.is_number(recs[2].id)
    assert.equal(0, recs[2].visits)
    assert.equal(2, User:count())
    assert.equal("Ann B", User:find(ann.id).name)
    assert.same({}, recs[1]:changed())
    recs[2].name = "Cyril"
    recs[2]:save()
    assert.equal("Cyril", User:find(recs[2].id).name)
  end)

  it("updates, by default, every non-conflict field each row gives", function()
    User:create { email = "a@x", name = "A", visits = 3, note = "keep" }
    User:upsert({ { email = "a@x", name = "A2" }, { email = "b@x", name = "B", note = "n" } },
                { conflict = { "email" } })
    local a = User:get { email = "a@x" }
    assert.equal("A2", a.name)
    assert.equal(3, a.visits)                   -- not given: kept
    assert.equal("keep", a.note)
    assert.equal("n", User:get { email = "b@x" }.note)
    -- an empty update list leaves existing rows as they are
    User:upsert({ { email = "a@x", name = "A3" } }, { conflict = { "email" }, update = {} })
    assert.equal("A2", User:get { email = "a@x" }.name)
  end)

  it("works on a unique_together set and on the primary key", function()
    Member:create { club = "c", person = "p", role = "chair" }
    local r = Member:upsert({ { person = "p", club = "c", role = "treasurer" }, { club = "c", person = "q" } },
                            { conflict = { "person", "club" } })
    assert.equal("treasurer", r[1].role)
    assert.equal("m", r[2].role)
    assert.equal(2, Member:count())
    local u = User:create { email = "u@x", name = "U" }
    local byid = User:upsert({ { id = u.id, email = "u@x", name = "U2" }, { email = "v@x", name = "V" } },
                             { conflict = { "id" } })
    assert.equal(u.id, byid[1].id)
    assert.equal("U2", User:find(u.id).name)
    assert.is_number(byid[2].id)
    assert.equal(2, User:count())
  end)

  it("takes the last of several rows with one key, in batched statements", function()
    local rows = {}
    for i = 1, 300 do rows[i] = { email = "e" .. (i % 100) .. "@x", name = "n" .. i } end
    local sent = statements(db, function()
      local recs = User:upsert(rows, { conflict = { "email" } })
      assert.equal(300, #recs)
      assert.equal(recs[1].id, recs[101].id)
    end)
    assert.equal(100, User:count())
    assert.equal("n300", User:get { email = "e0@x" }.name)
    assert.equal("n201", User:get { email = "e1@x" }.name)
    assert.is_true(work(sent) <= 3, "statements: " .. work(sent))
    local many = {}
    for i = 1, 1200 do many[i] = { email = "m" .. i .. "@x", name = "m" } end
    sent = statements(db, function() User:upsert(many, { conflict = { "email" } }) end)
    assert.is_true(work(sent) <= 3, "statements: " .. work(sent))
    assert.equal(1300, User:count())
  end)

  it("fills auto_now_add on insert only and auto_now on every write", function()
    local old = "2000-01-01 00:00:00"
    Stamp:create { code = "a" }
    db:execute("UPDATE stamps SET created = ?, updated = ?", { old, old })
    local r = Stamp:upsert({ { code = "a", n = 1 }, { code = "b" } }, { conflict = { "code" } })
    assert.equal(old, r[1].created)
    assert.is_true(r[1].updated > old)
    assert.is_true(r[2].created > old)
    assert.equal(old, Stamp:get { code = "a" }.created)
    assert.equal(1, Stamp:get { code = "a" }.n)
  end)

  it("refuses conflict fields that are not a unique key, before any SQL", function()
    local n = helper.queries(db, function()
      local err = helper.raises("misuse", User.upsert, User, { { email = "d@x", name = "D" } },
                                { conflict = { "name" } })
      helper.mentions(err, "User", "name", "unique")
      helper.raises("misuse", Member.upsert, Member, { { club = "c", person = "p" } },
                    { conflict = { "club" } })
      helper.raises("misuse", User.upsert, User, { { email = "d@x", name = "D" } },
                    { conflict = { "email", "name" } })
    end)
    assert.equal(0, n)
    assert.equal(0, User:count())
  end)

  it("refuses bad arguments and options", function()
    local row = { { email = "d@x", name = "D" } }
    helper.raises("misuse", User.upsert, User, row)
    helper.raises("misuse", User.upsert, User, row, {})
    helper.raises("misuse", User.upsert, User, row, { conflict = "email" })
    helper.raises("misuse", User.upsert, User, row, { conflict = {} })
    helper.raises("misuse", User.upsert, User, row, { conflict = { "email" }, updates = { "name" } })
    helper.raises("misuse", User.upsert, User, row, { conflict = { "email" }, update = { "email" } })
    helper.raises("misuse", User.upsert, User, row, { conflict = { "email" }, update = { "id" } })
    helper.raises("misuse", User.upsert, User, row, { conflict = { "email" } }, "extra")
    helper.raises("misuse", User.upsert, User, "rows", { conflict = { "email" } })
    local err = helper.raises("unknown_field", User.upsert, User, row, { conflict = { "mail" } })
    helper.mentions(err, "mail")
    helper.raises("unknown_field", User.upsert, User, row, { conflict = { "email" }, update = { "nam" } })
    helper.raises("unknown_field", User.upsert, User, { { email = "d@x", nme = "D" } },
                  { conflict = { "email" } })
    helper.raises("validation", User.upsert, User, { { email = "d@x", name = 5 } },
                  { conflict = { "email" } })
    helper.raises("validation", User.upsert, User, { 5 }, { conflict = { "email" } })
    local u = User:create { email = "u@x", name = "U" }
    helper.raises("misuse", User.upsert, User, { u }, { conflict = { "email" } })
    assert.equal(1, User:count())
    assert.same({}, User:upsert({}, { conflict = { "email" } }))
  end)

  it("is all or nothing", function()
    User:create { email = "a@x", name = "A" }
    local rows = {}
    for i = 1, 10 do rows[i] = { email = "r" .. i .. "@x", name = "r" } end
    rows[11] = { email = "a@x", name = nil }    -- name is required: fails
    helper.raises("validation", User.upsert, User, rows, { conflict = { "email" } })
    assert.equal(1, User:count())
  end)
end)

describe("bulk_update", function()
  local db, User, Post, Kind
  before_each(function()
    db = helper.open()
    User = db:model("User", { name = quay.string(), handle = quay.string { unique = true, null = true } })
    Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL, related_name = "edited" }),
    })
    Kind = db:model("Kind", {
      n = quay.number { null = true }, b = quay.boolean { null = true },
      d = quay.datetime { null = true }, blob = quay.blob { null = true },
      s = quay.string { null = true },
    })
    Post:query()   -- resolve
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("writes the fields of every record in a few statements", function()
    local ann = User:create { name = "Ann" }
    local bob = User:create { name = "Bob" }
    local posts = {}
    for i = 1, 120 do posts[i] = Post:create { title = "p" .. i, author = ann } end
    for i, p in ipairs(posts) do
      p.views = i * 10
      p.title = "t" .. i
      if i % 2 == 0 then p.editor = bob end
    end
    local n
    local sent = statements(db, function()
      n = Post:bulk_update(posts, { "views", "title", "editor" })
    end)
    assert.equal(120, n)
    assert.is_true(work(sent) <= 2, "statements: " .. work(sent))
    assert.equal(70, Post:get { title = "t7" }.views)
    assert.equal(bob.id, Post:get { title = "t8" }.editor_id)
    assert.is_nil(Post:get { title = "t7" }.editor_id)
    assert.same({}, posts[5]:changed())
    -- fields not named are not written
    posts[1].views = 999
    posts[1].title = "zzz"
    Post:bulk_update({ posts[1] }, { "views" })
    assert.equal("t1", Post:find(posts[1].id).title)
    assert.same({ "title" }, posts[1]:changed())
  end)

  it("stores every type as save does", function()
    local k1 = Kind:create {}
    local k2 = Kind:create { s = "x" }
    k1.n, k1.b, k1.d, k1.blob, k1.s = 2.5, true, "2024-02-29 10:11:12", "\0\1\255bytes", 'q"uo\\te NULL'
    k2.n, k2.b, k2.s = 3, false, quay.null
    assert.equal(2, Kind:bulk_update({ k1, k2 }, { "n", "b", "d", "blob", "s" }))
    local r1, r2 = Kind:find(k1.id), Kind:find(k2.id)
    assert.equal(2.5, r1.n)
    assert.is_true(r1.b)
    assert.equal("2024-02-29 10:11:12", r1.d)
    assert.equal("\0\1\255bytes", r1.blob)
    assert.equal('q"uo\\te NULL', r1.s)
    assert.equal(3, r2.n)
    assert.is_false(r2.b)
    assert.is_nil(r2.s)
    assert.is_nil(r2.d)
  end)

  it("leaves the records' values in their stored form, as save does", function()
    local Price = db:model("Price", {
      amount = quay.decimal { digits = 8, places = 2 }, n = quay.integer(),
      x = quay.number(), at = quay.datetime { null = true },
    })
    db:create_tables()
    local a = Price:create { amount = "1.00", n = 1, x = 1.5 }
    local b = Price:create { amount = "2.00", n = 2, x = 2.5, at = "2024-01-01 00:00:00" }
    a.amount, a.n, a.x, a.at = "1.5", 3.0, 2, "2024-03-01T01:30:00+02:00"
    b.amount, b.at = 7, quay.null
    assert.equal(2, Price:bulk_update({ a, b }, { "amount", "n", "x", "at" }))
    assert.equal("1.50", a.amount)
    assert.equal("integer", math.type(a.n))
    assert.equal("float", math.type(a.x))
    assert.equal("2024-02-29 23:30:00", a.at)
    assert.equal("7.00", b.amount)
    assert.is_nil(b.at)                               -- quay.null is never read
    assert.same({}, a:changed())
    assert.same({}, b:changed())
    local s = Price:find(a.id)
    assert.equal(a.amount, s.amount)
    assert.equal(a.at, s.at)
  end)

  it("takes the last of a record given twice; skips rows that are gone", function()
    local ann = User:create { name = "Ann" }
    local p = Post:create { title = "p", author = ann }
    local q = Post:create { title = "q", author = ann }
    local p2 = Post:find(p.id)
    p.views, p2.views = 1, 2
    Post:filter { id = q.id }:delete()
    q.views = 5
    assert.equal(1, Post:bulk_update({ p, q, p2 }, { "views" }))
    assert.equal(2, Post:find(p.id).views)
    assert.equal(0, Post:bulk_update({}, { "views" }))
  end)

  it("validates everything before sending anything", function()
    local ann = User:create { name = "Ann" }
    local p = Post:create { title = "p", author = ann }
    local q = Post:create { title = "q", author = ann }
    p.views, q.views = 5, "many"
    local n = helper.queries(db, function()
      local err = helper.raises("validation", Post.bulk_update, Post, { p, q }, { "views" })
      helper.mentions(err, "Post.views")
      helper.raises("validation", Post.bulk_update, Post, { p, ann }, { "views" })
      helper.raises("validation", Post.bulk_update, Post, { p, Post:new { title = "n" } }, { "views" })
      helper.raises("validation", Post.bulk_update, Post, { p, 5 }, { "views" })
      q.views = 1
      q.title = quay.null
      helper.raises("validation", Post.bulk_update, Post, { q }, { "title" })
      helper.raises("unknown_field", Post.bulk_update, Post, { p }, { "viewz" })
      helper.raises("misuse", Post.bulk_update, Post, { p }, { "id" })
      helper.raises("misuse", Post.bulk_update, Post, { p }, {})
      helper.raises("misuse", Post.bulk_update, Post, { p }, "views")
      helper.raises("misuse", Post.bulk_update, Post, { p }, { "views", "views" })
      helper.raises("misuse", Post.bulk_update, Post, p, { "views" })
      helper.raises("misuse", Post.bulk_update, Post, { p }, { "views" }, {})
      helper.raises("misuse", User.bulk_update, User, { ann }, { "posts" })
    end)
    assert.equal(0, n)
    assert.equal(0, Post:find(p.id).views)
  end)

  it("qs:update takes relation names with a record or a key", function()
    local ann = User:create { name = "Ann" }
    local bob = User:create { name = "Bob" }
    for i = 1, 3 do Post:create { title = "p" .. i, author = ann } end
    assert.equal(3, Post:filter { author = ann }:update { editor = bob })
    assert.equal(3, Post:filter { editor = bob }:count())
    assert.equal(2, Post:filter { title__in = { "p1", "p2" } }:update { editor = ann.id })
    assert.equal(2, Post:filter { editor = ann }:count())
    assert.equal(3, Post:query():update { editor = quay.null, author = bob })
    assert.equal(0, Post:filter { editor__isnull = false }:count())
    assert.equal(3, bob.posts:count())
    helper.raises("validation", function() return Post:query():update { editor = Post:first() } end)
  end)

  it("refuses a key other rows refer to (use save or qs:update)", function()
    local Ref = db:model("Ref", { who = quay.belongs_to("User", { to_field = "handle",
      null = true, on_delete = quay.SET_NULL }) })
    db:create_tables()
    local u = User:create { name = "u", handle = "h" }
    Ref:create { who = u }
    u.handle = "h2"
    helper.raises("misuse", User.bulk_update, User, { u }, { "handle" })
    u:save()
    assert.equal("h2", Ref:first().who_id)
  end)
end)

describe("Many-to-many writes of many records", function()
  local db, Post, Tag, Course, Student, Enrolment
  before_each(function()
    db = helper.open()
    Tag = db:model("Tag", { name = quay.string { unique = true } })
    Post = db:model("Post", { title = quay.string(),
                              tags = quay.many_to_many("Tag", { related_name = "posts" }) })
    Student = db:model("Student", { name = quay.string() })
    Course = db:model("Course", { title = quay.string(),
      students = quay.many_to_many("Student", { through = "Enrolment", related_name = "courses" }) })
    Enrolment = db:model("Enrolment", {
      course = quay.belongs_to("Course", { on_delete = quay.CASCADE }),
      student = quay.belongs_to("Student", { on_delete = quay.CASCADE }),
      grade = quay.string { default = "none" },
      joined = quay.datetime { auto_now_add = true },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("add and set take the same statements for 2 and 200 records", function()
    local tags = {}
    for i = 1, 200 do tags[i] = { name = "t" .. i } end
    tags = Tag:bulk_create(tags)
    local a, b, c, d = Post:create { title = "a" }, Post:create { title = "b" },
                       Post:create { title = "c" }, Post:create { title = "d" }
    local few = #statements(db, function() a.tags:add(tags[1], tags[2]) end)
    local many = #statements(db, function() b.tags:add(tags) end)
    assert.equal(few, many)
    assert.equal(1, many)
    assert.equal(200, b.tags:count())
    -- lists and records mixed, repeats and links that exist already
    b.tags:add(tags[1], { tags[2], tags[2] }, tags)
    assert.equal(200, b.tags:count())
    local some = { table.unpack(tags, 1, 20) }
    few = #statements(db, function() c.tags:set(some) end)
    many = #statements(db, function() d.tags:set(tags) end)
    assert.equal(few, many)
    assert.equal(200, d.tags:count())
    d.tags:set(some)
    assert.equal(20, d.tags:count())
    d.tags:remove({ tags[1], tags[2] })
    assert.equal(18, d.tags:count())
    d.tags:set({})
    assert.equal(0, d.tags:count())
    tags[3].posts:add({ a, b, c })                 -- the reverse side
    assert.equal(3, tags[3].posts:count())
    assert.equal(1, Post:filter { title = "a", tags__name = "t3" }:count())
  end)

  it("adds through a through model with its values, in one statement", function()
    local c = Course:create { title = "C" }
    local s = {}
    for i = 1, 50 do s[i] = Student:create { name = "s" .. i } end
    local sent = statements(db, function() c.students:add(s, { grade = "A" }) end)
    assert.equal(1, #sent)
    assert.equal(50, Enrolment:filter { grade = "A" }:count())
    assert.is_string(Enrolment:first().joined)
    c.students:add(s[1], { grade = "B" })         -- already there: unchanged
    assert.equal(50, Enrolment:filter { grade = "A" }:count())
    c.students:set({ s[1], s[2], Student:create { name = "new" } }, { grade = "C" })
    assert.equal(3, c.students:count())
    assert.equal(2, Enrolment:filter { grade = "A" }:count())
    assert.equal(1, Enrolment:filter { grade = "C" }:count())
    helper.raises("validation", function() c.students:add(s[3], { grade = 5 }) end)
    helper.raises("unknown_field", function() c.students:add(s[3], { grad = "x" }) end)
    assert.equal(3, c.students:count())
  end)

  it("refuses what is not a record or a list of records", function()
    local p = Post:create { title = "p" }
    local t = Tag:create { name = "t" }
    helper.raises("misuse", function() p.tags:add(5) end)
    helper.raises("misuse", function() p.tags:add({ t, 5 }) end)
    helper.raises("misuse", function() p.tags:add("t") end)
    helper.raises("misuse", function() p.tags:remove({ x = 1 }) end)
    helper.raises("misuse", function() p.tags:set(t) end)
    helper.raises("misuse", function() p.tags:set({ t }, { grade = "x" }) end)
    helper.raises("misuse", function() p.tags:clear(t) end)
    helper.raises("validation", function() p.tags:add(p) end)
    helper.raises("validation", function() p.tags:add(Tag:new { name = "unsaved" }) end)
    assert.equal(0, p.tags:count())
    -- contains takes one record: anything else is misuse too, loaded or not
    p.tags:add(t)
    for _, loaded in ipairs({ false, true }) do
      local set = Post:find(p.id).tags
      if loaded then assert.equal(1, #set) end
      local err = helper.raises("misuse", function() return set:contains(nil) end)
      helper.mentions(err, "Post", "tags", "contains", "Tag")
      helper.raises("misuse", function() return set:contains(t.id) end)
      helper.raises("misuse", function() return set:contains() end)
      helper.raises("misuse", function() return set:contains(t, t) end)
      helper.raises("validation", function() return set:contains(p) end)
      assert.is_true(set:contains(t))
    end
  end)

  it("remove of no record, or of an empty list, removes nothing (as add of none adds nothing)", function()
    local p = Post:create { title = "p" }
    local a, b = Tag:create { name = "a" }, Tag:create { name = "b" }
    p.tags:add(a, b)
    local c = Course:create { title = "c" }
    local s = Student:create { name = "s" }
    c.students:add(s)
    for _, set in ipairs({ p.tags, a.posts, c.students, s.courses }) do
      set:remove()
      set:remove({})
      set:add()
    end
    assert.same({ "a", "b" }, Post:find(p.id).tags:order_by("name"):pluck("name"))
    assert.equal(1, #Tag:find(a.id).posts)
    assert.equal(1, Enrolment:count())
    assert.equal(1, #Student:find(s.id).courses)
  end)
end)
