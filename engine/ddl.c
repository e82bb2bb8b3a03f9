/*
** engine/ddl.c
** DDL: what Quay's tables look like, and the SQL text that makes them.
** See LICENSE
**
** This file is the one home of Quay's DDL.  quay__schema_declared turns
** the declared models into a schema description (quayInt.h "Schema
** descriptions"): one table per model, one per automatic join table, with
** their columns, primary keys, indexes and foreign keys, in an order where
** a table comes after the tables it refers to.  The same description
** serves db:create_tables (tables that do not exist yet), the comparison
** with the live schema (migrate.c) and the DDL of every migration step,
** so a table created by create_tables and one created or rebuilt by a
** migration are written by the same functions below and compare equal.
**
** Conventions of the DDL:
**   - Identifiers are always quoted (quay__str_ident) and come from the
**     schema; defaults are literals of the declared value, never text a
**     user wrote.
**   - A foreign key constraint only guards integrity: its ON DELETE is NO
**     ACTION because the cascade planner applies on_delete itself
**     (reference.md: "not left to the database"), deferrable where the planner
**     may need to defer it (cycles); its ON UPDATE carries the declared
**     rule (reference.md: "the DDL carries the matching ON UPDATE").  Join
**     tables cascade both ways.
**   - Names Quay gives (indexes, constraints) are "<table>_<columns>_<kind>"
**     (idx, key, fkey), shortened to PostgreSQL's 63 bytes with a hash.
**     Quay compares indexes by columns, never by name; the names only
**     tell which indexes Quay made (quay__ddl_owns_index).
*/
#include <math.h>

#include "quayInt.h"

#include <stdio.h>

/*
** {==================================================================
** Names, types and literals
** ===================================================================
*/
void quay__ddl_name(char *zOut, const char *zTable, char *const *azCol,
                    int nCol, const char *zSuffix) {
  /* No allocation: a name must not change when memory runs out (a
  ** different name is a different index to migrate). */
  char zBuf[4096];
  size_t n = 0;
  int i, bLong = 0;
#define DDL_NAME_PUT(z) do { \
    size_t m_ = strlen(z); \
    if (n + m_ >= sizeof(zBuf)) bLong = 1; \
    else { memcpy(zBuf + n, (z), m_); n += m_; } \
  } while (0)
  DDL_NAME_PUT(zTable);
  for (i = 0; i < nCol; i++) {
    DDL_NAME_PUT("_");
    DDL_NAME_PUT(azCol[i] ? azCol[i] : "expr");
  }
  DDL_NAME_PUT("_");
  DDL_NAME_PUT(zSuffix);
#undef DDL_NAME_PUT
  zBuf[n] = 0;
  if (n > 63 || bLong) {
    /* PostgreSQL cuts identifiers at 63 bytes: keep 50 and a hash (of
    ** the first 4 KiB: names longer than that are only theoretical). */
    unsigned h = (unsigned)(quay__hash_bytes(zBuf, n) & 0xffffffffu);
    snprintf(zOut, 64, "%.50s_%08x", zBuf, h);
  } else {
    memcpy(zOut, zBuf, n + 1);
  }
}

int quay__ddl_owns_index(const STable *t, const SIdx *x) {
  char zName[64];
  if (x->bConstraint) return 1;
  if (x->bPartial || x->zName == NULL) return 0;
  quay__ddl_name(zName, t->zName, x->azCol, x->nCol,
                 x->bUnique ? "key" : "idx");
  return strcmp(zName, x->zName) == 0;
}

void quay__ddl_type(const Dialect *d, const SCol *c, Str *p) {
  quay__type_sql(p, d, c->eType ? c->eType : QUAY_T_TEXT, c->nMax,
                 c->nDigits, c->nPlaces);
}

int quay__ddl_literal(Str *p, int eType, const quay_value *v) {
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
      if (eType == QUAY_T_BLOB) return 0;
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

/* The value of a literal as text, as inspect.c reads a live DEFAULT. */
static int ddl_literal_value(Str *p, const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: quay__str_printf(p, "%lld", (long long)v->u.i); return 1;
    case QUAY_REAL:
      if (!isfinite(v->u.r)) return 0;
      quay__str_printf(p, "%.17g", v->u.r);
      return 1;
    case QUAY_BOOL: quay__str_cat(p, v->u.b ? "true" : "false"); return 1;
    case QUAY_TEXT: quay__str_append(p, v->u.z, v->n); return 1;
  }
  return 0;
}

/* The ON UPDATE action the DDL writes for a declared rule. */
static int ddl_update_action(int eRule) {
  switch (eRule) {
    case QUAY_CASCADE: return QUAY_CASCADE;
    case QUAY_SET_NULL: return QUAY_SET_NULL;
    case QUAY_SET_DEFAULT: return QUAY_SET_DEFAULT;
    case QUAY_PROTECT:
    case QUAY_RESTRICT: return QUAY_RESTRICT;
  }
  return QUAY_NO_ACTION;
}
/* }================================================================== */


/*
** {==================================================================
** The declared schema
** ===================================================================
*/
/* The type class of a key column that refers to field f. */
static int ddl_key_class(const Field *f) {
  return f->eType == QUAY_T_ID ? QUAY_T_INTEGER : f->eType;
}

/* Fill a declared column's DDL type and default. */
static void ddl_declared_col(quay_schema *pS, SCol *c) {
  Str s;
  quay__str_init(&s);
  quay__ddl_type(pS->pDia, c, &s);
  c->zType = s.oom ? NULL : quay__schema_str(pS, s.z);
  if (c->zType == NULL) pS->oom = 1;
  quay__str_reset(&s);
  if (c->pField && (c->pField->mFlags & QUAY_F_DEFAULT) &&
      c->pField->dflt.type == QUAY_DECIMAL) {
    /* As the dialect stores it (a scaled integer, or the decimal's text),
    ** which is also how inspect.c reads the live DEFAULT back. */
    const quay_value *v = &c->pField->dflt;
    if (pS->pDia->bScaledDecimal) {
      quay__str_printf(&s, "%lld",
                       (long long)quay__decimal_unscaled(v->u.z, v->n));
    } else {
      quay__str_append(&s, v->u.z, v->n);
    }
    if (!s.oom) {
      c->zDefault = quay__schema_str(pS, s.z);
      c->eDflt = DFLT_VALUE;
      c->zDfltVal = c->zDefault;
    }
  } else if (c->pField && (c->pField->mFlags & QUAY_F_DEFAULT) &&
      c->pField->dflt.type != QUAY_NULL &&
      quay__ddl_literal(&s, c->eType, &c->pField->dflt) && !s.oom) {
    c->zDefault = quay__schema_str(pS, s.z);
    quay__str_reset(&s);
    if (ddl_literal_value(&s, &c->pField->dflt) && !s.oom) {
      c->eDflt = DFLT_VALUE;
      c->zDfltVal = quay__schema_str(pS, s.n ? s.z : "");
    }
  }
  if (s.oom) pS->oom = 1;
  quay__str_free(&s);
}

/* The renamed_from of a field: its own, or its relation's. */
static const char *ddl_field_renamed(const Field *f) {
  if (f->zRenamed) return f->zRenamed;
  if (f->pRel && f->pRel->pFk == f && f->pRel->zRenamed) {
    return f->pRel->zRenamed;
  }
  return NULL;
}

/* A Quay-named index or UNIQUE constraint over the nCol columns azCol. */
static void ddl_declared_idx(quay_schema *pS, STable *t, char **azCol, int nCol,
                         int bUnique, int bConstraint) {
  char zName[64];
  SIdx *x;
  int i;
  quay__ddl_name(zName, t->zName, azCol, nCol, bUnique ? "key" : "idx");
  x = quay__stable_add_idx(pS, t, zName);
  if (x == NULL) return;
  x->bUnique = bUnique;
  x->bConstraint = bConstraint;
  for (i = 0; i < nCol; i++) quay__sidx_add_col(pS, x, azCol[i]);
}

static void ddl_declared_fk(quay_schema *pS, STable *t, const char *zCol,
                        const char *zTable, const char *zTo, int eOnDelete,
                        int eOnUpdate, int bDeferrable) {
  char zName[64];
  char *azCol[1];
  SFk *f;
  azCol[0] = (char *)zCol;
  quay__ddl_name(zName, t->zName, azCol, 1, "fkey");
  f = quay__stable_add_fk(pS, t, zName, zTable);
  if (f == NULL) return;
  quay__sfk_add_col(pS, f, zCol, zTo);
  f->eOnDelete = eOnDelete;
  f->eOnUpdate = eOnUpdate;
  f->bDeferrable = bDeferrable;
}

/* The table of one model. */
static void ddl_declare_model(quay_schema *pS, quay_model *m) {
  const Dialect *d = pS->pDia;
  STable *t = quay__schema_add_table(pS, m->zTable);
  int k;
  if (t == NULL) return;
  t->pModel = m;
  t->zRenamed = m->zRenamed;
  for (k = 0; k < m->nField; k++) {
    Field *f = m->apField[k];
    SCol *c = quay__stable_add_col(pS, t, f->zCol);
    if (c == NULL) return;
    c->pField = f;
    c->eType = ddl_key_class(f);
    c->nMax = f->eType == QUAY_T_STRING ? f->nMax : 0;
    c->nDigits = f->nDigits;
    c->nPlaces = f->nPlaces;
    if (f->pRel && f->pRel->pFk == f && f->pRel->pKey &&
        f->pRel->pKey->eType == QUAY_T_STRING && f->eType == QUAY_T_STRING) {
      c->nMax = f->pRel->pKey->nMax;   /* a key column holds the key's values */
    }
    c->iPk = k == m->iPk;
    c->bAuto = c->iPk && f->eType == QUAY_T_ID;
    c->bNull = !c->iPk && (f->mFlags & QUAY_F_NULL) != 0;
    c->zRenamed = ddl_field_renamed(f);
    ddl_declared_col(pS, c);
  }
  for (k = 0; k < m->nField; k++) {
    Field *f = m->apField[k];
    Rel *r = f->pRel;
    if (k == m->iPk) continue;
    if (f->mFlags & QUAY_F_UNIQUE) {
      ddl_declared_idx(pS, t, &f->zCol, 1, 1, 1);
    } else if (f->mFlags & QUAY_F_INDEX) {
      ddl_declared_idx(pS, t, &f->zCol, 1, 0, 0);
    }
    if (r && r->pFk == f && r->pFrom == m &&
        (r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE)) {
      ddl_declared_fk(pS, t, f->zCol, r->pTo->zTable, r->pKey->zCol,
                  QUAY_NO_ACTION, ddl_update_action(r->eOnUpdate),
                  r->eOnDelete != QUAY_NO_ACTION && d->zFkDeferrable[0]);
    }
  }
  for (k = 0; k < m->nUnique; k++) {
    char *azCol[64];
    int j, n = m->anUnique[k] < 64 ? m->anUnique[k] : 64;
    for (j = 0; j < n; j++) {
      Field *f = quay__model_field(m, m->aaUnique[k][j]);
      Rel *r = f ? NULL : quay__model_rel(m, m->aaUnique[k][j]);
      azCol[j] = f ? f->zCol : (r && r->pFk ? r->pFk->zCol : NULL);
      if (QUAY_NEVER(azCol[j] == NULL)) return;   /* resolve checked it */
    }
    ddl_declared_idx(pS, t, azCol, n, 1, 1);
  }
  for (k = 0; k < m->nIndex; k++) {
    /* Composite indexes (the `indexes` option), named like the others. */
    char *azCol[64];
    int j, n = m->anIndex[k] < 64 ? m->anIndex[k] : 64;
    for (j = 0; j < n; j++) {
      Field *f = quay__model_field(m, m->aaIndex[k][j]);
      Rel *r = f ? NULL : quay__model_rel(m, m->aaIndex[k][j]);
      azCol[j] = f ? f->zCol : (r && r->pFk ? r->pFk->zCol : NULL);
      if (QUAY_NEVER(azCol[j] == NULL)) return;   /* resolve checked it */
    }
    ddl_declared_idx(pS, t, azCol, n, 0, 0);
  }
  /* CHECK constraints: choices, min and max, named "quay_..." so that
  ** migrate.c knows Quay made them (rules.c). */
  quay__rules_ddl(pS, t, m);
}

/* The table of an automatic join table (many_to_many without through). */
static void ddl_declare_join(quay_schema *pS, JoinTable *j) {
  const Dialect *d = pS->pDia;
  STable *t = quay__schema_add_table(pS, j->zTable);
  SCol *c;
  char *azCol[2];
  if (t == NULL) return;
  t->pJoin = j;
  if ((c = quay__stable_add_col(pS, t, "id")) == NULL) return;
  c->eType = QUAY_T_INTEGER;
  c->iPk = 1;
  c->bAuto = 1;
  ddl_declared_col(pS, c);
  if ((c = quay__stable_add_col(pS, t, j->zSrcCol)) == NULL) return;
  c->eType = ddl_key_class(j->pSrcKey);
  c->nMax = j->pSrcKey->eType == QUAY_T_STRING ? j->pSrcKey->nMax : 0;
  ddl_declared_col(pS, c);
  if ((c = quay__stable_add_col(pS, t, j->zDstCol)) == NULL) return;
  c->eType = ddl_key_class(j->pDstKey);
  c->nMax = j->pDstKey->eType == QUAY_T_STRING ? j->pDstKey->nMax : 0;
  ddl_declared_col(pS, c);
  ddl_declared_fk(pS, t, j->zSrcCol, j->pSrc->zTable, j->pSrcKey->zCol,
              QUAY_CASCADE, QUAY_CASCADE, d->zFkDeferrable[0] != 0);
  ddl_declared_fk(pS, t, j->zDstCol, j->pDst->zTable, j->pDstKey->zCol,
              QUAY_CASCADE, QUAY_CASCADE, d->zFkDeferrable[0] != 0);
  azCol[0] = j->zSrcCol;
  azCol[1] = j->zDstCol;
  ddl_declared_idx(pS, t, azCol, 2, 1, 1);
  ddl_declared_idx(pS, t, &azCol[1], 1, 0, 0);
}

/*
** The schema the declared models make: model tables in reference order
** (quay__model_order), then the automatic join tables in declaration
** order.  The schema is resolved first.  Caller frees with
** quay_schema_free.
*/
int quay__schema_declared(quay_db *pDb, quay_schema **ppS, quay_err *pErr) {
  quay_schema *pS;
  int *aOrder, n = 0, i, rc;
  *ppS = NULL;
  rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  pS = quay__schema_new(pDb->pDialect);
  aOrder = quay__malloc(sizeof(int) * (size_t)(pDb->nModel + 1));
  if (pS == NULL || aOrder == NULL ||
      quay__model_order(pDb, NULL, aOrder, &n, NULL)) {
    quay__free(aOrder);
    quay_schema_free(pS);
    return quay__oom(pErr);
  }
  for (i = 0; i < n; i++) ddl_declare_model(pS, pDb->apModel[aOrder[i]]);
  for (i = 0; i < pDb->nJoin; i++) {
    if (pDb->apJoin[i]->pThrough == NULL) ddl_declare_join(pS, pDb->apJoin[i]);
  }
  quay__free(aOrder);
  if (pS->oom) {
    quay_schema_free(pS);
    return quay__oom(pErr);
  }
  *ppS = pS;
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** Statements
** ===================================================================
*/
void quay__ddl_column(const Dialect *d, const SCol *c, int bPk, Str *p) {
  quay__str_ident(p, c->zName);
  quay__str_char(p, ' ');
  if (bPk && c->bAuto) {
    quay__str_cat(p, d->zAutoPk);
    return;
  }
  quay__str_cat(p, c->zType);
  if (bPk) {
    quay__str_cat(p, " PRIMARY KEY");
    return;
  }
  if (!c->bNull) quay__str_cat(p, " NOT NULL");
  if (c->zDefault) {
    quay__str_cat(p, " DEFAULT ");
    quay__str_cat(p, c->zDefault);
  }
}

void quay__ddl_references(const Dialect *d, const SFk *f, Str *p) {
  int i;
  quay__str_cat(p, " REFERENCES ");
  quay__str_ident(p, f->zTable);
  quay__str_cat(p, " (");
  for (i = 0; i < f->nCol; i++) {
    if (i) quay__str_cat(p, ", ");
    quay__str_ident(p, f->azTo[i]);
  }
  quay__str_printf(p, ") ON DELETE %s ON UPDATE %s",
                   quay__action_name(f->eOnDelete),
                   quay__action_name(f->eOnUpdate));
  if (f->bDeferrable) quay__str_cat(p, d->zFkDeferrable);
}

/* The single-column UNIQUE constraint of column zCol, or NULL. */
static const SIdx *ddl_inline_unique(const STable *t, const char *zCol) {
  int i;
  for (i = 0; i < t->nIdx; i++) {
    const SIdx *x = &t->aIdx[i];
    if (x->bConstraint && x->nCol == 1 && x->azCol[0] &&
        strcmp(x->azCol[0], zCol) == 0) {
      return x;
    }
  }
  return NULL;
}

/* The single-column foreign key of column zCol, or -1. */
static int ddl_inline_fk(const STable *t, const char *zCol) {
  int i;
  for (i = 0; i < t->nFk; i++) {
    if (t->aFk[i].nCol == 1 && strcmp(t->aFk[i].azCol[0], zCol) == 0) {
      return i;
    }
  }
  return -1;
}

void quay__ddl_create_table(const Dialect *d, const STable *t,
                            const char *zName, const unsigned char *abFkOk,
                            Str *p) {
  int i, k, nPk = 0;
  for (i = 0; i < t->nCol; i++) nPk += t->aCol[i].iPk > 0;
  quay__str_cat(p, "CREATE TABLE ");
  quay__str_ident(p, zName);
  quay__str_cat(p, " (");
  for (i = 0; i < t->nCol; i++) {
    const SCol *c = &t->aCol[i];
    int iFk = ddl_inline_fk(t, c->zName);
    if (i) quay__str_cat(p, ", ");
    quay__ddl_column(d, c, nPk == 1 && c->iPk, p);
    if (!c->iPk && ddl_inline_unique(t, c->zName)) quay__str_cat(p, " UNIQUE");
    if (iFk >= 0 && (abFkOk == NULL || abFkOk[iFk])) {
      quay__ddl_references(d, &t->aFk[iFk], p);
    }
  }
  if (nPk > 1) {
    quay__str_cat(p, ", PRIMARY KEY (");
    for (k = 1; k <= nPk; k++) {
      for (i = 0; i < t->nCol; i++) {
        if (t->aCol[i].iPk != k) continue;
        if (k > 1) quay__str_cat(p, ", ");
        quay__str_ident(p, t->aCol[i].zName);
      }
    }
    quay__str_char(p, ')');
  }
  for (i = 0; i < t->nIdx; i++) {
    const SIdx *x = &t->aIdx[i];
    if (!x->bConstraint || x->nCol == 1) continue;   /* inline above */
    quay__str_cat(p, ", UNIQUE (");
    for (k = 0; k < x->nCol; k++) {
      if (k) quay__str_cat(p, ", ");
      quay__str_ident(p, x->azCol[k] ? x->azCol[k] : "?");
    }
    quay__str_char(p, ')');
  }
  for (i = 0; i < t->nFk; i++) {
    const SFk *f = &t->aFk[i];
    if (f->nCol == 1 || (abFkOk && !abFkOk[i])) continue;
    quay__str_cat(p, ", FOREIGN KEY (");
    for (k = 0; k < f->nCol; k++) {
      if (k) quay__str_cat(p, ", ");
      quay__str_ident(p, f->azCol[k]);
    }
    quay__str_char(p, ')');
    quay__ddl_references(d, f, p);
  }
  for (i = 0; i < t->nCheck; i++) {
    const SCheck *c = &t->aCheck[i];
    quay__str_cat(p, ", ");
    if (c->zName) {
      quay__str_cat(p, "CONSTRAINT ");
      quay__str_ident(p, c->zName);
      quay__str_char(p, ' ');
    }
    quay__str_printf(p, "CHECK (%s)", c->zExpr);
  }
  quay__str_char(p, ')');
}

void quay__ddl_create_index(const Dialect *d, const STable *t, const SIdx *x,
                            Str *p) {
  int k;
  (void)d;
  quay__str_cat(p, x->bUnique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  quay__str_ident(p, x->zName);
  quay__str_cat(p, " ON ");
  quay__str_ident(p, t->zName);
  quay__str_cat(p, " (");
  for (k = 0; k < x->nCol; k++) {
    if (k) quay__str_cat(p, ", ");
    quay__str_ident(p, x->azCol[k] ? x->azCol[k] : "?");
  }
  quay__str_char(p, ')');
}
/* }================================================================== */


/*
** {==================================================================
** create_tables and drop_tables
** ===================================================================
*/
int quay_db_create_tables(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_create_tables: %s is NULL",
        "pDb");
  }
  int rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  return quay__migrate_create(pDb, pErr);
}

/*
** DROP TABLE IF EXISTS for every declared table in one transaction: join
** tables first, then models, children before the models they refer to.
*/
int quay_db_drop_tables(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_drop_tables: %s is NULL",
        "pDb");
  }
  const Dialect *d = pDb->pDialect;
  quay_schema *pS = NULL;
  Str s;
  int i, rc;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  rc = quay__schema_declared(pDb, &pS, pErr);
  if (rc) return rc;
  quay__str_init(&s);
  rc = quay__txn_begin(pDb, 1, pErr);
  if (rc == QUAY_OK) {
    /* Declared order is parents first and join tables last: reverse. */
    for (i = pS->nTab - 1; rc == QUAY_OK && i >= 0; i--) {
      quay__str_reset(&s);
      quay__str_printf(&s, "%s ", d->zDropTable);
      quay__str_ident(&s, pS->aTab[i].zName);
      quay__str_cat(&s, d->zDropSuffix);
      if (s.oom) {
        rc = quay__oom(pErr);
        break;
      }
      rc = quay__db_run(pDb, s.z, NULL, 0, NULL, 0, 0, NULL, NULL, pErr);
    }
    rc = quay__txn_end(pDb, rc, pErr);
  }
  quay__str_free(&s);
  quay_schema_free(pS);
  return rc;
}
/* }================================================================== */
