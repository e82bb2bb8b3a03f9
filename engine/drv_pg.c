/*
** engine/drv_pg.c
** The PostgreSQL driver (libpq).  Placeholder until the libpq driver
** lands (issue 6): opening fails with a clear `connection` error.
** See LICENSE
*/
#include "quayInt.h"

static int pg_open(const char *zUrl, const quay_open_opts *pOpts,
                   void *pHandle, DrvConn **ppConn, quay_err *pErr) {
  (void)pOpts;
  (void)pHandle;
  *ppConn = NULL;
  return quay__err(pErr, QUAY_ECONNECTION,
                   "cannot open '%s': this build has no PostgreSQL driver",
                   zUrl);
}

static void pg_close(DrvConn *c) { (void)c; }
static int pg_prepare(DrvConn *c, const char *z, int n, int b, DrvStmt **pp,
                      quay_err *e) {
  (void)c; (void)z; (void)n; (void)b;
  *pp = NULL;
  return quay__err(e, QUAY_ECONNECTION, "no PostgreSQL driver");
}
static void pg_finalize(DrvStmt *s) { (void)s; }
static int pg_exec(DrvStmt *s, const quay_value *a, int n, int b,
                   quay_err *e) {
  (void)s; (void)a; (void)n; (void)b;
  return quay__err(e, QUAY_ECONNECTION, "no PostgreSQL driver");
}
static int pg_step(DrvStmt *s, quay_err *e) {
  (void)s;
  return quay__err(e, QUAY_ECONNECTION, "no PostgreSQL driver");
}
static int pg_ncol(DrvStmt *s) { (void)s; return 0; }
static const char *pg_colname(DrvStmt *s, int i) { (void)s; (void)i; return ""; }
static void pg_column(DrvStmt *s, int i, int h, quay_value *p) {
  (void)s; (void)i; (void)h;
  p->type = QUAY_NULL;
}
static void pg_reset(DrvStmt *s) { (void)s; }
static int64_t pg_changes(DrvStmt *s) { (void)s; return 0; }
static int pg_simple(DrvConn *c, const char *z, quay_err *e) {
  (void)c; (void)z;
  return quay__err(e, QUAY_ECONNECTION, "no PostgreSQL driver");
}
static int pg_alive(DrvConn *c) { (void)c; return 0; }

const quay_driver quay__drv_pg = {
  1, "postgresql", &quay__dialect_pg,
  pg_open, pg_close, pg_prepare, pg_finalize, pg_exec, pg_step,
  pg_ncol, pg_colname, pg_column, pg_reset, pg_changes, pg_simple, pg_alive
};
