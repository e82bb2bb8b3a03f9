/*
** bindings/lcallback.c
** Calls from C back into Lua: the db:on_query observer.
** See LICENSE
**
** The engine calls lquay_trace before every statement, from inside engine
** frames that must never be unwound by a longjmp.  So the Lua callback runs
** under lua_pcall (house rule 6): only non-raising API calls happen
** outside it; the real work (building the params table, calling fn) runs
** in a protected C function.  An error is stored in the registry and the
** engine is told to fail the statement (QUAY_ECALLBACK); the binding
** re-raises the stored value, unchanged, once the engine call has
** returned (lquay_fail).  The stack is restored in every case.
**
** One engine call may run the observer several times after it failed:
** a failed write rolls back, and the ROLLBACK is observed too.  So the
** first error of a call is the one kept (pDb->cbErrRef), later ones are
** dropped, and the kept one lives until the binding raises (lquay_fail
** takes it) or the next call starts from outside any observer
** (lquay_enter drops it then: the engine never reported it, e.g. it came
** from a ROLLBACK the engine sends whatever the observer says).
**
** The observer is user code and may re-enter the db: run statements, or
** close or reopen it.  The engine checks the connection again after every
** observer call (exec.c before_send); here pDb->nHook counts the observer
** calls in progress, so that a nested call does not drop the error kept
** for the call around it.  No other callback reaches Lua: SQLite's busy
** handling is sqlite3_busy_timeout (C) and libpq's notices go to a C
** function that drops them.
*/
#include "lquay.h"

typedef struct TraceArg {
  LDb *pDb;
  const char *zSql;
  const quay_value *aParam;
  int nParam;
  int failed;               /* fn raised; its error is kept (or dropped) */
} TraceArg;

/*
** Protected body: fn(sql, params), params an array with params.n, the
** number of parameters (a NULL parameter is nil at its index, so ipairs
** would stop there).  fn runs under a nested pcall so its error can be
** kept with luaL_ref here, still inside protection.
*/
static int trace_body(lua_State *L) {
  TraceArg *t = lua_touserdata(L, 1);
  int i;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->pDb->onQueryRef);   /* [ud, fn] */
  lua_pushstring(L, t->zSql);                               /* [ud, fn, sql] */
  lua_createtable(L, t->nParam, 1);                         /* [.., params] */
  for (i = 0; i < t->nParam; i++) {
    lquay_push_value(L, &t->aParam[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, t->nParam);
  lua_setfield(L, -2, "n");
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {                    /* [ud, err] */
    t->failed = 1;
    if (t->pDb->cbErrRef == LUA_NOREF) {
      t->pDb->cbErrRef = luaL_ref(L, LUA_REGISTRYINDEX);    /* [ud] */
    }
  }
  return 0;
}

int lquay_trace(void *pArg, const char *zSql, const quay_value *aParam,
                int nParam) {
  LDb *pDb = pArg;
  lua_State *L = pDb->L;
  TraceArg t;
  int top, rc;
  if (L == NULL || pDb->onQueryRef == LUA_NOREF) return 0;
  if (!lua_checkstack(L, 4)) return 1;
  top = lua_gettop(L);
  t.pDb = pDb;
  t.zSql = zSql;
  t.aParam = aParam;
  t.nParam = nParam;
  t.failed = 0;
  pDb->nHook++;
  lua_pushcfunction(L, trace_body);                         /* '-' calls */
  lua_pushlightuserdata(L, &t);
  rc = lua_pcall(L, 1, 0, 0);
  lua_settop(L, top);
  pDb->nHook--;
  return rc != LUA_OK || t.failed;
}

/*
** Drop a kept observer error (a '-' call).  From lquay_enter outside any
** observer call, and wherever the binding raises something else.
*/
void lquay_cb_drop(lua_State *L, LDb *pDb) {
  if (pDb->cbErrRef != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, pDb->cbErrRef);
    pDb->cbErrRef = LUA_NOREF;
  }
}
