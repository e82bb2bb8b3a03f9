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

#include <math.h>
#include <stdio.h>

static void pg_param(Str *p, int iParam) {
  quay__str_printf(p, "$%d", iParam);
}

static void pg_in_array(Str *p, const char *zExpr, int iParam, int eType) {
  quay__str_printf(p, "%s = ANY($%d::%s)", zExpr, iParam,
                   quay__ftype(eType)->zPgArray);
}

/* An array literal: {1,2,"text with \"quotes\""}. */
static int pg_array_value(Str *pOut, const quay_value *a, int n) {
  int i;
  quay__str_char(pOut, '{');
  for (i = 0; i < n; i++) {
    if (i) quay__str_char(pOut, ',');
    switch (a[i].type) {
      case QUAY_INT: quay__str_int(pOut, a[i].u.i); break;
      case QUAY_REAL:
        if (isinf(a[i].u.r)) {
          quay__str_cat(pOut, a[i].u.r < 0 ? "-Infinity" : "Infinity");
        } else {
          quay__str_printf(pOut, "%.17g", a[i].u.r);
        }
        break;
      case QUAY_BOOL: quay__str_cat(pOut, a[i].u.b ? "1" : "0"); break;
      case QUAY_TEXT:
      case QUAY_DECIMAL:
      case QUAY_JSON: {
        size_t k;
        quay__str_char(pOut, '"');
        for (k = 0; k < a[i].n; k++) {
          char c = a[i].u.z[k];
          if (c == '"' || c == '\\') quay__str_char(pOut, '\\');
          quay__str_char(pOut, c);
        }
        quay__str_char(pOut, '"');
        break;
      }
      default: quay__str_cat(pOut, "NULL"); break;
    }
  }
  quay__str_char(pOut, '}');
  return pOut->oom ? QUAY_ENOMEM : QUAY_OK;
}

/* LIKE / ILIKE with the value's own % _ \\ escaped. */
static void pg_text_match(Build *b, const Operand *x, int eLookup,
                          const char *z, size_t n) {
  Str pat;
  quay_value v;
  size_t i;
  int bCase = eLookup == LK_CONTAINS || eLookup == LK_STARTSWITH ||
              eLookup == LK_ENDSWITH;
  int bHead = eLookup != LK_STARTSWITH && eLookup != LK_ISTARTSWITH &&
              eLookup != LK_IEXACT;
  int bTail = eLookup != LK_ENDSWITH && eLookup != LK_IENDSWITH &&
              eLookup != LK_IEXACT;
  quay__str_init(&pat);
  if (bHead) quay__str_char(&pat, '%');
  for (i = 0; i < n; i++) {
    if (z[i] == '%' || z[i] == '_' || z[i] == '\\') quay__str_char(&pat, '\\');
    quay__str_char(&pat, z[i]);
  }
  if (bTail) quay__str_char(&pat, '%');
  v.type = QUAY_TEXT;
  v.n = pat.n;
  v.u.z = pat.oom ? NULL : quay__arena_strdup(b->pArena, pat.z, pat.n);
  quay__str_free(&pat);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__emit_operand(b, x);
  quay__str_cat(&b->sql, bCase ? " LIKE " : " ILIKE ");
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

/*
** JSON paths: doc -> 'a' -> 'b' with text keys (so "0" names a key, never
** an array element, as on SQLite), NULLIF'd so that a JSON null reads as
** SQL NULL; an existence test leaves the JSON null (not SQL NULL) in.
** Values compared with it are jsonb documents (bJsonDocCompare), so
** numbers, strings and booleans compare as JSON values.
*/
static void pg_json_path(Build *b, const Operand *x) {
  const Cond *c = x->pJson;
  const char *z = c->zJsonPath, *zEnd = c->zJsonPath + c->nJsonPath;
  quay__str_cat(&b->sql, c->bJsonExists ? "(" : "NULLIF(");
  quay__emit_operand_doc(b, x);
  while (z < zEnd) {
    const char *e = strstr(z, "__");
    size_t n = (e && e < zEnd) ? (size_t)(e - z) : (size_t)(zEnd - z);
    quay_value v;
    v.type = QUAY_TEXT;
    v.n = n;
    v.u.z = quay__arena_strdup(b->pArena, z, n);
    if (v.u.z == NULL) return;
    quay__str_cat(&b->sql, " -> CAST(");
    quay__build_param(b, &v);
    quay__str_cat(&b->sql, " AS TEXT)");
    z += n + 2;
  }
  if (c->zJsonKey) {
    quay_value v;
    v.type = QUAY_TEXT;
    v.n = strlen(c->zJsonKey);
    v.u.z = c->zJsonKey;
    quay__str_cat(&b->sql, " -> CAST(");
    quay__build_param(b, &v);
    quay__str_cat(&b->sql, " AS TEXT)");
  }
  quay__str_cat(&b->sql, c->bJsonExists ? ")" : ", 'null'::jsonb)");
}

const Dialect quay__dialect_pg = {
  .zName = "postgresql",
  .xParam = pg_param,
  .iTypeCol = 1,
  .bScaledDecimal = 0,
  .xJsonPath = pg_json_path,
  .bJsonDocCompare = 1,
  .zAutoPk = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
  .xInArray = pg_in_array,
  .xArrayValue = pg_array_value,
  .xTextMatch = pg_text_match,
  .zNullSafeNe = "IS DISTINCT FROM",
  .zAscNulls = " NULLS FIRST",
  .zDescNulls = " NULLS LAST",
  .zOffsetNoLimit = "",
  .zBeginWrite = "BEGIN",
  .zBegin = "BEGIN",
  .zFkDeferrable = " DEFERRABLE INITIALLY IMMEDIATE",
  .maxInline = 64,
  .zTrue = "TRUE", .zFalse = "FALSE",
  .zCreateIndex = "CREATE INDEX IF NOT EXISTS",
  .zDropTable = "DROP TABLE IF EXISTS",
  .zDropSuffix = " CASCADE",
  .zDeferFks = "SET CONSTRAINTS ALL DEFERRED",
  .zUndeferFks = "SET CONSTRAINTS ALL IMMEDIATE",
  .bSavepointRelease = 1,
  .xRawSql = pg_raw_sql,
  .xAddFk = pg_add_fk,
  .maxInsertRows = 500,     /* multi-row VALUES */
  /* Datetimes are TIMESTAMP(0), UTC. */
  .azPart = {
    { NULL, NULL },
    { "CAST(EXTRACT(YEAR FROM ", ") AS BIGINT)" },
    { "CAST(EXTRACT(MONTH FROM ", ") AS BIGINT)" },
    { "CAST(EXTRACT(DAY FROM ", ") AS BIGINT)" },
  },
  .azTrunc = {
    { NULL, NULL },
    { "date_trunc('year', ", ")" },
    { "date_trunc('month', ", ")" },
    { "date_trunc('day', ", ")" },
  },
  .azTruncDate = {
    { NULL, NULL },
    { "CAST(date_trunc('year', ", ") AS DATE)" },
    { "CAST(date_trunc('month', ", ") AS DATE)" },
    { "CAST(date_trunc('day', ", ") AS DATE)" },
  },
  .zNullSafeEq = "IS NOT DISTINCT FROM",
};
