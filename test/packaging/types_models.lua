-- A model script for package.types: `quay types` prints annotations of
-- these models, and check_types.lua looks for every name in them.
local quay = require("quay")
return function(db)
  local M = {}
  M.User = db:model("User", {
    name = quay.string(),
    email = quay.string { null = true },
    methods = { greet = function(self, greeting) return greeting .. self.name end },
  })
  M.Post = db:model("Post", {
    title = quay.string(),
    views = quay.integer { default = 0, min = 0 },
    state = quay.string { choices = { "draft", "published" }, default = "draft" },
    author = quay.belongs_to("User", { related_name = "posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
    methods = {
      excerpt = function(self, n) return self.title:sub(1, n) end,
      touch = function(self) end,
    },
    scopes = {
      published = function(qs) return qs:filter { state = "published" } end,
      titled = function(qs, prefix) return qs:filter { title__startswith = prefix } end,
    },
    soft_delete = true,
  })
  M.Tag = db:model("Tag", { label = quay.string { column = "name" } })
  return M
end
