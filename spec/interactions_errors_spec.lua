-- Acceptance sweep of error paths: every place user Lua code runs inside a
-- Quay call (hooks, validate functions, defaults, scopes, methods,
-- db:transaction bodies, the iter() loop body, on_query, metamethods of
-- the values and row tables given in).  reference.md "Errors",
-- "Transactions and raw SQL" and "Model behaviour": the original error
-- comes back (or the contract's code), the database holds exactly what it
-- held before the call (read back with hand-written SQL), and the handle
-- stays usable.  Run under the ASan build (scripts/test.sh), a leak or a
-- crash on any of these paths fails the spec too.
local helper = require("spec.helper")
local quay = helper.quay

local function snapshot(db) return helper.rows_snapshot(db) end

-- Error values of every kind a user function may raise.
local raising_tostring = setmetatable({}, { __tostring = function() error("tostring raised") end })
local values = {
  { "a string", "boom" },
  { "a table", { mine = true } },
  { "nil", nil },
  { "false", false },
  { "a number", 42 },
  { "a userdata", io.stdout },
  { "a function", print },
  { "a table whose __tostring raises", raising_tostring },
}

-- Non-0 when got is the value raised (the same object for reference types).
local function same_value(want, got)
  if type(want) == "string" then return got == want end
  return rawequal(want, got)
end

local function check_err(name, want, ok, got)
  assert(not ok, name .. ": the call succeeded")
  assert(same_value(want, got), ("%s: got back %s (%s)"):format(name,
    type(got) == "table" and tostring(rawget(got, "message") or "a table") or tostring(type(got)),
    type(got)))
end

-- A db that survives db:close() + db:reopen(): a temp file on SQLite.
local function reopenable()
  if helper.is_pg then return helper.open(), function() end end
  local path = os.tmpname()
  os.remove(path)
  local db = quay.open("sqlite:" .. path)
  return db, function()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
  end
end

-- Where user code raises: trap[where] = { value } raises value there;
-- trap[where] = function(rec) ... end runs instead.
local trap = {}
local function spring(where, rec)
  local t = trap[where]
  if t == nil then return end
  if type(t) == "function" then return t(rec) end
  error(t[1], 0)
end

local function schema(db)
  local M = {}
  M.Log = db:model("Log", { what = quay.string() })
  local function log(what) M.Log:create { what = what } end
  M.Author = db:model("Author", {
    name = quay.string { unique = true },
    hooks = {
      before_delete = function(rec) log("Author.before_delete " .. rec.name); spring("Author.before_delete", rec) end,
      after_delete = function(rec) log("Author.after_delete " .. rec.name); spring("Author.after_delete", rec) end,
    },
  })
  M.Tag = db:model("Tag", { name = quay.string { unique = true } })
  M.Book = db:model("Book", {
    title = quay.string { unique = true, validate = function(v, rec)
      spring("Book.title", rec)
      return true
    end },
    code = quay.string { default = function()
      if type(trap["Book.code"]) == "function" then return spring("Book.code") end
      spring("Book.code")
      return "c"
    end },
    views = quay.integer { default = 0 },
    author = quay.belongs_to("Author", { on_delete = quay.CASCADE, related_name = "books" }),
    tags = quay.many_to_many("Tag", { related_name = "books" }),
    validate = function(rec)
      if type(trap["Book.validate"]) == "function" then return spring("Book.validate", rec) end
      spring("Book.validate", rec)
      return true
    end,
    hooks = {
      before_save = function(rec)
        -- (the title may be a value Quay refuses after this hook)
        log("Book.before_save " .. (type(rec.title) == "string" and rec.title or type(rec.title)))
        spring("Book.before_save", rec)
      end,
      after_save = function(rec) log("Book.after_save " .. rec.title); spring("Book.after_save", rec) end,
      before_delete = function(rec) log("Book.before_delete " .. rec.title); spring("Book.before_delete", rec) end,
      after_delete = function(rec) log("Book.after_delete " .. rec.title); spring("Book.after_delete", rec) end,
    },
    scopes = {
      viewed = function(qs) spring("Book.viewed"); return qs:filter { views__gt = 0 } end,
    },
    methods = {
      shout = function(self) spring("Book.shout", self); return self.title:upper() end,
    },
  })
  M.Page = db:model("Page", {
    n = quay.integer(),
    book = quay.belongs_to("Book", { on_delete = quay.CASCADE, related_name = "pages" }),
    hooks = {
      before_delete = function(rec) spring("Page.before_delete", rec) end,
      after_delete = function(rec) spring("Page.after_delete", rec) end,
    },
  })
  db:create_tables()
  return M
end

local function seed(M)
  local a1 = M.Author:create { name = "a1" }
  local a2 = M.Author:create { name = "a2" }
  local t1, t2 = M.Tag:create { name = "t1" }, M.Tag:create { name = "t2" }
  for i, spec in ipairs { { "b1", a1 }, { "b2", a1 }, { "b3", a2 } } do
    local b = M.Book:create { title = spec[1], author = spec[2], views = i - 1 }
    b.tags:add(t1, t2)
    for n = 1, 2 do M.Page:create { book = b, n = n } end
  end
end

-- The handle still reads and writes, in and out of a transaction.
local function usable(db, M)
  local n = M.Log:count()
  db:transaction(function() M.Log:create { what = "usable" } end)
  assert.equal(n + 1, M.Log:count())
  assert.equal(1, #db:rows("SELECT what FROM logs WHERE what = ?", { "usable" }))
  M.Log:filter { what = "usable" }:delete()
  assert.equal(n, M.Log:count())
end

local function pg_cursors(db)
  if not helper.is_pg then return 0 end
  return db:rows("SELECT COUNT(*) AS n FROM pg_cursors WHERE name LIKE 'quay%'")[1].n
end

describe("error paths through user code", function()
  local db, M, cleanup
  before_each(function()
    for k in pairs(trap) do trap[k] = nil end
    db, cleanup = reopenable()
    M = schema(db)
    seed(M)
  end)
  after_each(function()
    for k in pairs(trap) do trap[k] = nil end
    if not db:is_open() then db:reopen() end
    db:on_query(nil)
    db:close()
    cleanup()
    collectgarbage()
  end)

  -- Run call with trap[where] raising each kind of value: it comes back,
  -- nothing changed, the handle is usable.
  local function each_value(where, call)
    local before = snapshot(db)
    for _, v in ipairs(values) do
      trap[where] = { v[2] }
      local ok, err = pcall(call)
      trap[where] = nil
      check_err(where .. " raising " .. v[1], v[2], ok, err)
      assert.equal(before, snapshot(db), where .. " raising " .. v[1] .. " left changes")
    end
    usable(db, M)
  end

  describe("save hooks", function()
    local writes = {
      { "create", function() return M.Book:create { title = "new", author = M.Author:get { name = "a1" } } end },
      { "rec:save of a change", function()
          local b = M.Book:get { title = "b1" }
          b.views = 99
          return b:save()
        end },
      { "bulk_create", function()
          local a = M.Author:get { name = "a1" }
          return M.Book:bulk_create { { title = "n1", author = a }, { title = "n2", author = a } }
        end },
      { "upsert", function()
          local a = M.Author:get { name = "a2" }
          return M.Book:upsert({ { title = "b1", author = a, views = 7 }, { title = "n3", author = a } },
            { conflict = { "title" } })
        end },
      { "bulk_update", function()
          local list = M.Book:order_by("id"):all()
          for _, b in ipairs(list) do b.views = b.views + 10 end
          return M.Book:bulk_update(list, { "views" })
        end },
      { "get_or_create", function()
          return M.Book:get_or_create({ title = "g" }, { author = M.Author:get { name = "a1" } })
        end },
      { "update_or_create", function()
          return M.Book:update_or_create({ title = "b2" }, { views = 50 })
        end },
      { "a related set's create", function()
          return M.Author:get { name = "a2" }.books:create { title = "rel" }
        end },
    }
    for _, hook in ipairs { "Book.before_save", "Book.after_save" } do
      for _, w in ipairs(writes) do
        it(("%s raising any value undoes %s, hook writes included"):format(hook, w[1]), function()
          each_value(hook, w[2])
        end)
      end
    end

    it("an after_save error on the second row of a bulk_create undoes the first row too", function()
      local before = snapshot(db)
      local k = 0
      trap["Book.after_save"] = function() k = k + 1; if k == 2 then error({ second = true }) end end
      local a = M.Author:get { name = "a1" }
      local ok, err = pcall(M.Book.bulk_create, M.Book,
        { { title = "n1", author = a }, { title = "n2", author = a }, { title = "n3", author = a } })
      assert.is_false(ok)
      assert.is_true(err.second)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a failed save leaves the record as before the call, so a retry writes it", function()
      local b = M.Book:get { title = "b1" }
      b.views = 99
      trap["Book.after_save"] = { "no" }
      assert.is_false(pcall(b.save, b))
      trap["Book.after_save"] = nil
      assert.same({ "views" }, b:changed())
      b:save()
      assert.equal(99, db:rows("SELECT views FROM books WHERE title = 'b1'")[1].views)
    end)
  end)

  describe("validate functions", function()
    for _, where in ipairs { "Book.title", "Book.validate" } do
      it(where .. " raising any value undoes create, save and bulk_create", function()
        each_value(where, function()
          return M.Book:create { title = "new", author = M.Author:get { name = "a1" } }
        end)
        each_value(where, function()
          local b = M.Book:get { title = "b1" }
          b.title = "b1x"
          return b:save()
        end)
        each_value(where, function()
          local a = M.Author:get { name = "a1" }
          return M.Book:bulk_create { { title = "n1", author = a }, { title = "n2", author = a } }
        end)
      end)
    end

    it("a validation failure after before_save wrote rows undoes the hook's writes", function()
      local before = snapshot(db)
      trap["Book.validate"] = function() return false, "nope" end
      helper.mentions(helper.raises("validation", M.Book.create, M.Book,
        { title = "new", author = M.Author:get { name = "a1" } }), "nope")
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)
  end)

  describe("default functions", function()
    it("a default function raising any value undoes create and bulk_create", function()
      each_value("Book.code", function()
        return M.Book:create { title = "new", author = M.Author:get { name = "a1" } }
      end)
      local k = 0
      local a = M.Author:get { name = "a1" }
      each_value("Book.code", function()
        k = 0
        return M.Book:bulk_create { { title = "n1", author = a, code = "x" }, { title = "n2", author = a } }
      end)
    end)

    it("a default function returning a value Quay cannot store is validation naming the field", function()
      local before = snapshot(db)
      trap["Book.code"] = function() return {} end
      local a = M.Author:get { name = "a1" }
      helper.mentions(helper.raises("validation", M.Book.create, M.Book, { title = "n", author = a }),
        "Book", "code")
      helper.mentions(helper.raises("validation", M.Book.bulk_create, M.Book, { { title = "n", author = a } }),
        "Book", "code")
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a before_save that saves its own record recurses until Lua stops it; nothing changed", function()
      local before = snapshot(db)
      trap["Book.before_save"] = function(rec) rec:save() end
      local ok, err = pcall(M.Book.create, M.Book, { title = "n", author = M.Author:get { name = "a1" } })
      trap["Book.before_save"] = nil
      assert.is_false(ok)
      assert.is_truthy(tostring(type(err) == "table" and err.message or err):find("stack overflow", 1, true))
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a default function that yields raises misuse, in a coroutine or not", function()
      local before = snapshot(db)
      trap["Book.code"] = function() coroutine.yield(1) end
      local a = M.Author:get { name = "a1" }
      for _, call in ipairs {
        function() return M.Book:create { title = "new", author = a } end,
        function() return M.Book:bulk_create { { title = "n1", author = a } } end,
      } do
        local co = coroutine.wrap(function() return pcall(call) end)
        local ok, err = co()
        assert.is_false(ok)
        helper.mentions(err, "yield")
        assert.equal("misuse", err.code)
        ok, err = pcall(call)
        assert.is_false(ok)
        assert.equal("misuse", err.code)
      end
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)
  end)

  describe("scopes and methods", function()
    it("a scope raising any value gives it back, from the model, a query set and a related set", function()
      each_value("Book.viewed", function() return M.Book:viewed():count() end)
      each_value("Book.viewed", function() return M.Book:filter { views__lt = 5 }:viewed():count() end)
      each_value("Book.viewed", function() return M.Author:get { name = "a1" }.books:viewed():count() end)
    end)

    it("a scope that yields raises misuse", function()
      trap["Book.viewed"] = function() coroutine.yield() end
      local co = coroutine.wrap(function() return pcall(function() return M.Book:viewed() end) end)
      local ok, err = co()
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      helper.mentions(err, "Book")
    end)

    it("a scope used inside where_has raising gives its value back", function()
      each_value("Book.viewed", function()
        return M.Author:where_has("books", function(q) return q:viewed() end):count()
      end)
    end)

    it("a where_has function raising gives its value back; yielding is misuse", function()
      local function wh(q) spring("where_has", q); return q:filter { views__gt = 0 } end
      each_value("where_has", function() return M.Author:where_has("books", wh):count() end)
      each_value("where_has", function() return M.Author:where_doesnt_have("books", wh):count() end)
      trap["where_has"] = function() coroutine.yield() end
      local co = coroutine.wrap(function()
        return pcall(function() return M.Author:where_has("books", wh):count() end)
      end)
      local ok, err = co()
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      helper.mentions(err, "Book", "where_has")
    end)

    it("a method raising any value gives it back", function()
      local b = M.Book:get { title = "b1" }
      each_value("Book.shout", function() return b:shout() end)
      assert.equal("B1", b:shout())
    end)
  end)

  describe("delete hooks", function()
    local deletes = {
      { "rec:delete", function() return M.Book:get { title = "b1" }:delete() end },
      { "qs:delete", function() return M.Book:filter { title__in = { "b1", "b2" } }:delete() end },
      { "a cascade from the parent", function() return M.Author:get { name = "a1" }:delete() end },
      { "a cascade through qs:delete", function() return M.Author:query():delete() end },
    }
    for _, hook in ipairs { "Book.before_delete", "Book.after_delete", "Page.before_delete", "Page.after_delete" } do
      for _, d in ipairs(deletes) do
        it(("%s raising any value undoes %s"):format(hook, d[1]), function()
          each_value(hook, d[2])
        end)
      end
    end

    it("the parent's own delete hooks raising undo its cascade", function()
      each_value("Author.before_delete", function() return M.Author:get { name = "a1" }:delete() end)
      each_value("Author.after_delete", function() return M.Author:query():delete() end)
    end)

    it("an error on the last row of a cascade undoes every row before it", function()
      local before = snapshot(db)
      local seen = 0
      trap["Page.after_delete"] = function()
        seen = seen + 1
        if seen == 6 then error({ last = true }) end
      end
      local ok, err = pcall(function() return M.Author:query():delete() end)
      assert.is_false(ok)
      assert.is_true(err.last)
      assert.equal(6, seen)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a delete hook that yields raises misuse at every level of a cascade", function()
      local before = snapshot(db)
      for _, where in ipairs { "Author.before_delete", "Book.before_delete", "Page.after_delete" } do
        trap[where] = function() coroutine.yield() end
        local co = coroutine.wrap(function()
          return pcall(function() return M.Author:get { name = "a1" }:delete() end)
        end)
        local ok, err = co()
        trap[where] = nil
        assert.is_false(ok)
        assert.equal("misuse", err.code, where)
        assert.equal(before, snapshot(db), where)
      end
      usable(db, M)
    end)

    it("a delete hook whose own nested transaction fails and is caught goes on", function()
      trap["Book.before_delete"] = function()
        local ok = pcall(db.transaction, db, function()
          M.Log:create { what = "inner" }
          error("inner")
        end)
        assert(not ok)
      end
      local counts = M.Author:get { name = "a1" }:delete()
      assert.equal(2, counts.Book)
      assert.equal(0, M.Log:filter { what = "inner" }:count())
      assert.equal(0, #db:rows("SELECT id FROM books WHERE title IN ('b1', 'b2')"))
    end)

    it("a many-to-many :clear in a transaction whose later hook fails keeps the pivot rows", function()
      local b = M.Book:get { title = "b1" }
      each_value("Book.before_save", function()
        return db:transaction(function()
          b.tags:clear()
          b.tags:set({ M.Tag:get { name = "t1" } })
          return M.Book:create { title = "x", author = M.Author:get { name = "a1" } }
        end)
      end)
      assert.equal(2, b.tags:count())
    end)
  end)

  describe("delete hooks that re-enter the db", function()
    it("a delete hook that deletes the parent again recurses until Lua stops it; nothing changed", function()
      local before = snapshot(db)
      trap["Book.before_delete"] = function() M.Author:filter { name = "a1" }:delete() end
      local ok, err = pcall(function() return M.Author:get { name = "a1" }:delete() end)
      trap["Book.before_delete"] = nil
      assert.is_false(ok)
      assert.is_truthy(tostring(type(err) == "table" and err.message or err):find("stack overflow", 1, true))
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("an after_delete that inserts a child of the row being deleted fails with integrity; nothing changed", function()
      local before = snapshot(db)
      trap["Page.after_delete"] = function(rec)
        M.Page:create { book_id = rec.book_id, n = 99 }
      end
      helper.raises("integrity", function() return M.Book:get { title = "b1" }:delete() end)
      trap["Page.after_delete"] = nil
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a delete hook that deletes rows of the same cascade itself: the call completes once", function()
      trap["Book.before_delete"] = function(rec) M.Page:filter { book_id = rec.id }:delete() end
      local counts = M.Author:get { name = "a1" }:delete()
      trap["Book.before_delete"] = nil
      assert.equal(2, counts.Book)
      assert.equal(0, #db:rows("SELECT id FROM pages WHERE book_id IN (1, 2)"))
      assert.equal(2, #db:rows("SELECT id FROM pages"))
      usable(db, M)
    end)

    it("a hook that closes the db and then raises gives back its own error", function()
      local before = snapshot(db)
      for _, where in ipairs { "Book.before_save", "Book.after_save", "Book.before_delete", "Page.after_delete" } do
        trap[where] = function() db:close(); error({ mine = where }) end
        local ok, err = pcall(function()
          if where:find("save") then
            return M.Book:create { title = "n", author = M.Author:get { name = "a1" } }
          end
          return M.Author:get { name = "a1" }:delete()
        end)
        trap[where] = nil
        assert.is_false(ok)
        assert.equal(where, err.mine)
        db:reopen()
        assert.equal(before, snapshot(db), where)
      end
      usable(db, M)
    end)
  end)

  describe("writes of many rows", function()
    it("a custom through model's delete hook raising undoes :remove, :set and :clear", function()
      local log = {}
      local Club = db:model("Club", { name = quay.string() })
      local Member = db:model("Member", {
        name = quay.string(),
        clubs = quay.many_to_many("Club", { through = "Membership", related_name = "members" }),
      })
      db:model("Membership", {
        member = quay.belongs_to("Member", { on_delete = quay.CASCADE }),
        club = quay.belongs_to("Club", { on_delete = quay.CASCADE }),
        hooks = {
          before_delete = function(rec) log[#log + 1] = rec.id; spring("Membership.before_delete", rec) end,
          after_delete = function(rec) spring("Membership.after_delete", rec) end,
        },
      })
      db:create_tables()
      local m = Member:create { name = "m" }
      local c1, c2, c3 = Club:create { name = "c1" }, Club:create { name = "c2" }, Club:create { name = "c3" }
      m.clubs:add(c1, c2)
      for _, where in ipairs { "Membership.before_delete", "Membership.after_delete" } do
        each_value(where, function() return m.clubs:remove(c1) end)
        each_value(where, function() return m.clubs:set({ c3 }) end)
        each_value(where, function() return m.clubs:clear() end)
        each_value(where, function() return c2:delete() end)
      end
      assert.equal(2, #db:rows("SELECT id FROM memberships"))
      assert.is_true(#log > 0)
    end)

    it("an upsert of many rows whose hook raises on a late row undoes every batch", function()
      local before = snapshot(db)
      local a = M.Author:get { name = "a2" }
      local rows = {}
      for i = 1, 700 do rows[i] = { title = "u" .. i, author = a } end
      rows[701] = { title = "b1", author = a, views = 70 }
      local k = 0
      trap["Book.after_save"] = function() k = k + 1; if k == 650 then error({ late = k }) end end
      local ok, err = pcall(M.Book.upsert, M.Book, rows, { conflict = { "title" } })
      trap["Book.after_save"] = nil
      assert.is_false(ok)
      assert.equal(650, err.late)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a bulk_update whose validate function closes the db raises connection; nothing changed", function()
      local before = snapshot(db)
      local list = M.Book:order_by("id"):all()
      for _, b in ipairs(list) do b.title = b.title .. "!" end
      local k = 0
      trap["Book.title"] = function() k = k + 1; if k == 2 then db:close() end end
      helper.raises("connection", M.Book.bulk_update, M.Book, list, { "title" })
      trap["Book.title"] = nil
      db:reopen()
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("an iterator body inside db:transaction that closes the db: connection, nothing stays", function()
      local before = snapshot(db)
      local err = helper.raises("connection", db.transaction, db, function()
        for rec in M.Book:iter() do
          M.Log:create { what = rec.title }
          if rec.title == "b2" then db:close() end
        end
      end)
      helper.mentions(err, "closed")
      db:reopen()
      assert.equal(before, snapshot(db))
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)
  end)

  describe("db:transaction bodies", function()
    it("give back any error value unchanged and roll back", function()
      each_value("body", function()
        return db:transaction(function()
          M.Log:create { what = "in" }
          M.Book:get { title = "b1" }:delete()
          spring("body")
        end)
      end)
    end)

    it("a nested body's error undoes only the savepoint, whatever its value", function()
      for _, v in ipairs(values) do
        db:transaction(function()
          M.Log:create { what = "outer" }
          local ok, err = pcall(db.transaction, db, function()
            M.Log:create { what = "inner" }
            M.Author:get { name = "a2" }:delete()
            error(v[2], 0)
          end)
          check_err("inner " .. v[1], v[2], ok, err)
        end)
        assert.equal(1, M.Log:filter { what = "outer" }:count())
        assert.equal(0, M.Log:filter { what = "inner" }:count())
        assert.equal(1, #db:rows("SELECT id FROM authors WHERE name = 'a2'"))
        M.Log:filter { what = "outer" }:delete()
      end
      usable(db, M)
    end)

    it("an error three levels deep unwinds to the level that catches it", function()
      local before = snapshot(db)
      local ok, err = pcall(db.transaction, db, function()
        M.Log:create { what = "1" }
        db:transaction(function()
          M.Log:create { what = "2" }
          db:transaction(function()
            M.Log:create { what = "3" }
            error({ deep = 3 })
          end)
        end)
      end)
      assert.is_false(ok)
      assert.equal(3, err.deep)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a body that ends the transaction by raw SQL and raises any value gets misuse", function()
      for _, v in ipairs(values) do
        local err = helper.raises("misuse", db.transaction, db, function()
          M.Log:create { what = "committed by the raw COMMIT" }
          db:execute("COMMIT")
          error(v[2], 0)
        end)
        helper.mentions(err, "outside Quay")
      end
      M.Log:filter { what = "committed by the raw COMMIT" }:delete()
      usable(db, M)
    end)

    it("a body that yields raises misuse and rolls back", function()
      local before = snapshot(db)
      local co = coroutine.wrap(function()
        return pcall(db.transaction, db, function()
          M.Log:create { what = "in" }
          coroutine.yield(1)
        end)
      end)
      local ok, err = co()
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      helper.mentions(err, "transaction", "yield")
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a body that closes the db raises connection; nothing it wrote stays", function()
      local before = snapshot(db)
      local err = helper.raises("connection", db.transaction, db, function()
        M.Log:create { what = "in" }
        db:close()
      end)
      helper.mentions(err, "closed")
      db:reopen()
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a body that catches a lost connection and reopens the db cannot go on in autocommit", function()
      if not helper.is_pg or helper.pooled then return end   -- a backend to terminate
      local before = snapshot(db)
      local pid = db:rows("SELECT pg_backend_pid() AS pid")[1].pid
      local other = quay.open(helper.url)
      local err = helper.raises("connection", db.transaction, db, function()
        M.Log:create { what = "lost with the connection" }
        assert(other:rows("SELECT pg_terminate_backend(?::int, 5000) AS ok", { pid })[1].ok)
        local ok, e = pcall(M.Log.create, M.Log, { what = "fails" })
        assert(not ok and e.code == "connection")
        db:reopen()
        M.Log:create { what = "would be committed alone" }
      end)
      helper.mentions(err, "closed or lost")
      other:close()
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a body that closes and reopens the db does not report success", function()
      local before = snapshot(db)
      local ok = pcall(db.transaction, db, function()
        M.Log:create { what = "in" }
        db:close()
        db:reopen()
      end)
      assert.is_false(ok)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)
  end)

  describe("db:close() from inside user code", function()
    local function closes(where, call)
      local before = snapshot(db)
      trap[where] = function() db:close(); if where == "Book.code" then return "c" end end
      local ok, err = pcall(call)
      trap[where] = nil
      assert.is_false(ok, where .. ": the call succeeded")
      assert.equal("table", type(err), where .. ": " .. tostring(err))
      assert.equal("connection", err.code, where .. ": " .. tostring(err.message))
      if not db:is_open() then db:reopen() end
      assert.equal(before, snapshot(db), where .. " left changes")
      usable(db, M)
    end

    it("in a save hook, a validate function or a default", function()
      local a = M.Author:get { name = "a1" }
      for _, where in ipairs { "Book.before_save", "Book.after_save", "Book.title", "Book.validate", "Book.code" } do
        closes(where, function() return M.Book:create { title = "new", author = a } end)
        closes(where, function()
          return M.Book:bulk_create { { title = "n1", author = a }, { title = "n2", author = a } }
        end)
      end
    end)

    it("in a delete hook of a cascade", function()
      for _, where in ipairs { "Author.before_delete", "Book.before_delete", "Page.after_delete", "Author.after_delete" } do
        closes(where, function() return M.Author:get { name = "a1" }:delete() end)
      end
    end)

    it("in a save hook that then reopens it: the call fails, nothing half-done", function()
      local before = snapshot(db)
      trap["Book.before_save"] = function() db:close(); db:reopen() end
      local ok = pcall(M.Book.create, M.Book, { title = "new", author = M.Author:get { name = "a1" } })
      trap["Book.before_save"] = nil
      assert.is_false(ok)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("in a delete hook that then reopens it: the call fails, nothing half-done", function()
      local before = snapshot(db)
      trap["Book.before_delete"] = function() db:close(); db:reopen() end
      local ok = pcall(function() return M.Author:get { name = "a1" }:delete() end)
      trap["Book.before_delete"] = nil
      assert.is_false(ok)
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)
  end)

  describe("the iter() loop body", function()
    before_each(function()
      local a = M.Author:get { name = "a1" }
      local rows = {}
      for i = 1, 600 do rows[i] = { title = "x" .. i, author = a } end
      M.Book:bulk_create(rows)
    end)

    it("breaking out closes the cursor; the handle writes at once", function()
      local n = 0
      for _ in M.Book:iter() do
        n = n + 1
        if n == 300 then break end
      end
      assert.equal(0, pg_cursors(db))
      M.Log:create { what = "after" }
      usable(db, M)
    end)

    it("an error in the body, of any value, comes back and closes the cursor", function()
      for _, v in ipairs(values) do
        local ok, err = pcall(function()
          for rec in M.Book:iter() do
            if rec.title == "x300" then error(v[2], 0) end
          end
        end)
        check_err("iter body raising " .. v[1], v[2], ok, err)
        assert.equal(0, pg_cursors(db))
      end
      usable(db, M)
    end)

    it("an error in the body inside a transaction rolls back what the body wrote", function()
      local before = snapshot(db)
      local ok, err = pcall(db.transaction, db, function()
        for rec in M.Book:order_by("id"):iter() do
          M.Log:create { what = rec.title }
          if rec.title == "x300" then error({ stop = true }) end
        end
      end)
      assert.is_false(ok)
      assert.is_true(err.stop)
      assert.equal(before, snapshot(db))
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("to-be-closed variables of the body close on an error, and so does the cursor", function()
      local closed = {}
      local ok, err = pcall(function()
        for rec in M.Book:iter() do
          local guard <close> = setmetatable({}, { __close = function(_, e) closed[#closed + 1] = e end })
          if rec.title == "x10" then error("stop", 0) end
        end
      end)
      assert.is_false(ok)
      assert.equal("stop", err)
      assert.equal("stop", closed[#closed])
      assert.equal(0, pg_cursors(db))
      -- a __close that raises replaces the error; the cursor still closes
      ok, err = pcall(function()
        for rec in M.Book:iter() do
          local guard <close> = setmetatable({}, { __close = function() error({ from_close = true }) end })
          if rec.title == "x10" then error("stop", 0) end
        end
      end)
      assert.is_false(ok)
      assert.is_true(err.from_close)
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("an iterator abandoned mid-way and collected leaves no cursor and no lock", function()
      do
        local f, s, c = M.Book:iter()
        for _ = 1, 300 do assert(f(s, c)) end
      end
      collectgarbage()
      collectgarbage()
      assert.equal(0, pg_cursors(db))
      M.Log:create { what = "after" }
      M.Book:filter { title = "x1" }:update { views = 5 }
      usable(db, M)
    end)

    it("an abandoned iterator collected while another call runs user code does no harm", function()
      local function abandon()
        local f, s, c = M.Book:iter()
        for _ = 1, 10 do assert(f(s, c)) end
      end
      abandon()
      trap["Book.before_save"] = function() collectgarbage(); collectgarbage() end
      local a = M.Author:get { name = "a1" }
      M.Book:create { title = "during save", author = a }
      abandon()
      trap["Book.before_delete"] = function() collectgarbage(); collectgarbage() end
      M.Book:get { title = "during save" }:delete()
      abandon()
      db:on_query(function() collectgarbage() end)
      assert.equal(603, M.Book:count())
      db:on_query(nil)
      abandon()
      db:transaction(function()
        collectgarbage(); collectgarbage()
        M.Log:create { what = "t" }
      end)
      collectgarbage()
      assert.equal(0, pg_cursors(db))
      assert.equal(1, #db:rows("SELECT id FROM books WHERE title = 'x1'"))
      usable(db, M)
    end)

    it("a second query, a nested iter and writes run while an iterator is open", function()
      local n, inner = 0, 0
      for rec in M.Book:order_by("id"):iter() do
        n = n + 1
        if n == 1 then
          for _ in M.Book:filter { title__startswith = "b" }:iter() do inner = inner + 1 end
          assert.equal(603, M.Book:count())
        end
        if n == 2 then M.Log:create { what = "in loop" } end
        if n == 3 then
          local ok = pcall(db.transaction, db, function()
            M.Log:create { what = "undone" }
            error("no")
          end)
          assert.is_false(ok)
        end
      end
      assert.equal(603, n)
      assert.equal(3, inner)
      assert.equal(1, M.Log:filter { what = "in loop" }:count())
      assert.equal(0, M.Log:filter { what = "undone" }:count())
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("writes to the iterated table itself, and a delete hook run for rows not read yet, keep the loop sound", function()
      local n, seen = 0, {}
      for rec in M.Book:order_by("id"):iter() do
        n = n + 1
        assert.is_nil(seen[rec.id])                  -- no row twice
        seen[rec.id] = true
        if n == 1 then M.Book:filter { title__in = { "x500", "x501" } }:delete() end
        if n == 2 then M.Book:filter { title = "x10" }:update { views = 5 } end
        if n == 3 then M.Book:create { title = "late", author = M.Author:get { name = "a2" } } end
        if n == 4 then M.Book:get { title = "x300" }:delete() end
      end
      assert.is_true(n >= 600 and n <= 604, "read " .. n)
      assert.equal(601, #db:rows("SELECT id FROM books"))
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("a body that yields works; closing the suspended coroutine closes the cursor", function()
      local co = coroutine.create(function()
        for rec in M.Book:iter() do coroutine.yield(rec.title) end
      end)
      for _ = 1, 300 do assert(coroutine.resume(co)) end
      M.Log:create { what = "between" }
      assert.is_true(coroutine.close(co))
      assert.equal(0, pg_cursors(db))
      -- a suspended coroutine that is collected
      co = coroutine.wrap(function()
        for rec in M.Book:iter() do coroutine.yield(rec.title) end
      end)
      co(); co()
      co = nil
      collectgarbage(); collectgarbage()
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("a coroutine killed by an error in the body: the cursor closes with coroutine.close or the collector", function()
      for _, finish in ipairs { "close", "collect" } do
        local co = coroutine.create(function()
          for rec in M.Book:iter() do
            if rec.title == "x100" then error({ killed = true }) end
          end
        end)
        local ok, err = coroutine.resume(co)
        assert.is_false(ok)
        assert.is_true(err.killed)
        M.Log:create { what = "while the dead coroutine holds it" }
        if finish == "close" then
          local cok, cerr = coroutine.close(co)
          assert.is_false(cok)
          assert.is_true(cerr.killed)
        end
        co = nil
        collectgarbage(); collectgarbage()
        assert.equal(0, pg_cursors(db), finish)
      end
      usable(db, M)
    end)

    it("a body that yields inside a db:transaction raises misuse and rolls back", function()
      local before = snapshot(db)
      local co = coroutine.wrap(function()
        return pcall(db.transaction, db, function()
          for rec in M.Book:iter() do
            M.Log:create { what = rec.title }
            coroutine.yield()
          end
        end)
      end)
      local ok, err = co()
      assert.is_false(ok)
      assert.equal("misuse", err.code)
      assert.equal(before, snapshot(db))
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("a body that closes and reopens the db: the loop raises connection, never reads the new connection", function()
      local n = 0
      local ok, err = pcall(function()
        for _ in M.Book:order_by("id"):iter() do
          n = n + 1
          if n == 10 then db:close(); db:reopen() end
        end
      end)
      assert.is_false(ok, "read " .. n .. " rows")
      assert.equal("connection", err.code)
      assert.is_true(n >= 10 and n <= 256, "read " .. n)
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("a body that closes the db: the loop raises connection; after reopen all works", function()
      local f, s, c
      local n = 0
      local ok, err = pcall(function()
        local it
        f, s, c, it = M.Book:iter()
        for rec in f, s, c, it do
          n = n + 1
          if n == 10 then db:close() end
        end
      end)
      assert.is_false(ok)
      assert.equal("connection", err.code)
      db:reopen()
      -- the old iterator ends or raises; it never reads the new connection
      local ok2, r = pcall(f, s, c)
      assert.is_true(not ok2 and r.code == "connection" or r == nil)
      n = 0
      for _ in M.Book:iter() do n = n + 1 end
      assert.equal(603, n)
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)
  end)

  describe("iterators and transactions that end under them", function()
    before_each(function()
      local a = M.Author:get { name = "a1" }
      local rows = {}
      for i = 1, 600 do rows[i] = { title = "x" .. i, author = a } end
      M.Book:bulk_create(rows)
    end)

    it("an iterator opened in a hook whose call fails raises or ends when continued; the handle works", function()
      local f, s, c
      trap["Book.before_save"] = function()
        f, s, c = M.Book:order_by("id"):iter()
        assert(f(s, c))
        error("after opening", 0)
      end
      local before = snapshot(db)
      local ok, err = pcall(M.Book.create, M.Book, { title = "n", author = M.Author:get { name = "a1" } })
      trap["Book.before_save"] = nil
      assert.is_false(ok)
      assert.equal("after opening", err)
      assert.equal(before, snapshot(db))
      -- the cursor lived in the rolled-back savepoint on PostgreSQL
      local n = 0
      local ok2, e2 = pcall(function()
        for _ = 1, 700 do
          if not f(s, c) then break end
          n = n + 1
        end
      end)
      assert.is_true(ok2 or type(e2) == "table" and type(e2.code) == "string")
      f, s, c = nil, nil, nil
      collectgarbage(); collectgarbage()
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("an iterator opened in a db:transaction that fails raises or ends when continued", function()
      local f, s, c
      local ok = pcall(db.transaction, db, function()
        f, s, c = M.Book:iter()
        assert(f(s, c))
        M.Log:create { what = "undone" }
        error({ stop = 1 })
      end)
      assert.is_false(ok)
      local ok2, e2 = pcall(function()
        for _ = 1, 700 do if not f(s, c) then break end end
      end)
      assert.is_true(ok2 or type(e2) == "table" and type(e2.code) == "string")
      assert.equal(0, M.Log:filter { what = "undone" }:count())
      f, s, c = nil, nil, nil
      collectgarbage(); collectgarbage()
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("an iterator opened before a db:transaction that fails goes on reading after it", function()
      local f, s, c = M.Book:order_by("id"):iter()
      for _ = 1, 10 do assert(f(s, c)) end
      assert.is_false(pcall(db.transaction, db, function()
        M.Log:create { what = "undone" }
        for _ = 1, 300 do assert(f(s, c)) end
        error("no")
      end))
      local n = 310
      while f(s, c) do n = n + 1 end
      assert.equal(603, n)
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("an iterator abandoned in a transaction that failed is closed without harm", function()
      local ok = pcall(db.transaction, db, function()
        do
          local f, s, c = M.Book:iter()
          assert(f(s, c))
        end
        pcall(db.execute, db, "UPDATE nowhere SET x = 1")   -- aborts it on PostgreSQL
        collectgarbage(); collectgarbage()
        M.Log:create { what = "after the failure" }
      end)
      if helper.is_pg then assert.is_false(ok) end
      collectgarbage()
      assert.equal(0, pg_cursors(db))
      usable(db, M)
      assert.equal(0, pg_cursors(db))
    end)

    it("an on_query error in a query of the loop body comes back from the loop; the cursor closes", function()
      local n = 0
      local ok, err = pcall(function()
        for _ in M.Book:iter() do
          n = n + 1
          if n == 100 then
            db:on_query(function() error({ observed = true }) end)
            M.Log:count()
          end
        end
      end)
      db:on_query(nil)
      assert.is_false(ok)
      assert.is_true(err.observed)
      assert.equal(100, n)
      assert.equal(0, pg_cursors(db))
      usable(db, M)
    end)

    it("a Quay error re-raised through nested transactions is the same object", function()
      local inner
      local ok, err = pcall(db.transaction, db, function()
        db:transaction(function()
          local ok1, e1 = pcall(M.Author.create, M.Author, { name = "a1" })
          assert(not ok1)
          inner = e1
          error(e1, 0)
        end)
      end)
      assert.is_false(ok)
      assert.is_true(rawequal(inner, err))
      assert.equal("integrity", err.code)
      usable(db, M)
    end)

    it("a strict-mode lazy load in a hook raises lazy_load and undoes the call", function()
      local before = snapshot(db)
      trap["Book.before_save"] = function(rec) return rec.author.name end
      local b = M.Book:strict():get { title = "b1" }
      b.views = 7
      local err = helper.raises("lazy_load", b.save, b)
      helper.mentions(err, "Book.author")
      trap["Book.before_save"] = nil
      assert.equal(before, snapshot(db))
      assert.same({ "views" }, b:changed())
      usable(db, M)
    end)
  end)

  describe("values given to raw SQL and to conditions", function()
    it("a parameter with an erroring __tostring is refused with a Quay error", function()
      for _, v in ipairs { raising_tostring, setmetatable({}, { __index = function() error("idx") end }) } do
        local ok, err = pcall(db.rows, db, "SELECT ? AS x", { v })
        assert.is_false(ok)
        assert.equal("table", type(err))
        assert.is_string(err.code)
        ok, err = pcall(db.execute, db, "UPDATE logs SET what = ?", { v })
        assert.is_false(ok)
        assert.is_string(err.code)
      end
      usable(db, M)
    end)

    it("a condition table and an order_by term with metamethods are refused with a Quay error", function()
      for _, call in ipairs {
        function() return M.Book:filter { views__gt = raising_tostring }:count() end,
        function() return M.Book:exclude { title__in = { "b1", raising_tostring } }:count() end,
        function() return M.Book:order_by(raising_tostring):first() end,
        function() return M.Book:get { title = raising_tostring } end,
        function() return M.Book:pluck(raising_tostring) end,
        function() return M.Book:find(raising_tostring) end,
      } do
        local ok, err = pcall(call)
        assert.is_false(ok, "call " .. _ .. " succeeded")
        assert.equal("table", type(err), tostring(type(err) == "string" and err))
        assert.is_string(err.code)
      end
      usable(db, M)
    end)
  end)

  describe("on_query callbacks", function()
    it("raising any value fails the call with it, and undoes a cascade", function()
      local k = 0
      each_value("on_query", function()
        k = 0
        db:on_query(function() k = k + 1; if k == 3 then spring("on_query") end end)
        local ok, err = pcall(function() return M.Author:get { name = "a1" }:delete() end)
        db:on_query(nil)
        if ok then return end
        error(err, 0)
      end)
    end)

    it("that close (and reopen) the db at BEGIN, SAVEPOINT, RELEASE or COMMIT fail the call; nothing stays", function()
      local a = M.Author:get { name = "a1" }
      for _, pat in ipairs { "^BEGIN", "^SAVEPOINT", "^RELEASE", "^COMMIT" } do
        for _, reopen in ipairs { false, true } do
          local before = snapshot(db)
          db:on_query(function(sql)
            if sql:match(pat) then
              db:on_query(nil)
              db:close()
              if reopen then db:reopen() end
            end
          end)
          local ok, err = pcall(db.transaction, db, function()
            return M.Book:create { title = "n", author = a }
          end)
          if db:is_open() then db:on_query(nil) else db:reopen() end
          assert.is_false(ok, pat)
          assert.equal("connection", err.code, pat)
          assert.equal(before, snapshot(db), pat)
        end
      end
      usable(db, M)
    end)

    it("that yield raise a clear error", function()
      local before = snapshot(db)
      db:on_query(function() coroutine.yield() end)
      local co = coroutine.wrap(function()
        return pcall(function() return M.Book:create { title = "n", author = M.Author:get { name = "a1" } } end)
      end)
      local ok, err = co()
      db:on_query(nil)
      assert.is_false(ok)
      helper.mentions({ message = tostring(type(err) == "table" and err.message or err) }, "yield")
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)
  end)

  describe("values and row tables with metatables", function()
    local function trapping(name)
      return { __index = function() error(name .. ": __index") end,
               __newindex = function() error(name .. ": __newindex") end,
               __len = function() error(name .. ": __len") end,
               __pairs = function() error(name .. ": __pairs") end,
               __eq = function() error(name .. ": __eq") end,
               __tostring = function() error(name .. ": __tostring") end }
    end

    it("row tables are read raw: erroring metamethods are never called", function()
      local a = M.Author:get { name = "a1" }
      local row = setmetatable({ title = "m1", author = a }, trapping("row"))
      local b = M.Book:create(row)
      assert.equal("m1", b.title)
      local list = setmetatable({
        setmetatable({ title = "m2", author = a }, trapping("row2")),
        setmetatable({ title = "m3", author = a }, trapping("row3")),
      }, trapping("list"))
      assert.equal(2, #M.Book:bulk_create(list))
      list = setmetatable({ setmetatable({ title = "m2", author = a, views = 9 }, trapping("u")) },
        trapping("ulist"))
      M.Book:upsert(list, { conflict = setmetatable({ "title" }, trapping("conflict")) })
      assert.equal(9, db:rows("SELECT views FROM books WHERE title = 'm2'")[1].views)
      assert.equal(1, M.Book:filter(setmetatable({ title = "m3" }, trapping("cond"))):count())
      -- a list with a metatable is no list of values: refused, not read
      helper.raises("validation", function()
        return M.Book:filter { title__in = setmetatable({ "m3", "zz" }, trapping("in")) }:count()
      end)
      M.Book:filter { title = "m3" }:update(setmetatable({ views = 4 }, trapping("upd")))
      assert.equal(4, db:rows("SELECT views FROM books WHERE title = 'm3'")[1].views)
      assert.equal(1, #db:rows("SELECT id FROM books WHERE title = ?", setmetatable({ "m3" }, trapping("params"))))
      usable(db, M)
    end)

    it("a field value with metamethods is refused with validation, naming model and field", function()
      local before = snapshot(db)
      local a = M.Author:get { name = "a1" }
      for _, call in ipairs {
        function() return M.Book:create { title = setmetatable({}, trapping("v")), author = a } end,
        function() return M.Book:bulk_create { { title = "ok", author = a }, { title = setmetatable({}, trapping("v")), author = a } } end,
        function() return M.Book:filter { title = setmetatable({}, trapping("v")) }:count() end,
        function() return M.Book:query():update { title = setmetatable({}, trapping("v")) } end,
        function() return M.Book:create { title = raising_tostring, author = a } end,
      } do
        local err = helper.raises("validation", call)
        helper.mentions(err, "Book", "title")
      end
      assert.equal(before, snapshot(db))
      usable(db, M)
    end)

    it("a record with an erroring metamethod swapped in is refused or read raw", function()
      local a = M.Author:get { name = "a1" }
      local fake = setmetatable({ id = a.id }, trapping("fake"))
      local ok, err = pcall(M.Book.create, M.Book, { title = "f", author = fake })
      assert.is_false(ok)
      assert.equal("table", type(err))
      assert.is_string(err.code)
      usable(db, M)
    end)
  end)
end)
