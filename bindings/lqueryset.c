/*
** bindings/lqueryset.c
** Query sets: chaining, terminal calls, and the materializer that turns
** engine rows into records for all(), prefetch steps, lazy loads and
** streaming iteration.
** See LICENSE
**
** The materializer is the hot path (shared/MEASURED.md: building Lua
** values is half the cost of reading rows).  Per query it pushes each
** node's field names once and reuses them as keys; per row it creates one
** table per record with lua_createtable sized for its fields, raw-sets
** non-NULL values, and sets the metatable.  Records reached through a JOIN
** or a batched step are deduplicated by primary key in a C key set, so 100k
** posts of 10k authors make 10k author tables.  Batched steps collect
** owner keys into a key set once and attach each child to its owner group
** by one hash probe; no per-row work happens in Lua code.
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
  qs_model(L, 1);
  if (lua_type(L, 2) != LUA_TTABLE) {
    lquay_arg_error(L, 2, bExclude ? "exclude" : "filter",
                    "a conditions table");
  }
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
    lua_call(L, 1, 1);                               /* [.., T, sub] */
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

static int qs_order_by(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  int i, n = lua_gettop(L) - 1;
  const char **az;
  quay_err err;
  LQs *out;
  qs_model(L, 1);
  az = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (i = 0; i < n; i++) {
    az[i] = lquay_name(L, i + 2, QUAY_EUNKNOWN_FIELD, "an order_by term");
  }
  out = derived(L, 1);
  if (quay_qs_order_by(q->qs, az, n, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}

static int qs_number(lua_State *L, int bLimit) {
  LQs *q = lquay_check_qs(L, 1);
  lua_Integer n = lquay_check_integer(L, 2, bLimit ? "limit" : "offset");
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

static int qs_select_related(lua_State *L) { return qs_load(L, QUAY_LOAD_JOIN); }
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
** Materializing rows
** ===================================================================
*/
typedef struct Mat {
  lua_State *L;
  LDb *pDb;
  quay_plan *plan;
  int strict;
} Mat;

/* Per node of a step's layout, during one materialize call. */
typedef struct NodeCtx {
  quay_node_info info;
  int nField;
  int iMt, iNames, iArr, iSlot;   /* stack indexes */
  quay_keyset *ks;                /* dedupe, or NULL */
  int nRec;                       /* records in iArr */
} NodeCtx;

static void keyset_free(void *p) { quay_keyset_free(p); }
static void cursor_free(void *p) { quay_cursor_close(p); }
static void plan_free(void *p) { quay_plan_free(p); }

/*
** Make one record from columns iFirst.. of the current row.  Leaves it on
** the stack.
*/
static void make_record(lua_State *L, quay_cursor *cur, int iFirst,
                        int nField, int iNames, int iMt, int iKeyCol) {
  int i;
  quay_value v;
  lua_createtable(L, 0, nField + 1);
  for (i = 0; i < nField; i++) {
    quay_cursor_value(cur, iFirst + i, &v);
    if (v.type == QUAY_NULL) continue;
    lua_pushvalue(L, iNames + i);
    lquay_push_value(L, &v);
    lua_rawset(L, -3);
  }
  quay_cursor_value(cur, iKeyCol, &v);
  lquay_push_value(L, &v);
  lua_rawsetp(L, -2, &lquay_LK_PK);
  lua_pushvalue(L, iMt);
  lua_setmetatable(L, -2);
}

/* Push the record metatable of m and its field names (nField strings). */
static void push_model_ctx(lua_State *L, Mat *x, quay_model *m, int *piMt,
                           int *piNames) {
  int i, n = quay_model_field_count(m);
  lquay_push_mt(L, x->pDb, m);
  *piMt = lua_gettop(L);
  luaL_checkstack(L, n + 8, "field names");
  lua_rawgetp(L, *piMt, &lquay_LK_NAMES);
  *piNames = lua_gettop(L) + 1;
  for (i = 0; i < n; i++) lua_rawgeti(L, *piNames - 1, i + 1);
}

/*
** Read up to nMax rows (0 = all) of cur, a cursor of step iStep (-1 main),
** into records.  iStepArr is the table { [node+1] = array }.  For batched
** steps, pOwnerKs maps group values to owner groups and iGroups collects
** children per group.  Returns 1 when the cursor is exhausted.
*/
static int materialize(lua_State *L, Mat *x, int iStep, quay_cursor *cur,
                       int iStepArr, int nMax, const quay_keyset *pOwnerKs,
                       int iGroups, int iGroupCol, int bUnique) {
  int nNode = quay_plan_nnode(x->plan, iStep);
  int nExtra = quay_plan_nextra(x->plan, iStep);
  NodeCtx aNode[16];
  quay_extra_info aX[16];
  int aXName[16], iPvMt = 0, iPvNames = 0, iPivotX = -1;
  int k, rc, nRow = 0, top = lua_gettop(L), done = 0;
  Box *pFirstBox = NULL;
  quay_err err;
  quay_value v;
  if (nNode > 16 || nExtra > 16) {
    lquay_raisef(L, QUAY_EMISUSE, "too many joined levels in one query");
  }
  for (k = 0; k < nExtra; k++) {
    quay_plan_extra(x->plan, iStep, k, &aX[k]);
    if (aX[k].pModel) iPivotX = k;
  }
  for (k = 0; k < nNode; k++) {
    NodeCtx *n = &aNode[k];
    quay_plan_node(x->plan, iStep, k, &n->info);
    n->nField = quay_model_field_count(n->info.pModel);
    push_model_ctx(L, x, n->info.pModel, &n->iMt, &n->iNames);
    if (lua_rawgeti(L, iStepArr, k + 1) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_newtable(L);
      if (x->strict) {
        lua_pushboolean(L, 1);
        lua_rawsetp(L, -2, &lquay_LK_STRICT);
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, iStepArr, k + 1);
    }
    n->iArr = lua_gettop(L);
    n->nRec = (int)lua_rawlen(L, n->iArr);
    lquay_push_result_mt(L, n->iMt, n->iArr);        /* this result's mt */
    n->iMt = lua_gettop(L);
    n->ks = NULL;
    /* Dedupe by key: joined records, and children that several owners
    ** share (not those of a reverse foreign key, nor pivot rows). */
    if (k > 0 || (iStep >= 0 && iPivotX < 0 && !bUnique)) {
      Box *b = lquay_box(L, keyset_free);
      if (pFirstBox == NULL) pFirstBox = b;
      if (quay_keyset_new((quay_keyset **)&b->p, &err)) lquay_raise(L, &err);
      n->ks = b->p;
    }
    lua_pushnil(L);
    n->iSlot = lua_gettop(L);
  }
  for (k = 0; k < nExtra; k++) {
    if (aX[k].pModel) {
      int iMt, iNames;
      push_model_ctx(L, x, aX[k].pModel, &iMt, &iNames);
      iPvMt = iMt;
      iPvNames = iNames;
      aXName[k] = 0;
    } else {
      lua_pushstring(L, aX[k].zName);
      aXName[k] = lua_gettop(L);
    }
  }
  luaL_checkstack(L, 16, "rows");
  for (;;) {
    if (nMax > 0 && nRow >= nMax) break;
    rc = quay_cursor_step(cur, &err);
    if (rc == QUAY_DONE) {
      done = 1;
      break;
    }
    if (rc != QUAY_ROW) lquay_fail(L, x->pDb, &err);
    nRow++;
    for (k = 0; k < nNode; k++) {
      NodeCtx *n = &aNode[k];
      quay_cursor_value(cur, n->info.iKeyCol, &v);
      if (k > 0 && v.type == QUAY_NULL) {
        lua_pushboolean(L, 0);
        lua_replace(L, n->iSlot);
        continue;
      }
      if (n->ks) {
        int idx;
        if (quay_keyset_add(n->ks, &v, &idx, &err)) lquay_raise(L, &err);
        if (idx >= 0 && idx < n->nRec) {
          lua_rawgeti(L, n->iArr, idx + 1);
          lua_replace(L, n->iSlot);
          continue;
        }
      }
      make_record(L, cur, n->info.iFirstCol, n->nField, n->iNames, n->iMt,
                  n->info.iKeyCol);
      lua_pushvalue(L, -1);
      lua_rawseti(L, n->iArr, ++n->nRec);
      lua_replace(L, n->iSlot);
    }
    /* Joined records hang off their parents. */
    for (k = 1; k < nNode; k++) {
      NodeCtx *n = &aNode[k];
      int iPar = aNode[n->info.iParent].iSlot;
      if (lua_type(L, iPar) != LUA_TTABLE) continue;
      lua_pushvalue(L, n->iSlot);
      lua_rawsetp(L, iPar, LQUAY_RELKEY(n->info.iRel));
    }
    for (k = 0; k < nExtra; k++) {
      if (aX[k].pModel) {
        quay_value pk;
        int nf = quay_model_field_count(aX[k].pModel);
        quay_cursor_value(cur, aX[k].iCol + quay_model_pk(aX[k].pModel), &pk);
        make_record(L, cur, aX[k].iCol, nf, iPvNames, iPvMt,
                    aX[k].iCol + quay_model_pk(aX[k].pModel));
        lua_rawsetp(L, aNode[0].iSlot, &lquay_LK_PIVOT);
      } else {
        quay_cursor_value(cur, aX[k].iCol, &v);
        lua_pushvalue(L, aXName[k]);
        lquay_push_value(L, &v);
        lua_rawset(L, aNode[0].iSlot);
      }
    }
    if (pOwnerKs) {
      int g;
      quay_cursor_value(cur, iGroupCol, &v);
      g = quay_keyset_find(pOwnerKs, &v);
      if (g >= 0) {
        if (lua_rawgeti(L, iGroups, g + 1) == LUA_TNIL) {
          lua_pop(L, 1);
          lua_createtable(L, 4, 1);                  /* room for the owner */
          lua_pushvalue(L, -1);
          lua_rawseti(L, iGroups, g + 1);
        }
        lua_pushvalue(L, aNode[0].iSlot);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
      }
    }
  }
  if (pFirstBox) lquay_box_close(L, pFirstBox);
  lua_settop(L, top);
  return done;
}

/* Mark the set (or group) at idx as relation j's loaded set of owner. */
static void make_set(lua_State *L, int idx, int iOwner, int j) {
  lquay_set_mark(L, idx, iOwner, j, 1);
}

/* Copy the array at iFrom into the table at iTo (appending). */
static void copy_array(lua_State *L, int iFrom, int iTo) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, iFrom);
  lua_Integer m = (lua_Integer)lua_rawlen(L, iTo);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, iFrom, i);
    lua_rawseti(L, iTo, m + i);
  }
}

/*
** One batched step being run: its owners' keys are collected first; the
** query is then opened together with its siblings; the rows are then
** materialized and attached.
*/
typedef struct StepRun {
  int iStep;
  quay_step_info si;
  int iOwners, iStepArr;    /* stack: owners array, the step's node arrays */
  int iGroups;              /* stack: children per owner group */
  int *aG;                  /* per owner: its group, -1 for a NULL key */
  Box *pKs;                 /* the owners' key set */
} StepRun;

/* Collect the owners' keys of r (pushes the key name, aG, a key-set box,
** and the groups table). */
static void step_collect(lua_State *L, StepRun *r) {
  quay_field_info fk;
  quay_err err;
  lua_Integer i, nOwner = (lua_Integer)lua_rawlen(L, r->iOwners);
  int iKeyName;
  quay_model_field(r->si.pOwner, r->si.iOwnerKey, &fk);
  lua_pushstring(L, fk.zName);
  iKeyName = lua_gettop(L);
  r->aG = lua_newuserdatauv(L, sizeof(int) * (size_t)(nOwner + 1), 0);
  r->pKs = lquay_box(L, keyset_free);
  if (quay_keyset_new((quay_keyset **)&r->pKs->p, &err)) lquay_raise(L, &err);
  for (i = 1; i <= nOwner; i++) {
    quay_value v;
    lua_rawgeti(L, r->iOwners, i);
    lua_pushvalue(L, iKeyName);
    lua_rawget(L, -2);
    if (lquay_to_value(L, -1, &v, 0, fk.zName) != 0) v.type = QUAY_NULL;
    if (quay_keyset_add(r->pKs->p, &v, &r->aG[i - 1], &err)) {
      lquay_raise(L, &err);
    }
    lua_pop(L, 2);
  }
  lua_createtable(L, quay_keyset_count(r->pKs->p), 0);
  r->iGroups = lua_gettop(L);
}

/* Materialize r's rows from cur (NULL: no owner had a key) and attach the
** loaded values to the owners. */
static void step_finish(lua_State *L, Mat *x, StepRun *r, quay_cursor *cur) {
  lua_Integer i, nOwner = (lua_Integer)lua_rawlen(L, r->iOwners);
  const quay_step_info *si = &r->si;
  int top = lua_gettop(L);
  if (cur) {
    materialize(L, x, r->iStep, cur, r->iStepArr, 0, r->pKs->p, r->iGroups,
                si->iGroupCol, si->uniqueChildren);
  } else {
    /* No owner has a key: the step's arrays are empty. */
    int k, nNode = quay_plan_nnode(x->plan, r->iStep);
    for (k = 0; k < nNode; k++) {
      lua_newtable(L);
      lua_rawseti(L, r->iStepArr, k + 1);
    }
  }
  luaL_checkstack(L, 8, "attach");
  for (i = 1; i <= nOwner; i++) {
    int g = r->aG[i - 1], iOwner, iGrp;
    lua_rawgeti(L, r->iOwners, i);
    iOwner = lua_gettop(L);
    if (g >= 0) {
      lua_rawgeti(L, r->iGroups, g + 1);
    } else {
      lua_pushnil(L);
    }
    iGrp = lua_gettop(L);
    if (!si->toMany) {
      if (lua_istable(L, iGrp)) {
        lua_rawgeti(L, iGrp, 1);
      } else {
        lua_pushboolean(L, 0);
      }
      if (si->isCustom) {
        if (!lua_toboolean(L, -1)) {
          lua_pop(L, 1);
          lua_pushnil(L);
        }
        lua_setfield(L, iOwner, si->zAttach);
      } else {
        lua_rawsetp(L, iOwner, LQUAY_RELKEY(si->iRel));
      }
    } else if (si->isCustom) {
      lua_createtable(L, 0, 0);
      if (lua_istable(L, iGrp)) copy_array(L, iGrp, lua_gettop(L));
      lua_pushstring(L, si->zAttach);
      lua_insert(L, -2);
      lua_rawset(L, iOwner);
    } else {
      int iSet;
      lua_rawgetp(L, iOwner, LQUAY_RELKEY(si->iRel));  /* existing set? */
      if (lua_istable(L, -1) && !lquay_set_loaded(L, -1)) {
        /* An unloaded set the user already holds: fill it in place. */
        iSet = lua_gettop(L);
        if (lua_istable(L, iGrp)) copy_array(L, iGrp, iSet);
        lquay_set_mark(L, iSet, iOwner, si->iRel, 1);
        lua_settop(L, iOwner - 1);
        continue;
      }
      lua_pop(L, 1);
      if (lua_istable(L, iGrp)) {
        lua_rawgetp(L, iGrp, &lquay_LK_OWNER);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          lua_pushvalue(L, iGrp);                    /* the group is the set */
        } else {
          lua_pop(L, 1);
          lua_createtable(L, (int)lua_rawlen(L, iGrp), 1);
          copy_array(L, iGrp, lua_gettop(L));
        }
      } else {
        lua_createtable(L, 0, 1);
      }
      iSet = lua_gettop(L);
      make_set(L, iSet, iOwner, si->iRel);
      lua_rawsetp(L, iOwner, LQUAY_RELKEY(si->iRel));
    }
    lua_settop(L, iOwner - 1);
  }
  lua_settop(L, top);
}

#define MAX_BATCH 16

/*
** Run every batched step of the plan.  iArrays: { [step+2] = { [node+1] =
** records } } with the main step's arrays at [1].  Steps whose owners are
** already loaded (siblings, e.g. with("author", "tags", "media")) are
** opened together: one round trip on PostgreSQL.
*/
static void run_steps(lua_State *L, Mat *x, int iArrays) {
  int s = 0, n = quay_plan_nstep(x->plan);
  while (s < n) {
    StepRun aRun[MAX_BATCH];
    Box *apBox[MAX_BATCH];
    const quay_keyset *apKs[MAX_BATCH];
    quay_cursor *apCur[MAX_BATCH];
    int aiStep[MAX_BATCH];
    int nRun = 0, nOpen = 0, k, top = lua_gettop(L);
    Box *pFirst = NULL;
    quay_err err;
    /* The batch: s and the next steps whose parents are done. */
    while (s + nRun < n && nRun < MAX_BATCH) {
      StepRun *r = &aRun[nRun];
      quay_plan_step(x->plan, s + nRun, &r->si);
      if (nRun > 0 && r->si.iParentStep >= s) break;
      r->iStep = s + nRun;
      lua_rawgeti(L, iArrays, r->si.iParentStep + 2);  /* [parent arrays] */
      lua_rawgeti(L, -1, r->si.iParentNode + 1);       /* [.., owners] */
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
      }
      r->iOwners = lua_gettop(L);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawseti(L, iArrays, r->iStep + 2);
      r->iStepArr = lua_gettop(L);
      step_collect(L, r);
      if (pFirst == NULL) pFirst = r->pKs;
      nRun++;
    }
    /* Cursors: boxes first, then one batched open for the steps with keys. */
    for (k = 0; k < nRun; k++) {
      apBox[k] = NULL;
      if (quay_keyset_count(aRun[k].pKs->p) == 0) continue;
      apBox[k] = lquay_box(L, cursor_free);
      aiStep[nOpen] = aRun[k].iStep;
      apKs[nOpen] = aRun[k].pKs->p;
      nOpen++;
    }
    if (nOpen > 0) {
      int j = 0;
      if (quay_plan_steps_open(x->plan, aiStep, nOpen, x->pDb->db, apKs, apCur,
                               &err)) {
        lquay_fail(L, x->pDb, &err);
      }
      for (k = 0; k < nRun; k++) {
        if (apBox[k]) apBox[k]->p = apCur[j++];
      }
    }
    for (k = 0; k < nRun; k++) {
      step_finish(L, x, &aRun[k], apBox[k] ? apBox[k]->p : NULL);
      if (apBox[k]) lquay_box_release(apBox[k]);
    }
    lquay_box_close(L, pFirst);
    lua_settop(L, top);
    s += nRun;
  }
}

/* Run a plan and push the array of records. */
static void run_plan(lua_State *L, LDb *pDb, quay_plan *plan) {
  Mat x;
  quay_err err;
  Box *pCur;
  int iArrays;
  x.L = L;
  x.pDb = pDb;
  x.plan = plan;
  x.strict = quay_plan_strict(plan);
  lua_newtable(L);                                   /* [arrays] */
  iArrays = lua_gettop(L);
  lua_newtable(L);
  lua_rawseti(L, iArrays, 1);
  pCur = lquay_box(L, cursor_free);
  if (quay_plan_open(plan, pDb->db, (quay_cursor **)&pCur->p, &err)) {
    lquay_fail(L, pDb, &err);
  }
  lua_rawgeti(L, iArrays, 1);
  materialize(L, &x, -1, pCur->p, lua_gettop(L), 0, NULL, 0, 0, 0);
  lua_pop(L, 1);
  lquay_box_release(pCur);
  run_steps(L, &x, iArrays);
  lua_rawgeti(L, iArrays, 1);
  lua_rawgeti(L, -1, 1);                             /* [.., arrays, a1, res] */
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
}

/*
** Run the query set and push the array of records.  The stack grows by
** more than one slot (the to-be-closed plan box stays below the result
** until the calling C function returns); the result is on top.
*/
void lquay_push_rows(lua_State *L, int iModelIdx, quay_qs *qs,
                     int nLimitOne) {
  LModel *pM = lua_touserdata(L, iModelIdx);
  quay_err err;
  Box *pPlan;
  (void)nLimitOne;
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  run_plan(L, pM->pDb, pPlan->p);                    /* [.., box, .., res] */
  lquay_box_release(pPlan);
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
  Mat x;
  int iOwners, iArrays, strict, top = lua_gettop(L);
  lua_Integer n = 0;
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
  if (strict) {
    quay_rel_info r;
    quay_model_relation(pM->m, j, &r);
    lquay_raisef(L, QUAY_ELAZY_LOAD,
                 "strict mode: %s.%s would be loaded lazily (by reading "
                 "rec.%s); load it up front with :with(\"%s\"), "
                 ":select_related or :prefetch_related", quay_model_name(pM->m),
                 r.zName, zWhy ? zWhy : r.zName, r.zName);
  }
  lua_newtable(L);                                   /* [res, owners] */
  iOwners = lua_gettop(L);
  if (lua_istable(L, -2)) {
    lua_Integer i, nRes = (lua_Integer)lua_rawlen(L, -2);
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
  x.L = L;
  x.pDb = pM->pDb;
  x.plan = lazy_plan(L, pM, j);
  x.strict = 0;
  lua_newtable(L);                                   /* [.., arrays] */
  iArrays = lua_gettop(L);
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, iOwners);
  lua_rawseti(L, -2, 1);
  lua_rawseti(L, iArrays, 1);
  run_steps(L, &x, iArrays);
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
  lua_settop(L, 2);
  pM = qs_model(L, 1);                               /* [q, conds, M] */
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
  LModel *pM = qs_model(L, 1);
  quay_err err;
  int64_t n;
  if (quay_qs_count(q->qs, pM->pDb->db, &n, &err)) lquay_fail(L, pM->pDb, &err);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int qs_exists(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM = qs_model(L, 1);
  quay_err err;
  int b;
  if (quay_qs_exists(q->qs, pM->pDb->db, &b, &err)) lquay_fail(L, pM->pDb, &err);
  lua_pushboolean(L, b);
  return 1;
}

static int qs_pluck(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  const char *zPath = lquay_name(L, 2, QUAY_EUNKNOWN_FIELD, "a pluck path");
  LModel *pM = qs_model(L, 1);
  quay_err err;
  Box *pCur;
  lua_Integer n = 0;
  int rc;
  lua_newtable(L);                                   /* [.., res] */
  pCur = lquay_box(L, cursor_free);
  if (quay_qs_pluck(q->qs, pM->pDb->db, zPath, (quay_cursor **)&pCur->p,
                    &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
  while ((rc = quay_cursor_step(pCur->p, &err)) == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(pCur->p, 0, &v);
    lquay_push_value(L, &v);
    lua_rawseti(L, -3, ++n);
  }
  lquay_box_close(L, pCur);
  if (rc != QUAY_DONE) lquay_fail(L, pM->pDb, &err);
  lua_pop(L, 1);
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  return 1;
}

static void writer_free(void *p) { quay_writer_free(p); }

/* qs:update(values) */
static int qs_update(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM = qs_model(L, 1);                       /* [q, vals, M] */
  quay_err err;
  Box *pW;
  int64_t n = 0;
  int iMembers;
  lquay_check_type(L, 2, LUA_TTABLE, "update");
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
    {
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
  int bDry = 0;
  LModel *pM;
  quay_err err;
  Box *pC;
  if (!lua_isnoneornil(L, 2)) {
    lquay_check_type(L, 2, LUA_TTABLE, "delete");
    lua_getfield(L, 2, "dry_run");
    bDry = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  pM = qs_model(L, 1);
  pC = lquay_box(L, counts_free);
  if (quay_qs_delete(q->qs, pM->pDb->db, bDry, (quay_counts **)&pC->p, &err)) {
    lquay_fail(L, pM->pDb, &err);
  }
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
  qs_model(L, 1);
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(q->qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  z = quay_plan_sql(pPlan->p, -1, &a, &n);
  lua_pushstring(L, z ? z : "");
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lquay_push_value(L, &a[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

/* Path of node k of step s (for explain). */
static void push_node_path(lua_State *L, quay_plan *p, int s, int k,
                           int iStepPaths) {
  quay_node_info ni;
  quay_rel_info r;
  quay_plan_node(p, s, k, &ni);
  if (ni.iParent < 0) {
    lua_rawgeti(L, iStepPaths, s + 2);
    return;
  }
  push_node_path(L, p, s, ni.iParent, iStepPaths);
  {
    quay_node_info pi;
    quay_plan_node(p, s, ni.iParent, &pi);
    quay_model_relation(pi.pModel, ni.iRel, &r);
  }
  if (lua_rawlen(L, -1) > 0) {
    lua_pushfstring(L, "%s__%s", lua_tostring(L, -1), r.zName);
  } else {
    lua_pushstring(L, r.zName);
  }
  lua_remove(L, -2);
}

/* qs:explain() -> list of { path, how, sql } */
static int qs_explain(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  quay_err err;
  Box *pPlan;
  quay_plan *p;
  int s, k, iRes, iPaths;
  lua_Integer n = 0;
  qs_model(L, 1);
  pPlan = lquay_box(L, plan_free);
  if (quay_plan_new(q->qs, (quay_plan **)&pPlan->p, &err)) lquay_raise(L, &err);
  p = pPlan->p;
  lua_newtable(L);
  iRes = lua_gettop(L);
  lua_newtable(L);                                   /* step paths */
  iPaths = lua_gettop(L);
  lua_pushliteral(L, "");
  lua_rawseti(L, iPaths, 1);
  for (s = -1; s < quay_plan_nstep(p); s++) {
    const char *zSql = quay_plan_sql(p, s, NULL, NULL);
    if (s >= 0) {
      quay_step_info si;
      quay_plan_step(p, s, &si);
      push_node_path(L, p, si.iParentStep, si.iParentNode, iPaths);
      if (lua_rawlen(L, -1) > 0) {
        lua_pushfstring(L, "%s__%s", lua_tostring(L, -1), si.zAttach);
      } else {
        lua_pushstring(L, si.zAttach);
      }
      lua_remove(L, -2);
      lua_pushvalue(L, -1);
      lua_rawseti(L, iPaths, s + 2);
    } else {
      lua_pushliteral(L, "");
    }
    lua_createtable(L, 0, 3);
    lua_insert(L, -2);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, s < 0 ? "query" : "batch");
    lua_setfield(L, -2, "how");
    lua_pushstring(L, zSql ? zSql : "");
    lua_setfield(L, -2, "sql");
    lua_rawseti(L, iRes, ++n);
    for (k = 1; k < quay_plan_nnode(p, s); k++) {
      lua_createtable(L, 0, 3);
      push_node_path(L, p, s, k, iPaths);
      lua_setfield(L, -2, "path");
      lua_pushliteral(L, "join");
      lua_setfield(L, -2, "how");
      lua_pushstring(L, zSql ? zSql : "");
      lua_setfield(L, -2, "sql");
      lua_rawseti(L, iRes, ++n);
    }
  }
  lua_settop(L, iRes);
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
  quay_cursor *cur;
  LDb *pDb;                 /* kept alive through user value 1 */
  int done;
  lua_Integer pos;
} LIter;

static int iter_close(lua_State *L) {
  LIter *it = luaL_checkudata(L, 1, QUAY_ITER_MT);
  quay_cursor *c = it->cur;
  quay_plan *p = it->plan;
  it->cur = NULL;
  it->plan = NULL;
  quay_cursor_close(c);
  quay_plan_free(p);
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
  if (it->done || it->cur == NULL) {
    iter_close(L);
    lua_pushnil(L);
    return 1;
  }
  {
    Mat x;
    int iArrays;
    lquay_enter(L, it->pDb);
    if (it->pDb->db == NULL) {
      lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a freed database");
    }
    x.L = L;
    x.pDb = it->pDb;
    x.plan = it->plan;
    x.strict = quay_plan_strict(it->plan);
    lua_newtable(L);                                 /* [it, old, arrays] */
    iArrays = lua_gettop(L);
    lua_newtable(L);
    lua_rawseti(L, iArrays, 1);
    lua_rawgeti(L, iArrays, 1);
    it->done = materialize(L, &x, -1, it->cur, lua_gettop(L), ITER_CHUNK,
                           NULL, 0, 0, 0);
    lua_pop(L, 1);
    if (it->done) {
      quay_cursor *c = it->cur;
      it->cur = NULL;
      quay_cursor_close(c);
    }
    run_steps(L, &x, iArrays);
    lua_rawgeti(L, iArrays, 1);
    lua_rawgeti(L, -1, 1);                           /* [.., a1, chunk] */
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);
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
}

static int qs_iter(lua_State *L) {
  LQs *q = lquay_check_qs(L, 1);
  LModel *pM = qs_model(L, 1);                       /* [q, .., M] */
  LIter *it;
  quay_err err;
  lua_settop(L, 1);
  it = lua_newuserdatauv(L, sizeof(LIter), 2);       /* [q, it] closed */
  memset(it, 0, sizeof(*it));
  it->pDb = pM->pDb;
  luaL_setmetatable(L, QUAY_ITER_MT);
  lua_getiuservalue(L, 1, 1);
  lua_setiuservalue(L, 2, 1);                        /* keeps the Model */
  if (quay_plan_new(q->qs, &it->plan, &err)) lquay_raise(L, &err);
  /* Streamed: PostgreSQL reads it through a server-side cursor. */
  if (quay_plan_stream(it->plan, pM->pDb->db, &it->cur, &err)) {
    lquay_fail(L, pM->pDb, &err);
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
  {"strict", qs_strict},
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
  {NULL, NULL}
};

/* __index: methods; anything else is an unknown method. */
static int qs_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
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
    lquay_raisef(L, QUAY_EMISUSE, "%s has no method '%s'",
                 quay_model_name(pM->m), zName);
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
