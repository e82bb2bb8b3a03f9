/*
** bindings/ldb.c
** The Db object: open/close, stats, on_query, transactions, raw SQL,
** schema calls, describe() and schema evolution (inspect, schema_diff,
** migrate, and the calls `quay migrate` uses).
** See LICENSE
**
** A Db userdata owns its quay_db.  db:close() and __close only disconnect:
** the schema stays, so models and records made from the db remain valid
** objects, and every method of theirs (and of the db, but close, reopen
** and is_open) raises `connection` "closed" before any other check until
** db:reopen() (lquay_check_open).  __gc frees
** everything; models, query sets and records keep the Db alive through
** their user values, so it is collected last.
*/
#include "lquay.h"

#include <stdio.h>
#include <string.h>

/*
** Raise `connection` unless pDb is open.  reference.md: a closed db raises it,
** with a message that says so, before any other check; so every method
** of a db, model, query set, record or set calls this first (through
** lquay_check_db, lquay_check_model, lquay_check_qs and the record and
** set method guards of lrecord.c).
*/
void lquay_check_open(lua_State *L, LDb *pDb) {
  if (pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database "
                 "(it was collected)");
  }
  if (!quay_db_is_open(pDb->db)) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database "
                 "(call db:reopen() or open a new one)");
  }
}

/* The Db at idx (self of a db method); misuse naming the method if not. */
static LDb *self_db(lua_State *L, int idx) {
  return lquay_check_self(L, idx, QUAY_DB_MT, "db", NULL);
}

/* The Db at idx, not freed (it may be closed: close, reopen, is_open...). */
static LDb *to_db(lua_State *L, int idx) {
  LDb *pDb = self_db(L, idx);
  if (pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database "
                 "(it was collected)");
  }
  return pDb;
}

LDb *lquay_check_db(lua_State *L, int idx) {
  LDb *pDb = to_db(L, idx);
  lquay_check_open(L, pDb);
  return pDb;
}

/*
** Mark the thread that runs this call (callbacks run on it).  A call that
** starts outside any on_query callback drops an observer error kept from
** an earlier call that never raised it (lcallback.c).
*/
LDb *lquay_enter(lua_State *L, LDb *pDb) {
  pDb->L = L;
  if (pDb->nHook == 0) lquay_cb_drop(L, pDb);
  return pDb;
}

/*
** Push a new Db userdata wrapping db (may be NULL: "closed", to be opened
** into).  User value 1 is the db's Lua state table.
*/
int lquay_db_wrap(lua_State *L, quay_db *db) {
  LDb *pDb = lua_newuserdatauv(L, sizeof(LDb), 1);   /* [db] */
  pDb->db = db;
  pDb->L = L;
  pDb->onQueryRef = LUA_NOREF;
  pDb->cbErrRef = LUA_NOREF;
  pDb->nHook = 0;
  pDb->bDeleteHooks = 0;
  pDb->pDelCall = NULL;
  pDb->bRoles = 0;
  luaL_setmetatable(L, QUAY_DB_MT);
  lua_createtable(L, 0, 2);                          /* [db, state] */
  lua_newtable(L);
  lua_setfield(L, -2, "models");
  /* Weak registry entry: C code finds the state from the LDb pointer. */
  lua_getfield(L, LUA_REGISTRYINDEX, "quay.dbstates");   /* [db, st, ws] */
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, pDb);
  lua_pop(L, 1);                                     /* [db, st] */
  lua_setiuservalue(L, -2, 1);                       /* [db] */
  return 1;
}

/* __gc: free everything (idempotent). */
static int db_gc(lua_State *L) {
  LDb *pDb = luaL_checkudata(L, 1, QUAY_DB_MT);
  quay_db *db = pDb->db;
  pDb->db = NULL;
  if (pDb->onQueryRef != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, pDb->onQueryRef);
    pDb->onQueryRef = LUA_NOREF;
  }
  lquay_cb_drop(L, pDb);
  quay_db_free(db);
  return 0;
}

/* db:close() and __close: disconnect, keep the schema (idempotent). */
static int db_close(lua_State *L) {
  LDb *pDb = self_db(L, 1);
  if (pDb->db) quay_db_disconnect(pDb->db);
  return 0;
}

static int db_reopen(lua_State *L) {
  LDb *pDb = to_db(L, 1);
  quay_err err;
  if (pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database "
                 "(it was collected)");
  }
  lquay_enter(L, pDb);
  if (quay_db_reopen(pDb->db, &err)) lquay_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

static int db_is_open(lua_State *L) {
  LDb *pDb = self_db(L, 1);
  lua_pushboolean(L, pDb->db && quay_db_is_open(pDb->db));
  return 1;
}

static int db_backend(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  lua_pushstring(L, quay_db_backend(pDb->db));
  return 1;
}

static int db_stats(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  lquay_check_nargs(L, 1, "db:stats()");
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)quay_db_query_count(pDb->db));
  lua_setfield(L, -2, "queries");
  if (!pDb->bRoles) return 1;       /* { queries = N } without replicas */
  lua_pushinteger(L, (lua_Integer)quay_db_role_count(pDb->db, 0));
  lua_setfield(L, -2, "primary");
  lua_pushinteger(L, (lua_Integer)quay_db_role_count(pDb->db, 1));
  lua_setfield(L, -2, "replica");
  return 1;
}

static int db_on_query(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lquay_check_type(L, 2, LUA_TFUNCTION, "db:on_query");
  }
  lua_settop(L, 2);
  if (pDb->onQueryRef != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, pDb->onQueryRef);
    pDb->onQueryRef = LUA_NOREF;
  }
  if (!lua_isnil(L, 2)) {
    pDb->onQueryRef = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  /* The engine calls out only while an observer is set: without one it
  ** knows no user code runs between its statements (bulk inserts). */
  if (pDb->db) {
    quay_db_on_query(pDb->db, pDb->onQueryRef != LUA_NOREF ? lquay_trace
                                                           : NULL, pDb);
  }
  return 0;
}

static int db_tostring(lua_State *L) {
  LDb *pDb = luaL_checkudata(L, 1, QUAY_DB_MT);
  if (pDb->db == NULL) {
    lua_pushliteral(L, "quay.Db (freed)");
  } else {
    lua_pushfstring(L, "quay.Db (%s, %s)", quay_db_backend(pDb->db),
                    quay_db_is_open(pDb->db) ? "open" : "closed");
  }
  return 1;
}

/* db:model(name [, spec]): declare, or look up with one argument. */
static int db_model(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  const char *zName;
  lquay_check_nargs(L, 3, "db:model(name, spec)");
  zName = lquay_name(L, 2, QUAY_EDECLARATION, "a model name");
  if (lua_isnoneornil(L, 3)) {
    quay_model *m = quay_db_model(pDb->db, zName);
    if (m == NULL) {
      lquay_raisef(L, QUAY_EDECLARATION, "no model named %s is declared",
                   zName);
    }
    lquay_push_model(L, pDb, m);
    return 1;
  }
  return lquay_declare(L);
}

static int db_check(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  quay_err err;
  lquay_check_nargs(L, 1, "db:check()");
  if (quay_db_resolve(pDb->db, &err)) lquay_raise(L, &err);
  lquay_behav_check_db(L, pDb);          /* methods vs reverse accessors */
  lua_settop(L, 1);
  return 1;
}

static int db_create_tables(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  lquay_check_nargs(L, 1, "db:create_tables()");
  if (quay_db_create_tables(pDb->db, &err)) lquay_fail(L, pDb, &err);
  lua_settop(L, 1);
  return 1;
}

static int db_drop_tables(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  lquay_check_nargs(L, 1, "db:drop_tables()");
  if (quay_db_drop_tables(pDb->db, &err)) lquay_fail(L, pDb, &err);
  lua_settop(L, 1);
  return 1;
}

/*
** {==================================================================
** Transactions
** ===================================================================
*/
/*
** Roll back every transaction level from depth iLevel up (iLevel counts
** from 0: 0 ends the whole transaction).  Errors are dropped, the caller
** raises the error that made it roll back, except one: a transaction
** ended outside Quay (the host's COMMIT or ROLLBACK on the shared
** connection) cannot be rolled back, so what it wrote may stay; that
** QUAY_EMISUSE goes into *pOut (may be NULL) and is returned.
*/
static int txn_unwind(quay_db *db, int iLevel, quay_err *pOut) {
  quay_err err;
  int rcOut = QUAY_OK;
  /* Each call drops at least one level, also when its ROLLBACK fails. */
  while (quay_db_txn_depth(db) > iLevel) {
    if (quay_db_rollback(db, &err) == QUAY_EMISUSE && rcOut == QUAY_OK) {
      rcOut = QUAY_EMISUSE;
      if (pOut) *pOut = err;
    }
  }
  return rcOut;
}

/* A transaction level that is rolled back if the call unwinds. */
typedef struct TxnGuard {
  quay_db *db;              /* NULL once the level is settled */
  int iLevel;               /* depth before the level was opened */
} TxnGuard;

static void txn_guard_free(void *p) {
  TxnGuard *g = p;
  if (g->db) txn_unwind(g->db, g->iLevel, NULL);
  g->db = NULL;
}

/*
** The options of db:transaction at idx into *pOpts: isolation (one of the
** standard level names) and readonly (boolean).  Anything else is misuse.
*/
static void txn_options(lua_State *L, int idx, quay_txn_opts *pOpts) {
  static const char *const azOpt[] = {"isolation", "readonly", NULL};
  static const char *const azLevel[] = {
    "read_committed", "repeatable_read", "serializable", NULL
  };
  static const int aeLevel[] = {
    QUAY_ISO_READ_COMMITTED, QUAY_ISO_REPEATABLE_READ, QUAY_ISO_SERIALIZABLE
  };
  pOpts->eIsolation = QUAY_ISO_DEFAULT;
  pOpts->bReadOnly = 0;
  if (!lquay_check_options(L, idx, azOpt, 0, "transaction")) return;
  pOpts->bReadOnly = lquay_opt_bool(L, idx, "readonly", "transaction");
  lquay_opt_get(L, idx, "isolation");
  if (!lua_isnil(L, -1)) {
    int i;
    const char *z = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : NULL;
    for (i = 0; z && azLevel[i]; i++) {
      if (strcmp(z, azLevel[i]) == 0) break;
    }
    if (z == NULL || azLevel[i] == NULL) {
      lquay_raisef(L, QUAY_EMISUSE, "transaction: isolation must be "
                   "\"read_committed\", \"repeatable_read\" or "
                   "\"serializable\", not %s%s%s", z ? "\"" : "a ",
                   z ? z : luaL_typename(L, -1), z ? "\"" : "");
    }
    pOpts->eIsolation = aeLevel[i];
  }
  lua_pop(L, 1);
}

static int error_text_k(lua_State *L) {
  quay_tostring(L, 1);
  return 1;
}

/*
** Push the string form of the error value at the top (quay_tostring) and
** return it; a __tostring that raises gives its type name instead, so the
** error raised is still Quay's.
*/
static const char *error_text(lua_State *L) {
  lua_pushcfunction(L, error_text_k);                /* [.., e, f] */
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {             /* [.., e, s|err] */
    lua_pop(L, 1);
    lua_pushfstring(L, "(a %s whose __tostring raised)",
                    luaL_typename(L, -1));
  }
  return lua_tostring(L, -1);
}

/*
** db:transaction(fn [, opts]): fn(db) in a transaction; nested calls
** savepoints.  opts { isolation = ..., readonly = bool } apply to the
** outermost level.  Every error that leaves it ends its level: rolled
** back, with any level fn left open above it, so the session stays usable
** (on PostgreSQL a failed statement aborts the transaction until it is
** rolled back).
*/
static int db_transaction(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  quay_txn_opts opts;
  Box *pGuard;
  TxnGuard *g;
  int base, rc, nRes;
  lquay_check_nargs(L, 3, "db:transaction(fn, opts)");
  lquay_check_type(L, 2, LUA_TFUNCTION, "db:transaction");
  txn_options(L, 3, &opts);
  lua_settop(L, 2);
  g = lua_newuserdatauv(L, sizeof(TxnGuard), 0);     /* [db, fn, g] */
  g->db = NULL;
  g->iLevel = quay_db_txn_depth(pDb->db);
  pGuard = lquay_box(L, txn_guard_free);             /* [db, fn, g, guard] */
  pGuard->p = g;
  if (quay_db_begin_opts(pDb->db, &opts, &err)) lquay_fail(L, pDb, &err);
  g->db = pDb->db;
  base = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0);              /* [.., results|err] */
  lquay_enter(L, pDb);
  if (rc != LUA_OK) {
    g->db = NULL;
    if (pDb->db && txn_unwind(pDb->db, g->iLevel, &err) != QUAY_OK) {
      /* The rollback could not happen: say so, with fn's error. */
      lquay_msg_append(err.zMsg, sizeof(err.zMsg), "; db:transaction was "
                       "rolling back after the error ");
      lquay_msg_append(err.zMsg, sizeof(err.zMsg),
                       error_text(L));               /* [.., e, s] */
      lquay_raise(L, &err);
    }
    if (lquay_behav_yielded(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "db:transaction: its function yielded; "
                   "it runs inside the call, which cannot be suspended, so "
                   "it was rolled back (yield before or after "
                   "db:transaction)");
    }
    return lua_error(L);                             /* keep fn's error */
  }
  g->db = NULL;
  if (quay_db_commit(pDb->db, &err)) {
    txn_unwind(pDb->db, g->iLevel, NULL);
    lquay_fail(L, pDb, &err);
  }
  nRes = lua_gettop(L) - base;
  return nRes;
}
/* }================================================================== */


/*
** {==================================================================
** Raw SQL
** ===================================================================
*/
/* Convert the params array at idx into a value array (scratch userdata
** pushed on the stack). */
static quay_value *raw_params(lua_State *L, int idx, int *pn) {
  quay_value *a;
  lua_Integer i, n;
  *pn = 0;
  if (lua_isnoneornil(L, idx)) return NULL;
  lquay_check_type(L, idx, LUA_TTABLE, "db:execute / db:rows params");
  n = (lua_Integer)lua_rawlen(L, idx);
  a = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n + 1), 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (lquay_to_value(L, -1, &a[i], 0, "params") != 0) {
      /* A record: bind its key.  Records are not raw values. */
      lquay_raisef(L, QUAY_EVALIDATION,
                   "params[%d]: records are not SQL values; pass rec.id",
                   (int)i + 1);
    }
    lua_pop(L, 1);
  }
  *pn = (int)n;
  return a;
}

static int db_execute(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  const char *zSql = lquay_name(L, 2, QUAY_ESQL, "SQL text");
  quay_err err;
  int n;
  int64_t nChanged = 0;
  quay_value *a = raw_params(L, 3, &n);
  if (quay_db_execute(pDb->db, zSql, a, n, &nChanged, &err)) {
    lquay_fail(L, pDb, &err);
  }
  lua_pushinteger(L, (lua_Integer)nChanged);
  return 1;
}

static int db_rows(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  const char *zSql = lquay_name(L, 2, QUAY_ESQL, "SQL text");
  quay_err err;
  int n, rc, nCol, i, iRes;
  lua_Integer nRow = 0;
  quay_value *a = raw_params(L, 3, &n);
  Box *pBox = lquay_box(L, (lquay_free_fn)quay_cursor_close);
  lua_newtable(L);                                   /* [.., box, res] */
  iRes = lua_gettop(L);
  rc = quay_db_query(pDb->db, zSql, a, n, (quay_cursor **)&pBox->p, &err);
  if (rc) {
    lquay_box_release(pBox);
    lquay_fail(L, pDb, &err);
  }
  nCol = quay_cursor_ncol(pBox->p);
  luaL_checkstack(L, nCol + 4, "row columns");
  for (i = 0; i < nCol; i++) {
    lua_pushstring(L, quay_cursor_colname(pBox->p, i));
  }
  while ((rc = quay_cursor_step(pBox->p, &err)) == QUAY_ROW) {
    lua_createtable(L, 0, nCol);
    for (i = 0; i < nCol; i++) {
      quay_value v;
      quay_cursor_value(pBox->p, i, &v);
      if (v.type == QUAY_NULL) continue;
      lua_pushvalue(L, iRes + 1 + i);
      lquay_push_value(L, &v);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, iRes, ++nRow);
  }
  lquay_box_release(pBox);
  if (rc != QUAY_DONE) lquay_fail(L, pDb, &err);
  lua_settop(L, iRes);
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** describe()
** ===================================================================
*/
static void set_str(lua_State *L, const char *zKey, const char *zVal) {
  if (zVal) {
    lua_pushstring(L, zVal);
    lua_setfield(L, -2, zKey);
  }
}

/* Push the model's composite indexes (bUnique 0) or unique_together
** entries as a list of lists of names, as declared. */
static void push_name_lists(lua_State *L, quay_model *m, int bUnique) {
  int i, j, n = quay_model_index_count(m, bUnique);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    const char *const *az;
    int nName;
    quay_model_index(m, bUnique, i, &az, &nName);
    lua_createtable(L, nName, 0);
    for (j = 0; j < nName; j++) {
      lua_pushstring(L, az[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
}

/* The describe() entry of one model. */
static void describe_model(lua_State *L, quay_model *m) {
  int i, n, k;
  lua_createtable(L, 0, 5);
  set_str(L, "name", quay_model_name(m));
  set_str(L, "table", quay_model_table(m));
  set_str(L, "description", quay_model_description(m));
  n = quay_model_field_count(m);
  lua_createtable(L, n, 0);
  for (i = k = 0; i < n; i++) {
    quay_field_info f;
    quay_model_field(m, i, &f);
    if (f.mFlags & QUAY_F_FKCOL) continue;
    lua_createtable(L, 0, 8);
    set_str(L, "name", f.zName);
    set_str(L, "column", f.zColumn);
    set_str(L, "type", quay_type_name(f.eType));
    lua_pushboolean(L, (f.mFlags & QUAY_F_NULL) != 0);
    lua_setfield(L, -2, "null");
    lua_pushboolean(L, (f.mFlags & (QUAY_F_UNIQUE | QUAY_F_PK)) != 0);
    lua_setfield(L, -2, "unique");
    lua_pushboolean(L, (f.mFlags & QUAY_F_PK) != 0);
    lua_setfield(L, -2, "primary_key");
    set_str(L, "description", f.zDescription);
    if (f.nMax) {
      lua_pushinteger(L, f.nMax);
      lua_setfield(L, -2, "max");
    }
    if (quay_type_flags(f.eType) & QUAY_TF_PRECISION) {
      lua_pushinteger(L, f.nDigits);
      lua_setfield(L, -2, "digits");
      lua_pushinteger(L, f.nPlaces);
      lua_setfield(L, -2, "places");
    }
    lua_pushboolean(L, (f.mFlags & QUAY_F_INDEX) != 0);
    lua_setfield(L, -2, "index");
    if (f.mFlags & QUAY_F_AUTO_NOW) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "auto_now");
    }
    if (f.mFlags & QUAY_F_AUTO_NOW_ADD) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "auto_now_add");
    }
    if (f.pDefault) {
      /* A static default (a function default is not reported). */
      lquay_push_value(L, f.pDefault);
      if (f.pDefault->type == QUAY_NULL) {
        lua_pop(L, 1);
        lquay_push_null(L);
      }
      lua_setfield(L, -2, "default");
    }
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "fields");
  push_name_lists(L, m, 0);
  lua_setfield(L, -2, "indexes");
  push_name_lists(L, m, 1);
  lua_setfield(L, -2, "unique_together");
  n = quay_model_relation_count(m);
  lua_createtable(L, n, 0);
  for (i = k = 0; i < n; i++) {
    quay_rel_info r;
    int iMember;
    quay_model_relation(m, i, &r);
    if (r.pTarget == NULL && r.eKind == QUAY_R_REVERSE) continue;
    if (quay_model_member(m, r.zName, &iMember) != QUAY_M_RELATION ||
        iMember != i) {
      continue;   /* a hidden reverse (skip_reverse, has_many / has_one
                  ** without related_name): no accessor, no path */
    }
    lua_createtable(L, 0, 9);
    set_str(L, "name", r.zName);
    set_str(L, "kind", quay_kind_name(r.eKind));
    set_str(L, "target", r.pTarget ? quay_model_name(r.pTarget) : NULL);
    set_str(L, "related_name", r.zRelatedName);
    if (r.eKind != QUAY_R_MANY_TO_MANY && r.eKind != QUAY_R_THROUGH &&
        !(r.eKind == QUAY_R_REVERSE &&
          r.eForwardKind == QUAY_R_MANY_TO_MANY)) {
      set_str(L, "on_delete", quay_rule_name(r.eOnDelete));
    }
    if (r.eKind == QUAY_R_BELONGS_TO || r.eKind == QUAY_R_ONE_TO_ONE) {
      set_str(L, "on_update", quay_rule_name(r.eOnUpdate));
      set_str(L, "column", r.zColumn);
    }
    set_str(L, "through", r.zThrough);
    set_str(L, "description", r.zDescription);
    if (r.eKind == QUAY_R_REVERSE) {
      set_str(L, "of", quay_kind_name(r.eForwardKind));
    }
    lua_pushboolean(L, r.toMany);
    lua_setfield(L, -2, "many");
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "relations");
}

static int db_describe(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  quay_err err;
  int i, n;
  lquay_check_nargs(L, 1, "db:describe()");
  if (quay_db_resolve(pDb->db, &err)) lquay_raise(L, &err);
  n = quay_db_model_count(pDb->db);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    quay_model *m = quay_db_model_at(pDb->db, i);
    describe_model(L, m);
    lquay_behav_describe(L, pDb, m);
    lua_setfield(L, -2, quay_model_name(m));
  }
  return 1;
}
/* }================================================================== */

/*
** {==================================================================
** Schema evolution
** ===================================================================
** Marshaling only: the engine reads the live schema, infers models,
** diffs, guards and runs migrations (include/quay.h "Schema evolution").
*/
static void set_bool(lua_State *L, const char *zKey, int b) {
  lua_pushboolean(L, b);
  lua_setfield(L, -2, zKey);
}

/* A list of n names; NULL entries (expressions) become false. */
static void push_names(lua_State *L, const char *const *az, int n) {
  int i;
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    if (az[i]) lua_pushstring(L, az[i]);
    else lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i + 1);
  }
}

/* [.., tables]: the tables of a schema (reference.md db:inspect()). */
static void push_tables(lua_State *L, const quay_schema *pS) {
  int i, k, n = quay_schema_table_count(pS);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    quay_table_info t;
    quay_schema_table(pS, i, &t);
    luaL_checkstack(L, 8, "inspect");
    lua_createtable(L, 0, 5);                        /* [.., tables, t] */
    set_str(L, "name", t.zName);
    lua_createtable(L, t.nColumn, 0);
    for (k = 0; k < t.nColumn; k++) {
      quay_column_info c;
      quay_schema_column(pS, i, k, &c);
      lua_createtable(L, 0, 6);
      set_str(L, "name", c.zName);
      set_str(L, "type", c.zType);
      set_bool(L, "null", c.bNull);
      set_str(L, "default", c.zDefault);
      set_bool(L, "primary_key", c.iPk > 0);
      set_bool(L, "auto", c.bAuto);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "columns");
    lua_createtable(L, t.nIndex, 0);
    for (k = 0; k < t.nIndex; k++) {
      quay_index_info x;
      quay_schema_index(pS, i, k, &x);
      lua_createtable(L, 0, 3);
      set_str(L, "name", x.zName);
      push_names(L, x.azColumn, x.nColumn);
      lua_setfield(L, -2, "columns");
      set_bool(L, "unique", x.bUnique);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "indexes");
    lua_createtable(L, t.nForeignKey, 0);
    for (k = 0; k < t.nForeignKey; k++) {
      quay_fkey_info f;
      quay_schema_foreign_key(pS, i, k, &f);
      lua_createtable(L, 0, 6);
      set_str(L, "name", f.zName);
      push_names(L, f.azColumn, f.nColumn);
      lua_setfield(L, -2, "columns");
      set_str(L, "table", f.zTable);
      push_names(L, f.azTo, f.nColumn);
      lua_setfield(L, -2, "to");
      set_str(L, "on_delete", f.zOnDelete);
      set_str(L, "on_update", f.zOnUpdate);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "foreign_keys");
    lua_createtable(L, t.nCheck, 0);
    for (k = 0; k < t.nCheck; k++) {
      lua_pushstring(L, quay_schema_check(pS, i, k));
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "checks");
    lua_rawseti(L, -2, i + 1);                       /* [.., tables] */
  }
}

/* [.., models]: the models `quay inspect` prints (an addition). */
static void push_models(lua_State *L, const quay_schema *pS) {
  int i, k, n = quay_schema_model_count(pS);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    quay_model_gen g;
    quay_schema_model(pS, i, &g);
    luaL_checkstack(L, 8, "inspect");
    lua_createtable(L, 0, 8);                        /* [.., models, m] */
    set_str(L, "name", g.zName);
    set_str(L, "table", g.zTable);
    set_bool(L, "default_table", g.bDefaultTable);
    set_bool(L, "skipped", g.isSkipped);
    set_str(L, "note", g.zNote);
    lua_createtable(L, g.nField, 0);
    for (k = 0; k < g.nField; k++) {
      quay_field_spec f;
      quay_schema_model_field(pS, i, k, &f);
      lua_createtable(L, 0, 10);
      set_str(L, "name", f.zName);
      set_str(L, "type", quay_type_name(f.eType));
      set_str(L, "column", f.zColumn);
      if (f.nMax) {
        lua_pushinteger(L, f.nMax);
        lua_setfield(L, -2, "max");
      }
      if (f.eType == QUAY_T_DECIMAL) {
        lua_pushinteger(L, f.nDigits);
        lua_setfield(L, -2, "digits");
        lua_pushinteger(L, f.nPlaces);
        lua_setfield(L, -2, "places");
      }
      if (f.mFlags & QUAY_F_NULL) set_bool(L, "null", 1);
      if (f.mFlags & QUAY_F_UNIQUE) set_bool(L, "unique", 1);
      if (f.mFlags & QUAY_F_INDEX) set_bool(L, "index", 1);
      if (f.mFlags & QUAY_F_PK) set_bool(L, "primary_key", 1);
      if (f.mFlags & QUAY_F_DEFAULT) {
        lquay_push_value(L, &f.dflt);
        lua_setfield(L, -2, "default");
      }
      if (f.nChoice > 0) {                  /* Quay's checks read back */
        int j;
        lua_createtable(L, f.nChoice, 0);
        for (j = 0; j < f.nChoice; j++) {
          lquay_push_value(L, &f.aChoice[j]);
          lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "choices");
      }
      if (f.pMin) {
        lquay_push_value(L, f.pMin);
        lua_setfield(L, -2, "min");
      }
      if (f.pMax) {
        lquay_push_value(L, f.pMax);
        lua_setfield(L, -2, "max");
      }
      lua_pushnumber(L, f.rSeq);
      lua_setfield(L, -2, "seq");
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "fields");
    lua_createtable(L, g.nRelation, 0);
    for (k = 0; k < g.nRelation; k++) {
      quay_rel_spec r;
      quay_schema_model_relation(pS, i, k, &r);
      lua_createtable(L, 0, 14);
      set_str(L, "name", r.zName);
      set_str(L, "kind", quay_kind_name(r.eKind));
      set_str(L, "target", r.zTarget);
      set_str(L, "column", r.zColumn);
      set_str(L, "to_field", r.zToField);
      set_str(L, "related_name", r.zRelatedName);
      set_str(L, "through", r.zThrough);
      set_str(L, "table", r.zTable);
      set_str(L, "source_key", r.zSourceKey);
      set_str(L, "target_key", r.zTargetKey);
      if (r.mFlags & QUAY_F_NULL) set_bool(L, "null", 1);
      if (r.mFlags & QUAY_F_NO_INDEX) set_bool(L, "index", 0);
      if (r.mFlags & QUAY_F_SKIP_REVERSE) set_bool(L, "skip_reverse", 1);
      if (r.eKind != QUAY_R_MANY_TO_MANY) {
        set_str(L, "on_delete", quay_rule_name(r.eOnDelete));
        set_str(L, "on_update", quay_rule_name(r.eOnUpdate));
      }
      if (r.mFlags & QUAY_F_DEFAULT) {
        lquay_push_value(L, &r.dflt);
        lua_setfield(L, -2, "default");
      }
      lua_pushnumber(L, r.rSeq);
      lua_setfield(L, -2, "seq");
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "relations");
    lua_createtable(L, g.nUnique, 0);
    for (k = 0; k < g.nUnique; k++) {
      const char *const *az;
      int nName;
      quay_schema_model_unique(pS, i, k, &az, &nName);
      push_names(L, az, nName);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "unique_together");
    lua_createtable(L, g.nIndex, 0);
    for (k = 0; k < g.nIndex; k++) {
      const char *const *az;
      int nName;
      quay_schema_model_index(pS, i, k, &az, &nName);
      push_names(L, az, nName);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "indexes");
    lua_rawseti(L, -2, i + 1);                       /* [.., models] */
  }
}

/* db:inspect() */
static int db_inspect(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  Box *pBox;
  lquay_check_nargs(L, 1, "db:inspect()");
  lua_settop(L, 1);
  pBox = lquay_box(L, (lquay_free_fn)quay_schema_free);  /* [db, box] */
  if (quay_db_inspect(pDb->db, (quay_schema **)&pBox->p, &err)) {
    lquay_fail(L, pDb, &err);
  }
  lua_createtable(L, 0, 2);                          /* [db, box, res] */
  push_tables(L, pBox->p);
  lua_setfield(L, -2, "tables");
  push_models(L, pBox->p);
  lua_setfield(L, -2, "models");
  return 1;
}

/* [.., steps]: the steps of a migration (reference.md "A step"). */
static void push_steps(lua_State *L, const quay_migration *p) {
  int i, k, n = quay_migration_count(p);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    quay_step_info s;
    quay_migration_step(p, i, &s);
    luaL_checkstack(L, 4, "steps");
    lua_createtable(L, 0, 8);
    set_str(L, "op", quay_op_name(s.eOp));
    set_str(L, "model", s.zModel);
    set_str(L, "table", s.zTable);
    set_str(L, "column", s.zColumn);
    set_str(L, "what", s.zWhat);
    lua_createtable(L, s.nSql, 0);
    for (k = 0; k < s.nSql; k++) {
      lua_pushstring(L, quay_migration_sql(p, i, k));
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "sql");
    if (s.bDestructive) set_bool(L, "destructive", 1);
    if (s.bRebuild) set_bool(L, "rebuild", 1);
    lua_rawseti(L, -2, i + 1);
  }
}

/* db:schema_diff() */
static int db_schema_diff(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  Box *pBox;
  lquay_check_nargs(L, 1, "db:schema_diff()");
  lua_settop(L, 1);
  pBox = lquay_box(L, (lquay_free_fn)quay_migration_free);
  if (quay_db_schema_diff(pDb->db, (quay_migration **)&pBox->p, &err)) {
    lquay_fail(L, pDb, &err);
  }
  push_steps(L, pBox->p);
  return 1;
}

/* An optional boolean option of a table of options at idx. */
static int opt_flag(lua_State *L, int idx, const char *zKey, const char *zFn) {
  int b;
  lquay_opt_get(L, idx, zKey);
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: option %s must be true or false",
                 zFn, zKey);
  }
  b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* Every key of the options table at idx must be one of az. */
static void check_keys(lua_State *L, int idx, const char *const *az,
                       const char *zFn) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int i, ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      for (i = 0; az[i]; i++) {
        if (strcmp(az[i], lua_tostring(L, -2)) == 0) ok = 1;
      }
    }
    if (!ok) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: unknown option '%s'", zFn,
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                  : luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
}

/* db:migrate { allow_drop = false, dry_run = false } */
static int db_migrate(lua_State *L) {
  static const char *const azOpt[] = { "allow_drop", "dry_run", NULL };
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  unsigned mFlags = 0;
  quay_err err;
  Box *pBox;
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EMISUSE, "db:migrate takes a table of options, "
                   "got %s", luaL_typename(L, 2));
    }
    check_keys(L, 2, azOpt, "db:migrate");
    if (opt_flag(L, 2, "allow_drop", "db:migrate")) {
      mFlags |= QUAY_MIGRATE_ALLOW_DROP;
    }
    if (opt_flag(L, 2, "dry_run", "db:migrate")) mFlags |= QUAY_MIGRATE_DRY_RUN;
  }
  if (lua_gettop(L) > 2) {
    lquay_raisef(L, QUAY_EMISUSE, "db:migrate takes one table of options");
  }
  lua_settop(L, 2);
  pBox = lquay_box(L, (lquay_free_fn)quay_migration_free);
  if (quay_db_migrate(pDb->db, mFlags, (quay_migration **)&pBox->p, &err)) {
    lquay_fail(L, pDb, &err);
  }
  push_steps(L, pBox->p);
  return 1;
}

/* The data migration of db:apply_migration: fn(db) under pcall. */
typedef struct DataArg {
  lua_State *L;
  int iFn, iDb;             /* stack slots of the function and the db */
  int errRef;               /* LUA_NOREF, or the error fn raised */
} DataArg;

/* Protected body [a, fn, db]: fn(db); its error is kept with luaL_ref
** (house rule 6). */
static int data_body(lua_State *L) {
  DataArg *a = lua_touserdata(L, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {             /* [a, fn] (db taken) */
    a->errRef = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

static int data_call(void *pArg, quay_db *db, quay_err *pErr) {
  DataArg *a = pArg;
  lua_State *L = a->L;
  int top = lua_gettop(L), rc;
  (void)db;
  if (!lua_checkstack(L, 4)) {
    pErr->code = QUAY_ENOMEM;
    snprintf(pErr->zMsg, sizeof(pErr->zMsg), "out of memory");
    return QUAY_ENOMEM;
  }
  lua_pushcfunction(L, data_body);                   /* '-' calls */
  lua_pushlightuserdata(L, a);
  lua_pushvalue(L, a->iFn);          /* slots of db_apply_migration's frame */
  lua_pushvalue(L, a->iDb);
  rc = lua_pcall(L, 3, 0, 0);
  lua_settop(L, top);
  if (rc != LUA_OK || a->errRef != LUA_NOREF) {
    pErr->code = QUAY_ECALLBACK;
    snprintf(pErr->zMsg, sizeof(pErr->zMsg), "the data function failed");
    return QUAY_ECALLBACK;
  }
  return QUAY_OK;
}

/*
** db:apply_migration { name =, checksum =, steps = {...}, data = fn }
** (an addition, for `quay migrate apply`): the steps and data of one
** versioned file, recorded in quay_migrations.  Returns true when it ran,
** false when it was recorded already (another process applied it).
*/
static int db_apply_migration(lua_State *L) {
  static const char *const azOpt[] = {
    "name", "checksum", "steps", "data", NULL
  };
  static const char *const azStepKey[] = {
    "op", "model", "table", "column", "what", "sql", "destructive",
    "rebuild", NULL
  };
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_apply_opts o;
  quay_err err;
  DataArg a;
  Box *pBox;
  lua_Integer i, n;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  check_keys(L, 2, azOpt, "db:apply_migration");
  lquay_opt_get(L, 2, "name");                       /* [db, t, name] */
  lquay_opt_get(L, 2, "checksum");                   /* [.., sum] */
  lquay_opt_get(L, 2, "steps");                      /* [.., steps] */
  lquay_opt_get(L, 2, "data");                       /* [.., data] */
  memset(&o, 0, sizeof(o));
  o.zName = lquay_name(L, 3, QUAY_EMISUSE, "db:apply_migration name");
  o.zChecksum = lquay_name(L, 4, QUAY_EMISUSE, "db:apply_migration checksum");
  if (!lua_isnil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
  if (!lua_isnil(L, 6) && !lua_isfunction(L, 6)) {
    lquay_raisef(L, QUAY_EMIGRATION, "migration %s: data must be a function "
                 "(data = function(db) ... end)", o.zName);
  }
  pBox = lquay_box(L, (lquay_free_fn)quay_migration_free);   /* [.., box] */
  if (quay_migration_new(pDb->db, (quay_migration **)&pBox->p, &err)) {
    lquay_raise(L, &err);
  }
  n = lua_isnil(L, 5) ? 0 : (lua_Integer)lua_rawlen(L, 5);
  for (i = 1; i <= n; i++) {
    quay_step_info s;
    const char *azSql[64];
    lua_Integer k, nSql;
    int top;
    lua_rawgeti(L, 5, i);                            /* [.., box, step] */
    top = lua_gettop(L);
    if (lua_type(L, top) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d is not a "
                   "table", o.zName, (int)i);
    }
    lua_pushnil(L);
    while (lua_next(L, top)) {                       /* [.., step, k, v] */
      int j, ok = 0;
      for (j = 0; azStepKey[j] && lua_type(L, -2) == LUA_TSTRING; j++) {
        if (strcmp(azStepKey[j], lua_tostring(L, -2)) == 0) ok = 1;
      }
      if (!ok) {
        lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d has an "
                     "unknown key '%s' (op, model, table, column, what, sql, "
                     "destructive, rebuild)", o.zName, (int)i,
                     lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                    : "?");
      }
      lua_pop(L, 1);
    }
    memset(&s, 0, sizeof(s));
    lquay_opt_get(L, top, "op");
    s.eOp = lua_type(L, -1) == LUA_TSTRING ? quay_op_code(lua_tostring(L, -1))
                                           : 0;
    if (s.eOp == 0) {
      lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d has no known "
                   "op (create_table, add_column, ...)", o.zName, (int)i);
    }
    lquay_opt_get(L, top, "table");
    if (lua_type(L, -1) != LUA_TSTRING) {
      lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d has no table",
                   o.zName, (int)i);
    }
    s.zTable = lua_tostring(L, -1);
    lquay_opt_get(L, top, "model");
    s.zModel = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lquay_opt_get(L, top, "column");
    s.zColumn = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lquay_opt_get(L, top, "what");
    s.zWhat = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lquay_opt_get(L, top, "rebuild");
    s.bRebuild = lua_toboolean(L, -1);
    lquay_opt_get(L, top, "destructive");
    s.bDestructive = lua_toboolean(L, -1);
    lquay_opt_get(L, top, "sql");                    /* [.., step, .., sql] */
    nSql = lua_type(L, -1) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, -1) : -1;
    if (nSql < 0 || nSql > 64) {
      lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d needs sql, a "
                   "list of at most 64 statements", o.zName, (int)i);
    }
    luaL_checkstack(L, (int)nSql + 2, "migration statements");
    for (k = 1; k <= nSql; k++) {
      lua_rawgeti(L, -1 - (int)(k - 1), k);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EMIGRATION, "migration %s: step %d: sql[%d] is "
                     "not a string", o.zName, (int)i, (int)k);
      }
      azSql[k - 1] = lua_tostring(L, -1);
    }
    s.nSql = (int)nSql;
    if (quay_migration_add(pBox->p, &s, azSql, &err)) lquay_raise(L, &err);
    lua_settop(L, top - 1);                          /* [.., box] */
  }
  a.L = L;
  a.iFn = 6;
  a.iDb = 1;
  a.errRef = LUA_NOREF;
  if (!lua_isnil(L, 6)) {
    o.xData = data_call;
    o.pDataArg = &a;
  }
  rc = quay_migration_apply(pDb->db, pBox->p, &o, &err);
  lquay_enter(L, pDb);
  lquay_box_release(pBox);
  if (a.errRef != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a.errRef);     /* fn's own error */
    luaL_unref(L, LUA_REGISTRYINDEX, a.errRef);
    return lua_error(L);
  }
  if (rc != QUAY_OK && rc != QUAY_DONE) lquay_fail(L, pDb, &err);
  lua_pushboolean(L, rc == QUAY_OK);
  return 1;
}

/* db:applied_migrations(): { { name =, checksum =, applied_at = }, ... } */
static int db_applied_migrations(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  lua_Integer n = 0;
  Box *pBox;
  int rc;
  lua_settop(L, 1);
  pBox = lquay_box(L, (lquay_free_fn)quay_cursor_close);   /* [db, box] */
  lua_newtable(L);                                   /* [db, box, list] */
  if (quay_db_applied_migrations(pDb->db, (quay_cursor **)&pBox->p, &err)) {
    lquay_fail(L, pDb, &err);
  }
  while ((rc = quay_cursor_step(pBox->p, &err)) == QUAY_ROW) {
    static const char *const azCol[] = { "name", "checksum", "applied_at" };
    int k;
    lua_createtable(L, 0, 3);
    for (k = 0; k < 3; k++) {
      quay_value v;
      quay_cursor_value(pBox->p, k, &v);
      lquay_push_value(L, &v);
      lua_setfield(L, -2, azCol[k]);
    }
    lua_rawseti(L, -2, ++n);
  }
  if (rc != QUAY_DONE) lquay_fail(L, pDb, &err);
  return 1;
}

/* quay.core.checksum(text): the checksum quay_migrations keeps. */
int lquay_checksum(lua_State *L) {
  size_t n;
  const char *z = luaL_checklstring(L, 1, &n);
  char zSum[17];
  quay_checksum(z, n, zSum);
  lua_pushstring(L, zSum);
  return 1;
}
/* }================================================================== */

static const luaL_Reg aDbMethod[] = {
  {"close", db_close},
  {"reopen", db_reopen},
  {"is_open", db_is_open},
  {"backend", db_backend},
  {"stats", db_stats},
  {"on_query", db_on_query},
  {"model", db_model},
  {"check", db_check},
  {"create_tables", db_create_tables},
  {"drop_tables", db_drop_tables},
  {"describe", db_describe},
  {"inspect", db_inspect},
  {"schema_diff", db_schema_diff},
  {"migrate", db_migrate},
  {"apply_migration", db_apply_migration},
  {"applied_migrations", db_applied_migrations},
  {"transaction", db_transaction},
  {"execute", db_execute},
  {"rows", db_rows},
  {NULL, NULL}
};

void lquay_open_db(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "quay.dbstates");
  if (lua_isnil(L, -1)) {
    lua_newtable(L);                                 /* weak-valued map */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "quay.dbstates");
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_DB_MT);                  /* [mt] */
  luaL_newlib(L, aDbMethod);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, db_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, db_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, db_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
