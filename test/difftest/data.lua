--[[
test/difftest/data.lua
Random schema instances: plain Lua rows per model, join pairs per automatic
many_to_many, loaded into Quay by load() and read back by verify().

An instance is { rows = { Model = { row, ... } }, join = { name = { {a, b}, ... } } }.
A row maps column names to values, V.NULL for SQL NULL.  Ids are 1..n in
insertion order.  Each nullable column draws NULL often, and every column
draws from a small per-instance sub-pool, so values repeat and conditions
both hit and miss.
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")

local D = {}
local NULL = V.NULL
local random = math.random

local function pick(list) return list[random(#list)] end

-- A per-instance sub-pool for one column: a handful of pool values.
local function subpool(ty, n)
  local pool = V.pool[ty]
  local out, seen = {}, {}
  for _ = 1, n do
    local v = pick(pool)
    local k = (type(v) == "table" and not V.is_dec(v)) and v or (tostring(v) .. (math.type(v) or type(v)))
    if not seen[k] then seen[k] = true; out[#out + 1] = v end
  end
  return out
end

--- A random instance from the current math.random state.  `scale` (default
--- 1) multiplies the row counts.
function D.generate(scale)
  scale = scale or 1
  local function n(lo, hi) return math.max(0, math.floor(random(lo, hi) * scale + 0.5)) end
  local inst = { rows = {}, join = { follows = {}, post_tags = {} } }
  local counts = {
    User = n(6, 16), Tag = n(3, 8), Post = n(8, 26), Comment = n(6, 24),
    Student = n(3, 8), Course = n(2, 6), Note = n(2, 10),
  }
  if counts.User == 0 then counts.User = 1 end
  if counts.Post == 0 then counts.Post = 1 end
  if counts.Course == 0 then counts.Course = 1 end
  if counts.Student == 0 then counts.Student = 1 end
  local pools, nullp = {}, {}
  for _, name in ipairs(S.order) do
    local m = S.models[name]
    pools[name], nullp[name] = {}, {}
    for _, fd in ipairs(m.fields) do
      if V.pool[fd.type] then
        pools[name][fd.name] = subpool(fd.type, random(2, 7))
      end
      nullp[name][fd.name] = fd.null and ({ 0, 0.15, 0.3, 0.6 })[random(4)] or 0
    end
  end
  local function value(model, col)
    if random() < nullp[model][col] then return NULL end
    return pick(pools[model][col])
  end
  local function plain(model, count, extra)
    local rows = {}
    for id = 1, count do
      local r = { id = id }
      for _, fd in ipairs(S.models[model].fields) do
        if fd.name ~= "id" then
          if pools[model][fd.name] and not (extra and extra[fd.name]) then
            r[fd.name] = value(model, fd.name)
          end
        end
      end
      if extra then
        local cols = {}
        for col in pairs(extra) do cols[#cols + 1] = col end
        table.sort(cols)            -- the draws must not follow hash order
        for _, col in ipairs(cols) do r[col] = extra[col](id, r) end
      end
      rows[id] = r
    end
    inst.rows[model] = rows
    return rows
  end
  local function ref(count, p_null)     -- a random id 1..count, or NULL
    if count == 0 or random() < p_null then return NULL end
    return random(count)
  end
  local users = plain("User", counts.User)
  -- Profiles: most users get one (at most one each), plus orphans.
  local prof_users = {}
  for id = 1, #users do if random() < 0.6 then prof_users[#prof_users + 1] = id end end
  local orphans = random(0, 2)
  plain("Profile", #prof_users + orphans, {
    user_id = function(id) return prof_users[id] or NULL end })
  -- Badges (has_one): at most one per user; Notes (has_many), some dangling.
  local badge_users = {}
  for id = 1, #users do if random() < 0.4 then badge_users[#badge_users + 1] = id end end
  plain("Badge", #badge_users + random(0, 1), {
    user_id = function(id) return badge_users[id] or NULL end })
  plain("Note", counts.Note, {
    user_id = function() return random() < 0.1 and (#users + 5) or ref(#users, 0.15) end })
  -- Tags: slug unique (the to_field of Post.main_tag).
  local slugs = { "lua", "c", "Lua", "sql", "a_b", "a%b", "x\\y", "ü", "日本", "", "LUA", "zz" }
  -- Shops: keyed by uuids (distinct, in key order, as order_by("id") reads them).
  local uuids = {}
  for _, u in ipairs(V.pool.uuid) do if random() < 0.5 then uuids[#uuids + 1] = u end end
  table.sort(uuids)
  local shops = plain("Shop", #uuids)
  for i, r in ipairs(shops) do r.id = uuids[i] end
  local p_shop = random() * 0.8
  local tags = plain("Tag", math.min(counts.Tag, #slugs), {
    slug = function(id) return slugs[id] end,
    shop_id = function()
      if #shops == 0 or random() < p_shop then return NULL end
      return shops[random(#shops)].id
    end })
  -- Posts: the parent is an earlier post (foreign keys are checked per row).
  local p_editor, p_parent, p_main = random() * 0.8, random() * 0.8, random() * 0.8
  local posts = plain("Post", counts.Post, {
    author_id = function() return random(#users) end,
    editor_id = function() return ref(#users, p_editor) end,
    parent_id = function(id) return ref(id - 1, p_parent) end,
    main_tag_id = function()
      local t = ref(#tags, p_main)
      return t == NULL and NULL or tags[t].slug
    end,
  })
  plain("Comment", counts.Comment, {
    post_id = function() return random(#posts) end,
    author_id = function() return ref(#users, 0.3) end,
  })
  local students = plain("Student", counts.Student, {
    user_id = function() return ref(#users, 0.4) end })
  local courses = plain("Course", counts.Course)
  -- Enrolments: unique (student, course) pairs.
  local pairs_ = {}
  for s = 1, #students do
    for c = 1, #courses do
      if random() < 0.35 then pairs_[#pairs_ + 1] = { s, c } end
    end
  end
  plain("Enrolment", #pairs_, {
    student_id = function(id) return pairs_[id][1] end,
    course_id = function(id) return pairs_[id][2] end,
  })
  -- Join pairs: unique, self follows allowed.
  local pf = random() * 0.3
  for a = 1, #users do
    for b = 1, #users do
      if random() < pf then inst.join.follows[#inst.join.follows + 1] = { a, b } end
    end
  end
  local pt = random() * 0.5
  for p = 1, #posts do
    for t = 1, #tags do
      if random() < pt then inst.join.post_tags[#inst.join.post_tags + 1] = { p, t } end
    end
  end
  return inst
end

--- A deep copy of an instance.
function D.copy(inst)
  local out = { rows = {}, join = {} }
  for m, rows in pairs(inst.rows) do
    local t = {}
    for i, r in ipairs(rows) do
      local c = {}
      for k, v in pairs(r) do c[k] = v end
      t[i] = c
    end
    out.rows[m] = t
  end
  for j, list in pairs(inst.join) do
    local t = {}
    for i, p in ipairs(list) do t[i] = { p[1], p[2] } end
    out.join[j] = t
  end
  return out
end

--- Load an instance into Quay models M (empty tables).
function D.load(db, quay, M, inst)
  local function qv(v)
    if v == NULL then return quay.null end
    if V.is_dec(v) then return v.form or V.dec_str(v) end
    if type(v) == "table" then         -- a JSON document: V.NULL inside is quay.null
      local t = {}
      for k, x in pairs(v) do t[k] = qv(x) end
      return t
    end
    return v
  end
  db:transaction(function()
    for _, name in ipairs(S.order) do
      local list = {}
      for i, r in ipairs(inst.rows[name] or {}) do
        local t = {}
        for k, v in pairs(r) do t[k] = qv(v) end
        list[i] = t
      end
      if #list > 0 then M[name]:bulk_create(list) end
    end
    local by_from = {}
    for _, p in ipairs(inst.join.follows) do
      by_from[p[1]] = by_from[p[1]] or {}
      table.insert(by_from[p[1]], p[2])
    end
    for from, tos in pairs(by_from) do
      local targets = {}
      for i, to in ipairs(tos) do targets[i] = M.User:find(to) end
      M.User:find(from).follows:add(table.unpack(targets))
    end
    local by_post = {}
    for _, p in ipairs(inst.join.post_tags) do
      by_post[p[1]] = by_post[p[1]] or {}
      table.insert(by_post[p[1]], p[2])
    end
    for post, tags in pairs(by_post) do
      local targets = {}
      for i, t in ipairs(tags) do targets[i] = M.Tag:find(t) end
      M.Post:find(post).tags:add(table.unpack(targets))
    end
  end)
end

--- Read every row back and compare with the instance; returns nil or a
--- description of the first difference (a finding of its own: a value that
--- does not survive a round trip).  only: one model's rows.
function D.verify(db, M, inst, only)
  local quay_null = require("quay").null
  for _, name in ipairs(only and { only } or S.order) do
    local rows = inst.rows[name] or {}
    local got = M[name]:order_by("id"):all()
    if #got ~= #rows then
      return ("%s: %d rows read back, %d written"):format(name, #got, #rows)
    end
    for i, r in ipairs(rows) do
      local g = got[i]
      for _, fd in ipairs(S.models[name].fields) do
        local want, have = r[fd.name], g[fd.name]
        if have == nil then have = NULL end
        local same
        if fd.type == "json" then
          same = V.json_eq(want, have, function(x) return x == NULL or x == quay_null end)
        elseif want == NULL or have == NULL then same = want == have
        elseif V.is_dec(want) then same = have == V.dec_str(want)
        else same = math.type(want) == math.type(have) and want == have
          or (fd.type == "number" and type(have) == "number" and want == have) end
        if not same then
          return ("%s(%s).%s: wrote %s, read back %s"):format(name, V.lua(r.id), fd.name,
            V.lua(want), V.lua(have))
        end
      end
    end
  end
  if only then return nil end
  local n = #db:rows("SELECT * FROM users_users")
  if n ~= #inst.join.follows then return "follows: pair count differs" end
  return nil
end

--- The loading paths over the uuid key (Shop, Tag.shop): prefetch_related
--- both ways and through a to-many hop, select_related, and the lazy load;
--- returns nil or a description of the first difference.
function D.verify_loading(M, inst)
  local shop_of, tags_of = {}, {}
  for _, t in ipairs(inst.rows.Tag or {}) do
    shop_of[t.id] = t.shop_id
    if t.shop_id ~= NULL then
      tags_of[t.shop_id] = tags_of[t.shop_id] or {}
      table.insert(tags_of[t.shop_id], t.id)
    end
  end
  local function ids(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.id end
    table.sort(out)
    return table.concat(out, ",")
  end
  for _, s in ipairs(M.Shop:prefetch_related("tags"):order_by("id"):all()) do
    local want = tags_of[s.id] or {}
    table.sort(want)
    if ids(s.tags) ~= table.concat(want, ",") then
      return ("Shop:prefetch_related(\"tags\"): Shop(%s).tags: want {%s}, got {%s}"):format(
        V.lua(s.id), table.concat(want, ","), ids(s.tags))
    end
  end
  for _, how in ipairs { "prefetch_related", "select_related", "lazy" } do
    local q = how == "lazy" and M.Tag:query() or M.Tag[how](M.Tag, "shop")
    for _, t in ipairs(q:order_by("id"):all()) do
      local want, got = shop_of[t.id], t.shop
      got = got and got.id or NULL
      if want ~= got then
        return ("Tag %s shop: Tag(%d).shop: want %s, got %s"):format(how, t.id, V.lua(want), V.lua(got))
      end
    end
  end
  -- two hops: posts, their tags, the tags' shops
  local by_post = {}
  for _, p in ipairs(inst.join.post_tags or {}) do
    by_post[p[1]] = by_post[p[1]] or {}
    table.insert(by_post[p[1]], p[2])
  end
  for _, p in ipairs(M.Post:prefetch_related("tags__shop"):order_by("id"):all()) do
    local want, got = {}, {}
    for _, tid in ipairs(by_post[p.id] or {}) do want[#want + 1] = tid .. ":" .. V.lua(shop_of[tid]) end
    for _, t in ipairs(p.tags) do got[#got + 1] = t.id .. ":" .. V.lua(t.shop and t.shop.id or NULL) end
    table.sort(want); table.sort(got)
    if table.concat(want, ",") ~= table.concat(got, ",") then
      return ("Post:prefetch_related(\"tags__shop\"): Post(%d): want {%s}, got {%s}"):format(
        p.id, table.concat(want, ","), table.concat(got, ","))
    end
  end
  return nil
end

return D
