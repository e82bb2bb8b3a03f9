--[[
test/difftest/woracle.lua
The oracle of the write tester: what an operation (wops.lua) must do, after
docs/reference.md ("Records", "Deleting and cascades", "Writes done right",
"Model behaviour" soft delete, "More field types"), checked against what
Quay returned.  O.check(st, op, ok, res) returns the new state and a list
of problems (empty when Quay did what the rule book says).

Where the rule book leaves an order open the oracle accepts each reading:
an operation with both a value Quay must refuse (validation) and a row the
database must refuse (integrity) may raise either; a delete blocked both by
PROTECT and by RESTRICT may raise protected or restricted; an expression
out of range (integer or decimal) may raise any code.  get_or_create with
bad defaults for a row that exists may succeed or raise validation.

With hooks (writes.lua --hooks), C.check also takes the case's hooks and
the log of the call, and compares the log with C.hook_alts (the section
"hooks" below): the value a hook raised must come back unchanged, the
tables as before, the rows the hooks wrote only when the call succeeded.
]]
local W = require("test.difftest.wschema")
local WV = require("test.difftest.wvalues")
local O = require("test.difftest.wops")

local C = {}
local NULL = WV.NULL

local function show(v)
  if v == nil then return "nil" end
  if v == NULL then return "NULL" end
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end
C.show = show

-- A list of names as one sorted, comma-joined text (the list is kept).
local function sorted_names(list)
  local c = {}
  for i, n in ipairs(list) do c[i] = n end
  table.sort(c)
  return table.concat(c, ",")
end

local function errcode(res)
  if type(res) == "table" then return res.code, res.message end
  return "lua", tostring(res)
end

local function setnames(codes)
  if codes == "any" then return "any" end
  local l = {}
  for k in pairs(codes) do l[#l + 1] = k end
  table.sort(l)
  return table.concat(l, "|")
end

-- What the rule book expects of the call being checked, for the hooks:
-- X.ok (success) or X.err (its codes); X.nohooks: it fails before any hook;
-- X.raised: the call raised the value a hook raised.
local X = {}

local function want_error(P, ok, res, codes)
  X.ok, X.err = nil, codes
  if ok then
    P[#P + 1] = "expected an error (" .. setnames(codes) .. "), got success"
    return
  end
  local code, msg = errcode(res)
  if codes ~= "any" and not codes[code] then
    P[#P + 1] = ("expected error %s, got %s: %s"):format(setnames(codes), tostring(code), tostring(msg))
  end
end

local function want_ok(P, ok, res)
  X.ok, X.err = true, nil
  if ok then return true end
  local code, msg = errcode(res)
  P[#P + 1] = ("expected success, got error %s: %s"):format(tostring(code), tostring(msg))
  return false
end

-- The error a bulk call must raise (vbad: validation, ibad: integrity),
-- else its records, one per row of op; nil when P got a mismatch.
local function want_recs(P, ok, res, op, what, vbad, ibad)
  if vbad or ibad then
    want_error(P, ok, res, { validation = vbad or nil, integrity = ibad or nil })
    return nil
  end
  if not want_ok(P, ok, res) then return nil end
  local recs = res.recs
  if type(recs) ~= "table" or #recs ~= #op.rows then
    P[#P + 1] = ("%s returned %s records for %d rows"):format(what,
      type(recs) == "table" and #recs or tostring(recs), #op.rows)
    return nil
  end
  return recs
end

-- {{ rows
-- The row a values list makes: (row, vbad, given cols, explicit id).
local function build(st, model, vals)
  local m = W.models[model]
  local row, given, vbad, xid = {}, {}, false, nil
  for _, it in ipairs(vals) do
    if it.key == "id" then xid = it.v.canon
    else
      local v = it.v.canon
      if it.v.bad then vbad = true end
      if it.form == "rec" and v ~= NULL and not st.rows[it.fd.target][v] then v = nil end
      if v ~= nil then
        row[it.fd.name] = v
        given[it.fd.name] = true
      end
    end
  end
  for _, fd in ipairs(m.fields) do
    if row[fd.name] == nil then
      if fd.default ~= nil then row[fd.name] = fd.default
      elseif fd.null then row[fd.name] = NULL
      else vbad = true end
    end
  end
  return row, vbad, given, xid
end
C.build = build

--- Does the table of model in st break a constraint (unique, unique
--- together, foreign keys)?  A message, or nil.
local function table_faults(st, model)
  local m = W.models[model]
  local seen, pairs_seen = {}, {}
  for id, r in pairs(st.rows[model]) do
    if model == "Owner" then
      if seen[r.code] then return "duplicate code " .. r.code end
      seen[r.code] = true
    end
    if m.together then
      local k = tostring(r.owner_id) .. "\0" .. tostring(r.label)
      if pairs_seen[k] then return "duplicate (owner, label) " .. k end
      pairs_seen[k] = true
    end
    for _, fd in ipairs(m.fields) do
      if fd.t == "fk" and r[fd.name] ~= NULL and not st.rows[fd.target][r[fd.name]] then
        return ("%s %d: %s %s is missing"):format(model, id, fd.name, tostring(r[fd.name]))
      end
    end
  end
  return nil
end
C.table_faults = table_faults

-- A record against a stored row: a list of problems appended to P.
local function check_rec(P, what, model, rec, id, row, skip_soft, only, nullok)
  if type(rec) ~= "userdata" and type(rec) ~= "table" then
    P[#P + 1] = what .. ": not a record: " .. tostring(rec)
    return
  end
  if rec.id ~= id then
    P[#P + 1] = ("%s: id %s, the row is %s"):format(what, show(rec.id), show(id))
  end
  for _, fd in ipairs(W.models[model].fields) do
    if fd.t == "soft" and skip_soft then goto next end
    if only and not only[fd.name] then goto next end
    local ok_, raw = pcall(function() return rec[fd.name] end)
    if ok_ and nullok and nullok[fd.name] and raw == require("quay").null then raw = nil end
    if not ok_ then
      P[#P + 1] = ("%s: reading %s raised %s"):format(what, fd.name, tostring(raw))
      goto next
    end
    local v, err = WV.from_record(fd, raw)
    if v == nil then
      P[#P + 1] = ("%s: %s %s"):format(what, fd.name, err)
    elseif v ~= row[fd.name] then
      P[#P + 1] = ("%s: %s is %s, stored %s"):format(what, fd.name, show(v), show(row[fd.name]))
    end
    ::next::
  end
end
C.check_rec = check_rec

local function check_clean(P, what, rec)
  local ok_, ch = pcall(rec.changed, rec)
  if not ok_ then P[#P + 1] = what .. ": changed() raised " .. tostring(ch); return end
  if #ch > 0 then P[#P + 1] = what .. ": changed() is " .. table.concat(ch, ",") .. ", not empty" end
end

-- A generated id: an integer, not an id of a row that existed.
local function check_new_id(P, what, st, model, id, taken)
  if math.type(id) ~= "integer" then
    P[#P + 1] = what .. ": id " .. show(id) .. " is not an integer"
    return false
  end
  if st.rows[model][id] or st.ever[model][id] or (taken and taken[id]) then
    P[#P + 1] = what .. ": generated id " .. id .. " was already used"
    return false
  end
  return true
end

local function matches(st, model, f, id, r)
  if W.models[model].soft and r.deleted_at ~= NULL then return false end
  if f.kind == "all" then return true
  elseif f.kind == "ids" then
    for _, x in ipairs(f.ids) do if x == id then return true end end
    return false
  elseif f.kind == "lt" then return r[f.col] ~= NULL and r[f.col] < f.v
  elseif f.kind == "eq" then return r[f.col] == f.v
  elseif f.kind == "isnull" then return r[f.col] == NULL
  end
  error("filter " .. f.kind)
end

local function matched_ids(st, model, f)
  local out = {}
  for id, r in pairs(st.rows[model]) do
    if matches(st, model, f, id, r) then out[#out + 1] = id end
  end
  table.sort(out)
  return out
end
-- }}

-- {{ deletes
--- The effect of deleting ids of model (hard: past soft delete) on a clone
--- of st: (new state, counts, error codes or nil).
function C.delete_effect(st, model, ids, hard)
  local w = O.clone(st)
  local m = W.models[model]
  if m.soft and not hard then
    local n = 0
    for _, id in ipairs(ids) do
      local r = w.rows[model][id]
      if r and r.deleted_at == NULL then r.deleted_at = "set"; n = n + 1 end
    end
    return w, n > 0 and { [model] = n } or {}, nil
  end
  local del = {}
  for _, name in ipairs(W.order) do del[name] = {} end
  local queue = {}
  for _, id in ipairs(ids) do
    if w.rows[model][id] and not del[model][id] then
      del[model][id] = true
      queue[#queue + 1] = { model, id }
    end
  end
  local protected, restrict = false, {}
  local setnull = {}
  local i = 1
  while i <= #queue do
    local mm, id = queue[i][1], queue[i][2]
    i = i + 1
    for _, ref in ipairs(W.referrers[mm]) do
      for rid, r in pairs(w.rows[ref.model]) do
        if r[ref.fd.name] == id then
          local rule = ref.fd.on_delete
          if rule == "CASCADE" then
            if not del[ref.model][rid] then
              del[ref.model][rid] = true
              queue[#queue + 1] = { ref.model, rid }
            end
          elseif rule == "SET_NULL" then setnull[#setnull + 1] = { ref.model, rid, ref.fd.name }
          elseif rule == "PROTECT" then protected = true
          elseif rule == "RESTRICT" then restrict[#restrict + 1] = { ref.model, rid }
          end
        end
      end
    end
  end
  local restricted = false
  for _, x in ipairs(restrict) do
    if not del[x[1]][x[2]] then restricted = true end
  end
  local counts = {}
  for name, set in pairs(del) do
    local n = 0
    for _ in pairs(set) do n = n + 1 end
    if n > 0 then counts[name] = n end
  end
  if protected or restricted then
    local codes = {}
    if protected then codes.protected = true end
    if restricted then codes.restricted = true end
    return st, counts, codes
  end
  for _, x in ipairs(setnull) do
    local r = w.rows[x[1]][x[2]]
    if not del[x[1]][x[2]] then r[x[3]] = NULL end
  end
  for name, set in pairs(del) do
    for id in pairs(set) do w.rows[name][id] = nil end
  end
  return w, counts, nil
end

local function same_counts(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

local function show_counts(c)
  if type(c) ~= "table" then return tostring(c) end
  local l = {}
  for k, v in pairs(c) do l[#l + 1] = k .. "=" .. tostring(v) end
  table.sort(l)
  return "{" .. table.concat(l, ", ") .. "}"
end
-- }}

-- {{ expressions (qs:update)
local DEC = {}
DEC.__index = DEC
local function dec(n, p) return setmetatable({ n = n, p = p }, DEC) end

local function colval(model, r, id, col)
  if col == "id" then return id end
  local fd = W.models[model].by[col]
  local v = r[col]
  if v == NULL then return NULL end
  if fd.t == "decimal" then return dec(WV.dec_scaled(v, fd.places), fd.places) end
  return v
end

local BIG = 2.0 ^ 63
local function arith(k, a, b)
  if a == NULL or b == NULL then return NULL end
  local ad, bd = getmetatable(a) == DEC, getmetatable(b) == DEC
  if not ad and not bd then
    local f = k == "+" and (a + 0.0) + b or k == "-" and (a + 0.0) - b or (a + 0.0) * b
    if f >= BIG or f < -BIG then return "overflow" end
    return k == "+" and a + b or k == "-" and a - b or a * b
  end
  local p = ad and a.p or b.p
  local scale = WV.pow10(p)
  if k == "*" then
    if ad and bd then error("decimal * decimal is not drawn") end
    local x, y = ad and a.n or b.n, ad and b or a
    return dec(x * y, p)
  end
  local an = ad and a.n or a * scale
  local bn = bd and b.n or b * scale
  return dec(k == "+" and an + bn or an - bn, p)
end

local function eval(model, e, r, id)
  if e.k == "col" then return colval(model, r, id, e.col)
  elseif e.k == "num" then return e.v end
  local a = eval(model, e.a, r, id)
  if a == "overflow" then return a end
  local b = eval(model, e.b, r, id)
  if b == "overflow" then return b end
  return arith(e.k, a, b)
end

-- The stored value of expression value v in field fd, or "overflow".
local function store(fd, v)
  if v == NULL or v == "overflow" then return v end
  if fd.t == "int" then
    if getmetatable(v) == DEC then return WV.round_scaled(v.n, v.p) end
    return v
  end
  local n
  if getmetatable(v) == DEC then
    n = v.n * (WV.pow10(fd.places - v.p))
  else
    if math.abs(v) > 1e12 then return "overflow" end
    n = v * (WV.pow10(fd.places))
  end
  return WV.dec_text(n, fd.digits, fd.places) or "overflow"
end
-- }}

-- {{ the operations
local H = {}

function H.create(st, op, ok, res, P)
  local w = O.clone(st)
  local row, vbad, _, xid = build(w, op.model, op.vals)
  if vbad then want_error(P, ok, res, { validation = true }); return st end
  if xid and w.rows[op.model][xid] then want_error(P, ok, res, { integrity = true }); return st end
  local id = xid or -1
  w.rows[op.model][id] = row
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return st end
  if not want_ok(P, ok, res) then return st end
  w.rows[op.model][id] = nil
  local rec = res.rec
  if xid then
    if rec.id ~= xid then P[#P + 1] = ("record id %s, given %s"):format(show(rec.id), show(xid)) end
  elseif not check_new_id(P, "record", st, op.model, rec.id) then return st end
  id = rec.id
  w.rows[op.model][id] = row
  w.ever[op.model][id] = true
  check_rec(P, "record", op.model, rec, id, row)
  check_clean(P, "record", rec)
  return w
end

function H.bulk(st, op, ok, res, P)
  local w = O.clone(st)
  local vbad, ibad = false, false
  local pend = {}
  for i, vals in ipairs(op.rows) do
    local row, vb, _, xid = build(w, op.model, vals)
    if vb then vbad = true
    else
      if xid and w.rows[op.model][xid] then ibad = true
      else
        local id = xid or -i
        w.rows[op.model][id] = row
        if table_faults(w, op.model) then ibad = true; w.rows[op.model][id] = nil
        else pend[i] = { id = id, row = row, xid = xid } end
      end
    end
  end
  local recs = want_recs(P, ok, res, op, "bulk_create", vbad, ibad)
  if not recs then return st end
  local taken = {}
  for i, p in ipairs(pend) do
    w.rows[op.model][p.id] = nil
    local rec = recs[i]
    if p.xid then
      if rec.id ~= p.xid then P[#P + 1] = ("record %d: id %s, given %s"):format(i, show(rec.id), show(p.xid)) end
    elseif not check_new_id(P, "record " .. i, st, op.model, rec.id, taken) then return st end
    taken[rec.id] = true
  end
  for i, p in ipairs(pend) do
    local id = recs[i].id
    w.rows[op.model][id] = p.row
    w.ever[op.model][id] = true
  end
  for i, p in ipairs(pend) do
    check_rec(P, "record " .. i, op.model, recs[i], recs[i].id, p.row)
    check_clean(P, "record " .. i, recs[i])
    if #P > 6 then break end
  end
  return w
end

-- The rows of an upsert applied in order: (state, landed ids, vbad, ibad).
-- final: constraints checked once after the last row (SQLite checks
-- foreign keys at the end of a statement, and applies repeated keys in
-- one statement; PostgreSQL starts a statement at a repeated key).
local function upsert_sim(st, op, final)
  local w = O.clone(st)
  local m = W.models[op.model]
  local vbad, ibad = false, false
  local landed = {}     -- row index -> id (negative: inserted by row -id)
  local upd = op.update and {} or nil
  for _, u in ipairs(op.update or {}) do upd[#upd + 1] = m.by[u].name end
  local isconf = {}
  for _, c in ipairs(op.conflict) do isconf[c] = true end
  for _, vals in ipairs(op.rows) do
    local _, vb = build(w, op.model, vals)
    if vb then vbad = true end
  end
  for i, vals in ipairs(op.rows) do
    local row, vb, given, xid = build(w, op.model, vals)
    if vb then vbad = true; goto next end
    do
      local key, target = {}, nil
      for _, c in ipairs(op.conflict) do
        local v = c == "id" and xid or row[c]
        if v == nil or v == NULL then key = nil; break end
        key[c] = v
      end
      if key then
        for id, r in pairs(w.rows[op.model]) do
          local same = true
          for c, v in pairs(key) do
            if (c == "id" and id ~= v) or (c ~= "id" and r[c] ~= v) then same = false end
          end
          if same then target = id; break end
        end
      end
      if target then
        local r = w.rows[op.model][target]
        local cols = upd
        if not cols then
          cols = {}
          for _, fd in ipairs(m.fields) do
            if given[fd.name] and not isconf[fd.name] then cols[#cols + 1] = fd.name end
          end
        end
        for _, c in ipairs(cols) do r[c] = row[c] end
        landed[i] = target
      else
        if xid and w.rows[op.model][xid] then ibad = true; break end
        local id = xid or -i
        w.rows[op.model][id] = row
        landed[i] = id
      end
      if not final and table_faults(w, op.model) then ibad = true; break end
    end
    ::next::
  end
  if final and not ibad and table_faults(w, op.model) then ibad = true end
  return w, landed, vbad, ibad
end

function H.upsert(st, op, ok, res, P)
  local w, landed, vbad, ibad = upsert_sim(st, op, false)
  if ibad and not vbad and (ok or X.raised) then
    -- DOUBT(upsert-transient): a key repeated in one call whose first row
    -- breaks a constraint a later row mends: PostgreSQL refuses it, SQLite
    -- takes it (one statement); either is accepted (also when a hook
    -- raised after the writes: SQLite took it then).
    local w2, l2, vb2, ib2 = upsert_sim(st, op, true)
    if not vb2 and not ib2 then w, landed, vbad, ibad = w2, l2, vb2, ib2 end
  end
  local recs = want_recs(P, ok, res, op, "upsert", vbad, ibad)
  if not recs then return st end
  -- ids of the rows this call inserted: from the records of their rows
  local actual, taken = {}, {}
  for i = 1, #op.rows do
    local id = landed[i]
    if id < 0 and -id == i then
      if not check_new_id(P, "record " .. i, st, op.model, recs[i].id, taken) then return st end
      taken[recs[i].id] = true
      actual[id] = recs[i].id
    elseif id < 0 then
      actual[id] = actual[id] or recs[-id].id
    end
  end
  local moved = {}
  for id, r in pairs(w.rows[op.model]) do
    if id < 0 then moved[#moved + 1] = { id, r } end
  end
  for _, x in ipairs(moved) do
    w.rows[op.model][x[1]] = nil
    w.rows[op.model][actual[x[1]]] = x[2]
    w.ever[op.model][actual[x[1]]] = true
  end
  local last = {}
  for i = 1, #op.rows do
    local id = landed[i] < 0 and actual[landed[i]] or landed[i]
    if recs[i].id ~= id then
      P[#P + 1] = ("record %d: id %s, its row is %s"):format(i, show(recs[i].id), show(id))
    end
    last[id] = i
    if #P > 6 then return w end
  end
  for id, i in pairs(last) do
    check_rec(P, "record " .. i, op.model, recs[i], id, w.rows[op.model][id])
    check_clean(P, "record " .. i, recs[i])
    if #P > 6 then break end
  end
  return w
end

--- The source the generator writes for a loaded value v of field fd.
function C.render_canon(fd, v)
  if v == NULL then return "quay.null" end
  return require("test.difftest.values").lua(v)
end

local function assigned_value(st, a)
  local v = a.v.canon
  if a.form == "rec" and v ~= NULL and not st.rows[a.fd.target][v] then v = nil end
  return v
end

function H.save(st, op, ok, res, P)
  local m = W.models[op.model]
  local row0 = st.rows[op.model][op.id]
  if not row0 then
    X.nohooks = true
    if want_ok(P, ok, res) and not res.gone then P[#P + 1] = "the record should be gone (find gave nil)" end
    return st
  end
  local base = O.clone(st)
  if op.raw then
    local fd = op.raw.fd
    if fd.t == "fk" and op.raw.v.canon ~= NULL and not st.rows[fd.target][op.raw.v.canon] then
      X.nohooks = true
      want_error(P, ok, res, { integrity = true })
      return st
    end
    base.rows[op.model][op.id][fd.name] = op.raw.v.canon
  end
  if op.gone then base.rows[op.model][op.id] = nil end
  X.base = base       -- what stays when the save fails
  local badf, assignfail = {}, false
  local recv, changed = {}, {}
  for _, fd in ipairs(m.fields) do recv[fd.name] = row0[fd.name] end
  local either = {}   -- the loaded value written another way: changed or not
  -- A field assigned quay.null that the save did not write (it was NULL
  -- already) reads nil afterwards (quay.null is never read back); with
  -- save { fields }, a field left out keeps what was assigned (accepted).
  local assignedset, nullset = {}, {}
  for _, a in ipairs(op.assigns) do
    assignedset[a.fd.name] = true
    if a.v.canon == NULL then nullset[a.fd.name] = true end
  end
  for _, a in ipairs(op.assigns) do
    if a.v.bad then badf[a.fd.name] = true end
    local v = assigned_value(st, a)
    if v ~= nil and v == row0[a.fd.name] and a.form == "col" and a.v.src ~= C.render_canon(a.fd, v) then
      either[a.fd.name] = true
    end
    if v == nil then
      if a.fd.null then v = NULL
      elseif a.form == "rec" then assignfail = true       -- raises at the assignment
      else badf[a.fd.name] = true end
    end
    if v ~= nil then recv[a.fd.name] = v end
  end
  if assignfail then X.nohooks = true; want_error(P, ok, res, { validation = true }); return base end
  for _, fd in ipairs(m.fields) do
    if recv[fd.name] ~= row0[fd.name] or badf[fd.name] then changed[#changed + 1] = fd.name end
  end
  local writes = {}
  if op.fields then
    for _, n in ipairs(op.fields) do writes[#writes + 1] = m.by[n].name end
  else writes = changed end
  -- only the fields written are checked (save { fields } leaves the others)
  local vbad = false
  for _, c in ipairs(writes) do if badf[c] then vbad = true end end
  if vbad then
    want_error(P, ok, res, { validation = true, not_found = op.gone and #writes > 0 or nil })
    return base
  end
  if op.gone then
    if #writes > 0 then want_error(P, ok, res, { not_found = true })
    else want_ok(P, ok, res) end
    return base
  end
  local w = O.clone(base)
  local r = w.rows[op.model][op.id]
  for _, c in ipairs(writes) do r[c] = recv[c] end
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return base end
  if not want_ok(P, ok, res) then return base end
  -- changed() before the save: the fields whose value differs
  if type(res.changed) == "table" then
    local got = {}
    for _, n in ipairs(res.changed) do
      local c = m.by[n] and m.by[n].name or n
      if not either[c] then got[#got + 1] = c end
    end
    local g, w = sorted_names(got), sorted_names(changed)
    if g ~= w then
      P[#P + 1] = ("changed() before the save is {%s}, expected {%s}"):format(g, w)
    end
  end
  local rv = {}
  for k, v in pairs(recv) do rv[k] = v end
  -- save { fields }: the fields not written keep the value as assigned
  local only
  if op.fields then
    only = {}
    for _, c in ipairs(writes) do only[c] = true end
    for _, fd in ipairs(m.fields) do if not assignedset[fd.name] then only[fd.name] = true end end
  end
  for c in pairs(either) do
    -- DOUBT(save-forms): not written; the record keeps the form given
    only = only or (function()
      local o = {}
      for _, fd in ipairs(m.fields) do o[fd.name] = true end
      return o
    end)()
    only[c] = nil
  end
  check_rec(P, "saved record", op.model, res.rec, op.id, rv, false, only,
            op.fields and nullset or nil)
  if not op.fields then check_clean(P, "saved record", res.rec) end
  return w
end

function H.bupdate(st, op, ok, res, P)
  local m = W.models[op.model]
  local found = {}
  for i, e in ipairs(op.entries) do
    local r = st.rows[op.model][e.id]
    -- Model:find leaves soft-deleted rows out
    if r and not (m.soft and r.deleted_at ~= NULL) then found[#found + 1] = { i = i, e = e } end
  end
  local base, w = st, nil
  for _, f in ipairs(found) do
    for _, a in ipairs(f.e.assigns) do
      if a.form == "rec" and not a.fd.null and assigned_value(st, a) == nil then
        X.nohooks = true
        want_error(P, ok, res, { validation = true })      -- raises at the assignment
        return st
      end
    end
  end
  if op.delete_ids and #op.delete_ids > 0 then
    local nw, _, codes = C.delete_effect(st, op.model, op.delete_ids, false)
    if not codes then base = nw end
  end
  local vbad = false
  local cols = {}
  for i, n in ipairs(op.fields) do cols[i] = m.by[n].name end
  local vals = {}
  for k, f in ipairs(found) do
    vals[k] = {}
    for _, a in ipairs(f.e.assigns) do
      if a.v.bad then vbad = true end
      local v = assigned_value(st, a)
      if v == nil then
        if a.fd.null then v = NULL else vbad = true end
      end
      vals[k][a.fd.name] = v
    end
  end
  if vbad then want_error(P, ok, res, { validation = true }); return base end
  w = O.clone(base)
  local written = {}
  local n = 0
  for k, f in ipairs(found) do
    local r = w.rows[op.model][f.e.id]
    if r then
      if not written[f.e.id] then written[f.e.id] = true; n = n + 1 end
      for _, c in ipairs(cols) do r[c] = vals[k][c] end
    end
  end
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return base end
  if not want_ok(P, ok, res) then return base end
  if res.n ~= n then P[#P + 1] = ("bulk_update returned %s, expected %d rows"):format(show(res.n), n) end
  for k, f in ipairs(found) do
    local rec = res.recs[k]
    if w.rows[op.model][f.e.id] and rec then
      for _, c in ipairs(cols) do
        local raw = rec[c]
        local v = WV.from_record(m.by[c], raw)
        -- After bulk_update a record holds the stored form, as after save
        -- (quay.null reads nil, "1.5" in a decimal(.., 2) "1.50", an ISO
        -- datetime in UTC, 2 in a number field 2.0).
        if v ~= vals[k][c] then
          P[#P + 1] = ("record %d (id %d): %s is %s, assigned %s"):format(f.i, f.e.id, c, show(v), show(vals[k][c]))
        end
      end
      check_clean(P, ("record %d (id %d)"):format(f.i, f.e.id), rec)
    end
  end
  return w
end

function H.qupdate(st, op, ok, res, P)
  local ids = matched_ids(st, op.model, op.filter)
  local w = O.clone(st)
  local vbad, over = false, false
  for _, s in ipairs(op.sets) do if s.v and s.v.bad then vbad = true end end
  local new = {}
  for _, id in ipairs(ids) do
    local r = st.rows[op.model][id]
    local nv = {}
    for _, s in ipairs(op.sets) do
      local v
      if s.expr then v = store(s.fd, eval(op.model, s.expr, r, id)) else v = s.v.canon end
      if v == "overflow" then over = true end
      nv[s.fd.name] = v
    end
    new[id] = nv
  end
  if vbad or over then
    want_error(P, ok, res, over and "any" or { validation = true })
    return st
  end
  for id, nv in pairs(new) do
    for c, v in pairs(nv) do w.rows[op.model][id][c] = v end
  end
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return st end
  if not want_ok(P, ok, res) then return st end
  if res.n ~= #ids then P[#P + 1] = ("update returned %s, expected %d"):format(show(res.n), #ids) end
  return w
end

function H.delete(st, op, ok, res, P)
  local ids
  local m = W.models[op.model]
  if op.via == "rec" then
    local r = st.rows[op.model][op.id]
    if not r then
      if want_ok(P, ok, res) and not res.gone then P[#P + 1] = "the record should be gone" end
      return st
    end
    ids = { op.id }
  else
    ids = matched_ids(st, op.model, op.filter)
  end
  local w, counts, codes = C.delete_effect(st, op.model, ids, op.hard or (op.via == "rec" and not m.soft))
  if codes then want_error(P, ok, res, codes); return st end
  if not want_ok(P, ok, res) then return st end
  if type(res.counts) ~= "table" or not same_counts(res.counts, counts) then
    P[#P + 1] = ("delete counts %s, expected %s"):format(show_counts(res.counts), show_counts(counts))
  end
  if op.dry then return st end
  return w
end

local function find_row(st, model, conds)
  local want = build(st, model, conds)
  local given = {}
  for _, it in ipairs(conds) do given[it.fd.name] = true end
  for id, r in pairs(st.rows[model]) do
    local same = true
    for c in pairs(given) do if r[c] ~= want[c] then same = false end end
    if same then return id, r end
  end
end

local function goc_create(st, op, ok, res, P)
  local vals = {}
  for _, it in ipairs(op.conds) do vals[#vals + 1] = it end
  for _, it in ipairs(op.defaults) do vals[#vals + 1] = it end
  local w = O.clone(st)
  local row, vbad = build(w, op.model, vals)
  if vbad then want_error(P, ok, res, { validation = true }); return st end
  w.rows[op.model][-1] = row
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return st end
  w.rows[op.model][-1] = nil
  if not want_ok(P, ok, res) then return st end
  if res.created ~= true then P[#P + 1] = "created is " .. show(res.created) .. ", expected true" end
  if not check_new_id(P, "record", st, op.model, res.rec.id) then return st end
  w.rows[op.model][res.rec.id] = row
  w.ever[op.model][res.rec.id] = true
  check_rec(P, "record", op.model, res.rec, res.rec.id, row)
  check_clean(P, "record", res.rec)
  return w
end

function H.goc(st, op, ok, res, P)
  local id, row = find_row(st, op.model, op.conds)
  if not id then return goc_create(st, op, ok, res, P) end
  X.nohooks = true
  local anybad = false
  for _, it in ipairs(op.defaults) do if it.v.bad then anybad = true end end
  if anybad and not ok then want_error(P, ok, res, { validation = true }); return st end
  if not want_ok(P, ok, res) then return st end
  if res.created ~= false then P[#P + 1] = "created is " .. show(res.created) .. ", expected false" end
  check_rec(P, "record", op.model, res.rec, id, row)
  return st
end

function H.uoc(st, op, ok, res, P)
  local id = find_row(st, op.model, op.conds)
  if not id then return goc_create(st, op, ok, res, P) end
  local w = O.clone(st)
  local r = w.rows[op.model][id]
  local vbad = false
  for _, it in ipairs(op.defaults) do
    if it.v.bad then vbad = true end
    local v = it.v.canon
    r[it.fd.name] = v
  end
  if vbad then want_error(P, ok, res, { validation = true }); return st end
  if table_faults(w, op.model) then want_error(P, ok, res, { integrity = true }); return st end
  if not want_ok(P, ok, res) then return st end
  if res.created ~= false then P[#P + 1] = "created is " .. show(res.created) .. ", expected false" end
  check_rec(P, "record", op.model, res.rec, id, r, false)
  check_clean(P, "record", res.rec)
  return w
end

function H.restore(st, op, ok, res, P)
  local r = st.rows.Memo[op.id]
  if not r then
    if want_ok(P, ok, res) and not res.gone then P[#P + 1] = "the record should be gone" end
    return st
  end
  if not want_ok(P, ok, res) then return st end
  local was = r.deleted_at ~= NULL
  if res.ret ~= was then P[#P + 1] = ("restore returned %s, expected %s"):format(show(res.ret), show(was)) end
  local w = O.clone(st)
  w.rows.Memo[op.id].deleted_at = NULL
  return w
end

-- {{ hooks (writes.lua --hooks)
--[[ The log of the hooks an operation runs, after docs/reference.md
"Model behaviour", settled details "Order of a save", "What each write
runs", "Hooks", "Soft delete".  An expectation is a list of alternatives
(readings the reference leaves open, or rows a cascade may or may not
load); each is a list of items: one event (a hook call in a fixed place),
or a set of events whose order the reference fixes only by their deps (a
delete: before_delete parents first, after_delete once every row is gone,
children first; rows of one level in any order).  An event: { name, model,
id = integer | "none" (a new record) | "int" (any integer: an id Quay
generates), flag = true | false | "nil", v = the logged field's canonical
value or ANY }. ]]
local ANY = setmetatable({}, { __tostring = function() return "ANY" end })

local function hev(cfg, name, model, id, flag, v)
  if not (cfg[model] and cfg[model][name]) then return nil end
  if flag == nil then flag = "nil" end
  return { name = name, model = model, id = id, flag = flag, v = v }
end

local function vals_logv(model, vals)
  local f = W.LOGVAL[model]
  if not f then return nil end
  local v = NULL
  for _, it in ipairs(vals) do
    if it.fd.name == f then v = it.v.bad and ANY or it.v.canon end
  end
  return v
end

-- A values list that Quay may refuse while it makes the record, before its
-- before_save: quay.null for a relation whose key is not nullable
-- ("Relation access on a record": assigning quay.null sets the key "where
-- the key is nullable").  2: surely, 1: maybe (Model:find(quay.null)).
local function prebad(vals)
  local r = 0
  for _, it in ipairs(vals) do
    if it.fd.t == "fk" and not it.fd.null and it.v.src == "quay.null" then
      if it.form == "rel" then r = 2 elseif it.form == "rec" and r == 0 then r = 1 end
    end
  end
  return r
end

-- alternatives x variants: every alternative followed by every variant
-- (a variant: a list of items, events or sets)
local function extend(alts, variants)
  local out = {}
  for _, a in ipairs(alts) do
    for _, var in ipairs(variants) do
      local b = { items = {}, persist = a.persist }
      for _, it in ipairs(a.items) do b.items[#b.items + 1] = it end
      for _, it in ipairs(var) do b.items[#b.items + 1] = it end
      out[#out + 1] = b
    end
  end
  return out
end

local function seq(evs)
  local n = 0
  for i in pairs(evs) do if math.type(i) == "integer" and i > n then n = i end end
  local l = {}
  for i = 1, n do if evs[i] then l[#l + 1] = { ev = evs[i] } end end
  return l
end

local function count(alt)
  local n = 0
  for _, it in ipairs(alt.items) do n = n + (it.ev and 1 or #it.set) end
  return n
end

--- The delete hooks of deleting ids of model (hard: past soft delete): a
--- list of variants (item lists; one).
function C.delete_hooks(cfg, st, model, ids, hard)
  local m = W.models[model]
  local rows = {}       -- { model, id, parent index }
  local f = W.LOGVAL
  if m.soft and not hard then
    for _, id in ipairs(ids) do
      local r = st.rows[model][id]
      if r and r.deleted_at == NULL then rows[#rows + 1] = { model, id } end
    end
  else
    local seen = {}
    for _, name in ipairs(W.order) do seen[name] = {} end
    for _, id in ipairs(ids) do
      if st.rows[model][id] and not seen[model][id] then
        seen[model][id] = true
        rows[#rows + 1] = { model, id }
      end
    end
    local i = 1
    while i <= #rows do
      local mm, id = rows[i][1], rows[i][2]
      for _, ref in ipairs(W.referrers[mm]) do
        if ref.fd.on_delete == "CASCADE" then
          local rids = {}
          for rid, r in pairs(st.rows[ref.model]) do
            if r[ref.fd.name] == id and not seen[ref.model][rid] then rids[#rids + 1] = rid end
          end
          table.sort(rids)
          for _, rid in ipairs(rids) do
            seen[ref.model][rid] = true
            -- a hard cascade deletes soft-deleted children for real, and
            -- "delete hooks also run for every row a cascade deletes"
            rows[#rows + 1] = { ref.model, rid, i }
          end
        end
      end
      i = i + 1
    end
  end
  local evs = {}
  local function key(e) return e.name .. " " .. e.model .. " " .. e.id end
  local bds, ads = {}, {}
  for i, r in ipairs(rows) do
    local row = st.rows[r[1]][r[2]]
    local v = f[r[1]] and row[f[r[1]]] or nil
    bds[i] = hev(cfg, "before_delete", r[1], r[2], nil, v)
    ads[i] = hev(cfg, "after_delete", r[1], r[2], nil, v)
  end
  local allbd = {}
  for i in ipairs(rows) do if bds[i] then allbd[#allbd + 1] = key(bds[i]) end end
  for i, r in ipairs(rows) do
    if bds[i] then bds[i].deps = {} end
    if ads[i] then ads[i].deps = { table.unpack(allbd) } end
    local a = r[3]
    while a do
      -- a: an ancestor of row i
      if bds[i] and bds[a] then table.insert(bds[i].deps, key(bds[a])) end
      if ads[a] and ads[i] then table.insert(ads[a].deps, key(ads[i])) end
      a = rows[a][3]
    end
  end
  for i in ipairs(rows) do if bds[i] then evs[#evs + 1] = bds[i] end end
  for i in ipairs(rows) do if ads[i] then evs[#evs + 1] = ads[i] end end
  return { #evs > 0 and { { set = evs } } or {} }
end

-- Before every record's before_save of a bulk call: all of them (the
-- natural outcome a success or an integrity error), or up to the first
-- row its checks refuse or all (DOUBT(bulk-checks): "every record's
-- before_save and checks first, in list order" reads either as each
-- record's before_save then its checks, or every before_save then the
-- checks).
local function bulk_variants(bs, as, firstbad, pre)
  if X.ok then
    local l = {}
    for _, e in ipairs(bs) do l[#l + 1] = e end
    for _, e in ipairs(as) do l[#l + 1] = e end
    return { seq(l) }
  end
  if #bs == 0 then return { {} } end
  local out = {}
  if pre ~= 2 then out[1] = seq(bs) end
  if firstbad and firstbad < #bs and pre ~= 2 then out[#out + 1] = seq { table.unpack(bs, 1, firstbad) } end
  -- the first bad row refused before its before_save (prebad)
  if firstbad and pre and pre > 0 then out[#out + 1] = seq { table.unpack(bs, 1, firstbad - 1) } end
  return out
end

--- The alternatives of the hook log of op (X: the natural outcome).
function C.hook_alts(cfg, st, op, ok, res)
  local alts = { { items = {}, persist = 0 } }
  if X.nohooks then return alts end
  local k, model = op.kind, op.model
  local okres = ok and type(res) == "table"
  local function create_like(vals, flag)
    local _, _, _, xid = build(st, model, vals)
    local v = vals_logv(model, vals)
    local l = { hev(cfg, "before_save", model, xid or "none", flag, v) }
    if X.ok then
      local id = xid or (okres and type(res.rec) ~= "nil" and res.rec.id) or "int"
      l[2] = hev(cfg, "after_save", model, id, flag, v)
    end
    local pre = X.err and prebad(vals) or 0
    if pre == 2 then return alts end
    if pre == 1 then return extend(alts, { seq(l), {} }) end
    return extend(alts, { seq(l) })
  end
  if k == "create" then return create_like(op.vals, true)
  elseif k == "bulk" or k == "upsert" then
    local flag = k == "bulk" or nil
    local bs, as, firstbad, pre = {}, {}, nil, nil
    for i, vals in ipairs(op.rows) do
      local _, vb, _, xid = build(st, model, vals)
      if vb and not firstbad then firstbad = i; pre = prebad(vals) end
      bs[#bs + 1] = hev(cfg, "before_save", model, xid or "none", flag, vals_logv(model, vals))
      local id = xid or (okres and type(res.recs) == "table" and res.recs[i] and res.recs[i].id) or "int"
      if k == "upsert" then id = (okres and type(res.recs) == "table" and res.recs[i] and res.recs[i].id) or "int" end
      -- an upsert's record after the write: the logged field as written or kept
      as[#as + 1] = hev(cfg, "after_save", model, id, flag, k == "upsert" and ANY or vals_logv(model, vals))
    end
    if not cfg[model] or not cfg[model].before_save then firstbad = nil end
    if firstbad then
      local n = 0
      for i = 1, firstbad do if op.rows[i] then n = n + 1 end end
      firstbad = n
    end
    return extend(alts, bulk_variants(bs, as, firstbad, pre))
  elseif k == "save" then
    local f = W.LOGVAL[model]
    local v
    if f then
      v = st.rows[model][op.id][f]
      for _, a in ipairs(op.assigns) do
        if a.fd.name == f then v = a.v.bad and ANY or assigned_value(st, a) or NULL end
      end
    end
    local l = { hev(cfg, "before_save", model, op.id, false, v) }
    if X.ok then l[2] = hev(cfg, "after_save", model, op.id, false, v) end
    return extend(alts, { seq(l) })
  elseif k == "bupdate" then
    local m = W.models[model]
    local found = {}
    for _, e in ipairs(op.entries) do
      local r = st.rows[model][e.id]
      if r and not (m.soft and r.deleted_at ~= NULL) then found[#found + 1] = e end
    end
    if op.delete_ids and #op.delete_ids > 0 then
      local _, _, codes = C.delete_effect(st, model, op.delete_ids, false)
      if not codes then
        alts = extend(alts, C.delete_hooks(cfg, st, model, op.delete_ids, false))
        for _, a in ipairs(alts) do a.persist = count(a) end
      end
    end
    local bs, as, firstbad = {}, {}, nil
    for i, e in ipairs(found) do
      for _, a in ipairs(e.assigns) do
        local v = assigned_value(st, a)
        if a.v.bad or (v == nil and not a.fd.null) then firstbad = firstbad or i end
      end
      -- "then run every after_save in list order": a record whose row
      -- was deleted meanwhile too (it is not written)
      bs[#bs + 1] = hev(cfg, "before_save", model, e.id, false, ANY)
      as[#as + 1] = hev(cfg, "after_save", model, e.id, false, ANY)
    end
    if not cfg[model] or not cfg[model].before_save then firstbad = nil end
    return extend(alts, bulk_variants(bs, as, firstbad))
  elseif k == "delete" then
    if op.dry or not X.ok then return alts end
    local m = W.models[model]
    local ids
    if op.via == "rec" then
      local r = st.rows[model][op.id]
      if not r then return alts end
      ids = { op.id }
    else
      ids = matched_ids(st, model, op.filter)
    end
    local hard = op.hard or not m.soft
    return extend(alts, C.delete_hooks(cfg, st, model, ids, hard))
  elseif k == "goc" or k == "uoc" then
    local id, row = find_row(st, model, op.conds)
    if not id then
      local vals = {}
      for _, it in ipairs(op.conds) do vals[#vals + 1] = it end
      for _, it in ipairs(op.defaults) do vals[#vals + 1] = it end
      return create_like(vals, true)
    end
    if k == "goc" then return alts end
    local f = W.LOGVAL[model]
    local v = f and row[f] or nil
    local l = { hev(cfg, "before_save", model, id, false, v) }
    if X.ok then l[2] = hev(cfg, "after_save", model, id, false, v) end
    return extend(alts, { seq(l) })
  end
  return alts
end

local function show_ev(e)
  local v = e.v
  if v == ANY then v = "ANY" else v = show(v) end
  return ("%s %s id=%s flag=%s v=%s"):format(e.name, e.model, tostring(e.id), tostring(e.flag), v)
end

local function log_canon(v)
  if v == nil or v == require("quay").null then return NULL end
  return v
end

-- Does log entry g match event e?
local function ev_ok(e, g)
  if g.name ~= e.name or g.model ~= e.model then return false end
  local flag = g.flag
  if flag == nil then flag = "nil" end
  if flag ~= e.flag then return false end
  if e.id == "none" then if g.id ~= nil then return false end
  elseif e.id == "int" then if math.type(g.id) ~= "integer" then return false end
  elseif g.id ~= e.id then return false end
  if e.v ~= ANY and e.v ~= nil and log_canon(g.v) ~= e.v then return false end
  return true
end

-- Does log (its first limit entries, exactly) follow alternative alt?  nil,
-- or why not.
local function follows(alt, log, limit)
  if #log ~= limit then return ("%d hook calls, expected %d"):format(#log, limit) end
  local pos, done = 1, {}
  for _, it in ipairs(alt.items) do
    if pos > limit then break end
    if it.ev then
      if not ev_ok(it.ev, log[pos]) then
        return ("hook call %d is %s, expected %s"):format(pos, show_ev(log[pos]), show_ev(it.ev))
      end
      pos = pos + 1
    else
      local left = {}
      for i, e in ipairs(it.set) do left[i] = e end
      for _ = 1, math.min(#it.set, limit - pos + 1) do
        local g = log[pos]
        local hit
        for i, e in ipairs(left) do
          if ev_ok(e, g) then
            local ready = true
            for _, d in ipairs(e.deps) do if not done[d] then ready = false end end
            if not ready then
              return ("hook call %d (%s) comes before %s"):format(pos, show_ev(g), table.concat(e.deps, ", "))
            end
            hit = i
            break
          end
        end
        if not hit then return ("hook call %d (%s) is not expected here"):format(pos, show_ev(g)) end
        done[g.name .. " " .. g.model .. " " .. tostring(g.id)] = true
        table.remove(left, hit)
        pos = pos + 1
      end
    end
  end
  return nil
end

local function show_alt(alt)
  local l = {}
  for _, it in ipairs(alt.items) do
    if it.ev then l[#l + 1] = show_ev(it.ev)
    else
      local s = {}
      for _, e in ipairs(it.set) do s[#s + 1] = show_ev(e) end
      l[#l + 1] = "in an order after the rule book: { " .. table.concat(s, "; ") .. " }"
    end
  end
  return #l == 0 and "no hook" or table.concat(l, " | ")
end

local function show_log(log)
  local l = {}
  for _, g in ipairs(log) do l[#l + 1] = show_ev(g) end
  return #l == 0 and "no hook" or table.concat(l, " | ")
end

-- Was res the value the plan's hook raised?
local function raised(plan, ok, res)
  if ok or not plan or not plan.fail then return false end
  return rawequal(res, plan.raised)
end

--- The state after op and the problems with what Quay did (ok, res: what
--- the operation's chunk returned under pcall; hk: nil, or the hooks of
--- the case { cfg, log, plan = { fail, raised, write } }).
function C.check(st, op, ok, res, hk)
  for key in pairs(X) do X[key] = nil end
  X.raised = hk and raised(hk.plan, ok, res)
  local P = {}
  local k = op.kind
  local nst = H[k](st, op, ok, res, P)
  if not hk then return nst, P end
  local alts = C.hook_alts(hk.cfg, st, op, ok, res)
  local plan = hk.plan
  local F = plan and plan.fail
  local isr = raised(plan, ok, res)
  local why
  local chosen
  for _, alt in ipairs(alts) do
    local n = count(alt)
    local pr = F ~= nil and F <= n
    if pr == isr then
      local w = follows(alt, hk.log, pr and F or n)
      if not w then chosen = alt; break end
      why = why or w
    end
  end
  if not chosen then
    local Q = {}
    if isr then Q[1] = "the call raised the hook's value (call " .. F .. ")"
    else
      for _, p in ipairs(P) do Q[#Q + 1] = p end
    end
    Q[#Q + 1] = "hook log: " .. (why or "no reading of the rule book gives this outcome")
    Q[#Q + 1] = "  got:      " .. show_log(hk.log)
    for i, alt in ipairs(alts) do
      local n = count(alt)
      Q[#Q + 1] = ("  expected%s: %s%s"):format(#alts > 1 and (" (" .. i .. ")") or "", show_alt(alt),
        (F and F <= n) and (" -- raising at call " .. F) or "")
    end
    return st, Q
  end
  if isr then
    nst, P = X.base or st, {}
    -- "the record is put back as before the call"
    local kept = hk.kept
    if kept then
      local rec, snap = kept.rec, kept.snap
      if rec.id ~= snap.id then
        P[#P + 1] = ("after the hook's error the record's id is %s, before the call %s"):format(show(rec.id), show(snap.id))
      end
      for _, f in ipairs(kept.fields) do
        local a, b = snap[f], rec[f]
        local same = rawequal(a, b) or a == b or (a ~= a and b ~= b)   -- NaN: the value given again
        if not same and type(a) == "table" and type(b) == "table" then same = WV.json_canon(a) == WV.json_canon(b) end
        if not same then
          P[#P + 1] = ("after the hook's error the record's %s is %s, before the call %s"):format(f,
            tostring(b), tostring(a))
        end
      end
      local okc, ch = pcall(rec.changed, rec)
      local c1, c2 = sorted_names(snap.changed), sorted_names(okc and ch or {})
      if c1 ~= c2 then
        P[#P + 1] = ("after the hook's error changed() is {%s}, before the call {%s}"):format(c2, c1)
      end
    end
  end
  if #P > 0 then return nst, P end
  -- the rows the hooks wrote stay when the call did (and those of a
  -- bulk_update's delete before it, a call of its own)
  local keep = ok and #hk.log or chosen.persist or 0
  local w = nil
  for i = 1, keep do
    local g = hk.log[i]
    local what = plan and plan.write and plan.write[g.n]
    if what then
      w = w or O.clone(nst)
      if what == "raw" then w.notes[#w.notes + 1] = g.n
      else
        if math.type(g.bare) ~= "integer" or w.rows.Bare[g.bare] or w.ever.Bare[g.bare] then
          P[#P + 1] = "the hook's Bare:create gave id " .. show(g.bare)
        else
          w.rows.Bare[g.bare] = {}
          w.ever.Bare[g.bare] = true
        end
      end
    end
  end
  return w or nst, P
end
-- }}

return C
