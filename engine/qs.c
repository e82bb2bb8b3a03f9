/*
** engine/qs.c
** Query sets and condition trees: building, name checking, lifetime.
** See LICENSE
**
** A query set is an immutable node that holds one reference to its parent,
** so chaining is O(1) and sets share their common prefix.  Every builder
** checks its input against the schema at once (unknown names, lookups that
** do not fit, values of the wrong type), so errors surface where the user
** wrote them, and the SQL builder only ever sees resolved hops and fields.
**
** Condition paths ("author__email__endswith") resolve to a list of hops,
** a final field and a lookup (API.md "Names in paths"):
**   - a segment naming neither a field nor a relation: unknown_field;
**   - a segment after a field that is not a lookup: bad_lookup;
**   - a path ending at a relation compares the related key (`author = u`,
**     `tags__in = {...}`); `rel__isnull` becomes an existence test.
** Record values are turned into keys here through the binding's xGet.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

static const char *const azLookup[] = {
  NULL, "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains",
  "icontains", "startswith", "endswith", "isnull", "between"
};

int quay__lookup_code(const char *z) {
  int i;
  for (i = 1; i < QUAY_ARRAYSIZE(azLookup); i++) {
    if (strcmp(z, azLookup[i]) == 0) return i;
  }
  return 0;
}

const char *quay__lookup_name(int e) {
  return (e > 0 && e < QUAY_ARRAYSIZE(azLookup)) ? azLookup[e] : "?";
}

/*
** {==================================================================
** Condition trees
** ===================================================================
*/
int quay_cond_group(int eOp, quay_cond **pp, quay_err *pErr) {
  Cond *c;
  *pp = NULL;
  if (eOp != QUAY_C_AND && eOp != QUAY_C_OR && eOp != QUAY_C_NOT) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_group: bad operator");
  }
  c = quay__calloc(sizeof(*c));
  if (c == NULL) return quay__oom(pErr);
  c->eOp = eOp == QUAY_C_AND ? CN_AND : eOp == QUAY_C_OR ? CN_OR : CN_NOT;
  *pp = (quay_cond *)c;
  return QUAY_OK;
}

int quay_cond_leaf(const char *zPath, const quay_value *pVal, quay_cond **pp,
                   quay_err *pErr) {
  Cond *c;
  *pp = NULL;
  c = quay__calloc(sizeof(*c));
  if (c == NULL) return quay__oom(pErr);
  c->eOp = CN_LEAF;
  c->zPath = quay__strdup(zPath);
  if (c->zPath == NULL || quay__value_copy(&c->val, pVal)) {
    quay__free(c->zPath);
    quay__free(c);
    return quay__oom(pErr);
  }
  *pp = (quay_cond *)c;
  return QUAY_OK;
}

static int cond_append(Cond *g, Cond *c) {
  if (g->nChild == g->nAlloc) {
    int nNew = g->nAlloc ? g->nAlloc * 2 : 4;
    Cond **a = quay__realloc(g->apChild, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return QUAY_ENOMEM;
    g->apChild = a;
    g->nAlloc = nNew;
  }
  g->apChild[g->nChild++] = c;
  return QUAY_OK;
}

int quay_cond_add(quay_cond *pGroup, quay_cond *pChild, quay_err *pErr) {
  Cond *g = (Cond *)pGroup;
  if (g == NULL || g->eOp == CN_LEAF) {
    quay__cond_free((Cond *)pChild);
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_add: not a group");
  }
  if (cond_append(g, (Cond *)pChild)) {
    quay__cond_free((Cond *)pChild);
    return quay__oom(pErr);
  }
  return QUAY_OK;
}

void quay__cond_free(Cond *c) {
  int i;
  if (c == NULL) return;
  for (i = 0; i < c->nChild; i++) quay__cond_free(c->apChild[i]);
  quay__free(c->apChild);
  quay__free(c->zPath);
  quay__value_clear(&c->val);
  quay_qs_free(c->pSub);
  quay__free(c);
}

void quay_cond_free(quay_cond *p) { quay__cond_free((Cond *)p); }
/* }================================================================== */


/*
** {==================================================================
** Binding conditions to a model
** ===================================================================
*/
/* Context of a binding: the model and, in a related set of a custom
** many-to-many, the pivot model reachable as "pivot__". */
typedef struct BindCtx {
  quay_model *pModel;
  quay_model *pPivot;
  quay_err *pErr;
} BindCtx;

/*
** Convert *pV in place: integral reals to integers for integer fields, and
** records to the key field zKey of model pWant.
*/
static int normalize_value(quay_model *m, Field *f, quay_model *pWant,
                           Field *pKey, quay_value *v, quay_err *pErr) {
  if (v->type == QUAY_RECORD) {
    quay_value k;
    if (pWant == NULL) {
      return quay__err(pErr, QUAY_EVALIDATION,
                       "%s.%s: a record is not a value for this field",
                       m->zName, f->zName);
    }
    if (v->u.rec.pModel != pWant) {
      return quay__err(pErr, QUAY_EVALIDATION,
                       "%s.%s: expected a %s record, got a %s record",
                       m->zName, f->zName, pWant->zName,
                       v->u.rec.pModel ? quay_model_name(v->u.rec.pModel)
                                       : "foreign");
    }
    if (v->u.rec.xGet(v->u.rec.p, pKey->zName, &k) || k.type == QUAY_NULL) {
      return quay__err(pErr, QUAY_EVALIDATION,
                       "%s.%s: the %s record has no %s yet (save it first)",
                       m->zName, f->zName, pWant->zName, pKey->zName);
    }
    if (k.type == QUAY_TEXT || k.type == QUAY_BLOB) {
      char *z = quay__strndup(k.u.z, k.n);
      if (z == NULL) return quay__oom(pErr);
      k.u.z = z;
    }
    *v = k;
    return QUAY_OK;
  }
  if (v->type == QUAY_REAL && (f->eType == QUAY_T_INTEGER ||
                               f->eType == QUAY_T_ID)) {
    double r = v->u.r;
    if (r >= -9.2233720368547758e18 && r < 9.2233720368547758e18 &&
        floor(r) == r) {
      v->type = QUAY_INT;
      v->u.i = (int64_t)r;
    }
  }
  return QUAY_OK;
}

/* Non-0 when a "__" path has an empty segment (leading, trailing or
** doubled separators), which no name can fill. */
static int path_has_empty(const char *z) {
  size_t n = strlen(z);
  return n == 0 || strncmp(z, "__", 2) == 0 ||
         (n >= 2 && strcmp(z + n - 2, "__") == 0) || strstr(z, "____") != NULL;
}

/* Split off the next "__"-separated segment of *pz into z (NUL-ended). */
static int next_segment(const char **pz, char *z, size_t nz) {
  const char *s = *pz, *e;
  size_t n;
  if (*s == 0) return 0;
  e = strstr(s, "__");
  n = e ? (size_t)(e - s) : strlen(s);
  if (n >= nz) n = nz - 1;
  memcpy(z, s, n);
  z[n] = 0;
  *pz = e ? e + 2 : s + strlen(s);
  return 1;
}

/*
** Resolve a condition leaf's path.  On success c->aHop/nHop, pField,
** eLookup are set, values checked and normalized.  A relation isnull test
** is rewritten into an existence test (CN_HAS, possibly under CN_NOT).
*/
static int bind_leaf(BindCtx *x, Cond *c) {
  quay_model *m = x->pModel;
  const char *z = c->zPath;
  char zSeg[256];
  Field *f = NULL;
  Rel *pLast = NULL;
  int rc;
  quay_err *pErr = x->pErr;
  c->nHop = 0;
  c->eLookup = LK_EQ;
  if (strncmp(z, "pivot__", 7) == 0 && x->pPivot) {
    c->isPivot = 1;
    m = x->pPivot;
    z += 7;
  } else if (strcmp(z, "pivot") == 0 && x->pPivot) {
    return quay__err(pErr, QUAY_EBAD_LOOKUP,
                     "pivot needs a field: pivot__<field>");
  }
  if (*z == 0 || path_has_empty(z)) {
    return quay__err(pErr, QUAY_EUNKNOWN_FIELD, "'%s' is not a field path "
                     "(empty name between \"__\")", c->zPath);
  }
  while (next_segment(&z, zSeg, sizeof(zSeg))) {
    Rel *r;
    f = quay__model_field(m, zSeg);
    if (f) break;
    r = quay__model_rel(m, zSeg);
    if (r == NULL) {
      if (pLast && quay__lookup_code(zSeg)) {
        c->eLookup = quay__lookup_code(zSeg);
        if (*z) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: the lookup %s must come last", c->zPath,
                           zSeg);
        }
        goto relation_compare;
      }
      return quay__err(pErr, QUAY_EUNKNOWN_FIELD,
                       "%s has no field or relation '%s' (in '%s')",
                       m->zName, zSeg, c->zPath);
    }
    rc = quay__rel_hops(r, c->aHop, &c->nHop, pErr);
    if (rc) return rc;
    pLast = r;
    m = r->pTo;
  }
  if (f == NULL) {
    if (pLast == NULL) {
      return quay__err(pErr, QUAY_EUNKNOWN_FIELD, "empty condition name");
    }
    goto relation_compare;
  }
  /* After a field: at most one lookup. */
  if (next_segment(&z, zSeg, sizeof(zSeg))) {
    c->eLookup = quay__lookup_code(zSeg);
    if (c->eLookup == 0 || *z) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: '%s' after the field %s.%s is not a lookup (use "
                       "eq, ne, lt, lte, gt, gte, in, not_in, contains, "
                       "icontains, startswith, endswith, isnull, between)",
                       c->zPath, zSeg, m->zName, f->zName);
    }
  }
  c->pField = f;
  if (c->eLookup == LK_ISNULL && pLast && c->nHop > 0 &&
      f == quay__hop_ident(&c->aHop[c->nHop - 1])) {
    /* tags__id__isnull: Django's spelling of tags__isnull. */
    if (c->val.type != QUAY_BOOL) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: isnull takes true or false", c->zPath);
    }
    c->bRelTest = 1;
    c->bound = 1;
    return QUAY_OK;
  }
  goto check_values;

relation_compare:
  /* Compare the related row's identifying key (`posts = 1` on User: a
  ** post whose id is 1); isnull, and eq/ne with null, test existence. */
  {
    Hop *h = &c->aHop[c->nHop - 1];
    m = h->pTo;
    c->pField = quay__hop_ident(h);
  }
  if ((c->eLookup == LK_EQ || c->eLookup == LK_NE) &&
      c->val.type == QUAY_NULL) {
    int bNull = c->eLookup == LK_EQ;
    c->eLookup = LK_ISNULL;
    c->val.type = QUAY_BOOL;
    c->val.u.b = bNull;
  }
  if (c->eLookup == LK_ISNULL) {
    if (c->val.type != QUAY_BOOL) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: isnull takes true or false", c->zPath);
    }
    c->bRelTest = 1;
    c->bound = 1;
    return QUAY_OK;
  }

check_values:
  {
    Field *pKey = NULL;
    quay_model *pWant = NULL;
    if (f == NULL) {
      pWant = m;                    /* relation compare: records of target */
      pKey = c->pField;
    } else if (f->pRel && f->pRel->pFk == f && f->pRel->pFrom == m &&
               f->pRel->pKey) {
      pWant = f->pRel->pTo;         /* FK column: records of its target */
      pKey = f->pRel->pKey;
    }
    if (f && (c->eLookup == LK_CONTAINS || c->eLookup == LK_ICONTAINS ||
              c->eLookup == LK_STARTSWITH || c->eLookup == LK_ENDSWITH) &&
        f->eType != QUAY_T_STRING && f->eType != QUAY_T_TEXT) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s needs a string or text field; %s.%s is %s",
                       c->zPath, quay__lookup_name(c->eLookup), m->zName,
                       f->zName, quay__type_name(f->eType));
    }
    if (f == NULL && (c->eLookup == LK_CONTAINS || c->eLookup == LK_ICONTAINS ||
                      c->eLookup == LK_STARTSWITH ||
                      c->eLookup == LK_ENDSWITH)) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s does not apply to a relation", c->zPath,
                       quay__lookup_name(c->eLookup));
    }
    if (c->pField->eType == QUAY_T_BLOB && c->eLookup != LK_EQ &&
        c->eLookup != LK_NE && c->eLookup != LK_ISNULL) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s does not apply to the blob field %s.%s",
                       c->zPath, quay__lookup_name(c->eLookup), m->zName,
                       c->pField->zName);
    }
    switch (c->eLookup) {
      case LK_IN:
      case LK_NOT_IN:
      case LK_BETWEEN: {
        size_t i;
        if (c->val.type != QUAY_LIST) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: %s takes a list of values", c->zPath,
                           quay__lookup_name(c->eLookup));
        }
        if (c->eLookup == LK_BETWEEN && c->val.n != 2) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: between takes exactly two values (got %d)",
                           c->zPath, (int)c->val.n);
        }
        for (i = 0; i < c->val.n; i++) {
          quay_value *v = (quay_value *)&c->val.u.a[i];
          if (v->type == QUAY_LIST) {
            return quay__err(pErr, QUAY_EBAD_LOOKUP,
                             "%s: nested lists are not values", c->zPath);
          }
          if (v->type == QUAY_NULL && c->eLookup == LK_BETWEEN) {
            return quay__err(pErr, QUAY_EBAD_LOOKUP,
                             "%s: between bounds cannot be null", c->zPath);
          }
          rc = normalize_value(m, c->pField, pWant, pKey, v, pErr);
          if (rc == QUAY_OK) rc = quay__value_fits(m, c->pField, v, 0, pErr);
          if (rc) return rc;
        }
        break;
      }
      case LK_ISNULL:
        if (c->val.type != QUAY_BOOL) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: isnull takes true or false", c->zPath);
        }
        break;
      default:
        if (c->val.type == QUAY_LIST) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: %s takes one value, not a list (use in)",
                           c->zPath, quay__lookup_name(c->eLookup));
        }
        if (c->val.type == QUAY_NULL && c->eLookup != LK_EQ &&
            c->eLookup != LK_NE) {
          return quay__err(pErr, QUAY_EBAD_LOOKUP,
                           "%s: %s cannot compare with null (use isnull)",
                           c->zPath, quay__lookup_name(c->eLookup));
        }
        rc = normalize_value(m, c->pField, pWant, pKey, &c->val, pErr);
        if (rc == QUAY_OK) rc = quay__value_fits(m, c->pField, &c->val, 0, pErr);
        if (rc) return rc;
        break;
    }
  }
  c->bound = 1;
  return QUAY_OK;
}

static int bind_cond(BindCtx *x, Cond *c) {
  int i, rc;
  switch (c->eOp) {
    case CN_LEAF:
      return c->bound ? QUAY_OK : bind_leaf(x, c);
    case CN_HAS:
      return QUAY_OK;            /* bound when built */
    default:
      for (i = 0; i < c->nChild; i++) {
        rc = bind_cond(x, c->apChild[i]);
        if (rc) return rc;
      }
      return QUAY_OK;
  }
}
/* }================================================================== */


/*
** {==================================================================
** Query-set nodes
** ===================================================================
*/
static void qs_free_payload(quay_qs *q) {
  quay__cond_free(q->pCond);
  if (q->aOrder) {
    int i;
    for (i = 0; i < q->nOrder; i++) quay__free(q->aOrder[i].zAnn);
    quay__free(q->aOrder);
  }
  quay__free(q->zPath);
  quay__free(q->zTo);
  quay__free(q->zAnn);
  quay_qs_free(q->pSub);
  quay__value_clear(&q->scopeKey);
}

/* Drop a reference; frees the node and, iteratively, unshared parents. */
void quay_qs_free(quay_qs *q) {
  while (q && --q->nRef == 0) {
    quay_qs *pParent = q->pParent;
    qs_free_payload(q);
    quay__free(q);
    q = pParent;
  }
}

quay_qs *quay_qs_ref(quay_qs *q) {
  if (q) q->nRef++;
  return q;
}

quay_model *quay_qs_model(const quay_qs *q) { return q->pModel; }

int quay_qs_new(quay_model *m, quay_qs **pp, quay_err *pErr) {
  quay_qs *q;
  int rc;
  *pp = NULL;
  rc = quay__resolve(m->pDb, pErr);
  if (rc) return rc;
  q = quay__calloc(sizeof(*q));
  if (q == NULL) return quay__oom(pErr);
  q->nRef = 1;
  q->pModel = m;
  q->eOp = QS_ROOT;
  *pp = q;
  return QUAY_OK;
}

/* A new node of kind eOp on top of pParent. */
static quay_qs *qs_push(quay_qs *pParent, int eOp) {
  quay_qs *q = quay__calloc(sizeof(*q));
  if (q == NULL) return NULL;
  q->nRef = 1;
  q->pModel = pParent->pModel;
  q->pParent = quay_qs_ref(pParent);
  q->eOp = eOp;
  return q;
}

/* The scope node of a chain, or NULL. */
static quay_qs *qs_scope(quay_qs *q) {
  for (; q; q = q->pParent) {
    if (q->eOp == QS_SCOPE) return q;
  }
  return NULL;
}

/* The pivot model available as "pivot__" in this chain. */
static quay_model *qs_pivot(quay_qs *q) {
  quay_qs *s = qs_scope(q);
  Rel *r, *fwd;
  if (s == NULL) return NULL;
  r = s->pScopeRel;
  fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  if (fwd->eKind == QUAY_R_MANY_TO_MANY && fwd->pJoin->pThrough) {
    return fwd->pJoin->pThrough;
  }
  return NULL;
}

int quay_qs_filter(quay_qs *pQs, quay_cond *pCond, int bExclude,
                   quay_qs **ppOut, quay_err *pErr) {
  BindCtx x;
  quay_qs *q;
  int rc;
  *ppOut = NULL;
  x.pModel = pQs->pModel;
  x.pPivot = qs_pivot(pQs);
  x.pErr = pErr;
  rc = bind_cond(&x, (Cond *)pCond);
  if (rc) {
    quay__cond_free((Cond *)pCond);
    return rc;
  }
  q = qs_push(pQs, QS_FILTER);
  if (q == NULL) {
    quay__cond_free((Cond *)pCond);
    return quay__oom(pErr);
  }
  q->pCond = (Cond *)pCond;
  q->bExclude = bExclude;
  *ppOut = q;
  return QUAY_OK;
}

/*
** Resolve a path of relation names from model m into hops.  *ppLast gets
** the last relation.  Unknown names raise unknown_relation.
*/
static int rel_path(quay_model *m, const char *zPath, Hop *aHop, int *pnHop,
                    Rel **apRel, int *pnRel, quay_err *pErr) {
  char zSeg[256];
  const char *z = zPath;
  int rc;
  *pnHop = 0;
  if (pnRel) *pnRel = 0;
  if (zPath == NULL || *zPath == 0 || path_has_empty(zPath)) {
    return quay__err(pErr, QUAY_EUNKNOWN_RELATION,
                     "'%s' is not a relation path (empty name between "
                     "\"__\")", zPath ? zPath : "");
  }
  while (next_segment(&z, zSeg, sizeof(zSeg))) {
    Rel *r = quay__model_rel(m, zSeg);
    if (r == NULL) {
      return quay__err(pErr, QUAY_EUNKNOWN_RELATION,
                       "%s has no relation '%s' (in '%s')", m->zName, zSeg,
                       zPath);
    }
    rc = quay__rel_hops(r, aHop, pnHop, pErr);
    if (rc) return rc;
    if (apRel) {
      if (*pnRel >= QUAY_MAX_HOPS) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "path '%s' is too long",
                         zPath);
      }
      apRel[(*pnRel)++] = r;
    }
    m = r->pTo;
  }
  return QUAY_OK;
}

int quay_qs_where_has(quay_qs *pQs, const char *zRel, quay_cond *pCond,
                      quay_qs *pSub, int bNot, quay_qs **ppOut,
                      quay_err *pErr) {
  Cond *pHas = NULL, *pTop;
  quay_qs *q;
  int rc;
  quay_model *pTarget;
  *ppOut = NULL;
  pHas = quay__calloc(sizeof(*pHas));
  if (pHas == NULL) {
    quay__cond_free((Cond *)pCond);
    return quay__oom(pErr);
  }
  pHas->eOp = CN_HAS;
  pHas->bound = 1;
  rc = rel_path(pQs->pModel, zRel, pHas->aHop, &pHas->nHop, NULL, NULL, pErr);
  if (rc) goto fail;
  pTarget = pHas->aHop[pHas->nHop - 1].pTo;
  if (pCond) {
    BindCtx x;
    x.pModel = pTarget;
    x.pPivot = NULL;
    x.pErr = pErr;
    rc = bind_cond(&x, (Cond *)pCond);
    if (rc) goto fail;
    if (cond_append(pHas, (Cond *)pCond)) {
      rc = quay__oom(pErr);
      goto fail;
    }
    pCond = NULL;
  }
  if (pSub) {
    if (pSub->pModel != pTarget) {
      rc = quay__err(pErr, QUAY_EMISUSE,
                     "where_has(%s, fn): fn must return a query set of %s, "
                     "got one of %s", zRel, pTarget->zName,
                     pSub->pModel->zName);
      goto fail;
    }
    pHas->pSub = quay_qs_ref(pSub);
  }
  pTop = pHas;
  if (bNot) {
    Cond *pNot = quay__calloc(sizeof(*pNot));
    if (pNot == NULL || cond_append(pNot, pHas)) {
      quay__free(pNot);
      rc = quay__oom(pErr);
      goto fail;
    }
    pNot->eOp = CN_NOT;
    pNot->bound = 1;
    pTop = pNot;
  }
  q = qs_push(pQs, QS_FILTER);
  if (q == NULL) {
    quay__cond_free(pTop);
    return quay__oom(pErr);
  }
  q->pCond = pTop;
  *ppOut = q;
  return QUAY_OK;
fail:
  quay__cond_free(pHas);
  quay__cond_free((Cond *)pCond);
  return rc;
}

/* Find an annotation name in the chain. */
static int has_annotation(quay_qs *q, const char *zName) {
  for (; q; q = q->pParent) {
    if (q->eOp == QS_COUNT_ANN && strcmp(q->zAnn, zName) == 0) return 1;
  }
  return 0;
}

/*
** Resolve a field path over to-one relations (order_by, pluck).  A
** to-many hop raises bad_lookup.
*/
int quay__field_path(quay_qs *pQs, const char *zTerm, FieldPath *p,
                     const char *zWhat, quay_err *pErr) {
  quay_model *m = pQs->pModel;
  const char *z = zTerm;
  char zSeg[256];
  int rc;
  memset(p, 0, sizeof(*p));
  if (strncmp(z, "pivot__", 7) == 0 && qs_pivot(pQs)) {
    p->isPivot = 1;
    m = qs_pivot(pQs);
    z += 7;
  }
  if (*z == 0 || path_has_empty(z)) {
    return quay__err(pErr, QUAY_EUNKNOWN_FIELD, "%s '%s': not a field path",
                     zWhat, zTerm);
  }
  if (!p->isPivot && strstr(z, "__") == NULL && has_annotation(pQs, z)) {
    p->zAnn = quay__strdup(z);
    return p->zAnn ? QUAY_OK : quay__oom(pErr);
  }
  while (next_segment(&z, zSeg, sizeof(zSeg))) {
    Field *f = quay__model_field(m, zSeg);
    Rel *r;
    if (f) {
      if (*z) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "%s '%s': %s.%s is a field, so '%s' cannot follow "
                         "it", zWhat, zTerm, m->zName, f->zName, z);
      }
      p->pField = f;
      return QUAY_OK;
    }
    r = quay__model_rel(m, zSeg);
    if (r == NULL) {
      return quay__err(pErr, QUAY_EUNKNOWN_FIELD,
                       "%s '%s': %s has no field or relation '%s'", zWhat,
                       zTerm, m->zName, zSeg);
    }
    if (r->toMany) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s '%s': %s.%s is a to-many relation; only to-one "
                       "paths can be used here (for counts use with_count)",
                       zWhat, zTerm, m->zName, r->zName);
    }
    rc = quay__rel_hops(r, p->aHop, &p->nHop, pErr);
    if (rc) return rc;
    m = r->pTo;
    if (*z == 0) {
      /* Ends at a relation: its key. */
      p->pField = p->aHop[p->nHop - 1].pToKey;
      return QUAY_OK;
    }
  }
  return quay__err(pErr, QUAY_EUNKNOWN_FIELD, "%s: empty field name", zWhat);
}

int quay_qs_order_by(quay_qs *pQs, const char *const *az, int n,
                     quay_qs **ppOut, quay_err *pErr) {
  quay_qs *q;
  int i, rc;
  FieldPath *a = NULL;
  *ppOut = NULL;
  if (n > 0) {
    a = quay__calloc(sizeof(FieldPath) * (size_t)n);
    if (a == NULL) return quay__oom(pErr);
  }
  for (i = 0; i < n; i++) {
    const char *z = az[i];
    int desc = 0;
    if (z[0] == '-') {
      desc = 1;
      z++;
    } else if (z[0] == '+') {
      z++;
    }
    rc = quay__field_path(pQs, z, &a[i], "order_by", pErr);
    if (rc) {
      int k;
      for (k = 0; k <= i; k++) quay__free(a[k].zAnn);
      quay__free(a);
      return rc;
    }
    a[i].desc = desc;
  }
  q = qs_push(pQs, QS_ORDER);
  if (q == NULL) {
    for (i = 0; i < n; i++) quay__free(a[i].zAnn);
    quay__free(a);
    return quay__oom(pErr);
  }
  q->aOrder = a;
  q->nOrder = n;
  *ppOut = q;
  return QUAY_OK;
}

static int qs_number(quay_qs *pQs, int eOp, int64_t n, quay_qs **ppOut,
                     quay_err *pErr) {
  quay_qs *q;
  *ppOut = NULL;
  if (n < 0) {
    return quay__err(pErr, QUAY_EVALIDATION, "%s must be 0 or more (got %lld)",
                     eOp == QS_LIMIT ? "limit" : "offset", (long long)n);
  }
  q = qs_push(pQs, eOp);
  if (q == NULL) return quay__oom(pErr);
  q->n = n;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_limit(quay_qs *pQs, int64_t n, quay_qs **ppOut, quay_err *pErr) {
  return qs_number(pQs, QS_LIMIT, n, ppOut, pErr);
}

int quay_qs_offset(quay_qs *pQs, int64_t n, quay_qs **ppOut, quay_err *pErr) {
  return qs_number(pQs, QS_OFFSET, n, ppOut, pErr);
}

int quay_qs_load(quay_qs *pQs, const char *zPath, int eHow, quay_qs *pSub,
                 const char *zTo, quay_qs **ppOut, quay_err *pErr) {
  Hop aHop[QUAY_MAX_HOPS];
  int nHop = 0, i, rc;
  quay_qs *q;
  Rel *apRel[QUAY_MAX_HOPS];
  int nRel = 0;
  *ppOut = NULL;
  rc = rel_path(pQs->pModel, zPath, aHop, &nHop, apRel, &nRel, pErr);
  if (rc) return rc;
  if (eHow == QUAY_LOAD_JOIN) {
    for (i = 0; i < nRel; i++) {
      if (apRel[i]->toMany) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "select_related('%s'): %s.%s is a to-many relation; "
                         "use prefetch_related or with", zPath,
                         apRel[i]->pFrom->zName, apRel[i]->zName);
      }
      if (apRel[i]->eKind == QUAY_R_THROUGH) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "select_related('%s'): %s.%s is a quay.through path;"
                         " use prefetch_related or with", zPath,
                         apRel[i]->pFrom->zName, apRel[i]->zName);
      }
    }
  }
  if (pSub && pSub->pModel != apRel[nRel - 1]->pTo) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs): qs must be a query set of %s, "
                     "got one of %s", zPath, apRel[nRel - 1]->pTo->zName,
                     pSub->pModel->zName);
  }
  if (zTo && quay__model_field(pQs->pModel, zTo) == NULL &&
      quay__model_rel(apRel[nRel - 1]->pFrom, zTo) != NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs, {to = '%s'}): %s is a relation "
                     "of %s; pick another name", zPath, zTo, zTo,
                     apRel[nRel - 1]->pFrom->zName);
  }
  if (zTo && quay__model_field(apRel[nRel - 1]->pFrom, zTo) != NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs, {to = '%s'}): %s is a field of "
                     "%s; pick another name", zPath, zTo, zTo,
                     apRel[nRel - 1]->pFrom->zName);
  }
  q = qs_push(pQs, QS_LOAD);
  if (q == NULL) return quay__oom(pErr);
  q->zPath = quay__strdup(zPath);
  q->zTo = zTo ? quay__strdup(zTo) : NULL;
  if (q->zPath == NULL || (zTo && q->zTo == NULL)) {
    quay_qs_free(q);
    return quay__oom(pErr);
  }
  q->eHow = eHow;
  q->pSub = quay_qs_ref(pSub);
  memcpy(q->apLoad, apRel, sizeof(Rel *) * (size_t)nRel);
  q->nLoad = nRel;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_with_count(quay_qs *pQs, const char *zPath, quay_qs **ppOut,
                       quay_err *pErr) {
  quay_qs *q;
  int rc;
  size_t n;
  *ppOut = NULL;
  q = qs_push(pQs, QS_COUNT_ANN);
  if (q == NULL) return quay__oom(pErr);
  rc = rel_path(pQs->pModel, zPath, q->aHop, &q->nHop, NULL, NULL, pErr);
  if (rc) {
    quay_qs_free(q);
    return rc;
  }
  n = strlen(zPath);
  q->zPath = quay__strdup(zPath);
  q->zAnn = quay__malloc(n + 7);
  if (q->zPath == NULL || q->zAnn == NULL) {
    quay_qs_free(q);
    return quay__oom(pErr);
  }
  memcpy(q->zAnn, zPath, n);
  memcpy(q->zAnn + n, "_count", 7);
  if (quay__model_field(pQs->pModel, q->zAnn) ||
      quay__model_rel(pQs->pModel, q->zAnn)) {
    rc = quay__err(pErr, QUAY_EMISUSE,
                   "with_count('%s'): %s.%s already exists", zPath,
                   pQs->pModel->zName, q->zAnn);
    quay_qs_free(q);
    return rc;
  }
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_strict(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr) {
  quay_qs *q = qs_push(pQs, QS_STRICT);
  *ppOut = q;
  return q ? QUAY_OK : quay__oom(pErr);
}

int quay_qs_is_strict(const quay_qs *q) {
  for (; q; q = q->pParent) {
    if (q->eOp == QS_STRICT) return 1;
  }
  return 0;
}

int quay_qs_for_update(quay_qs *pQs, unsigned mFlags, quay_qs **ppOut,
                       quay_err *pErr) {
  quay_qs *q;
  *ppOut = NULL;
  if ((mFlags & QUAY_LOCK_NOWAIT) && (mFlags & QUAY_LOCK_SKIP_LOCKED)) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "select_for_update: nowait and skip_locked exclude each "
                     "other (give one of them)");
  }
  if (mFlags & ~(unsigned)(QUAY_LOCK_NOWAIT | QUAY_LOCK_SKIP_LOCKED)) {
    return quay__err(pErr, QUAY_EMISUSE, "select_for_update: bad flags");
  }
  q = qs_push(pQs, QS_LOCK);
  if (q == NULL) return quay__oom(pErr);
  q->n = (int64_t)mFlags;
  *ppOut = q;
  return QUAY_OK;
}

int quay__qs_lock(const quay_qs *q) {
  for (; q; q = q->pParent) {
    if (q->eOp == QS_LOCK) return (int)q->n;
  }
  return -1;
}

int quay_qs_related(quay_model *m, int iRel, const quay_value *pKey,
                    quay_qs **ppOut, quay_err *pErr) {
  quay_qs *pRoot, *q;
  Rel *r;
  int rc;
  *ppOut = NULL;
  if (iRel < 0 || iRel >= m->nRel) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_related: bad relation");
  }
  r = m->apRel[iRel];
  rc = quay_qs_new(r->pTo, &pRoot, pErr);
  if (rc) return rc;
  q = qs_push(pRoot, QS_SCOPE);
  quay_qs_free(pRoot);
  if (q == NULL) return quay__oom(pErr);
  q->pScopeRel = r;
  if (quay__value_copy(&q->scopeKey, pKey)) {
    quay_qs_free(q);
    return quay__oom(pErr);
  }
  *ppOut = q;
  return QUAY_OK;
}

/*
** Flatten a chain into a view (root first).  Arrays live in pArena.  Of
** several limits the smallest holds (Django's limit of a limited set), so
** first() and get(), which add limit(1) and limit(2), read within the
** set's own limit; the last offset holds.
*/
int quay__qs_view(quay_qs *pQs, QsView *v, Arena *pArena, quay_err *pErr) {
  quay_qs *q;
  int n = 0, i;
  quay_qs **a;
  memset(v, 0, sizeof(*v));
  v->pModel = pQs->pModel;
  v->limit = -1;
  v->offset = -1;
  for (q = pQs; q; q = q->pParent) n++;
  a = quay__arena_alloc(pArena, sizeof(quay_qs *) * (size_t)n * 4);
  if (a == NULL) return quay__oom(pErr);
  i = n;
  for (q = pQs; q; q = q->pParent) a[--i] = q;
  v->apFilter = a + n;
  v->apLoad = a + 2 * n;
  v->apCount = a + 3 * n;
  for (i = 0; i < n; i++) {
    q = a[i];
    switch (q->eOp) {
      case QS_FILTER: v->apFilter[v->nFilter++] = q; break;
      case QS_ORDER: v->pOrder = q; break;
      case QS_LIMIT:                /* a later limit only narrows */
        if (v->limit < 0 || q->n < v->limit) v->limit = q->n;
        break;
      case QS_OFFSET: v->offset = q->n; break;
      case QS_LOAD: v->apLoad[v->nLoad++] = q; break;
      case QS_COUNT_ANN: v->apCount[v->nCount++] = q; break;
      case QS_STRICT: v->strict = 1; break;
      case QS_SCOPE: v->pScope = q; break;
    }
  }
  return QUAY_OK;
}
/* }================================================================== */
