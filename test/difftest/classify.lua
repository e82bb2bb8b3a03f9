--[[
test/difftest/classify.lua
Tags a (shrunk) mismatching query with the constructs it uses, so that
mismatches group into classes: a heuristic for the reader, not a verdict.

  relkey:<kind>     a path ending at a reverse / to-many relation compared
                    with a key, a record or a list (kind: reverse, reverse-one,
                    m2m, m2m-through, through)
  relnull-eq:<kind> relation = quay.null / relation__ne = quay.null on one
  relnull-pk:<kind> relation__id__isnull (Django's spelling of relation__isnull)
  relnull-under-many  a relation isnull test below a to-many hop
  fkcol-reverse     a condition on the child's own foreign key column reached
                    through the reverse relation (posts__author_id)
  self-m2m          follows and followers in one conditions table
  through-and-its-hop  a to-many quay.through relation and the relation it
                    starts with (learners and enrolments) in one table
  to-one-null       a path through a to-one hop that can be missing, with a
                    lookup that is TRUE on the NULL row (isnull, ne, not_in,
                    relation isnull)
  group-relnull     relation__isnull inside a same-row group
  group-any         a to-many prefix shared by leaves inside and outside a
                    quay.any (or across its branches)
  order / slice     order_by / limit-offset
  error:<code>      Quay raised
  reading:<x>       Quay agrees with the other quantification x (oracle.lua)
The read path past conditions (agen.lua):
  kind:<k>          annotate, grouped, aggregate, fexpr or update
  agg:<fn>:<path>   an aggregate and where its path goes (own, to-one,
                    to-many, m2m, through, none)
  agg-filter, agg-distinct, agg-default   its options
  ann-filter / ann-order   an annotation used in filter / order_by
  F, F-arith, F-under-many   quay.F in a condition (after a to-many hop)
  values, distinct, grouped   values(), distinct(), values():annotate()
  update-F          an update with an expression; update-F-to-one across a
                    relation
  consistent        Quay's count/exists/pluck disagree with its own all()
]]
local S = require("test.difftest.schema")
local O = require("test.difftest.oracle")
local V = require("test.difftest.values")

local C = {}
local NULL = V.NULL

local function relkind(rel)
  if rel.kind == "rev" then return rel.many and "reverse" or "reverse-one" end
  if rel.kind == "thru" then return "m2m-through" end
  if rel.kind == "path" then return "through" end
  return rel.kind
end

-- Can this to-one hop reach no row?
local function nullable_one(h)
  if h.pivot then return false end
  local rel = h.rel
  if rel.many then return false end
  if rel.kind == "fk" then return S.models[h.model].field_by[rel.column].null end
  if rel.kind == "rev" then return true end
  return false
end

local function table_tags(model, t, tags, pivot_of)
  local uses = {}      -- to-many prefix -> { [branch] = true, n = leaves }
  local relnulls = {}  -- the group (deepest to-many prefix) of each relation isnull
  local firsts = {}    -- "prefix|relation" -> 1: a through starts with it, 2: used itself
  local function walk(node, depth, branch)
    for _, it in ipairs(node.items) do
      if it.kind == "leaf" then
        local r = O.resolve(model, it.key, it.value, pivot_of)
        local hops = r.hops
        local last = hops[#hops]
        if r.kind == "field" and r.relend and last.rel.kind ~= "fk" then
          tags["relkey:" .. relkind(last.rel)] = true
        end
        if r.kind == "relnull" and r.last.rel and r.last.rel.kind ~= "fk"
           and not it.key:match("isnull$") then
          tags["relnull-eq:" .. relkind(r.last.rel)] = true
        end
        if r.kind == "relnull" then
          for _, h in ipairs(hops) do
            if h.many then tags["relnull-under-many"] = true end
          end
        end
        if r.kind == "relnull" and it.key:match("__id__isnull$") then
          tags["relnull-pk:" .. relkind(r.last.rel)
            .. (r.last.rel.key ~= "id" and "(to_field)" or "")] = true
        end
        if r.kind == "field" and not r.relend and last and last.rel
           and last.rel.kind == "rev" and r.field == last.rel.column then
          tags["fkcol-reverse"] = true
        end
        local lk = r.lookup
        local null_true = r.kind == "relnull" or lk == "isnull" or lk == "ne" or lk == "not_in"
          or (lk == "eq" and it.value == V.NULL)
        local all = { table.unpack(hops) }
        if r.kind == "relnull" then all[#all + 1] = r.last end
        for i, h in ipairs(all) do
          if (i < #all or r.kind ~= "relnull") and nullable_one(h) and null_true then
            tags["to-one-null"] = true
          end
        end
        local names, deepest = {}, nil
        for i, h in ipairs(hops) do
          names[i] = h.name
          if h.many then
            deepest = table.concat(names, "__")
            uses[deepest] = uses[deepest] or { n = 0 }
            uses[deepest][branch] = true
            uses[deepest].n = uses[deepest].n + 1
          end
          if h.name == "follows" then tags.__follows = true end
          if h.name == "followers" then tags.__followers = true end
          -- a quay.through hop and the relation it starts with, side by side
          local pre = table.concat(names, "__", 1, i - 1)
          if h.rel and h.rel.kind == "path" and h.rel.many then
            firsts[pre .. "|" .. h.rel.path[1]] = (firsts[pre .. "|" .. h.rel.path[1]] or 0) | 1
          elseif h.rel then
            firsts[pre .. "|" .. h.name] = (firsts[pre .. "|" .. h.name] or 0) | 2
          end
        end
        if r.kind == "relnull" and deepest then relnulls[#relnulls + 1] = deepest end
      else
        for i, sub in ipairs(it.tables) do walk(sub, depth + 1, branch .. "/" .. i) end
      end
    end
  end
  walk(t, 0, "")
  for _, u in pairs(uses) do
    local n = 0
    for k in pairs(u) do if k ~= "n" then n = n + 1 end end
    if n > 1 then tags["group-any"] = true end
  end
  if tags.__follows and tags.__followers then tags["self-m2m"] = true end
  for _, bits in pairs(firsts) do
    if bits == 3 then tags["through-and-its-hop"] = true end
  end
  tags.__follows, tags.__followers = nil, nil
  -- relation isnull together with another leaf of its group
  for _, p in ipairs(relnulls) do
    if uses[p].n > 1 then tags["group-relnull"] = true end
  end
end

local function steps_tags(model, steps, tags, pivot_of)
  for _, st in ipairs(steps) do
    if st.cond then
      local c = st.cond
      if c.kind == "any" then c = { kind = "table", items = { c } } end
      local m = model
      if st.rel then
        local _, target = nil, model
        for _, hop in ipairs(O.split(st.rel)) do target = S.models[target].rels[hop].target end
        m = target
      end
      table_tags(m, c, tags, not st.rel and pivot_of or nil)
    elseif st.fn then
      local target = model
      for _, hop in ipairs(O.split(st.rel)) do target = S.models[target].rels[hop].target end
      steps_tags(target, st.fn, tags)
    end
  end
end

-- Where an aggregate path goes from model.
local function path_kind(model, path)
  if not path then return "none" end
  local m, kind = model, "own"
  for _, seg in ipairs(O.split(path)) do
    local rel = S.models[m].rels[seg]
    if not rel then break end
    local k = rel.kind == "m2m" and "m2m" or (rel.kind == "thru" or rel.kind == "path") and "through"
      or rel.many and "to-many" or "to-one"
    if kind == "own" or kind == "to-one" or k == "through" or k == "m2m" then kind = k end
    m = rel.target
  end
  return kind
end

local function expr_tags(model, e, tags)
  if e.kind == "agg" then
    tags["agg:" .. e.fn .. ":" .. path_kind(model, e.path)] = true
    if e.filter then tags["agg-filter"] = true end
    if e.distinct then tags["agg-distinct"] = true end
    if e.default ~= nil then tags["agg-default"] = true end
  elseif e.kind == "op" then
    tags["F-arith"] = true
    expr_tags(model, e.a, tags)
    expr_tags(model, e.b, tags)
  elseif e.kind == "col" then
    tags.F = true
  end
end

local function ext_tags(q, tags)
  tags["kind:" .. q.ext] = true
  local names = {}
  for _, a in ipairs(q.ann or {}) do
    names[a.name] = true
    expr_tags(q.model, a.e, tags)
  end
  local function leaves(c, fn)
    if c.kind == "any" then for _, t in ipairs(c.tables) do leaves(t, fn) end return end
    for _, it in ipairs(c.items) do
      if it.kind == "leaf" then fn(it) else leaves(it, fn) end
    end
  end
  local function scan(steps)
    for _, st in ipairs(steps or {}) do
      if st.cond and not st.rel then
        leaves(st.cond, function(lf)
          if names[O.split(lf.key)[1]] then tags["ann-filter"] = true end
          if type(lf.value) == "table" and lf.value.kind == "expr" then
            tags.F = true
            expr_tags(q.model, lf.value.e, tags)
            local r = O.resolve(q.model, lf.key, NULL)
            for _, h in ipairs(r.hops or {}) do if h.many then tags["F-under-many"] = true end end
          end
        end)
      end
    end
  end
  pcall(scan, q.steps)
  pcall(scan, q.post)
  for _, t in ipairs(q.order or {}) do if names[t.path] then tags["ann-order"] = true end end
  if q.vals then tags[q.grouped and "grouped" or "values"] = true end
  if q.distinct then tags.distinct = true end
  for _, a in ipairs(q.term.aggs or {}) do expr_tags(q.model, a.e, tags) end
  for _, x in ipairs(q.term.set or {}) do
    if type(x.value) == "table" and x.value.kind == "expr" then
      tags["update-F"] = true
      local function cols(e)
        if e.kind == "col" and e.path:find("__", 1, true) then tags["update-F-to-one"] = true end
        if e.kind == "op" then cols(e.a); cols(e.b) end
      end
      cols(x.value.e)
    end
  end
end

--- The sorted tag list of query q whose Quay result was got (the oracle's
--- exp); alt: Quay agrees with the other reading.
function C.tags(q, got, alt, alt_name, exp)
  local tags = {}
  if exp and exp.error == "consistent" then tags.consistent = true end
  if q.ext then ext_tags(q, tags) end
  local pivot_of
  if q.owner then
    local rel = S.models[q.owner.model].rels[q.owner.rel]
    if rel.kind == "thru" then pivot_of = rel.via end
  end
  pcall(steps_tags, q.model, q.steps, tags, pivot_of)
  if q.order then tags.order = true end
  if q.limit or q.offset then tags.slice = true end
  if got and got.error then tags["error:" .. got.error] = true end
  if got and got.kind == "multi" then
    for _, p in ipairs(got.parts) do if p.error then tags["error:" .. p.error] = true end end
  end
  if alt then tags["reading:" .. (alt_name or "minimal")] = true end
  local out = {}
  for k in pairs(tags) do out[#out + 1] = k end
  table.sort(out)
  return out
end

C.NULL = V.NULL
return C
