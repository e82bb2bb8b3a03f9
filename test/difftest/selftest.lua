--[[
test/difftest/selftest.lua
Checks the oracle itself on a hand-made instance against answers worked
out by hand from the rule book (/work/notes/semantics.md), its examples
first.  No Quay involved: this guards the truth the tester compares with.

  lua5.4 test/difftest/selftest.lua      (ctest difftest.oracle)
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
package.path = root .. "/?.lua;" .. package.path

local V = require("test.difftest.values")
local O = require("test.difftest.oracle")
local NULL = V.NULL

-- Users: 1 ann, 2 bob, 3 cy (no posts), 4 NULL name.
-- Posts: 1 "x"/5 by ann, tag lua; 2 "x"/6 by bob, editor ann;
--        3 "y"/5 by bob, tag c; 4 NULL/NULL by 4, editor cy;
--        5 "a%_\b"/maxint by 4, parent 1.
-- ann follows bob, bob follows cy.
local function user(id, name) return { id = id, name = name, age = NULL, score = NULL,
  active = NULL, joined = NULL } end
local function post(id, title, views, author, editor, parent)
  return { id = id, title = title, body = NULL, views = views, rating = NULL,
    published = NULL, created = NULL, author_id = author, editor_id = editor,
    parent_id = parent or NULL, main_tag_id = NULL }
end
local inst = {
  rows = {
    User = { user(1, "ann"), user(2, "bob"), user(3, "cy"), user(4, NULL) },
    Post = { post(1, "x", 5, 1, NULL), post(2, "x", 6, 2, 1), post(3, "y", 5, 2, NULL),
             post(4, NULL, NULL, 4, 3), post(5, "a%_\\b", math.maxinteger, 4, NULL, 1) },
    Tag = { { id = 1, name = "lua", slug = "lua", weight = NULL },
            { id = 2, name = "c", slug = "c", weight = NULL } },
    Profile = {}, Badge = {}, Note = {}, Comment = {}, Student = {}, Course = {},
    Enrolment = {},
  },
  join = { follows = { { 1, 2 }, { 2, 3 } }, post_tags = { { 1, 1 }, { 3, 2 } } },
}

local ANY = {}
local function any(...) return { [ANY] = { ... } } end

-- A conditions table written like Quay's into the AST of gen.lua.
local function cond(t)
  if t[ANY] then
    local tables = {}
    for i, sub in ipairs(t[ANY]) do tables[i] = cond(sub) end
    return { kind = "any", tables = tables }
  end
  local items = {}
  local keys = {}
  for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" and v ~= NULL then v = { kind = "list", items = v } end
    items[#items + 1] = { kind = "leaf", key = k, value = v }
  end
  for _, sub in ipairs(t) do items[#items + 1] = cond(sub) end
  return { kind = "table", items = items }
end

local function q(model, steps, extra)
  local out = { model = model, steps = {}, term = { kind = "all" } }
  for i, st in ipairs(steps) do
    local op, arg = st[1], st[2]
    if op == "filter" or op == "exclude" then
      out.steps[i] = { op = op, cond = cond(arg) }
    else
      out.steps[i] = { op = op, rel = arg, cond = st[3] and cond(st[3]) or nil }
    end
  end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

local oracle = O.new(inst)
local failures, checks = 0, 0
local function check(name, query, want)
  checks = checks + 1
  local got = oracle:run(query).ids
  local ok = #got == #want
  if ok and not (query.order) then
    table.sort(got)
    table.sort(want)
  end
  for i = 1, #want do ok = ok and got[i] == want[i] end
  if not ok then
    failures = failures + 1
    print(("FAIL %s: want {%s}, got {%s}"):format(name, table.concat(want, ","),
      table.concat(got, ",")))
  end
end
local function f(model, t, want, name) check(name or "filter", q(model, { { "filter", t } }), want) end

-- Same-row groups (the rule book's examples)
f("User", { posts__title = "x", posts__views = 5 }, { 1 }, "one post for both")
check("separate filter calls", q("User", { { "filter", { posts__title = "x" } },
  { "filter", { posts__views = 5 } } }), { 1, 2 })
f("User", { posts__title = "x", posts__tags__name = "lua" }, { 1 }, "nested group")
f("User", { posts__title = "x", posts__tags__isnull = false }, { 1 }, "relation isnull in group")
f("User", { posts__title = "x", any({ posts__views = 5 }, { posts__views = 6 }) }, { 1, 2 },
  "any inside the group")
f("User", { posts__title = "y", any({ posts__views = 6 }, { name = "bob" }) }, { 2 },
  "any mixing the group and the owner")
f("User", { follows__name = "cy", followers__name = "ann" }, { 2 }, "self m2m directions")
f("User", { follows__name = "bob" }, { 1 }, "follows")
f("User", { followers__name = "ann" }, { 2 }, "followers")
-- a row one alternative alone uses is bound inside it: cy needs no posts
f("User", { any({ posts__views = 6 }, { name = "cy" }) }, { 2, 3 }, "quantified inside the branch")

do  -- the other reading: each to-many row bound at its innermost table
  local saved = oracle
  oracle = O.new(inst, { quantify = "minimal" })
  f("User", { any({ posts__views = 6 }, { name = "cy" }) }, { 2, 3 }, "minimal reading")
  f("User", { posts__title = "y", any({ posts__views = 6 }, { name = "bob" }) }, { 2 },
    "minimal reading keeps the rule book's example")
  oracle = saved
end

-- Relation existence and keys
f("User", { posts__isnull = true }, { 3 })
f("User", { posts = NULL }, { 3 })
f("User", { posts__ne = NULL }, { 1, 2, 4 })
f("User", { posts__id__isnull = true }, { 3 })
f("User", { posts = 1 }, { 1 }, "reverse relation = key")
f("User", { posts = 3 }, { 2 })
f("User", { posts__in = { 1, 3 } }, { 1, 2 })
f("Post", { children = 5 }, { 1 }, "self reverse = key")
f("Post", { parent = 1 }, { 5 })
f("Post", { editor = NULL }, { 1, 3, 5 })
f("Post", { tags = 2 }, { 3 })

-- Lookups, NULLs, exclude
check("exclude keeps NULL", q("User", { { "exclude", { name = "bob" } } }), { 1, 3, 4 })
f("User", { name__ne = "bob" }, { 1, 3, 4 }, "null-safe ne")
f("User", { name__not_in = { "bob", NULL } }, { 1, 3, 4 })
f("User", { name__in = {} }, {})
f("User", { name__in = { NULL } }, {})
f("User", { name__not_in = {} }, { 1, 2, 3, 4 })
f("User", { name = NULL }, { 4 })
f("Post", { title__contains = "%" }, { 5 })
f("Post", { title__contains = "_" }, { 5 })
f("Post", { title__contains = "\\" }, { 5 })
f("Post", { title__startswith = "a%" }, { 5 })
f("Post", { title__endswith = "_\\b" }, { 5 })
f("Post", { title__contains = "" }, { 1, 2, 3, 5 })
f("Post", { title__icontains = "X" }, { 1, 2 })
f("Post", { views__gt = 1 << 62 }, { 5 })
f("Post", { views__between = { 5, 6 } }, { 1, 2, 3 })
f("Post", { views__between = { 6, 5 } }, {})
f("Post", { title__lt = "x" }, { 5 }, "bytewise")

-- To-one hops: LEFT JOIN semantics
f("Post", { editor__name__isnull = true }, { 1, 3, 5 })
f("Post", { editor__name = "x" }, {})
f("Post", { editor__name__ne = "ann" }, { 1, 3, 4, 5 })
f("Post", { editor__posts__title = "x" }, { 2 })
f("Post", { editor__posts__isnull = true }, { 1, 3, 4, 5 })
f("Post", { parent__editor__name__isnull = true }, { 1, 2, 3, 4, 5 })

-- where_has
check("where_has", q("User", { { "where_has", "posts", { views = 6 } } }), { 2 })
check("where_doesnt_have", q("User", { { "where_doesnt_have", "posts" } }), { 3 })
check("where_has path", q("User", { { "where_has", "posts__tags", { name = "c" } } }), { 2 })
check("where_has to-one", q("Post", { { "where_has", "editor" } }), { 2, 4 })

-- Ordering: NULL first ascending, last descending, then the key ascending
check("order asc", q("Post", {}, { order = { { path = "title" } } }), { 4, 5, 1, 2, 3 })
check("order desc", q("Post", {}, { order = { { path = "title", desc = true } } }),
  { 3, 1, 2, 5, 4 })
check("order to-one", q("Post", {}, { order = { { path = "editor__name" } } }),
  { 1, 3, 5, 2, 4 })
check("slice", q("Post", {}, { order = { { path = "title" } }, limit = 2, offset = 1 }), { 5, 1 })

print(("difftest oracle self-test: %d checks, %d failures"):format(checks, failures))
os.exit(failures == 0 and 0 or 1)
