/*
** engine/test/t_embed.c
** Embedding through the C API (issue 17): a host's own transactions on a
** shared SQLite handle, transactions ended behind Quay's back, foreign
** keys on a wrapped handle, freeing a db before its children, error
** detail and names, and the by-name conveniences of engine/capi.c.
** See LICENSE
*/
#include "tharness.h"

#include <sqlite3.h>

/* One integer from SQL on the host's handle, or -1. */
static long long host_int(sqlite3 *h, const char *zSql) {
  sqlite3_stmt *p = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(h, zSql, -1, &p, NULL) == SQLITE_OK &&
      sqlite3_step(p) == SQLITE_ROW) {
    n = sqlite3_column_int64(p, 0);
  }
  sqlite3_finalize(p);
  return n;
}

/* A model Note(text) and Tag(name, note -> Note CASCADE) on db. */
static int declare_notes(quay_db *db, quay_model **ppNote, quay_err *e) {
  static const quay_field_spec aNote[] = {
    {.zName = "text", .eType = QUAY_T_STRING}};
  static const quay_field_spec aTag[] = {
    {.zName = "name", .eType = QUAY_T_STRING}};
  static const quay_rel_spec aTagRel[] = {
    {.zName = "note", .eKind = QUAY_R_BELONGS_TO, .zTarget = "Note",
     .zRelatedName = "tags", .eOnDelete = QUAY_CASCADE}};
  quay_model *pTag;
  int rc = quay_model_declare(db, "Note", aNote, 1, NULL, 0, ppNote, e);
  if (rc == QUAY_OK) {
    rc = quay_model_declare(db, "Tag", aTag, 1, aTagRel, 1, &pTag, e);
  }
  return rc;
}

/*
** The host's BEGIN, then Quay's transactions, multi-statement writes and
** DDL inside it: savepoints, so the host's ROLLBACK undoes all of it and
** its COMMIT keeps it.  Before issue 17 every one of them failed with
** "cannot start a transaction within a transaction".
*/
TEST(host_transaction) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_model *pNote;
  quay_err e;
  quay_value k;
  quay_counts *pCounts = NULL;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  ASSERT_OK(declare_notes(db, &pNote, &e), e);

  /* DDL, a transaction and a cascade inside the host's; rolled back. */
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_EQ(quay_db_txn_depth(db), 1);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO notes (text) VALUES ('a')", NULL,
                            0, NULL, &e), e);
  ASSERT_OK(quay_db_begin(db, &e), e);             /* nested: savepoint 1 */
  ASSERT_OK(quay_db_execute(db, "INSERT INTO tags (name, note_id) "
                            "VALUES ('t', 1)", NULL, 0, NULL, &e), e);
  ASSERT_OK(quay_db_rollback(db, &e), e);          /* only the tag goes */
  ASSERT_OK(quay_db_commit(db, &e), e);
  ASSERT_EQ(quay_db_txn_depth(db), 0);
  ASSERT_EQ(sqlite3_get_autocommit(h), 0);         /* the host's is open */
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM notes"), 1);
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM tags"), 0);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO tags (name, note_id) "
                            "VALUES ('u', 1)", NULL, 0, NULL, &e), e);
  k = quay_value_int(1);
  ASSERT_OK(quay_delete_keys(db, pNote, &k, 1, 0, &pCounts, &e), e);
  ASSERT_EQ(quay_counts_n(pCounts), 2);            /* Note and Tag */
  quay_counts_free(pCounts);
  ASSERT_EQ(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM notes"), -1);   /* no table */

  /* The same, committed by the host: everything stays. */
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO notes (text) VALUES ('b')", NULL,
                            0, NULL, &e), e);
  ASSERT_OK(quay_db_commit(db, &e), e);
  ASSERT_EQ(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM notes"), 1);

  /* Options cannot apply to a savepoint in the host's transaction. */
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  {
    quay_txn_opts o = {QUAY_ISO_DEFAULT, 1};
    ASSERT_CODE(quay_db_begin_opts(db, &o, &e), QUAY_EMISUSE);
    ASSERT_CONTAINS(e.zMsg, "did not open");
    ASSERT_EQ(quay_db_txn_depth(db), 0);
  }
  /* Disconnecting inside a Quay level in the host's transaction rolls
  ** back Quay's level only. */
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO notes (text) VALUES ('c')", NULL,
                            0, NULL, &e), e);
  quay_db_free(db);
  ASSERT_EQ(sqlite3_get_autocommit(h), 0);
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM notes"), 1);
  ASSERT_EQ(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

/*
** The host ends the transaction a Quay level lives in: ending the level
** says so (QUAY_EMISUSE), never success, and opens no new transaction.
*/
TEST(host_ends_transaction) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_err e;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE t (a)", NULL, NULL, NULL),
            SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);

  /* Quay's BEGIN; the host's COMMIT; Quay's rollback cannot happen. */
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO t VALUES (1)", NULL, 0, NULL,
                            &e), e);
  ASSERT_EQ(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_CODE(quay_db_rollback(db, &e), QUAY_EMISUSE);
  ASSERT_CONTAINS(e.zMsg, "ended outside Quay");
  ASSERT_EQ(quay_db_txn_depth(db), 0);
  ASSERT_EQ(host_int(h, "SELECT count(*) FROM t"), 1);

  /* Two levels; the host rolls back: both ends fail, no new level
  ** opens (a SAVEPOINT would start a transaction of its own). */
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_EQ(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_CODE(quay_db_begin(db, &e), QUAY_EMISUSE);
  ASSERT_EQ(sqlite3_get_autocommit(h), 1);
  ASSERT_CODE(quay_db_commit(db, &e), QUAY_EMISUSE);
  ASSERT_EQ(quay_db_txn_depth(db), 1);
  ASSERT_CODE(quay_db_commit(db, &e), QUAY_EMISUSE);
  ASSERT_EQ(quay_db_txn_depth(db), 0);

  /* In the host's transaction: the host rolls back and begins again, so
  ** the connection is in a transaction but Quay's savepoint is gone. */
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_EQ(sqlite3_exec(h, "ROLLBACK; BEGIN", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_CODE(quay_db_commit(db, &e), QUAY_EMISUSE);
  ASSERT_CONTAINS(e.zMsg, "ended outside Quay");
  ASSERT_EQ(quay_db_txn_depth(db), 0);
  ASSERT_EQ(sqlite3_get_autocommit(h), 0);          /* the host's own */
  ASSERT_EQ(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);

  /* A level ended as it should still works afterwards. */
  ASSERT_OK(quay_db_begin(db, &e), e);
  ASSERT_OK(quay_db_commit(db, &e), e);
  quay_db_free(db);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

static int interrupt_soon(void *p) {
  int *pn = p;
  return ++*pn > 2;
}

/*
** A failed statement made SQLite roll the transaction back (an
** interrupt inside an explicit transaction does): committing the level
** reports it (QUAY_ESQL), rolling it back succeeds; not QUAY_EMISUSE.
*/
TEST(transaction_lost_by_error) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_err e;
  int n = 0, i;
  static const char zBig[] =
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
    "WHERE i < 100000) INSERT INTO t SELECT i FROM c";
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE t (a)", NULL, NULL, NULL),
            SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  for (i = 0; i < 2; i++) {
    ASSERT_OK(quay_db_begin(db, &e), e);
    ASSERT_OK(quay_db_execute(db, "INSERT INTO t VALUES (1)", NULL, 0, NULL,
                              &e), e);
    n = 0;
    sqlite3_progress_handler(h, 1, interrupt_soon, &n);
    ASSERT(quay_db_execute(db, zBig, NULL, 0, NULL, &e) != QUAY_OK);
    sqlite3_progress_handler(h, 0, NULL, NULL);
    ASSERT_EQ(sqlite3_get_autocommit(h), 1);        /* rolled back */
    if (i == 0) {
      ASSERT_CODE(quay_db_commit(db, &e), QUAY_ESQL);
      ASSERT_CONTAINS(e.zMsg, "rolled this transaction back");
    } else {
      ASSERT_OK(quay_db_rollback(db, &e), e);
    }
    ASSERT_EQ(quay_db_txn_depth(db), 0);
    ASSERT_EQ(host_int(h, "SELECT count(*) FROM t"), 0);
  }
  quay_db_free(db);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

/*
** The connection closed under open levels (user code inside a call ran
** db:close(), or db:close() then db:reopen()): closing rolled the
** transaction back; until every level is ended each statement fails with
** QUAY_ECONNECTION, also on the reopened connection, each commit fails
** and each rollback succeeds; then the db works again.  Before, the
** levels were forgotten: a commit was QUAY_EMISUSE "no transaction to
** commit", and after a reopen the rest of the call ran in autocommit.
*/
TEST(transaction_closed_under_levels) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_err e;
  int i;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE t (a)", NULL, NULL, NULL),
            SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  for (i = 0; i < 2; i++) {               /* i == 1: reopened at once */
    ASSERT_OK(quay_db_begin(db, &e), e);
    ASSERT_OK(quay_db_begin(db, &e), e);
    ASSERT_OK(quay_db_execute(db, "INSERT INTO t VALUES (1)", NULL, 0, NULL,
                              &e), e);
    quay_db_disconnect(db);
    ASSERT_EQ(sqlite3_get_autocommit(h), 1);        /* rolled back */
    if (i == 1) ASSERT_OK(quay_db_reopen(db, &e), e);
    ASSERT_CODE(quay_db_execute(db, "INSERT INTO t VALUES (2)", NULL, 0,
                                NULL, &e), QUAY_ECONNECTION);
    ASSERT_CODE(quay_db_begin(db, &e), QUAY_ECONNECTION);
    ASSERT_EQ(quay_db_txn_depth(db), 2);
    if (i == 0) {
      ASSERT_CODE(quay_db_commit(db, &e), QUAY_ECONNECTION);
      ASSERT_CONTAINS(e.zMsg, "closed");
      ASSERT_CODE(quay_db_commit(db, &e), QUAY_ECONNECTION);
      ASSERT_OK(quay_db_reopen(db, &e), e);
    } else {
      ASSERT_OK(quay_db_rollback(db, &e), e);
      ASSERT_CODE(quay_db_commit(db, &e), QUAY_ECONNECTION);
    }
    ASSERT_EQ(quay_db_txn_depth(db), 0);
    ASSERT_EQ(host_int(h, "SELECT count(*) FROM t"), 0);
    ASSERT_OK(quay_db_begin(db, &e), e);
    ASSERT_OK(quay_db_execute(db, "INSERT INTO t VALUES (3)", NULL, 0, NULL,
                              &e), e);
    ASSERT_OK(quay_db_commit(db, &e), e);
    ASSERT_EQ(host_int(h, "SELECT count(*) FROM t"), 1);
    ASSERT_OK(quay_db_execute(db, "DELETE FROM t", NULL, 0, NULL, &e), e);
  }
  quay_db_free(db);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

/*
** PRAGMA foreign_keys does nothing inside a transaction: wrapping a
** handle there is refused, and the pragma is read back.
*/
TEST(wrap_in_transaction) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_err e;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_CODE(quay_db_wrap_sqlite(h, NULL, &db, &e), QUAY_EMISUSE);
  ASSERT(db == NULL);
  ASSERT_CONTAINS(e.zMsg, "inside a transaction");
  ASSERT_EQ(host_int(h, "PRAGMA foreign_keys"), 0);
  ASSERT_EQ(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  ASSERT_EQ(host_int(h, "PRAGMA foreign_keys"), 1);
  /* Once on, they stay on: wrapping again inside a transaction works. */
  ASSERT_EQ(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  {
    quay_db *db2 = NULL;
    ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db2, &e), e);
    quay_db_free(db2);
  }
  ASSERT_EQ(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  quay_db_free(db);
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);
  return 0;
}

/*
** quay_db_free before the objects made from the db: they keep it alive
** (SQLite's sqlite3_close_v2 model), their calls fail with QUAY_EMISUSE,
** and freeing them afterwards, in any order, is safe (ASan and valgrind
** runs of this test: before issue 17, invalid reads in
** quay_cursor_close and quay_writer_free).
*/
TEST(free_before_children) {
  sqlite3 *h = NULL;
  quay_db *db = NULL;
  quay_model *pNote;
  quay_cursor *pCur = NULL;
  quay_writer *pW = NULL;
  quay_qs *pQs = NULL, *pLoaded = NULL;
  quay_plan *pPlan = NULL;
  quay_load *pLoad = NULL;
  quay_result *pRes = NULL;
  quay_migration *pMig = NULL;
  quay_err e;
  int64_t n = 0;
  ASSERT_EQ(sqlite3_open(":memory:", &h), SQLITE_OK);
  ASSERT_OK(quay_db_wrap_sqlite(h, NULL, &db, &e), e);
  ASSERT_OK(declare_notes(db, &pNote, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_db_execute(db, "INSERT INTO notes (text) VALUES ('a'), "
                            "('b')", NULL, 0, NULL, &e), e);
  ASSERT_OK(quay_db_query(db, "SELECT text FROM notes", NULL, 0, &pCur, &e),
            e);
  ASSERT_OK(quay_writer_new(db, pNote, &pW, &e), e);
  ASSERT_OK(quay_qs_new(pNote, &pQs, &e), e);
  ASSERT_OK(quay_qs_load(pQs, "tags", QUAY_LOAD_BATCH, NULL, NULL, &pLoaded,
                         &e), e);
  ASSERT_OK(quay_plan_new(pLoaded, &pPlan, &e), e);
  ASSERT_OK(quay_load_open(pPlan, db, 0, &pLoad, &e), e);
  ASSERT_OK(quay_qs_fetch(pLoaded, db, &pRes, &e), e);
  ASSERT_EQ(quay_result_count(pRes), 2);
  ASSERT_OK(quay_migration_new(db, &pMig, &e), e);
  quay_qs_free(pLoaded);               /* pPlan keeps its set */
  pLoaded = NULL;

  quay_db_free(db);                    /* closes the connection now */
  ASSERT_EQ(sqlite3_get_autocommit(h), 1);
  ASSERT_CODE(quay_cursor_step(pCur, &e), QUAY_EMISUSE);
  ASSERT_CONTAINS(e.zMsg, "quay_db_free");
  ASSERT_OK(quay_writer_put(pW, "text", quay_value_text("c"), &e), e);
  ASSERT_CODE(quay_writer_insert(pW, &e), QUAY_EMISUSE);
  ASSERT_CODE(quay_qs_count(pQs, db, &n, &e), QUAY_EMISUSE);
  /* The records already fetched stay readable until the result goes. */
  ASSERT_STR_EQ(quay_rec_text(quay_result_rec(pRes, 0), "text"), "a");

  quay_writer_free(pW);
  quay_load_free(pLoad);
  quay_result_free(pRes);
  quay_qs_free(pQs);
  quay_cursor_close(pCur);
  quay_plan_free(pPlan);
  quay_migration_free(pMig);           /* the last child frees the db */
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);

  /* Freeing with no children frees at once, as before. */
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  quay_db_free(db);
  return 0;
}

/* quay_err.ext on a failed open; names of non-error codes; versions. */
TEST(error_detail) {
  quay_db *db = NULL;
  quay_err e;
  ASSERT_CODE(quay_db_open("sqlite:/nonexistent-dir-of-quay/x.db", NULL, &db,
                           &e), QUAY_ECONNECTION);
  ASSERT(db == NULL);
  ASSERT_EQ(e.ext & 0xff, SQLITE_CANTOPEN);
  ASSERT_STR_EQ(quay_errname(QUAY_ROW), "row");
  ASSERT_STR_EQ(quay_errname(QUAY_DONE), "done");
  ASSERT_STR_EQ(quay_errname(999), "unknown");
  ASSERT_STR_EQ(quay_errname(-1), "unknown");
  ASSERT_STR_EQ(quay_errname(QUAY_ESQL), "sql");
  ASSERT_STR_EQ(quay_libversion(), QUAY_VERSION);
  ASSERT_EQ(quay_libversion_number(), QUAY_VERSION_NUMBER);
  return 0;
}

/*
** The by-name calls: writer fields and to-one relations, records of a
** fetch with their loaded relations and annotations, and their errors.
*/
TEST(capi_by_name) {
  quay_db *db = NULL;
  quay_model *pNote, *pTag;
  quay_writer *pW = NULL;
  quay_qs *pQs = NULL, *pQs2 = NULL, *pQs3 = NULL;
  quay_result *pRes = NULL;
  quay_err e;
  quay_value v;
  const quay_rec *r, *const *a;
  int n, i;
  static const char *const azTag[] = {"x", "y", "z"};
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(declare_notes(db, &pNote, &e), e);
  pTag = quay_db_model(db, "Tag");
  ASSERT(pTag != NULL);
  ASSERT_OK(quay_db_create_tables(db, &e), e);

  ASSERT_OK(quay_writer_new(db, pNote, &pW, &e), e);
  ASSERT_OK(quay_writer_put(pW, "text", quay_value_text("first"), &e), e);
  ASSERT_CODE(quay_writer_put(pW, "txt", quay_value_text("x"), &e),
              QUAY_EUNKNOWN_FIELD);
  ASSERT_STR_EQ(e.zModel, "Note");
  ASSERT_STR_EQ(e.zField, "txt");
  ASSERT_OK(quay_writer_insert(pW, &e), e);
  ASSERT_OK(quay_writer_get(pW, "id", &v, &e), e);
  ASSERT_EQ(v.type, QUAY_INT);
  ASSERT_EQ(v.u.i, 1);
  quay_writer_free(pW);
  ASSERT_OK(quay_writer_new(db, pTag, &pW, &e), e);
  for (i = 0; i < 3; i++) {
    quay_writer_reset(pW);
    ASSERT_OK(quay_writer_put(pW, "name", quay_value_text(azTag[i]), &e), e);
    ASSERT_OK(quay_writer_put(pW, "note", quay_value_int(1), &e), e);
    ASSERT_OK(quay_writer_insert(pW, &e), e);
  }
  ASSERT_OK(quay_writer_get(pW, "note", &v, &e), e);   /* its key */
  ASSERT_EQ(v.u.i, 1);
  ASSERT_CODE(quay_writer_get(pW, "nope", &v, &e), QUAY_EUNKNOWN_FIELD);
  quay_writer_free(pW);

  /* Tags of notes whose text starts with "fi", the note JOINed. */
  ASSERT_OK(quay_qs_new(pTag, &pQs, &e), e);
  ASSERT_OK(quay_qs_where(pQs, "note__text__startswith",
                          quay_value_text("fi"), &pQs2, &e), e);
  ASSERT_OK(quay_qs_load(pQs2, "note", QUAY_LOAD_JOIN, NULL, NULL, &pQs3,
                         &e), e);
  ASSERT_OK(quay_qs_fetch(pQs3, db, &pRes, &e), e);
  ASSERT_EQ(quay_result_count(pRes), 3);
  r = quay_result_rec(pRes, 2);
  ASSERT(quay_rec_model(r) == pTag);
  ASSERT_STR_EQ(quay_rec_text(r, "name"), "z");
  ASSERT_STR_EQ(quay_rec_text(quay_rec_one(r, "note"), "text"), "first");
  ASSERT(quay_result_rec(pRes, 3) == NULL);
  ASSERT_CODE(quay_rec_get(r, "nope", &v, &e), QUAY_EUNKNOWN_FIELD);
  quay_result_free(pRes);
  quay_qs_free(pQs3);
  quay_qs_free(pQs2);

  /* Notes with their tags counted: an annotation; tags not loaded. */
  quay_qs_free(pQs);
  ASSERT_OK(quay_qs_new(pNote, &pQs, &e), e);
  ASSERT_OK(quay_qs_with_count(pQs, "tags", &pQs2, &e), e);
  ASSERT_OK(quay_qs_fetch(pQs2, db, &pRes, &e), e);
  r = quay_result_rec(pRes, 0);
  ASSERT_EQ(quay_rec_int(r, "tags_count"), 3);
  ASSERT_CODE(quay_rec_related(r, "tags", &a, &n, &e), QUAY_ELAZY_LOAD);
  ASSERT_CONTAINS(e.zMsg, "quay_qs_load");
  ASSERT_CODE(quay_rec_related(r, "tagz", &a, &n, &e),
              QUAY_EUNKNOWN_RELATION);
  ASSERT(quay_rec_one(r, "tags") == NULL);
  ASSERT(quay_rec_text(NULL, "text") == NULL);
  quay_result_free(pRes);
  quay_qs_free(pQs2);

  /* A values() set yields rows: quay_qs_fetch refuses it. */
  ASSERT_OK(quay_qs_values(pQs, NULL, NULL, 0, &pQs2, &e), e);
  ASSERT_CODE(quay_qs_fetch(pQs2, db, &pRes, &e), QUAY_EMISUSE);
  ASSERT(pRes == NULL);
  quay_qs_free(pQs2);
  quay_qs_free(pQs);

  /* A declaration that fails leaves nothing: the name is free again. */
  {
    static const quay_field_spec aBad[] = {{.zName = "x", .eType = 999}};
    static const quay_field_spec aGood[] = {
      {.zName = "x", .eType = QUAY_T_INTEGER}};
    quay_model *m = NULL;
    ASSERT(quay_model_declare(db, "Other", aBad, 1, NULL, 0, &m, &e) !=
           QUAY_OK);
    ASSERT(m == NULL);
    ASSERT_OK(quay_model_declare(db, "Other", aGood, 1, NULL, 0, &m, &e), e);
    ASSERT_CODE(quay_model_declare(db, "Other2", aGood, -1, NULL, 0, &m, &e),
                QUAY_EMISUSE);
  }
  quay_db_free(db);
  return 0;
}
