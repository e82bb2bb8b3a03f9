--[[
test/packaging/doctest.lua
ctest docs.<guide>: run the code blocks of one guide.

  lua5.4 doctest.lua docs/models.md        (quay on LUA_CPATH/LUA_PATH)

Fences and what happens to them:

  ```lua          run.  All lua blocks of a file form one chunk, in order,
                  so a local declared in one block is visible in the next
                  (the guide reads as one session).  Every line outside
                  the lua blocks becomes an empty line, so an error
                  reports the guide's own file and line
                  (docs/models.md:57: ...).  Each guide opens its own
                  fresh database ("sqlite::memory:") in its first block.
  ```lua norun    not run (a PostgreSQL URL, a file path of the reader's).
  ```c            a complete program: written to a temporary file,
                  compiled with $QUAY_DOC_CC ... $QUAY_DOC_LIBS and run;
                  it must exit 0.  Without QUAY_DOC_CC the test fails.
  anything else   (```sh, ```json, plain ```) shown only.

A guide with no runnable block fails: that is a guide nobody checks.
]]
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
local util = require("util")

local path = assert(arg[1], "usage: doctest.lua GUIDE.md")
local f = assert(io.open(path))
local lines = {}
for line in f:lines() do lines[#lines + 1] = line end
f:close()

-- Split into the Lua chunk (line-aligned) and the C programs.
local chunk, cblocks = {}, {}
local mode, info, cur = nil, nil, nil
local nlua, nnorun = 0, 0
for i, line in ipairs(lines) do
  local fence = line:match("^```(.*)$")
  if mode == nil and fence then
    info = fence:gsub("%s+$", "")
    if info == "lua" then
      mode = "lua"; nlua = nlua + 1
    elseif info == "c" then
      mode = "c"; cur = { first = i + 1, text = {} }
    else
      mode = "skip"
      if info:match("^lua") then nnorun = nnorun + 1 end
    end
    chunk[i] = ""
  elseif mode ~= nil and line:match("^```%s*$") then
    if mode == "c" then cblocks[#cblocks + 1] = cur end
    mode = nil
    chunk[i] = ""
  elseif mode == "lua" then
    chunk[i] = line
  else
    if mode == "c" then cur.text[#cur.text + 1] = line end
    chunk[i] = ""
  end
end
if mode ~= nil then
  io.stderr:write(path, ": unterminated code block\n")
  os.exit(1)
end
if nlua == 0 and #cblocks == 0 then
  io.stderr:write(path, ": no runnable code block\n")
  os.exit(1)
end

-- Report an error value (Quay errors are tables with code and message).
local function describe(err)
  if type(err) == "table" and err.code then
    return ("%s (code %s)"):format(tostring(err.message), tostring(err.code))
  end
  return tostring(err)
end

-- Run the Lua blocks in a fresh environment.
if nlua > 0 then
  local env = setmetatable({}, { __index = _G })
  local fn, err = load(table.concat(chunk, "\n"), "@" .. path, "t", env)
  if not fn then
    io.stderr:write("doctest: ", err, "\n")
    os.exit(1)
  end
  local ok, rerr = xpcall(fn, function(e)
    local where = ""
    if type(e) ~= "string" then
      -- The innermost frame of the guide gives the line.
      for level = 2, 40 do
        local d = debug.getinfo(level, "Sl")
        if not d then break end
        if d.source == "@" .. path and d.currentline > 0 then
          where = ("%s:%d: "):format(path, d.currentline)
          break
        end
      end
    end
    return debug.traceback(where .. describe(e), 2)
  end)
  if not ok then
    io.stderr:write("doctest: FAIL: ", rerr, "\n")
    os.exit(1)
  end
end

-- Compile and run the C programs.
for k, b in ipairs(cblocks) do
  local cc, libs = os.getenv("QUAY_DOC_CC"), os.getenv("QUAY_DOC_LIBS") or ""
  if not cc then
    io.stderr:write("doctest: ", path, ":", b.first,
      ": a ```c block needs QUAY_DOC_CC (run through ctest)\n")
    os.exit(1)
  end
  local tmp = os.tmpname()
  local src, exe = tmp .. ".c", tmp .. ".exe"
  -- #line makes compiler messages point into the guide.
  local out = assert(io.open(src, "w"))
  out:write(('#line %d "%s"\n'):format(b.first, path))
  out:write(table.concat(b.text, "\n"), "\n")
  out:close()
  -- In a sanitized build this interpreter runs with the sanitizer
  -- runtimes preloaded; the compiler must not inherit them (LeakSanitizer
  -- would report cc1's own leaks), and the program links them itself.
  local r = util.run { "env", "-u", "LD_PRELOAD", "sh", "-c",
                       cc .. " -o " .. util.shquote(exe) .. " " ..
                       util.shquote(src) .. " " .. libs }
  if r.status ~= 0 then
    io.stderr:write("doctest: FAIL: C block ", k, " (", path, ":", b.first,
      ") does not compile:\n", r.stderr, r.stdout)
    os.remove(src); os.remove(tmp)
    os.exit(1)
  end
  r = util.run { "env", "-u", "LD_PRELOAD", exe }
  io.write(r.stdout)
  os.remove(src); os.remove(exe); os.remove(tmp)
  if r.status ~= 0 then
    io.stderr:write("doctest: FAIL: C block ", k, " (", path, ":", b.first,
      ") exited with status ", r.status, ":\n", r.stderr)
    os.exit(1)
  end
end
print(("doctest: %s: %d lua block(s) run, %d C program(s) run, %d not run")
  :format(path, nlua, #cblocks, nnorun))
