--[[
test/difftest/render.lua
Writes a query AST (gen.lua) as Lua source, the exact text that runs against
Quay (run.lua loads it), so a reported case can be pasted as it is.  Also
writes an instance as Lua create calls, and a shape signature of a query
(values left out) that groups mismatches into classes.
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")

local R = {}
local NULL = V.NULL

function R.value(v)
  if type(v) == "table" and v.kind == "list" then
    local parts = {}
    for i, x in ipairs(v.items) do parts[i] = R.value(x) end
    return "{ " .. table.concat(parts, ", ") .. (#parts > 0 and " }" or "}")
  elseif type(v) == "table" and v.kind == "rec" then
    return ("%s:find(%d)"):format(v.model, v.id)
  end
  return V.lua(v)
end

function R.cond(c)
  if c.kind == "any" then
    local parts = {}
    for i, t in ipairs(c.tables) do parts[i] = R.cond(t) end
    return "quay.any { " .. table.concat(parts, ", ") .. " }"
  end
  local parts = {}
  for _, it in ipairs(c.items) do
    if it.kind == "leaf" then parts[#parts + 1] = it.key .. " = " .. R.value(it.value) end
  end
  for _, it in ipairs(c.items) do
    if it.kind == "any" then parts[#parts + 1] = R.cond(it) end
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function steps(list, var)
  local out = {}
  for _, st in ipairs(list) do
    if st.op == "filter" or st.op == "exclude" then
      if st.cond.kind == "any" then
        out[#out + 1] = (":%s(%s)"):format(st.op, R.cond(st.cond))
      else
        out[#out + 1] = (":%s %s"):format(st.op, R.cond(st.cond))
      end
    else
      local extra = ""
      if st.cond then extra = ", " .. R.cond(st.cond)
      elseif st.fn then
        local v = var == "q" and "r" or "q"
        extra = (", function(%s) return %s%s end"):format(v, v, steps(st.fn, v))
      end
      out[#out + 1] = (":%s(%q%s)"):format(st.op, st.rel, extra)
    end
  end
  return table.concat(out)
end

--- The query as one Lua expression.
function R.query(q)
  local src
  if q.owner then
    src = ("%s:find(%d).%s"):format(q.owner.model, q.owner.id, q.owner.rel)
  else
    src = q.model .. ":query()"
  end
  src = src .. steps(q.steps, "")
  if q.order then
    local terms = {}
    for i, t in ipairs(q.order) do terms[i] = ("%q"):format((t.desc and "-" or "") .. t.path) end
    src = src .. ":order_by(" .. table.concat(terms, ", ") .. ")"
  end
  if q.limit then src = src .. (":limit(%d)"):format(q.limit) end
  if q.offset then src = src .. (":offset(%d)"):format(q.offset) end
  local t = q.term
  if t.kind == "pluck" then src = src .. (":pluck(%q)"):format(t.path)
  else src = src .. ":" .. t.kind .. "()" end
  return src
end

-- Shape of a value for signatures.
local function vshape(v)
  if v == NULL then return "null" end
  if type(v) == "table" and v.kind == "list" then
    return "list" .. #v.items
  elseif type(v) == "table" and v.kind == "rec" then return "rec" end
  return type(v) == "boolean" and tostring(v) or "v"
end

local function cshape(c)
  if c.kind == "any" then
    local parts = {}
    for i, t in ipairs(c.tables) do parts[i] = cshape(t) end
    return "any(" .. table.concat(parts, "|") .. ")"
  end
  local parts = {}
  for _, it in ipairs(c.items) do
    if it.kind == "leaf" then parts[#parts + 1] = it.key .. "=" .. vshape(it.value)
    else parts[#parts + 1] = cshape(it) end
  end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

local function sshape(list)
  local out = {}
  for _, st in ipairs(list) do
    if st.cond then out[#out + 1] = st.op .. (st.rel and ("(" .. st.rel .. ")") or "") .. cshape(st.cond)
    elseif st.fn then out[#out + 1] = st.op .. "(" .. st.rel .. ",fn[" .. sshape(st.fn) .. "])"
    else out[#out + 1] = st.op .. "(" .. (st.rel or "") .. ")" end
  end
  return table.concat(out, " ")
end

--- A signature of the query's shape: keys and value kinds, no values.
function R.signature(q)
  local s = (q.owner and (q.owner.model .. "." .. q.owner.rel .. ":") or (q.model .. ":"))
    .. sshape(q.steps)
  if q.order then s = s .. " order" end
  if q.limit or q.offset then s = s .. " slice" end
  return s .. " " .. q.term.kind
end

--- An instance as Lua source (create calls; NULL columns left out).
function R.instance(inst)
  local out = {}
  for _, name in ipairs(S.order) do
    for _, r in ipairs(inst.rows[name] or {}) do
      local parts = { "id = " .. r.id }
      for _, fd in ipairs(S.models[name].fields) do
        if fd.name ~= "id" and r[fd.name] ~= NULL and r[fd.name] ~= nil then
          parts[#parts + 1] = fd.name .. " = " .. V.lua(r[fd.name])
        end
      end
      out[#out + 1] = ("%s:create { %s }"):format(name, table.concat(parts, ", "))
    end
  end
  for _, p in ipairs(inst.join.follows) do
    out[#out + 1] = ("User:find(%d).follows:add(User:find(%d))"):format(p[1], p[2])
  end
  for _, p in ipairs(inst.join.post_tags) do
    out[#out + 1] = ("Post:find(%d).tags:add(Tag:find(%d))"):format(p[1], p[2])
  end
  return table.concat(out, "\n")
end

--- A result (oracle's or Quay's, see run.lua) as text.
function R.result(res)
  if res.error then return ("error %s: %s"):format(tostring(res.error), tostring(res.message)) end
  if res.kind == "ids" then
    local s = {}
    for i, id in ipairs(res.ids) do s[i] = tostring(id) end
    return "ids {" .. table.concat(s, ", ") .. "}" .. (res.ordered and " (ordered)" or "")
  elseif res.kind == "count" then return "count " .. res.n
  elseif res.kind == "bool" then return "exists " .. tostring(res.b)
  elseif res.kind == "first" then return "first " .. tostring(res.id)
  elseif res.kind == "values" then
    local s = {}
    for i = 1, #res.values do s[i] = V.lua(res.values[i], "nil") end
    return "values {" .. table.concat(s, ", ") .. "}" .. (res.ordered and " (ordered)" or "")
  end
  return "?"
end

return R
