-- Issue 8: I/O and statement failure injection.  The k-th statement of a
-- multi-statement write fails (test hook quay.core._test.fail_statement);
-- after each failure the data equals the state before the call.
local helper = require("spec.helper")
local quay = helper.quay
local test = require("quay.core")._test

local function snapshot(db) return helper.rows_snapshot(db, true) end

-- Fail statement 1, 2, ... of op() until it succeeds; every failed run
-- must leave the database as it was.  Returns the number of failures.
local function walk(db, op)
  local before = snapshot(db)
  local k = 1
  while true do
    test.fail_statement(db, k)
    local ok, err = pcall(op)
    test.fail_statement(db, 0)
    if ok then return k - 1 end
    assert.equal("sql", err.code, tostring(err))
    assert.equal(before, snapshot(db), "statement " .. k .. " left changes")
    k = k + 1
    assert.is_true(k < 200)
  end
end

describe("Statement failure injection", function()
  if not test then
    it("needs a QUAY_TEST build (test hooks compiled in)", function()
      assert.is_nil(test)
    end)
    return
  end

  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    M.Profile:create { user = u, bio = "b" }
    local tags = {}
    for i = 1, 6 do tags[i] = M.Tag:create { name = "t" .. i } end
    for i = 1, 3 do
      local p = M.Post:create { title = "p" .. i, author = u }
      p.tags:add(tags[i], tags[i + 1])
      M.Comment:create { post = p, body = "c" }
    end
  end)
  after_each(function() db:close() end)

  it("many-to-many :set is all or nothing", function()
    local p = M.Post:get { title = "p1" }
    local want = M.Tag:filter { name__in = { "t3", "t4", "t5" } }:all()
    local n = walk(db, function() p.tags:set(want) end)
    assert.is_true(n >= 3, "walked " .. n)
    assert.equal(3, #M.Post:get { title = "p1" }.tags)
  end)

  it("many-to-many :add of several targets is all or nothing", function()
    local p = M.Post:get { title = "p2" }
    local all = M.Tag:all()
    local n = walk(db, function() p.tags:add(table.unpack(all)) end)
    assert.equal(1, n)            -- one INSERT ... SELECT, whatever the count
    assert.equal(6, p.tags:count())
  end)

  it("bulk_create is all or nothing", function()
    local rows = {}
    for i = 1, 30 do rows[i] = { name = "n" .. i, email = "n" .. i .. "@y" } end
    local n = walk(db, function() M.User:bulk_create(rows) end)
    assert.is_true(n >= 2)
    assert.equal(31, M.User:count())
  end)

  it("bulk_create of many rows (batched, its own key check) is all or nothing", function()
    local u = M.User:get { name = "a" }
    local rows = {}
    for i = 1, 150 do rows[i] = { title = "b" .. i, author_id = u.id } end
    local before = snapshot(db)
    local k = 1
    while true do
      test.fail_statement(db, k)
      local ok, err = pcall(M.Post.bulk_create, M.Post, rows)
      test.fail_statement(db, 0)
      if ok then break end
      assert.equal("sql", err.code, tostring(err))
      assert.equal(before, snapshot(db), "statement " .. k .. " left changes")
      -- the database's own key checks are on again
      helper.raises("integrity", M.Post.create, M.Post, { title = "x", author_id = 987654 })
      k = k + 1
      assert.is_true(k < 200)
    end
    -- every statement of the batched call, its key check and COMMIT too
    -- (SQLite: BEGIN, 4 set-up reads, 3 INSERTs of up to 64 rows, the
    -- check; PostgreSQL: BEGIN, one INSERT, COMMIT)
    assert.is_true(k >= (helper.is_pg and 3 or 10), "walked " .. k)
    assert.equal(153, M.Post:count())
  end)

  it("a multi-level cascade through qs:delete is all or nothing", function()
    local n = walk(db, function() M.User:query():delete() end)
    assert.is_true(n >= 5)
    assert.equal(0, M.Comment:count())
  end)

  -- Issue 13: every new write is all or nothing.
  it("upsert of several batches is all or nothing", function()
    local rows = {}
    for i = 1, 700 do rows[i] = { name = "u" .. i, email = (i % 350) .. "@y" } end
    rows[701] = { name = "a2", email = "a@x" }           -- updates the old row
    local n = walk(db, function() M.User:upsert(rows, { conflict = { "email" } }) end)
    assert.is_true(n >= 3, "walked " .. n)
    assert.equal(351, M.User:count())
    assert.equal("a2", M.User:get { email = "a@x" }.name)
  end)

  it("bulk_update is all or nothing", function()
    local posts = M.Post:order_by("id"):all()
    for i, p in ipairs(posts) do p.views, p.title = 10 * i, "new" .. i end
    local n = walk(db, function() M.Post:bulk_update(posts, { "views", "title" }) end)
    assert.is_true(n >= 2, "walked " .. n)
    assert.equal(20, M.Post:get { title = "new2" }.views)
  end)

  it("get_or_create and update_or_create are all or nothing", function()
    local n = walk(db, function()
      M.User:get_or_create({ email = "g@x" }, { name = "g" })
    end)
    assert.is_true(n >= 3, "walked " .. n)
    assert.equal(1, M.User:filter { email = "g@x" }:count())
    n = walk(db, function()
      M.User:update_or_create({ email = "g@x" }, { name = "g2" })
    end)
    assert.is_true(n >= 3, "walked " .. n)
    assert.equal("g2", M.User:get { email = "g@x" }.name)
    n = walk(db, function()
      M.User:update_or_create({ email = "h@x" }, { name = "h" })
    end)
    assert.equal(1, M.User:filter { email = "h@x" }:count())
  end)

  it("many-to-many :set of many and a failed save are all or nothing", function()
    local p = M.Post:get { title = "p3" }
    local tags = {}
    for i = 1, 40 do tags[i] = { name = "x" .. i } end
    tags = M.Tag:bulk_create(tags)
    local n = walk(db, function() p.tags:set(tags) end)
    assert.is_true(n >= 3, "walked " .. n)
    assert.equal(40, p.tags:count())
    -- a save that fails keeps the record's changes for the retry
    local u = M.User:first()
    u.name = "renamed"
    walk(db, function() u:save() end)
    assert.same({}, u:changed())
    assert.equal("renamed", M.User:first().name)
  end)

  it("an update changing a referenced key is all or nothing", function()
    local u = M.User:first()
    local n = walk(db, function()
      M.User:filter { id = u.id }:update { id = 1000 }
    end)
    assert.is_true(n >= 2)
    assert.equal(3, M.Post:filter { author_id = 1000 }:count())
  end)
end)

-- Issue 14: hooks write inside the call's transaction; a failing statement
-- anywhere (the call's own, a hook's) undoes all of it.
describe("Statement failure injection with model behaviour", function()
  if not test then
    it("needs a QUAY_TEST build (test hooks compiled in)", function()
      assert.is_nil(test)
    end)
    return
  end
  local db, User, Post, Log
  before_each(function()
    db = helper.open()
    Log = db:model("Log", { what = quay.string() })
    local function log(what) return function(rec) Log:create { what = what .. " " .. rec.title } end end
    User = db:model("User", { name = quay.string() })
    Post = db:model("Post", {
      title = quay.string { validate = function(v) return #v > 0 end },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      hooks = { before_save = log("before"), after_save = log("after"),
                before_delete = log("deleting"), after_delete = log("deleted") },
      soft_delete = true,
    })
    db:create_tables()
    local u = User:create { name = "a" }
    for i = 1, 3 do Post:create { title = "p" .. i, author = u } end
  end)
  after_each(function() db:close() end)

  it("a save with hooks that write is all or nothing", function()
    local u = User:first()
    local n = walk(db, function() Post:create { title = "new", author = u } end)
    assert.is_true(n >= 3, "walked " .. n)      -- two hook inserts and the row
    local p = Post:get { title = "new" }
    p.title = "renamed"
    walk(db, function() p:save() end)
    assert.equal(1, Post:filter { title = "renamed" }:count())
  end)

  it("bulk_create with hooks is all or nothing", function()
    local u = User:first()
    local n = walk(db, function()
      Post:bulk_create { { title = "b1", author = u }, { title = "b2", author = u } }
    end)
    assert.is_true(n >= 6, "walked " .. n)
    assert.equal(5, Post:count())
  end)

  it("a soft delete and a hard cascade with delete hooks are all or nothing", function()
    local n = walk(db, function() Post:filter { title__in = { "p1", "p2" } }:delete() end)
    assert.is_true(n >= 4, "walked " .. n)
    assert.equal(1, Post:count())
    n = walk(db, function() User:query():delete() end)
    assert.is_true(n >= 4, "walked " .. n)
    assert.equal(0, Post:with_deleted():count())
    assert.equal(0, User:count())
  end)
end)
