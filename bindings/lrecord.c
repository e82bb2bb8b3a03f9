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
**   RELKEY(i)   relation i's cached value: a record, false (none) or a set
**   LK_PIVOT    the pivot record, for records loaded through a custom
**               many-to-many set
**
** A related set is a plain table too: its array part holds the loaded
** records (so #, [i] and ipairs are raw once loaded) and its metatable
** gives every query-set method, scoped to the owner, plus the set writes.
*/
#include "lquay.h"

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

/* Push the value of relation j of the record at iRec.  iNames (0 when not
** at hand) is the model's field-name array. */
static int rel_get(lua_State *L, int iRec, LModel *pM, int j,
                   const char *zName, int iNames) {
  quay_rel_info r;
  lua_rawgetp(L, iRec, LQUAY_RELKEY(j));             /* [.., cached] */
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
  if (lua_toboolean(L, -1) == 0) {
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
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "pivot") == 0) {
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
** Creating and saving
** ===================================================================
*/
/*
** Push a new (unsaved) record of the Model at iModel with the values of
** the table at iValues (may be nil).
*/
int lquay_new_record(lua_State *L, int iModel, int iValues) {
  LModel *pM = lua_touserdata(L, iModel);
  int iRec, iMt;
  iModel = lua_absindex(L, iModel);
  iValues = lua_absindex(L, iValues);
  lua_getiuservalue(L, iModel, 2);                   /* [.., mt] */
  iMt = lua_gettop(L);
  lua_createtable(L, 0, quay_model_field_count(pM->m) + 1);
  iRec = lua_gettop(L);
  lua_pushvalue(L, iMt);
  lua_setmetatable(L, iRec);
  if (lua_type(L, iValues) == LUA_TTABLE) {
    luaL_checkstack(L, 6, "values");
    lua_rawgetp(L, iMt, &lquay_LK_MEMBERS);          /* [.., mt, rec, mem] */
    lua_pushnil(L);
    while (lua_next(L, iValues)) {                   /* [.., mem, k, v] */
      lua_Integer code;
      lua_pushvalue(L, -2);
      if (lua_type(L, -1) != LUA_TSTRING ||
          lua_rawget(L, -4) != LUA_TNUMBER) {
        unknown(L, pM, -3);
      }
      code = lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (code > 0) {
        quay_field_info f;
        quay_model_field(pM->m, (int)code - 1, &f);
        lua_pushstring(L, f.zName);
        lua_pushvalue(L, -2);
        lua_rawset(L, iRec);
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
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_remove(L, iMt);                                /* [.., rec] */
  return 1;
}

/* Call function defaults for unset fields of a new record. */
static void dyn_defaults(lua_State *L, int iRec, LModel *pM, int iMt) {
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
    lua_call(L, 0, 1);                               /* [.., defs, v] */
    lua_pushstring(L, f.zName);
    lua_insert(L, -2);
    lua_rawset(L, iRec);
    lua_pop(L, 1);
  }
}

/*
** Fill writer w from the record at iRec.  bAll sets every field (update);
** else only fields present (insert).  aUser (may be NULL) gets 1 for
** fields the record gave a value.
*/
static void fill_writer(lua_State *L, int iRec, LModel *pM, quay_writer *w,
                        int bAll, unsigned char *aUser) {
  int i, n = quay_model_field_count(pM->m);
  quay_err err;
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_value v;
    int t;
    quay_model_field(pM->m, i, &f);
    lua_pushstring(L, f.zName);
    t = lua_rawget(L, iRec);                         /* [.., v] */
    if (aUser) aUser[i] = t != LUA_TNIL;
    if (t == LUA_TNIL && !bAll) {
      lua_pop(L, 1);
      continue;
    }
    if (t == LUA_TTABLE && lquay_record_model(L, -1) && f.iRel >= 0) {
      /* A record in a key column: its key. */
      quay_rel_info r;
      quay_field_info tk;
      lquay_check_record_db(L, lquay_record_model(L, -1), pM, f.zName);
      quay_model_relation(pM->m, f.iRel, &r);
      quay_model_field(r.pTarget, r.iTargetKey, &tk);
      lua_getfield(L, -1, tk.zName);
      lua_replace(L, -2);
    }
    if (lquay_to_field_value(L, -1, &v, 0, model_name(pM), f.zName) != 0) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), f.zName,
                        "%s.%s: a record is not a value for this field",
                        model_name(pM), f.zName);
    }
    /* The string stays referenced by the record while the writer copies. */
    if (quay_writer_set(w, i, &v, &err)) lquay_raise(L, &err);
    lua_pop(L, 1);
  }
}

/* After insert/update: copy the final values the engine computed. */
static void write_back(lua_State *L, int iRec, LModel *pM, quay_writer *w,
                       const unsigned char *aUser) {
  int i, n = quay_model_field_count(pM->m);
  int iPk = quay_model_pk(pM->m);
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_value v;
    quay_model_field(pM->m, i, &f);
    if (aUser && aUser[i] && i != iPk && f.eType != QUAY_T_NUMBER &&
        f.eType != QUAY_T_DATETIME) {
      /* Only normalize an explicit quay.null. */
      lua_pushstring(L, f.zName);
      if (lua_rawget(L, iRec) == LUA_TUSERDATA && lquay_is_null(L, -1)) {
        lua_pushstring(L, f.zName);
        lua_pushnil(L);
        lua_rawset(L, iRec);
      }
      lua_pop(L, 1);
      continue;
    }
    quay_writer_value(w, i, &v);
    lua_pushstring(L, f.zName);
    lquay_push_value(L, &v);
    lua_rawset(L, iRec);
  }
  {
    quay_value v;
    quay_writer_value(w, iPk, &v);
    lquay_push_value(L, &v);
    lua_rawsetp(L, iRec, &lquay_LK_PK);
  }
}

/* write_back for row k of a flushed batch. */
static void write_back_queued(lua_State *L, int iRec, LModel *pM,
                              quay_writer *w, int k,
                              const unsigned char *aUser) {
  int i, n = quay_model_field_count(pM->m);
  int iPk = quay_model_pk(pM->m);
  quay_value v;
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_model_field(pM->m, i, &f);
    if (aUser[i] && i != iPk && f.eType != QUAY_T_NUMBER &&
        f.eType != QUAY_T_DATETIME) {
      lua_pushstring(L, f.zName);
      if (lua_rawget(L, iRec) == LUA_TUSERDATA && lquay_is_null(L, -1)) {
        lua_pushstring(L, f.zName);
        lua_pushnil(L);
        lua_rawset(L, iRec);
      }
      lua_pop(L, 1);
      continue;
    }
    quay_writer_queued_value(w, k, i, &v);
    lua_pushstring(L, f.zName);
    lquay_push_value(L, &v);
    lua_rawset(L, iRec);
  }
  quay_writer_queued_value(w, k, iPk, &v);
  lquay_push_value(L, &v);
  lua_rawsetp(L, iRec, &lquay_LK_PK);
}

static void writer_free(void *p) { quay_writer_free(p); }

/* rec:save() for the record at iRec, without its model's save hooks. */
static void save_plain(lua_State *L, int iRec, void *pArg) {
  LModel *pM = lquay_record_model(L, iRec);
  LDb *pDb;
  quay_err err;
  Box *pBox;
  int iMt, persisted, n, rc;
  unsigned char *aUser;
  iRec = lua_absindex(L, iRec);
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
  pBox = lquay_box(L, writer_free);
  rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pBox->p, &err);
  if (rc) lquay_raise(L, &err);
  luaL_checkstack(L, 8, "save");
  fill_writer(L, iRec, pM, pBox->p, persisted, persisted ? NULL : aUser);
  if (pM->mBehav & LQUAY_B_VALIDATE) {
    lquay_behav_validate(L, pM, iRec, pBox->p, !persisted);
  }
  if (persisted) {
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
    write_back(L, iRec, pM, pBox->p, NULL);
  } else {
    rc = quay_writer_insert(pBox->p, &err);
    if (rc) {
      lquay_box_release(pBox);
      lquay_fail(L, pDb, &err);
    }
    write_back(L, iRec, pM, pBox->p, aUser);
  }
  lquay_box_close(L, pBox);
  lua_settop(L, iMt - 1);
  (void)pArg;
}

/* rec:save() for the record at iRec: with the model's save hooks around
** it when it declares any (lbehav.c). */
int lquay_save(lua_State *L, int iRec) {
  LModel *pM = lquay_record_model(L, iRec);
  if (pM && (pM->mBehav & LQUAY_B_SAVE_HOOKS)) {
    lquay_behav_save(L, iRec, pM, save_plain, NULL);
  } else {
    save_plain(L, iRec, NULL);
  }
  return 0;
}

static void txn_free(void *p) {
  quay_err err;
  quay_db_rollback((quay_db *)p, &err);
}

/* Model:bulk_create(list) [M, list] */
int lquay_bulk_create(lua_State *L, int iModel, int iList) {
  LModel *pM = lua_touserdata(L, iModel);
  LDb *pDb = lquay_enter(L, pM->pDb);
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, iList);
  int iRes, iMt, nField = quay_model_field_count(pM->m), rc;
  quay_err err;
  Box *pW, *pTxn;
  unsigned char *aUser;
  lua_getiuservalue(L, iModel, 2);
  iMt = lua_gettop(L);
  lua_createtable(L, (int)n, 0);                     /* [.., mt, res] */
  iRes = lua_gettop(L);
  lquay_push_result_mt(L, iMt, iRes);                /* [.., res, rmt] */
  /* Lua work first: records and function defaults. */
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, iList, i);
    if (lua_type(L, -1) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EVALIDATION, "bulk_create: item %d is not a table",
                   (int)i);
    }
    lquay_new_record(L, iModel, -1);                 /* [.., item, rec] */
    dyn_defaults(L, lua_gettop(L), pM, iMt);
    lua_pushvalue(L, iRes + 1);
    lua_setmetatable(L, -2);                         /* the result's mt */
    lua_rawseti(L, iRes, i);
    lua_pop(L, 1);
  }
  aUser = lua_newuserdatauv(L, (size_t)nField + 1, 0);
  pW = lquay_box(L, writer_free);
  pTxn = lquay_box(L, txn_free);
  rc = quay_writer_new(pDb->db, pM->m, (quay_writer **)&pW->p, &err);
  if (rc) lquay_raise(L, &err);
  if (n > 0) {
    rc = quay_db_begin(pDb->db, &err);
    if (rc) {
      lquay_box_release(pW);
      lquay_fail(L, pDb, &err);
    }
    pTxn->p = pDb->db;
  }
  luaL_checkstack(L, 8, "bulk_create");
  if (quay_writer_batch(pW->p) <= 1) {
    /* One prepared INSERT stepped per row (SQLite's fastest form). */
    for (i = 1; i <= n; i++) {
      int iRec;
      lua_rawgeti(L, iRes, i);
      iRec = lua_gettop(L);
      quay_writer_reset(pW->p);
      if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
        lquay_behav_hook(L, pM, iRec, "before_save", 1);
      }
      fill_writer(L, iRec, pM, pW->p, 0, aUser);
      if (pM->mBehav & LQUAY_B_VALIDATE) {
        lquay_behav_validate(L, pM, iRec, pW->p, 1);
      }
      rc = quay_writer_insert(pW->p, &err);
      if (rc) {
        lquay_box_release(pW);
        lquay_box_release(pTxn);                     /* rolls back */
        lquay_fail(L, pDb, &err);
      }
      write_back(L, iRec, pM, pW->p, aUser);
      if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
        lquay_behav_hook(L, pM, iRec, "after_save", 1);
      }
      lua_pop(L, 1);
    }
  } else {
    /* Multi-row INSERTs of quay_writer_batch rows (PostgreSQL). */
    int nBatch = quay_writer_batch(pW->p);
    unsigned char *aUsers = lua_newuserdatauv(L, (size_t)nBatch *
                                                   (size_t)(nField + 1), 0);
    lua_Integer iFirst = 1;
    for (i = 1; i <= n; i++) {
      int iRec, k;
      lua_rawgeti(L, iRes, i);
      iRec = lua_gettop(L);
      quay_writer_reset(pW->p);
      if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
        lquay_behav_hook(L, pM, iRec, "before_save", 1);
      }
      fill_writer(L, iRec, pM, pW->p, 0,
                  aUsers + (size_t)(i - iFirst) * (size_t)(nField + 1));
      if (pM->mBehav & LQUAY_B_VALIDATE) {
        lquay_behav_validate(L, pM, iRec, pW->p, 1);
      }
      rc = quay_writer_queue(pW->p, &err);
      lua_pop(L, 1);
      if (rc == QUAY_OK && (i - iFirst + 1 == nBatch || i == n)) {
        rc = quay_writer_flush(pW->p, &err);
        for (k = 0; rc == QUAY_OK && k <= (int)(i - iFirst); k++) {
          lua_rawgeti(L, iRes, iFirst + k);
          write_back_queued(L, lua_gettop(L), pM, pW->p, k,
                            aUsers + (size_t)k * (size_t)(nField + 1));
          if (pM->mBehav & LQUAY_B_SAVE_HOOKS) {
            lquay_behav_hook(L, pM, lua_gettop(L), "after_save", 1);
          }
          lua_pop(L, 1);
        }
        iFirst = i + 1;
      }
      if (rc) {
        lquay_box_release(pW);
        lquay_box_release(pTxn);                     /* rolls back */
        lquay_fail(L, pDb, &err);
      }
    }
  }
  if (pTxn->p) {
    pTxn->p = NULL;
    rc = quay_db_commit(pDb->db, &err);
    if (rc) {
      lquay_box_release(pW);
      lquay_fail(L, pDb, &err);
    }
  }
  lquay_box_close(L, pW);                            /* and pTxn */
  lua_settop(L, iRes);
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Record methods
** ===================================================================
*/
static int rec_save(lua_State *L) {
  if (lquay_record_model(L, 1) == NULL) {
    lquay_raisef(L, QUAY_EMISUSE, "call rec:save() with a colon (save got "
                 "a %s, not a record)", luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  lquay_save(L, 1);
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
  int mFlags = lquay_delete_opts(L, 2, "delete"), rc;
  const char *zSoft;
  if (pM == NULL) lquay_raisef(L, QUAY_EMISUSE, "delete: not a record");
  pDb = lquay_enter(L, pM->pDb);
  lquay_ready(L, pM);
  lua_settop(L, 2);
  lua_rawgetp(L, 1, &lquay_LK_PK);                   /* [rec, opts, pk] */
  if (lua_isnil(L, 3)) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s(new) was never saved; there is "
                 "nothing to delete", model_name(pM));
  }
  lquay_to_value(L, 3, &k, 0, "key");
  lquay_behav_delete_begin(L, pDb, &call, 1, pM->m);
  pBox = lquay_box(L, counts_free);
  rc = quay_delete_keys(pDb->db, pM->m, &k, 1, (unsigned)mFlags,
                        (quay_counts **)&pBox->p, &err);
  lquay_behav_delete_end(L, pDb, &call);
  if (rc) lquay_fail(L, pDb, &err);
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
  lua_settop(L, 1);
  lua_rawgetp(L, 1, &lquay_LK_PK);                   /* [rec, pk] */
  if (lua_isnil(L, 2)) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s(new) was never saved; there is "
                 "nothing to refresh", model_name(pM));
  }
  lua_getmetatable(L, 1);
  lua_rawgetp(L, -1, &lquay_LK_MODEL);               /* [rec, pk, mt, M] */
  lua_getfield(L, 4, "find");
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);                                 /* [.., fresh] */
  if (lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_ENOT_FOUND, "%s %s no longer exists",
                 model_name(pM), luaL_tolstring(L, 2, NULL));
  }
  n = quay_model_field_count(pM->m);
  for (i = 0; i < n; i++) {
    get_field(L, 5, pM, i);
    set_field(L, 1, pM, i);
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
  lua_getfield(L, -1, "\1recmethods");               /* shared methods */
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
  int j;
  quay_rel_info r;
  LModel *pM;
  if (lquay_set_loaded(L, idx)) return;
  pM = set_owner(L, idx, &j, &r);                    /* [.., owner] */
  lquay_lazy_load(L, lua_gettop(L), pM, j, r.zName);
  if (!lquay_set_loaded(L, idx)) lquay_set_mark(L, idx, lua_gettop(L), j, 1);
  lua_pop(L, 1);
}

/* Forget the loaded rows (after a write through the set). */
static void set_invalidate(lua_State *L, int idx) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  int j;
  idx = lua_absindex(L, idx);
  for (i = n; i >= 1; i--) {
    lua_pushnil(L);
    lua_rawseti(L, idx, i);
  }
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
** Target keys of records passed to add/remove: args from..to, pushed as a
** value array (scratch userdata).
*/
static quay_value *target_keys(lua_State *L, int from, int to, LModel *pM,
                               const quay_rel_info *r, int *pn) {
  int i, n = to - from + 1;
  quay_value *a = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)(n + 1), 0);
  quay_field_info tk;
  /* Many-to-many rows are named by their join key; reverse-FK rows by
  ** their primary key. */
  int iKey = is_m2m(r) ? r->iTargetKey : quay_model_pk(r->pTarget);
  quay_model_field(r->pTarget, iKey, &tk);
  for (i = 0; i < n; i++) {
    LModel *pT = lquay_record_model(L, from + i);
    if (pT) lquay_check_record_db(L, pT, pM, r->zName);
    if (pT == NULL || pT->m != r->pTarget) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r->zName,
                        "%s.%s: expected %s records",
                        model_name(pM), r->zName, quay_model_name(r->pTarget));
    }
    lua_getfield(L, from + i, tk.zName);
    if (lua_isnil(L, -1)) {
      lquay_raise_field(L, QUAY_EVALIDATION, model_name(pM), r->zName,
                        "%s.%s: the %s record is not saved",
                        model_name(pM), r->zName, quay_model_name(r->pTarget));
    }
    lquay_to_value(L, -1, &a[i], 0, "key");
    lua_pop(L, 1);                      /* the record keeps the string */
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
      lquay_record_model(L, top) == NULL) {
    last = top - 1;                                  /* through values */
  }
  aKey = target_keys(L, 2, last, pM, &r, &nKey);
  n = nKey;
  if (is_m2m(&r)) {
    Box *pBox = lquay_box(L, (lquay_free_fn)quay_writer_free);
    if (last != top) {
      /* Pivot values: a writer of the through model. */
      LModel *pPv;
      int iPv;
      if (!r.hasPivot) {
        lquay_raisef(L, QUAY_EVALIDATION, "%s.%s has no through model; "
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
      fill_writer(L, iPv, pPv, pBox->p, 0, NULL);
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
  LModel *pM = set_owner(L, 1, &j, &r);
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

/* set:set(list) */
static int set_set(lua_State *L) {
  int j, rc, n;
  quay_rel_info r;
  quay_value key, *aKey;
  quay_err err;
  LModel *pM;
  LDb *pDb;
  lua_Integer i, nList;
  if (lua_type(L, 2) != LUA_TTABLE) {
    lquay_arg_error(L, 2, "set", "a list of records");
  }
  lua_settop(L, 2);
  pM = set_owner(L, 1, &j, &r);                      /* [set, list, owner] */
  pDb = lquay_enter(L, pM->pDb);
  check_writable_set(L, pM, &r);
  nList = (lua_Integer)lua_rawlen(L, 2);
  luaL_checkstack(L, (int)nList + 8, "set");
  for (i = 1; i <= nList; i++) lua_rawgeti(L, 2, i);
  if (!is_m2m(&r)) {
    /* Reverse foreign key: clear, then add. */
    int base = 3;
    lua_getfield(L, 1, "clear");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    lua_getfield(L, 1, "add");
    lua_insert(L, base + 1);
    lua_pushvalue(L, 1);
    lua_insert(L, base + 2);
    lua_call(L, (int)nList + 1, 0);
    lua_settop(L, 1);
    return 1;
  }
  owner_key(L, pM, &r, 3, &key);                     /* key pushed last */
  lua_insert(L, 4);
  aKey = target_keys(L, 5, 4 + (int)nList, pM, &r, &n);
  rc = quay_m2m_write(pDb->db, pM->m, j, &key, QUAY_M2M_SET, aKey, n, NULL,
                      &err);
  if (rc) lquay_fail(L, pDb, &err);
  set_invalidate(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* set:contains(rec) */
static int set_contains(lua_State *L) {
  lua_Integer i, n;
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
    if (pT == NULL) lquay_raisef(L, QUAY_EVALIDATION, "contains: expected a record");
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
** `connection` before any check of its own (API.md).  Each method is
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
  lua_setfield(L, -2, "\1recmethods");
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
