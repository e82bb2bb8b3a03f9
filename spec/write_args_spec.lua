-- Issue 13: an argument or option of a write call that Quay would
-- otherwise ignore raises `misuse`, before anything is sent; so does
-- get {} (a condition whose value variable is nil vanishes from a Lua
-- table, and an empty table would get the only row).
local helper = require("spec.helper")
local quay = helper.quay

describe("Write calls refuse what they would ignore", function()
  local db, User, Post, Tag
  before_each(function()
    db = helper.open()
    User = db:model("User", { email = quay.string { unique = true }, name = quay.string() })
    Tag = db:model("Tag", { name = quay.string() })
    Post = db:model("Post", {
      title = quay.string(),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  -- Every call must raise misuse and send nothing.
  local function refused(calls)
    for i, call in ipairs(calls) do
      local n = helper.queries(db, function()
        local ok, err = pcall(call)
        assert(not ok, "call " .. i .. " succeeded")
        assert(type(err) == "table" and err.code == "misuse",
               ("call %d: expected misuse, got %s"):format(i, tostring(err and err.code or err)))
      end)
      assert.equal(0, n, "call " .. i .. " sent statements")
    end
  end

  it("get {} and get with an extra argument", function()
    local u = User:create { email = "a@x", name = "A" }
    local missing
    local err = helper.raises("misuse", User.get, User, { name = missing })
    helper.mentions(err, "User", "get")
    refused {
      function() return User:get {} end,
      function() return User:query():get({}) end,
      function() return User:get({ name = "A" }, "x") end,
      function() return u.posts:get {} end,
    }
    assert.equal(u, User:get())
    assert.equal(u, User:get { name = "A" })
  end)

  it("create, new, bulk_create, save, delete, refresh, changed", function()
    local u = User:create { email = "a@x", name = "A" }
    refused {
      function() return User:create({ email = "b@x", name = "B" }, { validate = false }) end,
      function() return User:create("b@x") end,
      function() return User:create(u) end,
      function() return User:new({ name = "x" }, true) end,
      function() return User:new(5) end,
      function() return User:bulk_create({ { email = "c@x", name = "C" } }, { batch = 10 }) end,
      function() return User:bulk_create("rows") end,
      function() return User:bulk_create { u } end,
      function() return u:save({}, true) end,
      function() return u:save { force = true } end,
      function() return u:save(true) end,
      function() return u:delete({}, "now") end,
      function() return u:delete { cascade = false } end,
      function() return u:refresh(true) end,
      function() return u:changed("name") end,
    }
    assert.equal(1, User:count())
  end)

  it("qs:update and qs:delete", function()
    local u = User:create { email = "a@x", name = "A" }
    refused {
      function() return User:filter { name = "A" }:update({ name = "B" }, "x") end,
      function() return User:query():update({ name = "B" }, { returning = true }) end,
      function() return User:filter { name = "A" }:delete({ dry_run = true }, "x") end,
      function() return User:query():delete { cascade = false } end,
      function() return User:query():delete "all" end,
    }
    assert.equal("A", User:find(u.id).name)
    assert.equal(1, User:count())
  end)

  it("upsert, bulk_update, get_or_create, update_or_create", function()
    local u = User:create { email = "a@x", name = "A" }
    local row = { { email = "a@x", name = "A2" } }
    refused {
      function() return User:upsert(row) end,
      function() return User:upsert(row, { conflict = { "email" } }, {}) end,
      function() return User:upsert(row, { conflict = { "email" }, batch = 100 }) end,
      function() return User:upsert(row, { conflict = "email" }) end,
      function() return User:bulk_update({ u }, { "name" }, { batch = 1 }) end,
      function() return User:bulk_update({ u }) end,
      function() return User:bulk_update({ u }, { name = true }) end,
      function() return User:get_or_create {} end,
      function() return User:get_or_create({ email = "a@x" }, {}, {}) end,
      function() return User:get_or_create({ email = "a@x" }, "A") end,
      function() return User:update_or_create({}, { name = "B" }) end,
      function() return User:update_or_create({ email = "a@x" }, { name = "B" }, true) end,
    }
    assert.equal("A", User:find(u.id).name)
  end)

  it("bulk_create, upsert and bulk_update take a list, not one row or a list with holes", function()
    local u = User:create { email = "a@x", name = "A" }
    u.name = "A2"
    refused {
      -- one row's values where a list of rows belongs: nothing was written
      function() return User:bulk_create { email = "b@x", name = "B" } end,
      function() return User:upsert({ email = "a@x", name = "A3" }, { conflict = { "email" } }) end,
      function() return User:bulk_update({ first = u }, { "name" }) end,
      -- a list with named keys besides, or with a hole
      function() return User:bulk_create { { email = "c@x", name = "C" }, extra = true } end,
      function()
        return User:upsert({ { email = "d@x", name = "D" }, [3] = { email = "e@x", name = "E" } },
                           { conflict = { "email" } })
      end,
      function() return User:bulk_update({ u, [3] = u }, { "name" }) end,
    }
    assert.same({ "A" }, User:query():pluck("name"))
    assert.equal(1, #User:bulk_create { { email = "b@x", name = "B" } })
    assert.equal(0, #User:bulk_create {})
    assert.equal(1, User:bulk_update({ u }, { "name" }))
  end)

  it("db:transaction and select_for_update", function()
    refused {
      function() return db:transaction(function() end, {}, true) end,
      function() return db:transaction(function() end, { isolation = "serial" }) end,
      function() return db:transaction(function() end, { read_only = true }) end,
      function() return db:transaction(function() end, { readonly = 1 }) end,
      function() return db:transaction(nil) end,
      function() return User:select_for_update({ nowait = true }, true) end,
      function() return User:select_for_update { wait = false } end,
      function() return User:select_for_update { nowait = true, skip_locked = true } end,
      function() return User:select_for_update(true) end,
    }
  end)

  it("many-to-many and reverse-key set writes", function()
    local u = User:create { email = "a@x", name = "A" }
    local p = Post:create { title = "p", author = u }
    local t = Tag:create { name = "t" }
    refused {
      function() p.tags:add(1) end,
      function() p.tags:add({ t, "t" }) end,
      function() p.tags:add(t, { weight = 1 }) end,   -- no through model
      function() p.tags:remove(t, 5) end,
      function() p.tags:remove({ name = "t" }) end,
      function() p.tags:set({ t }, {}) end,
      function() p.tags:set("t") end,
      function() p.tags:clear(true) end,
      function() u.posts:set({ p }, {}) end,
      function() u.posts:add(7) end,
    }
    assert.equal(0, p.tags:count())
  end)
end)
