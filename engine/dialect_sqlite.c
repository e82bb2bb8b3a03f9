/*
** engine/dialect_sqlite.c
** The SQLite dialect.
** See LICENSE
**
** Schema evolution: the live schema comes from sqlite_master and the
** table-valued pragmas (table_info, index_list, index_info,
** foreign_key_list), three queries for the whole database; CHECK
** constraints are read from the CREATE TABLE text.  ALTER TABLE can add,
** drop and rename columns and rename tables but change nothing else, so
** other changes rebuild the table (migrate.c) with foreign keys off and a
** quiet rename (legacy_alter_table: views and triggers that name the
** table are not re-checked while it is being replaced).
**
** Choices measured on SQLite 3.40 (docs/ENGINE.md):
**   - key lists of any size bind as one JSON array parameter,
**     `x IN (SELECT value FROM json_each(?))`, so one statement text serves
**     every size and no parameter limit can break a loader query;
**   - contains/startswith/endswith must be case-sensitive and must work
**     for values of any length: instr() and substr() do, with no pattern
**     escaping and no LIKE length limit; icontains folds ASCII case with
**     lower(), like LIKE.
** Decimals are scaled integers (value * 10^places in an INTEGER column,
** bScaledDecimal): their sum is an exact integer one (quay_dsum, which
** drv_sqlite.c registers, also past 64 bits, where SUM raises), ordering and
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
#include <stdlib.h>

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
static void sq_json_string(Str *p, const char *z, size_t n) {
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
      case QUAY_TEXT: sq_json_string(pOut, a[i].u.z, a[i].n); break;
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
** {==================================================================
** The live schema
** ===================================================================
*/
/* The tables Quay reads: not SQLite's own, not quay_migrations. */
#define SQ_TABLES "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' " \
                  "ESCAPE '\\' AND m.name <> 'quay_migrations'"

/* Text of column i of the current row, or NULL. */
static const char *sq_row_text(quay_cursor *c, int i) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  return v.type == QUAY_TEXT ? v.u.z : NULL;
}

static int64_t sq_row_int(quay_cursor *c, int i) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  if (v.type == QUAY_INT) return v.u.i;
  if (v.type == QUAY_TEXT) return atoll(v.u.z);
  return 0;
}

/* The table named z, found from the last one (rows come table by table). */
static STable *sq_table_of(quay_schema *pS, STable **ppLast, const char *z) {
  if (z == NULL) return NULL;
  if (*ppLast && strcmp((*ppLast)->zName, z) == 0) return *ppLast;
  *ppLast = quay__schema_find(pS, z);
  return *ppLast;
}

/* Non-0 when the n bytes at z are the lower-case word zWord, any case. */
static int sq_word_at(const char *z, size_t n, const char *zWord) {
  size_t i;
  if (strlen(zWord) != n) return 0;
  for (i = 0; i < n; i++) {
    char c = z[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != zWord[i]) return 0;
  }
  return 1;
}

/* Length of an identifier or quoted token at z (0: none). */
static size_t sq_token(const char *z) {
  size_t n = 0;
  char q = 0;
  if (*z == '"' || *z == '`' || *z == '\'') q = *z;
  if (*z == '[') q = ']';
  if (q) {
    n = 1;
    while (z[n]) {
      if (z[n] == q) {
        if (q != ']' && z[n + 1] == q) {
          n += 2;
          continue;
        }
        return n + 1;
      }
      n++;
    }
    return n;
  }
  while ((z[n] >= 'a' && z[n] <= 'z') || (z[n] >= 'A' && z[n] <= 'Z') ||
         (z[n] >= '0' && z[n] <= '9') || z[n] == '_' || z[n] == '$' ||
         (unsigned char)z[n] >= 0x80) {
    n++;
  }
  return n;
}

/*
** The CHECK constraints of a CREATE TABLE text: every CHECK keyword
** outside strings and quoted names, with the parenthesized expression
** after it, and the name of a CONSTRAINT right before it.
*/
static void sq_checks(quay_schema *pS, STable *t, const char *zSql) {
  const char *z = zSql;
  char zName[128];
  int bName = 0;
  zName[0] = 0;
  while (z && *z) {
    size_t n;
    if (z[0] == '-' && z[1] == '-') {
      while (*z && *z != '\n') z++;
      continue;
    }
    if (z[0] == '/' && z[1] == '*') {
      const char *e = strstr(z + 2, "*/");
      z = e ? e + 2 : z + strlen(z);
      continue;
    }
    n = sq_token(z);
    if (n == 0) {
      if (*z != ' ' && *z != '\t' && *z != '\n' && *z != '\r') bName = 0;
      z++;
      continue;
    }
    if (sq_word_at(z, n, "constraint")) {
      const char *zId = z + n;
      size_t k;
      while (*zId == ' ' || *zId == '\t' || *zId == '\n') zId++;
      k = sq_token(zId);
      if (k > 0 && k < sizeof(zName)) {
        int quoted = zId[0] == '"' || zId[0] == '`' || zId[0] == '[' ||
                     zId[0] == '\'';
        snprintf(zName, sizeof(zName), "%.*s", (int)(quoted ? k - 2 : k),
                 quoted ? zId + 1 : zId);
        bName = 1;
      }
      z = zId + k;
      continue;
    }
    if (sq_word_at(z, n, "check")) {
      const char *p = z + 5, *zStart;
      int depth = 0;
      while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
      if (*p == '(') {
        zStart = p + 1;
        for (; *p; p++) {
          size_t q = (*p == '\'' || *p == '"') ? sq_token(p) : 0;
          if (q) {
            p += q - 1;
            continue;
          }
          if (*p == '(') depth++;
          if (*p == ')' && --depth == 0) break;
        }
        if (*p == ')') {
          char *zExpr = quay__arena_strdup(&pS->arena, zStart,
                                           (size_t)(p - zStart));
          if (zExpr == NULL) pS->oom = 1;
          else quay__stable_add_check(pS, t, bName ? zName : NULL, zExpr);
          z = p + 1;
          bName = 0;
          continue;
        }
      }
    }
    bName = 0;                        /* CONSTRAINT name must name it */
    z += n;
  }
}

/* Run zSql and hand each row to xRow; QUAY_OK at the end. */
static int sq_each(quay_db *pDb, const char *zSql,
                   void (*xRow)(quay_schema *, STable **, quay_cursor *),
                   quay_schema *pS, quay_err *pErr) {
  quay_cursor *c = NULL;
  STable *pLast = NULL;
  int rc = quay__db_run(pDb, zSql, NULL, 0, NULL, 0, 0, &c, NULL, pErr);
  while (rc == QUAY_OK && (rc = quay_cursor_step(c, pErr)) == QUAY_ROW) {
    xRow(pS, &pLast, c);
    rc = QUAY_OK;
  }
  quay_cursor_close(c);
  return rc == QUAY_DONE ? QUAY_OK : rc;
}

static void sq_row_table(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = quay__schema_add_table(pS, sq_row_text(c, 0));
  (void)pp;
  if (t == NULL) return;
  t->zSql = quay__schema_str(pS, sq_row_text(c, 1));
  sq_checks(pS, t, t->zSql);
}

static void sq_row_column(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = sq_table_of(pS, pp, sq_row_text(c, 0));
  SCol *col;
  if (t == NULL ||
      (col = quay__stable_add_col(pS, t, sq_row_text(c, 1))) == NULL) {
    return;
  }
  col->zType = quay__schema_str(pS, sq_row_text(c, 2) ? sq_row_text(c, 2) : "");
  col->bNull = sq_row_int(c, 3) == 0;
  col->zDefault = quay__schema_str(pS, sq_row_text(c, 4));
  col->iPk = (int)sq_row_int(c, 5);
}

static void sq_row_index(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = sq_table_of(pS, pp, sq_row_text(c, 0));
  const char *zIdx = sq_row_text(c, 1), *zOrigin = sq_row_text(c, 3);
  SIdx *x;
  if (t == NULL || zIdx == NULL || (zOrigin && strcmp(zOrigin, "pk") == 0)) {
    return;
  }
  x = t->nIdx ? &t->aIdx[t->nIdx - 1] : NULL;
  if (x == NULL || strcmp(x->zName, zIdx) != 0) {
    x = quay__stable_add_idx(pS, t, zIdx);
    if (x == NULL) return;
    x->bUnique = sq_row_int(c, 2) != 0;
    x->bConstraint = zOrigin && strcmp(zOrigin, "u") == 0;
    x->bPartial = sq_row_int(c, 4) != 0;
    x->zSql = quay__schema_str(pS, sq_row_text(c, 6));
  }
  quay__sidx_add_col(pS, x, sq_row_text(c, 5));
}

static void sq_row_fk(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = sq_table_of(pS, pp, sq_row_text(c, 0));
  SFk *f;
  const char *zTo = sq_row_text(c, 4);
  if (t == NULL) return;
  f = t->nFk ? &t->aFk[t->nFk - 1] : NULL;
  /* Rows of one constraint share its id (column 1); a new id starts one. */
  if (f == NULL || sq_row_int(c, 7) == 0) {
    f = quay__stable_add_fk(pS, t, NULL,
                            sq_row_text(c, 2) ? sq_row_text(c, 2) : "");
    if (f == NULL) return;
    f->eOnUpdate = quay__action_rule(sq_row_text(c, 5));
    f->eOnDelete = quay__action_rule(sq_row_text(c, 6));
  }
  quay__sfk_add_col(pS, f, sq_row_text(c, 3), zTo);
}

static void sq_row_trigger(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = sq_table_of(pS, pp, sq_row_text(c, 0));
  char **a;
  if (t == NULL || sq_row_text(c, 1) == NULL || pS->oom) return;
  a = quay__arena_alloc(&pS->arena, sizeof(char *) * (size_t)(t->nTrigger + 1));
  if (a == NULL) {
    pS->oom = 1;
    return;
  }
  if (t->nTrigger) {
    memcpy(a, t->azTrigger, sizeof(char *) * (size_t)t->nTrigger);
  }
  a[t->nTrigger] = quay__schema_str(pS, sq_row_text(c, 1));
  t->azTrigger = a;
  t->nTrigger++;
}

/* REFERENCES t without columns: the primary key of t, in key order. */
static void sq_fk_default_cols(quay_schema *pS) {
  int i, k, j;
  for (i = 0; i < pS->nTab; i++) {
    STable *t = &pS->aTab[i];
    for (k = 0; k < t->nFk; k++) {
      SFk *f = &t->aFk[k];
      STable *p = quay__schema_find(pS, f->zTable);
      for (j = 0; j < f->nCol; j++) {
        int c, n = 0;
        if (f->azTo[j] || p == NULL) continue;
        for (c = 0; c < p->nCol; c++) {
          if (p->aCol[c].iPk == j + 1) {
            f->azTo[j] = p->aCol[c].zName;
            n++;
          }
        }
        if (n == 0) f->azTo[j] = f->azCol[j];
      }
    }
  }
}

static int sq_inspect(quay_db *pDb, quay_schema *pS, quay_err *pErr) {
  int rc, i, k;
  rc = sq_each(pDb, "SELECT m.name, m.sql FROM sqlite_master AS m WHERE "
               SQ_TABLES " ORDER BY m.name", sq_row_table, pS, pErr);
  if (rc == QUAY_OK) {
    rc = sq_each(pDb, "SELECT m.name, p.name, p.type, p.\"notnull\", "
                 "p.dflt_value, p.pk FROM sqlite_master AS m JOIN "
                 "pragma_table_info(m.name) AS p WHERE " SQ_TABLES
                 " ORDER BY m.name, p.cid", sq_row_column, pS, pErr);
  }
  if (rc == QUAY_OK) {
    rc = sq_each(pDb, "SELECT m.name, l.name, l.\"unique\", l.origin, "
                 "l.partial, i.name, s.sql FROM sqlite_master AS m JOIN "
                 "pragma_index_list(m.name) AS l JOIN "
                 "pragma_index_info(l.name) AS i LEFT JOIN sqlite_master AS "
                 "s ON s.type = 'index' AND s.name = l.name WHERE "
                 SQ_TABLES " ORDER BY m.name, l.name, i.seqno", sq_row_index,
                 pS, pErr);
  }
  if (rc == QUAY_OK) {
    rc = sq_each(pDb, "SELECT m.name, f.id, f.\"table\", f.\"from\", "
                 "f.\"to\", f.on_update, f.on_delete, f.seq FROM "
                 "sqlite_master AS m JOIN pragma_foreign_key_list(m.name) "
                 "AS f WHERE " SQ_TABLES " ORDER BY m.name, f.id, f.seq",
                 sq_row_fk, pS, pErr);
  }
  if (rc == QUAY_OK) {
    rc = sq_each(pDb, "SELECT m.tbl_name, m.sql FROM sqlite_master AS m "
                 "WHERE m.type = 'trigger' AND m.sql IS NOT NULL ORDER BY "
                 "m.tbl_name, m.name", sq_row_trigger, pS, pErr);
  }
  if (rc) return rc;
  sq_fk_default_cols(pS);
  /* A lone INTEGER primary key is the rowid: SQLite generates it. */
  for (i = 0; i < pS->nTab; i++) {
    STable *t = &pS->aTab[i];
    SCol *pPk = NULL;
    int nPk = 0;
    for (k = 0; k < t->nCol; k++) {
      if (t->aCol[k].iPk) {
        nPk++;
        pPk = &t->aCol[k];
      }
    }
    if (nPk == 1 && pPk->zType && quay__casecmp(pPk->zType, "INTEGER") == 0) {
      pPk->bAuto = 1;
    }
  }
  return pS->oom ? quay__oom(pErr) : QUAY_OK;
}
/* }================================================================== */

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

/*
** JSON paths: json_extract(doc, '$."a"."b"') gives the SQL value at the
** keys (NULL for a JSON null or a missing key), json_type(...) is NULL
** exactly when the keys are missing.  Keys are quoted labels, so "0"
** names a key, never an array element (PostgreSQL's -> with a text key
** agrees).  The path is one bound parameter.  json_extract gives 1 / 0
** for true / false, which would equal the numbers 1 and 0: a compared
** value reads a JSON boolean as the blob 't' / 'f' instead (CASE on
** json_type), and quay__json_compare_value binds a boolean as that blob,
** so a boolean equals only a boolean, as with PostgreSQL's jsonb.  An
** ordered lookup (quay__json_ordered_kind) keeps only the values of its
** comparand's kind (else NULL): SQLite would order any text above any
** number, jsonb by its own order of the kinds.
*/
/* zFn(doc, ?) with the path pPath bound. */
static void sq_json_call(Build *b, const Operand *x, const char *zFn,
                         const quay_value *pPath) {
  quay__str_cat(&b->sql, zFn);
  quay__str_char(&b->sql, '(');
  quay__emit_operand_doc(b, x);
  quay__str_cat(&b->sql, ", ");
  quay__build_param(b, pPath);
  quay__str_char(&b->sql, ')');
}

static void sq_json_path(Build *b, const Operand *x) {
  const Cond *c = x->pJson;
  Str path;
  quay_value v;
  int eKind;
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
  if (c->bJsonExists) {
    sq_json_call(b, x, "json_type", &v);
    return;
  }
  eKind = quay__json_ordered_kind(c);
  switch (eKind) {
    case 0:
      break;
    case QUAY_JK_NUMBER:
    case QUAY_JK_STRING:
      quay__str_cat(&b->sql, "CASE WHEN ");
      sq_json_call(b, x, "json_type", &v);
      quay__str_cat(&b->sql, eKind == QUAY_JK_NUMBER
                                 ? " IN ('integer', 'real') THEN "
                                 : " = 'text' THEN ");
      sq_json_call(b, x, "json_extract", &v);
      quay__str_cat(&b->sql, " END");
      return;
    case QUAY_JK_BOOL:
      quay__str_cat(&b->sql, "CASE ");
      sq_json_call(b, x, "json_type", &v);
      quay__str_cat(&b->sql, " WHEN 'true' THEN X'74' WHEN 'false' THEN "
                    "X'66' END");
      return;
    default:
      quay__str_cat(&b->sql, "NULL");
      return;
  }
  quay__str_cat(&b->sql, "CASE json_type(");
  quay__emit_operand_doc(b, x);
  quay__str_cat(&b->sql, ", ");
  quay__build_param(b, &v);
  quay__str_cat(&b->sql, ") WHEN 'true' THEN X'74' WHEN 'false' THEN X'66' "
                "ELSE json_extract(");
  quay__emit_operand_doc(b, x);
  quay__str_cat(&b->sql, ", ");
  quay__build_param(b, &v);
  quay__str_cat(&b->sql, ") END");
}

/* A name as an SQL string literal. */
static void sq_name_literal(Str *p, const char *z) {
  quay__str_char(p, '\'');
  for (; *z; z++) {
    if (*z == '\'') quay__str_char(p, '\'');
    quay__str_char(p, *z);
  }
  quay__str_char(p, '\'');
}

/*
** AUTOINCREMENT keeps the largest id ever given in sqlite_sequence, under
** the table's name; a rebuilt copy starts from the rows it copied, which
** lack a deleted last row.  Give the copy the larger of the two marks (the
** old table's row goes with DROP TABLE, the copy's is renamed with it).
*/
static int sq_rebuild_seq(Str *pOut, const char *zOld, const char *zNew,
                          int i) {
  if (i == 0) {
    quay__str_cat(pOut, "UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) "
                  "FROM sqlite_sequence WHERE name IN (");
    sq_name_literal(pOut, zOld);
    quay__str_cat(pOut, ", ");
    sq_name_literal(pOut, zNew);
    quay__str_cat(pOut, ")) WHERE name = ");
    sq_name_literal(pOut, zNew);
    return 1;
  }
  if (i == 1) {
    quay__str_cat(pOut, "INSERT INTO sqlite_sequence (name, seq) SELECT ");
    sq_name_literal(pOut, zNew);
    quay__str_cat(pOut, ", seq FROM sqlite_sequence WHERE name = ");
    sq_name_literal(pOut, zOld);
    quay__str_cat(pOut, " AND NOT EXISTS (SELECT 1 FROM sqlite_sequence "
                  "WHERE name = ");
    sq_name_literal(pOut, zNew);
    quay__str_char(pOut, ')');
    return 1;
  }
  return 0;
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
  .zTrue = "TRUE",
  .zFalse = "FALSE",
  .zDropTable = "DROP TABLE IF EXISTS",
  .zDropSuffix = "",
  .zDeferFks = "PRAGMA defer_foreign_keys = ON",
  .zUndeferFks = "PRAGMA defer_foreign_keys = OFF",
  .bSavepointRelease = 1,
  .xRawSql = NULL,
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
  .maxInsertRows = 1,
  .xInspect = sq_inspect,
  .bForwardFk = 1,          /* REFERENCES is checked on use, not at CREATE */
  .bAlterColumn = 0,
  .zFkOff = "PRAGMA foreign_keys = OFF",
  .zFkOn = "PRAGMA foreign_keys = ON",
  .zRenameQuietOn = "PRAGMA legacy_alter_table = ON",
  .zRenameQuietOff = "PRAGMA legacy_alter_table = OFF",
  .zFkCheck = "PRAGMA foreign_key_check",
  .zMigrateLock = NULL,     /* BEGIN IMMEDIATE takes the write lock */
  .zTableExists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                  "name = ?",
  .xIdentitySync = NULL,
  .xRebuildSeq = sq_rebuild_seq,
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
  .zUpdateSnapshot = " FROM (SELECT 1) AS \"quay_before\"",
  .azRealToInt = { "quay_rint(", ")" },
  .azDecToInt = { "CAST(round(", ") AS INTEGER)" },
  .zBoolMin = "MIN",
  .zBoolMax = "MAX",
  .bAvgSumCount = 0,
  .zRealToScaled = "quay_dec",
  .zScaledFit = "quay_decfit",
  .zDecSum = "quay_dsum",
  .zDecArith = "quay_darith",
};
