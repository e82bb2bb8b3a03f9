-- An acceptance sweep of the first part of the public contract
-- (docs/reference.md "Part one"), read as an outsider would: one `it` per
-- claim, asserting the exact shapes, codes and default names the text
-- promises, on both backends.
local helper = require("spec.helper")
local quay = helper.quay

-- The columns of a table in their DDL order.
local function columns(db, tbl)
  local out = {}
  local rows
  if helper.is_pg then
    rows = db:rows("SELECT column_name AS n FROM information_schema.columns " ..
      "WHERE table_schema = current_schema() AND table_name = ? " ..
      "ORDER BY ordinal_position", { tbl })
  else
    rows = db:rows("SELECT name AS n FROM pragma_table_info(?) ORDER BY cid", { tbl })
  end
  for _, r in ipairs(rows) do out[#out + 1] = r.n end
  return out
end

local function has_table(db, tbl)
  local rows
  if helper.is_pg then
    rows = db:rows("SELECT 1 AS x FROM information_schema.tables " ..
      "WHERE table_schema = current_schema() AND table_name = ?", { tbl })
  else
    rows = db:rows("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?",
      { tbl })
  end
  return #rows == 1
end

-- Whether some index of tbl covers col.
local function indexed(db, tbl, col)
  local rows
  if helper.is_pg then
    rows = db:rows("SELECT indexname AS n FROM pg_indexes WHERE tablename = ? " ..
      "AND indexdef LIKE ?", { tbl, "%(" .. col .. "%" })
    if #rows == 0 then
      rows = db:rows("SELECT indexname AS n FROM pg_indexes WHERE tablename = ? " ..
        "AND indexdef LIKE ?", { tbl, "%(\"" .. col .. "\"%" })
    end
  else
    rows = db:rows("SELECT il.name AS n FROM pragma_index_list(?) il, " ..
      "pragma_index_info(il.name) ii WHERE ii.name = ?", { tbl, col })
  end
  return #rows > 0
end

-- The ON UPDATE rule of the foreign key tbl.col in the DDL.
local function fk_update_rule(db, tbl, col)
  local rows
  if helper.is_pg then
    rows = db:rows("SELECT rc.update_rule AS r FROM " ..
      "information_schema.referential_constraints rc JOIN " ..
      "information_schema.key_column_usage k ON k.constraint_name = rc.constraint_name " ..
      "AND k.constraint_schema = rc.constraint_schema " ..
      "WHERE k.table_name = ? AND k.column_name = ?", { tbl, col })
  else
    rows = db:rows("SELECT on_update AS r FROM pragma_foreign_key_list(?) " ..
      "WHERE \"from\" = ?", { tbl, col })
  end
  return rows[1] and rows[1].r
end

local function names(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.name end
  return out
end

local function by_name(list)
  local out = {}
  for _, x in ipairs(list) do out[x.name] = x end
  return out
end

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t
end

local function tmpfile()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function rmdb(path)
  os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
end

-- The blog of the contract's examples, with a nullable editor and a
-- category for NULL conditions.
local function blog(db)
  local M = {}
  M.User = db:model("User", {
    name = quay.string { max = 100 },
    email = quay.string { unique = true, description = "login address" },
  })
  M.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
    bio = quay.text { null = true },
  })
  M.Tag = db:model("Tag", { name = quay.string { unique = true } })
  M.Post = db:model("Post", {
    title = quay.string(),
    views = quay.integer { default = 0 },
    category = quay.string { null = true },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                       related_name = "edited" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  db:create_tables()
  return M
end

-- Three users, each with two posts; alice has a profile.
local function seed(M)
  local d = {}
  d.alice = M.User:create { name = "Alice", email = "alice@a.io" }
  d.bob = M.User:create { name = "Bob", email = "bob@b.io" }
  d.carol = M.User:create { name = "Carol", email = "carol@a.io" }
  M.Profile:create { user = d.alice, bio = "hi" }
  d.lua = M.Tag:create { name = "lua" }
  d.c = M.Tag:create { name = "c" }
  d.p1 = M.Post:create { title = "Lua tips", views = 10, author = d.alice, category = "dev" }
  d.p2 = M.Post:create { title = "C tricks", views = 5, author = d.alice }
  d.p3 = M.Post:create { title = "lunch", views = 1, author = d.bob, category = "food" }
  d.p4 = M.Post:create { title = "Gardening", views = 20, author = d.bob }
  d.p5 = M.Post:create { title = "Art", views = 7, author = d.carol, category = "art" }
  d.p6 = M.Post:create { title = "Zen", views = 3, author = d.carol }
  d.p1.tags:add(d.lua, d.c)
  d.p2.tags:add(d.c)
  d.p3.tags:add(d.lua)
  return d
end

local function titles(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.title end
  return out
end

describe("contract, first part", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() if db:is_open() then db:close() end end)

  ---------------------------------------------------------------- opening
  describe("opening a database", function()
    it("opens a SQLite file, creating it when missing", function()
      local path = tmpfile()
      local d = quay.open("sqlite:" .. path)
      local T = d:model("T", { x = quay.integer() })
      d:create_tables()
      T:create { x = 1 }
      d:close()
      local f = io.open(path, "rb")
      assert.is_not_nil(f)
      f:close()
      local d2 = quay.open("sqlite:" .. path)
      assert.equal(1, d2:rows("SELECT count(*) AS n FROM ts")[1].n)
      d2:close()
      rmdb(path)
    end)

    it("closes at the end of a <close> block", function()
      local inner
      do
        local d <close> = quay.open("sqlite::memory:")
        inner = d
        assert.equal(1, d:rows("SELECT 1 AS one")[1].one)
      end
      helper.raises("connection", inner.rows, inner, "SELECT 1 AS one")
    end)

    it("db:stats() returns { queries = N } counting each statement", function()
      local s = db:stats()
      assert.is_table(s)
      assert.is_number(s.queries)
      assert.equal(math.type(s.queries), "integer")
      db:rows("SELECT 1 AS one")
      db:execute("SELECT 1")
      assert.equal(s.queries + 2, db:stats().queries)
    end)

    it("db:on_query(fn) sees every statement with its params; nil removes it", function()
      local M = blog(db)
      local seen = {}
      db:on_query(function(sql, params)
        seen[#seen + 1] = { sql = sql, params = params }
      end)
      local n = helper.queries(db, function()
        M.User:create { name = "a", email = "a@x" }
        M.User:filter { name = "a" }:count()
        db:rows("SELECT ? AS a, ? AS b", { 7, quay.null })
      end)
      assert.equal(n, #seen)
      local last = seen[#seen]
      assert.is_string(last.sql)
      assert.equal(2, last.params.n)
      assert.equal(7, last.params[1])
      assert.is_nil(last.params[2])
      db:on_query(nil)
      local before = #seen
      M.User:count()
      assert.equal(before, #seen)
    end)
  end)

  ---------------------------------------------------------------- models
  describe("declaring models", function()
    it("a key that is neither a descriptor nor an option is a declaration error", function()
      local err = helper.raises("declaration", db.model, db, "Odd", {
        name = quay.string(), colour = "red",
      })
      helper.mentions(err, "colour")
      err = helper.raises("declaration", db.model, db, "Odd2", {
        name = quay.string(), tabel = "odd",
      })
      helper.mentions(err, "tabel")
    end)

    it("takes the options table, description and unique_together", function()
      local T = db:model("Thing", {
        table = "my_things", description = "a thing",
        unique_together = { { "a", "b" } },
        a = quay.integer(), b = quay.integer(),
      })
      db:create_tables()
      assert.is_true(has_table(db, "my_things"))
      local d = db:describe().Thing
      assert.equal("my_things", d.table)
      assert.equal("a thing", d.description)
      assert.equal("Thing", d.name)
      T:create { a = 1, b = 1 }
      T:create { a = 1, b = 2 }
      helper.raises("integrity", T.create, T, { a = 1, b = 1 })
    end)

    it("default table names: snake_case of the model name plus s", function()
      db:model("User", { x = quay.integer() })
      db:model("PostTag", { x = quay.integer() })
      db:model("HTTPRequest", { x = quay.integer() })
      db:model("MR", { x = quay.integer() })
      db:model("Item2Box", { x = quay.integer() })
      db:create_tables()
      local d = db:describe()
      assert.equal("users", d.User.table)
      assert.equal("post_tags", d.PostTag.table)
      assert.equal("http_requests", d.HTTPRequest.table)
      assert.equal("mrs", d.MR.table)
      for _, t in ipairs { "users", "post_tags", "http_requests", "mrs" } do
        assert.is_true(has_table(db, t), t)
      end
    end)

    it("keeps declaration order in DDL and describe(), implicit id first", function()
      db:model("Wide", {
        zeta = quay.integer(),
        alpha = quay.string(),
        mid = quay.boolean(),
        beta = quay.text(),
        aa = quay.number(),
      })
      db:create_tables()
      local want = { "id", "zeta", "alpha", "mid", "beta", "aa" }
      assert.same(want, names(db:describe().Wide.fields))
      assert.same(want, columns(db, "wides"))
    end)

    it("adds id only when no primary key is declared", function()
      local C = db:model("Code", {
        code = quay.string { primary_key = true, max = 10 },
        label = quay.string(),
      })
      db:create_tables()
      assert.same({ "code", "label" }, columns(db, "codes"))
      local f = db:describe().Code.fields[1]
      assert.equal("code", f.name)
      assert.is_true(f.primary_key)
      local c = C:create { code = "X1", label = "x" }
      assert.equal(c, C:find("X1"))
      local id = db:describe().Wide
      assert.is_nil(id)
    end)

    it("round-trips every field type", function()
      local T = db:model("Every", {
        i = quay.integer(), n = quay.number(), s = quay.string { max = 20 },
        t = quay.text(), b = quay.boolean(), d = quay.datetime(), bl = quay.blob(),
      })
      db:create_tables()
      local blob = "\0\1\2\255 bytes"
      local r = T:create { i = 42, n = 1.5, s = "str", t = "long text", b = true,
                           d = "2024-01-02 03:04:05", bl = blob }
      local g = T:find(r.id)
      assert.equal(42, g.i)
      assert.equal("integer", math.type(g.i))
      assert.equal(1.5, g.n)
      assert.equal("str", g.s)
      assert.equal("long text", g.t)
      assert.equal(true, g.b)
      assert.equal("2024-01-02 03:04:05", g.d)
      assert.equal(blob, g.bl)
      local r2 = T:create { i = 0, n = 0, s = "", t = "", b = false, d = "2000-01-01 00:00:00", bl = "" }
      assert.equal(false, T:find(r2.id).b)
    end)

    it("datetime auto_now_add and auto_now store UTC 'YYYY-MM-DD HH:MM:SS'", function()
      local T = db:model("Stamp", {
        x = quay.integer(),
        created = quay.datetime { auto_now_add = true },
        updated = quay.datetime { auto_now = true },
      })
      db:create_tables()
      local r = T:create { x = 1 }
      local pat = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"
      assert.matches(pat, r.created)
      assert.matches(pat, r.updated)
      local g = T:find(r.id)
      assert.matches(pat, g.created)
      local now = os.date("!%Y-%m-%d %H:%M", os.time())
      local a_min_ago = os.date("!%Y-%m-%d %H:%M", os.time() - 60)
      local got = g.created:sub(1, 16)
      assert.is_true(got == now or got == a_min_ago, got .. " vs " .. now)
    end)

    it("null defaults to false; default may be a value or a function", function()
      local n = 0
      local T = db:model("Dflt", {
        a = quay.integer { default = 7 },
        b = quay.string { default = function() n = n + 1; return "gen" .. n end },
        c = quay.string(),
        d = quay.string { null = true },
      })
      db:create_tables()
      local r = T:create { c = "x" }
      assert.equal(7, r.a)
      assert.equal("gen1", r.b)
      assert.is_nil(r.d)
      assert.equal(7, T:find(r.id).a)
      assert.is_nil(T:find(r.id).d)
      local err = helper.raises("validation", T.create, T, { a = 1 })
      helper.mentions(err, "Dflt", "c")
      err = helper.raises("validation", T.create, T, { c = quay.null })
      helper.mentions(err, "Dflt", "c")
    end)

    it("unique, index and column options reach the schema", function()
      local T = db:model("Opt", {
        nick = quay.string { column = "nick_name", index = true },
        mail = quay.string { unique = true },
        plain = quay.integer(),
      })
      db:create_tables()
      assert.same({ "id", "nick_name", "mail", "plain" }, columns(db, "opts"))
      assert.is_true(indexed(db, "opts", "nick_name"))
      assert.is_false(indexed(db, "opts", "plain"))
      local f = by_name(db:describe().Opt.fields)
      assert.equal("nick_name", f.nick.column)
      assert.equal("nick", f.nick.name)
      assert.is_true(f.mail.unique)
      assert.is_false(f.plain.unique)
      local r = T:create { nick = "n", mail = "m", plain = 1 }
      assert.equal("n", T:find(r.id).nick)
      assert.equal(1, T:filter { nick = "n" }:count())
      helper.raises("integrity", T.create, T, { nick = "o", mail = "m", plain = 2 })
    end)

    it("quay.null writes NULL and matches NULL; NULL reads as nil", function()
      local M = blog(db)
      local u = M.User:create { name = "a", email = "a@x" }
      local p = M.Post:create { title = "t", author = u, category = "x" }
      p.category = quay.null
      p:save()
      assert.is_nil(M.Post:find(p.id).category)
      assert.equal(1, M.Post:filter { category = quay.null }:count())
      M.Post:filter { id = p.id }:update { category = "y" }
      M.Post:filter { id = p.id }:update { category = quay.null }
      assert.is_nil(M.Post:find(p.id).category)
      local rows = db:rows("SELECT category FROM posts")
      assert.is_nil(rows[1].category)
    end)
  end)

  ---------------------------------------------------------------- relations
  describe("relations", function()
    it("resolves targets lazily, in any order, by name, object or self", function()
      local A = db:model("Alpha", {
        b = quay.belongs_to("Beta", { null = true, on_delete = quay.SET_NULL }),
        parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                           related_name = "children" }),
      })
      local B = db:model("Beta", { name = quay.string() })
      local C = db:model("Gamma", { a = quay.belongs_to(A, { on_delete = quay.CASCADE }) })
      db:create_tables()
      local b = B:create { name = "b" }
      local root = A:create { b = b }
      local kid = A:create { b = b, parent = root }
      C:create { a = kid }
      assert.equal("b", kid.b.name)
      assert.equal(root, kid.parent)
      assert.equal(1, #root.children)
      assert.equal(kid, root.children[1])
      assert.equal(1, kid.gamma_set:count())
      -- recursive cascade through self and another model
      assert.same({ Alpha = 2, Gamma = 1 }, root:delete())
    end)

    it("belongs_to: column <name>_id, readable and writable; default reverse <snake>_set", function()
      local U = db:model("User", { name = quay.string() })
      local P = db:model("BlogPost", { owner = quay.belongs_to("User", {}) })
      db:create_tables()
      assert.same({ "id", "owner_id" }, columns(db, "blog_posts"))
      assert.is_true(indexed(db, "blog_posts", "owner_id"))
      local u1, u2 = U:create { name = "a" }, U:create { name = "b" }
      local p = P:create { owner_id = u1.id }
      assert.equal(u1.id, p.owner_id)
      assert.equal(u1, p.owner)
      p.owner_id = u2.id
      p:save()
      assert.equal(u2.id, P:find(p.id).owner_id)
      assert.equal(1, u2.blog_post_set:count())
      assert.equal(0, u1.blog_post_set:count())
      local d = by_name(db:describe().User.relations)
      assert.is_not_nil(d.blog_post_set)
      assert.equal("reverse", d.blog_post_set.kind)
      assert.equal("BlogPost", d.blog_post_set.target)
    end)

    it("belongs_to: column, to_field, index = false, unique", function()
      local U = db:model("Account", { code = quay.string { unique = true }, n = quay.integer { default = 0 } })
      local T = db:model("Txn", {
        acct = quay.belongs_to("Account", { column = "acct_code", to_field = "code",
                                            index = false, on_delete = quay.CASCADE }),
        solo = quay.belongs_to("Account", { null = true, unique = true,
                                            on_delete = quay.SET_NULL,
                                            related_name = "solo_txn" }),
      })
      db:create_tables()
      assert.same({ "id", "acct_code", "solo_id" }, columns(db, "txns"))
      assert.is_false(indexed(db, "txns", "acct_code"))
      local a = U:create { code = "A1" }
      local t = T:create { acct = a }
      assert.equal("A1", t.acct_code)
      assert.equal(a, T:find(t.id).acct)
      T:create { acct = a, solo = a }
      helper.raises("integrity", T.create, T, { acct = a, solo = a })
    end)

    it("on_delete defaults to RESTRICT", function()
      local U = db:model("User", { name = quay.string() })
      local P = db:model("Post", { author = quay.belongs_to("User") })
      db:create_tables()
      assert.equal("RESTRICT", db:describe().Post.relations[1].on_delete)
      local u = U:create { name = "a" }
      P:create { author = u }
      helper.raises("restricted", u.delete, u)
      assert.equal(1, U:count())
    end)

    it("two relations registering one reverse name: declaration naming both", function()
      db:model("Person", { name = quay.string() })
      db:model("Letter", {
        sender = quay.belongs_to("Person", { related_name = "letters" }),
        recipient = quay.belongs_to("Person", { related_name = "letters" }),
      })
      local err = helper.raises("declaration", db.check, db)
      helper.mentions(err, "sender", "recipient")
    end)

    it("two default reverse names clash too; skip_reverse registers none", function()
      db:model("Person", { name = quay.string() })
      db:model("Letter", {
        sender = quay.belongs_to("Person", {}),
        recipient = quay.belongs_to("Person", {}),
      })
      local err = helper.raises("declaration", db.create_tables, db)
      helper.mentions(err, "sender", "recipient")
    end)

    it("skip_reverse = true registers no reverse accessor", function()
      local P = db:model("Person", { name = quay.string() })
      local L = db:model("Letter", {
        sender = quay.belongs_to("Person", { skip_reverse = true }),
        recipient = quay.belongs_to("Person", { on_delete = quay.CASCADE }),
      })
      db:create_tables()
      local p = P:create { name = "p" }
      local l = L:create { sender = p, recipient = p }
      assert.equal(p, l.sender)
      assert.equal(1, p.letter_set:count())
      for _, r in ipairs(db:describe().Person.relations) do
        assert.not_equal("sender", r.name)
      end
      assert.equal(1, #db:describe().Person.relations)
      helper.raises("unknown_field", function() return p.sender end)
    end)

    it("unknown target model: declaration naming model and relation", function()
      db:model("Post", { author = quay.belongs_to("Nobody") })
      local err = helper.raises("declaration", db.create_tables, db)
      helper.mentions(err, "Nobody", "author")
      local d2 = quay.open("sqlite::memory:")
      local P = d2:model("Post", { author = quay.belongs_to("Nobody") })
      err = helper.raises("declaration", P.count, P)
      helper.mentions(err, "Nobody", "author")
      d2:close()
    end)

    it("a rule that cannot hold is a declaration error", function()
      db:model("User", { name = quay.string() })
      local err = helper.raises("declaration", db.model, db, "A", {
        u = quay.belongs_to("User", { on_delete = quay.SET_NULL }),
      })
      helper.mentions(err, "u")
      helper.raises("declaration", db.model, db, "B", {
        u = quay.belongs_to("User", { on_delete = quay.SET_DEFAULT }),
      })
      helper.raises("declaration", db.model, db, "C", {
        u = quay.belongs_to("User", { on_update = quay.SET_NULL }),
      })
      helper.raises("declaration", db.model, db, "D", {
        u = quay.belongs_to("User", { bogus_option = 1 }),
      })
    end)

    it("many_to_many: join table <this_table>_<target_table>, columns, UNIQUE pair", function()
      local P = db:model("BlogPost", {
        title = quay.string(),
        tags = quay.many_to_many("TagItem", {}),
      })
      local T = db:model("TagItem", { name = quay.string() })
      db:create_tables()
      assert.is_true(has_table(db, "blog_posts_tag_items"))
      local cols = {}
      for _, x in ipairs(columns(db, "blog_posts_tag_items")) do
        if x ~= "id" then cols[#cols + 1] = x end
      end
      assert.same({ "blog_post_id", "tag_item_id" }, cols)
      local p = P:create { title = "p" }
      local t = T:create { name = "t" }
      p.tags:add(t)
      helper.raises("integrity", db.execute, db,
        "INSERT INTO blog_posts_tag_items (blog_post_id, tag_item_id) VALUES (?, ?)",
        { p.id, t.id })
      -- default reverse name <model_snake>_set
      assert.equal(1, t.blog_post_set:count())
      assert.equal(p, t.blog_post_set:first())
      local rel = by_name(db:describe().BlogPost.relations).tags
      assert.equal("many_to_many", rel.kind)
      assert.equal("TagItem", rel.target)
      assert.equal("blog_posts_tag_items", rel.through)
      assert.equal("blog_post_set", rel.related_name)
    end)

    it("many_to_many options table, source_key, target_key", function()
      local P = db:model("Post", {
        tags = quay.many_to_many("Tag", { table = "labels", source_key = "p",
                                          target_key = "t", related_name = "posts" }),
      })
      local T = db:model("Tag", { name = quay.string() })
      db:create_tables()
      local c = columns(db, "labels")
      local set = {}
      for _, x in ipairs(c) do set[x] = true end
      assert.is_true(set.p and set.t)
      local p = P:create {}
      local t = T:create { name = "x" }
      p.tags:add(t)
      assert.equal(1, db:rows("SELECT count(*) AS n FROM labels WHERE p = ? AND t = ?",
        { p.id, t.id })[1].n)
      assert.equal(p, t.posts:first())
    end)

    it("self many_to_many: from_/to_ columns, not symmetric", function()
      local U = db:model("User", {
        name = quay.string(),
        follows = quay.many_to_many("self", { related_name = "followers" }),
      })
      db:create_tables()
      assert.is_true(has_table(db, "users_users"))
      local set = {}
      for _, x in ipairs(columns(db, "users_users")) do set[x] = true end
      assert.is_true(set.from_user_id and set.to_user_id)
      local a, b = U:create { name = "a" }, U:create { name = "b" }
      a.follows:add(b)
      assert.equal(1, db:rows("SELECT count(*) AS n FROM users_users " ..
        "WHERE from_user_id = ? AND to_user_id = ?", { a.id, b.id })[1].n)
      assert.equal(1, #a.follows)
      assert.equal(b, a.follows[1])
      assert.equal(0, #b.follows)
      assert.equal(1, #b.followers)
      assert.equal(a, b.followers[1])
      assert.equal(0, #a.followers)
    end)

    it("has_many / has_one with foreign_key and local_key", function()
      local Post = db:model("Post", {
        code = quay.string { unique = true },
        media = quay.has_many("Media", { foreign_key = "post_id" }),
        notes = quay.has_many("Note", { foreign_key = "post_code", local_key = "code" }),
        bio = quay.has_one("Bio", { foreign_key = "owner" }),
      })
      local Media = db:model("Media", { post_id = quay.integer(), name = quay.string() })
      local Note = db:model("Note", { post_code = quay.string() })
      local Bio = db:model("Bio", { owner = quay.integer(), text = quay.text() })
      db:create_tables()
      local p = Post:create { code = "P1" }
      local q = Post:create { code = "P2" }
      Media:create { post_id = p.id, name = "m1" }
      Media:create { post_id = p.id, name = "m2" }
      Media:create { post_id = q.id, name = "m3" }
      Note:create { post_code = "P1" }
      Bio:create { owner = p.id, text = "about" }
      assert.equal(2, #p.media)
      assert.equal(1, p.media:filter { name = "m2" }:count())
      assert.equal(1, #p.notes)
      assert.equal(0, #q.notes)
      assert.equal("about", p.bio.text)
      assert.is_nil(q.bio)
      local r = by_name(db:describe().Post.relations)
      assert.equal("has_many", r.media.kind)
      assert.equal("Media", r.media.target)
      assert.equal("has_one", r.bio.kind)
    end)

    it("quay.through: a set across to-many hops, one record across to-one hops, read-only", function()
      local Course = db:model("Course", {
        name = quay.string(),
        students = quay.through("enrolments", "student"),
      })
      local Student = db:model("Student", {
        name = quay.string(),
        school = quay.belongs_to("School", { on_delete = quay.CASCADE }),
      })
      local School = db:model("School", { name = quay.string() })
      local Enrolment = db:model("Enrolment", {
        course = quay.belongs_to("Course", { on_delete = quay.CASCADE, related_name = "enrolments" }),
        student = quay.belongs_to("Student", { on_delete = quay.CASCADE }),
        school = quay.through("student", "school"),
      })
      db:create_tables()
      local c = Course:create { name = "math" }
      local c2 = Course:create { name = "art" }
      local sch = School:create { name = "north" }
      local school_id = sch.id
      local s1 = Student:create { name = "s1", school_id = school_id }
      local s2 = Student:create { name = "s2", school_id = school_id }
      local e = Enrolment:create { course = c, student = s1 }
      Enrolment:create { course = c, student = s2 }
      Enrolment:create { course = c2, student = s1 }
      assert.equal(2, #c.students)
      assert.equal(1, c.students:filter { name = "s2" }:count())
      assert.equal(1, #c2.students)
      -- all to-one: one record
      local one = e.school
      assert.is_not_nil(one)
      assert.equal(school_id, one.id)
      assert.equal("north", one.name)
      -- read-only
      helper.raises("validation", function() c.students:add(s2) end)
      helper.raises("validation", function() c.students:remove(s1) end)
      helper.raises("validation", function() e.school = nil end)
      helper.raises("validation", function() e.school = sch end)
      helper.raises("validation", function() c.students = {} end)
      helper.raises("validation", function() c.students:create { name = "s3" } end)
      helper.raises("validation", function() c.students:clear() end)
      helper.raises("validation", function() c.students:set { s1 } end)
      assert.equal(2, Student:count())
      assert.equal(3, Enrolment:count())
      local r = by_name(db:describe().Course.relations)
      assert.equal("through", r.students.kind)
      assert.equal("Student", r.students.target)
    end)

    it("quay.through naming an unknown relation raises unknown_relation", function()
      local C = db:model("Course", {
        name = quay.string(),
        students = quay.through("enrolments", "student"),
      })
      local ok, err = pcall(function()
        db:create_tables()
        return #C:create { name = "x" }.students
      end)
      assert.is_false(ok)
      assert.equal("unknown_relation", err.code)
      helper.mentions(err, "enrolments")
    end)
  end)

  ---------------------------------------------------------------- schema
  describe("schema", function()
    it("create_tables is idempotent; drop_tables drops every table and join table", function()
      local M = blog(db)
      db:create_tables()
      M.User:create { name = "a", email = "a@x" }
      db:create_tables()
      assert.equal(1, M.User:count())
      for _, t in ipairs { "users", "posts", "tags", "profiles", "posts_tags" } do
        assert.is_true(has_table(db, t), t)
      end
      db:drop_tables()
      for _, t in ipairs { "users", "posts", "tags", "profiles", "posts_tags" } do
        assert.is_false(has_table(db, t), t)
      end
      db:create_tables()
      assert.equal(0, M.User:count())
    end)

    it("describe(): keyed by model, exact entry shapes and values", function()
      blog(db)
      local d = db:describe()
      local u = d.User
      assert.equal("User", u.name)
      assert.equal("users", u.table)
      assert.same({ "id", "name", "email" }, names(u.fields))
      local f = by_name(u.fields)
      assert.same({ name = "id", column = "id", type = "id", null = false, unique = true,
                    primary_key = true }, (function()
        local x = f.id
        return { name = x.name, column = x.column, type = x.type, null = x.null,
                 unique = x.unique, primary_key = x.primary_key }
      end)())
      assert.equal("string", f.name.type)
      assert.is_false(f.name.null)
      assert.is_false(f.name.unique)
      assert.is_false(f.name.primary_key)
      assert.equal("name", f.name.column)
      assert.is_true(f.email.unique)
      assert.equal("login address", f.email.description)
      local p = d.Post
      assert.same({ "id", "title", "views", "category" },
        (function()
          local out = {}
          for i = 1, 4 do out[i] = p.fields[i].column end
          return out
        end)())
      assert.equal(4, #p.fields)              -- key columns live in relations
      local pf = by_name(p.fields)
      assert.equal("integer", pf.views.type)
      assert.is_true(pf.category.null)
      -- relations: declared, then reverse
      assert.same({ "author", "editor", "tags" }, names(p.relations))
      local r = by_name(p.relations)
      assert.equal("belongs_to", r.author.kind)
      assert.equal("author_id", r.author.column)
      assert.equal("User", r.author.target)
      assert.equal("posts", r.author.related_name)
      assert.equal("CASCADE", r.author.on_delete)
      assert.equal("SET_NULL", r.editor.on_delete)
      assert.equal("many_to_many", r.tags.kind)
      assert.equal("posts_tags", r.tags.through)
      local ur = by_name(u.relations)
      assert.equal("reverse", ur.posts.kind)
      assert.equal("Post", ur.posts.target)
      assert.equal("reverse", ur.edited.kind)
      assert.equal("reverse", ur.profile.kind)
      assert.equal("Profile", ur.profile.target)
      assert.equal("one_to_one", by_name(d.Profile.relations).user.kind)
      assert.equal("reverse", by_name(d.Tag.relations).posts.kind)
      -- fit for JSON: plain tables, no functions or userdata
      local function plain(x)
        if type(x) == "table" then
          assert.is_nil(getmetatable(x))
          for k, v in pairs(x) do
            assert.is_true(type(k) == "string" or math.type(k) == "integer")
            plain(v)
          end
        else
          assert.is_true(type(x) == "string" or type(x) == "number" or type(x) == "boolean")
        end
      end
      plain(d)
    end)

    it("describe(): every type name, every on_delete name, a custom through", function()
      db:model("Every", {
        i = quay.integer(), n = quay.number(), s = quay.string(), t = quay.text(),
        b = quay.boolean(), d = quay.datetime(), bl = quay.blob(),
      })
      db:model("P", { name = quay.string() })
      db:model("Q", {
        a = quay.belongs_to("P", { on_delete = quay.CASCADE, related_name = "qa" }),
        b = quay.belongs_to("P", { null = true, on_delete = quay.SET_NULL, related_name = "qb" }),
        c = quay.belongs_to("P", { default = 1, on_delete = quay.SET_DEFAULT, related_name = "qc" }),
        d = quay.belongs_to("P", { on_delete = quay.RESTRICT, related_name = "qd" }),
        e = quay.belongs_to("P", { on_delete = quay.PROTECT, related_name = "qe" }),
        f = quay.belongs_to("P", { on_delete = quay.NO_ACTION, related_name = "qf" }),
        g = quay.many_to_many("P", { through = "QP", related_name = "qg" }),
      })
      db:model("QP", {
        q = quay.belongs_to("Q", { on_delete = quay.CASCADE }),
        p = quay.belongs_to("P", { on_delete = quay.CASCADE }),
      })
      db:create_tables()
      local d = db:describe()
      local types = {}
      for _, f in ipairs(d.Every.fields) do types[#types + 1] = f.type end
      assert.same({ "id", "integer", "number", "string", "text", "boolean", "datetime", "blob" },
        types)
      local r = by_name(d.Q.relations)
      assert.equal("CASCADE", r.a.on_delete)
      assert.equal("SET_NULL", r.b.on_delete)
      assert.equal("SET_DEFAULT", r.c.on_delete)
      assert.equal("RESTRICT", r.d.on_delete)
      assert.equal("PROTECT", r.e.on_delete)
      assert.equal("NO_ACTION", r.f.on_delete)
      assert.equal("QP", r.g.through)
      assert.equal("many_to_many", r.g.kind)
      assert.equal("P", r.g.target)
    end)
  end)

  ---------------------------------------------------------------- records
  describe("records", function()
    local M, d
    before_each(function()
      M = blog(db)
      d = seed(M)
    end)

    it("create/new/save/find/get/refresh/to_table", function()
      local u = M.User:create { name = "Jane", email = "jane@example.com" }
      local p = M.Post:new { title = "Draft", author = u }
      assert.is_nil(p.id)
      assert.is_nil(M.Post:find(9999))
      p:save()
      assert.equal(p, M.Post:find(p.id))
      assert.equal(u, M.User:get { email = "jane@example.com" })
      helper.raises("not_found", M.User.get, M.User, { email = "none" })
      M.User:create { name = "Jane", email = "j2@x" }
      helper.raises("multiple", M.User.get, M.User, { name = "Jane" })
      db:execute("UPDATE users SET name = ? WHERE id = ?", { "Janet", u.id })
      u:refresh()
      assert.equal("Janet", u.name)
      local t = u:to_table()
      assert.is_nil(getmetatable(t))
      assert.same({ id = u.id, name = "Janet", email = "jane@example.com" }, t)
    end)

    it("records of one model compare equal by primary key", function()
      assert.is_true(M.User:find(d.alice.id) == d.alice)
      assert.is_false(M.User:find(d.bob.id) == d.alice)
      assert.is_true(M.Post:filter { title = "Zen" }:first() == d.p6)
    end)

    it("bulk_create: one transaction, returns records", function()
      local recs = M.Tag:bulk_create { { name = "x1" }, { name = "x2" } }
      assert.equal(2, #recs)
      assert.is_number(recs[1].id)
      assert.equal("x2", M.Tag:find(recs[2].id).name)
      local before = M.Tag:count()
      helper.raises("integrity", M.Tag.bulk_create, M.Tag, { { name = "y1" }, { name = "x1" } })
      assert.equal(before, M.Tag:count())
      assert.equal(0, M.Tag:filter { name = "y1" }:count())
    end)

    it("reading or writing an unknown name raises unknown_field", function()
      local err = helper.raises("unknown_field", function() return d.alice.nickname end)
      helper.mentions(err, "nickname")
      helper.raises("unknown_field", function() d.alice.nickname = "x" end)
      helper.raises("unknown_field", M.User.create, M.User, { name = "z", email = "z@z", nick = 1 })
      helper.raises("unknown_field", M.User.new, M.User, { nick = 1 })
    end)

    it("a value of the wrong type, or missing, raises validation naming model and field", function()
      local err = helper.raises("validation", M.Post.create, M.Post,
        { title = "t", views = "many", author = d.alice })
      helper.mentions(err, "Post", "views")
      err = helper.raises("validation", M.Post.create, M.Post,
        { title = {}, author = d.alice })
      helper.mentions(err, "Post", "title")
      err = helper.raises("validation", M.Post.create, M.Post, { author = d.alice })
      helper.mentions(err, "Post", "title")
      err = helper.raises("validation", function()
        d.p1.title = quay.null
        d.p1:save()
      end)
      helper.mentions(err, "Post", "title")
      assert.equal("Lua tips", M.Post:find(d.p1.id).title)
    end)

    it("string {max} counts code points", function()
      local T = db:model("Short", { s = quay.string { max = 3 } })
      db:create_tables()
      T:create { s = "äöü" }
      assert.equal("äöü", T:first().s)
      local err = helper.raises("validation", T.create, T, { s = "äöüa" })
      helper.mentions(err, "Short", "s")
      helper.raises("validation", T.create, T, { s = "abcd" })
      assert.equal(1, T:count())
    end)

    it("integers are 64-bit on both backends", function()
      local T = db:model("Big", { n = quay.integer() })
      db:create_tables()
      for _, v in ipairs { math.maxinteger, math.mininteger, (1 << 62) + 1, -(1 << 53) - 1 } do
        local r = T:create { n = v }
        local g = T:find(r.id)
        assert.equal(v, g.n)
        assert.equal("integer", math.type(g.n))
        assert.equal(1, T:filter { n = v }:count())
      end
    end)

    it("to-one access: the record or nil, loaded once and kept", function()
      local p = M.Post:find(d.p1.id)
      local n = helper.queries(db, function() assert.equal(d.alice, p.author) end)
      assert.equal(1, n)
      assert.equal(0, helper.queries(db, function() return p.author.name end))
      assert.is_nil(p.editor)
      assert.equal("hi", d.alice.profile.bio)
      assert.is_nil(d.bob.profile)
      assert.equal(d.alice, M.Profile:first().user)
    end)

    it("assigning a record sets the foreign key; nil where nullable", function()
      local p = M.Post:find(d.p1.id)
      p.author = d.bob
      assert.equal(d.bob.id, p.author_id)
      p.editor = d.carol
      assert.equal(d.carol.id, p.editor_id)
      p:save()
      local g = M.Post:find(p.id)
      assert.equal(d.bob, g.author)
      assert.equal(d.carol, g.editor)
      g.editor = nil
      g:save()
      assert.is_nil(M.Post:find(p.id).editor_id)
      helper.raises("validation", function()
        local x = M.Post:find(p.id)
        x.author = nil
        x:save()
      end)
      assert.equal(d.bob.id, M.Post:find(p.id).author_id)
      -- forward one_to_one
      local pr = M.Profile:first()
      pr.user = d.carol
      pr:save()
      assert.equal(d.carol.id, M.Profile:first().user_id)
      assert.is_not_nil(M.User:find(d.carol.id).profile)
    end)

    it("writing the key column is seen by the relation", function()
      local p = M.Post:find(d.p1.id)
      assert.equal(d.alice, p.author)
      p.author_id = d.bob.id
      assert.equal(d.bob, p.author)
    end)

    it("to-many sets: #set, set[i], ipairs, every query-set method", function()
      local u = M.User:find(d.alice.id)
      local s = u.posts
      assert.equal(2, #s)
      local seen = {}
      for i, p in ipairs(s) do seen[i] = p end
      assert.equal(2, #seen)
      assert.equal(s[1], seen[1])
      assert.equal(s[2], seen[2])
      assert.is_nil(s[3])
      assert.equal(1, s:filter { views__gt = 6 }:count())
      assert.equal("C tricks", s:order_by("views"):first().title)
      assert.equal(2, s:count())
      assert.is_true(s:exists())
      assert.same({ "C tricks", "Lua tips" }, sorted(s:pluck("title")))
      assert.equal(2, #d.c.posts)
      assert.equal(2, #d.p1.tags)
      assert.equal(0, #d.carol.edited)
    end)

    it("lazy loads are batched: one query per relation for a whole result", function()
      local posts = M.Post:all()
      assert.equal(6, #posts)
      local n = helper.queries(db, function()
        for _, p in ipairs(posts) do assert.is_not_nil(p.author.name) end
      end)
      assert.equal(1, n)
      n = helper.queries(db, function()
        for _, p in ipairs(posts) do local _ = #p.tags end
      end)
      assert.equal(1, n)
      local users = M.User:order_by("id"):all()
      n = helper.queries(db, function()
        for _, u in ipairs(users) do local _ = #u.posts end
      end)
      assert.equal(1, n)
      n = helper.queries(db, function()
        for _, u in ipairs(users) do local _ = u.profile end
      end)
      assert.equal(1, n)
    end)

    it("batched lazy loads along a chain: one query per hop", function()
      local posts = M.Post:all()
      local n = helper.queries(db, function()
        for _, p in ipairs(posts) do local _ = p.author.profile end
      end)
      assert.equal(2, n)
      local tags = M.Tag:all()
      n = helper.queries(db, function()
        for _, t in ipairs(tags) do
          for _, p in ipairs(t.posts) do local _ = p.author.name end
        end
      end)
      assert.equal(2, n)
    end)

    it("reverse-FK sets: create, add, remove (nullable only)", function()
      local u = M.User:find(d.carol.id)
      local p = u.posts:create { title = "new" }
      assert.equal(d.carol.id, p.author_id)
      assert.equal(3, u.posts:count())
      d.bob.edited:add(d.p1, d.p2)
      assert.equal(d.bob.id, M.Post:find(d.p1.id).editor_id)
      assert.equal(2, d.bob.edited:count())
      d.bob.edited:remove(d.p1)
      assert.is_nil(M.Post:find(d.p1.id).editor_id)
      assert.equal(d.bob.id, M.Post:find(d.p2.id).editor_id)
      d.bob.posts:add(p)
      assert.equal(d.bob.id, M.Post:find(p.id).author_id)
      local err = helper.raises("validation", function() d.bob.posts:remove(p) end)
      helper.mentions(err, "author")
      assert.equal(d.bob.id, M.Post:find(p.id).author_id)
    end)

    it("many-to-many sets: add (idempotent), remove, clear, set, contains", function()
      local t3 = M.Tag:create { name = "sql" }
      local p = M.Post:find(d.p4.id)
      p.tags:add(d.lua, t3)
      p.tags:add(d.lua)
      assert.equal(2, p.tags:count())
      assert.is_true(p.tags:contains(d.lua))
      assert.is_false(p.tags:contains(d.c))
      p.tags:remove(d.lua)
      assert.same({ "sql" }, M.Post:find(p.id).tags:pluck("name"))
      p.tags:set { d.c, d.lua }
      assert.same({ "c", "lua" }, sorted(M.Post:find(p.id).tags:pluck("name")))
      p.tags:clear()
      assert.equal(0, M.Post:find(p.id).tags:count())
      -- the reverse side
      d.lua.posts:add(p)
      assert.is_true(M.Post:find(p.id).tags:contains(d.lua))
      assert.equal(3, #M.Tag:find(d.lua.id).posts)
    end)

    it("a custom through model: through_values, rec.pivot, pivot__ in filter/order_by", function()
      local S = db:model("Song", {
        title = quay.string(),
        genres = quay.many_to_many("Genre", { through = "SongGenre", related_name = "songs" }),
      })
      local G = db:model("Genre", { name = quay.string() })
      local SG = db:model("SongGenre", {
        song = quay.belongs_to("Song", { on_delete = quay.CASCADE }),
        genre = quay.belongs_to("Genre", { on_delete = quay.CASCADE }),
        weight = quay.integer { default = 0 },
      })
      db:create_tables()
      local s = S:create { title = "s" }
      local g1, g2, g3 = G:create { name = "a" }, G:create { name = "b" }, G:create { name = "c" }
      s.genres:add(g1, { weight = 5 })
      s.genres:add(g2, g3, { weight = 1 })
      assert.equal(3, SG:count())
      local got = S:find(s.id).genres:order_by("-pivot__weight", "name"):all()
      assert.same({ "a", "b", "c" }, (function()
        local o = {}
        for i, g in ipairs(got) do o[i] = g.name end
        return o
      end)())
      assert.equal(5, got[1].pivot.weight)
      assert.equal(1, got[2].pivot.weight)
      assert.equal(s.id, got[1].pivot.song_id)
      assert.equal(1, S:find(s.id).genres:filter { pivot__weight__gt = 3 }:count())
      assert.equal("a", S:find(s.id).genres:filter { pivot__weight__gt = 3 }:first().name)
      for _, g in ipairs(S:find(s.id).genres) do assert.is_not_nil(g.pivot) end
      assert.equal(1, #g1.songs)
      s.genres:add(g1, { weight = 9 })
      assert.equal(3, SG:count())
    end)
  end)

  ---------------------------------------------------------------- query sets
  describe("query sets", function()
    local M, d
    before_each(function()
      M = blog(db)
      d = seed(M)
    end)

    it("are immutable: every chained call returns a new set, nothing runs early", function()
      local n = helper.queries(db, function()
        local q = M.Post:query()
        local q2 = q:filter { views__gt = 4 }
        local q3 = q2:order_by("-views"):limit(2)
        assert.is_true(rawequal(q, q) and not rawequal(q, q2) and not rawequal(q2, q3))
      end)
      assert.equal(0, n)
      local q = M.Post:query()
      local q2 = q:filter { views__gt = 4 }
      q2:order_by("-views"):limit(1)
      assert.equal(6, q:count())
      assert.equal(4, q2:count())
      assert.equal(4, #q2:all())
    end)

    it("model-level starters", function()
      assert.equal(6, #M.Post:query():all())
      assert.equal(6, #M.Post:all())
      assert.equal(6, M.Post:count())
      assert.equal(2, M.Post:filter { author = d.alice }:count())
      assert.equal(4, M.Post:exclude { author = d.alice }:count())
      assert.equal(2, M.User:where_has("profile"):count() + 1)
      assert.equal("Gardening", M.Post:order_by("-views"):first().title)
      assert.is_not_nil(M.Post:first())
      assert.equal(6, #M.Post:with("author"):all())
      assert.equal(6, #M.Post:select_related("author"):all())
      assert.equal(3, #M.User:prefetch_related("posts"):all())
    end)

    it("where_has / where_doesnt_have with conds or a function", function()
      assert.same({ "Alice", "Bob" }, sorted(M.User:where_has("posts", { views__gt = 9 }):pluck("name")))
      assert.same({ "Alice", "Bob" }, sorted(M.User:where_has("posts", function(qs)
        return qs:filter { views__gte = 10 }
      end):pluck("name")))
      assert.same({ "Carol" }, M.User:where_doesnt_have("posts", { views__gt = 9 }):pluck("name"))
      assert.same({ "Bob", "Carol" }, sorted(M.User:where_doesnt_have("profile"):pluck("name")))
      assert.same({ "Gardening", "Art", "Zen" },
        (function()
          local o = {}
          for i, p in ipairs(M.Post:where_doesnt_have("tags"):order_by("-views"):all()) do
            o[i] = p.title
          end
          return o
        end)())
      assert.equal(3, M.Post:where_has("tags"):count())
    end)

    it("order_by with - and across a relation; limit and offset", function()
      assert.same({ "Gardening", "Lua tips", "Art", "C tricks", "Zen", "lunch" },
        titles(M.Post:order_by("-views"):all()))
      assert.same({ "C tricks", "Lua tips", "lunch", "Gardening", "Zen", "Art" },
        titles(M.Post:order_by("author__name", "views"):all()))
      assert.same({ "Art", "C tricks" }, titles(M.Post:order_by("-views"):offset(2):limit(2):all()))
      assert.same({ "Art", "C tricks" }, titles(M.Post:order_by("-views"):limit(2):offset(2):all()))
      assert.same({ "Lua tips" }, titles(M.Post:order_by("-views"):offset(1):limit(1):all()))
    end)

    it("select_related JOINs: one query, the relation is loaded", function()
      local posts
      local n = helper.queries(db, function()
        posts = M.Post:select_related("author", "author__profile"):order_by("id"):all()
        for _, p in ipairs(posts) do local _ = p.author.name; local _ = p.author.profile end
      end)
      assert.equal(1, n)
      assert.equal("hi", posts[1].author.profile.bio)
      assert.is_nil(posts[3].author.profile)
    end)

    it("prefetch_related: one batched query per level, nested paths imply the prefix", function()
      local users
      local n = helper.queries(db, function()
        users = M.User:prefetch_related("posts__tags"):order_by("id"):all()
      end)
      assert.equal(3, n)
      n = helper.queries(db, function()
        for _, u in ipairs(users) do
          for _, p in ipairs(u.posts) do local _ = #p.tags end
        end
      end)
      assert.equal(0, n)
      assert.equal(2, #users[1].posts)
      n = helper.queries(db, function()
        M.User:prefetch_related("posts", "posts__tags", "profile"):all()
      end)
      assert.equal(4, n)
    end)

    it("with(): the engine picks JOIN or batch; nothing loads lazily afterwards", function()
      local posts = M.Post:with("author", "tags"):all()
      local n = helper.queries(db, function()
        for _, p in ipairs(posts) do local _ = p.author.name; local _ = #p.tags end
      end)
      assert.equal(0, n)
    end)

    it("with_count adds rec.<rel>_count", function()
      local users = M.User:with_count("posts"):order_by("id"):all()
      assert.equal(2, users[1].posts_count)
      local tags = M.Tag:with_count("posts"):order_by("name"):all()
      assert.equal(2, tags[1].posts_count) -- c
      assert.equal(2, tags[2].posts_count) -- lua
      M.Tag:create { name = "none" }
      assert.equal(0, M.Tag:with_count("posts"):get { name = "none" }.posts_count)
    end)

    it("terminals: all, first, get, count, exists, iter, pluck, update, delete", function()
      local q = M.Post:filter { author = d.alice }
      assert.equal(2, #q:all())
      assert.is_nil(M.Post:filter { views = 999 }:first())
      assert.equal(d.p2, q:get { views = 5 })
      helper.raises("multiple", q.get, q)
      helper.raises("not_found", q.get, q, { views = 999 })
      assert.equal(d.p1, M.Post:filter { views = 10 }:get())
      assert.is_true(q:exists())
      assert.is_false(M.Post:filter { views = 999 }:exists())
      local n = 0
      for rec in M.Post:order_by("id"):iter() do
        n = n + 1
        assert.is_string(rec.title)
      end
      assert.equal(6, n)
      assert.same({ 5, 10 }, M.Post:filter { author = d.alice }:order_by("views"):pluck("views"))
      assert.equal(2, q:update { views = 0 })
      assert.equal(0, M.Post:filter { views = 999 }:update { views = 1 })
      assert.equal(2, M.Post:filter { views = 0 }:count())
      local counts = M.Post:filter { author = d.carol }:delete()
      assert.same({ Post = 2 }, counts)
    end)

    it("qs:sql() returns two values: the SQL and an array of parameters", function()
      local sql, params = M.Post:filter { title = "x", views__gt = 3 }:sql()
      assert.is_string(sql)
      assert.is_table(params)
      assert.equal(2, #params)
      local set = { [params[1]] = true, [params[2]] = true }
      assert.is_true(set.x and set[3])
      if helper.is_pg then
        assert.truthy(sql:find("$1", 1, true))
        assert.truthy(sql:find("$2", 1, true))
        assert.falsy(sql:find("?", 1, true))
      else
        assert.truthy(sql:find("?", 1, true))
        assert.falsy(sql:find("$1", 1, true))
      end
      local sql2, p2 = M.Post:query():sql()
      assert.is_string(sql2)
      assert.same({}, p2)
      assert.equal(2, select("#", M.Post:query():sql()))
    end)

    it("every lookup", function()
      local function t(c) return sorted(M.Post:filter(c):pluck("title")) end
      assert.same({ "Lua tips" }, t { title = "Lua tips" })
      assert.same({ "Lua tips" }, t { title__eq = "Lua tips" })
      assert.equal(5, #t { title__ne = "Lua tips" })
      assert.same({ "Zen", "lunch" }, t { views__lt = 5 })
      assert.same({ "C tricks", "Zen", "lunch" }, t { views__lte = 5 })
      assert.same({ "Gardening" }, t { views__gt = 10 })
      assert.same({ "Gardening", "Lua tips" }, t { views__gte = 10 })
      assert.same({ "Art", "Zen" }, t { views__in = { 3, 7 } })
      assert.equal(4, #t { views__not_in = { 3, 7 } })
      assert.same({ "Lua tips" }, t { title__contains = "tip" })
      assert.same({}, t { title__contains = "TIP" })
      assert.same({ "Lua tips" }, t { title__icontains = "TIP" })
      assert.same({ "Lua tips", "lunch" }, t { title__icontains = "lu" })
      assert.same({ "lunch" }, t { title__startswith = "lu" })
      assert.same({}, t { title__startswith = "LU" })
      assert.same({ "C tricks", "Lua tips" }, t { title__endswith = "s" })
      assert.same({}, t { title__endswith = "S" })
      assert.same({ "C tricks", "Gardening", "Zen" }, t { category__isnull = true })
      assert.equal(3, #t { category__isnull = false })
      assert.same({ "Art", "C tricks", "Lua tips" }, t { views__between = { 5, 10 } })
      assert.same({}, t { views__in = {} })
      assert.equal(6, #t { views__not_in = {} })
      assert.same({ "C tricks", "Gardening", "Zen" }, t { category = quay.null })
    end)

    it("LIKE metacharacters are matched literally", function()
      M.Post:create { title = "100%_done", author = d.alice }
      local function t(c) return sorted(M.Post:filter(c):pluck("title")) end
      assert.same({ "100%_done" }, t { title__contains = "%_" })
      assert.same({}, t { title__contains = "0_" })
      assert.same({ "100%_done" }, t { title__startswith = "100%" })
    end)

    it("paths across relations, quay.any, keys ANDed", function()
      local function t(c) return sorted(M.Post:filter(c):pluck("title")) end
      assert.same({ "Art", "C tricks", "Lua tips", "Zen" },
        t { author__email__endswith = "@a.io" })
      assert.same({ "C tricks", "Lua tips", "lunch" }, t { tags__name__in = { "lua", "c" } })
      assert.same({ "Lua tips" }, t { tags__name__in = { "lua", "c" }, views__gt = 5 })
      assert.same({ "Gardening", "lunch" }, t { author = d.bob })
      assert.same({ "Lua tips", "Zen" }, t(quay.any { { views = 10 }, { title = "Zen" } }))
      assert.same({ "Zen" }, t { quay.any { { views = 10 }, { title = "Zen" } }, author = d.carol })
      assert.same({ "Lua tips" }, t { author__profile__bio = "hi", views = 10 })
      assert.same({ "Alice" }, M.User:filter { posts__tags__name = "lua", posts__views = 10 }:pluck("name"))
    end)

    it("exclude accepts quay.any as a whole argument; keeps NULL rows", function()
      local function t(q) return sorted(q:pluck("title")) end
      assert.same({ "C tricks", "Gardening", "Lua tips", "Zen", "lunch" },
        t(M.Post:exclude { category = "art" }))
      assert.same({ "C tricks", "Gardening", "Lua tips", "Zen" },
        t(M.Post:exclude(quay.any { { category = "art" }, { category = "food" } })))
      assert.same({ "Art", "C tricks", "Gardening", "Lua tips", "Zen", "lunch" },
        t(M.Post:exclude { category__ne = "zzz", views = 999 }))
      assert.equal(6, M.Post:exclude { views__in = {} }:count())
      assert.equal(0, M.Post:exclude { views__not_in = {} }:count())
    end)

    it("a to-many condition never duplicates owners; one table means one related row", function()
      assert.equal(2, M.User:filter { posts__views__gt = 0, name__ne = "Carol" }:count())
      assert.equal(2, #M.User:filter { posts__views__gt = 0, name__ne = "Carol" }:all())
      assert.equal(1, M.Post:filter { tags__name__in = { "lua", "c" }, title = "Lua tips" }:count())
      assert.same({ "Alice", "Bob" }, sorted(M.User:filter { posts__views__gt = 0, name__ne = "Carol" }:pluck("name")))
      -- same related row: no post of Alice's has views 10 and title "C tricks"
      assert.equal(0, M.User:filter { posts__views = 10, posts__title = "C tricks" }:count())
      assert.equal(1, M.User:filter { posts__views = 10, posts__title = "Lua tips" }:count())
      -- but separate filter calls may use different rows
      assert.equal(1, M.User:filter { posts__views = 10 }:filter { posts__title = "C tricks" }:count())
    end)

    it("quay.prefetch: the prefetched set is iterated without a query, in its order", function()
      local users = M.User:prefetch_related(
        quay.prefetch("posts", M.Post:filter { views__gt = 4 }:order_by("-views"))
      ):order_by("id"):all()
      local got
      local n = helper.queries(db, function()
        got = {}
        for i, p in ipairs(users[1].posts) do got[i] = p.title end
        got.n = #users[2].posts
      end)
      assert.equal(0, n)
      assert.same({ "Lua tips", "C tricks", n = 1 }, got)
      assert.equal(1, #users[3].posts)
    end)

    it("quay.prefetch with to: the set lands in rec.<to>, the relation is untouched", function()
      local users = M.User:prefetch_related(
        quay.prefetch("posts", M.Post:filter { views__gt = 9 }, { to = "hits" })
      ):order_by("id"):all()
      local n = helper.queries(db, function()
        assert.same({ "Lua tips" }, titles(users[1].hits))
        assert.same({}, titles(users[3].hits))
      end)
      assert.equal(0, n)
      assert.equal(2, #users[1].posts)
      -- on the owner of the last hop
      local tags = M.Tag:prefetch_related(
        quay.prefetch("posts__author", M.User:filter { name = "Alice" }, { to = "alice" })
      ):order_by("name"):all()
      assert.equal(2, #tags[1].posts)
      for _, p in ipairs(tags[1].posts) do
        assert.is_table(p.alice)
      end
    end)

    it("quay.prefetch honours prefetches inside its query set", function()
      local users
      local n = helper.queries(db, function()
        users = M.User:prefetch_related(
          quay.prefetch("posts", M.Post:order_by("id"):prefetch_related("tags"))
        ):order_by("id"):all()
        for _, u in ipairs(users) do
          for _, p in ipairs(u.posts) do local _ = #p.tags end
        end
      end)
      assert.equal(3, n)
      assert.equal(2, #users[1].posts[1].tags)
    end)

    it("a level JOINed by select_related is not fetched again", function()
      local n = helper.queries(db, function()
        local posts = M.Post:select_related("author"):prefetch_related("author__posts"):all()
        for _, p in ipairs(posts) do local _ = #p.author.posts end
      end)
      assert.equal(2, n)
    end)
  end)

  ---------------------------------------------------------------- names
  describe("errors for names", function()
    local M, d
    before_each(function()
      M = blog(db)
      d = seed(M)
    end)

    it("unknown names in filter, exclude, order_by, pluck, update: unknown_field", function()
      local e = helper.raises("unknown_field", function() return M.Post:filter { nope = 1 }:all() end)
      helper.mentions(e, "nope")
      helper.raises("unknown_field", function() return M.Post:exclude { nope = 1 }:all() end)
      helper.raises("unknown_field", function() return M.Post:order_by("nope"):all() end)
      helper.raises("unknown_field", function() return M.Post:order_by("-nope"):all() end)
      helper.raises("unknown_field", function() return M.Post:pluck("nope") end)
      helper.raises("unknown_field", function() return M.Post:update { nope = 1 } end)
      helper.raises("unknown_field", function() return M.Post:filter { nope__gt = 1 }:all() end)
      e = helper.raises("unknown_field", function()
        return M.Post:filter { author__nickname = "x" }:all()
      end)
      helper.mentions(e, "nickname")
      helper.raises("unknown_field", function()
        return M.Post:order_by("author__nickname"):all()
      end)
    end)

    it("unknown relations in loading calls and where_has: unknown_relation", function()
      local function raise(f) helper.raises("unknown_relation", f) end
      raise(function() return M.Post:select_related("nope"):all() end)
      raise(function() return M.Post:prefetch_related("nope"):all() end)
      raise(function() return M.Post:prefetch_related("author__nope"):all() end)
      raise(function() return M.Post:with("nope"):all() end)
      raise(function() return M.User:with_count("nope"):all() end)
      raise(function() return M.User:where_has("nope"):all() end)
      raise(function() return M.User:where_doesnt_have("nope"):all() end)
      raise(function() return M.User:prefetch_related(quay.prefetch("nope", M.Post:query())):all() end)
      local e = helper.raises("unknown_relation", function() return M.Post:with("nope"):all() end)
      helper.mentions(e, "nope")
    end)

    it("bad lookups: unknown suffix, unfit lookup, select_related of to-many", function()
      local function bad(c) helper.raises("bad_lookup", function() return M.Post:filter(c):all() end) end
      bad { title__foo = "x" }
      bad { views__contains = "1" }
      bad { views__icontains = "1" }
      bad { views__startswith = "1" }
      bad { views__between = { 1 } }
      bad { views__between = { 1, 2, 3 } }
      bad { views__between = 3 }
      bad { views__in = 3 }
      bad { views__not_in = "x" }
      bad { author__name__foo = "x" }
      local e = helper.raises("bad_lookup", function() return M.Post:filter { title__foo = "x" }:all() end)
      helper.mentions(e, "foo")
      helper.raises("bad_lookup", function() return M.User:select_related("posts"):all() end)
      helper.raises("bad_lookup", function() return M.Post:select_related("tags"):all() end)
      helper.raises("bad_lookup", function() return M.Post:exclude { title__foo = "x" }:all() end)
      local _ = d
    end)
  end)

  ---------------------------------------------------------------- deleting
  describe("deleting and cascades", function()
    local M, d
    before_each(function()
      M = blog(db)
      d = seed(M)
    end)

    it("counts per model, join tables by table name, zero entries left out", function()
      assert.same({ Post = 1, posts_tags = 2 }, d.p1:delete())
      assert.same({ Tag = 1, posts_tags = 1 }, d.lua:delete())
      assert.same({ Post = 1 }, d.p6:delete())
      -- SET_NULL updates are not counted
      d.p4.editor = d.carol
      d.p4:save()
      local counts = d.carol:delete()
      assert.same({ User = 1, Post = 1 }, counts)
      assert.is_nil(M.Post:find(d.p4.id).editor_id)
      assert.same({ User = 1, Profile = 1, Post = 1, posts_tags = 1 }, d.alice:delete())
    end)

    it("qs:delete cascades and counts", function()
      assert.same({ User = 2, Profile = 1, Post = 4, posts_tags = 4 },
        M.User:filter { name__in = { "Alice", "Bob" } }:delete())
      assert.equal(0, db:rows("SELECT count(*) AS n FROM posts_tags")[1].n)
      assert.same({}, M.User:filter { name = "nobody" }:delete())
    end)

    it("SET_DEFAULT sets the declared default (a key or a record)", function()
      local U = db:model("Owner", { name = quay.string() })
      local fallback = nil
      db:create_tables()
      fallback = U:create { name = "fallback" }
      local T = db:model("Thing", {
        owner = quay.belongs_to("Owner", { default = fallback, on_delete = quay.SET_DEFAULT }),
        other = quay.belongs_to("Owner", { default = fallback.id, on_delete = quay.SET_DEFAULT,
                                           related_name = "others" }),
      })
      db:create_tables()
      local o = U:create { name = "o" }
      local t = T:create { owner = o, other = o }
      local t2 = T:create {}
      assert.equal(fallback.id, t2.owner_id)
      assert.equal(fallback.id, t2.other_id)
      assert.same({ Owner = 1 }, o:delete())
      local g = T:find(t.id)
      assert.equal(fallback.id, g.owner_id)
      assert.equal(fallback.id, g.other_id)
    end)

    it("PROTECT refuses with protected listing the blockers; nothing changes", function()
      local A = db:model("Author", { name = quay.string() })
      local B = db:model("Book", {
        author = quay.belongs_to("Author", { on_delete = quay.PROTECT }),
        title = quay.string(),
      })
      db:create_tables()
      local a = A:create { name = "a" }
      B:create { author = a, title = "b" }
      local e = helper.raises("protected", a.delete, a)
      helper.mentions(e, "Book")
      helper.raises("protected", function() return A:query():delete() end)
      helper.raises("protected", a.delete, a, { dry_run = true })
      assert.equal(1, A:count())
      assert.equal(1, B:count())
    end)

    it("RESTRICT refuses unless every blocker is deleted by the same call's cascade", function()
      local Rev = db:model("Review", {
        post = quay.belongs_to("Post", { on_delete = quay.RESTRICT }),
        by = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "reviews" }),
      })
      db:create_tables()
      local r = Rev:create { post = d.p3, by = d.bob }   -- Bob reviews his own post
      local e = helper.raises("restricted", d.p3.delete, d.p3)
      helper.mentions(e, "Review")
      assert.equal(6, M.Post:count())
      -- deleting Bob cascades to the post and to the review: allowed
      local counts = d.bob:delete()
      assert.same({ User = 1, Post = 2, Review = 1, posts_tags = 1 }, counts)
      assert.is_nil(Rev:find(r.id))
      -- Carol reviews Alice's post: deleting Alice is restricted, nothing changes
      Rev:create { post = d.p1, by = d.carol }
      local before = db:stats().queries
      helper.raises("restricted", d.alice.delete, d.alice)
      assert.is_true(db:stats().queries > before)
      assert.equal(2, M.User:count())
      assert.equal(4, M.Post:count())
      assert.equal(3, db:rows("SELECT count(*) AS n FROM posts_tags")[1].n)
      assert.equal(1, M.Profile:count())
      helper.raises("restricted", d.alice.delete, d.alice, { dry_run = true })
      -- deleting both in one call: allowed
      assert.same({ User = 2, Profile = 1, Post = 4, Review = 1, posts_tags = 3 },
        M.User:query():delete())
    end)

    it("NO_ACTION leaves it to the database: integrity, nothing changed", function()
      local A = db:model("Author", { name = quay.string() })
      local B = db:model("Book", {
        author = quay.belongs_to("Author", { on_delete = quay.NO_ACTION }),
      })
      db:create_tables()
      local a = A:create { name = "a" }
      B:create { author = a }
      helper.raises("integrity", a.delete, a)
      assert.equal(1, A:count())
      assert.equal(1, B:count())
      local a2 = A:create { name = "free" }
      assert.same({ Author = 1 }, a2:delete())
    end)

    it("dry_run returns the same counts and changes nothing", function()
      local q0 = db:rows("SELECT count(*) AS n FROM posts_tags")[1].n
      local dry = d.alice:delete { dry_run = true }
      assert.same({ User = 1, Profile = 1, Post = 2, posts_tags = 3 }, dry)
      assert.equal(3, M.User:count())
      assert.equal(6, M.Post:count())
      assert.equal(q0, db:rows("SELECT count(*) AS n FROM posts_tags")[1].n)
      assert.same(dry, d.alice:delete())
    end)

    it("an error part-way changes nothing", function()
      local A = db:model("Author", { name = quay.string() })
      local B = db:model("Book", {
        author = quay.belongs_to("Author", { on_delete = quay.CASCADE }),
      })
      local C = db:model("Chapter", {
        book = quay.belongs_to("Book", { on_delete = quay.CASCADE }),
        note = quay.belongs_to("Note", { on_delete = quay.CASCADE }),
      })
      local N = db:model("Note", { x = quay.integer() })
      local L = db:model("Link", { chapter = quay.belongs_to("Chapter", { on_delete = quay.PROTECT }) })
      db:create_tables()
      local a = A:create { name = "a" }
      local b = B:create { author = a }
      local n = N:create { x = 1 }
      local c = C:create { book = b, note = n }
      L:create { chapter = c }
      helper.raises("protected", a.delete, a)
      assert.equal(1, A:count()); assert.equal(1, B:count()); assert.equal(1, C:count())
    end)

    it("join rows go with either side; a custom through follows its own rules", function()
      assert.same({ Tag = 1, posts_tags = 2 }, d.c:delete())
      local S = db:model("Song", {
        genres = quay.many_to_many("Genre", { through = "SongGenre" }),
      })
      local G = db:model("Genre", { name = quay.string() })
      db:model("SongGenre", {
        song = quay.belongs_to("Song", { on_delete = quay.CASCADE }),
        genre = quay.belongs_to("Genre"),       -- RESTRICT
      })
      db:create_tables()
      local s = S:create {}
      local g = G:create { name = "g" }
      s.genres:add(g)
      helper.raises("restricted", g.delete, g)
      assert.same({ Song = 1, SongGenre = 1 }, s:delete())
      assert.same({ Genre = 1 }, g:delete())
    end)
  end)

  ---------------------------------------------------------------- on_update
  describe("on_update", function()
    local C, City
    local function models(rule)
      C = db:model("Country", { code = quay.string { unique = true }, name = quay.string() })
      City = db:model("City", {
        country = quay.belongs_to("Country", { to_field = "code", null = true,
                                                on_delete = quay.CASCADE, on_update = rule }),
      })
      db:create_tables()
    end

    it("defaults to CASCADE: save and qs:update rewrite the dependents' keys", function()
      models(nil)
      assert.equal("CASCADE", fk_update_rule(db, "citys", "country_id"))
      local c = C:create { code = "AA", name = "a" }
      local city = City:create { country = c }
      c.code = "BB"
      c:save()
      assert.equal("BB", City:find(city.id).country_id)
      assert.equal(1, C:filter { code = "BB" }:update { code = "CC" })
      assert.equal("CC", City:find(city.id).country_id)
      assert.equal(c.id, City:find(city.id).country.id)
    end)

    it("SET_NULL nulls the dependents' keys", function()
      models(quay.SET_NULL)
      assert.equal("SET NULL", fk_update_rule(db, "citys", "country_id"))
      local c = C:create { code = "AA", name = "a" }
      local city = City:create { country = c }
      c.code = "BB"
      c:save()
      assert.is_nil(City:find(city.id).country_id)
    end)

    it("PROTECT and RESTRICT refuse; nothing changes", function()
      models(quay.PROTECT)
      local c = C:create { code = "AA", name = "a" }
      City:create { country = c }
      c.code = "BB"
      helper.raises("protected", c.save, c)
      assert.equal(1, C:filter { code = "AA" }:count())
      helper.raises("protected", function() return C:query():update { code = "ZZ" } end)
      assert.equal(1, C:filter { code = "AA" }:count())
      -- renaming something else is fine
      assert.equal(1, C:query():update { name = "b" })
    end)

    it("RESTRICT refuses with restricted", function()
      models(quay.RESTRICT)
      assert.equal("RESTRICT", fk_update_rule(db, "citys", "country_id"))
      local c = C:create { code = "AA", name = "a" }
      City:create { country = c }
      helper.raises("restricted", function() return C:query():update { code = "ZZ" } end)
      assert.equal(1, C:filter { code = "AA" }:count())
    end)
  end)

  ---------------------------------------------------------------- txns
  describe("transactions and raw SQL", function()
    local M
    before_each(function() M = blog(db) end)

    it("transaction returns fn's results and passes the db", function()
      local a, b, c = db:transaction(function(x)
        assert.equal(db, x)
        M.User:create { name = "t", email = "t@x" }
        return 1, "two", nil
      end)
      assert.equal(1, a)
      assert.equal("two", b)
      assert.is_nil(c)
      assert.equal(1, M.User:count())
    end)

    it("an error rolls back and is raised again (the same value)", function()
      local mine = { code = "mine" }
      local ok, err = pcall(db.transaction, db, function()
        M.User:create { name = "t", email = "t@x" }
        error(mine)
      end)
      assert.is_false(ok)
      assert.is_true(rawequal(mine, err))
      assert.equal(0, M.User:count())
      M.User:create { name = "a", email = "a@x" }
      local e = helper.raises("integrity", db.transaction, db, function()
        M.User:create { name = "b", email = "b@x" }
        M.User:create { name = "dup", email = "a@x" }
      end)
      assert.is_string(e.message)
      assert.equal(1, M.User:count())
    end)

    it("nested calls use savepoints", function()
      db:transaction(function()
        M.User:create { name = "outer", email = "o@x" }
        local ok = pcall(db.transaction, db, function()
          M.User:create { name = "inner", email = "i@x" }
          M.User:create { name = "dup", email = "o@x" }
        end)
        assert.is_false(ok)
        db:transaction(function() M.User:create { name = "inner2", email = "i2@x" } end)
      end)
      assert.same({ "inner2", "outer" }, sorted(M.User:pluck("name")))
    end)

    it("execute returns rows changed; rows returns plain row tables; ? on both", function()
      M.User:create { name = "a", email = "a@x" }
      M.User:create { name = "b", email = "b@x" }
      assert.equal(2, db:execute("UPDATE users SET name = ? WHERE id > ?", { "z", 0 }))
      assert.equal(0, db:execute("UPDATE users SET name = ? WHERE id < ?", { "z", 0 }))
      local rows = db:rows("SELECT name, email FROM users WHERE email = ? OR email = ? ORDER BY email",
        { "a@x", "b@x" })
      assert.equal(2, #rows)
      assert.is_nil(getmetatable(rows[1]))
      assert.same({ name = "z", email = "a@x" }, rows[1])
      assert.same({}, db:rows("SELECT name FROM users WHERE name = ?", { "nobody" }))
      local r = db:rows("SELECT ? AS s, ? AS i", { "str", 3 })[1]
      assert.equal("str", r.s)
      assert.equal(3, tonumber(r.i))
      helper.raises("sql", db.execute, db, "UPDATE nowhere SET x = 1")
    end)

    it("raw SQL joins the running transaction", function()
      pcall(db.transaction, db, function()
        db:execute("INSERT INTO users (name, email) VALUES (?, ?)", { "raw", "r@x" })
        assert.equal(1, M.User:count())
        error("undo")
      end)
      assert.equal(0, M.User:count())
    end)
  end)

  ---------------------------------------------------------------- more
  describe("further points", function()
    it("one_to_one's default reverse name is <model_snake>, a to-one accessor", function()
      local U = db:model("User", { name = quay.string() })
      local P = db:model("UserProfile", { user = quay.one_to_one("User", { on_delete = quay.CASCADE }) })
      local H = db:model("HTTPRequest", { user = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
      db:create_tables()
      local u = U:create { name = "u" }
      local p = P:create { user = u }
      H:create { user = u }
      assert.equal(p, U:find(u.id).user_profile)
      assert.equal(1, U:find(u.id).http_request_set:count())
      local r = by_name(db:describe().User.relations)
      assert.equal("reverse", r.user_profile.kind)
      assert.equal("UserProfile", r.user_profile.target)
      assert.equal("reverse", r.http_request_set.kind)
      local pr = by_name(db:describe().UserProfile.relations).user
      assert.equal("user_profile", pr.related_name)
      assert.equal("one_to_one", pr.kind)
      assert.equal("http_request_set", by_name(db:describe().HTTPRequest.relations).user.related_name)
      helper.raises("integrity", P.create, P, { user = u })
    end)

    it("snake case: digits, runs of capitals", function()
      db:model("Item2Box", { x = quay.integer() })
      db:model("HTTPResponseCode", { x = quay.integer() })
      db:model("ABCDef", { x = quay.integer() })
      db:model("Ab", { x = quay.integer() })
      db:create_tables()
      local d = db:describe()
      assert.equal("item2_boxs", d.Item2Box.table)
      assert.equal("http_response_codes", d.HTTPResponseCode.table)
      assert.equal("abc_defs", d.ABCDef.table)
      assert.equal("abs", d.Ab.table)
    end)

    it("a declared quay.id() under another name is the primary key; no id is added", function()
      local T = db:model("Keyed", { uid = quay.id(), name = quay.string() })
      db:create_tables()
      assert.same({ "uid", "name" }, columns(db, "keyeds"))
      local r = T:create { name = "a" }
      assert.is_number(r.uid)
      assert.equal(r, T:find(r.uid))
      local f = db:describe().Keyed.fields[1]
      assert.equal("id", f.type)
      assert.is_true(f.primary_key)
    end)

    it("describe(): reverse entries follow the declared relations; descriptions", function()
      db:model("User", { name = quay.string() })
      db:model("Post", {
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, description = "who wrote it" }),
        tags = quay.many_to_many("Tag", { description = "labels" }),
      })
      db:model("Comment", { post = quay.belongs_to("Post", { on_delete = quay.CASCADE }) })
      db:model("Tag", { name = quay.string() })
      db:create_tables()
      local rels = db:describe().Post.relations
      assert.same({ "author", "tags", "comment_set" }, names(rels))
      assert.equal("who wrote it", rels[1].description)
      assert.equal("labels", rels[2].description)
      assert.equal("reverse", rels[3].kind)
      assert.equal("Comment", rels[3].target)
      assert.equal("posts_tags", rels[2].through)
      assert.is_nil(rels[1].through)
    end)

    it("records of different models never compare equal", function()
      local A = db:model("A", { x = quay.integer() })
      local B = db:model("B", { x = quay.integer() })
      db:create_tables()
      local a, b = A:create { x = 1 }, B:create { x = 1 }
      assert.equal(a.id, b.id)
      assert.is_false(a == b)
    end)

    it("more wrong types raise validation", function()
      local T = db:model("Typed", {
        i = quay.integer { null = true }, b = quay.boolean { null = true },
        n = quay.number { null = true }, s = quay.string { null = true },
      })
      db:create_tables()
      for _, v in ipairs {
        { i = "x" }, { i = 1.5 }, { i = true }, { b = 1 }, { b = "true" },
        { n = "x" }, { s = 12 }, { s = true }, { i = {} },
      } do
        local k = next(v)
        local err = helper.raises("validation", T.create, T, v)
        helper.mentions(err, "Typed", k)
      end
      assert.equal(0, T:count())
    end)

    it("exclude across a to-many path: one related row must match all of a table", function()
      local M = blog(db)
      local d = seed(M)
      -- no single post of Alice's has views 10 and title "C tricks": she is kept
      assert.same({ "Alice", "Bob", "Carol" },
        sorted(M.User:exclude { posts__views = 10, posts__title = "C tricks" }:pluck("name")))
      assert.same({ "Bob", "Carol" },
        sorted(M.User:exclude { posts__views = 10, posts__title = "Lua tips" }:pluck("name")))
      local _ = d
    end)

    it("on_update through a primary key change: save and qs:update cascade by default", function()
      local M = blog(db)
      local d = seed(M)
      assert.equal("CASCADE", fk_update_rule(db, "posts", "author_id"))
      assert.equal("CASCADE", fk_update_rule(db, "posts", "editor_id"))
      d.p4.editor = d.bob
      d.p4:save()
      local u = M.User:find(d.bob.id)
      u.id = 500
      u:save()
      assert.is_nil(M.User:find(d.bob.id))
      assert.equal("Bob", M.User:find(500).name)
      assert.same({ "Gardening", "lunch" }, sorted(M.Post:filter { author_id = 500 }:pluck("title")))
      -- editor is on_update SET_NULL? no: on_update defaults to CASCADE
      assert.equal(500, M.Post:find(d.p4.id).editor_id)
      assert.equal(1, M.User:filter { id = 500 }:update { id = 600 })
      assert.equal(2, M.Post:filter { author_id = 600 }:count())
      assert.equal(1, M.Post:filter { editor_id = 600 }:count())
    end)

    it("on_update SET_DEFAULT and NO_ACTION", function()
      local C = db:model("Country", { code = quay.string { unique = true } })
      db:create_tables()
      local home = C:create { code = "HOME" }
      local City = db:model("City", {
        country = quay.belongs_to("Country", { to_field = "code", default = "HOME",
                                                on_delete = quay.CASCADE, on_update = quay.SET_DEFAULT }),
        strict = quay.belongs_to("Country", { to_field = "code", null = true, related_name = "strict",
                                               on_delete = quay.CASCADE, on_update = quay.NO_ACTION }),
      })
      db:create_tables()
      local c = C:create { code = "AA" }
      local city = City:create { country = c }
      c.code = "BB"
      c:save()
      assert.equal("HOME", City:find(city.id).country_id)
      City:create { country = home, strict = c }
      helper.raises("integrity", function() return C:filter { code = "BB" }:update { code = "CC" } end)
      assert.equal(1, C:filter { code = "BB" }:count())
    end)

    it("NO_ACTION under a cascade through a cycle still raises integrity", function()
      local A = db:model("A", {
        b = quay.belongs_to("B", { null = true, on_delete = quay.CASCADE, related_name = "as_" }),
      })
      local B = db:model("B", { a = quay.belongs_to("A", { on_delete = quay.CASCADE }) })
      local C = db:model("C", { a = quay.belongs_to("A", { on_delete = quay.NO_ACTION }) })
      db:create_tables()
      local a = A:create {}
      local b = B:create { a = a }
      a.b = b
      a:save()
      C:create { a = a }
      helper.raises("integrity", a.delete, a, { dry_run = true })
      helper.raises("integrity", a.delete, a)
      assert.equal(1, A:count()); assert.equal(1, B:count()); assert.equal(1, C:count())
      C:query():delete()
      assert.same({ A = 1, B = 1 }, a:delete())
    end)

    it("a NO_ACTION key change inside a user's transaction: integrity, then the transaction goes on", function()
      local C = db:model("Country", { code = quay.string { unique = true } })
      local City = db:model("City", {
        country = quay.belongs_to("Country", { to_field = "code", on_delete = quay.CASCADE,
                                                on_update = quay.NO_ACTION }),
      })
      db:create_tables()
      local c = C:create { code = "AA" }
      City:create { country = c }
      db:transaction(function()
        local ok, err = pcall(db.transaction, db, function()
          c.code = "BB"
          c:save()
        end)
        assert.is_false(ok)
        assert.equal("integrity", err.code)
        C:create { code = "ZZ" }
      end)
      assert.equal(1, C:filter { code = "AA" }:count())
      assert.equal(1, C:filter { code = "ZZ" }:count())
      assert.equal("AA", City:first().country_id)
      -- keys are checked at once again afterwards
      helper.raises("integrity", City.create, City, { country_id = "QQ" })
    end)

    it("select_related takes every to-one path, an all-to-one quay.through included", function()
      local U = db:model("User", { name = quay.string() })
      local Pr = db:model("Profile", {
        user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
        bio = quay.text(),
      })
      local P = db:model("Post", {
        title = quay.string(),
        author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
        author_profile = quay.through("author", "profile"),
      })
      db:create_tables()
      local u1, u2 = U:create { name = "a" }, U:create { name = "b" }
      Pr:create { user = u1, bio = "pa" }
      P:create { title = "p1", author = u1 }
      P:create { title = "p2", author = u2 }
      local posts = P:select_related("author_profile", "author"):order_by("id"):all()
      local n = helper.queries(db, function()
        assert.equal("pa", posts[1].author_profile.bio)
        assert.is_nil(posts[2].author_profile)
        assert.equal("b", posts[2].author.name)
      end)
      assert.equal(0, n)
      posts = P:select_related("author_profile__user"):order_by("id"):all()
      n = helper.queries(db, function()
        assert.equal(u1, posts[1].author_profile.user)
      end)
      assert.equal(0, n)
      helper.raises("bad_lookup", function()
        return U:select_related("profile__user__posts"):all()
      end)
    end)

    it("contains takes a record of the set's model only, loaded or not", function()
      local M = blog(db)
      local d = seed(M)
      -- Tag ids 1 and 2 are in p1's tags; alice has id 1 too
      assert.equal(d.alice.id, d.lua.id)
      local p = M.Post:find(d.p1.id)
      helper.raises("validation", function() return p.tags:contains(d.alice) end)
      local _ = #p.tags                                  -- loaded now
      helper.raises("validation", function() return p.tags:contains(d.alice) end)
      assert.is_true(p.tags:contains(d.lua))
      local u = M.User:find(d.alice.id)
      assert.is_true(u.posts:contains(d.p1))
      assert.is_false(u.posts:contains(d.p3))
      helper.raises("validation", function() return u.posts:contains(d.lua) end)
    end)

    it("declaration order is the descriptors' creation order, key columns included", function()
      local early = quay.integer()                     -- created first
      db:model("Owner", { name = quay.string() })
      db:model("Item", {
        a = quay.integer(),
        owner = quay.belongs_to("Owner", { on_delete = quay.CASCADE }),
        b = quay.string(),
        tags = quay.many_to_many("Owner", { related_name = "tagged" }),
        first = early,
        helper_ = quay.belongs_to("Owner", { null = true, on_delete = quay.SET_NULL,
                                             related_name = "helped" }),
      })
      db:create_tables()
      assert.same({ "id", "first", "a", "owner_id", "b", "helper__id" }, columns(db, "items"))
      assert.same({ "id", "first", "a", "b" }, names(db:describe().Item.fields))
      assert.same({ "owner", "tags", "helper_" }, names(db:describe().Item.relations))
    end)

    it("64-bit keys: an explicit id past 2^32 and a foreign key to it", function()
      local U = db:model("User", { name = quay.string() })
      local P = db:model("Post", { author = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
      db:create_tables()
      local big = (1 << 40) + 7
      local u = U:create { id = big, name = "big" }
      assert.equal(big, u.id)
      local p = P:create { author = u }
      assert.equal(big, P:find(p.id).author_id)
      assert.equal(u, P:find(p.id).author)
      assert.equal(1, U:find(big).post_set:count())
      assert.same({ User = 1, Post = 1 }, u:delete())
    end)

    if not helper.is_pg then
      it("SQLite connections run with foreign keys on", function()
        assert.equal(1, db:rows("PRAGMA foreign_keys")[1].foreign_keys)
      end)
    end

    it("identifiers are quoted: SQL keywords as model, table and field names", function()
      local O = db:model("Order", {
        select = quay.string(), group = quay.integer { default = 1 },
        ["from"] = quay.belongs_to("Order", { null = true, on_delete = quay.CASCADE,
                                             related_name = "where" }),
      })
      db:create_tables()
      local a = O:create { select = "x" }
      local b = O:create { select = "y", from = a, group = 2 }
      assert.equal(1, O:filter { group = 2, select = "y" }:count())
      assert.equal(b, a.where[1])
      assert.same({ "x", "y" }, O:order_by("group"):pluck("select"))
      assert.same({ Order = 2 }, a:delete())
      helper.raises("unknown_field", function()
        return O:filter { ['select" OR 1=1 --'] = "x" }:count()
      end)
    end)

    it("RESTRICT: a blocker deleted by a cascade two levels down does not block", function()
      local U = db:model("User", { name = quay.string() })
      local P = db:model("Post", { author = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
      local T = db:model("Thread", { owner = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
      local R = db:model("Review", {
        post = quay.belongs_to("Post"),                                  -- RESTRICT
        thread = quay.belongs_to("Thread", { on_delete = quay.CASCADE }),
      })
      db:create_tables()
      local u, v = U:create { name = "u" }, U:create { name = "v" }
      local p = P:create { author = u }
      R:create { post = p, thread = T:create { owner = u } }
      assert.same({ User = 1, Post = 1, Thread = 1, Review = 1 }, u:delete { dry_run = true })
      local p2 = P:create { author = u }
      R:create { post = p2, thread = T:create { owner = v } }   -- held by v's thread
      local e = helper.raises("restricted", u.delete, u)
      helper.mentions(e, "Review")
      assert.equal(2, U:count())
      assert.same({ User = 2, Post = 2, Thread = 2, Review = 2 }, U:query():delete())
    end)

    it("a row both set to NULL and deleted by one call counts once, as deleted", function()
      local M = blog(db)
      local d = seed(M)
      d.p1.editor = d.alice
      d.p1:save()
      d.p4.editor = d.alice
      d.p4:save()
      assert.same({ User = 1, Profile = 1, Post = 2, posts_tags = 3 }, d.alice:delete())
      assert.is_nil(M.Post:find(d.p4.id).editor_id)
      assert.is_nil(M.Post:find(d.p1.id))
    end)

    it("lazy loads from JOINed and prefetched records are batched too", function()
      local M = blog(db)
      seed(M)
      local posts = M.Post:select_related("author"):all()
      local n = helper.queries(db, function()
        for _, p in ipairs(posts) do local _ = #p.author.posts end
      end)
      assert.equal(1, n)
      local users = M.User:prefetch_related("posts"):all()
      n = helper.queries(db, function()
        for _, u in ipairs(users) do
          for _, p in ipairs(u.posts) do local _ = #p.tags end
        end
      end)
      assert.equal(1, n)
      local count = 0
      n = helper.queries(db, function()
        for p in M.Post:iter() do
          count = count + 1
          local _ = p.author.name
        end
      end)
      assert.equal(6, count)
      assert.is_true(n <= 3, "iter: " .. n .. " queries")
    end)

    it("quay.prefetch with to on a to-one path: a record or nil", function()
      local M = blog(db)
      local d = seed(M)
      local posts = M.Post:prefetch_related(
        quay.prefetch("author", M.User:filter { name = "Alice" }, { to = "alice" })
      ):order_by("id"):all()
      local n = helper.queries(db, function()
        assert.equal(d.alice, posts[1].alice)
        assert.is_nil(posts[3].alice)
        assert.is_nil(posts[6].alice)
      end)
      assert.equal(0, n)
      assert.equal(d.bob, posts[3].author)
      helper.raises("unknown_field", function() return posts[3].alicee end)
      -- nested: on the owner of the last hop
      local users = M.User:prefetch_related(
        quay.prefetch("posts__editor", M.User:filter { name = "Bob" }, { to = "bob_edit" })
      ):order_by("id"):all()
      assert.is_nil(users[1].posts[1].bob_edit)
    end)

    it("raw SQL: a ? inside a string literal is not a placeholder", function()
      local r = db:rows("SELECT '?' AS q, ? AS v", { 5 })[1]
      assert.equal("?", r.q)
      assert.equal(5, tonumber(r.v))
      r = db:rows("SELECT 'it''s ?' AS q, ? AS v, ? AS w", { "a", "b" })[1]
      assert.equal("it's ?", r.q)
      assert.equal("a", r.v)
      assert.equal("b", r.w)
    end)

    it("db:stats counts BEGIN and COMMIT, and on_query sees them", function()
      local M = blog(db)
      local seen = {}
      db:on_query(function(sql) seen[#seen + 1] = sql end)
      local n = helper.queries(db, function()
        db:transaction(function() M.Tag:create { name = "x" } end)
      end)
      db:on_query(nil)
      assert.equal(n, #seen)
      assert.is_true(n >= 3)
      assert.truthy(seen[1]:upper():find("BEGIN", 1, true))
      assert.truthy(seen[#seen]:upper():find("COMMIT", 1, true))
    end)

    it("an unreachable server raises connection", function()
      helper.raises("connection", quay.open, "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    end)

    it("a m2m pair added again keeps its through values", function()
      local S = db:model("Song", {
        genres = quay.many_to_many("Genre", { through = "SongGenre", related_name = "songs" }),
      })
      local G = db:model("Genre", { name = quay.string() })
      local SG = db:model("SongGenre", {
        song = quay.belongs_to("Song", { on_delete = quay.CASCADE }),
        genre = quay.belongs_to("Genre", { on_delete = quay.CASCADE }),
        weight = quay.integer { default = 0 },
      })
      db:create_tables()
      local s, g = S:create {}, G:create { name = "g" }
      s.genres:add(g, { weight = 5 })
      s.genres:add(g, { weight = 9 })
      assert.equal(1, SG:count())
      assert.equal(5, SG:first().weight)
      -- the reverse side sees the pivot too
      local back = G:find(g.id).songs:all()
      assert.equal(5, back[1].pivot.weight)
    end)

    it("pluck returns a plain array", function()
      local M = blog(db)
      seed(M)
      assert.same({ "Alice", "Bob", "Carol" }, M.User:order_by("name"):pluck("name"))
      assert.same({}, M.User:filter { name = "nobody" }:pluck("name"))
      -- with NULLs, n tells the length that # cannot
      local cats = M.Post:order_by("id"):pluck("category")
      assert.equal(6, cats.n)
      assert.equal("dev", cats[1])
      assert.is_nil(cats[2])
      assert.equal("art", cats[5])
      assert.is_nil(cats[6])
    end)
  end)

  ---------------------------------------------------------------- errors
  describe("errors", function()
    it("carry code and message; tostring gives the message", function()
      local M = blog(db)
      local ok, err = pcall(M.User.get, M.User, { name = "nobody" })
      assert.is_false(ok)
      assert.equal("not_found", err.code)
      assert.is_string(err.message)
      assert.equal(err.message, tostring(err))
      helper.mentions(err, "User")
    end)

    it("SQLite: a lock wait past busy_timeout raises busy; the database is unchanged", function()
      local path = tmpfile()
      local a = quay.open("sqlite:" .. path)
      local UA = a:model("T", { x = quay.integer() })
      a:create_tables()
      local b = quay.open("sqlite:" .. path, { busy_timeout = 100 })
      local UB = b:model("T", { x = quay.integer() })
      local t0 = os.clock()
      a:transaction(function()
        UA:create { x = 1 }
        helper.raises("busy", UB.create, UB, { x = 2 })
      end)
      assert.is_true(os.clock() - t0 < 4)
      assert.equal(1, UB:count())
      assert.equal(0, UB:filter { x = 2 }:count())
      a:close(); b:close()
      rmdb(path)
    end)
  end)

  ---------------------------------------------------------------- embedding
  describe("the quay command", function()
    it("runs a script with the module preloaded, passing its arguments", function()
      local build = os.getenv("QUAY_BUILD_DIR") or "build"
      local script = tmpfile() .. ".lua"
      local f = assert(io.open(script, "w"))
      f:write([[
local quay = require("quay")
local db = quay.open("sqlite::memory:")
local T = db:model("T", { x = quay.integer() })
db:create_tables()
T:create { x = 41 }
print(select("#", ...), arg[1], arg[2], T:first().x + 1)
]])
      f:close()
      local env = "env -u LUA_PATH -u LUA_CPATH "
      local p = io.popen(env .. build .. "/bin/quay " .. script .. " one two 2>&1")
      local out = p:read("a")
      local ok = p:close()
      os.remove(script)
      assert.is_true(ok, out)
      assert.equal("2\tone\ttwo\t42\n", out)
    end)

    it("an error exits with status 1 and prints the code", function()
      local build = os.getenv("QUAY_BUILD_DIR") or "build"
      local script = tmpfile() .. ".lua"
      local f = assert(io.open(script, "w"))
      f:write([[
local quay = require("quay")
local db = quay.open("sqlite::memory:")
local T = db:model("T", { x = quay.integer() })
db:create_tables()
T:get { x = 1 }
]])
      f:close()
      local p = io.popen(build .. "/bin/quay " .. script .. " 2>&1")
      local out = p:read("a")
      local ok, _, code = p:close()
      os.remove(script)
      assert.is_falsy(ok)
      assert.equal(1, code)
      assert.truthy(out:find("not_found", 1, true))
    end)
  end)
end)
