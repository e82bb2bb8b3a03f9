/*
** bindings/lrecord.c
** Records and related sets.
** See LICENSE
**
** A record is a plain table: field values are raw entries, so reading a
** field costs one table read and the metatable only sees names that are
** not stored: NULL fields, relations, methods and typos (unknown_field).
** Writes to a field that is present are raw too; every value is validated
** at save().  Hidden state uses light-userdata keys:
**   LK_PK       the stored primary key (the record is persisted)
**   LK_RESULT   (in the record's per-result metatable) the array the
**               record was loaded in, for batched lazy loads
**   RELKEY(i)   relation i's cached value: a record, false (none), a set,
**               or { [LK_NONE] = key } (none for that key: a filtered
**               prefetch or a soft-deleted target)
**   LK_PIVOT    the pivot record, for records loaded through a custom
**               many-to-many set
**
** A related set is a plain table too: its array part holds the loaded
** records (so #, [i] and ipairs are raw once loaded) and its metatable
** gives every query-set method, scoped to the owner, plus the set writes.
*/
#include "lquay.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define UP_MEMBERS lua_upvalueindex(1)
#define UP_METHODS lua_upvalueindex(2)
#define UP_MODEL   lua_upvalueindex(3)
#define UP_NAMES   lua_upvalueindex(4)

/*
** The Model of the record at idx, or NULL when it is not a record.  Only
** record metatables hold the LK_MODEL key (Lua code cannot make light
** userdata keys), so its userdata value is a Model.
*/
LModel *lquay_record_model(lua_State *L, int idx) {
  LModel *pM = NULL;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return NULL;
  if (lua_rawgetp(L, -1, &lquay_LK_MODEL) == LUA_TUSERDATA) {
    pM = lua_touserdata(L, -1);
  }
  lua_pop(L, 2);
  return pM;
}

/* Push rec[field i] (raw). */
static int get_field(lua_State *L, int iRec, LModel *pM, int i) {
  quay_field_info f;
  quay_model_field(pM->m, i, &f);
  lua_pushstring(L, f.zName);
  return lua_rawget(L, iRec);
}

static void set_field(lua_State *L, int iRec, LModel *pM, int i) {
  quay_field_info f;                                 /* [.., v] */
  quay_model_field(pM->m, i, &f);
  lua_pushstring(L, f.zName);
  lua_insert(L, -2);
  lua_rawset(L, iRec);
}

static const char *model_name(LModel *pM) { return quay_model_name(pM->m); }

/*
** {==================================================================
** Relation access
** ===================================================================
*/
/*
** Non-0 when the cached to-one value at the top still matches the
** record's key column (the user may have changed `author_id` raw).
*/
static int cache_fresh(lua_State *L, int iRec, LModel *pM,
                       const quay_rel_info *r) {
  int ok;
  if (!r->writable) return 1;
  get_field(L, iRec, pM, r->iFkField);               /* [.., v, fk] */
  if (lua_toboolean(L, -2) == 0) {
    ok = lua_isnil(L, -1);
  } else {
    quay_field_info f;
    quay_model_field(r->pTarget, r->iTargetKey, &f);
    lua_getfield(L, -2, f.zName);                    /* raw: a field */
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

/*
** Fast path of a cached relation value (the top of the stack): non-0 when
** it can be returned as is.  A writable to-one value is fresh while the
** record's key column still holds the cached record's stored key.
*/
static int cache_ok(lua_State *L, int iRec, LModel *pM, int j, int iNames) {
  const LRelFast *f = &pM->aFast[j];
  int ok;
  if (f->toMany || !f->writable) return 1;
  if (!f->keyIsPk || iNames == 0) return -1;         /* ask the slow path */
  lua_rawgeti(L, iNames, f->iFk + 1);                /* [.., v, fkname] */
  lua_rawget(L, iRec);                               /* [.., v, fk] */
  if (lua_toboolean(L, -2) == 0) {
    ok = lua_isnil(L, -1);
  } else {
    lua_rawgetp(L, -2, &lquay_LK_PK);                /* [.., v, fk, pk] */
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

/*
** A to-one relation found to hold no record while the record's key column
** holds a key (a prefetch whose query set left the target out, a
** soft-deleted target) caches a marker of that key, { [LK_NONE] = key }:
** the relation reads nil while the key column holds it, where a plain
** false (none) would look stale and load again on every access.
*/
void lquay_push_rel_none(lua_State *L, int iRec, int j) {
  LModel *pM;
  quay_rel_info r;
  iRec = lua_absindex(L, iRec);
  pM = lquay_record_model(L, iRec);
  if (pM == NULL || j >= quay_model_relation_count(pM->m)) {
    lua_pushboolean(L, 0);
    return;
  }
  quay_model_relation(pM->m, j, &r);
  if (r.toMany || !r.writable) {
    lua_pushboolean(L, 0);
    return;
  }
  if (get_field(L, iRec, pM, r.iFkField) == LUA_TNIL ||
      lquay_is_null(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    return;
  }
  lua_createtable(L, 0, 1);                          /* [.., fk, marker] */
  lua_insert(L, -2);
  lua_rawsetp(L, -2, &lquay_LK_NONE);                /* [.., marker] */
}

/* Push the value of relation j of the record at iRec.  iNames (0 when not
** at hand) is the model's field-name array. */
static int rel_get(lua_State *L, int iRec, LModel *pM, int j,
                   const char *zName, int iNames) {
  quay_rel_info r;
  lua_rawgetp(L, iRec, LQUAY_RELKEY(j));             /* [.., cached] */
  if (lua_type(L, -1) == LUA_TTABLE) {
    if (lua_rawgetp(L, -1, &lquay_LK_NONE) != LUA_TNIL) {
      /* "no record for this key": nil while the key column holds it */
      int bSame;
      quay_model_relation(pM->m, j, &r);
      get_field(L, iRec, pM, r.iFkField);            /* [.., c, key, fk] */
      bSame = lua_rawequal(L, -1, -2);
      lua_pop(L, 3);
      lua_pushnil(L);
      if (bSame) return 1;
      lua_pushvalue(L, -1);
      lua_rawsetp(L, iRec, LQUAY_RELKEY(j));         /* stale: reload */
    } else {
      lua_pop(L, 1);                                 /* [.., cached] */
    }
  }
  if (!lua_isnil(L, -1) && j < pM->nFast) {
    int ok = cache_ok(L, iRec, pM, j, iNames);
    if (ok == 1) {
      if (lua_toboolean(L, -1) == 0) lua_pushnil(L);
      return 1;
    }
    if (ok == 0) {
      lua_pushnil(L);
      lua_rawsetp(L, iRec, LQUAY_RELKEY(j));         /* stale: reload */
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  }
  quay_model_relation(pM->m, j, &r);
  if (r.toMany) {
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    lquay_push_set(L, iRec, j, 0);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, iRec, LQUAY_RELKEY(j));
    return 1;
  }
  if (!lua_isnil(L, -1)) {
    if (cache_fresh(L, iRec, pM, &r)) {
      if (lua_toboolean(L, -1) == 0) lua_pushnil(L);
      return 1;
    }
    lua_pushnil(L);
    lua_rawsetp(L, iRec, LQUAY_RELKEY(j));           /* stale: reload */
  }
  lua_pop(L, 1);
  if (r.writable) {
    int isNil = get_field(L, iRec, pM, r.iFkField) == LUA_TNIL ||
                lquay_is_null(L, -1);
    lua_pop(L, 1);
    if (isNil) {
      lua_pushboolean(L, 0);
      lua_rawsetp(L, iRec, LQUAY_RELKEY(j));
      lua_pushnil(L);
      return 1;
    }
  }
  lquay_lazy_load(L, iRec, pM, j, zName);
  lua_rawgetp(L, iRec, LQUAY_RELKEY(j));
  if (lua_type(L, -1) == LUA_TTABLE) {
    int bNone = lua_rawgetp(L, -1, &lquay_LK_NONE) != LUA_TNIL;
    lua_pop(L, 1);
    if (bNone) {                                     /* none for this key */
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  } else if (lua_toboolean(L, -1) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

/* rec.<relation> = value (value at iVal). */
static void rel_set(lua_State *L, int iRec, LModel *pM, int j, int iVal) {
  quay_rel_info r;
  quay_field_info fk;
  quay_model_relation(pM->m, j, &r);
  if (!r.writable) {
    lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                      "%s.%s cannot be assigned: %s", model_name(pM), r.zName,
                      r.readOnly ? "quay.through relations are read-only"
                      : r.toMany ? "use the set's add/remove/set/clear"
                                 : "assign the record on the side that "
                                   "holds the key");
  }
  quay_model_field(pM->m, r.iFkField, &fk);
  if (lua_isnil(L, iVal) || lquay_is_null(L, iVal)) {
    if (!r.nullable) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                        "%s.%s cannot be null (declare it with"
                        " null = true)", model_name(pM), r.zName);
    }
    lua_pushstring(L, fk.zName);
    lua_pushnil(L);
    lua_rawset(L, iRec);
    lua_pushboolean(L, 0);
    lua_rawsetp(L, iRec, LQUAY_RELKEY(j));
    return;
  }
  if (lua_type(L, iVal) == LUA_TNUMBER || lua_type(L, iVal) == LUA_TSTRING) {
    /* A key (author = 7), as create and qs:update take it: set as the key
    ** field is (author_id = 7), checked when written; the relation loads
    ** again on its next read. */
    lua_pushstring(L, fk.zName);
    lua_pushvalue(L, iVal);
    lua_rawset(L, iRec);
    lua_pushnil(L);
    lua_rawsetp(L, iRec, LQUAY_RELKEY(j));
    return;
  }
  {
    LModel *pT = lquay_record_model(L, iVal);
    quay_field_info tk;
    if (pT) lquay_check_record_db(L, pT, pM, r.zName);
    if (pT == NULL || pT->m != r.pTarget) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                        "%s.%s: expected a %s record, got %s",
                        model_name(pM), r.zName, quay_model_name(r.pTarget),
                        pT ? model_name(pT) : luaL_typename(L, iVal));
    }
    quay_model_field(r.pTarget, r.iTargetKey, &tk);
    lua_pushstring(L, fk.zName);
    lua_getfield(L, iVal, tk.zName);                 /* [.., fkname, key] */
    if (lua_isnil(L, -1)) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                        "%s.%s: the %s record has no %s yet "
                        "(save it first)", model_name(pM), r.zName,
                        quay_model_name(r.pTarget), tk.zName);
    }
    lua_rawset(L, iRec);
    lua_pushvalue(L, iVal);
    lua_rawsetp(L, iRec, LQUAY_RELKEY(j));
  }
}
/* }================================================================== */


/*
** {==================================================================
** Record metamethods
** ===================================================================
*/
static LQUAY_NORETURN void unknown(lua_State *L, LModel *pM, int iKey) {
  if (lua_type(L, iKey) == LUA_TSTRING) {
    lquay_raisef(L, QUAY_EUNKNOWN_FIELD,
                 "%s has no field or relation '%s'", model_name(pM),
                 lua_tostring(L, iKey));
  }
  lquay_raisef(L, QUAY_EUNKNOWN_FIELD, "%s records are indexed by field "
               "names, not by a %s", model_name(pM), luaL_typename(L, iKey));
}

/*
** Look the key (arg 2) up in the member map (upvalue 1), rebuilding the
** map first if the schema changed since.  Pushes the member code (or nil)
** and returns its type.
*/
static int member(lua_State *L, LModel *pM) {
  int t;
  lua_pushvalue(L, 2);
  t = lua_rawget(L, UP_MEMBERS);
  if (t == LUA_TNIL && pM->iVersion != quay_db_schema_version(pM->pDb->db)) {
    lua_pop(L, 1);
    lquay_ready(L, pM);
    lua_pushvalue(L, 2);
    t = lua_rawget(L, UP_MEMBERS);
  }
  return t;
}

/* __index(rec, key): NULL fields, relations, methods; else unknown. */
static int rec_index(lua_State *L) {
  LModel *pM = lua_touserdata(L, UP_MODEL);
  if (member(L, pM) == LUA_TNUMBER) {
    lua_Integer code = lua_tointeger(L, -1);
    if (code > 0) {
      lua_pushnil(L);                                /* a NULL field */
      return 1;
    }
    lua_settop(L, 2);
    return rel_get(L, 1, pM, (int)(-code - 1), lua_tostring(L, 2), UP_NAMES);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, UP_METHODS) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  if (lquay_behav_method(L, 1, 2)) return 1;         /* a method */
  if (lua_type(L, 2) == LUA_TSTRING &&
      strcmp(lua_tostring(L, 2), "pivot") == 0) {
    lua_rawgetp(L, 1, &lquay_LK_PIVOT);
    return 1;
  }
  if (lua_type(L, 2) == LUA_TSTRING && lua_getmetatable(L, 1)) {
    /* An annotation whose value is NULL (sum of no rows): nil. */
    if (lua_rawgetp(L, -1, &lquay_LK_ANNS) == LUA_TTABLE) {
      lua_pushvalue(L, 2);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_pushnil(L);
        return 1;
      }
    }
  }
  unknown(L, pM, 2);
  return 0;
}

/* __newindex(rec, key, value): fields raw, relations set the key. */
static int rec_newindex(lua_State *L) {
  LModel *pM = lua_touserdata(L, UP_MODEL);
  if (member(L, pM) == LUA_TNUMBER) {
    lua_Integer code = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (code > 0) {
      /* Store under the field name (the key may be its column). */
      quay_field_info f;
      quay_model_field(pM->m, (int)code - 1, &f);
      lua_pushstring(L, f.zName);
      lua_pushvalue(L, 3);
      lua_rawset(L, 1);
      return 0;
    }
    rel_set(L, 1, pM, (int)(-code - 1), 3);
    return 0;
  }
  unknown(L, pM, 2);
  return 0;
}

static int rec_eq(lua_State *L) {
  LModel *a = lquay_record_model(L, 1), *b = lquay_record_model(L, 2);
  int eq = 0;
  if (a && b && a == b) {
    lua_rawgetp(L, 1, &lquay_LK_PK);
    lua_rawgetp(L, 2, &lquay_LK_PK);
    eq = !lua_isnil(L, -1) && lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_pushboolean(L, eq);
  return 1;
}

static int rec_tostring(lua_State *L) {
  LModel *pM = lua_touserdata(L, lua_upvalueindex(1));
  lua_rawgetp(L, 1, &lquay_LK_PK);
  if (lua_isnil(L, -1)) {
    lua_pushfstring(L, "%s(new)", model_name(pM));
  } else {
    lua_pushfstring(L, "%s(%s)", model_name(pM), luaL_tolstring(L, -1, NULL));
  }
  return 1;
}

/* __pairs: the record's named entries (fields and annotations). */
static int rec_next(lua_State *L) {
  lua_settop(L, 2);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING) return 2;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  return 1;
}

static int rec_pairs(lua_State *L) {
  lua_pushcfunction(L, rec_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}
/* }================================================================== */


/*
** {==================================================================
** Dirty tracking
** ===================================================================
** Reading a field is a raw table read and so is writing one: nothing
** sees a change when it happens.  So each record keeps what it held when
** it was loaded or last saved, as a snapshot row of fingerprints (one
** 64-bit value per field but the primary key), and save() compares.  A
** fingerprint is exact for NULL and among integers and booleans (a keyed
** bijection of their bits); for strings and fractional numbers it is a
** keyed 64-bit hash (SipHash-1-3 for strings), numbers compared as Lua
** compares them (5 == 5.0).  Two different values share one with
** probability 2^-64, under a key nobody outside the process knows.
** Against a table per record holding the old values, this costs 8 bytes
** per field in one block per result, which keeps the read path's memory
** near the hand-written floor (scripts/bench W1, W2).
*/
#define FP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define FP_ROUND do {                                                  \
    v0 += v1; v1 = FP_ROTL(v1, 13); v1 ^= v0; v0 = FP_ROTL(v0, 32);    \
    v2 += v3; v3 = FP_ROTL(v3, 16); v3 ^= v2;                          \
    v0 += v3; v3 = FP_ROTL(v3, 21); v3 ^= v0;                          \
    v2 += v1; v1 = FP_ROTL(v1, 17); v1 ^= v2; v2 = FP_ROTL(v2, 32);    \
  } while (0)

enum { FP_BOOL = 1, FP_INT, FP_REAL, FP_STR, FP_JSON };

/* Where this process's code sits (address-space randomization) keys the
** hash: no state to initialize, nothing shared between threads. */
static const char fp_anchor = 0;

/* SipHash-1-3 of z[0..n) under the process key and tag eTag. */
static uint64_t fp_hash(int eTag, const void *pData, size_t n) {
  const unsigned char *z = pData;
  uint64_t k0 = (uint64_t)(uintptr_t)&fp_anchor * 0x9e3779b97f4a7c15ULL;
  uint64_t k1 = FP_ROTL(k0, 29) ^ 0x5851f42d4c957f2dULL ^ (uint64_t)eTag;
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  uint64_t b = ((uint64_t)n) << 56, m;
  size_t i, nBlock = n & ~(size_t)7;
  for (i = 0; i < nBlock; i += 8) {
    int k;
    m = 0;
    for (k = 7; k >= 0; k--) m = (m << 8) | z[i + (size_t)k];
    v3 ^= m;
    FP_ROUND;
    v0 ^= m;
  }
  switch (n & 7) {
    case 7: b |= (uint64_t)z[i + 6] << 48; /* fall through */
    case 6: b |= (uint64_t)z[i + 5] << 40; /* fall through */
    case 5: b |= (uint64_t)z[i + 4] << 32; /* fall through */
    case 4: b |= (uint64_t)z[i + 3] << 24; /* fall through */
    case 3: b |= (uint64_t)z[i + 2] << 16; /* fall through */
    case 2: b |= (uint64_t)z[i + 1] << 8;  /* fall through */
    case 1: b |= (uint64_t)z[i]; break;
    default: break;
  }
  v3 ^= b;
  FP_ROUND;
  v0 ^= b;
  v2 ^= 0xff;
  FP_ROUND;
  FP_ROUND;
  FP_ROUND;
  /* 0 is NULL's fingerprint: never a value's. */
  return (v0 ^ v1 ^ v2 ^ v3) | 1;
}

/*
** Integers (and booleans, as 0 / 1 with their own key) take a keyed
** bijection of their 64 bits, cheaper than the hash and exact among
** themselves: xor with the key, then steps that each invert (odd
** multiplications, xor-shifts).  Only the one integer mapped to 0 shares
** NULL's fingerprint, and it is moved to 1.
*/
static uint64_t fp_mix(uint64_t x, uint64_t k) {
  x ^= k;
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ULL;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dULL;
  x ^= x >> 33;
  return x ? x : 1;
}

static uint64_t fp_key(int eTag) {
  return ((uint64_t)(uintptr_t)&fp_anchor * 0x9e3779b97f4a7c15ULL) ^
         (0x2545f4914f6cdd1dULL * (uint64_t)eTag);
}

static uint64_t fp_int(int64_t i) {
  return fp_mix((uint64_t)i, fp_key(FP_INT));
}

static uint64_t fp_real(double r) {
  uint64_t bits;
  if (r >= -9.2233720368547758e18 && r < 9.2233720368547758e18 &&
      (double)(int64_t)r == r) {
    return fp_int((int64_t)r);        /* as Lua compares: 5 == 5.0 */
  }
  memcpy(&bits, &r, sizeof(bits));
  return fp_mix(bits, fp_key(FP_REAL));
}

static uint64_t fp_bool(int b) {
  return fp_mix(b ? 1 : 0, fp_key(FP_BOOL));
}

uint64_t lquay_fp(const quay_value *v) {
  switch (v->type) {
    case QUAY_BOOL: return fp_bool(v->u.b);
    case QUAY_INT: return fp_int(v->u.i);
    case QUAY_REAL: return fp_real(v->u.r);
    case QUAY_TEXT:
    case QUAY_DECIMAL:                /* reads as the same string */
    case QUAY_BLOB: return fp_hash(FP_STR, v->u.z, v->n);
    case QUAY_JSON: {
      /* The document's canonical text: a table reads back, and
      ** PostgreSQL prints jsonb its own way. */
      size_t n;
      char *z = lquay_json_canon(v->u.z, v->n, &n);
      uint64_t h = z ? fp_hash(FP_JSON, z, n) : fp_hash(FP_STR, v->u.z, v->n);
      free(z);
      return h;
    }
    default: return 0;
  }
}

/*
** Fingerprint of the Lua value at idx as field i would store it: nil and
** quay.null are NULL; a record in a key column is its key.  Returns 0
** when the value is of no storable kind (always "changed": save raises).
*/
static int fp_lua(lua_State *L, int idx, LModel *pM, int i, uint64_t *pFp) {
  size_t n;
  const char *z;
  int t = lua_type(L, idx);
  quay_field_info f;
  if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN ||
      t == LUA_TTABLE) {
    quay_model_field(pM->m, i, &f);
    if (f.eType == QUAY_T_JSON) {
      /* A document as it would be written (changed when it cannot be). */
      if (t == LUA_TTABLE && lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return 0;
      }
      if (!lquay_json_text(L, idx)) return 0;
      z = lua_tolstring(L, -1, &n);
      *pFp = fp_hash(FP_JSON, z, n);
      lua_pop(L, 1);
      return 1;
    }
  }
  switch (t) {
    case LUA_TNIL: *pFp = 0; return 1;
    case LUA_TBOOLEAN:
      *pFp = fp_bool(lua_toboolean(L, idx));
      return 1;
    case LUA_TNUMBER:
      *pFp = lua_isinteger(L, idx) ? fp_int(lua_tointeger(L, idx))
                                   : fp_real(lua_tonumber(L, idx));
      return 1;
    case LUA_TSTRING:
      z = lua_tolstring(L, idx, &n);
      *pFp = fp_hash(FP_STR, z, n);
      return 1;
    case LUA_TUSERDATA:
      if (lquay_is_null(L, idx)) {
        *pFp = 0;
        return 1;
      }
      return 0;
    case LUA_TTABLE: {
      int ok = 0;
      if (f.iRel >= 0 && lquay_record_model(L, idx)) {
        quay_rel_info r;
        quay_field_info tk;
        quay_model_relation(pM->m, f.iRel, &r);
        quay_model_field(r.pTarget, r.iTargetKey, &tk);
        lua_getfield(L, idx, tk.zName);
        ok = lua_type(L, -1) != LUA_TTABLE &&
             fp_lua(L, lua_gettop(L), pM, i, pFp);
        lua_pop(L, 1);
      }
      return ok;
    }
  }
  return 0;
}

static int snap_gc(lua_State *L) {
  LSnap *p = luaL_checkudata(L, 1, QUAY_SNAP_MT);
  void *ud;
  lua_Alloc xAlloc = lua_getallocf(L, &ud);
  if (p->aFp) {
    xAlloc(ud, p->aFp, sizeof(uint64_t) * (size_t)p->nAlloc * (size_t)p->nFp,
           0);
  }
  p->aFp = NULL;
  p->nRow = p->nAlloc = 0;
  return 0;
}

/* Push a new empty snapshot of model m's records. */
static LSnap *snap_push(lua_State *L, quay_model *m) {
  LSnap *p = lua_newuserdatauv(L, sizeof(LSnap), 0);
  p->aFp = NULL;
  p->nRow = p->nAlloc = 0;
  p->iPk = quay_model_pk(m);
  p->nFp = quay_model_field_count(m) - 1;
  if (p->nFp < 1) p->nFp = 1;
  luaL_setmetatable(L, QUAY_SNAP_MT);
  return p;
}

LSnap *lquay_snap_new(lua_State *L, int iMt, quay_model *m) {
  LSnap *p;
  iMt = lua_absindex(L, iMt);
  p = snap_push(L, m);                               /* [.., snap] */
  lua_rawsetp(L, iMt, &lquay_LK_SNAP);
  return p;
}

uint64_t *lquay_snap_add(lua_State *L, LSnap *p, int *piRow) {
  uint64_t *row;
  if (p->nRow == p->nAlloc) {
    void *ud;
    lua_Alloc xAlloc = lua_getallocf(L, &ud);
    int nNew = p->nAlloc ? p->nAlloc * 2 : 16;
    size_t nOld = sizeof(uint64_t) * (size_t)p->nAlloc * (size_t)p->nFp;
    uint64_t *a = xAlloc(ud, p->aFp, nOld,
                         sizeof(uint64_t) * (size_t)nNew * (size_t)p->nFp);
    if (a == NULL) lquay_raisef(L, QUAY_ENOMEM, "out of memory");
    p->aFp = a;
    p->nAlloc = nNew;
  }
  row = &p->aFp[(size_t)p->nRow * (size_t)p->nFp];
  memset(row, 0, sizeof(uint64_t) * (size_t)p->nFp);
  *piRow = p->nRow++;
  return row;
}

void lquay_snap_mark(lua_State *L, int iRec, int iRow) {
  iRec = lua_absindex(L, iRec);
  lua_pushinteger(L, iRow);
  lua_rawsetp(L, iRec, &lquay_LK_SNAP);
}

/*
** The snapshot row of the record at iRec (and its snapshot), or NULL.
** Only this file stores values under LK_SNAP (Lua code cannot make the
** light-userdata key), so a userdata found there is an LSnap.
*/
static uint64_t *snap_row(lua_State *L, int iRec, LSnap **pp) {
  uint64_t *row = NULL;
  LSnap *p = NULL;
  int t = lua_rawgetp(L, iRec, &lquay_LK_SNAP);      /* [.., s] */
  if (t == LUA_TNUMBER) {
    lua_Integer i = lua_tointeger(L, -1);
    if (lua_getmetatable(L, iRec)) {                 /* [.., s, mt] */
      if (lua_rawgetp(L, -1, &lquay_LK_SNAP) == LUA_TUSERDATA) {
        p = lua_touserdata(L, -1);                   /* [.., s, mt, snap] */
      }
      lua_pop(L, 2);
    }
    if (p && i >= 0 && i < p->nRow) {
      row = &p->aFp[(size_t)i * (size_t)p->nFp];
    } else {
      p = NULL;
    }
  } else if (t == LUA_TUSERDATA) {
    p = lua_touserdata(L, -1);
    if (p->nRow == 1) row = p->aFp;
    else p = NULL;
  }
  lua_pop(L, 1);
  *pp = p;
  return row;
}

/* The record at iRec's own snapshot row (made when it has none). */
static uint64_t *snap_own_row(lua_State *L, int iRec, LModel *pM, LSnap **pp) {
  uint64_t *row = snap_row(L, iRec, pp);
  if (row == NULL) {
    int iRow;
    *pp = snap_push(L, pM->m);                       /* [.., snap] */
    row = lquay_snap_add(L, *pp, &iRow);
    lua_rawsetp(L, iRec, &lquay_LK_SNAP);
  }
  return row;
}

/* Push the nField field names of the record metatable at iMt (stack
** slots); returns the first. */
static int push_names(lua_State *L, int iMt, int nField) {
  int i, iNames;
  luaL_checkstack(L, nField + 8, "field names");
  lua_rawgetp(L, iMt, &lquay_LK_NAMES);              /* [.., names] */
  iNames = lua_gettop(L) + 1;
  for (i = 0; i < nField; i++) lua_rawgeti(L, iNames - 1, i + 1);
  lua_remove(L, iNames - 1);
  return iNames - 1;
}

/*
** Which fields of the record at iRec save() writes: aOut[i] = 1.  A new
** record: every field it holds.  A stored one: every field whose value
** differs from the snapshot (the primary key: from the stored key); all
** of them when it has no snapshot.  Returns their number.  bSave (save()
** asking): an unchanged field holding quay.null is set back to nil.
*/
static int record_changed(lua_State *L, int iRec, LModel *pM, int iNames,
                          unsigned char *aOut, int bSave) {
  int i, n = quay_model_field_count(pM->m), nChanged = 0;
  int iPk = quay_model_pk(pM->m), bStored;
  LSnap *p;
  uint64_t *row = snap_row(L, iRec, &p);
  lua_rawgetp(L, iRec, &lquay_LK_PK);                /* [.., pk] */
  bStored = !lua_isnil(L, -1);
  for (i = 0; i < n; i++) {
    int t;
    lua_pushvalue(L, iNames + i);
    t = lua_rawget(L, iRec);                         /* [.., pk, v] */
    if (!bStored) {
      aOut[i] = t != LUA_TNIL;
    } else if (i == iPk) {
      aOut[i] = !lua_rawequal(L, -1, -2);
    } else if (row == NULL) {
      aOut[i] = 1;
    } else {
      uint64_t fp;
      aOut[i] = !fp_lua(L, lua_gettop(L), pM, i, &fp) ||
                fp != row[LQUAY_SNAP_SLOT(p, i)];
      if (bSave && !aOut[i] && t == LUA_TUSERDATA) {
        /* quay.null assigned to a NULL column: nothing to write, and the
        ** column reads nil again (quay.null is never read back). */
        lua_pushvalue(L, iNames + i);
        lua_pushnil(L);
        lua_rawset(L, iRec);
      } else if (bSave && !aOut[i] && t == LUA_TNUMBER) {
        /* The stored number in another form (3.0 assigned to an integer
        ** field holding 3): nothing to write; it reads as stored. */
        quay_field_info f;
        int bInt = lua_isinteger(L, -1);
        quay_model_field(pM->m, i, &f);
        if ((f.eType == QUAY_T_INTEGER && !bInt &&
             lua_tonumber(L, -1) >= -9223372036854775808.0 &&
             lua_tonumber(L, -1) < 9223372036854775808.0) ||
            (f.eType == QUAY_T_NUMBER && bInt)) {
          lua_Number r = lua_tonumber(L, -1);
          lua_pushvalue(L, iNames + i);
          if (bInt) lua_pushnumber(L, r);
          else lua_pushinteger(L, (lua_Integer)r);
          lua_rawset(L, iRec);
        }
      }
    }
    nChanged += aOut[i];
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return nChanged;
}

/* After a write: the written fields of writer w (every field when bAll)
** are the record's stored values now. */
static void snap_store(lua_State *L, int iRec, LModel *pM, quay_writer *w,
                       int bAll) {
  LSnap *p;
  uint64_t *row = snap_own_row(L, iRec, pM, &p);
  int i, n = quay_model_field_count(pM->m);
  for (i = 0; i < n; i++) {
    quay_value v;
    if (i == p->iPk || (!bAll && !quay_writer_is_set(w, i))) continue;
    quay_writer_value(w, i, &v);
    row[LQUAY_SNAP_SLOT(p, i)] = lquay_fp(&v);
  }
}
/* }================================================================== */


/*
** {==================================================================
** Creating and saving
** ===================================================================
*/
/*
** Push a new (unsaved) record of the Model at iModel with the values of
** the table at iValues (may be nil).
*/
/*
** Bulk writes: the member codes of the keys the rows use, by the key
** string's address (short strings are interned, and every row of the call
** stays alive, so one key is one address), so that each row after the
** first skips the member-map lookup of its keys.
*/
#define KEYCACHE_MAX 32
typedef struct KeyCache {
  const void *apKey[KEYCACHE_MAX];
  lua_Integer aCode[KEYCACHE_MAX];
  int nKey;
  int iNames;               /* stack: the model's field names */
  int iMem;                 /* stack: the metatable's LK_MEMBERS */
} KeyCache;

/*
** A key cache for the bulk call whose result metatable is at iMt and
** field names at iNames.., pushed with the members table under it.
*/
static KeyCache *push_key_cache(lua_State *L, int iMt, int iNames) {
  KeyCache *pKc;
  lua_rawgetp(L, iMt, &lquay_LK_MEMBERS);
  pKc = lua_newuserdatauv(L, sizeof(KeyCache), 0);
  pKc->nKey = 0;
  pKc->iNames = iNames;
  pKc->iMem = lua_gettop(L) - 1;
  return pKc;
}

static void new_record_mt(lua_State *L, LModel *pM, int iMt, int iValues,
                          quay_writer *w, unsigned char *aSet, KeyCache *pKc);

/*
** The flag of a field the caller gave (aUser, aSet): USER_GIVEN, or
** USER_RESHAPE when its value reads back in another form than given: a
** float for an integer field (3.0 is stored as 3), an integer for a
** number field (2 as 2.0); write_back then puts the stored form in the
** record.  Other given numbers stay as they are, with no write.
*/
#define USER_GIVEN 1
#define USER_RESHAPE 3
static int user_flag(LModel *pM, int i, const quay_value *v) {
  quay_field_info f;
  if (v->type != QUAY_REAL && v->type != QUAY_INT) return USER_GIVEN;
  quay_model_field(pM->m, i, &f);
  return (v->type == QUAY_REAL) != (f.eType == QUAY_T_NUMBER)
             ? USER_RESHAPE : USER_GIVEN;
}

int lquay_new_record(lua_State *L, int iModel, int iValues) {
  LModel *pM = lua_touserdata(L, iModel);
  iModel = lua_absindex(L, iModel);
  iValues = lua_absindex(L, iValues);
  lua_getiuservalue(L, iModel, 2);                   /* [.., mt] */
  new_record_mt(L, pM, -1, iValues, NULL, NULL, NULL); /* [.., mt, rec] */
  lua_remove(L, -2);                                 /* [.., rec] */
  return 1;
}

/*
** Push a new (unsaved) record of pM with metatable iMt (the model's, or a
** result's copy of it) and the values of the table at iValues (may be
** nil).  With a writer w (bulk writes), every field given is also set in
** w at once when it is a plain value (aSet[i] = 1), or marked for
** fill_writer (aSet[i] = 2: relations, records in key columns); aSet
** (nField flags) must start zeroed.  With aSet and no w (bulk writes of
** a model with save hooks), only relations are marked.
*/
static void new_record_mt(lua_State *L, LModel *pM, int iMt, int iValues,
                          quay_writer *w, unsigned char *aSet, KeyCache *pKc) {
  int iRec;
  iMt = lua_absindex(L, iMt);
  iValues = lua_absindex(L, iValues);
  lua_createtable(L, 0, quay_model_field_count(pM->m) + 2);
  iRec = lua_gettop(L);
  lua_pushvalue(L, iMt);
  lua_setmetatable(L, iRec);
  if (lua_type(L, iValues) == LUA_TTABLE) {
    int iMem, iNameT = 0;
    luaL_checkstack(L, 8, "values");
    if (pKc) {
      iMem = pKc->iMem;                              /* pushed once */
    } else {
      lua_rawgetp(L, iMt, &lquay_LK_MEMBERS);        /* [.., rec, mem] */
      iMem = lua_gettop(L);
      lua_rawgetp(L, iMt, &lquay_LK_NAMES);          /* [.., mem, names] */
      iNameT = iMem + 1;
    }
    lua_pushnil(L);
    while (lua_next(L, iValues)) {                   /* [.., names, k, v] */
      lua_Integer code = 0;
      const void *pKey = NULL;
      int k;
      if (pKc && lua_type(L, -2) == LUA_TSTRING) {
        pKey = lua_topointer(L, -2);
        for (k = 0; k < pKc->nKey; k++) {
          if (pKc->apKey[k] == pKey) {
            code = pKc->aCode[k];
            break;
          }
        }
      }
      if (code == 0) {
        lua_pushvalue(L, -2);
        if (lua_type(L, -1) != LUA_TSTRING ||
            lua_rawget(L, iMem) != LUA_TNUMBER) {
          unknown(L, pM, -3);
        }
        code = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (pKey && pKc->nKey < KEYCACHE_MAX) {
          pKc->apKey[pKc->nKey] = pKey;
          pKc->aCode[pKc->nKey++] = code;
        }
      }
      if (code > 0) {
        /* Under the field's name (the key may be its column). */
        if (pKc) lua_pushvalue(L, pKc->iNames + (int)code - 1);
        else lua_rawgeti(L, iNameT, code);           /* [.., k, v, name] */
        lua_pushvalue(L, -2);
        lua_rawset(L, iRec);
        if (w) {
          quay_value v;
          quay_err err;
          if (lquay_scalar(L, -1, &v)) {
            /* The record keeps the string while the writer copies it. */
            if (quay_writer_set(w, (int)code - 1, &v, &err)) {
              lquay_raise(L, &err);
            }
            aSet[code - 1] = (unsigned char)user_flag(pM, (int)code - 1,
                                                      &v);
          } else {
            aSet[code - 1] = 2;
          }
        }
      } else {
        quay_rel_info r;
        quay_model_relation(pM->m, (int)(-code - 1), &r);
        if (r.toMany) {
          lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                            "%s.%s is a set: add records "
                            "after saving (rec.%s:add(...))", model_name(pM),
                            r.zName, r.zName);
        }
        rel_set(L, iRec, pM, (int)(-code - 1), lua_gettop(L));
        if (aSet && r.iFkField >= 0) aSet[r.iFkField] = 2;
      }
      lua_pop(L, 1);
    }
    if (!pKc) lua_pop(L, 2);
  }
}

/* Call function defaults for unset fields of a new record; aSet (may be
** NULL) marks them 2 (bulk writes: fill from the record). */
static void dyn_defaults_x(lua_State *L, int iRec, LModel *pM, int iMt,
                           unsigned char *aSet);
static void dyn_defaults(lua_State *L, int iRec, LModel *pM, int iMt) {
  dyn_defaults_x(L, iRec, pM, iMt, NULL);
}

static void dyn_defaults_x(lua_State *L, int iRec, LModel *pM, int iMt,
                           unsigned char *aSet) {
  int i, n = quay_model_field_count(pM->m);
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_model_field(pM->m, i, &f);
    if (!(f.mFlags & QUAY_F_DYN_DEFAULT)) continue;
    lua_pushstring(L, f.zName);
    if (lua_rawget(L, iRec) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    lua_rawgetp(L, iMt, &lquay_LK_DEFAULTS);
    lua_getfield(L, -1, f.zName);                    /* [.., defs, fn] */
    {
      char zWhat[96];
      snprintf(zWhat, sizeof(zWhat), "the default function of %s",
               f.zName);
      lquay_behav_call(L, 0, 1, quay_model_name(pM->m), zWhat);
    }                                                /* [.., defs, v] */
    lua_pushstring(L, f.zName);
    lua_insert(L, -2);
    lua_rawset(L, iRec);
    lua_pop(L, 1);
    if (aSet) aSet[i] = 2;
  }
}

/*
** Fill writer w from the record at iRec (field names at stack slots
** iNames..).  aOnly (may be NULL) names the fields to set, nil ones as
** NULL; without it, every field the record holds.  aUser (may be NULL)
** gets 1 for fields the record gave a value.
*/
static void fill_writer(lua_State *L, int iRec, LModel *pM, quay_writer *w,
                        int iNames, const unsigned char *aOnly,
                        unsigned char *aUser) {
  int i, n = quay_model_field_count(pM->m);
  quay_err err;
  for (i = 0; i < n; i++) {
    quay_value v;
    int t, nPushed = 0;
    if (aOnly && !aOnly[i]) {
      if (aUser) aUser[i] = 0;
      continue;
    }
    lua_pushvalue(L, iNames + i);
    t = lua_rawget(L, iRec);                         /* [.., v] */
    if (aUser) aUser[i] = t != LUA_TNIL;
    if (t == LUA_TNIL && !aOnly) {
      lua_pop(L, 1);
      continue;
    }
    if (t == LUA_TTABLE && lquay_record_model(L, -1)) {
      quay_field_info f;
      quay_model_field(pM->m, i, &f);
      if (f.iRel >= 0) {
        /* A record in a key column: its key. */
        quay_rel_info r;
        quay_field_info tk;
        lquay_check_record_db(L, lquay_record_model(L, -1), pM, f.zName);
        quay_model_relation(pM->m, f.iRel, &r);
        quay_model_field(r.pTarget, r.iTargetKey, &tk);
        lua_getfield(L, -1, tk.zName);
        lua_replace(L, -2);
      }
    }
    if (!lquay_scalar(L, -1, &v)) {
      /* A table becomes a JSON document in a buffer pushed above it. */
      nPushed = lquay_to_field_value(L, -1, &v, 0, model_name(pM),
                                     lua_tostring(L, iNames + i));
      if (v.type == QUAY_RECORD) {
        lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM),
                          lua_tostring(L, iNames + i), "%s.%s: a record is "
                          "not a value for this field", model_name(pM),
                          lua_tostring(L, iNames + i));
      }
    }
    if (aUser && aUser[i]) aUser[i] = (unsigned char)user_flag(pM, i, &v);
    /* The string stays referenced by the record while the writer copies. */
    if (quay_writer_set(w, i, &v, &err)) lquay_raise(L, &err);
    lua_pop(L, 1 + nPushed);
  }
}

/* Non-0 when field i stores v in a form of its own that the record
** should show (a datetime's UTC text, a decimal's places, a uuid in
** lower case), not the value it was given. */
static int stored_form(LModel *pM, int i, const quay_value *v) {
  quay_field_info f;
  if (v->type == QUAY_NULL) return 0;
  quay_model_field(pM->m, i, &f);
  return (quay_type_flags(f.eType) & QUAY_TF_NORMALIZES) != 0;
}

/*
** After insert/update: copy the final values the engine computed into the
** record.  Fields the user gave (aUser) keep their Lua value (an explicit
** quay.null becomes nil; numbers take their stored form); with bSetOnly,
** only the fields the writer wrote.
*/
static void write_back(lua_State *L, int iRec, LModel *pM, quay_writer *w,
                       int iNames, const unsigned char *aUser, int bSetOnly) {
  int i, n = quay_model_field_count(pM->m);
  int iPk = quay_model_pk(pM->m);
  for (i = 0; i < n; i++) {
    quay_value v;
    if (bSetOnly && !quay_writer_is_set(w, i)) continue;
    if (aUser && aUser[i] && i != iPk) {
      quay_writer_value(w, i, &v);
      if ((aUser[i] == USER_RESHAPE && v.type != QUAY_NULL) ||
          stored_form(pM, i, &v)) {
        /* numbers as stored (3.0 in an integer field reads 3, 3 in a
        ** number field 3.0); datetimes in their normal form */
        lua_pushvalue(L, iNames + i);
        lquay_push_value(L, &v);
        lua_rawset(L, iRec);
      } else if (v.type == QUAY_NULL) {
        lua_pushvalue(L, iNames + i);                /* quay.null -> nil */
        lua_pushnil(L);
        lua_rawset(L, iRec);
      }
      continue;
    }
    quay_writer_value(w, i, &v);
    lua_pushvalue(L, iNames + i);
    lquay_push_value(L, &v);
    lua_rawset(L, iRec);
  }
  if (!bSetOnly || quay_writer_is_set(w, iPk)) {
    quay_value v;
    quay_writer_value(w, iPk, &v);
    lquay_push_value(L, &v);
    lua_rawsetp(L, iRec, &lquay_LK_PK);
  }
}

/* Is the Lua-side value a (lquay_scalar) the stored value v? */
static int value_same(const quay_value *a, const quay_value *v) {
  if (a->type == QUAY_TEXT && (v->type == QUAY_TEXT || v->type == QUAY_BLOB ||
                               v->type == QUAY_DECIMAL)) {
    return a->n == v->n && memcmp(a->u.z, v->u.z, v->n) == 0;
  }
  if (a->type != v->type) return 0;
  switch (a->type) {
    case QUAY_INT: return a->u.i == v->u.i;
    case QUAY_REAL: return a->u.r == v->u.r;
    case QUAY_BOOL: return a->u.b == v->u.b;
    default: return 0;
  }
}

/* Copy row k of a flushed batch into the record at iRec (snapshot row
** row): with aUser, as write_back does; without, every stored value. */
static void write_back_queued(lua_State *L, int iRec, LModel *pM,
                              quay_writer *w, int k, int iNames,
                              const unsigned char *aUser, LSnap *pSnap,
                              uint64_t *row) {
  int i, n = quay_model_field_count(pM->m);
  int iPk = quay_model_pk(pM->m);
  quay_value v;
  for (i = 0; i < n; i++) {
    quay_writer_queued_value(w, k, i, &v);
    if (i != iPk) row[LQUAY_SNAP_SLOT(pSnap, i)] = lquay_fp(&v);
    if (aUser == NULL && v.type != QUAY_NULL) {
      /* Upserts: the stored row; a field already holding the stored
      ** value (what the row gave) keeps its Lua value. */
      quay_value cur;
      int same;
      lua_pushvalue(L, iNames + i);
      lua_rawget(L, iRec);
      same = lquay_scalar(L, -1, &cur) && value_same(&cur, &v);
      lua_pop(L, 1);
      if (same) continue;
    }
    if (aUser && aUser[i] && i != iPk) {
      if ((aUser[i] == USER_RESHAPE && v.type != QUAY_NULL) ||
          stored_form(pM, i, &v)) {
        lua_pushvalue(L, iNames + i);
        lquay_push_value(L, &v);
        lua_rawset(L, iRec);
      } else if (v.type == QUAY_NULL) {
        lua_pushvalue(L, iNames + i);
        lua_pushnil(L);
        lua_rawset(L, iRec);
      }
      continue;
    }
    lua_pushvalue(L, iNames + i);
    lquay_push_value(L, &v);
    lua_rawset(L, iRec);
  }
  quay_writer_queued_value(w, k, iPk, &v);
  lquay_push_value(L, &v);
  lua_rawsetp(L, iRec, &lquay_LK_PK);
}

static void writer_free(void *p) { quay_writer_free(p); }

/*
** Save the record at iRec, without its model's save hooks.  A new record
** is inserted with every field it holds.  A stored one writes the fields
** aOnly names, or, with aOnly NULL, the fields changed since it was
** loaded or last saved; nothing is sent when there are none.  On failure
** the record and its snapshot are as before, so a retry writes the same
** change.  A model with validate functions checks the row first (lbehav.c).
*/
static void save_record(lua_State *L, int iRec, const unsigned char *aOnly) {
  LModel *pM = lquay_record_model(L, iRec);
  LDb *pDb;
  quay_err err;
  Box *pBox;
  int iMt, persisted, n, rc, iNames, top;
  unsigned char *aUser;
  iRec = lua_absindex(L, iRec);
  top = lua_gettop(L);
  if (pM == NULL) {
    lquay_raisef(L, QUAY_EMISUSE, "save: not a record");
  }
  pDb = lquay_enter(L, pM->pDb);
  if (pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database");
  }
  lua_getmetatable(L, iRec);
  iMt = lua_gettop(L);
  lquay_ready(L, pM);                                /* maps current */
  lua_rawgetp(L, iRec, &lquay_LK_PK);
  persisted = !lua_isnil(L, -1);                     /* [.., mt, oldpk] */
  n = quay_model_field_count(pM->m);
  if (!persisted) dyn_defaults(L, iRec, pM, iMt);
  aUser = lua_newuserdatauv(L, (size_t)n + 1, 0);    /* [.., oldpk, flags] */
  iNames = push_names(L, iMt, n);
  if (persisted) {
    unsigned char *aWrite = lua_newuserdatauv(L, (size_t)n + 1, 0);
    int nWrite = 0, i;
    if (aOnly) {
      for (i = 0; i < n; i++) nWrite += (aWrite[i] = aOnly[i]);
    } else {
      nWrite = record_changed(L, iRec, pM, iNames, aWrite, 1);
    }
    if (nWrite == 0) {                               /* nothing to send */
      lua_settop(L, top);
      return;
    }
    pBox = lquay_box(L, writer_free);
    rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pBox->p, &err);
    if (rc) lquay_raise(L, &err);
    fill_writer(L, iRec, pM, pBox->p, iNames, aWrite, NULL);
    if (pM->mBehav & LQUAY_B_VALIDATE) {
      lquay_behav_validate(L, pM, iRec, pBox->p, 0);
    }
    {
      quay_value old;
      int64_t nChanged = 0;
      lquay_to_value(L, iMt + 1, &old, 0, "key");
      rc = quay_writer_update(pBox->p, &old, &nChanged, &err);
      if (rc) {
        lquay_box_release(pBox);
        lquay_fail(L, pDb, &err);
      }
      if (nChanged == 0) {
        lquay_box_release(pBox);
        lquay_raisef(L, QUAY_ENOT_FOUND, "%s %s no longer exists (deleted?); "
                     "it was not saved", model_name(pM),
                     luaL_tolstring(L, iMt + 1, NULL));
      }
    }
    write_back(L, iRec, pM, pBox->p, iNames, NULL, 1);
    snap_store(L, iRec, pM, pBox->p, 0);
  } else {
    pBox = lquay_box(L, writer_free);
    rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pBox->p, &err);
    if (rc) lquay_raise(L, &err);
    fill_writer(L, iRec, pM, pBox->p, iNames, NULL, aUser);
    if (pM->mBehav & LQUAY_B_VALIDATE) {
      lquay_behav_validate(L, pM, iRec, pBox->p, 1);
    }
    rc = quay_writer_insert(pBox->p, &err);
    if (rc) {
      lquay_box_release(pBox);
      lquay_fail(L, pDb, &err);
    }
    write_back(L, iRec, pM, pBox->p, iNames, aUser, 0);
    snap_store(L, iRec, pM, pBox->p, 1);
  }
  lquay_box_close(L, pBox);
  lua_settop(L, top);
}

/* save_record for lquay_behav_save: pArg is aOnly. */
static void save_fn(lua_State *L, int iRec, void *pArg) {
  save_record(L, iRec, pArg);
}

/*
** What a save may change on the record at iRec (its fields, key and
** snapshot row), kept in a table pushed on the stack, and put back: a
** save with hooks that fails after the row was written (an after_save
** error) undoes the row, so the record must be as before too, for a
** retry to write the same change.
*/
static void rec_state_keep(lua_State *L, int iRec) {
  LSnap *p;
  uint64_t *row = snap_row(L, iRec, &p);
  int iState;
  luaL_checkstack(L, 6, "save");
  lua_createtable(L, 4, 0);                          /* [.., state] */
  iState = lua_gettop(L);
  lua_createtable(L, 0, quay_model_field_count(lquay_record_model(L,
                                                                   iRec)->m));
  lua_pushnil(L);
  while (lua_next(L, iRec)) {                        /* [.., st, f, k, v] */
    if (lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_rawseti(L, iState, 1);
  lua_rawgetp(L, iRec, &lquay_LK_PK);
  lua_rawseti(L, iState, 2);
  lua_rawgetp(L, iRec, &lquay_LK_SNAP);
  lua_rawseti(L, iState, 3);
  if (row) {
    uint64_t *a = lua_newuserdatauv(L, sizeof(uint64_t) * (size_t)(p->nFp + 1),
                                    0);
    memcpy(a, row, sizeof(uint64_t) * (size_t)p->nFp);
    lua_rawseti(L, iState, 4);
  }
}

static void rec_state_restore(lua_State *L, int iRec, int iState) {
  LSnap *p;
  uint64_t *row;
  luaL_checkstack(L, 6, "save");
  lua_pushnil(L);
  while (lua_next(L, iRec)) {                        /* clear the fields */
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, iRec);
    }
  }
  lua_rawgeti(L, iState, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {                          /* [.., f, k, v] */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, iRec);
  }
  lua_pop(L, 1);
  lua_rawgeti(L, iState, 2);
  lua_rawsetp(L, iRec, &lquay_LK_PK);
  lua_rawgeti(L, iState, 3);
  lua_rawsetp(L, iRec, &lquay_LK_SNAP);
  row = snap_row(L, iRec, &p);
  if (row) {
    if (lua_rawgeti(L, iState, 4) == LUA_TUSERDATA) {
      memcpy(row, lua_touserdata(L, -1), sizeof(uint64_t) * (size_t)p->nFp);
    }
    lua_pop(L, 1);
  }
}

/*
** Save the record at iRec (aOnly as save_record): with the model's save
** hooks around it, in a savepoint, when it declares any (lbehav.c).  When
** that fails the record is put back as it was before the call.
*/
static void save_hooked(lua_State *L, int iRec, const unsigned char *aOnly) {
  LModel *pM = lquay_record_model(L, iRec);
  if (pM && (pM->mBehav & LQUAY_B_SAVE_HOOKS)) {
    int iState;
    iRec = lua_absindex(L, iRec);
    rec_state_keep(L, iRec);
    iState = lua_gettop(L);
    if (lquay_behav_save(L, iRec, pM, save_fn, (void *)aOnly) != LUA_OK) {
      rec_state_restore(L, iRec, iState);            /* [.., st, err] */
      lua_error(L);                                  /* the same value */
    }
    lua_settop(L, iState - 1);
  } else {
    save_record(L, iRec, aOnly);
  }
}

int lquay_save(lua_State *L, int iRec) {
  save_hooked(L, iRec, NULL);
  return 0;
}

static void txn_free(void *p) {
  quay_err err;
  quay_db_rollback((quay_db *)p, &err);
}

/* Restart the collector of the state p (a box stopped it). */
static void gc_restart(void *p) {
  lua_gc((lua_State *)p, LUA_GCRESTART);
}

/*
** The result of bulk_create / upsert: a new result array for the records
** of the Model at iModel, pushed with its metatable ([.., res, rmt]), and
** a snapshot for them.  The list at iList is checked to hold plain tables
** (no records) before anything is sent.  *pbDyn: the model has function
** defaults.
*/
static LSnap *bulk_result(lua_State *L, int iModel, int iList, int iMt,
                          const char *zWhat, int *piRes, int *pbDyn) {
  LModel *pM = lua_touserdata(L, iModel);
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, iList);
  int iRes;
  LSnap *pSnap;
  *pbDyn = 0;
  for (i = 0; i < quay_model_field_count(pM->m); i++) {
    quay_field_info f;
    quay_model_field(pM->m, (int)i, &f);
    if (f.mFlags & QUAY_F_DYN_DEFAULT) *pbDyn = 1;
  }
  for (i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, iList, i);
    if (t != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EVALIDATION, "%s: item %d is not a table",
                   zWhat, (int)i);
    }
    if (lua_getmetatable(L, -1)) {                   /* a record? */
      lua_pop(L, 1);
      if (lquay_record_model(L, -1)) {
        lquay_raisef(L, QUAY_EMISUSE, "%s: item %d is a record; give tables "
                     "of values (rec:to_table())", zWhat, (int)i);
      }
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, (int)n, 0);                     /* [.., res] */
  iRes = lua_gettop(L);
  lquay_push_result_mt(L, iMt, iRes);                /* [.., res, rmt] */
  pSnap = lquay_snap_new(L, iRes + 1, pM->m);
  *piRes = iRes;
  return pSnap;
}

/*
** Record i of a bulk call, from the list's item i: made in the result
** (iRes, its metatable at iRes + 1), pushed, and set in the writer w
** (reset first).  aUser (nField flags) gets the fields the item gave.
*/
static int bulk_row(lua_State *L, LModel *pM, int iList, int iRes, int iMt,
                    lua_Integer i, quay_writer *w, KeyCache *pKc, int bDyn,
                    unsigned char *aUser) {
  int k, n = quay_model_field_count(pM->m), bFill = 0, iRec;
  int iNames = pKc->iNames;
  /* A model with save hooks fills w from the record after its
  ** before_save (bulk_behav): the values are checked there, after the
  ** hook, as save() checks them, not while the record is made. */
  int bHooks = (pM->mBehav & LQUAY_B_SAVE_HOOKS) != 0;
  lua_rawgeti(L, iList, i);                          /* [.., item] */
  quay_writer_reset(w);
  memset(aUser, 0, (size_t)n);
  new_record_mt(L, pM, iRes + 1, -1, bHooks ? NULL : w, aUser, pKc);
  lua_remove(L, -2);                                 /* [.., rec] */
  iRec = lua_gettop(L);
  if (bDyn) dyn_defaults_x(L, iRec, pM, iMt, aUser);
  for (k = 0; k < n && !bHooks; k++) bFill |= aUser[k] == 2;
  if (bFill) {
    /* Relations, records in key columns, function defaults: from the
    ** record, as save() reads them. */
    unsigned char *aOnly = lua_newuserdatauv(L, (size_t)n + 1, 0);
    for (k = 0; k < n; k++) aOnly[k] = aUser[k] == 2;
    fill_writer(L, iRec, pM, w, iNames, aOnly, NULL);
    lua_pop(L, 1);
  }
  /* Filled from the record (2: relations, function defaults): their
  ** stored form goes back, as for a reshaped number. */
  for (k = 0; k < n; k++) {
    if (aUser[k] == 2) aUser[k] = USER_RESHAPE;
  }
  lua_pushvalue(L, iRec);
  lua_rawseti(L, iRes, i);
  return iRec;
}

/* Open the bulk call's transaction (in the box pTxn) unless open. */
static void bulk_begin(lua_State *L, LDb *pDb, Box *pTxn, Box *pW) {
  quay_err err;
  if (pTxn->p) return;
  if (quay_db_begin(pDb->db, &err)) {
    lquay_box_release(pW);
    lquay_fail(L, pDb, &err);
  }
  pTxn->p = pDb->db;
}

/* Commit the bulk call's transaction, if any, and close both boxes. */
static void bulk_commit(lua_State *L, LDb *pDb, Box *pTxn, Box *pW) {
  quay_err err;
  if (pTxn->p) {
    pTxn->p = NULL;
    if (quay_db_commit(pDb->db, &err)) {
      lquay_box_release(pW);
      lquay_fail(L, pDb, &err);
    }
  }
  lquay_box_close(L, pW);                            /* and pTxn */
}

/* Fail a bulk call: roll back, release, raise. */
static LQUAY_NORETURN void bulk_fail(lua_State *L, LDb *pDb, Box *pTxn,
                                     Box *pW, const quay_err *pErr) {
  quay_err e = *pErr;
  lquay_box_release(pW);
  lquay_box_release(pTxn);                           /* rolls back */
  lquay_fail(L, pDb, &e);
}

/*
** The behaviour of bulk row iRec (lbehav.c), already set in w: before_save
** (bFlag: creating, or LQUAY_HOOK_UNKNOWN for upsert) may change the
** record, so w is filled from it again; then the validate functions.
** Models without behaviour never get here.
*/
static void bulk_behav(lua_State *L, LModel *pM, int iRec, quay_writer *w,
                       int iNames, unsigned char *aUser, int bFlag) {
  if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
    int k, n = quay_model_field_count(pM->m);
    quay_err err;
    /* The keys the row set through a relation (bulk_row marks them
    ** USER_RESHAPE): one that reads nil after the hook (rel = quay.null)
    ** is written NULL, as without hooks, not left out. */
    unsigned char *aRel = lua_newuserdatauv(L, (size_t)n + 1, 0);
    for (k = 0; k < n; k++) aRel[k] = aUser[k] == USER_RESHAPE;
    lquay_behav_hook(L, pM, iRec, "before_save", bFlag);
    quay_writer_reset(w);
    fill_writer(L, iRec, pM, w, iNames, NULL, aUser);
    for (k = 0; k < n; k++) {
      if (aRel[k] && !aUser[k]) {
        quay_value v;
        memset(&v, 0, sizeof(v));
        v.type = QUAY_NULL;
        if (quay_writer_set(w, k, &v, &err)) lquay_raise(L, &err);
        aUser[k] = USER_GIVEN;
      }
    }
    lua_pop(L, 1);
  }
  if (pM->mBehav & LQUAY_B_VALIDATE) lquay_behav_validate(L, pM, iRec, w, 1);
}

#define BULK_BEHAV (LQUAY_B_SAVE_HOOKS | LQUAY_B_VALIDATE)

/*
** Model:bulk_create(list) [M, list].  Each row becomes a record and is
** written at once (SQLite: one prepared INSERT stepped per row) or queued
** for a batch (PostgreSQL; SQLite when the engine takes the call's
** transaction for a bulk insert, quay_writer_bulk_begin), all in one
** transaction opened before the first write.  A model with save hooks or validate functions queues
** every row first (its before_save and checks, in list order), then
** writes them, then runs every after_save in list order: the order
** upsert and bulk_update follow, the same on both backends whatever
** their batch size.
*/
static int bulk_create(lua_State *L, int iModel, int iList);
static int bulk_create_body(lua_State *L) { return bulk_create(L, 1, 2); }

int lquay_bulk_create(lua_State *L, int iModel, int iList) {
  LModel *pM = lua_touserdata(L, iModel);
  if ((pM->mBehav & BULK_BEHAV) && iModel == 1 && iList == 2 &&
      lua_gettop(L) == 2) {
    return lquay_behav_protect(L, bulk_create_body);   /* user code runs */
  }
  return bulk_create(L, iModel, iList);
}

static int bulk_create(lua_State *L, int iModel, int iList) {
  LModel *pM = lua_touserdata(L, iModel);
  LDb *pDb = lquay_enter(L, pM->pDb);
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, iList);
  int iRes, iMt, nField = quay_model_field_count(pM->m), rc, iNames, bDyn;
  int nBatch;
  quay_err err;
  Box *pW, *pTxn;
  unsigned char *aUsers;
  LSnap *pSnap;
  KeyCache *pKc;
  lua_getiuservalue(L, iModel, 2);
  iMt = lua_gettop(L);
  pSnap = bulk_result(L, iModel, iList, iMt, "bulk_create", &iRes, &bDyn);
  iNames = push_names(L, iMt, nField);
  pKc = push_key_cache(L, iRes + 1, iNames);
  pW = lquay_box(L, writer_free);
  pTxn = lquay_box(L, txn_free);
  rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pW->p, &err);
  if (rc) lquay_raise(L, &err);
  nBatch = quay_writer_batch(pW->p);
  if (!(pM->mBehav & BULK_BEHAV) && !bDyn && n > 1) {
    /* No user code runs: the engine may write many rows a statement in
    ** a transaction of its own (quay_writer_bulk_begin). */
    int bBegun = 0;
    Box *pGc = lquay_box(L, gc_restart);
    if (quay_writer_bulk_begin(pW->p, (int64_t)n, &bBegun, &err)) {
      lquay_box_release(pW);
      lquay_fail(L, pDb, &err);
    }
    if (bBegun) {
      pTxn->p = pDb->db;
      /* The engine may have suspended the connection's own key checks
      ** until its transaction ends: no finalizer (__gc, user code) may run
      ** SQL on the db meanwhile, so the collector pauses until the call
      ** ends or unwinds (an emergency collection runs no finalizer). */
      if (lua_gc(L, LUA_GCISRUNNING)) {
        lua_gc(L, LUA_GCSTOP);
        pGc->p = L;
      }
    }
    nBatch = quay_writer_batch(pW->p);
  }
  if ((pM->mBehav & BULK_BEHAV) && n > 1) {
    /* One queue for every row (flushed in the writer's own batches). */
    if (n > INT_MAX / (nField + 1)) {
      lquay_raisef(L, QUAY_EMISUSE, "bulk_create: too many rows (%lld)",
                   (long long)n);
    }
    nBatch = (int)n;
  }
  aUsers = lua_newuserdatauv(L, (size_t)(nBatch > n ? n + 1 : nBatch) *
                                    (size_t)(nField + 1), 0);
  luaL_checkstack(L, 8, "bulk_create");
  /* Hooks run inside the call's transaction: open it before the first. */
  if (n > 0 && (pM->mBehav & LQUAY_B_SAVE_HOOKS)) bulk_begin(L, pDb, pTxn, pW);
  if (nBatch <= 1) {
    /* One prepared INSERT stepped per row (SQLite's fastest form). */
    for (i = 1; i <= n; i++) {
      int iRec, iRow, k;
      uint64_t *row;
      iRec = bulk_row(L, pM, iList, iRes, iMt, i, pW->p, pKc, bDyn, aUsers);
      if (pM->mBehav & BULK_BEHAV) {
        bulk_behav(L, pM, iRec, pW->p, iNames, aUsers, 1);
      }
      bulk_begin(L, pDb, pTxn, pW);
      rc = quay_writer_insert(pW->p, &err);
      if (rc) bulk_fail(L, pDb, pTxn, pW, &err);
      write_back(L, iRec, pM, pW->p, iNames, aUsers, 0);
      if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
        lquay_behav_hook(L, pM, iRec, "after_save", 1);
      }
      row = lquay_snap_add(L, pSnap, &iRow);
      for (k = 0; k < nField; k++) {
        quay_value v;
        if (k == pSnap->iPk) continue;
        quay_writer_value(pW->p, k, &v);
        row[LQUAY_SNAP_SLOT(pSnap, k)] = lquay_fp(&v);
      }
      lquay_snap_mark(L, iRec, iRow);
      lua_pop(L, 1);
    }
  } else {
    /* Batches of nBatch rows in one statement each (PostgreSQL). */
    lua_Integer iFirst = 1;
    for (i = 1; i <= n; i++) {
      int k, iRec;
      iRec = bulk_row(L, pM, iList, iRes, iMt, i, pW->p, pKc, bDyn,
                      aUsers + (size_t)(i - iFirst) * (size_t)(nField + 1));
      if (pM->mBehav & BULK_BEHAV) {
        bulk_behav(L, pM, iRec, pW->p, iNames,
                   aUsers + (size_t)(i - iFirst) * (size_t)(nField + 1), 1);
      }
      lua_pop(L, 1);
      rc = quay_writer_queue(pW->p, &err);
      if (rc == QUAY_OK && (i - iFirst + 1 == nBatch || i == n)) {
        bulk_begin(L, pDb, pTxn, pW);
        rc = quay_writer_flush(pW->p, &err);
        for (k = 0; rc == QUAY_OK && k <= (int)(i - iFirst); k++) {
          int iRow;
          uint64_t *row;
          lua_rawgeti(L, iRes, iFirst + k);
          row = lquay_snap_add(L, pSnap, &iRow);
          write_back_queued(L, lua_gettop(L), pM, pW->p, k, iNames,
                            aUsers + (size_t)k * (size_t)(nField + 1),
                            pSnap, row);
          lquay_snap_mark(L, -1, iRow);
          if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
            lquay_behav_hook(L, pM, lua_gettop(L), "after_save", 1);
          }
          lua_pop(L, 1);
        }
        iFirst = i + 1;
      }
      if (rc) bulk_fail(L, pDb, pTxn, pW, &err);
    }
  }
  bulk_commit(L, pDb, pTxn, pW);
  lua_settop(L, iRes);
  return 1;
}

/*
** Field indexes of the names in the list at idx (fields, or to-one
** relations for their key column): a scratch array pushed on the stack,
** *pn entries.  The list must be a non-empty list of strings (misuse
** otherwise); an unknown name is unknown_field; a set relation misuse.
*/
static int *names_to_fields(lua_State *L, int idx, LModel *pM,
                            const char *zWhat, int bEmptyOk, int *pn) {
  lua_Integer i, n;
  int *a, k, nKeys = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || lquay_record_model(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s must be a list of field names, not "
                 "a %s", zWhat, luaL_typename(L, idx));
  }
  n = (lua_Integer)lua_rawlen(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    nKeys++;
    lua_pop(L, 1);
  }
  if ((n == 0 && !bEmptyOk) || nKeys != n) {
    lquay_raisef(L, QUAY_EMISUSE, "%s must be a non-empty list of field "
                 "names ({\"a\", \"b\"})", zWhat);
  }
  a = lua_newuserdatauv(L, sizeof(int) * (size_t)(n + 1), 0);
  for (i = 1; i <= n; i++) {
    const char *z;
    int t;
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: entry %d is a %s, not a field "
                   "name", zWhat, (int)i, luaL_typename(L, -1));
    }
    z = lua_tostring(L, -1);
    t = quay_model_member(pM->m, z, &k);
    if (t == QUAY_M_RELATION) {
      quay_rel_info r;
      quay_model_relation(pM->m, k, &r);
      if (!r.writable) {
        lquay_raisef(L, QUAY_EMISUSE, "%s: %s.%s is a %s relation, not a "
                     "field", zWhat, model_name(pM), z,
                     r.toMany ? "set" : "read-only");
      }
      k = r.iFkField;
    } else if (t != QUAY_M_FIELD) {
      lquay_raisef(L, QUAY_EUNKNOWN_FIELD, "%s: %s has no field '%s'",
                   zWhat, model_name(pM), z);
    }
    a[i - 1] = k;
    lua_pop(L, 1);
  }
  *pn = (int)n;
  return a;
}

/*
** The options table at idx of a call (nil/none allowed when !bRequired):
** every key must be one of azKey (misuse otherwise, naming it).  Returns
** non-0 when there is a table.
*/
int lquay_check_options(lua_State *L, int idx, const char *const *azKey,
                        int bRequired, const char *zWhat) {
  if (lua_isnoneornil(L, idx) && !bRequired) return 0;
  if (lua_type(L, idx) != LUA_TTABLE || lquay_record_model(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: the options must be a table, not a "
                 "%s", zWhat, luaL_typename(L, idx));
  }
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int i, ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      for (i = 0; azKey[i]; i++) {
        if (strcmp(azKey[i], lua_tostring(L, -2)) == 0) ok = 1;
      }
    }
    if (!ok) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: unknown option '%s'", zWhat,
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                  : luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
  return 1;
}

int lquay_opt_get(lua_State *L, int idx, const char *zKey) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, zKey);
  return lua_rawget(L, idx);
}

int lquay_opt_bool(lua_State *L, int idx, const char *zKey,
                   const char *zWhat) {
  int b;
  lquay_opt_get(L, idx, zKey);
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: %s must be true or false, not a %s",
                 zWhat, zKey, luaL_typename(L, -1));
  }
  b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

/* Model:upsert(rows, { conflict = {...} [, update = {...}] }) */
static int upsert(lua_State *L, int iModel, int iList, int iOpts);
static int upsert_body(lua_State *L) { return upsert(L, 1, 2, 3); }

int lquay_upsert(lua_State *L, int iModel, int iList, int iOpts) {
  LModel *pM = lua_touserdata(L, iModel);
  if ((pM->mBehav & BULK_BEHAV) && iModel == 1 && iList == 2 && iOpts == 3 &&
      lua_gettop(L) == 3) {
    return lquay_behav_protect(L, upsert_body);        /* user code runs */
  }
  return upsert(L, iModel, iList, iOpts);
}

static int upsert(lua_State *L, int iModel, int iList, int iOpts) {
  static const char *const azOpt[] = {"conflict", "update", NULL};
  LModel *pM = lua_touserdata(L, iModel);
  LDb *pDb = lquay_enter(L, pM->pDb);
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, iList);
  int iRes, iMt, nField = quay_model_field_count(pM->m), rc, iNames, bDyn;
  int *aiConflict, *aiUpdate = NULL, nConflict, nUpdate = 0;
  quay_err err;
  Box *pW, *pTxn;
  LSnap *pSnap;
  unsigned char *aUser;
  KeyCache *pKc;
  lquay_check_options(L, iOpts, azOpt, 1, "upsert");
  lquay_opt_get(L, iOpts, "conflict");
  if (lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_EMISUSE, "upsert: name the unique fields rows "
                 "conflict on: { conflict = {\"email\"} }");
  }
  aiConflict = names_to_fields(L, -1, pM, "upsert: conflict", 0, &nConflict);
  lquay_opt_get(L, iOpts, "update");
  if (!lua_isnil(L, -1)) {
    aiUpdate = names_to_fields(L, -1, pM, "upsert: update", 1, &nUpdate);
  }
  pW = lquay_box(L, writer_free);
  pTxn = lquay_box(L, txn_free);
  rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pW->p, &err);
  if (rc == QUAY_OK) {
    rc = quay_writer_upsert(pW->p, aiConflict, nConflict, aiUpdate, nUpdate,
                            &err);
  }
  if (rc) {
    lquay_box_release(pW);
    lquay_raise(L, &err);
  }
  lua_getiuservalue(L, iModel, 2);
  iMt = lua_gettop(L);
  pSnap = bulk_result(L, iModel, iList, iMt, "upsert", &iRes, &bDyn);
  iNames = push_names(L, iMt, nField);
  aUser = lua_newuserdatauv(L, (size_t)nField + 1, 0);
  pKc = push_key_cache(L, iRes + 1, iNames);
  luaL_checkstack(L, 8, "upsert");
  if (n > 0 && (pM->mBehav & LQUAY_B_SAVE_HOOKS)) bulk_begin(L, pDb, pTxn, pW);
  for (i = 1; i <= n; i++) {
    int iRec = bulk_row(L, pM, iList, iRes, iMt, i, pW->p, pKc, bDyn, aUser);
    if (pM->mBehav & BULK_BEHAV) {
      /* Whether the row exists is known only once it is written. */
      bulk_behav(L, pM, iRec, pW->p, iNames, aUser, LQUAY_HOOK_UNKNOWN);
    }
    lua_pop(L, 1);
    rc = quay_writer_queue(pW->p, &err);
    if (rc) bulk_fail(L, pDb, pTxn, pW, &err);
  }
  if (n > 0) {
    bulk_begin(L, pDb, pTxn, pW);
    rc = quay_writer_flush(pW->p, &err);
    if (rc) bulk_fail(L, pDb, pTxn, pW, &err);
  }
  for (i = 1; i <= n; i++) {
    int iRow;
    uint64_t *row;
    lua_rawgeti(L, iRes, i);
    row = lquay_snap_add(L, pSnap, &iRow);
    write_back_queued(L, lua_gettop(L), pM, pW->p, (int)(i - 1), iNames,
                      NULL, pSnap, row);
    lquay_snap_mark(L, -1, iRow);
    if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
      lquay_behav_hook(L, pM, lua_gettop(L), "after_save",
                       LQUAY_HOOK_UNKNOWN);
    }
    lua_pop(L, 1);
  }
  bulk_commit(L, pDb, pTxn, pW);
  lua_settop(L, iRes);
  return 1;
}

/* Model:bulk_update(records, fields): rows changed. */
static int bulk_update(lua_State *L, int iModel, int iList, int iFields);
static int bulk_update_body(lua_State *L) { return bulk_update(L, 1, 2, 3); }

int lquay_bulk_update(lua_State *L, int iModel, int iList, int iFields) {
  LModel *pM = lua_touserdata(L, iModel);
  if ((pM->mBehav & LQUAY_B_SAVE_HOOKS) && iModel == 1 && iList == 2 &&
      iFields == 3 && lua_gettop(L) == 3 && lua_type(L, 2) == LUA_TTABLE) {
    /* Save hooks may change the records: as save does, a call that fails
    ** puts every record back as it was before it. */
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, 2);
    int iStates;
    luaL_checkstack(L, 8, "bulk_update");
    lua_createtable(L, (int)(n > 0 && n < 1 << 20 ? n : 0), 0);   /* [M, l, f, st] */
    iStates = lua_gettop(L);
    for (i = 1; i <= n; i++) {
      LModel *pR;
      lua_rawgeti(L, 2, i);                          /* [.., rec] */
      pR = lquay_record_model(L, -1);
      if (pR && pR->m == pM->m) {
        rec_state_keep(L, lua_gettop(L));            /* [.., rec, state] */
        lua_rawseti(L, iStates, i);
      }
      lua_pop(L, 1);
    }
    lua_pushcfunction(L, bulk_update_body);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {           /* [.., st, err] */
      for (i = 1; i <= n; i++) {
        if (lua_rawgeti(L, iStates, i) == LUA_TTABLE) {   /* [.., state] */
          lua_rawgeti(L, 2, i);                      /* [.., state, rec] */
          rec_state_restore(L, lua_gettop(L), lua_gettop(L) - 1);
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      lua_error(L);                                  /* the same value */
    }
    return 1;
  }
  if ((pM->mBehav & BULK_BEHAV) && iModel == 1 && iList == 2 &&
      iFields == 3 && lua_gettop(L) == 3) {
    return lquay_behav_protect(L, bulk_update_body);   /* user code runs */
  }
  return bulk_update(L, iModel, iList, iFields);
}

static int bulk_update(lua_State *L, int iModel, int iList, int iFields) {
  LModel *pM = lua_touserdata(L, iModel);
  LDb *pDb = lquay_enter(L, pM->pDb);
  lua_Integer i, n;
  int *aiField, nF, k, nCol, iNames, nField = quay_model_field_count(pM->m);
  quay_value *aRow;
  quay_err err;
  int64_t nChanged = 0;
  unsigned char *aOnly = NULL;
  Box *pW = NULL, *pTxn = NULL;
  aiField = names_to_fields(L, iFields, pM, "bulk_update: fields", 0, &nF);
  if (lua_type(L, iList) != LUA_TTABLE || lquay_record_model(L, iList)) {
    lquay_raisef(L, QUAY_EMISUSE, "bulk_update: give a list of %s records, "
                 "not a %s", model_name(pM), luaL_typename(L, iList));
  }
  n = (lua_Integer)lua_rawlen(L, iList);
  nCol = nF + 1;
  lua_getiuservalue(L, iModel, 2);
  iNames = push_names(L, lua_gettop(L), nField);
  aRow = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n * nCol + 1), 0);
  if (pM->mBehav & BULK_BEHAV) {
    /* Hooks and validate functions (lbehav.c): a savepoint around the
    ** call, and a writer that checks each record's fields. */
    aOnly = lua_newuserdatauv(L, (size_t)nField + 1, 0);
    memset(aOnly, 0, (size_t)nField);
    for (k = 0; k < nF; k++) aOnly[aiField[k]] = 1;
    pW = lquay_box(L, writer_free);
    if (quay_writer_new(pDb->db, pM->m, (quay_writer **)&pW->p, &err)) {
      lquay_raise(L, &err);
    }
    if (pM->mBehav & LQUAY_B_SAVE_HOOKS) pTxn = lquay_behav_begin(L, pDb);
  }
  luaL_checkstack(L, 8, "bulk_update");
  for (i = 1; i <= n; i++) {
    int iRec;
    LModel *pR;
    quay_value *row = &aRow[(size_t)(i - 1) * (size_t)nCol];
    lua_rawgeti(L, iList, i);
    iRec = lua_gettop(L);
    pR = lquay_record_model(L, iRec);
    if (pR == NULL || pR->m != pM->m) {
      lquay_raisef(L, QUAY_EVALIDATION, "bulk_update: item %d is not a %s "
                   "record", (int)i, model_name(pM));
    }
    lua_rawgetp(L, iRec, &lquay_LK_PK);
    if (lua_isnil(L, -1)) {
      lquay_raisef(L, QUAY_EVALIDATION, "bulk_update: item %d, %s(new), was "
                   "never saved", (int)i, model_name(pM));
    }
    lua_pop(L, 1);
    if (pW) {
      if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
        lquay_behav_hook(L, pM, iRec, "before_save", 0);
      }
      if (pM->mBehav & LQUAY_B_VALIDATE) {
        quay_writer_reset(pW->p);
        fill_writer(L, iRec, pM, pW->p, iNames, aOnly, NULL);
        lquay_behav_validate(L, pM, iRec, pW->p, 0);
      }
    }
    lua_rawgetp(L, iRec, &lquay_LK_PK);
    lquay_to_value(L, -1, &row[0], 0, "key");        /* the record keeps it */
    lua_pop(L, 1);
    for (k = 0; k < nF; k++) {
      int t, nPushed;
      luaL_checkstack(L, 8, "bulk_update");
      lua_pushvalue(L, iNames + aiField[k]);
      t = lua_rawget(L, iRec);
      if (t == LUA_TTABLE && lquay_record_model(L, -1)) {
        quay_field_info f;
        quay_model_field(pM->m, aiField[k], &f);
        if (f.iRel >= 0) {
          quay_rel_info r;
          quay_field_info tk;
          quay_model_relation(pM->m, f.iRel, &r);
          quay_model_field(r.pTarget, r.iTargetKey, &tk);
          lua_getfield(L, -1, tk.zName);
          lua_replace(L, -2);
        }
      }
      /* A table is a JSON document, as save takes it (its text is pushed
      ** above the value). */
      nPushed = lquay_to_field_value(L, -1, &row[k + 1], 0, model_name(pM),
                                     lua_tostring(L, iNames + aiField[k]));
      if (row[k + 1].type == QUAY_RECORD) {
        lquay_raisef(L, QUAY_EVALIDATION, "%s.%s: a record is not a value "
                     "for this field", model_name(pM),
                     lua_tostring(L, iNames + aiField[k]));
      }
      /* The record (or its target) keeps strings; a JSON text stays on
      ** the stack until the statement ran. */
      lua_remove(L, -1 - nPushed);
    }
    lua_remove(L, iRec);
  }
  if (quay_bulk_update(pDb->db, pM->m, aiField, nF, aRow, (int)n, &nChanged,
                       &err)) {
    lquay_fail(L, pDb, &err);
  }
  if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, iList, i);
      lquay_behav_hook(L, pM, lua_gettop(L), "after_save", 0);
      lua_pop(L, 1);
    }
  }
  if (pTxn) lquay_behav_commit(L, pDb, pTxn);
  if (pW) lquay_box_close(L, pW);
  /* The written fields are stored values now: in the record in their
  ** stored form, as save leaves them (a scratch writer gives it), and in
  ** the snapshot. */
  pW = lquay_box(L, writer_free);
  if (quay_writer_new(pDb->db, pM->m, (quay_writer **)&pW->p, &err)) {
    lquay_raise(L, &err);
  }
  for (i = 1; i <= n; i++) {
    LSnap *p;
    uint64_t *row;
    int iRec;
    lua_rawgeti(L, iList, i);
    iRec = lua_gettop(L);
    row = snap_row(L, iRec, &p);
    for (k = 0; k < nF; k++) {
      quay_value v = aRow[(size_t)(i - 1) * (size_t)nCol + (size_t)k + 1];
      int j = aiField[k];
      uint64_t fp;
      if (v.type == QUAY_NULL) {
        lua_pushvalue(L, iNames + j);                /* quay.null -> nil */
        lua_pushnil(L);
        lua_rawset(L, iRec);
      } else if (stored_form(pM, j, &v) ||
                 user_flag(pM, j, &v) == USER_RESHAPE) {
        quay_value sv;
        quay_writer_reset(pW->p);
        if (quay_writer_set(pW->p, j, &v, &err) == QUAY_OK) {
          quay_writer_value(pW->p, j, &sv);
          lua_pushvalue(L, iNames + j);
          lquay_push_value(L, &sv);
          lua_rawset(L, iRec);
        }
      }
      if (row == NULL) continue;
      /* As changed() will see the record's value (a JSON string is a
      ** document, not a text) */
      lua_pushvalue(L, iNames + j);
      lua_rawget(L, iRec);
      if (!fp_lua(L, lua_gettop(L), pM, j, &fp)) fp = lquay_fp(&v);
      lua_pop(L, 1);
      row[LQUAY_SNAP_SLOT(p, j)] = fp;
    }
    lua_pop(L, 1);
  }
  lquay_box_close(L, pW);
  lua_pushinteger(L, (lua_Integer)nChanged);
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Record methods
** ===================================================================
*/
void lquay_check_nargs(lua_State *L, int nMax, const char *zWhat) {
  if (lua_gettop(L) > nMax) {
    lquay_raisef(L, QUAY_EMISUSE, "%s takes at most %d argument%s; "
                 "argument %d (a %s) would be ignored", zWhat, nMax - 1,
                 nMax == 2 ? "" : "s", nMax, luaL_typename(L, nMax + 1));
  }
}

/* rec:save() / rec:save { fields = {...} } */
static int rec_save(lua_State *L) {
  static const char *const azOpt[] = {"fields", NULL};
  LModel *pM = lquay_record_model(L, 1);
  if (pM == NULL) {
    lquay_raisef(L, QUAY_EMISUSE, "call rec:save() with a colon (save got "
                 "a %s, not a record)", luaL_typename(L, 1));
  }
  lquay_check_nargs(L, 2, "rec:save(opts)");
  lua_settop(L, 2);
  if (lquay_check_options(L, 2, azOpt, 0, "save")) {
    int n = quay_model_field_count(pM->m), nF, k;
    unsigned char *aOnly;
    int *aiField;
    lquay_ready(L, pM);
    lua_rawgetp(L, 1, &lquay_LK_PK);
    if (lua_isnil(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "save { fields = ... }: %s(new) is not "
                   "stored yet; a first save inserts every field (call "
                   "save() without fields)", model_name(pM));
    }
    lquay_opt_get(L, 2, "fields");
    if (lua_isnil(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "save: options without fields");
    }
    aiField = names_to_fields(L, -1, pM, "save: fields", 0, &nF);
    aOnly = lua_newuserdatauv(L, (size_t)n + 1, 0);
    memset(aOnly, 0, (size_t)n + 1);
    for (k = 0; k < nF; k++) aOnly[aiField[k]] = 1;
    save_hooked(L, 1, aOnly);
  } else {
    save_hooked(L, 1, NULL);
  }
  lua_settop(L, 1);
  return 1;
}

/* rec:changed(): the names of the fields save() would write, in field
** order. */
static int rec_changed(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  int i, n, iNames, k = 0;
  unsigned char *a;
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "changed: not a record");
  lquay_check_nargs(L, 1, "rec:changed()");
  lquay_ready(L, pM);
  n = quay_model_field_count(pM->m);
  lua_settop(L, 1);
  a = lua_newuserdatauv(L, (size_t)n + 1, 0);        /* [rec, a] */
  lua_getmetatable(L, 1);
  iNames = push_names(L, lua_gettop(L), n);
  record_changed(L, 1, pM, iNames, a, 0);
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    if (!a[i]) continue;
    lua_pushvalue(L, iNames + i);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static void counts_free(void *p) { quay_counts_free(p); }

/* Push { Model = n, ... } from counts. */
static void push_counts(lua_State *L, quay_counts *c) {
  int i, n = quay_counts_n(c);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)quay_counts_value(c, i));
    lua_setfield(L, -2, quay_counts_name(c, i));
  }
}

/*
** The options of rec:delete and qs:delete at idx (none, nil or a table):
** QUAY_DELETE_DRY_RUN for { dry_run = true }, QUAY_DELETE_HARD for
** { hard = true }.  Any other key, or a value that is not a boolean,
** raises misuse naming zWhat.  Raw reads only (rule 1).
*/
int lquay_delete_opts(lua_State *L, int idx, const char *zWhat) {
  int m = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: options must be a table, not a %s",
                 zWhat, luaL_typename(L, idx));
  }
  luaL_checkstack(L, 3, zWhat);
  lua_pushnil(L);
  while (lua_next(L, idx)) {                         /* [.., k, v] */
    const char *zKey = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                      : NULL;
    int bit = zKey == NULL ? 0
            : strcmp(zKey, "dry_run") == 0 ? QUAY_DELETE_DRY_RUN
            : strcmp(zKey, "hard") == 0 ? QUAY_DELETE_HARD : 0;
    if (bit == 0) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: unknown option '%s' (the options "
                   "are dry_run and hard)", zWhat,
                   zKey ? zKey : luaL_typename(L, -2));
    }
    if (lua_type(L, -1) != LUA_TBOOLEAN) {
      lquay_raisef(L, QUAY_EMISUSE, "%s: %s must be true or false, not a %s",
                   zWhat, zKey, luaL_typename(L, -1));
    }
    if (lua_toboolean(L, -1)) m |= bit;
    lua_pop(L, 1);
  }
  return m;
}

/* Used by lqueryset.c too. */
LQUAY_INTERNAL void lquay_push_counts(lua_State *L, quay_counts *c);
void lquay_push_counts(lua_State *L, quay_counts *c) { push_counts(L, c); }

static int rec_delete(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  LDb *pDb;
  quay_err err;
  quay_value k;
  Box *pBox;
  LDelCall call;
  int mFlags, rc;
  const char *zSoft;
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "delete: not a record");
  lquay_check_nargs(L, 2, "rec:delete(opts)");
  mFlags = lquay_delete_opts(L, 2, "delete");
  pDb = lquay_enter(L, pM->pDb);
  lquay_ready(L, pM);
  lua_settop(L, 2);
  lua_rawgetp(L, 1, &lquay_LK_PK);                   /* [rec, opts, pk] */
  if (lua_isnil(L, 3)) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s(new) was never saved; there is "
                 "nothing to delete", model_name(pM));
  }
  lquay_to_value(L, 3, &k, 0, "key");
  pBox = lquay_box(L, counts_free);                  /* [.., box] */
  /* deleted_at as before the call: after_delete of a soft delete marks
  ** the record, and an error must put it back (pushed now: putting it
  ** back then allocates nothing). */
  lua_pushliteral(L, "deleted_at");                  /* [.., box, k] */
  lua_pushvalue(L, -1);
  lua_rawget(L, 1);                                  /* [.., box, k, old] */
  lquay_behav_delete_begin(L, pDb, &call, 1, pM->m);   /* last: may raise */
  rc = quay_delete_keys(pDb->db, pM->m, &k, 1, (unsigned)mFlags,
                        (quay_counts **)&pBox->p, &err);
  lquay_behav_delete_end(L, pDb, &call);
  if (rc) {
    lua_rawset(L, 1);
    lquay_fail(L, pDb, &err);
  }
  lua_pop(L, 2);                                     /* [.., box] */
  push_counts(L, pBox->p);
  zSoft = quay_counts_deleted_at(pBox->p);
  if (zSoft && quay_counts_n(pBox->p) > 0) {
    /* Soft-deleted: the record stays, marked. */
    lua_pushliteral(L, "deleted_at");
    lua_pushstring(L, zSoft);
    lua_rawset(L, 1);
  }
  lquay_box_release(pBox);
  if (!(mFlags & QUAY_DELETE_DRY_RUN) && zSoft == NULL) {
    /* Like Django: the record is unsaved again. */
    lua_pushnil(L);
    lua_rawsetp(L, 1, &lquay_LK_PK);
    lua_pushnil(L);
    set_field(L, 1, pM, quay_model_pk(pM->m));
  }
  return 1;
}

static int rec_refresh(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  int i, n, nRel;
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "refresh: not a record");
  lquay_check_nargs(L, 1, "rec:refresh()");
  lua_settop(L, 1);
  lua_rawgetp(L, 1, &lquay_LK_PK);                   /* [rec, pk] */
  if (lua_isnil(L, 2)) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s(new) was never saved; there is "
                 "nothing to refresh", model_name(pM));
  }
  lua_getmetatable(L, 1);
  lua_rawgetp(L, -1, &lquay_LK_MODEL);               /* [rec, pk, mt, M] */
  if (quay_model_soft_delete(pM->m)) {
    /* A soft-deleted record reads back too, as Django's refresh_from_db
    ** (base manager) and Laravel's refresh (no scopes) read it. */
    quay_field_info pk;
    quay_model_field(pM->m, quay_model_pk(pM->m), &pk);
    lua_getfield(L, 4, "with_deleted");
    lua_pushvalue(L, 4);
    lua_call(L, 1, 1);                               /* [.., qs] */
    lua_getfield(L, -1, "filter");
    lua_insert(L, -2);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, pk.zName);
    lua_call(L, 2, 1);                               /* [.., qs2] */
    lua_getfield(L, -1, "first");
    lua_insert(L, -2);
    lua_call(L, 1, 1);                               /* [.., fresh] */
  } else {
    lua_getfield(L, 4, "find");
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);                               /* [.., fresh] */
  }
  if (lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_ENOT_FOUND, "%s %s no longer exists",
                 model_name(pM), luaL_tolstring(L, 2, NULL));
  }
  n = quay_model_field_count(pM->m);
  for (i = 0; i < n; i++) {
    get_field(L, 5, pM, i);
    set_field(L, 1, pM, i);
  }
  {
    /* What it holds now is what is stored: the fresh record's snapshot. */
    LSnap *pFresh, *pOwn;
    uint64_t *aFresh = snap_row(L, 5, &pFresh);
    uint64_t *aOwn = snap_own_row(L, 1, pM, &pOwn);
    for (i = 0; i < pOwn->nFp; i++) aOwn[i] = aFresh ? aFresh[i] : 0;
    get_field(L, 5, pM, quay_model_pk(pM->m));
    lua_rawsetp(L, 1, &lquay_LK_PK);
  }
  nRel = quay_model_relation_count(pM->m);
  for (i = 0; i < nRel; i++) {
    lua_pushnil(L);
    lua_rawsetp(L, 1, LQUAY_RELKEY(i));
  }
  lua_settop(L, 1);
  return 1;
}

static int rec_to_table(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  int i, n;
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "to_table: not a record");
  n = quay_model_field_count(pM->m);
  lua_createtable(L, 0, n);
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_model_field(pM->m, i, &f);
    lua_pushstring(L, f.zName);
    if (lua_rawget(L, 1) == LUA_TNIL || lquay_is_null(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    lua_setfield(L, -2, f.zName);
  }
  return 1;
}

static const luaL_Reg aRecMethod[] = {
  {"save", rec_save},
  {"delete", rec_delete},
  {"refresh", rec_refresh},
  {"to_table", rec_to_table},
  {"changed", rec_changed},
  {NULL, NULL}
};

/*
** Fill the record metatable at iMt for the Model at iModel (members table
** on top of the stack).
*/
void lquay_record_mt_init(lua_State *L, int iMt, int iModel,
                          const char *zName) {
  int iMembers = lua_gettop(L);
  lua_pushvalue(L, iMembers);
  luaL_getmetatable(L, QUAY_MODEL_MT);
  lua_rawgetp(L, -1, &lquay_LK_RECMETHODS);               /* shared methods */
  lua_remove(L, -2);
  lua_pushvalue(L, iModel);
  lua_rawgetp(L, iMt, &lquay_LK_NAMES);
  lua_pushcclosure(L, rec_index, 4);
  lua_setfield(L, iMt, "__index");
  lua_pushvalue(L, iMembers);
  lua_pushnil(L);
  lua_pushvalue(L, iModel);
  lua_pushcclosure(L, rec_newindex, 3);
  lua_setfield(L, iMt, "__newindex");
  lua_pushcfunction(L, rec_eq);
  lua_setfield(L, iMt, "__eq");
  lua_pushvalue(L, iModel);
  lua_pushcclosure(L, rec_tostring, 1);
  lua_setfield(L, iMt, "__tostring");
  lua_pushcfunction(L, rec_pairs);
  lua_setfield(L, iMt, "__pairs");
  lua_pushfstring(L, "quay.Record(%s)", zName);
  lua_setfield(L, iMt, "__name");
}
/* }================================================================== */


/*
** {==================================================================
** Related sets
** ===================================================================
*/
/*
** Push the set metatable of relation j, loaded or not, for the owner record
** at iOwner: copied once from the QUAY_SET_MT template and cached.
*/
static void push_set_mt(lua_State *L, int iOwner, int j, int bLoaded) {
  int key = j * 2 + (bLoaded ? 1 : 0) + 1;
  iOwner = lua_absindex(L, iOwner);
  if (!lua_getmetatable(L, iOwner)) {
    lquay_raisef(L, QUAY_EMISUSE, "a related set needs a record owner");
  }
  lua_rawgetp(L, -1, &lquay_LK_SETMTS);              /* [mt, mts] */
  lua_remove(L, -2);
  if (lua_rawgeti(L, -1, key) == LUA_TTABLE) {       /* [mts, smt] */
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 7);                          /* [mts, smt] */
  luaL_getmetatable(L, QUAY_SET_MT);                 /* [mts, smt, tpl] */
  lua_pushnil(L);
  while (lua_next(L, -2)) {                          /* copy the template */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, j);
  lua_rawsetp(L, -2, &lquay_LK_REL);
  lua_pushboolean(L, bLoaded);
  lua_rawsetp(L, -2, &lquay_LK_LOADED);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, key);
  lua_remove(L, -2);                                 /* [smt] */
}

void lquay_set_mark(lua_State *L, int iSet, int iOwner, int j, int bLoaded) {
  iSet = lua_absindex(L, iSet);
  iOwner = lua_absindex(L, iOwner);
  lua_pushvalue(L, iOwner);
  lua_rawsetp(L, iSet, &lquay_LK_OWNER);
  push_set_mt(L, iOwner, j, bLoaded);
  lua_setmetatable(L, iSet);
}

void lquay_push_result_mt(lua_State *L, int iMt, int iResult) {
  iMt = lua_absindex(L, iMt);
  iResult = lua_absindex(L, iResult);
  lua_createtable(L, 0, 16);
  lua_pushnil(L);
  while (lua_next(L, iMt)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushvalue(L, iResult);
  lua_rawsetp(L, -2, &lquay_LK_RESULT);
}

/* Non-0 when the table at idx is a related set. */
int lquay_is_set(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  r = lua_rawgetp(L, -1, &lquay_LK_REL) == LUA_TNUMBER;
  lua_pop(L, 2);
  return r;
}

int lquay_set_loaded(lua_State *L, int idx) {
  int r;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_rawgetp(L, -1, &lquay_LK_LOADED);
  r = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return r;
}

/* Push a new set of relation j of the owner record at iOwner. */
void lquay_push_set(lua_State *L, int iOwner, int j, int bLoaded) {
  iOwner = lua_absindex(L, iOwner);
  lua_createtable(L, 0, 1);
  lquay_set_mark(L, -1, iOwner, j, bLoaded);
}

/* The set at idx: owner record pushed, its model and relation returned. */
static LModel *set_owner(lua_State *L, int idx, int *pj, quay_rel_info *r) {
  LModel *pM;
  if (!lquay_is_set(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "expected a related set");
  }
  lua_getmetatable(L, idx);
  lua_rawgetp(L, -1, &lquay_LK_REL);
  *pj = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  lua_rawgetp(L, idx, &lquay_LK_OWNER);              /* [.., owner] */
  pM = lquay_record_model(L, -1);
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "expected a related set");
  lquay_ready(L, pM);
  quay_model_relation(pM->m, *pj, r);
  return pM;
}

/* Load the set at idx if it is not loaded. */
static void set_load(lua_State *L, int idx) {
  int j, iSrv = -1;
  quay_rel_info r;
  LModel *pM;
  if (lquay_set_loaded(L, idx)) return;
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, idx, &lquay_LK_SERVER) == LUA_TNUMBER) {
    iSrv = (int)lua_tointeger(L, -1);    /* reloaded after a write */
  }
  lua_pop(L, 1);
  pM = set_owner(L, idx, &j, &r);                    /* [.., owner] */
  lquay_lazy_load_on(L, lua_gettop(L), pM, j, r.zName, iSrv);
  lua_pushnil(L);
  lua_rawsetp(L, idx, &lquay_LK_SERVER);
  if (!lquay_set_loaded(L, idx)) lquay_set_mark(L, idx, lua_gettop(L), j, 1);
  lua_pop(L, 1);
}

/* Forget the loaded rows (after a write through the set).  The set reads
** them again from the primary: the write is there, a replica may not
** have it yet (sticky = 0, or a replica that lags). */
static void set_invalidate(lua_State *L, int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  int j;
  idx = lua_absindex(L, idx);
  for (i = n; i >= 1; i--) {
    lua_pushnil(L);
    lua_rawseti(L, idx, i);
  }
  lua_pushinteger(L, 0);                   /* the primary */
  lua_rawsetp(L, idx, &lquay_LK_SERVER);
  lua_getmetatable(L, idx);
  lua_rawgetp(L, -1, &lquay_LK_REL);
  j = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  lua_rawgetp(L, idx, &lquay_LK_OWNER);
  lquay_set_mark(L, idx, -1, j, 0);
  lua_pop(L, 1);
}

static int set_len(lua_State *L) {
  set_load(L, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
  return 1;
}

/* The owner's key value, pushed, and converted into *pKey. */
static void owner_key(lua_State *L, LModel *pM, const quay_rel_info *r,
                      int iOwner, quay_value *pKey) {
  get_field(L, iOwner, pM, r->iOwnerKey);
  lquay_to_value(L, -1, pKey, 0, "key");
}

/* Push the scoped query set of the set at idx. */
static void set_qs(lua_State *L, int idx) {
  int j, iOwner;
  quay_rel_info r;
  quay_value k;
  LModel *pM = set_owner(L, idx, &j, &r);
  LQs *q;
  quay_err err;
  iOwner = lua_gettop(L);
  owner_key(L, pM, &r, iOwner, &k);                  /* [.., owner, key] */
  lquay_push_model(L, pM->pDb, r.pTarget);           /* [.., key, T] */
  lquay_push_qs(L, -1, NULL);                        /* [.., key, T, qs] */
  q = lua_touserdata(L, -1);
  if (quay_qs_related(pM->m, j, &k, &q->qs, &err)) lquay_raise(L, &err);
  lua_replace(L, iOwner);
  lua_settop(L, iOwner);
}

/* Push the method zName of the set's scoped query set, then the query set
** itself ([.., fn, qs]), ready for a call with further arguments. */
static void push_qs_method(lua_State *L, int iSet, const char *zName) {
  set_qs(L, iSet);
  lua_getfield(L, -1, zName);
  lua_insert(L, -2);
}

static int is_m2m(const quay_rel_info *r) {
  return r->eKind == QUAY_R_MANY_TO_MANY ||
         (r->eKind == QUAY_R_REVERSE && r->eForwardKind == QUAY_R_MANY_TO_MANY);
}

/*
** Target keys of the records passed to add/remove/set: arguments
** from..to, each a record or a list of records, pushed as a value array
** (scratch userdata).  Many-to-many rows are named by their join key,
** reverse-FK rows by their primary key.
*/
static quay_value *target_keys(lua_State *L, int from, int to, LModel *pM,
                               const quay_rel_info *r, const char *zWhat,
                               int *pn) {
  int i, n = 0, iKey = is_m2m(r) ? r->iTargetKey : quay_model_pk(r->pTarget);
  quay_value *a;
  quay_field_info tk;
  quay_model_field(r->pTarget, iKey, &tk);
  for (i = from; i <= to; i++) {
    if (lua_type(L, i) == LUA_TTABLE && lquay_record_model(L, i) == NULL) {
      lua_Integer k, nItem = (lua_Integer)lua_rawlen(L, i);
      int nKeys = 0;
      lua_pushnil(L);
      while (lua_next(L, i)) {
        nKeys++;
        lua_pop(L, 1);
      }
      if (nKeys != nItem) {
        lquay_raisef(L, QUAY_EMISUSE, "%s.%s:%s: argument %d is a table "
                     "but not a list of records", model_name(pM), r->zName,
                     zWhat, i - 1);
      }
      for (k = 1; k <= nItem; k++) {
        lua_rawgeti(L, i, k);
        if (lquay_record_model(L, -1) == NULL) {
          lquay_raisef(L, QUAY_EMISUSE, "%s.%s:%s: item %d of argument %d "
                       "is a %s, not a record", model_name(pM), r->zName,
                       zWhat, (int)k, i - 1, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
      }
      n += (int)nItem;
    } else if (lquay_record_model(L, i) != NULL) {
      n++;
    } else {
      lquay_raisef(L, QUAY_EMISUSE, "%s.%s:%s: argument %d is a %s; give "
                   "%s records or a list of them", model_name(pM), r->zName,
                   zWhat, i - 1, luaL_typename(L, i),
                   quay_model_name(r->pTarget));
    }
  }
  a = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n + 1), 0);
  n = 0;
  for (i = from; i <= to; i++) {
    lua_Integer k, nItem = 1;
    int bList = lquay_record_model(L, i) == NULL;
    if (bList) nItem = (lua_Integer)lua_rawlen(L, i);
    for (k = 1; k <= nItem; k++) {
      LModel *pT;
      if (bList) lua_rawgeti(L, i, k);
      else lua_pushvalue(L, i);
      pT = lquay_record_model(L, -1);
      lquay_check_record_db(L, pT, pM, r->zName);
      if (pT->m != r->pTarget) {
        lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r->zName,
                          "%s.%s: expected %s records, got a %s record",
                          model_name(pM), r->zName,
                          quay_model_name(r->pTarget), model_name(pT));
      }
      lua_getfield(L, -1, tk.zName);
      if (lua_isnil(L, -1)) {
        lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r->zName,
                          "%s.%s: the %s record is not saved",
                          model_name(pM), r->zName,
                          quay_model_name(r->pTarget));
      }
      lquay_to_value(L, -1, &a[n++], 0, "key");
      lua_pop(L, 2);                  /* the record keeps the string */
    }
  }
  *pn = n;
  return a;
}


static void check_writable_set(lua_State *L, LModel *pM,
                               const quay_rel_info *r) {
  if (r->readOnly) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s.%s is a quay.through relation: "
                 "read-only; write through its hops", model_name(pM),
                 r->zName);
  }
}

/* set:add(rec, ... [, through_values])  /  set:remove(rec, ...) */
static int set_write(lua_State *L, int bRemove) {
  int j, n, top, last, iOwner, rc, nKey;
  quay_rel_info r;
  quay_value key, *aKey;
  quay_err err;
  LModel *pM;
  LDb *pDb;
  top = lua_gettop(L);
  pM = set_owner(L, 1, &j, &r);
  iOwner = lua_gettop(L);
  pDb = lquay_enter(L, pM->pDb);
  check_writable_set(L, pM, &r);
  owner_key(L, pM, &r, iOwner, &key);
  if (key.type == QUAY_NULL) {
    lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                      "%s.%s: save the %s first",
                      model_name(pM), r.zName, model_name(pM));
  }
  last = top;
  if (!bRemove && is_m2m(&r) && top >= 2 && lua_type(L, top) == LUA_TTABLE &&
      lquay_record_model(L, top) == NULL && lua_rawlen(L, top) == 0) {
    /* A table of values, not a list: the through values (an empty table
    ** is an empty list). */
    lua_pushnil(L);
    if (lua_next(L, top)) {
      lua_pop(L, 2);
      last = top - 1;
    }
  }
  aKey = target_keys(L, 2, last, pM, &r, bRemove ? "remove" : "add", &nKey);
  n = nKey;
  if (is_m2m(&r)) {
    Box *pBox = lquay_box(L, (lquay_free_fn)quay_writer_free);
    if (last != top) {
      /* Pivot values: a writer of the through model. */
      LModel *pPv;
      int iPv;
      if (!r.hasPivot) {
        lquay_raisef(L, QUAY_EMISUSE, "%s.%s has no through model; "
                     "through values do not apply", model_name(pM), r.zName);
      }
      lquay_push_model(L, pM->pDb, r.pPivot);
      pPv = lquay_ready(L, lua_touserdata(L, -1));
      lquay_new_record(L, lua_gettop(L), top);       /* validates names */
      iPv = lua_gettop(L);
      lua_getmetatable(L, iPv);
      dyn_defaults(L, iPv, pPv, lua_gettop(L));
      rc = quay_writer_new(pDb->db, r.pPivot, (quay_writer **)&pBox->p, &err);
      if (rc) lquay_raise(L, &err);
      {
        int iNames = push_names(L, lua_gettop(L),
                                quay_model_field_count(r.pPivot));
        fill_writer(L, iPv, pPv, pBox->p, iNames, NULL, NULL);
      }
    }
    rc = quay_m2m_write(pDb->db, pM->m, j, &key,
                        bRemove ? QUAY_M2M_REMOVE : QUAY_M2M_ADD, aKey, n,
                        pBox->p, &err);
    lquay_box_close(L, pBox);
  } else {
    rc = quay_fkset_write(pDb->db, pM->m, j, &key, bRemove, aKey, n, &err);
    if (rc == QUAY_OK) {
      /* Keep the child records in step: their key column and cache. */
      int i;
      quay_field_info fk;
      quay_model_field(r.pTarget, r.iTargetKey, &fk);
      for (i = 2; i <= last; i++) {
        lua_pushstring(L, fk.zName);
        if (bRemove) {
          lua_pushnil(L);
        } else {
          get_field(L, iOwner, pM, r.iOwnerKey);
        }
        lua_rawset(L, i);
        if (r.iPeer >= 0) {
          if (bRemove) {
            lua_pushboolean(L, 0);
          } else {
            lua_pushvalue(L, iOwner);
          }
          lua_rawsetp(L, i, LQUAY_RELKEY(r.iPeer));
        }
      }
    }
  }
  if (rc) lquay_fail(L, pDb, &err);
  set_invalidate(L, 1);
  lua_settop(L, 1);
  return 1;
}

static int set_add(lua_State *L) { return set_write(L, 0); }
static int set_remove(lua_State *L) { return set_write(L, 1); }

/* set:clear() */
static int set_clear(lua_State *L) {
  int j, rc;
  quay_rel_info r;
  quay_value key;
  quay_err err;
  LModel *pM;
  lquay_check_nargs(L, 1, "set:clear()");
  pM = set_owner(L, 1, &j, &r);
  LDb *pDb = lquay_enter(L, pM->pDb);
  check_writable_set(L, pM, &r);
  owner_key(L, pM, &r, lua_gettop(L), &key);
  if (is_m2m(&r)) {
    rc = quay_m2m_write(pDb->db, pM->m, j, &key, QUAY_M2M_CLEAR, NULL, 0, NULL,
                        &err);
    if (rc) lquay_fail(L, pDb, &err);
  } else {
    /* Reverse foreign key: set every child's key to NULL. */
    quay_field_info fk;
    if (!r.nullable) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                        "%s.%s: cannot clear, the key column "
                        "of %s cannot be null", model_name(pM), r.zName,
                        quay_model_name(r.pTarget));
    }
    quay_model_field(r.pTarget, r.iTargetKey, &fk);
    push_qs_method(L, 1, "update");                  /* [.., fn, qs] */
    lua_createtable(L, 0, 1);
    lquay_push_null(L);
    lua_setfield(L, -2, fk.zName);
    lua_call(L, 2, 0);
  }
  set_invalidate(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* set:set(list [, through_values]) */
static int set_set(lua_State *L) {
  int j, rc, n, top;
  quay_rel_info r;
  quay_value key, *aKey;
  quay_err err;
  LModel *pM;
  LDb *pDb;
  top = lua_gettop(L);
  if (top < 2 || lua_type(L, 2) != LUA_TTABLE || lquay_record_model(L, 2)) {
    lquay_raisef(L, QUAY_EMISUSE, "set:set(list): give a list of records "
                 "(an empty list clears the set), not a %s",
                 luaL_typename(L, 2));
  }
  pM = set_owner(L, 1, &j, &r);                      /* [set, list, owner] */
  lua_pop(L, 1);
  lquay_check_nargs(L, is_m2m(&r) && r.hasPivot ? 3 : 2, "set:set(list)");
  pDb = lquay_enter(L, pM->pDb);
  check_writable_set(L, pM, &r);
  if (!is_m2m(&r)) {
    /* Reverse foreign key: clear, then add. */
    if (top > 2) {
      lquay_raisef(L, QUAY_EMISUSE, "%s.%s:set: through values apply to a "
                   "many_to_many with a through model", model_name(pM),
                   r.zName);
    }
    lua_getfield(L, 1, "clear");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    lua_getfield(L, 1, "add");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 0);
    lua_settop(L, 1);
    return 1;
  }
  set_owner(L, 1, &j, &r);                           /* [.., owner] */
  owner_key(L, pM, &r, lua_gettop(L), &key);         /* [.., owner, key] */
  aKey = target_keys(L, 2, 2, pM, &r, "set", &n);
  {
    Box *pBox = lquay_box(L, (lquay_free_fn)quay_writer_free);
    if (top == 3) {
      LModel *pPv;
      int iPv;
      if (lua_type(L, 3) != LUA_TTABLE || lquay_record_model(L, 3)) {
        lquay_raisef(L, QUAY_EMISUSE, "%s.%s:set: the through values must "
                     "be a table", model_name(pM), r.zName);
      }
      lquay_push_model(L, pM->pDb, r.pPivot);
      pPv = lquay_ready(L, lua_touserdata(L, -1));
      lquay_new_record(L, lua_gettop(L), 3);         /* validates names */
      iPv = lua_gettop(L);
      lua_getmetatable(L, iPv);
      dyn_defaults(L, iPv, pPv, lua_gettop(L));
      rc = quay_writer_new(pDb->db, r.pPivot, (quay_writer **)&pBox->p, &err);
      if (rc) lquay_raise(L, &err);
      {
        int iNames = push_names(L, lua_gettop(L),
                                quay_model_field_count(r.pPivot));
        fill_writer(L, iPv, pPv, pBox->p, iNames, NULL, NULL);
      }
    }
    rc = quay_m2m_write(pDb->db, pM->m, j, &key, QUAY_M2M_SET, aKey, n,
                        pBox->p, &err);
    lquay_box_close(L, pBox);
  }
  if (rc) lquay_fail(L, pDb, &err);
  set_invalidate(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* set:contains(rec): a record of another model than the set's is refused
** (validation, as add and remove do), loaded or not; anything but one
** record (nil, a key, a second argument) is misuse, as add's arguments. */
static int set_contains(lua_State *L) {
  lua_Integer i, n;
  {
    int j;
    quay_rel_info r;
    int nArg = lua_gettop(L);
    const char *zGot = nArg < 2 ? "no argument" : luaL_typename(L, 2);
    LModel *pT = nArg < 2 ? NULL : lquay_record_model(L, 2);
    LModel *pM = set_owner(L, 1, &j, &r);             /* [.., owner] */
    if (pT == NULL || nArg > 2) {
      lquay_raisef(L, QUAY_EMISUSE, "%s.%s:contains: give one %s record, "
                   "not %s%s", model_name(pM), r.zName,
                   quay_model_name(r.pTarget), pT == NULL && nArg >= 2 ? "a " : "",
                   nArg > 2 ? "more than one argument" : zGot);
    }
    lquay_check_record_db(L, pT, pM, r.zName);  /* another db's raises */
    if (pT->m != r.pTarget) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r.zName,
                        "%s.%s:contains: expected a %s record, got a %s "
                        "record", model_name(pM), r.zName,
                        quay_model_name(r.pTarget), model_name(pT));
    }
    lua_settop(L, 2);
  }
  lua_pushboolean(L, lquay_set_loaded(L, 1));
  if (lua_toboolean(L, -1)) {
    n = (lua_Integer)lua_rawlen(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      if (lua_compare(L, -1, 2, LUA_OPEQ)) {
        lua_pushboolean(L, 1);
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pop(L, 1);
  {
    LModel *pT = lquay_record_model(L, 2);
    quay_field_info pk;
    quay_model_field(pT->m, quay_model_pk(pT->m), &pk);
    push_qs_method(L, 1, "filter");                  /* [.., fn, qs] */
    lua_createtable(L, 0, 1);
    lua_getfield(L, 2, pk.zName);
    if (lua_isnil(L, -1)) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_setfield(L, -2, pk.zName);
    lua_call(L, 2, 1);
    lua_getfield(L, -1, "exists");
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    return 1;
  }
}

/* Does zName name field iKey of model m, or a to-one relation whose key
** column it is? */
static int names_set_key(lua_State *L, quay_model *m, const char *zName,
                         int iKey) {
  int k, t = quay_model_member(m, zName, &k);
  (void)L;
  if (t == QUAY_M_FIELD) return k == iKey;
  if (t == QUAY_M_RELATION) {
    quay_rel_info r;
    quay_model_relation(m, k, &r);
    return !r.toMany && r.iFkField == iKey;
  }
  return 0;
}

/* Is the value at idx the owner at iOwner (a pM record) or its key
** iOwnerKey? */
static int is_owner_value(lua_State *L, int idx, int iOwner, LModel *pM,
                          int iOwnerKey) {
  int same;
  LModel *pV = lquay_record_model(L, idx);
  if (pV) {
    if (pV->m != pM->m) return 0;
    get_field(L, idx, pV, iOwnerKey);
  } else {
    lua_pushvalue(L, idx);
  }
  get_field(L, iOwner, pM, iOwnerKey);
  same = !lua_isnil(L, -1) && lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* set:create(values) */
static int set_create(lua_State *L) {
  int j;
  quay_rel_info r;
  LModel *pM;
  if (!lua_isnoneornil(L, 2)) lquay_check_type(L, 2, LUA_TTABLE, "create");
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) {
    lua_newtable(L);
    lua_replace(L, 2);
  }
  pM = set_owner(L, 1, &j, &r);                      /* [set, vals, owner] */
  check_writable_set(L, pM, &r);
  lquay_push_model(L, pM->pDb, r.pTarget);           /* [.., T] */
  if (!is_m2m(&r)) {
    quay_field_info fk;
    /* Copy the values and point the key column at the owner. */
    quay_model_field(r.pTarget, r.iTargetKey, &fk);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) == LUA_TSTRING &&
          names_set_key(L, r.pTarget, lua_tostring(L, -2), r.iTargetKey)) {
        /* The set gives the key: the same owner again is fine, another
        ** one is never silently replaced. */
        if (!is_owner_value(L, lua_gettop(L), 3, pM, r.iOwnerKey)) {
          lquay_raisef(L, QUAY_EMISUSE, "%s.%s:create: '%s' is set by the "
                       "set (its owner, %s); leave it out, or create "
                       "through %s:create", model_name(pM), r.zName,
                       lua_tostring(L, -2), model_name(pM),
                       quay_model_name(r.pTarget));
        }
        lua_pop(L, 1);
        continue;
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
    get_field(L, 3, pM, r.iOwnerKey);
    lua_setfield(L, -2, fk.zName);                   /* [.., T, vals2] */
    lua_getfield(L, -2, "create");
    lua_insert(L, -3);
    lua_call(L, 2, 1);                               /* [.., rec] */
    set_invalidate(L, 1);
    return 1;
  }
  lua_getfield(L, -1, "create");
  lua_insert(L, -2);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);                                 /* [.., rec] */
  lua_getfield(L, 1, "add");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 0);
  return 1;
}

/* set:all(), set:count(), set:first(): from the cache when loaded. */
static int set_all(lua_State *L) {
  if (lquay_set_loaded(L, 1)) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      lua_rawseti(L, -2, i);
    }
    return 1;
  }
  lua_settop(L, 1);
  push_qs_method(L, 1, "all");
  lua_call(L, 1, 1);
  return 1;
}

static int set_count(lua_State *L) {
  if (lquay_set_loaded(L, 1)) {
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
    return 1;
  }
  lua_settop(L, 1);
  push_qs_method(L, 1, "count");
  lua_call(L, 1, 1);
  return 1;
}

/* Any other method: the scoped query set's. */
static int set_proxy(lua_State *L) {
  int n = lua_gettop(L);
  set_qs(L, 1);                                      /* [set, args.., qs] */
  lua_replace(L, 1);                                 /* [qs, args..] */
  lua_getfield(L, 1, lua_tostring(L, lua_upvalueindex(1)));
  lua_insert(L, 1);                                  /* [fn, qs, args..] */
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static const luaL_Reg aSetMethod[] = {
  {"add", set_add},
  {"remove", set_remove},
  {"clear", set_clear},
  {"set", set_set},
  {"contains", set_contains},
  {"create", set_create},
  {"all", set_all},
  {"count", set_count},
  {NULL, NULL}
};

static int set_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    set_load(L, 1);
    lua_rawget(L, 1);
    return 1;
  }
  if (lua_type(L, 2) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, set_proxy, 1);
  return 1;
}

static int set_tostring(lua_State *L) {
  lua_pushfstring(L, "quay.Set(%s)", lquay_set_loaded(L, 1) ? "loaded"
                                                             : "not loaded");
  return 1;
}

/*
** Method guards: a method of a record or set of a closed db raises
** `connection` before any check of its own (reference.md).  Each method is
** registered as a guard closure over the real function (upvalue 1),
** which it calls on the same stack; a first argument that is no record
** (no set) is left to the method to refuse.
*/
static int rec_guard(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  if (pM) lquay_check_open(L, pM->pDb);
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

static int set_guard(lua_State *L) {
  if (lquay_is_set(L, 1)) {
    LModel *pM;
    lua_rawgetp(L, 1, &lquay_LK_OWNER);              /* [.., owner] */
    pM = lquay_record_model(L, -1);
    lua_pop(L, 1);
    if (pM) lquay_check_open(L, pM->pDb);
  }
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* Push a table of the methods of a, each behind xGuard. */
static void guarded_lib(lua_State *L, const luaL_Reg *a, lua_CFunction xGuard) {
  lua_newtable(L);                                   /* [t] */
  for (; a->name; a++) {
    lua_pushcfunction(L, a->func);
    lua_pushcclosure(L, xGuard, 1);
    lua_setfield(L, -2, a->name);
  }
}

void lquay_open_record(lua_State *L) {
  /* Record methods shared by every model, kept on the Model metatable. */
  luaL_getmetatable(L, QUAY_MODEL_MT);
  guarded_lib(L, aRecMethod, rec_guard);
  lua_rawsetp(L, -2, &lquay_LK_RECMETHODS);
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_SNAP_MT);
  lua_pushcfunction(L, snap_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, QUAY_SET_MT);
  guarded_lib(L, aSetMethod, set_guard);
  lua_pushcclosure(L, set_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, set_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, set_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "quay.Set");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
/* }================================================================== */
