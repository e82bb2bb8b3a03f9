-- spec/oom/scenario.lua: the workload the OOM host replays under
-- allocation failures.  `setup` declares the models (and with data = true
-- fills the database); `ops` are the operations, each all-or-nothing;
-- `signature` renders the whole database (schema and rows) as one string.
local quay = require("quay")

local S = {}

function S.declare(db)
  local M = {}
  M.User = db:model("User", { name = quay.string(), email = quay.string { unique = true } })
  M.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
    bio = quay.text { null = true } })
  M.Tag = db:model("Tag", { name = quay.string() })
  M.Post = db:model("Post", {
    title = quay.string(), views = quay.integer { default = 0 },
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }) })
  M.Comment = db:model("Comment", {
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
    body = quay.text() })
  -- Issue 14: behaviour.  Hooks write Tag rows, so a hook's own writes
  -- must be undone with the call that failed.
  M.Note = db:model("Note", {
    body = quay.string { validate = function(v) return #v > 0, "empty" end },
    kind = quay.string { choices = { "a", "b" }, default = "a" },
    stars = quay.integer { default = 0, min = 0, max = 5 },
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "notes",
                                     null = true }),
    methods = { short = function(self) return self.body:sub(1, 3) end },
    scopes = { starred = function(qs) return qs:filter { stars__gt = 0 } end },
    validate = function(rec) return rec.stars < 5 or rec.kind == "b", "five stars are b" end,
    hooks = {
      before_save = function(rec)
        if rec.body == "yield" then coroutine.yield() end
        if rec.body ~= "" and rec.body:sub(-1) ~= "!" then rec.body = rec.body .. "!" end
      end,
      after_save = function(rec, created)
        if created then M.Tag:create { name = "saved " .. rec.body } end
      end,
      before_delete = function(rec)
        if rec.body == "keep!" then error({ code = "kept" }) end
      end,
      after_delete = function(rec) M.Tag:create { name = "gone " .. rec.body } end,
    },
    soft_delete = true,
  })
  return M
end

function S.fill(db, M)
  db:create_tables()
  db:transaction(function()
    local tags = {}
    for i = 1, 4 do tags[i] = M.Tag:create { name = "t" .. i } end
    for u = 1, 4 do
      local user = M.User:create { name = "u" .. u, email = u .. "@x" }
      M.Profile:create { user = user, bio = "bio" .. u }
      for p = 1, 3 do
        local post = M.Post:create { title = ("p%d.%d"):format(u, p), author = user }
        post.tags:add(tags[p], tags[p + 1])
        M.Comment:create { post = post, body = "c" }
        M.Note:create { body = "n" .. u .. "." .. p, post = post, stars = p }
      end
    end
  end)
end

-- Each op is atomic: after a failure the database is as before the op.
S.ops = {
  function(db, M)   -- reads with every loader; no change
    for _, u in ipairs(M.User:with("profile", "posts__tags"):with_count("posts"):all()) do
      assert(#u.posts == 3 and u.profile.bio)
    end
    for c in M.Comment:select_related("post__author"):iter() do assert(c.post.author.name) end
    assert(M.User:filter { posts__tags__name__in = { "t1", "t2" } }:count() == 4)
  end,
  function(db, M)   -- bulk insert
    local rows = {}
    for i = 1, 20 do rows[i] = { name = "n" .. i, email = "n" .. i .. "@y" } end
    M.User:bulk_create(rows)
  end,
  function(db, M)   -- bulk insert of many rows: batched, its own key check
    -- A failed attempt must leave the database's own key checks on: were
    -- they off, this row would go in and change the signature.
    pcall(db.execute, db, "INSERT INTO posts (title, views, author_id) VALUES ('bad', 0, 999999)")
    local u = M.User:get { name = "u1" }
    local rows = {}
    for i = 1, 70 do rows[i] = { title = "bulk" .. i, author_id = u.id, views = i } end
    M.Post:bulk_create(rows)
  end,
  function(db, M)   -- many-to-many set
    local p = M.Post:get { title = "p1.1" }
    p.tags:set(M.Tag:filter { name__in = { "t3", "t4" } }:all())
  end,
  function(db, M)   -- update with a referenced key change (on_update)
    M.Post:filter { views = 0 }:update { views = 7 }
  end,
  function(db, M)   -- multi-level cascade
    M.User:filter { name__in = { "u1", "u2" } }:delete()
  end,
  function(db, M)   -- save of a new record through a set
    M.User:get { name = "u3" }.posts:create { title = "late" }
  end,
  -- Issue 13: writes done right.
  function(db, M)   -- upsert: updates and inserts in one call
    M.User:upsert({ { name = "u1b", email = "1@x" }, { name = "u9", email = "9@x" } },
                  { conflict = { "email" } })
  end,
  function(db, M)   -- bulk_update of a loaded result
    local posts = M.Post:filter { title__startswith = "p3" }:all()
    for i, p in ipairs(posts) do p.views = i end
    M.Post:bulk_update(posts, { "views" })
  end,
  function(db, M)   -- get_or_create (creates)
    M.User:get_or_create({ email = "g@x" }, { name = "g" })
  end,
  function(db, M)   -- update_or_create (updates)
    M.User:update_or_create({ email = "4@x" }, { name = "u4b" })
  end,
  function(db, M)   -- many-to-many add of a list
    M.Post:get { title = "p3.2" }.tags:add(M.Tag:all())
  end,
  function(db, M)   -- a save of the changed fields
    local p = M.Post:get { title = "p3.3" }
    p.title = "p3.3b"
    p:save()
  end,
  function(db, M)   -- row locks and transaction options
    db:transaction(function()
      local u = M.User:filter { name = "u3" }:select_for_update():first()
      u.name = "u3b"
      u:save()
    end, { isolation = "serializable" })
    db:transaction(function() assert(M.User:count() > 0) end, { readonly = true })
  end,
  -- Issue 14: model behaviour.
  function(db, M)   -- hooks that write, validation refusals, a failing hook
    db:transaction(function()
      local n = M.Note:create { body = "fresh", stars = 2 }
      assert(n:short() == "fre" and M.Note:starred():count() > 0)
      assert(not pcall(M.Note.create, M.Note, { body = "" }))
      assert(not pcall(M.Note.create, M.Note, { body = "x", kind = "z" }))
      assert(not pcall(M.Note.create, M.Note, { body = "x", stars = 5 }))
      M.Note:bulk_create { { body = "b1" }, { body = "b2", kind = "b", stars = 5 } }
    end)
  end,
  function(db, M)   -- a soft delete with hooks, a restore, a refused delete
    db:transaction(function()
      local notes = M.Note:filter { stars = 1 }:all()
      notes[1]:delete()
      M.Note:filter { stars = 2 }:delete()
      notes[1]:restore()
      local keep = M.Note:create { body = "keep" }
      assert(not pcall(keep.delete, keep))
      assert(M.Note:only_deleted():count() > 0)
    end)
  end,
  function(db, M)   -- a hard cascade through models with delete hooks
    M.User:filter { name = "u3" }:delete()
    M.Note:with_deleted():filter { stars = 2 }:delete { hard = true }
  end,
  function(db, M)   -- a hook that yields is refused; the db stays usable
    local co = coroutine.create(function() return M.Note:create { body = "yield" } end)
    assert(not coroutine.resume(co))
    M.Note:create { body = "after" }
  end,
  function(db, M)   -- a migration by a second handle: a rebuild, new columns, a new table
    local path = db:rows("PRAGMA database_list")[1].file
    local db2 <close> = quay.open("sqlite:" .. path)
    db2:model("User", { name = quay.string(), email = quay.string { unique = true },
                        nick = quay.string { null = true } })
    db2:model("Profile", {
      user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
      bio = quay.text { null = true } })
    db2:model("Tag", { name = quay.string() })
    db2:model("Post", {
      title = quay.text(), views = quay.number { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }) })
    db2:model("Comment", {
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "comments" }),
      body = quay.text(), stars = quay.integer { default = 1, index = true } })
    db2:model("Badge", { user = quay.belongs_to("User"), label = quay.string() })
    db2:model("Note", {                  -- a rule changed: its check rebuilt
      body = quay.string(), kind = quay.string { choices = { "a", "b" }, default = "a" },
      stars = quay.integer { default = 0, min = 0, max = 6 },
      post = quay.belongs_to("Post", { on_delete = quay.CASCADE, related_name = "notes",
                                       null = true }),
      soft_delete = true })
    db2:migrate()
  end,
}

function S.signature(db)
  local parts = {}
  local tables = {}
  for _, r in ipairs(db:rows(
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")) do
    tables[#tables + 1] = r.name
  end
  -- The schema too: a migration must not leave half of its DDL.
  for _, r in ipairs(db:rows(
      "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")) do
    parts[#parts + 1] = r.type .. " " .. r.name .. " " .. r.sql
  end
  for _, t in ipairs(tables) do
    -- Columns listed (a cached SELECT * of this connection would keep the
    -- columns it was prepared with after another connection migrated).
    local cols = {}
    for _, c in ipairs(db:rows(('SELECT name FROM pragma_table_info(\'%s\') ORDER BY cid')
        :format(t))) do
      cols[#cols + 1] = '"' .. c.name .. '"'
    end
    for _, r in ipairs(db:rows(('SELECT %s FROM "%s" ORDER BY 1'):format(
        table.concat(cols, ", "), t))) do
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      local cells = { t }
      for _, k in ipairs(keys) do
        -- a soft delete's time is the clock's: only whether it is set
        local v = k == "deleted_at" and (r[k] and "set" or "nil") or tostring(r[k])
        cells[#cells + 1] = k .. "=" .. v
      end
      parts[#parts + 1] = table.concat(cells, ",")
    end
  end
  return table.concat(parts, "\n")
end

return S
