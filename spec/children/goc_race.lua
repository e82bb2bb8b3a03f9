-- spec/children/goc_race.lua URL ME NKEYS MODE: one of several processes
-- calling get_or_create (MODE get), update_or_create (update) or a naive
-- first-then-create (naive, the control) on the same keys, in the same
-- order.  Prints "created=.. found=.. errors=.." and the first error.
-- spec.helper first: in the PgBouncer pass it opens every handle with
-- { prepare = false }, as the parent's are (a named statement would stay
-- on a pooled server connection another spec then sees).
local quay = require("spec.helper").quay
require("spec.procs").ready()             -- start with the others
local url, me, nkeys, mode = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]
local db = quay.open(url, { busy_timeout = 20000 })
local Item = db:model("Item", {
  key = quay.string { unique = true },
  owner = quay.integer { default = 0 },
})
local created, found, errors, first = 0, 0, 0, nil
for i = 1, nkeys do
  local ok, err = pcall(function()
    local key, rec, c = "k" .. i, nil, nil
    if mode == "update" then
      rec, c = Item:update_or_create({ key = key }, { owner = me })
    elseif mode == "naive" then
      rec = Item:filter { key = key }:first()
      c = rec == nil
      if c then rec = Item:create { key = key, owner = me } end
    else
      rec, c = Item:get_or_create({ key = key }, { owner = me })
    end
    assert(rec.key == key and rec.id)
    if c then created = created + 1 else found = found + 1 end
  end)
  if not ok then
    errors = errors + 1
    first = first or (type(err) == "table" and (tostring(err.code) .. ": " .. tostring(err.message))
                      or tostring(err))
  end
end
db:close()
print(("created=%d found=%d errors=%d"):format(created, found, errors))
if first then print("first error: " .. first) end
