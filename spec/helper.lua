-- spec/helper.lua: shared set-up for the busted specs.
-- The backend comes from QUAY_URL (default "sqlite::memory:"), so every spec
-- file runs unchanged on SQLite and on PostgreSQL.
local quay = require("quay")

local helper = { quay = quay }

helper.url = os.getenv("QUAY_URL") or "sqlite::memory:"
helper.backend = helper.url:match("^sqlite") and "sqlite" or "postgresql"
helper.is_pg = helper.backend == "postgresql"
--- The pass through PgBouncer in transaction pooling mode
--- (spec/run_busted.sh pgbouncer): every PostgreSQL handle is opened with
--- { prepare = false }, also by specs that call quay.open themselves.
helper.pooled = os.getenv("QUAY_PG_PREPARE") == "0"
if helper.pooled then
  local open = quay.open
  quay.open = function(url, opts, ...)   -- extra arguments pass through
    -- read raw and copied with its metatable, as Quay reads options
    -- (options_tables_spec hands it proxies whose __index raises)
    if type(url) == "string" and not url:match("^sqlite:") and
        (opts == nil or (type(opts) == "table" and rawget(opts, "prepare") == nil)) then
      local o = { prepare = false }
      for k, v in next, opts or {} do o[k] = v end
      opts = setmetatable(o, opts and getmetatable(opts))
    end
    return open(url, opts, ...)
  end
end

--- A fresh database: a new in-memory SQLite db, or a PostgreSQL db whose
--- public schema has been emptied.
function helper.open(opts)
  local db = quay.open(helper.url, opts)
  if helper.is_pg then
    db:execute("DROP SCHEMA IF EXISTS public CASCADE")
    db:execute("CREATE SCHEMA public")
  end
  return db
end

--- Run fn, which must raise a Quay error of the given code; returns it.
function helper.raises(code, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error of code " .. code .. ", got success")
  assert(type(err) == "table",
    "expected a Quay error object, got " .. tostring(err))
  assert(err.code == code,
    ("expected code %s, got %s: %s"):format(code, tostring(err.code),
      tostring(err.message)))
  return err
end

--- Assert that a message mentions every name given.
function helper.mentions(err, ...)
  for _, name in ipairs({ ... }) do
    assert(tostring(err.message):find(name, 1, true),
      ("message %q does not mention %q"):format(tostring(err.message), name))
  end
end

--- Statements sent while running fn.
function helper.queries(db, fn)
  local before = db:stats().queries
  fn()
  return db:stats().queries - before
end

--- The blog schema used across specs.
function helper.blog(db)
  local M = {}
  M.User = db:model("User", {
    name = quay.string { max = 100 },
    email = quay.string { unique = true },
  })
  M.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
    bio = quay.text { null = true },
  })
  M.Tag = db:model("Tag", { name = quay.string { unique = true } })
  M.Post = db:model("Post", {
    title = quay.string(),
    views = quay.integer { default = 0 },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  M.Comment = db:model("Comment", {
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
    body = quay.text(),
  })
  db:create_tables()
  return M
end

--- Shell quoting, file reading and writing, and the quay command, for the
--- specs that run it (the build's bin/quay; QUAY_BUILD_DIR, set by
--- spec/run_busted.sh, else build).
function helper.shquote(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

function helper.slurp(p)
  local f = io.open(p, "rb"); local s = f and f:read("a") or ""; if f then f:close() end
  return s
end

function helper.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

helper.quay_bin = (os.getenv("QUAY_BUILD_DIR") or "build") .. "/bin/quay"

--- Run the quay command with the given arguments; returns status, stdout,
--- stderr.
function helper.quay_cmd(...)
  local args = {}
  for _, a in ipairs({ ... }) do args[#args + 1] = helper.shquote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local ok, _, status = os.execute(helper.quay_bin .. " " .. table.concat(args, " ")
    .. " >" .. out .. " 2>" .. err)
  local o, e = helper.slurp(out), helper.slurp(err)
  os.remove(out); os.remove(err)
  return ok and 0 or status, o, e
end

--- The SQL of the statements fn sends (on_query is restored even when fn
--- raises, and the error passes on).
function helper.statements(db, fn)
  local list = {}
  db:on_query(function(sql) list[#list + 1] = sql end)
  local ok, err = pcall(fn)
  db:on_query(nil)
  if not ok then error(err, 0) end
  return list
end

--- A database URL several handles can open: a new SQLite file, or the
--- emptied PostgreSQL database.  helper.remove_files() deletes the files.
local tmpfiles = {}
function helper.shared_url()
  if helper.is_pg then
    helper.open():close()
    return helper.url
  end
  local path = os.tmpname()
  os.remove(path)
  tmpfiles[#tmpfiles + 1] = path
  return "sqlite:" .. path
end

--- A new directory, removed by helper.remove_files() too.
function helper.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  tmpfiles[#tmpfiles + 1] = dir
  assert(os.execute("mkdir -p " .. helper.shquote(dir)))
  return dir
end

function helper.remove_files()
  for _, p in ipairs(tmpfiles) do
    os.remove(p); os.remove(p .. "-wal"); os.remove(p .. "-shm")
    os.execute("rm -rf " .. helper.shquote(p))
  end
  tmpfiles = {}
end

--- Every table's rows, by hand-written SQL, as one string (to compare a
--- database before and after a call).  bInternal keeps SQLite's own
--- tables (sqlite_sequence) in it.
function helper.rows_snapshot(db, bInternal)
  local parts = {}
  local sql = helper.is_pg
    and "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    or ("SELECT name FROM sqlite_master WHERE type = 'table'"
        .. (bInternal and "" or " AND name NOT LIKE 'sqlite_%'") .. " ORDER BY 1")
  for _, t in ipairs(db:rows(sql)) do
    for _, r in ipairs(db:rows(('SELECT * FROM "%s" ORDER BY 1'):format(t.name))) do
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      local cells = { t.name }
      for _, k in ipairs(keys) do cells[#cells + 1] = k .. "=" .. tostring(r[k]) end
      parts[#parts + 1] = table.concat(cells, ",")
    end
  end
  return table.concat(parts, "\n")
end

return helper
