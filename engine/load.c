/*
** engine/load.c
** Running a loading plan: the main query, then the batched query of every
** prefetch level for the records the levels above made, handing records
** and attachments to the binding's sink (quay_sink).
** See LICENSE
**
** The engine owns the algorithm; a binding only makes records and hangs
** values on them.  Per row of a query the runner
**   - reads each model level's key and, for levels that may repeat a row
**     (JOINed levels, many-to-many children), looks it up in the slot's
**     key set, so 100k posts of 10k authors make 10k author records;
**   - asks the sink for each new record (xRecord), then hangs JOINed
**     records on their parents (xAttachOne) and annotations on the row's
**     record (xExtra);
**   - adds, for every batched step whose owners live in that slot, the
**     owner key out of the row it already has to the step's key set (no
**     second pass over the records, no reading back from the binding's
**     objects); per owner only its group (the key's dense index) is kept;
**   - for a batched step, files the child under its owner's group by one
**     key-set probe on the group column.
** After a batched step's rows, each owner gets its children in query
** order (a stable counting sort of the (group, child) pairs; a step
** ordered by its integer key only, PlanStep.bSortKey, sorts each group by
** the children's keys): one xAttachMany (to-many) or xAttachOne (to-one)
** per owner, "none" and empty sets included, so a loaded relation is
** never fetched again.
**
** Memory: the prefetch levels of a large load build the binding's objects
** while these arrays exist, so each goes as soon as it has served: the key
** array parameter once the statement is open, the owner key set once the
** step's rows are read, the pairs before the first attach, the rest after
** the last (scripts/bench W2's peak memory).
**
** Sibling steps whose owners are complete (with("author", "tags",
** "comments")) are opened together: one round trip on PostgreSQL.
**
** Every statement of a load reads from one server (L->iSrv): the main
** query picks it (a read replica, or the primary, exec.c), the prefetch
** steps follow it, and a binding pins the lazy loads of the records to
** it (quay_load_server, quay_load_pin).
**
** A sink callback may leave by a longjmp (a Lua error while making a
** table).  Everything a load holds is therefore reachable from the
** quay_load at every call into the sink (cursors, key sets, arrays), and
** quay_load_free releases it whatever state the load was left in.
*/
#include "quayInt.h"

#include <stdlib.h>

/* Most steps opened together (siblings, one pipeline). */
#define LOAD_MAX_BATCH 16

typedef struct StepRun {
  quay_keyset *pOwnKs;      /* distinct owner keys; dense index = group;
                            ** released once the step's rows are read */
  int *aOwnG;               /* per owner record: its group (-1: no key) */
  int nOwn, nOwnAlloc;
  int nGroup;               /* groups (distinct keys) of the owners */
  int *aPair;               /* (group, child record) pairs, in row order */
  int nPair, nPairAlloc;
  int64_t *aRecKey;         /* bSortKey steps: per child record, its key */
  int nRecKeyAlloc;
  int *aStart;              /* attach: group g's children are aChild */
  int *aChild;              /* [aStart[g], aStart[g + 1]) */
  quay_cursor *pCur;        /* open query of the step */
} StepRun;

struct quay_load {
  quay_plan *pPlan;
  quay_db *pDb;
  quay_cursor *pMain;       /* main query; NULL once read to the end */
  int bDone;                /* main query exhausted */
  int bPrimed;              /* owners supplied (lazy): keep call state */
  int iSrv;                 /* the server its reads go to (QUAY_SRV_*,
                            ** then the one that answered, exec.c) */
  Arena arena;              /* per call: small scratch arrays */
  int *anRec;               /* per slot: records made in this call */
  quay_keyset **apDedupe;   /* per slot: keys of its records, or NULL */
  StepRun *aRun;            /* per step (index 0: the main query) */
  int *aNextUser;           /* per step: next step with the same owners */
  int *aFirstUser;          /* per slot: first step owned by it, or -1 */
};

/* Free a step run's owner and pair arrays (the cursor is the caller's). */
static void step_release(StepRun *r) {
  quay_keyset_free(r->pOwnKs);
  r->pOwnKs = NULL;
  quay__free(r->aOwnG);
  r->aOwnG = NULL;
  r->nOwn = r->nOwnAlloc = 0;
  quay__free(r->aPair);
  r->aPair = NULL;
  r->nPair = r->nPairAlloc = 0;
  quay__free(r->aRecKey);
  r->aRecKey = NULL;
  r->nRecKeyAlloc = 0;
  quay__free(r->aStart);
  r->aStart = NULL;
  quay__free(r->aChild);
  r->aChild = NULL;
}

/* Release everything of one call; the load is ready for the next. */
static void load_reset(quay_load *L) {
  quay_plan *p = L->pPlan;
  int i;
  if (L->anRec == NULL || L->apDedupe == NULL || L->aRun == NULL) {
    return;                 /* quay_load_open ran out of memory */
  }
  for (i = 0; i < p->nSlot; i++) {
    quay_keyset_free(L->apDedupe[i]);
    L->apDedupe[i] = NULL;
    L->anRec[i] = 0;
  }
  for (i = 0; i < p->nStep; i++) {
    StepRun *r = &L->aRun[i];
    quay_cursor *c = r->pCur;
    r->pCur = NULL;
    quay_cursor_close(c);
    step_release(r);
    memset(r, 0, sizeof(*r));
  }
  quay__arena_free(&L->arena);
  quay__arena_init(&L->arena);
  L->bPrimed = 0;
}

void quay_load_free(quay_load *L) {
  quay_cursor *c;
  if (L == NULL) return;
  load_reset(L);
  c = L->pMain;
  L->pMain = NULL;
  quay_cursor_close(c);
  quay__arena_free(&L->arena);
  quay__free(L->anRec);
  quay__free(L->apDedupe);
  quay__free(L->aRun);
  quay__free(L->aNextUser);
  quay__free(L->aFirstUser);
  quay__db_release(L->pDb);
  quay__free(L);
}

int quay_load_open(quay_plan *p, quay_db *pDb, int bStream, quay_load **pp,
                   quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL || pDb == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_load_open: %s is NULL", p ==
        NULL ? "pPlan" : pDb == NULL ? "pDb" : "ppLoad");
  }
  quay_load *L;
  int i, rc;
  *pp = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  if (p->pQs && quay__qs_lock(p->pQs) >= 0) {
    /* select_for_update (issue 13): locks last until the transaction
    ** ends, so there must be one that may write; a holdable (streamed)
    ** PostgreSQL cursor cannot lock, so the rows are read at once. */
    if (!quay__db_in_txn(pDb) || pDb->bTxnReadOnly) {
      return quay__err(pErr, QUAY_EMISUSE,
                       "select_for_update on %s: run it inside "
                       "db:transaction%s (row locks last until it ends)",
                       p->pQs->pModel->zName, pDb->txnDepth ?
                       ", not a readonly one" : "");
    }
    bStream = 0;
  }
  L = quay__calloc(sizeof(*L));
  if (L == NULL) return quay__oom(pErr);
  L->pPlan = p;
  L->pDb = pDb;
  quay__db_hold(pDb);
  L->iSrv = quay_qs_is_primary(p->pQs) ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
  quay__arena_init(&L->arena);
  L->anRec = quay__calloc(sizeof(int) * (size_t)(p->nSlot + 1));
  L->apDedupe = quay__calloc(sizeof(quay_keyset *) * (size_t)(p->nSlot + 1));
  L->aFirstUser = quay__calloc(sizeof(int) * (size_t)(p->nSlot + 1));
  L->aRun = quay__calloc(sizeof(StepRun) * (size_t)(p->nStep + 1));
  L->aNextUser = quay__calloc(sizeof(int) * (size_t)(p->nStep + 1));
  if (!L->anRec || !L->apDedupe || !L->aFirstUser || !L->aRun ||
      !L->aNextUser) {
    quay_load_free(L);
    return quay__oom(pErr);
  }
  for (i = 0; i < p->nSlot; i++) L->aFirstUser[i] = -1;
  for (i = p->nStep - 1; i >= 1; i--) {
    int o = p->aStep[i].iOwnerSlot;
    L->aNextUser[i] = L->aFirstUser[o];
    L->aFirstUser[o] = i;
  }
  if (!p->bLazy) {
    PlanStep *s = &p->aStep[0];
    if (QUAY_NEVER(s->zSql == NULL)) {
      quay_load_free(L);
      return quay__err(pErr, QUAY_EMISUSE, "this plan has no main query");
    }
    rc = quay__db_read(pDb, &L->iSrv, s->zSql, s->aParam, s->nParam,
                       s->aHint, s->nCol, bStream, &L->pMain, pErr);
    if (rc) {
      quay_load_free(L);
      return rc;
    }
  } else {
    L->bDone = 1;
  }
  *pp = L;
  return QUAY_OK;
}

/*
** Add an owner record's key to step run r: its group (the key's dense
** index in the step's key set, which copies text keys) is all that is
** kept per owner.
*/
static int push_owner_key(StepRun *r, const quay_value *pV, quay_err *pErr) {
  int g, rc;
  if (r->pOwnKs == NULL) {
    rc = quay_keyset_new(&r->pOwnKs, pErr);
    if (rc) return rc;
  }
  if (r->nOwn == r->nOwnAlloc) {
    int nNew = r->nOwnAlloc ? r->nOwnAlloc * 2 : 64;
    int *a = quay__realloc(r->aOwnG, sizeof(int) * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    r->aOwnG = a;
    r->nOwnAlloc = nNew;
  }
  rc = quay_keyset_add(r->pOwnKs, pV, &g, pErr);
  if (rc) return rc;
  r->aOwnG[r->nOwn++] = g;
  return QUAY_OK;
}

int quay_load_server(const quay_load *L) {
  /* NULL arguments (quay.h "Conventions"). */
  if (L == NULL) {
    return 0;
  }
  return L->iSrv >= 0 ? L->iSrv : -1;
}

void quay_load_pin(quay_load *L, int iServer) {
  /* NULL arguments (quay.h "Conventions"). */
  if (L == NULL) {
    return;
  }
  if (iServer >= 0 && iServer < L->pDb->nSrv) L->iSrv = iServer;
}

int quay_load_owners(quay_load *L, const quay_value *aKey, int nOwner,
                     quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (L == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_load_owners: %s is NULL",
        "pLoad");
  }
  if (nOwner < 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_load_owners: nOwner is %d, not a count", nOwner);
  }
  if (quay__values_check(pErr, "quay_load_owners", aKey, (size_t)nOwner)) {
    return QUAY_EMISUSE;
  }
  quay_plan *p = L->pPlan;
  int i, s, rc;
  if (!p->bLazy || nOwner < 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_load_owners: not a lazy plan");
  }
  load_reset(L);
  L->anRec[0] = nOwner;
  for (s = L->aFirstUser[0]; s > 0; s = L->aNextUser[s]) {
    for (i = 0; i < nOwner; i++) {
      rc = push_owner_key(&L->aRun[s], &aKey[i], pErr);
      if (rc) return rc;
    }
  }
  L->bPrimed = 1;
  return QUAY_OK;
}

/* The owner keys of every step owned by slot iSlot, from the new record
** at columns iFirstCol.. of the current row. */
static int collect_owner_keys(quay_load *L, int iSlot, quay_cursor *pCur,
                              int iFirstCol, quay_err *pErr) {
  int s, rc;
  for (s = L->aFirstUser[iSlot]; s > 0; s = L->aNextUser[s]) {
    quay_value v;
    quay_cursor_value(pCur, iFirstCol + L->pPlan->aStep[s].pOwnerKey->iField,
                      &v);
    rc = push_owner_key(&L->aRun[s], &v, pErr);
    if (rc) return rc;
  }
  return QUAY_OK;
}

static int sink_failed(quay_err *pErr) {
  return quay__err(pErr, QUAY_ECALLBACK, "the record sink failed");
}

/*
** Read up to nMax rows (0: all) of step iStep's cursor.  Sets *pbDone
** when the cursor is exhausted.
*/
static int read_rows(quay_load *L, int iStep, quay_cursor *pCur, int nMax,
                     const quay_sink *pSink, void *pCtx, int *pbDone,
                     quay_err *pErr) {
  quay_plan *p = L->pPlan;
  PlanStep *s = &p->aStep[iStep];
  StepRun *r = &L->aRun[iStep];
  int *aIdx, *aNew, k, rc, nRow = 0;
  quay_value v;
  *pbDone = 0;
  aIdx = quay__arena_alloc(&L->arena, sizeof(int) * (size_t)s->nNode * 2);
  if (aIdx == NULL) return quay__oom(pErr);
  aNew = aIdx + s->nNode;
  for (k = 0; k < s->nNode; k++) {
    int iSlot = s->aNode[k].iSlot;
    if (iSlot >= 0 && p->aSlot[iSlot].bDedupe && L->apDedupe[iSlot] == NULL) {
      rc = quay_keyset_new(&L->apDedupe[iSlot], pErr);
      if (rc) return rc;
    }
  }
  for (;;) {
    if (nMax > 0 && nRow >= nMax) break;
    rc = quay_cursor_step(pCur, pErr);
    if (rc == QUAY_DONE) {
      *pbDone = 1;
      break;
    }
    if (rc != QUAY_ROW) return rc;
    nRow++;
    for (k = 0; k < s->nNode; k++) {
      PlanNode *nd = &s->aNode[k];
      int iSlot = nd->iSlot;
      aNew[k] = 0;
      aIdx[k] = -1;
      if (iSlot < 0) continue;
      quay_cursor_value(pCur, nd->iKeyCol, &v);
      if (k > 0 && v.type == QUAY_NULL) continue;
      if (L->apDedupe[iSlot]) {
        int idx;
        rc = quay_keyset_add(L->apDedupe[iSlot], &v, &idx, pErr);
        if (rc) return rc;
        if (idx >= 0 && idx < L->anRec[iSlot]) {
          aIdx[k] = idx;
          continue;
        }
        assert(idx < 0 || idx == L->anRec[iSlot]);
      }
      if (pSink->xRecord(pCtx, iSlot, pCur, nd->iFirstCol, nd->iKeyCol)) {
        return sink_failed(pErr);
      }
      aIdx[k] = L->anRec[iSlot]++;
      aNew[k] = 1;
      if (L->aFirstUser[iSlot] > 0) {
        rc = collect_owner_keys(L, iSlot, pCur, nd->iFirstCol, pErr);
        if (rc) return rc;
      }
    }
    /* JOINed records hang off their parents (once, when the parent is
    ** new: a repeated parent row carries the same to-one child). */
    for (k = 1; k < s->nNode; k++) {
      PlanNode *nd = &s->aNode[k];
      quay_attach at;
      int par = nd->iParent;
      if (nd->iSlot < 0 || !aNew[par]) continue;
      at.iRel = nd->pRel->iRel;
      at.zName = nd->pRel->zName;
      at.isCustom = 0;
      at.isPivot = 0;
      if (pSink->xAttachOne(pCtx, s->aNode[par].iSlot, aIdx[par], &at,
                            nd->iSlot, aIdx[k])) {
        return sink_failed(pErr);
      }
    }
    for (k = 0; k < s->nExtra; k++) {
      PlanExtra *x = &s->aExtra[k];
      if (!aNew[0]) break;
      if (x->eKind == EXTRA_PIVOT) {
        quay_attach at;
        int iPk = x->pModel->iPk;
        if (pSink->xRecord(pCtx, x->iSlot, pCur, x->iCol, x->iCol + iPk)) {
          return sink_failed(pErr);
        }
        at.iRel = -1;
        at.zName = "pivot";
        at.isCustom = 0;
        at.isPivot = 1;
        if (pSink->xAttachOne(pCtx, s->aNode[0].iSlot, aIdx[0], &at,
                              x->iSlot, L->anRec[x->iSlot]++)) {
          return sink_failed(pErr);
        }
      } else {
        quay_cursor_value(pCur, x->iCol, &v);
        if (pSink->xExtra(pCtx, s->aNode[0].iSlot, aIdx[0], x->zName, &v)) {
          return sink_failed(pErr);
        }
      }
    }
    if (iStep > 0) {
      int g;
      if (s->bSortKey && aNew[0]) {
        /* The engine orders each owner's children by this key. */
        int iRec = aIdx[0];
        if (iRec >= r->nRecKeyAlloc) {
          int nNew = r->nRecKeyAlloc ? r->nRecKeyAlloc * 2 : 256;
          int64_t *aK;
          while (nNew <= iRec) nNew *= 2;
          aK = quay__realloc(r->aRecKey, sizeof(int64_t) * (size_t)nNew);
          if (aK == NULL) return quay__oom(pErr);
          r->aRecKey = aK;
          r->nRecKeyAlloc = nNew;
        }
        quay_cursor_value(pCur, s->aNode[0].iKeyCol, &v);
        r->aRecKey[iRec] = v.type == QUAY_INT ? v.u.i : 0;
      }
      quay_cursor_value(pCur, s->iGroupCol, &v);
      g = r->pOwnKs ? quay_keyset_find(r->pOwnKs, &v) : -1;
      if (g >= 0) {
        if (r->nPair + 2 > r->nPairAlloc) {
          int nNew = r->nPairAlloc ? r->nPairAlloc * 2 : 256;
          int *a = quay__realloc(r->aPair, sizeof(int) * (size_t)nNew);
          if (a == NULL) return quay__oom(pErr);
          r->aPair = a;
          r->nPairAlloc = nNew;
        }
        r->aPair[r->nPair++] = g;
        r->aPair[r->nPair++] = aIdx[0];
      }
    }
  }
  return QUAY_OK;
}

/* A child of a bSortKey step: its integer key and record index. */
typedef struct ChildKey {
  int64_t key;
  int idx;
} ChildKey;

static int child_key_cmp(const void *pA, const void *pB) {
  const ChildKey *a = pA, *b = pB;
  return a->key < b->key ? -1 : a->key > b->key;
}

/*
** Order each group's children (aChild[aStart[g] .. aStart[g + 1])) by
** their records' keys, a group that is in order already untouched.  The
** scratch array holds the largest group out of order, not every pair.
*/
static int sort_groups(StepRun *r, int nG, quay_err *pErr) {
  ChildKey *aCK = NULL;
  int i, j, nCK = 0;
  for (i = 0; i < nG; i++) {
    int n = r->aStart[i + 1] - r->aStart[i];
    int *a = r->aChild + r->aStart[i];
    for (j = 1; j < n && r->aRecKey[a[j - 1]] <= r->aRecKey[a[j]]; j++) {}
    if (j >= n) continue;               /* in order (or empty) */
    if (n > nCK) {
      ChildKey *aNew = quay__realloc(aCK, sizeof(ChildKey) * (size_t)n);
      if (aNew == NULL) {
        quay__free(aCK);
        return quay__oom(pErr);
      }
      aCK = aNew;
      nCK = n;
    }
    for (j = 0; j < n; j++) {
      aCK[j].key = r->aRecKey[a[j]];
      aCK[j].idx = a[j];
    }
    qsort(aCK, (size_t)n, sizeof(ChildKey), child_key_cmp);
    for (j = 0; j < n; j++) a[j] = aCK[j].idx;
  }
  quay__free(aCK);
  return QUAY_OK;
}

/*
** Give every owner of step iStep its children, in query order (bSortKey:
** in key order): a stable counting sort of the (group, child) pairs, then
** one attach per owner.  The pairs and the child keys are released before
** the first attach, the rest right after the last, so that the sink's
** growing objects can reuse the memory.
*/
static int attach_step(quay_load *L, int iStep, const quay_sink *pSink,
                       void *pCtx, quay_err *pErr) {
  quay_plan *p = L->pPlan;
  PlanStep *s = &p->aStep[iStep];
  StepRun *r = &L->aRun[iStep];
  int nG = r->nGroup;
  int nOwner = r->nOwn, i, nChild = r->nPair / 2, rc;
  int *aStart, *aChild;
  quay_attach at;
  r->aStart = quay__calloc(sizeof(int) * (size_t)(nG + 2));
  r->aChild = quay__malloc(sizeof(int) * (size_t)(nChild + 1));
  if (r->aStart == NULL || r->aChild == NULL) return quay__oom(pErr);
  aStart = r->aStart;
  aChild = r->aChild;
  for (i = 0; i < nChild; i++) aStart[r->aPair[2 * i] + 2]++;
  for (i = 2; i < nG + 2; i++) aStart[i] += aStart[i - 1];
  for (i = 0; i < nChild; i++) {
    aChild[aStart[r->aPair[2 * i] + 1]++] = r->aPair[2 * i + 1];
  }
  /* aStart[g] .. aStart[g + 1] now bound group g. */
  quay__free(r->aPair);
  r->aPair = NULL;
  r->nPair = r->nPairAlloc = 0;
  if (s->bSortKey && nChild > 0) {
    rc = sort_groups(r, nG, pErr);
    if (rc) return rc;
  }
  quay__free(r->aRecKey);
  r->aRecKey = NULL;
  r->nRecKeyAlloc = 0;
  at.iRel = s->isCustom ? -1 : s->pRel->iRel;
  at.zName = s->zAttach;
  at.isCustom = s->isCustom;
  at.isPivot = 0;
  for (i = 0; i < nOwner; i++) {
    int g = r->aOwnG[i], n = 0;
    const int *a = aChild;
    if (g >= 0) {
      a = aChild + aStart[g];
      n = aStart[g + 1] - aStart[g];
    }
    if (s->toMany) {
      if (pSink->xAttachMany(pCtx, s->iOwnerSlot, i, &at,
                             s->aNode[0].iSlot, a, n)) {
        return sink_failed(pErr);
      }
    } else if (pSink->xAttachOne(pCtx, s->iOwnerSlot, i, &at,
                                 s->aNode[0].iSlot, n ? a[0] : -1)) {
      return sink_failed(pErr);
    }
  }
  step_release(r);
  return QUAY_OK;
}

/*
** Run steps iFirst..iFirst+n-1 (their owners are complete): one batched
** open, then rows and attachments step by step.  The key arrays live in a
** scratch arena only until the statements are open (the drivers copy
** parameters), and each step's owner key set goes once its rows are read.
*/
static int run_batch(quay_load *L, int iFirst, int n, const quay_sink *pSink,
                     void *pCtx, quay_err *pErr) {
  quay_plan *p = L->pPlan;
  const char *azSql[LOAD_MAX_BATCH];
  const quay_value *aaParam[LOAD_MAX_BATCH];
  const int *aaHint[LOAD_MAX_BATCH];
  int anParam[LOAD_MAX_BATCH], anHint[LOAD_MAX_BATCH];
  int aiOpen[LOAD_MAX_BATCH];
  quay_cursor *apCur[LOAD_MAX_BATCH];
  int k, rc = QUAY_OK, nOpen = 0;
  Arena keys;
  quay__arena_init(&keys);
  for (k = 0; k < n && rc == QUAY_OK; k++) {
    int iStep = iFirst + k;
    StepRun *r = &L->aRun[iStep];
    PlanStep *s = &p->aStep[iStep];
    quay_value *aKey, *aParam;
    int nKey = r->pOwnKs ? quay_keyset_count(r->pOwnKs) : 0;
    r->nGroup = nKey;
    if (nKey == 0) continue;            /* no owner has a key: no query */
    if (quay__keyset_values(r->pOwnKs, &keys, &aKey)) {
      rc = quay__oom(pErr);
      break;
    }
    rc = quay__plan_key_param(p, iStep, aKey, nKey, &keys, &aParam, pErr);
    if (rc) break;
    azSql[nOpen] = s->zSql;
    aaParam[nOpen] = aParam;
    anParam[nOpen] = s->nParam;
    aaHint[nOpen] = s->aHint;
    anHint[nOpen] = s->nCol;
    aiOpen[nOpen] = iStep;
    nOpen++;
  }
  if (rc == QUAY_OK && nOpen > 0) {
    rc = quay__db_run_batch(L->pDb, &L->iSrv, nOpen, azSql, aaParam,
                            anParam, aaHint, anHint, apCur, pErr);
    if (rc == QUAY_OK) {
      for (k = 0; k < nOpen; k++) L->aRun[aiOpen[k]].pCur = apCur[k];
    }
  }
  quay__arena_free(&keys);
  if (rc) return rc;
  for (k = 0; k < n; k++) {
    int iStep = iFirst + k, bDone;
    StepRun *r = &L->aRun[iStep];
    if (r->pCur) {
      rc = read_rows(L, iStep, r->pCur, 0, pSink, pCtx, &bDone, pErr);
      if (rc) return rc;
      {
        quay_cursor *c = r->pCur;
        r->pCur = NULL;
        quay_cursor_close(c);
      }
    }
    quay_keyset_free(r->pOwnKs);
    r->pOwnKs = NULL;
    rc = attach_step(L, iStep, pSink, pCtx, pErr);
    if (rc) return rc;
  }
  return QUAY_OK;
}

int quay_load_next(quay_load *L, int nMax, const quay_sink *pSink,
                   void *pCtx, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (L == NULL || pSink == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_load_next: %s is NULL", L ==
        NULL ? "pLoad" : "pSink");
  }
  if (pSink->xRecord == NULL || pSink->xAttachOne == NULL ||
      pSink->xAttachMany == NULL || pSink->xExtra == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_load_next: the sink needs "
                     "all four callbacks (xRecord, xAttachOne, xAttachMany, "
                     "xExtra)");
  }
  quay_plan *p = L->pPlan;
  int s, rc;
  if (!L->bPrimed) load_reset(L);
  L->bPrimed = 0;
  if (!p->bLazy) {
    int bDone = 1;
    if (L->pMain) {
      rc = read_rows(L, 0, L->pMain, nMax, pSink, pCtx, &bDone, pErr);
      if (rc) return rc;
    }
    if (bDone) {
      quay_cursor *c = L->pMain;
      L->pMain = NULL;
      quay_cursor_close(c);
      L->bDone = 1;
    }
  }
  s = 1;
  while (s < p->nStep) {
    int n = 1;
    while (s + n < p->nStep && n < LOAD_MAX_BATCH &&
           p->aStep[s + n].iParent < s) {
      n++;
    }
    rc = run_batch(L, s, n, pSink, pCtx, pErr);
    if (rc) return rc;
    s += n;
  }
  return L->bDone ? QUAY_DONE : QUAY_ROW;
}
