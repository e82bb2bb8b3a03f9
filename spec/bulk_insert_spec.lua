-- bulk_create of many rows (issue 13, W5): on SQLite the engine writes
-- them 64 to a statement in a transaction of its own, with the
-- connection's foreign-key enforcement suspended and its own check of
-- every foreign key before COMMIT (writer.c "Bulk inserts").  Everything
-- here holds on both backends; the checks compare with plain SQL over the
-- same rows.
local helper = require("spec.helper")
local quay = helper.quay

local function ids(db, tbl)
  local out = {}
  for _, r in ipairs(db:rows("SELECT id FROM " .. tbl .. " ORDER BY id")) do
    out[#out + 1] = r.id
  end
  return out
end

describe("bulk_create of many rows", function()
  local db, User, Post
  local function posts(n, author, from)
    local rows = {}
    for i = 1, n do
      rows[i] = { title = "p" .. ((from or 0) + i), views = i, author_id = author }
    end
    return rows
  end
  -- FOREIGN KEY enforcement is on: a row naming no user is refused by
  -- the database itself, outside any bulk call.
  local function enforced()
    if helper.is_pg then return end
    local err = helper.raises("integrity", db.execute, db,
      "INSERT INTO posts (title, views, author_id) VALUES ('x', 0, 999999)")
    helper.mentions(err, "FOREIGN KEY")
  end

  before_each(function()
    db = helper.open()
    User = db:model("User", { name = quay.string { unique = true } })
    Post = db:model("Post", {
      title = quay.string { unique = true },
      views = quay.integer(),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
    })
    db:migrate()
  end)
  after_each(function() db:close() end)

  it("writes every row with its key, as plain SQL reads them back", function()
    local u = User:create { name = "a" }
    local v = User:create { name = "b" }
    local rows = posts(300, u.id)
    for i = 2, 300, 3 do rows[i].author_id = v.id end
    local recs = Post:bulk_create(rows)
    assert.equal(300, #recs)
    local got = db:rows("SELECT id, title, views, author_id FROM posts ORDER BY id")
    assert.equal(300, #got)
    for i, r in ipairs(got) do
      assert.equal(r.id, recs[i].id)
      assert.equal(r.title, recs[i].title)
      assert.equal(r.views, recs[i].views)
      assert.equal(r.author_id, recs[i].author_id)
      assert.equal(rows[i].title, r.title)
    end
    assert.equal(100, v.posts:count())
    enforced()
  end)

  it("batches the statements on SQLite", function()
    if helper.is_pg then return end
    local u = User:create { name = "a" }
    local n = helper.queries(db, function() Post:bulk_create(posts(640, u.id)) end)
    -- 10 INSERTs of 64 rows, the set-up reads, one key check, BEGIN, COMMIT
    assert.is_true(n <= 20, "statements: " .. n)
    assert.equal(640, Post:count())
  end)

  it("refuses a row whose parent does not exist, and writes nothing", function()
    local u = User:create { name = "a" }
    Post:bulk_create(posts(10, u.id))
    local before = ids(db, "posts")
    local rows = posts(200, u.id, 100)
    rows[150].author_id = 424242
    local err = helper.raises("integrity", Post.bulk_create, Post, rows)
    helper.mentions(err, "Post.author", "does not exist")
    assert.same(before, ids(db, "posts"))
    enforced()
    -- the same rows with the key fixed go in
    rows[150].author_id = u.id
    assert.equal(200, #Post:bulk_create(rows))
    assert.equal(210, Post:count())
  end)

  it("refuses a duplicate in the middle of a batch, and writes nothing", function()
    local u = User:create { name = "a" }
    local rows = posts(200, u.id)
    rows[170].title = rows[30].title
    local err = helper.raises("integrity", Post.bulk_create, Post, rows)
    helper.mentions(err, "title")
    assert.equal(0, Post:count())
    enforced()
  end)

  it("refuses a bad value in the middle before writing anything", function()
    local u = User:create { name = "a" }
    local rows = posts(200, u.id)
    rows[120].views = "many"
    local err = helper.raises("validation", Post.bulk_create, Post, rows)
    assert.equal("views", err.field)
    assert.equal(0, Post:count())
    enforced()
    assert.equal(200, #Post:bulk_create(posts(200, u.id)))
  end)

  it("gives rows their own keys when some are explicit", function()
    local u = User:create { name = "a" }
    local rows = posts(150, u.id)
    rows[40].id = 5000
    rows[41].id = 4000
    rows[100].id = 4500
    local recs = Post:bulk_create(rows)
    local byTitle = {}
    for _, r in ipairs(db:rows("SELECT id, title FROM posts")) do byTitle[r.title] = r.id end
    for i, rec in ipairs(recs) do
      assert.equal(byTitle[rows[i].title], rec.id, "row " .. i)
    end
    assert.equal(5000, recs[40].id)
    assert.equal(4500, recs[100].id)
    assert.equal(5001, recs[42].id)    -- after the largest key so far
    assert.equal(5000 + 58 + 50, recs[150].id)
    enforced()
  end)

  it("keeps keys right next to the largest rowid", function()
    if helper.is_pg then return end
    local u = User:create { name = "a" }
    local big = math.maxinteger - 100
    Post:create { id = big, title = "big", views = 0, author = u }
    local rows = posts(90, u.id)
    -- SQLite picks unused rowids at random past the largest: the keys
    -- the records get must still be the rows' own
    local recs = Post:bulk_create(rows)
    for i, rec in ipairs(recs) do
      local r = db:rows("SELECT title FROM posts WHERE id = ?", { rec.id })
      assert.equal(1, #r, "row " .. i)
      assert.equal(rows[i].title, r[1].title)
    end
    enforced()
  end)

  it("writes rows keyed by uuid, and checks their foreign keys", function()
    local Doc = db:model("Doc", {
      id = quay.uuid { primary_key = true },
      title = quay.string(),
      author = quay.belongs_to("User", { on_delete = quay.CASCADE }),
    })
    db:migrate()
    local u = User:create { name = "a" }
    local rows = {}
    for i = 1, 150 do rows[i] = { title = "d" .. i, author_id = u.id } end
    local recs = Doc:bulk_create(rows)
    local byId = {}
    for _, r in ipairs(db:rows("SELECT id, title FROM docs")) do byId[r.id] = r.title end
    for i, rec in ipairs(recs) do assert.equal(rows[i].title, byId[rec.id], "row " .. i) end
    rows = {}
    for i = 1, 150 do rows[i] = { title = "e" .. i, author_id = i == 99 and 8888 or u.id } end
    helper.raises("integrity", Doc.bulk_create, Doc, rows)
    assert.equal(150, Doc:count())
    enforced()
  end)

  it("checks a foreign key onto rows of the same call", function()
    local Cat = db:model("Cat", {
      name = quay.string(),
      parent = quay.belongs_to("Cat", { null = true, related_name = "children" }),
    })
    db:migrate()
    local rows = { { name = "root" } }
    for i = 2, 100 do rows[i] = { name = "c" .. i, parent_id = i - 1 } end
    local recs = Cat:bulk_create(rows)
    assert.equal(recs[99].id, recs[100].parent_id)
    rows = { { name = "x" } }
    for i = 2, 100 do rows[i] = { name = "y" .. i, parent_id = 10 ^ 9 // 1 } end
    helper.raises("integrity", Cat.bulk_create, Cat, rows)
    assert.equal(100, Cat:count())
  end)

  it("checks foreign keys the models do not declare", function()
    if helper.is_pg then return end
    -- The database has keys the model knows only as plain columns: one
    -- integer, one text, one over two columns.
    db:execute("CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT UNIQUE, a INTEGER, b INTEGER, UNIQUE (a, b))")
    db:execute("INSERT INTO items (id, code, a, b) VALUES (1, 'k1', 1, 1), (2, 'k2', 1, 2)")
    db:execute([[CREATE TABLE lines (id INTEGER PRIMARY KEY AUTOINCREMENT,
      item INTEGER REFERENCES items (id), code TEXT REFERENCES items (code),
      a INTEGER, b INTEGER, FOREIGN KEY (a, b) REFERENCES items (a, b))]])
    local Line = db:model("Line", {
      item = quay.integer { null = true }, code = quay.string { null = true },
      a = quay.integer { null = true }, b = quay.integer { null = true },
    })
    local function rows(over)
      local t = {}
      for i = 1, 100 do t[i] = { item = 1 + i % 2, code = "k" .. (1 + i % 2), a = 1, b = 1 + i % 2 } end
      for k, v in pairs(over or {}) do t[70][k] = v end
      return t
    end
    assert.equal(100, #Line:bulk_create(rows()))
    local err = helper.raises("integrity", Line.bulk_create, Line, rows { item = 3 })
    helper.mentions(err, "items")
    err = helper.raises("integrity", Line.bulk_create, Line, rows { code = "k3" })
    helper.mentions(err, "items")
    helper.raises("integrity", Line.bulk_create, Line, rows { b = 3 })
    -- NULL in a key is not checked, as SQLite does not check it
    assert.equal(100, #Line:bulk_create(rows { item = quay.null, code = quay.null, b = quay.null }))
    assert.equal(200, Line:count())
  end)

  it("takes the plain path on a table with a trigger, with the same result", function()
    if helper.is_pg then return end
    db:execute("CREATE TABLE audit (n INTEGER)")
    db:execute("CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN INSERT INTO audit VALUES (new.id); END")
    local u = User:create { name = "a" }
    local n = helper.queries(db, function() Post:bulk_create(posts(100, u.id)) end)
    assert.is_true(n >= 100, "statements: " .. n)
    assert.equal(100, db:rows("SELECT count(*) AS n FROM audit")[1].n)
    local rows = posts(100, u.id, 100)
    rows[50].author_id = 31337
    helper.raises("integrity", Post.bulk_create, Post, rows)
    assert.equal(100, Post:count())
    assert.equal(100, db:rows("SELECT count(*) AS n FROM audit")[1].n)
  end)

  it("takes the plain path on a WITHOUT ROWID table, with the same result", function()
    if helper.is_pg then return end
    db:execute([[CREATE TABLE marks (code TEXT PRIMARY KEY, author_id INTEGER NOT NULL
      REFERENCES users (id)) WITHOUT ROWID]])
    local Mark = db:model("Mark", {
      code = quay.string { primary_key = true },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE }),
    })
    local u = User:create { name = "a" }
    local rows = {}
    for i = 1, 100 do rows[i] = { code = "m" .. i, author_id = u.id } end
    local n = helper.queries(db, function() Mark:bulk_create(rows) end)
    assert.is_true(n >= 100, "statements: " .. n)
    for i = 1, 100 do rows[i].code = "n" .. i end
    rows[90].author_id = 5555
    helper.raises("integrity", Mark.bulk_create, Mark, rows)
    assert.equal(100, Mark:count())
  end)

  it("keeps a table's own ON CONFLICT clause", function()
    if helper.is_pg then return end
    db:execute([[CREATE TABLE seen (id INTEGER PRIMARY KEY AUTOINCREMENT,
      word TEXT NOT NULL UNIQUE ON CONFLICT IGNORE)]])
    local Seen = db:model("Seen", { word = quay.string(), table = "seen" })
    local rows = {}
    for i = 1, 100 do rows[i] = { word = "w" .. (i % 70) } end
    Seen:bulk_create(rows)
    assert.equal(70, db:rows("SELECT count(*) AS n FROM seen")[1].n)
  end)

  -- SQLite compares a key with the parent's affinity applied to the
  -- value the child column stored: a TEXT column stores 5 as '5', which a
  -- parent column of no type holding 5 does not match, and an INTEGER
  -- column stores '7.0' as 7, which such a parent holding '7.0' does not
  -- match.  The bulk check must refuse both, as SQLite does row by row.
  it("compares keys as SQLite does, whatever the child column's type", function()
    if helper.is_pg then return end
    db:execute("CREATE TABLE nums (id INTEGER PRIMARY KEY, num UNIQUE)")
    db:execute("INSERT INTO nums (id, num) VALUES (1, 5), (2, '7.0')")
    db:execute("CREATE TABLE tref (id INTEGER PRIMARY KEY, ref TEXT REFERENCES nums(num))")
    db:execute("CREATE TABLE iref (id INTEGER PRIMARY KEY, ref INTEGER REFERENCES nums(num))")
    local T = db:model("Tref", { ref = quay.integer(), table = "tref" })
    local I = db:model("Iref", { ref = quay.string(), table = "iref" })
    local trows, irows = {}, {}
    for i = 1, 100 do trows[i] = { ref = 5 }; irows[i] = { ref = "7.0" } end
    for _, observed in ipairs({ false, true }) do
      if observed then db:on_query(function() end) end
      helper.raises("integrity", T.bulk_create, T, trows)
      helper.raises("integrity", I.bulk_create, I, irows)
      db:on_query(nil)
      assert.equal(0, db:rows("SELECT count(*) AS n FROM tref")[1].n)
      assert.equal(0, db:rows("SELECT count(*) AS n FROM iref")[1].n)
    end
    -- the keys SQLite does find go in
    db:execute("INSERT INTO nums (id, num) VALUES (3, '5'), (4, 7)")
    assert.equal(100, #T:bulk_create(trows))
    assert.equal(100, #I:bulk_create(irows))
    enforced()
  end)

  -- and a TEXT parent column's '6' is the key of an INTEGER child's 6
  it("finds integer keys in a TEXT parent column, as SQLite does", function()
    if helper.is_pg then return end
    db:execute("CREATE TABLE codes (id INTEGER PRIMARY KEY, code TEXT UNIQUE)")
    db:execute("INSERT INTO codes (id, code) VALUES (1, '6'), (2, '07')")
    db:execute("CREATE TABLE uses (id INTEGER PRIMARY KEY, code INTEGER REFERENCES codes(code))")
    local Use = db:model("Use", { code = quay.integer(), table = "uses" })
    local rows = {}
    for i = 1, 100 do rows[i] = { code = 6 } end
    assert.equal(100, #Use:bulk_create(rows))
    rows[50].code = 7                  -- '07' is not 7's text
    for _, observed in ipairs({ false, true }) do
      if observed then db:on_query(function() end) end
      helper.raises("integrity", Use.bulk_create, Use, rows)
      db:on_query(nil)
    end
    assert.equal(100, db:rows("SELECT count(*) AS n FROM uses")[1].n)
    enforced()
  end)

  -- Row by row, SQLite refuses a row naming a row of its own table that
  -- the same call writes after it; a check at the end would let it in.
  -- (PostgreSQL checks a statement of many rows at its end.)
  it("refuses a row naming a later row of the same call, as row by row", function()
    if helper.is_pg then return end
    db:execute([[CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT,
      parent_id INTEGER REFERENCES nodes(id))]])
    local Node = db:model("Node", { name = quay.string(),
      parent = quay.belongs_to("self", { null = true, related_name = "kids" }), table = "nodes" })
    local rows = {}
    for i = 1, 100 do rows[i] = { name = "n" .. i } end
    local recs = Node:bulk_create(rows)
    local base = recs[100].id
    local more = {}
    for i = 1, 100 do more[i] = { name = "m" .. i, parent_id = i > 1 and base + i - 1 or recs[1].id } end
    assert.equal(100, #Node:bulk_create(more))          -- earlier rows: fine
    base = base + 100
    for i = 1, 100 do more[i] = { name = "o" .. i, parent_id = base + i } end
    more[30].parent_id = base + 31                         -- a later one
    local err = helper.raises("integrity", Node.bulk_create, Node, more)
    helper.mentions(err, "Node")
    assert.equal(200, Node:count())
    enforced()
  end)

  -- A key SQLite cannot use (its parent table is not there, or its parent
  -- column has no unique index) fails every INSERT, whatever the row.
  it("fails as SQLite does on a key SQLite cannot use", function()
    if helper.is_pg then return end
    db:execute("CREATE TABLE loose (id INTEGER PRIMARY KEY, v INTEGER, g INTEGER REFERENCES ghost(id))")
    db:execute("CREATE TABLE kin (id INTEGER PRIMARY KEY, v INTEGER, w INTEGER REFERENCES posts(views))")
    local Loose = db:model("Loose", { v = quay.integer(), table = "loose" })
    local Kin = db:model("Kin", { v = quay.integer(), table = "kin" })
    local rows = {}
    for i = 1, 100 do rows[i] = { v = i } end
    for _, observed in ipairs({ false, true }) do
      if observed then db:on_query(function() end) end
      helper.mentions(helper.raises("sql", Loose.bulk_create, Loose, rows), "ghost")
      helper.mentions(helper.raises("sql", Kin.bulk_create, Kin, rows), "mismatch")
      db:on_query(nil)
    end
    assert.equal(0, db:rows("SELECT count(*) AS n FROM loose")[1].n)
    assert.equal(0, db:rows("SELECT count(*) AS n FROM kin")[1].n)
    enforced()
  end)

  -- Explicit keys out of order make many runs of new rows; an old row
  -- among them (here one written while enforcement was off, with a key
  -- to nothing) is not the call's to check, as row by row it is not.
  it("checks only its own rows between explicit keys out of order", function()
    if helper.is_pg then return end
    db:execute("CREATE TABLE spots (id INTEGER PRIMARY KEY, v INTEGER, u INTEGER DEFAULT 1 REFERENCES users(id))")
    local Spot = db:model("Spot", { v = quay.integer(), table = "spots" })
    User:create { name = "a" }                            -- id 1
    db:execute("PRAGMA foreign_keys = OFF")
    db:execute("INSERT INTO spots (id, v, u) VALUES (20000, 0, 777)")
    db:execute("PRAGMA foreign_keys = ON")
    local rows = {}
    for j = 1, 200 do
      rows[j] = { v = j }
      if j % 2 == 1 then rows[j].id = 20100 - 3 * (j // 2) end   -- 20100 down to 19803
    end
    for _, observed in ipairs({ true, false }) do
      if observed then db:on_query(function() end) end
      assert.equal(200, #Spot:bulk_create(rows))
      db:on_query(nil)
      db:execute("DELETE FROM spots WHERE id <> 20000")
    end
    db:execute("UPDATE users SET id = 5")                 -- the default now names nothing
    helper.raises("integrity", Spot.bulk_create, Spot, rows)
    assert.equal(1, db:rows("SELECT count(*) AS n FROM spots")[1].n)
    enforced()
  end)

  -- A column named rowid (no field writes it) hides the rowid the check
  -- of a key by rowid range would read.
  it("checks the keys of a table with a column named rowid", function()
    if helper.is_pg then return end
    db:execute([[CREATE TABLE logs (id INTEGER PRIMARY KEY, v INTEGER, rowid INTEGER,
      u INTEGER DEFAULT 9 REFERENCES users(id))]])
    local Log = db:model("Log", { v = quay.integer(), table = "logs" })
    local rows = {}
    for i = 1, 100 do rows[i] = { v = i } end
    for _, observed in ipairs({ false, true }) do
      if observed then db:on_query(function() end) end
      helper.raises("integrity", Log.bulk_create, Log, rows)
      db:on_query(nil)
    end
    assert.equal(0, db:rows("SELECT count(*) AS n FROM logs")[1].n)
    User:create { name = "a" }
    db:execute("UPDATE users SET id = 9")
    assert.equal(100, #Log:bulk_create(rows))
    enforced()
  end)

  it("takes relation records as well as keys", function()
    local u = User:create { name = "a" }
    local v = User:create { name = "b" }
    local rows = {}
    for i = 1, 100 do rows[i] = { title = "r" .. i, views = i, author = i % 2 == 0 and u or v } end
    local recs = Post:bulk_create(rows)
    assert.equal(50, u.posts:count())
    assert.equal(v.id, recs[1].author_id)
    assert.equal(u.id, recs[100].author.id)
  end)

  it("runs no finalizer while the database's own key checks are off", function()
    if helper.is_pg then return end
    local u = User:create { name = "a" }
    -- Finalizers that each leave one more object to finalize, so that some
    -- are always due: each reads whether SQLite checks keys as it runs.
    local seen, active = {}, true
    local mt = {}
    mt.__gc = function()
      local ok, r = pcall(db.rows, db, "PRAGMA foreign_keys")
      if ok then seen[#seen + 1] = r[1].foreign_keys end
      if active then setmetatable({}, mt) end
    end
    collectgarbage("incremental", 20, 400)         -- collect very often
    for _ = 1, 20 do setmetatable({}, mt) end
    local ok, err = pcall(function()
      for round = 1, 3 do Post:bulk_create(posts(500, u.id, round * 10000)) end
    end)
    active = false
    collectgarbage("incremental", 200, 100)        -- Lua's defaults
    collectgarbage()
    collectgarbage()
    assert(ok, err)
    assert.equal(1500, Post:count())
    assert.is_true(#seen > 0)
    local off = 0
    for _, v in ipairs(seen) do if v ~= 1 then off = off + 1 end end
    assert.equal(0, off, "finalizers ran with the checks off")
    enforced()
  end)

  it("inside a transaction, writes in it and leaves the rest to it", function()
    local u = User:create { name = "a" }
    local err = helper.raises("integrity", db.transaction, db, function()
      User:create { name = "b" }
      local rows = posts(100, u.id)
      rows[80].author_id = 77777
      Post:bulk_create(rows)
    end)
    helper.mentions(err, "Post.author")
    assert.equal(1, User:count())
    assert.equal(0, Post:count())
    db:transaction(function()
      Post:bulk_create(posts(100, u.id))
    end)
    assert.equal(100, Post:count())
    enforced()
  end)

  it("with an on_query observer, shows it every row's statement", function()
    local u = User:create { name = "a" }
    local seen = 0
    db:on_query(function(sql) if sql:match("^INSERT") then seen = seen + 1 end end)
    Post:bulk_create(posts(100, u.id))
    db:on_query(nil)
    assert.equal(helper.is_pg and 1 or 100, seen)
    assert.equal(100, Post:count())
  end)

  it("ends its transaction when a row is not a table", function()
    local u = User:create { name = "a" }
    local rows = posts(100, u.id)
    rows[60] = "nope"
    helper.raises("validation", Post.bulk_create, Post, rows)
    assert.equal(0, Post:count())
    enforced()
    db:transaction(function() User:create { name = "in" } end)
    assert.equal(2, User:count())
  end)
end)
