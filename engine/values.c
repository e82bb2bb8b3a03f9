/*
** engine/values.c
** Value rows: values() (plain rows of chosen columns), values followed by
** aggregate annotations (one row per group), distinct, and aggregate()
** over a whole set.
** See LICENSE
**
** Plain values rows are one SELECT of the chosen expressions over the
** set's rows.  Grouped rows and aggregate() are two levels, so that no
** aggregate ever multiplies another (docs/reference.md "No inflation"):
**
**   SELECT q."g0" AS "author__name", COUNT(*) AS "n",
**          COALESCE(SUM(q."a1"), 0) AS "comments"
**     FROM (SELECT t1.name AS "g0",                       -- group columns
**                  (SELECT COUNT(*) FROM comments c       -- per-row part
**                    WHERE c.post_id = t0.id) AS "a1",    -- of a to-many
**                  t0.id AS "k"                           -- aggregate
**             FROM posts t0 LEFT JOIN users t1 ON ...
**            WHERE <filters>) AS q
**    GROUP BY q."g0" HAVING <conditions on aggregates> ORDER BY ...
**
** The inner level has one row per record of the set (LEFT JOINs only
** along to-one paths, so nothing repeats), with the group columns, the
** arguments of aggregates over the record's own row and to-one paths,
** and, for an aggregate over a to-many path, its per-record partial (a
** correlated subquery: count, sum, min, max; avg as sum and count).  The
** outer level aggregates those: COUNT(*), SUM(partial), SUM(sum)/SUM(count)
** ...  A distinct aggregate over a to-many path cannot be split per
** record: it is one subquery over the related rows of every record of
** the group (their keys come from the inner level again, matched on the
** group columns; a filter that reads the owner's row joins it, matched
** by the records' own keys); the inner level is then a WITH query,
** written once and read by the outer level and by those subqueries.
** aggregate() of such aggregates only has no FROM: one row, also over an
** empty set.  Grouped joins restricted to the set's rows read those rows
** from a WITH query too (sqlbuild.c quay__scope_keys_with): no copy of
** the set's conditions nests inside another subquery (SQLite's parser
** takes a limited depth).  SQLite and PostgreSQL both flatten the inner
** level into the outer when nothing needs it separate, so the common
** case costs one grouped scan.
*/
#include "quayInt.h"

#include <stdio.h>

typedef struct AggCol {
  Expr *e;                  /* the aggregate node (borrowed) */
  int bToMany;              /* its path crosses a to-many relation */
  int bSetDistinct;         /* distinct over a to-many path */
  int iCol, iCol2;          /* inner columns "a<i>" (AVG: sum, count) */
  Expr *pPart;              /* to-many: the aggregate of its per-record
                            ** partials (e, or a copy without the default,
                            ** which replaces only a NULL total: K13) */
  Expr *pArg;               /* over the row or to-one: its argument column
                            ** (arena; the scope's joins point into its
                            ** path), or NULL for count() */
} AggCol;

typedef struct VPlan {
  Build *b;
  QsView *v;                /* the set's view */
  QsView vIn;               /* the view without the HAVING filters */
  quay_qs **apHaving; int nHaving;
  Ann **apCol; int nCol;    /* values columns */
  Ann **apOut; int nOut;    /* output columns: values, then annotations */
  int bGrouped;             /* annotations with aggregates after values */
  int bAggregate;           /* aggregate(): one row over the set */
  Expr *const *apAggExpr; const char *const *azAggName; int nAggExpr;
  AggCol *aAgg; int nAgg, nAggAlloc;
  int nInner;               /* inner aggregate columns */
  const char *zQ;           /* alias of the inner level */
  int iGroupKey;            /* the owner-key subquery: which agg */
  int iFirst;               /* pluck: this output column comes first, or
                            ** -1 (the others follow in their order) */
  char *zSet;               /* set-distinct aggregates: the WITH name of
                            ** the inner level, else NULL */
  Scope *scIn;              /* the inner level's scope (inner_prepare) */
  char *zInA;               /* its row's alias */
  ENode **apInF;            /* per aggregate: its filter on that row */
} VPlan;

/* The output column written k-th (pluck reads the first column). */
static int out_at(const VPlan *vp, int k) {
  if (vp->iFirst < 0 || k > vp->iFirst) return k;
  return k == 0 ? vp->iFirst : k - 1;
}

static void cat(Build *b, const char *z) { quay__str_cat(&b->sql, z); }

static void fail(VPlan *vp, int code, const char *zMsg, const char *zName) {
  Build *b = vp->b;
  if (b->rc == QUAY_OK) {
    b->rc = quay__err(b->pErr, code, zMsg, zName ? zName : "?");
  }
}

/* {======= Collecting the aggregates */

/* A bound column expression over e's own path (the argument of an
** aggregate over the row itself or to-one relations; a path ending at a
** to-one relation reads the related row's key, NULL when missing), in
** the arena: the joins a scope prepares for it point into its path. */
static Expr *arg_expr(Build *b, const Expr *e) {
  Expr *pOut;
  if (e->path.pField == NULL && e->path.nHop == 0) return NULL;
  pOut = quay__arena_alloc(b->pArena, sizeof(*pOut));
  if (pOut == NULL) return NULL;
  memset(pOut, 0, sizeof(*pOut));
  pOut->eOp = EX_COL;
  pOut->bound = 1;
  pOut->path = e->path;
  if (pOut->path.pField == NULL) {
    pOut->path.pField = quay__hop_ident(&e->path.aHop[e->path.nHop - 1]);
  }
  pOut->eType = pOut->path.pField->eType;
  pOut->nPlaces = pOut->path.pField->nPlaces;
  return pOut;
}

static int agg_find(VPlan *vp, const Expr *e) {
  int i;
  for (i = 0; i < vp->nAgg; i++) {
    if (vp->aAgg[i].e == e) return i;
  }
  return -1;
}

/* Register every aggregate of e (not inside another aggregate). */
static void collect(VPlan *vp, Expr *e, int iDepth) {
  for (; e && iDepth < 256; e = e->pB, iDepth++) {
    switch (e->eOp) {
      case EX_AGG: {
        AggCol *a;
        if (agg_find(vp, e) >= 0) return;
        if (vp->nAgg == vp->nAggAlloc) {
          int nNew = vp->nAggAlloc ? vp->nAggAlloc * 2 : 8;
          AggCol *aNew = quay__arena_alloc(vp->b->pArena,
                                           sizeof(AggCol) * (size_t)nNew);
          if (aNew == NULL) return;
          if (vp->nAgg) memcpy(aNew, vp->aAgg, sizeof(AggCol) * vp->nAgg);
          vp->aAgg = aNew;
          vp->nAggAlloc = nNew;
        }
        a = &vp->aAgg[vp->nAgg++];
        memset(a, 0, sizeof(*a));
        a->e = e;
        a->bToMany = e->path.toMany;
        a->bSetDistinct = a->bToMany && e->bDistinct &&
                          (e->eFunc == QUAY_AGG_COUNT ||
                           e->eFunc == QUAY_AGG_SUM ||
                           e->eFunc == QUAY_AGG_AVG);
        a->iCol = a->iCol2 = -1;
        a->pPart = e;
        if (a->bToMany && e->bDefault) {
          a->pPart = quay__arena_alloc(vp->b->pArena, sizeof(Expr));
          if (a->pPart == NULL) {
            vp->b->rc = quay__oom(vp->b->pErr);
            return;
          }
          *a->pPart = *e;
          a->pPart->bDefault = 0;
        }
        if (!a->bToMany) {
          a->pArg = arg_expr(vp->b, e);
          if (a->pArg == NULL && (e->path.pField || e->path.nHop)) {
            vp->b->rc = quay__oom(vp->b->pErr);
            return;
          }
        }
        if (!a->bSetDistinct) {
          a->iCol = vp->nInner++;
          if (a->bToMany && e->eFunc == QUAY_AGG_AVG) a->iCol2 = vp->nInner++;
        }
        return;
      }
      case EX_REF:
        collect(vp, e->pRef->pExpr, iDepth + 1);
        return;
      case EX_ADD: case EX_SUB: case EX_MUL: case EX_DIV:
        collect(vp, e->pA, iDepth + 1);
        break;                          /* then e->pB */
      default:
        return;
    }
  }
}

/* Aggregates in the leaves of a HAVING condition. */
static void collect_cond(VPlan *vp, Cond *c) {
  int i;
  if (c->eOp == CN_LEAF) {
    if (c->pAnn) collect(vp, c->pAnn->pExpr, 0);
    if (c->pExpr) collect(vp, c->pExpr, 0);
    return;
  }
  for (i = 0; i < c->nChild; i++) collect_cond(vp, c->apChild[i]);
}
/* }======= */


/* {======= The inner level */

/* An ORDER BY of the set's own terms on the inner level (aggregate() of
** a limited set: the limit picks the rows its order says). */
static void emit_row_order(Build *b, Scope *sc, QsView *v,
                           const char *zAlias) {
  int i, n = v->pOrder ? v->pOrder->nOrder : 0;
  cat(b, " ORDER BY ");
  for (i = 0; i < n; i++) {
    Expr *e = v->pOrder->apOrder[i];
    quay__emit_expr_row(b, sc, e);
    quay__emit_order_dir(b, e, e->bDesc);
    cat(b, ", ");
  }
  quay__str_col(&b->sql, zAlias,
                v->pModel->apField[v->pModel->iPk]->zCol);
}

/*
** The inner level's scope with its joins and grouped joins registered (no
** text yet): vp->scIn, zInA, apInF.  Non-0 when the builder failed.
*/
static int inner_prepare(VPlan *vp) {
  Build *b = vp->b;
  char *zA = quay__alias(b);
  Scope *sc;
  ENode **apF;
  int i;
  if (zA == NULL) return 1;
  /* Per-record partials of to-many aggregates come from grouped joins.
  ** The limit of a grouped values set is of its groups, not of these
  ** rows. */
  sc = quay__scope_from_view(b, &vp->vIn, zA,
                             vp->bAggregate ? QUAY_AGGS_GROUPED
                                            : QUAY_AGGS_GROUPED_ALL);
  apF = quay__arena_alloc(b->pArena, sizeof(ENode *) * (size_t)(vp->nAgg + 1));
  if (sc == NULL || apF == NULL) return 1;
  for (i = 0; i < vp->nCol; i++) {
    quay__scope_prepare_expr(b, sc, vp->apCol[i]->pExpr);
  }
  for (i = 0; i < vp->nAgg; i++) {
    AggCol *a = &vp->aAgg[i];
    apF[i] = NULL;
    if (a->bToMany) {
      if (a->bSetDistinct) continue;
      quay__scope_prepare_agg(b, sc, a->pPart, a->e->eFunc == QUAY_AGG_AVG
                                  ? QUAY_AGG_SUM
                                  : a->e->eFunc == QUAY_AGG_EXISTS
                                  ? QUAY_AGG_COUNT : a->e->eFunc);
      if (a->iCol2 >= 0) {
        quay__scope_prepare_agg(b, sc, a->pPart, QUAY_AGG_COUNT);
      }
      continue;
    }
    if (a->pArg) quay__scope_prepare_expr(b, sc, a->pArg);
    if (a->e->pFilter) apF[i] = quay__scope_cond(b, sc, a->e->pFilter);
  }
  if (vp->bAggregate && vp->v->pOrder) {
    for (i = 0; i < vp->v->pOrder->nOrder; i++) {
      quay__scope_prepare_expr(b, sc, vp->v->pOrder->apOrder[i]);
    }
  }
  vp->scIn = sc;
  vp->zInA = zA;
  vp->apInF = apF;
  return 0;
}

/*
** SELECT of the inner level (after inner_prepare): group columns "g<i>",
** aggregate columns "a<j>", the owner keys "f<j>" of set-distinct
** aggregates, the key "k".
*/
static void emit_inner(VPlan *vp) {
  Build *b = vp->b;
  char *zA = vp->zInA;
  Scope *sc = vp->scIn;
  ENode **apF = vp->apInF;
  int i, nTerm = 0, bFirst = 1;
  if (sc == NULL) return;
  cat(b, "SELECT ");
  for (i = 0; i < vp->nCol; i++) {
    if (!bFirst) cat(b, ", ");
    bFirst = 0;
    quay__emit_expr_row(b, sc, vp->apCol[i]->pExpr);
    quay__str_printf(&b->sql, " AS \"g%d\"", i);
  }
  for (i = 0; i < vp->nAgg; i++) {
    AggCol *a = &vp->aAgg[i];
    Expr *e = a->e;
    if (!bFirst) cat(b, ", ");
    bFirst = 0;
    if (a->bSetDistinct) {
      /* The owners' keys this aggregate's path starts from. */
      Field *f = e->path.aHop[0].pFromKey;
      quay__str_col(&b->sql, e->path.isPivot ? quay__scope_pivot(sc) : zA,
                    f->zCol);
      quay__str_printf(&b->sql, " AS \"f%d\"", i);
      continue;
    }
    if (a->bToMany) {
      int eFn = e->eFunc == QUAY_AGG_AVG || e->eFunc == QUAY_AGG_EXISTS
                    ? (e->eFunc == QUAY_AGG_AVG ? QUAY_AGG_SUM : QUAY_AGG_COUNT)
                    : e->eFunc;
      quay__emit_agg_row(b, sc, a->pPart, eFn, NULL, NULL);
      quay__str_printf(&b->sql, " AS \"a%d\"", a->iCol);
      if (a->iCol2 >= 0) {
        cat(b, ", ");
        quay__emit_agg_row(b, sc, a->pPart, QUAY_AGG_COUNT, NULL, NULL);
        quay__str_printf(&b->sql, " AS \"a%d\"", a->iCol2);
      }
      continue;
    }
    /* Over the row itself or a to-one path: the argument per row. */
    if (apF[i]) {
      cat(b, "CASE WHEN ");
      quay__emit_cond(b, apF[i]);
      cat(b, " THEN ");
    }
    if (a->pArg) {
      /* count("author"): the related row's key (NULL when missing). */
      quay__emit_expr_row(b, sc, a->pArg);
    } else if (e->bDistinct) {
      /* count(nil, { distinct = true }): distinct rows, by their key
      ** (Django's Count("pk", distinct=True)). */
      quay__str_col(&b->sql, zA,
                    vp->v->pModel->apField[vp->v->pModel->iPk]->zCol);
    } else {
      cat(b, "1");
    }
    if (apF[i]) cat(b, " END");
    quay__str_printf(&b->sql, " AS \"a%d\"", a->iCol);
  }
  if (!bFirst) cat(b, ", ");
  quay__str_col(&b->sql, zA, vp->v->pModel->apField[vp->v->pModel->iPk]->zCol);
  cat(b, " AS \"k\"");
  quay__scope_emit_from(b, sc);
  quay__scope_agg_joins(b, sc);
  quay__scope_where(b, sc, &nTerm);
  if (vp->bAggregate && (vp->v->limit >= 0 || vp->v->offset >= 0)) {
    emit_row_order(b, sc, vp->v, zA);
    quay__emit_limit(b, vp->v);
  }
}
/* }======= */


/* {======= The outer level */

/* The values column expression e is, or -1. */
static int col_of(VPlan *vp, const Expr *e) {
  int i;
  for (i = 0; i < vp->nCol; i++) {
    const Expr *c = vp->apCol[i]->pExpr;
    if (c == e) return i;
    if (c->eOp == EX_REF && c->pRef->pExpr == e) return i;
    if (c->eOp != e->eOp) continue;
    if ((e->eOp == EX_COL || e->eOp == EX_TRUNC) &&
        c->path.pField == e->path.pField && c->path.nHop == e->path.nHop &&
        c->path.isPivot == e->path.isPivot && c->eUnit == e->eUnit &&
        (e->path.nHop == 0 ||
         memcmp(c->path.apRel, e->path.apRel,
                sizeof(Rel *) * (size_t)e->path.nRel) == 0)) {
      return i;
    }
  }
  return -1;
}

/* Owner keys of a set-distinct aggregate: those of the group's records. */
typedef struct OwnersCtx {
  VPlan *vp;
  int iAgg;
} OwnersCtx;

static void emit_owners(Build *b, void *pCtx) {
  OwnersCtx *o = pCtx;
  VPlan *vp = o->vp;
  char z[32];
  char *zQ2 = quay__alias(b);
  int i;
  if (zQ2 == NULL) return;
  snprintf(z, sizeof(z), "f%d", o->iAgg);
  if (quay__agg_owner_rows(vp->aAgg[o->iAgg].e)) strcpy(z, "k");
  cat(b, "SELECT ");
  quay__str_col(&b->sql, zQ2, z);
  /* The set's records again: the inner level, by its WITH name (written
  ** once; a copy here would nest the set's conditions inside this
  ** aggregate, deeper than SQLite's parser takes). */
  cat(b, " FROM ");
  quay__str_ident(&b->sql, vp->zSet);
  cat(b, " AS ");
  quay__str_ident(&b->sql, zQ2);
  for (i = 0; i < vp->nCol; i++) {
    char zG[32];
    snprintf(zG, sizeof(zG), "g%d", i);
    cat(b, i ? " AND " : " WHERE ");
    quay__str_col(&b->sql, zQ2, zG);
    quay__str_printf(&b->sql, " %s ", b->pDia->zNullSafeEq);
    quay__str_col(&b->sql, vp->zQ, zG);
  }
}

static void emit_outer_expr(Build *b, void *pCtx, Expr *e);

/* q."<prefix><i>" */
static void qcol(VPlan *vp, const char *zPrefix, int i) {
  char z[32];
  snprintf(z, sizeof(z), "%s%d", zPrefix, i);
  quay__str_col(&vp->b->sql, vp->zQ, z);
}

/* Aggregate eFn of e over zPre and the inner column a<i>. */
static void qagg(VPlan *vp, const Expr *e, int eFn, int bDistinct,
                 const char *zPre, int i) {
  Build *b = vp->b;
  Str save = b->sql;
  char *zArg;
  quay__str_init(&b->sql);
  quay__str_cat(&b->sql, zPre);
  qcol(vp, "a", i);
  zArg = b->sql.oom ? NULL
                    : quay__arena_strdup(b->pArena, b->sql.z, b->sql.n);
  quay__str_free(&b->sql);
  b->sql = save;
  quay__emit_agg_call(b, e, eFn, bDistinct, zArg);
}

/* An aggregate on the outer level, from the inner columns. */
static void emit_outer_agg(VPlan *vp, int iAgg) {
  Build *b = vp->b;
  AggCol *a = &vp->aAgg[iAgg];
  Expr *e = a->e;
  int bDefault = e->bDefault && e->eFunc != QUAY_AGG_COUNT &&
                 e->eFunc != QUAY_AGG_EXISTS;
  if (bDefault) cat(b, "COALESCE(");
  if (a->bSetDistinct) {
    OwnersCtx o;
    o.vp = vp;
    o.iAgg = iAgg;
    quay__emit_agg_row(b, NULL, e, e->eFunc, emit_owners, &o);
  } else if (a->bToMany) {
    switch (e->eFunc) {
      case QUAY_AGG_COUNT:
        /* a sum of counts: an integer on every backend (azIntSum) */
        if (b->pDia->azIntSum[0]) cat(b, b->pDia->azIntSum[0]);
        cat(b, "COALESCE(SUM(");
        qcol(vp, "a", a->iCol);
        cat(b, "), 0)");
        if (b->pDia->azIntSum[0]) cat(b, b->pDia->azIntSum[1]);
        break;
      case QUAY_AGG_EXISTS:
        cat(b, "(COALESCE(SUM(");
        qcol(vp, "a", a->iCol);
        cat(b, "), 0) > 0)");
        break;
      case QUAY_AGG_AVG:
        cat(b, "(1.0 * SUM(");
        qcol(vp, "a", a->iCol);
        cat(b, ") / NULLIF(SUM(");
        qcol(vp, "a", a->iCol2);
        cat(b, "), 0)");
        quay__emit_avg_unscale(b, e);
        cat(b, ")");
        break;
      default:                          /* sum, min, max of partials */
        qagg(vp, e, e->eFunc, 0, "", a->iCol);
        break;
    }
  } else if (e->eFunc == QUAY_AGG_EXISTS) {
    cat(b, "(COUNT(");
    qcol(vp, "a", a->iCol);
    cat(b, ") > 0)");
  } else {
    qagg(vp, e, e->eFunc, e->bDistinct,
         e->eFunc == QUAY_AGG_AVG ? "1.0 * " : "", a->iCol);
    if (e->eFunc == QUAY_AGG_AVG) quay__emit_avg_unscale(b, e);
  }
  if (bDefault) {
    cat(b, ", ");
    quay__build_param(b, &e->dflt);
    cat(b, ")");
  }
}

static void emit_outer_expr(Build *b, void *pCtx, Expr *e) {
  VPlan *vp = pCtx;
  int i = col_of(vp, e);
  if (i >= 0) {
    qcol(vp, "g", i);
    return;
  }
  switch (e->eOp) {
    case EX_VALUE:
      quay__build_param(b, &e->val);
      return;
    case EX_REF:
      emit_outer_expr(b, pCtx, e->pRef->pExpr);
      return;
    case EX_AGG:
      i = agg_find(vp, e);
      if (i < 0) {
        fail(vp, QUAY_EMISUSE, "internal: aggregate %s not collected",
             e->zPath);
        return;
      }
      emit_outer_agg(vp, i);
      return;
    case EX_COL:
    case EX_TRUNC:
      fail(vp, QUAY_EBAD_LOOKUP, "'%s' is neither one of the values() "
           "columns nor inside an aggregate", e->zPath);
      return;
    default:
      quay__emit_arith(b, e, emit_outer_expr, pCtx);
      return;
  }
}

/* A HAVING condition: leaves name annotations or values columns. */
static void emit_having(VPlan *vp, Cond *c, int iDepth) {
  Build *b = vp->b;
  int i;
  if (iDepth > QUAY_MAX_COND_DEPTH * 4) {
    fail(vp, QUAY_EMISUSE, "conditions nested too deep%s", "");
    return;
  }
  switch (c->eOp) {
    case CN_LEAF: {
      Operand o;
      memset(&o, 0, sizeof(o));
      quay__operand_leaf(&o, c);
      o.xExpr = emit_outer_expr;
      o.pCtx = vp;
      if (c->pAnn) {
        o.pExpr = c->pAnn->pExpr;
      } else {
        /* A path: it must be one of the values columns. */
        int k;
        for (k = 0; k < vp->nCol; k++) {
          const Expr *x = vp->apCol[k]->pExpr;
          if (x->eOp == EX_COL && c->nHop == x->path.nHop &&
              c->pField == x->path.pField) {
            break;
          }
        }
        if (k == vp->nCol || c->bRelTest) {
          fail(vp, QUAY_EBAD_LOOKUP, "the condition '%s' filters groups "
               "with an aggregate; its other names must be values() "
               "columns", c->zPath);
          return;
        }
        o.pExpr = vp->apCol[k]->pExpr;
      }
      quay__emit_compare(b, c, &o, emit_outer_expr, vp);
      return;
    }
    case CN_HAS:
      fail(vp, QUAY_EBAD_LOOKUP, "where_has cannot filter groups; put it "
           "before annotate%s", "");
      return;
    case CN_NOT:
      cat(b, "NOT COALESCE(");
      for (i = 0; i < c->nChild; i++) {
        if (i) cat(b, " AND ");
        emit_having(vp, c->apChild[i], iDepth + 1);
      }
      quay__str_printf(&b->sql, ", %s)", b->pDia->zFalse);
      return;
    default:
      if (c->nChild == 0) {
        cat(b, c->eOp == CN_OR ? b->pDia->zFalse : b->pDia->zTrue);
        return;
      }
      cat(b, "(");
      for (i = 0; i < c->nChild; i++) {
        if (i) cat(b, c->eOp == CN_OR ? " OR " : " AND ");
        emit_having(vp, c->apChild[i], iDepth + 1);
      }
      cat(b, ")");
      return;
  }
}
/* }======= */


/* {======= Plans */

/* Non-0 when e holds an aggregate of the groups of a values set: an
** aggregate written in place, or one of the annotations after values().
** An annotation before values() is per record (Django's annotate then
** values): a filter on it stays a filter of the rows. */
static int expr_group_agg(const QsView *v, const Expr *e, int iDepth) {
  int i;
  for (; e && iDepth < 256; e = e->pB, iDepth++) {
    switch (e->eOp) {
      case EX_AGG:
        return 1;
      case EX_REF:
        for (i = v->iFirstGroupAnn; i < v->nAnn; i++) {
          if (v->apAnn[i] == e->pRef) return e->pRef->pExpr->bAgg;
        }
        return 0;
      case EX_ADD: case EX_SUB: case EX_MUL: case EX_DIV:
        if (expr_group_agg(v, e->pA, iDepth + 1)) return 1;
        break;                          /* then e->pB */
      default:
        return 0;
    }
  }
  return 0;
}

static int cond_group_agg(const QsView *v, const Cond *c, int iDepth) {
  int i;
  if (c == NULL || iDepth > QUAY_MAX_COND_DEPTH * 4) return 0;
  if (c->eOp == CN_LEAF) {
    if (c->pAnn) {
      for (i = v->iFirstGroupAnn; i < v->nAnn; i++) {
        if (v->apAnn[i] == c->pAnn && c->pAnn->pExpr->bAgg) return 1;
      }
    }
    return c->pExpr && c->pExpr->bAgg &&
           expr_group_agg(v, c->pExpr, 0);
  }
  for (i = 0; i < c->nChild; i++) {
    if (cond_group_agg(v, c->apChild[i], iDepth + 1)) return 1;
  }
  return 0;
}

/* Split the view: filters with aggregates go to HAVING (grouped). */
static int vplan_init(VPlan *vp, Build *b, QsView *v, int bAggregate) {
  int i, nAfter;
  memset(vp, 0, sizeof(*vp));
  vp->iFirst = -1;
  vp->b = b;
  vp->v = v;
  vp->bAggregate = bAggregate;
  vp->vIn = *v;
  vp->apHaving = quay__arena_alloc(b->pArena,
                                   sizeof(quay_qs *) * (size_t)(v->nFilter + 1));
  vp->vIn.apFilter = quay__arena_alloc(b->pArena, sizeof(quay_qs *) *
                                                      (size_t)(v->nFilter + 1));
  if (vp->apHaving == NULL || vp->vIn.apFilter == NULL) return QUAY_ENOMEM;
  vp->vIn.nFilter = 0;
  for (i = 0; i < v->nFilter; i++) {
    /* aggregate() keeps a filter on an annotation's aggregate on the
    ** inner level: it picks the records aggregated (K8).  A values set's
    ** filter is a group filter when it reads a group's aggregate. */
    if (!bAggregate && cond_group_agg(v, v->apFilter[i]->pCond, 0)) {
      vp->apHaving[vp->nHaving++] = v->apFilter[i];
    } else {
      vp->vIn.apFilter[vp->vIn.nFilter++] = v->apFilter[i];
    }
  }
  if (v->pValues && !bAggregate) {
    vp->nCol = v->pValues->nAnn;
    nAfter = v->nAnn - v->iFirstGroupAnn;
    vp->apCol = quay__arena_alloc(b->pArena, sizeof(Ann *) *
                                                 (size_t)(vp->nCol + 1));
    vp->apOut = quay__arena_alloc(b->pArena, sizeof(Ann *) *
                                                 (size_t)(vp->nCol + nAfter + 1));
    if (vp->apCol == NULL || vp->apOut == NULL) return QUAY_ENOMEM;
    for (i = 0; i < vp->nCol; i++) {
      vp->apCol[i] = &v->pValues->aAnn[i];
      vp->apOut[vp->nOut++] = vp->apCol[i];
    }
    for (i = v->iFirstGroupAnn; i < v->nAnn; i++) {
      vp->apOut[vp->nOut++] = v->apAnn[i];
      if (v->apAnn[i]->pExpr->bAgg) vp->bGrouped = 1;
    }
  }
  return QUAY_OK;
}

/* Plain rows: one SELECT of the output columns. */
static void emit_plain(VPlan *vp, int *aHint, Ann **apName) {
  Build *b = vp->b;
  QsView *v = vp->v;
  char *zA = quay__alias(b);
  Scope *sc;
  int i, nTerm = 0, nOrder = v->pOrder ? v->pOrder->nOrder : 0;
  if (zA == NULL) return;
  sc = quay__scope_from_view(b, v, zA, QUAY_AGGS_GROUPED);
  if (sc == NULL) return;
  for (i = 0; i < vp->nOut; i++) {
    quay__scope_prepare_expr(b, sc, vp->apOut[i]->pExpr);
  }
  for (i = 0; i < nOrder; i++) {
    quay__scope_prepare_expr(b, sc, v->pOrder->apOrder[i]);
  }
  {
    /* the set's rows once for the grouped joins' keys (emit_grouped) */
    char *zKeys = quay__with_name(b);
    if (zKeys == NULL) return;
    if (quay__scope_keys_with(b, sc, zKeys, "WITH ")) cat(b, " ");
  }
  cat(b, v->distinct ? "SELECT DISTINCT " : "SELECT ");
  for (i = 0; i < vp->nOut; i++) {
    Ann *pOut = vp->apOut[out_at(vp, i)];
    if (i) cat(b, ", ");
    quay__emit_expr_row(b, sc, pOut->pExpr);
    cat(b, " AS ");
    quay__str_ident(&b->sql, pOut->zName);
    aHint[i] = quay__expr_hint(pOut->pExpr);
    apName[i] = pOut;
  }
  quay__scope_emit_from(b, sc);
  quay__scope_agg_joins(b, sc);
  quay__scope_where(b, sc, &nTerm);
  if (nOrder || !v->distinct) cat(b, " ORDER BY ");
  for (i = 0; i < nOrder; i++) {
    Expr *e = v->pOrder->apOrder[i];
    if (v->distinct) {
      /* DISTINCT orders by its own columns only (PostgreSQL's rule). */
      int k;
      for (k = 0; k < vp->nOut; k++) {
        if (vp->apOut[k]->pExpr == e ||
            (e->eOp == EX_REF && e->pRef == vp->apOut[k]) ||
            (e->eOp == EX_COL && vp->apOut[k]->pExpr->eOp == EX_COL &&
             strcmp(e->zPath, vp->apOut[k]->pExpr->zPath) == 0)) {
          break;
        }
      }
      if (k == vp->nOut) {
        fail(vp, QUAY_EBAD_LOOKUP, "order_by '%s' of a distinct values set "
             "must be one of its columns", e->zPath);
        return;
      }
      quay__str_ident(&b->sql, vp->apOut[k]->zName);
    } else {
      quay__emit_expr_row(b, sc, e);
    }
    quay__emit_order_dir(b, e, e->bDesc);
    if (i + 1 < nOrder || !v->distinct) cat(b, ", ");
  }
  if (!v->distinct) {
    quay__str_col(&b->sql, zA, v->pModel->apField[v->pModel->iPk]->zCol);
  }
  quay__emit_limit(b, v);
}

/* Whether a table of the schema (a model's or a join table) is named z. */
static int table_named(quay_db *pDb, const char *z) {
  int i;
  for (i = 0; i < pDb->nModel; i++) {
    if (quay__casecmp(pDb->apModel[i]->zTable, z) == 0) return 1;
  }
  for (i = 0; i < pDb->nJoin; i++) {
    if (quay__casecmp(pDb->apJoin[i]->zTable, z) == 0) return 1;
  }
  return 0;
}

/*
** A fresh name for a WITH query: "q_t<n>", with underscores added while
** a table of the schema has that name (a WITH name hides a table of the
** same name in the whole statement, and the statement reads only tables
** of the schema).  NULL when out of memory.
*/
char *quay__with_name(Build *b) {
  char z[80];               /* table names have at most 63 bytes */
  const char *zA = quay__alias(b);
  size_t n;
  if (zA == NULL) return NULL;
  snprintf(z, sizeof(z), "q_%s", zA);
  n = strlen(z);
  while (table_named(b->pDb, z) && n + 1 < sizeof(z)) {
    z[n++] = '_';
    z[n] = 0;
  }
  return quay__arena_strdup(b->pArena, z, n);
}

/* Grouped rows or aggregate(): the two levels. */
static void emit_grouped(VPlan *vp, int *aHint, Ann **apName,
                         const char *const *azAgg) {
  Build *b = vp->b;
  QsView *v = vp->v;
  int i, nOrder = v->pOrder ? v->pOrder->nOrder : 0, nOut = 0;
  /* Every aggregate the outer level writes, with its inner columns. */
  if (vp->bAggregate) {
    for (i = 0; i < vp->nAggExpr; i++) collect(vp, vp->apAggExpr[i], 0);
  } else {
    for (i = 0; i < vp->nOut; i++) collect(vp, vp->apOut[i]->pExpr, 0);
    for (i = 0; i < vp->nHaving; i++) {
      collect_cond(vp, vp->apHaving[i]->pCond);
    }
    for (i = 0; i < nOrder; i++) collect(vp, v->pOrder->apOrder[i], 0);
  }
  if (quay__build_rc(b)) return;
  vp->zQ = quay__alias(b);
  if (vp->zQ == NULL) return;
  for (i = 0; i < vp->nAgg && vp->zSet == NULL; i++) {
    if (vp->aAgg[i].bSetDistinct) {
      vp->zSet = quay__with_name(b);
      if (vp->zSet == NULL) return;
    }
  }
  if (inner_prepare(vp)) return;
  {
    /* The set's rows once for the grouped joins' keys, and the inner
    ** level once for the set-distinct aggregates: WITH queries, so that
    ** no copy of the set's conditions nests inside another subquery. */
    char *zKeys = quay__with_name(b);
    int bWith;
    if (zKeys == NULL) return;
    bWith = quay__scope_keys_with(b, vp->scIn, zKeys, "WITH ");
    if (vp->zSet) {
      cat(b, bWith ? ", " : "WITH ");
      quay__str_ident(&b->sql, vp->zSet);
      cat(b, " AS (");
      emit_inner(vp);
      cat(b, ")");
    }
    if (bWith || vp->zSet) cat(b, " ");
  }
  cat(b, "SELECT ");
  if (vp->bAggregate) {
    for (i = 0; i < vp->nAggExpr; i++) {
      if (i) cat(b, ", ");
      emit_outer_expr(b, vp, vp->apAggExpr[i]);
      cat(b, " AS ");
      quay__str_ident(&b->sql, azAgg[i]);
      aHint[nOut] = quay__expr_hint(vp->apAggExpr[i]);
      apName[nOut++] = NULL;
    }
  } else {
    for (i = 0; i < vp->nOut; i++) {
      int k = out_at(vp, i);
      if (i) cat(b, ", ");
      if (k < vp->nCol) {
        qcol(vp, "g", k);
      } else {
        emit_outer_expr(b, vp, vp->apOut[k]->pExpr);
      }
      cat(b, " AS ");
      quay__str_ident(&b->sql, vp->apOut[k]->zName);
      aHint[nOut] = quay__expr_hint(vp->apOut[k]->pExpr);
      apName[nOut++] = vp->apOut[k];
    }
  }
  if (vp->bAggregate) {
    /* Only distinct aggregates over to-many paths, each a subquery over
    ** the set's owners (the WITH query): no FROM, so that an empty set
    ** still gives its one row (a count of 0, K16) and a set of many rows
    ** only one. */
    for (i = 0; i < vp->nAgg && vp->aAgg[i].bSetDistinct; i++) {}
    if (i == vp->nAgg) return;
  }
  if (vp->zSet) {
    cat(b, " FROM ");
    quay__str_ident(&b->sql, vp->zSet);
    cat(b, " AS ");
  } else {
    cat(b, " FROM (");
    emit_inner(vp);
    cat(b, ") AS ");
  }
  quay__str_ident(&b->sql, vp->zQ);
  if (vp->bAggregate) return;
  for (i = 0; i < vp->nCol; i++) {
    cat(b, i ? ", " : " GROUP BY ");
    qcol(vp, "g", i);
  }
  for (i = 0; i < vp->nHaving; i++) {
    cat(b, i ? " AND " : " HAVING ");
    /* exclude keeps the groups its condition is not true of (NULL too),
    ** as an exclude of rows does. */
    if (vp->apHaving[i]->bExclude) cat(b, "NOT COALESCE(");
    emit_having(vp, vp->apHaving[i]->pCond, 0);
    if (vp->apHaving[i]->bExclude) {
      quay__str_printf(&b->sql, ", %s)", b->pDia->zFalse);
    }
  }
  cat(b, " ORDER BY ");
  for (i = 0; i < nOrder; i++) {
    Expr *e = v->pOrder->apOrder[i];
    emit_outer_expr(b, vp, e);
    quay__emit_order_dir(b, e, e->bDesc);
    cat(b, ", ");
  }
  /* Groups in the order of their columns, for a stable answer. */
  for (i = 0; i < vp->nCol; i++) {
    if (i) cat(b, ", ");
    qcol(vp, "g", i);
    if (!quay__expr_notnull(vp->apCol[i]->pExpr)) cat(b, b->pDia->zAscNulls);
  }
  if (vp->nCol == 0) cat(b, "1");
  quay__emit_limit(b, v);
}

/*
** Build the statement of a values set (quay_plan's step 0) or of an
** aggregate (apAggExpr, n of them named azAgg): text, parameters and a
** hint per output column.
*/
static int values_sql(Build *b, QsView *v, Expr *const *apAggExpr,
                      const char *const *azAgg, int nAgg, const char *zFirst,
                      int **paHint, int *pnCol) {
  VPlan vp;
  int rc, nMax, i;
  Ann **apName;
  rc = vplan_init(&vp, b, v, apAggExpr != NULL);
  if (rc) return quay__oom(b->pErr);
  for (i = 0; zFirst && i < vp.nOut; i++) {
    if (strcmp(vp.apOut[i]->zName, zFirst) == 0) vp.iFirst = i;
  }
  if (zFirst && vp.iFirst < 0) {
    return quay__err(b->pErr, QUAY_EBAD_LOOKUP, "pluck '%s' of a grouped "
                     "or distinct values set: pluck one of its values() "
                     "columns or annotations", zFirst);
  }
  vp.apAggExpr = apAggExpr;
  vp.azAggName = azAgg;
  vp.nAggExpr = nAgg;
  nMax = (apAggExpr ? nAgg : vp.nOut) + 1;
  *paHint = quay__arena_alloc(b->pArena, sizeof(int) * (size_t)nMax);
  apName = quay__arena_alloc(b->pArena, sizeof(Ann *) * (size_t)nMax);
  if (*paHint == NULL || apName == NULL) return quay__oom(b->pErr);
  if (!apAggExpr && vp.nHaving > 0 && !vp.bGrouped) {
    return quay__err(b->pErr, QUAY_EBAD_LOOKUP, "a filter on an aggregate "
                     "needs values(...) before annotate (groups) or "
                     "annotate without values (per record)");
  }
  if (apAggExpr || vp.bGrouped) {
    emit_grouped(&vp, *paHint, apName, azAgg);
  } else {
    emit_plain(&vp, *paHint, apName);
  }
  *pnCol = apAggExpr ? nAgg : vp.nOut;
  return quay__build_rc(b);
}

int quay__values_sql(Build *b, QsView *v, Expr *const *apAggExpr,
                     const char *const *azAgg, int nAgg, int **paHint,
                     int *pnCol) {
  return values_sql(b, v, apAggExpr, azAgg, nAgg, NULL, paHint, pnCol);
}
/* }======= */


/*
** {==================================================================
** Running value rows
** ===================================================================
*/
/* Run a statement of value rows of pQs (on the primary when the set
** says, else on any server). */
static int values_read(quay_qs *pQs, quay_db *pDb, Build *b,
                       const int *aHint, int nCol, quay_cursor **ppCur,
                       quay_err *pErr) {
  int iSrv = quay_qs_is_primary(pQs) ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
  return quay__db_read(pDb, &iSrv, b->sql.z, b->params.a, b->params.n,
                       aHint, nCol, 0, ppCur, pErr);
}

int quay_qs_rows(quay_qs *pQs, quay_db *pDb, int bStream, quay_cursor **ppCur,
                 quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || ppCur == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_rows: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : "ppCur");
  }
  quay_plan *p;
  int rc;
  *ppCur = NULL;
  rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc) return rc;
  rc = quay_plan_new(pQs, &p, pErr);
  if (rc) return rc;
  if (!p->bValues) {
    quay_plan_free(p);
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_rows: the %s query set "
                     "has no values(); it yields records",
                     pQs->pModel->zName);
  }
  {
    int iSrv = quay_qs_is_primary(pQs) ? QUAY_SRV_PRIMARY : QUAY_SRV_ANY;
    rc = quay__db_read(pDb, &iSrv, p->aStep[0].zSql, p->aStep[0].aParam,
                       p->aStep[0].nParam, p->aStep[0].aHint,
                       p->aStep[0].nCol, bStream, ppCur, pErr);
  }
  /* The driver copied the text and the parameters. */
  quay_plan_free(p);
  return rc;
}

int quay__values_pluck(quay_qs *pQs, quay_db *pDb, const char *zPath,
                       int *pbDone, quay_cursor **ppCur, quay_err *pErr) {
  Arena a;
  Build b;
  QsView v;
  int rc, i, bCollapse, *aHint = NULL, nCol = 0;
  *pbDone = 0;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  rc = quay__qs_view(pQs, &v, &a, pErr);
  bCollapse = rc == QUAY_OK && v.pValues && v.distinct;
  for (i = v.iFirstGroupAnn; rc == QUAY_OK && v.pValues && i < v.nAnn; i++) {
    if (v.apAnn[i]->pExpr->bAgg) bCollapse = 1;
  }
  if (bCollapse) {
    *pbDone = 1;
    rc = values_sql(&b, &v, NULL, NULL, 0, zPath, &aHint, &nCol);
  }
  if (rc == QUAY_OK && bCollapse) {
    rc = values_read(pQs, pDb, &b, aHint, nCol, ppCur, pErr);
  }
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

int quay_qs_aggregate(quay_qs *pQs, quay_db *pDb, const char *const *azName,
                      quay_expr *const *apExpr, int n, quay_cursor **ppCur,
                      quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || (azName == NULL && n > 0) || (apExpr ==
      NULL && n > 0) || ppCur == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_aggregate: %s is NULL", pQs
        == NULL ? "pQs" : pDb == NULL ? "pDb" : (azName == NULL && n > 0) ?
            "azName" : (apExpr == NULL && n > 0) ? "apExpr" : "ppCur");
  }
  Arena a;
  Build b;
  QsView v;
  int rc = QUAY_OK, i, *aHint = NULL, nCol = 0;
  *ppCur = NULL;
  if (n <= 0) {
    return quay__err(pErr, QUAY_EMISUSE, "aggregate needs at least one "
                     "aggregate: aggregate { n = quay.count() }");
  }
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    Expr *e = (Expr *)apExpr[i];
    rc = quay__expr_bind(e, pQs, 1, pErr);
    if (rc == QUAY_OK && !e->bAgg) {
      rc = quay__err(pErr, QUAY_EBAD_LOOKUP, "aggregate: '%s' is not an "
                     "aggregate (quay.count, quay.sum, ...)", azName[i]);
    }
  }
  if (rc == QUAY_OK) rc = quay__qs_lock_check(pQs, pDb, pErr);
  if (rc == QUAY_OK && quay__qs_lock(pQs) >= 0) {
    /* PostgreSQL locks no row an aggregate reads: never drop the lock */
    rc = quay__err(pErr, QUAY_EMISUSE, "aggregate of a select_for_update "
                   "set of %s: an aggregate locks no row; lock the rows "
                   "first (:all() or :count() of the locked set), then "
                   "aggregate the set without select_for_update",
                   pQs->pModel->zName);
  }
  if (rc) return rc;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  rc = quay__qs_view(pQs, &v, &a, pErr);
  if (rc == QUAY_OK && v.pValues) {
    rc = quay__err(pErr, QUAY_EMISUSE, "aggregate over a values() set: "
                   "aggregate the set before values()");
  }
  if (rc == QUAY_OK) {
    rc = quay__values_sql(&b, &v, (Expr *const *)apExpr, azName, n, &aHint,
                          &nCol);
  }
  if (rc == QUAY_OK) {
    rc = values_read(pQs, pDb, &b, aHint, nCol, ppCur, pErr);
  }
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Model:raw
** ===================================================================
*/
int quay_model_raw(quay_model *m, quay_db *pDb, const char *zSql,
                   const quay_value *aParam, int nParam, quay_cursor **ppCur,
                   quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || pDb == NULL || zSql == NULL || (aParam == NULL && nParam >
      0) || ppCur == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_raw: %s is NULL", m ==
        NULL ? "pModel" : pDb == NULL ? "pDb" : zSql == NULL ? "zSql" :
            (aParam == NULL && nParam > 0) ? "aParam" : "ppCur");
  }
  if (nParam < 0) {
    *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_model_raw: nParam is %d, not a count", nParam);
  }
  if (quay__values_check(pErr, "quay_model_raw", aParam, (size_t)nParam)) {
    *ppCur = NULL;
    return QUAY_EMISUSE;
  }
  quay_cursor *c;
  int rc;
  *ppCur = NULL;
  rc = quay__resolve(m->pDb, pErr);
  if (rc == QUAY_OK) rc = quay_db_query(pDb, zSql, aParam, nParam, &c, pErr);
  if (rc) return rc;
  c->pRaw = m;
  rc = quay__raw_map(c, pErr);
  if (rc == QUAY_OK && c->aField[c->nCol] == 0) {
    rc = quay__err(pErr, QUAY_EMISUSE, "%s:raw: the SELECT must return "
                   "the primary key %s (records save as updates of their "
                   "row)", m->zName, m->apField[m->iPk]->zName);
  }
  if (rc) {
    quay_cursor_close(c);
    return rc;
  }
  *ppCur = c;
  return QUAY_OK;
}

/* aField[nCol] is set to 1 when the primary key is among the columns. */
int quay__raw_map(quay_cursor *c, quay_err *pErr) {
  quay_model *m = c->pRaw;
  int i, bPk = 0;
  quay__free(c->aField);
  c->aField = quay__calloc(sizeof(int) * (size_t)(c->nCol + 1));
  if (c->aField == NULL) return quay__oom(pErr);
  for (i = 0; i < c->nCol; i++) {
    const char *z = quay_cursor_colname(c, i);
    int k = quay__smap_get(&m->mFieldName, z);
    if (k < 0) k = quay__smap_get(&m->mColName, z);
    c->aField[i] = k;
    c->aHint[i] = 0;
    if (k < 0 && quay__model_rel(m, z)) {
      return quay__err(pErr, QUAY_EMISUSE, "%s:raw: the column %s names "
                       "the relation %s.%s, not a field: select its key "
                       "column or alias the column", m->zName, z, m->zName,
                       z);
    }
    if (k >= 0) {
      /* Read as the field's type (booleans, datetimes, ...). */
      c->aHint[i] = quay__field_hint(m->apField[k]);
      bPk |= k == m->iPk;
    }
  }
  c->aField[c->nCol] = bPk;
  return QUAY_OK;
}

int quay_cursor_field(const quay_cursor *c, int iCol) {
  /* NULL arguments (quay.h "Conventions"). */
  if (c == NULL) {
    return 0;
  }
  if (c->aField == NULL || iCol < 0 || iCol >= c->nCol) return -1;
  return c->aField[iCol];
}
/* }================================================================== */
