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

--- An expression (agen.lua) as Lua source.
function R.expr(e)
  local k = e.kind
  if k == "num" then
    local s = V.lua(e.v)
    if s:sub(1, 1) == "-" then s = "(" .. s .. ")" end
    return s
  elseif k == "col" then
    return ("quay.F(%q)"):format(e.path)
  elseif k == "op" then
    return "(" .. R.expr(e.a) .. " " .. e.op .. " " .. R.expr(e.b) .. ")"
  elseif k == "agg" then
    local opts = {}
    if e.filter then opts[#opts + 1] = "filter = " .. R.cond(e.filter) end
    if e.distinct then opts[#opts + 1] = "distinct = true" end
    if e.default ~= nil then opts[#opts + 1] = "default = " .. V.lua(e.default) end
    local o = #opts > 0 and ("{ " .. table.concat(opts, ", ") .. " }") or nil
    -- without a path: quay.count { opts } (K11), or count(nil, opts)
    if not e.path and o and not e.distinct then return "quay.count " .. o end
    if not e.path then return o and ("quay.count(nil, " .. o .. ")") or "quay.count()" end
    return ("quay.%s(%q%s)"):format(e.fn, e.path, o and (", " .. o) or "")
  end
  error("render: expression " .. tostring(k))
end

function R.value(v)
  if V.is_dec(v) and v.form ~= nil then return V.lua(v.form) end
  if type(v) == "table" and v.kind == "expr" then return R.expr(v.e) end
  if type(v) == "table" and v.kind == "list" then
    local parts = {}
    for i, x in ipairs(v.items) do parts[i] = R.value(x) end
    return "{ " .. table.concat(parts, ", ") .. (#parts > 0 and " }" or "}")
  elseif type(v) == "table" and v.kind == "rec" then
    return ("%s:find(%s)"):format(v.model, V.lua(v.id))
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

-- A named table of expressions: "{ a1 = ..., a2 = ... }" (names sorted).
local function named(list)
  local parts = {}
  for _, a in ipairs(list) do parts[#parts + 1] = { a.name, R.expr(a.e) } end
  table.sort(parts, function(x, y) return x[1] < y[1] end)
  for i, p in ipairs(parts) do parts[i] = p[1] .. " = " .. p[2] end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function annotate(anns)
  local out = ""
  for call = 1, 2 do
    local list = {}
    for _, a in ipairs(anns or {}) do
      if a.call == call and a.with_count then
        out = out .. (":with_count(%q)"):format(a.e.path)
      elseif a.call == call then
        list[#list + 1] = a
      end
    end
    if #list > 0 then out = out .. ":annotate " .. named(list) end
  end
  return out
end

local function values(vals)
  local parts = {}
  for i, p in ipairs(vals) do parts[i] = ("%q"):format(p) end
  return ":values(" .. table.concat(parts, ", ") .. ")"
end

--- The query as one Lua expression (with term instead of q.term when
--- given: q.also's terminals over the same set).
function R.query(q, term)
  local src
  if q.owner then
    src = ("%s:find(%s).%s"):format(q.owner.model, V.lua(q.owner.id), q.owner.rel)
  else
    src = q.model .. ":query()"
  end
  src = src .. steps(q.steps, "")
  if q.grouped then
    src = src .. values(q.vals) .. annotate(q.ann) .. steps(q.post or {}, "")
  else
    src = src .. annotate(q.ann) .. steps(q.post or {}, "")
    if q.vals then src = src .. values(q.vals) end
  end
  if q.distinct then src = src .. ":distinct()" end
  if q.order then
    local terms = {}
    for i, t in ipairs(q.order) do terms[i] = ("%q"):format((t.desc and "-" or "") .. t.path) end
    src = src .. ":order_by(" .. table.concat(terms, ", ") .. ")"
  end
  if q.limit then src = src .. (":limit(%d)"):format(q.limit) end
  if q.offset then src = src .. (":offset(%d)"):format(q.offset) end
  local t = term or q.term
  if t.kind == "pluck" then src = src .. (":pluck(%q)"):format(t.path)
  elseif t.kind == "aggregate" then src = src .. ":aggregate " .. named(t.aggs)
  elseif t.kind == "update" then
    local parts = {}
    for i, x in ipairs(t.set) do parts[i] = x.col .. " = " .. R.value(x.value) end
    src = src .. ":update { " .. table.concat(parts, ", ") .. " }"
  else src = src .. ":" .. t.kind .. "()" end
  return src
end

--- The query and its extra terminals, one Lua expression a line.
function R.queries(q)
  local out = { R.query(q) }
  for _, t in ipairs(q.also or {}) do out[#out + 1] = R.query(q, t) end
  return table.concat(out, "\n            ")
end

-- Shape of a value for signatures.
local function vshape(v)
  if v == NULL then return "null" end
  if type(v) == "table" and v.kind == "expr" then return "F" end
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

-- Shape of an expression: functions and paths, no values.
local function eshape(e)
  if e.kind == "num" then return "k" end
  if e.kind == "col" then return "F(" .. e.path .. ")" end
  if e.kind == "op" then return "(" .. eshape(e.a) .. e.op .. eshape(e.b) .. ")" end
  return e.fn .. "(" .. (e.path or "") .. (e.filter and ",filter" .. cshape(e.filter) or "")
    .. (e.distinct and ",distinct" or "") .. (e.default ~= nil and ",default" or "") .. ")"
end

--- A signature of the query's shape: keys and value kinds, no values.
function R.signature(q)
  local s = (q.owner and (q.owner.model .. "." .. q.owner.rel .. ":") or (q.model .. ":"))
    .. sshape(q.steps)
  if q.grouped then s = s .. " values(" .. table.concat(q.vals, ",") .. ")" end
  for _, a in ipairs(q.ann or {}) do s = s .. " ann " .. eshape(a.e) end
  if q.post then s = s .. " " .. sshape(q.post) end
  if q.vals and not q.grouped then s = s .. " values(" .. table.concat(q.vals, ",") .. ")" end
  if q.distinct then s = s .. " distinct" end
  if q.order then s = s .. " order" end
  if q.limit or q.offset then s = s .. " slice" end
  local t = q.term
  if t.kind == "aggregate" then
    local parts = {}
    for i, a in ipairs(t.aggs) do parts[i] = eshape(a.e) end
    return s .. " aggregate{" .. table.concat(parts, ",") .. "}"
  elseif t.kind == "update" then
    local parts = {}
    for i, x in ipairs(t.set) do
      parts[i] = x.col .. "=" .. (type(x.value) == "table" and x.value.kind == "expr"
        and eshape(x.value.e) or "v")
    end
    return s .. " update{" .. table.concat(parts, ",") .. "}"
  end
  for _, a in ipairs(q.also or {}) do s = s .. " +" .. a.kind end
  return s .. " " .. t.kind
end

--- An instance as Lua source (create calls; NULL columns left out).
function R.instance(inst)
  local out = {}
  for _, name in ipairs(S.order) do
    for _, r in ipairs(inst.rows[name] or {}) do
      local parts = { "id = " .. V.lua(r.id) }
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
  elseif res.kind == "recs" or res.kind == "rows" or res.kind == "row" then
    local cols = res.cols or {}
    local function row(r)
      local parts = {}
      if res.kind == "recs" then parts[1] = "id = " .. tostring(r.id) end
      for _, c in ipairs(cols) do
        if r[c] ~= nil and r[c] ~= NULL then parts[#parts + 1] = c .. " = " .. V.lua(r[c]) end
      end
      for k, v in pairs(r.__extra or {}) do parts[#parts + 1] = k .. " = " .. V.lua(v) .. " (extra)" end
      return "{ " .. table.concat(parts, ", ") .. " }"
    end
    if res.kind == "row" then return "row " .. row(res.row) end
    local s = {}
    for i, r in ipairs(res.rows) do s[i] = row(r) end
    return res.kind .. " {" .. table.concat(s, ", ") .. "}"
      .. (res.ordered and (res.kind == "recs" or res.total) and " (ordered)"
          or res.ordered and " (partly ordered)" or "")
  elseif res.kind == "update" then
    local s = {}
    for _, r in ipairs(res.rows) do
      local parts = { "id = " .. tostring(r.id) }
      for _, fd in ipairs(S.models[res.model].fields) do
        local v = r[fd.name]
        if fd.name ~= "id" and v ~= nil and v ~= NULL then parts[#parts + 1] = fd.name .. " = " .. V.lua(v) end
      end
      s[#s + 1] = "{ " .. table.concat(parts, ", ") .. " }"
    end
    return ("updated %s, then %s rows: %s"):format(tostring(res.n), res.model, table.concat(s, ", "))
  elseif res.kind == "multi" then
    local s = {}
    for i, p in ipairs(res.parts) do s[i] = R.result(p) end
    return table.concat(s, "\n            ")
  end
  return "?"
end

return R
