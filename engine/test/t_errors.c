/*
** engine/test/t_errors.c
** Errors and connection settings seen through the C API: what a host that
** wraps its own SQLite handle gets.
** See LICENSE
*/
#include "tharness.h"

#include <sqlite3.h>

/*
** A wrapped host handle runs with double-quoted string literals off, as
** connections Quay opens do: "no_such_column" is an error, not a string.
*/
TEST(wrapped_no_dqs) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_cursor *c = NULL;
  quay_err e;
  int rc, v = -1;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE t (a)", NULL, NULL, NULL),
            SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  ASSERT_EQ(sqlite3_db_config(h, SQLITE_DBCONFIG_DQS_DML, -1, &v),
            SQLITE_OK);
  ASSERT_EQ(v, 0);
  v = -1;
  ASSERT_EQ(sqlite3_db_config(h, SQLITE_DBCONFIG_DQS_DDL, -1, &v),
            SQLITE_OK);
  ASSERT_EQ(v, 0);
  rc = quay_db_query(db, "SELECT \"no_such_column\" FROM t", NULL, 0, &c, &e);
  ASSERT_EQ(rc, QUAY_ESQL);
  ASSERT(c == NULL);
  ASSERT_CONTAINS(e.zMsg, "no_such_column");
  rc = quay_db_execute(db, "CREATE INDEX ix ON t (\"nope\")", NULL, 0, NULL,
                       &e);
  ASSERT_EQ(rc, QUAY_ESQL);
  quay_db_free(db);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

/*
** The URL forms quay_url_check (and quay_db_open) accept, each with the
** backend it picks; anything else is QUAY_ECONNECTION naming the forms.
*/
TEST(url_schemes) {
  static const struct { const char *zUrl; const char *zBackend; } aOk[] = {
    { "sqlite::memory:", "sqlite" },
    { "sqlite:/tmp/quay-url-test.db", "sqlite" },
    { "sqlite:relative.db", "sqlite" },
    { "postgresql://app@localhost:5432/app", "postgresql" },
    { "postgres://localhost/app", "postgresql" },
    { "host=localhost dbname=app", "postgresql" },
  };
  static const char *const azBad[] = {
    "", "mysql://localhost/app", "app.db", "http://x/?a=b", "SQLITE::memory:",
  };
  int i;
  for (i = 0; i < (int)(sizeof(aOk) / sizeof(aOk[0])); i++) {
    const char *zBackend = NULL;
    quay_err e;
    ASSERT_OK(quay_url_check(aOk[i].zUrl, &zBackend, &e), e);
    ASSERT(zBackend != NULL && strcmp(zBackend, aOk[i].zBackend) == 0);
  }
  for (i = 0; i < (int)(sizeof(azBad) / sizeof(azBad[0])); i++) {
    const char *zBackend = "x";
    quay_err e;
    ASSERT_EQ(quay_url_check(azBad[i], &zBackend, &e), QUAY_ECONNECTION);
    ASSERT(zBackend == NULL);
    ASSERT_CONTAINS(e.zMsg, "sqlite::memory:");
  }
  return 0;
}
