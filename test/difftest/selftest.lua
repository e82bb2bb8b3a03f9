--[[
test/difftest/selftest.lua
Checks the oracle itself on a hand-made instance against answers worked
out by hand from the rules of docs/reference.md ("Conditions", "Paths
across relations"), its examples first.  No Quay involved: this guards the truth the tester compares with.

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

----------------------------------------------------------------------------
-- Aggregates, annotations, values, quay.F and update (aoracle.lua), worked
-- out by hand on the same rows.  Posts by author: ann {1}, bob {2, 3},
-- cy {}, user 4 {4, 5}; views 5, 6, 5, NULL, maxint.

local function agg(fn, path, opts)
  local e = { kind = "agg", fn = fn, path = path }
  for k, v in pairs(opts or {}) do e[k] = v end
  if e.filter then e.filter = cond(e.filter) end
  return e
end
local function F(path) return { kind = "col", path = path } end
local function num(v) return { kind = "num", v = v } end
local function op(o, a, b) return { kind = "op", op = o, a = a, b = b } end

local function show(v)
  if v == NULL or v == nil then return "NULL" end
  if V.is_approx(v) then return ("~%.17g"):format(v.v) end
  return tostring(v)
end

local function same(a, b)
  if a == nil then a = NULL end
  if b == nil then b = NULL end
  if V.is_approx(a) then a = a.v end
  if V.is_approx(b) then b = b.v end
  if a == NULL or b == NULL then return a == b end
  if type(a) == "number" and type(b) == "number" then
    return math.type(a) == math.type(b) and math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a))
  end
  return a == b
end

-- Annotation name of each record (by id) of model under e.
local function ann_check(name, model, e, want, steps)
  checks = checks + 1
  local q = { ext = "annotate", model = model, steps = steps or {},
              ann = { { name = "x", e = e, call = 1 } }, term = { kind = "all" } }
  local ok, res = pcall(oracle.run, oracle, q)
  local got = {}
  if ok then for _, r in ipairs(res.rows) do got[r.id] = r.x end end
  local bad = not ok
  for id, v in pairs(want) do if not bad and not same(v, got[id]) then bad = true end end
  if bad then
    failures = failures + 1
    local parts = {}
    for id in pairs(want) do parts[#parts + 1] = id .. "=" .. show(got[id]) end
    table.sort(parts)
    print(("FAIL %s: got %s"):format(name, ok and table.concat(parts, " ") or tostring(res)))
  end
end

ann_check("count to-many", "User", agg("count", "posts"), { 1, 2, 0, 2 })
ann_check("sum to-many, NULL for none", "User", agg("sum", "posts__views"),
  { 5, 11, NULL, math.maxinteger })
ann_check("sum with a filter on the aggregated rows", "User",
  agg("sum", "posts__views", { filter = { posts__title = "x" } }), { 5, 6, NULL, NULL })
ann_check("filter leaf on the owner", "User",
  agg("count", "posts", { filter = { name = "bob" } }), { 0, 2, 0, 0 })
ann_check("filter through the aggregated row's relation", "User",
  agg("count", "posts", { filter = { posts__tags__isnull = false } }), { 1, 1, 0, 0 })
ann_check("count over m2m", "User", agg("count", "posts__tags"), { 1, 1, 0, 0 })
ann_check("count distinct values, NULL left out", "User",
  agg("count", "posts__title", { distinct = true }), { 1, 2, 0, 1 })
ann_check("min of text", "User", agg("min", "posts__title"), { "x", "x", NULL, "a%_\\b" })
ann_check("avg is a float", "User", agg("avg", "posts__views"), { 5.0, 5.5, NULL, NULL },
  { { op = "filter", cond = cond { id__in = { 1, 2, 3 } } } })
ann_check("default for none", "User", agg("sum", "posts__views", { default = 0 }),
  { 5, 11, 0, math.maxinteger })
ann_check("exists", "User", agg("exists", "posts__tags"), { true, true, false, false })
ann_check("to-one path", "Post", agg("count", "editor"), { 0, 1, 0, 1, 0 })
ann_check("own field", "Post", agg("max", "views"), { 5, 6, 5, NULL, math.maxinteger })
ann_check("arithmetic with a column", "Post", op("+", agg("count", "tags"), F("editor_id")),
  { NULL, 1, NULL, 3, NULL })

-- A query of agen.lua's AST, its result checked by fn(res) -> ok.
local function ext_check(name, q, fn)
  checks = checks + 1
  q.steps = q.steps or {}
  local ok, res = pcall(oracle.run, oracle, q)
  if not ok or not fn(res) then
    failures = failures + 1
    print(("FAIL %s: %s"):format(name, ok and "wrong result" or tostring(res)))
  end
end

local function ids_of(res)
  local out = {}
  for i, r in ipairs(res.rows or {}) do out[i] = r.id end
  return table.concat(out, ",")
end

ext_check("filter and order on an annotation, key breaking ties", {
  ext = "annotate", model = "User", ann = { { name = "n", e = agg("count", "posts"), call = 1 } },
  order = { { path = "n", desc = true } }, term = { kind = "all" } },
  function(r) return ids_of(r) == "2,4,1,3" end)
ext_check("filter on an annotation", {
  ext = "annotate", model = "User", ann = { { name = "n", e = agg("count", "posts"), call = 1 } },
  post = { { op = "filter", cond = cond { n__gte = 2 } } }, term = { kind = "all" } },
  function(r) return ids_of(r) == "2,4" end)

-- groups: NULL is a group of its own
local function group_of(res, col, key)
  for _, r in ipairs(res.rows) do
    if r[col] == key then return r end
  end
end
ext_check("values grouped, NULL a group", {
  ext = "grouped", grouped = true, model = "Post", vals = { "title" },
  ann = { { name = "n", e = agg("count"), call = 1 } }, term = { kind = "all" } },
  function(r)
    return #r.rows == 4 and group_of(r, "title", "x").n == 2 and group_of(r, "title", NULL).n == 1
  end)
ext_check("values grouped by a to-one path, a sum per group", {
  ext = "grouped", grouped = true, model = "Post", vals = { "author__name" },
  ann = { { name = "v", e = agg("sum", "views"), call = 1 } }, term = { kind = "all" } },
  function(r)
    return group_of(r, "author__name", "bob").v == 11
      and group_of(r, "author__name", NULL).v == math.maxinteger
  end)
ext_check("a group's related rows: each owner's, put together", {
  ext = "grouped", grouped = true, model = "Post", vals = { "title" },
  ann = { { name = "t", e = agg("count", "author__posts"), call = 1 } }, term = { kind = "all" } },
  function(r)   -- posts 1 (ann: 1) and 2 (bob: 2)
    return group_of(r, "title", "x").t == 3
  end)
ext_check("aggregate() over a filtered set", {
  ext = "aggregate", model = "Post", steps = { { op = "filter", cond = cond { title = "x" } } },
  term = { kind = "aggregate", aggs = { { name = "s", e = agg("sum", "views") },
                                        { name = "a", e = agg("avg", "views") },
                                        { name = "n", e = agg("count") } } } },
  function(r) return r.row.s == 11 and same(r.row.a, 5.5) and r.row.n == 2 end)
ext_check("aggregate() of an empty set: count 0, sum NULL", {
  ext = "aggregate", model = "Post", steps = { { op = "filter", cond = cond { title = "none" } } },
  term = { kind = "aggregate", aggs = { { name = "s", e = agg("sum", "views") },
                                        { name = "n", e = agg("count", "tags") } } } },
  function(r) return r.row.s == NULL and r.row.n == 0 end)
ext_check("aggregate() over m2m, each related row once per owner", {
  ext = "aggregate", model = "User",
  term = { kind = "aggregate", aggs = { { name = "t", e = agg("count", "posts__tags") },
                                        { name = "d", e = agg("count", "posts__author",
                                                              { distinct = true }) } } } },
  function(r) return r.row.t == 2 and r.row.d == 3 end)
ext_check("distinct values: a float average and an equal default are one value", {
  ext = "annotate", model = "User",
  ann = { { name = "a", e = agg("avg", "posts__views", { default = 5.0 }), call = 1 } },
  vals = { "a" }, distinct = true, term = { kind = "all" } },
  function(r) return #r.rows == 3 end)    -- 5.0 (ann, and cy's default), 5.5, maxint
-- Where the backends differ by design the oracle is unsure.
local function unsure_check(name, q)
  checks = checks + 1
  q.steps = q.steps or {}
  local ok, e = pcall(oracle.run, oracle, q)
  if ok or not O.is_unsure(e) then
    failures = failures + 1
    print(("FAIL %s: not unsure (%s)"):format(name, ok and "an answer" or tostring(e)))
  end
end
unsure_check("an integer sum overflow", { ext = "aggregate", model = "Post",
  term = { kind = "aggregate", aggs = { { name = "s", e = agg("sum", "views") } } } })
unsure_check("integer arithmetic overflow on any row", { ext = "annotate", model = "Post",
  ann = { { name = "x", e = op("*", F("views"), num(2)), call = 1 } },
  steps = { { op = "filter", cond = cond { id = 1 } } }, term = { kind = "count" } })

-- quay.F in conditions: the query's row; ne is IS DISTINCT FROM
local function fq(model, key, e)
  return { ext = "fexpr", model = model, term = { kind = "all" },
           steps = { { op = "filter", cond = { kind = "table", items = {
             { kind = "leaf", key = key, value = { kind = "expr", e = e } } } } } } }
end
ext_check("F across a to-one relation, unknown on NULL",
  fq("Post", "views__gt", F("parent__views")), function(r) return ids_of(r) == "5" end)
ext_check("F ne is null-safe", fq("Post", "title__ne", F("editor__name")),
  function(r) return ids_of(r) == "1,2,3,4,5" end)
ext_check("F eq itself: NULL is unknown", fq("Post", "views", F("views")),
  function(r) return ids_of(r) == "1,2,3,5" end)
ext_check("F under a to-many hop is the owner's", fq("User", "posts__views__gt", op("+", F("id"), num(3))),
  function(r) return ids_of(r) == "1,2,4" end)

-- update: every expression reads the rows as they were
ext_check("update with an expression, over a filtered set", {
  ext = "update", model = "Post", steps = { { op = "filter", cond = cond { title = "x" } } },
  term = { kind = "update", set = { { col = "views", value = { kind = "expr",
    e = op("+", F("views"), num(1)) } } } } },
  function(r) return r.n == 2 and r.rows[1].views == 6 and r.rows[2].views == 7
    and r.rows[3].views == 5 end)
ext_check("update reads the old rows (a parent updated in the same statement)", {
  ext = "update", model = "Post",
  term = { kind = "update", set = { { col = "views", value = { kind = "expr",
    e = op("+", F("parent__views"), num(10)) } } } } },
  function(r) return r.n == 5 and r.rows[1].views == NULL and r.rows[5].views == 15 end)

print(("difftest oracle self-test: %d checks, %d failures"):format(checks, failures))
os.exit(failures == 0 and 0 or 1)
