/*
** include/quay.h
** Quay: an embedded ORM engine.  The one public header.
** See LICENSE
**
** This header has two parts.
**
**   1. The engine's C API (no Lua): open a database, declare models and
**      relations, build immutable query sets, run them through cursors and
**      loaders, insert/update/delete with the cascade planner.  Another
**      language binding can sit on this part alone.
**
**   2. The embedding entries for Lua hosts: luaopen_quay_core,
**      quay_openlibs, quay_push_sqlite, quay_push_sqlite_opts and
**      quay_tostring (reference.md "Embedding in a host program").
**
** docs/embedding.md shows both in use; examples/ holds tested programs.
**
** Conventions (house style):
**   - Every fallible function returns an int code: QUAY_OK (0) or a QUAY_E*
**     code; detail goes into a caller-supplied quay_err, which needs no free.
**   - Out-parameters are set to NULL on failure.
**   - A NULL object, out-parameter or required argument (a name, a
**     path, SQL text, an array whose count is > 0) is QUAY_EMISUSE naming
**     the call and the argument; the calls without a quay_err return
**     QUAY_EMISUSE, 0 or NULL for a NULL object, and void ones do nothing.
**     A call that takes ownership of an argument frees it here too.
**   - Each function's comment names one ownership mode: "takes ownership",
**     "borrowed; valid until <event>", or "caller frees with quay_x_free".
**   - Destructors accept NULL.
**
** Threads.  The rule is one Lua state and one database per thread:
**   - A quay_db and everything made from it (models, query sets, cursors,
**     plans, writers, keysets, counts) is used by one thread at a time.
**     The same holds for a lua_State into which Quay is loaded, and for
**     every Quay object (db, model, record, query set) living in it.  Never
**     share either between threads that run at the same time; moving one
**     to another thread needs the host's own synchronization (a mutex, a
**     queue, pthread_join) between the last use in the old thread and the
**     first in the new one.  Callbacks (db:on_query, busy handling) run on
**     the thread of the call that triggered them.
**   - Different threads may each use their own quay_db, and their own
**     lua_State, side by side with no locking: states, dbs and connections
**     share nothing.  The engine's only process-wide mutable state is
**       (a) the allocator hooks, written only by quay_set_allocator, which
**           must be called before any other Quay function and before a
**           second thread starts; every later allocation only reads them;
**       (b) in builds with QUAY_TEST (the test hooks below), the
**           allocation counters, which are atomics; arming a fault
**           (quay_test_fail_alloc) is for single-threaded tests only.
**     The test example.threads.tsan runs two threads side by side under
**     ThreadSanitizer without reports (examples/threads.c).
**   - SQLite must be built thread-safe (SQLITE_THREADSAFE=1 or 2; Debian's
**     libsqlite3 is built with SQLITE_THREADSAFE=1, serialized).  Each
**     thread uses its own connection; quay_db_open opens one per db, with
**     SQLITE_OPEN_NOMUTEX (SQLite's multi-thread mode: no per-call mutex,
**     which is why a db must never be used by two threads at once).
**   - A host-owned sqlite3* handed to quay_db_wrap_sqlite or
**     quay_push_sqlite belongs to the thread that uses that db: the host
**     may use the handle itself on that thread between Quay calls, but no
**     other thread may use it until the db is disconnected or freed.
**   - libpq connections follow the same rule (one per db, one thread).
*/
#ifndef QUAY_H
#define QUAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define QUAY_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define QUAY_API __attribute__((visibility("default")))
#else
#  define QUAY_API
#endif

/*
** The version this header belongs to, and as a number (SQLite's form:
** major * 1000000 + minor * 1000 + patch).  quay_libversion() and
** quay_libversion_number() give the library's own, which a host can
** compare with these to catch a header / library mismatch.
*/
#define QUAY_VERSION "0.1.0"
#define QUAY_VERSION_NUMBER 1000

struct sqlite3;
struct lua_State;

/*
** {==================================================================
** Errors
** ===================================================================
** One X-macro gives both the enum and the contract's code strings
** (reference.md "Errors").  NOMEM and MISUSE are documented additions, as is
** LAZY_LOAD (strict mode, issue 4) and CALLBACK (a host callback failed;
** the binding re-raises the host's own error).  MIGRATION: schema
** evolution refused or failed (section "Schema evolution" below).
*/
#define QUAY_ERRMAP(X)                          \
  X(OK,               "ok")                     \
  X(DECLARATION,      "declaration")            \
  X(UNKNOWN_FIELD,    "unknown_field")          \
  X(UNKNOWN_RELATION, "unknown_relation")       \
  X(BAD_LOOKUP,       "bad_lookup")             \
  X(VALIDATION,       "validation")             \
  X(NOT_FOUND,        "not_found")              \
  X(MULTIPLE,         "multiple")               \
  X(PROTECTED,        "protected")              \
  X(RESTRICTED,       "restricted")             \
  X(INTEGRITY,        "integrity")              \
  X(CONNECTION,       "connection")             \
  X(BUSY,             "busy")                   \
  X(SQL,              "sql")                    \
  X(LAZY_LOAD,        "lazy_load")              \
  X(NOMEM,            "nomem")                  \
  X(MISUSE,           "misuse")                 \
  X(CALLBACK,         "callback")               \
  X(MIGRATION,        "migration")

enum {
#define QUAY__ERRENUM(name, str) QUAY_E##name,
  QUAY_ERRMAP(QUAY__ERRENUM)
#undef QUAY__ERRENUM
  QUAY_NERRCODE
};
#define QUAY_OK QUAY_EOK

/* Non-error results of stepping functions (SQLite's SQLITE_ROW/DONE). */
#define QUAY_ROW  100
#define QUAY_DONE 101

/*
** Error detail.  Filled by every failing call; the message is copied into
** the struct, so it stays valid with no free.
*/
typedef struct quay_err {
  int code;               /* QUAY_OK or QUAY_E* */
  int line;               /* engine source line that set it (diagnostics) */
  int ext;                /* driver detail: SQLite extended code, else 0 */
  char zState[6];         /* SQLSTATE on PostgreSQL, "" otherwise */
  char zMsg[512];         /* human message naming model/field and the fix */
  char zModel[64];        /* an error about one field (every validation
                          ** error of a value): its model, else "" */
  char zField[64];        /* ... and that field (or relation), else "" */
} quay_err;

/*
** The contract string of an error code ("not_found"); "row" and "done"
** for QUAY_ROW and QUAY_DONE; "unknown" for any other number.  Static
** storage.
*/
QUAY_API const char *quay_errname(int code);

/* Reset an error to QUAY_OK. */
QUAY_API void quay_err_clear(quay_err *pErr);

/* The library's version: QUAY_VERSION and QUAY_VERSION_NUMBER of the
** build the host runs with (static storage). */
QUAY_API const char *quay_libversion(void);
QUAY_API int quay_libversion_number(void);
/* }================================================================== */


/*
** {==================================================================
** Values
** ===================================================================
** A tagged value passed into and out of the engine.  Text and blob
** pointers are borrowed: the engine copies what it keeps.  QUAY_RECORD is
** a value a binding passes where a record is accepted (`author = u`): the
** engine calls xGet to read the field it needs (a relation's target key),
** so it never needs to know the binding's record representation.
*/
enum {
  QUAY_NULL = 0, QUAY_INT, QUAY_REAL, QUAY_TEXT, QUAY_BLOB, QUAY_BOOL,
  QUAY_RECORD, QUAY_LIST, QUAY_DECIMAL, QUAY_JSON
};
/*
** QUAY_DECIMAL and QUAY_JSON carry text (u.z, n) like QUAY_TEXT:
**   QUAY_DECIMAL  an exact decimal "-12.50": an optional '-', digits, and
**                 exactly the field's places of decimals after a '.'.
**                 The engine converts the values it takes for a
**                 quay.decimal field to this form and reads decimal
**                 columns as it.  A binding may show it as a string.
**   QUAY_JSON     a JSON document (UTF-8 text).  A binding passes a
**                 document it encoded (a Lua table) as QUAY_JSON; a
**                 quay.json field takes it, or a string, number or
**                 boolean (stored as that JSON scalar), and reads as it.
** The bytes of every value whose type passes QUAY_VALUE_HAS_BYTES are
** borrowed the same way.
*/
#define QUAY_VALUE_HAS_BYTES(t) \
  ((t) == QUAY_TEXT || (t) == QUAY_BLOB || (t) == QUAY_DECIMAL || \
   (t) == QUAY_JSON)

typedef struct quay_model quay_model;
typedef struct quay_value quay_value;

/*
** Reads field zField of a binding record into *pOut (borrowed; valid for
** the duration of the engine call that asked).  Returns 0 on success, non-0
** when the record has no such value.  Must not raise or longjmp.
*/
typedef int (*quay_record_get)(void *pRec, const char *zField,
                               quay_value *pOut);

struct quay_value {
  int type;               /* QUAY_NULL .. QUAY_JSON */
  size_t n;               /* bytes of z (TEXT, BLOB, DECIMAL, JSON); items
                          ** (LIST) */
  union {
    int64_t i;            /* INT */
    double r;             /* REAL */
    int b;                /* BOOL */
    const char *z;        /* TEXT, BLOB, DECIMAL, JSON */
    const quay_value *a;  /* LIST: array of n values (no nested lists) */
    struct {
      void *p;            /* binding's record handle */
      quay_model *pModel; /* the record's model */
      quay_record_get xGet;
    } rec;                /* RECORD */
  } u;
};

/*
** Value constructors, so that a host never fills the union by hand:
** quay_writer_put(w, "title", quay_value_text("Dune"), &err).  Pointers
** are borrowed like the struct's: the text must stay valid for the call
** the value is passed to.  quay_value_text takes a NUL-terminated string
** (NULL gives QUAY_NULL), quay_value_textn n bytes; quay_value_decimal
** and quay_value_json take NUL-terminated text; quay_value_list n values
** (no nested lists), for the "in" lookup.
*/
QUAY_API quay_value quay_value_null(void);
QUAY_API quay_value quay_value_int(int64_t i);
QUAY_API quay_value quay_value_real(double r);
QUAY_API quay_value quay_value_bool(int b);
QUAY_API quay_value quay_value_text(const char *z);
QUAY_API quay_value quay_value_textn(const char *z, size_t n);
QUAY_API quay_value quay_value_blob(const void *p, size_t n);
QUAY_API quay_value quay_value_decimal(const char *z);
QUAY_API quay_value quay_value_json(const char *z);
QUAY_API quay_value quay_value_list(const quay_value *a, size_t n);
/* }================================================================== */


/*
** {==================================================================
** Allocator
** ===================================================================
** Replace the engine's allocator (libuv's uv_replace_allocator).  Call
** before any other Quay function.  Returns QUAY_EMISUSE if any argument is
** NULL.
*/
typedef void *(*quay_malloc_fn)(size_t);
typedef void *(*quay_realloc_fn)(void *, size_t);
typedef void (*quay_free_fn)(void *);
QUAY_API int quay_set_allocator(quay_malloc_fn xMalloc,
                                quay_realloc_fn xRealloc, quay_free_fn xFree);
/* }================================================================== */


/*
** {==================================================================
** Databases
** ===================================================================
*/
typedef struct quay_db quay_db;

/*
** Options of quay_db_open.  Zero-initialized, every option has its plain
** meaning (no replicas, prepared statements on, no sticky reads); the Lua
** binding fills in the documented defaults.  The replica, prepare and
** sticky options apply to client-server backends (PostgreSQL); SQLite
** accepts them and does nothing with them.
*/
#define QUAY_BUSY_KEEP (-2) /* busy_timeout_ms: leave the connection's
                          ** busy handler as it is (a host's own handler
                          ** on a wrapped handle) */
typedef struct quay_open_opts {
  int busy_timeout_ms;    /* SQLite lock wait in ms; QUAY_BUSY_KEEP; any
                          ** other value < 0 means the default 5000 */
  int strict;             /* non-0: lazy loads raise QUAY_ELAZY_LOAD */
  int no_prepare;         /* non-0: never a named prepared statement, so a
                          ** pooler in transaction mode (PgBouncer) works */
  const char *const *azReplica; /* read replica URLs; borrowed, copied by
                          ** quay_db_open */
  int nReplica;
  int sticky_ms;          /* reads stay on the primary this long after a
                          ** write on the handle; <0 means 1000 */
} quay_open_opts;

/*
** CONSTRUCTOR.  Open a database from a URL: "sqlite::memory:",
** "sqlite:<path>", "postgresql://...", "postgres://..." or a libpq keyword
** string ("host=... dbname=...").  pOpts may be NULL.  On success *ppDb is
** a new handle the caller frees with quay_db_free.  On failure *ppDb is
** NULL and pErr says why (QUAY_ECONNECTION, also for a URL no backend
** takes; QUAY_EMISUSE for a NULL URL or ppDb).
*/
QUAY_API int quay_db_open(const char *zUrl, const quay_open_opts *pOpts,
                          quay_db **ppDb, quay_err *pErr);

/*
** Check a URL without opening anything: *pzBackend gets "sqlite" or
** "postgresql" (static storage).  QUAY_ECONNECTION for a URL no driver
** takes or that libpq cannot parse.
*/
QUAY_API int quay_url_check(const char *zUrl, const char **pzBackend,
                            quay_err *pErr);

/*
** CONSTRUCTOR.  Wrap a host-owned SQLite connection.  The handle is
** borrowed: Quay never closes it; it must outlive the quay_db or be
** detached first with quay_db_disconnect.  Quay turns on foreign keys,
** sets the busy timeout (pOpts->busy_timeout_ms; QUAY_BUSY_KEEP keeps the
** host's busy handler) and turns off double-quoted string literals
** (SQLITE_DBCONFIG_DQS_DDL and _DML) on it, as on the connections it opens:
** the host's own SQL must then write strings in single quotes.  It also
** registers the SQL functions quay_rint(x) (a number to an integer, ties
** to even) and quay_dec(x, p) (a number to a decimal of p places, scaled;
** 15 significant digits, ties away from zero): qs:update's expressions
** use them.  Foreign
** keys cannot be turned on inside a transaction (SQLite ignores the
** pragma there), so wrapping a handle while the host's transaction is
** open fails with QUAY_EMISUSE (the pragma is read back).  The host may
** open transactions on the handle afterwards: see "Transactions".
** Caller frees with quay_db_free.
*/
QUAY_API int quay_db_wrap_sqlite(struct sqlite3 *pHandle,
                                 const quay_open_opts *pOpts, quay_db **ppDb,
                                 quay_err *pErr);

/*
** Close the connection but keep the schema (models, relations), so that
** objects made from the db stay valid; calls that need the connection then
** fail with QUAY_ECONNECTION ("attempt to use a closed database").
** Idempotent.  Rolls back an open transaction; its levels stay open (so
** do they when the connection is lost)
** until their owners end them (quay_db_commit fails with
** QUAY_ECONNECTION, quay_db_rollback succeeds), and every statement fails
** with QUAY_ECONNECTION meanwhile, also after quay_db_reopen.
*/
QUAY_API void quay_db_disconnect(quay_db *pDb);

/*
** Open the connection again with the URL (or borrowed handle) of
** quay_db_open.  Used after a lost connection.  The schema is kept.
*/
QUAY_API int quay_db_reopen(quay_db *pDb, quay_err *pErr);

/*
** DESTRUCTOR.  Disconnect and free everything.  NULL is a no-op.
**
** Order.  Objects made from the db point into it: cursors, writers,
** plans, loads, query sets, migrations and results.  Free them first.
** When some are still alive, quay_db_free works as sqlite3_close_v2: it
** closes the connection at once (rolling back what Quay left open and
** finalizing its cached statements) and frees the db's memory when the
** last of them is freed, so freeing them later is safe.  Until then
** their calls that need the db fail with QUAY_EMISUSE; only their
** destructors are meant to be called.  A borrowed handle can be closed
** once the children are gone (a live cursor holds its statement).
*/
QUAY_API void quay_db_free(quay_db *pDb);

/* Non-0 while the connection is open. */
QUAY_API int quay_db_is_open(const quay_db *pDb);

/* "sqlite" or "postgresql".  Static storage. */
QUAY_API const char *quay_db_backend(const quay_db *pDb);

/* Statements sent so far (reference.md db:stats().queries). */
QUAY_API int64_t quay_db_query_count(const quay_db *pDb);
/*
** Statements sent to the primary (bReplica 0) or to the replicas
** (bReplica non-0) since the db was opened; both add up to
** quay_db_query_count.
*/
QUAY_API int64_t quay_db_role_count(const quay_db *pDb, int bReplica);

/* Strict mode (lazy loads raise QUAY_ELAZY_LOAD). */
QUAY_API int quay_db_strict(const quay_db *pDb);

/*
** Statement observer: called before every statement is sent with the SQL
** text and its bound parameters (borrowed; valid during the call).  A
** non-0 return aborts the statement with QUAY_ECALLBACK.  NULL removes it.
*/
typedef int (*quay_trace_fn)(void *pArg, const char *zSql,
                             const quay_value *aParam, int nParam);
QUAY_API void quay_db_on_query(quay_db *pDb, quay_trace_fn xTrace,
                               void *pArg);

/*
** Transactions.  quay_db_begin opens a transaction, or a savepoint when one
** is open already; commit/rollback close the innermost level.
**
** A transaction Quay did not open (the host's BEGIN on a shared sqlite3
** handle, or BEGIN sent as raw SQL) is seen: Quay's outermost level is
** then a savepoint inside it, so the host's COMMIT keeps Quay's work and
** its ROLLBACK undoes it; quay_db_txn_depth counts Quay's own levels
** only.  Every multi-statement operation (bulk inserts, cascading
** deletes, create_tables, migrations) nests the same way.  The host must
** not end the transaction while a Quay level is open in it: Quay
** notices when it ends that level (its savepoint or transaction is gone)
** and fails with QUAY_EMISUSE saying so, never with success; and if a
** failed statement made the database roll the transaction back, ending
** its levels reports that (QUAY_ESQL; a rollback just succeeds).
*/
QUAY_API int quay_db_begin(quay_db *pDb, quay_err *pErr);
QUAY_API int quay_db_commit(quay_db *pDb, quay_err *pErr);
QUAY_API int quay_db_rollback(quay_db *pDb, quay_err *pErr);
QUAY_API int quay_db_txn_depth(const quay_db *pDb);

/*
** Transaction options (db:transaction(fn, opts)).  Isolation levels are
** the SQL standard's; QUAY_ISO_DEFAULT keeps the server's default.  SQLite
** has one level, serializable: it accepts QUAY_ISO_DEFAULT and
** QUAY_ISO_SERIALIZABLE and refuses the others with QUAY_EMISUSE.  A
** read-only transaction refuses writes (PostgreSQL's READ ONLY; SQLite's
** query_only pragma for its duration) with QUAY_ESQL.  Options apply to
** the outermost level only: quay_db_begin_opts inside an open transaction
** with any option set is QUAY_EMISUSE (a savepoint cannot change them).
*/
enum {
  QUAY_ISO_DEFAULT = 0, QUAY_ISO_READ_COMMITTED, QUAY_ISO_REPEATABLE_READ,
  QUAY_ISO_SERIALIZABLE
};
typedef struct quay_txn_opts {
  int eIsolation;           /* QUAY_ISO_* */
  int bReadOnly;            /* non-0: READ ONLY */
} quay_txn_opts;
/* quay_db_begin with options; pOpts NULL is quay_db_begin. */
QUAY_API int quay_db_begin_opts(quay_db *pDb, const quay_txn_opts *pOpts,
                                quay_err *pErr);
/* Non-0 while the open transaction is read-only. */
QUAY_API int quay_db_txn_readonly(const quay_db *pDb);

/*
** Raw SQL with '?' placeholders on every backend (translated to $n on
** PostgreSQL).  quay_db_execute reports rows changed in *pnChanged (may be
** NULL).
*/
QUAY_API int quay_db_execute(quay_db *pDb, const char *zSql,
                             const quay_value *aParam, int nParam,
                             int64_t *pnChanged, quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Cursors
** ===================================================================
** A cursor streams the rows of one statement.  Values read from it are
** borrowed; valid until the next step or close.
*/
typedef struct quay_cursor quay_cursor;

/* CONSTRUCTOR.  Raw query with '?' placeholders.  Caller frees with
** quay_cursor_close. */
QUAY_API int quay_db_query(quay_db *pDb, const char *zSql,
                           const quay_value *aParam, int nParam,
                           quay_cursor **ppCur, quay_err *pErr);

/* Advance: QUAY_ROW, QUAY_DONE, or an error code. */
QUAY_API int quay_cursor_step(quay_cursor *pCur, quay_err *pErr);
QUAY_API int quay_cursor_ncol(const quay_cursor *pCur);
/* Column name (borrowed; valid until close). */
QUAY_API const char *quay_cursor_colname(quay_cursor *pCur, int iCol);
/*
** Column value of the current row.  Columns that map to a declared field
** come typed by the field (booleans as QUAY_BOOL, numbers as QUAY_REAL);
** raw columns by the driver's own type.
*/
QUAY_API void quay_cursor_value(quay_cursor *pCur, int iCol,
                                quay_value *pOut);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_cursor_close(quay_cursor *pCur);
/* }================================================================== */


/*
** {==================================================================
** Schema declaration
** ===================================================================
*/
enum {                    /* field types (reference.md "Fields") */
  QUAY_T_ID = 1, QUAY_T_INTEGER, QUAY_T_NUMBER, QUAY_T_STRING, QUAY_T_TEXT,
  QUAY_T_BOOLEAN, QUAY_T_DATETIME, QUAY_T_BLOB, QUAY_T_DATE, QUAY_T_DECIMAL,
  QUAY_T_JSON, QUAY_T_UUID
};
#define QUAY_T_LAST QUAY_T_UUID

/*
** What a field type allows (quay_type_flags).  Every type is described by
** one entry of the engine's type table (engine/types.c); bindings ask it
** instead of listing types.
*/
#define QUAY_TF_NUMERIC    0x0001  /* sum, avg and arithmetic apply */
#define QUAY_TF_ORDERED    0x0002  /* lt/gt, between, min, max */
#define QUAY_TF_TEXT       0x0004  /* text lookups (contains, ...) */
#define QUAY_TF_DATE       0x0008  /* __year/__month/__day, quay.trunc */
#define QUAY_TF_KEY        0x0010  /* may be a primary or referenced key */
#define QUAY_TF_NORMALIZES 0x0020  /* the engine rewrites a given value
                                   ** into a normal form ("2.5" into
                                   ** "2.50"): read it back after a write */
#define QUAY_TF_GENERATED  0x0040  /* the engine generates a value when
                                   ** none is given (uuid) */
#define QUAY_TF_PRECISION  0x0080  /* declared with digits and places */

/* The QUAY_T_* type whose contract name is zName ("decimal"), or 0. */
QUAY_API int quay_type_by_name(const char *zName);
/* QUAY_TF_* flags of a type (0 for an unknown type). */
QUAY_API unsigned quay_type_flags(int eType);

enum {                    /* relation kinds */
  QUAY_R_BELONGS_TO = 1, QUAY_R_ONE_TO_ONE, QUAY_R_MANY_TO_MANY,
  QUAY_R_HAS_MANY, QUAY_R_HAS_ONE, QUAY_R_THROUGH, QUAY_R_REVERSE
};

enum {                    /* on_delete / on_update rules */
  QUAY_CASCADE = 1, QUAY_SET_NULL, QUAY_SET_DEFAULT, QUAY_RESTRICT,
  QUAY_PROTECT, QUAY_NO_ACTION
};

/* Field and relation flags (mFlags). */
#define QUAY_F_NULL          0x0001  /* NULL allowed */
#define QUAY_F_UNIQUE        0x0002
#define QUAY_F_INDEX         0x0004
#define QUAY_F_PK            0x0008  /* primary key */
#define QUAY_F_AUTO_NOW_ADD  0x0010
#define QUAY_F_AUTO_NOW      0x0020
#define QUAY_F_DEFAULT       0x0040  /* dflt holds a static default */
#define QUAY_F_DYN_DEFAULT   0x0080  /* binding computes the default */
#define QUAY_F_NO_INDEX      0x0100  /* belongs_to: index = false */
#define QUAY_F_SKIP_REVERSE  0x0200
#define QUAY_F_IMPLICIT      0x0400  /* added by the engine (implicit id) */
#define QUAY_F_FKCOL         0x0800  /* a relation's key column */

typedef struct quay_field_spec {
  const char *zName;        /* field name (required) */
  int eType;                /* QUAY_T_* */
  unsigned mFlags;          /* QUAY_F_* */
  const char *zColumn;      /* database column, NULL = zName */
  const char *zDescription; /* NULL = none */
  int nMax;                 /* string max length in code points, 0 = none */
  int nDigits, nPlaces;     /* decimal: digits in all (1 to 18) and after
                            ** the point (0 to nDigits); else 0 */
  quay_value dflt;          /* with QUAY_F_DEFAULT */
  double rSeq;              /* declaration sequence number */
  const char *zRenamedFrom; /* old field or column name (migrations), or
                            ** NULL */
  const quay_value *aChoice;/* choices: the nChoice values the field may
                            ** hold (copied), or NULL */
  int nChoice;
  const quay_value *pMin;   /* min / max of a numeric field, inclusive */
  const quay_value *pMax;   /* (copied), or NULL */
} quay_field_spec;

typedef struct quay_rel_spec {
  const char *zName;        /* accessor name (required) */
  int eKind;                /* QUAY_R_* (not REVERSE) */
  const char *zTarget;      /* target model name or "self"; NULL for THROUGH */
  unsigned mFlags;          /* QUAY_F_NULL, UNIQUE, NO_INDEX, SKIP_REVERSE,
                            ** DEFAULT, INDEX */
  const char *zColumn;      /* belongs_to column (default <name>_id) */
  const char *zToField;     /* belongs_to target field (default pk) */
  const char *zRelatedName; /* reverse accessor name */
  const char *zDescription;
  const char *zTable;       /* many_to_many join table */
  const char *zSourceKey;   /* many_to_many source column / through relation */
  const char *zTargetKey;   /* many_to_many target column / through relation */
  const char *zThrough;     /* many_to_many custom pivot model */
  const char *zForeignKey;  /* has_many/has_one: FK column on the target */
  const char *zLocalKey;    /* has_many/has_one: key on this model */
  const char *const *azPath;/* through: relation names hop by hop */
  int nPath;
  int eOnDelete;            /* QUAY_CASCADE.., 0 = kind's default */
  int eOnUpdate;            /* 0 = CASCADE */
  quay_value dflt;          /* belongs_to default key (QUAY_F_DEFAULT) */
  double rSeq;
  const char *zRenamedFrom; /* belongs_to/one_to_one: old relation or
                            ** column name (migrations), or NULL */
} quay_rel_spec;

/*
** CONSTRUCTOR.  Declare a model.  zTable NULL gives the default name
** (snake_case plus "s").  The model is owned by the db (borrowed; valid
** until quay_db_free).  An implicit `id` primary key is added at resolve
** time unless a field declares QUAY_F_PK.  A name may be declared once,
** except that a model whose declaration made quay_db_resolve fail (it
** named an unknown model, say) may be declared again: the new model
** replaces it, in its place, and the old quay_model is freed.
*/
QUAY_API int quay_model_new(quay_db *pDb, const char *zName,
                            const char *zTable, const char *zDescription,
                            quay_model **ppModel, quay_err *pErr);
QUAY_API int quay_model_add_field(quay_model *pModel,
                                  const quay_field_spec *pSpec,
                                  quay_err *pErr);
QUAY_API int quay_model_add_relation(quay_model *pModel,
                                     const quay_rel_spec *pSpec,
                                     quay_err *pErr);
/*
** CONSTRUCTOR.  Declare a model in one call: quay_model_new (default
** table), every field of aField[0..nField) and relation of
** aRel[0..nRel), then quay_model_finish.  The specs are copied; static
** arrays with designated initializers name only what is set:
**   static const quay_field_spec aBook[] = {
**     {.zName = "title", .eType = QUAY_T_STRING},
**     {.zName = "year", .eType = QUAY_T_INTEGER}};
**   static const quay_rel_spec aBookRel[] = {
**     {.zName = "author", .eKind = QUAY_R_BELONGS_TO,
**      .zTarget = "Author", .zRelatedName = "books"}};
** On failure nothing stays declared (quay_model_discard).  The model is
** owned by the db, as quay_model_new's.
*/
QUAY_API int quay_model_declare(quay_db *pDb, const char *zName,
                                const quay_field_spec *aField, int nField,
                                const quay_rel_spec *aRel, int nRel,
                                quay_model **ppModel, quay_err *pErr);
/*
** Finish a declaration: adds the implicit `id` unless a field is the
** primary key.  Field indexes are stable from then on (a has_many may
** append its key column to its target at resolve).  Idempotent.
*/
QUAY_API int quay_model_finish(quay_model *pModel, quay_err *pErr);
/*
** Undo a declaration that failed half-way: remove the model from its db and
** free it.  Only for a model not yet resolved; QUAY_EMISUSE otherwise.
*/
QUAY_API int quay_model_discard(quay_model *pModel);
/*
** soft_delete: adds the nullable datetime field `deleted_at`; rows with it
** set are left out of every read of the model (queries, relation access,
** prefetch, select_related, counts, aggregates, where_has) unless a query
** set asks for them (quay_qs_with_deleted).  Before the model resolves.
*/
QUAY_API int quay_model_set_soft_delete(quay_model *pModel, quay_err *pErr);
/* Non-0 for a soft_delete model. */
QUAY_API int quay_model_soft_delete(const quay_model *pModel);
/* unique_together: azField names fields or relations of the model. */
QUAY_API int quay_model_add_unique(quay_model *pModel,
                                   const char *const *azField, int nField,
                                   quay_err *pErr);
/*
** The model option renamed_from: the model's old name or old table name
** (copied), so that a migration renames that table instead of dropping
** it and creating this one.  Before the model is first used.
*/
QUAY_API int quay_model_set_renamed_from(quay_model *pModel,
                                         const char *zOld, quay_err *pErr);

/* A composite index (the `indexes` option): azField names fields or
** belongs_to / one_to_one relations of the model, in index order. */
QUAY_API int quay_model_add_index(quay_model *pModel,
                                  const char *const *azField, int nField,
                                  quay_err *pErr);

/*
** Resolve every string reference, create reverse accessors and check every
** rule (reference.md "db:check()").  Runs lazily before the first use; explicit
** calls are cheap when nothing changed.  QUAY_EDECLARATION names the model
** and relation concerned.  All or nothing: a failing resolve undoes what
** it did, marks the model the error is about as failed (it may then be
** declared again, quay_model_new), and fails the same way on every call
** until the declarations are fixed.
*/
QUAY_API int quay_db_resolve(quay_db *pDb, quay_err *pErr);

/* Bumped whenever a resolve changed the schema (bindings rebuild caches). */
QUAY_API int quay_db_schema_version(const quay_db *pDb);

/* Models in declaration order; lookup by name (NULL if none). */
QUAY_API int quay_db_model_count(const quay_db *pDb);
QUAY_API quay_model *quay_db_model_at(const quay_db *pDb, int i);
QUAY_API quay_model *quay_db_model(const quay_db *pDb, const char *zName);

/*
** DDL: create every table, join table, index and foreign key of the
** declared models that does not exist yet, in one transaction.  When a
** table that exists differs from its model, nothing is created and the
** call fails with QUAY_EMIGRATION naming the first difference (the fix is
** quay_db_migrate).  Idempotent.
*/
QUAY_API int quay_db_create_tables(quay_db *pDb, quay_err *pErr);
/* DROP TABLE IF EXISTS for every declared table, children first. */
QUAY_API int quay_db_drop_tables(quay_db *pDb, quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Schema introspection
** ===================================================================
** All strings are borrowed; valid until quay_db_free.
*/
typedef struct quay_field_info {
  const char *zName, *zColumn, *zDescription;
  int eType;
  unsigned mFlags;
  int nMax;
  int nDigits, nPlaces;     /* decimal precision, else 0 */
  int iRel;                 /* FK column: index of its relation, else -1 */
  const quay_value *pDefault; /* static default or NULL */
  const quay_value *aChoice;/* choices (nChoice values), or NULL */
  int nChoice;
  const quay_value *pMin, *pMax; /* numeric bounds, or NULL */
} quay_field_info;

typedef struct quay_rel_info {
  const char *zName, *zDescription, *zRelatedName;
  int eKind;                /* QUAY_R_*; REVERSE for registered accessors */
  int eForwardKind;         /* for REVERSE: the kind of the forward side */
  int toMany;               /* non-0 when the accessor yields a set */
  int writable;             /* assignable to-one (belongs_to, one_to_one) */
  quay_model *pTarget;
  const char *zThrough;     /* pivot model or join table name, else NULL */
  const char *zColumn;      /* belongs_to/one_to_one column, else NULL */
  int iFkField;             /* this model's FK column field, else -1 */
  int iTargetKey;           /* field of pTarget a record value supplies */
  int iOwnerKey;            /* field of this model whose value scopes sets */
  int eOnDelete, eOnUpdate;
  int nullable;             /* FK may be NULL (reverse: the child's FK) */
  int hasPivot;             /* many_to_many with a custom through model */
  quay_model *pPivot;       /* that through model */
  int readOnly;             /* THROUGH paths */
  int iPeer;                /* REVERSE: the forward relation's index in
                            ** pTarget; declared: its reverse's index in
                            ** pTarget (hidden ones too), else -1 */
} quay_rel_info;

/* Contract names (static storage): a field type ("string"), a relation
** kind ("belongs_to", "reverse"), a rule ("CASCADE"); NULL if unknown. */
QUAY_API const char *quay_type_name(int eType);
QUAY_API const char *quay_kind_name(int eKind);
QUAY_API const char *quay_rule_name(int eRule);

QUAY_API const char *quay_model_name(const quay_model *pModel);
QUAY_API const char *quay_model_table(const quay_model *pModel);
QUAY_API const char *quay_model_description(const quay_model *pModel);
QUAY_API quay_db *quay_model_db(const quay_model *pModel);
QUAY_API int quay_model_field_count(const quay_model *pModel);
QUAY_API int quay_model_field(const quay_model *pModel, int i,
                              quay_field_info *pOut);
QUAY_API int quay_model_pk(const quay_model *pModel);
/* Relations: declared ones (in order), then reverse accessors. */
QUAY_API int quay_model_relation_count(const quay_model *pModel);
QUAY_API int quay_model_relation(const quay_model *pModel, int i,
                                 quay_rel_info *pOut);
/*
** Composite indexes (bUnique 0: the `indexes` option) and unique_together
** entries (bUnique 1): their number, and the names of entry i as declared
** (*pazName borrowed; *pn names).  QUAY_EMISUSE for a bad index.
*/
QUAY_API int quay_model_index_count(const quay_model *pModel, int bUnique);
QUAY_API int quay_model_index(const quay_model *pModel, int bUnique, int i,
                              const char *const **pazName, int *pn);

enum { QUAY_M_NONE = 0, QUAY_M_FIELD, QUAY_M_RELATION };
/*
** Look a name up: a field by name or column, or a relation.  Returns
** QUAY_M_FIELD / QUAY_M_RELATION with *piIndex set, or QUAY_M_NONE.
*/
QUAY_API int quay_model_member(const quay_model *pModel, const char *zName,
                               int *piIndex);
/* }================================================================== */


/*
** {==================================================================
** Schema evolution (reference.md "Schema evolution")
** ===================================================================
** quay_db_inspect reads the live schema: the tables in name order with
** their columns, indexes, foreign keys and CHECK constraints, as the
** database reports them (its own type names), Quay's bookkeeping table
** quay_migrations left out; and the models a model script would declare
** for them (`quay inspect`).  quay_db_schema_diff compares the live
** schema with the declared models and returns the steps that bring the
** database to the models; quay_db_migrate runs them.  quay_migration_apply
** runs the steps of a versioned migration file and records it.
**
** The comparison ("what the models hold") looks at columns by type class
** (varchar(n) and string {max = n} are the same; integer and bigint
** primary keys, with or without AUTOINCREMENT, are the same), NULL,
** literal defaults and primary key; at indexes by columns, order and
** uniqueness (never by name); at foreign keys by columns, referenced
** table and columns and ON UPDATE (the database's ON DELETE is not
** compared: Quay applies on_delete itself).  Indexes and CHECK
** constraints Quay did not make, default expressions (now(), nextval)
** and columns of types Quay has no field type for are left as they are.
*/
typedef struct quay_schema quay_schema;

/*
** CONSTRUCTOR.  Read the live schema of pDb.  Caller frees with
** quay_schema_free.  Every string of the schema is borrowed; valid until
** quay_schema_free.
*/
QUAY_API int quay_db_inspect(quay_db *pDb, quay_schema **ppSchema,
                             quay_err *pErr);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_schema_free(quay_schema *pSchema);

typedef struct quay_table_info {
  const char *zName;
  int nColumn, nIndex, nForeignKey, nCheck;
} quay_table_info;

typedef struct quay_column_info {
  const char *zName;
  const char *zType;        /* the backend's own type name */
  int bNull;                /* NULL allowed */
  const char *zDefault;     /* DEFAULT as the database keeps it, or NULL */
  int iPk;                  /* 1-based position in the primary key, or 0 */
  int bAuto;                /* the database generates it (rowid alias,
                            ** identity, serial) */
} quay_column_info;

typedef struct quay_index_info {
  const char *zName;
  const char *const *azColumn; /* in index order; NULL for an expression */
  int nColumn;
  int bUnique;
  int bConstraint;          /* a UNIQUE constraint of the table */
} quay_index_info;

typedef struct quay_fkey_info {
  const char *zName;        /* constraint name, or NULL (SQLite) */
  const char *const *azColumn; /* nColumn columns of this table */
  const char *const *azTo;  /* and the columns they refer to */
  int nColumn;
  const char *zTable;       /* the referenced table */
  const char *zOnDelete, *zOnUpdate; /* "NO ACTION", "CASCADE", ... */
} quay_fkey_info;

/* Tables in name order; QUAY_EMISUSE for an index out of range. */
QUAY_API int quay_schema_table_count(const quay_schema *pSchema);
QUAY_API int quay_schema_table(const quay_schema *pSchema, int iTable,
                               quay_table_info *pOut);
QUAY_API int quay_schema_column(const quay_schema *pSchema, int iTable,
                                int i, quay_column_info *pOut);
QUAY_API int quay_schema_index(const quay_schema *pSchema, int iTable, int i,
                               quay_index_info *pOut);
QUAY_API int quay_schema_foreign_key(const quay_schema *pSchema, int iTable,
                                     int i, quay_fkey_info *pOut);
/* The expression of CHECK constraint i (without CHECK and its parens). */
QUAY_API const char *quay_schema_check(const quay_schema *pSchema,
                                       int iTable, int i);

/*
** The models `quay inspect` prints, one per table (reference.md): model names
** are table names in CamelCase, singular where the name ends in "s";
** foreign keys become belongs_to (one_to_one when unique); a table with
** exactly two foreign keys, at most an auto `id` besides and a unique
** pair becomes a through model, and the two models it joins get a
** many_to_many through it.  A table Quay cannot model (no single-column
** primary key) has isSkipped set and zNote says why.  Fields and
** relations come as the declaration specs quay_model_add_field and
** quay_model_add_relation take (rSeq orders them as the columns are), so
** a binding can print them or declare them as they are.
*/
typedef struct quay_model_gen {
  const char *zName;        /* model name */
  const char *zTable;       /* the table (always set) */
  int bDefaultTable;        /* zTable is the model name's default table */
  int nField, nRelation, nUnique;
  int isSkipped;            /* not declarable; see zNote */
  const char *zNote;        /* what the script should say about it, or NULL */
  int nIndex;               /* composite non-unique indexes (indexes = ...) */
} quay_model_gen;
QUAY_API int quay_schema_model_count(const quay_schema *pSchema);
QUAY_API int quay_schema_model(const quay_schema *pSchema, int iModel,
                               quay_model_gen *pOut);
QUAY_API int quay_schema_model_field(const quay_schema *pSchema, int iModel,
                                     int i, quay_field_spec *pOut);
QUAY_API int quay_schema_model_relation(const quay_schema *pSchema,
                                        int iModel, int i,
                                        quay_rel_spec *pOut);
/* unique_together entry i: the names of its fields and relations. */
QUAY_API int quay_schema_model_unique(const quay_schema *pSchema, int iModel,
                                      int i, const char *const **pazName,
                                      int *pnName);
/* indexes entry i (a composite index that is not unique): the names of
** its fields and relations, in the index's order. */
QUAY_API int quay_schema_model_index(const quay_schema *pSchema, int iModel,
                                     int i, const char *const **pazName,
                                     int *pnName);

/*
** A migration: a list of steps, each one change with the SQL that makes
** it.  Steps come from quay_db_schema_diff (or quay_db_migrate), or are
** added one by one (a versioned migration file read back).
*/
typedef struct quay_migration quay_migration;

enum {                    /* step kinds (reference.md step.op) */
  QUAY_OP_CREATE_TABLE = 1, QUAY_OP_DROP_TABLE, QUAY_OP_RENAME_TABLE,
  QUAY_OP_ADD_COLUMN, QUAY_OP_DROP_COLUMN, QUAY_OP_RENAME_COLUMN,
  QUAY_OP_ALTER_COLUMN, QUAY_OP_CREATE_INDEX, QUAY_OP_DROP_INDEX,
  QUAY_OP_ADD_CONSTRAINT, QUAY_OP_DROP_CONSTRAINT
};
/* "create_table" ..., NULL if unknown; and back (0 if unknown). */
QUAY_API const char *quay_op_name(int eOp);
QUAY_API int quay_op_code(const char *zName);

typedef struct quay_step_info {
  int eOp;                  /* QUAY_OP_* */
  const char *zModel;       /* the model whose table changes, or NULL */
  const char *zTable;       /* the table */
  const char *zColumn;      /* the column, index or constraint, or NULL */
  const char *zWhat;        /* the change in the schema's names, or NULL */
  int nSql;                 /* statements (0: made by another step's
                            ** rebuild of the same table) */
  int bDestructive;         /* drops data or narrows a type */
  int bRebuild;             /* rebuilds its table (SQLite): foreign keys
                            ** are off while the migration runs */
} quay_step_info;

/* CONSTRUCTOR.  An empty migration.  Caller frees with
** quay_migration_free. */
QUAY_API int quay_migration_new(quay_db *pDb, quay_migration **ppMig,
                                quay_err *pErr);
/* Append a step (every string copied; azSql holds pStep->nSql). */
QUAY_API int quay_migration_add(quay_migration *pMig,
                                const quay_step_info *pStep,
                                const char *const *azSql, quay_err *pErr);
QUAY_API int quay_migration_count(const quay_migration *pMig);
/* Step i; strings borrowed, valid until quay_migration_free. */
QUAY_API int quay_migration_step(const quay_migration *pMig, int i,
                                 quay_step_info *pOut);
QUAY_API const char *quay_migration_sql(const quay_migration *pMig,
                                        int iStep, int iSql);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_migration_free(quay_migration *pMig);

/*
** CONSTRUCTOR.  The steps from the live schema to the declared models
** (empty when they agree).  Renames come only from renamed_from.  Caller
** frees with quay_migration_free.
*/
QUAY_API int quay_db_schema_diff(quay_db *pDb, quay_migration **ppMig,
                                 quay_err *pErr);

#define QUAY_MIGRATE_ALLOW_DROP 0x0001  /* allow destructive steps */
#define QUAY_MIGRATE_DRY_RUN    0x0002  /* check and plan, change nothing */
/*
** Bring the database to the declared models in one transaction: lock
** (PostgreSQL advisory lock, SQLite write lock), diff inside the lock,
** check (destructive steps need QUAY_MIGRATE_ALLOW_DROP; a non-null
** column without a default cannot be added to a table with rows), run
** every step.  Any failure leaves schema and data as they were
** (QUAY_EMIGRATION for a refused step).  On SQLite, a migration that
** rebuilds a table turns foreign keys off for its transaction (so it
** cannot run inside db:transaction) and checks them before committing.
** *ppDone (may be NULL) receives the steps run, or planned with DRY_RUN;
** caller frees with quay_migration_free.
*/
QUAY_API int quay_db_migrate(quay_db *pDb, unsigned mFlags,
                             quay_migration **ppDone, quay_err *pErr);

/*
** Versioned migration files.  quay_migration_apply runs the steps of
** pMig, then xData (a data migration, may be NULL; non-0 fails with the
** code it sets in pErr), in one transaction under the migration lock, and
** records zName with zChecksum in quay_migrations (created when missing).
** Returns QUAY_DONE, changing nothing, when zName is recorded already with
** that checksum (another process applied it while this one waited), and
** QUAY_EMIGRATION when it is recorded with another one.  pMig and pOpts
** are borrowed (only during the call); xData runs inside the transaction
** and may use pDb.
*/
typedef struct quay_apply_opts {
  const char *zName;        /* the file's name, "0002_add_editor" */
  const char *zChecksum;    /* quay_checksum of the file's text */
  int (*xData)(void *pArg, quay_db *pDb, quay_err *pErr);
  void *pDataArg;
} quay_apply_opts;
QUAY_API int quay_migration_apply(quay_db *pDb, quay_migration *pMig,
                                  const quay_apply_opts *pOpts,
                                  quay_err *pErr);
/* The checksum quay_migrations keeps: 16 hex digits and a NUL. */
QUAY_API void quay_checksum(const void *p, size_t n, char zOut[17]);
/*
** CONSTRUCTOR.  A cursor over the applied migrations in the order they
** were applied: columns name, checksum, applied_at (no rows when the
** table does not exist).  Caller frees with quay_cursor_close.
*/
QUAY_API int quay_db_applied_migrations(quay_db *pDb, quay_cursor **ppCur,
                                        quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Conditions
** ===================================================================
** A condition tree built by the binding from its own data, then handed to
** quay_qs_filter (which takes ownership).  Leaves name a path
** ("author__email__endswith") and carry values; names are checked when the
** tree is attached to a query set.
*/
typedef struct quay_cond quay_cond;
typedef struct quay_expr quay_expr;   /* see "Expressions" */
enum { QUAY_C_AND = 1, QUAY_C_OR, QUAY_C_NOT };

/*
** How deep a condition tree may nest: groups inside groups, the root group
** counting 1, and every relation hop in a leaf's path counting
** QUAY_COND_HOP_DEPTH more (each hop is a nested subquery).  Deeper trees
** are refused with QUAY_EMISUSE by quay_qs_filter, so that every tree
** Quay accepts parses on every backend.  SQLite's parser stack (100
** entries) overflowed at 31 to 33 levels in the SQL Quay writes (a hop
** costs about 2.7 levels); 28 keeps a margin (spec/conditions_spec.lua).
*/
#define QUAY_MAX_COND_DEPTH 28
#define QUAY_COND_HOP_DEPTH 3
/*
** Most children of one group (the names of one table, the alternatives
** of one quay.any after flattening); a group of more than 32 counts one
** level more, for the parentheses that keep SQLite's expression trees
** low.  Wider groups are refused with QUAY_EMISUSE.
*/
#define QUAY_MAX_COND_WIDTH 1024

/* CONSTRUCTOR.  A group node; caller frees with quay_cond_free unless
** ownership passes to a parent or a query set. */
QUAY_API int quay_cond_group(int eOp, quay_cond **ppCond, quay_err *pErr);
/* A leaf "path = value"; the value is copied (lists too). */
QUAY_API int quay_cond_leaf(const char *zPath, const quay_value *pVal,
                            quay_cond **ppCond, quay_err *pErr);
/* Append a child to a group.  Takes ownership of pChild, also on failure. */
QUAY_API int quay_cond_add(quay_cond *pGroup, quay_cond *pChild,
                           quay_err *pErr);
/* A leaf "path <lookup> expression" (quay.F): takes ownership of pExpr,
** also on failure.  Only eq, ne, lt, lte, gt, gte take expressions. */
QUAY_API int quay_cond_leaf_expr(const char *zPath, quay_expr *pExpr,
                                 quay_cond **ppCond, quay_err *pErr);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_cond_free(quay_cond *pCond);
/* }================================================================== */


/*
** {==================================================================
** Expressions
** ===================================================================
** quay.F columns, constants, arithmetic, aggregates and date truncation
** (docs/reference.md "Aggregates, annotations, values and expressions").
** Built by the binding, handed to a query set (which takes ownership and
** checks every name against the schema there).
*/
enum { QUAY_X_ADD = 1, QUAY_X_SUB, QUAY_X_MUL, QUAY_X_DIV };
enum {
  QUAY_AGG_COUNT = 1, QUAY_AGG_SUM, QUAY_AGG_AVG, QUAY_AGG_MIN, QUAY_AGG_MAX,
  QUAY_AGG_EXISTS
};
enum { QUAY_UNIT_YEAR = 1, QUAY_UNIT_MONTH, QUAY_UNIT_DAY };

/* CONSTRUCTOR (each): caller frees with quay_expr_free unless ownership
** passes to another expression, a condition or a query set. */
/* A column: a field path across to-one relations, or an annotation name. */
QUAY_API int quay_expr_col(const char *zPath, quay_expr **ppExpr,
                           quay_err *pErr);
/* A constant (copied). */
QUAY_API int quay_expr_value(const quay_value *pVal, quay_expr **ppExpr,
                             quay_err *pErr);
/* a <op> b, op QUAY_X_*.  Takes ownership of pA and pB, also on failure. */
QUAY_API int quay_expr_binary(int eOp, quay_expr *pA, quay_expr *pB,
                              quay_expr **ppExpr, quay_err *pErr);
/*
** An aggregate (QUAY_AGG_*) over a path (NULL: the rows themselves, for
** COUNT).  pFilter (taken, also on failure; may be NULL) keeps only the
** related rows matching it; its paths start at the annotated model.
** pDefault (copied; may be NULL) is the result for an empty set.
*/
QUAY_API int quay_expr_agg(int eFunc, const char *zPath, quay_cond *pFilter,
                           int bDistinct, const quay_value *pDefault,
                           quay_expr **ppExpr, quay_err *pErr);
/* A datetime/date field path truncated to a QUAY_UNIT_*. */
QUAY_API int quay_expr_trunc(int eUnit, const char *zPath, quay_expr **ppExpr,
                             quay_err *pErr);
/* As an order_by term: descending when bDesc. */
QUAY_API void quay_expr_set_desc(quay_expr *pExpr, int bDesc);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_expr_free(quay_expr *pExpr);
/* }================================================================== */


/*
** {==================================================================
** Query sets
** ===================================================================
** Immutable and reference counted: every builder returns a new set that
** shares its parent.  Caller frees each with quay_qs_free.
*/
typedef struct quay_qs quay_qs;

QUAY_API int quay_qs_new(quay_model *pModel, quay_qs **ppQs, quay_err *pErr);
QUAY_API quay_qs *quay_qs_ref(quay_qs *pQs);
/* DESTRUCTOR (drops one reference).  NULL is a no-op. */
QUAY_API void quay_qs_free(quay_qs *pQs);
QUAY_API quay_model *quay_qs_model(const quay_qs *pQs);

/* filter / exclude.  Takes ownership of pCond, also on failure. */
QUAY_API int quay_qs_filter(quay_qs *pQs, quay_cond *pCond, int bExclude,
                            quay_qs **ppOut, quay_err *pErr);
/* filter { [zPath] = val }: one condition (the value is copied). */
QUAY_API int quay_qs_where(quay_qs *pQs, const char *zPath, quay_value val,
                           quay_qs **ppOut, quay_err *pErr);
/*
** where_has / where_doesnt_have.  pCond (owned, may be NULL) applies to the
** related rows, or pSub (borrowed; a query set of the related model) does.
*/
QUAY_API int quay_qs_where_has(quay_qs *pQs, const char *zRel,
                               quay_cond *pCond, quay_qs *pSub, int bNot,
                               quay_qs **ppOut, quay_err *pErr);
/* order_by: terms like "-views", "author__name"; replaces earlier order. */
QUAY_API int quay_qs_order_by(quay_qs *pQs, const char *const *azTerm,
                              int nTerm, quay_qs **ppOut, quay_err *pErr);
QUAY_API int quay_qs_limit(quay_qs *pQs, int64_t n, quay_qs **ppOut,
                           quay_err *pErr);
QUAY_API int quay_qs_offset(quay_qs *pQs, int64_t n, quay_qs **ppOut,
                            quay_err *pErr);

enum { QUAY_LOAD_JOIN = 1, QUAY_LOAD_BATCH, QUAY_LOAD_AUTO };
/*
** select_related (JOIN), prefetch_related (BATCH) or with (AUTO) of one
** path.  For BATCH, pSub (borrowed, may be NULL) filters/orders the loaded
** set, and zTo (may be NULL) names the attribute it lands in.
*/
QUAY_API int quay_qs_load(quay_qs *pQs, const char *zPath, int eHow,
                          quay_qs *pSub, const char *zTo, quay_qs **ppOut,
                          quay_err *pErr);
/* with_count: adds the annotation "<path>_count". */
QUAY_API int quay_qs_with_count(quay_qs *pQs, const char *zPath,
                                quay_qs **ppOut, quay_err *pErr);
/*
** annotate: one named value per record (or per group after values);
** takes ownership of pExpr, also on failure.  The name may not be a field,
** relation or earlier annotation (QUAY_EMISUSE).
*/
QUAY_API int quay_qs_annotate(quay_qs *pQs, const char *zName,
                              quay_expr *pExpr, quay_qs **ppOut,
                              quay_err *pErr);
/* order_by with expression terms (quay_expr_set_desc); takes ownership of
** every term, also on failure.  Replaces earlier order. */
QUAY_API int quay_qs_order_by_expr(quay_qs *pQs, quay_expr *const *apTerm,
                                   int nTerm, quay_qs **ppOut,
                                   quay_err *pErr);
/*
** values: rows become plain value rows with the columns azName[0..n): a
** column is the path azName[i] (to-one paths; a path ending at a relation
** gives its key) when apExpr[i] is NULL, else the computed apExpr[i]
** (taken, also on failure).  n = 0: every field.  Annotations after values
** group the rows by these columns.
*/
QUAY_API int quay_qs_values(quay_qs *pQs, const char *const *azName,
                            quay_expr *const *apExpr, int n,
                            quay_qs **ppOut, quay_err *pErr);
/* distinct: no two rows (of values) alike. */
QUAY_API int quay_qs_distinct(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr);
/* Non-0 when the set yields value rows (values() somewhere in it). */
QUAY_API int quay_qs_is_values(const quay_qs *pQs);
/* The model a relation path from pModel reaches (unknown_relation). */
QUAY_API int quay_model_path_target(quay_model *pModel, const char *zPath,
                                    quay_model **ppTarget, quay_err *pErr);
/* with_deleted / only_deleted of a soft_delete model's set. */
enum { QUAY_DELETED_INCLUDE = 1, QUAY_DELETED_ONLY };
QUAY_API int quay_qs_with_deleted(quay_qs *pQs, int eMode, quay_qs **ppOut,
                                  quay_err *pErr);
/* strict: lazy loads of records from this set raise QUAY_ELAZY_LOAD. */
QUAY_API int quay_qs_strict(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr);
QUAY_API int quay_qs_is_strict(const quay_qs *pQs);
/*
** using("primary"): every statement that reads this set (its load, count,
** exists, pluck) goes to the primary, never to a read replica.
*/
QUAY_API int quay_qs_using_primary(quay_qs *pQs, quay_qs **ppOut,
                                   quay_err *pErr);
QUAY_API int quay_qs_is_primary(const quay_qs *pQs);

/*
** select_for_update: the main query of record loads (all, first, get,
** iter) locks the rows it reads (PostgreSQL: FOR UPDATE OF the model's
** rows, with NOWAIT or SKIP LOCKED; SQLite: nothing to add, the
** transaction holds the write lock).  Loading such a set outside a
** transaction, or in a read-only one, is QUAY_EMISUSE.  NOWAIT and SKIP
** LOCKED together are QUAY_EMISUSE.  A row locked by another transaction
** makes NOWAIT fail with QUAY_EBUSY.
*/
#define QUAY_LOCK_NOWAIT      0x01
#define QUAY_LOCK_SKIP_LOCKED 0x02
QUAY_API int quay_qs_for_update(quay_qs *pQs, unsigned mFlags,
                                quay_qs **ppOut, quay_err *pErr);

/*
** The related set of one owner: rows of the relation's target reached from
** the owner whose key (the relation's iOwnerKey field) is *pKey.
** pModel is the owner's model, iRel its relation index.
*/
QUAY_API int quay_qs_related(quay_model *pModel, int iRel,
                             const quay_value *pKey, quay_qs **ppOut,
                             quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Running query sets
** ===================================================================
*/
typedef struct quay_plan quay_plan;

/*
** CONSTRUCTOR.  Compile a query set into a loading plan: the main SELECT
** with its JOINs (select_related), then one batched query per prefetch
** level.  Caller frees with quay_plan_free.
*/
QUAY_API int quay_plan_new(quay_qs *pQs, quay_plan **ppPlan, quay_err *pErr);
/*
** CONSTRUCTOR.  A plan that loads relation iRel of pModel for records the
** caller already holds (lazy loading: quay_load_open, then
** quay_load_owners).  Caller frees with quay_plan_free.
*/
QUAY_API int quay_plan_lazy(quay_model *pModel, int iRel, quay_plan **ppPlan,
                            quay_err *pErr);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_plan_free(quay_plan *pPlan);

/* The SQL of the main query and its parameters (qs:sql()); borrowed,
** valid until quay_plan_free.  NULL for a lazy plan. */
QUAY_API const char *quay_plan_sql(quay_plan *pPlan,
                                   const quay_value **paParam, int *pnParam);
/* Non-0 when records loaded by this plan must not lazy-load (strict). */
QUAY_API int quay_plan_strict(const quay_plan *pPlan);

/*
** explain(): entry i (0-based) of the plan: the main query, each JOINed
** level and each batched query, with its relation path ("" for the main
** query, "posts__tags"), how it loads ("query", "join", "batch") and its
** SQL (strings borrowed; valid until quay_plan_free).  QUAY_DONE past the
** last entry.
*/
typedef struct quay_explain_info {
  const char *zPath, *zHow, *zSql;
} quay_explain_info;
QUAY_API int quay_plan_explain(quay_plan *pPlan, int i,
                               quay_explain_info *pOut);

/*
** Record slots.  Every record a plan loads lands in a slot: one per model
** level of each query (the main result is slot 0; each JOINed level and
** each batched relation has its own) and one per `rec.pivot` model.  The
** records of one slot form one result (batched lazy loading treats them
** together).  Within a load, records of a slot are numbered 0, 1, ... in
** the order the sink makes them.
*/
typedef struct quay_slot_info {
  quay_model *pModel;       /* the records' model */
  int isPivot;              /* non-0: through-model records (rec.pivot) */
} quay_slot_info;
QUAY_API int quay_plan_nslot(const quay_plan *pPlan);
QUAY_API void quay_plan_slot(const quay_plan *pPlan, int iSlot,
                             quay_slot_info *pOut);

/* Where a loaded value goes on its owner record. */
typedef struct quay_attach {
  int iRel;                 /* relation index in the owner's model, or -1 */
  const char *zName;        /* the relation's name, the `to` name of
                            ** quay.prefetch, or "pivot" */
  int isCustom;             /* non-0: a plain attribute named zName (`to`) */
  int isPivot;              /* non-0: the record's through row (rec.pivot) */
} quay_attach;

/*
** The binding's side of a load: it makes records and attaches them, the
** engine does everything else (runs the queries, collects owner keys,
** de-duplicates, groups children per owner in query order).  Each
** callback returns 0, or non-0 to stop the load (QUAY_ECALLBACK); all
** four are required (quay_load_next: QUAY_EMISUSE for a NULL one).
**
**   xRecord      make record number anRec[iSlot] of slot iSlot from the
**                current row of pCur: the model's fields in field order
**                at columns iFirstCol.., its primary key at iKeyCol (read
**                them with quay_cursor_value; valid during the call).
**   xAttachOne   set a to-one relation (or `to`, or pivot) of record iRec
**                of slot iSlot to record iChild of iChildSlot, or to "loaded,
**                none" when iChild is -1.
**   xAttachMany  set a to-many relation (or `to`) of record iRec to the
**                records aiChild[0..nChild) of iChildSlot, in this order.
**   xExtra       set annotation zName of record iRec of slot iSlot.
**
** A callback may also leave by a longjmp (a Lua error): everything the
** load holds is reachable from the quay_load, so quay_load_free releases
** it; the load cannot be continued after that.
*/
typedef struct quay_sink {
  int (*xRecord)(void *pCtx, int iSlot, quay_cursor *pCur, int iFirstCol,
                 int iKeyCol);
  int (*xAttachOne)(void *pCtx, int iSlot, int iRec, const quay_attach *pAt,
                    int iChildSlot, int iChild);
  int (*xAttachMany)(void *pCtx, int iSlot, int iRec,
                     const quay_attach *pAt, int iChildSlot,
                     const int *aiChild, int nChild);
  int (*xExtra)(void *pCtx, int iSlot, int iRec, const char *zName,
                const quay_value *pVal);
} quay_sink;

typedef struct quay_load quay_load;
/*
** CONSTRUCTOR.  Start running a plan: opens the main query.  With bStream
** the rows are read a chunk at a time in constant memory while other
** statements run between chunks (qs:iter(); a server-side cursor on
** PostgreSQL).  The plan must outlive the load.  Caller frees with
** quay_load_free.
*/
QUAY_API int quay_load_open(quay_plan *pPlan, quay_db *pDb, int bStream,
                            quay_load **ppLoad, quay_err *pErr);
/*
** Read up to nMax main rows (0: all), run every batched query for their
** records, and hand everything to the sink.  Each call is one result:
** slot numbering starts again at 0.  Returns QUAY_ROW when more rows may
** follow, QUAY_DONE when the main query is exhausted (this call's records
** are complete either way), or an error code.
*/
QUAY_API int quay_load_next(quay_load *pLoad, int nMax,
                            const quay_sink *pSink, void *pCtx,
                            quay_err *pErr);
/* DESTRUCTOR.  Closes the cursors.  NULL is a no-op. */
QUAY_API void quay_load_free(quay_load *pLoad);
/*
** Lazy loading: for a quay_plan_lazy plan opened with quay_load_open,
** give the nOwner records the caller holds (slot 0, records
** 0..nOwner-1) by their owner keys (the relation's iOwnerKey field; copied);
** the next quay_load_next loads the relation for them and attaches to
** every owner, NULL keys included ("loaded, none" / empty sets).
*/
QUAY_API int quay_load_owners(quay_load *pLoad, const quay_value *aOwnerKey,
                              int nOwner, quay_err *pErr);
/*
** The server a load read from: 0 the primary, 1.. a read replica, -1
** before its first statement.  A binding keeps it with the records it
** made, and passes it to quay_load_pin for their lazy loads, so those
** read from the server that produced the records.
*/
QUAY_API int quay_load_server(const quay_load *pLoad);
/*
** Read the statements of this load from server iServer (a value of
** quay_load_server) when the db's routing allows it (outside a
** transaction, no recent write); when that server no longer answers,
** from another one.  Call before the load's first statement.
*/
QUAY_API void quay_load_pin(quay_load *pLoad, int iServer);

/*
** Results: the engine's own sink.  quay_qs_fetch runs a query set with
** everything it loads (select_related JOINs, every prefetch level,
** annotations) and keeps the records: the main ones in query order
** (quay_result_rec), and on each record the records of every relation
** the query loaded (quay_rec_related), de-duplicated and grouped per
** owner by the engine.  A host reads a two-level prefetch as records
** within records, with no keys to collect (docs/embedding.md).
** Records and their values are borrowed from the result; valid until
** quay_result_free.
*/
typedef struct quay_result quay_result;
typedef struct quay_rec quay_rec;
/* CONSTRUCTOR.  Caller frees with quay_result_free.  A values() set is
** QUAY_EMISUSE (quay_qs_rows runs those). */
QUAY_API int quay_qs_fetch(quay_qs *pQs, quay_db *pDb, quay_result **ppRes,
                           quay_err *pErr);
/* DESTRUCTOR.  NULL is a no-op. */
QUAY_API void quay_result_free(quay_result *pRes);
/* The main records: their number, and record i (NULL out of range). */
QUAY_API int quay_result_count(const quay_result *pRes);
QUAY_API const quay_rec *quay_result_rec(const quay_result *pRes, int i);
QUAY_API quay_model *quay_rec_model(const quay_rec *pRec);
/*
** A field (by name or column) or an annotation of the record into *pOut.
** QUAY_EUNKNOWN_FIELD when it has neither of that name.
*/
QUAY_API int quay_rec_get(const quay_rec *pRec, const char *zName,
                          quay_value *pOut, quay_err *pErr);
/*
** The records a loaded relation zName holds (a relation name, the `to`
** name of a prefetch, or "pivot"): *pn records at *papRec, in query
** order; a to-one relation gives 0 or 1.  QUAY_ELAZY_LOAD when the query
** did not load that relation (the result never queries on its own),
** QUAY_EUNKNOWN_RELATION when the model has no such relation.
*/
QUAY_API int quay_rec_related(const quay_rec *pRec, const char *zName,
                              const quay_rec *const **papRec, int *pn,
                              quay_err *pErr);
/*
** Shorthands for printing: the record of a loaded to-one relation (NULL
** when none, not loaded or unknown); the text of a text, decimal or json
** value (NULL when NULL or unknown); an integer (a boolean as 0/1, a
** number truncated; 0 when NULL or unknown).  pRec may be NULL (the
** record of an empty to-one relation): NULL / 0.
*/
QUAY_API const quay_rec *quay_rec_one(const quay_rec *pRec,
                                      const char *zName);
QUAY_API const char *quay_rec_text(const quay_rec *pRec, const char *zName);
QUAY_API int64_t quay_rec_int(const quay_rec *pRec, const char *zName);

/*
** Value rows (a values set, or the aggregate of a set): a cursor whose
** column names are the value names (quay_cursor_colname), typed by the
** fields and aggregates they come from.  quay_qs_rows runs a values set
** (bStream as quay_load_open); quay_qs_aggregate the n aggregates
** apExpr (borrowed) named azName over the set: one row.  Caller closes
** the cursor.
*/
QUAY_API int quay_qs_rows(quay_qs *pQs, quay_db *pDb, int bStream,
                          quay_cursor **ppCur, quay_err *pErr);
QUAY_API int quay_qs_aggregate(quay_qs *pQs, quay_db *pDb,
                               const char *const *azName,
                               quay_expr *const *apExpr, int n,
                               quay_cursor **ppCur, quay_err *pErr);

/*
** CONSTRUCTOR.  Model:raw: run a SELECT (with '?' placeholders on every
** backend) whose columns name fields of pModel (by field or column name);
** the cursor reads those columns typed by their fields, and
** quay_cursor_field tells each column's field index (-1: not a field).
** QUAY_EMISUSE when no column is the primary key (the records save as
** updates of their rows).  Caller closes the cursor.
*/
QUAY_API int quay_model_raw(quay_model *pModel, quay_db *pDb,
                            const char *zSql, const quay_value *aParam,
                            int nParam, quay_cursor **ppCur, quay_err *pErr);
QUAY_API int quay_cursor_field(const quay_cursor *pCur, int iCol);

/* Terminal calls that return no rows of records. */
QUAY_API int quay_qs_count(quay_qs *pQs, quay_db *pDb, int64_t *pn,
                           quay_err *pErr);
QUAY_API int quay_qs_exists(quay_qs *pQs, quay_db *pDb, int *pb,
                            quay_err *pErr);
/* pluck: one column (a field path) as a cursor of one column. */
QUAY_API int quay_qs_pluck(quay_qs *pQs, quay_db *pDb, const char *zPath,
                           quay_cursor **ppCur, quay_err *pErr);
/*
** The SQL text of the main query and its parameters.  *pzSql and
** *paParam are owned by the plan; use quay_plan_new + quay_plan_sql.
*/
/* }================================================================== */


/*
** {==================================================================
** Writing
** ===================================================================
** Row buffers are arrays of quay_value indexed by field, with a parallel
** array of "set" flags.  Dynamic defaults (QUAY_F_DYN_DEFAULT) are the
** binding's job; the engine fills static defaults and auto_now values,
** validates every value, writes, and returns the final row through
** quay_row_value (generated keys included).
*/
typedef struct quay_writer quay_writer;

/*
** CONSTRUCTOR.  A writer for inserts into (or updates of) pModel; keeps
** its prepared statement across rows (bulk_create).  Caller frees with
** quay_writer_free.
*/
QUAY_API int quay_writer_new(quay_db *pDb, quay_model *pModel,
                             quay_writer **ppW, quay_err *pErr);
QUAY_API void quay_writer_free(quay_writer *pW);
/* Slots of the writer's row buffer: one per field, all unset. */
QUAY_API void quay_writer_reset(quay_writer *pW);
/* Set field iField (value copied into the writer). */
QUAY_API int quay_writer_set(quay_writer *pW, int iField,
                             const quay_value *pVal, quay_err *pErr);
/* Set relation iRel (to-one, writable) from a record value or a key. */
QUAY_API int quay_writer_set_rel(quay_writer *pW, int iRel,
                                 const quay_value *pVal, quay_err *pErr);
QUAY_API int quay_writer_is_set(const quay_writer *pW, int iField);
/*
** Check the buffered row without writing anything: for an insert
** (bInsert) complete it as quay_writer_insert would (static defaults,
** auto_now values) and validate every field; for an update validate the
** set fields.  The completed values are then readable (quay_writer_value),
** so a binding can run its own checks on them before it writes; the write
** keeps them.
*/
QUAY_API int quay_writer_check(quay_writer *w, int bInsert, quay_err *pErr);
/*
** INSERT the buffered row; the final values are then readable.  An
** automatic key (quay.id) given explicitly moves the generator past it
** (PostgreSQL: one more statement, a setval when the identity is behind),
** here and in quay_writer_flush, so later rows do not get that key.
*/
QUAY_API int quay_writer_insert(quay_writer *pW, quay_err *pErr);
/*
** UPDATE the row whose primary key was *pOldKey with the fields set in
** the buffer (unset fields keep their stored values; nothing set: nothing
** is sent); applies on_update rules when a referenced key changes.
** auto_now fields get the current time (UTC, to the second), replacing
** any value in the buffer, whenever something is written.  *pnChanged
** (may be NULL) gets the rows changed (0 when the row is gone).
*/
QUAY_API int quay_writer_update(quay_writer *pW, const quay_value *pOldKey,
                                int64_t *pnChanged, quay_err *pErr);
/*
** Batched inserts (bulk_create).  quay_writer_queue completes and validates
** the buffered row (defaults, auto_now) and queues a copy; the caller then
** resets and fills the next row.  When quay_writer_queued reaches
** quay_writer_batch (or at the end), quay_writer_flush inserts the queued
** rows (one statement per row on SQLite, or up to quay_writer_batch rows
** after quay_writer_bulk_begin; multi-row VALUES on PostgreSQL);
** their final values, generated keys included, are then readable with
** quay_writer_queued_value until the next queue call.  Run inside a
** transaction: a failed flush leaves earlier batches in place.
*/
QUAY_API int quay_writer_queue(quay_writer *pW, quay_err *pErr);
QUAY_API int quay_writer_flush(quay_writer *pW, quay_err *pErr);
QUAY_API int quay_writer_queued(const quay_writer *pW);
QUAY_API int quay_writer_batch(const quay_writer *pW);
QUAY_API void quay_writer_queued_value(quay_writer *pW, int iRow, int iField,
                                       quay_value *pOut);
/*
** Bulk inserts of nRows rows (bulk_create).  When the connection is in no
** transaction, the driver can suspend its own foreign-key enforcement
** (SQLite), nRows >= 64, the table has no trigger and no on_query
** observer is set, this opens the transaction the rows go in
** (*pbBegun = 1): quay_writer_batch then gives the rows a flush writes
** per statement, and quay_db_commit checks every foreign key of the new
** rows before it commits (integrity, nothing committed, when one has no
** parent row).  The connection's enforcement is back on when that
** transaction ends, however it ends; freeing the writer first rolls the
** transaction back.  Otherwise nothing is opened (*pbBegun = 0) and the
** caller opens its transaction as usual.  Nothing else may write on the
** connection until the transaction ends.
*/
QUAY_API int quay_writer_bulk_begin(quay_writer *pW, int64_t nRows,
                                    int *pbBegun, quay_err *pErr);
/*
** Upserts (Model:upsert).  After this call the writer's queued rows are
** written with INSERT ... ON CONFLICT (the conflict fields) DO UPDATE SET
** the update fields, batched, and quay_writer_flush reads every column of
** every row back: quay_writer_queued_value then gives the stored row,
** inserted or updated.  aiConflict (nConflict >= 1 distinct fields) must
** be the primary key, one unique field or exactly a unique_together set,
** else QUAY_EMISUSE before any SQL.  aiUpdate lists the fields an existing
** row takes from the new one; NULL means, per row, every field the caller
** set before quay_writer_queue; conflict fields and the primary key cannot
** be in it (QUAY_EMISUSE).  auto_now fields are always updated,
** auto_now_add ones only when listed.  Rows with the same conflict key in
** one flush: the last one wins.  Run inside a transaction.
*/
QUAY_API int quay_writer_upsert(quay_writer *pW, const int *aiConflict,
                                int nConflict, const int *aiUpdate,
                                int nUpdate, quay_err *pErr);
/* A value of the buffer after insert/update (borrowed; valid until the
** next call on the writer). */
QUAY_API void quay_writer_value(quay_writer *pW, int iField,
                                quay_value *pOut);
/*
** By name: quay_writer_put sets the field zName (a field name or its
** column; the value is copied) or the to-one relation zName (belongs_to,
** one_to_one: a key, or a record value); quay_writer_get reads the
** buffer's value of a field, or of a to-one relation's key column, after
** insert/update (borrowed; valid until the next call on the writer), so
** quay_writer_get(w, "id", &v, &err) gives a generated key.
** QUAY_EUNKNOWN_FIELD for a name that is neither.
*/
QUAY_API int quay_writer_put(quay_writer *pW, const char *zName,
                             quay_value val, quay_err *pErr);
QUAY_API int quay_writer_get(quay_writer *pW, const char *zName,
                             quay_value *pOut, quay_err *pErr);

/* qs:update: field iField gets the expression pExpr (quay.F arithmetic
** over the row's columns, across to-one relations), computed in the one
** UPDATE statement.  Takes ownership of pExpr, also on failure. */
QUAY_API int quay_writer_set_expr(quay_writer *pW, int iField,
                                  quay_expr *pExpr, quay_err *pErr);
/*
** qs:update(values): the values are a writer's set fields, and only
** those; auto_now fields change only when given (as in Django).
*/
QUAY_API int quay_qs_update(quay_qs *pQs, quay_writer *pW, int64_t *pn,
                            quay_err *pErr);

/*
** bulk_update: write the fields aiField (nField, distinct) of nRow rows of
** pModel.  aRow holds nRow rows of 1 + nField values: the row's primary
** key, then the new values in aiField order (records already reduced to
** their keys).  Every value is validated before anything is sent; the
** rows go in a few set-based statements (UPDATE ... FROM a row list) in
** one transaction; a key given twice takes its last row.  The primary key
** and keys other relations refer to cannot be written this way
** (QUAY_EMISUSE: save and qs:update apply on_update rules).  *pnChanged
** (may be NULL) gets the rows changed.
*/
QUAY_API int quay_bulk_update(quay_db *pDb, quay_model *pModel,
                              const int *aiField, int nField,
                              const quay_value *aRow, int nRow,
                              int64_t *pnChanged, quay_err *pErr);

/*
** Deletion with cascades (reference.md "Deleting and cascades").  The
** counts are a list of (name, n) pairs, deleted rows per model (join
** tables by table name), zero entries left out.  Caller frees with
** quay_counts_free.
**
** mFlags: QUAY_DELETE_DRY_RUN counts what would be deleted and changes
** nothing; QUAY_DELETE_HARD deletes the rows of a soft_delete model
** (quay_model_set_soft_delete) for real, with cascades.  Without it such
** rows are soft-deleted: deleted_at is set (UTC now) on those whose
** deleted_at is NULL, nothing cascades, and the counts report them under
** the model's name.  Unknown bits are QUAY_EMISUSE.
*/
#define QUAY_DELETE_DRY_RUN 0x0001
#define QUAY_DELETE_HARD    0x0002
typedef struct quay_counts quay_counts;
QUAY_API int quay_qs_delete(quay_qs *pQs, quay_db *pDb, unsigned mFlags,
                            quay_counts **ppCounts, quay_err *pErr);
/* Delete the rows of pModel with primary keys aKey, with cascades. */
QUAY_API int quay_delete_keys(quay_db *pDb, quay_model *pModel,
                              const quay_value *aKey, int nKey,
                              unsigned mFlags, quay_counts **ppCounts,
                              quay_err *pErr);
QUAY_API int quay_counts_n(const quay_counts *p);
QUAY_API const char *quay_counts_name(const quay_counts *p, int i);
QUAY_API int64_t quay_counts_value(const quay_counts *p, int i);
/* The deleted_at a soft delete wrote ("YYYY-MM-DD HH:MM:SS"), or NULL
** (a hard delete, a dry run).  Borrowed; valid until quay_counts_free. */
QUAY_API const char *quay_counts_deleted_at(const quay_counts *p);
QUAY_API void quay_counts_free(quay_counts *p);

/*
** Delete hooks (reference.md "Model behaviour").  The rows of a model marked
** with quay_model_set_delete_hooks are loaded before any delete call
** removes or soft-deletes them (quay_delete_keys, quay_qs_delete, and
** every cascade that reaches the model; dry runs excepted) and handed to
** the db's delete observer, row by row, inside the call's transaction:
**
**   QUAY_BEFORE_DELETE  after the cascade walk and its PROTECT / RESTRICT
**                       checks, before any statement that writes; models
**                       parents first
**   QUAY_AFTER_DELETE   after every statement of the call ran, before it
**                       commits; models children first
**
** pModel is the row's model, aField its nField field values in field
** order (borrowed; valid during the call; a soft delete's after call sees
** the new deleted_at), iRow its number among that model's rows of this
** call, the same in both phases and in key order.  A non-0 return stops
** the call: everything it did is rolled back and it fails with
** QUAY_ECALLBACK (a binding then raises its own error).  The observer may
** use the db (nested calls run in savepoints).  Models that are not
** marked keep the set-based deletes: no row of theirs is read.
*/
enum { QUAY_BEFORE_DELETE = 1, QUAY_AFTER_DELETE };
typedef int (*quay_delete_fn)(void *pArg, int eWhen, quay_model *pModel,
                              int iRow, const quay_value *aField);
/* Set the delete observer of pDb (NULL removes it); pArg is borrowed. */
QUAY_API void quay_db_on_delete(quay_db *pDb, quay_delete_fn xDelete,
                                void *pArg);
/* Mark (bOn non-0) or unmark pModel as having delete hooks. */
QUAY_API void quay_model_set_delete_hooks(quay_model *pModel, int bOn);
QUAY_API int quay_model_delete_hooks(const quay_model *pModel);
/*
** Blockers of the last QUAY_EPROTECTED / QUAY_ERESTRICTED error on this
** db: n entries of (model name, key).  Borrowed; valid until the next
** delete.
*/
QUAY_API int quay_db_blocker_count(const quay_db *pDb);
QUAY_API const char *quay_db_blocker(const quay_db *pDb, int i,
                                     quay_value *pKey);

/*
** Many-to-many set writes of one owner (key *pOwnerKey) through relation
** iRel of pModel.  aKey are target keys (repeats are written once).
** Pivot values, when given, are a writer for the through model whose two
** key fields are filled by the engine.  A constant number of statements
** whatever nKey: ADD one INSERT ... SELECT of the targets not linked yet,
** REMOVE / CLEAR one DELETE (through models: a SELECT and the cascade
** planner), SET both in one transaction.  Through values that give the
** through model's key take one INSERT per link.  ADD and REMOVE of no
** target (nKey 0) write nothing.
*/
enum { QUAY_M2M_ADD = 1, QUAY_M2M_REMOVE, QUAY_M2M_CLEAR, QUAY_M2M_SET };
QUAY_API int quay_m2m_write(quay_db *pDb, quay_model *pModel, int iRel,
                            const quay_value *pOwnerKey, int eOp,
                            const quay_value *aKey, int nKey,
                            quay_writer *pPivot, quay_err *pErr);
/*
** Reverse-FK set writes: point the children with keys aKey at the owner
** (add) or at NULL (remove; the FK must be nullable).
*/
QUAY_API int quay_fkset_write(quay_db *pDb, quay_model *pModel, int iRel,
                              const quay_value *pOwnerKey, int bRemove,
                              const quay_value *aKey, int nKey,
                              quay_err *pErr);
/* }================================================================== */


/*
** {==================================================================
** Test hooks (builds with QUAY_TEST only)
** ===================================================================
** The CMake option QUAY_TEST is off by default: an installable build
** (plain cmake, the rockspec) has none of these.  The test command turns
** it on for its own build directories (scripts/build.sh).
*/
#ifdef QUAY_TEST
/*
** Fault injection.  Allocation number k (1-based, counted from this call)
** fails, and every later one too when bSticky; k = 0 disables.
*/
QUAY_API void quay_test_fail_alloc(long k, int bSticky);
/* Allocations since the last quay_test_fail_alloc; blocks not freed. */
QUAY_API long quay_test_alloc_count(void);
QUAY_API long quay_test_alloc_live(void);
/* Fail the k-th statement sent on pDb from now (1-based, 0 = off);
** ROLLBACK statements are never failed. */
QUAY_API void quay_test_fail_statement(quay_db *pDb, long k);
#endif
/* }================================================================== */


/*
** {==================================================================
** Embedding in a Lua host (reference.md "Embedding in a host program")
** ===================================================================
** Lua-facing entries; they live in libquay next to the engine (link with
** `pkg-config --cflags --libs quay-lua sqlite3`).  They take the
** host's lua_State (Lua 5.4; luaL_checkversion makes a mismatched Lua
** library an error, not a crash).  In Lua manual terms (section 4.6) each
** is tagged [-0, +n, e]: it may raise a Lua error, so call it from
** protected code (a C function run by lua_pcall, as lua.c's pmain does).
** A complete host: examples/host.c.
**
** Typical use:
**
**   lua_State *L = luaL_newstate();
**   luaL_openlibs(L);
**   quay_openlibs(L);              // require "quay" now works, no files
**   ... in protected code:
**   quay_push_sqlite(L, handle);   // [.., db]  the host's connection
**   ... run a script with the db as an argument ...
**   lua_close(L);                  // frees the Quay db, not the handle
**   sqlite3_close(handle);         // the host closes its own connection
*/

/*
** The module entry of `require "quay.core"` ([-0, +1, e]): creates the
** metatables of Quay's objects in L (once per state) and pushes the module
** table.  quay_openlibs registers it as package.preload["quay.core"]; a
** host may also call it through luaL_requiref.  Stock lua5.4 loads the
** same entry from the installed quay/core.so.
*/
QUAY_API int luaopen_quay_core(struct lua_State *L);

/*
** Wrap a host-owned SQLite connection as a Quay db object and push it
** ([-0, +1, e]): the same object as quay.open returns in Lua, with every
** method of reference.md (db:model, db:transaction, db:close, ...).
**
** Ownership: borrowed.  Quay never closes pHandle.  It must stay open
** until the db object is closed (db:close() in Lua) or collected
** (lua_close(L), or a garbage collection after the last reference is
** gone); either one finalizes every statement Quay prepared on it and
** rolls back a transaction Quay left open, so the host's sqlite3_close
** then succeeds.  The host may keep using the handle itself, on the same
** thread, between Quay calls, and sees Quay's writes (they share the
** connection and its transactions).
**
** Settings: Quay runs PRAGMA foreign_keys = ON on the handle (the on_delete
** rules of reference.md rely on it), sets sqlite3_busy_timeout(pHandle, 5000),
** which replaces a busy handler the host had installed
** (quay_push_sqlite_opts can keep it), and turns off double-quoted string
** literals (SQLITE_DBCONFIG_DQS_DDL and _DML = 0), so
** that "name" is always an identifier: Quay quotes identifiers that way,
** and a misspelled one must be an error, not the string 'name'.  The
** host's own SQL on the handle must then write strings in single quotes
** (standard SQL).
**
** Transactions: the host may BEGIN on the handle and call into Quay
** inside its transaction; Quay's transactions (db:transaction, bulk
** writes, cascades, create_tables) are then savepoints in it, and the
** host's COMMIT or ROLLBACK decides (quay_db_begin above).  It must not
** end its transaction while a db:transaction of Quay's is running; if it
** does, db:transaction raises "misuse" saying so.  The handle must not be
** inside a transaction when it is wrapped: foreign keys cannot be turned
** on there, so that is refused ("misuse").
**
** Loads quay.core into L if needed (package.loaded), so it works before
** or without quay_openlibs; scripts that `require "quay"` need
** quay_openlibs (or the Lua files on LUA_PATH).  Returns 1 (values
** pushed).  Raises a Quay error object (code "misuse" for a NULL handle
** or a handle inside a transaction, "nomem", or "sql" if a PRAGMA fails).
*/
QUAY_API int quay_push_sqlite(struct lua_State *L, struct sqlite3 *pHandle);

/*
** quay_push_sqlite with the options of quay_db_open ([-0, +1, e]); pOpts
** NULL is quay_push_sqlite.  The ones that apply to SQLite:
** busy_timeout_ms (QUAY_BUSY_KEEP leaves the host's busy handler in
** place; note that 0, what a zero-filled struct holds, means no wait)
** and strict.  pOpts is borrowed for the call.
*/
QUAY_API int quay_push_sqlite_opts(struct lua_State *L,
                                   struct sqlite3 *pHandle,
                                   const quay_open_opts *pOpts);

/*
** The string form of the error value at idx ([-0, +1, e]): pushes it and
** returns it (valid while it stays on the stack; never NULL).  Quay's
** errors are tables (lua_tostring gives NULL for them, and Lua's default
** panic handler prints "error object is not a string"): they become
** "message (code)".  Any other value is luaL_tolstring's (a string or
** number as is, __tostring, or "type: address").  Use it in a message
** handler (docs/embedding.md "Errors in a host"):
**
**   static int msgh(lua_State *L) {
**     luaL_traceback(L, L, quay_tostring(L, 1), 1);
**     return 1;
**   }
*/
QUAY_API const char *quay_tostring(struct lua_State *L, int idx);

/*
** Register "quay" and "quay.core" in package.preload of L ([-0, +0, e]),
** so that `require "quay"` loads the Lua layer compiled into libquay and
** the C module linked with it: a host needs no Lua files on disk, and
** LUA_PATH/LUA_CPATH are not consulted for Quay.  Call it after
** luaL_openlibs (it needs the package library).  Returns 0.
*/
QUAY_API int quay_openlibs(struct lua_State *L);
/* }================================================================== */

#ifdef __cplusplus
}
#endif
#endif /* QUAY_H */
