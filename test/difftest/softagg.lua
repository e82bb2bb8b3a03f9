--[[
test/difftest/softagg.lua
A randomized check of aggregates, annotations and values groups over
soft-deleted rows (docs/reference.md "Soft-deleted rows along a path"),
which the main tester's schema (schema.lua) does not declare: users,
posts and comments that soft-delete, random rows hidden at every level,
random annotations of users (to-many paths, to-one keys at the end of a
path, filters, quay.F) with filters, excludes, orders and windows on them,
and random values groups of posts, each compared with hand-written SQL
over the same rows.  A ctest per backend (softagg.sh), and a tool for
sweeps with more seeds.

  lua5.4 test/difftest/softagg.lua [URL] [--seeds A-B] [--cases N]

The last line is "softagg: N cases, K mismatches"; the exit status is 1 on
any mismatch.
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
local quay, url, s0, s1, N = dofile(root .. "/test/difftest/seeded.lua")(
  root, arg, "--cases", 1, 3, 200)
local is_pg = not url:match("^sqlite")
local R = math.random

-- A fresh database of random rows, some soft-deleted at every level.
local function instance(seed)
  math.randomseed(seed)
  local db = quay.open(url)
  if is_pg then db:execute("DROP SCHEMA IF EXISTS public CASCADE"); db:execute("CREATE SCHEMA public") end
  local User = db:model("User", { name = quay.string(), karma = quay.integer{null=true}, soft_delete = true })
  local Post = db:model("Post", { views = quay.integer{null=true},
    author = quay.belongs_to("User", {on_delete=quay.CASCADE, related_name="posts"}),
    editor = quay.belongs_to("User", {null=true, on_delete=quay.SET_NULL, related_name="edited"}), soft_delete = true })
  local Com = db:model("Comment", { score = quay.integer{null=true},
    post = quay.belongs_to("Post", {on_delete=quay.CASCADE, related_name="comments"}),
    author = quay.belongs_to("User", {on_delete=quay.CASCADE, related_name="comments"}), soft_delete = true })
  db:create_tables()
  local us, ps = {}, {}
  db:transaction(function()
    for i = 1, 9 do us[i] = User:create{name = "u" .. R(1, 4), karma = R() < 0.2 and quay.null or R(-2, 5)} end
    for i = 1, 25 do ps[i] = Post:create{views = R() < 0.2 and quay.null or R(-5, 20), author = us[R(1, 9)], editor = R() < 0.3 and quay.null or us[R(1, 9)]} end
    for _ = 1, 40 do Com:create{score = R() < 0.2 and quay.null or R(0, 9), post = ps[R(1, 25)], author = us[R(1, 9)]} end
    for i = 1, 9 do if R() < 0.25 then us[i]:delete() end end
    for i = 1, 25 do if R() < 0.2 then ps[i]:delete() end end
    for _, c in ipairs(Com:all()) do if R() < 0.15 then c:delete() end end
  end)
  return db, User, Post, us
end

local function vs(v) return v == nil and "nil" or tostring(v) end
local function render(list, key, names)
  local o = {}
  for _, r in ipairs(list) do
    local p = { vs(r[key]) }
    for _, nm in ipairs(names) do
      local v = r[nm]
      if type(v) == "boolean" then v = v and 1 or 0 end
      if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
      p[#p + 1] = vs(v)
    end
    o[#o + 1] = table.concat(p, ":")
  end
  return table.concat(o, " ")
end
local total, bad = 0, 0
local function report(seed, case, what, names, sqls, g, w)
  bad = bad + 1
  if bad > 8 then return end
  print(("MISMATCH seed %d case %d: %s"):format(seed, case, what))
  for _, nm in ipairs(names) do print("  " .. nm .. " = " .. sqls[nm]) end
  print("  quay: " .. g)
  print("  sql:  " .. w)
end

local function annotate_cases(seed, db, User, us)
  local LP, LC, LU = "p.deleted_at IS NULL", "c.deleted_at IS NULL", "a.deleted_at IS NULL"
  local ANN = {
    function(x) return quay.count("posts"), ("(SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id AND %s)"):format(LP) end,
    function(x) return quay.sum("posts__views", {filter = {posts__views__gt = x}}), ("(SELECT SUM(p.views) FROM posts p WHERE p.author_id = u.id AND %s AND p.views > %d)"):format(LP, x) end,
    function(x) return quay.count("posts__comments"), ("(SELECT COUNT(*) FROM posts p JOIN comments c ON c.post_id = p.id WHERE p.author_id = u.id AND %s AND %s)"):format(LP, LC) end,
    function(x) return quay.count("comments", {filter = {comments__score__gte = x % 10}}), ("(SELECT COUNT(*) FROM comments c WHERE c.author_id = u.id AND %s AND c.score >= %d)"):format(LC, x % 10) end,
    function(x) return quay.max("comments__post__views"), ("(SELECT MAX(p.views) FROM comments c JOIN posts p ON p.id = c.post_id WHERE c.author_id = u.id AND %s AND %s)"):format(LC, LP) end,
    function(x) return quay.count("comments__post"), ("(SELECT COUNT(DISTINCT c.post_id) FROM comments c WHERE c.author_id = u.id AND %s)"):format(LC) end,
    function(x) return quay.count("edited__author"), ("(SELECT COUNT(DISTINCT p.author_id) FROM posts p WHERE p.editor_id = u.id AND %s)"):format(LP) end,
    function(x) return quay.count("edited__author__name"), ("(SELECT COUNT(DISTINCT a.id) FROM posts p JOIN users a ON a.id = p.author_id WHERE p.editor_id = u.id AND %s AND %s)"):format(LP, LU) end,
    function(x) return quay.sum("edited__author__karma"), ("(SELECT SUM(a.karma) FROM users a WHERE %s AND a.id IN (SELECT p.author_id FROM posts p WHERE p.editor_id = u.id AND %s))"):format(LU, LP) end,
    function(x) return quay.count("posts__editor"), ("(SELECT COUNT(DISTINCT p.editor_id) FROM posts p WHERE p.author_id = u.id AND %s)"):format(LP) end,
    function(x) return quay.min("posts__comments__score"), ("(SELECT MIN(c.score) FROM posts p JOIN comments c ON c.post_id = p.id WHERE p.author_id = u.id AND %s AND %s)"):format(LP, LC) end,
    function(x) return quay.count("posts__comments__author", {distinct = true}), ("(SELECT COUNT(DISTINCT c.author_id) FROM posts p JOIN comments c ON c.post_id = p.id WHERE p.author_id = u.id AND %s AND %s)"):format(LP, LC) end,
    function(x) return quay.count("posts", {filter = {posts__editor__karma__gte = x % 4}}), ("(SELECT COUNT(*) FROM posts p JOIN users a ON a.id = p.editor_id AND %s WHERE p.author_id = u.id AND %s AND a.karma >= %d)"):format(LU, LP, x % 4) end,
    function(x) return quay.count("posts", {filter = {posts__editor = us[x % 9 + 1]}}), ("(SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id AND %s AND p.editor_id = %d)"):format(LP, us[x % 9 + 1].id) end,
    function(x) return quay.F("karma") * 2 + x, ("(u.karma * 2 + %d)"):format(x) end,
  }
  local SETS = {
    { function() return User:query() end, "u.deleted_at IS NULL" },
    { function() return User:with_deleted() end, "1 = 1" },
    { function() return User:only_deleted() end, "u.deleted_at IS NOT NULL" },
    { function() return User:filter{karma__gte = 1} end, "u.deleted_at IS NULL AND u.karma >= 1" },
    { function() return User:where_has("posts") end, "u.deleted_at IS NULL AND EXISTS (SELECT 1 FROM posts p WHERE p.author_id = u.id AND p.deleted_at IS NULL)" },
  }
  for case = 1, N do
    total = total + 1
    local set = SETS[R(1, #SETS)]
    local anns, sqls, names = {}, {}, {}
    for i = 1, R(1, 4) do
      local k = R(1, #ANN)
      local e, sql = ANN[k](R(0, 12))
      local nm = "a" .. i
      anns[nm] = e; sqls[nm] = sql; names[#names + 1] = nm
    end
    local qs = set[1]():annotate(anns)
    local where = set[2]
    local desc = {}
    if R() < 0.6 then
      local nm = names[R(1, #names)]
      local v = R(0, 6)
      local ops = { { "gte", ">=" }, { "lt", "<" }, { "", "=" }, { "ne", "ne" } }
      local op = ops[R(1, #ops)]
      local conds = {}
      conds[nm .. (op[1] ~= "" and "__" .. op[1] or "")] = v
      local exc = R() < 0.3
      qs = exc and qs:exclude(conds) or qs:filter(conds)
      local c = op[2] == "ne" and ("(%s IS NULL OR %s <> %d)"):format(sqls[nm], sqls[nm], v) or ("%s %s %d"):format(sqls[nm], op[2], v)
      where = where .. (exc and (" AND NOT COALESCE(%s, %s)"):format(c, is_pg and "FALSE" or "0") or (" AND " .. c))
      desc[#desc + 1] = (exc and "exclude " or "filter ") .. nm .. " " .. op[2] .. " " .. v
    end
    local order, sorder = {}, {}
    for i = 1, R(0, 2) do
      local nm = names[R(1, #names)]
      local d = R() < 0.5
      order[#order + 1] = (d and "-" or "") .. nm
      sorder[#sorder + 1] = ("CASE WHEN %s IS NULL THEN %d ELSE %d END, %s%s"):format(sqls[nm], d and 1 or 0, d and 0 or 1, sqls[nm], d and " DESC" or "")
    end
    if #order > 0 then qs = qs:order_by(table.unpack(order)) end
    sorder[#sorder + 1] = "u.id"
    local lim, off = "", ""
    if R() < 0.4 then local l, o = R(1, 5), R(0, 3); qs = qs:offset(o):limit(l); lim = (" LIMIT %d OFFSET %d"):format(l, o); desc[#desc + 1] = "page " .. o .. "/" .. l end
    local sel = { "u.id AS id" }
    for _, nm in ipairs(names) do sel[#sel + 1] = sqls[nm] .. " AS " .. nm end
    local sql = "SELECT " .. table.concat(sel, ", ") .. " FROM users u WHERE " .. where .. " ORDER BY " .. table.concat(sorder, ", ") .. lim
    local ok, got = pcall(function() return qs:all() end)
    local want = db:rows(sql)
    local g = ok and render(got, "id", names) or ("ERROR " .. tostring(got.code) .. " " .. tostring(got.message))
    local w = render(want, "id", names)
    local cnt = ok and qs:count() or -1
    if g ~= w or cnt ~= #want then
      report(seed, case, table.concat(desc, "; ") .. " order " .. table.concat(order, ","), names, sqls,
             g .. " count " .. cnt, w)
    end
  end
end

local function grouped_cases(seed, db, Post)
  local LC = "c.deleted_at IS NULL"
  -- group columns over posts p, LEFT JOIN users a (author) and e (editor)
  local GROUPS = {
    { "author", "p.author_id" },
    { "author__name", "CASE WHEN a.deleted_at IS NULL THEN a.name END" },
    { "editor", "p.editor_id" },
    { "editor__karma", "CASE WHEN e.deleted_at IS NULL THEN e.karma END" },
    { "views", "p.views" },
  }
  local AGGS = {
    function() return quay.count(), "COUNT(*)" end,
    function() return quay.sum("views"), "SUM(p.views)" end,
    function() return quay.count("comments"), ("SUM((SELECT COUNT(*) FROM comments c WHERE c.post_id = p.id AND %s))"):format(LC) end,
    function() return quay.count("editor"), "COUNT(p.editor_id)" end,
    function() return quay.count("editor__name"), "COUNT(CASE WHEN e.deleted_at IS NULL THEN e.name END)" end,
    function() return quay.max("author__karma"), "MAX(CASE WHEN a.deleted_at IS NULL THEN a.karma END)" end,
    function() return quay.sum("comments__score"), ("SUM((SELECT SUM(c.score) FROM comments c WHERE c.post_id = p.id AND %s))"):format(LC) end,
    function() return quay.count("comments__author"), ("SUM((SELECT COUNT(DISTINCT c.author_id) FROM comments c WHERE c.post_id = p.id AND %s))"):format(LC) end,
    function() return quay.exists("comments"), ("MAX((SELECT CASE WHEN COUNT(*) > 0 THEN 1 ELSE 0 END FROM comments c WHERE c.post_id = p.id AND %s))"):format(LC) end,
  }
  for case = 1, N do
    total = total + 1
    local gi = R(1, #GROUPS)
    local g = GROUPS[gi]
    local anns, sqls, names = {}, {}, {}
    for i = 1, R(1, 3) do
      local e, sql = AGGS[R(1, #AGGS)]()
      anns["a" .. i] = e; sqls["a" .. i] = sql; names[#names + 1] = "a" .. i
    end
    local base, where = Post:query(), "p.deleted_at IS NULL"
    if R() < 0.3 then base = Post:with_deleted(); where = "1 = 1" end
    if R() < 0.3 then base = base:filter{views__gte = 0}; where = where .. " AND p.views >= 0" end
    local qs = base:values(g[1]):annotate(anns):order_by(g[1])
    local sel = { g[2] .. " AS g" }
    for _, nm in ipairs(names) do sel[#sel + 1] = sqls[nm] .. " AS " .. nm end
    local sql = "SELECT " .. table.concat(sel, ", ") .. " FROM posts p JOIN users a ON a.id = p.author_id LEFT JOIN users e ON e.id = p.editor_id WHERE " .. where ..
      " GROUP BY " .. g[2] .. " ORDER BY CASE WHEN " .. g[2] .. " IS NULL THEN 0 ELSE 1 END, " .. g[2]
    local ok, got = pcall(function() return qs:all() end)
    local want = db:rows(sql)
    local gg = ok and render(got, g[1], names) or ("ERROR " .. tostring(got.code) .. " " .. tostring(got.message))
    local w = render(want, "g", names)
    if gg ~= w then
      report(seed, case, "group " .. g[1] .. " where " .. where, names, sqls, gg, w)
    end
  end
end

for seed = s0, s1 do
  local db, User, Post, us = instance(seed)
  annotate_cases(seed, db, User, us)
  grouped_cases(seed, db, Post)
  db:close()
end
print(("softagg: %d cases, %d mismatches"):format(total, bad))
os.exit(bad == 0 and 0 or 1)
