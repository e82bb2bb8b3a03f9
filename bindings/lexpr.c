/*
** bindings/lexpr.c
** Expressions in Lua: quay.F, quay.count/sum/avg/min/max/exists,
** quay.trunc, their arithmetic and :desc()/:asc(), and their conversion
** into engine expressions (quay_expr).
** See LICENSE
**
** An expression is an immutable Lua table with the metatable quay.Expr:
**   { op = "col", path = "author__name" }
**   { op = "value", value = 2 }
**   { op = "+", a = <expr>, b = <expr> }           (also - * /)
**   { op = "agg", fn = "sum", path = "posts__views", filter = {...},
**     distinct = true, default = 0 }
**   { op = "trunc", unit = "month", path = "placed" }
** plus desc = true on an order_by term.  Nothing reaches the engine until
** a query set takes the expression (annotate, aggregate, values, order_by,
** a filter value, update): lquay_expr then builds the engine tree into a
** box, so a Lua error half-way releases it.  Names are checked by the
** engine when the query set binds it.
*/
#include "lquay.h"

#include <string.h>

/* Push a new expression table with op (metatable set). */
static void new_expr(lua_State *L, const char *zOp) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, zOp);
  lua_setfield(L, -2, "op");
  luaL_setmetatable(L, QUAY_EXPR_MT);
}

int lquay_is_expr(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, QUAY_EXPR_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* A path argument: a non-empty string. */
static const char *path_arg(lua_State *L, int idx, const char *zFn) {
  if (lua_type(L, idx) != LUA_TSTRING) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: the path must be a string, got %s",
                 zFn, luaL_typename(L, idx));
  }
  return lua_tostring(L, idx);
}

/* quay.F(path) */
static int l_F(lua_State *L) {
  path_arg(L, 1, "quay.F");
  if (lua_gettop(L) > 1) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.F takes one path");
  }
  new_expr(L, "col");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "path");
  return 1;
}

/* quay.<fn>([path], [opts]) for the aggregate named by upvalue 1. */
static int l_agg(lua_State *L) {
  const char *zFn = lua_tostring(L, lua_upvalueindex(1));
  int iOpts = 2;
  if (lua_gettop(L) > 2) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.%s takes a path and an options "
                 "table", zFn);
  }
  lua_settop(L, 2);
  if (lua_type(L, 1) == LUA_TTABLE && lua_isnil(L, 2) &&
      strcmp(zFn, "count") == 0) {
    iOpts = 1;                          /* quay.count { filter = ... } */
  } else if (lua_isnoneornil(L, 1)) {
    if (strcmp(zFn, "count") != 0) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.%s needs a path", zFn);
    }
  } else {
    path_arg(L, 1, zFn);
  }
  new_expr(L, "agg");                                /* [.., e] */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setfield(L, -2, "fn");
  if (iOpts == 2 && !lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "path");
  }
  if (!lua_isnoneornil(L, iOpts)) {
    if (lua_type(L, iOpts) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EMISUSE, "quay.%s: options must be a table",
                   zFn);
    }
    lua_pushnil(L);
    while (lua_next(L, iOpts)) {                     /* [.., e, k, v] */
      const char *zKey = lua_type(L, -2) == LUA_TSTRING
                             ? lua_tostring(L, -2) : "?";
      if (strcmp(zKey, "filter") == 0) {
        if (lua_type(L, -1) != LUA_TTABLE) {
          lquay_raisef(L, QUAY_EMISUSE, "quay.%s: filter must be a "
                       "conditions table", zFn);
        }
        lua_pushnil(L);
        if (!lua_next(L, -2)) {
          /* as filter {}: a condition whose value was nil */
          lquay_raisef(L, QUAY_EMISUSE, "quay.%s: filter {} is empty (a "
                       "condition whose value is nil vanishes from a Lua "
                       "table); leave the option out to count every row",
                       zFn);
        }
        lua_pop(L, 2);
      } else if (strcmp(zKey, "distinct") == 0) {
        if (lua_type(L, -1) != LUA_TBOOLEAN) {
          lquay_raisef(L, QUAY_EMISUSE, "quay.%s: distinct must be a "
                       "boolean", zFn);
        }
      } else if (strcmp(zKey, "default") != 0) {
        lquay_raisef(L, QUAY_EMISUSE, "quay.%s: unknown option '%s' (use "
                     "filter, distinct, default)", zFn, zKey);
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  return 1;
}

/* quay.trunc(unit, path) */
static int l_trunc(lua_State *L) {
  const char *zUnit = luaL_optstring(L, 1, "");
  if (strcmp(zUnit, "year") && strcmp(zUnit, "month") &&
      strcmp(zUnit, "day")) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.trunc: the unit is \"year\", "
                 "\"month\" or \"day\"");
  }
  path_arg(L, 2, "quay.trunc");
  if (lua_gettop(L) > 2) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.trunc takes a unit and a path");
  }
  new_expr(L, "trunc");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "unit");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "path");
  return 1;
}

/* Push an operand of arithmetic: an expression, or a number constant. */
static void push_operand(lua_State *L, int idx, const char *zOp) {
  if (lquay_is_expr(L, idx)) {
    lua_pushvalue(L, idx);
    return;
  }
  if (lua_type(L, idx) != LUA_TNUMBER) {
    lquay_raisef(L, QUAY_EMISUSE, "quay.F arithmetic (%s): an operand is "
                 "a %s; use numbers and expressions", zOp,
                 luaL_typename(L, idx));
  }
  new_expr(L, "value");
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "value");
}

static int arith(lua_State *L, const char *zOp) {
  new_expr(L, zOp);                                  /* [a, b, e] */
  push_operand(L, 1, zOp);
  lua_setfield(L, 3, "a");
  push_operand(L, 2, zOp);
  lua_setfield(L, 3, "b");
  return 1;
}

static int e_add(lua_State *L) { return arith(L, "+"); }
static int e_sub(lua_State *L) { return arith(L, "-"); }
static int e_mul(lua_State *L) { return arith(L, "*"); }
static int e_div(lua_State *L) { return arith(L, "/"); }

static int e_unm(lua_State *L) {
  lua_settop(L, 1);
  lua_pushinteger(L, 0);
  lua_insert(L, 1);                                  /* [0, e] */
  return arith(L, "-");
}

/* e:desc() / e:asc(): a copy with the direction set. */
static int order_copy(lua_State *L, int bDesc) {
  if (!lquay_is_expr(L, 1)) {
    lquay_raisef(L, QUAY_EMISUSE, "use expr:%s() with a colon",
                 bDesc ? "desc" : "asc");
  }
  lquay_check_nargs(L, 1, bDesc ? "expr:desc()" : "expr:asc()");
  lua_createtable(L, 0, 8);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushboolean(L, bDesc);
  lua_setfield(L, -2, "desc");
  luaL_setmetatable(L, QUAY_EXPR_MT);
  return 1;
}

static int e_desc(lua_State *L) { return order_copy(L, 1); }
static int e_asc(lua_State *L) { return order_copy(L, 0); }

static int e_tostring(lua_State *L) {
  lua_getfield(L, 1, "op");
  lua_getfield(L, 1, "path");
  lua_pushfstring(L, "quay.Expr(%s%s%s)", lua_tostring(L, -2),
                  lua_isstring(L, -1) ? " " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  return 1;
}

static int e_index(lua_State *L) {
  const char *z = lua_tostring(L, 2);
  if (z && strcmp(z, "desc") == 0) {
    lua_pushcfunction(L, e_desc);
    return 1;
  }
  if (z && strcmp(z, "asc") == 0) {
    lua_pushcfunction(L, e_asc);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* {======= Conversion to engine expressions */

static void expr_free(void *p) { quay_expr_free(p); }

static int agg_code(const char *z) {
  static const char *const az[] = {
    "count", "sum", "avg", "min", "max", "exists"
  };
  int i;
  for (i = 0; i < 6; i++) {
    if (strcmp(z, az[i]) == 0) return QUAY_AGG_COUNT + i;
  }
  return 0;
}

/*
** Build the engine expression of the table at idx into pBox (which owns it
** until the caller takes it).  Depth is bounded; each level keeps the Lua
** stack it uses in check.
*/
/* iDepth of a whole order_by term: the one place a direction belongs. */
#define ORDER_TERM (-1)

static void build(lua_State *L, int idx, Box *pBox, int iDepth) {
  const char *zOp;
  quay_err err;
  quay_expr *e = NULL;
  idx = lua_absindex(L, idx);
  if (iDepth > 64) {
    lquay_raisef(L, QUAY_EMISUSE, "an expression is nested more than 64 "
                 "levels deep");
  }
  if (!lquay_is_expr(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "expected an expression (quay.F, "
                 "quay.count, ...), got %s", luaL_typename(L, idx));
  }
  luaL_checkstack(L, 8, "expression");
  lua_getfield(L, idx, "op");
  zOp = lua_tostring(L, -1);
  lua_pop(L, 1);                        /* the table keeps the string */
  if (zOp == NULL) zOp = "";
  if (strcmp(zOp, "col") == 0 || strcmp(zOp, "trunc") == 0) {
    const char *zPath;
    lua_getfield(L, idx, "path");
    zPath = lua_tostring(L, -1);
    if (zOp[0] == 'c') {
      if (quay_expr_col(zPath, &e, &err)) lquay_raise(L, &err);
    } else {
      const char *zUnit;
      int eUnit;
      lua_getfield(L, idx, "unit");
      zUnit = luaL_optstring(L, -1, "");
      eUnit = strcmp(zUnit, "year") == 0 ? QUAY_UNIT_YEAR
              : strcmp(zUnit, "month") == 0 ? QUAY_UNIT_MONTH
              : strcmp(zUnit, "day") == 0 ? QUAY_UNIT_DAY : 0;
      if (quay_expr_trunc(eUnit, zPath, &e, &err)) lquay_raise(L, &err);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    pBox->p = e;
  } else if (strcmp(zOp, "value") == 0) {
    quay_value v;
    lua_getfield(L, idx, "value");
    lquay_to_value(L, -1, &v, 0, "a constant");
    if (quay_expr_value(&v, &e, &err)) lquay_raise(L, &err);
    pBox->p = e;
    lua_pop(L, 1);
  } else if (strcmp(zOp, "agg") == 0) {
    const char *zPath, *zFn;
    quay_cond *pFilter = NULL;
    quay_value dflt, *pDflt = NULL;
    Box *pF = NULL;
    int bDistinct;
    lua_getfield(L, idx, "fn");
    zFn = lua_tostring(L, -1);
    lua_getfield(L, idx, "path");
    zPath = lua_tostring(L, -1);
    lua_getfield(L, idx, "distinct");
    bDistinct = lua_toboolean(L, -1);
    lua_getfield(L, idx, "default");
    if (!lua_isnil(L, -1)) {
      lquay_to_value(L, -1, &dflt, 0, "default");
      pDflt = &dflt;
    }
    lua_getfield(L, idx, "filter");                  /* [.., filter] */
    if (!lua_isnil(L, -1)) {
      pF = lquay_box(L, (lquay_free_fn)quay_cond_free);
      pFilter = lquay_conds(L, -2, pF, NULL);        /* [.., f, box, keep] */
    }
    if (pF) pF->p = NULL;               /* quay_expr_agg takes it */
    if (quay_expr_agg(agg_code(zFn ? zFn : ""), zPath, pFilter, bDistinct,
                      pDflt, &e, &err)) {
      lquay_raise(L, &err);
    }
    pBox->p = e;
    /* The filter's record snapshots stay on the stack until the caller's
    ** query set has bound the expression (the caller keeps the stack). */
  } else {
    static const char *const azOp[] = { "+", "-", "*", "/" };
    int i, eOp = 0;
    quay_expr *a, *b;
    Box *pA, *pB;
    for (i = 0; i < 4; i++) {
      if (strcmp(zOp, azOp[i]) == 0) eOp = QUAY_X_ADD + i;
    }
    if (eOp == 0) {
      lquay_raisef(L, QUAY_EMISUSE, "not an expression (op '%s')", zOp);
    }
    pA = lquay_box(L, expr_free);
    lua_getfield(L, idx, "a");
    build(L, -1, pA, iDepth < 0 ? 1 : iDepth + 1);
    pB = lquay_box(L, expr_free);
    lua_getfield(L, idx, "b");
    build(L, -1, pB, iDepth < 0 ? 1 : iDepth + 1);
    a = pA->p;
    b = pB->p;
    pA->p = pB->p = NULL;               /* quay_expr_binary takes both */
    if (quay_expr_binary(eOp, a, b, &e, &err)) lquay_raise(L, &err);
    pBox->p = e;
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, "desc");       /* raw: __index answers methods */
    if (lua_rawget(L, idx) != LUA_TNIL && iDepth != ORDER_TERM) {
      /* A direction anywhere but on a whole order_by term would be
      ** dropped without a word. */
      lquay_raisef(L, QUAY_EMISUSE, "expr:%s() orders an order_by term "
                   "(order_by(quay.F(\"views\"):desc())); it has no "
                   "meaning %s", lua_toboolean(L, -1) ? "desc" : "asc",
                   iDepth > 0 ? "inside arithmetic"
                              : "in filter, update, annotate or values");
    }
    quay_expr_set_desc(pBox->p, lua_toboolean(L, -1));
    lua_pop(L, 1);
  }
}

static quay_expr *expr_top(lua_State *L, int idx, Box **ppBox, int iDepth) {
  Box *pBox;
  idx = lua_absindex(L, idx);
  pBox = lquay_box(L, expr_free);
  build(L, idx, pBox, iDepth);
  *ppBox = pBox;
  return pBox->p;
}

quay_expr *lquay_expr(lua_State *L, int idx, Box **ppBox) {
  return expr_top(L, idx, ppBox, 0);
}

quay_expr *lquay_expr_order(lua_State *L, int idx, Box **ppBox) {
  return expr_top(L, idx, ppBox, ORDER_TERM);
}
/* }======= */

static const luaL_Reg aExprFn[] = {
  {"F", l_F},
  {"trunc", l_trunc},
  {NULL, NULL}
};

void lquay_open_expr(lua_State *L) {
  static const char *const azAgg[] = {
    "count", "sum", "avg", "min", "max", "exists"
  };
  int i;
  /* [.., module] */
  luaL_newmetatable(L, QUAY_EXPR_MT);
  lua_pushcfunction(L, e_add);
  lua_setfield(L, -2, "__add");
  lua_pushcfunction(L, e_sub);
  lua_setfield(L, -2, "__sub");
  lua_pushcfunction(L, e_mul);
  lua_setfield(L, -2, "__mul");
  lua_pushcfunction(L, e_div);
  lua_setfield(L, -2, "__div");
  lua_pushcfunction(L, e_unm);
  lua_setfield(L, -2, "__unm");
  lua_pushcfunction(L, e_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, e_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_setfuncs(L, aExprFn, 0);
  for (i = 0; i < 6; i++) {
    lua_pushstring(L, azAgg[i]);
    lua_pushcclosure(L, l_agg, 1);
    lua_setfield(L, -2, azAgg[i]);
  }
}
