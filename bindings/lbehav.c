/*
** bindings/lbehav.c
** Model behaviour (reference.md "Model behaviour"): methods, scopes, validate
** functions, hooks and the Lua side of soft delete.
** See LICENSE
**
** Everything here is Lua functions the user declared, so it lives in the
** binding; the engine contributes what needs no Lua: choices / min / max
** (checked before SQL and emitted as CHECK constraints), loading the rows
** a delete call removes for the models that declare delete hooks
** (quay_db_on_delete), soft deletes and quay_writer_check.
**
** A model that declares behaviour gets a behaviour table, kept in its
** record metatable under LK_BEHAV (so the per-result copies carry it):
**   methods        name -> function(rec, ...)
**   scopes         name -> function(qs, ...) returning a query set
**   validate       function(rec): true | nil, or false, message
**   fields         field name -> function(value, rec), as validate
**   before_save, after_save, before_delete, after_delete   hooks
** and LModel.mBehav says which kinds it has, so the write paths of a model
** without behaviour test one bit and do nothing else.  The tables are
** copies made at db:model, so changing the declaration's tables later
** changes nothing.
**
** Calls into user functions.  Hooks, validate functions and scopes run
** from binding code (never from engine frames) with lua_pcall: an error
** is raised again unchanged, whatever its value, after the to-be-closed
** boxes of the call released their resources (the savepoint of a save is
** one: rolling it back undoes the whole call).  A function that yields
** fails with Lua's "attempt to yield" error, which is replaced by a
** `misuse` error naming the model and the function.  Delete hooks are the
** exception: the engine calls them (lquay_behav_on_delete) from inside a
** delete call, so they run under lua_pcall in a protected body, the error
** is kept (pDb->cbErrRef), the engine rolls back and fails with
** QUAY_ECALLBACK, and lquay_fail raises the kept value once the engine
** returned (house rule 6, as lcallback.c does for on_query).
**
** Records for delete hooks.  A binding delete call (rec:delete,
** qs:delete) registers an LDelCall on the db while the engine runs: a
** table in the registry, keyed by the LDelCall's address, keeps the
** record made for each row in the before call, so the after call gets the
** same table; rec:delete's own record stands for its row.  A delete the
** binding did not register (a pivot row removed from a set) gets a new
** record per call.
*/
#include "lquay.h"

#include <stdio.h>
#include <string.h>

const char lquay_LK_BEHAV = 0;

static const char *const azHook[] = {
  "before_save", "after_save", "before_delete", "after_delete", NULL
};

static const char *const azOption[] = {
  "methods", "scopes", "validate", "hooks", "soft_delete", NULL
};

/* Non-0 when the value at idx is a field or relation descriptor. */
static int is_desc(lua_State *L, int idx) {
  int r;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, QUAY_DESC_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

static int in_list(const char *const *az, const char *z) {
  int i;
  for (i = 0; az[i]; i++) {
    if (strcmp(az[i], z) == 0) return i;
  }
  return -1;
}

/* Non-0 when zKey is a behaviour option of db:model (azOption). */
int lquay_behav_is_option(const char *zKey) {
  return in_list(azOption, zKey) >= 0;
}

/*
** {==================================================================
** Calling user functions
** ===================================================================
*/
/* Non-0 when the value at idx is Lua's error for a yield that could not
** happen (a C call without continuation, or the main thread). */
int lquay_behav_yielded(lua_State *L, int idx) {
  const char *z;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  z = lua_tostring(L, idx);
  return strncmp(z, "attempt to yield", 16) == 0;
}

/*
** Call the function below its nArg arguments at the top, keeping nRes
** results.  Its error is raised again as it is, except a yield, which
** becomes `misuse` naming zModel and zWhat ("hook before_save").
*/
static void behav_call(lua_State *L, int nArg, int nRes, const char *zModel,
                       const char *zWhat) {
  if (lua_pcall(L, nArg, nRes, 0) != LUA_OK) {
    if (lquay_behav_yielded(L, -1)) {
      lquay_raisef(L, QUAY_EMISUSE, "model %s: %s yielded; hooks, validate "
                   "functions, defaults, scopes and where_has functions run "
                   "inside a Quay call, which cannot be suspended (do the "
                   "waiting before or after it)", zModel, zWhat);
    }
    lua_error(L);                       /* the function's own error value */
  }
}

void lquay_behav_call(lua_State *L, int nArg, int nRes, const char *zModel,
                      const char *zWhat) {
  behav_call(L, nArg, nRes, zModel, zWhat);
}

/* Push the behaviour table of the record metatable at iMt; returns 0 (and
** pushes nothing) when the model has none. */
static int push_behav_mt(lua_State *L, int iMt) {
  if (lua_rawgetp(L, iMt, &lquay_LK_BEHAV) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  return 0;
}

/* Push the behaviour table of the Model at iModel, or return 0. */
static int push_behav_model(lua_State *L, int iModel) {
  int r;
  iModel = lua_absindex(L, iModel);
  lua_getiuservalue(L, iModel, 2);                   /* [.., mt] */
  r = push_behav_mt(L, lua_gettop(L));
  if (r) lua_remove(L, -2);
  else lua_pop(L, 1);
  return r;
}

/* Push behaviour table of the record at iRec, or return 0. */
static int push_behav_rec(lua_State *L, int iRec) {
  int r;
  iRec = lua_absindex(L, iRec);
  if (!lua_getmetatable(L, iRec)) return 0;          /* [.., mt] */
  r = push_behav_mt(L, lua_gettop(L));
  if (r) lua_remove(L, -2);
  else lua_pop(L, 1);
  return r;
}
/* }================================================================== */


/*
** {==================================================================
** Declaration
** ===================================================================
*/
/* The live table of built-in names zWhat is checked against. */
static void push_upvalue_table(lua_State *L, const char *zMt) {
  luaL_getmetatable(L, zMt);
  lua_getfield(L, -1, "__index");
  lua_getupvalue(L, -1, 1);                          /* [mt, idx, t] */
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/*
** Raise `declaration` when zName (a method or scope, zKind) is a name
** of the model or of a built-in method, naming both.
*/
static void check_clash(lua_State *L, quay_model *m, const char *zModel,
                        const char *zKind, const char *zName, int iOther,
                        const char *zOther) {
  static const char *const azExtra[] = { "query", "pivot", NULL };
  int k;
  /* Where each kind of built-in method lives: a field of the metatable,
  ** a hidden key of it (pKey), or the upvalue table of its __index. */
  struct {
    const char *zMt, *zKey;
    const void *pKey;
    const char *zWhat;
  } aBuiltin[] = {
    { QUAY_QS_MT, "__methods", NULL, "the query-set method" },
    { QUAY_MODEL_MT, NULL, &lquay_LK_RECMETHODS, "the record method" },
    { QUAY_MODEL_MT, NULL, NULL, "the model method" },
    { QUAY_SET_MT, NULL, NULL, "the related-set method" },
  };
  switch (quay_model_member(m, zName, &k)) {
    case QUAY_M_FIELD:
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes with the "
                   "field '%s'; rename the %s", zModel, zKind, zName, zName,
                   zKind);
      break;
    case QUAY_M_RELATION:
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes with the "
                   "relation '%s'; rename the %s", zModel, zKind, zName,
                   zName, zKind);
      break;
    default:
      /* The implicit primary key is added once the model is finished. */
      if (quay_model_pk(m) < 0 && strcmp(zName, "id") == 0) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s 'id' clashes with "
                     "the field 'id' (the implicit primary key); rename the "
                     "%s", zModel, zKind, zKind);
      }
      break;
  }
  for (k = 0; k < (int)(sizeof(aBuiltin) / sizeof(aBuiltin[0])); k++) {
    int found = 0;
    if (aBuiltin[k].zKey || aBuiltin[k].pKey) {
      luaL_getmetatable(L, aBuiltin[k].zMt);
      if (aBuiltin[k].zKey) lua_getfield(L, -1, aBuiltin[k].zKey);
      else lua_rawgetp(L, -1, aBuiltin[k].pKey);
      lua_remove(L, -2);
    } else {
      push_upvalue_table(L, aBuiltin[k].zMt);
    }                                                /* [.., t] */
    if (lua_type(L, -1) == LUA_TTABLE) {
      found = lua_getfield(L, -1, zName) != LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (found) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes with %s "
                   "%s; rename the %s", zModel, zKind, zName,
                   aBuiltin[k].zWhat, zName, zKind);
    }
  }
  if (in_list(azExtra, zName) >= 0) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes with the "
                 "built-in '%s'; rename the %s", zModel, zKind, zName, zName,
                 zKind);
  }
  if (iOther) {
    lua_pushstring(L, zName);
    if (lua_rawget(L, iOther) != LUA_TNIL) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes with the "
                   "%s '%s'; a name is a method or a scope, not both",
                   zModel, zKind, zName, zOther, zName);
    }
    lua_pop(L, 1);
  }
}

/* Check that the option zOpt of spec (at iSpec), when given, is a table
** of functions keyed by names; returns its index or 0. */
static int check_fn_table(lua_State *L, int iSpec, const char *zOpt,
                          const char *zModel, const char *zKind) {
  int idx;
  lua_pushstring(L, zOpt);
  if (lua_rawget(L, iSpec) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  idx = lua_gettop(L);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s must be a table of "
                 "functions by name, not a %s", zModel, zOpt,
                 luaL_typename(L, idx));
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s are named: a key of "
                   "%s is a %s", zModel, zOpt, zOpt, luaL_typename(L, -2));
    }
    lquay_name(L, -2, QUAY_EDECLARATION, zKind);
    if (lua_type(L, -1) != LUA_TFUNCTION) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' must be a "
                   "function, not a %s", zModel, zKind, lua_tostring(L, -2),
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  return idx;
}

/*
** The behaviour options of spec (at iSpec) for model m, declared and not
** yet finished: every Lua-side check (shapes, hook names, name clashes),
** then soft_delete.  Raises `declaration`; the caller discards m then.
*/
void lquay_behav_declare(lua_State *L, int iSpec, quay_model *m,
                         const char *zModel) {
  int iMethods, iScopes, top = lua_gettop(L);
  quay_err err;
  luaL_checkstack(L, 12, "db:model");
  /* soft_delete first: it adds the field deleted_at. */
  lua_pushliteral(L, "soft_delete");
  switch (lua_rawget(L, iSpec)) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, -1) && quay_model_set_soft_delete(m, &err)) {
        lquay_raise(L, &err);
      }
      break;
    default:
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: soft_delete must be true "
                   "or false, not a %s", zModel, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "validate");
  if (lua_rawget(L, iSpec) != LUA_TNIL && lua_type(L, -1) != LUA_TFUNCTION) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: validate must be a "
                 "function(rec) returning true, or false and a message; got "
                 "a %s", zModel, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  if (check_fn_table(L, iSpec, "hooks", zModel, "hook")) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (in_list(azHook, lua_tostring(L, -2)) < 0) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: unknown hook '%s' (the "
                     "hooks are before_save, after_save, before_delete and "
                     "after_delete)", zModel, lua_tostring(L, -2));
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  /* Field options: validate must be a function. */
  lua_pushnil(L);
  while (lua_next(L, iSpec)) {                       /* [.., k, v] */
    if (lua_type(L, -2) == LUA_TSTRING && is_desc(L, -1)) {
      lua_pushliteral(L, "options");
      if (lua_rawget(L, -2) == LUA_TTABLE) {         /* [.., k, v, opts] */
        lua_pushliteral(L, "validate");
        if (lua_rawget(L, -2) != LUA_TNIL && lua_type(L, -1) != LUA_TFUNCTION) {
          lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: validate must "
                       "be a function(value, rec) returning true, or false "
                       "and a message; got a %s", zModel,
                       lua_tostring(L, -4), luaL_typename(L, -1));
        }
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  iMethods = check_fn_table(L, iSpec, "methods", zModel, "method");
  iScopes = check_fn_table(L, iSpec, "scopes", zModel, "scope");
  if (iMethods) {
    lua_pushnil(L);
    while (lua_next(L, iMethods)) {
      check_clash(L, m, zModel, "method", lua_tostring(L, -2), iScopes,
                  "scope");
      lua_pop(L, 1);
    }
  }
  if (iScopes) {
    lua_pushnil(L);
    while (lua_next(L, iScopes)) {
      check_clash(L, m, zModel, "scope", lua_tostring(L, -2), 0, NULL);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}

/* Non-0 for the field types whose `max` is a length, not a bound. */
int lquay_behav_is_length(int eType) {
  return eType == QUAY_T_STRING || eType == QUAY_T_TEXT;
}

/* The option zKey at iOpts as a scalar value into *v (0 when absent). */
static int rule_value(lua_State *L, int iOpts, const char *zKey,
                      const char *zModel, const char *zName, quay_value *v) {
  lua_pushstring(L, zKey);
  if (lua_rawget(L, iOpts) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (lquay_to_value(L, -1, v, 0, zName) != 0 || v->type == QUAY_NULL) {
    lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: %s must be a number, "
                 "not a %s", zModel, zName, zKey, luaL_typename(L, -1));
  }
  return 1;                             /* the value stays on the stack */
}

/*
** The options choices, min and max (numeric fields) of the field
** descriptor whose options are at iOpts, into s.  The values point into
** Lua strings the options keep, and into scratch userdata pushed here,
** which stays on the stack until the field is added (the caller's
** lua_settop drops it).  Raises `declaration` for a shape Lua can tell
** is wrong; the engine checks the values against the field.
*/
void lquay_behav_field_rules(lua_State *L, int iOpts, const char *zModel,
                             const char *zName, quay_field_spec *s) {
  luaL_checkstack(L, 8, "db:model");
  lua_pushliteral(L, "choices");
  if (lua_rawget(L, iOpts) != LUA_TNIL) {           /* [.., list] */
    int i, n, iList = lua_gettop(L);
    quay_value *a;
    if (lua_type(L, iList) != LUA_TTABLE ||
        (n = (int)lua_rawlen(L, iList)) < 1 || n > 10000) {
      lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: choices must be a "
                   "non-empty list of values", zModel, zName);
    }
    a = lua_newuserdatauv(L, sizeof(quay_value) * (size_t)n, 0);
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, iList, i + 1);   /* the list keeps strings alive */
      if (lquay_to_value(L, -1, &a[i], 0, zName) != 0 ||
          a[i].type == QUAY_NULL || a[i].type == QUAY_LIST) {
        lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s: choice %d must be "
                     "a value of the field, not a %s", zModel, zName, i + 1,
                     luaL_typename(L, -1));
      }
      lua_pop(L, 1);
    }
    s->aChoice = a;
    s->nChoice = n;
  } else {
    lua_pop(L, 1);
  }
  {
    /* Scratch for the bounds: the values are numbers (no strings). */
    quay_value *b = lua_newuserdatauv(L, sizeof(quay_value) * 2, 0);
    if (rule_value(L, iOpts, "min", zModel, zName, &b[0])) s->pMin = &b[0];
    if (!lquay_behav_is_length(s->eType) &&
        rule_value(L, iOpts, "max", zModel, zName, &b[1])) {
      s->pMax = &b[1];
    }
  }
}

/* Copy the table option zOpt of spec into bt[zOpt]; returns 1 if any. */
static int copy_option(lua_State *L, int iSpec, int iBt, const char *zOpt) {
  int n = 0;
  lua_pushstring(L, zOpt);
  if (lua_rawget(L, iSpec) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_newtable(L);                                   /* [.., src, copy] */
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
    n++;
  }
  lua_setfield(L, iBt, zOpt);
  lua_pop(L, 1);
  return n > 0;
}

/*
** After a declaration committed: the behaviour table of the Model at
** iModel into its record metatable (at iMt), and the model's flags.
** Models that declare no behaviour get neither.
*/
void lquay_behav_install(lua_State *L, int iSpec, int iModel, int iMt) {
  LModel *pM = lua_touserdata(L, iModel);
  unsigned mBehav = 0;
  int iBt, i;
  luaL_checkstack(L, 10, "db:model");
  lua_newtable(L);                                   /* [.., bt] */
  iBt = lua_gettop(L);
  if (copy_option(L, iSpec, iBt, "methods")) mBehav |= LQUAY_B_METHODS;
  if (copy_option(L, iSpec, iBt, "scopes")) mBehav |= LQUAY_B_SCOPES;
  lua_pushliteral(L, "validate");
  if (lua_rawget(L, iSpec) == LUA_TFUNCTION) {
    lua_setfield(L, iBt, "validate");
    mBehav |= LQUAY_B_VALIDATE;
  } else {
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "hooks");
  if (lua_rawget(L, iSpec) == LUA_TTABLE) {
    for (i = 0; azHook[i]; i++) {
      if (lquay_opt_get(L, -1, azHook[i]) == LUA_TFUNCTION) {
        lua_setfield(L, iBt, azHook[i]);
        mBehav |= i < 2 ? LQUAY_B_SAVE_HOOKS : LQUAY_B_DELETE_HOOKS;
      } else {
        lua_pop(L, 1);
      }
    }
  }
  lua_pop(L, 1);
  /* Field validate functions, by field name. */
  lua_newtable(L);                                   /* [.., bt, fields] */
  lua_pushnil(L);
  while (lua_next(L, iSpec)) {                       /* [.., k, v] */
    if (lua_type(L, -2) == LUA_TSTRING && is_desc(L, -1)) {
      lua_pushliteral(L, "options");
      if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_pushliteral(L, "validate");
        if (lua_rawget(L, -2) == LUA_TFUNCTION) {
          lua_pushvalue(L, -4);
          lua_insert(L, -2);
          lua_rawset(L, iBt + 1);                    /* fields[k] = fn */
          mBehav |= LQUAY_B_VALIDATE;
        } else {
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, iBt, "fields");
  if (quay_model_soft_delete(pM->m)) mBehav |= LQUAY_B_SOFT;
  pM->mBehav = mBehav;
  if (mBehav & LQUAY_B_DELETE_HOOKS) {
    quay_model_set_delete_hooks(pM->m, 1);
    quay_db_on_delete(pM->pDb->db, lquay_behav_on_delete, pM->pDb);
    pM->pDb->bDeleteHooks = 1;
  }
  if (mBehav & ~(unsigned)LQUAY_B_SOFT) {
    lua_rawsetp(L, iMt, &lquay_LK_BEHAV);            /* [..] */
  } else {
    lua_pop(L, 1);
  }
}

/*
** After a resolve: a reverse accessor another model registered may take
** the name of a method or scope.  Raises `declaration` (at every use,
** until the declarations change).
*/
void lquay_behav_recheck(lua_State *L, LModel *pM, int iMt) {
  static const char *const azKind[] = { "methods", "scopes" };
  int k, i;
  if (!(pM->mBehav & (LQUAY_B_METHODS | LQUAY_B_SCOPES))) return;
  if (!push_behav_mt(L, iMt)) return;                /* [.., bt] */
  for (k = 0; k < 2; k++) {
    lua_getfield(L, -1, azKind[k]);
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        const char *z = lua_tostring(L, -2);
        if (quay_model_member(pM->m, z, &i) == QUAY_M_RELATION) {
          quay_rel_info r;
          quay_model_relation(pM->m, i, &r);
          lquay_raisef(L, QUAY_EDECLARATION, "model %s: %s '%s' clashes "
                       "with the relation '%s'%s%s; rename one of them "
                       "(related_name)", quay_model_name(pM->m),
                       k ? "scope" : "method", z, z,
                       r.pTarget ? " (a reverse accessor of " : "",
                       r.pTarget ? quay_model_name(r.pTarget) : "");
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
/* }================================================================== */


void lquay_behav_check_db(lua_State *L, LDb *pDb) {
  int top = lua_gettop(L);
  lquay_push_state(L, pDb);
  lua_getfield(L, -1, "models");                     /* [.., st, models] */
  lua_pushnil(L);
  while (lua_next(L, -2)) {                          /* [.., name, M] */
    LModel *pM = luaL_testudata(L, -1, QUAY_MODEL_MT);
    if (pM && pM->m && (pM->mBehav & (LQUAY_B_METHODS | LQUAY_B_SCOPES))) {
      lquay_ready(L, pM);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/*
** {==================================================================
** Methods and scopes
** ===================================================================
*/
/* rec:<method>: push the method named by the key at iKey, or return 0. */
int lquay_behav_method(lua_State *L, int iRec, int iKey) {
  iKey = lua_absindex(L, iKey);
  if (!push_behav_rec(L, iRec)) return 0;            /* [.., bt] */
  if (lua_getfield(L, -1, "methods") == LUA_TTABLE) {
    lua_pushvalue(L, iKey);
    if (lua_rawget(L, -2) == LUA_TFUNCTION) {        /* [.., bt, ms, fn] */
      lua_replace(L, -3);
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return 0;
}

/*
** The callable a scope name gives: scope(qs, ...) with its result
** checked to be a query set of the same model.  Upvalues: the scope
** function and its name.
*/
static int scope_call(lua_State *L) {
  int n = lua_gettop(L);
  LQs *pIn = lquay_check_qs(L, 1), *pOut;
  quay_model *m = quay_qs_model(pIn->qs);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);                                  /* [fn, qs, args..] */
  behav_call(L, n, 1, quay_model_name(m), "a scope");
  pOut = luaL_testudata(L, -1, QUAY_QS_MT);
  if (pOut == NULL || pOut->qs == NULL || quay_qs_model(pOut->qs) != m) {
    lquay_raisef(L, QUAY_EMISUSE, "scope %s of %s must return a query set of "
                 "%s (qs:filter {...}), not a %s", lua_tostring(L,
                 lua_upvalueindex(2)), quay_model_name(m), quay_model_name(m),
                 pOut ? "query set of another model" : luaL_typename(L, -1));
  }
  return 1;
}

/*
** Push the scope zName of the model of the Model at iModel as a callable
** (qs, ...) -> qs, or return 0 when the model has no such scope.
*/
int lquay_behav_scope(lua_State *L, int iModel, const char *zName) {
  int top = lua_gettop(L);
  if (!push_behav_model(L, iModel)) return 0;        /* [.., bt] */
  if (lua_getfield(L, -1, "scopes") == LUA_TTABLE &&
      lua_getfield(L, -1, zName) == LUA_TFUNCTION) { /* [.., bt, ss, fn] */
    lua_pushstring(L, zName);
    lua_pushcclosure(L, scope_call, 2);              /* [.., bt, ss, f] */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 1;
  }
  lua_settop(L, top);
  return 0;
}

/* qs.<name> for a name that is no query-set method: the qs at iQs's
** model's scope, pushed, or 0. */
int lquay_behav_qs_scope(lua_State *L, int iQs, int iKey) {
  int r;
  if (lua_type(L, iKey) != LUA_TSTRING) return 0;
  iQs = lua_absindex(L, iQs);
  iKey = lua_absindex(L, iKey);
  lua_getiuservalue(L, iQs, 1);                      /* [.., M] */
  if (!luaL_testudata(L, -1, QUAY_MODEL_MT)) {
    lua_pop(L, 1);
    return 0;
  }
  r = lquay_behav_scope(L, lua_gettop(L), lua_tostring(L, iKey));
  lua_remove(L, r ? -2 : -1);
  return r;
}
/* }================================================================== */


/*
** {==================================================================
** Validation and save hooks
** ===================================================================
*/
/*
** Interpret the two results of a validate function at the top: nil or
** true pass; false fails with the message (a string or nil); anything
** else is `misuse`.  Pops them.  zField NULL: the model's validate.
*/
static void validate_result(lua_State *L, const char *zModel,
                            const char *zField) {
  int t = lua_type(L, -2);
  const char *zMsg;
  if (t == LUA_TNIL || (t == LUA_TBOOLEAN && lua_toboolean(L, -2))) {
    lua_pop(L, 2);
    return;
  }
  if (t != LUA_TBOOLEAN) {
    lquay_raisef(L, QUAY_EMISUSE, "model %s: validate%s%s must return true, "
                 "or false and a message; it returned a %s", zModel,
                 zField ? " of " : "", zField ? zField : "",
                 luaL_typename(L, -2));
  }
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
    lquay_raisef(L, QUAY_EMISUSE, "model %s: validate%s%s returned false "
                 "with a %s; the message must be a string", zModel,
                 zField ? " of " : "", zField ? zField : "",
                 luaL_typename(L, -1));
  }
  zMsg = lua_isnil(L, -1) ? "is not valid" : lua_tostring(L, -1);
  if (zField) {
    lquay_raise_field(L, QUAY_EVALIDATION, zModel, zField, "%s.%s: %s",
                      zModel, zField, zMsg);
  }
  lquay_raise_field(L, QUAY_EVALIDATION, zModel, NULL, "%s: %s", zModel,
                    zMsg);
}

/*
** Validate the record at iRec before it is written through writer w
** (bInsert: an insert, else an update of the fields set in w): the
** engine's checks (types, null, choices, min, max; an insert's defaults
** filled in), then each field's validate(value, rec) for the fields w
** writes that are not NULL, then the model's validate(rec).  An insert's
** record gets the completed values first, so validate(rec) sees the
** defaults.  Raises `validation` (err.model, err.field), the functions'
** own errors, or `misuse` for a result that is not true / false.
*/
void lquay_behav_validate(lua_State *L, LModel *pM, int iRec, quay_writer *w,
                          int bInsert) {
  quay_model *m = pM->m;
  const char *zModel = quay_model_name(m);
  quay_err err;
  int i, n = quay_model_field_count(m), iPk = quay_model_pk(m), top;
  iRec = lua_absindex(L, iRec);
  top = lua_gettop(L);
  if (quay_writer_check(w, bInsert, &err)) lquay_raise(L, &err);
  if (!push_behav_rec(L, iRec)) return;              /* [.., bt] */
  luaL_checkstack(L, 8, "validate");
  if (bInsert) {
    for (i = 0; i < n; i++) {
      quay_field_info f;
      quay_value v;
      if (i == iPk) continue;
      quay_model_field(m, i, &f);
      quay_writer_value(w, i, &v);
      if (v.type == QUAY_NULL) continue;
      lua_pushstring(L, f.zName);
      if (lua_rawget(L, iRec) == LUA_TNIL) {
        lua_pushstring(L, f.zName);
        lquay_push_value(L, &v);
        lua_rawset(L, iRec);
      }
      lua_pop(L, 1);
    }
  }
  lua_getfield(L, -1, "fields");                     /* [.., bt, fields] */
  lua_pushnil(L);
  while (lua_next(L, -2)) {                          /* [.., k, fn] */
    quay_value v;
    const char *zField = lua_tostring(L, -2);
    if (quay_model_member(m, zField, &i) != QUAY_M_FIELD ||
        !quay_writer_is_set(w, i)) {
      lua_pop(L, 1);
      continue;
    }
    quay_writer_value(w, i, &v);
    if (v.type == QUAY_NULL) {
      lua_pop(L, 1);
      continue;
    }
    lquay_push_value(L, &v);
    lua_pushvalue(L, iRec);                          /* [.., k, fn, v, rec] */
    behav_call(L, 2, 2, zModel, "a validate function");
    validate_result(L, zModel, zField);              /* [.., k] */
  }
  lua_pop(L, 1);                                     /* [.., bt] */
  if (lua_getfield(L, -1, "validate") == LUA_TFUNCTION) {
    lua_pushvalue(L, iRec);
    behav_call(L, 1, 2, zModel, "validate");
    validate_result(L, zModel, NULL);
  } else {
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/*
** Call hook zHook of the record at iRec with (rec, flag): bFlag 0 or 1 is
** before_save's creating or after_save's created, LQUAY_HOOK_UNKNOWN nil
** (upsert); < 0 passes the record alone.  Nothing when the model has no
** such hook.
*/
void lquay_behav_hook(lua_State *L, LModel *pM, int iRec, const char *zHook,
                      int bFlag) {
  int top = lua_gettop(L);
  iRec = lua_absindex(L, iRec);
  if (!push_behav_rec(L, iRec)) return;
  if (lua_getfield(L, -1, zHook) == LUA_TFUNCTION) {
    char zWhat[32];
    lua_pushvalue(L, iRec);
    if (bFlag == LQUAY_HOOK_UNKNOWN) lua_pushnil(L);
    else if (bFlag >= 0) lua_pushboolean(L, bFlag);
    snprintf(zWhat, sizeof(zWhat), "hook %s", zHook);
    behav_call(L, bFlag >= 0 ? 2 : 1, 0, quay_model_name(pM->m), zWhat);
  }
  lua_settop(L, top);
}

static void behav_txn_free(void *p) {
  quay_err err;
  quay_db_rollback((quay_db *)p, &err);
}

/*
** Open a savepoint (a transaction when none is open) in a to-be-closed box
** that rolls it back unless lquay_behav_commit ends it first.
*/
Box *lquay_behav_begin(lua_State *L, LDb *pDb) {
  quay_err err;
  Box *pTxn = lquay_box(L, behav_txn_free);
  if (quay_db_begin(pDb->db, &err)) lquay_fail(L, pDb, &err);
  pTxn->p = pDb->db;
  return pTxn;
}

/* Commit what lquay_behav_begin opened (a commit that fails rolls back
** and raises); the box is then empty, to be closed by its owner. */
void lquay_behav_commit(lua_State *L, LDb *pDb, Box *pTxn) {
  quay_err err;
  pTxn->p = NULL;
  if (quay_db_commit(pDb->db, &err)) {
    quay_err e2;
    quay_db_rollback(pDb->db, &e2);
    lquay_fail(L, pDb, &err);
  }
}

/* The protected part of lquay_behav_save: [rec, arg]. */
typedef struct SaveArg {
  LModel *pM;
  void (*xSave)(lua_State *, int, void *);
  void *pArg;
  int bNew;
} SaveArg;

static int save_body(lua_State *L) {
  SaveArg *a = lua_touserdata(L, 2);
  lquay_behav_hook(L, a->pM, 1, "before_save", a->bNew);
  a->xSave(L, 1, a->pArg);
  lquay_behav_hook(L, a->pM, 1, "after_save", a->bNew);
  return 0;
}

/*
** Save the record at iRec with its model's save hooks: in a savepoint
** (a transaction when none is open), before_save(rec, creating), the
** save itself (xSave), after_save(rec, created), commit.  They run under
** lua_pcall, so any error (a hook's, a validation, the engine's) comes
** back here and the savepoint is rolled back explicitly; no to-be-closed
** box is needed, and none could do it in a coroutine the error kills
** (Lua leaves a dead coroutine's stack as it was).  The savepoint is held
** only across calls that cannot raise up to lua_pcall (house rule 3).
** Returns LUA_OK (stack as it was), or the pcall's status with the error
** pushed (the caller restores the record, then raises the error).
*/
int lquay_behav_save(lua_State *L, int iRec, LModel *pM,
                     void (*xSave)(lua_State *, int, void *), void *pArg) {
  LDb *pDb = lquay_enter(L, pM->pDb);
  SaveArg a;
  quay_err err;
  int top, rc;
  iRec = lua_absindex(L, iRec);
  top = lua_gettop(L);
  lua_rawgetp(L, iRec, &lquay_LK_PK);
  a.bNew = lua_isnil(L, -1);
  lua_pop(L, 1);
  a.pM = pM;
  a.xSave = xSave;
  a.pArg = pArg;
  luaL_checkstack(L, 4, "save");
  if (quay_db_begin(pDb->db, &err)) lquay_fail(L, pDb, &err);
  lua_pushcfunction(L, save_body);                   /* '-' calls only */
  lua_pushvalue(L, iRec);
  lua_pushlightuserdata(L, &a);
  rc = lua_pcall(L, 2, 0, 0);
  if (rc != LUA_OK) {                                /* [.., err] */
    quay_err e;
    quay_db_rollback(pDb->db, &e);
    return rc;
  }
  if (quay_db_commit(pDb->db, &err)) {               /* undone as well */
    quay_err e;
    quay_db_rollback(pDb->db, &e);
    lquay_cb_drop(L, pDb);
    lquay_push_error(L, &err);
    return LUA_ERRRUN;
  }
  lua_settop(L, top);
  return LUA_OK;
}

/*
** Call xBody with the arguments of the running C function (all of them)
** under lua_pcall and return its results, or raise its error again once
** the frames it left are unwound: their to-be-closed boxes (a bulk call's
** transaction) are closed by the pcall, also when the call runs in a
** coroutine the error kills.  For the bulk writes of models that run
** hooks and validate functions.
*/
int lquay_behav_protect(lua_State *L, lua_CFunction xBody) {
  int n = lua_gettop(L), i;
  luaL_checkstack(L, n + 2, "protect");
  lua_pushcfunction(L, xBody);
  for (i = 1; i <= n; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, n, LUA_MULTRET, 0) != LUA_OK) lua_error(L);
  return lua_gettop(L) - n;
}

/*
** {==================================================================
** Delete hooks
** ===================================================================
*/
/* Push a record of the Model at iModel from engine values aField. */
static void record_from(lua_State *L, int iModel, quay_model *m,
                        const quay_value *aField) {
  int i, n = quay_model_field_count(m), iRec;
  lua_createtable(L, 0, n + 1);                      /* [.., rec] */
  iRec = lua_gettop(L);
  for (i = 0; i < n; i++) {
    quay_field_info f;
    if (aField[i].type == QUAY_NULL) continue;
    quay_model_field(m, i, &f);
    lua_pushstring(L, f.zName);
    lquay_push_value(L, &aField[i]);
    lua_rawset(L, iRec);
  }
  lquay_push_value(L, &aField[quay_model_pk(m)]);
  lua_rawsetp(L, iRec, &lquay_LK_PK);
  lua_getiuservalue(L, iModel, 2);
  lua_setmetatable(L, iRec);
}

typedef struct DelArg {
  LDb *pDb;
  int eWhen;
  quay_model *m;
  int iRow;
  const quay_value *aField;
  int failed;
} DelArg;

/*
** Protected body of the delete observer: [ud].  Finds or makes the row's
** record, calls the hook under a nested pcall and keeps its error.
*/
static int delete_body(lua_State *L) {
  DelArg *a = lua_touserdata(L, 1);
  LDb *pDb = a->pDb;
  LDelCall *pCall = pDb->pDelCall;
  quay_model *m = a->m;
  const char *zHook = a->eWhen == QUAY_BEFORE_DELETE ? "before_delete"
                                                      : "after_delete";
  int iModel, iRows = 0, iRec;
  luaL_checkstack(L, 12, "delete hook");
  lquay_push_model(L, pDb, m);                       /* [ud, M] */
  iModel = lua_gettop(L);
  if (pCall) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, pCall);        /* [ud, M, rows] */
    if (lua_type(L, -1) == LUA_TTABLE) {
      iRows = lua_gettop(L);
      if (lua_rawgetp(L, iRows, m) != LUA_TTABLE) {  /* [.., list] */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, iRows, m);
      }
    }
  }
  if (iRows == 0) lua_newtable(L);                   /* a list of its own */
  /* The record: kept from the before call, rec:delete's own, or new. */
  lua_rawgeti(L, -1, a->iRow + 1);                   /* [.., list, rec?] */
  if (lua_isnil(L, -1) && iRows && pCall->pRoot == m) {
    lua_pop(L, 1);
    lua_getfield(L, iRows, "root");
    lua_rawgetp(L, -1, &lquay_LK_PK);
    lquay_push_value(L, &a->aField[quay_model_pk(m)]);
    if (!lua_rawequal(L, -1, -2)) {
      lua_pop(L, 3);
      lua_pushnil(L);
    } else {
      lua_pop(L, 2);
    }
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    record_from(L, iModel, m, a->aField);
  }
  iRec = lua_gettop(L);
  lua_pushvalue(L, iRec);
  lua_rawseti(L, iRec - 1, a->iRow + 1);
  if (a->eWhen == QUAY_AFTER_DELETE && quay_model_soft_delete(m)) {
    /* The soft delete's mark, on the record too. */
    int k;
    if (quay_model_member(m, "deleted_at", &k) == QUAY_M_FIELD) {
      lua_pushliteral(L, "deleted_at");
      lquay_push_value(L, &a->aField[k]);
      lua_rawset(L, iRec);
    }
  }
  if (!push_behav_model(L, iModel)) return 0;        /* [.., rec, bt] */
  if (lua_getfield(L, -1, zHook) != LUA_TFUNCTION) return 0;
  lua_pushvalue(L, iRec);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {             /* [.., bt, err] */
    a->failed = 1;
    if (lquay_behav_yielded(L, -1)) {
      quay_err e;
      quay_err_clear(&e);
      e.code = QUAY_EMISUSE;
      snprintf(e.zMsg, sizeof(e.zMsg), "model %s: hook %s yielded; hooks run "
               "inside the call that writes and may not yield (do the "
               "waiting before or after it)", quay_model_name(m), zHook);
      lua_pop(L, 1);
      lquay_push_error(L, &e);
    }
    if (pDb->cbErrRef == LUA_NOREF) {
      pDb->cbErrRef = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  return 0;
}

/*
** The db's delete observer (quay_db_on_delete): runs the hook of model m
** for one row, from inside the engine's delete call, so nothing here may
** raise: the work runs in delete_body under lua_pcall and a failure is
** reported as non-0 with the error kept for lquay_fail.
*/
int lquay_behav_on_delete(void *pArg, int eWhen, quay_model *m, int iRow,
                          const quay_value *aField) {
  LDb *pDb = pArg;
  lua_State *L = pDb->L;
  DelArg a;
  int top, rc;
  if (L == NULL || !lua_checkstack(L, 4)) return 1;
  top = lua_gettop(L);
  a.pDb = pDb;
  a.eWhen = eWhen;
  a.m = m;
  a.iRow = iRow;
  a.aField = aField;
  a.failed = 0;
  pDb->nHook++;
  lua_pushcfunction(L, delete_body);                 /* '-' calls */
  lua_pushlightuserdata(L, &a);
  rc = lua_pcall(L, 1, 0, 0);
  lua_settop(L, top);
  pDb->nHook--;
  return rc != LUA_OK || a.failed;
}

/*
** Register a binding delete call on the db while the engine runs it
** (see the header): iRoot (0: none) is rec:delete's record.  Only when
** the db has a model with delete hooks; every other delete costs a test.
** It may raise (it allocates), and registers the call on the db only once
** nothing can raise any more, so the caller calls it last before the
** engine, with every resource already in a box.
*/
void lquay_behav_delete_begin(lua_State *L, LDb *pDb, LDelCall *pCall,
                              int iRoot, quay_model *pRoot) {
  pCall->pPrev = pDb->pDelCall;
  pCall->pRoot = NULL;
  pCall->bOn = 0;
  if (!pDb->bDeleteHooks) return;
  lua_createtable(L, 0, 2);
  if (iRoot) {
    lua_pushvalue(L, iRoot);
    lua_setfield(L, -2, "root");
    pCall->pRoot = pRoot;
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, pCall);
  pCall->bOn = 1;
  pDb->pDelCall = pCall;
}

/* End a call registered with lquay_behav_delete_begin.  Removing the
** registry entry allocates nothing, so this runs before the engine's
** error is raised without a chance to fail. */
void lquay_behav_delete_end(lua_State *L, LDb *pDb, LDelCall *pCall) {
  if (!pCall->bOn) return;
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, pCall);
  pDb->pDelCall = pCall->pPrev;
  pCall->bOn = 0;
}
/* }================================================================== */


/*
** {==================================================================
** Soft delete and describe()
** ===================================================================
*/
/* Raise misuse when the call got more than nMax arguments. */
static void max_args(lua_State *L, int nMax, const char *zWhat) {
  if (lua_gettop(L) > nMax) {
    lquay_raisef(L, QUAY_EMISUSE, "%s takes %s; argument %d (a %s) would be "
                 "ignored", zWhat, nMax == 1 ? "no arguments" : "arguments",
                 nMax + 1, luaL_typename(L, nMax + 1));
  }
}

/* qs:with_deleted() / qs:only_deleted() */
static int qs_deleted(lua_State *L, int eMode, const char *zWhat) {
  LQs *q = lquay_check_qs(L, 1), *pOut;
  quay_err err;
  max_args(L, 1, zWhat);
  lua_getiuservalue(L, 1, 1);                        /* [qs, M] */
  lquay_ready(L, lua_touserdata(L, 2));
  lquay_push_qs(L, 2, NULL);                         /* [qs, M, out] */
  pOut = lua_touserdata(L, -1);
  if (quay_qs_with_deleted(q->qs, eMode, &pOut->qs, &err)) {
    lquay_raise(L, &err);
  }
  return 1;
}

static int qs_with_deleted(lua_State *L) {
  return qs_deleted(L, QUAY_DELETED_INCLUDE, "with_deleted");
}

static int qs_only_deleted(lua_State *L) {
  return qs_deleted(L, QUAY_DELETED_ONLY, "only_deleted");
}

/* Push Model:with_deleted():filter { <pk> = key [, deleted_at__isnull =
** false] } for the record at 1 (its Model at iModel, its key at iKey). */
static void restore_qs(lua_State *L, int iModel, int iKey, const char *zPk,
                       int bDeleted) {
  lua_getfield(L, iModel, "with_deleted");
  lua_pushvalue(L, iModel);
  lua_call(L, 1, 1);                                 /* [.., qs] */
  lua_getfield(L, -1, "filter");
  lua_insert(L, -2);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, iKey);
  lua_setfield(L, -2, zPk);
  if (bDeleted) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "deleted_at__isnull");
  }
  lua_call(L, 2, 1);                                 /* [.., qs2] */
}

/*
** rec:restore(): clears deleted_at of a soft-deleted record's row.
** Returns true, or false when the row was not soft-deleted (nothing
** changes).  No hooks run.  `not_found` when the row is gone.
*/
static int rec_restore(lua_State *L) {
  LModel *pM = lquay_record_model(L, 1);
  quay_field_info pk;
  if (pM == NULL) {
    lquay_raisef(L, QUAY_EMISUSE, "call rec:restore() with a colon (restore "
                 "got a %s, not a record)", luaL_typename(L, 1));
  }
  lquay_check_open(L, pM->pDb);
  max_args(L, 1, "restore");
  lquay_ready(L, pM);
  if (!quay_model_soft_delete(pM->m)) {
    lquay_raisef(L, QUAY_EMISUSE, "%s has no soft_delete: restore applies to "
                 "soft_delete models only", quay_model_name(pM->m));
  }
  lua_rawgetp(L, 1, &lquay_LK_PK);                   /* [rec, key] */
  if (lua_isnil(L, 2)) {
    lquay_raisef(L, QUAY_EVALIDATION, "%s(new) was never saved; there is "
                 "nothing to restore", quay_model_name(pM->m));
  }
  quay_model_field(pM->m, quay_model_pk(pM->m), &pk);
  lquay_push_model(L, pM->pDb, pM->m);               /* [rec, key, M] */
  restore_qs(L, 3, 2, pk.zName, 1);                  /* [.., qs] */
  lua_getfield(L, -1, "update");
  lua_insert(L, -2);
  lua_createtable(L, 0, 1);
  lquay_push_null(L);
  lua_setfield(L, -2, "deleted_at");
  lua_call(L, 2, 1);                                 /* [rec, key, M, n] */
  if (lua_tointeger(L, -1) > 0) {
    lua_pushliteral(L, "deleted_at");
    lua_pushnil(L);
    lua_rawset(L, 1);
    lua_pushboolean(L, 1);
    return 1;
  }
  restore_qs(L, 3, 2, pk.zName, 0);
  /* Part of the write: whether the row is there is the primary's answer
  ** (a replica may not have the row yet, and sticky may be 0). */
  lua_getfield(L, -1, "using");
  lua_insert(L, -2);
  lua_pushliteral(L, "primary");
  lua_call(L, 2, 1);
  lua_getfield(L, -1, "exists");
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  if (!lua_toboolean(L, -1)) {
    lquay_raisef(L, QUAY_ENOT_FOUND, "%s %s no longer exists; there is "
                 "nothing to restore", quay_model_name(pM->m),
                 luaL_tolstring(L, 2, NULL));
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* A sorted list of the keys of the table field zKey of bt (at -1). */
static void push_sorted_names(lua_State *L, const char *zKey) {
  int n = 0, i;
  lua_newtable(L);                                   /* [.., bt, list] */
  if (lua_getfield(L, -2, zKey) == LUA_TTABLE) {     /* [.., list, t] */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      /* insertion sort: names are few */
      for (i = n; i > 0; i--) {
        lua_rawgeti(L, -3, i);
        if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) <= 0) {
          lua_pop(L, 1);
          break;
        }
        lua_rawseti(L, -4, i + 1);
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, -4, i + 1);
      n++;
    }
  }
  lua_pop(L, 1);
}

/*
** describe(): the behaviour entries of model m's description (the table
** at the top): fields' choices, min and max; the model's methods and
** scopes (sorted lists of names) and soft_delete.
*/
void lquay_behav_describe(lua_State *L, LDb *pDb, quay_model *m) {
  int iDesc = lua_gettop(L), i, n;
  luaL_checkstack(L, 10, "describe");
  lua_getfield(L, iDesc, "fields");                  /* [.., d, fields] */
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    quay_field_info f;
    int k, j;
    lua_rawgeti(L, -1, i);                           /* [.., fields, e] */
    lua_getfield(L, -1, "name");
    if (quay_model_member(m, lua_tostring(L, -1), &k) == QUAY_M_FIELD &&
        quay_model_field(m, k, &f) == QUAY_OK) {
      if (f.nChoice > 0) {
        lua_createtable(L, f.nChoice, 0);
        for (j = 0; j < f.nChoice; j++) {
          lquay_push_value(L, &f.aChoice[j]);
          lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -3, "choices");
      }
      if (f.pMin) {
        lquay_push_value(L, f.pMin);
        lua_setfield(L, -3, "min");
      }
      if (f.pMax) {
        lquay_push_value(L, f.pMax);
        lua_setfield(L, -3, "max");
      }
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);                                     /* [.., d] */
  lua_pushboolean(L, quay_model_soft_delete(m));
  lua_setfield(L, iDesc, "soft_delete");
  lquay_push_model(L, pDb, m);                       /* [.., d, M] */
  lua_getiuservalue(L, -1, 2);                       /* [.., d, M, mt] */
  if (!push_behav_mt(L, lua_gettop(L))) {
    lua_createtable(L, 0, 0);
  }                                                  /* [.., mt, bt] */
  push_sorted_names(L, "methods");
  lua_setfield(L, iDesc, "methods");
  push_sorted_names(L, "scopes");
  lua_setfield(L, iDesc, "scopes");
  lua_settop(L, iDesc);
}

/* Add the behaviour methods to the query-set and record method tables
** (after lquay_open_record and lquay_open_qs). */
void lquay_open_behav(lua_State *L) {
  luaL_getmetatable(L, QUAY_QS_MT);
  lua_getfield(L, -1, "__methods");                  /* [mt, ms] */
  lua_pushcfunction(L, qs_with_deleted);
  lua_setfield(L, -2, "with_deleted");
  lua_pushcfunction(L, qs_only_deleted);
  lua_setfield(L, -2, "only_deleted");
  lua_pop(L, 2);
  luaL_getmetatable(L, QUAY_MODEL_MT);
  lua_rawgetp(L, -1, &lquay_LK_RECMETHODS);
  lua_pushcfunction(L, rec_restore);
  lua_setfield(L, -2, "restore");
  lua_pop(L, 2);
}
/* }================================================================== */
