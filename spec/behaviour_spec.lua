-- Model behaviour (reference.md "Model behaviour"): methods, scopes,
-- validation (validate functions, choices, min, max), hooks and soft
-- delete, on both backends.  Soft-deleted rows are compared with
-- hand-written SQL for every kind of read.
local helper = require("spec.helper")
local quay = helper.quay

-- Statements sent while fn runs, as a list of SQL texts.
local function sent(db, fn)
  local list = {}
  db:on_query(function(sql) list[#list + 1] = sql end)
  local ok, err = pcall(fn)
  db:on_query(nil)
  if not ok then error(err, 0) end
  return list
end

local function count_rows(db, sql, params)
  return db:rows(sql, params)[1].n
end

describe("Model behaviour", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() if db and db:is_open() then db:close() end end)

  describe("methods", function()
    it("become methods of the model's records, loaded or new", function()
      local Post = db:model("Post", {
        title = quay.string(),
        methods = {
          excerpt = function(self, n) return self.title:sub(1, n) end,
          shout = function(self) return self:excerpt(3):upper() end,
        },
      })
      db:create_tables()
      local p = Post:new { title = "hello world" }
      assert.equal("hello", p:excerpt(5))
      p:save()
      local q = Post:first()
      assert.equal("hel", q:excerpt(3))
      assert.equal("HEL", q:shout())
      assert.equal("hel", Post:all()[1]:excerpt(3))
      for rec in Post:query():iter() do assert.equal("he", rec:excerpt(2)) end
    end)

    it("work on records reached through relations and prefetches", function()
      local User = db:model("User", {
        name = quay.string(),
        methods = { greet = function(u) return "hi " .. u.name end },
      })
      local Post = db:model("Post", {
        author = quay.belongs_to("User", { related_name = "posts" }),
        methods = { who = function(p) return p.author:greet() end },
      })
      db:create_tables()
      local u = User:create { name = "ann" }
      Post:create { author = u }
      assert.equal("hi ann", Post:first():who())
      assert.equal("hi ann", Post:select_related("author"):first().author:greet())
      assert.equal("hi ann", User:prefetch_related("posts"):first().posts[1]:who())
    end)

    it("refuse clashes with fields, relations, built-in methods and scopes", function()
      local function refused(spec, ...)
        local err = helper.raises("declaration", db.model, db, "Bad", spec)
        helper.mentions(err, "Bad", ...)
        assert.is_nil(db:describe().Bad)
      end
      local fn = function() end
      db:model("User", { name = quay.string() })
      refused({ title = quay.string(), methods = { title = fn } }, "title", "field")
      refused({ author = quay.belongs_to("User"), methods = { author = fn } }, "author", "relation")
      refused({ author = quay.belongs_to("User"), methods = { author_id = fn } }, "author_id", "field")
      refused({ methods = { save = fn } }, "save", "record method")
      refused({ methods = { delete = fn } }, "delete")
      refused({ methods = { restore = fn } }, "restore")
      refused({ scopes = { filter = fn } }, "filter", "query-set method")
      refused({ scopes = { count = fn } }, "count")
      refused({ scopes = { with_deleted = fn } }, "with_deleted")
      refused({ scopes = { create = fn } }, "create")
      refused({ scopes = { find = fn } }, "find", "model method")
      refused({ scopes = { add = fn } }, "add", "related-set method")
      refused({ scopes = { query = fn } }, "query")
      refused({ methods = { pivot = fn } }, "pivot")
      refused({ methods = { hot = fn }, scopes = { hot = fn } }, "method", "scope", "hot")
      refused({ soft_delete = true, methods = { deleted_at = fn } }, "deleted_at")
      refused({ title = quay.string(), methods = { id = fn } }, "id", "field")
      refused({ title = quay.string(), scopes = { id = fn } }, "id", "field")
      refused({ methods = { x = 1 } }, "x", "function")
      refused({ scopes = { x = "no" } }, "x", "function")
      refused({ methods = { fn } }, "methods")
      refused({ methods = "excerpt" }, "methods")
      db:model("Good", { n = quay.integer(), methods = { m = fn }, scopes = { s = fn } })
      db:check()
    end)

    it("refuse a reverse accessor that takes a method's name, at every use", function()
      local User = db:model("User", { name = quay.string(),
        methods = { posts = function() end } })
      db:model("Post", { author = quay.belongs_to("User", { related_name = "posts" }) })
      local err = helper.raises("declaration", db.check, db)
      helper.mentions(err, "User", "posts")
      helper.raises("declaration", User.count, User)
    end)
  end)

  describe("scopes", function()
    local User, Post, Tag
    before_each(function()
      User = db:model("User", { name = quay.string() })
      Tag = db:model("Tag", { name = quay.string() })
      Post = db:model("Post", {
        title = quay.string(),
        state = quay.string { default = "draft" },
        views = quay.integer { default = 0 },
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
        tags = quay.many_to_many("Tag", { related_name = "posts" }),
        scopes = {
          published = function(qs) return qs:filter { state = "published" } end,
          popular = function(qs, n) return qs:filter { views__gte = n or 10 } end,
          titled = function(qs, prefix) return qs:filter { title__startswith = prefix } end,
        },
      })
      db:create_tables()
      local ann, bob = User:create { name = "ann" }, User:create { name = "bob" }
      local lua = Tag:create { name = "lua" }
      local rows = {
        { "apple", "published", 20, ann }, { "apricot", "draft", 30, ann },
        { "banana", "published", 5, ann }, { "blueberry", "published", 50, bob },
      }
      for _, r in ipairs(rows) do
        local p = Post:create { title = r[1], state = r[2], views = r[3], author = r[4] }
        if r[1]:sub(1, 1) == "a" then p.tags:add(lua) end
      end
    end)

    it("chain from the model, any query set and each other, with arguments", function()
      assert.equal(3, Post:published():count())
      assert.equal(2, Post:published():popular():count())
      assert.equal(2, Post:popular():published():count())
      assert.equal(1, Post:popular(25):published():count())
      assert.equal(1, Post:filter { author__name = "ann" }:published():popular():count())
      assert.equal(1, Post:titled("ap"):published():count())
      assert.equal("apple", Post:order_by("title"):published():titled("a"):first().title)
      assert.equal(3, Post:query():published():count())
      assert.equal(2, Post:exclude { title = "apple" }:published():count())
    end)

    it("chain from related sets, both ways of a many-to-many", function()
      local ann = User:get { name = "ann" }
      assert.equal(2, ann.posts:published():count())
      assert.equal(1, ann.posts:published():popular():count())
      assert.equal("apple", ann.posts:published():popular():all()[1].title)
      local lua = Tag:get { name = "lua" }
      assert.equal(1, lua.posts:published():count())
      assert.equal(1, #lua.posts:published():all())
    end)

    it("work as prefetch, with and where_has query sets", function()
      local users = User:order_by("name"):prefetch_related(
        quay.prefetch("posts", Post:published():popular())):all()
      assert.equal(1, #users[1].posts)
      assert.equal("apple", users[1].posts[1].title)
      assert.equal(1, #users[2].posts)
      users = User:order_by("name"):prefetch_related(
        quay.prefetch("posts", Post:published(), { to = "live" })):all()
      assert.equal(2, #users[1].live)
      local tags = Tag:prefetch_related(quay.prefetch("posts", Post:published())):all()
      assert.equal(1, #tags[1].posts)
      assert.equal(1, User:where_has("posts", function(qs) return qs:published():popular(40) end):count())
    end)

    it("must return a query set of their model", function()
      local M = db:model("M", { n = quay.integer(), scopes = {
        broken = function(qs) end,
        other = function(qs) return Post:query() end,
        raises = function(qs) error({ mine = true }) end,
      } })
      db:create_tables()
      helper.mentions(helper.raises("misuse", M.broken, M), "broken", "M")
      helper.raises("misuse", function() return M:query():other() end)
      local ok, err = pcall(M.raises, M)
      assert.is_false(ok)
      assert.is_true(err.mine)
    end)

    it("are not methods of records, and unknown names still raise", function()
      local err = helper.raises("misuse", function() return Post:nope() end)
      helper.mentions(err, "nope")
      helper.raises("misuse", function() return Post:query():nope() end)
      helper.raises("unknown_field", function() return Post:first():published() end)
    end)
  end)

  describe("validation", function()
    local Post, calls
    before_each(function()
      calls = {}
      Post = db:model("Post", {
        title = quay.string { max = 200, validate = function(v, rec)
          calls[#calls + 1] = { "title", v, rec }
          return #v > 2, "too short"
        end },
        state = quay.string { choices = { "draft", "published" }, default = "draft" },
        views = quay.integer { default = 0, min = 0, max = 1000 },
        score = quay.number { null = true, min = -1.5, max = 1.5 },
        level = quay.integer { null = true, choices = { 1, 2, 3 } },
        note = quay.string { null = true, validate = function(v) return v ~= "bad", "bad note" end },
        validate = function(rec)
          calls[#calls + 1] = { "model", rec }
          if rec.views > 10 and rec.state == "draft" then return false, "a popular draft" end
          return true
        end,
      })
      db:create_tables()
    end)

    local function nothing_written(n)
      assert.equal(n or 0, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))
    end

    it("field validate gets the value and the record; failing raises before any SQL", function()
      local n = #sent(db, function()
        local err = helper.raises("validation", Post.create, Post, { title = "ab" })
        assert.equal("Post", err.model)
        assert.equal("title", err.field)
        helper.mentions(err, "too short", "Post", "title")
      end)
      assert.equal(0, n)
      nothing_written()
      local p = Post:create { title = "abc" }
      assert.equal("abc", calls[#calls - 1][2])
      assert.equal(p, calls[#calls - 1][3])
    end)

    it("model validate sees defaults and reports no field", function()
      local err = helper.raises("validation", Post.create, Post, { title = "abc", views = 11 })
      assert.equal("Post", err.model)
      assert.is_nil(err.field)
      helper.mentions(err, "popular draft")
      nothing_written()
      local p = Post:create { title = "abc" }
      assert.equal(0, calls[#calls][2].views)
      assert.equal(p, calls[#calls][2])
    end)

    it("choices, min and max are checked before SQL, on insert and update", function()
      for _, bad in ipairs {
        { "state", { title = "abc", state = "gone" } },
        { "views", { title = "abc", views = -1 } },
        { "views", { title = "abc", views = 1001, state = "published" } },
        { "score", { title = "abc", score = 1.75 } },
        { "score", { title = "abc", score = -2 } },
        { "level", { title = "abc", level = 4 } },
      } do
        local n = #sent(db, function()
          local err = helper.raises("validation", Post.create, Post, bad[2])
          assert.equal(bad[1], err.field)
          assert.equal("Post", err.model)
          helper.mentions(err, bad[1])
        end)
        assert.equal(0, n)
      end
      nothing_written()
      local p = Post:create { title = "abc", views = 1000, state = "published", score = 1.5, level = 3 }
      p.state = "archived"
      local err = helper.raises("validation", p.save, p)
      assert.equal("state", err.field)
      p:refresh()
      assert.equal("published", p.state)
      p.level = quay.null
      p.score = quay.null
      p:save()
      assert.is_nil(Post:first().level)
    end)

    it("validate functions run on update for the fields written; NULL skips them", function()
      local p = Post:create { title = "abc" }
      p.note = "bad"
      assert.equal("note", helper.raises("validation", p.save, p).field)
      assert.is_nil(Post:first().note)
      p.note = quay.null
      p:save()
      p.title = "x"
      assert.equal("title", helper.raises("validation", p.save, p).field)
      assert.equal("abc", Post:first().title)
    end)

    it("bulk_create checks every row first and writes all or nothing", function()
      local err = helper.raises("validation", Post.bulk_create, Post,
        { { title = "good" }, { title = "also good" }, { title = "no" } })
      assert.equal("title", err.field)
      nothing_written()
      err = helper.raises("validation", Post.bulk_create, Post,
        { { title = "good" }, { title = "also", state = "nope" } })
      assert.equal("state", err.field)
      nothing_written()
      assert.equal(2, #Post:bulk_create { { title = "good" }, { title = "fine" } })
    end)

    it("qs:update checks choices, min and max of literal values, not validate functions", function()
      Post:create { title = "abc" }
      local err = helper.raises("validation", function() return Post:query():update { state = "gone" } end)
      assert.equal("state", err.field)
      err = helper.raises("validation", function() return Post:query():update { views = -3 } end)
      assert.equal("views", err.field)
      assert.equal(1, Post:query():update { title = "x" })     -- validate functions are per record
      -- an expression is computed in SQL: the CHECK constraint refuses it
      helper.raises("integrity", function() return Post:query():update { views = quay.F("views") - 5 } end)
      assert.equal(0, Post:first().views)
    end)

    it("CHECK constraints hold raw SQL to the same rules", function()
      Post:create { title = "abc" }
      helper.raises("integrity", db.execute, db, "UPDATE posts SET views = -5")
      helper.raises("integrity", db.execute, db, "UPDATE posts SET state = 'gone'")
      helper.raises("integrity", db.execute, db, "UPDATE posts SET score = 2.5")
      helper.raises("integrity", db.execute, db, "UPDATE posts SET level = 7")
      db:execute("UPDATE posts SET level = 2, score = NULL")
      assert.equal(2, Post:first().level)
      helper.raises("integrity", db.execute, db,
        "INSERT INTO posts (title, state, views) VALUES ('raw', 'other', 1)")
      assert.same({}, db:schema_diff())
    end)

    it("rules of decimal and date fields, in SQL too", function()
      local Item = db:model("Item", {
        price = quay.decimal { digits = 8, places = 2, min = "0.50", max = 99 },
        day = quay.date { null = true, choices = { "2024-01-01", "2024-12-31" } },
      })
      db:create_tables()
      Item:create { price = "0.50" }
      Item:create { price = 99, day = "2024-12-31" }
      for _, bad in ipairs {
        { "price", { price = "0.49" } }, { "price", { price = "99.01" } },
        { "day", { price = 1, day = "2024-06-01" } },
      } do
        assert.equal(bad[1], helper.raises("validation", Item.create, Item, bad[2]).field)
      end
      assert.equal(2, Item:count())
      assert.same({}, db:schema_diff())
      -- the CHECK holds the stored form (SQLite: scaled integers)
      helper.raises("integrity", function()
        return Item:query():update { price = quay.F("price") + 100 }
      end)
      local f = {}
      for _, x in ipairs(db:describe().Item.fields) do f[x.name] = x end
      assert.equal("0.50", f.price.min)
      assert.equal("99.00", f.price.max)
      assert.same({ "2024-01-01", "2024-12-31" }, f.day.choices)
    end)

    it("a validate function's own error comes back unchanged; other results are misuse", function()
      local marker = setmetatable({}, { __tostring = function() return "marker" end })
      local M = db:model("M", {
        a = quay.string { null = true, validate = function(v)
          if v == "raise" then error(marker) end
          if v == "number" then error(42) end
          if v == "string" then return "not a boolean" end
          if v == "table" then return false, {} end
          return true
        end },
        b = quay.integer { null = true },
        validate = function(rec) if rec.b == 1 then return 1 end end,
      })
      db:create_tables()
      local ok, err = pcall(M.create, M, { a = "raise" })
      assert.is_false(ok)
      assert.equal(marker, err)
      ok, err = pcall(M.create, M, { a = "number" })
      assert.is_false(ok)
      assert.equal(42, err)
      helper.mentions(helper.raises("misuse", M.create, M, { a = "string" }), "M", "a")
      helper.raises("misuse", M.create, M, { a = "table" })
      helper.mentions(helper.raises("misuse", M.create, M, { b = 1 }), "M", "validate")
      assert.equal(0, M:count())
      M:create { a = "ok", b = 2 }                -- nil from validate(rec) passes
      assert.equal(1, M:count())
    end)

    it("declarations of rules are checked", function()
      local function refused(field, ...)
        local err = helper.raises("declaration", db.model, db, "Bad", { f = field })
        helper.mentions(err, "Bad", "f", ...)
      end
      refused(quay.string { choices = {} }, "choices")
      refused(quay.string { choices = "a" }, "choices")
      refused(quay.string { choices = { "a", 1 } }, "choice")
      refused(quay.integer { choices = { 1, 2.5 } }, "choice")
      refused(quay.string { max = 2, choices = { "abc" } }, "choice")
      refused(quay.boolean { choices = { true } }, "choices")
      refused(quay.string { min = 1 }, "min")
      refused(quay.integer { min = 5, max = 1 }, "min")
      refused(quay.integer { min = 0.5 }, "min")
      refused(quay.number { max = "big" }, "max")
      refused(quay.number { max = 0 / 0 }, "max")
      refused(quay.integer { min = 1, default = 0 }, "default")
      refused(quay.string { choices = { "a" }, default = "b" }, "default")
      refused(quay.string { validate = "yes" }, "validate")
      local err = helper.raises("declaration", db.model, db, "Bad", { validate = true })
      helper.mentions(err, "validate")
    end)
  end)

  describe("hooks", function()
    local log, User, Post, Comment
    before_each(function()
      log = {}
      local function hooks(name)
        return {
          before_save = function(rec, creating) log[#log + 1] = { name .. ".before_save", rec, creating } end,
          after_save = function(rec, created) log[#log + 1] = { name .. ".after_save", rec, created } end,
          before_delete = function(rec) log[#log + 1] = { name .. ".before_delete", rec, rec.id } end,
          after_delete = function(rec) log[#log + 1] = { name .. ".after_delete", rec, rec.id } end,
        }
      end
      User = db:model("User", { name = quay.string(), hooks = hooks("User") })
      Post = db:model("Post", {
        title = quay.string(),
        slug = quay.string { null = true },
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
        hooks = hooks("Post"),
      })
      Comment = db:model("Comment", {        -- no hooks
        post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
        body = quay.text(),
      })
      db:create_tables()
    end)

    local function names()
      local t = {}
      for i, e in ipairs(log) do t[i] = e[1] end
      return t
    end

    it("save hooks get the record and whether it is new", function()
      local u = User:create { name = "ann" }
      assert.same({ "User.before_save", "User.after_save" }, names())
      assert.equal(u, log[1][2])
      assert.is_true(log[1][3])
      assert.is_true(log[2][3])
      log = {}
      u.name = "anne"
      u:save()
      assert.same({ "User.before_save", "User.after_save" }, names())
      assert.is_false(log[1][3])
      assert.is_false(log[2][3])
    end)

    it("before_save may change the record before it is checked and written", function()
      local M = db:model("M", {
        title = quay.string(),
        slug = quay.string { validate = function(v) return v:match("^[a-z-]+$") ~= nil, "bad slug" end },
        hooks = { before_save = function(rec) rec.slug = rec.title:lower():gsub(" ", "-") end },
      })
      db:create_tables()
      M:create { title = "Hello World" }
      assert.equal("hello-world", M:first().slug)
      local err = helper.raises("validation", M.create, M, { title = "Hello 2" })
      assert.equal("slug", err.field)
      assert.equal(1, M:count())
    end)

    it("an error in a hook undoes the whole call and comes back unchanged", function()
      local marker = {}
      local M = db:model("M", {
        n = quay.integer(),
        hooks = {
          before_save = function(rec)
            if rec.n == 1 then error(marker) end
          end,
          after_save = function(rec)
            User:create { name = "side effect " .. rec.n }     -- written in the call
            if rec.n == 2 then error("after " .. rec.n, 0) end
            if rec.n == 3 then error(nil) end
            if rec.n == 4 then error(setmetatable({}, { __tostring = function() return "obj" end })) end
          end,
        },
      })
      db:create_tables()
      local ok, err = pcall(M.create, M, { n = 1 })
      assert.is_false(ok)
      assert.equal(marker, err)
      ok, err = pcall(M.create, M, { n = 2 })
      assert.is_false(ok)
      assert.equal("after 2", err)
      ok, err = pcall(M.create, M, { n = 3 })
      assert.is_false(ok)
      assert.is_nil(err)
      ok, err = pcall(M.create, M, { n = 4 })
      assert.is_false(ok)
      assert.equal("obj", tostring(err))
      assert.equal(0, M:count())
      assert.equal(0, User:count())              -- the hooks' own writes are undone too
      M:create { n = 5 }                         -- the db is usable
      assert.equal(1, M:count())
      assert.equal(1, User:count())
    end)

    it("a record whose save a hook undid is as before, so a retry writes it", function()
      local fail = true
      local M = db:model("M", { n = quay.integer(), hooks = {
        after_save = function() if fail then error("not now", 0) end end } })
      db:create_tables()
      local r = M:new { n = 1 }
      assert.is_false(pcall(r.save, r))
      assert.is_nil(r.id)                        -- new again: the insert was undone
      assert.equal(0, M:count())
      fail = false
      r:save()
      assert.equal(1, M:count())
      r.n = 2
      fail = true
      assert.is_false(pcall(r.save, r))
      assert.equal(1, M:first().n)
      assert.same({ "n" }, r:changed())           -- still a change to write
      fail = false
      r:save()
      assert.equal(2, M:first().n)
    end)

    it("inside a transaction, a failing hook undoes only its call", function()
      local M = db:model("M", { n = quay.integer(), hooks = {
        before_save = function(rec) if rec.n < 0 then error("negative", 0) end end } })
      db:create_tables()
      db:transaction(function()
        M:create { n = 1 }
        assert.is_false(pcall(M.create, M, { n = -1 }))
        M:create { n = 2 }
      end)
      assert.equal(2, M:count())
      assert.is_false(pcall(db.transaction, db, function()
        M:create { n = 3 }
        M:create { n = -3 }
      end))
      assert.equal(2, M:count())
    end)

    it("a hook that yields gets a clear error; the call is undone", function()
      local M = db:model("M", { n = quay.integer(), hooks = {
        before_save = function() coroutine.yield("x") end,
        before_delete = function() coroutine.yield("y") end,
      } })
      db:create_tables()
      local co = coroutine.create(function() return M:create { n = 1 } end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      helper.mentions(err, "M", "before_save", "yield")
      ok, err = pcall(M.create, M, { n = 1 })    -- the main thread too
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      assert.equal(0, M:count())
      db:execute("INSERT INTO ms (n) VALUES (7)")
      co = coroutine.create(function() return M:query():delete() end)
      ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      helper.mentions(err, "M", "before_delete")
      assert.equal(1, M:count())
      assert.equal(1, #db:rows("SELECT n FROM ms"))
    end)

    it("delete hooks run for the record and every row a cascade deletes", function()
      local u = User:create { name = "ann" }
      local p1 = Post:create { title = "a", author = u }
      Post:create { title = "b", author = u }
      Comment:create { post = p1, body = "c" }
      log = {}
      local counts = u:delete()
      assert.same({ User = 1, Post = 2, Comment = 1 }, counts)
      assert.same({ "User.before_delete", "Post.before_delete", "Post.before_delete",
                    "Post.after_delete", "Post.after_delete", "User.after_delete" }, names())
      assert.equal(u, log[1][2])                   -- the record itself
      assert.equal(log[2][2], log[4][2])           -- the same table in both calls
      assert.is_table(log[2][2])
      assert.equal("a", log[2][2].title)
      assert.equal(p1.id, log[2][3])
      assert.equal(0, Post:count())
    end)

    it("qs:delete runs delete hooks per row; an error undoes everything", function()
      local u = User:create { name = "ann" }
      for i = 1, 3 do Post:create { title = "t" .. i, author = u } end
      log = {}
      assert.same({ Post = 3 }, Post:query():delete())
      assert.equal(6, #log)
      for i = 1, 3 do Post:create { title = "t" .. i, author = u } end
      local M = db:model("M", { n = quay.integer(),
        author = quay.belongs_to("User", { on_delete = quay.CASCADE }),
        hooks = { after_delete = function(rec) if rec.n == 2 then error({ n = rec.n }) end end } })
      db:create_tables()
      for i = 1, 3 do M:create { n = i, author = u } end
      local ok, err = pcall(u.delete, u)
      assert.is_false(ok)
      assert.equal(2, err.n)
      assert.equal(1, User:count())
      assert.equal(3, Post:count())
      assert.equal(3, M:count())
      ok, err = pcall(function() return M:filter { n__gte = 2 }:delete() end)
      assert.is_false(ok)
      assert.equal(3, M:count())
      assert.same({ M = 1 }, M:filter { n = 1 }:delete())
    end)

    it("delete hooks get every field in its Lua form", function()
      local seen = {}
      local Doc = db:model("Doc", {
        price = quay.decimal { digits = 8, places = 2 },
        data = quay.json { null = true },
        day = quay.date { null = true },
        ref = quay.uuid(),
        flag = quay.boolean { default = false },
        score = quay.number { null = true },
        hooks = {
          before_delete = function(rec) seen[#seen + 1] = rec end,
        },
      })
      db:create_tables()
      for i = 1, 3 do
        Doc:create { price = i + 0.25, data = { n = i, tags = { "a" } }, day = "2024-02-29",
                     flag = i == 2, score = i / 4 }
      end
      assert.same({ Doc = 3 }, Doc:query():delete())
      assert.equal(3, #seen)
      table.sort(seen, function(a, b) return a.id < b.id end)
      assert.equal("2.25", seen[2].price)
      assert.equal(2, seen[2].data.n)
      assert.equal("a", seen[2].data.tags[1])
      assert.equal("2024-02-29", seen[2].day)
      assert.equal(36, #seen[2].ref)
      assert.is_true(seen[2].flag)
      assert.is_false(seen[1].flag)
      assert.equal(0.5, seen[2].score)
    end)

    it("rows of models without delete hooks are not loaded", function()
      local u = User:create { name = "ann" }
      local p = Post:create { title = "a", author = u }
      for i = 1, 3 do Comment:create { post = p, body = "c" .. i } end
      local sql = sent(db, function() u:delete() end)
      local loadsPosts, loadsComments = false, false
      for _, s in ipairs(sql) do
        if s:match('^SELECT "id", "title"') then loadsPosts = true end
        if s:match('^SELECT "id", "post_id", "body"') or s:match('"body" FROM') then loadsComments = true end
      end
      assert.is_true(loadsPosts)
      assert.is_false(loadsComments)
      assert.equal(0, Comment:count())
    end)

    it("dry runs call no hooks", function()
      local u = User:create { name = "ann" }
      Post:create { title = "a", author = u }
      log = {}
      assert.same({ User = 1, Post = 1 }, u:delete { dry_run = true })
      assert.same({}, log)
    end)

    it("bulk_create calls the save hooks per record; qs:update calls none", function()
      local u = User:create { name = "ann" }
      log = {}
      local posts = Post:bulk_create { { title = "a", author = u }, { title = "b", author = u } }
      -- every before_save before the rows are written, every after_save
      -- after (reference.md "What each write runs")
      local seen = {}
      for _, e in ipairs(log) do
        local k = e[2].title
        seen[k] = (seen[k] or "") .. e[1]:match("%.(%a+)_save") .. ","
        assert.is_true(e[3])
      end
      assert.same({ a = "before,after,", b = "before,after,", }, seen)
      assert.equal(4, #log)
      assert.same({ "before", "before", "after", "after" },
        { log[1][1]:match("%.(%a+)_save"), log[2][1]:match("%.(%a+)_save"),
          log[3][1]:match("%.(%a+)_save"), log[4][1]:match("%.(%a+)_save") })
      assert.equal(posts[2], log[#log][2])
      log = {}
      assert.equal(2, Post:query():update { title = "c" })
      assert.same({}, log)
    end)

    it("upsert calls the save hooks with creating nil; bulk_update with false", function()
      local M = db:model("M", {
        email = quay.string { unique = true },
        n = quay.integer { default = 0, validate = function(v) return v < 100, "too big" end },
        hooks = {
          before_save = function(rec, creating) log[#log + 1] = { "before", rec.email, creating } end,
          after_save = function(rec, created) log[#log + 1] = { "after", rec.email, created } end,
        },
      })
      db:create_tables()
      M:create { email = "a" }
      log = {}
      local recs = M:upsert({ { email = "a", n = 1 }, { email = "b", n = 2 } }, { conflict = { "email" } })
      assert.equal(4, #log)
      for _, e in ipairs(log) do assert.is_nil(e[3]) end
      local err = helper.raises("validation", M.upsert, M, { { email = "c", n = 500 } },
        { conflict = { "email" } })
      assert.equal("n", err.field)
      assert.equal(2, M:count())
      log = {}
      recs[1].n, recs[2].n = 10, 20
      assert.equal(2, M:bulk_update(recs, { "n" }))
      assert.equal(4, #log)
      for _, e in ipairs(log) do assert.is_false(e[3]) end
      recs[2].n = 200
      err = helper.raises("validation", M.bulk_update, M, recs, { "n" })
      assert.equal("n", err.field)
      assert.equal(20, M:get { email = "b" }.n)
    end)

    it("save { fields } runs the hooks; what the hook changes outside fields is not written", function()
      local u = User:create { name = "ann" }
      local p = Post:create { title = "t", author = u }
      log = {}
      p.title = "t2"
      p:save { fields = { "title" } }
      assert.same({ "Post.before_save", "Post.after_save" }, names())
      assert.equal("t2", Post:first().title)
    end)

    it("get_or_create and update_or_create run the hooks of the write they make", function()
      local u = User:create { name = "ann" }
      log = {}
      local p, created = Post:get_or_create({ title = "g" }, { author = u })
      assert.is_true(created)
      assert.same({ "Post.before_save", "Post.after_save" }, names())
      log = {}
      Post:get_or_create({ title = "g" }, { author = u })
      assert.same({}, log)
      Post:update_or_create({ title = "g" }, { slug = "s" })
      assert.same({ "Post.before_save", "Post.after_save" }, names())
      assert.is_false(log[1][3])
      assert.equal("s", Post:get { title = "g" }.slug)
      _ = p
    end)

    it("get_or_create whose insert breaks another constraint raises at once, its hooks run once", function()
      -- a new attempt only follows a row another connection inserted
      -- meanwhile (the conditions match one now)
      helper.raises("integrity", Post.get_or_create, Post, { title = "g" }, { author_id = 999999 })
      assert.same({ "Post.before_save" }, names())
      log = {}
      helper.raises("integrity", Post.update_or_create, Post, { title = "g" }, { author_id = 999999 })
      assert.same({ "Post.before_save" }, names())
      assert.equal(0, Post:count())
      -- update_or_create's update of the row it found: no new attempt
      local u = User:create { name = "ann" }
      Post:create { title = "h", author = u }
      log = {}
      helper.raises("integrity", Post.update_or_create, Post, { title = "h" }, { author_id = 999999 })
      assert.same({ "Post.before_save" }, names())
      assert.equal(u.id, Post:get { title = "h" }.author_id)
    end)

    it("get_or_create raises the value a hook raised, even one shaped as an integrity error", function()
      local calls, raised = 0, { code = "integrity", message = "mine" }
      local Tag = db:model("Tag", { name = quay.string(), hooks = {
        before_save = function() calls = calls + 1; if calls == 1 then error(raised, 0) end end,
      } })
      db:create_tables()
      local ok, err = pcall(Tag.get_or_create, Tag, { name = "t" }, {})
      assert.is_false(ok)
      assert.is_true(rawequal(raised, err))
      assert.equal(1, calls)
      assert.equal(0, Tag:count())
    end)

    it("bulk_create and upsert run a row's before_save before checking its values", function()
      local seen = 0
      local Event = db:model("Event", {
        code = quay.string { unique = true },
        on = quay.date(),
        price = quay.decimal { digits = 4, places = 2 },
        hooks = { before_save = function(rec)
          seen = seen + 1
          -- the hook mends what the checks would refuse
          if rec.on == "2024-02-30" then rec.on = "2024-03-01" end
          if rec.price == "123.456" then rec.price = "12.34" end
        end },
      })
      db:create_tables()
      local rs = Event:bulk_create { { code = "a", on = "2024-02-30", price = "1" },
                                     { code = "b", on = "2024-01-01", price = "123.456" } }
      assert.equal(2, seen)
      assert.equal("2024-03-01", rs[1].on)
      assert.equal("12.34", Event:get { code = "b" }.price)
      seen = 0
      Event:upsert({ { code = "a", on = "2024-02-30", price = "123.456" } }, { conflict = { "code" } })
      assert.equal(1, seen)
      assert.equal("12.34", Event:get { code = "a" }.price)
      -- a value no hook mends: refused after its row's before_save
      seen = 0
      helper.raises("validation", Event.bulk_create, Event, { { code = "c", on = "2024-13-01", price = "1" } })
      assert.equal(1, seen)
      assert.equal(2, Event:count())
    end)

    it("upsert of a model with save hooks writes a relation given as quay.null", function()
      local Entry = db:model("Entry", {
        code = quay.string { unique = true },
        editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL, related_name = "edited" }),
        hooks = { before_save = function() end },
      })
      db:create_tables()
      local u = User:create { name = "ed" }
      Entry:create { code = "a", editor = u }
      local rs = Entry:upsert({ { code = "a", editor = quay.null } }, { conflict = { "code" } })
      assert.is_nil(rs[1].editor_id)
      assert.is_nil(Entry:get { code = "a" }.editor_id)
      -- in one call: the row a first item inserted, a second one updates
      rs = Entry:upsert({ { code = "b", editor = u }, { code = "b", editor = quay.null } }, { conflict = { "code" } })
      assert.is_nil(rs[2].editor_id)
      assert.is_nil(Entry:get { code = "b" }.editor_id)
    end)

    it("refuses unknown hooks and hooks that are not functions", function()
      helper.mentions(helper.raises("declaration", db.model, db, "Bad",
        { hooks = { before_create = function() end } }), "before_create")
      helper.mentions(helper.raises("declaration", db.model, db, "Bad",
        { hooks = { after_save = true } }), "after_save")
      helper.raises("declaration", db.model, db, "Bad", { hooks = function() end })
    end)
  end)

  describe("soft delete", function()
    local User, Post, Comment, log
    before_each(function()
      log = {}
      User = db:model("User", { name = quay.string(), soft_delete = true })
      Post = db:model("Post", {
        title = quay.string(),
        views = quay.integer { default = 0 },
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
        soft_delete = true,
        hooks = {
          before_delete = function(rec) log[#log + 1] = { "before", rec.title, rec.deleted_at } end,
          after_delete = function(rec) log[#log + 1] = { "after", rec.title, rec.deleted_at } end,
        },
      })
      Comment = db:model("Comment", {
        post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
        body = quay.text(),
      })
      db:create_tables()
    end)

    local function seed()
      local ann, bob = User:create { name = "ann" }, User:create { name = "bob" }
      local a = Post:create { title = "a", views = 10, author = ann }
      local b = Post:create { title = "b", views = 20, author = ann }
      local c = Post:create { title = "c", views = 30, author = bob }
      Comment:create { post = a, body = "x" }
      Comment:create { post = b, body = "y" }
      return ann, bob, a, b, c
    end

    it("rec:delete marks the row instead of deleting it, with no cascade", function()
      local ann, _, a = seed()
      local before = os.time()
      assert.same({ Post = 1 }, a:delete())
      assert.is_string(a.deleted_at)
      assert.truthy(a.id)                                 -- still a stored record
      local row = db:rows("SELECT deleted_at FROM posts WHERE id = ?", { a.id })[1]
      assert.truthy(row.deleted_at)
      assert.equal(a.deleted_at, tostring(row.deleted_at):sub(1, 19))
      local y, mo, d, h, mi, s = a.deleted_at:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)$")
      local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s }
      local utcNow = os.time(os.date("!*t", before))
      assert.is_true(math.abs(t - utcNow) <= 5)
      assert.equal(2, count_rows(db, "SELECT COUNT(*) AS n FROM comments"))
      assert.equal(3, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))
      assert.same({ { "before", "a" }, { "after", "a", a.deleted_at } }, log)
      assert.equal(1, #ann.posts)
    end)

    it("every read leaves soft-deleted rows out, as hand-written SQL does", function()
      local ann, bob, a, b = seed()
      a:delete()
      bob:delete()
      local live = "deleted_at IS NULL"
      local function sql(q) return count_rows(db, q) end
      -- queries and counts
      assert.equal(sql("SELECT COUNT(*) AS n FROM posts WHERE " .. live), Post:count())
      assert.equal(2, Post:count())
      local titles = Post:order_by("title"):pluck("title")
      assert.equal(2, #titles)
      assert.equal("b", titles[1])
      assert.equal("c", titles[2])
      assert.is_nil(Post:find(a.id))
      assert.is_nil(Post:filter { title = "a" }:first())
      assert.is_false(Post:filter { title = "a" }:exists())
      helper.raises("not_found", function() return Post:get { title = "a" } end)
      assert.equal(1, User:count())
      -- relation access, both ways, lazy and prefetched
      local fresh = User:find(ann.id)
      assert.equal(1, #fresh.posts)
      assert.equal("b", fresh.posts[1].title)
      assert.equal(1, fresh.posts:count())
      local c = Post:get { title = "c" }
      assert.is_nil(c.author)                             -- bob is soft-deleted
      assert.is_nil(Post:select_related("author"):get { title = "c" }.author)
      local users = User:prefetch_related("posts"):all()
      assert.equal(1, #users)
      assert.equal(1, #users[1].posts)
      assert.equal(1, #Post:with("author"):filter { author__name = "ann" }:all())
      -- conditions across relations and where_has
      assert.equal(sql("SELECT COUNT(*) AS n FROM posts p JOIN users u ON u.id = p.author_id WHERE p."
        .. live .. " AND u." .. live .. " AND u.name = 'bob'"), Post:filter { author__name = "bob" }:count())
      assert.equal(sql("SELECT COUNT(*) AS n FROM users u WHERE u." .. live .. " AND EXISTS (SELECT 1 FROM "
        .. "posts p WHERE p.author_id = u.id AND p." .. live .. " AND p.views < 15)"),
        User:where_has("posts", { views__lt = 15 }):count())
      assert.equal(0, User:where_has("posts", { views__lt = 15 }):count())
      assert.equal(1, User:filter { posts__title = "b" }:count())
      assert.equal(0, User:filter { posts__title = "a" }:count())
      -- aggregates and annotations
      assert.equal(sql("SELECT SUM(views) AS n FROM posts WHERE " .. live),
        Post:aggregate { s = quay.sum("views") }.s)
      assert.equal(50, Post:aggregate { s = quay.sum("views") }.s)
      assert.equal(1, User:with_count("posts"):first().posts_count)
      assert.equal(20, User:annotate { v = quay.sum("posts__views") }:first().v)
      -- a comment of a soft-deleted post: its post reads as none
      local x = Comment:filter { body = "x" }:first()
      assert.is_nil(x.post)
      assert.equal(1, Comment:filter { post__views__gte = 0 }:count())
      _ = b
    end)

    it("with_deleted and only_deleted see them, from models, query sets and related sets", function()
      local ann, _, a = seed()
      a:delete()
      assert.equal(3, Post:with_deleted():count())
      assert.equal(1, Post:only_deleted():count())
      assert.equal(a, Post:only_deleted():first())
      assert.equal(2, Post:filter { author__name = "ann" }:with_deleted():count())
      assert.equal(1, Post:filter { views__lt = 15 }:only_deleted():count())
      assert.equal(2, ann.posts:with_deleted():count())
      assert.equal(1, ann.posts:only_deleted():count())
      assert.equal(3, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))
      helper.raises("misuse", function() return Comment:with_deleted() end)
      helper.raises("misuse", function() return Post:with_deleted(true) end)
    end)

    it("qs:delete soft-deletes the live rows of the set", function()
      seed()
      log = {}
      assert.same({ Post = 2 }, Post:filter { author__name = "ann" }:delete())
      assert.equal(4, #log)
      assert.same({}, Post:with_deleted():filter { author__name = "ann" }:delete())
      assert.equal(1, Post:count())
      assert.same({ Post = 1 }, Post:query():delete { dry_run = true })
      assert.equal(1, Post:count())
    end)

    it("restore clears the mark; deleting again changes nothing", function()
      local _, _, a = seed()
      a:delete()
      local mark = a.deleted_at
      log = {}
      assert.same({}, a:delete())                  -- already soft-deleted
      assert.same({}, log)
      assert.equal(mark, tostring(db:rows("SELECT deleted_at FROM posts WHERE id = ?", { a.id })[1].deleted_at):sub(1, 19))
      assert.is_true(a:restore())
      assert.is_nil(a.deleted_at)
      assert.equal(3, Post:count())
      assert.is_false(a:restore())                 -- not soft-deleted
      helper.raises("validation", function() return Post:new { title = "n" }:restore() end)
      local cmt = Comment:first()
      helper.raises("misuse", cmt.restore, cmt)
      helper.raises("misuse", a.restore, a, 1)
      db:execute("DELETE FROM comments")
      db:execute("DELETE FROM posts WHERE id = ?", { a.id })
      helper.raises("not_found", a.restore, a)
    end)

    it("saving a soft-deleted record keeps it soft-deleted", function()
      local _, _, a = seed()
      a:delete()
      a.title = "renamed"
      a:save()
      assert.equal("renamed", Post:with_deleted():filter { id = a.id }:first().title)
      assert.is_nil(Post:find(a.id))
    end)

    it("hard deletes delete for real, with cascades into soft_delete models", function()
      local ann, bob, a = seed()
      a:delete()                                   -- soft first
      log = {}
      assert.same({ User = 1, Post = 2, Comment = 2 }, ann:delete { hard = true })
      assert.is_nil(ann.id)
      assert.equal(1, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))   -- bob's
      assert.equal(0, count_rows(db, "SELECT COUNT(*) AS n FROM comments"))
      assert.equal(4, #log)                        -- the hooks ran for both posts
      assert.same({ Post = 1 }, Post:query():delete { hard = true })
      assert.equal(0, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))
      Post:create { title = "z", author = bob }:delete()
      assert.same({ Post = 1 }, Post:only_deleted():delete { hard = true })
      assert.equal(0, count_rows(db, "SELECT COUNT(*) AS n FROM posts"))
    end)

    it("refuses unknown delete options", function()
      local _, _, a = seed()
      helper.mentions(helper.raises("misuse", a.delete, a, { hardly = true }), "hardly")
      helper.raises("misuse", a.delete, a, { hard = "yes" })
      helper.raises("misuse", function() return Post:query():delete { soft = false } end)
      assert.equal(3, Post:count())
    end)
  end)

  describe("describe()", function()
    it("reports choices, min, max, methods, scopes and soft_delete", function()
      db:model("Post", {
        state = quay.string { choices = { "draft", "published" } },
        views = quay.integer { min = 0, max = 100 },
        score = quay.number { min = 0.5 },
        methods = { b = function() end, a = function() end },
        scopes = { z = function(qs) return qs end, y = function(qs) return qs end },
        soft_delete = true,
      })
      db:model("Plain", { n = quay.integer() })
      local d = db:describe()
      local f = {}
      for _, x in ipairs(d.Post.fields) do f[x.name] = x end
      assert.same({ "draft", "published" }, f.state.choices)
      assert.equal(0, f.views.min)
      assert.equal(100, f.views.max)
      assert.equal(0.5, f.score.min)
      assert.is_nil(f.score.max)
      assert.same({ "a", "b" }, d.Post.methods)
      assert.same({ "y", "z" }, d.Post.scopes)
      assert.is_true(d.Post.soft_delete)
      assert.truthy(f.deleted_at)
      assert.same({}, d.Plain.methods)
      assert.same({}, d.Plain.scopes)
      assert.is_false(d.Plain.soft_delete)
    end)
  end)

  describe("rules in migrations", function()
    local function steps(db2)
      local t = {}
      for _, s in ipairs(db2:schema_diff()) do t[#t + 1] = s.op end
      table.sort(t)
      return t
    end

    it("migrate adds and drops Quay's checks and leaves the schema_diff empty", function()
      local db1 = db
      db1:model("Post", { state = quay.string { default = "a" }, views = quay.integer { default = 0 } })
      db1:create_tables()
      db1:execute("INSERT INTO posts (state, views) VALUES ('a', 5)")
      local url = helper.url
      if not helper.is_pg then return end          -- SQLite: a file below
      local db2 = quay.open(url)
      db2:model("Post", { state = quay.string { default = "a", choices = { "a", "b" } },
                          views = quay.integer { default = 0, min = 0 } })
      assert.same({ "add_constraint", "add_constraint" }, steps(db2))
      db2:migrate()
      assert.same({}, db2:schema_diff())
      helper.raises("integrity", db2.execute, db2, "UPDATE posts SET views = -1")
      db2:close()
      local db3 = quay.open(url)
      db3:model("Post", { state = quay.string { default = "a", choices = { "a", "b", "c" } },
                          views = quay.integer { default = 0 } })
      assert.same({ "add_constraint", "drop_constraint", "drop_constraint" }, steps(db3))
      db3:migrate()
      assert.same({}, db3:schema_diff())
      db3:execute("UPDATE posts SET views = -1, state = 'c'")
      db3:close()
    end)
  end)
end)

describe("Model behaviour: migrations on a SQLite file", function()
  if helper.is_pg then
    it("runs on SQLite only (PostgreSQL is covered above)", function() end)
    return
  end
  it("rebuilds the table to add or drop Quay's checks", function()
    local path = os.tmpname()
    local url = "sqlite:" .. path
    local db1 = quay.open(url)
    db1:model("Post", { state = quay.string { default = "a" }, views = quay.integer { default = 0 } })
    db1:create_tables()
    db1:execute("INSERT INTO posts (state, views) VALUES ('a', 5)")
    db1:close()
    local db2 = quay.open(url)
    db2:model("Post", { state = quay.string { default = "a", choices = { "a", "b" } },
                        views = quay.integer { default = 0, min = 0 } })
    assert.equal(2, #db2:schema_diff())
    db2:migrate()
    assert.same({}, db2:schema_diff())
    helper.raises("integrity", db2.execute, db2, "UPDATE posts SET views = -1")
    assert.equal(5, db2:rows("SELECT views FROM posts")[1].views)
    db2:close()
    local db3 = quay.open(url)
    db3:model("Post", { state = quay.string { default = "a", choices = { "a", "c" } },
                        views = quay.integer { default = 0 } })
    assert.equal(3, #db3:schema_diff())
    db3:migrate()
    assert.same({}, db3:schema_diff())
    db3:execute("UPDATE posts SET views = -1, state = 'c'")
    helper.raises("integrity", db3.execute, db3, "UPDATE posts SET state = 'b'")
    db3:close()
    -- rows the new rule refuses: the migration fails and changes nothing
    local db4 = quay.open(url)
    db4:model("Post", { state = quay.string { default = "a", choices = { "a" } },
                        views = quay.integer { default = 0 } })
    assert.is_false(pcall(db4.migrate, db4))
    assert.equal("c", db4:rows("SELECT state FROM posts")[1].state)
    assert.equal(1, #db4:schema_diff() > 0 and 1 or 0)
    db4:close()
    os.remove(path)
  end)
end)
