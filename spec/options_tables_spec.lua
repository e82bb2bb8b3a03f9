-- spec/options_tables_spec.lua: options and keyword tables are read raw
-- (reference.md, "How to read it"): Quay checks their keys with a raw walk
-- and reads them the same way, so no metamethod runs.  A table whose
-- __index raises behaves as its raw contents, and a key reachable only
-- through __index is no option at all (the call goes on without it).
local helper = require("spec.helper")
local quay = helper.quay

-- A proxy whose __index raises a plain string (no Quay error) if called.
local function raising(raw)
  return setmetatable(raw or {}, {
    __index = function(_, k) error("options __index called for " .. tostring(k)) end,
  })
end

-- A table whose keys in `via` are reachable only through __index.
local function hidden(raw, via)
  return setmetatable(raw or {}, { __index = via })
end

-- fn must succeed (a raising __index surfaced as its own string error).
local function ok(fn, ...)
  local res = table.pack(pcall(fn, ...))
  assert(res[1], "expected success, got " .. tostring(res[2]))
  return table.unpack(res, 2, res.n)
end

describe("options tables with metatables", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    M.Account = db:model("Account", {
      email = quay.string { unique = true },
      name = quay.string(),
      age = quay.integer { default = 0 },
    })
    db:create_tables()
  end)
  after_each(function() if db then db:close() end end)

  it("quay.open: an __index that raises is never called, a key only behind it is no option", function()
    db:close()
    local d = ok(helper.open, raising {})
    assert.is_true(d:is_open())
    d:close()
    db = ok(helper.open, hidden({}, { strict = true }))
    local B = helper.blog(db)
    local u = B.User:create { name = "u", email = "u@x" }
    B.Post:create { title = "p", author = u }
    local p = B.Post:get { title = "p" }
    assert.equal("u", p.author.name)                 -- a lazy load: not strict
  end)

  it("db:transaction", function()
    assert.equal(7, ok(db.transaction, db, function() return 7 end, raising {}))
    ok(db.transaction, db, function() M.Account:create { email = "a@x", name = "a" } end,
      hidden({}, { readonly = true }))                -- not read only
    assert.equal(1, M.Account:filter { email = "a@x" }:count())
  end)

  it("Model:upsert", function()
    M.Account:create { email = "a@x", name = "a", age = 1 }
    ok(M.Account.upsert, M.Account, { { email = "a@x", name = "b", age = 2 } },
      raising { conflict = { "email" } })
    local a = M.Account:get { email = "a@x" }
    assert.same({ "b", 2 }, { a.name, a.age })
    ok(M.Account.upsert, M.Account, { { email = "a@x", name = "c", age = 3 } },
      hidden({ conflict = { "email" } }, { update = { "name" } }))
    a = M.Account:get { email = "a@x" }
    assert.same({ "c", 3 }, { a.name, a.age })      -- every field: update unseen
    local e = helper.raises("misuse", M.Account.upsert, M.Account,
      { { email = "a@x", name = "d" } }, hidden({}, { conflict = { "email" } }))
    helper.mentions(e, "conflict")
  end)

  it("rec:save", function()
    local a = M.Account:create { email = "a@x", name = "a" }
    a.name, a.age = "b", 5
    helper.mentions(helper.raises("misuse", a.save, a, raising {}), "fields")
    helper.mentions(helper.raises("misuse", a.save, a, hidden({}, { fields = { "name" } })),
      "fields")
    assert.same({ "a", 0 }, { M.Account:get { email = "a@x" }.name, M.Account:get { email = "a@x" }.age })
    ok(a.save, a, raising { fields = { "name" } })
    assert.same({ "b", 0 }, { M.Account:get { email = "a@x" }.name, M.Account:get { email = "a@x" }.age })
  end)

  it("rec:delete and qs:delete", function()
    local a = M.Account:create { email = "a@x", name = "a" }
    ok(a.delete, a, raising {})
    a = M.Account:create { email = "b@x", name = "b" }
    ok(a.delete, a, hidden({}, { dry_run = true }))   -- a real delete
    M.Account:create { email = "c@x", name = "c" }
    ok(function() return M.Account:filter { email = "c@x" }:delete(raising {}) end)
    M.Account:create { email = "d@x", name = "d" }
    ok(function() return M.Account:filter { email = "d@x" }:delete(hidden({}, { dry_run = true })) end)
    assert.equal(0, M.Account:count())
  end)

  it("qs:select_for_update", function()
    M.Account:create { email = "a@x", name = "a" }
    db:transaction(function()
      assert.equal(1, #ok(function() return M.Account:select_for_update(raising {}):all() end))
      -- nowait and skip_locked exclude each other: skip_locked is unseen
      assert.equal(1, #ok(function()
        return M.Account:select_for_update(hidden({ nowait = true }, { skip_locked = true })):all()
      end))
    end)
  end)

  it("quay.prefetch: its options are checked and read raw", function()
    local u = M.User:create { name = "u", email = "u@x" }
    M.Post:create { title = "p", author = u }
    local users = ok(function()
      return M.User:prefetch_related(quay.prefetch("posts", M.Post:order_by("id"), raising {})):all()
    end)
    assert.equal(1, #users[1].posts)
    users = ok(function()
      return M.User:prefetch_related(quay.prefetch("posts", M.Post:filter { title = "zz" },
        hidden({}, { to = "mine" }))):all()
    end)
    assert.is_nil(rawget(users[1], "mine"))
    assert.equal(0, #users[1].posts)                   -- the set went to posts
    local e = helper.raises("misuse", quay.prefetch, "posts", M.Post:order_by("id"), { to = "x", bogus = 1 })
    helper.mentions(e, "bogus")
    helper.raises("misuse", quay.prefetch, "posts", M.Post:order_by("id"), "x")
  end)

  it("db:migrate", function()
    ok(db.migrate, db, raising {})
    db:model("Note", { body = quay.text() })
    ok(db.migrate, db, hidden({}, { dry_run = true })) -- applied
    assert.equal(0, #db:schema_diff())
  end)

  it("db:apply_migration and its steps", function()
    ok(db.apply_migration, db, raising { name = "m1", checksum = "c1", steps = {} })
    local called = false
    ok(db.apply_migration, db, hidden({ name = "m2", checksum = "c2", steps = {} },
      { data = function() called = true end }))
    assert.is_false(called)
    ok(db.apply_migration, db, { name = "m3", checksum = "c3", steps = {
      raising { op = "create_index", table = "accounts",
        sql = { "CREATE INDEX accounts_age_ix ON accounts (age)" } },
    } })
  end)

  it("field and relation options", function()
    local A = ok(db.model, db, "Opt", {
      a = quay.string(raising { max = 10 }),
      b = quay.integer(hidden({}, { null = true })),  -- not nullable
      owner = quay.belongs_to("User", raising { related_name = "opts" }),
      other = quay.belongs_to("User", hidden({}, { null = true, related_name = "others" })),
    })
    db:create_tables()
    local u = M.User:create { name = "u", email = "u@x" }
    local e = helper.raises("validation", A.create, A, { a = "x", owner = u, other = u })
    helper.mentions(e, "b")
    e = helper.raises("validation", A.create, A, { a = "x", b = 1, owner = u })
    helper.mentions(e, "other")
    ok(A.create, A, { a = "x", b = 1, owner = u, other = u })
    assert.equal(0, #db:schema_diff())
  end)

  it("model options: the spec, and hooks", function()
    local seen = 0
    local H = ok(db.model, db, "Hooked", raising {
      n = quay.integer(),
      hooks = hidden({}, { before_save = function() seen = seen + 1 end }),
    })
    local R = ok(db.model, db, "Raising", {
      n = quay.integer(),
      hooks = raising { after_save = function() seen = seen + 10 end },
    })
    db:create_tables()
    H:create { n = 1 }
    assert.equal(0, seen)                              -- the hidden hook is none
    R:create { n = 1 }
    assert.equal(10, seen)
  end)

  it("aggregate options", function()
    local r = ok(function()
      return M.Post:aggregate { s = quay.sum("views", raising {}),
        d = quay.sum("views", hidden({}, { default = 0 })) }
    end)
    assert.is_nil(r.s)
    assert.is_nil(r.d)                                 -- default unseen
  end)
end)
