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

-- Issue 14: user functions that misbehave (hooks, validate functions,
-- scopes): the original error comes back, the call is undone, the db
-- stays usable; results Quay cannot read are misuse.
describe("Model behaviour misuse", function()
  local db, M, Log
  before_each(function()
    db = helper.open()
    Log = db:model("Log", { what = quay.string() })
    M = db:model("M", {
      n = quay.integer { validate = function(v)
        if v == 1 then error({ mine = 1 }) end
        if v == 2 then error(2) end
        if v == 3 then return "yes" end
        if v == 4 then return false, 4 end
        if v == 5 then coroutine.yield() end
        return true
      end },
      s = quay.string { null = true },
      hooks = {
        before_save = function(rec)
          Log:create { what = "saving" }
          if rec.s == "table" then error({ mine = "table" }) end
          if rec.s == "nil" then error(nil) end
          if rec.s == "false" then error(false) end
          if rec.s == "yield" then coroutine.yield(1) end
          if rec.s == "deep" then
            local function f(d) if d == 0 then error("deep") end return f(d - 1) end
            f(100)
          end
        end,
        before_delete = function(rec)
          Log:create { what = "deleting" }
          if rec.s == "table" then error({ mine = "delete" }) end
          if rec.s == "yield" then coroutine.yield(2) end
          if rec.s == "false" then error(false) end
        end,
      },
      scopes = {
        none = function() end,
        number = function() return 42 end,
        raises = function() error({ mine = "scope" }) end,
      },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  local function undone()
    assert.equal(0, M:count())
    assert.equal(0, Log:count())
  end

  it("gives back a hook's error value, whatever it is, and undoes the call", function()
    for _, case in ipairs {
      { "table", function(e) return type(e) == "table" and e.mine == "table" end },
      { "nil", function(e) return e == nil end },
      { "false", function(e) return e == false end },
      { "deep", function(e) return type(e) == "string" and e:find("deep", 1, true) end },
    } do
      local ok, err = pcall(M.create, M, { n = 0, s = case[1] })
      assert.is_false(ok)
      assert.is_true(case[2](err) and true or false, case[1])
      undone()
    end
    M:create { n = 0, s = "fine" }
    assert.equal(1, M:count())
  end)

  it("refuses hooks that yield, in a coroutine or not, and stays usable", function()
    local co = coroutine.wrap(function() return pcall(M.create, M, { n = 0, s = "yield" }) end)
    local ok, err = co()
    assert.is_false(ok)
    assert.equal("misuse", err.code)
    helper.mentions(err, "M", "before_save")
    ok, err = pcall(M.create, M, { n = 0, s = "yield" })
    assert.is_false(ok)
    assert.equal("misuse", err.code)
    undone()
    -- an error that kills a coroutine leaves no transaction behind
    local dead = coroutine.create(function() return M:create { n = 0, s = "yield" } end)
    assert.is_false(coroutine.resume(dead))
    M:create { n = 0, s = "ok" }
    if helper.is_pg then                     -- committed: another handle sees it
      local db2 = quay.open(helper.url)
      assert.equal(1, db2:rows("SELECT COUNT(*) AS n FROM ms")[1].n)
      db2:close()
    end
    db:execute("UPDATE ms SET s = 'yield'")
    helper.raises("misuse", function() return M:query():delete() end)
    assert.equal(1, M:count())
    assert.equal(1, Log:count())
  end)

  it("gives back a delete hook's error value and undoes the delete", function()
    local r = M:create { n = 0, s = "x" }
    r.s = "table"                            -- rec:delete hands over r itself
    local ok, err = pcall(r.delete, r)
    assert.is_false(ok)
    assert.equal("delete", err.mine)
    db:execute("UPDATE ms SET s = 'false'")
    ok, err = pcall(function() return M:query():delete() end)
    assert.is_false(ok)
    assert.is_false(err)
    assert.equal(1, M:count())
    assert.equal(1, Log:count())             -- the create's own log only
    r.s = "yield"
    local co = coroutine.wrap(function() return pcall(r.delete, r) end)
    ok, err = co()
    assert.is_false(ok)
    assert.equal("misuse", err.code)
    assert.equal(1, M:count())
  end)

  it("gives back a validate function's error; odd results are misuse", function()
    local ok, err = pcall(M.create, M, { n = 1 })
    assert.is_false(ok)
    assert.equal(1, err.mine)
    ok, err = pcall(M.create, M, { n = 2 })
    assert.is_false(ok)
    assert.equal(2, err)
    helper.mentions(helper.raises("misuse", M.create, M, { n = 3 }), "M", "n", "string")
    helper.mentions(helper.raises("misuse", M.create, M, { n = 4 }), "M", "n", "number")
    helper.raises("misuse", M.create, M, { n = 5 })
    helper.raises("misuse", M.bulk_create, M, { { n = 0 }, { n = 3 } })
    undone()
  end)

  it("refuses scopes that return no query set, and passes a scope's error on", function()
    helper.mentions(helper.raises("misuse", M.none, M), "none", "M")
    helper.mentions(helper.raises("misuse", function() return M:query():number() end), "number")
    local ok, err = pcall(M.raises, M)
    assert.is_false(ok)
    assert.equal("scope", err.mine)
  end)

  it("refuses behaviour options of the wrong shape", function()
    for _, spec in ipairs {
      { methods = true }, { scopes = { 1 } }, { validate = {} }, { hooks = { before_save = 1 } },
      { hooks = { on_save = function() end } }, { soft_delete = "yes" },
      { n = quay.integer { validate = 1 } }, { n = quay.integer { choices = 1 } },
      { n = quay.integer { min = "0" } },
    } do
      helper.raises("declaration", db.model, db, "Bad", spec)
    end
    db:model("Fine", { n = quay.integer() })
  end)
end)

-- Arguments that did nothing without a word: a direction outside order_by,
-- an update with no values, an aggregate's empty filter.
describe("arguments that would be ignored", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local u = M.User:create { name = "a", email = "a@x" }
    M.Post:create { title = "p1", author = u, views = 3 }
    M.Post:create { title = "p2", author = u, views = 5 }
  end)
  after_each(function() db:close() end)

  it("takes :desc() and :asc() on a whole order_by term only", function()
    local F = quay.F
    helper.raises("misuse", function() return M.Post:annotate { v = F("views"):desc() }:all() end)
    helper.raises("misuse", function() return M.Post:filter { views__gt = F("views"):asc() }:count() end)
    helper.raises("misuse", function() return M.Post:values { v = F("views"):desc() }:all() end)
    helper.raises("misuse", function() return M.Post:query():update { views = F("views"):desc() + 1 } end)
    helper.raises("misuse", function() return M.Post:order_by(F("views"):desc() + 1):all() end)
    -- nothing was written by the refused update
    assert.same({ 3, 5 }, { M.Post:order_by("views"):pluck("views")[1],
                            M.Post:order_by("views"):pluck("views")[2] })
    -- where it belongs it orders, also on arithmetic
    assert.equal(5, M.Post:order_by(F("views"):desc()):first().views)
    assert.equal(5, M.Post:order_by((F("views") + 1):desc()):first().views)
    assert.equal(3, M.Post:order_by(F("views"):asc()):first().views)
  end)

  it("refuses update {} and an aggregate's filter {}", function()
    local sent = 0
    db:on_query(function() sent = sent + 1 end)
    local e = helper.raises("misuse", function() return M.Post:query():update {} end)
    helper.mentions(e, "update")
    e = helper.raises("misuse", function()
      return M.Post:aggregate { n = quay.count("id", { filter = {} }) }
    end)
    helper.mentions(e, "filter")
    helper.raises("misuse", function()
      return M.User:annotate { n = quay.sum("posts__views", { filter = {} }) }:all()
    end)
    db:on_query(nil)
    assert.equal(0, sent)
    assert.equal(1, M.Post:aggregate { n = quay.count("id", { filter = { views = 5 } }) }.n)
  end)

  it("refuses values {} and a values table read only through a metatable", function()
    local e = helper.raises("misuse", function() return M.Post:values {} end)
    helper.mentions(e, "values", "empty table")
    helper.raises("misuse", function() return M.Post:values("title", {}) end)
    local missing
    helper.raises("misuse", function() return M.Post:values { m = missing } end)
    helper.raises("misuse", function()
      return M.Post:values(setmetatable({}, { __index = function() error("boom") end }))
    end)
    assert.equal(M.Post:count(), #M.Post:values():all())       -- no argument: every field
  end)

  it("refuses an empty alternative of quay.any, and an alternative that is no table", function()
    local missing
    -- { title = missing } is {}: as an alternative it would make the OR keep every row
    local e = helper.raises("misuse", function()
      return M.Post:filter(quay.any { { title = missing }, { title = "p1" } }):count()
    end)
    helper.mentions(e, "quay.any", "empty")
    helper.raises("misuse", function() return M.Post:exclude(quay.any { {} }):count() end)
    helper.raises("misuse", function() return M.Post:filter { quay.any { {}, { views = 3 } } }:count() end)
    helper.mentions(helper.raises("misuse", function() return quay.any { 5 } end), "quay.any")
    -- an alternative after a nil, or under a name, would be left out
    helper.raises("misuse", function()
      return M.Post:filter(quay.any { { title = "p1" }, missing, { title = "p2" } }):count()
    end)
    helper.raises("misuse", function()
      return M.Post:filter(quay.any { { title = "p1" }, also = { title = "p2" } }):count()
    end)
    assert.equal(1, M.Post:filter(quay.any { { title = "p1" }, { title = missing or "zz" } }):count())
    assert.equal(2, M.Post:filter(quay.any { { quay.any { { views = 3 } } }, { views = 5 } }):count())
  end)

  -- lists that would lose an element
  it("refuses an __in list with a hole or a named key", function()
    local missing
    -- { "p1", nil, "p2" }: Lua may give its length as 1 or 3
    local e = helper.raises("misuse", function()
      return M.Post:filter { title__in = { "p1", missing, "p2" } }:count()
    end)
    helper.mentions(e, "title__in", "hole")
    local t = { "p1" }
    t[3] = "p2"
    helper.raises("misuse", function() return M.Post:filter { title__in = t }:count() end)
    helper.raises("misuse", function() return M.Post:filter { title__in = { "p1", also = "p2" } }:count() end)
    helper.raises("misuse", function() return M.Post:exclude { views__in = { [0] = 3, 5 } }:count() end)
    assert.equal(2, M.Post:filter { title__in = { "p1", "p2" } }:count())
    assert.equal(0, M.Post:filter { title__in = {} }:count())
  end)

  it("refuses a values list with a hole or a key that is no name", function()
    local t = { "title" }
    t[3] = "views"
    helper.raises("misuse", function() return M.Post:values(t):all() end)
    helper.raises("misuse", function() return M.Post:values { "title", [2.5] = "views" }:all() end)
    helper.raises("misuse", function() return M.Post:values { "title", [true] = "views" }:all() end)
    local rows = M.Post:values { "title", "views" }:order_by("title"):all()
    assert.same({ title = "p1", views = 3 }, rows[1])
  end)

  it("refuses loading related records into value rows", function()
    helper.mentions(helper.raises("misuse", function()
      return M.Post:values("title"):select_related("author"):all()
    end), "values")
    helper.raises("misuse", function() return M.Post:values("title"):prefetch_related("tags"):all() end)
    helper.raises("misuse", function() return M.Post:values("title"):with("author"):all() end)
    helper.raises("misuse", function() return M.Post:with("author"):values("title"):all() end)
    helper.raises("misuse", function() return M.Post:prefetch_related("tags"):values():all() end)
    assert.equal("a", M.Post:values("author__name"):first().author__name)
  end)
end)

describe("extra arguments to declarations and schema calls", function()
  it("raises misuse for an argument that would be ignored", function()
    local db = helper.open()
    helper.raises("misuse", function() return quay.integer({}, 1) end)
    helper.raises("misuse", function() return quay.string({ max = 3 }, { null = true }) end)
    helper.raises("misuse", function() return quay.belongs_to("User", {}, 1) end)
    helper.raises("misuse", function() return db:model("X", { n = quay.integer() }, 3) end)
    local X = db:model("X", { n = quay.integer() })        -- not declared by the refusal
    helper.raises("misuse", function() return db:check(1) end)
    helper.raises("misuse", function() return db:create_tables(true) end)
    helper.raises("misuse", function() return db:describe(1) end)
    db:create_tables()
    assert.equal(0, X:count())
    helper.raises("misuse", function() return db:drop_tables(1) end)
    assert.equal(0, X:count())                             -- still there
    -- a closed db says so before any other check
    db:close()
    helper.raises("connection", function() return db:create_tables(1) end)
    helper.raises("connection", function() return db:describe(1) end)
  end)
end)
