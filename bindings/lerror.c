/*
** bindings/lerror.c
** Contract error objects (reference.md "Errors") and the one raiser.
** See LICENSE
**
** Errors are tables { code = "...", message = "..." } with a metatable
** whose __tostring gives the message.  protected / restricted errors also
** carry `blockers`, a list of { model = "Post", key = 3 }.  An error
** about one field (every validation error of a value) carries `model`
** and `field`.  lquay_raise is
** the only caller of lua_error in the binding: every caller releases what
** it holds first (house rule 5).
*/
#include "lquay.h"

#include <stdio.h>
#include <string.h>

static int err_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "quay error");
  }
  return 1;
}

void lquay_open_error(lua_State *L) {
  luaL_newmetatable(L, QUAY_ERR_MT);              /* [mt] */
  lua_pushcfunction(L, err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "quay.Error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);                                   /* [] */
}

/* Push the error object for pErr. */
void lquay_push_error(lua_State *L, const quay_err *pErr) {
  lua_createtable(L, 0, 4);                        /* [err] */
  lua_pushstring(L, quay_errname(pErr->code));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, pErr->zMsg[0] ? pErr->zMsg : quay_errname(pErr->code));
  lua_setfield(L, -2, "message");
  if (pErr->zState[0]) {
    lua_pushstring(L, pErr->zState);
    lua_setfield(L, -2, "sqlstate");
  }
  if (pErr->zModel[0]) {
    lua_pushstring(L, pErr->zModel);
    lua_setfield(L, -2, "model");
  }
  if (pErr->zField[0]) {
    lua_pushstring(L, pErr->zField);
    lua_setfield(L, -2, "field");
  }
  luaL_setmetatable(L, QUAY_ERR_MT);
}

/*
** quay_tostring (include/quay.h): the one string form of any error value
** for hosts.  A Quay error object (a table with string fields code and
** message, read raw) becomes "message (code)"; anything else goes to
** luaL_tolstring (strings, numbers, __tostring, __name).  Never NULL.
*/
const char *quay_tostring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, "message");                   /* [.., "message"] */
    lua_rawget(L, idx);                              /* [.., msg] */
    lua_pushliteral(L, "code");
    lua_rawget(L, idx);                              /* [.., msg, code] */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      const char *z = lua_pushfstring(L, "%s (%s)", lua_tostring(L, -2),
                                      lua_tostring(L, -1));
      lua_replace(L, -3);                            /* [.., s, code] */
      lua_pop(L, 1);                                 /* [.., s] */
      return z;
    }
    lua_pop(L, 2);
  }
  return luaL_tolstring(L, idx, NULL);               /* [.., s] */
}

/* Append ": <zTail>" to zMsg[nMsg], shortened with "..." when full. */
void lquay_msg_append(char *zMsg, size_t nMsg, const char *zTail) {
  size_t n = strlen(zMsg);
  int k;
  if (n + 1 >= nMsg) return;
  k = snprintf(zMsg + n, nMsg - n, "%s", zTail);
  if (k >= 0 && (size_t)k >= nMsg - n && nMsg > 4) {
    memcpy(zMsg + nMsg - 4, "...", 4);
  }
}

void lquay_raise(lua_State *L, const quay_err *pErr) {
  quay_err e = *pErr;                              /* may live in a box */
  lquay_push_error(L, &e);
  lua_error(L);
  for (;;) {}                                       /* not reached */
}

void lquay_raisef(lua_State *L, int code, const char *zFmt, ...) {
  quay_err e;
  va_list ap;
  quay_err_clear(&e);
  e.code = code;
  va_start(ap, zFmt);
  vsnprintf(e.zMsg, sizeof(e.zMsg), zFmt, ap);
  va_end(ap);
  lquay_raise(L, &e);
}

void lquay_raise_field(lua_State *L, int code, const char *zModel,
                       const char *zField, const char *zFmt, ...) {
  quay_err e;
  va_list ap;
  quay_err_clear(&e);
  e.code = code;
  snprintf(e.zModel, sizeof(e.zModel), "%s", zModel ? zModel : "");
  snprintf(e.zField, sizeof(e.zField), "%s", zField ? zField : "");
  va_start(ap, zFmt);
  vsnprintf(e.zMsg, sizeof(e.zMsg), zFmt, ap);
  va_end(ap);
  lquay_raise(L, &e);
}

/*
** Raise after an engine failure.  A callback (on_query) that raised made
** the engine fail with QUAY_ECALLBACK; its own error value is re-raised,
** unchanged (any Lua value).  Any other failure drops a kept callback
** error: it belongs to this call and was not what failed it.
*/
void lquay_fail(lua_State *L, LDb *pDb, const quay_err *pErr) {
  if (pErr->code == QUAY_ECALLBACK && pDb && pDb->cbErrRef != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, pDb->cbErrRef);
    lquay_cb_drop(L, pDb);
    lua_error(L);
  }
  if (pDb) lquay_cb_drop(L, pDb);
  if ((pErr->code == QUAY_EPROTECTED || pErr->code == QUAY_ERESTRICTED) &&
      pDb && pDb->db) {
    int i, n = quay_db_blocker_count(pDb->db);
    quay_err e = *pErr;
    lquay_push_error(L, &e);                       /* [err] */
    lua_createtable(L, n, 0);                      /* [err, list] */
    for (i = 0; i < n; i++) {
      quay_value k;
      const char *z = quay_db_blocker(pDb->db, i, &k);
      lua_createtable(L, 0, 2);
      lua_pushstring(L, z);
      lua_setfield(L, -2, "model");
      lquay_push_value(L, &k);
      lua_setfield(L, -2, "key");
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "blockers");               /* [err] */
    lua_error(L);
  }
  lquay_raise(L, pErr);
}
