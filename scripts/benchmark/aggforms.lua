-- scripts/benchmark/aggforms.lua: the AGG section of `scripts/bench`.
--   quay aggforms.lua DB
-- DB is the bench's data (an SQLite file or a PostgreSQL URL).  Times the
-- two ways of writing W7's four aggregates (count, sum and max of a user's
-- posts, count of the comments on them) over differently restricted sets
-- of users, each statement run through db:rows (so every form pays the
-- same Lua table building), median of RUNS runs:
--   corr      one correlated scalar subquery per aggregate and user;
--   grouped   one grouped subquery per relation path, LEFT JOINed;
--   restrict  the same, each restricted to the keys of the set's users
--             (author_id IN (SELECT id FROM users WHERE ... LIMIT ...));
--   mixed     (an order on an aggregate, then a limit) the ordered
--             aggregate grouped, the others correlated.
-- "quay" says which form Quay writes for the shape (sqlbuild.c
-- "Aggregates of a scope", the rule these figures back) and its time for
-- qs:all() (records, so not comparable to the db:rows columns).
-- The last shape is a batched prefetch step: the posts of 1,000 users,
-- each with the count of its comments, keys as one array parameter.
-- Prints one line per shape.
local quay = require("quay")
local clock = require("benchclock")
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local declare = dofile(here .. "/models.lua")
local RUNS = tonumber(os.getenv("QUAY_BENCH_AGG_RUNS") or "5")

local target = arg[1]
local pg = target:match("^postgres") ~= nil or target:find("=", 1, true) ~= nil
local db = quay.open(pg and target or ("sqlite:" .. target))
local m = declare(db, quay, 1)
db:check()

local function median(fn)
  local t = {}
  fn()                                  -- warm the cache and the plan
  for i = 1, RUNS do
    local t0 = clock.now()
    fn()
    t[i] = clock.now() - t0
  end
  table.sort(t)
  return t[(RUNS + 1) // 2]
end

local SEL = "u.id, u.name, u.email"
local function corr(where, tail)
  return ("SELECT %s, (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id) AS n_posts,"
    .. " (SELECT SUM(p.views) FROM posts p WHERE p.author_id = u.id) AS views,"
    .. " (SELECT MAX(p.created) FROM posts p WHERE p.author_id = u.id) AS last,"
    .. " (SELECT COUNT(*) FROM posts p JOIN comments c ON c.post_id = p.id"
    .. " WHERE p.author_id = u.id) AS n_comments FROM users u %s %s"):format(SEL, where, tail)
end
local function grouped(where, tail, keys)
  local r = keys and (" WHERE p.author_id IN (SELECT r.id FROM users r %s)"):format(keys) or ""
  return ("SELECT %s, COALESCE(g1.n, 0) AS n_posts, g1.v AS views, g1.l AS last,"
    .. " COALESCE(g2.n, 0) AS n_comments FROM users u"
    .. " LEFT JOIN (SELECT p.author_id AS k, COUNT(*) AS n, SUM(p.views) AS v,"
    .. " MAX(p.created) AS l FROM posts p%s GROUP BY p.author_id) AS g1 ON g1.k = u.id"
    .. " LEFT JOIN (SELECT p.author_id AS k, COUNT(*) AS n FROM posts p JOIN comments c"
    .. " ON c.post_id = p.id%s GROUP BY p.author_id) AS g2 ON g2.k = u.id %s %s")
    :format(SEL, r, r, where, tail)
end

-- The comment count grouped, the post aggregates correlated.
local function mixed(where, tail)
  return ("SELECT %s, (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id) AS n_posts,"
    .. " (SELECT SUM(p.views) FROM posts p WHERE p.author_id = u.id) AS views,"
    .. " (SELECT MAX(p.created) FROM posts p WHERE p.author_id = u.id) AS last,"
    .. " COALESCE(g2.n, 0) AS n_comments FROM users u"
    .. " LEFT JOIN (SELECT p.author_id AS k, COUNT(*) AS n FROM posts p JOIN comments c"
    .. " ON c.post_id = p.id GROUP BY p.author_id) AS g2 ON g2.k = u.id %s %s")
    :format(SEL, where, tail)
end

local function annotated()
  return m.User:annotate {
    n_posts = quay.count("posts"), views = quay.sum("posts__views"),
    last = quay.max("posts__created"), n_comments = quay.count("posts__comments"),
  }
end

-- shape: label, where (correlated form), where (grouped forms), tail,
-- restriction of the keys (nil: none possible), Quay's query set, mixed.
local NC = "(SELECT COUNT(*) FROM posts p JOIN comments c ON c.post_id = p.id"
  .. " WHERE p.author_id = u.id)"
local shapes = {
  { "all 10k users", "", "", "ORDER BY u.id", nil, function(q) return q:order_by("id") end },
  { "filter { id = 5 }", "WHERE u.id = 5", "WHERE u.id = 5", "ORDER BY u.id", "WHERE r.id = 5",
    function(q) return q:filter { id = 5 }:order_by("id") end },
  { "filter { id__lte = 1000 }", "WHERE u.id <= 1000", "WHERE u.id <= 1000", "ORDER BY u.id",
    "WHERE r.id <= 1000", function(q) return q:filter { id__lte = 1000 }:order_by("id") end },
  { "order_by(id):limit(20)", "", "", "ORDER BY u.id LIMIT 20", "ORDER BY r.id LIMIT 20",
    function(q) return q:order_by("id"):limit(20) end },
  { "order_by(-n_comments):limit(20)", "", "", "ORDER BY n_comments DESC, u.id LIMIT 20", nil,
    function(q) return q:order_by("-n_comments", "id"):limit(20) end, true },
  { "order_by(-n_comments)", "", "", "ORDER BY n_comments DESC, u.id", nil,
    function(q) return q:order_by("-n_comments", "id") end },
  { "filter { n_comments__gte = 30 }:limit(20)", "WHERE " .. NC .. " >= 30",
    "WHERE COALESCE(g2.n, 0) >= 30", "ORDER BY u.id LIMIT 20", nil,
    function(q) return q:filter { n_comments__gte = 30 }:order_by("id"):limit(20) end },
}
local H = "%-42s %8s %8s %8s %8s   %-8s %8s"
local function f(x) return x and ("%.4f"):format(x) or "-" end
print(H:format("shape (W7's 4 aggregates), seconds", "corr", "grouped", "restrict", "mixed",
  "quay", "quay s"))
for _, sh in ipairs(shapes) do
  local label, wc, wg, tail, keys, mk, bMixed = table.unpack(sh)
  local tc = median(function() return db:rows(corr(wc, tail)) end)
  local tg = median(function() return db:rows(grouped(wg, tail)) end)
  local tr = keys and median(function() return db:rows(grouped(wg, tail, keys)) end)
  local tm = bMixed and median(function() return db:rows(mixed(wg, tail)) end)
  local qs = mk(annotated())
  local sql = qs:sql()
  local form = not sql:find("LEFT JOIN (SELECT", 1, true) and "corr"
    or sql:find("(SELECT SUM(", 1, true) and "mixed"
    or sql:find(" IN (SELECT", 1, true) and "restrict" or "grouped"
  local tq = median(function() return qs:all() end)
  print(H:format(label, f(tc), f(tg), f(tr), f(tm), form, f(tq)))
end

-- A batched prefetch step: posts of users 1..1000 with their comment count.
do
  local ids = {}
  for i = 1, 1000 do ids[i] = i end
  local key = pg and ("{" .. table.concat(ids, ",") .. "}") or ("[" .. table.concat(ids, ",") .. "]")
  local keys = pg and "(SELECT unnest(?::bigint[]))" or "(SELECT value FROM json_each(?))"
  local c = ("SELECT p.*, (SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id) AS nc,"
    .. " p.author_id FROM posts p WHERE p.author_id IN %s"):format(keys)
  local g = ("SELECT p.*, COALESCE(g.n, 0) AS nc, p.author_id FROM posts p LEFT JOIN"
    .. " (SELECT c.post_id AS k, COUNT(*) AS n FROM comments c WHERE c.post_id IN"
    .. " (SELECT p2.id FROM posts p2 WHERE p2.author_id IN %s) GROUP BY c.post_id) AS g"
    .. " ON g.k = p.id WHERE p.author_id IN %s"):format(keys, keys)
  local tc = median(function() return db:rows(c, { key }) end)
  local tr = median(function() return db:rows(g, { key, key }) end)
  local qs = m.User:filter { id__lte = 1000 }:prefetch_related(
    quay.prefetch("posts", m.Post:annotate { nc = quay.count("comments") }))
  local ex = qs:explain()
  local form = ex[2].sql:find("LEFT JOIN (SELECT", 1, true) and "restrict" or "corr"
  local tq = median(function() return qs:all() end)
  print(H:format("batched step: posts of 1,000 users", f(tc), "-", f(tr), "-", form,
    f(tq)))
end
db:close()
