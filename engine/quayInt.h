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
typedef struct Operand Operand;


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
/* The same for an error about field zF of model zM (err.model/err.field). */
QUAY_INTERNAL int quay__err_field_at(quay_err *pErr, int code, int line,
                                     const char *zModel, const char *zField,
                                     const char *zFmt, ...) QUAY_PRINTF(6, 7);
#define quay__err_field(e, c, zM, zF, ...) \
  quay__err_field_at((e), (c), __LINE__, (zM), (zF), __VA_ARGS__)

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
QUAY_INTERNAL int quay__values_check(quay_err *pErr, const char *zFn,
                                     const quay_value *a, size_t n);
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
/* Non-0 when z is "YYYY-MM-DD HH:MM:SS" naming a time that exists. */
QUAY_INTERNAL int quay__is_datetime(const char *z, size_t n);
/* Non-0 when y-mo-d is a calendar date of the years 1 to 9999. */
QUAY_INTERNAL int quay__is_date(int y, int mo, int d);
/*
** Normalize datetime text z (n bytes) into zOut[20]: "YYYY-MM-DD HH:MM:SS"
** in UTC, from that form or ISO 8601 (T separator, fractional seconds
** truncated, Z or +hh:mm / -hh:mm / +hhmm / +hh offsets).  Returns NULL,
** or a static phrase saying why z is not a datetime.
*/
QUAY_INTERNAL const char *quay__datetime_norm(const char *z, size_t n,
                                              char *zOut);
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
  int nDigits, nPlaces;     /* decimal: precision and scale, else 0 */
  quay_value dflt;          /* owned static default (QUAY_F_DEFAULT) */
  double rSeq;              /* declaration sequence */
  int iField;               /* index in the model's apField */
  Rel *pRel;                /* FK columns: the relation that owns it */
  char *zRenamed;           /* renamed_from (old field or column), or NULL */
  quay_value *aChoice; int nChoice; /* choices, in the field's form */
  quay_value *pMin, *pMax;  /* numeric bounds, or NULL (rules.c) */
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
  char *zRenamed;           /* renamed_from (old relation or column) */
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
  char ***aaIndex; int *anIndex; int nIndex;  /* `indexes` option */
  int iModel;               /* index in the db's model list */
  int resolved;             /* part of a successful resolve */
  int failed;               /* a resolve failed on its declaration: it
                            ** may be declared again (quay_model_new) */
  Smap mFieldName;          /* field name -> index */
  Smap mColName;            /* column name -> index */
  Smap mRelName;            /* registered relation name -> index */
  Field *pDeletedAt;        /* soft_delete: the deleted_at column, else
                            ** NULL (rows with it set are left out of
                            ** every read) */
  char *zRenamed;           /* renamed_from (old model or table), or NULL */
  int bDeleteHooks;         /* rows are loaded for the delete observer
                            ** (quay_model_set_delete_hooks) */
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
/* Remove the last field of m (a key column quay__model_add_fkcol added);
** allocates nothing. */
QUAY_INTERNAL void quay__model_pop_field(quay_model *m);
/* Append a has_many/has_one key column the target does not declare. */
QUAY_INTERNAL int quay__model_add_fkcol(quay_model *m, const char *zCol,
                                        int eType, Rel *pRel,
                                        Field **ppField, quay_err *pErr);
QUAY_INTERNAL const char *quay__kind_name(int eKind);
/* Snake case of a name (reference.md "Snake case"); caller frees.  NULL
** on OOM. */
QUAY_INTERNAL char *quay__snake_case(const char *zName);
/* Non-0 when z is usable as a model, field or relation name. */
QUAY_INTERNAL int quay__is_name(const char *z);
/*
** The models in an order where every model comes after the models it
** refers to by a foreign key (belongs_to, one_to_one, and has_many /
** has_one whose key column it holds); a model's reference to itself does
** not count.  aInclude (may be NULL: all) selects the models to order.
** Within what the references allow, declaration order is kept.  When the
** references form a cycle the rest follow in declaration order and
** *pbCycle (may be NULL) is set.  aOrder holds nModel entries; *pn gets
** how many were written.  QUAY_ENOMEM only.
*/
QUAY_INTERNAL int quay__model_order(quay_db *pDb,
                                    const unsigned char *aInclude,
                                    int *aOrder, int *pn, int *pbCycle);

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
  Field *pViaDeletedAt;     /* deleted_at of a soft_delete through model */
  int toMany;
  int fromNullable;         /* pFromKey may be NULL */
  int toNullable;           /* pToKey (or via column) may be NULL */
  Rel *pRel;                /* the relation this hop belongs to */
  Rel *pNamed;              /* the relation the path named (a quay.through
                            ** for its hops): hops of different named
                            ** relations never share a row */
};
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
** Paths
** ===================================================================
** Every "__" path of the API is walked by quay__path_walk (qs.c): filter
** and where_has paths, loads, order_by, pluck, values, quay.F and
** aggregate paths.  The mode says what a path may contain and which error
** an unknown name raises (docs/reference.md "Names in paths").
*/
enum {
  PATH_RELATIONS = 1,       /* relations only (loads, where_has, counts):
                            ** unknown_relation */
  PATH_FIELD,               /* relations, then a field or nothing, then
                            ** lookups/transforms (filters, aggregates):
                            ** unknown_field */
  PATH_TO_ONE               /* as PATH_FIELD, to-one relations only and
                            ** nothing after the field (order_by, pluck,
                            ** values, quay.F): bad_lookup for to-many */
};

typedef struct PathRes {
  Rel *apRel[QUAY_MAX_HOPS]; int nRel;
  Hop aHop[QUAY_MAX_HOPS]; int nHop;
  quay_model *pModel;       /* model the relations reach */
  Field *pField;            /* final field, or NULL: ends at a relation */
  const char *zRest;        /* what follows the field or the last relation
                            ** ("gte", "year__gte"), "" if nothing */
  int isPivot;              /* starts with "pivot__" */
  int toMany;               /* a hop is to-many */
  int iLastRel;             /* first hop of the last relation */
} PathRes;

QUAY_INTERNAL int quay__path_walk(quay_model *m, quay_model *pPivot,
                                  const char *zPath, int eMode,
                                  const char *zWhat, PathRes *p,
                                  quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Expressions and annotations (expr.c)
** ===================================================================
** quay.F columns, constants, arithmetic, aggregates over relation paths
** and date truncation, as a tree.  An annotation (annotate, with_count,
** values columns) is a name bound to an expression.  Expressions are
** bound to a query set's model when attached (names checked at once, no
** SQL yet); the SQL builder writes them per query shape (expr.c).
*/
typedef struct Expr Expr;
typedef struct Ann Ann;

enum {                      /* expression nodes */
  EX_COL = 1,               /* a column across to-one relations */
  EX_VALUE,                 /* a bound constant */
  EX_ADD, EX_SUB, EX_MUL, EX_DIV,
  EX_AGG,                   /* an aggregate over a relation path */
  EX_REF,                   /* an annotation of the query set, by name */
  EX_TRUNC                  /* a datetime/date truncated to a unit */
};

struct Expr {
  int eOp;                  /* EX_* */
  Expr *pA, *pB;            /* operands (owned) */
  char *zPath;              /* COL, TRUNC, AGG (NULL: count rows), REF */
  quay_value val;           /* VALUE (owned copy) */
  int eFunc;                /* AGG: QUAY_AGG_* */
  int bDistinct;            /* AGG */
  Cond *pFilter;            /* AGG: owned, bound to the annotated model */
  quay_value dflt;          /* AGG: owned, when bDefault */
  int bDefault;
  int eUnit;                /* TRUNC: QUAY_UNIT_* */
  int bDesc;                /* as an order_by term */
  /* bound (quay__expr_bind) */
  int bound;
  PathRes path;             /* COL/TRUNC: to-one; AGG: any relations */
  Ann *pRef;                /* REF: the annotation (borrowed from the qs) */
  int eType;                /* result field type (QUAY_T_*), 0: unknown */
  int nPlaces;              /* QUAY_T_DECIMAL results: places (a scaled
                            ** dialect holds value * 10^nPlaces) */
  int bAgg;                 /* an aggregate is inside */
  const char *zWhat;        /* COL: the call a plain path came from
                            ** ("values", "order_by", "pluck"), named in
                            ** messages; NULL: quay.F */
  Expr *pNextFree;          /* work list of quay__expr_free */
};

struct Ann {
  char *zName;
  Expr *pExpr;              /* owned */
  int bCount;               /* with_count("posts") */
};

QUAY_INTERNAL void quay__expr_free(Expr *p);
/*
** Bind e (and its children) to the query set q: paths walked from q's
** model, annotation names looked up in q's chain.  bGrouped: aggregates
** and references are allowed (annotate, aggregate, HAVING); else an
** aggregate raises bad_lookup (filter values, update).
*/
QUAY_INTERNAL int quay__expr_bind(Expr *e, quay_qs *q, int bAllowAgg,
                                  quay_err *pErr);
/* The pivot model of a related set of a custom many-to-many, or NULL. */
QUAY_INTERNAL quay_model *quay__qs_pivot(quay_qs *q);
/* The annotation named z in q's chain (and values columns), or NULL. */
QUAY_INTERNAL Ann *quay__qs_ann(quay_qs *q, const char *z);
/*
** Decimal arithmetic in SQL (the one home of it; sqlbuild.c and values.c
** call these).  On a dialect with bScaledDecimal a QUAY_T_DECIMAL
** expression holds value * 10^nPlaces as an integer, so:
**   quay__emit_arith     writes the binary node e ("(a op b)") with each
**                        operand converted as e's type needs: to e's
**                        places for + and -, to a plain number for / and
**                        for number results, as is for decimal *;
**   quay__emit_as        writes e converted to the form of a value of
**                        type eType with nPlaces (a comparison's side);
**   quay__emit_avg_unscale  follows an AVG over a scaled decimal (e is
**                        the aggregate) so that it reads as its value.
** On other dialects they write the SQL unchanged.  xEmit writes an
** operand in the caller's context pCtx.
*/
QUAY_INTERNAL void quay__emit_arith(Build *b, Expr *e,
                                    void (*xEmit)(Build *, void *, Expr *),
                                    void *pCtx);
QUAY_INTERNAL void quay__emit_as(Build *b, Expr *e, int eType, int nPlaces,
                                 void (*xEmit)(Build *, void *, Expr *),
                                 void *pCtx);
QUAY_INTERNAL void quay__emit_avg_unscale(Build *b, const Expr *e);
/* The places of what leaf c compares (a decimal field or annotation),
** and its type (QUAY_T_*, 0 when unknown). */
QUAY_INTERNAL int quay__leaf_type(const Cond *c, int *pnPlaces);
/*
** The value of bound expression e may stand where a value of type eType
** is compared or stored (zModel, may be NULL, and zWhat name that place):
** numbers with numbers, strings and texts together, any other type with
** itself.  Else QUAY_EBAD_LOOKUP, before any SQL (SQLite would compare
** or store across types where PostgreSQL raises).
*/
QUAY_INTERNAL int quay__expr_check_type(const Expr *e, int eType,
                                        const char *zModel, const char *zWhat,
                                        quay_err *pErr);
/*
** Aggregate eFn (QUAY_AGG_*, not EXISTS) over the SQL argument zArg ("*"
** for rows), DISTINCT when bDistinct, for aggregate expression e: the one
** place an aggregate's function is written (sqlbuild.c, values.c), so
** min / max of a boolean and avg of a number field read alike on every
** dialect (Dialect zBoolMin, bAvgSumCount).
*/
QUAY_INTERNAL void quay__emit_agg_call(Build *b, const Expr *e, int eFn,
                                       int bDistinct, const char *zArg);
/*
** Write e as the new value of field pTarget in an UPDATE: in the field's
** form (a scaled decimal's places), and rounded when a number or decimal
** goes into an integer field (Dialect azRealToInt, azDecToInt).
*/
QUAY_INTERNAL void quay__emit_as_stored(Build *b, Expr *e,
                                        const Field *pTarget,
                                        void (*xEmit)(Build *, void *,
                                                      Expr *),
                                        void *pCtx);
/* Non-0 when the UPDATE SET value e reads other rows (a subquery along
** to-one relations), so that it must read them as they were before the
** statement (Dialect zUpdateSnapshot). */
QUAY_INTERNAL int quay__expr_reads_rows(const Expr *e);
/* }================================================================== */


/*
** {==================================================================
** Field types (types.c)
** ===================================================================
** One table entry per QUAY_T_* type says everything a type decides: its
** contract name, the value kinds it takes and stores, its column types,
** how a value is converted to its stored form and checked, how a read
** column is typed, and what lookups, aggregates and keys it allows
** (QUAY_TF_*).  Adding a type is one entry plus its conversion function.
**
** Every value written to a field or compared with one passes
** quay__value_conform then quay__value_fits, so the backends accept and
** refuse the same values.  Errors are validation errors naming the model
** and field (quay_err zModel / zField).
*/
/*
** Room for a converted value: short forms (datetimes, dates, decimals,
** uuids, JSON numbers) in z; longer ones (a string as a JSON document) in
** zHeap (quay__malloc), which quay__valbuf_free releases.  Start with
** zHeap = NULL.
*/
typedef struct ValBuf {
  char z[64];
  char *zHeap;
} ValBuf;
QUAY_INTERNAL void quay__valbuf_free(ValBuf *p);
/*
** Text z[n] (a string column's value) as the stored value of a field of
** type eType (nPlaces and nDigits for a decimal, given as its scaled
** integer), the way a narrowing migration converts it where the database
** has no refusing cast (SQLite): what PostgreSQL's input takes, where the
** type can hold it.  Text goes into pBuf (quay__valbuf_free'd by the
** caller).  Returns 0, 1 when the text does not convert, -1 when out of
** memory.
*/
QUAY_INTERNAL int quay__text_convert(int eType, int nPlaces, int nDigits,
                                     const char *z, size_t n,
                                     quay_value *pOut, ValBuf *pBuf);

typedef struct FieldType {
  const char *zName;        /* contract name ("decimal"); "?" for 0 */
  const char *zWant;        /* what a value must be, for messages */
  unsigned mFlags;          /* QUAY_TF_* */
  unsigned mStored;         /* bits (1 << QUAY_*) of the kinds a
                            ** converted value may have */
  int eRead;                /* the kind a read column is given (QUAY_*) */
  const char *azCol[2];     /* column type: [0] SQLite, [1] PostgreSQL;
                            ** "%d" takes digits then places */
  const char *zPgArray;     /* PostgreSQL array type of a key list */
  /* Convert non-NULL *v (any kind) to the stored form if it can; a
  ** malformed value of an accepted kind is a validation error. */
  int (*xConform)(quay_model *m, const Field *f, quay_value *v,
                  ValBuf *pBuf, quay_err *pErr);
  /* Checks of a value of a stored kind beyond its kind (NULL: none). */
  int (*xCheck)(quay_model *m, const Field *f, const quay_value *v,
                int bStore, quay_err *pErr);
} FieldType;

/* The entry of type eType; an entry named "?" with no flags when eType
** is not a type. */
QUAY_INTERNAL const FieldType *quay__ftype(int eType);
QUAY_INTERNAL int quay__type_valid(int eType);
/* Append the column type of a field of type eType to p (nMax: a string's
** max, nDigits/nPlaces: a decimal's precision). */
QUAY_INTERNAL void quay__type_sql(Str *p, const Dialect *pDia, int eType,
                                  int nMax, int nDigits, int nPlaces);
/*
** Read hints (quay_driver.xColumn): the type in the low byte, NOT NULL in
** QUAY_HINT_NOTNULL, a decimal's places from QUAY_HINT_PLACES_SHIFT up
** (a scaled dialect formats its integers with them).
*/
#define QUAY_HINT_PLACES_SHIFT 16
QUAY_INTERNAL int quay__field_hint(const Field *f);
QUAY_INTERNAL int quay__expr_hint(const Expr *e);

/*
** Convert the non-NULL value *pVal in place to field pField's form:
** integers to doubles for number fields, integral doubles to integers for
** integer fields, text to the normal form of datetimes, dates, decimals
** (QUAY_DECIMAL), uuids and JSON (QUAY_JSON); the converted bytes may
** live in *pBuf.  Malformed text of those types fails.
*/
QUAY_INTERNAL int quay__value_conform(quay_model *pModel, const Field *pField,
                                      quay_value *pVal, ValBuf *pBuf,
                                      quay_err *pErr);
/*
** quay__value_conform for a value whose bytes the caller owns (malloc'd,
** or none): the converted bytes replace them in new malloc'd memory.
*/
QUAY_INTERNAL int quay__value_conform_owned(quay_model *pModel,
                                            const Field *pField,
                                            quay_value *pVal,
                                            quay_err *pErr);
/*
** Check a value against field pField: kind, UTF-8 text, normal forms,
** NaN.  bStore adds the checks that only stored values need (string
** max).  NULL passes (the caller checks nullability).
*/
QUAY_INTERNAL int quay__value_fits(quay_model *pModel, const Field *pField,
                                   const quay_value *pVal, int bStore,
                                   quay_err *pErr);
/*
** A value compared with a path inside JSON field f (owned bytes, as
** quay__value_conform_owned): a string, number, boolean or null; as a
** JSON document on dialects with bJsonDocCompare.
*/
QUAY_INTERNAL int quay__json_compare_value(quay_model *pModel,
                                           const Field *pField,
                                           quay_value *pVal, quay_err *pErr);
/* A generated value for field f (QUAY_TF_GENERATED) into pBuf. */
QUAY_INTERNAL int quay__type_generate(const Field *f, quay_value *pOut,
                                      ValBuf *pBuf, quay_err *pErr);
/* Decimals: the canonical text z[n] as the integer of its digits (the
** scaled form); zOut (64 bytes) from a scaled integer with nPlaces. */
QUAY_INTERNAL int64_t quay__decimal_unscaled(const char *z, size_t n);
QUAY_INTERNAL size_t quay__decimal_format(int64_t v, int nPlaces,
                                          char *zOut);
/* }================================================================== */


/*
** {==================================================================
** Conditions and query sets
** ===================================================================
*/
enum {                      /* lookups */
  LK_EQ = 1, LK_NE, LK_LT, LK_LTE, LK_GT, LK_GTE, LK_IN, LK_NOT_IN,
  LK_CONTAINS, LK_ICONTAINS, LK_STARTSWITH, LK_ENDSWITH, LK_ISNULL,
  LK_BETWEEN, LK_IEXACT, LK_ISTARTSWITH, LK_IENDSWITH
};
QUAY_INTERNAL int quay__lookup_code(const char *z);
QUAY_INTERNAL const char *quay__lookup_name(int eLk);

/* Terms per parenthesized chunk of a long AND / OR chain (sqlbuild.c);
** its square is QUAY_MAX_COND_WIDTH. */
#define QUAY_COND_CHUNK 32

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
  Expr *pExpr;              /* owned: the value is an expression (quay.F) */
  int bound;                /* path resolved */
  Hop aHop[QUAY_MAX_HOPS]; int nHop;
  int isPivot;              /* path starts with "pivot__" */
  Field *pField;            /* final field (in the last model) */
  Ann *pAnn;                /* the path names an annotation (borrowed) */
  int ePart;                /* __year/__month/__day: QUAY_UNIT_*, else 0 */
  int eLookup;
  int bRelTest;             /* LK_ISNULL on the related row itself: an
                            ** existence test of the last relation (val
                            ** BOOL), whose hops start at iLastRel */
  int iLastRel;
  /* A path into a quay.json field (data__a__b = v, data__has_key = k):
  ** the keys are "a__b" at zJsonPath (nJsonPath bytes, in zPath), then
  ** zJsonKey (owned; has_key's key) when set.  bJsonExists: the test is
  ** whether the keys exist (has_key became isnull = false).
  ** mJsonKind: the JSON kinds (QUAY_JK_*) of the values an ordered
  ** lookup (lt .. gte, between) compares with; the value at the keys
  ** takes part only when it is of that one kind (else it reads as NULL). */
  const char *zJsonPath; int nJsonPath;
  char *zJsonKey;
  int bJsonExists;
  int mJsonKind;
  /* CN_HAS: where_has on hops with conditions (apChild) or a sub qs */
  quay_qs *pSub;            /* owned reference, may be NULL */
  Cond *pNextFree;          /* work list of quay__cond_free */
};
QUAY_INTERNAL void quay__cond_free(Cond *p);
/* JSON kinds of Cond.mJsonKind (bits). */
#define QUAY_JK_NUMBER 1
#define QUAY_JK_STRING 2
#define QUAY_JK_BOOL 4
/* The kind an ordered JSON lookup leaf c keeps (a QUAY_JK_* bit), 0 when
** it keeps every value (not an ordered lookup), -1 when none (bounds of
** two kinds). */
QUAY_INTERNAL int quay__json_ordered_kind(const Cond *c);
/* Non-0 when a leaf of c compares an aggregate annotation (HAVING). */
QUAY_INTERNAL int quay__cond_has_agg(const Cond *c);

enum {                      /* query-set operations */
  QS_ROOT = 1, QS_FILTER, QS_ORDER, QS_LIMIT, QS_OFFSET, QS_LOAD,
  QS_ANNOTATE, QS_VALUES, QS_DISTINCT, QS_STRICT, QS_SCOPE, QS_DELETED,
  QS_PRIMARY,               /* using("primary"): reads go to the primary */
  QS_LOCK                   /* select_for_update: n holds QUAY_LOCK_* */
};
/* The QUAY_LOCK_* flags of the chain's last select_for_update, or -1
** when the chain locks nothing. */
QUAY_INTERNAL int quay__qs_lock(const quay_qs *pQs);
/* QUAY_EMISUSE when pQs is a select_for_update set and pDb is outside a
** transaction that may write (row locks last until it ends), or when its
** rows are distinct or grouped values() rows (no row to lock), else
** QUAY_OK.  Every terminal call of a set checks it (count and exists
** lock the rows they count), so no select_for_update is ever ignored. */
QUAY_INTERNAL int quay__qs_lock_check(quay_qs *pQs, quay_db *pDb,
                                      quay_err *pErr);

struct quay_qs {
  int nRef;
  quay_model *pModel;
  quay_qs *pParent;         /* one reference held */
  int eOp;                  /* QS_* */
  /* QS_FILTER */
  Cond *pCond; int bExclude;
  /* QS_ORDER: terms (EX_COL, EX_REF or any expression, bDesc) */
  Expr **apOrder; int nOrder;
  /* QS_LIMIT / QS_OFFSET */
  int64_t n;
  /* QS_LOAD */
  char *zPath; int eHow; quay_qs *pSub; char *zTo;
  Rel *apLoad[QUAY_MAX_HOPS]; int nLoad;  /* path resolved into relations */
  /* QS_ANNOTATE: one annotation; QS_VALUES: the selected columns */
  Ann *aAnn; int nAnn;
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
  /* Column types: index into FieldType.azCol (quay__type_sql). */
  int iTypeCol;
  /*
  ** Decimals as scaled integers (value * 10^places in an INTEGER column),
  ** so sums, comparisons and ordering stay exact where the database has
  ** no exact decimal type; expressions rescale their operands (expr.c).
  ** 0: the database's own NUMERIC.
  */
  int bScaledDecimal;
  /*
  ** JSON paths: write the value at the keys of leaf x->pJson inside the
  ** document quay__emit_operand_doc writes (SQL NULL for a JSON null or
  ** a missing key), or, with pJson->bJsonExists, an expression that is
  ** NULL exactly when the keys are missing.  bJsonDocCompare: values
  ** compared with it are JSON documents (else SQL scalars).
  */
  void (*xJsonPath)(struct Build *b, const struct Operand *x);
  int bJsonDocCompare;
  const char *zAutoPk;      /* auto-increment integer primary key */
  /* "<zExpr> IN <array parameter iParam>" for key lists of any size. */
  void (*xInArray)(Str *p, const char *zExpr, int iParam, int eKeyType);
  /* Serialize a key list into one parameter value (text). */
  int (*xArrayValue)(Str *pOut, const quay_value *aKey, int nKey);
  /*
  ** Text lookups (contains, icontains, startswith, endswith, iexact,
  ** istartswith, iendswith) of the non-empty text z: write the condition
  ** on the operand x (quay__emit_operand, as often as needed), binding the
  ** value (or a pattern made from it) with quay__build_param.
  */
  void (*xTextMatch)(struct Build *b, const struct Operand *x, int eLookup,
                     const char *z, size_t n);
  /* Text around an operand for a date part (integer) and a truncation
  ** (same type), per QUAY_UNIT_* (index 0 unused): { before, after }. */
  const char *azPart[4][2];
  const char *azTrunc[4][2];
  const char *azTruncDate[4][2];  /* azTrunc for a date (a date again) */
  const char *zNullSafeEq;  /* null-safe "equal" operator */
  const char *zNullSafeNe;  /* null-safe "not equal" operator */
  const char *zAscNulls;    /* appended to ASC terms that may be NULL */
  const char *zDescNulls;   /* appended to DESC terms that may be NULL */
  const char *zOffsetNoLimit; /* LIMIT clause used with OFFSET alone */
  const char *zBeginWrite;  /* BEGIN for engine-run write transactions */
  const char *zBegin;       /* BEGIN for db:transaction */
  const char *zFkDeferrable;/* suffix for engine-managed FK constraints */
  int maxInline;            /* longest IN list written inline */
  const char *zTrue, *zFalse;
  const char *zDropTable;   /* "DROP TABLE IF EXISTS" */
  const char *zDropSuffix;  /* " CASCADE" on PostgreSQL */
  /* Statements to defer / undefer FK checks inside a transaction. */
  const char *zDeferFks, *zUndeferFks;
  int bSavepointRelease;    /* RELEASE SAVEPOINT supported */
  /* Rewrite raw SQL's '?' placeholders (NULL: used as written). */
  void (*xRawSql)(Str *pOut, const char *zSql, int *pnParam);
  /*
  ** Rows per INSERT in batched writes (bulk_create).  SQLite: 1, one
  ** prepared statement stepped per row is its fastest form; PostgreSQL:
  ** many, multi-row VALUES ... RETURNING saves a round trip per row (rows
  ** come back in VALUES order).  Capped by 65,535 parameters.
  */
  int maxInsertRows;
  /*
  ** Schema evolution.  xInspect reads the live schema of the current
  ** schema (PostgreSQL) or main database (SQLite) into pS through the
  ** builder of inspect.c.
  */
  int (*xInspect)(quay_db *pDb, quay_schema *pS, quay_err *pErr);
  /* CREATE TABLE may refer to a table that does not exist yet. */
  int bForwardFk;
  /*
  ** ALTER TABLE can change a column's type, NULL and default, and add or
  ** drop constraints and identities.  0: such changes rebuild the table
  ** (new table, copy, drop, rename), which needs foreign keys off
  ** (zFkOff .. zFkOn, around the transaction) and a quiet rename
  ** (zRenameQuietOn .. Off: views and triggers are not re-checked while
  ** the old table is gone).
  */
  int bAlterColumn;
  const char *zFkOff, *zFkOn;
  const char *zRenameQuietOn, *zRenameQuietOff;
  /* Prefix of a statement whose result rows are foreign key violations. */
  const char *zFkCheck;
  /* First statement of a migration's transaction (a lock), or NULL. */
  const char *zMigrateLock;
  /* A query with one parameter (a table name) that returns a row when
  ** that table exists. */
  const char *zTableExists;
  /* Move an identity past the rows' largest value (NULL: not needed). */
  void (*xIdentitySync)(Str *pOut, const char *zTable, const char *zCol);
  /* A statement with one parameter, a key given explicitly to rows just
  ** inserted, that moves the identity of zTable.zCol up to it when it is
  ** behind (NULL: the database follows explicit keys itself). */
  void (*xIdentityRaise)(Str *pOut, const char *zTable, const char *zCol);
  /* With bAlterColumn 0: statement i (from 0; returns 0 past the last)
  ** of those that give the rebuilt copy zNew of table zOld the automatic
  ** key's high-water mark of zOld, so that a rebuild never hands out
  ** again the id of a row deleted before it (NULL: the rows decide). */
  int (*xRebuildSeq)(Str *pOut, const char *zOld, const char *zNew, int i);
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
  /*
  ** Expressions (docs/reference.md "Aggregates, annotations, values and
  ** expressions"; expr.c).  zUpdateSnapshot follows the SET list of an
  ** UPDATE whose new values read rows through subqueries (NULL: none
  ** needed): SQLite evaluates SET row by row, so such a subquery would
  ** read rows the statement already changed, but an UPDATE with a FROM
  ** clause computes every new value first (a SELECT into a temporary
  ** table, SQLite's update.c updateFromSelect) and then writes; PostgreSQL
  ** reads the statement's snapshot.  azRealToInt / azDecToInt surround a
  ** number / decimal stored in an integer field: to the nearest integer,
  ** ties to even for a number and away from zero for a decimal, out of
  ** range an error (PostgreSQL's casts to bigint; SQLite: quay_rint, a
  ** function drv_sqlite.c registers, and round).  zBoolMin / zBoolMax:
  ** min / max of a boolean (PostgreSQL has no min(boolean)).
  ** zUuidMinMaxArg: with it, min / max of a uuid take their argument as
  ** "(x)" followed by it (PostgreSQL has no min(uuid): its text in the C
  ** collation, which orders as the uuid does); NULL: the column itself.
  ** bAvgSumCount: avg of a number field as SUM / COUNT (PostgreSQL's
  ** avg(float8) also sums the squares, which overflow from 1.4e154).
  ** zRealToScaled: with bScaledDecimal, the function storing a number in
  ** a decimal field of p places, zRealToScaled(x, p) (SQLite: quay_dec,
  ** PostgreSQL's float8 to numeric(d, p) assignment: 15 significant
  ** digits, then half away from zero at p places); a decimal of more
  ** places than the field's is rounded with azDecToInt.
  ** zScaledFit: with bScaledDecimal, the function checking a value stored
  ** in a decimal field of d digits, zScaledFit(x, d): x (value * 10^p)
  ** itself, or an error when it has more than d digits (SQLite:
  ** quay_decfit; PostgreSQL's numeric(d, p) refuses such a value).
  */
  const char *zUpdateSnapshot;
  const char *azRealToInt[2], *azDecToInt[2];
  const char *zBoolMin, *zBoolMax;
  const char *zUuidMinMaxArg;
  const char *zDecSum;      /* sum of a scaled decimal (SQLite: quay_dsum,
                            ** exact past 64 bits); NULL: SUM */
  const char *azIntSum[2];  /* around a SUM of integers, so it is a 64-bit
                            ** integer (PostgreSQL: numeric otherwise, whose
                            ** "/" does not truncate and which reads as a
                            ** float past 64 bits); NULL: SUM itself */
  int bAvgSumCount;
  const char *zRealToScaled;
  const char *zScaledFit;
  /* With bScaledDecimal: zDecArith('+' | '-' | '*', a, b, label), decimal
  ** arithmetic exact in 128 bits, an error past 64 bits (SQLite:
  ** quay_darith); NULL: the operators. */
  const char *zDecArith;
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
  int iVersion;             /* 2: xErrInfo; 3: bReplicas; 4: xInTxn;
                            ** 5: xFkEnforce */
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
  /*
  ** Version 3.  Non-0 for a client-server backend: the db may read from
  ** replicas (quay_open_opts.azReplica) through more connections of this
  ** driver.  SQLite's is 0: the options are accepted and do nothing.
  */
  int bReplicas;
  /*
  ** Version 4.  Non-0 while the connection is inside a transaction,
  ** whoever opened it: Quay, or a host that shares the connection
  ** (sqlite3_get_autocommit) or sent BEGIN as raw SQL.  exec.c nests
  ** Quay's levels inside a transaction it did not open, and notices when
  ** one it opened was ended behind its back.
  */
  int (*xInTxn)(DrvConn *pConn);
  /*
  ** Version 5.  Optional (NULL: never suspended): the connection's own
  ** foreign-key enforcement, turned on (eOn 1) or off (0), or only read
  ** (-1); returns the state after the call.  SQLite's cannot fail (no
  ** allocation).  The writer suspends it for a bulk insert it checks
  ** itself (writer.c "Bulk inserts"); exec.c turns it back on when the
  ** transaction ends.
  */
  int (*xFkEnforce)(DrvConn *pConn, int eOn);
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

/*
** One server of a db: the primary (aSrv[0]) or a read replica.  Each has
** its own connection and statement cache.  A replica connects on its
** first read; one that cannot be reached or was lost is closed and not
** tried again before tRetryMs.
*/
typedef struct DbServer {
  DrvConn *pConn;           /* NULL when disconnected */
  const char *zUrl;         /* replicas: the driver's part of the URL
                            ** (owned by the db); the primary: NULL */
  CachedStmt *pCache; int nCache;
  int iGen;                 /* bumped each time pConn closes */
  int64_t nQuery;           /* statements sent here (db:stats) */
  int64_t tRetryMs;         /* replicas: lost; not tried before this
                            ** monotonic time (0: no wait) */
} DbServer;

/* Where a read goes (quay__db_read): *piSrv on input. */
#define QUAY_SRV_ANY (-1)   /* a replica in turn when routing allows */
#define QUAY_SRV_PRIMARY 0  /* the primary only (using "primary") */

enum {                      /* quay_db.eTxnGone */
  TXN_GONE_NONE = 0,
  TXN_GONE_ERROR,           /* the server rolled it back after a failure */
  TXN_GONE_OUTSIDE,         /* a COMMIT / ROLLBACK Quay did not send */
  TXN_GONE_CLOSED           /* the connection was closed under the levels
                            ** (quay_db_disconnect, quay_db_reopen) or
                            ** lost (after_fail) */
};

struct quay_db {
  const quay_driver *pDrv;
  const Dialect *pDialect;
  DbServer *aSrv; int nSrv; /* aSrv[0] the primary, then the replicas */
  char *zUrl;               /* for reopen */
  char **azReplica;         /* replica URLs (aSrv[i].zUrl point in) */
  void *pBorrowed;          /* host-owned handle (never closed) */
  quay_open_opts opts;      /* azReplica NULL: the URLs are above */
  int iNextRead;            /* replica the next routed read tries first */
  int64_t tWriteMs;         /* monotonic time of the last write (sticky) */
  int bTxnWrote;            /* a write ran since Quay's last outermost
                            ** BEGIN: its end counts as a write */
  /* schema */
  quay_model **apModel; int nModel, nModelAlloc;
  Smap mModel;              /* name -> index */
  JoinTable **apJoin; int nJoin, nJoinAlloc;
  int resolved;             /* every model and relation resolved */
  quay_model *pResolveFail; /* the model a failing resolve is about */
  int iSchema;              /* schema version (quay_db_schema_version) */
  /* statements */
  int64_t nQuery;
  quay_trace_fn xTrace; void *pTraceArg;
  quay_delete_fn xDelete; void *pDeleteArg; /* delete hooks (cascade.c) */
  int txnDepth;             /* transaction levels Quay opened */
  int bTxnReadOnly;         /* the outermost level is read-only */
  int bHostTxn;             /* the outermost level is a savepoint inside
                            ** a transaction Quay did not open */
  int eTxnGone;             /* TXN_GONE_*: the transaction the open levels
                            ** live in has ended under them */
  /* A bulk insert's transaction (writer.c "Bulk inserts"): the writer
  ** whose foreign keys the outermost COMMIT checks first, and whether
  ** the connection's own enforcement is off until the transaction ends. */
  quay_writer *pBulkW;
  int bFkOff;
  /* lifetime (quay_db_free) */
  int nChild;               /* live objects that point at the db: cursors,
                            ** writers, plans, loads, root query sets,
                            ** migrations, results */
  int bFreed;               /* quay_db_free ran: freed with the last child */
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
  int *aField;              /* Model:raw: per column its field, or -1 */
  quay_model *pRaw;         /* Model:raw: the model aField maps to */
  int done;
  int bStepped;             /* stepped at least once */
  int ePending;             /* QUAY_ROW/QUAY_DONE: the first step's result,
                            ** taken early (quay_db_query), else 0 */
  int iSrv;                 /* the server it runs on (pDb->aSrv) */
  int iGen;                 /* that server's iGen when opened */
};

QUAY_INTERNAL int quay__db_check_open(quay_db *pDb, quay_err *pErr);
/*
** Children keep their db alive (SQLite's sqlite3_close_v2 model): every
** object that points at the db holds it from its constructor to its
** destructor.  quay_db_free of a db with children closes the connection
** at once and frees the memory when the last child lets go; the
** children's calls then fail with QUAY_EMISUSE (quay__db_check_open).
*/
QUAY_INTERNAL void quay__db_hold(quay_db *pDb);
QUAY_INTERNAL void quay__db_release(quay_db *pDb);
/*
** Non-0 while the primary connection is inside a transaction: one Quay
** opened (txnDepth > 0) or one the host opened on a shared connection.
** Whatever needs "no transaction" (SQLite's PRAGMA foreign_keys) or "a
** transaction" (row locks) asks this, not txnDepth.
*/
QUAY_INTERNAL int quay__db_in_txn(quay_db *pDb);

/* The model a writer writes (writer.c; capi.c names its fields). */
QUAY_INTERNAL quay_model *quay__writer_model(const quay_writer *pW);
/* Model:raw: map the cursor's columns to c->pRaw's fields (aField, and the
** hints of the mapped columns); 0 when the primary key is not among them. */
QUAY_INTERNAL int quay__raw_map(quay_cursor *c, quay_err *pErr);
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
/*
** A read (a query set's load, count, exists, pluck), routed: *piSrv is
** QUAY_SRV_ANY (a replica in turn, when no transaction is open and no
** write happened within the sticky time), QUAY_SRV_PRIMARY, or the
** server an earlier read of the same records used.  A replica that is
** down or lost is skipped (the primary answers last); on return *piSrv
** is the server that ran the statement.  Otherwise as quay__db_run
** (quay__db_run itself always runs on the primary and counts as a
** write).
*/
QUAY_INTERNAL int quay__db_read(quay_db *pDb, int *piSrv, const char *zSql,
                                const quay_value *aParam, int nParam,
                                const int *aHint, int nHint, int bStream,
                                quay_cursor **ppCur, quay_err *pErr);
QUAY_INTERNAL int quay__db_read_scalar(quay_db *pDb, int *piSrv,
                                       const char *zSql,
                                       const quay_value *aParam, int nParam,
                                       int64_t *pOut, quay_err *pErr);
/* n reads in one batch (one round trip where the driver can), routed as
** quay__db_read; a cursor over each in apCur, all or none. */
QUAY_INTERNAL int quay__db_run_batch(quay_db *pDb, int *piSrv, int n,
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
/* The model whose table is zTable (exact name first, then any case), or
** NULL. */
QUAY_INTERNAL quay_model *quay__model_of_table(quay_db *pDb,
                                               const char *zTable);
/* Non-0 while the connection is inside a transaction, whoever opened it. */
QUAY_INTERNAL int quay__conn_in_txn(quay_db *pDb);
/*
** Bulk inserts (writer.c): the checks the outermost COMMIT runs first
** (integrity, nothing committed, when a row's foreign key has no parent),
** and the end of the transaction (the writer forgets its checks).
*/
QUAY_INTERNAL int quay__writer_bulk_check(quay_writer *w, quay_err *pErr);
QUAY_INTERNAL void quay__writer_bulk_end(quay_writer *w);
/* A clean-up statement: never failed by the test hook or an observer. */
QUAY_INTERNAL int quay__db_cleanup(quay_db *pDb, const char *zSql,
                                   quay_err *pErr);
/* Finalize the cached statements no cursor uses (the schema changed). */
QUAY_INTERNAL void quay__db_cache_drop_idle(quay_db *pDb);
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
  int nCondDepth;           /* condition nesting being emitted (bounded) */
};
QUAY_INTERNAL void quay__build_init(Build *b, quay_db *pDb, Arena *pArena,
                                    quay_err *pErr);
QUAY_INTERNAL void quay__build_free(Build *b);
QUAY_INTERNAL void quay__build_param(Build *b, const quay_value *pVal);

/*
** The left side of a comparison: a column's text, or an expression that
** xExpr writes (its parameters bound in text order, as often as the
** dialect writes the operand), with a date part taken when ePart is set.
*/
struct Operand {
  const char *zCol;         /* column text ("t0"."views"), or NULL */
  Expr *pExpr;              /* else this expression ... */
  void (*xExpr)(Build *b, void *pCtx, Expr *e);   /* ... written so */
  void *pCtx;
  int ePart;                /* QUAY_UNIT_* date part of it, or 0 */
  const Cond *pJson;        /* a JSON path leaf: the value at its keys
                            ** inside the operand (Dialect.xJsonPath) */
};
QUAY_INTERNAL void quay__emit_operand(Build *b, const Operand *x);
/* The operand's column or expression as is (no date part, no JSON path):
** what a dialect's xJsonPath extracts from. */
QUAY_INTERNAL void quay__emit_operand_doc(Build *b, const Operand *x);
/* Set an operand's transforms (date part, JSON path) from leaf c. */
QUAY_INTERNAL void quay__operand_leaf(Operand *x, const Cond *c);
QUAY_INTERNAL void quay__build_array(Build *b, const char *zExpr,
                                    const quay_value *a, int n, int eType);
QUAY_INTERNAL int quay__build_rc(Build *b);
/*
** Run b's statement on the primary (after quay__build_rc): to completion,
** setting *pnChanged when given (quay__build_exec), or opening a cursor
** whose columns aHint types (quay__build_query).  The build error, if
** any, is returned without sending anything.
*/
QUAY_INTERNAL int quay__build_exec(Build *b, int64_t *pnChanged);
QUAY_INTERNAL int quay__build_query(Build *b, const int *aHint, int nHint,
                                    quay_cursor **ppCur);
/* The first column of every row of b's statement (typed by eHint), in
** b's arena (texts copied there): *paOut, *pnOut (NULL, 0 for no row). */
QUAY_INTERNAL int quay__build_values(Build *b, int eHint,
                                     quay_value **paOut, int *pnOut);

/* Flattened view of a query-set chain (root first). */
typedef struct QsView {
  quay_model *pModel;
  quay_qs **apFilter; int nFilter;   /* QS_FILTER nodes */
  quay_qs *pOrder;                    /* last QS_ORDER or NULL */
  int64_t limit, offset;              /* -1 = none */
  quay_qs **apLoad; int nLoad;        /* QS_LOAD nodes */
  Ann **apAnn; int nAnn;              /* annotations, in order */
  int iFirstGroupAnn;                 /* values mode: annotations from this
                                      ** index on come after values() */
  quay_qs *pValues;                   /* last QS_VALUES node or NULL */
  int distinct;                       /* QS_DISTINCT seen */
  quay_qs *pScope;                    /* QS_SCOPE node or NULL */
  int strict;
  int eDeleted;                       /* 0, or QUAY_DELETED_* (QS_DELETED) */
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
/*
** How a scope writes the aggregates over relations of its row (sqlbuild.c
** "Aggregates of a scope"): each as a correlated subquery, or grouped
** LEFT JOINs where the rule there allows; the caller then writes them with
** quay__scope_agg_joins right after its FROM.
*/
enum {
  QUAY_AGGS_CORRELATED = 0, /* correlated subqueries only */
  QUAY_AGGS_GROUPED,        /* grouped joins; the scope's rows are the
                            ** view's (its order, limit and offset) */
  QUAY_AGGS_GROUPED_ALL     /* grouped joins; the view's limit and offset
                            ** are not of these rows (values groups) */
};
/* The scope of a view's row zAlias (pivot alias, filters prepared), its
** aggregates written as eAggs (QUAY_AGGS_*) says. */
QUAY_INTERNAL Scope *quay__scope_from_view(Build *b, QsView *v,
                                           const char *zAlias, int eAggs);
/* Register the aggregate e, written as function eFn (a partial of
** values.c), in s's grouped joins when the scope allows (before FROM). */
QUAY_INTERNAL void quay__scope_prepare_agg(Build *b, Scope *s, Expr *e,
                                           int eFn);
/* " LEFT JOIN (SELECT ... GROUP BY ...) AS g ON ...": s's grouped
** aggregate joins, with their parameters, after the FROM and its joins
** and before the WHERE.  Nothing when s has none. */
QUAY_INTERNAL void quay__scope_agg_joins(Build *b, Scope *s);
/*
** A statement that starts with WITH may hold the rows of s's view once
** (after its aggregates are prepared, before s's text): when s restricts
** grouped joins to the view's keys, write zPrefix ("WITH " or ", ") and
** "<zName> AS (SELECT r.* FROM ... WHERE <the view's conditions>)", take
** zName as that query's name for the joins' restriction and return 1;
** else write nothing and return 0.  Each join then reads its keys from
** zName instead of a copy of the conditions nested inside it (SQLite's
** parser takes a limited depth).
*/
QUAY_INTERNAL int quay__scope_keys_with(Build *b, Scope *s,
                                        const char *zName,
                                        const char *zPrefix);
/*
** A fresh name for a WITH query of b's statement ("q_t<n>", underscores
** added while a table of the schema has that name); NULL out of memory.
*/
QUAY_INTERNAL char *quay__with_name(Build *b);
/* Register the to-one joins an expression's columns need (before the
** scope's FROM is written). */
QUAY_INTERNAL void quay__scope_prepare_expr(Build *b, Scope *s, Expr *e);
/* " FROM table AS alias", the pivot join and the registered joins. */
QUAY_INTERNAL void quay__scope_emit_from(Build *b, Scope *s);
/* A bound expression for the scope's row (aggregates as correlated
** subqueries, annotations inline). */
QUAY_INTERNAL void quay__emit_expr_row(Build *b, Scope *s, Expr *e);
/*
** The tables of a hop chain ("to" AS t [JOIN ...]): azT[i] gets hop i's
** target alias, *pzVia0 hop 0's pivot alias (or NULL), *pzLink the column
** that holds the owner's key.  The one renderer of relation hops as joins.
*/
QUAY_INTERNAL void quay__emit_chain(Build *b, const Hop *aHop, int nHop,
                                    char **azT, char **pzVia0,
                                    char **pzLink, Str *pSoft, int nSoft);
/* soft_delete: "zPre<alias>.deleted_at IS NULL" when m soft-deletes. */
QUAY_INTERNAL void quay__soft_term(Build *b, const quay_model *m,
                                   const char *zAlias, const char *zPre);
/* A soft_delete through model of hop h: "zPre<zV>.deleted_at IS NULL"
** appended to s (its pivot row at zV); returns 1 if written. */
QUAY_INTERNAL int quay__via_soft_term(Str *s, const Hop *h, const char *zV,
                                      const char *zPre);
/*
** Non-0 when the bound expression e can never be NULL: a NOT NULL column of
** the row itself or reached through to-one hops that always find a row
** (forward belongs_to / one_to_one with a NOT NULL key, no soft delete; a
** LEFT JOINed row may be missing), a non-NULL constant, COUNT, EXISTS, an
** aggregate with a non-NULL default, and + - * of such.
*/
QUAY_INTERNAL int quay__expr_notnull(const Expr *e);
/*
** " ASC" / " DESC" of an ORDER BY term e, then the dialect's NULL
** placement (zAscNulls / zDescNulls: SQLite's order, NULLs lowest), left
** out when e cannot be NULL so that PostgreSQL may use an index's order.
*/
QUAY_INTERNAL void quay__emit_order_dir(Build *b, const Expr *e, int bDesc);

/*
** " LIMIT ? OFFSET ?" of a view (its limit and offset as parameters; an
** offset without a limit in the dialect's form); nothing when neither.
*/
QUAY_INTERNAL void quay__emit_limit(Build *b, const QsView *v);
/* An aggregate of the rows along e's path, correlated to the scope's
** row, or (xOwners) to every owner key the subquery xOwners writes: the
** keys hop 0 starts from, or, when quay__agg_owner_rows(e), the owners'
** primary keys (a filter reads the owner's row, which is joined). */
QUAY_INTERNAL int quay__agg_owner_rows(const Expr *e);
QUAY_INTERNAL void quay__emit_agg_row(Build *b, Scope *s, Expr *e, int eFn,
                                      void (*xOwners)(Build *, void *),
                                      void *pOwners);
/* A condition tree compiled for the scope's row, prepared (joins
** registered) but not part of its WHERE; written by quay__emit_cond. */
typedef struct ENode ENode;
QUAY_INTERNAL ENode *quay__scope_cond(Build *b, Scope *s, Cond *c);
QUAY_INTERNAL void quay__emit_cond(Build *b, ENode *n);
/* A leaf's comparison with the operand x (values.c: HAVING). */
QUAY_INTERNAL void quay__emit_compare(Build *b, Cond *c, const Operand *x,
                                      void (*xRight)(Build *, void *,
                                                     Expr *),
                                      void *pRight);
/* An expression as qs:update's new value of a row of m. */
QUAY_INTERNAL void quay__emit_expr_update(Build *b, quay_model *m,
                                          const Field *pTarget, Expr *e);
/* Non-0 when a chain can reach one target row twice from one owner. */
QUAY_INTERNAL int quay__chain_repeats(const Hop *aHop, int nHop);
/* Both, and the scope's grouped aggregate joins: the scope's FROM written
** at once; returns the scope. */
QUAY_INTERNAL Scope *quay__build_from(Build *b, QsView *v,
                                      const char *zAlias, int eAggs);
/* SELECT of field pKey of a set with no limit or offset (no order);
** returns the alias of the set's own rows (NULL on failure). */
QUAY_INTERNAL const char *quay__build_keys(Build *b, quay_qs *pQs,
                                           Field *pKey);
/*
** SELECT of field pKey of the rows of any query set, appended to b after
** its parameters: for a limited or offset set, the rows :all() reads
** (loader.c), else quay__build_keys.  Returns the alias of the set's own
** rows, so that a caller may lock them (FOR UPDATE OF), or NULL when the
** SELECT cannot carry that lock (or on failure).
*/
QUAY_INTERNAL const char *quay__plan_keys(Build *b, quay_qs *pQs,
                                          Field *pKey);
QUAY_INTERNAL char *quay__alias(Build *b);
/* }================================================================== */


/*
** {==================================================================
** Schema descriptions (inspect.c, ddl.c, migrate.c)
** ===================================================================
** One shape describes a set of tables, live or declared: the live schema
** read by Dialect.xInspect, and the schema the declared models make
** (quay__schema_declared in ddl.c, the one home of what Quay's DDL
** creates).  migrate.c compares the two.  Strings live in the schema's
** arena; arrays grow with quay__realloc.  The builder is sticky on OOM:
** a failed add returns NULL and sets pS->oom, checked once at the end.
*/
enum {                      /* SCol.eDflt */
  DFLT_NONE = 0,            /* no default (or DEFAULT NULL) */
  DFLT_VALUE,               /* a literal: zDfltVal holds its value */
  DFLT_EXPR                 /* an expression Quay does not compare */
};

typedef struct SCol {
  char *zName;
  char *zType;              /* the backend's type (live) / DDL type */
  int bNull;
  char *zDefault;           /* DEFAULT text as kept / as DDL writes it */
  int iPk;                  /* 1-based position in the primary key, 0 */
  int bAuto;                /* generated by the database */
  int eType, nMax;          /* type class: QUAY_T_* (0 unknown), max */
  int nDigits, nPlaces;     /* decimals: the precision */
  int eDflt;                /* DFLT_* */
  char *zDfltVal;           /* DFLT_VALUE: the value as text */
  Field *pField;            /* declared: its field, else NULL */
  const char *zRenamed;     /* declared: renamed_from column, or NULL */
} SCol;

typedef struct SIdx {
  char *zName;
  char **azCol; int nCol;   /* NULL entries: expressions */
  int bUnique;
  int bConstraint;          /* UNIQUE constraint of the table definition */
  int bPartial;             /* a WHERE clause or expression columns */
  char *zSql;               /* SQLite: CREATE INDEX of a standalone index */
} SIdx;

typedef struct SFk {
  char *zName;              /* constraint name, or NULL */
  char **azCol, **azTo; int nCol;
  char *zTable;             /* referenced table */
  int eOnDelete, eOnUpdate; /* actions as QUAY_* rules (NO_ACTION ...) */
  int bDeferrable;
} SFk;

typedef struct SCheck {
  char *zName;              /* constraint name, or NULL */
  char *zExpr;              /* the expression */
} SCheck;

typedef struct STable {
  char *zName;
  SCol *aCol; int nCol, nColAlloc;
  SIdx *aIdx; int nIdx, nIdxAlloc;
  SFk *aFk; int nFk, nFkAlloc;
  SCheck *aCheck; int nCheck, nCheckAlloc;
  char *zSql;               /* SQLite: the CREATE TABLE text */
  char **azTrigger; int nTrigger; /* SQLite: CREATE TRIGGER texts */
  char *zPkName;            /* primary key constraint name, or NULL */
  quay_model *pModel;       /* declared: the model, or NULL */
  JoinTable *pJoin;         /* declared: an automatic join table, or NULL */
  const char *zRenamed;     /* declared: renamed_from table, or NULL */
} STable;

typedef struct GenModel GenModel;

struct quay_schema {
  const Dialect *pDia;
  Arena arena;              /* strings and name lists */
  STable *aTab; int nTab, nTabAlloc;
  int oom;                  /* sticky: a builder call failed */
  GenModel *aGen; int nGen; /* models for `quay inspect` (inspect.c) */
};

/* Builder (inspect.c).  NULL (and pS->oom) on OOM. */
QUAY_INTERNAL quay_schema *quay__schema_new(const Dialect *pDia);
QUAY_INTERNAL char *quay__schema_str(quay_schema *pS, const char *z);
QUAY_INTERNAL STable *quay__schema_add_table(quay_schema *pS,
                                             const char *zName);
QUAY_INTERNAL STable *quay__schema_find(const quay_schema *pS,
                                        const char *zName);
QUAY_INTERNAL SCol *quay__stable_add_col(quay_schema *pS, STable *t,
                                         const char *zName);
QUAY_INTERNAL SCol *quay__stable_find_col(const STable *t, const char *z);
QUAY_INTERNAL SIdx *quay__stable_add_idx(quay_schema *pS, STable *t,
                                         const char *zName);
/* Append a column (NULL: an expression) to an index. */
QUAY_INTERNAL void quay__sidx_add_col(quay_schema *pS, SIdx *x,
                                      const char *zCol);
QUAY_INTERNAL SFk *quay__stable_add_fk(quay_schema *pS, STable *t,
                                       const char *zName, const char *zTable);
QUAY_INTERNAL void quay__sfk_add_col(quay_schema *pS, SFk *f,
                                     const char *zCol, const char *zTo);
QUAY_INTERNAL SCheck *quay__stable_add_check(quay_schema *pS, STable *t,
                                             const char *zName,
                                             const char *zExpr);
/*
** Finish a live schema: type classes and defaults of every column,
** primary keys as not null, tables in name order; then the models
** `quay inspect` prints.  QUAY_ENOMEM if any builder call failed.
*/
QUAY_INTERNAL int quay__schema_finish(quay_schema *pS, quay_err *pErr);
/* The type class of a type name: *peType QUAY_T_* (0 unknown), *pnMax. */
QUAY_INTERNAL void quay__type_class(const char *zType, int *peType,
                                   int *pnMax, int *pnDigits,
                                   int *pnPlaces);
/* Non-0 for the column type of a scaled decimal (SQLite's DECIMAL_INT). */
QUAY_INTERNAL int quay__decimal_scaled_type(const char *zType);
/* A database action name ("SET NULL") as a rule, and back. */
QUAY_INTERNAL int quay__action_rule(const char *zAction);
QUAY_INTERNAL const char *quay__action_name(int eRule);
/* Read a DEFAULT's text into c->eDflt / c->zDfltVal. */
QUAY_INTERNAL void quay__scol_default(quay_schema *pS, SCol *c);

/* What Quay's DDL creates (ddl.c). */
QUAY_INTERNAL int quay__schema_declared(quay_db *pDb, quay_schema **ppS,
                                        quay_err *pErr);
/* Names Quay gives: "<table>_<cols>_<suffix>", shortened to 63 bytes with
** a hash.  zOut holds at least 64 bytes. */
QUAY_INTERNAL void quay__ddl_name(char *zOut, const char *zTable,
                                  char *const *azCol, int nCol,
                                  const char *zSuffix);
/* Non-0 when Quay made this index (its name is the one Quay gives it). */
QUAY_INTERNAL int quay__ddl_owns_index(const STable *t, const SIdx *x);
/* The DDL type of a column: "VARCHAR(20)" (or the auto key's form). */
QUAY_INTERNAL void quay__ddl_type(const Dialect *d, const SCol *c, Str *p);
/* A column definition (name, type, NOT NULL, DEFAULT; no constraints
** besides an inline primary key when bPk). */
QUAY_INTERNAL void quay__ddl_column(const Dialect *d, const SCol *c,
                                    int bPk, Str *p);
/* " REFERENCES t (c) ON DELETE .. ON UPDATE .." of a foreign key. */
QUAY_INTERNAL void quay__ddl_references(const Dialect *d, const SFk *f,
                                        Str *p);
/*
** CREATE TABLE zName (...) of table t: columns, primary key, UNIQUE
** constraints, foreign keys (those abFkOk marks, all when it is NULL) and
** CHECK constraints.
*/
QUAY_INTERNAL void quay__ddl_create_table(const Dialect *d, const STable *t,
                                          const char *zName,
                                          const unsigned char *abFkOk,
                                          Str *p);
/* CREATE [UNIQUE] INDEX of a standalone index. */
QUAY_INTERNAL void quay__ddl_create_index(const Dialect *d, const STable *t,
                                          const SIdx *x, Str *p);
/* The literal of a value in a DEFAULT clause; 0 when it has none. */
QUAY_INTERNAL int quay__ddl_literal(Str *p, int eType, const quay_value *v);

/*
** Field rules: choices, min, max (rules.c).  quay__rules_set copies and
** checks the spec's rules into f (declaration errors; f->dflt set first);
** quay__rules_free releases them; quay__rules_check holds a stored value
** (non-NULL, in the field's form) to them (validation naming m and f);
** quay__rules_ddl adds the CHECK constraints of m's fields to table t;
** quay__rules_inspect reads Quay's checks of live table t for column c
** (type class eType) into s (arena values of pS).
*/
QUAY_INTERNAL int quay__rules_set(quay_model *m, Field *f,
                                  const quay_field_spec *s, quay_err *pErr);
QUAY_INTERNAL void quay__rules_free(Field *f);
QUAY_INTERNAL int quay__rules_check(const quay_model *m, const Field *f,
                                    const quay_value *v, quay_err *pErr);
QUAY_INTERNAL void quay__rules_ddl(quay_schema *pS, STable *t,
                                   const quay_model *m);
QUAY_INTERNAL void quay__rules_inspect(quay_schema *pS, const STable *t,
                                       const SCol *c, int eType,
                                       quay_field_spec *s);

/* db:create_tables (migrate.c): create what is missing, or fail with
** QUAY_EMIGRATION naming the first difference. */
QUAY_INTERNAL int quay__migrate_create(quay_db *pDb, quay_err *pErr);
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
  EXTRA_ANN = 1,            /* an annotation (with_count too): one column */
  EXTRA_PIVOT               /* rec.pivot: the through model's columns */
};

typedef struct PlanExtra {
  const char *zName;
  int iCol, nCol;
  quay_model *pModel;       /* EXTRA_PIVOT: the through model */
  int eKind;                /* EXTRA_* */
  int iSlot;                /* EXTRA_PIVOT: record slot */
  Ann *pAnn;                /* EXTRA_ANN (borrowed from the query set) */
} PlanExtra;

typedef struct PlanStep {
  int iParent, iParentNode; /* owners: step and node (-1 for the main) */
  quay_model *pOwner;
  Rel *pRel;
  char *zAttach;
  int isCustom, toMany;
  Field *pOwnerKey;         /* owner field whose values key the step */
  int iGroupCol;            /* column holding the owner's key */
  int bSortKey;             /* no ORDER BY sent: load.c orders each
                            ** owner's children by their integer key */
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
  int bValues;              /* step 0 yields value rows (values()), no
                            ** records: run it with quay_qs_rows */
};

/*
** values.c: the statement of a values set (apAggExpr NULL) or of the n
** aggregates apAggExpr named azAgg over the view's rows, into b; a hint
** per output column in *paHint (b's arena), their number in *pnCol.
*/
QUAY_INTERNAL int quay__values_sql(Build *b, QsView *v, Expr *const *apAggExpr,
                                   const char *const *azAgg, int nAgg,
                                   int **paHint, int *pnCol);
/*
** values.c: pluck(zPath) of a values set whose rows are not its records
** (groups, distinct): the value rows with column zPath first, a cursor in
** *ppCur, *pbDone = 1.  Any other set: *pbDone = 0 and nothing is run.
*/
QUAY_INTERNAL int quay__values_pluck(quay_qs *pQs, quay_db *pDb,
                                     const char *zPath, int *pbDone,
                                     quay_cursor **ppCur, quay_err *pErr);

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
/*
** Delete the rows of pModel with keys aKey, with cascades (cascade.c).
** mFlags: QUAY_DELETE_DRY_RUN, and cascade.c's own bit for a soft delete,
** which only its public entry points set: internal callers (a pivot row
** removed from a set) pass 0 and delete for real.
*/
QUAY_INTERNAL int quay__cascade_delete(quay_db *pDb, quay_model *pModel,
                                       const quay_value *aKey, int nKey,
                                       unsigned mFlags, quay_counts **ppCounts,
                                       quay_err *pErr);
QUAY_INTERNAL int quay__on_update(quay_db *pDb, quay_model *pModel,
                                  Field *pKey, const quay_value *pOld,
                                  const quay_value *pNew, quay_err *pErr);
QUAY_INTERNAL int quay__validate(quay_model *pModel, Field *pField,
                                 const quay_value *pVal, quay_err *pErr);

QUAY_INTERNAL void quay__db_set_blockers(quay_db *pDb, char **az,
                                         quay_value *aKey, int n);
/* }================================================================== */

#endif /* QUAY_INT_H */
