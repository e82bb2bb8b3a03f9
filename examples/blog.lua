--[[
examples/blog.lua: a script for the quay command.

  quay examples/blog.lua                  run it on an in-memory database
  quay examples/blog.lua sqlite:blog.db   ... or on a file
  quay describe examples/blog.lua         print its schema as JSON
]]
local quay = require("quay")

local db = quay.open(arg[1] or "sqlite::memory:")

local User = db:model("User", {
  description = "someone who writes",
  name = quay.string { max = 100 },
  email = quay.string { unique = true, description = "login address" },
})
db:model("Profile", {
  user = quay.one_to_one("User", { on_delete = quay.CASCADE,
                                   related_name = "profile" }),
  bio = quay.text { null = true },
})
local Post = db:model("Post", {
  title = quay.string { max = 200 },
  views = quay.integer { default = 0 },
  created = quay.datetime { auto_now_add = true },
  author = quay.belongs_to("User", { on_delete = quay.CASCADE,
                                     related_name = "posts" }),
  tags = quay.many_to_many("Tag", { related_name = "posts" }),
})
local Tag = db:model("Tag", { name = quay.string { max = 40, unique = true } })
db:create_tables()

local jane = User:create { name = "Jane", email = "jane@example.com" }
local lua = Tag:create { name = "lua" }
for i = 1, 3 do
  local p = Post:create { title = "Post " .. i, views = i * 10, author = jane }
  p.tags:add(lua)
end

for _, u in ipairs(User:prefetch_related("posts__tags"):all()) do
  for _, p in ipairs(u.posts) do
    print(u.name, p.title, p.views, #p.tags)
  end
end
print("posts tagged lua:", Post:filter { tags__name = "lua" }:count())
