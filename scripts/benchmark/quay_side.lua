-- scripts/benchmark/quay_side.lua: the Quay side of one workload.
--   quay quay_side.lua WORKLOAD DB NUSERS
-- DB is an SQLite file or a PostgreSQL URL (postgresql://..., postgres://...
-- or a libpq keyword string).  WORKLOAD is schema (create the tables on DB),
-- sql (see below), w1..w8, w9, w10, w10s, w11, w12 (db:migrate() to the
-- models' version 2: a SQLite rebuild of posts), diff (see below), pipe /
-- pipepf (200 times one page of posts with author, tags and comments:
-- with(...) / prefetch_related(...)), w13 (W6-style pages for
-- QUAY_BENCH_SECONDS: see run.w13), or decsum / intsum (DEC: 20 sums of
-- 100k ledger rows, a decimal column against an integer column holding
-- the same amounts in cents; the ledger table is made and filled on first
-- use, outside the clock).
-- Prints one line "time=S cpu=S srv_cpu=S queries=N peak_kb=K base_kb=B rt=N
-- check=C" like the floors (peak_kb: VmHWM at the end; base_kb: VmRSS at the
-- start; srv_cpu: CPU time of the PostgreSQL server process serving the
-- connection, -1 on SQLite; rt: round trips counted by netcount.so when it
-- is preloaded, else -1).  The clock runs from just before the first query
-- call to just after the Lua loop (model declaration, db:check() and W5's
-- input rows are outside it); queries is the db:stats() difference over
-- the same span.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local quay = require("quay")
local clock = require("benchclock")
local loops = dofile(here .. "/loops.lua")
local declare = dofile(here .. "/models.lua")

local W, file, nusers = arg[1], arg[2], tonumber(arg[3] or "0")

local function is_pg(s)
  return s ~= nil and (s:match("^postgres") ~= nil or s:find("=", 1, true) ~= nil)
end
-- QUAY_BENCH_PREPARE=0: { prepare = false } (the PgBouncer runs);
-- QUAY_BENCH_REPLICA=URL: read from that replica (W13).
local function open(s)
  if not is_pg(s) then return quay.open("sqlite:" .. s) end
  local opts = {}
  if os.getenv("QUAY_BENCH_PREPARE") == "0" then opts.prepare = false end
  local rep = os.getenv("QUAY_BENCH_REPLICA")
  if rep and rep ~= "" then opts.replicas = { rep } end
  return quay.open(s, opts)
end

-- The page of PIPE: its sibling relations go to three loader steps
-- (with() may JOIN the to-one author; prefetch_related batches all three).
local PIPE_ITER = 200
local function pipe_page(Post, how)
  if how == "pipepf" then
    return Post:limit(50):prefetch_related("author", "tags", "comments"):all()
  end
  return Post:limit(50):with("author", "tags", "comments"):all()
end

-- `sql OUTFILE [URL]`: run the read workloads once on a scratch in-memory
-- SQLite db (or on the empty PostgreSQL database URL, whose tables it
-- makes) and write every statement Quay sends (with its parameters) to
-- OUTFILE, one "key<TAB>sql" line and one "key.param<TAB>i|n|s<TAB>value"
-- line per parameter.  The floor reads it and runs Quay's own SQL text.
if W == "sql" then
  local db = quay.open(arg[3] or "sqlite::memory:")
  local m = declare(db, quay)
  db:create_tables()
  local t = { m.Tag:create { name = "tag42" }, m.Tag:create { name = "lua" } }
  for i = 1, 2 do
    local u = m.User:create { name = "U" .. i, email = ("user%d7@example.com"):format(i) }
    m.Profile:create { user = u, bio = "b" }
    local p = m.Post:create { title = "p" .. i, views = i, author = u }
    p.tags:add(t[1], t[2])
    m.Comment:create { post = p, body = "c" .. i }
  end
  local out, key, n = {}, nil, 0
  db:on_query(function(sql, params)
    n = n + 1
    local k = key .. "." .. n
    out[#out + 1] = k .. "\t" .. sql
    for i, v in ipairs(params or {}) do
      local ty = math.type(v) == "integer" and "i" or type(v) == "number" and "n" or "s"
      out[#out + 1] = ("%s.param\t%s\t%s"):format(k, ty, tostring(v))
    end
  end)
  local function cap(k, fn) key, n = k, 0; fn() end
  cap("w1", function() loops.w1(m.Post:select_related("author"):all()) end)
  cap("w2", function() loops.w2(m.User:prefetch_related("posts", "posts__tags"):all()) end)
  cap("w3", function()
    loops.w3(m.Post:filter { author__email__endswith = "7@example.com",
                             tags__name = "tag42" }:all())
  end)
  cap("w6", function() loops.w6(m.Post:limit(2000):all()) end)
  cap("pipe", function() loops.pipe(pipe_page(m.Post, "pipe")) end)
  db:on_query(nil)
  db:close()
  local f = assert(io.open(file, "w"))
  f:write(table.concat(out, "\n"), "\n")
  f:close()
  return
end

-- `waitrep PRIMARY REPLICA`: wait until the replica has replayed all the
-- primary wrote (W13 reads the data set from it).
if W == "waitrep" then
  local p, r = quay.open(file), quay.open(arg[3])
  local lsn = p:rows("SELECT pg_current_wal_insert_lsn()::text AS l")[1].l
  for _ = 1, 1200 do
    if r:rows("SELECT pg_last_wal_replay_lsn() >= ?::pg_lsn AS ok", { lsn })[1].ok then
      return
    end
    os.execute("sleep 0.1")
  end
  error("the replica did not catch up")
end

-- `diff DB`: declare 50 models (6 fields, a belongs_to, every fifth a
-- many_to_many) on the empty database DB, create them, and time
-- db:schema_diff() and a db:migrate() that finds nothing to do: prints
-- "tables=N diff_ms=M migrate_ms=M" (medians of 21 runs).
if W == "diff" then
  local db = open(file)
  for i = 1, 50 do
    local spec = {
      name = quay.string { max = 80 }, n = quay.integer { index = true },
      body = quay.text { null = true }, flag = quay.boolean { default = false },
      at = quay.datetime { null = true }, score = quay.number { default = 0 },
    }
    if i > 1 then spec.parent = quay.belongs_to("M" .. (i - 1), { null = true }) end
    if i % 5 == 0 then spec.links = quay.many_to_many("M" .. (i - 4)) end
    db:model("M" .. i, spec)
  end
  db:create_tables()
  local function median_ms(fn)
    local t = {}
    for k = 1, 21 do
      local t0 = clock.now()
      fn()
      t[k] = (clock.now() - t0) * 1000
    end
    table.sort(t)
    return t[11]
  end
  local ntab = #db:inspect().tables
  assert(#db:schema_diff() == 0)
  local d = median_ms(function() db:schema_diff() end)
  local g = median_ms(function() db:migrate() end)
  print(("tables=%d diff_ms=%.2f migrate_ms=%.2f"):format(ntab, d, g))
  db:close()
  return
end

local db = open(file)
-- W11: W10s with a before_save hook on Post (it counts its calls).
local nHook = 0
local m = declare(db, quay, W == "w12" and 2 or 1,
  W == "w11" and { before_save = function() nHook = nHook + 1 end } or nil)
local DEC_ROWS, DEC_ITER = 100000, 20
if W == "decsum" or W == "intsum" then
  m.Ledger = db:model("Ledger", {
    cents = quay.integer(),
    amount = quay.decimal { digits = 12, places = 2 },
  })
end
db:check()
if W == "schema" then
  db:create_tables()
  db:close()
  return
end
local User, Post = m.User, m.Post

local run = {}

function run.w1()
  local posts = Post:select_related("author"):all()
  return ("rows=%d,sum=%d"):format(#posts, loops.w1(posts))
end

function run.w2()
  local users = User:prefetch_related("posts", "posts__tags"):all()
  local np, nl = 0, 0
  local sum = loops.w2(users)
  return function()           -- counted after the clock stops
    for _, u in ipairs(users) do
      np = np + #u.posts
      for _, p in ipairs(u.posts) do nl = nl + #p.tags end
    end
    return ("users=%d,posts=%d,links=%d,sum=%d"):format(#users, np, nl, sum)
  end
end

function run.w3()
  local c, s = 0, 0
  for _ = 1, 20 do
    local rows = Post:filter { author__email__endswith = "7@example.com",
                               tags__name = "tag42" }:all()
    local a, b = loops.w3(rows)
    c, s = c + a, s + b
  end
  return ("count=%d,idsum=%d"):format(c, s)
end

function run.w4()
  local counts = User:filter { id__lte = 1000 }:delete()
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. counts[k] end
  return table.concat(keys, ",")
end

local w5_rows
function run.w5()
  local recs = Post:bulk_create(w5_rows)
  return function()
    local s = 0
    for _, r in ipairs(recs) do s = s + r.id end
    return ("rows=%d,idsum=%d"):format(#recs, s)
  end
end

local w9_rows
function run.w9()
  local recs = Post:upsert(w9_rows, { conflict = { "id" }, update = { "title", "views" } })
  return function()
    local s, v = 0, 0
    for _, r in ipairs(recs) do s, v = s + r.id, v + r.views end
    return ("rows=%d,idsum=%d,views=%d"):format(#recs, s, v)
  end
end

-- W10 / W10s: the views of 10,000 loaded posts changed (before the clock),
-- written by one bulk_update / by 10,000 saves in one transaction.
local w10_recs
local function w10_check(n)
  return function()
    local sum = db:rows("SELECT SUM(views) AS s FROM posts WHERE id <= 10000")[1].s
    return ("n=%d,viewsum=%d"):format(n, sum)
  end
end
function run.w10()
  return w10_check(Post:bulk_update(w10_recs, { "views" }))
end
function run.w10s()
  local n = db:transaction(function()
    for _, r in ipairs(w10_recs) do r:save() end
    return #w10_recs
  end)
  return w10_check(n)
end
-- W11: the same saves through a before_save hook; its floor is W10s
-- (Quay, the model without the hook).
function run.w11()
  local check = run.w10s()
  assert(nHook == #w10_recs, "the hook ran " .. nHook .. " times")
  return check
end

function run.w6()
  local posts = Post:limit(2000):all()
  return ("rows=%d,sum=%d"):format(#posts, loops.w6(posts))
end

function run.w7()
  local users = User:annotate {
    n_posts = quay.count("posts"), views = quay.sum("posts__views"),
    last = quay.max("posts__created"), n_comments = quay.count("posts__comments"),
  }:all()
  loops.w7(users)
  return function() return loops.w7_check(users) end
end

-- (The sum is total_views: an annotation may not take a field's name.)
function run.w8()
  local rows = Post:values { "author", month = quay.trunc("month", "created") }
    :annotate { n = quay.count(), total_views = quay.sum("views") }:all()
  loops.w8(rows)
  return function() return loops.w8_check(rows) end
end

-- W12: add a NOT NULL column with a default and change a column's type
-- on the 100k-row posts table (indexed, with foreign keys both ways).
function run.w12()
  local steps = db:migrate()
  assert(#steps == 2, "W12 expects two steps, got " .. #steps)
  return function()
    local r = db:rows("SELECT count(*) AS n, sum(views) AS v, sum(rating) AS r FROM posts")[1]
    local ty = is_pg(file)
      and db:rows([[SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
                    JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = 'posts'
                    AND a.attname = 'title']])[1].t
      or db:rows("SELECT type AS t FROM pragma_table_info('posts') WHERE name = 'title'")[1].t
    return ("rows=%d,views=%d,rating=%g,title=%s"):format(r.n, r.v, r.r, ty:lower())
  end
end

local function pipe_run(how)
  local rows, sum = 0, 0
  for _ = 1, PIPE_ITER do
    local posts = pipe_page(Post, how)
    rows, sum = rows + #posts, sum + loops.pipe(posts)
  end
  return ("rows=%d,sum=%d"):format(rows, sum)
end
function run.pipe() return pipe_run("pipe") end
function run.pipepf() return pipe_run("pipepf") end

-- W13, one of 8 client processes: for QUAY_BENCH_SECONDS (default 20),
-- load W6-style pages: 200 posts from a random id on (keyset paging), then
-- post.author of each (one lazy batch); a page is 2 statements.  Prints
-- "pages=N primary=N replica=N time=S cpu=S check=C".
if W == "w13" then
  local secs = tonumber(os.getenv("QUAY_BENCH_SECONDS") or "20")
  local nposts = Post:count()
  math.randomseed(tonumber(os.getenv("QUAY_BENCH_SEED") or "1"))
  local s0, c0, t0 = db:stats(), clock.cpu(), clock.now()
  local pages, sum = 0, 0
  while clock.now() - t0 < secs do
    local from = math.random(0, math.max(0, nposts - 200))
    local posts = Post:filter { id__gt = from }:order_by("id"):limit(200):all()
    sum = sum + loops.w6(posts)
    pages = pages + 1
  end
  local t, s1 = clock.now() - t0, db:stats()
  print(("pages=%d primary=%d replica=%d time=%.3f cpu=%.3f check=%d"):format(pages,
    -- (a handle without replicas reports only its queries: all the primary's)
    (s1.primary or s1.queries) - (s0.primary or s0.queries),
    (s1.replica or 0) - (s0.replica or 0), t, clock.cpu() - c0, sum % 1000000))
  db:close()
  return
end

-- DEC: the same amounts as a decimal(12, 2) and as integer cents.
local function dec_sum(path)
  local s
  for _ = 1, DEC_ITER do s = m.Ledger:aggregate { s = quay.sum(path) }.s end
  if type(s) == "string" then s = math.tointeger(tonumber((s:gsub("%.", "")))) end
  return ("rows=%d,cents=%d"):format(DEC_ROWS, s)
end
function run.decsum() return dec_sum("amount") end
function run.intsum() return dec_sum("cents") end

assert(run[W], "unknown workload " .. tostring(W))
if W == "w5" then w5_rows = loops.w5_rows(100000, nusers) end
if W == "w9" then w9_rows = loops.w9_rows(100000, nusers) end
if W == "w10" or W == "w10s" or W == "w11" then
  w10_recs = Post:order_by("id"):limit(10000):all()
  for _, r in ipairs(w10_recs) do r.views = loops.w10_value(r.id) end
end
if m.Ledger then
  db:create_tables()
  if m.Ledger:count() ~= DEC_ROWS then
    m.Ledger:delete()
    db:transaction(function()
      local batch = {}
      for i = 1, DEC_ROWS do
        local c = (i * 7919) % 1000000 - 300000
        batch[#batch + 1] = { cents = c, amount = ("%s%d.%02d"):format(c < 0 and "-" or "",
          math.abs(c) // 100, math.abs(c) % 100) }
        if #batch == 5000 then m.Ledger:bulk_create(batch); batch = {} end
      end
    end)
  end
end
-- The server process serving this connection, whose CPU time counts too.
local backend = is_pg(file) and db:rows("SELECT pg_backend_pid() AS pid")[1].pid or nil
if backend and not clock.proc_cpu(backend) then backend = nil end   -- another host
collectgarbage("collect")
local base = clock.rss_kb()
local q0 = db:stats().queries
local rt0 = select(3, clock.net())
local s0 = backend and clock.proc_cpu(backend)
local c0 = clock.cpu()
local t0 = clock.now()
local check = run[W]()
local t = clock.now() - t0
local tc = clock.cpu() - c0
local ts = backend and clock.proc_cpu(backend) - s0 or -1
local rt = rt0 and select(3, clock.net()) - rt0 or -1
local q = db:stats().queries - q0
if type(check) == "function" then check = check() end
print(("time=%.6f cpu=%.6f srv_cpu=%.6f queries=%d peak_kb=%d base_kb=%d rt=%d check=%s")
  :format(t, tc, ts, q, clock.peak_kb(), base, rt, check))
db:close()
