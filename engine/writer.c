/*
** engine/writer.c
** Writes: validation, inserts, updates with on_update rules, qs:update,
** upserts, bulk updates, and the writes of related sets (many-to-many and
** reverse foreign keys).
** See LICENSE
**
** A quay_writer holds one row buffer (a value and a "set" flag per field)
** and keeps its prepared INSERT across rows, so bulk_create is one
** statement stepped N times inside one transaction on SQLite, the fastest
** form measured there (docs/ENGINE.md); on PostgreSQL queued rows go
** as arrays through unnest, 10,000 a statement.  Text values are copied
** into per-slot buffers that are reused from row to row.  An UPDATE writes
** exactly the slots that are set: a record's save() sets the fields that
** changed (the binding tracks them), so concurrent saves of different
** fields of one row both survive.
**
** The set-based writes (issue 13) send a constant number of statements
** whatever the number of rows: upserts are batched INSERT ... ON CONFLICT
** DO UPDATE ... RETURNING, bulk updates one UPDATE ... FROM a row list,
** many-to-many :add / :set one INSERT ... SELECT over a key array (and
** one DELETE).
**
** Every value is validated here before it reaches SQL (reference.md: wrong
** type, null for a non-null field, string longer than max, invalid UTF-8,
** NaN), so both backends reject the same inputs with `validation`.
**
** Changing a referenced key (through save or qs:update) applies each
** referencing relation's on_update rule in the same transaction: PROTECT /
** RESTRICT refuse when referencing rows exist; CASCADE, SET_NULL and
** SET_DEFAULT rewrite them (foreign-key checks are deferred meanwhile).
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

typedef struct Bulk Bulk;
static int bulk_rows(const quay_writer *w);

typedef struct Slot {
  quay_value v;
  char *zBuf;               /* owned copy of text/blob */
  size_t nBuf;
  int set;
  Expr *pExpr;              /* qs:update: the new value as SQL (owned) */
} Slot;

struct quay_writer {
  quay_db *pDb;
  quay_model *pModel;
  Slot *aSlot;
  char zNow[24];
  /* Batched inserts: queued rows (values copied into aQueueArena). */
  quay_value *aQueue;       /* nQueue rows of nField values */
  unsigned char *aQueueSet; /* nQueue rows of nField "set" flags */
  int nQueue, nQueueAlloc;
  int flushed;              /* the queue holds inserted rows (readable) */
  Arena queueArena;
  /* The last single-row INSERT text, reused while the column set is the
  ** same (bulk_create builds it once, not per row). */
  Str insSql;
  unsigned char *aInsMask;  /* nField flags the text was built for */
  int bInsValid;
  int bInsReturning;        /* the text ends with RETURNING */
  /* Upserts (quay_writer_upsert): per field, UP_* flags.  Queued rows of
  ** an upsert keep, besides each field's "set" flag (bit 0), whether the
  ** caller gave it (bit 1): the default update list is the given fields. */
  unsigned char *aUp;       /* NULL: plain inserts */
  unsigned char *aGiven;    /* scratch: set flags before fill_insert */
  int64_t iIdRaised;        /* the identity is known to be past this key */
  Bulk *pBulk;              /* a bulk insert's own checks ("Bulk inserts") */
};

enum {                      /* aUp flags */
  UP_CONFLICT = 1,          /* a conflict (ON CONFLICT) column */
  UP_UPDATE = 2,            /* named in the update list */
  UP_EXPLICIT = 4           /* (field 0 only) an update list was given */
};

/*
** {==================================================================
** Validation
** ===================================================================
*/
int quay__validate(quay_model *m, Field *f, const quay_value *v,
                   quay_err *pErr) {
  if (v->type == QUAY_NULL) {
    if (f->mFlags & QUAY_F_NULL) return QUAY_OK;
    return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                           "%s.%s cannot be null (declare it with null = "
                           "true or give a value)", m->zName, f->zName);
  }
  if (f->nChoice || f->pMin || f->pMax) {        /* rules.c */
    int rc = quay__value_fits(m, f, v, 1, pErr);
    return rc ? rc : quay__rules_check(m, f, v, pErr);
  }
  return quay__value_fits(m, f, v, 1, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Writers
** ===================================================================
*/
int quay_writer_new(quay_db *pDb, quay_model *m, quay_writer **ppW,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || m == NULL || ppW == NULL) {
    if (ppW != NULL) *ppW = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_new: %s is NULL", pDb ==
        NULL ? "pDb" : m == NULL ? "pModel" : "ppW");
  }
  quay_writer *w;
  int rc;
  *ppW = NULL;
  rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  w = quay__calloc(sizeof(*w));
  if (w == NULL) return quay__oom(pErr);
  w->pDb = pDb;
  w->pModel = m;
  w->aSlot = quay__calloc(sizeof(Slot) * (size_t)(m->nField + 1));
  if (w->aSlot == NULL) {
    quay__free(w);
    return quay__oom(pErr);
  }
  quay__arena_init(&w->queueArena);
  quay__str_init(&w->insSql);
  quay__db_hold(pDb);          /* the writer keeps its db (exec.c) */
  *ppW = w;
  return QUAY_OK;
}

void quay_writer_free(quay_writer *w) {
  int i;
  if (w == NULL) return;
  if (w->pDb->pBulkW == w) {
    /* Its checks are due at the commit: nothing commits without them. */
    while (w->pDb->txnDepth > 0 && w->pDb->pBulkW == w) {
      quay__txn_rollback(w->pDb);
    }
    quay__writer_bulk_end(w);
    if (w->pDb->pBulkW == w) w->pDb->pBulkW = NULL;
  }
  for (i = 0; i < w->pModel->nField; i++) {
    quay__free(w->aSlot[i].zBuf);
    quay__expr_free(w->aSlot[i].pExpr);
  }
  quay__free(w->aSlot);
  quay__free(w->aQueue);
  quay__free(w->aQueueSet);
  quay__arena_free(&w->queueArena);
  quay__str_free(&w->insSql);
  quay__free(w->aInsMask);
  quay__free(w->aUp);
  quay__free(w->aGiven);
  quay__db_release(w->pDb);
  quay__free(w);
}

void quay_writer_reset(quay_writer *w) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return;
  }
  int i;
  for (i = 0; i < w->pModel->nField; i++) {
    w->aSlot[i].set = 0;
    w->aSlot[i].v.type = QUAY_NULL;
    quay__expr_free(w->aSlot[i].pExpr);
    w->aSlot[i].pExpr = NULL;
  }
}

int quay_writer_set_expr(quay_writer *w, int iField, quay_expr *pExpr,
                         quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || pExpr == NULL) {
    quay_expr_free(pExpr);
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set_expr: %s is NULL", w
        == NULL ? "pW" : "pExpr");
  }
  if (iField < 0 || iField >= w->pModel->nField) {
    quay__expr_free((Expr *)pExpr);
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set_expr: bad field");
  }
  quay__expr_free(w->aSlot[iField].pExpr);
  w->aSlot[iField].pExpr = (Expr *)pExpr;
  w->aSlot[iField].v.type = QUAY_NULL;
  w->aSlot[iField].set = 1;
  return QUAY_OK;
}

/* Store v in slot s, copying text into the slot's buffer. */
static int slot_store(Slot *s, const quay_value *v) {
  s->v = *v;
  if (QUAY_VALUE_HAS_BYTES(v->type)) {
    if (v->n + 1 > s->nBuf) {
      size_t n = v->n + 1 < 32 ? 32 : v->n + 1;
      char *z = quay__realloc(s->zBuf, n);
      if (z == NULL) return QUAY_ENOMEM;
      s->zBuf = z;
      s->nBuf = n;
    }
    if (v->n) memcpy(s->zBuf, v->u.z, v->n);
    s->zBuf[v->n] = 0;
    s->v.u.z = s->zBuf;
  }
  s->set = 1;
  return QUAY_OK;
}

int quay_writer_set(quay_writer *w, int iField, const quay_value *v,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || v == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set: %s is NULL", w ==
        NULL ? "pW" : "pVal");
  }
  if (quay__values_check(pErr, "quay_writer_set", v, 1)) {
    return QUAY_EMISUSE;
  }
  quay_model *m = w->pModel;
  quay_value x;
  ValBuf vb;
  int rc;
  if (iField < 0 || iField >= m->nField) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set: bad field");
  }
  x = *v;
  if (x.type == QUAY_RECORD) {
    Field *f = m->apField[iField];
    Rel *r = f->pRel;
    quay_value k;
    if (r == NULL || r->pFrom != m || r->pFk != f ||
        (r->eKind != QUAY_R_BELONGS_TO && r->eKind != QUAY_R_ONE_TO_ONE)) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: a record is not a value for this field",
                             m->zName, f->zName);
    }
    if (x.u.rec.pModel && x.u.rec.pModel->pDb != m->pDb) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: the %s record belongs to another "
                             "database; use a record loaded from this one",
                             m->zName, f->zName, x.u.rec.pModel->zName);
    }
    if (x.u.rec.pModel != r->pTo) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: expected a %s record", m->zName,
                             f->zName, r->pTo->zName);
    }
    if (x.u.rec.xGet(x.u.rec.p, r->pKey->zName, &k) || k.type == QUAY_NULL) {
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: the %s record has no %s yet (save it "
                             "first)", m->zName, f->zName, r->pTo->zName,
                             r->pKey->zName);
    }
    x = k;
  }
  /* numbers as doubles, integral doubles as integers, datetimes,
  ** decimals, ... in their normal form (the slot copies vb's text) */
  vb.zHeap = NULL;
  rc = quay__value_conform(m, m->apField[iField], &x, &vb, pErr);
  if (rc == QUAY_OK && slot_store(&w->aSlot[iField], &x)) {
    rc = quay__oom(pErr);
  }
  quay__valbuf_free(&vb);
  return rc;
}

int quay_writer_set_rel(quay_writer *w, int iRel, const quay_value *v,
                        quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || v == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set_rel: %s is NULL", w
        == NULL ? "pW" : "pVal");
  }
  if (quay__values_check(pErr, "quay_writer_set_rel", v, 1)) {
    return QUAY_EMISUSE;
  }
  quay_model *m = w->pModel;
  Rel *r;
  if (iRel < 0 || iRel >= m->nRel) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_set_rel: bad relation");
  }
  r = m->apRel[iRel];
  if ((r->eKind != QUAY_R_BELONGS_TO && r->eKind != QUAY_R_ONE_TO_ONE) ||
      r->pFrom != m) {
    return quay__err(pErr, QUAY_EVALIDATION,
                     "%s.%s is a %s relation and cannot be assigned (only "
                     "belongs_to and one_to_one can)", m->zName, r->zName,
                     r->eKind == QUAY_R_REVERSE ? "reverse"
                                                : quay__kind_name(r->eKind));
  }
  return quay_writer_set(w, r->pFk->iField, v, pErr);
}

int quay_writer_is_set(const quay_writer *w, int iField) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return 0;
  }
  return iField >= 0 && iField < w->pModel->nField && w->aSlot[iField].set;
}

quay_model *quay__writer_model(const quay_writer *w) {
  return w ? w->pModel : NULL;
}

void quay_writer_value(quay_writer *w, int iField, quay_value *pOut) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return;
  }
  if (iField < 0 || iField >= w->pModel->nField) {
    pOut->type = QUAY_NULL;
    return;
  }
  *pOut = w->aSlot[iField].v;
}

/*
** Complete the row for an insert: defaults, auto_now values, validation.
*/
static int fill_insert(quay_writer *w, quay_err *pErr) {
  quay_model *m = w->pModel;
  int i, rc;
  w->zNow[0] = 0;
  for (i = 0; i < m->nField; i++) {
    Field *f = m->apField[i];
    Slot *s = &w->aSlot[i];
    if (!s->set) {
      if (i == m->iPk && f->eType == QUAY_T_ID) continue;
      if (f->mFlags & (QUAY_F_AUTO_NOW | QUAY_F_AUTO_NOW_ADD)) {
        quay_value v;
        if (w->zNow[0] == 0) quay__now_utc(w->zNow);
        v.type = QUAY_TEXT;
        v.u.z = w->zNow;
        v.n = 19;
        if (slot_store(s, &v)) return quay__oom(pErr);
      } else if (f->mFlags & QUAY_F_DEFAULT) {
        if (slot_store(s, &f->dflt)) return quay__oom(pErr);
      } else if ((quay_type_flags(f->eType) & QUAY_TF_GENERATED) &&
                 f->pRel == NULL) {
        /* A uuid not given: a new one (a key column keeps its key). */
        quay_value v;
        ValBuf vb;
        vb.zHeap = NULL;
        rc = quay__type_generate(f, &v, &vb, pErr);
        if (rc == QUAY_OK && slot_store(s, &v)) rc = quay__oom(pErr);
        quay__valbuf_free(&vb);
        if (rc) return rc;
      } else if (f->mFlags & QUAY_F_NULL) {
        s->v.type = QUAY_NULL;
        s->set = 1;
      } else if (f->pRel && f->pRel->pFk == f && f->pRel->pFrom == m) {
        return quay__err_field(pErr, QUAY_EVALIDATION, m->zName,
                               f->pRel->zName, "%s.%s is required: give %s "
                               "= <record> or %s = <key>", m->zName,
                               f->pRel->zName, f->pRel->zName, f->zName);
      } else {
        return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                               "%s.%s is required: it cannot be null and "
                               "has no default", m->zName, f->zName);
      }
    } else if (s->v.type == QUAY_NULL && i == m->iPk &&
               f->eType == QUAY_T_ID) {
      s->set = 0;
      continue;
    }
    rc = quay__validate(m, f, &s->v, pErr);
    if (rc) return rc;
  }
  return QUAY_OK;
}

int quay_writer_check(quay_writer *w, int bInsert, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_check: %s is NULL",
        "w");
  }
  quay_model *m = w->pModel;
  int i, rc;
  if (bInsert) return fill_insert(w, pErr);
  for (i = 0; i < m->nField; i++) {
    Slot *s = &w->aSlot[i];
    if (!s->set || s->pExpr) continue;
    rc = quay__validate(m, m->apField[i], &s->v, pErr);
    if (rc) return rc;
  }
  return QUAY_OK;
}

/*
** After rows went in with automatic keys given explicitly, up to iMax:
** the dialect's xIdentityRaise (PostgreSQL: an identity does not see such
** keys, and would hand them out again).  Once per writer and key height.
*/
static int raise_identity(quay_writer *w, int64_t iMax, quay_err *pErr) {
  const Dialect *d = w->pDb->pDialect;
  quay_model *m = w->pModel;
  Field *pk = m->apField[m->iPk];
  quay_value v;
  Str sql;
  int rc;
  if (d->xIdentityRaise == NULL || pk->eType != QUAY_T_ID ||
      iMax <= w->iIdRaised) {
    return QUAY_OK;
  }
  quay__str_init(&sql);
  d->xIdentityRaise(&sql, m->zTable, pk->zCol);
  if (sql.oom) {
    quay__str_free(&sql);
    return quay__oom(pErr);
  }
  v.type = QUAY_INT;
  v.u.i = iMax;
  rc = quay__db_run(w->pDb, sql.z, &v, 1, NULL, 0, 0, NULL, NULL, pErr);
  quay__str_free(&sql);
  if (rc == QUAY_OK) w->iIdRaised = iMax;
  return rc;
}

/*
** The INSERT text for the slots that are set, kept in the writer and
** rebuilt only when the set of columns changes.  With an auto-increment
** key and a driver that reports the last insert id, no RETURNING clause:
** SQLite pays a temporary b-tree per row for RETURNING.
*/
static int insert_sql(quay_writer *w, int *pbReturning) {
  quay_model *m = w->pModel;
  const Dialect *d = w->pDb->pDialect;
  Field *pk = m->apField[m->iPk];
  int i, n = 0, bSame = w->bInsValid;
  int bReturning = !(w->pDb->pDrv->xLastInsertId && pk->eType == QUAY_T_ID &&
                     !w->aSlot[m->iPk].set);
  if (w->aInsMask == NULL) {
    w->aInsMask = quay__calloc((size_t)m->nField + 1);
    if (w->aInsMask == NULL) return QUAY_ENOMEM;
  }
  for (i = 0; i < m->nField && bSame; i++) {
    if (w->aInsMask[i] != (unsigned char)w->aSlot[i].set) bSame = 0;
  }
  *pbReturning = bReturning;
  if (bSame && w->bInsReturning == bReturning) return QUAY_OK;
  w->bInsValid = 0;
  quay__str_reset(&w->insSql);
  quay__str_cat(&w->insSql, "INSERT INTO ");
  quay__str_ident(&w->insSql, m->zTable);
  quay__str_cat(&w->insSql, " (");
  for (i = 0; i < m->nField; i++) {
    w->aInsMask[i] = (unsigned char)w->aSlot[i].set;
    if (!w->aSlot[i].set) continue;
    if (n++) quay__str_cat(&w->insSql, ", ");
    quay__str_ident(&w->insSql, m->apField[i]->zCol);
  }
  if (n == 0) {
    quay__str_reset(&w->insSql);
    quay__str_cat(&w->insSql, "INSERT INTO ");
    quay__str_ident(&w->insSql, m->zTable);
    quay__str_cat(&w->insSql, " DEFAULT VALUES");
  } else {
    quay__str_cat(&w->insSql, ") VALUES (");
    for (i = 0; i < n; i++) {
      if (i) quay__str_cat(&w->insSql, ", ");
      d->xParam(&w->insSql, i + 1);
    }
    quay__str_cat(&w->insSql, ")");
  }
  if (bReturning) {
    quay__str_cat(&w->insSql, " RETURNING ");
    quay__str_ident(&w->insSql, pk->zCol);
  }
  if (w->insSql.oom) {
    quay__str_free(&w->insSql);
    return QUAY_ENOMEM;
  }
  w->bInsValid = 1;
  w->bInsReturning = bReturning;
  return QUAY_OK;
}

int quay_writer_insert(quay_writer *w, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_insert: %s is NULL",
        "pW");
  }
  quay_model *m = w->pModel;
  quay_value aStack[32], *aParam = aStack;
  int n = 0, i, rc, bReturning, bKeyGiven;
  quay_cursor *c = NULL;
  Field *pk = m->apField[m->iPk];
  rc = fill_insert(w, pErr);
  if (rc) return rc;
  bKeyGiven = w->aSlot[m->iPk].set;
  if (m->nField > QUAY_ARRAYSIZE(aStack)) {
    aParam = quay__malloc(sizeof(quay_value) * (size_t)m->nField);
    if (aParam == NULL) return quay__oom(pErr);
  }
  for (i = 0; i < m->nField; i++) {
    if (w->aSlot[i].set) aParam[n++] = w->aSlot[i].v;
  }
  if (insert_sql(w, &bReturning)) {
    rc = quay__oom(pErr);
    goto done;
  }
  if (!bReturning) {
    quay_value v;
    rc = quay__db_run(w->pDb, w->insSql.z, aParam, n, NULL, 0, 0, NULL, NULL,
                      pErr);
    if (rc) goto done;
    v.type = QUAY_INT;
    v.u.i = w->pDb->pDrv->xLastInsertId(w->pDb->aSrv[0].pConn);
    if (slot_store(&w->aSlot[m->iPk], &v)) rc = quay__oom(pErr);
    goto done;
  }
  {
    int eHint = quay__field_hint(pk);
    rc = quay__db_run(w->pDb, w->insSql.z, aParam, n, &eHint, 1, 0, &c, NULL,
                      pErr);
  }
  if (rc) goto done;
  rc = quay_cursor_step(c, pErr);
  if (rc == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(c, 0, &v);
    if (slot_store(&w->aSlot[m->iPk], &v)) {
      rc = quay__oom(pErr);
      goto done;
    }
    rc = quay_cursor_step(c, pErr);
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
done:
  quay_cursor_close(c);
  if (aParam != aStack) quay__free(aParam);
  if (rc == QUAY_OK && bKeyGiven && w->aSlot[m->iPk].v.type == QUAY_INT) {
    rc = raise_identity(w, w->aSlot[m->iPk].v.u.i, pErr);
  }
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Batched inserts
** ===================================================================
*/
int quay_writer_batch(const quay_writer *w) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return 0;
  }
  int nField = w->pModel->nField, n = w->pDb->pDialect->maxInsertRows;
  if (w->pBulk) return bulk_rows(w);
  if (w->pDb->pDialect->maxSourceRows > 0) {
    return w->pDb->pDialect->maxSourceRows;
  }
  if (n < 1) n = 1;
  if (n * nField > 32000) n = 32000 / (nField ? nField : 1);
  return n < 1 ? 1 : n;
}

int quay_writer_queued(const quay_writer *w) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return 0;
  }
  return w->flushed ? 0 : w->nQueue;
}

int quay_writer_queue(quay_writer *w, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_queue: %s is NULL",
        "pW");
  }
  quay_model *m = w->pModel;
  int i, rc, n = m->nField;
  quay_value *row;
  unsigned char *aSet;
  if (w->flushed) {
    w->nQueue = 0;
    w->flushed = 0;
    quay__arena_free(&w->queueArena);
  }
  if (w->aUp) {
    /* Upserts: the fields the caller gave, before defaults fill the rest. */
    if (w->aGiven == NULL) {
      w->aGiven = quay__calloc((size_t)n + 1);
      if (w->aGiven == NULL) return quay__oom(pErr);
    }
    for (i = 0; i < n; i++) w->aGiven[i] = (unsigned char)w->aSlot[i].set;
  }
  rc = fill_insert(w, pErr);
  if (rc) return rc;
  if (w->nQueue == w->nQueueAlloc) {
    int nNew = w->nQueueAlloc ? w->nQueueAlloc * 2 : 16;
    quay_value *a = quay__realloc(w->aQueue, sizeof(quay_value) *
                                                 (size_t)nNew * (size_t)n);
    unsigned char *b;
    if (a == NULL) return quay__oom(pErr);
    w->aQueue = a;
    b = quay__realloc(w->aQueueSet, (size_t)nNew * (size_t)n);
    if (b == NULL) return quay__oom(pErr);
    w->aQueueSet = b;
    w->nQueueAlloc = nNew;
  }
  row = &w->aQueue[(size_t)w->nQueue * (size_t)n];
  aSet = &w->aQueueSet[(size_t)w->nQueue * (size_t)n];
  for (i = 0; i < n; i++) {
    Slot *s = &w->aSlot[i];
    row[i] = s->v;
    aSet[i] = (unsigned char)(s->set | (w->aUp && w->aGiven[i] ? 2 : 0));
    if (s->set && QUAY_VALUE_HAS_BYTES(s->v.type)) {
      row[i].u.z = quay__arena_strdup(&w->queueArena, s->v.u.z, s->v.n);
      if (row[i].u.z == NULL) return quay__oom(pErr);
    }
    if (!s->set) row[i].type = QUAY_NULL;
  }
  w->nQueue++;
  return QUAY_OK;
}

/*
** {==================================================================
** Upserts
** ===================================================================
** An upsert is a batched insert whose statement ends with ON CONFLICT
** (the conflict columns) DO UPDATE SET col = excluded.col for the update
** fields, and RETURNING every column, so each queued row ends up holding
** the stored row, inserted or updated.  Returned rows are matched to
** queued rows by their conflict key, not by position (neither backend
** promises RETURNING order); rows whose key has a NULL (always inserted:
** NULL never conflicts) take the unmatched returned rows in order.  A
** statement may not touch one row twice (PostgreSQL refuses), so a row
** whose conflict key repeats one of its batch starts a new batch there
** (bUpsertRowOnce); SQLite applies such rows in order within one
** statement.  The last of several rows with one key wins, on both
** backends.
*/

/* Field index of a name of m: a field, or a to-one relation's key column;
** -1 if none. */
static int field_of_name(quay_model *m, const char *zName) {
  Field *f = quay__model_field(m, zName);
  Rel *r;
  if (f) return f->iField;
  r = quay__model_rel(m, zName);
  if (r && r->pFrom == m && r->pFk && r->pFk->pRel == r &&
      (r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE)) {
    return r->pFk->iField;
  }
  return -1;
}

/*
** QUAY_OK when the fields aiField (n, distinct) are a key the database
** enforces: the primary key, one unique field, or exactly the fields of
** one unique_together set (in any order).  Else QUAY_EMISUSE naming them.
*/
static int check_unique_key(quay_model *m, const int *aiField, int n,
                            const char *zWhat, quay_err *pErr) {
  int k, i, j;
  Str names;
  if (n == 1 && (aiField[0] == m->iPk ||
                 (m->apField[aiField[0]]->mFlags & (QUAY_F_UNIQUE |
                                                   QUAY_F_PK)))) {
    return QUAY_OK;
  }
  if (n == 1 && m->apField[aiField[0]]->pRel &&
      (m->apField[aiField[0]]->pRel->mFlags & QUAY_F_UNIQUE)) {
    return QUAY_OK;               /* a unique belongs_to / one_to_one */
  }
  if (n == 1 && m->apField[aiField[0]]->pRel &&
      m->apField[aiField[0]]->pRel->eKind == QUAY_R_ONE_TO_ONE) {
    return QUAY_OK;
  }
  for (k = 0; k < m->nUnique; k++) {
    int nMatch = 0;
    if (m->anUnique[k] != n) continue;
    for (i = 0; i < n; i++) {
      int iF = field_of_name(m, m->aaUnique[k][i]);
      for (j = 0; j < n; j++) {
        if (aiField[j] == iF) {
          nMatch++;
          break;
        }
      }
    }
    if (nMatch == n) return QUAY_OK;
  }
  quay__str_init(&names);
  for (i = 0; i < n; i++) {
    quay__str_printf(&names, "%s%s", i ? ", " : "",
                     m->apField[aiField[i]]->zName);
  }
  quay__err(pErr, QUAY_EMISUSE,
            "%s: %s.(%s) is not a unique key: conflict fields must be the "
            "primary key, a unique field or a unique_together set (declare "
            "one, so the database enforces it)", zWhat, m->zName,
            names.z ? names.z : "");
  quay__str_free(&names);
  return QUAY_EMISUSE;
}

int quay_writer_upsert(quay_writer *w, const int *aiConflict, int nConflict,
                       const int *aiUpdate, int nUpdate, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || (aiConflict == NULL && nConflict > 0) || (aiUpdate == NULL
      && nUpdate > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_upsert: %s is NULL", w
        == NULL ? "pW" : (aiConflict == NULL && nConflict > 0) ? "aiConflict"
            : "aiUpdate");
  }
  if (nConflict < 0 || nUpdate < 0) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_upsert: %s is negative",
                     nConflict < 0 ? "nConflict" : "nUpdate");
  }
  quay_model *m = w->pModel;
  unsigned char *a;
  int i, rc;
  if (nConflict < 1) {
    return quay__err(pErr, QUAY_EMISUSE, "upsert on %s: name the conflict "
                     "fields (conflict = {...})", m->zName);
  }
  a = quay__calloc((size_t)m->nField + 1);
  if (a == NULL) return quay__oom(pErr);
  for (i = 0; i < nConflict; i++) {
    int k = aiConflict[i];
    if (k < 0 || k >= m->nField) {
      quay__free(a);
      return quay__err(pErr, QUAY_EMISUSE, "quay_writer_upsert: bad field");
    }
    if (a[k]) {
      quay__free(a);
      return quay__err(pErr, QUAY_EMISUSE, "upsert on %s: conflict field "
                       "%s is named twice", m->zName, m->apField[k]->zName);
    }
    a[k] = UP_CONFLICT;
  }
  rc = check_unique_key(m, aiConflict, nConflict, "upsert", pErr);
  for (i = 0; rc == QUAY_OK && i < nUpdate; i++) {
    int k = aiUpdate[i];
    if (k < 0 || k >= m->nField) {
      rc = quay__err(pErr, QUAY_EMISUSE, "quay_writer_upsert: bad field");
    } else if (a[k] & UP_CONFLICT) {
      rc = quay__err(pErr, QUAY_EMISUSE, "upsert on %s: %s is a conflict "
                     "field, so an update cannot change it (leave it out "
                     "of update)", m->zName, m->apField[k]->zName);
    } else if (k == m->iPk) {
      rc = quay__err(pErr, QUAY_EMISUSE, "upsert on %s: the primary key %s "
                     "cannot be in update", m->zName, m->apField[k]->zName);
    } else {
      a[k] |= UP_UPDATE;
    }
  }
  if (rc) {
    quay__free(a);
    return rc;
  }
  if (aiUpdate) a[m->nField] = UP_EXPLICIT;
  quay__free(w->aUp);
  w->aUp = a;
  return QUAY_OK;
}

/* Rows per upsert statement: multi-row on both backends (RETURNING costs
** a temporary table per statement on SQLite, so fewer statements pay). */
static int upsert_batch(const quay_writer *w) {
  int nField = w->pModel->nField, n = 500;
  if (w->pDb->pDialect->maxSourceRows > 0) {
    return w->pDb->pDialect->maxSourceRows;
  }
  if (n * nField > 32000) n = 32000 / (nField ? nField : 1);
  return n < 1 ? 1 : n;
}

/*
** The conflict key of a row (nField values) as one value: the value of a
** single conflict field, or for several a text joining their normalized
** values (in pBuf).  0 when a component is NULL (such a row never
** conflicts).
*/
static int conflict_key(quay_writer *w, const quay_value *row, Str *pBuf,
                        quay_value *pOut) {
  quay_model *m = w->pModel;
  int i, nConf = 0, iOne = -1;
  for (i = 0; i < m->nField; i++) {
    if (!(w->aUp[i] & UP_CONFLICT)) continue;
    if (row[i].type == QUAY_NULL) return 0;
    nConf++;
    iOne = i;
  }
  if (nConf == 1) {
    *pOut = row[iOne];
    return 1;
  }
  quay__str_reset(pBuf);
  for (i = 0; i < m->nField; i++) {
    const quay_value *v = &row[i];
    if (!(w->aUp[i] & UP_CONFLICT)) continue;
    switch (v->type) {
      case QUAY_INT: quay__str_printf(pBuf, "i%lld;", (long long)v->u.i); break;
      case QUAY_BOOL: quay__str_printf(pBuf, "i%d;", v->u.b ? 1 : 0); break;
      case QUAY_REAL:
        if (v->u.r >= -9.2e18 && v->u.r <= 9.2e18 &&
            (double)(int64_t)v->u.r == v->u.r) {
          quay__str_printf(pBuf, "i%lld;", (long long)(int64_t)v->u.r);
        } else {
          quay__str_printf(pBuf, "r%.17g;", v->u.r);
        }
        break;
      default:
        quay__str_printf(pBuf, "t%zu:", v->n);
        quay__str_append(pBuf, v->u.z, v->n);
        break;
    }
  }
  pOut->type = QUAY_TEXT;
  pOut->u.z = pBuf->z ? pBuf->z : "";
  pOut->n = pBuf->n;
  return 1;
}

/* Does field i of an upsert run (set flags aSet) go in DO UPDATE SET? */
static int upsert_updates(const quay_writer *w, const unsigned char *aSet,
                          int i) {
  const Field *f = w->pModel->apField[i];
  if (!(aSet[i] & 1) || (w->aUp[i] & UP_CONFLICT) || i == w->pModel->iPk) {
    return 0;
  }
  if (w->aUp[i] & UP_UPDATE) return 1;
  if (f->mFlags & QUAY_F_AUTO_NOW) return 1;    /* stamped on every write */
  if (w->aUp[w->pModel->nField] & UP_EXPLICIT) return 0;
  return (aSet[i] & 2) != 0;      /* default: the fields given */
}

/* " ON CONFLICT (...) DO UPDATE SET ... RETURNING <every column>" */
static void upsert_tail(quay_writer *w, const unsigned char *aSet, Str *p) {
  quay_model *m = w->pModel;
  int i, k = 0, iFirst = -1;
  quay__str_cat(p, " ON CONFLICT (");
  for (i = 0; i < m->nField; i++) {
    if (!(w->aUp[i] & UP_CONFLICT)) continue;
    if (iFirst < 0) iFirst = i;
    if (k++) quay__str_cat(p, ", ");
    quay__str_ident(p, m->apField[i]->zCol);
  }
  quay__str_cat(p, ") DO UPDATE SET ");
  k = 0;
  for (i = 0; i < m->nField; i++) {
    if (!upsert_updates(w, aSet, i)) continue;
    if (k++) quay__str_cat(p, ", ");
    quay__str_ident(p, m->apField[i]->zCol);
    quay__str_cat(p, " = excluded.");
    quay__str_ident(p, m->apField[i]->zCol);
  }
  if (k == 0) {
    /* Nothing to change: a no-op update, so RETURNING gives the row. */
    quay__str_ident(p, m->apField[iFirst]->zCol);
    quay__str_cat(p, " = excluded.");
    quay__str_ident(p, m->apField[iFirst]->zCol);
  }
  quay__str_cat(p, " RETURNING ");
  for (i = 0; i < m->nField; i++) {
    if (i) quay__str_cat(p, ", ");
    quay__str_ident(p, m->apField[i]->zCol);
  }
}

/* Do queued row a and returned row b (nField values each) have the same
** conflict key, with no NULL in it? */
static int conflict_same(quay_writer *w, const quay_value *a,
                         const quay_value *b) {
  int i;
  for (i = 0; i < w->pModel->nField; i++) {
    if (!(w->aUp[i] & UP_CONFLICT)) continue;
    if (a[i].type == QUAY_NULL || !quay__value_eq(&a[i], &b[i])) return 0;
  }
  return 1;
}

/*
** Read the RETURNING rows of an upsert run [iFrom, iTo) into the queue:
** each returned row replaces the queued row with its conflict key (or,
** for rows with a NULL in it, the next such row in order).  Rows come back
** in the order sent in practice, so each is first tried against the row at
** its own position; the key index is built only when that fails.
*/
static int upsert_read(quay_writer *w, quay_cursor *c, int iFrom, int iTo,
                       quay_err *pErr) {
  quay_model *m = w->pModel;
  int n = m->nField, i, r, rc = QUAY_OK, nNull = 0, iNextNull = 0, idx;
  int t = 0, bIndexed = 0;
  quay_keyset *pKeys = NULL;
  int *aPos = NULL, *aNull = NULL;
  unsigned char *aDone = NULL;
  quay_value *tmp = NULL;
  Str key;
  quay__str_init(&key);
  aDone = quay__calloc((size_t)(iTo - iFrom + 1));
  tmp = quay__malloc(sizeof(quay_value) * (size_t)(n + 1));
  if (aDone == NULL || tmp == NULL) rc = quay__oom(pErr);
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, pErr)) == QUAY_ROW) {
    quay_value k;
    int iRow = -1;
    rc = QUAY_OK;
    for (i = 0; i < n; i++) quay_cursor_value(c, i, &tmp[i]);
    if (iFrom + t < iTo && !aDone[t] &&
        conflict_same(w, &w->aQueue[(size_t)(iFrom + t) * (size_t)n], tmp)) {
      iRow = iFrom + t;
    } else {
      if (!bIndexed) {
        /* Index the run's keys (and list its NULL-key rows) once. */
        bIndexed = 1;
        aPos = quay__malloc(sizeof(int) * (size_t)(iTo - iFrom + 1));
        aNull = quay__malloc(sizeof(int) * (size_t)(iTo - iFrom + 1));
        rc = (aPos && aNull) ? quay_keyset_new(&pKeys, pErr) : quay__oom(pErr);
        for (r = iFrom; rc == QUAY_OK && r < iTo; r++) {
          quay_value kq;
          if (!conflict_key(w, &w->aQueue[(size_t)r * (size_t)n], &key,
                            &kq)) {
            aNull[nNull++] = r;
            continue;
          }
          if (key.oom) rc = quay__oom(pErr);
          if (rc == QUAY_OK) rc = quay_keyset_add(pKeys, &kq, &idx, pErr);
          if (rc == QUAY_OK && idx >= 0) aPos[idx] = r;
        }
        if (rc) break;
      }
      if (conflict_key(w, tmp, &key, &k)) {
        int j = quay_keyset_find(pKeys, &k);
        if (key.oom) {
          rc = quay__oom(pErr);
          break;
        }
        if (j >= 0 && !aDone[aPos[j] - iFrom]) iRow = aPos[j];
      }
      while (iRow < 0 && iNextNull < nNull) {
        int x = aNull[iNextNull++];
        if (!aDone[x - iFrom]) iRow = x;
      }
    }
    t++;
    if (iRow < 0 || aDone[iRow - iFrom]) {
      rc = quay__err(pErr, QUAY_ESQL, "upsert on %s: the database returned "
                     "a row that matches none sent", m->zName);
      break;
    }
    aDone[iRow - iFrom] = 1;
    for (i = 0; i < n; i++) {
      quay_value v = tmp[i];
      if (QUAY_VALUE_HAS_BYTES(v.type)) {
        v.u.z = quay__arena_strdup(&w->queueArena, v.u.z, v.n);
        if (v.u.z == NULL) {
          rc = quay__oom(pErr);
          break;
        }
      }
      w->aQueue[(size_t)iRow * (size_t)n + (size_t)i] = v;
    }
  }
  if (rc == QUAY_DONE) {
    rc = QUAY_OK;
    for (r = iFrom; r < iTo; r++) {
      if (!aDone[r - iFrom]) {
        rc = quay__err(pErr, QUAY_ESQL, "upsert on %s: the database "
                       "returned fewer rows than were sent", m->zName);
        break;
      }
    }
  }
  quay_keyset_free(pKeys);
  quay__free(aPos);
  quay__free(aNull);
  quay__free(aDone);
  quay__free(tmp);
  quay__str_free(&key);
  return rc;
}
/* }================================================================== */

/*
** "INSERT INTO t (cols) SELECT * FROM <row source> AS v" of the rows
** [iFrom, iTo) (dialects with maxSourceRows): the statement text into
** pSql, its few parameters into *paParam / *pnParam (arena a).
*/
static int source_insert(quay_writer *w, int iFrom, int iTo, Str *pSql,
                         Arena *a, quay_value **paParam, int *pnParam,
                         quay_err *pErr) {
  quay_model *m = w->pModel;
  int n = m->nField, i, r, k, nCol = 0, rc;
  const unsigned char *aSet = &w->aQueueSet[(size_t)iFrom * (size_t)n];
  int *aeType = quay__arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  quay_value *aVal;
  Build b;
  for (i = 0; i < n; i++) nCol += aSet[i] & 1;
  aVal = quay__arena_alloc(a, sizeof(quay_value) * (size_t)nCol *
                                  (size_t)(iTo - iFrom) + 1);
  if (aeType == NULL || aVal == NULL) return quay__oom(pErr);
  for (i = k = 0; i < n; i++) {
    if (aSet[i] & 1) aeType[k++] = m->apField[i]->eType;
  }
  for (r = iFrom, k = 0; r < iTo; r++) {
    const quay_value *row = &w->aQueue[(size_t)r * (size_t)n];
    for (i = 0; i < n; i++) {
      if (aSet[i] & 1) aVal[k++] = row[i];
    }
  }
  quay__build_init(&b, w->pDb, a, pErr);
  quay__str_cat(&b.sql, "INSERT INTO ");
  quay__str_ident(&b.sql, m->zTable);
  quay__str_cat(&b.sql, " (");
  for (i = k = 0; i < n; i++) {
    if (!(aSet[i] & 1)) continue;
    if (k++) quay__str_cat(&b.sql, ", ");
    quay__str_ident(&b.sql, m->apField[i]->zCol);
  }
  quay__str_cat(&b.sql, ") SELECT * FROM ");
  b.pDia->xRowSource(&b, aeType, nCol, aVal, iTo - iFrom);
  quay__str_cat(&b.sql, " AS v");
  rc = quay__build_rc(&b);
  if (rc == QUAY_OK) {
    quay__str_append(pSql, b.sql.z, b.sql.n);
    *paParam = quay__arena_alloc(a, sizeof(quay_value) *
                                        (size_t)(b.params.n + 1));
    if (*paParam == NULL || pSql->oom) {
      rc = quay__oom(pErr);
    } else {
      if (b.params.n) {
        memcpy(*paParam, b.params.a, sizeof(quay_value) * (size_t)b.params.n);
      }
      *pnParam = b.params.n;
    }
  }
  quay__build_free(&b);
  return rc;
}

/*
** "INSERT INTO t (cols) VALUES (...), ..." of the rows [iFrom, iTo) (or
** DEFAULT VALUES when no column is set): text into pSql, one parameter
** per value into *paParam / *pnParam (arena a).
*/
static int values_insert(quay_writer *w, int iFrom, int iTo, int bOrFail,
                         Str *pSql, Arena *a, quay_value **paParam,
                         int *pnParam, quay_err *pErr) {
  quay_model *m = w->pModel;
  const Dialect *d = w->pDb->pDialect;
  int n = m->nField, i, r, nCol = 0, nParam = 0;
  const unsigned char *aSet = &w->aQueueSet[(size_t)iFrom * (size_t)n];
  quay_value *aParam;
  for (i = 0; i < n; i++) nCol += aSet[i] & 1;
  aParam = quay__arena_alloc(a, sizeof(quay_value) *
                                    (size_t)(nCol * (iTo - iFrom) + 1));
  if (aParam == NULL) return quay__oom(pErr);
  quay__str_cat(pSql, bOrFail ? "INSERT OR FAIL INTO " : "INSERT INTO ");
  quay__str_ident(pSql, m->zTable);
  if (nCol == 0) {
    quay__str_cat(pSql, " DEFAULT VALUES");
  } else {
    quay__str_cat(pSql, " (");
    for (i = 0, r = 0; i < n; i++) {
      if (!(aSet[i] & 1)) continue;
      if (r++) quay__str_cat(pSql, ", ");
      quay__str_ident(pSql, m->apField[i]->zCol);
    }
    quay__str_cat(pSql, ") VALUES ");
    for (r = iFrom; r < iTo; r++) {
      const quay_value *row = &w->aQueue[(size_t)r * (size_t)n];
      int k = 0;
      quay__str_cat(pSql, r > iFrom ? ", (" : "(");
      for (i = 0; i < n; i++) {
        if (!(aSet[i] & 1)) continue;
        if (k++) quay__str_cat(pSql, ", ");
        aParam[nParam++] = row[i];
        d->xParam(pSql, nParam);
      }
      quay__str_char(pSql, ')');
    }
  }
  *paParam = aParam;
  *pnParam = nParam;
  return QUAY_OK;
}

/*
** {==================================================================
** Bulk inserts
** ===================================================================
** SQLite runs a multi-row INSERT at half the instructions of as many
** one-row ones (docs/ENGINE.md "Inserting"), but only when the statement
** cannot abort halfway: one that can (a foreign key checked as it runs,
** NOT NULL, CHECK or UNIQUE with the default ABORT) needs a statement
** journal, which copies every page the statement touches and made W5
** 1.7x slower instead.  So a bulk insert that owns its transaction
** (quay_writer_bulk_begin) goes like this:
**   - the connection's foreign-key enforcement is suspended until the
**     transaction ends (exec.c bulk_ended turns it on again, whatever
**     ends it);
**   - rows go BULK_ROWS a statement as INSERT OR FAIL: a failing
**     constraint stops the statement without undoing its earlier rows,
**     which is no loss, as the whole transaction is rolled back;
**   - the writer checks the foreign keys itself before the COMMIT
**     (quay__writer_bulk_check, called by quay_db_commit): for each
**     foreign key of the table (as SQLite lists them, so undeclared ones
**     too), the distinct integer keys the rows gave must all be in the
**     parent table, or else, for composite keys, keys of other types,
**     columns no field writes or columns that do not store an integer as
**     given (TEXT, REAL), every new row (by rowid range) must find its
**     parent row, compared as SQLite compares (the parent's affinity).
**     A row whose key has a NULL is not checked, as SQLite does not
**     check it.
** Only when nothing else can write meanwhile: no transaction open (so no
** other statement of the caller's shares it), no on_query observer (user
** code), no trigger on the table (its statements would run unchecked),
** no foreign key to the table itself (row by row, SQLite refuses a row
** naming one written after it), a rowid table, and rowids far from the
** largest (a multi-row statement's new rowids are then consecutive, so
** the last one gives them all).
** Explicit integer keys go one row a statement (their rowids are the
** keys), as does everything after a key above half the range.
*/
#define BULK_MIN_ROWS 64       /* fewer: one statement per row */
#define BULK_ROWS 64           /* rows a statement (SQLite: 8..128 measure
                               ** alike; each re-prepare is per call) */

typedef struct BulkFk {
  const char *zParent;         /* parent table */
  int nCol;
  const char **azFrom, **azTo; /* child and parent columns */
  const char *zType;           /* declared type of the first child column */
  int iField;                  /* one column written by this field, or -1 */
  int bRange;                  /* check the new rows by rowid range */
  quay_keyset *pKeys;          /* else: the distinct keys given */
} BulkFk;

struct Bulk {
  Arena a;
  BulkFk *aFk;
  int nFk;
  int64_t *aRange;             /* nRange pairs: first and last new rowid */
  int nRange, nRangeAlloc;
  int bSingle;                 /* one row a statement from now on */
};

static int bulk_rows(const quay_writer *w) {
  int nField = w->pModel->nField, n = 999 / (nField ? nField : 1);
  return n < 1 ? 1 : n > BULK_ROWS ? BULK_ROWS : n;
}

void quay__writer_bulk_end(quay_writer *w) {
  Bulk *b = w ? w->pBulk : NULL;
  int i;
  if (b == NULL) return;
  for (i = 0; i < b->nFk; i++) quay_keyset_free(b->aFk[i].pKeys);
  quay__free(b->aFk);
  quay__free(b->aRange);
  quay__arena_free(&b->a);
  quay__free(b);
  w->pBulk = NULL;
}

/* Does the declared type zType contain zSub (upper case), any case? */
static int type_has(const char *zType, const char *zSub) {
  size_t n = strlen(zSub), i, k;
  for (i = 0; zType[i]; i++) {
    for (k = 0; k < n && zType[i + k]; k++) {
      int x = (unsigned char)zType[i + k];
      if (x >= 'a' && x <= 'z') x -= 32;
      if (x != (unsigned char)zSub[k]) break;
    }
    if (k == n) return 1;
  }
  return 0;
}

/*
** Does a column of declared type zType store an integer as that integer
** (SQLite's affinity rules: INTEGER, NUMERIC or BLOB, not TEXT or REAL)?
** Only then is the value a field gave the value the key check must find
** (a TEXT column stores 5 as '5', which a parent's '5' matches and its
** 5 does not).
*/
static int keeps_int(const char *zType) {
  if (type_has(zType, "INT")) return 1;
  if (type_has(zType, "CHAR") || type_has(zType, "CLOB") ||
      type_has(zType, "TEXT")) {
    return 0;
  }
  if (type_has(zType, "BLOB") || zType[0] == 0) return 1;
  return !(type_has(zType, "REAL") || type_has(zType, "FLOA") ||
           type_has(zType, "DOUB"));
}

/* Text of column i of the cursor's row into arena a (NULL: none/OOM). */
static const char *bulk_text(quay_cursor *c, int i, Arena *a) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  if (v.type != QUAY_TEXT) return NULL;
  return quay__arena_strdup(a, v.u.z, v.n);
}

/*
** The table's foreign keys into b (SQLite's own list: the parent columns
** of one that names none are the parent's primary key).  *pbOk = 0 when
** one cannot be checked here (no parent column known, or a key to the
** table itself).
*/
static int bulk_fks(quay_writer *w, Bulk *b, int *pbOk, quay_err *pErr) {
  quay_model *m = w->pModel;
  quay_value t;
  quay_cursor *c = NULL;
  int rc, nAlloc = 0, iLast = -1;
  t.type = QUAY_TEXT;
  t.u.z = m->zTable;
  t.n = strlen(m->zTable);
  rc = quay__db_run(w->pDb,
                    "SELECT f.id, f.\"table\", f.\"from\", "
                    "coalesce(f.\"to\", (SELECT i.name FROM "
                    "pragma_table_info(f.\"table\") AS i WHERE i.pk = "
                    "f.seq + 1)), coalesce((SELECT i.type FROM "
                    "pragma_table_info(?1) AS i WHERE i.name = f.\"from\" "
                    "COLLATE NOCASE), '') FROM "
                    "pragma_foreign_key_list(?1) AS f ORDER BY f.id, f.seq",
                    &t, 1, NULL, 0, 0, &c, NULL, pErr);
  while (rc == QUAY_OK) {
    quay_value id;
    const char *zP, *zF, *zT, *zY;
    BulkFk *fk;
    rc = quay_cursor_step(c, pErr);
    if (rc != QUAY_ROW) break;
    rc = QUAY_OK;
    quay_cursor_value(c, 0, &id);
    zP = bulk_text(c, 1, &b->a);
    zF = bulk_text(c, 2, &b->a);
    zT = bulk_text(c, 3, &b->a);
    zY = bulk_text(c, 4, &b->a);
    if (zP == NULL || zF == NULL || zT == NULL || zY == NULL) {
      quay_value v;
      quay_cursor_value(c, 3, &v);
      if (v.type == QUAY_NULL) {
        *pbOk = 0;                     /* no parent column: not here */
        rc = QUAY_DONE;
        break;
      }
      rc = quay__oom(pErr);
      break;
    }
    if (id.type != QUAY_INT || (int)id.u.i != iLast) {
      if (b->nFk == nAlloc) {
        int nNew = nAlloc ? nAlloc * 2 : 4;
        BulkFk *aNew = quay__realloc(b->aFk, sizeof(BulkFk) * (size_t)nNew);
        if (aNew == NULL) {
          rc = quay__oom(pErr);
          break;
        }
        b->aFk = aNew;
        nAlloc = nNew;
      }
      fk = &b->aFk[b->nFk++];
      memset(fk, 0, sizeof(*fk));
      fk->zParent = zP;
      fk->zType = zY;
      fk->azFrom = quay__arena_alloc(&b->a, sizeof(char *) * 16);
      fk->azTo = quay__arena_alloc(&b->a, sizeof(char *) * 16);
      if (fk->azFrom == NULL || fk->azTo == NULL) {
        rc = quay__oom(pErr);
        break;
      }
      iLast = id.type == QUAY_INT ? (int)id.u.i : -1;
    }
    fk = &b->aFk[b->nFk - 1];
    if (fk->nCol == 16) {              /* wider than any model writes */
      *pbOk = 0;
      rc = QUAY_DONE;
      break;
    }
    fk->azFrom[fk->nCol] = zF;
    fk->azTo[fk->nCol++] = zT;
  }
  if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  if (rc == QUAY_OK && *pbOk) {
    int i, k;
    for (i = 0; i < b->nFk; i++) {
      BulkFk *fk = &b->aFk[i];
      if (quay__casecmp(fk->zParent, m->zTable) == 0) {
        /* A key to the table itself: row by row SQLite refuses a row
        ** naming one the call writes later (unless the key is deferred,
        ** which the pragma does not say), a check at the end cannot. */
        *pbOk = 0;
        return QUAY_OK;
      }
      fk->iField = -1;
      fk->bRange = 1;
      for (k = 0; fk->nCol == 1 && k < m->nField; k++) {
        if (quay__casecmp(m->apField[k]->zCol, fk->azFrom[0]) == 0) fk->iField = k;
      }
      if (fk->iField >= 0 && keeps_int(fk->zType)) {
        rc = quay_keyset_new(&fk->pKeys, pErr);
        if (rc) return rc;
        fk->bRange = 0;
      }
    }
  }
  return rc;
}

/*
** Can the bulk insert go fast (above)?  Inside the transaction just
** opened: no trigger on the table, a rowid table, rowids far from the
** largest, and the foreign keys known and valid for SQLite.  *pbOk
** says; b gets the keys.
*/
static int bulk_setup(quay_writer *w, Bulk *b, int *pbOk, quay_err *pErr) {
  quay_db *pDb = w->pDb;
  quay_model *m = w->pModel;
  quay_value t;
  int64_t n = 0;
  Str sql;
  int rc;
  *pbOk = 0;
  t.type = QUAY_TEXT;
  t.u.z = m->zTable;
  t.n = strlen(m->zTable);
  /* 0 when the name is one plain rowid table of the main schema (no
  ** TEMP object of that name, not WITHOUT ROWID, not virtual, no ON
  ** CONFLICT clause, which OR FAIL would override) with no trigger and
  ** no column named rowid (which the checks' c.rowid would read, written
  ** by a field or not); the text test may only send a table the plain
  ** way. */
  rc = quay__db_scalar(pDb,
                       "SELECT 1 - (SELECT count(*) FROM sqlite_master WHERE "
                       "type = 'table' AND name = ?1 COLLATE NOCASE) + "
                       "(SELECT count(*) FROM sqlite_master WHERE type = "
                       "'table' AND name = ?1 COLLATE NOCASE AND (sql LIKE "
                       "'%WITHOUT%ROWID%' OR sql LIKE 'CREATE VIRTUAL%' OR "
                       "sql LIKE '%ON%CONFLICT%')) + "
                       "(SELECT count(*) FROM sqlite_master WHERE type = "
                       "'trigger' AND tbl_name = ?1 COLLATE NOCASE) + "
                       "(SELECT count(*) FROM sqlite_temp_master WHERE "
                       "tbl_name = ?1 COLLATE NOCASE) + "
                       "(SELECT count(*) FROM pragma_table_info(?1) WHERE "
                       "name = 'rowid' COLLATE NOCASE)",
                       &t, 1, &n, pErr);
  if (rc || n > 0) return rc;
  quay__str_init(&sql);
  quay__str_cat(&sql, "SELECT max(rowid) FROM ");
  quay__str_ident(&sql, m->zTable);
  rc = sql.oom ? quay__oom(pErr)
               : quay__db_scalar(pDb, sql.z, NULL, 0, &n, pErr);
  quay__str_free(&sql);
  if (rc || n > INT64_MAX / 2) return rc;
  *pbOk = 1;
  if (!pDb->pDrv->xFkEnforce(pDb->aSrv[0].pConn, -1)) return QUAY_OK;
  /* SQLite refuses to prepare an INSERT while a key names a parent table
  ** or column that is not there or a parent key with no unique index
  ** ("foreign key mismatch"), whatever the row: such a table goes the
  ** plain way, whose first INSERT then fails as SQLite says (the checks
  ** below would not notice).  This one inserts nothing. */
  quay__str_init(&sql);
  quay__str_cat(&sql, "INSERT INTO ");
  quay__str_ident(&sql, m->zTable);
  quay__str_cat(&sql, " (rowid) SELECT NULL WHERE 0");
  rc = sql.oom ? quay__oom(pErr)
               : quay__db_run(pDb, sql.z, NULL, 0, NULL, 0, 0, NULL, NULL,
                              pErr);
  quay__str_free(&sql);
  if (rc == QUAY_ESQL && pErr && pErr->ext == 1) {
    /* SQLite's own SQLITE_ERROR preparing it; any other failure (I/O,
    ** a lost statement) fails the call as it would fail a write. */
    quay_err_clear(pErr);
    *pbOk = 0;
    return QUAY_OK;
  }
  if (rc) return rc;
  return bulk_fks(w, b, pbOk, pErr);
}

int quay_writer_bulk_begin(quay_writer *w, int64_t nRows, int *pbBegun,
                           quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || pbBegun == NULL) {
    if (pbBegun) *pbBegun = 0;
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_bulk_begin: %s is "
                     "NULL", w == NULL ? "pW" : "pbBegun");
  }
  quay_db *pDb = w->pDb;
  const quay_driver *d = pDb->pDrv;
  Bulk *b;
  int rc, bOk = 0;
  *pbBegun = 0;
  if (nRows < BULK_MIN_ROWS || w->aUp || d->iVersion < 5 ||
      d->xFkEnforce == NULL || d->xLastInsertId == NULL ||
      pDb->txnDepth > 0 || pDb->xTrace || pDb->pBulkW || w->pBulk) {
    return QUAY_OK;
  }
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  if (quay__conn_in_txn(pDb)) return QUAY_OK;
  rc = quay_db_begin(pDb, pErr);
  if (rc) return rc;
  *pbBegun = 1;
  b = quay__calloc(sizeof(*b));
  if (b == NULL) {
    rc = quay__oom(pErr);
  } else {
    quay__arena_init(&b->a);
    w->pBulk = b;                      /* freed by quay__writer_bulk_end */
    rc = bulk_setup(w, b, &bOk, pErr);
  }
  if (rc == QUAY_OK && bOk) {
    pDb->pBulkW = w;
    if (b->nFk > 0) {
      pDb->bFkOff = 1;
      d->xFkEnforce(pDb->aSrv[0].pConn, 0);
    }
    return QUAY_OK;
  }
  quay__writer_bulk_end(w);
  if (rc) {
    quay__txn_rollback(pDb);
    *pbBegun = 0;
  }
  return rc;
}

/* Remember new rowids [lo, hi]: merged with the last range when next. */
static int bulk_range(Bulk *b, int64_t lo, int64_t hi, quay_err *pErr) {
  if (b->nRange > 0 && b->aRange[2 * b->nRange - 1] + 1 == lo) {
    b->aRange[2 * b->nRange - 1] = hi;
    return QUAY_OK;
  }
  if (b->nRange == b->nRangeAlloc) {
    int nNew = b->nRangeAlloc ? b->nRangeAlloc * 2 : 8;
    int64_t *a = quay__realloc(b->aRange, sizeof(int64_t) * 2 * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    b->aRange = a;
    b->nRangeAlloc = nNew;
  }
  b->aRange[2 * b->nRange] = lo;
  b->aRange[2 * b->nRange + 1] = hi;
  b->nRange++;
  return QUAY_OK;
}

static int is_int_type(int eType) {
  return eType == QUAY_T_ID || eType == QUAY_T_INTEGER;
}

/*
** Queued rows [iFrom, iTo) sharing one column set, on a driver that
** gives the last insert id and a dialect of one-row VALUES (SQLite):
** without RETURNING (a temporary b-tree per statement there), keys from
** the last rowid.  In a bulk insert's transaction, as INSERT OR FAIL of
** up to bulk_rows() rows (above); otherwise one row a statement.
*/
static int bulk_run(quay_writer *w, int iFrom, int iTo, quay_err *pErr) {
  quay_model *m = w->pModel;
  Bulk *b = w->pBulk;
  int n = m->nField, r, i, nParam = 0, rc, k = iTo - iFrom;
  const unsigned char *aSet = &w->aQueueSet[(size_t)iFrom * (size_t)n];
  Field *pk = m->apField[m->iPk];
  int bAuto = !(aSet[m->iPk] & 1) && pk->eType == QUAY_T_ID;
  quay_value *aParam = NULL;
  int64_t iLast;
  Str sql;
  Arena a;
  for (i = 0; i < n; i++) nParam += aSet[i] & 1;
  if (k > 1 && (b == NULL || b->bSingle || nParam == 0 ||
                (!bAuto && is_int_type(pk->eType)))) {
    for (r = iFrom; r < iTo; r++) {
      rc = bulk_run(w, r, r + 1, pErr);
      if (rc) return rc;
    }
    return QUAY_OK;
  }
  nParam = 0;
  quay__arena_init(&a);
  quay__str_init(&sql);
  rc = values_insert(w, iFrom, iTo, b != NULL, &sql, &a, &aParam, &nParam,
                     pErr);
  if (rc == QUAY_OK && sql.oom) rc = quay__oom(pErr);
  if (rc == QUAY_OK) {
    rc = quay__db_run(w->pDb, sql.z, aParam, nParam, NULL, 0, 0, NULL, NULL,
                      pErr);
  }
  quay__str_free(&sql);
  quay__arena_free(&a);
  if (rc) return rc;
  iLast = w->pDb->pDrv->xLastInsertId(w->pDb->aSrv[0].pConn);
  for (r = iFrom; bAuto && r < iTo; r++) {
    quay_value *v = &w->aQueue[(size_t)r * (size_t)n + (size_t)m->iPk];
    v->type = QUAY_INT;
    v->u.i = iLast - (iTo - 1 - r);
  }
  if (b == NULL) return QUAY_OK;
  if (!bAuto && is_int_type(pk->eType)) {
    const quay_value *v = &w->aQueue[(size_t)iFrom * (size_t)n +
                                     (size_t)m->iPk];
    if (v->type == QUAY_INT && v->u.i > INT64_MAX / 2) b->bSingle = 1;
  }
  rc = bulk_range(b, iLast - (k - 1), iLast, pErr);
  for (i = 0; rc == QUAY_OK && i < b->nFk; i++) {
    BulkFk *fk = &b->aFk[i];
    for (r = iFrom; !fk->bRange && rc == QUAY_OK && r < iTo; r++) {
      const quay_value *v = &w->aQueue[(size_t)r * (size_t)n +
                                       (size_t)fk->iField];
      int idx;
      if (v->type == QUAY_NULL) continue;
      if (v->type != QUAY_INT) {
        fk->bRange = 1;                /* compared as SQLite would */
        break;
      }
      rc = quay_keyset_add(fk->pKeys, v, &idx, pErr);
    }
  }
  return rc;
}

/*
** The foreign-key failure of a bulk insert: integrity, named as a failed
** statement's would be (exec.c explain_integrity), with the value.
*/
static int bulk_fk_fail(quay_writer *w, const BulkFk *fk, quay_cursor *c,
                        quay_err *pErr) {
  quay_model *m = w->pModel;
  quay_model *pTo = quay__model_of_table(w->pDb, fk->zParent);
  const char *zWhat = fk->azFrom[0], *zRel = NULL;
  quay_value v;
  Str s;
  int rc;
  if (fk->iField >= 0) {
    Field *f = m->apField[fk->iField];
    zWhat = f->zName;
    if (f->pRel && f->pRel->pFrom == m) zRel = f->pRel->zName;
  }
  quay__str_init(&s);
  quay_cursor_value(c, 0, &v);
  if (v.type == QUAY_INT) quay__str_printf(&s, "%lld", (long long)v.u.i);
  else if (v.type == QUAY_TEXT) quay__str_printf(&s, "'%.40s'", v.u.z);
  else quay__str_cat(&s, "?");
  rc = quay__err_field(pErr, QUAY_EINTEGRITY, m->zName, zRel ? zRel : zWhat,
                       "%s.%s refers to a %s%s row that does not exist "
                       "(FOREIGN KEY constraint failed: %s.%s%s = %s has no "
                       "row in %s)", m->zName, zRel ? zRel : zWhat,
                       pTo ? pTo->zName : fk->zParent, pTo ? "" : " table",
                       m->zTable, fk->azFrom[0], fk->nCol > 1 ? ", ..." : "",
                       s.oom || s.z == NULL ? "?" : s.z, fk->zParent);
  quay__str_free(&s);
  pErr->ext = 787;                     /* SQLITE_CONSTRAINT_FOREIGNKEY */
  return rc;
}

/* One foreign key's check: the first row of zSql is a failure. */
static int bulk_check_one(quay_writer *w, const BulkFk *fk, const char *zSql,
                          const quay_value *aParam, int nParam,
                          quay_err *pErr) {
  quay_cursor *c = NULL;
  int rc = quay__db_run(w->pDb, zSql, aParam, nParam, NULL, 0, 0, &c, NULL,
                        pErr);
  if (rc == QUAY_OK) rc = quay_cursor_step(c, pErr);
  if (rc == QUAY_ROW) rc = bulk_fk_fail(w, fk, c, pErr);
  else if (rc == QUAY_DONE) rc = QUAY_OK;
  quay_cursor_close(c);
  return rc;
}

int quay__writer_bulk_check(quay_writer *w, quay_err *pErr) {
  Bulk *b = w->pBulk;
  int i, k, rc = QUAY_OK;
  Str sql, ranges;
  if (b == NULL) return QUAY_OK;
  quay__str_init(&sql);
  quay__str_init(&ranges);
  /* The new rows' rowid ranges as one JSON list of [first, last]: one
  ** query per key however many there are (explicit keys out of order
  ** make many; one range over them all would take in old rows between
  ** them, which a row by row insert never checks). */
  quay__str_char(&ranges, '[');
  for (k = 0; k < b->nRange; k++) {
    quay__str_printf(&ranges, "%s[%lld,%lld]", k ? "," : "",
                     (long long)b->aRange[2 * k],
                     (long long)b->aRange[2 * k + 1]);
  }
  quay__str_char(&ranges, ']');
  if (ranges.oom) rc = quay__oom(pErr);
  for (i = 0; rc == QUAY_OK && i < b->nFk; i++) {
    BulkFk *fk = &b->aFk[i];
    quay__str_reset(&sql);
    if (!fk->bRange) {
      /* The distinct keys, as one JSON array of integers. */
      Arena a;
      quay_value *aKey, arr;
      int nKey = quay_keyset_count(fk->pKeys);
      Str js;
      if (nKey == 0) continue;
      quay__arena_init(&a);
      quay__str_init(&js);
      rc = quay__keyset_values(fk->pKeys, &a, &aKey);
      if (rc == QUAY_OK) w->pDb->pDialect->xArrayValue(&js, aKey, nKey);
      quay__str_cat(&sql, "SELECT j.value FROM json_each(?1) AS j WHERE NOT "
                    "EXISTS (SELECT 1 FROM ");
      quay__str_ident(&sql, fk->zParent);
      quay__str_cat(&sql, " AS p WHERE p.");
      quay__str_ident(&sql, fk->azTo[0]);
      /* +: j.value of no affinity, so that the parent's applies (a
      ** TEXT parent's '5' is key 5, as SQLite finds it). */
      quay__str_cat(&sql, " = +j.value) LIMIT 1");
      if (rc == QUAY_OK && (js.oom || sql.oom)) rc = quay__oom(pErr);
      if (rc == QUAY_OK) {
        arr.type = QUAY_TEXT;
        arr.u.z = js.z;
        arr.n = js.n;
        rc = bulk_check_one(w, fk, sql.z, &arr, 1, pErr);
      }
      quay__str_free(&js);
      quay__arena_free(&a);
      continue;
    }
    /* Every new row of each range finds its parent row. */
    quay__str_cat(&sql, "SELECT ");
    for (k = 0; k < fk->nCol; k++) {
      quay__str_cat(&sql, k ? ", c." : "c.");
      quay__str_ident(&sql, fk->azFrom[k]);
    }
    quay__str_cat(&sql, " FROM json_each(?1) AS r CROSS JOIN ");
    quay__str_ident(&sql, w->pModel->zTable);
    quay__str_cat(&sql, " AS c WHERE c.rowid BETWEEN json_extract(r.value, "
                  "'$[0]') AND json_extract(r.value, '$[1]')");
    for (k = 0; k < fk->nCol; k++) {
      quay__str_cat(&sql, " AND c.");
      quay__str_ident(&sql, fk->azFrom[k]);
      quay__str_cat(&sql, " IS NOT NULL");
    }
    quay__str_cat(&sql, " AND NOT EXISTS (SELECT 1 FROM ");
    quay__str_ident(&sql, fk->zParent);
    quay__str_cat(&sql, " AS p WHERE ");
    for (k = 0; k < fk->nCol; k++) {
      quay__str_cat(&sql, k ? " AND p." : "p.");
      quay__str_ident(&sql, fk->azTo[k]);
      /* +: the child column's affinity off, so that the parent's applies
      ** to the stored value, as in SQLite's own check ('05' is no 5). */
      quay__str_cat(&sql, " = +c.");
      quay__str_ident(&sql, fk->azFrom[k]);
    }
    quay__str_cat(&sql, ") LIMIT 1");
    if (sql.oom) rc = quay__oom(pErr);
    if (rc == QUAY_OK && b->nRange > 0) {
      quay_value arr;
      arr.type = QUAY_TEXT;
      arr.u.z = ranges.z;
      arr.n = ranges.n;
      rc = bulk_check_one(w, fk, sql.z, &arr, 1, pErr);
    }
  }
  quay__str_free(&sql);
  quay__str_free(&ranges);
  return rc;
}
/* }================================================================== */

/* Insert (or upsert) queued rows [iFrom, iTo) sharing one column set. */
static int flush_run(quay_writer *w, int iFrom, int iTo, quay_err *pErr) {
  quay_model *m = w->pModel;
  const Dialect *d = w->pDb->pDialect;
  int n = m->nField, i, r, nCol = 0, nParam = 0, rc;
  const unsigned char *aSet = &w->aQueueSet[(size_t)iFrom * (size_t)n];
  quay_value *aParam = NULL;
  Field *pk = m->apField[m->iPk];
  quay_cursor *c = NULL;
  Str sql;
  Arena a;
  if (w->aUp == NULL && (w->pBulk || (d->maxInsertRows <= 1 &&
                                      d->maxSourceRows <= 0 &&
                                      w->pDb->pDrv->xLastInsertId &&
                                      (pk->eType == QUAY_T_ID ||
                                       (aSet[m->iPk] & 1))))) {
    return bulk_run(w, iFrom, iTo, pErr);
  }
  for (i = 0; i < n; i++) nCol += aSet[i] & 1;
  if (nCol == 0 && iTo - iFrom > 1) {
    /* INSERT ... DEFAULT VALUES makes one row: one statement per row. */
    for (r = iFrom; r < iTo; r++) {
      rc = flush_run(w, r, r + 1, pErr);
      if (rc) return rc;
    }
    return QUAY_OK;
  }
  quay__arena_init(&a);
  quay__str_init(&sql);
  if (nCol > 0 && d->maxSourceRows > 0) {
    rc = source_insert(w, iFrom, iTo, &sql, &a, &aParam, &nParam, pErr);
  } else {
    rc = values_insert(w, iFrom, iTo, 0, &sql, &a, &aParam, &nParam, pErr);
  }
  if (rc) goto done;
  if (w->aUp) {
    upsert_tail(w, aSet, &sql);
  } else {
    quay__str_cat(&sql, " RETURNING ");
    quay__str_ident(&sql, pk->zCol);
  }
  if (sql.oom) {
    rc = quay__oom(pErr);
    goto done;
  }
  {
    /* The stored key, or with an upsert every column of the stored row. */
    int eHint = quay__field_hint(pk), *aH = &eHint, nH = 1;
    if (w->aUp) {
      aH = quay__malloc(sizeof(int) * (size_t)(m->nField + 1));
      if (aH == NULL) {
        rc = quay__oom(pErr);
        goto done;
      }
      for (nH = 0; nH < m->nField; nH++) {
        aH[nH] = quay__field_hint(m->apField[nH]);
      }
    }
    rc = quay__db_run(w->pDb, sql.z, aParam, nParam, aH, nH, 0, &c, NULL,
                      pErr);
    if (aH != &eHint) quay__free(aH);
  }
  if (rc) goto done;
  if (w->aUp) {
    rc = upsert_read(w, c, iFrom, iTo, pErr);
    goto done;
  }
  for (r = iFrom; r < iTo; r++) {
    quay_value v;
    rc = quay_cursor_step(c, pErr);
    if (rc != QUAY_ROW) {
      if (rc == QUAY_DONE) {
        rc = quay__err(pErr, QUAY_ESQL, "INSERT returned fewer rows than "
                       "it inserted");
      }
      goto done;
    }
    quay_cursor_value(c, 0, &v);
    if (QUAY_VALUE_HAS_BYTES(v.type)) {
      v.u.z = quay__arena_strdup(&w->queueArena, v.u.z, v.n);
      if (v.u.z == NULL) {
        rc = quay__oom(pErr);
        goto done;
      }
    }
    w->aQueue[(size_t)r * (size_t)n + (size_t)m->iPk] = v;
  }
  rc = quay_cursor_step(c, pErr);
  if (rc == QUAY_DONE) rc = QUAY_OK;
done:
  quay_cursor_close(c);
  quay__str_free(&sql);
  quay__arena_free(&a);
  if (rc == QUAY_OK && (aSet[m->iPk] & 1)) {
    /* Keys given: the largest goes to the identity. */
    int64_t iMax = 0;
    for (r = iFrom; r < iTo; r++) {
      const quay_value *k = &w->aQueue[(size_t)r * (size_t)n +
                                       (size_t)m->iPk];
      if (k->type == QUAY_INT && k->u.i > iMax) iMax = k->u.i;
    }
    rc = raise_identity(w, iMax, pErr);
  }
  return rc;
}

int quay_writer_flush(quay_writer *w, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_flush: %s is NULL",
        "pW");
  }
  int n = w->pModel->nField, iFrom = 0, r, rc = QUAY_OK, idx;
  int nBatch = w->aUp ? upsert_batch(w) : quay_writer_batch(w);
  quay_keyset *pKeys = NULL;      /* upserts: conflict keys of the run */
  Str key;
  if (w->flushed || w->nQueue == 0) return QUAY_OK;
  quay__str_init(&key);
  if (w->aUp && w->pDb->pDialect->bUpsertRowOnce) {
    rc = quay_keyset_new(&pKeys, pErr);
    if (rc) return rc;
  }
  /* Rows sharing a column set (they differ only when some give the key,
  ** or, for upserts, give other fields) go in one statement, at most
  ** nBatch rows each; an upsert's run also ends before a repeated key. */
  for (r = 1; rc == QUAY_OK && r <= w->nQueue; r++) {
    int bCut = r == w->nQueue || r - iFrom >= nBatch ||
               memcmp(&w->aQueueSet[(size_t)r * (size_t)n],
                      &w->aQueueSet[(size_t)iFrom * (size_t)n],
                      (size_t)n) != 0;
    if (pKeys && r == iFrom + 1) {
      /* The run's first row. */
      quay_value k;
      if (conflict_key(w, &w->aQueue[(size_t)iFrom * (size_t)n], &key, &k)) {
        rc = key.oom ? quay__oom(pErr) : quay_keyset_add(pKeys, &k, &idx,
                                                         pErr);
      }
    }
    if (rc == QUAY_OK && pKeys && !bCut) {
      quay_value k;
      if (conflict_key(w, &w->aQueue[(size_t)r * (size_t)n], &key, &k)) {
        int nBefore = quay_keyset_count(pKeys);
        rc = key.oom ? quay__oom(pErr) : quay_keyset_add(pKeys, &k, &idx,
                                                         pErr);
        if (rc == QUAY_OK && quay_keyset_count(pKeys) == nBefore) bCut = 1;
      }
    }
    if (rc == QUAY_OK && bCut) {
      rc = flush_run(w, iFrom, r, pErr);
      iFrom = r;
      if (pKeys && rc == QUAY_OK) {
        quay_keyset_free(pKeys);
        pKeys = NULL;
        rc = quay_keyset_new(&pKeys, pErr);
      }
    }
  }
  quay_keyset_free(pKeys);
  quay__str_free(&key);
  if (rc) return rc;
  w->flushed = 1;
  return QUAY_OK;
}

void quay_writer_queued_value(quay_writer *w, int iRow, int iField,
                              quay_value *pOut) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL) {
    return;
  }
  if (iRow < 0 || iRow >= w->nQueue || iField < 0 ||
      iField >= w->pModel->nField) {
    pOut->type = QUAY_NULL;
    return;
  }
  *pOut = w->aQueue[(size_t)iRow * (size_t)w->pModel->nField + (size_t)iField];
}
/* }================================================================== */


/*
** {==================================================================
** on_update
** ===================================================================
*/
/* Does any relation reference field f of model m? */
static int is_referenced(quay_db *pDb, quay_model *m, Field *f) {
  int i, k;
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *x = pDb->apModel[i];
    for (k = 0; k < x->nDeclRel; k++) {
      Rel *r = x->apRel[k];
      if (!r->resolved) continue;
      if ((r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) &&
          r->pTo == m && r->pKey == f) {
        return 1;
      }
      if ((r->eKind == QUAY_R_HAS_MANY || r->eKind == QUAY_R_HAS_ONE) &&
          r->pFrom == m && r->pKey == f) {
        return 1;
      }
    }
  }
  for (i = 0; i < pDb->nJoin; i++) {
    JoinTable *j = pDb->apJoin[i];
    if (j->pThrough) continue;
    if ((j->pSrc == m && j->pSrcKey == f) ||
        (j->pDst == m && j->pDstKey == f)) {
      return 1;
    }
  }
  return 0;
}

/* One referencing column: table.col holds m.f values with rule eRule. */
typedef struct RefCol {
  const char *zTable, *zCol;
  const char *zModel;       /* for messages */
  const char *zRel;
  int eRule;
  Field *pFk;               /* for SET_DEFAULT: its default */
} RefCol;

static int collect_refs(quay_db *pDb, quay_model *m, Field *f, RefCol *a,
                        int nMax) {
  int i, k, n = 0;
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *x = pDb->apModel[i];
    for (k = 0; k < x->nDeclRel && n < nMax; k++) {
      Rel *r = x->apRel[k];
      if (!r->resolved) continue;
      if ((r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) &&
          r->pTo == m && r->pKey == f) {
        a[n].zTable = x->zTable;
        a[n].zCol = r->pFk->zCol;
        a[n].zModel = x->zName;
        a[n].zRel = r->zName;
        a[n].eRule = r->eOnUpdate;
        a[n].pFk = r->pFk;
        n++;
      } else if ((r->eKind == QUAY_R_HAS_MANY || r->eKind == QUAY_R_HAS_ONE) &&
                 r->pFrom == m && r->pKey == f) {
        a[n].zTable = r->pTo->zTable;
        a[n].zCol = r->pFk->zCol;
        a[n].zModel = r->pTo->zName;
        a[n].zRel = r->zName;
        a[n].eRule = r->eOnUpdate;
        a[n].pFk = r->pFk;
        n++;
      }
    }
  }
  for (i = 0; i < pDb->nJoin && n < nMax; i++) {
    JoinTable *j = pDb->apJoin[i];
    if (j->pThrough) continue;
    if (j->pSrc == m && j->pSrcKey == f) {
      a[n].zTable = j->zTable;
      a[n].zCol = j->zSrcCol;
      a[n].zModel = j->zTable;
      a[n].zRel = j->zTable;
      a[n].eRule = QUAY_CASCADE;
      a[n].pFk = NULL;
      n++;
    }
    if (j->pDst == m && j->pDstKey == f && n < nMax) {
      a[n].zTable = j->zTable;
      a[n].zCol = j->zDstCol;
      a[n].zModel = j->zTable;
      a[n].zRel = j->zTable;
      a[n].eRule = QUAY_CASCADE;
      a[n].pFk = NULL;
      n++;
    }
  }
  return n;
}

/*
** Key field f of m changes from the values aOld to pNew: check and apply
** every referencing relation's on_update rule.  Runs inside the caller's
** transaction with FK checks deferred.
*/
static int apply_on_update(quay_db *pDb, quay_model *m, Field *f,
                           const quay_value *aOld, int nOld,
                           const quay_value *pNew, int bCheckOnly,
                           quay_err *pErr) {
  RefCol aRef[64];
  int nRef = collect_refs(pDb, m, f, aRef, QUAY_ARRAYSIZE(aRef));
  int i, rc = QUAY_OK;
  Arena a;
  quay__arena_init(&a);
  for (i = 0; i < nRef && rc == QUAY_OK; i++) {
    RefCol *r = &aRef[i];
    Build b;
    quay__build_init(&b, pDb, &a, pErr);
    if (bCheckOnly) {
      if (r->eRule != QUAY_PROTECT && r->eRule != QUAY_RESTRICT) {
        quay__build_free(&b);
        continue;
      }
      quay__str_cat(&b.sql, "SELECT COUNT(*) FROM ");
      quay__str_ident(&b.sql, r->zTable);
      quay__str_cat(&b.sql, " WHERE ");
    } else {
      if (r->eRule == QUAY_PROTECT || r->eRule == QUAY_RESTRICT ||
          r->eRule == QUAY_NO_ACTION) {
        quay__build_free(&b);
        continue;
      }
      quay__str_cat(&b.sql, "UPDATE ");
      quay__str_ident(&b.sql, r->zTable);
      quay__str_cat(&b.sql, " SET ");
      quay__str_ident(&b.sql, r->zCol);
      quay__str_cat(&b.sql, " = ");
      if (r->eRule == QUAY_CASCADE) {
        quay__build_param(&b, pNew);
      } else if (r->eRule == QUAY_SET_NULL) {
        quay__str_cat(&b.sql, "NULL");
      } else {
        quay__build_param(&b, &r->pFk->dflt);
      }
      quay__str_cat(&b.sql, " WHERE ");
    }
    {
      quay_value *aNN = quay__arena_alloc(&a, sizeof(quay_value) *
                                                  (size_t)(nOld + 1));
      int k, nn = 0;
      char *zExpr;
      Str e;
      if (aNN == NULL) {
        rc = quay__oom(pErr);
        quay__build_free(&b);
        break;
      }
      for (k = 0; k < nOld; k++) {
        if (aOld[k].type != QUAY_NULL) aNN[nn++] = aOld[k];
      }
      quay__str_init(&e);
      quay__str_ident(&e, r->zCol);
      zExpr = e.oom ? NULL : quay__arena_strdup(&a, e.z, e.n);
      quay__str_free(&e);
      if (zExpr == NULL || nn == 0) {
        quay__build_free(&b);
        if (zExpr == NULL) rc = quay__oom(pErr);
        continue;
      }
      if (nn == 1) {
        quay__str_printf(&b.sql, "%s = ", zExpr);
        quay__build_param(&b, &aNN[0]);
      } else {
        quay__build_array(&b, zExpr, aNN, nn, f->eType);
      }
    }
    rc = quay__build_rc(&b);
    if (rc == QUAY_OK && bCheckOnly) {
      int64_t n = 0;
      rc = quay__db_scalar(pDb, b.sql.z, b.params.a, b.params.n, &n, pErr);
      if (rc == QUAY_OK && n > 0) {
        rc = quay__err(pErr, r->eRule == QUAY_PROTECT ? QUAY_EPROTECTED
                                                      : QUAY_ERESTRICTED,
                       "cannot change %s.%s: %lld %s row(s) refer to it "
                       "through %s.%s (on_update = %s)", m->zName, f->zName,
                       (long long)n, r->zModel, r->zModel, r->zRel,
                       quay__rule_name(r->eRule));
      }
    } else if (rc == QUAY_OK) {
      rc = quay__db_run(pDb, b.sql.z, b.params.a, b.params.n, NULL, 0, 0,
                        NULL, NULL, pErr);
    }
    quay__build_free(&b);
  }
  quay__arena_free(&a);
  return rc;
}

/* Read field f of the row with primary key pKey. */
static int read_field(quay_db *pDb, quay_model *m, Field *f,
                      const quay_value *pKey, quay_value *pOut, Arena *pA,
                      quay_err *pErr) {
  Str s;
  quay_cursor *c = NULL;
  int rc;
  pOut->type = QUAY_NULL;
  quay__str_init(&s);
  quay__str_cat(&s, "SELECT ");
  quay__str_ident(&s, f->zCol);
  quay__str_cat(&s, " FROM ");
  quay__str_ident(&s, m->zTable);
  quay__str_cat(&s, " WHERE ");
  quay__str_ident(&s, m->apField[m->iPk]->zCol);
  quay__str_cat(&s, " = ");
  pDb->pDialect->xParam(&s, 1);
  if (s.oom) {
    quay__str_free(&s);
    return quay__oom(pErr);
  }
  {
    int eHint = quay__field_hint(f);
    rc = quay__db_run(pDb, s.z, pKey, 1, &eHint, 1, 0, &c, NULL, pErr);
  }
  quay__str_free(&s);
  if (rc) return rc;
  rc = quay_cursor_step(c, pErr);
  if (rc == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(c, 0, &v);
    *pOut = v;
    if (QUAY_VALUE_HAS_BYTES(v.type)) {
      pOut->u.z = quay__arena_strdup(pA, v.u.z, v.n);
      if (pOut->u.z == NULL) rc = quay__oom(pErr);
    }
    if (rc == QUAY_ROW) rc = QUAY_OK;
  } else if (rc == QUAY_DONE) {
    rc = QUAY_OK;
  }
  quay_cursor_close(c);
  return rc;
}

/*
** The new value of field i in an UPDATE's SET list (save, qs:update): the
** slot's value, bound, or its quay.F expression.  The one place a SET
** term's value is written.
*/
static void emit_set_value(Build *b, quay_writer *w, int i) {
  if (w->aSlot[i].pExpr) {
    /* An expression of the row's own columns: atomic, in SQL. */
    quay__emit_expr_update(b, w->pModel, w->pModel->apField[i],
                           w->aSlot[i].pExpr);
  } else {
    quay__build_param(b, &w->aSlot[i].v);
  }
}

/* "UPDATE t SET c = ?, ... WHERE pk": the set fields of the writer; the
** caller appends the key test. */
static void build_update_head(Build *b, quay_model *m, quay_writer *w) {
  int i, nSet = 0;
  const char *zSnap = NULL;
  quay__str_cat(&b->sql, "UPDATE ");
  quay__str_ident(&b->sql, m->zTable);
  quay__str_cat(&b->sql, " SET ");
  for (i = 0; i < m->nField; i++) {
    if (!w->aSlot[i].set) continue;
    if (nSet++) quay__str_cat(&b->sql, ", ");
    quay__str_ident(&b->sql, m->apField[i]->zCol);
    quay__str_cat(&b->sql, " = ");
    emit_set_value(b, w, i);
    if (w->aSlot[i].pExpr && quay__expr_reads_rows(w->aSlot[i].pExpr)) {
      zSnap = b->pDia->zUpdateSnapshot;
    }
  }
  if (zSnap) quay__str_cat(&b->sql, zSnap);     /* the rows as they were */
  quay__str_cat(&b->sql, " WHERE ");
  quay__str_ident(&b->sql, m->apField[m->iPk]->zCol);
}

int quay_writer_update(quay_writer *w, const quay_value *pOldKey,
                       int64_t *pnChanged, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (w == NULL || pOldKey == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_writer_update: %s is NULL", w
        == NULL ? "pW" : "pOldKey");
  }
  if (quay__values_check(pErr, "quay_writer_update", pOldKey, 1)) {
    return QUAY_EMISUSE;
  }
  quay_model *m = w->pModel;
  quay_db *pDb = w->pDb;
  Build b;
  Arena a;
  int i, rc, nSet = 0, opened = 0, deferred = 0;
  int aChanged[64], nChanged = 0;
  quay_value aOld[64];
  if (pnChanged) *pnChanged = 0;
  w->zNow[0] = 0;
  for (i = 0; i < m->nField; i++) nSet += w->aSlot[i].set;
  if (nSet == 0) return QUAY_OK;    /* writes nothing, so stamps nothing */
  for (i = 0; i < m->nField; i++) {
    Field *f = m->apField[i];
    Slot *s = &w->aSlot[i];
    if (f->mFlags & QUAY_F_AUTO_NOW) {
      /* Every save that writes stamps auto_now, whatever the buffer held
      ** (a record's save sets every field, its old stamp included). */
      quay_value v;
      if (w->zNow[0] == 0) quay__now_utc(w->zNow);
      v.type = QUAY_TEXT;
      v.u.z = w->zNow;
      v.n = 19;
      if (slot_store(s, &v)) return quay__oom(pErr);
    }
    if (!s->set) continue;
    rc = quay__validate(m, f, &s->v, pErr);
    if (rc) return rc;
  }
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  /* Referenced keys that change. */
  for (i = 0; i < m->nField && nChanged < 64; i++) {
    Field *f = m->apField[i];
    if (!w->aSlot[i].set || !is_referenced(pDb, m, f)) continue;
    if (i == m->iPk) {
      aOld[nChanged] = *pOldKey;
    } else {
      rc = read_field(pDb, m, f, pOldKey, &aOld[nChanged], &a, pErr);
      if (rc) goto done;
    }
    if (!quay__value_eq(&aOld[nChanged], &w->aSlot[i].v)) {
      aChanged[nChanged++] = i;
    }
  }
  if (nChanged) {
    rc = quay__txn_begin(pDb, 1, pErr);
    if (rc) goto done;
    opened = 1;
    for (i = 0; i < nChanged; i++) {
      rc = apply_on_update(pDb, m, m->apField[aChanged[i]], &aOld[i], 1,
                           &w->aSlot[aChanged[i]].v, 1, pErr);
      if (rc) goto done;
    }
    rc = quay__db_simple(pDb, pDb->pDialect->zDeferFks, pErr);
    if (rc) goto done;
    deferred = 1;
  }
  build_update_head(&b, m, w);
  quay__str_cat(&b.sql, " = ");
  quay__build_param(&b, pOldKey);
  rc = quay__build_exec(&b, pnChanged);
  for (i = 0; rc == QUAY_OK && i < nChanged; i++) {
    rc = apply_on_update(pDb, m, m->apField[aChanged[i]], &aOld[i], 1,
                         &w->aSlot[aChanged[i]].v, 0, pErr);
  }
  if (rc == QUAY_OK && deferred) {
    rc = quay__db_simple(pDb, pDb->pDialect->zUndeferFks, pErr);
    deferred = 0;
  }
done:
  if (opened) rc = quay__txn_end(pDb, rc, pErr);
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

/*
** qs:update(values).  The writer's set fields are the new values; updates
** every row of the query set in one statement, applying on_update rules
** for referenced keys that change.
*/
/*
** A decimal computed in SQL by qs:update that does not fit its field
** ("numeric field overflow", both backends): name the decimal fields the
** update computes in the message (the error stays sql: the database
** refused the value; one statement may set several).
*/
static void overflow_names_field(quay_model *m, quay_writer *w,
                                 quay_err *pErr) {
  char zNames[200];
  const Field *pOne = NULL;
  int i, n = 0;
  size_t len = 0;
  if (strstr(pErr->zMsg, "numeric field overflow") == NULL) return;
  zNames[0] = 0;
  for (i = 0; i < m->nField; i++) {
    const Field *f = m->apField[i];
    if (!w->aSlot[i].set || w->aSlot[i].pExpr == NULL ||
        f->eType != QUAY_T_DECIMAL) {
      continue;
    }
    pOne = f;
    if (len < sizeof(zNames) - 1) {
      snprintf(zNames + len, sizeof(zNames) - len, "%s%s.%s",
               n ? ", " : "", m->zName, f->zName);
      len = strlen(zNames);
    }
    n++;
  }
  if (n == 0) return;
  {
    char zOld[sizeof(pErr->zMsg)];
    memcpy(zOld, pErr->zMsg, sizeof(zOld));
    if (n == 1) {
      snprintf(pErr->zMsg, sizeof(pErr->zMsg), "%s: the value computed in "
               "SQL does not fit decimal(%d, %d); nothing was written (%.300s)",
               zNames, pOne->nDigits, pOne->nPlaces, zOld);
    } else {
      snprintf(pErr->zMsg, sizeof(pErr->zMsg), "%s: a value computed in "
               "SQL does not fit its decimal field; nothing was written "
               "(%.300s)", zNames, zOld);
    }
  }
}

int quay_qs_update(quay_qs *pQs, quay_writer *w, int64_t *pn,
                   quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pQs == NULL || w == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_qs_update: %s is NULL", pQs ==
        NULL ? "pQs" : "pW");
  }
  quay_model *m = pQs->pModel;
  quay_db *pDb = w->pDb;
  Build b;
  const char *zA;
  Arena a;
  int i, rc, nSet = 0, opened = 0;
  int aRefd[64], nRefd = 0;
  *pn = 0;
  if (w->pModel != m) {
    return quay__err(pErr, QUAY_EMISUSE, "update: writer of another model");
  }
  for (i = 0; i < m->nField; i++) {
    if (!w->aSlot[i].set) continue;
    if (w->aSlot[i].pExpr) {
      Expr *e = w->aSlot[i].pExpr;
      rc = quay__expr_bind(e, pQs, 0, pErr);
      if (rc == QUAY_OK) {
        rc = quay__expr_check_type(e, m->apField[i]->eType, m->zName,
                                   m->apField[i]->zName, pErr);
      }
      if (rc) return rc;
      if (is_referenced(pDb, m, m->apField[i])) {
        return quay__err_field(pErr, QUAY_EMISUSE, m->zName,
                               m->apField[i]->zName, "update: %s.%s is a key "
                               "other rows reference; give it a value, not "
                               "an expression", m->zName,
                               m->apField[i]->zName);
      }
      nSet++;
      continue;
    }
    rc = quay__validate(m, m->apField[i], &w->aSlot[i].v, pErr);
    if (rc) return rc;
    nSet++;
    if (is_referenced(pDb, m, m->apField[i])) {
      if (nRefd == QUAY_ARRAYSIZE(aRefd)) {
        return quay__err(pErr, QUAY_EMISUSE, "update of %s: more than %d "
                         "keys other rows reference in one call; update "
                         "them in several calls", m->zName,
                         (int)QUAY_ARRAYSIZE(aRefd));
      }
      aRefd[nRefd++] = i;
    }
  }
  if (nSet == 0) return QUAY_OK;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  rc = quay__txn_begin(pDb, 1, pErr);
  if (rc) goto done;
  opened = 1;
  /* Old values of referenced keys, for on_update. */
  {
    quay_value *aaOld[64];
    int anOld[64];
    int k;
    for (k = 0; k < nRefd; k++) {
      Build kb;
      Field *f = m->apField[aRefd[k]];
      quay_value *aAll = NULL;
      int nAll = 0, i2;
      quay__build_init(&kb, pDb, &a, pErr);
      zA = quay__plan_keys(&kb, pQs, f);
      if (zA && pDb->pDialect->zForUpdate) {   /* as below */
        quay__str_cat(&kb.sql, pDb->pDialect->zForUpdate);
        quay__str_ident(&kb.sql, zA);
      }
      rc = quay__build_values(&kb, quay__field_hint(f), &aAll, &nAll);
      quay__build_free(&kb);
      if (rc) goto done;
      /* The rows whose key changes. */
      aaOld[k] = aAll;
      anOld[k] = 0;
      for (i2 = 0; i2 < nAll; i2++) {
        if (!quay__value_eq(&aAll[i2], &w->aSlot[aRefd[k]].v)) {
          aAll[anOld[k]++] = aAll[i2];
        }
      }
      rc = apply_on_update(pDb, m, m->apField[aRefd[k]], aaOld[k], anOld[k],
                           &w->aSlot[aRefd[k]].v, 1, pErr);
      if (rc) goto done;
    }
    if (nRefd) {
      rc = quay__db_simple(pDb, pDb->pDialect->zDeferFks, pErr);
      if (rc) goto done;
    }
    build_update_head(&b, m, w);
    quay__str_cat(&b.sql, " IN (");
    zA = quay__plan_keys(&b, pQs, m->apField[m->iPk]);
    if (zA && pDb->pDialect->zForUpdate) {
      /* PostgreSQL: lock the set's rows in the subquery, so that a row
      ** another connection changed meanwhile is checked against the
      ** filter again as committed (an IN over an unlocked subquery
      ** would keep the key it read first). */
      quay__str_cat(&b.sql, pDb->pDialect->zForUpdate);
      quay__str_ident(&b.sql, zA);
    }
    quay__str_cat(&b.sql, ")");
    rc = quay__build_exec(&b, pn);
    if (rc == QUAY_ESQL) overflow_names_field(m, w, pErr);
    for (k = 0; rc == QUAY_OK && k < nRefd; k++) {
      rc = apply_on_update(pDb, m, m->apField[aRefd[k]], aaOld[k], anOld[k],
                           &w->aSlot[aRefd[k]].v, 0, pErr);
    }
    if (rc == QUAY_OK && nRefd) {
      rc = quay__db_simple(pDb, pDb->pDialect->zUndeferFks, pErr);
    }
  }
done:
  if (opened) rc = quay__txn_end(pDb, rc, pErr);
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Bulk updates
** ===================================================================
** Model:bulk_update(records, fields): every row's values travel as rows
** of one row source (dialect xRowSource: multi-row VALUES on SQLite, one
** array per column through unnest on PostgreSQL) joined to the table by
** the primary key, UPDATE t SET f = v.cN FROM <rows> AS v WHERE t.pk =
** v.c0: one statement on PostgreSQL, one per maxRowValues values on
** SQLite, all in one transaction.  Values are validated before anything
** is sent.
*/

/*
** Check the values of a row bulk_update drops because its key comes again
** later (the last row wins): a value Quay must refuse raises as it would
** in a row that is written.  Nothing is kept.
*/
static int bulk_update_check(quay_model *m, const int *aiField, int nField,
                             const quay_value *src, quay_err *pErr) {
  int k, rc = QUAY_OK;
  for (k = 0; rc == QUAY_OK && k < nField; k++) {
    Field *f = m->apField[aiField[k]];
    quay_value x = src[k + 1];
    ValBuf vb;
    vb.zHeap = NULL;
    if (x.type != QUAY_NULL) rc = quay__value_conform(m, f, &x, &vb, pErr);
    if (rc == QUAY_OK) rc = quay__validate(m, f, &x, pErr);
    quay__valbuf_free(&vb);
  }
  return rc;
}

int quay_bulk_update(quay_db *pDb, quay_model *m, const int *aiField,
                     int nField, const quay_value *aRow, int nRow,
                     int64_t *pnChanged, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || m == NULL || (aiField == NULL && nField > 0) || (aRow ==
      NULL && nRow > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_bulk_update: %s is NULL", pDb
        == NULL ? "pDb" : m == NULL ? "pModel" : (aiField == NULL && nField >
            0) ? "aiField" : "aRow");
  }
  if (nField < 0 || nRow < 0) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_bulk_update: %s is negative",
                     nField < 0 ? "nField" : "nRow");
  }
  if (quay__values_check(pErr, "quay_bulk_update", aRow,
                         (size_t)nRow * (size_t)(1 + nField))) {
    return QUAY_EMISUSE;
  }
  const Dialect *d = pDb->pDialect;
  int nCol = nField + 1, i, k, r, rc, nKeep = 0, idx, opened = 0, nPer;
  int *aeType = NULL, *aKeep = NULL;
  quay_value *aVal = NULL;
  quay_keyset *pSeen = NULL;
  Field *pk;
  Arena a;
  if (pnChanged) *pnChanged = 0;
  rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  pk = m->apField[m->iPk];
  if (nField < 1) {
    return quay__err(pErr, QUAY_EMISUSE, "bulk_update on %s: name the "
                     "fields to write", m->zName);
  }
  for (k = 0; k < nField; k++) {
    Field *f;
    if (aiField[k] < 0 || aiField[k] >= m->nField) {
      return quay__err(pErr, QUAY_EMISUSE, "quay_bulk_update: bad field");
    }
    f = m->apField[aiField[k]];
    for (i = 0; i < k; i++) {
      if (aiField[i] == aiField[k]) {
        return quay__err(pErr, QUAY_EMISUSE, "bulk_update on %s: %s is "
                         "named twice", m->zName, f->zName);
      }
    }
    if (aiField[k] == m->iPk || is_referenced(pDb, m, f)) {
      return quay__err(pErr, QUAY_EMISUSE, "bulk_update on %s: %s is %s "
                       "key; change it with save() or qs:update, which "
                       "apply on_update rules", m->zName, f->zName,
                       aiField[k] == m->iPk ? "the primary"
                                            : "a referenced");
    }
  }
  if (nRow == 0) return QUAY_OK;
  quay__arena_init(&a);
  aeType = quay__arena_alloc(&a, sizeof(int) * (size_t)nCol);
  aKeep = quay__arena_alloc(&a, sizeof(int) * (size_t)nRow);
  aVal = quay__arena_alloc(&a, sizeof(quay_value) * (size_t)nRow *
                                   (size_t)nCol);
  if (aeType == NULL || aKeep == NULL || aVal == NULL) {
    rc = quay__oom(pErr);
    goto done;
  }
  aeType[0] = pk->eType;
  for (k = 0; k < nField; k++) aeType[k + 1] = m->apField[aiField[k]]->eType;
  /* A key given twice takes its last row: walk backwards, keep the first
  ** sighting of each key, then restore the order. */
  rc = quay_keyset_new(&pSeen, pErr);
  for (r = nRow - 1; rc == QUAY_OK && r >= 0; r--) {
    const quay_value *pKey = &aRow[(size_t)r * (size_t)nCol];
    int nBefore = quay_keyset_count(pSeen);
    if (pKey->type == QUAY_NULL) {
      rc = quay__err(pErr, QUAY_EVALIDATION, "bulk_update on %s: record %d "
                     "has no %s (save it first)", m->zName, r + 1,
                     pk->zName);
      break;
    }
    rc = quay__value_fits(m, pk, pKey, 0, pErr);
    if (rc == QUAY_OK) rc = quay_keyset_add(pSeen, pKey, &idx, pErr);
    if (rc == QUAY_OK && quay_keyset_count(pSeen) > nBefore) {
      aKeep[nKeep++] = r;
    } else if (rc == QUAY_OK) {
      rc = bulk_update_check(m, aiField, nField, pKey, pErr);
    }
  }
  for (r = 0; rc == QUAY_OK && r < nKeep; r++) {
    const quay_value *src = &aRow[(size_t)aKeep[nKeep - 1 - r] * (size_t)nCol];
    quay_value *dst = &aVal[(size_t)r * (size_t)nCol];
    dst[0] = src[0];
    for (k = 0; rc == QUAY_OK && k < nField; k++) {
      Field *f = m->apField[aiField[k]];
      dst[k + 1] = src[k + 1];
      if (dst[k + 1].type != QUAY_NULL) {
        /* The field's own form; converted bytes live as long as the call
        ** (the arena). */
        quay_value *x = &dst[k + 1];
        ValBuf vb;
        vb.zHeap = NULL;
        rc = quay__value_conform(m, f, x, &vb, pErr);
        if (rc == QUAY_OK && QUAY_VALUE_HAS_BYTES(x->type) &&
            (x->u.z == vb.z || (vb.zHeap && x->u.z == vb.zHeap))) {
          char *z = quay__arena_strdup(&a, x->u.z, x->n);
          if (z == NULL) rc = quay__oom(pErr);
          else x->u.z = z;
        }
        quay__valbuf_free(&vb);
      }
      if (rc == QUAY_OK) rc = quay__validate(m, f, &dst[k + 1], pErr);
    }
  }
  quay_keyset_free(pSeen);
  if (rc) goto done;
  rc = quay__txn_begin(pDb, 1, pErr);
  if (rc) goto done;
  opened = 1;
  nPer = d->maxRowValues ? d->maxRowValues / nCol : nKeep;
  if (nPer < 1) nPer = 1;
  for (r = 0; rc == QUAY_OK && r < nKeep; r += nPer) {
    int nThis = nKeep - r < nPer ? nKeep - r : nPer;
    int64_t nChanged = 0;
    Build b;
    quay__build_init(&b, pDb, &a, pErr);
    quay__str_cat(&b.sql, "UPDATE ");
    quay__str_ident(&b.sql, m->zTable);
    quay__str_cat(&b.sql, " SET ");
    for (k = 0; k < nField; k++) {
      if (k) quay__str_cat(&b.sql, ", ");
      quay__str_ident(&b.sql, m->apField[aiField[k]]->zCol);
      quay__str_printf(&b.sql, " = v.c%d", k + 1);
    }
    quay__str_cat(&b.sql, " FROM ");
    d->xRowSource(&b, aeType, nCol, &aVal[(size_t)r * (size_t)nCol], nThis);
    quay__str_cat(&b.sql, " AS v WHERE ");
    quay__str_col(&b.sql, m->zTable, pk->zCol);
    quay__str_cat(&b.sql, " = v.c0");
    rc = quay__build_exec(&b, &nChanged);
    if (pnChanged) *pnChanged += nChanged;
    quay__build_free(&b);
  }
done:
  if (opened) rc = quay__txn_end(pDb, rc, pErr);
  if (rc && pnChanged) *pnChanged = 0;
  quay__arena_free(&a);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Related-set writes
** ===================================================================
*/
/* "col IN <keys>" with keys bound inline or as one array. */
static void keys_in(Build *b, const char *zAlias, const char *zCol,
                    const quay_value *aKey, int nKey, int eType) {
  Str e;
  char *zExpr;
  quay__str_init(&e);
  quay__str_col(&e, zAlias, zCol);
  zExpr = e.oom ? NULL : quay__arena_strdup(b->pArena, e.z, e.n);
  quay__str_free(&e);
  if (zExpr == NULL) {
    b->pArena->oom = 1;
    return;
  }
  if (nKey <= b->pDia->maxInline) {
    int i;
    quay__str_printf(&b->sql, "%s IN (", zExpr);
    for (i = 0; i < nKey; i++) {
      if (i) quay__str_cat(&b->sql, ", ");
      quay__build_param(b, &aKey[i]);
    }
    quay__str_cat(&b->sql, ")");
  } else {
    quay__build_array(b, zExpr, aKey, nKey, eType);
  }
}

/*
** Many-to-many writes take a constant number of statements whatever the
** number of records: the target keys travel as one array parameter
** (dialect xKeySource), so :add(list) is one INSERT ... SELECT over the
** keys not linked yet, :remove(list) one DELETE, and :set(list) one DELETE
** of the links not in the list plus that INSERT, in one transaction.
** Links to a custom through model go through its writer once (defaults,
** auto_now and validation of the through values, the same for every new
** link), and their deletes through the cascade planner, as for any model.
*/

/* Insert one link (a through model row whose key the caller gives). */
static int m2m_insert(JoinTable *j, int bRev, const quay_value *pOwner,
                      const quay_value *pTarget, quay_writer *w,
                      quay_err *pErr) {
  const quay_value *pSrc = bRev ? pTarget : pOwner;
  const quay_value *pDst = bRev ? pOwner : pTarget;
  int rc = quay_writer_set(w, j->pThroughSrc->pFk->iField, pSrc, pErr);
  if (rc == QUAY_OK) {
    rc = quay_writer_set(w, j->pThroughDst->pFk->iField, pDst, pErr);
  }
  if (rc == QUAY_OK) rc = quay_writer_insert(w, pErr);
  return rc;
}

/*
** Link the owner to the targets aKey (distinct, not NULL) that it is not
** linked to yet: one INSERT ... SELECT.  With a through model, w (may be
** NULL) holds the through values; a through model whose key the values
** give gets one INSERT per link (inside the caller's transaction).
*/
static int m2m_add(quay_db *pDb, JoinTable *j, int bRev,
                   const quay_value *pOwner, const quay_value *aKey, int nKey,
                   quay_writer *w, quay_err *pErr) {
  const char *zOwn = bRev ? j->zDstCol : j->zSrcCol;
  const char *zTgt = bRev ? j->zSrcCol : j->zDstCol;
  Field *pTgtKey = bRev ? j->pSrcKey : j->pDstKey;
  Arena a;
  Build b;
  int rc = QUAY_OK, i, n = 0, bOwn = 0, iTgt = -1;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  if (j->pThrough) {
    quay_model *t = j->pThrough;
    Rel *rOwn = bRev ? j->pThroughDst : j->pThroughSrc;
    Rel *rTgt = bRev ? j->pThroughSrc : j->pThroughDst;
    if (w == NULL) {
      rc = quay_writer_new(pDb, t, &w, pErr);
      if (rc) goto done;
      bOwn = 1;
    }
    if (w->aSlot[t->iPk].set) {
      /* The through values name the key: one row per link. */
      for (i = 0; rc == QUAY_OK && i < nKey; i++) {
        rc = m2m_insert(j, bRev, pOwner, &aKey[i], w, pErr);
      }
      goto done;
    }
    /* The row every link shares: through values, defaults, auto_now;
    ** validated once, with the first target standing for all. */
    iTgt = rTgt->pFk->iField;
    rc = quay_writer_set(w, rOwn->pFk->iField, pOwner, pErr);
    if (rc == QUAY_OK) rc = quay_writer_set(w, iTgt, &aKey[0], pErr);
    if (rc == QUAY_OK) rc = fill_insert(w, pErr);
    if (rc) goto done;
    quay__str_cat(&b.sql, "INSERT INTO ");
    quay__str_ident(&b.sql, t->zTable);
    quay__str_cat(&b.sql, " (");
    for (i = 0; i < t->nField; i++) {
      if (!w->aSlot[i].set) continue;
      if (n++) quay__str_cat(&b.sql, ", ");
      quay__str_ident(&b.sql, t->apField[i]->zCol);
    }
    quay__str_cat(&b.sql, ") SELECT ");
    n = 0;
    for (i = 0; i < t->nField; i++) {
      if (!w->aSlot[i].set) continue;
      if (n++) quay__str_cat(&b.sql, ", ");
      if (i == iTgt) {
        quay__str_cat(&b.sql, "k.c0");
      } else {
        quay__build_param(&b, &w->aSlot[i].v);
      }
    }
  } else {
    quay__str_cat(&b.sql, "INSERT INTO ");
    quay__str_ident(&b.sql, j->zTable);
    quay__str_cat(&b.sql, " (");
    quay__str_ident(&b.sql, zOwn);
    quay__str_cat(&b.sql, ", ");
    quay__str_ident(&b.sql, zTgt);
    quay__str_cat(&b.sql, ") SELECT ");
    quay__build_param(&b, pOwner);
    quay__str_cat(&b.sql, ", k.c0");
  }
  quay__str_cat(&b.sql, " FROM ");
  b.pDia->xKeySource(&b, aKey, nKey, pTgtKey->eType);
  quay__str_cat(&b.sql, " AS k WHERE NOT EXISTS (SELECT 1 FROM ");
  quay__str_ident(&b.sql, j->zTable);
  quay__str_cat(&b.sql, " AS e WHERE ");
  quay__str_col(&b.sql, "e", zOwn);
  quay__str_cat(&b.sql, " = ");
  quay__build_param(&b, pOwner);
  quay__str_cat(&b.sql, " AND ");
  quay__str_col(&b.sql, "e", zTgt);
  quay__str_cat(&b.sql, " = k.c0");
  if (j->pThrough && j->pThrough->pDeletedAt) {
    /* A soft-deleted link is no link: the pair gets a new row. */
    quay__str_cat(&b.sql, " AND ");
    quay__str_col(&b.sql, "e", j->pThrough->pDeletedAt->zCol);
    quay__str_cat(&b.sql, " IS NULL");
  }
  quay__str_char(&b.sql, ')');
  if (j->pThrough == NULL) {
    /* The join table's UNIQUE (source, target): a link another
    ** connection made meanwhile is not an error. */
    quay__str_cat(&b.sql, " ON CONFLICT DO NOTHING");
  }
  rc = quay__build_exec(&b, NULL);
done:
  if (bOwn) quay_writer_free(w);
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

/*
** Remove the owner's links to the targets aKey (bNot: to every target but
** those; aKey NULL: all links).  One DELETE for a join table; for a
** through model, one SELECT of its rows' keys, then the cascade planner.
*/
static int m2m_remove(quay_db *pDb, JoinTable *j, int bRev,
                      const quay_value *pOwner, const quay_value *aKey,
                      int nKey, int bNot, quay_err *pErr) {
  const char *zOwn = bRev ? j->zDstCol : j->zSrcCol;
  const char *zTgt = bRev ? j->zSrcCol : j->zDstCol;
  Field *pTgtKey = bRev ? j->pSrcKey : j->pDstKey;
  Arena a;
  Build b;
  int rc;
  if (aKey && nKey == 0 && !bNot) return QUAY_OK;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  /* "SELECT pk" of a through model's rows, or "DELETE" of plain pivot rows,
  ** then the same row test. */
  if (j->pThrough) {
    quay__str_cat(&b.sql, "SELECT ");
    quay__str_ident(&b.sql, j->pThrough->apField[j->pThrough->iPk]->zCol);
  } else {
    quay__str_cat(&b.sql, "DELETE");
  }
  quay__str_cat(&b.sql, " FROM ");
  quay__str_ident(&b.sql, j->zTable);
  quay__str_cat(&b.sql, " WHERE ");
  quay__str_ident(&b.sql, zOwn);
  quay__str_cat(&b.sql, " = ");
  quay__build_param(&b, pOwner);
  if (aKey && nKey > 0) {
    quay__str_cat(&b.sql, bNot ? " AND NOT (" : " AND ");
    keys_in(&b, NULL, zTgt, aKey, nKey, pTgtKey->eType);
    if (bNot) quay__str_char(&b.sql, ')');
  }
  if (j->pThrough) {
    /* An ordinary model: delete its rows through the cascade planner. */
    Field *pk = j->pThrough->apField[j->pThrough->iPk];
    quay_value *aPk = NULL;
    int nPk = 0;
    rc = quay__build_values(&b, quay__field_hint(pk), &aPk, &nPk);
    if (rc == QUAY_OK && nPk) {
      quay_counts *pCounts = NULL;
      rc = quay__cascade_delete(pDb, j->pThrough, aPk, nPk, 0, &pCounts,
                                pErr);
      quay_counts_free(pCounts);
    }
  } else {
    rc = quay__build_exec(&b, NULL);
  }
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}

int quay_m2m_write(quay_db *pDb, quay_model *m, int iRel,
                   const quay_value *pOwner, int eOp, const quay_value *aKey,
                   int nKey, quay_writer *pPivot, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || m == NULL || pOwner == NULL || (aKey == NULL && nKey >
      0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_m2m_write: %s is NULL", pDb ==
        NULL ? "pDb" : m == NULL ? "pModel" : pOwner == NULL ? "pOwnerKey" :
            "aKey");
  }
  if (nKey < 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_m2m_write: nKey is %d, not a count", nKey);
  }
  if (quay__values_check(pErr, "quay_m2m_write", pOwner, 1)) {
    return QUAY_EMISUSE;
  }
  if (quay__values_check(pErr, "quay_m2m_write", aKey, (size_t)nKey)) {
    return QUAY_EMISUSE;
  }
  Rel *r, *fwd;
  JoinTable *j;
  int bRev, rc = QUAY_OK, i, idx, nUniq = 0, bTxn;
  quay_keyset *pSeen = NULL;
  quay_value *aUniq = NULL;
  if (iRel < 0 || iRel >= m->nRel) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_m2m_write: bad relation");
  }
  if (eOp < QUAY_M2M_ADD || eOp > QUAY_M2M_SET) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_m2m_write: bad operation");
  }
  r = m->apRel[iRel];
  fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  if (fwd->eKind != QUAY_R_MANY_TO_MANY) {
    return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, r->zName,
                           "%s.%s is not a many_to_many set", m->zName,
                           r->zName);
  }
  if (pOwner->type == QUAY_NULL) {
    return quay__err(pErr, QUAY_EVALIDATION,
                     "%s.%s: save the %s before changing its set", m->zName,
                     r->zName, m->zName);
  }
  j = fwd->pJoin;
  bRev = r != fwd;
  if (pPivot && j->pThrough == NULL) {
    return quay__err(pErr, QUAY_EVALIDATION,
                     "%s.%s: through values need a through model", m->zName,
                     r->zName);
  }
  if (pPivot && pPivot->pModel != j->pThrough) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_m2m_write: the through "
                     "values are a writer of another model");
  }
  /* The targets, once each, in the order given. */
  if (nKey > 0) {
    aUniq = quay__malloc(sizeof(quay_value) * (size_t)nKey);
    if (aUniq == NULL) return quay__oom(pErr);
    rc = quay_keyset_new(&pSeen, pErr);
    for (i = 0; rc == QUAY_OK && i < nKey; i++) {
      int nBefore;
      if (aKey[i].type == QUAY_NULL) {
        rc = quay__err(pErr, QUAY_EVALIDATION, "%s.%s: a target has no key "
                       "(save it first)", m->zName, r->zName);
        break;
      }
      nBefore = quay_keyset_count(pSeen);
      rc = quay_keyset_add(pSeen, &aKey[i], &idx, pErr);
      if (rc == QUAY_OK && quay_keyset_count(pSeen) > nBefore) {
        aUniq[nUniq++] = aKey[i];
      }
    }
    quay_keyset_free(pSeen);
    if (rc) {
      quay__free(aUniq);
      return rc;
    }
  }
  /* One statement needs no transaction of its own. */
  bTxn = eOp == QUAY_M2M_SET ||
         (j->pThrough && eOp != QUAY_M2M_ADD) ||
         (j->pThrough && eOp == QUAY_M2M_ADD && pPivot &&
          pPivot->aSlot[j->pThrough->iPk].set && nUniq > 1);
  if (bTxn) {
    rc = quay__txn_begin(pDb, 1, pErr);
    if (rc) {
      quay__free(aUniq);
      return rc;
    }
  }
  switch (eOp) {
    case QUAY_M2M_ADD:
      if (nUniq) rc = m2m_add(pDb, j, bRev, pOwner, aUniq, nUniq, pPivot, pErr);
      break;
    case QUAY_M2M_REMOVE:
      /* No target removes nothing (m2m_remove of no key is CLEAR). */
      if (nUniq) rc = m2m_remove(pDb, j, bRev, pOwner, aUniq, nUniq, 0, pErr);
      break;
    case QUAY_M2M_CLEAR:
      rc = m2m_remove(pDb, j, bRev, pOwner, NULL, 0, 0, pErr);
      break;
    default:                          /* QUAY_M2M_SET */
      rc = m2m_remove(pDb, j, bRev, pOwner, aUniq ? aUniq : aKey, nUniq, 1,
                      pErr);
      if (rc == QUAY_OK && nUniq) {
        rc = m2m_add(pDb, j, bRev, pOwner, aUniq, nUniq, pPivot, pErr);
      }
      break;
  }
  quay__free(aUniq);
  if (bTxn) rc = quay__txn_end(pDb, rc, pErr);
  return rc;
}

int quay_fkset_write(quay_db *pDb, quay_model *m, int iRel,
                     const quay_value *pOwner, int bRemove,
                     const quay_value *aKey, int nKey, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || m == NULL || pOwner == NULL || (aKey == NULL && nKey >
      0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_fkset_write: %s is NULL", pDb
        == NULL ? "pDb" : m == NULL ? "pModel" : pOwner == NULL ? "pOwnerKey"
            : "aKey");
  }
  if (nKey < 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_fkset_write: nKey is %d, not a count", nKey);
  }
  if (quay__values_check(pErr, "quay_fkset_write", pOwner, 1)) {
    return QUAY_EMISUSE;
  }
  if (quay__values_check(pErr, "quay_fkset_write", aKey, (size_t)nKey)) {
    return QUAY_EMISUSE;
  }
  Rel *r, *fwd;
  quay_model *c;
  Field *fk, *pk;
  Arena a;
  Build b;
  int rc;
  if (iRel < 0 || iRel >= m->nRel) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_fkset_write: bad relation");
  }
  r = m->apRel[iRel];
  fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  if (!(r != fwd && (fwd->eKind == QUAY_R_BELONGS_TO ||
                     fwd->eKind == QUAY_R_ONE_TO_ONE)) &&
      !(r == fwd && (fwd->eKind == QUAY_R_HAS_MANY ||
                     fwd->eKind == QUAY_R_HAS_ONE))) {
    return quay__err(pErr, QUAY_EVALIDATION,
                     "%s.%s is not a reverse foreign-key set", m->zName,
                     r->zName);
  }
  c = r->pTo;
  fk = fwd->pFk;
  pk = c->apField[c->iPk];
  if (bRemove && !(fk->mFlags & QUAY_F_NULL)) {
    return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, r->zName,
                           "%s.%s: cannot remove, %s.%s cannot be null "
                           "(delete the %s records instead)", m->zName,
                           r->zName, c->zName, fk->zName, c->zName);
  }
  if (pOwner->type == QUAY_NULL) {
    return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, r->zName,
                           "%s.%s: save the %s first", m->zName, r->zName,
                           m->zName);
  }
  if (nKey == 0) return QUAY_OK;
  quay__arena_init(&a);
  quay__build_init(&b, pDb, &a, pErr);
  quay__str_cat(&b.sql, "UPDATE ");
  quay__str_ident(&b.sql, c->zTable);
  quay__str_cat(&b.sql, " SET ");
  quay__str_ident(&b.sql, fk->zCol);
  quay__str_cat(&b.sql, " = ");
  if (bRemove) {
    quay__str_cat(&b.sql, "NULL");
  } else {
    quay__build_param(&b, pOwner);
  }
  quay__str_cat(&b.sql, " WHERE ");
  keys_in(&b, NULL, pk->zCol, aKey, nKey, pk->eType);
  if (bRemove) {
    quay__str_cat(&b.sql, " AND ");
    quay__str_ident(&b.sql, fk->zCol);
    quay__str_cat(&b.sql, " = ");
    quay__build_param(&b, pOwner);
  }
  rc = quay__build_exec(&b, NULL);
  quay__build_free(&b);
  quay__arena_free(&a);
  return rc;
}
/* }================================================================== */
