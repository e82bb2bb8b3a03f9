--[[
test/difftest/aoracle.lua
The oracle's read path past conditions (docs/reference.md "Aggregates,
annotations, values and expressions"), computed over the plain rows:
quay.F expressions, aggregates, annotate, values (plain, distinct and
grouped), aggregate() and qs:update with expressions.  Installed into the
oracle table by oracle.lua (require("test.difftest.aoracle")(O)).

The semantics it follows:
- An aggregate over a path, for one owner row: the rows reached along the
  path's relations, each once per owner (a tag reached through two of a
  user's posts counts once for that user), keeping those for which the
  aggregate's filter holds.  The filter's paths start at the owner; its
  leaves that follow the aggregate's own path name the aggregated row (and
  the rows on the way to it): filter = { posts__published = true } on
  quay.sum("posts__views") keeps the published posts.  Other leaves are
  conditions on the owner, with the rule book's same-row groups.
- A path with no relation aggregates the owner row itself; no path at all
  (quay.count()) counts owner rows.
- Over several owners (a values() group, aggregate() over a set) the rows
  of every owner are put together (a related row of two owners counts
  twice), except with distinct = true, which counts each value (each row,
  for a path ending at a relation) once over the whole group.
- count: rows (path ending at a relation or at nothing) or non-NULL values;
  sum / avg / min / max: over the non-NULL values, NULL (or the default)
  when there are none; exists: any row.  sum of integers is an integer,
  avg a float, min / max of the field's type.
- quay.F: a column of the row across to-one relations (the key for a path
  ending at a relation), or an annotation; arithmetic is NULL when an
  operand is NULL; integers stay integers (division truncates), a float
  operand makes a float.  In a condition, eq / lt / lte / gt / gte are
  unknown when either side is NULL; ne is IS DISTINCT FROM.
- values(): to-one paths (and annotation names) per record; distinct()
  drops repeated rows; followed by an annotate with aggregates, one row per
  distinct tuple of the values (NULL a value like the others), with the
  aggregates over that group's records.
- update: every expression reads the rows as they were before the update.

Float sums and averages are approximate (V.approx): the backends add in
their own order.  Where the backends may differ by design (integer
overflow, float overflow or underflow, comparing a huge
integer with a float) the oracle gives no answer (O.unsure): the case is
counted as skipped.
]]
local S = require("test.difftest.schema")
local V = require("test.difftest.values")

return function(O)
  local NULL = V.NULL
  local TRUE = O.TRUE
  local BIG = 9.2e18                   -- |x| beyond this may not fit an int64
  local MAXEXACT = 2 ^ 53              -- integers beyond lose bits as floats

  local function is_expr(v) return type(v) == "table" and v.kind == "expr" end
  O.is_expr = is_expr

  -------------------------------------------------------------------------
  -- Arithmetic and comparisons with expressions

  -- Truncating integer division (both backends).
  local function idiv(a, b)
    local q = a // b
    if a % b ~= 0 and (a < 0) ~= (b < 0) then q = q + 1 end
    return q
  end

  --- a op b for two non-NULL numbers, as the backends compute it, or unsure.
  function O.arith(op, a, b)
    if V.is_approx(a) or V.is_approx(b) then O.unsure("arithmetic on an approximate value") end
    if V.is_dec(a) or V.is_dec(b) then
      -- decimal arithmetic (agen.lua draws + and - of decimals and
      -- integers, * of decimals by integers and by decimals): exact, as
      -- scaled integers; a product has the sum of the places, + and - the
      -- larger (docs/reference.md "Decimals are exact").  Past 64 bits at
      -- the result's places SQLite raises `sql` and PostgreSQL computes it.
      local function scaled(x)
        if V.is_dec(x) then return x.c, V.dec_places(x) end
        if math.type(x) ~= "integer" then O.unsure("a decimal with a float (not drawn)") end
        return x, 0
      end
      local function fits(f)
        if f >= 9e18 or f <= -9e18 then O.unsure("a decimal past 64 bits at its places") end
      end
      local ca, pa = scaled(a)
      local cb, pb = scaled(b)
      if op == "*" then
        fits(ca * 1.0 * cb)
        return V.dec(ca * cb, nil, pa + pb)
      elseif op == "+" or op == "-" then
        local p = math.max(pa, pb)
        local ma, mb = V.pow10(p - pa), V.pow10(p - pb)
        fits(ca * 1.0 * ma); fits(cb * 1.0 * mb)
        local x, y = ca * ma, cb * mb
        fits(op == "+" and x * 1.0 + y or x * 1.0 - y)
        return V.dec(op == "+" and x + y or x - y, nil, p)
      end
      O.unsure("a decimal divided (not drawn)")
    end
    if math.type(a) == "integer" and math.type(b) == "integer" then
      if op == "/" then
        if b == 0 then return NULL end    -- NULL on both backends (NULLIF)
        if a == math.mininteger and b == -1 then O.unsure("integer overflow") end
        return idiv(a, b)
      end
      local f
      if op == "+" then f = a * 1.0 + b elseif op == "-" then f = a * 1.0 - b else f = a * 1.0 * b end
      if math.abs(f) >= BIG then O.unsure("integer overflow") end
      if op == "+" then return a + b elseif op == "-" then return a - b else return a * b end
    end
    a, b = a + 0.0, b + 0.0
    local r
    if op == "+" then r = a + b elseif op == "-" then r = a - b elseif op == "*" then r = a * b
    else
      if b == 0 then return NULL end      -- NULL on both backends (NULLIF)
      r = a / b
    end
    if r ~= r or math.abs(r) > 1e307 then O.unsure("float overflow") end
    if r == 0 and (op == "*" or op == "/") and a ~= 0 then O.unsure("float underflow") end
    if r ~= 0 and math.abs(r) < 2.3e-308 then O.unsure("float underflow") end
    return r
  end

  -- Compare two non-NULL values; unsure for an integer too big to be a
  -- float exactly against a float (PostgreSQL compares as float8).
  local function cmp_mixed(x, y)
    local tx, ty = math.type(x), math.type(y)
    if tx and ty and tx ~= ty then
      local i = tx == "integer" and x or y
      if math.abs(i) > MAXEXACT then O.unsure("a huge integer compared with a float") end
    end
    return V.cmp(x, y)
  end

  --- A condition `x <lk> expression value` (lookups eq ne lt lte gt gte).
  function O.lookup_expr(x, lk, v)
    if V.is_approx(x) or V.is_approx(v) then O.unsure("a comparison with an approximate value") end
    if lk == "ne" then
      if x == NULL and v == NULL then return O.FALSE end
      if x == NULL or v == NULL then return TRUE end
      return O.tv(cmp_mixed(x, v) ~= 0)
    end
    if x == NULL or v == NULL then return O.UNKNOWN end
    local c = cmp_mixed(x, v)
    if lk == "eq" then return O.tv(c == 0)
    elseif lk == "lt" then return O.tv(c < 0) elseif lk == "lte" then return O.tv(c <= 0)
    elseif lk == "gt" then return O.tv(c > 0) elseif lk == "gte" then return O.tv(c >= 0) end
    error("oracle: lookup " .. tostring(lk) .. " with an expression")
  end

  -------------------------------------------------------------------------
  -- Aggregates

  --- The relation hops of an aggregate path (names and models), the model
  --- reached and the field at its end (nil: the path ends at a relation).
  function O.agg_path(model, path)
    local hops, m = {}, model
    local segs = O.split(path)
    for i, s in ipairs(segs) do
      local md = S.models[m]
      if md.rels[s] then
        hops[#hops + 1] = { name = s, model = m, many = md.rels[s].many }
        m = md.rels[s].target
      elseif md.field_by[s] and i == #segs then
        return hops, m, s
      else
        error("oracle: aggregate path " .. path)
      end
    end
    return hops, m, nil
  end

  --- The rows an aggregate over hops reaches from row (each once), kept
  --- when filter holds with the path's to-many rows bound to the chain.
  function O:agg_targets(model, row, hops, filter)
    if #hops == 0 then
      if filter and self:table_value(model, row, filter, nil) ~= TRUE then return {} end
      return { row }
    end
    local seen, out = {}, {}
    local chain, names = {}, {}
    for i, h in ipairs(hops) do names[i] = (i > 1 and names[i - 1] .. "__" or "") .. h.name end
    local function rec(i, cur)
      if i > #hops then
        local t = chain[#hops]
        if seen[t] then return end
        if filter then
          local pre = {}
          for k, h in ipairs(hops) do if h.many then pre[names[k]] = chain[k] end end
          if self:table_value(model, row, filter, nil, pre) ~= TRUE then return end
        end
        seen[t] = true
        out[#out + 1] = t
        return
      end
      local h = hops[i]
      for _, r in ipairs(self:related(h.model, cur, h.name)) do
        chain[i] = r
        rec(i + 1, r)
      end
      chain[i] = nil
    end
    rec(1, row)
    return out
  end

  -- A key for a value (distinct values, groups).
  local function vkey(v)
    if v == NULL then return "N" end
    -- an approximate sum or average keys as the value worked out: an exact
    -- 0.5 (a default, a sum of one row) and a float sum of 0.5 are one value
    if V.is_approx(v) then v = v.v end
    if v == 0 then v = v - v end      -- -0.0 is 0.0 (DISTINCT, GROUP BY)
    return (math.type(v) or type(v)) .. ":" .. V.lua(v)
  end
  O.vkey = vkey

  -- Sum of integers, unsure when some order of adding them overflows.
  local function int_sum(vals)
    local pos, neg = 0, 0
    for _, v in ipairs(vals) do
      if v >= 0 then
        if pos > math.maxinteger - v then return nil end
        pos = pos + v
      else
        if neg < math.mininteger - v then return nil end
        neg = neg + v
      end
    end
    return pos + neg
  end

  --- The value of aggregate e (kind "agg") over the owner rows of model.
  function O:agg_value(model, owners, e)
    local hops, tm, field = {}, model, nil
    if e.path then hops, tm, field = O.agg_path(model, e.path) end
    local rows = {}
    if not e.path then
      for _, o in ipairs(owners) do
        if not e.filter or self:table_value(model, o, e.filter, nil) == TRUE then
          rows[#rows + 1] = o
        end
      end
    else
      for _, o in ipairs(owners) do
        for _, t in ipairs(self:agg_targets(model, o, hops, e.filter)) do rows[#rows + 1] = t end
      end
    end
    local fn = e.fn
    if fn == "exists" then return #rows > 0 end
    if fn == "count" and not field then
      if not e.distinct then return #rows end
      local seen, n = {}, 0
      for _, r in ipairs(rows) do if not seen[r] then seen[r] = true; n = n + 1 end end
      return n
    end
    local vals = {}
    local seen = {}
    for _, r in ipairs(rows) do
      local v = r[field]
      if v ~= NULL then
        if e.distinct then
          local k = vkey(v)
          if not seen[k] then seen[k] = true; vals[#vals + 1] = v end
        else
          vals[#vals + 1] = v
        end
      end
    end
    if fn == "count" then return #vals end
    if #vals == 0 then
      if e.default ~= nil then return e.default end
      return NULL
    end
    local ty = S.models[tm].field_by[field].type
    if fn == "min" or fn == "max" then
      local best = vals[1]
      for i = 2, #vals do
        local c = V.cmp(vals[i], best)
        if (fn == "min" and c < 0) or (fn == "max" and c > 0) then best = vals[i] end
      end
      return best
    end
    local absum, absmax = 0.0, 0.0
    for _, v in ipairs(vals) do
      local f = V.is_dec(v) and v.c / V.pow10(V.dec_places(v)) or v
      absum = absum + math.abs(f)
      if math.abs(f) > absmax then absmax = math.abs(f) end
    end
    if absum > 1e307 then O.unsure("float overflow in a sum") end
    if ty == "decimal" then
      -- exact: a sum of cents, read as a decimal; avg a float
      local cs = {}
      for i, v in ipairs(vals) do cs[i] = v.c end
      local sc = int_sum(cs)
      if not sc then O.unsure("decimal sum past 64-bit cents") end
      if fn == "sum" then return V.dec(sc) end
      local a = sc / 100 / #vals
      return V.approx(a, 1e-12 * math.max(1, math.abs(a)))
    end
    if fn == "sum" then
      if ty == "number" then
        local s = 0.0
        for _, v in ipairs(vals) do s = s + v end
        return V.approx(s, 1e-9 * math.max(1, absum))
      end
      local s = int_sum(vals)
      if not s then O.unsure("integer sum overflow") end
      return s
    end
    -- avg
    local s
    if ty ~= "number" then
      -- an average of integers is a sum first (a group's is a sum of sums)
      s = int_sum(vals)
      if not s then O.unsure("integer sum overflow") end
      s = s + 0.0
    else
      s = 0.0
      for _, v in ipairs(vals) do s = s + v end
    end
    return V.approx(s / #vals, 1e-9 * math.max(1, absmax))
  end

  -------------------------------------------------------------------------
  -- Expressions

  --- The value of expression e for row of model (ctx: its annotations).
  --- owners: the rows an aggregate covers (default { row }).
  function O:eval(e, model, row, ctx, owners)
    local k = e.kind
    if k == "num" then return e.v
    elseif k == "col" then return self:path_value(model, row, e.path, ctx)
    elseif k == "agg" then return self:agg_value(model, owners or { row }, e)
    elseif k == "op" then
      local a = self:eval(e.a, model, row, ctx, owners)
      local b = self:eval(e.b, model, row, ctx, owners)
      if a == NULL or b == NULL then return NULL end
      return O.arith(e.op, a, b)
    end
    error("oracle: expression " .. tostring(k))
  end

  -- An expression of aggregates over a group of owners (grouped values,
  -- aggregate()).
  function O:eval_group(model, owners, e)
    local k = e.kind
    if k == "num" then return e.v
    elseif k == "agg" then return self:agg_value(model, owners, e)
    elseif k == "op" then
      local a = self:eval_group(model, owners, e.a)
      local b = self:eval_group(model, owners, e.b)
      if a == NULL or b == NULL then return NULL end
      return O.arith(e.op, a, b)
    end
    error("oracle: a grouped expression may only hold aggregates and numbers")
  end

  --- Annotate the candidates (each { row, ctx }): ctx.ann[name], the
  --- annotate calls in order.
  function O:annotate(model, cands, anns)
    for _, c in ipairs(cands) do
      local ctx = {}
      for kk, vv in pairs(c.ctx or {}) do ctx[kk] = vv end
      ctx.ann = {}
      c.ctx = ctx
      for _, a in ipairs(anns) do
        ctx.ann[a.name] = self:eval(a.e, model, c.row, ctx)
      end
    end
  end

  -------------------------------------------------------------------------
  -- Rows of values

  -- Order of two values under an order term (NULL first ascending).
  local function term_cmp(x, y, desc)
    local c
    if x == NULL and y == NULL then c = 0
    elseif x == NULL then c = -1
    elseif y == NULL then c = 1
    else c = V.cmp(x, y) end
    if desc then c = -c end
    return c
  end
  O.term_cmp = term_cmp

  --- Compare two value rows under order terms { {path, desc} }: -1, 0, 1.
  function O.rows_cmp(a, b, order)
    for _, t in ipairs(order or {}) do
      local x, y = a[t.path], b[t.path]
      if x == nil then x = NULL end
      if y == nil then y = NULL end
      local c = term_cmp(x, y, t.desc)
      if c ~= 0 then return c end
    end
    return 0
  end

  -- Sort value rows by the order terms (stable: ties keep their order).
  local function sort_rows(rows, order)
    if not order or #order == 0 then return rows end
    local idx = {}
    for i, r in ipairs(rows) do idx[i] = { r = r, i = i } end
    table.sort(idx, function(a, b)
      local c = O.rows_cmp(a.r, b.r, order)
      if c ~= 0 then return c < 0 end
      return a.i < b.i
    end)
    for i, x in ipairs(idx) do rows[i] = x.r end
    return rows
  end

  -- A condition over a value row (grouped post filters): leaves on the
  -- row's columns.
  local function row_table(row, cols, t)
    local acc = TRUE
    for _, it in ipairs(t.items) do
      local v
      if it.kind == "leaf" then
        local col, lk
        for _, c in ipairs(cols) do
          if it.key == c then col, lk = c, "eq"
          elseif it.key:sub(1, #c + 2) == c .. "__" and O.LOOKUPS[it.key:sub(#c + 3)] then
            col, lk = c, it.key:sub(#c + 3)
          end
        end
        assert(col, "oracle: no column for " .. it.key)
        v = O.lookup(row[col], lk, it.value)
      else
        v = O.FALSE
        for _, sub in ipairs(it.tables) do v = O.or3(v, row_table(row, cols, sub)) end
      end
      acc = O.and3(acc, v)
    end
    return acc
  end

  local function row_cond(row, cols, c)
    if c.kind == "any" then c = { kind = "table", items = { c } } end
    return row_table(row, cols, c)
  end

  -- Apply filter / exclude steps to value rows.
  local function filter_rows(rows, cols, steps)
    for _, st in ipairs(steps or {}) do
      local keep = {}
      for _, r in ipairs(rows) do
        local v = row_cond(r, cols, st.cond)
        if (st.op == "filter") == (v == TRUE) then keep[#keep + 1] = r end
      end
      rows = keep
    end
    return rows
  end

  -- Is the order total over rows whose columns are cols (every column
  -- ordered on)?
  local function covers(order, cols)
    local on = {}
    for _, t in ipairs(order or {}) do on[t.path] = true end
    for _, c in ipairs(cols) do if not on[c] then return false end end
    return true
  end
  O.covers = covers

  -- The result of term t over value rows.
  local function rows_result(rows, cols, t, ordered, total, order)
    local kind = t.kind
    if kind == "pluck" then
      local known = false
      for _, c in ipairs(cols) do if c == t.path then known = true end end
      assert(known, "oracle: pluck of a column the values() set does not have")
    end
    if kind == "count" then return { kind = "count", n = #rows }
    elseif kind == "exists" then return { kind = "bool", b = #rows > 0 }
    elseif kind == "first" then
      return { kind = "rows", rows = { rows[1] }, cols = cols, ordered = true, total = true }
    elseif kind == "pluck" then
      local vals = {}
      for i, r in ipairs(rows) do vals[i] = r[t.path] end
      return { kind = "values", values = vals, ordered = ordered and total, strict = true }
    end
    return { kind = "rows", rows = rows, cols = cols, ordered = ordered, total = total,
             order = order }
  end

  -------------------------------------------------------------------------
  -- Queries

  local function ann_names(anns)
    local out = {}
    for i, a in ipairs(anns or {}) do out[i] = a.name end
    return out
  end

  --- Grouped values: values(q.vals):annotate(q.ann) with q.post over the
  --- groups.
  function O:grouped(q, cands)
    local model = q.model
    local groups, order = {}, {}
    for _, c in ipairs(cands) do
      local key, parts = {}, {}
      for i, p in ipairs(q.vals) do
        key[i] = self:path_value(model, c.row, p, c.ctx)
        parts[i] = vkey(key[i])
      end
      local k = table.concat(parts, "\0")
      local g = groups[k]
      if not g then
        g = { key = key, owners = {} }
        groups[k] = g
        order[#order + 1] = g
      end
      table.insert(g.owners, c.row)
    end
    local cols = {}
    for i, p in ipairs(q.vals) do cols[i] = p end
    for _, n in ipairs(ann_names(q.ann)) do cols[#cols + 1] = n end
    local rows = {}
    for i, g in ipairs(order) do
      local r = {}
      for j, p in ipairs(q.vals) do r[p] = g.key[j] end
      for _, a in ipairs(q.ann) do r[a.name] = self:eval_group(model, g.owners, a.e) end
      rows[i] = r
    end
    rows = filter_rows(rows, cols, q.post)
    local ordered = q.order ~= nil and #q.order > 0
    for _, t in ipairs(q.order or {}) do
      local known = false
      for _, c in ipairs(cols) do if c == t.path then known = true end end
      assert(known, "oracle: a group ordered by something it does not have")
    end
    sort_rows(rows, q.order)
    local total = ordered and covers(q.order, q.vals)
    assert(total or not (q.limit or q.offset), "oracle: a window of groups in no total order")
    rows = O.slice(rows, q)
    return rows_result(rows, cols, q.term, ordered, total, q.order)
  end

  --- A value stored in a decimal(10, 2) field (docs/reference.md "quay.F"):
  --- a decimal as it is, an integer exactly, a float through its 15
  --- significant digits rounded at 2 places, ties away from zero; nil when
  --- out of range (the update raises `sql`).
  function O.to_decimal(v)
    local c
    if V.is_dec(v) then
      -- more places than 2: rounded at 2, ties away from zero
      local p = V.dec_places(v)
      c = v.c
      if p > 2 then
        local m = V.pow10(p - 2)
        local q = (math.abs(c) + m // 2) // m
        c = c < 0 and -q or q
      elseif p < 2 then
        c = c * V.pow10(2 - p)
      end
    elseif math.type(v) == "integer" then
      -- (not math.abs: math.abs(math.mininteger) is negative)
      if v >= 100000000 or v <= -100000000 then return nil end
      c = v * 100
    else
      if v ~= v or v == math.huge or v == -math.huge then O.unsure("a non-finite number into a decimal") end
      if math.abs(v) >= 1e8 then return nil end
      local s = ("%.14e"):format(v)             -- 15 significant digits
      local sign, m, ex = s:match("^(%-?)(%d%.%d+)e([%+%-]%d+)$")
      local digits = m:gsub("%.", "")              -- 15 digits, point after the first
      local e = math.tointeger(tonumber(ex))
      -- value = 0.digits * 10^(e+1); cents = value * 100
      local shift = e + 1 + 2                      -- digits before the cents' point
      local whole, frac
      if shift <= 0 then whole, frac = "0", ("0"):rep(-shift) .. digits
      elseif shift >= #digits then whole, frac = digits .. ("0"):rep(shift - #digits), ""
      else whole, frac = digits:sub(1, shift), digits:sub(shift + 1) end
      c = math.tointeger(tonumber(whole))
      if frac:sub(1, 1) >= "5" and frac ~= "" then c = c + 1 end
      if sign == "-" then c = -c end
      if c == 0 then c = 0 end
    end
    if math.abs(c) > 9999999999 then return nil end
    return V.dec(c)
  end

  --- The rows of model after an update: q.term.set over the candidates.
  function O:update(q, cands)
    local model = q.model
    local md = S.models[model]
    local new, n = {}, 0
    for _, c in ipairs(cands) do
      if not new[c.row.id] then
        n = n + 1
        local nv = {}
        for _, s in ipairs(q.term.set) do
          local v = s.value
          if is_expr(v) then v = self:eval(v.e, model, c.row, c.ctx) end
          local ty = md.field_by[s.col].type
          if v ~= NULL then
            if V.is_approx(v) then O.unsure("an update with an approximate value") end
            if ty == "decimal" then
              v = O.to_decimal(v)
              if not v then
                return { error = "sql", message = "a decimal out of decimal(10, 2)" }
              end
            elseif ty == "integer" and V.is_dec(v) then
              -- a decimal into an integer: ties away from zero
              local c, m = v.c, V.pow10(V.dec_places(v))
              local q = (math.abs(c) + m // 2) // m
              v = c < 0 and -q or q
            elseif ty == "number" and V.is_dec(v) then
              -- exact when the scaled integer is a double exactly
              if math.abs(v.c) > MAXEXACT then O.unsure("a decimal of more than 53 bits into a number") end
              v = v.c / V.pow10(V.dec_places(v))
            elseif ty == "integer" and math.type(v) ~= "integer" then
              -- rounded to the nearest integer, ties to even
              -- (docs/reference.md "quay.F"); outside 64 bits an error
              local f = math.floor(v)
              local d = v - f
              if d > 0.5 or (d == 0.5 and f % 2 ~= 0) then f = f + 1 end
              v = math.tointeger(f)
              if v == nil then O.unsure("an integer field set from a number out of range") end
            elseif ty == "number" then
              v = v + 0.0
            end
          end
          nv[s.col] = v
        end
        new[c.row.id] = nv
      end
    end
    local rows = {}
    for i, r in ipairs(self.inst.rows[model] or {}) do
      local x = {}
      for kk, vv in pairs(r) do x[kk] = vv end
      for kk, vv in pairs(new[r.id] or {}) do x[kk] = vv end
      rows[i] = x
    end
    return { kind = "update", n = n, model = model, rows = rows }
  end

  -- The backends evaluate expressions for rows the oracle never needs to
  -- look at (another condition already false, a row a later step drops):
  -- evaluate the annotations and the quay.F values of conditions for every
  -- row of the model first, so that an overflow anywhere makes the case
  -- unsure.
  function O:precheck(q)
    local model = q.model
    local fexprs = {}
    local function scan(c)
      if c.kind == "any" then for _, t in ipairs(c.tables) do scan(t) end return end
      for _, it in ipairs(c.items) do
        if it.kind == "leaf" then
          if is_expr(it.value) then fexprs[#fexprs + 1] = it.value.e end
        else scan(it) end
      end
    end
    for _, st in ipairs(q.steps) do if st.cond and not st.rel then scan(st.cond) end end
    for _, st in ipairs(q.post or {}) do scan(st.cond) end
    -- a group's or aggregate()'s sums are sums of per-record sums, which a
    -- backend may compute for records a window or filter drops later
    local group_aggs = {}
    local function each_agg(e)
      if e.kind == "agg" and (e.fn == "sum" or e.fn == "avg") then group_aggs[#group_aggs + 1] = e
      elseif e.kind == "op" then each_agg(e.a); each_agg(e.b) end
    end
    for _, a in ipairs(q.grouped and q.ann or {}) do each_agg(a.e) end
    for _, a in ipairs(q.term.aggs or {}) do each_agg(a.e) end
    for _, e in ipairs(group_aggs) do
      for _, row in ipairs(self.inst.rows[model] or {}) do self:agg_value(model, { row }, e) end
    end
    if #fexprs == 0 and not (q.ann and not q.grouped) then return end
    local seen = {}          -- node -> { values it takes over the rows }
    local function note(node, v)
      local l = seen[node] or {}
      seen[node] = l
      l[vkey(v)] = v
    end
    local function collect(e, row, ctx)
      if e.kind == "col" or e.kind == "agg" then note(e, self:eval(e, model, row, ctx))
      elseif e.kind == "op" then collect(e.a, row, ctx); collect(e.b, row, ctx) end
    end
    for _, row in ipairs(self.inst.rows[model] or {}) do
      local ctx = { ann = {} }
      if not q.grouped then
        for _, a in ipairs(q.ann or {}) do
          ctx.ann[a.name] = self:eval(a.e, model, row, ctx)
          collect(a.e, row, ctx)
        end
      end
      for _, e in ipairs(fexprs) do
        self:eval(e, model, row, ctx)
        collect(e, row, ctx)
      end
    end
    if self.opts.backend ~= "pg" then return end
    -- PostgreSQL may also compute an expression on rows of the tables its
    -- columns come from that no row of the model reaches (a join done the
    -- other way round): every column's every value, in every combination
    local function column_values(path)
      local segs = O.split(path)
      local m = model
      for i = 1, #segs - 1 do
        local rel = S.models[m].rels[segs[i]]
        if not rel then return nil end
        m = rel.target
      end
      local last = segs[#segs]
      local rel = S.models[m].rels[last]
      local col = rel and rel.key or last
      if rel then m = rel.target end
      if not S.models[m].field_by[col] then return nil end
      local out = { N = NULL }
      for _, r in ipairs(self.inst.rows[m] or {}) do out[vkey(r[col])] = r[col] end
      return out
    end
    local function check(e)
      local vars = {}
      local function walk(n)
        if n.kind == "op" then walk(n.a); walk(n.b)
        elseif n.kind == "col" or n.kind == "agg" then
          local vals = n.kind == "col" and column_values(n.path) or nil
          local list = {}
          for _, v in pairs(vals or seen[n] or {}) do list[#list + 1] = v end
          vars[#vars + 1] = { node = n, list = list }
        end
      end
      walk(e)
      local assign = {}
      local function value(n)
        if n.kind == "num" then return n.v end
        if n.kind == "op" then
          local a, b = value(n.a), value(n.b)
          if a == NULL or b == NULL then return NULL end
          return O.arith(n.op, a, b)
        end
        return assign[n]
      end
      local budget = 20000
      local function enum(i)
        if budget <= 0 then return end
        if i > #vars then budget = budget - 1; value(e); return end
        for _, v in ipairs(vars[i].list) do
          assign[vars[i].node] = v
          enum(i + 1)
        end
      end
      enum(1)
    end
    for _, e in ipairs(fexprs) do if e.kind == "op" then check(e) end end
    for _, a in ipairs(q.grouped and {} or q.ann or {}) do if a.e.kind == "op" then check(a.e) end end
  end

  --- Run a query of the read path past conditions (q.ext set; gen's AST,
  --- see agen.lua).
  function O:run_ext(q)
    local model = q.model
    self:precheck(q)
    local cands = self:apply_steps(model, self:base(q), q.steps)
    if q.grouped then return self:grouped(q, cands) end
    if q.ann then self:annotate(model, cands, q.ann) end
    if q.post then cands = self:apply_steps(model, cands, q.post) end
    self:sort(model, cands, q.order)
    local ordered = q.order ~= nil and #q.order > 0
    -- a distinct set's window is over its distinct rows (below)
    if not (q.vals and q.distinct) then cands = O.slice(cands, q) end
    local t = q.term
    if t.kind == "aggregate" then
      local row, cols = {}, {}
      local owners = {}
      for i, c in ipairs(cands) do owners[i] = c.row end
      for i, a in ipairs(t.aggs) do
        row[a.name] = self:eval_group(model, owners, a.e)
        cols[i] = a.name
      end
      return { kind = "row", row = row, cols = cols }
    elseif t.kind == "update" then
      return self:update(q, cands)
    end
    if q.vals then
      -- values() over (annotated) records: one row each, in their order
      local rows = {}
      local seen = {}
      for _, c in ipairs(cands) do
        local r, parts = {}, {}
        for i, p in ipairs(q.vals) do
          r[p] = self:path_value(model, c.row, p, c.ctx)
          parts[i] = vkey(r[p])
        end
        local k = table.concat(parts, "\0")
        if not (q.distinct and seen[k]) then
          seen[k] = true
          rows[#rows + 1] = r
        end
      end
      if q.distinct then
        for _, t in ipairs(q.order or {}) do
          local known = false
          for _, c in ipairs(q.vals) do if c == t.path then known = true end end
          assert(known, "oracle: a distinct set ordered by something it does not have")
        end
        assert(covers(q.order, q.vals) or not (q.limit or q.offset),
          "oracle: a window of distinct rows in no total order")
        rows = O.slice(rows, q)
      end
      -- records come in a total order (the key breaks ties); distinct rows
      -- only when the order names every column
      local total = ordered and (not q.distinct or covers(q.order, q.vals))
      return rows_result(rows, q.vals, t, ordered, total, q.order)
    end
    if t.kind == "count" then return { kind = "count", n = #cands }
    elseif t.kind == "exists" then return { kind = "bool", b = #cands > 0 }
    elseif t.kind == "first" then
      return { kind = "first", id = cands[1] and cands[1].row.id or nil }
    elseif t.kind == "pluck" then
      local vals = {}
      for i, c in ipairs(cands) do vals[i] = self:path_value(model, c.row, t.path, c.ctx) end
      return { kind = "values", values = vals, ordered = ordered, strict = true }
    end
    local names = ann_names(q.ann)
    local rows = {}
    for i, c in ipairs(cands) do
      local r = { id = c.row.id }
      for _, n in ipairs(names) do r[n] = c.ctx.ann[n] end
      rows[i] = r
    end
    return { kind = "recs", rows = rows, cols = names, ordered = ordered }
  end
end
