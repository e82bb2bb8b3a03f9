--[[
test/difftest/wschema.lua
The schema of the write tester (writes.lua): its declaration as Lua source
(run as it is, and printed at the head of every reproduction), and the
same facts as plain tables for the oracle (wstate.lua) and the generator.

  Owner  every value type: a unique code, a default integer, a decimal
         (8, 2) with a default, date, datetime, boolean, json, number, text
  Item   belongs_to Owner (CASCADE) and Owner (SET_NULL, nullable); a
         decimal (6, 3); unique_together (owner, label)
  Lock   belongs_to Item (PROTECT)
  Link   belongs_to Owner (RESTRICT) and Item (CASCADE)
  Memo   soft_delete; belongs_to Owner (nullable, CASCADE)
  Bare   only its key
]]
local W = {}

W.DECL = [[
local Owner = db:model("Owner", {
  name = quay.string { max = 8 },
  code = quay.string { unique = true, max = 12 },
  score = quay.integer { default = 0 },
  price = quay.decimal { digits = 8, places = 2, default = "0" },
  born = quay.date { null = true },
  at = quay.datetime { null = true },
  flag = quay.boolean { default = false },
  data = quay.json { null = true },
  ratio = quay.number { null = true },
  note = quay.text { null = true },
})
local Item = db:model("Item", {
  owner = quay.belongs_to("Owner", { on_delete = quay.CASCADE, related_name = "items" }),
  ref = quay.belongs_to("Owner", { null = true, on_delete = quay.SET_NULL, related_name = "refs" }),
  label = quay.string { max = 10 },
  n = quay.integer { null = true },
  qty = quay.decimal { digits = 6, places = 3, null = true },
  unique_together = { { "owner", "label" } },
})
local Lock = db:model("Lock", {
  item = quay.belongs_to("Item", { on_delete = quay.PROTECT, related_name = "locks" }),
  tag = quay.string { max = 10, null = true },
})
local Link = db:model("Link", {
  owner = quay.belongs_to("Owner", { on_delete = quay.RESTRICT, related_name = "links" }),
  item = quay.belongs_to("Item", { on_delete = quay.CASCADE, related_name = "links" }),
})
local Memo = db:model("Memo", {
  owner = quay.belongs_to("Owner", { null = true, on_delete = quay.CASCADE, related_name = "memos" }),
  body = quay.string { max = 10 },
  soft_delete = true,
})
local Bare = db:model("Bare", {})
]]

-- Fields per model in column order (id first).  t: int number string
-- text decimal date datetime bool json fk soft; default: the stored value
-- when not given (nil: NULL if null, else required).
W.order = { "Owner", "Item", "Lock", "Link", "Memo", "Bare" }
W.models = {
  Owner = { table = "owners", fields = {
    { name = "name", t = "string", max = 8 },
    { name = "code", t = "string", max = 12, unique = true },
    { name = "score", t = "int", default = 0 },
    { name = "price", t = "decimal", digits = 8, places = 2, default = "0.00" },
    { name = "born", t = "date", null = true },
    { name = "at", t = "datetime", null = true },
    { name = "flag", t = "bool", default = false },
    { name = "data", t = "json", null = true },
    { name = "ratio", t = "number", null = true },
    { name = "note", t = "text", null = true },
  } },
  Item = { table = "items", together = { "owner_id", "label" }, fields = {
    { name = "owner_id", rel = "owner", t = "fk", target = "Owner", on_delete = "CASCADE" },
    { name = "ref_id", rel = "ref", t = "fk", target = "Owner", null = true, on_delete = "SET_NULL" },
    { name = "label", t = "string", max = 10 },
    { name = "n", t = "int", null = true },
    { name = "qty", t = "decimal", digits = 6, places = 3, null = true },
  } },
  Lock = { table = "locks", fields = {
    { name = "item_id", rel = "item", t = "fk", target = "Item", on_delete = "PROTECT" },
    { name = "tag", t = "string", max = 10, null = true },
  } },
  Link = { table = "links", fields = {
    { name = "owner_id", rel = "owner", t = "fk", target = "Owner", on_delete = "RESTRICT" },
    { name = "item_id", rel = "item", t = "fk", target = "Item", on_delete = "CASCADE" },
  } },
  Memo = { table = "memos", soft = true, fields = {
    { name = "owner_id", rel = "owner", t = "fk", target = "Owner", null = true, on_delete = "CASCADE" },
    { name = "body", t = "string", max = 10 },
    { name = "deleted_at", t = "soft", null = true },
  } },
  Bare = { table = "bares", fields = {} },
}
for _, name in ipairs(W.order) do
  local m = W.models[name]
  m.name = name
  m.by = {}
  for _, fd in ipairs(m.fields) do
    m.by[fd.name] = fd
    if fd.rel then m.by[fd.rel] = fd end
  end
end

-- The relations that refer to each model: { model, field } lists.
W.referrers = {}
for _, name in ipairs(W.order) do W.referrers[name] = {} end
for _, name in ipairs(W.order) do
  for _, fd in ipairs(W.models[name].fields) do
    if fd.t == "fk" then
      local l = W.referrers[fd.target]
      l[#l + 1] = { model = name, fd = fd }
    end
  end
end

return W
