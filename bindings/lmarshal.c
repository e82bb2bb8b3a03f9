/*
** bindings/lmarshal.c
** Lua values <-> quay_value, and condition tables -> quay_cond trees.
** See LICENSE
**
** Text values point into Lua strings, which stay alive because they are
** referenced from the argument tables for the whole engine call.  Lists
** and record snapshots live in scratch userdata that the caller keeps on
** the stack.  A record used as a value (`author = u`) becomes a snapshot
** of its scalar fields, so the engine can read whichever key it needs
** through quay_record_get without calling back into Lua.
*/
#include "lquay.h"

#include <stdlib.h>
#include <string.h>

/* A record's scalar fields, captured for the engine. */
typedef struct Snapshot {
  int n;
  struct {
    const char *zName;
    quay_value v;
  } a[1];
} Snapshot;

int lquay_record_get(void *p, const char *zField, quay_value *pOut) {
  Snapshot *s = p;
  int i;
  for (i = 0; i < s->n; i++) {
    if (strcmp(s->a[i].zName, zField) == 0) {
      *pOut = s->a[i].v;
      return 0;
    }
  }
  pOut->type = QUAY_NULL;
  return 1;
}

/* Scalar conversion; 0 when the value is not a scalar. */
static int scalar(lua_State *L, int idx, quay_value *p) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      p->type = QUAY_NULL;
      return 1;
    case LUA_TBOOLEAN:
      p->type = QUAY_BOOL;
      p->u.b = lua_toboolean(L, idx);
      return 1;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        p->type = QUAY_INT;
        p->u.i = lua_tointeger(L, idx);
      } else {
        p->type = QUAY_REAL;
        p->u.r = lua_tonumber(L, idx);
      }
      return 1;
    case LUA_TSTRING:
      p->type = QUAY_TEXT;
      p->u.z = lua_tolstring(L, idx, &p->n);
      return 1;
    case LUA_TUSERDATA:
      if (lquay_is_null(L, idx)) {
        p->type = QUAY_NULL;
        return 1;
      }
      return 0;
  }
  return 0;
}

int lquay_scalar(lua_State *L, int idx, quay_value *pOut) {
  return scalar(L, idx, pOut);
}

/*
** Snapshot the record at idx into a new userdata pushed on the stack.
*/
static void snapshot(lua_State *L, int idx, LModel *pM, quay_value *p) {
  Snapshot *s;
  int n = 0, k;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) n++;
    lua_pop(L, 1);
  }
  s = lua_newuserdatauv(L, sizeof(Snapshot) + sizeof(s->a[0]) * (size_t)n, 1);
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);            /* keeps the strings alive */
  k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && k < n) {
      quay_value v;
      if (scalar(L, -1, &v) && v.type != QUAY_NULL) {
        s->a[k].zName = lua_tostring(L, -2);
        s->a[k].v = v;
        k++;
      }
    }
    lua_pop(L, 1);
  }
  s->n = k;
  p->type = QUAY_RECORD;
  p->u.rec.p = s;
  p->u.rec.pModel = pM->m;
  p->u.rec.xGet = lquay_record_get;
}

/*
** Convert the Lua value at idx.  Lists (plain tables) become QUAY_LIST when
** bAllowList; their storage and any record snapshots are pushed on the
** stack and must stay there during the engine call.  Returns the number
** of values pushed.  Raises validation for values that cannot be stored.
*/
int lquay_to_value(lua_State *L, int idx, quay_value *p, int bAllowList,
                   const char *zWhat) {
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  if (scalar(L, idx, p)) return 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    LModel *pM = lquay_record_model(L, idx);
    if (pM) {
      snapshot(L, idx, pM, p);
      return lua_gettop(L) - top;
    }
    if (bAllowList && lua_getmetatable(L, idx) == 0) {
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
      quay_value *a = lua_newuserdatauv(L, sizeof(quay_value) *
                                               (size_t)(n + 1), 0);
      int base = lua_gettop(L);
      luaL_checkstack(L, 8, "conditions");
      for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (!scalar(L, -1, &a[i])) {
          LModel *pE = lua_type(L, -1) == LUA_TTABLE
                           ? lquay_record_model(L, -1) : NULL;
          if (pE == NULL) {
            lquay_raisef(L, QUAY_EBAD_LOOKUP,
                         "%s: list element %d is not a value", zWhat,
                         (int)i + 1);
          }
          /* The snapshot stays on the stack below the list's top. */
          snapshot(L, -1, pE, &a[i]);
          lua_insert(L, base);
          base++;
          lua_pop(L, 1);
          continue;
        }
        lua_pop(L, 1);
      }
      p->type = QUAY_LIST;
      p->n = (size_t)n;
      p->u.a = a;
      return lua_gettop(L) - top;
    }
    if (bAllowList) lua_pop(L, 1);            /* the metatable */
  }
  lquay_raisef(L, QUAY_EVALIDATION, "%s: a %s is not a value Quay can store",
               zWhat, luaL_typename(L, idx));
  return 0;
}

void lquay_push_value(lua_State *L, const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case QUAY_REAL: lua_pushnumber(L, v->u.r); break;
    case QUAY_BOOL: lua_pushboolean(L, v->u.b); break;
    case QUAY_TEXT:
    case QUAY_BLOB: lua_pushlstring(L, v->u.z, v->n); break;
    default: lua_pushnil(L); break;
  }
}

/*
** {==================================================================
** Condition tables
** ===================================================================
*/
static int is_mt(lua_State *L, int idx, const char *zMt) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, zMt);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

static void add_child(lua_State *L, quay_cond *pGroup, quay_cond *pChild) {
  quay_err err;
  if (quay_cond_add(pGroup, pChild, &err)) lquay_raise(L, &err);
}

static void fill_group(lua_State *L, int idx, quay_cond *pGroup, int iKeep);

/* Append to pGroup the condition(s) of the table at idx. */
static void add_table(lua_State *L, int idx, quay_cond *pGroup, int iKeep) {
  quay_err err;
  quay_cond *g;
  idx = lua_absindex(L, idx);
  if (is_mt(L, idx, QUAY_ANY_MT)) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
    if (quay_cond_group(QUAY_C_OR, &g, &err)) lquay_raise(L, &err);
    add_child(L, pGroup, g);              /* owned by the parent now */
    for (i = 1; i <= n; i++) {
      quay_cond *a;
      lua_rawgeti(L, idx, i);
      if (quay_cond_group(QUAY_C_AND, &a, &err)) lquay_raise(L, &err);
      add_child(L, g, a);
      fill_group(L, lua_gettop(L), a, iKeep);
      lua_pop(L, 1);
    }
    return;
  }
  if (quay_cond_group(QUAY_C_AND, &g, &err)) lquay_raise(L, &err);
  add_child(L, pGroup, g);
  fill_group(L, idx, g, iKeep);
}

/* One named condition: the key at -2, its value at -1 (both stay). */
static void add_leaf(lua_State *L, quay_cond *pGroup, int iKeep) {
  const char *zKey = lquay_name(L, -2, QUAY_EUNKNOWN_FIELD,
                                "a condition name");
  quay_err err;
  quay_value v;
  quay_cond *pLeaf;
  int nPushed;
  if (is_mt(L, -1, QUAY_ANY_MT)) {
    lquay_raisef(L, QUAY_EBAD_LOOKUP,
                 "%s = quay.any{...}: put quay.any in the list part of "
                 "the conditions", zKey);
  }
  nPushed = lquay_to_value(L, -1, &v, 1, zKey);
  if (quay_cond_leaf(zKey, &v, &pLeaf, &err)) lquay_raise(L, &err);
  add_child(L, pGroup, pLeaf);
  /* Snapshots must live until the tree is bound: keep them. */
  while (nPushed-- > 0) {
    lua_rawseti(L, iKeep, (lua_Integer)lua_rawlen(L, iKeep) + 1);
  }
}

typedef struct Name { const char *z; size_t n; } Name;

static int cmp_name(const void *pA, const void *pB) {
  const Name *a = pA, *b = pB;
  int c = memcmp(a->z, b->z, a->n < b->n ? a->n : b->n);
  if (c) return c;
  return a->n < b->n ? -1 : a->n > b->n;
}

/*
** Keys of a conditions table: array elements are nested tables (quay.any
** or AND groups), string keys are leaves.  The leaves are added in the
** byte order of their names, so the SQL text (and the statement cache
** entry) of a filter does not depend on the table's hash order, which
** changes from process to process.
*/
static void fill_group(lua_State *L, int idx, quay_cond *pGroup, int iKeep) {
  Name *az;
  int nStr = 0, i;
  if (lua_type(L, idx) != LUA_TTABLE) {
    lquay_raisef(L, QUAY_EBAD_LOOKUP, "conditions must be a table, got %s",
                 luaL_typename(L, idx));
  }
  if (is_mt(L, idx, QUAY_ANY_MT)) {
    add_table(L, idx, pGroup, iKeep);
    return;
  }
  if (lquay_record_model(L, idx) != NULL) {
    lquay_raisef(L, QUAY_EBAD_LOOKUP,
                 "conditions must be a table of name = value, not a record");
  }
  luaL_checkstack(L, 8, "conditions");
  lua_pushnil(L);
  while (lua_next(L, idx)) {                 /* [.., key, value] */
    if (lua_type(L, -2) == LUA_TSTRING) {
      nStr++;
    } else if (lua_type(L, -2) == LUA_TNUMBER) {
      if (lua_type(L, -1) != LUA_TTABLE) {
        lquay_raisef(L, QUAY_EBAD_LOOKUP,
                     "conditions: list elements must be quay.any{...} or "
                     "conditions tables");
      }
      add_table(L, -1, pGroup, iKeep);
    } else {
      lquay_raisef(L, QUAY_EBAD_LOOKUP,
                   "conditions: keys must be names, got a %s",
                   luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
  if (nStr == 0) return;
  if (nStr == 1) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        add_leaf(L, pGroup, iKeep);
        lua_pop(L, 2);
        return;
      }
      lua_pop(L, 1);
    }
    return;
  }
  /* The names stay alive as keys of the table, which nothing changes. */
  az = lua_newuserdatauv(L, sizeof(Name) * (size_t)nStr, 0);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING && i < nStr) {
      az[i].z = lua_tolstring(L, -2, &az[i].n);
      i++;
    }
    lua_pop(L, 1);
  }
  qsort(az, (size_t)i, sizeof(Name), cmp_name);
  nStr = i;
  for (i = 0; i < nStr; i++) {
    lua_pushlstring(L, az[i].z, az[i].n);
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);                      /* [.., az, key, value] */
    add_leaf(L, pGroup, iKeep);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/*
** Build the condition tree for the table at idx.  The root is stored in
** pBox (so any error releases it); the caller takes it out.  Pushes one
** table holding the values the tree borrows (record snapshots): keep it
** on the stack until the tree has been handed to the engine.
*/
quay_cond *lquay_conds(lua_State *L, int idx, Box *pBox) {
  quay_err err;
  quay_cond *pRoot;
  int iKeep;
  idx = lua_absindex(L, idx);
  lua_newtable(L);                                 /* [.., keep] */
  iKeep = lua_gettop(L);
  if (quay_cond_group(QUAY_C_AND, &pRoot, &err)) lquay_raise(L, &err);
  pBox->p = pRoot;
  pBox->xFree = (lquay_free_fn)quay_cond_free;
  fill_group(L, idx, pRoot, iKeep);
  return pRoot;
}
/* }================================================================== */
