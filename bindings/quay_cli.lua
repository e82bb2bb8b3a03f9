--[[
bindings/quay_cli.lua
The tools of the quay command: `quay inspect`, `quay migrate` and
`quay types`.
See LICENSE

Compiled into the quay binary (bindings/quay_main.c runs it with the
arguments and two file-system helpers).  Everything that decides
anything runs in the engine (include/quay.h "Schema evolution"): the live
schema and the models inferred from it (db:inspect), the steps
(db:schema_diff, db:migrate { dry_run = true }), running and recording a
versioned file (db:apply_migration) and its checksum (quay.core.checksum).
This file only reads and writes files and prints.

  quay inspect URL
      print a model script for the database at URL: a chunk returning a
      function declare(db) that declares one model per table and returns
      them by name (reference.md "quay inspect").
  quay migrate make MODELS NAME --db URL [--dir DIR] [--allow-drop]
      write DIR/NNNN_NAME.lua with the steps from the database to the models
  quay migrate plan MODELS --db URL [--dir DIR]
      print the files apply would run, with their statements
  quay migrate apply MODELS --db URL [--dir DIR]
      run the files not recorded in quay_migrations, each in its own
      transaction, in the order of their numbers
  quay migrate status MODELS --db URL [--dir DIR]
      list the files (applied, pending, changed, missing) and whether the
      database matches the models; fails after the listing when a file
      changed or is missing
  quay types MODELS
      print LuaLS annotations of the models: a class per model for its
      records (fields, relations, methods), its query sets, related sets
      and the model itself (scopes), so an editor completes
      `post.author.name`

MODELS is a model script: a chunk that returns a function declare(db), as
`quay inspect` prints.  DIR defaults to "migrations" next to MODELS.
Errors are Quay error objects (code "migration" for refusals) that name
the file and the fix.  A wrong command line (an unknown, repeated or
misplaced option, a missing or extra argument) raises code "usage" with
the problem on its first line, marked "(misuse)", and the usage after
it; quay_main.c prints it and exits with status 2.
]]
local sys = ...
local quay = require("quay")
local core = require("quay.core")

local cli = {}

local function fail(code, fmt, ...)
  error(setmetatable({ code = code, message = fmt:format(...) },
    { __tostring = function(e) return e.message end }), 0)
end

-- A usage error: the problem on the first line, with the code of a wrong
-- argument (misuse), then the usage.
local function usage(problem, ...)
  fail("usage", "%s", table.concat({
    (problem or "quay: wrong arguments"):format(...) .. " (misuse)",
    "usage: quay inspect URL",
    "       quay types MODELS",
    "       quay migrate make MODELS NAME --db URL [--dir DIR] [--allow-drop]",
    "       quay migrate plan|apply|status MODELS --db URL [--dir DIR]",
  }, "\n"))
end

-- An argument that looks like an option where a URL or a path is taken.
local function check_operand(cmd, what, v)
  if v == nil then usage("quay %s: %s is missing", cmd, what) end
  if v:sub(1, 1) == "-" and v ~= "-" then
    usage("quay %s: unknown option %s (%s expected)", cmd, v, what)
  end
end

--------------------------------------------------------------------------
-- Printing Lua
--------------------------------------------------------------------------
local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function lit(v)
  if type(v) == "string" then return (string.format("%q", v):gsub("\\\n", "\\n")) end
  if math.type(v) == "float" then
    local s = string.format("%.17g", v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  end
  return tostring(v)
end

local function key(name)
  if name:match("^[%a_][%w_]*$") and not keywords[name] then return name end
  return "[" .. lit(name) .. "]"
end

-- "{ a = 1, b = true }" of the listed option names that are set.
local function opts(t, names)
  local out = {}
  for _, n in ipairs(names) do
    local v = t[n]
    if v ~= nil then
      if n == "on_delete" or n == "on_update" then
        out[#out + 1] = n .. " = quay." .. v
      elseif type(v) == "table" then       -- choices
        local items = {}
        for i, x in ipairs(v) do items[i] = lit(x) end
        out[#out + 1] = n .. " = { " .. table.concat(items, ", ") .. " }"
      else
        out[#out + 1] = n .. " = " .. lit(v)
      end
    end
  end
  if #out == 0 then return nil end
  return "{ " .. table.concat(out, ", ") .. " }"
end

local field_opts = { "primary_key", "max", "min", "digits", "places", "null",
                     "unique", "index", "default", "choices", "column" }

local function field_line(f)
  local o = opts(f, field_opts)
  return ("%s = quay.%s%s"):format(key(f.name), f.type,
    o and (" " .. o) or "()")
end

local function relation_line(r)
  local t = {}
  for k, v in pairs(r) do t[k] = v end
  -- Defaults of the kind are left out: RESTRICT on delete, CASCADE on
  -- update, an index on the key column.
  if t.on_delete == "RESTRICT" then t.on_delete = nil end
  if t.on_update == "CASCADE" then t.on_update = nil end
  local o = opts(t, { "column", "to_field", "null", "index", "on_delete",
                      "on_update", "related_name", "default", "through", "table",
                      "source_key", "target_key", "skip_reverse" })
  return ("%s = quay.%s(%s%s)"):format(key(r.name), r.kind, lit(r.target),
    o and (", " .. o) or "")
end

-- url without its secrets, to print in a file that goes into version
-- control: a URL's user:password@ and password= / sslpassword= query
-- parameters, a keyword string's password and sslpassword (bare or
-- quoted, with \' and \\ escapes).
local function public_url(url)
  if url:match("^sqlite:") then return url end       -- a path, no secrets
  local s = url:gsub("//[^@/]*@", "//")
  if s:match("^%a[%w+.-]*:") then
    local base, query = s:match("^([^?]*)%?(.*)$")
    if not base then return s end
    local kept = {}
    for kv in query:gmatch("[^&]+") do
      if not kv:lower():match("^%a*password=") then kept[#kept + 1] = kv end
    end
    return #kept > 0 and (base .. "?" .. table.concat(kept, "&")) or base
  end
  local out, i = {}, 1
  while true do
    local a, b, k = s:find("^%s*([%w_]+)%s*=%s*", i)
    if not a then break end
    local v, j
    if s:sub(b + 1, b + 1) == "'" then
      j = b + 2
      while j <= #s and s:sub(j, j) ~= "'" do
        j = j + (s:sub(j, j) == "\\" and 2 or 1)
      end
      v = s:sub(b + 1, j)
      j = j + 1
    else
      j = (s:find("%s", b + 1) or #s + 1)
      v = s:sub(b + 1, j - 1)
    end
    if not k:lower():match("password$") then out[#out + 1] = k .. "=" .. v end
    i = j
  end
  if s:find("%S", i) then return "(a connection string)" end
  return table.concat(out, " ")
end

-- The model script for an inspected database (reference.md "quay inspect").
local function model_script(live, url, backend)
  local out = {}
  local function w(s) out[#out + 1] = s end
  w(("-- Models of the %s database %s, printed by `quay inspect`."):format(
    backend, public_url(url)))
  w("-- Each table is a model; load this chunk and call it with a db:")
  w("--   local M = dofile(\"models.lua\")(db)")
  w("local quay = require(\"quay\")")
  w("")
  w("return function(db)")
  w("  local M = {}")
  for _, m in ipairs(live.models) do
    if m.note then
      for line in (m.note .. ";"):gmatch("%s*([^;]+);") do w("  -- " .. line) end
    end
    if not m.skipped then
      w(("  M.%s = db:model(%s, {"):format(m.name, lit(m.name)))
      if not m.default_table then w(("    table = %s,"):format(lit(m.table))) end
      local entries = {}
      for _, f in ipairs(m.fields) do
        entries[#entries + 1] = { seq = f.seq, line = field_line(f) }
      end
      for _, r in ipairs(m.relations) do
        entries[#entries + 1] = { seq = r.seq, line = relation_line(r) }
      end
      table.sort(entries, function(a, b) return a.seq < b.seq end)
      for _, e in ipairs(entries) do w("    " .. e.line .. ",") end
      for _, key in ipairs { "indexes", "unique_together" } do
        if #m[key] > 0 then
          local sets = {}
          for _, u in ipairs(m[key]) do
            local names = {}
            for _, n in ipairs(u) do names[#names + 1] = lit(n) end
            sets[#sets + 1] = "{ " .. table.concat(names, ", ") .. " }"
          end
          w("    " .. key .. " = { " .. table.concat(sets, ", ") .. " },")
        end
      end
      w("  })")
    end
  end
  w("  return M")
  w("end")
  return table.concat(out, "\n") .. "\n"
end

--------------------------------------------------------------------------
-- LuaLS annotations of a model script (quay types)
--------------------------------------------------------------------------
local lua_types = {
  id = "integer", integer = "integer", number = "number", string = "string",
  text = "string", boolean = "boolean", datetime = "string", blob = "string",
  date = "string", decimal = "string", uuid = "string",
  json = "table|string|number|boolean",
}

-- The parameter names of a Lua function after the first (self / qs).
local function params(fn)
  local info = debug.getinfo(fn, "u")
  local out = {}
  for i = 2, info.nparams do out[#out + 1] = debug.getlocal(fn, i) end
  if info.isvararg then out[#out + 1] = "..." end
  return out
end

local function ident(name)
  return name:match("^[%a_][%w_]*$") and not keywords[name]
end

-- The methods a query set of model `cls` returns itself from.
local chain = { "filter", "exclude", "where_has", "where_doesnt_have",
  "order_by", "limit", "offset", "select_related", "prefetch_related",
  "with", "with_count", "annotate", "distinct", "strict", "using" }

local function types_text(path, models, specs, describe)
  local out = {}
  local function w(s) out[#out + 1] = s end
  local taken = {}
  for _, m in ipairs(models) do taken[m] = true end
  local function cls(base, suffix)
    local n = base .. suffix
    while suffix ~= "" and taken[n] do n = n .. "_" end
    return n
  end
  local names = {}
  for _, m in ipairs(models) do
    names[m] = { rec = m, qs = cls(m, "QuerySet"), set = cls(m, "Set"),
                 model = cls(m, "Model") }
  end
  -- The class of the table declare(db) returns: "Models" unless a
  -- model has that name.
  local all = "Models"
  while taken[all] do all = all .. "_" end
  w("---@meta")
  w(("-- LuaLS annotations of the models of %s, printed by `quay types`."):format(path))
  w("-- Put this file where the language server reads annotations (its")
  w("-- workspace.library), then type the models the script declares:")
  w("--   local M = dofile(\"models.lua\")(db) ---@type " .. all)
  w("-- Each model's classes are in a do-block of their own: a chunk has")
  w("-- room for 200 locals, an application for more models.")
  w("")
  w("---@class " .. all)
  for _, m in ipairs(models) do
    w(("---@field %s %s"):format(ident(m) and m or ("[" .. lit(m) .. "]"), names[m].model))
  end
  local function field_line(name, typ)
    if ident(name) then return ("---@field %s %s"):format(name, typ) end
    return ("---@field [%s] %s"):format(lit(name), typ)
  end
  local function fn_line(class, name, args, ret)
    if ret then w("---@return " .. ret) end
    if ident(name) then
      w(("function %s:%s(%s) end"):format(class, name, table.concat(args, ", ")))
    else
      w(("%s[%s] = function(self%s) end"):format(class, lit(name),
        #args > 0 and (", " .. table.concat(args, ", ")) or ""))
    end
  end
  local function query_methods(class, m)
    local n = names[m]
    for _, c in ipairs(chain) do fn_line(class, c, { "..." }, n.qs) end
    if describe[m].soft_delete then
      fn_line(class, "with_deleted", {}, n.qs)
      fn_line(class, "only_deleted", {}, n.qs)
    end
    fn_line(class, "all", {}, n.rec .. "[]")
    fn_line(class, "first", {}, n.rec .. "?")
    fn_line(class, "get", { "conds" }, n.rec)
    fn_line(class, "iter", {}, "fun(): " .. n.rec)
    for _, s in ipairs(describe[m].scopes) do
      local fn = specs[m].scopes[s]
      for _, a in ipairs(params(fn)) do
        if a ~= "..." then w("---@param " .. a .. " any") end
      end
      fn_line(class, s, params(fn), n.qs)
    end
  end
  for _, m in ipairs(models) do
    local d, n = describe[m], names[m]
    w("")
    w("do")
    w(("---A record of %s."):format(m))
    w(("---@class %s: quay.Record"):format(n.rec))
    for _, f in ipairs(d.fields) do
      w(field_line(f.name, (lua_types[f.type] or "any") .. (f.null and "?" or "")))
    end
    for _, r in ipairs(d.relations) do
      local t = names[r.target]
      if r.many then
        w(field_line(r.name, t and t.set or "quay.RelatedSet"))
      else
        w(field_line(r.name, (t and t.rec or "quay.Record") .. "?"))
        if r.column and r.column ~= r.name then
          -- the key column, for a belongs_to / one_to_one
          w(field_line(r.column, "integer|string"))
        end
      end
    end
    w(("local %s = {}"):format(n.rec))
    for _, name in ipairs(d.methods) do
      local fn = specs[m].methods[name]
      local args = params(fn)
      for _, a in ipairs(args) do
        if a ~= "..." then w("---@param " .. a .. " any") end
      end
      fn_line(n.rec, name, args, "any")
    end
    w("")
    w(("---@class %s: quay.QuerySet"):format(n.qs))
    w(("local %s = {}"):format(n.qs))
    query_methods(n.qs, m)
    w("")
    w(("---@class %s: quay.RelatedSet"):format(n.set))
    w(("---@field [integer] %s"):format(n.rec))
    w(("local %s = {}"):format(n.set))
    query_methods(n.set, m)
    w("")
    w(("---@class %s: quay.Model"):format(n.model))
    w(("local %s = {}"):format(n.model))
    fn_line(n.model, "query", {}, n.qs)
    fn_line(n.model, "new", { "values" }, n.rec)
    fn_line(n.model, "create", { "values" }, n.rec)
    fn_line(n.model, "find", { "key" }, n.rec .. "?")
    fn_line(n.model, "bulk_create", { "list" }, n.rec .. "[]")
    query_methods(n.model, m)
    w("end")
  end
  return table.concat(out, "\n") .. "\n"
end

-- Declare the models of a model script on an in-memory db: the db the
-- script gets records each spec given to db:model, in order.
local function declare_models(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then
    fail("declaration", "the model script %s does not load: %s", path, tostring(err))
  end
  local ok, declare = pcall(chunk)
  if not ok or type(declare) ~= "function" then
    fail("declaration", "the model script %s %s; it must return a function "
      .. "declare(db) that declares the models (as `quay inspect` prints)", path,
      ok and ("returned a " .. type(declare)) or ("failed: " .. tostring(declare)))
  end
  local db = quay.open("sqlite::memory:")
  local models, specs = {}, {}
  local proxy = {}
  setmetatable(proxy, { __index = function(_, k)
    if k == "model" then
      return function(_, name, spec, ...)
        local M = db:model(name, spec, ...)
        if type(spec) ~= "table" then return M end      -- a look-up
        if not specs[name] then models[#models + 1] = name end
        specs[name] = { methods = spec.methods or {}, scopes = spec.scopes or {} }
        return M
      end
    end
    local v = db[k]
    if type(v) ~= "function" then return v end
    return function(self, ...)
      if self == proxy then self = db end
      return v(self, ...)
    end
  end })
  declare(proxy)
  db:check()
  return db, models, specs
end

function cli.types(path, extra)
  check_operand("types", "MODELS", path)
  if extra ~= nil then usage("quay types: one model script; %s is one too many", extra) end
  local db <close>, models, specs = declare_models(path)
  io.write(types_text(path, models, specs, db:describe()))
end

function cli.inspect(url, extra)
  check_operand("inspect", "URL", url)
  if extra ~= nil then usage("quay inspect: one URL; %s is one too many", extra) end
  local db <close> = quay.open(url, { prepare = false })   -- a pooler's URL too
  io.write(model_script(db:inspect(), url, db:backend()))
end

--------------------------------------------------------------------------
-- Versioned migrations
--------------------------------------------------------------------------
local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

-- The options of a migrate subcommand: --db and --dir take a value,
-- --allow-drop (make only) none; each at most once, anything else is a
-- usage error naming it.
local function parse(what, args, nPos)
  local o = { pos = {} }
  local seen = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a:sub(1, 1) == "-" and a ~= "-" then
      local takes = (a == "--db" or a == "--dir") and 1 or
                    (a == "--allow-drop" and what == "make") and 0 or nil
      if takes == nil then
        usage("quay migrate %s: unknown option %s", what, a)
      end
      if seen[a] then usage("quay migrate %s: %s is given twice", what, a) end
      seen[a] = true
      if takes == 1 then
        local v = args[i + 1]
        if v == nil or (v:sub(1, 1) == "-" and v ~= "-") then
          usage("quay migrate %s: %s needs a value", what, a)
        end
        o[a:sub(3)] = v
      else
        o.allow_drop = true
      end
      i = i + 1 + takes
    else
      o.pos[#o.pos + 1] = a
      i = i + 1
    end
  end
  if #o.pos > nPos then
    usage("quay migrate %s: %s is one argument too many", what, o.pos[nPos + 1])
  end
  if #o.pos < nPos then
    usage("quay migrate %s: %s is missing", what,
      #o.pos == 0 and "MODELS (a model script)" or "NAME")
  end
  if not o.db then usage("quay migrate %s: --db URL is missing", what) end
  return o
end

-- Open the database and declare the models of the model script.  bRead:
-- a command that only reads (plan, status) answers for an SQLite file
-- that does not exist yet from an empty in-memory database, as apply
-- would find it, and leaves no empty file behind (a mistyped path).
local function open_with_models(o, path, bRead)
  local url = o.db
  local file = url:match("^sqlite:(.+)$")
  if bRead and file and file ~= ":memory:" and not file:match("^file:") then
    local f = io.open(file, "rb")
    if f then f:close() else url = "sqlite::memory:" end
  end
  -- A long busy timeout: a second process waits for the first.  No named
  -- prepared statements: the URL may be a pooler's in transaction mode
  -- (PgBouncer), where a named statement or a session SET lock_timeout
  -- stays on a server connection other clients get; a one-shot tool loses
  -- nothing by it (reference.md "Scale-out on PostgreSQL").
  local db = quay.open(url, { busy_timeout = 600000, prepare = false })
  local chunk, err = loadfile(path, "t")
  if not chunk then
    fail("migration", "the model script %s does not load: %s; fix it (it "
      .. "must return a function declare(db), as `quay inspect` prints)",
      path, tostring(err))
  end
  local ok, declare = pcall(chunk)
  if not ok or type(declare) ~= "function" then
    fail("migration", "the model script %s %s; it must return a function "
      .. "declare(db) that declares the models", path,
      ok and ("returned a " .. type(declare)) or
        ("failed: " .. tostring(declare)))
  end
  local ok2, err2 = pcall(function() declare(db); db:check() end)
  if not ok2 then
    fail("migration", "the model script %s does not declare valid models: "
      .. "%s; fix the script", path, tostring(err2))
  end
  return db
end

-- The order of migration files: by number, then name (10000_x comes
-- after 9999_y).
local function by_number(a, b)
  if a.number ~= b.number then return a.number < b.number end
  return a.name < b.name
end

-- The migration files of dir in order: { name =, path =, number = }.
local function list_files(dir)
  local files = {}
  for _, n in ipairs(sys.listdir(dir) or {}) do
    local stem = n:match("^(%d+_[%w_]+)%.lua$")
    if not stem and n:match("^%d.*%.lua$") then
      -- meant as a migration, and apply would never run it
      fail("migration", "%s/%s is not named as a migration file (NNNN_name.lua, "
        .. "name of letters, digits and _): rename it", dir, n)
    end
    if stem then
      files[#files + 1] = { name = stem, path = dir .. "/" .. n,
                            number = tonumber(stem:match("^%d+")) }
    end
  end
  table.sort(files, by_number)
  return files
end

-- Files, the recorded migrations, and the checks apply makes first: a
-- recorded file must exist and be unchanged.
local function state(db, dir, listing)
  local files = list_files(dir)
  local byName = {}
  for _, f in ipairs(files) do
    byName[f.name] = f
    local text, err = read_file(f.path)
    if not text then
      fail("migration", "cannot read %s: %s", f.path, tostring(err))
    end
    f.text = text
    -- Line ends do not count (a checkout may turn \n into \r\n); a
    -- checksum recorded of the bytes as they were still matches.
    f.checksum = core.checksum((text:gsub("\r\n", "\n")))
    f.raw_checksum = core.checksum(text)
  end
  -- A problem raises, or with `listing` (status) marks the file and is
  -- raised after the listing: problems[1] is the first.
  local problems = {}
  local function problem(f, mark, ...)
    if not listing then fail("migration", ...) end
    f.mark = mark
    problems[#problems + 1] = { "migration", ... }
  end
  local applied = db:applied_migrations()
  local recorded = {}
  for _, a in ipairs(applied) do
    recorded[a.name] = a
    local f = byName[a.name]
    if not f then
      f = { name = a.name, number = tonumber(a.name:match("^%d+")) or -1 }
      files[#files + 1] = f
      problem(f, "missing", "migration %s is recorded as applied in "
        .. "quay_migrations but %s/%s.lua is missing: restore the file (from "
        .. "version control); the migrations of a database are never "
        .. "deleted", a.name, dir, a.name)
    elseif f.checksum ~= a.checksum and f.raw_checksum ~= a.checksum then
      problem(f, "changed", "%s changed after it was applied (checksum %s, "
        .. "recorded %s): restore the applied version, and put new changes "
        .. "in a new migration (quay migrate make)", f.path, f.checksum,
        a.checksum)
    end
    f.applied_at = a.applied_at
  end
  table.sort(files, by_number)                   -- the missing ones in place
  local pending = {}
  for _, f in ipairs(files) do
    if not recorded[f.name] then pending[#pending + 1] = f end
  end
  return files, pending, problems
end

-- Load a migration file: { backend =, steps =, data = }.
local function load_migration(db, f)
  local chunk, err = load(f.text, "@" .. f.path, "t")
  local ok, m = false, err
  if chunk then ok, m = pcall(chunk) end
  if not ok or type(m) ~= "table" or type(m.steps) ~= "table" then
    fail("migration", "the migration file %s does not load: %s; it must "
      .. "return { steps = {...} } (fix it or restore it)", f.path,
      ok and "it returned no steps table" or tostring(m))
  end
  for k in pairs(m) do
    if k ~= "backend" and k ~= "steps" and k ~= "data" then
      -- a misspelt data = would never run
      fail("migration", "the migration file %s returns an unknown key %s "
        .. "(backend, steps, data): fix it", f.path, lit(k))
    end
  end
  if m.data ~= nil and type(m.data) ~= "function" then
    fail("migration", "the migration file %s: data is a %s; it must be a "
      .. "function(db)", f.path, type(m.data))
  end
  if m.backend and m.backend ~= db:backend() then
    fail("migration", "%s was made for %s and this database is %s: make "
      .. "migrations against the backend they run on", f.path, m.backend,
      db:backend())
  end
  return m
end

-- A Lua string literal that reads best for SQL: a long bracket.
local function long_string(s)
  local eq = ""
  while s:find("]" .. eq .. "]", 1, true) or s:sub(-#eq - 1) == "]" .. eq do
    eq = eq .. "="
  end
  return "[" .. eq .. "[" .. s .. "]" .. eq .. "]"
end

local function migration_text(name, backend, steps)
  local out = {}
  local function w(s) out[#out + 1] = s end
  w(("-- Migration %s, written by `quay migrate make` (%s)."):format(name, backend))
  w("-- Applied files must not change: put new changes in a new migration.")
  w("return {")
  w(("  backend = %s,"):format(lit(backend)))
  w("  steps = {")
  for _, s in ipairs(steps) do
    local head = { ("op = %s"):format(lit(s.op)) }
    for _, k in ipairs { "model", "table", "column" } do
      if s[k] then head[#head + 1] = ("%s = %s"):format(k, lit(s[k])) end
    end
    if s.rebuild then head[#head + 1] = "rebuild = true" end
    if s.destructive then head[#head + 1] = "destructive = true" end
    w("    { " .. table.concat(head, ", ") .. ",")
    if s.what then w(("      what = %s,"):format(lit(s.what))) end
    if #s.sql == 0 then
      w("      sql = {} },")
    else
      w("      sql = {")
      for _, q in ipairs(s.sql) do
        -- A long bracket reads best, but Lua reads its \r and \r\n as
        -- \n (and a first newline not at all): a statement with a \r or
        -- another control character (a default's text) is escaped.
        local plain = not q:gsub("[\n\t]", ""):find("%c") and q:sub(1, 1) ~= "\n"
        w("        " .. (plain and long_string(q) or lit(q)) .. ",")
      end
      w("      } },")
    end
  end
  w("  },")
  w("  -- A data migration runs after the steps, in the same transaction:")
  w("  -- data = function(db) ... end,")
  w("}")
  return table.concat(out, "\n") .. "\n"
end

local sub = {}

function sub.make(o)
  local path, name = o.pos[1], o.pos[2]
  if not name:match("^[%w_]+$") then
    fail("migration", "migration name %q: use letters, digits and _", name)
  end
  if #name > 100 then
    -- quay_migrations keeps names of up to 255 characters; a file system
    -- names of up to 255 bytes
    fail("migration", "migration name %q: it is %d characters long; use "
      .. "at most 100", name, #name)
  end
  local dir = o.dir or (dirname(path) .. "/migrations")
  local db <close> = open_with_models(o, path)
  local files, pending = state(db, dir)
  if #pending > 0 then
    fail("migration", "%s is not applied yet: apply it first (quay migrate "
      .. "apply), then make the next migration from the database it makes",
      pending[1].path)
  end
  local ok, steps = pcall(db.migrate, db,
    { dry_run = true, allow_drop = o.allow_drop or false })
  if not ok then
    if type(steps) == "table" and steps.code == "migration" and
       not o.allow_drop and steps.message:find("allow_drop", 1, true) then
      fail("migration", "%s (for quay migrate make: pass --allow-drop)",
        steps.message)
    end
    error(steps, 0)
  end
  if #steps == 0 then
    io.write("no changes: the database matches the models\n")
    return
  end
  local last = 0
  for _, f in ipairs(files) do
    last = math.max(last, tonumber(f.name:match("^(%d+)")) or 0)
  end
  local stem = ("%04d_%s"):format(last + 1, name)
  sys.mkdir(dir)
  local file = dir .. "/" .. stem .. ".lua"
  local f, err = io.open(file, "wb")
  if not f then fail("migration", "cannot write %s: %s", file, tostring(err)) end
  local wrote, werr = f:write(migration_text(stem, db:backend(), steps))
  local closed, cerr = f:close()
  if not wrote or not closed then
    os.remove(file)                          -- no half-written migration
    fail("migration", "cannot write %s: %s", file, tostring(werr or cerr))
  end
  io.write(("wrote %s (%d steps)\n"):format(file, #steps))
end

function sub.plan(o)
  local path = o.pos[1]
  local dir = o.dir or (dirname(path) .. "/migrations")
  local db <close> = open_with_models(o, path, true)
  local _, pending = state(db, dir)
  if #pending == 0 then io.write("nothing to apply\n") end
  for _, f in ipairs(pending) do
    local m = load_migration(db, f)
    io.write(("%s:\n"):format(f.name))
    for _, s in ipairs(m.steps) do
      io.write(("  %s %s%s%s\n"):format(s.op, s.table or "?",
        s.column and ("." .. s.column) or "",
        s.destructive and "  (destructive: loses data)" or ""))
      for _, q in ipairs(s.sql or {}) do io.write("    " .. q .. ";\n") end
    end
    if m.data then io.write("  data migration\n") end
  end
end

function sub.apply(o)
  local path = o.pos[1]
  local dir = o.dir or (dirname(path) .. "/migrations")
  local db <close> = open_with_models(o, path)
  local _, pending = state(db, dir)
  local n = 0
  for _, f in ipairs(pending) do
    local m = load_migration(db, f)
    local ok, done = pcall(db.apply_migration, db, { name = f.name,
      checksum = f.checksum, steps = m.steps, data = m.data })
    if not ok then
      -- The engine's error, with the file it comes from: nothing of the
      -- file stays, and the files before it stay applied.
      local code = type(done) == "table" and done.code or "migration"
      local msg = type(done) == "table" and done.message or tostring(done)
      fail(code, "%s failed and was rolled back (nothing of it is applied; "
        .. "the files before it stay applied): %s", f.path, msg)
    end
    if done then
      io.write(("applied %s\n"):format(f.name))
      n = n + 1
    else
      io.write(("%s was applied meanwhile by another process\n"):format(f.name))
    end
  end
  if #pending == 0 then io.write("nothing to apply\n") end
  local diff = db:schema_diff()
  if #diff > 0 then
    io.stderr:write(("quay: the database still differs from %s (%d steps, "
      .. "first: %s): make a migration (quay migrate make)\n"):format(path,
      #diff, diff[1].what or diff[1].op))
  end
end

function sub.status(o)
  local path = o.pos[1]
  local dir = o.dir or (dirname(path) .. "/migrations")
  local db <close> = open_with_models(o, path, true)
  local files, _, problems = state(db, dir, true)
  for _, f in ipairs(files) do
    io.write(("%-8s %s%s\n"):format(
      f.mark or (f.applied_at and "applied" or "pending"),
      f.name, f.applied_at and ("  (" .. (f.mark and "applied " or "") ..
        f.applied_at .. ")") or ""))
  end
  if #files == 0 then io.write("no migration files in " .. dir .. "\n") end
  local diff = db:schema_diff()
  if #diff == 0 then
    io.write("the database matches the models\n")
  else
    io.write(("the database differs from the models: %d steps (first: %s)\n")
      :format(#diff, diff[1].what or diff[1].op))
  end
  if #problems > 0 then fail(table.unpack(problems[1])) end
end

function cli.migrate(what, ...)
  if what == nil then usage("quay migrate: make, plan, apply or status is missing") end
  if not sub[what] then
    usage("quay migrate: unknown command %s (make, plan, apply or status)", what)
  end
  sub[what](parse(what, { ... }, what == "make" and 2 or 1))
end

return cli
