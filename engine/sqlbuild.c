/*
** engine/sqlbuild.c
** The SQL builder: conditions, scopes, joins, ordering and DDL, in a
** dialect-neutral way.
** See LICENSE
**
** Conditions compile to semi-joins, never to joins, so a condition that
** crosses a to-many relation can never duplicate owner rows:
**
**     t0.id IN (SELECT t1.post_id FROM post_tags t1
**               JOIN tags t2 ON t2.id = t1.tag_id WHERE t2.name = ?)
**
** This is the form SQLite 3.40 runs fast (a correlated EXISTS was ~25x
** slower on the benchmark's W3 query, shared/MEASURED.md) and PostgreSQL
** plans as a semi-join.  Leaves of one AND group that start with the same
** hop share one subquery, recursively, so all conditions of one table on
** one to-many path hold for the same related row; separate filter() calls
** get separate subqueries and may match different rows.  Negations are
** written `NOT COALESCE((c), FALSE)` so a row whose condition is NULL is
** kept by exclude (Django's semantics) and NULLs inside subqueries cannot
** turn NOT IN into "nothing".
**
** Identifiers are always quoted through quay__str_ident and come from the
** schema only; every value is a bound parameter.  Dialect differences go
** through the Dialect vtable.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

/*
** {==================================================================
** Parameters and builder state
** ===================================================================
*/
void quay__params_init(Params *p, Arena *pArena) {
  memset(p, 0, sizeof(*p));
  p->pArena = pArena;
}

void quay__params_free(Params *p) {
  quay__free(p->a);
  p->a = NULL;
  p->n = p->nAlloc = 0;
}

int quay__params_add(Params *p, const quay_value *v) {
  if (p->n == p->nAlloc) {
    int nNew = p->nAlloc ? p->nAlloc * 2 : 16;
    quay_value *a = quay__realloc(p->a, sizeof(*a) * (size_t)nNew);
    if (a == NULL) {
      p->oom = 1;
      return p->n + 1;
    }
    p->a = a;
    p->nAlloc = nNew;
  }
  p->a[p->n++] = *v;
  return p->n;
}

void quay__build_init(Build *b, quay_db *pDb, Arena *pArena, quay_err *pErr) {
  memset(b, 0, sizeof(*b));
  b->pDb = pDb;
  b->pDia = pDb->pDialect;
  quay__str_init(&b->sql);
  quay__params_init(&b->params, pArena);
  b->pArena = pArena;
  b->pErr = pErr;
}

void quay__build_free(Build *b) {
  quay__str_free(&b->sql);
  quay__params_free(&b->params);
}

void quay__build_param(Build *b, const quay_value *v) {
  int i = quay__params_add(&b->params, v);
  b->pDia->xParam(&b->sql, i);
}

/* The builder's state: QUAY_OK, or the first error / OOM. */
int quay__build_rc(Build *b) {
  if (b->rc) return b->rc;
  if (b->sql.oom || b->params.oom || b->pArena->oom) {
    b->rc = quay__oom(b->pErr);
  }
  return b->rc;
}

char *quay__alias(Build *b) {
  char z[24];
  int n = snprintf(z, sizeof(z), "t%d", b->nAlias++);
  return quay__arena_strdup(b->pArena, z, (size_t)n);
}

/* "alias"."column" as an arena string. */
static char *col_expr(Build *b, const char *zAlias, const char *zCol) {
  Str s;
  char *z;
  quay__str_init(&s);
  quay__str_col(&s, zAlias, zCol);
  if (s.oom) {
    quay__str_free(&s);
    b->pArena->oom = 1;
    return NULL;
  }
  z = quay__arena_strdup(b->pArena, s.z, s.n);
  quay__str_free(&s);
  return z ? z : "";
}

static void cat(Build *b, const char *z) { quay__str_cat(&b->sql, z); }
static void ident(Build *b, const char *z) { quay__str_ident(&b->sql, z); }
static void col(Build *b, const char *zA, const char *zC) {
  quay__str_col(&b->sql, zA, zC);
}
/* }================================================================== */


/*
** {==================================================================
** Final comparisons
** ===================================================================
*/
/*
** "expr IN <the dialect's array form>" with the n values bound as one
** array parameter (json_each on SQLite, = ANY($n::type[]) on PostgreSQL).
** Running out of memory marks the builder; the statement is then not run.
*/
void quay__build_array(Build *b, const char *zExpr, const quay_value *a,
                       int n, int eType) {
  Str arr;
  quay_value v;
  quay__str_init(&arr);
  b->pDia->xArrayValue(&arr, a, n);
  if (arr.oom) {
    b->pArena->oom = 1;
    quay__str_free(&arr);
    return;
  }
  v.type = QUAY_TEXT;
  v.n = arr.n;
  v.u.z = quay__arena_strdup(b->pArena, arr.z ? arr.z : "", arr.n);
  quay__str_free(&arr);
  if (v.u.z == NULL) return;
  b->pDia->xInArray(&b->sql, zExpr, quay__params_add(&b->params, &v), eType);
}

/* Bind a list "expr IN (...)": inline when short, one array otherwise. */
static void in_list(Build *b, const char *zExpr, const quay_value *a, int n,
                    int eType) {
  int i, k;
  if (n <= b->pDia->maxInline) {
    quay__str_printf(&b->sql, "%s IN (", zExpr);
    for (i = k = 0; i < n; i++) {
      if (a[i].type == QUAY_NULL) continue;
      if (k++) cat(b, ", ");
      quay__build_param(b, &a[i]);
    }
    cat(b, ")");
  } else {
    quay_value *aNN = quay__arena_alloc(b->pArena, sizeof(quay_value) *
                                                       (size_t)n);
    if (aNN == NULL) return;
    for (i = k = 0; i < n; i++) {
      if (a[i].type != QUAY_NULL) aNN[k++] = a[i];
    }
    quay__build_array(b, zExpr, aNN, k, eType);
  }
}

/* Count non-NULL entries of a list. */
static int count_nonnull(const quay_value *a, int n) {
  int i, k = 0;
  for (i = 0; i < n; i++) k += a[i].type != QUAY_NULL;
  return k;
}

/*
** Emit the comparison of leaf c against the expression zExpr (the leaf's
** field, or a column holding the same key).
*/
static void emit_final(Build *b, Cond *c, const char *zExpr) {
  const quay_value *v = &c->val;
  int eType = c->pField->eType;
  switch (c->eLookup) {
    case LK_EQ:
      if (v->type == QUAY_NULL) {
        quay__str_printf(&b->sql, "%s IS NULL", zExpr);
      } else {
        quay__str_printf(&b->sql, "%s = ", zExpr);
        quay__build_param(b, v);
      }
      break;
    case LK_NE:
      if (v->type == QUAY_NULL) {
        quay__str_printf(&b->sql, "%s IS NOT NULL", zExpr);
      } else {
        quay__str_printf(&b->sql, "%s %s ", zExpr, b->pDia->zNullSafeNe);
        quay__build_param(b, v);
      }
      break;
    case LK_LT: case LK_LTE: case LK_GT: case LK_GTE: {
      static const char *azOp[] = { "<", "<=", ">", ">=" };
      quay__str_printf(&b->sql, "%s %s ", zExpr, azOp[c->eLookup - LK_LT]);
      quay__build_param(b, v);
      break;
    }
    case LK_IN:
      if (count_nonnull(v->u.a, (int)v->n) == 0) {
        cat(b, b->pDia->zFalse);
      } else {
        in_list(b, zExpr, v->u.a, (int)v->n, eType);
      }
      break;
    case LK_NOT_IN:
      if (count_nonnull(v->u.a, (int)v->n) == 0) {
        cat(b, b->pDia->zTrue);
      } else {
        quay__str_printf(&b->sql, "(%s IS NULL OR NOT (", zExpr);
        in_list(b, zExpr, v->u.a, (int)v->n, eType);
        cat(b, "))");
      }
      break;
    case LK_CONTAINS: case LK_ICONTAINS: case LK_STARTSWITH:
    case LK_ENDSWITH:
      if (v->n == 0) {
        /* Every text contains, starts and ends with "". */
        quay__str_printf(&b->sql, "%s IS NOT NULL", zExpr);
      } else {
        b->pDia->xTextMatch(b, zExpr, c->eLookup, v->u.z, v->n);
      }
      break;
    case LK_ISNULL:
      quay__str_printf(&b->sql, "%s IS %sNULL", zExpr, v->u.b ? "" : "NOT ");
      break;
    case LK_BETWEEN:
      quay__str_printf(&b->sql, "%s BETWEEN ", zExpr);
      quay__build_param(b, &v->u.a[0]);
      cat(b, " AND ");
      quay__build_param(b, &v->u.a[1]);
      break;
  }
}
/* }================================================================== */


/*
** {==================================================================
** Condition trees
** ===================================================================
*/
/* A leaf seen from hop iHop on, relative to the alias zBase. */
typedef struct LRef {
  Cond *c;
  int iHop;
} LRef;

static void emit_cond(Build *b, Cond *c, const char *zAlias,
                      const char *zPivot);
static void emit_has(Build *b, Cond *c, int iHop, const char *zBase);

/* Same primitive hop (groups share a subquery). */
/* The FROM part of a hop's semi-join, after "IN (SELECT ": the target's
** key column from the target table, through the pivot table when the hop
** has one (zV is then the pivot's alias). */
static void hop_source(Build *b, const Hop *h, const char *zT,
                       const char *zV) {
  if (h->zVia) {
    col(b, zV, h->zViaFrom);
    cat(b, " FROM ");
    ident(b, h->zVia);
    cat(b, " AS ");
    ident(b, zV);
    cat(b, " JOIN ");
    ident(b, h->pTo->zTable);
    cat(b, " AS ");
    ident(b, zT);
    cat(b, " ON ");
    col(b, zT, h->pToKey->zCol);
    cat(b, " = ");
    col(b, zV, h->zViaTo);
  } else {
    col(b, zT, h->pToKey->zCol);
    cat(b, " FROM ");
    ident(b, h->pTo->zTable);
    cat(b, " AS ");
    ident(b, zT);
  }
}

static int same_hop(const Hop *a, const Hop *b) {
  return a->pFrom == b->pFrom && a->pTo == b->pTo &&
         a->pFromKey == b->pFromKey && a->pToKey == b->pToKey &&
         a->zVia == b->zVia;
}

static void emit_refs(Build *b, LRef *a, int n, const char *zBase,
                      int *pnTerm);

/*
** Emit the semi-join for a group of leaves that all continue with hop h.
*/
static void emit_hop(Build *b, const Hop *h, LRef *a, int n,
                     const char *zBase) {
  int i, allKey = 1;
  char *zFrom = col_expr(b, zBase, h->pFromKey->zCol);
  for (i = 0; i < n; i++) {
    if (a[i].iHop + 1 != a[i].c->nHop || a[i].c->pField != h->pToKey) {
      allKey = 0;
    }
  }
  if (zFrom == NULL) return;
  if (allKey && h->zVia == NULL) {
    /* author = u, author__id = 5: compare the local key column. */
    for (i = 0; i < n; i++) {
      if (i) cat(b, " AND ");
      emit_final(b, a[i].c, zFrom);
    }
    return;
  }
  if (allKey) {
    /* tags = t: only the join table is needed. */
    char *zV = quay__alias(b);
    char *zVTo;
    if (zV == NULL) return;
    zVTo = col_expr(b, zV, h->zViaTo);
    quay__str_printf(&b->sql, "%s IN (SELECT ", zFrom);
    col(b, zV, h->zViaFrom);
    cat(b, " FROM ");
    ident(b, h->zVia);
    cat(b, " AS ");
    ident(b, zV);
    cat(b, " WHERE ");
    for (i = 0; i < n; i++) {
      if (i) cat(b, " AND ");
      if (zVTo) emit_final(b, a[i].c, zVTo);
    }
    cat(b, ")");
    return;
  }
  {
    char *zT = quay__alias(b);
    char *zV = h->zVia ? quay__alias(b) : NULL;
    int nTerm = 0;
    if (zT == NULL || (h->zVia && zV == NULL)) return;
    quay__str_printf(&b->sql, "%s IN (SELECT ", zFrom);
    hop_source(b, h, zT, zV);
    for (i = 0; i < n; i++) a[i].iHop++;
    emit_refs(b, a, n, zT, &nTerm);
    for (i = 0; i < n; i++) a[i].iHop--;
    if (h->toNullable) {
      cat(b, nTerm ? " AND " : " WHERE ");
      col(b, zT, h->pToKey->zCol);
      cat(b, " IS NOT NULL");
    }
    cat(b, ")");
  }
}

/*
** Long chains of AND / OR terms are written in parenthesized chunks of
** QUAY_COND_CHUNK terms.  SQLite limits the height of an expression tree
** (1000) and parses "a OR b OR c ..." into a tree as high as the chain is
** long, so a flattened quay.any of 1000 alternatives would fail there
** while PostgreSQL answers; in chunks the height stays below twice
** QUAY_COND_CHUNK.  quay_qs_filter counts the chunks' parentheses in a
** tree's depth and refuses groups wider than QUAY_MAX_COND_WIDTH, the
** square of the chunk size.
*/
/* Before term k of a chain of n terms joined by zOp. */
static void chain_sep(Build *b, int k, int n, const char *zOp) {
  if (n > QUAY_COND_CHUNK && k % QUAY_COND_CHUNK == 0) {
    if (k) {
      cat(b, ")");
      cat(b, zOp);
    }
    cat(b, "(");
  } else if (k) {
    cat(b, zOp);
  }
}

/* After the k terms written of a chain of n. */
static void chain_end(Build *b, int k, int n) {
  if (n > QUAY_COND_CHUNK && k) cat(b, ")");
}

/*
** Emit an AND of leaves (each at its own hop offset) relative to zBase,
** grouping leaves that continue with the same hop.  Writes " WHERE " or
** " AND " before each term (each chunk of terms) as *pnTerm says; with
** pnTerm NULL, terms are joined by " AND " with no prefix.
*/
static void emit_refs(Build *b, LRef *a, int n, const char *zBase,
                      int *pnTerm) {
  int i, j, k = 0;
  unsigned char *aDone;
  LRef *aGroup;
  if (n == 0) return;
  aDone = quay__arena_alloc(b->pArena, (size_t)n);
  aGroup = quay__arena_alloc(b->pArena, sizeof(LRef) * (size_t)n);
  if (aDone == NULL || aGroup == NULL) return;
  memset(aDone, 0, (size_t)n);
  for (i = 0; i < n; i++) {
    LRef *r = &a[i];
    if (aDone[i]) continue;
    if (pnTerm && (n <= QUAY_COND_CHUNK || k % QUAY_COND_CHUNK == 0)) {
      chain_end(b, k, n);
      cat(b, *pnTerm ? " AND " : " WHERE ");
      (*pnTerm)++;
      chain_sep(b, 0, n, " AND ");
    } else if (!pnTerm) {
      chain_sep(b, k, n, " AND ");
    } else {
      cat(b, " AND ");
    }
    k++;
    if (r->iHop == r->c->nHop) {
      char *zExpr = col_expr(b, zBase, r->c->pField->zCol);
      aDone[i] = 1;
      if (zExpr) emit_final(b, r->c, zExpr);
      continue;
    }
    {
      const Hop *h = &r->c->aHop[r->iHop];
      int nG = 0;
      for (j = i; j < n; j++) {
        if (!aDone[j] && a[j].iHop < a[j].c->nHop &&
            same_hop(&a[j].c->aHop[a[j].iHop], h)) {
          aGroup[nG++] = a[j];
          aDone[j] = 1;
        }
      }
      emit_hop(b, h, aGroup, nG, zBase);
    }
  }
  chain_end(b, k, n);
}

/* AND of the children of a group node. */
static void emit_and(Build *b, Cond **ap, int n, const char *zAlias,
                     const char *zPivot) {
  int i, k, nLeaf = 0, nPiv = 0, nTerm = 0;
  LRef *aLeaf, *aPiv;
  if (n == 0) {
    cat(b, b->pDia->zTrue);
    return;
  }
  aLeaf = quay__arena_alloc(b->pArena, sizeof(LRef) * (size_t)n);
  aPiv = quay__arena_alloc(b->pArena, sizeof(LRef) * (size_t)n);
  if (aLeaf == NULL || aPiv == NULL) return;
  for (i = 0; i < n; i++) {
    if (ap[i]->eOp == CN_LEAF) {
      LRef *r = ap[i]->isPivot ? &aPiv[nPiv++] : &aLeaf[nLeaf++];
      r->c = ap[i];
      r->iHop = 0;
    }
  }
  cat(b, "(");
  if (nLeaf) {
    emit_refs(b, aLeaf, nLeaf, zAlias, NULL);
    nTerm++;
  }
  if (nPiv) {
    if (nTerm++) cat(b, " AND ");
    emit_refs(b, aPiv, nPiv, zPivot, NULL);
  }
  if (nLeaf + nPiv < n && nTerm++) cat(b, " AND ");
  for (i = k = 0; i < n; i++) {
    if (ap[i]->eOp == CN_LEAF) continue;
    chain_sep(b, k++, n - nLeaf - nPiv, " AND ");
    emit_cond(b, ap[i], zAlias, zPivot);
  }
  chain_end(b, k, n - nLeaf - nPiv);
  cat(b, ")");
}

static void emit_cond(Build *b, Cond *c, const char *zAlias,
                      const char *zPivot) {
  int i;
  /* quay_qs_filter bounds a tree's depth; nested where_has query sets
  ** stack trees, so the builder keeps its own bound on its recursion. */
  if (b->nCondDepth >= 4 * QUAY_MAX_COND_DEPTH) {
    if (b->rc == QUAY_OK) {
      b->rc = quay__err(b->pErr, QUAY_EMISUSE, "conditions nest more than "
                        "%d levels deep (where_has inside where_has...): "
                        "split the query", 4 * QUAY_MAX_COND_DEPTH);
    }
    return;
  }
  b->nCondDepth++;
  switch (c->eOp) {
    case CN_LEAF: {
      LRef r;
      r.c = c;
      r.iHop = 0;
      emit_refs(b, &r, 1, c->isPivot ? zPivot : zAlias, NULL);
      break;
    }
    case CN_HAS:
      emit_has(b, c, 0, c->isPivot ? zPivot : zAlias);
      break;
    case CN_NOT:
      cat(b, "NOT COALESCE(");
      emit_and(b, c->apChild, c->nChild, zAlias, zPivot);
      cat(b, ", ");
      cat(b, b->pDia->zFalse);
      cat(b, ")");
      break;
    case CN_AND:
      emit_and(b, c->apChild, c->nChild, zAlias, zPivot);
      break;
    case CN_OR:
      if (c->nChild == 0) {
        cat(b, b->pDia->zFalse);
        break;
      }
      cat(b, "(");
      for (i = 0; i < c->nChild; i++) {
        chain_sep(b, i, c->nChild, " OR ");
        emit_cond(b, c->apChild[i], zAlias, zPivot);
      }
      chain_end(b, c->nChild, c->nChild);
      cat(b, ")");
      break;
  }
  b->nCondDepth--;
}

/*
** where_has: existence of related rows along c->aHop that satisfy the
** node's children and its sub query set.
*/
static void emit_has(Build *b, Cond *c, int iHop, const char *zBase) {
  const Hop *h = &c->aHop[iHop];
  char *zT = quay__alias(b);
  char *zV = h->zVia ? quay__alias(b) : NULL;
  int nTerm = 0;
  if (zT == NULL || (h->zVia && zV == NULL)) return;
  col(b, zBase, h->pFromKey->zCol);
  cat(b, " IN (SELECT ");
  hop_source(b, h, zT, zV);
  if (iHop + 1 < c->nHop) {
    cat(b, " WHERE ");
    emit_has(b, c, iHop + 1, zT);
    nTerm++;
  } else {
    if (c->nChild) {
      cat(b, " WHERE ");
      emit_and(b, c->apChild, c->nChild, zT, NULL);
      nTerm++;
    }
    if (c->pSub) {
      QsView v;
      if (quay__qs_view(c->pSub, &v, b->pArena, b->pErr) == QUAY_OK) {
        quay__build_where(b, &v, zT, &nTerm);
      } else {
        b->rc = b->pErr ? b->pErr->code : QUAY_ENOMEM;
      }
    }
  }
  if (h->toNullable) {
    cat(b, nTerm ? " AND " : " WHERE ");
    col(b, zT, h->pToKey->zCol);
    cat(b, " IS NOT NULL");
  }
  cat(b, ")");
}
/* }================================================================== */


/*
** {==================================================================
** Scopes and WHERE clauses
** ===================================================================
*/
/* The hops of a scope's relation (from the owner to the set's model). */
static int scope_hops(Build *b, quay_qs *pScope, Hop *aHop, int *pn) {
  *pn = 0;
  return quay__rel_hops(pScope->pScopeRel, aHop, pn, b->pErr);
}

/* Non-0 when the scope joins a custom pivot table (rec.pivot). */
int quay__scope_has_pivot(quay_qs *pScope) {
  Rel *r = pScope->pScopeRel;
  Rel *fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  return fwd->eKind == QUAY_R_MANY_TO_MANY && fwd->pJoin->pThrough != NULL;
}

/*
** Condition "the row at zAlias is reached from the owner key" for hop
** aHop[j] and those before it, nested from the target side back.
*/
static void emit_scope_chain(Build *b, Hop *aHop, int j, const char *zAlias,
                             const quay_value *pKey) {
  const Hop *h = &aHop[j];
  if (h->zVia) {
    char *zV = quay__alias(b);
    if (zV == NULL) return;
    col(b, zAlias, h->pToKey->zCol);
    cat(b, " IN (SELECT ");
    col(b, zV, h->zViaTo);
    cat(b, " FROM ");
    ident(b, h->zVia);
    cat(b, " AS ");
    ident(b, zV);
    cat(b, " WHERE ");
    if (j == 0) {
      col(b, zV, h->zViaFrom);
      cat(b, " = ");
      quay__build_param(b, pKey);
    } else {
      char *zY = quay__alias(b);
      if (zY == NULL) return;
      col(b, zV, h->zViaFrom);
      cat(b, " IN (SELECT ");
      col(b, zY, h->pFromKey->zCol);
      cat(b, " FROM ");
      ident(b, h->pFrom->zTable);
      cat(b, " AS ");
      ident(b, zY);
      cat(b, " WHERE ");
      emit_scope_chain(b, aHop, j - 1, zY, pKey);
      cat(b, ")");
    }
    cat(b, ")");
  } else if (j == 0) {
    col(b, zAlias, h->pToKey->zCol);
    cat(b, " = ");
    quay__build_param(b, pKey);
  } else {
    char *zY = quay__alias(b);
    if (zY == NULL) return;
    col(b, zAlias, h->pToKey->zCol);
    cat(b, " IN (SELECT ");
    col(b, zY, h->pFromKey->zCol);
    cat(b, " FROM ");
    ident(b, h->pFrom->zTable);
    cat(b, " AS ");
    ident(b, zY);
    cat(b, " WHERE ");
    emit_scope_chain(b, aHop, j - 1, zY, pKey);
    cat(b, ")");
  }
}

/*
** FROM clause of a view: the model's table as zAlias, plus the pivot join
** of a custom many-to-many scope.  Returns the pivot alias or NULL.
*/
const char *quay__build_from(Build *b, QsView *v, const char *zAlias) {
  cat(b, " FROM ");
  ident(b, v->pModel->zTable);
  cat(b, " AS ");
  ident(b, zAlias);
  if (v->pScope && quay__scope_has_pivot(v->pScope)) {
    Hop aHop[QUAY_MAX_HOPS];
    int n;
    char *zPv;
    if (scope_hops(b, v->pScope, aHop, &n)) {
      b->rc = b->pErr->code;
      return NULL;
    }
    zPv = quay__alias(b);
    if (zPv == NULL) return NULL;
    cat(b, " JOIN ");
    ident(b, aHop[0].zVia);
    cat(b, " AS ");
    ident(b, zPv);
    cat(b, " ON ");
    col(b, zPv, aHop[0].zViaTo);
    cat(b, " = ");
    col(b, zAlias, aHop[0].pToKey->zCol);
    return zPv;
  }
  return NULL;
}

/*
** WHERE terms of a view: its scope and its filters.  zPivot is the alias
** quay__build_from returned (or NULL).
*/
void quay__build_where_pv(Build *b, QsView *v, const char *zAlias,
                          const char *zPivot, int *pnTerm) {
  int i;
  if (v->pScope) {
    Hop aHop[QUAY_MAX_HOPS];
    int n;
    if (scope_hops(b, v->pScope, aHop, &n)) {
      b->rc = b->pErr->code;
      return;
    }
    cat(b, *pnTerm ? " AND " : " WHERE ");
    (*pnTerm)++;
    if (zPivot) {
      col(b, zPivot, aHop[0].zViaFrom);
      cat(b, " = ");
      quay__build_param(b, &v->pScope->scopeKey);
    } else {
      emit_scope_chain(b, aHop, n - 1, zAlias, &v->pScope->scopeKey);
    }
  }
  for (i = 0; i < v->nFilter; i++) {
    quay_qs *f = v->apFilter[i];
    cat(b, *pnTerm ? " AND " : " WHERE ");
    (*pnTerm)++;
    if (f->bExclude) {
      cat(b, "NOT COALESCE(");
      emit_cond(b, f->pCond, zAlias, zPivot);
      cat(b, ", ");
      cat(b, b->pDia->zFalse);
      cat(b, ")");
    } else {
      emit_cond(b, f->pCond, zAlias, zPivot);
    }
  }
}

void quay__build_where(Build *b, QsView *v, const char *zAlias, int *pnTerm) {
  quay__build_where_pv(b, v, zAlias, NULL, pnTerm);
}

/*
** SELECT of the keys (field pKey) of the rows of a query set, with no
** order unless limit/offset need one.  Used by update/delete and
** subqueries.
*/
void quay__build_keys(Build *b, quay_qs *pQs, Field *pKey) {
  QsView v;
  char *zA;
  const char *zPv;
  int nTerm = 0;
  if (quay__qs_view(pQs, &v, b->pArena, b->pErr)) {
    b->rc = b->pErr->code;
    return;
  }
  zA = quay__alias(b);
  if (zA == NULL) return;
  cat(b, "SELECT ");
  col(b, zA, pKey->zCol);
  zPv = quay__build_from(b, &v, zA);
  quay__build_where_pv(b, &v, zA, zPv, &nTerm);
  if (v.limit >= 0 || v.offset >= 0) {
    quay_value n;
    Field *pk = v.pModel->apField[v.pModel->iPk];
    cat(b, " ORDER BY ");
    col(b, zA, pk->zCol);
    n.type = QUAY_INT;
    if (v.limit >= 0) {
      cat(b, " LIMIT ");
      n.u.i = v.limit;
      quay__build_param(b, &n);
    } else if (v.offset >= 0) {
      cat(b, b->pDia->zOffsetNoLimit);
    }
    if (v.offset >= 0) {
      cat(b, " OFFSET ");
      n.u.i = v.offset;
      quay__build_param(b, &n);
    }
  }
}
/* }================================================================== */


/*
** {==================================================================
** DDL
** ===================================================================
*/
/* A literal for a DDL DEFAULT clause; 0 when the value has none. */
static int ddl_literal(Str *p, const Field *f, const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: quay__str_printf(p, "%lld", (long long)v->u.i); return 1;
    case QUAY_REAL:
      if (!isfinite(v->u.r)) return 0;      /* no portable literal */
      quay__str_printf(p, "%.17g", v->u.r);
      return 1;
    case QUAY_BOOL:
      quay__str_cat(p, v->u.b ? "TRUE" : "FALSE");
      return 1;
    case QUAY_TEXT: {
      size_t i;
      if (f->eType == QUAY_T_BLOB) return 0;
      quay__str_char(p, '\'');
      for (i = 0; i < v->n; i++) {
        if (v->u.z[i] == '\'') quay__str_char(p, '\'');
        quay__str_char(p, v->u.z[i]);
      }
      quay__str_char(p, '\'');
      return 1;
    }
  }
  return 0;
}

/*
** The referential action written into DDL.  on_delete is computed by the
** cascade planner (API.md: "not left to the database"), so the constraint
** only guards integrity: NO ACTION, deferrable where the planner may need
** to defer it (cycles).  on_update carries the matching action (API.md:
** "the DDL carries the matching ON UPDATE").
*/
static const char *ddl_action(int eRule, int bUpdate) {
  if (!bUpdate) return "NO ACTION";
  switch (eRule) {
    case QUAY_CASCADE: return "CASCADE";
    case QUAY_SET_NULL: return "SET NULL";
    case QUAY_SET_DEFAULT: return "SET DEFAULT";
    case QUAY_PROTECT:
    case QUAY_RESTRICT: return "RESTRICT";
  }
  return "NO ACTION";
}

/* Append one statement to the list. */
static int push_stmt(Str *s, char ***paz, int *pn) {
  char **a;
  char *z;
  if (s->oom) return QUAY_ENOMEM;
  z = quay__str_take(s);
  if (z == NULL) return QUAY_ENOMEM;
  a = quay__realloc(*paz, sizeof(char *) * (size_t)(*pn + 1));
  if (a == NULL) {
    quay__free(z);
    return QUAY_ENOMEM;
  }
  a[(*pn)++] = z;
  *paz = a;
  return QUAY_OK;
}

static void column_def(const Dialect *d, Str *s, const Field *f, int bPk) {
  quay__str_ident(s, f->zCol);
  quay__str_char(s, ' ');
  if (bPk && f->eType == QUAY_T_ID) {
    quay__str_cat(s, d->zAutoPk);
    return;
  }
  quay__str_cat(s, d->xColType(f));
  if (f->eType == QUAY_T_STRING && f->nMax > 0) {
    quay__str_printf(s, "(%d)", f->nMax);
  }
  if (bPk) {
    quay__str_cat(s, " PRIMARY KEY");
    return;
  }
  if (!(f->mFlags & QUAY_F_NULL)) quay__str_cat(s, " NOT NULL");
  if (f->mFlags & QUAY_F_UNIQUE) quay__str_cat(s, " UNIQUE");
  if ((f->mFlags & QUAY_F_DEFAULT) && f->dflt.type != QUAY_NULL) {
    Str lit;
    quay__str_init(&lit);
    if (ddl_literal(&lit, f, &f->dflt) && !lit.oom) {
      quay__str_cat(s, " DEFAULT ");
      quay__str_append(s, lit.z, lit.n);
    }
    quay__str_free(&lit);
  }
}

static void fk_clause(const Dialect *d, Str *s, Rel *r) {
  quay__str_cat(s, " REFERENCES ");
  quay__str_ident(s, r->pTo->zTable);
  quay__str_cat(s, " (");
  quay__str_ident(s, r->pKey->zCol);
  quay__str_cat(s, ")");
  quay__str_printf(s, " ON DELETE %s ON UPDATE %s",
                   ddl_action(r->eOnDelete, 0), ddl_action(r->eOnUpdate, 1));
  if (r->eOnDelete != QUAY_NO_ACTION) quay__str_cat(s, d->zFkDeferrable);
}

/*
** Non-0 when the foreign key of relation r, declared by model m, must be
** added after the CREATE TABLEs: the dialect cannot reference a table
** that does not exist yet (xAddFk) and r's target is not created yet
** (aDone marks the tables created so far).
*/
static int fk_late(const Dialect *d, const quay_model *m, const Rel *r,
                   const unsigned char *aDone) {
  return d->xAddFk != NULL && r->pTo != m && !aDone[r->pTo->iModel];
}

static void index_stmt(const Dialect *d, Str *s, const char *zTable,
                       const char *zCol) {
  char zName[512];
  snprintf(zName, sizeof(zName), "%s_%s_idx", zTable, zCol);
  if (strlen(zName) > 63) {
    /* PostgreSQL truncates identifiers: keep 50 bytes and a hash. */
    unsigned h = (unsigned)(quay__hash_bytes(zName, strlen(zName)) & 0xffffffffu);
    snprintf(zName + 50, sizeof(zName) - 50, "_%08x", h);
  }
  quay__str_printf(s, "%s ", d->zCreateIndex);
  quay__str_ident(s, zName);
  quay__str_cat(s, " ON ");
  quay__str_ident(s, zTable);
  quay__str_cat(s, " (");
  quay__str_ident(s, zCol);
  quay__str_cat(s, ")");
}

/*
** Build the DDL for the whole schema: CREATE TABLE for models (in an
** order that puts referenced tables first where possible), join tables,
** indexes; or DROP TABLE in the reverse order.  *pazStmt receives
** malloc'd statements (caller frees each and the array).
*/
int quay__build_ddl(quay_db *pDb, int bDrop, Str *pUnused, int *pn,
                    char ***paz, quay_err *pErr) {
  const Dialect *d = pDb->pDialect;
  Str s;
  int i, k, rc = QUAY_OK;
  int *aOrder = NULL, nOrder = 0;
  unsigned char *aDone = NULL;
  (void)pUnused;
  *pn = 0;
  *paz = NULL;
  quay__str_init(&s);
  /* Order models: referenced first (a simple repeated pass; cycles fall
  ** back to declaration order, which is fine as FKs are checked on use). */
  aOrder = quay__malloc(sizeof(int) * (size_t)(pDb->nModel + 1));
  aDone = quay__calloc((size_t)pDb->nModel + 1);
  if (aOrder == NULL || aDone == NULL) {
    rc = quay__oom(pErr);
    goto done;
  }
  while (nOrder < pDb->nModel) {
    int progress = 0;
    for (i = 0; i < pDb->nModel; i++) {
      quay_model *m = pDb->apModel[i];
      int ready = 1;
      if (aDone[i]) continue;
      for (k = 0; k < m->nDeclRel; k++) {
        Rel *r = m->apRel[k];
        if ((r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) &&
            r->pTo != m && !aDone[r->pTo->iModel]) {
          ready = 0;
        }
      }
      if (ready) {
        aDone[i] = 1;
        aOrder[nOrder++] = i;
        progress = 1;
      }
    }
    if (!progress) {
      for (i = 0; i < pDb->nModel; i++) {
        if (!aDone[i]) {
          aDone[i] = 1;
          aOrder[nOrder++] = i;
          break;
        }
      }
    }
  }
  if (bDrop) {
    for (i = 0; i < pDb->nJoin; i++) {
      if (pDb->apJoin[i]->pThrough) continue;
      quay__str_printf(&s, "%s ", d->zDropTable);
      quay__str_ident(&s, pDb->apJoin[i]->zTable);
      quay__str_cat(&s, d->zDropSuffix);
      if ((rc = push_stmt(&s, paz, pn))) goto oom;
    }
    for (i = nOrder - 1; i >= 0; i--) {
      quay_model *m = pDb->apModel[aOrder[i]];
      quay__str_printf(&s, "%s ", d->zDropTable);
      quay__str_ident(&s, m->zTable);
      quay__str_cat(&s, d->zDropSuffix);
      if ((rc = push_stmt(&s, paz, pn))) goto oom;
    }
    goto done;
  }
  /* aDone now marks tables created so far: a foreign key to a table not
  ** created yet (a cycle) is added by ALTER TABLE after every table exists
  ** on dialects that need it (Dialect.xAddFk; SQLite takes it inline). */
  memset(aDone, 0, (size_t)pDb->nModel + 1);
  for (i = 0; i < nOrder; i++) {
    quay_model *m = pDb->apModel[aOrder[i]];
    quay__str_cat(&s, "CREATE TABLE IF NOT EXISTS ");
    quay__str_ident(&s, m->zTable);
    quay__str_cat(&s, " (");
    for (k = 0; k < m->nField; k++) {
      Field *f = m->apField[k];
      if (k) quay__str_cat(&s, ", ");
      column_def(d, &s, f, k == m->iPk);
      if (f->pRel && f->pRel->pFk == f && f->pRel->pFrom == m &&
          (f->pRel->eKind == QUAY_R_BELONGS_TO ||
           f->pRel->eKind == QUAY_R_ONE_TO_ONE) &&
          !fk_late(d, m, f->pRel, aDone)) {
        fk_clause(d, &s, f->pRel);
      }
    }
    for (k = 0; k < m->nUnique; k++) {
      int j;
      quay__str_cat(&s, ", UNIQUE (");
      for (j = 0; j < m->anUnique[k]; j++) {
        Field *f = quay__model_field(m, m->aaUnique[k][j]);
        Rel *r = f ? NULL : quay__model_rel(m, m->aaUnique[k][j]);
        if (j) quay__str_cat(&s, ", ");
        quay__str_ident(&s, f ? f->zCol : r->pFk->zCol);
      }
      quay__str_cat(&s, ")");
    }
    quay__str_cat(&s, ")");
    if ((rc = push_stmt(&s, paz, pn))) goto oom;
    for (k = 0; k < m->nField; k++) {
      Field *f = m->apField[k];
      if (k == m->iPk || (f->mFlags & QUAY_F_UNIQUE)) continue;
      if (!(f->mFlags & QUAY_F_INDEX)) continue;
      index_stmt(d, &s, m->zTable, f->zCol);
      if ((rc = push_stmt(&s, paz, pn))) goto oom;
    }
    aDone[m->iModel] = 1;
  }
  /* The foreign keys left out above, now that every table exists. */
  memset(aDone, 0, (size_t)pDb->nModel + 1);
  for (i = 0; i < nOrder; i++) {
    quay_model *m = pDb->apModel[aOrder[i]];
    for (k = 0; k < m->nField; k++) {
      Field *f = m->apField[k];
      Str ref;
      if (!f->pRel || f->pRel->pFk != f || f->pRel->pFrom != m ||
          (f->pRel->eKind != QUAY_R_BELONGS_TO &&
           f->pRel->eKind != QUAY_R_ONE_TO_ONE) ||
          !fk_late(d, m, f->pRel, aDone)) {
        continue;
      }
      quay__str_init(&ref);
      fk_clause(d, &ref, f->pRel);
      d->xAddFk(&s, m->zTable, f->zCol, ref.oom ? "" : ref.z);
      if (ref.oom) s.oom = 1;
      quay__str_free(&ref);
      if ((rc = push_stmt(&s, paz, pn))) goto oom;
    }
    aDone[m->iModel] = 1;
  }
  for (i = 0; i < pDb->nJoin; i++) {
    JoinTable *j = pDb->apJoin[i];
    Field fSrc, fDst;
    if (j->pThrough) continue;
    memset(&fSrc, 0, sizeof(fSrc));
    memset(&fDst, 0, sizeof(fDst));
    fSrc.eType = j->pSrcKey->eType == QUAY_T_ID ? QUAY_T_INTEGER
                                                : j->pSrcKey->eType;
    fDst.eType = j->pDstKey->eType == QUAY_T_ID ? QUAY_T_INTEGER
                                                : j->pDstKey->eType;
    quay__str_cat(&s, "CREATE TABLE IF NOT EXISTS ");
    quay__str_ident(&s, j->zTable);
    quay__str_cat(&s, " (");
    quay__str_ident(&s, "id");
    quay__str_printf(&s, " %s, ", d->zAutoPk);
    quay__str_ident(&s, j->zSrcCol);
    quay__str_printf(&s, " %s NOT NULL REFERENCES ", d->xColType(&fSrc));
    quay__str_ident(&s, j->pSrc->zTable);
    quay__str_cat(&s, " (");
    quay__str_ident(&s, j->pSrcKey->zCol);
    quay__str_printf(&s, ") ON DELETE CASCADE ON UPDATE CASCADE%s, ",
                     d->zFkDeferrable);
    quay__str_ident(&s, j->zDstCol);
    quay__str_printf(&s, " %s NOT NULL REFERENCES ", d->xColType(&fDst));
    quay__str_ident(&s, j->pDst->zTable);
    quay__str_cat(&s, " (");
    quay__str_ident(&s, j->pDstKey->zCol);
    quay__str_printf(&s, ") ON DELETE CASCADE ON UPDATE CASCADE%s, UNIQUE (",
                     d->zFkDeferrable);
    quay__str_ident(&s, j->zSrcCol);
    quay__str_cat(&s, ", ");
    quay__str_ident(&s, j->zDstCol);
    quay__str_cat(&s, "))");
    if ((rc = push_stmt(&s, paz, pn))) goto oom;
    index_stmt(d, &s, j->zTable, j->zDstCol);
    if ((rc = push_stmt(&s, paz, pn))) goto oom;
  }
  goto done;
oom:
  rc = quay__oom(pErr);
done:
  quay__str_free(&s);
  quay__free(aOrder);
  quay__free(aDone);
  if (rc) {
    for (i = 0; i < *pn; i++) quay__free((*paz)[i]);
    quay__free(*paz);
    *paz = NULL;
    *pn = 0;
  }
  return rc;
}

/* Run the DDL statements in one transaction. */
static int run_ddl(quay_db *pDb, int bDrop, quay_err *pErr) {
  char **az = NULL;
  int n = 0, i, rc;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  rc = quay__build_ddl(pDb, bDrop, NULL, &n, &az, pErr);
  if (rc) return rc;
  rc = quay__txn_begin(pDb, 1, pErr);
  if (rc == QUAY_OK) {
    for (i = 0; rc == QUAY_OK && i < n; i++) {
      rc = quay__db_run(pDb, az[i], NULL, 0, NULL, 0, 0, NULL, NULL, pErr);
    }
    rc = quay__txn_end(pDb, rc, pErr);
  }
  for (i = 0; i < n; i++) quay__free(az[i]);
  quay__free(az);
  return rc;
}

int quay_db_create_tables(quay_db *pDb, quay_err *pErr) {
  return run_ddl(pDb, 0, pErr);
}

int quay_db_drop_tables(quay_db *pDb, quay_err *pErr) {
  return run_ddl(pDb, 1, pErr);
}
/* }================================================================== */
