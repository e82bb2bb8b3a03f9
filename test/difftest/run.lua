--[[
test/difftest/run.lua
Runs generated queries against Quay and the oracle, compares, and shrinks a
mismatch: first the query (drop steps, conditions, quay.any branches, list
items, ordering; turn the terminal into all(); drop extra terminals,
annotations, aggregates, values columns, update assignments, an aggregate's
filter / distinct / default, an operand of arithmetic) while some mismatch
of the same kind persists, then the data (drop rows, with their dependents,
in halving chunks).  Values compare with their types (an integer is not a
float) except approximate ones (float sums and averages: V.approx), and
lists of rows as multisets unless ordered.
]]
local quay = require("quay")
local S = require("test.difftest.schema")
local V = require("test.difftest.values")
local D = require("test.difftest.data")
local O = require("test.difftest.oracle")
local R = require("test.difftest.render")
local SQ = require("test.difftest.sqlcheck")

local Run = {}
Run.__index = Run
local NULL = V.NULL

--- A runner on url (sqlite::memory: or a libpq URL).
function Run.new(url, opts)
  return setmetatable({ url = url, opts = opts or {},
                        is_pg = not url:match("^sqlite") }, Run)
end

--- Give the runner a fresh database holding inst.  Returns true, or nil
--- and a message (a load or round-trip failure).
function Run:setup(inst)
  if self.db then self.db:close(); self.db = nil end
  local db = quay.open(self.url)
  if self.is_pg then
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
  end
  local M = S.declare(db, quay)
  db:create_tables()
  if not self.checked then S.check(db); self.checked = true end
  if not self.tables then
    self.tables = {}
    for name, m in pairs(db:describe()) do self.tables[name] = m.table end
  end
  self.db, self.M, self.inst = db, M, inst
  local oopts = { backend = self.is_pg and "pg" or "sqlite" }
  for k, v in pairs(self.opts.oracle or {}) do oopts[k] = v end
  self.oracle = O.new(inst, oopts)
  -- the other reading of the rule book's quantification (see oracle.lua)
  local alt = {}
  for k, v in pairs(oopts) do alt[k] = v end
  alt.quantify = (alt.quantify == "table") and "lca" or "table"
  self.alt = O.new(inst, alt)
  local ok, err = pcall(D.load, db, quay, M, inst)
  if not ok then return nil, "load: " .. tostring(err) end
  local diff = D.verify(db, M, inst)
  if diff then return nil, "round trip: " .. diff end
  diff = D.verify_loading(M, inst)
  if diff then return nil, "loading: " .. diff end
  return true
end

function Run:close()
  if self.db then self.db:close(); self.db = nil end
end

local function err_result(res)
  if type(res) == "table" then return { error = res.code or "?", message = res.message } end
  return { error = "lua", message = tostring(res) }
end

-- The columns of a values set.
local function value_cols(q)
  local cols = {}
  for i, p in ipairs(q.vals) do cols[i] = p end
  if q.grouped then
    for _, a in ipairs(q.ann or {}) do cols[#cols + 1] = a.name end
  end
  return cols
end

-- A plain values row as the oracle's row: NULL for nil, extra keys (or a
-- metatable) noted in __extra.
local function value_row(r, cols)
  local out, known = {}, {}
  for _, c in ipairs(cols) do
    known[c] = true
    local v = r[c]
    if v == nil then v = NULL end
    out[c] = v
  end
  for k, v in pairs(r) do
    if not known[k] then out.__extra = out.__extra or {}; out.__extra[k] = v end
  end
  if getmetatable(r) ~= nil then out.__extra = out.__extra or {}; out.__extra.metatable = true end
  return out
end

local ROLLBACK = setmetatable({}, { __tostring = function() return "difftest rollback" end })

-- qs:update inside a transaction that is rolled back: the count, then
-- every row of the model as read back before the rollback.
function Run:quay_update(q, chunk)
  local n, rows, qerr
  local ok, e = pcall(self.db.transaction, self.db, function()
    local cok, r = pcall(chunk)
    if not cok then qerr = r; error(ROLLBACK) end
    n = r
    rows = self.M[q.model]:order_by("id"):all()
    error(ROLLBACK)
  end)
  local diff = D.verify(self.db, self.M, self.inst, q.model)
  if diff then return { error = "rollback", message = "the rollback left: " .. diff } end
  if qerr then return err_result(qerr) end
  if ok or e ~= ROLLBACK then return { error = "transaction", message = tostring(e) } end
  local out = {}
  for i, r in ipairs(rows) do
    local x = {}
    for _, fd in ipairs(S.models[q.model].fields) do
      local v = r[fd.name]
      if v == nil then v = NULL end
      x[fd.name] = v
    end
    out[i] = x
  end
  return { kind = "update", n = n, model = q.model, rows = out }
end

-- Quay's result of a query of agen.lua (res: what its Lua returned).
local function ext_result(q, res)
  local kind = q.term.kind
  if kind == "count" then return { kind = "count", n = res }
  elseif kind == "exists" then return { kind = "bool", b = res }
  elseif kind == "pluck" then
    local vals = {}
    for i = 1, res.n or #res do
      local v = res[i]
      if v == nil then v = NULL end
      vals[i] = v
    end
    return { kind = "values", values = vals }
  elseif kind == "aggregate" then
    local cols = {}
    for i, a in ipairs(q.term.aggs) do cols[i] = a.name end
    return { kind = "row", row = value_row(res, cols), cols = cols }
  end
  if q.vals then
    local cols = value_cols(q)
    if kind == "first" then
      return { kind = "rows", rows = { res and value_row(res, cols) or nil }, cols = cols }
    end
    local rows = {}
    for i, r in ipairs(res) do rows[i] = value_row(r, cols) end
    return { kind = "rows", rows = rows, cols = cols }
  end
  if kind == "first" then return { kind = "first", id = res and res.id or nil } end
  local names = {}
  for i, a in ipairs(q.ann or {}) do names[i] = a.name end
  local rows = {}
  for i, r in ipairs(res) do
    local x = { id = r.id }
    for _, n in ipairs(names) do
      local v = r[n]
      if v == nil then v = NULL end
      x[n] = v
    end
    rows[i] = x
  end
  return { kind = "recs", rows = rows, cols = names }
end

-- Quay's result of query q, in the oracle's result shape (or { error }).
function Run:quay_result(q)
  local src = "return " .. R.query(q)
  local env = setmetatable({ quay = quay, math = math }, { __index = self.M })
  local chunk = assert(load(src, "=case", "t", env))
  if q.term.kind == "update" then return self:quay_update(q, chunk) end
  local ok, res = pcall(chunk)
  if not ok then return err_result(res) end
  if q.ext then return ext_result(q, res) end
  local kind = q.term.kind
  local ordered = q.order ~= nil and #q.order > 0
  if kind == "count" then return { kind = "count", n = res }
  elseif kind == "exists" then return { kind = "bool", b = res }
  elseif kind == "first" then return { kind = "first", id = res and res.id or nil }
  elseif kind == "pluck" then
    local vals = {}
    for i = 1, res.n or #res do
      local v = res[i]
      if v == nil then v = NULL end
      vals[i] = v
    end
    return { kind = "values", values = vals, ordered = ordered }
  end
  local ids = {}
  for i, r in ipairs(res) do ids[i] = r.id end
  return { kind = "ids", ids = ids, ordered = ordered }
end

-- Rank of a value's kind for sorting a multiset: NULL, boolean, number, string.
local function rank(v)
  if v == NULL then return 0 end
  local t = type(v)
  return t == "boolean" and 1 or t == "number" and 2 or t == "string" and 3 or 4
end

local function sorted_values(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out, function(a, b)
    local ra, rb = rank(a), rank(b)
    if ra ~= rb then return ra < rb end
    if ra == 0 or ra == 4 then return false end
    return V.cmp(a, b) < 0
  end)
  return out
end

local function same_value(a, b)
  if a == NULL or b == NULL then return a == b end
  if type(a) ~= type(b) then return false end
  return V.eq(a, b)
end

-- Does got match the expected cell e (types exact: an integer is not a
-- float; approximate values within their tolerance)?
local function cell_eq(e, g)
  if V.is_dec(e) then return g == V.dec_str(e) end       -- read as its string
  if V.is_approx(e) then
    return math.type(g) == "float" and math.abs(g - e.v) <= e.tol
  end
  if e == NULL or g == NULL then return e == g end
  if type(e) ~= type(g) then return false end
  if type(e) == "number" then return math.type(e) == math.type(g) and e == g end
  return e == g
end
Run.cell_eq = cell_eq

local function row_eq(e, g, cols)
  if g.__extra then return false end
  for _, c in ipairs(cols) do
    local x, y = e[c], g[c]
    if x == nil then x = NULL end
    if y == nil then y = NULL end
    if not cell_eq(x, y) then return false end
  end
  return true
end

-- Do the lists of rows hold the same rows, in any order?
local function same_rows(a, b, cols)
  if #a ~= #b then return false end
  local used = {}
  for _, e in ipairs(a) do
    local found = false
    for j, g in ipairs(b) do
      if not used[j] and row_eq(e, g, cols) then used[j] = true; found = true; break end
    end
    if not found then return false end
  end
  return true
end

local function agree_ext(exp, got)
  if exp.kind == "recs" then
    if #exp.rows ~= #got.rows then return false end
    local a, b = exp.rows, got.rows
    if not exp.ordered then
      a, b = { table.unpack(a) }, { table.unpack(b) }
      table.sort(a, function(x, y) return x.id < y.id end)
      table.sort(b, function(x, y) return x.id < y.id end)
    end
    for i = 1, #a do
      if a[i].id ~= b[i].id or not row_eq(a[i], b[i], exp.cols) then return false end
    end
    return true
  elseif exp.kind == "rows" then
    if exp.ordered and exp.total then
      if #exp.rows ~= #got.rows then return false end
      for i = 1, #exp.rows do
        if not row_eq(exp.rows[i], got.rows[i], exp.cols) then return false end
      end
      return true
    end
    if not same_rows(exp.rows, got.rows, exp.cols) then return false end
    if exp.ordered then       -- partly ordered: got must be sorted by the terms
      -- (a decimal column read as strings is compared as decimals)
      local dec = {}
      for _, r in ipairs(exp.rows) do
        for _, c in ipairs(exp.cols) do if V.is_dec(r[c]) then dec[c] = true end end
      end
      local function conv(r)
        local t = {}
        for k, v in pairs(r) do t[k] = dec[k] and type(v) == "string" and V.dec_parse(v) or v end
        return t
      end
      for i = 2, #got.rows do
        if O.rows_cmp(conv(got.rows[i - 1]), conv(got.rows[i]), exp.order) > 0 then return false end
      end
    end
    return true
  elseif exp.kind == "row" then
    return row_eq(exp.row, got.row, exp.cols)
  elseif exp.kind == "update" then
    if math.type(got.n) ~= "integer" or exp.n ~= got.n or #exp.rows ~= #got.rows then return false end
    for i, e in ipairs(exp.rows) do
      local g = got.rows[i]
      for _, fd in ipairs(S.models[exp.model].fields) do
        local x, y = e[fd.name], g[fd.name]
        local same = cell_eq(x, y)
          or (fd.type == "json" and V.json_eq(x, y, function(v) return v == NULL or v == quay.null end))
          or (fd.type == "number" and type(x) == "number" and type(y) == "number" and x == y)
        if not same then return false end
      end
    end
    return true
  elseif exp.kind == "multi" then
    if #exp.parts ~= #got.parts then return false end
    for i = 1, #exp.parts do
      if not Run.agree(exp.parts[i], got.parts[i]) then return false end
    end
    return true
  end
  return nil
end

--- Do the two results agree?
function Run.agree(exp, got)
  if got.error or exp.error then return exp.error == got.error end
  if exp.kind ~= got.kind then return false end
  local ext = agree_ext(exp, got)
  if ext ~= nil then return ext end
  if exp.kind == "count" then return math.type(got.n) == "integer" and exp.n == got.n end
  if exp.kind == "bool" then return exp.b == got.b end
  if exp.kind == "first" then return exp.id == got.id end
  local a, b
  if exp.kind == "ids" then a, b = exp.ids, got.ids else a, b = exp.values, got.values end
  if #a ~= #b then return false end
  if exp.strict then           -- agen.lua's: exact types, approximate values
    if exp.ordered then
      for i = 1, #a do if not cell_eq(a[i], b[i]) then return false end end
      return true
    end
    local wa, wb = {}, {}
    for i = 1, #a do wa[i] = { v = a[i] }; wb[i] = { v = b[i] } end
    return same_rows(wa, wb, { "v" })
  end
  local function strs(list)          -- decimals read as their strings
    local out = {}
    for i = 1, #list do out[i] = V.is_dec(list[i]) and V.dec_str(list[i]) or list[i] end
    return out
  end
  a = strs(a)
  if not exp.ordered then a, b = sorted_values(a), sorted_values(b) end
  for i = 1, #a do if not same_value(a[i], b[i]) then return false end end
  return true
end

local function with(q, field, value)
  local n = {}
  for k, v in pairs(q) do n[k] = v end
  n[field] = value
  return n
end

-- The oracle's answer to q, or nil and the reason it is unsure.
local function expect(oracle, q)
  if q.bad then return { error = type(q.bad) == "string" and q.bad or "bad_lookup" } end
  local ok, res = pcall(oracle.run, oracle, q)
  if ok then return res end
  if O.is_unsure(res) then return nil, res.reason end
  error(res, 0)
end

-- The rows of a main result (all()), or nil.
local function main_rows(r)
  if r.error then return nil end
  if r.kind == "ids" then return r.ids end
  if r.kind == "recs" or r.kind == "rows" then return r.rows end
  return nil
end

--- Do Quay's answers to the terminals of one set agree with its all()
--- (terms[1])?  Returns nil, or what differs.  Checked whatever the oracle
--- says, so it also covers the cases the oracle is unsure of.
function Run.consistent(q, terms, gots)
  local rows = main_rows(gots[1])
  if not rows then return nil end
  for i = 2, #terms do
    local t, g = terms[i], gots[i]
    local what = R.query(q, t)
    -- (an error: backend-defined, as the oracle is unsure, e.g. PostgreSQL
    -- overflowing on a row one plan computes and another does not)
    if g.error then return nil end
    if t.kind == "count" and g.n ~= #rows then
      return ("%s is %s, all() has %d rows"):format(what, tostring(g.n), #rows)
    elseif t.kind == "exists" and g.b ~= (#rows > 0) then
      return ("%s is %s, all() has %d rows"):format(what, tostring(g.b), #rows)
    elseif t.kind == "pluck" then
      local want = {}
      for j, r in ipairs(rows) do
        local v = r[t.path]
        if v == nil then v = NULL end
        want[j] = { [t.path] = v }
      end
      local have = {}
      for j, v in ipairs(g.values) do have[j] = { [t.path] = v } end
      if not same_rows(want, have, { t.path }) then
        return what .. " differs from the column of all()"
      end
    end
  end
  return nil
end

--- Run one query: returns agree, expected, got, whether Quay agrees with
--- the other reading of the quantification (alt), the reason the oracle is
--- unsure (the case is skipped; agree is true unless Quay's terminals
--- disagree among themselves), and with opts.sql the SQL check of the
--- oracle ("ok", what differs, or nil when the shape has none).
function Run:check(q)
  if q.skip then return true, nil, { kind = "count", n = 0 }, false, q.skip end
  local terms = { q.term }
  for _, t in ipairs(q.also or {}) do terms[#terms + 1] = t end
  local exps, alts, gots = {}, {}, {}
  local unsure
  for i, t in ipairs(terms) do
    local qi = i == 1 and q or with(q, "term", t)
    local e, why = expect(self.oracle, qi)
    if not e then unsure = unsure or why
    else alts[i] = expect(self.alt, qi) end
    exps[i] = e
    gots[i] = self:quay_result(qi)
  end
  local multi = #terms > 1
  local got = multi and { kind = "multi", parts = gots } or gots[1]
  if unsure then
    local bad = Run.consistent(q, terms, gots)
    if bad then return false, { error = "consistent", message = bad }, got, false end
    return true, nil, got, false, unsure
  end
  -- the simplest shapes also against SQL written here (sqlcheck.lua)
  local sqlcheck
  local plan = self.opts.sql and SQ.render(q, self.tables)
  if plan and not exps[1].error then
    local ok, rows = pcall(self.db.rows, self.db, plan.sql)
    if not ok then
      sqlcheck = "the SQL failed: " .. tostring(type(rows) == "table" and rows.message or rows)
        .. "\n  " .. plan.sql
    else
      local diff = SQ.compare(plan, rows, exps[1])
      sqlcheck = diff and (diff .. "\n  " .. plan.sql) or "ok"
    end
  end
  local exp = multi and { kind = "multi", parts = exps } or exps[1]
  local alt_ok = true
  for i = 1, #terms do if not alts[i] then alt_ok = false end end
  local alt = alt_ok and (multi and { kind = "multi", parts = alts } or alts[1])
  return Run.agree(exp, got), exp, got, alt and Run.agree(alt, got) or false, nil, sqlcheck
end

----------------------------------------------------------------------------
-- Shrinking the query

local function copy_list(l) local o = {} for i, v in ipairs(l) do o[i] = v end return o end

local function without(l, i)
  local o = {}
  for j, v in ipairs(l) do if j ~= i then o[#o + 1] = v end end
  return o
end

local function keys_disjoint(items, more)
  local keys = {}
  for _, it in ipairs(items) do if it.kind == "leaf" then keys[it.key] = true end end
  for _, it in ipairs(more) do if it.kind == "leaf" and keys[it.key] then return false end end
  return true
end

local table_variants

local function leaf_variants(lf)
  local out = {}
  local v = lf.value
  if type(v) == "table" and v.kind == "list" and #v.items > 0 and not lf.key:match("__between$") then
    for i = 1, #v.items do
      out[#out + 1] = { kind = "leaf", key = lf.key, value = { kind = "list", items = without(v.items, i) } }
    end
  end
  return out
end

local function any_variants(a)
  local out = {}
  if #a.tables > 1 then
    for i = 1, #a.tables do out[#out + 1] = { kind = "any", tables = without(a.tables, i) } end
  end
  for i, t in ipairs(a.tables) do
    for _, tv in ipairs(table_variants(t)) do
      local ts = copy_list(a.tables); ts[i] = tv
      out[#out + 1] = { kind = "any", tables = ts }
    end
  end
  return out
end

-- Smaller versions of a conditions table (never empty).
function table_variants(t)
  local out = {}
  if #t.items > 1 then
    for i = 1, #t.items do out[#out + 1] = { kind = "table", items = without(t.items, i) } end
  end
  for i, it in ipairs(t.items) do
    if it.kind == "any" then
      for _, sub in ipairs(it.tables) do      -- inline one branch
        local rest = without(t.items, i)
        if keys_disjoint(rest, sub.items) then
          for _, x in ipairs(sub.items) do rest[#rest + 1] = x end
          out[#out + 1] = { kind = "table", items = rest }
        end
      end
      for _, av in ipairs(any_variants(it)) do
        local items = copy_list(t.items); items[i] = av
        out[#out + 1] = { kind = "table", items = items }
      end
    else
      for _, lv in ipairs(leaf_variants(it)) do
        local items = copy_list(t.items); items[i] = lv
        out[#out + 1] = { kind = "table", items = items }
      end
    end
  end
  return out
end

local function cond_variants(c)
  if c.kind == "any" then
    local out = {}
    for _, t in ipairs(c.tables) do out[#out + 1] = t end
    for _, v in ipairs(any_variants(c)) do out[#out + 1] = v end
    return out
  end
  return table_variants(c)
end

local function steps_variants(steps, nested)
  local out = {}
  if #steps > (nested and 1 or 0) then
    for i = 1, #steps do out[#out + 1] = without(steps, i) end
  end
  for i, st in ipairs(steps) do
    local function put(ns)
      local l = copy_list(steps); l[i] = ns; out[#out + 1] = l
    end
    if st.op == "filter" or st.op == "exclude" then
      for _, cv in ipairs(cond_variants(st.cond)) do put { op = st.op, cond = cv } end
    else
      if st.cond or st.fn then put { op = st.op, rel = st.rel } end
      if st.cond then
        for _, cv in ipairs(table_variants(st.cond)) do put { op = st.op, rel = st.rel, cond = cv } end
      end
      if st.fn then
        for _, fv in ipairs(steps_variants(st.fn, true)) do put { op = st.op, rel = st.rel, fn = fv } end
      end
      local hops = O.split(st.rel)
      if #hops > 1 and not st.cond and not st.fn then
        put { op = st.op, rel = hops[1] }
      end
    end
  end
  return out
end

-- Smaller versions of an expression.
local function expr_variants(e)
  local out = {}
  if e.kind == "agg" then
    local function put(field, value)
      local n = {}
      for k, v in pairs(e) do n[k] = v end
      n[field] = value
      out[#out + 1] = n
    end
    if e.filter then
      put("filter", nil)
      for _, tv in ipairs(table_variants(e.filter)) do put("filter", tv) end
    end
    if e.distinct then put("distinct", nil) end
    if e.default ~= nil then put("default", nil) end
  elseif e.kind == "op" then
    if e.a.kind ~= "num" then out[#out + 1] = e.a end
    if e.b.kind ~= "num" then out[#out + 1] = e.b end
    for _, av in ipairs(expr_variants(e.a)) do
      if av.kind ~= "num" or e.b.kind ~= "num" then
        out[#out + 1] = { kind = "op", op = e.op, a = av, b = e.b }
      end
    end
    for _, bv in ipairs(expr_variants(e.b)) do
      if bv.kind ~= "num" or e.a.kind ~= "num" then
        out[#out + 1] = { kind = "op", op = e.op, a = e.a, b = bv }
      end
    end
  end
  return out
end

-- Smaller lists of named expressions ({ name, e, ... }): one left out
-- (keeping min), or one expression smaller.
local function named_variants(list, min)
  local out = {}
  if #list > min then
    for i = 1, #list do out[#out + 1] = without(list, i) end
  end
  for i, a in ipairs(list) do
    local e = a.e or (type(a.value) == "table" and a.value.kind == "expr" and a.value.e)
    for _, ev in ipairs(e and expr_variants(e) or {}) do
      local l = copy_list(list)
      local n = {}
      for k, v in pairs(a) do n[k] = v end
      if a.e then n.e = ev else n.value = { kind = "expr", e = ev } end
      l[i] = n
      out[#out + 1] = l
    end
  end
  return out
end

-- Smaller versions of the parts of an agen.lua query.
local function ext_variants(q)
  local out = {}
  for i = 1, #(q.also or {}) do out[#out + 1] = with(q, "also", without(q.also, i)) end
  if q.post then
    out[#out + 1] = with(q, "post", nil)
    for _, sv in ipairs(steps_variants(q.post)) do
      out[#out + 1] = with(q, "post", #sv > 0 and sv or nil)
    end
  end
  if q.ann then
    for _, l in ipairs(named_variants(q.ann, 1)) do out[#out + 1] = with(q, "ann", l) end
    if not q.grouped then out[#out + 1] = with(q, "ann", nil) end
  end
  if q.vals and #q.vals > 1 then
    for i = 1, #q.vals do out[#out + 1] = with(q, "vals", without(q.vals, i)) end
  end
  if q.distinct then out[#out + 1] = with(q, "distinct", nil) end
  local t = q.term
  if t.kind == "aggregate" then
    for _, l in ipairs(named_variants(t.aggs, 1)) do
      out[#out + 1] = with(q, "term", { kind = "aggregate", aggs = l })
    end
  elseif t.kind == "update" then
    for _, l in ipairs(named_variants(t.set, 1)) do
      out[#out + 1] = with(q, "term", { kind = "update", set = l })
    end
  end
  return out
end

-- Smaller versions of a query.
local function query_variants(q)
  local out = {}
  if q.ext then
    for _, v in ipairs(ext_variants(q)) do out[#out + 1] = v end
  end
  if q.term.kind ~= "all" and q.term.kind ~= "count" and q.term.kind ~= "aggregate"
     and q.term.kind ~= "update" then
    out[#out + 1] = with(q, "term", { kind = "all" })
  end
  if q.offset then out[#out + 1] = with(q, "offset", nil) end
  if q.limit then out[#out + 1] = with(q, "limit", nil) end
  if q.order and not q.limit and not q.offset then
    out[#out + 1] = with(q, "order", nil)
    if #q.order > 1 then
      for i = 1, #q.order do out[#out + 1] = with(q, "order", without(q.order, i)) end
    end
  end
  for _, sv in ipairs(steps_variants(q.steps)) do out[#out + 1] = with(q, "steps", sv) end
  if q.term.kind == "count" then out[#out + 1] = with(q, "term", { kind = "all" }) end
  return out
end

-- The same kind of mismatch: an error stays an error (of the same code),
-- agreement with the other reading stays as it was.
-- The error codes of a result (of its terminals), as one string.
local function errors_of(got)
  local set, list = {}, {}
  for _, p in ipairs(got.kind == "multi" and got.parts or { got }) do
    if p.error and not set[p.error] then set[p.error] = true; list[#list + 1] = p.error end
  end
  table.sort(list)
  return table.concat(list, ",")
end

local function same_kind(got0, got, alt0, alt)
  if alt0 ~= alt then return false end
  return errors_of(got0) == errors_of(got)
end

--- Shrink q (a mismatch on the current database).  Returns the smallest
--- query found and its expected / got results.
function Run:shrink_query(q, got0, alt0)
  local best = q
  local tries = 0
  local progress = true
  local exp_b, got_b
  while progress and tries < 2000 do
    progress = false
    for _, v in ipairs(query_variants(best)) do
      tries = tries + 1
      local ok, agree, exp, got, alt = pcall(self.check, self, v)
      if ok and not agree and same_kind(got0, got, alt0, alt) then
        best, exp_b, got_b, progress = v, exp, got, true
        break
      end
    end
  end
  if not exp_b then
    local _, e, g = self:check(best)
    exp_b, got_b = e, g
  end
  return best, exp_b, got_b
end

----------------------------------------------------------------------------
-- Shrinking the data

-- Rows the query names (owner, records): never removed.
local function pinned(q)
  local pins = {}
  local function val(v)
    if type(v) == "table" and v.kind == "rec" then pins[v.model .. "#" .. v.id] = true
    elseif type(v) == "table" and v.kind == "list" then for _, x in ipairs(v.items) do val(x) end end
  end
  local function cond(c)
    if c.kind == "any" then for _, t in ipairs(c.tables) do cond(t) end return end
    for _, it in ipairs(c.items) do
      if it.kind == "leaf" then val(it.value) else cond(it) end
    end
  end
  local function expr(e)
    if e.kind == "agg" and e.filter then cond(e.filter) end
    if e.kind == "op" then expr(e.a); expr(e.b) end
  end
  local function steps(l)
    for _, st in ipairs(l) do
      if st.cond then cond(st.cond) end
      if st.fn then steps(st.fn) end
    end
  end
  steps(q.steps)
  steps(q.post or {})
  for _, a in ipairs(q.ann or {}) do expr(a.e) end
  for _, a in ipairs(q.term.aggs or {}) do expr(a.e) end
  if q.owner then pins[q.owner.model .. "#" .. q.owner.id] = true end
  return pins
end

--- A copy of inst without the rows in drop ({ "Model#id" = true }) and what
--- depends on them (non-null references removed, nullable ones set to NULL,
--- join pairs removed).  Returns nil when a pinned row would go.
function Run.remove_rows(inst, drop, pins)
  local out = D.copy(inst)
  local gone = {}
  for k in pairs(drop) do gone[k] = true end
  local changed = true
  while changed do
    changed = false
    for _, name in ipairs(S.order) do
      for _, r in ipairs(out.rows[name] or {}) do
        if not gone[name .. "#" .. r.id] then
          for _, rel in pairs(S.models[name].rels) do
            if rel.kind == "fk" and r[rel.column] ~= NULL then
              local t
              for _, x in ipairs(out.rows[rel.target]) do
                if x[rel.to_field] == r[rel.column] then t = x; break end
              end
              if t and gone[rel.target .. "#" .. t.id] then
                if S.models[name].field_by[rel.column].null then
                  r[rel.column] = NULL
                else
                  gone[name .. "#" .. r.id] = true
                  changed = true
                end
              end
            end
          end
        end
      end
    end
  end
  for k in pairs(gone) do if pins[k] then return nil end end
  for _, name in ipairs(S.order) do
    local keep = {}
    for _, r in ipairs(out.rows[name] or {}) do
      if not gone[name .. "#" .. r.id] then keep[#keep + 1] = r end
    end
    out.rows[name] = keep
  end
  local function prune(list, ma, mb)
    local keep = {}
    for _, p in ipairs(list) do
      if not gone[ma .. "#" .. p[1]] and not gone[mb .. "#" .. p[2]] then keep[#keep + 1] = p end
    end
    return keep
  end
  out.join.follows = prune(out.join.follows, "User", "User")
  out.join.post_tags = prune(out.join.post_tags, "Post", "Tag")
  return out
end

-- Does q still mismatch (same kind) on inst?
function Run:mismatches_on(inst, q, got0, alt0)
  local ok = self:setup(inst)
  if not ok then return false end
  local pok, agree, _, got, alt = pcall(self.check, self, q)
  return pok and not agree and same_kind(got0, got, alt0, alt)
end

--- Shrink the data under q; returns the smallest instance found.
function Run:shrink_data(inst, q, got0, alt0)
  local pins = pinned(q)
  local best = inst
  local budget = self.opts.data_budget or 400
  local order = {}
  for i = #S.order, 1, -1 do order[#order + 1] = S.order[i] end
  local progress = true
  while progress and budget > 0 do
    progress = false
    -- join pairs first, then rows, each in halving chunks
    for _, j in ipairs { "follows", "post_tags" } do
      local chunk = math.max(1, #best.join[j] // 2)
      while chunk >= 1 and budget > 0 do
        local i = 1
        while i <= #best.join[j] and budget > 0 do
          local cand = D.copy(best)
          local keep = {}
          for k, p in ipairs(cand.join[j]) do if k < i or k >= i + chunk then keep[#keep + 1] = p end end
          cand.join[j] = keep
          budget = budget - 1
          if self:mismatches_on(cand, q, got0, alt0) then best = cand; progress = true
          else i = i + chunk end
        end
        chunk = chunk // 2
      end
    end
    for _, name in ipairs(order) do
      local chunk = math.max(1, #best.rows[name] // 2)
      while chunk >= 1 and budget > 0 do
        local i = 1
        while i <= #best.rows[name] and budget > 0 do
          local drop = {}
          for k = i, math.min(i + chunk - 1, #best.rows[name]) do
            drop[name .. "#" .. best.rows[name][k].id] = true
          end
          local cand = Run.remove_rows(best, drop, pins)
          local hit = false
          if cand then
            budget = budget - 1
            hit = self:mismatches_on(cand, q, got0, alt0)
          end
          if hit then best = cand; progress = true else i = i + chunk end
        end
        chunk = chunk // 2
      end
    end
  end
  return best
end

return Run
