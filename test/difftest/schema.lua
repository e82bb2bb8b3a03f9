--[[
test/difftest/schema.lua
The fixed schema of the differential tester, written twice on purpose:
once as Quay declarations (declare), once as a plain description that the
oracle, the data generator and the query generator read (S.models).  The
two are checked against each other through db:describe() (check), so a
drift between them is an error of the tester, not a finding.

The description knows, per model, its fields (name, type, nullable) and its
relations.  A relation says how the oracle follows it over plain rows:
  fk      the model holds `column`, matching the target's `to_field`
  rev     the target holds `column` (matching our `to_field`); `many` says
          whether it is a set (reverse belongs_to) or one row (reverse
          one_to_one, has_one)
  m2m     pairs in data.join[join]: pair[1] is our key, pair[2] the target's
          (`flip` swaps them for the reverse direction)
  thru    pairs through the rows of a through model: `via` (that model),
          `mine` (its column naming us) and `theirs` (naming the target)
  path    quay.through: the relations followed hop by hop
`key` is the target field a path ending at the relation compares with.
]]
local S = {}

-- Model order: also the insertion order (foreign keys point backwards).
S.order = { "User", "Profile", "Badge", "Note", "Shop", "Tag", "Post", "Comment",
            "Student", "Course", "Enrolment" }

local function f(name, type, null) return { name = name, type = type, null = null } end

S.models = {
  User = {
    fields = { f("id", "id"), f("name", "string", true), f("age", "integer", true),
               f("score", "number", true), f("active", "boolean", true),
               f("joined", "datetime", true) },
    rels = {
      follows = { kind = "m2m", target = "User", join = "follows", many = true, key = "id" },
      followers = { kind = "m2m", target = "User", join = "follows", flip = true,
                    many = true, key = "id" },
      notes = { kind = "rev", target = "Note", column = "user_id", to_field = "id",
                many = true, key = "id" },
      badge = { kind = "rev", target = "Badge", column = "user_id", to_field = "id",
                many = false, key = "id" },
      profile = { kind = "rev", target = "Profile", column = "user_id", to_field = "id",
                  many = false, key = "id" },
      posts = { kind = "rev", target = "Post", column = "author_id", to_field = "id",
                many = true, key = "id" },
      edited = { kind = "rev", target = "Post", column = "editor_id", to_field = "id",
                 many = true, key = "id" },
      comments = { kind = "rev", target = "Comment", column = "author_id", to_field = "id",
                   many = true, key = "id" },
      students = { kind = "rev", target = "Student", column = "user_id", to_field = "id",
                   many = true, key = "id" },
    },
  },
  Profile = {
    fields = { f("id", "id"), f("user_id", "integer", true), f("bio", "text", true),
               f("level", "integer", true) },
    rels = {
      user = { kind = "fk", target = "User", column = "user_id", to_field = "id",
               many = false, key = "id" },
    },
  },
  -- The child sides of User.badge (has_one) and User.notes (has_many): a
  -- plain integer column.  Declared without related_name, they register
  -- no reverse accessor on the child (docs/reference.md "Relations").
  Badge = {
    fields = { f("id", "id"), f("label", "string", true), f("user_id", "integer", true) },
    rels = {},
  },
  Note = {
    fields = { f("id", "id"), f("text", "string", true), f("user_id", "integer", true) },
    rels = {},
  },
  -- A model keyed by a uuid (a lower-case string, docs/reference.md
  -- "UUIDs"), reached from Tag.shop (a belongs_to on a uuid key).
  Shop = {
    fields = { f("id", "uuid"), f("name", "string", true), f("rank", "integer", true) },
    rels = {
      tags = { kind = "rev", target = "Tag", column = "shop_id", to_field = "id",
               many = true, key = "id" },
    },
  },
  Tag = {
    fields = { f("id", "id"), f("name", "string", true), f("slug", "string", false),
               f("weight", "integer", true), f("shop_id", "uuid", true) },
    rels = {
      shop = { kind = "fk", target = "Shop", column = "shop_id", to_field = "id",
               many = false, key = "id" },
      posts = { kind = "m2m", target = "Post", join = "post_tags", flip = true,
                many = true, key = "id" },
      main_posts = { kind = "rev", target = "Post", column = "main_tag_id", to_field = "slug",
                     many = true, key = "id" },
    },
  },
  Post = {
    fields = { f("id", "id"), f("title", "string", true), f("body", "text", true),
               f("views", "integer", true), f("rating", "number", true),
               f("published", "boolean", true), f("created", "datetime", true),
               f("author_id", "integer", false), f("editor_id", "integer", true),
               f("parent_id", "integer", true), f("main_tag_id", "string", true),
               f("price", "decimal", true), f("due", "date", true), f("meta", "json", true) },
    rels = {
      author = { kind = "fk", target = "User", column = "author_id", to_field = "id",
                 many = false, key = "id" },
      editor = { kind = "fk", target = "User", column = "editor_id", to_field = "id",
                 many = false, key = "id" },
      parent = { kind = "fk", target = "Post", column = "parent_id", to_field = "id",
                 many = false, key = "id" },
      main_tag = { kind = "fk", target = "Tag", column = "main_tag_id", to_field = "slug",
                   many = false, key = "slug" },
      tags = { kind = "m2m", target = "Tag", join = "post_tags", many = true, key = "id" },
      children = { kind = "rev", target = "Post", column = "parent_id", to_field = "id",
                   many = true, key = "id" },
      comments = { kind = "rev", target = "Comment", column = "post_id", to_field = "id",
                   many = true, key = "id" },
    },
  },
  Comment = {
    fields = { f("id", "id"), f("body", "text", true), f("likes", "integer", true),
               f("post_id", "integer", false), f("author_id", "integer", true) },
    rels = {
      post = { kind = "fk", target = "Post", column = "post_id", to_field = "id",
               many = false, key = "id" },
      author = { kind = "fk", target = "User", column = "author_id", to_field = "id",
                 many = false, key = "id" },
      post_author = { kind = "path", target = "User", path = { "post", "author" },
                      many = false, key = "id" },
    },
  },
  Student = {
    fields = { f("id", "id"), f("name", "string", true), f("user_id", "integer", true) },
    rels = {
      user = { kind = "fk", target = "User", column = "user_id", to_field = "id",
               many = false, key = "id" },
      enrolments = { kind = "rev", target = "Enrolment", column = "student_id",
                     to_field = "id", many = true, key = "id" },
      courses = { kind = "thru", target = "Course", via = "Enrolment", mine = "student_id",
                  theirs = "course_id", many = true, key = "id" },
    },
  },
  Course = {
    fields = { f("id", "id"), f("title", "string", true), f("credits", "integer", true) },
    rels = {
      students = { kind = "thru", target = "Student", via = "Enrolment", mine = "course_id",
                   theirs = "student_id", many = true, key = "id" },
      learners = { kind = "path", target = "Student", path = { "enrolments", "student" },
                   many = true, key = "id" },
      enrolments = { kind = "rev", target = "Enrolment", column = "course_id",
                     to_field = "id", many = true, key = "id" },
    },
  },
  Enrolment = {
    fields = { f("id", "id"), f("student_id", "integer", false),
               f("course_id", "integer", false), f("grade", "integer", true),
               f("term", "string", true) },
    rels = {
      student = { kind = "fk", target = "Student", column = "student_id", to_field = "id",
                  many = false, key = "id" },
      course = { kind = "fk", target = "Course", column = "course_id", to_field = "id",
                 many = false, key = "id" },
    },
  },
}

-- Sorted name lists (pairs order must not leak into generation).
for _, m in pairs(S.models) do
  m.field_by = {}
  for _, fd in ipairs(m.fields) do m.field_by[fd.name] = fd end
  m.rel_names = {}   -- the relations the generator walks
  for name, r in pairs(m.rels) do
    if not r.nogen then m.rel_names[#m.rel_names + 1] = name end
  end
  table.sort(m.rel_names)
end

--- Declare the models on db through Quay; returns { Name = model }.
function S.declare(db, quay)
  local M = {}
  local C, SN = quay.CASCADE, quay.SET_NULL
  M.User = db:model("User", {
    name = quay.string { max = 50, null = true },
    age = quay.integer { null = true },
    score = quay.number { null = true },
    active = quay.boolean { null = true },
    joined = quay.datetime { null = true },
    follows = quay.many_to_many("self", { related_name = "followers" }),
    notes = quay.has_many("Note", { foreign_key = "user_id" }),
    badge = quay.has_one("Badge", { foreign_key = "user_id" }),
  })
  M.Profile = db:model("Profile", {
    user = quay.one_to_one("User", { null = true, on_delete = SN, related_name = "profile" }),
    bio = quay.text { null = true },
    level = quay.integer { null = true },
  })
  M.Badge = db:model("Badge", {
    label = quay.string { null = true },
    user_id = quay.integer { null = true, unique = true },
  })
  M.Note = db:model("Note", {
    text = quay.string { null = true },
    user_id = quay.integer { null = true },
  })
  M.Shop = db:model("Shop", {
    id = quay.uuid { primary_key = true },
    name = quay.string { null = true },
    rank = quay.integer { null = true },
  })
  M.Tag = db:model("Tag", {
    shop = quay.belongs_to("Shop", { null = true, on_delete = SN, related_name = "tags" }),
    name = quay.string { null = true },
    slug = quay.string { unique = true },
    weight = quay.integer { null = true },
  })
  M.Post = db:model("Post", {
    title = quay.string { null = true },
    body = quay.text { null = true },
    views = quay.integer { null = true },
    rating = quay.number { null = true },
    published = quay.boolean { null = true },
    created = quay.datetime { null = true },
    price = quay.decimal { digits = 10, places = 2, null = true },
    due = quay.date { null = true },
    meta = quay.json { null = true },
    author = quay.belongs_to("User", { on_delete = C, related_name = "posts" }),
    editor = quay.belongs_to("User", { null = true, on_delete = SN, related_name = "edited" }),
    parent = quay.belongs_to("self", { null = true, on_delete = SN, related_name = "children" }),
    main_tag = quay.belongs_to("Tag", { null = true, to_field = "slug", on_delete = SN,
                                        related_name = "main_posts" }),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
  })
  M.Comment = db:model("Comment", {
    body = quay.text { null = true },
    likes = quay.integer { null = true },
    post = quay.belongs_to("Post", { on_delete = C, related_name = "comments" }),
    author = quay.belongs_to("User", { null = true, on_delete = SN, related_name = "comments" }),
    post_author = quay.through("post", "author"),
  })
  M.Student = db:model("Student", {
    name = quay.string { null = true },
    user = quay.belongs_to("User", { null = true, on_delete = SN, related_name = "students" }),
  })
  M.Course = db:model("Course", {
    title = quay.string { null = true },
    credits = quay.integer { null = true },
    students = quay.many_to_many("Student", { through = "Enrolment", related_name = "courses" }),
    learners = quay.through("enrolments", "student"),
  })
  M.Enrolment = db:model("Enrolment", {
    student = quay.belongs_to("Student", { on_delete = C, related_name = "enrolments" }),
    course = quay.belongs_to("Course", { on_delete = C, related_name = "enrolments" }),
    grade = quay.integer { null = true },
    term = quay.string { null = true },
  })
  return M
end

--- Check the description against db:describe(): every described relation
--- exists with that target, every described field exists.  Raises on drift.
function S.check(db)
  local d = db:describe()
  for name, m in pairs(S.models) do
    local dm = assert(d[name], "difftest schema: no model " .. name)
    local cols = {}
    for _, fd in ipairs(dm.fields) do cols[fd.column or fd.name] = fd end
    local fkcols = {}
    for _, r in pairs(m.rels) do if r.kind == "fk" and not r.plain then fkcols[r.column] = true end end
    for _, fd in ipairs(m.fields) do
      if fkcols[fd.name] then goto continue end
      assert(cols[fd.name], "difftest schema: no column " .. name .. "." .. fd.name)
      assert(fd.name == "id" or (cols[fd.name].null == true) == (fd.null == true),
        "difftest schema: nullability of " .. name .. "." .. fd.name)
      ::continue::
    end
    local rels = {}
    for _, r in ipairs(dm.relations) do rels[r.name] = r end
    for rn, r in pairs(m.rels) do
      assert(rels[rn], "difftest schema: no relation " .. name .. "." .. rn)
      assert(rels[rn].target == r.target, "difftest schema: target of " .. name .. "." .. rn)
    end
    for rn in pairs(rels) do
      assert(m.rels[rn], "difftest schema: undescribed relation " .. name .. "." .. rn)
    end
  end
  return true
end

return S
