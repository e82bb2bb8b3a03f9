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
** re-raises the stored value once the engine call has returned
** (lquay_fail).  The stack is restored in every case.
*/
#include "lquay.h"

typedef struct TraceArg {
  LDb *pDb;
  const char *zSql;
  const quay_value *aParam;
  int nParam;
  int failed;               /* fn raised; its error is in pDb->cbErrRef */
} TraceArg;

/*
** Protected body: fn(sql, params).  fn runs under a nested pcall so its
** error can be stored with luaL_ref here, still inside protection.
*/
static int trace_body(lua_State *L) {
  TraceArg *t = lua_touserdata(L, 1);
  int i;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->pDb->onQueryRef);   /* [ud, fn] */
  lua_pushstring(L, t->zSql);                               /* [ud, fn, sql] */
  lua_createtable(L, t->nParam, 0);                         /* [.., params] */
  for (i = 0; i < t->nParam; i++) {
    lquay_push_value(L, &t->aParam[i]);
    lua_rawseti(L, -2, i + 1);
  }
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {                    /* [ud, err] */
    t->pDb->cbErrRef = luaL_ref(L, LUA_REGISTRYINDEX);      /* [ud] */
    t->failed = 1;
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
  if (pDb->cbErrRef != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, pDb->cbErrRef);        /* '-' */
    pDb->cbErrRef = LUA_NOREF;
  }
  top = lua_gettop(L);
  t.pDb = pDb;
  t.zSql = zSql;
  t.aParam = aParam;
  t.nParam = nParam;
  t.failed = 0;
  lua_pushcfunction(L, trace_body);                         /* '-' calls */
  lua_pushlightuserdata(L, &t);
  rc = lua_pcall(L, 1, 0, 0);
  lua_settop(L, top);
  return rc != LUA_OK || t.failed;
}
