--[[
test/difftest/known.lua
The mismatch classes the differential tester found, each as a minimal
hand-written repro on a small schema, with the answer the rules give
(docs/reference.md "Conditions", "Paths across relations") or, for
K1..K17 (aggregates, annotations, values, quay.F, update: agen.lua),
docs/reference.md "Aggregates, annotations, values and expressions".  Not a ctest: a checklist for the
fixes (each line PASS or FAIL; exit status 1 when any FAILs).  All of them
are fixed; the generator draws their shapes like any other (a class found
and not yet fixed is listed in agen.lua AG:known, which keeps the
generator clear of it unless --with-known).

  lua5.4 test/difftest/known.lua [URL]       (default sqlite::memory:)
  lua5.4 test/difftest/known.lua URL --only K10a   (one repro; a repro
                                   that crashes the process runs this way)
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
local build = os.getenv("QUAY_BUILD_DIR") or (root .. "/build")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local quay = require("quay")

local url = arg[1] or "sqlite::memory:"
local only = arg[2] == "--only" and arg[3] or nil
local is_pg = not url:match("^sqlite")
local db = quay.open(url)
if not url:match("^sqlite") then
  db:execute("DROP SCHEMA IF EXISTS public CASCADE")
  db:execute("CREATE SCHEMA public")
end

local User = db:model("User", {
  name = quay.string { null = true },
  follows = quay.many_to_many("self", { related_name = "followers" }),
  badge = quay.has_one("Badge", { foreign_key = "user_id" }),
  notes = quay.has_many("Note", { foreign_key = "user_id" }),
})
local Profile = db:model("Profile", {
  user = quay.one_to_one("User", { null = true, on_delete = quay.SET_NULL, related_name = "profile" }),
  bio = quay.text { null = true },
})
local Badge = db:model("Badge", { label = quay.string { null = true },
                                  user_id = quay.integer { null = true, unique = true } })
local Note = db:model("Note", { text = quay.string { null = true },
                                user_id = quay.integer { null = true } })
local Tag = db:model("Tag", { name = quay.string { null = true }, slug = quay.string { unique = true } })
local Post = db:model("Post", {
  title = quay.string { null = true },
  views = quay.integer { null = true },
  rating = quay.number { null = true },
  published = quay.boolean { null = true },
  parent = quay.belongs_to("self", { null = true, on_delete = quay.SET_NULL, related_name = "children" }),
  author = quay.belongs_to("User", { on_delete = quay.CASCADE, related_name = "posts" }),
  editor = quay.belongs_to("User", { null = true, on_delete = quay.SET_NULL, related_name = "edited" }),
  main_tag = quay.belongs_to("Tag", { null = true, to_field = "slug", on_delete = quay.SET_NULL,
                                      related_name = "main_posts" }),
  tags = quay.many_to_many("Tag", { related_name = "posts" }),
})
local Student = db:model("Student", { name = quay.string { null = true } })
local Course = db:model("Course", {
  title = quay.string { null = true },
  students = quay.many_to_many("Student", { through = "Enrolment", related_name = "courses" }),
  learners = quay.through("enrolments", "student"),
})
local Enrolment = db:model("Enrolment", {
  student = quay.belongs_to("Student", { on_delete = quay.CASCADE, related_name = "enrolments" }),
  course = quay.belongs_to("Course", { on_delete = quay.CASCADE, related_name = "enrolments" }),
  grade = quay.integer { null = true },
})
local Doc = db:model("Doc", { data = quay.json { null = true } })
db:create_tables()

-- ann(1) follows bob(2), cy(3) follows ann; cy has no post, profile, badge
-- or note.  Posts 1 "x"/5 by ann (main tag lua, tagged lua), 2 "x"/6 by bob
-- edited by ann (tagged lua), 3 "y"/5 by bob.  Profile 5 is ann's, 2 has
-- no user.  Course 1 has students 1 (grade 3) and 2 (grade 9), course 2 none.
-- Posts 1, 2, 3 are rated 1.5, 2.5, NULL and published true, false, NULL;
-- 2's parent is 1, 3's is 2.
local ann = User:create { id = 1, name = "ann" }
local bob = User:create { id = 2, name = "bob" }
local cy = User:create { id = 3, name = "cy" }
ann.follows:add(bob)
cy.follows:add(ann)
Profile:create { id = 5, user = ann, bio = "hi" }
Profile:create { id = 2, bio = "orphan" }                 -- no user
Badge:create { id = 7, label = "gold", user_id = 1 }
Note:create { id = 1, text = "n", user_id = 1 }
local lua = Tag:create { id = 1, name = "lua", slug = "lua" }
Tag:create { id = 2, name = "c", slug = "c" }
local p1 = Post:create { id = 1, title = "x", views = 5, author = ann, main_tag_id = "lua",
                         rating = 1.5, published = true }
local p2 = Post:create { id = 2, title = "x", views = 6, author = bob, editor = ann,
                         rating = 2.5, published = false, parent = p1 }
Post:create { id = 3, title = "y", views = 5, author = bob, parent = p2 }
p1.tags:add(lua)
p2.tags:add(lua)
local s1 = Student:create { id = 1, name = "s" }
local c1 = Course:create { id = 1, title = "c1" }
Course:create { id = 2, title = "empty" }
Enrolment:create { id = 1, student = s1, course = c1, grade = 3 }
Enrolment:create { id = 2, student = Student:create { id = 2, name = "t" }, course = c1, grade = 9 }

local fails = 0
local function ids(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.id end
  return "{" .. table.concat(out, ",") .. "}"
end
-- Run fn in a transaction that is rolled back; returns what fn returned.
local ROLLBACK = {}
local function in_tx(fn)
  local res
  local ok, err = pcall(db.transaction, db, function()
    res = fn()
    error(ROLLBACK)
  end)
  if err ~= ROLLBACK then error(err, 0) end
  return res
end

-- The values of model.col by id, after fn (an update) in a rolled-back
-- transaction: "v1,v2,..." (nil for NULL).
local function after_update(fn, model, col)
  return in_tx(function()
    fn()
    local out = {}
    for i, r in ipairs(model:order_by("id"):all()) do out[i] = tostring(r[col]) end
    return table.concat(out, ",")
  end)
end

local function check(class, src, want)
  if only and class ~= only then return end
  local env = setmetatable({ quay = quay }, { __index = _G })
  env.User, env.Post, env.Tag, env.Profile, env.Badge, env.Note = User, Post, Tag, Profile, Badge, Note
  env.Student, env.Course, env.Enrolment, env.Doc = Student, Course, Enrolment, Doc
  env.in_tx, env.after_update, env.db = in_tx, after_update, db
  local ok, res = pcall(assert(load("return " .. src, "=repro", "t", env)))
  local got
  if not ok then got = "error " .. tostring(type(res) == "table" and res.code or res)
  elseif type(res) == "table" and getmetatable(res) == nil then got = ids(res)
  elseif type(res) == "table" or type(res) == "userdata" then got = res.id and ("rec " .. res.id) or ids(res)
  else got = tostring(res) end
  local pass = got == want
  if not pass then fails = fails + 1 end
  print(("%s  %-3s %s\n      want %s, got %s"):format(pass and "PASS" or "FAIL", class, src, want, got))
end

-- A. a reverse relation compared with a key / record / list compares the
--    key of the related rows (rule book "Paths"), not the owner's own id
check("A1", 'User:filter { posts__gte = 3 }:all()', "{2}")
check("A1", 'User:filter { posts = 3 }:all()', "{2}")
check("A1", 'User:filter { profile = 5 }:all()', "{1}")
check("A1", 'User:filter { badge = 7 }:all()', "{1}")
check("A2", 'User:filter { posts__ne = Post:find(3) }:all()', "{1,2}")
check("A2", 'User:filter { edited = Post:find(3) }:all()', "{}")
check("A3", 'Tag:filter { main_posts = 1 }:all()', "{1}")
-- B. relation = quay.null is relation__isnull = true (also on many_to_many)
check("B", 'User:filter { posts = quay.null }:all()', "{3}")
check("B", 'User:filter { edited__ne = quay.null }:all()', "{1}")
check("B", 'Post:filter { tags = quay.null }:all()', "{3}")
check("B", 'Course:filter { students = quay.null }:all()', "{2}")
-- C. the child's foreign key through the reverse relation keeps the existence test
check("C", 'User:filter { posts__author_id__ne = 1 }:all()', "{2}")
check("C", 'User:filter { notes__user_id__gte = 0 }:all()', "{1}")
check("C", 'User:filter { badge__user_id__isnull = true }:all()', "{2,3}")
-- D. to-one hops have LEFT JOIN semantics (a missing row is a NULL row)
check("D", 'Post:filter { editor__name__isnull = true }:all()', "{1,3}")
check("D", 'Post:filter { editor__name__ne = "ann" }:all()', "{1,3}")
check("D", 'Post:filter { editor__name__not_in = {} }:all()', "{1,2,3}")
check("D", 'Post:filter { editor__name = quay.null }:all()', "{1,3}")
check("D", 'Profile:filter { user__name__ne = "x" }:all()', "{2,5}")
check("D", 'User:filter { badge__label__isnull = true }:all()', "{2,3}")
check("D", 'User:filter { profile__bio__isnull = true }:all()', "{2,3}")
-- E. <relation>__<pk>__isnull is the relation's existence
check("E", 'Post:filter { main_tag__id__isnull = true }:all()', "{2,3}")
check("E", 'Tag:filter { posts__id__isnull = true }:all()', "{2}")
check("E", 'User:filter { badge__id__isnull = true }:all()', "{2,3}")
-- F. relation isnull below a to-many hop belongs to that hop's row
check("F", 'User:filter { posts__editor__isnull = true }:all()', "{1,2}")
check("F", 'Course:filter { enrolments__student__isnull = true }:all()', "{}")
-- G. follows and followers are different rows
check("G", 'User:filter { follows__name = "bob" }:all()', "{1}")
check("G", 'User:filter { follows__name = "bob", followers__name = "cy" }:all()', "{1}")
-- H. same-row groups hold across quay.any (rule book example)
check("H", 'User:filter { posts__title = "y", quay.any { { posts__views = 6 }, { name = "ann" } } }:all()', "{}")
check("H", 'User:filter { posts__title = "y", quay.any { { posts__views = 6 }, { posts__views = 7 } } }:all()', "{}")
-- I. relation isnull inside a same-row group binds the group's row
check("I", 'User:filter { posts__title = "y", posts__tags__isnull = false }:all()', "{}")
-- J. ties broken by the primary key ascending (no tie-breaker is emitted when
--    order_by is given; SQLite's backwards index scan shows it), NULL first
--    ascending
check("J", 'Post:order_by("-author_id"):all()', "{2,3,1}")
check("J", 'Post:order_by("editor__name"):all()', "{1,3,2}")
check("J", 'Post:order_by("-editor__name"):all()', "{2,1,3}")
-- K. limit(0) selects no row, also for first()
check("K", 'Post:query():order_by("id"):limit(0):first()', "nil")
-- L. a to-many quay.through and the relation it starts with are different rows
check("L", 'Course:filter { learners = 1, enrolments__grade = 9 }:all()', "{1}")
-- M. describe() listed Badge.badge / Note.notes (reverse of has_one / has_many)
--    but paths do not know them.  A has_many / has_one without related_name
--    registers no accessor (docs/reference.md "Relations"): neither knows it.
check("M", 'Note:filter { notes__name = "ann" }:all()', "error unknown_field")
check("M", '#db:describe().Note.relations + #db:describe().Badge.relations', "0")


-- The read path past conditions (docs/reference.md "Aggregates, annotations,
-- values and expressions"; agen.lua AG:known draws these again).
-- K1 min / max keep the field's type, booleans too (PostgreSQL: "function
--    min(boolean) does not exist")
check("K1", 'tostring(Post:aggregate { lo = quay.min("published") }.lo)', "false")
-- K2 an update's expressions read the rows as they were (SQLite reads a
--    parent the same statement already updated)
check("K2", 'after_update(function() return Post:update { views = quay.F("parent__views") + 10 } end, Post, "views")',
  "nil,15,16")
-- K3 an integer field set from a number reads back an integer (SQLite keeps
--    2.5 in it; PostgreSQL rounds)
check("K3", 'in_tx(function() Post:filter { id = 2 }:update { views = quay.F("rating") * 1 } return math.type(Post:find(2).views) end)',
  "integer")
-- K4 comparing a string field with an integer column is refused before SQL
--    (SQLite compares, PostgreSQL raises sql)
check("K4", 'Post:filter { title__ne = quay.F("views") }:count()', "error bad_lookup")
-- K5 avg of a number field holding 1e300 and -1e300 (PostgreSQL's
--    avg(float8) accumulates the squares too: "value out of range: overflow")
check("K5", 'in_tx(function() Post:filter { id = 1 }:update { rating = 1e300 } Post:filter { id = 2 }:update { rating = -1e300 } return Post:aggregate { a = quay.avg("rating") }.a end)',
  "0.0")
-- K6 an aggregate annotation used in filter, then values() (bad_lookup "a
--    filter on an aggregate needs values(...) before annotate ...")
check("K6", '#User:annotate { n = quay.count("posts") }:filter { n__gte = 2 }:values("name"):all()', "1")
-- (and with distinct, count() is malformed SQL: "incomplete input")
check("K6", 'User:annotate { n = quay.count("posts") }:filter { n__gte = 2 }:values("name"):distinct():count()', "1")
-- K7 exclude on a group's aggregate
check("K7", 'Post:values("title"):annotate { n = quay.count() }:exclude { n__gte = 2 }:count()', "1")
-- K8 aggregate() over a set filtered on an aggregate annotation (the filter
--    is dropped: 3)
check("K8", 'User:annotate { n = quay.count("posts") }:filter { n__gte = 2 }:aggregate { c = quay.count() }.c', "1")
-- K9 aggregate() / groups counting a to-one relation other than one
--    belongs_to ("internal: a column of an expression was not prepared")
check("K9", 'User:aggregate { n = quay.count("badge") }.n', "1")
check("K9", 'Post:aggregate { n = quay.count("editor__badge") }.n', "1")
-- K10 aggregate() / groups over to-one paths: a crash (SIGSEGV in
--    scope_emit_joins) when one over more joins comes, by name, before one
--    over fewer; "no such column" over two different relations
if only == "K10a" or not only then
  if only then
    check("K10a", 'Post:aggregate { a = quay.count("author__name"), b = quay.count("title") }.a', "3")
  else
    -- in a process of its own: it crashes
    local cmd = ("lua5.4 %s/test/difftest/known.lua %q --only K10a 2>&1"):format(root, url)
    local f = io.popen(cmd)
    local text = f:read("a")
    local ok, _, code = f:close()
    local line = text:match("(PASS[^\n]*\n[^\n]*)") or text:match("(FAIL[^\n]*\n[^\n]*)")
    if ok and text:find("PASS", 1, true) then
      print(line)
    else
      fails = fails + 1
      print(("FAIL  K10a Post:aggregate { a = quay.count(\"author__name\"), b = quay.count(\"title\") }.a\n"
        .. "      want 3, got %s"):format(line and line:match("got (.*)$") or ("a crash (exit " .. tostring(code) .. ")")))
    end
  end
end
check("K10", 'Enrolment:aggregate { a = quay.count("course__title"), b = quay.min("student__name") }.b', "s")
-- K11 quay.count { options } (one table argument, as bindings/lexpr.c says)
check("K11", 'Post:aggregate { n = quay.count { filter = { title = "x" } } }.n', "2")
-- K12 aggregate() / groups: distinct over a to-many path with a filter on the
--    owner ("no such column: .name")
check("K12", 'Student:aggregate { n = quay.count("enrolments__grade", { filter = { name = "s" }, distinct = true }) }.n', "1")
-- K13 aggregate() / groups: the default of an aggregate over a to-many path
--    stands for an empty set, not for each record without rows
check("K13", 'Tag:aggregate { s = quay.sum("main_posts__views", { default = -1 }) }.s', "5")
-- K14 pluck on groups and on a distinct values set: one value per row of it
check("K14", 'table.concat(Post:values("title"):annotate { n = quay.count() }:order_by("title"):pluck("n"), ",")', "2,1")
check("K14", 'table.concat(Post:values("title"):distinct():order_by("title"):pluck("title"), ",")', "x,y")
-- K15 quay.count(nil, { distinct = true }) in groups counts rows (not 1)
check("K15", 'Post:values("title"):annotate { n = quay.count(nil, { distinct = true }) }:order_by("title"):first().n', "2")
-- K16 aggregate(): count with distinct over a to-many path is 0 on an empty
--    set (not nil)
check("K16", 'tostring(Post:filter { title = "none" }:aggregate { n = quay.count("tags", { distinct = true }) }.n)', "0")
-- K17 SQLite: count() of groups ordered by an aggregate holding a distinct
--    count over a to-many path, on a set with nested conditions: the set's
--    query is written again inside the ORDER BY's subquery, deeper than
--    SQLite's parser takes ("parser stack overflow")
check("K17", 'Post:where_doesnt_have("editor", { edited__children__tags__name__contains = "a", quay.any { { notes = 3 }, { name__gte = "a", quay.any { { id__not_in = {} }, { edited__children__views__ne = 7, follows__profile__id__lt = 5 } } } } }):values("title"):annotate { n = quay.count("views") * quay.count("tags", { distinct = true }) }:order_by("-n"):count()',
  "2")

-- K18 SQLite: a value inside JSON compared with a boolean or a number
--    matched the other type too (json_extract gives 1 / 0 for true /
--    false): data__v = 1 held for { v = true }, data__v = true for { v = 1 }
if not only or only == "K18" then
  Doc:create { data = { v = true } }
  Doc:create { data = { v = 1 } }
  Doc:create { data = { v = false } }
end
check("K18", 'table.concat(Doc:filter { data__v = 1 }:order_by("id"):pluck("id"), ",")', "2")
check("K18", 'table.concat(Doc:filter { data__v = true }:order_by("id"):pluck("id"), ",")', "1")
check("K18", 'table.concat(Doc:filter { data__v__in = { 0, false } }:order_by("id"):pluck("id"), ",")', "3")
check("K18", 'table.concat(Doc:exclude { data__v = true }:order_by("id"):pluck("id"), ",")', "2,3")

if only then
  db:close()
  os.exit(fails == 0 and 0 or 1)
end
print(("known mismatches: %d failing"):format(fails))
db:close()
os.exit(fails == 0 and 0 or 1)
