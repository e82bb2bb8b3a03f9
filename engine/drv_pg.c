/*
** engine/drv_pg.c
** The PostgreSQL driver: the quay_driver vtable over libpq.
** See LICENSE
**
** This file owns every call into libpq.  exec.c above it caches
** statements by SQL text, runs transactions and turns a dead connection
** into QUAY_ECONNECTION; this file sends statements, reads rows and maps
** the server's errors.
**
** Statements.  A DrvStmt holds its SQL text.  A statement that exec.c
** caches (bPersist) runs its first execution as a one-shot unnamed
** statement (PQexecParams: Parse, Bind and Execute in one round trip), and
** from its second execution on as a named server-side prepared statement
** "quay_s<n>": Parse, Describe, Bind and Execute go in one pipeline (one
** round trip) the first time, then PQexecPrepared (Bind and Execute) each
** time.  SQL that runs once (DDL, most raw SQL) thus never pays for a
** prepare, and SQL that repeats is parsed and planned once per
** connection.  A finalized named statement is not deallocated at once: it
** goes on the connection's zombie list and its DEALLOCATE is sent before
** the next statement (nothing is sent when the connection closes: the
** server frees them with the session).
**
** Poolers.  Opened with no_prepare (quay.open's { prepare = false }), a
** connection keeps no state in the server session beyond one
** transaction, which is what a pooler in transaction mode (PgBouncer)
** allows: every execution is a one-shot unnamed statement (pipelines of
** them included), a streamed query reads its whole result at once
** instead of through a WITH HOLD cursor, and a TEXT value that needs its
** statement described first runs inside a transaction when none is open.
** The cost is a parse and plan per execution (docs/postgresql.md has the
** figures).  The session settings below are ones PgBouncer tracks and
** restores per client (client_encoding, DateStyle, TimeZone), or ones
** whose loss changes nothing here (bytea_output: both formats decode).
** lock_timeout (busy_timeout) is neither: set on the session it would
** apply to whichever client gets that server connection next, and not to
** this one's next transaction.  So there it goes with every statement
** instead, as a transaction-local set_config() in the same pipeline (one
** implicit or explicit transaction, one server connection); a statement
** that refuses to run in a transaction block (VACUUM) runs without it.
**
** Parameters go as text, typed from their value (INT int8, REAL float8,
** BOOL bool; TEXT and NULL "unknown", so the server infers them from the
** context: timestamps, varchar, ...).  BLOB values go in binary format as
** bytea.  Lua strings reach the engine as TEXT even for blob fields, so a
** TEXT value that text format cannot carry intact (a NUL byte, invalid
** UTF-8, or a backslash, which bytea's text input would interpret) is sent
** through a described prepared statement: PQdescribePrepared tells which
** parameters are bytea, and those go in binary format.  A named statement
** executed with values of other types than it was prepared with runs as a
** one-shot statement instead, so the cache never changes what a value
** means.
**
** Results are read in text format and converted by xColumn: with the
** declared field type (eHint) when the engine knows it, else by the
** column's type OID (int2/int4/int8/oid -> INT, numeric -> INT when
** integral, float -> REAL, bool -> BOOL, bytea -> BLOB, the rest TEXT).
** Timestamps read under a datetime hint are cut to "YYYY-MM-DD HH:MM:SS".
** bytea hex text is decoded when the row is stepped onto (xStep can fail,
** xColumn cannot) into a buffer of the statement, so values stay borrowed
** until the next step, as the vtable promises.
**
** Streaming.  A normal query (bStream == 0) fetches its whole result in
** one round trip; xStep walks the PGresult.  The connection is then free,
** so the loader may run prefetch steps between rows.  A streamed query
** (bStream, qs:iter()) must keep the client in constant memory while other
** statements run on the same connection between its chunks, which rules
** out libpq's single-row mode (it holds the connection until the last
** row).  It runs as a server-side cursor:
**     DECLARE quay_c<n> NO SCROLL CURSOR WITH HOLD FOR <sql>
**     FETCH FORWARD 256 FROM quay_c<n>      (once per chunk)
**     CLOSE quay_c<n>                        (at xReset)
** the DECLARE and the first FETCH in one pipeline (one round trip), so a
** short iter() costs two round trips and a long one one more per chunk.
** WITH HOLD lets the cursor outlive a transaction that commits under it;
** declared outside a transaction, the server materializes the result at
** once (on the server, not here).  A cursor declared inside a transaction
** dies if that transaction or savepoint rolls back, and a failed CLOSE
** would abort the user's transaction, so inside a transaction the cursor
** is closed by a DO block that checks pg_cursors first.  While the
** transaction has failed nothing can be sent; the close is queued and
** sent with the next statement once the transaction is over.
**
** Errors.  SQLSTATE is copied into quay_err.zState and mapped: class 23
** integrity; 40001, 40P01, 55P03 busy; class 08 (but 08P01, a bad Bind),
** 57P01-57P03 and a connection that libpq reports as CONNECTION_BAD
** connection; else sql.  So `connection` means the server is gone: any
** other failure leaves the session usable (exec.c rolls back the levels
** it aborted).
** Messages are copied out of the PGresult at once.  A failed statement
** aborts a PostgreSQL transaction (SQLite's does not): later statements
** get 25P02, whose message then names the first failure, and a COMMIT
** the server turns into ROLLBACK is reported as that failure, never as
** success.
**
** Pipeline mode.  pipe_run (below) sends a batch of protocol steps and
** reads their results in one round trip; it serves the prepare and cursor
** paths above.  Sending sibling prefetches together is the loader's job
** (not done yet); the driver side would be an xSend (queue one
** statement's Bind/Execute, PIPE_EXEC_PREPARED) and an xReceive (read the
** next statement's result into its DrvStmt), i.e. pipe_run split at
** PQpipelineSync.
*/
#include "quayInt.h"

#include <libpq-fe.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Type OIDs of the built-in types we convert (pg_type.dat). */
#define OID_BOOL        16
#define OID_BYTEA       17
#define OID_INT8        20
#define OID_INT2        21
#define OID_INT4        23
#define OID_OID         26
#define OID_FLOAT4      700
#define OID_FLOAT8      701
#define OID_TIMESTAMP   1114
#define OID_TIMESTAMPTZ 1184
#define OID_NUMERIC     1700
#define OID_JSONB       3802

#define PG_FETCH_ROWS 256   /* rows per FETCH of a streamed query */

typedef struct PendClose PendClose;

struct DrvConn {
  PGconn *pg;
  int bNoPrepare;           /* never a named statement nor a cursor (a
                            ** pooler in transaction mode runs each
                            ** transaction on any server connection) */
  char zLockSql[64];        /* bNoPrepare with a busy_timeout: the
                            ** set_config() sent before each statement;
                            ** "" when none */
  unsigned nName;           /* counter for statement and cursor names */
  DrvStmt *pZombie;         /* finalized named statements to DEALLOCATE */
  PendClose *pClose;        /* cursors to close once the txn allows */
  /* The last statement failure, for a transaction it aborted (25P02 and
  ** a COMMIT that the server turns into ROLLBACK report it). */
  int lastCode;
  char zLastState[6];
  char zLastMsg[200];
  DrvErrInfo info;          /* the last failure, for xErrInfo */
};

/* A cursor whose CLOSE could not be sent (failed transaction). */
struct PendClose {
  PendClose *pNext;
  char zName[32];
};

struct DrvStmt {
  DrvConn *pConn;
  char *zSql;               /* the SQL text (owned) */
  int nParam;               /* parameters the text takes */
  int bPersist;             /* cached by exec.c: worth preparing */
  int nExec;                /* executions so far */
  char zName[32];           /* server-side prepared name, "" = none */
  Oid *aPrepType;           /* types given at prepare (nParam) */
  Oid *aParamType;          /* types the server resolved (same block) */
  /* current execution */
  PGresult *pRes;           /* result, or the current chunk */
  int iRow;                 /* current row in pRes, -1 before the first */
  int nRow;                 /* rows in pRes */
  int nCol;
  int64_t nChanges;         /* rows changed (PQcmdTuples) */
  char zCursor[32];         /* open cursor of a streamed query, or "" */
  int bCurIdle;             /* cursor declared outside a transaction */
  int bMore;                /* the last FETCH filled its chunk */
  /* bytea values of the current row, decoded */
  char *zBuf; size_t nBuf, nBufAlloc;
  size_t *aOff;             /* per column: offset in zBuf, or (size_t)-1 */
  size_t *aLen;             /* per column: decoded length */
  int nColAlloc;
  int bHasBytea;            /* pRes has a bytea column */
  DrvStmt *pNextZombie;
};


/*
** {==================================================================
** Errors
** ===================================================================
*/
/* Non-0 when the connection is gone. */
static int conn_bad(DrvConn *c) {
  return c == NULL || c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD;
}

/*
** Copy z into zOut[nOut], trailing newlines dropped.  Text too long is cut
** at a word boundary (never inside an identifier or a UTF-8 character)
** and ends with "...".
*/
static void copy_msg(char *zOut, size_t nOut, const char *z) {
  size_t n;
  if (z == NULL) z = "";
  n = strlen(z);
  while (n > 0 && (z[n - 1] == '\n' || z[n - 1] == ' ')) n--;
  if (n >= nOut) {
    size_t k = nOut - 4;              /* room for "..." and the NUL */
    size_t i = k;
    while (i > 0 && i + 60 > k && z[i] != ' ') i--;
    if (z[i] == ' ') k = i;
    while (k > 0 && ((unsigned char)z[k] & 0xc0) == 0x80) k--;
    memcpy(zOut, z, k);
    memcpy(zOut + k, "...", 4);
    return;
  }
  memcpy(zOut, z, n);
  zOut[n] = 0;
}

/* Copy the text inside the first pair of zOpen ... zClose after z. */
static int text_between(const char *z, const char *zOpen, char cClose,
                        char *zOut, size_t nOut) {
  const char *zA, *zB;
  size_t n;
  zOut[0] = 0;
  if (z == NULL || (zA = strstr(z, zOpen)) == NULL) return 0;
  zA += strlen(zOpen);
  zB = strchr(zA, cClose);
  if (zB == NULL) return 0;
  n = (size_t)(zB - zA);
  if (n >= nOut) return 0;
  memcpy(zOut, zA, n);
  zOut[n] = 0;
  return 1;
}

/*
** Record what a failure means in the database's names (xErrInfo), from
** the result's diagnostic fields: the table, column and constraint
** fields are not translated; the DETAIL ("Key (a, b)=(...)") and the
** words of the message are, so what depends on them degrades to less
** detail under a non-English lc_messages, never to a wrong name.
*/
static void pg_info(DrvConn *c, const PGresult *r, const char *zState) {
  DrvErrInfo *p = &c->info;
  const char *zTable, *zCol, *zDetail, *zPrim, *zCons;
  memset(p, 0, sizeof(*p));
  if (r == NULL || zState == NULL) return;
  zTable = PQresultErrorField(r, PG_DIAG_TABLE_NAME);
  zCol = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
  zDetail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
  zPrim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  zCons = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
  if (zTable) snprintf(p->zTable, sizeof(p->zTable), "%s", zTable);
  if (strcmp(zState, "23505") == 0) {
    p->eKind = ERRK_UNIQUE;
    text_between(zDetail, "Key (", ')', p->zCols, sizeof(p->zCols));
  } else if (strcmp(zState, "23502") == 0) {
    p->eKind = ERRK_NOTNULL;
    if (zCol) snprintf(p->zCols, sizeof(p->zCols), "%s", zCol);
  } else if (strcmp(zState, "23503") == 0) {
    /* zTable is the referencing table either way. */
    if ((zDetail && strstr(zDetail, "is still referenced")) ||
        (zPrim && strncmp(zPrim, "update or delete", 16) == 0)) {
      p->eKind = ERRK_FK_REFERENCED;
      text_between(zPrim, "on table \"", '"', p->zRefTable,
                   sizeof(p->zRefTable));
    } else {
      p->eKind = ERRK_FK;
      text_between(zDetail, "Key (", ')', p->zCols, sizeof(p->zCols));
      text_between(zDetail, "present in table \"", '"', p->zRefTable,
                   sizeof(p->zRefTable));
    }
    if (p->zCols[0] == 0 && zCons && zTable) {
      /* The default name of a foreign key: <table>_<cols>_fkey. */
      size_t nT = strlen(zTable), nC = strlen(zCons);
      if (nC > nT + 6 && strncmp(zCons, zTable, nT) == 0 &&
          zCons[nT] == '_' && strcmp(zCons + nC - 5, "_fkey") == 0 &&
          nC - nT - 6 < sizeof(p->zCols)) {
        memcpy(p->zCols, zCons + nT + 1, nC - nT - 6);
        p->zCols[nC - nT - 6] = 0;
      }
    }
  } else if (strcmp(zState, "42P01") == 0) {
    p->eKind = ERRK_NO_TABLE;
    text_between(zPrim, "\"", '"', p->zTable, sizeof(p->zTable));
  }
}

static void pg_err_info(DrvConn *c, DrvErrInfo *pOut) {
  *pOut = c->info;
  memset(&c->info, 0, sizeof(c->info));
}

/*
** Map a failed result (or a NULL one: out of memory or connection lost)
** into pErr.  zWhat prefixes the message.  Returns the Quay code.  The
** texts are copied: nothing of libpq's is kept.
*/
static int pg_err(DrvConn *c, const PGresult *r, const char *zWhat,
                  quay_err *pErr) {
  const char *zState = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *zPrim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                        : NULL;
  const char *zDetail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)
                          : NULL;
  char zMsg[300], zDet[200];
  int code = QUAY_ESQL;
  if (zPrim) {
    copy_msg(zMsg, sizeof(zMsg), zPrim);
  } else if (r && PQresultErrorMessage(r)[0]) {
    copy_msg(zMsg, sizeof(zMsg), PQresultErrorMessage(r));
  } else if (c && c->pg) {
    copy_msg(zMsg, sizeof(zMsg), PQerrorMessage(c->pg));
  } else {
    copy_msg(zMsg, sizeof(zMsg), "no connection");
  }
  /* A NOT NULL failure's detail is the whole row: long, and no help. */
  copy_msg(zDet, sizeof(zDet),
           zState && strcmp(zState, "23502") == 0 ? NULL : zDetail);
  if (zState && (strcmp(zState, "42P05") == 0 ||
                 strcmp(zState, "26000") == 0) && zPrim &&
      strstr(zPrim, "\"quay_s") != NULL && zDet[0] == 0) {
    /* Quay's own named statement clashed or vanished: the session is
    ** shared or switched under it, which a pooler in transaction mode
    ** does. */
    snprintf(zDet, sizeof(zDet), "is the server behind a pooler in "
             "transaction mode, such as PgBouncer? open the db with "
             "{ prepare = false }");
  }
  if (zState && strcmp(zState, "25P02") == 0 && c && c->zLastMsg[0]) {
    /* "current transaction is aborted": say what aborted it. */
    char zFirst[100];
    copy_msg(zFirst, sizeof(zFirst), c->zLastMsg);
    snprintf(zDet, sizeof(zDet), "an earlier statement of this "
             "transaction failed: %s; roll back, or use a nested "
             "db:transaction", zFirst);
  }
  if (c) pg_info(c, r, zState && strlen(zState) == 5 ? zState : NULL);
  if (zState && strlen(zState) == 5) {
    if (zState[0] == '2' && zState[1] == '3') {
      code = QUAY_EINTEGRITY;
    } else if (strcmp(zState, "40001") == 0 || strcmp(zState, "40P01") == 0
               || strcmp(zState, "55P03") == 0) {
      code = QUAY_EBUSY;
    } else if ((zState[0] == '0' && zState[1] == '8' &&
                strcmp(zState, "08P01") != 0) ||
               strcmp(zState, "57P01") == 0 || strcmp(zState, "57P02") == 0
               || strcmp(zState, "57P03") == 0) {
      /* 08P01 (protocol_violation) is what the server says of a Bind with
      ** the wrong number of values: the statement's fault, and the
      ** connection goes on, so it stays sql. */
      code = QUAY_ECONNECTION;
    }
  } else if (r == NULL && !conn_bad(c) && zMsg[0] == 0) {
    code = QUAY_ENOMEM;
  }
  if (conn_bad(c)) code = QUAY_ECONNECTION;
  switch (code) {
    case QUAY_EINTEGRITY:
      quay__err(pErr, code, "integrity error: %s%s%s%s", zMsg,
                zDet[0] ? " (" : "", zDet, zDet[0] ? ")" : "");
      break;
    case QUAY_EBUSY:
      quay__err(pErr, code, "%s: the statement conflicted with another "
                "transaction (serialization failure, deadlock or lock "
                "timeout); nothing was changed, retry the transaction",
                zMsg);
      break;
    case QUAY_ECONNECTION:
      quay__err(pErr, code, "connection to the PostgreSQL server lost: %s "
                "(the open transaction, if any, was rolled back; call "
                "db:reopen())", zMsg[0] ? zMsg : "server closed the "
                "connection");
      break;
    case QUAY_ENOMEM:
      quay__oom(pErr);
      break;
    default:
      quay__err(pErr, code, "%s%s%s%s%s%s", zWhat ? zWhat : "",
                zWhat ? ": " : "", zMsg, zDet[0] ? " (" : "", zDet,
                zDet[0] ? ")" : "");
      break;
  }
  if (pErr && zState && strlen(zState) == 5) {
    memcpy(pErr->zState, zState, 6);
  }
  if (c && (zState == NULL || strcmp(zState, "25P02") != 0)) {
    c->lastCode = code;
    snprintf(c->zLastState, sizeof(c->zLastState), "%s",
             zState && strlen(zState) == 5 ? zState : "");
    copy_msg(c->zLastMsg, sizeof(c->zLastMsg), zMsg);
  }
  return code;
}

/* Check a result: QUAY_OK for command/tuples, else mapped (r is kept). */
static int res_ok(DrvConn *c, const PGresult *r, const char *zWhat,
                  quay_err *pErr) {
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return QUAY_OK;
  if (st == PGRES_EMPTY_QUERY) {
    return quay__err(pErr, QUAY_ESQL, "empty SQL statement");
  }
  return pg_err(c, r, zWhat, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Connections
** ===================================================================
*/
/* libpq prints NOTICEs on stderr by default; the engine wants silence. */
static void quiet_notice(void *pArg, const char *zMsg) {
  (void)pArg;
  (void)zMsg;
}

/*
** Run zSql as a simple query and discard its result.  Returns non-0 when
** it failed (used for clean-up statements whose failure is harmless).
*/
static int run_quiet(DrvConn *c, const char *zSql) {
  PGresult *r = PQexec(c->pg, zSql);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  PQclear(r);
  return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
}

/* Append the statement closing cursor zName only if it exists. */
static void close_if_exists(Str *s, const char *zName) {
  quay__str_printf(s, "DO $quay$DECLARE c refcursor := '%s'; BEGIN IF "
                   "EXISTS (SELECT 1 FROM pg_cursors WHERE name = '%s') "
                   "THEN CLOSE c; END IF; END$quay$;", zName, zName);
}

/*
** Send the clean-up queued by earlier calls (DEALLOCATE of finalized
** statements, CLOSE of cursors left by a failed transaction) in one round
** trip, when the transaction state allows it.  Failures are ignored: the
** server frees everything with the session anyway.
*/
static void flush_pending(DrvConn *c) {
  PGTransactionStatusType ts;
  Str s;
  if (c->pZombie == NULL && c->pClose == NULL) return;
  if (conn_bad(c)) return;
  ts = PQtransactionStatus(c->pg);
  if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS) return;
  quay__str_init(&s);
  while (c->pZombie) {
    DrvStmt *z = c->pZombie;
    c->pZombie = z->pNextZombie;
    quay__str_printf(&s, "DEALLOCATE %s;", z->zName);
    quay__free(z);
  }
  while (c->pClose) {
    PendClose *p = c->pClose;
    c->pClose = p->pNext;
    close_if_exists(&s, p->zName);
    quay__free(p);
  }
  if (!s.oom && s.n > 0) run_quiet(c, s.z);
  quay__str_free(&s);
}

/* Parse a URL or keyword string with libpq, without connecting. */
static int pg_check_url(const char *zUrl, quay_err *pErr) {
  char *zMsg = NULL;
  PQconninfoOption *a = PQconninfoParse(zUrl, &zMsg);
  if (a == NULL) {
    int rc = quay__err(pErr, QUAY_ECONNECTION, "bad PostgreSQL URL: %s",
                       zMsg ? zMsg : "out of memory");
    PQfreemem(zMsg);
    return rc;
  }
  PQconninfoFree(a);
  return QUAY_OK;
}

static int pg_open(const char *zUrl, const quay_open_opts *pOpts,
                   void *pHandle, DrvConn **ppConn, quay_err *pErr) {
  DrvConn *c;
  PGresult *r;
  int rc;
  *ppConn = NULL;
  if (pHandle != NULL) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "the PostgreSQL driver cannot wrap a host handle");
  }
  c = quay__calloc(sizeof(*c));
  if (c == NULL) return quay__oom(pErr);
  c->pg = PQconnectdb(zUrl);
  if (c->pg == NULL) {
    quay__free(c);
    return quay__oom(pErr);
  }
  if (PQstatus(c->pg) != CONNECTION_OK) {
    char zMsg[300];
    copy_msg(zMsg, sizeof(zMsg), PQerrorMessage(c->pg));
    PQfinish(c->pg);
    quay__free(c);
    return quay__err(pErr, QUAY_ECONNECTION,
                     "cannot connect to PostgreSQL: %s", zMsg);
  }
  PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
  c->bNoPrepare = pOpts && pOpts->no_prepare;
  /* Session settings the conversions in xColumn rely on: ISO dates in
  ** UTC, hex bytea, UTF-8; and no NOTICE chatter for IF NOT EXISTS. */
  r = PQexec(c->pg, "SET client_encoding = 'UTF8'; "
                    "SET datestyle = 'ISO, YMD'; SET timezone = 'UTC'; "
                    "SET bytea_output = 'hex'; "
                    "SET client_min_messages = 'warning'");
  rc = res_ok(c, r, "cannot set up the PostgreSQL session", pErr);
  PQclear(r);
  if (rc == QUAY_OK && pOpts && pOpts->busy_timeout_ms >= 0 &&
      c->bNoPrepare) {
    /* Behind a pooler: per statement, see "Poolers" above. */
    snprintf(c->zLockSql, sizeof(c->zLockSql),
             "SELECT set_config('lock_timeout', '%d', true)",
             pOpts->busy_timeout_ms);
  } else if (rc == QUAY_OK && pOpts && pOpts->busy_timeout_ms >= 0) {
    /* busy_timeout: how long to wait for a lock before `busy` (55P03);
    ** without it PostgreSQL waits as long as the lock is held. */
    char zSql[64];
    snprintf(zSql, sizeof(zSql), "SET lock_timeout = %d",
             pOpts->busy_timeout_ms);
    r = PQexec(c->pg, zSql);
    rc = res_ok(c, r, "cannot set lock_timeout", pErr);
    PQclear(r);
  }
  if (rc) {
    PQfinish(c->pg);
    quay__free(c);
    return rc;
  }
  *ppConn = c;
  return QUAY_OK;
}

static void pg_close(DrvConn *c) {
  if (c == NULL) return;
  while (c->pZombie) {
    DrvStmt *z = c->pZombie;
    c->pZombie = z->pNextZombie;
    quay__free(z);
  }
  while (c->pClose) {
    PendClose *p = c->pClose;
    c->pClose = p->pNext;
    quay__free(p);
  }
  PQfinish(c->pg);
  quay__free(c);
}

static int pg_alive(DrvConn *c) { return !conn_bad(c); }

/* In a transaction block (a raw BEGIN counts too), failed or not. */
static int pg_in_txn(DrvConn *c) {
  PGTransactionStatusType ts;
  if (conn_bad(c)) return 0;
  ts = PQtransactionStatus(c->pg);
  return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

static int pg_simple(DrvConn *c, const char *zSql, quay_err *pErr) {
  PGresult *r;
  int rc;
  flush_pending(c);
  r = PQexec(c->pg, zSql);
  rc = res_ok(c, r, NULL, pErr);
  if (rc == QUAY_OK && strcmp(zSql, "COMMIT") == 0 &&
      strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
    /* A failed statement aborted the transaction and the server rolled
    ** it back instead of committing: never report that as success. */
    rc = quay__err(pErr, c->lastCode ? c->lastCode : QUAY_ESQL,
                   "the transaction was rolled back, not committed: a "
                   "statement in it failed (%s); run statements that may "
                   "fail in a nested db:transaction (a savepoint)",
                   c->zLastMsg[0] ? c->zLastMsg : "unknown error");
    if (pErr) memcpy(pErr->zState, c->zLastState, 6);
  }
  PQclear(r);
  return rc;
}
/* }================================================================== */


/*
** {==================================================================
** Statements
** ===================================================================
*/
static int pg_prepare(DrvConn *c, const char *zSql, int nParam, int bPersist,
                      DrvStmt **ppStmt, quay_err *pErr) {
  DrvStmt *s;
  *ppStmt = NULL;
  s = quay__calloc(sizeof(*s));
  if (s == NULL) return quay__oom(pErr);
  s->pConn = c;
  s->zSql = quay__strdup(zSql);
  if (s->zSql == NULL) {
    quay__free(s);
    return quay__oom(pErr);
  }
  s->nParam = nParam < 0 ? 0 : nParam;
  s->bPersist = bPersist;
  s->iRow = -1;
  *ppStmt = s;
  return QUAY_OK;
}

/* Drop the result of the current execution (no network). */
static void stmt_clear(DrvStmt *s) {
  PQclear(s->pRes);
  s->pRes = NULL;
  s->iRow = -1;
  s->nRow = 0;
  s->nCol = 0;
  s->bMore = 0;
  s->bHasBytea = 0;
}

/*
** Close the open cursor of a streamed query: at once when the transaction
** state allows (a plain CLOSE outside a transaction or for a cursor that
** cannot have been rolled away, else the checking DO block), else queued
** for flush_pending.
*/
static void cursor_close(DrvStmt *s) {
  DrvConn *c = s->pConn;
  PGTransactionStatusType ts;
  if (s->zCursor[0] == 0) return;
  if (!conn_bad(c)) {
    ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_IDLE || (ts == PQTRANS_INTRANS && s->bCurIdle)) {
      char zSql[64];
      snprintf(zSql, sizeof(zSql), "CLOSE %s", s->zCursor);
      run_quiet(c, zSql);
    } else if (ts == PQTRANS_INTRANS) {
      Str q;
      quay__str_init(&q);
      close_if_exists(&q, s->zCursor);
      if (!q.oom) run_quiet(c, q.z);
      quay__str_free(&q);
    } else {
      PendClose *p = quay__calloc(sizeof(*p));
      if (p) {                        /* on OOM it lives with the session */
        memcpy(p->zName, s->zCursor, sizeof(p->zName));
        p->pNext = c->pClose;
        c->pClose = p;
      }
    }
  }
  s->zCursor[0] = 0;
}

static void pg_reset(DrvStmt *s) {
  stmt_clear(s);
  cursor_close(s);
}

/*
** Free a statement.  Must not touch the connection for a statement that
** was never prepared on the server: exec.c finalizes private statements
** of a connection that may be closed already.  Named statements (cached
** only, finalized while the connection is open) go on the zombie list.
*/
static void pg_finalize(DrvStmt *s) {
  if (s == NULL) return;
  stmt_clear(s);
  quay__free(s->zSql);
  quay__free(s->aPrepType);           /* aParamType shares the block */
  quay__free(s->zBuf);
  quay__free(s->aOff);
  quay__free(s->aLen);
  if (s->zName[0] && s->pConn) {
    DrvStmt *z = s;
    /* Keep only the name; the node is freed by flush_pending/pg_close. */
    z->zSql = NULL;
    z->aPrepType = z->aParamType = NULL;
    z->zBuf = NULL;
    z->aOff = z->aLen = NULL;
    z->pNextZombie = s->pConn->pZombie;
    s->pConn->pZombie = z;
    return;
  }
  quay__free(s);
}

/* The type a value is sent as (0: let the server infer it). */
static Oid value_oid(const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: return OID_INT8;
    case QUAY_REAL: return OID_FLOAT8;
    case QUAY_BOOL: return OID_BOOL;
    case QUAY_BLOB: return OID_BYTEA;
    case QUAY_DECIMAL: return OID_NUMERIC;
    case QUAY_JSON: return OID_JSONB;
  }
  return 0;
}

/*
** Non-0 when TEXT value v cannot travel intact as text format for a bytea
** parameter: a NUL byte, invalid UTF-8, or a backslash (an escape to
** bytea's text input).
*/
static int text_risky(const quay_value *v) {
  if (v->type != QUAY_TEXT) return 0;
  if (memchr(v->u.z, 0, v->n) || memchr(v->u.z, '\\', v->n)) return 1;
  return quay__utf8_len(v->u.z, v->n) < 0;
}

/* Parameter arrays for one execution (one allocation). */
typedef struct Bind {
  const char **az;          /* values */
  int *an;                  /* lengths (binary format) */
  int *aFmt;                /* 0 text, 1 binary */
  Oid *aType;               /* types to send */
  char *zNum;               /* scratch for numbers, 32 bytes each */
  int nRisky;               /* TEXT values that need a described stmt */
} Bind;

/*
** Fill b from the values.  aDescribed (may be NULL) holds the server's
** parameter types: TEXT values for bytea parameters then go as binary.
*/
static int bind_values(Bind *b, const quay_value *a, int n,
                       const Oid *aDescribed, quay_err *pErr) {
  char *p;
  int i;
  size_t sz = (size_t)n * (sizeof(char *) + 2 * sizeof(int) + sizeof(Oid)
                           + 32) + 1;
  memset(b, 0, sizeof(*b));
  p = quay__malloc(sz);
  if (p == NULL) return quay__oom(pErr);
  b->az = (const char **)(void *)p;
  b->aType = (Oid *)(void *)(b->az + n);
  b->an = (int *)(void *)(b->aType + n);
  b->aFmt = b->an + n;
  b->zNum = (char *)(b->aFmt + n);
  for (i = 0; i < n; i++) {
    const quay_value *v = &a[i];
    char *zNum = b->zNum + 32 * i;
    b->aType[i] = value_oid(v);
    b->an[i] = 0;
    b->aFmt[i] = 0;
    switch (v->type) {
      case QUAY_NULL: b->az[i] = NULL; break;
      case QUAY_INT:
        snprintf(zNum, 32, "%lld", (long long)v->u.i);
        b->az[i] = zNum;
        break;
      case QUAY_REAL:
        if (isinf(v->u.r)) {
          snprintf(zNum, 32, "%sInfinity", v->u.r < 0 ? "-" : "");
        } else if (isnan(v->u.r)) {
          snprintf(zNum, 32, "NaN");
        } else {
          snprintf(zNum, 32, "%.17g", v->u.r);
        }
        b->az[i] = zNum;
        break;
      case QUAY_BOOL: b->az[i] = v->u.b ? "t" : "f"; break;
      case QUAY_BLOB:
        b->az[i] = v->n ? v->u.z : "";
        b->an[i] = (int)v->n;
        b->aFmt[i] = 1;
        break;
      case QUAY_TEXT:
        if (aDescribed && aDescribed[i] == OID_BYTEA) {
          b->az[i] = v->n ? v->u.z : "";
          b->an[i] = (int)v->n;
          b->aFmt[i] = 1;
        } else {
          b->az[i] = v->u.z;
          b->an[i] = (int)v->n;
          if (text_risky(v)) b->nRisky++;
        }
        break;
      case QUAY_DECIMAL:
      case QUAY_JSON:                   /* text of a numeric / jsonb */
        b->az[i] = v->u.z;
        b->an[i] = (int)v->n;
        break;
      default:
        quay__free(p);
        memset(b, 0, sizeof(*b));
        return quay__err(pErr, QUAY_EMISUSE,
                         "parameter %d cannot be bound (%s)", i + 1,
                         quay__value_kind(v));
    }
    if (QUAY_VALUE_HAS_BYTES(v->type) && v->n > (size_t)0x7fffffff) {
      quay__free(p);
      memset(b, 0, sizeof(*b));
      return quay__err(pErr, QUAY_EMISUSE, "parameter %d is too large",
                       i + 1);
    }
  }
  return QUAY_OK;
}

static void bind_free(Bind *b) { quay__free((void *)b->az); }

/*
** {==================================================================
** Pipelines
** ===================================================================
** pipe_run sends a batch of protocol steps in libpq's pipeline mode and
** reads their results in one round trip.  It is used where one logical
** operation needs several steps: Parse + Describe (+ Bind/Execute) of a
** statement prepared on its second execution, and DECLARE + first FETCH
** of a streamed query.  The future sibling-prefetch pipeline (issue 6)
** is the same shape with several statements' PIPE_EXEC_PREPARED steps:
** an xSend that queues one statement's step and an xReceive that reads
** its result would split this function in two at PQpipelineSync.
*/
enum { PIPE_PREPARE = 1, PIPE_DESCRIBE, PIPE_EXEC_PREPARED, PIPE_EXEC_PARAMS };

typedef struct PipeOp {
  int eOp;                  /* PIPE_* */
  const char *zName;        /* statement name (PREPARE, DESCRIBE, EXEC_PREP.) */
  const char *zText;        /* SQL text (PREPARE, EXEC_PARAMS) */
  int nParam;
  const Oid *aType;         /* parameter types (PREPARE, EXEC_PARAMS) */
  const Bind *pBind;        /* values (EXEC_*); NULL when nParam is 0 */
  PGresult *pRes;           /* out: the step's result; caller clears */
} PipeOp;

/*
** Run aOp[nOp] as one pipeline.  Each step that succeeded has its result
** in aOp[i].pRes (the caller clears them all, also on failure); steps
** after a failed one are skipped by the server.  On failure pErr holds
** the first error.
*/
static int pipe_run(DrvConn *c, PipeOp *aOp, int nOp, quay_err *pErr) {
  PGconn *pg = c->pg;
  int i, rc = QUAY_OK, iOp = 0, nNull = 0, bSynced = 0;
  for (i = 0; i < nOp; i++) aOp[i].pRes = NULL;
  if (!PQenterPipelineMode(pg)) return pg_err(c, NULL, NULL, pErr);
  for (i = 0; i < nOp && rc == QUAY_OK; i++) {
    PipeOp *o = &aOp[i];
    const Bind *b = o->pBind;
    int ok = 0;
    switch (o->eOp) {
      case PIPE_PREPARE:
        ok = PQsendPrepare(pg, o->zName, o->zText, o->nParam, o->aType);
        break;
      case PIPE_DESCRIBE:
        ok = PQsendDescribePrepared(pg, o->zName);
        break;
      case PIPE_EXEC_PREPARED:
        ok = PQsendQueryPrepared(pg, o->zName, o->nParam, b ? b->az : NULL,
                                 b ? b->an : NULL, b ? b->aFmt : NULL, 0);
        break;
      default:
        ok = PQsendQueryParams(pg, o->zText, o->nParam, o->aType,
                               b ? b->az : NULL, b ? b->an : NULL,
                               b ? b->aFmt : NULL, 0);
        break;
    }
    if (!ok) rc = pg_err(c, NULL, NULL, pErr);
  }
  /* Sync even after a failed send, so that what was sent can be drained. */
  if (!PQpipelineSync(pg) && rc == QUAY_OK) rc = pg_err(c, NULL, NULL, pErr);
  /* Each step's results end with a NULL; the sync's result ends it all. */
  while (!bSynced) {
    PGresult *r = PQgetResult(pg);
    if (r == NULL) {
      if (conn_bad(c) || ++nNull >= 2) break;
      iOp++;
      continue;
    }
    nNull = 0;
    switch (PQresultStatus(r)) {
      case PGRES_PIPELINE_SYNC:
        bSynced = 1;
        PQclear(r);
        break;
      case PGRES_PIPELINE_ABORTED:
        PQclear(r);
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_NONFATAL_ERROR:
      case PGRES_BAD_RESPONSE:
        if (rc == QUAY_OK) rc = pg_err(c, r, NULL, pErr);
        PQclear(r);
        break;
      default:
        if (iOp < nOp && aOp[iOp].pRes == NULL) {
          aOp[iOp].pRes = r;
        } else {
          PQclear(r);
        }
        break;
    }
  }
  if (!PQexitPipelineMode(pg)) {
    /* Results left over (a step answered more than expected): drain them,
    ** so that the connection never stays in pipeline mode. */
    int k = 0;
    PGresult *r;
    while (!conn_bad(c) && k++ < 16 && !PQexitPipelineMode(pg)) {
      r = PQgetResult(pg);
      PQclear(r);
    }
    if (rc == QUAY_OK) rc = pg_err(c, NULL, "pipeline", pErr);
  }
  if (rc == QUAY_OK && !bSynced) rc = pg_err(c, NULL, NULL, pErr);
  return rc;
}

/* Copy the parameter types a Describe step resolved into aOut[n]. */
static void described_types(const PGresult *r, int n, Oid *aOut) {
  int i, nDesc = r ? PQnparams(r) : 0;
  for (i = 0; i < n; i++) aOut[i] = i < nDesc ? PQparamtype(r, i) : 0;
}
/* }================================================================== */

/*
** Non-0 when the values' types fit the prepared statement's: each value
** is NULL, or of the type the parameter was prepared with, or (for a
** parameter prepared untyped, e.g. NULL on that run) of the type the
** server resolved for it; TEXT only where the parameter was untyped.
*/
static int types_fit(const DrvStmt *s, const Bind *b) {
  int i;
  for (i = 0; i < s->nParam; i++) {
    Oid t = b->aType[i];
    if (b->az[i] == NULL && t == 0) continue;          /* NULL */
    if (s->aPrepType[i] == 0) {
      if (t != 0 && t != s->aParamType[i]) return 0;
    } else if (t != s->aPrepType[i]) {
      return 0;
    }
  }
  return 1;
}

/*
** Non-0 when a statement on c goes after c->zLockSql (a busy_timeout
** behind a pooler): not in a failed transaction, where it would only fail.
*/
static int lock_first(DrvConn *c) {
  return c->zLockSql[0] != 0 &&
         PQtransactionStatus(c->pg) != PQTRANS_INERROR;
}

/*
** Send one execution of zText with values a[n] and wait for its result,
** into s->pRes.  zText is s->zSql, or the DECLARE of a streamed query
** (bNamed 0 then).  Chooses among: the named prepared statement, a
** one-shot unnamed statement, or a described unnamed statement for TEXT
** values that need bytea's binary format.  zThen (may be NULL) is a
** statement without parameters run right after, in the same round trip
** where possible (the first FETCH of a cursor); s->pRes then holds its
** result instead.
*/
static int stmt_run(DrvStmt *s, const char *zText, int bNamed,
                    const quay_value *a, int n, const char *zThen,
                    quay_err *pErr) {
  DrvConn *c = s->pConn;
  Bind b;
  int rc;
  PGresult *r = NULL;
  PipeOp op[4];
  memset(op, 0, sizeof(op));
  if (n != s->nParam) {
    return quay__err(pErr, QUAY_ESQL,
                     "statement expects %d parameters, %d given", s->nParam,
                     n);
  }
  rc = bind_values(&b, a, n, bNamed && s->zName[0] ? s->aParamType : NULL,
                   pErr);
  if (rc) return rc;
  if (bNamed && s->zName[0] && types_fit(s, &b)) {
    r = PQexecPrepared(c->pg, s->zName, n, b.az, b.an, b.aFmt, 0);
  } else if (bNamed && s->zName[0] == 0 && s->bPersist &&
             !c->bNoPrepare && (s->nExec > 0 || b.nRisky)) {
    /* Second execution (or values that need describing): prepare it as
    ** "quay_s<n>", describe it and, unless the values must wait for the
    ** description, execute it: one round trip. */
    char zName[32];
    int nOp = b.nRisky ? 2 : 3;
    snprintf(zName, sizeof(zName), "quay_s%u", ++c->nName);
    if (n > 0 && s->aPrepType == NULL) {
      /* One block: aParamType is its second half. */
      s->aPrepType = quay__malloc(2 * sizeof(Oid) * (size_t)n);
      if (s->aPrepType == NULL) rc = quay__oom(pErr);
      else s->aParamType = s->aPrepType + n;
    }
    op[0].eOp = PIPE_PREPARE;
    op[0].zName = zName;
    op[0].zText = zText;
    op[0].nParam = n;
    op[0].aType = b.aType;
    op[1].eOp = PIPE_DESCRIBE;
    op[1].zName = zName;
    op[2].eOp = PIPE_EXEC_PREPARED;
    op[2].zName = zName;
    op[2].nParam = n;
    op[2].pBind = &b;
    if (rc == QUAY_OK) rc = pipe_run(c, op, nOp, pErr);
    if (op[0].pRes && op[1].pRes) {
      /* Prepared and described (even if the execution then failed). */
      if (n > 0) {
        memcpy(s->aPrepType, b.aType, sizeof(Oid) * (size_t)n);
        described_types(op[1].pRes, n, s->aParamType);
      }
      memcpy(s->zName, zName, sizeof(zName));
    }
    if (rc == QUAY_OK) {
      if (nOp == 3) {
        r = op[2].pRes;
        op[2].pRes = NULL;
      } else {
        bind_free(&b);
        rc = bind_values(&b, a, n, s->aParamType, pErr);
        if (rc == QUAY_OK) {
          r = PQexecPrepared(c->pg, s->zName, n, b.az, b.an, b.aFmt, 0);
        }
      }
    }
    PQclear(op[0].pRes);
    PQclear(op[1].pRes);
    PQclear(op[2].pRes);
  } else if (b.nRisky) {
    /* One-shot, but a TEXT value may be for a bytea: describe first.
    ** Behind a pooler in transaction mode (bNoPrepare) the unnamed
    ** statement lasts only as long as a transaction, so outside one the
    ** describe and the execution run in a transaction of their own. */
    Oid *aRes = quay__malloc(sizeof(Oid) * (size_t)n + 1);
    int bWrap = c->bNoPrepare &&
                PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    int k = 0;
    if (aRes == NULL) rc = quay__oom(pErr);
    if (bWrap) {
      op[k].eOp = PIPE_EXEC_PARAMS;
      op[k++].zText = "BEGIN";
    }
    if (lock_first(c)) {
      op[k].eOp = PIPE_EXEC_PARAMS;
      op[k++].zText = c->zLockSql;
    }
    op[k].eOp = PIPE_PREPARE;
    op[k].zName = "";
    op[k].zText = zText;
    op[k].nParam = n;
    op[k++].aType = b.aType;
    op[k].eOp = PIPE_DESCRIBE;
    op[k++].zName = "";
    if (rc == QUAY_OK) rc = pipe_run(c, op, k, pErr);
    if (rc == QUAY_OK) {
      described_types(op[k - 1].pRes, n, aRes);
      bind_free(&b);
      rc = bind_values(&b, a, n, aRes, pErr);
      if (rc == QUAY_OK) {
        r = PQexecPrepared(c->pg, "", n, b.az, b.an, b.aFmt, 0);
      }
    }
    if (bWrap && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
      int bOk = rc == QUAY_OK && r != NULL &&
                (PQresultStatus(r) == PGRES_COMMAND_OK ||
                 PQresultStatus(r) == PGRES_TUPLES_OK);
      if (run_quiet(c, bOk ? "COMMIT" : "ROLLBACK") && bOk) {
        PQclear(r);
        r = NULL;
        rc = pg_err(c, NULL, "commit", pErr);
      }
    }
    for (k = 0; k < 4; k++) PQclear(op[k].pRes);
    quay__free(aRes);
  } else if (zThen) {
    /* DECLARE and the first FETCH in one round trip. */
    op[0].eOp = PIPE_EXEC_PARAMS;
    op[0].zText = zText;
    op[0].nParam = n;
    op[0].aType = b.aType;
    op[0].pBind = &b;
    op[1].eOp = PIPE_EXEC_PARAMS;
    op[1].zText = zThen;
    rc = pipe_run(c, op, 2, pErr);
    PQclear(op[0].pRes);
    if (rc == QUAY_OK) {
      r = op[1].pRes;
      zThen = NULL;
    } else {
      PQclear(op[1].pRes);
    }
  } else if (lock_first(c)) {
    /* The lock timeout first, in the same transaction (see "Poolers"). */
    quay_err e;
    quay_err *pE = pErr ? pErr : &e;
    int bIdle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    quay_err_clear(&e);
    op[0].eOp = PIPE_EXEC_PARAMS;
    op[0].zText = c->zLockSql;
    op[1].eOp = PIPE_EXEC_PARAMS;
    op[1].zText = zText;
    op[1].nParam = n;
    op[1].aType = b.aType;
    op[1].pBind = &b;
    rc = pipe_run(c, op, 2, pE);
    PQclear(op[0].pRes);
    if (rc == QUAY_OK) {
      r = op[1].pRes;
    } else {
      PQclear(op[1].pRes);
      if (bIdle && !conn_bad(c) && strcmp(pE->zState, "25001") == 0) {
        /* It cannot run in a transaction block (VACUUM, CREATE
        ** DATABASE): alone, as without a lock timeout. */
        rc = QUAY_OK;
        r = PQexecParams(c->pg, zText, n, b.aType, b.az, b.an, b.aFmt, 0);
      }
    }
  } else {
    r = PQexecParams(c->pg, zText, n, b.aType, b.az, b.an, b.aFmt, 0);
  }
  bind_free(&b);
  if (rc) return rc;
  rc = res_ok(c, r, NULL, pErr);
  if (rc == QUAY_OK && zThen) {
    PQclear(r);
    r = PQexec(c->pg, zThen);
    rc = res_ok(c, r, NULL, pErr);
  }
  if (rc) {
    PQclear(r);
    return rc;
  }
  s->pRes = r;
  return QUAY_OK;
}

static int pg_exec(DrvStmt *s, const quay_value *a, int n, int mExec,
                   quay_err *pErr);

/* Set up the row state for a new s->pRes. */
static int result_start(DrvStmt *s, quay_err *pErr) {
  int i;
  s->iRow = -1;
  s->nRow = PQntuples(s->pRes);
  s->nCol = PQnfields(s->pRes);
  s->bHasBytea = 0;
  for (i = 0; i < s->nCol; i++) {
    if (PQftype(s->pRes, i) == OID_BYTEA) s->bHasBytea = 1;
  }
  if (s->bHasBytea && s->nCol > s->nColAlloc) {
    size_t *aOff = quay__realloc(s->aOff, sizeof(size_t) * (size_t)s->nCol);
    size_t *aLen;
    if (aOff == NULL) return quay__oom(pErr);
    s->aOff = aOff;
    aLen = quay__realloc(s->aLen, sizeof(size_t) * (size_t)s->nCol);
    if (aLen == NULL) return quay__oom(pErr);
    s->aLen = aLen;
    s->nColAlloc = s->nCol;
  }
  return QUAY_OK;
}

/* The FETCH statement of the open cursor (zOut holds 80 bytes). */
static void fetch_sql(const DrvStmt *s, char *zOut) {
  snprintf(zOut, 80, "FETCH FORWARD %d FROM %s", PG_FETCH_ROWS, s->zCursor);
}

/* Start reading a chunk just fetched into s->pRes. */
static int chunk_start(DrvStmt *s, quay_err *pErr) {
  int rc = result_start(s, pErr);
  s->bMore = s->nRow == PG_FETCH_ROWS;
  return rc;
}

/* FETCH the next chunk of the open cursor into s->pRes. */
static int cursor_fetch(DrvStmt *s, quay_err *pErr) {
  char zSql[80];
  PGresult *r;
  int rc;
  PQclear(s->pRes);
  s->pRes = NULL;
  fetch_sql(s, zSql);
  r = PQexec(s->pConn->pg, zSql);
  rc = res_ok(s->pConn, r, NULL, pErr);
  if (rc) {
    PQclear(r);
    return rc;
  }
  s->pRes = r;
  return chunk_start(s, pErr);
}

/*
** Sibling prefetch steps in one round trip: each statement contributes
** its execution (Bind/Execute of its prepared name, or a one-shot Parse/
** Bind/Execute) and, on its second run, its Parse + Describe first, as
** stmt_run would do on its own; all go in one pipeline.  A statement whose
** values need describing first (TEXT for a bytea) makes the whole batch
** run one by one instead.
*/
static int pg_exec_batch(DrvStmt *const *aStmt,
                         const quay_value *const *aaParam, const int *anParam,
                         int n, quay_err *pErr) {
  DrvConn *c;
  Bind *aBind = NULL;
  PipeOp *aOp = NULL;
  int *aiExec = NULL;
  char (*azName)[32] = NULL;
  int i, rc = QUAY_OK, nOp = 0, nBound = 0, bSeq = 0;
  if (n == 0) return QUAY_OK;
  c = aStmt[0]->pConn;
  if (conn_bad(c)) return pg_err(c, NULL, NULL, pErr);
  flush_pending(c);
  aBind = quay__calloc(sizeof(Bind) * (size_t)n);
  aOp = quay__calloc(sizeof(PipeOp) * (size_t)(3 * n + 1));
  aiExec = quay__calloc(sizeof(int) * (size_t)n);
  azName = quay__calloc(32 * (size_t)n);
  if (!aBind || !aOp || !aiExec || !azName) {
    rc = quay__oom(pErr);
    goto done;
  }
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    DrvStmt *s = aStmt[i];
    pg_reset(s);
    s->nChanges = 0;
    if (anParam[i] != s->nParam) {
      rc = quay__err(pErr, QUAY_ESQL, "statement expects %d parameters, %d "
                     "given", s->nParam, anParam[i]);
      break;
    }
    rc = bind_values(&aBind[i], aaParam[i], anParam[i],
                     s->zName[0] ? s->aParamType : NULL, pErr);
    if (rc) break;
    nBound++;
    if (aBind[i].nRisky || (s->zName[0] && !types_fit(s, &aBind[i]))) {
      bSeq = 1;
    }
  }
  if (rc == QUAY_OK && bSeq) {
    /* Fall back: one by one, each with its full policy. */
    for (i = 0; i < n && rc == QUAY_OK; i++) {
      rc = pg_exec(aStmt[i], aaParam[i], anParam[i], 0, pErr);
    }
    goto done;
  }
  if (rc == QUAY_OK && lock_first(c)) {
    /* The lock timeout first (see "Poolers"). */
    aOp[nOp].eOp = PIPE_EXEC_PARAMS;
    aOp[nOp++].zText = c->zLockSql;
  }
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    DrvStmt *s = aStmt[i];
    if (s->zName[0]) {
      aOp[nOp].eOp = PIPE_EXEC_PREPARED;
      aOp[nOp].zName = s->zName;
    } else if (s->bPersist && s->nExec > 0 && !c->bNoPrepare) {
      if (s->nParam > 0 && s->aPrepType == NULL) {
        s->aPrepType = quay__malloc(2 * sizeof(Oid) * (size_t)s->nParam);
        if (s->aPrepType == NULL) {
          rc = quay__oom(pErr);
          break;
        }
        s->aParamType = s->aPrepType + s->nParam;
      }
      snprintf(azName[i], 32, "quay_s%u", ++c->nName);
      aOp[nOp].eOp = PIPE_PREPARE;
      aOp[nOp].zName = azName[i];
      aOp[nOp].zText = s->zSql;
      aOp[nOp].nParam = s->nParam;
      aOp[nOp].aType = aBind[i].aType;
      nOp++;
      aOp[nOp].eOp = PIPE_DESCRIBE;
      aOp[nOp].zName = azName[i];
      nOp++;
      aOp[nOp].eOp = PIPE_EXEC_PREPARED;
      aOp[nOp].zName = azName[i];
    } else {
      aOp[nOp].eOp = PIPE_EXEC_PARAMS;
      aOp[nOp].zText = s->zSql;
      aOp[nOp].aType = aBind[i].aType;
    }
    aOp[nOp].nParam = s->nParam;
    aOp[nOp].pBind = s->nParam ? &aBind[i] : NULL;
    aiExec[i] = nOp++;
  }
  if (rc == QUAY_OK) rc = pipe_run(c, aOp, nOp, pErr);
  for (i = 0; i < n; i++) {
    DrvStmt *s = aStmt[i];
    int k = aiExec[i];
    if (azName[i][0] && k >= 2 && aOp[k - 2].pRes && aOp[k - 1].pRes) {
      /* Prepared and described, even if a later step failed. */
      if (s->nParam > 0) {
        memcpy(s->aPrepType, aBind[i].aType, sizeof(Oid) * (size_t)s->nParam);
        described_types(aOp[k - 1].pRes, s->nParam, s->aParamType);
      }
      memcpy(s->zName, azName[i], 32);
    }
    if (rc == QUAY_OK) {
      const char *z;
      s->pRes = aOp[k].pRes;
      aOp[k].pRes = NULL;
      z = PQcmdTuples(s->pRes);
      if (z && z[0]) s->nChanges = strtoll(z, NULL, 10);
      if (rc == QUAY_OK) rc = result_start(s, pErr);
    }
    s->nExec++;
  }
  for (i = 0; i < nOp; i++) PQclear(aOp[i].pRes);
done:
  if (rc) {
    for (i = 0; i < n; i++) pg_reset(aStmt[i]);
  }
  for (i = 0; i < nBound; i++) bind_free(&aBind[i]);
  quay__free(aBind);
  quay__free(aOp);
  quay__free(aiExec);
  quay__free(azName);
  return rc;
}

static int pg_exec(DrvStmt *s, const quay_value *a, int n, int mExec,
                   quay_err *pErr) {
  DrvConn *c = s->pConn;
  int rc, bStream = (mExec & QUAY_EXEC_STREAM) != 0;
  pg_reset(s);
  s->nChanges = 0;
  if (conn_bad(c)) return pg_err(c, NULL, NULL, pErr);
  flush_pending(c);
  if (bStream && !c->bNoPrepare) {
    /* DECLARE a cursor over the query, then read its first chunk.  Not
    ** behind a pooler in transaction mode: a cursor lives in one server
    ** session, and the next FETCH may run on another; the whole result
    ** is read at once there instead. */
    Str q;
    char zCur[32];
    snprintf(zCur, sizeof(zCur), "quay_c%u", ++c->nName);
    quay__str_init(&q);
    quay__str_printf(&q, "DECLARE %s NO SCROLL CURSOR WITH HOLD FOR %s",
                     zCur, s->zSql);
    if (q.oom) {
      quay__str_free(&q);
      return quay__oom(pErr);
    }
    char zFetch[80];
    s->bCurIdle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    /* Named before it exists, so that a failure closes what may exist. */
    memcpy(s->zCursor, zCur, sizeof(zCur));
    fetch_sql(s, zFetch);
    rc = stmt_run(s, q.z, 0, a, n, zFetch, pErr);
    quay__str_free(&q);
    if (rc == QUAY_OK) rc = chunk_start(s, pErr);
  } else {
    rc = stmt_run(s, s->zSql, 1, a, n, NULL, pErr);
    if (rc == QUAY_OK) {
      const char *z = PQcmdTuples(s->pRes);
      if (z && z[0]) s->nChanges = strtoll(z, NULL, 10);
      rc = result_start(s, pErr);
    }
  }
  s->nExec++;
  if (rc) pg_reset(s);
  return rc;
}

/* Decode bytea hex text "\x0a1b..." (or escape format) into out[]. */
static size_t bytea_decode(const char *z, size_t n, char *out) {
  size_t i, k = 0;
  if (n >= 2 && z[0] == '\\' && z[1] == 'x') {
    for (i = 2; i + 1 < n; i += 2) {
      int hi = z[i], lo = z[i + 1];
      hi = hi <= '9' ? hi - '0' : (hi | 0x20) - 'a' + 10;
      lo = lo <= '9' ? lo - '0' : (lo | 0x20) - 'a' + 10;
      out[k++] = (char)((hi << 4) | lo);
    }
    return k;
  }
  for (i = 0; i < n; i++) {           /* escape format (bytea_output) */
    if (z[i] == '\\' && i + 1 < n && z[i + 1] == '\\') {
      out[k++] = '\\';
      i++;
    } else if (z[i] == '\\' && i + 3 < n) {
      out[k++] = (char)(((z[i + 1] - '0') << 6) | ((z[i + 2] - '0') << 3) |
                        (z[i + 3] - '0'));
      i += 3;
    } else {
      out[k++] = z[i];
    }
  }
  return k;
}

/* Decode the bytea columns of the current row into s->zBuf. */
static int decode_row(DrvStmt *s, quay_err *pErr) {
  int i;
  size_t need = 0;
  for (i = 0; i < s->nCol; i++) {
    if (PQftype(s->pRes, i) == OID_BYTEA) {
      need += (size_t)PQgetlength(s->pRes, s->iRow, i) + 1;
    }
  }
  if (need > s->nBufAlloc) {
    char *z = quay__realloc(s->zBuf, need);
    if (z == NULL) return quay__oom(pErr);
    s->zBuf = z;
    s->nBufAlloc = need;
  }
  s->nBuf = 0;
  for (i = 0; i < s->nCol; i++) {
    s->aOff[i] = (size_t)-1;
    if (PQftype(s->pRes, i) != OID_BYTEA || PQgetisnull(s->pRes, s->iRow, i)) {
      continue;
    }
    s->aOff[i] = s->nBuf;
    s->aLen[i] = bytea_decode(PQgetvalue(s->pRes, s->iRow, i),
                              (size_t)PQgetlength(s->pRes, s->iRow, i),
                              s->zBuf + s->nBuf);
    s->nBuf += s->aLen[i];
  }
  return QUAY_OK;
}

static int pg_step(DrvStmt *s, quay_err *pErr) {
  int rc;
  if (s->pRes == NULL) return QUAY_DONE;
  if (s->iRow + 1 >= s->nRow) {
    if (!s->bMore || s->zCursor[0] == 0) return QUAY_DONE;
    rc = cursor_fetch(s, pErr);
    if (rc) {
      pg_reset(s);
      return rc;
    }
    if (s->nRow == 0) return QUAY_DONE;
  }
  s->iRow++;
  if (s->bHasBytea) {
    rc = decode_row(s, pErr);
    if (rc) return rc;
  }
  return QUAY_ROW;
}

static int pg_ncol(DrvStmt *s) { return s->pRes ? s->nCol : 0; }

static const char *pg_colname(DrvStmt *s, int i) {
  if (s->pRes == NULL || i < 0 || i >= s->nCol) return "";
  return PQfname(s->pRes, i);
}

/* Parse z[n] as a whole int64; non-0 on success. */
static int parse_int(const char *z, size_t n, int64_t *pOut) {
  char *zEnd;
  long long v;
  if (n == 0) return 0;
  errno = 0;
  v = strtoll(z, &zEnd, 10);
  if (errno != 0 || zEnd != z + n) return 0;
  *pOut = (int64_t)v;
  return 1;
}

/*
** Convert column i of the current row.  With a hint the declared field
** type decides (its read kind in the type table); without one (raw SQL)
** the column's type OID does.  NUMERIC columns of decimals come with
** their declared scale, so their text is already the decimal's form.
*/
static void pg_column(DrvStmt *s, int i, int eHintFlags, quay_value *p) {
  int eHint = eHintFlags & QUAY_HINT_TYPE;
  const char *z;
  size_t n;
  Oid t;
  if (s->pRes == NULL || s->iRow < 0 || s->iRow >= s->nRow || i < 0 ||
      i >= s->nCol || PQgetisnull(s->pRes, s->iRow, i)) {
    p->type = QUAY_NULL;
    return;
  }
  z = PQgetvalue(s->pRes, s->iRow, i);
  n = (size_t)PQgetlength(s->pRes, s->iRow, i);
  t = PQftype(s->pRes, i);
  if (t == OID_BYTEA && s->bHasBytea && s->aOff[i] != (size_t)-1) {
    /* Bytes whatever the hint: a blob is never text. */
    p->type = QUAY_BLOB;
    p->u.z = s->zBuf + s->aOff[i];
    p->n = s->aLen[i];
    return;
  }
  switch (eHint ? quay__ftype(eHint)->eRead : QUAY_NULL) {
    case QUAY_BOOL:
      p->type = QUAY_BOOL;
      if (t == OID_BOOL) {
        p->u.b = z[0] == 't';
      } else {
        int64_t v;
        p->u.b = parse_int(z, n, &v) ? v != 0 : (z[0] == 't' || z[0] == 'T');
      }
      return;
    case QUAY_REAL:
      p->type = QUAY_REAL;
      p->u.r = strtod(z, NULL);
      return;
    case QUAY_INT:
      if (parse_int(z, n, &p->u.i)) {
        p->type = QUAY_INT;
        return;
      }
      break;
    case QUAY_TEXT:
      p->type = QUAY_TEXT;
      p->u.z = z;
      /* timestamp(tz) text in ISO style: keep "YYYY-MM-DD HH:MM:SS". */
      p->n = ((t == OID_TIMESTAMP || t == OID_TIMESTAMPTZ) && n > 19) ? 19 : n;
      return;
    case QUAY_DECIMAL:
    case QUAY_JSON:
      p->type = quay__ftype(eHint)->eRead;
      p->u.z = z;
      p->n = n;
      return;
    case QUAY_BLOB:
      p->type = QUAY_BLOB;
      p->u.z = z;
      p->n = n;
      return;
  }
  switch (t) {
    case OID_BOOL:
      p->type = QUAY_BOOL;
      p->u.b = z[0] == 't';
      return;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
      if (parse_int(z, n, &p->u.i)) {
        p->type = QUAY_INT;
        return;
      }
      break;
    case OID_NUMERIC:
      if (parse_int(z, n, &p->u.i)) {
        p->type = QUAY_INT;
        return;
      }
      /* fall through */
    case OID_FLOAT4:
    case OID_FLOAT8:
      p->type = QUAY_REAL;
      p->u.r = strtod(z, NULL);
      return;
  }
  p->type = QUAY_TEXT;
  p->u.z = z;
  p->n = n;
}

static int64_t pg_changes(DrvStmt *s) { return s->nChanges; }
/* }================================================================== */

const quay_driver quay__drv_pg = {
  .iVersion = 4,
  .zName = "postgresql",
  .pDialect = &quay__dialect_pg,
  .xOpen = pg_open,
  .xClose = pg_close,
  .xPrepare = pg_prepare,
  .xFinalize = pg_finalize,
  .xExec = pg_exec,
  .xStep = pg_step,
  .xColumnCount = pg_ncol,
  .xColumnName = pg_colname,
  .xColumn = pg_column,
  .xReset = pg_reset,
  .xChanges = pg_changes,
  .xSimple = pg_simple,
  .xAlive = pg_alive,
  .xLastInsertId = NULL,    /* RETURNING is used */
  .xExecBatch = pg_exec_batch,
  .xCheckUrl = pg_check_url,
  .xErrInfo = pg_err_info,
  .bReplicas = 1,
  .xInTxn = pg_in_txn,
};
