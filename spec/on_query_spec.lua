-- reference.md "Opening a database" (db:on_query) and the second part's
-- "db:on_query(fn) receives params with params.n": the observer sees every
-- statement, may fail it with an error of its own (which comes back
-- unchanged from every call), and may even close or reopen the db.
local helper = require("spec.helper")
local quay = helper.quay

-- A db that survives db:close() + db:reopen() with its tables: a temp file
-- on SQLite (a memory db is gone once closed), the test server on PG.
local function reopenable()
  local path
  local db
  if helper.is_pg then
    db = helper.open()
  else
    path = os.tmpname()
    os.remove(path)
    db = quay.open("sqlite:" .. path)
  end
  local function cleanup()
    db:close()
    if path then
      os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    end
  end
  return db, cleanup
end

local function blog(db)
  local M = {}
  M.User = db:model("User", { name = quay.string(), email = quay.string { unique = true } })
  M.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { on_delete = quay.CASCADE, related_name = "profile" }),
    bio = quay.text { null = true },
  })
  M.Tag = db:model("Tag", { name = quay.string() })
  M.Post = db:model("Post", {
    title = quay.string(),
    author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  db:create_tables()
  return M
end

describe("db:on_query", function()
  local db, cleanup, M
  before_each(function()
    db, cleanup = reopenable()
    M = blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    M.Profile:create { user = u, bio = "hi" }
    local t1, t2 = M.Tag:create { name = "t1" }, M.Tag:create { name = "t2" }
    local p = M.Post:create { title = "p", author = u }
    p.tags:add(t1, t2)
  end)
  after_each(function()
    if db:is_open() then db:on_query(nil) end
    cleanup()
  end)

  describe("params", function()
    it("carries params.n, with NULL parameters as nil at their index", function()
      local seen
      db:on_query(function(_, params) seen = params end)
      db:rows("SELECT ? AS a, ? AS b, ? AS c", { quay.null, 2, quay.null })
      assert.equal(3, seen.n)
      assert.is_nil(seen[1])
      assert.equal(2, seen[2])
      assert.is_nil(seen[3])
      db:rows("SELECT 1 AS one")
      assert.equal(0, seen.n)
      M.User:filter { name = "a" }:count()
      assert.equal(1, seen.n)
      assert.equal("a", seen[1])
    end)
  end)

  describe("a hook that closes the db", function()
    -- Every kind of call: one statement, a transaction (BEGIN), several
    -- statements (m2m :set), a batch of sibling prefetches.
    local calls = {
      { "count", function() return M.User:count() end },
      { "rows", function() return db:rows("SELECT 1 AS one") end },
      { "create", function()
          return M.User:create { name = "b", email = "b" .. M.User:count() .. "@x" }
        end },
      { "transaction", function() return db:transaction(function() M.User:count() end) end },
      { "m2m set", function()
          local p = M.Post:first()
          return p.tags:set({ M.Tag:get { name = "t1" } })
        end },
      { "prefetch", function()
          return M.User:prefetch_related("posts", "profile"):all()
        end },
    }
    for _, case in ipairs(calls) do
      local name, call = case[1], case[2]
      for _, at in ipairs({ 1, 2 }) do
        it(("fails %s with connection (closed) at statement %d, then works after reopen")
            :format(name, at), function()
          local k = 0
          db:on_query(function()
            k = k + 1
            if k == at then db:close() end
          end)
          local ok, err = pcall(call)
          if k >= at then
            -- the hook closed the db: that call failed, and said why
            assert.is_false(ok, name .. " succeeded on a closed db")
            assert.equal("table", type(err))
            assert.equal("connection", err.code, tostring(err.message))
            helper.mentions(err, "closed")
            assert.is_false(db:is_open())
          else
            -- one statement only: it ran
            assert.is_true(ok, tostring(err))
          end
          if not db:is_open() then db:reopen() end
          db:on_query(nil)                  -- (a closed db refuses even this)
          -- everything works again, the same statements included
          assert.is_true(pcall(call))
          assert.is_true(M.User:count() >= 1)
          assert.equal(1, #db:rows("SELECT 1 AS one"))
        end)
      end
    end

    it("fails the statement when the hook reopens the db, then works", function()
      local k = 0
      db:on_query(function()
        k = k + 1
        if k == 1 then db:close(); db:reopen() end
      end)
      local err = helper.raises("connection", M.User.count, M.User)
      helper.mentions(err, "on_query")
      db:on_query(nil)
      assert.equal(1, M.User:count())
    end)

    it("leaves no transaction behind when it closes inside db:transaction", function()
      local err = helper.raises("connection", db.transaction, db, function()
        M.User:create { name = "b", email = "b@x" }
        db:on_query(function() db:close() end)
        M.User:count()
      end)
      helper.mentions(err, "closed")
      db:reopen()
      db:on_query(nil)
      -- the transaction was rolled back with the connection
      assert.equal(1, M.User:count())
      M.User:create { name = "c", email = "c@x" }
      assert.equal(2, M.User:count())
    end)
  end)

  describe("a hook that raises", function()
    local values = {
      { "a string", "boom" },
      { "a table", { mine = true } },
      { "a Quay error", nil },       -- filled in below
      { "a number", 42 },
    }
    -- Each entry makes (before the hook is set) the call to observe.
    local calls = {
      { "count", function() return function() return M.User:count() end end },
      { "rows", function() return function() return db:rows("SELECT 1 AS one") end end },
      { "create", function()
          return function() return M.User:create { name = "b", email = "b@x" } end
        end },
      { "save", function()
          local u = M.User:first()
          return function() u.name = "z"; return u:save() end
        end },
      { "m2m set", function()
          local p, t1 = M.Post:first(), M.Tag:get { name = "t1" }
          return function() return p.tags:set({ t1 }) end
        end },
      { "m2m add", function()
          local p, t3 = M.Post:first(), M.Tag:create { name = "t3" }
          local t4 = M.Tag:create { name = "t4" }
          return function() return p.tags:add(t3, t4) end
        end },
      { "bulk_create", function()
          return function() return M.Tag:bulk_create { { name = "x" }, { name = "y" } } end
        end },
      { "delete", function()
          local u = M.User:first()
          return function() return u:delete() end
        end },
      { "transaction", function()
          return function()
            return db:transaction(function()
              M.User:create { name = "b", email = "b@x" }
              return M.User:count()
            end)
          end
        end },
      { "prefetch", function()
          return function() return M.User:prefetch_related("posts", "profile"):all() end
        end },
      { "iter", function() return function() for _ in M.User:iter() do end end end },
      { "create_tables", function() return function() return db:create_tables() end end },
    }
    local function snapshot()
      return { M.User:count(), M.Tag:count(), M.Post:count(),
               #db:rows("SELECT * FROM posts_tags"), M.User:first().name }
    end
    for _, v in ipairs(values) do
      for _, case in ipairs(calls) do
        for _, at in ipairs({ 1, 2, 3 }) do
          it(("comes back unchanged (%s) from %s at statement %d"):format(v[1], case[1], at),
            function()
            local value = v[2]
            if value == nil then
              value = select(2, pcall(M.User.filter, M.User, { nope = 1 }))
              assert.equal("unknown_field", value.code)
            end
            local call = case[2]()
            local before = snapshot()
            local k = 0
            db:on_query(function()
              k = k + 1
              if k == at then error(value, 0) end
            end)
            local ok, err = pcall(call)
            db:on_query(nil)
            if k < at then
              assert.is_true(ok, tostring(err))   -- fewer statements than at
              return
            end
            assert.is_false(ok)
            assert.equal(value, err)               -- the same value (rawequal)
            assert.is_true(rawequal(value, err) or type(value) ~= "table")
            -- nothing half-done, and the session is usable
            assert.same(before, snapshot())
            assert.equal(1, #db:rows("SELECT 1 AS one"))
          end)
        end
      end
    end

    it("does not keep a raised error for a later, unrelated failure", function()
      db:on_query(function() error("first") end)
      assert.is_false(pcall(M.User.count, M.User))
      db:on_query(nil)
      local err = helper.raises("sql", db.rows, db, "THIS IS NOT SQL")
      assert.is_nil(tostring(err.message):find("first", 1, true))
    end)
  end)
end)
