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

With hooks (writes.lua --hooks): W.decl(cfg) declares, for the models cfg
names, some of before_save / after_save / before_delete / after_delete.
Every hook appends { name, model, id, flag, v, n } to H.log (v: the field
W.LOGVAL names; n: the hook's call number in the operation), may write a
row of its own (H.plan.write[n]: "raw", a raw INSERT into hooknotes, or
"bare", a Bare:create) and raises H.plan.value at call H.plan.fail.  Bare
never gets hooks (the hooks create Bares).  H.keep(rec, fields) notes a
record as it is before a call a hook is to fail, so that the tester can
check it is put back as it was.
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

-- {{ hooks
W.HOOKABLE = { "Owner", "Item", "Lock", "Link", "Memo" }
W.HOOKS = { "before_save", "after_save", "before_delete", "after_delete" }
W.LOGVAL = { Owner = "code", Item = "label", Lock = "tag", Memo = "body" }

-- The hooks' log, plan and factory, run before the declaration.
W.HOOK_PRELUDE = [[
local H = { log = {}, n = 0, plan = {} }
function H.reset(plan) H.log, H.n, H.plan, H.kept = {}, 0, plan or {}, nil end
function H.keep(rec, fields)
  local snap = { id = rec.id, changed = rec:changed() }
  for _, f in ipairs(fields) do snap[f] = rec[f] end
  H.kept = { rec = rec, snap = snap, fields = fields }
end
function H.hook(name, model, field)
  return function(rec, flag)
    H.n = H.n + 1
    local e = { name = name, model = model, id = rec.id, flag = flag, n = H.n }
    if field then e.v = rec[field] end
    H.log[#H.log + 1] = e
    local w = H.plan.write and H.plan.write[H.n]
    if w == "raw" then db:execute("INSERT INTO hooknotes (n) VALUES (?)", { H.n })
    elseif w == "bare" then e.bare = H.Bare:create({}).id end
    if H.plan.fail == H.n then error(H.plan.value, 0) end
  end
end
]]

--- The declaration with the hooks of cfg ({ Model = { hook = true } }, or
--- nil: none): source that defines H (with hooks) and the models.
function W.decl(cfg)
  if not cfg then return W.DECL end
  local s = W.DECL
  for _, m in ipairs(W.HOOKABLE) do
    if cfg[m] then
      local hs = {}
      for _, h in ipairs(W.HOOKS) do
        if cfg[m][h] then
          hs[#hs + 1] = ("%s = H.hook(%q, %q%s)"):format(h, h, m,
            W.LOGVAL[m] and (", %q"):format(W.LOGVAL[m]) or "")
        end
      end
      local head = ('local %s = db:model("%s", {\n'):format(m, m)
      local a, b = s:find(head, 1, true)
      assert(a, m)
      s = s:sub(1, b) .. "  hooks = { " .. table.concat(hs, ", ") .. " },\n" .. s:sub(b + 1)
    end
  end
  return W.HOOK_PRELUDE .. s .. "H.Bare = Bare\n"
end

--- cfg as Lua source (for messages).
function W.show_cfg(cfg)
  local l = {}
  for _, m in ipairs(W.HOOKABLE) do
    if cfg[m] then
      local hs = {}
      for _, h in ipairs(W.HOOKS) do if cfg[m][h] then hs[#hs + 1] = h end end
      l[#l + 1] = m .. ": " .. table.concat(hs, " ")
    end
  end
  return table.concat(l, "; ")
end
-- }}

return W
