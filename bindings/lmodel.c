/*
** bindings/lmodel.c
** Models: declaration from Lua specs, the record metatable, model methods.
** See LICENSE
**
** db:model(name, spec) reads every key of spec.  A descriptor (made by
** quay.string, quay.belongs_to, ...) declares a field or relation; any
** other key must be a model option (table, description, unique_together).
** All Lua-side checks run before the engine is touched; the engine's own
** checks run next, and if any fails the half-declared model is discarded
** (a box owns it until the declaration commits), so a failed db:model
** leaves nothing behind.
**
** Each model has one record metatable.  Its __index/__newindex are C
** closures whose first upvalue is the model's member map (name -> field
** index + 1, or -(relation index + 1)); the map is rebuilt in place when a
** resolve changes the schema (lquay_ready), e.g. when a has_many added a
** key column to this model.
*/
#include "lquay.h"

#include <math.h>
#include <string.h>

/* Record method names a field or relation may not take. */
static const char *const azReserved[] = {
  "save", "delete", "refresh", "to_table", "changed", NULL
};

/* The Model at idx, usable: connection when its db is freed or closed,
** declaration when a later declaration replaced it. */
static LModel *usable_model(lua_State *L, LModel *pM) {
  if (pM->pDb->db == NULL) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a closed database "
                 "(it was collected)");
  }
  lquay_check_open(L, pM->pDb);
  if (pM->m == NULL) {
    lquay_raisef(L, QUAY_EDECLARATION, "this model's declaration failed and "
                 "the model was declared again: use the Model the new "
                 "db:model call returned");
  }
  return pM;
}

LModel *lquay_check_model(lua_State *L, int idx) {
  return usable_model(L, lquay_check_self(L, idx, QUAY_MODEL_MT, "Model",
                                          NULL));
}

/*
** Push the state table of a db (registry "quay.dbstates", weak values,
** keyed by the LDb pointer; the Db userdata holds it strongly).
*/
void lquay_push_state(lua_State *L, LDb *pDb) {
  lua_getfield(L, LUA_REGISTRYINDEX, "quay.dbstates");   /* [states] */
  lua_rawgetp(L, -1, pDb);                                /* [states, st] */
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_ECONNECTION, "attempt to use a freed database");
  }
}

/* Push the Model userdata of m. */
void lquay_push_model(lua_State *L, LDb *pDb, quay_model *m) {
  lquay_push_state(L, pDb);                               /* [st] */
  lua_getfield(L, -1, "models");                          /* [st, models] */
  lua_getfield(L, -1, quay_model_name(m));                /* [st, ms, M] */
  lua_replace(L, -3);
  lua_pop(L, 1);                                          /* [M] */
  if (lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s has no Lua object",
                 quay_model_name(m));
  }
}

/*
** Push the record metatable of model m, with its maps current.
*/
void lquay_push_mt(lua_State *L, LDb *pDb, quay_model *m) {
  LModel *pM;
  lquay_push_model(L, pDb, m);                            /* [M] */
  pM = lua_touserdata(L, -1);
  lquay_ready(L, pM);
  lua_getiuservalue(L, -1, 2);                            /* [M, mt] */
  lua_remove(L, -2);                                      /* [mt] */
}

/*
** Rebuild the member map and field names of a model, in the existing
** tables, so the closures that hold them see the change.
*/
static void rebuild(lua_State *L, LModel *pM) {
  quay_model *m = pM->m;
  int i, n;
  lquay_push_model(L, pM->pDb, m);                   /* [M] */
  lua_getiuservalue(L, -1, 2);                       /* [M, mt] */
  lua_rawgetp(L, -1, &lquay_LK_MEMBERS);             /* [M, mt, members] */
  lua_rawgetp(L, -2, &lquay_LK_NAMES);               /* [.., members, names] */
  n = quay_model_field_count(m);
  for (i = 0; i < n; i++) {
    quay_field_info f;
    quay_model_field(m, i, &f);
    lua_pushstring(L, f.zName);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i + 1);                       /* names[i+1] = name */
    lua_pushinteger(L, i + 1);
    lua_rawset(L, -4);                               /* members[name] */
    if (strcmp(f.zName, f.zColumn) != 0) {
      lua_pushstring(L, f.zColumn);
      lua_pushinteger(L, i + 1);
      lua_rawset(L, -4);
    }
  }
  n = quay_model_relation_count(m);
  {
    /* Relation facts for the record accessors (userdata kept by the mt). */
    LRelFast *a = lua_newuserdatauv(L, sizeof(LRelFast) * (size_t)(n + 1), 0);
    lua_rawsetp(L, -4, &lquay_LK_FAST);              /* mt[LK_FAST] = a */
    for (i = 0; i < n; i++) {
      quay_rel_info r;
      quay_model_relation(m, i, &r);
      a[i].toMany = (unsigned char)r.toMany;
      a[i].writable = (unsigned char)r.writable;
      a[i].iFk = r.iFkField;
      a[i].keyIsPk = r.pTarget && r.iTargetKey == quay_model_pk(r.pTarget);
    }
    pM->aFast = a;
    pM->nFast = n;
  }
  for (i = 0; i < n; i++) {
    quay_rel_info r;
    int k;
    quay_model_relation(m, i, &r);
    if (quay_model_member(m, r.zName, &k) != QUAY_M_RELATION || k != i) {
      continue;                                      /* hidden reverse */
    }
    lua_pushstring(L, r.zName);
    lua_pushinteger(L, -(i + 1));
    lua_rawset(L, -4);
  }
  lquay_behav_recheck(L, pM, lua_gettop(L) - 2);     /* [M, mt, mem, names] */
  lua_pop(L, 4);
  pM->iVersion = quay_db_schema_version(pM->pDb->db);
}

/*
** Make sure the schema is resolved and the model's maps are current.
** Raises declaration errors.
*/
LModel *lquay_ready(lua_State *L, LModel *pM) {
  quay_err err;
  usable_model(L, pM);                  /* closed: before any other check */
  if (quay_db_resolve(pM->pDb->db, &err)) lquay_raise(L, &err);
  if (pM->iVersion != quay_db_schema_version(pM->pDb->db)) rebuild(L, pM);
  return pM;
}

/*
** {==================================================================
** Declaration
** ===================================================================
*/
typedef struct Opt {
  const char *zName;
  int eType;                /* LUA_T* expected, or -1 any */
} Opt;

static const char *const azRelKind[] = {
  "belongs_to", "one_to_one", "many_to_many", "has_many", "has_one",
  "through", NULL
};

static const char *const azFieldOpt[] = {
  "null", "default", "unique", "index", "column", "primary_key",
  "description", "max", "auto_now_add", "auto_now", "digits", "places",
  "renamed_from", "choices", "min", "validate", NULL
};

static const char *const azRelOpt[] = {
  "column", "to_field", "null", "on_delete", "on_update", "related_name",
  "skip_reverse", "index", "unique", "description", "default", "table",
  "source_key", "target_key", "through", "foreign_key", "local_key",
  "renamed_from", NULL
};

static int in_list(const char *const *az, const char *z) {
  int i;
  for (i = 0; az[i]; i++) {
    if (strcmp(az[i], z) == 0) return i;
  }
  return -1;
}

static int is_desc(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, QUAY_DESC_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* Optional string option; NULL when absent.  Raises on a wrong type. */
static const char *opt_str(lua_State *L, int iOpts, const char *zKey,
                           const char *zModel, const char *zName) {
  const char *z;
  lquay_opt_get(L, iOpts, zKey);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: option %s must be a "
                 "string", zModel, zName, zKey);
  }
  z = lquay_name(L, -1, QUAY_EDECLARATION, zKey);
  lua_pop(L, 1);                    /* still referenced by the options */
  return z;
}

static int opt_bool(lua_State *L, int iOpts, const char *zKey,
                    const char *zModel, const char *zName, int dflt) {
  int b;
  lquay_opt_get(L, iOpts, zKey);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  if (lua_type(L, -1) != LUA_TBOOLEAN) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: option %s must be true "
                 "or false", zModel, zName, zKey);
  }
  b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

static int opt_rule(lua_State *L, int iOpts, const char *zKey,
                    const char *zModel, const char *zName) {
  lua_Integer v;
  lquay_opt_get(L, iOpts, zKey);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < QUAY_CASCADE ||
      v > QUAY_NO_ACTION) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: %s must be quay.CASCADE,"
                 " SET_NULL, SET_DEFAULT, RESTRICT, PROTECT or NO_ACTION",
                 zModel, zName, zKey);
  }
  lua_pop(L, 1);
  return (int)v;
}

/* Check every option name of a descriptor against its list. */
static void check_opts(lua_State *L, int iOpts, const char *const *azOk,
                       const char *zModel, const char *zName) {
  lua_pushnil(L);
  while (lua_next(L, iOpts)) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        in_list(azOk, lua_tostring(L, -2)) < 0) {
      lquay_raisef(L, QUAY_EDECLARATION,
                   "model %s: %s: unknown option '%s'", zModel, zName,
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                  : "?");
    }
    lua_pop(L, 1);
  }
}

/*
** The descriptor's kind string desc[zKey] as an index into azList (raises
** "unknown <zWhat>" when it is not there) and its declaration order.
*/
static int read_kind(lua_State *L, int iDesc, const char *zKey,
                     const char *const *azList, const char *zModel,
                     const char *zName, const char *zWhat, double *prSeq) {
  const char *z;
  int k;
  lua_getfield(L, iDesc, zKey);
  z = lua_tostring(L, -1);
  k = z ? in_list(azList, z) : -1;
  lua_pop(L, 1);
  if (k < 0) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: unknown %s", zModel,
                 zName, zWhat);
  }
  lua_getfield(L, iDesc, "seq");
  *prSeq = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return k;
}

/* The descriptor's field type (the engine's type table knows the names)
** and its declaration order. */
static int read_type(lua_State *L, int iDesc, const char *zModel,
                     const char *zName, double *prSeq) {
  const char *z;
  int eType;
  lua_getfield(L, iDesc, "type");
  z = lua_tostring(L, -1);
  eType = quay_type_by_name(z);
  lua_pop(L, 1);
  if (eType == 0) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: unknown field type",
                 zModel, zName);
  }
  lua_getfield(L, iDesc, "seq");
  *prSeq = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return eType;
}

/* Optional integer option in [nMin, nMax]; -1 when absent. */
static int opt_int(lua_State *L, int iOpts, const char *zKey, int nMin,
                   int nMax, const char *zModel, const char *zName) {
  lua_Integer n;
  lquay_opt_get(L, iOpts, zKey);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return -1;
  }
  if (!lua_isinteger(L, -1) || (n = lua_tointeger(L, -1)) < nMin ||
      n > nMax) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: %s must be an integer "
                 "from %d to %d", zModel, zName, zKey, nMin, nMax);
  }
  lua_pop(L, 1);
  return (int)n;
}

/* Push the descriptor's options table (an empty one when it has none),
** checked against the allowed names; returns its stack index. */
static int push_opts(lua_State *L, int iDesc, const char *const *azAllowed,
                     const char *zModel, const char *zName) {
  int iOpts;
  lua_getfield(L, iDesc, "options");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  luaL_checkstack(L, 6, "declaration");
  iOpts = lua_gettop(L);
  check_opts(L, iOpts, azAllowed, zModel, zName);
  return iOpts;
}

/*
** Read a field descriptor (at iDesc) into spec.  A function default is
** stored in iDefaults[name].  Values point into the descriptor's strings.
*/
static void read_field(lua_State *L, int iDesc, const char *zModel,
                       const char *zName, quay_field_spec *s, int iDefaults) {
  int iOpts;
  memset(s, 0, sizeof(*s));
  s->zName = zName;
  s->eType = read_type(L, iDesc, zModel, zName, &s->rSeq);
  iOpts = push_opts(L, iDesc, azFieldOpt, zModel, zName);
  if (opt_bool(L, iOpts, "null", zModel, zName, 0)) s->mFlags |= QUAY_F_NULL;
  if (opt_bool(L, iOpts, "unique", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_UNIQUE;
  }
  if (opt_bool(L, iOpts, "index", zModel, zName, 0)) s->mFlags |= QUAY_F_INDEX;
  if (opt_bool(L, iOpts, "primary_key", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_PK;
  }
  if (opt_bool(L, iOpts, "auto_now_add", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_AUTO_NOW_ADD;
  }
  if (opt_bool(L, iOpts, "auto_now", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_AUTO_NOW;
  }
  s->zColumn = opt_str(L, iOpts, "column", zModel, zName);
  s->zDescription = opt_str(L, iOpts, "description", zModel, zName);
  s->zRenamedFrom = opt_str(L, iOpts, "renamed_from", zModel, zName);
  lquay_opt_get(L, iOpts, "max");
  if (!lua_isnil(L, -1) && lquay_behav_is_length(s->eType)) {
    lua_Integer n;
    if (!lua_isinteger(L, -1) || (n = lua_tointeger(L, -1)) < 1 ||
        n > 1000000000) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: max must be a "
                   "positive integer", zModel, zName);
    }
    s->nMax = (int)n;
  }
  lua_pop(L, 1);
  s->nDigits = opt_int(L, iOpts, "digits", 1, 18, zModel, zName);
  s->nPlaces = opt_int(L, iOpts, "places", 0, 18, zModel, zName);
  if ((quay_type_flags(s->eType) & QUAY_TF_PRECISION) &&
      (s->nDigits < 0 || s->nPlaces < 0)) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: quay.decimal needs "
                 "digits and places (quay.decimal { digits = 10, places = 2 "
                 "})", zModel, zName);
  }
  if (s->nDigits < 0) s->nDigits = 0;
  if (s->nPlaces < 0) s->nPlaces = 0;
  lquay_opt_get(L, iOpts, "default");
  if (lua_isfunction(L, -1)) {
    s->mFlags |= QUAY_F_DYN_DEFAULT;
    lua_setfield(L, iDefaults, zName);
  } else if (!lua_isnil(L, -1)) {
    int nPushed;
    s->mFlags |= QUAY_F_DEFAULT;
    /* A table is a JSON document (quay.json); it is encoded into a
    ** buffer pushed above it. */
    nPushed = lquay_to_field_value(L, -1, &s->dflt, 0, zModel, zName);
    if (s->dflt.type == QUAY_RECORD) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: default must be a "
                   "value or a function", zModel, zName);
    }
    if (nPushed) {
      lua_rawsetp(L, iOpts, &lquay_LK_KEEP_JSON);   /* keep the buffer */
      lua_pop(L, nPushed - 1);
    }
    lua_rawsetp(L, iOpts, &lquay_LK_KEEP_DEFAULT);  /* keep the string */
  } else {
    lua_pop(L, 1);
  }
  lquay_behav_field_rules(L, iOpts, zModel, zName, s);  /* choices, min.. */
  /* options table stays on the stack: its strings are borrowed */
}

/* A relation target: a model name or a Model object. */
static const char *read_target(lua_State *L, int iDesc, const char *zModel,
                               const char *zName) {
  const char *z;
  lua_getfield(L, iDesc, "target");
  if (lua_type(L, -1) == LUA_TSTRING) {
    z = lquay_name(L, -1, QUAY_EDECLARATION, "a relation target");
  } else if (luaL_testudata(L, -1, QUAY_MODEL_MT)) {
    LModel *pM = lua_touserdata(L, -1);
    z = quay_model_name(pM->m);
  } else {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: the target must be a "
                 "model name or a model", zModel, zName);
    return NULL;
  }
  lua_rawsetp(L, iDesc, &lquay_LK_KEEP_TARGET);   /* keep alive */
  return z;
}

static void read_relation(lua_State *L, int iDesc, const char *zModel,
                          const char *zName, quay_rel_spec *s,
                          const char **azPath, int nPathMax) {
  int iOpts, k;
  memset(s, 0, sizeof(*s));
  s->zName = zName;
  k = read_kind(L, iDesc, "rel", azRelKind, zModel, zName, "relation kind",
                &s->rSeq);
  s->eKind = QUAY_R_BELONGS_TO + k;
  if (s->eKind == QUAY_R_THROUGH) {
    lua_Integer i, n;
    lua_getfield(L, iDesc, "path");
    if (lua_type(L, -1) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: quay.through needs "
                   "relation names", zModel, zName);
    }
    n = (lua_Integer)lua_rawlen(L, -1);
    if (n < 1 || n > nPathMax) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: quay.through takes 1 "
                   "to %d relation names", zModel, zName, nPathMax);
    }
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: quay.through "
                     "takes relation names (strings)", zModel, zName);
      }
      azPath[i] = lquay_name(L, -1, QUAY_EDECLARATION, "a quay.through hop");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    s->azPath = azPath;
    s->nPath = (int)n;
    lua_newtable(L);                         /* empty options */
    return;
  }
  s->zTarget = read_target(L, iDesc, zModel, zName);
  iOpts = push_opts(L, iDesc, azRelOpt, zModel, zName);
  if (opt_bool(L, iOpts, "null", zModel, zName, 0)) s->mFlags |= QUAY_F_NULL;
  if (opt_bool(L, iOpts, "unique", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_UNIQUE;
  }
  if (!opt_bool(L, iOpts, "index", zModel, zName, 1)) {
    s->mFlags |= QUAY_F_NO_INDEX;
  }
  if (opt_bool(L, iOpts, "skip_reverse", zModel, zName, 0)) {
    s->mFlags |= QUAY_F_SKIP_REVERSE;
  }
  s->zColumn = opt_str(L, iOpts, "column", zModel, zName);
  s->zToField = opt_str(L, iOpts, "to_field", zModel, zName);
  s->zRelatedName = opt_str(L, iOpts, "related_name", zModel, zName);
  s->zDescription = opt_str(L, iOpts, "description", zModel, zName);
  s->zTable = opt_str(L, iOpts, "table", zModel, zName);
  s->zSourceKey = opt_str(L, iOpts, "source_key", zModel, zName);
  s->zTargetKey = opt_str(L, iOpts, "target_key", zModel, zName);
  s->zForeignKey = opt_str(L, iOpts, "foreign_key", zModel, zName);
  s->zLocalKey = opt_str(L, iOpts, "local_key", zModel, zName);
  s->zRenamedFrom = opt_str(L, iOpts, "renamed_from", zModel, zName);
  s->eOnDelete = opt_rule(L, iOpts, "on_delete", zModel, zName);
  s->eOnUpdate = opt_rule(L, iOpts, "on_update", zModel, zName);
  lquay_opt_get(L, iOpts, "through");
  if (lua_type(L, -1) == LUA_TSTRING) {
    s->zThrough = lquay_name(L, -1, QUAY_EDECLARATION, "option through");
  } else if (luaL_testudata(L, -1, QUAY_MODEL_MT)) {
    s->zThrough = quay_model_name(((LModel *)lua_touserdata(L, -1))->m);
  } else if (!lua_isnil(L, -1)) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: through must be a model"
                 " name or a model", zModel, zName);
  }
  lua_rawsetp(L, iOpts, &lquay_LK_KEEP_THROUGH);
  lquay_opt_get(L, iOpts, "default");
  if (!lua_isnil(L, -1)) {
    s->mFlags |= QUAY_F_DEFAULT;
    if (lua_type(L, -1) == LUA_TTABLE && lquay_record_model(L, -1)) {
      /* A record: its primary key (to_field defaults are keys too). */
      LModel *pT = lquay_record_model(L, -1);
      quay_field_info f;
      quay_model_field(pT->m, quay_model_pk(pT->m), &f);
      lua_getfield(L, -1, f.zName);
      lua_replace(L, -2);
    }
    if (lquay_to_value(L, -1, &s->dflt, 0, zName) != 0 ||
        s->dflt.type == QUAY_RECORD) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: default must be a key "
                   "value or a saved record", zModel, zName);
    }
  }
  lua_rawsetp(L, iOpts, &lquay_LK_KEEP_DEFAULT);
}

/*
** The model option zOpt of spec (at 3): a list of lists of field or
** relation names, each given to the engine (unique_together, indexes).
*/
static void read_name_lists(lua_State *L, quay_model *m, const char *zName,
                            const char *zOpt) {
  lua_Integer k, n;
  quay_err err;
  int bUnique = strcmp(zOpt, "unique_together") == 0;
  lquay_opt_get(L, 3, zOpt);
  n = (lua_Integer)lua_rawlen(L, -1);
  for (k = 1; k <= n; k++) {
    const char *az[64];
    lua_Integer j, nj;
    lua_rawgeti(L, -1, k);
    if (lua_type(L, -1) != LUA_TTABLE) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s[%d] must be a list "
                   "of names", zName, zOpt, (int)k);
    }
    nj = (lua_Integer)lua_rawlen(L, -1);
    if (nj < 1 || nj > 64) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s[%d] must name 1 to "
                   "64 fields", zName, zOpt, (int)k);
    }
    for (j = 1; j <= nj; j++) {
      lua_rawgeti(L, -1, j);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s entries are field "
                     "names", zName, zOpt);
      }
      az[j - 1] = lquay_name(L, -1, QUAY_EDECLARATION, zOpt);
      lua_pop(L, 1);                  /* still referenced by the list */
    }
    if ((bUnique ? quay_model_add_unique(m, az, (int)nj, &err)
                 : quay_model_add_index(m, az, (int)nj, &err))) {
      lquay_raise(L, &err);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Discard a model whose declaration did not complete. */
static void discard_model(void *p) { quay_model_discard(p); }

/*
** db:model(name, spec)  [db, name, spec]
*/
int lquay_declare(lua_State *L) {
  LDb *pDb = lquay_check_db(L, 1);
  const char *zName = lquay_name(L, 2, QUAY_EDECLARATION, "a model name");
  const char *zTable = NULL, *zDescr = NULL, *zRenamed = NULL;
  quay_model *m;
  quay_err err;
  Box *pBox;
  LModel *pM, *pOld = NULL;
  int iDefaults, iUnique = 0, iIndexes = 0, rc;
  if (lua_type(L, 3) != LUA_TTABLE) {
    lquay_arg_error(L, 3, "db:model", "a table of fields and options");
  }
  lua_settop(L, 3);
  lua_newtable(L);                                   /* [.., defaults] */
  iDefaults = 4;
  /* Pass 1: keys and options, Lua-side checks only. */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    const char *zKey;
    if (lua_type(L, -2) != LUA_TSTRING) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: spec keys must be names",
                   zName);
    }
    zKey = lquay_name(L, -2, QUAY_EDECLARATION, "a field name");
    if (is_desc(L, -1)) {
      if (in_list(azReserved, zKey) >= 0) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: '%s' is a record method;"
                     " name the field or relation something else", zName,
                     zKey);
      }
    } else if (strcmp(zKey, "table") == 0) {
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: option table must be a "
                     "string", zName);
      }
      zTable = lquay_name(L, -1, QUAY_EDECLARATION, "option table");
    } else if (strcmp(zKey, "description") == 0) {
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: option description "
                     "must be a string", zName);
      }
      zDescr = lua_tostring(L, -1);
    } else if (strcmp(zKey, "renamed_from") == 0) {
      if (lua_type(L, -1) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: option renamed_from "
                     "must be the old model or table name", zName);
      }
      zRenamed = lquay_name(L, -1, QUAY_EDECLARATION, "option renamed_from");
    } else if (strcmp(zKey, "unique_together") == 0) {
      if (lua_type(L, -1) != LUA_TTABLE) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: unique_together must "
                     "be a list of lists of names", zName);
      }
      iUnique = 1;
    } else if (strcmp(zKey, "indexes") == 0) {
      if (lua_type(L, -1) != LUA_TTABLE) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: indexes must be a list "
                     "of lists of names", zName);
      }
      iIndexes = 1;
    } else if (lquay_behav_is_option(zKey)) {
      /* methods, scopes, validate, hooks, soft_delete: lbehav.c */
    } else {
      lquay_raisef(L, QUAY_EDECLARATION,
                   "model %s: '%s' is neither a field or relation (use "
                   "quay.string{}, quay.belongs_to(...), ...) nor a model "
                   "option (table, description, unique_together, "
                   "indexes, renamed_from, methods, scopes, validate, "
                   "hooks, soft_delete)", zName, zKey);
    }
    lua_pop(L, 1);
  }
  /* A declaration that failed at resolve may be declared again: the
  ** engine then frees the old model, so its Model object is cut off from
  ** it at once (it stays on the stack until then). */
  if (quay_db_model(pDb->db, zName) != NULL) {
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "models");
    lua_getfield(L, -1, zName);                      /* [.., st, ms, Old] */
    pOld = luaL_testudata(L, -1, QUAY_MODEL_MT);
    lua_replace(L, -3);
    lua_pop(L, 1);                                   /* [.., Old] */
  } else {
    lua_pushnil(L);
  }
  /* The Model userdata first (closed), then the engine model in a box. */
  pM = lua_newuserdatauv(L, sizeof(LModel), 2);      /* [.., M] */
  pM->m = NULL;
  pM->pDb = pDb;
  pM->iVersion = -1;
  pM->aFast = NULL;
  pM->nFast = 0;
  pM->mBehav = 0;
  luaL_setmetatable(L, QUAY_MODEL_MT);
  pBox = lquay_box(L, discard_model);                /* [.., M, box] */
  rc = quay_model_new(pDb->db, zName, zTable, zDescr, &m, &err);
  if (rc) lquay_raise(L, &err);
  pBox->p = m;
  if (pOld) pOld->m = NULL;             /* replaced: the engine freed it */
  if (zRenamed && quay_model_set_renamed_from(m, zRenamed, &err)) {
    lquay_raise(L, &err);
  }
  /* Pass 2: fields and relations. */
  lua_pushnil(L);
  while (lua_next(L, 3)) {                           /* [.., key, value] */
    int top = lua_gettop(L);
    const char *zKey = lua_tostring(L, -2);
    if (is_desc(L, -1)) {
      const char *zKind;
      lua_getfield(L, -1, "kind");
      zKind = lua_tostring(L, -1);
      lua_pop(L, 1);
      if (zKind && strcmp(zKind, "field") == 0) {
        quay_field_spec fs;
        read_field(L, top, zName, zKey, &fs, iDefaults);
        rc = quay_model_add_field(m, &fs, &err);
      } else if (zKind && strcmp(zKind, "relation") == 0) {
        quay_rel_spec rs;
        const char *azPath[32];
        read_relation(L, top, zName, zKey, &rs, azPath, 32);
        rc = quay_model_add_relation(m, &rs, &err);
      } else {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: bad descriptor",
                     zName, zKey);
      }
      if (rc) lquay_raise(L, &err);
    }
    lua_settop(L, top - 1);
  }
  if (iUnique) read_name_lists(L, m, zName, "unique_together");
  if (iIndexes) read_name_lists(L, m, zName, "indexes");
  lquay_behav_declare(L, 3, m, zName);
  if (quay_model_finish(m, &err)) lquay_raise(L, &err);
  /* Committed: the model belongs to the db now. */
  pBox->p = NULL;
  pM->m = m;
  /* The record metatable, user value 2 of the Model. */
  {
    int iM = 6;                                  /* [db,name,spec,defs,Old,M] */
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, iM, 1);
    lua_newtable(L);                                  /* [.., mt] */
    lua_pushvalue(L, iM);
    lua_rawsetp(L, -2, &lquay_LK_MODEL);
    lua_newtable(L);
    lua_rawsetp(L, -2, &lquay_LK_NAMES);
    lua_pushvalue(L, iDefaults);
    lua_rawsetp(L, -2, &lquay_LK_DEFAULTS);
    lua_newtable(L);
    lua_rawsetp(L, -2, &lquay_LK_PLANS);
    lua_newtable(L);
    lua_rawsetp(L, -2, &lquay_LK_SETMTS);
    lua_newtable(L);                                  /* members */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, &lquay_LK_MEMBERS);            /* [.., mt, members] */
    lquay_record_mt_init(L, lua_gettop(L) - 1, iM, zName);
    lua_pop(L, 1);                                    /* [.., mt] */
    lquay_behav_install(L, 3, iM, lua_gettop(L));
    lua_setiuservalue(L, iM, 2);
    /* Register by name in the db's models table. */
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "models");
    lua_pushvalue(L, iM);
    lua_setfield(L, -2, zName);
    lua_pop(L, 2);
    lua_pushvalue(L, iM);
  }
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Model methods
** ===================================================================
*/
static int model_tostring(lua_State *L) {
  LModel *pM = lquay_check_self(L, 1, QUAY_MODEL_MT, "Model", "__tostring");
  lua_pushfstring(L, "quay.Model(%s)", pM->m ? quay_model_name(pM->m) : "?");
  return 1;
}

/* Misuse unless the argument at idx is a plain table (or nil when
** bOptional). */
static void check_values(lua_State *L, int idx, int bOptional,
                         const char *zWhat) {
  if (bOptional && lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE || lquay_record_model(L, idx)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: expected a table%s, got a %s", zWhat,
                 lquay_record_model(L, idx) ? " of values, not a record" : "",
                 luaL_typename(L, idx));
  }
}

/*
** The table at idx (checked a table) is a list: its keys are exactly 1..n.
** A table of one row's values ({ email = ... } for { { email = ... } }),
** extra named keys or a hole would else be skipped without a word.
*/
static void check_list(lua_State *L, int idx, const char *zWhat) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), nKey = 0;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Integer k;
    lua_pop(L, 1);                                   /* [.., key] */
    k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
    if (k < 1 || k > n) {
      int bStr = lua_type(L, -1) == LUA_TSTRING;
      /* luaL_tolstring pushes a copy: the key itself stays as it is */
      const char *zKey = luaL_tolstring(L, -1, NULL);
      lquay_raisef(L, QUAY_EMISUSE, "%s: expected a list of rows ({ {...}, "
                   "{...} }), but it has the key %s%s%s", zWhat,
                   bStr ? "'" : "", zKey, bStr ? "'" : "");
    }
    nKey++;
  }
  if (nKey != n) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: the list has holes (a nil item)",
                 zWhat);
  }
}

/* Model:new(values) */
static int model_new(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  lquay_check_nargs(L, 2, "new(values)");
  check_values(L, 2, 1, "new(values)");
  lua_settop(L, 2);
  return lquay_new_record(L, 1, 2);
}

/* Model:create(values) */
static int model_create(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  lquay_check_nargs(L, 2, "create(values)");
  check_values(L, 2, 1, "create(values)");
  lua_settop(L, 2);
  lquay_new_record(L, 1, 2);                         /* [M, values, rec] */
  lquay_save(L, 3);
  lua_settop(L, 3);
  return 1;
}

/*
** Model:find(key): the record with that primary key, or nil.  nil (and
** quay.null) find nothing; a key that is not a number or a string raises
** validation naming the model and its key, as a number or string of the
** wrong type does in the filter.
*/
static int model_find(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  quay_field_info f;
  int t;
  lquay_ready(L, pM);
  quay_model_field(pM->m, quay_model_pk(pM->m), &f);
  if (lua_isnone(L, 2)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s:find(key) needs a value of %s.%s",
                 quay_model_name(pM->m), quay_model_name(pM->m), f.zName);
  }
  lua_settop(L, 2);
  t = lua_type(L, 2);
  if (t == LUA_TNIL || lquay_is_null(L, 2)) {
    lua_pushnil(L);
    return 1;
  }
  if (t != LUA_TNUMBER && t != LUA_TSTRING) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s:find: the key is a value of "
                 "%s.%s, not a %s", quay_model_name(pM->m),
                 quay_model_name(pM->m), f.zName, luaL_typename(L, 2));
  }
  lquay_root_qs(L, 1);                               /* [M, key, qs] */
  lua_getfield(L, -1, "filter");
  lua_pushvalue(L, 3);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, f.zName);
  lua_call(L, 2, 1);                                 /* [M, key, qs, qs2] */
  lua_getfield(L, -1, "first");
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  return 1;
}

/* Model:bulk_create(list): one transaction, one prepared statement. */
static int model_bulk_create(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  lquay_check_nargs(L, 2, "bulk_create(rows)");
  check_values(L, 2, 0, "bulk_create(rows)");
  check_list(L, 2, "bulk_create(rows)");
  lua_settop(L, 2);
  return lquay_bulk_create(L, 1, 2);
}

/* Model:upsert(rows, { conflict = {...} [, update = {...}] }) */
static int model_upsert(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  lquay_check_nargs(L, 3, "upsert(rows, opts)");
  check_values(L, 2, 0, "upsert(rows, opts)");
  check_list(L, 2, "upsert(rows, opts)");
  lua_settop(L, 3);
  return lquay_upsert(L, 1, 2, 3);
}

/* Model:bulk_update(records, fields) */
static int model_bulk_update(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lquay_ready(L, pM);
  lquay_check_nargs(L, 3, "bulk_update(records, fields)");
  if (lua_type(L, 2) == LUA_TTABLE && !lquay_record_model(L, 2)) {
    check_list(L, 2, "bulk_update(records, fields)");
  }
  lua_settop(L, 3);
  return lquay_bulk_update(L, 1, 2, 3);
}

/*
** {==================================================================
** get_or_create and update_or_create
** ===================================================================
** Both run their read and their insert in one db:transaction (a
** savepoint inside the caller's): the read finds the row, or the insert
** makes it.  A concurrent insert of the same unique key makes the insert
** fail with `integrity`; the transaction is rolled back and the whole
** attempt runs again, and the read then finds the other's row.  Only
** then: an insert that broke another constraint (a missing key, a
** soft-deleted row's unique value), and an update_or_create's update,
** raise at once, their save hooks run once, and an error a hook raised is
** never taken for Quay's.  On SQLite
** the transaction holds the write lock from its start (BEGIN IMMEDIATE),
** so attempts never overlap.  update_or_create locks the row it reads
** (select_for_update) so concurrent updates of it take turns.
*/
#define GOC_ATTEMPTS 3

/* Push the values of the insert: the conditions' plain names (no
** lookups) with the defaults over them. */
static void goc_values(lua_State *L, int iConds, int iDefaults) {
  lua_newtable(L);                                   /* [.., vals] */
  lua_pushnil(L);
  while (lua_next(L, iConds)) {                      /* [.., vals, k, v] */
    if (lua_type(L, -2) == LUA_TSTRING &&
        strstr(lua_tostring(L, -2), "__") == NULL) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else {
      lua_pop(L, 1);
    }
  }
  if (lua_type(L, iDefaults) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, iDefaults)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
}

/* Call method zName of the value at idx with nArg arguments already on
** the stack above it: [.., obj?, args] -> [.., result] (one result). */
static void call_method(lua_State *L, int idx, const char *zName, int nArg) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, zName);                       /* [.., args, fn] */
  lua_insert(L, -nArg - 1);                          /* [.., fn, args] */
  lua_pushvalue(L, idx);
  lua_insert(L, -nArg - 1);                          /* [.., fn, obj, args] */
  lua_call(L, nArg + 1, 1);
}

/* One attempt, run by db:transaction: upvalues Model, conds, defaults,
** bUpdate, and a light userdata int set to 1 once it inserts.  Returns
** record, created. */
static int goc_attempt(lua_State *L) {
  int bUpdate = lua_toboolean(L, lua_upvalueindex(4)), iRows;
  LModel *pM = lua_touserdata(L, lua_upvalueindex(1));
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(2));
  call_method(L, lua_upvalueindex(1), "filter", 1);  /* [qs] */
  if (bUpdate) call_method(L, 1, "select_for_update", 0);
  lua_pushinteger(L, 2);
  call_method(L, -2, "limit", 1);
  call_method(L, -1, "all", 0);                      /* [.., rows] */
  iRows = lua_gettop(L);
  if (lua_rawlen(L, iRows) > 1) {
    lquay_raisef(L, QUAY_EMULTIPLE, "%s: more than one %s matches the "
                 "conditions (they must name one row: a unique key)",
                 bUpdate ? "update_or_create" : "get_or_create",
                 quay_model_name(pM->m));
  }
  if (lua_rawlen(L, iRows) == 1) {
    lua_rawgeti(L, iRows, 1);                        /* [.., rec] */
    if (bUpdate && lua_type(L, lua_upvalueindex(3)) == LUA_TTABLE) {
      int iRec = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, lua_upvalueindex(3))) {     /* [.., rec, k, v] */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, iRec);                       /* rec[k] = v */
      }
      lquay_save(L, iRec);                           /* what changed */
    }
    lua_pushboolean(L, 0);
    return 2;
  }
  goc_values(L, lua_upvalueindex(2), lua_upvalueindex(3));
  *(int *)lua_touserdata(L, lua_upvalueindex(5)) = 1;
  call_method(L, lua_upvalueindex(1), "create", 1);  /* [.., rec] */
  lua_pushboolean(L, 1);
  return 2;
}

/* Non-0 when the error at idx is a Quay error (not a value user code
** raised, such as a hook's table) of code `integrity`. */
static int is_integrity(lua_State *L, int idx) {
  int r = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, QUAY_ERR_MT);               /* [.., mt, errmt] */
    r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  if (r) {
    lua_pushliteral(L, "code");
    lua_rawget(L, idx);
    r = lua_type(L, -1) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "integrity") == 0;
    lua_pop(L, 1);
  }
  return r;
}

/* [Model, conds] -> [exists]: do the conditions match a row now? */
static int goc_exists(lua_State *L) {
  lua_settop(L, 2);
  call_method(L, 1, "filter", 1);                    /* [M, qs] */
  call_method(L, 2, "exists", 0);
  return 1;
}

/*
** After an attempt's insert failed with `integrity`: non-0 when the
** conditions now match a row (another connection inserted it meanwhile),
** so a new attempt reads it; 0 when they do not (the insert broke another
** constraint: a new attempt would only insert again, running the save
** hooks again) or the read fails.  The error stays at the top.
*/
static int goc_inserted_meanwhile(lua_State *L, int iModel, int iConds) {
  int r = 0;
  lua_pushcfunction(L, goc_exists);
  lua_pushvalue(L, iModel);
  lua_pushvalue(L, iConds);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK) r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static int get_or_create_x(lua_State *L, int bUpdate) {
  const char *zWhat = bUpdate ? "update_or_create(conds, defaults)"
                              : "get_or_create(conds, defaults)";
  LModel *pM = lquay_check_model(L, 1);
  int i;
  lquay_ready(L, pM);
  lquay_check_nargs(L, 3, zWhat);
  check_values(L, 2, 0, zWhat);
  check_values(L, 3, 1, zWhat);
  lua_settop(L, 3);
  lua_pushnil(L);
  if (!lua_next(L, 2)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s: the conditions are empty (a "
                 "condition whose value is nil vanishes from a Lua table)",
                 zWhat);
  }
  lua_settop(L, 3);
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING) {
        lquay_raisef(L, QUAY_EMISUSE, "%s: defaults are field names and "
                     "values; a %s key would be ignored", zWhat,
                     luaL_typename(L, -2));
      }
      lua_pop(L, 1);
    }
  }
  for (i = 0;; i++) {
    int bInserted = 0;
    lua_settop(L, 3);
    lua_getiuservalue(L, 1, 1);                      /* [M, c, d, db] */
    lua_getfield(L, 4, "transaction");
    lua_pushvalue(L, 4);                             /* [.., fn, db] */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushboolean(L, bUpdate);
    lua_pushlightuserdata(L, &bInserted);
    lua_pushcclosure(L, goc_attempt, 5);             /* [.., fn, db, f] */
    if (lua_pcall(L, 2, 2, 0) == LUA_OK) return 2;
    /* Another connection inserted the key meanwhile: read it again (not
    ** after an update_or_create's update of the row it found). */
    if (i + 1 >= GOC_ATTEMPTS || !bInserted || !is_integrity(L, -1) ||
        !goc_inserted_meanwhile(L, 1, 2)) {
      return lua_error(L);
    }
  }
}

static int model_get_or_create(lua_State *L) {
  return get_or_create_x(L, 0);
}

static int model_update_or_create(lua_State *L) {
  return get_or_create_x(L, 1);
}
/* }================================================================== */

/* qs:select_for_update([{ nowait = bool, skip_locked = bool }]) */
int lquay_qs_select_for_update(lua_State *L) {
  static const char *const azOpt[] = {"nowait", "skip_locked", NULL};
  LQs *q = lquay_check_qs(L, 1), *out;
  unsigned mFlags = 0;
  quay_err err;
  lquay_check_nargs(L, 2, "select_for_update(opts)");
  lua_settop(L, 2);
  if (lquay_check_options(L, 2, azOpt, 0, "select_for_update")) {
    if (lquay_opt_bool(L, 2, "nowait", "select_for_update")) {
      mFlags |= QUAY_LOCK_NOWAIT;
    }
    if (lquay_opt_bool(L, 2, "skip_locked", "select_for_update")) {
      mFlags |= QUAY_LOCK_SKIP_LOCKED;
    }
  }
  lua_getiuservalue(L, 1, 1);                        /* [q, opts, M] */
  lquay_push_qs(L, -1, NULL);                        /* [.., M, out] */
  out = lua_touserdata(L, -1);
  if (quay_qs_for_update(q->qs, mFlags, &out->qs, &err)) lquay_raise(L, &err);
  return 1;
}

static const luaL_Reg aModelMethod[] = {
  {"new", model_new},
  {"create", model_create},
  {"find", model_find},
  {"bulk_create", model_bulk_create},
  {"raw", lquay_model_raw},
  {"upsert", model_upsert},
  {"bulk_update", model_bulk_update},
  {"get_or_create", model_get_or_create},
  {"update_or_create", model_update_or_create},
  {NULL, NULL}
};

/*
** Model __index: own methods, else any query-set method applied to
** Model:query().
*/
static int model_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) {
    lquay_arg_error(L, 2, "Model index", "a method or scope name");
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));                /* own methods */
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  /* A query-set method: a closure that starts from Model:query() (an
  ** unknown name raises when called, naming the method); the Model is
  ** its second upvalue, to name it when the call forgot the colon. */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, lquay_qs_method, 2);
  return 1;
}

static int model_name(lua_State *L) {
  LModel *pM = lquay_check_model(L, 1);
  lua_pushstring(L, quay_model_name(pM->m));
  return 1;
}

void lquay_open_model(lua_State *L) {
  luaL_newmetatable(L, QUAY_MODEL_MT);               /* [mt] */
  luaL_newlib(L, aModelMethod);
  lua_pushcfunction(L, model_name);
  lua_setfield(L, -2, "name");
  lua_pushcclosure(L, model_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, model_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
/* }================================================================== */
