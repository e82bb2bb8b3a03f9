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
