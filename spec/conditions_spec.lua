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
