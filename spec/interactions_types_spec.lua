-- Where the newer field types (reference.md "More field types": uuid,
-- decimal, date, datetime, json) meet the rest of the engine: uuid primary
-- keys as relation targets (loading, counting, cascades, many-to-many
-- writes, upsert, on_update) and typed values in filters across
-- relations, quay.F, annotations, grouping, ordering and aggregates.
-- Results are checked against hand-written SQL over the same rows where
-- that gives an independent truth.  Runs on both backends.
local helper = require("spec.helper")
local quay = helper.quay

local UP = "0190A3F2-1B2C-7D4E-8F50-0123456789AB"
local LOW = UP:lower()

--- The array part of a result (pluck results also carry n).
local function list(t)
  local out = {}
  for i = 1, #t do out[i] = t[i] end
  return out
end

--- One column of hand-written SQL rows, as a list.
local function col(db, sql, name, params)
  local out = {}
  for i, r in ipairs(db:rows(sql, params or {})) do out[i] = r[name] end
  return out
end

--- Sorted copy of a list of strings.
local function sorted(t)
  local out = list(t)
  table.sort(out)
  return out
end

local function schema(db)
  local M = {}
  M.Author = db:model("Author", {
    id = quay.uuid { primary_key = true },
    name = quay.string(),
    balance = quay.decimal { digits = 10, places = 2, default = "0" },
    born = quay.date { null = true },
    seen = quay.datetime { null = true },
    data = quay.json { null = true },
  })
  M.Profile = db:model("Profile", {
    author = quay.one_to_one("Author", { on_delete = quay.CASCADE, related_name = "profile" }),
    bio = quay.string(),
  })
  M.Tag = db:model("Tag", {
    id = quay.uuid { primary_key = true },
    name = quay.string { unique = true },
  })
  M.Book = db:model("Book", {
    title = quay.string(),
    price = quay.decimal { digits = 6, places = 2 },
    published = quay.date { null = true },
    at = quay.datetime { null = true },
    meta = quay.json { null = true },
    author = quay.belongs_to("Author", { on_delete = quay.CASCADE, related_name = "books" }),
    tags = quay.many_to_many("Tag", { related_name = "books" }),
  })
  M.Club = db:model("Club", {
    id = quay.uuid { primary_key = true },
    name = quay.string(),
    members = quay.many_to_many("Author", { through = "Membership", related_name = "clubs" }),
  })
  M.Membership = db:model("Membership", {
    club = quay.belongs_to("Club", { on_delete = quay.CASCADE, related_name = "memberships" }),
    author = quay.belongs_to("Author", { on_delete = quay.CASCADE, related_name = "memberships" }),
    role = quay.string { default = "member" },
  })
  M.Review = db:model("Review", {
    author = quay.belongs_to("Author", { on_delete = quay.SET_NULL, null = true, related_name = "reviews" }),
    body = quay.string(),
  })
  db:create_tables()
  return M
end

local function fill(M)
  local R = {}
  R.ann = M.Author:create { id = UP, name = "ann", balance = "12.50", born = "1980-05-01",
                            seen = "2024-01-15 10:00:00", data = { k = "v", n = 1 } }
  R.bob = M.Author:create { name = "bob", balance = "-3.25", born = "1990-12-31",
                            data = { k = "w" } }
  R.cy = M.Author:create { name = "cy", balance = "100.00" }
  R.dee = M.Author:create { name = "dee", balance = "10.50", data = { n = 2 } }
  R.a1 = M.Book:create { title = "a1", price = "9.99", published = "2024-01-10",
                         at = "2024-01-10 08:00:00", meta = { lang = "en" }, author = R.ann }
  R.a2 = M.Book:create { title = "a2", price = "20.01", published = "2024-01-20",
                         at = "2024-01-31 23:59:59", meta = { lang = "fr" }, author = R.ann }
  R.a3 = M.Book:create { title = "a3", price = "-5.00", published = "2024-02-01",
                         at = "2024-02-01 00:00:00", author = R.ann }
  R.b1 = M.Book:create { title = "b1", price = "0.10", published = "2024-01-10",
                         at = "2024-03-05 12:00:00", meta = { lang = "en" }, author = R.bob }
  R.c1 = M.Book:create { title = "c1", price = "1000.00", meta = { x = 1 }, author = R.cy }
  R.t1 = M.Tag:create { name = "t1" }
  R.t2 = M.Tag:create { name = "t2" }
  R.a1.tags:add(R.t1, R.t2)
  R.a2.tags:add(R.t1)
  R.b1.tags:add(R.t2)
  M.Profile:create { author = R.ann, bio = "hi" }
  M.Profile:create { author = R.cy, bio = "yo" }
  R.club = M.Club:create { name = "c" }
  R.club.members:add(R.ann, { role = "chair" })
  R.club.members:add(R.bob)
  M.Review:create { author = R.ann, body = "r1" }
  M.Review:create { author = R.bob, body = "r2" }
  return R
end

describe("uuid primary keys meet relations", function()
  local db, M, R
  before_each(function()
    db = helper.open()
    M = schema(db)
    R = fill(M)
  end)
  after_each(function() db:close() end)

  it("create, find, get and filters accept an upper-case key and read it in lower case", function()
    assert.equal(LOW, R.ann.id)
    assert.same({ LOW }, col(db, "SELECT id FROM authors WHERE name = 'ann'", "id"))
    assert.equal("ann", M.Author:find(UP).name)
    assert.equal("ann", M.Author:find(LOW).name)
    assert.equal("ann", M.Author:get { id = UP }.name)
    assert.equal("ann", M.Author:filter { id__in = { UP, R.bob.id } }:order_by("name"):first().name)
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author = UP }:order_by("title"):pluck("title")))
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author_id = UP }:order_by("title"):pluck("title")))
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author__id = UP }:order_by("title"):pluck("title")))
    local b = M.Book:create { title = "x", price = "1", author_id = UP }
    assert.equal(LOW, b.author_id)
    assert.same({ LOW }, col(db, "SELECT author_id FROM books WHERE title = 'x'", "author_id"))
    assert.equal(R.ann, b.author)
    assert.is_true(M.Author:filter { id = UP }:exists())
    assert.equal(4, #M.Book:filter { author = UP }:all())
  end)

  it("lazy to-one and to-many loads are batched over uuid keys", function()
    local books = M.Book:order_by("title"):all()
    local names = {}
    local n = helper.queries(db, function()
      for i, b in ipairs(books) do names[i] = b.author.name end
    end)
    assert.equal(1, n)
    assert.same({ "ann", "ann", "ann", "bob", "cy" }, names)
    local authors = M.Author:order_by("name"):all()
    local counts = {}
    n = helper.queries(db, function()
      for i, a in ipairs(authors) do counts[i] = #a.books end
    end)
    assert.equal(1, n)
    assert.same({ 3, 1, 1, 0 }, counts)
    local profs = {}
    n = helper.queries(db, function()
      for i, a in ipairs(authors) do profs[i] = a.profile and a.profile.bio or "-" end
    end)
    assert.equal(1, n)
    assert.same({ "hi", "-", "yo", "-" }, profs)
    local tagcounts = {}
    n = helper.queries(db, function()
      for i, b in ipairs(books) do tagcounts[i] = #b.tags end
    end)
    assert.equal(1, n)
    assert.same({ 2, 1, 0, 1, 0 }, tagcounts)
  end)

  it("select_related over belongs_to and one_to_one with uuid targets", function()
    local got = {}
    local n = helper.queries(db, function()
      for _, b in ipairs(M.Book:select_related("author__profile"):order_by("title"):all()) do
        got[#got + 1] = b.title .. ":" .. b.author.name .. ":" .. (b.author.profile and b.author.profile.bio or "-")
      end
    end)
    assert.equal(1, n)
    assert.same({ "a1:ann:hi", "a2:ann:hi", "a3:ann:hi", "b1:bob:-", "c1:cy:yo" }, got)
    local p = M.Profile:select_related("author"):filter { author = UP }:first()
    assert.equal(LOW, p.author.id)
    assert.equal("12.50", p.author.balance)
    assert.equal(LOW, p.author_id)
  end)

  it("prefetch_related nested, through m2m, and quay.prefetch with a filtered set and to", function()
    local authors
    local n = helper.queries(db, function()
      authors = M.Author:prefetch_related("books__tags", "clubs", "profile"):order_by("name"):all()
    end)
    assert.equal(5, n)
    n = helper.queries(db, function()
      local a = authors[1]
      assert.equal(3, #a.books)
      local tags = {}
      for _, b in ipairs(a.books) do
        for _, t in ipairs(b.tags) do tags[#tags + 1] = b.title .. t.name end
      end
      assert.same({ "a1t1", "a1t2", "a2t1" }, sorted(tags))
      assert.equal(1, #a.clubs)
      assert.equal("chair", a.clubs[1].pivot.role)
      assert.equal("hi", a.profile.bio)
      assert.equal(0, #authors[4].books)
    end)
    assert.equal(0, n)
    local pricey = M.Book:filter { price__gt = "9.99" }:order_by("-price")
    authors = M.Author:prefetch_related(quay.prefetch("books", pricey, { to = "pricey" }))
      :order_by("name"):all()
    local got = {}
    for _, a in ipairs(authors) do
      local ts = {}
      for _, b in ipairs(a.pricey) do ts[#ts + 1] = b.title end
      got[#got + 1] = a.name .. "=" .. table.concat(ts, ",")
    end
    assert.same({ "ann=a2", "bob=", "cy=c1", "dee=" }, got)
    authors = M.Author:prefetch_related(quay.prefetch("books", pricey)):order_by("name"):all()
    assert.equal(1, #authors[1].books)
    local tags = M.Tag:prefetch_related("books__author"):order_by("name"):all()
    local seen = {}
    for _, t in ipairs(tags) do
      for _, b in ipairs(t.books) do seen[#seen + 1] = t.name .. b.author.name end
    end
    assert.same({ "t1ann", "t1ann", "t2ann", "t2bob" }, sorted(seen))
  end)

  it("with_count, where_has and annotate count over uuid-keyed relations", function()
    local got = {}
    for _, a in ipairs(M.Author:with_count("books"):with_count("clubs"):order_by("name"):all()) do
      got[#got + 1] = a.name .. a.books_count .. a.clubs_count
    end
    assert.same({ "ann31", "bob11", "cy10", "dee00" }, got)
    got = {}
    for _, t in ipairs(M.Tag:with_count("books"):order_by("name"):all()) do got[#got + 1] = t.books_count end
    assert.same({ 2, 2 }, got)
    assert.equal(2, M.Club:with_count("members"):first().members_count)
    assert.same({ "ann", "cy" }, list(M.Author:where_has("books", { price__gt = "9.99" }):order_by("name"):pluck("name")))
    assert.same({ "ann", "bob" }, list(M.Author:where_has("books__tags"):order_by("name"):pluck("name")))
    assert.same({ "a1", "b1" }, list(M.Book:where_has("tags", { name = "t2" }):order_by("title"):pluck("title")))
    -- each related tag once per author (reference "Aggregates": each related
    -- row once per owner), so a distinct count of the tags
    local sql = [[SELECT a.name AS name, COUNT(DISTINCT bt.tag_id) AS n FROM authors a
      LEFT JOIN books b ON b.author_id = a.id LEFT JOIN books_tags bt ON bt.book_id = b.id
      GROUP BY a.id, a.name ORDER BY a.name]]
    local want = {}
    for _, r in ipairs(db:rows(sql, {})) do want[#want + 1] = r.name .. tostring(math.tointeger(r.n)) end
    got = {}
    for _, a in ipairs(M.Author:annotate { n = quay.count("books__tags") }:order_by("name"):all()) do
      got[#got + 1] = a.name .. a.n
    end
    assert.same(want, got)
    assert.same({ "ann2", "bob1", "cy0", "dee0" }, got)
  end)

  it("values of a relation give its uuid key; values across it give the field", function()
    local got = {}
    for _, r in ipairs(M.Book:values("title", "author", "author__balance"):order_by("title"):all()) do
      got[#got + 1] = r.title .. "|" .. r.author .. "|" .. r.author__balance
    end
    assert.same({ "a1|" .. LOW .. "|12.50", "a2|" .. LOW .. "|12.50", "a3|" .. LOW .. "|12.50",
                  "b1|" .. R.bob.id .. "|-3.25", "c1|" .. R.cy.id .. "|100.00" }, got)
    assert.equal(3, M.Book:values("author"):distinct():count())
    assert.same(sorted { LOW, R.bob.id, R.cy.id }, sorted(M.Book:values("author"):distinct():pluck("author")))
  end)

  it("cascades from a uuid key: CASCADE, SET_NULL, m2m join rows, custom through; dry run counts", function()
    local dry = R.ann:delete { dry_run = true }
    assert.equal(1, dry.Author)
    assert.equal(3, dry.Book)
    assert.equal(1, dry.Profile)
    assert.equal(1, dry.Membership)
    assert.equal(3, dry.books_tags)
    R.ann:delete()
    assert.same({ "b1", "c1" }, list(M.Book:order_by("title"):pluck("title")))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM books_tags", "n"))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM memberships", "n"))
    assert.equal(1, M.Profile:count())
    local r1 = M.Review:filter { body = "r1" }:first()
    assert.is_nil(r1.author_id)
    assert.equal(1, M.Review:filter { author__isnull = true }:count())
    assert.equal(1, M.Review:filter { author = R.bob }:count())
  end)

  it("PROTECT on a uuid target refuses and deletes nothing", function()
    local Hold = db:model("Hold", {
      tag = quay.belongs_to("Tag", { on_delete = quay.PROTECT, related_name = "holds" }),
    })
    db:create_tables()
    Hold:create { tag = R.t1 }
    local err = helper.raises("protected", R.t1.delete, R.t1)
    helper.mentions(err, "Hold")
    assert.equal(2, M.Tag:count())
    assert.same({ 4 }, col(db, "SELECT COUNT(*) AS n FROM books_tags", "n"))
    helper.raises("protected", function() return M.Tag:filter { name = "t1" }:delete() end)
    assert.equal(2, M.Tag:count())
    assert.equal(1, M.Tag:filter { name = "t2" }:delete().Tag)
    assert.same({ 2 }, col(db, "SELECT COUNT(*) AS n FROM books_tags", "n"))
  end)

  it("many-to-many add, remove, set, clear, contains with uuid keys, auto and custom through", function()
    local t3 = M.Tag:create { id = "0190A3F2-0000-7000-8000-00000000000F", name = "t3" }
    assert.equal("0190a3f2-0000-7000-8000-00000000000f", t3.id)
    local b = R.b1
    b.tags:add(t3, R.t2)
    assert.same({ "t2", "t3" }, list(b.tags:order_by("name"):pluck("name")))
    assert.is_true(b.tags:contains(t3))
    assert.is_true(M.Tag:find("0190A3F2-0000-7000-8000-00000000000F").books:contains(b))
    b.tags:remove(R.t2)
    assert.is_false(b.tags:contains(R.t2))
    b.tags:set { R.t1, R.t2, t3 }
    assert.same({ "t1", "t2", "t3" }, list(b.tags:order_by("name"):pluck("name")))
    assert.same({ 3 }, col(db, "SELECT COUNT(*) AS n FROM books_tags WHERE book_id = ?", "n", { b.id }))
    b.tags:set { t3 }
    assert.same({ "t3" }, list(M.Book:find(b.id).tags:pluck("name")))
    t3.books:clear()
    assert.equal(0, M.Book:find(b.id).tags:count())
    assert.same({ 3 }, col(db, "SELECT COUNT(*) AS n FROM books_tags", "n"))
    -- custom through with uuid on both ends
    local club = R.club
    club.members:add(R.cy, { role = "guest" })
    assert.same({ "ann", "bob", "cy" }, list(club.members:order_by("name"):pluck("name")))
    assert.same({ "cy" }, list(club.members:filter { pivot__role = "guest" }:pluck("name")))
    assert.is_true(club.members:contains(R.cy))
    club.members:remove(R.bob)
    assert.is_false(club.members:contains(R.bob))
    club.members:set { R.dee }
    assert.same({ "dee" }, list(M.Club:find(club.id).members:pluck("name")))
    assert.same({ R.dee.id }, col(db, "SELECT author_id FROM memberships", "author_id"))
    club.members:clear()
    assert.equal(0, M.Membership:count())
  end)

  it("upsert conflicting on a uuid primary key, also given in upper case", function()
    local recs = M.Author:upsert({
      { id = UP, name = "ann2", balance = "1.5" },
      { id = "0190A3F2-1B2C-7D4E-8F50-0000000000AA", name = "new", balance = "2" },
    }, { conflict = { "id" }, update = { "name", "balance" } })
    assert.equal(2, #recs)
    assert.equal(LOW, recs[1].id)
    assert.equal("0190a3f2-1b2c-7d4e-8f50-0000000000aa", recs[2].id)
    assert.equal(5, M.Author:count())
    local a = M.Author:find(LOW)
    assert.equal("ann2", a.name)
    assert.equal("1.50", a.balance)
    assert.equal("2.00", M.Author:find("0190a3f2-1b2c-7d4e-8f50-0000000000aa").balance)
    assert.equal(3, M.Book:filter { author = LOW }:count())
    -- conflict on a unique uuid-keyed Tag name keeps the key
    local t = M.Tag:upsert({ { name = "t1" } }, { conflict = { "name" } })
    assert.equal(R.t1.id, t[1].id)
    assert.equal(2, M.Tag:count())
  end)

  it("bulk_update and get_or_create on a uuid-keyed model", function()
    local as = M.Author:order_by("name"):all()
    for i, a in ipairs(as) do a.balance = tostring(i) .. ".25" end
    assert.equal(4, M.Author:bulk_update(as, { "balance" }))
    assert.same({ "1.25", "2.25", "3.25", "4.25" }, list(M.Author:order_by("name"):pluck("balance")))
    local a, created = M.Author:get_or_create({ id = UP }, { name = "zzz" })
    assert.is_false(created)
    assert.equal("ann", a.name)
    assert.equal(LOW, a.id)
    local b, created2 = M.Author:get_or_create({ id = "0190A3F2-1B2C-7D4E-8F50-0000000000BB" }, { name = "eve" })
    assert.is_true(created2)
    assert.equal("0190a3f2-1b2c-7d4e-8f50-0000000000bb", b.id)
    local c, created3 = M.Author:get_or_create({ id = "0190a3f2-1b2c-7d4e-8f50-0000000000bb" })
    assert.is_false(created3)
    assert.equal(b, c)
    assert.equal(5, M.Author:count())
  end)

  it("on_update CASCADE rewrites foreign keys and join rows when a uuid key changes through save", function()
    local new = "0190A3F2-1B2C-7D4E-8F50-FFFFFFFFFFFF"
    R.ann.id = new
    R.ann:save()
    assert.equal(new:lower(), R.ann.id)
    assert.is_nil(M.Author:filter { id = LOW }:first())
    assert.same({ 3 }, col(db, "SELECT COUNT(*) AS n FROM books WHERE author_id = ?", "n", { new:lower() }))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM profiles WHERE author_id = ?", "n", { new:lower() }))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM memberships WHERE author_id = ?", "n", { new:lower() }))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM reviews WHERE author_id = ?", "n", { new:lower() }))
    assert.equal(3, #M.Author:find(new).books)
    -- the key of a tag (the m2m target) changes: join rows follow
    local tnew = "0190a3f2-1b2c-7d4e-8f50-eeeeeeeeeeee"
    R.t1.id = tnew
    R.t1:save()
    assert.same({ 2 }, col(db, "SELECT COUNT(*) AS n FROM books_tags WHERE tag_id = ?", "n", { tnew }))
    assert.same({ "a1", "a2" }, list(M.Tag:find(tnew).books:order_by("title"):pluck("title")))
  end)

  it("select_for_update with a uuid key inside a transaction", function()
    local got
    db:transaction(function()
      got = M.Author:select_for_update():filter { id = UP }:select_related("profile"):all()
      assert.equal(1, #got)
      assert.equal(2, M.Book:select_for_update():filter { author = UP, price__gt = "0" }:count())
    end)
    assert.equal(LOW, got[1].id)
    assert.equal("hi", got[1].profile.bio)
    helper.raises("misuse", function() return M.Author:select_for_update():filter { id = UP }:all() end)
  end)
end)

describe("decimal, date, datetime and json across the engine", function()
  local db, M, R
  before_each(function()
    db = helper.open()
    M = schema(db)
    R = fill(M)
  end)
  after_each(function() db:close() end)

  it("filters across relations on decimal, date, datetime and json", function()
    assert.same({ "a1", "a2", "a3", "c1" },
      list(M.Book:filter { author__balance__gt = "10.50" }:order_by("title"):pluck("title")))
    assert.same({ "a1", "a2", "a3", "b1", "c1" },
      list(M.Book:filter { author__balance__gte = "-3.25" }:order_by("title"):pluck("title")))
    assert.same({ "b1" }, list(M.Book:filter { author__balance__lt = 0 }:pluck("title")))
    assert.same({ "b1" }, list(M.Book:filter { author__born__gt = "1985-01-01" }:pluck("title")))
    assert.same({ "b1" }, list(M.Book:filter { author__born__year = 1990 }:pluck("title")))
    assert.same({ "a1", "a2", "a3" },
      list(M.Book:filter { author__seen__gte = "2024-01-15T11:00:00+02:00" }:order_by("title"):pluck("title")))
    assert.same({ "ann", "bob" },
      list(M.Author:filter { books__published = "2024-01-10" }:distinct():order_by("name"):pluck("name")))
    assert.same({ "ann" },
      list(M.Author:filter { books__at__gte = "2024-01-31 12:00:00", books__at__lt = "2024-03-01 00:00:00" }
        :distinct():pluck("name")))
    assert.same({ "ann", "cy" },
      list(M.Author:filter { books__price__gt = "9.99" }:distinct():order_by("name"):pluck("name")))
    assert.same({ "ann", "bob", "cy" },
      list(M.Author:filter { books__price__in = { "-5", "0.1", "1000" } }:distinct():order_by("name"):pluck("name")))
  end)

  it("json path lookups and has_key across a relation", function()
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author__data__k = "v" }:order_by("title"):pluck("title")))
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author__data__has_key = "n" }:order_by("title"):pluck("title")))
    assert.same({ "a1", "a2", "a3" }, list(M.Book:filter { author__data__n = 1 }:order_by("title"):pluck("title")))
    assert.same({ "ann", "bob" },
      list(M.Author:filter { books__meta__lang = "en" }:distinct():order_by("name"):pluck("name")))
    assert.same({ "cy" }, list(M.Author:filter { books__meta__has_key = "x" }:pluck("name")))
    assert.same({ "ann", "bob" }, list(M.Author:where_has("books", { meta__lang = "en" }):order_by("name"):pluck("name")))
    assert.same({ "b1", "c1" }, list(M.Book:exclude { author__data__k = "v" }:order_by("title"):pluck("title")))
  end)

  it("quay.F compares decimals across a relation", function()
    -- books cheaper than their author's balance
    -- hand-written: both columns have 2 places (SQLite stores them as
    -- integers scaled alike), so comparing the stored values is exact
    local sql = [[SELECT b.title AS title FROM books b JOIN authors a ON a.id = b.author_id
      WHERE b.price < a.balance ORDER BY b.title]]
    local want = { "a1", "a3" }
    assert.same(want, col(db, sql, "title"))
    assert.same(want, list(M.Book:filter { price__lt = quay.F("author__balance") }:order_by("title"):pluck("title")))
    assert.same({ "a2", "b1", "c1" }, list(M.Book:filter { price__gt = quay.F("author__balance") }:order_by("title"):pluck("title")))
    assert.same({ "a2", "c1" },
      list(M.Book:filter { price__gt = quay.F("author__balance") - 10 }:filter { price__gt = "9.99" }
        :order_by("title"):pluck("title")))
  end)

  it("update with quay.F arithmetic on a decimal keeps places and refuses overflow, nothing written", function()
    assert.equal(5, M.Book:update { price = quay.F("price") * 2 })
    assert.same({ "19.98", "40.02", "-10.00", "0.20", "2000.00" }, list(M.Book:order_by("title"):pluck("price")))
    assert.equal(1, M.Book:filter { title = "b1" }:update { price = quay.F("price") + 0.05 })
    assert.equal("0.25", M.Book:get { title = "b1" }.price)
    -- 2000.00 * 10 = 20000.00 does not fit digits = 6, places = 2
    local ok, err = pcall(function() return M.Book:update { price = quay.F("price") * 10 } end)
    assert.is_false(ok)
    assert.is_table(err)
    -- reference "quay.F": out of range raises an error and writes nothing;
    -- both backends raise sql ("numeric field overflow")
    assert.equal("sql", err.code)
    helper.mentions(err, "numeric field overflow")
    assert.same({ "19.98", "40.02", "-10.00", "0.25", "2000.00" }, list(M.Book:order_by("title"):pluck("price")))
  end)

  it("annotate sum, min, max and avg of decimals over a to-many path, with filter and default", function()
    local got = {}
    for _, a in ipairs(M.Author:annotate {
      s = quay.sum("books__price"), mn = quay.min("books__price"), mx = quay.max("books__price"),
      s0 = quay.sum("books__price", { default = "0" }),
      sp = quay.sum("books__price", { filter = { books__price__gt = "0" } }),
      c = quay.count("books", { filter = { books__published__gte = "2024-01-15" } }),
      last = quay.max("books__published"), first = quay.min("books__at"),
    }:order_by("name"):all()) do
      got[#got + 1] = table.concat({ a.name, tostring(a.s), tostring(a.mn), tostring(a.mx), tostring(a.s0),
        tostring(a.sp), tostring(a.c), tostring(a.last), tostring(a.first) }, "|")
    end
    assert.same({
      "ann|25.00|-5.00|20.01|25.00|30.00|2|2024-02-01|2024-01-10 08:00:00",
      "bob|0.10|0.10|0.10|0.10|0.10|0|2024-01-10|2024-03-05 12:00:00",
      "cy|1000.00|1000.00|1000.00|1000.00|1000.00|0|nil|nil",
      "dee|nil|nil|nil|0.00|nil|0|nil|nil",
    }, got)
    -- avg of a decimal: a float (reference "Types": avg is a float)
    local av = M.Author:annotate { av = quay.avg("books__price") }:filter { name = "ann" }:first().av
    assert.equal("float", math.type(av))
    assert.near(25 / 3, av, 1e-9)
    -- across a many-to-many: sum of prices of books per tag
    got = {}
    for _, t in ipairs(M.Tag:annotate { s = quay.sum("books__price") }:order_by("name"):all()) do got[#got + 1] = t.s end
    assert.same({ "30.00", "10.09" }, got)
  end)

  it("aggregate over the whole set and over an empty set with default", function()
    local r = M.Book:aggregate { s = quay.sum("price"), mn = quay.min("price"), mx = quay.max("price"),
                                 d = quay.max("published"), t = quay.min("at") }
    assert.equal("1025.10", r.s)
    assert.equal("-5.00", r.mn)
    assert.equal("1000.00", r.mx)
    assert.equal("2024-02-01", r.d)
    assert.equal("2024-01-10 08:00:00", r.t)
    local e = M.Book:filter { title = "none" }:aggregate {
      s = quay.sum("price", { default = "0" }), s2 = quay.sum("price"), mx = quay.max("price", { default = "0" }),
      n = quay.count(), d = quay.max("published") }
    assert.equal("0.00", e.s)
    assert.is_nil(e.s2)
    assert.equal("0.00", e.mx)
    assert.equal(0, e.n)
    assert.is_nil(e.d)
    -- aggregate over a to-many path of authors
    local r2 = M.Author:filter { name__in = { "ann", "bob" } }:aggregate { s = quay.sum("books__price") }
    assert.equal("25.10", r2.s)
  end)

  it("values + annotate grouped by a date, by a relation's date and by quay.trunc of a datetime", function()
    local got = {}
    for _, r in ipairs(M.Book:filter { published__isnull = false }:values("published")
        :annotate { n = quay.count(), s = quay.sum("price") }:order_by("published"):all()) do
      got[#got + 1] = r.published .. "|" .. r.n .. "|" .. r.s
    end
    assert.same({ "2024-01-10|2|10.09", "2024-01-20|1|20.01", "2024-02-01|1|-5.00" }, got)
    got = {}
    for _, r in ipairs(M.Book:filter { at__isnull = false }:values { m = quay.trunc("month", "at") }
        :annotate { n = quay.count(), s = quay.sum("price") }:order_by("m"):all()) do
      got[#got + 1] = r.m .. "|" .. r.n .. "|" .. r.s
    end
    assert.same({ "2024-01-01 00:00:00|2|30.00", "2024-02-01 00:00:00|1|-5.00", "2024-03-01 00:00:00|1|0.10" }, got)
    got = {}
    for _, r in ipairs(M.Book:values("author__balance"):annotate { n = quay.count() }:order_by("author__balance"):all()) do
      got[#got + 1] = r.author__balance .. "|" .. r.n
    end
    assert.same({ "-3.25|1", "12.50|3", "100.00|1" }, got)
  end)

  it("order_by decimals with negative values and different magnitudes, distinct and pluck", function()
    M.Book:create { title = "z1", price = "-0.01", author = R.dee }
    M.Book:create { title = "z2", price = "-10.00", author = R.dee }
    M.Book:create { title = "z3", price = "9.99", author = R.dee }
    assert.same({ "-10.00", "-5.00", "-0.01", "0.10", "9.99", "9.99", "20.01", "1000.00" },
      list(M.Book:order_by("price"):pluck("price")))
    assert.same({ "c1", "a2", "a1", "z3", "b1", "z1", "a3", "z2" },
      list(M.Book:order_by("-price", "title"):pluck("title")))
    assert.same({ "cy", "ann", "dee", "bob" }, list(M.Author:order_by("-balance"):pluck("name")))
    assert.same({ "b1", "z1", "z2", "z3", "a1", "a2", "a3", "c1" },
      list(M.Book:order_by("author__balance", "title"):pluck("title")))
    assert.same({ "-10.00", "-5.00", "-0.01", "0.10", "9.99", "20.01", "1000.00" },
      list(M.Book:values("price"):distinct():order_by("price"):pluck("price")))
    assert.equal(7, M.Book:values("price"):distinct():count())
    assert.same({ "-3.25", "10.50", "12.50", "100.00" },
      list(M.Book:values("author__balance"):distinct():order_by("author__balance"):pluck("author__balance")))
    -- the same order through hand-written SQL on the stored values
    local want = col(db, "SELECT title FROM books ORDER BY price, title", "title")
    assert.same(want, list(M.Book:order_by("price", "title"):pluck("title")))
    assert.same({ "2024-01-10", "2024-01-10", "2024-01-20", "2024-02-01" },
      list(M.Book:filter { published__isnull = false }:order_by("published"):pluck("published")))
    assert.same({ "1980-05-01", "1990-12-31" },
      list(M.Author:filter { born__isnull = false }:values("born"):distinct():order_by("born"):pluck("born")))
  end)

  it("annotated decimal aggregates filter and order like their values", function()
    assert.same({ "cy", "ann" },
      list(M.Author:annotate { s = quay.sum("books__price") }:filter { s__gt = "10.00" }:order_by("-s"):pluck("name")))
    assert.same({ "bob", "ann", "cy" },
      list(M.Author:annotate { s = quay.sum("books__price") }:filter { s__isnull = false }:order_by("s"):pluck("name")))
    assert.same({ "ann" },
      list(M.Author:annotate { mn = quay.min("books__price") }:filter { mn__lt = 0 }:pluck("name")))
  end)
  it("min / max defaults of a datetime, date or uuid read as the field stores them, on both backends", function()
    local none = M.Book:filter { title = "none" }
    local r = none:aggregate {
      t = quay.min("at", { default = "2020-01-01T02:30:00+02:00" }),
      t2 = quay.max("at", { default = "2020-01-01 00:00:00" }),
      d = quay.max("published", { default = "2020-01-01" }) }
    assert.equal("2020-01-01 00:30:00", r.t)
    assert.equal("2020-01-01 00:00:00", r.t2)
    assert.equal("2020-01-01", r.d)
    -- an annotation over an empty to-many set reads the same
    local a = M.Author:annotate { t = quay.max("books__at", { default = "2021-06-01T00:00Z" }) }
      :filter { name = "dee" }:first()
    assert.equal("2021-06-01 00:00:00", a.t)
    -- a non-empty set ignores the default
    assert.equal("2024-03-05 12:00:00",
      M.Book:aggregate { t = quay.max("at", { default = "2020-01-01T00:00:00Z" }) }.t)
    local err = helper.raises("validation", function()
      return none:aggregate { d = quay.max("published", { default = "2023-02-29" }) }
    end)
    assert.equal("published", err.field)
    err = helper.raises("validation", function()
      return none:aggregate { t = quay.min("at", { default = "yesterday" }) }
    end)
    assert.equal("at", err.field)
    -- a uuid default reads in lower case
    local Pin = db:model("Pin", { ref = quay.uuid { null = true } })
    db:create_tables()
    assert.equal(LOW, Pin:aggregate { m = quay.max("ref", { default = UP }) }.m)
  end)

  it("decimal expressions across a relation keep places; / and a number make a float", function()
    local got = {}
    for _, r in ipairs(M.Book:annotate { d = quay.F("price") + quay.F("author__balance"),
                                         h = quay.F("price") * 2, q = quay.F("price") / 4 }
        :order_by("title"):values("title", "d", "h", "q"):all()) do
      got[#got + 1] = r.title .. "|" .. r.d .. "|" .. r.h .. "|" .. math.type(r.q)
    end
    assert.same({ "a1|22.49|19.98|float", "a2|32.51|40.02|float", "a3|7.50|-10.00|float",
                  "b1|-3.15|0.20|float", "c1|1100.00|2000.00|float" }, got)
    assert.same({ "c1", "a2", "b1", "a1", "a3" },
      list(M.Book:annotate { d = quay.F("price") - quay.F("author__balance") }:order_by("-d"):pluck("title")))
    -- an annotation over an aggregate plus a decimal field
    got = {}
    for _, r in ipairs(M.Author:annotate { x = quay.sum("books__price") + quay.F("balance") }
        :order_by("name"):values("name", "x"):all()) do
      got[#got + 1] = r.name .. "|" .. tostring(r.x)
    end
    assert.same({ "ann|37.50", "bob|-3.15", "cy|1100.00", "dee|nil" }, got)
  end)

  it("dates and datetimes compare with quay.F across a relation; a date with a datetime is bad_lookup", function()
    M.Book:create { title = "d1", price = "1", published = "1990-12-31", author = R.bob }
    assert.same({ "d1" }, list(M.Book:filter { published = quay.F("author__born") }:pluck("title")))
    assert.same({ "a1", "a2", "a3", "b1" },
      list(M.Book:filter { published__gt = quay.F("author__born") }:order_by("title"):pluck("title")))
    assert.same({ "a1" }, list(M.Book:filter { at__lt = quay.F("author__seen") }:pluck("title")))
    helper.raises("bad_lookup", function()
      return M.Book:filter { at__gt = quay.F("author__born") }:all()
    end)
    assert.equal(1, M.Book:filter { title = "d1" }:update { published = quay.F("author__born") })
    assert.equal(1, M.Book:filter { title = "a1" }:update { published = quay.F("author__born") })
    assert.equal("1980-05-01", M.Book:get { title = "a1" }.published)
  end)

  it("updates and writes through relations given an upper-case uuid store it in lower case", function()
    assert.equal(1, M.Book:filter { title = "b1" }:update { author = UP })
    assert.same({ LOW }, col(db, "SELECT author_id FROM books WHERE title = 'b1'", "author_id"))
    local b = M.Book:get { title = "c1" }
    b.author = UP
    b:save()
    assert.equal(LOW, b.author_id)
    assert.same({ LOW }, col(db, "SELECT author_id FROM books WHERE title = 'c1'", "author_id"))
    M.Book:bulk_create { { title = "x", price = "1", author_id = UP } }
    assert.same({ LOW }, col(db, "SELECT author_id FROM books WHERE title = 'x'", "author_id"))
    assert.equal(6, M.Book:filter { author__in = { UP } }:count())
    assert.same({ "a1", "a2", "a3", "b1", "c1", "x" }, list(M.Book:filter { author = UP }:order_by("title"):pluck("title")))
    local r, created = M.Author:update_or_create({ id = UP }, { name = "ann2" })
    assert.is_false(created)
    assert.equal(LOW, r.id)
    assert.equal(4, M.Author:count())
  end)

  it("on_update SET_NULL and qs:update of a uuid key", function()
    local Edit = db:model("Edit", {
      author = quay.belongs_to("Author", { on_delete = quay.CASCADE, on_update = quay.SET_NULL,
                                           null = true, related_name = "edits" }),
    })
    db:create_tables()
    Edit:create { author = R.bob }
    local new = "0190a3f2-1b2c-7d4e-8f50-000000000001"
    R.bob.id = new:upper()
    R.bob:save()
    assert.same({ 0 }, col(db, "SELECT COUNT(*) AS n FROM edits WHERE author_id IS NOT NULL", "n"))
    assert.same({ "b1" }, list(M.Book:filter { author = new }:pluck("title")))
    local new2 = "0190a3f2-1b2c-7d4e-8f50-000000000002"
    assert.equal(1, M.Author:filter { name = "cy" }:update { id = new2 })
    assert.same({ "c1" }, list(M.Book:filter { author = new2 }:pluck("title")))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM profiles WHERE author_id = ?", "n", { new2 }))
  end)
  it("min / max of a uuid (PostgreSQL has no min(uuid)): aggregate, annotate over a to-many path, grouped", function()
    local ids = sorted(M.Author:pluck("id"))
    local r = M.Author:aggregate { lo = quay.min("id"), hi = quay.max("id"),
                                   hi2 = quay.max("id", { filter = { name__in = { "bob", "cy" } } }) }
    assert.equal(ids[1], r.lo)
    assert.equal(ids[#ids], r.hi)
    assert.equal(sorted { R.bob.id, R.cy.id }[2], r.hi2)
    assert.same(ids, list(M.Author:order_by("id"):pluck("id")))
    local got = {}
    for _, b in ipairs(M.Book:annotate { lo = quay.min("tags__id"), hi = quay.max("tags__id", { default = UP }) }
        :order_by("title"):all()) do
      got[#got + 1] = b.title .. "|" .. tostring(b.lo) .. "|" .. b.hi
    end
    local t = sorted { R.t1.id, R.t2.id }
    assert.same({ "a1|" .. t[1] .. "|" .. t[2], "a2|" .. R.t1.id .. "|" .. R.t1.id, "a3|nil|" .. LOW,
                  "b1|" .. R.t2.id .. "|" .. R.t2.id, "c1|nil|" .. LOW }, got)
    got = {}
    for _, g in ipairs(M.Book:values("author__name"):annotate { m = quay.max("tags__id") }
        :order_by("author__name"):all()) do
      got[#got + 1] = g.author__name .. "|" .. tostring(g.m)
    end
    assert.same({ "ann|" .. t[2], "bob|" .. R.t2.id, "cy|nil" }, got)
    assert.equal(t[2], M.Author:aggregate { m = quay.max("books__tags__id") }.m)
  end)
  it("upsert and get_or_create match typed keys by their stored form (uuid case, ISO datetimes, decimal forms)", function()
    local Ev = db:model("Ev", { at = quay.datetime { unique = true }, n = quay.integer { default = 0 } })
    local Px = db:model("Px", { amt = quay.decimal { digits = 5, places = 2, unique = true },
                                n = quay.integer { default = 0 } })
    db:create_tables()
    local r = M.Tag:upsert({ { id = "0190A3F2-0000-7000-8000-0000000000AA", name = "a" },
                             { id = "0190a3f2-0000-7000-8000-0000000000aa", name = "b" } }, { conflict = { "id" } })
    assert.equal(2, #r)
    assert.equal(3, M.Tag:count())
    assert.equal("b", M.Tag:find("0190a3f2-0000-7000-8000-0000000000aa").name)
    Ev:upsert({ { at = "2024-01-01T10:00:00Z", n = 1 }, { at = "2024-01-01 10:00:00", n = 2 } }, { conflict = { "at" } })
    assert.equal(1, Ev:count())
    assert.equal(2, Ev:first().n)
    Px:upsert({ { amt = "1.5", n = 1 }, { amt = "1.50", n = 2 }, { amt = 1.5, n = 3 } }, { conflict = { "amt" } })
    assert.equal(1, Px:count())
    assert.equal(3, Px:first().n)
    local e, created = Ev:get_or_create { at = "2024-01-01T12:00:00+02:00" }
    assert.is_false(created)
    assert.equal(2, e.n)
    local p, created2 = Px:get_or_create { amt = "01.5" }
    assert.is_false(created2)
    assert.equal(3, p.n)
    -- a many-to-many add of the same uuid record found by either case adds one row
    local b = M.Book:create { title = "m", price = "1", author = R.dee }
    b.tags:add(M.Tag:find("0190A3F2-0000-7000-8000-0000000000AA"))
    b.tags:add(M.Tag:find("0190a3f2-0000-7000-8000-0000000000aa"))
    assert.same({ 1 }, col(db, "SELECT COUNT(*) AS n FROM books_tags WHERE book_id = ?", "n", { b.id }))
  end)
end)

describe("a decimal computed in SQL that does not fit", function()
  it("qs:update raises sql naming the field and its precision, and writes nothing", function()
    local db = helper.open()
    local P = db:model("Prod", { price = quay.decimal { digits = 6, places = 2 },
                                 cost = quay.decimal { digits = 6, places = 2, default = "1.00" },
                                 n = quay.integer { default = 0 } })
    db:create_tables()
    P:create { price = "9999.00" }
    P:create { price = "5.00" }
    local err = helper.raises("sql", function()
      return P:query():update { price = quay.F("price") * 10, n = 5 }
    end)
    helper.mentions(err, "Prod.price", "decimal(6, 2)", "numeric field overflow")
    err = helper.raises("sql", function()
      return P:query():update { price = quay.F("price") * 10, cost = quay.F("cost") * 2 }
    end)
    helper.mentions(err, "Prod.price", "Prod.cost")
    local rows = db:rows("SELECT n FROM prods WHERE n <> 0")
    assert.equal(0, #rows)                                         -- nothing was written
    assert.same({ "5.00", "9999.00" }, P:order_by("price"):pluck("price"))
    assert.equal(1, P:filter { price__lt = 10 }:update { price = quay.F("price") * 10 })
    db:close()
  end)
end)
