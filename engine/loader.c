/*
** engine/loader.c
** The loading planner: a query set becomes one main SELECT (with a LEFT
** JOIN per select_related level) plus one batched step per prefetch level.
** See LICENSE
**
** A plan is a list of steps.  Step 0 is the main query; every other step
** loads one relation for the records of one node of an earlier step:
**
**     users --(posts)--> posts --(tags)--> tags        3 steps, 3 queries
**
** A step's SQL selects the related rows plus a "group" column holding the
** owner's key, restricted by one array parameter:
**
**     SELECT t0.*, t1."post_id" FROM "tags" AS t0
**       JOIN "post_tags" AS t1 ON t1."tag_id" = t0."id"
**      WHERE t1."post_id" IN (SELECT value FROM json_each(?))     -- SQLite
**      WHERE t1."post_id" = ANY($1::bigint[])                      -- PostgreSQL
**
** One statement text serves every batch size, so it is prepared once and
** no bound-parameter limit can break it.  The runner (load.c) collects
** owner keys into a quay_keyset and files each child row under its owners
** by one hash probe on the group column; the binding only makes records.
**
** with() picks per path segment: to-one relations are JOINed, to-many and
** quay.through ones batched.  A level already JOINed is not fetched again.
** A limit inside quay.prefetch applies per owner, through ROW_NUMBER() OVER
** (PARTITION BY group).
*/
#include "quayInt.h"

#include <stdio.h>

/*
** {==================================================================
** Planning
** ===================================================================
*/
static int add_step(quay_plan *p, int *piStep, quay_err *pErr) {
  PlanStep *s;
  if (p->nStep == p->nStepAlloc) {
    int nNew = p->nStepAlloc ? p->nStepAlloc * 2 : 4;
    PlanStep *a = quay__realloc(p->aStep, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    p->aStep = a;
    p->nStepAlloc = nNew;
  }
  s = &p->aStep[p->nStep];
  memset(s, 0, sizeof(*s));
  s->iParent = -1;
  s->iKeyParam = -1;
  *piStep = p->nStep++;
  return QUAY_OK;
}

static int add_node(quay_plan *p, int iStep, quay_model *m, int iParent,
                    Rel *pRel, int selected, int *piNode, quay_err *pErr) {
  PlanStep *s = &p->aStep[iStep];
  PlanNode *n;
  if (s->nNode == s->nNodeAlloc) {
    int nNew = s->nNodeAlloc ? s->nNodeAlloc * 2 : 4;
    PlanNode *a = quay__realloc(s->aNode, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    s->aNode = a;
    s->nNodeAlloc = nNew;
  }
  n = &s->aNode[s->nNode];
  memset(n, 0, sizeof(*n));
  n->pModel = m;
  n->iParent = iParent;
  n->pRel = pRel;
  n->selected = selected;
  *piNode = s->nNode++;
  return QUAY_OK;
}

static int add_extra(quay_plan *p, int iStep, PlanExtra **ppX,
                     quay_err *pErr) {
  PlanStep *s = &p->aStep[iStep];
  if (s->nExtra == s->nExtraAlloc) {
    int nNew = s->nExtraAlloc ? s->nExtraAlloc * 2 : 4;
    PlanExtra *a = quay__realloc(s->aExtra, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    s->aExtra = a;
    s->nExtraAlloc = nNew;
  }
  *ppX = &s->aExtra[s->nExtra++];
  memset(*ppX, 0, sizeof(PlanExtra));
  return QUAY_OK;
}

/* The JOIN node of step iStep below node iParent through r, or -1. */
static int find_node(quay_plan *p, int iStep, int iParent, Rel *r) {
  PlanStep *s = &p->aStep[iStep];
  int i;
  for (i = 1; i < s->nNode; i++) {
    if (s->aNode[i].iParent == iParent && s->aNode[i].pRel == r) return i;
  }
  return -1;
}

/* A (non-custom) batched step below (iStep, iNode) through r, or -1. */
static int find_step(quay_plan *p, int iStep, int iNode, Rel *r,
                     const char *zTo) {
  int i;
  for (i = iStep + 1; i < p->nStep; i++) {
    PlanStep *s = &p->aStep[i];
    if (s->iParent == iStep && s->iParentNode == iNode && s->pRel == r) {
      if (zTo == NULL && !s->isCustom) return i;
      if (zTo && s->isCustom && strcmp(s->zAttach, zTo) == 0) return i;
    }
  }
  return -1;
}

static int plan_view(quay_plan *p, int iStep, quay_err *pErr);
static int plan_annotations(quay_plan *p, int iStep, quay_err *pErr);

/*
** Create the batched step that loads r for the records of (iStep, iNode).
*/
static int new_batch(quay_plan *p, int iStep, int iNode, Rel *r,
                     quay_qs *pSub, const char *zTo, int *piNew,
                     quay_err *pErr) {
  int i, rc;
  PlanStep *s;
  Hop aHop[QUAY_MAX_HOPS];
  int nHop = 0;
  rc = quay__rel_hops(r, aHop, &nHop, pErr);
  if (rc) return rc;
  rc = add_step(p, &i, pErr);
  if (rc) return rc;
  s = &p->aStep[i];
  s->iParent = iStep;
  s->iParentNode = iNode;
  s->pOwner = r->pFrom;
  s->pRel = r;
  s->isCustom = zTo != NULL;
  s->zAttach = quay__arena_strdup(&p->arena, zTo ? zTo : r->zName,
                                  strlen(zTo ? zTo : r->zName));
  s->toMany = r->toMany;
  s->pOwnerKey = aHop[0].pFromKey;
  s->eKeyType = aHop[0].pFromKey->eType;
  s->pSub = quay_qs_ref(pSub);
  if (s->zAttach == NULL) return quay__oom(pErr);
  rc = add_node(p, i, r->pTo, -1, NULL, 1, &iNode, pErr);
  if (rc) return rc;
  *piNew = i;
  if (pSub) {
    rc = quay__qs_view(pSub, &p->aStep[i].view, &p->arena, pErr);
    if (rc) return rc;
    p->aStep[i].hasView = 1;
    if (p->aStep[i].view.strict) p->strict = 1;
    rc = plan_view(p, i, pErr);
  }
  return rc;
}

/*
** Plan one load path from (iStep, node 0).  plan_view calls it for the
** JOIN loads first, so that batch loads find the levels already JOINed.
*/
static int plan_load(quay_plan *p, int iStep, quay_qs *L, quay_err *pErr) {
  int curStep = iStep, curNode = 0, i, rc;
  for (i = 0; i < L->nLoad; i++) {
    Rel *r = L->apLoad[i];
    int last = i == L->nLoad - 1;
    quay_qs *pSub = last ? L->pSub : NULL;
    const char *zTo = last ? L->zTo : NULL;
    int eHow = L->eHow;
    int k;
    if (eHow == QUAY_LOAD_AUTO) {
      eHow = (r->toMany || r->eKind == QUAY_R_THROUGH || pSub || zTo)
                 ? QUAY_LOAD_BATCH : QUAY_LOAD_JOIN;
    } else if (eHow == QUAY_LOAD_JOIN && r->eKind == QUAY_R_THROUGH) {
      /* A to-one quay.through in select_related: its hops are not JOINed
      ** one by one, so it is loaded as one batch (its record, not its
      ** path, is attached) and the JOINs go on from there. */
      eHow = QUAY_LOAD_BATCH;
    }
    if (eHow == QUAY_LOAD_JOIN) {
      k = find_node(p, curStep, curNode, r);
      if (k < 0) {
        rc = add_node(p, curStep, r->pTo, curNode, r, 1, &k, pErr);
        if (rc) return rc;
      } else {
        p->aStep[curStep].aNode[k].selected = 1;
      }
      curNode = k;
      continue;
    }
    if (zTo == NULL && pSub == NULL) {
      k = find_node(p, curStep, curNode, r);
      if (k >= 0 && p->aStep[curStep].aNode[k].selected) {
        curNode = k;                /* already JOINed: not fetched again */
        continue;
      }
    }
    k = find_step(p, curStep, curNode, r, zTo);
    if (k >= 0) {
      if (pSub && p->aStep[k].pSub == NULL) {
        /* The filtered set replaces a plain prefetch of the same path. */
        p->aStep[k].pSub = quay_qs_ref(pSub);
        rc = quay__qs_view(pSub, &p->aStep[k].view, &p->arena, pErr);
        if (rc) return rc;
        p->aStep[k].hasView = 1;
        rc = plan_view(p, k, pErr);
        if (rc) return rc;
      }
    } else {
      rc = new_batch(p, curStep, curNode, r, pSub, zTo, &k, pErr);
      if (rc) return rc;
    }
    curStep = k;
    curNode = 0;
  }
  return QUAY_OK;
}

/* Plan the loads and counts of step iStep's view. */
static int plan_view(quay_plan *p, int iStep, quay_err *pErr) {
  int i, rc, pass;
  QsView *v = &p->aStep[iStep].view;
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < v->nLoad; i++) {
      quay_qs *L = v->apLoad[i];
      if ((L->eHow == QUAY_LOAD_JOIN) != (pass == 0)) continue;
      rc = plan_load(p, iStep, L, pErr);
      if (rc) return rc;
      v = &p->aStep[iStep].view;    /* aStep may have moved */
    }
  }
  rc = plan_annotations(p, iStep, pErr);
  if (rc) return rc;
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** SQL of a step
** ===================================================================
** A step's statement is written in text order, so that parameters are
** bound in the order they appear (SQLite's "?"): the select list (whose
** annotations may bind values), the window's order, the FROM (a batched
** step's owner key array), WHERE, ORDER BY, LIMIT.  The aliases come
** first: the FROM's tables are rendered to the side before the select
** list needs their names.
*/
/* Emit LEFT JOINs for the select_related nodes (all but node 0). */
static void emit_joins(Build *b, PlanStep *s) {
  int i;
  for (i = 1; i < s->nNode; i++) {
    PlanNode *n = &s->aNode[i];
    PlanNode *par = &s->aNode[n->iParent];
    Hop h;
    int nh = 0;
    if (quay__rel_hops(n->pRel, &h, &nh, b->pErr)) {
      b->rc = b->pErr->code;
      return;
    }
    quay__str_cat(&b->sql, " LEFT JOIN ");
    quay__str_ident(&b->sql, n->pModel->zTable);
    quay__str_cat(&b->sql, " AS ");
    quay__str_ident(&b->sql, n->zAlias);
    quay__str_cat(&b->sql, " ON ");
    quay__str_col(&b->sql, n->zAlias, h.pToKey->zCol);
    quay__str_cat(&b->sql, " = ");
    quay__str_col(&b->sql, par->zAlias, h.pFromKey->zCol);
    quay__soft_term(b, n->pModel, n->zAlias, " AND ");
  }
}

/*
** The FROM of a batched step, in two pieces around its owner-key array
** parameter: zPre (tables, up to where the key test goes), the key test's
** column zKeyCol, then zPost.  A chain that can reach one target twice
** from one owner (quay.through) joins the target to the distinct (owner,
** target) pairs of the chain, restricted to the owners inside:
**
**   "to" AS t JOIN (SELECT DISTINCT <owner> AS "o", <target key> AS "k"
**                   FROM <chain> WHERE <owner> IN <keys>) AS x
**              ON t.key = x."k"                   -- group column x."o"
**
** otherwise the chain is joined directly and the key test goes in WHERE.
*/
typedef struct StepFrom {
  Str pre, post;
  char *zKeyCol;            /* column compared with the key array */
  char *zLink;              /* group column: the owner's key */
  char *zLast;              /* the step model's alias */
  char *zVia0;              /* hop 0's pivot alias, or NULL */
  Str soft;                 /* " AND ..." hidden-row terms of the chain */
  int bInside;              /* the key test is inside zPre..zPost */
} StepFrom;

static void step_from(Build *b, const Hop *aHop, int nHop, StepFrom *f) {
  char *azT[QUAY_MAX_HOPS + 1];
  Str save = b->sql;
  memset(f, 0, sizeof(*f));
  quay__str_init(&f->pre);
  quay__str_init(&f->post);
  quay__str_init(&f->soft);
  if (!quay__chain_repeats(aHop, nHop)) {
    /* The step model's own row is its scope's (with_deleted may show
    ** it); the tables before it are the chain's. */
    quay__str_init(&b->sql);
    quay__emit_chain(b, aHop, nHop, azT, &f->zVia0, &f->zLink, &f->soft,
                     nHop - 1);
    f->pre = b->sql;
    b->sql = save;
    f->zLast = azT[nHop - 1];
    f->zKeyCol = f->zLink;
    return;
  }
  {
    const Hop *h = &aHop[nHop - 1];
    char *zInLink = NULL, *zV = NULL, *zX, *zPrev;
    Str k;
    f->bInside = 1;
    f->zLast = quay__alias(b);
    zX = quay__alias(b);
    if (f->zLast == NULL || zX == NULL) return;
    quay__str_init(&b->sql);
    /* The chain up to the last hop, then its pivot when it has one. */
    quay__emit_chain(b, aHop, nHop - 1, azT, NULL, &zInLink, &f->soft,
                     nHop - 1);
    zPrev = azT[nHop - 2];
    if (h->zVia && zPrev) {
      zV = quay__alias(b);
      if (zV) {
        quay__str_cat(&b->sql, " JOIN ");
        quay__str_ident(&b->sql, h->zVia);
        quay__str_cat(&b->sql, " AS ");
        quay__str_ident(&b->sql, zV);
        quay__str_cat(&b->sql, " ON ");
        quay__str_col(&b->sql, zV, h->zViaFrom);
        quay__str_cat(&b->sql, " = ");
        quay__str_col(&b->sql, zPrev, h->pFromKey->zCol);
        quay__via_soft_term(&b->sql, h, zV, " AND ");
      }
    }
    {
      Str chain = b->sql;
      b->sql = save;
      if (zInLink == NULL || zPrev == NULL || (h->zVia && zV == NULL) ||
          chain.oom) {
        quay__str_free(&chain);
        b->pArena->oom = 1;
        return;
      }
      quay__str_init(&k);
      if (h->zVia) {
        quay__str_col(&k, zV, h->zViaTo);
      } else {
        quay__str_col(&k, zPrev, h->pFromKey->zCol);
      }
      quay__str_ident(&f->pre, h->pTo->zTable);
      quay__str_cat(&f->pre, " AS ");
      quay__str_ident(&f->pre, f->zLast);
      quay__str_printf(&f->pre, " JOIN (SELECT DISTINCT %s AS \"o\", %s AS "
                       "\"k\" FROM ", zInLink, k.oom ? "" : k.z);
      quay__str_append(&f->pre, chain.z ? chain.z : "", chain.n);
      quay__str_cat(&f->pre, " WHERE ");
      quay__str_free(&chain);
      quay__str_free(&k);
    }
    f->zKeyCol = zInLink;
    quay__str_append(&f->post, f->soft.z ? f->soft.z : "", f->soft.n);
    f->soft.n = 0;
    quay__str_cat(&f->post, ") AS ");
    quay__str_ident(&f->post, zX);
    quay__str_cat(&f->post, " ON ");
    quay__str_col(&f->post, f->zLast, h->pToKey->zCol);
    quay__str_cat(&f->post, " = ");
    quay__str_col(&f->post, zX, "k");
    {
      Str l;
      quay__str_init(&l);
      quay__str_col(&l, zX, "o");
      f->zLink = l.oom ? NULL : quay__arena_strdup(b->pArena, l.z, l.n);
      if (f->zLink == NULL) b->pArena->oom = 1;
      quay__str_free(&l);
    }
  }
}

/* Column list entry; in window mode every column gets a unique alias. */
static void sel_col(Build *b, PlanStep *s, int bWindow, const char *zAlias,
                    const char *zCol, int eHint) {
  if (s->nCol) quay__str_cat(&b->sql, ", ");
  quay__str_col(&b->sql, zAlias, zCol);
  if (bWindow) quay__str_printf(&b->sql, " AS c%d", s->nCol);
  s->aHint[s->nCol++] = eHint;
}

/* Make room in the hint array for n more columns. */
static int grow_hints(PlanStep *s, int n, Arena *pArena) {
  int *a = quay__arena_alloc(pArena, sizeof(int) * (size_t)(s->nCol + n + 1));
  if (a == NULL) return QUAY_ENOMEM;
  if (s->nCol) memcpy(a, s->aHint, sizeof(int) * (size_t)s->nCol);
  s->aHint = a;
  return QUAY_OK;
}

/*
** One ORDER BY term.  An annotation of the select list is named (bNamed);
** any other term is written as its expression.
*/
static void emit_order_term(Build *b, Scope *sc, Expr *e, int bNamed) {
  if (bNamed && e->eOp == EX_REF) {
    quay__str_ident(&b->sql, e->pRef->zName);
  } else {
    quay__emit_expr_row(b, sc, e);
  }
  quay__emit_order_dir(b, e, e->bDesc);
}

/* The ORDER BY list of a step: its terms, then the primary key. */
static void emit_order_list(Build *b, PlanStep *s, Scope *sc, QsView *v,
                            int bNamed) {
  int i, nOrder = (v && v->pOrder) ? v->pOrder->nOrder : 0;
  quay_model *m = s->aNode[0].pModel;
  for (i = 0; i < nOrder; i++) {
    emit_order_term(b, sc, v->pOrder->apOrder[i], bNamed);
    quay__str_cat(&b->sql, ", ");
  }
  quay__str_col(&b->sql, s->aNode[0].zAlias, m->apField[m->iPk]->zCol);
}

/* The annotation extras of step iStep, from its view (in order). */
static int plan_annotations(quay_plan *p, int iStep, quay_err *pErr) {
  QsView *v = &p->aStep[iStep].view;
  int i, rc;
  for (i = 0; i < v->nAnn; i++) {
    PlanExtra *x;
    rc = add_extra(p, iStep, &x, pErr);
    if (rc) return rc;
    v = &p->aStep[iStep].view;
    x->eKind = EXTRA_ANN;
    x->zName = v->apAnn[i]->zName;
    x->pAnn = v->apAnn[i];
    x->nCol = 1;
  }
  return QUAY_OK;
}

/*
** select_for_update (issue 13): the clause locking the model's own rows
** (alias zAlias), not those of LEFT JOINed levels (PostgreSQL refuses to
** lock a nullable side).  mLock is quay__qs_lock's; nothing when -1 or
** when the dialect locks no rows.
*/
static void lock_clause(Str *p, const Dialect *d, const char *zAlias,
                        int mLock) {
  if (mLock < 0 || d->zForUpdate == NULL) return;
  quay__str_cat(p, d->zForUpdate);
  quay__str_ident(p, zAlias);
  if (mLock & QUAY_LOCK_NOWAIT) quay__str_cat(p, d->zNoWait);
  if (mLock & QUAY_LOCK_SKIP_LOCKED) quay__str_cat(p, d->zSkipLocked);
}

/*
** The SQL of one step while build_step writes it, in the parts below:
** the scope and the joins (step_scope), the select list (step_select),
** FROM and WHERE (step_where), ORDER BY and LIMIT (step_order), and the
** copy into the plan's arena (step_store).
*/
typedef struct StepSql {
  quay_plan *p;
  int iStep;
  QsView *v;                /* the step's view, or NULL */
  Expr *pPluck;             /* main step: the one selected expression */
  int bMain;                /* step 0 */
  int bWindow;              /* a batched step under a limit / offset */
  int nOrder;               /* order terms of the view */
  Build b;
  Scope *sc;                /* the scope of the step's row source */
  const char *zPv;          /* the pivot alias (through model), or NULL */
  StepFrom sf;              /* a batched step's chain to its owners */
  Str from;                 /* the joins, rendered to the side */
} StepSql;

/* The step itself (re-read after add_extra, which may move it). */
#define STEP(t) (&(t)->p->aStep[(t)->iStep])

/* Out of memory while writing t: the build's error, or a new one. */
static int step_oom(StepSql *t, quay_err *pErr) {
  return t->b.rc ? t->b.rc : quay__oom(pErr);
}

/*
** 1. Aliases, the scope, and the joins every expression of the select
** list and the order needs, rendered into t->from.
*/
static int step_scope(StepSql *t, quay_err *pErr) {
  PlanStep *s = STEP(t);
  Build *b = &t->b;
  QsView *v = t->v;
  Hop aHop[QUAY_MAX_HOPS];
  int i, rc, nHop = 0;
  if (!t->bMain) {
    rc = quay__rel_hops(s->pRel, aHop, &nHop, pErr);
    if (rc) return rc;
  }
  if (t->bMain) s->aNode[0].zAlias = quay__alias(b);
  for (i = 1; i < s->nNode; i++) s->aNode[i].zAlias = quay__alias(b);
  if (t->bMain) {
    t->sc = quay__scope_from_view(b, v, s->aNode[0].zAlias,
                                  QUAY_AGGS_GROUPED);
    t->zPv = quay__scope_pivot(t->sc);
  } else {
    step_from(b, aHop, nHop, &t->sf);
    s->aNode[0].zAlias = t->sf.zLast;
    if (t->sf.zVia0 && s->pRel) {
      Rel *fwd = s->pRel->eKind == QUAY_R_REVERSE ? s->pRel->pFwd : s->pRel;
      if (fwd->pJoin && fwd->pJoin->pThrough) t->zPv = t->sf.zVia0;
    }
    if (t->sf.zLast) {
      t->sc = quay__scope_new(b, v, s->aNode[0].pModel, t->sf.zLast, t->zPv);
    }
  }
  if (quay__build_rc(b) || t->sc == NULL) return step_oom(t, pErr);
  for (i = 0; v && i < v->nAnn; i++) {
    quay__scope_prepare_expr(b, t->sc, v->apAnn[i]->pExpr);
  }
  for (i = 0; i < t->nOrder; i++) {
    quay__scope_prepare_expr(b, t->sc, v->pOrder->apOrder[i]);
  }
  if (t->pPluck) quay__scope_prepare_expr(b, t->sc, t->pPluck);
  {
    Str save = b->sql;
    b->sql = t->from;
    if (t->bMain) {
      quay__scope_emit_from(b, t->sc);
    } else {
      quay__scope_joins(b, t->sc);
    }
    emit_joins(b, s);
    t->from = b->sql;
    b->sql = save;
  }
  return (t->from.oom || quay__build_rc(b)) ? step_oom(t, pErr) : QUAY_OK;
}

/* The through model of a step's relation (its pivot's columns). */
static quay_model *step_through(StepSql *t) {
  PlanStep *s = STEP(t);
  Rel *r = t->bMain ? t->v->pScope->pScopeRel : s->pRel;
  Rel *fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  return fwd->pJoin->pThrough;
}

/*
** 2. The select list: every selected node's fields, the annotations, the
** pivot's columns, a batched step's owner key; under a window, every
** column aliased c<i> and the row number.
*/
static int step_select(StepSql *t, quay_err *pErr) {
  PlanStep *s = STEP(t);
  Build *b = &t->b;
  int i, k;
  k = 2;
  for (i = 0; i < s->nNode; i++) k += s->aNode[i].pModel->nField;
  k += s->nExtra;
  if (t->zPv) k += step_through(t)->nField;
  s->nCol = 0;
  if (grow_hints(s, k + 8, &t->p->arena)) return step_oom(t, pErr);
  if (t->bWindow) quay__str_cat(&b->sql, "SELECT * FROM (");
  if (t->bMain) {
    /* The view's rows once, as a WITH query, for the grouped joins' keys:
    ** no copy of its conditions nested in each join (SQLite's parser
    ** takes a limited depth; values.c does the same). */
    char *zKeys = quay__with_name(b);
    if (zKeys == NULL) return step_oom(t, pErr);
    if (quay__scope_keys_with(b, t->sc, zKeys, "WITH ")) {
      quay__str_cat(&b->sql, " ");
    }
  }
  quay__str_cat(&b->sql, "SELECT ");
  if (t->pPluck) {
    quay__emit_expr_row(b, t->sc, t->pPluck);
    s->aHint[s->nCol++] = quay__expr_hint(t->pPluck);
    return QUAY_OK;
  }
  for (i = 0; i < s->nNode; i++) {
    PlanNode *n = &s->aNode[i];
    if (!n->selected) continue;
    n->iFirstCol = s->nCol;
    n->iKeyCol = s->nCol + n->pModel->iPk;
    for (k = 0; k < n->pModel->nField; k++) {
      Field *f = n->pModel->apField[k];
      /* NOT NULL holds for node 0 only: a LEFT JOINed node's columns
      ** are all NULL when it has no row. */
      sel_col(b, s, t->bWindow, n->zAlias, f->zCol,
              quay__field_hint(f) | ((i > 0 || (f->mFlags & QUAY_F_NULL))
                              ? 0 : QUAY_HINT_NOTNULL));
    }
  }
  for (i = 0; i < s->nExtra; i++) {
    PlanExtra *x = &s->aExtra[i];
    if (x->eKind != EXTRA_ANN) continue;
    x->iCol = s->nCol;
    quay__str_cat(&b->sql, ", ");
    quay__emit_expr_row(b, t->sc, x->pAnn->pExpr);
    quay__str_cat(&b->sql, " AS ");
    if (t->bWindow) {
      quay__str_printf(&b->sql, "c%d", s->nCol);
    } else {
      quay__str_ident(&b->sql, x->zName);
    }
    s->aHint[s->nCol++] = quay__expr_hint(x->pAnn->pExpr);
  }
  if (t->zPv) {
    /* rec.pivot: the through model's columns. */
    quay_model *pm = step_through(t);
    PlanExtra *x;
    int rc = add_extra(t->p, t->iStep, &x, pErr);
    if (rc) return rc;
    s = STEP(t);
    x->eKind = EXTRA_PIVOT;
    x->zName = "pivot";
    x->pModel = pm;
    x->iCol = s->nCol;
    x->nCol = pm->nField;
    for (k = 0; k < pm->nField; k++) {
      sel_col(b, s, t->bWindow, t->zPv, pm->apField[k]->zCol,
              quay__field_hint(pm->apField[k]));
    }
  }
  if (!t->bMain) {
    s->iGroupCol = s->nCol;
    quay__str_printf(&b->sql, ", %s", t->sf.zLink ? t->sf.zLink : "NULL");
    if (t->bWindow) quay__str_printf(&b->sql, " AS c%d", s->nCol);
    s->aHint[s->nCol++] = s->pOwnerKey->eType;
  }
  return QUAY_OK;
}

/*
** 3. FROM with a batched step's owner keys where its chain says (the main
** step's " FROM ..." is all in t->from), the grouped aggregates' joins,
** and 4. WHERE.
*/
static void step_where(StepSql *t) {
  PlanStep *s = STEP(t);
  Build *b = &t->b;
  StepFrom *sf = &t->sf;
  quay_value ph;
  int nTerm = 0;
  ph.type = QUAY_NULL;
  if (t->bWindow) {
    quay__str_printf(&b->sql,
                     ", ROW_NUMBER() OVER (PARTITION BY %s ORDER BY ",
                     sf->zLink ? sf->zLink : "NULL");
    emit_order_list(b, s, t->sc, t->v, 0);
    quay__str_cat(&b->sql, ") AS qrn");
  }
  if (!t->bMain) {
    quay__str_cat(&b->sql, " FROM ");
    quay__str_append(&b->sql, sf->pre.z ? sf->pre.z : "", sf->pre.n);
    if (sf->bInside) {
      s->iKeyParam = b->params.n;
      b->pDia->xInArray(&b->sql, sf->zKeyCol ? sf->zKeyCol : "NULL",
                        quay__params_add(&b->params, &ph), s->eKeyType);
      quay__str_append(&b->sql, sf->post.z ? sf->post.z : "", sf->post.n);
    }
  }
  quay__str_append(&b->sql, t->from.z ? t->from.z : "", t->from.n);
  /* The main step's grouped aggregates (parameters: after the FROM's). */
  quay__scope_agg_joins(b, t->sc);
  if (!t->bMain && !sf->bInside) {
    quay__str_cat(&b->sql, " WHERE ");
    nTerm = 1;
    s->iKeyParam = b->params.n;
    b->pDia->xInArray(&b->sql, sf->zKeyCol ? sf->zKeyCol : "NULL",
                      quay__params_add(&b->params, &ph), s->eKeyType);
    quay__str_append(&b->sql, sf->soft.z ? sf->soft.z : "", sf->soft.n);
  }
  quay__scope_where(b, t->sc, &nTerm);
}

/* Whether a step's model has an integer primary key. */
static int int_key(PlanStep *s) {
  quay_model *m = s->aNode[0].pModel;
  int e = m->apField[m->iPk]->eType;
  return e == QUAY_T_ID || e == QUAY_T_INTEGER;
}

/*
** 5. ORDER BY and LIMIT / OFFSET (a window's bounds on its row number),
** and the main step's row lock.
*/
static void step_order(StepSql *t) {
  PlanStep *s = STEP(t);
  Build *b = &t->b;
  QsView *v = t->v;
  quay_value n;
  n.type = QUAY_INT;
  if (t->bWindow) {
    quay__str_cat(&b->sql, ") AS w WHERE qrn > ");
    n.u.i = v->offset >= 0 ? v->offset : 0;
    quay__build_param(b, &n);
    if (v->limit >= 0 &&
        v->limit <= INT64_MAX - (v->offset >= 0 ? v->offset : 0)) {
      /* A bound past the largest integer is no bound. */
      quay__str_cat(&b->sql, " AND qrn <= ");
      n.u.i = (v->offset >= 0 ? v->offset : 0) + v->limit;
      quay__build_param(b, &n);
    }
    quay__str_printf(&b->sql, " ORDER BY c%d, qrn", s->iGroupCol);
  } else if (!t->bMain && s->toMany && t->nOrder == 0 && int_key(s)) {
    /* A batched set ordered by its integer key only: the engine orders
    ** each owner's children itself (load.c attach_step).  An ORDER BY on
    ** the child's key makes the database sort rows it otherwise streams
    ** (a temporary b-tree on SQLite; a merge join instead of a hash join
    ** on PostgreSQL, scripts/bench W2). */
    s->bSortKey = 1;
  } else {
    /* The order of :all(), for batched steps too: a loaded set has the
    ** order of its query (the primary key breaks ties). */
    quay__str_cat(&b->sql, " ORDER BY ");
    emit_order_list(b, s, t->sc, v, t->pPluck == NULL);
  }
  if (t->bMain && v) quay__emit_limit(b, v);
  if (t->bMain && t->pPluck == NULL && t->p->pQs) {
    lock_clause(&b->sql, b->pDia, s->aNode[0].zAlias,
                quay__qs_lock(t->p->pQs));
  }
}

/* The SQL and its parameters, copied into the plan's arena. */
static int step_store(StepSql *t, quay_err *pErr) {
  PlanStep *s = STEP(t);
  Build *b = &t->b;
  Arena *a = &t->p->arena;
  int rc = quay__build_rc(b);
  if (rc) return rc;
  s->zSql = quay__arena_strdup(a, b->sql.z, b->sql.n);
  s->nParam = b->params.n;
  s->aParam = quay__arena_alloc(a, sizeof(quay_value) *
                                       (size_t)(b->params.n + 1));
  if (s->zSql == NULL || s->aParam == NULL) return quay__oom(pErr);
  if (b->params.n) {
    memcpy(s->aParam, b->params.a, sizeof(quay_value) * (size_t)b->params.n);
  }
  return QUAY_OK;
}

/*
** Build the SQL of step iStep (record mode).  pPluck (main step only)
** replaces the select list by one expression.
*/
static int build_step(quay_plan *p, int iStep, Expr *pPluck,
                      quay_err *pErr) {
  PlanStep *s = &p->aStep[iStep];
  StepSql t;
  int i, rc;
  memset(&t, 0, sizeof(t));
  t.p = p;
  t.iStep = iStep;
  t.v = s->hasView ? &s->view : NULL;
  t.pPluck = pPluck;
  t.bMain = iStep == 0;
  t.bWindow = !t.bMain && t.v && (t.v->limit >= 0 || t.v->offset >= 0);
  t.nOrder = (t.v && t.v->pOrder) ? t.v->pOrder->nOrder : 0;
  quay__str_init(&t.from);
  quay__build_init(&t.b, p->pDb, &p->arena, pErr);
  if (t.bMain) {
    /* Step 0 as a subquery continues its statement's parameters. */
    quay_value vNull;
    vNull.type = QUAY_NULL;
    for (i = 0; i < p->nParamBase; i++) quay__params_add(&t.b.params, &vNull);
  }
  rc = step_scope(&t, pErr);
  if (rc == QUAY_OK) rc = step_select(&t, pErr);
  if (rc == QUAY_OK) {
    step_where(&t);
    step_order(&t);
    rc = step_store(&t, pErr);
  }
  quay__str_free(&t.from);
  quay__str_free(&t.sf.pre);
  quay__str_free(&t.sf.post);
  quay__str_free(&t.sf.soft);
  quay__build_free(&t.b);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Public plan API
** ===================================================================
*/
void quay_plan_free(quay_plan *p) {
  int i;
  if (p == NULL) return;
  for (i = 0; i < p->nStep; i++) {
    quay__free(p->aStep[i].aNode);
    quay__free(p->aStep[i].aExtra);
    quay_qs_free(p->aStep[i].pSub);
  }
  quay__free(p->aStep);
  quay_qs_free(p->pQs);
  quay__arena_free(&p->arena);
  quay__db_release(p->pDb);
  quay__free(p);
}

static int plan_alloc(quay_db *pDb, quay_plan **pp, quay_err *pErr) {
  quay_plan *p = quay__calloc(sizeof(*p));
  *pp = p;
  if (p == NULL) return quay__oom(pErr);
  p->pDb = pDb;
  quay__db_hold(pDb);
  quay__arena_init(&p->arena);
  return QUAY_OK;
}

/*
** Number the record slots (selected nodes, then each step's pivot) and
** decide which slots de-duplicate their records by key: JOINed levels
** always (100k posts of 10k authors make 10k author records), a batched
** step's own model when one child row can come back for several owners.
*/
static int assign_slots(quay_plan *p, quay_err *pErr) {
  int i, k, n = 0;
  for (i = 0; i < p->nStep; i++) {
    PlanStep *s = &p->aStep[i];
    for (k = 0; k < s->nNode; k++) n += s->aNode[k].selected;
    for (k = 0; k < s->nExtra; k++) n += s->aExtra[k].eKind == EXTRA_PIVOT;
  }
  p->aSlot = quay__arena_alloc(&p->arena, sizeof(PlanSlot) * (size_t)(n + 1));
  if (p->aSlot == NULL) return quay__oom(pErr);
  p->nSlot = 0;
  for (i = 0; i < p->nStep; i++) {
    PlanStep *s = &p->aStep[i];
    int bPivot = 0;
    for (k = 0; k < s->nExtra; k++) bPivot |= s->aExtra[k].eKind == EXTRA_PIVOT;
    if (i > 0) {
      Rel *fwd = s->pRel->eKind == QUAY_R_REVERSE ? s->pRel->pFwd : s->pRel;
      /* The key list is distinct, so a child row repeats only when it is
      ** reached from several owners: through a join table or a path. */
      s->bDedupe = !bPivot && (fwd->eKind == QUAY_R_MANY_TO_MANY ||
                               fwd->eKind == QUAY_R_THROUGH);
    }
    for (k = 0; k < s->nNode; k++) {
      PlanNode *nd = &s->aNode[k];
      PlanSlot *sl;
      nd->iSlot = -1;
      if (!nd->selected) continue;
      nd->iSlot = p->nSlot;
      sl = &p->aSlot[p->nSlot++];
      sl->pModel = nd->pModel;
      sl->iStep = i;
      sl->iNode = k;
      sl->isPivot = 0;
      sl->bDedupe = k > 0 || (i > 0 && s->bDedupe);
    }
    for (k = 0; k < s->nExtra; k++) {
      PlanExtra *x = &s->aExtra[k];
      PlanSlot *sl;
      if (x->eKind != EXTRA_PIVOT) continue;
      x->iSlot = p->nSlot;
      sl = &p->aSlot[p->nSlot++];
      sl->pModel = x->pModel;
      sl->iStep = i;
      sl->iNode = -1;
      sl->isPivot = 1;
      sl->bDedupe = 0;
    }
  }
  for (i = 1; i < p->nStep; i++) {
    PlanStep *s = &p->aStep[i];
    PlanStep *par = &p->aStep[s->iParent];
    s->iOwnerSlot = par->aNode[s->iParentNode].iSlot;
    assert(s->iParent < i);
    if (QUAY_NEVER(s->iOwnerSlot < 0)) {
      return quay__err(pErr, QUAY_EMISUSE, "plan: owners of step %d are not "
                       "loaded", i);
    }
  }
  return QUAY_OK;
}

static int values_collapse(const QsView *v);

/* Step 0 of a values set: value rows (values.c), no records.  A
** select_for_update set locks the rows it reads (FOR UPDATE OF its own
** row source) unless they collapse (quay__qs_lock_check refuses those). */
static int build_values_step(quay_plan *p, quay_err *pErr) {
  PlanStep *s = &p->aStep[0];
  Build b;
  int i, rc, nAlias;
  quay__build_init(&b, p->pDb, &p->arena, pErr);
  for (i = 0; i < p->nParamBase; i++) {
    quay_value vNull;
    vNull.type = QUAY_NULL;
    quay__params_add(&b.params, &vNull);
  }
  nAlias = b.nAlias;
  rc = quay__values_sql(&b, &s->view, NULL, NULL, 0, &s->aHint, &s->nCol);
  if (rc == QUAY_OK && p->pQs && quay__qs_lock(p->pQs) >= 0 &&
      !values_collapse(&s->view)) {
    /* Plain value rows read the set's own rows under the first alias
    ** the statement took: take that name again to lock them. */
    const char *zA;
    b.nAlias = nAlias;
    zA = quay__alias(&b);
    if (zA) lock_clause(&b.sql, b.pDia, zA, quay__qs_lock(p->pQs));
    rc = zA ? quay__build_rc(&b) : quay__oom(pErr);
  }
  if (rc == QUAY_OK) {
    s->zSql = quay__arena_strdup(&p->arena, b.sql.z ? b.sql.z : "", b.sql.n);
    s->nParam = b.params.n;
    s->aParam = quay__arena_alloc(&p->arena, sizeof(quay_value) *
                                                 (size_t)(b.params.n + 1));
    if (s->zSql == NULL || s->aParam == NULL) {
      rc = quay__oom(pErr);
    } else if (b.params.n) {
      memcpy(s->aParam, b.params.a, sizeof(quay_value) * (size_t)b.params.n);
    }
  }
  p->bValues = 1;
  s->aNode[0].selected = 0;           /* no records */
  quay__build_free(&b);
  return rc;
}

/*
** Plan a query set; pPluck selects one column instead of records.  Step
** 0's parameters are numbered after nParamBase others (a subquery).
*/
static int plan_qs(quay_qs *pQs, Expr *pPluck, int nParamBase,
                   quay_plan **pp, quay_err *pErr) {
  quay_plan *p;
  int rc, i, iStep, iNode;
  *pp = NULL;
  rc = plan_alloc(pQs->pModel->pDb, &p, pErr);
  if (rc) return rc;
  p->pQs = quay_qs_ref(pQs);
  p->nParamBase = nParamBase;
  rc = add_step(p, &iStep, pErr);
  if (rc == QUAY_OK) {
    rc = quay__qs_view(pQs, &p->aStep[0].view, &p->arena, pErr);
  }
  if (rc == QUAY_OK) {
    p->aStep[0].hasView = 1;
    p->strict = p->aStep[0].view.strict || pQs->pModel->pDb->opts.strict;
    rc = add_node(p, 0, pQs->pModel, -1, NULL, 1, &iNode, pErr);
  }
  if (rc == QUAY_OK && pPluck == NULL && p->aStep[0].view.pValues) {
    rc = build_values_step(p, pErr);
    if (rc == QUAY_OK) rc = assign_slots(p, pErr);
    if (rc) {
      quay_plan_free(p);
      return rc;
    }
    *pp = p;
    return QUAY_OK;
  }
  if (rc == QUAY_OK && pPluck == NULL) rc = plan_view(p, 0, pErr);
  for (i = 0; rc == QUAY_OK && i < p->nStep; i++) {
    rc = build_step(p, i, i == 0 ? pPluck : NULL, pErr);
  }
  if (rc == QUAY_OK) rc = assign_slots(p, pErr);
  if (rc) {
    quay_plan_free(p);
    return rc;
  }
  *pp = p;
  return QUAY_OK;
}

int quay_plan_new(quay_qs *pQs, quay_plan **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_plan_new: %s is NULL", pQs ==
        NULL ? "pQs" : "ppPlan");
  }
  return plan_qs(pQs, NULL, 0, pp, pErr);
}

int quay_plan_lazy(quay_model *m, int iRel, quay_plan **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_plan_lazy: %s is NULL", m ==
        NULL ? "pModel" : "ppPlan");
  }
  quay_plan *p;
  int rc, iStep, iNode, iNew;
  *pp = NULL;
  if (iRel < 0 || iRel >= m->nRel) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_plan_lazy: bad relation");
  }
  rc = quay__resolve(m->pDb, pErr);
  if (rc) return rc;
  rc = plan_alloc(m->pDb, &p, pErr);
  if (rc) return rc;
  p->bLazy = 1;
  rc = add_step(p, &iStep, pErr);
  if (rc == QUAY_OK) rc = add_node(p, 0, m, -1, NULL, 1, &iNode, pErr);
  if (rc == QUAY_OK) {
    rc = new_batch(p, 0, 0, m->apRel[iRel], NULL, NULL, &iNew, pErr);
  }
  if (rc == QUAY_OK) rc = build_step(p, 1, NULL, pErr);
  if (rc == QUAY_OK) rc = assign_slots(p, pErr);
  if (rc) {
    quay_plan_free(p);
    return rc;
  }
  *pp = p;
  return QUAY_OK;
}

const char *quay_plan_sql(quay_plan *p, const quay_value **paParam,
                          int *pnParam) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return NULL;
  }
  PlanStep *s = &p->aStep[0];
  if (paParam) *paParam = s->aParam;
  if (pnParam) *pnParam = s->nParam;
  return s->zSql;
}

int quay_plan_strict(const quay_plan *p) {
  return p ? p->strict : 0;
}

int quay_plan_nslot(const quay_plan *p) {
  return p ? p->nSlot : 0;
}

void quay_plan_slot(const quay_plan *p, int iSlot, quay_slot_info *pOut) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return;
  }
  memset(pOut, 0, sizeof(*pOut));
  if (iSlot < 0 || iSlot >= p->nSlot) return;
  pOut->pModel = p->aSlot[iSlot].pModel;
  pOut->isPivot = p->aSlot[iSlot].isPivot;
}

int quay__plan_key_param(quay_plan *p, int iStep, const quay_value *aKey,
                         int nKey, Arena *pArena, quay_value **paParam,
                         quay_err *pErr) {
  PlanStep *s = &p->aStep[iStep];
  quay_value *a;
  Str arr;
  *paParam = NULL;
  assert(iStep > 0 && s->iKeyParam >= 0);
  a = quay__arena_alloc(pArena, sizeof(quay_value) * (size_t)(s->nParam + 1));
  if (a == NULL) return quay__oom(pErr);
  memcpy(a, s->aParam, sizeof(quay_value) * (size_t)s->nParam);
  quay__str_init(&arr);
  if (p->pDb->pDialect->xArrayValue(&arr, aKey, nKey) || arr.oom) {
    quay__str_free(&arr);
    return quay__oom(pErr);
  }
  a[s->iKeyParam].type = QUAY_TEXT;
  a[s->iKeyParam].n = arr.n;
  a[s->iKeyParam].u.z = quay__arena_strdup(pArena, arr.z ? arr.z : "[]",
                                           arr.z ? arr.n : 2);
  if (arr.z == NULL) a[s->iKeyParam].n = 2;
  quay__str_free(&arr);
  if (a[s->iKeyParam].u.z == NULL) return quay__oom(pErr);
  *paParam = a;
  return QUAY_OK;
}

/*
** {======= explain(): one entry per main query, JOINed level and batch */

/* "a__b" path of node k of step iStep (arena). */
static const char *node_path(quay_plan *p, int iStep, int k) {
  PlanStep *s = &p->aStep[iStep];
  const char *zUp;
  const char *zName;
  if (k == 0) {
    if (iStep == 0) return "";
    zUp = node_path(p, s->iParent, s->iParentNode);
    zName = s->zAttach;
  } else {
    zUp = node_path(p, iStep, s->aNode[k].iParent);
    zName = s->aNode[k].pRel->zName;
  }
  if (zUp == NULL) return NULL;
  if (*zUp == 0) return zName;
  {
    size_t nUp = strlen(zUp), nName = strlen(zName);
    char *z = quay__arena_alloc(&p->arena, nUp + nName + 3);
    if (z == NULL) return NULL;
    memcpy(z, zUp, nUp);
    memcpy(z + nUp, "__", 2);
    memcpy(z + nUp + 2, zName, nName + 1);
    return z;
  }
}

int quay_plan_explain(quay_plan *p, int i, quay_explain_info *pOut) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL || pOut == NULL) {
    return QUAY_EMISUSE;
  }
  int s, k, n = 0;
  memset(pOut, 0, sizeof(*pOut));
  for (s = p->bLazy ? 1 : 0; s < p->nStep; s++) {
    PlanStep *st = &p->aStep[s];
    for (k = 0; k < st->nNode; k++) {
      if (k > 0 && !st->aNode[k].selected) continue;
      if (n++ != i) continue;
      pOut->zPath = node_path(p, s, k);
      pOut->zHow = k > 0 ? "join" : s == 0 ? "query" : "batch";
      pOut->zSql = st->zSql ? st->zSql : "";
      return pOut->zPath ? QUAY_OK : QUAY_ENOMEM;
    }
  }
  return QUAY_DONE;
}
/* }======= */
/* }================================================================== */


/*
** {==================================================================
** Terminal calls: count, exists, pluck
** ===================================================================
*/
/* "SELECT <zWhat> FROM ... WHERE ..." of a query set into b. */
static const char *select_where(Build *b, QsView *v, const char *zWhat) {
  char *zA = quay__alias(b);
  Scope *sc;
  int nTerm = 0;
  if (zA == NULL) return NULL;
  /* Limited: the rows are the first by key, not by the view's order, so
  ** aggregates (of filters) stay correlated. */
  sc = quay__scope_from_view(b, v, zA, v->limit >= 0 || v->offset >= 0
                                           ? QUAY_AGGS_CORRELATED
                                           : QUAY_AGGS_GROUPED);
  {
    /* the grouped joins' keys once, as a WITH query (step_select) */
    char *zKeys = quay__with_name(b);
    if (zKeys == NULL) return NULL;
    if (quay__scope_keys_with(b, sc, zKeys, "WITH ")) {
      quay__str_cat(&b->sql, " ");
    }
  }
  quay__str_printf(&b->sql, "SELECT %s", zWhat);
  quay__scope_emit_from(b, sc);
  quay__scope_agg_joins(b, sc);
  quay__scope_where(b, sc, &nTerm);
  if (v->limit >= 0 || v->offset >= 0) {
    quay_value n;
    Field *pk = v->pModel->apField[v->pModel->iPk];
    n.type = QUAY_INT;
    quay__str_cat(&b->sql, " ORDER BY ");
    quay__str_col(&b->sql, zA, pk->zCol);
    if (v->limit >= 0) {
      quay__str_cat(&b->sql, " LIMIT ");
      n.u.i = v->limit;
      quay__build_param(b, &n);
    } else {
      quay__str_cat(&b->sql, b->pDia->zOffsetNoLimit);
    }
    if (v->offset >= 0) {
      quay__str_cat(&b->sql, " OFFSET ");
      n.u.i = v->offset;
      quay__build_param(b, &n);
    }
  }
  return zA;
}

/* Non-0 when a values set's rows are not the set's records: distinct
** rows, or groups. */
static int values_collapse(const QsView *v) {
  int i;
  if (v->pValues == NULL) return 0;
  if (v->distinct) return 1;
  for (i = v->iFirstGroupAnn; i < v->nAnn; i++) {
    if (v->apAnn[i]->pExpr->bAgg) return 1;
  }
  return 0;
}

/* "SELECT <zWhat> FROM (<values rows>) AS q" of a collapsing values set. */
static void select_values(Build *b, QsView *v, const char *zPre,
                          const char *zPost) {
  int *aHint, nCol;
  quay__str_cat(&b->sql, zPre);
  if (quay__values_sql(b, v, NULL, NULL, 0, &aHint, &nCol) == QUAY_OK) {
    quay__str_cat(&b->sql, zPost);
  }
}

int quay_qs_count(quay_qs *pQs, quay_db *pDb, int64_t *pn, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || pn == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_count: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : "pn");
  }
  Arena a;
  Build b;
  QsView v;
  int rc;
  *pn = 0;
  rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc) return rc;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  rc = quay__qs_view(pQs, &v, &a, pErr);
  if (rc == QUAY_OK && values_collapse(&v)) {
    select_values(&b, &v, "SELECT COUNT(*) FROM (", ") AS q");
    rc = quay__build_rc(&b);
  } else if (rc == QUAY_OK) {
    int mLock = quay__qs_lock(pQs);
    if (v.limit >= 0 || v.offset >= 0 || mLock >= 0) {
      /* select_for_update: the rows counted are locked (PostgreSQL locks
      ** no row of an aggregate's own FROM) */
      const char *zA;
      quay__str_cat(&b.sql, "SELECT COUNT(*) FROM (");
      zA = select_where(&b, &v, "1");
      if (zA) lock_clause(&b.sql, b.pDia, zA, mLock);
      quay__str_cat(&b.sql, ") AS q");
    } else {
      select_where(&b, &v, "COUNT(*)");
    }
    rc = quay__build_rc(&b);
  }
  if (rc == QUAY_OK) {
    int iSrv = quay_qs_is_primary(pQs) ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
    rc = quay__db_read_scalar(pDb, &iSrv, b.sql.z, b.params.a, b.params.n,
                              pn, pErr);
  }
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

int quay_qs_exists(quay_qs *pQs, quay_db *pDb, int *pb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || pb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_exists: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : "pb");
  }
  Arena a;
  Build b;
  QsView v;
  int rc;
  int64_t n = 0;
  *pb = 0;
  rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc) return rc;
  if (quay__qs_lock(pQs) >= 0) {
    /* select_for_update: lock every row of the set, as count does */
    rc = quay_qs_count(pQs, pDb, &n, pErr);
    *pb = n != 0;
    return rc;
  }
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  rc = quay__qs_view(pQs, &v, &a, pErr);
  if (rc == QUAY_OK && v.limit == 0) {
    quay__build_free(&b);
    quay__arena_free(&a);
    return QUAY_OK;
  }
  if (rc == QUAY_OK && values_collapse(&v)) {
    /* A row or none (read as 1 or 0), not EXISTS (<rows>): SQLite (3.40)
    ** answers true there for an empty window of DISTINCT rows with ORDER
    ** BY and OFFSET, and EXISTS (SELECT 1 FROM (<rows>)) nests deeper
    ** than its parser takes for sets with deep conditions. */
    select_values(&b, &v, "SELECT 1 FROM (", ") AS q LIMIT 1");
    rc = quay__build_rc(&b);
  } else if (rc == QUAY_OK) {
    quay__str_cat(&b.sql, "SELECT EXISTS (");
    v.limit = v.offset >= 0 ? 1 : v.limit;
    select_where(&b, &v, "1");
    quay__str_cat(&b.sql, ")");
    rc = quay__build_rc(&b);
  }
  if (rc == QUAY_OK) {
    int iSrv = quay_qs_is_primary(pQs) ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
    rc = quay__db_read_scalar(pDb, &iSrv, b.sql.z, b.params.a, b.params.n,
                              &n, pErr);
  }
  *pb = n != 0;
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

/* select_for_update outside a transaction that may write, or over
** collapsed value rows: quayInt.h. */
int quay__qs_lock_check(quay_qs *pQs, quay_db *pDb, quay_err *pErr) {
  Arena a;
  QsView v;
  int rc;
  if (quay__qs_lock(pQs) < 0) return QUAY_OK;
  if (!quay__db_in_txn(pDb) || pDb->bTxnReadOnly) {
    return quay__err(pErr, QUAY_EMISUSE, "select_for_update on %s: run it "
                     "inside db:transaction%s (row locks last until it "
                     "ends)", pQs->pModel->zName,
                     pDb->txnDepth ? ", not a readonly one" : "");
  }
  quay__arena_init(&a);
  rc = quay__qs_view(pQs, &v, &a, pErr);
  if (rc == QUAY_OK && values_collapse(&v)) {
    rc = quay__err(pErr, QUAY_EMISUSE, "select_for_update on %s: distinct "
                   "or grouped values() rows stand for several rows and "
                   "cannot be locked; lock the set before values() in a "
                   "query of its own", pQs->pModel->zName);
  }
  quay__arena_free(&a);
  return rc;
}

/*
** Append the row lock of a select_for_update set to the main step of its
** plan p (a pluck's single statement).  Outside a transaction, or in a
** read-only one, QUAY_EMISUSE.
*/
static int plan_lock(quay_db *pDb, quay_qs *pQs, quay_plan *p,
                     quay_err *pErr) {
  Str q;
  int rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc) return rc;
  quay__str_init(&q);
  quay__str_cat(&q, p->aStep[0].zSql);
  lock_clause(&q, pDb->pDialect, p->aStep[0].aNode[0].zAlias,
              quay__qs_lock(pQs));
  p->aStep[0].zSql = q.oom ? NULL
                           : quay__arena_strdup(&p->arena, q.z ? q.z : "",
                                                q.n);
  quay__str_free(&q);
  return p->aStep[0].zSql ? QUAY_OK : quay__oom(pErr);
}

int quay_qs_pluck(quay_qs *pQs, quay_db *pDb, const char *zPath,
                  quay_cursor **ppCur, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || zPath == NULL || ppCur == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_pluck: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : zPath == NULL ? "zPath" :
            "ppCur");
  }
  Expr *e;
  quay_plan *p;
  int rc, bDone = 0;
  *ppCur = NULL;
  rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc) return rc;
  rc = quay_expr_col(zPath, (quay_expr **)&e, pErr);
  if (rc) return rc;
  e->zWhat = "pluck";
  rc = quay__expr_bind(e, pQs, 1, pErr);
  /* Groups and distinct value rows: pluck from those rows. */
  if (rc == QUAY_OK) {
    rc = quay__values_pluck(pQs, pDb, zPath, &bDone, ppCur, pErr);
  }
  if (rc || bDone) {
    quay__expr_free(e);
    return rc;
  }
  rc = plan_qs(pQs, e, 0, &p, pErr);
  if (rc == QUAY_OK && quay__qs_lock(pQs) >= 0) {
    /* select_for_update (issue 13): pluck locks the rows it reads. */
    rc = plan_lock(pDb, pQs, p, pErr);
    if (rc) quay_plan_free(p);
  }
  if (rc == QUAY_OK) {
    int iSrv = quay_qs_is_primary(pQs) || quay__qs_lock(pQs) >= 0
                   ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
    rc = quay__db_read(pDb, &iSrv, p->aStep[0].zSql, p->aStep[0].aParam,
                       p->aStep[0].nParam, p->aStep[0].aHint,
                       p->aStep[0].nCol, 0, ppCur, pErr);
    /* The cursor's SQL and parameters were copied by the driver at bind
    ** time; the plan can go. */
    quay_plan_free(p);
  }
  quay__expr_free(e);
  return rc;
}

/*
** SELECT of field pKey of the rows of a query set, appended to b with its
** parameters after b's (update, delete, on_update's old values).  A set
** with a limit or an offset selects what :all() reads: the main query
** of its plan with pKey as the only column, so the joins of to-one order
** paths, the ORDER BY (counts, pivot__ terms, the key as tie-breaker),
** LIMIT and OFFSET are the loader's own.  Any other set needs no order
** (quay__build_keys).  Failure is left in b (quay__build_rc).
**
** Returns the alias of the set's own rows in that SELECT, for the caller
** to lock them (FOR UPDATE OF <alias> on PostgreSQL), or NULL when they
** cannot be locked.  PostgreSQL refuses a locking clause only at a level
** with GROUP BY, DISTINCT, aggregates, set operations or window
** functions.  The key query of a limited set is a row query (the pluck
** of step 0, never a values step): those appear in it only inside the
** grouped subqueries it joins (annotations, counts), which a lock OF the
** set's own alias leaves alone, so it is always lockable; a values step
** would not be (its rows may collapse), and gets NULL.
*/
const char *quay__plan_keys(Build *b, quay_qs *pQs, Field *pKey) {
  QsView v;
  Expr e;
  quay_plan *p = NULL;
  PlanStep *s;
  const char *zA = NULL;
  int i, rc;
  if (quay__qs_view(pQs, &v, b->pArena, b->pErr)) {
    b->rc = b->pErr->code;
    return NULL;
  }
  if (v.limit < 0 && v.offset < 0) return quay__build_keys(b, pQs, pKey);
  rc = quay__build_rc(b);
  if (rc) return NULL;
  /* The key as a bound column of the set's own row. */
  memset(&e, 0, sizeof(e));
  e.eOp = EX_COL;
  e.bound = 1;
  e.path.pModel = pQs->pModel;
  e.path.pField = pKey;
  e.path.zRest = "";
  e.eType = pKey->eType;
  rc = plan_qs(pQs, &e, b->params.n, &p, b->pErr);
  if (rc) {
    b->rc = rc;
    return NULL;
  }
  s = &p->aStep[0];
  assert(s->nParam >= b->params.n);
  assert(!p->bValues);                  /* a pluck plans rows */
  quay__str_cat(&b->sql, s->zSql);
  if (!p->bValues && s->aNode[0].zAlias) {
    zA = quay__arena_strdup(b->pArena, s->aNode[0].zAlias,
                            strlen(s->aNode[0].zAlias));
  }
  for (i = b->params.n; i < s->nParam; i++) {
    /* Patterns and key arrays live in the plan's arena: copy them. */
    quay_value x = s->aParam[i];
    if (QUAY_VALUE_HAS_BYTES(x.type)) {
      char *z = quay__arena_strdup(b->pArena, x.u.z, x.n);
      if (z == NULL) break;           /* the arena is marked failed */
      x.u.z = z;
    }
    quay__params_add(&b->params, &x);
  }
  quay_plan_free(p);
  return zA;
}
/* }================================================================== */
