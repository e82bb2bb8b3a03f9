/*
** bindings/lquay.h
** The Lua binding quay.core: shared declarations.
** See LICENSE
**
** Objects and who owns what:
**   Db       full userdata (QUAY_DB_MT) owning a quay_db.  User value 1 is
**            a table of the db's Lua state (models by name).
**   Model    full userdata (QUAY_MODEL_MT); user value 1 the Db, user value
**            2 the record metatable, which holds the model's member map,
**            field names, default functions, a back pointer and, for a
**            model that declares any, its behaviour table (lbehav.c).
**   Record   a plain Lua table with the model's record metatable.  Field
**            values are raw entries keyed by field name, so reading a field
**            is a raw table read; hidden state uses light-userdata keys
**            (see LK_* below) that Lua code cannot forge.
**   Set      a plain Lua table (QUAY_SET_MT) holding loaded records in its
**            array part, so #set, set[i] and ipairs are raw once loaded.
**   QuerySet full userdata (QUAY_QS_MT) holding a quay_qs reference; user
**            value 1 the Model.
**   Box      scratch owner of one engine resource (plan, cursor, keyset,
**            condition, writer, counts) with one idempotent __gc/__close;
**            created before the resource and marked to-be-closed, so a Lua
**            error anywhere releases it (house rule 2 and 4).
**
** Every error is raised through lquay_raise, the only caller of
** lua_error, after the caller released what it holds (rule 5).
*/
#ifndef LQUAY_H
#define LQUAY_H

#include "quay.h"

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#if defined(__GNUC__)
#  define LQUAY_NORETURN __attribute__((noreturn))
#  define LQUAY_INTERNAL __attribute__((visibility("hidden")))
#else
#  define LQUAY_NORETURN
#  define LQUAY_INTERNAL
#endif

/* Metatable names (registry keys). */
#define QUAY_DB_MT      "quay.Db"
#define QUAY_MODEL_MT   "quay.Model"
#define QUAY_QS_MT      "quay.QuerySet"
#define QUAY_SET_MT     "quay.Set"
#define QUAY_ITER_MT    "quay.Iterator"
#define QUAY_BOX_MT     "quay.Box"
#define QUAY_ERR_MT     "quay.Error"
#define QUAY_NULL_MT    "quay.Null"
#define QUAY_DESC_MT    "quay.Descriptor"
#define QUAY_ANY_MT     "quay.Any"
#define QUAY_PREFETCH_MT "quay.Prefetch"
#define QUAY_EXPR_MT    "quay.Expr"
#define QUAY_SNAP_MT    "quay.Snapshot"

/*
** Hidden keys (light userdata).  Their addresses are unique; Lua code
** cannot make these keys, so they never collide with field names.
*/
LQUAY_INTERNAL extern const char lquay_LK_RESULT;   /* record -> its result */
LQUAY_INTERNAL extern const char lquay_LK_PK;       /* record -> stored key */
LQUAY_INTERNAL extern const char lquay_LK_NONE;     /* "no record for key": the key */
LQUAY_INTERNAL extern const char lquay_LK_PIVOT;    /* record -> pivot rec */
LQUAY_INTERNAL extern const char lquay_LK_ANNS;     /* result mt -> names
                                                   ** of annotations */
LQUAY_INTERNAL extern const char lquay_LK_STRICT;   /* result -> true */
LQUAY_INTERNAL extern const char lquay_LK_SERVER;   /* result mt -> server;
                                                   ** set -> server of its
                                                   ** next load (after a
                                                   ** write: the primary) */
LQUAY_INTERNAL extern const char lquay_LK_MODEL;    /* record mt -> Model */
LQUAY_INTERNAL extern const char lquay_LK_MEMBERS;  /* record mt -> map */
LQUAY_INTERNAL extern const char lquay_LK_NAMES;    /* record mt -> names */
LQUAY_INTERNAL extern const char lquay_LK_DEFAULTS; /* record mt -> fns */
LQUAY_INTERNAL extern const char lquay_LK_PLANS;    /* record mt -> plans */
LQUAY_INTERNAL extern const char lquay_LK_OWNER;    /* set -> owner record */
LQUAY_INTERNAL extern const char lquay_LK_REL;      /* set mt -> rel idx */
LQUAY_INTERNAL extern const char lquay_LK_LOADED;   /* set mt -> bool */
LQUAY_INTERNAL extern const char lquay_LK_RECMETHODS; /* Model mt -> the
                                                   ** record methods */
/* A user's declaration table -> a value Quay keeps alive while it borrows
** its string (the target, through model, default, JSON buffer). */
LQUAY_INTERNAL extern const char lquay_LK_KEEP_TARGET;
LQUAY_INTERNAL extern const char lquay_LK_KEEP_THROUGH;
LQUAY_INTERNAL extern const char lquay_LK_KEEP_DEFAULT;
LQUAY_INTERNAL extern const char lquay_LK_KEEP_JSON;
LQUAY_INTERNAL extern const char lquay_LK_SETMTS;   /* record mt -> set mts */
LQUAY_INTERNAL extern const char lquay_LK_FAST;     /* record mt ->
                                                    ** LRelFast[] */
LQUAY_INTERNAL extern const char lquay_LK_SETMODEL; /* set -> owner Model */
LQUAY_INTERNAL extern const char lquay_LK_SNAP;     /* record -> its row of
                                                    ** a snapshot; result mt
                                                    ** -> the snapshot */
LQUAY_INTERNAL extern const char lquay_LK_BEHAV;    /* record mt -> the
                                                   ** model's behaviour */

/* Relation cache key of relation i in a record (small, never an address
** of static data). */
#define LQUAY_RELKEY(i) ((void *)(uintptr_t)(16 * ((i) + 1)))

/*
** {==================================================================
** Userdata structs
** ===================================================================
*/
/* A binding delete call in progress (lbehav.c, delete hooks). */
typedef struct LDelCall {
  struct LDelCall *pPrev;   /* the call around it (a hook that deletes) */
  quay_model *pRoot;        /* rec:delete: the record's model, else NULL */
  int bOn;                  /* registered on the db */
} LDelCall;

typedef struct LDb {
  quay_db *db;              /* NULL once freed (__gc) */
  lua_State *L;             /* thread of the current call (callbacks) */
  int onQueryRef;           /* LUA_NOREF or the callback */
  int cbErrRef;             /* LUA_NOREF or the error a callback raised */
  int nHook;                /* on_query calls and delete hooks in progress
                            ** (lcallback.c, lbehav.c) */
  int bDeleteHooks;         /* a model declares delete hooks */
  LDelCall *pDelCall;       /* innermost delete call, or NULL */
  int bRoles;               /* opened with replicas: stats() counts the
                            ** statements per role */
} LDb;

/* What the record accessors need to know of relation i, without asking
** the engine on every read (built with the member map). */
typedef struct LRelFast {
  unsigned char toMany, writable, keyIsPk;
  int iFk;                  /* this model's key column (writable), else -1 */
} LRelFast;

/* LModel.mBehav: what a model's declaration gave (lbehav.c). */
#define LQUAY_B_METHODS      0x01
#define LQUAY_B_SCOPES       0x02
#define LQUAY_B_VALIDATE     0x04  /* validate, or a field's validate */
#define LQUAY_B_SAVE_HOOKS   0x08  /* before_save or after_save */
#define LQUAY_B_DELETE_HOOKS 0x10  /* before_delete or after_delete */
#define LQUAY_B_SOFT         0x20  /* soft_delete */

typedef struct LModel {
  quay_model *m;
  LDb *pDb;                 /* kept alive through user value 1 */
  int iVersion;             /* schema version the member map was built at */
  LRelFast *aFast;          /* per relation; memory owned by the record mt */
  int nFast;
  unsigned mBehav;          /* LQUAY_B_* */
} LModel;

typedef struct LQs {
  quay_qs *qs;              /* one reference, NULL after __gc */
} LQs;

typedef void (*lquay_free_fn)(void *);
typedef struct Box {
  void *p;                  /* the resource, NULL when released */
  lquay_free_fn xFree;
  int idx;                  /* its (to-be-closed) stack slot */
} Box;
/* }================================================================== */


/* lerror.c */
LQUAY_INTERNAL LQUAY_NORETURN void lquay_raise(lua_State *L,
                                               const quay_err *pErr);
LQUAY_INTERNAL LQUAY_NORETURN void lquay_raisef(lua_State *L, int code,
                                                const char *zFmt, ...);
/* Raise an error about field zField of model zModel (err.model/field). */
LQUAY_INTERNAL LQUAY_NORETURN void lquay_raise_field(lua_State *L, int code,
                                                     const char *zModel,
                                                     const char *zField,
                                                     const char *zFmt, ...);
LQUAY_INTERNAL void lquay_push_error(lua_State *L, const quay_err *pErr);
/* Raise after an engine failure: re-raises a callback's own error. */
LQUAY_INTERNAL LQUAY_NORETURN void lquay_fail(lua_State *L, LDb *pDb,
                                              const quay_err *pErr);
LQUAY_INTERNAL void lquay_open_error(lua_State *L);
/* Append zTail to the message zMsg[nMsg], cut with "..." when full. */
LQUAY_INTERNAL void lquay_msg_append(char *zMsg, size_t nMsg,
                                     const char *zTail);

/* lquay.c: boxes and helpers */
LQUAY_INTERNAL Box *lquay_box(lua_State *L, lquay_free_fn xFree);
LQUAY_INTERNAL void lquay_box_release(Box *b);
/*
** Close a box's to-be-closed slot, and every one above it, before the
** slots are popped.  Lua 5.4.4's lua_settop/lua_pop keep a stale stack
** pointer when a __close call reallocates the stack (fixed in 5.4.5), so
** the binding never lets lua_settop remove a to-be-closed slot.
*/
LQUAY_INTERNAL void lquay_box_close(lua_State *L, Box *b);
LQUAY_INTERNAL int lquay_is_null(lua_State *L, int idx);
/*
** The string at idx as a name for the engine: raises `code` when it holds
** a NUL byte (C would silently truncate it); a value that is not a string
** is a wrong argument shape, `misuse`, except in a declaration (whose
** errors are all `declaration`).
*/
LQUAY_INTERNAL const char *lquay_name(lua_State *L, int idx, int code,
                                      const char *zWhat);
LQUAY_INTERNAL void lquay_push_null(lua_State *L);
/*
** Argument checks raising `misuse` that names the method (never Lua's
** "bad argument #2 to '?'").  lquay_check_self: the userdata of class zMt
** at idx, else "call <zObject>:<zMethod> with a colon" (zMethod NULL: the
** name the method was called by, found only then).  lquay_callee: the
** name the running C function was called by, else zDefault.
*/
LQUAY_INTERNAL const char *lquay_callee(lua_State *L, const char *zDefault);
LQUAY_INTERNAL LQUAY_NORETURN void lquay_arg_error(lua_State *L, int idx,
                                                   const char *zMethod,
                                                   const char *zWant);
LQUAY_INTERNAL void lquay_check_type(lua_State *L, int idx, int t,
                                     const char *zMethod);
LQUAY_INTERNAL lua_Integer lquay_check_integer(lua_State *L, int idx,
                                               const char *zMethod);
LQUAY_INTERNAL void *lquay_check_self(lua_State *L, int idx, const char *zMt,
                                      const char *zObject,
                                      const char *zMethod);

/* ldb.c */
/* Raise `connection` unless the db is open (the first check of every
** method of a db and of the objects made from it). */
LQUAY_INTERNAL void lquay_check_open(lua_State *L, LDb *pDb);
/* The Db at idx, open: `connection` when freed or closed (before any
** other check), `misuse` when idx is not a Db. */
LQUAY_INTERNAL LDb *lquay_check_db(lua_State *L, int idx);
LQUAY_INTERNAL LDb *lquay_enter(lua_State *L, LDb *pDb);
LQUAY_INTERNAL void lquay_open_db(lua_State *L);
LQUAY_INTERNAL int lquay_db_wrap(lua_State *L, quay_db *db);
/* quay.core.checksum(text) */
LQUAY_INTERNAL int lquay_checksum(lua_State *L);

/* lmodel.c */
LQUAY_INTERNAL LModel *lquay_check_model(lua_State *L, int idx);
LQUAY_INTERNAL LModel *lquay_ready(lua_State *L, LModel *pM);
LQUAY_INTERNAL void lquay_push_model(lua_State *L, LDb *pDb, quay_model *m);
LQUAY_INTERNAL int lquay_declare(lua_State *L);
LQUAY_INTERNAL void lquay_open_model(lua_State *L);
LQUAY_INTERNAL void lquay_push_mt(lua_State *L, LDb *pDb, quay_model *m);
LQUAY_INTERNAL void lquay_push_state(lua_State *L, LDb *pDb);
/* qs:select_for_update([opts]) (registered with the query-set methods). */
LQUAY_INTERNAL int lquay_qs_select_for_update(lua_State *L);

/* lrecord.c */
LQUAY_INTERNAL void lquay_open_record(lua_State *L);
LQUAY_INTERNAL LModel *lquay_record_model(lua_State *L, int idx);
LQUAY_INTERNAL int lquay_new_record(lua_State *L, int iModelIdx,
                                    int iValues);
LQUAY_INTERNAL int lquay_save(lua_State *L, int iRec);
LQUAY_INTERNAL int lquay_bulk_create(lua_State *L, int iModel, int iList);
/* Model:upsert(rows, opts) and Model:bulk_update(records, fields). */
LQUAY_INTERNAL int lquay_upsert(lua_State *L, int iModel, int iList,
                                int iOpts);
LQUAY_INTERNAL int lquay_bulk_update(lua_State *L, int iModel, int iList,
                                     int iFields);
/* Raise misuse unless the call has at most nMax arguments (zWhat names
** the call); an argument Quay would ignore is a mistake. */
LQUAY_INTERNAL void lquay_check_nargs(lua_State *L, int nMax,
                                      const char *zWhat);
/* The options table at idx (nil/none allowed unless bRequired): misuse
** for anything but a table whose keys are all in azKey.  Non-0 when
** there is a table. */
LQUAY_INTERNAL int lquay_check_options(lua_State *L, int idx,
                                       const char *const *azKey,
                                       int bRequired, const char *zWhat);
/* Push the option zKey of the options table at idx, read raw (no
** metamethod runs: an options table is read exactly as the raw walk of
** lquay_check_options saw it); returns its type. */
LQUAY_INTERNAL int lquay_opt_get(lua_State *L, int idx, const char *zKey);
/* A boolean option of the table at idx: misuse unless nil or boolean. */
LQUAY_INTERNAL int lquay_opt_bool(lua_State *L, int idx, const char *zKey,
                                  const char *zWhat);
/* { dry_run = bool, hard = bool } of rec:delete / qs:delete as
** QUAY_DELETE_* flags; misuse for anything else. */
LQUAY_INTERNAL int lquay_delete_opts(lua_State *L, int idx,
                                     const char *zWhat);
LQUAY_INTERNAL void lquay_record_mt_init(lua_State *L, int iMt, int iModel,
                                         const char *zName);
LQUAY_INTERNAL void lquay_push_set(lua_State *L, int iOwner, int iRel,
                                   int bLoaded);
/*
** Sets carry one hidden key (their owner); the relation index and the
** loaded state live in a set metatable per (relation, state), cached on
** the owner's record metatable.  These switch and query that state.
*/
LQUAY_INTERNAL void lquay_set_mark(lua_State *L, int iSet, int iOwner,
                                   int iRel, int bLoaded);
/* Push the cached value of to-one relation j of the record at iRec
** found to hold no record (lrecord.c "Relation access"). */
LQUAY_INTERNAL void lquay_push_rel_none(lua_State *L, int iRec, int j);
LQUAY_INTERNAL int lquay_set_loaded(lua_State *L, int iSet);
LQUAY_INTERNAL int lquay_is_set(lua_State *L, int idx);
/*
** Push a metatable for the records of one result: a copy of the model's
** record metatable (at iMt) that also holds LK_RESULT = the result array
** (at iResult).  Records find their result for batched lazy loads through
** it, at no cost per record.
*/
LQUAY_INTERNAL void lquay_push_result_mt(lua_State *L, int iMt, int iResult);

/*
** Dirty tracking (lrecord.c).  A snapshot holds, per record, a 64-bit
** fingerprint of each stored field value (the primary key excepted: the
** record's LK_PK is its stored key) as the record was loaded or last
** saved; save() writes the fields whose value no longer matches.  A
** result's records share one snapshot (kept by the result's record
** metatable under LK_SNAP); each record holds its row number under
** LK_SNAP, or, for a record saved on its own, a snapshot of one row.
*/
typedef struct LSnap {
  uint64_t *aFp;            /* nRow rows of nFp fingerprints */
  int nFp;                  /* the model's fields but its primary key */
  int iPk;                  /* the primary key's field index */
  int nRow, nAlloc;
} LSnap;
/* A new snapshot for the records of the result whose metatable is at iMt
** (stored there); m is the records' model. */
LQUAY_INTERNAL LSnap *lquay_snap_new(lua_State *L, int iMt, quay_model *m);
/* Append a row (every field "NULL") for a new record; *piRow gets its
** number, to store in the record with lquay_snap_mark.  Raises nomem. */
LQUAY_INTERNAL uint64_t *lquay_snap_add(lua_State *L, LSnap *p, int *piRow);
/* Record at iRec (top of the stack) takes row iRow. */
LQUAY_INTERNAL void lquay_snap_mark(lua_State *L, int iRec, int iRow);
/* The fingerprint of a stored value. */
LQUAY_INTERNAL uint64_t lquay_fp(const quay_value *v);

/*
** The canonical text of a JSON document z[0..n) (compact, keys sorted,
** floats with 17 digits: what Quay writes) in a buffer from malloc, its
** length in *pn; NULL when z is no JSON or out of memory.  Documents that
** decode to equal Lua values have the same text (PostgreSQL's jsonb
** prints its own spacing).
*/
LQUAY_INTERNAL char *lquay_json_canon(const char *z, size_t n, size_t *pn);

/*
** Encode the plain table, string, number or boolean at idx as the
** canonical text of a JSON document (as a quay.json field stores it),
** protected: pushes the text, or nothing and returns 0 when the value
** cannot be encoded.
*/
LQUAY_INTERNAL int lquay_json_text(lua_State *L, int idx);
/* The slot of field iField in a snapshot row (-1 for the primary key). */
#define LQUAY_SNAP_SLOT(p, iField) \
  ((iField) == (p)->iPk ? -1 : (iField) < (p)->iPk ? (iField) : (iField) - 1)

/* lqueryset.c */
LQUAY_INTERNAL void lquay_open_qs(lua_State *L);
LQUAY_INTERNAL LQs *lquay_check_qs(lua_State *L, int idx);
LQUAY_INTERNAL void lquay_push_qs(lua_State *L, int iModelIdx, quay_qs *qs);
LQUAY_INTERNAL int lquay_root_qs(lua_State *L, int iModelIdx);
LQUAY_INTERNAL int lquay_qs_method(lua_State *L);
/* Load relation iRel for the record at iRec and the rest of its result,
** from the server that read the result (iSrv < 0) or from server iSrv
** (0: the primary). */
LQUAY_INTERNAL void lquay_lazy_load(lua_State *L, int iRec, LModel *pM,
                                    int iRel, const char *zWhy);
LQUAY_INTERNAL void lquay_lazy_load_on(lua_State *L, int iRec, LModel *pM,
                                       int iRel, const char *zWhy, int iSrv);
/* Model:raw(sql, params) */
LQUAY_INTERNAL int lquay_model_raw(lua_State *L);
/* Run a plan and push the array of records. */
LQUAY_INTERNAL void lquay_push_rows(lua_State *L, int iModelIdx, quay_qs *qs,
                                    int nLimitOne);

/* lbehav.c: model behaviour (methods, scopes, validation, hooks) */
/* Non-0 for a behaviour option name of db:model (methods, scopes, ...). */
LQUAY_INTERNAL int lquay_behav_is_option(const char *zKey);
/* The behaviour options of the spec at iSpec, before m is finished: shape
** and name checks (declaration errors), soft_delete. */
LQUAY_INTERNAL void lquay_behav_declare(lua_State *L, int iSpec,
                                        quay_model *m, const char *zModel);
/* Non-0 when a field type reads `max` as a length (string, text). */
LQUAY_INTERNAL int lquay_behav_is_length(int eType);
/* A field descriptor's choices, min and max (options at iOpts) into s;
** the values stay on the stack until the field is added. */
LQUAY_INTERNAL void lquay_behav_field_rules(lua_State *L, int iOpts,
                                            const char *zModel,
                                            const char *zName,
                                            quay_field_spec *s);
/* After the declaration committed: the behaviour table into the record
** metatable at iMt of the Model at iModel, and its flags. */
LQUAY_INTERNAL void lquay_behav_install(lua_State *L, int iSpec, int iModel,
                                        int iMt);
/* db:check(): every model with methods or scopes made ready (raises
** the clashes lquay_behav_recheck finds). */
LQUAY_INTERNAL void lquay_behav_check_db(lua_State *L, LDb *pDb);
/* After a resolve: methods and scopes against reverse accessors. */
LQUAY_INTERNAL void lquay_behav_recheck(lua_State *L, LModel *pM, int iMt);
/* Push the method of the record at iRec named by the key at iKey: 1, or
** 0 with nothing pushed. */
LQUAY_INTERNAL int lquay_behav_method(lua_State *L, int iRec, int iKey);
/* Push the scope zName of the Model at iModel as a callable (qs, ...). */
LQUAY_INTERNAL int lquay_behav_scope(lua_State *L, int iModel,
                                     const char *zName);
/* The same for the query set at iQs and the name at iKey. */
LQUAY_INTERNAL int lquay_behav_qs_scope(lua_State *L, int iQs, int iKey);
/* Validate the record at iRec, to be written by w (bInsert: an insert). */
LQUAY_INTERNAL void lquay_behav_validate(lua_State *L, LModel *pM, int iRec,
                                         quay_writer *w, int bInsert);
/* Call hook zHook of the record at iRec: bFlag 0/1 the second argument,
** LQUAY_HOOK_UNKNOWN nil, < 0 none. */
#define LQUAY_HOOK_UNKNOWN 2
/* A savepoint in a to-be-closed box that rolls it back, and its commit. */
LQUAY_INTERNAL Box *lquay_behav_begin(lua_State *L, LDb *pDb);
LQUAY_INTERNAL void lquay_behav_commit(lua_State *L, LDb *pDb, Box *pTxn);
LQUAY_INTERNAL void lquay_behav_hook(lua_State *L, LModel *pM, int iRec,
                                     const char *zHook, int bFlag);
/* Save the record at iRec through xSave(L, iRec, pArg) with the save
** hooks around it, in a savepoint: LUA_OK, or an error status with the
** error pushed and the savepoint rolled back. */
LQUAY_INTERNAL int lquay_behav_save(lua_State *L, int iRec, LModel *pM,
                                    void (*xSave)(lua_State *, int, void *),
                                    void *pArg);
/* Call the user function below its nArg arguments at the top, keeping
** nRes results; its error is raised again unchanged, but a yield, which
** becomes `misuse` naming zModel and zWhat ("the default of code").  And
** the test it uses: non-0 when the value at idx is Lua's error for a
** yield across a C call. */
LQUAY_INTERNAL void lquay_behav_call(lua_State *L, int nArg, int nRes,
                                     const char *zModel, const char *zWhat);
LQUAY_INTERNAL int lquay_behav_yielded(lua_State *L, int idx);
/* Call xBody with the running function's arguments under lua_pcall, so
** its boxes close before its error is raised again; returns its results. */
LQUAY_INTERNAL int lquay_behav_protect(lua_State *L, lua_CFunction xBody);
/* The db's delete observer (quay_db_on_delete); pArg is the LDb. */
LQUAY_INTERNAL int lquay_behav_on_delete(void *pArg, int eWhen,
                                         quay_model *m, int iRow,
                                         const quay_value *aField);
/* Around a binding delete call: register it (iRoot: rec:delete's record
** or 0) before the engine call, end it after, before raising. */
LQUAY_INTERNAL void lquay_behav_delete_begin(lua_State *L, LDb *pDb,
                                             LDelCall *pCall, int iRoot,
                                             quay_model *pRoot);
LQUAY_INTERNAL void lquay_behav_delete_end(lua_State *L, LDb *pDb,
                                           LDelCall *pCall);
/* describe(): behaviour entries of model m's table at the top. */
LQUAY_INTERNAL void lquay_behav_describe(lua_State *L, LDb *pDb,
                                         quay_model *m);
LQUAY_INTERNAL void lquay_open_behav(lua_State *L);

/* lexpr.c */
LQUAY_INTERNAL void lquay_open_expr(lua_State *L);
LQUAY_INTERNAL int lquay_is_expr(lua_State *L, int idx);
/* The engine expression of the quay.Expr at idx, owned by *ppBox (pushed,
** to-be-closed) until the caller releases the box. */
LQUAY_INTERNAL quay_expr *lquay_expr(lua_State *L, int idx, Box **ppBox);
/* The same for a whole order_by term, the one place :desc()/:asc() may
** stand (elsewhere they raise misuse). */
LQUAY_INTERNAL quay_expr *lquay_expr_order(lua_State *L, int idx,
                                           Box **ppBox);

/* lmarshal.c */
LQUAY_INTERNAL int lquay_to_value(lua_State *L, int idx, quay_value *pOut,
                                  int bAllowList, const char *zWhat);
LQUAY_INTERNAL void lquay_push_value(lua_State *L, const quay_value *v);
/* A scalar (nil, quay.null, boolean, number, string) into *pOut; 0 for
** anything else.  Never raises, pushes nothing. */
LQUAY_INTERNAL int lquay_scalar(lua_State *L, int idx, quay_value *pOut);
LQUAY_INTERNAL quay_cond *lquay_conds(lua_State *L, int idx, Box *pBox,
                                      const char *zModel);
/* lquay_to_value for field zField of model zModel: a value Quay cannot
** store raises validation naming both (err.model, err.field). */
LQUAY_INTERNAL int lquay_to_field_value(lua_State *L, int idx,
                                        quay_value *pOut, int bAllowList,
                                        const char *zModel,
                                        const char *zField);
/* Raise validation when the record pRec belongs to another db than the
** model pOwner ("a record of another db", reference.md). */
LQUAY_INTERNAL void lquay_check_record_db(lua_State *L, LModel *pRec,
                                          LModel *pOwner,
                                          const char *zField);
LQUAY_INTERNAL int lquay_record_get(void *p, const char *zField,
                                    quay_value *pOut);

/* lcallback.c */
LQUAY_INTERNAL int lquay_trace(void *pArg, const char *zSql,
                               const quay_value *aParam, int nParam);
/* Drop the error an on_query call kept, if any ('-': never raises). */
LQUAY_INTERNAL void lquay_cb_drop(lua_State *L, LDb *pDb);

#endif /* LQUAY_H */
