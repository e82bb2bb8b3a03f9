--[[
test/packaging/check_types.lua
ctest package.types: the LuaLS annotation file types/quay.lua

  1. loads with lua5.4 (syntax) and starts with ---@meta;
  2. declares the classes of the API: quay.Db, quay.Model, quay.Record,
     quay.QuerySet, quay.RelatedSet, quay.Error;
  3. annotates every method the binding really exposes on each object,
     and no method that does not exist (compared with the metatables of
     live objects);
  4. with the quay command: `quay types MODELS` of types_models.lua loads,
     starts with ---@meta, and names every field, relation, method and
     scope of those models in the classes of their records, query sets
     and models (compared with describe() of the same models).

  lua5.4 check_types.lua types/quay.lua [QUAY_BINARY]
                                        (quay.core on LUA_CPATH)
]]
local path = arg[1]
local fails = 0
local function check(cond, fmt, ...)
  if not cond then
    fails = fails + 1
    io.stderr:write("types: FAIL: ", fmt:format(...), "\n")
  end
end

local f = assert(io.open(path))
local text = f:read("a")
f:close()
local chunk, err = load(text, "@" .. path, "t", {})
check(chunk, "syntax: %s", tostring(err))
check(text:match("^%-%-%-@meta"), "first line must be ---@meta")

-- Classes and the methods annotated on each.
local classes, annotated = {}, {}
for name in text:gmatch("\n%-%-%-@class ([%w_.]+)") do classes[name] = true end
local var2class = {}
for var, cls in text:gmatch("\n%-%-%-@class ([%w_.]+)[^\n]*\nlocal (%w+) = {}") do
  var2class[cls] = var
end
for var, method in text:gmatch("\nfunction (%w+)[:.]([%w_]+)%(") do
  annotated[var] = annotated[var] or {}
  annotated[var][method] = true
end
for _, cls in ipairs { "quay.Db", "quay.Model", "quay.Record", "quay.QuerySet",
                       "quay.RelatedSet", "quay.Error" } do
  check(classes[cls], "no ---@class %s", cls)
end

-- Live objects.
local quay = require("quay")
local db = quay.open("sqlite::memory:")
local Tag = db:model("Tag", { name = quay.string() })
local Post = db:model("Post", { tags = quay.many_to_many("Tag") })
db:create_tables()
local post = Post:create {}
local set = post.tags
local qs = Post:query()

local function keys(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and k:sub(1, 2) ~= "__" then
      out[k] = true
    end
  end
  return out
end
local function upvalue_table(fn, i)
  local _, t = debug.getupvalue(fn, i or 1)
  return t
end
local live = {
  Db = keys(getmetatable(db).__index),
  QuerySet = keys(getmetatable(qs).__methods),
  Model = keys(upvalue_table(getmetatable(Post).__index)),
  Record = keys(upvalue_table(getmetatable(post).__index, 2)),  -- shared methods
  RelatedSet = keys(upvalue_table(getmetatable(set).__index)),
  quay = keys(quay),
}
live.Model.query = true               -- answered by the query-set fallback

local inherits = { Model = "QuerySet", RelatedSet = "QuerySet" }
for var, methods in pairs(live) do
  local ann = annotated[var] or {}
  local base = annotated[inherits[var]] or {}
  for m in pairs(methods) do
    check(ann[m] or base[m], "%s.%s exists but is not annotated", var, m)
  end
  for m in pairs(ann) do
    check(methods[m], "%s.%s is annotated but does not exist", var, m)
  end
end
-- Every quay.* value that is not a function is a documented field.
for k, v in pairs(quay) do
  if type(v) ~= "function" then
    check(text:find("---@field " .. k .. " ", 1, true), "quay.%s has no ---@field", k)
  end
end
-- Model and RelatedSet inherit the query-set methods.
check(text:find("---@class quay.Model: quay.QuerySet", 1, true), "Model must extend QuerySet")
check(text:find("---@class quay.RelatedSet: quay.QuerySet", 1, true), "RelatedSet must extend QuerySet")
db:close()

-- 4. quay types
local quay_bin = arg[2]
if quay_bin then
  local dir = arg[0]:match("^(.*)/[^/]*$") or "."
  local models = dir .. "/types_models.lua"
  local out = os.tmpname()
  local ok = os.execute(("%q types %q > %q"):format(quay_bin, models, out))
  check(ok, "quay types %s failed", models)
  local fh = assert(io.open(out))
  local gen = fh:read("a")
  fh:close()
  os.remove(out)
  local c2, e2 = load(gen, "=quay types", "t", {})
  check(c2, "the annotations do not load: %s", tostring(e2))
  check(gen:match("^%-%-%-@meta"), "quay types: first line must be ---@meta")
  -- every class body: the lines after its ---@class up to the next class
  local classes2 = {}
  local current
  for line in gen:gmatch("[^\n]+") do
    local c = line:match("^%-%-%-@class ([%w_]+)")
    if c then
      current = {}
      classes2[c] = current
    elseif current then
      current[#current + 1] = line
    end
  end
  local function has(cls, pat)
    for _, line in ipairs(classes2[cls] or {}) do
      if line:find(pat) then return true end
    end
    return false
  end
  local db2 = quay.open("sqlite::memory:")
  local M = dofile(models)(db2)
  local d = db2:describe()
  for name in pairs(M) do
    local m = d[name]
    check(classes2[name], "no class %s", name)
    for _, c in ipairs { "QuerySet", "Set", "Model" } do
      check(classes2[name .. c], "no class %s%s", name, c)
    end
    check(has("Models", "^%-%-%-@field " .. name .. " " .. name .. "Model$"),
      "Models has no field %s", name)
    for _, f in ipairs(m.fields) do
      check(has(name, "^%-%-%-@field " .. f.name .. " "), "%s.%s is not annotated", name, f.name)
    end
    for _, r in ipairs(m.relations) do
      check(has(name, "^%-%-%-@field " .. r.name .. " "), "%s.%s is not annotated", name, r.name)
      local target = r.many and (r.target .. "Set") or (r.target .. "?")
      check(has(name, "^%-%-%-@field " .. r.name .. " " .. target:gsub("%?", "%%?") .. "$"),
        "%s.%s is not a %s", name, r.name, target)
    end
    for _, meth in ipairs(m.methods) do
      check(has(name, "^function " .. name .. ":" .. meth .. "%("),
        "method %s:%s is not annotated", name, meth)
    end
    for _, s in ipairs(m.scopes) do
      for _, c in ipairs { "QuerySet", "Set", "Model" } do
        check(has(name .. c, "^function " .. name .. c .. ":" .. s .. "%("),
          "scope %s%s:%s is not annotated", name, c, s)
      end
    end
  end
  check(has("Post", "^function Post:excerpt%(n%)"), "Post:excerpt(n): parameters")
  check(has("PostQuerySet", "^function PostQuerySet:titled%(prefix%)"), "titled(prefix)")
  check(has("PostQuerySet", "^%-%-%-@return Post%[%]$"), "PostQuerySet:all() returns Post[]")
  check(has("Post", "^%-%-%-@field author User%?$"), "post.author is a User")
  check(has("User", "^%-%-%-@field posts PostSet$"), "user.posts is a PostSet")
  db2:close()
end
if fails > 0 then os.exit(1) end
print("types: ok")
