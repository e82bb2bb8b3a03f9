-- scripts/benchmark/quay_side.lua: the Quay side of one workload.
--   quay quay_side.lua WORKLOAD DB NUSERS
-- DB is an SQLite file or a PostgreSQL URL (postgresql://..., postgres://...
-- or a libpq keyword string).  WORKLOAD is schema (create the tables on DB),
-- sql (see below), w1..w6, pipe / pipepf (200 times one page of posts
-- with author, tags and comments: with(...) / prefetch_related(...)), or
-- decsum / intsum (DEC: 20 sums of 100k ledger rows, a decimal column
-- against an integer column holding the same amounts in cents; the ledger
-- table is made and filled on first use, outside the clock).
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
local function open(s)
  return quay.open(is_pg(s) and s or ("sqlite:" .. s))
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

local db = open(file)
local m = declare(db, quay)
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

function run.w6()
  local posts = Post:limit(2000):all()
  return ("rows=%d,sum=%d"):format(#posts, loops.w6(posts))
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
