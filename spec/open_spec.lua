-- docs/reference.md "Opening a database"
local helper = require("spec.helper")
local quay = helper.quay

describe("Opening a database", function()
  it("opens the configured backend and closes", function()
    local db = helper.open()
    assert.is_true(db:is_open())
    db:close()
    assert.is_false(db:is_open())
    db:close() -- idempotent
  end)

  it("opens an in-memory SQLite database", function()
    local db = quay.open("sqlite::memory:")
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 1 }
    assert.equal(1, T:count())
    db:close()
  end)

  it("creates a SQLite file when missing", function()
    local path = os.tmpname()
    os.remove(path)
    local db = quay.open("sqlite:" .. path)
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 7 }
    db:close()
    local db2 = quay.open("sqlite:" .. path)
    local T2 = db2:model("T", { n = quay.integer() })
    assert.equal(7, T2:first().n)
    db2:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
  end)

  it("closes through a to-be-closed variable", function()
    local outer
    do
      local db <close> = helper.open()
      outer = db
      assert.is_true(db:is_open())
    end
    assert.is_false(outer:is_open())
  end)

  it("is collected without being closed", function()
    local db = helper.open()
    local U = db:model("U", { n = quay.integer() })
    db:create_tables()
    U:create { n = 1 }
    db, U = nil, nil
    collectgarbage()
    collectgarbage()
  end)

  it("raises connection for a bad URL and for use after close", function()
    helper.raises("connection", quay.open, "mysql://nope")
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    db:close()
    local err = helper.raises("connection", function() return T:count() end)
    helper.mentions(err, "closed")
  end)

  it("counts statements in stats()", function()
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    local before = db:stats().queries
    T:create { n = 1 }
    T:count()
    assert.equal(before + 2, db:stats().queries)
  end)

  it("calls on_query for every statement, with params", function()
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    local seen = {}
    db:on_query(function(sql, params) seen[#seen + 1] = { sql, params } end)
    T:filter { n = 42 }:count()
    assert.equal(1, #seen)
    assert.truthy(seen[1][1]:find("COUNT", 1, true))
    assert.same({ 42, n = 1 }, seen[1][2])
    db:on_query(nil)
    T:count()
    assert.equal(1, #seen)
  end)

  it("propagates an error raised by on_query and stays usable", function()
    local db = helper.open()
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    db:on_query(function() error("boom") end)
    local ok, err = pcall(function() return T:count() end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom"))
    db:on_query(nil)
    assert.equal(0, T:count())
  end)

  it("reopens a closed database keeping its models", function()
    local path = os.tmpname()
    os.remove(path)
    local db = quay.open(helper.is_pg and helper.url or ("sqlite:" .. path))
    if helper.is_pg then
      db:execute("DROP SCHEMA IF EXISTS public CASCADE")
      db:execute("CREATE SCHEMA public")
    end
    local T = db:model("T", { n = quay.integer() })
    db:create_tables()
    T:create { n = 5 }
    db:close()
    db:reopen()
    assert.equal(5, T:first().n)
    db:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
  end)
end)
