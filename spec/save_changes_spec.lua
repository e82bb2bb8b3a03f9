-- docs/reference.md "Writes done right": saving changes only (issue 13).
-- save() writes the fields changed since the record was loaded or last
-- saved, nothing when none changed; save { fields = ... }; rec:changed();
-- auto_now on every save that writes; a failed save keeps its changes;
-- two connections saving different fields of one row both keep theirs.
local helper = require("spec.helper")
local procs = require("spec.procs")
local quay = helper.quay

-- The SQL of the statements fn sends.
local statements = helper.statements

describe("Saving changes only", function()
  local db, User, Post
  before_each(function()
    db = helper.open()
    User = db:model("User", {
      email = quay.string { unique = true },
      name = quay.string(),
      visits = quay.integer { default = 0 },
      score = quay.number { null = true },
      active = quay.boolean { default = true },
    })
    Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                         related_name = "edited" }),
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("sends nothing when nothing changed, then only the changed fields", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    assert.same({}, ann:changed())
    assert.same({}, statements(db, function() ann:save() end))
    ann.name = "Anne"
    assert.same({ "name" }, ann:changed())
    local sent = statements(db, function() ann:save() end)
    assert.equal(1, #sent)
    assert.truthy(sent[1]:find('"name"', 1, true))
    assert.falsy(sent[1]:find('"visits"', 1, true))
    assert.falsy(sent[1]:find('"email"', 1, true))
    assert.same({}, ann:changed())
    assert.same({}, statements(db, function() ann:save() end))
    assert.equal("Anne", User:find(ann.id).name)
  end)

  it("quay.null set on a NULL column writes nothing and reads nil after save", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    assert.is_nil(ann.score)
    ann.score = quay.null
    assert.same({}, ann:changed())
    assert.same({}, statements(db, function() ann:save() end))
    assert.is_nil(ann.score)                   -- quay.null is never read back
    ann.score = quay.null
    ann.name = "Anne"
    local sent = statements(db, function() ann:save() end)
    assert.equal(1, #sent)
    assert.falsy(sent[1]:find('"score"', 1, true))
    assert.is_nil(ann.score)
    assert.equal("Anne", ann.name)
  end)

  it("a number set back in another form writes nothing and reads as stored", function()
    local ann = User:create { email = "ann@x", name = "Ann", visits = 3, score = 2.0 }
    ann.visits = 3.0
    ann.score = 2
    assert.same({}, ann:changed())
    assert.same({}, statements(db, function() ann:save() end))
    assert.equal("integer", math.type(ann.visits))
    assert.equal("float", math.type(ann.score))
  end)

  it("tracks loaded records, values set back, numbers and relations", function()
    local ann = User:create { email = "ann@x", name = "Ann", score = 1.5 }
    local bob = User:create { email = "bob@x", name = "Bob" }
    local p = Post:create { title = "t", author = ann }
    local loaded = Post:select_related("author"):first()
    assert.same({}, loaded:changed())
    assert.same({}, loaded.author:changed())
    loaded.title = "t"                          -- the same value: no change
    loaded.views = 0.0                          -- 0 == 0.0
    assert.same({}, loaded:changed())
    loaded.editor = bob
    assert.same({ "editor_id" }, loaded:changed())
    loaded.editor = nil
    assert.same({}, loaded:changed())
    loaded.author_id = bob.id
    assert.same({ "author_id" }, loaded:changed())
    loaded:save()
    assert.equal(bob.id, Post:find(p.id).author_id)
    local u = User:find(ann.id)
    u.score = quay.null
    u.active = false
    assert.same({ "score", "active" }, u:changed())
    u:save()
    local back = User:find(ann.id)
    assert.is_nil(back.score)
    assert.is_false(back.active)
    assert.same({}, back:changed())
    -- a new record's changes are the fields it holds
    assert.same({ "email", "name" }, User:new { name = "n", email = "e" }:changed())
  end)

  it("save { fields = ... } writes exactly those fields", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    ann.name, ann.visits = "Other", 3
    local sent = statements(db, function() ann:save { fields = { "visits" } } end)
    assert.equal(1, #sent)
    assert.falsy(sent[1]:find('"name"', 1, true))
    local back = User:find(ann.id)
    assert.equal("Ann", back.name)
    assert.equal(3, back.visits)
    assert.same({ "name" }, ann:changed())      -- still to write
    -- a relation name stands for its key column; an unchanged field is
    -- written all the same
    local p = Post:create { title = "t", author = ann }
    sent = statements(db, function() p:save { fields = { "author", "title" } } end)
    assert.equal(1, #sent)
    assert.truthy(sent[1]:find('"author_id"', 1, true))
  end)

  it("refuses bad save options", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    helper.raises("misuse", ann.save, ann, { field = { "name" } })
    helper.raises("misuse", ann.save, ann, { fields = "name" })
    helper.raises("misuse", ann.save, ann, { fields = {} })
    helper.raises("misuse", ann.save, ann, { fields = { 1 } })
    helper.raises("misuse", ann.save, ann, "fields")
    helper.raises("misuse", ann.save, ann, nil, "extra")
    local err = helper.raises("unknown_field", ann.save, ann, { fields = { "nope" } })
    helper.mentions(err, "User", "nope")
    helper.raises("misuse", ann.save, ann, { fields = { "posts" } })
    local fresh = User:new { email = "n@x", name = "N" }
    helper.raises("misuse", fresh.save, fresh, { fields = { "name" } })
    assert.equal(1, User:count())
    helper.raises("misuse", ann.changed, ann, "x")
  end)

  it("a failed save keeps its changes, so a retry writes them", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    local bob = User:create { email = "bob@x", name = "Bob" }
    bob.email, bob.name = "ann@x", "Bobby"        -- email is taken
    helper.raises("integrity", bob.save, bob)
    assert.same({ "email", "name" }, bob:changed())
    bob.email = "bob2@x"
    bob:save()
    local back = User:find(bob.id)
    assert.equal("bob2@x", back.email)
    assert.equal("Bobby", back.name)
    assert.same({}, bob:changed())
    -- inside a transaction that rolls back: the record still holds the
    -- change, but only the rows are gone, so it is not "saved"
    pcall(db.transaction, db, function()
      ann.name = "Ann2"
      ann:save()
      error("roll back")
    end)
    assert.equal("Ann", User:find(ann.id).name)
  end)

  it("refresh makes the record clean", function()
    local ann = User:create { email = "ann@x", name = "Ann" }
    User:filter { id = ann.id }:update { name = "Zed" }
    ann.visits = 9
    ann:refresh()
    assert.equal("Zed", ann.name)
    assert.same({}, ann:changed())
    assert.same({}, statements(db, function() ann:save() end))
  end)

  it("bulk_create records are clean; changing one writes only it", function()
    local rows = User:bulk_create { { email = "a@x", name = "A" }, { email = "b@x", name = "B" } }
    assert.same({}, rows[1]:changed())
    rows[2].visits = 5
    local sent = statements(db, function() rows[1]:save(); rows[2]:save() end)
    assert.equal(1, #sent)
    assert.equal(5, User:find(rows[2].id).visits)
  end)

  it("Model:raw records are clean as loaded; a save writes only what changed", function()
    local ann = User:create { email = "ann@x", name = "Ann", score = 1.5 }
    local full = User:raw("SELECT * FROM users WHERE id = ?", { ann.id })[1]
    assert.same({}, full:changed())
    assert.same({}, statements(db, function() full:save() end))
    -- A SELECT of some columns: the others are not "changed" (nor written).
    local part = User:raw("SELECT id, name FROM users WHERE id = ?", { ann.id })[1]
    assert.same({}, part:changed())
    part.visits = 4
    assert.same({ "visits" }, part:changed())
    local sent = statements(db, function() part:save() end)
    assert.equal(1, #sent)
    assert.is_nil(sent[1]:find('"email"', 1, true))
    local got = User:find(ann.id)
    assert.same({ "ann@x", "Ann", 4, 1.5, true },
                { got.email, got.name, got.visits, got.score, got.active })
  end)
end)

describe("auto_now on every save that writes", function()
  local db, Stamp
  local OLD = "2000-01-01 00:00:00"
  before_each(function()
    db = helper.open()
    Stamp = db:model("Stamp", {
      created = quay.datetime { auto_now_add = true },
      updated = quay.datetime { auto_now = true },
      n = quay.integer(),
      m = quay.integer { default = 0 },
    })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("stamps auto_now when a save writes, and only then", function()
    local t = Stamp:create { n = 1 }
    db:execute("UPDATE stamps SET created = ?, updated = ?", { OLD, OLD })
    t = Stamp:find(t.id)
    assert.same({}, statements(db, function() t:save() end))
    assert.equal(OLD, Stamp:find(t.id).updated)
    t.n = 2
    local sent = statements(db, function() t:save() end)
    assert.equal(1, #sent)
    assert.truthy(sent[1]:find('"updated"', 1, true))
    assert.falsy(sent[1]:find('"created"', 1, true))
    local back = Stamp:find(t.id)
    assert.is_true(back.updated > OLD)
    assert.equal(OLD, back.created)
    assert.equal(back.updated, t.updated)
    assert.same({}, t:changed())
  end)
end)

describe("Concurrent saves of different fields", function()
  local url, a, b, Ta, Tb
  before_each(function()
    local db0 = helper.open()
    url = procs.shared()
    db0:close()
    a = quay.open(url, { busy_timeout = 5000 })
    b = quay.open(url, { busy_timeout = 5000 })
    local spec = function() return {
      title = quay.string(), views = quay.integer { default = 0 },
      body = quay.text { null = true },
    } end
    Ta = a:model("Doc", spec())
    Tb = b:model("Doc", spec())
    a:create_tables()
  end)
  after_each(function()
    a:close(); b:close()
    procs.cleanup()
  end)

  it("both survive: each save writes only its own field", function()
    local d = Ta:create { title = "draft", views = 1 }
    local mine = Ta:find(d.id)                  -- connection a's copy
    local theirs = Tb:find(d.id)                -- connection b's copy
    mine.title = "final"
    theirs.views = 42
    theirs.body = "text"
    mine:save()
    theirs:save()
    for _, T in ipairs({ Ta, Tb }) do
      local back = T:find(d.id)
      assert.equal("final", back.title)
      assert.equal(42, back.views)
      assert.equal("text", back.body)
    end
    -- and inside transactions, one after the other
    a:transaction(function()
      local x = Ta:find(d.id)
      x.views = x.views + 1
      x:save()
    end)
    b:transaction(function()
      theirs.title = "again"
      theirs:save()
    end)
    local back = Ta:find(d.id)
    assert.equal(43, back.views)
    assert.equal("again", back.title)
  end)
end)

-- A quay.json field holds a fresh Lua table on every load, and PostgreSQL
-- prints jsonb its own way: the document, not the table, is compared.
describe("Saving changes of JSON fields", function()
  local db, Doc
  before_each(function()
    db = helper.open()
    Doc = db:model("Doc", { data = quay.json { null = true }, n = quay.integer { default = 0 } })
    db:create_tables()
  end)
  after_each(function() db:close() end)

  it("is changed only when the document changes", function()
    local docs = { { a = { b = 1, c = { 1, 2.5, "x" } }, z = quay.null, f = 0.1 },
                   "text", 42, 1.5, true, { 1, 2 } }
    for _, v in ipairs(docs) do
      local d = Doc:create { data = v }
      assert.same({}, d:changed())
      local r = Doc:find(d.id)
      assert.same({}, r:changed())
      assert.equal(0, #statements(db, function() r:save() end))
      r.n = 1
      assert.same({ "n" }, r:changed())
      r:save()
      assert.same({}, r:changed())
    end
    local r = Doc:filter { data__has_key = "a" }:first()
    r.data.a.b = 2                      -- changed in place
    assert.same({ "data" }, r:changed())
    r:save()
    assert.equal(2, Doc:find(r.id).data.a.b)
    r = Doc:find(r.id)
    r.data = { f = 0.1, z = quay.null, a = { c = { 1, 2.5, "x" }, b = 2 } }  -- an equal document
    assert.same({}, r:changed())
    r.data = "other"
    assert.same({ "data" }, r:changed())
  end)
end)
