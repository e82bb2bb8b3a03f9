-- scripts/throughput/quay.lua: the Quay side of scripts/throughput.
local quay = require("quay")
local path, n, mode = arg[1], tonumber(arg[2] or "100000"), arg[3]
local db <close> = quay.open("sqlite:" .. path)
local Item = db:model("Item", { title = quay.string(), views = quay.integer(),
                                score = quay.number() })
if mode == "schema" then db:create_tables() return end
local clock = os.clock
local rows = {}
for i = 0, n - 1 do
  rows[i + 1] = { title = "item number " .. i, views = i % 1000, score = i * 0.5 }
end
local t0 = clock()
Item:bulk_create(rows)
local t1 = clock()
print(("quay insert %d rows: %.3f s, %.0f rows/s"):format(n, t1 - t0, n / (t1 - t0)))
rows = nil
collectgarbage()
t0 = clock()
local sum, k = 0, 0
for _, r in ipairs(Item:all()) do
  sum = sum + r.id + #r.title + r.views + math.floor(r.score)
  k = k + 1
end
t1 = clock()
print(("quay read   %d rows: %.3f s, %.0f rows/s (checksum %d)"):format(k, t1 - t0,
  k / (t1 - t0), sum))

