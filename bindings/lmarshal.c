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
**
** JSON (quay.json fields) goes through jansson, the C library the engine
** checks documents with: a plain table given as a field value is encoded
** into a QUAY_JSON document (compact, keys sorted, floats with 17
** digits) in a buffer the caller keeps on the stack, and a QUAY_JSON
** value read from the engine is decoded into Lua values (a JSON null as
** quay.null).  Both directions build a jansson tree owned by a box, so a
** Lua error half-way (a function in the table, out of memory) frees it.
*/
#include "lquay.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Deepest nesting of tables encoded as JSON (a table that contains
** itself ends here too). */
#define LQUAY_JSON_DEPTH 256

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

void lquay_check_record_db(lua_State *L, LModel *pRec, LModel *pOwner,
                           const char *zField) {
  if (pRec->pDb != pOwner->pDb) {
    const char *zM = pOwner->m ? quay_model_name(pOwner->m) : "?";
    lquay_raise_field(L, QUAY_EVALIDATION, zM, zField,
                      "%s.%s: the %s record belongs to another database; use "
                      "a record loaded from this one", zM, zField,
                      pRec->m ? quay_model_name(pRec->m) : "given");
  }
}

/*
** {==================================================================
** JSON
** ===================================================================
*/
static void json_box_free(void *p) { json_decref(p); }

typedef struct JsonEnc {
  const char *zModel, *zField;      /* for messages */
} JsonEnc;

static LQUAY_NORETURN void json_fail(lua_State *L, const JsonEnc *x,
                                     const char *zWhy) {
  lquay_raise_field(L, QUAY_EVALIDATION, x->zModel, x->zField,
                    "%s%s%s: %s", x->zModel ? x->zModel : "",
                    x->zModel ? "." : "", x->zField ? x->zField : "?",
                    zWhy);
}

/*
** Attach j (a new reference, taken) to parent: appended to an array, or
** under key zKey of an object.  Raises when j is NULL (jansson refused
** the value: invalid UTF-8, out of memory) or the key is not UTF-8.
*/
static void json_attach(lua_State *L, const JsonEnc *x, json_t *parent,
                        const char *zKey, size_t nKey, json_t *j) {
  int rc;
  if (j == NULL) {
    json_fail(L, x, "a string inside the JSON value is not valid UTF-8 "
              "(or memory ran out)");
  }
  if (json_is_array(parent)) {
    rc = json_array_append_new(parent, j);
  } else {
    rc = json_object_setn_new(parent, zKey, nKey, j);
  }
  if (rc != 0) {
    json_fail(L, x, "a key inside the JSON value is not valid UTF-8 (or "
              "memory ran out)");
  }
}

/* The JSON value of the scalar at idx (a new reference), or NULL for a
** table; raises for values JSON has no form for. */
static json_t *json_scalar(lua_State *L, const JsonEnc *x, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        return json_integer((json_int_t)lua_tointeger(L, idx));
      } else {
        double r = lua_tonumber(L, idx);
        if (!isfinite(r)) {
          json_fail(L, x, "NaN and infinities have no JSON form");
        }
        return json_real(r);
      }
    case LUA_TSTRING: {
      size_t n;
      const char *z = lua_tolstring(L, idx, &n);
      json_t *j;
      if (memchr(z, 0, n)) {
        json_fail(L, x, "a string inside the JSON value holds a NUL byte");
      }
      j = json_stringn(z, n);
      if (j == NULL) {
        json_fail(L, x, "a string inside the JSON value is not valid UTF-8");
      }
      return j;
    }
    case LUA_TTABLE:
      if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        json_fail(L, x, "a table with a metatable (a record, a set, ...) "
                  "cannot be stored as JSON");
      }
      return NULL;
    case LUA_TUSERDATA:
      if (lquay_is_null(L, idx)) return json_null();
      /* fall through */
    default:
      break;
  }
  lua_pushfstring(L, "a %s cannot be stored as JSON (give tables, "
                  "strings, numbers, booleans and quay.null)",
                  luaL_typename(L, idx));
  json_fail(L, x, lua_tostring(L, -1));
  return NULL;
}

/* Non-0 when the table at idx is a list 1..n with n > 0 and no other key. */
static int json_is_list(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), k = 0;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    k++;
  }
  return k == n;
}

/*
** Fill container j (already attached, so owned) from the table at idx:
** an array when the keys are 1..n, an object when they are all strings
** (the empty table is an object).
*/
static void json_fill(lua_State *L, const JsonEnc *x, int idx, json_t *j,
                      int depth) {
  int bArray = json_is_array(j);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), i;
  if (depth > LQUAY_JSON_DEPTH) {
    json_fail(L, x, "the JSON value nests tables more than 256 deep (or "
              "a table contains itself)");
  }
  luaL_checkstack(L, 4, "a JSON value");
  if (bArray) {
    for (i = 1; i <= n; i++) {
      json_t *v;
      lua_rawgeti(L, idx, i);
      v = json_scalar(L, x, -1);
      if (v) {
        json_attach(L, x, j, NULL, 0, v);
      } else {
        json_t *c = json_is_list(L, lua_gettop(L)) ? json_array()
                                                    : json_object();
        json_attach(L, x, j, NULL, 0, c);
        json_fill(L, x, lua_gettop(L), c, depth + 1);
      }
      lua_pop(L, 1);
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {                       /* [.., key, value] */
    size_t nKey;
    const char *zKey;
    json_t *v;
    if (lua_type(L, -2) != LUA_TSTRING) {
      json_fail(L, x, "a table stored as JSON is a list (keys 1..n) or has "
                "string keys only");
    }
    zKey = lua_tolstring(L, -2, &nKey);
    v = json_scalar(L, x, -1);
    if (v) {
      json_attach(L, x, j, zKey, nKey, v);
    } else {
      json_t *c = json_is_list(L, lua_gettop(L)) ? json_array()
                                                  : json_object();
      json_attach(L, x, j, zKey, nKey, c);
      json_fill(L, x, lua_gettop(L), c, depth + 1);
    }
    lua_pop(L, 1);
  }
}


/*
** Encode the plain table at idx as a QUAY_JSON value: pushes the buffer
** holding the text (keep it on the stack during the engine call).
*/
static void json_encode(lua_State *L, int idx, quay_value *p,
                        const char *zModel, const char *zField) {
  JsonEnc x;
  Box *pBox;
  json_t *root;
  size_t n;
  char *z;
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS |
                       JSON_REAL_PRECISION(17);
  x.zModel = zModel;
  x.zField = zField;
  idx = lua_absindex(L, idx);
  pBox = lquay_box(L, json_box_free);                /* [.., box] */
  root = json_is_list(L, idx) ? json_array() : json_object();
  if (root == NULL) lquay_raisef(L, QUAY_ENOMEM, "out of memory");
  pBox->p = root;
  json_fill(L, &x, idx, root, 1);
  n = json_dumpb(root, NULL, 0, flags);
  z = lua_newuserdatauv(L, n + 1, 0);                /* [.., box, buf] */
  if (json_dumpb(root, z, n, flags) != n) {
    lquay_raisef(L, QUAY_ENOMEM, "out of memory encoding JSON");
  }
  z[n] = 0;
  lquay_box_close(L, pBox);                          /* frees the tree */
  lua_remove(L, -2);                                 /* [.., buf] */
  p->type = QUAY_JSON;
  p->u.z = z;
  p->n = n;
}

/*
** Non-0 when the integer token z[0..n) (an optional '-', then digits)
** is past the 64-bit range.  JSON integers have no leading zeros.
*/
static int json_int_overflows(const char *z, size_t n) {
  int neg = n > 0 && z[0] == '-';
  const char *zMax = neg ? "9223372036854775808" : "9223372036854775807";
  if (neg) {
    z++;
    n--;
  }
  if (n != 19) return n > 19;
  return memcmp(z, zMax, 19) > 0;
}

/*
** Decode a JSON document read from the database.  PostgreSQL's jsonb
** writes a number as its digits (a float 1e20 comes back as
** 100000000000000000000), which jansson refuses as a too big integer:
** then such integers (and only those) are read as floats, as Lua's
** tonumber reads them, from a copy where each gets a ".0".
*/
static json_t *json_load_doc(const char *z, size_t n, json_error_t *e) {
  const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  json_t *j = json_loadb(z, n, flags, e);
  char *zCopy;
  size_t i = 0, k = 0;
  int bStr = 0;
  if (j != NULL || strstr(e->text, "too big") == NULL) return j;
  /* a token past 64 bits has 19 digits or more: ".0" adds at most 2/19 */
  zCopy = malloc(n + n / 9 + 4);
  if (zCopy == NULL) return NULL;
  while (i < n) {
    char c = z[i];
    if (bStr) {
      zCopy[k++] = c;
      i++;
      if (c == '\\' && i < n) {
        zCopy[k++] = z[i++];
      } else if (c == '"') {
        bStr = 0;
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t iStart = i;
      int bInt = 1;
      while (i < n && (z[i] == '-' || z[i] == '+' || z[i] == '.' ||
                       z[i] == 'e' || z[i] == 'E' ||
                       (z[i] >= '0' && z[i] <= '9'))) {
        if (z[i] == '.' || z[i] == 'e' || z[i] == 'E') bInt = 0;
        i++;
      }
      memcpy(zCopy + k, z + iStart, i - iStart);
      k += i - iStart;
      if (bInt && json_int_overflows(z + iStart, i - iStart)) {
        zCopy[k++] = '.';
        zCopy[k++] = '0';
      }
    } else {
      bStr = c == '"';
      zCopy[k++] = c;
      i++;
    }
  }
  j = json_loadb(zCopy, k, flags, e);
  free(zCopy);
  return j;
}

char *lquay_json_canon(const char *z, size_t n, size_t *pn) {
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS |
                       JSON_REAL_PRECISION(17);
  json_error_t e;
  json_t *j = json_load_doc(z, n, &e);
  char *zOut;
  if (j == NULL) return NULL;
  zOut = json_dumps(j, flags);
  json_decref(j);
  *pn = zOut ? strlen(zOut) : 0;
  return zOut;
}

static int json_text_k(lua_State *L) {
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS |
                       JSON_REAL_PRECISION(17);
  quay_value v;
  json_t *j = NULL;
  char *z;
  size_t n;
  switch (lua_type(L, 1)) {
    case LUA_TTABLE:
      json_encode(L, 1, &v, "", "");                 /* [t, buf] */
      lua_pushlstring(L, v.u.z, v.n);
      return 1;
    case LUA_TSTRING:
      z = (char *)lua_tolstring(L, 1, &n);
      j = json_stringn_nocheck(z, n);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, 1)) {
        j = json_integer((json_int_t)lua_tointeger(L, 1));
      } else if (isfinite(lua_tonumber(L, 1))) {
        j = json_real(lua_tonumber(L, 1));
      }
      break;
    case LUA_TBOOLEAN:
      j = json_boolean(lua_toboolean(L, 1));
      break;
    default:
      break;
  }
  if (j == NULL) return luaL_error(L, "no JSON form");
  z = json_dumps(j, flags);
  json_decref(j);
  if (z == NULL) return luaL_error(L, "out of memory");
  {
    /* The text is the box's until pushed (pushing may raise). */
    Box *pBox = lquay_box(L, free);
    pBox->p = z;
    lua_pushstring(L, z);
    lquay_box_close(L, pBox);
  }
  return 1;
}

int lquay_json_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "a JSON document");
  lua_pushcfunction(L, json_text_k);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);                                   /* the error */
    return 0;
  }
  return 1;
}

/* Push the Lua value of JSON value j (depth bounded by jansson's
** decoder). */
static void json_push(lua_State *L, json_t *j) {
  luaL_checkstack(L, 4, "a JSON value");
  switch (json_typeof(j)) {
    case JSON_OBJECT: {
      const char *zKey;
      json_t *v;
      lua_createtable(L, 0, (int)json_object_size(j));
      json_object_foreach(j, zKey, v) {
        json_push(L, v);
        lua_setfield(L, -2, zKey);
      }
      break;
    }
    case JSON_ARRAY: {
      size_t i, n = json_array_size(j);
      lua_createtable(L, (int)n, 0);
      for (i = 0; i < n; i++) {
        json_push(L, json_array_get(j, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    }
    case JSON_STRING:
      lua_pushlstring(L, json_string_value(j), json_string_length(j));
      break;
    case JSON_INTEGER:
      lua_pushinteger(L, (lua_Integer)json_integer_value(j));
      break;
    case JSON_REAL:
      lua_pushnumber(L, json_real_value(j));
      break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: lquay_push_null(L); break;
  }
}

/* Push the decoded QUAY_JSON value v. */
static void json_decode(lua_State *L, const quay_value *v) {
  json_error_t e;
  Box *pBox;
  json_t *j = json_load_doc(v->u.z, v->n, &e);
  if (j == NULL) {
    lquay_raisef(L, QUAY_ESQL, "a quay.json column holds text that is not "
                 "JSON (%s, at character %d)", e.text, e.position);
  }
  pBox = lquay_box(L, json_box_free);                /* [.., box] */
  pBox->p = j;
  json_push(L, j);                                   /* [.., box, value] */
  lquay_box_close(L, pBox);
  lua_remove(L, -2);                                 /* [.., value] */
}
/* }================================================================== */

int lquay_to_value(lua_State *L, int idx, quay_value *p, int bAllowList,
                   const char *zWhat) {
  return lquay_to_field_value(L, idx, p, bAllowList, NULL, zWhat);
}

/*
** Convert the Lua value at idx.  Lists (plain tables) become QUAY_LIST when
** bAllowList; their storage and any record snapshots are pushed on the
** stack and must stay there during the engine call.  Returns the number
** of values pushed.  Raises validation for values that cannot be stored,
** naming zModel (may be NULL) and zWhat, the field or condition.
*/
int lquay_to_field_value(lua_State *L, int idx, quay_value *p,
                         int bAllowList, const char *zModel,
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
      lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx), nKey = 0;
      quay_value *a;
      int base;
      /* a list 1..n: a hole ({ "a", nil, "b" }, whose length Lua may
      ** give as 1 or 3) or a named key would else change the match */
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
        lua_pop(L, 1);
        if (k < 1 || k > n) {
          lquay_raisef(L, QUAY_EMISUSE, "%s: expected a list of values, "
                       "but it has the key %s", zWhat,
                       luaL_tolstring(L, -1, NULL));
        }
        nKey++;
      }
      if (nKey != n) {
        lquay_raisef(L, QUAY_EMISUSE, "%s: the list has a hole (a nil "
                     "among its values); give quay.null for NULL", zWhat);
      }
      a = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n + 1), 0);
      base = lua_gettop(L);
      for (i = 0; i < n; i++) {
        /* each record element leaves one snapshot on the stack */
        luaL_checkstack(L, 8, "a list of values");
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
    if (!bAllowList && zModel && lua_getmetatable(L, idx) == 0) {
      /* A field value: a JSON document (only quay.json takes it). */
      json_encode(L, idx, p, zModel, zWhat);
      return lua_gettop(L) - top;
    }
    if (!bAllowList && zModel) lua_pop(L, 1); /* the metatable */
  }
  lquay_raise_field(L, QUAY_EVALIDATION, zModel, zWhat,
                    "%s%s%s: a %s is not a value Quay can store or compare "
                    "(give a string, number, boolean, record or quay.null)",
                    zModel ? zModel : "", zModel ? "." : "", zWhat,
                    luaL_typename(L, idx));
  return 0;
}

void lquay_push_value(lua_State *L, const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case QUAY_REAL: lua_pushnumber(L, v->u.r); break;
    case QUAY_BOOL: lua_pushboolean(L, v->u.b); break;
    case QUAY_TEXT:
    case QUAY_BLOB:
    case QUAY_DECIMAL: lua_pushlstring(L, v->u.z, v->n); break;
    case QUAY_JSON: json_decode(L, v); break;
    default: lua_pushnil(L); break;
  }
}

/*
** {==================================================================
** Condition tables
** ===================================================================
** A conditions table becomes a tree of groups.  The names of one table
** are leaves of one AND group, so that conditions crossing the same
** to-many path hold for the same related row (reference.md "Query sets");
** quay.any {...} is an OR group.  Nesting of the same kind is flattened,
** which keeps the tree shallow however deep the Lua tables nest:
**   - an alternative of quay.any that is a quay.any adds its alternatives
**     to the same OR, and so does a table with no names and one element
**     (a table inside quay.any shares the enclosing table's rows, so it
**     is no boundary);
**   - an element of a conditions table that has no names of its own and
**     no quay.any among its elements adds its elements to the same AND.
** A plain table nested in a table has related rows of its own, and the
** alternatives of a quay.any directly in it share them: such a table
** that holds a quay.any stays a group of its own.
** An alternative with a single name is a leaf of the OR itself, and a
** quay.any given whole to filter is the root group.  What remains
** alternates (an AND of names inside an OR inside an AND...) and its
** depth, the root group counting 1, is capped at
** QUAY_MAX_COND_DEPTH with a misuse error naming the limit.  The engine
** checks the same limit (relation hops included) for trees built through
** the C API.
**
** The walk uses no C recursion: one frame per Lua table being read lives
** in a userdata, and the tables themselves, with the key the walk is at in
** each, in a Lua table, so any nesting depth costs memory, never C stack.
** A table met again while it is still being read (a table that contains
** itself) is a misuse error.
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

/* One named condition: the key at -2, its value at -1 (both stay).
** zModel names the model the conditions are about, for messages. */
static void add_leaf(lua_State *L, quay_cond *pGroup, int iKeep,
                     const char *zModel) {
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
  if (lquay_is_expr(L, -1)) {
    /* views__gt = quay.F("likes"): compared in SQL.  The stack is left as
    ** found (the callers iterate with lua_next). */
    int top = lua_gettop(L);
    Box *pBox;
    quay_expr *e = lquay_expr(L, -1, &pBox);
    pBox->p = NULL;                   /* quay_cond_leaf_expr takes it */
    if (quay_cond_leaf_expr(zKey, e, &pLeaf, &err)) lquay_raise(L, &err);
    add_child(L, pGroup, pLeaf);
    lquay_box_close(L, pBox);
    lua_settop(L, top);
    return;
  }
  nPushed = lquay_to_field_value(L, -1, &v, 1, zModel, zKey);
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
** Add the named conditions (string keys) of the table at idx to pGroup,
** in the byte order of their names, so the SQL text (and the statement
** cache entry) of a filter does not depend on the table's hash order,
** which changes from process to process.  nStr is their number.
*/
static void add_leaves(lua_State *L, int idx, int nStr, quay_cond *pGroup,
                       int iKeep, const char *zModel) {
  Name *az;
  int i;
  if (nStr == 0) return;
  if (nStr == 1) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        add_leaf(L, pGroup, iKeep, zModel);
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
    add_leaf(L, pGroup, iKeep, zModel);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/*
** Check the keys of the conditions table at idx: names and list
** elements.  *pnStr gets the number of names, *pnElem of elements.
*/
static void scan_table(lua_State *L, int idx, int *pnStr, int *pnElem,
                       int *pnAny) {
  int nStr = 0, nElem = 0, nAny = 0;
  idx = lua_absindex(L, idx);
  if (lquay_record_model(L, idx) != NULL) {
    lquay_raisef(L, QUAY_EBAD_LOOKUP,
                 "conditions must be a table of name = value, not a record");
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {                 /* [.., key, value] */
    if (lua_type(L, -2) == LUA_TSTRING) {
      nStr++;
    } else if (lua_type(L, -2) == LUA_TNUMBER) {
      if (lua_type(L, -1) != LUA_TTABLE) {
        lquay_raisef(L, QUAY_EBAD_LOOKUP,
                     "conditions: list elements must be quay.any{...} or "
                     "conditions tables, got a %s", luaL_typename(L, -1));
      }
      nElem++;
      if (is_mt(L, -1, QUAY_ANY_MT)) nAny++;
    } else {
      lquay_raisef(L, QUAY_EBAD_LOOKUP,
                   "conditions: keys must be names, got a %s",
                   luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
  *pnStr = nStr;
  *pnElem = nElem;
  *pnAny = nAny;
}

/* One table being read: where its content goes. */
typedef struct CondFrame {
  quay_cond *pGroup;        /* the group receiving the table's content */
  int depth;                /* that group's depth (the root group is 1) */
  int isOr;                 /* elements are alternatives of an OR group */
} CondFrame;

/* The walk's state; its Lua parts sit at fixed stack slots. */
typedef struct CondWalk {
  CondFrame *aFrame;        /* userdata at iFrames */
  int nFrame, nAlloc;
  int iFrames;              /* the frames userdata */
  int iPath;                /* [2k-1] = table of frame k, [2k] = its key */
  int iOnPath;              /* table -> true while it is being read */
  int iKeep;                /* values the tree borrows */
  const char *zModel;       /* the model, for messages */
} CondWalk;

/* A new group of kind eOp under pParent at depth `depth`. */
static quay_cond *new_group(lua_State *L, quay_cond *pParent, int eOp,
                            int depth) {
  quay_err err;
  quay_cond *g;
  if (depth > QUAY_MAX_COND_DEPTH) {
    lquay_raisef(L, QUAY_EMISUSE,
                 "conditions nest more than %d levels deep (the limit, "
                 "QUAY_MAX_COND_DEPTH): quay.any inside conditions tables "
                 "inside quay.any...; an any inside an any, or a table of "
                 "tables with no names, adds no level", QUAY_MAX_COND_DEPTH);
  }
  if (quay_cond_group(eOp, &g, &err)) lquay_raise(L, &err);
  add_child(L, pParent, g);               /* owned by the parent now */
  return g;
}

/*
** Start reading the table at idx (a conditions table or a quay.any with
** nStr names) into pGroup.
*/
static void walk_enter(lua_State *L, CondWalk *w, int idx, int nStr,
                       quay_cond *pGroup, int depth, int isOr) {
  CondFrame *f;
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, w->iOnPath) != LUA_TNIL) {
    lquay_raisef(L, QUAY_EMISUSE, "conditions: a table contains itself "
                 "(a cycle of nested conditions tables)");
  }
  lua_pop(L, 1);
  if (w->nFrame == w->nAlloc) {
    int nNew = w->nAlloc * 2;
    CondFrame *a = lua_newuserdatauv(L, sizeof(CondFrame) * (size_t)nNew, 0);
    memcpy(a, w->aFrame, sizeof(CondFrame) * (size_t)w->nFrame);
    lua_replace(L, w->iFrames);           /* the old one is garbage */
    w->aFrame = a;
    w->nAlloc = nNew;
  }
  f = &w->aFrame[w->nFrame++];
  f->pGroup = pGroup;
  f->depth = depth;
  f->isOr = isOr;
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, w->iOnPath);
  lua_pushvalue(L, idx);
  lua_rawseti(L, w->iPath, 2 * (lua_Integer)w->nFrame - 1);
  if (!isOr) add_leaves(L, idx, nStr, pGroup, w->iKeep, w->zModel);
}

/* Done with the newest frame's table. */
static void walk_leave(lua_State *L, CondWalk *w) {
  lua_Integer k = 2 * (lua_Integer)w->nFrame;
  lua_rawgeti(L, w->iPath, k - 1);
  lua_pushnil(L);
  lua_rawset(L, w->iOnPath);
  lua_pushnil(L);
  lua_rawseti(L, w->iPath, k - 1);
  lua_pushnil(L);
  lua_rawseti(L, w->iPath, k);
  w->nFrame--;
}

/*
** Place the nested table at idx, an element of the newest frame's table:
** into the same group (flattened) or into a new group under it.
*/
static void walk_element(lua_State *L, CondWalk *w, int idx) {
  CondFrame f = w->aFrame[w->nFrame - 1];
  int nStr, nElem, nAny, isAny = is_mt(L, idx, QUAY_ANY_MT);
  scan_table(L, idx, &nStr, &nElem, &nAny);
  if (f.isOr) {
    if (isAny || (nStr == 0 && nElem == 1)) {
      walk_enter(L, w, idx, 0, f.pGroup, f.depth, 1);
    } else if (nStr == 1 && nElem == 0) {
      add_leaves(L, idx, 1, f.pGroup, w->iKeep, w->zModel);  /* a leaf */
    } else {
      quay_cond *g = new_group(L, f.pGroup, QUAY_C_AND, f.depth + 1);
      walk_enter(L, w, idx, nStr, g, f.depth + 1, 0);
    }
  } else if (isAny) {
    /* Even with one alternative: the engine puts the conditions of a
    ** quay.any in the rows of the enclosing table (a nested plain table
    ** has rows of its own), so the OR must stay visible. */
    quay_cond *g = new_group(L, f.pGroup, QUAY_C_OR, f.depth + 1);
    walk_enter(L, w, idx, 0, g, f.depth + 1, 1);
  } else if (nStr == 0 && nAny == 0) {
    /* Its elements are tables with rows of their own: the same AND. */
    walk_enter(L, w, idx, 0, f.pGroup, f.depth, 0);
  } else {
    quay_cond *g = new_group(L, f.pGroup, QUAY_C_AND, f.depth + 1);
    walk_enter(L, w, idx, nStr, g, f.depth + 1, 0);
  }
}

/*
** Read every nested table, newest frame first, each in key order.  The
** key a frame is at is kept in the path table, so lua_next resumes there.
*/
static void walk_run(lua_State *L, CondWalk *w) {
  int top = lua_gettop(L);
  while (w->nFrame > 0) {
    lua_Integer k = 2 * (lua_Integer)w->nFrame;
    lua_rawgeti(L, w->iPath, k - 1);                 /* [.., t] */
    lua_rawgeti(L, w->iPath, k);                     /* [.., t, key] */
    if (!lua_next(L, top + 1)) {                     /* [.., t] */
      lua_settop(L, top);
      walk_leave(L, w);
      continue;
    }                                                /* [.., t, key, v] */
    lua_pushvalue(L, -2);
    lua_rawseti(L, w->iPath, k);                     /* resume after key */
    if (lua_type(L, -2) != LUA_TSTRING) {            /* names: leaves */
      walk_element(L, w, top + 3);
    }
    lua_settop(L, top);
  }
}

/*
** Build the condition tree for the table at idx, conditions on model
** zModel (its name, for messages).  The root is stored in pBox (so any
** error releases it); the caller takes it out.  Pushes one
** table holding the values the tree borrows (record snapshots): keep it
** on the stack until the tree has been handed to the engine.
*/
quay_cond *lquay_conds(lua_State *L, int idx, Box *pBox,
                       const char *zModel) {
  quay_err err;
  quay_cond *pRoot;
  CondWalk w;
  int nStr, nElem, nAny, isAny, top;
  idx = lua_absindex(L, idx);
  w.zModel = zModel;
  luaL_checkstack(L, 24, "conditions");
  lua_newtable(L);                                 /* [.., keep] */
  w.iKeep = lua_gettop(L);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lquay_raisef(L, QUAY_EBAD_LOOKUP, "conditions must be a table, got %s",
                 luaL_typename(L, idx));
  }
  isAny = is_mt(L, idx, QUAY_ANY_MT);
  scan_table(L, idx, &nStr, &nElem, &nAny);
  isAny = isAny && nElem != 1;                     /* any{x} is x */
  if (quay_cond_group(isAny ? QUAY_C_OR : QUAY_C_AND, &pRoot, &err)) {
    lquay_raise(L, &err);
  }
  pBox->p = pRoot;
  pBox->xFree = (lquay_free_fn)quay_cond_free;
  if (!isAny && nElem == 0) {                      /* names only */
    add_leaves(L, idx, nStr, pRoot, w.iKeep, zModel);
    return pRoot;
  }
  top = lua_gettop(L);
  w.nFrame = 0;
  w.nAlloc = 8;
  w.aFrame = lua_newuserdatauv(L, sizeof(CondFrame) * (size_t)w.nAlloc, 0);
  w.iFrames = top + 1;
  lua_newtable(L);
  w.iPath = top + 2;
  lua_newtable(L);
  w.iOnPath = top + 3;
  walk_enter(L, &w, idx, nStr, pRoot, 1, isAny);
  walk_run(L, &w);
  lua_settop(L, top);                              /* [.., keep] */
  return pRoot;
}
/* }================================================================== */
