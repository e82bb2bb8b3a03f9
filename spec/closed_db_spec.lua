-- reference.md, "Details the second part fixes": "A closed db raises
-- `connection` with a message that says it is closed, before any other
-- check."  Every method of the db, of a model, of a query set, of a record
-- and of a related set is called on a closed db, with arguments that would
-- fail another check (wrong types, unknown names), and must raise that.
local helper = require("spec.helper")
local quay = helper.quay

describe("A closed db", function()
  local db, M, u, p, fresh, qs, set, m2m
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    u = M.User:create { name = "a", email = "a@x" }
    p = M.Post:create { title = "t", author = u }
    qs = M.Post:filter { views = 0 }
    set = u.posts
    m2m = p.tags
    fresh = M.Post:first()                -- relations not loaded yet
    db:close()
  end)
  after_each(function() db:close() end)

  local function closed(what, fn, ...)
    local ok, err = pcall(fn, ...)
    assert(not ok, what .. " succeeded on a closed db")
    assert(type(err) == "table", what .. " raised " .. tostring(err))
    assert(err.code == "connection",
      ("%s raised %s (%s), not connection"):format(what, tostring(err.code),
        tostring(err.message)))
    helper.mentions(err, "closed")
  end

  -- Arguments that every method would refuse for another reason.
  local bad = { 5, { nope__x = 1 }, "no_such_name" }

  it("raises connection from every db method but close, reopen and is_open", function()
    local methods = getmetatable(db).__index
    local n = 0
    for name, fn in pairs(methods) do
      if name ~= "close" and name ~= "reopen" and name ~= "is_open" then
        n = n + 1
        closed("db:" .. name .. "()", fn, db)
        for _, arg in ipairs(bad) do
          closed(("db:%s(%s)"):format(name, tostring(arg)), fn, db, arg, arg)
        end
      end
    end
    assert.is_true(n >= 10)
    -- the three that manage the handle itself
    assert.is_false(db:is_open())
    db:close()
    assert.truthy(tostring(db):find("closed", 1, true))
  end)

  it("raises connection from every model method, query-set shortcuts included", function()
    local names = { "new", "create", "find", "bulk_create", "name", "query" }
    for name in pairs(getmetatable(qs).__methods) do names[#names + 1] = name end
    assert.is_true(#names > 20)
    for _, name in ipairs(names) do
      local fn = M.Post[name]
      closed("Post:" .. name .. "()", fn, M.Post)
      for _, arg in ipairs(bad) do
        closed(("Post:%s(%s)"):format(name, tostring(arg)), fn, M.Post, arg)
      end
    end
    closed("Post:no_such_method()", function() return M.Post:no_such_method() end)
  end)

  it("raises connection from every query-set method", function()
    for name, fn in pairs(getmetatable(qs).__methods) do
      closed("qs:" .. name .. "()", fn, qs)
      for _, arg in ipairs(bad) do
        closed(("qs:%s(%s)"):format(name, tostring(arg)), fn, qs, arg)
      end
    end
  end)

  it("raises connection from every record method", function()
    for _, name in ipairs({ "save", "delete", "refresh", "to_table" }) do
      local fn = p[name]
      closed("rec:" .. name .. "()", fn, p)
      for _, arg in ipairs(bad) do
        closed(("rec:%s(%s)"):format(name, tostring(arg)), fn, p, arg)
      end
    end
    -- relations that need a query
    closed("rec.author (not loaded)", function() return fresh.author end)
    closed("#rec.tags (not loaded)", function() return #fresh.tags end)
  end)

  it("raises connection from every related-set method", function()
    local names = { "add", "remove", "clear", "set", "contains", "create", "all", "count" }
    for name in pairs(getmetatable(qs).__methods) do names[#names + 1] = name end
    for _, s in ipairs({ set, m2m }) do
      for _, name in ipairs(names) do
        local fn = s[name]
        closed("set:" .. name .. "()", fn, s)
        for _, arg in ipairs(bad) do
          closed(("set:%s(%s)"):format(name, tostring(arg)), fn, s, arg)
        end
      end
    end
  end)

  it("raises it for a db closed by __close, and works again after reopen", function()
    -- a db that keeps its data across close: a temp file on SQLite
    local path = os.tmpname()
    local d0 = helper.is_pg and helper.open() or quay.open("sqlite:" .. path)
    local T = d0:model("T", { n = quay.integer() })
    d0:create_tables()
    local rec = T:create { n = 1 }
    local q = T:filter { n = 1 }
    do
      local d <close> = d0
      assert.is_true(d:is_open())
    end
    closed("Model:count after __close", T.count, T)
    closed("qs:count after __close", q.count, q)
    closed("rec:refresh after __close", rec.refresh, rec)
    d0:reopen()
    assert.equal(1, q:count())
    assert.equal(1, rec:refresh().n)
    d0:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
  end)

  it("does not touch values already read", function()
    -- field reads are plain table reads: no method, no database
    assert.equal("t", p.title)
    assert.equal("a", u.name)
    assert.equal(u.id, p.author_id)
    assert.truthy(quay.null)
  end)
end)
