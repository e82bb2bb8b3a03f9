-- examples/app/src/todo.lua: a sample app's models, for `quay test`
-- (README "Testing an app").  Its specs are in spec/; from this
-- directory, `quay test` runs them under Quay's Lua 5.4.
local quay = require("quay")

local todo = {}

-- Declare the app's models on db and create their tables.
function todo.setup(db)
  local List = db:model("List", { name = quay.string { unique = true } })
  local Item = db:model("Item", {
    title = quay.string(),
    done = quay.boolean { default = false },
    list = quay.belongs_to("List", { on_delete = quay.CASCADE,
                                     related_name = "items" }),
  })
  db:create_tables()
  return { List = List, Item = Item }
end

-- The titles of a list's open items, in title order.
function todo.open_titles(list)
  local out = {}
  for _, item in ipairs(list.items:filter { done = false }:order_by("title"):all()) do
    out[#out + 1] = item.title
  end
  return out
end

return todo
