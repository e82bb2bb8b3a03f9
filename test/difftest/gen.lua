--[[
test/difftest/gen.lua
Random queries over the schema of test/difftest/schema.lua, as an AST that
render.lua writes as Lua source and oracle.lua evaluates.

  q     = { model, owner = nil | { model, id, rel }, steps = { step... },
            order = nil | { { path, desc }... }, limit, offset,
            term = { kind = "all"|"count"|"exists"|"first"|"pluck", path } }
  step  = { op = "filter"|"exclude", cond = C }
        | { op = "where_has"|"where_doesnt_have", rel = "a__b", cond = T | nil,
            fn = { step... } | nil }
  C     = T | { kind = "any", tables = { T... } }
  T     = { kind = "table", items = { leaf | any... } }
  leaf  = { kind = "leaf", key = "posts__title__contains", value = val }
  val   = scalar | V.NULL | { kind = "list", items = { val... } }
        | { kind = "rec", model, id }

Paths are random walks over every relation (to-one, to-many, m2m both
ways, self relations, reverse, through), biased so that several leaves of
one table share a to-many prefix (same-row groups).  Values come mostly
from the data (so conditions hit), else from the pools (mostly misses).
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")
local O = require("test.difftest.oracle")

local G = {}
local NULL = V.NULL
local random = math.random

local function pick(list) return list[random(#list)] end

local function weighted(list)   -- { {w, v}, ... }
  local total = 0
  for _, e in ipairs(list) do total = total + e[1] end
  local x = random() * total
  for _, e in ipairs(list) do
    x = x - e[1]
    if x <= 0 then return e[2] end
  end
  return list[#list][2]
end

G.pick, G.weighted = pick, weighted     -- shared with agen.lua

--- A generator over instance inst.
function G.new(inst)
  local self = setmetatable({ inst = inst, present = {}, nav = O.new(inst) },
                            { __index = G })
  return self
end

-- A witness: a row the conditions of one table are drawn to hold for
-- (same related rows for one to-many prefix), or nil.  rows / pivots: the
-- candidate rows (a related set) and their through rows.
function G:witness(model, rows, pivots)
  rows = rows or self.inst.rows[model] or {}
  if #rows == 0 or random() < 0.25 then return nil end
  local i = random(#rows)
  return { row = rows[i], pivot = pivots and pivots[i], bind = {} }
end

-- A value of col reached along hops from the witness (else from a random
-- row of model), choosing random related rows at to-many hops but the same
-- one for the same prefix; nil when the walk ends nowhere or at NULL.
function G:reached(model, hops, col, wit)
  local rows = self.inst.rows[model] or {}
  local cur, bind
  if wit then cur, bind = wit.row, wit.bind
  else
    if #rows == 0 then return nil end
    cur, bind = pick(rows), {}
  end
  local m, names = model, {}
  for i, h in ipairs(hops) do
    names[i] = h
    if h == "pivot" then
      if not (wit and wit.pivot) then return nil end
      cur, m = wit.pivot, "Enrolment"
    else
      local rel = S.models[m].rels[h]
      local p = table.concat(names, "__")
      if rel.many and bind[p] then
        cur = bind[p]
      else
        local nxt = self.nav:related(m, cur, h)
        if #nxt == 0 then return nil end
        cur = pick(nxt)
        if rel.many then bind[p] = cur end
      end
      m = rel.target
    end
  end
  local v = cur[col]
  if v == NULL or v == nil then return nil end
  return v
end

-- Non-NULL values of model.col present in the data (cached).
function G:values_of(model, col)
  local key = model .. "." .. col
  local p = self.present[key]
  if not p then
    p = {}
    for _, r in ipairs(self.inst.rows[model] or {}) do
      if r[col] ~= NULL and r[col] ~= nil then p[#p + 1] = r[col] end
    end
    self.present[key] = p
  end
  return p
end

local MISS_INT = { 0, -1, 999, 1000000, math.maxinteger, math.mininteger }

-- A value for column col (type ty) of model: present, pool, or a miss.
function G:scalar(model, col, ty)
  local present = self:values_of(model, col)
  local x = random()
  if #present > 0 and x < 0.65 then return pick(present) end
  if ty == "id" or col:match("_id$") and ty == "integer" then
    if #present > 0 and x < 0.8 then return pick(present) end
    return pick(MISS_INT)
  end
  if ty == "id" then return pick(MISS_INT) end
  local v
  if #present > 0 and x < 0.65 then v = pick(present) else v = pick(V.pool[ty]) end
  if ty == "decimal" then v = G.dec_form(v) end
  return v
end

--- A decimal box written in one of the forms Quay takes for a decimal
--- field: the canonical string, a shorter one ("0.1", "7"), an integer.
function G.dec_form(d)
  local c = d.c
  local y = random()
  if y < 0.5 then return V.dec(c) end
  if c % 100 == 0 and y < 0.75 then return V.dec(c, c // 100) end
  local s = V.dec_str(d)
  if c % 10 == 0 then s = s:sub(1, -2) end           -- "0.1", "7.0"
  if s:sub(-2) == ".0" and random() < 0.5 then s = s:sub(1, -3) end
  return V.dec(c, s)
end

-- A pattern for the text lookups: a piece of a present value, a wildcard,
-- "" or a pool string.  ASCII only for icontains.
function G:pattern(model, col, lookup)
  local s
  local x = random()
  local present = self:values_of(model, col)
  if #present > 0 and x < 0.6 then
    local subs = V.substrings(pick(present))
    if #subs > 0 then
      s = pick(subs)
      if lookup == "startswith" and random() < 0.5 then
        s = subs[random(math.min(#subs, 3))]
      end
    end
  end
  if not s then
    if x < 0.8 then s = pick { "%", "_", "\\", "'", "\"", "", "a", "b", "%a", "a_", "x%y", "é" }
    else s = pick(V.pool.string) end
  end
  if lookup == "icontains" then
    if not V.ascii(s) then s = pick { "a", "B", "%", "_", "Ab", "" } end
    s = s:gsub("%a", function(c) if random() < 0.5 then return c:upper() end return c:lower() end)
  end
  return s
end

local LOOKUPS_BY_TYPE = {
  id = { {18, "eq"}, {8, "ne"}, {3, "lt"}, {3, "lte"}, {3, "gt"}, {3, "gte"}, {8, "in"},
         {6, "not_in"}, {3, "between"} },
  integer = { {18, "eq"}, {8, "ne"}, {3, "lt"}, {3, "lte"}, {3, "gt"}, {3, "gte"}, {8, "in"},
              {6, "not_in"}, {8, "isnull"}, {4, "between"} },
  number = { {14, "eq"}, {8, "ne"}, {4, "lt"}, {3, "lte"}, {4, "gt"}, {3, "gte"}, {6, "in"},
             {5, "not_in"}, {8, "isnull"}, {4, "between"} },
  datetime = { {14, "eq"}, {6, "ne"}, {4, "lt"}, {3, "lte"}, {4, "gt"}, {3, "gte"}, {5, "in"},
               {4, "not_in"}, {8, "isnull"}, {4, "between"} },
  boolean = { {18, "eq"}, {8, "ne"}, {6, "in"}, {5, "not_in"}, {8, "isnull"}, {1, "lt"},
              {1, "gt"} },
  string = { {14, "eq"}, {7, "ne"}, {3, "lt"}, {3, "gte"}, {6, "in"}, {5, "not_in"},
             {8, "isnull"}, {6, "contains"}, {6, "icontains"}, {5, "startswith"},
             {5, "endswith"}, {2, "between"} },
}
-- (a uuid: equality and membership; docs/reference.md promises its order
-- for order_by and min / max only)
LOOKUPS_BY_TYPE.uuid = { {18, "eq"}, {8, "ne"}, {8, "in"}, {6, "not_in"}, {8, "isnull"} }
LOOKUPS_BY_TYPE.text = LOOKUPS_BY_TYPE.string
LOOKUPS_BY_TYPE.decimal = LOOKUPS_BY_TYPE.number
LOOKUPS_BY_TYPE.date = LOOKUPS_BY_TYPE.datetime
-- (json: G:json_leaf)

-- Scalars a JSON path lookup compares with: booleans and the numbers 0
-- and 1 among them (K18: SQLite's json_extract gives 1 / 0 for true /
-- false; fixed).
local function json_scalars() return V.JSON_SCALARS end

-- Keys and paths of a JSON document (objects only): { {k1, k2...}... }.
local function json_paths(doc, prefix, out)
  out = out or {}
  if type(doc) ~= "table" or doc == NULL or V.json_array(doc) then return out end
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local p = { table.unpack(prefix or {}) }
    p[#p + 1] = k
    out[#out + 1] = { path = p, value = doc[k] }
    if #p < 3 then json_paths(doc[k], p, out) end
  end
  return out
end

--- A leaf on a JSON field (path tail `field` after hops): a path lookup
--- data__k1__k2[__lookup] = v, or data[__k1]__has_key = "k".
function G:json_leaf(model, hops, field, wit)
  local doc = self:reached(model, hops, field, wit)
  if doc == nil then
    local m = model
    for _, h in ipairs(hops) do
      if h == "pivot" then m = "Enrolment" else m = S.models[m].rels[h].target end
    end
    local present = self:values_of(m, field)
    if #present > 0 then doc = pick(present) end
  end
  local paths = json_paths(doc)
  local path, hit
  if #paths > 0 and random() < 0.8 then
    local p = pick(paths)
    path, hit = p.path, p.value
  else
    path = {}
    for i = 1, pick { 1, 1, 2 } do path[i] = pick(V.JSON_KEYS) end
  end
  local tail = { field }
  if random() < 0.2 then
    -- has_key: the last key of the path, asked of the object above it
    for i = 1, #path - 1 do tail[#tail + 1] = path[i] end
    tail[#tail + 1] = "has_key"
    local k = random() < 0.8 and path[#path] or pick(V.JSON_KEYS)
    return { kind = "leaf", key = table.concat(hops, "__") .. (#hops > 0 and "__" or "")
             .. table.concat(tail, "__"), value = k }
  end
  for _, k in ipairs(path) do tail[#tail + 1] = k end
  local scalars = json_scalars()
  local function one()
    if hit ~= nil and hit ~= NULL and type(hit) ~= "table" and random() < 0.6 then
      return hit
    end
    return pick(scalars)
  end
  local lk = weighted { {12, "eq"}, {5, "ne"}, {4, "in"}, {3, "not_in"}, {4, "isnull"},
                        {2, "lt"}, {2, "lte"}, {2, "gt"}, {2, "gte"}, {2, "between"} }
  local v
  if lk == "isnull" then v = random() < 0.5
  elseif lk == "between" then
    local a, b = one(), one()
    if random() < 0.7 then       -- mostly bounds of one kind, ordered
      while type(b) ~= type(a) do b = pick(scalars) end
      if type(a) == "boolean" then
        if a and not b then a, b = b, a end
      elseif a > b then a, b = b, a end
    end
    v = { kind = "list", items = { a, b } }
  elseif lk == "lt" or lk == "lte" or lk == "gt" or lk == "gte" then
    v = one()
  elseif lk == "in" or lk == "not_in" then
    local items = {}
    for i = 1, pick { 0, 1, 2, 2, 3 } do items[i] = random() < 0.08 and NULL or one() end
    v = { kind = "list", items = items }
  else
    v = random() < 0.12 and NULL or one()
  end
  if lk ~= "eq" then tail[#tail + 1] = lk end
  return { kind = "leaf", key = table.concat(hops, "__") .. (#hops > 0 and "__" or "")
           .. table.concat(tail, "__"), value = v }
end

-- The value of a leaf with lookup lk on model.col of type ty.
function G:value(model, col, ty, lk)
  if lk == "isnull" then return random() < 0.5 end
  if lk == "contains" or lk == "icontains" or lk == "startswith" or lk == "endswith" then
    return self:pattern(model, col, lk)
  end
  if lk == "in" or lk == "not_in" then
    local items = {}
    for i = 1, pick { 0, 1, 1, 2, 2, 3, 4 } do
      items[i] = random() < 0.1 and NULL or self:scalar(model, col, ty)
    end
    return { kind = "list", items = items }
  end
  if lk == "between" then
    local a, b = self:scalar(model, col, ty), self:scalar(model, col, ty)
    if random() < 0.75 and V.cmp(a, b) > 0 then a, b = b, a end
    return { kind = "list", items = { a, b } }
  end
  if (lk == "eq" or lk == "ne") and random() < 0.08 then return NULL end
  return self:scalar(model, col, ty)
end

-- A random relation path of n hops from model (list of relation names),
-- and the model it reaches.  prefer_many biases towards to-many hops.
function G:walk(model, n, prefer_many)
  local hops, m = {}, model
  for _ = 1, n do
    local names = S.models[m].rel_names
    if #names == 0 then break end
    local name = pick(names)
    if prefer_many and not S.models[m].rels[name].many and random() < 0.6 then
      name = pick(names)
    end
    hops[#hops + 1] = name
    m = S.models[m].rels[name].target
  end
  return hops, m
end

-- The model reached from model along hops.
local function target_of(model, hops)
  local m = model
  for _, h in ipairs(hops) do
    if h == "pivot" then m = "Enrolment" else m = S.models[m].rels[h].target end
  end
  return m
end

local function key_of(hops, tail)
  local parts = {}
  for i, h in ipairs(hops) do parts[i] = h end
  for _, t in ipairs(tail) do parts[#parts + 1] = t end
  return table.concat(parts, "__")
end

-- A leaf on model, extending anchor (a list of hops) when given.  ctx.pivot
-- allows a "pivot" first hop (related sets of a through many_to_many).
function G:leaf(model, anchor, ctx)
  local hops = {}
  for i, h in ipairs(anchor or {}) do hops[i] = h end
  if #hops == 0 and ctx and ctx.pivot and random() < 0.25 then
    hops[1] = "pivot"
  else
    local depth_p = { 0.45, 0.3, 0.15 }
    while #hops < 3 and random() < (depth_p[#hops + 1] or 0) do
      local m = target_of(model, hops)
      local extra = self:walk(m, 1)
      if #extra == 0 then break end
      hops[#hops + 1] = extra[1]
    end
  end
  local m = target_of(model, hops)
  local md = S.models[m]
  if #hops > 0 and hops[#hops] ~= "pivot" and random() < 0.3 then
    -- a path ending at the relation itself
    local parent = target_of(model, { table.unpack(hops, 1, #hops - 1) })
    local rel = S.models[parent].rels[hops[#hops]]
    local x = random()
    if x < 0.2 then
      return { kind = "leaf", key = key_of(hops, { "isnull" }), value = random() < 0.5 }
    elseif x < 0.3 then
      return { kind = "leaf", key = key_of(hops, { "id", "isnull" }), value = random() < 0.5 }
    elseif x < 0.4 then
      return { kind = "leaf", key = key_of(hops, random() < 0.5 and {} or { "ne" }), value = NULL }
    end
    local keyty = S.models[rel.target].field_by[rel.key].type
    local lk = weighted { {10, "eq"}, {5, "ne"}, {5, "in"}, {3, "not_in"},
                          {keyty == "uuid" and 0 or 1, "lt"}, {keyty == "uuid" and 0 or 1, "gte"} }
    local function one()
      local k
      if random() < 0.6 then k = self:reached(model, hops, rel.key, ctx and ctx.wit) end
      k = k or self:scalar(rel.target, rel.key, keyty)
      if lk ~= "lt" and lk ~= "gte" and random() < 0.3 then
        local r = self.nav:where(rel.target, rel.key, k)[1]
        if r then return { kind = "rec", model = rel.target, id = r.id } end
      end
      return k
    end
    local v
    if lk == "in" or lk == "not_in" then
      local items = {}
      for i = 1, pick { 0, 1, 2, 2, 3 } do items[i] = random() < 0.08 and NULL or one() end
      v = { kind = "list", items = items }
    else
      v = one()
    end
    return { kind = "leaf", key = key_of(hops, lk == "eq" and {} or { lk }), value = v }
  end
  local fd = pick(md.fields)
  if md.field_by.meta and random() < 0.3 then
    -- the part-two types more often (one field among many otherwise)
    fd = md.field_by[pick { "price", "due", "meta", "meta" }]
  end
  if fd.type == "json" then return self:json_leaf(model, hops, fd.name, ctx and ctx.wit) end
  if (fd.type == "date" or fd.type == "datetime") and random() < 0.3 then
    return self:part_leaf(model, hops, fd.name, ctx and ctx.wit)
  end
  local lk = weighted(LOOKUPS_BY_TYPE[fd.type])
  local tail = { fd.name }
  if lk ~= "eq" or random() < 0.05 then tail[2] = lk end
  local v = self:value(m, fd.name, fd.type, lk)
  local wit = ctx and ctx.wit
  if lk == "isnull" and wit and random() < 0.6 then
    -- hold for the witness (a walk that ends nowhere reads NULL too)
    v = self:reached(model, hops, fd.name, wit) == nil
  elseif lk ~= "isnull" and random() < (wit and 0.85 or 0.4) then
    local hit = self:reached(model, hops, fd.name, wit)
    if hit ~= nil then
      if lk == "in" or lk == "not_in" then table.insert(v.items, hit)
      elseif lk == "between" then
        v.items = V.cmp(v.items[1], hit) <= 0 and { v.items[1], hit } or { hit, v.items[1] }
      elseif lk == "contains" or lk == "icontains" or lk == "startswith" or lk == "endswith" then
        local cps = {}
        for _, c in utf8.codes(hit) do cps[#cps + 1] = utf8.char(c) end
        if #cps > 0 then
          local i, j = random(#cps), random(#cps)
          if i > j then i, j = j, i end
          if lk == "startswith" then i = 1 elseif lk == "endswith" then j = #cps end
          v = table.concat(cps, "", i, j)
          if lk == "icontains" then
            if not V.ascii(v) then v = "" end
            v = v:gsub("%a", function(c) return random() < 0.5 and c:upper() or c:lower() end)
          end
        end
      else v = hit end
    end
  end
  return { kind = "leaf", key = key_of(hops, tail), value = v }
end

-- Integers a date part is compared with (hits and misses).
local PART_POOL = { year = { 1, 1970, 1999, 2000, 2020, 2024, 2038, 9999, 0, -1 },
                    month = { 1, 2, 6, 12, 0, 13 }, day = { 1, 15, 29, 31, 19, 0 } }

--- A date part leaf (docs/reference.md "Date parts": __year, __month,
--- __day compare integers) on field col of a date or datetime, reached
--- along hops from model.
function G:part_leaf(model, hops, col, wit)
  local part = pick { "year", "month", "day" }
  local lk = weighted { {14, "eq"}, {6, "ne"}, {3, "lt"}, {3, "lte"}, {3, "gt"}, {3, "gte"},
                        {5, "in"}, {4, "not_in"}, {3, "between"} }
  local function one()
    if random() < 0.5 then
      local hit = self:reached(model, hops, col, wit)
      if hit ~= nil then return O.date_part(hit, part) end
    end
    return pick(PART_POOL[part])
  end
  local v
  if lk == "in" or lk == "not_in" then
    local items = {}
    for i = 1, pick { 0, 1, 2, 2, 3 } do items[i] = one() end
    v = { kind = "list", items = items }
  elseif lk == "between" then
    local a, b = one(), one()
    if a > b and random() < 0.8 then a, b = b, a end
    v = { kind = "list", items = { a, b } }
  else
    v = one()
  end
  local tail = { col, part }
  if lk ~= "eq" or random() < 0.05 then tail[3] = lk end
  return { kind = "leaf", key = key_of(hops, tail), value = v }
end

-- Anchors: relation prefixes that several leaves of one table extend.
function G:anchors(model)
  local out = {}
  for i = 1, pick { 1, 1, 2 } do
    out[i] = self:walk(model, pick { 1, 1, 1, 2 }, true)
  end
  return out
end

--- A conditions table on model (depth: nesting level inside quay.any).
function G:table(model, depth, anchors, ctx)
  depth = depth or 0
  anchors = anchors or self:anchors(model)
  local items, keys = {}, {}
  local n = depth == 0 and pick { 1, 1, 1, 2, 2, 3, 4 } or pick { 1, 1, 2 }
  for _ = 1, n do
    local lf = self:leaf(model, random() < 0.55 and pick(anchors) or nil, ctx)
    if not keys[lf.key] then keys[lf.key] = true; items[#items + 1] = lf end
  end
  if depth < 2 and random() < (depth == 0 and 0.3 or 0.12) then
    items[#items + 1] = self:any(model, depth + 1, anchors, ctx)
  end
  return { kind = "table", items = items }
end

function G:any(model, depth, anchors, ctx)
  local tables = {}
  for i = 1, pick { 1, 2, 2, 2, 3 } do tables[i] = self:table(model, depth, anchors, ctx) end
  return { kind = "any", tables = tables }
end

-- A to-one path to a field (order_by, pluck).
function G:to_one_path(model, ctx)
  if ctx and ctx.pivot and random() < 0.3 then
    return "pivot__" .. pick { "grade", "term", "id" }
  end
  local hops, m = {}, model
  while #hops < 2 and random() < 0.35 do
    local ones = {}
    for _, name in ipairs(S.models[m].rel_names) do
      if not S.models[m].rels[name].many then ones[#ones + 1] = name end
    end
    if #ones == 0 then break end
    local name = pick(ones)
    hops[#hops + 1] = name
    m = S.models[m].rels[name].target
  end
  local fd
  repeat fd = pick(S.models[m].fields) until fd.type ~= "json"   -- JSON has no order
  return key_of(hops, { fd.name })
end

-- Steps of a query on model: filter / exclude / where_has chains.
function G:steps(model, ctx, nested, rows, pivots)
  local steps = {}
  for i = 1, nested and pick { 1, 1, 2 } or pick { 0, 1, 1, 1, 1, 2, 2, 3 } do
    local op = weighted { {60, "filter"}, {25, "exclude"}, {10, "where_has"},
                          {5, "where_doesnt_have"} }
    if (nested or #S.models[model].rel_names == 0) and op:match("^where") then op = "filter" end
    if op == "filter" or op == "exclude" then
      local cond
      local c = { pivot = ctx and ctx.pivot, wit = self:witness(model, rows, pivots) }
      if random() < 0.1 then cond = self:any(model, 1, self:anchors(model), c)
      else cond = self:table(model, 0, nil, c) end
      steps[i] = { op = op, cond = cond }
    else
      local hops, target = self:walk(model, pick { 1, 1, 1, 2 })
      local st = { op = op, rel = table.concat(hops, "__") }
      local x = random()
      if x < 0.5 then st.cond = self:table(target, 0, nil, { wit = self:witness(target) })
      elseif x < 0.75 then st.fn = self:steps(target, nil, true) end
      steps[i] = st
    end
  end
  return steps
end

--- A random query.
function G:query()
  local models = { "User", "User", "User", "Post", "Post", "Post", "Comment", "Tag",
                   "Profile", "Student", "Course", "Enrolment", "Shop" }
  local q = { steps = {} }
  local ctx, rows, pivots
  if random() < 0.15 then
    -- a related set of a random owner
    local om
    local many = {}
    repeat
      om = pick(models)
      many = {}
      for _, name in ipairs(S.models[om].rel_names) do
        if S.models[om].rels[name].many then many[#many + 1] = name end
      end
    until #many > 0 and #(self.inst.rows[om] or {}) > 0
    local rel = pick(many)
    local orow = pick(self.inst.rows[om])
    for _ = 1, 5 do           -- mostly an owner with related rows
      if #self.nav:related(om, orow, rel) > 0 then break end
      orow = pick(self.inst.rows[om])
    end
    q.owner = { model = om, id = orow.id, rel = rel }
    q.model = S.models[om].rels[rel].target
    local thru = S.models[om].rels[rel].kind == "thru"
    if thru then ctx = { pivot = true } end
    rows, pivots = self.nav:related(om, orow, rel, thru)
  else
    q.model = pick(models)
  end
  q.steps = self:steps(q.model, ctx, false, rows, pivots)
  if random() < 0.35 then
    q.order = {}
    for i = 1, pick { 1, 1, 2 } do
      q.order[i] = { path = self:to_one_path(q.model, ctx), desc = random() < 0.5 }
    end
    if random() < 0.5 then q.limit = random(0, 6) end
    if random() < 0.3 then q.offset = random(0, 4) end
  end
  q.term = { kind = weighted { {45, "all"}, {20, "count"}, {10, "exists"}, {10, "first"},
                               {15, "pluck"} } }
  if q.term.kind == "pluck" then q.term.path = self:to_one_path(q.model, ctx) end
  return q
end

--- A query that the contract says raises bad_lookup.
function G:bad_query()
  local cases = {
    { "User", { age__contains = "1" } },
    { "Post", { views__startswith = "1" } },
    { "User", { joined__icontains = "2020" } },
    { "Post", { author__age__between = { kind = "list", items = { 1 } } } },
    { "Post", { views__between = { kind = "list", items = { 1, 2, 3 } } } },
    { "User", { name__in = "a" } },
    { "User", { posts__views__not_in = 3 } },
    { "User", { age__lt = NULL } },
    { "Post", { title__foo = "x" } },
    { "Comment", { post__title__gte = NULL } },
  }
  local c = pick(cases)
  local items = {}
  for k, v in pairs(c[2]) do items[#items + 1] = { kind = "leaf", key = k, value = v } end
  table.sort(items, function(a, b) return a.key < b.key end)
  return { model = c[1], steps = { { op = pick { "filter", "exclude" },
           cond = { kind = "table", items = items } } }, term = { kind = "count" },
           bad = true }
end

return G
