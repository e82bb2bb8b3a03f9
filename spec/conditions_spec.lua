-- docs/reference.md "Paths across relations": conditions across relations,
-- same-row groups, where_has.
local helper = require("spec.helper")
local quay = helper.quay

describe("Conditions across relations", function()
  local db, M, ann, bob, lua, c
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    ann = M.User:create { name = "Ann", email = "ann@a.io" }
    bob = M.User:create { name = "Bob", email = "bob@b.io" }
    lua, c = M.Tag:create { name = "lua" }, M.Tag:create { name = "c" }
    local p1 = M.Post:create { title = "p1", views = 1, author = ann }
    local p2 = M.Post:create { title = "p2", views = 2, author = ann }
    local p3 = M.Post:create { title = "p3", views = 3, author = bob }
    p1.tags:add(lua, c)
    p2.tags:add(c)
    p3.tags:add(lua)
    M.Comment:create { post = p1, body = "great" }
    M.Comment:create { post = p1, body = "meh" }
    M.Comment:create { post = p3, body = "great" }
  end)
  after_each(function() db:close() end)

  it("crosses to-one paths", function()
    assert.equal(2, M.Post:filter { author__email__endswith = "@a.io" }:count())
    assert.equal(1, M.Comment:filter { post__author__name = "Bob" }:count())
  end)

  it("crosses to-many paths without duplicating owners", function()
    local users = M.User:filter { posts__tags__name__in = { "lua", "c" } }:all()
    assert.equal(2, #users)
    assert.equal(2, M.User:filter { posts__comments__body = "great" }:count())
    assert.equal(1, M.User:filter { posts__tags__name = "c" }:count())
    assert.equal(2, M.Tag:filter { posts__author = ann }:count())
  end)

  it("holds all conditions of one table for the same related row", function()
    -- Ann has a post with views=1 and a post tagged only "c" (p2, views=2)
    assert.equal(1, M.User:filter { posts__views = 2, posts__tags__name = "c" }:count())
    assert.equal(0, M.User:filter { posts__views = 1, posts__title = "p2" }:count())
    -- separate filter calls may match different rows
    assert.equal(1, M.User:filter { posts__views = 1 }:filter { posts__title = "p2" }:count())
  end)

  it("excludes across to-many paths (Django's semantics)", function()
    assert.equal(1, M.User:exclude { posts__tags__name = "c" }:count())
    assert.equal("Bob", M.User:exclude { posts__tags__name = "c" }:first().name)
  end)

  it("compiles to-many conditions to IN semi-joins", function()
    local sql = M.User:filter { posts__tags__name = "lua" }:sql()
    assert.truthy(sql:find(" IN (SELECT", 1, true))
    assert.falsy(sql:find("EXISTS", 1, true))
  end)

  it("where_has and where_doesnt_have with a table, a function or nothing", function()
    assert.equal(2, M.User:where_has("posts"):count())
    assert.equal(1, M.User:where_has("posts", { views__gt = 2 }):count())
    assert.equal(1, M.User:where_has("posts", function(q)
      return q:filter { title = "p2" } end):count())
    assert.equal(2, M.Post:where_has("comments"):count())
    assert.equal(1, M.Post:where_doesnt_have("comments"):count())
    assert.equal(0, M.User:where_doesnt_have("posts"):count())
    local loner = M.User:create { name = "Cy", email = "cy@c.io" }
    assert.equal(loner, M.User:where_doesnt_have("posts"):first())
    assert.equal(1, M.User:where_has("posts__tags", { name = "c" }):count())
    helper.raises("unknown_relation", function() M.User:where_has("nope") end)
  end)

  it("isnull on relations tests existence", function()
    assert.equal(0, M.User:filter { posts__isnull = true }:count())
    M.User:create { name = "Cy", email = "cy@c.io" }
    assert.equal(1, M.User:filter { posts__isnull = true }:count())
    assert.equal(2, M.User:filter { posts__isnull = false }:count())
  end)

  it("orders across to-one paths", function()
    local comments = M.Comment:order_by("-post__author__name", "body"):all()
    assert.equal("p3", comments[1].post.title)
  end)

  it("writes the conditions of one table in the byte order of their names", function()
    -- the SQL text must not depend on the hash order of the table, which
    -- differs from process to process
    local conds = { views__gte = 1, title__startswith = "p", id__gt = 0,
                    author__name = "Ann" }
    local sql = M.Post:filter(conds):sql()
    local where = sql:match("WHERE (.*)")
    local at = {
      where:find('."name" =', 1, true),            -- author__name (joined)
      where:find('"t0"."id" >', 1, true),           -- id__gt
      where:find('"t0"."title"', 1, true),          -- title__startswith
      (where:find('"t0"."views" >=', 1, true)),     -- views__gte
    }
    assert.equal(4, #at)
    for i = 2, 4 do assert.is_true(at[i - 1] < at[i]) end
    assert.equal(2, M.Post:filter(conds):count())
    -- a name with a NUL byte is still rejected whole, not cut at the NUL
    helper.raises("unknown_field", function()
      return M.Post:filter { ["id\0x"] = 1, title = "p1" }:count()
    end)
    helper.raises("unknown_field", function()
      return M.Post:filter { title = "p1", ["views\0"] = 1 }:count()
    end)
  end)
end)

describe("Nested conditions", function()
  local db, M
  before_each(function()
    db = helper.open()
    M = helper.blog(db)
    local ann = M.User:create { name = "Ann", email = "ann@a.io" }
    M.User:create { name = "Bob", email = "bob@b.io" }
    M.Post:create { title = "p1", views = 1, author = ann }
  end)
  after_each(function() db:close() end)

  -- An alternation of `levels` groups: an AND of two names holding an OR
  -- holding an AND ..., the innermost leaf at depth `levels` (root = 1).
  local function alternating(levels, leaf)
    local c = leaf or { name = "Ann", email = "ann@a.io" }
    for d = levels - 1, 1, -1 do
      if d % 2 == 1 then
        c = { name = "Ann", email__contains = "@", c }
      else
        c = quay.any { { name = "nobody", email = "x" }, c }
      end
    end
    return c
  end

  it("flattens quay.any inside quay.any to any depth", function()
    for _, depth in ipairs { 59, 1000 } do
      local c = { name = "Ann" }
      for i = 1, depth do c = quay.any { { name = "nobody" .. i }, c } end
      assert.equal(1, M.User:filter(c):count())
      assert.equal(1, M.User:exclude(c):count())
      assert.equal(1, M.User:filter { posts__views = 1, c }:count())
    end
    -- one OR of 5001 alternatives: wider than QUAY_MAX_COND_WIDTH
    local c = { name = "Ann" }
    for i = 1, 5000 do c = quay.any { { name = "nobody" .. i }, c } end
    helper.mentions(helper.raises("misuse", M.User.filter, M.User, c), "1024")
    c = { name = "Ann" }
    for _ = 1, 100000 do c = quay.any { c } end
    assert.equal(1, M.User:filter(c):count())
  end)

  it("flattens tables of tables to any depth", function()
    for _, depth in ipairs { 59, 8000, 20000 } do
      local c = { name = "Ann" }
      for _ = 1, depth do c = { c } end
      assert.equal(1, M.User:filter(c):count())
      local d = { name = "Ann" }
      for _ = 1, 500 do d = { d, { email__endswith = ".io" } } end
      assert.equal(1, M.User:filter(d):count())
      local e = { name = "Ann" }
      for _ = 1, depth do e = quay.any { { e } } end
      assert.equal(1, M.User:filter(e):count())
    end
  end)

  it("keeps separate tables separate for to-many paths", function()
    -- p1 has views 1 and title p1: one table means the same post
    assert.equal(1, M.User:filter { posts__views = 1, posts__title = "p1" }:count())
    assert.equal(0, M.User:filter { posts__views = 1, posts__title = "p2" }:count())
    local ann = M.User:get { name = "Ann" }
    M.Post:create { title = "p2", views = 2, author = ann }
    assert.equal(0, M.User:filter { posts__views = 1, posts__title = "p2" }:count())
    -- two tables may match two different posts
    assert.equal(1, M.User:filter { { posts__views = 1 }, { posts__title = "p2" } }:count())
    assert.equal(1, M.User:filter { { { posts__views = 1 } }, { { posts__title = "p2" } } }:count())
  end)

  it("answers up to QUAY_MAX_COND_DEPTH (28) levels and refuses deeper ones with misuse", function()
    assert.equal(1, M.User:filter(alternating(28)):count())
    assert.equal(1, M.User:exclude(alternating(27)):count())
    assert.equal(1, #M.User:filter(alternating(28)):all())
    local err = helper.raises("misuse", function()
      return M.User:filter(alternating(29)):count()
    end)
    helper.mentions(err, "28")
    err = helper.raises("misuse", function()
      return M.User:exclude(alternating(28)):count()
    end)
    helper.mentions(err, "28")
    helper.raises("misuse", function()
      return M.User:filter(alternating(200)):count()
    end)
  end)

  it("counts relation hops in the depth (each nests a subquery)", function()
    local path = "posts__author__posts__author__posts__author__posts__author__name"
    assert.equal(1, M.User:filter { [path] = "Ann" }:count())
    assert.equal(1, M.User:exclude { [path] = "Ann" }:count())
    -- 8 hops count 24 levels: 4 groups remain
    assert.equal(1, M.User:filter(alternating(4, { [path] = "Ann", name = "Ann" })):count())
    local err = helper.raises("misuse", function()
      return M.User:filter(alternating(6, { [path] = "Ann", name = "Ann" })):count()
    end)
    helper.mentions(err, "28", path)
    assert.equal(1, M.User:where_has("posts__author__posts", { author__name = "Ann" }):count())
  end)

  it("takes 1024 alternatives in one quay.any and refuses more", function()
    local alts = {}
    for i = 1, 1023 do alts[i] = { name = "nobody" .. i, email = "x" } end
    alts[1024] = { name = "Ann" }
    assert.equal(1, M.User:filter(quay.any(alts)):count())
    assert.equal(1, M.User:filter(alternating(20, quay.any(alts))):count())
    alts[1025] = { name = "Bob" }
    local err = helper.raises("misuse", function()
      return M.User:filter(quay.any(alts)):count()
    end)
    helper.mentions(err, "1024")
  end)

  it("refuses a conditions table that contains itself", function()
    local c = { name = "Ann" }
    c[1] = c
    helper.mentions(helper.raises("misuse", M.User.filter, M.User, c), "itself")
    local a = quay.any { { name = "Ann" } }
    a[2] = a
    helper.raises("misuse", M.User.filter, M.User, a)
    local x, y = { name = "Ann" }, {}   -- x: no empty alternative of the any
    x[1], y[1] = { y }, quay.any { x, { name = "Ann" } }
    helper.raises("misuse", M.User.filter, M.User, x)
    -- the same table twice is fine
    local shared = { name = "Ann" }
    assert.equal(1, M.User:filter { shared, quay.any { shared, { name = "Bob" } }, shared }:count())
  end)

  it("takes a list of many records", function()
    local ann = M.User:get { name = "Ann" }
    local list = {}
    for i = 1, 5000 do list[i] = ann end
    assert.equal(1, M.Post:filter { author__in = list }:count())
  end)
end)
