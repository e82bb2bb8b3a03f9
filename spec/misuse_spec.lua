-- Issue 8: Lua misuse gives clear errors, never a crash.
local helper = require("spec.helper")
local quay = helper.quay

describe("Lua misuse", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    for i = 1, 600 do M.Post:create { title = "p" .. i, author = u } end
  end)
  after_each(function() db:close() end)

  it("raises connection on a closed db, and works again after reopen", function()
    local q = M.Post:filter { views = 0 }
    local u = M.User:first()
    db:close()
    helper.raises("connection", q.count, q)
    helper.raises("connection", q.all, q)
    helper.raises("connection", M.User.create, M.User, { name = "x", email = "y" })
    helper.raises("connection", function() return u.posts:count() end)
    helper.raises("connection", db.execute, db, "SELECT 1")
    if not helper.is_pg then return end   -- a memory db is gone once closed
    db:reopen()
    assert.equal(600, q:count())
  end)

  it("stops an iterator cleanly when the db closes under it", function()
    local n = 0
    local ok, err = pcall(function()
      for _ in M.Post:iter() do
        n = n + 1
        if n == 10 then db:close() end
      end
    end)
    -- rows already read in the current chunk may still be delivered, then
    -- the next read fails with `connection`
    assert.is_false(ok)
    assert.equal("connection", err.code)
  end)

  it("rejects wrong self and wrong argument types with errors", function()
    for _, call in ipairs({
      function() return M.User.create(nil, {}) end,
      function() return M.User.create(M.Post, 5) end,
      function() return M.User:filter(5) end,
      function() return M.User:filter { name = {} } end,
      function() return M.User:filter { name = function() end } end,
      function() return M.User:query().filter(db, {}) end,
      function() return db.close(M.User) end,
      function() return M.User:first().save({}) end,
      function() return M.User:first().delete(5) end,
      function() return M.User:order_by(5) end,
      function() return M.User:limit("x") end,
      function() return M.User:limit(-1) end,
      function() return M.User:prefetch_related(quay.prefetch("posts", M.User:query())):all() end,
      function() return M.User:where_has("posts", function() return 5 end) end,
      function() return quay.prefetch(5) end,
      function() return quay.any(5) end,
      function() return db:model(5, {}) end,
      function() return db:transaction(5) end,
      function() return M.User:first().posts:add(5) end,
      function() return M.User:first().posts:add(M.User:first()) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.truthy(err)
    end
    assert.equal(600, M.Post:count())
  end)

  it("keeps a related set usable after its owner is collected", function()
    local set = M.User:first().posts
    collectgarbage()
    collectgarbage()
    assert.equal(600, #set)
    assert.equal(600, set:count())
  end)

  it("iterates across coroutine yields, interleaved", function()
    local function walker()
      return coroutine.wrap(function()
        for rec in M.Post:order_by("id"):iter() do coroutine.yield(rec.title) end
      end)
    end
    local a, b = walker(), walker()
    for i = 1, 600 do
      assert.equal("p" .. i, a())
      assert.equal("p" .. i, b())
    end
  end)

  it("survives an error raised inside a transaction callback mid-iteration", function()
    local ok = pcall(db.transaction, db, function()
      for rec in M.Post:iter() do
        if rec.title == "p300" then error("stop") end
      end
    end)
    assert.is_false(ok)
    assert.equal(600, M.Post:count())
  end)
end)

describe("Misuse messages", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
  end)
  after_each(function() db:close() end)

  it("names the method and the value for a wrong argument", function()
    helper.mentions(helper.raises("misuse", function() return M.Post:limit(1.5) end),
      "limit", "1.5")
    helper.mentions(helper.raises("misuse", function() return M.Post:query():offset("x") end),
      "offset", "x")
    helper.mentions(helper.raises("misuse", function() return M.Post:limit() end), "limit")
    helper.mentions(helper.raises("misuse", function() return M.Post:filter(5) end), "filter")
    helper.mentions(helper.raises("misuse", function() return M.Post:exclude("x") end), "exclude")
    helper.mentions(helper.raises("misuse", function()
      return M.Post:where_has("comments", 5) end), "where_has")
    helper.mentions(helper.raises("misuse", function()
      return M.Post:select_related(5) end), "select_related")
    helper.mentions(helper.raises("misuse", function() return M.Post:update(5) end), "update")
    helper.mentions(helper.raises("misuse", function() return M.Post:create(5) end), "create")
    helper.mentions(helper.raises("misuse", function() return M.Post:find() end), "find")
    helper.mentions(helper.raises("misuse", function() return M.Post:bulk_create(1) end),
      "bulk_create")
    helper.mentions(helper.raises("misuse", function() return db:transaction(5) end),
      "transaction")
    helper.mentions(helper.raises("misuse", function() return db:on_query(5) end), "on_query")
    helper.mentions(helper.raises("misuse", function() return db:model("X", 5) end), "model")
    helper.mentions(helper.raises("misuse", function() return db:rows("SELECT 1", 5) end),
      "params")
    helper.mentions(helper.raises("misuse", function() return quay.any(5) end), "quay.any")
    helper.raises("misuse", function() return quay.open(helper.url, 5) end)
    helper.raises("misuse", function() return quay.prefetch("posts", M.User:query(), 5) end)
    local u = M.User:create { name = "a", email = "a" }
    helper.mentions(helper.raises("misuse", function() return u.posts:set(5) end), "set")
  end)

  it("says to call with a colon", function()
    helper.mentions(helper.raises("misuse", function() return M.Post.filter { title = "x" } end),
      "Post:filter", "colon")
    helper.mentions(helper.raises("misuse", function() return M.Post.count() end),
      "Post:count", "colon")
    helper.mentions(helper.raises("misuse", function() return M.Post.create { title = "x" } end),
      "create", "colon")
    local q = M.Post:query()
    helper.mentions(helper.raises("misuse", function() return q.filter { title = "x" } end),
      "filter", "colon")
    helper.mentions(helper.raises("misuse", function() return db.check() end), "check", "colon")
    local u = M.User:create { name = "a", email = "a" }
    helper.mentions(helper.raises("misuse", function() return u.save() end), "save", "colon")
  end)

  it("names model and field for a value Quay cannot store", function()
    local e = helper.raises("validation", M.User.create, M.User, { name = {}, email = "a" })
    assert.equal("User", e.model)
    assert.equal("name", e.field)
    helper.mentions(e, "User", "name")
    e = helper.raises("validation", function()
      return M.Post:filter { title = function() end }:count()
    end)
    helper.mentions(e, "Post", "title")
    assert.equal("title", e.field)
    e = helper.raises("validation", function()
      return M.Post:query():update { title = coroutine.create(print) }
    end)
    helper.mentions(e, "Post", "title")
  end)

  it("says a record belongs to another database", function()
    -- a second handle (on PostgreSQL to the same database: still another db)
    local other = quay.open(helper.url)
    local O = helper.blog(other)
    local stranger = O.User:create { name = "s", email = "s" }
    local t = O.Tag:create { name = "t" }
    local u = M.User:create { name = "a", email = "a" }
    local p = M.Post:create { title = "p", author = u }
    for _, call in ipairs {
      function() return M.Post:create { title = "x", author = stranger } end,
      function() return M.Post:create { title = "x", author_id = stranger } end,
      function() p.author = stranger end,
      function() return M.Post:filter { author = stranger }:count() end,
      function() return M.Post:filter { author__in = { u, stranger } }:count() end,
      function() return M.Post:query():update { author = stranger } end,
      function() return p.tags:add(t) end,
      function() return u.posts:remove(O.Post:create { title = "o", author = stranger }) end,
    } do
      helper.mentions(helper.raises("validation", call), "another database")
    end
    assert.equal(0, M.Post:filter { title = "x" }:count())
    assert.equal(u, M.Post:get { title = "p" }.author)
    assert.equal(0, #M.Post:get { title = "p" }.tags)
    other:close()
  end)
end)
