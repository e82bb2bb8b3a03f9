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
unique and foreign-key violations, PROTECT / RESTRICT).  After every
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
integrity.
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
               stop_after = 5 }
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
local backend = is_pg and "pg" or "sqlite"
local function out(...) io.stdout:write(...); io.stdout:write("\n"); io.stdout:flush() end

-- {{ the database
local db, M
local function open_db()
  db = quay.open(opts.url)
  if is_pg then
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
  else
    for _, name in ipairs { "links", "locks", "memos", "items", "owners", "bares" } do
      db:execute("DROP TABLE IF EXISTS " .. name)
    end
  end
  local env = setmetatable({ db = db, quay = quay }, { __index = _G })
  local chunk = assert(load(W.DECL .. "\nreturn { Owner = Owner, Item = Item, Lock = Lock, "
    .. "Link = Link, Memo = Memo, Bare = Bare }", "schema", "t", env))
  M = chunk()
  db:create_tables()
end

local function reset_db()
  if is_pg then
    db:execute("TRUNCATE owners, items, locks, links, memos, bares RESTART IDENTITY CASCADE")
  else
    for _, name in ipairs { "links", "locks", "memos", "items", "owners", "bares" } do
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
  if #diffs == 0 then return nil end
  return table.concat(diffs, "\n")
end
-- }}

-- {{ running operations
local function run_op(op)
  local src = op.src or O.render(op)
  op.src = src
  local env = setmetatable({ db = db, quay = quay }, { __index = function(_, k)
    return M[k] or _G[k] end })
  local chunk, err = load(src, "op", "t", env)
  if not chunk then error("writes: op does not compile: " .. err .. "\n" .. src) end
  return pcall(chunk)
end

--- Run a list of operations from empty tables.  Returns nil when all agree,
--- else the index of the first failing one and its problems.
local function replay(ops)
  reset_db()
  local st = O.new_state()
  for i, op in ipairs(ops) do
    local ok, res = run_op(op)
    local cok, nst, P = pcall(C.check, st, op, ok, res)
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

--- Shrink a failing op list: drop operations, then cut lists.
local function shrink(ops, budget)
  local runs = 0
  -- the same kind of failure: the kind of operation and the first problem
  -- with its numbers and strings left out
  local function class(l, i, P)
    return l[i].kind .. " " .. P[1]:gsub('%b""', ""):gsub("%-?%d+", "#"):gsub("\n.*", "")
  end
  local n, P0 = replay(ops)
  local want = class(ops, n, P0)
  local function fails(l)
    runs = runs + 1
    local i, P = replay(l)
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
        local k = replay(cand)
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
  return ops, runs
end

local function repro(ops, seed, case, problems)
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
  lines[#lines + 1] = W.DECL .. "db:create_tables()"
  lines[#lines + 1] = "local function step(n, f)\n  local ok, r = pcall(f)\n  print(n, ok, ok and \"\" or (type(r) == \"table\" and r.code or \"\"), ok and \"\" or tostring(r))\n  return r\nend"
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
local passed, failed, nops = 0, 0, 0
local kinds = {}
for case = 1, opts.cases do
  if opts.only and case ~= opts.only then goto continue end
  if opts.time and os.time() - started >= opts.time then out("stopped: --time"); break end
  if failed >= opts.stop_after then out(("stopped after %d failed cases (--stop-after)"):format(failed)); break end
  do
    math.randomseed(opts.seed, case)
    reset_db()
    local st = O.new_state()
    local ops = {}
    local bad
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
      local cok, nst, P = pcall(C.check, st, op, ok, res)
      if not cok then
        -- the tester itself failed: reported as a failure, not shrunk
        bad = { "TESTER ERROR: " .. tostring(nst) }
        break
      end
      if #P == 0 then
        local d = compare_tables(nst)
        if d then P[#P + 1] = "tables after the call:\n" .. d end
      end
      if #P > 0 then bad = P; break end
      st = nst
    end
    if bad then
      failed = failed + 1
      out(("FAILED seed %d case %d (%s), operation %d (%s %s):"):format(opts.seed, case, backend, #ops,
        ops[#ops].kind, ops[#ops].model))
      for _, p in ipairs(bad) do out("  " .. p:gsub("\n", "\n  ")) end
      local small, P2 = ops, bad
      if opts.shrink and not bad[1]:match("^TESTER ERROR") then
        local runs
        small, runs = shrink(ops, 300)
        local _, p2 = replay(small)
        P2 = p2 or bad
        out(("  shrunk to %d operations (%d runs)"):format(#small, runs))
      end
      out("  reproduction:")
      out("    " .. repro(small, opts.seed, case, P2):gsub("\n", "\n    "))
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
out(("seed %d on %s, %.1f s cpu, %d s wall"):format(opts.seed, backend, os.clock() - clock0,
  os.time() - started))
out(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
