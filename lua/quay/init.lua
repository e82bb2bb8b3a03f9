--[[
lua/quay/init.lua
The Lua layer of Quay: declaration sugar over the C module quay.core.

Everything here builds descriptors, tables the C binding reads when
db:model declares a model.  Each descriptor carries a creation sequence
number, because Lua table constructors lose key order and Quay keeps
declaration order (DDL column order, describe()).  No SQL and no state
lives here beyond that counter.
]]
local core = require("quay.core")

local quay = {}

local seq = 0
local function nextseq()
  seq = seq + 1
  return seq
end

local function check_opts(ctor, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(setmetatable({ code = "declaration",
      message = ctor .. ": options must be a table, got " .. type(opts) },
      { __tostring = function(e) return e.message end }), 3)
  end
  return opts or {}
end

-- An argument past the last one a constructor takes would be ignored.
local function check_extra(ctor, n, max)
  if n > max then
    error(setmetatable({ code = "misuse",
      message = ("%s takes at most %d argument%s; argument %d would be ignored")
        :format(ctor, max, max == 1 and "" or "s", max + 1) },
      { __tostring = function(e) return e.message end }), 3)
  end
end

local function field(typ)
  return function(opts, ...)
    check_extra("quay." .. typ, select("#", ...) + 1, 1)
    return core.descriptor {
      kind = "field", type = typ, seq = nextseq(),
      options = check_opts("quay." .. typ, opts),
    }
  end
end

quay.id = field("id")
quay.integer = field("integer")
quay.number = field("number")
quay.string = field("string")
quay.text = field("text")
quay.boolean = field("boolean")
quay.datetime = field("datetime")
quay.blob = field("blob")
quay.date = field("date")          -- "YYYY-MM-DD"
quay.decimal = field("decimal")    -- quay.decimal { digits = 10, places = 2 }
quay.json = field("json")          -- tables, strings, numbers, booleans
quay.uuid = field("uuid")          -- generated (version 7) when not given

local function relation(kind)
  return function(target, opts, ...)
    check_extra("quay." .. kind, select("#", ...) + 2, 2)
    return core.descriptor {
      kind = "relation", rel = kind, target = target, seq = nextseq(),
      options = check_opts("quay." .. kind, opts),
    }
  end
end

quay.belongs_to = relation("belongs_to")
quay.one_to_one = relation("one_to_one")
quay.many_to_many = relation("many_to_many")
quay.has_many = relation("has_many")
quay.has_one = relation("has_one")

--- quay.through("enrolments", "student"): a read-only path of relations.
function quay.through(...)
  return core.descriptor {
    kind = "relation", rel = "through", path = { ... }, seq = nextseq(),
  }
end

quay.open = core.open
quay.null = core.null
quay.any = core.any
quay.prefetch = core.prefetch
-- Expressions (aggregates, annotations, values): built in the C module.
quay.F = core.F
quay.count = core.count
quay.sum = core.sum
quay.avg = core.avg
quay.min = core.min
quay.max = core.max
quay.exists = core.exists
quay.trunc = core.trunc
quay.version = core.version
quay.CASCADE = core.CASCADE
quay.SET_NULL = core.SET_NULL
quay.SET_DEFAULT = core.SET_DEFAULT
quay.RESTRICT = core.RESTRICT
quay.PROTECT = core.PROTECT
quay.NO_ACTION = core.NO_ACTION

return quay
