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
** belongs_to) is added afterwards (bForwardFk = 0; migrate.c adds it).
**
** Schema evolution: the live schema of the current schema (the first of
** search_path) comes from pg_catalog in four queries (columns, index
** columns, foreign key columns, CHECK constraints).  DDL is
** transactional and ALTER TABLE changes anything in place; a migration
** holds a transaction-scoped advisory lock so two processes never run one
** at the same time.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void pg_param(Str *p, int iParam) {
  quay__str_printf(p, "$%d", iParam);
}

static void pg_in_array(Str *p, const char *zExpr, int iParam, int eType) {
  quay__str_printf(p, "%s = ANY($%d::%s)", zExpr, iParam,
                   quay__ftype(eType)->zPgArray);
}

/* One element of an array literal (NULL unquoted, text quoted); bytes
** of a bytea array (bBytes) in hex, whether blob or text. */
static void pg_array_elem(Str *pOut, const quay_value *v, int bBytes) {
  int eType = v->type;
  if (bBytes && eType == QUAY_TEXT) eType = QUAY_BLOB;
  switch (eType) {
    case QUAY_INT: quay__str_int(pOut, v->u.i); break;
    case QUAY_REAL:
      if (isinf(v->u.r)) {
        quay__str_cat(pOut, v->u.r < 0 ? "-Infinity" : "Infinity");
      } else {
        quay__str_printf(pOut, "%.17g", v->u.r);
      }
      break;
    case QUAY_BOOL: quay__str_cat(pOut, v->u.b ? "1" : "0"); break;
    case QUAY_TEXT:
    case QUAY_DECIMAL:
    case QUAY_JSON: {
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
** {==================================================================
** The live schema
** ===================================================================
*/
/* Tables of the current schema, quay_migrations left out. */
#define PG_TABLES "n.nspname = current_schema() AND c.relkind IN ('r', 'p') " \
                  "AND c.relname <> 'quay_migrations'"

static const char *pg_row_text(quay_cursor *c, int i) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  return v.type == QUAY_TEXT ? v.u.z : NULL;
}

static int64_t pg_row_int(quay_cursor *c, int i) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  if (v.type == QUAY_INT) return v.u.i;
  if (v.type == QUAY_TEXT) return atoll(v.u.z);
  return 0;
}

static int pg_row_bool(quay_cursor *c, int i) {
  quay_value v;
  quay_cursor_value(c, i, &v);
  if (v.type == QUAY_BOOL) return v.u.b;
  if (v.type == QUAY_INT) return v.u.i != 0;
  return v.type == QUAY_TEXT && (v.u.z[0] == 't' || v.u.z[0] == 'T');
}

static STable *pg_table_of(quay_schema *pS, STable **ppLast, const char *z) {
  if (z == NULL) return NULL;
  if (*ppLast && strcmp((*ppLast)->zName, z) == 0) return *ppLast;
  *ppLast = quay__schema_find(pS, z);
  if (*ppLast == NULL) *ppLast = quay__schema_add_table(pS, z);
  return *ppLast;
}

/* An action code of pg_constraint (confdeltype) as a rule. */
static int pg_action(const char *z) {
  switch (z ? z[0] : 'a') {
    case 'c': return QUAY_CASCADE;
    case 'n': return QUAY_SET_NULL;
    case 'd': return QUAY_SET_DEFAULT;
    case 'r': return QUAY_RESTRICT;
  }
  return QUAY_NO_ACTION;
}

static int pg_each(quay_db *pDb, const char *zSql,
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

static void pg_row_column(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = pg_table_of(pS, pp, pg_row_text(c, 0));
  SCol *col;
  if (t == NULL || pg_row_text(c, 1) == NULL) return;   /* a table, no column */
  col = quay__stable_add_col(pS, t, pg_row_text(c, 1));
  if (col == NULL) return;
  col->zType = quay__schema_str(pS, pg_row_text(c, 2) ? pg_row_text(c, 2) : "");
  col->bNull = !pg_row_bool(c, 3);
  col->zDefault = quay__schema_str(pS, pg_row_text(c, 4));
  col->bAuto = pg_row_bool(c, 5);
}

static void pg_row_index(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = pg_table_of(pS, pp, pg_row_text(c, 0));
  const char *zIdx = pg_row_text(c, 1), *zCon = pg_row_text(c, 4);
  SIdx *x;
  if (t == NULL || zIdx == NULL) return;
  if (pg_row_bool(c, 3)) {                        /* the primary key */
    SCol *col = pg_row_text(c, 6) ? quay__stable_find_col(t, pg_row_text(c, 6))
                               : NULL;
    if (t->zPkName == NULL) t->zPkName = quay__schema_str(pS, zIdx);
    if (col) col->iPk = (int)pg_row_int(c, 7);
    return;
  }
  x = t->nIdx ? &t->aIdx[t->nIdx - 1] : NULL;
  if (x == NULL || strcmp(x->zName, zIdx) != 0) {
    x = quay__stable_add_idx(pS, t, zIdx);
    if (x == NULL) return;
    x->bUnique = pg_row_bool(c, 2);
    x->bConstraint = zCon && zCon[0] == 'u';
    x->bPartial = pg_row_bool(c, 5);
  }
  quay__sidx_add_col(pS, x, pg_row_text(c, 6));
}

static void pg_row_fk(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = pg_table_of(pS, pp, pg_row_text(c, 0));
  const char *zName = pg_row_text(c, 1);
  SFk *f;
  if (t == NULL || zName == NULL) return;
  f = t->nFk ? &t->aFk[t->nFk - 1] : NULL;
  if (f == NULL || f->zName == NULL || strcmp(f->zName, zName) != 0) {
    f = quay__stable_add_fk(pS, t, zName, pg_row_text(c, 4) ? pg_row_text(c, 4)
                                                         : "");
    if (f == NULL) return;
    f->eOnDelete = pg_action(pg_row_text(c, 6));
    f->eOnUpdate = pg_action(pg_row_text(c, 7));
    f->bDeferrable = pg_row_bool(c, 8);
  }
  quay__sfk_add_col(pS, f, pg_row_text(c, 3), pg_row_text(c, 5));
}

static void pg_row_check(quay_schema *pS, STable **pp, quay_cursor *c) {
  STable *t = pg_table_of(pS, pp, pg_row_text(c, 0));
  const char *z = pg_row_text(c, 2);
  size_t n;
  char *zExpr;
  if (t == NULL || z == NULL) return;
  /* "CHECK ((x > 0))" -> "(x > 0)" */
  if (strncmp(z, "CHECK (", 7) == 0) z += 7;
  n = strlen(z);
  while (n > 0 && z[n - 1] != ')') n--;
  if (n > 0) n--;
  zExpr = quay__arena_strdup(&pS->arena, z, n);
  if (zExpr == NULL) {
    pS->oom = 1;
    return;
  }
  quay__stable_add_check(pS, t, pg_row_text(c, 1), zExpr);
}

static int pg_inspect(quay_db *pDb, quay_schema *pS, quay_err *pErr) {
  int rc;
  rc = pg_each(pDb,
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
    "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '' "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND "
    "NOT a.attisdropped LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
    "AND d.adnum = a.attnum WHERE " PG_TABLES
    " ORDER BY c.relname COLLATE \"C\", a.attnum", pg_row_column, pS, pErr);
  if (rc == QUAY_OK) {
    rc = pg_each(pDb,
      "SELECT c.relname, ic.relname, i.indisunique, i.indisprimary, "
      "con.contype, i.indpred IS NOT NULL OR i.indexprs IS NOT NULL, "
      "a.attname, k.ord FROM pg_index i JOIN pg_class c ON c.oid = "
      "i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_constraint con "
      "ON con.conindid = i.indexrelid AND con.conrelid = c.oid AND "
      "con.contype IN ('u', 'p', 'x') CROSS JOIN LATERAL "
      "unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) LEFT JOIN "
      "pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE "
      PG_TABLES " AND k.ord <= i.indnkeyatts ORDER BY c.relname COLLATE "
      "\"C\", ic.relname COLLATE \"C\", k.ord", pg_row_index, pS, pErr);
  }
  if (rc == QUAY_OK) {
    rc = pg_each(pDb,
      "SELECT c.relname, con.conname, k.ord, a.attname, fc.relname, "
      "fa.attname, con.confdeltype, con.confupdtype, con.condeferrable "
      "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace JOIN pg_class fc ON fc.oid = "
      "con.confrelid CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH "
      "ORDINALITY AS k(a1, a2, ord) JOIN pg_attribute a ON a.attrelid = "
      "con.conrelid AND a.attnum = k.a1 JOIN pg_attribute fa ON fa.attrelid "
      "= con.confrelid AND fa.attnum = k.a2 WHERE con.contype = 'f' AND "
      PG_TABLES " ORDER BY c.relname COLLATE \"C\", con.conname COLLATE "
      "\"C\", k.ord", pg_row_fk, pS, pErr);
  }
  if (rc == QUAY_OK) {
    rc = pg_each(pDb,
      "SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) FROM "
      "pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace WHERE con.contype = 'c' AND "
      PG_TABLES " ORDER BY c.relname COLLATE \"C\", con.conname COLLATE "
      "\"C\"", pg_row_check, pS, pErr);
  }
  if (rc) return rc;
  return pS->oom ? quay__oom(pErr) : QUAY_OK;
}

/*
** zName (quoted as an identifier when bIdent) as an SQL string literal:
** pg_get_serial_sequence takes the table as SQL text (quoted, inside a
** string literal) and the column as a plain name.
*/
static void pg_ident_literal(Str *pOut, const char *zName, int bIdent) {
  Str t;
  size_t i;
  quay__str_init(&t);
  if (bIdent) quay__str_ident(&t, zName);
  else quay__str_cat(&t, zName);
  quay__str_char(pOut, '\'');
  for (i = 0; !t.oom && i < t.n; i++) {
    if (t.z[i] == '\'') quay__str_char(pOut, '\'');
    quay__str_char(pOut, t.z[i]);
  }
  quay__str_char(pOut, '\'');
  if (t.oom) pOut->oom = 1;
  quay__str_free(&t);
}

/* After an identity is added to a column that has rows: start it past
** the largest value. */
static void pg_identity_sync(Str *pOut, const char *zTable,
                             const char *zCol) {
  quay__str_cat(pOut, "SELECT setval(pg_get_serial_sequence(");
  pg_ident_literal(pOut, zTable, 1);
  quay__str_cat(pOut, ", ");
  pg_ident_literal(pOut, zCol, 0);
  quay__str_cat(pOut, "), COALESCE((SELECT MAX(");
  quay__str_ident(pOut, zCol);
  quay__str_cat(pOut, ") FROM ");
  quay__str_ident(pOut, zTable);
  quay__str_cat(pOut, "), 0) + 1, false)");
}

/*
** An identity does not see keys given explicitly: once rows got keys up to
** $1, move it there if it is behind, so that the keys it hands out next do
** not collide with them.  Reading the sequence and setting it are two
** steps: a concurrent insert between them can make the setval move it
** back, and a later key then collides (an integrity error, never a
** duplicate: the key is unique), as with any explicit keys in the range
** the identity serves.
*/
static void pg_identity_raise(Str *pOut, const char *zTable,
                              const char *zCol) {
  quay__str_cat(pOut, "SELECT setval(q.s, $1::bigint) FROM (SELECT "
                "pg_get_serial_sequence(");
  pg_ident_literal(pOut, zTable, 1);
  quay__str_cat(pOut, ", ");
  pg_ident_literal(pOut, zCol, 0);
  quay__str_cat(pOut, ") AS s) AS q WHERE q.s IS NOT NULL AND $1::bigint > "
                "COALESCE((SELECT last_value FROM pg_sequences WHERE "
                "format('%I.%I', schemaname, sequencename) = q.s), 0)");
}
/* }================================================================== */

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
  quay__str_printf(&b->sql, "::%s", quay__ftype(eType)->zPgArray);
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

/* doc -> k1 -> k2 ... (has_key's key last), keys bound. */
static void pg_json_chain(Build *b, const Operand *x) {
  const Cond *c = x->pJson;
  const char *z = c->zJsonPath, *zEnd = c->zJsonPath + c->nJsonPath;
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
}

/*
** JSON paths: doc -> 'a' -> 'b' with text keys (so "0" names a key, never
** an array element, as on SQLite), NULLIF'd so that a JSON null reads as
** SQL NULL; an existence test leaves the JSON null (not SQL NULL) in.
** Values compared with it are jsonb documents (bJsonDocCompare), so
** numbers, strings and booleans compare as JSON values.  An ordered
** lookup (quay__json_ordered_kind) keeps only the values of its
** comparand's kind (else NULL), instead of jsonb's order of the kinds.
*/
static void pg_json_path(Build *b, const Operand *x) {
  const Cond *c = x->pJson;
  int k = c->bJsonExists ? 0 : quay__json_ordered_kind(c);
  if (k < 0) {
    quay__str_cat(&b->sql, "CAST(NULL AS jsonb)");
    return;
  }
  if (k > 0) {
    quay__str_cat(&b->sql, "CASE WHEN jsonb_typeof(");
    pg_json_chain(b, x);
    quay__str_printf(&b->sql, ") = '%s' THEN ",
                     k == QUAY_JK_NUMBER ? "number"
                     : k == QUAY_JK_STRING ? "string" : "boolean");
    pg_json_chain(b, x);
    quay__str_cat(&b->sql, " END");
    return;
  }
  quay__str_cat(&b->sql, c->bJsonExists ? "(" : "NULLIF(");
  pg_json_chain(b, x);
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
  .zTrue = "TRUE",
  .zFalse = "FALSE",
  .zDropTable = "DROP TABLE IF EXISTS",
  .zDropSuffix = " CASCADE",
  .zDeferFks = "SET CONSTRAINTS ALL DEFERRED",
  .zUndeferFks = "SET CONSTRAINTS ALL IMMEDIATE",
  .bSavepointRelease = 1,
  .xRawSql = pg_raw_sql,
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
  .maxInsertRows = 500,     /* multi-row VALUES */
  .xInspect = pg_inspect,
  .bForwardFk = 0,          /* REFERENCES is checked at CREATE TABLE */
  .bAlterColumn = 1,
  .zFkOff = NULL,
  .zFkOn = NULL,
  .zRenameQuietOn = NULL,
  .zRenameQuietOff = NULL,
  .zFkCheck = NULL,
  /* One key for every Quay migration of a database: "quay" in ASCII. */
  .zMigrateLock = "SELECT pg_advisory_xact_lock(1903524217)",
  .zTableExists = "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = "
                  "c.relnamespace WHERE n.nspname = current_schema() AND "
                  "c.relname = $1",
  .xIdentitySync = pg_identity_sync,
  .xIdentityRaise = pg_identity_raise,
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
  .zUpdateSnapshot = NULL,
  .azRealToInt = { "CAST(", " AS BIGINT)" },
  .azDecToInt = { "CAST(", " AS BIGINT)" },
  .zBoolMin = "BOOL_AND",
  .zBoolMax = "BOOL_OR",
  .zUuidMinMaxArg = "::text COLLATE \"C\"",
  .bAvgSumCount = 1,
  .azIntSum = { "CAST(", " AS BIGINT)" },
};
