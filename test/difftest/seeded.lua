-- test/difftest/seeded.lua: the set-up the stand-alone seeded testers
-- (softagg.lua, m2m.lua) share: Quay from this checkout and its build
-- (QUAY_BUILD_DIR, else build/), and the command line
--   TESTER.lua [URL] [--seeds A-B] [COUNTFLAG N]
-- Loaded with dofile(root .. "/test/difftest/seeded.lua")(root, arg,
-- COUNTFLAG, default seeds A, B, default N); returns quay, url, A, B, N.
return function(root, argv, flag, s0, s1, n)
  local build = os.getenv("QUAY_BUILD_DIR") or (root .. "/build")
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  package.cpath = build .. "/?.so;" .. package.cpath
  local url = "sqlite::memory:"
  local i = 1
  while argv[i] do
    if argv[i] == "--seeds" then
      local a, b = tostring(argv[i + 1]):match("^(%d+)-(%d+)$")
      if not a then error("--seeds takes A-B, not " .. tostring(argv[i + 1])) end
      s0, s1 = tonumber(a), tonumber(b)
      i = i + 2
    elseif argv[i] == flag then
      n = math.tointeger(tonumber(argv[i + 1]))
      if not n then error(flag .. " takes a whole number, not " .. tostring(argv[i + 1])) end
      i = i + 2
    elseif argv[i]:sub(1, 2) == "--" then
      error("unknown option " .. argv[i])
    else
      url = argv[i]
      i = i + 1
    end
  end
  return require("quay"), url, s0, s1, n
end
