--[[
test/packaging/check_doc_example.lua
ctest docs.embedding.capi: the C API program shown in docs/embedding.md
is examples/capi.c, from its first #include on, so the program the guide
shows is the one the install tests build against an installed copy and
run under valgrind.

  lua5.4 check_doc_example.lua docs/embedding.md examples/capi.c quay_qs_fetch
]]
local doc, file, marker = arg[1], arg[2], arg[3]
assert(marker, "usage: check_doc_example.lua DOC.md FILE.c MARKER")
local function slurp(p)
  local f = assert(io.open(p))
  local s = f:read("a")
  f:close()
  return s
end
local blocks = {}
for block in slurp(doc):gmatch("\n```c\n(.-)```") do
  if block:find(marker, 1, true) then blocks[#blocks + 1] = block end
end
if #blocks ~= 1 then
  io.stderr:write(("%s: %d ```c blocks mention %s, want 1\n"):format(doc,
    #blocks, marker))
  os.exit(1)
end
local src = slurp(file)
local body = src:sub((assert(src:find("#include", 1, true))))
if body ~= blocks[1] then
  io.stderr:write(("%s: the ```c block with %s differs from %s (from its "
    .. "first #include): copy the file into the guide\n"):format(doc, marker,
    file))
  os.exit(1)
end
print(("%s shows %s: ok"):format(doc, file))
