/*
** fuzz/fuzz_cond.c
** libFuzzer harness: the condition / lookup compiler and the loading
** planner.
** See LICENSE
**
** Input layout: byte 0 picks the operation (filter, exclude, order_by,
** select_related, prefetch_related, with, with_count, where_has, pluck),
** byte 1 the value kind; then a path up to the first '\n', then the value
** text.  Oracles:
**   - a path holding byte 0x01 names nothing: the operation must fail;
**   - every value is bound: the marker "\x01V" never appears in SQL text;
**   - every accepted query must run: plan + execute must not fail with a
**     SQL error (a builder bug), on a real in-memory schema with data.
*/
#include "quay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static quay_db *pDb;
static quay_model *aM[8];

static void die(const char *z, const quay_err *e) {
  fprintf(stderr, "%s: %s\n", z, e ? e->zMsg : "");
  abort();
}

static void field(quay_model *m, const char *z, int t, unsigned fl) {
  quay_field_spec s;
  quay_err e;
  memset(&s, 0, sizeof(s));
  s.zName = z;
  s.eType = t;
  s.mFlags = fl;
  if (quay_model_add_field(m, &s, &e)) die("field", &e);
}

static void rel(quay_model *m, const char *z, int k, const char *zT,
                const char *zRelated, const char *zThrough,
                const char *const *azPath, int nPath) {
  quay_rel_spec s;
  quay_err e;
  memset(&s, 0, sizeof(s));
  s.zName = z;
  s.eKind = k;
  s.zTarget = zT;
  s.zRelatedName = zRelated;
  s.zThrough = zThrough;
  s.azPath = azPath;
  s.nPath = nPath;
  s.eOnDelete = QUAY_CASCADE;
  if (k == QUAY_R_HAS_MANY) {
    s.zForeignKey = "owner_id";
    s.eOnDelete = 0;
  }
  if (quay_model_add_relation(m, &s, &e)) die("relation", &e);
}

static void setup(void) {
  static const char *azName[] = {"User", "Profile", "Post", "Tag",
                                 "Comment", "Media", "PostTag"};
  static const char *azThru[] = {"posts", "comments"};
  quay_err e;
  int i;
  if (quay_db_open("sqlite::memory:", NULL, &pDb, &e)) die("open", &e);
  for (i = 0; i < 7; i++) {
    if (quay_model_new(pDb, azName[i], NULL, NULL, &aM[i], &e)) die("model", &e);
  }
  field(aM[0], "name", QUAY_T_STRING, 0);
  field(aM[0], "email", QUAY_T_STRING, QUAY_F_UNIQUE | QUAY_F_NULL);
  field(aM[0], "score", QUAY_T_NUMBER, QUAY_F_NULL);
  field(aM[0], "active", QUAY_T_BOOLEAN, QUAY_F_NULL);
  field(aM[0], "seen", QUAY_T_DATETIME, QUAY_F_NULL);
  rel(aM[0], "my_comments", QUAY_R_THROUGH, NULL, NULL, NULL, azThru, 2);
  rel(aM[0], "media", QUAY_R_HAS_MANY, "Media", NULL, NULL, NULL, 0);
  rel(aM[1], "user", QUAY_R_ONE_TO_ONE, "User", "profile", NULL, NULL, 0);
  field(aM[1], "bio", QUAY_T_TEXT, QUAY_F_NULL);
  field(aM[2], "title", QUAY_T_STRING, 0);
  field(aM[2], "views", QUAY_T_INTEGER, QUAY_F_NULL);
  field(aM[2], "data", QUAY_T_BLOB, QUAY_F_NULL);
  rel(aM[2], "author", QUAY_R_BELONGS_TO, "User", "posts", NULL, NULL, 0);
  rel(aM[2], "tags", QUAY_R_MANY_TO_MANY, "Tag", "posts", NULL, NULL, 0);
  rel(aM[2], "ptags", QUAY_R_MANY_TO_MANY, "Tag", "pposts", "PostTag", NULL, 0);
  rel(aM[2], "parent", QUAY_R_BELONGS_TO, "self", "children", NULL, NULL, 0);
  field(aM[3], "name", QUAY_T_STRING, 0);
  rel(aM[4], "post", QUAY_R_BELONGS_TO, "Post", "comments", NULL, NULL, 0);
  field(aM[4], "body", QUAY_T_TEXT, 0);
  field(aM[5], "url", QUAY_T_STRING, 0);
  rel(aM[6], "post", QUAY_R_BELONGS_TO, "Post", NULL, NULL, NULL, 0);
  rel(aM[6], "tag", QUAY_R_BELONGS_TO, "Tag", NULL, NULL, NULL, 0);
  field(aM[6], "rank", QUAY_T_INTEGER, QUAY_F_NULL);
  if (quay_db_create_tables(pDb, &e)) die("create", &e);
  if (quay_db_execute(pDb,
        "INSERT INTO users (name, email, score) VALUES ('a','a@x',1.5),"
        "('b','b@x',2); INSERT INTO tags (name) VALUES ('t1'),('t2');",
        NULL, 0, NULL, &e)) {
    die("data", &e);
  }
  quay_db_execute(pDb, "INSERT INTO posts (title, views, author_id) VALUES "
                  "('p1', 1, 1), ('p2', 2, 2)", NULL, 0, NULL, &e);
  quay_db_execute(pDb, "INSERT INTO posts_tags (post_id, tag_id) VALUES "
                  "(1, 1), (2, 2), (1, 2)", NULL, 0, NULL, &e);
  quay_db_execute(pDb, "INSERT INTO comments (post_id, body) VALUES (1, 'c')",
                  NULL, 0, NULL, &e);
}

/* A sink that only checks what it is handed. */
static int fz_record(void *c, int iSlot, quay_cursor *pCur, int iFirst,
                     int iKey) {
  quay_value v;
  (void)c; (void)iSlot; (void)iFirst;
  quay_cursor_value(pCur, iKey, &v);
  if (v.type == QUAY_NULL) die("record without a key", NULL);
  return 0;
}
static int fz_one(void *c, int s, int r, const quay_attach *a, int cs,
                  int ci) {
  (void)c; (void)s; (void)r; (void)a; (void)cs; (void)ci;
  return 0;
}
static int fz_many(void *c, int s, int r, const quay_attach *a, int cs,
                   const int *ac, int n) {
  (void)c; (void)s; (void)r; (void)a; (void)cs; (void)ac; (void)n;
  return 0;
}
static int fz_extra(void *c, int s, int r, const char *z,
                    const quay_value *v) {
  (void)c; (void)s; (void)r; (void)z; (void)v;
  return 0;
}
static const quay_sink fzsink = { fz_record, fz_one, fz_many, fz_extra };

/* Run the plan of q to completion; a SQL error is a builder bug. */
static void run_plan(quay_qs *q) {
  quay_plan *p;
  quay_load *ld;
  quay_err e;
  int rc, i;
  const char *zSql;
  quay_explain_info x;
  if (quay_plan_new(q, &p, &e)) {
    if (e.code == QUAY_ESQL) die("plan", &e);
    return;
  }
  zSql = quay_plan_sql(p, NULL, NULL);
  if (zSql && strstr(zSql, "\x01V")) die("value reached SQL text", NULL);
  for (i = 0; quay_plan_explain(p, i, &x) == QUAY_OK; i++) {
    if (strstr(x.zSql, "\x01V")) die("value reached step SQL", NULL);
  }
  if (quay_load_open(p, pDb, 0, &ld, &e) == QUAY_OK) {
    rc = quay_load_next(ld, 0, &fzsink, NULL, &e);
    if (rc != QUAY_DONE) die("load failed", &e);
    quay_load_free(ld);
  } else if (e.code == QUAY_ESQL) {
    die("open", &e);
  }
  {
    int64_t n;
    int b;
    if (quay_qs_count(q, pDb, &n, &e) && e.code == QUAY_ESQL) die("count", &e);
    if (quay_qs_exists(q, pDb, &b, &e) && e.code == QUAY_ESQL) die("exists", &e);
  }
  quay_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char zPath[512];
  char zText[512];
  quay_value aList[3], v;
  quay_qs *q, *q2 = NULL;
  quay_cond *g, *leaf;
  quay_err e;
  size_t i, n;
  int op, kind, rc, iModel;
  if (pDb == NULL) setup();
  if (size < 3) return 0;
  op = data[0] % 10;
  kind = data[1] % 7;
  iModel = data[2] % 7;
  data += 3;
  size -= 3;
  for (i = 0; i < size && data[i] != '\n' && i < sizeof(zPath) - 1; i++) {
    zPath[i] = (char)data[i];
  }
  zPath[i] = 0;
  n = size > i ? size - i - 1 : 0;
  if (n > sizeof(zText) - 3) n = sizeof(zText) - 3;
  zText[0] = 1;
  zText[1] = 'V';
  if (n) memcpy(zText + 2, data + i + 1, n);
  memset(&v, 0, sizeof(v));
  switch (kind) {
    case 0: v.type = QUAY_NULL; break;
    case 1: v.type = QUAY_INT; v.u.i = (int64_t)(n * 7919) - 3; break;
    case 2: v.type = QUAY_REAL; v.u.r = (double)n / 3.0; break;
    case 3: v.type = QUAY_TEXT; v.u.z = zText; v.n = n + 2; break;
    case 4: v.type = QUAY_BOOL; v.u.b = n & 1; break;
    case 5:
      aList[0].type = QUAY_INT; aList[0].u.i = 1;
      aList[1].type = QUAY_TEXT; aList[1].u.z = zText; aList[1].n = n + 2;
      aList[2].type = QUAY_NULL;
      v.type = QUAY_LIST; v.u.a = aList; v.n = n % 4;
      break;
    default:
      aList[0].type = QUAY_INT; aList[0].u.i = 1;
      aList[1].type = QUAY_INT; aList[1].u.i = 2;
      v.type = QUAY_LIST; v.u.a = aList; v.n = 2;
      break;
  }
  if (quay_qs_new(aM[iModel], &q, &e)) die("qs", &e);
  switch (op) {
    case 0: case 1: case 2:
      if (quay_cond_group(op == 2 ? QUAY_C_OR : QUAY_C_AND, &g, &e)) return 0;
      if (quay_cond_leaf(zPath, &v, &leaf, &e)) {
        quay_cond_free(g);
        break;
      }
      quay_cond_add(g, leaf, &e);
      rc = quay_qs_filter(q, g, op == 1, &q2, &e);
      break;
    case 3: {
      const char *az[1];
      az[0] = zPath;
      rc = quay_qs_order_by(q, az, 1, &q2, &e);
      break;
    }
    case 4: rc = quay_qs_load(q, zPath, QUAY_LOAD_JOIN, NULL, NULL, &q2, &e); break;
    case 5: rc = quay_qs_load(q, zPath, QUAY_LOAD_BATCH, NULL, NULL, &q2, &e); break;
    case 6: rc = quay_qs_load(q, zPath, QUAY_LOAD_AUTO, NULL, NULL, &q2, &e); break;
    case 7: rc = quay_qs_with_count(q, zPath, &q2, &e); break;
    case 8: rc = quay_qs_where_has(q, zPath, NULL, NULL, n & 1, &q2, &e); break;
    default: {
      quay_cursor *c;
      rc = quay_qs_pluck(q, pDb, zPath, &c, &e);
      if (rc == QUAY_OK) {
        while ((rc = quay_cursor_step(c, &e)) == QUAY_ROW) {}
        if (rc != QUAY_DONE) die("pluck", &e);
        quay_cursor_close(c);
        if (strchr(zPath, 1)) die("a marked name was accepted", NULL);
      } else if (e.code == QUAY_ESQL) {
        die("pluck sql", &e);
      }
      quay_qs_free(q);
      return 0;
    }
  }
  if (op <= 8 && q2) {
    if (strchr(zPath, 1)) die("a marked name was accepted", NULL);
    run_plan(q2);
    quay_qs_free(q2);
  } else if (e.code == QUAY_ESQL) {
    die("builder", &e);
  }
  quay_qs_free(q);
  return 0;
}
