/*
** engine/cascade.c
** The delete planner: Django's on_delete semantics, computed by the
** engine, run set-based in one transaction.
** See LICENSE
**
** Deleting rows of a model walks the relation graph breadth first.  For
** the keys found in one round it runs, per referring relation, one query
** with the keys as one array parameter, and applies the relation's rule:
**
**   CASCADE      the referring rows join the deletion (next round);
**   SET_NULL,    the referring rows are updated (set-based, by key);
**   SET_DEFAULT
**   PROTECT      the referring rows are blockers: refuse with `protected`;
**   RESTRICT     the referring rows are blockers unless the same call
**                deletes them through a cascade (checked after the walk,
**                Django's Artist/Album/Song rule);
**   NO_ACTION    nothing: the database's constraint decides (`integrity`).
**
** Rows of automatic join tables are always removed with either side.
** Keys live in one quay_keyset per model (dedupe, dense order), and each
** round processes the keys added since the last, so a self-referential
** tree 1,000 deep is 1,000 rounds of a loop, never C recursion.
**
** Nothing is written until the walk is complete, so PROTECT / RESTRICT
** errors change nothing.  Then, in one transaction (a savepoint inside a
** user's transaction): SET_NULL/SET_DEFAULT updates, join rows, models
** with no referrers straight by foreign key, then every collected model
** children-first by key.  Foreign-key checks are deferred only when the
** models to delete reference each other in a cycle.  Any failure rolls
** everything back.  A dry run reports the counts of the walk, and runs the
** same statements and rolls them back, so it raises what the real run
** raises: a NO_ACTION reference the database refuses (`integrity`), a
** SET_DEFAULT to a missing row.  (With keys deferred for a cycle, SQLite
** would forget a violation when deferral ends; its driver checks for one
** first, so a dry run raises it too.)
**
** Delete hooks.  A model marked with quay_model_set_delete_hooks is never
** deleted straight by foreign key: its keys are collected like any
** cascaded model's, and after the walk (so a refusal calls no hook) its
** rows are loaded, one statement per model, and handed to the db's
** delete observer (quay_db_on_delete) row by row: before anything is
** written, parents before children (QUAY_BEFORE_DELETE), and again once
** every statement ran, children before parents (QUAY_AFTER_DELETE), all
** inside the call's transaction.  An observer that fails rolls everything
** back.  Models without hooks keep the set-based statements above, and a
** call that touches none loads nothing.  Dry runs call no hook.
**
** Soft deletes.  The rows of a soft_delete model (quay_model_set_soft_delete)
** are not deleted unless the caller says QUAY_DELETE_HARD: one UPDATE sets
** deleted_at (UTC, to the second) on those of the keys whose deleted_at
** is NULL, with no cascade; their delete hooks run around it.  A hard
** delete cascades as above into every model, soft_delete ones included
** (their rows are deleted for real, as Django deletes them).
*/
#include "quayInt.h"

#include <stdio.h>

/* A relation through which rows of pChild refer to rows of the parent. */
typedef struct Referrer {
  quay_model *pChild;
  Field *pFk;               /* column of pChild */
  Field *pKey;              /* referenced field of the parent */
  int eRule;
  Rel *pRel;                /* for messages */
  JoinTable *pJoin;         /* automatic join table (pChild NULL) */
  const char *zJoinCol;
} Referrer;

typedef struct ModelState {
  quay_keyset *pDel;        /* keys to delete */
  int nDone;                /* keys already walked */
  int nDirect;              /* direct (by FK) deletes planned */
  int64_t nDeleted;
} ModelState;

/* A planned statement after the walk. */
typedef struct Action {
  int eKind;                /* 1 update-null, 2 update-default, 3 delete by fk,
                            ** 4 join delete */
  quay_model *pModel;       /* target model (kinds 1-3) */
  JoinTable *pJoin;         /* kind 4 */
  const char *zTable, *zCol;
  Field *pFk;
  quay_value *aKey; int nKey;  /* parent key values (arena) */
  int eKeyType;
} Action;

typedef struct Blocker {
  quay_model *pModel;
  quay_value key;           /* arena copy */
  Referrer *pRef;
  quay_model *pParent;
} Blocker;

/* Rows of one model loaded for its delete hooks. */
typedef struct HookRows {
  quay_value *aVal;         /* nRow rows of the model's nField values */
  int nRow, nAlloc;
} HookRows;

typedef struct Cascade {
  quay_db *pDb;
  Arena arena;
  ModelState *aState;
  Referrer **apRef; int *anRef;   /* per model */
  Action *aAct; int nAct, nActAlloc;
  Blocker *aProt; int nProt, nProtAlloc;
  Blocker *aRestr; int nRestr, nRestrAlloc;
  int64_t *anJoin;                /* dry run: join rows per join table */
  quay_keyset **apJoinKs;         /* dry run: join row ids */
  int bDry;
  HookRows *aHook;                /* per model; NULL: no model has hooks */
  quay_err *pErr;
} Cascade;

/* quay__cascade_delete's mFlags beyond QUAY_DELETE_DRY_RUN. */
#define CASCADE_SOFT 0x0100       /* soft-delete a soft_delete model */
#define CASCADE_IN_TXN 0x0200     /* the caller opened the transaction level */

/*
** {==================================================================
** Referrers
** ===================================================================
*/
static int add_ref(Cascade *x, quay_model *pParent, const Referrer *r) {
  int i = pParent->iModel;
  Referrer *a = quay__arena_alloc(&x->arena, sizeof(Referrer) *
                                                 (size_t)(x->anRef[i] + 1));
  if (a == NULL) return QUAY_ENOMEM;
  if (x->anRef[i]) {
    memcpy(a, x->apRef[i], sizeof(Referrer) * (size_t)x->anRef[i]);
  }
  a[x->anRef[i]++] = *r;
  x->apRef[i] = a;
  return QUAY_OK;
}

/* Build the referrer lists of every model. */
static int build_refs(Cascade *x) {
  quay_db *pDb = x->pDb;
  int i, k;
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *m = pDb->apModel[i];
    for (k = 0; k < m->nDeclRel; k++) {
      Rel *r = m->apRel[k];
      Referrer ref;
      memset(&ref, 0, sizeof(ref));
      if (!r->resolved) continue;
      ref.pRel = r;
      ref.eRule = r->eOnDelete;
      if (r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) {
        ref.pChild = m;
        ref.pFk = r->pFk;
        ref.pKey = r->pKey;
        if (add_ref(x, r->pTo, &ref)) return QUAY_ENOMEM;
      } else if (r->eKind == QUAY_R_HAS_MANY || r->eKind == QUAY_R_HAS_ONE) {
        ref.pChild = r->pTo;
        ref.pFk = r->pFk;
        ref.pKey = r->pKey;
        if (add_ref(x, m, &ref)) return QUAY_ENOMEM;
      }
    }
  }
  for (i = 0; i < pDb->nJoin; i++) {
    JoinTable *j = pDb->apJoin[i];
    Referrer ref;
    if (j->pThrough) continue;      /* an ordinary model */
    memset(&ref, 0, sizeof(ref));
    ref.pJoin = j;
    ref.eRule = QUAY_CASCADE;
    ref.zJoinCol = j->zSrcCol;
    ref.pKey = j->pSrcKey;
    if (add_ref(x, j->pSrc, &ref)) return QUAY_ENOMEM;
    ref.zJoinCol = j->zDstCol;
    ref.pKey = j->pDstKey;
    if (add_ref(x, j->pDst, &ref)) return QUAY_ENOMEM;
  }
  return QUAY_OK;
}

/*
** A model whose rows can be deleted straight by foreign key: nothing
** refers to it and it has no RESTRICT relation (whose check needs its
** deletion set).  Not in dry runs, which must count exactly.
*/
static int is_leaf(Cascade *x, quay_model *m) {
  int k;
  if (x->bDry) return 0;
  if (x->anRef[m->iModel] > 0) return 0;
  if (x->aHook && m->bDeleteHooks) return 0;   /* its rows are loaded */
  for (k = 0; k < m->nDeclRel; k++) {
    Rel *r = m->apRel[k];
    if ((r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) &&
        r->eOnDelete == QUAY_RESTRICT) {
      return 0;
    }
  }
  return 1;
}
/* }================================================================== */


/*
** {==================================================================
** Running one query
** ===================================================================
*/
/* "zExpr IN <keys>" with the keys as one array parameter (or inline). */
static void keys_in(Build *b, const char *zCol, const quay_value *a, int n,
                    int eType) {
  Str e;
  char *zExpr;
  quay__str_init(&e);
  quay__str_ident(&e, zCol);
  zExpr = e.oom ? NULL : quay__arena_strdup(b->pArena, e.z, e.n);
  quay__str_free(&e);
  if (zExpr == NULL) {
    b->pArena->oom = 1;
    return;
  }
  if (n == 1) {
    quay__str_printf(&b->sql, "%s = ", zExpr);
    quay__build_param(b, &a[0]);
  } else {
    quay__build_array(b, zExpr, a, n, eType);
  }
}

/* Copy a value into the arena (text and blob bytes too). */
static int keep(Cascade *x, quay_value *v) {
  if (QUAY_VALUE_HAS_BYTES(v->type)) {
    char *z = quay__arena_strdup(&x->arena, v->u.z, v->n);
    if (z == NULL) return QUAY_ENOMEM;
    v->u.z = z;
  }
  return QUAY_OK;
}

/*
** SELECT zSel1[, zSel2] FROM table WHERE zCol IN keys; call xRow per row.
*/
typedef int (*RowFn)(Cascade *x, void *pArg, quay_value *a);

static int select_in(Cascade *x, const char *zTable, const char *zSel1,
                     int eHint1, const char *zSel2, int eHint2,
                     const char *zCol, const quay_value *aKey, int nKey,
                     int eKeyType, RowFn xRow, void *pArg) {
  Build b;
  quay_cursor *c = NULL;
  int rc;
  quay__build_init(&b, x->pDb, &x->arena, x->pErr);
  quay__str_cat(&b.sql, "SELECT ");
  quay__str_ident(&b.sql, zSel1);
  if (zSel2) {
    quay__str_cat(&b.sql, ", ");
    quay__str_ident(&b.sql, zSel2);
  }
  quay__str_cat(&b.sql, " FROM ");
  quay__str_ident(&b.sql, zTable);
  quay__str_cat(&b.sql, " WHERE ");
  keys_in(&b, zCol, aKey, nKey, eKeyType);
  rc = quay__build_rc(&b);
  if (rc == QUAY_OK) {
    int aH[2];
    aH[0] = eHint1;
    aH[1] = eHint2;
    rc = quay__db_run(x->pDb, b.sql.z, b.params.a, b.params.n, aH,
                      zSel2 ? 2 : 1, 0, &c, NULL, x->pErr);
  }
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, x->pErr)) == QUAY_ROW) {
    quay_value a[2];
    quay_cursor_value(c, 0, &a[0]);
    if (zSel2) quay_cursor_value(c, 1, &a[1]);
    rc = xRow(x, pArg, a);
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  quay__build_free(&b);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** The walk
** ===================================================================
*/
static int row_cascade(Cascade *x, void *pArg, quay_value *a) {
  quay_model *m = pArg;
  int idx;
  return quay_keyset_add(x->aState[m->iModel].pDel, &a[0], &idx, x->pErr);
}

typedef struct BlockArg {
  Blocker **paB; int *pn, *pnAlloc;
  Referrer *pRef;
  quay_model *pParent;
} BlockArg;

static int row_block(Cascade *x, void *pArg, quay_value *a) {
  BlockArg *ba = pArg;
  Blocker *b;
  if (*ba->pn == *ba->pnAlloc) {
    int nNew = *ba->pnAlloc ? *ba->pnAlloc * 2 : 16;
    Blocker *aNew = quay__arena_alloc(&x->arena, sizeof(Blocker) *
                                                     (size_t)nNew);
    if (aNew == NULL) return quay__oom(x->pErr);
    if (*ba->pn) memcpy(aNew, *ba->paB, sizeof(Blocker) * (size_t)*ba->pn);
    *ba->paB = aNew;
    *ba->pnAlloc = nNew;
  }
  b = &(*ba->paB)[(*ba->pn)++];
  b->pModel = ba->pRef->pChild;
  b->key = a[0];
  b->pRef = ba->pRef;
  b->pParent = ba->pParent;
  return keep(x, &b->key) ? quay__oom(x->pErr) : QUAY_OK;
}

static int row_joinid(Cascade *x, void *pArg, quay_value *a) {
  int idx;
  return quay_keyset_add((quay_keyset *)pArg, &a[0], &idx, x->pErr);
}

static int add_action(Cascade *x, const Action *pA) {
  if (x->nAct == x->nActAlloc) {
    int nNew = x->nActAlloc ? x->nActAlloc * 2 : 16;
    Action *a = quay__arena_alloc(&x->arena, sizeof(Action) * (size_t)nNew);
    if (a == NULL) return quay__oom(x->pErr);
    if (x->nAct) memcpy(a, x->aAct, sizeof(Action) * (size_t)x->nAct);
    x->aAct = a;
    x->nActAlloc = nNew;
  }
  x->aAct[x->nAct++] = *pA;
  return QUAY_OK;
}

typedef struct ValArg {
  quay_value *a; int n, nAlloc;
} ValArg;

static int row_value(Cascade *x, void *pArg, quay_value *a) {
  ValArg *va = pArg;
  if (a[0].type == QUAY_NULL) return QUAY_OK;
  if (va->n == va->nAlloc) {
    int nNew = va->nAlloc ? va->nAlloc * 2 : 64;
    quay_value *aNew = quay__arena_alloc(&x->arena, sizeof(quay_value) *
                                                        (size_t)nNew);
    if (aNew == NULL) return quay__oom(x->pErr);
    if (va->n) memcpy(aNew, va->a, sizeof(quay_value) * (size_t)va->n);
    va->a = aNew;
    va->nAlloc = nNew;
  }
  va->a[va->n] = a[0];
  if (keep(x, &va->a[va->n])) return quay__oom(x->pErr);
  va->n++;
  return QUAY_OK;
}

/*
** Walk one batch of keys of model m: keys aKey[0..n) (primary keys).
*/
static int walk_batch(Cascade *x, quay_model *m, quay_value *aKey, int n) {
  int i, rc;
  Referrer *aRef = x->apRef[m->iModel];
  Field *pk = m->apField[m->iPk];
  for (i = 0; i < x->anRef[m->iModel]; i++) {
    Referrer *r = &aRef[i];
    quay_value *aVal = aKey;
    int nVal = n;
    if (r->pKey != pk) {
      /* Referenced by another (unique) field: read its values. */
      ValArg va;
      memset(&va, 0, sizeof(va));
      rc = select_in(x, m->zTable, r->pKey->zCol, r->pKey->eType, NULL, 0,
                     pk->zCol, aKey, n, pk->eType, row_value, &va);
      if (rc) return rc;
      aVal = va.a;
      nVal = va.n;
      if (nVal == 0) continue;
    }
    if (r->pJoin) {
      if (x->bDry) {
        int j;
        for (j = 0; j < x->pDb->nJoin; j++) {
          if (x->pDb->apJoin[j] == r->pJoin) break;
        }
        rc = select_in(x, r->pJoin->zTable, "id", QUAY_T_INTEGER, NULL, 0,
                       r->zJoinCol, aVal, nVal, r->pKey->eType, row_joinid,
                       x->apJoinKs[j]);
        if (rc) return rc;
      } else {
        Action act;
        memset(&act, 0, sizeof(act));
        act.eKind = 4;
        act.pJoin = r->pJoin;
        act.zTable = r->pJoin->zTable;
        act.zCol = r->zJoinCol;
        act.aKey = aVal;
        act.nKey = nVal;
        act.eKeyType = r->pKey->eType;
        rc = add_action(x, &act);
        if (rc) return rc;
      }
      continue;
    }
    switch (r->eRule) {
      case QUAY_CASCADE: {
        quay_model *c = r->pChild;
        if (is_leaf(x, c)) {
          Action act;
          memset(&act, 0, sizeof(act));
          act.eKind = 3;
          act.pModel = c;
          act.zTable = c->zTable;
          act.zCol = r->pFk->zCol;
          act.pFk = r->pFk;
          act.aKey = aVal;
          act.nKey = nVal;
          act.eKeyType = r->pKey->eType;
          rc = add_action(x, &act);
        } else {
          Field *cpk = c->apField[c->iPk];
          rc = select_in(x, c->zTable, cpk->zCol, cpk->eType, NULL, 0,
                         r->pFk->zCol, aVal, nVal, r->pKey->eType,
                         row_cascade, c);
        }
        if (rc) return rc;
        break;
      }
      case QUAY_SET_NULL:
      case QUAY_SET_DEFAULT: {
        Action act;
        memset(&act, 0, sizeof(act));
        act.eKind = r->eRule == QUAY_SET_NULL ? 1 : 2;
        act.pModel = r->pChild;
        act.zTable = r->pChild->zTable;
        act.zCol = r->pFk->zCol;
        act.pFk = r->pFk;
        act.aKey = aVal;
        act.nKey = nVal;
        act.eKeyType = r->pKey->eType;
        rc = add_action(x, &act);
        if (rc) return rc;
        break;
      }
      case QUAY_PROTECT:
      case QUAY_RESTRICT: {
        BlockArg ba;
        Field *cpk = r->pChild->apField[r->pChild->iPk];
        if (r->eRule == QUAY_PROTECT) {
          ba.paB = &x->aProt;
          ba.pn = &x->nProt;
          ba.pnAlloc = &x->nProtAlloc;
        } else {
          ba.paB = &x->aRestr;
          ba.pn = &x->nRestr;
          ba.pnAlloc = &x->nRestrAlloc;
        }
        ba.pRef = r;
        ba.pParent = m;
        rc = select_in(x, r->pChild->zTable, cpk->zCol, cpk->eType, NULL, 0,
                       r->pFk->zCol, aVal, nVal, r->pKey->eType, row_block,
                       &ba);
        if (rc) return rc;
        break;
      }
      default:
        break;                        /* NO_ACTION: the database decides */
    }
  }
  return QUAY_OK;
}

/* Walk rounds until no model has unwalked keys. */
static int walk(Cascade *x) {
  quay_db *pDb = x->pDb;
  int progress = 1, i, rc;
  while (progress) {
    progress = 0;
    for (i = 0; i < pDb->nModel; i++) {
      ModelState *s = &x->aState[i];
      int nNow;
      quay_value *aAll;
      if (s->pDel == NULL) continue;
      nNow = quay_keyset_count(s->pDel);
      if (nNow == s->nDone) continue;
      if (quay__keyset_values(s->pDel, &x->arena, &aAll)) {
        return quay__oom(x->pErr);
      }
      /* Copy this round's keys: the key set's text pool may move. */
      {
        int n = nNow - s->nDone, k;
        quay_value *aBatch = quay__arena_alloc(&x->arena, sizeof(quay_value) *
                                                             (size_t)n);
        if (aBatch == NULL) return quay__oom(x->pErr);
        for (k = 0; k < n; k++) {
          aBatch[k] = aAll[s->nDone + k];
          if (keep(x, &aBatch[k])) return quay__oom(x->pErr);
        }
        s->nDone = nNow;
        rc = walk_batch(x, pDb->apModel[i], aBatch, n);
        if (rc) return rc;
      }
      progress = 1;
    }
  }
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** Blockers and errors
** ===================================================================
*/
static void key_text(const quay_value *v, char *z, size_t n) {
  switch (v->type) {
    case QUAY_INT: snprintf(z, n, "%lld", (long long)v->u.i); break;
    case QUAY_TEXT: snprintf(z, n, "'%.*s'", (int)(v->n > 40 ? 40 : v->n),
                             v->u.z); break;
    default: snprintf(z, n, "?"); break;
  }
}

/* Record blockers on the db and format the error. */
static int blocked(Cascade *x, Blocker *a, int n, int code) {
  char **az = quay__calloc(sizeof(char *) * (size_t)(n + 1));
  quay_value *aKey = quay__calloc(sizeof(quay_value) * (size_t)(n + 1));
  Str msg;
  int i;
  if (az == NULL || aKey == NULL) {
    quay__free(az);
    quay__free(aKey);
    return quay__oom(x->pErr);
  }
  for (i = 0; i < n; i++) {
    az[i] = quay__strdup(a[i].pModel->zName);
    if (az[i] == NULL || quay__value_copy(&aKey[i], &a[i].key)) {
      int k;
      for (k = 0; k <= i; k++) {
        quay__free(az[k]);
        quay__value_clear(&aKey[k]);
      }
      quay__free(az);
      quay__free(aKey);
      return quay__oom(x->pErr);
    }
  }
  quay__db_set_blockers(x->pDb, az, aKey, n);
  quay__str_init(&msg);
  quay__str_printf(&msg, "cannot delete %s: %d record(s) %s it through "
                   "%s.%s (on_delete = %s): ", a[0].pParent->zName, n,
                   code == QUAY_EPROTECTED ? "protect" : "restrict",
                   a[0].pRef->pChild->zName, a[0].pRef->pRel->zName,
                   quay__rule_name(a[0].pRef->eRule));
  for (i = 0; i < n && i < 20; i++) {
    char z[64];
    key_text(&a[i].key, z, sizeof(z));
    quay__str_printf(&msg, "%s%s %s", i ? ", " : "", a[i].pModel->zName, z);
  }
  if (n > 20) quay__str_printf(&msg, ", ... (%d more)", n - 20);
  quay__str_cat(&msg, code == QUAY_EPROTECTED
                          ? "; delete or reassign them first"
                          : "; delete them first, or delete them in the "
                            "same call through a CASCADE");
  quay__err(x->pErr, code, "%s", msg.oom ? "cannot delete" : msg.z);
  quay__str_free(&msg);
  return code;
}

/* RESTRICT blockers that this call does not delete. */
static int check_restrict(Cascade *x) {
  int i, n = 0;
  Blocker *a;
  if (x->nRestr == 0) return QUAY_OK;
  a = quay__arena_alloc(&x->arena, sizeof(Blocker) * (size_t)x->nRestr);
  if (a == NULL) return quay__oom(x->pErr);
  for (i = 0; i < x->nRestr; i++) {
    Blocker *b = &x->aRestr[i];
    ModelState *s = &x->aState[b->pModel->iModel];
    if (s->pDel && quay_keyset_find(s->pDel, &b->key) >= 0) continue;
    a[n++] = *b;
  }
  if (n == 0) return QUAY_OK;
  return blocked(x, a, n, QUAY_ERESTRICTED);
}
/* }================================================================== */


/*
** {==================================================================
** Execution
** ===================================================================
*/
/* Run one statement "<zHead> WHERE col IN keys"; add changes to *pn. */
static int run_in(Cascade *x, const char *zHead, const char *zCol,
                  const quay_value *aKey, int nKey, int eType,
                  const quay_value *pSetVal, int64_t *pn) {
  Build b;
  int64_t n = 0;
  int rc;
  quay__build_init(&b, x->pDb, &x->arena, x->pErr);
  quay__str_cat(&b.sql, zHead);
  if (pSetVal) quay__build_param(&b, pSetVal);
  quay__str_cat(&b.sql, " WHERE ");
  keys_in(&b, zCol, aKey, nKey, eType);
  rc = quay__build_exec(&b, &n);
  quay__build_free(&b);
  if (pn) *pn += n;
  return rc;
}

/* Head of a statement into an arena string. */
static char *head(Cascade *x, const char *zVerb, const char *zTable,
                  const char *zSetCol) {
  Str s;
  char *z;
  quay__str_init(&s);
  quay__str_cat(&s, zVerb);
  quay__str_ident(&s, zTable);
  if (zSetCol) {
    quay__str_cat(&s, " SET ");
    quay__str_ident(&s, zSetCol);
    quay__str_cat(&s, " = ");
  }
  z = s.oom ? NULL : quay__arena_strdup(&x->arena, s.z, s.n);
  quay__str_free(&s);
  return z;
}

/*
** Order the models with keys so that children come before the models
** they reference: the reverse of the reference order
** (quay__model_order).  *pbCycle is set when no such order exists.
*/
static int delete_order(Cascade *x, int *aOrder, int *pn, int *pbCycle) {
  quay_db *pDb = x->pDb;
  int i, n = 0;
  unsigned char *aWant = quay__arena_alloc(&x->arena, (size_t)pDb->nModel + 1);
  if (aWant == NULL) return QUAY_ENOMEM;
  for (i = 0; i < pDb->nModel; i++) {
    ModelState *s = &x->aState[i];
    aWant[i] = s->pDel && quay_keyset_count(s->pDel) > 0;
  }
  if (quay__model_order(pDb, aWant, aOrder, &n, pbCycle)) return QUAY_ENOMEM;
  for (i = 0; i < n / 2; i++) {
    int t = aOrder[i];
    aOrder[i] = aOrder[n - 1 - i];
    aOrder[n - 1 - i] = t;
  }
  *pn = n;
  return QUAY_OK;
}

static int execute(Cascade *x) {
  quay_db *pDb = x->pDb;
  int i, rc = QUAY_OK, nOrder = 0, bCycle = 0, deferred = 0;
  int *aOrder = quay__arena_alloc(&x->arena, sizeof(int) *
                                                 (size_t)(pDb->nModel + 1));
  if (aOrder == NULL) return quay__oom(x->pErr);
  if (delete_order(x, aOrder, &nOrder, &bCycle)) return quay__oom(x->pErr);
  if (bCycle) {
    rc = quay__db_simple(pDb, pDb->pDialect->zDeferFks, x->pErr);
    if (rc) goto done;
    deferred = 1;
  }
  /* 1. SET_NULL / SET_DEFAULT updates. */
  for (i = 0; i < x->nAct; i++) {
    Action *a = &x->aAct[i];
    char *zHead;
    if (a->eKind != 1 && a->eKind != 2) continue;
    zHead = head(x, "UPDATE ", a->zTable, a->zCol);
    if (zHead == NULL) {
      rc = quay__oom(x->pErr);
      goto done;
    }
    if (a->eKind == 1) {
      quay_value vNull;
      vNull.type = QUAY_NULL;
      rc = run_in(x, zHead, a->zCol, a->aKey, a->nKey, a->eKeyType, &vNull,
                  NULL);
    } else {
      rc = run_in(x, zHead, a->zCol, a->aKey, a->nKey, a->eKeyType,
                  &a->pFk->dflt, NULL);
    }
    if (rc) goto done;
  }
  /* 2. Join rows, 3. leaf models by foreign key. */
  for (i = 0; i < x->nAct; i++) {
    Action *a = &x->aAct[i];
    char *zHead;
    int64_t n = 0;
    if (a->eKind != 3 && a->eKind != 4) continue;
    zHead = head(x, "DELETE FROM ", a->zTable, NULL);
    if (zHead == NULL) {
      rc = quay__oom(x->pErr);
      goto done;
    }
    rc = run_in(x, zHead, a->zCol, a->aKey, a->nKey, a->eKeyType, NULL, &n);
    if (rc) goto done;
    if (a->eKind == 3) {
      x->aState[a->pModel->iModel].nDeleted += n;
    } else {
      int j;
      for (j = 0; j < pDb->nJoin; j++) {
        if (pDb->apJoin[j] == a->pJoin) x->anJoin[j] += n;
      }
    }
  }
  /* 4. Collected rows, children first. */
  for (i = 0; i < nOrder; i++) {
    quay_model *m = pDb->apModel[aOrder[i]];
    ModelState *s = &x->aState[m->iModel];
    quay_value *aKey;
    char *zHead = head(x, "DELETE FROM ", m->zTable, NULL);
    if (zHead == NULL || quay__keyset_values(s->pDel, &x->arena, &aKey)) {
      rc = quay__oom(x->pErr);
      goto done;
    }
    rc = run_in(x, zHead, m->apField[m->iPk]->zCol, aKey,
                quay_keyset_count(s->pDel), m->apField[m->iPk]->eType, NULL,
                &s->nDeleted);
    if (rc) goto done;
  }
  if (deferred) {
    rc = quay__db_simple(pDb, pDb->pDialect->zUndeferFks, x->pErr);
    deferred = 0;
  }
done:
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Delete hooks and soft deletes
** ===================================================================
*/
void quay_db_on_delete(quay_db *pDb, quay_delete_fn xDelete, void *pArg) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return;
  }
  pDb->xDelete = xDelete;
  pDb->pDeleteArg = xDelete ? pArg : NULL;
}

void quay_model_set_delete_hooks(quay_model *pModel, int bOn) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pModel == NULL) {
    return;
  }
  pModel->bDeleteHooks = bOn != 0;
}

int quay_model_delete_hooks(const quay_model *pModel) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pModel == NULL) {
    return 0;
  }
  return pModel->bDeleteHooks;
}

/*
** Load the rows of m whose primary keys are aKey[0..nKey) (bLive: only
** those whose deleted_at is NULL) into x->aHook[m], in key order, every
** value copied into the arena.  With pnOut (no hooks wanted: a dry run's
** count), only count them.
*/
static int hook_load(Cascade *x, quay_model *m, const quay_value *aKey,
                     int nKey, int bLive, int64_t *pnOut) {
  HookRows *h = x->aHook ? &x->aHook[m->iModel] : NULL;
  Field *pk = m->apField[m->iPk];
  Build b;
  quay_cursor *c = NULL;
  int *aHint = NULL, rc, k, nCol = pnOut ? 1 : m->nField;
  quay__build_init(&b, x->pDb, &x->arena, x->pErr);
  quay__str_cat(&b.sql, "SELECT ");
  for (k = 0; k < nCol; k++) {
    if (k) quay__str_cat(&b.sql, ", ");
    quay__str_ident(&b.sql, pnOut ? pk->zCol : m->apField[k]->zCol);
  }
  quay__str_cat(&b.sql, " FROM ");
  quay__str_ident(&b.sql, m->zTable);
  quay__str_cat(&b.sql, " WHERE ");
  keys_in(&b, pk->zCol, aKey, nKey, pk->eType);
  if (bLive) {
    quay__str_cat(&b.sql, " AND ");
    quay__str_ident(&b.sql, m->pDeletedAt->zCol);
    quay__str_cat(&b.sql, " IS NULL");
  }
  quay__str_cat(&b.sql, " ORDER BY ");
  quay__str_ident(&b.sql, pk->zCol);
  aHint = quay__arena_alloc(&x->arena, sizeof(int) * (size_t)(nCol + 1));
  if (aHint == NULL) b.pArena->oom = 1;
  for (k = 0; aHint && k < nCol; k++) {
    aHint[k] = quay__field_hint(pnOut ? pk : m->apField[k]);
  }
  rc = quay__build_rc(&b);
  if (rc == QUAY_OK) {
    rc = quay__db_run(x->pDb, b.sql.z, b.params.a, b.params.n, aHint, nCol,
                      0, &c, NULL, x->pErr);
  }
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, x->pErr)) == QUAY_ROW) {
    quay_value *row;
    rc = QUAY_OK;
    if (pnOut) {
      (*pnOut)++;
      continue;
    }
    if (h->nRow == h->nAlloc) {
      int nNew = h->nAlloc ? h->nAlloc * 2 : 16;
      quay_value *aNew = quay__arena_alloc(&x->arena, sizeof(quay_value) *
                                           (size_t)nNew * (size_t)nCol);
      if (aNew == NULL) {
        rc = quay__oom(x->pErr);
        break;
      }
      if (h->nRow) {
        memcpy(aNew, h->aVal, sizeof(quay_value) * (size_t)h->nRow *
                                  (size_t)nCol);
      }
      h->aVal = aNew;
      h->nAlloc = nNew;
    }
    row = &h->aVal[(size_t)h->nRow * (size_t)nCol];
    for (k = 0; k < nCol && rc == QUAY_OK; k++) {
      quay_cursor_value(c, k, &row[k]);
      if (keep(x, &row[k])) rc = quay__oom(x->pErr);
    }
    h->nRow++;
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  quay__build_free(&b);
  return rc;
}

/* Hand every loaded row of m to the delete observer (eWhen). */
static int hook_call(Cascade *x, quay_model *m, int eWhen) {
  quay_db *pDb = x->pDb;
  HookRows *h = &x->aHook[m->iModel];
  int i;
  for (i = 0; i < h->nRow; i++) {
    if (pDb->xDelete == NULL) break;      /* removed by a hook */
    if (pDb->xDelete(pDb->pDeleteArg, eWhen, m, i,
                     &h->aVal[(size_t)i * (size_t)m->nField])) {
      return quay__err(x->pErr, QUAY_ECALLBACK, "a %s hook of model %s "
                       "failed; nothing was deleted",
                       eWhen == QUAY_BEFORE_DELETE ? "before_delete"
                                                   : "after_delete",
                       m->zName);
    }
  }
  return QUAY_OK;
}

/* Non-0 when the models with keys include one with delete hooks. */
static int hooks_wanted(Cascade *x) {
  quay_db *pDb = x->pDb;
  int i;
  if (x->bDry || pDb->xDelete == NULL) return 0;
  for (i = 0; i < pDb->nModel; i++) {
    if (pDb->apModel[i]->bDeleteHooks) return 1;
  }
  return 0;
}

/*
** Before a hard delete: load the rows of every model with delete hooks
** and keys, and call the observer for them, parents first (the reverse of
** the delete order).
*/
static int hooks_before(Cascade *x) {
  quay_db *pDb = x->pDb;
  int i, n = 0, bCycle = 0, rc = QUAY_OK;
  int *aOrder;
  if (x->aHook == NULL) return QUAY_OK;
  aOrder = quay__arena_alloc(&x->arena, sizeof(int) *
                                            (size_t)(pDb->nModel + 1));
  if (aOrder == NULL || delete_order(x, aOrder, &n, &bCycle)) {
    return quay__oom(x->pErr);
  }
  for (i = n - 1; i >= 0 && rc == QUAY_OK; i--) {
    quay_model *m = pDb->apModel[aOrder[i]];
    ModelState *s = &x->aState[m->iModel];
    quay_value *aKey;
    if (!m->bDeleteHooks) continue;
    if (quay__keyset_values(s->pDel, &x->arena, &aKey)) {
      return quay__oom(x->pErr);
    }
    rc = hook_load(x, m, aKey, quay_keyset_count(s->pDel), 0, NULL);
    if (rc == QUAY_OK) rc = hook_call(x, m, QUAY_BEFORE_DELETE);
  }
  return rc;
}

/* After a hard delete: the observer again, children first. */
static int hooks_after(Cascade *x) {
  quay_db *pDb = x->pDb;
  int i, n = 0, bCycle = 0, rc = QUAY_OK;
  int *aOrder;
  if (x->aHook == NULL) return QUAY_OK;
  aOrder = quay__arena_alloc(&x->arena, sizeof(int) *
                                            (size_t)(pDb->nModel + 1));
  if (aOrder == NULL || delete_order(x, aOrder, &n, &bCycle)) {
    return quay__oom(x->pErr);
  }
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    quay_model *m = pDb->apModel[aOrder[i]];
    if (m->bDeleteHooks) rc = hook_call(x, m, QUAY_AFTER_DELETE);
  }
  return rc;
}

/*
** The soft delete of the keys of m: one UPDATE sets deleted_at to zNow
** where it is NULL, with the model's delete hooks around it; *pn gets the
** rows it marked (a dry run counts them and writes nothing).
*/
static int soft_delete(Cascade *x, quay_model *m, const quay_value *aKey,
                       int nKey, const char *zNow, int64_t *pn) {
  Field *pk = m->apField[m->iPk], *fd = m->pDeletedAt;
  HookRows *h = x->aHook ? &x->aHook[m->iModel] : NULL;
  quay_value vNow;
  Build b;
  int rc, i;
  if (x->bDry) return hook_load(x, m, aKey, nKey, 1, pn);
  if (h && m->bDeleteHooks) {
    rc = hook_load(x, m, aKey, nKey, 1, NULL);
    if (rc == QUAY_OK) rc = hook_call(x, m, QUAY_BEFORE_DELETE);
    if (rc) return rc;
  }
  vNow.type = QUAY_TEXT;
  vNow.u.z = zNow;
  vNow.n = strlen(zNow);
  quay__build_init(&b, x->pDb, &x->arena, x->pErr);
  quay__str_cat(&b.sql, "UPDATE ");
  quay__str_ident(&b.sql, m->zTable);
  quay__str_cat(&b.sql, " SET ");
  quay__str_ident(&b.sql, fd->zCol);
  quay__str_cat(&b.sql, " = ");
  quay__build_param(&b, &vNow);
  quay__str_cat(&b.sql, " WHERE ");
  keys_in(&b, pk->zCol, aKey, nKey, pk->eType);
  quay__str_cat(&b.sql, " AND ");
  quay__str_ident(&b.sql, fd->zCol);
  quay__str_cat(&b.sql, " IS NULL");
  rc = quay__build_exec(&b, pn);
  quay__build_free(&b);
  if (rc || h == NULL || !m->bDeleteHooks) return rc;
  /* The hooks after it see the mark. */
  for (i = 0; i < h->nRow; i++) {
    quay_value *v = &h->aVal[(size_t)i * (size_t)m->nField + fd->iField];
    v->type = QUAY_TEXT;
    v->u.z = zNow;
    v->n = vNow.n;
  }
  return hook_call(x, m, QUAY_AFTER_DELETE);
}
/* }================================================================== */


/*
** {==================================================================
** Counts and entry points
** ===================================================================
*/
typedef struct CountEntry {
  char *zName;
  int64_t n;
} CountEntry;

struct quay_counts {
  CountEntry *a;
  int n;
  char zDeletedAt[24];      /* a soft delete's deleted_at, else "" */
};

int quay_counts_n(const quay_counts *p) { return p ? p->n : 0; }
const char *quay_counts_name(const quay_counts *p, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return NULL;
  }
  return (p && i >= 0 && i < p->n) ? p->a[i].zName : NULL;
}
int64_t quay_counts_value(const quay_counts *p, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return 0;
  }
  return (p && i >= 0 && i < p->n) ? p->a[i].n : 0;
}
const char *quay_counts_deleted_at(const quay_counts *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return NULL;
  }
  return (p && p->zDeletedAt[0]) ? p->zDeletedAt : NULL;
}
void quay_counts_free(quay_counts *p) {
  int i;
  if (p == NULL) return;
  for (i = 0; i < p->n; i++) quay__free(p->a[i].zName);
  quay__free(p->a);
  quay__free(p);
}

static int counts_add(quay_counts *p, const char *zName, int64_t n) {
  CountEntry *a;
  int i;
  if (n == 0) return QUAY_OK;
  for (i = 0; i < p->n; i++) {
    if (strcmp(p->a[i].zName, zName) == 0) {
      p->a[i].n += n;
      return QUAY_OK;
    }
  }
  a = quay__realloc(p->a, sizeof(CountEntry) * (size_t)(p->n + 1));
  if (a == NULL) return QUAY_ENOMEM;
  p->a = a;
  p->a[p->n].zName = quay__strdup(zName);
  if (p->a[p->n].zName == NULL) return QUAY_ENOMEM;
  p->a[p->n++].n = n;
  return QUAY_OK;
}

static void cascade_free(Cascade *x) {
  int i;
  if (x->aState) {
    for (i = 0; i < x->pDb->nModel; i++) quay_keyset_free(x->aState[i].pDel);
  }
  if (x->apJoinKs) {
    for (i = 0; i < x->pDb->nJoin; i++) quay_keyset_free(x->apJoinKs[i]);
  }
  quay__free(x->aState);
  quay__free(x->apRef);
  quay__free(x->anRef);
  quay__free(x->anJoin);
  quay__free(x->apJoinKs);
  quay__free(x->aHook);
  quay__arena_free(&x->arena);
}

/*
** The delete call behind every entry point.  mFlags: QUAY_DELETE_DRY_RUN,
** CASCADE_SOFT to soft-delete the keys of a soft_delete model m, and
** CASCADE_IN_TXN when the caller opened a transaction level for the call
** (it read the keys inside it; it ends it, and rolls a dry run back).
*/
int quay__cascade_delete(quay_db *pDb, quay_model *m, const quay_value *aKey,
                         int nKey, unsigned mFlags, quay_counts **ppCounts,
                         quay_err *pErr) {
  Cascade x;
  quay_counts *pCounts = NULL;
  int rc = QUAY_OK, i, idx, opened = 0;
  int bDry = (mFlags & QUAY_DELETE_DRY_RUN) != 0;
  int bSoft = (mFlags & CASCADE_SOFT) && m->pDeletedAt;
  int bOwn = (mFlags & CASCADE_IN_TXN) == 0;
  *ppCounts = NULL;
  memset(&x, 0, sizeof(x));
  x.pDb = pDb;
  x.bDry = bDry;
  x.pErr = pErr;
  quay__arena_init(&x.arena);
  x.aState = quay__calloc(sizeof(ModelState) * (size_t)(pDb->nModel + 1));
  x.apRef = quay__calloc(sizeof(Referrer *) * (size_t)(pDb->nModel + 1));
  x.anRef = quay__calloc(sizeof(int) * (size_t)(pDb->nModel + 1));
  x.anJoin = quay__calloc(sizeof(int64_t) * (size_t)(pDb->nJoin + 1));
  x.apJoinKs = quay__calloc(sizeof(quay_keyset *) * (size_t)(pDb->nJoin + 1));
  pCounts = quay__calloc(sizeof(*pCounts));
  if (!x.aState || !x.apRef || !x.anRef || !x.anJoin || !x.apJoinKs ||
      !pCounts) {
    rc = quay__oom(pErr);
    goto done;
  }
  quay__db_set_blockers(pDb, NULL, NULL, 0);
  if (hooks_wanted(&x)) {
    x.aHook = quay__calloc(sizeof(HookRows) * (size_t)(pDb->nModel + 1));
    if (x.aHook == NULL) {
      rc = quay__oom(pErr);
      goto done;
    }
  }
  if (bSoft) {
    int64_t n = 0;
    if (nKey == 0) goto done;
    quay__now_utc(pCounts->zDeletedAt);
    if (bOwn) {
      rc = quay__txn_begin(pDb, 1, pErr);
      if (rc) goto done;
      opened = 1;
    }
    rc = soft_delete(&x, m, aKey, nKey, pCounts->zDeletedAt, &n);
    if (rc == QUAY_OK && counts_add(pCounts, m->zName, n)) {
      rc = quay__oom(pErr);
    }
    if (bDry) pCounts->zDeletedAt[0] = 0;
    goto done;
  }
  if (build_refs(&x)) {
    rc = quay__oom(pErr);
    goto done;
  }
  for (i = 0; i < pDb->nModel; i++) {
    rc = quay_keyset_new(&x.aState[i].pDel, pErr);
    if (rc) goto done;
  }
  if (bDry) {
    for (i = 0; i < pDb->nJoin; i++) {
      rc = quay_keyset_new(&x.apJoinKs[i], pErr);
      if (rc) goto done;
    }
  }
  for (i = 0; i < nKey; i++) {
    rc = quay_keyset_add(x.aState[m->iModel].pDel, &aKey[i], &idx, pErr);
    if (rc) goto done;
  }
  if (nKey == 0) goto done;
  /* One transaction level around the walk and the writes, so what was
  ** read is what is deleted. */
  if (bOwn) {
    rc = quay__txn_begin(pDb, 1, pErr);
    if (rc) goto done;
    opened = 1;
  }
  rc = walk(&x);
  if (rc) goto done;
  if (x.nProt) {
    rc = blocked(&x, x.aProt, x.nProt, QUAY_EPROTECTED);
    goto done;
  }
  rc = check_restrict(&x);
  if (rc) goto done;
  rc = hooks_before(&x);
  if (rc) goto done;
  rc = execute(&x);
  if (rc) goto done;
  rc = hooks_after(&x);
  if (rc) goto done;
  if (bDry) {
    /* A dry walk plans no deletes by foreign key and no join-row
    ** deletes (the join tables' ON DELETE CASCADE removes those rows),
    ** so the counts come from the key sets. */
    for (i = 0; i < pDb->nModel; i++) {
      x.aState[i].nDeleted = quay_keyset_count(x.aState[i].pDel);
    }
    for (i = 0; i < pDb->nJoin; i++) {
      if (x.apJoinKs[i]) x.anJoin[i] = quay_keyset_count(x.apJoinKs[i]);
    }
  }
  for (i = 0; i < pDb->nModel; i++) {
    if (counts_add(pCounts, pDb->apModel[i]->zName, x.aState[i].nDeleted)) {
      rc = quay__oom(pErr);
      goto done;
    }
  }
  for (i = 0; i < pDb->nJoin; i++) {
    if (counts_add(pCounts, pDb->apJoin[i]->zTable, x.anJoin[i])) {
      rc = quay__oom(pErr);
      goto done;
    }
  }
done:
  if (opened && bDry && rc == QUAY_OK) {
    rc = quay_db_rollback(pDb, pErr);   /* a dry run leaves nothing */
  } else if (opened) {
    rc = quay__txn_end(pDb, rc, pErr);
  }
  cascade_free(&x);
  if (rc) {
    quay_counts_free(pCounts);
    return rc;
  }
  *ppCounts = pCounts;
  return QUAY_OK;
}

/* The public flags as quay__cascade_delete's (misuse for unknown bits). */
static int delete_flags(unsigned mFlags, unsigned *pOut, quay_err *pErr) {
  if (mFlags & ~(unsigned)(QUAY_DELETE_DRY_RUN | QUAY_DELETE_HARD)) {
    return quay__err(pErr, QUAY_EMISUSE, "delete: unknown flags 0x%x",
                     mFlags);
  }
  *pOut = (mFlags & QUAY_DELETE_DRY_RUN) |
          ((mFlags & QUAY_DELETE_HARD) ? 0 : CASCADE_SOFT);
  return QUAY_OK;
}

int quay_delete_keys(quay_db *pDb, quay_model *m, const quay_value *aKey,
                     int nKey, unsigned mFlags, quay_counts **ppCounts,
                     quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || m == NULL || (aKey == NULL && nKey > 0) || ppCounts ==
      NULL) {
    if (ppCounts != NULL) *ppCounts = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_delete_keys: %s is NULL", pDb
        == NULL ? "pDb" : m == NULL ? "pModel" : (aKey == NULL && nKey > 0) ?
            "aKey" : "ppCounts");
  }
  if (nKey < 0) {
    *ppCounts = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_delete_keys: nKey is %d, not a count", nKey);
  }
  if (quay__values_check(pErr, "quay_delete_keys", aKey, (size_t)nKey)) {
    *ppCounts = NULL;
    return QUAY_EMISUSE;
  }
  unsigned mCascade = 0;
  int rc;
  *ppCounts = NULL;
  rc = delete_flags(mFlags, &mCascade, pErr);
  if (rc == QUAY_OK) rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  return quay__cascade_delete(pDb, m, aKey, nKey, mCascade, ppCounts, pErr);
}

/*
** qs:delete(): open the call's transaction level, read the primary keys
** of the query set inside it, then cascade.  On PostgreSQL the keys are
** read with FOR UPDATE OF the set's own rows: a row another connection
** changes meanwhile is waited for and its filter checked again on the
** committed row (READ COMMITTED's rule for locking reads), so a row that
** no longer matches is not deleted.  SQLite's write transaction (BEGIN
** IMMEDIATE) already keeps other writers out from the read on.
*/
int quay_qs_delete(quay_qs *pQs, quay_db *pDb, unsigned mFlags,
                   quay_counts **ppCounts, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || ppCounts == NULL) {
    if (ppCounts != NULL) *ppCounts = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_delete: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : "ppCounts");
  }
  quay_model *m = pQs->pModel;
  Field *pk = m->apField[m->iPk];
  const Dialect *d = pDb->pDialect;
  Arena a;
  Build b;
  quay_cursor *c = NULL;
  quay_keyset *pKs = NULL;
  quay_value *aKey = NULL;
  const char *zA;
  unsigned mCascade = 0;
  int rc, idx, opened = 0;
  *ppCounts = NULL;
  rc = delete_flags(mFlags, &mCascade, pErr);
  if (rc) return rc;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  zA = quay__plan_keys(&b, pQs, pk);
  if (zA && d->zForUpdate) {
    quay__str_cat(&b.sql, d->zForUpdate);
    quay__str_ident(&b.sql, zA);
  }
  rc = quay__build_rc(&b);
  if (rc == QUAY_OK) rc = quay_keyset_new(&pKs, pErr);
  if (rc == QUAY_OK) rc = quay__txn_begin(pDb, 1, pErr);
  if (rc == QUAY_OK) {
    int eHint = quay__field_hint(pk);
    opened = 1;
    rc = quay__db_run(pDb, b.sql.z, b.params.a, b.params.n, &eHint, 1, 0, &c,
                      NULL, pErr);
  }
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, pErr)) == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(c, 0, &v);
    rc = quay_keyset_add(pKs, &v, &idx, pErr);
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  if (rc == QUAY_OK && quay__keyset_values(pKs, &a, &aKey)) {
    rc = quay__oom(pErr);
  }
  if (rc == QUAY_OK) {
    rc = quay__cascade_delete(pDb, m, aKey, quay_keyset_count(pKs),
                              mCascade | CASCADE_IN_TXN, ppCounts, pErr);
  }
  if (opened && rc == QUAY_OK && (mFlags & QUAY_DELETE_DRY_RUN)) {
    rc = quay_db_rollback(pDb, pErr);   /* a dry run leaves nothing */
  } else if (opened) {
    rc = quay__txn_end(pDb, rc, pErr);
  }
  if (rc) {
    quay_counts_free(*ppCounts);
    *ppCounts = NULL;
  }
  quay_keyset_free(pKs);
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}
/* }================================================================== */
