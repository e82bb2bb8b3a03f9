-- Acceptance sweep of the contract's second part, read as an outsider:
-- "Model behaviour", "Schema evolution", "Scale-out on PostgreSQL" and the
-- bullets of "Details the second part fixes" about them (reference.md
-- "Model behaviour", "More field types", "Schema evolution", "Scale-out").
-- One `it` per claim; every spec runs on SQLite and on PostgreSQL.
local helper = require("spec.helper")
local quay = helper.quay

local quay_bin = helper.quay_bin
local shquote, slurp, write = helper.shquote, helper.slurp, helper.write_file
local quay_cmd = helper.quay_cmd

-- Statements sent while fn runs.
local sent = helper.statements

local function nrows(db, tbl)
  return tonumber(db:rows("SELECT COUNT(*) AS n FROM " .. tbl)[1].n)
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- A database URL other specs' handles can open too: a temp SQLite file or
-- the emptied PostgreSQL database.
local shared_url, cleanup_files = helper.shared_url, helper.remove_files

local db
before_each(function() db = helper.open() end)
after_each(function()
  if db and db:is_open() then db:close() end
  cleanup_files()
end)

-- The example model of the contract's "Model behaviour" section.
local function contract_models(opts)
  opts = opts or {}
  local M = {}
  M.User = db:model("User", { name = quay.string { max = 100 } })
  M.Post = db:model("Post", {
    title = quay.string { max = 200, validate = function(v) return #v > 2, "too short" end },
    state = quay.string { choices = { "draft", "published" }, default = "draft" },
    views = quay.integer { default = 0, min = 0 },
    price = quay.decimal { digits = 10, places = 2, null = true },
    placed = quay.date { null = true },
    data = quay.json { null = true },
    ref = quay.uuid { unique = true },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    indexes = { { "author", "placed" } },
    methods = { excerpt = function(self, n) return self.title:sub(1, n) end },
    scopes = {
      published = function(qs) return qs:filter { state = "published" } end,
      titled = function(qs, prefix) return qs:filter { title__startswith = prefix } end,
    },
    validate = function(rec)
      if rec.views > 10 and rec.state == "draft" then return false, "popular draft" end
      return true
    end,
    hooks = opts.hooks,
    soft_delete = opts.soft_delete,
  })
  db:create_tables()
  return M
end

describe("Model behaviour", function()
  it("methods become methods of the model's records", function()
    local M = contract_models()
    local u = M.User:create { name = "ann" }
    local p = M.Post:create { title = "Hello world", author = u }
    assert.equal("Hello worl", p:excerpt(10))
    assert.equal("Hel", M.Post:first():excerpt(3))
    assert.equal("He", u.posts[1]:excerpt(2))
  end)

  it("scopes chain from the model, query sets, related sets and each other", function()
    local M = contract_models()
    local u = M.User:create { name = "ann" }
    local v = M.User:create { name = "bob" }
    M.Post:create { title = "apple", state = "published", author = u }
    M.Post:create { title = "apricot", author = u }
    M.Post:create { title = "banana", state = "published", author = u }
    M.Post:create { title = "avocado", state = "published", author = v }
    assert.equal(3, M.Post:published():count())
    assert.equal(2, M.Post:filter { author = u }:published():count())
    assert.equal(2, u.posts:published():count())
    assert.equal(1, u.posts:published():titled("ap"):count())
    assert.equal(1, M.Post:titled("ap"):published():count())
    assert.equal("apple", u.posts:published():titled("a"):all()[1].title)
  end)

  it("scopes receive the query set first, then the caller's arguments", function()
    local got
    local T = db:model("T", { n = quay.integer(), scopes = {
      s = function(qs, a, b) got = { qs, a, b }; return qs:filter { n__gte = a } end,
    } })
    db:create_tables()
    T:create { n = 1 }; T:create { n = 5 }
    assert.equal(1, T:s(3, "x"):count())
    assert.equal(3, got[2]); assert.equal("x", got[3])
    assert.equal(2, got[1]:count())
  end)

  it("a method or scope that clashes with a field, relation or built-in is declaration naming both", function()
    local fn = function() end
    db:model("User", { name = quay.string() })
    local err = helper.raises("declaration", db.model, db, "A", { title = quay.string(), methods = { title = fn } })
    helper.mentions(err, "A", "title")
    err = helper.raises("declaration", db.model, db, "B", { author = quay.belongs_to("User"), scopes = { author = fn } })
    helper.mentions(err, "B", "author")
    err = helper.raises("declaration", db.model, db, "C", { methods = { save = fn } })
    helper.mentions(err, "C", "save")
    err = helper.raises("declaration", db.model, db, "D", { scopes = { filter = fn } })
    helper.mentions(err, "D", "filter")
    err = helper.raises("declaration", db.model, db, "E", { methods = { x = fn }, scopes = { x = fn } })
    helper.mentions(err, "E", "x")
  end)

  it("field validate(value, rec) and model validate(rec) return true or false, message", function()
    local seen
    local T = db:model("T", {
      a = quay.string { validate = function(v, rec) seen = { v, rec }; return v ~= "bad", "a is bad" end },
      b = quay.integer { default = 0 },
      validate = function(rec) if rec.b < 0 then return false, "b negative" end return true end,
    })
    db:create_tables()
    local t = T:create { a = "ok" }
    assert.equal("ok", seen[1]); assert.equal(t, seen[2])
    local err = helper.raises("validation", T.create, T, { a = "bad" })
    assert.equal("T", err.model); assert.equal("a", err.field)
    helper.mentions(err, "a is bad")
    err = helper.raises("validation", T.create, T, { a = "ok", b = -1 })
    assert.equal("T", err.model); assert.is_nil(err.field)
    helper.mentions(err, "b negative")
    assert.equal(1, nrows(db, "ts"))
    t.a = "bad"
    helper.raises("validation", t.save, t)
    assert.equal("ok", T:first().a)
  end)

  it("choices and min/max are checked before any SQL, carrying model and field", function()
    local M = contract_models()
    local u = M.User:create { name = "ann" }
    for _, bad in ipairs { { "state", { state = "gone" } }, { "views", { views = -1 } } } do
      local vals = { title = "hello", author = u }
      for k, v in pairs(bad[2]) do vals[k] = v end
      local n = #sent(db, function()
        local err = helper.raises("validation", M.Post.create, M.Post, vals)
        assert.equal("Post", err.model); assert.equal(bad[1], err.field)
      end)
      assert.equal(0, n)
    end
    local n = #sent(db, function()
      local err = helper.raises("validation", M.Post.create, M.Post, { title = "hello", author = u, views = 11 })
      assert.equal("Post", err.model); assert.is_nil(err.field)
      helper.mentions(err, "popular draft")
    end)
    assert.equal(0, n)
    assert.equal(0, nrows(db, "posts"))
  end)

  it("choices and min/max are also CHECK constraints: raw SQL breaking them fails", function()
    local T = db:model("T", {
      state = quay.string { choices = { "draft", "published" } },
      n = quay.integer { min = 0, max = 10 },
    })
    db:create_tables()
    T:create { state = "draft", n = 5 }
    helper.raises("integrity", db.execute, db, "INSERT INTO ts (state, n) VALUES ('gone', 1)")
    helper.raises("integrity", db.execute, db, "INSERT INTO ts (state, n) VALUES ('draft', -1)")
    helper.raises("integrity", db.execute, db, "INSERT INTO ts (state, n) VALUES ('draft', 11)")
    db:execute("INSERT INTO ts (state, n) VALUES ('published', 10)")
    assert.equal(2, nrows(db, "ts"))
  end)

  it("save hooks receive the record and the creating / created flags", function()
    local log = {}
    local T = db:model("T", { n = quay.integer(), hooks = {
      before_save = function(rec, creating) log[#log + 1] = { "before", rec, creating } end,
      after_save = function(rec, created) log[#log + 1] = { "after", rec, created } end,
    } })
    db:create_tables()
    local t = T:create { n = 1 }
    assert.equal("before", log[1][1]); assert.is_true(log[1][3])
    assert.equal("after", log[2][1]); assert.is_true(log[2][3]); assert.equal(t, log[2][2])
    assert.is_not_nil(log[2][2].id)
    t.n = 2; t:save()
    assert.equal("before", log[3][1]); assert.is_false(log[3][3])
    assert.equal("after", log[4][1]); assert.is_false(log[4][3])
    local fresh = T:new { n = 3 }; fresh:save()
    assert.is_true(log[5][3]); assert.is_true(log[6][3])
  end)

  it("delete hooks receive the record", function()
    local log = {}
    local T = db:model("T", { n = quay.integer(), hooks = {
      before_delete = function(rec) log[#log + 1] = { "before", rec.n, rec } end,
      after_delete = function(rec) log[#log + 1] = { "after", rec.n, rec } end,
    } })
    db:create_tables()
    local t = T:create { n = 7 }
    t:delete()
    assert.same({ "before", 7 }, { log[1][1], log[1][2] })
    assert.same({ "after", 7 }, { log[2][1], log[2][2] })
    assert.equal(t, log[1][3])
  end)

  it("hooks run inside the write's transaction: an error undoes the whole call and is raised again", function()
    local fail = {}
    local Child
    local T = db:model("T", { n = quay.integer(), hooks = {
      after_save = function(rec)
        Child:create { parent = rec }
        if fail.save then error({ mine = "save" }) end
      end,
      after_delete = function() if fail.delete then error({ mine = "delete" }) end end,
    } })
    Child = db:model("Child", { parent = quay.belongs_to("T", { on_delete = quay.CASCADE }) })
    db:create_tables()
    fail.save = true
    local ok, err = pcall(T.create, T, { n = 1 })
    assert.is_false(ok); assert.equal("save", err.mine)
    assert.equal(0, nrows(db, "ts")); assert.equal(0, nrows(db, "childs"))
    fail.save = false
    local t = T:create { n = 1 }
    assert.equal(1, nrows(db, "childs"))
    fail.delete = true
    ok, err = pcall(t.delete, t)
    assert.is_false(ok); assert.equal("delete", err.mine)
    assert.equal(1, nrows(db, "ts")); assert.equal(1, nrows(db, "childs"))
  end)

  it("delete hooks run for every row a cascade deletes", function()
    local deleted = {}
    local P = db:model("P", { name = quay.string() })
    db:model("C", {
      name = quay.string(),
      p = quay.belongs_to("P", { on_delete = quay.CASCADE, related_name = "cs" }),
      hooks = {
        before_delete = function(rec) deleted[#deleted + 1] = "b:" .. rec.name end,
        after_delete = function(rec) deleted[#deleted + 1] = "a:" .. rec.name end,
      },
    })
    db:create_tables()
    local p = P:create { name = "p" }
    p.cs:create { name = "x" }; p.cs:create { name = "y" }
    local counts = p:delete()
    assert.equal(2, counts.C); assert.equal(1, counts.P)
    table.sort(deleted)
    assert.same({ "a:x", "a:y", "b:x", "b:y" }, deleted)
    deleted = {}
    local q = P:create { name = "q" }
    q.cs:create { name = "z" }
    P:query():delete()
    table.sort(deleted)
    assert.same({ "a:z", "b:z" }, deleted)
  end)

  describe("soft delete", function()
    local User, Post, Comment
    before_each(function()
      User = db:model("User", { name = quay.string() })
      Post = db:model("Post", {
        title = quay.string(),
        views = quay.integer { default = 0 },
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
        soft_delete = true,
      })
      Comment = db:model("Comment", {
        post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      })
      db:create_tables()
    end)

    it("adds a nullable deleted_at datetime", function()
      local f
      for _, x in ipairs(db:describe().Post.fields) do if x.name == "deleted_at" then f = x end end
      assert.is_not_nil(f)
      assert.equal("datetime", f.type)
      assert.is_true(f.null)
      local col
      for _, t in ipairs(db:inspect().tables) do
        if t.name == "posts" then
          for _, c in ipairs(t.columns) do if c.name == "deleted_at" then col = c end end
        end
      end
      assert.is_not_nil(col); assert.is_true(col.null)
    end)

    it("rec:delete sets deleted_at, cascades nothing and counts the soft delete", function()
      local u = User:create { name = "ann" }
      local p = Post:create { title = "a", author = u }
      Comment:create { post = p }
      local counts = p:delete()
      assert.same({ Post = 1 }, counts)
      assert.equal(1, nrows(db, "posts")); assert.equal(1, nrows(db, "comments"))
      local row = db:rows("SELECT deleted_at FROM posts")[1]
      assert.is_not_nil(row.deleted_at)
    end)

    it("qs:delete soft-deletes and counts", function()
      local u = User:create { name = "ann" }
      Post:create { title = "a", author = u }; Post:create { title = "b", author = u }
      assert.same({ Post = 2 }, Post:query():delete())
      assert.equal(2, nrows(db, "posts"))
      assert.equal(0, Post:count())
    end)

    it("every query, relation access, prefetch, count and aggregate leaves soft-deleted rows out", function()
      local u = User:create { name = "ann" }
      local a = Post:create { title = "a", views = 1, author = u }
      local b = Post:create { title = "b", views = 10, author = u }
      local c = Comment:create { post = b }
      b:delete()
      assert.equal(1, Post:count())
      assert.equal(1, #Post:all())
      assert.equal(1, #Post:query():all())
      assert.is_nil(Post:find(b.id))
      assert.is_nil(Post:filter { title = "b" }:first())
      assert.is_false(Post:filter { title = "b" }:exists())
      local pl = Post:pluck("title"); assert.equal(1, #pl); assert.equal("a", pl[1])
      assert.equal(1, #u.posts)
      assert.equal(1, u.posts:count())
      local users = User:prefetch_related("posts"):all()
      assert.equal(1, #users[1].posts)
      assert.equal(1, User:with_count("posts"):first().posts_count)
      assert.equal(1, User:annotate { n = quay.count("posts") }:first().n)
      assert.equal(1, Post:aggregate { s = quay.sum("views") }.s)
      assert.equal(1, User:filter { posts__title = "a" }:count())
      assert.equal(0, User:filter { posts__title = "b" }:count())
      assert.is_nil(Comment:find(c.id).post)
      helper.raises("not_found", Post.get, Post, { title = "b" })
      assert.same({ { title = "a" } }, Post:values("title"):all())
      assert.equal(a, Post:first())
    end)

    it("with_deleted and only_deleted see them; restore clears the mark", function()
      local u = User:create { name = "ann" }
      Post:create { title = "a", author = u }
      local b = Post:create { title = "b", author = u }
      b:delete()
      assert.equal(2, Post:with_deleted():count())
      assert.equal(1, Post:only_deleted():count())
      assert.equal("b", Post:only_deleted():first().title)
      assert.equal(2, u.posts:with_deleted():count())
      local r = Post:only_deleted():first()
      r:restore()
      assert.equal(2, Post:count())
      assert.equal(0, Post:only_deleted():count())
      assert.is_nil(db:rows("SELECT deleted_at FROM posts WHERE title = 'b'")[1].deleted_at)
    end)

    it("delete { hard = true } deletes for real, with cascades", function()
      local u = User:create { name = "ann" }
      local p = Post:create { title = "a", author = u }
      Comment:create { post = p }
      local counts = p:delete { hard = true }
      assert.equal(1, counts.Post); assert.equal(1, counts.Comment)
      assert.equal(0, nrows(db, "posts")); assert.equal(0, nrows(db, "comments"))
    end)
  end)

  describe("types", function()
    local T
    before_each(function()
      T = db:model("T", {
        d = quay.date { null = true },
        at = quay.datetime { null = true },
        price = quay.decimal { digits = 10, places = 2, null = true },
        data = quay.json { null = true },
        ref = quay.uuid { null = true },
      })
      db:create_tables()
    end)

    it("quay.date reads and writes YYYY-MM-DD", function()
      local t = T:create { d = "2024-02-29" }
      assert.equal("2024-02-29", T:find(t.id).d)
      assert.equal(1, T:filter { d__gt = "2024-02-28" }:count())
    end)

    it("quay.datetime accepts ISO 8601 with T, Z and offsets and stores UTC", function()
      local cases = {
        { "2024-03-01T10:20:30Z", "2024-03-01 10:20:30" },
        { "2024-03-01T10:20:30+02:00", "2024-03-01 08:20:30" },
        { "2024-03-01T01:00:00+02:00", "2024-02-29 23:00:00" },
        { "2024-03-01T22:30:00-05:00", "2024-03-02 03:30:00" },
        { "2024-03-01 10:20:30", "2024-03-01 10:20:30" },
      }
      for _, c in ipairs(cases) do
        local t = T:create { at = c[1] }
        assert.equal(c[2], T:find(t.id).at, c[1])
        assert.equal(c[2], t.at, c[1])
      end
    end)

    it("impossible dates are refused with validation carrying model and field", function()
      for _, c in ipairs {
        { "d", "2023-02-29" }, { "d", "2024-02-30" }, { "d", "2023-04-31" },
        { "at", "2023-02-29 00:00:00" }, { "at", "2024-02-30 12:00:00" }, { "at", "2024-02-30T12:00:00Z" },
      } do
        local n = #sent(db, function()
          local err = helper.raises("validation", T.create, T, { [c[1]] = c[2] })
          assert.equal("T", err.model); assert.equal(c[1], err.field)
        end)
        assert.equal(0, n)
      end
      local t = T:create {}
      t.d = "2023-02-29"
      local err = helper.raises("validation", t.save, t)
      assert.equal("d", err.field)
      err = helper.raises("validation", function() return T:query():update { d = "2024-02-30" } end)
      assert.equal("d", err.field); assert.equal("T", err.model)
      assert.equal(0, T:filter { d__isnull = false }:count())
    end)

    it("decimal reads as a string with exactly places decimals from strings and integers", function()
      local a = T:create { price = "1.5" }
      local b = T:create { price = 3 }
      local c = T:create { price = "12345678.99" }
      local d = T:create { price = "-0.5" }
      assert.equal("1.50", T:find(a.id).price)
      assert.equal("3.00", T:find(b.id).price)
      assert.equal("12345678.99", T:find(c.id).price)
      assert.equal("-0.50", T:find(d.id).price)
      assert.equal("1.50", a.price)
    end)

    it("decimal accepts a float when %.<places>f reads back as the same float, stored as that string", function()
      local cases = { { 1.5, "1.50" }, { 0.1, "0.10" }, { 2.25, "2.25" }, { 19.99, "19.99" }, { 3.0, "3.00" } }
      for _, c in ipairs(cases) do
        assert.equal(tonumber(string.format("%.2f", c[1])), c[1])
        local t = T:create { price = c[1] }
        assert.equal(c[2], T:find(t.id).price)
      end
      for _, v in ipairs { 1 / 3, 0.125, 1.005, 0.001 } do
        assert.are_not.equal(tonumber(string.format("%.2f", v)), v)
        local err = helper.raises("validation", T.create, T, { price = v })
        assert.equal("T", err.model); assert.equal("price", err.field)
      end
    end)

    it("decimal refuses strings with more decimals than places and non-numeric strings, never rounding", function()
      for _, v in ipairs { "1.234", "0.001", "abc", "1.2.3", "", "1e3x" } do
        local err = helper.raises("validation", T.create, T, { price = v })
        assert.equal("T", err.model); assert.equal("price", err.field)
      end
      assert.equal(0, nrows(db, "ts"))
    end)

    it("decimal sums, compares and orders exactly", function()
      for _ = 1, 10 do T:create { price = "0.10" } end
      T:create { price = "12345678.91" }
      T:create { price = "-0.01" }
      assert.equal("12345679.90", T:aggregate { s = quay.sum("price") }.s)
      assert.equal(1, T:filter { price__gt = "12345678.90" }:count())
      assert.equal(0, T:filter { price__gt = "12345678.91" }:count())
      assert.equal(10, T:filter { price = "0.1" }:count())
      local order = T:order_by("-price"):pluck("price")
      assert.equal("12345678.91", order[1])
      assert.equal("-0.01", order[#order])
      assert.equal("-0.01", T:aggregate { m = quay.min("price") }.m)
    end)

    it("json stores tables, strings, numbers and booleans", function()
      local vals = { { a = 1, b = { "x", "y" } }, "text", 42, 1.5, true, false }
      for _, v in ipairs(vals) do
        local t = T:create { data = v }
        assert.same(v, T:find(t.id).data)
      end
    end)

    it("json path lookups data__key__sub and data__has_key", function()
      T:create { data = { user = { name = "ann", age = 30 }, tag = "x" } }
      T:create { data = { user = { name = "bob" } } }
      T:create { data = { other = true } }
      assert.equal(1, T:filter { data__user__name = "ann" }:count())
      assert.equal(1, T:filter { data__tag = "x" }:count())
      assert.equal(1, T:filter { data__user__age = 30 }:count())
      assert.equal(2, T:filter { data__has_key = "user" }:count())
      assert.equal(1, T:filter { data__has_key = "other" }:count())
    end)

    it("a JSON null inside a document reads as quay.null", function()
      local t = T:create { data = { a = quay.null, b = 1 } }
      local r = T:find(t.id)
      assert.equal(quay.null, r.data.a)
      assert.equal(1, r.data.b)
    end)

    it("uuid is generated (version 7, lower case, 36 characters) when not given", function()
      local U = db:model("U", { ref = quay.uuid { unique = true } })
      db:create_tables()
      local u = U:create {}
      local ref = U:find(u.id).ref
      assert.equal(36, #ref)
      assert.equal(ref, u.ref)
      assert.truthy(ref:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), ref)
      assert.equal(ref:lower(), ref)
      assert.are_not.equal(ref, U:create {}.ref)
    end)

    it("uuids are written and read in lower case", function()
      local t = T:create { ref = "0190A5B3-1C2D-7E4F-8A9B-0C1D2E3F4A5B" }
      assert.equal("0190a5b3-1c2d-7e4f-8a9b-0c1d2e3f4a5b", T:find(t.id).ref)
      local raw = db:rows("SELECT ref FROM ts")[1].ref
      assert.equal("0190a5b3-1c2d-7e4f-8a9b-0c1d2e3f4a5b", tostring(raw))
      assert.equal(1, T:filter { ref = "0190A5B3-1C2D-7E4F-8A9B-0C1D2E3F4A5B" }:count())
    end)
  end)

  it("indexes = { { ... } } declares a composite index over fields and relations, in order", function()
    contract_models()
    local found
    for _, t in ipairs(db:inspect().tables) do
      if t.name == "posts" then
        for _, x in ipairs(t.indexes) do
          if #x.columns == 2 then found = x end
        end
      end
    end
    assert.is_not_nil(found)
    assert.same({ "author_id", "placed" }, found.columns)
    assert.is_false(found.unique)
    assert.same({}, db:schema_diff())
  end)

  it("describe() reports the extra field and model keys", function()
    local fn = function() end
    db:model("T", {
      a = quay.integer { default = 3, index = true, min = 1, max = 9 },
      s = quay.string { choices = { "x", "y" }, default = "x" },
      p = quay.decimal { digits = 8, places = 3 },
      c = quay.datetime { auto_now_add = true },
      u = quay.datetime { auto_now = true },
      f = quay.integer { default = function() return 1 end },
      unique_together = { { "a", "s" } },
      indexes = { { "s", "a" } },
      methods = { m = fn },
      scopes = { sc = fn },
      soft_delete = true,
    })
    local d = db:describe().T
    local f = {}
    for _, x in ipairs(d.fields) do f[x.name] = x end
    assert.equal(3, f.a.default); assert.is_true(f.a.index)
    assert.equal(1, f.a.min); assert.equal(9, f.a.max)
    assert.same({ "x", "y" }, f.s.choices); assert.equal("x", f.s.default)
    assert.equal(8, f.p.digits); assert.equal(3, f.p.places)
    assert.is_true(f.c.auto_now_add); assert.is_true(f.u.auto_now)
    assert.is_nil(f.f.default)
    assert.same({ { "a", "s" } }, d.unique_together)
    assert.same({ { "s", "a" } }, d.indexes)
    assert.same({ "m" }, d.methods)
    assert.same({ "sc" }, d.scopes)
    assert.is_true(d.soft_delete)
  end)

  it("quay types prints LuaLS annotations naming fields, relations, methods and scopes", function()
    local dir = helper.tmpdir()
    write(dir .. "/models.lua", [[
local quay = require("quay")
return function(db)
  local M = {}
  M.Author = db:model("Author", { nickname = quay.string() })
  M.Article = db:model("Article", {
    headline = quay.string(),
    writer = quay.belongs_to("Author", { related_name = "articles" }),
    methods = { summarize = function(self) return self.headline end },
    scopes = { fresh = function(qs) return qs end },
  })
  return M
end
]])
    local status, out, err = quay_cmd("types", dir .. "/models.lua")
    assert.equal(0, status, err)
    assert.truthy(load(out, "=types", "t"), "not a Lua chunk")
    for _, name in ipairs { "Author", "Article", "nickname", "headline", "writer",
                            "articles", "summarize", "fresh" } do
      assert.truthy(out:find(name, 1, true), name .. " missing from:\n" .. out)
    end
    assert.truthy(out:find("---@class", 1, true))
    assert.truthy(out:find("---@field writer", 1, true), out)
  end)

  it("a model whose declaration failed may be declared again; a successful one may not", function()
    helper.raises("declaration", db.model, db, "T", { n = quay.integer(), bogus_option = 1 })
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }
    local err = helper.raises("declaration", db.model, db, "T", { n = quay.integer() })
    helper.mentions(err, "T")
    -- failing at db:check (an unknown target), then declared again
    db:model("R", { t = quay.belongs_to("Nope") })
    helper.raises("declaration", db.check, db)
    local R = db:model("R", { t = quay.belongs_to("T") })
    db:check()
    db:create_tables()
    R:create { t = T:first() }
    assert.equal(1, R:count())
  end)

  it("a record of another db in a relation, filter or write raises validation saying so", function()
    local other = quay.open("sqlite::memory:")
    local function models(h)
      local U = h:model("User", { name = quay.string() })
      local P = h:model("Post", {
        author = quay.belongs_to("User", { related_name = "posts", null = true }),
        tags = quay.many_to_many("Tag"),
      })
      local T = h:model("Tag", { name = quay.string() })
      h:create_tables()
      return U, P, T
    end
    local U, P, T = models(db)
    local OU, _, OT = models(other)
    local mine = U:create { name = "mine" }
    local stranger = OU:create { name = "x" }
    local otag = OT:create { name = "t" }
    local function refused(fn)
      local err = helper.raises("validation", fn)
      assert.truthy(tostring(err.message):lower():find("another database", 1, true), err.message)
    end
    refused(function() return P:create { author = stranger } end)
    refused(function() return P:filter { author = stranger }:count() end)
    local p = P:create { author = mine }
    refused(function() p.author = stranger end)
    refused(function() return P:query():update { author = stranger } end)
    refused(function() return p.tags:add(otag) end)
    refused(function() return p.tags:contains(otag) end)
    local _ = #p.tags
    refused(function() return p.tags:contains(otag) end)     -- loaded set too
    local opost = other:model("Post"):create {}
    refused(function() return mine.posts:contains(opost) end)
    refused(function() return P:filter { author__in = { stranger } }:count() end)
    assert.equal(1, P:count())
    assert.equal(mine, P:first().author)
    other:close()
    local _ = T
  end)
end)

-- Schema evolution ---------------------------------------------------------

local OPS = set_of { "create_table", "drop_table", "rename_table", "add_column",
  "drop_column", "rename_column", "alter_column", "create_index", "drop_index",
  "add_constraint", "drop_constraint" }

local function find_table(live, name)
  for _, t in ipairs(live.tables) do if t.name == name then return t end end
end

local function find_step(steps, op, column)
  for _, s in ipairs(steps) do
    if s.op == op and (column == nil or s.column == column) then return s end
  end
end

local function ops_of(steps)
  local l = {}
  for _, s in ipairs(steps) do l[#l + 1] = s.op .. ":" .. tostring(s.table) .. "." .. tostring(s.column) end
  return table.concat(l, " ")
end

-- A second handle on the database of shared_url(); declare(h) declares the
-- models of that version.
local function version(url, declare)
  local h = quay.open(url)
  local M = declare(h)
  return h, M
end

describe("Schema evolution", function()
  it("db:inspect() lists tables in name order with the documented keys", function()
    db:model("Zeta", { name = quay.string { max = 40, index = true }, n = quay.integer { default = 7, min = 0 } })
    db:model("Alpha", { z = quay.belongs_to("Zeta", { on_delete = quay.CASCADE }), ok = quay.boolean { null = true } })
    db:model("Mid", { label = quay.string { unique = true } })
    db:create_tables()
    local live = db:inspect()
    assert.is_table(live.tables)
    local names = {}
    for _, t in ipairs(live.tables) do names[#names + 1] = t.name end
    assert.same({ "alphas", "mids", "zetas" }, names)
    for _, t in ipairs(live.tables) do
      assert.is_table(t.columns); assert.is_table(t.indexes)
      assert.is_table(t.foreign_keys); assert.is_table(t.checks)
      for _, c in ipairs(t.columns) do
        assert.is_string(c.name); assert.is_string(c.type)
        assert.is_boolean(c.null); assert.is_boolean(c.primary_key)
      end
      for _, x in ipairs(t.indexes) do
        assert.is_string(x.name); assert.is_table(x.columns); assert.is_boolean(x.unique)
      end
    end
    local z = find_table(live, "zetas")
    assert.same({ "id", "name", "n" }, { z.columns[1].name, z.columns[2].name, z.columns[3].name })
    assert.is_true(z.columns[1].primary_key); assert.is_false(z.columns[2].primary_key)
    assert.is_false(z.columns[2].null)
    assert.truthy(tostring(z.columns[3].default):find("7", 1, true))
    local idx
    for _, x in ipairs(z.indexes) do if x.columns[1] == "name" then idx = x end end
    assert.is_not_nil(idx); assert.is_false(idx.unique)
    assert.equal(1, #z.checks); assert.is_string(z.checks[1])
    assert.truthy(z.checks[1]:find("n", 1, true))
    local m = find_table(live, "mids")
    local uniq
    for _, x in ipairs(m.indexes) do if x.columns[1] == "label" then uniq = x end end
    assert.is_true(uniq.unique)
    local a = find_table(live, "alphas")
    assert.equal(1, #a.foreign_keys)
    local fk = a.foreign_keys[1]
    assert.same({ "z_id" }, fk.columns); assert.equal("zetas", fk.table); assert.same({ "id" }, fk.to)
    assert.is_string(fk.on_delete); assert.is_string(fk.on_update)
    assert.is_true(a.columns[3].null)
  end)

  it("db:inspect() gives each column the backend's own type name", function()
    db:model("T", { name = quay.string { max = 40 }, ok = quay.boolean(), n = quay.number(), t = quay.text() })
    db:create_tables()
    local own = {}
    if helper.is_pg then
      for _, r in ipairs(db:rows([[SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
          FROM pg_attribute a WHERE a.attrelid = 'ts'::regclass AND a.attnum > 0 AND NOT a.attisdropped]])) do
        own[r.name] = r.type
      end
    else
      for _, r in ipairs(db:rows("SELECT name, type FROM pragma_table_info('ts')")) do own[r.name] = r.type end
    end
    for _, c in ipairs(find_table(db:inspect(), "ts").columns) do
      assert.equal(own[c.name], c.type, c.name)
    end
  end)

  it("db:inspect() leaves Quay's bookkeeping tables out", function()
    db:model("T", { n = quay.integer() })
    db:create_tables()
    db:migrate()
    db:execute("CREATE TABLE quay_migrations (id INTEGER PRIMARY KEY, name TEXT)")
    local names = {}
    for _, t in ipairs(db:inspect().tables) do names[#names + 1] = t.name end
    assert.same({ "ts" }, names)
  end)

  it("a step is { op, model, table, column, sql = {...} } with a documented op", function()
    local url = shared_url()
    local h1 = version(url, function(h)
      h:model("Note", { body = quay.text(), old = quay.integer { null = true } })
      h:create_tables()
    end)
    h1:model("Note"):create { body = "x" }
    h1:close()
    local h = version(url, function(h)
      h:model("Note", { body = quay.text(), added = quay.integer { null = true }, tag = quay.string { index = true, default = "" } })
      h:model("Other", { n = quay.integer() })
    end)
    local steps = h:schema_diff()
    assert.truthy(#steps >= 4, ops_of(steps))
    for _, s in ipairs(steps) do
      assert.truthy(OPS[s.op], tostring(s.op))
      assert.is_table(s.sql); assert.truthy(#s.sql >= 1)
      for _, q in ipairs(s.sql) do assert.is_string(q) end
      assert.is_string(s.table)
    end
    local add = find_step(steps, "add_column", "added")
    assert.equal("Note", add.model); assert.equal("notes", add.table)
    assert.truthy(find_step(steps, "drop_column", "old"))
    assert.truthy(find_step(steps, "create_index"))
    local ct = find_step(steps, "create_table")
    assert.equal("Other", ct.model); assert.equal("others", ct.table)
    h:close()
  end)

  it("renamed_from on a field turns drop + add into rename_column, keeping the data", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text() }); h:create_tables() end)
    h1:model("Note"):create { body = "kept" }
    h1:close()
    local h, Note = version(url, function(h) return h:model("Note", { content = quay.text { renamed_from = "body" } }) end)
    local steps = h:schema_diff()
    assert.equal(1, #steps, ops_of(steps))
    assert.equal("rename_column", steps[1].op)
    h:migrate()
    assert.equal("kept", Note:first().content)
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("renamed_from on a model turns drop + create into rename_table, keeping the data", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text() }); h:create_tables() end)
    h1:model("Note"):create { body = "kept" }
    h1:close()
    local h, Memo = version(url, function(h) return h:model("Memo", { body = quay.text(), renamed_from = "Note" }) end)
    local steps = h:schema_diff()
    assert.equal(1, #steps, ops_of(steps))
    assert.equal("rename_table", steps[1].op)
    h:migrate()
    assert.equal("kept", Memo:first().body)
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("renamed_from on a model may name the old table; a field's renamed_from stays harmless after", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text() }); h:create_tables() end)
    h1:model("Note"):create { body = "kept" }
    h1:close()
    local h, Memo = version(url, function(h)
      return h:model("Memo", { text = quay.text { renamed_from = "body" }, renamed_from = "notes" })
    end)
    local steps = h:schema_diff()
    assert.truthy(find_step(steps, "rename_table"), ops_of(steps))
    assert.truthy(find_step(steps, "rename_column"), ops_of(steps))
    assert.is_nil(find_step(steps, "drop_table")); assert.is_nil(find_step(steps, "create_table"))
    h:migrate()
    assert.equal("kept", Memo:first().text)
    h:close()
    h = version(url, function(x)
      return x:model("Memo", { text = quay.text { renamed_from = "body" }, renamed_from = "notes" })
    end)
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("without renamed_from a renamed field is a drop plus an add", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text { null = true } }); h:create_tables() end)
    h1:close()
    local h = version(url, function(h) return h:model("Note", { content = quay.text { null = true } }) end)
    local steps = h:schema_diff()
    assert.truthy(find_step(steps, "drop_column", "body"), ops_of(steps))
    assert.truthy(find_step(steps, "add_column", "content"), ops_of(steps))
    h:close()
  end)

  it("dropping a column or a table raises migration unless allow_drop = true", function()
    local url = shared_url()
    local h1 = version(url, function(h)
      h:model("Note", { body = quay.text(), old = quay.integer { null = true } })
      h:model("Gone", { n = quay.integer() })
      h:create_tables()
    end)
    h1:model("Note"):create { body = "x", old = 3 }
    h1:close()
    local h = version(url, function(h) return h:model("Note", { body = quay.text() }) end)
    local err = helper.raises("migration", h.migrate, h)
    helper.mentions(err, "allow_drop")
    assert.truthy(find_table(h:inspect(), "gones"))
    assert.equal(3, h:rows("SELECT old FROM notes")[1].old)
    h:migrate { allow_drop = true }
    assert.is_nil(find_table(h:inspect(), "gones"))
    assert.same({}, h:schema_diff())
    h:close()
  end)

  local function narrowing(from, to, refused)
    local url = shared_url()
    local h1 = version(url, function(h) h:model("T", { f = from() }); h:create_tables() end)
    h1:close()
    local h = version(url, function(h) return h:model("T", { f = to() }) end)
    if refused then
      local err = helper.raises("migration", h.migrate, h)
      helper.mentions(err, "allow_drop")
      h:migrate { allow_drop = true }
    else
      local steps = h:migrate()
      assert.truthy(#steps >= 1)
    end
    assert.same({}, h:schema_diff())
    h:close()
  end

  it("widenings need no allow_drop: integer -> number, -> decimal, larger max, string -> text, nullable", function()
    narrowing(function() return quay.integer() end, function() return quay.number() end, false)
    narrowing(function() return quay.integer() end, function() return quay.decimal { digits = 18, places = 0 } end, false)
    narrowing(function() return quay.number() end, function() return quay.decimal { digits = 18, places = 4 } end, false)
    narrowing(function() return quay.string { max = 10 } end, function() return quay.string { max = 20 } end, false)
    narrowing(function() return quay.string { max = 10 } end, function() return quay.text() end, false)
    narrowing(function() return quay.integer() end, function() return quay.integer { null = true } end, false)
  end)

  it("narrowings need allow_drop: smaller max, text -> string, number -> integer, nullable -> not null", function()
    narrowing(function() return quay.string { max = 20 } end, function() return quay.string { max = 10 } end, true)
    narrowing(function() return quay.text() end, function() return quay.string { max = 10 } end, true)
    narrowing(function() return quay.number() end, function() return quay.integer() end, true)
    narrowing(function() return quay.integer { null = true } end, function() return quay.integer() end, true)
    narrowing(function() return quay.boolean() end, function() return quay.integer() end, true)
    narrowing(function() return quay.decimal { digits = 8, places = 2 } end, function() return quay.decimal { digits = 8, places = 1 } end, true)
  end)

  it("with allow_drop, boolean <-> integer changes run and convert the values", function()
    local url = shared_url()
    local h1 = version(url, function(h)
      h:model("T", { b = quay.boolean(), n = quay.integer(), k = quay.integer() }); h:create_tables()
    end)
    local T1 = h1:model("T")
    T1:create { b = true, n = 0, k = 1 }; T1:create { b = false, n = 5, k = 2 }
    h1:close()
    local h, T = version(url, function(x)
      return x:model("T", { b = quay.integer(), n = quay.boolean(), k = quay.integer() })
    end)
    helper.raises("migration", h.migrate, h)
    h:migrate { allow_drop = true }
    assert.same({}, h:schema_diff())
    local rows = T:order_by("k"):all()
    assert.equal(1, rows[1].b); assert.equal(0, rows[2].b)
    assert.is_false(rows[1].n); assert.is_true(rows[2].n)
    h:close()
  end)

  it("with allow_drop, a narrowing converts the values the same way on both backends", function()
    local function convert(from, to, values)
      local url = shared_url()
      local h1 = version(url, function(h) h:model("T", { f = from(), k = quay.integer() }); h:create_tables() end)
      for i, v in ipairs(values) do h1:model("T"):create { f = v, k = i } end
      h1:close()
      local h, T = version(url, function(x) return x:model("T", { f = to(), k = quay.integer() }) end)
      helper.raises("migration", h.migrate, h)
      h:migrate { allow_drop = true }
      assert.same({}, h:schema_diff())
      local out = {}
      for _, r in ipairs(T:order_by("k"):all()) do out[#out + 1] = r.f end
      h:close()
      return out
    end
    assert.same({ 2, 2, -2, 3 }, convert(function() return quay.number() end,
      function() return quay.integer() end, { 1.5, 2.5, -2.4, 3.0 }))
    assert.same({ "012", "hél" }, convert(function() return quay.string { max = 10 } end,
      function() return quay.string { max = 3 } end, { "0123456789", "héllo" }))
    assert.same({ "0123", "ab" }, convert(function() return quay.text() end,
      function() return quay.string { max = 4 } end, { "0123456789", "ab" }))
    assert.same({ "true", "false" }, convert(function() return quay.boolean() end,
      function() return quay.string() end, { true, false }))
    assert.same({ true, false, true, false }, convert(function() return quay.string() end,
      function() return quay.boolean() end, { "true", "false", " YES ", "0" }))
    assert.same({ "3.10", "-0.05", "0.00" }, convert(function() return quay.decimal { digits = 5, places = 2 } end,
      function() return quay.text() end, { "3.10", "-0.05", "0" }))
  end)

  it("a non-null column without a default on a table with rows raises migration naming the fix", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text() }); h:create_tables() end)
    h1:model("Note"):create { body = "x" }
    h1:close()
    local h = version(url, function(h) return h:model("Note", { body = quay.text(), n = quay.integer() }) end)
    local err = helper.raises("migration", h.migrate, h)
    helper.mentions(err, "n", "default")
    assert.equal(1, #h:schema_diff())
    h:close()
    -- with no rows it is fine
    local url2 = shared_url()
    local h2 = version(url2, function(x) x:model("Note", { body = quay.text() }); x:create_tables() end)
    h2:close()
    h = version(url2, function(x) return x:model("Note", { body = quay.text(), n = quay.integer() }) end)
    h:migrate()
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("dry_run returns the steps and changes nothing", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text(), old = quay.integer { null = true } }); h:create_tables() end)
    h1:close()
    local h = version(url, function(h)
      h:model("Note", { body = quay.text(), n = quay.integer { default = 1 } })
      h:model("New", { x = quay.integer() })
    end)
    local before = h:inspect()
    local steps = h:migrate { dry_run = true, allow_drop = true }
    assert.truthy(find_step(steps, "add_column", "n"))
    assert.truthy(find_step(steps, "drop_column", "old"))
    assert.truthy(find_step(steps, "create_table"))
    assert.same(before.tables, h:inspect().tables)
    assert.equal(#steps, #h:schema_diff())
    helper.raises("misuse", h.migrate, h, { dryrun = true })
    h:close()
  end)

  it("one migration is one transaction: a failing step leaves schema and data as before", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text(), code = quay.string { null = true } }); h:create_tables() end)
    local N = h1:model("Note")
    N:create { body = "a", code = "same" }; N:create { body = "b", code = "same" }
    h1:close()
    local h = version(url, function(h)
      h:model("Note", { body = quay.text(), extra = quay.integer { default = 5 }, code = quay.string { null = true, unique = true } })
      h:model("Fresh", { n = quay.integer() })
    end)
    local before = h:inspect()
    local ok = pcall(h.migrate, h)
    assert.is_false(ok)
    assert.same(before.tables, h:inspect().tables)
    assert.equal(2, #h:rows("SELECT * FROM notes"))
    assert.is_nil(h:rows("SELECT * FROM notes")[1].extra)
    h:close()
  end)

  it("rows that break a constraint a migration adds raise the same code on both backends; nothing changes", function()
    local function breaks(v1, rows, v2)
      local url = shared_url()
      local h1 = version(url, function(h) v1(h); h:create_tables() end)
      for _, r in ipairs(rows) do h1:execute(r) end
      h1:close()
      local h = version(url, v2)
      local before = h:inspect()
      local err = helper.raises("integrity", h.migrate, h)
      assert.same(before.tables, h:inspect().tables)
      h:close()
      return err
    end
    -- a foreign key to a row that does not exist
    breaks(function(h)
      h:model("User", { name = quay.string() })
      h:model("Post", { author_id = quay.integer() })
    end, { "INSERT INTO posts (author_id) VALUES (99)" }, function(h)
      h:model("User", { name = quay.string() })
      h:model("Post", { author = quay.belongs_to("User", { renamed_from = "author_id" }) })
    end)
    -- a unique field over equal values
    breaks(function(h) h:model("T", { s = quay.string() }) end,
      { "INSERT INTO ts (s) VALUES ('a')", "INSERT INTO ts (s) VALUES ('a')" },
      function(h) h:model("T", { s = quay.string { unique = true } }) end)
    -- choices the rows break
    breaks(function(h) h:model("T", { s = quay.string() }) end,
      { "INSERT INTO ts (s) VALUES ('z')" },
      function(h) h:model("T", { s = quay.string { choices = { "a" } } }) end)
  end)

  it("after db:migrate() schema_diff() is empty", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("A", { x = quay.integer() }); h:create_tables() end)
    h1:close()
    local h = version(url, function(h)
      h:model("A", { x = quay.number(), y = quay.string { max = 9, null = true, unique = true },
        b = quay.belongs_to("B", { null = true }), cs = quay.many_to_many("C"),
        indexes = { { "y", "x" } }, unique_together = { { "x", "b" } } })
      h:model("B", { d = quay.decimal { digits = 6, places = 2, null = true }, j = quay.json { null = true },
        at = quay.datetime { null = true }, u = quay.uuid { null = true }, day = quay.date { null = true },
        s = quay.string { choices = { "p", "q" }, default = "p" }, n = quay.integer { min = 1, max = 5, default = 1 } })
      h:model("C", { blob = quay.blob { null = true }, ok = quay.boolean { default = false }, soft_delete = true })
    end)
    h:migrate()
    assert.same({}, h:schema_diff())
    assert.same({}, h:migrate())
    h:close()
  end)

  it("create_tables on a drifted database raises migration naming db:migrate() and builds nothing", function()
    local url = shared_url()
    local h1 = version(url, function(h) h:model("Note", { body = quay.text() }); h:create_tables() end)
    h1:close()
    local h = version(url, function(h)
      h:model("Note", { body = quay.text(), n = quay.integer { default = 0 } })
      h:model("Other", { x = quay.integer() })
    end)
    local err = helper.raises("migration", h.create_tables, h)
    helper.mentions(err, "db:migrate()")
    assert.is_nil(find_table(h:inspect(), "others"))
    h:close()
  end)

  it("schema comparison ignores index names and compares columns, order and uniqueness", function()
    db:execute("CREATE TABLE ts (id " .. (helper.is_pg and "bigserial" or "INTEGER") ..
      " PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL)")
    db:execute("CREATE INDEX some_name ON ts (a, b)")
    db:execute("CREATE UNIQUE INDEX another_name ON ts (b)")
    db:model("T", { a = quay.integer(), b = quay.integer { unique = true }, indexes = { { "a", "b" } } })
    local steps = db:schema_diff()
    assert.same({}, steps, ops_of(steps))
  end)

  it("schema comparison sees a different index order or uniqueness", function()
    local url = shared_url()
    local h0 = quay.open(url)
    h0:execute("CREATE TABLE ts (id " .. (helper.is_pg and "bigserial" or "INTEGER") ..
      " PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL)")
    h0:execute("CREATE INDEX some_name ON ts (b, a)")
    h0:execute("CREATE INDEX other_name ON ts (b)")
    h0:close()
    local h = version(url, function(x) return x:model("T", { a = quay.integer(), b = quay.integer { unique = true }, indexes = { { "a", "b" } } }) end)
    local steps = h:schema_diff()
    assert.truthy(#steps >= 2, ops_of(steps))
    h:migrate { allow_drop = true }
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("schema comparison: bool/boolean, varchar(n)/string{max=n}, integer/bigint keys with or without AUTOINCREMENT", function()
    local url = shared_url()
    local h0 = quay.open(url)
    if helper.is_pg then
      h0:execute("CREATE TABLE as_ (id serial PRIMARY KEY, ok bool NOT NULL, name varchar(30) NOT NULL)")
      h0:execute("CREATE TABLE bs (id bigserial PRIMARY KEY, ok boolean NOT NULL, name character varying(30) NOT NULL)")
      h0:execute("CREATE TABLE cs (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, ok bool NOT NULL)")
    else
      h0:execute("CREATE TABLE as_ (id INTEGER PRIMARY KEY AUTOINCREMENT, ok bool NOT NULL, name varchar(30) NOT NULL)")
      h0:execute("CREATE TABLE bs (id integer PRIMARY KEY, ok BOOLEAN NOT NULL, name VARCHAR(30) NOT NULL)")
      h0:execute("CREATE TABLE cs (id bigint PRIMARY KEY, ok bool NOT NULL)")
    end
    h0:close()
    local h, M = version(url, function(x)
      return {
        A = x:model("A", { table = "as_", ok = quay.boolean(), name = quay.string { max = 30 } }),
        B = x:model("B", { ok = quay.boolean(), name = quay.string { max = 30 } }),
        C = x:model("C", { ok = quay.boolean() }),
      }
    end)
    local steps = h:schema_diff()
    assert.same({}, steps, ops_of(steps))
    local a = M.A:create { ok = true, name = "x" }
    assert.is_not_nil(a.id)
    assert.equal(a, M.A:find(a.id))
    h:close()
  end)
end)

describe("quay inspect and quay migrate", function()
  local tmpdir = helper.tmpdir

  it("quay inspect URL prints a chunk returning declare(db), whose models diff empty and relate", function()
    local url = shared_url()
    local h0 = quay.open(url)
    local ID = helper.is_pg and "serial PRIMARY KEY" or "INTEGER PRIMARY KEY"
    h0:execute("CREATE TABLE authors (id " .. ID .. ", name varchar(40) NOT NULL, active bool NOT NULL DEFAULT true)")
    h0:execute("CREATE TABLE books (id " .. ID .. ", title text NOT NULL, author_id integer NOT NULL REFERENCES authors (id))")
    h0:execute("CREATE INDEX books_title_x ON books (title)")
    h0:execute("CREATE TABLE genres (id " .. ID .. ", label varchar(20) NOT NULL UNIQUE)")
    h0:execute("CREATE TABLE book_genres (id " .. ID .. ", book_id integer NOT NULL REFERENCES books (id), "
      .. "genre_id integer NOT NULL REFERENCES genres (id), UNIQUE (book_id, genre_id))")
    h0:close()
    local status, script, err = quay_cmd("inspect", url)
    assert.equal(0, status, err)
    local declare = assert(load(script, "=inspected", "t"))()
    assert.is_function(declare)
    local h = quay.open(url)
    local M = declare(h)
    assert.is_table(M)
    assert.is_truthy(M.Author and M.Book and M.Genre and M.BookGenre, script)
    local steps = h:schema_diff()
    assert.same({}, steps, ops_of(steps) .. "\n" .. script)
    -- foreign keys became belongs_to, the join table a through model with
    -- two belongs_to and many_to_many ... through on both sides
    local d = h:describe()
    local kinds = {}
    for _, r in ipairs(d.BookGenre.relations) do
      if r.kind ~= "reverse" then kinds[#kinds + 1] = r.kind .. ":" .. r.target end
    end
    table.sort(kinds)
    assert.same({ "belongs_to:Book", "belongs_to:Genre" }, kinds)
    local function m2m(model, target)
      for _, r in ipairs(d[model].relations) do
        if r.kind == "many_to_many" and r.target == target then return r end
      end
    end
    local bg, gb = m2m("Book", "Genre"), m2m("Genre", "Book")
    assert.is_truthy(bg, script); assert.is_truthy(gb, script)
    assert.equal("BookGenre", bg.through); assert.equal("BookGenre", gb.through)
    local a = M.Author:create { name = "ann" }
    assert.is_true(a.active)
    local b = M.Book:create { title = "t", author = a }
    local g = M.Genre:create { label = "sf" }
    b[bg.name]:add(g)
    assert.equal(1, g[gb.name]:count())
    assert.equal(1, M.Book:filter { author__name = "ann" }:count())
    assert.equal(a, M.Book:first().author)
    h:close()
  end)

  it("quay inspect names each model after its table in CamelCase, singular where it ends in s", function()
    local url = shared_url()
    local h0 = quay.open(url)
    local ID = helper.is_pg and "serial PRIMARY KEY" or "INTEGER PRIMARY KEY"
    h0:execute("CREATE TABLE order_items (id " .. ID .. ", n integer NOT NULL)")
    h0:execute("CREATE TABLE media (id " .. ID .. ")")
    h0:close()
    local status, script, err = quay_cmd("inspect", url)
    assert.equal(0, status, err)
    local h = quay.open(url)
    local M = assert(load(script, "=inspected", "t"))()(h)
    assert.is_truthy(M.OrderItem, script)
    assert.is_truthy(M.Media, script)
    assert.equal("order_items", h:describe().OrderItem.table)
    M.OrderItem:create { n = 3 }
    assert.equal(3, M.OrderItem:first().n)
    assert.same({}, h:schema_diff())
    h:close()
  end)

  it("quay migrate make writes migrations/NNNN_NAME.lua; plan, status and apply run it", function()
    local dir = tmpdir()
    local url = shared_url()
    write(dir .. "/models.lua", [[
local quay = require("quay")
return function(db)
  return { Note = db:model("Note", { body = quay.text() }) }
end
]])
    local st, out, err = quay_cmd("migrate", "make", dir .. "/models.lua", "first", "--db", url)
    assert.equal(0, st, err)
    local f = io.open(dir .. "/migrations/0001_first.lua")
    assert.is_not_nil(f, out)
    f:close()
    st, out, err = quay_cmd("migrate", "plan", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("0001_first", 1, true) or out:find("CREATE TABLE", 1, true), out)
    st, out, err = quay_cmd("migrate", "status", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    assert.truthy(out:find("0001_first", 1, true), out)
    st, out, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    local h = quay.open(url)
    assert.truthy(find_table(h:inspect(), "notes"))
    assert.equal(1, #h:rows("SELECT * FROM quay_migrations"))
    h:close()
    -- applying again runs nothing twice
    st, out, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st, err)
    h = quay.open(url)
    assert.equal(1, #h:rows("SELECT * FROM quay_migrations"))
    h:close()
  end)

  it("quay migrate apply refuses with migration when an applied file's checksum changed", function()
    local dir = tmpdir()
    local url = shared_url()
    write(dir .. "/models.lua", [[
local quay = require("quay")
return function(db)
  return { Note = db:model("Note", { body = quay.text() }) }
end
]])
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "first", "--db", url)))
    assert.equal(0, (quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)))
    local path = dir .. "/migrations/0001_first.lua"
    write(path, slurp(path) .. "\n-- edited\n")
    local st, _, err = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.are_not.equal(0, st)
    assert.truthy(err:find("migration", 1, true), err)
    assert.truthy(err:find("0001_first", 1, true), err)
  end)

  it("quay migrate apply runs each file in its own transaction", function()
    local dir = tmpdir()
    local url = shared_url()
    local models = [[
local quay = require("quay")
return function(db)
  return { Note = db:model("Note", { body = quay.text() %s }) }
end
]]
    write(dir .. "/models.lua", models:format(""))
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "first", "--db", url)))
    write(dir .. "/models.lua", models:format(", n = quay.integer { default = 0 }"))
    local st, _, err = quay_cmd("migrate", "make", dir .. "/models.lua", "second", "--db", url)
    if st ~= 0 then
      -- make compares with the database: apply the first file, then make
      assert.equal(0, (quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)))
      st, _, err = quay_cmd("migrate", "make", dir .. "/models.lua", "second", "--db", url)
    end
    assert.equal(0, st, err)
    local path = dir .. "/migrations/0002_second.lua"
    local text = slurp(path)
    write(path, (text:gsub("\nreturn%s*{", "\nreturn { data = function(db) error('boom') end,", 1)))
    st = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.are_not.equal(0, st)
    local h = quay.open(url)
    local rows = h:rows("SELECT * FROM quay_migrations")
    assert.equal(1, #rows)
    local notes = find_table(h:inspect(), "notes")
    assert.truthy(notes)
    assert.equal(2, #notes.columns)
    h:close()
  end)

  it("a migration file's data = function(db) runs in the file's transaction", function()
    local dir = tmpdir()
    local url = shared_url()
    write(dir .. "/models.lua", [[
local quay = require("quay")
return function(db)
  return { Note = db:model("Note", { body = quay.text() }) }
end
]])
    assert.equal(0, (quay_cmd("migrate", "make", dir .. "/models.lua", "first", "--db", url)))
    local path = dir .. "/migrations/0001_first.lua"
    local text = slurp(path)
    local chunk = assert(load(text, "=m", "t"))()
    assert.is_table(chunk)
    assert.is_table(chunk.steps or chunk)
    -- add a data function that writes then fails: nothing stays
    local failing = text:gsub("\nreturn%s*{", "\nreturn { data = function(db) db:execute(\"INSERT INTO notes (body) VALUES ('x')\") error('boom') end,", 1)
    assert.are_not.equal(text, failing)
    write(path, failing)
    local st = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.are_not.equal(0, st)
    local h = quay.open(url)
    assert.is_nil(find_table(h:inspect(), "notes"))
    h:close()
    write(path, (text:gsub("\nreturn%s*{", "\nreturn { data = function(db) db:execute(\"INSERT INTO notes (body) VALUES ('x')\") end,", 1)))
    st = quay_cmd("migrate", "apply", dir .. "/models.lua", "--db", url)
    assert.equal(0, st)
    h = quay.open(url)
    assert.equal(1, #h:rows("SELECT * FROM notes"))
    h:close()
  end)
end)

describe("Scale-out options", function()
  it("quay.open accepts prepare, replicas and sticky; on SQLite they do nothing", function()
    if helper.is_pg then
      local h = quay.open(helper.url, { prepare = false })
      h:model("T", { n = quay.integer() })
      h:create_tables()
      h:model("T"):create { n = 1 }
      assert.equal(1, h:model("T"):count())
      assert.equal(1, h:model("T"):filter { n = 1 }:count())
      h:close()
      return
    end
    local h = quay.open("sqlite::memory:", { prepare = false, replicas = { "sqlite::memory:" }, sticky = 2 })
    local T = h:model("T", { n = quay.integer() })
    h:create_tables()
    T:create { n = 1 }
    assert.equal(1, T:count())
    h:close()
  end)

  it("an unknown quay.open option, a wrong shape or an extra argument is misuse", function()
    helper.raises("misuse", quay.open, helper.url, { replica = { helper.url } })
    helper.raises("misuse", quay.open, helper.url, { bogus = true })
    helper.raises("misuse", quay.open, helper.url, { replicas = helper.url })
    helper.raises("misuse", quay.open, helper.url, { sticky = "1" })
    helper.raises("misuse", quay.open, helper.url, { prepare = "no" })
    -- (quay.core.open: spec/helper.lua wraps quay.open on the PgBouncer pass)
    helper.raises("misuse", require("quay.core").open, helper.url, {}, 3)
  end)

  it("db:inspect, db:schema_diff, db:stats and qs:using never ignore an argument", function()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    helper.raises("misuse", db.inspect, db, 1)
    helper.raises("misuse", db.schema_diff, db, {})
    helper.raises("misuse", db.stats, db, "x")
    helper.raises("misuse", function() return T:query():using("primary", true) end)
    helper.raises("misuse", function() return T:using("primary", 1) end)
    assert.equal(0, T:using("primary"):count())
  end)

  it("qs:using('primary') runs the query set on the primary and returns its rows", function()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }; T:create { n = 2 }
    assert.equal(2, T:query():using("primary"):count())
    assert.equal(2, T:filter { n = 2 }:using("primary"):all()[1].n)
    assert.equal(2, T:using("primary"):count())
    helper.raises("misuse", function() return T:query():using("elsewhere") end)
  end)

  it("db:stats() adds primary and replica counts once replicas are named", function()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }
    -- without replicas it is the first part's { queries = N }
    local st = db:stats()
    assert.same({ queries = st.queries }, st)
    -- with them (the primary's own server stands in for a replica; on
    -- SQLite the option does nothing and every statement is the primary's)
    local h = quay.open(helper.url, { replicas = helper.is_pg and { helper.url } or {}, sticky = 0 })
    local T2 = h:model("T", { n = quay.integer() })
    h:create_tables()                    -- (a memory db of its own on SQLite)
    local s0 = h:stats()
    assert.is_number(s0.primary); assert.is_number(s0.replica)
    T2:create { n = 2 }
    assert.equal(s0.primary + 1, h:stats().primary)
    assert.equal(s0.replica, h:stats().replica)
    local s1 = h:stats()
    assert.equal(s1.queries, s1.primary + s1.replica)
    h:close()
  end)
end)

describe("Scale-out on PostgreSQL: routing (the primary's own server as a replica)", function()
  if not helper.is_pg then
    it("runs on PostgreSQL only", function() end)
    return
  end

  local function models(h)
    local T = h:model("T", { n = quay.integer() })
    return T
  end

  it("reads outside a transaction go to a replica; writes, transactions and select_for_update to the primary", function()
    db:model("T", { n = quay.integer() })
    db:create_tables()
    local h = quay.open(helper.url, { replicas = { helper.url }, sticky = 0 })
    local T = models(h)
    T:create { n = 1 }
    local s0 = h:stats()
    assert.equal(1, T:count())
    local s1 = h:stats()
    assert.equal(s0.replica + 1, s1.replica)
    assert.equal(s0.primary, s1.primary)
    h:transaction(function()
      assert.equal(1, T:count())
      assert.equal(1, #T:query():select_for_update():all())
    end)
    local s2 = h:stats()
    assert.equal(s1.replica, s2.replica)
    assert.truthy(s2.primary >= s1.primary + 2)
    assert.equal(1, T:using("primary"):count())
    local s3 = h:stats()
    assert.equal(s2.replica, s3.replica)
    assert.equal(s2.primary + 1, s3.primary)
    assert.equal(s3.queries, s3.primary + s3.replica)
    h:close()
  end)

  it("after a write, reads stay on the primary for sticky seconds", function()
    db:model("T", { n = quay.integer() })
    db:create_tables()
    local h = quay.open(helper.url, { replicas = { helper.url }, sticky = 30 })
    local T = models(h)
    T:count()
    local s0 = h:stats()
    assert.truthy(s0.replica >= 1)
    T:create { n = 1 }
    local s1 = h:stats()
    T:count(); T:all()
    local s2 = h:stats()
    assert.equal(s1.replica, s2.replica)
    assert.equal(s1.primary + 2, s2.primary)
    h:close()
  end)

  it("a replica that cannot be reached is skipped", function()
    db:model("T", { n = quay.integer() })
    db:create_tables()
    local h = quay.open(helper.url, { replicas = { "postgresql://postgres@127.0.0.1:1/none" } })
    local T = models(h)
    T:create { n = 1 }
    assert.equal(1, T:count())
    assert.equal(1, T:count())
    h:close()
  end)
end)
