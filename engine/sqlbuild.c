/*
** engine/sqlbuild.c
** The SQL builder: conditions, scopes, joins and ordering, in a
** dialect-neutral way (DDL lives in ddl.c).
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
typedef struct ENode ENode;
struct ENode {
  int eOp;                  /* CN_* */
  ENode **ap; int n;        /* AND / OR / NOT children */
  Cond *c;                  /* LEAF, HAS */
  int iHop;                 /* LEAF: next hop of c->aHop to take */
  const char *zBase;        /* LEAF: alias of the row reached so far */
  Scope *pScope;            /* LEAF: the scope zBase belongs to */
  int bShortcut;            /* LEAF: compare zBase's key column of the
                            ** last (belongs_to) hop, no join */
};

/* One LEFT JOIN of a scope: a to-one hop from the alias zParent. */
typedef struct SJoin {
  const char *zParent;
  const Hop *pHop;
  char *zAlias;
} SJoin;

struct Scope {
  quay_model *pModel;
  const char *zAlias;       /* the scope's row */
  const char *zPivot;       /* custom pivot row of a related set, or NULL */
  QsView *pView;            /* filters and owner scope, or NULL */
  SJoin *aJoin; int nJoin, nJoinAlloc;
  ENode **apRoot; int nRoot, nRootAlloc;
};

static void emit_node(Build *b, ENode *n);
static void emit_and(Build *b, ENode **ap, int n);
static void emit_has(Build *b, Cond *c, int iHop, const char *zBase);

/* Same primitive hop of the same relation: leaves on it share a row. */
static int same_hop(const Hop *a, const Hop *b) {
  return a->pRel == b->pRel && a->pFrom == b->pFrom && a->pTo == b->pTo &&
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
    if ((k->eOp == CN_AND || k->eOp == CN_OR) && k->eOp == n->eOp &&
        n->eOp != CN_NOT) {
      int j;
      for (j = 0; j < k->n; j++) {
        if (enode_add(b, n, k->ap[j], &nAlloc)) return NULL;
      }
    } else if (enode_add(b, n, k, &nAlloc)) {
      return NULL;
    }
  }
  if ((n->eOp == CN_AND || n->eOp == CN_OR) && n->n == 1) return n->ap[0];
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
  return c->bRelTest || c->pField == h->pToKey;
}

/* Pass 1: walk the leading to-one hops of s's leaves as joins. */
static void scope_prepare(Build *b, Scope *s, ENode *n) {
  int i;
  switch (n->eOp) {
    case CN_LEAF:
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
  scope_prepare(b, s, n);
  return QUAY_OK;
}

Scope *quay__scope_new(Build *b, QsView *v, quay_model *m,
                       const char *zAlias, const char *zPivot) {
  Scope *s = scope_alloc(b, v ? v->pModel : m, zAlias, zPivot);
  int i;
  if (s == NULL) return NULL;
  s->pView = v;
  for (i = 0; v && i < v->nFilter; i++) {
    if (scope_add_root(b, s, v->apFilter[i]->pCond,
                       v->apFilter[i]->bExclude)) {
      return NULL;
    }
  }
  return s;
}

void quay__scope_joins(Build *b, Scope *s) {
  if (s) scope_emit_joins(b, s);
}
/* }======= */

/* {======= Emission */

/* The to-many hop a leaf is bound through at its position, or NULL: its
** next hop when that is to-many and not the relation a test asks about. */
static const Hop *leaf_binding(const ENode *n) {
  const Cond *c = n->c;
  if (n->bShortcut || n->iHop >= c->nHop) return NULL;
  if (c->bRelTest && n->iHop == c->nHop - 1) return NULL;
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
    for (i = 0; i < n; i++) {
      if (i) cat(b, " AND ");
      emit_final(b, ap[i]->c, zVTo);
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
  if (n->bShortcut) {
    zExpr = col_expr(b, n->zBase, h->pFromKey->zCol);
    if (zExpr == NULL) return;
    if (c->bRelTest) {
      quay__str_printf(&b->sql, "%s IS %sNULL", zExpr,
                       c->val.u.b ? "" : "NOT ");
    } else {
      emit_final(b, c, zExpr);
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
    } else {
      zExpr = col_expr(b, n->zBase, c->pField->zCol);
      if (zExpr) emit_final(b, c, zExpr);
    }
    return;
  }
  if (c->bRelTest && n->iHop == c->nHop - 1) {
    /* Existence of the related set along the last (to-many) hop. */
    char *zT = h->zVia ? NULL : quay__alias(b);
    char *zV = h->zVia ? quay__alias(b) : NULL;
    zExpr = col_expr(b, n->zBase, h->pFromKey->zCol);
    if (zExpr == NULL || (h->zVia ? zV == NULL : zT == NULL)) return;
    if (c->val.u.b) cat(b, "NOT COALESCE(");
    quay__str_printf(&b->sql, "%s IN (SELECT ", zExpr);
    if (h->zVia) {
      col(b, zV, h->zViaFrom);
      cat(b, " FROM ");
      ident(b, h->zVia);
      cat(b, " AS ");
      ident(b, zV);
    } else {
      hop_source(b, h, zT, zV);
      if (h->toNullable) {
        cat(b, " WHERE ");
        col(b, zT, h->pToKey->zCol);
        cat(b, " IS NOT NULL");
      }
    }
    cat(b, ")");
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
  if (n > 1) cat(b, "(");
  for (i = 0; i < n; i++) {
    uint64_t m = 0;
    int nG = 0;
    ENode **aG;
    if (uf_root(aUp, i) != i) continue;   /* emitted with its root */
    if (nTerm++) cat(b, " AND ");
    for (j = i; j < n; j++) {
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
    for (j = i; j < n; j++) {
      if (uf_root(aUp, j) == i) aG[nG++] = ap[j];
    }
    for (k = 0; !(m & ((uint64_t)1 << k)); k++) {}
    emit_exists(b, aG, nG, &aAll[k]);
  }
  if (n > 1) cat(b, ")");
}

static void emit_node(Build *b, ENode *n) {
  int i;
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
        if (i) cat(b, " OR ");
        emit_node(b, n->ap[i]);
      }
      cat(b, ")");
      break;
  }
}
/* }======= */

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
** FROM clause of a view: the model's table as zAlias, the pivot join of a
** custom many-to-many scope, and the LEFT JOINs its filters need.  Returns
** the scope to pass to quay__scope_where (NULL when the builder failed).
*/
Scope *quay__build_from(Build *b, QsView *v, const char *zAlias) {
  const char *zPv = NULL;
  Scope *s;
  cat(b, " FROM ");
  ident(b, v->pModel->zTable);
  cat(b, " AS ");
  ident(b, zAlias);
  if (v->pScope && quay__scope_has_pivot(v->pScope)) {
    Hop aHop[QUAY_MAX_HOPS];
    int n;
    char *zPvA;
    if (scope_hops(b, v->pScope, aHop, &n)) {
      b->rc = b->pErr->code;
      return NULL;
    }
    zPvA = quay__alias(b);
    if (zPvA == NULL) return NULL;
    cat(b, " JOIN ");
    ident(b, aHop[0].zVia);
    cat(b, " AS ");
    ident(b, zPvA);
    cat(b, " ON ");
    col(b, zPvA, aHop[0].zViaTo);
    cat(b, " = ");
    col(b, zAlias, aHop[0].pToKey->zCol);
    zPv = zPvA;
  }
  s = quay__scope_new(b, v, v->pModel, zAlias, zPv);
  if (s) scope_emit_joins(b, s);
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
** SELECT of the keys (field pKey) of the rows of a query set, with no
** order unless limit/offset need one.  Used by update/delete and
** subqueries.
*/
void quay__build_keys(Build *b, quay_qs *pQs, Field *pKey) {
  QsView v;
  char *zA;
  Scope *sc;
  int nTerm = 0;
  if (quay__qs_view(pQs, &v, b->pArena, b->pErr)) {
    b->rc = b->pErr->code;
    return;
  }
  zA = quay__alias(b);
  if (zA == NULL) return;
  cat(b, "SELECT ");
  col(b, zA, pKey->zCol);
  sc = quay__build_from(b, &v, zA);
  quay__scope_where(b, sc, &nTerm);
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
