/*
** engine/schema.c
** The schema registry: models, fields, relation declarations, lookup and
** introspection.
** See LICENSE
**
** A model is declared in two phases.  quay_model_new and the add_* calls
** record what the declaration says and check what can be checked locally
** (names, types, option combinations, defaults).  Everything that involves
** other models (targets, reverse accessors, join tables, through paths)
** waits for quay__resolve in relgraph.c, which runs lazily before first
** use, so models may be declared in any order and refer to each other.
**
** Fields are kept sorted by their declaration sequence number (the Lua
** layer numbers every descriptor as it is created), which fixes DDL column
** order and describe() order.  A belongs_to adds its key column as a field
** (flag QUAY_F_FKCOL) at the relation's position.  The implicit `id` is
** added when the model is finished (at resolve) unless a field is the
** primary key; field indexes are stable from then on, except that a
** has_many whose foreign key column does not exist appends it at resolve.
**
** The model owns every name string; the name maps borrow them.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

/*
** Names are identifiers of at most QUAY_MAX_NAME bytes: PostgreSQL
** truncates identifiers to 63 bytes (NAMEDATALEN - 1), which would make
** two long names collide silently.
*/
#define QUAY_MAX_NAME 63

/* ASCII case-insensitive compare (SQLite's identifier rule). */
static int sqlite_casecmp(const char *a, const char *b) {
  for (;; a++, b++) {
    int x = (unsigned char)*a, y = (unsigned char)*b;
    if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
    if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
    if (x != y || x == 0) return x - y;
  }
}

int quay__casecmp(const char *a, const char *b) { return sqlite_casecmp(a, b); }

/* Table names SQLite reserves ("sqlite_..." in any case). */
int quay__reserved_table(const char *z) {
  static const char zPrefix[] = "sqlite_";
  int i;
  for (i = 0; zPrefix[i]; i++) {
    int c = (unsigned char)z[i];
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (c != zPrefix[i]) return 0;
  }
  return 1;
}

/* Non-0 when z is an identifier usable as a field or model name. */
static int is_name(const char *z) {
  const char *s;
  if (z == NULL || z[0] == 0 || strlen(z) > QUAY_MAX_NAME) return 0;
  if (!((z[0] >= 'a' && z[0] <= 'z') || (z[0] >= 'A' && z[0] <= 'Z') ||
        z[0] == '_')) {
    return 0;
  }
  for (s = z; *s; s++) {
    char c = *s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_')) {
      return 0;
    }
  }
  return strstr(z, "__") == NULL;
}

int quay__is_name(const char *z) { return is_name(z); }

/* Non-0 for names that are unusable as table/column names. */
static int bad_sqlname(const char *z) {
  return z == NULL || z[0] == 0 || strlen(z) > QUAY_MAX_NAME;
}

/* Check a renamed_from name: a non-empty name of at most 63 bytes. */
static int bad_renamed(const quay_model *m, const char *zWhat,
                       const char *zOld, quay_err *pErr) {
  if (zOld && bad_sqlname(zOld)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s%s%s: renamed_from must be the old name (a "
                     "non-empty name of at most 63 bytes)", m->zName,
                     zWhat ? "." : "", zWhat ? zWhat : "");
  }
  return QUAY_OK;
}

/*
** Snake case (reference.md "Snake case"): split before an upper-case
** letter that follows a lower-case letter or digit, and inside a run of
** capitals before its last one when a lower-case letter follows.
*/
static char *snake_case(const char *zName) {
  size_t n = strlen(zName), i;
  char *z = quay__malloc(n * 2 + 1);
  size_t j = 0;
  if (z == NULL) return NULL;
  for (i = 0; i < n; i++) {
    char c = zName[i];
    int isUp = c >= 'A' && c <= 'Z';
    if (isUp && i > 0) {
      char p = zName[i - 1];
      int prevLowDigit = (p >= 'a' && p <= 'z') || (p >= '0' && p <= '9');
      int prevUp = p >= 'A' && p <= 'Z';
      int nextLow = i + 1 < n && zName[i + 1] >= 'a' && zName[i + 1] <= 'z';
      if (prevLowDigit || (prevUp && nextLow)) z[j++] = '_';
    }
    z[j++] = isUp ? (char)(c - 'A' + 'a') : c;
  }
  z[j] = 0;
  return z;
}

char *quay__snake_case(const char *zName) { return snake_case(zName); }

/*
** {==================================================================
** Models
** ===================================================================
*/
int quay_model_new(quay_db *pDb, const char *zName, const char *zTable,
                   const char *zDescr, quay_model **ppModel,
                   quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || zName == NULL || ppModel == NULL) {
    if (ppModel != NULL) *ppModel = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_new: %s is NULL", pDb ==
        NULL ? "pDb" : zName == NULL ? "zName" : "ppModel");
  }
  quay_model *m, *pOld;
  int rc = QUAY_ENOMEM;
  *ppModel = NULL;
  if (!is_name(zName)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model name '%.80s' is not a valid name: use letters, "
                     "digits and single underscores, starting with a letter, "
                     "at most 63 bytes", zName ? zName : "");
  }
  pOld = quay_db_model(pDb, zName);
  if (pOld != NULL && !pOld->failed) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s is declared twice: give the second one "
                     "another name", zName);
  }
  if (zTable && bad_sqlname(zTable)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: option table must be a non-empty name of at "
                     "most 63 bytes", zName);
  }
  if (zTable && quay__reserved_table(zTable)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: table names starting with sqlite_ are "
                     "reserved; choose another table option", zName);
  }
  m = quay__calloc(sizeof(*m));
  if (m == NULL) return quay__oom(pErr);
  m->pDb = pDb;
  m->iPk = -1;
  m->zName = quay__strdup(zName);
  m->zSnake = snake_case(zName);
  if (m->zName == NULL || m->zSnake == NULL) goto fail;
  if (zTable) {
    m->zTable = quay__strdup(zTable);
  } else {
    size_t n = strlen(m->zSnake);
    m->zTable = quay__malloc(n + 2);
    if (m->zTable) {
      memcpy(m->zTable, m->zSnake, n);
      m->zTable[n] = 's';
      m->zTable[n + 1] = 0;
    }
  }
  if (m->zTable == NULL) goto fail;
  if (bad_sqlname(m->zTable)) {
    rc = quay__err(pErr, QUAY_EDECLARATION,
                   "model %s: the table name %s is longer than 63 bytes; set "
                   "the table option", zName, m->zTable);
    quay__model_free(m);
    return rc;
  }
  if (zDescr && (m->zDescr = quay__strdup(zDescr)) == NULL) goto fail;
  if (pOld) {
    /* A declaration that failed at resolve is replaced, in its place
    ** (resolve undid everything it had done for it). */
    assert(!pOld->resolved && pDb->apModel[pOld->iModel] == pOld);
    quay__smap_del(&pDb->mModel, pOld->zName);
    if (quay__smap_put(&pDb->mModel, m->zName, pOld->iModel)) {
      quay__smap_put(&pDb->mModel, pOld->zName, pOld->iModel);
      goto fail;
    }
    m->iModel = pOld->iModel;
    pDb->apModel[m->iModel] = m;
    quay__model_free(pOld);
    pDb->resolved = 0;
    *ppModel = m;
    return QUAY_OK;
  }
  if (pDb->nModel == pDb->nModelAlloc) {
    int nNew = pDb->nModelAlloc ? pDb->nModelAlloc * 2 : 16;
    quay_model **a = quay__realloc(pDb->apModel, sizeof(*a) * (size_t)nNew);
    if (a == NULL) goto fail;
    pDb->apModel = a;
    pDb->nModelAlloc = nNew;
  }
  if (quay__smap_put(&pDb->mModel, m->zName, pDb->nModel)) goto fail;
  m->iModel = pDb->nModel;
  pDb->apModel[pDb->nModel++] = m;
  pDb->resolved = 0;
  *ppModel = m;
  return QUAY_OK;
fail:
  quay__model_free(m);
  return rc == QUAY_ENOMEM ? quay__oom(pErr) : rc;
}

static void field_free(Field *f) {
  if (f == NULL) return;
  quay__free(f->zName);
  quay__free(f->zCol);
  quay__free(f->zDescr);
  quay__free(f->zRenamed);
  quay__value_clear(&f->dflt);
  quay__rules_free(f);
  quay__free(f);
}

static void rel_free(Rel *r) {
  int i;
  if (r == NULL) return;
  quay__free(r->zName);
  quay__free(r->zDescr);
  quay__free(r->zRelated);
  quay__free(r->zTargetName);
  quay__free(r->zColumn);
  quay__free(r->zToField);
  quay__free(r->zTable);
  quay__free(r->zSourceKey);
  quay__free(r->zTargetKey);
  quay__free(r->zThrough);
  quay__free(r->zForeignKey);
  quay__free(r->zLocalKey);
  quay__free(r->zRenamed);
  for (i = 0; i < r->nPath; i++) quay__free(r->azPath[i]);
  quay__free(r->azPath);
  quay__free(r->apPath);
  quay__value_clear(&r->dflt);
  quay__free(r);
}

void quay__model_free(quay_model *m) {
  int i, j;
  if (m == NULL) return;
  for (i = 0; i < m->nField; i++) field_free(m->apField[i]);
  quay__free(m->apField);
  for (i = 0; i < m->nRel; i++) rel_free(m->apRel[i]);
  quay__free(m->apRel);
  for (i = 0; i < m->nUnique; i++) {
    for (j = 0; j < m->anUnique[i]; j++) quay__free(m->aaUnique[i][j]);
    quay__free(m->aaUnique[i]);
  }
  quay__free(m->aaUnique);
  quay__free(m->anUnique);
  for (i = 0; i < m->nIndex; i++) {
    for (j = 0; j < m->anIndex[i]; j++) quay__free(m->aaIndex[i][j]);
    quay__free(m->aaIndex[i]);
  }
  quay__free(m->aaIndex);
  quay__free(m->anIndex);
  quay__smap_free(&m->mFieldName);
  quay__smap_free(&m->mColName);
  quay__smap_free(&m->mRelName);
  quay__free(m->zName);
  quay__free(m->zSnake);
  quay__free(m->zTable);
  quay__free(m->zDescr);
  quay__free(m->zRenamed);
  quay__free(m);
}

/* Rebuild the field name maps after an insertion shifted indexes. */
static int reindex_fields(quay_model *m) {
  int i;
  quay__smap_free(&m->mFieldName);
  quay__smap_free(&m->mColName);
  for (i = 0; i < m->nField; i++) {
    m->apField[i]->iField = i;
    if (quay__smap_put(&m->mFieldName, m->apField[i]->zName, i) ||
        quay__smap_put(&m->mColName, m->apField[i]->zCol, i)) {
      return QUAY_ENOMEM;
    }
  }
  for (i = 0; i < m->nField; i++) {
    if (m->apField[i]->mFlags & QUAY_F_PK) m->iPk = i;
  }
  return QUAY_OK;
}

/*
** Non-0 when column zCol clashes with a column of m.  SQLite compares
** column names without case (even quoted), so the check does too.
*/
int quay__column_taken(const quay_model *m, const char *zCol) {
  int i;
  for (i = 0; i < m->nField; i++) {
    if (sqlite_casecmp(m->apField[i]->zCol, zCol) == 0) return 1;
  }
  return 0;
}

/* Non-0 when zName is taken by a field, a column or a relation. */
static int name_taken(const quay_model *m, const char *zName) {
  return quay__smap_get(&m->mFieldName, zName) >= 0 ||
         quay__column_taken(m, zName) ||
         quay__smap_get(&m->mRelName, zName) >= 0;
}

/*
** Insert f at its sequence position.  Takes ownership of f (freed on
** failure).
*/
static int insert_field(quay_model *m, Field *f, int bAppend,
                        quay_err *pErr) {
  int i;
  if (m->nField == m->nFieldAlloc) {
    int nNew = m->nFieldAlloc ? m->nFieldAlloc * 2 : 8;
    Field **a = quay__realloc(m->apField, sizeof(*a) * (size_t)nNew);
    if (a == NULL) {
      field_free(f);
      return quay__oom(pErr);
    }
    m->apField = a;
    m->nFieldAlloc = nNew;
  }
  i = m->nField;
  if (!bAppend) {
    while (i > 0 && m->apField[i - 1]->rSeq > f->rSeq) {
      m->apField[i] = m->apField[i - 1];
      i--;
    }
  }
  m->apField[i] = f;
  m->nField++;
  if (reindex_fields(m)) {
    /* Undo so the model stays consistent. */
    memmove(&m->apField[i], &m->apField[i + 1],
            sizeof(Field *) * (size_t)(m->nField - i - 1));
    m->nField--;
    field_free(f);
    reindex_fields(m);
    return quay__oom(pErr);
  }
  m->pDb->resolved = 0;
  return QUAY_OK;
}

/* Every QUAY_F_* bit of quay.h; others are refused (misuse). */
#define QUAY__F_ALL 0x0FFFu

int quay_model_add_field(quay_model *m, const quay_field_spec *s,
                         quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || s == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_add_field: %s is NULL", m
        == NULL ? "pModel" : "pSpec");
  }
  Field *f;
  int rc;
  const char *zCol = s->zColumn ? s->zColumn : s->zName;
  if (!is_name(s->zName)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: '%.80s' is not a valid field name (letters, "
                     "digits and single underscores, at most 63 bytes)",
                     m->zName,
                     s->zName ? s->zName : "");
  }
  if (m->resolved) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s added after the model was first "
                     "used; declare every field in db:model", m->zName,
                     s->zName);
  }
  if (!quay__type_valid(s->eType)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s has an unknown type", m->zName,
                     s->zName);
  }
  if (s->mFlags & ~(unsigned)QUAY__F_ALL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "model %s: field %s: unknown mFlags bits 0x%x (use "
                     "QUAY_F_*)", m->zName, s->zName,
                     s->mFlags & ~(unsigned)QUAY__F_ALL);
  }
  if (bad_sqlname(zCol)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s: option column must be a non-empty "
                     "name of at most 63 bytes", m->zName, s->zName);
  }
  if (name_taken(m, s->zName) || name_taken(m, zCol)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: the name %s is declared twice (a field, "
                     "column or relation already has it)", m->zName,
                     name_taken(m, s->zName) ? s->zName : zCol);
  }
  if (s->nMax < 0 || (s->nMax > 0 && s->eType != QUAY_T_STRING)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s: max must be a positive length on "
                     "a string field", m->zName, s->zName);
  }
  if (s->zRenamedFrom && bad_sqlname(s->zRenamedFrom)) {
    return bad_renamed(m, s->zName, s->zRenamedFrom, pErr);
  }
  if ((quay_type_flags(s->eType) & QUAY_TF_PRECISION)
          ? (s->nDigits < 1 || s->nDigits > 18 || s->nPlaces < 0 ||
             s->nPlaces > s->nDigits)
          : (s->nDigits != 0 || s->nPlaces != 0)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s: %s", m->zName, s->zName,
                     (quay_type_flags(s->eType) & QUAY_TF_PRECISION)
                         ? "quay.decimal needs digits (1 to 18, the digits "
                           "in all) and places (0 to digits, the digits "
                           "after the point): quay.decimal { digits = 10, "
                           "places = 2 }"
                         : "digits and places are options of quay.decimal");
  }
  if ((s->mFlags & (QUAY_F_AUTO_NOW | QUAY_F_AUTO_NOW_ADD)) &&
      s->eType != QUAY_T_DATETIME) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s: auto_now and auto_now_add need a "
                     "quay.datetime field", m->zName, s->zName);
  }
  if (s->eType == QUAY_T_ID || (s->mFlags & QUAY_F_PK)) {
    if (m->iPk >= 0) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: fields %s and %s are both primary keys; "
                       "keep one", m->zName, m->apField[m->iPk]->zName,
                       s->zName);
    }
    if (s->mFlags & QUAY_F_NULL) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: primary key %s cannot be null = true",
                       m->zName, s->zName);
    }
    if (!(quay_type_flags(s->eType) & QUAY_TF_KEY) &&
        s->eType != QUAY_T_BLOB) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: field %s: a %s field cannot be the primary "
                       "key", m->zName, s->zName, quay__type_name(s->eType));
    }
  }
  if ((s->mFlags & QUAY_F_DEFAULT) && s->dflt.type == QUAY_NULL &&
      !(s->mFlags & QUAY_F_NULL)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: field %s: default must be non-null (got "
                     "null)", m->zName, s->zName);
  }
  f = quay__calloc(sizeof(*f));
  if (f == NULL) return quay__oom(pErr);
  f->zName = quay__strdup(s->zName);
  f->zCol = quay__strdup(zCol);
  f->zDescr = s->zDescription ? quay__strdup(s->zDescription) : NULL;
  f->eType = s->eType;
  f->mFlags = s->mFlags;
  if (s->eType == QUAY_T_ID) f->mFlags |= QUAY_F_PK;
  if (f->mFlags & QUAY_F_PK) {
    f->mFlags = (f->mFlags | QUAY_F_UNIQUE) & ~QUAY_F_NULL;
  }
  f->nMax = s->nMax;
  f->nDigits = s->nDigits;
  f->nPlaces = s->nPlaces;
  f->rSeq = s->rSeq;
  if ((s->mFlags & QUAY_F_DEFAULT) && quay__value_copy(&f->dflt, &s->dflt)) {
    field_free(f);
    return quay__oom(pErr);
  }
  if ((s->mFlags & QUAY_F_DEFAULT) && f->dflt.type != QUAY_NULL) {
    /* The stored form (a number as a double, a datetime normalized, a
    ** decimal with its places), checked as a stored value is. */
    quay_err e;
    if (quay__value_conform_owned(m, f, &f->dflt, &e) ||
        quay__value_fits(m, f, &f->dflt, 1, &e)) {
      field_free(f);
      if (e.code == QUAY_ENOMEM) return quay__oom(pErr);
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: field %s: the default is not a value of "
                       "the field: %s", m->zName, s->zName, e.zMsg);
    }
  }
  if (s->zRenamedFrom) f->zRenamed = quay__strdup(s->zRenamedFrom);
  if (f->zName == NULL || f->zCol == NULL ||
      (s->zDescription && f->zDescr == NULL) ||
      (s->zRenamedFrom && f->zRenamed == NULL)) {
    field_free(f);
    return quay__oom(pErr);
  }
  if ((s->nChoice || s->pMin || s->pMax) &&
      (rc = quay__rules_set(m, f, s, pErr)) != QUAY_OK) {
    field_free(f);
    return rc;
  }
  return insert_field(m, f, 0, pErr);
}

int quay_model_set_renamed_from(quay_model *m, const char *zOld,
                                quay_err *pErr) {
  char *z;
  int rc;
  if (m == NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_model_set_renamed_from: pModel is NULL");
  }
  if (m->resolved) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: renamed_from set after the model was first "
                     "used; give it in db:model", m->zName);
  }
  rc = bad_renamed(m, NULL, zOld ? zOld : "", pErr);
  if (rc) return rc;
  z = quay__strdup(zOld);
  if (z == NULL) return quay__oom(pErr);
  quay__free(m->zRenamed);
  m->zRenamed = z;
  return QUAY_OK;
}

/*
** Append a copy of the name list az[0..n) to the lists *paa / *pan (count
** *pn): unique_together and indexes.  zWhat names the option.
*/
static int add_name_list(quay_model *m, char ****paa, int **pan, int *pn,
                         const char *const *az, int n, const char *zWhat,
                         quay_err *pErr) {
  char **azCopy;
  char ***aa;
  int *an, i;
  if (n < 1) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: %s entries need at "
                     "least one field name", m->zName, zWhat);
  }
  azCopy = quay__calloc(sizeof(char *) * (size_t)n);
  if (azCopy == NULL) return quay__oom(pErr);
  for (i = 0; i < n; i++) {
    if ((azCopy[i] = quay__strdup(az[i])) == NULL) goto oom;
  }
  aa = quay__realloc(*paa, sizeof(char **) * (size_t)(*pn + 1));
  if (aa == NULL) goto oom;
  *paa = aa;
  an = quay__realloc(*pan, sizeof(int) * (size_t)(*pn + 1));
  if (an == NULL) goto oom;
  *pan = an;
  aa[*pn] = azCopy;
  an[*pn] = n;
  (*pn)++;
  m->pDb->resolved = 0;
  return QUAY_OK;
oom:
  for (i = 0; i < n; i++) quay__free(azCopy[i]);
  quay__free(azCopy);
  return quay__oom(pErr);
}

int quay_model_add_unique(quay_model *m, const char *const *az, int n,
                          quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || (az == NULL && n > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_add_unique: %s is NULL",
        m == NULL ? "pModel" : "azField");
  }
  return add_name_list(m, &m->aaUnique, &m->anUnique, &m->nUnique, az, n,
                       "unique_together", pErr);
}

int quay_model_add_index(quay_model *m, const char *const *az, int n,
                         quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || (az == NULL && n > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_add_index: %s is NULL", m
        == NULL ? "pModel" : "azField");
  }
  return add_name_list(m, &m->aaIndex, &m->anIndex, &m->nIndex, az, n,
                       "indexes", pErr);
}

int quay_model_index_count(const quay_model *m, int bUnique) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL) {
    return 0;
  }
  return bUnique ? m->nUnique : m->nIndex;
}

int quay_model_index(const quay_model *m, int bUnique, int i,
                     const char *const **paz, int *pn) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || paz == NULL || pn == NULL) {
    if (paz != NULL) *paz = NULL;
    return QUAY_EMISUSE;
  }
  if (i < 0 || i >= (bUnique ? m->nUnique : m->nIndex)) {
    *paz = NULL;
    *pn = 0;
    return QUAY_EMISUSE;
  }
  *paz = (const char *const *)(bUnique ? m->aaUnique[i] : m->aaIndex[i]);
  *pn = bUnique ? m->anUnique[i] : m->anIndex[i];
  return QUAY_OK;
}

/* Default on_delete per kind: belongs_to/one_to_one RESTRICT; has_many and
** has_one NO_ACTION (the child owns no declared relation). */
static int default_on_delete(int eKind) {
  return (eKind == QUAY_R_HAS_MANY || eKind == QUAY_R_HAS_ONE)
             ? QUAY_NO_ACTION : QUAY_RESTRICT;
}

static int dup_opt(char **pz, const char *z) {
  if (z == NULL) {
    *pz = NULL;
    return 1;
  }
  *pz = quay__strdup(z);
  return *pz != NULL;
}

/*
** Declare a relation.  belongs_to and one_to_one add their key column as a
** field now (type fixed at resolve); everything about the target waits for
** resolve.
*/
int quay_model_add_relation(quay_model *m, const quay_rel_spec *s,
                            quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || s == NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
        "quay_model_add_relation: %s is NULL", m == NULL ? "pModel" :
            "pSpec");
  }
  Rel *r;
  int rc, i;
  if (!is_name(s->zName)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: '%s' is not a valid relation name",
                     m->zName, s->zName ? s->zName : "");
  }
  if (m->resolved) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s added after the model was first "
                     "used; declare it in db:model", m->zName, s->zName);
  }
  if (s->eKind < QUAY_R_BELONGS_TO || s->eKind > QUAY_R_THROUGH) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s has an unknown kind", m->zName,
                     s->zName);
  }
  if (name_taken(m, s->zName)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: the name %s is declared twice", m->zName,
                     s->zName);
  }
  if (s->mFlags & ~(unsigned)QUAY__F_ALL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "model %s: relation %s: unknown mFlags bits 0x%x (use "
                     "QUAY_F_*)", m->zName, s->zName,
                     s->mFlags & ~(unsigned)QUAY__F_ALL);
  }
  for (i = 0; i < s->nPath; i++) {
    if (s->azPath == NULL || s->azPath[i] == NULL) {
      return quay__err(pErr, QUAY_EMISUSE,
                       "model %s: relation %s: azPath holds fewer than "
                       "nPath (%d) names", m->zName, s->zName, s->nPath);
    }
  }
  if (s->eKind == QUAY_R_THROUGH) {
    if (s->nPath < 1) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: quay.through needs at least "
                       "one relation name", m->zName, s->zName);
    }
  } else if (s->zTarget == NULL || s->zTarget[0] == 0) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s needs a target model", m->zName,
                     s->zName);
  }
  if ((s->eOnDelete && (s->eOnDelete < QUAY_CASCADE ||
                        s->eOnDelete > QUAY_NO_ACTION)) ||
      (s->eOnUpdate && (s->eOnUpdate < QUAY_CASCADE ||
                        s->eOnUpdate > QUAY_NO_ACTION))) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: on_delete/on_update must be one "
                     "of quay.CASCADE, SET_NULL, SET_DEFAULT, RESTRICT, "
                     "PROTECT, NO_ACTION", m->zName, s->zName);
  }
  if (s->zRenamedFrom && s->eKind != QUAY_R_BELONGS_TO &&
      s->eKind != QUAY_R_ONE_TO_ONE) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: renamed_from applies to "
                     "belongs_to and one_to_one (the relations that own a "
                     "column)", m->zName, s->zName);
  }
  if (s->zRenamedFrom && bad_sqlname(s->zRenamedFrom)) {
    return bad_renamed(m, s->zName, s->zRenamedFrom, pErr);
  }
  r = quay__calloc(sizeof(*r));
  if (r == NULL) return quay__oom(pErr);
  r->eKind = s->eKind;
  r->mFlags = s->mFlags;
  r->rSeq = s->rSeq;
  r->pFrom = m;
  r->eOnDelete = s->eOnDelete ? s->eOnDelete : default_on_delete(s->eKind);
  r->eOnUpdate = s->eOnUpdate ? s->eOnUpdate : QUAY_CASCADE;
  if (s->eKind == QUAY_R_ONE_TO_ONE) r->mFlags |= QUAY_F_UNIQUE;
  if (!dup_opt(&r->zName, s->zName) || !dup_opt(&r->zDescr, s->zDescription) ||
      !dup_opt(&r->zRelated, s->zRelatedName) ||
      !dup_opt(&r->zTargetName, s->zTarget) ||
      !dup_opt(&r->zToField, s->zToField) || !dup_opt(&r->zTable, s->zTable) ||
      !dup_opt(&r->zSourceKey, s->zSourceKey) ||
      !dup_opt(&r->zTargetKey, s->zTargetKey) ||
      !dup_opt(&r->zThrough, s->zThrough) ||
      !dup_opt(&r->zForeignKey, s->zForeignKey) ||
      !dup_opt(&r->zLocalKey, s->zLocalKey) ||
      !dup_opt(&r->zRenamed, s->zRenamedFrom)) {
    goto oom;
  }
  if ((s->mFlags & QUAY_F_DEFAULT) && quay__value_copy(&r->dflt, &s->dflt)) {
    goto oom;
  }
  if (s->nPath > 0) {
    r->azPath = quay__calloc(sizeof(char *) * (size_t)s->nPath);
    if (r->azPath == NULL) goto oom;
    r->nPath = s->nPath;
    for (i = 0; i < s->nPath; i++) {
      if ((r->azPath[i] = quay__strdup(s->azPath[i])) == NULL) goto oom;
    }
  }
  if (s->eKind == QUAY_R_BELONGS_TO || s->eKind == QUAY_R_ONE_TO_ONE) {
    Field *f;
    size_t n = strlen(s->zName);
    if (s->zColumn) {
      if (!dup_opt(&r->zColumn, s->zColumn)) goto oom;
    } else {
      r->zColumn = quay__malloc(n + 4);
      if (r->zColumn == NULL) goto oom;
      memcpy(r->zColumn, s->zName, n);
      memcpy(r->zColumn + n, "_id", 4);
    }
    if (bad_sqlname(r->zColumn) || name_taken(m, r->zColumn) ||
        strcmp(r->zColumn, s->zName) == 0) {
      rc = quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: column %s is already a field, "
                     "column or relation name; set another column option",
                     m->zName, s->zName, r->zColumn);
      rel_free(r);
      return rc;
    }
    if (r->eOnDelete == QUAY_SET_NULL && !(s->mFlags & QUAY_F_NULL)) {
      rc = quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: on_delete = SET_NULL needs "
                     "null = true", m->zName, s->zName);
      rel_free(r);
      return rc;
    }
    if (r->eOnUpdate == QUAY_SET_NULL && !(s->mFlags & QUAY_F_NULL)) {
      rc = quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: on_update = SET_NULL needs "
                     "null = true", m->zName, s->zName);
      rel_free(r);
      return rc;
    }
    if ((r->eOnDelete == QUAY_SET_DEFAULT || r->eOnUpdate == QUAY_SET_DEFAULT)
        && !(s->mFlags & QUAY_F_DEFAULT)) {
      rc = quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: SET_DEFAULT needs a default "
                     "(a key value or a record)", m->zName, s->zName);
      rel_free(r);
      return rc;
    }
    f = quay__calloc(sizeof(*f));
    if (f == NULL) goto oom;
    f->zName = quay__strdup(r->zColumn);
    f->zCol = quay__strdup(r->zColumn);
    f->zDescr = NULL;
    f->eType = QUAY_T_INTEGER;          /* fixed at resolve */
    f->mFlags = QUAY_F_FKCOL | (s->mFlags & (QUAY_F_NULL | QUAY_F_UNIQUE));
    if (s->eKind == QUAY_R_ONE_TO_ONE) f->mFlags |= QUAY_F_UNIQUE;
    if (!(s->mFlags & QUAY_F_NO_INDEX)) f->mFlags |= QUAY_F_INDEX;
    f->rSeq = s->rSeq;
    f->pRel = r;
    if ((s->mFlags & QUAY_F_DEFAULT) && r->dflt.type != QUAY_RECORD &&
        quay__value_copy(&f->dflt, &r->dflt)) {
      field_free(f);
      goto oom;
    }
    if (s->mFlags & QUAY_F_DEFAULT) f->mFlags |= QUAY_F_DEFAULT;
    if (f->zName == NULL || f->zCol == NULL) {
      field_free(f);
      goto oom;
    }
    r->pFk = f;
    rc = insert_field(m, f, 0, pErr);
    if (rc) {
      rel_free(r);
      return rc;
    }
  } else if (s->zColumn) {
    rc = quay__err(pErr, QUAY_EDECLARATION,
                   "model %s: relation %s: option column applies to "
                   "belongs_to and one_to_one only", m->zName, s->zName);
    rel_free(r);
    return rc;
  }
  /* Declared relations precede reverse ones: insert before them. */
  rc = quay__model_add_rel_internal(m, r, pErr);
  if (rc) {
    if (r->pFk) {
      /* Remove the column field added above. */
      int k;
      for (k = 0; k < m->nField; k++) {
        if (m->apField[k] == r->pFk) {
          memmove(&m->apField[k], &m->apField[k + 1],
                  sizeof(Field *) * (size_t)(m->nField - k - 1));
          m->nField--;
          field_free(r->pFk);
          reindex_fields(m);
          break;
        }
      }
    }
    rel_free(r);
    return rc;
  }
  return QUAY_OK;
oom:
  rel_free(r);
  return quay__oom(pErr);
}

/*
** Add a relation (declared or reverse) to the model's list and name map.
** Declared relations are kept in sequence order before every reverse
** accessor.  Does not take ownership on failure.
*/
int quay__model_add_rel_internal(quay_model *m, Rel *r, quay_err *pErr) {
  int i, j;
  if (m->nRel == m->nRelAlloc) {
    int nNew = m->nRelAlloc ? m->nRelAlloc * 2 : 8;
    Rel **a = quay__realloc(m->apRel, sizeof(*a) * (size_t)nNew);
    if (a == NULL) return quay__oom(pErr);
    m->apRel = a;
    m->nRelAlloc = nNew;
  }
  if (r->eKind != QUAY_R_REVERSE) {
    i = m->nDeclRel;
    while (i > 0 && m->apRel[i - 1]->rSeq > r->rSeq) i--;
    memmove(&m->apRel[i + 1], &m->apRel[i],
            sizeof(Rel *) * (size_t)(m->nRel - i));
    m->apRel[i] = r;
    m->nRel++;
    m->nDeclRel++;
  } else {
    m->apRel[m->nRel++] = r;
  }
  quay__smap_free(&m->mRelName);
  for (j = 0; j < m->nRel; j++) {
    m->apRel[j]->iRel = j;
    if (!m->apRel[j]->hidden &&
        quay__smap_put(&m->mRelName, m->apRel[j]->zName, j)) {
      /* Undo the insertion. */
      int k;
      for (k = 0; k < m->nRel; k++) {
        if (m->apRel[k] == r) {
          memmove(&m->apRel[k], &m->apRel[k + 1],
                  sizeof(Rel *) * (size_t)(m->nRel - k - 1));
          m->nRel--;
          if (r->eKind != QUAY_R_REVERSE) m->nDeclRel--;
          break;
        }
      }
      quay__smap_free(&m->mRelName);
      for (k = 0; k < m->nRel; k++) {
        m->apRel[k]->iRel = k;
        if (!m->apRel[k]->hidden) {
          quay__smap_put(&m->mRelName, m->apRel[k]->zName, k);
        }
      }
      return quay__oom(pErr);
    }
  }
  m->pDb->resolved = 0;
  return QUAY_OK;
}

/*
** Finish a model: add the implicit id when no field is the primary key.
** Idempotent; called by resolve.
*/
int quay__model_finish(quay_model *m, quay_err *pErr) {
  Field *f;
  if (m->iPk >= 0) return QUAY_OK;
  if (name_taken(m, "id")) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: no primary key is declared and the name id "
                     "is taken; declare a field with primary_key = true",
                     m->zName);
  }
  f = quay__calloc(sizeof(*f));
  if (f == NULL) return quay__oom(pErr);
  f->zName = quay__strdup("id");
  f->zCol = quay__strdup("id");
  if (f->zName == NULL || f->zCol == NULL) {
    field_free(f);
    return quay__oom(pErr);
  }
  f->eType = QUAY_T_ID;
  f->mFlags = QUAY_F_PK | QUAY_F_UNIQUE | QUAY_F_IMPLICIT;
  f->rSeq = -HUGE_VAL;
  return insert_field(m, f, 0, pErr);
}

int quay_model_set_soft_delete(quay_model *m, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
        "quay_model_set_soft_delete: %s is NULL", "pModel");
  }
  quay_field_spec s;
  int rc;
  if (m->pDeletedAt) return QUAY_OK;
  if (m->resolved) {
    return quay__err(pErr, QUAY_EMISUSE, "model %s: soft_delete must be set "
                     "while declaring", m->zName);
  }
  if (quay__model_field(m, "deleted_at") || quay__model_rel(m, "deleted_at")) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: soft_delete adds "
                     "the field deleted_at, and the name is taken",
                     m->zName);
  }
  memset(&s, 0, sizeof(s));
  s.zName = "deleted_at";
  s.eType = QUAY_T_DATETIME;
  s.mFlags = QUAY_F_NULL;
  s.zDescription = "set when the row is soft-deleted";
  s.rSeq = HUGE_VAL;                  /* after every declared field */
  rc = quay_model_add_field(m, &s, pErr);
  if (rc) return rc;
  m->pDeletedAt = quay__model_field(m, "deleted_at");
  return QUAY_OK;
}

int quay_model_soft_delete(const quay_model *m) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL) {
    return 0;
  }
  return m->pDeletedAt != NULL;
}

int quay_model_finish(quay_model *m, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_model_finish: %s is NULL",
        "pModel");
  }
  return quay__model_finish(m, pErr);
}

int quay_model_discard(quay_model *m) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL) {
    return QUAY_EMISUSE;
  }
  quay_db *pDb = m->pDb;
  int i;
  if (m->resolved || m->iModel < 0 || m->iModel >= pDb->nModel ||
      pDb->apModel[m->iModel] != m) {
    return QUAY_EMISUSE;
  }
  /* Usually the newest model; one that replaced a failed declaration
  ** sits in that one's place, so later models move down one index.  No
  ** relation points at an unresolved model, and replacing the index of an
  ** existing key after a deletion does not grow the map. */
  quay__smap_del(&pDb->mModel, m->zName);
  for (i = m->iModel; i + 1 < pDb->nModel; i++) {
    pDb->apModel[i] = pDb->apModel[i + 1];
    pDb->apModel[i]->iModel = i;
    if (QUAY_NEVER(quay__smap_put(&pDb->mModel, pDb->apModel[i]->zName, i))) {
      break;
    }
  }
  pDb->nModel--;
  quay__model_free(m);
  pDb->resolved = 0;
  return QUAY_OK;
}

void quay__model_pop_field(quay_model *m) {
  Field *f;
  if (QUAY_NEVER(m->nField == 0)) return;
  f = m->apField[--m->nField];
  quay__smap_del(&m->mFieldName, f->zName);
  quay__smap_del(&m->mColName, f->zCol);
  field_free(f);
}

/*
** Append a key column for a has_many/has_one whose target lacks it.
*/
int quay__model_add_fkcol(quay_model *m, const char *zCol, int eType,
                          Rel *pRel, Field **ppField, quay_err *pErr) {
  Field *f;
  int rc;
  *ppField = NULL;
  if (!is_name(zCol)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: foreign_key '%s' is not a valid name",
                     m->zName, zCol);
  }
  f = quay__calloc(sizeof(*f));
  if (f == NULL) return quay__oom(pErr);
  f->zName = quay__strdup(zCol);
  f->zCol = quay__strdup(zCol);
  if (f->zName == NULL || f->zCol == NULL) {
    field_free(f);
    return quay__oom(pErr);
  }
  f->eType = eType == QUAY_T_ID ? QUAY_T_INTEGER : eType;
  f->mFlags = QUAY_F_FKCOL | QUAY_F_NULL | QUAY_F_INDEX;
  f->rSeq = HUGE_VAL;
  f->pRel = pRel;
  rc = insert_field(m, f, 1, pErr);
  if (rc == QUAY_OK) *ppField = f;
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Lookup and introspection
** ===================================================================
*/
Field *quay__model_field(const quay_model *m, const char *z) {
  int i = quay__smap_get(&m->mFieldName, z);
  if (i < 0) i = quay__smap_get(&m->mColName, z);
  return i >= 0 ? m->apField[i] : NULL;
}

Rel *quay__model_rel(const quay_model *m, const char *z) {
  int i = quay__smap_get(&m->mRelName, z);
  return i >= 0 ? m->apRel[i] : NULL;
}

int quay_db_model_count(const quay_db *pDb) {
  return pDb ? pDb->nModel : 0;
}
quay_model *quay_db_model_at(const quay_db *pDb, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return NULL;
  }
  return (i >= 0 && i < pDb->nModel) ? pDb->apModel[i] : NULL;
}
quay_model *quay_db_model(const quay_db *pDb, const char *zName) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || zName == NULL) {
    return NULL;
  }
  int i = quay__smap_get(&pDb->mModel, zName);
  if (i < 0 || i >= pDb->nModel || strcmp(pDb->apModel[i]->zName, zName)) {
    return NULL;
  }
  return pDb->apModel[i];
}

const char *quay_model_name(const quay_model *m) {
  return m ? m->zName : NULL;
}
const char *quay_model_table(const quay_model *m) {
  return m ? m->zTable : NULL;
}
const char *quay_model_description(const quay_model *m) {
  return m ? m->zDescr : NULL;
}
quay_db *quay_model_db(const quay_model *m) {
  return m ? m->pDb : NULL;
}
int quay_model_field_count(const quay_model *m) {
  return m ? m->nField : 0;
}
int quay_model_pk(const quay_model *m) {
  return m ? m->iPk : 0;
}
int quay_model_relation_count(const quay_model *m) {
  return m ? m->nRel : 0;
}

int quay_model_field(const quay_model *m, int i, quay_field_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  Field *f;
  if (i < 0 || i >= m->nField) return QUAY_EMISUSE;
  f = m->apField[i];
  p->zName = f->zName;
  p->zColumn = f->zCol;
  p->zDescription = f->zDescr;
  p->eType = f->eType;
  p->mFlags = f->mFlags;
  p->nMax = f->nMax;
  p->nDigits = f->nDigits;
  p->nPlaces = f->nPlaces;
  p->iRel = f->pRel ? f->pRel->iRel : -1;
  p->pDefault = (f->mFlags & QUAY_F_DEFAULT) ? &f->dflt : NULL;
  p->aChoice = f->aChoice;
  p->nChoice = f->nChoice;
  p->pMin = f->pMin;
  p->pMax = f->pMax;
  return QUAY_OK;
}

int quay_model_member(const quay_model *m, const char *zName, int *piIndex) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || zName == NULL) {
    return QUAY_M_NONE;
  }
  int i = quay__smap_get(&m->mFieldName, zName);
  if (i < 0) i = quay__smap_get(&m->mColName, zName);
  if (i >= 0) {
    if (piIndex != NULL) *piIndex = i;
    return QUAY_M_FIELD;
  }
  i = quay__smap_get(&m->mRelName, zName);
  if (i >= 0) {
    if (piIndex != NULL) *piIndex = i;
    return QUAY_M_RELATION;
  }
  if (piIndex != NULL) *piIndex = -1;
  return QUAY_M_NONE;
}

const char *quay_kind_name(int e) { return quay__kind_name(e); }
const char *quay_rule_name(int e) { return quay__rule_name(e); }

const char *quay__rule_name(int e) {
  switch (e) {
    case QUAY_CASCADE: return "CASCADE";
    case QUAY_SET_NULL: return "SET_NULL";
    case QUAY_SET_DEFAULT: return "SET_DEFAULT";
    case QUAY_RESTRICT: return "RESTRICT";
    case QUAY_PROTECT: return "PROTECT";
    case QUAY_NO_ACTION: return "NO_ACTION";
  }
  return NULL;
}

const char *quay__kind_name(int e) {
  switch (e) {
    case QUAY_R_BELONGS_TO: return "belongs_to";
    case QUAY_R_ONE_TO_ONE: return "one_to_one";
    case QUAY_R_MANY_TO_MANY: return "many_to_many";
    case QUAY_R_HAS_MANY: return "has_many";
    case QUAY_R_HAS_ONE: return "has_one";
    case QUAY_R_THROUGH: return "through";
    case QUAY_R_REVERSE: return "reverse";
  }
  return "?";
}
/* }================================================================== */
