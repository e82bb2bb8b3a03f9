-- scripts/benchmark/models.lua: the benchmark's models, declared with Quay.
-- db:create_tables() on these makes the tables the data generator fills
-- (scripts/benchmark/floor.c `gen`), so Quay and the floor read one schema.
-- Version 2 is W12's migration: Post.title becomes text and Post gets a
-- NOT NULL rating with a default.
return function(db, quay, version)
  local m = {}
  m.User = db:model("User", { name = quay.string(), email = quay.string() })
  m.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { on_delete = quay.CASCADE }),
    bio  = quay.text(),
  })
  m.Tag = db:model("Tag", { name = quay.string() })
  m.Post = db:model("Post", {
    title  = version == 2 and quay.text() or quay.string(),
    views  = quay.integer(),
    -- Nullable: W5's inserts (both sides) leave it out.
    created = quay.datetime { null = true },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    tags   = quay.many_to_many("Tag"),
    rating = version == 2 and quay.number { default = 0 } or nil,
  })
  m.Comment = db:model("Comment", {
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
    body = quay.text(),
  })
  return m
end
