-- docs/reference.md "Query sets" and "Conditions"
local helper = require("spec.helper")
local quay = helper.quay

local function titles(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.title end
  return out
end

describe("Query sets", function()
  local db, M, u1, u2
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    u1 = M.User:create { name = "Ann", email = "ann@a.io" }
    u2 = M.User:create { name = "Bob", email = "bob@b.io" }
    local data = {
      { "alpha", 5, u1 }, { "beta", 10, u1 }, { "Gamma", 20, u2 },
      { "delta", 30, u2 }, { "epsilon%_", 40, u2 },
    }
    for _, d in ipairs(data) do
      M.Post:create { title = d[1], views = d[2], author = d[3] }
    end
  end)
  after_each(function() db:close() end)

  it("is immutable: chaining returns new sets, nothing runs until a terminal", function()
    local n = helper.queries(db, function()
      local q = M.Post:query()
      local q2 = q:filter { views__gt = 10 }
      local q3 = q2:order_by("-views"):limit(2)
      assert.are_not.equal(q, q2)
      assert.equal(5, q:count())
      assert.equal(3, q2:count())
      assert.same({ "epsilon%_", "delta" }, titles(q3:all()))
    end)
    assert.equal(3, n)
  end)

  it("supports every lookup", function()
    local P = M.Post
    assert.equal(1, P:filter { title = "alpha" }:count())
    assert.equal(1, P:filter { title__eq = "alpha" }:count())
    assert.equal(4, P:filter { title__ne = "alpha" }:count())
    assert.equal(1, P:filter { views__lt = 10 }:count())
    assert.equal(2, P:filter { views__lte = 10 }:count())
    assert.equal(3, P:filter { views__gt = 10 }:count())
    assert.equal(4, P:filter { views__gte = 10 }:count())
    assert.equal(2, P:filter { views__in = { 5, 30, 99 } }:count())
    assert.equal(3, P:filter { views__not_in = { 5, 30 } }:count())
    assert.equal(0, P:filter { views__in = {} }:count())
    assert.equal(5, P:filter { views__not_in = {} }:count())
    assert.equal(1, P:filter { title__contains = "amm" }:count())
    assert.equal(0, P:filter { title__contains = "GAMM" }:count())
    assert.equal(1, P:filter { title__icontains = "GAMM" }:count())
    assert.equal(1, P:filter { title__startswith = "Gam" }:count())
    assert.equal(0, P:filter { title__startswith = "gam" }:count())
    assert.equal(2, P:filter { title__endswith = "ta" }:count())
    assert.equal(1, P:filter { title__contains = "%_" }:count())
    assert.equal(0, P:filter { title__contains = "_x" }:count())
    assert.equal(1, P:filter { title__endswith = "%_" }:count())
    assert.equal(2, P:filter { views__between = { 10, 20 } }:count())
    assert.equal(0, P:filter { title__isnull = true }:count())
    assert.equal(5, P:filter { title__isnull = false }:count())
    assert.equal(2, P:filter { author = u1 }:count())
    assert.equal(3, P:filter { author_id = u2.id }:count())
    assert.equal(5, P:filter { author__in = { u1, u2 } }:count())
  end)

  it("rejects unknown names and lookups that do not fit", function()
    helper.raises("unknown_field", function() M.Post:filter { nope = 1 } end)
    local e = helper.raises("unknown_field", function()
      M.Post:filter { author__nickname = "x" } end)
    helper.mentions(e, "User", "nickname")
    helper.raises("bad_lookup", function() M.Post:filter { title__foo = "x" } end)
    helper.raises("bad_lookup", function() M.Post:filter { views__contains = "1" } end)
    helper.raises("bad_lookup", function() M.Post:filter { views__between = { 1 } } end)
    helper.raises("bad_lookup", function() M.Post:filter { views__in = 5 } end)
    helper.raises("unknown_field", function() M.Post:order_by("nope") end)
    helper.raises("unknown_field", function() M.Post:pluck("nope") end)
    helper.raises("unknown_field", function() M.Post:update { nope = 1 } end)
    helper.raises("validation", function() M.Post:filter { views = "ten" } end)
  end)

  it("ORs with quay.any, alone or inside a table", function()
    local P = M.Post
    assert.equal(2, P:filter(quay.any { { views = 5 }, { views = 40 } }):count())
    assert.equal(1, P:filter { author = u2, quay.any { { views = 5 }, { views = 40 } } }:count())
    assert.equal(3, P:exclude(quay.any { { views = 5 }, { views = 40 } }):count())
  end)

  it("matches NULL with quay.null and keeps NULL rows in exclude", function()
    local T = db:model("N", { s = quay.string { null = true } })
    db:create_tables()
    T:create { s = "x" }
    T:create { s = quay.null }
    T:create {}
    assert.equal(2, T:filter { s = quay.null }:count())
    assert.equal(1, T:filter { s__ne = quay.null }:count())
    assert.equal(2, T:exclude { s = "x" }:count())
    assert.equal(2, T:filter { s__ne = "x" }:count())
  end)

  it("orders, limits and offsets", function()
    local P = M.Post
    assert.same({ "epsilon%_", "delta", "Gamma", "beta", "alpha" },
      titles(P:order_by("-views"):all()))
    assert.same({ "alpha", "beta", "Gamma", "delta", "epsilon%_" },
      titles(P:order_by("author__name", "views"):all()))
    assert.same({ "Gamma", "delta", "epsilon%_", "alpha", "beta" },
      titles(P:order_by("-author__name", "views"):all()))
    assert.same({ "beta", "Gamma" }, titles(P:order_by("views"):offset(1):limit(2):all()))
    assert.same({ "delta", "epsilon%_" }, titles(P:order_by("views"):offset(3):all()))
    assert.equal(2, P:order_by("views"):offset(3):count())
    helper.raises("bad_lookup", function() M.User:order_by("posts__title") end)
  end)

  it("has first, get, count, exists, pluck", function()
    local P = M.Post
    assert.equal("alpha", P:order_by("views"):first().title)
    assert.is_nil(P:filter { views = 999 }:first())
    assert.equal("beta", P:get { views = 10 }.title)
    assert.equal("beta", P:filter { views = 10 }:get().title)
    assert.is_true(P:filter { views = 10 }:exists())
    assert.is_false(P:filter { views = 11 }:exists())
    assert.same({ 5, 10, 20, 30, 40 }, { table.unpack(P:order_by("views"):pluck("views")) })
    local names = P:order_by("views"):pluck("author__name")
    assert.equal("Ann", names[1])
    assert.equal("Bob", names[5])
  end)

  it("updates and deletes in bulk", function()
    assert.equal(3, M.Post:filter { author = u2 }:update { views = 0 })
    assert.equal(3, M.Post:filter { views = 0 }:count())
    local counts = M.Post:filter { views = 0 }:delete()
    assert.same({ Post = 3 }, counts)
    assert.equal(2, M.Post:count())
    helper.raises("validation", function() M.Post:update { views = "x" } end)
  end)

  it("shows its SQL with bound parameters", function()
    local sql, params = M.Post:filter { title = "x'; DROP TABLE posts; --" }:sql()
    assert.is_string(sql)
    assert.falsy(sql:find("DROP TABLE", 1, true))
    assert.same({ "x'; DROP TABLE posts; --" }, params)
  end)

  it("has model shortcuts", function()
    assert.equal(5, M.Post:count())
    assert.equal(5, #M.Post:all())
    assert.equal(2, M.Post:filter { author = u1 }:count())
    assert.equal(3, M.Post:exclude { author = u1 }:count())
    assert.equal(5, M.Post:query():count())
    assert.is_true(M.Post:exists())
    assert.equal("alpha", M.Post:order_by("views"):first().title)
  end)

  it("streams rows with iter() in constant memory", function()
    local T = db:model("Big", { n = quay.integer(), s = quay.string() })
    db:create_tables()
    local rows = {}
    for i = 1, 200000 do rows[i] = { n = i, s = "row number " .. i } end
    T:bulk_create(rows)
    rows = nil
    collectgarbage()
    collectgarbage()
    local base = collectgarbage("count")
    local peak, sum, n = base, 0, 0
    for rec in T:order_by("n"):iter() do
      sum = sum + rec.n
      n = n + 1
      if n % 10000 == 0 then
        collectgarbage("step", 0)
        local c = collectgarbage("count")
        if c > peak then peak = c end
      end
    end
    assert.equal(200000, n)
    assert.equal(200000 * 200001 // 2, sum)
    -- a fully materialized result would need > 40 MB here
    assert.is_true(peak - base < 8 * 1024, ("grew by %.0f KB"):format(peak - base))
  end)

  it("closes the stream when a loop breaks", function()
    local n = 0
    for rec in M.Post:iter() do
      n = n + 1
      if rec then break end
    end
    assert.equal(1, n)
    assert.equal(5, M.Post:count())
  end)
end)

-- NULLs sort lowest on both backends (SQLite's order: first ascending, last
-- descending); PostgreSQL gets NULLS FIRST / LAST written only for a term
-- that can be NULL, so that an index can serve the order of the others.
describe("NULL order", function()
  local db, P, ann, bob
  before_each(function()
    db = helper.open()
    local U = db:model("User", { name = quay.string(), nick = quay.string { null = true } })
    P = db:model("Post", {
      title = quay.string(),
      views = quay.integer(),
      score = quay.integer { null = true },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                         related_name = "edits" }),
    })
    db:create_tables()
    ann = U:create { name = "ann", nick = "a" }
    bob = U:create { name = "bob" }
    P:create { title = "p1", views = 3, score = 2, author = bob, editor = ann }
    P:create { title = "p2", views = 1, author = ann }
    P:create { title = "p3", views = 2, score = 1, author = ann, editor = bob }
  end)
  after_each(function() db:close() end)

  local function list(t)
    local out = {}
    for i = 1, #t do out[i] = t[i] end
    return out
  end

  it("puts NULLs first ascending and last descending", function()
    assert.same({ "p2", "p3", "p1" }, list(P:order_by("score"):pluck("title")))
    assert.same({ "p1", "p3", "p2" }, list(P:order_by("-score"):pluck("title")))
    -- a missing related row reads as NULL
    assert.same({ "p2", "p1", "p3" }, list(P:order_by("editor__name"):pluck("title")))
    assert.same({ "p3", "p1", "p2" }, list(P:order_by("-editor__name"):pluck("title")))
    -- p2 has no editor: the sum over its editor's posts is NULL
    local t = P:annotate { s = quay.sum("editor__posts__score") }:order_by("s"):pluck("title")
    assert.same({ "p2", "p1", "p3" }, list(t))
    t = P:annotate { s = quay.sum("editor__posts__score") }:order_by("-s"):pluck("title")
    assert.same({ "p3", "p1", "p2" }, list(t))
    local g = P:values("editor"):annotate { n = quay.count() }:all()
    assert.same({ nil, ann.id, bob.id }, { g[1].editor, g[2].editor, g[3].editor })
  end)

  it("writes no NULL placement for a term that cannot be NULL", function()
    local function nulls(qs) return qs:sql():find("NULLS", 1, true) ~= nil end
    local function placed(qs) return nulls(qs) == helper.is_pg end
    -- NOT NULL columns of the row, and through a NOT NULL belongs_to
    assert.is_false(nulls(P:order_by("views", "-title")))
    assert.is_false(nulls(P:order_by("author__name")))
    assert.is_false(nulls(P:order_by("author")))
    assert.is_false(nulls(P:annotate { n = quay.count("author__posts") }:order_by("-n")))
    assert.is_false(nulls(P:values("author"):annotate { n = quay.count() }:order_by("-n")))
    assert.is_false(nulls(P:order_by(quay.F("views") * 2)))
    -- nullable: the column, a LEFT JOINed nullable relation, a nullable
    -- column behind a NOT NULL one, a sum, a group of a nullable column
    assert.is_true(placed(P:order_by("score")))
    assert.is_true(placed(P:order_by("-score")))
    assert.is_true(placed(P:order_by("editor__name")))
    assert.is_true(placed(P:order_by("author__nick")))
    assert.is_true(placed(P:annotate { s = quay.sum("author__posts__views") }:order_by("s")))
    assert.is_true(placed(P:values("editor"):annotate { n = quay.count() }))
    assert.is_true(placed(P:order_by(quay.F("views") / 2)))
  end)
end)
