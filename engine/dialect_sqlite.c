/*
** engine/dialect_sqlite.c
** The SQLite dialect.
** See LICENSE
**
** Choices measured on SQLite 3.40 (shared/MEASURED.md):
**   - key lists of any size bind as one JSON array parameter,
**     `x IN (SELECT value FROM json_each(?))`, so one statement text serves
**     every size and no parameter limit can break a loader query;
**   - contains/startswith/endswith must be case-sensitive and must work
**     for values of any length: instr() and substr() do, with no pattern
**     escaping and no LIKE length limit; icontains folds ASCII case with
**     lower(), like LIKE.
** Decimals are scaled integers (value * 10^places in an INTEGER column,
** bScaledDecimal): SUM is then an exact integer sum, ordering and
** comparisons are integer ones, and the driver formats what it reads with
** the places of the read hint.  JSON is text read with json_extract.
** Automatic keys (models and join tables) are AUTOINCREMENT: a plain
** INTEGER PRIMARY KEY hands the id of a deleted last row to the next
** insert, and a stale record's save would then overwrite that new row.
** PostgreSQL's identity columns never reuse a value either.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>

static void sq_param(Str *p, int iParam) {
  (void)iParam;
  quay__str_char(p, '?');
}

static void sq_in_array(Str *p, const char *zExpr, int iParam, int eType) {
  (void)eType;
  quay__str_cat(p, zExpr);
  quay__str_cat(p, " IN (SELECT value FROM json_each(");
  sq_param(p, iParam);
  quay__str_cat(p, "))");
}

/* JSON string body with escapes. */
static void json_string(Str *p, const char *z, size_t n) {
  size_t i;
  quay__str_char(p, '"');
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)z[i];
    if (c == '"' || c == '\\') {
      quay__str_char(p, '\\');
      quay__str_char(p, (char)c);
    } else if (c < 0x20) {
      quay__str_printf(p, "\\u%04x", c);
    } else {
      quay__str_char(p, (char)c);
    }
  }
  quay__str_char(p, '"');
}

/*
** Serialize keys as a JSON array: integers as numbers, text as strings.
** Reals are written with 17 significant digits (round trip); infinities
** as 9e999 / -9e999, which json_each reads back as infinities.
*/
static int sq_array_value(Str *pOut, const quay_value *a, int n) {
  int i;
  quay__str_char(pOut, '[');
  for (i = 0; i < n; i++) {
    if (i) quay__str_char(pOut, ',');
    switch (a[i].type) {
      case QUAY_INT: quay__str_int(pOut, a[i].u.i); break;
      case QUAY_REAL:
        /* JSON has no infinity: 9e999 overflows to it in json_each. */
        if (isinf(a[i].u.r)) {
          quay__str_cat(pOut, a[i].u.r < 0 ? "-9e999" : "9e999");
        } else if (QUAY_NEVER(isnan(a[i].u.r))) {
          quay__str_cat(pOut, "null");             /* refused earlier */
        } else {
          quay__str_printf(pOut, "%.17g", a[i].u.r);
        }
        break;
      case QUAY_BOOL: quay__str_cat(pOut, a[i].u.b ? "1" : "0"); break;
      case QUAY_TEXT: json_string(pOut, a[i].u.z, a[i].n); break;
      case QUAY_DECIMAL:                /* stored as a scaled integer */
        quay__str_int(pOut, quay__decimal_unscaled(a[i].u.z, a[i].n));
        break;
      default: quay__str_cat(pOut, "null"); break;
    }
  }
  quay__str_char(pOut, ']');
  return pOut->oom ? QUAY_ENOMEM : QUAY_OK;
}

/*
** Text lookups without LIKE/GLOB patterns: SQLite caps pattern length
** (SQLITE_MAX_LIKE_PATTERN_LENGTH, 50,000 bytes), so instr() and substr()
** do the matching, case-sensitively, on the value itself; icontains folds
** ASCII case with lower(), as LIKE would.  z is never empty (the builder
** handles "").
*/
static void sq_text_match(Build *b, const Operand *x, int eLookup,
                          const char *z, size_t n) {
  quay_value v;
  v.type = QUAY_TEXT;
  v.u.z = z;
  v.n = n;
  switch (eLookup) {
    case LK_CONTAINS:
    case LK_STARTSWITH:
      quay__str_cat(&b->sql, "instr(");
      quay__emit_operand(b, x);
      quay__str_cat(&b->sql, ", ");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, eLookup == LK_CONTAINS ? ") > 0" : ") = 1");
      break;
    case LK_ICONTAINS:
    case LK_ISTARTSWITH:
      quay__str_cat(&b->sql, "instr(lower(");
      quay__emit_operand(b, x);
      quay__str_cat(&b->sql, "), lower(");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, eLookup == LK_ICONTAINS ? ")) > 0" : ")) = 1");
      break;
    case LK_IEXACT:
      quay__str_cat(&b->sql, "lower(");
      quay__emit_operand(b, x);
      quay__str_cat(&b->sql, ") = lower(");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ")");
      break;
    case LK_IENDSWITH:
      quay__str_cat(&b->sql, "lower(substr(");
      quay__emit_operand(b, x);
      quay__str_cat(&b->sql, ", -length(");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, "))) = lower(");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ")");
      break;
    default:                          /* endswith */
      quay__str_cat(&b->sql, "substr(");
      quay__emit_operand(b, x);
      quay__str_cat(&b->sql, ", -length(");
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ")) = ");
      quay__build_param(b, &v);
      break;
  }
}

/*
** JSON paths: json_extract(doc, '$."a"."b"') gives the SQL value at the
** keys (NULL for a JSON null or a missing key), json_type(...) is NULL
** exactly when the keys are missing.  Keys are quoted labels, so "0"
** names a key, never an array element (PostgreSQL's -> with a text key
** agrees).  The path is one bound parameter.
*/
static void sq_json_path(Build *b, const Operand *x) {
  const Cond *c = x->pJson;
  Str path;
  quay_value v;
  const char *z = c->zJsonPath, *zEnd = c->zJsonPath + c->nJsonPath;
  quay__str_init(&path);
  quay__str_char(&path, '$');
  while (z < zEnd) {
    const char *e = strstr(z, "__");
    size_t n = (e && e < zEnd) ? (size_t)(e - z) : (size_t)(zEnd - z);
    quay__str_cat(&path, ".\"");
    quay__str_append(&path, z, n);
    quay__str_char(&path, '"');
    z += n + 2;
  }
  if (c->zJsonKey) {
    quay__str_cat(&path, ".\"");
    quay__str_cat(&path, c->zJsonKey);
    quay__str_char(&path, '"');
  }
  v.type = QUAY_TEXT;
  v.n = path.n;
  v.u.z = path.oom ? NULL : quay__arena_strdup(b->pArena, path.z, path.n);
  quay__str_free(&path);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__str_cat(&b->sql, c->bJsonExists ? "json_type(" : "json_extract(");
  quay__emit_operand_doc(b, x);
  quay__str_cat(&b->sql, ", ");
  quay__build_param(b, &v);
  quay__str_char(&b->sql, ')');
}

const Dialect quay__dialect_sqlite = {
  .zName = "sqlite",
  .xParam = sq_param,
  .iTypeCol = 0,
  .bScaledDecimal = 1,
  .xJsonPath = sq_json_path,
  .bJsonDocCompare = 0,
  .zAutoPk = "INTEGER PRIMARY KEY AUTOINCREMENT",
  .xInArray = sq_in_array,
  .xArrayValue = sq_array_value,
  .xTextMatch = sq_text_match,
  .zNullSafeNe = "IS NOT",
  .zAscNulls = "",
  .zDescNulls = "",
  .zOffsetNoLimit = " LIMIT -1",
  .zBeginWrite = "BEGIN IMMEDIATE",
  .zBegin = "BEGIN IMMEDIATE",
  .zFkDeferrable = "",
  .maxInline = 64,
  .zTrue = "TRUE", .zFalse = "FALSE",
  .zCreateIndex = "CREATE INDEX IF NOT EXISTS",
  .zDropTable = "DROP TABLE IF EXISTS",
  .zDropSuffix = "",
  .zDeferFks = "PRAGMA defer_foreign_keys = ON",
  .zUndeferFks = "PRAGMA defer_foreign_keys = OFF",
  .bSavepointRelease = 1,
  .xRawSql = NULL,
  .xAddFk = NULL,           /* forward references work inline */
  .maxInsertRows = 1,
  /* Datetimes are text "YYYY-MM-DD HH:MM:SS" (UTC). */
  .azPart = {
    { NULL, NULL },
    { "CAST(substr(", ", 1, 4) AS INTEGER)" },
    { "CAST(substr(", ", 6, 2) AS INTEGER)" },
    { "CAST(substr(", ", 9, 2) AS INTEGER)" },
  },
  .azTrunc = {
    { NULL, NULL },
    { "(substr(", ", 1, 4) || '-01-01 00:00:00')" },
    { "(substr(", ", 1, 7) || '-01 00:00:00')" },
    { "(substr(", ", 1, 10) || ' 00:00:00')" },
  },
  /* Dates are text "YYYY-MM-DD". */
  .azTruncDate = {
    { NULL, NULL },
    { "(substr(", ", 1, 4) || '-01-01')" },
    { "(substr(", ", 1, 7) || '-01')" },
    { "substr(", ", 1, 10)" },
  },
  .zNullSafeEq = "IS",
};
