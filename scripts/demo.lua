-- scripts/demo.lua: a small blog on the embedded SQLite default.
-- Run with `quay scripts/demo.lua` (or ./scripts/demo.sh, which builds first).
local quay = require("quay")

local db <close> = quay.open(arg and arg[1] or "sqlite::memory:")

local User = db:model("User", {
  name  = quay.string { max = 100 },
  email = quay.string { unique = true, description = "login address" },
})
db:model("Profile", {
  user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
  bio  = quay.text { null = true },
})
local Tag = db:model("Tag", { name = quay.string { unique = true } })
local Post = db:model("Post", {
  title   = quay.string(),
  views   = quay.integer { default = 0 },
  created = quay.datetime { auto_now_add = true },
  author  = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
  tags    = quay.many_to_many("Tag", { related_name = "posts" }),
})
local Comment = db:model("Comment", {
  post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
  body = quay.text(),
})
local Order = db:model("Order", {
  buyer = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "orders" }),
  total = quay.decimal { digits = 10, places = 2 },
  placed = quay.date(),
})
db:create_tables()

-- Data: a few users, posts, tags and comments, in one transaction.
db:transaction(function()
  local tags = {}
  for _, name in ipairs({ "lua", "c", "sqlite", "orm" }) do
    tags[name] = Tag:create { name = name }
  end
  for i, who in ipairs({ "Ada", "Brian", "Dennis", "Grace" }) do
    local u = User:create { name = who, email = who:lower() .. "@example.com" }
    db:model("Profile"):create { user = u, bio = who .. " writes code." }
    for k = 1, 3 do
      local p = Post:create { title = ("%s's post #%d"):format(who, k),
                              views = i * 10 + k, author = u }
      p.tags:add(tags.lua, k % 2 == 0 and tags.c or tags.sqlite)
      Comment:create { post = p, body = "Nice one, " .. who }
    end
  end
end)

local function section(s) print(("\n== %s"):format(s)) end

section("posts with their author (one JOIN)")
local before = db:stats().queries
for _, p in ipairs(Post:select_related("author"):order_by("-views"):limit(5):all()) do
  print(("%-22s by %-7s %3d views"):format(p.title, p.author.name, p.views))
end
print(("queries: %d"):format(db:stats().queries - before))

section("users -> posts -> tags (one batched query per level)")
before = db:stats().queries
for _, u in ipairs(User:prefetch_related("posts__tags"):order_by("name"):all()) do
  local names = {}
  for _, p in ipairs(u.posts) do
    for _, t in ipairs(p.tags) do names[#names + 1] = t.name end
  end
  print(("%-7s %d posts, tags: %s"):format(u.name, #u.posts, table.concat(names, " ")))
end
print(("queries: %d"):format(db:stats().queries - before))

section("filters across relations (semi-joins, no duplicates)")
local q = User:filter { posts__tags__name = "c", posts__views__gt = 20 }
print("users with a post tagged 'c' and over 20 views:", q:count())
local sql, params = q:sql()
print(sql)
print("params:", table.concat(params, ", "))
print("posts without comments:", Post:where_doesnt_have("comments"):count())
print("users by post count:")
for _, u in ipairs(User:with_count("posts"):order_by("-posts_count", "name"):all()) do
  print(("  %-7s %d"):format(u.name, u.posts_count))
end

section("lazy loading is batched: one query per hop, not one per post")
before = db:stats().queries
local total, nposts = 0, 0
for _, p in ipairs(Post:all()) do
  total, nposts = total + #p.author.profile.bio, nposts + 1
end
print(("post -> author -> profile for %d posts: %d bio bytes; queries: %d"):format(nposts, total, db:stats().queries - before))

section("reports: several relations at once, no inflation; groups")
before = db:stats().queries
for _, u in ipairs(User:annotate { n_posts = quay.count("posts"),
                                   n_comments = quay.count("posts__comments"),
                                   n_tags = quay.count("posts__tags", { distinct = true }),
                                   views = quay.sum("posts__views") }
                       :filter { views__gte = 30 }:order_by("-views"):all()) do
  print(("%-7s %d posts, %d comments, %d distinct tags, %d views"):format(
    u.name, u.n_posts, u.n_comments, u.n_tags, u.views))
  assert(u.n_posts == 3 and u.n_comments == 3 and u.n_tags == 3)
end
for _, row in ipairs(Post:values("author__name"):annotate { n = quay.count(), avg = quay.avg("views") }
                          :order_by("-avg"):limit(2):all()) do
  print(("  %-7s %d posts, %.1f views on average"):format(row.author__name, row.n, row.avg))
end
local all = Post:aggregate { n = quay.count(), views = quay.sum("views"), top = quay.max("views") }
print(("all posts: %d, %d views, at most %d; queries: %d"):format(
  all.n, all.views, all.top, db:stats().queries - before))

section("safe writes: updates in SQL, get_or_create, upsert")
local top = Post:order_by("-views"):first()
Post:filter { id = top.id }:update { views = quay.F("views") + 1 }   -- no lost update
print(top.title, "views", top.views, "->", Post:find(top.id).views)
local lua, created = Tag:get_or_create({ name = "lua" })
print("get_or_create lua: created =", created)
local tags = Tag:upsert({ { name = "lua" }, { name = "zig" } }, { conflict = { "name" } })
print(("upsert: %d rows back, %d tags now (lua kept id %d)"):format(#tags, Tag:count(), lua.id))

section("exact money (decimal) and dates")
local grace = User:get { name = "Grace" }
for _, t in ipairs { "0.10", "0.20", "0.30" } do
  Order:create { buyer = grace, total = t, placed = "2024-02-29" }
end
local sum = Order:aggregate { s = quay.sum("total") }.s
print("0.10 + 0.20 + 0.30 =", sum, ("(as floats: %.17g)"):format(0.1 + 0.2 + 0.3))
assert(sum == "0.60")
print("orders in February:", Order:filter { placed__month = 2 }:count())

section("cascading delete (computed by the engine, in one transaction)")
local ada = User:get { name = "Ada" }
local dry = ada:delete { dry_run = true }
local parts = {}
for name, n in pairs(dry) do parts[#parts + 1] = name .. "=" .. n end
table.sort(parts)
print("dry run:", table.concat(parts, " "))
ada:delete()
print(("users left: %d, posts left: %d"):format(User:count(), Post:count()))

section("errors are values with a code")
local ok, err = pcall(function() return User:filter { nickname = "x" } end)
print(ok, err.code, err.message)
