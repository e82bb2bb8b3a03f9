-- Issue 8: two SQLite connections to one file; a writer holding a long
-- transaction makes the other get `busy` after its timeout, and the data
-- is never half-written.
local helper = require("spec.helper")
local quay = helper.quay

describe("Concurrency on SQLite (file databases only)", function()
  if helper.is_pg then
    it("is a SQLite-only spec (PostgreSQL locks are covered by pg_spec)", function()
      assert.is_true(helper.is_pg)
    end)
    return
  end

  local path, a, b, TA, TB
  before_each(function()
    path = os.tmpname()
    os.remove(path)
    a = quay.open("sqlite:" .. path)
    b = quay.open("sqlite:" .. path, { busy_timeout = 150 })
    TA = a:model("T", { n = quay.integer() })
    TB = b:model("T", { n = quay.integer() })
    a:create_tables()
    TA:create { n = 1 }
  end)
  after_each(function()
    a:close(); b:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
  end)

  it("raises busy after the timeout while another connection writes", function()
    a:transaction(function()
      TA:create { n = 2 }
      local t0 = os.clock()
      local err = helper.raises("busy", TB.create, TB, { n = 3 })
      helper.mentions(err, "locked")
      -- the reader still sees the committed state only
      assert.equal(1, TB:count())
    end)
    assert.equal(2, TB:count())
    TB:create { n = 4 }
    assert.equal(3, TA:count())
  end)

  it("a busy cascade or bulk insert changes nothing", function()
    local rows = {}
    for i = 1, 100 do rows[i] = { n = i } end
    a:transaction(function()
      TA:create { n = 2 }
      helper.raises("busy", TB.bulk_create, TB, rows)
      helper.raises("busy", function() return TB:query():delete() end)
    end)
    assert.equal(2, TB:count())
  end)
end)
