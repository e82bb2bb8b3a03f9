-- spec/procs.lua: several connections and several processes on one
-- database, for the specs of concurrent writes (issue 13).
--
-- procs.shared(helper) gives a URL that other connections and processes
-- can open: the spec database itself on PostgreSQL (helper.open emptied
-- it), a new SQLite file otherwise (removed by procs.cleanup).
-- procs.spawn(name, n, ...) starts n lua5.4 processes running
-- spec/children/<name>.lua with the URL, the child's number and the extra
-- arguments, all at once, and returns their outputs once all have ended.
local helper = require("spec.helper")

local procs = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local files = {}

function procs.shared()
  if helper.is_pg then return helper.url end
  local path = os.tmpname()
  os.remove(path)
  files[#files + 1] = path
  return "sqlite:" .. path
end

function procs.cleanup()
  for _, path in ipairs(files) do
    for _, suf in ipairs({ "", "-wal", "-shm", "-journal" }) do os.remove(path .. suf) end
  end
  files = {}
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Run n children at once; returns { {ok = bool, out = text}, ... }.
-- They start together: each waits (procs.ready) for a file the parent
-- makes once all are launched.
function procs.spawn(name, n, url, ...)
  local go = os.tmpname()
  os.remove(go)
  local env = ("LUA_PATH=%s LUA_CPATH=%s QUAY_GO=%s"):format(
    q(os.getenv("LUA_PATH") or package.path), q(os.getenv("LUA_CPATH") or package.cpath), q(go))
  local extra = {}
  for i, a in ipairs({ ... }) do extra[i] = q(a) end
  local handles = {}
  for i = 1, n do
    local cmd = ("%s lua5.4 %s %s %d %s 2>&1"):format(env, q(here .. "/children/" .. name .. ".lua"),
      q(url), i, table.concat(extra, " "))
    handles[i] = assert(io.popen(cmd))
  end
  local f = assert(io.open(go, "w"))
  f:close()
  local res = {}
  for i, h in ipairs(handles) do
    local out = h:read("a")
    local ok = h:close()
    res[i] = { ok = ok == true, out = out }
  end
  os.remove(go)
  return res
end

-- One child running spec/children/<name>.lua with the URL and the extra
-- arguments, started now and left running: procs.finish(child) waits for
-- it and returns its output (an error if it failed).
function procs.start(name, url, ...)
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
    q(os.getenv("LUA_PATH") or package.path), q(os.getenv("LUA_CPATH") or package.cpath))
  local extra = {}
  for i, a in ipairs({ ... }) do extra[i] = q(a) end
  local cmd = ("%s lua5.4 %s %s %s 2>&1"):format(env, q(here .. "/children/" .. name .. ".lua"),
    q(url), table.concat(extra, " "))
  return assert(io.popen(cmd))
end

function procs.finish(child)
  local out = child:read("a")
  local ok = child:close()
  assert(ok == true, "child process failed:\n" .. out)
  return out
end

-- In a child: wait for the parent's start signal (see procs.spawn).
function procs.ready()
  local go = os.getenv("QUAY_GO")
  if not go then return end
  local t0 = os.time()
  while os.time() - t0 < 10 do
    local f = io.open(go)
    if f then
      f:close()
      return
    end
  end
end

-- "key=number" pairs of a child's last line, as a table.
function procs.fields(out)
  local t = {}
  for k, v in out:gmatch("(%w+)=(%-?%d+)") do t[k] = tonumber(v) end
  return t
end

return procs
