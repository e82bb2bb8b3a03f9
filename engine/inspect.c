/*
** engine/inspect.c
** Schema descriptions: the builder, what a type name and a DEFAULT hold,
** db:inspect() and the models `quay inspect` prints.
** See LICENSE
**
** A quay_schema describes tables as a database reports them (quayInt.h
** "Schema descriptions").  The dialects fill it from their catalogs
** (Dialect.xInspect: SQLite's pragmas, PostgreSQL's pg_catalog) through
** the builder below; ddl.c fills one from the declared models.  Both go
** through quay__schema_finish's normalization, so migrate.c compares like
** with like:
**   - A type name gets a type class, the QUAY_T_* that holds the same
**     values (aTypeName below; "character varying(20)" and "VARCHAR(20)"
**     are both a string of max 20).  A new field type is one entry there
**     (its DDL names are in its entry of types.c's aType).
**   - A DEFAULT is read as a literal value (casts, parentheses and quotes
**     taken off) or marked as an expression Quay leaves alone (now(),
**     nextval(...), CURRENT_TIMESTAMP).
**
** The second half infers models from a live schema for `quay inspect`
** (reference.md): one model per table, named from the table; foreign keys
** become belongs_to (one_to_one when unique), join tables through models
** with a many_to_many on each side.  Every name it makes is checked
** against the names the model already uses, so the script declares
** without a clash, and every option is chosen so that the declared
** models compare equal to the tables they came from (the fixpoint).
*/
#include "quayInt.h"

#include <stdio.h>
#include <stdlib.h>

/*
** {==================================================================
** Builder
** ===================================================================
*/
quay_schema *quay__schema_new(const Dialect *pDia) {
  quay_schema *pS = quay__calloc(sizeof(*pS));
  if (pS == NULL) return NULL;
  pS->pDia = pDia;
  quay__arena_init(&pS->arena);
  return pS;
}

char *quay__schema_str(quay_schema *pS, const char *z) {
  char *r;
  if (z == NULL) return NULL;
  r = quay__arena_strdup(&pS->arena, z, strlen(z));
  if (r == NULL) pS->oom = 1;
  return r;
}

/* Grow an array of nSize-byte items to hold one more; NULL on OOM. */
static void *schema_grow(quay_schema *pS, void **pa, int n, int *pnAlloc,
                  size_t nSize) {
  char *a = *pa;
  if (pS->oom) return NULL;
  if (n >= *pnAlloc) {
    int nNew = *pnAlloc ? *pnAlloc * 2 : 8;
    a = quay__realloc(a, nSize * (size_t)nNew);
    if (a == NULL) {
      pS->oom = 1;
      return NULL;
    }
    *pa = a;
    *pnAlloc = nNew;
  }
  memset(a + nSize * (size_t)n, 0, nSize);
  return a + nSize * (size_t)n;
}

STable *quay__schema_add_table(quay_schema *pS, const char *zName) {
  STable *t = schema_grow(pS, (void **)&pS->aTab, pS->nTab, &pS->nTabAlloc,
                   sizeof(STable));
  if (t == NULL) return NULL;
  t->zName = quay__schema_str(pS, zName);
  if (t->zName == NULL) return NULL;
  pS->nTab++;
  return t;
}

STable *quay__schema_find(const quay_schema *pS, const char *zName) {
  int i;
  for (i = 0; i < pS->nTab; i++) {
    if (strcmp(pS->aTab[i].zName, zName) == 0) return &pS->aTab[i];
  }
  return NULL;
}

SCol *quay__stable_add_col(quay_schema *pS, STable *t, const char *zName) {
  SCol *c = schema_grow(pS, (void **)&t->aCol, t->nCol, &t->nColAlloc,
                 sizeof(SCol));
  if (c == NULL) return NULL;
  c->zName = quay__schema_str(pS, zName);
  if (c->zName == NULL) return NULL;
  t->nCol++;
  return c;
}

SCol *quay__stable_find_col(const STable *t, const char *z) {
  int i;
  for (i = 0; i < t->nCol; i++) {
    if (strcmp(t->aCol[i].zName, z) == 0) return &t->aCol[i];
  }
  return NULL;
}

SIdx *quay__stable_add_idx(quay_schema *pS, STable *t, const char *zName) {
  SIdx *x = schema_grow(pS, (void **)&t->aIdx, t->nIdx, &t->nIdxAlloc,
                 sizeof(SIdx));
  if (x == NULL) return NULL;
  x->zName = quay__schema_str(pS, zName);
  if (x->zName == NULL) return NULL;
  t->nIdx++;
  return x;
}

/* Append z (may be NULL) to an arena array of n strings; NULL on OOM. */
static char **schema_list_add(quay_schema *pS, char **a, int n, const char *z) {
  char **aNew = quay__arena_alloc(&pS->arena, sizeof(char *) * (size_t)(n + 1));
  if (aNew == NULL) {
    pS->oom = 1;
    return NULL;
  }
  if (n) memcpy(aNew, a, sizeof(char *) * (size_t)n);
  aNew[n] = z ? quay__schema_str(pS, z) : NULL;
  if (z && aNew[n] == NULL) return NULL;
  return aNew;
}

void quay__sidx_add_col(quay_schema *pS, SIdx *x, const char *zCol) {
  char **a;
  if (x == NULL || pS->oom) return;
  a = schema_list_add(pS, x->azCol, x->nCol, zCol);
  if (a == NULL) return;
  x->azCol = a;
  x->nCol++;
  if (zCol == NULL) x->bPartial = 1;
}

SFk *quay__stable_add_fk(quay_schema *pS, STable *t, const char *zName,
                         const char *zTable) {
  SFk *f = schema_grow(pS, (void **)&t->aFk, t->nFk, &t->nFkAlloc, sizeof(SFk));
  if (f == NULL) return NULL;
  f->zName = zName ? quay__schema_str(pS, zName) : NULL;
  f->zTable = quay__schema_str(pS, zTable);
  f->eOnDelete = f->eOnUpdate = QUAY_NO_ACTION;
  if (f->zTable == NULL || (zName && f->zName == NULL)) return NULL;
  t->nFk++;
  return f;
}

void quay__sfk_add_col(quay_schema *pS, SFk *f, const char *zCol,
                       const char *zTo) {
  char **a, **b;
  if (f == NULL || pS->oom) return;
  a = schema_list_add(pS, f->azCol, f->nCol, zCol);
  b = schema_list_add(pS, f->azTo, f->nCol, zTo);
  if (a == NULL || b == NULL) return;
  f->azCol = a;
  f->azTo = b;
  f->nCol++;
}

SCheck *quay__stable_add_check(quay_schema *pS, STable *t, const char *zName,
                               const char *zExpr) {
  SCheck *c = schema_grow(pS, (void **)&t->aCheck, t->nCheck, &t->nCheckAlloc,
                   sizeof(SCheck));
  if (c == NULL) return NULL;
  c->zName = zName ? quay__schema_str(pS, zName) : NULL;
  c->zExpr = quay__schema_str(pS, zExpr);
  if (c->zExpr == NULL) return NULL;
  t->nCheck++;
  return c;
}

static void gen_free(quay_schema *pS);

void quay_schema_free(quay_schema *pS) {
  int i;
  if (pS == NULL) return;
  gen_free(pS);
  for (i = 0; i < pS->nTab; i++) {
    STable *t = &pS->aTab[i];
    quay__free(t->aCol);
    quay__free(t->aIdx);
    quay__free(t->aFk);
    quay__free(t->aCheck);
  }
  quay__free(pS->aTab);
  quay__arena_free(&pS->arena);
  quay__free(pS);
}
/* }================================================================== */


/*
** {==================================================================
** What a type name and a DEFAULT hold
** ===================================================================
*/
/*
** Type names as SQLite and PostgreSQL report them (lower case, arguments
** and " unsigned" taken off), and the field type that holds the same
** values.  Names not listed have class 0: Quay leaves their columns'
** types alone.
*/
static const struct TypeName {
  const char *zName;
  int eType;
} aTypeName[] = {
  { "integer", QUAY_T_INTEGER }, { "int", QUAY_T_INTEGER },
  { "bigint", QUAY_T_INTEGER }, { "smallint", QUAY_T_INTEGER },
  { "tinyint", QUAY_T_INTEGER }, { "mediumint", QUAY_T_INTEGER },
  { "int2", QUAY_T_INTEGER }, { "int4", QUAY_T_INTEGER },
  { "int8", QUAY_T_INTEGER }, { "serial", QUAY_T_INTEGER },
  { "bigserial", QUAY_T_INTEGER }, { "smallserial", QUAY_T_INTEGER },
  { "real", QUAY_T_NUMBER }, { "double", QUAY_T_NUMBER },
  { "double precision", QUAY_T_NUMBER }, { "float", QUAY_T_NUMBER },
  { "float4", QUAY_T_NUMBER }, { "float8", QUAY_T_NUMBER },
  { "varchar", QUAY_T_STRING }, { "character varying", QUAY_T_STRING },
  { "nvarchar", QUAY_T_STRING }, { "varying character", QUAY_T_STRING },
  { "nchar", QUAY_T_STRING }, { "native character", QUAY_T_STRING },
  { "character", QUAY_T_STRING }, { "char", QUAY_T_STRING },
  { "text", QUAY_T_TEXT }, { "clob", QUAY_T_TEXT },
  { "boolean", QUAY_T_BOOLEAN }, { "bool", QUAY_T_BOOLEAN },
  { "timestamp", QUAY_T_DATETIME }, { "datetime", QUAY_T_DATETIME },
  { "timestamp without time zone", QUAY_T_DATETIME },
  { "timestamp with time zone", QUAY_T_DATETIME },
  { "timestamptz", QUAY_T_DATETIME },
  { "blob", QUAY_T_BLOB }, { "bytea", QUAY_T_BLOB },
  { "date", QUAY_T_DATE },
  { "numeric", QUAY_T_DECIMAL }, { "decimal", QUAY_T_DECIMAL },
  { "decimal_int", QUAY_T_DECIMAL },
  { "json", QUAY_T_JSON }, { "jsonb", QUAY_T_JSON },
  { "uuid", QUAY_T_UUID },
  /* SQLite: Quay's names for text columns of these types (TEXT affinity:
  ** the name holds "TEXT"), so that a change between them is seen */
  { "datetime_text", QUAY_T_DATETIME }, { "date_text", QUAY_T_DATE },
  { "json_text", QUAY_T_JSON }, { "uuid_text", QUAY_T_UUID },
};

void quay__type_class(const char *zType, int *peType, int *pnMax,
                      int *pnDigits, int *pnPlaces) {
  char z[96];
  size_t n = 0;
  int i, nArg = -1, nArg2 = 0, depth = 0;
  const char *p;
  *peType = 0;
  *pnMax = 0;
  *pnDigits = *pnPlaces = 0;
  if (zType == NULL) return;
  for (p = zType; *p && n + 1 < sizeof(z); p++) {
    char c = *p;
    if (c == '(') {
      if (depth++ == 0 && nArg < 0) {
        const char *q = strchr(p, ',');
        nArg = atoi(p + 1);
        if (q && (strchr(p, ')') == NULL || q < strchr(p, ')'))) {
          nArg2 = atoi(q + 1);
        }
      }
      continue;
    }
    if (c == ')') {
      if (depth > 0) depth--;
      continue;
    }
    if (depth) continue;
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c == '\t' || c == '\n') c = ' ';
    if (c == ' ' && (n == 0 || z[n - 1] == ' ')) continue;
    z[n++] = c;
  }
  while (n > 0 && z[n - 1] == ' ') n--;
  z[n] = 0;
  if (n > 9 && strcmp(z + n - 9, " unsigned") == 0) z[n - 9] = 0;
  for (i = 0; i < QUAY_ARRAYSIZE(aTypeName); i++) {
    if (strcmp(z, aTypeName[i].zName) == 0) {
      *peType = aTypeName[i].eType;
      if (*peType == QUAY_T_STRING && nArg > 0) *pnMax = nArg;
      if (*peType == QUAY_T_DECIMAL) {
        /* NUMERIC without a precision holds any number: no decimal of
        ** Quay's (digits 1..18) matches it. */
        *pnDigits = nArg > 0 ? nArg : 0;
        *pnPlaces = nArg > 0 ? nArg2 : 0;
      }
      return;
    }
  }
}

int quay__decimal_scaled_type(const char *zType) {
  int eType, nMax, nDigits, nPlaces;
  quay__type_class(zType, &eType, &nMax, &nDigits, &nPlaces);
  return eType == QUAY_T_DECIMAL && zType &&
         (strncmp(zType, "DECIMAL_INT", 11) == 0 ||
          strncmp(zType, "decimal_int", 11) == 0);
}

int quay__action_rule(const char *z) {
  if (z == NULL) return QUAY_NO_ACTION;
  if (quay__casecmp(z, "CASCADE") == 0) return QUAY_CASCADE;
  if (quay__casecmp(z, "SET NULL") == 0) return QUAY_SET_NULL;
  if (quay__casecmp(z, "SET DEFAULT") == 0) return QUAY_SET_DEFAULT;
  if (quay__casecmp(z, "RESTRICT") == 0) return QUAY_RESTRICT;
  return QUAY_NO_ACTION;
}

const char *quay__action_name(int eRule) {
  switch (eRule) {
    case QUAY_CASCADE: return "CASCADE";
    case QUAY_SET_NULL: return "SET NULL";
    case QUAY_SET_DEFAULT: return "SET DEFAULT";
    case QUAY_PROTECT:
    case QUAY_RESTRICT: return "RESTRICT";
  }
  return "NO ACTION";
}

/* Non-0 when z[0..n) is the lower-case word zWord in any case. */
static int dflt_word_is(const char *z, size_t n, const char *zWord) {
  size_t i;
  if (strlen(zWord) != n) return 0;
  for (i = 0; i < n; i++) {
    char c = z[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != zWord[i]) return 0;
  }
  return 1;
}

/* Non-0 when z[0..n) is a whole 'quoted' literal. */
static int dflt_is_quoted(const char *z, size_t n) {
  size_t i;
  if (n < 2 || z[0] != '\'' || z[n - 1] != '\'') return 0;
  for (i = 1; i < n - 1; i++) {
    if (z[i] == '\'') {
      if (z[i + 1] != '\'' || i + 1 >= n - 1) return 0;
      i++;
    }
  }
  return 1;
}

/* Non-0 when z[0..n) is a number: [+-]digits[.digits][e[+-]digits]. */
static int dflt_is_number(const char *z, size_t n) {
  size_t i = 0, nDigit = 0;
  if (i < n && (z[i] == '-' || z[i] == '+')) i++;
  while (i < n && z[i] >= '0' && z[i] <= '9') i++, nDigit++;
  if (i < n && z[i] == '.') {
    i++;
    while (i < n && z[i] >= '0' && z[i] <= '9') i++, nDigit++;
  }
  if (nDigit == 0) return 0;
  if (i < n && (z[i] == 'e' || z[i] == 'E')) {
    size_t nExp = 0;
    i++;
    if (i < n && (z[i] == '-' || z[i] == '+')) i++;
    while (i < n && z[i] >= '0' && z[i] <= '9') i++, nExp++;
    if (nExp == 0) return 0;
  }
  return i == n;
}

/* Non-0 when z[0] == '(' is matched by the ')' at z[n-1]. */
static int dflt_outer_parens(const char *z, size_t n) {
  size_t i;
  int depth = 0, inStr = 0;
  if (n < 2 || z[0] != '(' || z[n - 1] != ')') return 0;
  for (i = 0; i < n; i++) {
    if (z[i] == '\'') inStr = !inStr;
    if (inStr) continue;
    if (z[i] == '(') depth++;
    if (z[i] == ')' && --depth == 0 && i < n - 1) return 0;
  }
  return 1;
}

/*
** Take a trailing PostgreSQL cast "::type" off z[0..*pn) when what is
** left is a literal or a parenthesized expression.
*/
static int dflt_strip_cast(const char *z, size_t *pn) {
  size_t n = *pn, i;
  int inStr = 0;
  size_t iCast = 0;
  for (i = 0; i + 1 < n; i++) {
    if (z[i] == '\'') inStr = !inStr;
    if (!inStr && z[i] == ':' && z[i + 1] == ':') iCast = i;
  }
  if (iCast == 0) return 0;
  for (i = iCast + 2; i < n; i++) {
    char c = z[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == ' ' || c == '(' ||
          c == ')' || c == '"' || c == '[' || c == ']' || c == ',')) {
      return 0;
    }
  }
  *pn = iCast;
  return 1;
}

void quay__scol_default(quay_schema *pS, SCol *c) {
  const char *z = c->zDefault;
  size_t n;
  int changed = 1;
  c->eDflt = DFLT_NONE;
  c->zDfltVal = NULL;
  if (z == NULL) return;
  while (*z == ' ') z++;
  n = strlen(z);
  while (n > 0 && z[n - 1] == ' ') n--;
  while (changed) {
    changed = 0;
    if (dflt_outer_parens(z, n)) {
      z++;
      n -= 2;
      changed = 1;
    }
    if (dflt_strip_cast(z, &n)) changed = 1;
  }
  if (n == 0 || dflt_word_is(z, n, "null")) return;
  if (dflt_is_quoted(z, n)) {
    char *v = quay__arena_alloc(&pS->arena, n);
    size_t i, k = 0;
    if (v == NULL) {
      pS->oom = 1;
      return;
    }
    for (i = 1; i < n - 1; i++) {
      v[k++] = z[i];
      if (z[i] == '\'') i++;
    }
    v[k] = 0;
    c->eDflt = DFLT_VALUE;
    c->zDfltVal = v;
    return;
  }
  if (dflt_is_number(z, n) || dflt_word_is(z, n, "true") ||
      dflt_word_is(z, n, "false")) {
    char *v = quay__arena_strdup(&pS->arena, z, n);
    size_t i;
    if (v == NULL) {
      pS->oom = 1;
      return;
    }
    for (i = 0; i < n; i++) {
      if (v[i] >= 'A' && v[i] <= 'Z') v[i] = (char)(v[i] - 'A' + 'a');
    }
    c->eDflt = DFLT_VALUE;
    c->zDfltVal = v;
    return;
  }
  c->eDflt = DFLT_EXPR;
}

static int schema_cmp_table(const void *a, const void *b) {
  return strcmp(((const STable *)a)->zName, ((const STable *)b)->zName);
}

static int gen_models(quay_schema *pS);

int quay__schema_finish(quay_schema *pS, quay_err *pErr) {
  int i, k;
  for (i = 0; i < pS->nTab && !pS->oom; i++) {
    STable *t = &pS->aTab[i];
    for (k = 0; k < t->nCol; k++) {
      SCol *c = &t->aCol[k];
      quay__type_class(c->zType, &c->eType, &c->nMax, &c->nDigits,
                       &c->nPlaces);
      if (c->eType == QUAY_T_DECIMAL && pS->pDia->bScaledDecimal &&
          !quay__decimal_scaled_type(c->zType)) {
        /* SQLite keeps a NUMERIC/DECIMAL column's values as numbers;
        ** only Quay's DECIMAL_INT holds scaled integers. */
        c->eType = QUAY_T_NUMBER;
        c->nDigits = c->nPlaces = 0;
      }
      if (c->iPk) c->bNull = 0;
      quay__scol_default(pS, c);
      if (c->eDflt == DFLT_EXPR && c->iPk && c->zDefault &&
          strstr(c->zDefault, "nextval(")) {
        c->bAuto = 1;                 /* serial */
      }
    }
  }
  if (pS->nTab > 1) {
    qsort(pS->aTab, (size_t)pS->nTab, sizeof(STable), schema_cmp_table);
  }
  if (!pS->oom && gen_models(pS)) pS->oom = 1;
  return pS->oom ? quay__oom(pErr) : QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** db:inspect()
** ===================================================================
*/
int quay_db_inspect(quay_db *pDb, quay_schema **ppS, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || ppS == NULL) {
    if (ppS != NULL) *ppS = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_inspect: %s is NULL", pDb ==
        NULL ? "pDb" : "ppSchema");
  }
  quay_schema *pS;
  int rc;
  *ppS = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  pS = quay__schema_new(pDb->pDialect);
  if (pS == NULL) return quay__oom(pErr);
  rc = pDb->pDialect->xInspect(pDb, pS, pErr);
  if (rc == QUAY_OK) rc = quay__schema_finish(pS, pErr);
  if (rc) {
    quay_schema_free(pS);
    return rc;
  }
  *ppS = pS;
  return QUAY_OK;
}

int quay_schema_table_count(const quay_schema *pS) {
  return pS ? pS->nTab : 0;
}

static const STable *schema_table_at(const quay_schema *pS, int i) {
  return (i >= 0 && i < pS->nTab) ? &pS->aTab[i] : NULL;
}

int quay_schema_table(const quay_schema *pS, int i, quay_table_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  const STable *t = schema_table_at(pS, i);
  if (t == NULL) return QUAY_EMISUSE;
  p->zName = t->zName;
  p->nColumn = t->nCol;
  p->nIndex = t->nIdx;
  p->nForeignKey = t->nFk;
  p->nCheck = t->nCheck;
  return QUAY_OK;
}

int quay_schema_column(const quay_schema *pS, int iTab, int i,
                       quay_column_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  const STable *t = schema_table_at(pS, iTab);
  const SCol *c;
  if (t == NULL || i < 0 || i >= t->nCol) return QUAY_EMISUSE;
  c = &t->aCol[i];
  p->zName = c->zName;
  p->zType = c->zType ? c->zType : "";
  p->bNull = c->bNull;
  p->zDefault = c->zDefault;
  p->iPk = c->iPk;
  p->bAuto = c->bAuto;
  return QUAY_OK;
}

int quay_schema_index(const quay_schema *pS, int iTab, int i,
                      quay_index_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  const STable *t = schema_table_at(pS, iTab);
  const SIdx *x;
  if (t == NULL || i < 0 || i >= t->nIdx) return QUAY_EMISUSE;
  x = &t->aIdx[i];
  p->zName = x->zName;
  p->azColumn = (const char *const *)x->azCol;
  p->nColumn = x->nCol;
  p->bUnique = x->bUnique;
  p->bConstraint = x->bConstraint;
  return QUAY_OK;
}

int quay_schema_foreign_key(const quay_schema *pS, int iTab, int i,
                            quay_fkey_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  const STable *t = schema_table_at(pS, iTab);
  const SFk *f;
  if (t == NULL || i < 0 || i >= t->nFk) return QUAY_EMISUSE;
  f = &t->aFk[i];
  p->zName = f->zName;
  p->azColumn = (const char *const *)f->azCol;
  p->azTo = (const char *const *)f->azTo;
  p->nColumn = f->nCol;
  p->zTable = f->zTable;
  p->zOnDelete = quay__action_name(f->eOnDelete);
  p->zOnUpdate = quay__action_name(f->eOnUpdate);
  return QUAY_OK;
}

const char *quay_schema_check(const quay_schema *pS, int iTab, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL) {
    return NULL;
  }
  const STable *t = schema_table_at(pS, iTab);
  if (t == NULL || i < 0 || i >= t->nCheck) return NULL;
  return t->aCheck[i].zExpr;
}
/* }================================================================== */


/*
** {==================================================================
** Models for `quay inspect`
** ===================================================================
*/
struct GenModel {
  STable *pTab;
  char *zName;
  int bDefaultTable;
  int isSkipped;
  char *zNote;
  quay_field_spec *aField; int nField, nFieldAlloc;
  quay_rel_spec *aRel; int nRel, nRelAlloc;
  char ***aazUnique; int *anUnique; int nUnique, nUniqueAlloc;
  char ***aazIndex; int *anIndex; int nIndex, nIndexAlloc;  /* composite */
  char **azTaken; int nTaken, nTakenAlloc;   /* names in use (any case) */
  char **azColName;         /* per column: its field or relation name */
  int *aiColRel;            /* per column: relation index, or -1 */
  int iThroughFk[2];        /* through model: its two FK indexes, else -1 */
  int bPairJoin;            /* skipped: a join table keyed by its pair */
};

static void gen_free(quay_schema *pS) {
  int i;
  for (i = 0; i < pS->nGen; i++) {
    GenModel *g = &pS->aGen[i];
    quay__free(g->aField);
    quay__free(g->aRel);
    quay__free(g->aazUnique);
    quay__free(g->anUnique);
    quay__free(g->aazIndex);
    quay__free(g->anIndex);
    quay__free(g->azTaken);
  }
  quay__free(pS->aGen);
  pS->aGen = NULL;
  pS->nGen = 0;
}

/* Non-0 when name z is used by model g (compared without case). */
static int gen_taken(const GenModel *g, const char *z) {
  int i;
  for (i = 0; i < g->nTaken; i++) {
    if (quay__casecmp(g->azTaken[i], z) == 0) return 1;
  }
  return 0;
}

static void gen_take(quay_schema *pS, GenModel *g, char *z) {
  char **a;
  if (z == NULL) return;
  if (g->nTaken >= g->nTakenAlloc) {
    int nNew = g->nTakenAlloc ? g->nTakenAlloc * 2 : 16;
    a = quay__realloc(g->azTaken, sizeof(char *) * (size_t)nNew);
    if (a == NULL) {
      pS->oom = 1;
      return;
    }
    g->azTaken = a;
    g->nTakenAlloc = nNew;
  }
  g->azTaken[g->nTaken++] = z;
}

/* Record methods a field or relation may not be named after. */
static int gen_reserved_name(const char *z) {
  return strcmp(z, "save") == 0 || strcmp(z, "delete") == 0 ||
         strcmp(z, "refresh") == 0 || strcmp(z, "to_table") == 0 ||
         strcmp(z, "pivot") == 0;
}

/*
** A usable name from z: letters, digits and single underscores, starting
** with a letter or underscore, at most 50 bytes (room for a suffix).
*/
static void gen_sanitize(const char *z, char *zOut, size_t nOut) {
  size_t n = 0;
  if (nOut > 51) nOut = 51;
  for (; *z && n + 1 < nOut; z++) {
    char c = *z;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9');
    if (!ok) c = '_';
    if (c == '_' && n > 0 && zOut[n - 1] == '_') continue;
    if (n == 0 && c >= '0' && c <= '9') {
      zOut[n++] = 'c';
      if (n + 1 >= nOut) break;
      zOut[n++] = '_';
      if (n + 1 >= nOut) break;
    }
    zOut[n++] = c;
  }
  zOut[n] = 0;
  if (n == 0) snprintf(zOut, nOut, "col");
}

/*
** A name for model g from the wish zWant, made unique: zWant itself when
** it is a free, usable name (or, with zOwnCol, the column's own name),
** else with "_2", "_3", ...  Takes the name.  Arena string.
*/
static char *gen_name(quay_schema *pS, GenModel *g, const char *zWant,
                      const char *zOwnCol) {
  char zBase[64], zTry[80];
  int k;
  if (zOwnCol && strcmp(zWant, zOwnCol) == 0 && quay__is_name(zWant) &&
      !gen_reserved_name(zWant)) {
    char *z = quay__schema_str(pS, zWant);
    gen_take(pS, g, z);
    return z;
  }
  gen_sanitize(zWant, zBase, sizeof(zBase));
  if (gen_reserved_name(zBase)) strcat(zBase, "_");
  snprintf(zTry, sizeof(zTry), "%s", zBase);
  for (k = 2; gen_taken(g, zTry) || !quay__is_name(zTry); k++) {
    snprintf(zTry, sizeof(zTry), "%s_%d", zBase, k);
    if (k > 1000) break;
  }
  {
    char *z = quay__schema_str(pS, zTry);
    gen_take(pS, g, z);
    return z;
  }
}

/* CamelCase singular model name of a table (reference.md "quay inspect"). */
static void gen_model_name(const char *zTable, char *zOut, size_t nOut) {
  size_t n = 0;
  int up = 1;
  const char *z;
  for (z = zTable; *z && n + 1 < nOut && n < 60; z++) {
    char c = *z;
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');
    if (!alnum) {
      up = 1;
      continue;
    }
    if (n == 0 && c >= '0' && c <= '9') zOut[n++] = 'T';
    if (up && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    up = 0;
    zOut[n++] = c;
  }
  zOut[n] = 0;
  if (n == 0) {
    snprintf(zOut, nOut, "Table");
    return;
  }
  if (n > 3 && strcmp(zOut + n - 3, "ies") == 0) {
    strcpy(zOut + n - 3, "y");
  } else if (n > 4 && strcmp(zOut + n - 4, "sses") == 0) {
    zOut[n - 2] = 0;
  } else if (n > 2 && zOut[n - 1] == 's' && zOut[n - 2] != 's') {
    zOut[n - 1] = 0;
  }
}

/* The index of the model of table zTable, or -1. */
static int gen_find(const quay_schema *pS, const char *zTable) {
  int i;
  for (i = 0; i < pS->nGen; i++) {
    if (strcmp(pS->aGen[i].pTab->zName, zTable) == 0) return i;
  }
  return -1;
}

/* The single-column non-partial index of column zCol: unique or not. */
static int gen_has_index(const STable *t, const char *zCol, int bUnique) {
  int i;
  for (i = 0; i < t->nIdx; i++) {
    const SIdx *x = &t->aIdx[i];
    if (x->nCol == 1 && !x->bPartial && x->azCol[0] &&
        !x->bUnique == !bUnique && strcmp(x->azCol[0], zCol) == 0) {
      return 1;
    }
  }
  return 0;
}

/* The single-column foreign key of column zCol to a declared model, or -1. */
static int gen_col_fk(const quay_schema *pS, const STable *t,
                      const char *zCol) {
  int i;
  for (i = 0; i < t->nFk; i++) {
    const SFk *f = &t->aFk[i];
    int iT;
    if (f->nCol != 1 || strcmp(f->azCol[0], zCol) != 0) continue;
    iT = gen_find(pS, f->zTable);
    if (iT < 0 || pS->aGen[iT].isSkipped) continue;
    if (quay__stable_find_col(pS->aGen[iT].pTab, f->azTo[0]) == NULL) continue;
    return i;
  }
  return -1;
}

/* The primary key column of a table with exactly one, else NULL. */
static const SCol *gen_single_pk(const STable *t) {
  const SCol *p = NULL;
  int i;
  for (i = 0; i < t->nCol; i++) {
    if (t->aCol[i].iPk) {
      if (p) return NULL;
      p = &t->aCol[i];
    }
  }
  return p;
}

static void gen_note(quay_schema *pS, GenModel *g, const char *zMsg) {
  Str s;
  quay__str_init(&s);
  if (g->zNote) {
    quay__str_cat(&s, g->zNote);
    quay__str_cat(&s, "; ");
  }
  quay__str_cat(&s, zMsg);
  g->zNote = s.oom ? g->zNote : quay__schema_str(pS, s.z);
  if (s.oom) pS->oom = 1;
  quay__str_free(&s);
}

/* A typed default value from a column's DEFAULT, when it has one. */
static int gen_default(quay_schema *pS, const SCol *c, int eType,
                       quay_value *v) {
  if (c->eDflt != DFLT_VALUE || c->zDfltVal == NULL) return 0;
  switch (eType) {
    case QUAY_T_INTEGER: {
      char *zEnd;
      long long x = strtoll(c->zDfltVal, &zEnd, 10);
      if (*zEnd) return 0;
      v->type = QUAY_INT;
      v->u.i = x;
      return 1;
    }
    case QUAY_T_NUMBER:
      v->type = QUAY_REAL;
      v->u.r = strtod(c->zDfltVal, NULL);
      return 1;
    case QUAY_T_BOOLEAN:
      v->type = QUAY_BOOL;
      v->u.b = strcmp(c->zDfltVal, "true") == 0 ||
               strcmp(c->zDfltVal, "1") == 0 || strcmp(c->zDfltVal, "t") == 0;
      return 1;
    case QUAY_T_STRING:
      if (c->nMax > 0 && quay__utf8_len(c->zDfltVal, strlen(c->zDfltVal)) >
                             c->nMax) {
        return 0;
      }
      /* fall through */
    case QUAY_T_TEXT:
      v->type = QUAY_TEXT;
      v->u.z = c->zDfltVal;
      v->n = strlen(c->zDfltVal);
      return 1;
    case QUAY_T_DATETIME:
      if (!quay__is_datetime(c->zDfltVal, strlen(c->zDfltVal))) return 0;
      v->type = QUAY_TEXT;
      v->u.z = c->zDfltVal;
      v->n = strlen(c->zDfltVal);
      return 1;
    case QUAY_T_DECIMAL: {
      /* the text of the decimal; a scaled integer where the dialect keeps
      ** decimals so (ddl.c writes the DEFAULT that way) */
      char zBuf[64], *zEnd;
      const char *z = c->zDfltVal;
      size_t n = strlen(z);
      if (pS->pDia->bScaledDecimal) {
        long long x = strtoll(z, &zEnd, 10);
        if (*zEnd || zEnd == z) return 0;
        n = quay__decimal_format((int64_t)x, c->nPlaces, zBuf);
        z = quay__arena_strdup(&pS->arena, zBuf, n);
        if (z == NULL) {
          pS->oom = 1;
          return 0;
        }
      }
      v->type = QUAY_DECIMAL;
      v->u.z = z;
      v->n = n;
      return 1;
    }
  }
  return 0;
}

/* Pass 1: one model per table, its name, and whether Quay can model it. */
static void gen_pass_models(quay_schema *pS) {
  int i, k;
  for (i = 0; i < pS->nTab && !pS->oom; i++) {
    STable *t = &pS->aTab[i];
    GenModel *g = &pS->aGen[i];
    char zName[64], zTry[80];
    char *zSnake;
    g->pTab = t;
    g->iThroughFk[0] = g->iThroughFk[1] = -1;
    gen_model_name(t->zName, zName, sizeof(zName));
    snprintf(zTry, sizeof(zTry), "%s", zName);
    for (k = 2;; k++) {
      int j, clash = 0;
      for (j = 0; j < i; j++) {
        if (strcmp(pS->aGen[j].zName, zTry) == 0) clash = 1;
      }
      if (!clash) break;
      snprintf(zTry, sizeof(zTry), "%s%d", zName, k);
    }
    g->zName = quay__schema_str(pS, zTry);
    zSnake = quay__snake_case(zTry);
    if (zSnake == NULL) {
      pS->oom = 1;
      return;
    }
    g->bDefaultTable = strlen(zSnake) + 1 == strlen(t->zName) &&
                       strncmp(zSnake, t->zName, strlen(zSnake)) == 0 &&
                       t->zName[strlen(zSnake)] == 's';
    quay__free(zSnake);
    g->azColName = quay__arena_alloc(&pS->arena,
                                     sizeof(char *) * (size_t)(t->nCol + 1));
    g->aiColRel = quay__arena_alloc(&pS->arena,
                                    sizeof(int) * (size_t)(t->nCol + 1));
    if (g->azColName == NULL || g->aiColRel == NULL) {
      pS->oom = 1;
      return;
    }
    for (k = 0; k < t->nCol; k++) {
      g->azColName[k] = NULL;
      g->aiColRel[k] = -1;
      gen_take(pS, g, t->aCol[k].zName);
    }
    if (gen_single_pk(t) == NULL) {
      Str s;
      int nPk = 0;
      for (k = 0; k < t->nCol; k++) nPk += t->aCol[k].iPk > 0;
      quay__str_init(&s);
      quay__str_printf(&s, "table %s has %s: a Quay model has one key "
                       "column, so it is not declared", t->zName,
                       nPk ? "a composite primary key" : "no primary key");
      g->isSkipped = 1;
      g->zNote = s.oom ? NULL : quay__schema_str(pS, s.z);
      quay__str_free(&s);
    }
  }
}

/* Is model g a join table (reference.md): two FKs, at most an auto key
** besides, and a unique pair?  Sets g->iThroughFk. */
static void gen_detect_through(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  const SCol *pk = gen_single_pk(t);
  int aFk[2], nFk = 0, i;
  if (g->isSkipped || t->nFk != 2) return;
  for (i = 0; i < t->nCol; i++) {
    const SCol *c = &t->aCol[i];
    int iFk = gen_col_fk(pS, t, c->zName);
    if (iFk >= 0 && !c->iPk) {
      if (nFk < 2) aFk[nFk] = iFk;
      nFk++;
    } else if (!(c == pk && c->bAuto && c->eType == QUAY_T_INTEGER)) {
      return;
    }
  }
  if (nFk != 2) return;
  for (i = 0; i < t->nIdx; i++) {
    const SIdx *x = &t->aIdx[i];
    const char *a = t->aFk[aFk[0]].azCol[0], *b = t->aFk[aFk[1]].azCol[0];
    if (!x->bUnique || x->bPartial || x->nCol != 2) continue;
    if ((strcmp(x->azCol[0], a) == 0 && strcmp(x->azCol[1], b) == 0) ||
        (strcmp(x->azCol[0], b) == 0 && strcmp(x->azCol[1], a) == 0)) {
      g->iThroughFk[0] = aFk[0];
      g->iThroughFk[1] = aFk[1];
      return;
    }
  }
}

/*
** Is skipped model g a join table keyed by its pair: two columns, the
** primary key, each a foreign key to a declared model?  A many_to_many
** with table, source_key and target_key reads and writes it as it is, and
** migrate leaves it alone (migrate.c diff_pair_key).  Sets g->iThroughFk
** (the key's first column first) and g->bPairJoin.
*/
static void gen_detect_pair(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  int a, b;
  Str s;
  if (!g->isSkipped || t->nCol != 2 || t->nFk != 2 ||
      t->aCol[0].iPk == 0 || t->aCol[1].iPk == 0) {
    return;
  }
  a = gen_col_fk(pS, t, t->aCol[0].zName);
  b = gen_col_fk(pS, t, t->aCol[1].zName);
  if (a < 0 || b < 0 || a == b) return;
  if (t->aCol[0].iPk > t->aCol[1].iPk) {
    int k = a;
    a = b;
    b = k;
  }
  g->iThroughFk[0] = a;
  g->iThroughFk[1] = b;
  g->bPairJoin = 1;
  quay__str_init(&s);
  quay__str_printf(&s, "table %s is a join table keyed by its pair: a "
                   "many_to_many of %s names it (table = \"%s\")",
                   t->zName,
                   pS->aGen[gen_find(pS, t->aFk[a].zTable)].zName, t->zName);
  g->zNote = s.oom ? g->zNote : quay__schema_str(pS, s.z);
  if (s.oom) pS->oom = 1;
  quay__str_free(&s);
}

/* Pass 2: fields and forward relations of model g. */
static void gen_pass_columns(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  const SCol *pk = gen_single_pk(t);
  int i;
  if (g->isSkipped) return;
  for (i = 0; i < t->nCol && !pS->oom; i++) {
    const SCol *c = &t->aCol[i];
    int iFk = c->iPk ? -1 : gen_col_fk(pS, t, c->zName);
    if (iFk >= 0) {
      const SFk *f = &t->aFk[iFk];
      GenModel *pT = &pS->aGen[gen_find(pS, f->zTable)];
      quay_rel_spec *r = schema_grow(pS, (void **)&g->aRel, g->nRel,
                                     &g->nRelAlloc, sizeof(quay_rel_spec));
      const SCol *pTk = quay__stable_find_col(pT->pTab, f->azTo[0]);
      const SCol *pTpk = gen_single_pk(pT->pTab);
      char zWant[72];
      size_t n = strlen(c->zName);
      int bUnique = gen_has_index(t, c->zName, 1);
      if (r == NULL) return;
      if (n > 3 && strcmp(c->zName + n - 3, "_id") == 0) {
        snprintf(zWant, sizeof(zWant), "%.*s", (int)(n - 3), c->zName);
      } else {
        snprintf(zWant, sizeof(zWant), "%.60s_rel", c->zName);
      }
      r->zName = gen_name(pS, g, zWant, NULL);
      r->eKind = bUnique ? QUAY_R_ONE_TO_ONE : QUAY_R_BELONGS_TO;
      r->zTarget = pT->zName;
      r->rSeq = i;
      if (r->zName == NULL) return;
      n = strlen(r->zName);
      if (strlen(c->zName) != n + 3 || strncmp(c->zName, r->zName, n) ||
          strcmp(c->zName + n, "_id")) {
        r->zColumn = c->zName;
      }
      if (c->bNull) r->mFlags |= QUAY_F_NULL;
      if (!bUnique && !gen_has_index(t, c->zName, 0)) {
        r->mFlags |= QUAY_F_NO_INDEX;
      }
      r->eOnDelete = f->eOnDelete;
      if (r->eOnDelete == QUAY_SET_NULL && !c->bNull) {
        r->eOnDelete = QUAY_NO_ACTION;
      }
      r->eOnUpdate = f->eOnUpdate;
      if (r->eOnUpdate == QUAY_SET_NULL && !c->bNull) {
        r->eOnUpdate = QUAY_NO_ACTION;
      }
      if (pTk && pTk != pTpk) {
        /* to_field: the target's field for that column (named later). */
        r->zToField = pTk->zName;
      }
      if (gen_default(pS, c, pTk ? pTk->eType : QUAY_T_INTEGER, &r->dflt)) {
        r->mFlags |= QUAY_F_DEFAULT;
      }
      if ((r->eOnDelete == QUAY_SET_DEFAULT ||
           r->eOnUpdate == QUAY_SET_DEFAULT) && !(r->mFlags & QUAY_F_DEFAULT)) {
        if (r->eOnDelete == QUAY_SET_DEFAULT) r->eOnDelete = QUAY_NO_ACTION;
        if (r->eOnUpdate == QUAY_SET_DEFAULT) r->eOnUpdate = QUAY_NO_ACTION;
      }
      g->azColName[i] = (char *)r->zName;
      g->aiColRel[i] = g->nRel;
      g->nRel++;
    } else {
      quay_field_spec *s;
      int eType = c->eType;
      if (c == pk && c->bAuto && c->eType == QUAY_T_INTEGER &&
          strcmp(c->zName, "id") == 0) {
        g->azColName[i] = "id";      /* the implicit id */
        continue;
      }
      s = schema_grow(pS, (void **)&g->aField, g->nField, &g->nFieldAlloc,
               sizeof(quay_field_spec));
      if (s == NULL) return;
      s->zName = gen_name(pS, g, c->zName, c->zName);
      if (s->zName == NULL) return;
      if (strcmp(s->zName, c->zName) != 0) s->zColumn = c->zName;
      s->rSeq = i;
      if (eType == 0) {
        Str m;
        quay__str_init(&m);
        quay__str_printf(&m, "column %s: type %s has no Quay field type; "
                         "declared as text (migrate leaves its type alone)",
                         c->zName, c->zType ? c->zType : "?");
        if (!m.oom) gen_note(pS, g, m.z);
        quay__str_free(&m);
        eType = QUAY_T_TEXT;
      }
      if (eType == QUAY_T_DECIMAL &&
          (c->nDigits < 1 || c->nDigits > 18 || c->nPlaces < 0 ||
           c->nPlaces > c->nDigits)) {
        Str m;
        quay__str_init(&m);
        quay__str_printf(&m, "column %s: %s is wider than quay.decimal "
                         "(1 to 18 digits); declared as number (migrate "
                         "leaves its type alone)", c->zName,
                         c->zType ? c->zType : "?");
        if (!m.oom) gen_note(pS, g, m.z);
        quay__str_free(&m);
        eType = QUAY_T_NUMBER;
      }
      if (c == pk) {
        if (c->bAuto && eType == QUAY_T_INTEGER) {
          eType = QUAY_T_ID;
        } else {
          s->mFlags |= QUAY_F_PK;
        }
      } else {
        if (c->bNull) s->mFlags |= QUAY_F_NULL;
        if (gen_has_index(t, c->zName, 1)) {
          s->mFlags |= QUAY_F_UNIQUE;
        } else if (gen_has_index(t, c->zName, 0)) {
          s->mFlags |= QUAY_F_INDEX;
        }
        if (gen_default(pS, c, eType, &s->dflt)) s->mFlags |= QUAY_F_DEFAULT;
      }
      if (!(quay_type_flags(eType) & QUAY_TF_KEY)) {
        s->mFlags &= ~(unsigned)QUAY_F_PK;   /* cannot be a key */
      }
      s->eType = eType;
      s->nMax = eType == QUAY_T_STRING ? c->nMax : 0;
      if (eType == QUAY_T_DECIMAL) {
        s->nDigits = c->nDigits;
        s->nPlaces = c->nPlaces;
      }
      if (c != pk) quay__rules_inspect(pS, t, c, eType, s);  /* choices.. */
      g->azColName[i] = (char *)s->zName;
      g->nField++;
    }
  }
}

/* The reverse accessor name of relation r of model g on model pT. */
static const char *gen_reverse(quay_schema *pS, GenModel *g,
                               quay_rel_spec *r, GenModel *pT, int toMany) {
  char zDefault[80], zWant[80];
  char *zSnake = quay__snake_case(g->zName);
  const char *zName = NULL;
  if (zSnake == NULL) {
    pS->oom = 1;
    return NULL;
  }
  snprintf(zDefault, sizeof(zDefault), "%.60s%s", zSnake,
           toMany ? "_set" : "");
  if (!gen_taken(pT, zDefault) && strlen(zDefault) <= 63) {
    char *z = quay__schema_str(pS, zDefault);
    gen_take(pS, pT, z);
    zName = z;
  } else {
    snprintf(zWant, sizeof(zWant), "%.30s_%.24s%s", zSnake, r->zName,
             toMany ? "_set" : "");
    r->zRelatedName = gen_name(pS, pT, zWant, NULL);
    zName = r->zRelatedName;
  }
  quay__free(zSnake);
  return zName;
}

/* Append the name list az (n names) to a model's unique_together or
** indexes (the lists *paaz / *pan, *pnSet used of *pnAlloc). */
static void gen_add_set(quay_schema *pS, char ****paaz, int **pan, int *pnSet,
                        int *pnAlloc, char **az, int n) {
  int nAlloc = *pnAlloc;
  if (schema_grow(pS, (void **)paaz, *pnSet, pnAlloc, sizeof(char **)) ==
      NULL) {
    return;
  }
  if (*pnAlloc != nAlloc || *pan == NULL) {
    int *a = quay__realloc(*pan, sizeof(int) * (size_t)*pnAlloc);
    if (a == NULL) {
      pS->oom = 1;
      return;
    }
    *pan = a;
  }
  (*paaz)[*pnSet] = az;
  (*pan)[*pnSet] = n;
  (*pnSet)++;
}

/* Pass 3: reverse names, to_field names, unique sets and composite
** indexes, many_to_many. */
static void gen_pass_relations(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  int i, k;
  if (g->isSkipped) return;
  for (i = 0; i < g->nRel && !pS->oom; i++) {
    quay_rel_spec *r = &g->aRel[i];
    GenModel *pT = NULL;
    for (k = 0; k < pS->nGen; k++) {
      if (strcmp(pS->aGen[k].zName, r->zTarget) == 0) pT = &pS->aGen[k];
    }
    if (QUAY_NEVER(pT == NULL)) continue;
    if (r->zToField) {
      for (k = 0; k < pT->pTab->nCol; k++) {
        if (strcmp(pT->pTab->aCol[k].zName, r->zToField) == 0) {
          r->zToField = pT->azColName[k];
        }
      }
    }
    (void)gen_reverse(pS, g, r, pT, r->eKind == QUAY_R_BELONGS_TO);
  }
  for (i = 0; i < t->nIdx && !pS->oom; i++) {
    const SIdx *x = &t->aIdx[i];
    char **az;
    if (x->bPartial || x->nCol < 2) continue;
    az = quay__arena_alloc(&pS->arena, sizeof(char *) * (size_t)x->nCol);
    if (az == NULL) {
      pS->oom = 1;
      return;
    }
    for (k = 0; k < x->nCol; k++) {
      const SCol *c = x->azCol[k] ? quay__stable_find_col(t, x->azCol[k])
                                  : NULL;
      az[k] = c ? g->azColName[c - t->aCol] : NULL;
      if (az[k] == NULL) break;
    }
    if (k < x->nCol) continue;        /* an expression, or a skipped column */
    if (x->bUnique) {
      gen_add_set(pS, &g->aazUnique, &g->anUnique, &g->nUnique,
                  &g->nUniqueAlloc, az, x->nCol);
    } else {
      gen_add_set(pS, &g->aazIndex, &g->anIndex, &g->nIndex,
                  &g->nIndexAlloc, az, x->nCol);
    }
  }
}

/* Pass 4: a join table's many_to_many on each model it joins (reference.md
** "quay inspect"): the one it starts from, and on the other the name its
** reverse accessor would have had, both with skip_reverse. */
/* Fill r, just grown at the end of pFrom's relations, as the many-to-many
** from pFrom to pTo through g (its keys zSrc to pFrom, zTgt to pTo). */
static void gen_m2m_rel(quay_rel_spec *r, GenModel *pFrom, GenModel *pTo,
                        const GenModel *g, const char *zSrc,
                        const char *zTgt) {
  r->eKind = QUAY_R_MANY_TO_MANY;
  r->zTarget = pTo->zName;
  r->zThrough = g->zName;
  r->zSourceKey = zSrc;
  r->zTargetKey = zTgt;
  r->mFlags |= QUAY_F_SKIP_REVERSE;
  r->rSeq = 1e6 + pFrom->nRel;
  pFrom->nRel++;
}

/* The many_to_many of a join table keyed by its pair (gen_detect_pair), on
** the model its first key column refers to, as an automatic one: table,
** source_key and target_key name the table and its columns. */
static void gen_pass_pair(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  const SFk *a, *b;
  GenModel *pA, *pB;
  quay_rel_spec *r;
  char zWant[80];
  size_t n;
  if (!g->bPairJoin) return;
  a = &t->aFk[g->iThroughFk[0]];
  b = &t->aFk[g->iThroughFk[1]];
  pA = &pS->aGen[gen_find(pS, a->zTable)];
  pB = &pS->aGen[gen_find(pS, b->zTable)];
  r = schema_grow(pS, (void **)&pA->aRel, pA->nRel, &pA->nRelAlloc,
                  sizeof(quay_rel_spec));
  if (r == NULL) return;
  n = strlen(pA->pTab->zName);
  if (strncmp(t->zName, pA->pTab->zName, n) == 0 && t->zName[n] == '_' &&
      t->zName[n + 1]) {
    snprintf(zWant, sizeof(zWant), "%.70s", t->zName + n + 1);
  } else {
    snprintf(zWant, sizeof(zWant), "%.70s", pB->pTab->zName);
  }
  r->zName = gen_name(pS, pA, zWant, NULL);
  r->eKind = QUAY_R_MANY_TO_MANY;
  r->zTarget = pB->zName;
  r->zTable = t->zName;
  r->zSourceKey = a->azCol[0];
  r->zTargetKey = b->azCol[0];
  r->rSeq = 1e6 + pA->nRel;
  pA->nRel++;
  if (r->zName == NULL) return;
  (void)gen_reverse(pS, pA, r, pB, 1);
}

static void gen_pass_m2m(quay_schema *pS, GenModel *g) {
  const STable *t = g->pTab;
  const SFk *a, *b;
  GenModel *pA, *pB;
  quay_rel_spec *r, *ra = NULL, *rb = NULL;
  const char *zKeyA, *zKeyB, *zBack;
  char zWant[80];
  size_t n;
  int i;
  if (g->isSkipped || g->iThroughFk[0] < 0) return;
  a = &t->aFk[g->iThroughFk[0]];
  b = &t->aFk[g->iThroughFk[1]];
  pA = &pS->aGen[gen_find(pS, a->zTable)];
  pB = &pS->aGen[gen_find(pS, b->zTable)];
  for (i = 0; i < g->nRel; i++) {
    const char *zCol = g->aRel[i].zColumn;
    const char *zName = g->aRel[i].zName;
    char zDef[80];
    snprintf(zDef, sizeof(zDef), "%s_id", zName);
    if (zCol == NULL) zCol = zDef;
    if (strcmp(zCol, a->azCol[0]) == 0) ra = &g->aRel[i];
    if (strcmp(zCol, b->azCol[0]) == 0) rb = &g->aRel[i];
  }
  if (ra == NULL || rb == NULL) return;
  zKeyA = ra->zName;            /* ra and rb may move as relations grow */
  zKeyB = rb->zName;
  r = schema_grow(pS, (void **)&pA->aRel, pA->nRel, &pA->nRelAlloc,
           sizeof(quay_rel_spec));
  if (r == NULL) return;
  /* "auth_user_groups" between auth_user and auth_group: "groups". */
  n = strlen(pA->pTab->zName);
  if (strncmp(t->zName, pA->pTab->zName, n) == 0 && t->zName[n] == '_' &&
      t->zName[n + 1]) {
    snprintf(zWant, sizeof(zWant), "%.70s", t->zName + n + 1);
  } else {
    snprintf(zWant, sizeof(zWant), "%.70s", pB->pTab->zName);
  }
  r->zName = gen_name(pS, pA, zWant, NULL);
  gen_m2m_rel(r, pA, pB, g, zKeyA, zKeyB);
  if (r->zName == NULL) return;
  zBack = gen_reverse(pS, pA, r, pB, 1);
  r->zRelatedName = NULL;
  if (zBack == NULL) return;
  r = schema_grow(pS, (void **)&pB->aRel, pB->nRel, &pB->nRelAlloc,
                  sizeof(quay_rel_spec));
  if (r == NULL) return;
  r->zName = zBack;
  gen_m2m_rel(r, pB, pA, g, zKeyB, zKeyA);
}

/* Build pS->aGen from the tables. */
static int gen_models(quay_schema *pS) {
  int i;
  gen_free(pS);
  if (pS->nTab == 0) return QUAY_OK;
  pS->aGen = quay__calloc(sizeof(GenModel) * (size_t)pS->nTab);
  if (pS->aGen == NULL) return QUAY_ENOMEM;
  pS->nGen = pS->nTab;
  gen_pass_models(pS);
  for (i = 0; i < pS->nGen && !pS->oom; i++) {
    gen_detect_through(pS, &pS->aGen[i]);
    gen_detect_pair(pS, &pS->aGen[i]);
  }
  for (i = 0; i < pS->nGen && !pS->oom; i++) {
    gen_pass_columns(pS, &pS->aGen[i]);
  }
  for (i = 0; i < pS->nGen && !pS->oom; i++) {
    gen_pass_relations(pS, &pS->aGen[i]);
  }
  for (i = 0; i < pS->nGen && !pS->oom; i++) {
    gen_pass_m2m(pS, &pS->aGen[i]);
    gen_pass_pair(pS, &pS->aGen[i]);
  }
  return pS->oom ? QUAY_ENOMEM : QUAY_OK;
}

int quay_schema_model_count(const quay_schema *pS) {
  return pS ? pS->nGen : 0;
}

int quay_schema_model(const quay_schema *pS, int i, quay_model_gen *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  const GenModel *g;
  if (i < 0 || i >= pS->nGen) return QUAY_EMISUSE;
  g = &pS->aGen[i];
  p->zName = g->zName;
  p->zTable = g->pTab->zName;
  p->bDefaultTable = g->bDefaultTable;
  p->nField = g->nField;
  p->nRelation = g->nRel;
  p->nUnique = g->nUnique;
  p->nIndex = g->nIndex;
  p->isSkipped = g->isSkipped;
  p->zNote = g->zNote;
  return QUAY_OK;
}

int quay_schema_model_field(const quay_schema *pS, int iModel, int i,
                            quay_field_spec *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  if (iModel < 0 || iModel >= pS->nGen || i < 0 ||
      i >= pS->aGen[iModel].nField) {
    return QUAY_EMISUSE;
  }
  *p = pS->aGen[iModel].aField[i];
  return QUAY_OK;
}

int quay_schema_model_relation(const quay_schema *pS, int iModel, int i,
                               quay_rel_spec *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  if (iModel < 0 || iModel >= pS->nGen || i < 0 ||
      i >= pS->aGen[iModel].nRel) {
    return QUAY_EMISUSE;
  }
  *p = pS->aGen[iModel].aRel[i];
  return QUAY_OK;
}

/* Column list i of model iModel: a unique (bIndex 0) or an index (1). */
static int gen_col_list(const quay_schema *pS, int iModel, int i, int bIndex,
                        const char *const **paz, int *pn) {
  const GenModel *g;
  /* NULL arguments (quay.h "Conventions"). */
  if (pS == NULL || paz == NULL || pn == NULL) {
    if (paz != NULL) *paz = NULL;
    return QUAY_EMISUSE;
  }
  if (iModel < 0 || iModel >= pS->nGen) return QUAY_EMISUSE;
  g = &pS->aGen[iModel];
  if (i < 0 || i >= (bIndex ? g->nIndex : g->nUnique)) return QUAY_EMISUSE;
  *paz = (const char *const *)(bIndex ? g->aazIndex[i] : g->aazUnique[i]);
  *pn = bIndex ? g->anIndex[i] : g->anUnique[i];
  return QUAY_OK;
}

int quay_schema_model_unique(const quay_schema *pS, int iModel, int i,
                             const char *const **paz, int *pn) {
  return gen_col_list(pS, iModel, i, 0, paz, pn);
}

int quay_schema_model_index(const quay_schema *pS, int iModel, int i,
                            const char *const **paz, int *pn) {
  return gen_col_list(pS, iModel, i, 1, paz, pn);
}
/* }================================================================== */
