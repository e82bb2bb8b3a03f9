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
