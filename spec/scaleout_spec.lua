-- spec/scaleout_spec.lua: scale-out on PostgreSQL (docs/reference.md
-- "Scale-out on PostgreSQL", docs/postgresql.md): quay.open's prepare,
-- replicas and sticky options, read routing, using("primary"), stats per
-- role, and servers that go away under a db: a dead or stopped replica,
-- a replica killed mid-iter(), PgBouncer and the primary restarted.
--
-- The server parts need the cluster scripts/test.sh starts
-- (scripts/pg-cluster.sh): QUAY_PG_REPLICA_URL (a streaming replica of
-- the primary), QUAY_PGBOUNCER_URL and QUAY_PG_CLUSTER (its directory,
-- for the fault actions).  Without them those parts are pending.  On
-- SQLite the options are accepted and do nothing.
local helper = require("spec.helper")
local quay = helper.quay

local cluster_mod = require("spec.cluster")
local replica_env, cluster, have_cluster = cluster_mod.replica_env, cluster_mod.dir, cluster_mod.have
local sleep, cluster_do, with_param = cluster_mod.sleep, cluster_mod.run, cluster_mod.with_param
local replica_url, caught_up = cluster_mod.replica_url, cluster_mod.caught_up

-- Statements sent to each role while running fn.
local function roles(db, fn)
  local a = db:stats()
  fn()
  local b = db:stats()
  return b.primary - a.primary, b.replica - a.replica
end

describe("quay.open scale-out options", function()
  it("accepts prepare, replicas and sticky, and counts statements per role", function()
    local reps = helper.is_pg and have_cluster and { replica_url() } or
                 { "postgresql://nobody@127.0.0.1:1/none" }
    local db = helper.open { prepare = false, replicas = reps, sticky = 5 }
    local U = db:model("User", { name = quay.string() })
    db:create_tables()
    U:create { name = "a" }
    assert.equal(1, U:count())
    local s = db:stats()
    assert.equal(s.queries, s.primary + s.replica)
    if not helper.is_pg then
      -- SQLite has no replicas: everything runs on the one database
      assert.equal(0, s.replica)
      assert.equal(s.queries, s.primary)
      assert.equal(0, select(2, roles(db, function() U:all() end)))
    end
    db:close()
  end)

  it("raises misuse for an unknown option or a wrong shape", function()
    helper.mentions(helper.raises("misuse", quay.open, helper.url, { replica = {} }),
                    "replica", "replicas")
    helper.raises("misuse", quay.open, helper.url, { prepare = "no" })
    helper.raises("misuse", quay.open, helper.url, { sticky = -1 })
    helper.raises("misuse", quay.open, helper.url, { sticky = "1" })
    helper.mentions(helper.raises("misuse", quay.open, helper.url, { sticky = 0 / 0 }), "sticky", "NaN")
    helper.raises("misuse", quay.open, helper.url, { replicas = "postgresql://x" })
    helper.raises("misuse", quay.open, helper.url, { replicas = { 5 } })
    helper.raises("misuse", quay.open, helper.url, { replicas = { x = "postgresql://x" } })
    helper.raises("misuse", quay.open, helper.url, "strict")
    if helper.is_pg then
      helper.mentions(helper.raises("misuse", quay.open, helper.url,
                                    { replicas = { "sqlite::memory:" } }), "replica 1")
    end
  end)

  it("keeps a session usable after a statement the server refuses (through the pooler too)", function()
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }
    -- the server's own parameter count check (08P01 is the Bind's fault)
    local sql = helper.is_pg and "SELECT $1::int AS a, $2::int AS b" or "SELECT nope FROM ts"
    local e = helper.raises("sql", db.rows, db, sql, { 1 })
    if helper.is_pg then assert.equal("08P01", e.sqlstate) end
    assert.equal(1, T:count())
    -- inside db:transaction: rolled back when the call ends, session usable
    local ok, err = pcall(db.transaction, db, function()
      T:create { n = 2 }
      db:rows(sql, { 1 })
    end)
    assert.is_false(ok)
    assert.equal("sql", err.code)
    assert.equal(1, T:count())
    db:transaction(function() T:create { n = 3 } end)
    assert.equal(2, T:count())
    db:close()
  end)

  it("pins a query set to the primary with using(\"primary\") only", function()
    local db = helper.open()
    local U = db:model("User", { name = quay.string() })
    db:create_tables()
    U:create { name = "a" }
    assert.equal(1, U:using("primary"):count())
    assert.equal("a", U:query():using("primary"):filter { name = "a" }:first().name)
    helper.raises("misuse", function() U:query():using("replica") end)
    helper.raises("misuse", function() U:query():using() end)
    db:close()
  end)
end)

describe("read replicas", function()
  if not have_cluster then
    it("need the cluster of scripts/test.sh", function()
      pending("no replica (QUAY_PG_REPLICA_URL / QUAY_PG_CLUSTER unset, or SQLite)")
    end)
    return
  end

  local db, User, Post

  local function schema(opts)
    db = helper.open(opts)
    User = db:model("User", { name = quay.string() })
    Post = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("User", { related_name = "posts" }),
    })
    db:create_tables()
    local users = User:bulk_create { { name = "ann" }, { name = "bob" } }
    local rows = {}
    for i = 1, 10 do rows[i] = { title = "p" .. i, author = users[i % 2 + 1] } end
    Post:bulk_create(rows)
    caught_up(db)
  end

  after_each(function()
    if db then db:close() end
    db = nil
  end)

  it("sends reads outside a transaction to the replica, writes to the primary", function()
    schema { replicas = { replica_url() }, sticky = 0 }
    local p, r = roles(db, function()
      assert.equal(10, #Post:all())
      assert.equal(5, Post:filter { author__name = "ann" }:count())
      assert.is_true(User:filter { name = "bob" }:exists())
      assert.equal(2, #User:pluck("name"))
      assert.equal(10, #Post:prefetch_related("author"):all())   -- 2 statements
    end)
    assert.equal(0, p)
    assert.equal(6, r)
    p, r = roles(db, function() User:create { name = "cy" } end)
    assert.equal(1, p)
    assert.equal(0, r)
    p, r = roles(db, function()
      db:rows("SELECT 1 AS one")                  -- raw SQL: the primary
      db:transaction(function()
        assert.equal(3, User:count())             -- a transaction reads its own
        User:create { name = "dan" }
        assert.equal(4, User:count())
      end)
      assert.equal(10, #Post:using("primary"):all())
      assert.equal(4, User:using("primary"):count())
    end)
    assert.equal(0, r)
    assert.is_true(p >= 6)
  end)

  it("keeps reads on the primary inside a transaction the host opened", function()
    schema { replicas = { replica_url() }, sticky = 0 }
    db:execute("BEGIN")
    local p, r = roles(db, function()
      User:create { name = "cy" }                 -- inside the host's BEGIN
      assert.equal(3, User:count())               -- sees its own write
      assert.equal(10, #Post:all())
    end)
    db:execute("ROLLBACK")
    assert.equal(0, r)
    assert.is_true(p >= 3)
    caught_up(db)
    assert.equal(2, User:count())                 -- the host rolled it back
  end)

  it("reads its own writes: a write then an immediate read sees it (sticky)", function()
    schema { replicas = { replica_url() } }        -- sticky: 1 s by default
    local ann = User:get { name = "ann" }
    for i = 1, 20 do
      local p, r = roles(db, function()
        Post:create { title = "new" .. i, author = ann }
        assert.equal(i, Post:filter { title__startswith = "new" }:count())
        assert.equal("new" .. i, Post:order_by("-id"):first().title)
      end)
      assert.equal(3, p)
      assert.equal(0, r)
    end
    -- once the sticky time has passed, reads go to the replica again
    caught_up(db)
    sleep(1.1)
    local p, r = roles(db, function() assert.equal(30, Post:count()) end)
    assert.equal(0, p)
    assert.equal(1, r)
    -- sticky = 0: no stickiness
    db:close()
    db = quay.open(helper.url, { replicas = { replica_url() }, sticky = 0 })
    Post = db:model("Post", { title = quay.string() })
    db:execute("UPDATE posts SET title = 'x' WHERE id = 1")
    p, r = roles(db, function() Post:count() end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("reads a result's lazy loads and prefetches from the server that read it", function()
    -- Two replica servers (the same replica under two application names)
    -- and views that say which session read each row.
    db = helper.open()
    db:execute([[CREATE TABLE w_users (id bigint GENERATED BY DEFAULT AS
                   IDENTITY PRIMARY KEY, name varchar(50) NOT NULL)]])
    db:execute([[CREATE TABLE w_posts (id bigint GENERATED BY DEFAULT AS
                   IDENTITY PRIMARY KEY, title varchar(50) NOT NULL,
                   author_id bigint NOT NULL REFERENCES w_users)]])
    db:execute([[CREATE VIEW users AS SELECT id, name,
                   current_setting('application_name') AS app FROM w_users]])
    db:execute([[CREATE VIEW posts AS SELECT id, title, author_id,
                   current_setting('application_name') AS app FROM w_posts]])
    db:execute("INSERT INTO w_users (name) VALUES ('ann'), ('bob')")
    db:execute([[INSERT INTO w_posts (title, author_id)
                   SELECT 'p' || i, 1 + i % 2 FROM generate_series(1, 10) AS i]])
    caught_up(db)
    db:close()
    db = quay.open(with_param(helper.url, "application_name", "p"),
                   { replicas = { replica_url("r1"), replica_url("r2") }, sticky = 0 })
    User = db:model("User", { name = quay.string(), app = quay.string { null = true } })
    Post = db:model("Post", {
      title = quay.string(), app = quay.string { null = true },
      author = quay.belongs_to("User", { related_name = "posts" }),
    })
    local seen = {}
    for _ = 1, 4 do
      local posts = Post:order_by("id"):all()
      local app = posts[1].app
      assert.is_truthy(app == "r1" or app == "r2", app)
      seen[app] = (seen[app] or 0) + 1
      for _, p in ipairs(posts) do
        assert.equal(app, p.app)
        assert.equal(app, p.author.app)           -- lazy load: same server
      end
      local users = User:order_by("id"):all()     -- the next replica in turn
      assert.are_not.equal(app, users[1].app)
      assert.equal(users[1].app, users[1].posts[1].app)   -- a lazy set
      local pre = Post:prefetch_related("author"):order_by("id"):all()
      for _, p in ipairs(pre) do assert.equal(pre[1].app, p.author.app) end
      local joined = Post:select_related("author"):all()
      assert.equal(joined[1].app, joined[1].author.app)
      assert.equal(10, Post:count())              -- five routed reads a round
      local pinned = Post:using("primary"):order_by("id"):all()
      assert.equal("p", pinned[1].app)
      assert.equal("p", pinned[1].author.app)     -- its lazy loads too
    end
    assert.equal(2, seen.r1)
    assert.equal(2, seen.r2)
  end)

  it("skips a replica that cannot be reached", function()
    schema { sticky = 0, replicas = { "postgresql://postgres@127.0.0.1:1/postgres",
                                      replica_url() } }
    local p, r = roles(db, function()
      for _ = 1, 6 do assert.equal(10, Post:count()) end
    end)
    assert.equal(0, p)
    assert.equal(6, r)
    db:close()
    -- no replica answers: the primary does
    db = quay.open(helper.url, { sticky = 0,
                   replicas = { "postgresql://postgres@127.0.0.1:1/postgres" } })
    Post = db:model("Post", { title = quay.string() })
    p, r = roles(db, function() assert.equal(10, Post:count()) end)
    assert.equal(1, p)
    assert.equal(0, r)
  end)

  it("moves reads to the primary while the replica is stopped, and back", function()
    schema { replicas = { replica_url() }, sticky = 0 }
    local p, r = roles(db, function() assert.equal(10, Post:count()) end)
    assert.equal(1, r)
    cluster_do("stop-replica")
    local ok, err = pcall(function()
      p, r = roles(db, function()
        assert.equal(10, Post:count())            -- lost on the replica, read again
        assert.equal(10, #Post:prefetch_related("author"):all())
        assert.equal(2, User:count())
      end)
      assert.equal(4, p)
      assert.equal(1, r)                          -- the one that found it gone
      Post:create { title = "while down", author = User:first() }
    end)
    cluster_do("start-replica")
    assert(ok, err)
    sleep(2.1)                                    -- the retry time
    p, r = roles(db, function() assert.equal(11, Post:count()) end)
    assert.equal(0, p)
    assert.equal(1, r)
  end)

  it("raises connection when the replica is killed mid-iter(), then reads on", function()
    schema { replicas = { replica_url() }, sticky = 0 }
    local rows = {}
    for i = 1, 1000 do rows[i] = { title = "t" .. i, author = User:first() } end
    Post:bulk_create(rows)
    caught_up(db)
    local seen = 0
    local ok, err = pcall(function()
      for _ in Post:order_by("id"):iter() do
        seen = seen + 1
        if seen == 1 then cluster_do("kill-replica") end
      end
    end)
    cluster_do("start-replica")
    if helper.pooled then
      -- { prepare = false }: iter() read the whole result at once
      assert(ok, err)
      assert.equal(1010, seen)
    else
      assert.is_false(ok)
      assert.equal("connection", err.code, tostring(err.message))
      helper.mentions(err, "replica 1")
      assert.is_true(seen >= 1 and seen < 1010)
    end
    -- the db goes on (the primary answers while the replica is down), and
    -- nothing committed was lost
    assert.is_true(db:is_open())
    assert.equal(1010, Post:count())
    assert.equal(1010, Post:using("primary"):count())
  end)
end)

describe("servers restarted under a db", function()
  if not have_cluster then
    it("need the cluster of scripts/test.sh", function()
      pending("no cluster (QUAY_PG_CLUSTER unset, or SQLite)")
    end)
    return
  end

  local function setup()
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:bulk_create { { n = 1 }, { n = 2 } }
    return db, T
  end

  it("raises connection after the primary restarts, loses nothing, works after reopen", function()
    local db, T = setup()
    db:transaction(function() T:create { n = 3 } end)   -- committed
    cluster_do("restart-primary")
    local ok, err = pcall(T.count, T)
    if helper.pooled then
      -- PgBouncer hides the restart between transactions
      if not ok then assert.equal("connection", err.code) end
    else
      assert.is_false(ok)
      assert.equal("connection", err.code)
      -- an sql error is not what a lost server gives, nor is the session
      -- usable before reopen
      helper.raises("connection", T.count, T)
    end
    db:reopen()
    assert.equal(3, T:count())
    T:create { n = 4 }
    assert.equal(4, T:count())
    db:close()
  end)

  it("raises connection when PgBouncer restarts, loses nothing, works after reopen", function()
    local bouncer = os.getenv("QUAY_PGBOUNCER_URL")
    if not bouncer then
      pending("no PgBouncer (QUAY_PGBOUNCER_URL unset)")
      return
    end
    local db, T = setup()
    local b = quay.open(with_param(bouncer, "application_name", "b"), { prepare = false })
    local TB = b:model("T", { n = quay.integer() })
    local bdb = bouncer:match("/([^/?]+)$")
    if bdb ~= helper.url:match("/([^/?]+)$") then
      -- the direct pass: the table lives in another database
      b:execute("DROP TABLE IF EXISTS ts")
      b:create_tables()
      TB:bulk_create { { n = 1 }, { n = 2 } }
    end
    TB:create { n = 3 }
    cluster_do("restart-bouncer")
    local err = helper.raises("connection", TB.count, TB)
    helper.mentions(err, "db:reopen()")
    b:reopen()
    assert.equal(3, TB:count())
    b:transaction(function() TB:create { n = 4 } end)
    assert.equal(4, TB:count())
    if bdb ~= helper.url:match("/([^/?]+)$") then b:execute("DROP TABLE ts") end
    b:close()
    db:close()
  end)
end)
