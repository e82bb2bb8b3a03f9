-- Statements cached by one connection while another changes the schema
-- (a deploy migrating under running processes): SQLite prepares them again
-- with the new columns; PostgreSQL refuses a prepared statement whose
-- result columns changed, so Quay prepares it again outside a transaction
-- and raises busy inside one (the transaction is run again as a whole).
local helper = require("spec.helper")
local quay = helper.quay

describe("statements cached before another connection changed a table", function()
  local path, a, b
  before_each(function()
    if helper.is_pg then
      a = helper.open()
      b = quay.open(helper.url)
    else
      path = os.tmpname()
      os.remove(path)
      a = quay.open("sqlite:" .. path)
      b = quay.open("sqlite:" .. path)
    end
    a:execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(20) NOT NULL)")
    a:execute("INSERT INTO notes (id, body) VALUES (1, 'one'), (2, 'two')")
  end)
  after_each(function()
    a:close(); b:close()
    if path then
      os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    end
  end)

  it("db:rows of SELECT * returns the columns the table has now", function()
    for _ = 1, 6 do
      local r = a:rows("SELECT * FROM notes ORDER BY id")
      assert.equal(2, #r)
      assert.is_nil(r[1].extra)
    end
    b:execute("ALTER TABLE notes ADD COLUMN extra INTEGER DEFAULT 7")
    local r = a:rows("SELECT * FROM notes ORDER BY id")
    assert.same({ id = 1, body = "one", extra = 7 }, r[1])
    assert.same({ id = 2, body = "two", extra = 7 }, r[2])
  end)

  it("Model:raw of SELECT * maps the new columns by name", function()
    local Note = a:model("Note", { table = "notes", body = quay.string { max = 20 } })
    for _ = 1, 6 do assert.equal(2, #Note:raw("SELECT * FROM notes ORDER BY id")) end
    b:execute("ALTER TABLE notes ADD COLUMN extra INTEGER DEFAULT 7")
    local r = Note:raw("SELECT * FROM notes ORDER BY id")
    assert.equal("one", r[1].body)
    assert.equal(2, r[2].id)
    assert.equal(7, r[1].extra)        -- a column that is no field reads too
  end)

  it("model queries go on after a column's type changed", function()
    local Note = a:model("Note", { table = "notes", body = quay.string { max = 20 } })
    for _ = 1, 6 do
      assert.equal("one", Note:get { id = 1 }.body)
      assert.equal(2, #Note:query():order_by("id"):all())
    end
    if helper.is_pg then
      b:execute("ALTER TABLE notes ALTER COLUMN body TYPE TEXT")
    else
      b:execute("ALTER TABLE notes ADD COLUMN extra INTEGER")
    end
    assert.equal("one", Note:get { id = 1 }.body)
    local all = Note:query():order_by("id"):all()
    assert.equal(2, #all)
    assert.equal("two", all[2].body)
    local bodies = Note:query():order_by("id"):pluck("body")
    assert.equal("one", bodies[1])
    assert.equal("two", bodies[2])
  end)

  it("inside a transaction: busy, nothing kept, and the transaction runs again", function()
    local Note = a:model("Note", { table = "notes", body = quay.string { max = 20 } })
    for _ = 1, 6 do assert.equal("one", Note:get { id = 1 }.body) end
    if helper.is_pg then
      b:execute("ALTER TABLE notes ALTER COLUMN body TYPE TEXT")
    else
      b:execute("ALTER TABLE notes ADD COLUMN extra INTEGER")
    end
    local function work()
      return a:transaction(function()
        Note:create { id = 3, body = "three" }
        return Note:get { id = 1 }.body
      end)
    end
    if helper.is_pg and not helper.pooled then
      -- (with prepare = false nothing stays prepared: nothing to refuse)
      local err = helper.raises("busy", work)
      helper.mentions(err, "run the transaction again")
      assert.equal(2, Note:count())
    end
    assert.equal("one", work())
    assert.equal(3, Note:count())
  end)
end)
