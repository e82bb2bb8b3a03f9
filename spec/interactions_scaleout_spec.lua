-- spec/interactions_scaleout_spec.lua: the part-two features through the
-- scale-out options (docs/reference.md "Scale-out on PostgreSQL",
-- "Transactions and raw SQL"): every read kind routed to a replica outside
-- a transaction and to the primary inside db:transaction, after a write
-- within `sticky` and under using("primary"); every write kind on the
-- primary with db:stats() counting each statement once; hooks that query
-- inside a write; savepoints, locks and session settings behind PgBouncer
-- in transaction pooling ({ prepare = false }); a replica stopped, killed
-- or cut off during each read kind; SQLite accepting the options.
--
-- The server parts need scripts/pg-cluster.sh's cluster (scripts/test.sh
-- starts it): QUAY_PG_REPLICA_URL and QUAY_PG_CLUSTER for the replica,
-- QUAY_PGBOUNCER_URL for the pooler.  Without them those parts are
-- pending.
local helper = require("spec.helper")
local quay = helper.quay

local cluster_mod = require("spec.cluster")
local replica_env, cluster, have_cluster = cluster_mod.replica_env, cluster_mod.dir, cluster_mod.have
local sleep, cluster_do, with_param = cluster_mod.sleep, cluster_mod.run, cluster_mod.with_param
local replica_url, caught_up = cluster_mod.replica_url, cluster_mod.caught_up
local bouncer_env = os.getenv("QUAY_PGBOUNCER_URL")
local have_bouncer = helper.is_pg and bouncer_env ~= nil

-- Statements sent to each role while running fn, and fn's result.
local function roles(db, fn)
  local a = db:stats()
  local v = fn()
  local b = db:stats()
  assert.equal(b.queries - a.queries, (b.primary - a.primary) + (b.replica - a.replica))
  return b.primary - a.primary, b.replica - a.replica, v
end

-- The schema every part uses.  All posts are ann's; bob has none.
local function models(db, log, opts)
  local M = { db = db }
  log = log or {}
  opts = opts or {}
  M.User = db:model("User", {
    name = quay.string(),
    email = quay.string { unique = true },
  })
  M.Tag = db:model("Tag", { name = quay.string { unique = true },
                           color = opts.color and quay.string { null = true } or nil })
  M.Post = db:model("Post", {
    title = quay.string(),
    views = quay.integer { default = 0 },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  M.Comment = db:model("Comment", {
    body = quay.string(),
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
  })
  M.Note = db:model("Note", { body = quay.string(), soft_delete = true })
  -- Hooks that query inside the write: what they saw goes to log.
  M.Entry = db:model("Entry", {
    title = quay.string(),
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "entries" }),
    hooks = {
      before_save = function(rec, creating)
        log[#log + 1] = { "before_save", creating, M.Entry:count() }
      end,
      after_save = function(rec, created)
        log[#log + 1] = { "after_save", created, M.Entry:filter { id = rec.id }:count(),
                          rec.author.name }
      end,
      before_delete = function(rec)
        log[#log + 1] = { "before_delete", M.Entry:filter { id = rec.id }:count() }
      end,
      after_delete = function(rec)
        log[#log + 1] = { "after_delete", M.Entry:filter { id = rec.id }:count() }
      end,
    },
  })
  if opts.bare then return M end
  db:create_tables()
  M.ann = M.User:create { name = "ann", email = "ann@x" }
  M.bob = M.User:create { name = "bob", email = "bob@x" }
  M.t1 = M.Tag:create { name = "t1" }
  M.t2 = M.Tag:create { name = "t2" }
  local rows = {}
  for i = 1, 6 do rows[i] = { title = ("p%02d"):format(i), views = i, author = M.ann } end
  M.posts = M.Post:bulk_create(rows)
  M.posts[1].tags:add(M.t1)
  M.Comment:create { body = "c", post = M.posts[1] }
  -- what the reads see before the write of the transaction / sticky parts
  M.st0 = { n = 6, last = "p06", ann = "ann", tags = 1 }
  M.st1 = { n = 7, last = "p07", ann = "ann2", tags = 2 }
  return M
end

-- models()'s Entry and User on another handle (no tables made, no rows).
local function models_on(db, log)
  local M = {}
  M.User = db:model("User", { name = quay.string(), email = quay.string { unique = true } })
  M.Entry = db:model("Entry", {
    title = quay.string(),
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "entries" }),
    hooks = {
      before_save = function(rec, creating)
        log[#log + 1] = { "before_save", creating, M.Entry:count() }
      end,
      after_save = function(rec, created)
        log[#log + 1] = { "after_save", created, M.Entry:filter { id = rec.id }:count(),
                          rec.author.name }
      end,
      before_delete = function(rec)
        log[#log + 1] = { "before_delete", M.Entry:filter { id = rec.id }:count() }
      end,
      after_delete = function(rec)
        log[#log + 1] = { "after_delete", M.Entry:filter { id = rec.id }:count() }
      end,
    },
  })
  return M
end

-- The write whose effect the read kinds must see (st0 -> st1).
local function the_write(M)
  M.Post:create { title = "p07", views = 7, author = M.ann }
  M.User:filter { id = M.ann.id }:update { name = "ann2" }
  M.Post:find(M.posts[1].id).tags:add(M.t2)
end

-- The read kinds.  prep (optional) runs before the measured part (it loads
-- the records a lazy load starts from; q pins it to the primary or not);
-- run returns what the read saw; n is its number of statements.
local reads = {
  { name = "all", n = 1, run = function(M, q) return #q(M.Post):all() end,
    want = function(st) return st.n end },
  { name = "first", n = 1,
    run = function(M, q) return q(M.Post):order_by("-id"):first().title end,
    want = function(st) return st.last end },
  { name = "get", n = 1,
    run = function(M, q) return q(M.User):get { email = "ann@x" }.name end,
    want = function(st) return st.ann end },
  { name = "count", n = 1, run = function(M, q) return q(M.Post):count() end,
    want = function(st) return st.n end },
  { name = "exists", n = 1,
    run = function(M, q) return q(M.Post):filter { title = "p07" }:exists() end,
    want = function(st) return st.n == 7 end },
  { name = "aggregate", n = 1,
    run = function(M, q) return q(M.Post):aggregate { n = quay.count(), s = quay.sum("views") }.s end,
    want = function(st) return st.n * (st.n + 1) // 2 end },
  { name = "values", n = 1,
    run = function(M, q) return #q(M.Post):values("title", "author__name"):all() end,
    want = function(st) return st.n end },
  { name = "grouped values", n = 1,
    run = function(M, q)
      local rows = q(M.Post):values("author__name"):annotate { n = quay.count() }:all()
      return rows[1].author__name .. ":" .. rows[1].n
    end,
    want = function(st) return st.ann .. ":" .. st.n end },
  { name = "pluck", n = 1, run = function(M, q) return #q(M.Post):pluck("title") end,
    want = function(st) return st.n end },
  { name = "iter", n = 1,
    run = function(M, q)
      local n = 0
      for _ in q(M.Post):order_by("id"):iter() do n = n + 1 end
      return n
    end,
    want = function(st) return st.n end },
  { name = "values iter", n = 1,
    run = function(M, q)
      local n = 0
      for _ in q(M.Post):values("title"):iter() do n = n + 1 end
      return n
    end,
    want = function(st) return st.n end },
  { name = "prefetch_related", n = 3,
    run = function(M, q)
      local ps = q(M.Post):prefetch_related("author", "tags"):order_by("id"):all()
      return #ps .. ":" .. ps[1].author.name .. ":" .. #ps[1].tags
    end,
    want = function(st) return st.n .. ":" .. st.ann .. ":" .. st.tags end },
  { name = "select_related", n = 1,
    run = function(M, q)
      local p = q(M.Post):select_related("author"):order_by("-id"):first()
      return p.title .. ":" .. p.author.name
    end,
    want = function(st) return st.last .. ":" .. st.ann end },
  { name = "lazy to-one load", n = 1,
    prep = function(M, q) return q(M.Post):order_by("id"):first() end,
    run = function(_, _, p) return p.author.name end,
    want = function(st) return st.ann end },
  { name = "lazy to-many load", n = 1,
    prep = function(M, q) return q(M.User):get { email = "ann@x" } end,
    run = function(_, _, u) return #u.posts end,
    want = function(st) return st.n end },
  { name = "lazy many-to-many load", n = 1,
    prep = function(M, q) return q(M.Post):order_by("id"):first() end,
    run = function(_, _, p) return #p.tags end,
    want = function(st) return st.tags end },
  { name = "related set query", n = 1,
    prep = function(M, q) return q(M.User):get { email = "ann@x" } end,
    run = function(_, q, u) return q(u.posts:filter { views__gt = 0 }):count() end,
    want = function(st) return st.n end },
  { name = "where_has", n = 1,
    run = function(M, q)
      return #q(M.User):where_has("posts", function(p) return p:filter { title = "p07" } end):all()
    end,
    want = function(st) return st.n == 7 and 1 or 0 end },
  { name = "annotate", n = 1,
    run = function(M, q)
      return q(M.User):annotate { n = quay.count("posts") }:order_by("-n"):first().n
    end,
    want = function(st) return st.n end },
  { name = "with_count", n = 1,
    run = function(M, q) return q(M.User):with_count("posts"):filter { posts_count__gt = 6 }:count() end,
    want = function(st) return st.n > 6 and 1 or 0 end },
}

local function plain(qs) return qs end
local function pinned(qs) return qs:using("primary") end

describe("SQLite with the scale-out options", function()
  if helper.is_pg then
    it("is the SQLite part (PostgreSQL runs the parts below)", function()
      pending("SQLite only")
    end)
    return
  end

  local db, M
  before_each(function()
    db = helper.open { prepare = false, sticky = 2,
                       replicas = { "postgresql://nobody@127.0.0.1:1/none" } }
    M = models(db)
  end)
  after_each(function() db:close() end)

  for _, k in ipairs(reads) do
    it("runs " .. k.name .. " on the one database (replica stays 0)", function()
      local ctx = k.prep and k.prep(M, plain)
      local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st0), v)
      assert.equal(k.n, p)
      assert.equal(0, r)
      ctx = k.prep and k.prep(M, pinned)
      p, r, v = roles(db, function() return k.run(M, pinned, ctx) end)
      assert.equal(k.want(M.st0), v)
      assert.equal(0, r)
      db:transaction(function()
        the_write(M)
        ctx = k.prep and k.prep(M, plain)
        assert.equal(k.want(M.st1), k.run(M, plain, ctx))
      end)
      local s = db:stats()
      assert.equal(0, s.replica)
      assert.equal(s.queries, s.primary)
    end)
  end

  it("accepts { replicas = {} } and sticky = 0", function()
    local d = quay.open("sqlite::memory:", { replicas = {}, sticky = 0, prepare = true })
    local T = d:model("T", { n = quay.integer() })
    d:create_tables()
    T:create { n = 1 }
    assert.equal(1, T:using("primary"):count())
    assert.equal(0, d:stats().replica)
    d:close()
  end)
end)

describe("read routing with replicas", function()
  if not have_cluster then
    it("needs the cluster of scripts/test.sh", function()
      pending("no replica (QUAY_PG_REPLICA_URL / QUAY_PG_CLUSTER unset, or SQLite)")
    end)
    return
  end

  local db, M
  local function open(sticky)
    db = helper.open { replicas = { replica_url() }, sticky = sticky }
    M = models(db)
    caught_up(db)
  end
  after_each(function()
    if db then db:close() end
    db = nil
  end)

  for _, k in ipairs(reads) do
    it("sends " .. k.name .. " to the replica outside a transaction", function()
      open(0)
      local ctx = k.prep and k.prep(M, plain)
      local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st0), v)
      assert.equal(0, p)
      assert.equal(k.n, r)
    end)

    it("sends " .. k.name .. " to the primary inside db:transaction (it sees the transaction's writes)", function()
      open(0)
      local ctx = k.prep and k.prep(M, plain)   -- loaded from the replica
      db:transaction(function()
        the_write(M)
        local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
        assert.equal(k.want(M.st1), v)
        assert.equal(k.n, p)
        assert.equal(0, r)
      end)
    end)

    it("sends " .. k.name .. " to the primary within sticky after a write", function()
      open(30)
      sleep(0)
      local ctx = k.prep and k.prep(M, plain)
      the_write(M)
      local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st1), v)
      assert.equal(k.n, p)
      assert.equal(0, r)
    end)

    it("sends " .. k.name .. " to the primary under using(\"primary\")", function()
      open(0)
      local ctx = k.prep and k.prep(M, pinned)
      local p, r, v = roles(db, function() return k.run(M, pinned, ctx) end)
      assert.equal(k.want(M.st0), v)
      assert.equal(k.n, p)
      assert.equal(0, r)
    end)
  end

  it("sends the reads of a host's BEGIN to the primary", function()
    open(0)
    db:execute("BEGIN")
    the_write(M)
    for _, k in ipairs(reads) do
      local ctx = k.prep and k.prep(M, plain)
      local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st1), v, k.name)
      assert.equal(0, r, k.name)
      assert.equal(k.n, p, k.name)
    end
    db:execute("ROLLBACK")
  end)

  it("runs Model:raw on the primary, and the lazy loads of its records too", function()
    open(0)
    local p, r, ps = roles(db, function() return M.Post:raw("SELECT * FROM posts ORDER BY id") end)
    assert.equal(1, p)
    assert.equal(0, r)
    p, r = roles(db, function() return ps[1].author.name end)
    assert.equal(1, p)
    assert.equal(0, r)
    local us = M.User:raw("SELECT * FROM users ORDER BY id")
    p, r = roles(db, function() return #us[1].posts end)
    assert.equal(1, p)
    assert.equal(0, r)
    -- a query's records keep reading from the replica
    local q = M.Post:order_by("id"):all()
    p, r = roles(db, function() return q[1].author.name end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("sends reads back to the replica after a db:transaction that wrote nothing (default sticky)", function()
    open(nil)
    sleep(1.1)                                    -- past the set-up's writes
    assert.equal(6, db:transaction(function() return M.Post:count() end))
    assert.equal(6, db:transaction(function() return M.Post:count() end, { readonly = true }))
    local p, r = roles(db, function() return M.Post:count() end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("keeps reads on the primary for sticky after the COMMIT of a transaction that wrote", function()
    open(1)
    db:transaction(function()
      M.Post:create { title = "p07", views = 7, author = M.ann }
      sleep(1.1)                                  -- longer than sticky
      M.Post:count()
    end)
    local p, r, n = roles(db, function() return M.Post:count() end)
    assert.equal(7, n)
    assert.equal(1, p)
    assert.equal(0, r)
  end)

  it("sends reads back to the replica once db:transaction is over (sticky = 0)", function()
    open(0)
    db:transaction(function() return M.Post:count() end)
    local p, r = roles(db, function() return M.Post:count() end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("keeps the statements of a transaction that raised on the primary", function()
    open(0)
    local p, r = roles(db, function()
      return pcall(db.transaction, db, function()
        M.Post:count()
        error({ code = "mine" })
      end)
    end)
    assert.equal(0, r)
    assert.equal(3, p)          -- BEGIN, the count, ROLLBACK
  end)
end)

describe("writes with replicas", function()
  if not have_cluster then
    it("needs the cluster of scripts/test.sh", function()
      pending("no replica (QUAY_PG_REPLICA_URL / QUAY_PG_CLUSTER unset, or SQLite)")
    end)
    return
  end

  -- The replica stops replaying once the schema is there: a read that
  -- went to it would miss every row written in the test (sticky = 0).
  -- Replay is paused and resumed through one connection opened before the
  -- pause: a connection started while replay is paused can wait for a
  -- lock the replica's replay holds.
  local db, M, log, ctl
  local function replay(fn)
    ctl:rows("SELECT " .. fn .. "() IS NULL AS x")
  end
  before_each(function()
    log = {}
    db = helper.open { replicas = { replica_url() }, sticky = 0 }
    M = models(db, log)
    ctl = quay.open(replica_url())
    caught_up(db)
    replay("pg_wal_replay_pause")
  end)
  after_each(function()
    replay("pg_wal_replay_resume")
    ctl:close()
    ctl = nil
    db:close()
    db = nil
  end)

  -- fn's statements all go to the primary, each counted once.
  local function on_primary(fn)
    local seen = 0
    db:on_query(function() seen = seen + 1 end)
    local ok, p, r, v = pcall(roles, db, fn)
    db:on_query(nil)
    assert(ok, p)
    assert.equal(0, r)
    assert.equal(seen, p)
    assert.is_true(p > 0)
    return v
  end

  local function primary_count(Model, conds)
    local qs = conds and Model:filter(conds) or Model:query()
    return qs:using("primary"):count()
  end

  it("reads from the paused replica outside a transaction (the set-up of this part)", function()
    M.Post:create { title = "unseen", author = M.bob }
    local p, r, n = roles(db, function() return M.Post:filter { title = "unseen" }:count() end)
    assert.equal(0, n)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("answers rec:restore() of a record written just before from the primary", function()
    for i = 1, 3 do
      local n = M.Note:create { body = "n" .. i }
      assert.is_false(on_primary(function() return n:restore() end))
      n:delete()
      assert.is_true(on_primary(function() return n:restore() end))
      assert.is_false(n:restore())
    end
    local n = M.Note:create { body = "gone" }
    db:execute("DELETE FROM notes WHERE id = ?", { n.id })
    helper.raises("not_found", n.restore, n)
  end)

  it("reads a related set again from the primary after a write through it", function()
    local u = M.User:create { name = "cy", email = "cy@x" }
    local p, r = roles(db, function()
      u.posts:create { title = "c1" }
      assert.equal(1, #u.posts)
      u.posts:add(M.Post:create { title = "c2", author = M.bob })
      assert.equal(2, #u.posts)
    end)
    assert.equal(0, r)
    assert.equal(5, p)
    local post = M.Post:create { title = "c3", author = u }
    p, r = roles(db, function()
      post.tags:add(M.t1, M.t2)
      assert.equal(2, #post.tags)
      post.tags:remove(M.t1)
      assert.equal("t2", post.tags[1].name)
      post.tags:set { M.t1 }
      assert.equal("t1", post.tags[1].name)
      post.tags:clear()
      assert.equal(0, #post.tags)
    end)
    assert.equal(0, r)
    -- a later load of another record's relation routes as usual
    local again = M.User:filter { email = "ann@x" }:first()
    p, r = roles(db, function() return #again.posts end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("runs create and save on the primary", function()
    local u = on_primary(function() return M.User:create { name = "cy", email = "cy@x" } end)
    u.name = "cyd"
    on_primary(function() u:save() end)
    assert.equal(1, primary_count(M.User, { name = "cyd" }))
  end)

  it("runs qs:update on the primary", function()
    assert.equal(6, on_primary(function() return M.Post:filter { views__gt = 0 }:update { views = 0 } end))
    assert.equal(6, primary_count(M.Post, { views = 0 }))
  end)

  it("runs rec:delete with cascades on the primary, and its count", function()
    local res = on_primary(function() return M.User:using("primary"):get { email = "ann@x" }:delete() end)
    assert.equal(1, res.User)
    assert.equal(6, res.Post)
    assert.equal(1, res.Comment)
    assert.equal(0, primary_count(M.Post))
    assert.equal(0, primary_count(M.Comment))
  end)

  it("runs qs:delete with cascades on the primary", function()
    local res = on_primary(function() return M.Post:filter { views__lte = 3 }:delete() end)
    assert.equal(3, res.Post)
    assert.equal(1, res.Comment)
    assert.equal(3, primary_count(M.Post))
  end)

  it("runs a delete of rows written just before on the primary (not the lagging replica)", function()
    -- sticky = 0: a lookup on the replica would miss the new rows
    for _ = 1, 5 do
      M.Post:create { title = "fresh", author = M.bob }
      local res = M.Post:filter { title = "fresh" }:delete()
      assert.equal(1, res.Post)
    end
    assert.equal(0, primary_count(M.Post, { title = "fresh" }))
  end)

  it("runs upsert on the primary", function()
    local recs = on_primary(function()
      return M.User:upsert({ { email = "ann@x", name = "ann2" }, { email = "cy@x", name = "cy" } },
                           { conflict = { "email" }, update = { "name" } })
    end)
    assert.equal(2, #recs)
    assert.equal(M.ann.id, recs[1].id)
    assert.equal(3, primary_count(M.User))
    assert.equal(1, primary_count(M.User, { name = "ann2" }))
  end)

  it("runs bulk_create on the primary", function()
    local recs = on_primary(function() return M.Tag:bulk_create { { name = "t3" }, { name = "t4" } } end)
    assert.is_number(recs[2].id)
    assert.equal(4, primary_count(M.Tag))
  end)

  it("runs bulk_update on the primary", function()
    for i, p in ipairs(M.posts) do p.views = 100 + i end
    assert.equal(6, on_primary(function() return M.Post:bulk_update(M.posts, { "views" }) end))
    assert.equal(6, primary_count(M.Post, { views__gt = 100 }))
  end)

  it("runs get_or_create on the primary and finds a row written just before", function()
    for i = 1, 5 do
      local email = "new" .. i .. "@x"
      M.User:create { name = "n", email = email }
      local got = on_primary(function()
        return table.pack(M.User:get_or_create({ email = email }, { name = "other" }))
      end)
      assert.is_false(got[2])
      assert.equal("n", got[1].name)
    end
    local rec, created = M.User:get_or_create({ email = "brand@x" }, { name = "b" })
    assert.is_true(created)
    assert.equal("b", rec.name)
    assert.equal(8, primary_count(M.User))
  end)

  it("runs update_or_create on the primary and updates a row written just before", function()
    for i = 1, 5 do
      local email = "upd" .. i .. "@x"
      M.User:create { name = "n", email = email }
      local rec, created = M.User:update_or_create({ email = email }, { name = "u" .. i })
      assert.is_false(created)
      assert.equal("u" .. i, rec.name)
    end
    on_primary(function() M.User:update_or_create({ email = "upd1@x" }, { name = "again" }) end)
    local rec, created = M.User:update_or_create({ email = "brand@x" }, { name = "b" })
    assert.is_true(created)
    assert.equal("b", rec.name)
    assert.equal(1, primary_count(M.User, { name = "again" }))
    assert.equal(8, primary_count(M.User))
  end)

  it("runs many-to-many add, set, remove and clear on the primary", function()
    local p = M.posts[2]
    on_primary(function() p.tags:add(M.t1, M.t2) end)
    assert.equal(2, p.tags:using("primary"):count())
    on_primary(function() p.tags:set { M.t2 } end)
    assert.equal(1, p.tags:using("primary"):count())
    on_primary(function() p.tags:remove(M.t2) end)
    assert.equal(0, p.tags:using("primary"):count())
    p.tags:add(M.t1)
    on_primary(function() p.tags:clear() end)
    assert.equal(0, p.tags:using("primary"):count())
  end)

  it("runs select_for_update (all kinds, nowait, skip_locked) on the primary inside db:transaction", function()
    on_primary(function()
      db:transaction(function()
        assert.equal(6, #M.Post:select_for_update():all())
        assert.equal("p01", M.Post:select_for_update { nowait = true }:order_by("id"):first().title)
        assert.equal(6, M.Post:select_for_update { skip_locked = true }:count())
        assert.is_true(M.Post:select_for_update():exists())
        assert.equal(6, #M.Post:select_for_update():pluck("id"))
        assert.equal("ann", M.User:select_for_update():get { email = "ann@x" }.name)
        local n = 0
        for _ in M.Post:select_for_update():iter() do n = n + 1 end
        assert.equal(6, n)
        assert.equal(6, #M.Post:select_for_update():values("id"):all())
      end)
    end)
  end)

  it("raises misuse for select_for_update outside a transaction, sending nothing", function()
    local p, r = roles(db, function()
      helper.raises("misuse", function() return M.Post:select_for_update():all() end)
      helper.raises("misuse", function() return M.Post:select_for_update():count() end)
    end)
    assert.equal(0, p)
    assert.equal(0, r)
  end)

  it("runs soft delete, restore and hard delete on the primary", function()
    local n = M.Note:create { body = "n" }
    assert.equal(1, on_primary(function() return n:delete() end).Note)
    assert.equal(0, primary_count(M.Note))
    assert.is_true(on_primary(function() return n:restore() end))
    assert.equal(1, primary_count(M.Note))
    on_primary(function() return M.Note:filter { body = "n" }:delete() end)
    assert.equal(1, M.Note:only_deleted():using("primary"):count())
    on_primary(function() return n:delete { hard = true } end)
    assert.equal(0, M.Note:with_deleted():using("primary"):count())
  end)

  it("runs create_tables and migrate on the primary", function()
    M.Extra = db:model("Extra", { n = quay.integer() })
    on_primary(function() db:create_tables() end)
    M.Extra:create { n = 1 }
    on_primary(function() db:migrate() end)
    assert.equal(1, M.Extra:using("primary"):count())
  end)

  it("runs raw SQL on the primary", function()
    assert.equal(6, on_primary(function() return db:execute("UPDATE posts SET views = 0") end))
    assert.equal(6, on_primary(function() return db:rows("SELECT count(*) AS n FROM posts WHERE views = 0") end)[1].n)
    assert.equal(6, #on_primary(function() return M.Post:raw("SELECT * FROM posts") end))
  end)

  it("runs the queries of save hooks inside the write, on the primary", function()
    local e = on_primary(function() return M.Entry:create { title = "e", author = M.ann } end)
    assert.same({ "before_save", true, 0 }, log[1])
    assert.same({ "after_save", true, 1, "ann" }, log[2])
    e.title = "f"
    on_primary(function() e:save() end)
    assert.same({ "after_save", false, 1, "ann" }, log[4])
  end)

  it("runs the queries of delete hooks inside the write, on the primary", function()
    local e = M.Entry:create { title = "e", author = M.ann }
    for i = #log, 1, -1 do log[i] = nil end
    on_primary(function() e:delete() end)
    assert.same({ "before_delete", 1 }, log[1])
    assert.same({ "after_delete", 0 }, log[2])
    -- a cascade from the user runs them too
    M.Entry:create { title = "e2", author = M.bob }
    for i = #log, 1, -1 do log[i] = nil end
    on_primary(function() M.User:using("primary"):get { email = "bob@x" }:delete() end)
    assert.same({ "before_delete", 1 }, log[1])
    assert.same({ "after_delete", 0 }, log[2])
  end)

  it("runs the hook queries of bulk_create, upsert and bulk_update on the primary", function()
    local recs = on_primary(function()
      return M.Entry:bulk_create { { title = "a", author = M.ann }, { title = "b", author = M.ann } }
    end)
    for _, l in ipairs(log) do
      if l[1] == "after_save" then assert.equal(1, l[3]) end
    end
    for _, r in ipairs(recs) do r.title = r.title .. "!" end
    for i = #log, 1, -1 do log[i] = nil end
    on_primary(function() M.Entry:bulk_update(recs, { "title" }) end)
    assert.is_true(#log >= 4)
    for _, l in ipairs(log) do
      if l[1] == "after_save" then assert.equal(1, l[3]) end
    end
  end)

  it("counts queries = primary + replica over a mix of reads and writes", function()
    local s0 = db:stats()
    M.Post:count()
    M.Post:prefetch_related("tags"):all()
    M.Post:create { title = "x", author = M.bob }
    db:transaction(function() M.Post:count() end)
    local s = db:stats()
    assert.equal(s.queries - s0.queries, (s.primary - s0.primary) + (s.replica - s0.replica))
    assert.equal(3, s.replica - s0.replica)
    assert.equal(4, s.primary - s0.primary)
  end)
end)

describe("a replica down during each read kind", function()
  if not have_cluster then
    it("needs the cluster of scripts/test.sh", function()
      pending("no replica (QUAY_PG_REPLICA_URL / QUAY_PG_CLUSTER unset, or SQLite)")
    end)
    return
  end

  local db, M
  local function open(app)
    db = helper.open { replicas = { replica_url(app) }, sticky = 0 }
    M = models(db)
    caught_up(db)
  end
  after_each(function()
    if db then db:close() end
    db = nil
  end)

  -- Cut the db's replica session (the replica itself stays up).
  local function cut(app)
    local r = quay.open(replica_url())
    local n = r:rows("SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity " ..
                     "WHERE application_name = ?", { app })[1].n
    r:close()
    assert.equal(1, n)
  end

  for i, k in ipairs(reads) do
    it("moves " .. k.name .. " to the primary when its replica session is lost", function()
      local app = "cut" .. i
      open(app)
      local ctx = k.prep and k.prep(M, plain)   -- read from the replica
      assert.equal(1, select(2, roles(db, function() return M.User:count() end)))
      cut(app)
      local p, r, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st0), v)
      assert.equal(1, r)                          -- the one that found it gone
      assert.equal(k.n, p)
      assert.is_true(db:is_open())
    end)
  end

  for _, how in ipairs { "stop", "kill" } do
    describe("(" .. how .. "-replica)", function()
      local ddb, DM
      lazy_setup(function()
        ddb = helper.open { replicas = { replica_url() }, sticky = 0 }
        DM = models(ddb)
        caught_up(ddb)
        DM.User:count()                          -- a replica session
        cluster_do(how .. "-replica")
      end)
      lazy_teardown(function()
        cluster_do("start-replica")
        ddb:close()
      end)

      for _, k in ipairs(reads) do
        it("reads " .. k.name .. " from the primary", function()
          local ctx = k.prep and k.prep(DM, plain)
          local p, r, v = roles(ddb, function() return k.run(DM, plain, ctx) end)
          assert.equal(k.want(DM.st0), v)
          assert.is_true(r <= 1)
          assert.equal(k.n, p)
        end)
      end

      it("writes and reads its writes while the replica is down", function()
        local p, r = roles(ddb, function()
          DM.Post:create { title = "p07", views = 7, author = DM.ann }
          assert.equal(7, DM.Post:count())
          assert.equal(7, DM.Post:using("primary"):count())
        end)
        assert.equal(3, p)
        assert.equal(0, r)
      end)
    end)
  end

  it("reads from the replica again once it is back", function()
    open()
    caught_up(db)
    sleep(2.1)                                    -- past the retry time
    local p, r = roles(db, function() return M.Post:count() end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)
end)

describe("behind PgBouncer in transaction pooling ({ prepare = false })", function()
  if not have_bouncer then
    it("needs the PgBouncer of scripts/test.sh", function()
      pending("no PgBouncer (QUAY_PGBOUNCER_URL unset, or SQLite)")
    end)
    return
  end

  local db, M, others
  local function bopen(opts)
    local o = { prepare = false }
    for k, v in pairs(opts or {}) do o[k] = v end
    local d = quay.open(bouncer_env, o)
    others[#others + 1] = d
    return d
  end
  before_each(function()
    others = {}
    db = bopen()
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
    M = models(db)
  end)
  after_each(function()
    for _, d in ipairs(others) do d:close() end
  end)

  -- Another handle on the same database, with the same models.
  local function second(opts)
    local d = bopen(opts)
    local N = { db = d }
    N.User = d:model("User", { name = quay.string(), email = quay.string { unique = true } })
    N.Post = d:model("Post", {
      title = quay.string(), views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    })
    return N
  end

  for _, k in ipairs(reads) do
    it("runs " .. k.name .. " inside and outside a transaction", function()
      local ctx = k.prep and k.prep(M, plain)
      assert.equal(k.want(M.st0), k.run(M, plain, ctx))
      db:transaction(function()
        the_write(M)
        ctx = k.prep and k.prep(M, plain)
        assert.equal(k.want(M.st1), k.run(M, plain, ctx))
        db:transaction(function()
          assert.equal(k.want(M.st1), k.run(M, plain, ctx))
        end)
      end)
    end)
  end

  it("rolls back only the inner savepoint when a nested transaction raises", function()
    db:transaction(function()
      M.Post:create { title = "kept", author = M.bob }
      local ok, err = pcall(db.transaction, db, function()
        M.Post:create { title = "undone", author = M.bob }
        error({ code = "mine" })
      end)
      assert.is_false(ok)
      assert.equal("mine", err.code)
      M.Post:create { title = "kept2", author = M.bob }
    end)
    assert.equal(2, M.Post:filter { author = M.bob }:count())
    assert.equal(0, M.Post:filter { title = "undone" }:count())
  end)

  it("recovers a transaction from a failed statement through a nested transaction", function()
    db:transaction(function()
      M.User:create { name = "cy", email = "cy@x" }
      for _ = 1, 3 do
        helper.raises("integrity", db.transaction, db, function()
          return M.User:create { name = "dup", email = "ann@x" }
        end)
      end
      M.User:create { name = "dy", email = "dy@x" }
    end)
    assert.equal(4, M.User:count())
  end)

  it("nests three levels and keeps what each level decided", function()
    db:transaction(function()
      M.Tag:create { name = "a" }
      db:transaction(function()
        M.Tag:create { name = "b" }
        pcall(db.transaction, db, function()
          M.Tag:create { name = "c" }
          error("no")
        end)
        M.Tag:create { name = "d" }
      end)
      pcall(db.transaction, db, function()
        M.Tag:create { name = "e" }
        db:transaction(function() M.Tag:create { name = "f" } end)
        error("no")
      end)
    end)
    local names = M.Tag:order_by("name"):pluck("name")
    assert.same({ "a", "b", "d", "t1", "t2" }, { table.unpack(names) })
  end)

  it("undoes a hook's error inside a nested transaction only", function()
    local H = db:model("H", {
      n = quay.integer(),
      hooks = { after_save = function(rec) if rec.n < 0 then error({ code = "neg" }) end end },
    })
    db:create_tables()
    db:transaction(function()
      H:create { n = 1 }
      local ok, err = pcall(db.transaction, db, function() return H:create { n = -1 } end)
      assert.is_false(ok)
      assert.equal("neg", err.code)
      local ok2 = pcall(H.create, H, { n = -2 })  -- the hook's own savepoint
      assert.is_false(ok2)
      H:create { n = 2 }
    end)
    assert.same({ 1, 2 }, { table.unpack(H:order_by("n"):pluck("n")) })
  end)

  it("runs get_or_create and update_or_create inside a transaction", function()
    db:transaction(function()
      local u, created = M.User:get_or_create({ email = "ann@x" }, { name = "x" })
      assert.is_false(created)
      assert.equal(M.ann.id, u.id)
      u, created = M.User:update_or_create({ email = "cy@x" }, { name = "cy" })
      assert.is_true(created)
      u, created = M.User:get_or_create({ email = "cy@x" }, { name = "x" })
      assert.is_false(created)
      assert.equal("cy", u.name)
    end)
    assert.equal(3, M.User:count())
  end)

  it("runs get_or_create and update_or_create safely under another pooled handle's insert", function()
    local N = second()
    for _, fn in ipairs { "get_or_create", "update_or_create" } do
      local email = fn .. "@x"
      local fired = false
      -- the other handle inserts the same key just before this one does
      db:on_query(function(sql)
        if not fired and sql:match("^INSERT") then
          fired = true
          N.User:create { name = "other", email = email }
        end
      end)
      local ok, rec, created = pcall(M.User[fn], M.User, { email = email }, { name = "mine" })
      db:on_query(nil)
      assert(ok, rec)
      assert.is_true(fired)
      assert.is_false(created)
      assert.equal(fn == "get_or_create" and "other" or "mine", rec.name)
      assert.equal(1, M.User:filter { email = email }:count())
    end
  end)

  it("keeps bulk writes atomic inside a nested transaction that raises", function()
    db:transaction(function()
      pcall(db.transaction, db, function()
        M.Tag:bulk_create { { name = "x1" }, { name = "x2" } }
        M.User:upsert({ { email = "ann@x", name = "gone" } }, { conflict = { "email" } })
        M.posts[2].tags:set { M.t1, M.t2 }
        error("no")
      end)
    end)
    assert.equal(2, M.Tag:count())
    assert.equal("ann", M.User:get { email = "ann@x" }.name)
    assert.equal(0, M.posts[2].tags:count())
  end)

  it("raises busy for select_for_update { nowait = true } on a row another handle locked", function()
    local N = second()
    N.db:transaction(function()
      assert.equal(1, #N.Post:filter { title = "p01" }:select_for_update():all())
      -- the failed statement aborts the transaction: busy is what it raises
      helper.raises("busy", db.transaction, db, function()
        return M.Post:filter { title = "p01" }:select_for_update { nowait = true }:all()
      end)
      db:transaction(function()
        helper.raises("busy", db.transaction, db, function()   -- a savepoint
          return M.Post:filter { title = "p01" }:select_for_update { nowait = true }:first()
        end)
        assert.equal(6, M.Post:count())
      end)
      db:transaction(function()
        local got = M.Post:select_for_update { skip_locked = true }:pluck("title")
        assert.equal(5, #got)
        for _, t in ipairs(got) do assert.are_not.equal("p01", t) end
      end)
    end)
    -- both sessions usable afterwards
    assert.equal(6, M.Post:count())
    assert.equal(6, N.Post:count())
  end)

  it("keeps other handles' work out of an open transaction (pool of 4 servers)", function()
    local hs = {}
    for i = 1, 3 do hs[i] = second() end
    local ok, err = pcall(db.transaction, db, function()
      M.Post:create { title = "mine", author = M.bob }
      for i, h in ipairs(hs) do
        assert.equal(0, h.Post:filter { title = "mine" }:count())
        h.Post:create { title = "theirs" .. i, author = h.User:get { email = "bob@x" } }
      end
      assert.equal(4, M.Post:filter { author = M.bob }:count())
      error({ code = "undo" })
    end)
    assert.is_false(ok)
    assert.equal("undo", err.code)
    assert.equal(0, M.Post:filter { title = "mine" }:count())
    assert.equal(3, M.Post:filter { author = M.bob }:count())
  end)

  it("runs transaction options and raw SQL transactions through the pooler", function()
    assert.equal(6, db:transaction(function() return M.Post:count() end, { isolation = "serializable" }))
    assert.equal(6, db:transaction(function() return M.Post:count() end,
                                   { isolation = "repeatable_read", readonly = true }))
    helper.raises("sql", db.transaction, db, function()
      M.Tag:create { name = "ro" }
    end, { readonly = true })
    db:execute("BEGIN")
    M.Tag:create { name = "host" }
    pcall(db.transaction, db, function()
      M.Tag:create { name = "inner" }
      error("no")
    end)
    db:execute("COMMIT")
    assert.equal(1, M.Tag:filter { name = "host" }:count())
    assert.equal(0, M.Tag:filter { name = "inner" }:count())
    assert.equal(0, M.Tag:filter { name = "ro" }:count())
  end)

  it("round-trips blobs that need a described statement, in and out of transactions", function()
    local B = db:model("B", { data = quay.blob() })
    db:create_tables()
    local v = "a\0b\\c\255"
    B:create { data = v }
    db:transaction(function()
      B:create { data = v }
      db:transaction(function() B:create { data = v } end)
      pcall(db.transaction, db, function()
        B:create { data = v }
        error("no")
      end)
    end)
    assert.equal(3, B:filter { data = v }:count())
    for _, r in ipairs(B:all()) do assert.equal(v, r.data) end
  end)

  it("reads iter() whole and runs writes between its rows", function()
    local n = 0
    for p in M.Post:order_by("id"):iter() do
      n = n + 1
      M.Comment:create { body = "i" .. n, post = p }
    end
    assert.equal(6, n)
    assert.equal(7, M.Comment:count())
  end)

  it("does not leak busy_timeout to other clients of the pool, and keeps it", function()
    local a = bopen { busy_timeout = 77 }
    local A = a:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
    local b = bopen()
    -- b holds a server connection, so a's statements run on another one
    b:execute("BEGIN")
    -- (not "0": a raw SET by another spec may have stayed on a server
    -- connection of the pool)
    assert.are_not.equal("77ms", b:rows("SHOW lock_timeout")[1].lock_timeout)
    local N = second()
    N.db:transaction(function()
      N.Post:filter { title = "p01" }:update { views = 100 }   -- holds the row lock
      local t0 = os.time()
      helper.raises("busy", function() return A:filter { title = "p01" }:update { views = 5 } end)
      helper.raises("busy", a.transaction, a, function()
        return A:filter { title = "p01" }:update { views = 5 }
      end)
      assert.is_true(os.time() - t0 < 10)
    end)
    b:execute("ROLLBACK")
    assert.equal(100, M.Post:get { title = "p01" }.views)
    assert.equal("77ms", a:rows("SHOW lock_timeout")[1].lock_timeout)
  end)

  it("keeps busy_timeout in a transaction the host opened with raw SQL", function()
    local a = bopen { busy_timeout = 77 }
    local A = a:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
    local N = second()
    N.db:transaction(function()
      N.Post:filter { title = "p02" }:update { views = 100 }
      a:execute("BEGIN")
      A:filter { title = "p03" }:update { views = 30 }
      helper.raises("busy", function() return A:filter { title = "p02" }:update { views = 5 } end)
      a:execute("ROLLBACK")
      a:execute("BEGIN")
      A:filter { title = "p03" }:update { views = 31 }
      a:execute("COMMIT")
    end)
    assert.equal(31, M.Post:get { title = "p03" }.views)
    assert.equal(100, M.Post:get { title = "p02" }.views)
  end)

  it("runs hook queries inside the write through the pooler", function()
    local log = {}
    local d = bopen()
    local H = models_on(d, log)
    local e = H.Entry:create { title = "e", author = H.User:get { email = "ann@x" } }
    assert.same({ "before_save", true, 0 }, log[1])
    assert.same({ "after_save", true, 1, "ann" }, log[2])
    db:transaction(function() return M.Post:count() end)
    d:transaction(function()
      e:delete()
      assert.same({ "before_delete", 1 }, log[3])
      assert.same({ "after_delete", 0 }, log[4])
    end)
  end)

  it("migrates a model change through the pooler", function()
    local d = bopen()
    models(d, nil, { bare = true, color = true })
    d:migrate()
    assert.equal(2, #d:rows("SELECT color FROM tags"))
    d:migrate()                                   -- nothing left to do
  end)

  it("runs statements that refuse a transaction block with a busy_timeout", function()
    local a = bopen { busy_timeout = 77 }
    a:execute("VACUUM posts")
    helper.raises("sql", a.transaction, a, function() a:execute("VACUUM posts") end)
    local A = a:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
    assert.equal(6, A:count())
  end)
end)

describe("replicas and PgBouncer together", function()
  if not (have_cluster and have_bouncer) then
    it("needs the cluster of scripts/test.sh", function()
      pending("no replica or PgBouncer")
    end)
    return
  end

  it("routes reads to the replica and writes through the pooler", function()
    -- the primary through PgBouncer, its database's replica directly
    local bdb = bouncer_env:match("/([^/?]+)$")
    local rurl = replica_env:gsub("/[^/?]+$", "/" .. bdb)
    local db = quay.open(bouncer_env, { prepare = false, replicas = { rurl }, sticky = 0 })
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
    local M = models(db)
    local lsn = db:rows("SELECT pg_current_wal_insert_lsn()::text AS l")[1].l
    local r = quay.open(rurl)
    for _ = 1, 400 do
      if r:rows("SELECT pg_last_wal_replay_lsn() >= ?::pg_lsn AS ok", { lsn })[1].ok then break end
      sleep(0.05)
    end
    r:close()
    for _, k in ipairs(reads) do
      local ctx = k.prep and k.prep(M, plain)
      local p, rr, v = roles(db, function() return k.run(M, plain, ctx) end)
      assert.equal(k.want(M.st0), v, k.name)
      assert.equal(0, p, k.name)
      assert.equal(k.n, rr, k.name)
    end
    db:transaction(function()
      the_write(M)
      for _, k in ipairs(reads) do
        local ctx = k.prep and k.prep(M, plain)
        local p, rr, v = roles(db, function() return k.run(M, plain, ctx) end)
        assert.equal(k.want(M.st1), v, k.name)
        assert.equal(k.n, p, k.name)
        assert.equal(0, rr, k.name)
      end
    end)
    db:close()
  end)
end)
