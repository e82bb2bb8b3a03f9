/*
** engine/test/t_contract.c
** The contract comments of include/quay.h, checked as a host author
** reads them: every fallible call given a NULL object, NULL out-parameter
** or a bad argument returns QUAY_EMISUSE (never a crash), fills the
** quay_err and leaves its out-parameter NULL; every object is freed by
** its own destructor with nothing leaked (the ASan run of this file).
** Each probe runs in a child process, so that one crash reports its call
** and the others still run.
** See LICENSE
*/
#include "tharness.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The shared fixture of the probes (made before the children fork). */
static quay_db *g_db;
static quay_model *g_note, *g_tag;
static quay_qs *g_qs;
static int g_nBad;

/* Run body in a child; it exits 0 when every CHILD_CHECK held. */
#define PROBE(label, body)                                              \
  do {                                                                  \
    pid_t pid_;                                                         \
    int st_ = 0;                                                        \
    fflush(stdout); fflush(stderr);                                     \
    pid_ = fork();                                                      \
    if (pid_ == 0) { body; _exit(0); }                                  \
    waitpid(pid_, &st_, 0);                                             \
    if (WIFSIGNALED(st_)) {                                             \
      fprintf(stderr, "probe %s: crashed (signal %d)\n", label,        \
              WTERMSIG(st_));                                           \
      g_nBad++;                                                         \
    } else if (WEXITSTATUS(st_) != 0) {                                 \
      g_nBad++;                                                         \
    }                                                                   \
  } while (0)

#define CHILD_CHECK(label, expr)                                        \
  do {                                                                  \
    if (!(expr)) {                                                      \
      fprintf(stderr, "probe %s: %s does not hold\n", label, #expr);   \
      _exit(1);                                                         \
    }                                                                   \
  } while (0)

/* rc is QUAY_EMISUSE and e says so. */
#define MISUSE(label, call)                                             \
  PROBE(label, {                                                        \
    quay_err e_;                                                        \
    int rc_;                                                            \
    memset(&e_, 0, sizeof e_);                                          \
    rc_ = (call);                                                       \
    if (rc_ != QUAY_EMISUSE)                                            \
      fprintf(stderr, "probe %s: got %s (%s)\n", label,                 \
              quay_errname(rc_), e_.zMsg);                              \
    CHILD_CHECK(label, rc_ == QUAY_EMISUSE);                            \
    CHILD_CHECK(label, e_.code == QUAY_EMISUSE && e_.zMsg[0] != 0);     \
  })
/* As MISUSE, and the out-parameter *pp is NULL afterwards. */
#define MISUSE_OUT(label, T, call)                                      \
  PROBE(label, {                                                        \
    quay_err e_;                                                        \
    T *out = (T *)&e_; /* not NULL before the call */                   \
    int rc_;                                                            \
    memset(&e_, 0, sizeof e_);                                          \
    rc_ = (call);                                                       \
    if (rc_ != QUAY_EMISUSE)                                            \
      fprintf(stderr, "probe %s: got %s (%s)\n", label,                 \
              quay_errname(rc_), e_.zMsg);                              \
    CHILD_CHECK(label, rc_ == QUAY_EMISUSE);                            \
    CHILD_CHECK(label, out == NULL);                                    \
  })
/* A call that must only not crash. */
#define NO_CRASH(label, stmt) PROBE(label, { stmt; })

static int fixture(void) {
  static const quay_field_spec aNote[] = {
    {.zName = "text", .eType = QUAY_T_STRING}};
  static const quay_field_spec aTag[] = {
    {.zName = "name", .eType = QUAY_T_STRING}};
  static const quay_rel_spec aTagRel[] = {
    {.zName = "note", .eKind = QUAY_R_BELONGS_TO, .zTarget = "Note",
     .zRelatedName = "tags", .eOnDelete = QUAY_CASCADE}};
  quay_err e;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &g_db, &e), e);
  ASSERT_OK(quay_model_declare(g_db, "Note", aNote, 1, NULL, 0, &g_note, &e),
            e);
  ASSERT_OK(quay_model_declare(g_db, "Tag", aTag, 1, aTagRel, 1, &g_tag, &e),
            e);
  ASSERT_OK(quay_db_create_tables(g_db, &e), e);
  ASSERT_OK(quay_qs_new(g_note, &g_qs, &e), e);
  return 0;
}

/*
** NULL in every pointer argument of the fallible calls, one at a time.
*/
TEST(null_arguments) {
  quay_value v = quay_value_int(1);
  quay_value one = quay_value_int(1);
  const char *azName[] = {"text"};
  int64_t n64;
  int ni;
  static const quay_field_spec fs = {.zName = "x", .eType = QUAY_T_INTEGER};
  static const quay_rel_spec rs = {.zName = "n", .eKind = QUAY_R_BELONGS_TO,
                                   .zTarget = "Note"};
  quay_step_info step;
  quay_apply_opts aopt;
  memset(&step, 0, sizeof step);
  memset(&aopt, 0, sizeof aopt);
  aopt.zName = "0001_x";
  aopt.zChecksum = "0000000000000000";
  (void)v;
  if (fixture() != 0) return 1;
  g_nBad = 0;

  /* Databases */
  MISUSE_OUT("db_open url", quay_db, quay_db_open(NULL, NULL, &out, &e_));
  MISUSE("db_open ppDb", quay_db_open("sqlite::memory:", NULL, NULL, &e_));
  PROBE("db_open bad url", {  /* reference.md: raises connection */
    quay_err e_; quay_db *out = g_db;
    CHILD_CHECK("db_open bad url", quay_db_open("nosuch://x", NULL, &out,
                                                &e_) == QUAY_ECONNECTION);
    CHILD_CHECK("db_open bad url", out == NULL);
  });
  PROBE("url_check null", {
    quay_err e_; const char *z = "x";
    int rc_ = quay_url_check(NULL, &z, &e_);
    CHILD_CHECK("url_check null", rc_ != QUAY_OK);
  });
  MISUSE("url_check out", quay_url_check("sqlite::memory:", NULL, &e_));
  MISUSE_OUT("wrap_sqlite handle", quay_db,
             quay_db_wrap_sqlite(NULL, NULL, &out, &e_));
  MISUSE("db_reopen", quay_db_reopen(NULL, &e_));
  MISUSE("db_begin", quay_db_begin(NULL, &e_));
  MISUSE("db_commit", quay_db_commit(NULL, &e_));
  MISUSE("db_rollback", quay_db_rollback(NULL, &e_));
  MISUSE("db_begin_opts", quay_db_begin_opts(NULL, NULL, &e_));
  MISUSE("db_execute db", quay_db_execute(NULL, "SELECT 1", NULL, 0, NULL,
                                          &e_));
  MISUSE("db_execute sql", quay_db_execute(g_db, NULL, NULL, 0, NULL, &e_));
  MISUSE("db_execute params", quay_db_execute(g_db, "SELECT ?", NULL, 1,
                                              NULL, &e_));
  MISUSE_OUT("db_query db", quay_cursor,
             quay_db_query(NULL, "SELECT 1", NULL, 0, &out, &e_));
  MISUSE_OUT("db_query sql", quay_cursor,
             quay_db_query(g_db, NULL, NULL, 0, &out, &e_));
  MISUSE("db_query out", quay_db_query(g_db, "SELECT 1", NULL, 0, NULL,
                                       &e_));
  MISUSE("cursor_step", quay_cursor_step(NULL, &e_));

  /* Schema declaration */
  MISUSE_OUT("model_new db", quay_model,
             quay_model_new(NULL, "X", NULL, NULL, &out, &e_));
  MISUSE_OUT("model_new name", quay_model,
             quay_model_new(g_db, NULL, NULL, NULL, &out, &e_));
  MISUSE("model_new out", quay_model_new(g_db, "X", NULL, NULL, NULL, &e_));
  MISUSE("model_add_field model", quay_model_add_field(NULL, &fs, &e_));
  MISUSE("model_add_field spec", quay_model_add_field(g_note, NULL, &e_));
  MISUSE("model_add_relation model",
         quay_model_add_relation(NULL, &rs, &e_));
  MISUSE("model_add_relation spec",
         quay_model_add_relation(g_note, NULL, &e_));
  MISUSE_OUT("model_declare db", quay_model,
             quay_model_declare(NULL, "X", &fs, 1, NULL, 0, &out, &e_));
  MISUSE_OUT("model_declare name", quay_model,
             quay_model_declare(g_db, NULL, &fs, 1, NULL, 0, &out, &e_));
  MISUSE_OUT("model_declare fields", quay_model,
             quay_model_declare(g_db, "X", NULL, 1, NULL, 0, &out, &e_));
  MISUSE_OUT("model_declare rels", quay_model,
             quay_model_declare(g_db, "X", &fs, 1, NULL, 1, &out, &e_));
  MISUSE("model_declare out",
         quay_model_declare(g_db, "X", &fs, 1, NULL, 0, NULL, &e_));
  MISUSE("model_finish", quay_model_finish(NULL, &e_));
  PROBE("model_discard", {
    CHILD_CHECK("model_discard", quay_model_discard(NULL) == QUAY_EMISUSE);
  });
  MISUSE("model_set_soft_delete", quay_model_set_soft_delete(NULL, &e_));
  MISUSE("model_add_unique model",
         quay_model_add_unique(NULL, azName, 1, &e_));
  MISUSE("model_add_unique names",
         quay_model_add_unique(g_note, NULL, 1, &e_));
  MISUSE("model_set_renamed_from model",
         quay_model_set_renamed_from(NULL, "old", &e_));
  MISUSE("model_add_index model", quay_model_add_index(NULL, azName, 1, &e_));
  MISUSE("model_add_index names",
         quay_model_add_index(g_note, NULL, 1, &e_));
  MISUSE("db_resolve", quay_db_resolve(NULL, &e_));
  MISUSE("db_create_tables", quay_db_create_tables(NULL, &e_));
  MISUSE("db_drop_tables", quay_db_drop_tables(NULL, &e_));

  /* Introspection */
  PROBE("model_field", {
    quay_field_info fi;
    CHILD_CHECK("model_field null",
                quay_model_field(NULL, 0, &fi) == QUAY_EMISUSE);
    CHILD_CHECK("model_field out",
                quay_model_field(g_note, 0, NULL) == QUAY_EMISUSE);
    CHILD_CHECK("model_field range",
                quay_model_field(g_note, 99, &fi) == QUAY_EMISUSE);
    CHILD_CHECK("model_field neg",
                quay_model_field(g_note, -1, &fi) == QUAY_EMISUSE);
  });
  PROBE("model_relation", {
    quay_rel_info ri;
    CHILD_CHECK("model_relation null",
                quay_model_relation(NULL, 0, &ri) == QUAY_EMISUSE);
    CHILD_CHECK("model_relation out",
                quay_model_relation(g_note, 0, NULL) == QUAY_EMISUSE);
    CHILD_CHECK("model_relation range",
                quay_model_relation(g_note, 99, &ri) == QUAY_EMISUSE);
  });
  PROBE("model_index", {
    const char *const *az; int nn;
    CHILD_CHECK("model_index null",
                quay_model_index(NULL, 0, 0, &az, &nn) == QUAY_EMISUSE);
    CHILD_CHECK("model_index range",
                quay_model_index(g_note, 0, 0, &az, &nn) == QUAY_EMISUSE);
    CHILD_CHECK("model_index out",
                quay_model_index(g_note, 0, 0, NULL, NULL) == QUAY_EMISUSE);
  });
  PROBE("model_member", {
    int ix = 5;
    CHILD_CHECK("model_member null",
                quay_model_member(NULL, "text", &ix) == QUAY_M_NONE);
    CHILD_CHECK("model_member name",
                quay_model_member(g_note, NULL, &ix) == QUAY_M_NONE);
    CHILD_CHECK("model_member out",
                quay_model_member(g_note, "text", NULL) == QUAY_M_FIELD);
  });
  NO_CRASH("quay_db_is_open(NULL)", (void)quay_db_is_open(NULL));
  NO_CRASH("quay_db_backend(NULL)", (void)quay_db_backend(NULL));
  NO_CRASH("quay_db_query_count(NULL)", (void)quay_db_query_count(NULL));
  NO_CRASH("quay_db_role_count(NULL, 0)", (void)quay_db_role_count(NULL, 0));
  NO_CRASH("quay_db_strict(NULL)", (void)quay_db_strict(NULL));
  NO_CRASH("quay_db_txn_depth(NULL)", (void)quay_db_txn_depth(NULL));
  NO_CRASH("quay_db_txn_readonly(NULL)", (void)quay_db_txn_readonly(NULL));
  NO_CRASH("quay_db_schema_version(NULL)", (void)quay_db_schema_version(NULL));
  NO_CRASH("quay_db_model_count(NULL)", (void)quay_db_model_count(NULL));
  NO_CRASH("quay_db_model_at(NULL, 0)", (void)quay_db_model_at(NULL, 0));
  NO_CRASH("quay_db_model(NULL, 'x')", (void)quay_db_model(NULL, "x"));
  NO_CRASH("quay_db_model(g_db, NULL)", (void)quay_db_model(g_db, NULL));
  NO_CRASH("quay_db_model_at(g_db, -1)", (void)quay_db_model_at(g_db, -1));
  NO_CRASH("quay_db_model_at(g_db, 99)", (void)quay_db_model_at(g_db, 99));
  NO_CRASH("quay_model_name(NULL)", (void)quay_model_name(NULL));
  NO_CRASH("quay_model_table(NULL)", (void)quay_model_table(NULL));
  NO_CRASH("quay_model_description(NULL)", (void)quay_model_description(NULL));
  NO_CRASH("quay_model_db(NULL)", (void)quay_model_db(NULL));
  NO_CRASH("quay_model_field_count(NULL)", (void)quay_model_field_count(NULL));
  NO_CRASH("quay_model_pk(NULL)", (void)quay_model_pk(NULL));
  NO_CRASH("quay_model_relation_count(NULL)",
           (void)quay_model_relation_count(NULL));
  NO_CRASH("quay_model_index_count(NULL, 0)",
           (void)quay_model_index_count(NULL, 0));
  NO_CRASH("quay_model_soft_delete(NULL)", (void)quay_model_soft_delete(NULL));
  NO_CRASH("quay_model_delete_hooks(NULL)",
           (void)quay_model_delete_hooks(NULL));
  NO_CRASH("quay_model_set_delete_hooks(NULL, 1)",
           quay_model_set_delete_hooks(NULL, 1));
  NO_CRASH("quay_db_on_query(NULL, NULL, NULL)",
           quay_db_on_query(NULL, NULL, NULL));
  NO_CRASH("quay_db_on_delete(NULL, NULL, NULL)",
           quay_db_on_delete(NULL, NULL, NULL));
  NO_CRASH("quay_db_blocker_count(NULL)", (void)quay_db_blocker_count(NULL));
  NO_CRASH("quay_db_blocker(NULL, 0, NULL)",
           (void)quay_db_blocker(NULL, 0, NULL));
  NO_CRASH("quay_db_blocker(g_db, 5, NULL)",
           (void)quay_db_blocker(g_db, 5, NULL));
  NO_CRASH("quay_db_disconnect(NULL)", quay_db_disconnect(NULL));
  NO_CRASH("quay_cursor_ncol(NULL)", (void)quay_cursor_ncol(NULL));
  NO_CRASH("quay_cursor_colname(NULL, 0)", (void)quay_cursor_colname(NULL, 0));
  NO_CRASH("quay_cursor_field(NULL, 0)", (void)quay_cursor_field(NULL, 0));
  PROBE("quay_cursor_value(NULL)", {
    quay_value vv = quay_value_int(3);
    quay_cursor_value(NULL, 0, NULL);
    quay_cursor_value(NULL, 0, &vv);
    CHILD_CHECK("quay_cursor_value(NULL)", vv.type == QUAY_NULL);
  });
  NO_CRASH("quay_type_by_name(NULL)", (void)quay_type_by_name(NULL));
  NO_CRASH("quay_op_code(NULL)", (void)quay_op_code(NULL));
  NO_CRASH("quay_qs_model(NULL)", (void)quay_qs_model(NULL));
  NO_CRASH("quay_qs_ref(NULL)", (void)quay_qs_ref(NULL));
  NO_CRASH("quay_qs_is_values(NULL)", (void)quay_qs_is_values(NULL));
  NO_CRASH("quay_qs_is_strict(NULL)", (void)quay_qs_is_strict(NULL));
  NO_CRASH("quay_qs_is_primary(NULL)", (void)quay_qs_is_primary(NULL));
  NO_CRASH("quay_plan_sql(NULL, NULL, NULL)",
           (void)quay_plan_sql(NULL, NULL, NULL));
  NO_CRASH("quay_plan_strict(NULL)", (void)quay_plan_strict(NULL));
  NO_CRASH("quay_plan_nslot(NULL)", (void)quay_plan_nslot(NULL));
  NO_CRASH("quay_plan_slot(NULL, 0, NULL)", quay_plan_slot(NULL, 0, NULL));
  NO_CRASH("quay_plan_explain(NULL, 0, NULL)",
           (void)quay_plan_explain(NULL, 0, NULL));
  NO_CRASH("quay_load_server(NULL)", (void)quay_load_server(NULL));
  NO_CRASH("quay_load_pin(NULL, 0)", quay_load_pin(NULL, 0));
  NO_CRASH("quay_result_count(NULL)", (void)quay_result_count(NULL));
  NO_CRASH("quay_result_rec(NULL, 0)", (void)quay_result_rec(NULL, 0));
  NO_CRASH("quay_rec_model(NULL)", (void)quay_rec_model(NULL));
  NO_CRASH("quay_rec_one(NULL, 'x')", (void)quay_rec_one(NULL, "x"));
  NO_CRASH("quay_rec_int(NULL, 'x')", (void)quay_rec_int(NULL, "x"));
  NO_CRASH("quay_counts_n(NULL)", (void)quay_counts_n(NULL));
  NO_CRASH("quay_counts_name(NULL, 0)", (void)quay_counts_name(NULL, 0));
  NO_CRASH("quay_counts_value(NULL, 0)", (void)quay_counts_value(NULL, 0));
  NO_CRASH("quay_counts_deleted_at(NULL)", (void)quay_counts_deleted_at(NULL));
  NO_CRASH("quay_schema_table_count(NULL)",
           (void)quay_schema_table_count(NULL));
  NO_CRASH("quay_schema_model_count(NULL)",
           (void)quay_schema_model_count(NULL));
  NO_CRASH("quay_schema_check(NULL, 0, 0)",
           (void)quay_schema_check(NULL, 0, 0));
  NO_CRASH("quay_migration_count(NULL)", (void)quay_migration_count(NULL));
  NO_CRASH("quay_migration_sql(NULL, 0, 0)",
           (void)quay_migration_sql(NULL, 0, 0));
  NO_CRASH("quay_writer_is_set(NULL, 0)", (void)quay_writer_is_set(NULL, 0));
  NO_CRASH("quay_writer_queued(NULL)", (void)quay_writer_queued(NULL));
  NO_CRASH("quay_writer_batch(NULL)", (void)quay_writer_batch(NULL));
  NO_CRASH("quay_writer_reset(NULL)", quay_writer_reset(NULL));
  NO_CRASH("quay_writer_value(NULL, 0, NULL)",
           quay_writer_value(NULL, 0, NULL));
  NO_CRASH("quay_writer_queued_value(NULL, 0, 0, NULL)",
           quay_writer_queued_value(NULL, 0, 0, NULL));
  NO_CRASH("quay_expr_set_desc(NULL, 1)", quay_expr_set_desc(NULL, 1));
  NO_CRASH("quay_err_clear(NULL)", quay_err_clear(NULL));
  NO_CRASH("destructors", {
    quay_db_free(NULL); quay_cursor_close(NULL); quay_schema_free(NULL);
    quay_migration_free(NULL); quay_cond_free(NULL); quay_expr_free(NULL);
    quay_qs_free(NULL); quay_plan_free(NULL); quay_load_free(NULL);
    quay_result_free(NULL); quay_writer_free(NULL); quay_counts_free(NULL);
  });

  /* Schema evolution */
  MISUSE_OUT("db_inspect db", quay_schema, quay_db_inspect(NULL, &out, &e_));
  MISUSE("db_inspect out", quay_db_inspect(g_db, NULL, &e_));
  PROBE("schema getters", {
    quay_table_info ti; quay_column_info ci; quay_index_info ii;
    quay_fkey_info fi; quay_model_gen mg; quay_field_spec fsp;
    quay_rel_spec rsp; const char *const *az; int nn;
    CHILD_CHECK("schema_table", quay_schema_table(NULL, 0, &ti) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_column", quay_schema_column(NULL, 0, 0, &ci) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_index", quay_schema_index(NULL, 0, 0, &ii) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_foreign_key",
                quay_schema_foreign_key(NULL, 0, 0, &fi) == QUAY_EMISUSE);
    CHILD_CHECK("schema_model", quay_schema_model(NULL, 0, &mg) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_model_field",
                quay_schema_model_field(NULL, 0, 0, &fsp) == QUAY_EMISUSE);
    CHILD_CHECK("schema_model_relation",
                quay_schema_model_relation(NULL, 0, 0, &rsp) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_model_unique",
                quay_schema_model_unique(NULL, 0, 0, &az, &nn) ==
                QUAY_EMISUSE);
    CHILD_CHECK("schema_model_index",
                quay_schema_model_index(NULL, 0, 0, &az, &nn) ==
                QUAY_EMISUSE);
  });
  MISUSE_OUT("migration_new db", quay_migration,
             quay_migration_new(NULL, &out, &e_));
  MISUSE("migration_new out", quay_migration_new(g_db, NULL, &e_));
  MISUSE("migration_add mig", quay_migration_add(NULL, &step, NULL, &e_));
  MISUSE("migration_add step", quay_migration_add((quay_migration *)g_db,
                                                  NULL, NULL, &e_));
  PROBE("migration_add no sql", {  /* nSql 0: azSql may be NULL */
    quay_err e_; quay_migration *pM = NULL; quay_step_info si;
    memset(&si, 0, sizeof si);
    si.eOp = QUAY_OP_DROP_INDEX; si.zTable = "notes"; si.zColumn = "ix";
    CHILD_CHECK("migration_add no sql",
                quay_migration_new(g_db, &pM, &e_) == QUAY_OK);
    CHILD_CHECK("migration_add no sql",
                quay_migration_add(pM, &si, NULL, &e_) == QUAY_OK);
    CHILD_CHECK("migration_add no sql", quay_migration_count(pM) == 1);
    quay_migration_free(pM);
  });
  PROBE("migration_step", {
    quay_step_info si;
    CHILD_CHECK("migration_step", quay_migration_step(NULL, 0, &si) ==
                QUAY_EMISUSE);
  });
  MISUSE_OUT("schema_diff db", quay_migration,
             quay_db_schema_diff(NULL, &out, &e_));
  MISUSE("schema_diff out", quay_db_schema_diff(g_db, NULL, &e_));
  MISUSE_OUT("db_migrate db", quay_migration,
             quay_db_migrate(NULL, 0, &out, &e_));
  MISUSE_OUT("db_migrate flags", quay_migration,
             quay_db_migrate(g_db, 0x100, &out, &e_));
  MISUSE("migration_apply db", quay_migration_apply(NULL, NULL, &aopt, &e_));
  MISUSE("migration_apply opts",
         quay_migration_apply(g_db, NULL, NULL, &e_));
  MISUSE_OUT("applied_migrations db", quay_cursor,
             quay_db_applied_migrations(NULL, &out, &e_));
  MISUSE("applied_migrations out",
         quay_db_applied_migrations(g_db, NULL, &e_));
  NO_CRASH("checksum", { char z[17]; quay_checksum(NULL, 0, z); });

  /* Conditions and expressions */
  MISUSE_OUT("cond_group op", quay_cond, quay_cond_group(99, &out, &e_));
  MISUSE("cond_group out", quay_cond_group(QUAY_C_AND, NULL, &e_));
  MISUSE_OUT("cond_leaf path", quay_cond,
             quay_cond_leaf(NULL, &one, &out, &e_));
  MISUSE_OUT("cond_leaf value", quay_cond,
             quay_cond_leaf("text", NULL, &out, &e_));
  MISUSE("cond_leaf out", quay_cond_leaf("text", &one, NULL, &e_));
  MISUSE("cond_add group", quay_cond_add(NULL, NULL, &e_));
  PROBE("cond_add child", {
    quay_err e_; quay_cond *g = NULL;
    CHILD_CHECK("cond_add child",
                quay_cond_group(QUAY_C_AND, &g, &e_) == QUAY_OK);
    CHILD_CHECK("cond_add child", quay_cond_add(g, NULL, &e_) ==
                QUAY_EMISUSE);
    quay_cond_free(g);
  });
  MISUSE_OUT("cond_leaf_expr path", quay_cond,
             quay_cond_leaf_expr("text", NULL, &out, &e_));
  MISUSE_OUT("expr_col path", quay_expr, quay_expr_col(NULL, &out, &e_));
  MISUSE("expr_col out", quay_expr_col("text", NULL, &e_));
  MISUSE_OUT("expr_value value", quay_expr, quay_expr_value(NULL, &out, &e_));
  MISUSE_OUT("expr_binary args", quay_expr,
             quay_expr_binary(QUAY_X_ADD, NULL, NULL, &out, &e_));
  MISUSE_OUT("expr_agg func", quay_expr,
             quay_expr_agg(99, NULL, NULL, 0, NULL, &out, &e_));
  MISUSE("expr_agg out",
         quay_expr_agg(QUAY_AGG_COUNT, NULL, NULL, 0, NULL, NULL, &e_));
  MISUSE_OUT("expr_trunc path", quay_expr,
             quay_expr_trunc(QUAY_UNIT_YEAR, NULL, &out, &e_));
  MISUSE_OUT("expr_trunc unit", quay_expr,
             quay_expr_trunc(99, "text", &out, &e_));

  /* Query sets */
  MISUSE_OUT("qs_new model", quay_qs, quay_qs_new(NULL, &out, &e_));
  MISUSE("qs_new out", quay_qs_new(g_note, NULL, &e_));
  MISUSE_OUT("qs_filter qs", quay_qs, quay_qs_filter(NULL, NULL, 0, &out,
                                                    &e_));
  MISUSE_OUT("qs_filter cond", quay_qs, quay_qs_filter(g_qs, NULL, 0, &out,
                                                      &e_));
  MISUSE_OUT("qs_where qs", quay_qs,
             quay_qs_where(NULL, "text", one, &out, &e_));
  MISUSE_OUT("qs_where path", quay_qs,
             quay_qs_where(g_qs, NULL, one, &out, &e_));
  MISUSE("qs_where out", quay_qs_where(g_qs, "text", one, NULL, &e_));
  MISUSE_OUT("qs_where_has qs", quay_qs,
             quay_qs_where_has(NULL, "tags", NULL, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_where_has rel", quay_qs,
             quay_qs_where_has(g_qs, NULL, NULL, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_order_by qs", quay_qs,
             quay_qs_order_by(NULL, azName, 1, &out, &e_));
  MISUSE_OUT("qs_order_by terms", quay_qs,
             quay_qs_order_by(g_qs, NULL, 1, &out, &e_));
  MISUSE_OUT("qs_limit qs", quay_qs, quay_qs_limit(NULL, 1, &out, &e_));
  MISUSE_OUT("qs_limit neg", quay_qs, quay_qs_limit(g_qs, -1, &out, &e_));
  MISUSE("qs_limit out", quay_qs_limit(g_qs, 1, NULL, &e_));
  MISUSE_OUT("qs_offset qs", quay_qs, quay_qs_offset(NULL, 1, &out, &e_));
  MISUSE_OUT("qs_offset neg", quay_qs, quay_qs_offset(g_qs, -1, &out, &e_));
  MISUSE_OUT("qs_load qs", quay_qs,
             quay_qs_load(NULL, "tags", QUAY_LOAD_BATCH, NULL, NULL, &out,
                          &e_));
  MISUSE_OUT("qs_load path", quay_qs,
             quay_qs_load(g_qs, NULL, QUAY_LOAD_BATCH, NULL, NULL, &out,
                          &e_));
  MISUSE_OUT("qs_load how", quay_qs,
             quay_qs_load(g_qs, "tags", 99, NULL, NULL, &out, &e_));
  MISUSE_OUT("qs_with_count qs", quay_qs,
             quay_qs_with_count(NULL, "tags", &out, &e_));
  MISUSE_OUT("qs_with_count path", quay_qs,
             quay_qs_with_count(g_qs, NULL, &out, &e_));
  MISUSE_OUT("qs_annotate qs", quay_qs,
             quay_qs_annotate(NULL, "n", NULL, &out, &e_));
  MISUSE_OUT("qs_annotate expr", quay_qs,
             quay_qs_annotate(g_qs, "n", NULL, &out, &e_));
  MISUSE_OUT("qs_annotate name", quay_qs,
             quay_qs_annotate(g_qs, NULL, NULL, &out, &e_));
  MISUSE_OUT("qs_order_by_expr qs", quay_qs,
             quay_qs_order_by_expr(NULL, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_order_by_expr terms", quay_qs,
             quay_qs_order_by_expr(g_qs, NULL, 1, &out, &e_));
  MISUSE_OUT("qs_values qs", quay_qs,
             quay_qs_values(NULL, NULL, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_values names", quay_qs,
             quay_qs_values(g_qs, NULL, NULL, 1, &out, &e_));
  MISUSE_OUT("qs_distinct qs", quay_qs, quay_qs_distinct(NULL, &out, &e_));
  MISUSE_OUT("path_target model", quay_model,
             quay_model_path_target(NULL, "tags", &out, &e_));
  MISUSE_OUT("path_target path", quay_model,
             quay_model_path_target(g_note, NULL, &out, &e_));
  MISUSE_OUT("qs_with_deleted qs", quay_qs,
             quay_qs_with_deleted(NULL, QUAY_DELETED_ONLY, &out, &e_));
  MISUSE_OUT("qs_with_deleted mode", quay_qs,
             quay_qs_with_deleted(g_qs, 99, &out, &e_));
  MISUSE_OUT("qs_strict qs", quay_qs, quay_qs_strict(NULL, &out, &e_));
  MISUSE_OUT("qs_using_primary qs", quay_qs,
             quay_qs_using_primary(NULL, &out, &e_));
  MISUSE_OUT("qs_for_update qs", quay_qs,
             quay_qs_for_update(NULL, 0, &out, &e_));
  MISUSE_OUT("qs_for_update flags", quay_qs,
             quay_qs_for_update(g_qs, 0x100, &out, &e_));
  MISUSE_OUT("qs_related model", quay_qs,
             quay_qs_related(NULL, 0, &one, &out, &e_));
  MISUSE_OUT("qs_related rel", quay_qs,
             quay_qs_related(g_note, 99, &one, &out, &e_));
  MISUSE_OUT("qs_related key", quay_qs,
             quay_qs_related(g_note, 0, NULL, &out, &e_));

  /* Running */
  MISUSE_OUT("plan_new qs", quay_plan, quay_plan_new(NULL, &out, &e_));
  MISUSE("plan_new out", quay_plan_new(g_qs, NULL, &e_));
  MISUSE_OUT("plan_lazy model", quay_plan, quay_plan_lazy(NULL, 0, &out,
                                                         &e_));
  MISUSE_OUT("plan_lazy rel", quay_plan, quay_plan_lazy(g_note, 99, &out,
                                                       &e_));
  MISUSE_OUT("load_open plan", quay_load,
             quay_load_open(NULL, g_db, 0, &out, &e_));
  MISUSE("load_next", quay_load_next(NULL, 0, NULL, NULL, &e_));
  MISUSE("load_owners", quay_load_owners(NULL, NULL, 0, &e_));
  MISUSE_OUT("qs_fetch qs", quay_result, quay_qs_fetch(NULL, g_db, &out,
                                                      &e_));
  MISUSE_OUT("qs_fetch db", quay_result, quay_qs_fetch(g_qs, NULL, &out,
                                                      &e_));
  MISUSE("qs_fetch out", quay_qs_fetch(g_qs, g_db, NULL, &e_));
  PROBE("rec_get/related null", {
    quay_err e_; quay_value vv; const quay_rec *const *a; int nn;
    CHILD_CHECK("rec_get", quay_rec_get(NULL, "x", &vv, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("rec_related", quay_rec_related(NULL, "x", &a, &nn, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("rec_text", quay_rec_text(NULL, "x") == NULL);
  });
  MISUSE_OUT("qs_rows qs", quay_cursor, quay_qs_rows(NULL, g_db, 0, &out,
                                                    &e_));
  MISUSE_OUT("qs_rows db", quay_cursor, quay_qs_rows(g_qs, NULL, 0, &out,
                                                    &e_));
  MISUSE_OUT("qs_aggregate qs", quay_cursor,
             quay_qs_aggregate(NULL, g_db, NULL, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_aggregate names", quay_cursor,
             quay_qs_aggregate(g_qs, g_db, NULL, NULL, 1, &out, &e_));
  MISUSE_OUT("model_raw model", quay_cursor,
             quay_model_raw(NULL, g_db, "SELECT id FROM notes", NULL, 0,
                            &out, &e_));
  MISUSE_OUT("model_raw db", quay_cursor,
             quay_model_raw(g_note, NULL, "SELECT id FROM notes", NULL, 0,
                            &out, &e_));
  MISUSE_OUT("model_raw sql", quay_cursor,
             quay_model_raw(g_note, g_db, NULL, NULL, 0, &out, &e_));
  MISUSE("qs_count qs", quay_qs_count(NULL, g_db, &n64, &e_));
  MISUSE("qs_count db", quay_qs_count(g_qs, NULL, &n64, &e_));
  MISUSE("qs_count out", quay_qs_count(g_qs, g_db, NULL, &e_));
  MISUSE("qs_exists qs", quay_qs_exists(NULL, g_db, &ni, &e_));
  MISUSE("qs_exists out", quay_qs_exists(g_qs, g_db, NULL, &e_));
  MISUSE_OUT("qs_pluck qs", quay_cursor,
             quay_qs_pluck(NULL, g_db, "text", &out, &e_));
  MISUSE_OUT("qs_pluck path", quay_cursor,
             quay_qs_pluck(g_qs, g_db, NULL, &out, &e_));

  /* Writing */
  MISUSE_OUT("writer_new db", quay_writer,
             quay_writer_new(NULL, g_note, &out, &e_));
  MISUSE_OUT("writer_new model", quay_writer,
             quay_writer_new(g_db, NULL, &out, &e_));
  MISUSE("writer_new out", quay_writer_new(g_db, g_note, NULL, &e_));
  MISUSE("writer_set", quay_writer_set(NULL, 0, &one, &e_));
  MISUSE("writer_set_rel", quay_writer_set_rel(NULL, 0, &one, &e_));
  MISUSE("writer_check", quay_writer_check(NULL, 1, &e_));
  MISUSE("writer_insert", quay_writer_insert(NULL, &e_));
  MISUSE("writer_update", quay_writer_update(NULL, &one, NULL, &e_));
  MISUSE("writer_queue", quay_writer_queue(NULL, &e_));
  MISUSE("writer_flush", quay_writer_flush(NULL, &e_));
  MISUSE("writer_upsert", quay_writer_upsert(NULL, NULL, 0, NULL, 0, &e_));
  MISUSE("writer_put", quay_writer_put(NULL, "text", one, &e_));
  MISUSE("writer_get", quay_writer_get(NULL, "text", &one, &e_));
  MISUSE("writer_set_expr", quay_writer_set_expr(NULL, 0, NULL, &e_));
  MISUSE("writer_bulk_begin", quay_writer_bulk_begin(NULL, 100, NULL, &e_));
  PROBE("writer_bulk_begin out", {
    quay_err e_; int bBegun = 1;
    CHILD_CHECK("writer_bulk_begin misuse",
                quay_writer_bulk_begin(NULL, 100, &bBegun, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("writer_bulk_begin clears", bBegun == 0);
  });
  MISUSE("qs_update", quay_qs_update(NULL, NULL, NULL, &e_));
  PROBE("writer null members", {
    quay_err e_; quay_writer *w = NULL; quay_value vv;
    CHILD_CHECK("writer_new", quay_writer_new(g_db, g_note, &w, &e_) ==
                QUAY_OK);
    CHILD_CHECK("writer_set val", quay_writer_set(w, 1, NULL, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("writer_set range", quay_writer_set(w, 99, &one, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("writer_set neg", quay_writer_set(w, -1, &one, &e_) ==
                QUAY_EMISUSE);
    CHILD_CHECK("writer_set_rel range",
                quay_writer_set_rel(w, 99, &one, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("writer_put name",
                quay_writer_put(w, NULL, one, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("writer_get name",
                quay_writer_get(w, NULL, &vv, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("writer_get out",
                quay_writer_get(w, "text", NULL, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("writer_update key",
                quay_writer_update(w, NULL, NULL, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("writer_set_expr null",
                quay_writer_set_expr(w, 1, NULL, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("qs_update writer",
                quay_qs_update(g_qs, NULL, NULL, &e_) == QUAY_EMISUSE);
    quay_writer_value(w, 99, &vv);
    quay_writer_queued_value(w, 99, 99, &vv);
    (void)quay_writer_is_set(w, 99);
    quay_writer_free(w);
  });
  MISUSE("bulk_update db", quay_bulk_update(NULL, g_note, NULL, 0, NULL, 0,
                                            NULL, &e_));
  MISUSE("bulk_update model", quay_bulk_update(g_db, NULL, NULL, 0, NULL, 0,
                                               NULL, &e_));
  MISUSE_OUT("qs_delete qs", quay_counts,
             quay_qs_delete(NULL, g_db, 0, &out, &e_));
  MISUSE_OUT("qs_delete db", quay_counts,
             quay_qs_delete(g_qs, NULL, 0, &out, &e_));
  MISUSE_OUT("qs_delete flags", quay_counts,
             quay_qs_delete(g_qs, g_db, 0x100, &out, &e_));
  MISUSE_OUT("delete_keys db", quay_counts,
             quay_delete_keys(NULL, g_note, &one, 1, 0, &out, &e_));
  MISUSE_OUT("delete_keys model", quay_counts,
             quay_delete_keys(g_db, NULL, &one, 1, 0, &out, &e_));
  MISUSE_OUT("delete_keys keys", quay_counts,
             quay_delete_keys(g_db, g_note, NULL, 1, 0, &out, &e_));
  MISUSE_OUT("delete_keys flags", quay_counts,
             quay_delete_keys(g_db, g_note, &one, 1, 0x100, &out, &e_));
  MISUSE("m2m_write db", quay_m2m_write(NULL, g_note, 0, &one, QUAY_M2M_ADD,
                                        &one, 1, NULL, &e_));
  MISUSE("m2m_write model", quay_m2m_write(g_db, NULL, 0, &one,
                                           QUAY_M2M_ADD, &one, 1, NULL,
                                           &e_));
  MISUSE("fkset_write db", quay_fkset_write(NULL, g_note, 0, &one, 0, &one,
                                            1, &e_));
  MISUSE("fkset_write model", quay_fkset_write(g_db, NULL, 0, &one, 0, &one,
                                               1, &e_));
  PROBE("set_allocator null", {
    CHILD_CHECK("set_allocator",
                quay_set_allocator(NULL, NULL, NULL) == QUAY_EMISUSE);
  });

  quay_qs_free(g_qs);
  quay_db_free(g_db);
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

/*
** Indexes out of range on live objects (negative and past the end):
** the calls with a code return QUAY_EMISUSE (quay.h: "QUAY_EMISUSE for
** an index out of range"), quay_result_rec NULL, the others 0 / NULL or
** nothing, and none reads outside its arrays (the ASan run).
*/
TEST(bad_indexes) {
  quay_cursor *pCur = NULL;
  quay_result *pRes = NULL;
  quay_plan *pPlan = NULL;
  quay_schema *pS = NULL;
  quay_migration *pMig = NULL;
  quay_counts *pC = NULL;
  quay_writer *pW = NULL;
  quay_err e;
  quay_value v, one = quay_value_int(1);
  int aBad[] = {-1, 99, 1 << 30};
  int k;
  if (fixture() != 0) return 1;
  g_nBad = 0;
  ASSERT_OK(quay_db_execute(g_db, "INSERT INTO notes (text) VALUES ('a')",
                            NULL, 0, NULL, &e), e);
  ASSERT_OK(quay_db_query(g_db, "SELECT id, text FROM notes", NULL, 0, &pCur,
                          &e), e);
  ASSERT_EQ(quay_cursor_step(pCur, &e), QUAY_ROW);
  ASSERT_OK(quay_qs_fetch(g_qs, g_db, &pRes, &e), e);
  ASSERT_OK(quay_plan_new(g_qs, &pPlan, &e), e);
  ASSERT_OK(quay_db_inspect(g_db, &pS, &e), e);
  ASSERT_OK(quay_db_schema_diff(g_db, &pMig, &e), e);
  ASSERT_OK(quay_delete_keys(g_db, g_tag, &one, 1, QUAY_DELETE_DRY_RUN, &pC,
                             &e), e);
  ASSERT_OK(quay_writer_new(g_db, g_note, &pW, &e), e);
  for (k = 0; k < 3; k++) {
    int i = aBad[k];
    PROBE("cursor", {
      quay_cursor_value(pCur, i, &v);
      CHILD_CHECK("cursor_value", v.type == QUAY_NULL);
      CHILD_CHECK("cursor_colname", quay_cursor_colname(pCur, i) == NULL ||
                  quay_cursor_colname(pCur, i)[0] == 0);
      CHILD_CHECK("cursor_field", quay_cursor_field(pCur, i) == -1);
    });
    PROBE("result", {
      CHILD_CHECK("result_rec", quay_result_rec(pRes, i) == NULL);
    });
    PROBE("plan", {
      quay_slot_info si; quay_explain_info xi;
      quay_plan_slot(pPlan, i, &si);
      CHILD_CHECK("plan_explain", quay_plan_explain(pPlan, i, &xi) !=
                  QUAY_OK);
    });
    PROBE("schema", {
      quay_table_info ti; quay_column_info ci; quay_index_info ii;
      quay_fkey_info fi; quay_model_gen mg; quay_field_spec fs;
      quay_rel_spec rs; const char *const *az; int nn;
      CHILD_CHECK("schema_table", quay_schema_table(pS, i, &ti) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_column", quay_schema_column(pS, 0, i, &ci) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_column t", quay_schema_column(pS, i, 0, &ci) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_index", quay_schema_index(pS, 0, i, &ii) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_foreign_key",
                  quay_schema_foreign_key(pS, 0, i, &fi) == QUAY_EMISUSE);
      CHILD_CHECK("schema_check", quay_schema_check(pS, 0, i) == NULL);
      CHILD_CHECK("schema_model", quay_schema_model(pS, i, &mg) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_model_field",
                  quay_schema_model_field(pS, 0, i, &fs) == QUAY_EMISUSE);
      CHILD_CHECK("schema_model_relation",
                  quay_schema_model_relation(pS, 0, i, &rs) == QUAY_EMISUSE);
      CHILD_CHECK("schema_model_unique",
                  quay_schema_model_unique(pS, 0, i, &az, &nn) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("schema_model_index",
                  quay_schema_model_index(pS, 0, i, &az, &nn) ==
                  QUAY_EMISUSE);
    });
    PROBE("migration", {
      quay_step_info si;
      CHILD_CHECK("migration_step", quay_migration_step(pMig, i, &si) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("migration_sql", quay_migration_sql(pMig, i, 0) == NULL);
    });
    PROBE("counts", {
      CHILD_CHECK("counts_name", quay_counts_name(pC, i) == NULL);
      CHILD_CHECK("counts_value", quay_counts_value(pC, i) == 0);
    });
    PROBE("model", {
      quay_field_info fi; quay_rel_info ri;
      CHILD_CHECK("model_field", quay_model_field(g_note, i, &fi) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("model_relation", quay_model_relation(g_note, i, &ri) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("db_model_at", quay_db_model_at(g_db, i) == NULL);
      CHILD_CHECK("db_blocker", quay_db_blocker(g_db, i, &v) == NULL);
    });
    PROBE("writer", {
      quay_err e_;
      CHILD_CHECK("writer_set", quay_writer_set(pW, i, &one, &e_) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("writer_set_rel", quay_writer_set_rel(pW, i, &one, &e_) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("writer_is_set", quay_writer_is_set(pW, i) == 0);
      quay_writer_value(pW, i, &v);
      quay_writer_queued_value(pW, i, 0, &v);
      quay_writer_queued_value(pW, 0, i, &v);
    });
    PROBE("lazy plan", {
      quay_err e_; quay_plan *p = (quay_plan *)&e_;
      CHILD_CHECK("plan_lazy", quay_plan_lazy(g_note, i, &p, &e_) ==
                  QUAY_EMISUSE);
      CHILD_CHECK("plan_lazy out", p == NULL);
    });
  }
  quay_writer_free(pW);
  quay_counts_free(pC);
  quay_migration_free(pMig);
  quay_schema_free(pS);
  quay_plan_free(pPlan);
  quay_result_free(pRes);
  quay_cursor_close(pCur);
  quay_qs_free(g_qs);
  quay_db_free(g_db);
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

/*
** "Takes ownership, also on failure": every such call given a bad
** argument frees what it took (the ASan run reports a leak otherwise,
** and with QUAY_TEST no engine block stays allocated).
*/
TEST(ownership_on_failure) {
  quay_db *db = NULL;
  quay_model *m = NULL;
  quay_qs *q = NULL, *q2 = NULL;
  quay_writer *w = NULL;
  quay_cond *c = NULL, *leaf = NULL;
  quay_expr *x = NULL, *y = NULL, *ap[2];
  quay_err e;
  quay_value one = quay_value_int(1);
  const char *az[2] = {"a", "b"};
  static const quay_field_spec aNote[] = {
    {.zName = "text", .eType = QUAY_T_STRING},
    {.zName = "n", .eType = QUAY_T_INTEGER}};
#ifdef QUAY_TEST
  quay_test_fail_alloc(0, 0);
#endif
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(quay_model_declare(db, "Note", aNote, 2, NULL, 0, &m, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_qs_new(m, &q, &e), e);

  /* filter with an unknown name in a group */
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &c, &e), e);
  ASSERT_OK(quay_cond_leaf("nope", &one, &leaf, &e), e);
  ASSERT_OK(quay_cond_add(c, leaf, &e), e);
  ASSERT_CODE(quay_qs_filter(q, c, 0, &q2, &e), QUAY_EUNKNOWN_FIELD);
  ASSERT(q2 == NULL);
  /* a child added to a leaf */
  ASSERT_OK(quay_cond_leaf("n", &one, &c, &e), e);
  ASSERT_OK(quay_cond_leaf("n", &one, &leaf, &e), e);
  ASSERT_CODE(quay_cond_add(c, leaf, &e), QUAY_EMISUSE);
  quay_cond_free(c);
  /* expressions: bad operator, bad function, bad unit */
  ASSERT_OK(quay_expr_col("n", &x, &e), e);
  ASSERT_OK(quay_expr_value(&one, &y, &e), e);
  ASSERT_CODE(quay_expr_binary(99, x, y, &x, &e), QUAY_EMISUSE);
  ASSERT(x == NULL);
  ASSERT_OK(quay_cond_leaf("n", &one, &c, &e), e);
  ASSERT(quay_expr_agg(99, "n", c, 0, NULL, &x, &e) != QUAY_OK);
  ASSERT(x == NULL);
  /* an expression with a lookup that takes none */
  ASSERT_OK(quay_expr_col("n", &x, &e), e);
  c = NULL;
  if (quay_cond_leaf_expr("n__in", x, &c, &e) == QUAY_OK) {
    ASSERT(quay_qs_filter(q, c, 0, &q2, &e) != QUAY_OK);  /* checked here */
    ASSERT(q2 == NULL);
  }
  /* annotate / order_by_expr / values with unknown names */
  ASSERT_OK(quay_expr_col("nope", &x, &e), e);
  ASSERT(quay_qs_annotate(q, "a", x, &q2, &e) != QUAY_OK);
  ASSERT(q2 == NULL);
  ASSERT_OK(quay_expr_col("n", &x, &e), e);
  ASSERT(quay_qs_annotate(q, "text", x, &q2, &e) != QUAY_OK);  /* a field */
  ASSERT(q2 == NULL);
  ASSERT_OK(quay_expr_col("nope", &ap[0], &e), e);
  ASSERT_OK(quay_expr_col("n", &ap[1], &e), e);
  ASSERT(quay_qs_order_by_expr(q, ap, 2, &q2, &e) != QUAY_OK);
  ASSERT(q2 == NULL);
  ASSERT_OK(quay_expr_col("n", &ap[0], &e), e);
  ASSERT_OK(quay_expr_col("nope", &ap[1], &e), e);
  ASSERT(quay_qs_values(q, az, ap, 2, &q2, &e) != QUAY_OK);
  ASSERT(q2 == NULL);
  /* where_has on a field, not a relation: its condition is freed */
  ASSERT_OK(quay_cond_leaf("n", &one, &c, &e), e);
  ASSERT(quay_qs_where_has(q, "text", c, NULL, 0, &q2, &e) != QUAY_OK);
  ASSERT(q2 == NULL);
  /* a writer's expression for a field index out of range */
  ASSERT_OK(quay_writer_new(db, m, &w, &e), e);
  ASSERT_OK(quay_expr_col("n", &x, &e), e);
  ASSERT_CODE(quay_writer_set_expr(w, 99, x, &e), QUAY_EMISUSE);
  quay_writer_free(w);

  quay_qs_free(q);
  quay_db_free(db);
#ifdef QUAY_TEST
  ASSERT_EQ(quay_test_alloc_live(), 0);
#endif
  return 0;
}

/*
** Negative counts are QUAY_EMISUSE, not a count of zero (order_by,
** values, delete_keys, m2m_write succeeded doing nothing), an SQL error
** (execute, query, model_raw) or nomem (bulk_update's rows).
*/
TEST(negative_counts) {
  quay_value one = quay_value_int(1);
  quay_value aRow[2];
  const char *az[] = {"text"};
  int ai[] = {1};
  quay_writer *w = NULL;
  quay_err e;
  if (fixture() != 0) return 1;
  g_nBad = 0;
  aRow[0] = quay_value_int(1);
  aRow[1] = quay_value_text("x");
  ASSERT_OK(quay_writer_new(g_db, g_note, &w, &e), e);
  MISUSE("execute", quay_db_execute(g_db, "SELECT 1", &one, -1, NULL, &e_));
  MISUSE_OUT("query", quay_cursor,
             quay_db_query(g_db, "SELECT 1", &one, -1, &out, &e_));
  MISUSE_OUT("model_raw", quay_cursor,
             quay_model_raw(g_note, g_db, "SELECT id FROM notes", &one, -1,
                            &out, &e_));
  MISUSE_OUT("order_by", quay_qs, quay_qs_order_by(g_qs, az, -1, &out, &e_));
  MISUSE_OUT("values", quay_qs,
             quay_qs_values(g_qs, az, NULL, -1, &out, &e_));
  MISUSE_OUT("order_by_expr", quay_qs,
             quay_qs_order_by_expr(g_qs, NULL, -1, &out, &e_));
  MISUSE_OUT("delete_keys", quay_counts,
             quay_delete_keys(g_db, g_note, &one, -1, 0, &out, &e_));
  MISUSE("bulk_update fields",
         quay_bulk_update(g_db, g_note, ai, -1, aRow, 1, NULL, &e_));
  MISUSE("bulk_update rows",
         quay_bulk_update(g_db, g_note, ai, 1, aRow, -1, NULL, &e_));
  MISUSE("upsert conflict", quay_writer_upsert(w, ai, -1, NULL, 0, &e_));
  MISUSE("upsert update", quay_writer_upsert(w, ai, 1, ai, -1, &e_));
  MISUSE("m2m_write", quay_m2m_write(g_db, g_note, 0, &one, QUAY_M2M_ADD,
                                     &one, -1, NULL, &e_));
  MISUSE("fkset_write", quay_fkset_write(g_db, g_note, 0, &one, 0, &one, -1,
                                         &e_));
  quay_writer_free(w);
  quay_qs_free(g_qs);
  quay_db_free(g_db);
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

/*
** Declaration specs a host fills by hand: unknown mFlags bits and a
** through path shorter than nPath are QUAY_EMISUSE (the bits were
** ignored; a NULL azPath crashed), and nothing stays declared.
*/
TEST(declaration_specs) {
  static const quay_field_spec fs = {.zName = "y", .eType = QUAY_T_INTEGER,
                                     .mFlags = 0x100000};
  static const quay_field_spec fx = {.zName = "x", .eType = QUAY_T_INTEGER};
  static const quay_rel_spec rs = {.zName = "r",
                                   .eKind = QUAY_R_BELONGS_TO,
                                   .zTarget = "Note", .mFlags = 0x100000};
  static const quay_rel_spec rt = {.zName = "r", .eKind = QUAY_R_THROUGH,
                                   .nPath = 2};
  static const char *const azHalf[] = {"note", NULL};
  static const quay_rel_spec ru = {.zName = "r", .eKind = QUAY_R_THROUGH,
                                   .azPath = azHalf, .nPath = 2};
  if (fixture() != 0) return 1;
  g_nBad = 0;
  MISUSE_OUT("field flags", quay_model,
             quay_model_declare(g_db, "X", &fs, 1, NULL, 0, &out, &e_));
  MISUSE_OUT("relation flags", quay_model,
             quay_model_declare(g_db, "X", &fx, 1, &rs, 1, &out, &e_));
  MISUSE_OUT("through azPath NULL", quay_model,
             quay_model_declare(g_db, "X", &fx, 1, &rt, 1, &out, &e_));
  MISUSE_OUT("through azPath short", quay_model,
             quay_model_declare(g_db, "X", &fx, 1, &ru, 1, &out, &e_));
  PROBE("nothing declared", {
    quay_err e_; quay_model *m = NULL;
    CHILD_CHECK("field flags", quay_model_declare(g_db, "X", &fs, 1, NULL, 0,
                                                  &m, &e_) == QUAY_EMISUSE);
    CHILD_CHECK("nothing declared", quay_db_model(g_db, "X") == NULL);
    CHILD_CHECK("then declared", quay_model_declare(g_db, "X", &fx, 1, NULL,
                                                    0, &m, &e_) == QUAY_OK);
    CHILD_CHECK("resolves", quay_db_resolve(g_db, &e_) == QUAY_OK);
  });
  quay_qs_free(g_qs);
  quay_db_free(g_db);
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

/*
** quay_value structs a host filled wrongly: bytes or list items at a NULL
** pointer, an unknown type, a list in a list, a record without xGet.
** Every call that takes values says QUAY_EMISUSE (they crashed, or took
** an unknown type as a string).
*/
TEST(bad_values) {
  quay_value aBad[5], one = quay_value_int(1), inner[1], aRow[2];
  int ai[] = {1};
  quay_writer *w = NULL;
  quay_err e;
  int k, iNotes = -1;
  memset(aBad, 0, sizeof aBad);
  aBad[0].type = QUAY_TEXT; aBad[0].n = 3;          /* u.z NULL */
  aBad[1].type = QUAY_LIST; aBad[1].n = 2;          /* u.a NULL */
  aBad[2].type = 99;
  inner[0] = quay_value_list(&one, 1);
  aBad[3] = quay_value_list(inner, 1);               /* nested */
  aBad[4].type = QUAY_RECORD;                        /* no xGet, model */
  if (fixture() != 0) return 1;
  g_nBad = 0;
  ASSERT_OK(quay_writer_new(g_db, g_note, &w, &e), e);
  ASSERT_EQ(quay_model_member(g_note, "tags", &iNotes), QUAY_M_RELATION);
  for (k = 0; k < 5; k++) {
    quay_value v = aBad[k];
    aRow[0] = one;
    aRow[1] = v;
    MISUSE("writer_set", quay_writer_set(w, 1, &v, &e_));
    MISUSE("writer_put", quay_writer_put(w, "text", v, &e_));
    MISUSE("writer_update", quay_writer_update(w, &v, NULL, &e_));
    MISUSE_OUT("cond_leaf", quay_cond, quay_cond_leaf("text", &v, &out,
                                                      &e_));
    MISUSE_OUT("qs_where", quay_qs, quay_qs_where(g_qs, "text", v, &out,
                                                  &e_));
    MISUSE("db_execute", quay_db_execute(g_db, "SELECT ?", &v, 1, NULL,
                                         &e_));
    MISUSE_OUT("db_query", quay_cursor,
               quay_db_query(g_db, "SELECT ?", &v, 1, &out, &e_));
    MISUSE_OUT("delete_keys", quay_counts,
               quay_delete_keys(g_db, g_note, &v, 1, 0, &out, &e_));
    MISUSE_OUT("qs_related", quay_qs,
               quay_qs_related(g_note, iNotes, &v, &out, &e_));
    MISUSE_OUT("expr_value", quay_expr, quay_expr_value(&v, &out, &e_));
    MISUSE("fkset_write", quay_fkset_write(g_db, g_note, iNotes, &one, 0, &v,
                                           1, &e_));
    MISUSE("bulk_update", quay_bulk_update(g_db, g_note, ai, 1, aRow, 1,
                                           NULL, &e_));
  }
  /* A sink without all of its callbacks. */
  PROBE("load_next sink", {
    quay_err e_; quay_plan *pPlan = NULL; quay_load *pLoad = NULL;
    quay_sink sink;
    memset(&sink, 0, sizeof sink);
    CHILD_CHECK("plan_new", quay_plan_new(g_qs, &pPlan, &e_) == QUAY_OK);
    CHILD_CHECK("load_open", quay_load_open(pPlan, g_db, 0, &pLoad, &e_) ==
                QUAY_OK);
    CHILD_CHECK("load_next", quay_load_next(pLoad, 0, &sink, NULL, &e_) ==
                QUAY_EMISUSE);
    quay_load_free(pLoad);
    quay_plan_free(pPlan);
  });
  quay_writer_free(w);
  quay_qs_free(g_qs);
  quay_db_free(g_db);
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

/* ------------------------------------------------------------------ */

/* Rows deleted of zName in c, or -1. */
static int64_t counts_of(const quay_counts *c, const char *zName) {
  int i;
  for (i = 0; i < quay_counts_n(c); i++) {
    if (strcmp(quay_counts_name(c, i), zName) == 0) {
      return quay_counts_value(c, i);
    }
  }
  return -1;
}

/* Insert one row of m with fields by name; *piKey gets its id. */
static int put_row(quay_db *db, quay_model *m, const char *zF1, quay_value v1,
                   const char *zF2, quay_value v2, const char *zF3,
                   quay_value v3, int64_t *piKey, quay_err *e) {
  quay_writer *w = NULL;
  quay_value id;
  int rc = quay_writer_new(db, m, &w, e);
  if (rc == QUAY_OK) rc = quay_writer_put(w, zF1, v1, e);
  if (rc == QUAY_OK && zF2) rc = quay_writer_put(w, zF2, v2, e);
  if (rc == QUAY_OK && zF3) rc = quay_writer_put(w, zF3, v3, e);
  if (rc == QUAY_OK) rc = quay_writer_insert(w, e);
  if (rc == QUAY_OK) rc = quay_writer_get(w, "id", &id, e);
  if (rc == QUAY_OK && piKey) *piKey = id.u.i;
  quay_writer_free(w);
  return rc;
}

/*
** The C API without Lua, on one backend: declare models (belongs_to with
** CASCADE, many_to_many), create the tables, insert by name, query with a
** condition tree, select_related and prefetch, count / exists / pluck,
** delete with cascades (dry run, then for real) and read the counts.
** Every object is freed by its own call; with QUAY_TEST, no engine block
** stays allocated afterwards.
*/
static int roundtrip(const char *zUrl) {
  static const quay_field_spec aAuthor[] = {
    {.zName = "name", .eType = QUAY_T_STRING, .mFlags = QUAY_F_UNIQUE,
     .nMax = 40}};
  static const quay_field_spec aBook[] = {
    {.zName = "title", .eType = QUAY_T_STRING},
    {.zName = "year", .eType = QUAY_T_INTEGER}};
  static const quay_rel_spec aBookRel[] = {
    {.zName = "author", .eKind = QUAY_R_BELONGS_TO, .zTarget = "CtAuthor",
     .zRelatedName = "books", .eOnDelete = QUAY_CASCADE},
    {.zName = "tags", .eKind = QUAY_R_MANY_TO_MANY, .zTarget = "CtTag",
     .zRelatedName = "books"}};
  static const quay_field_spec aReview[] = {
    {.zName = "stars", .eType = QUAY_T_INTEGER}};
  static const quay_rel_spec aReviewRel[] = {
    {.zName = "book", .eKind = QUAY_R_BELONGS_TO, .zTarget = "CtBook",
     .zRelatedName = "reviews", .eOnDelete = QUAY_CASCADE}};
  static const quay_field_spec aTag[] = {
    {.zName = "label", .eType = QUAY_T_STRING}};
  static const char *const azOrder[] = {"-year"};
  quay_db *db = NULL;
  quay_model *pAuthor, *pBook, *pReview, *pTag;
  quay_qs *q0 = NULL, *q1 = NULL, *q2 = NULL, *q3 = NULL, *q4 = NULL;
  quay_cond *pOr = NULL, *pLeaf = NULL;
  quay_result *pRes = NULL;
  quay_counts *pC = NULL;
  quay_cursor *pCur = NULL;
  quay_err e;
  int64_t ada, bob, b1, b2, b3, t1, t2, n = 0;
  const quay_rec *r, *const *ap;
  quay_value key, aTags[2];
  int nRec = 0, bExists = 0, iTags = -1, k;
  char zSql[80];
#ifdef QUAY_TEST
  quay_test_fail_alloc(0, 0);          /* restart the block counter */
#endif
  ASSERT_OK(quay_db_open(zUrl, NULL, &db, &e), e);
  if (strcmp(quay_db_backend(db), "postgresql") == 0) {
    /* A schema of this process's own: the valgrind run of this test may
    ** run at the same time on the same server. */
    snprintf(zSql, sizeof zSql, "CREATE SCHEMA quay_ct_%ld", (long)getpid());
    ASSERT_OK(quay_db_execute(db, zSql, NULL, 0, NULL, &e), e);
    snprintf(zSql, sizeof zSql, "SET search_path TO quay_ct_%ld",
             (long)getpid());
    ASSERT_OK(quay_db_execute(db, zSql, NULL, 0, NULL, &e), e);
  }
  ASSERT_OK(quay_model_declare(db, "CtAuthor", aAuthor, 1, NULL, 0, &pAuthor,
                               &e), e);
  ASSERT_OK(quay_model_declare(db, "CtTag", aTag, 1, NULL, 0, &pTag, &e), e);
  ASSERT_OK(quay_model_declare(db, "CtBook", aBook, 2, aBookRel, 2, &pBook,
                               &e), e);
  ASSERT_OK(quay_model_declare(db, "CtReview", aReview, 1, aReviewRel, 1,
                               &pReview, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);   /* idempotent */

  ASSERT_OK(put_row(db, pAuthor, "name", quay_value_text("Ada"), NULL,
                    quay_value_null(), NULL, quay_value_null(), &ada, &e), e);
  ASSERT_OK(put_row(db, pAuthor, "name", quay_value_text("Bob"), NULL,
                    quay_value_null(), NULL, quay_value_null(), &bob, &e), e);
  ASSERT_OK(put_row(db, pBook, "title", quay_value_text("Notes"), "year",
                    quay_value_int(1843), "author", quay_value_int(ada), &b1,
                    &e), e);
  ASSERT_OK(put_row(db, pBook, "title", quay_value_text("Engines"), "year",
                    quay_value_int(1850), "author", quay_value_int(ada), &b2,
                    &e), e);
  ASSERT_OK(put_row(db, pBook, "title", quay_value_text("Later"), "year",
                    quay_value_int(2001), "author", quay_value_int(bob), &b3,
                    &e), e);
  for (k = 0; k < 3; k++) {
    ASSERT_OK(put_row(db, pReview, "stars", quay_value_int(k + 3), "book",
                      quay_value_int(k < 2 ? b1 : b3), NULL,
                      quay_value_null(), NULL, &e), e);
  }
  ASSERT_OK(put_row(db, pTag, "label", quay_value_text("math"), NULL,
                    quay_value_null(), NULL, quay_value_null(), &t1, &e), e);
  ASSERT_OK(put_row(db, pTag, "label", quay_value_text("old"), NULL,
                    quay_value_null(), NULL, quay_value_null(), &t2, &e), e);
  ASSERT_EQ(quay_model_member(pBook, "tags", &iTags), QUAY_M_RELATION);
  key = quay_value_int(b1);
  aTags[0] = quay_value_int(t1);
  aTags[1] = quay_value_int(t2);
  ASSERT_OK(quay_m2m_write(db, pBook, iTags, &key, QUAY_M2M_ADD, aTags, 2,
                           NULL, &e), e);

  /* A unique violation: integrity, and the db goes on working. */
  ASSERT_CODE(put_row(db, pAuthor, "name", quay_value_text("Ada"), NULL,
                      quay_value_null(), NULL, quay_value_null(), NULL, &e),
              QUAY_EINTEGRITY);
  if (strcmp(quay_db_backend(db), "postgresql") == 0) {
    ASSERT_STR_EQ(e.zState, "23505");            /* unique_violation */
    ASSERT_EQ(e.ext, 0);
  } else {
    ASSERT_EQ(e.ext, 2067);                      /* SQLITE_CONSTRAINT_UNIQUE */
    ASSERT_STR_EQ(e.zState, "");
  }
  /* A value too long for its field: validation naming model and field. */
  ASSERT_CODE(put_row(db, pAuthor, "name",
                      quay_value_text("0123456789012345678901234567890123456"
                                      "789012345"), NULL, quay_value_null(),
                      NULL, quay_value_null(), NULL, &e), QUAY_EVALIDATION);
  ASSERT_STR_EQ(e.zModel, "CtAuthor");
  ASSERT_STR_EQ(e.zField, "name");

  /* Books by Ada or after 2000, newest first, author JOINed, reviews
  ** prefetched: all three, Later first. */
  ASSERT_OK(quay_cond_group(QUAY_C_OR, &pOr, &e), e);
  key = quay_value_text("Ada");
  ASSERT_OK(quay_cond_leaf("author__name", &key, &pLeaf, &e), e);
  ASSERT_OK(quay_cond_add(pOr, pLeaf, &e), e);
  key = quay_value_int(2000);
  ASSERT_OK(quay_cond_leaf("year__gt", &key, &pLeaf, &e), e);
  ASSERT_OK(quay_cond_add(pOr, pLeaf, &e), e);
  ASSERT_OK(quay_qs_new(pBook, &q0, &e), e);
  ASSERT_OK(quay_qs_filter(q0, pOr, 0, &q1, &e), e);
  ASSERT_OK(quay_qs_order_by(q1, azOrder, 1, &q2, &e), e);
  ASSERT_OK(quay_qs_load(q2, "author", QUAY_LOAD_JOIN, NULL, NULL, &q3, &e),
            e);
  ASSERT_OK(quay_qs_load(q3, "reviews", QUAY_LOAD_BATCH, NULL, NULL, &q4, &e),
            e);
  ASSERT_OK(quay_qs_fetch(q4, db, &pRes, &e), e);
  ASSERT_EQ(quay_result_count(pRes), 3);
  r = quay_result_rec(pRes, 0);
  ASSERT_STR_EQ(quay_rec_text(r, "title"), "Later");
  ASSERT_STR_EQ(quay_rec_text(quay_rec_one(r, "author"), "name"), "Bob");
  ASSERT_OK(quay_rec_related(r, "reviews", &ap, &nRec, &e), e);
  ASSERT_EQ(nRec, 1);
  ASSERT_EQ(quay_rec_int(ap[0], "stars"), 5);
  r = quay_result_rec(pRes, 2);
  ASSERT_STR_EQ(quay_rec_text(r, "title"), "Notes");
  ASSERT_OK(quay_rec_related(r, "reviews", &ap, &nRec, &e), e);
  ASSERT_EQ(nRec, 2);
  ASSERT_CODE(quay_rec_related(r, "tags", &ap, &nRec, &e), QUAY_ELAZY_LOAD);
  ASSERT(quay_result_rec(pRes, 3) == NULL);
  quay_result_free(pRes);
  pRes = NULL;
  ASSERT_OK(quay_qs_count(q1, db, &n, &e), e);
  ASSERT_EQ(n, 3);
  quay_qs_free(q4); quay_qs_free(q3); quay_qs_free(q2); quay_qs_free(q1);

  /* Through the many_to_many: books tagged "old". */
  ASSERT_OK(quay_qs_where(q0, "tags__label", quay_value_text("old"), &q1, &e),
            e);
  ASSERT_OK(quay_qs_exists(q1, db, &bExists, &e), e);
  ASSERT(bExists);
  ASSERT_OK(quay_qs_pluck(q1, db, "title", &pCur, &e), e);
  ASSERT_EQ(quay_cursor_step(pCur, &e), QUAY_ROW);
  {
    quay_value v;
    quay_cursor_value(pCur, 0, &v);
    ASSERT_EQ(v.type, QUAY_TEXT);
    ASSERT(v.n == 5 && memcmp(v.u.z, "Notes", 5) == 0);
  }
  ASSERT_EQ(quay_cursor_step(pCur, &e), QUAY_DONE);
  quay_cursor_close(pCur);
  pCur = NULL;
  quay_qs_free(q1);
  quay_qs_free(q0);

  /* Delete Ada: her two books, their two reviews and one book's two tag
  ** links go with her; a dry run first changes nothing. */
  ASSERT_OK(quay_qs_new(pAuthor, &q0, &e), e);
  ASSERT_OK(quay_qs_where(q0, "name", quay_value_text("Ada"), &q1, &e), e);
  ASSERT_OK(quay_qs_delete(q1, db, QUAY_DELETE_DRY_RUN, &pC, &e), e);
  ASSERT_EQ(counts_of(pC, "CtAuthor"), 1);
  ASSERT_EQ(counts_of(pC, "CtBook"), 2);
  ASSERT_EQ(counts_of(pC, "CtReview"), 2);
  ASSERT(quay_counts_deleted_at(pC) == NULL);
  quay_counts_free(pC);
  pC = NULL;
  ASSERT_OK(quay_qs_count(q1, db, &n, &e), e);
  ASSERT_EQ(n, 1);
  ASSERT_OK(quay_qs_delete(q1, db, 0, &pC, &e), e);
  ASSERT_EQ(counts_of(pC, "CtAuthor"), 1);
  ASSERT_EQ(counts_of(pC, "CtBook"), 2);
  ASSERT_EQ(counts_of(pC, "CtReview"), 2);
  ASSERT_EQ(quay_counts_n(pC), 4);               /* and the join table */
  quay_counts_free(pC);
  pC = NULL;
  quay_qs_free(q1);
  quay_qs_free(q0);
  ASSERT_OK(quay_qs_new(pReview, &q0, &e), e);
  ASSERT_OK(quay_qs_count(q0, db, &n, &e), e);
  ASSERT_EQ(n, 1);
  quay_qs_free(q0);

  ASSERT_OK(quay_db_drop_tables(db, &e), e);
  if (strcmp(quay_db_backend(db), "postgresql") == 0) {
    snprintf(zSql, sizeof zSql, "DROP SCHEMA quay_ct_%ld CASCADE",
             (long)getpid());
    ASSERT_OK(quay_db_execute(db, zSql, NULL, 0, NULL, &e), e);
  }
  quay_db_free(db);
#ifdef QUAY_TEST
  ASSERT_EQ(quay_test_alloc_live(), 0);
#endif
  (void)b2;
  return 0;
}

/*
** quay_set_allocator: every engine block of a whole C API session
** (declare, create, write, query, prefetch, delete) comes from the host's
** functions and goes back to them.  In a child process: the allocator is
** set before any other Quay call there.
*/
static long g_nMalloc, g_nFree;
static void *count_malloc(size_t n) {
  void *p = malloc(n);
  if (p) g_nMalloc++;
  return p;
}
static void *count_realloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (p == NULL && q != NULL) g_nMalloc++;
  return q;
}
static void count_free(void *p) {
  if (p) g_nFree++;
  free(p);
}

TEST(custom_allocator) {
  g_nBad = 0;
  PROBE("custom_allocator", {
    CHILD_CHECK("set_allocator", quay_set_allocator(count_malloc,
                count_realloc, count_free) == QUAY_OK);
    CHILD_CHECK("roundtrip", roundtrip("sqlite::memory:") == 0);
    if (g_nMalloc != g_nFree) {
      fprintf(stderr, "custom_allocator: %ld blocks, %ld freed\n", g_nMalloc,
              g_nFree);
    }
    CHILD_CHECK("used", g_nMalloc > 100);
    CHILD_CHECK("balanced", g_nMalloc == g_nFree);
  });
  if (g_nBad) FAIL("%d probe(s) failed", g_nBad);
  return 0;
}

TEST(capi_roundtrip) {
  const char *zPg = getenv("QUAY_PG_URL");
  if (roundtrip("sqlite::memory:") != 0) return 1;
  if (zPg && *zPg) {
    if (roundtrip(zPg) != 0) FAIL("on PostgreSQL (QUAY_PG_URL)");
  } else {
    printf("capi_roundtrip: QUAY_PG_URL not set, PostgreSQL skipped\n");
  }
  return 0;
}

/*
** Real failures (not NULL arguments): each sets its out-parameter to NULL
** and fills the quay_err with the code, and model / field where the
** error is about one.
*/
TEST(out_params_on_failure) {
  static const quay_field_spec aNote[] = {
    {.zName = "text", .eType = QUAY_T_STRING}};
  static const quay_field_spec aBad[] = {
    {.zName = "x", .eType = QUAY_T_INTEGER},
    {.zName = "x", .eType = QUAY_T_INTEGER}};
  quay_db *db = NULL;
  quay_model *m = NULL, *pBad = (quay_model *)&db;
  quay_qs *q = NULL, *q2 = (quay_qs *)&db;
  quay_cursor *pCur = (quay_cursor *)&db;
  quay_plan *pPlan = (quay_plan *)&db;
  quay_result *pRes = (quay_result *)&db;
  quay_schema *pS = (quay_schema *)&db;
  quay_migration *pMig = (quay_migration *)&db;
  quay_counts *pC = (quay_counts *)&db;
  quay_cond *pCond = NULL;
  quay_expr *pX = (quay_expr *)&db;
  quay_err e;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(quay_model_declare(db, "Note", aNote, 1, NULL, 0, &m, &e), e);
  ASSERT_CODE(quay_model_declare(db, "Bad", aBad, 2, NULL, 0, &pBad, &e),
              QUAY_EDECLARATION);
  ASSERT(pBad == NULL);
  ASSERT(quay_db_model(db, "Bad") == NULL);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_qs_new(m, &q, &e), e);

  ASSERT_CODE(quay_qs_where(q, "txt", quay_value_int(1), &q2, &e),
              QUAY_EUNKNOWN_FIELD);
  ASSERT(q2 == NULL);
  ASSERT_CONTAINS(e.zMsg, "txt");
  ASSERT_CODE(quay_qs_where(q, "text__nope", quay_value_int(1), &q2, &e),
              QUAY_EBAD_LOOKUP);
  ASSERT(q2 == NULL);
  ASSERT_CODE(quay_qs_load(q, "nope", QUAY_LOAD_BATCH, NULL, NULL, &q2, &e),
              QUAY_EUNKNOWN_RELATION);
  ASSERT(q2 == NULL);
  q2 = (quay_qs *)&db;
  ASSERT_CODE(quay_qs_load(q, "nope", 42, NULL, NULL, &q2, &e),
              QUAY_EMISUSE);
  ASSERT(q2 == NULL);
  ASSERT_CONTAINS(e.zMsg, "QUAY_LOAD_JOIN");
  ASSERT_CODE(quay_db_query(db, "SELEKT 1", NULL, 0, &pCur, &e), QUAY_ESQL);
  ASSERT(pCur == NULL);
  ASSERT(e.zMsg[0] != 0);
  /* Expression names are checked when a query set takes them. */
  ASSERT_OK(quay_expr_col("nope", &pX, &e), e);
  q2 = (quay_qs *)&db;
  ASSERT(quay_qs_annotate(q, "n", pX, &q2, &e) != QUAY_OK);
  ASSERT(q2 == NULL);
  ASSERT_CONTAINS(e.zMsg, "nope");
  ASSERT_CODE(quay_cond_group(77, &pCond, &e), QUAY_EMISUSE);
  ASSERT(pCond == NULL);

  /* A closed connection: connection, out-parameters NULL. */
  quay_db_disconnect(db);
  ASSERT(!quay_db_is_open(db));
  ASSERT_CODE(quay_qs_fetch(q, db, &pRes, &e), QUAY_ECONNECTION);
  ASSERT(pRes == NULL);
  ASSERT_CODE(quay_qs_delete(q, db, 0, &pC, &e), QUAY_ECONNECTION);
  ASSERT(pC == NULL);
  ASSERT_CODE(quay_db_inspect(db, &pS, &e), QUAY_ECONNECTION);
  ASSERT(pS == NULL);
  ASSERT_CODE(quay_db_schema_diff(db, &pMig, &e), QUAY_ECONNECTION);
  ASSERT(pMig == NULL);
  ASSERT_CODE(quay_db_query(db, "SELECT 1", NULL, 0, &pCur, &e),
              QUAY_ECONNECTION);
  ASSERT(pCur == NULL);
  /* A plan needs no connection. */
  ASSERT_OK(quay_plan_new(q, &pPlan, &e), e);
  ASSERT(quay_plan_sql(pPlan, NULL, NULL) != NULL);
  quay_plan_free(pPlan);
  ASSERT_OK(quay_db_reopen(db, &e), e);
  ASSERT(quay_db_is_open(db));
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}
