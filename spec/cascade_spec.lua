-- docs/reference.md "Deleting and cascades" (issue 5)
local helper = require("spec.helper")
local quay = helper.quay

-- A snapshot of every table, to prove "nothing has changed".
local function snapshot(db, tables)
  local out = {}
  for _, t in ipairs(tables) do
    local rows = db:rows(('SELECT * FROM "%s" ORDER BY 1'):format(t))
    local parts = {}
    for _, r in ipairs(rows) do
      local keys = {}
      for k in pairs(r) do keys[#keys + 1] = k end
      table.sort(keys)
      local cells = {}
      for _, k in ipairs(keys) do cells[#cells + 1] = k .. "=" .. tostring(r[k]) end
      parts[#parts + 1] = table.concat(cells, ",")
    end
    out[t] = table.concat(parts, ";")
  end
  return out
end

-- Django's on_delete=RESTRICT example: songs restrict their album, and
-- artists cascade to both.
local function music(db)
  local Artist = db:model("Artist", { name = quay.string() })
  local Album = db:model("Album", {
    artist = quay.belongs_to("Artist", { on_delete = quay.CASCADE }) })
  local Song = db:model("Song", {
    artist = quay.belongs_to("Artist", { on_delete = quay.CASCADE }),
    album = quay.belongs_to("Album", { on_delete = quay.RESTRICT }),
  })
  db:create_tables()
  return Artist, Album, Song
end

describe("Deleting and cascades", function()
  local db
  before_each(function() db = helper.open() end)
  after_each(function() db:close() end)

  it("cascades recursively and returns counts per model, join tables by name", function()
    local M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    M.Profile:create { user = u }
    local t = M.Tag:create { name = "t" }
    for i = 1, 3 do
      local p = M.Post:create { title = "p" .. i, author = u }
      p.tags:add(t)
      M.Comment:create { post = p, body = "c" }
      M.Comment:create { post = p, body = "d" }
    end
    local other = M.User:create { name = "b", email = "b@x" }
    M.Post:create { title = "keep", author = other }
    local counts = u:delete()
    assert.same({ User = 1, Profile = 1, Post = 3, Comment = 6, posts_tags = 3 }, counts)
    assert.equal(1, M.Post:count())
    assert.equal(1, M.Tag:count())
    assert.equal(0, M.Comment:count())
  end)

  it("removes join rows of either side", function()
    local M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    local p = M.Post:create { title = "p", author = u }
    local t1, t2 = M.Tag:create { name = "1" }, M.Tag:create { name = "2" }
    p.tags:add(t1, t2)
    assert.same({ Tag = 1, posts_tags = 1 }, t1:delete())
    assert.equal(1, #M.Post:first().tags)
    assert.same({ Post = 1, posts_tags = 1 }, p:delete())
    assert.equal(1, M.Tag:count())
  end)

  it("deletes a self-referential tree 1,000 deep without recursion", function()
    local Cat = db:model("Category", { name = quay.string(),
      parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                         related_name = "children" }) })
    db:create_tables()
    local root = Cat:create { name = "0" }
    local cur = root
    db:transaction(function()
      for i = 1, 999 do cur = Cat:create { name = tostring(i), parent = cur } end
    end)
    Cat:create { name = "other" }
    assert.same({ Category = 1000 }, root:delete())
    assert.equal(1, Cat:count())
  end)

  it("handles cycles between models", function()
    local A = db:model("A", { name = quay.string(),
      b = quay.belongs_to("B", { null = true, on_delete = quay.CASCADE, related_name = "as" }) })
    local B = db:model("B", { name = quay.string(),
      a = quay.belongs_to("A", { on_delete = quay.CASCADE, related_name = "bs" }) })
    db:create_tables()
    local a = A:create { name = "a" }
    local b = B:create { name = "b", a = a }
    a.b = b
    a:save()
    A:create { name = "a2", b = b }
    assert.same({ A = 2, B = 1 }, a:delete())
    assert.equal(0, A:count() + B:count())
  end)

  it("SET_NULL and SET_DEFAULT update dependents (not counted)", function()
    local User = db:model("User", { name = quay.string() })
    local Post = db:model("Post", {
      editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                         related_name = "edited" }),
      owner = quay.belongs_to("User", { default = 1, on_delete = quay.SET_DEFAULT,
                                        related_name = "owned" }),
    })
    db:create_tables()
    local ghost = User:create { name = "ghost" }
    assert.equal(1, ghost.id)
    local u = User:create { name = "u" }
    local p = Post:create { editor = u, owner = u }
    assert.same({ User = 1 }, u:delete())
    p:refresh()
    assert.is_nil(p.editor_id)
    assert.equal(1, p.owner_id)
    assert.equal(ghost, p.owner)
  end)

  it("PROTECT refuses with `protected`, lists blockers, changes nothing", function()
    local User = db:model("User", { name = quay.string() })
    local Invoice = db:model("Invoice", {
      user = quay.belongs_to("User", { on_delete = quay.PROTECT }) })
    local Note = db:model("Note", {
      user = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
    db:create_tables()
    local u = User:create { name = "u" }
    Note:create { user = u }
    local i1, i2 = Invoice:create { user = u }, Invoice:create { user = u }
    local before = snapshot(db, { "users", "invoices", "notes" })
    local err = helper.raises("protected", u.delete, u)
    helper.mentions(err, "User", "Invoice")
    assert.equal(2, #err.blockers)
    assert.equal("Invoice", err.blockers[1].model)
    local keys = { err.blockers[1].key, err.blockers[2].key }
    table.sort(keys)
    assert.same({ i1.id, i2.id }, keys)
    assert.same(before, snapshot(db, { "users", "invoices", "notes" }))
    helper.raises("protected", function() return u:delete { dry_run = true } end)
    helper.raises("protected", function() return User:query():delete() end)
  end)

  it("RESTRICT follows Django's Artist / Album / Song example", function()
    local Artist, Album, Song = music(db)
    local one = Artist:create { name = "one" }
    local two = Artist:create { name = "two" }
    local album_one = Album:create { artist = one }
    local album_two = Album:create { artist = two }
    local song_one = Song:create { artist = one, album = album_one }
    local song_two = Song:create { artist = one, album = album_two }
    -- the album is blocked by its song
    local err = helper.raises("restricted", album_one.delete, album_one)
    helper.mentions(err, "Song")
    assert.equal(song_one.id, err.blockers[1].key)
    -- deleting artist one deletes album_one and its song through CASCADE
    assert.same({ Artist = 1, Album = 1, Song = 2 }, one:delete())
    -- song_two (artist one) went with it, so album_two is now free
    assert.same({ Artist = 1, Album = 1 }, two:delete())
    assert.equal(0, Song:filter { id = song_two.id }:count())
  end)

  it("RESTRICT blocks when the blocker is not deleted by the same call", function()
    local Artist, Album, Song = music(db)
    local one, two = Artist:create { name = "one" }, Artist:create { name = "two" }
    local album = Album:create { artist = one }
    Song:create { artist = two, album = album }
    local before = snapshot(db, { "artists", "albums", "songs" })
    helper.raises("restricted", one.delete, one)
    assert.same(before, snapshot(db, { "artists", "albums", "songs" }))
  end)

  it("NO_ACTION leaves it to the database: integrity, nothing changed", function()
    local User = db:model("User", { name = quay.string() })
    local Ref = db:model("Ref", { user = quay.belongs_to("User", { on_delete = quay.NO_ACTION }) })
    local Log = db:model("Log", { user = quay.belongs_to("User", { on_delete = quay.CASCADE }) })
    db:create_tables()
    local u = User:create { name = "u" }
    Ref:create { user = u }
    Log:create { user = u }
    local before = snapshot(db, { "users", "refs", "logs" })
    helper.raises("integrity", u.delete, u)
    assert.same(before, snapshot(db, { "users", "refs", "logs" }))
  end)

  it("qs:delete cascades and returns counts", function()
    local M = helper.blog(db)
    for i = 1, 5 do
      local u = M.User:create { name = "u" .. i, email = i .. "@x" }
      M.Post:create { title = "p", author = u }
    end
    assert.same({ User = 3, Post = 3 }, M.User:filter { id__lte = 3 }:delete())
    assert.same({}, M.User:filter { id__lte = 3 }:delete())
  end)

  it("dry_run returns the same counts and changes nothing", function()
    local M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    local t = M.Tag:create { name = "t" }
    for i = 1, 4 do
      local p = M.Post:create { title = "p" .. i, author = u }
      p.tags:add(t)
      M.Comment:create { post = p, body = "c" }
    end
    local tables = { "users", "posts", "tags", "posts_tags", "comments" }
    local before = snapshot(db, tables)
    local dry = u:delete { dry_run = true }
    assert.same(before, snapshot(db, tables))
    assert.same(M.User:filter { id = u.id }:delete { dry_run = true }, dry)
    assert.same(dry, u:delete())
  end)

  it("emits real foreign-key constraints", function()
    local M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    M.Post:create { title = "p", author = u }
    -- bypassing the engine, the database itself refuses a dangling key
    helper.raises("integrity", db.execute, db,
      "INSERT INTO posts (title, views, author_id) VALUES (?, ?, ?)", { "x", 0, 999 })
  end)

  it("is atomic: failing at any statement leaves every row as before", function()
    if not quay.core and not package.loaded["quay.core"]._test then return end
    local test = package.loaded["quay.core"]._test
    local M = helper.blog(db)
    local tables = { "users", "profiles", "posts", "tags", "posts_tags", "comments" }
    local function fill()
      local u = M.User:create { name = "a", email = "a@x" }
      M.Profile:create { user = u }
      local t = M.Tag:create { name = "t" .. u.id }
      for i = 1, 3 do
        local p = M.Post:create { title = "p" .. i, author = u }
        p.tags:add(t)
        M.Comment:create { post = p, body = "c" }
      end
      return u
    end
    local u = fill()
    local before = snapshot(db, tables)
    local failures, k = 0, 1
    while true do
      test.fail_statement(db, k)
      local ok = pcall(u.delete, u)
      test.fail_statement(db, 0)
      if ok then break end
      failures = failures + 1
      assert.same(before, snapshot(db, tables))
      k = k + 1
      assert.is_true(k < 100)
    end
    assert.is_true(failures >= 6, "walked " .. failures .. " statements")
    assert.equal(0, M.User:count())
  end)
end)
