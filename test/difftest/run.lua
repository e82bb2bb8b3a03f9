--[[
test/difftest/run.lua
Runs generated queries against Quay and the oracle, compares, and shrinks a
mismatch: first the query (drop steps, conditions, quay.any branches, list
items, ordering; turn the terminal into all()) while some mismatch of the
same kind persists, then the data (drop rows, with their dependents, in
halving chunks).
]]
local quay = require("quay")
local S = require("test.difftest.schema")
local V = require("test.difftest.values")
local D = require("test.difftest.data")
local O = require("test.difftest.oracle")
local R = require("test.difftest.render")

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
  self.db, self.M, self.inst = db, M, inst
  self.oracle = O.new(inst, self.opts.oracle)
  -- the other reading of the rule book's quantification (see oracle.lua)
  local alt = {}
  for k, v in pairs(self.opts.oracle or {}) do alt[k] = v end
  alt.quantify = (alt.quantify == "table") and "lca" or "table"
  self.alt = O.new(inst, alt)
  local ok, err = pcall(D.load, db, quay, M, inst)
  if not ok then return nil, "load: " .. tostring(err) end
  local diff = D.verify(db, M, inst)
  if diff then return nil, "round trip: " .. diff end
  return true
end

function Run:close()
  if self.db then self.db:close(); self.db = nil end
end

-- Quay's result of query q, in the oracle's result shape (or { error }).
function Run:quay_result(q)
  local src = "return " .. R.query(q)
  local env = setmetatable({ quay = quay, math = math }, { __index = self.M })
  local chunk = assert(load(src, "=case", "t", env))
  local ok, res = pcall(chunk)
  if not ok then
    if type(res) == "table" then return { error = res.code or "?", message = res.message } end
    return { error = "lua", message = tostring(res) }
  end
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

--- Do the two results agree?
function Run.agree(exp, got)
  if got.error or exp.error then return exp.error == got.error end
  if exp.kind ~= got.kind then return false end
  if exp.kind == "count" then return math.type(got.n) == "integer" and exp.n == got.n end
  if exp.kind == "bool" then return exp.b == got.b end
  if exp.kind == "first" then return exp.id == got.id end
  local a, b
  if exp.kind == "ids" then a, b = exp.ids, got.ids else a, b = exp.values, got.values end
  if #a ~= #b then return false end
  if not exp.ordered then a, b = sorted_values(a), sorted_values(b) end
  for i = 1, #a do if not same_value(a[i], b[i]) then return false end end
  return true
end

--- Run one query: returns agree, expected, got, and whether Quay agrees
--- with the other reading of the quantification (alt).
function Run:check(q)
  local exp, alt
  if q.bad then exp = { error = "bad_lookup" }; alt = exp
  else exp = self.oracle:run(q); alt = self.alt:run(q) end
  local got = self:quay_result(q)
  return Run.agree(exp, got), exp, got, Run.agree(alt, got)
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

local function with(q, field, value)
  local n = {}
  for k, v in pairs(q) do n[k] = v end
  n[field] = value
  return n
end

-- Smaller versions of a query.
local function query_variants(q)
  local out = {}
  if q.term.kind ~= "all" and q.term.kind ~= "count" then
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
local function same_kind(got0, got, alt0, alt)
  if alt0 ~= alt then return false end
  if got0.error then return got.error == got0.error end
  return not got.error
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
  local function steps(l)
    for _, st in ipairs(l) do
      if st.cond then cond(st.cond) end
      if st.fn then steps(st.fn) end
    end
  end
  steps(q.steps)
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
