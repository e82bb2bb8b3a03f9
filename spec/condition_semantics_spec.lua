-- spec/condition_semantics_spec.lua: the precise meaning of conditions
-- across relations (docs/reference.md "Conditions" and "Paths across relations"):
-- relation compares, to-one LEFT JOIN semantics, to-many same-row groups.
-- Each answer is checked against hand-written SQL over the same rows.
local helper = require("spec.helper")
local quay = helper.quay

local function ids(list)
  local out = {}
  for _, r in ipairs(list) do out[#out + 1] = r.id end
  table.sort(out)
  return out
end

local function sql_ids(db, sql, params)
  local out = {}
  for _, r in ipairs(db:rows(sql, params or {})) do out[#out + 1] = r.id end
  table.sort(out)
  return out
end

describe("Condition semantics", function()
  local db, M, ann, bob, cy, p1, p2, p3, lua, c

  before_each(function()
    db = helper.open()
    M = {}
    M.User = db:model("User", {
      name = quay.string(),
      follows = quay.many_to_many("self", { related_name = "followers" }),
    })
    M.Tag = db:model("Tag", { name = quay.string() })
    M.Post = db:model("Post", {
      title = quay.string(),
      views = quay.integer { default = 0 },
      author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
      editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL,
                                         related_name = "edited" }),
      parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                         related_name = "replies" }),
      tags = quay.many_to_many("Tag", { related_name = "posts" }),
    })
    db:create_tables()
    ann = M.User:create { name = "ann" }
    bob = M.User:create { name = "bob" }
    cy = M.User:create { name = "cy" }
    p1 = M.Post:create { title = "x", views = 1, author = ann, editor = bob }
    p2 = M.Post:create { title = "y", views = 5, author = ann }
    p3 = M.Post:create { title = "x", views = 5, author = bob, parent = p1 }
    lua = M.Tag:create { name = "lua" }
    c = M.Tag:create { name = "c" }
    p2.tags:add(lua)
    p3.tags:add(c)
    ann.follows:add(bob)
    cy.follows:add(ann)
  end)

  after_each(function() db:close() end)

  describe("a relation compared with a key or record", function()
    it("compares the related row's key, not the owner's own", function()
      -- post p3 belongs to bob: the author of post p3 is bob, whatever ids
      assert.same({ bob.id }, ids(M.User:filter { posts = p3.id }:all()))
      assert.same({ bob.id }, ids(M.User:filter { posts = p3 }:all()))
      assert.same({ ann.id }, ids(M.User:filter { posts__in = { p2.id } }:all()))
      assert.same(sql_ids(db, "SELECT DISTINCT author_id AS id FROM posts WHERE id <> ?",
                          { p1.id }),
                  ids(M.User:filter { posts__ne = p1 }:all()))
      assert.same({ bob.id }, ids(M.User:filter { edited = p1 }:all()))
      assert.same({ p1.id }, ids(M.Post:filter { replies = p3 }:all()))
    end)

    it("compares with null as an existence test", function()
      assert.same({ cy.id }, ids(M.User:filter { posts = quay.null }:all()))
      assert.same({ ann.id, bob.id }, ids(M.User:filter { posts__ne = quay.null }:all()))
      assert.same({ p2.id, p3.id }, ids(M.Post:filter { editor = quay.null }:all()))
    end)
  end)

  describe("a condition on the child's foreign key through a reverse relation", function()
    it("keeps the existence test", function()
      -- cy has no posts, so no post of cy has author_id = cy.id
      assert.same({}, ids(M.User:filter { posts__author_id = cy.id }:all()))
      assert.same({ ann.id }, ids(M.User:filter { posts__author_id = ann.id }:all()))
      assert.same({ p1.id }, ids(M.Post:filter { replies__parent_id__gt = 0 }:all()))
      assert.same(sql_ids(db, "SELECT id FROM posts WHERE id IN " ..
                              "(SELECT parent_id FROM posts WHERE parent_id IS NOT NULL)"),
                  ids(M.Post:filter { replies__id__gt = 0 }:all()))
    end)
  end)

  describe("a self many_to_many", function()
    it("keeps its two directions apart in one table", function()
      -- ann follows bob and is followed by cy
      assert.same({ ann.id },
        ids(M.User:filter { follows__name = "bob", followers__name = "cy" }:all()))
      assert.same(ids(M.User:filter { follows__name = "bob" }
                        :filter { followers__name = "cy" }:all()),
        ids(M.User:filter { follows__name = "bob", followers__name = "cy" }:all()))
      assert.same({}, ids(M.User:filter { follows__name = "cy", followers__name = "bob" }:all()))
    end)
  end)

  describe("same-row groups", function()
    it("put a relation isnull test in the group of its parent row", function()
      -- ann's post "x" (p1) has no tags; her tagged post p2 is "y"
      assert.same({ bob.id },
        ids(M.User:filter { posts__title = "x", posts__tags__isnull = false }:all()))
      assert.same(ids(M.User:filter { posts__title = "x", posts__tags__id__isnull = false }:all()),
        ids(M.User:filter { posts__title = "x", posts__tags__isnull = false }:all()))
      assert.same({ ann.id },
        ids(M.User:filter { posts__title = "x", posts__tags__isnull = true }:all()))
      assert.same(sql_ids(db, [[
        SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM posts p WHERE p.author_id = u.id
          AND p.title = 'x' AND NOT EXISTS (SELECT 1 FROM posts_tags pt WHERE pt.post_id = p.id))]]),
        ids(M.User:filter { posts__title = "x", posts__tags__id__isnull = true }:all()))
    end)

    it("put the conditions of a quay.any in the group of its table", function()
      local a = ids(M.User:filter { posts__title = "x", quay.any { { posts__views = 5 } } }:all())
      local b = ids(M.User:filter { posts__title = "x", posts__views = 5 }:all())
      assert.same({ bob.id }, b)
      assert.same(b, a)
      -- ann has "x" with 1 view and "y" with 5: no single post of hers is both
      assert.same({ bob.id },
        ids(M.User:filter { posts__title = "x",
                            quay.any { { posts__views = 5 }, { posts__views = 7 } } }:all()))
      -- a branch on the user row itself: exists p: p.title = "x" and (p.views = 5 or name = "ann")
      assert.same({ ann.id, bob.id },
        ids(M.User:filter { posts__title = "x",
                            quay.any { { posts__views = 5 }, { name = "ann" } } }:all()))
      assert.same({ bob.id },
        ids(M.User:filter { posts__title = "x",
                            quay.any { { posts__views = 5 }, { name = "cy" } } }:all()))
    end)

    it("quantify a relation used by one branch only inside that branch", function()
      -- cy has no posts; the second branch does not need any
      assert.same({ bob.id, cy.id },
        ids(M.User:filter { quay.any { { posts__tags__name = "c" }, { name = "cy" } } }:all()))
    end)
  end)

  describe("a plain table nested in a table", function()
    it("has related rows of its own, shared by the quay.any directly in it", function()
      -- ann: p1 (x, 1), p2 (y, 5); bob: p3 (x, 5)
      -- one table: the post titled x has views 5 -> bob
      assert.same(sql_ids(db, [[SELECT DISTINCT author_id AS id FROM posts
                                WHERE title = 'x' AND views = 5]]),
        ids(M.User:filter { posts__title = "x", quay.any { { posts__views = 5 } } }:all()))
      -- a nested table: some post titled x, and some post with views 5
      local want = sql_ids(db, [[SELECT u.id FROM users u
        WHERE u.id IN (SELECT author_id FROM posts WHERE title = 'x')
          AND u.id IN (SELECT author_id FROM posts WHERE views = 5 OR u.name = 'zz')]])
      assert.same({ ann.id, bob.id }, want)
      assert.same(want, ids(M.User:filter {
        posts__title = "x", { quay.any { { posts__views = 5 } } } }:all()))
      assert.same(want, ids(M.User:filter {
        posts__title = "x", { quay.any { { posts__views = 5 }, { name = "zz" } } } }:all()))
      -- inside the nested table its own names and its quay.any share its row
      assert.same(sql_ids(db, [[SELECT u.id FROM users u
          WHERE u.id IN (SELECT author_id FROM posts WHERE title = 'x')
            AND u.id IN (SELECT author_id FROM posts WHERE views = 5 AND title = 'y')]]),
        ids(M.User:filter { posts__title = "x",
                            { posts__views = 5, quay.any { { posts__title = "y" } } } }:all()))
      -- a table of tables without quay.any adds nothing: the same as its tables
      assert.same(ids(M.User:filter { { posts__title = "x" }, { posts__views = 5 } }:all()),
        ids(M.User:filter { { { posts__title = "x" }, { posts__views = 5 } } }:all()))
    end)
  end)

  describe("a nullable to-one path", function()
    it("reads a missing related row as a row of nulls", function()
      assert.same({ p2.id, p3.id }, ids(M.Post:filter { editor__name__isnull = true }:all()))
      assert.same({ p2.id, p3.id }, ids(M.Post:filter { editor__id__isnull = true }:all()))
      assert.same({ p1.id }, ids(M.Post:filter { editor__name__isnull = false }:all()))
      assert.same({ p2.id, p3.id }, ids(M.Post:filter { editor__name__ne = "bob" }:all()))
      assert.same({}, ids(M.Post:filter { editor__name = "ann" }:all()))
      assert.same({ p1.id, p2.id, p3.id }, ids(M.Post:exclude { editor__name = "ann" }:all()))
      assert.same({ p2.id, p3.id }, ids(M.Post:filter { editor__name__not_in = { "bob" } }:all()))
      assert.same(sql_ids(db, [[SELECT p.id FROM posts p LEFT JOIN users e ON e.id = p.editor_id
                                WHERE e.name IS NULL OR e.name <> 'zed']]),
                  ids(M.Post:filter { editor__name__ne = "zed" }:all()))
      -- two hops: the parent's editor
      assert.same(sql_ids(db, [[SELECT p.id FROM posts p LEFT JOIN posts q ON q.id = p.parent_id
                                LEFT JOIN users e ON e.id = q.editor_id WHERE e.name IS NULL]]),
                  ids(M.Post:filter { parent__editor__name__isnull = true }:all()))
      assert.equal(2, M.Post:filter { editor__name__isnull = true }:count())
    end)

    it("never repeats a row for a condition on a to-one path", function()
      assert.equal(3, #M.Post:filter { author__name__ne = "zed", editor__name__ne = "zed" }:all())
    end)
  end)
end)
