-- spec/children/transfer.lua URL ME N FORM: one of several processes
-- moving money between the accounts N times.  FORM lock is the form of
-- docs/transactions.md (select_for_update); FORM refresh is the form the
-- docs showed before issue 13 (refresh, then save), the control.  Prints
-- "ok=.. insufficient=.. failed=..".
-- spec.helper first: in the PgBouncer pass it opens every handle with
-- { prepare = false }, as the parent's are (a named statement would stay
-- on a pooled server connection another spec then sees).
local quay = require("spec.helper").quay
require("spec.procs").ready()             -- start with the others
local url, me, n, form = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]
local db = quay.open(url, { busy_timeout = 20000 })
local Account = db:model("Account", {
  owner   = quay.string { unique = true },
  balance = quay.integer { default = 0 },
})

-- docs/transactions.md, "db:transaction(fn)".
local function transfer(from, to, amount)
  return db:transaction(function()
    -- Lock both rows, in id order (two transfers then never wait for each
    -- other in a circle), and read their balances as they are now.
    local rows = Account:filter { id__in = { from.id, to.id } }:order_by("id")
                        :select_for_update():all()
    local src, dst = rows[1], rows[2]
    if src.id ~= from.id then src, dst = dst, src end
    if src.balance < amount then
      error({ code = "insufficient", message = src.owner .. " cannot pay " .. amount })
    end
    src.balance = src.balance - amount
    dst.balance = dst.balance + amount
    src:save(); dst:save()
    return src.balance, dst.balance
  end)
end

-- The old form: refresh, then save (loses updates at READ COMMITTED).
local function transfer_refresh(from, to, amount)
  return db:transaction(function()
    from:refresh(); to:refresh()
    if from.balance < amount then
      error({ code = "insufficient", message = from.owner .. " cannot pay " .. amount })
    end
    from.balance = from.balance - amount
    to.balance = to.balance + amount
    from:save(); to:save()
    return from.balance, to.balance
  end)
end

local accounts = Account:order_by("id"):all()
local x = me * 7919 + 17
local function rand(k)
  x = (x * 1103515245 + 12345) % 2147483648
  return x % k + 1
end
local okn, poor, failed, first = 0, 0, 0, nil
for _ = 1, n do
  local a = rand(#accounts)
  local b = rand(#accounts - 1)
  if b >= a then b = b + 1 end
  local fn = form == "refresh" and transfer_refresh or transfer
  local ok, err = pcall(fn, accounts[a], accounts[b], rand(50))
  if ok then
    okn = okn + 1
  elseif type(err) == "table" and err.code == "insufficient" then
    poor = poor + 1
  else
    failed = failed + 1
    first = first or (type(err) == "table" and (tostring(err.code) .. ": " .. tostring(err.message))
                      or tostring(err))
  end
end
db:close()
print(("ok=%d insufficient=%d failed=%d"):format(okn, poor, failed))
if first then print("first error: " .. first) end
