--[[
test/difftest/agen.lua
Random queries of the read path past conditions, on top of gen.lua's
conditions: annotate with aggregates (count / sum / avg / min / max /
exists over own fields, to-one and to-many paths, many_to_many and
through, with filter / distinct / default) used in filter, exclude,
order_by, values and pluck; aggregate(); values():annotate() groups with
their own filters and order; quay.F comparisons and arithmetic; qs:update
with expressions.  The AST extends gen.lua's (q.ext names the kind):

  q     = { ext = "annotate"|"grouped"|"aggregate"|"fexpr"|"update",
            model, owner, steps,                    -- as gen.lua
            ann = { { name, e, call = 1|2 }... },   -- annotate calls
            post = { step... },                     -- filter/exclude after it
            vals = { path... }, grouped = bool,     -- values(...) (grouped:
            distinct = bool,                        --   before annotate)
            order, limit, offset,
            term = { kind = "all"|"count"|"exists"|"first"|"pluck"
                     |"aggregate"|"update", path, aggs = { {name, e}... },
                     set = { {col, value}... } },
            also = { term... } }                    -- more terminals, same set
  e     = { kind = "agg", fn, path, filter = T, distinct, default }
        | { kind = "col", path } | { kind = "num", v }
        | { kind = "op", op = "+"|"-"|"*"|"/", a = e, b = e }
  leaf values may be { kind = "expr", e = e } (quay.F comparisons).

Constructs Quay gets wrong today (known.lua, those listed in AG:known;
none at present: K1..K17 are fixed and drawn again) are steered clear of
while generating and any query
still running into one is drawn again (AG:known), unless opts.known allows
them (true: all; a set { K3 = true }: those).  About one in eight annotate / grouped / aggregate cases is plain
(plain_query: no conditions, aggregates with no options over own fields
and one hop), the shapes sqlcheck.lua also writes as SQL.
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")
local G = require("test.difftest.gen")
local O = require("test.difftest.oracle")

local AG = {}
AG.__index = AG

local NULL = V.NULL

local O_split = O.split                 -- "a__b" -> { "a", "b" }
local random = math.random
local pick, weighted = G.pick, G.weighted

-- Does the order name every column?
local function covers(order, cols)
  local on = {}
  for _, t in ipairs(order or {}) do on[t.path] = true end
  for _, c in ipairs(cols) do if not on[c] then return false end end
  return true
end

AG.KINDS = { "annotate", "grouped", "aggregate", "fexpr", "update" }
AG.WEIGHTS = { annotate = 30, grouped = 20, aggregate = 15, fexpr = 15, update = 20 }

-- Comparable classes of field types (quay.F comparisons, arithmetic; a
-- uuid with eq and ne only, and in min / max).
local CLASS = { id = "num", integer = "num", number = "num", string = "text", text = "text",
                datetime = "dt", boolean = "bool", decimal = "dec", date = "date", uuid = "uuid" }
-- (decimals are a class of their own: their arithmetic is drawn by
-- AG:fexpr(model, "dec") only, exact; a JSON field is no operand at all)

-- Fields but JSON ones (which have no order and no distinct).
local function nonjson(fields)
  local out = {}
  for _, fd in ipairs(fields) do if fd.type ~= "json" then out[#out + 1] = fd end end
  return out
end
AG.CLASS = CLASS

-- Numeric columns an update may set.
local UPDATABLE = {
  User = { "age", "score" }, Post = { "views", "rating" }, Comment = { "likes" },
  Tag = { "weight" }, Profile = { "level" }, Course = { "credits" }, Enrolment = { "grade" },
}
UPDATABLE.Post[#UPDATABLE.Post + 1] = "price"
local MODELS = { "User", "User", "Post", "Post", "Post", "Comment", "Tag", "Profile",
                 "Student", "Course", "Enrolment" }

--- A generator of the new kinds over gen.lua's generator g (one instance).
function AG.new(g, opts)
  return setmetatable({ g = g, inst = g.inst, nav = g.nav, opts = opts or {} }, AG)
end

local function target_of(model, hops)
  local m = model
  for _, h in ipairs(hops) do m = S.models[m].rels[h].target end
  return m
end

local function key_of(hops, tail)
  local parts = {}
  for i, h in ipairs(hops) do parts[i] = h end
  for _, t in ipairs(tail) do parts[#parts + 1] = t end
  return table.concat(parts, "__")
end

-- Rows of a through relation (the pivot model, the column naming us): for
-- telling whether two relations can reach the same rows by other names.
local function family(model, name)
  local rel = S.models[model].rels[name]
  if rel.kind == "path" then return family(model, rel.path[1]) end
  if rel.kind == "thru" then return "rev:" .. rel.via .. "." .. rel.mine end
  if rel.kind == "rev" then return "rev:" .. rel.target .. "." .. rel.column end
  if rel.kind == "m2m" then return "m2m:" .. rel.join .. (rel.flip and ":2" or ":1") end
  return "fk:" .. model .. "." .. rel.column
end

-- A to-one walk of 0..max hops from model.
function AG:one_walk(model, max)
  local hops, m = {}, model
  while #hops < max do
    local ones = {}
    for _, name in ipairs(S.models[m].rel_names) do
      if not S.models[m].rels[name].many then ones[#ones + 1] = name end
    end
    if #ones == 0 then break end
    local name = pick(ones)
    hops[#hops + 1] = name
    m = S.models[m].rels[name].target
  end
  return hops, m
end

-- A to-one path from model to a field whose type passes ok(type), or nil.
-- avoid(model): a model the path may not reach (update's self reference).
function AG:one_field(model, ok, avoid)
  for _ = 1, 8 do
    local hops, m = self:one_walk(model, weighted { {5, 0}, {4, 1}, {1, 2} })
    local bad = false
    if avoid then
      local x = model
      for _, h in ipairs(hops) do
        x = S.models[x].rels[h].target
        if x == avoid then bad = true end
      end
    end
    if not bad then
      local cands = {}
      for _, fd in ipairs(S.models[m].fields) do
        if ok(fd.type, fd) then cands[#cands + 1] = fd end
      end
      if #cands > 0 then
        local fd = pick(cands)
        return key_of(hops, { fd.name }), fd
      end
    end
  end
  return nil
end

----------------------------------------------------------------------------
-- Aggregates

-- Drop the leaves of an aggregate filter that reach rows of the
-- aggregate's path under another relation's name (a through relation and
-- the relation it starts with): which rows those share is not settled.
local function sanitize(model, t, hops)
  local items = {}
  for _, it in ipairs(t.items) do
    if it.kind == "leaf" then
      local segs = {}
      for s in (it.key .. "__"):gmatch("(.-)__") do segs[#segs + 1] = s end
      local ok, m = true, model
      for i, s in ipairs(segs) do
        local rel = S.models[m].rels[s]
        if not rel then break end
        if hops[i] == nil then break end
        if s ~= hops[i] then
          if family(m, s) == family(m, hops[i]) then ok = false end
          break
        end
        m = rel.target
      end
      if ok then items[#items + 1] = it end
    else
      local tables = {}
      for _, sub in ipairs(it.tables) do
        local st = sanitize(model, sub, hops)
        if st then tables[#tables + 1] = st end
      end
      if #tables > 0 then items[#items + 1] = { kind = "any", tables = tables } end
    end
  end
  if #items == 0 then return nil end
  return { kind = "table", items = items }
end

-- A filter for an aggregate over hops from model.
function AG:agg_filter(model, hops)
  local anchors = {}
  for i = 1, #hops do anchors[#anchors + 1] = { table.unpack(hops, 1, i) } end
  anchors[#anchors + 1] = hops
  if #hops == 0 then anchors = self.g:anchors(model) end
  local t = self.g:table(model, 0, anchors, { wit = self.g:witness(model) })
  return sanitize(model, t, hops)
end

local DEFAULTS = { integer = { 0, -1, 7 }, id = { 0, -1 }, number = { 0.5, -2.25 },
                   decimal = { V.dec(0), V.dec(-150), V.dec(500) }, date = { "2000-01-01" },
                   string = { "zz", "" }, text = { "zz" },
                   datetime = { "2000-01-01 00:00:00" }, boolean = { false } }

--- A random aggregate on model.  where: "ann" (annotate on records) or
--- "group" (a values() group, aggregate()).  want: nil, "exact" (no float
--- sum or average: usable in filters and order_by) or "int" (an integer,
--- for arithmetic).  Returns the expression and its type name.
function AG:agg(model, where, want)
  for _ = 1, 12 do
    local fn
    if want == "int" then fn = weighted { {6, "count"}, {2, "sum"}, {1, "min"}, {1, "max"} }
    else
      fn = weighted { {35, "count"}, {20, "sum"}, {15, "avg"}, {12, "min"}, {12, "max"},
                      {6, "exists"} }
      if want == "exact" and fn == "avg" then fn = "count" end
    end
    local x = random()
    local hops
    if x < 0.6 then hops = self.g:walk(model, pick { 1, 1, 2 }, true)
    elseif x < 0.8 then hops = self:one_walk(model, pick { 1, 2 })
    else hops = {} end
    local many = false
    for i, h in ipairs(hops) do
      if S.models[target_of(model, { table.unpack(hops, 1, i - 1) })].rels[h].many then many = true end
    end
    if fn == "exists" and #hops == 0 then goto retry end
    do
      local tm = target_of(model, hops)
      local field, ty
      if fn == "count" then
        if #hops == 0 then
          if where == "ann" or random() < 0.5 then field = pick(nonjson(S.models[tm].fields)) end
        elseif random() < 0.5 then
          field = pick(nonjson(S.models[tm].fields))
        end
        ty = "integer"
      elseif fn == "exists" then
        ty = "boolean"
      else
        local ok = {}
        for _, fd in ipairs(S.models[tm].fields) do
          local c = CLASS[fd.type]
          local good
          if fn == "sum" or fn == "avg" then good = c == "num" or c == "dec"
          else
            good = c ~= nil
          end
          if want == "int" then good = good and (fd.type == "integer" or fd.type == "id") end
          if want == "exact" and fn == "sum" then good = good and fd.type ~= "number" end
          if good then ok[#ok + 1] = fd end
        end
        if #ok == 0 then goto retry end
        field = pick(ok)
        local two = {}             -- the part-two types more often
        for _, fd in ipairs(ok) do
          if fd.type == "decimal" or fd.type == "date" then two[#two + 1] = fd end
        end
        if #two > 0 and random() < 0.5 then field = pick(two) end
        ty = field.type == "id" and "integer" or field.type
        if fn == "avg" then ty = "number" end
      end
      if #hops == 0 and not field and where == "ann" then goto retry end
      local e = { kind = "agg", fn = fn }
      if #hops > 0 or field then e.path = key_of(hops, field and { field.name } or {}) end
      if fn ~= "exists" and random() < 0.2 then e.distinct = true end
      if random() < 0.3 then e.filter = self:agg_filter(model, hops) end
      if (fn == "sum" or fn == "avg" or fn == "min" or fn == "max") and random() < 0.15 then
        local d = fn == "avg" and { 0.5, 0.0 } or DEFAULTS[field.type]
        if d then e.default = pick(d) end
      end
      if where == "group" and not many and not self.group_mode then
        local rel = {}
        for i, h in ipairs(hops) do rel[i] = h end
        self.group_mode = #rel > 0 and rel or "own"
      end
      return e, ty
    end
    ::retry::
  end
  return { kind = "agg", fn = "count", path = S.models[model].rel_names[1] }, "integer"
end

-- A numeric constant for arithmetic (integers mostly).
local function const(int_only)
  if int_only or random() < 0.85 then
    return { kind = "num", v = pick { 0, 1, 2, 3, -1, 10, 100, -7 } }
  end
  return { kind = "num", v = pick { 0.5, 1.5, -2.25, 0.1 } }
end

-- An arithmetic node over a and b (never two constants).
local function op(a, b, ops)
  return { kind = "op", op = pick(ops or { "+", "-", "*" }), a = a, b = b }
end

--- A quay.F expression of class cls ("num", "text", "dt", "bool") over
--- to-one paths of model; int: integers only; avoid: see one_field.
function AG:fexpr(model, cls, int, avoid)
  if cls == "dec" then return self:dec_expr(model, avoid) end
  local function ok(ty)
    if CLASS[ty] ~= cls then return false end
    if int and cls == "num" then return ty == "integer" or ty == "id" end
    return true
  end
  local p = self:one_field(model, ok, avoid)
  if not p then return nil end
  local e = { kind = "col", path = p }
  if cls ~= "num" then return e end
  local x = random()
  if x < 0.45 then return e end
  if x < 0.8 then
    local c = const(int)
    if random() < 0.3 then return op(c, e) end
    if random() < 0.05 then
      c.v = c.v == 0 and 2 or c.v
      return op(e, c, { "/" })
    end
    return op(e, c)
  end
  local p2 = self:one_field(model, ok, avoid)
  if not p2 then return e end
  local e2 = op(e, { kind = "col", path = p2 })
  if random() < 0.4 then e2 = op(e2, const(int)) end
  return e2
end

--- A decimal expression over to-one paths of model: a decimal column,
--- plus or minus an integer, a decimal or an integer column, times an
--- integer, or times a decimal column (four places; docs/reference.md
--- "Decimals are exact"), and that plus a decimal column or times an
--- integer (the exact decimal arithmetic; kept out: division, floats).
function AG:dec_expr(model, avoid)
  local p = self:one_field(model, function(ty) return ty == "decimal" end, avoid)
  if not p then return nil end
  local e = { kind = "col", path = p }
  local x = random()
  if x < 0.3 then return e end
  if x >= 0.8 then
    -- a decimal times a decimal (the same column or another), sometimes
    -- with a term of two places or a factor
    local p2 = self:one_field(model, function(ty) return ty == "decimal" end, avoid)
    local e2 = op(e, { kind = "col", path = p2 or p }, { "*" })
    local y = random()
    if y < 0.25 then
      e2 = op(e2, { kind = "col", path = p }, { "+", "-" })
    elseif y < 0.45 then
      e2 = op(e2, const(true))
    end
    return e2
  end
  if x < 0.6 then
    local c = const(true)
    if random() < 0.3 then return op(c, e) end
    return op(e, c)
  end
  local p2 = self:one_field(model, function(ty) return ty == "decimal" or ty == "integer" end, avoid)
  if not p2 then return e end
  local e2 = op(e, { kind = "col", path = p2 }, { "+", "-" })
  if random() < 0.5 then e2 = { kind = "op", op = "+", a = e2, b = const(true) } end
  return e2
end

----------------------------------------------------------------------------
-- Annotations and what uses them

-- An annotation expression on model (records): an aggregate, or arithmetic
-- over aggregates, columns and numbers.  Returns e, type, exact.
function AG:ann_expr(model, want)
  local x = random()
  if x < 0.75 then
    local e, ty = self:agg(model, "ann", want)
    local exact = not (ty == "number" and (e.fn == "sum" or e.fn == "avg"))
    return e, ty, exact
  end
  -- arithmetic: an integer aggregate with a column or a number
  local a = self:agg(model, "ann", "int")
  local b
  if random() < 0.5 then b = self:fexpr(model, "num", want == "int") end
  b = b or const(true)
  local e = random() < 0.5 and op(a, b) or op(b, a)
  return e, AG.expr_type(model, e), true
end

--- "integer" or "number": the type of an arithmetic expression of
--- integer aggregates, columns and numbers on model.
function AG.expr_type(model, e)
  local int, dec = true, false
  local function scan(n)
    if n.kind == "num" and math.type(n.v) == "float" then int = false end
    if n.kind == "col" then
      local segs = O_split(n.path)
      local m = model
      for i = 1, #segs - 1 do m = S.models[m].rels[segs[i]].target end
      local fd = S.models[m].field_by[segs[#segs]]
      if fd and fd.type == "number" then int = false end
      if fd and fd.type == "decimal" then dec = true end
    end
    if n.kind == "op" then scan(n.a); scan(n.b) end
  end
  scan(e)
  if dec then return "decimal" end
  return int and "integer" or "number"
end

-- Values of the annotations over the set's rows (for filter thresholds);
-- { name = { value... } }, or nil when the oracle is unsure.
function AG:sample(q)
  local ok, res = pcall(function()
    local cands = self.nav:apply_steps(q.model, self.nav:base(q), q.steps)
    local out = {}
    if q.grouped then
      local qq = {}
      for k, v in pairs(q) do qq[k] = v end
      qq.post, qq.order, qq.limit, qq.offset = nil, nil, nil, nil
      qq.term = { kind = "all" }
      local r = self.nav:grouped(qq, cands)
      for _, row in ipairs(r.rows) do
        for k, v in pairs(row) do
          out[k] = out[k] or {}
          table.insert(out[k], v)
        end
      end
      return out
    end
    self.nav:annotate(q.model, cands, q.ann)
    for _, c in ipairs(cands) do
      for k, v in pairs(c.ctx.ann) do
        out[k] = out[k] or {}
        table.insert(out[k], v)
      end
    end
    return out
  end)
  if ok then return res end
  return nil
end

-- A leaf on the value of column name (type ty) with values drawn from
-- present (a list, may hold NULL).
local function value_leaf(name, ty, present)
  local cls = CLASS[ty] or (ty == "integer" and "num")
  local lk
  if ty == "boolean" then lk = weighted { {5, "eq"}, {2, "ne"}, {2, "isnull"} }
  elseif ty == "uuid" then lk = weighted { {6, "eq"}, {3, "ne"}, {3, "in"}, {2, "not_in"}, {2, "isnull"} }
  else
    lk = weighted { {6, "eq"}, {3, "ne"}, {3, "lt"}, {2, "lte"}, {4, "gt"}, {4, "gte"},
                    {3, "in"}, {2, "not_in"}, {2, "isnull"}, {2, "between"} }
  end
  local nonnull = {}
  for _, v in ipairs(present or {}) do
    if v ~= NULL and not V.is_approx(v) then nonnull[#nonnull + 1] = v end
  end
  local function one()
    if #nonnull > 0 and random() < 0.75 then return pick(nonnull) end
    if ty == "decimal" then return G.dec_form(pick(V.pool.decimal))
    elseif ty == "date" then return pick(V.pool.date)
    elseif cls == "num" then
      if ty == "number" then return pick { 0.0, 0.5, 1.5, -1.0 } end
      return pick { 0, 1, 2, 3, -1, 5 }
    elseif ty == "boolean" then return random() < 0.5
    elseif ty == "datetime" then return pick(V.pool.datetime)
    elseif ty == "uuid" then return pick(V.pool.uuid)
    else return pick { "", "a", "b", "zz" } end
  end
  local v
  if lk == "isnull" then v = random() < 0.5
  elseif lk == "in" or lk == "not_in" then
    local items = {}
    for i = 1, pick { 0, 1, 2, 2, 3 } do items[i] = random() < 0.08 and NULL or one() end
    v = { kind = "list", items = items }
  elseif lk == "between" then
    local a, b = one(), one()
    if V.cmp(a, b) > 0 then a, b = b, a end
    v = { kind = "list", items = { a, b } }
  else
    v = one()
    if (lk == "eq" or lk == "ne") and random() < 0.05 then v = NULL end
  end
  return { kind = "leaf", key = lk == "eq" and name or (name .. "__" .. lk), value = v }
end

-- filter / exclude steps after annotate: leaves on the exact annotations
-- (cols: { name = type }), with other leaves (records) when model.
function AG:post(cols, samples, model)
  local names = {}
  for n in pairs(cols) do names[#names + 1] = n end
  table.sort(names)
  if #names == 0 then return nil end
  local steps = {}
  for i = 1, pick { 1, 1, 2 } do
    local items = {}
    local used = {}
    for _ = 1, pick { 1, 1, 2 } do
      local n = pick(names)
      if not used[n] then
        used[n] = true
        items[#items + 1] = value_leaf(n, cols[n], samples and samples[n])
      end
    end
    if model and random() < 0.35 then
      local lf = self.g:leaf(model, nil, nil)
      items[#items + 1] = lf
    end
    local cond = { kind = "table", items = items }
    if random() < 0.2 then
      local n = pick(names)
      local alt = { kind = "table", items = { value_leaf(n, cols[n], samples and samples[n]) } }
      cond = { kind = "any", tables = { cond, alt } }
    end
    steps[i] = { op = random() < 0.75 and "filter" or "exclude", cond = cond }
  end
  return steps
end

----------------------------------------------------------------------------
-- Kinds

-- The base of a query on a random model: model, steps (and sometimes an
-- owner's related set when owner_ok).
function AG:base(owner_ok)
  local q = { steps = {} }
  if owner_ok and random() < 0.12 then
    for _ = 1, 10 do
      local om = pick(MODELS)
      local rows = self.inst.rows[om] or {}
      local many = {}
      for _, name in ipairs(S.models[om].rel_names) do
        local r = S.models[om].rels[name]
        if r.many and r.kind ~= "thru" then many[#many + 1] = name end
      end
      if #many > 0 and #rows > 0 then
        local rel = pick(many)
        q.owner = { model = om, id = pick(rows).id, rel = rel }
        q.model = S.models[om].rels[rel].target
        break
      end
    end
  end
  q.model = q.model or pick(MODELS)
  if random() < 0.7 then q.steps = self.g:steps(q.model) end
  return q
end

-- Order terms over names (exact columns) and, for records, to-one paths.
function AG:order_terms(model, names)
  local order = {}
  for i = 1, pick { 1, 1, 2, 2, 3 } do
    local path
    if #names > 0 and (not model or random() < 0.7) then path = pick(names)
    elseif model then path = self.g:to_one_path(model) end
    if path then order[#order + 1] = { path = path, desc = random() < 0.5 } end
  end
  local seen, out = {}, {}
  for _, t in ipairs(order) do
    if not seen[t.path] then seen[t.path] = true; out[#out + 1] = t end
  end
  return out
end

-- An extra terminal over the same set (checked against all() too);
-- first() only where the order is total.
local function also(paths, no_first, no_pluck)
  local t = weighted { {3, "count"}, {2, "exists"}, {no_pluck and 0 or 2, "pluck"},
                       {no_first and 0 or 1, "first"} }
  if t == "pluck" then
    if #paths == 0 then return { kind = "count" } end
    return { kind = "pluck", path = pick(paths) }
  end
  return { kind = t }
end

function AG:annotate_query()
  local q = self:base(true)
  q.ext = "annotate"
  local model = q.model
  q.ann = {}
  local exact = {}
  local names = {}
  for i = 1, pick { 1, 1, 2, 2, 3 } do
    local e, ty, ex = self:ann_expr(model)
    local name = "a" .. i
    q.ann[#q.ann + 1] = { name = name, e = e, call = 1 }
    if ex then exact[name] = ty end
    names[#names + 1] = name
  end
  if random() < 0.1 then
    -- with_count(rel): the annotation <rel>_count = quay.count(rel)
    local many = {}
    for _, name in ipairs(S.models[model].rel_names) do
      if S.models[model].rels[name].many then many[#many + 1] = name end
    end
    if #many > 0 then
      local rel = pick(many)
      q.ann[#q.ann + 1] = { name = rel .. "_count", e = { kind = "agg", fn = "count", path = rel },
                            call = 1, with_count = true }
      exact[rel .. "_count"] = "integer"
      names[#names + 1] = rel .. "_count"
    end
  end
  if random() < 0.15 then
    -- a later annotate over an earlier annotation (integer ones)
    local ints = {}
    for n, ty in pairs(exact) do if ty == "integer" then ints[#ints + 1] = n end end
    table.sort(ints)
    if #ints > 0 then
      local e = op({ kind = "col", path = pick(ints) }, const(true))
      q.ann[#q.ann + 1] = { name = "b1", e = e, call = 2 }
      exact.b1 = "integer"
      names[#names + 1] = "b1"
    end
  end
  local samples = self:sample(q)
  if random() < 0.5 then q.post = self:post(exact, samples, model) end
  local exact_names = {}
  for _, n in ipairs(names) do if exact[n] then exact_names[#exact_names + 1] = n end end
  if random() < 0.5 then
    q.order = self:order_terms(model, exact_names)
    if #q.order == 0 then q.order = nil end
    if q.order and random() < 0.5 then q.limit = random(0, 6) end
    if q.order and random() < 0.3 then q.offset = random(0, 4) end
  end
  local x = random()
  if x < 0.25 then
    -- values() of records: annotations and to-one paths
    local vals, seen = {}, {}
    for _ = 1, pick { 1, 2, 3 } do
      local p = random() < 0.6 and pick(names) or self.g:to_one_path(model)
      if not seen[p] then seen[p] = true; vals[#vals + 1] = p end
    end
    q.vals = vals
    if random() < 0.25 then
      q.distinct = true
      -- a distinct set orders by its own columns only
      if q.order then
        local keep = {}
        for _, t in ipairs(q.order) do if seen[t.path] then keep[#keep + 1] = t end end
        q.order = #keep > 0 and keep or nil
        -- a window of distinct rows needs a total order
        if not (q.order and covers(q.order, vals)) then q.limit, q.offset = nil, nil end
      end
    end
    q.term = { kind = "all" }
    q.also = { also(vals, q.distinct and not (q.order and covers(q.order, vals))) }
  else
    q.term = { kind = "all" }
    local paths = { table.unpack(names) }
    q.also = { also(paths) }
    if x > 0.85 then q.also[2] = also(paths) end
  end
  return q
end

function AG:grouped_query()
  local q = self:base(false)
  q.ext, q.grouped = "grouped", true
  self.group_mode, self.aggregate_term = nil, nil
  local model = q.model
  local vals, seen = {}, {}
  for _ = 1, pick { 1, 1, 2 } do
    local p = self.g:to_one_path(model)
    if not seen[p] then seen[p] = true; vals[#vals + 1] = p end
  end
  q.vals = vals
  q.ann = {}
  local exact = {}
  for i = 1, pick { 1, 2, 2, 3 } do
    local name = "n" .. i
    local e, ty
    if random() < 0.15 then
      e = op(self:agg(model, "group", "int"), random() < 0.5 and const(true) or self:agg(model, "group", "int"))
      ty = "integer"
    else
      e, ty = self:agg(model, "group")
    end
    q.ann[i] = { name = name, e = e, call = 1 }
    if not (e.kind == "agg" and ty == "number" and (e.fn == "sum" or e.fn == "avg")) then
      exact[name] = ty
    end
  end
  local cols = {}
  for n, ty in pairs(exact) do cols[n] = ty end
  local samples = self:sample(q)
  if random() < 0.35 then
    q.post = self:post(cols, samples)
  end
  if random() < 0.6 then
    local names = {}
    for n in pairs(exact) do names[#names + 1] = n end
    for _, p in ipairs(vals) do names[#names + 1] = p end
    table.sort(names)
    q.order = self:order_terms(nil, names)
    if random() < 0.4 then
      -- a total order (every values column) for a window
      local on = {}
      for _, t in ipairs(q.order) do on[t.path] = true end
      for _, p in ipairs(vals) do
        if not on[p] then q.order[#q.order + 1] = { path = p, desc = random() < 0.5 } end
      end
      if random() < 0.6 then q.limit = random(0, 5) end
      if random() < 0.3 then q.offset = random(0, 3) end
    end
    if #q.order == 0 then q.order = nil end
  end
  if random() < 0.1 then q.distinct = true end
  q.term = { kind = "all" }
  local colnames = { table.unpack(vals) }
  for _, a in ipairs(q.ann) do colnames[#colnames + 1] = a.name end
  q.also = { also(colnames, not (q.order and covers(q.order, vals))) }
  return q
end

function AG:aggregate_query()
  local q = self:base(true)
  q.ext = "aggregate"
  local model = q.model
  if random() < 0.2 then
    local e, ty, ex = self:ann_expr(model, "exact")
    q.ann = { { name = "a1", e = e, call = 1 } }
    if ex then
      q.post = self:post({ a1 = ty }, self:sample(q), model)
    end
  end
  self.group_mode, self.aggregate_term = nil, true
  if random() < 0.15 then
    q.order = { { path = self.g:to_one_path(model), desc = random() < 0.5 } }
    q.limit = random(0, 6)
  end
  local aggs = {}
  for i = 1, pick { 1, 2, 2, 3, 4 } do
    local e
    if random() < 0.1 then
      e = op(self:agg(model, "group", "int"), const(true))
    else
      e = self:agg(model, "group")
    end
    aggs[i] = { name = "g" .. i, e = e }
  end
  self.group_mode, self.aggregate_term = nil, nil
  q.term = { kind = "aggregate", aggs = aggs }
  return q
end

-- A quay.F comparison leaf on model (the left side may cross to-many
-- relations; the right side is the query row's).
function AG:fleaf(model)
  for _ = 1, 6 do
    local hops = {}
    if random() < 0.4 then hops = self.g:walk(model, pick { 1, 1, 2 }) end
    local tm = target_of(model, hops)
    local fds = {}
    for _, fd in ipairs(S.models[tm].fields) do if CLASS[fd.type] then fds[#fds + 1] = fd end end
    local fd = pick(fds)
    if tm == "Post" and random() < 0.4 then
      fd = S.models.Post.field_by[pick { "price", "price", "due" }]
    end
    local cls = CLASS[fd.type]
    local e = self:fexpr(model, cls)
    if e then
      local lk
      if cls == "bool" or cls == "uuid" then lk = pick { "eq", "ne" }
      else lk = weighted { {3, "eq"}, {2, "ne"}, {2, "lt"}, {1, "lte"}, {2, "gt"}, {1, "gte"} } end
      return { kind = "leaf", key = key_of(hops, lk == "eq" and { fd.name } or { fd.name, lk }),
               value = { kind = "expr", e = e } }
    end
  end
  return nil
end

function AG:fexpr_query()
  local q = self:base(false)
  q.ext = "fexpr"
  local model = q.model
  local t = self.g:table(model, 0, nil, { wit = self.g:witness(model) })
  if random() < 0.4 then t = { kind = "table", items = {} } end
  for _ = 1, pick { 1, 1, 2 } do
    local lf = self:fleaf(model)
    if lf then
      local dup = false
      for _, it in ipairs(t.items) do if it.key == lf.key then dup = true end end
      if not dup then table.insert(t.items, lf) end
    end
  end
  if #t.items == 0 then t.items[1] = self.g:leaf(model) end
  q.steps[#q.steps + 1] = { op = random() < 0.75 and "filter" or "exclude", cond = t }
  if random() < 0.3 then
    -- an annotation of columns, used in a filter
    local e
    if random() < 0.3 then e = self:dec_expr(model) end
    e = e or self:fexpr(model, "num", random() < 0.5)
    if e then
      q.ann = { { name = "f1", e = e, call = 1 } }
      local samples = self:sample(q)
      local ty = AG.expr_type(model, e)
      if random() < 0.7 then q.post = self:post({ f1 = ty }, samples, model) end
    end
  end
  if random() < 0.35 then
    q.order = { { path = self.g:to_one_path(model), desc = random() < 0.5 } }
    if q.ann and random() < 0.5 then table.insert(q.order, 1, { path = "f1", desc = random() < 0.5 }) end
    if random() < 0.5 then q.limit = random(0, 6) end
  end
  q.term = { kind = "all" }
  q.also = { also(q.ann and { "f1" } or {}) }
  return q
end

function AG:update_query()
  local models = {}
  for m in pairs(UPDATABLE) do models[#models + 1] = m end
  table.sort(models)
  models[#models + 1] = "Post"           -- (its decimal more often)
  local q = { steps = {}, ext = "update" }
  q.model = pick(models)
  local model = q.model
  if random() < 0.8 then q.steps = self.g:steps(model) end
  if random() < 0.2 then
    q.order = { { path = self.g:to_one_path(model), desc = random() < 0.5 } }
    q.limit = random(0, 5)
  end
  local set, used = {}, {}
  for _ = 1, pick { 1, 1, 2 } do
    local col = pick(UPDATABLE[model])
    if not used[col] then
      used[col] = true
      local ty = S.models[model].field_by[col].type
      local v
      local x = random()
      if x < 0.08 then v = NULL
      elseif x < 0.15 then
        v = ty == "integer" and pick { 0, 5, -3 } or ty == "decimal"
            and G.dec_form(pick(V.pool.decimal)) or 0.5
      elseif (ty == "decimal" and x < 0.8) or (model == "Post" and x > 0.93) then
        -- a decimal expression (into a decimal, an integer or a number)
        local e = self:dec_expr(model)
        v = e and { kind = "expr", e = e } or NULL
      else
        -- (an integer field is also set from a number: rounded)
        local e = self:fexpr(model, "num", ty == "integer" and random() < 0.7)
        v = e and { kind = "expr", e = e } or NULL
      end
      set[#set + 1] = { col = col, value = v }
    end
  end
  if random() < 0.15 then
    -- and a plain value of another column
    local others, fks = {}, {}
    for _, rel in pairs(S.models[model].rels) do if rel.kind == "fk" then fks[rel.column] = true end end
    for _, fd in ipairs(S.models[model].fields) do
      if (fd.type == "string" or fd.type == "text") and fd.null and not fks[fd.name] then
        others[#others + 1] = fd
      end
    end
    if #others > 0 then
      local fd = pick(others)
      set[#set + 1] = { col = fd.name, value = random() < 0.2 and NULL or pick(V.pool.string) }
    end
  end
  q.term = { kind = "update", set = set }
  return q
end

----------------------------------------------------------------------------
-- Plain cases: the shapes sqlcheck.lua also writes as SQL (no conditions,
-- aggregates with no options over own fields and one hop).

local PLAIN = { id = true, integer = true, number = true, string = true, text = true }

-- A plain aggregate on model; own: own fields only (groups, aggregate()).
function AG:plain_agg(model, own)
  local md = S.models[model]
  for _ = 1, 10 do
    local fn = weighted { {4, "count"}, {3, "sum"}, {2, "avg"}, {2, "min"}, {2, "max"} }
    local hops, tm = {}, model
    local x = random()
    if not own and x < 0.6 then
      local rels = {}
      for _, name in ipairs(md.rel_names) do
        local r = md.rels[name]
        if (r.kind == "fk" or r.kind == "rev") and not r.plain then rels[#rels + 1] = name end
      end
      if #rels > 0 then
        hops = { pick(rels) }
        tm = md.rels[hops[1]].target
      end
    end
    local ok = {}
    for _, fd in ipairs(S.models[tm].fields) do
      if PLAIN[fd.type] and ((fn ~= "sum" and fn ~= "avg") or CLASS[fd.type] == "num") then
        ok[#ok + 1] = fd
      end
    end
    local field
    if fn == "count" and (#hops > 0 and random() < 0.5 or own and random() < 0.5) then
      field = nil
    elseif #ok > 0 then
      field = pick(ok)
    end
    if field or fn == "count" then
      local path = (#hops > 0 or field) and key_of(hops, field and { field.name } or {}) or nil
      if path or own then return { kind = "agg", fn = fn, path = path } end
    end
  end
  return { kind = "agg", fn = "count" }
end

function AG:plain_query(kind)
  local q = { steps = {}, ext = kind, model = pick(MODELS) }
  local model = q.model
  if kind == "annotate" then
    q.ann = {}
    for i = 1, pick { 1, 2, 3 } do
      local e
      repeat e = self:plain_agg(model, false) until e.path
      q.ann[i] = { name = "a" .. i, e = e, call = 1 }
    end
    q.term = { kind = "all" }
    q.also = { { kind = "pluck", path = "a1" } }
  elseif kind == "grouped" then
    q.grouped = true
    local fds = {}
    for _, fd in ipairs(S.models[model].fields) do if PLAIN[fd.type] then fds[#fds + 1] = fd end end
    q.vals = { pick(fds).name }
    if random() < 0.3 then
      local other = pick(fds).name
      if other ~= q.vals[1] then q.vals[2] = other end
    end
    q.ann = {}
    for i = 1, pick { 1, 2, 3 } do q.ann[i] = { name = "n" .. i, e = self:plain_agg(model, true), call = 1 } end
    q.term = { kind = "all" }
    q.also = { { kind = "count" } }
  else
    local aggs = {}
    for i = 1, pick { 1, 2, 3 } do aggs[i] = { name = "g" .. i, e = self:plain_agg(model, true) } end
    q.term = { kind = "aggregate", aggs = aggs }
  end
  return q
end

----------------------------------------------------------------------------
-- Known mismatches (known.lua K*): queries that hit them are drawn again
-- unless opts.known.

--- May the generator produce the known mismatch k (opts.known)?
function AG:allowed(k)
  local o = self.opts.known
  return o == true or (type(o) == "table" and o[k] == true)
end

--- The known mismatches q runs into (their K numbers in known.lua, a list).
function AG:known(q)
  -- None at present (K1..K17 are fixed).  A new class found by the tester
  -- is added here, e.g. `if <shape of q> then hits[#hits + 1] = "K18" end`,
  -- with its repro in known.lua, until it is fixed.
  local _ = q
  return {}
end

--- A random query of kind (one of AG.KINDS), drawn again while it runs
--- into a known mismatch (unless opts.known).
function AG:query(kind)
  local q
  local plain = (kind == "annotate" or kind == "grouped" or kind == "aggregate") and random() < 0.12
  for _ = 1, 20 do
    q = plain and self:plain_query(kind) or self[kind .. "_query"](self)
    local ok = true
    for _, k in ipairs(self:known(q)) do if not self:allowed(k) then ok = false end end
    if ok then return q end
  end
  q.skip = "every draw ran into a known mismatch"   -- not run (it may crash)
  return q
end

--- A random kind by AG.WEIGHTS, among the allowed ones.
function AG.pick_kind(allowed)
  local list = {}
  for _, k in ipairs(AG.KINDS) do
    if not allowed or allowed[k] then list[#list + 1] = { AG.WEIGHTS[k], k } end
  end
  return weighted(list)
end

--- A query the contract says raises (q.bad is the error code).
function AG:bad_query()
  local cases = {
    { "bad_lookup", "Post", { kind = "agg", fn = "sum", path = "title" } },
    { "bad_lookup", "User", { kind = "agg", fn = "avg", path = "posts__title" } },
    { "bad_lookup", "User", { kind = "agg", fn = "min", path = "posts" } },
    { "bad_lookup", "Post", { kind = "op", op = "*", a = { kind = "col", path = "title" },
                              b = { kind = "num", v = 2 } } },
    { "bad_lookup", "User", { kind = "col", path = "posts__views" } },
    { "unknown_field", "Post", { kind = "agg", fn = "count", path = "comments__nope" } },
  }
  local c = pick(cases)
  return { ext = "annotate", model = c[2], steps = {}, bad = c[1],
           ann = { { name = "a1", e = c[3], call = 1 } }, term = { kind = "count" } }
end

return AG
