/*
** engine/capi.c
** The C API for hosts without Lua: value constructors, declaring a model
** from spec arrays, writer fields by name, one-condition filters, and
** quay_qs_fetch, which runs a query set and keeps its records.
** See LICENSE
**
** Everything here is a thin layer over the index-based calls of the
** other files (a binding uses those), so that a C program reads like the
** Lua API: a field is named, never counted (indexes shift when the
** implicit id is added at quay_model_finish), and a value is made by a
** call, not by filling a tagged union.
**
** quay_qs_fetch is the engine's own quay_sink (include/quay.h "Running
** query sets"): load.c runs the plan (main query, JOINs, every batched
** prefetch level, owner keys, de-duplication, grouping per owner) and
** hands each record and attachment to this sink, which stores them in a
** quay_result: one arena for every value and record, and per slot an
** array of records in the order the sink made them.  A record keeps its
** field values (field order), its annotations, and one entry per loaded
** relation with the records attached there, so a host reads a two-level
** prefetch as records within records, with no key plumbing.  The result
** holds its db (exec.c: a child keeps its db alive).
*/
#include "quayInt.h"

#include <stdio.h>

/*
** {==================================================================
** Values
** ===================================================================
*/
quay_value quay_value_null(void) {
  quay_value v;
  memset(&v, 0, sizeof(v));
  v.type = QUAY_NULL;
  return v;
}

quay_value quay_value_int(int64_t i) {
  quay_value v = quay_value_null();
  v.type = QUAY_INT;
  v.u.i = i;
  return v;
}

quay_value quay_value_real(double r) {
  quay_value v = quay_value_null();
  v.type = QUAY_REAL;
  v.u.r = r;
  return v;
}

quay_value quay_value_bool(int b) {
  quay_value v = quay_value_null();
  v.type = QUAY_BOOL;
  v.u.b = b != 0;
  return v;
}

/* A value of type eType over the bytes z[n]; NULL z is QUAY_NULL. */
static quay_value value_bytes(int eType, const char *z, size_t n) {
  quay_value v = quay_value_null();
  if (z == NULL) return v;
  v.type = eType;
  v.u.z = z;
  v.n = n;
  return v;
}

quay_value quay_value_text(const char *z) {
  return value_bytes(QUAY_TEXT, z, z ? strlen(z) : 0);
}

quay_value quay_value_textn(const char *z, size_t n) {
  return value_bytes(QUAY_TEXT, z, n);
}

quay_value quay_value_blob(const void *p, size_t n) {
  return value_bytes(QUAY_BLOB, (const char *)p, n);
}

quay_value quay_value_decimal(const char *z) {
  return value_bytes(QUAY_DECIMAL, z, z ? strlen(z) : 0);
}

quay_value quay_value_json(const char *z) {
  return value_bytes(QUAY_JSON, z, z ? strlen(z) : 0);
}

quay_value quay_value_list(const quay_value *a, size_t n) {
  quay_value v = quay_value_null();
  v.type = QUAY_LIST;
  v.u.a = a;
  v.n = n;
  return v;
}
/* }================================================================== */


/*
** {==================================================================
** Declaring and writing by name
** ===================================================================
*/
int quay_model_declare(quay_db *pDb, const char *zName,
                       const quay_field_spec *aField, int nField,
                       const quay_rel_spec *aRel, int nRel,
                       quay_model **ppModel, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || zName == NULL || (aField == NULL && nField > 0) || (aRel
      == NULL && nRel > 0) || ppModel == NULL) {
    if (ppModel != NULL) *ppModel = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_declare: %s is NULL", pDb
        == NULL ? "pDb" : zName == NULL ? "zName" : (aField == NULL && nField
            > 0) ? "aField" : (aRel == NULL && nRel > 0) ? "aRel" :
                "ppModel");
  }
  quay_model *m = NULL;
  int i, rc;
  *ppModel = NULL;
  if (nField < 0 || nRel < 0 || (nField > 0 && aField == NULL) ||
      (nRel > 0 && aRel == NULL)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_declare %s: the field "
                     "and relation arrays do not match their counts",
                     zName ? zName : "(NULL)");
  }
  rc = quay_model_new(pDb, zName, NULL, NULL, &m, pErr);
  for (i = 0; rc == QUAY_OK && i < nField; i++) {
    rc = quay_model_add_field(m, &aField[i], pErr);
  }
  for (i = 0; rc == QUAY_OK && i < nRel; i++) {
    rc = quay_model_add_relation(m, &aRel[i], pErr);
  }
  if (rc == QUAY_OK) rc = quay_model_finish(m, pErr);
  if (rc) {
    if (m) quay_model_discard(m);
    return rc;
  }
  *ppModel = m;
  return QUAY_OK;
}

/* "Model has no field or relation 'x'" for a by-name call. */
static int no_member(quay_model *m, const char *zName, quay_err *pErr) {
  return quay__err_field(pErr, QUAY_EUNKNOWN_FIELD, m->zName, zName,
                         "%s has no field or relation '%s'", m->zName,
                         zName ? zName : "(NULL)");
}

int quay_writer_put(quay_writer *pW, const char *zName, quay_value val,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pW == NULL || zName == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_put: %s is NULL", pW ==
        NULL ? "pW" : "zName");
  }
  quay_model *m = quay__writer_model(pW);
  int i = -1, k = zName ? quay_model_member(m, zName, &i) : QUAY_M_NONE;
  if (k == QUAY_M_FIELD) return quay_writer_set(pW, i, &val, pErr);
  if (k == QUAY_M_RELATION) return quay_writer_set_rel(pW, i, &val, pErr);
  return no_member(m, zName, pErr);
}

int quay_writer_get(quay_writer *pW, const char *zName, quay_value *pOut,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pW == NULL || zName == NULL || pOut == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_get: %s is NULL", pW ==
        NULL ? "pW" : zName == NULL ? "zName" : "pOut");
  }
  quay_model *m = quay__writer_model(pW);
  int i = -1, k = zName ? quay_model_member(m, zName, &i) : QUAY_M_NONE;
  pOut->type = QUAY_NULL;
  if (k == QUAY_M_RELATION) {
    Rel *r = m->apRel[i];
    if (r->pFk == NULL || r->pFrom != m) {
      return quay__err_field(pErr, QUAY_EMISUSE, m->zName, zName,
                             "%s.%s is not a to-one relation with a key "
                             "column of %s (belongs_to, one_to_one)",
                             m->zName, zName, m->zName);
    }
    i = r->pFk->iField;
  } else if (k != QUAY_M_FIELD) {
    return no_member(m, zName, pErr);
  }
  quay_writer_value(pW, i, pOut);
  return QUAY_OK;
}

int quay_qs_where(quay_qs *pQs, const char *zPath, quay_value val,
                  quay_qs **ppOut, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || zPath == NULL || ppOut == NULL) {
    if (ppOut != NULL) *ppOut = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_where: %s is NULL", pQs ==
        NULL ? "pQs" : zPath == NULL ? "zPath" : "ppOut");
  }
  if (quay__values_check(pErr, "quay_qs_where", &val, 1)) {
    *ppOut = NULL;
    return QUAY_EMISUSE;
  }
  quay_cond *c = NULL;
  int rc;
  *ppOut = NULL;
  rc = quay_cond_leaf(zPath, &val, &c, pErr);
  if (rc) return rc;
  return quay_qs_filter(pQs, c, 0, ppOut, pErr);     /* takes c */
}
/* }================================================================== */


/*
** {==================================================================
** Results: the engine's own sink
** ===================================================================
*/
typedef struct ResExtra ResExtra;
struct ResExtra {           /* an annotation of a record */
  const char *zName;
  quay_value v;
  ResExtra *pNext;
};

typedef struct ResAttach ResAttach;
struct ResAttach {          /* what a loaded relation of a record holds */
  const char *zName;        /* relation, `to` name or "pivot" */
  int isMany;               /* attached as a set (xAttachMany) */
  const quay_rec **apRec; int nRec;
  ResAttach *pNext;
};

struct quay_rec {
  quay_result *pRes;
  quay_model *pModel;
  quay_value *aVal;         /* one per field, in field order */
  ResExtra *pExtra;
  ResAttach *pAttach;
};

typedef struct ResSlot {
  quay_model *pModel;
  quay_rec **apRec; int nRec, nAlloc;
} ResSlot;

struct quay_result {
  quay_db *pDb;             /* held (quay__db_hold) */
  Arena arena;              /* records, values, names, attachment lists */
  ResSlot *aSlot; int nSlot;
  int oom;                  /* a sink callback ran out of memory */
};

void quay_result_free(quay_result *p) {
  int i;
  if (p == NULL) return;
  for (i = 0; i < p->nSlot; i++) quay__free(p->aSlot[i].apRec);
  quay__free(p->aSlot);
  quay__arena_free(&p->arena);
  quay__db_release(p->pDb);
  quay__free(p);
}

/* Copy the bytes of *pV into the arena (in place); 0 on OOM. */
static int res_own(quay_result *p, quay_value *pV) {
  char *z;
  if (!QUAY_VALUE_HAS_BYTES(pV->type) || pV->u.z == NULL) return 1;
  z = quay__arena_alloc(&p->arena, pV->n + 1);
  if (z == NULL) return 0;
  memcpy(z, pV->u.z, pV->n);
  z[pV->n] = 0;
  pV->u.z = z;
  return 1;
}

/* Record iRec of slot iSlot, or NULL (a number the sink never made). */
static quay_rec *res_rec(quay_result *p, int iSlot, int iRec) {
  if (iSlot < 0 || iSlot >= p->nSlot) return NULL;
  if (iRec < 0 || iRec >= p->aSlot[iSlot].nRec) return NULL;
  return p->aSlot[iSlot].apRec[iRec];
}

static int res_record(void *pCtx, int iSlot, quay_cursor *pCur,
                      int iFirstCol, int iKeyCol) {
  quay_result *p = pCtx;
  ResSlot *s;
  quay_rec *r;
  int i, nField;
  (void)iKeyCol;
  if (QUAY_NEVER(iSlot < 0 || iSlot >= p->nSlot)) return 1;
  s = &p->aSlot[iSlot];
  if (s->nRec == s->nAlloc) {
    int nNew = s->nAlloc ? s->nAlloc * 2 : 16;
    quay_rec **a = quay__realloc(s->apRec, sizeof(*a) * (size_t)nNew);
    if (a == NULL) goto oom;
    s->apRec = a;
    s->nAlloc = nNew;
  }
  nField = quay_model_field_count(s->pModel);
  r = quay__arena_alloc(&p->arena, sizeof(*r));
  if (r == NULL) goto oom;
  memset(r, 0, sizeof(*r));
  r->pRes = p;
  r->pModel = s->pModel;
  r->aVal = quay__arena_alloc(&p->arena,
                              sizeof(quay_value) * (size_t)(nField + 1));
  if (r->aVal == NULL) goto oom;
  for (i = 0; i < nField; i++) {
    quay_cursor_value(pCur, iFirstCol + i, &r->aVal[i]);
    if (!res_own(p, &r->aVal[i])) goto oom;
  }
  s->apRec[s->nRec++] = r;
  return 0;
oom:
  p->oom = 1;
  return 1;
}

/* A new attachment of r named after pAt; NULL on OOM. */
static ResAttach *res_attach(quay_result *p, quay_rec *r,
                             const quay_attach *pAt, int nRec) {
  ResAttach *a = quay__arena_alloc(&p->arena, sizeof(*a));
  if (a == NULL) return NULL;
  memset(a, 0, sizeof(*a));
  a->zName = quay__arena_strdup(&p->arena, pAt->zName, strlen(pAt->zName));
  a->apRec = quay__arena_alloc(&p->arena,
                               sizeof(quay_rec *) * (size_t)(nRec + 1));
  if (a->zName == NULL || a->apRec == NULL) return NULL;
  a->pNext = r->pAttach;
  r->pAttach = a;
  return a;
}

static int res_attach_one(void *pCtx, int iSlot, int iRec,
                          const quay_attach *pAt, int iChildSlot,
                          int iChild) {
  quay_result *p = pCtx;
  quay_rec *r = res_rec(p, iSlot, iRec);
  ResAttach *a;
  if (QUAY_NEVER(r == NULL)) return 1;
  a = res_attach(p, r, pAt, 1);
  if (a == NULL) {
    p->oom = 1;
    return 1;
  }
  if (iChild >= 0) {
    a->apRec[0] = res_rec(p, iChildSlot, iChild);
    a->nRec = a->apRec[0] != NULL;
  }
  return 0;
}

static int res_attach_many(void *pCtx, int iSlot, int iRec,
                           const quay_attach *pAt, int iChildSlot,
                           const int *aiChild, int nChild) {
  quay_result *p = pCtx;
  quay_rec *r = res_rec(p, iSlot, iRec);
  ResAttach *a;
  int i;
  if (QUAY_NEVER(r == NULL)) return 1;
  a = res_attach(p, r, pAt, nChild);
  if (a == NULL) {
    p->oom = 1;
    return 1;
  }
  a->isMany = 1;
  for (i = 0; i < nChild; i++) {
    const quay_rec *c = res_rec(p, iChildSlot, aiChild[i]);
    if (c) a->apRec[a->nRec++] = c;
  }
  return 0;
}

static int res_extra(void *pCtx, int iSlot, int iRec, const char *zName,
                     const quay_value *pVal) {
  quay_result *p = pCtx;
  quay_rec *r = res_rec(p, iSlot, iRec);
  ResExtra *x;
  if (QUAY_NEVER(r == NULL)) return 1;
  x = quay__arena_alloc(&p->arena, sizeof(*x));
  if (x == NULL) goto oom;
  x->zName = quay__arena_strdup(&p->arena, zName, strlen(zName));
  x->v = *pVal;
  /* annotations are scalars */
  if (x->v.type == QUAY_LIST) x->v = quay_value_null();
  if (x->zName == NULL || !res_own(p, &x->v)) goto oom;
  x->pNext = r->pExtra;
  r->pExtra = x;
  return 0;
oom:
  p->oom = 1;
  return 1;
}

static const quay_sink resSink = {
  .xRecord = res_record,
  .xAttachOne = res_attach_one,
  .xAttachMany = res_attach_many,
  .xExtra = res_extra,
};

int quay_qs_fetch(quay_qs *pQs, quay_db *pDb, quay_result **ppRes,
                  quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || pDb == NULL || ppRes == NULL) {
    if (ppRes != NULL) *ppRes = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_fetch: %s is NULL", pQs ==
        NULL ? "pQs" : pDb == NULL ? "pDb" : "ppRes");
  }
  quay_plan *pPlan = NULL;
  quay_load *pLoad = NULL;
  quay_result *p = NULL;
  int i, rc;
  *ppRes = NULL;
  if (quay_qs_is_values(pQs)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_fetch: a values() set "
                     "yields rows, not records: run it with quay_qs_rows");
  }
  rc = quay_plan_new(pQs, &pPlan, pErr);
  if (rc) goto done;
  p = quay__calloc(sizeof(*p));
  if (p == NULL) {
    rc = quay__oom(pErr);
    goto done;
  }
  quay__arena_init(&p->arena);
  p->pDb = pDb;
  quay__db_hold(pDb);
  p->nSlot = quay_plan_nslot(pPlan);
  p->aSlot = quay__calloc(sizeof(ResSlot) * (size_t)(p->nSlot + 1));
  if (p->aSlot == NULL) {
    rc = quay__oom(pErr);
    goto done;
  }
  for (i = 0; i < p->nSlot; i++) {
    quay_slot_info si;
    quay_plan_slot(pPlan, i, &si);
    p->aSlot[i].pModel = si.pModel;
  }
  rc = quay_load_open(pPlan, pDb, 0, &pLoad, pErr);
  if (rc == QUAY_OK) rc = quay_load_next(pLoad, 0, &resSink, p, pErr);
  if (rc == QUAY_DONE || rc == QUAY_ROW) rc = QUAY_OK;
  if (rc && p->oom) rc = quay__oom(pErr);
done:
  quay_load_free(pLoad);
  quay_plan_free(pPlan);
  if (rc) {
    quay_result_free(p);
    return rc;
  }
  *ppRes = p;
  return QUAY_OK;
}

int quay_result_count(const quay_result *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return 0;
  }
  return p->nSlot > 0 ? p->aSlot[0].nRec : 0;
}

const quay_rec *quay_result_rec(const quay_result *p, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return NULL;
  }
  if (p->nSlot == 0 || i < 0 || i >= p->aSlot[0].nRec) return NULL;
  return p->aSlot[0].apRec[i];
}

quay_model *quay_rec_model(const quay_rec *r) {
  return r ? r->pModel : NULL;
}

int quay_rec_get(const quay_rec *r, const char *zName, quay_value *pOut,
                 quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (r == NULL || zName == NULL || pOut == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_rec_get: %s is NULL", r == NULL
        ? "pRec" : zName == NULL ? "zName" : "pOut");
  }
  int i = -1;
  const ResExtra *x;
  pOut->type = QUAY_NULL;
  if (zName && quay_model_member(r->pModel, zName, &i) == QUAY_M_FIELD) {
    *pOut = r->aVal[i];
    return QUAY_OK;
  }
  for (x = r->pExtra; zName && x; x = x->pNext) {
    if (strcmp(x->zName, zName) == 0) {
      *pOut = x->v;
      return QUAY_OK;
    }
  }
  return quay__err_field(pErr, QUAY_EUNKNOWN_FIELD, r->pModel->zName, zName,
                         "%s has no field or annotation '%s'",
                         r->pModel->zName, zName ? zName : "(NULL)");
}

int quay_rec_related(const quay_rec *r, const char *zName,
                     const quay_rec *const **papRec, int *pn,
                     quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (r == NULL || zName == NULL || papRec == NULL || pn == NULL) {
    if (papRec != NULL) *papRec = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_rec_related: %s is NULL", r ==
        NULL ? "pRec" : zName == NULL ? "zName" : papRec == NULL ? "papRec" :
            "pn");
  }
  const ResAttach *a;
  int i = -1;
  *papRec = NULL;
  *pn = 0;
  for (a = r->pAttach; zName && a; a = a->pNext) {
    if (strcmp(a->zName, zName) == 0) {
      *papRec = a->apRec;
      *pn = a->nRec;
      return QUAY_OK;
    }
  }
  if (zName &&
      quay_model_member(r->pModel, zName, &i) == QUAY_M_RELATION) {
    return quay__err_field(pErr, QUAY_ELAZY_LOAD, r->pModel->zName, zName,
                           "%s.%s was not loaded by this query: add it with "
                           "quay_qs_load (select_related or "
                           "prefetch_related) before quay_qs_fetch",
                           r->pModel->zName, zName);
  }
  return quay__err_field(pErr, QUAY_EUNKNOWN_RELATION, r->pModel->zName,
                         zName, "%s has no relation '%s'", r->pModel->zName,
                         zName ? zName : "(NULL)");
}

const quay_rec *quay_rec_one(const quay_rec *r, const char *zName) {
  /* NULL arguments (quay.h "Conventions"). */
  if (r == NULL || zName == NULL) {
    return NULL;
  }
  const quay_rec *const *a;
  int n;
  if (r == NULL || quay_rec_related(r, zName, &a, &n, NULL) || n == 0) {
    return NULL;
  }
  return a[0];
}

const char *quay_rec_text(const quay_rec *r, const char *zName) {
  /* NULL arguments (quay.h "Conventions"). */
  if (r == NULL || zName == NULL) {
    return NULL;
  }
  quay_value v;
  if (r == NULL || quay_rec_get(r, zName, &v, NULL)) return NULL;
  return QUAY_VALUE_HAS_BYTES(v.type) && v.type != QUAY_BLOB ? v.u.z : NULL;
}

int64_t quay_rec_int(const quay_rec *r, const char *zName) {
  /* NULL arguments (quay.h "Conventions"). */
  if (r == NULL || zName == NULL) {
    return 0;
  }
  quay_value v;
  if (r == NULL || quay_rec_get(r, zName, &v, NULL)) return 0;
  switch (v.type) {
    case QUAY_INT: return v.u.i;
    case QUAY_BOOL: return v.u.b;
    case QUAY_REAL: return (int64_t)v.u.r;
  }
  return 0;
}
/* }================================================================== */
