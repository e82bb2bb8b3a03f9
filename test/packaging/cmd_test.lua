--[[
test/packaging/cmd_test.lua
Tests of the quay command (bindings/quay_main.c), one ctest per case:

  lua5.4 cmd_test.lua QUAY_BINARY SOURCE_DIR VERSION CASE

Cases: version, help, usage, run, stdin, describe, describe_error,
error_quay, error_lua, error_syntax, missing_file, test_app, test_fail,
test_no_busted.  The module must be
loadable by this interpreter too (LUA_CPATH/LUA_PATH), since `describe`
is compared with db:describe() run in-process.
]]
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local util = require("util")

local quay_bin, src, version, case = arg[1], arg[2], arg[3], arg[4]
assert(case, "usage: cmd_test.lua QUAY_BINARY SOURCE_DIR VERSION CASE")

local function check(cond, fmt, ...)
  if not cond then error(fmt:format(...), 2) end
end

--- Write a fixture script; returns its path.
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. util.shquote(tmpdir)))
local function fixture(name, text)
  local path = tmpdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

--- Expect a failure: status, and a first stderr line naming file:line.
local function expect_error(r, status, file, line, extra)
  check(r.status == status, "exit status %d, want %d; stderr:\n%s",
    r.status, status, r.stderr)
  local first = r.stderr:match("^[^\n]*")
  local want = file .. ":" .. line .. ":"
  check(first:find(want, 1, true), "first stderr line %q does not name %s",
    first, want)
  check(first:find("^quay: "), "stderr %q does not start with 'quay: '", first)
  if extra then
    check(first:find(extra, 1, true), "first stderr line %q lacks %q",
      first, extra)
  end
end

local cases = {}

function cases.version()
  local r = util.run { quay_bin, "--version" }
  check(r.status == 0, "status %d", r.status)
  check(r.stdout:find("^quay " .. version:gsub("%.", "%%.") .. " %(Lua 5%.4"),
    "--version printed %q", r.stdout)
end

function cases.help()
  local r = util.run { quay_bin, "--help" }
  check(r.status == 0, "status %d", r.status)
  check(r.stdout:find("quay describe script.lua", 1, true), "%q", r.stdout)
end

function cases.usage()
  for _, argv in ipairs { { quay_bin }, { quay_bin, "describe" },
                          { quay_bin, "--bogus" } } do
    local r = util.run(argv)
    check(r.status == 2, "%s: status %d, want 2", table.concat(argv, " "),
      r.status)
    check(r.stderr:find("^usage: quay"), "%q", r.stderr)
  end
end

-- Arguments reach the script as `...` and as `arg`, as with lua(1).
local args_script = [[
local a, b = ...
assert(select("#", ...) == 2, "two arguments expected")
assert(arg[0]:find("args%.lua$") or arg[0] == "-", "arg[0] = " .. tostring(arg[0]))
assert(arg[1] == a and arg[2] == b)
local quay = require("quay")
local db <close> = quay.open("sqlite::memory:")
local Item = db:model("Item", { name = quay.string() })
db:create_tables()
Item:create { name = a }
Item:create { name = b }
print("items", Item:count(), Item:order_by("-name"):first().name)
]]

function cases.run()
  local r = util.run { quay_bin, fixture("args.lua", args_script), "apple",
                       "pear tree" }
  check(r.status == 0, "status %d: %s", r.status, r.stderr)
  check(r.stdout == "items\t2\tpear tree\n", "stdout %q", r.stdout)
  -- The bundled example runs too.
  r = util.run { quay_bin, src .. "/examples/blog.lua" }
  check(r.status == 0, "blog.lua: status %d: %s", r.status, r.stderr)
  check(r.stdout:find("posts tagged lua:\t3", 1, true), "%q", r.stdout)
end

function cases.stdin()
  local r = util.run({ quay_bin, "-", "apple", "pear" }, args_script)
  check(r.status == 0, "status %d: %s", r.status, r.stderr)
  check(r.stdout == "items\t2\tpear\n", "stdout %q", r.stdout)
end

function cases.describe()
  local script = src .. "/examples/blog.lua"
  local r = util.run { quay_bin, "describe", script }
  check(r.status == 0, "status %d: %s", r.status, r.stderr)
  -- stdout is nothing but the JSON; the script's prints went to stderr.
  check(r.stderr:find("posts tagged lua:", 1, true),
    "script output not on stderr: %q", r.stderr)
  local ok, json = pcall(util.json_decode, r.stdout)
  check(ok, "stdout is not JSON (%s):\n%s", tostring(json), r.stdout)
  -- The same as db:describe() of the same script run in-process.
  local quay = require("quay")
  local open, dbs = quay.open, {}
  quay.open = function(...) local db = open(...); dbs[#dbs + 1] = db; return db end
  local print0 = print
  print = function() end
  arg = { [0] = script }
  local chunk = assert(loadfile(script))
  chunk()
  print, quay.open = print0, open
  check(#dbs == 1, "%d dbs", #dbs)
  local want = dbs[1]:describe()
  local same, where = util.deep_equal(json, want)
  check(same, "describe JSON differs from db:describe() at %s", tostring(where))
  -- The contract's shape (docs/reference.md "Schema": describe()).
  check(json.User.table == "users" and json.User.description == "someone who writes",
    "User entry")
  check(json.User.fields[1].name == "id" and json.User.fields[1].primary_key,
    "implicit id first")
  local kinds = {}
  for _, rel in ipairs(json.Post.relations) do kinds[rel.name] = rel.kind end
  check(kinds.author == "belongs_to" and kinds.tags == "many_to_many", "kinds")
  -- A script that opens no database describes as an empty object.
  r = util.run { quay_bin, "describe", fixture("none.lua", "local x = 1\n") }
  check(r.status == 0 and r.stdout == "{}\n", "empty describe: %d %q",
    r.status, r.stdout)
end

function cases.describe_error()
  local path = fixture("bad_decl.lua", [[
local quay = require("quay")
local db = quay.open("sqlite::memory:")
db:model("Post", { author = quay.belongs_to("Nobody") })
db:create_tables()
]])
  local r = util.run { quay_bin, "describe", path }
  expect_error(r, 1, "bad_decl.lua", 4, "(declaration)")
  check(r.stdout == "", "stdout not empty: %q", r.stdout)
end

function cases.error_quay()
  local path = fixture("bad_field.lua", [[
local quay = require("quay")
local db = quay.open("sqlite::memory:")
local User = db:model("User", { name = quay.string() })
db:create_tables()

User:create { nam = "Jane" }
]])
  local r = util.run { quay_bin, path }
  expect_error(r, 1, "bad_field.lua", 6, "(unknown_field)")
  check(r.stderr:find("nam", 1, true), "message does not name the field")
  check(r.stderr:find("stack traceback:", 1, true), "no traceback")
end

function cases.error_lua()
  local path = fixture("boom.lua", [[
local function inner()
  local t = nil
  return t.field
end
inner()
]])
  local r = util.run { quay_bin, path }
  expect_error(r, 1, "boom.lua", 3, "attempt to index")
end

function cases.error_syntax()
  local path = fixture("syntax.lua", "local a = 1\nlocal b = = 2\n")
  local r = util.run { quay_bin, path }
  expect_error(r, 1, "syntax.lua", 2)
end

function cases.missing_file()
  local r = util.run { quay_bin, tmpdir .. "/no-such-script.lua" }
  check(r.status == 1, "status %d", r.status)
  check(r.stderr:find("^quay: cannot open .*no%-such%-script%.lua"), "%q", r.stderr)
end

-- `quay test`: busted inside the quay interpreter.  PATH starts with a
-- directory whose `lua` and `busted` fail as Lua 5.1's would (Debian with
-- luarocks installed), to show that none is used.
local function hostile_path()
  local bin = tmpdir .. "/bin"
  assert(os.execute("mkdir -p " .. util.shquote(bin)))
  for _, name in ipairs { "lua", "busted", "lua5.4" } do
    local path = fixture("bin/" .. name, "#!/bin/sh\n" ..
      "echo \"$0: undefined symbol: lua_absindex\" >&2\nexit 3\n")
    assert(os.execute("chmod +x " .. util.shquote(path)))
  end
  return bin .. ":" .. os.getenv("PATH")
end

-- Run `quay test ARGS` in directory cwd.
local function quay_test(cwd, args, env)
  local cmd = "cd " .. util.shquote(cwd) .. " && exec " ..
    util.shquote(quay_bin) .. " test"
  for _, a in ipairs(args or {}) do cmd = cmd .. " " .. util.shquote(a) end
  local argv = { "env", "PATH=" .. hostile_path() }
  for _, kv in ipairs(env or {}) do argv[#argv + 1] = kv end
  argv[#argv + 1] = "sh"
  argv[#argv + 1] = "-c"
  argv[#argv + 1] = cmd
  return util.run(argv)
end

-- The sample app's specs (examples/app/spec) pass, found by busted's
-- default ROOT from the app's directory.
function cases.test_app()
  local r = quay_test(src .. "/examples/app", { "-o", "plainTerminal" })
  check(r.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", r.status,
    r.stdout, r.stderr)
  check(r.stdout:find("3 successes / 0 failures / 0 errors", 1, true),
    "stdout %q", r.stdout)
end

-- A failing spec given as a path: busted reports it, status 1.
function cases.test_fail()
  fixture("fail_spec.lua", [[
local quay = require("quay")
describe("an app", function()
  it("passes", function() assert.equal("Lua 5.4", _VERSION) end)
  it("fails", function()
    local db <close> = quay.open("sqlite::memory:")
    assert.equal(2, #db:rows("SELECT 1 AS x"))
  end)
end)
]])
  local r = quay_test(tmpdir, { "-o", "plainTerminal", "fail_spec.lua" })
  check(r.status == 1, "status %d, want 1\nstdout:\n%s\nstderr:\n%s",
    r.status, r.stdout, r.stderr)
  check(r.stdout:find("1 success / 1 failure", 1, true), "stdout %q", r.stdout)
  check(r.stdout:find("fail_spec.lua", 1, true), "stdout %q", r.stdout)
end

-- Without busted on Lua 5.4's module path: a message that says how to
-- install it, status 2.
function cases.test_no_busted()
  local r = quay_test(tmpdir, {}, { "LUA_PATH=" .. tmpdir .. "/?.lua",
                                    "LUA_PATH_5_4=" .. tmpdir .. "/?.lua" })
  check(r.status == 2, "status %d, want 2; stderr %q", r.status, r.stderr)
  check(r.stderr:find("busted for Lua 5.4 is not installed", 1, true),
    "stderr %q", r.stderr)
end

local fn = cases[case]
assert(fn, "unknown case " .. tostring(case))
local ok, err = pcall(fn)
os.execute("rm -rf " .. util.shquote(tmpdir))
if not ok then
  io.stderr:write("cmd.", case, ": FAIL: ", tostring(err), "\n")
  os.exit(1)
end
print("cmd." .. case .. ": ok")
