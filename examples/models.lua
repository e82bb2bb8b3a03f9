--[[
examples/models.lua
The model script run by examples/host.c (and by examples/threads.c).

The host calls this chunk with two arguments: a Quay db object that wraps
the host's own sqlite3 connection (quay_push_sqlite), and a label used to
make the data distinct (the thread number in threads.c).  The script
declares a small library schema, fills it, queries it, and returns a table
of results that the host reads back through the Lua C API:

  { models = { Author = <model>, Book = <model>, ... },
    authors = n, books = n, tagged_lua = n, ... }
]]
local quay = require("quay")
local db, label = ...
label = label or "main"

local Author = db:model("Author", {
  name = quay.string { max = 80, unique = true },
  born = quay.integer { null = true },
})
local Tag = db:model("Tag", { name = quay.string { max = 30, unique = true } })
local Book = db:model("Book", {
  title = quay.string { max = 200 },
  year = quay.integer(),
  author = quay.belongs_to("Author", { on_delete = quay.CASCADE,
                                       related_name = "books" }),
  tags = quay.many_to_many("Tag", { related_name = "books" }),
})
local Review = db:model("Review", {
  stars = quay.integer(),
  book = quay.belongs_to("Book", { on_delete = quay.CASCADE,
                                   related_name = "reviews" }),
})
db:create_tables()

-- Fill: three authors, each with books, tags and reviews.
local lua = Tag:create { name = "lua" }
local c = Tag:create { name = "c" }
local sql = Tag:create { name = "sql" }
db:transaction(function()
  local data = {
    { "Ada " .. label, 1815, { { "Notes", 1843, { c } } } },
    { "Roberto " .. label, 1960, { { "Programming in Lua", 2003, { lua } },
                                   { "Lua Gems", 2008, { lua, c } } } },
    { "Richard " .. label, 1950, { { "SQLite Internals", 2000, { c, sql } },
                                   { "Draft", 2024, {} } } },
  }
  for _, a in ipairs(data) do
    local author = Author:create { name = a[1], born = a[2] }
    for _, b in ipairs(a[3]) do
      local book = author.books:create { title = b[1], year = b[2] }
      for _, t in ipairs(b[3]) do book.tags:add(t) end
      for s = 1, #b[1] % 5 + 1 do Review:create { book = book, stars = s } end
    end
  end
end)

local result = { models = { Author = Author, Book = Book, Tag = Tag,
                            Review = Review } }
result.authors = Author:count()
result.books = Book:count()
result.tagged_lua = Book:filter { tags__name = "lua" }:count()
result.tagged_c_or_sql = Book:filter { tags__name__in = { "c", "sql" } }:count()

-- Eager loading: three queries whatever the number of authors.
local before = db:stats().queries
local shelf = {}
for _, a in ipairs(Author:order_by("name"):prefetch_related("books__tags"):all()) do
  local titles = {}
  for _, b in ipairs(a.books) do titles[#titles + 1] = b.title .. "/" .. #b.tags end
  table.sort(titles)
  shelf[#shelf + 1] = a.name .. ": " .. table.concat(titles, ", ")
end
result.shelf = shelf
result.prefetch_queries = db:stats().queries - before

-- A rollback leaves nothing behind.
local ok, err = pcall(db.transaction, db, function()
  Author:create { name = "Ghost " .. label }
  Author:create { name = "Ghost " .. label }     -- unique: integrity error
end)
result.rollback_code = (not ok) and err.code or "none"
result.authors_after_rollback = Author:count()

-- Cascade: deleting Richard removes his books, their reviews and join rows.
local richard = Author:get { name = "Richard " .. label }
result.deleted = richard:delete()
result.books_left = Book:count()
return result
