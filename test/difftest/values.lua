--[[
test/difftest/values.lua
Value pools of the differential tester and the shared NULL sentinel.

Pools hold the awkward values: int64 edges, floats that do not print
short, empty and blank strings, LIKE wildcards, backslashes, quotes and
non-ASCII text (no characters whose case folding reaches ASCII, such as
the Kelvin sign, since icontains on non-ASCII is backend-defined).
]]
local V = {}

-- The oracle's SQL NULL (plain rows never hold Lua nil for a column).
V.NULL = setmetatable({}, { __tostring = function() return "NULL" end,
                            __name = "difftest.NULL" })

V.pool = {
  integer = { 0, 1, -1, 2, 3, 5, 7, 10, 42, -42, 100, 1000, 2147483647, -2147483648,
              4294967296, math.maxinteger, -math.maxinteger, math.mininteger,
              math.maxinteger - 1 },
  number = { 0.0, 1.0, -1.0, 0.5, 1.5, -2.25, 0.1, 0.2, 0.30000000000000004, 3.0, 2.5,
             1e300, -1e300, 1e-300, 123.456, -0.5, 1 / 3, 4503599627370497.0 },
  string = { "", "a", "A", "ab", "Ab", "aB", "abc", "ABC", "abcd", "b", "ba", "bob", "Bob",
             "x%y", "x_y", "50%", "%", "_", "\\", "a\\b", "a\\%", "it's", "\"q\"", "é", "É",
             "ée", "Émile", "naïve", "日本", "日本語", "😀", "a😀b", "a b", " ", "  a", "zz",
             "z", "ZZ", "Zoë", "%_%", "__", "a_c", "a%c", "abc_", "_abc", "x'y", "a\"b" },
  boolean = { true, false },
  datetime = { "2020-01-01 00:00:00", "2020-01-01 00:00:01", "2021-06-15 12:30:00",
               "1999-12-31 23:59:59", "2024-02-29 10:00:00", "2000-01-01 00:00:00",
               "2038-01-19 03:14:08", "1970-01-01 00:00:00", "2020-12-31 23:59:59" },
}
V.pool.text = V.pool.string

-- Decimals (quay.decimal { digits = 10, places = 2 }): boxes holding the
-- value as a scaled integer c at p places (value = c / 10^p; p is 2, the
-- fields' places, unless given: a product of decimals has the sum of their
-- places, docs/reference.md "Decimals are exact"), compared and summed as
-- integers; `form` is how a condition writes it (a short string, an
-- integer), the canonical string (exactly p places) is what Quay reads back.
local DEC = { __name = "difftest.decimal" }
DEC.__tostring = function(d) return V.dec_str(d) end

--- The decimal of c hundredths, or of c at p places (form: the Lua value a
--- condition writes).
function V.dec(c, form, p) return setmetatable({ c = c, form = form, p = p }, DEC) end

--- Is x a decimal box?
function V.is_dec(x) return getmetatable(x) == DEC end

--- The places of a decimal box.
function V.dec_places(d) return d.p or 2 end

--- 10^p as an integer (p <= 18).
function V.pow10(p)
  local m = 1
  for _ = 1, p do m = m * 10 end
  return m
end

--- The canonical string of a decimal box: "-0.10", "7.00" (p places).
function V.dec_str(d)
  local c, p = d.c, V.dec_places(d)
  local sign = c < 0 and "-" or ""
  if c < 0 then c = -c end
  if p == 0 then return sign .. tostring(c) end
  local m = V.pow10(p)
  return ("%s%d.%0" .. p .. "d"):format(sign, c // m, c % m)
end

--- The box of a decimal string as Quay reads it ("12.30", "1.5625"), or nil.
function V.dec_parse(s)
  local sign, i, f = tostring(s):match("^(%-?)(%d+)%.(%d+)$")
  if not i then return nil end
  local c = math.tointeger(tonumber(i)) * V.pow10(#f) + math.tointeger(tonumber(f))
  return V.dec(sign == "-" and -c or c, nil, #f)
end

do
  local cents = { 0, 10, 20, 30, -10, 100, -150, 9999999999, -9999999999, 1234567890,
                  1, -1, 700, 250, 10000, 5, 999999999, -5000000000 }
  V.pool.decimal = {}
  for i, c in ipairs(cents) do V.pool.decimal[i] = V.dec(c) end
end
-- UUIDs as Quay writes and reads them (lower case), the order edges among them.
V.pool.uuid = { "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "0190f5a2-7b3c-7d4e-8f60-a1b2c3d4e5f6", "0190f5a2-7b3c-7d4e-8f60-a1b2c3d4e5f7",
                "0190f5a2-7b3d-7000-8000-000000000001", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
                "a0000000-0000-4000-8000-000000000000", "0a000000-0000-4000-8000-000000000000",
                "deadbeef-dead-4eef-beef-deadbeefdead", "12345678-1234-4234-9234-123456789abc" }
V.pool.date = { "2020-01-01", "2020-01-02", "2024-02-29", "1999-12-31", "2000-01-01",
                "1970-01-01", "2038-01-19", "2020-12-31", "0001-01-01", "9999-12-31" }

-- JSON documents (quay.json): objects (Lua tables with string keys, V.NULL
-- a JSON null), arrays (sequences), strings, numbers, booleans.  No empty
-- tables (an object and an array alike), no keys that are lookup names,
-- no integral floats (1.0 reads back as 1 on one backend).
V.JSON_KEYS = { "a", "b", "c", "s", "n", "t", "x", "k1", "k2" }
V.JSON_SCALARS = { 0, 1, 2, -3, 1.5, 0.1, 100, "1", "x", "", "true", "é", "a b", true, false, 2.0, -3.0 }
V.pool.json = {
  { a = 1, b = { c = "x" }, n = V.NULL, t = true, s = "1" },
  { a = 1.5, b = { c = 2 }, t = false },
  { a = "1", b = "x", x = { 1, 2, 3 } },
  { a = 0, b = { c = true, a = V.NULL }, k1 = "é" },
  { a = true, n = 1, s = "" },
  { b = { c = { a = 1 } }, c = 100, x = "a b" },
  { a = 2, t = "true", k2 = 0.1 },
  { a = false, b = { 1, "x" }, s = "x" },
  { n = V.NULL },
  { a = -3, b = { c = 0 }, x = { a = 1 } },
  { a = 2.0, b = { c = -3.0 }, n = 1.0 },         -- integral floats: numbers as 2 is
  { 1, 2 },
  "x",
  42,
  true,
}

--- Is a JSON table an array (a sequence)?
function V.json_array(t) return t[1] ~= nil end

--- Deep equality of two JSON documents (V.NULL or quay's null for null:
--- isnull(x) tells).
function V.json_eq(a, b, isnull)
  local na, nb = isnull(a), isnull(b)
  if na or nb then return na and nb end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if b[k] == nil or not V.json_eq(v, b[k], isnull) then return false end
  end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- An approximate number (a float sum or average: the backends add in their
-- own order): v within tol.
local APPROX = { __name = "difftest.approx",
                 __tostring = function(a) return ("~%.17g"):format(a.v) end }

--- The approximate value v (tolerance tol).
function V.approx(v, tol) return setmetatable({ v = v, tol = tol }, APPROX) end

--- Is x an approximate value?
function V.is_approx(x) return getmetatable(x) == APPROX end

--- Is s plain ASCII?
function V.ascii(s)
  return not s:find("[\128-\255]")
end

--- Substrings of s cut at UTF-8 character boundaries (all of them, short s).
function V.substrings(s)
  local cps = {}
  for _, c in utf8.codes(s) do cps[#cps + 1] = utf8.char(c) end
  local out = {}
  for i = 1, #cps do
    local acc = ""
    for j = i, #cps do
      acc = acc .. cps[j]
      out[#out + 1] = acc
    end
  end
  return out
end

--- Bytewise / numeric / boolean order of two non-NULL values of one type:
--- -1, 0 or 1.
function V.cmp(a, b)
  if V.is_dec(a) or V.is_dec(b) then
    -- exact, with no floats and no overflow: the whole parts, then the
    -- fractions at the larger places (an integer is a whole part)
    local function parts(x)
      if V.is_dec(x) then
        local m = V.pow10(V.dec_places(x))
        return x.c // m, x.c % m, V.dec_places(x)
      end
      assert(math.type(x) == "integer", "difftest: a decimal compared with " .. tostring(x))
      return x, 0, 0
    end
    local wa, fa, pa = parts(a)
    local wb, fb, pb = parts(b)
    if wa ~= wb then return wa < wb and -1 or 1 end
    local p = math.max(pa, pb)
    a, b = fa * V.pow10(p - pa), fb * V.pow10(p - pb)
  end
  if type(a) == "boolean" then
    a, b = a and 1 or 0, b and 1 or 0
  end
  if a < b then return -1 elseif a > b then return 1 else return 0 end
end

--- Equality of two non-NULL values of one type (1 == 1.0).
function V.eq(a, b)
  return V.cmp(a, b) == 0
end

--- Lua source for a plain value (exact: floats round-trip, int64 edges).
function V.lua(v, quay_null_name)
  if v == V.NULL then return quay_null_name or "quay.null" end
  if V.is_approx(v) then return ("~%s"):format(V.lua(v.v)) end
  if V.is_dec(v) then return ("%q"):format(V.dec_str(v)) end
  if type(v) == "table" then         -- a JSON document
    local parts = {}
    if V.json_array(v) then
      for i, x in ipairs(v) do parts[i] = V.lua(x, quay_null_name) end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      for i, k in ipairs(keys) do parts[i] = ("[%q] = %s"):format(k, V.lua(v[k], quay_null_name)) end
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  local t = math.type(v)
  if t == "integer" then
    if v == math.mininteger then return "math.mininteger" end
    return tostring(v)
  elseif t == "float" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    for _, fmt in ipairs { "%.15g", "%.16g", "%.17g" } do
      local s = fmt:format(v)
      if tonumber(s) == v then
        if not s:find("[%.eEn]") then s = s .. ".0" end
        return s
      end
    end
    return ("%a"):format(v)
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

return V
