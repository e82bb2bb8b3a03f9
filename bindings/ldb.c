/*
** bindings/ldb.c
** The Db object: open/close, stats, on_query, transactions, raw SQL,
** schema calls and describe().
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

#include <string.h>

/*
** Raise `connection` unless pDb is open.  API.md: a closed db raises it,
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
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, (lua_Integer)quay_db_query_count(pDb->db));
  lua_setfield(L, -2, "queries");
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
  const char *zName = lquay_name(L, 2, QUAY_EDECLARATION, "a model name");
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
  if (quay_db_resolve(pDb->db, &err)) lquay_raise(L, &err);
  lua_settop(L, 1);
  return 1;
}

static int db_create_tables(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  if (quay_db_create_tables(pDb->db, &err)) lquay_fail(L, pDb, &err);
  lua_settop(L, 1);
  return 1;
}

static int db_drop_tables(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
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
** from 0: 0 ends the whole transaction).  Errors are dropped: the caller
** raises the error that made it roll back.
*/
static void txn_unwind(quay_db *db, int iLevel) {
  quay_err err;
  /* Each call drops at least one level, also when its ROLLBACK fails. */
  while (quay_db_txn_depth(db) > iLevel) quay_db_rollback(db, &err);
}

/* A transaction level that is rolled back if the call unwinds. */
typedef struct TxnGuard {
  quay_db *db;              /* NULL once the level is settled */
  int iLevel;               /* depth before the level was opened */
} TxnGuard;

static void txn_guard_free(void *p) {
  TxnGuard *g = p;
  if (g->db) txn_unwind(g->db, g->iLevel);
  g->db = NULL;
}

/*
** db:transaction(fn): fn(db) in a transaction; nested calls savepoints.
** Every error that leaves it ends its level: rolled back, with any level
** fn left open above it, so the session stays usable (on PostgreSQL a
** failed statement aborts the transaction until it is rolled back).
*/
static int db_transaction(lua_State *L) {
  LDb *pDb = lquay_enter(L, lquay_check_db(L, 1));
  quay_err err;
  Box *pGuard;
  TxnGuard *g;
  int base, rc, nRes;
  lquay_check_type(L, 2, LUA_TFUNCTION, "db:transaction");
  lua_settop(L, 2);
  g = lua_newuserdatauv(L, sizeof(TxnGuard), 0);     /* [db, fn, g] */
  g->db = NULL;
  g->iLevel = quay_db_txn_depth(pDb->db);
  pGuard = lquay_box(L, txn_guard_free);             /* [db, fn, g, guard] */
  pGuard->p = g;
  if (quay_db_begin(pDb->db, &err)) lquay_fail(L, pDb, &err);
  g->db = pDb->db;
  base = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0);              /* [.., results|err] */
  lquay_enter(L, pDb);
  if (rc != LUA_OK) {
    g->db = NULL;
    if (pDb->db) txn_unwind(pDb->db, g->iLevel);     /* keep fn's error */
    return lua_error(L);
  }
  g->db = NULL;
  if (quay_db_commit(pDb->db, &err)) {
    txn_unwind(pDb->db, g->iLevel);
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
    quay_model_relation(m, i, &r);
    if (r.pTarget == NULL && r.eKind == QUAY_R_REVERSE) continue;
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
    if (r.eKind == QUAY_R_REVERSE) set_str(L, "of", quay_kind_name(r.eForwardKind));
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
  if (quay_db_resolve(pDb->db, &err)) lquay_raise(L, &err);
  n = quay_db_model_count(pDb->db);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    quay_model *m = quay_db_model_at(pDb->db, i);
    describe_model(L, m);
    lua_setfield(L, -2, quay_model_name(m));
  }
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
