--[[
test/difftest/wops.lua
The operations of the write tester (writes.lua): a generator that draws an
operation as plain data from the oracle's state, its rendering as Lua source
(the exact text that runs against Quay, and that a reproduction prints),
and the oracle: what the operation must do to the tables (plain Lua rows)
and return, checked against what Quay returned.

The oracle's state is { rows = { Model = { [id] = row } }, ever = { Model =
{ [id] = true } } }; a row maps column names to canonical values
(wvalues.lua), NULL as WV.NULL.  An operation either succeeds and the state
changes as the rule book says, or fails with the expected err.code and the
state is as before the call (all or nothing).  Ids Quay generates cannot be
predicted across backends (a failed insert uses up a PostgreSQL sequence
value): the oracle takes them from the returned records and checks they are
new (never an id of a row that existed) and distinct.
]]
local W = require("test.difftest.wschema")
local WV = require("test.difftest.wvalues")
local V = require("test.difftest.values")

local O = {}
local NULL = WV.NULL

--[[ Known mismatches the generator does not draw unless allowed
(writes.lua --with-known), each with its reproduction:

explicit_low_ids: ids given explicitly in the range the backend hands
out.  Quay moves PostgreSQL's identity past them (as SQLite's AUTOINCREMENT
goes past the largest id), so both backends then agree, spec
"explicit ids move the automatic key past them" in records_spec:
    local a = Owner:bulk_create { { id = 1, name = "a", code = "a" } }
    Owner:create { name = "b", code = "b" }      -- id 2 on both
But the oracle cannot tell which id a row without one gets inside a call
that also gives low ids (an upsert of { id = 35 }, { no id }, { id = 36 }
gives the second row 36, so the third updates it): drawn only with
--with-known, where such cases show as mismatches.  The generator gives
explicit ids far above the ids either backend generates (or ids that
exist, which must fail on both). ]]
O.known = { "explicit_low_ids" }
O.allow = {}
local random = math.random
local function pick(l) return l[random(#l)] end
local ID = { name = "id", t = "int" }

-- {{ state helpers
function O.new_state()
  local st = { rows = {}, ever = {}, notes = {} }
  for _, m in ipairs(W.order) do st.rows[m], st.ever[m] = {}, {} end
  return st
end

function O.clone(st)
  local c = O.new_state()
  c.serial = st.serial
  for i, n in ipairs(st.notes) do c.notes[i] = n end
  for m, rows in pairs(st.rows) do
    for id, r in pairs(rows) do
      local x = {}
      for k, v in pairs(r) do x[k] = v end
      c.rows[m][id] = x
    end
    for id in pairs(st.ever[m]) do c.ever[m][id] = true end
  end
  return c
end

local function ids_of(st, model, live_only)
  local out = {}
  for id, r in pairs(st.rows[model]) do
    if not live_only or r.deleted_at == nil or r.deleted_at == NULL then out[#out + 1] = id end
  end
  table.sort(out)
  return out
end
O.ids_of = ids_of

local function codes_of(st)
  local out = {}
  for _, r in pairs(st.rows.Owner) do out[#out + 1] = r.code end
  table.sort(out)
  return out
end
-- }}

-- {{ rendering
local function lit(v) return v.src end

-- A values table: { key = src, ... } in the order given.
local function render_vals(vals)
  local parts = {}
  for _, it in ipairs(vals) do
    local src = it.v.src
    if it.form == "rec" then src = ("%s:find(%s)"):format(it.fd.target, it.v.src) end
    parts[#parts + 1] = it.key .. " = " .. src
  end
  if #parts == 0 then return "{}" end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function render_filter(f)
  if f.kind == "all" then return nil end
  if f.kind == "ids" then
    local p = {}
    for i, id in ipairs(f.ids) do p[i] = tostring(id) end
    return "{ id__in = { " .. table.concat(p, ", ") .. " } }"
  elseif f.kind == "lt" then return ("{ %s__lt = %s }"):format(f.col, V.lua(f.v))
  elseif f.kind == "eq" then return ("{ %s = %s }"):format(f.key, f.src)
  elseif f.kind == "isnull" then return ("{ %s__isnull = true }"):format(f.col)
  end
  error("filter " .. f.kind)
end

local function render_qs(model, f)
  local c = render_filter(f)
  if not c then return model .. ":query()" end
  return model .. ":filter " .. c
end

local function render_expr(e)
  if e.k == "col" then return ("quay.F(%q)"):format(e.col)
  elseif e.k == "num" then return e.v < 0 and ("(" .. e.v .. ")") or tostring(e.v)
  end
  return "(" .. render_expr(e.a) .. " " .. e.k .. " " .. render_expr(e.b) .. ")"
end

-- The statement that loads the record of id into r (Memo: soft-deleted too).
local function find_src(model, id)
  if W.models[model].soft then
    return ("%s:with_deleted():filter { id = %d }:first()"):format(model, id)
  end
  return ("%s:find(%d)"):format(model, id)
end

-- The hook plan of an operation as a statement (writes.lua --hooks).
local function render_plan(plan)
  local p = {}
  if plan.fail then
    p[#p + 1] = "fail = " .. plan.fail
    p[#p + 1] = "value = " .. plan.value
  end
  if plan.write then
    local w, ns = {}, {}
    for n in pairs(plan.write) do ns[#ns + 1] = n end
    table.sort(ns)
    for _, n in ipairs(ns) do w[#w + 1] = ("[%d] = %q"):format(n, plan.write[n]) end
    p[#p + 1] = "write = { " .. table.concat(w, ", ") .. " }"
  end
  return "H.reset { " .. table.concat(p, ", ") .. " }\n"
end

-- H.keep of record r of model (an operation a hook is to fail).
local function keep_src(model, r)
  local f = {}
  for _, fd in ipairs(W.models[model].fields) do f[#f + 1] = ("%q"):format(fd.name) end
  return ("H.keep(%s, { %s })"):format(r, table.concat(f, ", "))
end

--- An operation as Lua source: a function body returning a result table.
function O.render(op)
  if op.plan then return render_plan(op.plan) .. O.render_body(op) end
  return O.render_body(op)
end

function O.render_body(op)
  local k, M = op.kind, op.model
  if k == "create" then
    if op.via == "new" then
      local keep = op.plan and op.plan.fail and (keep_src(M, "r") .. "\n") or ""
      return ("local r = %s:new %s\n%sr:save()\nreturn { rec = r }"):format(M, render_vals(op.vals), keep)
    end
    return ("local r = %s:create %s\nreturn { rec = r }"):format(M, render_vals(op.vals))
  elseif k == "bulk" or k == "upsert" then
    local rows = {}
    for i, vals in ipairs(op.rows) do rows[i] = "  " .. render_vals(vals) .. "," end
    local list = #rows == 0 and "{}" or ("{\n" .. table.concat(rows, "\n") .. "\n}")
    if k == "bulk" then return ("local rs = %s:bulk_create(%s)\nreturn { recs = rs }"):format(M, list) end
    local opts = { "conflict = { " .. table.concat(op.conflict_src, ", ") .. " }" }
    if op.update then
      local u = {}
      for i, n in ipairs(op.update) do u[i] = ("%q"):format(n) end
      opts[2] = "update = { " .. table.concat(u, ", ") .. " }"
    end
    return ("local rs = %s:upsert(%s, { %s })\nreturn { recs = rs }"):format(M, list,
      table.concat(opts, ", "))
  elseif k == "save" then
    local out = { ("local r = %s\nif not r then return { gone = true } end"):format(find_src(M, op.id)) }
    if op.raw then
      out[#out + 1] = ("db:execute(\"UPDATE %s SET %s = ? WHERE id = ?\", { %s, %d })"):format(
        W.models[M].table, op.raw.fd.name, op.raw.v.src, op.id)
    end
    if op.gone then
      out[#out + 1] = ("db:execute(\"DELETE FROM %s WHERE id = ?\", { %d })"):format(W.models[M].table, op.id)
    end
    for _, a in ipairs(op.assigns) do
      local src = a.v.src
      if a.form == "rec" then src = ("%s:find(%s)"):format(a.fd.target, src) end
      out[#out + 1] = ("r.%s = %s"):format(a.key, src)
    end
    out[#out + 1] = "local ch = r:changed()"
    if op.plan and op.plan.fail then out[#out + 1] = keep_src(M, "r") end
    if op.fields then
      local f = {}
      for i, n in ipairs(op.fields) do f[i] = ("%q"):format(n) end
      out[#out + 1] = "r:save { fields = { " .. table.concat(f, ", ") .. " } }"
    else
      out[#out + 1] = "r:save()"
    end
    out[#out + 1] = "return { rec = r, changed = ch }"
    return table.concat(out, "\n")
  elseif k == "bupdate" then
    local out = { "local recs = {}" }
    for i, e in ipairs(op.entries) do
      out[#out + 1] = ("local r%d = %s:find(%d)"):format(i, M, e.id)
      local as = {}
      for _, a in ipairs(e.assigns) do
        local src = a.v.src
        if a.form == "rec" then src = ("%s:find(%s)"):format(a.fd.target, src) end
        as[#as + 1] = ("r%d.%s = %s"):format(i, a.key, src)
      end
      out[#out + 1] = ("if r%d then recs[#recs + 1] = r%d; %s end"):format(i, i, table.concat(as, "; "))
    end
    if op.delete_ids and #op.delete_ids > 0 then
      out[#out + 1] = ("pcall(function() return %s:delete() end)"):format(
        render_qs(M, { kind = "ids", ids = op.delete_ids }))
    end
    local f = {}
    for i, n in ipairs(op.fields) do f[i] = ("%q"):format(n) end
    out[#out + 1] = ("return { n = %s:bulk_update(recs, { %s }), recs = recs }"):format(M,
      table.concat(f, ", "))
    return table.concat(out, "\n")
  elseif k == "qupdate" then
    local p = {}
    for _, s in ipairs(op.sets) do
      p[#p + 1] = s.key .. " = " .. (s.expr and render_expr(s.expr) or s.v.src)
    end
    return ("return { n = %s:update { %s } }"):format(render_qs(M, op.filter), table.concat(p, ", "))
  elseif k == "delete" then
    local opt = op.dry and "{ dry_run = true }" or (op.hard and "{ hard = true }" or "")
    if op.via == "rec" then
      return ("local r = %s\nif not r then return { gone = true } end\nreturn { counts = r:delete(%s) }")
        :format(find_src(M, op.id), opt)
    end
    return ("return { counts = %s:delete(%s) }"):format(render_qs(M, op.filter), opt)
  elseif k == "goc" or k == "uoc" then
    local fn = k == "goc" and "get_or_create" or "update_or_create"
    return ("local r, created = %s:%s(%s, %s)\nreturn { rec = r, created = created }"):format(
      M, fn, render_vals(op.conds), render_vals(op.defaults))
  elseif k == "restore" then
    return ("local r = %s\nif not r then return { gone = true } end\nreturn { ret = r:restore() }")
      :format(find_src("Memo", op.id))
  end
  error("render " .. tostring(k))
end
-- }}

-- {{ generation
local function ctx_for(st, bad)
  return { bad = bad, codes = codes_of(st), serial = st.serial,
           ids = function(m) return ids_of(st, m) end }
end

-- A value item { key, fd, v, form } for field fd of model m.
local function item(st, fd, bad, ctx)
  ctx = ctx or ctx_for(st, bad)
  ctx.serial = st.serial          -- fresh codes stay fresh
  local v = WV.draw(fd, ctx)
  st.serial = ctx.serial
  local key, form = fd.name, "col"
  if fd.t == "fk" then
    local r = random()
    if r < 0.4 then key = fd.rel; form = "rel"
    elseif r < 0.6 and v.canon ~= NULL then key = fd.rel; form = "rec" end
  end
  return { key = key, fd = fd, v = v, form = form }
end

-- Values for a new row: every required field (mostly), the others at
-- random; with probability pbad one value Quay must refuse or a required
-- field left out.
local function row_vals(st, model, pbad, opts)
  local m = W.models[model]
  local out = {}
  local badk = random() < pbad and random(#m.fields + 1) or nil
  local ctx = ctx_for(st, false)
  ctx.clean = opts and opts.clean
  for i, fd in ipairs(m.fields) do
    if fd.t ~= "soft" then
      local required = not fd.null and fd.default == nil
      local give = required or random() < 0.5
      if opts and opts.need and opts.need[fd.name] then give = true end
      if badk == i then
        if required and random() < 0.3 then give = false
        else
          give = true
          out[#out + 1] = item(st, fd, true)
          goto next
        end
      end
      if give then
        ctx.codes = nil
        if random() < 0.1 and not ctx.clean then ctx.codes = codes_of(st) end
        out[#out + 1] = item(st, fd, false, ctx)
      end
    end
    ::next::
  end
  if opts and opts.id then
    local ids = ids_of(st, model)
    local id = (#ids > 0 and random() < 0.2) and pick(ids) or (1000000 + random(0, 9999) * 100000)
    if O.allow.explicit_low_ids and random() < 0.5 then id = random(1, 40) end
    table.insert(out, 1, { key = "id", fd = ID, v = { src = tostring(id), canon = id }, form = "col" })
  end
  -- shuffle the order the keys are written in
  for i = #out, 2, -1 do
    local j = random(i)
    out[i], out[j] = out[j], out[i]
  end
  return out
end

local MODEL_W = { Owner = 5, Item = 4, Lock = 1, Link = 1, Memo = 2, Bare = 1 }
local function pick_model(allowed)
  local tot, list = 0, {}
  for _, m in ipairs(W.order) do
    if not allowed or allowed[m] then tot = tot + MODEL_W[m]; list[#list + 1] = m end
  end
  local r = random() * tot
  for _, m in ipairs(list) do
    r = r - MODEL_W[m]
    if r <= 0 then return m end
  end
  return list[#list]
end

local function bulk_size()
  local r = random()
  if r < 0.1 then return 0 elseif r < 0.3 then return 1
  elseif r < 0.75 then return random(2, 8)
  elseif r < 0.9 then return random(49, 51)
  elseif r < 0.97 then return random(9, 30)
  else return random(500, 530) end
end

-- The fields a save / update may assign on model m (not keys of others).
local function writable(model, opts)
  local out = {}
  for _, fd in ipairs(W.models[model].fields) do
    if fd.t ~= "soft" and not (opts and opts.no_fk and fd.t == "fk")
      and not (opts and opts.no_together and W.models[model].together
               and (fd.name == "owner_id" or fd.name == "label")) then
      out[#out + 1] = fd
    end
  end
  return out
end

local function filter_for(st, model)
  local ids = ids_of(st, model)
  local r = random()
  if r < 0.55 or model == "Bare" or model == "Lock" then
    local pickd, seen = {}, {}
    for _ = 1, random(0, 4) do
      local id = (#ids > 0 and random() < 0.9) and pick(ids) or 999999
      if not seen[id] then seen[id] = true; pickd[#pickd + 1] = id end
    end
    if #pickd == 0 and #ids > 0 then pickd[1] = ids[1] end
    return { kind = "ids", ids = pickd }
  elseif r < 0.65 then return { kind = "all" }
  elseif model == "Owner" then return { kind = "lt", col = "score", v = pick { 0, 1, 5, 50 } }
  elseif model == "Item" then
    if random() < 0.5 then return { kind = "isnull", col = "n" } end
    local o = ids_of(st, "Owner")
    local id = #o > 0 and pick(o) or 1
    return { kind = "eq", key = random() < 0.5 and "owner" or "owner_id", col = "owner_id", src = tostring(id), v = id }
  elseif model == "Link" then
    local o = ids_of(st, "Owner")
    local id = #o > 0 and pick(o) or 1
    return { kind = "eq", key = "owner", col = "owner_id", src = tostring(id), v = id }
  elseif model == "Memo" then return { kind = "isnull", col = "owner_id" }
  end
  return { kind = "all" }
end

local function expr_for(model, fd)
  local function F(c) return { k = "col", col = c } end
  local function N(v) return { k = "num", v = v } end
  local function op(k, a, b) return { k = k, a = a, b = b } end
  local n = pick { -3, -1, 1, 2, 3, 7 }
  if model == "Owner" and fd.name == "score" then
    return pick { op("+", F("score"), N(n)), op("*", F("score"), N(n)), op("-", F("score"), F("id")),
                  F("price"), op("*", F("price"), N(3)) }
  elseif model == "Owner" and fd.name == "price" then
    return pick { op("+", F("price"), N(n)), op("*", F("price"), N(n)), op("-", F("price"), F("score")),
                  F("score") }
  elseif model == "Item" and fd.name == "n" then
    return pick { op("+", F("n"), N(n)), op("*", F("n"), N(n)), op("-", F("n"), F("owner_id")) }
  elseif model == "Item" and fd.name == "qty" then
    return pick { op("*", F("qty"), N(n)), op("+", F("n"), N(n)), op("+", F("qty"), N(n)) }
  end
end

local KIND_W = { { "create", 12 }, { "new", 5 }, { "save", 16 }, { "bulk", 10 }, { "upsert", 10 },
                 { "bupdate", 8 }, { "qupdate", 12 }, { "delete", 10 }, { "goc", 5 }, { "uoc", 5 },
                 { "restore", 3 } }

-- The values a hook raises (writes.lua --hooks): Lua source.
local RAISE = { '"hook failed"', "{ hook = true }", "{ code = \"validation\" }", "{ code = \"integrity\" }", "42", "1.5", "true",
                "false" }

--- The hooks of a case (writes.lua sets it; nil: the models have none).
O.hooks = nil

local gen_op
--- A random operation on state st (with hooks: sometimes a hook plan).
function O.generate(st)
  local op = gen_op(st)
  if O.hooks and random() < 0.4 then
    local plan = {}
    local n = (op.rows and #op.rows or op.entries and #op.entries or 1) * 2 + 2
    -- bulk_update deletes rows first inside a pcall of its own: its hooks
    -- may write, not fail (the oracle keeps the calls apart by outcome)
    if random() < 0.7 and not (op.kind == "bupdate" and op.delete_ids) then
      plan.fail = random() < 0.7 and random(1, 3) or random(1, n)
      plan.value = pick(RAISE)
    end
    if random() < 0.5 then
      plan.write = {}
      for _ = 1, random(1, 3) do plan.write[random(1, math.min(n, 6))] = pick { "raw", "bare" } end
    end
    op.plan = plan
  end
  return op
end

function gen_op(st)
  local tot = 0
  for _, kw in ipairs(KIND_W) do tot = tot + kw[2] end
  local r, kind = random() * tot, "create"
  for _, kw in ipairs(KIND_W) do
    r = r - kw[2]
    if r <= 0 then kind = kw[1]; break end
  end
  local pbad = 0.12
  if kind == "create" or kind == "new" then
    local model = pick_model()
    return { kind = "create", via = kind == "new" and "new" or "create", model = model,
             vals = row_vals(st, model, pbad, { id = random() < 0.08 }) }
  elseif kind == "bulk" then
    local model = pick_model()
    local rows = {}
    local n = bulk_size()
    local withid = random() < 0.3
    for i = 1, n do
      rows[i] = row_vals(st, model, (i == 1 and pbad) or (n < 60 and pbad / 20) or 0,
                         { id = withid and random() < 0.3, clean = i > 1 and n >= 60 })
    end
    return { kind = "bulk", model = model, rows = rows }
  elseif kind == "upsert" then
    local model = pick_model { Owner = true, Item = true }
    local conflict, csrc
    local rr = random()
    if model == "Owner" and rr < 0.7 then conflict, csrc = { "code" }, { '"code"' }
    elseif model == "Item" and rr < 0.7 then
      conflict = { "owner_id", "label" }
      csrc = random() < 0.5 and { '"owner"', '"label"' } or { '"label"', '"owner"' }
    else conflict, csrc = { "id" }, { '"id"' } end
    local update
    if random() < 0.3 then
      update = {}
      for _, fd in ipairs(writable(model, { no_together = true })) do
        local isconf = false
        for _, c in ipairs(conflict) do if c == fd.name then isconf = true end end
        if not isconf and random() < 0.4 then update[#update + 1] = fd.rel or fd.name end
      end
    end
    local need = {}
    for _, u in ipairs(update or {}) do need[W.models[model].by[u].name] = true end
    local rows = {}
    local n = bulk_size()
    if n > 60 then n = random(60, 120) end
    for i = 1, n do
      local vals
      -- half the rows on existing keys, some keys repeated in the call
      if i > 1 and random() < 0.2 then
        vals = row_vals(st, model, 0, { need = need })
        local prev = rows[random(i - 1)]
        local keep = {}
        for _, it in ipairs(vals) do
          local isconf = false
          for _, c in ipairs(conflict) do if it.fd.name == c then isconf = true end end
          if not isconf then keep[#keep + 1] = it end
        end
        for _, it in ipairs(prev) do
          for _, c in ipairs(conflict) do if it.fd.name == c then keep[#keep + 1] = it end end
        end
        vals = keep
      else
        vals = row_vals(st, model, i == 1 and pbad or 0.005,
                        { need = need, id = conflict[1] == "id" and random() < 0.7 })
        if random() < 0.5 then
          -- aim at an existing row's key
          local ids = ids_of(st, model)
          if #ids > 0 then
            local row = st.rows[model][pick(ids)]
            for _, it in ipairs(vals) do
              for _, c in ipairs(conflict) do
                if it.fd.name == c and (c ~= "id" or true) then
                  local v = c == "id" and nil or row[c]
                  if c == "id" then
                    for id, rw in pairs(st.rows[model]) do if rw == row then v = id end end
                  end
                  it.v = { src = type(v) == "string" and ("%q"):format(v) or tostring(v), canon = v }
                  if it.form == "rec" then it.form = "rel" end
                end
              end
            end
          end
        end
      end
      rows[i] = vals
    end
    return { kind = "upsert", model = model, rows = rows, conflict = conflict, conflict_src = csrc,
             update = update }
  elseif kind == "save" then
    local model = pick_model { Owner = true, Item = true, Lock = true, Memo = true }
    local ids = ids_of(st, model)
    if #ids == 0 then return gen_op(st) end
    local id = pick(ids)
    local row = st.rows[model][id]
    local fds = writable(model)
    local assigns, used = {}, {}
    local badi = random() < 0.12 and random(#fds) or nil
    for i, fd in ipairs(fds) do
      if random() < 0.4 or badi == i then
        used[fd.name] = true
        if badi ~= i and random() < 0.2 then
          -- the loaded value again: not a change
          local v = row[fd.name]
          local src
          if v == NULL then src = "quay.null"
          elseif fd.t == "json" then src = nil
          else src = V.lua(v) end
          if src then
            assigns[#assigns + 1] = { key = fd.name, fd = fd, v = { src = src, canon = v }, form = "col" }
            goto next
          end
        end
        local it = item(st, fd, badi == i)
        if it.form == "rel" and it.v.canon ~= NULL then it.form = "rec" end
        if it.form == "rec" and it.v.canon == 999999 then it.form = "col"; it.key = fd.name end
        assigns[#assigns + 1] = it
      end
      ::next::
    end
    local raw
    if random() < 0.5 then
      local cands = {}
      for _, fd in ipairs(fds) do
        if not used[fd.name] and (fd.t == "int" or fd.t == "string" or fd.t == "text" or fd.t == "number"
                                  or (fd.t == "fk" and fd.null)) and not fd.unique
           and not (fd.name == "label") then
          cands[#cands + 1] = fd
        end
      end
      if #cands > 0 then
        local fd = pick(cands)
        local v = WV.draw(fd, ctx_for(st, false))
        if v.canon == NULL then v = { src = "quay.null", canon = NULL } end
        if fd.t == "number" and math.type(v.canon) == "integer" then v.canon = v.canon + 0.0 end
        if fd.t == "int" and math.type(v.canon) == "float" then v.canon = math.tointeger(v.canon); v.src = tostring(v.canon) end
        raw = { fd = fd, v = v }
      end
    end
    local fields
    if random() < 0.15 then
      fields = {}
      for _, fd in ipairs(fds) do
        if (used[fd.name] and random() < 0.7) or random() < 0.1 then fields[#fields + 1] = fd.name end
      end
      if #fields == 0 then fields = nil end
    end
    local gone = (model == "Lock" or model == "Memo") and random() < 0.1
    return { kind = "save", model = model, id = id, assigns = assigns, raw = raw, fields = fields,
             gone = gone }
  elseif kind == "bupdate" then
    local model = pick_model { Owner = true, Item = true, Lock = true, Memo = true }
    local ids = ids_of(st, model)
    if #ids == 0 then return gen_op(st) end
    local fds = writable(model, { no_together = true })
    local fields = {}
    for _, fd in ipairs(fds) do if random() < 0.35 then fields[#fields + 1] = fd end end
    if #fields == 0 then fields[1] = pick(fds) end
    local names = {}
    for i, fd in ipairs(fields) do names[i] = fd.rel and random() < 0.5 and fd.rel or fd.name end
    local entries = {}
    local badk = random() < 0.1 and random(1, 3) or nil
    local eids, mine = {}, {}
    for i = 1, random(0, 8) do
      eids[i] = (random() < 0.05) and 999999 or pick(ids)
      mine[eids[i]] = true
    end
    for i = 1, #eids do
      local e = { id = eids[i], assigns = {} }
      for _, fd in ipairs(fields) do
        local it
        if fd.unique and badk ~= i then
          st.serial = (st.serial or 0) + 1
          local c = "b" .. st.serial
          it = { key = fd.name, fd = fd, v = { src = ("%q"):format(c), canon = c }, form = "col" }
        else
          it = item(st, fd, badk == i and not fd.unique)
          if fd.unique then
            -- a code another row keeps: the update must fail
            local others = {}
            for id2, r2 in pairs(st.rows[model]) do if not mine[id2] then others[#others + 1] = r2.code end end
            table.sort(others)
            if #others > 0 then
              local c = pick(others)
              it.v = { src = ("%q"):format(c), canon = c }
            end
          end
          if it.form == "rel" and it.v.canon ~= NULL then it.form = "rec" end
          if it.form == "rec" and it.v.canon == 999999 then it.form = "col"; it.key = fd.name end
        end
        e.assigns[#e.assigns + 1] = it
      end
      entries[#entries + 1] = e
    end
    local del
    if random() < 0.3 and #entries > 0 then del = { pick(entries).id } end
    return { kind = "bupdate", model = model, entries = entries, fields = names, delete_ids = del }
  elseif kind == "qupdate" then
    local model = pick_model { Owner = true, Item = true, Lock = true, Memo = true }
    local fds = writable(model, { no_together = random() < 0.7 })
    local sets, seen = {}, {}
    for _ = 1, random(1, 3) do
      local fd = pick(fds)
      if not seen[fd.name] then
        seen[fd.name] = true
        local e = random() < 0.5 and expr_for(model, fd) or nil
        if e then sets[#sets + 1] = { key = fd.name, fd = fd, expr = e }
        else
          local it = item(st, fd, random() < 0.08)
          if it.form == "rec" then it.form = "rel" end
          sets[#sets + 1] = { key = it.key, fd = fd, v = it.v }
        end
      end
    end
    return { kind = "qupdate", model = model, filter = filter_for(st, model), sets = sets }
  elseif kind == "delete" then
    local model = pick_model()
    local ids = ids_of(st, model)
    local op = { kind = "delete", model = model, dry = random() < 0.1 }
    if random() < 0.4 and #ids > 0 then
      op.via, op.id = "rec", pick(ids)
      if model == "Memo" and not op.dry and random() < 0.4 then op.hard = true end
    else
      op.via, op.filter = "qs", filter_for(st, model)
    end
    return op
  elseif kind == "goc" or kind == "uoc" then
    local model = pick_model { Owner = true, Item = true }
    local m = W.models[model]
    local conds, defaults = {}, {}
    local bad = random() < 0.1
    if model == "Owner" then
      local codes = codes_of(st)
      local c
      if #codes > 0 and random() < 0.6 then c = pick(codes)
      else st.serial = (st.serial or 0) + 1; c = "g" .. st.serial end
      conds[1] = { key = "code", fd = m.by.code, v = { src = ("%q"):format(c), canon = c }, form = "col" }
      local need = random() < 0.85
      for _, fd in ipairs(writable(model)) do
        if fd.name ~= "code" and ((fd.name == "name" and need) or random() < 0.3) then
          defaults[#defaults + 1] = item(st, fd, bad and random() < 0.5)
        end
      end
    else
      local owners = ids_of(st, "Owner")
      local id = #owners > 0 and pick(owners) or 999999
      local labels = {}
      for _, r in pairs(st.rows.Item) do if r.owner_id == id then labels[#labels + 1] = r.label end end
      table.sort(labels)
      local l = (#labels > 0 and random() < 0.6) and pick(labels) or ("l" .. random(1, 99))
      conds[1] = { key = pick { "owner", "owner_id" }, fd = m.by.owner_id, v = { src = tostring(id), canon = id }, form = "col" }
      conds[2] = { key = "label", fd = m.by.label, v = { src = ("%q"):format(l), canon = l }, form = "col" }
      for _, fd in ipairs(writable(model, { no_together = true })) do
        if random() < 0.4 then defaults[#defaults + 1] = item(st, fd, bad and random() < 0.5) end
      end
      for _, it in ipairs(defaults) do if it.form == "rec" then it.form = "rel" end end
      if O.hooks and random() < 0.15 then
        -- a key to no row: the insert, or update_or_create's update of the
        -- row it found, fails once (its before_save runs once)
        local fd = m.by.ref_id
        for i = #defaults, 1, -1 do if defaults[i].fd == fd then table.remove(defaults, i) end end
        defaults[#defaults + 1] = { key = "ref", fd = fd, v = { src = "999999", canon = 999999 }, form = "rel" }
      end
    end
    return { kind = kind, model = model, conds = conds, defaults = defaults }
  elseif kind == "restore" then
    local ids = ids_of(st, "Memo")
    if #ids == 0 then return gen_op(st) end
    return { kind = "restore", model = "Memo", id = pick(ids) }
  end
end
-- }}

return O
