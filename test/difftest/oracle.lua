--[[
test/difftest/oracle.lua
The independent truth of the differential tester: it evaluates a query
(the AST of test/difftest/gen.lua) over an instance held in plain Lua
tables, following the rules of docs/reference.md ("Conditions", "Paths across
relations": same-row groups), not Quay's SQL.

Truth values are three-valued: TRUE, FALSE, UNKNOWN (SQL NULL).
Conditions tables are evaluated as the rule book's "same-row groups": every
to-many hop of a path in one conditions table (including the tables inside
its quay.any items, recursively) is a variable named by its path prefix
("posts", "posts__tags"); the variables are quantified existentially once,
outside the table's whole boolean formula.  To-one hops are followed
directly, a missing row being the NULL row (every field NULL, every
relation empty).  relation__isnull (and relation = quay.null, relation__ne
= quay.null, relation__<pk>__isnull) tests the relation's existence on the
row of its parent, binding no variable.

Ambiguities of the rule book are options (opts):
  any_scope = "table"     a quay.any given as the whole argument of filter /
                          exclude is one table holding it (default)
            | "branches"  each of its tables is a table of its own
  quantify  = "lca"       each to-many prefix is bound at the innermost table
                          holding every leaf that uses it, each alternative
                          of a quay.any binding its own when all uses come
                          through it (default; the rules of reference.md)
            | "table"     once, outside the table's whole formula
            | "minimal"   at the innermost table (inside the quay.any
                          items) holding every leaf that uses it
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")

local O = {}
local NULL = V.NULL
local TRUE, FALSE, UNKNOWN = "T", "F", "U"
O.TRUE, O.FALSE, O.UNKNOWN = TRUE, FALSE, UNKNOWN

local NULLROW = setmetatable({}, { __index = function() return NULL end,
                                   __name = "difftest.NULLROW" })

local function tv(b) return b and TRUE or FALSE end

local function and3(a, b)
  if a == FALSE or b == FALSE then return FALSE end
  if a == UNKNOWN or b == UNKNOWN then return UNKNOWN end
  return TRUE
end

local function or3(a, b)
  if a == TRUE or b == TRUE then return TRUE end
  if a == UNKNOWN or b == UNKNOWN then return UNKNOWN end
  return FALSE
end

----------------------------------------------------------------------------
-- Following relations over plain rows

--- A new evaluator over instance inst.
function O.new(inst, opts)
  local self = setmetatable({ inst = inst, opts = opts or {}, index = {} }, { __index = O })
  self.opts.any_scope = self.opts.any_scope or "table"
  self.opts.quantify = self.opts.quantify or "lca"
  return self
end

-- Rows of model whose column col equals v (an index built on first use).
function O:where(model, col, v)
  if v == NULL then return {} end
  local key = model .. "." .. col
  local idx = self.index[key]
  if not idx then
    idx = {}
    for _, r in ipairs(self.inst.rows[model] or {}) do
      local x = r[col]
      if x ~= NULL then
        idx[x] = idx[x] or {}
        table.insert(idx[x], r)
      end
    end
    self.index[key] = idx
  end
  return idx[v] or {}
end

function O:byid(model, id)
  return self:where(model, "id", id)[1]
end

-- Join pairs of an automatic many_to_many, by the side given.
function O:pairs_of(join, side, id)
  local key = "join." .. join .. "." .. side
  local idx = self.index[key]
  if not idx then
    idx = {}
    for _, p in ipairs(self.inst.join[join]) do
      idx[p[side]] = idx[p[side]] or {}
      table.insert(idx[p[side]], p)
    end
    self.index[key] = idx
  end
  return idx[id] or {}
end

local function uniq_sorted(rows)
  local seen, out = {}, {}
  for _, r in ipairs(rows) do
    if not seen[r] then seen[r] = true; out[#out + 1] = r end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

--- The rows related to row (of model) through relation rel: always a list
--- (to-one relations give zero or one row).  With want_pivot, also the
--- through rows of a `thru` relation, parallel to the result.
function O:related(model, row, relname, want_pivot)
  if row == NULLROW then return {}, {} end
  local rel = S.models[model].rels[relname]
  assert(rel, "oracle: no relation " .. model .. "." .. relname)
  local k = rel.kind
  if k == "fk" then
    local t = self:where(rel.target, rel.to_field, row[rel.column])
    return { t[1] }
  elseif k == "rev" then
    local t = self:where(rel.target, rel.column, row[rel.to_field])
    if rel.many then return t end
    assert(#t <= 1, "oracle: to-one reverse with several rows: " .. model .. "." .. relname)
    return t
  elseif k == "m2m" then
    local mine, theirs = 1, 2
    if rel.flip then mine, theirs = 2, 1 end
    local out = {}
    for _, p in ipairs(self:pairs_of(rel.join, mine, row.id)) do
      out[#out + 1] = self:byid(rel.target, p[theirs])
    end
    return uniq_sorted(out)
  elseif k == "thru" then
    local out, piv = {}, {}
    for _, via in ipairs(self:where(rel.via, rel.mine, row.id)) do
      out[#out + 1] = self:byid(rel.target, via[rel.theirs])
      piv[#piv + 1] = via
    end
    if want_pivot then return out, piv end
    return uniq_sorted(out)
  elseif k == "path" then
    local cur, m = { row }, model
    for _, hop in ipairs(rel.path) do
      local nxt = {}
      for _, r in ipairs(cur) do
        for _, t in ipairs(self:related(m, r, hop)) do nxt[#nxt + 1] = t end
      end
      cur, m = uniq_sorted(nxt), S.models[m].rels[hop].target
    end
    return cur
  end
  error("oracle: relation kind " .. tostring(k))
end

-- The one row of a to-one relation, or NULLROW.
function O:one(model, row, relname)
  return self:related(model, row, relname)[1] or NULLROW
end

--- Rows along a relation path "a__b" (where_has): the union, deduplicated.
function O:along(model, row, path)
  local cur, m = { row }, model
  for _, hop in ipairs(O.split(path)) do
    local nxt = {}
    for _, r in ipairs(cur) do
      for _, t in ipairs(self:related(m, r, hop)) do nxt[#nxt + 1] = t end
    end
    cur, m = uniq_sorted(nxt), S.models[m].rels[hop].target
  end
  return cur, m
end

function O.split(path)
  local out, i = {}, 1
  while true do
    local j = path:find("__", i, true)
    if not j then out[#out + 1] = path:sub(i); break end
    out[#out + 1] = path:sub(i, j - 1)
    i = j + 2
  end
  return out
end

----------------------------------------------------------------------------
-- Paths of conditions

local LOOKUPS = { eq = true, ne = true, lt = true, lte = true, gt = true, gte = true,
                  ["in"] = true, not_in = true, contains = true, icontains = true,
                  startswith = true, endswith = true, isnull = true, between = true }
O.LOOKUPS = LOOKUPS

--- Resolve a condition key on model: { hops = { {name, model, rel, many} },
--- kind = "field" | "relnull", field, lookup }.  A path ending at a relation
--- compares the relation's key (kind "field" on the key, the relation being
--- the last hop); relation__isnull, relation = quay.null and friends become
--- kind "relnull" with `last` the tested relation (not a hop).  pivot_of
--- names the through model whose row "pivot" reaches (related sets).
function O.resolve(model, key, value, pivot_of, anns)
  local segs = O.split(key)
  local md0 = S.models[model]
  if anns and anns[segs[1]] ~= nil and not md0.field_by[segs[1]] and not md0.rels[segs[1]] then
    -- an annotation's name (annotate), with an optional lookup
    assert(#segs <= 2, "oracle: path continues after an annotation: " .. key)
    local lk = segs[2] or "eq"
    assert(LOOKUPS[lk], "oracle: lookup " .. lk)
    return { hops = {}, kind = "ann", name = segs[1], lookup = lk }
  end
  local hops, m, i = {}, model, 1
  local res = { hops = hops }
  while i <= #segs do
    local s = segs[i]
    local md = S.models[m]
    if i == 1 and s == "pivot" and pivot_of then
      hops[#hops + 1] = { name = "pivot", model = m, pivot = true, many = false }
      m = pivot_of
      i = i + 1
    elseif md.rels[s] then
      local rel = md.rels[s]
      hops[#hops + 1] = { name = s, model = m, rel = rel, many = rel.many }
      m = rel.target
      i = i + 1
    elseif md.field_by[s] and md.field_by[s].type == "json" then
      -- a JSON field: keys into the document, then a lookup or has_key
      res.kind, res.field, res.ftype = "json", s, "json"
      local keys = {}
      for j = i + 1, #segs do keys[#keys + 1] = segs[j] end
      local last = keys[#keys]
      if last == "has_key" then
        table.remove(keys)
        res.lookup = "has_key"
      elseif last and LOOKUPS[last] and #keys > 1 then
        table.remove(keys)
        res.lookup = last
      else
        res.lookup = "eq"
      end
      assert(#keys > 0 or res.lookup == "has_key", "oracle: a JSON field compared whole: " .. key)
      res.keys = keys
      return res
    elseif md.field_by[s] then
      res.field, res.ftype = s, md.field_by[s].type
      if O.PARTS[segs[i + 1]] and (res.ftype == "date" or res.ftype == "datetime") then
        -- a date part (docs/reference.md "Date parts"): an integer
        res.part = segs[i + 1]
        i = i + 1
      end
      res.lookup = segs[i + 1] or "eq"
      assert(i + 1 >= #segs, "oracle: path continues after a lookup: " .. key)
      assert(LOOKUPS[res.lookup], "oracle: lookup " .. res.lookup)
      -- <relation>__<pk>__isnull: the relation's existence
      if s == "id" and res.lookup == "isnull" and #hops > 0 and not hops[#hops].pivot then
        local last = table.remove(hops)
        return { hops = hops, kind = "relnull", last = last, isnull = value }
      end
      res.kind = "field"
      return res
    elseif LOOKUPS[s] and #hops > 0 then
      assert(i == #segs, "oracle: path continues after a lookup: " .. key)
      res.lookup = s
      break
    else
      error("oracle: cannot resolve " .. key .. " at " .. s)
    end
  end
  res.lookup = res.lookup or "eq"
  local last = hops[#hops]
  assert(last and not last.pivot, "oracle: path ends at no relation: " .. key)
  if res.lookup == "isnull" then
    table.remove(hops)
    return { hops = hops, kind = "relnull", last = last, isnull = value }
  elseif value == NULL and (res.lookup == "eq" or res.lookup == "ne") then
    table.remove(hops)
    return { hops = hops, kind = "relnull", last = last, isnull = res.lookup == "eq" }
  end
  res.kind = "field"
  res.field = last.rel.key
  res.ftype = S.models[last.rel.target].field_by[res.field].type
  res.relend = true
  return res
end

-- The value of a leaf with records replaced by their keys.
function O:keyed(v, relend)
  if type(v) == "table" and v.kind == "rec" then
    local row = self:byid(v.model, v.id)
    assert(row, "oracle: record " .. v.model .. "(" .. v.id .. ") not in the data")
    return row[relend and relend.rel.key or "id"]
  elseif type(v) == "table" and v.kind == "list" then
    local out = {}
    for i, x in ipairs(v.items) do out[i] = self:keyed(x, relend) end
    return { kind = "list", items = out }
  end
  return v
end

-- The date parts a date or datetime field takes as lookups, and where
-- they sit in the stored text ("YYYY-MM-DD[ HH:MM:SS]", UTC).
O.PARTS = { year = { 1, 4 }, month = { 6, 7 }, day = { 9, 10 } }

--- The integer part of a stored date or datetime (NULL stays NULL).
function O.date_part(x, part)
  if x == NULL then return NULL end
  local at = O.PARTS[part]
  return math.tointeger(tonumber(x:sub(at[1], at[2])))
end

--- The rule book's lookups on a column value x (NULL possible).
function O.lookup(x, lk, v)
  if V.is_approx(x) then O.unsure("a lookup on an approximate value") end
  if lk == "isnull" then
    return tv((x == NULL) == v)
  elseif lk == "eq" then
    if v == NULL then return tv(x == NULL) end
    if x == NULL then return UNKNOWN end
    return tv(V.eq(x, v))
  elseif lk == "ne" then
    if v == NULL then return tv(x ~= NULL) end
    if x == NULL then return TRUE end
    return tv(not V.eq(x, v))
  elseif lk == "lt" or lk == "lte" or lk == "gt" or lk == "gte" then
    assert(v ~= NULL, "oracle: comparison with NULL")
    if x == NULL then return UNKNOWN end
    local c = V.cmp(x, v)
    if lk == "lt" then return tv(c < 0) elseif lk == "lte" then return tv(c <= 0)
    elseif lk == "gt" then return tv(c > 0) else return tv(c >= 0) end
  elseif lk == "in" or lk == "not_in" then
    local items = {}
    for _, e in ipairs(v.items) do if e ~= NULL then items[#items + 1] = e end end
    if lk == "in" then
      if #items == 0 then return FALSE end
      if x == NULL then return UNKNOWN end
      for _, e in ipairs(items) do if V.eq(x, e) then return TRUE end end
      return FALSE
    else
      if #items == 0 then return TRUE end
      if x == NULL then return TRUE end
      for _, e in ipairs(items) do if V.eq(x, e) then return FALSE end end
      return TRUE
    end
  elseif lk == "contains" or lk == "icontains" or lk == "startswith" or lk == "endswith" then
    if x == NULL then return UNKNOWN end
    if v == "" then return TRUE end
    if lk == "contains" then return tv(x:find(v, 1, true) ~= nil)
    elseif lk == "icontains" then return tv(x:lower():find(v:lower(), 1, true) ~= nil)
    elseif lk == "startswith" then return tv(x:sub(1, #v) == v)
    else return tv(#v <= #x and x:sub(-#v) == v) end
  elseif lk == "between" then
    if x == NULL then return UNKNOWN end
    local a, b = v.items[1], v.items[2]
    return tv(V.cmp(a, x) <= 0 and V.cmp(x, b) <= 0)
  end
  error("oracle: lookup " .. tostring(lk))
end

-- The value at keys inside JSON document doc: NULL for a SQL NULL
-- document, a missing key, a key of something that is not an object (an
-- array's elements have no keys) and a JSON null; O.JSON_COMPOSITE for an
-- object or an array; else the scalar.
local COMPOSITE = setmetatable({}, { __name = "difftest.json_composite" })
O.JSON_COMPOSITE = COMPOSITE

local function json_at(doc, keys)
  local cur = doc
  for _, k in ipairs(keys) do
    if type(cur) ~= "table" or cur == NULL or V.json_array(cur) then return NULL end
    cur = cur[k]
    if cur == nil then return NULL end
  end
  if cur == NULL then return NULL end
  if type(cur) == "table" then return COMPOSITE end
  return cur
end

-- Equality of a JSON scalar with a compared value: same JSON type (a
-- boolean is never a number), numbers by value (1 == 1.0).
local function json_same(x, v)
  if x == COMPOSITE then return false end
  if type(x) ~= type(v) then return false end
  return x == v
end

--- A lookup on a JSON field (docs/reference.md "More field types": path
--- lookups data__key__sub = v, data__has_key = "k"; a JSON null reads as
--- quay.null).  What the reference leaves to Quay, as both backends do it:
--- a missing key, a JSON null and a path through a non-object all read as
--- NULL (= quay.null holds, eq is unknown, ne is true); an object or array
--- equals no scalar; scalars compare by JSON type and value; has_key holds
--- when the value at the keys is an object holding the key (also when it
--- holds a JSON null).
function O.json_lookup(doc, keys, lk, v)
  if lk == "has_key" then
    local obj = doc
    for _, k in ipairs(keys) do
      if type(obj) ~= "table" or obj == NULL or V.json_array(obj) then return FALSE end
      obj = obj[k]
    end
    if type(obj) ~= "table" or obj == NULL or V.json_array(obj) then return FALSE end
    return tv(obj[v] ~= nil)
  end
  local x = json_at(doc, keys)
  if lk == "isnull" then return tv((x == NULL) == v) end
  if lk == "eq" then
    if v == NULL then return tv(x == NULL) end
    if x == NULL then return UNKNOWN end
    return tv(json_same(x, v))
  elseif lk == "ne" then
    if v == NULL then return tv(x ~= NULL) end
    if x == NULL then return TRUE end
    return tv(not json_same(x, v))
  elseif lk == "in" or lk == "not_in" then
    local items = {}
    for _, e in ipairs(v.items) do if e ~= NULL then items[#items + 1] = e end end
    local found = false
    for _, e in ipairs(items) do if x ~= NULL and json_same(x, e) then found = true end end
    if lk == "in" then
      if #items == 0 then return FALSE end
      if x == NULL then return UNKNOWN end
      return tv(found)
    end
    if #items == 0 or x == NULL then return TRUE end
    return tv(not found)
  end
  -- Ordered lookups (reference.md "Comparing inside JSON"): a value of
  -- the comparand's JSON kind compares (numbers numerically, strings byte
  -- by byte, false before true); another kind, an object or array, a
  -- missing key or a JSON null reads as NULL (unknown).
  local function ord(a, b)          -- -1 / 0 / 1, or nil: kinds differ
    if a == COMPOSITE or type(a) ~= type(b) then return nil end
    if type(a) == "boolean" then a, b = a and 1 or 0, b and 1 or 0 end
    if a < b then return -1 elseif a > b then return 1 end
    return 0
  end
  if lk == "lt" or lk == "lte" or lk == "gt" or lk == "gte" then
    if x == NULL then return UNKNOWN end
    local c = ord(x, v)
    if c == nil then return UNKNOWN end
    if lk == "lt" then return tv(c < 0) elseif lk == "lte" then return tv(c <= 0)
    elseif lk == "gt" then return tv(c > 0) end
    return tv(c >= 0)
  elseif lk == "between" then
    if x == NULL then return UNKNOWN end
    local lo, hi = ord(x, v.items[1]), ord(x, v.items[2])
    if lo == nil or hi == nil then return UNKNOWN end
    return tv(lo >= 0 and hi <= 0)
  end
  error("oracle: JSON lookup " .. tostring(lk))
end

----------------------------------------------------------------------------
-- Conditions tables

-- Prefix name of hops 1..n.
local function prefix(hops, n)
  local parts = {}
  for i = 1, n do parts[i] = hops[i].name end
  return table.concat(parts, "__")
end

-- Walk hops 1..n from row under env (variable bindings).
function O:walk(model, row, hops, n, env, ctx)
  local cur = row
  for i = 1, n do
    local h = hops[i]
    if cur == NULLROW then
      assert(not h.many, "oracle: to-many variable under a NULL row")
    elseif h.pivot then
      cur = ctx.pivot or NULLROW
    elseif h.many then
      cur = env[prefix(hops, i)]
      assert(cur, "oracle: unbound variable " .. prefix(hops, i))
    else
      cur = self:one(h.model, cur, h.name)
    end
  end
  return cur
end

function O:leaf_value(model, row, lf, env, ctx)
  local r = lf.res
  local fexpr = type(lf.value) == "table" and lf.value.kind == "expr"
  if r.kind == "ann" then
    local x = ctx and ctx.ann and ctx.ann[r.name]
    assert(x ~= nil, "oracle: no annotation " .. r.name)
    if fexpr then return O.lookup_expr(x, r.lookup, self:eval(lf.value.e, model, row, ctx)) end
    return O.lookup(x, r.lookup, lf.value)
  end
  if r.kind == "relnull" then
    local parent = self:walk(model, row, r.hops, #r.hops, env, ctx)
    local has = parent ~= NULLROW and #self:related(r.last.model, parent, r.last.name) > 0
    return tv((not has) == r.isnull)
  end
  local cur = self:walk(model, row, r.hops, #r.hops, env, ctx)
  local x = cur[r.field]
  if r.part then x = O.date_part(x, r.part) end
  if r.kind == "json" then return O.json_lookup(x, r.keys, r.lookup, lf.value) end
  if fexpr then
    -- quay.F values are the query's row's (the owner's), whatever the path
    return O.lookup_expr(x, r.lookup, self:eval(lf.value.e, model, row, ctx))
  end
  return O.lookup(x, r.lookup, self:keyed(lf.value, r.relend and r.hops[#r.hops]))
end

--- The truth value of conditions table t (kind "table") for row of model.
--- The variables (to-many prefixes) are bound at the table (the rule book);
--- with opts.quantify == "minimal" each is bound instead at the innermost
--- table (of the table and the tables inside its quay.any items) holding
--- every leaf that uses it.  pre binds prefixes outside the table (an
--- aggregate's filter: its path's rows, { ["posts"] = row }); ctx.ann holds
--- the row's annotations (leaves on their names).
function O:table_value(model, row, t, ctx, pre)
  local vars, scoped = {}, {}
  -- every use of a to-many prefix, with the chain of tables it sits in
  -- (each entry { node, via }: via is the quay.any item entered through)
  local uses = {}
  local function collect(node, chain, via)
    chain = { table.unpack(chain) }
    chain[#chain + 1] = { node = node, via = via }
    for _, it in ipairs(node.items) do
      if it.kind == "leaf" then
        it.res = it.res or O.resolve(model, it.key, it.value, ctx and ctx.pivot_of,
                                     ctx and ctx.ann)
        local hops = it.res.hops
        for i, h in ipairs(hops) do
          if h.many and not (pre and pre[prefix(hops, i)]) then
            local p = prefix(hops, i)
            if not uses[p] then
              uses[p] = { name = p, hops = hops, n = i, chains = {} }
              uses[#uses + 1] = uses[p]
            end
            table.insert(uses[p].chains, chain)
          end
        end
      else
        for _, sub in ipairs(it.tables) do collect(sub, chain, it) end
      end
    end
  end
  collect(t, {}, nil)
  -- Where a prefix is bound.  "table": the whole table; "minimal": the
  -- innermost table holding every use; "lca": the innermost table holding
  -- every use, unless all of them come through one quay.any of it, in
  -- which case each of its alternatives binds its own (exists (A or B) =
  -- exists A or exists B).
  local function place(u, chains, depth)
    local k = depth
    while true do
      local node = chains[1][k + 1] and chains[1][k + 1].node
      if not node then break end
      local same = true
      for _, c in ipairs(chains) do
        if not c[k + 1] or c[k + 1].node ~= node then same = false; break end
      end
      if not same then break end
      k = k + 1
    end
    if self.opts.quantify == "lca" then
      local via, through = nil, true
      for _, c in ipairs(chains) do
        local nxt = c[k + 1]
        if not nxt then through = false; break end
        if via == nil then via = nxt.via elseif via ~= nxt.via then through = false; break end
      end
      if through and via then
        local groups, order = {}, {}
        for _, c in ipairs(chains) do
          local alt = c[k + 1].node
          if not groups[alt] then groups[alt] = {}; order[#order + 1] = alt end
          table.insert(groups[alt], c)
        end
        for _, alt in ipairs(order) do place(u, groups[alt], k + 1) end
        return
      end
    end
    local node = self.opts.quantify == "table" and t or chains[1][k].node
    scoped[node] = scoped[node] or {}
    table.insert(scoped[node], { name = u.name, hops = u.hops, n = u.n })
  end
  for _, u in ipairs(uses) do place(u, u.chains, 1) end
  for _, list in pairs(scoped) do
    table.sort(list, function(a, b)
      if a.n ~= b.n then return a.n < b.n end
      return a.name < b.name
    end)
  end
  local env = {}
  for k, v in pairs(pre or {}) do env[k] = v end     -- rows bound outside (aggregates)
  local formula
  -- node's formula with its own variables quantified around it
  local function quantified(node)
    local list = scoped[node] or {}
    local function enum(i)
      if i > #list then return formula(node) end
      local v = list[i]
      local parent = self:walk(model, row, v.hops, v.n - 1, env, ctx)
      local h = v.hops[v.n]
      local best = FALSE
      for _, r in ipairs(self:related(h.model, parent, h.name)) do
        env[v.name] = r
        local res = enum(i + 1)
        if res == TRUE then env[v.name] = nil; return TRUE end
        if res == UNKNOWN then best = UNKNOWN end
      end
      env[v.name] = nil
      return best
    end
    return enum(1)
  end
  formula = function(node)
    local acc = TRUE
    for _, it in ipairs(node.items) do
      local v
      if it.kind == "leaf" then
        v = self:leaf_value(model, row, it, env, ctx)
      else
        v = FALSE
        for _, sub in ipairs(it.tables) do
          v = or3(v, quantified(sub))
          if v == TRUE then break end
        end
      end
      acc = and3(acc, v)
      if acc == FALSE then return FALSE end
    end
    return acc
  end
  return quantified(t)
end

--- The truth value of a filter / exclude argument (a table or a quay.any).
function O:cond_value(model, row, c, ctx)
  if c.kind == "any" then
    if self.opts.any_scope == "branches" then
      local v = FALSE
      for _, sub in ipairs(c.tables) do
        v = or3(v, self:table_value(model, row, sub, ctx))
      end
      return v
    end
    c = { kind = "table", items = { c } }
  end
  return self:table_value(model, row, c, ctx)
end

----------------------------------------------------------------------------
-- Query sets

-- Apply the steps of a query to candidate rows (each { row, ctx }).
function O:apply_steps(model, cands, steps)
  for _, st in ipairs(steps) do
    local keep = {}
    for _, c in ipairs(cands) do
      local ok
      if st.op == "filter" then
        ok = self:cond_value(model, c.row, st.cond, c.ctx) == TRUE
      elseif st.op == "exclude" then
        ok = self:cond_value(model, c.row, st.cond, c.ctx) ~= TRUE
      else
        local rows, target = self:along(model, c.row, st.rel)
        local found = false
        for _, r in ipairs(rows) do
          if st.cond then
            found = self:table_value(target, r, st.cond) == TRUE
          elseif st.fn then
            found = #self:apply_steps(target, { { row = r } }, st.fn) > 0
          else
            found = true
          end
          if found then break end
        end
        ok = (st.op == "where_has") == found
      end
      if ok then keep[#keep + 1] = c end
    end
    cands = keep
  end
  return cands
end

-- The value of a to-one path (order_by, pluck) on row.
function O:path_value(model, row, path, ctx)
  if ctx and ctx.ann and ctx.ann[path] ~= nil then return ctx.ann[path] end
  local segs = O.split(path)
  local cur, m = row, model
  for i = 1, #segs - 1 do
    if segs[i] == "pivot" and i == 1 and ctx and ctx.pivot_of then
      cur, m = ctx.pivot or NULLROW, ctx.pivot_of
    else
      cur = self:one(m, cur, segs[i])
      m = S.models[m].rels[segs[i]].target
    end
  end
  local last = segs[#segs]
  if S.models[m].rels[last] then            -- a path ending at a to-one relation: its key
    local rel = S.models[m].rels[last]
    return self:one(m, cur, last)[rel.key]
  end
  assert(S.models[m].field_by[last], "oracle: no field " .. m .. "." .. last)
  return cur[last]
end

-- Order candidates by the order terms, NULL first ascending, then id.
function O:sort(model, cands, order)
  local keyed = {}
  for i, c in ipairs(cands) do
    local ks = {}
    for j, term in ipairs(order or {}) do ks[j] = self:path_value(model, c.row, term.path, c.ctx) end
    keyed[i] = { c = c, ks = ks }
  end
  table.sort(keyed, function(a, b)
    for j, term in ipairs(order or {}) do
      local x, y = a.ks[j], b.ks[j]
      local c
      if x == NULL and y == NULL then c = 0
      elseif x == NULL then c = -1
      elseif y == NULL then c = 1
      else c = V.cmp(x, y) end
      if term.desc then c = -c end
      if c ~= 0 then return c < 0 end
    end
    if a.c.row.id ~= b.c.row.id then return a.c.row.id < b.c.row.id end
    -- one row twice (a thru set with the same target through two rows)
    return (a.c.ctx and a.c.ctx.pivot and a.c.ctx.pivot.id or 0)
         < (b.c.ctx and b.c.ctx.pivot and b.c.ctx.pivot.id or 0)
  end)
  for i, k in ipairs(keyed) do cands[i] = k.c end
  return cands
end

--- Run query q; returns the result in the shape run.lua compares:
--- { kind = "ids", ids = {...}, ordered = bool } | { kind = "count", n } |
--- { kind = "bool", b } | { kind = "values", values = {...}, ordered } |
--- { kind = "first", id | nil }.
function O:run(q)
  if q.ext then return self:run_ext(q) end     -- aggregates, values, update (aoracle.lua)
  local model = q.model
  local cands = self:apply_steps(model, self:base(q), q.steps)
  self:sort(model, cands, q.order)
  local ordered = q.order ~= nil and #q.order > 0
  cands = O.slice(cands, q)
  local t = q.term.kind
  if t == "count" then return { kind = "count", n = #cands }
  elseif t == "exists" then return { kind = "bool", b = #cands > 0 }
  elseif t == "first" then
    return { kind = "first", id = cands[1] and cands[1].row.id or nil }
  elseif t == "pluck" then
    local vals = {}
    for i, c in ipairs(cands) do vals[i] = self:path_value(model, c.row, q.term.path, c.ctx) end
    return { kind = "values", values = vals, ordered = ordered }
  end
  local ids = {}
  for i, c in ipairs(cands) do ids[i] = c.row.id end
  return { kind = "ids", ids = ids, ordered = ordered }
end

--- The window limit / offset of q over the (ordered) list.
function O.slice(list, q)
  if not (q.limit or q.offset) then return list end
  local from = (q.offset or 0) + 1
  local to = q.limit and (from + q.limit - 1) or #list
  local sl = {}
  for i = from, math.min(to, #list) do sl[#sl + 1] = list[i] end
  return sl
end

--- The candidates of q before its steps: the model's rows, or the related
--- set of q.owner (each { row, ctx }).
function O:base(q)
  local model, cands = q.model, {}
  if q.owner then
    local om = q.owner.model
    local orow = assert(self:byid(om, q.owner.id), "oracle: owner not in the data")
    local rel = S.models[om].rels[q.owner.rel]
    if rel.kind == "thru" then
      local rows, piv = self:related(om, orow, q.owner.rel, true)
      for i, r in ipairs(rows) do
        cands[i] = { row = r, ctx = { pivot = piv[i], pivot_of = rel.via } }
      end
    else
      for i, r in ipairs(self:related(om, orow, q.owner.rel)) do cands[i] = { row = r } end
    end
  else
    for i, r in ipairs(self.inst.rows[model] or {}) do cands[i] = { row = r } end
  end
  return cands
end

O.NULLROW = NULLROW
O.and3, O.or3, O.tv = and3, or3, tv

--- Backend-defined ground (integer overflow, float overflow, division by
--- zero, ...): the oracle gives no answer and the case is skipped.
local UNSURE_MT = { __tostring = function(u) return "unsure: " .. u.reason end }
function O.unsure(reason) error(setmetatable({ reason = reason }, UNSURE_MT), 0) end
function O.is_unsure(e) return getmetatable(e) == UNSURE_MT end

require("test.difftest.aoracle")(O)
return O
