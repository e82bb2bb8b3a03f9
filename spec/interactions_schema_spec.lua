-- Schema evolution on databases full of data (reference.md "Schema
-- evolution", "Schema", docs/migrations.md), as an application that ships
-- for years meets it: migrate over thousands of rows and soft-deleted ones,
-- uuid keys, json / decimal / date values, join tables and through models,
-- self references, composite indexes and unique_together over duplicates,
-- renames, NULL / NOT NULL, CHECK constraints over rows that break them,
-- the fixpoint and its zero statements, schema_diff / describe against what
-- migrate does, migrate in and out of a transaction, a migration failing
-- half way, indexes and foreign keys through a SQLite rebuild read from the
-- catalogs by hand, and `quay inspect` round-tripping a migrated schema.
-- Each test plays two (or more) versions of an application against one
-- database (helper.shared_url).  Runs on both backends.
local helper = require("spec.helper")
local quay = helper.quay

-- Open url and declare the models of one version of the application.
local function version(url, declare)
  local db = quay.open(url)
  local M = declare(db) or {}
  return db, M
end

-- The live schema and every row, as one string: columns, indexes by
-- columns and uniqueness, foreign keys, CHECK constraints, then the rows.
local function snapshot(db)
  local parts = {}
  for _, t in ipairs(db:inspect().tables) do
    local cols, cnames = {}, {}
    for _, c in ipairs(t.columns) do
      cols[#cols + 1] = ("%s %s%s%s%s"):format(c.name, c.type:lower(),
        c.null and " null" or "", c.default and (" =" .. c.default) or "",
        c.primary_key and " pk" or "")
      cnames[#cnames + 1] = '"' .. c.name .. '"'
    end
    local idx = {}
    for _, x in ipairs(t.indexes) do
      idx[#idx + 1] = (x.unique and "u(" or "(") .. table.concat(x.columns, ",") .. ")"
    end
    table.sort(idx)
    local fks = {}
    for _, f in ipairs(t.foreign_keys) do
      fks[#fks + 1] = table.concat(f.columns, ",") .. ">" .. f.table .. "("
        .. table.concat(f.to, ",") .. ")" .. tostring(f.on_update)
    end
    table.sort(fks)
    local checks = {}
    for _, c in ipairs(t.checks) do checks[#checks + 1] = c end
    table.sort(checks)
    parts[#parts + 1] = t.name .. "[" .. table.concat(cols, "; ") .. "] "
      .. table.concat(idx, " ") .. " " .. table.concat(fks, " ") .. " "
      .. table.concat(checks, " ")
    for _, r in ipairs(db:rows(('SELECT %s FROM "%s" ORDER BY 1'):format(
        table.concat(cnames, ", "), t.name))) do
      local cells = {}
      for _, c in ipairs(t.columns) do cells[#cells + 1] = tostring(r[c.name]) end
      parts[#parts + 1] = "  " .. table.concat(cells, "|")
    end
  end
  return table.concat(parts, "\n")
end

local function ops(steps)
  local t = {}
  for _, s in ipairs(steps) do t[#t + 1] = s.op .. ":" .. tostring(s.table) .. "." .. tostring(s.column) end
  return table.concat(t, " ")
end

local function table_of(db, name)
  for _, t in ipairs(db:inspect().tables) do
    if t.name == name then return t end
  end
end

-- The statements that change something (DDL or rows), of a list of SQL.
local function writes(list)
  local out = {}
  for _, sql in ipairs(list) do
    local verb = sql:match("^%s*(%a+)")
    verb = verb and verb:upper()
    if verb ~= "SELECT" and verb ~= "PRAGMA" and verb ~= "WITH" and verb ~= "BEGIN"
        and verb ~= "COMMIT" and verb ~= "ROLLBACK" and verb ~= "SAVEPOINT"
        and verb ~= "RELEASE" and verb ~= "SET" and verb ~= "SHOW" then
      out[#out + 1] = sql
    end
  end
  return out
end

-- Indexes of a table from the catalog, by hand: a sorted list of
-- "u(a,b)" / "(a,b)" (the primary key's own index left out).
local function catalog_indexes(db, tname)
  local out = {}
  if helper.is_pg then
    for _, r in ipairs(db:rows([[
        SELECT i.indisunique AS u,
               (SELECT string_agg(a.attname, ',' ORDER BY k.n)
                  FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS cols
          FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relname = ? AND NOT i.indisprimary]], { tname })) do
      out[#out + 1] = (r.u and "u(" or "(") .. r.cols .. ")"
    end
  else
    for _, r in ipairs(db:rows(("PRAGMA index_list(%q)"):format(tname))) do
      if r.origin ~= "pk" then
        local cols = {}
        for _, c in ipairs(db:rows(("PRAGMA index_info(%q)"):format(r.name))) do
          cols[#cols + 1] = c.name
        end
        out[#out + 1] = (r.unique == 1 and "u(" or "(") .. table.concat(cols, ",") .. ")"
      end
    end
  end
  table.sort(out)
  return out
end

-- Foreign keys of a table from the catalog, by hand: a sorted list of
-- "col>table(col)".
local function catalog_fks(db, tname)
  local out = {}
  if helper.is_pg then
    for _, r in ipairs(db:rows([[
        SELECT a.attname AS col, ft.relname AS ftab, fa.attname AS fcol
          FROM pg_constraint k
          JOIN pg_class t ON t.oid = k.conrelid
          JOIN pg_class ft ON ft.oid = k.confrelid
          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
          JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1]
         WHERE k.contype = 'f' AND t.relname = ?]], { tname })) do
      out[#out + 1] = r.col .. ">" .. r.ftab .. "(" .. r.fcol .. ")"
    end
  else
    for _, r in ipairs(db:rows(("PRAGMA foreign_key_list(%q)"):format(tname))) do
      out[#out + 1] = r.from .. ">" .. r.table .. "(" .. r.to .. ")"
    end
  end
  table.sort(out)
  return out
end

local function rebuilt(steps, tname)
  for _, s in ipairs(steps) do
    if s.table == tname and s.rebuild then return true end
  end
  return false
end

describe("schema evolution on databases full of data", function()
  after_each(helper.remove_files)

  it("migrates a table of thousands of rows, soft-deleted ones included, through a rebuild", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Item = db:model("Item", { n = quay.integer(), label = quay.string { max = 20 },
                                         soft_delete = true }) }
    end)
    db1:create_tables()
    local rows = {}
    for i = 1, 3000 do rows[i] = { n = i, label = "l" .. i } end
    M1.Item:bulk_create(rows)
    M1.Item:filter { n__lte = 700 }:delete()                     -- soft deletes
    M1.Item:filter { n__gt = 2990 }:delete { hard = true }       -- real ones
    assert.equal(2290, M1.Item:count())
    db1:close()
    local db, M = version(url, function(db)
      return { Item = db:model("Item", {
        n = quay.number(),                                       -- integer -> number: rebuild
        label = quay.string { max = 40 },
        note = quay.text { default = "" },
        soft_delete = true,
        indexes = { { "label", "n" } } }) }
    end)
    local steps = db:migrate()
    if not helper.is_pg then assert.is_true(rebuilt(steps, "items")) end
    assert.same({}, db:schema_diff())
    assert.equal(2290, M.Item:count())
    assert.equal(700, M.Item:only_deleted():count())
    assert.equal(2990, M.Item:with_deleted():count())
    assert.equal(701.0, M.Item:query():order_by("n"):first().n)
    assert.equal(2290 * (701 + 2990) / 2, M.Item:aggregate { s = quay.sum("n") }.s)
    local r = M.Item:only_deleted():order_by("n"):first()
    assert.equal("l1", r.label)
    assert.truthy(r.deleted_at:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"))
    r:restore()
    assert.equal(2291, M.Item:count())
    assert.same({ "(label,n)" }, catalog_indexes(db, "items"))
    -- the id of a deleted row is never handed out again
    assert.equal(3001, M.Item:create { n = 1, label = "x" }.id)
    db:close()
  end)

  it("adds soft_delete to a model with rows: none of them reads as deleted", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Item = db:model("Item", { n = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 50 do M1.Item:create { n = i } end
    db1:close()
    local db, M = version(url, function(db)
      return { Item = db:model("Item", { n = quay.integer(), soft_delete = true }) }
    end)
    local steps = db:migrate()
    assert.equal("add_column:items.deleted_at", ops(steps))
    assert.equal(50, M.Item:count())
    assert.equal(0, M.Item:only_deleted():count())
    M.Item:get { n = 3 }:delete()
    assert.equal(49, M.Item:count())
    db:close()
    -- and removing soft_delete again is a drop (allow_drop), after which
    -- the marked row is an ordinary row
    db, M = version(url, function(db)
      return { Item = db:model("Item", { n = quay.integer() }) }
    end)
    helper.mentions(helper.raises("migration", db.migrate, db), "deleted_at", "allow_drop")
    db:migrate { allow_drop = true }
    assert.equal(50, M.Item:count())
    db:close()
  end)

  it("keeps uuid primary keys and the rows referring to them through a rebuild of both tables", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      local M = {}
      M.Account = db:model("Account", { id = quay.uuid { primary_key = true },
                                        name = quay.string { max = 10 } })
      M.Entry = db:model("Entry", {
        id = quay.uuid { primary_key = true },
        amount = quay.integer(),
        account = quay.belongs_to("Account", { on_delete = quay.CASCADE, related_name = "entries" }) })
      return M
    end)
    db1:create_tables()
    local ids = {}
    for i = 1, 20 do
      local a = M1.Account:create { name = "a" .. i }
      ids[i] = a.id
      for k = 1, 5 do M1.Entry:create { amount = k, account = a } end
    end
    db1:close()
    local db, M = version(url, function(db)
      local M = {}
      M.Account = db:model("Account", { id = quay.uuid { primary_key = true },
                                        name = quay.string { max = 30 },       -- widened
                                        active = quay.boolean { default = true } })
      M.Entry = db:model("Entry", {
        id = quay.uuid { primary_key = true },
        amount = quay.decimal { digits = 12, places = 2 },                   -- integer -> decimal
        account = quay.belongs_to("Account", { on_delete = quay.CASCADE, related_name = "entries" }) })
      return M
    end)
    db:migrate()
    assert.same({}, db:schema_diff())
    local a = M.Account:find(ids[7])
    assert.equal("a7", a.name)
    assert.is_true(a.active)
    assert.equal(5, a.entries:count())
    assert.equal("15.00", a.entries:aggregate { s = quay.sum("amount") }.s)
    assert.same({ "account_id>accounts(id)" }, catalog_fks(db, "entrys"))
    helper.raises("integrity", db.execute, db,
      "INSERT INTO entrys (id, amount, account_id) VALUES (?, 1, ?)",
      { "0190a3f2-1b2c-7d4e-8f50-0123456789ab", "0190a3f2-1b2c-7d4e-8f50-000000000000" })
    a:delete()
    assert.equal(95, M.Entry:count())
    db:close()
  end)

  it("keeps json documents, exact decimals and dates through a rebuild, and converts them on retyping", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Doc = db:model("Doc", {
        data = quay.json { null = true },
        price = quay.decimal { digits = 10, places = 2 },
        day = quay.date(),
        n = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 200 do
      M1.Doc:create { data = { k = i, tags = { "a", "b" }, deep = { x = i % 3 == 0 } },
                      price = ("%d.%02d"):format(i * 10003, i % 100), day = ("2024-02-%02d"):format(i % 29 + 1),
                      n = i }
    end
    M1.Doc:create { data = quay.null, price = "0.01", day = "2000-01-01", n = 0 }
    db1:close()
    local db, M = version(url, function(db)
      return { Doc = db:model("Doc", {
        data = quay.json { null = true },
        price = quay.decimal { digits = 14, places = 4 },              -- more places
        day = quay.datetime(),                                         -- date -> datetime
        n = quay.number() }) }
    end)
    helper.raises("migration", db.migrate, db)                         -- date -> datetime narrows
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    assert.equal(201, M.Doc:count())
    local d = M.Doc:get { n = 60 }
    assert.equal(60, d.data.k)
    assert.is_true(d.data.deep.x)
    assert.equal("b", d.data.tags[2])
    assert.equal("600180.6000", d.price)
    assert.equal("2024-02-03 00:00:00", d.day)
    assert.equal(1, M.Doc:filter { data__deep__x = true, n__lt = 4 }:count())
    assert.equal(200, M.Doc:filter { data__has_key = "tags" }:count())
    local cents = 1                                                    -- the "0.01" row
    for i = 1, 200 do cents = cents + i * 10003 * 100 + i % 100 end
    assert.equal(("%d.%02d00"):format(cents // 100, cents % 100),
      M.Doc:aggregate { s = quay.sum("price") }.s)
    db:close()
  end)

  it("keeps the pairs of an automatic join table and the rows of a custom through model", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      local M = {}
      M.Student = db:model("Student", { name = quay.string { max = 20 },
        courses = quay.many_to_many("Course", { through = "Enrolment", related_name = "students" }),
        clubs = quay.many_to_many("Club", { related_name = "members" }) })
      M.Course = db:model("Course", { title = quay.string() })
      M.Club = db:model("Club", { name = quay.string() })
      M.Enrolment = db:model("Enrolment", {
        student = quay.belongs_to("Student", { on_delete = quay.CASCADE }),
        course = quay.belongs_to("Course", { on_delete = quay.CASCADE }),
        unique_together = { { "student", "course" } } })
      return M
    end)
    db1:create_tables()
    local courses, clubs = {}, {}
    for i = 1, 5 do
      courses[i] = M1.Course:create { title = "c" .. i }
      clubs[i] = M1.Club:create { name = "k" .. i }
    end
    for i = 1, 40 do
      local s = M1.Student:create { name = "s" .. i }
      s.courses:add(courses[i % 5 + 1], courses[(i + 1) % 5 + 1])
      s.clubs:add(clubs[i % 5 + 1])
    end
    db1:close()
    local db, M = version(url, function(db)
      local M = {}
      M.Student = db:model("Student", { name = quay.text(),                         -- rebuild
        courses = quay.many_to_many("Course", { through = "Enrolment", related_name = "students" }),
        clubs = quay.many_to_many("Club", { related_name = "members" }) })
      M.Course = db:model("Course", { title = quay.text() })                       -- rebuild
      M.Club = db:model("Club", { name = quay.text() })                            -- rebuild
      M.Enrolment = db:model("Enrolment", {
        student = quay.belongs_to("Student", { on_delete = quay.CASCADE }),
        course = quay.belongs_to("Course", { on_delete = quay.CASCADE }),
        grade = quay.integer { default = 0, min = 0, max = 100 },                   -- new, with a CHECK
        unique_together = { { "student", "course" } } })
      return M
    end)
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.equal(80, M.Enrolment:count())
    assert.equal(40, db:rows("SELECT COUNT(*) AS n FROM students_clubs")[1].n)
    local s = M.Student:get { name = "s7" }
    assert.equal(2, s.courses:count())
    assert.equal("k3", s.clubs:first().name)
    assert.equal(16, M.Course:get { title = "c3" }.students:count())
    assert.equal(8, M.Club:get { name = "k3" }.members:count())
    helper.raises("integrity", db.execute, db, "UPDATE enrolments SET grade = 101")
    helper.raises("integrity", db.execute, db,
      "INSERT INTO students_clubs (student_id, club_id) VALUES (?, ?)", { s.id, s.clubs:first().id })
    assert.same({ "club_id>clubs(id)", "student_id>students(id)" }, catalog_fks(db, "students_clubs"))
    assert.same({ "course_id>courses(id)", "student_id>students(id)" }, catalog_fks(db, "enrolments"))
    -- cascades reach the join rows and the through rows
    s:delete()
    assert.equal(78, M.Enrolment:count())
    assert.equal(39, db:rows("SELECT COUNT(*) AS n FROM students_clubs")[1].n)
    db:close()
  end)

  it("keeps a self reference through a rebuild: parents, the foreign key and its cascade", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Node = db:model("Node", { name = quay.string { max = 10 },
        parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                           related_name = "children" }) }) }
    end)
    db1:create_tables()
    local root = M1.Node:create { name = "root" }
    for i = 1, 10 do
      local c = M1.Node:create { name = "c" .. i, parent = root }
      for k = 1, 10 do M1.Node:create { name = "g" .. i .. "_" .. k, parent = c } end
    end
    db1:close()
    local db, M = version(url, function(db)
      return { Node = db:model("Node", { name = quay.string { max = 12 },            -- rebuild
        depth = quay.integer { default = 0 },
        parent = quay.belongs_to("self", { null = true, on_delete = quay.CASCADE,
                                           related_name = "children" }),
        indexes = { { "parent", "name" } } }) }
    end)
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.equal(111, M.Node:count())
    assert.equal(10, M.Node:get { name = "c4" }.children:count())
    assert.equal("c4", M.Node:get { name = "g4_7" }.parent.name)
    assert.equal(100, M.Node:filter { parent__parent__name = "root" }:count())
    assert.same({ "parent_id>nodes(id)" }, catalog_fks(db, "nodes"))
    assert.same({ "(parent_id)", "(parent_id,name)" }, catalog_indexes(db, "nodes"))
    helper.raises("integrity", db.execute, db, "UPDATE nodes SET parent_id = 9999 WHERE name = 'c1'")
    M.Node:get { name = "c2" }:delete()
    assert.equal(100, M.Node:count())
    db:close()
  end)

  it("adds a composite index over rows, and unique_together over duplicates fails with integrity changing nothing", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Visit = db:model("Visit", { page = quay.string(), day = quay.date(),
                                           n = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 500 do
      M1.Visit:create { page = "p" .. (i % 7), day = ("2024-01-%02d"):format(i % 28 + 1), n = i }
    end
    db1:close()
    -- an index over the same rows is no constraint: it is made
    local db = version(url, function(db)
      db:model("Visit", { page = quay.string(), day = quay.date(), n = quay.integer(),
                          indexes = { { "day", "page" } } })
    end)
    local steps = db:migrate()
    assert.equal(1, #steps)
    assert.equal("create_index", steps[1].op)
    assert.same({ "(day,page)" }, catalog_indexes(db, "visits"))
    db:close()
    -- unique_together over pairs that repeat: integrity, and nothing moves,
    -- neither the index of the first step nor the new column
    db = version(url, function(db)
      db:model("Visit", { page = quay.string(), day = quay.date(), n = quay.integer(),
                          extra = quay.text { null = true },
                          unique_together = { { "page", "day" } } })
    end)
    local before = snapshot(db)
    local nPlan = #db:schema_diff()
    assert.equal(3, nPlan)                     -- the column, the index, the pair
    helper.raises("integrity", db.migrate, db)
    assert.equal(before, snapshot(db))
    assert.equal(nPlan, #db:schema_diff())
    db:close()
  end)

  it("renames a model that is a relation target, a join table side and self-referenced, keeping every link", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      local M = {}
      M.Person = db:model("Person", { name = quay.string(),
        boss = quay.belongs_to("self", { null = true, on_delete = quay.SET_NULL, related_name = "reports" }),
        tags = quay.many_to_many("Tag", { related_name = "people" }) })
      M.Tag = db:model("Tag", { name = quay.string { unique = true } })
      M.Note = db:model("Note", { body = quay.text(),
        person = quay.belongs_to("Person", { on_delete = quay.CASCADE, related_name = "notes" }) })
      return M
    end)
    db1:create_tables()
    local t = M1.Tag:create { name = "x" }
    local boss = M1.Person:create { name = "boss" }
    for i = 1, 30 do
      local p = M1.Person:create { name = "p" .. i, boss = boss }
      p.tags:add(t)
      M1.Note:create { body = "n" .. i, person = p }
    end
    db1:close()
    local db, M = version(url, function(db)
      local M = {}
      M.Member = db:model("Member", { renamed_from = "Person",
        full_name = quay.string { renamed_from = "name" },
        boss = quay.belongs_to("self", { null = true, on_delete = quay.SET_NULL, related_name = "reports" }),
        tags = quay.many_to_many("Tag", { related_name = "members" }) })
      M.Tag = db:model("Tag", { name = quay.string { unique = true } })
      M.Note = db:model("Note", { body = quay.text(),
        member = quay.belongs_to("Member", { on_delete = quay.CASCADE, related_name = "notes",
                                             renamed_from = "person" }) })
      return M
    end)
    local plan = db:schema_diff()
    for _, s in ipairs(plan) do
      assert.is_nil(s.op == "drop_table" or s.op == "drop_column" or nil, ops(plan))
    end
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.is_nil(table_of(db, "persons"))
    assert.equal(31, M.Member:count())
    local b = M.Member:get { full_name = "boss" }
    assert.equal(30, b.reports:count())
    assert.equal(30, M.Tag:get { name = "x" }.members:count())
    assert.equal(30, M.Note:filter { member__boss = b }:count())
    assert.same({ "boss_id>members(id)" }, catalog_fks(db, "members"))
    assert.same({ "member_id>members(id)" }, catalog_fks(db, "notes"))
    M.Member:get { full_name = "p3" }:delete()
    assert.equal(29, M.Note:count())
    db:close()
  end)

  it("moves a field between NULL and NOT NULL on rows holding NULLs, with and without a default", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { T = db:model("T", { s = quay.string { null = true }, k = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 100 do M1.T:create { s = i % 4 == 0 and quay.null or ("v" .. i), k = i } end
    db1:close()
    for _, field in ipairs { quay.string(), quay.string { default = "z" } } do
      local db = version(url, function(db) db:model("T", { s = field, k = quay.integer() }) end)
      local before = snapshot(db)
      -- NULL -> NOT NULL narrows; with allow_drop the NULLs still stand in the way
      helper.mentions(helper.raises("migration", db.migrate, db), "allow_drop")
      helper.mentions(helper.raises("migration", db.migrate, db, { allow_drop = true }), "ts.s", "NULL")
      assert.equal(before, snapshot(db))
      db:close()
    end
    -- once a data migration filled them, it runs
    local db = version(url, function(db)
      db:model("T", { s = quay.string { default = "z" }, k = quay.integer() })
    end)
    db:execute("UPDATE ts SET s = 'filled' WHERE s IS NULL")
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    assert.equal(25, db:rows("SELECT COUNT(*) AS n FROM ts WHERE s = 'filled'")[1].n)
    helper.raises("integrity", db.execute, db, "INSERT INTO ts (s, k) VALUES (NULL, 1)")
    db:execute("INSERT INTO ts (k) VALUES (1)")                       -- the default
    assert.equal(1, db:rows("SELECT COUNT(*) AS n FROM ts WHERE s = 'z'")[1].n)
    db:close()
    -- and back to nullable: a widening, no allow_drop, every value kept
    local M
    db, M = version(url, function(db)
      return { T = db:model("T", { s = quay.string { null = true }, k = quay.integer() }) }
    end)
    local steps = db:migrate()
    assert.equal(1, #steps)
    assert.is_nil(steps[1].destructive)
    assert.equal(101, M.T:count())
    M.T:create { s = quay.null, k = 0 }
    assert.equal(1, M.T:filter { s__isnull = true }:count())
    db:close()
  end)

  it("CHECK constraints of choices, min and max added over rows that break them: integrity, nothing changes", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { T = db:model("T", { state = quay.string(), n = quay.integer(), x = quay.number(),
                                   d = quay.decimal { digits = 6, places = 2 } }) }
    end)
    db1:create_tables()
    for i = 1, 300 do
      M1.T:create { state = i == 300 and "gone" or "on", n = i == 299 and -1 or i,
                    x = i == 298 and 10.5 or 1.0, d = i == 297 and "100.01" or "1.00" }
    end
    db1:close()
    local fields = {
      { state = quay.string { choices = { "on", "off" } } },
      { n = quay.integer { min = 0 } },
      { x = quay.number { max = 10 } },
      { d = quay.decimal { digits = 6, places = 2, max = 100 } },
    }
    for _, change in ipairs(fields) do
      local db = version(url, function(db)
        local f = { state = quay.string(), n = quay.integer(), x = quay.number(),
                    d = quay.decimal { digits = 6, places = 2 },
                    added = quay.integer { default = 1 } }                -- a step before it
        for k, v in pairs(change) do f[k] = v end
        db:model("T", f)
      end)
      local before = snapshot(db)
      helper.raises("integrity", db.migrate, db)
      assert.equal(before, snapshot(db))
      db:close()
    end
    -- once the rows are mended, all four checks go in and hold
    local db = version(url, function(db)
      db:model("T", { state = quay.string { choices = { "on", "off" } }, n = quay.integer { min = 0 },
                      x = quay.number { max = 10 }, d = quay.decimal { digits = 6, places = 2, max = 100 } })
    end)
    db:execute("UPDATE ts SET state = 'off' WHERE state = 'gone'")
    db:execute("UPDATE ts SET n = 0 WHERE n < 0")
    db:execute("UPDATE ts SET x = 10 WHERE x > 10")
    db:execute("DELETE FROM ts WHERE id = 297")
    db:migrate()
    assert.same({}, db:schema_diff())
    assert.equal(4, #table_of(db, "ts").checks)
    helper.raises("integrity", db.execute, db, "UPDATE ts SET n = -2 WHERE id = 1")
    helper.raises("integrity", db.execute, db, "UPDATE ts SET state = 'x' WHERE id = 1")
    db:close()
  end)

  -- A schema with most of what a migration meets, as version 2 of an
  -- application whose version 1 is v1_rich.
  local function v1_rich(db)
    local M = {}
    M.Owner = db:model("Owner", { id = quay.uuid { primary_key = true }, name = quay.string { max = 20 },
                                  soft_delete = true })
    M.Item = db:model("Item", {
      code = quay.string { max = 10, unique = true },
      price = quay.decimal { digits = 8, places = 2 },
      day = quay.date { null = true },
      data = quay.json { null = true },
      owner = quay.belongs_to("Owner", { on_delete = quay.CASCADE, related_name = "items" }),
      parent = quay.belongs_to("self", { null = true, on_delete = quay.SET_NULL, related_name = "parts" }),
      labels = quay.many_to_many("Label", { related_name = "items" }),
      indexes = { { "owner", "day" } } })
    M.Label = db:model("Label", { name = quay.string { unique = true } })
    return M
  end
  local function v2_rich(db, extra)
    local M = {}
    M.Owner = db:model("Owner", { id = quay.uuid { primary_key = true }, name = quay.string { max = 40 },
                                  soft_delete = true })
    local f = {
      code = quay.string { max = 12, unique = true },
      price = quay.decimal { digits = 10, places = 2 },
      day = quay.date { null = true },
      data = quay.json { null = true },
      qty = quay.integer { default = 1, min = 0 },
      owner = quay.belongs_to("Owner", { on_delete = quay.CASCADE, related_name = "items" }),
      parent = quay.belongs_to("self", { null = true, on_delete = quay.SET_NULL, related_name = "parts" }),
      labels = quay.many_to_many("Label", { related_name = "items" }),
      indexes = { { "owner", "day" }, { "price", "code" } },
      unique_together = { { "owner", "code" } } }
    for k, v in pairs(extra or {}) do f[k] = v end
    M.Item = db:model("Item", f)
    M.Label = db:model("Label", { name = quay.text { unique = true } })
    return M
  end
  local function fill_rich(M, n)
    local labels = {}
    for i = 1, 4 do labels[i] = M.Label:create { name = "l" .. i } end
    local owners = {}
    for i = 1, 5 do owners[i] = M.Owner:create { name = "o" .. i } end
    local prev
    for i = 1, n do
      local it = M.Item:create { code = "c" .. i, price = ("%d.%02d"):format(i, i % 100),
        day = i % 3 == 0 and quay.null or ("2024-03-%02d"):format(i % 28 + 1),
        data = { i = i }, owner = owners[i % 5 + 1], parent = prev }
      it.labels:add(labels[i % 4 + 1])
      prev = it
    end
    owners[5]:delete()                                           -- soft
  end

  it("runs migrate twice: the second finds nothing and sends no statement that writes", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, v1_rich)
    db1:create_tables()
    fill_rich(M1, 200)
    db1:close()
    local db = version(url, v2_rich)
    assert.is_true(#db:migrate() > 0)
    local steps
    local sent = helper.statements(db, function() steps = db:migrate() end)
    assert.same({}, steps)
    assert.same({}, writes(sent))
    db:close()
    -- a new handle on the migrated database: nothing either
    db = version(url, v2_rich)
    sent = helper.statements(db, function() steps = db:migrate() end)
    assert.same({}, steps)
    assert.same({}, writes(sent))
    db:close()
  end)

  it("schema_diff, a dry run and migrate return the same steps, and describe agrees with the result", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, v1_rich)
    db1:create_tables()
    fill_rich(M1, 50)
    db1:close()
    local db = version(url, v2_rich)
    local function shape(steps)
      local out = {}
      for i, s in ipairs(steps) do
        out[i] = { op = s.op, table = s.table, column = s.column, model = s.model, sql = s.sql,
                   what = s.what, rebuild = s.rebuild, destructive = s.destructive }
      end
      return out
    end
    local plan = shape(db:schema_diff())
    assert.same(plan, shape(db:migrate { dry_run = true }))
    local sent
    local done
    sent = helper.statements(db, function() done = db:migrate() end)
    assert.same(plan, shape(done))
    -- every statement of the plan was sent, in order
    local k = 1
    for _, s in ipairs(plan) do
      for _, sql in ipairs(s.sql) do
        while k <= #sent and sent[k] ~= sql do k = k + 1 end
        assert.is_true(k <= #sent, "not sent: " .. sql)
      end
    end
    -- describe's fields are the live columns, with their NULL and keys
    local live = {}
    for _, t in ipairs(db:inspect().tables) do live[t.name] = t end
    for name, d in pairs(db:describe()) do
      local t = assert(live[d.table], name)
      local cols = {}
      for _, c in ipairs(t.columns) do cols[c.name] = c end
      for _, f in ipairs(d.fields) do
        local c = assert(cols[f.column], name .. "." .. f.name)
        assert.equal(not not f.null, not not c.null, name .. "." .. f.name)
        assert.equal(not not f.primary_key, not not c.primary_key, name .. "." .. f.name)
      end
      for _, r in ipairs(d.relations) do
        if r.kind == "belongs_to" then assert.truthy(cols[r.column], name .. "." .. r.name) end
        if r.kind == "many_to_many" then assert.truthy(live[r.through], r.through) end
      end
    end
    assert.truthy(live.items_labels)
    db:close()
  end)

  it("inside db:transaction a migration is undone with it; outside, it commits on its own", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { T = db:model("T", { a = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 100 do M1.T:create { a = i } end
    db1:close()
    local declare = function(db)
      return { T = db:model("T", { a = quay.integer(), b = quay.string { default = "x", index = true } }),
               U = db:model("U", { t = quay.belongs_to("T", { on_delete = quay.CASCADE }) }) }
    end
    local db, M = version(url, declare)
    local before = snapshot(db)
    local nPlan = #db:schema_diff()
    local boom = {}
    local ok, err = pcall(db.transaction, db, function()
      assert.equal(nPlan, #db:migrate())                 -- a column, a table, indexes
      M.U:create { t = M.T:first() }
      assert.equal("x", M.T:first().b)
      error(boom)
    end)
    assert.is_false(ok)
    assert.equal(boom, err)
    assert.equal(before, snapshot(db))
    assert.equal(nPlan, #db:schema_diff())
    -- in a transaction that commits, it stays
    db:transaction(function() db:migrate() end)
    assert.same({}, db:schema_diff())
    db:close()
    db, M = version(url, declare)
    assert.same({}, db:schema_diff())
    assert.equal(100, M.T:filter { b = "x" }:count())
    db:close()
  end)

  it("a migration failing at its last step leaves schema and rows exactly as before", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, v1_rich)
    db1:create_tables()
    fill_rich(M1, 300)
    -- the prices below 5 break the new min of version 2, whose CHECK is
    -- among the last steps (after the rebuilds, columns and indexes)
    db1:close()
    local db = version(url, function(db)
      return v2_rich(db, { price = quay.decimal { digits = 10, places = 2, min = 5 } })
    end)
    local plan = db:schema_diff()
    assert.is_true(#plan >= 8, ops(plan))
    local before = snapshot(db)
    helper.raises("integrity", db.migrate, db)
    assert.equal(before, snapshot(db))
    assert.same(#plan, #db:schema_diff())
    if not helper.is_pg then
      assert.same({}, db:rows("SELECT name FROM sqlite_master WHERE name LIKE 'quay_new_%'"))
      assert.equal(1, db:rows("PRAGMA foreign_keys")[1].foreign_keys)
    end
    -- the models of version 1 still work on it
    db:close()
    local M
    db, M = version(url, v1_rich)
    assert.same({}, db:schema_diff())
    assert.equal(300, M.Item:count())
    assert.equal(60, M.Owner:only_deleted():first().items:count())
    db:close()
  end)

  it("keeps indexes, unique constraints and foreign keys through a table rebuild, read from the catalog", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, v1_rich)
    db1:create_tables()
    fill_rich(M1, 100)
    db1:close()
    local db, M = version(url, v2_rich)
    local steps = db:migrate()
    if not helper.is_pg then
      assert.is_true(rebuilt(steps, "items"))
      assert.same({ { integrity_check = "ok" } }, db:rows("PRAGMA integrity_check"))
      assert.same({}, db:rows("PRAGMA foreign_key_check"))
    end
    assert.same({ "(owner_id)", "(owner_id,day)", "(parent_id)", "(price,code)", "u(code)",
                  "u(owner_id,code)" }, catalog_indexes(db, "items"))
    assert.same({ "owner_id>owners(id)", "parent_id>items(id)" }, catalog_fks(db, "items"))
    assert.same({ "item_id>items(id)", "label_id>labels(id)" }, catalog_fks(db, "items_labels"))
    assert.same({ "(label_id)", "u(item_id,label_id)" }, catalog_indexes(db, "items_labels"))
    assert.same({ "u(name)" }, catalog_indexes(db, "labels"))
    -- they hold: a duplicate code, a dangling owner, a dangling join row
    local one = M.Item:first()
    helper.raises("integrity", db.execute, db, "UPDATE items SET code = 'c2' WHERE code = 'c1'")
    helper.raises("integrity", db.execute, db, "UPDATE items SET owner_id = ? WHERE id = ?",
      { "0190a3f2-1b2c-7d4e-8f50-000000000000", one.id })
    helper.raises("integrity", db.execute, db,
      "INSERT INTO items_labels (item_id, label_id) VALUES (99999, 1)")
    helper.raises("integrity", db.execute, db, "UPDATE items SET qty = -1")
    assert.equal(100, M.Item:count())
    assert.equal(25, M.Label:get { name = "l2" }.items:count())
    db:close()
  end)

  it("quay inspect prints a migrated schema back as models that diff empty and relate", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, v1_rich)
    db1:create_tables()
    fill_rich(M1, 40)
    db1:close()
    local db = version(url, v2_rich)
    db:migrate()
    db:close()
    local status, script, err = helper.quay_cmd("inspect", url)
    assert.equal(0, status, err)
    local declare = assert(load(script, "=inspected", "t"))()
    local M
    db, M = version(url, declare)
    local steps = db:schema_diff()
    assert.same({}, steps, ops(steps) .. "\n" .. script)
    assert.is_truthy(M.Item and M.Owner and M.Label and M.ItemsLabel, script)
    -- the same rows through the printed models: keys, self reference, json,
    -- decimals, the choices of the CHECK, the join table as a through model
    assert.equal(40, M.Item:count())
    local it = M.Item:get { code = "c10" }
    assert.equal("c9", it.parent.code)
    assert.equal(10, it.data.i)
    assert.equal("10.10", it.price)
    assert.equal(1, it.qty)
    helper.raises("validation", M.Item.create, M.Item, { code = "n", price = "1", qty = -1,
                                                        owner = it.owner })
    assert.equal(10, M.ItemsLabel:filter { label__name = "l2" }:count())
    -- soft_delete is a plain nullable datetime to inspect
    assert.equal(1, M.Owner:filter { deleted_at__isnull = false }:count())
    db:close()
  end)

  -- A join table keyed by its pair (PRIMARY KEY (a_id, b_id), no id), as
  -- another tool or an older version of the application made it.
  local function pair_keyed(url)
    local db = quay.open(url)
    local ID = helper.is_pg and "SERIAL PRIMARY KEY" or "INTEGER PRIMARY KEY"
    for _, sql in ipairs {
      "CREATE TABLE authors (id " .. ID .. ", name TEXT NOT NULL)",
      "CREATE TABLE books (id " .. ID .. ", title TEXT NOT NULL)",
      "CREATE TABLE author_books (book_id INTEGER NOT NULL REFERENCES books (id), "
        .. "author_id INTEGER NOT NULL REFERENCES authors (id), PRIMARY KEY (author_id, book_id))",
      "CREATE TABLE people (id " .. ID .. ", name TEXT NOT NULL)",
      "CREATE TABLE follows (a INTEGER NOT NULL REFERENCES people (id), "
        .. "b INTEGER NOT NULL REFERENCES people (id), PRIMARY KEY (a, b))",
      "INSERT INTO authors (name) VALUES ('ann')",
      "INSERT INTO authors (name) VALUES ('bob')",
      "INSERT INTO books (title) VALUES ('t1')",
      "INSERT INTO books (title) VALUES ('t2')",
      "INSERT INTO author_books (author_id, book_id) VALUES (1, 1)",
      "INSERT INTO author_books (author_id, book_id) VALUES (1, 2)",
      "INSERT INTO author_books (author_id, book_id) VALUES (2, 2)",
      "INSERT INTO people (name) VALUES ('p1')",
      "INSERT INTO people (name) VALUES ('p2')",
      "INSERT INTO follows (a, b) VALUES (1, 2)",
    } do db:execute(sql) end
    db:close()
  end

  it("leaves alone a join table keyed by its pair that a many_to_many names, which reads and writes it", function()
    local url = helper.shared_url()
    pair_keyed(url)
    local db, M = version(url, function(db)
      local M = {}
      M.Author = db:model("Author", { name = quay.text(),
        books = quay.many_to_many("Book", { table = "author_books", source_key = "author_id",
                                            target_key = "book_id", related_name = "authors" }) })
      M.Book = db:model("Book", { title = quay.text() })
      M.Person = db:model("Person", { table = "people", name = quay.text(),
        follows = quay.many_to_many("self", { table = "follows", source_key = "a", target_key = "b",
                                              related_name = "followers" }) })
      return M
    end)
    local steps = db:schema_diff()
    assert.same({}, steps, ops(steps))
    local before = snapshot(db)
    assert.same({}, db:migrate())
    assert.equal(before, snapshot(db))
    local ann = M.Author:get { name = "ann" }
    assert.equal(2, ann.books:count())
    assert.equal(2, M.Book:get { title = "t2" }.authors:count())
    local t3 = M.Book:create { title = "t3" }
    ann.books:add(t3)
    ann.books:remove(M.Book:get { title = "t1" })
    assert.same({ "t2", "t3" }, ann.books:order_by("title"):pluck("title"))
    helper.raises("integrity", db.execute, db,
      "INSERT INTO author_books (author_id, book_id) VALUES (?, ?)", { ann.id, t3.id })
    ann:delete()
    assert.equal(1, db:rows("SELECT COUNT(*) AS n FROM author_books")[1].n)
    local p1, p2 = M.Person:get { name = "p1" }, M.Person:get { name = "p2" }
    assert.equal(p1, p2.followers:first())
    p2.follows:add(p1)
    assert.equal(1, p1.followers:count())
    db:close()
  end)

  it("quay inspect declares a join table keyed by its pair as the many_to_many of the model it starts from", function()
    local url = helper.shared_url()
    pair_keyed(url)
    local status, script, err = helper.quay_cmd("inspect", url)
    assert.equal(0, status, err)
    local declare = assert(load(script, "=inspected", "t"))()
    local db, M = version(url, declare)
    local steps = db:schema_diff()
    assert.same({}, steps, ops(steps) .. "\n" .. script)
    assert.is_nil(M.AuthorBook)
    assert.is_nil(M.Follow)
    local d = db:describe()
    local function m2m(model, target)
      for _, r in ipairs(d[model].relations) do
        if r.kind == "many_to_many" and r.target == target then return r end
      end
    end
    local ab, pp = m2m("Author", "Book"), m2m("People", "People")
    assert.is_truthy(ab, script)
    assert.is_truthy(pp, script)
    assert.equal("author_books", ab.through)
    assert.equal("follows", pp.through)
    -- the relations work both ways on the rows that were there
    local ann = M.Author:get { name = "ann" }
    assert.equal(2, ann[ab.name]:count())
    assert.equal(2, M.Author:filter { [ab.name .. "__title"] = "t2" }:count())
    local p1, p2 = M.People:get { name = "p1" }, M.People:get { name = "p2" }
    assert.equal(p2, p1[pp.name]:first())
    p2[pp.name]:add(p1)
    assert.equal(2, db:rows("SELECT COUNT(*) AS n FROM follows")[1].n)
    assert.same({}, db:migrate())
    db:close()
  end)

  it("moves a table from a two-column key to the implicit id with allow_drop, keeping its rows", function()
    local url = helper.shared_url()
    local db0 = quay.open(url)
    db0:execute("CREATE TABLE pairs (a INTEGER NOT NULL, b INTEGER NOT NULL, n INTEGER, PRIMARY KEY (a, b))")
    for i = 1, 50 do db0:execute("INSERT INTO pairs VALUES (?, ?, ?)", { i, i * 2, i * 3 }) end
    db0:close()
    local db, M = version(url, function(db)
      return { Pair = db:model("Pair", { a = quay.integer(), b = quay.integer(),
                                         n = quay.integer { null = true },
                                         unique_together = { { "a", "b" } } }) }
    end)
    local before = snapshot(db)
    helper.mentions(helper.raises("migration", db.migrate, db), "pairs.a", "allow_drop")
    assert.equal(before, snapshot(db))
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    assert.equal(50, M.Pair:count())
    assert.equal(60, M.Pair:get { a = 20 }.n)
    assert.equal("integer", math.type(M.Pair:get { a = 20 }.id))
    assert.equal(51, M.Pair:create { a = 51, b = 0 }.id)
    helper.raises("integrity", M.Pair.create, M.Pair, { a = 51, b = 0 })
    db:close()
  end)

  it("moves a table from a natural key to the implicit id with allow_drop, keeping its rows and the rows referring to it", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { Code = db:model("Code", { code = quay.string { max = 8, primary_key = true },
                                         label = quay.text() }),
               Use = db:model("Use", { code = quay.belongs_to("Code", { on_delete = quay.CASCADE,
                                                                        related_name = "uses" }) }) }
    end)
    db1:create_tables()
    for i = 1, 30 do
      local c = M1.Code:create { code = "K" .. i, label = "l" .. i }
      M1.Use:create { code = c }
    end
    db1:close()
    local db, M = version(url, function(db)
      return { Code = db:model("Code", { code = quay.string { max = 8, unique = true },
                                         label = quay.text() }),
               Use = db:model("Use", { code = quay.belongs_to("Code", { on_delete = quay.CASCADE,
                                                                        related_name = "uses",
                                                                        to_field = "code" }) }) }
    end)
    helper.raises("migration", db.migrate, db)
    db:migrate { allow_drop = true }
    assert.same({}, db:schema_diff())
    assert.equal(30, M.Code:count())
    assert.equal("l7", M.Code:get { code = "K7" }.label)
    assert.equal("l7", M.Use:filter { code__code = "K7" }:first().code.label)
    assert.equal(1, M.Code:get { code = "K9" }.uses:count())
    assert.same({ "code_id>codes(code)" }, catalog_fks(db, "uses"))
    helper.raises("integrity", db.execute, db, "INSERT INTO uses (code_id) VALUES ('nope')")
    assert.equal(31, M.Code:create { code = "K31", label = "x" }.id)
    helper.raises("integrity", M.Code.create, M.Code, { code = "K31", label = "y" })
    M.Code:get { code = "K3" }:delete()
    assert.equal(29, M.Use:count())
    db:close()
  end)

  it("refuses a NOT NULL column whose default the database cannot hold on a table with rows, saying why", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { T = db:model("T", { n = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 10 do M1.T:create { n = i } end
    db1:close()
    for _, case in ipairs {
      { field = quay.string { default = function() return "x" end }, says = "a function" },
      { field = quay.uuid { unique = true }, says = "no generated uuid" },
    } do
      local db = version(url, function(db) db:model("T", { n = quay.integer(), extra = case.field }) end)
      local before = snapshot(db)
      local err = helper.raises("migration", db.migrate, db)
      helper.mentions(err, "ts.extra", case.says, "null = true")
      assert.equal(before, snapshot(db))
      db:close()
    end
    -- nullable, it is added, and new records get the default
    local db, M = version(url, function(db)
      return { T = db:model("T", { n = quay.integer(), extra = quay.json { null = true, default = { a = 1 } } }) }
    end)
    db:migrate()
    assert.equal(10, M.T:filter { extra__isnull = true }:count())
    assert.equal(1, M.T:create { n = 11 }.extra.a)
    db:close()
  end)

  it("adds a NOT NULL json field with a default to a table with rows: every row gets it, the column keeps none", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db)
      return { T = db:model("T", { n = quay.integer() }) }
    end)
    db1:create_tables()
    for i = 1, 10 do M1.T:create { n = i } end
    db1:close()
    local db, M = version(url, function(db)
      return { T = db:model("T", { n = quay.integer(),
                                   prefs = quay.json { default = { theme = "dark", tags = { "a", "it's" } } },
                                   level = quay.json { default = 3 } }) }
    end)
    db:migrate()
    assert.equal(10, M.T:filter { prefs__theme = "dark" }:count())
    for _, v in ipairs(M.T:pluck("level")) do assert.equal(3, v) end
    assert.same({ "a", "it's" }, M.T:get { n = 4 }.prefs.tags)
    for _, r in ipairs(db:rows("SELECT prefs, level FROM ts")) do
      assert.is_not_nil(r.prefs)
      assert.equal("3", tostring(r.level))
    end
    assert.same({}, db:schema_diff())                          -- settled
    assert.equal(0, #db:migrate())
    -- the column keeps no DEFAULT: a raw insert without it is refused
    helper.raises("integrity", db.execute, db, "INSERT INTO ts (n, level) VALUES (99, '1')")
    assert.equal("dark", M.T:create { n = 11 }.prefs.theme)   -- Quay's default for new records
    db:close()
  end)

  it("a dry run inside db:transaction returns the plan of a rebuild and changes nothing, on both backends", function()
    local url = helper.shared_url()
    local db1, M1 = version(url, function(db) return { A = db:model("A", { x = quay.integer() }) } end)
    db1:create_tables()
    for i = 1, 20 do M1.A:create { x = i } end
    db1:close()
    local db = version(url, function(db) db:model("A", { x = quay.number(), y = quay.text { default = "" } }) end)
    local before = snapshot(db)
    local plan = db:schema_diff()
    local n = db:transaction(function() return #db:migrate { dry_run = true } end)
    assert.equal(#plan, n)
    assert.equal(before, snapshot(db))
    if helper.is_pg then
      db:transaction(function() db:migrate() end)
      assert.same({}, db:schema_diff())
    else
      helper.mentions(helper.raises("migration", db.transaction, db, function() db:migrate() end),
        "db:transaction")
      assert.equal(before, snapshot(db))
      db:migrate()
      assert.same({}, db:schema_diff())
    end
    db:close()
  end)
end)
