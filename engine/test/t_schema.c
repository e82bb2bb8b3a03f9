/*
** engine/test/t_schema.c
** Schema registry and relation graph: names, rules, resolution.
** See LICENSE
*/
#include "tharness.h"

static quay_model *model(quay_db *db, const char *zName, quay_err *e) {
  quay_model *m = NULL;
  quay_model_new(db, zName, NULL, NULL, &m, e);
  return m;
}

static int add_field(quay_model *m, const char *z, int eType, unsigned fl,
                     double seq, quay_err *e) {
  quay_field_spec s;
  memset(&s, 0, sizeof(s));
  s.zName = z;
  s.eType = eType;
  s.mFlags = fl;
  s.rSeq = seq;
  return quay_model_add_field(m, &s, e);
}

static int add_rel(quay_model *m, const char *z, int eKind, const char *zT,
                   int eOnDelete, unsigned fl, const char *zRelated,
                   quay_err *e) {
  quay_rel_spec s;
  memset(&s, 0, sizeof(s));
  s.zName = z;
  s.eKind = eKind;
  s.zTarget = zT;
  s.eOnDelete = eOnDelete;
  s.mFlags = fl;
  s.zRelatedName = zRelated;
  return quay_model_add_relation(m, &s, e);
}

TEST(snake_case_tables) {
  quay_db *db;
  quay_err e;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_STR_EQ(quay_model_table(model(db, "PostTag", &e)), "post_tags");
  ASSERT_STR_EQ(quay_model_table(model(db, "HTTPRequest", &e)),
                "http_requests");
  ASSERT_STR_EQ(quay_model_table(model(db, "MR", &e)), "mrs");
  ASSERT_STR_EQ(quay_model_table(model(db, "User2Profile", &e)),
                "user2_profiles");
  quay_db_free(db);
  return 0;
}

TEST(declaration_errors) {
  quay_db *db;
  quay_err e;
  quay_model *m;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  m = model(db, "User", &e);
  ASSERT(m != NULL);
  ASSERT_OK(add_field(m, "name", QUAY_T_STRING, 0, 1, &e), e);
  ASSERT_CODE(add_field(m, "name", QUAY_T_TEXT, 0, 2, &e), QUAY_EDECLARATION);
  ASSERT_CONTAINS(e.zMsg, "name");
  ASSERT_CODE(add_field(m, "bad name", QUAY_T_TEXT, 0, 3, &e),
              QUAY_EDECLARATION);
  ASSERT_CODE(add_field(m, "a__b", QUAY_T_TEXT, 0, 3, &e), QUAY_EDECLARATION);
  ASSERT_CODE(quay_model_new(db, "User", NULL, NULL, &m, &e),
              QUAY_EDECLARATION);
  ASSERT(m == NULL);
  /* SET_NULL needs null = true. */
  m = model(db, "Post", &e);
  ASSERT_CODE(add_rel(m, "author", QUAY_R_BELONGS_TO, "User", QUAY_SET_NULL,
                      0, NULL, &e), QUAY_EDECLARATION);
  ASSERT_CONTAINS(e.zMsg, "SET_NULL");
  /* The failed relation left no column behind. */
  ASSERT_EQ(quay_model_member(m, "author_id", &(int){0}), QUAY_M_NONE);
  ASSERT_OK(add_rel(m, "author", QUAY_R_BELONGS_TO, "Usr", 0, 0, NULL, &e), e);
  ASSERT_CODE(quay_db_resolve(db, &e), QUAY_EDECLARATION);
  ASSERT_CONTAINS(e.zMsg, "Usr");
  ASSERT_CONTAINS(e.zMsg, "author");
  quay_db_free(db);
  return 0;
}

TEST(reverse_name_collision) {
  quay_db *db;
  quay_err e;
  quay_model *u, *p, *c;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  u = model(db, "User", &e);
  p = model(db, "Post", &e);
  c = model(db, "Comment", &e);
  ASSERT_OK(add_rel(p, "author", QUAY_R_BELONGS_TO, "User", 0, 0, "items",
                    &e), e);
  ASSERT_OK(add_rel(c, "author", QUAY_R_BELONGS_TO, "User", 0, 0, "items",
                    &e), e);
  ASSERT_CODE(quay_db_resolve(db, &e), QUAY_EDECLARATION);
  ASSERT_CONTAINS(e.zMsg, "Post.author");
  ASSERT_CONTAINS(e.zMsg, "Comment.author");
  (void)u;
  quay_db_free(db);
  return 0;
}

TEST(implicit_id_and_order) {
  quay_db *db;
  quay_err e;
  quay_model *m;
  quay_field_info f;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  m = model(db, "Item", &e);
  ASSERT_OK(add_field(m, "b", QUAY_T_TEXT, 0, 20, &e), e);
  ASSERT_OK(add_field(m, "a", QUAY_T_TEXT, 0, 10, &e), e);
  ASSERT_OK(quay_db_resolve(db, &e), e);
  ASSERT_EQ(quay_model_field_count(m), 3);
  quay_model_field(m, 0, &f);
  ASSERT_STR_EQ(f.zName, "id");
  quay_model_field(m, 1, &f);
  ASSERT_STR_EQ(f.zName, "a");
  quay_model_field(m, 2, &f);
  ASSERT_STR_EQ(f.zName, "b");
  quay_db_free(db);
  return 0;
}
