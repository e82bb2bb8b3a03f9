--[[
test/difftest/writes.lua
Quay's randomized differential tester of the write paths.

  lua5.4 test/difftest/writes.lua --seed S --cases N [--ops K] [--url URL]

Each case starts from empty tables (test/difftest/wschema.lua: every value
type, a unique field, unique_together, CASCADE / SET_NULL / PROTECT /
RESTRICT keys, a soft-deleted model, a model with only its key) and runs K
random write operations (wops.lua): create, new + save, save of changed
fields with a concurrent raw UPDATE of another field, save { fields },
bulk_create (0, 1, a few, 49..51, 500+ rows; some with explicit ids;
different column subsets), upsert (on a unique field, a unique_together
set and the key; explicit and default update lists; keys repeated in one
call), bulk_update (records given twice, rows deleted meanwhile),
qs:update with literals and quay.F arithmetic (decimals, rounding into
integers, NULLs), qs:delete / rec:delete with cascades and dry runs,
get_or_create, update_or_create, soft delete, hard delete and restore;
about one operation in eight is meant to fail (values Quay must refuse,
unique and foreign-key violations, PROTECT / RESTRICT).

A share of the cases (--hooks, 0.2 by default) declare lifecycle hooks:
some of before_save / after_save / before_delete / after_delete on some
models (wschema.lua W.decl; a handle of its own per case).  Each hook logs
its name, model, the record's id, the creating / created flag and a field
of the record; an operation may make the hook of its n-th call raise (a
string, a table, a number, a boolean) or write a row of its own (a raw
INSERT into hooknotes, a Bare:create).  The oracle predicts the log per
operation after the reference ("Order of a save", "What each write runs",
"Hooks", "Soft delete"): save and create before_save, checks, SQL,
after_save; bulk_create, upsert (flags nil) and bulk_update every
before_save in list order, then the writes, then every after_save;
qs:update, dry runs, restore and deletes of soft-deleted rows none;
rec:delete and qs:delete the delete hooks of every row a cascade deletes,
compared as a set ordered only where the reference orders it
(before_delete parents first, after_delete once every row is gone,
children first).  A call a hook failed must raise that very value and
leave every table as before, the hooks' rows included.  After every
operation the oracle (woracle.lua: plain Lua rows after the rule book)
checks what Quay returned (records, ids, counts, err.code) and the tables
as read with raw SQL (db:rows, not query sets); a failed call must leave
them as before it.  The first mismatch of a case ends it; it is shrunk
(operations dropped, rows of bulk calls dropped) and printed as runnable
Lua.  The last line is "N passed, M failed" (cases); exit status 1 on a
failure.

Options:
  --seed S        seed (default 1)
  --cases N       cases (default 200)
  --ops K         operations per case (default 25)
  --url URL       backend (default sqlite::memory:; a file: sqlite:/tmp/x.db)
  --case C        run only case C (printing its operations)
  --no-shrink     print a failing case as it came
  --stop-after K  stop after K failed cases (default 5)
  --time T        stop after T seconds
  --verbose       print every operation
  --hooks SHARE   the share of cases whose models declare hooks (default 0.2;
                  0 for none, 1 for every case)
  --with-known    also draw the shapes of known mismatches (wops.lua O.known,
                  each with its reproduction)
  --help          this text
Environment: QUAY_BUILD_DIR (default <root>/build) holds quay/core.so.

Where the rule book leaves a reading open the oracle accepts each one
(woracle.lua, the comments marked DOUBT): a field save { fields } leaves
out keeps the form it was given (an ISO datetime, "1.5" for "1.50"), as
does one a plain save finds unchanged in another text form; an upsert whose repeated key mends a
constraint its first row broke may fail (PostgreSQL) or not (SQLite); when
both a value and a row are refused the error may be validation or
integrity.  With hooks: a bulk call refused by a row's checks has run the
before_save of the rows up to it, or of every row (DOUBT(bulk-checks);
Quay does the first); a relation given quay.null where its key is not
nullable may be refused while the record is made, before before_save
(reference "Relation access on a record").
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
local build = os.getenv("QUAY_BUILD_DIR") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;"
  .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local quay = require("quay")
local W = require("test.difftest.wschema")
local WV = require("test.difftest.wvalues")
local O = require("test.difftest.wops")
local C = require("test.difftest.woracle")

local opts = { seed = 1, cases = 200, ops = 25, url = "sqlite::memory:", shrink = true,
               stop_after = 5, hooks = 0.2 }
do
  local i = 1
  local function val()
    i = i + 1
    if arg[i] == nil then io.stderr:write("writes: " .. arg[i - 1] .. " needs a value\n"); os.exit(2) end
    return arg[i]
  end
  local function int() local v = math.tointeger(tonumber(val())); if not v then
    io.stderr:write("writes: " .. arg[i - 1] .. " needs an integer\n"); os.exit(2) end return v end
  while i <= #arg do
    local a = arg[i]
    if a == "--seed" then opts.seed = int()
    elseif a == "--cases" then opts.cases = int()
    elseif a == "--ops" then opts.ops = int()
    elseif a == "--url" then opts.url = val()
    elseif a == "--case" then opts.only = int()
    elseif a == "--no-shrink" then opts.shrink = false
    elseif a == "--stop-after" then opts.stop_after = int()
    elseif a == "--time" then opts.time = tonumber(val())
    elseif a == "--verbose" then opts.verbose = true
    elseif a == "--hooks" then
      opts.hooks = tonumber(val())
      if not opts.hooks or opts.hooks < 0 or opts.hooks > 1 then
        io.stderr:write("writes: --hooks needs a share from 0 to 1\n"); os.exit(2)
      end
    elseif a == "--with-known" then
      for _, k in ipairs(O.known) do O.allow[k] = true end
    elseif a == "--help" or a == "-h" then
      local f = assert(io.open(root .. "/test/difftest/writes.lua"))
      io.stdout:write((f:read("a"):match("%-%-%[%[\n(.-)%]%]")))
      f:close()
      os.exit(0)
    else
      io.stderr:write("writes: unknown argument " .. a .. " (see --help)\n")
      os.exit(2)
    end
    i = i + 1
  end
  if opts.only then opts.cases = math.max(opts.cases, opts.only) end
end

local is_pg = not opts.url:match("^sqlite")
local in_memory = opts.url:match("^sqlite:.*:memory:") ~= nil
local backend = is_pg and "pg" or "sqlite"
local function out(...) io.stdout:write(...); io.stdout:write("\n"); io.stdout:flush() end

-- {{ the database
local db, M
local HK          -- the hooks' log and plan (W.HOOK_PRELUDE) of a case with hooks
local NOTES = "CREATE TABLE hooknotes (n integer)"
local function open_db()
  db = quay.open(opts.url)
  if is_pg then
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
  else
    for _, name in ipairs { "links", "locks", "memos", "items", "owners", "bares", "hooknotes" } do
      db:execute("DROP TABLE IF EXISTS " .. name)
    end
  end
  local env = setmetatable({ db = db, quay = quay }, { __index = _G })
  local chunk = assert(load(W.DECL .. "\nreturn { Owner = Owner, Item = Item, Lock = Lock, "
    .. "Link = Link, Memo = Memo, Bare = Bare }", "schema", "t", env))
  M = chunk()
  db:create_tables()
  db:execute(NOTES)
end

-- A second handle whose models declare the hooks of cfg (W.decl): on the
-- same database, or (SQLite in memory) on a new one.  Returns db, models, H.
local function open_hooked(cfg)
  local h = quay.open(opts.url)
  local env = setmetatable({ db = h, quay = quay }, { __index = _G })
  local chunk = assert(load(W.decl(cfg) .. "\nreturn { Owner = Owner, Item = Item, Lock = Lock, "
    .. "Link = Link, Memo = Memo, Bare = Bare }, H", "schema", "t", env))
  local models, hk = chunk()
  if in_memory then h:create_tables(); h:execute(NOTES) end
  return h, models, hk
end

local function reset_db()
  if is_pg then
    db:execute("TRUNCATE owners, items, locks, links, memos, bares, hooknotes RESTART IDENTITY CASCADE")
  else
    for _, name in ipairs { "links", "locks", "memos", "items", "owners", "bares", "hooknotes" } do
      db:execute("DELETE FROM " .. name)
    end
    db:execute("DELETE FROM sqlite_sequence")
  end
end

-- The SELECT list reading model's columns in the oracle's terms.
local selects = {}
local function select_of(model)
  if selects[model] then return selects[model] end
  local m = W.models[model]
  local cols = { "id" }
  for _, fd in ipairs(m.fields) do
    local c = '"' .. fd.name .. '"'
    if fd.t == "soft" then c = ("CASE WHEN %s IS NULL THEN NULL ELSE 'set' END AS %s"):format(c, c)
    elseif is_pg and (fd.t == "decimal" or fd.t == "json" or fd.t == "date" or fd.t == "datetime") then
      c = ("CAST(%s AS text) AS %s"):format(c, c)
    end
    cols[#cols + 1] = c
  end
  selects[model] = ("SELECT %s FROM %s ORDER BY id"):format(table.concat(cols, ", "), m.table)
  return selects[model]
end

-- A raw column value in the oracle's terms.
local function raw_canon(fd, v)
  if v == nil then return WV.NULL end
  local t = fd.t
  if t == "decimal" then
    if is_pg then return type(v) == "string" and v or ("raw " .. tostring(v)) end
    if math.type(v) ~= "integer" then return ("raw %s %s"):format(math.type(v) or type(v), tostring(v)) end
    return WV.dec_text(v, 18, fd.places)
  elseif t == "bool" then
    if v == 1 or v == true then return true elseif v == 0 or v == false then return false end
    return "raw " .. tostring(v)
  elseif t == "json" then
    local ok, doc = pcall(WV.json_decode, v)
    if not ok then return "raw json " .. tostring(v) end
    return WV.json_canon(doc)
  elseif t == "number" then
    if math.type(v) == "integer" then return "raw integer " .. v end
  elseif t == "int" or t == "fk" then
    if math.type(v) ~= "integer" then return "raw " .. tostring(v) end
  end
  return v
end

--- The tables as raw SQL reads them against the oracle's state: nil, or a
--- description of the first differences.
local function compare_tables(st)
  local diffs = {}
  for _, model in ipairs(W.order) do
    local m = W.models[model]
    local rows = db:rows(select_of(model))
    local seen = {}
    for _, r in ipairs(rows) do
      local id = r.id
      seen[id] = true
      local want = st.rows[model][id]
      if not want then
        diffs[#diffs + 1] = ("%s %s: in the table, not in the oracle"):format(model, tostring(id))
      else
        for _, fd in ipairs(m.fields) do
          local got = raw_canon(fd, r[fd.name])
          if got ~= want[fd.name] then
            diffs[#diffs + 1] = ("%s %d.%s: table %s, oracle %s"):format(model, id, fd.name,
              C.show(got), C.show(want[fd.name]))
          end
        end
      end
      if #diffs >= 8 then break end
    end
    for id in pairs(st.rows[model]) do
      if not seen[id] and #diffs < 8 then
        diffs[#diffs + 1] = ("%s %d: in the oracle, not in the table"):format(model, id)
      end
    end
  end
  local notes = {}
  for i, r in ipairs(db:rows("SELECT n FROM hooknotes ORDER BY n")) do notes[i] = tostring(r.n) end
  local want = {}
  for i, n in ipairs(st.notes) do want[i] = n end
  table.sort(want)
  for i, n in ipairs(want) do want[i] = tostring(n) end
  if table.concat(notes, ",") ~= table.concat(want, ",") then
    diffs[#diffs + 1] = ("hooknotes: table {%s}, oracle {%s}"):format(table.concat(notes, ","),
      table.concat(want, ","))
  end
  if #diffs == 0 then return nil end
  return table.concat(diffs, "\n")
end
-- }}

-- {{ running operations
local function run_op(op)
  local src = op.src or O.render(op)
  op.src = src
  local env = setmetatable({ db = db, quay = quay, H = HK }, { __index = function(_, k)
    return M[k] or _G[k] end })
  local chunk, err = load(src, "op", "t", env)
  if not chunk then error("writes: op does not compile: " .. err .. "\n" .. src) end
  if HK then HK.reset() end
  return pcall(chunk)
end

-- What the oracle needs of the hooks after an operation (nil: no hooks).
local function hooks_of(cfg)
  if not cfg then return nil end
  local log = {}
  for i, e in ipairs(HK.log) do log[i] = e end
  return { cfg = cfg, log = log, kept = HK.kept,
           plan = { fail = HK.plan.fail, raised = HK.plan.value, write = HK.plan.write } }
end

-- Run body with the models of cfg (a handle of their own while it runs).
local function with_hooks(cfg, body)
  if not cfg then return body() end
  local pdb, pM = db, M
  db, M, HK = open_hooked(cfg)
  O.hooks = cfg
  local r = table.pack(pcall(body))
  db:close()
  db, M, HK = pdb, pM, nil
  O.hooks = nil
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- Run a list of operations from empty tables.  Returns nil when all agree,
--- else the index of the first failing one and its problems.
local function replay1(ops, cfg)
  reset_db()
  local st = O.new_state()
  for i, op in ipairs(ops) do
    local ok, res = run_op(op)
    local cok, nst, P = pcall(C.check, st, op, ok, res, hooks_of(cfg))
    if not cok then return i, { "TESTER ERROR: " .. tostring(nst) } end
    if #P == 0 then
      local d = compare_tables(nst)
      if d then P[#P + 1] = "tables after the call:\n" .. d end
    end
    if #P > 0 then return i, P end
    st = nst
  end
  return nil
end
local function replay(ops, cfg)
  return with_hooks(cfg, function() return replay1(ops, cfg) end)
end

-- Lists inside an operation that shrinking may cut.
local function lists_of(op)
  if op.kind == "bulk" or op.kind == "upsert" then return { op.rows } end
  if op.kind == "bupdate" then return { op.entries } end
  if op.kind == "create" then return { op.vals } end
  if op.kind == "save" then return { op.assigns } end
  if op.kind == "qupdate" and #op.sets > 1 then return { op.sets } end
  return {}
end

local function copy_op(op)
  local c = {}
  for k, v in pairs(op) do c[k] = v end
  c.src = nil
  for _, key in ipairs { "rows", "entries", "vals", "assigns", "sets" } do
    if op[key] then
      c[key] = {}
      for i, x in ipairs(op[key]) do c[key][i] = x end
    end
  end
  return c
end

--- Shrink a failing op list: drop operations, then cut lists, then drop
--- hooks (cfg: the case's hooks or nil).  Returns ops, runs, cfg.
local function shrink(ops, budget, cfg)
  local runs = 0
  -- the same kind of failure: the kind of operation and the first problem
  -- with its numbers and strings left out
  local function class(l, i, P)
    return l[i].kind .. " " .. P[1]:gsub('%b""', ""):gsub("%-?%d+", "#"):gsub("\n.*", "")
  end
  local n, P0 = replay(ops, cfg)
  if not n then return ops, runs, cfg end
  local want = class(ops, n, P0)
  local function fails(l, c)
    runs = runs + 1
    local i, P = replay(l, c or cfg)
    return i ~= nil and class(l, i, P) == want
  end
  -- only the prefix up to the failure matters
  ops = { table.unpack(ops, 1, n) }
  local chunk = math.max(1, #ops // 2)
  while chunk >= 1 and runs < budget do
    local i, changed = 1, false
    while i <= #ops and runs < budget do
      local cand = {}
      for j = 1, #ops do if j < i or j >= i + chunk then cand[#cand + 1] = ops[j] end end
      if #cand > 0 and fails(cand) then
        local k = replay(cand, cfg)
        ops = { table.unpack(cand, 1, k) }
        changed = true
      else
        i = i + chunk
      end
    end
    if not changed then chunk = chunk // 2 end
  end
  for idx = #ops, 1, -1 do
    for li = 1, #lists_of(ops[idx]) do
      local function cur() return lists_of(ops[idx])[li] or {} end
      local step = math.max(1, #cur() // 2)
      while step >= 1 and runs < budget do
        local i, changed = 1, false
        while i <= #cur() and runs < budget do
          local op2 = copy_op(ops[idx])
          local l = lists_of(op2)[li] or {}
          for _ = 1, step do if l[i] then table.remove(l, i) end end
          local cand = { table.unpack(ops) }
          cand[idx] = op2
          if fails(cand) then ops = cand; changed = true else i = i + step end
        end
        if not changed then step = step // 2 end
      end
    end
  end
  if cfg then
    -- drop hooks: a model's, then single hooks
    for _, m in ipairs(W.HOOKABLE) do
      if cfg[m] and runs < budget then
        local c = {}
        for k, v in pairs(cfg) do if k ~= m then c[k] = v end end
        if next(c) and fails(ops, c) then cfg = c end
      end
      for _, h in ipairs(W.HOOKS) do
        if cfg[m] and cfg[m][h] and runs < budget then
          local c = {}
          for k, v in pairs(cfg) do c[k] = v end
          c[m] = {}
          for k, v in pairs(cfg[m]) do if k ~= h then c[m][k] = v end end
          if not next(c[m]) then c[m] = nil end
          if next(c) and fails(ops, c) then cfg = c end
        end
      end
    end
  end
  return ops, runs, cfg
end

local function repro(ops, seed, case, problems, cfg)
  local lines = {
    ("-- writes.lua: seed %d case %d (%s); run with lua5.4 from the root of the tree"):format(seed, case, backend),
    'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path',
    'package.cpath = (os.getenv("QUAY_BUILD_DIR") or "build") .. "/?.so;" .. package.cpath',
    'local quay = require("quay")',
  }
  if is_pg then
    lines[#lines + 1] = 'local db = quay.open(os.getenv("QUAY_PG_URL"))'
    lines[#lines + 1] = 'db:execute("DROP SCHEMA IF EXISTS public CASCADE"); db:execute("CREATE SCHEMA public")'
  else
    lines[#lines + 1] = 'local db = quay.open("sqlite::memory:")'
  end
  lines[#lines + 1] = W.decl(cfg) .. "db:create_tables()\ndb:execute(\"" .. NOTES .. "\")"
  if cfg then
    lines[#lines + 1] = "local function step(n, f)\n  H.reset()\n  local ok, r = pcall(f)\n  print(n, ok, ok and \"\" or (type(r) == \"table\" and r.code or \"\"), ok and \"\" or tostring(r))\n"
      .. "  for _, e in ipairs(H.log) do print(\"\", e.n, e.name, e.model, e.id, e.flag, e.v, e.bare) end\n  return r\nend"
  else
    lines[#lines + 1] = "local function step(n, f)\n  local ok, r = pcall(f)\n  print(n, ok, ok and \"\" or (type(r) == \"table\" and r.code or \"\"), ok and \"\" or tostring(r))\n  return r\nend"
  end
  for i, op in ipairs(ops) do
    lines[#lines + 1] = ("step(%d, function()\n  %s\nend)"):format(i, (op.src or O.render(op)):gsub("\n", "\n  "))
  end
  lines[#lines + 1] = "-- expected at the last step:"
  for _, p in ipairs(problems) do lines[#lines + 1] = "--   " .. p:gsub("\n", "\n--   ") end
  return table.concat(lines, "\n")
end
-- }}

local started = os.time()
local clock0 = os.clock()
open_db()
local passed, failed, nops, hooked = 0, 0, 0, 0
local hstat = { calls = 0, raised = 0, writes = 0 }
local kinds = {}
for case = 1, opts.cases do
  if opts.only and case ~= opts.only then goto continue end
  if opts.time and os.time() - started >= opts.time then out("stopped: --time"); break end
  if failed >= opts.stop_after then out(("stopped after %d failed cases (--stop-after)"):format(failed)); break end
  do
    -- the hooks of the case from a stream of their own, so that a case
    -- without hooks draws the operations it drew before hooks were drawn
    math.randomseed(opts.seed, case, 0x486f6f6b)
    local cfg
    if math.random() < opts.hooks then
      cfg = {}
      for _, m in ipairs(W.HOOKABLE) do
        if math.random() < 0.6 then
          cfg[m] = {}
          for _, h in ipairs(W.HOOKS) do if math.random() < 0.6 then cfg[m][h] = true end end
          if not next(cfg[m]) then cfg[m][W.HOOKS[math.random(4)]] = true end
        end
      end
      if not next(cfg) then cfg.Owner = { before_save = true, after_save = true } end
      hooked = hooked + 1
    end
    math.randomseed(opts.seed, case)
    local ops = {}
    local bad = with_hooks(cfg, function()
      reset_db()
      local st = O.new_state()
      if (opts.verbose or opts.only) and cfg then out("-- hooks: " .. W.show_cfg(cfg)) end
      for i = 1, opts.ops do
        local op = O.generate(st)
        ops[#ops + 1] = op
        local ok, res = run_op(op)
        nops = nops + 1
        kinds[op.kind] = (kinds[op.kind] or 0) + 1
        if opts.verbose or opts.only then
          out(("-- case %d op %d: %s"):format(case, i, ok and "ok" or ("error " .. tostring(type(res) == "table" and res.code or res))))
          out(op.src)
        end
        if cfg then
          hstat.calls = hstat.calls + #HK.log
          if not ok and HK.plan.fail and rawequal(res, HK.plan.value) then hstat.raised = hstat.raised + 1 end
          for _, e in ipairs(HK.log) do
            if HK.plan.write and HK.plan.write[e.n] then hstat.writes = hstat.writes + 1 end
          end
        end
        local cok, nst, P = pcall(C.check, st, op, ok, res, hooks_of(cfg))
        if not cok then
          -- the tester itself failed: reported as a failure, not shrunk
          return { "TESTER ERROR: " .. tostring(nst) }
        end
        if #P == 0 then
          local d = compare_tables(nst)
          if d then P[#P + 1] = "tables after the call:\n" .. d end
        end
        if #P > 0 then return P end
        st = nst
      end
    end)
    if bad then
      failed = failed + 1
      out(("FAILED seed %d case %d (%s), operation %d (%s %s)%s:"):format(opts.seed, case, backend, #ops,
        ops[#ops].kind, ops[#ops].model, cfg and (", hooks " .. W.show_cfg(cfg)) or ""))
      for _, p in ipairs(bad) do out("  " .. p:gsub("\n", "\n  ")) end
      local small, P2 = ops, bad
      if opts.shrink and not bad[1]:match("^TESTER ERROR") then
        local runs
        small, runs, cfg = shrink(ops, 300, cfg)
        local _, p2 = replay(small, cfg)
        P2 = p2 or bad
        out(("  shrunk to %d operations (%d runs)"):format(#small, runs))
      end
      out("  reproduction:")
      out("    " .. repro(small, opts.seed, case, P2, cfg):gsub("\n", "\n    "))
    else
      passed = passed + 1
    end
  end
  ::continue::
end
db:close()
local kl = {}
for k, n in pairs(kinds) do kl[#kl + 1] = k .. " " .. n end
table.sort(kl)
out(("operations: %d (%s)"):format(nops, table.concat(kl, ", ")))
out(("hooks: %d cases, %d hook calls, %d calls failed by a hook, %d rows written by hooks"):format(hooked,
  hstat.calls, hstat.raised, hstat.writes))
out(("seed %d on %s, %.1f s cpu, %d s wall"):format(opts.seed, backend, os.clock() - clock0,
  os.time() - started))
out(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
