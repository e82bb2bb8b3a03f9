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
** Automatic keys (models and join tables) are AUTOINCREMENT: a plain
** INTEGER PRIMARY KEY hands the id of a deleted last row to the next
** insert, and a stale record's save would then overwrite that new row.
** PostgreSQL's identity columns never reuse a value either.
*/
#include "quayInt.h"

#include <stdio.h>

static void sq_param(Str *p, int iParam) {
  (void)iParam;
  quay__str_char(p, '?');
}

static const char *sq_coltype(const Field *f) {
  switch (f->eType) {
    case QUAY_T_ID:
    case QUAY_T_INTEGER: return "INTEGER";
    case QUAY_T_NUMBER: return "REAL";
    case QUAY_T_STRING: return "VARCHAR";
    case QUAY_T_TEXT: return "TEXT";
    case QUAY_T_BOOLEAN: return "BOOLEAN";
    case QUAY_T_DATETIME: return "TEXT";
    case QUAY_T_BLOB: return "BLOB";
  }
  return "TEXT";
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
** Reals are written with 17 significant digits (round trip).
*/
static int sq_array_value(Str *pOut, const quay_value *a, int n) {
  int i;
  quay__str_char(pOut, '[');
  for (i = 0; i < n; i++) {
    if (i) quay__str_char(pOut, ',');
    switch (a[i].type) {
      case QUAY_INT: quay__str_int(pOut, a[i].u.i); break;
      case QUAY_REAL: quay__str_printf(pOut, "%.17g", a[i].u.r); break;
      case QUAY_BOOL: quay__str_cat(pOut, a[i].u.b ? "1" : "0"); break;
      case QUAY_TEXT: json_string(pOut, a[i].u.z, a[i].n); break;
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
static void sq_text_match(Build *b, const char *zExpr, int eLookup,
                          const char *z, size_t n) {
  quay_value v;
  v.type = QUAY_TEXT;
  v.u.z = z;
  v.n = n;
  switch (eLookup) {
    case LK_CONTAINS:
      quay__str_printf(&b->sql, "instr(%s, ", zExpr);
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ") > 0");
      break;
    case LK_ICONTAINS:
      quay__str_printf(&b->sql, "instr(lower(%s), lower(", zExpr);
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ")) > 0");
      break;
    case LK_STARTSWITH:
      quay__str_printf(&b->sql, "instr(%s, ", zExpr);
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ") = 1");
      break;
    default:                          /* endswith */
      quay__str_printf(&b->sql, "substr(%s, -length(", zExpr);
      quay__build_param(b, &v);
      quay__str_cat(&b->sql, ")) = ");
      quay__build_param(b, &v);
      break;
  }
}

/*
** BEGIN of db:transaction with options.  SQLite has one isolation level,
** serializable.  A read-only transaction is DEFERRED (it takes no write
** lock, so writers of other connections go on) and runs under PRAGMA
** query_only (zReadOnlyOn); every other one is IMMEDIATE, as Quay's
** transactions always are.
*/
static int sq_begin_sql(Str *pOut, int eIsolation, int bReadOnly,
                        quay_err *pErr) {
  if (eIsolation != QUAY_ISO_DEFAULT && eIsolation != QUAY_ISO_SERIALIZABLE) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "SQLite has one isolation level, \"serializable\" "
                     "(leave isolation out, or give \"serializable\")");
  }
  quay__str_cat(pOut, bReadOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE");
  return QUAY_OK;
}

/*
** Rows for UPDATE ... FROM: multi-row VALUES, one parameter per value,
** renamed to c0.. (SQLite names VALUES columns column1..).
*/
static void sq_row_source(Build *b, const int *aeType, int nCol,
                          const quay_value *aVal, int nRow) {
  int i, r;
  (void)aeType;
  quay__str_cat(&b->sql, "(SELECT ");
  for (i = 0; i < nCol; i++) {
    quay__str_printf(&b->sql, "%scolumn%d AS c%d", i ? ", " : "", i + 1, i);
  }
  quay__str_cat(&b->sql, " FROM (VALUES ");
  for (r = 0; r < nRow; r++) {
    quay__str_cat(&b->sql, r ? ", (" : "(");
    for (i = 0; i < nCol; i++) {
      if (i) quay__str_cat(&b->sql, ", ");
      quay__build_param(b, &aVal[(size_t)r * (size_t)nCol + (size_t)i]);
    }
    quay__str_char(&b->sql, ')');
  }
  quay__str_cat(&b->sql, "))");
}

/* A key list as rows: one JSON array parameter through json_each. */
static void sq_key_source(Build *b, const quay_value *aKey, int nKey,
                          int eType) {
  Str arr;
  quay_value v;
  (void)eType;
  quay__str_init(&arr);
  sq_array_value(&arr, aKey, nKey);
  v.type = QUAY_TEXT;
  v.n = arr.n;
  v.u.z = arr.oom ? NULL : quay__arena_strdup(b->pArena, arr.z ? arr.z : "",
                                              arr.n);
  quay__str_free(&arr);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__str_cat(&b->sql, "(SELECT value AS c0 FROM json_each(");
  quay__build_param(b, &v);
  quay__str_cat(&b->sql, "))");
}

const Dialect quay__dialect_sqlite = {
  "sqlite",
  sq_param,
  sq_coltype,
  "INTEGER PRIMARY KEY AUTOINCREMENT",
  sq_in_array,
  sq_array_value,
  sq_text_match,
  "IS NOT",
  "",
  "",
  " LIMIT -1",
  "BEGIN IMMEDIATE",
  "BEGIN IMMEDIATE",
  "",
  64,
  "TRUE", "FALSE",
  "CREATE INDEX IF NOT EXISTS",
  "DROP TABLE IF EXISTS",
  "",
  "PRAGMA defer_foreign_keys = ON",
  "PRAGMA defer_foreign_keys = OFF",
  1,
  NULL,
  NULL,                     /* xAddFk: forward references work inline */
  1,                        /* maxInsertRows */
  .xBeginSql = sq_begin_sql,
  .zReadOnlyOn = "PRAGMA query_only = 1",
  .zReadOnlyOff = "PRAGMA query_only = 0",
  .zForUpdate = NULL,       /* the transaction holds the write lock */
  .zNoWait = NULL,
  .zSkipLocked = NULL,
  .xRowSource = sq_row_source,
  /* Values per UPDATE ... FROM (VALUES ...): SQLite compiles every row of
  ** a VALUES list into its program, so a 10,000-row statement costs more
  ** to prepare than it saves; statements of 1,000 rows of two values, kept
  ** in the statement cache, measured fastest (scripts/bench W10). */
  .maxRowValues = 2000,
  .xKeySource = sq_key_source,
  .maxSourceRows = 0,       /* one prepared INSERT stepped per row */
  .bUpsertRowOnce = 0,
};
