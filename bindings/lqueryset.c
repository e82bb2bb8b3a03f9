/*
** bindings/lqueryset.c
** Query sets: chaining, terminal calls, and the materializer that turns
** engine rows into records for all(), prefetch steps, lazy loads and
** streaming iteration.
** See LICENSE
**
** The materializer is the hot path (docs/ENGINE.md "Measured facts":
** building Lua values is half the cost of reading rows).  Per query it
** pushes each node's field names once and reuses them as keys; per row it
** creates one table per record with lua_createtable sized for its fields,
** raw-sets non-NULL values, and sets the metatable.  Records reached
** through a JOIN or a batched step are deduplicated by primary key in a C
** key set, so 100k posts of 10k authors make 10k author tables.  Batched
** steps collect owner keys into a key set once and attach each child to its
** owner group by one hash probe; no per-row work happens in Lua code.
**
** Every engine resource (plan, cursor, key set) lives in a box marked
** to-be-closed, so a Lua error at any point (out of memory while building
** a table, a failing callback) releases it.
*/
#include "lquay.h"

#include <string.h>

#define ITER_CHUNK 256

LQUAY_INTERNAL void lquay_push_counts(lua_State *L, quay_counts *c);

/*
** {==================================================================
** Query-set userdata
** ===================================================================
*/
static int qs_gc(lua_State *L) {
  LQs *q = luaL_checkudata(L, 1, QUAY_QS_MT);
  quay_qs *qs = q->qs;
  q->qs = NULL;
  quay_qs_free(qs);
  return 0;
}

LQs *lquay_check_qs(lua_State *L, int idx) {
  LQs *q = lquay_check_self(L, idx, QUAY_QS_MT, "qs", NULL);
  lua_getiuservalue(L, idx, 1);                      /* [.., M] */
  lquay_check_open(L, ((LModel *)lua_touserdata(L, -1))->pDb);
  lua_pop(L, 1);
  if (q->qs == NULL) lquay_raisef(L, QUAY_EMISUSE, "query set was freed");
  return q;
}

/* Push a new query-set userdata for the Model at iModel, holding qs (may
** be NULL: the caller acquires into it). */
void lquay_push_qs(lua_State *L, int iModel, quay_qs *qs) {
  LQs *q;
  iModel = lua_absindex(L, iModel);
  q = lua_newuserdatauv(L, sizeof(LQs), 1);
  q->qs = qs;
  luaL_setmetatable(L, QUAY_QS_MT);
  lua_pushvalue(L, iModel);
  lua_setiuservalue(L, -2, 1);
}

/* Push the Model of the query set at idx; returns it (ready). */
static LModel *qs_model(lua_State *L, int idx) {
  LModel *pM;
  lua_getiuservalue(L, idx, 1);
  pM = lua_touserdata(L, -1);
  if (pM->pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a freed database");
  }
  lquay_enter(L, pM->pDb);
  return lquay_ready(L, pM);
}

/* Push Model:query() for the Model at iModel. */
int lquay_root_qs(lua_State *L, int iModel) {
  LModel *pM = lua_touserdata(L, iModel);
  LQs *q;
  quay_err err;
  lquay_push_qs(L, iModel, NULL);
  q = lua_touserdata(L, -1);
  if (quay_qs_new(pM->m, &q->qs, &err)) lquay_raise(L, &err);
  return 1;
}

/* Push a new query set of the same model as the one at idx, empty. */
static LQs *derived(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);                      /* [.., M] */
  lquay_push_qs(L, -1, NULL);                        /* [.., M, qs] */
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

static int qs_filter_x(lua_State *L, int bExclude) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  quay_cond *c;
  LQs *out;
  Box *pBox;
  lquay_check_nargs(L, 2, bExclude ? "exclude(conds)" : "filter(conds)");
  lua_settop(L, 2);
  qs_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) {
    lquay_arg_error(L, 2, bExclude ? "exclude" : "filter",
                    "a conditions table");
  }
  lua_pushnil(L);
  if (!lua_next(L, 2)) {
    /* filter {} would keep every row: almost always a condition whose
    ** value variable was nil. */
    lquay_raisef(L, QUAY_EMISUSE, "%s:%s {}: the conditions are empty (a "
                 "condition whose value is nil vanishes from a Lua table); "
                 "use query() for every row",
                 quay_model_name(quay_qs_model(q->qs)),
                 bExclude ? "exclude" : "filter");
  }
  lua_pop(L, 2);
  pBox = lquay_box(L, (lquay_free_fn)quay_cond_free);
  c = lquay_conds(L, 2, pBox, quay_model_name(quay_qs_model(q->qs)));
  out = derived(L, 1);
  pBox->p = NULL;                                    /* engine owns it */
  if (quay_qs_filter(q->qs, c, bExclude, &out->qs, &err)) {
    lquay_raise(L, &err);
  }
  return 1;
}

static int qs_filter(lua_State *L) { return qs_filter_x(L, 0); }
static int qs_exclude(lua_State *L) { return qs_filter_x(L, 1); }

/* The target model of a relation path, for where_has(rel, fn). */
static quay_model *path_target(lua_State *L, quay_model *m,
                               const char *zPath) {
  char zSeg[256];
  const char *z = zPath;
  while (*z) {
    const char *e = strstr(z, "__");
    size_t n = e ? (size_t)(e - z) : strlen(z);
    int k;
    quay_rel_info r;
    if (n >= sizeof(zSeg)) n = sizeof(zSeg) - 1;
    memcpy(zSeg, z, n);
    zSeg[n] = 0;
    if (quay_model_member(m, zSeg, &k) != QUAY_M_RELATION) {
      lquay_raisef(L, QUAY_EUNKNOWN_RELATION, "%s has no relation '%s' (in "
                   "'%s')", quay_model_name(m), zSeg, zPath);
    }
    quay_model_relation(m, k, &r);
    m = r.pTarget;
    z = e ? e + 2 : z + n;
  }
  return m;
}

static int qs_where_has_x(lua_State *L, int bNot) {
  LQs *q = lquay_check_qs(L, 1);
  const char *zRel = lquay_name(L, 2, QUAY_EUNKNOWN_RELATION,
                                "a relation path");
  LModel *pM;
  quay_err err;
  LQs *out;
  int rc;
  lua_settop(L, 3);
  pM = qs_model(L, 1);                               /* [q, rel, c, M] */
  if (lua_type(L, 3) == LUA_TFUNCTION) {
    quay_model *t = path_target(L, pM->m, zRel);
    LQs *sub;
    int iT;
    lquay_push_model(L, pM->pDb, t);                 /* [q, rel, fn, M, T] */
    iT = lua_gettop(L);
    lua_pushvalue(L, 3);
    lquay_root_qs(L, iT);                            /* [.., T, fn, qs] */
    lquay_behav_call(L, 1, 1, quay_model_name(t),
                     "a where_has function");        /* [.., T, sub] */
    sub = luaL_testudata(L, -1, QUAY_QS_MT);
    if (sub == NULL || sub->qs == NULL) {
      lquay_raisef(L, QUAY_EMISUSE, "where_has('%s', fn): fn must return a "
                   "query set", zRel);
    }
    out = derived(L, 1);
    rc = quay_qs_where_has(q->qs, zRel, NULL, sub->qs, bNot, &out->qs, &err);
  } else if (lua_type(L, 3) == LUA_TTABLE) {
    Box *pBox = lquay_box(L, (lquay_free_fn)quay_cond_free);
    quay_cond *c = lquay_conds(L, 3, pBox,
                               quay_model_name(path_target(L, pM->m, zRel)));
    out = derived(L, 1);
    pBox->p = NULL;
    rc = quay_qs_where_has(q->qs, zRel, c, NULL, bNot, &out->qs, &err);
  } else if (lua_isnil(L, 3)) {
    out = derived(L, 1);
    rc = quay_qs_where_has(q->qs, zRel, NULL, NULL, bNot, &out->qs, &err);
  } else {
    lquay_arg_error(L, 3, bNot ? "where_doesnt_have" : "where_has",
                    "a conditions table or a function");
  }
  if (rc) lquay_raise(L, &err);
  return 1;
}

static int qs_where_has(lua_State *L) { return qs_where_has_x(L, 0); }
static int qs_where_doesnt_have(lua_State *L) { return qs_where_has_x(L, 1); }

static void expr_box_free(void *p) { quay_expr_free(p); }
static void cursor_free(void *p);

/* order_by("-views", "author__name", quay.F("x"):desc(), ...) */
static int qs_order_by(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  int i, n = lua_gettop(L) - 1, bExpr = 0;
  const char **az;
  quay_err err;
  LQs *out;
  qs_model(L, 1);
  for (i = 0; i < n; i++) bExpr |= lquay_is_expr(L, i + 2);
  if (!bExpr) {
    az = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
    for (i = 0; i < n; i++) {
      az[i] = lquay_name(L, i + 2, QUAY_EUNKNOWN_FIELD, "an order_by term");
    }
    out = derived(L, 1);
    if (quay_qs_order_by(q->qs, az, n, &out->qs, &err)) lquay_raise(L, &err);
    return 1;
  }
  {
    /* Expressions: every term becomes one (strings as quay.F columns). */
    quay_expr **ap;
    Box **apBox;
    int top;
    luaL_checkstack(L, 2 * n + 8, "order_by");
    ap = lua_newuserdatauv(L, sizeof(quay_expr *) * (size_t)(n + 1), 0);
    apBox = lua_newuserdatauv(L, sizeof(Box *) * (size_t)(n + 1), 0);
    for (i = 0; i < n; i++) {
      if (lquay_is_expr(L, i + 2)) {
        ap[i] = lquay_expr_order(L, i + 2, &apBox[i]);
      } else {
        const char *z = lquay_name(L, i + 2, QUAY_EUNKNOWN_FIELD,
                                   "an order_by term");
        int bDesc = z[0] == '-';
        apBox[i] = lquay_box(L, expr_box_free);
        if (quay_expr_col(z + (z[0] == '-' || z[0] == '+'),
                          (quay_expr **)&apBox[i]->p, &err)) {
          lquay_raise(L, &err);
        }
        ap[i] = apBox[i]->p;
        quay_expr_set_desc(ap[i], bDesc);
      }
    }
    top = lua_gettop(L);
    out = derived(L, 1);
    for (i = 0; i < n; i++) apBox[i]->p = NULL;     /* the engine takes them */
    if (quay_qs_order_by_expr(q->qs, ap, n, &out->qs, &err)) {
      lquay_raise(L, &err);
    }
    (void)top;
    return 1;
  }
}

/* The string keys of the table at idx, sorted (a userdata array pushed;
** the strings stay alive as keys of the table). */
static const char **sorted_names(lua_State *L, int idx, int *pn,
                                 const char *zWhat) {
  int n = 0, i, j;
  lua_Integer nList = (lua_Integer)lua_rawlen(L, idx), nNum = 0;
  const char **az;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      n++;
    } else if (zWhat && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
               lua_tointeger(L, -2) <= nList) {
      nNum++;                          /* a path of the list part */
    } else if (zWhat) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: keys must be names or a list "
                   "1..n of paths, got the key %s", zWhat,
                   luaL_tolstring(L, -2, NULL));
    }
    lua_pop(L, 1);
  }
  if (zWhat && nNum != nList) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: the list of paths has a hole (a "
                 "nil among them)", zWhat);
  }
  az = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      az[n++] = lua_tostring(L, -2);
    } else if (lua_type(L, -2) != LUA_TNUMBER || zWhat == NULL) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: keys must be names",
                   zWhat ? zWhat : "annotate");
    }
    lua_pop(L, 1);
  }
  for (i = 1; i < n; i++) {            /* insertion sort: few names */
    const char *z = az[i];
    for (j = i; j > 0 && strcmp(az[j - 1], z) > 0; j--) az[j] = az[j - 1];
    az[j] = z;
  }
  *pn = n;
  return az;
}

/* annotate { name = expr, ... }: one annotation per name, in name order. */
static int qs_annotate(lua_State *L) {
  int i, n, iT;
  const char **az;
  quay_err err;
  lquay_check_qs(L, 1);
  qs_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE || lua_gettop(L) > 3) {
    lquay_raisef(L, QUAY_EMISUSE, "annotate takes one table: annotate { "
                 "n = quay.count(\"posts\") }");
  }
  iT = 2;
  az = sorted_names(L, iT, &n, NULL);
  if (n == 0) {
    lquay_raisef(L, QUAY_EMISUSE, "annotate: the table names no "
                 "annotation");
  }
  lua_pushvalue(L, 1);                               /* [.., cur] */
  for (i = 0; i < n; i++) {
    LQs *cur = lua_touserdata(L, -1), *out;
    Box *pBox;
    quay_expr *e;
    int top = lua_gettop(L);
    lua_getfield(L, iT, az[i]);
    if (!lquay_is_expr(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "annotate: %s must be an expression "
                   "(quay.count, quay.F, ...), got %s", az[i],
                   luaL_typename(L, -1));
    }
    e = lquay_expr(L, -1, &pBox);
    pBox->p = NULL;                                  /* the engine takes it */
    lua_pushvalue(L, top);
    out = derived(L, -1);
    if (quay_qs_annotate(cur->qs, az[i], e, &out->qs, &err)) {
      lquay_raise(L, &err);
    }
    lua_replace(L, top);
    lquay_box_close(L, pBox);           /* (empty) before popping it */
    lua_settop(L, top);
  }
  return 1;
}

/* aggregate { name = aggregate, ... } -> a plain table */
static int qs_aggregate(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM;
  int i, n, nCol, rc;
  const char **az;
  quay_expr **ap;
  quay_err err;
  Box *pCur;
  pM = qs_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE || lua_gettop(L) > 3) {
    lquay_raisef(L, QUAY_EMISUSE, "aggregate takes one table: aggregate { "
                 "n = quay.count() }");
  }
  az = sorted_names(L, 2, &n, NULL);
  if (n == 0) {
    lquay_raisef(L, QUAY_EMISUSE, "aggregate: the table names no "
                 "aggregate");
  }
  luaL_checkstack(L, n + 8, "aggregate");
  ap = lua_newuserdatauv(L, sizeof(quay_expr *) * (size_t)(n + 1), 0);
  for (i = 0; i < n; i++) {
    Box *pBox;
    lua_getfield(L, 2, az[i]);
    if (!lquay_is_expr(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "aggregate: %s must be an aggregate "
                   "(quay.count, quay.sum, ...), got %s", az[i],
                   luaL_typename(L, -1));
    }
    ap[i] = lquay_expr(L, -1, &pBox);                /* box keeps it */
  }
  pCur = lquay_box(L, cursor_free);
  if (quay_qs_aggregate(q->qs, pM->pDb->db, az, ap, n,
                        (quay_cursor **)&pCur->p, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  lua_newtable(L);                                   /* [.., res] */
  rc = quay_cursor_step(pCur->p, &err);
  if (rc != QUAY_ROW && rc != QUAY_DONE) lquay_fail(L, pM->pDb, &err);
  nCol = quay_cursor_ncol(pCur->p);
  for (i = 0; rc == QUAY_ROW && i < nCol && i < n; i++) {
    quay_value v;
    quay_cursor_value(pCur->p, i, &v);
    if (v.type == QUAY_NULL) continue;
    lquay_push_value(L, &v);
    lua_setfield(L, -2, az[i]);
  }
  lquay_box_close(L, pCur);
  return 1;
}

/*
** values("title", "author__name") or values { "title", month =
** quay.trunc("month", "placed") }: paths and named computed columns; the
** arguments may mix the two forms (values("title", { month = ... })).
*/
static int qs_values(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1), *out;
  int n = 0, i, k, nArg = lua_gettop(L) - 1, iBase;
  const char **az;
  quay_expr **ap;
  Box **apBox;
  quay_err err;
  qs_model(L, 1);                                    /* [q, args.., M] */
  luaL_checkstack(L, 2 * nArg + 16, "values");
  /* Pass 1: per argument, the sorted names of a table (nil for a path)
  ** and their number, pushed from iBase on. */
  iBase = lua_gettop(L) + 1;
  for (i = 0; i < nArg; i++) {
    int nNamed = 0;
    if (lua_type(L, i + 2) == LUA_TTABLE && !lquay_is_expr(L, i + 2)) {
      sorted_names(L, i + 2, &nNamed, "values");
      if (lua_rawlen(L, i + 2) == 0 && nNamed == 0) {
        /* {} or { name = nil_var }: nothing would be selected from it,
        ** the nil-vanishing trap filter {} has too. */
        lquay_raisef(L, QUAY_EMISUSE, "values: argument %d is an empty "
                     "table; give paths (\"title\") or { name = "
                     "expression }, or call values() for every field",
                     i + 1);
      }
      n += (int)lua_rawlen(L, i + 2) + nNamed;
    } else {
      lua_pushnil(L);               /* a path: lquay_name checks it below */
      n += 1;
    }
    lua_pushinteger(L, nNamed);
  }
  luaL_checkstack(L, 2 * n + 8, "values");
  az = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  ap = lua_newuserdatauv(L, sizeof(quay_expr *) * (size_t)(n + 1), 0);
  apBox = lua_newuserdatauv(L, sizeof(Box *) * (size_t)(n + 1), 0);
  n = 0;
  for (i = 0; i < nArg; i++) {
    int iNames = iBase + 2 * i;            /* the sorted names of arg i */
    int nNamed = (int)lua_tointeger(L, iNames + 1), nList;
    if (lua_isnil(L, iNames)) {
      az[n] = lquay_name(L, i + 2, QUAY_EUNKNOWN_FIELD, "a values path");
      apBox[n] = NULL;
      ap[n++] = NULL;
      continue;
    }
    nList = (int)lua_rawlen(L, i + 2);
    for (k = 0; k < nList; k++) {
      lua_rawgeti(L, i + 2, k + 1);
      az[n] = lquay_name(L, -1, QUAY_EUNKNOWN_FIELD, "a values path");
      apBox[n] = NULL;
      ap[n++] = NULL;
      lua_pop(L, 1);                       /* still held by the table */
    }
    for (k = 0; k < nNamed; k++) {
      const char *zName = ((const char **)lua_touserdata(L, iNames))[k];
      lua_pushstring(L, zName);
      lua_rawget(L, i + 2);                  /* raw, as the names were */
      if (!lquay_is_expr(L, -1)) {
        lquay_raisef(L, QUAY_EMISUSE, "values: %s must be an expression "
                     "(quay.trunc, quay.F, ...)", zName);
      }
      az[n] = zName;
      ap[n] = lquay_expr(L, -1, &apBox[n]);  /* its box owns it for now */
      n++;
    }
  }
  out = derived(L, 1);
  for (i = 0; i < n; i++) {
    if (apBox[i]) apBox[i]->p = NULL;  /* the engine takes them (also on
                                        ** failure) */
  }
  if (quay_qs_values(q->qs, az, ap, n, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}

static int qs_distinct(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  LQs *out;
  qs_model(L, 1);
  if (lua_gettop(L) > 2) {
    lquay_raisef(L, QUAY_EMISUSE, "distinct takes no argument");
  }
  out = derived(L, 1);
  if (quay_qs_distinct(q->qs, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}

static int qs_number(lua_State *L, int bLimit) {
  LQs *q = lquay_check_qs(L, 1);
  lua_Integer n;
  lquay_check_nargs(L, 2, bLimit ? "limit(n)" : "offset(n)");
  n = lquay_check_integer(L, 2, bLimit ? "limit" : "offset");
  quay_err err;
  LQs *out;
  int rc;
  qs_model(L, 1);
  out = derived(L, 1);
  rc = bLimit ? quay_qs_limit(q->qs, n, &out->qs, &err)
              : quay_qs_offset(q->qs, n, &out->qs, &err);
  if (rc) lquay_raise(L, &err);
  return 1;
}

static int qs_limit(lua_State *L) { return qs_number(L, 1); }
static int qs_offset(lua_State *L) { return qs_number(L, 0); }

static int is_prefetch(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, QUAY_PREFETCH_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* select_related / prefetch_related / with: one engine call per path. */
static int qs_load(lua_State *L, int eHow) {
  int i, n = lua_gettop(L);
  quay_err err;
  lquay_check_qs(L, 1);
  qs_model(L, 1);
  lua_pushvalue(L, 1);                               /* [args.., M, cur] */
  for (i = 2; i <= n; i++) {
    LQs *cur = lua_touserdata(L, -1), *out;
    int rc;
    if (lua_type(L, i) == LUA_TSTRING) {
      const char *zPath = lquay_name(L, i, QUAY_EUNKNOWN_RELATION,
                                     "a relation path");
      out = derived(L, -1);
      rc = quay_qs_load(cur->qs, zPath, eHow, NULL, NULL, &out->qs, &err);
    } else if (is_prefetch(L, i) && eHow != QUAY_LOAD_JOIN) {
      const char *zPath, *zTo;
      LQs *sub;
      lua_getfield(L, i, "path");
      zPath = lua_tostring(L, -1);
      lua_getfield(L, i, "to");
      zTo = lua_tostring(L, -1);
      lua_getfield(L, i, "qs");
      sub = lquay_check_qs(L, -1);
      lua_pop(L, 3);                    /* still referenced by the object */
      out = derived(L, -1);
      rc = quay_qs_load(cur->qs, zPath, QUAY_LOAD_BATCH, sub->qs, zTo,
                        &out->qs, &err);
    } else {
      lquay_arg_error(L, i, eHow == QUAY_LOAD_JOIN ? "select_related"
                            : eHow == QUAY_LOAD_BATCH ? "prefetch_related"
                                                      : "with",
                      eHow == QUAY_LOAD_JOIN ? "a relation path"
                      : "a relation path or quay.prefetch(...)");
    }
    if (rc) lquay_raise(L, &err);
    lua_remove(L, -2);                               /* [.., M, out] */
  }
  return 1;
}

static int qs_select_related(lua_State *L) {
  return qs_load(L, QUAY_LOAD_JOIN);
}
static int qs_prefetch_related(lua_State *L) {
  return qs_load(L, QUAY_LOAD_BATCH);
}
static int qs_with(lua_State *L) { return qs_load(L, QUAY_LOAD_AUTO); }

static int qs_with_count(lua_State *L) {
  int i, n = lua_gettop(L);
  quay_err err;
  lquay_check_qs(L, 1);
  qs_model(L, 1);
  lua_pushvalue(L, 1);
  for (i = 2; i <= n; i++) {
    LQs *cur = lua_touserdata(L, -1), *out;
    const char *zPath = lquay_name(L, i, QUAY_EUNKNOWN_RELATION,
                                   "a with_count path");
    out = derived(L, -1);
    if (quay_qs_with_count(cur->qs, zPath, &out->qs, &err)) {
      lquay_raise(L, &err);
    }
    lua_remove(L, -2);
  }
  return 1;
}

/* qs:using("primary"): read this set from the primary, never a replica. */
static int qs_using(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  LQs *out;
  lquay_check_nargs(L, 2, "using(\"primary\")");
  if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2),
                                              "primary") != 0) {
    lquay_raisef(L, QUAY_EMISUSE, "using: the only server to pin a query "
                 "set to is \"primary\"");
  }
  lua_settop(L, 1);
  qs_model(L, 1);
  out = derived(L, 1);
  if (quay_qs_using_primary(q->qs, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}

static int qs_strict(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  LQs *out;
  qs_model(L, 1);
  out = derived(L, 1);
  if (quay_qs_strict(q->qs, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}
/* }================================================================== */

/*
** {==================================================================
** Materializing rows: the record sink
** ===================================================================
** The engine runs the plan (engine/load.c) and calls this sink to make
** records and hang them on their owners; the binding only builds Lua
** tables.  Per load call every slot of the plan has, on the Lua stack,
** its array of records (a result of its own: batched lazy loads find
** their siblings through it), its per-result record metatable and its
** field names pushed once as keys.  Per record: one table sized for its
** fields, raw sets of the non-NULL values, the metatable.
*/
typedef struct SlotCtx {
  int iArr;                 /* stack: the slot's array of records */
  int iMt;                  /* stack: the result's record metatable */
  int iNames;               /* stack: first of nField name strings */
  int nField;
  int nRec;                 /* records in iArr */
  LSnap *pSnap;             /* the result's snapshot (dirty tracking) */
} SlotCtx;

typedef struct Sink {
  lua_State *L;
  LDb *pDb;
  SlotCtx *aSlot;           /* in a userdata on the stack */
  int nSlot;
} Sink;

static void cursor_free(void *p) { quay_cursor_close(p); }
static void plan_free(void *p) { quay_plan_free(p); }
static void load_free(void *p) { quay_load_free(p); }

/*
** Make one record from columns iFirst.. of the current row.  Leaves it on
** the stack.
*/
static void make_record(lua_State *L, quay_cursor *cur, int iFirst,
                        int nField, int iNames, int iMt, int iKeyCol,
                        LSnap *pSnap) {
  int i, iRow;
  quay_value v;
  uint64_t *row = lquay_snap_add(L, pSnap, &iRow);  /* dirty tracking */
  lua_createtable(L, 0, nField + 2);
  for (i = 0; i < nField; i++) {
    quay_cursor_value(cur, iFirst + i, &v);
    if (v.type == QUAY_NULL) continue;
    if (i != pSnap->iPk) row[LQUAY_SNAP_SLOT(pSnap, i)] = lquay_fp(&v);
    lua_pushvalue(L, iNames + i);
    lquay_push_value(L, &v);
    lua_rawset(L, -3);
  }
  quay_cursor_value(cur, iKeyCol, &v);
  lquay_push_value(L, &v);
  lua_rawsetp(L, -2, &lquay_LK_PK);
  lquay_snap_mark(L, -1, iRow);
  lua_pushvalue(L, iMt);
  lua_setmetatable(L, -2);
}

/* Push the record metatable of m and its field names (nField strings). */
static void push_model_ctx(lua_State *L, LDb *pDb, quay_model *m, int *piMt,
                           int *piNames) {
  int i, n = quay_model_field_count(m);
  lquay_push_mt(L, pDb, m);
  *piMt = lua_gettop(L);
  luaL_checkstack(L, n + 8, "field names");
  lua_rawgetp(L, *piMt, &lquay_LK_NAMES);
  *piNames = lua_gettop(L) + 1;
  for (i = 0; i < n; i++) lua_rawgeti(L, *piNames - 1, i + 1);
}

/*
** Set up the slots of one load call on the stack.  iOwners (lazy loads:
** the records that own slot 0) or 0.  bStrict marks the results so their
** records refuse lazy loads.
*/
static void sink_begin(lua_State *L, Sink *k, LDb *pDb, quay_plan *plan,
                       int iOwners, int bStrict) {
  int i, n = quay_plan_nslot(plan);
  k->L = L;
  k->pDb = pDb;
  k->nSlot = n;
  k->aSlot = lua_newuserdatauv(L, sizeof(SlotCtx) * (size_t)(n + 1), 0);
  for (i = 0; i < n; i++) {
    SlotCtx *c = &k->aSlot[i];
    quay_slot_info si;
    memset(c, 0, sizeof(*c));
    if (i == 0 && iOwners) {
      c->iArr = iOwners;
      c->nRec = (int)lua_rawlen(L, iOwners);
      continue;
    }
    quay_plan_slot(plan, i, &si);
    c->nField = quay_model_field_count(si.pModel);
    push_model_ctx(L, pDb, si.pModel, &c->iMt, &c->iNames);
    lua_newtable(L);
    if (bStrict) {
      lua_pushboolean(L, 1);
      lua_rawsetp(L, -2, &lquay_LK_STRICT);
    }
    c->iArr = lua_gettop(L);
    lquay_push_result_mt(L, c->iMt, c->iArr);        /* this result's mt */
    c->iMt = lua_gettop(L);
    c->pSnap = lquay_snap_new(L, c->iMt, si.pModel);
  }
  luaL_checkstack(L, 16, "rows");
}

static int sink_record(void *pCtx, int iSlot, quay_cursor *pCur,
                       int iFirstCol, int iKeyCol) {
  Sink *k = pCtx;
  SlotCtx *c = &k->aSlot[iSlot];
  make_record(k->L, pCur, iFirstCol, c->nField, c->iNames, c->iMt, iKeyCol,
              c->pSnap);
  lua_rawseti(k->L, c->iArr, ++c->nRec);
  return 0;
}

/*
** rec.<zName> reads nil, not unknown_field, for the records of slot iSlot's
** result: its metatable lists the name with the annotations.  A slot
** without a result metatable of its own (a lazy load's owners) is left as
** it is.
*/
static void slot_nil_name(Sink *k, int iSlot, const char *zName) {
  lua_State *L = k->L;
  SlotCtx *c = &k->aSlot[iSlot];
  if (c->iMt == 0) return;
  if (lua_rawgetp(L, c->iMt, &lquay_LK_ANNS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, c->iMt, &lquay_LK_ANNS);
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, zName);
  lua_pop(L, 1);
}

static int sink_attach_one(void *pCtx, int iSlot, int iRec,
                           const quay_attach *pAt, int iChildSlot,
                           int iChild) {
  Sink *k = pCtx;
  lua_State *L = k->L;
  lua_rawgeti(L, k->aSlot[iSlot].iArr, iRec + 1);   /* [owner] */
  if (iChild >= 0) {
    lua_rawgeti(L, k->aSlot[iChildSlot].iArr, iChild + 1);
  } else if (pAt->isCustom) {
    /* quay.prefetch(path, qs, { to = name }) found no record: rec.<name>
    ** is nil (a to-one "to" is a record or nil). */
    lua_pop(L, 1);
    slot_nil_name(k, iSlot, pAt->zName);
    return 0;
  } else if (pAt->isPivot) {
    lua_pushboolean(L, 0);                           /* loaded, none */
  } else {
    lquay_push_rel_none(L, -1, pAt->iRel);           /* loaded, none */
  }
  if (pAt->isPivot) {
    lua_rawsetp(L, -2, &lquay_LK_PIVOT);
  } else if (pAt->isCustom) {
    lua_pushstring(L, pAt->zName);
    lua_insert(L, -2);
    lua_rawset(L, -3);
  } else {
    lua_rawsetp(L, -2, LQUAY_RELKEY(pAt->iRel));
  }
  lua_pop(L, 1);
  return 0;
}

static int sink_attach_many(void *pCtx, int iSlot, int iRec,
                            const quay_attach *pAt, int iChildSlot,
                            const int *aiChild, int nChild) {
  Sink *k = pCtx;
  lua_State *L = k->L;
  int iOwner, iSet, iChildArr = k->aSlot[iChildSlot].iArr, i;
  lua_rawgeti(L, k->aSlot[iSlot].iArr, iRec + 1);   /* [owner] */
  iOwner = lua_gettop(L);
  if (pAt->isCustom) {
    lua_pushstring(L, pAt->zName);
    lua_createtable(L, nChild, 0);
    for (i = 0; i < nChild; i++) {
      lua_rawgeti(L, iChildArr, aiChild[i] + 1);
      lua_rawseti(L, -2, i + 1);
    }
    lua_rawset(L, iOwner);
    lua_pop(L, 1);
    return 0;
  }
  lua_rawgetp(L, iOwner, LQUAY_RELKEY(pAt->iRel));   /* an existing set? */
  if (lua_istable(L, -1) && !lquay_set_loaded(L, -1)) {
    /* An unloaded set the user already holds: fill it in place. */
    iSet = lua_gettop(L);
  } else {
    lua_pop(L, 1);
    lua_createtable(L, nChild, 1);
    iSet = lua_gettop(L);
  }
  for (i = 0; i < nChild; i++) {
    lua_rawgeti(L, iChildArr, aiChild[i] + 1);
    lua_rawseti(L, iSet, i + 1);
  }
  lquay_set_mark(L, iSet, iOwner, pAt->iRel, 1);
  lua_rawsetp(L, iOwner, LQUAY_RELKEY(pAt->iRel));
  lua_pop(L, 1);
  return 0;
}

static int sink_extra(void *pCtx, int iSlot, int iRec, const char *zName,
                      const quay_value *pVal) {
  Sink *k = pCtx;
  lua_State *L = k->L;
  if (pVal->type == QUAY_NULL) {
    /* rec.<name> reads nil, not unknown_field: the result's metatable
    ** lists the annotation names. */
    slot_nil_name(k, iSlot, zName);
    return 0;
  }
  lua_rawgeti(L, k->aSlot[iSlot].iArr, iRec + 1);
  lua_pushstring(L, zName);
  lquay_push_value(L, pVal);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 0;
}

static const quay_sink lquay_sink = {
  .xRecord = sink_record,
  .xAttachOne = sink_attach_one,
  .xAttachMany = sink_attach_many,
  .xExtra = sink_extra,
};

/*
** One load call: up to nMax main rows (0 = all) with everything they
** prefetch.  Pushes the main result (slot 0's array; for lazy loads
** nothing).  Returns QUAY_ROW or QUAY_DONE; raises on errors.
*/
static int load_call(lua_State *L, LDb *pDb, quay_plan *plan, quay_load *ld,
                     int nMax, int iOwners) {
  Sink k;
  quay_err err;
  int rc, top = lua_gettop(L);
  sink_begin(L, &k, pDb, plan, iOwners, quay_plan_strict(plan));
  rc = quay_load_next(ld, nMax, &lquay_sink, &k, &err);
  if (rc != QUAY_ROW && rc != QUAY_DONE) lquay_fail(L, pDb, &err);
  if (quay_load_server(ld) >= 0) {
    /* The server these records came from, for their lazy loads. */
    int i;
    for (i = iOwners ? 1 : 0; i < k.nSlot; i++) {
      lua_pushinteger(L, quay_load_server(ld));
      lua_rawsetp(L, k.aSlot[i].iMt, &lquay_LK_SERVER);  /* the result's mt */
    }
  }
  if (iOwners) {
    lua_settop(L, top);
  } else {
    lua_pushvalue(L, k.aSlot[0].iArr);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
  }
  return rc;
}

/*
** Model:raw: the columns that name no field are annotations of the rows;
** the result's metatable lists them, so one that is NULL reads nil.
*/
static void raw_extra_names(lua_State *L, quay_cursor *c, int iMt) {
  int i, nCol = quay_cursor_ncol(c);
  for (i = 0; i < nCol; i++) {
    if (quay_cursor_field(c, i) >= 0) continue;
    if (lua_rawgetp(L, iMt, &lquay_LK_ANNS) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, iMt, &lquay_LK_ANNS);
    }
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, quay_cursor_colname(c, i));
    lua_pop(L, 1);
  }
}

/*
** Read up to nMax rows (0: all) of a value-row cursor into plain tables
** (no metatable) keyed by the column names, appended to the array at
** iArr.  Returns 1 when the cursor is exhausted.
*/
static int push_value_rows(lua_State *L, LDb *pDb, quay_cursor *cur,
                           int iArr, int nMax) {
  int i, nCol = quay_cursor_ncol(cur), iNames, rc, nRow = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, iArr);
  quay_err err;
  luaL_checkstack(L, nCol + 8, "value rows");
  iNames = lua_gettop(L) + 1;
  for (i = 0; i < nCol; i++) lua_pushstring(L, quay_cursor_colname(cur, i));
  for (;;) {
    if (nMax > 0 && nRow >= nMax) {
      lua_settop(L, iNames - 1);
      return 0;
    }
    rc = quay_cursor_step(cur, &err);
    if (rc == QUAY_DONE) break;
    if (rc != QUAY_ROW) lquay_fail(L, pDb, &err);
    nRow++;
    lua_createtable(L, 0, nCol);
    for (i = 0; i < nCol; i++) {
      quay_value v;
      quay_cursor_value(cur, i, &v);
      if (v.type == QUAY_NULL) continue;
      lua_pushvalue(L, iNames + i);
      lquay_push_value(L, &v);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, iArr, ++n);
  }
  lua_settop(L, iNames - 1);
  return 1;
}

/*
** Run the query set and push the array of records (or of value rows for a
** values set).  The stack grows by more than one slot (the to-be-closed
** boxes stay below the result until the calling C function returns); the
** result is on top.
*/
void lquay_push_rows(lua_State *L, int iModelIdx, quay_qs *qs,
                     int nLimitOne) {
  LModel *pM = lua_touserdata(L, iModelIdx);
  quay_err err;
  Box *pPlan, *pLoad;
  (void)nLimitOne;
  if (quay_qs_is_values(qs)) {
    Box *pCur = lquay_box(L, cursor_free);
    if (quay_qs_rows(qs, pM->pDb->db, 0, (quay_cursor **)&pCur->p, &err)) {
      lquay_fail(L, pM->pDb, &err);
    }
    lua_newtable(L);                                 /* [.., box, res] */
    push_value_rows(L, pM->pDb, pCur->p, lua_gettop(L), 0);
    lquay_box_release(pCur);
    return;
  }
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  pLoad = lquay_box(L, load_free);
  if (quay_load_open(pPlan->p, pM->pDb->db, 0, (quay_load **)&pLoad->p,
                     &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  load_call(L, pM->pDb, pPlan->p, pLoad->p, 0, 0); /* [.., res] */
  lquay_box_release(pLoad);
  lquay_box_release(pPlan);
}
/* }================================================================== */


/*
** Model:raw(sql, params): records of the model from raw SQL.  The columns
** that name fields become the record's fields (typed by them), the others
** are left out; the records form one result and save as updates.
*/
int lquay_model_raw(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  const char *zSql;
  quay_value *aParam;
  int i, nParam = 0, iMt, iNames, iArr, nField, rc;
  lua_Integer n = 0;
  quay_err err;
  Box *pCur;
  LSnap *pSnap;
  lquay_ready(L, pM);
  lquay_check_type(L, 2, LUA_TSTRING, "Model:raw");
  if (!lua_isnoneornil(L, 3)) lquay_check_type(L, 3, LUA_TTABLE, "Model:raw");
  if (lua_gettop(L) > 3) {
    lquay_raisef(L, QUAY_EMISUSE, "Model:raw takes the SQL and a list of "
                 "parameters");
  }
  lua_settop(L, 3);
  zSql = lua_tostring(L, 2);
  if (lua_istable(L, 3)) nParam = (int)lua_rawlen(L, 3);
  luaL_checkstack(L, 16, "raw");
  aParam = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(nParam + 1), 0);
  for (i = 0; i < nParam; i++) {
    lua_rawgeti(L, 3, i + 1);
    lquay_to_value(L, -1, &aParam[i], 0, "a raw SQL parameter");
    lua_pop(L, 1);                    /* the list keeps strings alive */
  }
  pCur = lquay_box(L, cursor_free);
  lquay_enter(L, pM->pDb);
  if (quay_model_raw(pM->m, pM->pDb->db, zSql, aParam, nParam,
                     (quay_cursor **)&pCur->p, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  nField = quay_model_field_count(pM->m);
  push_model_ctx(L, pM->pDb, pM->m, &iMt, &iNames);
  lua_newtable(L);
  iArr = lua_gettop(L);
  lquay_push_result_mt(L, iMt, iArr);
  iMt = lua_gettop(L);
  /* Raw SQL ran on the primary: so do the lazy loads of its records. */
  lua_pushinteger(L, 0);
  lua_rawsetp(L, iMt, &lquay_LK_SERVER);
  /* Dirty tracking, as for a query's records: what the row held is the
  ** stored state (a field the SELECT left out reads nil and stays so). */
  pSnap = lquay_snap_new(L, iMt, pM->m);
  luaL_checkstack(L, 8, "raw rows");
  while ((rc = quay_cursor_step(pCur->p, &err)) == QUAY_ROW) {
    int nCol = quay_cursor_ncol(pCur->p), iRow;
    uint64_t *row = lquay_snap_add(L, pSnap, &iRow);
    lua_createtable(L, 0, nField + 1);
    if (n == 0) raw_extra_names(L, pCur->p, iMt);
    for (i = 0; i < nCol; i++) {
      int f = quay_cursor_field(pCur->p, i);
      quay_value v;
      quay_cursor_value(pCur->p, i, &v);
      if (v.type == QUAY_NULL) continue;
      if (f < 0) {
        /* A column that is no field: read as an annotation. */
        lua_pushstring(L, quay_cursor_colname(pCur->p, i));
        lquay_push_value(L, &v);
        lua_rawset(L, -3);
        continue;
      }
      lua_pushvalue(L, iNames + f);
      lquay_push_value(L, &v);
      lua_rawset(L, -3);
      if (f == pSnap->iPk) {
        lquay_push_value(L, &v);
        lua_rawsetp(L, -2, &lquay_LK_PK);
      } else {
        row[LQUAY_SNAP_SLOT(pSnap, f)] = lquay_fp(&v);
      }
    }
    lquay_snap_mark(L, -1, iRow);
    lua_pushvalue(L, iMt);
    lua_setmetatable(L, -2);
    lua_rawseti(L, iArr, ++n);
  }
  if (rc != QUAY_DONE) lquay_fail(L, pM->pDb, &err);
  lua_pushvalue(L, iArr);
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Lazy loading
** ===================================================================
*/
/* The cached lazy plan of relation j of pM (kept in the record mt). */
static quay_plan *lazy_plan(lua_State *L, LModel *pM, int j) {
  quay_plan *p;
  quay_err err;
  Box *b;
  lquay_push_mt(L, pM->pDb, pM->m);                  /* [mt] */
  lua_rawgetp(L, -1, &lquay_LK_PLANS);               /* [mt, plans] */
  if (lua_rawgeti(L, -1, j + 1) == LUA_TUSERDATA) {
    b = lua_touserdata(L, -1);
    p = b->p;
    lua_pop(L, 3);
    return p;
  }
  lua_pop(L, 1);
  /* A box not marked to-be-closed: it lives with the model. */
  b = lua_newuserdatauv(L, sizeof(Box), 0);
  b->p = NULL;
  b->xFree = plan_free;
  luaL_setmetatable(L, QUAY_BOX_MT);
  if (quay_plan_lazy(pM->m, j, (quay_plan **)&b->p, &err)) lquay_raise(L, &err);
  p = b->p;
  lua_rawseti(L, -2, j + 1);
  lua_pop(L, 2);
  return p;
}

/* Non-0 when the record at idx still needs relation j loaded. */
static int needs_load(lua_State *L, int idx, int j) {
  int r;
  if (lua_rawgetp(L, idx, LQUAY_RELKEY(j)) == LUA_TNIL) {
    r = 1;
  } else if (lquay_is_set(L, -1)) {
    r = !lquay_set_loaded(L, -1);
  } else {
    r = 0;
  }
  lua_pop(L, 1);
  return r;
}

void lquay_lazy_load(lua_State *L, int iRec, LModel *pM, int j,
                     const char *zWhy) {
  lquay_lazy_load_on(L, iRec, pM, j, zWhy, -1);
}

void lquay_lazy_load_on(lua_State *L, int iRec, LModel *pM, int j,
                        const char *zWhy, int iForce) {
  int iOwners, strict, top = lua_gettop(L), iSrv = -1;
  lua_Integer i, n = 0;
  quay_rel_info r;
  quay_field_info fk;
  quay_value *aKey;
  quay_plan *plan;
  Box *pLoad;
  quay_err err;
  iRec = lua_absindex(L, iRec);
  lquay_enter(L, pM->pDb);
  if (pM->pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a freed database");
  }
  if (lua_getmetatable(L, iRec)) {                   /* [mt] */
    lua_rawgetp(L, -1, &lquay_LK_RESULT);            /* [mt, res|nil] */
    lua_remove(L, -2);
  } else {
    lua_pushnil(L);
  }
  strict = quay_db_strict(pM->pDb->db);
  if (!lua_isnil(L, -1)) {
    lua_rawgetp(L, -1, &lquay_LK_STRICT);
    strict = strict || lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  quay_model_relation(pM->m, j, &r);
  if (strict) {
    lquay_raisef(L, QUAY_ELAZY_LOAD,
                 "strict mode: %s.%s would be loaded lazily (by reading "
                 "rec.%s); load it up front with :with(\"%s\"), "
                 ":select_related or :prefetch_related", quay_model_name(pM->m),
                 r.zName, zWhy ? zWhy : r.zName, r.zName);
  }
  /* The owners: every record of the result that still needs it. */
  lua_newtable(L);                                   /* [res, owners] */
  iOwners = lua_gettop(L);
  if (lua_istable(L, -2)) {
    lua_Integer nRes = (lua_Integer)lua_rawlen(L, -2);
    int seen = 0;
    for (i = 1; i <= nRes; i++) {
      lua_rawgeti(L, iOwners - 1, i);
      if (lquay_record_model(L, -1) == pM && needs_load(L, -1, j)) {
        if (lua_rawequal(L, -1, iRec)) seen = 1;
        lua_rawseti(L, iOwners, ++n);
      } else {
        lua_pop(L, 1);
      }
    }
    if (!seen) {
      lua_pushvalue(L, iRec);
      lua_rawseti(L, iOwners, ++n);
    }
  } else {
    lua_pushvalue(L, iRec);
    lua_rawseti(L, iOwners, ++n);
  }
  /* Their keys (the relation's owner field), read from the records. */
  quay_model_field(pM->m, r.iOwnerKey, &fk);
  aKey = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n + 1), 0);
  luaL_checkstack(L, (int)(n < 1000 ? n : 1000) + 8, "owner keys");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, iOwners, i);
    lua_getfield(L, -1, fk.zName);
    if (lquay_to_value(L, -1, &aKey[i - 1], 0, fk.zName) != 0) {
      aKey[i - 1].type = QUAY_NULL;
    }
    lua_pop(L, 2);                     /* the owner keeps a text key alive */
  }
  plan = lazy_plan(L, pM, j);
  if (lua_getmetatable(L, iRec)) {
    if (lua_rawgetp(L, -1, &lquay_LK_SERVER) == LUA_TNUMBER) {
      iSrv = (int)lua_tointeger(L, -1);  /* the server of the result */
    }
    lua_pop(L, 2);
  }
  if (iForce >= 0) iSrv = iForce;
  pLoad = lquay_box(L, load_free);
  if (quay_load_open(plan, pM->pDb->db, 0, (quay_load **)&pLoad->p, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  quay_load_pin(pLoad->p, iSrv);
  if (quay_load_owners(pLoad->p, aKey, (int)n, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  load_call(L, pM->pDb, plan, pLoad->p, 0, iOwners);
  lquay_box_close(L, pLoad);
  lua_settop(L, top);
}
/* }================================================================== */


/*
** {==================================================================
** Terminal calls
** ===================================================================
*/
static int qs_all(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  lquay_check_nargs(L, 1, "all()");
  lua_settop(L, 1);
  qs_model(L, 1);                                    /* [q, .., M] */
  lquay_push_rows(L, lua_gettop(L), q->qs, 0);
  return 1;
}

/* Push the query set at idx with limit n (a new userdata). */
static LQs *limited(lua_State *L, int idx, int n) {
  LQs *q = lua_touserdata(L, idx), *out;
  quay_err err;
  out = derived(L, idx);
  if (quay_qs_limit(q->qs, n, &out->qs, &err)) lquay_raise(L, &err);
  return out;
}

static int qs_first(lua_State *L) {
  LQs *out;
  lquay_check_qs(L, 1);
  lquay_check_nargs(L, 1, "first()");
  lua_settop(L, 1);
  qs_model(L, 1);                                    /* [q, M] */
  out = limited(L, 1, 1);                            /* [q, M, q1] */
  lquay_push_rows(L, 2, out->qs, 1);
  lua_rawgeti(L, -1, 1);
  return 1;
}

static int qs_get(lua_State *L) {
  LModel *pM;
  LQs *out;
  int iQ = 1;
  lquay_check_qs(L, 1);
  lquay_check_nargs(L, 2, "get(conds)");
  lua_settop(L, 2);
  pM = qs_model(L, 1);                               /* [q, conds, M] */
  if (lua_type(L, 2) == LUA_TTABLE && lquay_record_model(L, 2) == NULL) {
    /* get {} would get the only row of the set: almost always a
    ** condition whose value variable was nil (issue 13). */
    lua_pushnil(L);
    if (!lua_next(L, 2)) {
      lquay_raisef(L, QUAY_EMISUSE, "%s:get {}: the conditions are empty "
                   "(a condition whose value is nil vanishes from a Lua "
                   "table); use get() for the only row",
                   quay_model_name(pM->m));
    }
    lua_pop(L, 2);
  }
  if (!lua_isnil(L, 2)) {
    lua_pushcfunction(L, qs_filter);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);                               /* [q, c, M, qf] */
    iQ = 4;
  }
  out = limited(L, iQ, 2);
  lquay_push_rows(L, 3, out->qs, 2);                 /* [.., rows] */
  switch (lua_rawlen(L, -1)) {
    case 0:
      lquay_raisef(L, QUAY_ENOT_FOUND, "no %s matches the conditions "
                   "(get expects exactly one)", quay_model_name(pM->m));
      break;
    case 1:
      lua_rawgeti(L, -1, 1);
      return 1;
    default:
      lquay_raisef(L, QUAY_EMULTIPLE, "more than one %s matches the "
                   "conditions (get expects exactly one; add conditions or "
                   "use first())", quay_model_name(pM->m));
  }
  return 0;
}

static int qs_count(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM;
  lquay_check_nargs(L, 1, "count()");
  pM = qs_model(L, 1);
  quay_err err;
  int64_t n;
  if (quay_qs_count(q->qs, pM->pDb->db, &n, &err)) lquay_fail(L, pM->pDb, &err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int qs_exists(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM;
  lquay_check_nargs(L, 1, "exists()");
  pM = qs_model(L, 1);
  quay_err err;
  int b;
  if (quay_qs_exists(q->qs, pM->pDb->db, &b, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  lua_pushboolean(L, b);
  return 1;
}

static int qs_pluck(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  const char *zPath;
  lquay_check_nargs(L, 2, "pluck(path)");
  zPath = lquay_name(L, 2, QUAY_EUNKNOWN_FIELD, "a pluck path");
  LModel *pM = qs_model(L, 1);
  quay_err err;
  Box *pCur;
  lua_Integer n = 0;
  int rc, bNull = 0;
  lua_newtable(L);                                   /* [.., res] */
  pCur = lquay_box(L, cursor_free);
  if (quay_qs_pluck(q->qs, pM->pDb->db, zPath, (quay_cursor **)&pCur->p,
                    &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  while ((rc = quay_cursor_step(pCur->p, &err)) == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(pCur->p, 0, &v);
    bNull |= v.type == QUAY_NULL;
    lquay_push_value(L, &v);
    lua_rawseti(L, -3, ++n);
  }
  lquay_box_close(L, pCur);
  if (rc != QUAY_DONE) lquay_fail(L, pM->pDb, &err);
  lua_pop(L, 1);
  if (bNull) {
    /* A NULL is a nil at its index, so # cannot tell the length: n does.
    ** Without one the result is a plain array (assert.same compares it
    ** with a list). */
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
  }
  return 1;
}

static void writer_free(void *p) { quay_writer_free(p); }

/* qs:update(values) */
static int qs_update(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM;
  quay_err err;
  Box *pW;
  int64_t n = 0;
  int iMembers;
  lquay_check_nargs(L, 2, "qs:update(values)");
  lquay_check_type(L, 2, LUA_TTABLE, "update");
  lua_settop(L, 2);
  pM = qs_model(L, 1);                               /* [q, vals, M] */
  lua_pushnil(L);
  if (!lua_next(L, 2)) {
    /* update {} writes nothing: almost always a value variable that was
    ** nil, as for filter {}. */
    lquay_raisef(L, QUAY_EMISUSE, "%s:update {}: no values to set (a value "
                 "that is nil vanishes from a Lua table; quay.null sets "
                 "NULL)", quay_model_name(pM->m));
  }
  lua_settop(L, 3);
  lquay_push_mt(L, pM->pDb, pM->m);
  lua_rawgetp(L, -1, &lquay_LK_MEMBERS);             /* [.., mt, members] */
  iMembers = lua_gettop(L);
  pW = lquay_box(L, writer_free);
  if (quay_writer_new(pM->pDb->db, pM->m, (quay_writer **)&pW->p, &err)) {
    lquay_raise(L, &err);
  }
  luaL_checkstack(L, 8, "update");
  lua_pushnil(L);
  while (lua_next(L, 2)) {                           /* [.., k, v] */
    lua_Integer code;
    quay_value v;
    int rc;
    lua_pushvalue(L, -2);
    if (lua_type(L, -1) != LUA_TSTRING ||
        lua_rawget(L, iMembers) != LUA_TNUMBER) {
      lquay_raisef(L, QUAY_EUNKNOWN_FIELD, "update: %s has no field or "
                   "relation '%s'", quay_model_name(pM->m),
                   lua_type(L, -3) == LUA_TSTRING ? lua_tostring(L, -3) : "?");
    }
    code = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (code > 0 && lquay_is_expr(L, -1)) {
      /* views = quay.F("views") + 1: computed in the UPDATE. */
      Box *pBox;
      int top = lua_gettop(L);
      quay_expr *e = lquay_expr(L, -1, &pBox);
      pBox->p = NULL;                 /* the writer takes it */
      rc = quay_writer_set_expr(pW->p, (int)code - 1, e, &err);
      lquay_box_close(L, pBox);
      lua_settop(L, top);
    } else {
      /* A record value becomes a snapshot the engine reads its key from;
      ** it stays on the stack until the writer has copied the key. */
      int nPushed = lquay_to_field_value(L, -1, &v, 0,
                                         quay_model_name(pM->m),
                                         lua_tostring(L, -2));
      if (code > 0) {
        rc = quay_writer_set(pW->p, (int)code - 1, &v, &err);
      } else {
        rc = quay_writer_set_rel(pW->p, (int)(-code - 1), &v, &err);
      }
      lua_pop(L, nPushed);
    }
    if (rc) lquay_raise(L, &err);
    lua_pop(L, 1);
  }
  if (quay_qs_update(q->qs, pW->p, &n, &err)) {
    lquay_box_release(pW);
    lquay_fail(L, pM->pDb, &err);
  }
  lquay_box_release(pW);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static void counts_free(void *p) { quay_counts_free(p); }

static int qs_delete(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  int mFlags, rc;
  LModel *pM;
  quay_err err;
  Box *pC;
  LDelCall call;
  lquay_check_nargs(L, 2, "qs:delete(opts)");
  mFlags = lquay_delete_opts(L, 2, "delete");
  pM = qs_model(L, 1);
  pC = lquay_box(L, counts_free);
  lquay_behav_delete_begin(L, pM->pDb, &call, 0, NULL);  /* last: may raise */
  rc = quay_qs_delete(q->qs, pM->pDb->db, (unsigned)mFlags,
                      (quay_counts **)&pC->p, &err);
  lquay_behav_delete_end(L, pM->pDb, &call);
  if (rc) lquay_fail(L, pM->pDb, &err);
  lquay_push_counts(L, pC->p);
  lquay_box_release(pC);
  return 1;
}

/* qs:sql() -> text, params */
static int qs_sql(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  Box *pPlan;
  const quay_value *a;
  int i, n;
  const char *z;
  lquay_check_nargs(L, 1, "sql()");
  qs_model(L, 1);
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(q->qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  z = quay_plan_sql(pPlan->p, &a, &n);
  lua_pushstring(L, z ? z : "");
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lquay_push_value(L, &a[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

/* qs:explain() -> list of { path, how, sql } */
static int qs_explain(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  Box *pPlan;
  quay_explain_info e;
  int i, rc;
  lquay_check_nargs(L, 1, "explain()");
  qs_model(L, 1);
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(q->qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  lua_newtable(L);
  for (i = 0; (rc = quay_plan_explain(pPlan->p, i, &e)) == QUAY_OK; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, e.zPath);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, e.zHow);
    lua_setfield(L, -2, "how");
    lua_pushstring(L, e.zSql);
    lua_setfield(L, -2, "sql");
    lua_rawseti(L, -2, i + 1);
  }
  if (rc != QUAY_DONE) lquay_raisef(L, QUAY_ENOMEM, "not enough memory");
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Streaming iteration
** ===================================================================
** for rec in qs:iter() do ... end reads ITER_CHUNK rows at a time; each
** chunk is a result of its own (prefetches and batched lazy loads work per
** chunk), and only the current chunk is referenced, so memory stays
** constant however many rows stream by.  The iterator object is the
** loop's to-be-closed value: a break closes the cursor at once.
*/
typedef struct LIter {
  quay_plan *plan;
  quay_load *load;
  quay_cursor *cur;         /* a values set: its rows */
  LDb *pDb;                 /* kept alive through user value 1 */
  int done;
  lua_Integer pos;
} LIter;

static int iter_close(lua_State *L) {
  LIter *it = luaL_checkudata(L, 1, QUAY_ITER_MT);
  quay_load *ld = it->load;
  quay_plan *p = it->plan;
  quay_cursor *c = it->cur;
  it->load = NULL;
  it->plan = NULL;
  it->cur = NULL;
  quay_load_free(ld);
  quay_plan_free(p);
  quay_cursor_close(c);
  return 0;
}

static int iter_next(lua_State *L) {
  LIter *it = luaL_checkudata(L, 1, QUAY_ITER_MT);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 2);                        /* [it, chunk] */
  if (lua_istable(L, 2) && it->pos < (lua_Integer)lua_rawlen(L, 2)) {
    lua_rawgeti(L, 2, ++it->pos);
    return 1;
  }
  if (it->done || (it->load == NULL && it->cur == NULL)) {
    iter_close(L);
    lua_pushnil(L);
    return 1;
  }
  lquay_enter(L, it->pDb);
  if (it->pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a freed database");
  }
  if (it->cur) {
    lua_newtable(L);                                 /* [it, old, chunk] */
    it->done = push_value_rows(L, it->pDb, it->cur, lua_gettop(L),
                               ITER_CHUNK);
  } else {
    /* One chunk: a result of its own, with its prefetches. */
    it->done = load_call(L, it->pDb, it->plan, it->load, ITER_CHUNK, 0) ==
               QUAY_DONE;                            /* [it, old, chunk] */
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 2);
  it->pos = 0;
  if (lua_rawlen(L, -1) == 0) {
    iter_close(L);
    lua_pushnil(L);
    return 1;
  }
  lua_rawgeti(L, -1, ++it->pos);
  return 1;
}

static int qs_iter(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM;
  LIter *it;
  quay_err err;
  lquay_check_nargs(L, 1, "iter()");
  pM = qs_model(L, 1);                               /* [q, .., M] */
  lua_settop(L, 1);
  it = lua_newuserdatauv(L, sizeof(LIter), 2);       /* [q, it] closed */
  memset(it, 0, sizeof(*it));
  it->pDb = pM->pDb;
  luaL_setmetatable(L, QUAY_ITER_MT);
  lua_getiuservalue(L, 1, 1);
  lua_setiuservalue(L, 2, 1);                        /* keeps the Model */
  if (quay_qs_is_values(q->qs)) {
    if (quay_qs_rows(q->qs, pM->pDb->db, 1, &it->cur, &err)) {
      lquay_fail(L, pM->pDb, &err);
    }
  } else {
    if (quay_plan_new(q->qs, &it->plan, &err)) lquay_raise(L, &err);
    /* Streamed: PostgreSQL reads it through a server-side cursor. */
    if (quay_load_open(it->plan, pM->pDb->db, 1, &it->load, &err)) {
      lquay_fail(L, pM->pDb, &err);
    }
  }
  lua_pushcfunction(L, iter_next);                   /* [q, it, f] */
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  lua_pushvalue(L, 2);                               /* closing value */
  return 4;
}
/* }================================================================== */


static int qs_tostring(lua_State *L) {
  LQs *q = luaL_checkudata(L, 1, QUAY_QS_MT);
  lua_pushfstring(L, "quay.QuerySet(%s)",
                  q->qs ? quay_model_name(quay_qs_model(q->qs)) : "freed");
  return 1;
}

static const luaL_Reg aQsMethod[] = {
  {"filter", qs_filter},
  {"exclude", qs_exclude},
  {"where_has", qs_where_has},
  {"where_doesnt_have", qs_where_doesnt_have},
  {"order_by", qs_order_by},
  {"limit", qs_limit},
  {"offset", qs_offset},
  {"select_related", qs_select_related},
  {"prefetch_related", qs_prefetch_related},
  {"with", qs_with},
  {"with_count", qs_with_count},
  {"annotate", qs_annotate},
  {"aggregate", qs_aggregate},
  {"values", qs_values},
  {"distinct", qs_distinct},
  {"strict", qs_strict},
  {"using", qs_using},
  {"all", qs_all},
  {"first", qs_first},
  {"get", qs_get},
  {"count", qs_count},
  {"exists", qs_exists},
  {"iter", qs_iter},
  {"pluck", qs_pluck},
  {"update", qs_update},
  {"delete", qs_delete},
  {"sql", qs_sql},
  {"explain", qs_explain},
  {"select_for_update", lquay_qs_select_for_update},  /* lmodel.c */
  {NULL, NULL}
};

/* __index: methods; anything else is an unknown method. */
static int qs_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  if (lquay_behav_qs_scope(L, 1, 2)) return 1;       /* a scope */
  lquay_raisef(L, QUAY_EMISUSE, "query sets have no method '%s'",
               lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
  return 0;
}

/*
** The query-set method named by upvalue 1, called on a Model (starting
** from Model:query()).  Model:query() itself returns the root set.
*/
int lquay_qs_method(lua_State *L) {
  const char *zName = lua_tostring(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  LModel *pM;
  if (!luaL_testudata(L, 1, QUAY_MODEL_MT)) {
    LModel *pOwn = luaL_testudata(L, lua_upvalueindex(2), QUAY_MODEL_MT);
    lquay_check_self(L, 1, QUAY_MODEL_MT,
                     pOwn && pOwn->m ? quay_model_name(pOwn->m) : "Model",
                     zName);
  }
  pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  if (strcmp(zName, "query") == 0) {
    lquay_root_qs(L, 1);
    return 1;
  }
  luaL_getmetatable(L, QUAY_QS_MT);
  lua_getfield(L, -1, "__methods");
  lua_getfield(L, -1, zName);                        /* [args.., mt, ms, fn] */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (!lquay_behav_scope(L, 1, zName)) {           /* a scope */
      lquay_raisef(L, QUAY_EMISUSE, "%s has no method '%s'",
                   quay_model_name(pM->m), zName);
    }
  }
  lua_replace(L, -3);
  lua_pop(L, 1);                                     /* [M, args.., fn] */
  lua_insert(L, 1);                                  /* [fn, M, args..] */
  lquay_root_qs(L, 2);                               /* [fn, M, args.., qs] */
  lua_replace(L, 2);                                 /* [fn, qs, args..] */
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

void lquay_open_qs(lua_State *L) {
  luaL_newmetatable(L, QUAY_QS_MT);                  /* [mt] */
  luaL_newlib(L, aQsMethod);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pushcclosure(L, qs_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, qs_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, qs_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_ITER_MT);
  lua_pushcfunction(L, iter_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, iter_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, iter_next);
  lua_setfield(L, -2, "__call");
  lua_pop(L, 1);
}
