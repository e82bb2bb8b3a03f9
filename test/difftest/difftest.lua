--[[
test/difftest/difftest.lua
Quay's randomized differential tester.

  lua5.4 test/difftest/difftest.lua --seed S --cases N [--url URL] [options]

Per seed it builds random instances of a fixed schema (test/difftest/
schema.lua: NULLs, unicode, LIKE wildcards, int64 edges, self relations,
a through model, has_many / has_one / quay.through, a model keyed by a
uuid) and runs random queries
over the whole condition language against Quay and against an oracle that
evaluates the same rows in plain Lua after the rule book
(docs/reference.md "Conditions", "Paths across relations", mirrored in
oracle.lua).  A share of the cases
(--mix) exercise the read path past conditions instead (agen.lua): annotate
with aggregates and what uses the annotations, values() with and without
groups, aggregate(), quay.F comparisons and arithmetic, and qs:update with
expressions (run in a transaction that is rolled back, every row of the
model compared afterwards), each with more terminals over the same set
(count, exists, pluck, first) checked against the oracle and against
Quay's own all() (aoracle.lua).  A mismatch is printed
as Lua source with the seed and case number, shrunk (query, then data),
and grouped into classes by the constructs of the shrunk query
(classify.lua).  The last line is "difftest: N cases, K mismatches"; the
exit status is 1 on any mismatch.

Options:
  --seed S           seed (default 1)
  --seeds A-B        seeds A to B in turn, --cases each (a long run)
  --cases N          number of queries (default 1000)
  --time T           stop after T seconds even before N cases
  --url URL          backend (default sqlite::memory:)
  --case C           run only case C of the seed (printing it), then stop
  --per-instance K   queries per random instance (default 100)
  --scale F          row counts times F (default 1)
  --repros M         shrink the data of at most M mismatch classes (default 8)
  --no-shrink        print mismatches as they come, unshrunk
  --stop-after K     stop after K mismatches (the ctests use 30)
  --any-scope X      "table" (default) or "branches": see oracle.lua
  --quantify X       "lca" (default, the rule book), "minimal" or "table": where the
                     to-many rows of a table are bound (oracle.lua); the other
                     reading is also run, and a mismatch that the other reading
                     explains is tagged reading:<it>
  --mix F            share of the cases that exercise the read path past
                     conditions (agen.lua: annotate, grouped values,
                     aggregate, quay.F, update), default 0.3; 0 for conditions
                     only, 1 for those only
  --kinds A,B        only these kinds of those cases (annotate, grouped,
                     aggregate, fexpr, update)
  --with-known       also generate the constructs of the known mismatches
                     (known.lua K*), to see whether they are fixed (K10
                     crashes the process today)
  --allow-known K3,K7   only those of them
  --no-sql           do not check the oracle against SQL written by the
                     tester on the simplest aggregate shapes (sqlcheck.lua)
  --verbose          print every query
  --help             this text
The oracle gives no answer where the backends may differ by design (integer
overflow, float overflow, ...): such cases are counted as
skipped, by reason, unless Quay's terminals of one set disagree among
themselves (count / exists / pluck against all()), which is a mismatch.
Environment: QUAY_BUILD_DIR (default <root>/build) holds quay/core.so.
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
local build = os.getenv("QUAY_BUILD_DIR") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;"
  .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local D = require("test.difftest.data")
local G = require("test.difftest.gen")
local AG = require("test.difftest.agen")
local O = require("test.difftest.oracle")
local R = require("test.difftest.render")
local C = require("test.difftest.classify")
local Run = require("test.difftest.run")

local opts = { seed = 1, cases = 1000, url = "sqlite::memory:", per_instance = 100,
               scale = 1, repros = 8, shrink = true, any_scope = "table",
               quantify = "lca", mix = 0.3 }
do
  local i = 1
  local function val()
    i = i + 1
    if arg[i] == nil then io.stderr:write("difftest: " .. arg[i - 1] .. " needs a value\n"); os.exit(2) end
    return arg[i]
  end
  while i <= #arg do
    local a = arg[i]
    if a == "--seed" then opts.seed = math.tointeger(tonumber(val()))
    elseif a == "--seeds" then
      local a_, b_ = val():match("^(%d+)%-(%d+)$")
      opts.seed, opts.last_seed = math.tointeger(tonumber(a_)), math.tointeger(tonumber(b_))
      if not opts.seed then io.stderr:write("difftest: --seeds wants A-B\n"); os.exit(2) end
    elseif a == "--cases" then opts.cases = math.tointeger(tonumber(val()))
    elseif a == "--time" then opts.time = tonumber(val())
    elseif a == "--url" then opts.url = val()
    elseif a == "--case" then opts.only = math.tointeger(tonumber(val()))
    elseif a == "--per-instance" then opts.per_instance = math.tointeger(tonumber(val()))
    elseif a == "--scale" then opts.scale = tonumber(val())
    elseif a == "--repros" then opts.repros = math.tointeger(tonumber(val()))
    elseif a == "--no-shrink" then opts.shrink = false
    elseif a == "--stop-after" then opts.stop_after = math.tointeger(tonumber(val()))
    elseif a == "--any-scope" then opts.any_scope = val()
    elseif a == "--quantify" then opts.quantify = val()
    elseif a == "--mix" then opts.mix = tonumber(val())
    elseif a == "--kinds" then
      opts.kinds = {}
      for k in val():gmatch("[^,]+") do
        local ok = false
        for _, x in ipairs(AG.KINDS) do if x == k then ok = true end end
        if not ok then io.stderr:write("difftest: unknown kind " .. k .. "\n"); os.exit(2) end
        opts.kinds[k] = true
      end
    elseif a == "--with-known" then opts.known = true
    elseif a == "--allow-known" then
      opts.known = {}
      for k in val():gmatch("[^,]+") do opts.known[k] = true end
    elseif a == "--no-sql" then opts.no_sql = true
    elseif a == "--verbose" then opts.verbose = true
    elseif a == "--help" or a == "-h" then
      local f = assert(io.open(root .. "/test/difftest/difftest.lua"))
      io.stdout:write((f:read("a"):match("%-%-%[%[\n(.-)%]%]")))
      f:close()
      os.exit(0)
    else
      io.stderr:write("difftest: unknown argument " .. a .. " (see the header of "
        .. "test/difftest/difftest.lua)\n")
      os.exit(2)
    end
    i = i + 1
  end
  if opts.only then opts.cases = math.max(opts.cases, opts.only) end
  if not opts.mix or opts.mix < 0 or opts.mix > 1 then
    io.stderr:write("difftest: --mix wants a number from 0 to 1\n"); os.exit(2)
  end
  for _, k in ipairs { "seed", "cases", "per_instance", "repros" } do
    if not opts[k] then io.stderr:write("difftest: --" .. k:gsub("_", "-") .. " needs an integer\n"); os.exit(2) end
  end
end

local backend = opts.url:match("^sqlite") and "sqlite" or "pg"
for _, o in ipairs { { "any_scope", "table", "branches" }, { "quantify", "table", "minimal", "lca" } } do
  if opts[o[1]] and opts[o[1]] ~= o[2] and opts[o[1]] ~= o[3] and opts[o[1]] ~= o[4] then
    io.stderr:write(("difftest: --%s is %s\n"):format(o[1]:gsub("_", "-"),
      table.concat(o, " or ", 2)))
    os.exit(2)
  end
end
local runner = Run.new(opts.url, { oracle = { any_scope = opts.any_scope,
                                              quantify = opts.quantify },
                                   sql = not opts.no_sql, known = opts.known })
local started = os.time()
local clock0 = os.clock()

local cases, mismatches, bad_instances = 0, 0, 0
local classes, class_order = {}, {}
local inst, gen, agen, inst_idx
local per_kind = {}          -- kind -> { cases, skipped }
local skipped, skip_reasons = 0, {}
local sql_checked, sql_bad = 0, 0
local seed = opts.seed
local data_repros = 0

local function out(...) io.stdout:write(...); io.stdout:write("\n"); io.stdout:flush() end

local function instance_for(case)
  local idx = (case - 1) // opts.per_instance
  if idx == inst_idx then return true end
  math.randomseed(seed, 1000000 + idx)
  inst = D.generate(opts.scale)
  inst_idx = idx
  gen = G.new(inst)
  agen = AG.new(gen, { known = opts.known, backend = backend })
  local ok, err = runner:setup(inst)
  if not ok then
    bad_instances = bad_instances + 1
    mismatches = mismatches + 1
    out(("MISMATCH seed %d instance %d (%s): %s"):format(seed, idx, backend, err))
    inst_idx = nil
    return false
  end
  return true
end

local function report(case, q, exp, got, alt)
  local src = R.queries(q)
  if not opts.shrink then
    out(("MISMATCH seed %d case %d (%s)\n  %s\n  expected: %s\n  got:      %s"):format(
      seed, case, backend, src, R.result(exp), R.result(got)))
    return
  end
  local sq, sexp, sgot = runner:shrink_query(q, got, alt)
  local tags = C.tags(sq, sgot, alt, opts.quantify == "table" and "lca" or "table", sexp)
  if sq.ext then        -- the known mismatches it runs into (--with-known)
    for _, k in ipairs(agen:known(sq)) do tags[#tags + 1] = "known:" .. k end
    table.sort(tags)
  end
  local key = #tags > 0 and table.concat(tags, " ") or "other"
  local cls = classes[key]
  if cls then
    cls.n = cls.n + 1
    out(("MISMATCH seed %d case %d (%s), class %d: %s"):format(seed, case, backend,
      cls.id, R.queries(sq)))
    return
  end
  cls = { n = 1, id = #class_order + 1, key = key, seed = seed, case = case,
          shape = R.signature(sq) }
  classes[key] = cls
  class_order[#class_order + 1] = cls
  out(("MISMATCH seed %d case %d (%s), new class %d [%s]\n  query:    %s\n  expected: %s\n"
    .. "  got:      %s\n  shrunk:   %s\n  expected: %s\n  got:      %s"):format(seed, case,
    backend, cls.id, key, src, R.result(exp), R.result(got), R.queries(sq), R.result(sexp),
    R.result(sgot)))
  if data_repros < opts.repros then
    data_repros = data_repros + 1
    local small = runner:shrink_data(inst, sq, sgot, alt)
    local ok = runner:setup(small)
    local _, e2, g2 = false, sexp, sgot
    if ok then _, e2, g2 = runner:check(sq) end
    out("  minimal data:\n    " .. R.instance(small):gsub("\n", "\n    "))
    out(("  on it:    %s\n  expected: %s\n  got:      %s"):format(R.queries(sq),
      e2 and R.result(e2) or "(unsure)", R.result(g2)))
    cls.repro = { data = small, q = sq }
    assert(runner:setup(inst), "difftest: the instance no longer loads")
  end
end

local stopped = false
local function run_seed()
  inst_idx = nil
  for case = 1, opts.cases do
    if opts.only and case ~= opts.only then goto continue end
    if opts.time and os.time() - started >= opts.time then stopped = true; return end
    if opts.stop_after and mismatches >= opts.stop_after then
      out(("stopped after %d mismatches (--stop-after)"):format(mismatches))
      stopped = true
      return
    end
    if instance_for(case) then
      -- the kind of the case on a stream of its own, so that the condition
      -- cases of a seed stay what they were before the other kinds came
      math.randomseed(seed, 3000000 + case)
      local kind = "cond"
      if math.random() < opts.mix then kind = AG.pick_kind(opts.kinds) end
      math.randomseed(seed, case)
      local q
      if kind == "cond" then
        if math.random() < 0.02 then q = gen:bad_query() else q = gen:query() end
      elseif math.random() < 0.02 then q = agen:bad_query()
      else q = agen:query(kind) end
      if opts.verbose or opts.only then out(("case %d: %s"):format(case, R.queries(q))) end
      local pok, agree, exp, got, alt, unsure, sqlcheck = pcall(runner.check, runner, q)
      if pok and sqlcheck then
        sql_checked = sql_checked + 1
        if sqlcheck ~= "ok" then
          -- the oracle and the tester's own SQL disagree: a tester bug (or
          -- one Quay shares with the oracle)
          sql_bad = sql_bad + 1
          mismatches = mismatches + 1
          out(("SQL CHECK MISMATCH seed %d case %d (%s): %s\n  oracle: %s\n  %s"):format(seed, case,
            backend, R.queries(q), R.result(exp), sqlcheck))
        end
      end
      if not pok then
        -- the tester itself failed: show it as a mismatch
        agree, exp, got, alt = false, { error = "tester", message = tostring(agree) },
          { error = "tester" }, false
        out(("TESTER ERROR seed %d case %d: %s\n  %s"):format(seed, case, R.queries(q), exp.message))
      end
      cases = cases + 1
      local pk = per_kind[kind] or { cases = 0, skipped = 0 }
      per_kind[kind] = pk
      pk.cases = pk.cases + 1
      if unsure then
        pk.skipped = pk.skipped + 1
        skipped = skipped + 1
        skip_reasons[unsure] = (skip_reasons[unsure] or 0) + 1
      end
      if opts.only then
        out("  expected: " .. (exp and R.result(exp) or ("(unsure: " .. tostring(unsure) .. ")"))
          .. "\n  got:      " .. R.result(got))
      end
      if not agree then
        mismatches = mismatches + 1
        if pok then report(case, q, exp, got, alt) end
      end
    end
    ::continue::
  end
end

for s_ = opts.seed, opts.last_seed or opts.seed do
  seed = s_
  run_seed()
  if opts.last_seed then
    out(("seed %d done: %d cases, %d mismatches so far"):format(seed, cases, mismatches))
  end
  if stopped then break end
end
runner:close()

if #class_order > 0 then
  out("classes (tags of the shrunk query, see classify.lua: count, first seed/case, its shape):")
  for _, c in ipairs(class_order) do
    out(("  %3d %5d  %d/%-6d [%s]  %s"):format(c.id, c.n, c.seed, c.case, c.key, c.shape))
  end
end
do
  local parts = {}
  for _, k in ipairs { "cond", table.unpack(AG.KINDS) } do
    local pk = per_kind[k]
    if pk then
      parts[#parts + 1] = ("%s %d"):format(k, pk.cases)
        .. (pk.skipped > 0 and (" (%d skipped)"):format(pk.skipped) or "")
    end
  end
  out("cases by kind: " .. table.concat(parts, ", "))
  if sql_checked > 0 then
    out(("oracle checked against the tester's SQL: %d cases, %d disagree"):format(sql_checked, sql_bad))
  end
  if skipped > 0 then
    local rs = {}
    for r, n in pairs(skip_reasons) do rs[#rs + 1] = ("%s %d"):format(r, n) end
    table.sort(rs)
    out("skipped (no answer: backend-defined, or a known mismatch): " .. table.concat(rs, ", "))
  end
end
out(("seeds %d-%d on %s, %.1f s cpu, %d s wall"):format(opts.seed, opts.last_seed or opts.seed,
  backend, os.clock() - clock0, os.time() - started))
out(("difftest: %d cases, %d mismatches"):format(cases, mismatches))
os.exit(mismatches == 0 and 0 or 1)
