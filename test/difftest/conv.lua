--[[
test/difftest/conv.lua
Quay's randomized tester of the text conversions of a migration.

  lua5.4 test/difftest/conv.lua PG_URL [--seed S] [--cases N] [--verbose]

A migration that changes a string field to another type converts each
value "as PostgreSQL's casts do, on both backends" (docs/reference.md,
"Destructive steps").  PostgreSQL converts with its own input functions;
SQLite has none that refuse, so Quay's driver converts there (quay_conv,
engine/types.c quay__text_convert).  This tester draws random texts near
each type's forms (signs, white space, points, exponents, hex, words,
dates of every digit count, uuids with and without hyphens or braces,
JSON snippets), converts each on PostgreSQL, as the migration does, and
through quay_conv on SQLite, and compares: PostgreSQL is the independent
truth.  A text PostgreSQL refuses must be refused on SQLite, and one it
takes must read the same.  The deviations the reference names are
counted, not failed: a NaN into a number or decimal (Quay refuses it on
both backends), and PostgreSQL's other date styles (Jan 2 2024), which
SQLite refuses.  The last line is "N passed, M failed"; exit status 1 on
a failure.
Environment: QUAY_BUILD_DIR (default <root>/build) holds quay/core.so.
]]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."
local build = os.getenv("QUAY_BUILD_DIR") or (root .. "/build")
package.cpath = build .. "/?.so;" .. package.cpath
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
local quay = require("quay")

local url, seed, cases, verbose = nil, 1, 2000, false
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--seed" then seed = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--cases" then cases = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--verbose" then verbose = true
    elseif a == "--help" then print((debug.getinfo(1, "S").source:match("%-%-%[%[(.-)%]%]") or "")); os.exit(0)
    elseif not url then url = a
    else io.stderr:write("conv.lua: unknown argument " .. a .. "\n"); os.exit(2) end
    i = i + 1
  end
end
if not url or not url:match("^postgres") then
  print("skipped: conv.lua needs a PostgreSQL URL (its truth)")
  os.exit(77)
end
math.randomseed(seed)
local R = math.random

local pg = quay.open(url)
local sq = quay.open("sqlite::memory:")

local function pick(t) return t[R(#t)] end
local function digits(n)
  local s = {}
  for i = 1, n do s[i] = tostring(R(0, 9)) end
  return table.concat(s)
end
local function space()
  return pick { "", "", "", " ", "  ", "\t", "\n" }
end

-- Texts near a number's forms.
local function gen_number()
  local k = R(12)
  if k == 1 then return pick { "inf", "-inf", "+inf", "Infinity", "-INFINITY", "infinit", "nan", "NaN",
                               "-nan", "nan(1)", "in", "infinityx", "" } end
  if k == 2 then return "0x" .. pick { "10", "1A", "1p3", "g", "", "1.8p1" } end
  local s = pick { "", "", "-", "+", "--", "+-" }
  local a = R(3) == 1 and "" or digits(R(0, 22))
  s = s .. a
  if R(2) == 1 then s = s .. "." .. (R(3) == 1 and "" or digits(R(0, 20))) end
  if R(3) == 1 then s = s .. pick { "e", "E" } .. pick { "", "+", "-" } .. (R(5) == 1 and "" or tostring(R(0, 400))) end
  if R(15) == 1 then s = s .. pick { "x", "a", ",", ".", " 1" } end
  return space() .. s .. space()
end

local function gen_bool()
  local w = pick { "true", "false", "yes", "no", "on", "off", "1", "0", "t", "f", "y", "n",
                   "tr", "tru", "fa", "fals", "ye", "o", "of", "offf", "yess", "2", "", "null", "truex" }
  if R(2) == 1 then w = w:upper() end
  if R(4) == 1 then w = w:sub(1, 1):upper() .. w:sub(2) end
  return space() .. w .. space()
end

local function gen_date(with_time)
  local k = R(10)
  if k == 1 then return pick { "Jan 2 2024", "2024/01/02", "01/02/2024", "2024.01.02", "today",
                               "epoch", "abc", "", "2024-01", "2024", "-2024-01-02" } end
  local y = R(6) == 1 and digits(R(1, 6)) or tostring(R(1, 2100))
  if #y < 4 and R(2) == 1 then y = string.rep("0", 4 - #y) .. y end
  local mo = tostring(R(0, 13))
  local d = tostring(R(0, 32))
  if R(2) == 1 and #mo == 1 then mo = "0" .. mo end
  if R(2) == 1 and #d == 1 then d = "0" .. d end
  local s
  if R(8) == 1 and #y == 4 and #mo == 2 and #d == 2 then s = y .. mo .. d
  else s = y .. "-" .. mo .. "-" .. d end
  if with_time and R(4) > 1 then
    local sep = pick { " ", "T", "t", "  ", "_" }
    local h, mi, se = R(0, 25), R(0, 61), R(0, 61)
    s = s .. sep .. ("%02d:%02d"):format(h, mi)
    if R(5) > 1 then s = s .. (":%02d"):format(se) end
    if R(4) == 1 then s = s .. "." .. digits(R(1, 7)) end
    if R(2) == 1 then
      s = s .. pick { "Z", "z", "+02:00", "-05:30", "+0200", "+02", "-11:00", "+14:00", "+25:00", " UTC", "+2" }
    end
  end
  return space() .. s .. space()
end

local function gen_uuid()
  local hex = {}
  for i = 1, 32 do hex[i] = string.format("%x", R(0, 15)) end
  local h = table.concat(hex)
  if R(2) == 1 then h = h:upper() end
  local k = R(8)
  local s
  if k <= 3 then s = h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21)
  elseif k == 4 then s = h
  elseif k == 5 then
    local parts = {}
    for i = 1, 32, 4 do parts[#parts + 1] = h:sub(i, i + 3) end
    s = table.concat(parts, "-")
  elseif k == 6 then s = "{" .. h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) .. "-" .. h:sub(21) .. "}"
  elseif k == 7 then s = h:sub(1, R(0, 40))
  else s = h:sub(1, 8) .. "--" .. h:sub(9) end
  if R(6) == 1 then s = " " .. s end
  if R(10) == 1 then s = s:sub(1, 5) .. "g" .. s:sub(7) end
  return s
end

local function gen_json()
  local atoms = { "1", "-2.5", "1e3", "true", "false", "null", '"x"', '"é"', "[]", "{}", '[1,"a",null]',
                  '{"a":1}', '{"b":[true,{"c":null}]}', "01", "1.", ".5", "tru", "'a'", "{a:1}", "[1,]",
                  '{"a":1,}', '"\\u00e9"', '"\\ud800"', "NaN", "", "abc", '{"a":1,"a":2}', "[1 2]" }
  local s = pick(atoms)
  if R(4) == 1 then s = "[" .. s .. "," .. pick(atoms) .. "]" end
  return space() .. s .. space()
end

-- Quay's conversion of text s to type code t on SQLite (nil: refused).
local function quay_conv(code, places, ndigits, s)
  local r = sq:rows("SELECT quay_conv(?, ?, ?, ?) AS v", { s, code, places, ndigits })[1].v
  if r == quay.null then return nil end
  return r
end

-- PostgreSQL's conversion (nil: refused), as migrate.c's USING writes it.
local function pg_conv(sqltype, s)
  local ok, r = pcall(function()
    return pg:rows("SELECT (" .. sqltype:gsub("%$", "CAST(? AS text)") .. ")::text AS v", { s })[1].v
  end)
  if not ok then
    if type(r) == "table" and r.code == "sql" then return nil end
    error(r)
  end
  if r == quay.null then return nil end
  return r
end

-- The engine's codes of the field types (quay.h QUAY_T_*), found by asking
-- quay_conv with each candidate code what it does with a text only one
-- type takes.
local codes = {}
do
  local probe = { integer = { "12", 12 }, number = { "1.5", 1.5 }, boolean = { "yes", 1 },
                  date = { "20240102", "2024-01-02" }, datetime = { "2024-01-02T03:04:05Z", "2024-01-02 03:04:05" },
                  uuid = { "{0190F0E2-1234-7ABC-8DEF-0123456789AB}", "0190f0e2-1234-7abc-8def-0123456789ab" },
                  json = { ' {"a" : 1} ', '{"a":1}' } }
  for code = 1, 40 do
    for name, p in pairs(probe) do
      local ok, v = pcall(quay_conv, code, 0, 0, p[1])
      if ok and v == p[2] and not codes[name] then
        if name ~= "integer" or math.type(v) == "integer" then codes[name] = code end
      end
    end
    local ok, v = pcall(quay_conv, code, 2, 6, "1.5")
    if ok and v == 150 and not codes.decimal then codes.decimal = code end
  end
  for _, name in ipairs { "integer", "number", "decimal", "boolean", "date", "datetime", "uuid", "json" } do
    assert(codes[name], "conv.lua: no code found for " .. name)
  end
end

-- Compare one text; returns "ok", "allowed <why>" or "mismatch <detail>".
local kinds = {
  { name = "integer", gen = gen_number, pg = "CAST($ AS bigint)",
    same = function(q, p) return math.type(q) == "integer" and tostring(q) == p end },
  { name = "number", gen = gen_number, pg = "CAST($ AS double precision)",
    same = function(q, p)
      local x = tonumber(p) or (p == "Infinity" and math.huge) or (p == "-Infinity" and -math.huge)
      return type(q) == "number" and x == q
    end,
    allowed = function(s, p) return p == "NaN" and "NaN (refused by Quay)" end },
  { name = "decimal", gen = gen_number, pg = "CAST($ AS numeric(12, 3))", places = 3, ndigits = 12,
    same = function(q, p)
      if math.type(q) ~= "integer" then return false end
      local neg = q < 0
      local a = tostring(neg and -q or q)
      a = string.rep("0", 4 - #a) .. a
      local t = (neg and "-" or "") .. a:sub(1, -4) .. "." .. a:sub(-3)
      return t == p
    end,
    allowed = function(s, p) return p == "NaN" and "NaN (refused by Quay)" end },
  { name = "boolean", gen = gen_bool, pg = "CAST($ AS boolean)",
    same = function(q, p) return (q == 1 and p == "true") or (q == 0 and p == "false") end },
  { name = "date", gen = function() return gen_date(false) end, pg = "CAST($ AS date)",
    same = function(q, p) return q == p end,
    allowed = function(s, p, q) return q == nil and "a date style SQLite refuses" end },
  { name = "datetime", gen = function() return gen_date(true) end,
    pg = "date_trunc('second', CAST($ AS timestamptz)) AT TIME ZONE 'UTC'",
    same = function(q, p) return q == p end,
    allowed = function(s, p, q) return q == nil and "a datetime style SQLite refuses" end },
  { name = "uuid", gen = gen_uuid, pg = "CAST($ AS uuid)",
    same = function(q, p) return q == p end },
  { name = "json", gen = gen_json, pg = "CAST($ AS jsonb)",
    same = function(q, p) return type(q) == "string" end },      -- acceptance only
}

local passed, failed, allowed = 0, 0, {}
for i = 1, cases do
  local k = kinds[(i - 1) % #kinds + 1]
  local s = k.gen()
  local q = quay_conv(codes[k.name], k.places or 0, k.ndigits or 0, s)
  local p = pg_conv(k.pg, s)
  local verdict
  if p == nil and q == nil then
    verdict = "ok"
  elseif p ~= nil and q ~= nil and k.same(q, p) then
    verdict = "ok"
  else
    local why = k.allowed and k.allowed(s, p, q)
    if why and p ~= nil then
      allowed[why] = (allowed[why] or 0) + 1
      verdict = "ok"
      if verbose then print(("allowed (%s) %s %q -> %s"):format(why, k.name, s, tostring(p))) end
    else
      verdict = ("MISMATCH %s %q: PostgreSQL %s, SQLite %s"):format(k.name, s,
        p == nil and "refuses" or ("reads " .. tostring(p)), q == nil and "refuses" or ("reads " .. tostring(q)))
    end
  end
  if verdict == "ok" then
    passed = passed + 1
    if verbose then print(("ok %s %q -> %s / %s"):format(k.name, s, tostring(p), tostring(q))) end
  else
    failed = failed + 1
    print(verdict)
    if failed >= 30 then break end
  end
end
local a = {}
for why, n in pairs(allowed) do a[#a + 1] = ("%s %d"):format(why, n) end
table.sort(a)
if #a > 0 then print("deviations the reference names: " .. table.concat(a, ", ")) end
print(("%d passed, %d failed"):format(passed, failed))
pg:close()
sq:close()
os.exit(failed == 0 and 0 or 1)
