--[[
test/difftest/sqlcheck.lua
A third truth for the simplest aggregate cases: SQL written by the tester
(not by Quay), run with db:rows on the same database, compared with the
oracle's answer.  It checks the oracle (aoracle.lua) on the shapes plain SQL
says the same thing about:

  annotate on records of aggregates over an own field, one belongs_to hop,
    or one reverse hop (a correlated subquery each);
  values(own fields):annotate(count() / aggregates of own fields) (GROUP BY);
  aggregate() of count() / aggregates of own fields;

with no conditions, no filter / distinct / default and no order or window.
Other shapes are not checked (render returns nil).  Boolean and datetime
values are left out (how db:rows hands them back differs by backend).
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")

local SQ = {}
local NULL = V.NULL

local SIMPLE_TYPES = { id = true, integer = true, number = true, string = true, text = true }
local FN = { count = "COUNT", sum = "SUM", avg = "AVG", min = "MIN", max = "MAX" }

local function q_ident(s) return '"' .. s .. '"' end

-- fn over arg, a field of type ty: avg of a number field is its sum over
-- its count (docs/reference.md; PostgreSQL's AVG(double precision) also
-- sums the squares, which overflow from 1.4e154).
local function call(fn, arg, ty)
  if fn == "AVG" and ty == "number" then return ("(SUM(%s) / COUNT(%s))"):format(arg, arg) end
  return ("%s(%s)"):format(fn, arg)
end

-- A plain aggregate (no options) on model: its SQL over alias t (the
-- owner row), or nil.  tables: model -> table name.
local function agg_sql(model, e, tables, correlated)
  if e.kind ~= "agg" or not FN[e.fn] or e.filter or e.distinct or e.default ~= nil then return nil end
  local fn = FN[e.fn]
  if not e.path then
    if e.fn ~= "count" or correlated then return nil end
    return "COUNT(*)"
  end
  local segs = {}
  for seg in (e.path .. "__"):gmatch("(.-)__") do segs[#segs + 1] = seg end
  local md = S.models[model]
  if #segs == 1 then
    local fd = md.field_by[segs[1]]
    if not fd or not SIMPLE_TYPES[fd.type] then return nil end
    if correlated then return ("t.%s"):format(q_ident(fd.name)) .. (e.fn == "count" and " IS NOT NULL" or "") end
    return call(fn, q_ident(fd.name), fd.type)
  end
  if not correlated or #segs > 2 then return nil end
  local rel = md.rels[segs[1]]
  if not rel or (rel.kind ~= "fk" and rel.kind ~= "rev") or rel.plain then return nil end
  local tm = S.models[rel.target]
  local arg, ty = "*", nil
  if segs[2] then
    local fd = tm.field_by[segs[2]]
    if not fd or not SIMPLE_TYPES[fd.type] then return nil end
    arg, ty = "r." .. q_ident(fd.name), fd.type
  elseif e.fn ~= "count" then
    return nil
  end
  local where
  if rel.kind == "fk" then
    where = ("r.%s = t.%s"):format(q_ident(rel.to_field), q_ident(rel.column))
  else
    where = ("r.%s = t.%s"):format(q_ident(rel.column), q_ident(rel.to_field))
  end
  return ("(SELECT %s FROM %s AS r WHERE %s)"):format(call(fn, arg, ty), q_ident(tables[rel.target]),
                                                      where)
end

--- The SQL of q and how to read its rows back ({ sql, kind, cols }), or
--- nil when q is not one of the shapes above.
function SQ.render(q, tables)
  if not q.ext or q.owner or #q.steps > 0 or q.post or q.order or q.limit or q.offset
     or q.distinct or q.bad or q.skip then
    return nil
  end
  local model = q.model
  local tbl = q_ident(tables[model])
  if q.ext == "annotate" and not q.vals and q.term.kind ~= "aggregate" then
    local cols, names = { "t.\"id\" AS \"id\"" }, {}
    for i, a in ipairs(q.ann or {}) do
      local s = agg_sql(model, a.e, tables, true)
      if not s or a.e.fn == "count" and not a.e.path then return nil end
      -- an own-field "aggregate" of one row: the field (count: 0 / 1)
      if not s:find("^%(SELECT") then
        if a.e.fn == "count" then s = "CASE WHEN " .. s .. " THEN 1 ELSE 0 END" end
        if a.e.fn == "avg" then s = s .. " * 1.0" end
      end
      cols[#cols + 1] = s .. " AS " .. q_ident(a.name)
      names[i] = a.name
    end
    if #names == 0 then return nil end
    return { sql = ("SELECT %s FROM %s AS t ORDER BY t.\"id\""):format(table.concat(cols, ", "), tbl),
             kind = "recs", cols = names }
  elseif q.ext == "grouped" then
    local cols, group, names = {}, {}, {}
    for _, p in ipairs(q.vals) do
      local fd = S.models[model].field_by[p]
      if not fd or not SIMPLE_TYPES[fd.type] then return nil end
      cols[#cols + 1] = q_ident(p) .. " AS " .. q_ident(p)
      group[#group + 1] = q_ident(p)
      names[#names + 1] = p
    end
    for _, a in ipairs(q.ann) do
      local s = agg_sql(model, a.e, tables, false)
      if not s then return nil end
      cols[#cols + 1] = s .. " AS " .. q_ident(a.name)
      names[#names + 1] = a.name
    end
    return { sql = ("SELECT %s FROM %s GROUP BY %s"):format(table.concat(cols, ", "), tbl,
                                                         table.concat(group, ", ")),
             kind = "rows", cols = names }
  elseif q.ext == "aggregate" and not q.ann then
    local cols, names = {}, {}
    for _, a in ipairs(q.term.aggs) do
      local s = agg_sql(model, a.e, tables, false)
      if not s then return nil end
      cols[#cols + 1] = s .. " AS " .. q_ident(a.name)
      names[#names + 1] = a.name
    end
    return { sql = ("SELECT %s FROM %s"):format(table.concat(cols, ", "), tbl), kind = "row",
             cols = names }
  end
  return nil
end

-- Values as compared here: numbers by value (a backend's numeric may come
-- back as text), within a tolerance for floats.
local function same(e, g)
  local tol
  if V.is_approx(e) then
    tol = e.tol                -- the oracle's own (an average of huge
    e = e.v                    -- integers cancels in floats: 0 for -1)
  end
  if g == nil then g = NULL end
  if e == NULL or g == NULL then return e == g end
  if type(e) == "number" then
    local n = tonumber(g)
    if not n then return false end
    if math.type(e) == "integer" and math.type(n) == "integer" then return e == n end
    return math.abs(n - e) <= (tol or 1e-9 * math.max(1, math.abs(e)))
  end
  return e == g
end

local function key(r, cols)
  local parts = {}
  for i, c in ipairs(cols) do
    local v = r[c]
    if V.is_approx(v) then v = ("%.6g"):format(v.v) end
    if type(v) == "number" then v = ("%.6g"):format(v) end
    parts[i] = tostring(v == nil and NULL or v)
  end
  return table.concat(parts, "|")
end

--- Compare the SQL's rows (db:rows) with the oracle's result exp; returns
--- nil or what differs.
function SQ.compare(plan, rows, exp)
  if plan.kind == "row" then
    for _, c in ipairs(plan.cols) do
      if not same(exp.row[c], rows[1] and rows[1][c]) then
        return ("%s: SQL %s, oracle %s"):format(c, tostring(rows[1] and rows[1][c]), V.lua(exp.row[c]))
      end
    end
    return nil
  end
  local want = exp.rows
  if #want ~= #rows then return ("SQL has %d rows, the oracle %d"):format(#rows, #want) end
  if plan.kind == "recs" then
    for i, r in ipairs(rows) do
      local e = want[i]
      if tonumber(r.id) ~= e.id then return "rows in another order" end
      for _, c in ipairs(plan.cols) do
        if not same(e[c], r[c]) then
          return ("id %d, %s: SQL %s, oracle %s"):format(e.id, c, tostring(r[c]), V.lua(e[c]))
        end
      end
    end
    return nil
  end
  -- groups: match each oracle row with an SQL row by the group columns
  local by = {}
  for _, r in ipairs(rows) do by[#by + 1] = r end
  for _, e in ipairs(want) do
    local found = false
    for j, r in ipairs(by) do
      local ok = true
      for _, c in ipairs(plan.cols) do if not same(e[c], r[c]) then ok = false; break end end
      if ok then table.remove(by, j); found = true; break end
    end
    if not found then return "no SQL row like the oracle's " .. key(e, plan.cols) end
  end
  return nil
end

return SQ
