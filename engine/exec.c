/*
** engine/exec.c
** Databases, servers and routing, the statement cache, cursors,
** transactions and raw SQL.
** See LICENSE
**
** A quay_db pairs a schema (models, relations, join tables) with the
** connections a driver makes.  The two have separate lifetimes: the
** connections may be closed (quay_db_disconnect) or lost and reopened
** while the schema, and every binding object made from it, stays valid.
** The objects made from a db hold it (quay__db_hold): quay_db_free
** before them closes the connections and leaves the memory to the last
** of them (sqlite3_close_v2's model).
**
** Servers.  aSrv[0] is the primary; a db opened with read replicas (a
** driver with bReplicas: PostgreSQL) has one more DbServer per replica,
** each with its own connection and statement cache.  Writes, raw SQL and
** everything inside a transaction run on the primary (quay__db_run,
** quay__db_simple).  Reads that the query-set layer routes (quay__db_read:
** loads, count, exists, pluck) go to the replicas in turn, unless
**   - a transaction is open (it lives on the primary),
**   - the handle wrote within the last `sticky` ms (it reads its own
**     writes: the replicas may lag; a transaction's writes count from
**     its end, and a transaction that wrote nothing is no write),
**   - the query set was pinned with using("primary"), or
**   - the statement locks rows (FOR UPDATE / FOR SHARE).
** A read that continues an earlier one (the prefetch steps of a load, the
** lazy loads of its records) goes to the server that earlier read used,
** so that one result never mixes two servers' states.  A replica that
** cannot be reached, or whose connection is lost, is closed and skipped
** for QUAY_REPLICA_RETRY_MS; the read moves on to the next replica and
** finally to the primary, so only when no server answers does a read fail
** with QUAY_ECONNECTION.  Rows already handed out cannot move: a streamed
** read whose replica dies mid-way fails with QUAY_ECONNECTION.
**
** Every statement the engine sends goes through run_on, which
**   1. counts it (db:stats, per role) and shows it to the observer
**      (db:on_query),
**   2. finds its prepared statement in the server's cache (keyed by SQL
**      text, LRU, QUAY_CACHE_MAX entries) or prepares and caches it,
**   3. binds the parameters and either hands back a cursor or runs it.
** A cached statement that a cursor is still stepping is marked in use; a
** second user of the same text gets a private statement instead.
**
** A failed statement is restated in the schema's names where the driver
** can say what failed (a constraint, a missing table): the message names
** "Model.field" and the fix first, the backend's own text after it.
**
** Transactions nest: the outermost level is BEGIN, inner levels are
** SAVEPOINTs; inside a transaction Quay did not open (a host's BEGIN on a
** shared handle) the outermost level is a SAVEPOINT too, and a transaction
** ended under open levels is noticed ("Transactions" below).  Engine-run
** writes (bulk inserts, cascades, m2m :set) open a level of their own, so
** they are atomic inside or outside a user's transaction.  The outermost
** level may carry options (isolation level, read-only: quay_db_begin_opts),
** written by the dialect; a read-only SQLite transaction runs under PRAGMA
** query_only, reset when it ends.
*/
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */
#include "quayInt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define QUAY_CACHE_MAX 128
/* A replica found down is not tried again for this long. */
#define QUAY_REPLICA_RETRY_MS 2000
/* Default of quay_open_opts.sticky_ms when it is < 0. */
#define QUAY_STICKY_MS 1000

/* Monotonic milliseconds (sticky reads, replica retries). */
static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-0 when the driver connects to servers that may have replicas. */
static int drv_replicas(const quay_driver *pDrv) {
  return pDrv->iVersion >= 3 && pDrv->bReplicas;
}

/*
** Non-0 while the primary's connection is inside a transaction, whoever
** opened it (drivers before version 4 cannot tell: Quay's own levels).
*/
static int conn_in_txn(quay_db *pDb);
static void bulk_ended(quay_db *pDb);
int quay__conn_in_txn(quay_db *pDb) { return conn_in_txn(pDb); }

static int conn_in_txn(quay_db *pDb) {
  DrvConn *c = pDb->aSrv ? pDb->aSrv[0].pConn : NULL;
  if (c == NULL) return 0;
  if (pDb->pDrv->iVersion < 4 || pDb->pDrv->xInTxn == NULL) {
    return pDb->txnDepth > 0;
  }
  return pDb->pDrv->xInTxn(c);
}

int quay__db_in_txn(quay_db *pDb) {
  return pDb->txnDepth > 0 || conn_in_txn(pDb);
}

/*
** {==================================================================
** Opening and closing
** ===================================================================
*/
/*
** The URL forms and their drivers, tried in order: a prefix, whether the
** driver gets the URL after it (1) or whole (0).  A libpq keyword string
** ("host=... dbname=...") has no prefix: the last entry takes it.
*/
static const struct UrlScheme {
  const char *zPrefix;      /* NULL: a keyword string (has '=', no "://") */
  int bStrip;
  const quay_driver *pDrv;
} aUrlScheme[] = {
  { "sqlite:", 1, &quay__drv_sqlite },
  { "postgresql://", 0, &quay__drv_pg },
  { "postgres://", 0, &quay__drv_pg },
  { NULL, 0, &quay__drv_pg },
};

/* Split a URL into a driver and the driver's part of the URL. */
static const quay_driver *pick_driver(const char *zUrl, const char **pzRest) {
  int i;
  for (i = 0; i < QUAY_ARRAYSIZE(aUrlScheme); i++) {
    const struct UrlScheme *u = &aUrlScheme[i];
    if (u->zPrefix ? strncmp(zUrl, u->zPrefix, strlen(u->zPrefix)) == 0
                   : (strchr(zUrl, '=') != NULL &&
                      strstr(zUrl, "://") == NULL)) {
      *pzRest = u->bStrip ? zUrl + strlen(u->zPrefix) : zUrl;
      return u->pDrv;
    }
  }
  return NULL;
}

int quay_url_check(const char *zUrl, const char **pzBackend, quay_err *pErr) {
  const char *zRest = NULL;
  const quay_driver *pDrv;
  if (zUrl == NULL || pzBackend == NULL) {
    if (pzBackend != NULL) *pzBackend = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_url_check: %s is NULL",
                     zUrl == NULL ? "zUrl" : "pzBackend");
  }
  *pzBackend = NULL;
  if ((pDrv = pick_driver(zUrl, &zRest)) == NULL) {
    return quay__err(pErr, QUAY_ECONNECTION,
                     "'%.100s' is not a database URL: use sqlite::memory:, "
                     "sqlite:<path>, postgresql://... or a libpq keyword "
                     "string", zUrl ? zUrl : "(nil)");
  }
  if (pDrv->xCheckUrl) {
    int rc = pDrv->xCheckUrl(zRest, pErr);
    if (rc) return rc;
  }
  *pzBackend = pDrv->zName;
  return QUAY_OK;
}

/*
** A new db of driver pDrv, disconnected.  The replica URLs of pOpts are
** checked (they must be URLs of the same driver) and copied, one server
** each, when the driver takes replicas; otherwise they are ignored.
*/
static int db_new(const quay_driver *pDrv, const quay_open_opts *pOpts,
                  quay_db **ppDb, quay_err *pErr) {
  quay_db *pDb = quay__calloc(sizeof(*pDb));
  int i, nRep = 0, rc;
  *ppDb = NULL;
  if (pDb == NULL) return quay__oom(pErr);
  pDb->pDrv = pDrv;
  pDb->pDialect = pDrv->pDialect;
  pDb->opts.busy_timeout_ms = -1;
  if (pOpts) pDb->opts = *pOpts;
  pDb->opts.azReplica = NULL;
  pDb->opts.nReplica = 0;
  if (pOpts && pOpts->nReplica > 0 && drv_replicas(pDrv)) {
    nRep = pOpts->nReplica;
  }
  pDb->aSrv = quay__calloc(sizeof(DbServer) * (size_t)(nRep + 1));
  pDb->azReplica = quay__calloc(sizeof(char *) * (size_t)(nRep + 1));
  if (pDb->aSrv == NULL || pDb->azReplica == NULL) {
    quay_db_free(pDb);
    return quay__oom(pErr);
  }
  pDb->nSrv = 1;
  for (i = 0; i < nRep; i++) {
    const char *zRest = NULL;
    const char *z = pOpts->azReplica ? pOpts->azReplica[i] : NULL;
    if (z == NULL || pick_driver(z, &zRest) != pDrv) {
      rc = quay__err(pErr, QUAY_EMISUSE,
                     "replica %d: '%.100s' is not a %s URL (the replicas "
                     "must be servers of the primary's kind)", i + 1,
                     z ? z : "(nil)", pDrv->zName);
      quay_db_free(pDb);
      return rc;
    }
    if (pDrv->xCheckUrl && (rc = pDrv->xCheckUrl(zRest, pErr)) != QUAY_OK) {
      quay_db_free(pDb);
      return rc;
    }
    pDb->azReplica[i] = quay__strdup(zRest);
    if (pDb->azReplica[i] == NULL) {
      quay_db_free(pDb);
      return quay__oom(pErr);
    }
    pDb->aSrv[i + 1].zUrl = pDb->azReplica[i];
    pDb->nSrv++;
  }
  *ppDb = pDb;
  return QUAY_OK;
}

int quay_db_open(const char *zUrl, const quay_open_opts *pOpts,
                 quay_db **ppDb, quay_err *pErr) {
  const char *zRest = NULL;
  const quay_driver *pDrv;
  quay_db *pDb;
  int rc;
  if (zUrl == NULL || ppDb == NULL) {
    if (ppDb != NULL) *ppDb = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_open: %s is NULL",
                     zUrl == NULL ? "zUrl" : "ppDb");
  }
  *ppDb = NULL;
  if ((pDrv = pick_driver(zUrl, &zRest)) == NULL) {
    /* A URL with user:password@ shows its scheme only: messages get logged. */
    const char *zSep = strstr(zUrl, "://");
    int nShow = (int)strlen(zUrl);
    if (zSep && strchr(zSep, '@')) nShow = (int)(zSep - zUrl) + 3;
    return quay__err(pErr, QUAY_ECONNECTION,
                     "cannot open '%.*s%s': use sqlite::memory:, sqlite:<path>, "
                     "postgresql://... or a libpq keyword string", nShow,
                     zUrl, zUrl[nShow] ? "..." : "");
  }
  rc = db_new(pDrv, pOpts, &pDb, pErr);
  if (rc) return rc;
  pDb->zUrl = quay__strdup(zUrl);
  if (pDb->zUrl == NULL) {
    quay_db_free(pDb);
    return quay__oom(pErr);
  }
  rc = pDrv->xOpen(zRest, &pDb->opts, NULL, &pDb->aSrv[0].pConn, pErr);
  if (rc) {
    quay_db_free(pDb);
    return rc;
  }
  *ppDb = pDb;
  return QUAY_OK;
}

int quay_db_wrap_sqlite(struct sqlite3 *pHandle, const quay_open_opts *pOpts,
                        quay_db **ppDb, quay_err *pErr) {
  quay_db *pDb;
  int rc;
  if (ppDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_wrap_sqlite: ppDb is NULL");
  }
  *ppDb = NULL;
  if (pHandle == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_wrap_sqlite: NULL handle");
  }
  rc = db_new(&quay__drv_sqlite, pOpts, &pDb, pErr);
  if (rc) return rc;
  pDb->pBorrowed = pHandle;
  rc = pDb->pDrv->xOpen("", &pDb->opts, pHandle, &pDb->aSrv[0].pConn,
                        pErr);
  if (rc) {
    quay_db_free(pDb);
    return rc;
  }
  *ppDb = pDb;
  return QUAY_OK;
}

/* Finalize the statements of server pS's cache. */
static void cache_clear(quay_db *pDb, DbServer *pS) {
  CachedStmt *p = pS->pCache;
  while (p) {
    CachedStmt *pNext = p->pNext;
    /* A cursor still using it owns nothing; it checks iGen first. */
    pDb->pDrv->xFinalize(p->pStmt);
    quay__free(p->zSql);
    quay__free(p);
    p = pNext;
  }
  pS->pCache = NULL;
  pS->nCache = 0;
}

/* Close server pS's connection (idempotent); its cursors go stale. */
static void server_close(quay_db *pDb, DbServer *pS) {
  if (pS->pConn == NULL) return;
  cache_clear(pDb, pS);
  pDb->pDrv->xClose(pS->pConn);
  pS->pConn = NULL;
  pS->iGen++;
}

/*
** Roll back what Quay's open levels wrote, on the way out: ROLLBACK of a
** transaction Quay opened; inside the host's transaction only Quay's
** outermost savepoint (the host's own work and its transaction stay).
** Nothing when the transaction is gone already.
*/
static void txn_abandon(quay_db *pDb) {
  DrvConn *c = pDb->aSrv[0].pConn;
  if (c && pDb->txnDepth > 0 && pDb->eTxnGone == TXN_GONE_NONE &&
      pDb->pDrv->xAlive(c)) {
    if (pDb->bHostTxn) {
      pDb->pDrv->xSimple(c, "ROLLBACK TO SAVEPOINT quay_sp_0", NULL);
      pDb->pDrv->xSimple(c, "RELEASE SAVEPOINT quay_sp_0", NULL);
    } else {
      pDb->pDrv->xSimple(c, "ROLLBACK", NULL);
    }
  }
  /* The levels stay open, gone (TXN_GONE_CLOSED), until their owners end
  ** them: a db:transaction body, a hook or a delete observer may close
  ** the db and reopen it, and the rest of that call must not run on the
  ** new connection outside any transaction (committed one by one), nor
  ** be reported committed. */
  if (pDb->txnDepth > 0) pDb->eTxnGone = TXN_GONE_CLOSED;
}

void quay_db_disconnect(quay_db *pDb) {
  int i;
  if (pDb == NULL || pDb->aSrv == NULL) return;
  bulk_ended(pDb);          /* a borrowed handle keeps its enforcement */
  txn_abandon(pDb);
  for (i = 0; i < pDb->nSrv; i++) {
    server_close(pDb, &pDb->aSrv[i]);
    pDb->aSrv[i].tRetryMs = 0;
  }
  pDb->bTxnReadOnly = 0;
}

/*
** Reopen the primary; the replicas connect again on their next read.
*/
int quay_db_reopen(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_reopen: %s is NULL", "pDb");
  }
  const char *zRest = "";
  if (pDb->bFreed) return quay__db_check_open(pDb, pErr);
  quay_db_disconnect(pDb);
  if (pDb->pBorrowed == NULL) {
    if (pDb->zUrl == NULL || pick_driver(pDb->zUrl, &zRest) == NULL) {
      return quay__err(pErr, QUAY_ECONNECTION, "nothing to reopen");
    }
  }
  return pDb->pDrv->xOpen(zRest, &pDb->opts, pDb->pBorrowed,
                          &pDb->aSrv[0].pConn, pErr);
}

static void blockers_clear(quay_db *pDb) {
  int i;
  for (i = 0; i < pDb->nBlock; i++) {
    quay__free(pDb->azBlockModel[i]);
    quay__value_clear(&pDb->aBlockKey[i]);
  }
  quay__free(pDb->azBlockModel);
  quay__free(pDb->aBlockKey);
  pDb->azBlockModel = NULL;
  pDb->aBlockKey = NULL;
  pDb->nBlock = 0;
}

/* Free everything of a db no child points at any more. */
static void db_free_now(quay_db *pDb) {
  int i;
  quay_db_disconnect(pDb);
  for (i = 0; i < pDb->nModel; i++) quay__model_free(pDb->apModel[i]);
  quay__free(pDb->apModel);
  for (i = 0; i < pDb->nJoin; i++) {
    JoinTable *j = pDb->apJoin[i];
    quay__free(j->zTable);
    quay__free(j->zSrcCol);
    quay__free(j->zDstCol);
    quay__free(j);
  }
  quay__free(pDb->apJoin);
  quay__smap_free(&pDb->mModel);
  blockers_clear(pDb);
  quay__free(pDb->zUrl);
  if (pDb->azReplica) {
    for (i = 0; pDb->azReplica[i]; i++) quay__free(pDb->azReplica[i]);
  }
  quay__free(pDb->azReplica);
  quay__free(pDb->aSrv);
  quay__free(pDb);
}

/*
** With live children (cursors, writers, plans, loads, query sets,
** migrations, results) the db cannot go yet: they point into it, and
** freeing them must stay safe.  So, as sqlite3_close_v2 does, it closes
** the connection now (rolling back what Quay had open, finalizing its
** statements, so a host may close a borrowed handle once the children's
** own statements are gone) and the memory goes with the last child.
*/
void quay_db_free(quay_db *pDb) {
  if (pDb == NULL || pDb->bFreed) return;
  if (pDb->nChild > 0) {
    pDb->bFreed = 1;
    quay_db_disconnect(pDb);
    return;
  }
  db_free_now(pDb);
}

void quay__db_hold(quay_db *pDb) {
  if (pDb) pDb->nChild++;
}

void quay__db_release(quay_db *pDb) {
  if (pDb == NULL) return;
  assert(pDb->nChild > 0);
  if (--pDb->nChild == 0 && pDb->bFreed) db_free_now(pDb);
}

int quay_db_is_open(const quay_db *pDb) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return 0;
  }
  return pDb != NULL && pDb->aSrv != NULL && pDb->aSrv[0].pConn != NULL;
}

const char *quay_db_backend(const quay_db *pDb) {
  return pDb ? pDb->pDrv->zName : NULL;
}

int64_t quay_db_query_count(const quay_db *pDb) {
  return pDb ? pDb->nQuery : 0;
}

int64_t quay_db_role_count(const quay_db *pDb, int bReplica) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return 0;
  }
  int64_t n = 0;
  int i;
  if (!bReplica) return pDb->aSrv[0].nQuery;
  for (i = 1; i < pDb->nSrv; i++) n += pDb->aSrv[i].nQuery;
  return n;
}

int quay_db_strict(const quay_db *pDb) {
  return pDb ? pDb->opts.strict : 0;
}

void quay_db_on_query(quay_db *pDb, quay_trace_fn xTrace, void *pArg) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return;
  }
  pDb->xTrace = xTrace;
  pDb->pTraceArg = xTrace ? pArg : NULL;
}

/*
** The failure of a statement, or of ending a level, while levels are open
** in a transaction whose connection was closed (TXN_GONE_CLOSED): closing
** rolled it back, and nothing runs until every level is ended.
*/
static int closed_txn_err(quay_err *pErr) {
  return quay__err(pErr, QUAY_ECONNECTION,
                   "the connection was closed or lost while a transaction "
                   "was open (db:close() inside db:transaction, a hook or "
                   "on_query, or the server went away): that rolled back "
                   "what it wrote, and nothing more of it runs, also after "
                   "db:reopen() (run it again once the call has ended)");
}

int quay__db_check_open(quay_db *pDb, quay_err *pErr) {
  if (pDb->bFreed) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "the database was freed (quay_db_free) while this "
                     "object made from it was still alive; such objects "
                     "can only be freed now: free cursors, writers, loads, "
                     "plans and query sets before their db");
  }
  if (pDb->aSrv[0].pConn == NULL) {
    return quay__err(pErr, QUAY_ECONNECTION,
                     "attempt to use a closed database (call db:reopen() or "
                     "open a new one)");
  }
  if (pDb->txnDepth > 0 && pDb->eTxnGone == TXN_GONE_CLOSED) {
    return closed_txn_err(pErr);
  }
  return QUAY_OK;
}

#ifdef QUAY_TEST
void quay_test_fail_statement(quay_db *pDb, long k) { pDb->nFailStmt = k; }
#endif

int quay_db_blocker_count(const quay_db *pDb) {
  return pDb ? pDb->nBlock : 0;
}

const char *quay_db_blocker(const quay_db *pDb, int i, quay_value *pKey) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return NULL;
  }
  if (i < 0 || i >= pDb->nBlock) return NULL;
  *pKey = pDb->aBlockKey[i];
  return pDb->azBlockModel[i];
}

/*
** Replace the blocker list (cascade.c).  Takes ownership of both arrays.
*/
void quay__db_set_blockers(quay_db *pDb, char **az, quay_value *aKey, int n) {
  blockers_clear(pDb);
  pDb->azBlockModel = az;
  pDb->aBlockKey = aKey;
  pDb->nBlock = n;
}
/* }================================================================== */


/*
** {==================================================================
** Statements
** ===================================================================
*/
/*
** Called before every statement to server iSrv: count, test faults,
** observer.
**
** The observer (db:on_query) runs user code, which may re-enter the db:
** run statements of its own, close the connection or reopen it.  So the
** connection is checked again once it returns: a statement whose
** observer closed or reopened the connection is not sent, and fails with
** QUAY_ECONNECTION (its DrvConn is gone, and with it every statement of
** the cache).  An observer that raised fails the statement with
** QUAY_ECALLBACK (the binding re-raises its own error), except for a
** ROLLBACK (bRollback): a failing observer never keeps a transaction
** open, so its failure is ignored there.
*/
static int before_send(quay_db *pDb, int iSrv, const char *zSql,
                       const quay_value *a, int n, int bRollback,
                       quay_err *pErr) {
  DbServer *pS = &pDb->aSrv[iSrv];
  int iGen = pS->iGen, iGen0 = pDb->aSrv[0].iGen;
  int bFailed = 0;
  pDb->nQuery++;
  pS->nQuery++;
#ifdef QUAY_TEST
  if (pDb->nFailStmt > 0 && !bRollback) {
    if (--pDb->nFailStmt == 0) {
      return quay__err(pErr, QUAY_ESQL,
                       "injected statement failure (test hook) at: %.200s",
                       zSql);
    }
  }
#endif
  if (pDb->xTrace) {
    bFailed = pDb->xTrace(pDb->pTraceArg, zSql, a, n) && !bRollback;
  }
  if (bFailed) {
    return quay__err(pErr, QUAY_ECALLBACK, "on_query callback failed");
  }
  if (pDb->aSrv[0].pConn == NULL || pS->pConn == NULL) {
    return quay__err(pErr, QUAY_ECONNECTION,
                     "attempt to use a closed database: the on_query "
                     "callback closed it before this statement was sent "
                     "(call db:reopen())");
  }
  if (pS->iGen != iGen || pDb->aSrv[0].iGen != iGen0) {
    return quay__err(pErr, QUAY_ECONNECTION,
                     "the on_query callback closed and reopened the "
                     "database before this statement was sent; it was not "
                     "sent (run the call again)");
  }
  if (pDb->txnDepth > 0 && pDb->eTxnGone == TXN_GONE_CLOSED) {
    return closed_txn_err(pErr);
  }
  return QUAY_OK;
}

/*
** {==================================================================
** Failures in the schema's names
** ===================================================================
** A driver describes a constraint failure or a missing table in the
** database's names (DrvErrInfo: tables, columns), differently per
** backend.  explain_fail restates it in the names the user declared,
** model and field first, the backend's own text last:
**     User.email must be unique: another User row has the same value
**     (UNIQUE constraint failed: users.email)
** so both backends name the same thing the same way.
*/
#define EXPLAIN_MAX_NAMES 4         /* candidates listed, then "..." */

/* The model whose table is zTable, or NULL. */
quay_model *quay__model_of_table(quay_db *pDb, const char *zTable) {
  int i;
  if (zTable == NULL || zTable[0] == 0) return NULL;
  for (i = 0; i < pDb->nModel; i++) {
    if (strcmp(pDb->apModel[i]->zTable, zTable) == 0) return pDb->apModel[i];
  }
  for (i = 0; i < pDb->nModel; i++) {
    if (quay__casecmp(pDb->apModel[i]->zTable, zTable) == 0) {
      return pDb->apModel[i];
    }
  }
  return NULL;
}

/* The join table (of a many_to_many without a through model) zTable. */
static JoinTable *join_of_table(quay_db *pDb, const char *zTable) {
  int i;
  if (zTable == NULL || zTable[0] == 0) return NULL;
  for (i = 0; i < pDb->nJoin; i++) {
    if (quay__casecmp(pDb->apJoin[i]->zTable, zTable) == 0) {
      return pDb->apJoin[i];
    }
  }
  return NULL;
}

/* The many_to_many relation that owns join table j, or NULL. */
static Rel *join_rel(JoinTable *j) {
  int i;
  if (j->pSrc == NULL) return NULL;
  for (i = 0; i < j->pSrc->nDeclRel; i++) {
    Rel *r = j->pSrc->apRel[i];
    if (r->pJoin == j && r->eKind == QUAY_R_MANY_TO_MANY) return r;
  }
  return NULL;
}

/* The field of m stored in column zCol, or NULL. */
static Field *field_of_col(quay_model *m, const char *zCol, size_t n) {
  int i;
  for (i = 0; i < m->nField; i++) {
    const char *z = m->apField[i]->zCol;
    if (strlen(z) == n && strncmp(z, zCol, n) == 0) return m->apField[i];
  }
  return NULL;
}

/* "Post.author" for a key column its own relation writes, else "Post.x". */
static void name_field(Str *p, quay_model *m, Field *f) {
  const char *z = f->zName;
  if (f->pRel && f->pRel->pFrom == m &&
      (f->pRel->eKind == QUAY_R_BELONGS_TO ||
       f->pRel->eKind == QUAY_R_ONE_TO_ONE)) {
    z = f->pRel->zName;
  }
  quay__str_printf(p, "%s.%s", m->zName, z);
}

/*
** Append the fields of m stored in the ", " separated columns zCols, as
** "User.email" or "Post (slug, kind)"; returns their number (0: some
** column is not a field of m, and nothing was appended).
*/
static int name_cols(Str *p, quay_model *m, const char *zCols) {
  Field *aF[8];
  int n = 0, i;
  const char *z = zCols;
  while (*z && n < QUAY_ARRAYSIZE(aF)) {
    const char *zEnd = strstr(z, ", ");
    size_t k = zEnd ? (size_t)(zEnd - z) : strlen(z);
    if (k >= 2 && z[0] == '"' && z[k - 1] == '"') {
      z++;
      k -= 2;
    }
    aF[n] = field_of_col(m, z, k);
    if (aF[n] == NULL) return 0;
    n++;
    if (zEnd == NULL) break;
    z = zEnd + 2;
  }
  if (n == 1) {
    name_field(p, m, aF[0]);
  } else if (n > 1) {
    quay__str_printf(p, "%s (", m->zName);
    for (i = 0; i < n; i++) {
      Str one;
      const char *zDot;
      quay__str_init(&one);
      name_field(&one, m, aF[i]);
      zDot = one.z ? strchr(one.z, '.') : NULL;
      quay__str_printf(p, "%s%s", i ? ", " : "", zDot ? zDot + 1 : "?");
      quay__str_free(&one);
    }
    quay__str_char(p, ')');
  }
  return n;
}

/*
** Append the key columns of m (pTo NULL: all of them; else those that
** refer to pTo) as "Post.author or Post.editor"; adds to *pn.
*/
static void name_fks(Str *p, quay_model *m, quay_model *pTo, int *pn) {
  int i;
  for (i = 0; i < m->nField; i++) {
    Field *f = m->apField[i];
    if (f->pRel == NULL || f->pRel->pFrom != m ||
        (f->pRel->eKind != QUAY_R_BELONGS_TO &&
         f->pRel->eKind != QUAY_R_ONE_TO_ONE) ||
        (pTo && f->pRel->pTo != pTo)) {
      continue;
    }
    if (++*pn > EXPLAIN_MAX_NAMES) {
      if (*pn == EXPLAIN_MAX_NAMES + 1) quay__str_cat(p, ", ...");
      continue;
    }
    if (*pn > 1) quay__str_cat(p, " or ");
    name_field(p, m, f);
  }
}

/* Append every relation that refers to pTo, as name_fks does. */
static void name_refs(Str *p, quay_db *pDb, quay_model *pTo, int *pn) {
  int i;
  for (i = 0; i < pDb->nModel; i++) name_fks(p, pDb->apModel[i], pTo, pn);
  for (i = 0; i < pDb->nJoin; i++) {
    JoinTable *j = pDb->apJoin[i];
    Rel *r = join_rel(j);
    if (r == NULL || (j->pSrc != pTo && j->pDst != pTo)) continue;
    if (++*pn > EXPLAIN_MAX_NAMES) {
      if (*pn == EXPLAIN_MAX_NAMES + 1) quay__str_cat(p, ", ...");
      continue;
    }
    quay__str_printf(p, "%s%s.%s", *pn > 1 ? " or " : "", r->pFrom->zName,
                     r->zName);
  }
}

/* "a User row" / "a row" */
static void name_row(Str *p, quay_model *m) {
  if (m) quay__str_printf(p, "a %s row", m->zName);
  else quay__str_cat(p, "a row");
}

/* The explanation of a constraint failure; nothing when none is known. */
static void explain_integrity(quay_db *pDb, const DrvErrInfo *pI, Str *p) {
  quay_model *m = quay__model_of_table(pDb, pI->zTable);
  JoinTable *j = m ? NULL : join_of_table(pDb, pI->zTable);
  Rel *r = j ? join_rel(j) : NULL;
  quay_model *pRef = quay__model_of_table(pDb, pI->zRefTable);
  int n = 0;
  switch (pI->eKind) {
    case ERRK_UNIQUE:
      if (m && (n = name_cols(p, m, pI->zCols)) == 1) {
        quay__str_printf(p, " must be unique: another %s row has the same "
                         "value", m->zName);
      } else if (m && n > 1) {
        quay__str_printf(p, " must be unique together: another %s row has "
                         "the same values", m->zName);
      } else if (r) {
        quay__str_printf(p, "%s.%s already links these two rows (join "
                         "table %s)", r->pFrom->zName, r->zName, j->zTable);
      }
      if (m && n > 0 && m->pDeletedAt) {
        /* The row may be a soft-deleted one that no query shows. */
        quay__str_printf(p, " (soft-deleted %s rows count too: find one "
                         "with with_deleted() and restore() it)", m->zName);
      }
      break;
    case ERRK_NOTNULL:
      if (m && name_cols(p, m, pI->zCols) == 1) {
        quay__str_cat(p, " cannot be NULL: give it a value, or declare it "
                      "with null = true");
      }
      break;
    case ERRK_FK:
      if (m && pI->zCols[0] && name_cols(p, m, pI->zCols) > 0) {
        n = 1;
      } else if (m) {
        name_fks(p, m, NULL, &n);
      } else if (r) {
        quay__str_printf(p, "%s.%s (join table %s)", r->pFrom->zName,
                         r->zName, j->zTable);
        n = 1;
      }
      if (n > 0) {
        quay__str_cat(p, " refers to ");
        name_row(p, pRef);
        quay__str_cat(p, " that does not exist");
        if (m && !pI->zCols[0] && n > 1) {
          quay__str_cat(p, " (the database does not say which)");
        }
      } else if (!m && !r) {
        quay__str_cat(p, "a foreign key refers to a row that does not "
                      "exist");
      }
      break;
    case ERRK_FK_REFERENCED:
      if (pRef == NULL) break;
      name_row(p, pRef);
      quay__str_cat(p, " is still referenced by ");
      if (m && pI->zCols[0] && name_cols(p, m, pI->zCols) > 0) {
        n = 1;
      } else if (m) {
        name_fks(p, m, pRef, &n);
      } else if (r) {
        quay__str_printf(p, "%s.%s", r->pFrom->zName, r->zName);
        n = 1;
      } else {
        name_refs(p, pDb, pRef, &n);
      }
      if (n == 0) quay__str_cat(p, "another row");
      quay__str_cat(p, ": delete or change those rows first, or give the "
                    "relation an on_delete rule that handles them");
      break;
    case ERRK_FK_EITHER:
      if (m == NULL) break;
      name_fks(p, m, NULL, &n);
      if (n > 0) quay__str_cat(p, " refers to a row that does not exist, or ");
      name_row(p, m);
      quay__str_cat(p, " is still referenced");
      n = 0;
      {
        Str refs;
        quay__str_init(&refs);
        name_refs(&refs, pDb, m, &n);
        if (n > 0 && refs.z) quay__str_printf(p, " by %s", refs.z);
        quay__str_free(&refs);
      }
      quay__str_cat(p, " (the database does not say which)");
      break;
  }
}

/* The explanation of a missing table. */
static void explain_no_table(quay_db *pDb, const DrvErrInfo *pI, Str *p) {
  quay_model *m = quay__model_of_table(pDb, pI->zTable);
  JoinTable *j = m ? NULL : join_of_table(pDb, pI->zTable);
  Rel *r = j ? join_rel(j) : NULL;
  if (m) {
    quay__str_printf(p, "the table %s of model %s does not exist", m->zTable,
                     m->zName);
  } else if (r) {
    quay__str_printf(p, "the join table %s of %s.%s does not exist",
                     j->zTable, r->pFrom->zName, r->zName);
  } else if (pI->zTable[0]) {
    quay__str_printf(p, "table %s does not exist", pI->zTable);
  } else {
    quay__str_cat(p, "a table does not exist");
  }
  quay__str_cat(p, ": create the tables of the declared models with "
                "db:create_tables(), or apply the migrations with "
                "db:migrate()");
}

/*
** Restate the driver's last failure in the schema's names, in front of
** the driver's message (code, SQLSTATE and extended code are kept).
*/
static void explain_fail(quay_db *pDb, DrvConn *pConn, int rc,
                         quay_err *pErr) {
  DrvErrInfo info;
  Str s;
  const char *zOld;
  if (pConn == NULL || pDb->pDrv->iVersion < 2 ||
      pDb->pDrv->xErrInfo == NULL) {
    return;
  }
  pDb->pDrv->xErrInfo(pConn, &info);
  if (pErr == NULL || info.eKind == ERRK_NONE) return;
  if (rc != QUAY_EINTEGRITY && rc != QUAY_ESQL) return;
  quay__str_init(&s);
  if (info.eKind == ERRK_NO_TABLE) {
    explain_no_table(pDb, &info, &s);
  } else if (rc == QUAY_EINTEGRITY) {
    explain_integrity(pDb, &info, &s);
  }
  if (s.n > 0 && !s.oom) {
    quay_err e = *pErr;
    zOld = e.zMsg;
    if (strncmp(zOld, "integrity error: ", 17) == 0) zOld += 17;
    quay__err(pErr, rc, "%s (%s)", s.z, zOld);
    pErr->ext = e.ext;
    memcpy(pErr->zState, e.zState, sizeof(e.zState));
  }
  quay__str_free(&s);
}
/* }================================================================== */

/*
** After a driver failure on server iSrv: a dead connection becomes
** QUAY_ECONNECTION.  The primary's transaction levels are gone with it
** (the server rolled them back); a dead replica is closed and skipped
** for a while (routed reads move on).  On a live connection the levels
** stay: whoever opened them rolls them back (quay__txn_end,
** db:transaction), which is what makes a PostgreSQL session usable again
** after a failed statement aborted its transaction.
*/
static int after_fail(quay_db *pDb, int iSrv, int rc, quay_err *pErr) {
  DbServer *pS = &pDb->aSrv[iSrv];
  int bDead = pS->pConn == NULL || !pDb->pDrv->xAlive(pS->pConn);
  if (!bDead) explain_fail(pDb, pS->pConn, rc, pErr);
  if (rc != QUAY_ECONNECTION && pS->pConn && bDead) {
    char zMsg[sizeof(((quay_err *)0)->zMsg)];
    zMsg[0] = 0;
    if (pErr) memcpy(zMsg, pErr->zMsg, sizeof(zMsg));
    zMsg[sizeof(zMsg) - 1] = 0;
    rc = quay__err(pErr, QUAY_ECONNECTION, "connection lost: %s", zMsg);
  }
  if (bDead && iSrv == 0 && pDb->txnDepth > 0) {
    /* The levels stay open, gone, until their owners end them (as after
    ** quay_db_disconnect): a body that catches this error and reopens
    ** the db must not go on in autocommit. */
    pDb->eTxnGone = TXN_GONE_CLOSED;
  } else if (bDead && iSrv == 0) {
    pDb->bTxnReadOnly = 0;
    pDb->bHostTxn = 0;
    pDb->eTxnGone = TXN_GONE_NONE;
  } else if (iSrv == 0 && pDb->txnDepth > 0 &&
             pDb->eTxnGone == TXN_GONE_NONE && !conn_in_txn(pDb)) {
    /* The failure made the server end the transaction (SQLite rolls
    ** back on some errors: SQLITE_FULL, IOERR, NOMEM, an interrupt):
    ** the open levels are gone; each is ended by its owner as usual. */
    pDb->eTxnGone = TXN_GONE_ERROR;
  }
  if (bDead && iSrv > 0 && pS->pConn) {
    /* Say which server went, and that the db itself goes on. */
    char zMsg[sizeof(((quay_err *)0)->zMsg)];
    zMsg[0] = 0;
    if (pErr) memcpy(zMsg, pErr->zMsg, sizeof(zMsg));
    zMsg[sizeof(zMsg) - 1] = 0;
    server_close(pDb, pS);
    pS->tRetryMs = now_ms() + QUAY_REPLICA_RETRY_MS;
    rc = quay__err(pErr, QUAY_ECONNECTION, "read replica %d was lost (the "
                   "next reads go to another server; no db:reopen() "
                   "needed): %s", iSrv, zMsg);
  }
  return rc;
}

/* Find or prepare the statement for zSql in server pS's cache. */
static int get_stmt(quay_db *pDb, DbServer *pS, const char *zSql, int nParam,
                    DrvStmt **ppStmt, CachedStmt **ppCached, quay_err *pErr) {
  uint64_t h;
  CachedStmt *p, *pPrev = NULL;
  int rc;
  *ppStmt = NULL;
  *ppCached = NULL;
  p = pS->pCache;
  if (p && !p->inUse && strcmp(p->zSql, zSql) == 0) {
    /* The statement used last, again (a writer stepping one INSERT per
    ** row): no hash needed. */
    *ppStmt = p->pStmt;
    *ppCached = p;
    return QUAY_OK;
  }
  h = quay__hash_bytes(zSql, strlen(zSql));
  for (p = pS->pCache; p; pPrev = p, p = p->pNext) {
    if (p->h == h && strcmp(p->zSql, zSql) == 0) break;
  }
  if (p && !p->inUse) {
    if (pPrev) {                      /* move to front */
      pPrev->pNext = p->pNext;
      p->pNext = pS->pCache;
      pS->pCache = p;
    }
    *ppStmt = p->pStmt;
    *ppCached = p;
    return QUAY_OK;
  }
  if (p) {
    /* Busy: a private, uncached statement. */
    return pDb->pDrv->xPrepare(pS->pConn, zSql, nParam, 0, ppStmt, pErr);
  }
  p = quay__calloc(sizeof(*p));
  if (p == NULL) return quay__oom(pErr);
  p->zSql = quay__strdup(zSql);
  if (p->zSql == NULL) {
    quay__free(p);
    return quay__oom(pErr);
  }
  rc = pDb->pDrv->xPrepare(pS->pConn, zSql, nParam, 1, &p->pStmt, pErr);
  if (rc) {
    quay__free(p->zSql);
    quay__free(p);
    return rc;
  }
  p->h = h;
  p->pNext = pS->pCache;
  pS->pCache = p;
  pS->nCache++;
  if (pS->nCache > QUAY_CACHE_MAX) {
    /* Evict the least recently used statement that is not in use. */
    CachedStmt **pp = &pS->pCache, **ppVictim = NULL;
    while (*pp) {
      if (!(*pp)->inUse && *pp != p) ppVictim = pp;
      pp = &(*pp)->pNext;
    }
    if (ppVictim) {
      CachedStmt *v = *ppVictim;
      *ppVictim = v->pNext;
      pDb->pDrv->xFinalize(v->pStmt);
      quay__free(v->zSql);
      quay__free(v);
      pS->nCache--;
    }
  }
  *ppStmt = p->pStmt;
  *ppCached = p;
  return QUAY_OK;
}

/* A new cursor over pStmt of server iSrv (NULL when out of memory). */
static quay_cursor *cursor_new(quay_db *pDb, int iSrv, DrvStmt *pStmt,
                               CachedStmt *pCached, const int *aHint,
                               int nHint) {
  quay_cursor *c = quay__calloc(sizeof(*c));
  int i;
  if (c == NULL) return NULL;
  c->pDb = pDb;
  c->iSrv = iSrv;
  c->iGen = pDb->aSrv[iSrv].iGen;
  c->pStmt = pStmt;
  c->pCached = pCached;
  c->nCol = pDb->pDrv->xColumnCount(pStmt);
  if (c->nCol > 0) {
    c->aHint = quay__calloc(sizeof(int) * (size_t)c->nCol);
    if (c->aHint == NULL) {
      quay__free(c);
      return NULL;
    }
    for (i = 0; i < c->nCol && i < nHint; i++) {
      c->aHint[i] = aHint ? aHint[i] : 0;
    }
  }
  quay__db_hold(pDb);
  return c;
}

/*
** Non-0 when a statement failed because PostgreSQL refuses to run a
** prepared statement whose result columns changed since it was prepared
** (another connection altered a table under the cache).
*/
static int plan_changed(const quay_err *pErr) {
  return pErr && strcmp(pErr->zState, "0A000") == 0 &&
         strstr(pErr->zMsg, "cached plan") != NULL;
}

/* Finalize the cached statements of server pS no cursor is stepping. */
static void cache_drop_idle(quay_db *pDb, DbServer *pS) {
  CachedStmt **pp = &pS->pCache;
  if (pS->pConn == NULL) return;
  while (*pp) {
    CachedStmt *p = *pp;
    if (p->inUse) {
      pp = &p->pNext;
      continue;
    }
    *pp = p->pNext;
    pDb->pDrv->xFinalize(p->pStmt);
    quay__free(p->zSql);
    quay__free(p);
    pS->nCache--;
  }
}

/*
** After plan_changed: the server's idle statements go (a schema change
** seldom touches one table's statements only), and the caller may send
** again.  Returns 1 when it may: outside a transaction.  Inside one the
** failure aborted the transaction, so it becomes busy: the transaction is
** to be run again as a whole (a retry loop around it does just that).
*/
static int plan_retry(quay_db *pDb, int iSrv, quay_err *pErr) {
  cache_drop_idle(pDb, &pDb->aSrv[iSrv]);
  if (iSrv > 0 || pDb->txnDepth == 0) return 1;
  quay__err(pErr, QUAY_EBUSY, "a table's columns changed under a statement "
            "of this transaction (a migration by another connection): run "
            "the transaction again");
  return 0;
}

static int run_once(quay_db *pDb, int iSrv, int bWrite, const char *zSql,
                    const quay_value *aParam, int nParam, const int *aHint,
                    int nHint, int bStream, quay_cursor **ppCur,
                    int64_t *pnChanged, quay_err *pErr);

/*
** Run one statement on server iSrv (connected).  bWrite marks the handle
** as having written now (sticky reads), whatever the outcome.
*/
static int run_on(quay_db *pDb, int iSrv, int bWrite, const char *zSql,
                  const quay_value *aParam, int nParam, const int *aHint,
                  int nHint, int bStream, quay_cursor **ppCur,
                  int64_t *pnChanged, quay_err *pErr) {
  quay_err e;
  int rc;
  if (pErr == NULL) pErr = &e;
  rc = run_once(pDb, iSrv, bWrite, zSql, aParam, nParam, aHint, nHint,
                bStream, ppCur, pnChanged, pErr);
  if (rc && plan_changed(pErr)) {
    if (!plan_retry(pDb, iSrv, pErr)) return QUAY_EBUSY;
    rc = run_once(pDb, iSrv, bWrite, zSql, aParam, nParam, aHint, nHint,
                  bStream, ppCur, pnChanged, pErr);
  }
  return rc;
}

static int run_once(quay_db *pDb, int iSrv, int bWrite, const char *zSql,
                  const quay_value *aParam, int nParam, const int *aHint,
                  int nHint, int bStream, quay_cursor **ppCur,
                  int64_t *pnChanged, quay_err *pErr) {
  DbServer *pS = &pDb->aSrv[iSrv];
  DrvStmt *pStmt = NULL;
  CachedStmt *pCached = NULL;
  int rc;
  rc = before_send(pDb, iSrv, zSql, aParam, nParam, 0, pErr);
  if (rc) return rc;
  if (bWrite) {
    pDb->tWriteMs = now_ms();
    if (pDb->txnDepth > 0) pDb->bTxnWrote = 1;
  }
  rc = get_stmt(pDb, pS, zSql, nParam, &pStmt, &pCached, pErr);
  if (rc) return after_fail(pDb, iSrv, rc, pErr);
  rc = pDb->pDrv->xExec(pStmt, aParam, nParam,
                        bStream ? QUAY_EXEC_STREAM
                                : (ppCur ? 0 : QUAY_EXEC_STATIC), pErr);
  if (bWrite) pDb->tWriteMs = now_ms();
  if (rc) goto fail;
  if (ppCur) {
    quay_cursor *c = cursor_new(pDb, iSrv, pStmt, pCached, aHint, nHint);
    if (c == NULL) {
      rc = quay__oom(pErr);
      goto fail;
    }
    if (pCached) pCached->inUse = 1;
    *ppCur = c;
    return QUAY_OK;
  }
  for (;;) {
    rc = pDb->pDrv->xStep(pStmt, pErr);
    if (rc == QUAY_ROW) continue;
    if (rc != QUAY_DONE) goto fail;
    break;
  }
  if (pnChanged) *pnChanged = pDb->pDrv->xChanges(pStmt);
  pDb->pDrv->xReset(pStmt);
  if (pCached == NULL) pDb->pDrv->xFinalize(pStmt);
  return QUAY_OK;
fail:
  if (pStmt) {
    pDb->pDrv->xReset(pStmt);
    if (pCached == NULL) pDb->pDrv->xFinalize(pStmt);
  }
  return after_fail(pDb, iSrv, rc, pErr);
}

int quay__db_run(quay_db *pDb, const char *zSql, const quay_value *aParam,
                 int nParam, const int *aHint, int nHint, int bStream,
                 quay_cursor **ppCur, int64_t *pnChanged, quay_err *pErr) {
  int rc;
  if (ppCur) *ppCur = NULL;
  if (pnChanged) *pnChanged = 0;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  return run_on(pDb, 0, 1, zSql, aParam, nParam, aHint, nHint, bStream,
                ppCur, pnChanged, pErr);
}

/*
** {==================================================================
** Routing reads
** ===================================================================
*/
/* Non-0 when the SQL locks the rows it reads (a replica cannot). */
static int sql_locks_rows(const char *zSql) {
  return strstr(zSql, " FOR UPDATE") != NULL ||
         strstr(zSql, " FOR NO KEY UPDATE") != NULL ||
         strstr(zSql, " FOR SHARE") != NULL ||
         strstr(zSql, " FOR KEY SHARE") != NULL;
}

/* Non-0 when reads must stay on the primary now: a transaction is open,
** or the handle wrote within the sticky time. */
static int reads_on_primary(quay_db *pDb) {
  int64_t sticky = pDb->opts.sticky_ms < 0 ? QUAY_STICKY_MS
                                           : pDb->opts.sticky_ms;
  if (pDb->nSrv < 2 || pDb->txnDepth > 0) return 1;
  if (conn_in_txn(pDb)) return 1;      /* a transaction the host opened */
  return sticky > 0 && pDb->tWriteMs != 0 &&
         now_ms() - pDb->tWriteMs < sticky;
}

/*
** Make replica iSrv usable: connect it when it has no connection and is
** not waiting out a failure.  Returns non-0 when it can take a read.
** A failed connect marks it down (its error is not reported: the read
** moves on, and the primary's error is what a caller sees last).
*/
static int replica_ready(quay_db *pDb, int iSrv) {
  DbServer *pS = &pDb->aSrv[iSrv];
  quay_err e;
  int rc;
  if (pS->pConn) return 1;
  if (pS->tRetryMs != 0 && now_ms() < pS->tRetryMs) return 0;
  quay_err_clear(&e);
  rc = pDb->pDrv->xOpen(pS->zUrl, &pDb->opts, NULL, &pS->pConn, &e);
  if (rc) {
    pS->pConn = NULL;
    pS->tRetryMs = now_ms() + QUAY_REPLICA_RETRY_MS;
    return 0;
  }
  pS->tRetryMs = 0;
  return 1;
}

/*
** The candidate servers of a read, in the order to try them, into
** aOut (pDb->nSrv + 1 entries); returns their number.  The primary is
** always last; replicas come first only when routing allows.  iWant is
** the caller's *piSrv (QUAY_SRV_ANY, QUAY_SRV_PRIMARY or a replica).
*/
static int read_order(quay_db *pDb, int iWant, const char *zSql,
                      int *aOut) {
  int n = 0, i, nRep = pDb->nSrv - 1;
  if (iWant != QUAY_SRV_PRIMARY && !reads_on_primary(pDb) &&
      !(zSql && sql_locks_rows(zSql))) {
    if (iWant > 0 && iWant < pDb->nSrv) aOut[n++] = iWant;
    for (i = 0; i < nRep; i++) {
      int k = 1 + (pDb->iNextRead + i) % nRep;
      if (k != iWant) aOut[n++] = k;
    }
    if (iWant == QUAY_SRV_ANY || iWant > nRep) {
      pDb->iNextRead = (pDb->iNextRead + 1) % nRep;
    }
  }
  aOut[n++] = 0;
  return n;
}

/*
** Non-0 when a failed read on replica iSrv may move to the next server:
** the replica is gone (the statement's own errors stand), and the db is
** still the one the read started on (iGen0: an observer that closed or
** reopened it fails the read, as on the primary).
*/
static int read_moves_on(quay_db *pDb, int iSrv, int rc, int iGen0) {
  return iSrv > 0 && rc == QUAY_ECONNECTION && pDb->aSrv[iSrv].pConn == NULL
         && pDb->aSrv[0].pConn != NULL && pDb->aSrv[0].iGen == iGen0;
}

int quay__db_read(quay_db *pDb, int *piSrv, const char *zSql,
                  const quay_value *aParam, int nParam, const int *aHint,
                  int nHint, int bStream, quay_cursor **ppCur,
                  quay_err *pErr) {
  int aOrder[8], *a = aOrder, n, i, rc = QUAY_OK, iGen0;
  if (ppCur) *ppCur = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  iGen0 = pDb->aSrv[0].iGen;
  if (pDb->nSrv + 1 > QUAY_ARRAYSIZE(aOrder)) {
    a = quay__malloc(sizeof(int) * (size_t)(pDb->nSrv + 1));
    if (a == NULL) return quay__oom(pErr);
  }
  n = read_order(pDb, *piSrv, zSql, a);
  for (i = 0; i < n; i++) {
    int k = a[i];
    if (k > 0 && !replica_ready(pDb, k)) continue;
    rc = run_on(pDb, k, 0, zSql, aParam, nParam, aHint, nHint, bStream,
                ppCur, NULL, pErr);
    if (rc == QUAY_OK) *piSrv = k;
    if (rc == QUAY_OK || !read_moves_on(pDb, k, rc, iGen0)) break;
  }
  if (a != aOrder) quay__free(a);
  return rc;
}

/* The integer in the first column of c's first row (0 when none); closes
** c. */
static int cursor_scalar(quay_cursor *c, int64_t *pOut, quay_err *pErr) {
  int rc = quay_cursor_step(c, pErr);
  if (rc == QUAY_ROW) {
    quay_value v;
    quay_cursor_value(c, 0, &v);
    if (v.type == QUAY_INT) *pOut = v.u.i;
    else if (v.type == QUAY_REAL) *pOut = (int64_t)v.u.r;
    else if (v.type == QUAY_BOOL) *pOut = v.u.b;
    rc = QUAY_OK;
  } else if (rc == QUAY_DONE) {
    rc = QUAY_OK;
  }
  quay_cursor_close(c);
  return rc;
}

int quay__db_read_scalar(quay_db *pDb, int *piSrv, const char *zSql,
                         const quay_value *aParam, int nParam, int64_t *pOut,
                         quay_err *pErr) {
  quay_cursor *c;
  int rc = quay__db_read(pDb, piSrv, zSql, aParam, nParam, NULL, 0, 0, &c,
                         pErr);
  *pOut = 0;
  return rc ? rc : cursor_scalar(c, pOut, pErr);
}
/* }================================================================== */

/*
** Run n statements on server iSrv as one batch and return a cursor over
** each (all or none).  With a driver that batches (PostgreSQL
** pipelines), the n executions cost one round trip; otherwise they run
** one by one.  Each statement still counts in db:stats() and is shown to
** db:on_query.
*/
static int batch_on(quay_db *pDb, int iSrv, int n, const char *const *azSql,
                    const quay_value *const *aaParam, const int *anParam,
                    const int *const *aaHint, const int *anHint,
                    quay_cursor **apCur, quay_err *pErr) {
  DbServer *pS = &pDb->aSrv[iSrv];
  DrvStmt **aStmt;
  CachedStmt **aCached;
  int i, rc = QUAY_OK, nGot = 0, iGen;
  for (i = 0; i < n; i++) apCur[i] = NULL;
  aStmt = quay__calloc(sizeof(DrvStmt *) * (size_t)(n + 1));
  aCached = quay__calloc(sizeof(CachedStmt *) * (size_t)(n + 1));
  if (aStmt == NULL || aCached == NULL) {
    quay__free(aStmt);
    quay__free(aCached);
    return quay__oom(pErr);
  }
  iGen = pS->iGen;
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    rc = before_send(pDb, iSrv, azSql[i], aaParam[i], anParam[i], 0, pErr);
    if (rc == QUAY_OK) {
      rc = get_stmt(pDb, pS, azSql[i], anParam[i], &aStmt[i], &aCached[i],
                    pErr);
    }
    if (rc == QUAY_OK) {
      /* In use now, so a second copy of the same text in this batch gets
      ** a statement of its own. */
      if (aCached[i]) aCached[i]->inUse = 1;
      nGot++;
    }
  }
  if (rc == QUAY_OK) {
    if (pDb->pDrv->xExecBatch && n > 1) {
      rc = pDb->pDrv->xExecBatch(aStmt, aaParam, anParam, n, pErr);
    } else {
      for (i = 0; i < n && rc == QUAY_OK; i++) {
        rc = pDb->pDrv->xExec(aStmt[i], aaParam[i], anParam[i], 0, pErr);
      }
    }
  }
  for (i = 0; i < n && rc == QUAY_OK; i++) {
    apCur[i] = cursor_new(pDb, iSrv, aStmt[i], aCached[i], aaHint[i],
                          anHint[i]);
    if (apCur[i] == NULL) rc = quay__oom(pErr);
  }
  if (rc) {
    for (i = 0; i < n; i++) {
      if (apCur[i]) {
        quay_cursor_close(apCur[i]);
        apCur[i] = NULL;
      } else if (i < nGot && pS->iGen != iGen) {
        /* An observer closed the connection in the middle: the cached
        ** statements went with it; private ones are only freed (the
        ** driver's finalize does not touch the gone connection). */
        if (aCached[i] == NULL) pDb->pDrv->xFinalize(aStmt[i]);
      } else if (i < nGot) {
        pDb->pDrv->xReset(aStmt[i]);
        if (aCached[i]) aCached[i]->inUse = 0;
        else pDb->pDrv->xFinalize(aStmt[i]);
      }
    }
    rc = after_fail(pDb, iSrv, rc, pErr);
  }
  quay__free(aStmt);
  quay__free(aCached);
  return rc;
}

int quay__db_run_batch(quay_db *pDb, int *piSrv, int n,
                       const char *const *azSql,
                       const quay_value *const *aaParam, const int *anParam,
                       const int *const *aaHint, const int *anHint,
                       quay_cursor **apCur, quay_err *pErr) {
  int aOrder[8], *a = aOrder, nOrder, i, k, rc, iGen0;
  for (i = 0; i < n; i++) apCur[i] = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  iGen0 = pDb->aSrv[0].iGen;
  if (pDb->nSrv + 1 > QUAY_ARRAYSIZE(aOrder)) {
    a = quay__malloc(sizeof(int) * (size_t)(pDb->nSrv + 1));
    if (a == NULL) return quay__oom(pErr);
  }
  nOrder = read_order(pDb, *piSrv, n > 0 ? azSql[0] : NULL, a);
  for (i = 0; i < nOrder; i++) {
    k = a[i];
    if (k > 0 && !replica_ready(pDb, k)) continue;
    rc = batch_on(pDb, k, n, azSql, aaParam, anParam, aaHint, anHint, apCur,
                  pErr);
    if (rc && plan_changed(pErr)) {
      if (!plan_retry(pDb, k, pErr)) {
        rc = QUAY_EBUSY;
        break;
      }
      rc = batch_on(pDb, k, n, azSql, aaParam, anParam, aaHint, anHint,
                    apCur, pErr);
    }
    if (rc == QUAY_OK) *piSrv = k;
    if (rc == QUAY_OK || !read_moves_on(pDb, k, rc, iGen0)) break;
  }
  if (a != aOrder) quay__free(a);
  return rc;
}

int quay__db_simple(quay_db *pDb, const char *zSql, quay_err *pErr) {
  int rc = quay__db_check_open(pDb, pErr);
  int bRollback = strncmp(zSql, "ROLLBACK", 8) == 0;
  if (rc) return rc;
  rc = before_send(pDb, 0, zSql, NULL, 0, bRollback, pErr);
  if (rc) return rc;
  rc = pDb->pDrv->xSimple(pDb->aSrv[0].pConn, zSql, pErr);
  /* The COMMIT of a transaction that wrote is when its writes appear
  ** (sticky counts from it); a read-only transaction is no write. */
  if (pDb->bTxnWrote) pDb->tWriteMs = now_ms();
  if (rc) return after_fail(pDb, 0, rc, pErr);
  return QUAY_OK;
}

/*
** A clean-up statement (migrate.c: foreign keys back on, the quiet rename
** off): sent like a ROLLBACK, so an observer's failure does not stop it
** and the statement-failure test hook never fails it.
*/
int quay__db_cleanup(quay_db *pDb, const char *zSql, quay_err *pErr) {
  int rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  rc = before_send(pDb, 0, zSql, NULL, 0, 1, pErr);
  if (rc) return rc;
  rc = pDb->pDrv->xSimple(pDb->aSrv[0].pConn, zSql, pErr);
  if (rc) return after_fail(pDb, 0, rc, pErr);
  return QUAY_OK;
}

/*
** Finalize every cached statement no cursor is stepping, after the schema
** changed under them (a migration): PostgreSQL refuses to run a prepared
** statement whose result columns changed type.  Replicas too: the change
** reaches them by replication.
*/
void quay__db_cache_drop_idle(quay_db *pDb) {
  int i;
  for (i = 0; i < pDb->nSrv; i++) cache_drop_idle(pDb, &pDb->aSrv[i]);
}

int quay__db_scalar(quay_db *pDb, const char *zSql, const quay_value *aParam,
                    int nParam, int64_t *pOut, quay_err *pErr) {
  quay_cursor *c;
  int rc = quay__db_run(pDb, zSql, aParam, nParam, NULL, 0, 0, &c, NULL, pErr);
  *pOut = 0;
  return rc ? rc : cursor_scalar(c, pOut, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Cursors
** ===================================================================
*/
/* Non-0 while the cursor's connection is the one it was opened on. */
static int cursor_live(const quay_cursor *c) {
  const DbServer *pS = &c->pDb->aSrv[c->iSrv];
  return pS->pConn != NULL && c->iGen == pS->iGen;
}

/*
** The statement's columns changed at its first step: SQLite prepares a
** cached statement again when another connection changed the schema (a
** "SELECT *" then has the new columns).  Only raw SQL can see this (the
** statements Quay writes name their columns), so the new columns have no
** hints, except Model:raw's, which are mapped again by name.
*/
static int cursor_reshape(quay_cursor *c, quay_err *pErr) {
  int n = c->pDb->pDrv->xColumnCount(c->pStmt);
  int *a = quay__calloc(sizeof(int) * (size_t)(n + 1));
  if (a == NULL) return quay__oom(pErr);
  quay__free(c->aHint);
  c->aHint = a;
  c->nCol = n;
  return c->pRaw ? quay__raw_map(c, pErr) : QUAY_OK;
}

int quay_cursor_step(quay_cursor *c, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (c == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_cursor_step: %s is NULL",
        "pCur");
  }
  int rc;
  if (c->pDb->bFreed) return quay__db_check_open(c->pDb, pErr);
  if (c->ePending) {
    rc = c->ePending;
    c->ePending = 0;
    return rc;
  }
  if (c->done) return QUAY_DONE;
  if (!cursor_live(c)) {
    return quay__err(pErr, QUAY_ECONNECTION,
                     c->iSrv > 0 && c->pDb->aSrv[0].pConn
                       ? "the connection to the read replica these rows "
                         "came from was lost; run the query again"
                       : "attempt to read rows from a closed database");
  }
  rc = c->pDb->pDrv->xStep(c->pStmt, pErr);
  if (!c->bStepped && (rc == QUAY_ROW || rc == QUAY_DONE)) {
    c->bStepped = 1;
    if (c->pDb->pDrv->xColumnCount(c->pStmt) != c->nCol) {
      int rc2 = cursor_reshape(c, pErr);
      if (rc2) {
        c->done = 1;
        return rc2;
      }
    }
  }
  if (rc == QUAY_ROW) return rc;
  c->done = 1;
  if (rc == QUAY_DONE) return rc;
  return after_fail(c->pDb, c->iSrv, rc, pErr);
}

int quay_cursor_ncol(const quay_cursor *c) {
  return c ? c->nCol : 0;
}

const char *quay_cursor_colname(quay_cursor *c, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (c == NULL) {
    return NULL;
  }
  if (i < 0 || i >= c->nCol || !cursor_live(c)) return "";
  return c->pDb->pDrv->xColumnName(c->pStmt, i);
}

void quay_cursor_value(quay_cursor *c, int i, quay_value *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (c == NULL || p == NULL) {
    if (p != NULL) p->type = QUAY_NULL;
    return;
  }
  if (i < 0 || i >= c->nCol || c->done || !cursor_live(c)) {
    p->type = QUAY_NULL;
    return;
  }
  c->pDb->pDrv->xColumn(c->pStmt, i, c->aHint[i], p);
}

void quay_cursor_close(quay_cursor *c) {
  quay_db *pDb;
  if (c == NULL) return;
  if (c->iGen == c->pDb->aSrv[c->iSrv].iGen) {
    c->pDb->pDrv->xReset(c->pStmt);
    if (c->pCached) {
      c->pCached->inUse = 0;
    } else {
      c->pDb->pDrv->xFinalize(c->pStmt);
    }
  } else if (c->pCached == NULL) {
    /* Private statement of a connection closed since: the driver's
    ** finalize does not touch the (gone) connection. */
    c->pDb->pDrv->xFinalize(c->pStmt);
  }
  /* A cached statement of a closed connection was finalized with it. */
  quay__free(c->aHint);
  quay__free(c->aField);
  pDb = c->pDb;
  quay__free(c);
  quay__db_release(pDb);
}
/* }================================================================== */


/*
** {==================================================================
** Transactions
** ===================================================================
*/
/*
** Levels.  Level k (0 the outermost) is opened at depth k.  Level 0 is
** BEGIN, unless the connection is inside a transaction Quay did not open
** (a host's BEGIN on a shared handle, a raw BEGIN through
** quay_db_execute): then it is SAVEPOINT quay_sp_0 inside it (bHostTxn),
** so that the host's COMMIT or ROLLBACK decides, and Quay's rollback
** undoes only its own work.  Levels k > 0 are SAVEPOINT quay_sp_<k>.
**
** The transaction may end under open levels:
**   TXN_GONE_ERROR    a failed statement made the server roll it back
**                     (after_fail notices);
**   TXN_GONE_OUTSIDE  a COMMIT or ROLLBACK that Quay did not send (the
**                     host's own SQL on the shared handle, or raw SQL):
**                     noticed when Quay next opens or ends a level, by
**                     the connection being out of its transaction or by
**                     Quay's savepoint being gone;
**   TXN_GONE_CLOSED   the connection was closed (quay_db_disconnect, also
**                     by quay_db_reopen) from user code that runs inside
**                     a call (a db:transaction body, a hook, on_query),
**                     or lost (after_fail):
**                     closing rolled the transaction back; until every
**                     level is ended no statement is sent, also on a
**                     connection reopened meanwhile, so the rest of the
**                     call cannot go in one statement at a time.
** From then on every level still open fails as it is ended, so nothing
** that the transaction wrote is ever reported committed: rollback of a
** level of TXN_GONE_ERROR or TXN_GONE_CLOSED succeeds (it was rolled
** back), every other
** end fails, TXN_GONE_OUTSIDE with QUAY_EMISUSE naming what happened
** (its writes were committed, or rolled back, by that statement, and the
** writes after it went in one by one, committed at once).
*/
static int level_is_savepoint(const quay_db *pDb, int iLevel) {
  return iLevel > 0 || pDb->bHostTxn;
}

/* The failure of ending (or opening) a level in a transaction gone. */
static int txn_gone_err(quay_db *pDb, quay_err *pErr) {
  if (pDb->eTxnGone == TXN_GONE_CLOSED) return closed_txn_err(pErr);
  if (pDb->eTxnGone == TXN_GONE_ERROR) {
    return quay__err(pErr, QUAY_ESQL,
                     "the database rolled this transaction back after a "
                     "statement in it failed; nothing of it was committed "
                     "(run it again)");
  }
  return quay__err(pErr, QUAY_EMISUSE,
                   "the transaction was ended outside Quay: a COMMIT or "
                   "ROLLBACK went through the shared connection (the "
                   "host's own SQL, or db:execute) while a db:transaction "
                   "level was open, so that statement decided its writes "
                   "and later ones were committed one by one; end Quay's "
                   "levels only through db:transaction");
}

/*
** Before Quay opens or ends a level inside open levels: is the
** transaction they live in still there?  Returns QUAY_OK, or marks it
** gone and returns txn_gone_err.
*/
static int txn_check(quay_db *pDb, quay_err *pErr) {
  if (pDb->txnDepth == 0) return QUAY_OK;
  if (pDb->eTxnGone == TXN_GONE_NONE && !conn_in_txn(pDb)) {
    pDb->eTxnGone = TXN_GONE_OUTSIDE;
  }
  return pDb->eTxnGone ? txn_gone_err(pDb, pErr) : QUAY_OK;
}

/*
** A savepoint statement of Quay's failed on a live connection: when the
** savepoint is not there (the host released it, or committed and began
** again), the transaction the levels lived in is gone.  Returns rc, or
** the txn_gone_err of that.
*/
static int savepoint_failed(quay_db *pDb, int rc, quay_err *pErr) {
  if (pDb->aSrv[0].pConn == NULL || pErr == NULL) return rc;
  if (strstr(pErr->zMsg, "no such savepoint") != NULL ||
      strcmp(pErr->zState, "3B001") == 0) {
    if (pDb->eTxnGone == TXN_GONE_NONE) pDb->eTxnGone = TXN_GONE_OUTSIDE;
  }
  if (pDb->eTxnGone == TXN_GONE_NONE && !conn_in_txn(pDb)) {
    pDb->eTxnGone = TXN_GONE_OUTSIDE;
  }
  return pDb->eTxnGone ? txn_gone_err(pDb, pErr) : rc;
}

static int txn_open(quay_db *pDb, const char *zBegin, quay_err *pErr) {
  int rc;
  char zSql[64];
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  if (pDb->txnDepth == 0) {
    pDb->eTxnGone = TXN_GONE_NONE;
    pDb->bHostTxn = conn_in_txn(pDb);
    pDb->bTxnWrote = 0;
  } else if ((rc = txn_check(pDb, pErr)) != QUAY_OK) {
    /* A SAVEPOINT now would start a new transaction of its own. */
    return rc;
  }
  if (level_is_savepoint(pDb, pDb->txnDepth)) {
    snprintf(zSql, sizeof(zSql), "SAVEPOINT quay_sp_%d", pDb->txnDepth);
    rc = quay__db_simple(pDb, zSql, pErr);
  } else {
    rc = quay__db_simple(pDb, zBegin, pErr);
  }
  if (rc == QUAY_OK) pDb->txnDepth++;
  else if (pDb->txnDepth == 0) pDb->bHostTxn = 0;
  return rc;
}

int quay_db_begin(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_begin: %s is NULL", "pDb");
  }
  return txn_open(pDb, pDb->pDialect->zBegin, pErr);
}

int quay_db_begin_opts(quay_db *pDb, const quay_txn_opts *pOpts,
                       quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_begin_opts: %s is NULL",
        "pDb");
  }
  const Dialect *d = pDb->pDialect;
  Str s;
  int rc;
  if (pOpts == NULL ||
      (pOpts->eIsolation == QUAY_ISO_DEFAULT && !pOpts->bReadOnly)) {
    return quay_db_begin(pDb, pErr);
  }
  if (pDb->txnDepth > 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "transaction options (isolation, readonly) apply to the "
                     "outermost db:transaction only; this one is nested "
                     "(a savepoint), so give them to the outer call");
  }
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  if (conn_in_txn(pDb)) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "transaction options (isolation, readonly) cannot "
                     "apply: the connection is inside a transaction Quay "
                     "did not open (the host's BEGIN on the shared "
                     "connection, or raw SQL), and this level is a "
                     "savepoint in it; set them on that BEGIN instead");
  }
  quay__str_init(&s);
  rc = d->xBeginSql(&s, pOpts->eIsolation, pOpts->bReadOnly, pErr);
  if (rc == QUAY_OK && s.oom) rc = quay__oom(pErr);
  if (rc == QUAY_OK) rc = txn_open(pDb, s.z, pErr);
  quay__str_free(&s);
  if (rc) return rc;
  if (pOpts->bReadOnly) {
    pDb->bTxnReadOnly = 1;
    if (d->zReadOnlyOn) {
      rc = quay__db_simple(pDb, d->zReadOnlyOn, pErr);
      if (rc) quay__txn_rollback(pDb);
    }
  }
  return rc;
}

int quay_db_txn_readonly(const quay_db *pDb) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return 0;
  }
  return pDb->txnDepth > 0 && pDb->bTxnReadOnly;
}

/*
** A bulk insert's transaction ended (or its connection is closing): the
** writer forgets its checks, and the connection's foreign-key enforcement,
** suspended for it, is on again (xFkEnforce cannot fail).
*/
static void bulk_ended(quay_db *pDb) {
  DrvConn *c = pDb->aSrv ? pDb->aSrv[0].pConn : NULL;
  if (pDb->pBulkW) {
    quay__writer_bulk_end(pDb->pBulkW);
    pDb->pBulkW = NULL;
  }
  if (pDb->bFkOff) {
    pDb->bFkOff = 0;
    if (c && pDb->pDrv->iVersion >= 5 && pDb->pDrv->xFkEnforce) {
      pDb->pDrv->xFkEnforce(c, 1);
    }
  }
}

/*
** The outermost level ended (committed, rolled back or lost): undo what
** a read-only BEGIN set on the connection.  Failures are ignored: the
** caller reports its own outcome, and a lost connection takes the
** setting with it.
*/
static void txn_ended(quay_db *pDb) {
  bulk_ended(pDb);
  if (pDb->bTxnReadOnly) {
    pDb->bTxnReadOnly = 0;
    if (pDb->pDialect->zReadOnlyOff && pDb->aSrv[0].pConn &&
        pDb->pDrv->xAlive(pDb->aSrv[0].pConn) &&
        pDb->eTxnGone == TXN_GONE_NONE) {
      pDb->pDrv->xSimple(pDb->aSrv[0].pConn, pDb->pDialect->zReadOnlyOff,
                         NULL);
    }
  }
  pDb->bHostTxn = 0;
  pDb->eTxnGone = TXN_GONE_NONE;
}

/* Drop the innermost level without a statement (its transaction is
** gone); the end of the outermost one resets the transaction state. */
static void level_drop(quay_db *pDb) {
  if (pDb->txnDepth > 0 && --pDb->txnDepth == 0) txn_ended(pDb);
}

int quay__txn_begin(quay_db *pDb, int bWrite, quay_err *pErr) {
  return txn_open(pDb, bWrite ? pDb->pDialect->zBeginWrite
                              : pDb->pDialect->zBegin, pErr);
}

int quay_db_rollback(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_rollback: %s is NULL",
        "pDb");
  }
  int rc, iLevel;
  char zSql[96];
  if (pDb->txnDepth == 0) {
    return quay__err(pErr, QUAY_EMISUSE, "no transaction to roll back");
  }
  if (pDb->eTxnGone == TXN_GONE_CLOSED) {
    level_drop(pDb);                  /* closing rolled it back */
    return QUAY_OK;
  }
  rc = quay__db_check_open(pDb, pErr);
  if (rc) {
    bulk_ended(pDb);
    pDb->txnDepth = 0;
    pDb->bTxnReadOnly = 0;
    pDb->bHostTxn = 0;
    pDb->eTxnGone = TXN_GONE_NONE;
    return rc;
  }
  rc = txn_check(pDb, pErr);
  if (rc) {
    /* Rolled back already, by the server after a failure: done. */
    if (pDb->eTxnGone == TXN_GONE_ERROR) rc = QUAY_OK;
    level_drop(pDb);
    return rc;
  }
  iLevel = --pDb->txnDepth;
  if (!level_is_savepoint(pDb, iLevel)) {
    rc = quay__db_simple(pDb, "ROLLBACK", pErr);
    txn_ended(pDb);
    return rc;
  }
  snprintf(zSql, sizeof(zSql), "ROLLBACK TO SAVEPOINT quay_sp_%d", iLevel);
  rc = quay__db_simple(pDb, zSql, pErr);
  snprintf(zSql, sizeof(zSql), "RELEASE SAVEPOINT quay_sp_%d", iLevel);
  if (rc == QUAY_OK) rc = quay__db_simple(pDb, zSql, pErr);
  if (rc) rc = savepoint_failed(pDb, rc, pErr);
  if (pDb->txnDepth == 0) txn_ended(pDb);
  return rc;
}

/* Commit the innermost level; on failure that level is rolled back. */
int quay_db_commit(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_commit: %s is NULL", "pDb");
  }
  int rc, iLevel;
  char zSql[64];
  if (pDb->txnDepth == 0) {
    return quay__err(pErr, QUAY_EMISUSE, "no transaction to commit");
  }
  if (pDb->eTxnGone == TXN_GONE_CLOSED) {
    rc = closed_txn_err(pErr);        /* never reported committed */
    level_drop(pDb);
    return rc;
  }
  rc = quay__db_check_open(pDb, pErr);
  if (rc) {
    bulk_ended(pDb);
    pDb->txnDepth = 0;
    pDb->bTxnReadOnly = 0;
    pDb->bHostTxn = 0;
    pDb->eTxnGone = TXN_GONE_NONE;
    return rc;
  }
  rc = txn_check(pDb, pErr);
  if (rc) {
    level_drop(pDb);
    return rc;
  }
  iLevel = pDb->txnDepth - 1;
  if (!level_is_savepoint(pDb, iLevel)) {
    rc = QUAY_OK;
    if (pDb->pBulkW) rc = quay__writer_bulk_check(pDb->pBulkW, pErr);
    if (rc == QUAY_OK) rc = quay__db_simple(pDb, "COMMIT", pErr);
  } else {
    snprintf(zSql, sizeof(zSql), "RELEASE SAVEPOINT quay_sp_%d", iLevel);
    rc = quay__db_simple(pDb, zSql, pErr);
    if (rc) rc = savepoint_failed(pDb, rc, pErr);
  }
  if (rc == QUAY_OK) {
    level_drop(pDb);
    return QUAY_OK;
  }
  if (pDb->eTxnGone != TXN_GONE_NONE) {
    level_drop(pDb);
  } else if (pDb->txnDepth > 0) {
    quay__txn_rollback(pDb);
  }
  return rc;
}

int quay__txn_commit(quay_db *pDb, quay_err *pErr) {
  return quay_db_commit(pDb, pErr);
}

/* Roll back the innermost level, keeping the caller's error. */
void quay__txn_rollback(quay_db *pDb) {
  quay_err e;
  quay_err_clear(&e);
  if (pDb->txnDepth > 0) quay_db_rollback(pDb, &e);
}

/* End a level opened by quay__txn_begin: commit when rc is QUAY_OK, roll
** back otherwise; the result is rc or the commit's failure. */
int quay__txn_end(quay_db *pDb, int rc, quay_err *pErr) {
  if (rc == QUAY_OK) return quay__txn_commit(pDb, pErr);
  quay__txn_rollback(pDb);
  return rc;
}

int quay_db_txn_depth(const quay_db *pDb) {
  return pDb ? pDb->txnDepth : 0;
}
/* }================================================================== */


/*
** {==================================================================
** Raw SQL
** ===================================================================
*/
/*
** Raw SQL text in the backend's placeholder form (caller frees).  When the
** dialect rewrites `?` placeholders, their count must match nParam (a
** text without any `?` is left to the server: it may use $n itself);
** SQLite checks the count when it binds.
*/
static int raw_sql(quay_db *pDb, const char *zSql, int nParam, char **pz,
                   quay_err *pErr) {
  *pz = NULL;
  if (zSql == NULL) return quay__err(pErr, QUAY_EMISUSE, "SQL text is NULL");
  if (pDb->pDialect->xRawSql) {
    Str s;
    int n = 0;
    quay__str_init(&s);
    pDb->pDialect->xRawSql(&s, zSql, &n);
    if (!s.oom && n > 0 && n != nParam) {
      quay__str_free(&s);
      return quay__err(pErr, QUAY_ESQL,
                       "statement expects %d parameters, %d given (one per "
                       "? placeholder)", n, nParam);
    }
    *pz = quay__str_take(&s);
  } else {
    *pz = quay__strdup(zSql);
  }
  return *pz ? QUAY_OK : quay__oom(pErr);
}

int quay_db_execute(quay_db *pDb, const char *zSql, const quay_value *aParam,
                    int nParam, int64_t *pnChanged, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || zSql == NULL || (aParam == NULL && nParam > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_execute: %s is NULL", pDb ==
        NULL ? "pDb" : zSql == NULL ? "zSql" : "aParam");
  }
  if (nParam < 0) {
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_db_execute: nParam is %d, not a count", nParam);
  }
  if (quay__values_check(pErr, "quay_db_execute", aParam, (size_t)nParam)) {
    return QUAY_EMISUSE;
  }
  char *z;
  int rc = quay__db_check_open(pDb, pErr);
  if (pnChanged) *pnChanged = 0;
  if (rc == QUAY_OK) rc = raw_sql(pDb, zSql, nParam, &z, pErr);
  if (rc) return rc;
  rc = quay__db_run(pDb, z, aParam, nParam, NULL, 0, 0, NULL, pnChanged, pErr);
  quay__free(z);
  return rc;
}

int quay_db_query(quay_db *pDb, const char *zSql, const quay_value *aParam,
                  int nParam, quay_cursor **ppCur, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || zSql == NULL || (aParam == NULL && nParam > 0) || ppCur
      == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_query: %s is NULL", pDb ==
        NULL ? "pDb" : zSql == NULL ? "zSql" : (aParam == NULL && nParam > 0)
            ? "aParam" : "ppCur");
  }
  if (nParam < 0) {
    *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
                     "quay_db_query: nParam is %d, not a count", nParam);
  }
  if (quay__values_check(pErr, "quay_db_query", aParam, (size_t)nParam)) {
    *ppCur = NULL;
    return QUAY_EMISUSE;
  }
  char *z;
  int rc = quay__db_check_open(pDb, pErr);
  *ppCur = NULL;
  if (rc == QUAY_OK) rc = raw_sql(pDb, zSql, nParam, &z, pErr);
  if (rc) return rc;
  rc = quay__db_run(pDb, z, aParam, nParam, NULL, 0, 0, ppCur, NULL, pErr);
  quay__free(z);
  if (rc == QUAY_OK) {
    /* Step once now: the columns are final only after the first step
    ** (cursor_reshape), and the caller reads their names first. */
    rc = quay_cursor_step(*ppCur, pErr);
    if (rc == QUAY_ROW || rc == QUAY_DONE) {
      (*ppCur)->ePending = rc;
      rc = QUAY_OK;
    } else {
      quay_cursor_close(*ppCur);
      *ppCur = NULL;
    }
  }
  return rc;
}
/* }================================================================== */
