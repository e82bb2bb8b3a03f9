/*
** engine/test/t_migrate.c
** Schema evolution through the C API alone (include/quay.h "Schema
** evolution"): what another binding would call.
** See LICENSE
*/
#include "tharness.h"

/* Version 1: raw SQL.  Version 2: a model that renames, adds and drops. */
static int declare_v2(quay_db *db, quay_err *e) {
  quay_model *m = NULL;
  quay_field_spec s;
  int rc = quay_model_new(db, "Note", NULL, NULL, &m, e);
  if (rc) return rc;
  memset(&s, 0, sizeof(s));
  s.zName = "text";
  s.eType = QUAY_T_TEXT;
  s.rSeq = 1;
  s.zRenamedFrom = "body";
  rc = quay_model_add_field(m, &s, e);
  if (rc) return rc;
  memset(&s, 0, sizeof(s));
  s.zName = "stars";
  s.eType = QUAY_T_INTEGER;
  s.mFlags = QUAY_F_DEFAULT | QUAY_F_INDEX;
  s.dflt.type = QUAY_INT;
  s.dflt.u.i = 0;
  s.rSeq = 2;
  rc = quay_model_add_field(m, &s, e);
  if (rc) return rc;
  return quay_model_finish(m, e);
}

static int v1(quay_db *db, quay_err *e) {
  int rc = quay_db_execute(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, "
                           "body TEXT NOT NULL, extra TEXT)", NULL, 0, NULL,
                           e);
  if (rc == QUAY_OK) {
    rc = quay_db_execute(db, "INSERT INTO notes (body, extra) VALUES "
                         "('kept', 'x')", NULL, 0, NULL, e);
  }
  return rc;
}

TEST(migrate_api) {
  quay_db *db;
  quay_err e;
  quay_schema *s;
  quay_migration *p;
  quay_table_info t;
  quay_column_info c;
  quay_step_info st;
  int i, nRename = 0, nAdd = 0, nDrop = 0, nIndex = 0;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(v1(db, &e), e);
  ASSERT_OK(quay_db_inspect(db, &s, &e), e);
  ASSERT_EQ(quay_schema_table_count(s), 1);
  ASSERT_OK(quay_schema_table(s, 0, &t), e);
  ASSERT_STR_EQ(t.zName, "notes");
  ASSERT_EQ(t.nColumn, 3);
  ASSERT_OK(quay_schema_column(s, 0, 0, &c), e);
  ASSERT_EQ(c.iPk, 1);
  ASSERT(c.bAuto);
  ASSERT_EQ(quay_schema_model_count(s), 1);
  quay_schema_free(s);
  ASSERT_OK(declare_v2(db, &e), e);
  ASSERT_CODE(quay_db_create_tables(db, &e), QUAY_EMIGRATION);
  ASSERT_CONTAINS(e.zMsg, "db:migrate()");
  ASSERT_OK(quay_db_schema_diff(db, &p, &e), e);
  for (i = 0; i < quay_migration_count(p); i++) {
    ASSERT_OK(quay_migration_step(p, i, &st), e);
    ASSERT_STR_EQ(st.zTable, "notes");
    nRename += st.eOp == QUAY_OP_RENAME_COLUMN;
    nAdd += st.eOp == QUAY_OP_ADD_COLUMN;
    nDrop += st.eOp == QUAY_OP_DROP_COLUMN && st.bDestructive;
    nIndex += st.eOp == QUAY_OP_CREATE_INDEX;
    ASSERT(st.nSql >= 1 && quay_migration_sql(p, i, 0) != NULL);
  }
  quay_migration_free(p);
  ASSERT_EQ(nRename, 1);
  ASSERT_EQ(nAdd, 1);
  ASSERT_EQ(nDrop, 1);
  ASSERT_EQ(nIndex, 1);
  ASSERT_CODE(quay_db_migrate(db, 0, NULL, &e), QUAY_EMIGRATION);
  ASSERT_CONTAINS(e.zMsg, "extra");
  ASSERT_OK(quay_db_migrate(db, QUAY_MIGRATE_ALLOW_DROP, &p, &e), e);
  ASSERT_EQ(quay_migration_count(p), 4);
  quay_migration_free(p);
  ASSERT_OK(quay_db_schema_diff(db, &p, &e), e);
  ASSERT_EQ(quay_migration_count(p), 0);
  quay_migration_free(p);
  {
    int64_t n = 0;
    quay_cursor *cur;
    ASSERT_OK(quay_db_query(db, "SELECT count(*) FROM notes WHERE text = "
                            "'kept' AND stars = 0", NULL, 0, &cur, &e), e);
    ASSERT_EQ(quay_cursor_step(cur, &e), QUAY_ROW);
    {
      quay_value v;
      quay_cursor_value(cur, 0, &v);
      n = v.u.i;
    }
    quay_cursor_close(cur);
    ASSERT_EQ(n, 1);
  }
  ASSERT_STR_EQ(quay_op_name(QUAY_OP_ALTER_COLUMN), "alter_column");
  ASSERT_EQ(quay_op_code("drop_index"), QUAY_OP_DROP_INDEX);
  quay_db_free(db);
  return 0;
}

#ifdef QUAY_TEST
/* The OOM sweep of t_crud.c over a migration: inspect, diff, rebuild. */
static int mig_scenario(quay_err *e) {
  quay_db *db = NULL;
  quay_migration *p = NULL;
  quay_schema *s = NULL;
  int rc = quay_db_open("sqlite::memory:", NULL, &db, e);
  if (!rc) rc = v1(db, e);
  if (!rc) rc = declare_v2(db, e);
  if (!rc) rc = quay_db_inspect(db, &s, e);
  if (!rc) rc = quay_db_migrate(db, QUAY_MIGRATE_ALLOW_DROP, &p, e);
  quay_migration_free(p);
  quay_schema_free(s);
  quay_db_free(db);
  return rc;
}

TEST(migrate_oom_sweep) {
  quay_err e;
  long k, base = quay_test_alloc_live();
  int nFail = 0;
  for (k = 1; k < 100000; k++) {
    int rc;
    quay_test_fail_alloc(k, 1);
    rc = mig_scenario(&e);
    quay_test_fail_alloc(0, 0);
    ASSERT_EQ(quay_test_alloc_live(), base);
    if (rc == QUAY_OK) break;
    if (rc != QUAY_ENOMEM) FAIL("k=%ld: %s (%s)", k, quay_errname(rc), e.zMsg);
    nFail++;
  }
  ASSERT(nFail > 50);
  printf("migrate oom sweep: %d failure points walked\n", nFail);
  return 0;
}
#endif
