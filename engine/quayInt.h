/*
** engine/quayInt.h
** Internal shared header of the Quay engine.
** See LICENSE
**
** Every engine file includes this header first.  It defines the internal
** types shared across modules: the schema registry (Model, Field, Rel,
** JoinTable), the relation hops the SQL builder walks, query-set nodes and
** condition trees, the string buffer and arena used for per-query memory,
** the key hash, and the dialect and driver vtables.  Nothing here includes
** lua.h; only drv_sqlite.c and drv_pg.c include their client library.
**
** Invariants kept by every module:
**   - An engine function never longjmps and never calls Lua.  It returns a
**     code and writes detail into a caller's quay_err.
**   - Memory goes through quay__malloc/realloc/free (pluggable allocator,
**     fault injection under QUAY_TEST).
**   - Only declared names reach SQL: identifiers come from the schema and
**     are always quoted; values are always bound.
*/
#ifndef QUAY_INT_H
#define QUAY_INT_H

#include "quay.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#  define QUAY_INTERNAL __attribute__((visibility("hidden")))
#  define QUAY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define QUAY_INTERNAL
#  define QUAY_PRINTF(a, b)
#endif

/*
** Defensive branches (SQLite's ALWAYS/NEVER): conditions believed always
** true / never true.  Debug builds assert; release builds keep the test so
** that a wrong belief degrades into an error instead of a crash.
*/
#ifndef NDEBUG
#  define QUAY_ALWAYS(x) (assert(x), 1)
#  define QUAY_NEVER(x)  (assert(!(x)), 0)
#else
#  define QUAY_ALWAYS(x) (x)
#  define QUAY_NEVER(x)  (x)
#endif

#define QUAY_ARRAYSIZE(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct Field Field;
typedef struct Rel Rel;
typedef struct JoinTable JoinTable;
typedef struct Hop Hop;
typedef struct Cond Cond;
typedef struct Str Str;
typedef struct Arena Arena;
typedef struct Smap Smap;
typedef struct Dialect Dialect;
typedef struct DrvConn DrvConn;
typedef struct DrvStmt DrvStmt;
typedef struct quay_driver quay_driver;
typedef struct StmtCache StmtCache;
typedef struct Build Build;


/*
** {==================================================================
** Memory, errors, strings
** ===================================================================
*/
QUAY_INTERNAL void *quay__malloc(size_t n);
QUAY_INTERNAL void *quay__realloc(void *p, size_t n);
QUAY_INTERNAL void quay__free(void *p);
QUAY_INTERNAL void *quay__calloc(size_t n);
QUAY_INTERNAL char *quay__strdup(const char *z);
QUAY_INTERNAL char *quay__strndup(const char *z, size_t n);



/* Set pErr and return code (the sqlite3OomFault idiom). */
QUAY_INTERNAL int quay__err_at(quay_err *pErr, int code, int line,
                               const char *zFmt, ...) QUAY_PRINTF(4, 5);
#define quay__err(e, c, ...) quay__err_at((e), (c), __LINE__, __VA_ARGS__)
#define quay__oom(e) quay__err_at((e), QUAY_ENOMEM, __LINE__, "out of memory")

/*
** A growable string.  Sticky OOM: once an append fails, oom is set and
** later appends do nothing, so builders check once at the end.
*/
struct Str {
  char *z;                  /* text, NUL-terminated when n > 0 */
  size_t n;                 /* bytes used */
  size_t nAlloc;            /* bytes allocated */
  int oom;                  /* an allocation failed */
};
QUAY_INTERNAL void quay__str_init(Str *p);
QUAY_INTERNAL void quay__str_free(Str *p);
QUAY_INTERNAL void quay__str_reset(Str *p);
QUAY_INTERNAL void quay__str_append(Str *p, const char *z, size_t n);
QUAY_INTERNAL void quay__str_cat(Str *p, const char *z);
QUAY_INTERNAL void quay__str_printf(Str *p, const char *zFmt, ...)
    QUAY_PRINTF(2, 3);
QUAY_INTERNAL void quay__str_char(Str *p, char c);
QUAY_INTERNAL void quay__str_int(Str *p, int64_t v);
/* Append "identifier" with quotes doubled. */
QUAY_INTERNAL void quay__str_ident(Str *p, const char *zId);
/* Append "alias"."column". */
QUAY_INTERNAL void quay__str_col(Str *p, const char *zAlias,
                                 const char *zCol);
/* Take the text (caller frees); the Str is reset. NULL on OOM. */
QUAY_INTERNAL char *quay__str_take(Str *p);
/* }================================================================== */


/*
** {==================================================================
** Arena: per-query memory freed in one call
** ===================================================================
*/
typedef struct ArenaBlock ArenaBlock;
struct Arena {
  ArenaBlock *pBlock;       /* newest block first */
  int oom;                  /* sticky */
};
QUAY_INTERNAL void quay__arena_init(Arena *p);
QUAY_INTERNAL void *quay__arena_alloc(Arena *p, size_t n);
QUAY_INTERNAL char *quay__arena_strdup(Arena *p, const char *z, size_t n);
QUAY_INTERNAL void quay__arena_free(Arena *p);
/* }================================================================== */


/*
** {==================================================================
** String map: name -> int (open addressing, keys borrowed)
** ===================================================================
*/
struct Smap {
  const char **azKey;       /* NULL = empty slot */
  int *aVal;
  int nSlot;                /* power of two */
  int nUsed;
};
QUAY_INTERNAL void quay__smap_init(Smap *p);
QUAY_INTERNAL void quay__smap_free(Smap *p);
/* QUAY_OK, or QUAY_ENOMEM.  Replaces an existing key's value. */
QUAY_INTERNAL int quay__smap_put(Smap *p, const char *zKey, int v);
/* The value, or -1. */
QUAY_INTERNAL int quay__smap_get(const Smap *p, const char *zKey);
/* Remove a key (no allocation). */
QUAY_INTERNAL void quay__smap_del(Smap *p, const char *zKey);
QUAY_INTERNAL uint64_t quay__hash_bytes(const void *p, size_t n);
/* }================================================================== */


/*
** {==================================================================
** Values
** ===================================================================
*/
/* Deep copy (text, blob, list) into malloc'd memory.  RECORD is copied by
** reference (valid only during the call that passed it). */
QUAY_INTERNAL int quay__value_copy(quay_value *pDst, const quay_value *pSrc);
QUAY_INTERNAL void quay__value_clear(quay_value *p);
/* Equality of scalar values (INT==INT, REAL, TEXT bytes, BOOL). */
QUAY_INTERNAL int quay__value_eq(const quay_value *a, const quay_value *b);
QUAY_INTERNAL const char *quay__type_name(int eType);
QUAY_INTERNAL const char *quay__value_kind(const quay_value *p);
/* Count UTF-8 code points; -1 when the bytes are not valid UTF-8. */
QUAY_INTERNAL long quay__utf8_len(const char *z, size_t n);
/* Current UTC time "YYYY-MM-DD HH:MM:SS" into z (20 bytes). */
QUAY_INTERNAL void quay__now_utc(char *z);
/*
** Key sets: distinct keys with dense indexes in insertion order (owner
** keys of a batched step, de-duplication, cascade key lists).
** quay_keyset_add gives the dense index of the key (existing or new), or
** -1 for a value that cannot be a key (NULL).
*/
typedef struct quay_keyset quay_keyset;
QUAY_INTERNAL int quay_keyset_new(quay_keyset **ppKs, quay_err *pErr);
QUAY_INTERNAL void quay_keyset_free(quay_keyset *pKs);
QUAY_INTERNAL int quay_keyset_add(quay_keyset *pKs, const quay_value *pKey,
                                  int *piIndex, quay_err *pErr);
QUAY_INTERNAL int quay_keyset_find(const quay_keyset *pKs,
                                   const quay_value *pKey);
QUAY_INTERNAL int quay_keyset_count(const quay_keyset *pKs);
/* The keys of a key set as values (arena memory, borrowed text). */
QUAY_INTERNAL int quay__keyset_values(const quay_keyset *pKs, Arena *pArena,
                                      quay_value **paOut);
/* Non-0 when z is "YYYY-MM-DD HH:MM:SS". */
QUAY_INTERNAL int quay__is_datetime(const char *z, size_t n);
/* }================================================================== */


/*
** {==================================================================
** Schema registry and relation graph
** ===================================================================
*/
struct Field {
  char *zName;              /* field name (or FK column name) */
  char *zCol;               /* database column */
  char *zDescr;             /* description or NULL */
  int eType;                /* QUAY_T_*; FK columns: the target key's type */
  unsigned mFlags;          /* QUAY_F_* */
  int nMax;                 /* string max code points, 0 = unbounded */
  quay_value dflt;          /* owned static default (QUAY_F_DEFAULT) */
  double rSeq;              /* declaration sequence */
  int iField;               /* index in the model's apField */
  Rel *pRel;                /* FK columns: the relation that owns it */
};

struct JoinTable {
  char *zTable;             /* join table name */
  char *zSrcCol, *zDstCol;  /* columns pointing at source / target */
  quay_model *pSrc, *pDst;
  Field *pSrcKey, *pDstKey; /* referenced keys of source / target */
  quay_model *pThrough;     /* custom pivot model, else NULL */
  Rel *pThroughSrc, *pThroughDst; /* its belongs_to relations */
  int isSelf;               /* source model == target model */
};

struct Rel {
  char *zName;              /* accessor name */
  char *zDescr;
  char *zRelated;           /* related_name (declared or default) */
  char *zTargetName;        /* as declared ("self" resolved at resolve) */
  int eKind;                /* QUAY_R_* */
  unsigned mFlags;          /* QUAY_F_* */
  double rSeq;
  int iRel;                 /* index in pFrom->apRel */
  quay_model *pFrom;        /* owner of the accessor */
  quay_model *pTo;          /* target (resolved) */
  int eOnDelete, eOnUpdate;
  quay_value dflt;          /* belongs_to default key */
  /* declaration options, kept until resolve */
  char *zColumn, *zToField, *zTable, *zSourceKey, *zTargetKey, *zThrough;
  char *zForeignKey, *zLocalKey;
  char **azPath; int nPath;
  /* resolved */
  int resolved;             /* 0 = not yet, 1 = done, 2 = in progress */
  int toMany;               /* accessor yields a set */
  Field *pFk;               /* FK column: in pFrom (belongs_to/one_to_one),
                            ** in pTo (has_many/has_one); REVERSE: in pTo */
  Field *pKey;              /* referenced key: in pTo (belongs_to), in
                            ** pFrom (has_many/has_one, REVERSE) */
  JoinTable *pJoin;         /* many_to_many both ways */
  Rel **apPath; int nPathRel; /* THROUGH: hop relations */
  Rel *pFwd;                /* REVERSE: the declared relation */
  Rel *pRev;                /* declared: its reverse (hidden if skipped) */
  int hidden;               /* reverse not registered (skip_reverse) */
};

struct quay_model {
  quay_db *pDb;
  char *zName;              /* "PostTag" */
  char *zSnake;             /* "post_tag" */
  char *zTable;             /* "post_tags" */
  char *zDescr;
  Field **apField; int nField, nFieldAlloc;
  Rel **apRel; int nRel, nRelAlloc;
  int nDeclRel;             /* declared relations come first */
  int iPk;                  /* primary key field, -1 until finished */
  char ***aaUnique; int *anUnique; int nUnique;
  int iModel;               /* index in the db's model list */
  int resolved;
  Smap mFieldName;          /* field name -> index */
  Smap mColName;            /* column name -> index */
  Smap mRelName;            /* registered relation name -> index */
};

/* Schema functions (schema.c, relgraph.c). */
QUAY_INTERNAL void quay__model_free(quay_model *pModel);
QUAY_INTERNAL Field *quay__model_field(const quay_model *p, const char *z);
QUAY_INTERNAL Rel *quay__model_rel(const quay_model *p, const char *z);
QUAY_INTERNAL int quay__resolve(quay_db *pDb, quay_err *pErr);
QUAY_INTERNAL int quay__model_add_rel_internal(quay_model *pModel,
                                               Rel *pRel, quay_err *pErr);
QUAY_INTERNAL const char *quay__rule_name(int eRule);
/* Non-0 when a column of m has this name, ignoring case. */
QUAY_INTERNAL int quay__column_taken(const quay_model *m, const char *zCol);
QUAY_INTERNAL int quay__casecmp(const char *a, const char *b);
/* Non-0 for table names SQLite reserves ("sqlite_" prefix, any case). */
QUAY_INTERNAL int quay__reserved_table(const char *z);
/* Add the implicit id unless a field is the primary key (idempotent). */
QUAY_INTERNAL int quay__model_finish(quay_model *m, quay_err *pErr);
/* Append a has_many/has_one key column the target does not declare. */
QUAY_INTERNAL int quay__model_add_fkcol(quay_model *m, const char *zCol,
                                        int eType, Rel *pRel,
                                        Field **ppField, quay_err *pErr);
QUAY_INTERNAL const char *quay__kind_name(int eKind);

/*
** A primitive hop from one model to the next, as the SQL builder sees it:
**   from.zFromCol = to.zToCol                      (zVia == NULL)
**   from.zFromCol = via.zViaFrom AND via.zViaTo = to.zToCol
** Relations expand into one hop, THROUGH relations into several.
*/
struct Hop {
  quay_model *pFrom, *pTo;
  Field *pFromKey;          /* field of pFrom */
  Field *pToKey;            /* field of pTo */
  const char *zVia;         /* join table, or NULL */
  const char *zViaFrom, *zViaTo;
  int toMany;
  int fromNullable;         /* pFromKey may be NULL */
  int toNullable;           /* pToKey (or via column) may be NULL */
  Rel *pRel;                /* the relation this hop belongs to */
};
/* Deepest nesting of condition groups (quay.any inside a conditions table
** inside quay.any ...) after same-operator groups are flattened; deeper
** trees raise QUAY_EMISUSE before any SQL. */
#define QUAY_MAX_COND_DEPTH 32
/* Longest relation path (primitive hops).  Each to-many hop nests one
** subquery; SQLite's parser overflows past about 9 levels (found by
** fuzz/fuzz_cond), so paths are capped at 8 with a clear bad_lookup. */
#define QUAY_MAX_HOPS 8
/* Expand pRel into hops appended at aHop[*pn]; QUAY_EBAD_LOOKUP when the
** path is too long. */
QUAY_INTERNAL int quay__rel_hops(Rel *pRel, Hop *aHop, int *pn,
                                 quay_err *pErr);
/*
** The field of h->pTo that identifies the row a hop reaches, as a relation
** compare sees it (`author = u`, `posts = 1`): the referenced key for hops
** that arrive at a key (belongs_to, one_to_one forward, many_to_many), the
** target's primary key for hops that arrive at a foreign key column
** (reverse relations, has_many, has_one).
*/
QUAY_INTERNAL Field *quay__hop_ident(const Hop *h);
/* Non-0 when h's target column is unique, so a LEFT JOIN along a to-one
** hop cannot repeat the source row. */
QUAY_INTERNAL int quay__hop_unique(const Hop *h);
/* }================================================================== */


/*
** {==================================================================
** Conditions and query sets
** ===================================================================
*/
enum {                      /* lookups */
  LK_EQ = 1, LK_NE, LK_LT, LK_LTE, LK_GT, LK_GTE, LK_IN, LK_NOT_IN,
  LK_CONTAINS, LK_ICONTAINS, LK_STARTSWITH, LK_ENDSWITH, LK_ISNULL,
  LK_BETWEEN
};
QUAY_INTERNAL int quay__lookup_code(const char *z);
QUAY_INTERNAL const char *quay__lookup_name(int eLk);

enum {                      /* condition node kinds */
  CN_AND = 1, CN_OR, CN_NOT, CN_LEAF, CN_HAS
};

/*
** A condition tree.  Before quay__cond_bind, leaves hold the raw path and
** value; binding resolves the path against a model into hops + field +
** lookup and converts record values into keys.
*/
struct Cond {
  int eOp;                  /* CN_* */
  Cond **apChild; int nChild, nAlloc;
  /* CN_LEAF */
  char *zPath;              /* as given */
  quay_value val;           /* owned; LIST for in/not_in/between */
  int bound;                /* path resolved */
  Hop aHop[QUAY_MAX_HOPS]; int nHop;
  int isPivot;              /* path starts with "pivot__" */
  Field *pField;            /* final field (in the last model) */
  int eLookup;
  int bRelTest;             /* LK_ISNULL on the related row itself: an
                            ** existence test of the last hop (val BOOL) */
  /* CN_HAS: where_has on hops with conditions (apChild) or a sub qs */
  quay_qs *pSub;            /* owned reference, may be NULL */
};
QUAY_INTERNAL void quay__cond_free(Cond *p);

enum {                      /* query-set operations */
  QS_ROOT = 1, QS_FILTER, QS_ORDER, QS_LIMIT, QS_OFFSET, QS_LOAD,
  QS_COUNT_ANN, QS_STRICT, QS_SCOPE,
  QS_LOCK                   /* select_for_update: n holds QUAY_LOCK_* */
};
/* The QUAY_LOCK_* flags of the chain's last select_for_update, or -1
** when the chain locks nothing. */
QUAY_INTERNAL int quay__qs_lock(const quay_qs *pQs);

/* A resolved path of hops ending at a field (order_by, pluck). */
typedef struct FieldPath {
  Hop aHop[QUAY_MAX_HOPS]; int nHop;
  int isPivot;
  Field *pField;            /* NULL for an annotation (order by count) */
  char *zAnn;               /* annotation name */
  int desc;
} FieldPath;

/* Resolve an order_by/pluck term over to-one relations. */
QUAY_INTERNAL int quay__field_path(quay_qs *pQs, const char *zTerm,
                                   FieldPath *p, const char *zWhat,
                                   quay_err *pErr);

struct quay_qs {
  int nRef;
  quay_model *pModel;
  quay_qs *pParent;         /* one reference held */
  int eOp;                  /* QS_* */
  /* QS_FILTER */
  Cond *pCond; int bExclude;
  /* QS_ORDER */
  FieldPath *aOrder; int nOrder;
  /* QS_LIMIT / QS_OFFSET */
  int64_t n;
  /* QS_LOAD */
  char *zPath; int eHow; quay_qs *pSub; char *zTo;
  Rel *apLoad[QUAY_MAX_HOPS]; int nLoad;  /* path resolved into relations */
  /* QS_COUNT_ANN */
  char *zAnn;               /* "posts_count" (zPath holds "posts") */
  Hop aHop[QUAY_MAX_HOPS]; int nHop;
  /* QS_SCOPE: the related set of one owner */
  Rel *pScopeRel;           /* relation of the owner's model */
  quay_value scopeKey;      /* owned */
};
/* }================================================================== */


/*
** {==================================================================
** Dialects
** ===================================================================
** Everything that differs between SQL dialects lives here, never in
** `if (pg)` branches of the builder.
*/
struct Dialect {
  const char *zName;        /* "sqlite" / "postgresql" */
  /* Placeholder for parameter number iParam (1-based). */
  void (*xParam)(Str *p, int iParam);
  /* Column type for DDL. */
  const char *(*xColType)(const Field *pField);
  const char *zAutoPk;      /* auto-increment integer primary key */
  /* "<zExpr> IN <array parameter iParam>" for key lists of any size. */
  void (*xInArray)(Str *p, const char *zExpr, int iParam, int eKeyType);
  /* Serialize a key list into one parameter value (text). */
  int (*xArrayValue)(Str *pOut, const quay_value *aKey, int nKey);
  /*
  ** Text lookups (contains, icontains, startswith, endswith) of the
  ** non-empty text z: write the condition on zExpr, binding the value (or
  ** a pattern made from it) with quay__build_param as often as needed.
  */
  void (*xTextMatch)(struct Build *b, const char *zExpr, int eLookup,
                     const char *z, size_t n);
  const char *zNullSafeNe;  /* null-safe "not equal" operator */
  const char *zAscNulls;    /* appended to ASC terms */
  const char *zDescNulls;   /* appended to DESC terms */
  const char *zOffsetNoLimit; /* LIMIT clause used with OFFSET alone */
  const char *zBeginWrite;  /* BEGIN for engine-run write transactions */
  const char *zBegin;       /* BEGIN for db:transaction */
  const char *zFkDeferrable;/* suffix for engine-managed FK constraints */
  int maxInline;            /* longest IN list written inline */
  const char *zTrue, *zFalse;
  /* DDL: "CREATE TABLE IF NOT EXISTS", index creation form. */
  const char *zCreateIndex; /* "CREATE INDEX IF NOT EXISTS" */
  const char *zDropTable;   /* "DROP TABLE IF EXISTS" */
  const char *zDropSuffix;  /* " CASCADE" on PostgreSQL */
  /* Statements to defer / undefer FK checks inside a transaction. */
  const char *zDeferFks, *zUndeferFks;
  int bSavepointRelease;    /* RELEASE SAVEPOINT supported */
  /* Rewrite raw SQL's '?' placeholders (NULL: used as written). */
  void (*xRawSql)(Str *pOut, const char *zSql, int *pnParam);
  /* DDL adding a foreign key to an existing table, for references to a
  ** table created later (cycles); zRefs is " REFERENCES ..." as written
  ** inline.  Idempotent.  NULL: forward references may stay inline. */
  void (*xAddFk)(Str *pOut, const char *zTable, const char *zCol,
                 const char *zRefs);
  /*
  ** Rows per INSERT in batched writes (bulk_create).  SQLite: 1, one
  ** prepared statement stepped per row is its fastest form; PostgreSQL:
  ** many, multi-row VALUES ... RETURNING saves a round trip per row (rows
  ** come back in VALUES order).  Capped by 65,535 parameters.
  */
  int maxInsertRows;
  /*
  ** Writes done right (issue 13).
  **
  ** xBeginSql writes the BEGIN of an outermost db:transaction with
  ** options (QUAY_ISO_*, read-only); QUAY_EMISUSE, with pErr naming the
  ** levels there are, when the backend has no such level.  zReadOnlyOn /
  ** zReadOnlyOff (NULL: none) run after BEGIN and when the transaction
  ** ends, for backends whose BEGIN cannot say READ ONLY.
  */
  int (*xBeginSql)(Str *pOut, int eIsolation, int bReadOnly, quay_err *pErr);
  const char *zReadOnlyOn, *zReadOnlyOff;
  /*
  ** Row locks of select_for_update, appended to the main SELECT: zForUpdate
  ** then the locked alias (NULL: the backend locks nothing per row; the
  ** transaction holds the write lock), then zNoWait or zSkipLocked.
  */
  const char *zForUpdate, *zNoWait, *zSkipLocked;
  /*
  ** A row source of the list aVal (nRow rows of nCol values, row after
  ** row), whose columns are c0 .. c<nCol-1> typed by aeType (QUAY_T_*):
  ** written as a parenthesized subquery for "FROM <source> AS v".  SQLite:
  ** multi-row VALUES with one parameter per value (at most maxRowValues
  ** values per statement); PostgreSQL: one array parameter per column
  ** through unnest (any number of rows).
  */
  void (*xRowSource)(Build *b, const int *aeType, int nCol,
                     const quay_value *aVal, int nRow);
  int maxRowValues;         /* values per xRowSource statement, 0 = any */
  /* A one-column row source (c0) of n keys in one parameter, any n. */
  void (*xKeySource)(Build *b, const quay_value *aKey, int nKey, int eType);
  /*
  ** Batched inserts and upserts take their rows from xRowSource (INSERT
  ** ... SELECT * FROM <rows>), at most maxSourceRows per statement; 0:
  ** multi-row VALUES of maxInsertRows.  PostgreSQL: arrays through
  ** unnest send a few parameters instead of one per value, and parse
  ** faster (scripts/bench W5, W9).
  */
  int maxSourceRows;
  /* Non-0 when one INSERT ... ON CONFLICT DO UPDATE may not touch a row
  ** twice (PostgreSQL: "cannot affect row a second time"), so rows with
  ** one conflict key go in separate statements.  SQLite applies them in
  ** order within a statement. */
  int bUpsertRowOnce;
};
QUAY_INTERNAL extern const Dialect quay__dialect_sqlite;
QUAY_INTERNAL extern const Dialect quay__dialect_pg;
/* }================================================================== */


/*
** {==================================================================
** Drivers
** ===================================================================
** Backends sit behind this vtable (sqlite3_vfs style).  A driver never
** keeps pointers to its library's error text: it copies into quay_err.
*/
#define QUAY_EXEC_STREAM  0x1       /* xExec flags */
#define QUAY_EXEC_STATIC  0x2

#define QUAY_HINT_TYPE    0xff
#define QUAY_HINT_NOTNULL 0x100

/*
** What a driver can tell of its last failure beyond code and message, in
** the database's names (xErrInfo): the kind of constraint a statement
** violated, or the table it did not find.  exec.c restates it in the
** schema's names ("User.email must be unique").  Empty strings are
** unknown (SQLite does not say which foreign key failed).
*/
enum {                      /* DrvErrInfo.eKind */
  ERRK_NONE = 0,
  ERRK_UNIQUE,              /* zTable (zCols) holds a duplicate */
  ERRK_NOTNULL,             /* zTable.zCols got NULL */
  ERRK_FK,                  /* zTable (zCols) refers to a missing row */
  ERRK_FK_REFERENCED,       /* a row of zRefTable is still referenced
                            ** from zTable (zCols) */
  ERRK_FK_EITHER,           /* an UPDATE of zTable broke a foreign key,
                            ** its own or one that refers to it */
  ERRK_NO_TABLE             /* zTable does not exist */
};
typedef struct DrvErrInfo {
  int eKind;                /* ERRK_* */
  char zTable[128];         /* table of the constraint / missing table */
  char zCols[128];          /* its columns, ", " separated */
  char zRefTable[128];      /* ERRK_FK_REFERENCED: the referenced table */
} DrvErrInfo;

struct quay_driver {
  int iVersion;             /* 2: xErrInfo */
  const char *zName;        /* "sqlite" / "postgresql" */
  const Dialect *pDialect;
  /* Open from the URL remainder; or wrap a borrowed handle. */
  int (*xOpen)(const char *zUrl, const quay_open_opts *pOpts, void *pHandle,
               DrvConn **ppConn, quay_err *pErr);
  void (*xClose)(DrvConn *pConn);
  /* Prepare: bPersist marks statements kept in the cache. */
  int (*xPrepare)(DrvConn *pConn, const char *zSql, int nParam, int bPersist,
                  DrvStmt **ppStmt, quay_err *pErr);
  void (*xFinalize)(DrvStmt *pStmt);
  /*
  ** Bind all parameters and start; then xStep until QUAY_DONE.  mExec:
  ** QUAY_EXEC_STREAM reads the rows a chunk at a time (qs:iter());
  ** QUAY_EXEC_STATIC says the parameters stay valid until the statement is
  ** reset (run to completion by quay__db_run), so a driver need not copy
  ** them (SQLite binds SQLITE_STATIC: scripts/bench W5).
  */
  int (*xExec)(DrvStmt *pStmt, const quay_value *aParam, int nParam,
               int mExec, quay_err *pErr);
  int (*xStep)(DrvStmt *pStmt, quay_err *pErr);
  int (*xColumnCount)(DrvStmt *pStmt);
  const char *(*xColumnName)(DrvStmt *pStmt, int i);
  /*
  ** Raw value of column i; eHint is the declared field type or 0, possibly
  ** or-ed with QUAY_HINT_NOTNULL (the column is declared NOT NULL, so a
  ** driver may skip its NULL check).  Drivers mask with QUAY_HINT_TYPE.
  */
  void (*xColumn)(DrvStmt *pStmt, int i, int eHint, quay_value *pOut);
  /* Finish the current execution (reset) so the statement can be reused. */
  void (*xReset)(DrvStmt *pStmt);
  int64_t (*xChanges)(DrvStmt *pStmt);
  /* Run one statement with no parameters and no rows (BEGIN, DDL). */
  int (*xSimple)(DrvConn *pConn, const char *zSql, quay_err *pErr);
  /* Non-0 while the server connection is usable. */
  int (*xAlive)(DrvConn *pConn);
  /*
  ** Optional (NULL = unsupported): the integer key the last INSERT on the
  ** connection generated.  Lets the writer skip RETURNING, which costs
  ** SQLite a temporary b-tree per row (3x on bulk inserts, scripts/bench
  ** W5).
  */
  int64_t (*xLastInsertId)(DrvConn *pConn);
  /*
  ** Optional (NULL = run them one by one with xExec): execute n
  ** statements, each with its own values, as one batch (PostgreSQL sends
  ** them in one pipeline: one round trip).  Each statement is then read
  ** with xStep as after xExec (never streamed).  On failure every
  ** statement is reset and pErr holds the first error.
  */
  int (*xExecBatch)(DrvStmt *const *aStmt, const quay_value *const *aaParam,
                    const int *anParam, int n, quay_err *pErr);
  /* Optional: check the driver's part of a URL without connecting. */
  int (*xCheckUrl)(const char *zUrl, quay_err *pErr);
  /*
  ** Version 2.  Describe the last failure the connection reported (eKind
  ** ERRK_NONE when there is nothing to say) and forget it, so that a
  ** later failure that did not come from the driver is never described
  ** by an earlier one.  exec.c calls it once per failure (after_fail).
  */
  void (*xErrInfo)(DrvConn *pConn, DrvErrInfo *pOut);
};
QUAY_INTERNAL extern const quay_driver quay__drv_sqlite;
QUAY_INTERNAL extern const quay_driver quay__drv_pg;
/* }================================================================== */


/*
** {==================================================================
** Databases and statements
** ===================================================================
*/
typedef struct CachedStmt CachedStmt;
struct CachedStmt {
  char *zSql;               /* key */
  uint64_t h;               /* hash of zSql */
  DrvStmt *pStmt;
  int inUse;                /* a cursor is stepping it */
  CachedStmt *pNext;        /* LRU list, most recent first */
};

struct quay_db {
  const quay_driver *pDrv;
  const Dialect *pDialect;
  DrvConn *pConn;           /* NULL when disconnected */
  char *zUrl;               /* for reopen */
  void *pBorrowed;          /* host-owned handle (never closed) */
  quay_open_opts opts;
  /* schema */
  quay_model **apModel; int nModel, nModelAlloc;
  Smap mModel;              /* name -> index */
  JoinTable **apJoin; int nJoin, nJoinAlloc;
  int resolved;             /* every model and relation resolved */
  int iSchema;              /* schema version (quay_db_schema_version) */
  /* statements */
  CachedStmt *pCache; int nCache;
  int64_t nQuery;
  quay_trace_fn xTrace; void *pTraceArg;
  int txnDepth;
  int bTxnReadOnly;         /* the outermost level is read-only */
  int iGen;                 /* connection generation (bumped on close) */
  /* last protected/restricted blockers */
  char **azBlockModel; quay_value *aBlockKey; int nBlock;
#ifdef QUAY_TEST
  long nFailStmt;           /* fail the n-th statement from now (0 = off) */
#endif
};

/*
** A cursor over one executing statement.  Owns the statement when it is
** not from the cache; otherwise marks it in use.
*/
struct quay_cursor {
  quay_db *pDb;
  DrvStmt *pStmt;
  CachedStmt *pCached;      /* NULL when pStmt is owned */
  int nCol;
  int *aHint;               /* per column: declared field type or 0 */
  int done;
  int iGen;                 /* pDb->iGen when opened */
};

QUAY_INTERNAL int quay__db_check_open(quay_db *pDb, quay_err *pErr);
/*
** Run SQL with parameters.  With ppCur, the caller gets a cursor over the
** rows; else the statement is run to completion and *pnChanged set.
** aHint (may be NULL, borrowed; copied) types the result columns.
*/
QUAY_INTERNAL int quay__db_run(quay_db *pDb, const char *zSql,
                               const quay_value *aParam, int nParam,
                               const int *aHint, int nHint, int bStream,
                               quay_cursor **ppCur, int64_t *pnChanged,
                               quay_err *pErr);
QUAY_INTERNAL int quay__db_simple(quay_db *pDb, const char *zSql,
                                  quay_err *pErr);
/* n statements in one batch (one round trip where the driver can); a
** cursor over each in apCur, all or none. */
QUAY_INTERNAL int quay__db_run_batch(quay_db *pDb, int n,
                                     const char *const *azSql,
                                     const quay_value *const *aaParam,
                                     const int *anParam,
                                     const int *const *aaHint,
                                     const int *anHint, quay_cursor **apCur,
                                     quay_err *pErr);
/* Engine-run write transactions (savepoints when nested). */
QUAY_INTERNAL int quay__txn_begin(quay_db *pDb, int bWrite, quay_err *pErr);
QUAY_INTERNAL int quay__txn_commit(quay_db *pDb, quay_err *pErr);
QUAY_INTERNAL void quay__txn_rollback(quay_db *pDb);
QUAY_INTERNAL int quay__txn_end(quay_db *pDb, int rc, quay_err *pErr);
/* Single-value query helper. */
QUAY_INTERNAL int quay__db_scalar(quay_db *pDb, const char *zSql,
                                  const quay_value *aParam, int nParam,
                                  int64_t *pOut, quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** SQL builder (sqlbuild.c)
** ===================================================================
*/
/* Parameters collected while building one statement. */
typedef struct Params {
  quay_value *a; int n, nAlloc;
  Arena *pArena;            /* copies of transient values live here */
  int oom;
} Params;
QUAY_INTERNAL void quay__params_init(Params *p, Arena *pArena);
QUAY_INTERNAL void quay__params_free(Params *p);
/* Append a value; returns its 1-based number. */
QUAY_INTERNAL int quay__params_add(Params *p, const quay_value *pVal);

/*
** Builder context: one statement's text, parameters and alias counter.
*/
struct Build {
  quay_db *pDb;
  const Dialect *pDia;
  Str sql;
  Params params;
  Arena *pArena;
  int nAlias;
  quay_err *pErr;
  int rc;                   /* first error (sticky) */
};
QUAY_INTERNAL void quay__build_init(Build *b, quay_db *pDb, Arena *pArena,
                                    quay_err *pErr);
QUAY_INTERNAL void quay__build_free(Build *b);
QUAY_INTERNAL void quay__build_param(Build *b, const quay_value *pVal);
QUAY_INTERNAL void quay__build_array(Build *b, const char *zExpr,
                                    const quay_value *a, int n, int eType);
QUAY_INTERNAL int quay__build_rc(Build *b);

/* Flattened view of a query-set chain (root first). */
typedef struct QsView {
  quay_model *pModel;
  quay_qs **apFilter; int nFilter;   /* QS_FILTER nodes */
  quay_qs *pOrder;                    /* last QS_ORDER or NULL */
  int64_t limit, offset;              /* -1 = none */
  quay_qs **apLoad; int nLoad;        /* QS_LOAD nodes */
  quay_qs **apCount; int nCount;      /* QS_COUNT_ANN nodes */
  quay_qs *pScope;                    /* QS_SCOPE node or NULL */
  int strict;
} QsView;
QUAY_INTERNAL int quay__qs_view(quay_qs *pQs, QsView *pView, Arena *pArena,
                                quay_err *pErr);

/*
** A scope: one row source of a statement (the main query or a subquery)
** with the LEFT JOINs its conditions need along to-one relations.  Arena
** memory of the Build.
*/
typedef struct Scope Scope;
/* The scope of a view's filters over the row zAlias of the view's model
** (or of m when v is NULL); zPivot is a custom pivot row or NULL.  The
** joins are registered, not yet written.  NULL when the builder failed. */
QUAY_INTERNAL Scope *quay__scope_new(Build *b, QsView *v, quay_model *m,
                                     const char *zAlias, const char *zPivot);
/* Write the scope's " LEFT JOIN ..." clauses (they carry no parameters). */
QUAY_INTERNAL void quay__scope_joins(Build *b, Scope *s);
/* Write the scope's WHERE terms (owner scope, filters), each prefixed by
** " WHERE " or " AND " as *pnTerm says; *pnTerm counts terms. */
QUAY_INTERNAL void quay__scope_where(Build *b, Scope *s, int *pnTerm);
/* The scope's custom pivot alias (rec.pivot columns), or NULL. */
QUAY_INTERNAL const char *quay__scope_pivot(const Scope *s);
/* Non-0 when a scope joins a custom pivot table (rec.pivot). */
QUAY_INTERNAL int quay__scope_has_pivot(quay_qs *pScope);
/* " FROM table AS zAlias", a scope's pivot join, and the joins its
** filters need; returns the scope for quay__scope_where. */
QUAY_INTERNAL Scope *quay__build_from(Build *b, QsView *v,
                                      const char *zAlias);
/* SELECT of field pKey of a set with no limit or offset (no order). */
QUAY_INTERNAL void quay__build_keys(Build *b, quay_qs *pQs, Field *pKey);
/*
** SELECT of field pKey of the rows of any query set, appended to b after
** its parameters: for a limited or offset set, the rows :all() reads
** (loader.c); else quay__build_keys.
*/
QUAY_INTERNAL void quay__plan_keys(Build *b, quay_qs *pQs, Field *pKey);
QUAY_INTERNAL int quay__build_ddl(quay_db *pDb, int bDrop, Str *pOut,
                                  int *pnStmt, char ***pazStmt,
                                  quay_err *pErr);
QUAY_INTERNAL char *quay__alias(Build *b);
/* }================================================================== */


/*
** {==================================================================
** Plans (loader.c plans and builds them, load.c runs them)
** ===================================================================
** A plan is a list of steps.  Step 0 is the main query; every other step
** loads one relation for the records of one node of an earlier step (its
** owners).  A step's nodes are its model (node 0) and the to-one levels
** JOINed to it (select_related), in a tree by iParent.
**
** Records land in slots: one per selected node of each step and one per
** pivot (rec.pivot) extra, numbered in step order.  Slot 0 is the main
** result.  This is the one index space a binding sees (quay_plan_slot,
** quay_sink).
*/
typedef struct PlanNode {
  quay_model *pModel;
  int iFirstCol;            /* first column of the model's fields */
  int iParent;              /* -1 for node 0 */
  Rel *pRel;                /* relation of the parent node's model */
  int iKeyCol;              /* column of the primary key */
  char *zAlias;
  int selected;             /* columns in the SELECT list */
  int iSlot;                /* record slot (selected nodes), else -1 */
} PlanNode;

enum {                      /* kinds of extra columns of a step */
  EXTRA_COUNT = 1,          /* with_count: one integer column */
  EXTRA_PIVOT               /* rec.pivot: the through model's columns */
};

typedef struct PlanExtra {
  char *zName;
  int iCol, nCol;
  quay_model *pModel;       /* EXTRA_PIVOT: the through model */
  int eKind;                /* EXTRA_* */
  int iSlot;                /* EXTRA_PIVOT: record slot */
  Hop aHop[QUAY_MAX_HOPS]; int nHop;   /* EXTRA_COUNT */
} PlanExtra;

typedef struct PlanStep {
  int iParent, iParentNode; /* owners: step and node (-1 for the main) */
  quay_model *pOwner;
  Rel *pRel;
  char *zAttach;
  int isCustom, toMany;
  Field *pOwnerKey;         /* owner field whose values key the step */
  int iGroupCol;            /* column holding the owner's key */
  quay_qs *pSub;            /* reference, may be NULL */
  QsView view;
  int hasView;
  PlanNode *aNode; int nNode, nNodeAlloc;
  PlanExtra *aExtra; int nExtra, nExtraAlloc;
  int *aHint; int nCol;
  char *zSql;
  quay_value *aParam; int nParam;
  int iKeyParam;            /* batched steps: the key array parameter */
  int eKeyType;
  int iOwnerSlot;           /* batched steps: the owners' slot */
  int bDedupe;              /* batched steps: a child row may repeat
                            ** (many_to_many, through) and no pivot */
} PlanStep;

typedef struct PlanSlot {
  quay_model *pModel;
  int iStep, iNode;         /* node slot; iNode -1 for a pivot slot */
  int isPivot;
  int bDedupe;              /* records are de-duplicated by key */
} PlanSlot;

struct quay_plan {
  quay_db *pDb;
  quay_qs *pQs;             /* reference, NULL for lazy plans */
  Arena arena;
  PlanStep *aStep; int nStep, nStepAlloc;
  PlanSlot *aSlot; int nSlot;
  int strict;
  int bLazy;                /* step 0 has no query: owners come from the
                            ** binding (quay_load_owners) */
  int nParamBase;           /* parameters before step 0's (a subquery:
                            ** quay__plan_keys) */
};

/* The key array parameter of a batched step from owner keys (arena). */
QUAY_INTERNAL int quay__plan_key_param(quay_plan *p, int iStep,
                                       const quay_value *aKey, int nKey,
                                       Arena *pArena, quay_value **paParam,
                                       quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Writers and cascades
** ===================================================================
*/
QUAY_INTERNAL int quay__cascade_delete(quay_db *pDb, quay_model *pModel,
                                       const quay_value *aKey, int nKey,
                                       int bDryRun, quay_counts **ppCounts,
                                       quay_err *pErr);
QUAY_INTERNAL int quay__on_update(quay_db *pDb, quay_model *pModel,
                                  Field *pKey, const quay_value *pOld,
                                  const quay_value *pNew, quay_err *pErr);
QUAY_INTERNAL int quay__validate(quay_model *pModel, Field *pField,
                                 const quay_value *pVal, quay_err *pErr);
QUAY_INTERNAL int quay__value_fits(quay_model *pModel, Field *pField,
                                   const quay_value *pVal, int bStore,
                                   quay_err *pErr);
QUAY_INTERNAL void quay__db_set_blockers(quay_db *pDb, char **az,
                                         quay_value *aKey, int n);
/* }================================================================== */

#endif /* QUAY_INT_H */
