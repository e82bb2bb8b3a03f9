-- docs/reference.md "Declaring models", "Fields" and "Schema"
local helper = require("spec.helper")
local quay = helper.quay

describe("Declaring models", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("declares every field type with its options", function()
    local Thing = db:model("Thing", {
      table = "things",
      description = "a thing",
      a = quay.integer { null = true, index = true, description = "an int" },
      b = quay.number { default = 1.5 },
      c = quay.string { max = 10, unique = true },
      d = quay.text { default = "x" },
      e = quay.boolean { default = false },
      f = quay.datetime { null = true },
      g = quay.blob { null = true },
      h = quay.string { column = "h_col", null = true },
    })
    db:create_tables()
    local t = Thing:create { c = "k", g = "\0\1\2" }
    assert.equal(1.5, t.b)
    assert.equal("x", t.d)
    assert.equal(false, t.e)
    assert.equal("\0\1\2", Thing:find(t.id).g)
    local d = db:describe().Thing
    assert.equal("things", d.table)
    assert.equal("a thing", d.description)
    local names = {}
    for i, f in ipairs(d.fields) do names[i] = f.name end
    assert.same({ "id", "a", "b", "c", "d", "e", "f", "g", "h" }, names)
    assert.equal("h_col", d.fields[9].column)
    assert.equal("an int", d.fields[2].description)
    assert.is_true(d.fields[2].null)
    assert.is_true(d.fields[4].unique)
    assert.equal("datetime", d.fields[7].type)
  end)

  it("keeps declaration order, not table order", function()
    local M = db:model("Order", {
      zeta = quay.integer(), alpha = quay.integer(), mid = quay.integer(),
    })
    local d = db:describe().Order
    assert.same({ "id", "zeta", "alpha", "mid" },
      { d.fields[1].name, d.fields[2].name, d.fields[3].name, d.fields[4].name })
    assert.truthy(M)
  end)

  it("derives table names from snake_case model names", function()
    db:model("PostTag", { n = quay.integer() })
    db:model("HTTPRequest", { n = quay.integer() })
    db:model("MR", { n = quay.integer() })
    local d = db:describe()
    assert.equal("post_tags", d.PostTag.table)
    assert.equal("http_requests", d.HTTPRequest.table)
    assert.equal("mrs", d.MR.table)
  end)

  it("adds id unless a primary key is declared", function()
    local Code = db:model("Code", {
      code = quay.string { primary_key = true }, label = quay.string(),
    })
    db:create_tables()
    local d = db:describe().Code
    assert.equal("code", d.fields[1].name)
    assert.is_true(d.fields[1].primary_key)
    assert.equal(2, #d.fields)
    local c = Code:create { code = "A1", label = "first" }
    assert.equal("first", Code:find("A1").label)
    assert.equal(c, Code:find("A1"))
  end)

  it("rejects a key that is neither a field nor an option", function()
    local err = helper.raises("declaration", db.model, db, "Bad",
      { name = quay.string(), colour = "red" })
    helper.mentions(err, "Bad", "colour")
    -- nothing half-declared is left behind
    helper.raises("declaration", db.model, db, "Bad")
    db:model("Bad", { name = quay.string() })
  end)

  it("rejects bad options, duplicate models and bad rules", function()
    helper.raises("declaration", db.model, db, "A", { n = quay.integer { maxx = 3 } })
    db:model("A", { n = quay.integer() })
    helper.raises("declaration", db.model, db, "A", { n = quay.integer() })
    local err = helper.raises("declaration", db.model, db, "B", {
      a = quay.belongs_to("A", { on_delete = quay.SET_NULL }) })
    helper.mentions(err, "B", "a", "SET_NULL")
    helper.raises("declaration", db.model, db, "C", {
      a = quay.belongs_to("A", { on_delete = quay.SET_DEFAULT }) })
    helper.raises("declaration", db.model, db, "D", { n = quay.string { default = 5 } })
    helper.raises("declaration", db.model, db, "E", { save = quay.integer() })
  end)

  it("resolves string references lazily and reports unknown models", function()
    db:model("Post", { author = quay.belongs_to("Writer") })
    local err = helper.raises("declaration", db.check, db)
    helper.mentions(err, "Post", "author", "Writer")
    db:model("Writer", { name = quay.string() })
    db:check()
    db:create_tables()
  end)

  it("supports unique_together", function()
    local M = db:model("Pair", {
      a = quay.integer(), b = quay.integer(),
      unique_together = { { "a", "b" } },
    })
    db:create_tables()
    M:create { a = 1, b = 1 }
    M:create { a = 1, b = 2 }
    helper.raises("integrity", M.create, M, { a = 1, b = 1 })
  end)
end)

describe("Schema", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("create_tables is idempotent and drop_tables drops", function()
    local M = helper.blog(db)
    db:create_tables()
    M.User:create { name = "a", email = "a@x" }
    db:create_tables()
    assert.equal(1, M.User:count())
    db:drop_tables()
    helper.raises("sql", M.User.count, M.User)
    db:create_tables()
    assert.equal(0, M.User:count())
  end)

  it("describe() lists relations with kinds, targets and rules", function()
    helper.blog(db)
    local d = db:describe()
    local function rel(model, name)
      for _, r in ipairs(d[model].relations) do
        if r.name == name then return r end
      end
    end
    local a = rel("Post", "author")
    assert.equal("belongs_to", a.kind)
    assert.equal("User", a.target)
    assert.equal("posts", a.related_name)
    assert.equal("CASCADE", a.on_delete)
    local t = rel("Post", "tags")
    assert.equal("many_to_many", t.kind)
    assert.equal("posts_tags", t.through)
    local r = rel("User", "posts")
    assert.equal("reverse", r.kind)
    assert.equal("Post", r.target)
    assert.equal("one_to_one", rel("Profile", "user").kind)
    assert.equal("reverse", rel("User", "profile").kind)
    -- declared relations come before reverse entries
    assert.equal("author", d.Post.relations[1].name)
  end)

  it("describe() lists the reverse accessors paths know, and no other", function()
    -- has_many / has_one without related_name and skip_reverse register no
    -- accessor on the target (docs/reference.md "Relations"): describe()
    -- does not list one, and a path through it is unknown_field; with a
    -- related_name both know it.
    local User = db:model("User", {
      name = quay.string(),
      notes = quay.has_many("Note", { foreign_key = "user_id" }),
      badge = quay.has_one("Badge", { foreign_key = "user_id" }),
      memos = quay.has_many("Memo", { foreign_key = "user_id", related_name = "owner" }),
    })
    local Note = db:model("Note", { user_id = quay.integer { null = true } })
    db:model("Badge", { user_id = quay.integer { null = true } })
    local Memo = db:model("Memo", { user_id = quay.integer { null = true } })
    db:model("Post", { author = quay.belongs_to("User", { skip_reverse = true }) })
    db:create_tables()
    local ann = User:create { name = "ann" }
    Note:create { user_id = ann.id }
    Memo:create { user_id = ann.id }
    local d = db:describe()
    local function names(model)
      local out = {}
      for _, r in ipairs(d[model].relations) do out[#out + 1] = r.name .. ":" .. r.kind end
      return table.concat(out, ",")
    end
    assert.equal("", names("Note"))
    assert.equal("", names("Badge"))
    assert.equal("author:belongs_to", names("Post"))
    assert.equal("notes:has_many,badge:has_one,memos:has_many", names("User"))
    assert.equal("owner:reverse", names("Memo"))
    -- what describe() lists, paths know; what it does not, they do not
    for model, rels in pairs(d) do
      for _, r in ipairs(rels.relations) do
        local M = ({ User = User, Note = Note, Memo = Memo })[model]
        if M and r.kind == "reverse" then
          assert.is_number(M:filter { [r.name .. "__isnull"] = false }:count())
        end
      end
    end
    assert.equal(1, Memo:filter { owner__name = "ann" }:count())
    local err = helper.raises("unknown_field", function()
      return Note:filter { notes__name = "ann" }:all()
    end)
    helper.mentions(err, "notes")
    helper.raises("unknown_field", function() return User:filter { post_set__id = 1 }:count() end)
  end)
end)

describe("Declaring a model again", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  local function names(t)
    local out = {}
    for _, x in ipairs(t) do out[#out + 1] = x.name end
    table.sort(out)
    return table.concat(out, ",")
  end

  it("replaces a declaration that failed at db:check or first use", function()
    local User = db:model("User", { name = quay.string() })
    local Post = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("Usr", { related_name = "posts" }),     -- typo
      tags = quay.many_to_many("User", { related_name = "tagged" }),
      kids = quay.has_many("User", { foreign_key = "post_id" }),
    })
    local Later = db:model("Later", { post = quay.belongs_to("Post"), n = quay.integer() })
    helper.mentions(helper.raises("declaration", db.check, db), "Post", "author", "Usr")
    helper.raises("declaration", User.count, User)                   -- every call
    helper.raises("declaration", db.create_tables, db)
    -- a successful declaration cannot be repeated...
    helper.raises("declaration", db.model, db, "User", { name = quay.string() })
    -- ...a failed one can, and the new one replaces it, in its place
    local Post2 = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("User", { related_name = "posts" }),
      tags = quay.many_to_many("User", { related_name = "tagged" }),
    })
    db:check()
    db:create_tables()
    local d = db:describe()
    assert.equal("posts,tagged", names(d.User.relations))
    assert.equal(2, #d.User.fields)      -- no post_id from the failed has_many
    assert.equal("author,later_set,tags", names(d.Post.relations))
    local u = User:create { name = "Ann" }
    local p = Post2:create { title = "t", author = u }
    p.tags:add(u)
    Later:create { post = p, n = 1 }
    assert.equal(1, #u.posts)
    assert.equal(1, #u.tagged)
    assert.equal(1, Later:filter { post__author = u }:count())
    -- the replaced Model object says so
    helper.raises("declaration", Post.count, Post)
    -- and the new one is a successful declaration now
    helper.raises("declaration", db.model, db, "Post", { title = quay.string() })
  end)

  it("replaces a declaration whose failure showed at first use", function()
    local B = db:model("B", { n = quay.integer() })
    local A = db:model("A", { b = quay.belongs_to("B", { related_name = "n" }) })
    helper.mentions(helper.raises("declaration", A.count, A), "n")   -- clashes
    helper.raises("declaration", B.count, B)
    A = db:model("A", { b = quay.belongs_to("B", { null = true }), n = quay.integer() })
    db:create_tables()
    A:create { n = 1, b = B:create { n = 2 } }
    assert.equal(1, A:filter { b__n = 2 }:count())
    assert.equal(1, #B:first().a_set)
  end)

  it("fixes a failure by declaring the missing model too", function()
    local A = db:model("A", { b = quay.belongs_to("B") })
    helper.raises("declaration", db.check, db)
    local B = db:model("B", { n = quay.integer() })
    db:create_tables()
    A:create { b = B:create { n = 1 } }
    assert.equal(1, A:count())
    helper.raises("declaration", db.model, db, "A", {})              -- now a success
  end)

  it("survives a second failure, in db:model, of the new declaration", function()
    db:model("Base", { n = quay.integer() })
    db:model("Bad", { base = quay.belongs_to("Nope") })
    db:model("After", { n = quay.integer() })
    helper.raises("declaration", db.check, db)
    -- the engine refuses this one after taking the failed one's place
    helper.raises("declaration", db.model, db, "Bad",
      { base = quay.belongs_to("Base"), s = quay.integer { auto_now = true } })
    db:check()                                                       -- Bad is gone
    assert.is_nil(db:describe().Bad)
    local Bad = db:model("Bad", { base = quay.belongs_to("Base") })
    db:create_tables()
    assert.equal(0, Bad:count())
    assert.same({ "After", "Bad", "Base" }, (function()
      local t = {}
      for k in pairs(db:describe()) do t[#t + 1] = k end
      table.sort(t)
      return t
    end)())
  end)

  it("raises connection on a closed db before a declaration error", function()
    local A = db:model("A", { b = quay.belongs_to("Nope") })
    db:close()
    helper.mentions(helper.raises("connection", A.count, A), "closed")
    helper.mentions(helper.raises("connection", db.check, db), "closed")
    helper.raises("connection", db.describe, db)
    helper.raises("connection", db.model, db, "C", { n = quay.integer() })
    helper.raises("connection", function() return A:filter { b = 1 } end)
  end)
end)

describe("Declaration tables", function()
  it("get no keys a name can reach (Quay's keep-alive keys are hidden)", function()
    local db = helper.open()
    local opts = { default = "x", max = 10 }
    local title = quay.string(opts)
    local author = quay.belongs_to("User", { null = true, default = 1 })
    local data = quay.json { null = true, default = { a = 1 } }
    db:model("User", { name = quay.string() })
    db:model("Post", { title = title, author = author, data = data })
    db:create_tables()
    local function string_keys(t, seen)
      seen = seen or {}
      if seen[t] then return {} end
      seen[t] = true
      local out = {}
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) == "\1" then out[#out + 1] = k end
        if type(v) == "table" then
          for _, x in ipairs(string_keys(v, seen)) do out[#out + 1] = x end
        end
      end
      return out
    end
    for _, t in ipairs { opts, title, author, data } do
      assert.same({}, string_keys(t))
    end
    db:close()
  end)
end)
