-- A process killed (SIGKILL) in the middle of a SQLite table rebuild, many
-- times at random moments, on a file database: after reopening, the
-- database is either entirely before or entirely after the migration, and
-- PRAGMA integrity_check and foreign_key_check are clean (reference.md
-- "Schema evolution": one migration is one transaction).  PostgreSQL's
-- transactional DDL is covered by migrations_spec's failure walk and by
-- pg_spec's killed server.
local helper = require("spec.helper")
local quay = helper.quay

describe("SIGKILL during a SQLite rebuild", function()
  if helper.is_pg then
    it("runs on SQLite (PostgreSQL rolls back a dead session's transaction)", function()
      assert.is_true(helper.is_pg)
    end)
    return
  end

  local build = assert(os.getenv("QUAY_BUILD_DIR"), "QUAY_BUILD_DIR (spec/run_busted.sh sets it)")
  local quay_bin = build .. "/bin/quay"
  local function shquote(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end
  local N = 20000

  local V1 = [[
local quay = require("quay")
return function(db)
  db:model("User", { name = quay.string() })
  db:model("Post", { title = quay.string { max = 100 }, views = quay.integer(),
                     author = quay.belongs_to("User", { related_name = "posts" }) })
  db:model("Comment", { post = quay.belongs_to("Post"), body = quay.text() })
end
]]
  -- Version 2: a type change and a NOT NULL column with a default: a rebuild.
  local V2 = [[
local quay = require("quay")
return function(db)
  db:model("User", { name = quay.string() })
  db:model("Post", { title = quay.text(), views = quay.integer(),
                     author = quay.belongs_to("User", { related_name = "posts" }),
                     rating = quay.number { default = 1.5 } })
  db:model("Comment", { post = quay.belongs_to("Post"), body = quay.text() })
end
]]

  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. shquote(dir)))
  end)
  after_each(function() os.execute("rm -rf " .. shquote(dir)) end)

  local function write(path, text)
    local f = assert(io.open(path, "wb")); f:write(text); f:close()
  end

  -- The posts table's columns, as one string.
  local function posts_shape(db)
    for _, t in ipairs(db:inspect().tables) do
      if t.name == "posts" then
        local c = {}
        for _, col in ipairs(t.columns) do c[#c + 1] = col.name .. ":" .. col.type end
        return table.concat(c, ",")
      end
    end
  end

  it("leaves the database entirely before or entirely after, and clean", function()
    local tmpl, work = dir .. "/tmpl.db", dir .. "/work.db"
    write(dir .. "/v1.lua", V1)
    write(dir .. "/v2.lua", V2)
    -- The child: migrate to version 2, then say so.
    -- It prints every statement as it sends it, so the killer can pick one.
    write(dir .. "/child.lua", ([[
local quay = require("quay")
local db = quay.open("sqlite:" .. ...)
dofile(%q)(db)
db:on_query(function(sql) io.write(sql:gsub("\n", " "), "\n"); io.stdout:flush() end)
db:migrate()
io.write("done\n")
]]):format(dir .. "/v2.lua"))
    do
      local db = quay.open("sqlite:" .. tmpl)
      dofile(dir .. "/v1.lua")(db)
      db:create_tables()
      db:execute("INSERT INTO users (name) VALUES ('ann')")
      db:execute(([[WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
        WHERE x < %d) INSERT INTO posts (title, views, author_id)
        SELECT 'post ' || x, x, 1 FROM c]]):format(N))
      db:execute([[INSERT INTO comments (post_id, body) SELECT id, 'c' FROM posts]])
      db:execute("PRAGMA wal_checkpoint(TRUNCATE)")
      db:close()
    end
    local function fresh()
      os.execute(("rm -f %s %s-wal %s-shm && cp %s %s"):format(shquote(work),
        shquote(work), shquote(work), shquote(tmpl), shquote(work)))
    end
    -- The shapes before and after, and how long a whole run takes.
    local before, after, nStmt
    do
      local db = quay.open("sqlite:" .. tmpl)
      before = posts_shape(db)
      db:close()
      fresh()
      assert(os.execute(("env -u LD_PRELOAD %s %s %s >%s"):format(
        shquote(quay_bin), shquote(dir .. "/child.lua"), shquote(work),
        shquote(dir .. "/full.out"))))
      local f = assert(io.open(dir .. "/full.out"))
      nStmt = 0
      for line in f:lines() do
        if line ~= "done" then nStmt = nStmt + 1 end
      end
      f:close()
      assert.is_true(nStmt > 10, "statements of the migration: " .. nStmt)
      db = quay.open("sqlite:" .. work)
      after = posts_shape(db)
      db:close()
      assert.are_not.equal(before, after)
    end
    -- Kill after a random statement has been sent, at a random moment
    -- within it (0 to 20 ms later): over the runs, every stage of the
    -- rebuild, from BEGIN to COMMIT.
    math.randomseed(os.time())
    local seen = { before = 0, after = 0 }
    local runs = 40
    for i = 1, runs do
      fresh()
      local k = i == 1 and 1 or (i == runs and nStmt + 1 or math.random(1, nStmt))
      local delay = math.random() * 0.02
      os.execute("rm -f " .. shquote(dir .. "/fifo") .. " && mkfifo " .. shquote(dir .. "/fifo"))
      local script = ([[
%s %s %s >%s 2>/dev/null & pid=$!
n=0
while read -r line; do
  n=$((n + 1))
  if [ "$n" -ge %d ]; then sleep %.3f; kill -9 $pid 2>/dev/null; break; fi
done <%s
cat %s >/dev/null 2>&1 & cpid=$!
wait $pid
kill $cpid 2>/dev/null
]]):format(shquote(quay_bin), shquote(dir .. "/child.lua"), shquote(work),
        shquote(dir .. "/fifo"), k, delay, shquote(dir .. "/fifo"),
        shquote(dir .. "/fifo"))
      os.execute("env -u LD_PRELOAD sh -c " .. shquote(script) .. " 2>/dev/null")
      local db = quay.open("sqlite:" .. work)
      local shape = posts_shape(db)
      assert.is_true(shape == before or shape == after,
        ("run %d (statement %d + %.3f s): posts is %s"):format(i, k, delay,
          tostring(shape)))
      seen[shape == before and "before" or "after"] = seen[shape == before and "before" or "after"] + 1
      assert.same({ { integrity_check = "ok" } }, db:rows("PRAGMA integrity_check"))
      assert.same({}, db:rows("PRAGMA foreign_key_check"))
      assert.equal(N, db:rows("SELECT count(*) AS n FROM posts")[1].n)
      assert.equal(N, db:rows("SELECT count(*) AS n FROM comments")[1].n)
      assert.equal(N * (N + 1) // 2, db:rows("SELECT sum(views) AS s FROM posts")[1].s)
      assert.is_nil(next(db:rows("SELECT name FROM sqlite_master WHERE name LIKE 'quay_new_%'")))
      db:close()
    end
    assert.is_true(seen.before >= 1 and seen.after >= 1,
      ("before %d, after %d"):format(seen.before, seen.after))
  end)
end)
