-- `quay inspect` on schemas no one here designed (reference.md "Schema
-- evolution"): the model script it prints declares models whose
-- schema_diff() against the database is empty, and whose relations work.
-- Schemas: Quay's own blog, a hand-written one (composite unique
-- constraints, self references, two foreign keys to one table, join
-- tables, a text key, odd column names, a table Quay cannot model), and the
-- tables Django's own `migrate` makes for its auth and contenttypes apps.
local helper = require("spec.helper")
local quay = helper.quay

local build = assert(os.getenv("QUAY_BUILD_DIR"), "QUAY_BUILD_DIR (spec/run_busted.sh sets it)")
local quay_bin = build .. "/bin/quay"

local function shquote(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

-- Run a command; returns its status, stdout and stderr.
local function run(cmd, bNoPreload)
  local out, err = os.tmpname(), os.tmpname()
  local prefix = bNoPreload and "env -u LD_PRELOAD " or ""
  local ok, _, status = os.execute(prefix .. cmd .. " >" .. out .. " 2>" .. err)
  local function slurp(p)
    local f = io.open(p); local s = f and f:read("a") or ""; if f then f:close() end
    os.remove(p); return s
  end
  return ok and 0 or status, slurp(out), slurp(err)
end

local files = {}
local function fresh_url()
  if helper.is_pg then
    helper.open():close()
    return helper.url
  end
  local path = os.tmpname()
  os.remove(path)
  files[#files + 1] = path
  return "sqlite:" .. path, path
end

-- Print the model script of url, load it into a new handle, and check the
-- fixpoint; returns the handle and its models.
local function inspect_and_load(url)
  local status, script, err = run(quay_bin .. " inspect " .. shquote(url))
  assert.equal(0, status, err)
  local chunk = assert(load(script, "=models", "t"))
  local declare = chunk()
  assert.is_function(declare)
  local db = quay.open(url)
  local M = declare(db)
  db:check()
  local diff = db:schema_diff()
  local lines = {}
  for _, s in ipairs(diff) do lines[#lines + 1] = s.what or s.op end
  assert.equal(0, #diff, "steps after quay inspect:\n" .. table.concat(lines, "\n")
    .. "\nscript:\n" .. script)
  return db, M, script
end

describe("quay inspect", function()
  after_each(function()
    for _, p in ipairs(files) do
      os.remove(p); os.remove(p .. "-wal"); os.remove(p .. "-shm")
    end
    files = {}
  end)

  it("prints Quay's own blog back as models with the same tables", function()
    local url = fresh_url()
    local db0 = quay.open(url)
    helper.blog(db0)
    db0:close()
    local db, M, script = inspect_and_load(url)
    assert.is_truthy(script:find('M.User = db:model("User"', 1, true))
    -- the automatic join table is a through model, and a many_to_many on Post
    assert.is_truthy(M.PostsTag)
    assert.is_truthy(script:find('quay.many_to_many("Tag", { through = "PostsTag"', 1, true))
    local u = M.User:create { name = "ann", email = "a@x" }
    local p = M.Post:create { title = "t", author = u }
    p.tags:add(M.Tag:create { name = "lua" })
    assert.equal(1, M.Post:filter { tags__name = "lua" }:count())
    assert.equal(1, #u.post_set)
    db:close()
  end)

  it("reads Quay's choices, min and max checks back into the models", function()
    local url = fresh_url()
    local db0 = quay.open(url)
    db0:model("Item", {
      state = quay.string { max = 20, choices = { "draft", "it's live", "gone" }, default = "draft" },
      size = quay.integer { choices = { -1, 0, 7 } },
      qty = quay.integer { min = -5, max = 5000000000 },
      ratio = quay.number { null = true, min = 0.25, max = 1e20 },
      level = quay.integer { min = 1 },
      price = quay.decimal { digits = 8, places = 2, min = "0.50", max = 99,
                             choices = { "0.50", "1.25", "99.00" } },
      day = quay.date { null = true, choices = { "2024-01-01", "2024-12-31" } },
    })
    db0:create_tables()
    db0:close()
    local db, M, script = inspect_and_load(url)
    assert.is_truthy(script:find('choices = { "draft", "it\'s live", "gone" }', 1, true), script)
    assert.is_truthy(script:find('choices = { -1, 0, 7 }', 1, true), script)
    local f = {}
    for _, x in ipairs(db:describe().Item.fields) do f[x.name] = x end
    assert.same({ "draft", "it's live", "gone" }, f.state.choices)
    assert.same({ -1, 0, 7 }, f.size.choices)
    assert.equal(-5, f.qty.min)
    assert.equal(5000000000, f.qty.max)
    assert.equal(0.25, f.ratio.min)
    assert.equal(1e20, f.ratio.max)
    assert.equal(1, f.level.min)
    assert.is_nil(f.level.max)
    assert.equal("0.50", f.price.min)
    assert.equal("99.00", f.price.max)
    assert.same({ "0.50", "1.25", "99.00" }, f.price.choices)
    assert.same({ "2024-01-01", "2024-12-31" }, f.day.choices)
    helper.raises("validation", M.Item.create, M.Item, { size = 0, qty = 1, level = 0, price = 1.25 })
    M.Item:create { size = 7, qty = 1, level = 1, price = "1.25" }
    db:close()
  end)

  it("models a hand-written schema: self references, composite unique, join tables", function()
    local url = fresh_url()
    local db0 = quay.open(url)
    local ID = helper.is_pg and "SERIAL PRIMARY KEY" or "INTEGER PRIMARY KEY"
    for _, sql in ipairs {
      "CREATE TABLE categories (id " .. ID .. ", name VARCHAR(50) NOT NULL, "
        .. "parent_id INTEGER REFERENCES categories (id), UNIQUE (parent_id, name))",
      "CREATE TABLE people (id " .. ID .. ", email TEXT NOT NULL UNIQUE, "
        .. "manager_id INTEGER REFERENCES people (id) ON DELETE SET NULL, "
        .. "mentor_id INTEGER REFERENCES people (id))",
      "CREATE TABLE tags (id " .. ID .. ", label VARCHAR(30) NOT NULL UNIQUE)",
      "CREATE TABLE articles (id " .. ID .. ", title TEXT NOT NULL, "
        .. "author_id INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE, "
        .. "reviewer INTEGER REFERENCES people (id), "
        .. "category_id INTEGER REFERENCES categories (id), "
        .. "published BOOLEAN NOT NULL DEFAULT FALSE, score REAL DEFAULT 0.5, "
        .. '"order" INTEGER, "weird name" VARCHAR(12) DEFAULT \'it\'\'s\')',
      "CREATE INDEX articles_by_category ON articles (category_id)",
      "CREATE TABLE article_tags (id " .. ID .. ", "
        .. "article_id INTEGER NOT NULL REFERENCES articles (id), "
        .. "tag_id INTEGER NOT NULL REFERENCES tags (id), UNIQUE (article_id, tag_id))",
      "CREATE TABLE friendships (id " .. ID .. ", "
        .. "from_id INTEGER NOT NULL REFERENCES people (id), "
        .. "to_id INTEGER NOT NULL REFERENCES people (id), UNIQUE (from_id, to_id))",
      "CREATE TABLE codes (code VARCHAR(10) PRIMARY KEY, descr TEXT)",
      "CREATE TABLE uses (id " .. ID .. ", code VARCHAR(10) NOT NULL REFERENCES codes (code))",
      "CREATE TABLE pairs (a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b))",
    } do db0:execute(sql) end
    db0:close()
    local db, M, script = inspect_and_load(url)
    -- a table with a composite key is explained, not declared
    assert.is_truthy(script:find("table pairs has a composite primary key", 1, true))
    assert.is_nil(M.Pair)
    -- names: singular CamelCase, table option where the default differs
    assert.is_truthy(M.Category and M.People and M.Article and M.Code)
    assert.is_truthy(script:find('table = "people"', 1, true))
    assert.is_truthy(script:find('unique_together = { { "parent", "name" } }', 1, true))
    -- relations work: self references, two keys to one table, join tables
    local boss = M.People:create { email = "boss@x" }
    local ann = M.People:create { email = "ann@x", manager = boss, mentor = boss }
    local root = M.Category:create { name = "root" }
    local child = M.Category:create { name = "child", parent = root }
    local a = M.Article:create { title = "t", author = ann, reviewer_rel = boss,
                                 category = child }
    assert.is_false(a.published)
    assert.equal("it's", a.weird_name)
    a.tags:add(M.Tag:create { label = "lua" })
    assert.equal(1, M.Article:filter { tags__label = "lua", category__parent = root }:count())
    ann.people:add(boss)
    assert.equal(1, #ann.people)
    assert.equal(1, M.People:filter { manager = boss }:count())
    M.Use:create { code_rel = M.Code:create { code = "X1", descr = "x" } }
    assert.equal("x", M.Use:first().code_rel.descr)
    -- migrate leaves the database's own ON DELETE SET NULL as it is
    assert.same({}, db:migrate())
    local rule
    for _, t in ipairs(db:inspect().tables) do
      for _, fk in ipairs(t.foreign_keys) do
        if t.name == "people" and fk.columns[1] == "manager_id" then rule = fk.on_delete end
      end
    end
    assert.equal("SET NULL", rule)
    db:close()
  end)

  it("models the tables Django's migrate makes for auth and contenttypes", function()
    local py = "/usr/bin/python3"
    local status, _, err = run(py .. " -c 'import django'", true)
    assert.equal(0, status, "python3-django is needed (scripts/deps.sh --test): " .. err)
    local url, path = fresh_url()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. shquote(dir)))
    local f = assert(io.open(dir .. "/djmig.py", "w"))
    f:write([[
import sys
import django
from django.conf import settings
if sys.argv[1] == "sqlite":
    db = {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[2]}
else:
    db = {"ENGINE": "django.db.backends.postgresql", "HOST": sys.argv[2],
          "PORT": sys.argv[3], "USER": sys.argv[4], "NAME": sys.argv[5]}
settings.configure(INSTALLED_APPS=["django.contrib.contenttypes",
                                   "django.contrib.auth"],
                   DATABASES={"default": db}, USE_TZ=True)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
]])
    f:close()
    local args
    if helper.is_pg then
      local user, host, port, name = url:match("^postgres[%w]*://([^@/]+)@([^:/]+):(%d+)/([^?]+)")
      assert.is_truthy(user, "a postgresql://user@host:port/db URL is needed, got " .. url)
      args = table.concat({ "pg", host, port, user, name }, " ")
    else
      args = "sqlite " .. shquote(path)
    end
    local st, out, e = run(py .. " " .. shquote(dir .. "/djmig.py") .. " " .. args, true)
    os.remove(dir .. "/djmig.py")
    os.remove(dir)
    assert.equal(0, st, out .. e)
    local db, M = inspect_and_load(url)
    assert.is_truthy(M.AuthUser and M.AuthGroup and M.AuthPermission and M.DjangoContentType)
    assert.is_truthy(M.AuthUserGroup)              -- a through model
    local ct = M.DjangoContentType:create { app_label = "blog", model = "post" }
    local perm = M.AuthPermission:create { content_type = ct, codename = "add_post",
                                           name = "Can add post" }
    local g = M.AuthGroup:create { name = "editors" }
    g.permissions:add(perm)
    local u = M.AuthUser:create {
      password = "x", is_superuser = false, username = "ann", last_name = "",
      first_name = "", email = "a@x", is_staff = false, is_active = true,
      date_joined = "2024-01-02 03:04:05" }
    u.groups:add(g)
    assert.equal(1, M.AuthUser:filter { groups__permissions__codename = "add_post" }:count())
    helper.raises("integrity", M.AuthGroup.create, M.AuthGroup, { name = "editors" })
    db:close()
  end)
end)
