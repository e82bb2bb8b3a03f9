/*
** engine/drv_sqlite.c
** The SQLite driver: the quay_driver vtable over the sqlite3 C API.
** See LICENSE
**
** Connections run with PRAGMA foreign_keys = ON (read back: refused when
** it cannot take effect), a busy timeout (default 5 s; QUAY_BUSY_KEEP
** leaves the connection's busy handler alone), double-quoted string
** literals off (SQLITE_DBCONFIG_DQS_DDL/DML: "x" is always an identifier)
** and, for files, WAL journaling so readers never block the writer.
** Connections Quay opens are SQLITE_OPEN_NOMUTEX (one thread at a time).
** A host-owned handle (quay_db_wrap_sqlite) is borrowed: it gets the same
** pragmas except the journal mode, and is never closed here.  xInTxn is
** sqlite3_get_autocommit, so a transaction the host opened on the shared
** handle is seen (exec.c nests Quay's levels in it as savepoints).
**
** Error mapping (reference.md "Errors"): SQLITE_BUSY/LOCKED -> busy (with
** SQLITE_BUSY_SNAPSHOT explained: an open iter() holds an old snapshot),
** SQLITE_CONSTRAINT -> integrity, SQLITE_NOMEM -> nomem, CANTOPEN/NOTADB
** -> connection, anything else -> sql.  Messages are copied out of
** sqlite3_errmsg at once; no pointer to SQLite's text is kept.  What a
** constraint failure or a missing table means (xErrInfo) is read from the
** message ("UNIQUE constraint failed: t.a, t.b"), and for a foreign key,
** which SQLite does not name, from the failing statement's target table.
*/
#include "quayInt.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

struct DrvConn {
  sqlite3 *db;
  int borrowed;             /* host-owned: never closed */
  DrvErrInfo info;          /* the last failure, for xErrInfo */
};

/* Bytes per column for the text of a decimal read as a scaled integer. */
#define SQ_DEC_BUF 48

struct DrvStmt {
  sqlite3_stmt *pSt;
  DrvConn *pConn;
  int64_t nChanges;
  int nCol;                 /* columns of the statement */
  char *zDec;               /* nCol * SQ_DEC_BUF bytes after the struct:
                            ** decimal text of the current row */
};

/*
** {==================================================================
** Errors
** ===================================================================
*/
/* Copy identifier z[n] into zOut[nOut] (truncated). */
static void id_copy(char *zOut, size_t nOut, const char *z, size_t n) {
  if (n >= nOut) n = nOut - 1;
  memcpy(zOut, z, n);
  zOut[n] = 0;
}

/*
** Read one SQL identifier at *pz ("quoted" with "" escapes, `quoted`,
** [quoted] or bare), possibly schema-qualified (the last part is kept),
** into zOut; advance *pz past it.  Returns 0 when there is none.
*/
static int id_read(const char **pz, char *zOut, size_t nOut) {
  const char *z = *pz;
  int nPart = 0;
  for (;;) {
    size_t n = 0;
    while (*z == ' ' || *z == '\n' || *z == '\t') z++;
    if (*z == '"' || *z == '`' || *z == '[') {
      char q = *z == '[' ? ']' : *z;
      z++;
      while (z[0] && n + 1 < nOut) {
        if (z[0] == q && z[1] == q && q != ']') {
          zOut[n++] = q;
          z += 2;
        } else if (z[0] == q) {
          break;
        } else {
          zOut[n++] = *z++;
        }
      }
      if (*z != q) return 0;
      z++;
    } else {
      const char *zStart = z;
      while ((*z >= 'a' && *z <= 'z') || (*z >= 'A' && *z <= 'Z') ||
             (*z >= '0' && *z <= '9') || *z == '_' || *z == '$' ||
             (unsigned char)*z >= 0x80) {
        z++;
      }
      if (z == zStart) return 0;
      n = (size_t)(z - zStart);
      if (n >= nOut) n = nOut - 1;
      memcpy(zOut, zStart, n);
    }
    zOut[n] = 0;
    nPart++;
    if (*z != '.') break;
    z++;
  }
  *pz = z;
  return nPart > 0;
}

/* Skip keyword zKw (any case) and the spaces before it; 0 if absent. */
static int kw_skip(const char **pz, const char *zKw) {
  const char *z = *pz;
  size_t n = strlen(zKw);
  while (*z == ' ' || *z == '\n' || *z == '\t') z++;
  if (sqlite3_strnicmp(z, zKw, (int)n) != 0) return 0;
  z += n;
  if ((*z >= 'a' && *z <= 'z') || (*z >= 'A' && *z <= 'Z') || *z == '_') {
    return 0;
  }
  *pz = z;
  return 1;
}

/*
** The table a write statement targets (INSERT [OR x] INTO t, UPDATE
** [OR x] t, DELETE FROM t) into zOut; returns 'I', 'U', 'D', or 0 when
** the text is no such statement.
*/
static int stmt_target(const char *zSql, char *zOut, size_t nOut) {
  const char *z = zSql;
  int eOp = 0;
  zOut[0] = 0;
  if (z == NULL) return 0;
  if (kw_skip(&z, "INSERT") || kw_skip(&z, "REPLACE")) {
    eOp = 'I';
    if (kw_skip(&z, "OR")) id_read(&z, zOut, nOut);
    if (!kw_skip(&z, "INTO")) return 0;
  } else if (kw_skip(&z, "UPDATE")) {
    eOp = 'U';
    if (kw_skip(&z, "OR")) id_read(&z, zOut, nOut);
  } else if (kw_skip(&z, "DELETE")) {
    eOp = 'D';
    if (!kw_skip(&z, "FROM")) return 0;
  } else {
    return 0;
  }
  return id_read(&z, zOut, nOut) ? eOp : 0;
}

/*
** "UNIQUE constraint failed: t.a, t.b" (and NOT NULL's): the table and
** the columns after zPrefix.
*/
static void info_cols(DrvErrInfo *p, const char *zMsg, const char *zPrefix) {
  const char *z = strstr(zMsg, zPrefix);
  size_t nCols = 0;
  if (z == NULL) return;
  z += strlen(zPrefix);
  while (*z) {
    const char *zDot, *zEnd = strstr(z, ", ");
    size_t n = zEnd ? (size_t)(zEnd - z) : strlen(z);
    zDot = memchr(z, '.', n);
    if (zDot == NULL) break;
    if (p->zTable[0] == 0) id_copy(p->zTable, sizeof(p->zTable), z,
                                   (size_t)(zDot - z));
    n -= (size_t)(zDot + 1 - z);
    if (nCols + n + 3 >= sizeof(p->zCols)) break;
    if (nCols) {
      memcpy(p->zCols + nCols, ", ", 2);
      nCols += 2;
    }
    memcpy(p->zCols + nCols, zDot + 1, n);
    nCols += n;
    p->zCols[nCols] = 0;
    if (zEnd == NULL) break;
    z = zEnd + 2;
  }
}

/*
** Record what the failure means in schema terms, from SQLite's message
** and, for foreign keys (SQLite names none), the failing statement.
*/
static void sq_info(DrvConn *c, sqlite3_stmt *pSt, int ext,
                    const char *zMsg) {
  DrvErrInfo *p = &c->info;
  memset(p, 0, sizeof(*p));
  switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      p->eKind = ERRK_UNIQUE;
      info_cols(p, zMsg, "constraint failed: ");
      break;
    case SQLITE_CONSTRAINT_NOTNULL:
      p->eKind = ERRK_NOTNULL;
      info_cols(p, zMsg, "constraint failed: ");
      break;
    case SQLITE_CONSTRAINT_FOREIGNKEY: {
      int eOp = stmt_target(pSt ? sqlite3_sql(pSt) : NULL, p->zTable,
                            sizeof(p->zTable));
      if (eOp == 'I') {
        p->eKind = ERRK_FK;
      } else if (eOp == 'D') {
        p->eKind = ERRK_FK_REFERENCED;
        memcpy(p->zRefTable, p->zTable, sizeof(p->zRefTable));
        p->zTable[0] = 0;
      } else {
        p->eKind = eOp == 'U' ? ERRK_FK_EITHER : ERRK_FK;
      }
      break;
    }
    default:
      if ((ext & 0xff) == SQLITE_ERROR &&
          strncmp(zMsg, "no such table: ", 15) == 0) {
        const char *z = zMsg + 15;
        p->eKind = ERRK_NO_TABLE;
        if (!id_read(&z, p->zTable, sizeof(p->zTable))) p->eKind = 0;
      }
      break;
  }
}

static void sq_err_info(DrvConn *c, DrvErrInfo *pOut) {
  *pOut = c->info;
  memset(&c->info, 0, sizeof(c->info));
}

/*
** Map a SQLite result code into pErr; returns the Quay code.  c (may be
** NULL while opening) records what xErrInfo tells; pSt (may be NULL) is
** the failing statement.
*/
static int sq_err(DrvConn *c, sqlite3_stmt *pSt, int rc, const char *zWhat,
                  quay_err *pErr) {
  int code;
  int prim = rc & 0xff;
  sqlite3 *db = c ? c->db : NULL;
  const char *zMsg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (c) sq_info(c, pSt, db ? sqlite3_extended_errcode(db) : rc, zMsg);
  switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = QUAY_EBUSY; break;
    case SQLITE_CONSTRAINT: code = QUAY_EINTEGRITY; break;
    case SQLITE_NOMEM: code = QUAY_ENOMEM; break;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_AUTH: code = QUAY_ECONNECTION; break;
    default: code = QUAY_ESQL; break;
  }
  if (code == QUAY_EBUSY && db &&
      sqlite3_extended_errcode(db) == SQLITE_BUSY_SNAPSHOT) {
    /* Not a lock to wait for (SQLite calls no busy handler): a statement
    ** still reading on this connection holds a snapshot older than
    ** another connection's commit, and a write cannot start from it.
    ** Every transaction Quay opens is BEGIN IMMEDIATE, so what holds it
    ** is a statement left open outside one: an iter() loop. */
    quay__err(pErr, code, "database is locked (busy snapshot): a "
              "statement still reading on this connection, such as an open "
              "iter() loop or cursor, holds a read snapshot older than "
              "another connection's commit, so it cannot start writing, "
              "and waiting cannot help; finish or close the loop before "
              "writing, or open the write transaction (db:transaction) "
              "before iterating");
  } else if (code == QUAY_EBUSY) {
    quay__err(pErr, code, "database is locked (%s): another connection "
              "holds the lock past the busy timeout; retry, or raise "
              "busy_timeout", zMsg);
  } else if (code == QUAY_EINTEGRITY) {
    quay__err(pErr, code, "integrity error: %s", zMsg);
  } else {
    quay__err(pErr, code, "%s%s%s", zWhat ? zWhat : "", zWhat ? ": " : "",
              zMsg);
  }
  if (pErr) pErr->ext = db ? sqlite3_extended_errcode(db) : rc;
  return code;
}
/* }================================================================== */

/*
** Turning PRAGMA defer_foreign_keys off makes SQLite forget the foreign-key
** violations it counted while the pragma was on (pragma.c resets the
** count), so a key left dangling meanwhile (a NO_ACTION reference an
** on_update or a cycle's cascade broke) would be committed unseen.  The
** dialect's zUndeferFks therefore first asks whether any is pending and,
** if so, still turns the pragma off (a rollback to the savepoint restores
** the count) and fails as COMMIT would have: integrity.
*/
static int sq_undefer_fks(DrvConn *c, const char *zSql, quay_err *pErr) {
  int nCur = 0, nHigh = 0;
  int rc = sqlite3_db_status(c->db, SQLITE_DBSTATUS_DEFERRED_FKS, &nCur,
                             &nHigh, 0);
  if (rc != SQLITE_OK) return sq_err(c, NULL, rc, zSql, pErr);
  rc = sqlite3_exec(c->db, zSql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return sq_err(c, NULL, rc, NULL, pErr);
  if (nCur == 0) return QUAY_OK;
  memset(&c->info, 0, sizeof(c->info));   /* SQLite does not say which */
  quay__err(pErr, QUAY_EINTEGRITY, "integrity error: FOREIGN KEY constraint "
            "failed: the change would leave a foreign key referring to a row "
            "that does not exist, such as a NO_ACTION reference to a key "
            "that changed or a SET_DEFAULT to a missing row (SQLite does not "
            "say which); change or delete the referring rows first, or give "
            "the relation an on_update or on_delete rule that handles them");
  pErr->ext = SQLITE_CONSTRAINT_FOREIGNKEY;
  return QUAY_EINTEGRITY;
}

static int sq_simple(DrvConn *c, const char *zSql, quay_err *pErr) {
  int rc;
  if (strcmp(zSql, quay__dialect_sqlite.zUndeferFks) == 0) {
    return sq_undefer_fks(c, zSql, pErr);
  }
  rc = sqlite3_exec(c->db, zSql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return sq_err(c, NULL, rc, NULL, pErr);
  return QUAY_OK;
}

/*
** Turn off double-quoted string literals (DDL and DML): a "name" that is
** no column would otherwise become the string 'name', so a misspelled
** identifier in an index or a query silently means a constant.  Quay
** quotes every identifier with double quotes, so it needs them to stay
** identifiers.  Borrowed handles get it too (documented in quay.h).
*/
static int sq_no_dqs(DrvConn *c, quay_err *pErr) {
  int rc = sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)0);
  if (rc == SQLITE_OK) {
    rc = sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)0);
  }
  if (rc != SQLITE_OK) {
    return sq_err(c, NULL, rc, "cannot turn off double-quoted strings",
                  pErr);
  }
  return QUAY_OK;
}

/*
** PRAGMA foreign_keys = ON, read back: SQLite ignores it inside a
** transaction, so a host that hands its connection over after BEGIN
** would otherwise get a db whose on_delete rules silently do nothing
** for the life of the connection.  Refused (QUAY_EMISUSE) instead.
*/
static int sq_fk_on(DrvConn *c, quay_err *pErr) {
  sqlite3_stmt *pSt = NULL;
  int rc = sq_simple(c, "PRAGMA foreign_keys = ON", pErr), bOn = 0;
  if (rc) return rc;
  rc = sqlite3_prepare_v2(c->db, "PRAGMA foreign_keys", -1, &pSt, NULL);
  if (rc == SQLITE_OK && sqlite3_step(pSt) == SQLITE_ROW) {
    bOn = sqlite3_column_int(pSt, 0) == 1;
  }
  if (rc != SQLITE_OK) {
    rc = sq_err(c, NULL, rc, "cannot read PRAGMA foreign_keys", pErr);
    sqlite3_finalize(pSt);
    return rc;
  }
  sqlite3_finalize(pSt);
  if (bOn) return QUAY_OK;
  if (!sqlite3_get_autocommit(c->db)) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "cannot turn on foreign keys on this SQLite connection: "
                     "it is inside a transaction (the host's BEGIN), where "
                     "PRAGMA foreign_keys does nothing, and Quay's on_delete "
                     "rules need them; hand the connection to Quay "
                     "(quay_db_wrap_sqlite, quay_push_sqlite) outside a "
                     "transaction");
  }
  return quay__err(pErr, QUAY_ESQL,
                   "PRAGMA foreign_keys = ON did not take effect (an SQLite "
                   "built without foreign key support?); Quay's on_delete "
                   "rules need them");
}

/*
** quay_rint(x): a number stored in an integer field (an UPDATE's quay.F
** expression, Dialect azRealToInt) as PostgreSQL's float8 to bigint cast
** does it: to the nearest integer, ties to even; NULL stays NULL, an
** integer stays itself; NaN, an infinity or a value outside 64 bits is an
** error ("integer out of range", PostgreSQL: "bigint out of range").
*/
static void sq_rint(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  double r;
  (void)argc;
  switch (sqlite3_value_type(argv[0])) {
    case SQLITE_NULL:
      return;                           /* NULL */
    case SQLITE_INTEGER:
      sqlite3_result_int64(ctx, sqlite3_value_int64(argv[0]));
      return;
    case SQLITE_FLOAT:
      r = rint(sqlite3_value_double(argv[0]));
      /* -2^63 <= r < 2^63, both exact doubles; false for NaN. */
      if (r >= -9223372036854775808.0 && r < 9223372036854775808.0) {
        sqlite3_result_int64(ctx, (sqlite3_int64)r);
        return;
      }
      sqlite3_result_error(ctx, "integer out of range", -1);
      return;
    default:
      sqlite3_result_error(ctx, "quay_rint: not a number", -1);
      return;
  }
}

/*
** quay_dec(x, p): a number stored in a decimal field of p places, as the
** scaled integer x * 10^p (Dialect zRealToScaled), the way PostgreSQL
** assigns a float8 to numeric(d, p): the double's 15 significant digits
** (float8_numeric prints it with DBL_DIG), rounded at p places half away
** from zero.  NULL stays NULL, an integer is scaled exactly; NaN, an
** infinity or a result outside 64 bits is an error.
*/
static void sq_dec(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char zRange[] = "numeric field overflow";
  char z[40];
  int p = sqlite3_value_int(argv[1]), e, k, i, neg;
  sqlite3_int64 m = 0, q, pw = 1;
  double r;
  (void)argc;
  if (p < 0 || p > 18) {
    sqlite3_result_error(ctx, "quay_dec: places out of range", -1);
    return;
  }
  switch (sqlite3_value_type(argv[0])) {
    case SQLITE_NULL:
      return;
    case SQLITE_INTEGER:
      m = sqlite3_value_int64(argv[0]);
      for (i = 0; i < p; i++) {
        if (m > INT64_MAX / 10 || m < INT64_MIN / 10) {
          sqlite3_result_error(ctx, zRange, -1);
          return;
        }
        m *= 10;
      }
      sqlite3_result_int64(ctx, m);
      return;
    case SQLITE_FLOAT:
      break;
    default:
      sqlite3_result_error(ctx, "quay_dec: not a number", -1);
      return;
  }
  r = sqlite3_value_double(argv[0]);
  if (!isfinite(r)) {
    sqlite3_result_error(ctx, zRange, -1);
    return;
  }
  /* "-d.dddddddddddddde+XX": 15 significant digits m, exponent e; the
  ** value is m * 10^(e - 14), the scaled one m * 10^(e - 14 + p). */
  snprintf(z, sizeof(z), "%.14e", r);
  neg = z[0] == '-';
  for (i = neg; z[i] && z[i] != 'e'; i++) {
    if (z[i] >= '0' && z[i] <= '9') m = m * 10 + (z[i] - '0');
  }
  e = z[i] == 'e' ? atoi(z + i + 1) : 0;
  k = e - 14 + p;
  if (k >= 0) {
    for (i = 0; i < k; i++) {
      if (m > INT64_MAX / 10) {
        sqlite3_result_error(ctx, zRange, -1);
        return;
      }
      m *= 10;
    }
    q = m;
  } else if (-k > 15) {
    q = 0;                              /* below half a unit of place p */
  } else {
    for (i = 0; i < -k; i++) pw *= 10;
    q = m / pw + ((m % pw) * 2 >= pw);  /* half away from zero */
  }
  sqlite3_result_int64(ctx, neg ? -q : q);
}

/*
** quay_decfit(x, d): x, a value stored in a decimal field of d digits as a
** scaled integer (Dialect zScaledFit), when it has at most d digits; else
** the error PostgreSQL raises for numeric(d, p) ("numeric field
** overflow").  NULL stays NULL.
*/
static void sq_decfit(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  int d = sqlite3_value_int(argv[1]), i;
  sqlite3_int64 x, lim = 1;
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || d < 1 || d > 18) {
    sqlite3_result_error(ctx, "quay_decfit: not a scaled decimal", -1);
    return;
  }
  x = sqlite3_value_int64(argv[0]);
  for (i = 0; i < d; i++) lim *= 10;
  if (x >= lim || x <= -lim) {
    sqlite3_result_error(ctx, "numeric field overflow", -1);
    return;
  }
  sqlite3_result_int64(ctx, x);
}

/*
** quay_dsum(x): the sum of scaled decimals (Dialect zDecSum), exact past
** 64 bits, where SQLite's SUM raises "integer overflow": 12 amounts of
** 9999999999999999.99 at 2 places are 1.2e19 scaled.  The result is an
** integer when it fits, else the scaled integer as text (sq_column reads
** both with the places of the read hint); NULL for no value.  A float
** among the values (an expression computed in floats) makes the sum a
** float, as SUM does.  Without a 128-bit type, overflow raises as SUM.
*/
#ifdef __SIZEOF_INT128__
typedef __int128 DecAcc;
#else
typedef sqlite3_int64 DecAcc;
#endif
/* sqlite3_aggregate_context's memory is 8-byte aligned: the 128-bit sum
** is kept as bytes and copied in and out (DecAcc wants 16). */
typedef struct DecSum {
  unsigned char aS[sizeof(DecAcc)];
  double r;
  int n, bReal;
} DecSum;

static void sq_dsum_step(sqlite3_context *ctx, int argc,
                         sqlite3_value **argv) {
  DecSum *p;
  int t = sqlite3_value_type(argv[0]);
  (void)argc;
  if (t == SQLITE_NULL) return;
  p = sqlite3_aggregate_context(ctx, sizeof(DecSum));
  if (p == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  p->n++;
  if (t == SQLITE_INTEGER) {
    DecAcc acc;
    memcpy(&acc, p->aS, sizeof(acc));
#ifdef __SIZEOF_INT128__
    acc += sqlite3_value_int64(argv[0]);
#else
    if (__builtin_add_overflow(acc, sqlite3_value_int64(argv[0]), &acc)) {
      sqlite3_result_error(ctx, "integer overflow", -1);
    }
#endif
    memcpy(p->aS, &acc, sizeof(acc));
  } else {
    p->bReal = 1;
    p->r += sqlite3_value_double(argv[0]);
  }
}

static void sq_dsum_final(sqlite3_context *ctx) {
  DecSum *p = sqlite3_aggregate_context(ctx, 0);
  DecAcc acc = 0;
  if (p) memcpy(&acc, p->aS, sizeof(acc));
  if (p == NULL || p->n == 0) {
    sqlite3_result_null(ctx);
  } else if (p->bReal) {
    sqlite3_result_double(ctx, p->r + (double)acc);
  } else if (acc >= INT64_MIN && acc <= INT64_MAX) {
    sqlite3_result_int64(ctx, (sqlite3_int64)acc);
  } else {
#ifdef __SIZEOF_INT128__
    /* the digits of |s|, last first, then in order with the sign */
    char zRev[48], z[48];
    unsigned __int128 u = acc < 0 ? -(unsigned __int128)acc
                                  : (unsigned __int128)acc;
    int n = 0, k = 0;
    do {
      zRev[n++] = (char)('0' + (int)(u % 10));
      u /= 10;
    } while (u);
    if (acc < 0) z[k++] = '-';
    while (n) z[k++] = zRev[--n];
    sqlite3_result_text(ctx, z, k, SQLITE_TRANSIENT);
#endif
  }
}

/*
** quay_darith(op, a, b, label): decimal arithmetic on scaled integers
** (Dialect zDecArith), where SQLite's own + - * would turn a result past
** 64 bits into a float silently.  op is '+', '-' or '*'; a and b are
** scaled integers (or quay_dsum's digits past 64 bits).  The result is
** computed in 128 bits and is the exact scaled integer when it fits 64
** bits, else an error "numeric value out of range" naming label (the
** expression), as PostgreSQL's numeric raises instead of rounding.  NULL
** when either is NULL; a float operand (a float sum) gives a float.
** quay_darith(op, a, b, label, ma, mb) first scales a by ma and b by mb
** (powers of ten, to the result's places) in the same 128 bits.
*/
static int sq_dec_operand(sqlite3_value *v, DecAcc *p) {
  const unsigned char *z;
  int bNeg;
  DecAcc x = 0;
  if (sqlite3_value_type(v) == SQLITE_INTEGER) {
    *p = sqlite3_value_int64(v);
    return 1;
  }
  if (sqlite3_value_type(v) != SQLITE_TEXT) return 0;
  z = sqlite3_value_text(v);
  if (z == NULL) return 0;
  bNeg = *z == '-';
  z += bNeg;
  if (*z == 0) return 0;
  for (; *z; z++) {
    if (*z < '0' || *z > '9') return 0;
    if (__builtin_mul_overflow(x, 10, &x) ||
        __builtin_add_overflow(x, *z - '0', &x)) {
      return 0;
    }
  }
  *p = bNeg ? -x : x;
  return 1;
}

static void sq_darith(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const unsigned char *zOp = sqlite3_value_text(argv[0]);
  DecAcc a, b, r = 0;
  sqlite3_int64 ma = 1, mb = 1;
  int bOver = 0;
  char zMsg[300];
  if (zOp == NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL ||
      sqlite3_value_type(argv[2]) == SQLITE_NULL) {
    return;                             /* NULL */
  }
  if (argc == 6) {
    ma = sqlite3_value_int64(argv[4]);
    mb = sqlite3_value_int64(argv[5]);
  }
  if (!sq_dec_operand(argv[1], &a) || !sq_dec_operand(argv[2], &b)) {
    double x = sqlite3_value_double(argv[1]) * (double)ma;
    double y = sqlite3_value_double(argv[2]) * (double)mb;
    sqlite3_result_double(ctx, *zOp == '+' ? x + y : *zOp == '-' ? x - y
                                                                 : x * y);
    return;
  }
  if (__builtin_mul_overflow(a, (DecAcc)ma, &a) ||
      __builtin_mul_overflow(b, (DecAcc)mb, &b)) {
    bOver = 1;
  } else switch (*zOp) {
    case '+': bOver = __builtin_add_overflow(a, b, &r); break;
    case '-': bOver = __builtin_sub_overflow(a, b, &r); break;
    default: bOver = __builtin_mul_overflow(a, b, &r); break;
  }
  if (!bOver && r >= INT64_MIN && r <= INT64_MAX) {
    sqlite3_result_int64(ctx, (sqlite3_int64)r);
    return;
  }
  snprintf(zMsg, sizeof(zMsg), "numeric value out of range: %s passes 64 "
           "bits (an integer, or a decimal scaled to its places, on SQLite)",
           sqlite3_value_type(argv[3]) == SQLITE_TEXT
               ? (const char *)sqlite3_value_text(argv[3]) : "a decimal "
               "expression");
  sqlite3_result_error(ctx, zMsg, -1);
}

/*
** quay_conv(v, type, places, digits): a string column's value as a value
** of Quay's type (quay__text_convert), or NULL when it does not convert
** (a migration's guard refuses the step first; migrate.c).  Other values
** than text come back as they are.
*/
static void sq_conv(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  quay_value v;
  ValBuf vb;
  const char *z;
  int rc;
  (void)argc;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
    sqlite3_result_value(ctx, argv[0]);
    return;
  }
  vb.zHeap = NULL;
  z = (const char *)sqlite3_value_text(argv[0]);    /* then its length */
  if (z == NULL) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = quay__text_convert(sqlite3_value_int(argv[1]),
                          sqlite3_value_int(argv[2]),
                          sqlite3_value_int(argv[3]), z,
                          (size_t)sqlite3_value_bytes(argv[0]), &v, &vb);
  if (rc < 0) {
    sqlite3_result_error_nomem(ctx);
  } else if (rc > 0) {
    sqlite3_result_null(ctx);
  } else if (v.type == QUAY_INT) {
    sqlite3_result_int64(ctx, v.u.i);
  } else if (v.type == QUAY_REAL) {
    sqlite3_result_double(ctx, v.u.r);
  } else {
    sqlite3_result_text(ctx, v.u.z, (int)v.n, SQLITE_TRANSIENT);
  }
  quay__valbuf_free(&vb);
}

/*
** quay_ftext(x): a float as PostgreSQL's float8out writes it (a migration
** from a number field to a string one): the fewest digits that read back
** as the same double, fixed-point from 1e-4 up to 1e15, else with an
** exponent ("1e+20", "1.5e-05"); NaN, Infinity, -Infinity.  SQLite's own
** CAST keeps 15 digits (0.333333333333333).  Other values as they are.
*/
static void sq_ftext(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  char z[40], zDig[24], zOut[48];
  double v;
  int p, nDig = 0, nExp, k = 0, i;
  const char *e;
  (void)argc;
  if (sqlite3_value_type(argv[0]) != SQLITE_FLOAT) {
    sqlite3_result_value(ctx, argv[0]);
    return;
  }
  v = sqlite3_value_double(argv[0]);
  if (isnan(v) || isinf(v)) {
    sqlite3_result_text(ctx, isnan(v) ? "NaN" : v < 0 ? "-Infinity"
                                                      : "Infinity", -1,
                        SQLITE_STATIC);
    return;
  }
  for (p = 1; p <= 17; p++) {
    snprintf(z, sizeof(z), "%.*e", p - 1, v);
    if (strtod(z, NULL) == v) break;
  }
  /* z: [-]d[.ddd]e(+|-)XX */
  for (i = z[0] == '-'; z[i] && z[i] != 'e'; i++) {
    if (z[i] != '.') zDig[nDig++] = z[i];
  }
  e = strchr(z, 'e');
  nExp = e ? atoi(e + 1) : 0;
  while (nDig > 1 && zDig[nDig - 1] == '0') nDig--;   /* (p is minimal) */
  if (z[0] == '-') zOut[k++] = '-';
  if (nExp >= -4 && nExp < 15) {
    if (nExp < 0) {
      zOut[k++] = '0';
      zOut[k++] = '.';
      for (i = -1; i > nExp; i--) zOut[k++] = '0';
      for (i = 0; i < nDig; i++) zOut[k++] = zDig[i];
    } else {
      for (i = 0; i <= nExp; i++) zOut[k++] = i < nDig ? zDig[i] : '0';
      if (nDig > nExp + 1) {
        zOut[k++] = '.';
        for (i = nExp + 1; i < nDig; i++) zOut[k++] = zDig[i];
      }
    }
    zOut[k] = 0;
  } else {
    zOut[k++] = zDig[0];
    if (nDig > 1) {
      zOut[k++] = '.';
      for (i = 1; i < nDig; i++) zOut[k++] = zDig[i];
    }
    snprintf(zOut + k, sizeof(zOut) - (size_t)k, "e%c%02d",
             nExp < 0 ? '-' : '+', nExp < 0 ? -nExp : nExp);
  }
  sqlite3_result_text(ctx, zOut, -1, SQLITE_TRANSIENT);
}

/* The SQL functions Quay's own statements call (Dialect azRealToInt,
** zRealToScaled, zScaledFit, zDecSum, zDecArith), registered on every connection,
** borrowed ones too. */
static int sq_functions(DrvConn *c, quay_err *pErr) {
  static const struct {
    const char *zName;
    int nArg;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
  } aFunc[] = {
    { "quay_rint", 1, sq_rint },
    { "quay_dec", 2, sq_dec },
    { "quay_decfit", 2, sq_decfit },
    { "quay_darith", 4, sq_darith },
    { "quay_darith", 6, sq_darith },
    { "quay_conv", 4, sq_conv },
    { "quay_ftext", 1, sq_ftext },
  };
  size_t i;
  for (i = 0; i < sizeof(aFunc) / sizeof(aFunc[0]); i++) {
    if (sqlite3_create_function(c->db, aFunc[i].zName, aFunc[i].nArg,
                                SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                    SQLITE_INNOCUOUS,
                                NULL, aFunc[i].xFunc, NULL, NULL) !=
        SQLITE_OK) {
      char zMsg[64];
      snprintf(zMsg, sizeof(zMsg), "cannot register the function %s",
               aFunc[i].zName);
      return sq_err(c, NULL, sqlite3_errcode(c->db), zMsg, pErr);
    }
  }
  if (sqlite3_create_function(c->db, "quay_dsum", 1,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                  SQLITE_INNOCUOUS,
                              NULL, NULL, sq_dsum_step, sq_dsum_final) !=
      SQLITE_OK) {
    return sq_err(c, NULL, sqlite3_errcode(c->db),
                  "cannot register the function quay_dsum", pErr);
  }
  return QUAY_OK;
}

static int sq_open(const char *zUrl, const quay_open_opts *pOpts,
                   void *pHandle, DrvConn **ppConn, quay_err *pErr) {
  DrvConn *c;
  int rc, ms;
  *ppConn = NULL;
  c = quay__calloc(sizeof(*c));
  if (c == NULL) return quay__oom(pErr);
  if (pHandle) {
    c->db = pHandle;
    c->borrowed = 1;
  } else {
    int isMem = zUrl[0] == 0 || strcmp(zUrl, ":memory:") == 0;
    /* NOMUTEX: a quay_db belongs to one thread at a time (quay.h), so
    ** SQLite's per-call connection mutex is pure overhead (~4% of W1). */
    rc = sqlite3_open_v2(isMem ? ":memory:" : zUrl, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
      int code;
      if (c->db == NULL) {
        quay__free(c);
        return quay__oom(pErr);
      }
      code = sq_err(c, NULL, rc, NULL, pErr);
      quay__err(pErr, QUAY_ECONNECTION,
                "cannot open SQLite database '%s': %s", zUrl,
                sqlite3_errmsg(c->db));
      /* The driver's detail survives the restated message
      ** (SQLITE_CANTOPEN and its extended forms). */
      if (pErr) pErr->ext = sqlite3_extended_errcode(c->db);
      (void)code;
      sqlite3_close(c->db);
      quay__free(c);
      return QUAY_ECONNECTION;
    }
    sqlite3_extended_result_codes(c->db, 1);
  }
  ms = (pOpts && pOpts->busy_timeout_ms >= 0) ? pOpts->busy_timeout_ms : 5000;
  if (pOpts == NULL || pOpts->busy_timeout_ms != QUAY_BUSY_KEEP) {
    sqlite3_busy_timeout(c->db, ms);   /* replaces any busy handler */
  }
  rc = sq_no_dqs(c, pErr);
  if (rc == QUAY_OK) rc = sq_fk_on(c, pErr);
  if (rc == QUAY_OK) rc = sq_functions(c, pErr);
  if (rc == QUAY_OK && !c->borrowed && zUrl[0] &&
      strcmp(zUrl, ":memory:") != 0) {
    /* WAL: readers never block the writer; NORMAL sync is safe in WAL. */
    rc = sq_simple(c, "PRAGMA journal_mode = WAL", pErr);
    if (rc == QUAY_OK) rc = sq_simple(c, "PRAGMA synchronous = NORMAL", pErr);
    if (rc == QUAY_EBUSY) rc = QUAY_OK;   /* another process holds it */
  }
  if (rc) {
    if (!c->borrowed) sqlite3_close(c->db);
    quay__free(c);
    return rc;
  }
  *ppConn = c;
  return QUAY_OK;
}

static void sq_close(DrvConn *c) {
  if (c == NULL) return;
  if (!c->borrowed) sqlite3_close_v2(c->db);
  quay__free(c);
}

static int sq_prepare(DrvConn *c, const char *zSql, int nParam, int bPersist,
                      DrvStmt **ppStmt, quay_err *pErr) {
  DrvStmt *s;
  sqlite3_stmt *pSt = NULL;
  int rc, nCol;
  (void)nParam;
  *ppStmt = NULL;
  rc = sqlite3_prepare_v3(c->db, zSql, -1,
                          bPersist ? SQLITE_PREPARE_PERSISTENT : 0, &pSt,
                          NULL);
  if (rc != SQLITE_OK) {
    int code = sq_err(c, NULL, rc, "cannot prepare statement", pErr);
    sqlite3_finalize(pSt);
    return code;
  }
  if (pSt == NULL) return quay__err(pErr, QUAY_ESQL, "empty SQL statement");
  nCol = sqlite3_column_count(pSt);
  s = quay__calloc(sizeof(*s) + (size_t)nCol * SQ_DEC_BUF);
  if (s == NULL) {
    sqlite3_finalize(pSt);
    return quay__oom(pErr);
  }
  s->pConn = c;
  s->pSt = pSt;
  s->nCol = nCol;
  s->zDec = (char *)(s + 1);
  *ppStmt = s;
  return QUAY_OK;
}

static void sq_finalize(DrvStmt *s) {
  if (s == NULL) return;
  sqlite3_finalize(s->pSt);
  quay__free(s);
}

static int sq_exec(DrvStmt *s, const quay_value *a, int n, int mExec,
                   quay_err *pErr) {
  int i, rc = SQLITE_OK;
  sqlite3_stmt *st = s->pSt;
  /* Parameters that outlive the execution are bound without a copy. */
  sqlite3_destructor_type xDel = (mExec & QUAY_EXEC_STATIC) ? SQLITE_STATIC
                                                            : SQLITE_TRANSIENT;
  sqlite3_reset(st);
  s->nChanges = 0;
  if (n != sqlite3_bind_parameter_count(st)) {
    return quay__err(pErr, QUAY_ESQL,
                     "statement expects %d parameters, %d given",
                     sqlite3_bind_parameter_count(st), n);
  }
  for (i = 0; i < n && rc == SQLITE_OK; i++) {
    const quay_value *v = &a[i];
    switch (v->type) {
      case QUAY_NULL: rc = sqlite3_bind_null(st, i + 1); break;
      case QUAY_INT: rc = sqlite3_bind_int64(st, i + 1, v->u.i); break;
      case QUAY_REAL: rc = sqlite3_bind_double(st, i + 1, v->u.r); break;
      case QUAY_BOOL: rc = sqlite3_bind_int(st, i + 1, v->u.b ? 1 : 0); break;
      case QUAY_TEXT:
        rc = sqlite3_bind_text64(st, i + 1, v->u.z, v->n, xDel, SQLITE_UTF8);
        break;
      case QUAY_BLOB:
        rc = sqlite3_bind_blob64(st, i + 1, v->u.z, v->n, xDel);
        break;
      case QUAY_DECIMAL:                /* stored as a scaled integer */
        rc = sqlite3_bind_int64(st, i + 1,
                                quay__decimal_unscaled(v->u.z, v->n));
        break;
      case QUAY_JSON:
        rc = sqlite3_bind_text64(st, i + 1, v->u.z, v->n, SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
        break;
      default:
        return quay__err(pErr, QUAY_EMISUSE,
                         "parameter %d cannot be bound (%s)", i + 1,
                         quay__value_kind(v));
    }
  }
  if (rc != SQLITE_OK) return sq_err(s->pConn, st, rc, "cannot bind", pErr);
  return QUAY_OK;
}

static int sq_step(DrvStmt *s, quay_err *pErr) {
  int rc = sqlite3_step(s->pSt);
  if (rc == SQLITE_ROW) return QUAY_ROW;
  if (rc == SQLITE_DONE) {
    s->nChanges = sqlite3_changes64(s->pConn->db);
    return QUAY_DONE;
  }
  rc = sq_err(s->pConn, s->pSt, rc, NULL, pErr);
  sqlite3_reset(s->pSt);
  return rc;
}

static int sq_ncol(DrvStmt *s) { return sqlite3_column_count(s->pSt); }

static const char *sq_colname(DrvStmt *s, int i) {
  return sqlite3_column_name(s->pSt, i);
}

/*
** Column value typed by the declared field type when known (its read kind
** in the type table): booleans come back as QUAY_BOOL and numbers as
** QUAY_REAL whatever SQLite stored; decimals, stored as scaled integers,
** as QUAY_DECIMAL text formatted with the hint's places (valid until the
** next step, like SQLite's own text).
*/
/*
** A scaled decimal too large for 64 bits, as quay_dsum gives it: column i
** holds only digits (and a leading '-').  Non-0 with *p the decimal text
** at nPlaces places, written to z (SQ_DEC_BUF bytes).
*/
static int sq_scaled_text(sqlite3_stmt *st, int i, int nPlaces, char *z,
                          quay_value *p) {
  const char *zIn = (const char *)sqlite3_column_text(st, i);
  int n = sqlite3_column_bytes(st, i), bNeg, k, nDig, j = 0;
  if (zIn == NULL || n < 1) return 0;
  bNeg = zIn[0] == '-';
  nDig = n - bNeg;
  if (nDig < 1 || nDig + nPlaces + 4 > SQ_DEC_BUF) return 0;
  for (k = bNeg; k < n; k++) {
    if (zIn[k] < '0' || zIn[k] > '9') return 0;
  }
  if (bNeg) z[j++] = '-';
  if (nDig <= nPlaces) {
    z[j++] = '0';                       /* (not reached past 64 bits) */
  } else {
    memcpy(z + j, zIn + bNeg, (size_t)(nDig - nPlaces));
    j += nDig - nPlaces;
  }
  if (nPlaces > 0) {
    z[j++] = '.';
    for (k = nDig; k < nPlaces; k++) z[j++] = '0';
    memcpy(z + j, zIn + n - (nDig < nPlaces ? nDig : nPlaces),
           (size_t)(nDig < nPlaces ? nDig : nPlaces));
    j += nDig < nPlaces ? nDig : nPlaces;
  }
  z[j] = 0;
  p->type = QUAY_DECIMAL;
  p->u.z = z;
  p->n = (size_t)j;
  return 1;
}

static void sq_column(DrvStmt *s, int i, int eHintFlags, quay_value *p) {
  sqlite3_stmt *st = s->pSt;
  int eHint = eHintFlags & QUAY_HINT_TYPE;
  int eRead = eHint ? quay__ftype(eHint)->eRead : QUAY_NULL;
  int t;
  if (eHintFlags & QUAY_HINT_NOTNULL) {
    /* Declared NOT NULL: skip sqlite3_column_type on the hot types. */
    if (eRead == QUAY_INT) {
      p->type = QUAY_INT;
      p->u.i = sqlite3_column_int64(st, i);
      return;
    }
    if (eRead == QUAY_TEXT) {
      p->u.z = (const char *)sqlite3_column_text(st, i);
      p->n = (size_t)sqlite3_column_bytes(st, i);
      p->type = p->u.z ? QUAY_TEXT : QUAY_NULL;
      return;
    }
  }
  t = sqlite3_column_type(st, i);
  if (t == SQLITE_NULL) {
    p->type = QUAY_NULL;
    return;
  }
  switch (eRead) {
    case QUAY_BOOL:
      p->type = QUAY_BOOL;
      p->u.b = sqlite3_column_int64(st, i) != 0;
      return;
    case QUAY_REAL:
      p->type = QUAY_REAL;
      p->u.r = sqlite3_column_double(st, i);
      return;
    case QUAY_INT:
      if (t == SQLITE_INTEGER) {
        p->type = QUAY_INT;
        p->u.i = sqlite3_column_int64(st, i);
        return;
      }
      break;
    case QUAY_DECIMAL:
      if ((t == SQLITE_INTEGER || t == SQLITE_FLOAT) && i < s->nCol) {
        int nPlaces = eHintFlags >> QUAY_HINT_PLACES_SHIFT;
        char *z = s->zDec + (size_t)i * SQ_DEC_BUF;
        if (t == SQLITE_INTEGER) {
          p->n = quay__decimal_format(sqlite3_column_int64(st, i), nPlaces,
                                      z);
        } else {
          /* An integer overflow made SQLite compute in floats. */
          double r = sqlite3_column_double(st, i);
          int k;
          for (k = 0; k < nPlaces; k++) r /= 10;
          p->n = (size_t)snprintf(z, SQ_DEC_BUF, "%.*f", nPlaces, r);
          if (p->n >= SQ_DEC_BUF) p->n = SQ_DEC_BUF - 1;
        }
        p->type = QUAY_DECIMAL;
        p->u.z = z;
        return;
      }
      if (t == SQLITE_TEXT && i < s->nCol &&
          sq_scaled_text(st, i, eHintFlags >> QUAY_HINT_PLACES_SHIFT,
                         s->zDec + (size_t)i * SQ_DEC_BUF, p)) {
        return;                         /* a quay_dsum past 64 bits */
      }
      break;
    case QUAY_TEXT:
    case QUAY_JSON:
      p->type = eRead;
      p->u.z = (const char *)sqlite3_column_text(st, i);
      p->n = (size_t)sqlite3_column_bytes(st, i);
      if (p->u.z == NULL) p->type = QUAY_NULL;
      return;
    case QUAY_BLOB:
      p->type = QUAY_BLOB;
      p->u.z = sqlite3_column_blob(st, i);
      p->n = (size_t)sqlite3_column_bytes(st, i);
      if (p->u.z == NULL) p->u.z = "";
      return;
  }
  switch (t) {
    case SQLITE_INTEGER:
      p->type = QUAY_INT;
      p->u.i = sqlite3_column_int64(st, i);
      break;
    case SQLITE_FLOAT:
      p->type = QUAY_REAL;
      p->u.r = sqlite3_column_double(st, i);
      break;
    case SQLITE_BLOB:
      p->type = QUAY_BLOB;
      p->u.z = sqlite3_column_blob(st, i);
      p->n = (size_t)sqlite3_column_bytes(st, i);
      if (p->u.z == NULL) p->u.z = "";
      break;
    default:
      p->type = QUAY_TEXT;
      p->u.z = (const char *)sqlite3_column_text(st, i);
      p->n = (size_t)sqlite3_column_bytes(st, i);
      if (p->u.z == NULL) p->type = QUAY_NULL;
      break;
  }
}

static void sq_reset(DrvStmt *s) { sqlite3_reset(s->pSt); }

static int64_t sq_changes(DrvStmt *s) { return s->nChanges; }

static int sq_alive(DrvConn *c) { return c != NULL && c->db != NULL; }

/* In a transaction: the host's BEGIN on a shared handle counts too. */
static int sq_in_txn(DrvConn *c) {
  return c != NULL && c->db != NULL && !sqlite3_get_autocommit(c->db);
}

/* SQLITE_DBCONFIG_ENABLE_FKEY: no allocation, no statement; changing it
** expires the prepared statements (they are prepared again when next
** stepped, with or without their foreign-key checks). */
static int sq_fk_enforce(DrvConn *c, int eOn) {
  int bNow = 0;
  if (c == NULL || c->db == NULL) return 0;
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_FKEY, eOn < 0 ? -1 : eOn,
                    &bNow);
  return bNow;
}

static int64_t sq_last_insert_id(DrvConn *c) {
  return sqlite3_last_insert_rowid(c->db);
}

const quay_driver quay__drv_sqlite = {
  .iVersion = 5,
  .zName = "sqlite",
  .pDialect = &quay__dialect_sqlite,
  .xOpen = sq_open,
  .xClose = sq_close,
  .xPrepare = sq_prepare,
  .xFinalize = sq_finalize,
  .xExec = sq_exec,
  .xStep = sq_step,
  .xColumnCount = sq_ncol,
  .xColumnName = sq_colname,
  .xColumn = sq_column,
  .xReset = sq_reset,
  .xChanges = sq_changes,
  .xSimple = sq_simple,
  .xAlive = sq_alive,
  .xLastInsertId = sq_last_insert_id,
  .xExecBatch = NULL,       /* in-process: nothing to save by batching */
  .xCheckUrl = NULL,        /* any path will do */
  .xErrInfo = sq_err_info,
  .bReplicas = 0,           /* an embedded database has none */
  .xInTxn = sq_in_txn,
  .xFkEnforce = sq_fk_enforce,
};
