---@meta quay
--[[
types/quay.lua: LuaLS (lua-language-server) annotations for Quay.

Point the language server at this directory so editors complete and check
the API of docs/reference.md:

  .luarc.json:  { "workspace.library": ["/path/to/quay/types"] }

Installed copies live in <prefix>/share/quay/types.  This file only
describes; it is never loaded at run time (`---@meta`).
]]

---@alias quay.ErrorCode
---| "declaration"      # a model or relation declaration is invalid
---| "unknown_field"    # a name is neither a field, a column nor a relation
---| "unknown_relation" # a relation named in a loading call does not exist
---| "bad_lookup"       # a lookup suffix that does not exist or does not fit
---| "validation"       # a value of the wrong type, too long, or a missing value
---| "not_found"        # :get() matched no row
---| "multiple"         # :get() matched more than one row
---| "protected"        # delete refused by PROTECT
---| "restricted"       # delete refused by RESTRICT
---| "integrity"        # the database refused the write (UNIQUE, foreign key)
---| "connection"       # cannot connect, or the db is closed
---| "busy"             # SQLite lock wait timed out
---| "sql"              # any other database error
---| "nomem"            # out of memory (addition)
---| "misuse"           # an API used the wrong way (addition)
---| "lazy_load"        # strict mode forbids a lazy load (addition)
---| "callback"         # a host callback failed (addition)
---| "migration"        # schema evolution refused or failed

---@alias quay.Rule integer  one of quay.CASCADE .. quay.NO_ACTION

---@alias quay.Value nil|boolean|integer|number|string|quay.Null|quay.Record

---Conditions: `{ title = "x", views__gt = 10, author = u }`; keys are field
---paths with an optional lookup suffix (eq, ne, lt, lte, gt, gte, in,
---not_in, contains, icontains, startswith, endswith, isnull, between); the
---array part may hold `quay.any {...}` groups.
---@alias quay.Conditions table<string|integer, any>

---The SQL NULL sentinel (`quay.null`), for filters and values.
---@class quay.Null

---A field descriptor made by `quay.string {...}` and friends.
---@class quay.Field

---A relation descriptor made by `quay.belongs_to(...)` and friends.
---@class quay.Relation

---An OR group made by `quay.any { {...}, {...} }`.
---@class quay.Any

---A filtered prefetch made by `quay.prefetch(path, qs)`.
---@class quay.Prefetch

---@class quay.Error
---@field code quay.ErrorCode
---@field message string names the model, field or relation, and the fix
---@field blockers? { model: string, key: any }[] protected / restricted only
---@field sqlstate? string PostgreSQL only

---@class quay.OpenOptions
---@field busy_timeout? integer SQLite lock wait in ms (default 5000)
---@field strict? boolean lazy loads raise `lazy_load` (addition)
---@field prepare? boolean false: no named prepared statements, for PgBouncer in transaction mode (PostgreSQL; default true)
---@field replicas? string[] read replica URLs: reads outside a transaction go to them in turn (PostgreSQL)
---@field sticky? number seconds reads stay on the primary after a write on the handle (default 1)

---@class quay.FieldOptions
---@field null? boolean NULL allowed (default false)
---@field default? any|fun(): any value or function
---@field unique? boolean
---@field index? boolean
---@field column? string database column name
---@field primary_key? boolean
---@field description? string
---@field renamed_from? string the old field or column name (migrations)
---@field choices? any[] the values the field may hold (checked before SQL, and a CHECK constraint)
---@field validate? fun(value: any, rec: quay.Record): boolean?, string? true, or false and a message (`validation`)

---@class quay.NumberOptions: quay.FieldOptions
---@field min? number smallest value allowed (checked before SQL, and a CHECK constraint)
---@field max? number largest value allowed

---@class quay.StringOptions: quay.FieldOptions
---@field max? integer maximum length in characters (UTF-8 code points)

---@class quay.DatetimeOptions: quay.FieldOptions
---@field auto_now_add? boolean set to the current UTC time on insert
---@field auto_now? boolean set to the current UTC time on every save

---@class quay.DecimalOptions: quay.FieldOptions
---@field digits integer digits in all, 1 to 18
---@field places integer digits after the point, 0 to `digits`

---@class quay.BelongsToOptions
---@field column? string default `<name>_id`
---@field to_field? string default the target's primary key
---@field null? boolean
---@field default? any a key value or a record (needed by SET_DEFAULT)
---@field on_delete? quay.Rule default quay.RESTRICT
---@field on_update? quay.Rule default quay.CASCADE
---@field related_name? string reverse accessor name on the target
---@field skip_reverse? boolean register no reverse accessor
---@field index? boolean default true
---@field unique? boolean
---@field description? string
---@field renamed_from? string the old relation or column name (migrations)

---@class quay.ManyToManyOptions
---@field table? string join table (default `<this_table>_<target_table>`)
---@field source_key? string
---@field target_key? string
---@field through? string|quay.Model a declared model holding two belongs_to
---@field related_name? string
---@field skip_reverse? boolean
---@field description? string

---@class quay.HasOptions
---@field foreign_key? string the column the target holds
---@field local_key? string default this model's primary key
---@field related_name? string
---@field description? string

---@class quay.Hooks
---@field before_save? fun(rec: quay.Record, creating: boolean) in the write's transaction, before validation
---@field after_save? fun(rec: quay.Record, created: boolean)
---@field before_delete? fun(rec: quay.Record) also for every row a cascade deletes
---@field after_delete? fun(rec: quay.Record)

---@class quay.ModelSpec
---@field table? string default snake_case name + "s"
---@field description? string
---@field unique_together? string[][]
---@field renamed_from? string the old model or table name (migrations)
---@field indexes? string[][] composite indexes: lists of field or relation names
---@field methods? table<string, fun(rec: quay.Record, ...): any> methods of the records
---@field scopes? table<string, fun(qs: quay.QuerySet, ...): quay.QuerySet> chainable methods of the model, its query sets and related sets
---@field validate? fun(rec: quay.Record): boolean?, string? true, or false and a message (`validation`, err.field nil)
---@field hooks? quay.Hooks
---@field soft_delete? boolean adds `deleted_at`; delete() marks rows instead of deleting them
---@field [string] quay.Field|quay.Relation

---@class quay.DeleteOptions
---@field dry_run? boolean count and check, change nothing
---@field hard? boolean a soft_delete model's rows are deleted for real, with cascades

---@class quay.SaveOptions
---@field fields? string[] write exactly these fields (a stored record)

---@class quay.UpsertOptions
---@field conflict string[] the primary key, a unique field or a unique_together set
---@field update? string[] fields an existing row takes (default: the fields given)

---@class quay.LockOptions
---@field nowait? boolean fail at once (`busy`) when a row is locked
---@field skip_locked? boolean leave locked rows out

---@alias quay.Isolation "read_committed"|"repeatable_read"|"serializable"

---@class quay.TransactionOptions
---@field isolation? quay.Isolation the level of the outermost transaction
---@field readonly? boolean refuse writes

---Deleted rows per model name (join tables by table name).
---@alias quay.DeleteCounts table<string, integer>

---@class quay.DescribeField
---@field name string
---@field column string
---@field type "id"|"integer"|"number"|"string"|"text"|"boolean"|"datetime"|"blob"|"date"|"decimal"|"json"|"uuid"
---@field null boolean
---@field unique boolean
---@field primary_key boolean
---@field index boolean
---@field description? string
---@field max? integer
---@field digits? integer decimal fields
---@field places? integer decimal fields
---@field default? any a static default (function defaults are not reported)
---@field auto_now? boolean
---@field auto_now_add? boolean
---@field choices? any[]
---@field min? number

---@class quay.DescribeRelation
---@field name string
---@field kind "belongs_to"|"one_to_one"|"many_to_many"|"has_many"|"has_one"|"through"|"reverse"
---@field target string model name
---@field related_name? string
---@field on_delete? string "CASCADE", "SET_NULL", ...
---@field on_update? string
---@field through? string through model or join table name
---@field description? string

---@class quay.DescribeModel
---@field name string
---@field table string
---@field description? string
---@field fields quay.DescribeField[]
---@field relations quay.DescribeRelation[]
---@field indexes string[][] composite indexes, as declared
---@field unique_together string[][] as declared
---@field methods string[] sorted
---@field scopes string[] sorted
---@field soft_delete boolean

---@class quay.Stats
---@field queries integer SQL statements sent so far
---@field primary integer of those, sent to the primary
---@field replica integer of those, sent to read replicas

---The parameters `db:on_query` passes: an array that may hold `nil` (a
---NULL parameter) and `n`, the number of parameters.
---@class quay.QueryParams
---@field n integer
---@field [integer] any


---A database connection and its models.
---@class quay.Db
local Db = {}

---Close the connection (also on `__close` and `__gc`); the models stay
---declared.  Idempotent.
function Db:close() end

---Reconnect after `close` (addition).
---@return quay.Db
function Db:reopen() end

---@return boolean
function Db:is_open() end

---@return "sqlite"|"postgresql"
function Db:backend() end

---@return quay.Stats
function Db:stats() end

---Call `fn(sql, params)` before every statement; `nil` removes it.
---`params.n` is the number of parameters (a NULL one is `nil` at its
---index). An error `fn` raises fails the statement and is raised again,
---unchanged, by the call that sent it.
---@param fn? fun(sql: string, params: quay.QueryParams)
function Db:on_query(fn) end

---Declare a model, or with one argument look up a declared one.
---@param name string
---@param spec? quay.ModelSpec
---@return quay.Model
function Db:model(name, spec) end

---Resolve every string reference now (raises `declaration`).
---@return quay.Db
function Db:check() end

---Create every table, join table and index that does not exist
---(idempotent); raises `migration` when an existing table differs from
---its model.
---@return quay.Db
function Db:create_tables() end

---@return quay.Db
function Db:drop_tables() end

---The schema as plain tables keyed by model name.
---@return table<string, quay.DescribeModel>
function Db:describe() end

---A step of a migration (reference.md "Schema evolution").
---@class quay.Step
---@field op "create_table"|"drop_table"|"rename_table"|"add_column"|"drop_column"|"rename_column"|"alter_column"|"create_index"|"drop_index"|"add_constraint"|"drop_constraint"
---@field model? string the model whose table changes
---@field table string
---@field column? string column, index or constraint
---@field sql string[] its statements (none when another step's rebuild makes it)
---@field what? string the change in the schema's names (addition)
---@field destructive? boolean drops data or narrows a type (addition)
---@field rebuild? boolean SQLite rebuilds the table (addition)

---@class quay.MigrateOptions
---@field allow_drop? boolean allow dropping tables and columns and narrowing types
---@field dry_run? boolean check and return the steps, change nothing

---The live schema: `{ tables = {...} }` in name order (and `models`, the
---models `quay inspect` prints, an addition).
---@return { tables: table[], models: table[] }
function Db:inspect() end

---The steps from the live schema to the declared models.
---@return quay.Step[]
function Db:schema_diff() end

---Run the steps in one transaction; returns them.  Raises `migration`
---for destructive steps without `allow_drop`.
---@param opts? quay.MigrateOptions
---@return quay.Step[]
function Db:migrate(opts) end

---Run one versioned migration and record it in quay_migrations
---(addition, used by `quay migrate apply`); false when it was recorded
---already.
---@param m { name: string, checksum: string, steps: quay.Step[], data?: fun(db: quay.Db) }
---@return boolean
function Db:apply_migration(m) end

---The recorded migrations, in the order they were applied (addition).
---@return { name: string, checksum: string, applied_at: string }[]
function Db:applied_migrations() end

---Run `fn(db)` in a transaction (a savepoint when nested); an error rolls
---back and is raised again.  Options apply to the outermost level.
---@generic R
---@param fn fun(db: quay.Db): R
---@param opts? quay.TransactionOptions
---@return R
function Db:transaction(fn, opts) end

---Raw SQL with `?` placeholders; returns rows changed.
---@param sql string
---@param params? any[]
---@return integer
function Db:execute(sql, params) end

---Raw query with `?` placeholders; an array of plain row tables.
---@param sql string
---@param params? any[]
---@return table<string, any>[]
function Db:rows(sql, params) end


---An immutable query.  Chaining returns a new set; nothing runs until a
---terminal call.
---@class quay.QuerySet
local QuerySet = {}

---@param conds quay.Conditions|quay.Any
---@return quay.QuerySet
function QuerySet:filter(conds) end

---@param conds quay.Conditions|quay.Any
---@return quay.QuerySet
function QuerySet:exclude(conds) end

---Rows with at least one related row (matching `conds` or `fn(qs)`).
---@param rel string
---@param conds? quay.Conditions|fun(qs: quay.QuerySet): quay.QuerySet
---@return quay.QuerySet
function QuerySet:where_has(rel, conds) end

---@param rel string
---@param conds? quay.Conditions|fun(qs: quay.QuerySet): quay.QuerySet
---@return quay.QuerySet
function QuerySet:where_doesnt_have(rel, conds) end

---`"-views"` sorts descending; paths may cross to-one relations.
---@param ... string
---@return quay.QuerySet
function QuerySet:order_by(...) end

---@param n integer
---@return quay.QuerySet
function QuerySet:limit(n) end

---@param n integer
---@return quay.QuerySet
function QuerySet:offset(n) end

---Load to-one paths in the same query (JOIN).
---@param ... string
---@return quay.QuerySet
function QuerySet:select_related(...) end

---Load paths with one batched query per level.
---@param ... string|quay.Prefetch
---@return quay.QuerySet
function QuerySet:prefetch_related(...) end

---Load paths; the engine picks JOIN or batched loading per path.
---@param ... string
---@return quay.QuerySet
function QuerySet:with(...) end

---Adds `rec.<path>_count` to every record.
---@param ... string
---@return quay.QuerySet
function QuerySet:with_count(...) end

---Named values per record (or per group after `values`): `annotate { n = quay.count("posts") }`.
---@param annotations table<string, quay.Expr>
---@return quay.QuerySet
function QuerySet:annotate(annotations) end

---Aggregates over the whole set, as one plain table.
---@param aggregates table<string, quay.Expr>
---@return table<string, any>
function QuerySet:aggregate(aggregates) end

---Plain rows of the given paths (to-one only); a table argument also names computed columns.
---@param ... string|table
---@return quay.QuerySet
function QuerySet:values(...) end

---No two rows alike (of values).
---@return quay.QuerySet
function QuerySet:distinct() end

---Records of this set raise `lazy_load` on a lazy load (addition).
---@return quay.QuerySet
function QuerySet:strict() end

---Pin this set to the primary: its reads never go to a replica.
---@param server "primary"
---@return quay.QuerySet
function QuerySet:using(server) end

---@return quay.Record[]
function QuerySet:all() end

---@return quay.Record?
function QuerySet:first() end

---Exactly one row, else `not_found` / `multiple`.
---@param conds? quay.Conditions
---@return quay.Record
function QuerySet:get(conds) end

---@return integer
function QuerySet:count() end

---@return boolean
function QuerySet:exists() end

---Stream the rows in constant memory: `for rec in qs:iter() do`.
---@return fun(): quay.Record?
function QuerySet:iter() end

---@param field string
---@return any[]
function QuerySet:pluck(field) end

---@param values table<string, any>
---@return integer rows changed
function QuerySet:update(values) end

---Delete with cascades, in one transaction.
---@param opts? quay.DeleteOptions
---@return quay.DeleteCounts
function QuerySet:delete(opts) end

---Lock the rows read (PostgreSQL: FOR UPDATE); only inside db:transaction.
---@param opts? quay.LockOptions
---@return quay.QuerySet
function QuerySet:select_for_update(opts) end

---The SQL text and its parameters.
---@return string sql
---@return any[] params
function QuerySet:sql() end

---The loading plan: one entry per query (addition).
---@return { path: string, how: string, sql: string }[]
function QuerySet:explain() end

---A soft_delete model's rows, soft-deleted ones included.
---@return quay.QuerySet
function QuerySet:with_deleted() end

---Only a soft_delete model's soft-deleted rows.
---@return quay.QuerySet
function QuerySet:only_deleted() end


---A declared model.  Every query-set method also works on the model, as
---if called on `Model:query()`.
---@class quay.Model: quay.QuerySet
local Model = {}

---All rows.
---@return quay.QuerySet
function Model:query() end

---A new unsaved record.
---@param values? table<string, any>
---@return quay.Record
function Model:new(values) end

---Insert a record and return it.
---@param values? table<string, any>
---@return quay.Record
function Model:create(values) end

---The record with this primary key, or nil.
---@param key any
---@return quay.Record?
function Model:find(key) end

---Insert many records in one transaction.
---@param list table<string, any>[]
---@return quay.Record[]
function Model:bulk_create(list) end

---Records of this model from raw SQL (`?` placeholders); its columns name fields and must include the key.
---@param sql string
---@param params? any[]
---@return quay.Record[]
function Model:raw(sql, params) end
---Insert or update on a unique key, in batched statements; the stored rows.
---@param rows table<string, any>[]
---@param opts quay.UpsertOptions
---@return quay.Record[]
function Model:upsert(rows, opts) end

---Write `fields` of every record in a few set-based statements; rows changed.
---@param records quay.Record[]
---@param fields string[]
---@return integer
function Model:bulk_update(records, fields) end

---The row matching `conds`, or a new one from `conds` and `defaults`.
---@param conds quay.Conditions
---@param defaults? table<string, any>
---@return quay.Record record
---@return boolean created
function Model:get_or_create(conds, defaults) end

---The row matching `conds` updated with `defaults`, or a new one.
---@param conds quay.Conditions
---@param defaults? table<string, any>
---@return quay.Record record
---@return boolean created
function Model:update_or_create(conds, defaults) end

---@return string
function Model:name() end


---A row of a model.  Fields, foreign-key columns and relations are read
---and written as `rec.<name>`; to-one relations give a record or nil,
---to-many ones a quay.RelatedSet.
---@class quay.Record
---@field pivot? quay.Record the through record, when loaded through a custom through model
---@field [string] any
local Record = {}

---Insert, or write the changed fields (nothing when none changed).
---@param opts? quay.SaveOptions
---@return quay.Record
function Record:save(opts) end

---The names of the fields save() would write.
---@return string[]
function Record:changed() end

---Delete with cascades; counts per model.
---@param opts? quay.DeleteOptions
---@return quay.DeleteCounts
function Record:delete(opts) end

---Reload the field values from the database.
---@return quay.Record
function Record:refresh() end

---@return table<string, any>
function Record:to_table() end

---Clear a soft-deleted record's deleted_at: true, or false when it was not soft-deleted.
---@return boolean
function Record:restore() end


---The to-many side of a relation on one record: a query set scoped to the
---owner, plus `#set`, `set[i]` and `ipairs(set)` over its rows.
---@class quay.RelatedSet: quay.QuerySet
---@field [integer] quay.Record
---@operator len: integer
local RelatedSet = {}

---Reverse foreign key: create a child pointing at the owner.
---Many-to-many: create the target and add it.
---@param values? table<string, any>
---@return quay.Record
function RelatedSet:create(values) end

---Add records, or lists of records (many-to-many: the last argument may
---be a table of through values).  Adding an existing pair is a no-op.
---@param ... quay.Record|quay.Record[]|table<string, any>
function RelatedSet:add(...) end

---Remove records or lists of records (a reverse foreign key must be
---nullable).
---@param ... quay.Record|quay.Record[]
function RelatedSet:remove(...) end

---Many-to-many: remove every pair of the owner.
function RelatedSet:clear() end

---Make the set exactly `list` (many-to-many: with through values).
---@param list quay.Record[]
---@param through? table<string, any>
function RelatedSet:set(list, through) end

---Many-to-many: is `rec` in the set?
---@param rec quay.Record
---@return boolean
function RelatedSet:contains(rec) end


---@class quay
---@field null quay.Null the SQL NULL sentinel
---@field version string
---@field CASCADE quay.Rule
---@field SET_NULL quay.Rule
---@field SET_DEFAULT quay.Rule
---@field RESTRICT quay.Rule
---@field PROTECT quay.Rule
---@field NO_ACTION quay.Rule
local quay = {}

---Open `"sqlite::memory:"`, `"sqlite:path.db"` or a PostgreSQL URL.
---@param url string
---@param opts? quay.OpenOptions
---@return quay.Db
function quay.open(url, opts) end

---Integer auto-increment primary key.
---@param opts? quay.FieldOptions
---@return quay.Field
function quay.id(opts) end

---@param opts? quay.NumberOptions
---@return quay.Field
function quay.integer(opts) end

---@param opts? quay.NumberOptions
---@return quay.Field
function quay.number(opts) end

---@param opts? quay.StringOptions
---@return quay.Field
function quay.string(opts) end

---@param opts? quay.FieldOptions
---@return quay.Field
function quay.text(opts) end

---@param opts? quay.FieldOptions
---@return quay.Field
function quay.boolean(opts) end

---UTC text "YYYY-MM-DD HH:MM:SS".
---@param opts? quay.DatetimeOptions
---@return quay.Field
function quay.datetime(opts) end

---@param opts? quay.FieldOptions
---@return quay.Field
function quay.blob(opts) end

---A calendar date, text "YYYY-MM-DD".
---@param opts? quay.FieldOptions
---@return quay.Field
function quay.date(opts) end

---An exact decimal: reads as a string with exactly `places` decimals.
---@param opts quay.DecimalOptions
---@return quay.Field
function quay.decimal(opts) end

---A JSON value: tables, strings, numbers, booleans (jsonb on PostgreSQL).
---@param opts? quay.FieldOptions
---@return quay.Field
function quay.json(opts) end

---A 36-character lower-case UUID, generated (version 7) when not given.
---@param opts? quay.FieldOptions
---@return quay.Field
function quay.uuid(opts) end

---@param target string|quay.Model model name, "self", or a model
---@param opts? quay.BelongsToOptions
---@return quay.Relation
function quay.belongs_to(target, opts) end

---A unique belongs_to.
---@param target string|quay.Model
---@param opts? quay.BelongsToOptions
---@return quay.Relation
function quay.one_to_one(target, opts) end

---@param target string|quay.Model
---@param opts? quay.ManyToManyOptions
---@return quay.Relation
function quay.many_to_many(target, opts) end

---The parent side of a foreign key the target holds.
---@param target string|quay.Model
---@param opts? quay.HasOptions
---@return quay.Relation
function quay.has_many(target, opts) end

---@param target string|quay.Model
---@param opts? quay.HasOptions
---@return quay.Relation
function quay.has_one(target, opts) end

---A read-only path of declared relations: `quay.through("enrolments", "student")`.
---@param ... string
---@return quay.Relation
function quay.through(...) end

---OR of condition tables.
---@param groups quay.Conditions[]
---@return quay.Any
function quay.any(groups) end

---An expression: a column (`quay.F`), an aggregate, a truncated date, or arithmetic of them.
---@class quay.Expr
---@operator add(quay.Expr|number): quay.Expr
---@operator sub(quay.Expr|number): quay.Expr
---@operator mul(quay.Expr|number): quay.Expr
---@operator div(quay.Expr|number): quay.Expr
local Expr = {}
---@return quay.Expr
function Expr:desc() end
---@return quay.Expr
function Expr:asc() end

---@class quay.AggregateOptions
---@field filter? quay.Conditions
---@field distinct? boolean
---@field default? any

---A column across to-one relations (or an annotation name).
---@param path string
---@return quay.Expr
function quay.F(path) end

---@param path? string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.count(path, opts) end

---@param path string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.sum(path, opts) end

---@param path string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.avg(path, opts) end

---@param path string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.min(path, opts) end

---@param path string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.max(path, opts) end

---@param path string
---@param opts? quay.AggregateOptions
---@return quay.Expr
function quay.exists(path, opts) end

---A datetime or date truncated to "year", "month" or "day".
---@param unit "year"|"month"|"day"
---@param path string
---@return quay.Expr
function quay.trunc(unit, path) end

---Prefetch a filtered, ordered set; with `to`, into `rec.<to>`.
---@param path string
---@param qs quay.QuerySet
---@param opts? { to: string }
---@return quay.Prefetch
function quay.prefetch(path, qs, opts) end

return quay
