-- docs/reference.md "Relations" and "Relation access on a record"
local helper = require("spec.helper")
local quay = helper.quay

describe("Relations", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("declares models in any order, with self references", function()
    local Cat = db:model("Category", {
      name = quay.string(),
      parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                         related_name = "children" }),
    })
    db:create_tables()
    local root = Cat:create { name = "root" }
    local a = Cat:create { name = "a", parent = root }
    Cat:create { name = "b", parent = root }
    assert.equal("root", a.parent.name)
    assert.equal(2, #root.children)
    assert.is_nil(root.parent)
  end)

  it("uses <model_snake>_set as the default reverse name", function()
    local User = db:model("User", { name = quay.string() })
    local BlogPost = db:model("BlogPost", { author = quay.belongs_to("User") })
    db:create_tables()
    local u = User:create { name = "a" }
    BlogPost:create { author = u }
    assert.equal(1, #u.blog_post_set)
  end)

  it("one_to_one works both ways and defaults its reverse to the snake name", function()
    local User = db:model("User", { name = quay.string() })
    local Account = db:model("Account", { user = quay.one_to_one("User") })
    db:create_tables()
    local u = User:create { name = "a" }
    local v = User:create { name = "b" }
    local acc = Account:create { user = u }
    assert.equal(acc, u.account)
    assert.is_nil(v.account)
    assert.equal(u, acc.user)
    helper.raises("integrity", Account.create, Account, { user = u })
  end)

  it("names both sides of a reverse-name collision", function()
    db:model("User", { name = quay.string() })
    db:model("Post", { author = quay.belongs_to("User", { related_name = "things" }) })
    db:model("Note", { owner = quay.belongs_to("User", { related_name = "things" }) })
    local err = helper.raises("declaration", db.check, db)
    helper.mentions(err, "Post.author", "Note.owner", "things")
  end)

  it("skip_reverse registers no accessor but the relation works forward", function()
    local User = db:model("User", { name = quay.string() })
    local Log = db:model("Log", { user = quay.belongs_to("User", { skip_reverse = true,
                                                                  on_delete = quay.CASCADE }) })
    db:create_tables()
    local u = User:create { name = "a" }
    Log:create { user = u }
    assert.equal(u, Log:first().user)
    helper.raises("unknown_field", function() return u.log_set end)
    assert.same({ User = 1, Log = 1 }, u:delete())
  end)

  it("belongs_to options: column, to_field, default", function()
    local User = db:model("User", { email = quay.string { unique = true } })
    local Msg = db:model("Msg", {
      sender = quay.belongs_to("User", { column = "sender_email", to_field = "email",
                                         related_name = "sent" }),
    })
    db:create_tables()
    local u = User:create { email = "a@x" }
    local m = Msg:create { sender = u }
    assert.equal("a@x", m.sender_email)
    assert.equal(u, Msg:first().sender)
    assert.equal(1, #u.sent)
    assert.equal(1, Msg:filter { sender = u }:count())
    assert.equal(1, Msg:filter { sender__email = "a@x" }:count())
    helper.raises("declaration", function()
      db:model("Bad", { u = quay.belongs_to("User", { to_field = "id2" }) })
      db:check()
    end)
  end)

  it("many_to_many: auto join table, add/remove/clear/set/contains", function()
    local Post = db:model("Post", { title = quay.string(),
                                   tags = quay.many_to_many("Tag", { related_name = "posts" }) })
    local Tag = db:model("Tag", { name = quay.string() })
    db:create_tables()
    local p = Post:create { title = "p" }
    local lua, c, go = Tag:create { name = "lua" }, Tag:create { name = "c" },
      Tag:create { name = "go" }
    p.tags:add(lua, c)
    p.tags:add(lua)                          -- existing pair: no-op
    assert.equal(2, #p.tags)
    assert.is_true(p.tags:contains(lua))
    assert.is_false(p.tags:contains(go))
    assert.equal(1, #lua.posts)
    p.tags:remove(lua)
    assert.equal(1, p.tags:count())
    p.tags:set({ go, lua })
    local names = {}
    for _, t in ipairs(p.tags:order_by("name"):all()) do names[#names + 1] = t.name end
    assert.same({ "go", "lua" }, names)
    p.tags:clear()
    assert.equal(0, #p.tags)
    assert.equal(3, Tag:count())
  end)

  it("many_to_many: self relations are one-directional", function()
    local User = db:model("User", { name = quay.string(),
      follows = quay.many_to_many("self", { related_name = "followers" }) })
    db:create_tables()
    local a, b = User:create { name = "a" }, User:create { name = "b" }
    a.follows:add(b)
    assert.equal(1, #a.follows)
    assert.equal(0, #b.follows)
    assert.equal(a, b.followers[1])
    local tbl = db:describe().User.relations[1].through
    assert.equal("users_users", tbl)
    assert.equal(1, #db:rows("SELECT from_user_id, to_user_id FROM users_users"))
  end)

  it("many_to_many with a through model: pivot fields and rec.pivot", function()
    local Post = db:model("Post", { title = quay.string(),
      tags = quay.many_to_many("Tag", { through = "PostTag", related_name = "posts" }) })
    local Tag = db:model("Tag", { name = quay.string() })
    local PostTag = db:model("PostTag", {
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE }),
      tag = quay.belongs_to("Tag", { on_delete = quay.CASCADE }),
      sort_order = quay.integer { default = 0 },
    })
    db:create_tables()
    local p = Post:create { title = "p" }
    local a, b = Tag:create { name = "a" }, Tag:create { name = "b" }
    p.tags:add(a, { sort_order = 2 })
    p.tags:add(b, { sort_order = 1 })
    local ordered = p.tags:order_by("pivot__sort_order"):all()
    assert.equal("b", ordered[1].name)
    assert.equal(1, ordered[1].pivot.sort_order)
    assert.equal(2, p.tags:filter { pivot__sort_order__gt = 1 }:first().pivot.sort_order)
    assert.equal(2, PostTag:count())
    assert.equal(2, #p.tags)
    assert.equal(1, p.tags[1].pivot.sort_order + 0 > 0 and 1 or 0)
  end)

  it("has_many / has_one over a foreign key the child holds", function()
    local Post = db:model("Post", { title = quay.string(),
      media = quay.has_many("Media", { foreign_key = "post_id" }),
      cover = quay.has_one("Cover", { foreign_key = "post_id" }) })
    local Media = db:model("Media", { url = quay.string(), post_id = quay.integer { null = true } })
    local Cover = db:model("Cover", { url = quay.string() })
    db:create_tables()
    local p = Post:create { title = "p" }
    Media:create { url = "a", post_id = p.id }
    Media:create { url = "b", post_id = p.id }
    Cover:create { url = "c", post_id = p.id }
    assert.equal(2, #p.media)
    assert.equal("c", p.cover.url)
    assert.equal(1, Post:filter { media__url = "b" }:count())
    local m = Media:create { url = "x" }
    p.media:add(m)
    assert.equal(3, p.media:count())
  end)

  it("quay.through: has-one-through and has-many-through", function()
    local Country = db:model("Country", { name = quay.string() })
    local Port = db:model("Port", { name = quay.string(), country = quay.belongs_to("Country") })
    local Shipment = db:model("Shipment", { port = quay.belongs_to("Port"),
                                           country = quay.through("port", "country") })
    local Course = db:model("Course", { title = quay.string(),
                                       students = quay.through("enrolments", "student") })
    local Student = db:model("Student", { name = quay.string() })
    db:model("Enrolment", {
      course = quay.belongs_to("Course", { related_name = "enrolments" }),
      student = quay.belongs_to("Student"),
    })
    db:create_tables()
    local fr = Country:create { name = "France" }
    local s = Shipment:create { port = Port:create { name = "Brest", country = fr } }
    assert.equal("France", s.country.name)
    local c = Course:create { title = "C" }
    local x, y = Student:create { name = "x" }, Student:create { name = "y" }
    db.model(db, "Enrolment"):create { course = c, student = x }
    db.model(db, "Enrolment"):create { course = c, student = y }
    assert.equal(2, #c.students)
    assert.equal(1, Course:filter { students__name = "y" }:count())
    helper.raises("validation", function() c.students:add(x) end)
    helper.raises("validation", function() s.country = fr end)
  end)

  it("assigning a record sets the key; nil where nullable", function()
    local User = db:model("User", { name = quay.string() })
    local Post = db:model("Post", { title = quay.string(),
      author = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL }) })
    db:create_tables()
    local a, b = User:create { name = "a" }, User:create { name = "b" }
    local p = Post:create { title = "t", author = a }
    p.author = b
    assert.equal(b.id, p.author_id)
    p:save()
    assert.equal("b", Post:find(p.id).author.name)
    p.author = nil
    assert.is_nil(p.author_id)
    p:save()
    assert.is_nil(Post:find(p.id).author)
    p.author_id = a.id                        -- the column works too
    assert.equal(a, p.author)
    helper.raises("validation", function() p.author = Post:first() end)
  end)
end)

describe("Lazy loading", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local users = {}
    for i = 1, 10 do users[i] = { name = "u" .. i, email = i .. "@x" } end
    users = M.User:bulk_create(users)
    local posts = {}
    for i = 1, 1000 do
      posts[i] = { title = "p" .. i, author = users[(i - 1) % 10 + 1] }
    end
    M.Post:bulk_create(posts)
  end)
  after_each(function() db:close() end)

  it("reads post.author.name for 1,000 posts in exactly 2 queries", function()
    local n = helper.queries(db, function()
      local total = 0
      for _, p in ipairs(M.Post:all()) do total = total + #p.author.name end
      assert.equal(1000 * 2 + 100, total)
    end)
    assert.equal(2, n)
  end)

  it("loads a to-many relation for a whole result in one query", function()
    local n = helper.queries(db, function()
      local total = 0
      for _, u in ipairs(M.User:all()) do total = total + #u.posts end
      assert.equal(1000, total)
    end)
    assert.equal(2, n)
  end)

  it("batches each hop of a chain", function()
    for _, u in ipairs(M.User:all()) do M.Profile:create { user = u, bio = "b" .. u.id } end
    local n = helper.queries(db, function()
      for _, p in ipairs(M.Post:all()) do assert.truthy(p.author.profile.bio) end
    end)
    assert.equal(3, n)
  end)

  it("keeps a loaded value", function()
    local p = M.Post:first()
    local n = helper.queries(db, function()
      assert.equal(p.author, p.author)
      assert.equal(p.author.name, p.author.name)
    end)
    assert.equal(1, n)
  end)

  it("creates through reverse sets and removes where nullable", function()
    local u = M.User:first()
    local p = u.posts:create { title = "new" }
    assert.equal(u.id, p.author_id)
    assert.equal(101, #u.posts)
    local err = helper.raises("validation", function() u.posts:remove(p) end)
    helper.mentions(err, "author")
  end)

  it("a reverse set's create takes its owner again, and refuses another one", function()
    local u, v = M.User:filter { name = "u1" }:first(), M.User:filter { name = "u2" }:first()
    assert.equal(u.id, u.posts:create { title = "same", author = u }.author_id)
    assert.equal(u.id, u.posts:create { title = "same key", author_id = u.id }.author_id)
    local before = M.Post:count()
    for _, vals in ipairs {
      { title = "other", author = v },
      { title = "other key", author_id = v.id },
      { title = "no owner", author = quay.null },
    } do
      local err = helper.raises("misuse", function() return u.posts:create(vals) end)
      helper.mentions(err, "User.posts", "author")
    end
    -- nothing written, and the other user's set is untouched
    assert.equal(before, M.Post:count())
    assert.equal(100, #v.posts)
  end)
end)
