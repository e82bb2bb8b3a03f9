/*
** bindings/lquay.c
** The module entry (luaopen_quay_core), boxes, sentinels and the embedding
** entries of include/quay.h (quay_openlibs, quay_push_sqlite).
** See LICENSE
**
** Every metatable is complete when luaopen_quay_core returns, so no object
** is created before its __gc exists (manual §2.5.3: an object whose
** metatable lacks __gc when set is not marked for finalization).
*/
#include "lquay.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char lquay_LK_RESULT = 0;
const char lquay_LK_PK = 0;
const char lquay_LK_NONE = 0;
const char lquay_LK_PIVOT = 0;
const char lquay_LK_ANNS = 0;
const char lquay_LK_STRICT = 0;
const char lquay_LK_SERVER = 0;
const char lquay_LK_MODEL = 0;
const char lquay_LK_MEMBERS = 0;
const char lquay_LK_NAMES = 0;
const char lquay_LK_DEFAULTS = 0;
const char lquay_LK_PLANS = 0;
const char lquay_LK_OWNER = 0;
const char lquay_LK_REL = 0;
const char lquay_LK_LOADED = 0;
const char lquay_LK_RECMETHODS = 0;
const char lquay_LK_KEEP_TARGET = 0;
const char lquay_LK_KEEP_THROUGH = 0;
const char lquay_LK_KEEP_DEFAULT = 0;
const char lquay_LK_KEEP_JSON = 0;
const char lquay_LK_SETMODEL = 0;
const char lquay_LK_SETMTS = 0;
const char lquay_LK_FAST = 0;
const char lquay_LK_SNAP = 0;

/*
** {==================================================================
** Boxes
** ===================================================================
*/
/* __gc and __close: release the resource once. */
static int box_close(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, QUAY_BOX_MT);
  lquay_box_release(b);
  return 0;
}

void lquay_box_release(Box *b) {
  void *p = b->p;
  b->p = NULL;                      /* NULL first: idempotent */
  if (p && b->xFree) b->xFree(p);
}

/*
** Push a new, empty box marked to-be-closed: whatever is stored in it is
** released when the calling C function returns or unwinds.
*/
Box *lquay_box(lua_State *L, lquay_free_fn xFree) {
  Box *b = lua_newuserdatauv(L, sizeof(Box), 0);     /* [.., box] */
  b->p = NULL;
  b->xFree = xFree;
  b->idx = lua_gettop(L);
  luaL_setmetatable(L, QUAY_BOX_MT);
  lua_toclose(L, -1);
  return b;
}

void lquay_box_close(lua_State *L, Box *b) {
  lua_closeslot(L, b->idx);         /* also closes the slots above it */
}
/* }================================================================== */


/*
** {==================================================================
** quay.null and declaration values
** ===================================================================
*/
static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "quay.null");
  return 1;
}

void lquay_push_null(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "quay.null");
}

int lquay_is_null(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TUSERDATA) return 0;
  idx = lua_absindex(L, idx);
  lquay_push_null(L);
  r = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

const char *lquay_name(lua_State *L, int idx, int code, const char *zWhat) {
  size_t n;
  const char *z;
  if (lua_type(L, idx) != LUA_TSTRING) {
    lquay_raisef(L, code == QUAY_EDECLARATION ? code : QUAY_EMISUSE,
                 "%s must be a string, got %s", zWhat,
                 luaL_typename(L, idx));
  }
  z = lua_tolstring(L, idx, &n);
  if (strlen(z) != n) {
    lquay_raisef(L, code, "%s contains a NUL byte: no name can", zWhat);
  }
  return z;
}

/*
** {==================================================================
** Argument checks
** ===================================================================
** Quay's own replacements for luaL_check*: a wrong argument to a Quay
** method is a `misuse` error object naming the method and what it got,
** never Lua's "bad argument #2 to '?'".
*/
const char *lquay_callee(lua_State *L, const char *zDefault) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) {
    return ar.name;
  }
  return zDefault;
}

/* What the value at idx is, for messages: "a table", "1.5", "'abc'". */
static const char *describe_arg(lua_State *L, int idx, char *zBuf,
                                size_t nBuf) {
  switch (lua_type(L, idx)) {
    case LUA_TNONE: return "nothing";
    case LUA_TNIL: return "nil";
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        snprintf(zBuf, nBuf, "%lld", (long long)lua_tointeger(L, idx));
      } else {
        snprintf(zBuf, nBuf, "%.14g", (double)lua_tonumber(L, idx));
      }
      return zBuf;
    case LUA_TSTRING:
      snprintf(zBuf, nBuf, "'%.40s'", lua_tostring(L, idx));
      return zBuf;
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
  }
  snprintf(zBuf, nBuf, "a %s", luaL_typename(L, idx));
  return zBuf;
}

void lquay_arg_error(lua_State *L, int idx, const char *zMethod,
                     const char *zWant) {
  char zBuf[64];
  lquay_raisef(L, QUAY_EMISUSE, "%s: expected %s, got %s", zMethod, zWant,
               describe_arg(L, idx, zBuf, sizeof(zBuf)));
}

void lquay_check_type(lua_State *L, int idx, int t, const char *zMethod) {
  if (lua_type(L, idx) != t) {
    char zWant[40];
    snprintf(zWant, sizeof(zWant), "a %s", lua_typename(L, t));
    lquay_arg_error(L, idx, zMethod, zWant);
  }
}

lua_Integer lquay_check_integer(lua_State *L, int idx, const char *zMethod) {
  if (!lua_isinteger(L, idx)) {
    lquay_arg_error(L, idx, zMethod, "an integer");
  }
  return lua_tointeger(L, idx);
}

void *lquay_check_self(lua_State *L, int idx, const char *zMt,
                       const char *zObject, const char *zMethod) {
  void *p = luaL_testudata(L, idx, zMt);
  if (p == NULL) {
    char zBuf[64];
    if (zMethod == NULL) zMethod = lquay_callee(L, "method");
    lquay_raisef(L, QUAY_EMISUSE, "call %s:%s with a colon (%s:%s(...)): "
                 "it got %s instead of a %s", zObject, zMethod, zObject,
                 zMethod, describe_arg(L, idx, zBuf, sizeof(zBuf)), zMt);
  }
  return p;
}
/* }================================================================== */

/* core.descriptor(t): mark t as a field/relation descriptor. */
static int l_descriptor(lua_State *L) {
  lquay_check_type(L, 1, LUA_TTABLE, "quay.descriptor");
  lua_settop(L, 1);
  luaL_setmetatable(L, QUAY_DESC_MT);
  return 1;
}

/* quay.any { {...}, {...} }: OR of condition tables. */
static int l_any(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE) {
    lquay_arg_error(L, 1, "quay.any", "a list of conditions tables");
  }
  lua_settop(L, 1);
  lua_createtable(L, (int)lua_rawlen(L, 1), 0);
  {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      if (lua_type(L, -1) != LUA_TTABLE) {
        lquay_raisef(L, QUAY_EMISUSE,
                     "quay.any: element %d is not a conditions table",
                     (int)i);
      }
      lua_pushnil(L);
      if (!lua_next(L, -2)) {
        /* An empty alternative would make the OR keep every row: as
        ** filter {}, almost always a condition whose value was nil. */
        lquay_raisef(L, QUAY_EMISUSE, "quay.any: element %d is an empty "
                     "conditions table (a condition whose value is nil "
                     "vanishes from a Lua table)", (int)i);
      }
      lua_pop(L, 2);
      lua_rawseti(L, -2, i);
    }
    /* Keys besides 1..n (a named key, or items after a hole) would be
    ** alternatives left out without a word. */
    lua_pushnil(L);
    for (i = 0; lua_next(L, 1); i++) lua_pop(L, 1);
    if (i != n) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.any: expected a list of "
                   "conditions tables, but it has keys besides 1..%d (a "
                   "named key, or an item after a nil)", (int)n);
    }
  }
  luaL_setmetatable(L, QUAY_ANY_MT);
  return 1;
}

/* quay.prefetch(path, qs [, {to = name}]) */
static int l_prefetch(lua_State *L) {
  static const char *const azOpt[] = {"to", NULL};
  const char *zPath = lquay_name(L, 1, QUAY_EUNKNOWN_RELATION,
                                 "quay.prefetch path");
  const char *zTo = NULL;
  lquay_check_qs(L, 2);
  lquay_check_nargs(L, 3, "quay.prefetch(path, qs, opts)");
  if (lquay_check_options(L, 3, azOpt, 0, "quay.prefetch")) {
    lquay_opt_get(L, 3, "to");
    if (!lua_isnil(L, -1)) {
      zTo = lquay_name(L, -1, QUAY_EVALIDATION, "quay.prefetch `to`");
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 3);
  lua_pushstring(L, zPath);
  lua_setfield(L, -2, "path");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "qs");
  if (zTo) {
    lua_pushstring(L, zTo);
    lua_setfield(L, -2, "to");
  }
  luaL_setmetatable(L, QUAY_PREFETCH_MT);
  return 1;
}

/*
** Read the options table of quay.open at idx into *pOpts.  Every check
** raises before anything is acquired (rule 1).  The replica URLs stay
** owned by the table (it is on the stack for the whole call); their
** pointer array is a scratch userdata left on the stack.
*/
static void open_opts(lua_State *L, int idx, quay_open_opts *pOpts) {
  static const char *const azKnown[] = {
    "busy_timeout", "strict", "prepare", "replicas", "sticky", NULL
  };
  const char **az;
  lua_Integer i, n;
  memset(pOpts, 0, sizeof(*pOpts));
  pOpts->busy_timeout_ms = -1;
  pOpts->sticky_ms = -1;
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.open: the options must be a table, "
                 "got %s", luaL_typename(L, idx));
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {                         /* [.., key, value] */
    int k = -1;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *z = lua_tostring(L, -2);
      for (k = 0; azKnown[k] && strcmp(azKnown[k], z) != 0; k++) {}
      if (azKnown[k] == NULL) k = -1;
    }
    if (k < 0) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.open: unknown option %s%s%s (the "
                   "options are busy_timeout, strict, prepare, replicas "
                   "and sticky)", lua_type(L, -2) == LUA_TSTRING ? "'" : "",
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                  : luaL_typename(L, -2),
                   lua_type(L, -2) == LUA_TSTRING ? "'" : "");
    }
    lua_pop(L, 1);
  }
  lquay_opt_get(L, idx, "busy_timeout");
  if (!lua_isnil(L, -1)) {
    lua_Integer ms;
    if (!lua_isinteger(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.open: busy_timeout must be an "
                   "integer (milliseconds), got %s", luaL_typename(L, -1));
    }
    ms = lua_tointeger(L, -1);
    pOpts->busy_timeout_ms = ms < 0 ? 0 : (ms > INT32_MAX ? INT32_MAX
                                                         : (int)ms);
  }
  lquay_opt_get(L, idx, "strict");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.open: strict must be a boolean, "
                 "got %s", luaL_typename(L, -1));
  }
  pOpts->strict = lua_toboolean(L, -1);
  lquay_opt_get(L, idx, "prepare");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1)) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.open: prepare must be a boolean, "
                 "got %s", luaL_typename(L, -1));
  }
  pOpts->no_prepare = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  lquay_opt_get(L, idx, "sticky");
  if (!lua_isnil(L, -1)) {
    lua_Number r = 0;
    if (lua_type(L, -1) != LUA_TNUMBER || (r = lua_tonumber(L, -1)) < 0 ||
        r != r) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.open: sticky must be a number of "
                   "seconds >= 0, got %s", lua_type(L, -1) != LUA_TNUMBER
                   ? luaL_typename(L, -1)
                   : r != r ? "NaN" : "a negative number");
    }
    pOpts->sticky_ms = r * 1000 > (lua_Number)INT32_MAX ? INT32_MAX
                                                         : (int)(r * 1000);
  }
  lua_pop(L, 4);
  lquay_opt_get(L, idx, "replicas");                 /* [.., replicas] */
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.open: replicas must be a list of "
                   "URLs, got %s", luaL_typename(L, -1));
    }
    n = (lua_Integer)lua_rawlen(L, -1);
    if (n > 64) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.open: at most 64 replicas");
    }
    az = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (i = 1; i <= n; i++) {                       /* [.., reps, az] */
      if (lua_rawgeti(L, -2, i) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EMISUSE, "quay.open: replicas[%d] must be a "
                     "URL string, got %s", (int)i, luaL_typename(L, -1));
      }
      az[i - 1] = lua_tostring(L, -1);   /* kept alive by the table */
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    if (lua_next(L, -3)) {
      /* any key beyond 1..n */
      int bBad = 0;
      do {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
            lua_tointeger(L, -2) > n) {
          bBad = 1;
        }
        lua_pop(L, 1);
      } while (!bBad && lua_next(L, -3));
      if (bBad) {
        lquay_raisef(L, QUAY_EMISUSE, "quay.open: replicas must be a list "
                     "of URLs (a table with keys 1..n)");
      }
    }
    pOpts->azReplica = az;
    pOpts->nReplica = (int)n;
    lua_remove(L, -2);                               /* [.., az] */
  } else {
    lua_pop(L, 1);
  }
}

/* quay.open(url [, opts]) */
static int l_open(lua_State *L) {
  const char *zUrl = lquay_name(L, 1, QUAY_ECONNECTION, "the URL");
  quay_open_opts opts;
  quay_err err;
  LDb *pDb;
  int rc;
  if (lua_gettop(L) > 2) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.open(url, opts) takes at most 2 "
                 "arguments; argument 3 (a %s) would be ignored",
                 luaL_typename(L, 3));
  }
  lua_settop(L, 2);
  open_opts(L, 2, &opts);                  /* [url, opts, (az)] */
  /* The owner first, closed (db NULL); then open into it. */
  lquay_db_wrap(L, NULL);                  /* [url, opts, (az), db] */
  pDb = lua_touserdata(L, -1);
  if (lua_type(L, 2) == LUA_TTABLE) {
    /* primary and replica counts in stats() once replicas are named */
    pDb->bRoles = lquay_opt_get(L, 2, "replicas") != LUA_TNIL;
    lua_pop(L, 1);
  }
  rc = quay_db_open(zUrl, &opts, &pDb->db, &err);
  if (rc) lquay_raise(L, &err);
  return 1;
}

#ifdef QUAY_TEST
/* Test hooks: quay.core._test.* (QUAY_TEST builds only). */
static int t_fail_alloc(lua_State *L) {
  quay_test_fail_alloc((long)luaL_checkinteger(L, 1), lua_toboolean(L, 2));
  return 0;
}
static int t_alloc_count(lua_State *L) {
  lua_pushinteger(L, quay_test_alloc_count());
  return 1;
}
static int t_fail_statement(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  quay_test_fail_statement(pDb->db, (long)luaL_checkinteger(L, 2));
  return 0;
}
#endif

static const luaL_Reg aModuleFn[] = {
  {"open", l_open},
  {"descriptor", l_descriptor},
  {"any", l_any},
  {"prefetch", l_prefetch},
  {"checksum", lquay_checksum},
  {NULL, NULL}
};

static void set_int(lua_State *L, const char *z, int v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, z);
}

int luaopen_quay_core(lua_State *L) {
  luaL_checkversion(L);
  /* Metatables, complete before any object exists. */
  luaL_newmetatable(L, QUAY_BOX_MT);
  lua_pushcfunction(L, box_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, box_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_NULL_MT);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "quay.null");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_DESC_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_ANY_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_PREFETCH_MT);
  lua_pop(L, 1);
  lquay_open_error(L);
  lquay_open_db(L);
  lquay_open_model(L);
  lquay_open_record(L);
  lquay_open_qs(L);
  lquay_open_behav(L);
  /* quay.null: one userdata, kept in the registry. */
  lua_getfield(L, LUA_REGISTRYINDEX, "quay.null");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 0);
    luaL_setmetatable(L, QUAY_NULL_MT);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "quay.null");
  }
  lua_pop(L, 1);
  /* The module table. */
  luaL_newlib(L, aModuleFn);
  lquay_push_null(L);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, QUAY_VERSION);
  lua_setfield(L, -2, "version");
  set_int(L, "CASCADE", QUAY_CASCADE);
  set_int(L, "SET_NULL", QUAY_SET_NULL);
  set_int(L, "SET_DEFAULT", QUAY_SET_DEFAULT);
  set_int(L, "RESTRICT", QUAY_RESTRICT);
  set_int(L, "PROTECT", QUAY_PROTECT);
  set_int(L, "NO_ACTION", QUAY_NO_ACTION);
  lquay_open_expr(L);                 /* quay.F, quay.count, ... */
#ifdef QUAY_TEST
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, t_fail_alloc);
  lua_setfield(L, -2, "fail_alloc");
  lua_pushcfunction(L, t_alloc_count);
  lua_setfield(L, -2, "alloc_count");
  lua_pushcfunction(L, t_fail_statement);
  lua_setfield(L, -2, "fail_statement");
  lua_setfield(L, -2, "_test");
#endif
  return 1;
}

/*
** {==================================================================
** Embedding
** ===================================================================
*/
extern const unsigned char quay__lua_init[];
extern const size_t quay__lua_init_len;

/* package.preload["quay"]: run the embedded lua/quay/init.lua. */
static int preload_quay(lua_State *L) {
  if (luaL_loadbuffer(L, (const char *)quay__lua_init, quay__lua_init_len,
                      "=quay/init.lua") != LUA_OK) {
    return lua_error(L);
  }
  lua_pushliteral(L, "quay");
  lua_call(L, 1, 1);
  return 1;
}

int quay_openlibs(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);   /* [preload] */
  lua_pushcfunction(L, luaopen_quay_core);
  lua_setfield(L, -2, "quay.core");
  lua_pushcfunction(L, preload_quay);
  lua_setfield(L, -2, "quay");
  lua_pop(L, 1);
  return 0;
}

int quay_push_sqlite_opts(lua_State *L, struct sqlite3 *pHandle,
                          const quay_open_opts *pOpts) {
  LDb *pDb;
  quay_err err;
  quay_open_opts opts;
  int rc;
  /* The Lua binding's defaults (as quay.open), then the host's options;
  ** copied first: nothing below may raise with them half-read. */
  memset(&opts, 0, sizeof(opts));
  opts.busy_timeout_ms = -1;
  opts.sticky_ms = -1;
  if (pOpts) opts = *pOpts;
  opts.azReplica = NULL;            /* an embedded database has none */
  opts.nReplica = 0;
  /* Make sure the metatables exist (the module may not be loaded yet). */
  luaL_requiref(L, "quay.core", luaopen_quay_core, 0);
  lua_pop(L, 1);
  lquay_db_wrap(L, NULL);                          /* [db] (closed) */
  pDb = lua_touserdata(L, -1);
  rc = quay_db_wrap_sqlite(pHandle, &opts, &pDb->db, &err);
  if (rc) lquay_raise(L, &err);
  return 1;
}

int quay_push_sqlite(lua_State *L, struct sqlite3 *pHandle) {
  return quay_push_sqlite_opts(L, pHandle, NULL);
}
/* }================================================================== */
