/*
** engine/dialect_pg.c
** The PostgreSQL dialect.
** See LICENSE
**
** $n placeholders; identity primary keys; key lists as one array
** parameter `x = ANY($n)` (one statement text for every size, no 65,535
** parameter limit); LIKE is case-sensitive and ILIKE folds case; NULLs are
** ordered as SQLite orders them (first ascending, last descending) so both
** backends return the same order.  Engine-managed foreign keys are
** DEFERRABLE INITIALLY IMMEDIATE so the cascade planner can defer checks
** for cycles with SET CONSTRAINTS.  PostgreSQL checks REFERENCES when the
** table is created, so a foreign key to a table created later (a cycle of
** belongs_to) is added afterwards by xAddFk.
*/
#include "quayInt.h"

#include <stdio.h>

static void pg_param(Str *p, int iParam) {
  quay__str_printf(p, "$%d", iParam);
}

static const char *pg_coltype(const Field *f) {
  switch (f->eType) {
    case QUAY_T_ID:
    case QUAY_T_INTEGER: return "BIGINT";
    case QUAY_T_NUMBER: return "DOUBLE PRECISION";
    case QUAY_T_STRING: return "VARCHAR";
    case QUAY_T_TEXT: return "TEXT";
    case QUAY_T_BOOLEAN: return "BOOLEAN";
    case QUAY_T_DATETIME: return "TIMESTAMP(0)";
    case QUAY_T_BLOB: return "BYTEA";
  }
  return "TEXT";
}

static const char *pg_array_type(int eType) {
  switch (eType) {
    case QUAY_T_ID:
    case QUAY_T_INTEGER: return "bigint[]";
    case QUAY_T_BOOLEAN: return "boolean[]";   /* elements 1/0 read as t/f */
    case QUAY_T_BLOB: return "bytea[]";
    case QUAY_T_NUMBER: return "double precision[]";
    case QUAY_T_DATETIME: return "timestamp[]";
  }
  return "text[]";
}

static void pg_in_array(Str *p, const char *zExpr, int iParam, int eType) {
  quay__str_printf(p, "%s = ANY($%d::%s)", zExpr, iParam,
                   pg_array_type(eType));
}

/* One element of an array literal (NULL unquoted, text quoted); bytes
** of a bytea array (bBytes) in hex, whether blob or text. */
static void pg_array_elem(Str *pOut, const quay_value *v, int bBytes) {
  int eType = v->type;
  if (bBytes && eType == QUAY_TEXT) eType = QUAY_BLOB;
  switch (eType) {
    case QUAY_INT: quay__str_int(pOut, v->u.i); break;
    case QUAY_REAL: quay__str_printf(pOut, "%.17g", v->u.r); break;
    case QUAY_BOOL: quay__str_cat(pOut, v->u.b ? "1" : "0"); break;
    case QUAY_TEXT: {
      size_t k;
      quay__str_char(pOut, '"');
      for (k = 0; k < v->n; k++) {
        char c = v->u.z[k];
        if (c == '"' || c == '\\') quay__str_char(pOut, '\\');
        quay__str_char(pOut, c);
      }
      quay__str_char(pOut, '"');
      break;
    }
    case QUAY_BLOB: {
      /* bytea's hex input "\x0a1b", its backslash escaped once more for
      ** the array literal. */
      static const char azHex[] = "0123456789abcdef";
      size_t k;
      quay__str_cat(pOut, "\"\\\\x");
      for (k = 0; k < v->n; k++) {
        unsigned char c = (unsigned char)v->u.z[k];
        quay__str_char(pOut, azHex[c >> 4]);
        quay__str_char(pOut, azHex[c & 15]);
      }
      quay__str_char(pOut, '"');
      break;
    }
    default: quay__str_cat(pOut, "NULL"); break;
  }
}

/* An array literal of a[0], a[nStep], ... (n values):
** {1,2,"text with \"quotes\""}. */
static void pg_array_strided(Str *pOut, const quay_value *a, int n,
                             int nStep, int eType) {
  int i;
  quay__str_char(pOut, '{');
  for (i = 0; i < n; i++) {
    if (i) quay__str_char(pOut, ',');
    pg_array_elem(pOut, &a[(size_t)i * (size_t)nStep], eType == QUAY_T_BLOB);
  }
  quay__str_char(pOut, '}');
}

static int pg_array_value(Str *pOut, const quay_value *a, int n) {
  pg_array_strided(pOut, a, n, 1, 0);
  return pOut->oom ? QUAY_ENOMEM : QUAY_OK;
}

/* LIKE / ILIKE with the value's own % _ \\ escaped. */
static void pg_text_match(Build *b, const char *zExpr, int eLookup,
                          const char *z, size_t n) {
  Str pat;
  quay_value v;
  size_t i;
  quay__str_init(&pat);
  if (eLookup != LK_STARTSWITH) quay__str_char(&pat, '%');
  for (i = 0; i < n; i++) {
    if (z[i] == '%' || z[i] == '_' || z[i] == '\\') quay__str_char(&pat, '\\');
    quay__str_char(&pat, z[i]);
  }
  if (eLookup != LK_ENDSWITH) quay__str_char(&pat, '%');
  v.type = QUAY_TEXT;
  v.n = pat.n;
  v.u.z = pat.oom ? NULL : quay__arena_strdup(b->pArena, pat.z, pat.n);
  quay__str_free(&pat);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__str_printf(&b->sql, "%s %s ", zExpr,
                   eLookup == LK_ICONTAINS ? "ILIKE" : "LIKE");
  quay__build_param(b, &v);
  quay__str_cat(&b->sql, " ESCAPE '\\'");
}

/*
** Raw SQL: '?' outside quotes, identifiers and comments becomes $n.
*/
static void pg_raw_sql(Str *pOut, const char *z, int *pnParam) {
  int n = 0;
  while (*z) {
    char c = *z;
    if (c == '\'' || c == '"') {
      char q = c;
      quay__str_char(pOut, *z++);
      while (*z) {
        if (*z == q) {
          if (z[1] == q) {
            quay__str_char(pOut, *z++);
            quay__str_char(pOut, *z++);
            continue;
          }
          break;
        }
        quay__str_char(pOut, *z++);
      }
      if (*z) quay__str_char(pOut, *z++);
    } else if (c == '-' && z[1] == '-') {
      while (*z && *z != '\n') quay__str_char(pOut, *z++);
    } else if (c == '/' && z[1] == '*') {
      quay__str_char(pOut, *z++);
      quay__str_char(pOut, *z++);
      while (*z && !(z[0] == '*' && z[1] == '/')) quay__str_char(pOut, *z++);
      if (*z) {
        quay__str_char(pOut, *z++);
        quay__str_char(pOut, *z++);
      }
    } else if (c == '?') {
      quay__str_printf(pOut, "$%d", ++n);
      z++;
    } else {
      quay__str_char(pOut, *z++);
    }
  }
  *pnParam = n;
}

/*
** A foreign key to a table created later (a cycle): PostgreSQL checks
** REFERENCES at CREATE TABLE, so the constraint is added afterwards.
** create_tables is idempotent, and PostgreSQL has no ADD CONSTRAINT IF NOT
** EXISTS, so the ALTER runs in a DO block that ignores duplicate_object.
** The block body is a standard string literal (quotes doubled), so no
** identifier can end it.
*/
static void pg_add_fk(Str *pOut, const char *zTable, const char *zCol,
                      const char *zRefs) {
  Str body;
  char zName[128];
  size_t i;
  snprintf(zName, sizeof(zName), "%s_%s_fkey", zTable, zCol);
  if (strlen(zName) > 63) {
    /* Identifiers are cut at 63 bytes: keep 50 and a hash of the rest. */
    unsigned h = (unsigned)(quay__hash_bytes(zName, strlen(zName)) &
                            0xffffffffu);
    snprintf(zName + 50, sizeof(zName) - 50, "_%08x", h);
  }
  quay__str_init(&body);
  quay__str_cat(&body, "BEGIN ALTER TABLE ");
  quay__str_ident(&body, zTable);
  quay__str_cat(&body, " ADD CONSTRAINT ");
  quay__str_ident(&body, zName);
  quay__str_cat(&body, " FOREIGN KEY (");
  quay__str_ident(&body, zCol);
  quay__str_cat(&body, ")");
  quay__str_cat(&body, zRefs);
  quay__str_cat(&body, "; EXCEPTION WHEN duplicate_object THEN NULL; END");
  if (body.oom) {
    pOut->oom = 1;
    quay__str_free(&body);
    return;
  }
  quay__str_cat(pOut, "DO '");
  for (i = 0; i < body.n; i++) {
    if (body.z[i] == '\'') quay__str_char(pOut, '\'');
    quay__str_char(pOut, body.z[i]);
  }
  quay__str_char(pOut, '\'');
  quay__str_free(&body);
}

static int pg_begin_sql(Str *pOut, int eIsolation, int bReadOnly,
                        quay_err *pErr) {
  static const char *const azLevel[] = {
    "", " ISOLATION LEVEL READ COMMITTED", " ISOLATION LEVEL REPEATABLE READ",
    " ISOLATION LEVEL SERIALIZABLE"
  };
  if (eIsolation < 0 || eIsolation >= QUAY_ARRAYSIZE(azLevel)) {
    return quay__err(pErr, QUAY_EMISUSE, "unknown isolation level %d",
                     eIsolation);
  }
  quay__str_printf(pOut, "BEGIN%s%s", azLevel[eIsolation],
                   bReadOnly ? " READ ONLY" : "");
  return QUAY_OK;
}

/* One array parameter (a literal of typed elements) of the values a[0],
** a[nStep], a[2 * nStep], ... (n of them), cast to eType's array type. */
static void pg_array_param(Build *b, const quay_value *a, int n, int nStep,
                           int eType) {
  Str arr;
  quay_value v;
  quay__str_init(&arr);
  pg_array_strided(&arr, a, n, nStep, eType);
  v.type = QUAY_TEXT;
  v.n = arr.n;
  v.u.z = arr.oom ? NULL : quay__arena_strdup(b->pArena, arr.z ? arr.z : "",
                                              arr.n);
  quay__str_free(&arr);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__build_param(b, &v);
  quay__str_printf(&b->sql, "::%s", pg_array_type(eType));
}

/* Rows for UPDATE ... FROM: one array per column, unnest'ed side by side
** (any number of rows, nCol parameters). */
static void pg_row_source(Build *b, const int *aeType, int nCol,
                          const quay_value *aVal, int nRow) {
  int i;
  quay__str_cat(&b->sql, "(SELECT * FROM unnest(");
  for (i = 0; i < nCol; i++) {
    if (i) quay__str_cat(&b->sql, ", ");
    pg_array_param(b, aVal + i, nRow, nCol, aeType[i]);
  }
  quay__str_cat(&b->sql, ") AS u(");
  for (i = 0; i < nCol; i++) {
    quay__str_printf(&b->sql, "%sc%d", i ? ", " : "", i);
  }
  quay__str_cat(&b->sql, "))");
}

static void pg_key_source(Build *b, const quay_value *aKey, int nKey,
                          int eType) {
  quay__str_cat(&b->sql, "(SELECT unnest(");
  pg_array_param(b, aKey, nKey, 1, eType);
  quay__str_cat(&b->sql, ") AS c0)");
}

const Dialect quay__dialect_pg = {
  "postgresql",
  pg_param,
  pg_coltype,
  "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
  pg_in_array,
  pg_array_value,
  pg_text_match,
  "IS DISTINCT FROM",
  " NULLS FIRST",
  " NULLS LAST",
  "",
  "BEGIN",
  "BEGIN",
  " DEFERRABLE INITIALLY IMMEDIATE",
  64,
  "TRUE", "FALSE",
  "CREATE INDEX IF NOT EXISTS",
  "DROP TABLE IF EXISTS",
  " CASCADE",
  "SET CONSTRAINTS ALL DEFERRED",
  "SET CONSTRAINTS ALL IMMEDIATE",
  1,
  pg_raw_sql,
  pg_add_fk,
  500,                      /* maxInsertRows (multi-row VALUES) */
  .xBeginSql = pg_begin_sql,
  .zReadOnlyOn = NULL,      /* BEGIN ... READ ONLY */
  .zReadOnlyOff = NULL,
  .zForUpdate = " FOR UPDATE OF ",
  .zNoWait = " NOWAIT",
  .zSkipLocked = " SKIP LOCKED",
  .xRowSource = pg_row_source,
  .maxRowValues = 0,
  .xKeySource = pg_key_source,
  .maxSourceRows = 10000,
  .bUpsertRowOnce = 1,
};
