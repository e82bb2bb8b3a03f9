/*
** engine/sqlbuild.c
** The SQL builder: conditions, scopes, joins and ordering, in a
** dialect-neutral way (DDL lives in ddl.c).
** See LICENSE
**
** A condition that crosses a to-many relation compiles to a semi-join,
** never to a join, so it can never duplicate owner rows:
**
**     t0.id IN (SELECT t1.post_id FROM post_tags t1
**               JOIN tags t2 ON t2.id = t1.tag_id WHERE t2.name = ?)
**
** This is the form SQLite 3.40 runs fast (a correlated EXISTS was ~25x
** slower on the benchmark's W3 query, docs/ENGINE.md "Measured facts")
** and PostgreSQL plans as a semi-join.  To-one hops, which cannot repeat
** a row, are LEFT JOINs of their scope ("Condition trees").  Leaves of
** one table that share a to-many hop share one subquery, recursively, so
** all conditions of one table on one to-many path hold for the same
** related row; separate filter() calls get separate subqueries and may
** match different rows.  Negations are
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

int quay__build_exec(Build *b, int64_t *pnChanged) {
  int rc = quay__build_rc(b);
  if (rc) return rc;
  return quay__db_run(b->pDb, b->sql.z, b->params.a, b->params.n, NULL, 0, 0,
                      NULL, pnChanged, b->pErr);
}

int quay__build_query(Build *b, const int *aHint, int nHint,
                      quay_cursor **ppCur) {
  int rc = quay__build_rc(b);
  *ppCur = NULL;
  if (rc) return rc;
  return quay__db_run(b->pDb, b->sql.z, b->params.a, b->params.n, aHint,
                      nHint, 0, ppCur, NULL, b->pErr);
}

int quay__build_values(Build *b, int eHint, quay_value **paOut,
                       int *pnOut) {
  quay_cursor *c = NULL;
  quay_value *a = NULL;
  int n = 0, nAlloc = 0;
  int rc = quay__build_query(b, &eHint, 1, &c);
  *paOut = NULL;
  *pnOut = 0;
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, b->pErr)) == QUAY_ROW) {
    quay_value v;
    rc = QUAY_OK;
    quay_cursor_value(c, 0, &v);
    if (n == nAlloc) {
      int nNew = nAlloc ? nAlloc * 2 : 16;
      quay_value *aNew = quay__arena_alloc(b->pArena,
                                           sizeof(quay_value) * (size_t)nNew);
      if (aNew == NULL) {
        rc = quay__oom(b->pErr);
        break;
      }
      if (n) memcpy(aNew, a, sizeof(quay_value) * (size_t)n);
      a = aNew;
      nAlloc = nNew;
    }
    if (QUAY_VALUE_HAS_BYTES(v.type)) {
      v.u.z = quay__arena_strdup(b->pArena, v.u.z, v.n);
      if (v.u.z == NULL) {
        rc = quay__oom(b->pErr);
        break;
      }
    }
    a[n++] = v;
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  if (rc == QUAY_OK) {
    *paOut = a;
    *pnOut = n;
  }
  return rc;
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

/*
** soft_delete: "zPre<alias>.deleted_at IS NULL" when m soft-deletes (its
** soft-deleted rows are left out of every read); returns 1 if written.
*/
static int soft_term(Build *b, const quay_model *m, const char *zAlias,
                     const char *zPre) {
  if (m->pDeletedAt == NULL) return 0;
  cat(b, zPre);
  col(b, zAlias, m->pDeletedAt->zCol);
  cat(b, " IS NULL");
  return 1;
}

void quay__soft_term(Build *b, const quay_model *m, const char *zAlias,
                     const char *zPre) {
  soft_term(b, m, zAlias, zPre);
}

int quay__via_soft_term(Str *s, const Hop *h, const char *zV,
                        const char *zPre) {
  if (h->zVia == NULL || h->pViaDeletedAt == NULL || zV == NULL) return 0;
  quay__str_cat(s, zPre);
  quay__str_col(s, zV, h->pViaDeletedAt->zCol);
  quay__str_cat(s, " IS NULL");
  return 1;
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

void quay__emit_operand_doc(Build *b, const Operand *x) {
  if (x->zCol) {
    cat(b, x->zCol);
  } else {
    x->xExpr(b, x->pCtx, x->pExpr);
  }
}

void quay__emit_operand(Build *b, const Operand *x) {
  if (x->pJson) {
    b->pDia->xJsonPath(b, x);
    return;
  }
  if (x->ePart) cat(b, b->pDia->azPart[x->ePart][0]);
  quay__emit_operand_doc(b, x);
  if (x->ePart) cat(b, b->pDia->azPart[x->ePart][1]);
}

void quay__operand_leaf(Operand *x, const Cond *c) {
  x->ePart = c->ePart;
  x->pJson = c->zJsonPath ? c : NULL;
}

/* Bind a list "x IN (...)": inline when short, one array otherwise. */
static void in_list(Build *b, const Operand *x, const quay_value *a, int n,
                    int eType) {
  int i, k;
  /* (a JSON path on a dialect without JSON document compares stays
  ** inline: its booleans are bound as blobs, see quay__json_compare_value) */
  if (n <= b->pDia->maxInline || (x->pJson && !b->pDia->bJsonDocCompare)) {
    quay__emit_operand(b, x);
    cat(b, " IN (");
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
    /* The operand first (its parameters come first), then " IN <array>". */
    quay__emit_operand(b, x);
    quay__build_array(b, "", aNN, k, eType);
  }
}

/* Count non-NULL entries of a list. */
static int count_nonnull(const quay_value *a, int n) {
  int i, k = 0;
  for (i = 0; i < n; i++) k += a[i].type != QUAY_NULL;
  return k;
}

/*
** Emit the comparison of leaf c with the operand x (the leaf's field, a
** column holding the same key, or an annotation's expression).  A leaf
** whose value is an expression writes it with xRight/pRight.
*/
static void emit_final(Build *b, Cond *c, const Operand *x,
                       void (*xRight)(Build *, void *, Expr *),
                       void *pRight) {
  const quay_value *v = &c->val;
  int nPlaces, eType = quay__leaf_type(c, &nPlaces);
  static const char *const azOp[] = { "=", NULL, "<", "<=", ">", ">=" };
  if (c->pExpr) {
    quay__emit_operand(b, x);
    if (c->eLookup == LK_NE) {
      quay__str_printf(&b->sql, " %s ", b->pDia->zNullSafeNe);
    } else {
      quay__str_printf(&b->sql, " %s ", azOp[c->eLookup - LK_EQ]);
    }
    quay__emit_as(b, c->pExpr, eType, nPlaces, xRight, pRight);
    return;
  }
  switch (c->eLookup) {
    case LK_EQ:
      quay__emit_operand(b, x);
      if (v->type == QUAY_NULL) {
        cat(b, " IS NULL");
      } else {
        cat(b, " = ");
        quay__build_param(b, v);
      }
      break;
    case LK_NE:
      quay__emit_operand(b, x);
      if (v->type == QUAY_NULL) {
        cat(b, " IS NOT NULL");
      } else {
        quay__str_printf(&b->sql, " %s ", b->pDia->zNullSafeNe);
        quay__build_param(b, v);
      }
      break;
    case LK_LT: case LK_LTE: case LK_GT: case LK_GTE:
      quay__emit_operand(b, x);
      quay__str_printf(&b->sql, " %s ", azOp[c->eLookup - LK_EQ]);
      quay__build_param(b, v);
      break;
    case LK_IN:
      if (count_nonnull(v->u.a, (int)v->n) == 0) {
        cat(b, b->pDia->zFalse);
      } else {
        in_list(b, x, v->u.a, (int)v->n, eType);
      }
      break;
    case LK_NOT_IN:
      if (count_nonnull(v->u.a, (int)v->n) == 0) {
        cat(b, b->pDia->zTrue);
      } else {
        cat(b, "(");
        quay__emit_operand(b, x);
        cat(b, " IS NULL OR NOT (");
        in_list(b, x, v->u.a, (int)v->n, eType);
        cat(b, "))");
      }
      break;
    case LK_CONTAINS: case LK_ICONTAINS: case LK_STARTSWITH:
    case LK_ENDSWITH: case LK_ISTARTSWITH: case LK_IENDSWITH:
      if (v->n == 0) {
        /* Every text contains, starts and ends with "". */
        quay__emit_operand(b, x);
        cat(b, " IS NOT NULL");
      } else {
        b->pDia->xTextMatch(b, x, c->eLookup, v->u.z, v->n);
      }
      break;
    case LK_IEXACT:
      if (v->n == 0) {
        quay__emit_operand(b, x);
        cat(b, " = ''");
      } else {
        b->pDia->xTextMatch(b, x, c->eLookup, v->u.z, v->n);
      }
      break;
    case LK_ISNULL:
      quay__emit_operand(b, x);
      quay__str_printf(&b->sql, " IS %sNULL", v->u.b ? "" : "NOT ");
      break;
    case LK_BETWEEN:
      quay__emit_operand(b, x);
      cat(b, " BETWEEN ");
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
** A filter's Cond tree is compiled through a transient emission tree
** (ENode, arena memory) that records, per leaf, how far along its hops the
** leaf has been walked and from which alias.  Compiling a scope (the main
** query, or one subquery) is two passes:
**
**   1. prepare: every leaf of the scope walks its leading to-one hops as
**      LEFT JOINs registered in the scope (one alias per relation path, so
**      every condition on `editor` sees the same row).  A missing related
**      row then reads as a row of NULLs (docs/reference.md, "to-one
**      hops"): `editor__name__isnull = true` holds for a post with no
**      editor.  A condition on the key a belongs_to points at compares the
**      local foreign key column instead (no join).
**   2. emit: the FROM, the registered joins, then the WHERE text.  Leaves
**      that continue with a to-many hop form same-row groups: within one
**      AND node, a to-many hop (from one alias) that two children refer to
**      is quantified once, at that node, over every child that refers to it
**      (docs/reference.md, "same-row groups"):
**
**        {posts__title = "x", quay.any{{posts__views = 5}, {name = "b"}}}
**        t0.id IN (SELECT t1.author_id FROM posts AS t1
**                  WHERE t1.title = ? AND (t1.views = ? OR t0.name = ?))
**
**      A to-many hop that one child alone refers to is quantified inside
**      that child (an OR distributes: exists (A or B) = exists A or exists
**      B).  Conditions of the outer row inside such a group stay
**      correlated references to the outer alias.
*/
struct ENode {
  int eOp;                  /* CN_* */
  ENode **ap; int n;        /* AND / OR / NOT children */
  Cond *c;                  /* LEAF, HAS */
  int iHop;                 /* LEAF: next hop of c->aHop to take */
  const char *zBase;        /* LEAF: alias of the row reached so far */
  Scope *pScope;            /* LEAF: the scope zBase belongs to */
  int bShortcut;            /* LEAF: compare zBase's key column of the
                            ** last (belongs_to) hop, no join */
  /* LEAF: how annotations and quay.F values of the leaf are written (the
  ** row of the query set's model), and the scope that joins their to-one
  ** paths (NULL: nothing to prepare, e.g. HAVING) */
  void (*xExpr)(Build *b, void *pCtx, Expr *e);
  void *pCtx;
  Scope *pRootScope;
  int bTable;               /* AND: a table nested in a table, which
                            ** quantifies its own to-many rows */
  int bFromAny;             /* AND: the one alternative of a quay.any */
};

/* Where a per-row expression's columns live: the row of the query set's
** model (and its pivot) and the scope that holds their to-one joins. */
typedef struct ExprCtx {
  Scope *pScope;
  const char *zBase;
  const char *zPivot;
} ExprCtx;

/* One LEFT JOIN of a scope: a to-one hop from the alias zParent. */
typedef struct SJoin {
  const char *zParent;
  const Hop *pHop;
  char *zAlias;
} SJoin;

/* One aggregate of a grouped join: its column "a<iCol>" (-1: an EXISTS,
** which the join's match answers). */
typedef struct GMember {
  Expr *e;
  int eFn;                  /* the function written (a partial's, values.c) */
  int iCol;
} GMember;

/* A grouped LEFT JOIN: the aggregates of one path and filter of the
** scope's row (see "Aggregates of a scope"). */
typedef struct GJoin {
  Expr *pFirst;             /* first member: its path is the join's chain */
  int bWrap;                /* the chain repeats rows: distinct pairs first */
  char *zAlias;
  GMember *aMem; int nMem, nMemAlloc;
  int nCol;
} GJoin;

enum {                      /* Scope.eAgg */
  SAGG_CORRELATED = 0,      /* one correlated subquery per aggregate */
  SAGG_ALL,                 /* grouped over every owner */
  SAGG_RESTRICTED           /* grouped over the keys of the view's rows */
};

struct Scope {
  quay_model *pModel;
  const char *zAlias;       /* the scope's row */
  const char *zPivot;       /* custom pivot row of a related set, or NULL */
  QsView *pView;            /* filters and owner scope, or NULL */
  SJoin *aJoin; int nJoin, nJoinAlloc;
  ENode **apRoot; int nRoot, nRootAlloc;
  ExprCtx ctx;              /* this scope's row, for its expressions */
  ExprCtx *pRootCtx;        /* annotations and quay.F of its leaves */
  int eAgg;                 /* SAGG_*: how its row's aggregates are written */
  int bAggLimit;            /* SAGG_RESTRICTED: the keys are those of the
                            ** view's order, limit and offset */
  int bAggFrozen;           /* no more grouped joins: the others stay
                            ** correlated (an order on an aggregate with a
                            ** limit groups only what the order and the
                            ** filters need) */
  GJoin *aGJoin; int nGJoin, nGJoinAlloc;
  const char *zKeys;        /* SAGG_RESTRICTED: the WITH query of the
                            ** view's rows the grouped joins read their
                            ** keys from (quay__scope_keys_with), or NULL */
};

static void emit_node(Build *b, ENode *n);
static void emit_and(Build *b, ENode **ap, int n);
static void emit_has(Build *b, Cond *c, int iHop, const char *zBase);
static void emit_expr_row(Build *b, void *pCtx, Expr *e);
static void scope_prepare_expr(Build *b, ExprCtx *x, Expr *e);
static void agg_register(Build *b, ExprCtx *x, Expr *e, int eFn);
static int agg_ref(Build *b, ExprCtx *x, Expr *e, int eFn);

/* Same primitive hop of the same relation: leaves on it share a row. */
static int same_hop(const Hop *a, const Hop *b) {
  return a->pRel == b->pRel && a->pNamed == b->pNamed &&
         a->pFrom == b->pFrom && a->pTo == b->pTo &&
         a->pFromKey == b->pFromKey && a->pToKey == b->pToKey &&
         a->zVia == b->zVia && a->zViaFrom == b->zViaFrom;
}

/* The FROM part of a hop's semi-join, after "IN (SELECT ": the column
** that links back to the source row, from the target table, through the
** pivot table when the hop has one (zV is then the pivot's alias). */
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
    quay__via_soft_term(&b->sql, h, zV, " AND ");
  } else {
    col(b, zT, h->pToKey->zCol);
    cat(b, " FROM ");
    ident(b, h->pTo->zTable);
    cat(b, " AS ");
    ident(b, zT);
  }
}

/* {======= Emission trees */

static ENode *enode_new(Build *b, int eOp) {
  ENode *n = quay__arena_alloc(b->pArena, sizeof(*n));
  if (n) {
    memset(n, 0, sizeof(*n));
    n->eOp = eOp;
  }
  return n;
}

/* Append child to n's children (arena growth by copying). */
static int enode_add(Build *b, ENode *n, ENode *pChild, int *pnAlloc) {
  if (n->n == *pnAlloc) {
    int nNew = *pnAlloc ? *pnAlloc * 2 : 4;
    ENode **a = quay__arena_alloc(b->pArena, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return QUAY_ENOMEM;
    if (n->n) memcpy(a, n->ap, sizeof(*a) * (size_t)n->n);
    n->ap = a;
    *pnAlloc = nNew;
  }
  n->ap[n->n++] = pChild;
  return QUAY_OK;
}

/*
** The emission tree of c for scope s.  AND inside AND and OR inside OR are
** flattened, and one-child groups collapse, so harmless nesting costs no
** SQL depth; the depth that remains is bounded by QUAY_MAX_COND_DEPTH.
*/
static ENode *enode_build(Build *b, Scope *s, Cond *c, int iDepth) {
  ENode *n;
  int i, nAlloc = 0;
  if (iDepth > QUAY_MAX_COND_DEPTH) {
    if (b->rc == QUAY_OK) {
      b->rc = quay__err(b->pErr, QUAY_EMISUSE,
                        "conditions are nested more than %d levels deep "
                        "(quay.any inside quay.any ...); flatten them",
                        QUAY_MAX_COND_DEPTH);
    }
    return NULL;
  }
  n = enode_new(b, c->eOp);
  if (n == NULL) return NULL;
  n->eOp = c->eOp;
  n->c = c;
  switch (c->eOp) {
    case CN_LEAF:
      n->zBase = c->isPivot ? s->zPivot : s->zAlias;
      n->pScope = s;
      n->xExpr = emit_expr_row;
      n->pCtx = s->pRootCtx;
      n->pRootScope = s->pRootCtx->pScope;
      if (n->zBase == NULL && QUAY_NEVER(1)) return NULL;
      return n;
    case CN_HAS:
      n->zBase = c->isPivot ? s->zPivot : s->zAlias;
      n->pScope = s;
      return n;
    default:
      break;
  }
  for (i = 0; i < c->nChild; i++) {
    ENode *k = enode_build(b, s, c->apChild[i], iDepth + 1);
    if (k == NULL) return NULL;
    if (k->eOp == CN_AND && n->eOp == CN_AND && !k->bFromAny) {
      /* A conditions table nested in a table: rows of its own (a table
      ** inside quay.any shares the enclosing table's rows instead). */
      k->bTable = 1;
      if (enode_add(b, n, k, &nAlloc)) return NULL;
    } else if (k->eOp == CN_AND && n->eOp == CN_AND) {
      int j;                          /* quay.any{ {a, b} }: a and b */
      for (j = 0; j < k->n; j++) {
        if (enode_add(b, n, k->ap[j], &nAlloc)) return NULL;
      }
    } else if (k->eOp == CN_OR && n->eOp == CN_OR) {
      int j;
      for (j = 0; j < k->n; j++) {
        if (enode_add(b, n, k->ap[j], &nAlloc)) return NULL;
      }
    } else if (enode_add(b, n, k, &nAlloc)) {
      return NULL;
    }
  }
  if (n->eOp == CN_OR && n->n == 1) {
    /* One alternative of a quay.any is part of the enclosing table. */
    if (n->ap[0]->eOp == CN_AND) n->ap[0]->bFromAny = 1;
    return n->ap[0];
  }
  if (n->eOp == CN_AND && n->n == 1 && n->ap[0]->eOp == CN_AND) {
    /* A table of one table.  A table of one leaf or one quay.any stays a
    ** table: its to-many rows are its own, and the alternatives of its
    ** quay.any share them, not the enclosing table's. */
    n->ap[0]->bFromAny |= n->bFromAny;
    return n->ap[0];
  }
  return n;
}

/* }======= */

/* {======= Scopes: to-one joins */

/* The alias of the LEFT JOIN of hop h from zParent in s (added once). */
static const char *scope_join(Build *b, Scope *s, const char *zParent,
                              const Hop *h) {
  int i;
  for (i = 0; i < s->nJoin; i++) {
    if (s->aJoin[i].zParent == zParent && same_hop(s->aJoin[i].pHop, h)) {
      return s->aJoin[i].zAlias;
    }
  }
  if (s->nJoin == s->nJoinAlloc) {
    int nNew = s->nJoinAlloc ? s->nJoinAlloc * 2 : 4;
    SJoin *a = quay__arena_alloc(b->pArena, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return NULL;
    if (s->nJoin) memcpy(a, s->aJoin, sizeof(*a) * (size_t)s->nJoin);
    s->aJoin = a;
    s->nJoinAlloc = nNew;
  }
  s->aJoin[s->nJoin].zParent = zParent;
  s->aJoin[s->nJoin].pHop = h;
  s->aJoin[s->nJoin].zAlias = quay__alias(b);
  if (s->aJoin[s->nJoin].zAlias == NULL) return NULL;
  return s->aJoin[s->nJoin++].zAlias;
}

/* Non-0 when a leaf's last hop is a belongs_to whose key column in the
** source row answers the leaf (a relation test or the referenced key). */
static int leaf_shortcut(const ENode *n) {
  const Cond *c = n->c;
  const Hop *h = &c->aHop[n->iHop];
  Rel *fwd;
  if (n->iHop != c->nHop - 1 || h->toMany || h->zVia) return 0;
  fwd = h->pRel->eKind == QUAY_R_REVERSE ? h->pRel->pFwd : h->pRel;
  if (h->pRel->eKind == QUAY_R_REVERSE ||
      (fwd->eKind != QUAY_R_BELONGS_TO && fwd->eKind != QUAY_R_ONE_TO_ONE)) {
    return 0;
  }
  /* Also when the target soft-deletes: a test of the related key (author
  ** = u, author__in, author__isnull, author__id) compares the column, as
  ** Django does and as u.posts does; other fields read the live row. */
  return c->bRelTest || c->pField == h->pToKey;
}

/* Pass 1: walk the leading to-one hops of s's leaves as joins. */
static void scope_prepare(Build *b, Scope *s, ENode *n) {
  int i;
  switch (n->eOp) {
    case CN_LEAF:
      if (n->pRootScope == s && n->xExpr == emit_expr_row) {
        if (n->c->pAnn) scope_prepare_expr(b, n->pCtx, n->c->pAnn->pExpr);
        if (n->c->pExpr) scope_prepare_expr(b, n->pCtx, n->c->pExpr);
      }
      if (n->pScope != s) return;
      while (n->iHop < n->c->nHop && !n->c->aHop[n->iHop].toMany) {
        const char *z;
        if (leaf_shortcut(n)) {
          n->bShortcut = 1;
          return;
        }
        z = scope_join(b, s, n->zBase, &n->c->aHop[n->iHop]);
        if (z == NULL) return;
        n->zBase = z;
        n->iHop++;
      }
      return;
    case CN_HAS:
      return;
    default:
      for (i = 0; i < n->n; i++) scope_prepare(b, s, n->ap[i]);
  }
}

/*
** Emit s's joins.  A hop whose target column is unique joins directly; a
** has_one whose foreign key is not declared unique joins the related row
** with the lowest key, so the source row is never repeated.
*/
static void scope_emit_joins(Build *b, Scope *s) {
  int i;
  for (i = 0; i < s->nJoin; i++) {
    const SJoin *j = &s->aJoin[i];
    const Hop *h = j->pHop;
    cat(b, " LEFT JOIN ");
    ident(b, h->pTo->zTable);
    cat(b, " AS ");
    ident(b, j->zAlias);
    cat(b, " ON ");
    if (quay__hop_unique(h)) {
      col(b, j->zAlias, h->pToKey->zCol);
      cat(b, " = ");
      col(b, j->zParent, h->pFromKey->zCol);
      soft_term(b, h->pTo, j->zAlias, " AND ");
    } else {
      Field *pk = h->pTo->apField[h->pTo->iPk];
      char *zX = quay__alias(b);
      if (zX == NULL) return;
      col(b, j->zAlias, pk->zCol);
      cat(b, " = (SELECT MIN(");
      col(b, zX, pk->zCol);
      cat(b, ") FROM ");
      ident(b, h->pTo->zTable);
      cat(b, " AS ");
      ident(b, zX);
      cat(b, " WHERE ");
      col(b, zX, h->pToKey->zCol);
      cat(b, " = ");
      col(b, j->zParent, h->pFromKey->zCol);
      soft_term(b, h->pTo, zX, " AND ");
      cat(b, ")");
    }
  }
}

/* A new scope for the row zAlias of model m (arena memory). */
static Scope *scope_alloc(Build *b, quay_model *m, const char *zAlias,
                          const char *zPivot) {
  Scope *s = quay__arena_alloc(b->pArena, sizeof(*s));
  if (s == NULL) return NULL;
  memset(s, 0, sizeof(*s));
  s->pModel = m;
  s->zAlias = zAlias;
  s->zPivot = zPivot;
  s->ctx.pScope = s;
  s->ctx.zBase = zAlias;
  s->ctx.zPivot = zPivot;
  s->pRootCtx = &s->ctx;
  return s;
}

/* Add the emission tree of c (wrapped in NOT when bNot) as a root. */
static int scope_add_root(Build *b, Scope *s, Cond *c, int bNot) {
  ENode *n = enode_build(b, s, c, 0);
  if (n == NULL) return -1;
  if (bNot) {
    ENode *pNot = enode_new(b, CN_NOT);
    int nAlloc = 0;
    if (pNot == NULL) return -1;
    pNot->eOp = CN_NOT;
    if (enode_add(b, pNot, n, &nAlloc)) return -1;
    n = pNot;
  }
  if (s->nRoot == s->nRootAlloc) {
    int nNew = s->nRootAlloc ? s->nRootAlloc * 2 : 4;
    ENode **a = quay__arena_alloc(b->pArena, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return -1;
    if (s->nRoot) memcpy(a, s->apRoot, sizeof(*a) * (size_t)s->nRoot);
    s->apRoot = a;
    s->nRootAlloc = nNew;
  }
  s->apRoot[s->nRoot++] = n;
  return QUAY_OK;
}

static int agg_mode(const QsView *v, int eAggs, int *pbLimit,
                    int *pbOrderOnly);

/* A scope of view v (see quay__scope_new) whose aggregates are written as
** eAggs (QUAY_AGGS_*) says. */
static Scope *scope_new_agg(Build *b, QsView *v, quay_model *m,
                            const char *zAlias, const char *zPivot,
                            int eAggs) {
  Scope *s = scope_alloc(b, v ? v->pModel : m, zAlias, zPivot);
  int i, bOrderOnly = 0;
  if (s == NULL) return NULL;
  s->pView = v;
  s->eAgg = agg_mode(v, eAggs, &s->bAggLimit, &bOrderOnly);
  for (i = 0; bOrderOnly && i < v->pOrder->nOrder; i++) {
    scope_prepare_expr(b, &s->ctx, v->pOrder->apOrder[i]);
  }
  for (i = 0; v && i < v->nFilter; i++) {
    if (scope_add_root(b, s, v->apFilter[i]->pCond,
                       v->apFilter[i]->bExclude)) {
      return NULL;
    }
    scope_prepare(b, s, s->apRoot[s->nRoot - 1]);
  }
  s->bAggFrozen = bOrderOnly;
  return s;
}

Scope *quay__scope_new(Build *b, QsView *v, quay_model *m,
                       const char *zAlias, const char *zPivot) {
  return scope_new_agg(b, v, m, zAlias, zPivot, QUAY_AGGS_CORRELATED);
}

void quay__scope_joins(Build *b, Scope *s) {
  if (s) scope_emit_joins(b, s);
}
/* }======= */

/* {======= Emission */

/*
** The first hop of the relation a relation test asks about: a
** quay.through relation spans several hops, all tested together.
*/
static int rel_test_start(const Cond *c) {
  return c->iLastRel;
}

/* The to-many hop a leaf is bound through at its position, or NULL: its
** next hop when that is to-many and not the relation a test asks about. */
static const Hop *leaf_binding(const ENode *n) {
  const Cond *c = n->c;
  if (n->bShortcut || n->iHop >= c->nHop) return NULL;
  if (c->bRelTest && n->iHop >= rel_test_start(c)) return NULL;
  return &c->aHop[n->iHop];
}

/* A binding: a to-many hop from one alias. */
typedef struct Binding {
  const char *zBase;
  const Hop *pHop;
} Binding;

static int binding_eq(const Binding *a, const Binding *b) {
  return a->zBase == b->zBase && same_hop(a->pHop, b->pHop);
}

/* Collect the bindings n refers to (not inside NOT or HAS) into a, once
** each; returns the new count (at most nMax). */
static int node_bindings(const ENode *n, Binding *a, int k, int nMax) {
  int i;
  switch (n->eOp) {
    case CN_LEAF: {
      Binding x;
      x.pHop = leaf_binding(n);
      if (x.pHop == NULL) return k;
      x.zBase = n->zBase;
      for (i = 0; i < k; i++) {
        if (binding_eq(&a[i], &x)) return k;
      }
      if (k < nMax) a[k++] = x;
      return k;
    }
    case CN_AND:
      if (n->bTable) return k;
      /* fall through */
    case CN_OR:
      for (i = 0; i < n->n; i++) k = node_bindings(n->ap[i], a, k, nMax);
      return k;
    default:
      return k;
  }
}

/* Move the leaves of n bound through x one hop on, into scope s2. */
static void node_advance(ENode *n, const Binding *x, const char *zT,
                         Scope *s2) {
  int i;
  switch (n->eOp) {
    case CN_LEAF: {
      Binding y;
      y.pHop = leaf_binding(n);
      if (y.pHop == NULL) return;
      y.zBase = n->zBase;
      if (!binding_eq(&y, x)) return;
      n->iHop++;
      n->zBase = zT;
      n->pScope = s2;
      return;
    }
    case CN_AND:
      if (n->bTable) return;
      /* fall through */
    case CN_OR:
      for (i = 0; i < n->n; i++) node_advance(n->ap[i], x, zT, s2);
      return;
    default:
      return;
  }
}

/* Non-0 when every node of ap is a leaf that ends right after hop x
** comparing the key the pivot table holds (`tags = t`, `tags__in`). */
static int via_only(ENode **ap, int n, const Binding *x) {
  int i;
  /* Also when the target soft-deletes: the key the pivot holds answers,
  ** as for a to-one key test (leaf_shortcut) and as tag.posts does. */
  if (x->pHop->zVia == NULL) return 0;
  for (i = 0; i < n; i++) {
    const ENode *e = ap[i];
    Binding y;
    if (e->eOp != CN_LEAF) return 0;
    y.pHop = leaf_binding(e);
    if (y.pHop == NULL) return 0;
    y.zBase = e->zBase;
    if (!binding_eq(&y, x) || e->iHop + 1 != e->c->nHop ||
        e->c->pField != x->pHop->pToKey) {
      return 0;
    }
  }
  return 1;
}

/*
** exists a row along binding x for which the AND of ap[0..n) holds:
**   base.from IN (SELECT link FROM <hop> <joins> WHERE <ap>)
*/
static void emit_exists(Build *b, ENode **ap, int n, const Binding *x) {
  const Hop *h = x->pHop;
  char *zFrom = col_expr(b, x->zBase, h->pFromKey->zCol);
  if (zFrom == NULL) return;
  if (via_only(ap, n, x)) {
    /* tags = t: only the pivot table is needed. */
    char *zV = quay__alias(b), *zVTo;
    int i;
    if (zV == NULL) return;
    zVTo = col_expr(b, zV, h->zViaTo);
    if (zVTo == NULL) return;
    quay__str_printf(&b->sql, "%s IN (SELECT ", zFrom);
    col(b, zV, h->zViaFrom);
    cat(b, " FROM ");
    ident(b, h->zVia);
    cat(b, " AS ");
    ident(b, zV);
    cat(b, " WHERE ");
    if (quay__via_soft_term(&b->sql, h, zV, "")) cat(b, " AND ");
    for (i = 0; i < n; i++) {
      Operand o;
      memset(&o, 0, sizeof(o));
      o.zCol = zVTo;
      if (i) cat(b, " AND ");
      emit_final(b, ap[i]->c, &o, ap[i]->xExpr, ap[i]->pCtx);
    }
    cat(b, ")");
    return;
  }
  {
    char *zT = quay__alias(b);
    char *zV = h->zVia ? quay__alias(b) : NULL;
    Scope *s2;
    int i;
    if (zT == NULL || (h->zVia && zV == NULL)) return;
    s2 = scope_alloc(b, h->pTo, zT, NULL);
    if (s2 == NULL) return;
    quay__str_printf(&b->sql, "%s IN (SELECT ", zFrom);
    hop_source(b, h, zT, zV);
    for (i = 0; i < n; i++) node_advance(ap[i], x, zT, s2);
    for (i = 0; i < n; i++) scope_prepare(b, s2, ap[i]);
    scope_emit_joins(b, s2);
    cat(b, " WHERE ");
    if (soft_term(b, h->pTo, zT, "")) cat(b, " AND ");
    emit_and(b, ap, n);
    if (h->toNullable) {
      cat(b, " AND ");
      col(b, zT, h->pToKey->zCol);
      cat(b, " IS NOT NULL");
    }
    cat(b, ")");
  }
}

/* One leaf at its position. */
static void emit_leaf(Build *b, ENode *n) {
  Cond *c = n->c;
  const Hop *h = n->iHop < c->nHop ? &c->aHop[n->iHop] : NULL;
  char *zExpr;
  Operand o;
  memset(&o, 0, sizeof(o));
  quay__operand_leaf(&o, c);
  if (n->bShortcut) {
    zExpr = col_expr(b, n->zBase, h->pFromKey->zCol);
    if (zExpr == NULL) return;
    if (c->bRelTest) {
      quay__str_printf(&b->sql, "%s IS %sNULL", zExpr,
                       c->val.u.b ? "" : "NOT ");
    } else {
      o.zCol = zExpr;
      emit_final(b, c, &o, n->xExpr, n->pCtx);
    }
    return;
  }
  if (h == NULL) {
    if (c->bRelTest) {
      /* The row reached through LEFT JOINs: missing when its key is. */
      quay_model *m = c->aHop[c->nHop - 1].pTo;
      zExpr = col_expr(b, n->zBase, m->apField[m->iPk]->zCol);
      if (zExpr == NULL) return;
      quay__str_printf(&b->sql, "%s IS %sNULL", zExpr,
                       c->val.u.b ? "" : "NOT ");
    } else if (c->pAnn) {
      /* An annotation: its expression, written where the leaf's query
      ** set's row is (inline in WHERE, or over groups in HAVING). */
      o.pExpr = c->pAnn->pExpr;
      o.xExpr = n->xExpr;
      o.pCtx = n->pCtx;
      emit_final(b, c, &o, n->xExpr, n->pCtx);
    } else {
      o.zCol = col_expr(b, n->zBase, c->pField->zCol);
      if (o.zCol) emit_final(b, c, &o, n->xExpr, n->pCtx);
    }
    return;
  }
  if (c->bRelTest && n->iHop >= rel_test_start(c)) {
    /* Existence of the related set along the tested relation's hops. */
    if (c->val.u.b) cat(b, "NOT COALESCE(");
    emit_has(b, c, n->iHop, n->zBase);
    if (c->val.u.b) {
      cat(b, ", ");
      cat(b, b->pDia->zFalse);
      cat(b, ")");
    }
    return;
  }
  {
    Binding x;
    x.zBase = n->zBase;
    x.pHop = h;
    emit_exists(b, &n, 1, &x);
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

/* Union-find root. */
static int uf_root(int *aUp, int i) {
  while (aUp[i] != i) i = aUp[i] = aUp[aUp[i]];
  return i;
}

/*
** AND of ap[0..n).  A binding that two or more children refer to is
** quantified here, once, over every child connected to it (children are
** connected when they share such a binding); the rest are emitted as they
** are (a lone leaf or OR quantifies its own bindings inside).
*/
static void emit_and(Build *b, ENode **ap, int n) {
  enum { MAXB = 64 };
  Binding aAll[MAXB], aOne[MAXB];
  int nAll = 0, i, j, k, nTerm = 0;
  int *aUp;
  uint64_t *aMask, mHoist = 0;
  int aCount[MAXB];
  if (n == 0) {
    cat(b, b->pDia->zTrue);
    return;
  }
  aUp = quay__arena_alloc(b->pArena, sizeof(int) * (size_t)n);
  aMask = quay__arena_alloc(b->pArena, sizeof(uint64_t) * (size_t)n);
  if (aUp == NULL || aMask == NULL) return;
  memset(aCount, 0, sizeof(aCount));
  for (i = 0; i < n; i++) {
    int nOne = node_bindings(ap[i], aOne, 0, MAXB);
    aUp[i] = i;
    aMask[i] = 0;
    for (j = 0; j < nOne; j++) {
      for (k = 0; k < nAll && !binding_eq(&aAll[k], &aOne[j]); k++) {}
      if (k == nAll) {
        if (nAll == MAXB) {
          if (b->rc == QUAY_OK) {
            b->rc = quay__err(b->pErr, QUAY_EMISUSE, "more than %d "
                              "relation paths in one conditions table; "
                              "split it into several filter calls", MAXB);
          }
          return;
        }
        aAll[nAll++] = aOne[j];
      }
      aMask[i] |= (uint64_t)1 << k;
      aCount[k]++;
    }
  }
  for (k = 0; k < nAll; k++) {
    if (aCount[k] >= 2) mHoist |= (uint64_t)1 << k;
  }
  for (i = 0; i < n; i++) {
    for (j = 0; j < i; j++) {
      if (aMask[i] & aMask[j] & mHoist) aUp[uf_root(aUp, i)] = uf_root(aUp, j);
    }
  }
  for (i = 0; i < n; i++) nTerm += uf_root(aUp, i) == i;
  k = nTerm;                            /* terms of the chain */
  nTerm = 0;
  if (n > 1) cat(b, "(");
  for (i = 0; i < n; i++) {
    uint64_t m = 0;
    int nG = 0, kB;
    ENode **aG;
    if (uf_root(aUp, i) != i) continue;   /* emitted with its root */
    chain_sep(b, nTerm++, k, " AND ");
    for (j = 0; j < n; j++) {
      if (uf_root(aUp, j) == i) {
        m |= aMask[j] & mHoist;
        nG++;
      }
    }
    if (m == 0) {
      emit_node(b, ap[i]);
      continue;
    }
    aG = quay__arena_alloc(b->pArena, sizeof(ENode *) * (size_t)nG);
    if (aG == NULL) return;
    nG = 0;
    for (j = 0; j < n; j++) {
      if (uf_root(aUp, j) == i) aG[nG++] = ap[j];
    }
    for (kB = 0; !(m & ((uint64_t)1 << kB)); kB++) {}
    emit_exists(b, aG, nG, &aAll[kB]);
  }
  chain_end(b, nTerm, k);
  if (n > 1) cat(b, ")");
}

static void emit_node(Build *b, ENode *n) {
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
  switch (n->eOp) {
    case CN_LEAF:
      emit_leaf(b, n);
      break;
    case CN_HAS:
      emit_has(b, n->c, 0, n->zBase);
      break;
    case CN_NOT:
      cat(b, "NOT COALESCE(");
      emit_and(b, n->ap, n->n);
      cat(b, ", ");
      cat(b, b->pDia->zFalse);
      cat(b, ")");
      break;
    case CN_AND:
      emit_and(b, n->ap, n->n);
      break;
    case CN_OR:
      if (n->n == 0) {
        cat(b, b->pDia->zFalse);
        break;
      }
      cat(b, "(");
      for (i = 0; i < n->n; i++) {
        chain_sep(b, i, n->n, " OR ");
        emit_node(b, n->ap[i]);
      }
      chain_end(b, n->n, n->n);
      cat(b, ")");
      break;
  }
  b->nCondDepth--;
}
/* }======= */

/*
** {==================================================================
** Expressions, per row
** ===================================================================
** A bound expression (expr.c) written for one row of the query set's
** model: columns across to-one relations are LEFT JOINs of the row's
** scope (registered by scope_prepare_expr before the FROM is written),
** annotations are written where they are used, and an aggregate is a
** correlated subquery over its relation path:
**
**   quay.sum("posts__views", { filter = { posts__published = true } })
**   (SELECT SUM("t3"."views") FROM "posts" AS "t3"
**     WHERE "t3"."author_id" = "t0"."id" AND "t3"."published" = ?)
**
** Each aggregate is computed on its own, so annotations over several
** to-many paths never multiply each other (no fan-out join).  A path that
** can reach one row twice (quay.through) counts each related row once per
** owner (distinct key pairs).
*/

/*
** The tables of a hop chain, from hop 0's far side: "to" AS t, or "via"
** AS v JOIN "to" AS t, then a JOIN per later hop.  azT[i] gets the alias
** of hop i's target; *pzLink the column of the first table that holds the
** owner's key (what hop 0 matches against pFromKey).  pSoft, when given,
** gets " AND t.deleted_at IS NULL" for the targets of hops 0..nSoft-1
** that soft-delete: a hidden row hides what is reached through it.
*/
void quay__emit_chain(Build *b, const Hop *aHop, int nHop, char **azT,
                      char **pzVia0, char **pzLink, Str *pSoft, int nSoft) {
  int j;
  const char *zPrev = NULL;
  Str s;
  *pzLink = NULL;
  if (pzVia0) *pzVia0 = NULL;
  for (j = 0; j < nHop; j++) {
    const Hop *h = &aHop[j];
    char *zV = h->zVia ? quay__alias(b) : NULL;
    char *zT = quay__alias(b);
    azT[j] = zT;
    if ((h->zVia && zV == NULL) || zT == NULL) return;
    if (j == 0) {
      quay__str_init(&s);
      if (h->zVia) {
        ident(b, h->zVia);
        cat(b, " AS ");
        ident(b, zV);
        quay__str_col(&s, zV, h->zViaFrom);
        if (pzVia0) *pzVia0 = zV;
      } else {
        ident(b, h->pTo->zTable);
        cat(b, " AS ");
        ident(b, zT);
        quay__str_col(&s, zT, h->pToKey->zCol);
      }
      *pzLink = s.oom ? NULL : quay__arena_strdup(b->pArena, s.z, s.n);
      quay__str_free(&s);
      if (*pzLink == NULL) {
        b->pArena->oom = 1;
        return;
      }
    } else if (h->zVia) {
      cat(b, " JOIN ");
      ident(b, h->zVia);
      cat(b, " AS ");
      ident(b, zV);
      cat(b, " ON ");
      col(b, zV, h->zViaFrom);
      cat(b, " = ");
      col(b, zPrev, h->pFromKey->zCol);
    }
    if (j > 0 || h->zVia) {
      cat(b, " JOIN ");
      ident(b, h->pTo->zTable);
      cat(b, " AS ");
      ident(b, zT);
      cat(b, " ON ");
      col(b, zT, h->pToKey->zCol);
      cat(b, " = ");
      if (h->zVia) {
        col(b, zV, h->zViaTo);
        quay__via_soft_term(&b->sql, h, zV, " AND ");
      } else {
        col(b, zPrev, h->pFromKey->zCol);
      }
    }
    if (pSoft && j < nSoft && h->pTo->pDeletedAt) {
      quay__str_cat(pSoft, " AND ");
      quay__str_col(pSoft, zT, h->pTo->pDeletedAt->zCol);
      quay__str_cat(pSoft, " IS NULL");
    }
    zPrev = zT;
  }
}

int quay__chain_repeats(const Hop *aHop, int nHop) {
  int i, bMany = 0;
  for (i = 0; i < nHop; i++) {
    if (bMany && (!aHop[i].toMany || aHop[i].zVia)) return 1;
    if (aHop[i].toMany) bMany = 1;
  }
  return 0;
}

/* Non-0 when a column path ends at the key a forward belongs_to holds in
** the row before it: the local foreign key column answers, no join. */
static int col_shortcut(const PathRes *p) {
  const Hop *h;
  Rel *fwd;
  if (p->nHop == 0) return 0;
  h = &p->aHop[p->nHop - 1];
  fwd = h->pRel->eKind == QUAY_R_REVERSE ? h->pRel->pFwd : h->pRel;
  return h->pRel->eKind != QUAY_R_REVERSE && h->zVia == NULL &&
         (fwd->eKind == QUAY_R_BELONGS_TO || fwd->eKind == QUAY_R_ONE_TO_ONE) &&
         p->pField == h->pToKey;       /* soft-deleted target too (Django) */
}

/*
** Non-0 when aggregate e's path ends at the key a forward to-one last hop
** holds in the row before it (count("author"), "author__id"): the key is
** that row's own data, so a soft-deleted target does not hide it, as in
** filters, values() and aggregate() (col_shortcut).  Its fields do.
*/
static int agg_key_only(const Expr *e) {
  const PathRes *p = &e->path;
  PathRes q;
  if (p->nHop == 0 || p->isPivot) return 0;
  q = *p;
  if (q.pField == NULL) q.pField = p->aHop[p->nHop - 1].pToKey;
  return col_shortcut(&q);
}

/* Non-0 when a leaf of an aggregate's filter was moved onto the row
** zLast (agg_filter_advance): it reads that row's fields.  Any other node
** (where_has) counts as reading it. */
static int agg_filter_on(const ENode *n, const char *zLast) {
  int i;
  if (n->eOp == CN_LEAF) return n->zBase == zLast;
  if (n->eOp != CN_AND && n->eOp != CN_OR && n->eOp != CN_NOT) return 1;
  for (i = 0; i < n->n; i++) {
    if (agg_filter_on(n->ap[i], zLast)) return 1;
  }
  return 0;
}

/* The alias of the row a column path reaches (joins of x's scope; added
** when bCreate, else only found).  NULL when missing. */
static const char *col_alias(Build *b, ExprCtx *x, const PathRes *p,
                             int bCreate) {
  const char *z = p->isPivot ? x->zPivot : x->zBase;
  int i, n = p->nHop - col_shortcut(p);
  for (i = 0; i < n && z; i++) {
    const Hop *h = &p->aHop[i];
    if (bCreate) {
      z = scope_join(b, x->pScope, z, h);
    } else {
      int k;
      const char *zFound = NULL;
      for (k = 0; k < x->pScope->nJoin; k++) {
        if (x->pScope->aJoin[k].zParent == z &&
            same_hop(x->pScope->aJoin[k].pHop, h)) {
          zFound = x->pScope->aJoin[k].zAlias;
          break;
        }
      }
      z = zFound;
    }
  }
  return z;
}

/* Register the joins e's columns need in x's scope (before its FROM). */
static void scope_prepare_expr(Build *b, ExprCtx *x, Expr *e) {
  for (; e; e = e->pB) {
    switch (e->eOp) {
      case EX_COL:
      case EX_TRUNC:
        col_alias(b, x, &e->path, 1);
        return;
      case EX_REF:
        scope_prepare_expr(b, x, e->pRef->pExpr);
        return;
      case EX_ADD: case EX_SUB: case EX_MUL: case EX_DIV:
        scope_prepare_expr(b, x, e->pA);
        break;                          /* then e->pB */
      case EX_AGG:
        agg_register(b, x, e, e->eFunc);  /* a grouped join, or none */
        return;
      default:
        return;                         /* constants */
    }
  }
}

void quay__scope_prepare_expr(Build *b, Scope *s, Expr *e) {
  if (s && e) scope_prepare_expr(b, &s->ctx, e);
}

/* A column of a bound EX_COL/EX_TRUNC path, as text. */
static void emit_col(Build *b, ExprCtx *x, const PathRes *p) {
  const char *z = col_alias(b, x, p, 0);
  const Field *f = col_shortcut(p) ? p->aHop[p->nHop - 1].pFromKey
                                   : p->pField;
  if (z == NULL) {
    if (b->rc == QUAY_OK) {
      b->rc = quay__err(b->pErr, QUAY_EMISUSE, "internal: a column of an "
                        "expression was not prepared");
    }
    return;
  }
  col(b, z, f->zCol);
}

/*
** Non-0 when the row a to-one hop reaches always exists: a forward
** belongs_to / one_to_one whose key column is NOT NULL (the foreign key
** constraint then names an existing row) and whose target does not soft-
** delete (a hidden row LEFT JOINs as NULLs).
*/
static int hop_always(const Hop *h) {
  Rel *fwd = h->pRel->eKind == QUAY_R_REVERSE ? h->pRel->pFwd : h->pRel;
  return !h->toMany && h->zVia == NULL && !h->fromNullable &&
         h->pRel->eKind != QUAY_R_REVERSE &&
         (fwd->eKind == QUAY_R_BELONGS_TO || fwd->eKind == QUAY_R_ONE_TO_ONE) &&
         h->pTo->pDeletedAt == NULL;
}

int quay__expr_notnull(const Expr *e) {
  int i, k, n;
  const Field *f;
  for (i = 0; e && i < 256; i++) {
    switch (e->eOp) {
      case EX_COL:
      case EX_TRUNC:
        n = e->path.nHop - col_shortcut(&e->path);
        for (k = 0; k < n; k++) {
          if (!hop_always(&e->path.aHop[k])) return 0;
        }
        f = col_shortcut(&e->path) ? e->path.aHop[e->path.nHop - 1].pFromKey
                                   : e->path.pField;
        return f && !(f->mFlags & QUAY_F_NULL);
      case EX_VALUE:
        return e->val.type != QUAY_NULL;
      case EX_REF:
        e = e->pRef ? e->pRef->pExpr : NULL;
        continue;
      case EX_AGG:
        /* COUNT and EXISTS are never NULL; the others are NULL over no
        ** rows unless they have a default. */
        return e->eFunc == QUAY_AGG_COUNT || e->eFunc == QUAY_AGG_EXISTS ||
               (e->bDefault && e->dflt.type != QUAY_NULL);
      case EX_ADD: case EX_SUB: case EX_MUL:
        if (!quay__expr_notnull(e->pA)) return 0;
        e = e->pB;
        continue;
      default:
        return 0;                       /* EX_DIV: x / 0 is NULL (SQLite) */
    }
  }
  return 0;
}

void quay__emit_order_dir(Build *b, const Expr *e, int bDesc) {
  cat(b, bDesc ? " DESC" : " ASC");
  if (!quay__expr_notnull(e)) {
    cat(b, bDesc ? b->pDia->zDescNulls : b->pDia->zAscNulls);
  }
}

static void emit_agg_row(Build *b, ExprCtx *x, Expr *e, int eFn,
                         void (*xOwners)(Build *, void *), void *pOwners);

static void emit_expr_row(Build *b, void *pCtx, Expr *e) {
  ExprCtx *x = pCtx;
  switch (e->eOp) {
    case EX_COL:
      emit_col(b, x, &e->path);
      break;
    case EX_TRUNC: {
      const char *const *az = e->eType == QUAY_T_DATE
                                  ? b->pDia->azTruncDate[e->eUnit]
                                  : b->pDia->azTrunc[e->eUnit];
      cat(b, az[0]);
      emit_col(b, x, &e->path);
      cat(b, az[1]);
      break;
    }
    case EX_VALUE:
      quay__build_param(b, &e->val);
      break;
    case EX_REF:
      emit_expr_row(b, pCtx, e->pRef->pExpr);
      break;
    case EX_AGG:
      emit_agg_row(b, x, e, e->eFunc, NULL, NULL);
      break;
    default:
      quay__emit_arith(b, e, emit_expr_row, pCtx);
      break;
  }
}

void quay__emit_expr_row(Build *b, Scope *s, Expr *e) {
  emit_expr_row(b, &s->ctx, e);
}

int quay__agg_owner_rows(const Expr *e) {
  return e->pFilter && e->path.nHop > 0 && !e->path.isPivot;
}

void quay__emit_agg_row(Build *b, Scope *s, Expr *e, int eFn,
                        void (*xOwners)(Build *, void *), void *pOwners) {
  if (s == NULL) {
    /* Owners given by xOwners: no outer row to correlate with.  A filter
    ** may read the owner's row (K12): it is joined under an alias. */
    const char *zOwn = "";
    if (xOwners && quay__agg_owner_rows(e)) {
      zOwn = quay__alias(b);
      if (zOwn == NULL) return;
    }
    s = scope_alloc(b, e->path.pModel, zOwn, NULL);
    if (s == NULL) return;
  }
  emit_agg_row(b, &s->ctx, e, eFn, xOwners, pOwners);
}

ENode *quay__scope_cond(Build *b, Scope *s, Cond *c) {
  ENode *n = enode_build(b, s, c, 0);
  if (n) scope_prepare(b, s, n);
  return n;
}

void quay__emit_cond(Build *b, ENode *n) {
  if (n) emit_node(b, n);
}

void quay__emit_compare(Build *b, Cond *c, const Operand *x,
                        void (*xRight)(Build *, void *, Expr *),
                        void *pRight) {
  emit_final(b, c, x, xRight, pRight);
}

/*
** An expression of qs:update's SET: columns of the updated row are
** "table"."column"; a column across to-one relations is a correlated
** scalar subquery along its hops (UPDATE cannot join).
*/
static void emit_expr_update_rec(Build *b, void *pCtx, Expr *e) {
  quay_model *m = pCtx;
  switch (e->eOp) {
    case EX_VALUE:
      quay__build_param(b, &e->val);
      return;
    case EX_COL:
    case EX_TRUNC: {
      const PathRes *p = &e->path;
      const char *const *azTr = e->eType == QUAY_T_DATE
                                    ? b->pDia->azTruncDate[e->eUnit]
                                    : b->pDia->azTrunc[e->eUnit];
      if (e->eOp == EX_TRUNC) cat(b, azTr[0]);
      if (p->nHop == 0 || col_shortcut(p)) {
        const Field *f = p->nHop ? p->aHop[p->nHop - 1].pFromKey : p->pField;
        if (p->nHop > 1) {
          /* Only the last hop is a shortcut: the rest as a subquery. */
          PathRes q = *p;
          Expr sub;
          q.nHop--;
          q.pField = (Field *)f;
          memset(&sub, 0, sizeof(sub));
          sub.eOp = EX_COL;
          sub.path = q;
          emit_expr_update_rec(b, m, &sub);
        } else {
          col(b, m->zTable, f->zCol);
        }
      } else {
        char *azT[QUAY_MAX_HOPS + 1], *zLink = NULL;
        Str soft;               /* a soft-deleted row on the way reads NULL */
        quay__str_init(&soft);
        cat(b, "(SELECT ");
        {
          /* The chain's aliases are known only once it is written: write
          ** it to the side (no parameters in it). */
          Str save = b->sql, chain;
          quay__str_init(&b->sql);
          quay__emit_chain(b, p->aHop, p->nHop, azT, NULL, &zLink, &soft,
                           p->nHop);
          chain = b->sql;
          b->sql = save;
          if (chain.oom || soft.oom || zLink == NULL) {
            quay__str_free(&chain);
            quay__str_free(&soft);
            b->pArena->oom = 1;
            return;
          }
          col(b, azT[p->nHop - 1], p->pField->zCol);
          cat(b, " FROM ");
          quay__str_append(&b->sql, chain.z ? chain.z : "", chain.n);
          quay__str_free(&chain);
        }
        quay__str_printf(&b->sql, " WHERE %s = ", zLink);
        col(b, m->zTable, p->aHop[0].pFromKey->zCol);
        quay__str_append(&b->sql, soft.z ? soft.z : "", soft.n);
        quay__str_free(&soft);
        cat(b, ")");
      }
      if (e->eOp == EX_TRUNC) cat(b, azTr[1]);
      return;
    }
    case EX_ADD: case EX_SUB: case EX_MUL: case EX_DIV:
      quay__emit_arith(b, e, emit_expr_update_rec, m);
      return;
    default:
      if (b->rc == QUAY_OK) {
        b->rc = quay__err(b->pErr, QUAY_EBAD_LOOKUP, "update: an aggregate "
                          "or annotation cannot be a new value");
      }
      return;
  }
}

void quay__emit_expr_update(Build *b, quay_model *m, const Field *pTarget,
                            Expr *e) {
  quay__emit_as_stored(b, e, pTarget, emit_expr_update_rec, m);
}

/*
** The leaves of an aggregate's filter that follow the aggregate's own
** path refer to the aggregated rows: move them along the chain as far as
** their hops are the chain's (posts__published on the posts being summed).
*/
static void agg_filter_advance(ENode *n, const Hop *aHop, int nHop,
                               char **azT, const char *zOuter) {
  int i;
  switch (n->eOp) {
    case CN_LEAF: {
      const Cond *c = n->c;
      int k = 0, nMax = c->bRelTest ? c->iLastRel : c->nHop;
      if (n->zBase != zOuter || n->iHop != 0) return;
      while (k < nHop && k < nMax && same_hop(&c->aHop[k], &aHop[k])) k++;
      if (k > 0) {
        n->iHop = k;
        n->zBase = azT[k - 1];
      }
      return;
    }
    case CN_AND:
    case CN_OR:
    case CN_NOT:
      for (i = 0; i < n->n; i++) {
        agg_filter_advance(n->ap[i], aHop, nHop, azT, zOuter);
      }
      return;
    default:
      return;
  }
}

/*
** One aggregate (function eFn, which may differ from e->eFunc for a
** partial of a grouped query) of the rows along e's path from x's row, as
** a correlated subquery.  With xOwners, the rows of every owner whose key
** (hop 0's source column) the subquery xOwners writes: a set of owners
** (distinct aggregates over a group, values.c).
*/
static void emit_agg_row(Build *b, ExprCtx *x, Expr *e, int eFn,
                         void (*xOwners)(Build *, void *), void *pOwners) {
  const PathRes *p = &e->path;
  char *azT[QUAY_MAX_HOPS + 1], *zLink = NULL, *zArg = NULL, *zLast;
  const char *zFrom = p->isPivot ? x->zPivot : x->zBase;
  quay_model *pLast = p->nHop ? p->aHop[p->nHop - 1].pTo : p->pModel;
  int bRepeat = quay__chain_repeats(p->aHop, p->nHop);
  int bWrap = bRepeat && !e->bDistinct &&
              (eFn == QUAY_AGG_COUNT || eFn == QUAY_AGG_SUM ||
               eFn == QUAY_AGG_AVG);
  int bDefault = e->bDefault && eFn != QUAY_AGG_COUNT &&
                 eFn != QUAY_AGG_EXISTS && eFn == e->eFunc;
  Scope *s2;
  ExprCtx *x2;
  Str body, save, soft;
  int nTerm = 0;
  if (xOwners == NULL && agg_ref(b, x, e, eFn)) return;
  quay__str_init(&soft);
  /* The FROM and WHERE go to the side first: the select list needs the
  ** chain's aliases, the WHERE's parameters come after the list's (none). */
  save = b->sql;
  quay__str_init(&b->sql);
  if (p->nHop == 0) {
    /* The row itself (values/aggregate over the model's own rows). */
    azT[0] = quay__alias(b);
    if (azT[0] == NULL) goto done;
    ident(b, pLast->zTable);
    cat(b, " AS ");
    ident(b, azT[0]);
    zLast = azT[0];
    zLink = col_expr(b, zLast, pLast->apField[pLast->iPk]->zCol);
  } else {
    quay__emit_chain(b, p->aHop, p->nHop, azT, NULL, &zLink, &soft,
                     p->nHop - agg_key_only(e));
    zLast = azT[p->nHop - 1];
  }
  if (zLink == NULL || zLast == NULL) goto done;
  if (xOwners && *zFrom && p->nHop > 0) {
    /* The owner's row, for a filter that reads it. */
    cat(b, " JOIN ");
    ident(b, p->aHop[0].pFrom->zTable);
    cat(b, " AS ");
    ident(b, zFrom);
    cat(b, " ON ");
    col(b, zFrom, p->aHop[0].pFromKey->zCol);
    cat(b, " = ");
    cat(b, zLink);
  }
  if (p->pField) zArg = col_expr(b, zLast, p->pField->zCol);
  s2 = scope_alloc(b, pLast, zFrom, x->zPivot);
  x2 = quay__arena_alloc(b->pArena, sizeof(*x2));
  if (s2 == NULL || x2 == NULL) goto done;
  /* The filter's leaves start at the annotated row (correlated); the
  ** ones on the aggregate's path move onto the chain. */
  x2->pScope = s2;
  x2->zBase = zFrom;
  x2->zPivot = x->zPivot;
  s2->pRootCtx = x2;
  if (e->pFilter) {
    if (scope_add_root(b, s2, e->pFilter, 0)) goto done;
    agg_filter_advance(s2->apRoot[0], p->aHop, p->nHop, azT, zFrom);
    scope_prepare(b, s2, s2->apRoot[0]);
  }
  scope_emit_joins(b, s2);
  cat(b, " WHERE ");
  if (xOwners && *zFrom && p->nHop > 0) {
    /* The owners' rows themselves (hop 0 may be to-one: a target row
    ** has owners outside the set). */
    col(b, zFrom, p->aHop[0].pFrom->apField[p->aHop[0].pFrom->iPk]->zCol);
  } else {
    cat(b, zLink);
  }
  if (xOwners) {
    cat(b, " IN (");
    xOwners(b, pOwners);
    cat(b, ")");
  } else {
    cat(b, " = ");
    if (p->nHop == 0) {
      col(b, x->zBase, pLast->apField[pLast->iPk]->zCol);
    } else {
      col(b, zFrom, p->aHop[0].pFromKey->zCol);
    }
  }
  nTerm = 1;
  if (p->nHop == 0 || (agg_key_only(e) && e->pFilter &&
                       agg_filter_on(s2->apRoot[0], zLast))) {
    soft_term(b, pLast, zLast, " AND ");  /* the filter reads its fields */
  }
  quay__str_append(&b->sql, soft.z ? soft.z : "", soft.n);
  quay__str_free(&soft);
  if (e->pFilter) {
    cat(b, " AND ");
    emit_node(b, s2->apRoot[0]);
  }
  body = b->sql;
  b->sql = save;
  if (body.oom) {
    b->pArena->oom = 1;
    quay__str_free(&body);
    return;
  }
  if (bDefault) cat(b, "COALESCE(");
  if (eFn == QUAY_AGG_EXISTS) {
    cat(b, "EXISTS (SELECT 1 FROM ");
  } else if (bWrap) {
    /* Each related row once per owner: distinct (key, value) pairs. */
    cat(b, "(SELECT ");
    quay__emit_agg_call(b, e, eFn, 0, "\"v\"");
    cat(b, " FROM (SELECT DISTINCT ");
    col(b, zLast, pLast->apField[pLast->iPk]->zCol);
    cat(b, " AS \"k\", ");
    cat(b, zArg ? zArg : "1");
    cat(b, " AS \"v\" FROM ");
  } else {
    cat(b, "(SELECT ");
    quay__emit_agg_call(b, e, eFn, e->bDistinct,
                        zArg ? zArg : e->bDistinct || bRepeat
                        ? col_expr(b, zLast, pLast->apField[pLast->iPk]->zCol)
                        : "*");
    cat(b, " FROM ");
  }
  quay__str_append(&b->sql, body.z ? body.z : "", body.n);
  quay__str_free(&body);
  cat(b, bWrap ? ") AS \"d\")" : ")");
  if (eFn == QUAY_AGG_AVG) quay__emit_avg_unscale(b, e);
  if (bDefault) {
    cat(b, ", ");
    quay__build_param(b, &e->dflt);
    cat(b, ")");
  }
  (void)nTerm;
  return;
done:
  quay__str_free(&soft);
  quay__str_free(&b->sql);
  b->sql = save;
  b->pArena->oom = 1;
}
/* }================================================================== */

/*
** {==================================================================
** Aggregates of a scope: grouped joins
** ===================================================================
** An aggregate over a relation path of a scope's row is written either
** as a correlated scalar subquery (emit_agg_row) or, where the scope
** allows, as a column of a grouped LEFT JOIN that every aggregate of the
** same path and filter shares:
**
**   SELECT t0.*, COALESCE(t1."a0", 0) AS "n_posts", t1."a1" AS "views"
**     FROM users AS t0
**     LEFT JOIN (SELECT t2.author_id AS "k", COUNT(*) AS "a0",
**                       SUM(t2.views) AS "a1" FROM posts AS t2
**                 [WHERE t2.author_id IN (SELECT t3.id FROM users AS t3
**                                         WHERE <filters> [ORDER BY ...
**                                         LIMIT ...])]
**                 GROUP BY t2.author_id) AS t1 ON t1."k" = t0.id
**
** The correlated form runs one index probe per aggregate and row; the
** grouped form one pass over the related rows (and PostgreSQL no longer
** JIT-compiles per-row subplans).  `scripts/bench --only AGG`
** (scripts/benchmark/aggforms.lua: W7's four aggregates over 10k users,
** each shape written both ways; seconds, PostgreSQL / SQLite) measured
** the rule:
**
**   - no filter, owner or limit: grouped over every owner (W7: 1.40 /
**     0.70 correlated, 0.32 / 0.52 grouped; a restriction by
**     "IN (SELECT id FROM users)" would only cost);
**   - filters (other than on aggregates), an owner (a related set), or a
**     limit and offset that the keys' subquery can repeat: grouped over
**     the keys of the set's rows (filter { id = 5 } and limit(20) then
**     cost what the correlated form costs, under 0.01, where a grouped
**     pass over every owner costs 0.26-0.45);
**   - a limit after an order on an aggregate: the sort reads that value of
**     every row, so the order's (and the filters') aggregates are grouped
**     over every owner (keys restricted by the filters only) and the
**     others stay correlated, which SQLite computes for the returned rows
**     only (1.19 / 0.17 correlated, 0.23 / 0.20 so, 0.33 / 0.41 all
**     grouped);
**   - a limit after a filter on an aggregate, or a limit of a distinct
**     values set: correlated, the scan stops at the limit (0.002 / 0.0004
**     against 0.21 / 0.39);
**   - batched prefetch steps (owners are a key array) and the keys of
**     writes: correlated (the callers pass QUAY_AGGS_CORRELATED; a step
**     of 1,000 owners: 0.11 / 0.057 correlated, 0.13 / 0.051 grouped and
**     restricted);
**   - per aggregate: correlated when its path starts at a pivot row, or
**     its filter refers to the annotated row (a leaf off the aggregate's
**     path, quay.F, an annotation, where_has).
**
** Semantics are the correlated form's: count 0 (COALESCE) and the other
** aggregates NULL (or their default) for an owner without rows; a chain
** that can reach a row twice (quay.through) aggregates distinct (owner,
** row) pairs; soft-deleted rows along the chain and the filter's terms
** are in the grouped subquery's WHERE.
*/

/* Non-0 when the filter c of an aggregate over path p holds only leaves
** that follow p's first hop (they move onto the aggregated rows). */
static int filter_groupable(const Cond *c, const PathRes *p, int iDepth) {
  int i;
  if (iDepth > QUAY_MAX_COND_DEPTH * 4) return 0;
  switch (c->eOp) {
    case CN_LEAF: {
      int nMax = c->bRelTest ? c->iLastRel : c->nHop;
      return c->pAnn == NULL && c->pExpr == NULL && !c->isPivot &&
             nMax >= 1 && same_hop(&c->aHop[0], &p->aHop[0]);
    }
    case CN_HAS:
      return 0;
    default:
      for (i = 0; i < c->nChild; i++) {
        if (!filter_groupable(c->apChild[i], p, iDepth + 1)) return 0;
      }
      return 1;
  }
}

/* Aggregates written as eFn over a repeating chain count each (owner, row)
** pair once (emit_agg_row's bWrap). */
static int agg_wraps(const Expr *e, int eFn) {
  return quay__chain_repeats(e->path.aHop, e->path.nHop) && !e->bDistinct &&
         (eFn == QUAY_AGG_COUNT || eFn == QUAY_AGG_SUM ||
          eFn == QUAY_AGG_AVG);
}

/* Non-0 when e and g's aggregates read the same rows. */
static int gjoin_fits(const GJoin *g, const Expr *e, int bWrap) {
  const PathRes *p = &g->pFirst->path, *q = &e->path;
  int i;
  if (g->bWrap != bWrap || p->nHop != q->nHop ||
      g->pFirst->pFilter != e->pFilter ||
      agg_key_only(g->pFirst) != agg_key_only(e)) {
    return 0;                   /* a key-only chain keeps hidden targets */
  }
  for (i = 0; i < p->nHop; i++) {
    if (!same_hop(&p->aHop[i], &q->aHop[i])) return 0;
  }
  return 1;
}

/* The join and member of (e, eFn) in x's scope, or 0. */
static int agg_find(ExprCtx *x, const Expr *e, int eFn, GJoin **ppG,
                    GMember **ppM) {
  Scope *s = x->pScope;
  int i, k;
  if (s == NULL || x != &s->ctx) return 0;
  for (i = 0; i < s->nGJoin; i++) {
    GJoin *g = &s->aGJoin[i];
    for (k = 0; k < g->nMem; k++) {
      if (g->aMem[k].e == e && g->aMem[k].eFn == eFn) {
        *ppG = g;
        *ppM = &g->aMem[k];
        return 1;
      }
    }
  }
  return 0;
}

/* Pass 1: give aggregate e (written as eFn) of x's row a column of a
** grouped join when x is its scope's row and the scope allows. */
static void agg_register(Build *b, ExprCtx *x, Expr *e, int eFn) {
  Scope *s = x->pScope;
  const PathRes *p = &e->path;
  GJoin *g = NULL;
  GMember *m;
  int i, bWrap;
  if (s == NULL || s->eAgg == SAGG_CORRELATED || x != &s->ctx ||
      p->nHop == 0 || p->isPivot ||
      (e->pFilter && !filter_groupable(e->pFilter, p, 0)) ||
      agg_find(x, e, eFn, &g, &m) || s->bAggFrozen) {
    return;
  }
  bWrap = agg_wraps(e, eFn);
  for (i = 0; i < s->nGJoin && g == NULL; i++) {
    if (gjoin_fits(&s->aGJoin[i], e, bWrap)) g = &s->aGJoin[i];
  }
  if (g == NULL) {
    if (s->nGJoin == s->nGJoinAlloc) {
      int nNew = s->nGJoinAlloc ? s->nGJoinAlloc * 2 : 4;
      GJoin *a = quay__arena_alloc(b->pArena, sizeof(*a) * (size_t)nNew);
      if (a == NULL) return;
      if (s->nGJoin) memcpy(a, s->aGJoin, sizeof(*a) * (size_t)s->nGJoin);
      s->aGJoin = a;
      s->nGJoinAlloc = nNew;
    }
    g = &s->aGJoin[s->nGJoin];
    memset(g, 0, sizeof(*g));
    g->pFirst = e;
    g->bWrap = bWrap;
    g->zAlias = quay__alias(b);
    if (g->zAlias == NULL) return;
    s->nGJoin++;
  }
  if (g->nMem == g->nMemAlloc) {
    int nNew = g->nMemAlloc ? g->nMemAlloc * 2 : 4;
    GMember *a = quay__arena_alloc(b->pArena, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return;
    if (g->nMem) memcpy(a, g->aMem, sizeof(*a) * (size_t)g->nMem);
    g->aMem = a;
    g->nMemAlloc = nNew;
  }
  m = &g->aMem[g->nMem++];
  m->e = e;
  m->eFn = eFn;
  m->iCol = eFn == QUAY_AGG_EXISTS ? -1 : g->nCol++;
}

void quay__scope_prepare_agg(Build *b, Scope *s, Expr *e, int eFn) {
  if (s && e && e->eOp == EX_AGG) agg_register(b, &s->ctx, e, eFn);
}

/* "alias"."a<i>" */
static void gcol(Build *b, const char *zAlias, const char *zPre, int i) {
  char z[32];
  snprintf(z, sizeof(z), "%s%d", zPre, i);
  col(b, zAlias, z);
}

/*
** Pass 2: when (e, eFn) has a grouped join in x's scope, write its value
** from the join's columns and return 1 (else 0: emit_agg_row correlates).
*/
static int agg_ref(Build *b, ExprCtx *x, Expr *e, int eFn) {
  GJoin *g;
  GMember *m;
  int bDefault = e->bDefault && eFn != QUAY_AGG_COUNT &&
                 eFn != QUAY_AGG_EXISTS && eFn == e->eFunc;
  if (!agg_find(x, e, eFn, &g, &m)) return 0;
  if (eFn == QUAY_AGG_EXISTS) {
    cat(b, "(");
    col(b, g->zAlias, "k");
    cat(b, " IS NOT NULL)");
    return 1;
  }
  if (eFn == QUAY_AGG_COUNT || bDefault) cat(b, "COALESCE(");
  gcol(b, g->zAlias, "a", m->iCol);
  if (eFn == QUAY_AGG_AVG) quay__emit_avg_unscale(b, e);
  if (eFn == QUAY_AGG_COUNT) {
    cat(b, ", 0)");
  } else if (bDefault) {
    cat(b, ", ");
    quay__build_param(b, &e->dflt);
    cat(b, ")");
  }
  return 1;
}

void quay__emit_limit(Build *b, const QsView *v) {
  quay_value n;
  n.type = QUAY_INT;
  if (v->limit >= 0) {
    cat(b, " LIMIT ");
    n.u.i = v->limit;
    quay__build_param(b, &n);
  } else if (v->offset >= 0) {
    cat(b, b->pDia->zOffsetNoLimit);
  }
  if (v->offset >= 0) {
    cat(b, " OFFSET ");
    n.u.i = v->offset;
    quay__build_param(b, &n);
  }
}

/*
** The keys (column pKey) of s's rows: its view's scope and filters, less
** those on aggregates (a superset then, never fewer rows), and with the
** view's order, limit and offset when s->bAggLimit.
*/
static void emit_scope_keys(Build *b, Scope *s, const Field *pKey) {
  /* pKey NULL: every column (the body of quay__scope_keys_with). */
  QsView v = *s->pView;
  const QsView *pV = s->pView;
  int i, nTerm = 0, nOrder = 0;
  char *zR = quay__alias(b);
  Scope *sR;
  if (zR == NULL) return;
  v.apFilter = quay__arena_alloc(b->pArena, sizeof(quay_qs *) *
                                                (size_t)(pV->nFilter + 1));
  if (v.apFilter == NULL) return;
  v.nFilter = 0;
  for (i = 0; i < pV->nFilter; i++) {
    if (!quay__cond_has_agg(pV->apFilter[i]->pCond)) {
      v.apFilter[v.nFilter++] = pV->apFilter[i];
    }
  }
  if (!s->bAggLimit) {
    v.limit = v.offset = -1;
  } else if (v.pOrder) {
    nOrder = v.pOrder->nOrder;
  }
  sR = quay__scope_from_view(b, &v, zR, QUAY_AGGS_CORRELATED);
  if (sR == NULL) return;
  for (i = 0; i < nOrder; i++) {
    scope_prepare_expr(b, &sR->ctx, v.pOrder->apOrder[i]);
  }
  cat(b, "SELECT ");
  if (pKey) {
    col(b, zR, pKey->zCol);
  } else {
    ident(b, zR);
    cat(b, ".*");
  }
  quay__scope_emit_from(b, sR);
  quay__scope_where(b, sR, &nTerm);
  if (s->bAggLimit) {
    cat(b, " ORDER BY ");
    for (i = 0; i < nOrder; i++) {
      Expr *e = v.pOrder->apOrder[i];
      emit_expr_row(b, &sR->ctx, e);
      quay__emit_order_dir(b, e, e->bDesc);
      cat(b, ", ");
    }
    col(b, zR, v.pModel->apField[v.pModel->iPk]->zCol);
    quay__emit_limit(b, &v);
  }
}

/* The value of member m over the chain's last row zLast (arg: its
** column or NULL), as emit_agg_row writes it. */
static void emit_member(Build *b, const GMember *m, const char *zLast,
                        const quay_model *pLast, const char *zArg,
                        int bRepeat) {
  quay__emit_agg_call(b, m->e, m->eFn, m->e->bDistinct,
                      zArg ? zArg : m->e->bDistinct || bRepeat
                      ? col_expr(b, zLast, pLast->apField[pLast->iPk]->zCol)
                      : "*");
}

/*
** One grouped join's subquery: the owner key "k" and a column per member,
** over the rows of the chain (distinct (owner, row) pairs first when the
** chain repeats), restricted as s says, with the filter and the soft-
** delete terms.
*/
static void emit_gjoin(Build *b, Scope *s, GJoin *g) {
  const PathRes *p = &g->pFirst->path;
  quay_model *pLast = p->aHop[p->nHop - 1].pTo;
  char *azT[QUAY_MAX_HOPS + 1], *zLink = NULL, *zLast, *zD = NULL;
  Cond *pFilter = g->pFirst->pFilter;
  int bRepeat = quay__chain_repeats(p->aHop, p->nHop);
  int i, nTerm = 0;
  Scope *s2 = NULL;
  Str chain, soft, save = b->sql;
  quay__str_init(&soft);
  /* The chain and the filter's joins (no parameters) go to the side: the
  ** select list needs their aliases. */
  quay__str_init(&b->sql);
  quay__emit_chain(b, p->aHop, p->nHop, azT, NULL, &zLink, &soft,
                   p->nHop - agg_key_only(g->pFirst));
  zLast = azT[p->nHop - 1];
  if (pFilter && zLast) {
    ExprCtx *x2 = quay__arena_alloc(b->pArena, sizeof(*x2));
    s2 = scope_alloc(b, pLast, s->zAlias, s->zPivot);
    if (x2 == NULL || s2 == NULL) {
      s2 = NULL;                        /* the arena is marked failed */
    } else {
      x2->pScope = s2;
      x2->zBase = s->zAlias;
      x2->zPivot = s->zPivot;
      s2->pRootCtx = x2;
      if (scope_add_root(b, s2, pFilter, 0) == QUAY_OK) {
        agg_filter_advance(s2->apRoot[0], p->aHop, p->nHop, azT, s->zAlias);
        scope_prepare(b, s2, s2->apRoot[0]);
        scope_emit_joins(b, s2);
        if (agg_key_only(g->pFirst) && pLast->pDeletedAt &&
            agg_filter_on(s2->apRoot[0], zLast)) {
          /* the filter reads the key-only chain's last row: a live one */
          quay__str_cat(&soft, " AND ");
          quay__str_col(&soft, zLast, pLast->pDeletedAt->zCol);
          quay__str_cat(&soft, " IS NULL");
        }
      } else {
        s2 = NULL;                      /* b->rc or the arena says why */
      }
    }
  }
  chain = b->sql;
  b->sql = save;
  if (chain.oom || zLink == NULL || zLast == NULL || (pFilter && !s2) ||
      (g->bWrap && (zD = quay__alias(b)) == NULL)) {
    quay__str_free(&chain);
    quay__str_free(&soft);
    b->pArena->oom = 1;
    return;
  }
  cat(b, "SELECT ");
  if (g->bWrap) {
    /* Over distinct (owner, row) pairs: the row's values come along. */
    col(b, zD, "o");
    cat(b, " AS \"k\"");
    for (i = 0; i < g->nMem; i++) {
      const GMember *m = &g->aMem[i];
      char zV[32];
      if (m->iCol < 0) continue;
      /* as emit_member writes it (a sum of decimals, of integers, an
      ** average of numbers: the dialect's forms), over the pairs */
      snprintf(zV, sizeof(zV), "v%d", m->iCol);
      cat(b, ", ");
      quay__emit_agg_call(b, m->e, m->eFn, 0, col_expr(b, zD, zV));
      quay__str_printf(&b->sql, " AS \"a%d\"", m->iCol);
    }
    cat(b, " FROM (SELECT DISTINCT ");
    cat(b, zLink);
    cat(b, " AS \"o\", ");
    col(b, zLast, pLast->apField[pLast->iPk]->zCol);
    cat(b, " AS \"p\"");
    for (i = 0; i < g->nMem; i++) {
      const GMember *m = &g->aMem[i];
      if (m->iCol < 0) continue;
      cat(b, ", ");
      if (m->e->path.pField) {
        col(b, zLast, m->e->path.pField->zCol);
      } else {
        cat(b, "1");
      }
      quay__str_printf(&b->sql, " AS \"v%d\"", m->iCol);
    }
  } else {
    cat(b, zLink);
    cat(b, " AS \"k\"");
    for (i = 0; i < g->nMem; i++) {
      const GMember *m = &g->aMem[i];
      char *zArg;
      if (m->iCol < 0) continue;
      cat(b, ", ");
      zArg = m->e->path.pField ? col_expr(b, zLast, m->e->path.pField->zCol)
                               : NULL;
      emit_member(b, m, zLast, pLast, zArg, bRepeat);
      quay__str_printf(&b->sql, " AS \"a%d\"", m->iCol);
    }
  }
  cat(b, " FROM ");
  quay__str_append(&b->sql, chain.z ? chain.z : "", chain.n);
  quay__str_free(&chain);
  if (s->eAgg == SAGG_RESTRICTED ||
      !(p->aHop[0].pFromKey->mFlags & QUAY_F_PK)) {
    /* Over the keys of the view's rows, also when the first hop is to-one
    ** (its keys are not every owner's: a group of a row no record reaches
    ** would cost and could overflow). */
    cat(b, " WHERE ");
    cat(b, zLink);
    cat(b, " IN (");
    if (s->zKeys) {
      /* "SELECT k.<key> FROM <keys> AS k": the view's conditions are
      ** written once, in the WITH query, not nested in every join. */
      char *zK = quay__alias(b);
      if (zK == NULL) return;
      cat(b, "SELECT ");
      col(b, zK, p->aHop[0].pFromKey->zCol);
      cat(b, " FROM ");
      ident(b, s->zKeys);
      cat(b, " AS ");
      ident(b, zK);
    } else {
      emit_scope_keys(b, s, p->aHop[0].pFromKey);
    }
    cat(b, ")");
    nTerm++;
  } else if (p->aHop[0].toNullable) {
    /* Rows of no owner form no group (their sum could overflow). */
    cat(b, " WHERE ");
    cat(b, zLink);
    cat(b, " IS NOT NULL");
    nTerm++;
  }
  if (soft.n) {
    /* " AND t.deleted_at IS NULL ...": the first one opens the WHERE
    ** (" WHERE" then takes the place of " AND"). */
    size_t nSkip = nTerm ? 0 : 4;
    if (nTerm == 0) cat(b, " WHERE");
    quay__str_append(&b->sql, soft.z + nSkip, soft.n - nSkip);
    nTerm++;
  }
  quay__str_free(&soft);
  if (s2) {
    cat(b, nTerm ? " AND " : " WHERE ");
    emit_node(b, s2->apRoot[0]);
  }
  if (g->bWrap) {
    cat(b, ") AS ");
    ident(b, zD);
    cat(b, " GROUP BY ");
    col(b, zD, "o");
  } else {
    cat(b, " GROUP BY ");
    cat(b, zLink);
  }
}

int quay__scope_keys_with(Build *b, Scope *s, const char *zName,
                          const char *zPrefix) {
  if (s == NULL || s->eAgg != SAGG_RESTRICTED || s->nGJoin == 0) return 0;
  cat(b, zPrefix);
  ident(b, zName);
  cat(b, " AS (");
  emit_scope_keys(b, s, NULL);
  cat(b, ")");
  s->zKeys = zName;
  return 1;
}

void quay__scope_agg_joins(Build *b, Scope *s) {
  int i;
  if (s == NULL) return;
  for (i = 0; i < s->nGJoin; i++) {
    GJoin *g = &s->aGJoin[i];
    cat(b, " LEFT JOIN (");
    emit_gjoin(b, s, g);
    cat(b, ") AS ");
    ident(b, g->zAlias);
    cat(b, " ON ");
    col(b, g->zAlias, "k");
    cat(b, " = ");
    col(b, s->zAlias, g->pFirst->path.aHop[0].pFromKey->zCol);
  }
}

/*
** The rule above: how a scope of view v writes its aggregates, given the
** caller's eAggs.  *pbLimit: the keys' subquery repeats the view's order,
** limit and offset.  *pbOrderOnly: a limit after an order on aggregates;
** only the order's (and the filters') aggregates are grouped.
*/
static int agg_mode(const QsView *v, int eAggs, int *pbLimit,
                    int *pbOrderOnly) {
  int i, bAggFilter = 0, bAggOrder = 0, bOther = 0, bLimit;
  *pbLimit = *pbOrderOnly = 0;
  if (eAggs == QUAY_AGGS_CORRELATED) return SAGG_CORRELATED;
  if (v == NULL) return SAGG_ALL;
  for (i = 0; i < v->nFilter; i++) {
    if (quay__cond_has_agg(v->apFilter[i]->pCond)) {
      bAggFilter = 1;
    } else {
      bOther = 1;
    }
  }
  for (i = 0; v->pOrder && i < v->pOrder->nOrder; i++) {
    if (v->pOrder->apOrder[i]->bAgg) bAggOrder = 1;
  }
  bLimit = eAggs == QUAY_AGGS_GROUPED && (v->limit >= 0 || v->offset >= 0);
  if (bLimit) {
    if (v->distinct) return SAGG_CORRELATED;
    if (bAggOrder) {
      /* The sort reads the order's value of every row anyway. */
      *pbOrderOnly = 1;
      bLimit = 0;
    } else if (bAggFilter) {
      return SAGG_CORRELATED;         /* the scan may stop at the limit */
    } else {
      *pbLimit = 1;
    }
  }
  return (bOther || v->pScope || bLimit) ? SAGG_RESTRICTED : SAGG_ALL;
}
/* }================================================================== */



/*
** where_has: existence of related rows along c->aHop that satisfy the
** node's conditions (bound to the target model) and its sub query set.
** Every hop is a semi-join (the related rows' conditions get a scope of
** their own at the last hop).
*/
static void emit_has(Build *b, Cond *c, int iHop, const char *zBase) {
  const Hop *h = &c->aHop[iHop];
  char *zT = quay__alias(b);
  char *zV = h->zVia ? quay__alias(b) : NULL;
  int nTerm = 0, i;
  if (zT == NULL || (h->zVia && zV == NULL) || zBase == NULL) return;
  col(b, zBase, h->pFromKey->zCol);
  cat(b, " IN (SELECT ");
  hop_source(b, h, zT, zV);
  if (iHop + 1 < c->nHop) {
    cat(b, " WHERE ");
    if (soft_term(b, h->pTo, zT, "")) cat(b, " AND ");
    emit_has(b, c, iHop + 1, zT);
    nTerm++;
  } else {
    QsView *v = NULL;
    Scope *s;
    if (c->pSub) {
      v = quay__arena_alloc(b->pArena, sizeof(*v));
      if (v == NULL) return;
      if (quay__qs_view(c->pSub, v, b->pArena, b->pErr)) {
        if (b->rc == QUAY_OK) b->rc = b->pErr->code;
        return;
      }
    }
    s = quay__scope_new(b, v, h->pTo, zT, NULL);
    if (s == NULL) return;
    for (i = 0; i < c->nChild; i++) {
      if (scope_add_root(b, s, c->apChild[i], 0)) return;
      scope_prepare(b, s, s->apRoot[s->nRoot - 1]);
    }
    scope_emit_joins(b, s);
    quay__scope_where(b, s, &nTerm);
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
    if (quay__via_soft_term(&b->sql, h, zV, "")) cat(b, " AND ");
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
      if (soft_term(b, h->pFrom, zY, "")) cat(b, " AND ");
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
    if (soft_term(b, h->pFrom, zY, "")) cat(b, " AND ");
    emit_scope_chain(b, aHop, j - 1, zY, pKey);
    cat(b, ")");
  }
}


/*
** The scope of a view's row zAlias: the pivot alias of a custom
** many-to-many related set, and its filters with their to-one joins
** registered.  More expressions may be prepared into it
** (quay__scope_prepare_expr) until quay__scope_emit_from writes it.
*/
Scope *quay__scope_from_view(Build *b, QsView *v, const char *zAlias,
                             int eAggs) {
  const char *zPv = NULL;
  if (v->pScope && quay__scope_has_pivot(v->pScope)) {
    zPv = quay__alias(b);
    if (zPv == NULL) return NULL;
  }
  return scope_new_agg(b, v, v->pModel, zAlias, zPv, eAggs);
}

/* " FROM table AS alias", the pivot join, the registered LEFT JOINs. */
void quay__scope_emit_from(Build *b, Scope *s) {
  QsView *v;
  if (s == NULL) return;
  v = s->pView;
  cat(b, " FROM ");
  ident(b, s->pModel->zTable);
  cat(b, " AS ");
  ident(b, s->zAlias);
  if (s->zPivot && v && v->pScope) {
    Hop aHop[QUAY_MAX_HOPS];
    int n;
    if (scope_hops(b, v->pScope, aHop, &n)) {
      b->rc = b->pErr->code;
      return;
    }
    cat(b, " JOIN ");
    ident(b, aHop[0].zVia);
    cat(b, " AS ");
    ident(b, s->zPivot);
    cat(b, " ON ");
    col(b, s->zPivot, aHop[0].zViaTo);
    cat(b, " = ");
    col(b, s->zAlias, aHop[0].pToKey->zCol);
    quay__via_soft_term(&b->sql, &aHop[0], s->zPivot, " AND ");
  }
  scope_emit_joins(b, s);
}

Scope *quay__build_from(Build *b, QsView *v, const char *zAlias,
                        int eAggs) {
  Scope *s = quay__scope_from_view(b, v, zAlias, eAggs);
  quay__scope_emit_from(b, s);
  quay__scope_agg_joins(b, s);
  return s;
}

const char *quay__scope_pivot(const Scope *s) {
  return s ? s->zPivot : NULL;
}

/*
** WHERE terms of a scope: its view's owner scope and filters, then extra
** roots (where_has conditions).  Each term is prefixed by " WHERE " or
** " AND " as *pnTerm says.
*/
void quay__scope_where(Build *b, Scope *s, int *pnTerm) {
  int i;
  QsView *v;
  if (s == NULL) return;
  v = s->pView;
  if (s->pModel->pDeletedAt && (v == NULL || v->eDeleted != QUAY_DELETED_INCLUDE)) {
    cat(b, *pnTerm ? " AND " : " WHERE ");
    (*pnTerm)++;
    col(b, s->zAlias, s->pModel->pDeletedAt->zCol);
    cat(b, v && v->eDeleted == QUAY_DELETED_ONLY ? " IS NOT NULL" : " IS NULL");
  }
  if (v && v->pScope) {
    Hop aHop[QUAY_MAX_HOPS];
    int n;
    if (scope_hops(b, v->pScope, aHop, &n)) {
      b->rc = b->pErr->code;
      return;
    }
    cat(b, *pnTerm ? " AND " : " WHERE ");
    (*pnTerm)++;
    if (s->zPivot) {
      col(b, s->zPivot, aHop[0].zViaFrom);
      cat(b, " = ");
      quay__build_param(b, &v->pScope->scopeKey);
    } else {
      emit_scope_chain(b, aHop, n - 1, s->zAlias, &v->pScope->scopeKey);
    }
  }
  for (i = 0; i < s->nRoot; i++) {
    cat(b, *pnTerm ? " AND " : " WHERE ");
    (*pnTerm)++;
    emit_node(b, s->apRoot[i]);
  }
}

/*
** SELECT of field pKey of the rows of a query set that has no limit and
** no offset: FROM and WHERE only, since the order cannot change which
** rows are selected.  A limited set must select what :all() reads, with
** the loader's ORDER BY; quay__plan_keys does that and calls this for the
** other sets, so it is the entry point for update, delete and on_update.
*/
const char *quay__build_keys(Build *b, quay_qs *pQs, Field *pKey) {
  QsView v;
  char *zA;
  Scope *sc;
  int nTerm = 0;
  if (quay__qs_view(pQs, &v, b->pArena, b->pErr)) {
    b->rc = b->pErr->code;
    return NULL;
  }
  assert(v.limit < 0 && v.offset < 0);
  zA = quay__alias(b);
  if (zA == NULL) return NULL;
  cat(b, "SELECT ");
  col(b, zA, pKey->zCol);
  sc = quay__build_from(b, &v, zA, QUAY_AGGS_CORRELATED);
  quay__scope_where(b, sc, &nTerm);
  return zA;
}
/* }================================================================== */
