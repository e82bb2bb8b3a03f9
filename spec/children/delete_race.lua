-- spec/children/delete_race.lua URL MODE: deletes (MODE delete) or
-- updates (MODE update: title = "touched") the posts whose status is
-- "old" while the parent holds an uncommitted change of one of them
-- (spec/concurrent_writes_spec.lua).  MODE delete_limit deletes the first
-- two of them by title descending, MODE update_offset updates all but the
-- first by title (limited and offset sets).  Prints "changed=N".
-- spec.helper first: in the PgBouncer pass it opens every handle with
-- { prepare = false }, as the parent's are (a named statement would stay
-- on a pooled server connection another spec then sees).
local quay = require("spec.helper").quay
local url, mode = arg[1], arg[2]
local db = quay.open(url, { busy_timeout = 20000 })
local Post = db:model("Post", { title = quay.string(), status = quay.string() })
local n
if mode == "update" then
  n = Post:filter { status = "old" }:update { title = "touched" }
elseif mode == "update_offset" then
  n = Post:filter { status = "old" }:order_by("title"):offset(1):update { title = "touched" }
elseif mode == "delete_limit" then
  n = Post:filter { status = "old" }:order_by("-title"):limit(2):delete().Post
else
  n = Post:filter { status = "old" }:delete().Post
end
db:close()
print(("changed=%d"):format(n or -1))
