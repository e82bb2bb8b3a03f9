--[[
test/packaging/check_rockspec.lua
ctest package.rockspec: load quay-<version>-1.rockspec as Lua (as LuaRocks
does: a chunk of global assignments run in an empty environment) and check
the fields LuaRocks requires and the ones this project depends on.

  lua5.4 check_rockspec.lua ROCKSPEC VERSION CMAKE_CACHE
]]
local path, version, cache = arg[1], arg[2], arg[3]
local function check(cond, fmt, ...)
  if not cond then
    io.stderr:write("rockspec: FAIL: ", fmt:format(...), "\n")
    os.exit(1)
  end
end

local spec = {}
local chunk, err = loadfile(path, "t", spec)
check(chunk, "does not load: %s", tostring(err))
local ok, rerr = pcall(chunk)
check(ok, "does not run: %s", tostring(rerr))

-- Required by LuaRocks (rockspec format 3.0).
check(spec.rockspec_format == "3.0", "rockspec_format %s", tostring(spec.rockspec_format))
check(spec.package == "quay", "package %s", tostring(spec.package))
check(spec.version == version .. "-1", "version %s, want %s-1", tostring(spec.version), version)
check(path:match("([^/]+)$") == ("%s-%s.rockspec"):format(spec.package, spec.version),
  "file name %s does not match package and version", path)
check(type(spec.source) == "table" and type(spec.source.url) == "string" and
  spec.source.url:match("^%a[%w+.-]*://"), "source.url missing or not a URL")
check(type(spec.description) == "table" and type(spec.description.summary) == "string",
  "description.summary missing")

-- The license the source files and LICENSE state.
check(spec.description.license == "MIT", "description.license %s, want MIT",
  tostring(spec.description.license))
local lic = io.open((path:match("^(.*)/[^/]*$") or ".") .. "/LICENSE")
check(lic, "no LICENSE file next to the rockspec")
local text = lic:read("a")
lic:close()
check(text:find("MIT License", 1, true) and text:find("the Quay authors", 1, true),
  "LICENSE is not the MIT license of the Quay authors")

-- Lua 5.4 only.
local dep
for _, d in ipairs(spec.dependencies or {}) do
  if d:match("^lua%s") then dep = d end
end
check(dep and dep:find(">= 5.4", 1, true) and dep:find("< 5.5", 1, true),
  "dependencies must pin lua >= 5.4, < 5.5 (got %s)", tostring(dep))

-- Build: cmake, with the LuaRocks directories passed to the CMake cache
-- variables this project reads.
local b = spec.build
check(type(b) == "table" and b.type == "cmake", "build.type must be cmake")
local v = b.variables or {}
local want = {
  CMAKE_INSTALL_PREFIX = "$(PREFIX)",
  LUA_INCDIR = "$(LUA_INCDIR)",
  QUAY_INSTALL_LUA_CDIR = "$(LIBDIR)",
  QUAY_INSTALL_LUA_LDIR = "$(LUADIR)",
}
for k, val in pairs(want) do
  check(v[k] == val, "build.variables.%s = %s, want %s", k, tostring(v[k]), val)
end
check(v.QUAY_BUILD_TESTS == "OFF" and v.QUAY_TEST == "OFF",
  "a LuaRocks build must not build tests or test hooks")
for k, val in pairs(v) do
  check(type(val) == "string", "build.variables.%s is not a string", k)
  for name in val:gmatch("%$%(([%w_]+)%)") do
    local known = { PREFIX = 1, LUA_INCDIR = 1, LUA_LIBDIR = 1, LUALIB = 1,
                    LIBDIR = 1, LUADIR = 1, BINDIR = 1, CONFDIR = 1,
                    LUA_BINDIR = 1, LUA = 1, CMAKE = 1 }
    check(known[name], "build.variables.%s uses unknown LuaRocks variable $(%s)", k, name)
  end
end

-- Every QUAY_* variable passed is an option of this project.
if cache then
  local f = io.open(cache)
  check(f, "cannot read %s", cache)
  local text = f:read("a")
  f:close()
  for k in pairs(v) do
    if k:match("^QUAY_") then
      check(text:find("\n" .. k .. ":", 1, true), "%s is not a cache variable of the project", k)
    end
  end
end
print("rockspec: ok (" .. spec.package .. " " .. spec.version .. ")")
