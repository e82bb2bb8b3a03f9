-- scripts/benchmark/run.lua: the driver behind `scripts/bench`.
--   quay run.lua ROOT BUILD SCALE SEED RUNS RUNID KEEP BACKEND PGURL [ONLY]
-- Generates the data set once, runs every workload RUNS times on each side
-- (each run in its own process, write workloads on a fresh copy of the
-- data), and prints the table of medians.  Exits 1 if a run failed or a
-- Quay result differs from the floor's.  Files go to BUILD/bench-data/
-- run-RUNID/ (one directory per run, so runs never share a file), removed
-- at the end unless KEEP is 1.
--
-- BOUNCER (PostgreSQL, may be empty): the URL of PgBouncer in transaction
-- mode in front of the same server: W1-W8 then also run on the Quay side
-- through it with { prepare = false }, against the direct prepared runs.
-- REPLICA (may be empty): a streaming replica of the server, for W13 (8
-- client processes loading W6-style pages for 20 s, without and with the
-- replica).
--
-- BACKEND is sqlite or postgresql.  On PostgreSQL, PGURL is a server's
-- libpq URL (its database is only used to run CREATE/DROP DATABASE); the
-- data set goes into a database quay_bench_RUNID (the same rows as the
-- SQLite file, which is generated first and copied in), each write run gets
-- a fresh copy made by CREATE DATABASE ... TEMPLATE quay_bench_RUNID, and
-- every process runs with netcount.so preloaded to count round trips.  The
-- databases are dropped at the end unless KEEP is 1.
local root, build, scale, seed, runs, runid, keep, backend, pgurl, only, bouncer,
  replica = ...
scale, runs = tonumber(scale), tonumber(runs)
if only == "" then only = nil end
if bouncer == "" then bouncer = nil end
if replica == "" then replica = nil end
local pg = backend == "postgresql"
local here = root .. "/scripts/benchmark"
local quaybin = build .. "/bin/quay"
local floorbin = build .. "/bench/quay_bench_floor"
local floorpg = build .. "/bench/quay_bench_floor_pg"
local netcount = build .. "/bench/netcount.so"
local datadir = ("%s/bench-data/run-%s"):format(build, runid)
local file = ("%s/bench-s%s-seed%s.db"):format(datadir, tostring(scale), seed)
local work = datadir .. "/work.db"
local sqlfile = datadir .. "/quay-sql.txt"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if not ok then error(("command failed (%s %s): %s"):format(how, code, cmd), 0) end
end

local function capture(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("a")
  local ok, how, code = f:close()
  return out, ok, how, code
end

local function rmdb(path)
  for _, suf in ipairs({ "", "-wal", "-shm", "-journal" }) do os.remove(path .. suf) end
end

-- PostgreSQL databases ----------------------------------------------------
-- URL of database `name` on the server of pgurl: a URI gets its path
-- replaced (query kept); a keyword string gets dbname= appended (the last
-- one wins).
local function db_url(name, base)
  base = base or pgurl
  local head, query = base:match("^(postgres[%w]*://[^/?]*)/?[^?]*(%??.*)$")
  if head then return head .. "/" .. name .. query end
  return base .. " dbname=" .. name
end
local dbbase = "quay_bench_" .. runid
local dbdata, dbwork, dbrec = dbbase, dbbase .. "_w", dbbase .. "_rec"
local pgmajor = 0

local function admin(...)
  local args = {}
  for i, s in ipairs({ ... }) do args[i] = q(s) end
  local out, ok = capture(("%s admin %s %s"):format(q(floorpg), q(pgurl), table.concat(args, " ")))
  if not ok then error("PostgreSQL: " .. out, 0) end
end
local function drop_sql(name)
  return ("DROP DATABASE IF EXISTS %s%s"):format(name, pgmajor >= 13 and " WITH (FORCE)" or "")
end
local function create_sql(name, template)
  return ("CREATE DATABASE %s%s%s"):format(name, template and (" TEMPLATE " .. template) or "",
    (template and pgmajor >= 15) and " STRATEGY FILE_COPY" or "")
end

-- Workloads: quay = the Quay-side name; floors = { {label, floor-name} };
-- target: the time target, quay/floor (default 1.5); mem: peak memory is
-- shown, true or the target of its ratio.
local workloads
if pg then
  workloads = {
    { id = "W1", what = "all posts + author, select_related", quay = "w1", mem = 1.5,
      floors = { { "W1", "w1" } } },
    { id = "W2", what = "users -> posts -> tags, prefetch", quay = "w2", mem = 1.5,
      floors = { { "W2", "w2" }, { "W2a", "w2array" } } },
    { id = "W3", what = "20x email suffix + tag 'tag42'", quay = "w3",
      floors = { { "W3", "w3" } } },
    { id = "W4", what = "delete 1,000 users + dependents", quay = "w4", write = true,
      floors = { { "W4", "w4" } } },
    { id = "W5", what = "bulk_create 100k posts", quay = "w5", write = true, target = 1.2,
      floors = { { "W5", "w5" }, { "W5v", "w5values" }, { "W5p", "w5pipe" } } },
    { id = "W6", what = "2,000 posts, lazy post.author", quay = "w6",
      floors = { { "W6", "w6" }, { "W6b", "w6batch" } } },
    { id = "W7", what = "10k users annotate count/sum/max/count", quay = "w7", mem = true,
      target = 1.2, floors = { { "W7", "w7" }, { "W7c", "w7corr" } } },
    { id = "W8", what = "100k posts values{author,month}+annotate", quay = "w8", mem = true,
      target = 1.2, floors = { { "W8", "w8" } } },
    { id = "W9", what = "upsert 100k posts, half exist", quay = "w9", write = true,
      floors = { { "W9", "w9" } } },
    { id = "W10", what = "bulk_update views of 10k posts", quay = "w10", write = true,
      floors = { { "W10", "w10" }, { "W10r", "w10row" } } },
    { id = "W10s", what = "10k rec:save() in one transaction", quay = "w10s", write = true,
      target = 0, floors = { { "W10s", "w10row" } } },
    -- Reported: the cost of a before_save hook against Quay's own W10s.
    { id = "W11", what = "W10s with a before_save hook", quay = "w11", write = true,
      report = true, floors = { { "W11", "w10s", quay = true } } },
    -- Reported, no target: the floor's two ALTERs touch no row, so the
    -- ratio is Quay's fixed cost (reading the catalogs, the lock).
    { id = "W12", what = "migrate posts: NOT NULL col + type", quay = "w12", write = true,
      report = true, floors = { { "W12", "w12" } } },
  }
else
  workloads = {
    { id = "W1", what = "all posts + author, select_related", quay = "w1", mem = 1.5,
      floors = { { "W1", "w1" } } },
    { id = "W2", what = "users -> posts -> tags, prefetch", quay = "w2", mem = 1.5,
      floors = { { "W2", "w2" }, { "W2j", "w2json" } } },
    { id = "W3", what = "20x email suffix + tag 'tag42'", quay = "w3",
      floors = { { "W3", "w3" } } },
    { id = "W4", what = "delete 1,000 users + dependents", quay = "w4", write = true,
      floors = { { "W4", "w4" } } },
    { id = "W5", what = "bulk_create 100k posts", quay = "w5", write = true, target = 1.2,
      floors = { { "W5", "w5" }, { "W5b", "w5bulk" } } },
    { id = "W6", what = "2,000 posts, lazy post.author", quay = "w6",
      floors = { { "W6", "w6" }, { "W6b", "w6batch" } } },
    { id = "W7", what = "10k users annotate count/sum/max/count", quay = "w7", mem = true,
      target = 1.2, floors = { { "W7", "w7" }, { "W7c", "w7corr" } } },
    { id = "W8", what = "100k posts values{author,month}+annotate", quay = "w8", mem = true,
      target = 1.2, floors = { { "W8", "w8" } } },
    { id = "W9", what = "upsert 100k posts, half exist", quay = "w9", write = true,
      floors = { { "W9", "w9" } } },
    { id = "W10", what = "bulk_update views of 10k posts", quay = "w10", write = true,
      floors = { { "W10", "w10" }, { "W10r", "w10row" } } },
    { id = "W10s", what = "10k rec:save() in one transaction", quay = "w10s", write = true,
      target = 0, floors = { { "W10s", "w10row" } } },
    -- Reported: the cost of a before_save hook against Quay's own W10s.
    { id = "W11", what = "W10s with a before_save hook", quay = "w11", write = true,
      report = true, floors = { { "W11", "w10s", quay = true } } },
    { id = "W12", what = "migrate posts: NOT NULL col + type", quay = "w12", write = true,
      target = 1.2, floors = { { "W12", "w12" } } },
  }
end
local extra_what = {
  W2j = "json_each keys", W2a = "= ANY(array) keys", W6b = "2-query batch",
  W5v = "500-row VALUES", W5p = "pipelined 1-row", W7c = "correlated subqueries",
  W10r = "one UPDATE per row", W5b = "Quay's 64-row form",
}
local floor_note = pg and {
  W1 = "Quay's JOIN (PQexecParams, text results); authors deduplicated by id",
  W2 = "Quay's users query, then keys by subquery: author_id IN (SELECT id FROM users), ...",
  W2a = "Quay's 3 statements: keys as one array parameter, = ANY($1::bigint[]), text '{1,2,...}'",
  W3 = "Quay's statement (author LEFT JOINed, tag by IN (SELECT ...)), PQprepare'd once,"
    .. " PQexecPrepared 20 times",
  W4 = "5 set-based DELETEs in one transaction, children first, keys by subquery",
  W5 = "one INSERT ... SELECT FROM unnest($1::varchar[], $2::bigint[], $3::bigint[])"
    .. " RETURNING id; sets row.id (Quay: the same form, 10,000 rows a statement)",
  W5v = "prepared 500-row INSERT ... VALUES ... RETURNING id, 200 times",
  W5p = "prepared 1-row INSERT ... RETURNING id, 100k times in pipeline mode, sync per 500",
  W6 = "2,001 queries: Quay's 2,000-post query, then one prepared point query per post",
  W6b = "2 queries: Quay's 2,000-post query, then Quay's batched author query",
  W7 = "one hand-written statement: users LEFT JOIN two grouped subqueries (posts by author;"
    .. " posts JOIN comments by author), ORDER BY id",
  W7c = "one hand-written statement: four correlated scalar subqueries per user, ORDER BY id",
  W8 = "one hand-written GROUP BY author_id, date_trunc('month', created) ORDER BY both",
  W9 = "Quay's form: INSERT ... SELECT * FROM unnest(4 arrays) ON CONFLICT (id) DO UPDATE"
    .. " ... RETURNING every column, 10,000 rows a statement; sets the row's fields",
  W10 = "Quay's form: one UPDATE ... FROM unnest($1::bigint[], $2::bigint[]) AS v WHERE"
    .. " id = v.c0",
  W10r = "one prepared UPDATE ... WHERE id = $2 per row (10,000 round trips)",
  W10s = "one prepared UPDATE ... WHERE id = $2 per row (10,000 round trips)",
  W11 = "Quay's W10s: the same 10k saves of a model without hooks",
  W12 = "ALTER COLUMN title TYPE TEXT and ADD COLUMN rating ... NOT NULL DEFAULT 0 in one"
    .. " transaction (no rewrite either)",
} or {
  W1 = "Quay's JOIN; authors deduplicated by id",
  W2 = "Quay's users query, then keys by subquery: author_id IN (SELECT id FROM users), ...",
  W2j = "Quay's 3 statements: keys as one JSON array, IN (SELECT value FROM json_each(?))",
  W3 = "Quay's statement (author LEFT JOINed, tag by IN (SELECT ...)), prepared once, run"
    .. " 20 times",
  W4 = "5 set-based DELETEs in one transaction, children first, keys by subquery",
  W5 = "one prepared INSERT stepped 100k times in one transaction; sets row.id",
  W5b = "Quay's form: foreign keys unenforced for the transaction, a prepared 64-row"
    .. " INSERT OR FAIL, then one json_each check of the distinct author ids; sets row.id",
  W6 = "2,001 queries: Quay's 2,000-post query, then one point query per post",
  W6b = "2 queries: Quay's 2,000-post query, then Quay's batched author query",
  W7 = "one hand-written statement: users LEFT JOIN two grouped subqueries (posts by author;"
    .. " posts JOIN comments by author), ORDER BY id",
  W7c = "one hand-written statement: four correlated scalar subqueries per user, ORDER BY id",
  W8 = "one hand-written GROUP BY author_id, substr(created, 1, 7) || '-01 00:00:00'"
    .. " ORDER BY both",
  W9 = "Quay's form: 500-row INSERT ... VALUES ... ON CONFLICT (id) DO UPDATE ... RETURNING"
    .. " every column, prepared per batch size; sets the row's fields",
  W10 = "Quay's form: UPDATE ... FROM (VALUES (?, ?) x 1,000) AS v WHERE id = v.c0, prepared"
    .. " once, 10 times",
  W10r = "one prepared UPDATE ... WHERE id = ? stepped per row",
  W10s = "one prepared UPDATE ... WHERE id = ? stepped per row",
  W11 = "Quay's W10s: the same 10k saves of a model without hooks",
  W12 = "SQLite's documented rebuild by hand: foreign keys off, new table, copy, drop,"
    .. " rename, index, foreign_key_check(posts), commit (target <= 1.2)",
}

-- The pipelining section (PostgreSQL only): --only PIPE runs just it.
local pipe_rows = {
  { kind = "quay", name = "pipe", what = "Quay  with(\"author\", \"tags\", \"comments\")" },
  { kind = "quay", name = "pipepf",
    what = "Quay  prefetch_related(\"author\", \"tags\", \"comments\")" },
  { kind = "floor", name = "pipeseq", what = "floor Quay's with() SQL, one query at a time" },
  { kind = "floor", name = "pipeline", what = "floor same, tags + comments in one pipeline" },
}
local PIPE_ITER = 200

local function parse(out)
  local t, cpu = out:match("time=([%d.]+) cpu=([%d.]+) ")
  local qn, kb, base = out:match("queries=(%d+) peak_kb=(%-?%d+) base_kb=(%-?%d+) ")
  local check = out:match("check=(%S*)")
  if not (t and qn and check) then return nil end
  local srv = tonumber(out:match("srv_cpu=(%-?[%d.]+)") or "-1")
  local rt = tonumber(out:match(" rt=(%-?%d+)") or "-1")
  return { time = tonumber(t), cpu = tonumber(cpu), queries = tonumber(qn), kb = tonumber(kb),
           base = tonumber(base), check = check, srv = srv >= 0 and srv or nil,
           rt = rt >= 0 and rt or nil }
end

local nusers
local function run_one(kind, name, write)
  local via = kind == "quayb" and bouncer or nil
  local target = pg and db_url(dbdata, via) or file
  if write then
    if pg then
      -- A template must have no sessions: PgBouncer keeps idle ones.
      admin(("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        .. " AND pid <> pg_backend_pid()"):format(dbdata), drop_sql(dbwork),
        create_sql(dbwork, dbdata))
      target = db_url(dbwork, via)
    else
      rmdb(work)
      sh(("cp %s %s"):format(q(file), q(work)))
      target = work
    end
  end
  local pre = pg and ("LD_PRELOAD=%s "):format(q(netcount)) or ""
  local cmd
  if kind == "quayb" or kind == "quayn" then pre = pre .. "QUAY_BENCH_PREPARE=0 " end
  if kind == "quay" or kind == "quayb" or kind == "quayn" then
    cmd = ("%sLUA_CPATH=%s %s %s %s %s %d"):format(pre, q(build .. "/bench/?.so;;"), q(quaybin),
      q(here .. "/quay_side.lua"), name, q(target), nusers)
  else
    cmd = ("%s%s %s %s %s %d %s"):format(pre, q(pg and floorpg or floorbin), name, q(target),
      q(here .. "/loops.lua"), nusers, q(sqlfile))
  end
  local out, ok = capture(cmd)
  local r = ok and parse(out)
  if not r then
    io.stderr:write(("\n%s %s failed:\n%s\n"):format(kind, name, out))
    return nil
  end
  return r
end

local function median(list, key)
  local v = {}
  for _, r in ipairs(list) do v[#v + 1] = r[key] end
  table.sort(v)
  if #v == 0 then return nil end
  if #v % 2 == 1 then return v[(#v + 1) // 2] end
  return (v[#v // 2] + v[#v // 2 + 1]) / 2
end

local ncpu = (capture("nproc"):match("%d+")) or "?"

local function loadavg()
  local f = io.open("/proc/loadavg")
  local l = f and f:read("l") or "?"
  if f then f:close() end
  return l:match("^(%S+)") or l
end

-- --only takes a comma-separated list of exact names (W1 does not select
-- W13).
-- DEC: Quay against Quay, a decimal sum against an integer sum of the
-- same 100k rows (target: within 1.2x), and the same two sums hand-written
-- in the floor program: the database's own ratio.
local DEC_ITER = 20

local function selected(id)
  if not only then return true end
  for name in only:gmatch("[^,%s]+") do
    if name:lower() == id:lower() then return true end
  end
  return false
end

-- Data ---------------------------------------------------------------------
sh("mkdir -p " .. q(datadir))
local cleaned = false
local function cleanup()
  if cleaned then return end
  cleaned = true
  if keep == "1" then
    print("kept: " .. datadir .. (pg and (" and databases %s, %s on %s"):format(dbdata, dbwork,
      pgurl) or ""))
    return
  end
  if pg then pcall(admin, drop_sql(dbwork), drop_sql(dbrec), drop_sql(dbdata)) end
  os.execute("rm -rf " .. q(datadir))
end

local function main()
  local t0 = os.time()
  local any = (pg and (selected("PIPE") or (selected("W13") and only ~= nil)))
    or selected("DIFF") or (only and (selected("DEC") or selected("AGG")))
  for _, w in ipairs(workloads) do any = any or selected(w.id) end
  if only and selected("PIPE") and not pg then
    print("PIPE: round trips are a PostgreSQL matter; run it with --backend postgresql")
  end
  if not any then
    print(("--only %s: nothing to run (workloads: W1-W8, W9, W10, W10s, W11, W12, DIFF, DEC, AGG%s)")
      :format(only, pg and ", PIPE, W13" or ""))
    return false
  end
  if pg then
    -- Fail early when the server cannot be reached.
    local out, ok = capture(("%s admin %s %s"):format(q(floorpg), q(pgurl), q("SELECT 1")))
    if not ok then error("PostgreSQL: " .. out, 0) end
  end
  local quay_env = ("LUA_CPATH=%s %s %s"):format(q(build .. "/bench/?.so;;"), q(quaybin),
    q(here .. "/quay_side.lua"))
  rmdb(file)
  local out, ok = capture(quay_env .. " schema " .. q(file))
  if not ok then error("schema: " .. out, 0) end
  local gen
  gen, ok = capture(("%s gen %s %s %s"):format(q(floorbin), q(file), tostring(scale), seed))
  if not ok then error("gen: " .. gen, 0) end
  nusers = tonumber(gen:match("users=(%d+)"))
  local versions, counts = gen:match("versions: ([^\n]*)"), gen:match("^[^\n]*")
  local where = file
  if pg then
    admin(drop_sql(dbwork), drop_sql(dbrec), drop_sql(dbdata))
    admin(create_sql(dbdata), create_sql(dbrec))
    out, ok = capture(quay_env .. " schema " .. q(db_url(dbdata)))
    if not ok then error("schema: " .. out, 0) end
    out, ok = capture(("%s load %s %s"):format(q(floorpg), q(db_url(dbdata)), q(file)))
    if not ok then error("load: " .. out, 0) end
    versions, counts = out:match("versions: ([^\n]*)"), out:match("^[^\n]*")
    -- The major version decides the CREATE/DROP DATABASE options.
    pgmajor = tonumber(versions:match("PostgreSQL (%d+)")) or 0
    out, ok = capture(quay_env .. " sql " .. q(sqlfile) .. " " .. q(db_url(dbrec)))
    if not ok then error("recording Quay's SQL: " .. out, 0) end
    admin(drop_sql(dbrec))
    where = ("database %s on %s"):format(dbdata, pgurl)
  else
    out, ok = capture(quay_env .. " sql " .. q(sqlfile))
    if not ok then error("recording Quay's SQL: " .. out, 0) end
  end
  io.write(("Quay benchmark: %s; scale %s, seed %s, median of %d runs, each in its own process\n")
    :format(versions or "?", tostring(scale), seed, runs))
  io.write(("data: %s (%s; generated in %ds)\n"):format(where, counts, os.time() - t0))

  -- Runs -------------------------------------------------------------------
  local load0 = loadavg()
  local failed = false
  local rows = {}
  for _, w in ipairs(workloads) do
    if selected(w.id) then
      io.stderr:write(("running %s ...\n"):format(w.id))
      local qr, fr, br, nr = {}, {}, {}, {}
      for i in ipairs(w.floors) do fr[i] = {} end
      for _ = 1, runs do
        local r = run_one("quay", w.quay, w.write)
        if r then qr[#qr + 1] = r else failed = true end
        if bouncer then
          r = run_one("quayn", w.quay, w.write)
          if r then nr[#nr + 1] = r else failed = true end
          r = run_one("quayb", w.quay, w.write)
          if r then br[#br + 1] = r else failed = true end
        end
        for i, f in ipairs(w.floors) do
          r = run_one(f.quay and "quay" or "floor", f[2], w.write)
          if r then fr[i][#fr[i] + 1] = r else failed = true end
        end
      end
      for i, f in ipairs(w.floors) do
        rows[#rows + 1] = { label = f[1], w = w, quay = qr, floor = fr[i], main = (i == 1),
                            bouncer = br, noprep = nr }
      end
    end
  end
  local pipe = nil
  if pg and selected("PIPE") then
    io.stderr:write("running PIPE ...\n")
    pipe = {}
    for i in ipairs(pipe_rows) do pipe[i] = {} end
    for _ = 1, runs do
      for i, p in ipairs(pipe_rows) do
        local r = run_one(p.kind, p.name, false)
        if r then pipe[i][#pipe[i] + 1] = r else failed = true end
      end
    end
  end

  local w13 = nil
  if pg and selected("W13") and only then
    if not replica then
      print("W13: needs a replica (scripts/bench --backend postgresql --cluster)")
    else
      io.stderr:write("running W13 (2 x 20 s) ...\n")
      -- The replica must have the data before it takes reads.
      local out, ok = capture(("LUA_CPATH=%s %s %s waitrep %s %s"):format(
        q(build .. "/bench/?.so;;"), q(quaybin), q(here .. "/quay_side.lua"),
        q(db_url(dbdata)), q(db_url(dbdata, replica))))
      if not ok then error("W13: " .. out, 0) end
      w13 = {}
      for _, withrep in ipairs({ false, true }) do
        local outs = {}
        local env = ("QUAY_BENCH_SECONDS=%s QUAY_BENCH_REPLICA=%s LUA_CPATH=%s"):format(
          os.getenv("QUAY_BENCH_SECONDS") or "20", withrep and q(db_url(dbdata, replica)) or "''",
          q(build .. "/bench/?.so;;"))
        local cmds = {}
        for i = 1, 8 do
          outs[i] = ("%s/w13-%d.out"):format(datadir, i)
          cmds[i] = ("QUAY_BENCH_SEED=%d %s %s %s w13 %s %d >%s 2>&1 &"):format(i, env,
            q(quaybin), q(here .. "/quay_side.lua"), q(db_url(dbdata)), nusers, q(outs[i]))
        end
        sh("( " .. table.concat(cmds, " ") .. " wait )")
        local tot = { pages = 0, primary = 0, replica = 0, time = 0, cpu = 0, n = 0 }
        for i = 1, 8 do
          local f = io.open(outs[i])
          local o = f and f:read("a") or ""
          if f then f:close() end
          local pages, pr, rp, t, c = o:match(
            "pages=(%d+) primary=(%d+) replica=(%d+) time=([%d.]+) cpu=([%d.]+)")
          if not pages then
            io.stderr:write(("W13 client %d failed:\n%s\n"):format(i, o))
            failed = true
          else
            tot.pages = tot.pages + tonumber(pages)
            tot.primary = tot.primary + tonumber(pr)
            tot.replica = tot.replica + tonumber(rp)
            tot.time = math.max(tot.time, tonumber(t))
            tot.cpu = tot.cpu + tonumber(c)
            tot.n = tot.n + 1
          end
        end
        w13[#w13 + 1] = { replica = withrep, t = tot }
      end
    end
  end

  local dec = nil
  if selected("DEC") then
    io.stderr:write("running DEC ...\n")
    dec = { d = {}, i = {}, fd = {}, fi = {} }
    for _ = 1, runs do
      local r = run_one("quay", "decsum", false)
      if r then dec.d[#dec.d + 1] = r else failed = true end
      r = run_one("quay", "intsum", false)
      if r then dec.i[#dec.i + 1] = r else failed = true end
      -- The same two sums hand-written, on the ledger the Quay side made.
      r = run_one("floor", "decsum", false)
      if r then dec.fd[#dec.fd + 1] = r else failed = true end
      r = run_one("floor", "intsum", false)
      if r then dec.fi[#dec.fi + 1] = r else failed = true end
    end
  end

  -- Table ------------------------------------------------------------------
  local function mib(kb) return kb and kb >= 0 and ("%.1f"):format(kb / 1024) or "-" end
  local function fmt(x, f) return x and (f):format(x) or "-" end
  -- On PostgreSQL the CPU time of a side is its process plus the server
  -- process serving its connection (when /proc shows it).
  local function cpu_of(list)
    local c, s = median(list, "cpu"), median(list, "srv")
    if pg and c and s then return c + s end
    return c
  end
  -- tgt: the time target (quay/floor at most this; W7, W8: 1.2, else 1.5).
  local hdr = ("%-4s %-40s %7s %7s %6s %4s %5s %6s %13s %13s %5s %5s  %s")
  local missed = {}
  if #rows > 0 then
    print()
    print(hdr:format("", "workload", "quay s", "floor s", "ratio", "tgt", "", "cpu",
                     "queries q/f", "peak MiB q/f", "mem", "<=1.5", "result"))
  end
  for _, r in ipairs(rows) do
    local tq, tf = median(r.quay, "time"), median(r.floor, "time")
    local ratio = tq and tf and tf > 0 and tq / tf or nil
    -- The target: 1.5 unless the workload says (W5 1.2; 0 = none, for a
    -- comparison row); extra floor rows are comparisons.
    local target = r.main and (r.w.target or 1.5) or 0
    local ok = (ratio and target > 0) and (ratio <= target and "ok" or "MISS") or "-"
    if r.w.report then ok = "-" end
    local cq, cf = cpu_of(r.quay), cpu_of(r.floor)
    local cratio = cq and cf and cf > 0 and cq / cf or nil
    local mq, mf = median(r.quay, "kb"), median(r.floor, "kb")
    local mratio, mok = nil, ""
    if r.w.mem and mq and mf and mf > 0 then
      mratio = mq / mf
      if r.w.mem ~= true then mok = mratio <= r.w.mem and "ok" or "MISS" end
    end
    local nq = r.quay[1] and r.quay[1].queries or nil
    local nf = r.floor[1] and r.floor[1].queries or nil
    local same = "-"
    if r.quay[1] and r.floor[1] then
      same = (r.quay[1].check == r.floor[1].check) and "same" or "DIFFERENT"
      if same ~= "same" then
        failed = true
        io.stderr:write(("%s result differs:\n  quay:  %s\n  floor: %s\n"):format(
          r.label, r.quay[1].check, r.floor[1].check))
      end
    end
    if r.w.id == "W6" and r.main and nq and nq ~= 2 then ok = ok .. "!" end
    if ok:find("MISS") then
      missed[#missed + 1] = ("%s time %.2fx (target %.1fx)"):format(r.label, ratio, target)
    end
    if mok == "MISS" then missed[#missed + 1] = ("%s memory %.2fx"):format(r.label, mratio) end
    local what = r.main and r.w.what or ("  same, floor: " .. (extra_what[r.label] or r.label))
    print(hdr:format(r.label, what, fmt(tq, "%.3f"), fmt(tf, "%.3f"), fmt(ratio, "%.2f"),
      target > 0 and ("%.1f"):format(target) or "-", ok,
      fmt(cratio, "%.2f"), ("%s/%s"):format(nq or "-", nf or "-"),
      r.w.mem and ("%s/%s"):format(mib(mq), mib(mf)) or "", r.w.mem and fmt(mratio, "%.2f") or "",
      mok, same))
  end
  if #rows > 0 then
    print()
    print("Peak memory above each process's RSS when its clock started (VmHWM - VmRSS):")
    for _, r in ipairs(rows) do
      if r.w.mem then
        local dq = median(r.quay, "kb") - median(r.quay, "base")
        local df = median(r.floor, "kb") - median(r.floor, "base")
        print(("  %-4s quay %.1f MiB, floor %.1f MiB, ratio %.2f"):format(r.label, dq / 1024,
          df / 1024, df > 0 and dq / df or 0))
      end
    end
    if pg then
      print("CPU seconds, client process + its server process (the `cpu` ratio is of the"
        .. " sums), and round trips, quay/floor:")
      for _, r in ipairs(rows) do
        print(("  %-4s client %s/%s  server %s/%s  round trips %s/%s"):format(r.label,
          fmt(median(r.quay, "cpu"), "%.3f"), fmt(median(r.floor, "cpu"), "%.3f"),
          fmt(median(r.quay, "srv"), "%.3f"), fmt(median(r.floor, "srv"), "%.3f"),
          fmt(median(r.quay, "rt"), "%d"), fmt(median(r.floor, "rt"), "%d")))
      end
      print("Floors (C, libpq + Lua C API, same tables and same Lua loop, same server):")
    else
      print("CPU seconds of the process, quay/floor (the `cpu` ratio):")
      for _, r in ipairs(rows) do
        print(("  %-4s %s/%s"):format(r.label, fmt(median(r.quay, "cpu"), "%.3f"),
          fmt(median(r.floor, "cpu"), "%.3f")))
      end
      print("Floors (C, sqlite3 API + Lua C API, same tables and same Lua loop):")
    end
    for _, r in ipairs(rows) do
      print(("  %-4s %s"):format(r.label, floor_note[r.label] or ""))
    end
    local w6 = nil
    for _, r in ipairs(rows) do if r.label == "W6" then w6 = r end end
    if w6 and w6.quay[1] then
      print(("W6 query count: %d (target: exactly 2)%s"):format(w6.quay[1].queries,
        w6.quay[1].queries == 2 and "" or "  MISS"))
    end
    print(#missed == 0 and "All targets met."
      or ("Targets missed: " .. table.concat(missed, "; ")))
  end

  -- Aggregate forms (--only AGG) ---------------------------------------------
  if only and selected("AGG") then
    io.stderr:write("running AGG ...\n")
    local out3, ok3 = capture(("LUA_CPATH=%s %s %s %s"):format(q(build .. "/bench/?.so;;"),
      q(quaybin), q(here .. "/aggforms.lua"), q(pg and db_url(dbdata) or file)))
    print()
    print(("AGG  W7's aggregates written correlated or grouped, by shape of the set"
      .. " (db:rows, median of %s; scripts/benchmark/aggforms.lua):"):format(
      os.getenv("QUAY_BENCH_AGG_RUNS") or "5"))
    print(out3)
    if not ok3 then failed = true end
  end

  -- Schema diff ------------------------------------------------------------
  if selected("DIFF") then
    io.stderr:write("running DIFF ...\n")
    local target = ":memory:"           -- quay_side.lua adds "sqlite:"
    local dbdiff = dbbase .. "_diff"
    if pg then
      admin(drop_sql(dbdiff), create_sql(dbdiff))
      target = db_url(dbdiff)
    end
    local out2, ok2 = capture(quay_env .. " diff " .. q(target))
    if pg then pcall(admin, drop_sql(dbdiff)) end
    local ntab, d, g = out2:match("tables=(%d+) diff_ms=([%d.]+) migrate_ms=([%d.]+)")
    print()
    if ntab then
      print(("Schema diff of 50 models (%s tables): db:schema_diff() %.2f ms, a db:migrate()"
        .. " with nothing to do %.2f ms (medians of 21; target well under 100 ms)")
        :format(ntab, tonumber(d), tonumber(g)))
    else
      failed = true
      io.stderr:write("DIFF failed:\n" .. out2 .. "\n")
    end
  end

  -- Pipelining -------------------------------------------------------------
  if pipe then
    print()
    print(("Sibling prefetches and round trips: Post:limit(50) with author, tags and"
      .. " comments, %d pages per run (median of %d runs)"):format(PIPE_ITER, runs))
    local h = "  %-56s %8s %8s %11s %12s %6s  %s"
    print(h:format("", "ms/page", "cpu ms", "statements", "round trips", "saved", "result"))
    local ref = pipe[1][1] and pipe[1][1].check
    for i, p in ipairs(pipe_rows) do
      local l = pipe[i]
      local t, nq, rt = median(l, "time"), median(l, "queries"), median(l, "rt")
      local same = "-"
      if l[1] and ref then
        same = l[1].check == ref and "same" or "DIFFERENT"
        if same ~= "same" then
          failed = true
          io.stderr:write(("PIPE %s result differs: %s vs %s\n"):format(p.name, l[1].check, ref))
        end
      end
      -- The floor's prepares are round trips of their own, once per run.
      local trips = rt and (p.kind == "floor" and rt - 3 or rt) / PIPE_ITER
      local stmts = nq and nq / PIPE_ITER
      local cpu = cpu_of(l)
      print(h:format(p.what, fmt(t and t * 1000 / PIPE_ITER, "%.3f"),
        fmt(cpu and cpu * 1000 / PIPE_ITER, "%.3f"), fmt(stmts, "%.2f"),
        fmt(trips, "%.2f"), fmt(stmts and trips and stmts - trips, "%.2f"), same))
    end
    print("  cpu ms: per page, the client process plus its server process.")
    print("  statements per page: db:stats() (Quay), statements executed (floor); round trips"
      .. " per page: the")
    print("  client's send->receive turns, counted by netcount.so (LD_PRELOAD over send/recv;"
      .. " the floor's 3")
    print("  PQprepare round trips left out); saved = statements - round trips.  This section"
      .. " alone:")
    print("  scripts/bench --backend postgresql --only PIPE")
  end
  -- PgBouncer ----------------------------------------------------------------
  local anyb = false
  for _, r in ipairs(rows) do anyb = anyb or (r.main and r.bouncer and #r.bouncer > 0) end
  if anyb then
    print()
    print("{ prepare = false }, direct and through PgBouncer (transaction pooling), against"
      .. " direct prepared connections (Quay side, medians):")
    local h = "  %-4s %-36s %8s %8s %8s %7s %7s %9s %9s %6s %8s"
    print(h:format("", "workload", "prepared", "no-prep", "pooled", "ratio", "ratio",
      "cpu prep.", "cpu nopr.", "ratio", "queries"))
    print(h:format("", "", "s", "s", "s", "no-prep", "pooled", "cl.+srv", "cl.+srv", "", ""))
    for _, r in ipairs(rows) do
      if r.main and #r.bouncer > 0 then
        local td, tn, tb = median(r.quay, "time"), median(r.noprep, "time"),
          median(r.bouncer, "time")
        local cd, cn = cpu_of(r.quay), cpu_of(r.noprep)
        print(h:format(r.label, r.w.what, fmt(td, "%.3f"), fmt(tn, "%.3f"), fmt(tb, "%.3f"),
          fmt(td and tn and tn / td, "%.2f"), fmt(td and tb and tb / td, "%.2f"),
          fmt(cd, "%.3f"), fmt(cn, "%.3f"), fmt(cd and cn and cn / cd, "%.2f"),
          ("%s/%s"):format(r.quay[1] and r.quay[1].queries or "-",
          r.bouncer[1] and r.bouncer[1].queries or "-")))
        for _, other in ipairs({ r.noprep, r.bouncer }) do
          if r.quay[1] and other[1] and r.quay[1].check ~= other[1].check then
            failed = true
            io.stderr:write(("%s with prepare = false differs: %s vs %s\n"):format(r.label,
              other[1].check, r.quay[1].check))
          end
        end
      end
    end
    print("  no-prep: direct connection, { prepare = false }; pooled: the same through"
      .. " PgBouncer.  cpu: the client")
    print("  process plus the server process serving it (direct runs only: through PgBouncer"
      .. " the server")
    print("  process changes between transactions).  Without prepared statements the"
      .. " server parses and")
    print("  plans every execution; a statement run once costs the same either way.")
  end

  -- W13 --------------------------------------------------------------------
  if w13 then
    print()
    print(("W13: 8 client processes, each loading W6-style pages (200 posts from a random"
      .. " id + post.author, 2 statements) for %s s"):format(
      os.getenv("QUAY_BENCH_SECONDS") or "20"))
    local h = "  %-22s %8s %8s %10s %10s %9s %9s"
    print(h:format("", "pages", "pages/s", "primary", "replica", "replica%", "cpu s"))
    for _, x in ipairs(w13) do
      local t = x.t
      local nst = t.primary + t.replica
      print(h:format(x.replica and "primary + replica" or "primary only", t.pages,
        fmt(t.time > 0 and t.pages / t.time, "%.1f"), t.primary, t.replica,
        fmt(nst > 0 and 100 * t.replica / nst, "%.0f"), fmt(t.cpu, "%.1f")))
    end
    print("  primary/replica: statements each server took (db:stats()); cpu: the 8 clients'"
      .. " CPU seconds.")
    print("  Both servers run on this machine, on the same cores as the clients.")
  end

  -- Decimal sums -----------------------------------------------------------
  if dec then
    local td, ti = median(dec.d, "time"), median(dec.i, "time")
    local ratio = td and ti and ti > 0 and td / ti or nil
    local fd, fi = median(dec.fd, "time"), median(dec.fi, "time")
    local fratio = fd and fi and fi > 0 and fd / fi or nil
    local same = "-"
    if dec.d[1] and dec.i[1] and dec.fd[1] and dec.fi[1] then
      same = "same"
      for _, r in ipairs { dec.i[1], dec.fd[1], dec.fi[1] } do
        if r.check ~= dec.d[1].check then
          same = "DIFFERENT"
          failed = true
          io.stderr:write(("DEC result differs: %s vs %s\n"):format(dec.d[1].check, r.check))
        end
      end
    end
    print()
    print(("DEC  quay.sum of a decimal(12, 2) column vs an integer column, same 100k rows,"
      .. " %d sums per run"):format(DEC_ITER))
    print(("     decimal %.3f s, integer %.3f s, ratio %s %s, result %s"):format(td or 0, ti or 0,
      ratio and ("%.2f"):format(ratio) or "-",
      ratio and (ratio <= 1.2 and "ok (<= 1.2)" or "MISS (> 1.2)") or "-", same))
    print(("     hand-written SQL (the floor program): decimal %.3f s, integer %.3f s, ratio %s;"
      .. " quay/hand-written: decimal %s, integer %s"):format(fd or 0, fi or 0,
      fratio and ("%.2f"):format(fratio) or "-",
      td and fd and fd > 0 and ("%.2f"):format(td / fd) or "-",
      ti and fi and fi > 0 and ("%.2f"):format(ti / fi) or "-"))
  end
  print(("1-minute load average before/after the runs: %s / %s (%s cores; other work on"
    .. " the machine inflates and scatters the times)"):format(load0, loadavg(), ncpu))
  return failed
end

local okrun, res = pcall(main)
cleanup()
if not okrun then
  io.stderr:write("scripts/bench: " .. tostring(res) .. "\n")
  os.exit(1)
end
if res then
  print("Some runs failed or results differ (see stderr).")
  os.exit(1)
end
