-- docs/reference.md "Transactions and raw SQL"
local helper = require("spec.helper")
local quay = helper.quay

describe("Transactions and raw SQL", function()
  local db, T
  before_each(function()
    db = helper.open()
    T = db:model("T", { n = quay.integer() })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("commits and returns fn's results", function()
    local a, b = db:transaction(function(d)
      assert.equal(db, d)
      T:create { n = 1 }
      return "x", 2
    end)
    assert.equal("x", a)
    assert.equal(2, b)
    assert.equal(1, T:count())
  end)

  it("rolls back on error and raises it again", function()
    local ok, err = pcall(db.transaction, db, function()
      T:create { n = 1 }
      error({ mine = true })
    end)
    assert.is_false(ok)
    assert.is_true(err.mine)
    assert.equal(0, T:count())
  end)

  it("nests with savepoints", function()
    db:transaction(function()
      T:create { n = 1 }
      pcall(db.transaction, db, function()
        T:create { n = 2 }
        error("inner")
      end)
      db:transaction(function() T:create { n = 3 } end)
    end)
    assert.same({ 1, 3 }, { table.unpack(T:order_by("n"):pluck("n")) })
  end)

  it("executes raw SQL with ? placeholders on every backend", function()
    assert.equal(1, db:execute("INSERT INTO ts (n) VALUES (?)", { 10 }))
    db:execute("INSERT INTO ts (n) VALUES (?), (?)", { 20, 30 })
    assert.equal(2, db:execute("UPDATE ts SET n = n + 1 WHERE n > ?", { 15 }))
    local rows = db:rows("SELECT n FROM ts WHERE n > ? ORDER BY n", { 5 })
    assert.same({ { n = 10 }, { n = 21 }, { n = 31 } }, rows)
    assert.same({}, db:rows("SELECT n FROM ts WHERE n < ?", { 0 }))
    helper.raises("sql", db.rows, db, "SELECT nope FROM ts")
    local rows2 = db:rows("SELECT ? AS s", { "it's" })
    assert.equal("it's", rows2[1].s)
  end)
end)
