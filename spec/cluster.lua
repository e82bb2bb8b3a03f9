-- spec/cluster.lua: the test cluster of scripts/pg-cluster.sh (a primary,
-- a streaming replica, PgBouncer) as the scale-out specs use it.
local helper = require("spec.helper")
local quay = helper.quay

local cluster = {}
cluster.replica_env = os.getenv("QUAY_PG_REPLICA_URL")
cluster.dir = os.getenv("QUAY_PG_CLUSTER")
cluster.have = helper.is_pg and cluster.replica_env ~= nil and cluster.dir ~= nil

function cluster.sleep(s) os.execute(("sleep %.2f"):format(s)) end

-- Run a pg-cluster.sh action on the suite's cluster.
function cluster.run(action)
  local ok = os.execute(("scripts/pg-cluster.sh %s %s >/dev/null 2>&1"):format(action, cluster.dir))
  assert(ok, "scripts/pg-cluster.sh " .. action .. " failed")
end

-- url with a query parameter added.
function cluster.with_param(url, k, v)
  return url .. (url:find("?", 1, true) and "&" or "?") .. k .. "=" .. v
end

-- The replica URL for the database helper.url names (the PgBouncer pass
-- runs in its own database, which the replica has too).
function cluster.replica_url(app)
  local dbname = helper.url:match("/([^/?]+)%??[^/]*$")
  local url = cluster.replica_env:gsub("/[^/?]+$", "/" .. dbname)
  return app and cluster.with_param(url, "application_name", app) or url
end

-- Wait until the replica has replayed everything written so far (the
-- primary commits asynchronously: its insert position is the end); it
-- resumes replaying first, also if a run that paused it died before
-- resuming.
function cluster.caught_up(db)
  local lsn = db:rows("SELECT pg_current_wal_insert_lsn()::text AS l")[1].l
  local r = quay.open(cluster.replica_url())
  r:rows("SELECT pg_wal_replay_resume() IS NULL AS x")
  for _ = 1, 400 do
    if r:rows("SELECT pg_last_wal_replay_lsn() >= ?::pg_lsn AS ok", { lsn })[1].ok then
      r:close()
      return
    end
    cluster.sleep(0.05)
  end
  r:close()
  error("the replica did not catch up")
end

return cluster
