-- scripts/benchmark/run.lua: the driver behind `scripts/bench`.
--   quay run.lua ROOT BUILD SCALE SEED RUNS RUNID KEEP [ONLY]
-- Generates the data set once, runs every workload RUNS times on each side
-- (each run in its own process, write workloads on a fresh copy of the
-- file), and prints the table of medians.  Exits 1 if a run failed or a
-- Quay result differs from the floor's.  Files go to BUILD/bench-data/
-- run-RUNID/ (one directory per run, so runs never share a file), removed
-- at the end unless KEEP is 1.
local root, build, scale, seed, runs, runid, keep, only = ...
scale, runs = tonumber(scale), tonumber(runs)
local here = root .. "/scripts/benchmark"
local quaybin = build .. "/bin/quay"
local floorbin = build .. "/bench/quay_bench_floor"
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

-- Workloads: quay = the Quay-side name; floors = { {label, floor-name} }.
local workloads = {
  { id = "W1", what = "all posts + author, select_related", quay = "w1", mem = true,
    floors = { { "W1", "w1" } } },
  { id = "W2", what = "users -> posts -> tags, prefetch", quay = "w2", mem = true,
    floors = { { "W2", "w2" }, { "W2j", "w2json" } } },
  { id = "W3", what = "20x email suffix + tag 'tag42'", quay = "w3",
    floors = { { "W3", "w3" } } },
  { id = "W4", what = "delete 1,000 users + dependents", quay = "w4", write = true,
    floors = { { "W4", "w4" } } },
  { id = "W5", what = "bulk_create 100k posts", quay = "w5", write = true,
    floors = { { "W5", "w5" } } },
  { id = "W6", what = "2,000 posts, lazy post.author", quay = "w6",
    floors = { { "W6", "w6" }, { "W6b", "w6batch" } } },
}
local floor_note = {
  W1 = "Quay's JOIN; authors deduplicated by id",
  W2 = "Quay's users query, then keys by subquery: author_id IN (SELECT id FROM users), ...",
  W2j = "Quay's 3 statements: keys as one JSON array, IN (SELECT value FROM json_each(?))",
  W3 = "Quay's IN (SELECT ...) statement, prepared once, run 20 times",
  W4 = "5 set-based DELETEs in one transaction, children first, keys by subquery",
  W5 = "one prepared INSERT stepped 100k times in one transaction; sets row.id",
  W6 = "2,001 queries: Quay's 2,000-post query, then one point query per post",
  W6b = "2 queries: Quay's 2,000-post query, then Quay's batched author query",
}

local function parse(out)
  local t, cpu, qn, kb, base, check = out:match(
    "time=([%d.]+) cpu=([%d.]+) queries=(%d+) peak_kb=(%-?%d+) base_kb=(%-?%d+) check=(%S*)")
  if not t then return nil end
  return { time = tonumber(t), cpu = tonumber(cpu), queries = tonumber(qn), kb = tonumber(kb),
           base = tonumber(base), check = check }
end

local nusers
local function run_one(kind, name, write)
  local path = file
  if write then
    rmdb(work)
    sh(("cp %s %s"):format(q(file), q(work)))
    path = work
  end
  local cmd
  if kind == "quay" then
    cmd = ("LUA_CPATH=%s %s %s %s %s %d"):format(q(build .. "/bench/?.so;;"), q(quaybin),
      q(here .. "/quay_side.lua"), name, q(path), nusers)
  else
    cmd = ("%s %s %s %s %d %s"):format(q(floorbin), name, q(path), q(here .. "/loops.lua"),
      nusers, q(sqlfile))
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

-- Data ---------------------------------------------------------------------
sh("mkdir -p " .. q(datadir))
local t0 = os.time()
rmdb(file)
do
  local out, ok = capture(("LUA_CPATH=%s %s %s schema %s"):format(q(build .. "/bench/?.so;;"),
    q(quaybin), q(here .. "/quay_side.lua"), q(file)))
  if not ok then error("schema: " .. out, 0) end
  out, ok = capture(("LUA_CPATH=%s %s %s sql %s"):format(q(build .. "/bench/?.so;;"),
    q(quaybin), q(here .. "/quay_side.lua"), q(sqlfile)))
  if not ok then error("recording Quay's SQL: " .. out, 0) end
  out, ok = capture(("%s gen %s %s %s"):format(q(floorbin), q(file), tostring(scale), seed))
  if not ok then error("gen: " .. out, 0) end
  nusers = tonumber(out:match("users=(%d+)"))
  io.write(("Quay benchmark: %s; scale %s, seed %s, median of %d runs, each in its own process\n")
    :format(out:match("versions: ([^\n]*)") or "?", tostring(scale), seed, runs))
  io.write(("data: %s (%s; generated in %ds)\n"):format(file, out:match("^[^\n]*"),
    os.time() - t0))
end

-- Runs ---------------------------------------------------------------------
local load0 = loadavg()
local failed = false
local rows = {}
for _, w in ipairs(workloads) do
  if not only or only:lower():find(w.id:lower(), 1, true) then
    io.stderr:write(("running %s ...\n"):format(w.id))
    local qr, fr = {}, {}
    for i, f in ipairs(w.floors) do fr[i] = {} end
    for _ = 1, runs do
      local r = run_one("quay", w.quay, w.write)
      if r then qr[#qr + 1] = r else failed = true end
      for i, f in ipairs(w.floors) do
        r = run_one("floor", f[2], w.write)
        if r then fr[i][#fr[i] + 1] = r else failed = true end
      end
    end
    for i, f in ipairs(w.floors) do
      rows[#rows + 1] = { label = f[1], w = w, quay = qr, floor = fr[i], main = (i == 1) }
    end
  end
end

-- Table --------------------------------------------------------------------
local function mib(kb) return kb and kb >= 0 and ("%.1f"):format(kb / 1024) or "-" end
local function fmt(x, f) return x and (f):format(x) or "-" end
local hdr = ("%-4s %-36s %7s %7s %6s %5s %6s %13s %13s %5s %5s  %s")
print()
print(hdr:format("", "workload", "quay s", "floor s", "ratio", "<=1.5", "cpu",
                 "queries q/f", "peak MiB q/f", "mem", "<=1.5", "result"))
local missed = {}
for _, r in ipairs(rows) do
  local tq, tf = median(r.quay, "time"), median(r.floor, "time")
  local ratio = tq and tf and tf > 0 and tq / tf or nil
  local ok = ratio and (ratio <= 1.5 and "ok" or "MISS") or "-"
  local cq, cf = median(r.quay, "cpu"), median(r.floor, "cpu")
  local cratio = cq and cf and cf > 0 and cq / cf or nil
  local mq, mf = median(r.quay, "kb"), median(r.floor, "kb")
  local mratio, mok = nil, ""
  if r.w.mem and mq and mf and mf > 0 then
    mratio = mq / mf
    mok = mratio <= 1.5 and "ok" or "MISS"
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
  if ok:find("MISS") then missed[#missed + 1] = ("%s time %.2fx"):format(r.label, ratio) end
  if mok == "MISS" then missed[#missed + 1] = ("%s memory %.2fx"):format(r.label, mratio) end
  local what = r.main and r.w.what or ("  same, floor: " .. (r.label == "W2j"
    and "json_each keys" or "2-query batch"))
  print(hdr:format(r.label, what, fmt(tq, "%.3f"), fmt(tf, "%.3f"), fmt(ratio, "%.2f"), ok,
    fmt(cratio, "%.2f"), ("%s/%s"):format(nq or "-", nf or "-"),
    r.w.mem and ("%s/%s"):format(mib(mq), mib(mf)) or "", r.w.mem and fmt(mratio, "%.2f") or "", mok,
    same))
end
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
print("Floors (C, sqlite3 API + Lua C API, same tables and same Lua loop):")
for _, r in ipairs(rows) do
  print(("  %-4s %s"):format(r.label, floor_note[r.label] or ""))
end
local w6 = nil
for _, r in ipairs(rows) do if r.label == "W6" then w6 = r end end
if w6 and w6.quay[1] then
  print(("W6 query count: %d (target: exactly 2)%s"):format(w6.quay[1].queries,
    w6.quay[1].queries == 2 and "" or "  MISS"))
end
print(#missed == 0 and "All targets met." or ("Targets missed: " .. table.concat(missed, "; ")))
print(("1-minute load average before/after the runs: %s / %s (%s cores; other work on"
  .. " the machine inflates and scatters the times)"):format(load0, loadavg(), ncpu))
if keep == "1" then
  print("kept: " .. datadir)
else
  os.execute("rm -rf " .. q(datadir))
end
if failed then
  print("Some runs failed or results differ (see stderr).")
  os.exit(1)
end
