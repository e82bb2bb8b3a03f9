--[[
test/difftest/wvalues.lua
Values of the write tester (writes.lua): each drawn value is
{ src = Lua source, canon = the value as stored, bad = true when Quay must
refuse it (validation) }.  canon is the form the oracle keeps and compares:
integers, floats, strings, booleans, decimals as strings with exactly
`places` decimals, dates "YYYY-MM-DD", datetimes in UTC, json documents
as a canonical text (sorted keys), NULL as WV.NULL.  Also decimal
arithmetic on scaled integers and a small JSON reader for raw rows.
]]
local V = require("test.difftest.values")

local WV = {}
local NULL = V.NULL
WV.NULL = NULL
local random = math.random
local function pick(l) return l[random(#l)] end

-- {{ canonical text of a Lua json value: sorted keys, arrays as arrays
function WV.json_canon(v)
  local t = type(v)
  if t == "table" then
    local n = #v
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    if n > 0 and #keys == n then
      local parts = {}
      for i = 1, n do parts[i] = WV.json_canon(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = ("%q:"):format(tostring(k)) .. WV.json_canon(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then return ("%q"):format(v)
  elseif math.type(v) == "float" and v == math.floor(v) and v > -2^53 and v < 2^53 then
    return tostring(math.tointeger(v))
  elseif t == "userdata" then return "null"        -- quay.null inside a document
  end
  return tostring(v)
end

-- A JSON text (as a backend stores it) as a Lua value; null as "null"
-- (the packaging tests' decoder).
function WV.json_decode(s)
  local util = require("test.packaging.util")
  local function fix(v)
    if v == util.null then return "null" end
    if type(v) == "table" then
      for k, x in pairs(v) do v[k] = fix(x) end
    end
    return v
  end
  return fix(util.json_decode(s))
end
-- }}

-- {{ decimals: canonical strings <-> integers scaled by 10^places
--- 10^n as an integer.
function WV.pow10(n)
  local r = 1
  for _ = 1, n do r = r * 10 end
  return r
end

--- The canonical text of a decimal value v (string, integer or float) in
--- a field (digits, places), or nil when Quay must refuse it.
function WV.dec_canon(v, digits, places)
  local s
  if math.type(v) == "integer" then s = tostring(v)
  elseif math.type(v) == "float" then
    s = ("%." .. places .. "f"):format(v)
    if tonumber(s) ~= v then return nil end
  elseif type(v) == "string" then s = v
  else return nil end
  local sign, int, frac = s:match("^(%-?)(%d+)%.?(%d*)$")
  if not sign then return nil end
  if #frac > places then return nil end
  int = int:gsub("^0+", "")
  if #int > digits - places then return nil end
  if int == "" then int = "0" end
  frac = frac .. ("0"):rep(places - #frac)
  if tonumber(int) == 0 and tonumber(frac) == 0 then sign = "" end
  return sign .. int .. (places > 0 and ("." .. frac) or "")
end

--- Canonical decimal text -> integer scaled by 10^places.
function WV.dec_scaled(s, places)
  local sign, int, frac = s:match("^(%-?)(%d+)%.?(%d*)$")
  local n = math.tointeger(tonumber(int .. frac))
  return sign == "-" and -n or n
end

--- Integer scaled by 10^places -> canonical text, or nil past digits.
function WV.dec_text(n, digits, places)
  local a = n < 0 and -n or n
  local p = WV.pow10(places)
  local int, frac = a // p, a % p
  if #tostring(int) > digits - places then return nil end
  local s = tostring(int)
  if places > 0 then s = s .. "." .. ("%0" .. places .. "d"):format(frac) end
  return (n < 0 and "-" or "") .. s
end

--- x / 10^places rounded to an integer, ties away from zero.
function WV.round_scaled(n, places)
  local p = WV.pow10(places)
  local a = n < 0 and -n or n
  local q = (a + p // 2) // p
  return n < 0 and -q or q
end
-- }}

local DATES = { "2024-02-29", "2000-01-01", "1999-12-31", "2023-06-30" }
local BAD_DATES = { "2023-02-29", "2024-02-30", "2024-13-01", "soon" }
local DATETIMES = {
  { "2024-03-01T01:30:00+02:00", "2024-02-29 23:30:00" },
  { "2020-01-01 00:00:00", "2020-01-01 00:00:00" },
  { "2021-06-15T12:30:00Z", "2021-06-15 12:30:00" },
  { "2021-06-15 12:30:00.999", "2021-06-15 12:30:00" },
  { "1999-12-31 23:59:59", "1999-12-31 23:59:59" },
}
local BAD_DATETIMES = { "2024-03-01", "2023-02-29 10:00:00", "2024-03-01 10:00" }
local STRINGS = { "", "a", "ab", "Bob", "é", "日本", "x'y", 'a"b', "%_", "a\\b", "😀" }
local INTS = { 0, 1, -1, 2, 3, 7, 10, 42, -42, 100, 999 }
local NUMBERS = { 0.5, -2.25, 1e300, 0.1, 1 / 3, 123.456, 0.0 }
local JSONS = { "{ k = 1 }", '{ s = "x", arr = { 1, 2 } }', '{ nested = { a = true, b = "é" } }',
                '"str"', "{ 1, 2, 3 }", "{ n = -5, t = false }" }

local function val(src, canon) return { src = src, canon = canon } end
local function bad(src) return { src = src, bad = true } end

local function string_of(maxc)
  local r = random()
  if r < 0.15 then return ("é"):rep(maxc) end
  if r < 0.3 then
    local s = ""
    for _ = 1, random(1, maxc) do s = s .. string.char(random(97, 122)) end
    return s
  end
  return pick(STRINGS)
end

local function decimal_src(fd)
  local places = fd.places
  local maxint = WV.pow10(fd.digits - places) - 1
  local r = random()
  if r < 0.25 then
    local n = random(-30, 30)
    return tostring(n), n
  elseif r < 0.4 then
    local f = ({ 0.5, 0.25, -1.75, 3.0, 12.5 })[random(5)]
    return V.lua(f), f
  elseif r < 0.55 then
    local s = tostring(maxint) .. "." .. ("9"):rep(places)
    if random() < 0.5 then s = "-" .. s end
    return ("%q"):format(s), s
  else
    local s = tostring(random(-99, 99))
    local k = random(0, places)
    if k > 0 then
      local frac = ""
      for _ = 1, k do frac = frac .. random(0, 9) end
      s = s .. "." .. frac
    end
    if s:match("^%-0%.?0*$") then s = s:sub(2) end
    return ("%q"):format(s), s
  end
end

--- A value for field fd.  ctx.bad: draw a value Quay must refuse (when the
--- type has one).  ctx.ids(model): existing ids of a model, for keys.
function WV.draw(fd, ctx)
  local t = fd.t
  if ctx.bad then
    if t == "string" then
      return pick { bad(("%q"):format(("x"):rep(fd.max + 1))), bad(("%q"):format(("é"):rep(fd.max + 1))),
                    bad("42"), bad('"\\xff"') }
    elseif t == "int" then return pick { bad("1.5"), bad('"seven"') }
    elseif t == "number" then return pick { bad("0/0"), bad('"x"') }
    elseif t == "decimal" then
      local toolong = tostring(WV.pow10(fd.digits - fd.places))
      return pick { bad(("%q"):format("1." .. ("1"):rep(fd.places + 1))), bad('"abc"'),
                    bad("0.30000000000000004"), bad(("%q"):format(toolong)) }
    elseif t == "date" then return bad(("%q"):format(pick(BAD_DATES)))
    elseif t == "datetime" then return bad(("%q"):format(pick(BAD_DATETIMES)))
    elseif t == "bool" then return bad('"yes"')
    end
    if not fd.null then return bad("quay.null") end
  end
  if fd.null and random() < 0.15 then return val("quay.null", NULL) end
  if t == "string" or t == "text" then
    if fd.unique or (ctx.clean and fd.name == "label") then
      ctx.serial = (ctx.serial or 0) + 1
      if fd.unique and random() < 0.15 and ctx.codes and #ctx.codes > 0 then
        local c = pick(ctx.codes)
        return val(("%q"):format(c), c)
      end
      local c = (fd.unique and "c" or "L") .. ctx.serial
      return val(("%q"):format(c), c)
    end
    local s = t == "text" and pick(STRINGS) .. pick(STRINGS) or string_of(fd.max)
    return val(("%q"):format(s), s)
  elseif t == "int" then
    if random() < 0.1 then return val("3.0", 3) end
    local n = pick(INTS)
    return val(V.lua(n), n)
  elseif t == "number" then
    if random() < 0.1 then return val("2", 2.0) end
    local x = pick(NUMBERS)
    return val(V.lua(x), x)
  elseif t == "decimal" then
    local src, v = decimal_src(fd)
    return val(src, assert(WV.dec_canon(v, fd.digits, fd.places), src))
  elseif t == "date" then
    local d = pick(DATES)
    return val(("%q"):format(d), d)
  elseif t == "datetime" then
    local d = pick(DATETIMES)
    return val(("%q"):format(d[1]), d[2])
  elseif t == "bool" then
    local b = random() < 0.5
    return val(tostring(b), b)
  elseif t == "json" then
    local src = pick(JSONS)
    return val(src, WV.json_canon(load("return " .. src)()))
  elseif t == "fk" then
    local ids = ctx.ids(fd.target)
    if #ids == 0 or (not ctx.clean and random() < 0.03) then return val("999999", 999999) end
    local id = pick(ids)
    return val(tostring(id), id)
  end
  error("draw: " .. tostring(t))
end

--- The canonical form of a value read from a record (field fd), or nil
--- and a message when it has the wrong type or shape.
function WV.from_record(fd, v)
  if v == nil then return NULL end
  local t = fd.t
  if t == "int" or t == "fk" then
    if math.type(v) ~= "integer" then return nil, "not an integer: " .. tostring(v) end
    return v
  elseif t == "number" then
    if math.type(v) ~= "float" then return nil, "not a float: " .. tostring(v) end
    return v
  elseif t == "bool" then
    if type(v) ~= "boolean" then return nil, "not a boolean" end
    return v
  elseif t == "json" then
    return WV.json_canon(v)
  elseif t == "soft" then
    return "set"
  elseif type(v) ~= "string" then
    return nil, "not a string: " .. tostring(v)
  end
  return v
end

return WV
