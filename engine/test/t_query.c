/*
** engine/test/t_query.c
** SQL builder and loader: semi-joins, grouping, bound values, key sets.
** See LICENSE
*/
#include "tharness.h"
#include "quayInt.h"          /* key sets are internal */

/* Blog schema: User <- Post -> tags (m2m Tag), Post <- Comment. */
static int blog(quay_db **pDb, quay_model **aM, quay_err *e) {
  static const char *azModel[] = {"User", "Post", "Tag", "Comment"};
  quay_field_spec f;
  quay_rel_spec r;
  int i, rc;
  rc = quay_db_open("sqlite::memory:", NULL, pDb, e);
  if (rc) return rc;
  for (i = 0; i < 4; i++) {
    rc = quay_model_new(*pDb, azModel[i], NULL, NULL, &aM[i], e);
    if (rc) return rc;
  }
  memset(&f, 0, sizeof(f));
  f.eType = QUAY_T_STRING;
  f.zName = "email";
  rc = quay_model_add_field(aM[0], &f, e);
  f.zName = "title";
  if (!rc) rc = quay_model_add_field(aM[1], &f, e);
  f.zName = "name";
  if (!rc) rc = quay_model_add_field(aM[2], &f, e);
  f.zName = "body";
  if (!rc) rc = quay_model_add_field(aM[3], &f, e);
  memset(&r, 0, sizeof(r));
  r.eKind = QUAY_R_BELONGS_TO;
  r.zName = "author";
  r.zTarget = "User";
  r.zRelatedName = "posts";
  r.eOnDelete = QUAY_CASCADE;
  if (!rc) rc = quay_model_add_relation(aM[1], &r, e);
  r.zName = "post";
  r.zTarget = "Post";
  r.zRelatedName = "comments";
  if (!rc) rc = quay_model_add_relation(aM[3], &r, e);
  memset(&r, 0, sizeof(r));
  r.eKind = QUAY_R_MANY_TO_MANY;
  r.zName = "tags";
  r.zTarget = "Tag";
  r.zRelatedName = "posts";
  if (!rc) rc = quay_model_add_relation(aM[1], &r, e);
  if (!rc) rc = quay_db_create_tables(*pDb, e);
  return rc;
}

static int leaf(quay_cond *g, const char *z, const quay_value *v,
                quay_err *e) {
  quay_cond *c;
  int rc = quay_cond_leaf(z, v, &c, e);
  if (rc) return rc;
  return quay_cond_add(g, c, e);
}

TEST(to_many_semi_join) {
  quay_db *db;
  quay_model *aM[4];
  quay_err e;
  quay_qs *q, *q2;
  quay_cond *g;
  quay_plan *p;
  quay_value v;
  const char *zSql;
  const quay_value *aP;
  int nP;
  ASSERT_OK(blog(&db, aM, &e), e);
  ASSERT_OK(quay_qs_new(aM[0], &q, &e), e);
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &g, &e), e);
  v.type = QUAY_TEXT;
  v.u.z = "lua";
  v.n = 3;
  ASSERT_OK(leaf(g, "posts__tags__name", &v, &e), e);
  v.u.z = "x'); DROP TABLE users; --";
  v.n = strlen(v.u.z);
  ASSERT_OK(leaf(g, "posts__comments__body__contains", &v, &e), e);
  ASSERT_OK(quay_qs_filter(q, g, 0, &q2, &e), e);
  ASSERT_OK(quay_plan_new(q2, &p, &e), e);
  zSql = quay_plan_sql(p, &aP, &nP);
  /* Owners never duplicated: no JOIN in the main query. */
  ASSERT(strstr(zSql, "JOIN \"posts\"") == NULL);
  /* One subquery for the shared first hop (posts). */
  {
    const char *z = zSql;
    int n = 0;
    while ((z = strstr(z, "FROM \"posts\"")) != NULL) {
      n++;
      z++;
    }
    ASSERT_EQ(n, 1);
  }
  ASSERT(strstr(zSql, "DROP TABLE") == NULL);
  ASSERT_EQ(nP, 2);
  quay_plan_free(p);
  quay_qs_free(q2);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

TEST(bad_names) {
  quay_db *db;
  quay_model *aM[4];
  quay_err e;
  quay_qs *q, *q2 = NULL;
  quay_cond *g;
  quay_value v;
  ASSERT_OK(blog(&db, aM, &e), e);
  ASSERT_OK(quay_qs_new(aM[1], &q, &e), e);
  v.type = QUAY_INT;
  v.u.i = 1;
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &g, &e), e);
  ASSERT_OK(leaf(g, "author__nickname", &v, &e), e);
  ASSERT_CODE(quay_qs_filter(q, g, 0, &q2, &e), QUAY_EUNKNOWN_FIELD);
  ASSERT(q2 == NULL);
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &g, &e), e);
  ASSERT_OK(leaf(g, "title__foo", &v, &e), e);
  ASSERT_CODE(quay_qs_filter(q, g, 0, &q2, &e), QUAY_EBAD_LOOKUP);
  ASSERT_CODE(quay_qs_load(q, "comments", QUAY_LOAD_JOIN, NULL, NULL, &q2, &e),
              QUAY_EBAD_LOOKUP);
  ASSERT_CODE(quay_qs_load(q, "nope", QUAY_LOAD_BATCH, NULL, NULL, &q2, &e),
              QUAY_EUNKNOWN_RELATION);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

/*
** Trees built through the C API may nest to any depth: quay_qs_filter
** refuses one deeper than QUAY_MAX_COND_DEPTH with misuse (no unbounded
** recursion), and freeing one never recurses.
*/
TEST(deep_conditions) {
  quay_db *db;
  quay_model *aM[4];
  quay_err e;
  quay_qs *q, *q2 = NULL;
  quay_cond *pRoot, *g;
  quay_value v;
  int i;
  ASSERT_OK(blog(&db, aM, &e), e);
  ASSERT_OK(quay_qs_new(aM[1], &q, &e), e);
  v.type = QUAY_TEXT;
  v.u.z = "x";
  v.n = 1;
  /* 200,000 groups, each inside the previous one */
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &pRoot, &e), e);
  g = pRoot;
  for (i = 0; i < 200000; i++) {
    quay_cond *c;
    ASSERT_OK(quay_cond_group(i % 2 ? QUAY_C_AND : QUAY_C_OR, &c, &e), e);
    ASSERT_OK(quay_cond_add(g, c, &e), e);
    g = c;
  }
  ASSERT_OK(leaf(g, "title", &v, &e), e);
  ASSERT_CODE(quay_qs_filter(q, pRoot, 0, &q2, &e), QUAY_EMISUSE);
  ASSERT(q2 == NULL);
  ASSERT_CONTAINS(e.zMsg, "QUAY_MAX_COND_DEPTH");
  /* freed without recursion, unbound */
  ASSERT_OK(quay_cond_group(QUAY_C_OR, &pRoot, &e), e);
  g = pRoot;
  for (i = 0; i < 200000; i++) {
    quay_cond *c;
    ASSERT_OK(quay_cond_group(QUAY_C_NOT, &c, &e), e);
    ASSERT_OK(quay_cond_add(g, c, &e), e);
    g = c;
  }
  quay_cond_free(pRoot);
  /* At the limit: accepted, and the SQL parses */
  ASSERT_OK(quay_cond_group(QUAY_C_AND, &pRoot, &e), e);
  g = pRoot;
  for (i = 1; i < QUAY_MAX_COND_DEPTH; i++) {
    quay_cond *c;
    ASSERT_OK(quay_cond_group(i % 2 ? QUAY_C_OR : QUAY_C_AND, &c, &e), e);
    ASSERT_OK(quay_cond_add(g, c, &e), e);
    ASSERT_OK(leaf(g, "title", &v, &e), e);
    g = c;
  }
  ASSERT_OK(leaf(g, "title", &v, &e), e);
  ASSERT_OK(quay_qs_filter(q, pRoot, 0, &q2, &e), e);
  {
    int64_t n = -1;
    ASSERT_OK(quay_qs_count(q2, db, &n, &e), e);
    ASSERT_EQ(n, 0);
  }
  quay_qs_free(q2);
  /* Too wide */
  ASSERT_OK(quay_cond_group(QUAY_C_OR, &pRoot, &e), e);
  for (i = 0; i <= QUAY_MAX_COND_WIDTH; i++) {
    ASSERT_OK(leaf(pRoot, "title", &v, &e), e);
  }
  ASSERT_CODE(quay_qs_filter(q, pRoot, 0, &q2, &e), QUAY_EMISUSE);
  ASSERT_CONTAINS(e.zMsg, "QUAY_MAX_COND_WIDTH");
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

TEST(keyset) {
  quay_keyset *ks;
  quay_err e;
  quay_value v;
  int i, idx;
  ASSERT_OK(quay_keyset_new(&ks, &e), e);
  v.type = QUAY_INT;
  for (i = 0; i < 10000; i++) {
    v.u.i = i % 5000;
    ASSERT_OK(quay_keyset_add(ks, &v, &idx, &e), e);
    ASSERT_EQ(idx, i % 5000);
  }
  ASSERT_EQ(quay_keyset_count(ks), 5000);
  v.type = QUAY_TEXT;
  v.u.z = "abc";
  v.n = 3;
  ASSERT_OK(quay_keyset_add(ks, &v, &idx, &e), e);
  ASSERT_EQ(idx, 5000);
  ASSERT_EQ(quay_keyset_find(ks, &v), 5000);
  v.type = QUAY_REAL;
  v.u.r = 42.0;
  ASSERT_EQ(quay_keyset_find(ks, &v), 42);
  v.type = QUAY_NULL;
  ASSERT_OK(quay_keyset_add(ks, &v, &idx, &e), e);
  ASSERT_EQ(idx, -1);
  quay_keyset_free(ks);
  return 0;
}

/* Annotate a set with a count over zPath named zName (no filter). */
static int count_ann(quay_qs **pq, const char *zName, int eFn,
                     const char *zPath, quay_err *e) {
  quay_expr *x;
  quay_qs *q2;
  int rc = quay_expr_agg(eFn, zPath, NULL, 0, NULL, &x, e);
  if (rc) return rc;
  rc = quay_qs_annotate(*pq, zName, x, &q2, e);
  if (rc) return rc;
  quay_qs_free(*pq);
  *pq = q2;
  return QUAY_OK;
}

/* The integer columns 1..n of the rows of a values set, row after row. */
static int read_ints(quay_qs *q, quay_db *db, int64_t *a, int nMax, int *pn,
                     quay_err *e) {
  quay_cursor *c;
  int rc = quay_qs_rows(q, db, 0, &c, e), k, n = 0;
  if (rc) return rc;
  while ((rc = quay_cursor_step(c, e)) == QUAY_ROW) {
    for (k = 1; k < quay_cursor_ncol(c) && n < nMax; k++) {
      quay_value v;
      quay_cursor_value(c, k, &v);
      a[n++] = v.type == QUAY_INT ? v.u.i : v.type == QUAY_BOOL ? v.u.b : -1;
    }
  }
  quay_cursor_close(c);
  *pn = n;
  return rc == QUAY_DONE ? QUAY_OK : rc;
}

/*
** Grouped annotations (sqlbuild.c "Aggregates of a scope") leave soft-
** deleted rows out, and what is reached only through them: the same
** answers as the correlated form, per record and per values group.
*/
TEST(grouped_soft_delete) {
  static const char *const azSql[] = {
    "INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "INSERT INTO posts (id, title, author_id, deleted_at) VALUES"
    " (1, 'p1', 1, NULL), (2, 'p2', 1, '2024-01-01 00:00:00'),"
    " (3, 'p3', 2, '2024-01-01 00:00:00'), (4, 'p4', 2, NULL),"
    " (5, 'p5', 2, NULL)",
    "INSERT INTO comments (body, post_id) VALUES ('x', 1), ('y', 2),"
    " ('z', 2), ('w', 3), ('v', 4)",
  };
  /* per user: posts, comments on them, any post (exists) */
  static const int64_t aWant[] = {1, 1, 1, 2, 1, 1, 0, 0, 0};
  static const char *const azCol[] = {"email", "n", "nc", "ex"};
  quay_expr *apCol[4] = {NULL, NULL, NULL, NULL};
  quay_db *db;
  quay_model *aM[4];
  quay_err e;
  quay_qs *q, *qv, *q2;
  quay_plan *p;
  quay_field_spec f;
  quay_rel_spec r;
  int64_t a[16];
  int i, n;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(quay_model_new(db, "User", NULL, NULL, &aM[0], &e), e);
  ASSERT_OK(quay_model_new(db, "Post", NULL, NULL, &aM[1], &e), e);
  ASSERT_OK(quay_model_new(db, "Comment", NULL, NULL, &aM[2], &e), e);
  memset(&f, 0, sizeof(f));
  f.eType = QUAY_T_STRING;
  f.zName = "email";
  ASSERT_OK(quay_model_add_field(aM[0], &f, &e), e);
  f.zName = "title";
  ASSERT_OK(quay_model_add_field(aM[1], &f, &e), e);
  f.zName = "body";
  ASSERT_OK(quay_model_add_field(aM[2], &f, &e), e);
  ASSERT_OK(quay_model_set_soft_delete(aM[1], &e), e);
  memset(&r, 0, sizeof(r));
  r.eKind = QUAY_R_BELONGS_TO;
  r.eOnDelete = QUAY_CASCADE;
  r.zName = "author";
  r.zTarget = "User";
  r.zRelatedName = "posts";
  ASSERT_OK(quay_model_add_relation(aM[1], &r, &e), e);
  r.zName = "post";
  r.zTarget = "Post";
  r.zRelatedName = "comments";
  ASSERT_OK(quay_model_add_relation(aM[2], &r, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  for (i = 0; i < 3; i++) {
    ASSERT_OK(quay_db_execute(db, azSql[i], NULL, 0, NULL, &e), e);
  }
  ASSERT_OK(quay_qs_new(aM[0], &q, &e), e);
  ASSERT_OK(count_ann(&q, "n", QUAY_AGG_COUNT, "posts", &e), e);
  ASSERT_OK(count_ann(&q, "nc", QUAY_AGG_COUNT, "posts__comments", &e), e);
  ASSERT_OK(count_ann(&q, "ex", QUAY_AGG_EXISTS, "posts", &e), e);
  /* The records' statement: grouped, the hidden rows' terms inside. */
  ASSERT_OK(quay_plan_new(q, &p, &e), e);
  ASSERT_CONTAINS(quay_plan_sql(p, NULL, NULL), "LEFT JOIN (SELECT");
  ASSERT_CONTAINS(quay_plan_sql(p, NULL, NULL), "\"deleted_at\" IS NULL");
  quay_plan_free(p);
  /* Per record (values of the annotated rows: the same scope). */
  ASSERT_OK(quay_qs_order_by(q, azCol, 1, &q2, &e), e);
  ASSERT_OK(quay_qs_values(q2, azCol, apCol, 4, &qv, &e), e);
  quay_qs_free(q2);
  ASSERT_OK(read_ints(qv, db, a, 16, &n, &e), e);
  ASSERT_EQ(n, 9);
  for (i = 0; i < 9; i++) ASSERT_EQ(a[i], aWant[i]);
  quay_qs_free(qv);
  quay_qs_free(q);
  /* Per values group: the partials of a to-many aggregate. */
  ASSERT_OK(quay_qs_new(aM[0], &q, &e), e);
  ASSERT_OK(quay_qs_order_by(q, azCol, 1, &q2, &e), e);
  ASSERT_OK(quay_qs_values(q2, azCol, apCol, 1, &qv, &e), e);
  quay_qs_free(q2);
  quay_qs_free(q);
  ASSERT_OK(count_ann(&qv, "n", QUAY_AGG_COUNT, "posts", &e), e);
  ASSERT_OK(count_ann(&qv, "nc", QUAY_AGG_COUNT, "posts__comments", &e), e);
  ASSERT_OK(count_ann(&qv, "ex", QUAY_AGG_EXISTS, "posts", &e), e);
  ASSERT_OK(read_ints(qv, db, a, 16, &n, &e), e);
  ASSERT_EQ(n, 9);
  for (i = 0; i < 9; i++) ASSERT_EQ(a[i], aWant[i]);
  quay_qs_free(qv);
  quay_db_free(db);
  return 0;
}
