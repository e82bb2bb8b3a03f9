-- docs/reference.md "Writes done right": get_or_create and
-- update_or_create, row locks (select_for_update), transaction options,
-- and the transfer of docs/transactions.md, each proven with several
-- connections or several processes on one database (issue 13).
local helper = require("spec.helper")
local procs = require("spec.procs")
local quay = helper.quay

local function sum(list, key)
  local n = 0
  for _, r in ipairs(list) do n = n + (procs.fields(r.out)[key] or 0) end
  return n
end

local function all_ran(res)
  for i, r in ipairs(res) do
    assert(r.ok, ("process %d failed:\n%s"):format(i, r.out))
  end
end

describe("get_or_create and update_or_create", function()
  local db, User, Item
  before_each(function()
    db = helper.open()
    User = db:model("User", {
      email = quay.string { unique = true },
      name = quay.string(),
      visits = quay.integer { default = 0 },
    })
    Item = db:model("Item", { key = quay.string { unique = true }, owner = quay.integer { default = 0 } })
    db:create_tables()
  end)
  after_each(function()
    db:close()
    procs.cleanup()
  end)

  it("gets, or creates from the conditions and the defaults", function()
    local bob, created = User:get_or_create({ email = "bob@x" }, { name = "Bob" })
    assert.is_true(created)
    assert.equal("Bob", bob.name)
    local again, created2 = User:get_or_create({ email = "bob@x" }, { name = "Other" })
    assert.is_false(created2)
    assert.equal(bob, again)
    assert.equal("Bob", again.name)
    -- lookups select but are not values of the new row
    local c3, created3 = User:get_or_create({ email__startswith = "bob" })
    assert.is_false(created3)
    assert.equal(bob, c3)
    assert.equal(1, User:count())
    User:create { email = "bob2@x", name = "Bob" }
    helper.raises("multiple", User.get_or_create, User, { name = "Bob" })
  end)

  it("updates what changed, or creates", function()
    local n = helper.queries(db, function()
      local u, created = User:update_or_create({ email = "cy@x" }, { name = "Cy" })
      assert.is_true(created)
      assert.equal("Cy", u.name)
    end)
    assert.is_true(n >= 3)
    local u, created = User:update_or_create({ email = "cy@x" }, { name = "Cyril", visits = 2 })
    assert.is_false(created)
    assert.equal("Cyril", u.name)
    local back = User:get { email = "cy@x" }
    assert.equal("Cyril", back.name)
    assert.equal(2, back.visits)
    local u2, c2 = User:update_or_create({ email = "cy@x" })
    assert.is_false(c2)
    assert.equal(u, u2)
  end)

  it("refuses empty conditions and bad arguments", function()
    helper.raises("misuse", User.get_or_create, User, {})
    helper.raises("misuse", User.update_or_create, User, {}, { name = "x" })
    helper.raises("misuse", User.get_or_create, User, "bob@x")
    helper.raises("misuse", User.get_or_create, User, { email = "x" }, "defaults")
    helper.raises("misuse", User.get_or_create, User, { email = "x" }, { name = "n" }, {})
    helper.raises("misuse", User.get_or_create, User, { email = "x" }, { [1] = "n" })
    helper.raises("unknown_field", User.get_or_create, User, { email = "x" }, { nme = "n" })
    assert.equal(0, User:count())
  end)

  it("inside a transaction, a failed attempt leaves it usable", function()
    db:transaction(function()
      User:create { email = "first@x", name = "F" }
      local ok, err = pcall(User.get_or_create, User, { email = "zz@x" }, { visits = 1 })
      assert.is_false(ok)
      assert.equal("validation", err.code)           -- name is required
      local u, created = User:get_or_create({ email = "zz@x" }, { name = "Z" })
      assert.is_true(created)
      assert.equal("Z", u.name)
    end)
    assert.equal(2, User:count())
  end)

  it("three processes racing on the same keys never raise integrity nor duplicate",
    function()
      local url = procs.shared()
      if not helper.is_pg then
        local fdb = quay.open(url)
        fdb:model("Item", { key = quay.string { unique = true }, owner = quay.integer { default = 0 } })
        fdb:create_tables()
        fdb:close()
      end
      -- (A naive first-then-create, procs.spawn("goc_race", 3, url, N,
      -- "naive"), raises integrity here on both backends.)
      local N = 300
      local res = procs.spawn("goc_race", 3, url, N, "get")
      all_ran(res)
      local outs = res[1].out .. res[2].out .. res[3].out
      assert.equal(0, sum(res, "errors"), outs)
      assert.equal(N, sum(res, "created"), outs)
      assert.equal(2 * N, sum(res, "found"), outs)
      res = procs.spawn("goc_race", 3, url, N, "update")
      all_ran(res)
      outs = res[1].out .. res[2].out .. res[3].out
      assert.equal(0, sum(res, "errors"), outs)
      assert.equal(0, sum(res, "created"), outs)
      local check = quay.open(url)
      local I = check:model("Item", { key = quay.string { unique = true }, owner = quay.integer() })
      assert.equal(N, I:count())
      assert.equal(N, #check:rows("SELECT DISTINCT key FROM items"))
      assert.equal(0, I:filter { owner__not_in = { 1, 2, 3 } }:count())
      -- again on fresh keys, with update_or_create creating them
      check:execute("DELETE FROM items")
      check:close()
      res = procs.spawn("goc_race", 3, url, N, "update")
      all_ran(res)
      outs = res[1].out .. res[2].out .. res[3].out
      assert.equal(0, sum(res, "errors"), outs)
      assert.equal(N, sum(res, "created"), outs)
    end)
end)

describe("select_for_update", function()
  local db, Post
  before_each(function()
    db = helper.open()
    Post = db:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
    db:model("Note", { post = quay.belongs_to("Post", { null = true, on_delete = quay.SET_NULL,
                                                         related_name = "notes" }) })
    db:create_tables()
    for i = 1, 5 do Post:create { title = "p" .. i } end
  end)
  after_each(function()
    db:close()
    procs.cleanup()
  end)

  it("must run inside a transaction that may write", function()
    local err = helper.raises("misuse", function() return Post:select_for_update():all() end)
    helper.mentions(err, "select_for_update", "Post", "transaction")
    helper.raises("misuse", function() return Post:select_for_update():first() end)
    helper.raises("misuse", function() return Post:select_for_update():get { title = "p1" } end)
    helper.raises("misuse", function()
      for _ in Post:select_for_update():iter() do end
    end)
    helper.raises("misuse", db.transaction, db, function()
      return Post:select_for_update():all()
    end, { readonly = true })
    local rows = db:transaction(function()
      local first = Post:filter { title = "p1" }:select_for_update():first()
      first.views = 1
      first:save()
      local n = 0
      for _ in Post:order_by("id"):select_for_update { skip_locked = true }:iter() do n = n + 1 end
      assert.equal(5, n)
      return Post:select_for_update():with("notes"):all()
    end)
    assert.equal(5, #rows)
    assert.equal(1, Post:get { title = "p1" }.views)
    -- the select_for_update() default and the model shortcut
    assert.equal(5, db:transaction(function() return #Post:select_for_update({}):all() end))
    local sql = db:transaction(function() return Post:select_for_update { nowait = true }:sql() end)
    if helper.is_pg then
      assert.truthy(sql:find("FOR UPDATE OF", 1, true))
      assert.truthy(sql:find("NOWAIT", 1, true))
    else
      assert.falsy(sql:find("FOR UPDATE", 1, true))     -- the write lock is held
    end
  end)

  it("refuses bad options", function()
    local bad = {
      { nowait = true, skip_locked = true }, { nowait = 1 }, { skip = true }, "nowait",
    }
    for _, o in ipairs(bad) do
      helper.raises("misuse", function() return Post:select_for_update(o) end)
    end
    helper.raises("misuse", function() return Post:select_for_update({}, {}) end)
  end)

  it("on PostgreSQL, another connection waits, fails at once with nowait, or skips",
    function()
      if not helper.is_pg then
        -- SQLite: a second connection cannot even start writing meanwhile.
        local url = procs.shared()
        local a = quay.open(url)
        local b = quay.open(url, { busy_timeout = 100 })
        local Pa = a:model("Post", { title = quay.string() })
        local Pb = b:model("Post", { title = quay.string() })
        a:create_tables()
        Pa:create { title = "x" }
        a:transaction(function()
          assert.equal(1, #Pa:select_for_update():all())
          helper.raises("busy", b.transaction, b, function() return Pb:select_for_update():all() end)
        end)
        a:close(); b:close()
        return
      end
      -- busy_timeout, not a SET lock_timeout: behind PgBouncer a session
      -- SET stays on the pooled server connection (another spec's client
      -- then times out on its locks) and need not reach b's next one.
      local b = quay.open(helper.url, { busy_timeout = 300 })
      local Pb = b:model("Post", { title = quay.string(), views = quay.integer { default = 0 } })
      db:transaction(function()
        local mine = Post:filter { title__in = { "p1", "p2" } }:select_for_update():all()
        assert.equal(2, #mine)
        -- skip_locked: the other rows only
        local free = b:transaction(function()
          return Pb:order_by("id"):select_for_update { skip_locked = true }:pluck("title")
        end)
        assert.equal(3, #free)
        free = b:transaction(function()
          return #Pb:order_by("id"):select_for_update { skip_locked = true }:all()
        end)
        assert.equal(3, free)
        -- nowait: busy at once
        local t0 = os.time()
        helper.raises("busy", b.transaction, b, function()
          return Pb:filter { title = "p1" }:select_for_update { nowait = true }:all()
        end)
        assert.is_true(os.time() - t0 <= 1)
        -- no option: waits (here until the lock timeout), then busy
        local c0 = os.clock()
        local w0 = os.time()
        local err = helper.raises("busy", b.transaction, b, function()
          return Pb:filter { title = "p2" }:select_for_update():all()
        end)
        helper.mentions(err, "lock")
        assert.is_true(os.clock() - c0 < 0.25)      -- waited, not computed
        assert.is_true(os.time() - w0 <= 2)
        -- an unlocked row is free
        assert.equal(1, b:transaction(function()
          return #Pb:filter { title = "p3" }:select_for_update { nowait = true }:all()
        end))
      end)
      -- once the transaction ends, the rows are free
      assert.equal(2, b:transaction(function()
        return #Pb:filter { title__in = { "p1", "p2" } }:select_for_update { nowait = true }:all()
      end))
      b:close()
    end)
end)

describe("Transaction options", function()
  local db, T
  before_each(function()
    db = helper.open()
    T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }
  end)
  after_each(function() db:close() end)

  it("sets the isolation level", function()
    if helper.is_pg then
      for _, level in ipairs({ "read_committed", "repeatable_read", "serializable" }) do
        local got = db:transaction(function()
          return db:rows("SHOW transaction_isolation")[1].transaction_isolation
        end, { isolation = level })
        assert.equal(level:gsub("_", " "), got)
      end
      assert.equal("read committed", db:rows("SHOW transaction_isolation")[1].transaction_isolation)
    else
      assert.equal(1, db:transaction(function() return T:count() end, { isolation = "serializable" }))
      for _, level in ipairs({ "read_committed", "repeatable_read" }) do
        local err = helper.raises("misuse", db.transaction, db, function() end, { isolation = level })
        helper.mentions(err, "serializable")
      end
    end
  end)

  it("a readonly transaction reads and refuses writes; the next one writes", function()
    assert.equal(1, db:transaction(function() return T:count() end, { readonly = true }))
    local err = helper.raises("sql", db.transaction, db, function()
      T:create { n = 2 }
    end, { readonly = true })
    assert.truthy(err.message:find("read", 1, true))
    helper.raises("sql", db.transaction, db, function()
      return db:execute("UPDATE ts SET n = 5")
    end, { readonly = true, isolation = "serializable" })
    T:create { n = 3 }
    db:transaction(function() T:create { n = 4 } end)
    assert.same({ 1, 3, 4 }, { table.unpack(T:order_by("n"):pluck("n")) })
  end)

  it("options belong to the outermost level; bad ones are misuse", function()
    local err = helper.raises("misuse", db.transaction, db, function()
      return db:transaction(function() end, { readonly = true })
    end)
    helper.mentions(err, "outermost")
    db:transaction(function()
      db:transaction(function() T:create { n = 9 } end, {})
    end)
    assert.equal(2, T:count())
    helper.raises("misuse", db.transaction, db, function() end, { isolaton = "serializable" })
    helper.raises("misuse", db.transaction, db, function() end, { isolation = "snapshot" })
    helper.raises("misuse", db.transaction, db, function() end, { isolation = 1 })
    helper.raises("misuse", db.transaction, db, function() end, { readonly = "yes" })
    helper.raises("misuse", db.transaction, db, function() end, "serializable")
    helper.raises("misuse", db.transaction, db, function() end, {}, "extra")
    helper.raises("misuse", db.transaction, db, "fn")
    assert.equal(0, db:stats().queries - db:stats().queries)
  end)
end)

describe("The transfer of docs/transactions.md", function()
  local db, Account
  before_each(function()
    db = helper.open()
    Account = db:model("Account", {
      owner   = quay.string { unique = true },
      balance = quay.integer { default = 0 },
    })
  end)
  after_each(function()
    db:close()
    procs.cleanup()
  end)

  it("3 processes x 300 transfers keep the total", function()
    local url = procs.shared()
    local target = db
    if not helper.is_pg then
      target = quay.open(url)
      Account = target:model("Account", {
        owner = quay.string { unique = true }, balance = quay.integer { default = 0 },
      })
    end
    target:create_tables()
    local rows = {}
    for i = 1, 10 do rows[i] = { owner = "a" .. i, balance = 10000 } end
    Account:bulk_create(rows)
    local res = procs.spawn("transfer", 3, url, 300, "lock")
    all_ran(res)
    assert.equal(0, sum(res, "failed"), res[1].out .. res[2].out .. res[3].out)
    assert.equal(900, sum(res, "ok") + sum(res, "insufficient"))
    assert.is_true(sum(res, "ok") > 800)
    assert.equal(100000, target:rows("SELECT SUM(balance) AS s FROM accounts")[1].s)
    if target ~= db then target:close() end
  end)
end)

describe("qs:delete and qs:update beside a concurrent change", function()
  after_each(function() procs.cleanup() end)

  -- The rows a set-based write changes are chosen inside its own
  -- transaction (on PostgreSQL with FOR UPDATE of the set's rows), so a
  -- row another connection changes meanwhile is judged on its committed
  -- values: one that no longer matches the filter is left alone.
  for _, mode in ipairs({ "delete", "update" }) do
    it(mode .. " leaves a row whose committed change no longer matches the filter", function()
      local url = procs.shared()
      local db = helper.is_pg and helper.open() or quay.open(url, { busy_timeout = 20000 })
      local Post = db:model("Post", { title = quay.string(), status = quay.string() })
      db:create_tables()
      local kept = Post:create { title = "kept", status = "old" }
      Post:create { title = "gone", status = "old" }
      Post:create { title = "other", status = "new" }
      local child
      db:transaction(function()
        kept.status = "keep"
        kept:save()
        -- the writer starts while this change is not committed
        child = procs.start("delete_race", url, mode)
        os.execute("sleep 1")
      end)
      local out = procs.finish(child)
      assert.equal(1, procs.fields(out).changed, out)
      local left = {}
      for _, r in ipairs(db:rows("SELECT title, status FROM posts ORDER BY status")) do
        left[#left + 1] = r.title .. ":" .. r.status
      end
      if mode == "delete" then
        assert.same({ "kept:keep", "other:new" }, left)
      else
        assert.same({ "kept:keep", "other:new", "touched:old" }, left)
      end
      db:close()
    end)
  end

  it("limited sets ordered or filtered by counts and annotations are locked too", function()
    local db = helper.open()
    local M = helper.blog(db)
    local u = M.User:create { name = "u", email = "u@x" }
    local v = M.User:create { name = "v", email = "v@x" }
    for i = 1, 3 do M.Post:create { title = "p" .. i, author = u, views = i } end
    M.Post:create { title = "q", author = v }
    local n, d
    local sql = helper.statements(db, function()
      n = M.User:with_count("posts"):order_by("-posts_count"):limit(1):update { name = "most" }
      d = M.User:annotate { k = quay.count("posts") }:filter { k__lt = 2 }:offset(0):delete()
    end)
    assert.equal(1, n)
    assert.equal(1, d.User)
    assert.same({ "most" }, M.User:pluck("name"))
    local locks = 0
    for _, q in ipairs(sql) do
      if q:find("LIMIT", 1, true) or q:find("OFFSET", 1, true) then
        if q:find("FOR UPDATE OF", 1, true) then locks = locks + 1 end
      end
    end
    assert.equal(helper.is_pg and 2 or 0, locks)
    db:close()
  end)

  -- Limited and offset sets too: their rows are locked on PostgreSQL
  -- (FOR UPDATE OF the set's rows, under the LIMIT), so the row changed
  -- meanwhile is judged on its committed values after the wait and the
  -- window takes the next matching row instead (reference.md, "Locks").
  for _, mode in ipairs({ "delete_limit", "update_offset" }) do
    it(mode .. ": a row whose committed change no longer matches is no row of the window", function()
      local url = procs.shared()
      local db = helper.is_pg and helper.open() or quay.open(url, { busy_timeout = 20000 })
      local Post = db:model("Post", { title = quay.string(), status = quay.string() })
      db:create_tables()
      Post:create { title = "aaa", status = "old" }
      Post:create { title = "gone", status = "old" }
      local kept = Post:create { title = "kept", status = "old" }
      Post:create { title = "other", status = "new" }
      local child
      db:transaction(function()
        kept.status = "keep"
        kept:save()
        child = procs.start("delete_race", url, mode)
        os.execute("sleep 1")
      end)
      local out = procs.finish(child)
      local left = {}
      for _, r in ipairs(db:rows("SELECT title, status FROM posts ORDER BY title, status")) do
        left[#left + 1] = r.title .. ":" .. r.status
      end
      if mode == "delete_limit" then
        -- the two last "old" titles as committed: gone and aaa
        assert.equal(2, procs.fields(out).changed, out)
        assert.same({ "kept:keep", "other:new" }, left)
      else
        -- "old" by title as committed: aaa, gone; all but the first
        assert.equal(1, procs.fields(out).changed, out)
        assert.same({ "aaa:old", "kept:keep", "other:new", "touched:old" }, left)
      end
      db:close()
    end)
  end
end)
