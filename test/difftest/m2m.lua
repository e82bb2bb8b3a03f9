--[[
test/difftest/m2m.lua
A randomized check of the writes through many-to-many related sets
(docs/reference.md "Relation access on a record", "Deleting and
cascades"), which the write tester (writes.lua) does not draw: random
add (records and lists, pairs repeated and present already, through
values), remove (records and lists, none at all: nothing removed),
clear, set (lists that keep, drop and add pairs), contains, records of
the wrong model and records not saved yet, as the set's owner or among
the arguments (validation, nothing changed), and
deletes of either side (rec:delete and qs:delete, dry runs), on an
automatic join table, a self relation (both directions) and a through
model; against a plain-Lua set of pairs.  After every operation the join
rows read by raw SQL, the set written through (it refreshes itself), a
fresh read of both directions, a filter across the relation and an
annotated count must match.

  lua5.4 test/difftest/m2m.lua [URL] [--seeds A-B] [--ops N]

The last line is "m2m: N ops, K mismatches"; the exit status is 1 on any
mismatch (the first per seed is printed with the seed's operations).
]]
local root = (arg and arg[0] or ""):match("^(.*)/test/difftest/[^/]*$") or "."
local quay, url, s0, s1, NOPS = dofile(root .. "/test/difftest/seeded.lua")(
  root, arg, "--ops", 1, 20, 200)
local is_pg = not url:match("^sqlite")
local R = math.random
local function pick(l) return l[R(#l)] end

-- The relations: name on the owner model, the owner and target models,
-- the join table and its two columns, the reverse name, whether a through
-- model holds the pairs.
local RELS = {
  { m = "Post", name = "tags", t = "Tag", tbl = "posts_tags", a = "post_id", b = "tag_id", rev = "posts" },
  { m = "User", name = "follows", t = "User", tbl = "users_users", a = "from_user_id", b = "to_user_id",
    rev = "followers" },
  { m = "Post", name = "labels", t = "Tag", tbl = "labelings", a = "post_id", b = "tag_id", rev = "labelled",
    through = "Labeling" },
}

local function open()
  local db = quay.open(url)
  if is_pg then db:execute("DROP SCHEMA IF EXISTS public CASCADE"); db:execute("CREATE SCHEMA public") end
  local M = {}
  M.User = db:model("User", { name = quay.string(),
    follows = quay.many_to_many("self", { related_name = "followers" }) })
  M.Tag = db:model("Tag", { name = quay.string() })
  M.Post = db:model("Post", { title = quay.string(),
    tags = quay.many_to_many("Tag", { related_name = "posts" }),
    labels = quay.many_to_many("Tag", { through = "Labeling", related_name = "labelled" }) })
  M.Labeling = db:model("Labeling", {
    post = quay.belongs_to("Post", { on_delete = quay.CASCADE }),
    tag = quay.belongs_to("Tag", { on_delete = quay.CASCADE }),
    weight = quay.integer { default = 0 } })
  db:create_tables()
  return db, M
end

local function sorted(t) table.sort(t); return t end
local function show(t) return "{" .. table.concat(t, ",") .. "}" end

-- One seed: returns nil, or a mismatch message and the log of operations.
local function run_seed(seed)
  math.randomseed(seed)
  local db, M = open()
  local log = {}
  local function L(s) log[#log + 1] = s end
  -- the oracle: live ids per model, pairs per relation (pairs[rel][a][b] = weight)
  local ids = { User = {}, Tag = {}, Post = {} }
  local pairs_ = {}
  for _, rel in ipairs(RELS) do pairs_[rel.name] = {} end
  local recs = {}               -- kept record objects by model and id
  local function new(model)
    local vals = model == "Post" and { title = "p" .. R(9) } or { name = "n" .. R(9) }
    local r = M[model]:create(vals)
    ids[model][r.id] = true
    recs[model] = recs[model] or {}
    recs[model][r.id] = r
    L(("%s:create -> %d"):format(model, r.id))
    return r
  end
  local function live(model)
    local out = {}
    for id in pairs(ids[model]) do out[#out + 1] = id end
    return sorted(out)
  end
  local function rec_of(model, id)
    if R() < 0.5 and recs[model] and recs[model][id] then return recs[model][id] end
    return M[model]:find(id)
  end
  local function linked(rel, side, id)
    local out = {}
    if side == "fwd" then
      for b in pairs(pairs_[rel.name][id] or {}) do out[#out + 1] = b end
    else
      for a, bs in pairs(pairs_[rel.name]) do if bs[id] then out[#out + 1] = a end end
    end
    return sorted(out)
  end
  local function link(rel, a, b, w)
    pairs_[rel.name][a] = pairs_[rel.name][a] or {}
    if pairs_[rel.name][a][b] == nil then pairs_[rel.name][a][b] = w or 0 end
  end
  local function unlink(rel, a, b)
    if pairs_[rel.name][a] then pairs_[rel.name][a][b] = nil end
  end
  local function npairs(rel)
    local n = 0
    for _, bs in pairs(pairs_[rel.name]) do for _ in pairs(bs) do n = n + 1 end end
    return n
  end

  for _ = 1, 3 do new("User"); new("Tag"); new("Post") end
  local function check(what, written)
    -- raw join rows
    for _, rel in ipairs(RELS) do
      local got = {}
      for _, r in ipairs(db:rows(("SELECT %s AS a, %s AS b%s FROM %s"):format(rel.a, rel.b,
          rel.through and ", weight AS w" or "", rel.tbl))) do
        got[#got + 1] = r.a .. "-" .. r.b .. (rel.through and (":" .. r.w) or "")
      end
      local exp = {}
      for a, bs in pairs(pairs_[rel.name]) do
        for b, w in pairs(bs) do exp[#exp + 1] = a .. "-" .. b .. (rel.through and (":" .. w) or "") end
      end
      sorted(got); sorted(exp)
      if show(got) ~= show(exp) then
        return ("%s: join rows of %s: expected %s, got %s"):format(what, rel.tbl, show(exp), show(got))
      end
    end
    -- the set written through: its cached rows
    if written then
      local set, rel, side, id = written[1], written[2], written[3], written[4]
      local got = {}
      for _, r in ipairs(set) do got[#got + 1] = r.id end
      sorted(got)
      local exp = linked(rel, side, id)
      if show(got) ~= show(exp) or #set ~= #exp then
        return ("%s: the set written through (%s %s of %d): expected %s, got %s (#set %d)"):format(
          what, side, rel.name, id, show(exp), show(got), #set)
      end
    end
    -- fresh reads both ways, a filter and an annotation
    for _, rel in ipairs(RELS) do
      for _, side in ipairs({ "fwd", "rev" }) do
        local model = side == "fwd" and rel.m or rel.t
        local name = side == "fwd" and rel.name or rel.rev
        local list = live(model)
        if #list > 0 then
          local id = pick(list)
          local r = M[model]:find(id)
          local got = sorted(r[name]:pluck("id"))
          local exp = linked(rel, side, id)
          if show(got) ~= show(exp) then
            return ("%s: %s:find(%d).%s: expected %s, got %s"):format(what, model, id, name, show(exp), show(got))
          end
          local other = side == "fwd" and rel.t or rel.m
          local ol = live(other)
          if #ol > 0 then
            local oid = pick(ol)
            local c = r[name]:contains(M[other]:find(oid))
            local e = false
            for _, x in ipairs(exp) do if x == oid then e = true end end
            if c ~= e then
              return ("%s: %s(%d).%s:contains(%d): expected %s, got %s"):format(what, model, id, name, oid,
                tostring(e), tostring(c))
            end
            local n = M[model]:filter { [name .. "__id"] = oid }:count()
            local en = #linked(rel, side == "fwd" and "rev" or "fwd", oid)
            if n ~= en then
              return ("%s: %s:filter { %s__id = %d }:count(): expected %d, got %d"):format(what, model, name,
                oid, en, n)
            end
          end
          local ann = M[model]:annotate { n = quay.count(name) }:order_by("id"):all()
          local ok_ = #ann == #list
          for i, a in ipairs(ann) do
            if not ok_ then break end
            ok_ = a.id == list[i] and a.n == #linked(rel, side, a.id)
          end
          if not ok_ then
            return ("%s: %s:annotate { n = count(%s) } disagrees"):format(what, model, name)
          end
          for _, p in ipairs(M[model]:with(name):order_by("id"):all()) do
            local g = {}
            for _, x in ipairs(p[name]) do g[#g + 1] = x.id end
            if show(sorted(g)) ~= show(linked(rel, side, p.id)) then
              return ("%s: %s:with(%q) of %d: expected %s, got %s"):format(what, model, name, p.id,
                show(linked(rel, side, p.id)), show(g))
            end
          end
        end
      end
    end
  end

  for step = 1, NOPS do
    local rel = pick(RELS)
    local side = R() < 0.7 and "fwd" or "rev"
    local model = side == "fwd" and rel.m or rel.t
    local other = side == "fwd" and rel.t or rel.m
    local name = side == "fwd" and rel.name or rel.rev
    local r = R()
    if #live(model) == 0 or #live(other) == 0 or r < 0.08 then
      new(R() < 0.5 and model or other)
    elseif r < 0.82 then
      local id = pick(live(model))
      local rec = rec_of(model, id)
      -- sometimes the set of a record not saved yet: every write is validation
      local unsaved = R() < 0.04 and "owner" or nil
      if unsaved then
        rec = M[model]:new(model == "Post" and { title = "new" } or { name = "new" })
      end
      local set = rec[name]
      if R() < 0.5 then local _ = #set end      -- load it first, sometimes
      local function pair(oid)
        if side == "fwd" then return id, oid else return oid, id end
      end
      local args, argids = {}, {}
      for _ = 1, R(0, 4) do
        local oid = pick(live(other))
        args[#args + 1] = rec_of(other, oid)
        argids[#argids + 1] = oid
      end
      local call = pick { "add", "add", "addlist", "remove", "removelist", "set", "clear" }
      -- remove() of no record (or of an empty list) removes nothing, as add() adds nothing
      if call:match("^remove") and #args == 0 and R() < 0.5 then
        args[1] = rec_of(other, pick(live(other))); argids[1] = args[1].id
      end
      if not unsaved and call ~= "clear" and R() < 0.04 then
        -- a record of the right model not saved yet among the arguments
        unsaved = "target"
        table.insert(args, R(#args + 1), M[other]:new(other == "Post" and { title = "new" } or { name = "new" }))
      end
      local bad = not unsaved and R() < 0.08
      if bad then
        -- a record of another model among the arguments
        local wrong = other == "Tag" and "User" or "Tag"
        if #live(wrong) > 0 and call ~= "clear" then
          table.insert(args, R(#args + 1), rec_of(wrong, pick(live(wrong))))
        else
          bad = false
        end
      end
      local w = rel.through and call:match("^add") and R() < 0.6 and R(1, 9) or nil
      local desc = ("%s(%d).%s:%s(%s)%s%s%s"):format(model, unsaved == "owner" and 0 or id, name, call,
        table.concat(argids, ","), w and (" weight " .. w) or "", bad and " with a record of another model" or "",
        unsaved and (" with the " .. unsaved .. " not saved") or "")
      L(desc)
      local ok, err = pcall(function()
        if call == "add" then
          local a = { table.unpack(args) }
          if w then a[#a + 1] = { weight = w } end
          set:add(table.unpack(a))
        elseif call == "addlist" then
          if w then set:add(args, { weight = w }) else set:add(args) end
        elseif call == "remove" then
          set:remove(table.unpack(args))
        elseif call == "removelist" then
          set:remove(args)
        elseif call == "set" then
          set:set(args)
        else
          set:clear()
        end
      end)
      if bad or unsaved then
        if ok or type(err) ~= "table" or err.code ~= "validation" then
          return ("step %d %s: expected validation, got %s"):format(step, desc,
            ok and "success" or (type(err) == "table" and tostring(err.code) .. ": " .. tostring(err.message)
                                 or tostring(err))), log
        end
      elseif not ok then
        return ("step %d %s: failed: %s"):format(step, desc,
          type(err) == "table" and tostring(err.code) .. ": " .. tostring(err.message) or tostring(err)), log
      else
        if call == "add" or call == "addlist" then
          for _, oid in ipairs(argids) do local a, b = pair(oid); link(rel, a, b, w) end
        elseif call:match("^remove") then
          for _, oid in ipairs(argids) do local a, b = pair(oid); unlink(rel, a, b) end
        else
          local keep = {}
          if call == "set" then for _, oid in ipairs(argids) do keep[oid] = true end end
          for _, oid in ipairs(linked(rel, side, id)) do
            if not keep[oid] then local a, b = pair(oid); unlink(rel, a, b) end
          end
          for oid in pairs(keep) do local a, b = pair(oid); link(rel, a, b, 0) end
        end
      end
      local msg = check(("step %d %s"):format(step, desc), not (bad or unsaved) and { set, rel, side, id } or nil)
      if msg then return msg, log end
    else
      -- a delete of one side (or a dry run)
      local dm = pick { "User", "Tag", "Post" }
      local l = live(dm)
      if #l > 0 then
        local id = pick(l)
        local dry = R() < 0.2
        local viaqs = R() < 0.4
        local desc = ("%s(%d):delete%s%s"):format(dm, id, viaqs and " (qs)" or "", dry and " dry_run" or "")
        L(desc)
        local exp = { [dm] = 1 }
        for _, rl in ipairs(RELS) do
          local n = 0
          if rl.m == dm then n = n + #linked(rl, "fwd", id) end
          if rl.t == dm then n = n + #linked(rl, "rev", id) end
          if rl.m == dm and rl.t == dm and pairs_[rl.name][id] and pairs_[rl.name][id][id] then n = n - 1 end
          if n > 0 then exp[rl.through or rl.tbl] = n end
        end
        local ok, got = pcall(function()
          local o = dry and { dry_run = true } or nil
          if viaqs then return M[dm]:filter { id = id }:delete(o) end
          return rec_of(dm, id):delete(o)
        end)
        if not ok then
          return ("step %d %s: failed: %s"):format(step, desc,
            type(got) == "table" and tostring(got.code) .. ": " .. tostring(got.message) or tostring(got)), log
        end
        local ge, ee = {}, {}
        for k, v in pairs(got) do ge[#ge + 1] = k .. "=" .. tostring(v) end
        for k, v in pairs(exp) do ee[#ee + 1] = k .. "=" .. v end
        sorted(ge); sorted(ee)
        if show(ge) ~= show(ee) then
          return ("step %d %s: counts: expected %s, got %s"):format(step, desc, show(ee), show(ge)), log
        end
        if not dry then
          ids[dm][id] = nil
          if recs[dm] then recs[dm][id] = nil end
          for _, rl in ipairs(RELS) do
            if rl.m == dm then pairs_[rl.name][id] = nil end
            if rl.t == dm then for _, bs in pairs(pairs_[rl.name]) do bs[id] = nil end end
          end
        end
        local msg = check(("step %d %s"):format(step, desc))
        if msg then return msg, log end
      end
    end
  end
  db:close()
end

local nops, bad = 0, 0
for seed = s0, s1 do
  local ok, msg, log = pcall(run_seed, seed)
  nops = nops + NOPS
  if not ok or msg then
    bad = bad + 1
    print(("MISMATCH seed %d (%s): %s"):format(seed, is_pg and "pg" or "sqlite", tostring(msg)))
    if log then
      local from = math.max(1, #log - 30)
      for i = from, #log do print("    " .. log[i]) end
    end
  end
end
print(("m2m: %d ops, %d mismatches"):format(nops, bad))
os.exit(bad == 0 and 0 or 1)
