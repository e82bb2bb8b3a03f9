/*
** engine/qs.c
** Query sets, condition trees and the one path walker: building, name
** checking, lifetime.
** See LICENSE
**
** A query set is an immutable node that holds one reference to its parent,
** so chaining is O(1) and sets share their common prefix.  Every builder
** checks its input against the schema at once (unknown names, lookups that
** do not fit, values of the wrong type), so errors surface where the user
** wrote them, and the SQL builder only ever sees resolved hops and fields.
**
** Every "__" path of the API goes through quay__path_walk (filters,
** where_has, loads, order_by, pluck, values, quay.F, aggregates), so one
** set of rules answers (docs/reference.md "Names in paths"):
**   - a segment naming neither a field nor a relation: unknown_field
**     (unknown_relation where only relations may appear);
**   - a segment after a field that is not a lookup: bad_lookup;
**   - a path ending at a relation compares the related row's key
**     (`author = u`, `posts = 1`); `rel__isnull` is an existence test.
** A condition leaf binds in named steps: bind_target (the path, or an
** annotation name), bind_transform (__year/__month/__day), bind_lookup,
** then bind_relation_test or bind_values.  Record values are turned into
** keys here through the binding's xGet.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

static const char *const azLookup[] = {
  NULL, "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains",
  "icontains", "startswith", "endswith", "isnull", "between", "iexact",
  "istartswith", "iendswith"
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

/* Non-0 for the text lookups (a string or text field). */
static int lookup_is_text(int e) {
  return e == LK_CONTAINS || e == LK_ICONTAINS || e == LK_STARTSWITH ||
         e == LK_ENDSWITH || e == LK_IEXACT || e == LK_ISTARTSWITH ||
         e == LK_IENDSWITH;
}

/* The date part transform named z (QUAY_UNIT_*), or 0. */
static int part_code(const char *z) {
  if (strcmp(z, "year") == 0) return QUAY_UNIT_YEAR;
  if (strcmp(z, "month") == 0) return QUAY_UNIT_MONTH;
  if (strcmp(z, "day") == 0) return QUAY_UNIT_DAY;
  return 0;
}

static const char *zLookupList =
  "eq, ne, lt, lte, gt, gte, in, not_in, contains, icontains, startswith, "
  "endswith, iexact, istartswith, iendswith, isnull, between; year, month, "
  "day on dates";

/*
** {==================================================================
** Condition trees
** ===================================================================
*/
int quay_cond_group(int eOp, quay_cond **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pp == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_group: %s is NULL",
        "ppCond");
  }
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
  /* NULL arguments (quay.h "Conventions"). */
  if (zPath == NULL || pVal == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_leaf: %s is NULL", zPath
        == NULL ? "zPath" : pVal == NULL ? "pVal" : "ppCond");
  }
  if (quay__values_check(pErr, "quay_cond_leaf", pVal, 1)) {
    *pp = NULL;
    return QUAY_EMISUSE;
  }
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

int quay_cond_leaf_expr(const char *zPath, quay_expr *pExpr, quay_cond **pp,
                        quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (zPath == NULL || pExpr == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    quay_expr_free(pExpr);
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_leaf_expr: %s is NULL",
        zPath == NULL ? "zPath" : pExpr == NULL ? "pExpr" : "ppCond");
  }
  Cond *c;
  *pp = NULL;
  c = quay__calloc(sizeof(*c));
  if (c == NULL || (c->zPath = quay__strdup(zPath)) == NULL) {
    quay__free(c);
    quay__expr_free((Expr *)pExpr);
    return quay__oom(pErr);
  }
  c->eOp = CN_LEAF;
  c->pExpr = (Expr *)pExpr;
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
  /* NULL arguments (quay.h "Conventions"). */
  if (pGroup == NULL || pChild == NULL) {
    quay_cond_free(pChild);
    return quay__err(pErr, QUAY_EMISUSE, "quay_cond_add: %s is NULL", pGroup
        == NULL ? "pGroup" : "pChild");
  }
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

/* Free a tree of any depth without recursion: a work list threaded
** through pNextFree (no allocation, so it cannot fail). */
void quay__cond_free(Cond *c) {
  Cond *pList = c;
  if (c) c->pNextFree = NULL;
  while (pList) {
    int i;
    c = pList;
    pList = c->pNextFree;
    for (i = 0; i < c->nChild; i++) {
      c->apChild[i]->pNextFree = pList;
      pList = c->apChild[i];
    }
    quay__free(c->apChild);
    quay__free(c->zPath);
    quay__free(c->zJsonKey);
    quay__value_clear(&c->val);
    quay__expr_free(c->pExpr);
    quay_qs_free(c->pSub);
    quay__free(c);
  }
}

void quay_cond_free(quay_cond *p) { quay__cond_free((Cond *)p); }

int quay__cond_has_agg(const Cond *c) {
  int i;
  if (c == NULL) return 0;
  if (c->eOp == CN_LEAF) {
    return (c->pAnn && c->pAnn->pExpr->bAgg) || (c->pExpr && c->pExpr->bAgg);
  }
  for (i = 0; i < c->nChild; i++) {
    if (quay__cond_has_agg(c->apChild[i])) return 1;
  }
  return 0;
}
/* }================================================================== */


/*
** {==================================================================
** The path walker
** ===================================================================
*/
/* Non-0 when a "__" path has an empty segment (leading, trailing or
** doubled separators), which no name can fill. */
static int path_has_empty(const char *z) {
  size_t n = strlen(z);
  return n == 0 || strncmp(z, "__", 2) == 0 ||
         (n >= 2 && strcmp(z + n - 2, "__") == 0) || strstr(z, "____") != NULL;
}

/*
** Split off the next "__"-separated segment of *pz into z (NUL-ended).
** Returns 0 at the end, -1 for a segment longer than any name can be
** (never cut short: a cut name could match another).
*/
static int next_segment(const char **pz, char *z, size_t nz) {
  const char *s = *pz, *e;
  size_t n;
  if (*s == 0) return 0;
  e = strstr(s, "__");
  n = e ? (size_t)(e - s) : strlen(s);
  if (n >= nz) return -1;
  memcpy(z, s, n);
  z[n] = 0;
  *pz = e ? e + 2 : s + strlen(s);
  return 1;
}

int quay__path_walk(quay_model *m, quay_model *pPivot, const char *zPath,
                    int eMode, const char *zWhat, PathRes *p,
                    quay_err *pErr) {
  const char *z = zPath, *zSeg0;
  char zSeg[256];
  int rc, eNext;
  int codeUnknown = eMode == PATH_RELATIONS ? QUAY_EUNKNOWN_RELATION
                                            : QUAY_EUNKNOWN_FIELD;
  memset(p, 0, sizeof(*p));
  p->zRest = "";
  if (zPath == NULL) zPath = z = "";
  if (pPivot && strncmp(z, "pivot__", 7) == 0) {
    p->isPivot = 1;
    m = pPivot;
    z += 7;
  } else if (pPivot && strcmp(z, "pivot") == 0 && eMode != PATH_RELATIONS) {
    return quay__err(pErr, QUAY_EBAD_LOOKUP,
                     "%s '%s': pivot needs a field: pivot__<field>", zWhat,
                     zPath);
  }
  if (*z == 0 || path_has_empty(z)) {
    return quay__err(pErr, codeUnknown, "%s '%s' is not a %s path (empty "
                     "name between \"__\")", zWhat, zPath,
                     eMode == PATH_RELATIONS ? "relation" : "field");
  }
  p->pModel = m;
  for (;;) {
    Field *f;
    Rel *r;
    zSeg0 = z;
    eNext = next_segment(&z, zSeg, sizeof(zSeg));
    if (eNext == 0) break;
    if (eNext < 0) {
      return quay__err(pErr, codeUnknown, "%s '%s': a name is longer than "
                       "%d bytes", zWhat, zPath, (int)sizeof(zSeg) - 1);
    }
    f = quay__model_field(m, zSeg);
    if (f) {
      if (eMode == PATH_RELATIONS) {
        return quay__err(pErr, QUAY_EUNKNOWN_RELATION,
                         "%s '%s': %s.%s is a field, not a relation", zWhat,
                         zPath, m->zName, f->zName);
      }
      p->pField = f;
      p->zRest = z;
      if (eMode == PATH_TO_ONE && *z && f->eType == QUAY_T_JSON) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "%s '%s': %s.%s is a json field; paths into a "
                         "document ('%s') work in filters (%s__%s = v), "
                         "not in %s", zWhat, zPath, m->zName, f->zName, z,
                         f->zName, z, zWhat);
      }
      if (eMode == PATH_TO_ONE && *z) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "%s '%s': %s.%s is a field, so '%s' cannot follow "
                         "it", zWhat, zPath, m->zName, f->zName, z);
      }
      return QUAY_OK;
    }
    r = quay__model_rel(m, zSeg);
    if (r == NULL) {
      if (p->nRel > 0 && eMode == PATH_FIELD &&
          (quay__lookup_code(zSeg) || part_code(zSeg))) {
        p->zRest = zSeg0;                 /* a lookup after a relation */
        return QUAY_OK;
      }
      return quay__err(pErr, codeUnknown, "%s '%s': %s has no %s '%s'",
                       zWhat, zPath, m->zName,
                       eMode == PATH_RELATIONS ? "relation"
                                               : "field or relation", zSeg);
    }
    if (r->toMany && eMode == PATH_TO_ONE) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s '%s': %s.%s is a to-many relation; only to-one "
                       "paths can be used here (aggregate it: quay.count, "
                       "quay.sum, ...)", zWhat, zPath, m->zName, r->zName);
    }
    if (p->nRel >= QUAY_MAX_HOPS) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP, "%s '%s': the path is longer "
                       "than %d relations", zWhat, zPath, QUAY_MAX_HOPS);
    }
    p->iLastRel = p->nHop;
    rc = quay__rel_hops(r, p->aHop, &p->nHop, pErr);
    if (rc) return rc;
    p->apRel[p->nRel++] = r;
    p->toMany |= r->toMany;
    m = r->pTo;
    p->pModel = m;
  }
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** Binding conditions to a model
** ===================================================================
*/
/* Context of a binding: the model, the pivot model reachable as
** "pivot__" in a related set of a custom many-to-many, and the query set
** whose annotations (and quay.F columns) the leaves may name. */
typedef struct BindCtx {
  quay_model *pModel;
  quay_model *pPivot;
  quay_qs *pQs;             /* or NULL: no annotations */
  quay_err *pErr;
} BindCtx;

/*
** Convert *pV in place: records to the key field zKey of model pWant, then
** to the field's form (quay__value_conform: numbers as doubles, integral
** doubles as integers, datetimes normalized), exactly as a stored value.
** The value is owned by the condition, so normalized text is written over
** its own (never longer) bytes.
*/
static int normalize_value(quay_model *m, Field *f, quay_model *pWant,
                           Field *pKey, quay_value *v, quay_err *pErr) {
  if (v->type == QUAY_RECORD) {
    quay_value k;
    if (pWant == NULL) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: a record is not a value for this field",
                             m->zName, f->zName);
    }
    if (v->u.rec.pModel && v->u.rec.pModel->pDb != pWant->pDb) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: the %s record belongs to another "
                             "database; use a record loaded from this one",
                             m->zName, f->zName,
                             quay_model_name(v->u.rec.pModel));
    }
    if (v->u.rec.pModel != pWant) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: expected a %s record, got a %s record",
                             m->zName, f->zName, pWant->zName,
                             v->u.rec.pModel ? quay_model_name(v->u.rec.pModel)
                                             : "foreign");
    }
    if (v->u.rec.xGet(v->u.rec.p, pKey->zName, &k) || k.type == QUAY_NULL) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: the %s record has no %s yet (save it "
                             "first)", m->zName, f->zName, pWant->zName,
                             pKey->zName);
    }
    if (QUAY_VALUE_HAS_BYTES(k.type)) {
      char *z = quay__strndup(k.u.z, k.n);
      if (z == NULL) return quay__oom(pErr);
      k.u.z = z;
    }
    *v = k;
  }
  return quay__value_conform_owned(m, f, v, pErr);
}

/* The pivot model available as "pivot__" in this chain. */
static quay_model *qs_pivot(quay_qs *q);
static const quay_qs *qs_find(const quay_qs *q, int eOp);

/*
** Step 1: what the leaf compares.  The first segment may name an
** annotation of the query set (`n_posts__gte`); otherwise the path is
** walked (relations, then a field or nothing).  *pzRest gets what follows.
*/
static int bind_target(BindCtx *x, Cond *c, const char **pzRest) {
  PathRes pr;
  int rc;
  if (x->pQs && strncmp(c->zPath, "pivot__", 7) != 0) {
    const char *e = strstr(c->zPath, "__");
    size_t n = e ? (size_t)(e - c->zPath) : strlen(c->zPath);
    char zName[256];
    if (n > 0 && n < sizeof(zName)) {
      Ann *a;
      memcpy(zName, c->zPath, n);
      zName[n] = 0;
      a = quay__model_field(x->pModel, zName) ||
              quay__model_rel(x->pModel, zName)
              ? NULL : quay__qs_ann(x->pQs, zName);
      if (a) {
        c->pAnn = a;
        *pzRest = e ? e + 2 : "";
        return QUAY_OK;
      }
    }
  }
  rc = quay__path_walk(x->pModel, x->pPivot, c->zPath, PATH_FIELD,
                       "condition", &pr, x->pErr);
  if (rc) return rc;
  memcpy(c->aHop, pr.aHop, sizeof(Hop) * (size_t)pr.nHop);
  c->nHop = pr.nHop;
  c->iLastRel = pr.iLastRel;
  c->isPivot = pr.isPivot;
  c->pField = pr.pField;
  *pzRest = pr.zRest;
  return QUAY_OK;
}

/* The type a leaf's value is compared as. */
static int leaf_type(const Cond *c) {
  int nPlaces;
  return quay__leaf_type(c, &nPlaces);
}

/* The model a leaf's path ends in (for messages). */
static const char *leaf_model(const BindCtx *x, const Cond *c) {
  if (c->nHop) return c->aHop[c->nHop - 1].pTo->zName;
  return (c->isPivot && x->pPivot ? x->pPivot : x->pModel)->zName;
}

/*
** Steps 2 and 3 for a quay.json field: keys into the document, then at
** most one lookup (data__a__b__gt = 5); has_key = "k" tests that the key
** k exists (at the keys before it) and becomes isnull = false on the
** keys with k.  Keys are quoted labels on SQLite, so they may not hold a
** double quote.
*/
static int bind_json_path(BindCtx *x, Cond *c, const char *zRest) {
  char zSeg[256];
  const char *z = zRest, *zEnd = zRest;
  int e, bHasKey = 0;
  c->eLookup = LK_EQ;
  for (;;) {
    const char *zStart = z;
    e = next_segment(&z, zSeg, sizeof(zSeg));
    if (e == 0) break;
    if (e < 0) {
      return quay__err(x->pErr, QUAY_EBAD_LOOKUP, "%s: a JSON key in a path "
                       "is at most %d bytes", c->zPath, (int)sizeof(zSeg) - 1);
    }
    if (*z == 0 && strcmp(zSeg, "has_key") == 0) {
      bHasKey = 1;
      break;
    }
    if (*z == 0 && quay__lookup_code(zSeg)) {
      c->eLookup = quay__lookup_code(zSeg);
      break;
    }
    if (strchr(zSeg, '"')) {
      return quay__err(x->pErr, QUAY_EBAD_LOOKUP, "%s: a JSON key in a path "
                       "cannot contain a double quote", c->zPath);
    }
    zEnd = zStart + strlen(zSeg);
  }
  if (bHasKey) {
    const quay_value *v = &c->val;
    if (c->pExpr || v->type != QUAY_TEXT || v->n == 0 ||
        memchr(v->u.z, '"', v->n) || memchr(v->u.z, 0, v->n) ||
        quay__utf8_len(v->u.z, v->n) < 0) {
      return quay__err(x->pErr, QUAY_EBAD_LOOKUP, "%s: has_key takes a key: "
                       "a non-empty UTF-8 string without double quotes",
                       c->zPath);
    }
    c->zJsonKey = quay__strndup(v->u.z, v->n);
    if (c->zJsonKey == NULL) return quay__oom(x->pErr);
    quay__value_clear(&c->val);
    c->val.type = QUAY_BOOL;
    c->val.u.b = 0;
    c->eLookup = LK_ISNULL;
    c->bJsonExists = 1;
  } else if (zEnd == zRest) {
    /* The whole document: only its presence is compared. */
    if (c->eLookup == LK_ISNULL ||
        ((c->eLookup == LK_EQ || c->eLookup == LK_NE) &&
         c->val.type == QUAY_NULL && c->pExpr == NULL)) {
      return QUAY_OK;
    }
    return quay__err(x->pErr, QUAY_EBAD_LOOKUP, "%s: a json field is "
                     "compared at a key inside it (%s__<key> = value, "
                     "%s__has_key = \"key\") or with isnull", c->zPath,
                     c->zPath, c->zPath);
  } else if (c->pExpr || (c->eLookup >= LK_CONTAINS &&
                          c->eLookup != LK_ISNULL &&
                          c->eLookup != LK_BETWEEN)) {
    return quay__err(x->pErr, QUAY_EBAD_LOOKUP, "%s: a value inside JSON "
                     "takes eq, ne, lt, lte, gt, gte, in, not_in, between, "
                     "isnull or has_key%s", c->zPath,
                     c->pExpr ? ", with a value (not quay.F)" : "");
  }
  c->zJsonPath = zRest;
  c->nJsonPath = (int)(zEnd - zRest);
  return QUAY_OK;
}

int quay__json_ordered_kind(const Cond *c) {
  int m = c->mJsonKind;
  if (c->eLookup != LK_LT && c->eLookup != LK_LTE && c->eLookup != LK_GT &&
      c->eLookup != LK_GTE && c->eLookup != LK_BETWEEN) {
    return 0;
  }
  return (m & (m - 1)) ? -1 : m;
}

/* Steps 2 and 3: a date part transform, then at most one lookup. */
static int bind_lookup(BindCtx *x, Cond *c, const char *zRest) {
  char zSeg[64];
  const char *z = zRest;
  int e;
  if (c->pField && c->pAnn == NULL && c->pField->eType == QUAY_T_JSON) {
    return bind_json_path(x, c, zRest);
  }
  c->eLookup = LK_EQ;
  e = next_segment(&z, zSeg, sizeof(zSeg));
  if (e == 0) return QUAY_OK;
  if (e > 0 && part_code(zSeg)) {
    int t = leaf_type(c);
    if (!(quay_type_flags(t) & QUAY_TF_DATE)) {
      return quay__err(x->pErr, QUAY_EBAD_LOOKUP,
                       "%s: __%s needs a datetime or date field", c->zPath,
                       zSeg);
    }
    c->ePart = part_code(zSeg);
    e = next_segment(&z, zSeg, sizeof(zSeg));
    if (e == 0) return QUAY_OK;
  }
  if (e < 0 || (c->eLookup = quay__lookup_code(zSeg)) == 0 || *z) {
    return quay__err(x->pErr, QUAY_EBAD_LOOKUP,
                     "%s: '%s' is not a lookup here (use %s)", c->zPath,
                     e < 0 ? zRest : zSeg, zLookupList);
  }
  return QUAY_OK;
}

/*
** Step 4a: a path that ends at a relation.  It compares the related row's
** identifying key (`posts = 1` on User: a post whose id is 1); isnull,
** eq/ne with null, and <relation>__<its key>__isnull test existence.
*/
static int bind_relation_end(BindCtx *x, Cond *c) {
  Hop *h = &c->aHop[c->nHop - 1];
  if (c->pField == NULL) c->pField = quay__hop_ident(h);
  if (c->pExpr == NULL && (c->eLookup == LK_EQ || c->eLookup == LK_NE) &&
      c->val.type == QUAY_NULL && c->ePart == 0) {
    int bNull = c->eLookup == LK_EQ;
    c->eLookup = LK_ISNULL;
    c->val.type = QUAY_BOOL;
    c->val.u.b = bNull;
  }
  if (c->eLookup == LK_ISNULL && c->ePart == 0) {
    if (c->val.type != QUAY_BOOL || c->pExpr) {
      return quay__err(x->pErr, QUAY_EBAD_LOOKUP,
                       "%s: isnull takes true or false", c->zPath);
    }
    c->bRelTest = 1;
    c->bound = 1;
  }
  return QUAY_OK;
}

/* Is canonical decimal text z[n] (an optional '-', digits, a '.') a
** scaled integer an int64 holds? */
static int decimal_in_int64(const char *z, size_t n) {
  static const char zMax[] = "9223372036854775807";
  char zDig[24];
  size_t i, k = 0;
  int bNeg = n > 0 && z[0] == '-';
  for (i = (size_t)bNeg; i < n; i++) {
    if (z[i] == '.') continue;
    if (k == 0 && z[i] == '0') continue;       /* leading zeros */
    if (k == sizeof(zDig) - 1) return 0;
    zDig[k++] = z[i];
  }
  zDig[k] = 0;
  if (k < 19) return 1;
  if (k > 19) return 0;
  /* -9223372036854775808 holds one more */
  return strcmp(zDig, zMax) <= 0 ||
         (bNeg && strcmp(zDig, "9223372036854775808") == 0);
}

/* Validate and normalize one compared value of leaf c. */
static int bind_one_value(BindCtx *x, Cond *c, quay_value *v,
                          quay_model *pWant, Field *pKey) {
  quay_model *m = c->nHop ? c->aHop[c->nHop - 1].pTo : x->pModel;
  Field tmp;
  const Field *f = c->pField;
  int rc;
  if (c->zJsonPath && !c->bJsonExists) {
    c->mJsonKind |= v->type == QUAY_TEXT ? QUAY_JK_STRING
                  : v->type == QUAY_BOOL ? QUAY_JK_BOOL
                  : v->type == QUAY_NULL ? 0 : QUAY_JK_NUMBER;
    return quay__json_compare_value(m, f, v, x->pErr);
  }
  if (c->ePart || c->pAnn) {
    /* A value compared with a date part or an annotation: checked as a
    ** value of that type (no column of the model holds it). */
    memset(&tmp, 0, sizeof(tmp));
    tmp.zName = c->pAnn ? c->pAnn->zName : (char *)c->zPath;
    tmp.zCol = tmp.zName;
    tmp.eType = quay__leaf_type(c, &tmp.nPlaces);
    if (tmp.eType == 0) tmp.eType = QUAY_T_NUMBER;
    /* An expression's decimal has no declared digits: any value whose
    ** scaled integer is an int64 (what SQLite computes; 19 digits at
    ** most), as the expression itself may read (F * F). */
    if (tmp.eType == QUAY_T_DECIMAL) tmp.nDigits = 19;
    tmp.mFlags = QUAY_F_NULL;
    f = &tmp;
  }
  rc = normalize_value(m, (Field *)f, pWant, pKey, v, x->pErr);
  if (rc == QUAY_OK && f == &tmp && v->type == QUAY_DECIMAL &&
      !decimal_in_int64(v->u.z, v->n)) {
    return quay__err_field(x->pErr, QUAY_EVALIDATION, m->zName, tmp.zName,
                           "%s.%s: '%.40s' is past the 64-bit scaled "
                           "integers of decimals (at %d places)", m->zName,
                           tmp.zName, v->u.z, tmp.nPlaces);
  }
  if (rc == QUAY_OK && (f != &tmp || leaf_type(c))) {
    rc = quay__value_fits(m, (Field *)f, v, 0, x->pErr);
  }
  return rc;
}

/* Step 4b: the lookup fits the compared type; values checked. */
static int bind_values(BindCtx *x, Cond *c, int bRelEnd) {
  quay_err *pErr = x->pErr;
  Field *f = c->pField;
  int t = leaf_type(c), rc;
  quay_model *pWant = NULL;
  Field *pKey = NULL;
  if (bRelEnd) {
    pWant = c->aHop[c->nHop - 1].pTo;   /* records of the target */
    pKey = c->pField;
  } else if (f && !c->ePart && f->pRel && f->pRel->pFk == f && f->pRel->pKey &&
             f->pRel->pFrom == (c->nHop ? c->aHop[c->nHop - 1].pTo
                                        : (c->isPivot ? x->pPivot
                                                      : x->pModel))) {
    pWant = f->pRel->pTo;               /* FK column: records of target */
    pKey = f->pRel->pKey;
  }
  if (lookup_is_text(c->eLookup)) {
    if (bRelEnd) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s does not apply to a relation", c->zPath,
                       quay__lookup_name(c->eLookup));
    }
    if (!(quay_type_flags(t) & QUAY_TF_TEXT)) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s needs a string or text field; %s.%s is %s",
                       c->zPath, quay__lookup_name(c->eLookup),
                       leaf_model(x, c), c->pAnn ? c->pAnn->zName
                       : f ? f->zName : "?", quay__type_name(t));
    }
  }
  if (t != 0 && !(quay_type_flags(t) & QUAY_TF_ORDERED) &&
      c->eLookup != LK_EQ && c->eLookup != LK_NE && c->eLookup != LK_ISNULL &&
      c->zJsonPath == NULL) {
    return quay__err(pErr, QUAY_EBAD_LOOKUP,
                     "%s: %s does not apply to the %s field %s.%s",
                     c->zPath, quay__lookup_name(c->eLookup),
                     quay__type_name(t), leaf_model(x, c),
                     f ? f->zName : "?");
  }
  if (c->pExpr) {
    /* quay.F and friends: compared as SQL, one operand each side. */
    if (c->eLookup < LK_EQ || c->eLookup > LK_GTE) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP,
                       "%s: %s cannot take an expression (use eq, ne, lt, "
                       "lte, gt or gte)", c->zPath,
                       quay__lookup_name(c->eLookup));
    }
    if (x->pQs == NULL) {
      return quay__err(pErr, QUAY_EMISUSE, "%s: quay.F needs a query set",
                       c->zPath);
    }
    rc = quay__expr_bind(c->pExpr, x->pQs, 0, pErr);
    return rc ? rc : quay__expr_check_type(c->pExpr, t, NULL, c->zPath,
                                           pErr);
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
        rc = bind_one_value(x, c, v, pWant, pKey);
        if (rc) return rc;
      }
      return QUAY_OK;
    }
    case LK_ISNULL:
      if (c->val.type != QUAY_BOOL) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "%s: isnull takes true or false", c->zPath);
      }
      return QUAY_OK;
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
      return bind_one_value(x, c, &c->val, pWant, pKey);
  }
}

/*
** Resolve a condition leaf: target, transform, lookup, then the relation
** test or the values.
*/
static int bind_leaf(BindCtx *x, Cond *c) {
  const char *zRest = "";
  int rc, bRelEnd;
  c->nHop = 0;
  rc = bind_target(x, c, &zRest);
  if (rc == QUAY_OK) rc = bind_lookup(x, c, zRest);
  if (rc) return rc;
  bRelEnd = c->pAnn == NULL && c->pField == NULL;
  if (bRelEnd) {
    rc = bind_relation_end(x, c);
    if (rc || c->bound) return rc;
  } else if (c->eLookup == LK_ISNULL && c->nHop > 0 && c->ePart == 0 &&
             c->pField == quay__hop_ident(&c->aHop[c->nHop - 1])) {
    /* tags__id__isnull: Django's spelling of tags__isnull. */
    return bind_relation_end(x, c);
  }
  rc = bind_values(x, c, bRelEnd);
  if (rc == QUAY_OK) c->bound = 1;
  return rc;
}

/* The depth a condition is refused beyond (include/quay.h). */
static int cond_too_deep(quay_err *pErr, int nDepth, const Cond *c) {
  return quay__err(pErr, QUAY_EMISUSE,
                   "conditions nest %d levels deep%s%s%s, more than the "
                   "limit of %d (QUAY_MAX_COND_DEPTH: each nested group of "
                   "conditions or quay.any counts 1, each relation hop of a "
                   "path %d): split the filter into several filter calls",
                   nDepth, c && c->zPath ? " (at '" : "",
                   c && c->zPath ? c->zPath : "", c && c->zPath ? "')" : "",
                   QUAY_MAX_COND_DEPTH, QUAY_COND_HOP_DEPTH);
}

/*
** Bind the tree c.  nAbove counts the levels above c in the SQL: enclosing
** groups, an exclude's NOT, QUAY_COND_HOP_DEPTH per hop of an enclosing
** where_has.  A tree deeper than QUAY_MAX_COND_DEPTH (a leaf's hops
** included) is refused, so every tree accepted parses on SQLite, and this
** recursion and the SQL builder's stay bounded for trees built through the
** C API too.
*/
static int bind_cond(BindCtx *x, Cond *c, int nAbove) {
  int i, rc, nDepth;
  switch (c->eOp) {
    case CN_LEAF:
      if (nAbove > QUAY_MAX_COND_DEPTH) {
        return cond_too_deep(x->pErr, nAbove, c);
      }
      rc = c->bound ? QUAY_OK : bind_leaf(x, c);
      if (rc) return rc;
      /* an isnull test of a relation became an existence test */
      nDepth = nAbove + QUAY_COND_HOP_DEPTH *
                            (c->eOp == CN_NOT ? c->apChild[0]->nHop : c->nHop)
               + (c->eOp == CN_NOT);
      break;
    case CN_HAS:
      nDepth = nAbove + QUAY_COND_HOP_DEPTH * c->nHop;   /* bound when built */
      break;
    default:
      if (c->nChild > QUAY_MAX_COND_WIDTH) {
        return quay__err(x->pErr, QUAY_EMISUSE,
                         "%d conditions in one group (names of one table or "
                         "alternatives of one quay.any), more than the limit "
                         "of %d (QUAY_MAX_COND_WIDTH): compare one field "
                         "with many values with __in, or split the filter",
                         c->nChild, QUAY_MAX_COND_WIDTH);
      }
      /* a wide group is written in chunks: one more level */
      nDepth = nAbove + 1 + (c->nChild > QUAY_COND_CHUNK);
      if (nDepth > QUAY_MAX_COND_DEPTH) break;
      for (i = 0; i < c->nChild; i++) {
        rc = bind_cond(x, c->apChild[i], nDepth);
        if (rc) return rc;
      }
      return QUAY_OK;
  }
  if (nDepth > QUAY_MAX_COND_DEPTH) return cond_too_deep(x->pErr, nDepth, c);
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** Query-set nodes
** ===================================================================
*/
static void ann_free(Ann *a, int n) {
  int i;
  for (i = 0; i < n; i++) {
    quay__free(a[i].zName);
    quay__expr_free(a[i].pExpr);
  }
  quay__free(a);
}

static void qs_free_payload(quay_qs *q) {
  int i;
  quay__cond_free(q->pCond);
  for (i = 0; i < q->nOrder; i++) quay__expr_free(q->apOrder[i]);
  quay__free(q->apOrder);
  quay__free(q->zPath);
  quay__free(q->zTo);
  ann_free(q->aAnn, q->nAnn);
  quay_qs_free(q->pSub);
  quay__value_clear(&q->scopeKey);
}

/* Drop a reference; frees the node and, iteratively, unshared parents. */
void quay_qs_free(quay_qs *q) {
  while (q && --q->nRef == 0) {
    quay_qs *pParent = q->pParent;
    quay_db *pRootDb = q->eOp == QS_ROOT ? q->pModel->pDb : NULL;
    qs_free_payload(q);
    quay__free(q);
    quay__db_release(pRootDb);   /* a root holds its db (exec.c) */
    q = pParent;
  }
}

quay_qs *quay_qs_ref(quay_qs *q) {
  /* NULL arguments (quay.h "Conventions"). */
  if (q == NULL) {
    return NULL;
  }
  if (q) q->nRef++;
  return q;
}

quay_model *quay_qs_model(const quay_qs *q) {
  return q ? q->pModel : NULL;
}

int quay_qs_new(quay_model *m, quay_qs **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_new: %s is NULL", m == NULL
        ? "pModel" : "ppQs");
  }
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
  quay__db_hold(m->pDb);
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

quay_model *quay__qs_pivot(quay_qs *q) { return qs_pivot(q); }

Ann *quay__qs_ann(quay_qs *q, const char *zName) {
  for (; q; q = q->pParent) {
    int i;
    if (q->eOp != QS_ANNOTATE && q->eOp != QS_VALUES) continue;
    for (i = 0; i < q->nAnn; i++) {
      Ann *a = &q->aAnn[i];
      /* A values column named by its own path is that path, not a name. */
      if (q->eOp == QS_VALUES && a->pExpr->eOp == EX_COL &&
          strcmp(a->pExpr->zPath, a->zName) == 0) {
        continue;
      }
      if (strcmp(a->zName, zName) == 0) return a;
    }
  }
  return NULL;
}

/* Non-0 when the chain groups (values() followed by an aggregate). */
static int qs_grouped(quay_qs *q) {
  for (; q; q = q->pParent) {
    int i;
    if (q->eOp == QS_VALUES) return 0;
    if (q->eOp != QS_ANNOTATE) continue;
    for (i = 0; i < q->nAnn; i++) {
      if (q->aAnn[i].pExpr->bAgg) {
        quay_qs *p;
        for (p = q->pParent; p; p = p->pParent) {
          if (p->eOp == QS_VALUES) return 1;
        }
      }
    }
  }
  return 0;
}

int quay_qs_filter(quay_qs *pQs, quay_cond *pCond, int bExclude,
                   quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pCond == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    quay_cond_free(pCond);
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_filter: %s is NULL", pQs ==
        NULL ? "pQs" : pCond == NULL ? "pCond" : "ppOut");
  }
  BindCtx x;
  quay_qs *q;
  int rc;
  *ppOut = NULL;
  x.pModel = pQs->pModel;
  x.pPivot = qs_pivot(pQs);
  x.pQs = pQs;
  x.pErr = pErr;
  rc = bind_cond(&x, (Cond *)pCond, bExclude ? 1 : 0);
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

int quay_qs_where_has(quay_qs *pQs, const char *zRel, quay_cond *pCond,
                      quay_qs *pSub, int bNot, quay_qs **ppOut,
                      quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || zRel == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    quay_cond_free(pCond);
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_where_has: %s is NULL", pQs
        == NULL ? "pQs" : zRel == NULL ? "zRel" : "ppOut");
  }
  Cond *pHas = NULL, *pTop;
  quay_qs *q, *pRoot = NULL;
  int rc;
  quay_model *pTarget;
  PathRes pr;
  *ppOut = NULL;
  pHas = quay__calloc(sizeof(*pHas));
  if (pHas == NULL) {
    quay__cond_free((Cond *)pCond);
    return quay__oom(pErr);
  }
  pHas->eOp = CN_HAS;
  pHas->bound = 1;
  rc = quay__path_walk(pQs->pModel, NULL, zRel, PATH_RELATIONS, "where_has",
                       &pr, pErr);
  if (rc) goto fail;
  memcpy(pHas->aHop, pr.aHop, sizeof(Hop) * (size_t)pr.nHop);
  pHas->nHop = pr.nHop;
  pTarget = pr.pModel;
  if (pCond) {
    BindCtx x;
    /* quay.F inside the conditions names columns of the related row. */
    rc = quay_qs_new(pTarget, &pRoot, pErr);
    if (rc) goto fail;
    x.pModel = pTarget;
    x.pPivot = NULL;
    x.pQs = pRoot;
    x.pErr = pErr;
    /* inside the outer filter's group, a NOT and the hops' subqueries */
    rc = bind_cond(&x, (Cond *)pCond,
                   1 + (bNot != 0) + QUAY_COND_HOP_DEPTH * pHas->nHop);
    quay_qs_free(pRoot);
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

/* Attach an order_by node with terms a[0..n) (taken, also on failure). */
static int push_order(quay_qs *pQs, Expr **a, int n, quay_qs **ppOut,
                      quay_err *pErr) {
  quay_qs *q;
  int i;
  for (i = 0; i < n; i++) {
    if (a[i]->eType == QUAY_T_JSON) {
      /* as quay.min / quay.max: jsonb and SQLite's text order differ */
      int rc = quay__err(pErr, QUAY_EBAD_LOOKUP, "order_by '%s': a json "
                         "field has no order (order by a field of another "
                         "type)", a[i]->zPath ? a[i]->zPath : "?");
      for (i = 0; i < n; i++) quay__expr_free(a[i]);
      quay__free(a);
      return rc;
    }
  }
  q = qs_push(pQs, QS_ORDER);
  if (q == NULL) {
    for (i = 0; i < n; i++) quay__expr_free(a[i]);
    quay__free(a);
    return quay__oom(pErr);
  }
  q->apOrder = a;
  q->nOrder = n;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_order_by(quay_qs *pQs, const char *const *az, int n,
                     quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || (az == NULL && n > 0) || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_order_by: %s is NULL", pQs
        == NULL ? "pQs" : (az == NULL && n > 0) ? "azTerm" : "ppOut");
  }
  if (n < 0) {
    *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_qs_order_by: n is %d, not a count", n);
  }
  Expr **a;
  int i, rc = QUAY_OK;
  *ppOut = NULL;
  a = quay__calloc(sizeof(Expr *) * (size_t)(n + 1));
  if (a == NULL) return quay__oom(pErr);
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    const char *z = az[i];
    int bDesc = 0;
    if (z[0] == '-') {
      bDesc = 1;
      z++;
    } else if (z[0] == '+') {
      z++;
    }
    rc = quay_expr_col(z, (quay_expr **)&a[i], pErr);
    if (rc == QUAY_OK) {
      a[i]->bDesc = bDesc;
      a[i]->zWhat = "order_by";
      rc = quay__expr_bind(a[i], pQs, 1, pErr);
    }
  }
  if (rc) {
    for (i = 0; i < n; i++) quay__expr_free(a[i]);
    quay__free(a);
    return rc;
  }
  return push_order(pQs, a, n, ppOut, pErr);
}

int quay_qs_order_by_expr(quay_qs *pQs, quay_expr *const *ap, int n,
                          quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || (ap == NULL && n > 0) || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    if (ap != NULL) { int k_; for (k_ = 0; k_ < n; k_++)
        quay_expr_free(ap[k_]); }
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_order_by_expr: %s is NULL",
        pQs == NULL ? "pQs" : (ap == NULL && n > 0) ? "apTerm" : "ppOut");
  }
  if (n < 0) {
    *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_qs_order_by_expr: n is %d, not a count", n);
  }
  Expr **a;
  int i, rc = QUAY_OK;
  *ppOut = NULL;
  a = quay__calloc(sizeof(Expr *) * (size_t)(n + 1));
  if (a == NULL) {
    for (i = 0; i < n; i++) quay__expr_free((Expr *)ap[i]);
    return quay__oom(pErr);
  }
  for (i = 0; i < n; i++) a[i] = (Expr *)ap[i];
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    rc = quay__expr_bind(a[i], pQs, 1, pErr);
  }
  if (rc) {
    for (i = 0; i < n; i++) quay__expr_free(a[i]);
    quay__free(a);
    return rc;
  }
  return push_order(pQs, a, n, ppOut, pErr);
}

static int qs_number(quay_qs *pQs, int eOp, int64_t n, quay_qs **ppOut,
                     quay_err *pErr) {
  quay_qs *q;
  *ppOut = NULL;
  if (n < 0) {
    return quay__err(pErr, QUAY_EMISUSE, "%s must be 0 or more (got %lld)",
                     eOp == QS_LIMIT ? "limit" : "offset", (long long)n);
  }
  q = qs_push(pQs, eOp);
  if (q == NULL) return quay__oom(pErr);
  q->n = n;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_limit(quay_qs *pQs, int64_t n, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_limit: %s is NULL", pQs ==
        NULL ? "pQs" : "ppOut");
  }
  return qs_number(pQs, QS_LIMIT, n, ppOut, pErr);
}

int quay_qs_offset(quay_qs *pQs, int64_t n, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_offset: %s is NULL", pQs ==
        NULL ? "pQs" : "ppOut");
  }
  return qs_number(pQs, QS_OFFSET, n, ppOut, pErr);
}

int quay_qs_load(quay_qs *pQs, const char *zPath, int eHow, quay_qs *pSub,
                 const char *zTo, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || zPath == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_load: %s is NULL", pQs ==
        NULL ? "pQs" : zPath == NULL ? "zPath" : "ppOut");
  }
  PathRes pr;
  int i, rc;
  quay_qs *q;
  Rel *pLast;
  *ppOut = NULL;
  if (eHow != QUAY_LOAD_JOIN && eHow != QUAY_LOAD_BATCH &&
      eHow != QUAY_LOAD_AUTO) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_qs_load('%s'): eHow %d is not QUAY_LOAD_JOIN, "
                     "QUAY_LOAD_BATCH or QUAY_LOAD_AUTO", zPath, eHow);
  }
  if (qs_find(pQs, QS_VALUES) != NULL) {
    /* value rows are plain tables: nothing to load related records into */
    return quay__err(pErr, QUAY_EMISUSE, "%s('%s') on a values set: its "
                     "rows are plain tables, not records; give the related "
                     "paths to values (values(\"author__name\"))",
                     eHow == QUAY_LOAD_JOIN ? "select_related"
                                            : "prefetch_related", zPath);
  }
  rc = quay__path_walk(pQs->pModel, NULL, zPath, PATH_RELATIONS,
                       eHow == QUAY_LOAD_JOIN ? "select_related"
                                              : "prefetch_related", &pr, pErr);
  if (rc) return rc;
  if (eHow == QUAY_LOAD_JOIN) {
    for (i = 0; i < pr.nRel; i++) {
      if (pr.apRel[i]->toMany) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP,
                         "select_related('%s'): %s.%s is a to-many relation; "
                         "use prefetch_related or with", zPath,
                         pr.apRel[i]->pFrom->zName, pr.apRel[i]->zName);
      }
    }
  }
  pLast = pr.apRel[pr.nRel - 1];
  if (pSub && pSub->pModel != pLast->pTo) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs): qs must be a query set of %s, "
                     "got one of %s", zPath, pLast->pTo->zName,
                     pSub->pModel->zName);
  }
  if (pSub && qs_grouped(pSub)) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs): qs groups rows (values with "
                     "an aggregate); prefetch loads records", zPath);
  }
  if (zTo && (quay__model_rel(pLast->pFrom, zTo) != NULL ||
              quay__model_field(pLast->pFrom, zTo) != NULL)) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay.prefetch('%s', qs, {to = '%s'}): %s is a %s of "
                     "%s; pick another name", zPath, zTo, zTo,
                     quay__model_rel(pLast->pFrom, zTo) ? "relation"
                                                        : "field",
                     pLast->pFrom->zName);
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
  memcpy(q->apLoad, pr.apRel, sizeof(Rel *) * (size_t)pr.nRel);
  q->nLoad = pr.nRel;
  *ppOut = q;
  return QUAY_OK;
}

/* Check an annotation name of pQs: not a field or relation, not taken. */
static int check_ann_name(quay_qs *pQs, const char *zName, const char *zWhat,
                          quay_err *pErr) {
  if (zName == NULL || *zName == 0 || strstr(zName, "__")) {
    return quay__err(pErr, QUAY_EMISUSE, "%s: '%s' is not a name (no "
                     "empty names, no \"__\")", zWhat, zName ? zName : "");
  }
  if (quay__model_field(pQs->pModel, zName) ||
      quay__model_rel(pQs->pModel, zName)) {
    return quay__err(pErr, QUAY_EMISUSE, "%s: %s.%s already exists; pick "
                     "another name", zWhat, pQs->pModel->zName, zName);
  }
  if (quay__qs_ann(pQs, zName)) {
    return quay__err(pErr, QUAY_EMISUSE, "%s: the name %s is already used "
                     "by an annotation of this query set", zWhat, zName);
  }
  return QUAY_OK;
}

/* One annotation node; takes pExpr (also on failure). */
static int push_ann(quay_qs *pQs, const char *zName, Expr *pExpr, int bCount,
                    quay_qs **ppOut, quay_err *pErr) {
  quay_qs *q;
  int rc = check_ann_name(pQs, zName, bCount ? "with_count" : "annotate",
                          pErr);
  if (rc == QUAY_OK) rc = quay__expr_bind(pExpr, pQs, 1, pErr);
  if (rc) {
    quay__expr_free(pExpr);
    return rc;
  }
  q = qs_push(pQs, QS_ANNOTATE);
  if (q) q->aAnn = quay__calloc(sizeof(Ann));
  if (q == NULL || q->aAnn == NULL) {
    quay__expr_free(pExpr);
    quay_qs_free(q);
    return quay__oom(pErr);
  }
  q->nAnn = 1;
  q->aAnn[0].pExpr = pExpr;           /* owned by the node from here */
  q->aAnn[0].zName = quay__strdup(zName);
  if (q->aAnn[0].zName == NULL) {
    quay_qs_free(q);
    return quay__oom(pErr);
  }
  q->aAnn[0].bCount = bCount;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_annotate(quay_qs *pQs, const char *zName, quay_expr *pExpr,
                     quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || zName == NULL || pExpr == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    quay_expr_free(pExpr);
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_annotate: %s is NULL", pQs
        == NULL ? "pQs" : zName == NULL ? "zName" : pExpr == NULL ? "pExpr" :
            "ppOut");
  }
  *ppOut = NULL;
  return push_ann(pQs, zName, (Expr *)pExpr, 0, ppOut, pErr);
}

int quay_qs_with_count(quay_qs *pQs, const char *zPath, quay_qs **ppOut,
                       quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || zPath == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_with_count: %s is NULL", pQs
        == NULL ? "pQs" : zPath == NULL ? "zPath" : "ppOut");
  }
  quay_expr *e;
  char zName[300];
  PathRes pr;
  int rc;
  *ppOut = NULL;
  rc = quay__path_walk(pQs->pModel, NULL, zPath, PATH_RELATIONS,
                       "with_count", &pr, pErr);
  if (rc) return rc;
  if (strlen(zPath) + 7 > sizeof(zName)) {
    return quay__err(pErr, QUAY_EUNKNOWN_RELATION, "with_count: path too "
                     "long");
  }
  snprintf(zName, sizeof(zName), "%s_count", zPath);
  rc = quay_expr_agg(QUAY_AGG_COUNT, zPath, NULL, 0, NULL, &e, pErr);
  if (rc) return rc;
  return push_ann(pQs, zName, (Expr *)e, 1, ppOut, pErr);
}

int quay_qs_values(quay_qs *pQs, const char *const *azName,
                   quay_expr *const *apExpr, int n, quay_qs **ppOut,
                   quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || (azName == NULL && n > 0) || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    if (apExpr != NULL) { int k_; for (k_ = 0; k_ < n; k_++)
        quay_expr_free(apExpr[k_]); }
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_values: %s is NULL", pQs ==
        NULL ? "pQs" : (azName == NULL && n > 0) ? "azName" : "ppOut");
  }
  if (n < 0) {
    *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_qs_values: n is %d, not a count", n);
  }
  quay_qs *q;
  Ann *a;
  int i, rc = QUAY_OK, nAll = n;
  *ppOut = NULL;
  if (qs_find(pQs, QS_LOAD) != NULL) {
    for (i = 0; i < n; i++) quay_expr_free(apExpr ? apExpr[i] : NULL);
    return quay__err(pErr, QUAY_EMISUSE, "values on a set that loads "
                     "related records (select_related, prefetch_related, "
                     "with): value rows are plain tables; give the related "
                     "paths to values (values(\"author__name\"))");
  }
  if (n == 0) nAll = pQs->pModel->nField;
  a = quay__calloc(sizeof(Ann) * (size_t)(nAll + 1));
  if (a == NULL) {
    for (i = 0; i < n; i++) quay__expr_free((Expr *)apExpr[i]);
    return quay__oom(pErr);
  }
  for (i = 0; i < n; i++) a[i].pExpr = (Expr *)apExpr[i];
  for (i = 0; i < nAll && rc == QUAY_OK; i++) {
    /* values() with no argument: every field of the model. */
    const char *zName = n ? azName[i] : pQs->pModel->apField[i]->zName;
    int j;
    for (j = 0; j < i; j++) {
      if (strcmp(a[j].zName, zName) == 0) {
        rc = quay__err(pErr, QUAY_EMISUSE, "values: '%s' is named twice",
                       zName);
      }
    }
    if (rc) break;
    a[i].zName = quay__strdup(zName);
    if (a[i].zName == NULL) {
      rc = quay__oom(pErr);
      break;
    }
    if (a[i].pExpr == NULL) {
      /* A plain path: a column across to-one relations, or a name. */
      rc = quay_expr_col(zName, (quay_expr **)&a[i].pExpr, pErr);
      if (rc) break;
      a[i].pExpr->zWhat = "values";
    } else if (check_ann_name(pQs, zName, "values", pErr)) {
      rc = pErr->code;
      break;
    }
    rc = quay__expr_bind(a[i].pExpr, pQs, 1, pErr);
    if (rc == QUAY_OK && a[i].pExpr->bAgg && a[i].pExpr->eOp != EX_REF) {
      rc = quay__err(pErr, QUAY_EBAD_LOOKUP, "values: '%s' is an aggregate; "
                     "add it with annotate after values", zName);
    }
  }
  if (rc) {
    ann_free(a, nAll);
    return rc;
  }
  q = qs_push(pQs, QS_VALUES);
  if (q == NULL) {
    ann_free(a, nAll);
    return quay__oom(pErr);
  }
  q->aAnn = a;
  q->nAnn = nAll;
  *ppOut = q;
  return QUAY_OK;
}

/* A node of kind eOp with no payload on top of pQs (distinct, strict,
** using("primary")). */
static int qs_push_flag(quay_qs *pQs, int eOp, quay_qs **ppOut,
                        quay_err *pErr) {
  quay_qs *q = qs_push(pQs, eOp);
  *ppOut = q;
  return q ? QUAY_OK : quay__oom(pErr);
}

/* The nearest node of kind eOp in q's chain, or NULL. */
static const quay_qs *qs_find(const quay_qs *q, int eOp) {
  for (; q; q = q->pParent) {
    if (q->eOp == eOp) return q;
  }
  return NULL;
}

int quay_qs_distinct(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_distinct: %s is NULL", pQs
        == NULL ? "pQs" : "ppOut");
  }
  return qs_push_flag(pQs, QS_DISTINCT, ppOut, pErr);
}

int quay_qs_is_values(const quay_qs *q) {
  /* NULL arguments (quay.h "Conventions"). */
  if (q == NULL) {
    return 0;
  }
  return qs_find(q, QS_VALUES) != NULL;
}

int quay_qs_with_deleted(quay_qs *pQs, int eMode, quay_qs **ppOut,
                         quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_with_deleted: %s is NULL",
        pQs == NULL ? "pQs" : "ppOut");
  }
  quay_qs *q;
  *ppOut = NULL;
  if (eMode != QUAY_DELETED_INCLUDE && eMode != QUAY_DELETED_ONLY) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_with_deleted: bad mode");
  }
  if (pQs->pModel->pDeletedAt == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "%s has no soft_delete: %s "
                     "applies to soft_delete models only", pQs->pModel->zName,
                     eMode == QUAY_DELETED_ONLY ? "only_deleted"
                                                : "with_deleted");
  }
  q = qs_push(pQs, QS_DELETED);
  if (q == NULL) return quay__oom(pErr);
  q->n = eMode;
  *ppOut = q;
  return QUAY_OK;
}

int quay_qs_strict(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_strict: %s is NULL", pQs ==
        NULL ? "pQs" : "ppOut");
  }
  return qs_push_flag(pQs, QS_STRICT, ppOut, pErr);
}

int quay_qs_is_strict(const quay_qs *q) {
  /* NULL arguments (quay.h "Conventions"). */
  if (q == NULL) {
    return 0;
  }
  return qs_find(q, QS_STRICT) != NULL;
}

int quay_qs_using_primary(quay_qs *pQs, quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_using_primary: %s is NULL",
        pQs == NULL ? "pQs" : "ppOut");
  }
  return qs_push_flag(pQs, QS_PRIMARY, ppOut, pErr);
}

int quay_qs_is_primary(const quay_qs *q) {
  /* NULL arguments (quay.h "Conventions"). */
  if (q == NULL) {
    return 0;
  }
  return qs_find(q, QS_PRIMARY) != NULL;
}

int quay_qs_for_update(quay_qs *pQs, unsigned mFlags, quay_qs **ppOut,
                       quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_for_update: %s is NULL", pQs
        == NULL ? "pQs" : "ppOut");
  }
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
  q = qs_find(q, QS_LOCK);
  return q ? (int)q->n : -1;
}

int quay_qs_related(quay_model *m, int iRel, const quay_value *pKey,
                    quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || pKey == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_related: %s is NULL", m ==
        NULL ? "pModel" : pKey == NULL ? "pKey" : "ppOut");
  }
  if (quay__values_check(pErr, "quay_qs_related", pKey, 1)) {
    *ppOut = NULL;
    return QUAY_EMISUSE;
  }
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

int quay_model_path_target(quay_model *m, const char *zPath,
                           quay_model **ppTarget, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || zPath == NULL || ppTarget == NULL) {
    if (ppTarget != NULL) *ppTarget = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_path_target: %s is NULL",
        m == NULL ? "pModel" : zPath == NULL ? "zPath" : "ppTarget");
  }
  PathRes pr;
  int rc = quay__path_walk(m, NULL, zPath, PATH_RELATIONS, "relation path",
                           &pr, pErr);
  *ppTarget = rc ? NULL : pr.pModel;
  return rc;
}

/*
** Flatten a chain into a view (root first).  Arrays live in pArena.
*/
int quay__qs_view(quay_qs *pQs, QsView *v, Arena *pArena, quay_err *pErr) {
  quay_qs *q;
  int n = 0, nAnn = 0, i, j;
  quay_qs **a;
  memset(v, 0, sizeof(*v));
  v->pModel = pQs->pModel;
  v->limit = -1;
  v->offset = -1;
  for (q = pQs; q; q = q->pParent) {
    n++;
    if (q->eOp == QS_ANNOTATE) nAnn += q->nAnn;
  }
  a = quay__arena_alloc(pArena, sizeof(quay_qs *) * (size_t)n * 3);
  v->apAnn = quay__arena_alloc(pArena, sizeof(Ann *) * (size_t)(nAnn + 1));
  if (a == NULL || v->apAnn == NULL) return quay__oom(pErr);
  i = n;
  for (q = pQs; q; q = q->pParent) a[--i] = q;
  v->apFilter = a + n;
  v->apLoad = a + 2 * n;
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
      case QS_ANNOTATE:
        for (j = 0; j < q->nAnn; j++) v->apAnn[v->nAnn++] = &q->aAnn[j];
        break;
      case QS_VALUES:
        v->pValues = q;
        v->iFirstGroupAnn = v->nAnn;
        break;
      case QS_DISTINCT: v->distinct = 1; break;
      case QS_STRICT: v->strict = 1; break;
      case QS_SCOPE: v->pScope = q; break;
      case QS_DELETED: v->eDeleted = (int)q->n; break;
    }
  }
  return QUAY_OK;
}
/* }================================================================== */
