/*
** engine/test/t_crud.c
** The engine's C API on its own (no Lua): write, read, prefetch, cascade.
** See LICENSE
*/
#include "tharness.h"

static int setup(quay_db **pDb, quay_model **pU, quay_model **pP,
                 quay_err *e) {
  quay_field_spec f;
  quay_rel_spec r;
  int rc = quay_db_open("sqlite::memory:", NULL, pDb, e);
  if (!rc) rc = quay_model_new(*pDb, "User", NULL, NULL, pU, e);
  if (!rc) rc = quay_model_new(*pDb, "Post", NULL, NULL, pP, e);
  memset(&f, 0, sizeof(f));
  f.eType = QUAY_T_STRING;
  f.zName = "name";
  if (!rc) rc = quay_model_add_field(*pU, &f, e);
  f.zName = "title";
  if (!rc) rc = quay_model_add_field(*pP, &f, e);
  memset(&r, 0, sizeof(r));
  r.eKind = QUAY_R_BELONGS_TO;
  r.zName = "author";
  r.zTarget = "User";
  r.zRelatedName = "posts";
  r.eOnDelete = QUAY_CASCADE;
  if (!rc) rc = quay_model_add_relation(*pP, &r, e);
  if (!rc) rc = quay_db_create_tables(*pDb, e);
  return rc;
}

/* Insert n users with 3 posts each; returns rc. */
static int fill(quay_db *db, quay_model *u, quay_model *p, int n,
                quay_err *e) {
  quay_writer *wu = NULL, *wp = NULL;
  int i, k, rc;
  char z[32];
  rc = quay_writer_new(db, u, &wu, e);
  if (!rc) rc = quay_writer_new(db, p, &wp, e);
  if (!rc) rc = quay_db_begin(db, e);
  for (i = 0; !rc && i < n; i++) {
    quay_value v, id;
    snprintf(z, sizeof(z), "user%d", i);
    v.type = QUAY_TEXT;
    v.u.z = z;
    v.n = strlen(z);
    quay_writer_reset(wu);
    rc = quay_writer_set(wu, 1, &v, e);
    if (!rc) rc = quay_writer_insert(wu, e);
    quay_writer_value(wu, 0, &id);
    for (k = 0; !rc && k < 3; k++) {
      quay_writer_reset(wp);
      rc = quay_writer_set(wp, 1, &v, e);
      if (!rc) rc = quay_writer_set(wp, 2, &id, e);
      if (!rc) rc = quay_writer_insert(wp, e);
    }
  }
  if (!rc) {
    rc = quay_db_commit(db, e);
  } else if (quay_db_txn_depth(db)) {
    quay_err e2;
    quay_db_rollback(db, &e2);
  }
  quay_writer_free(wu);
  quay_writer_free(wp);
  return rc;
}

/*
** A sink in plain C (what another binding would write): records are
** counted per slot, to-many attachments checked for their owner.
*/
typedef struct CSink {
  int anRec[8];
  int nAttach, nChild;
  int bad;
} CSink;

static int cs_record(void *pCtx, int iSlot, quay_cursor *pCur, int iFirst,
                     int iKeyCol) {
  CSink *k = pCtx;
  quay_value v;
  (void)iFirst;
  quay_cursor_value(pCur, iKeyCol, &v);
  if (iSlot < 0 || iSlot >= 8 || v.type != QUAY_INT) k->bad++;
  else k->anRec[iSlot]++;
  return 0;
}

static int cs_one(void *pCtx, int iSlot, int iRec, const quay_attach *pAt,
                  int iChildSlot, int iChild) {
  CSink *k = pCtx;
  (void)iSlot; (void)iRec; (void)pAt; (void)iChildSlot; (void)iChild;
  k->bad++;                           /* no to-one level in this plan */
  return 0;
}

static int cs_many(void *pCtx, int iSlot, int iRec, const quay_attach *pAt,
                   int iChildSlot, const int *aiChild, int nChild) {
  CSink *k = pCtx;
  int i;
  if (iSlot != 0 || iChildSlot != 1 || strcmp(pAt->zName, "posts") != 0 ||
      iRec >= k->anRec[0]) {
    k->bad++;
  }
  for (i = 0; i < nChild; i++) {
    if (aiChild[i] < 0 || aiChild[i] >= k->anRec[1]) k->bad++;
  }
  k->nAttach++;
  k->nChild += nChild;
  return 0;
}

static int cs_extra(void *pCtx, int iSlot, int iRec, const char *zName,
                    const quay_value *pVal) {
  (void)iSlot; (void)iRec; (void)zName; (void)pVal;
  ((CSink *)pCtx)->bad++;
  return 0;
}

static const quay_sink csink = { cs_record, cs_one, cs_many, cs_extra };

TEST(write_read_prefetch) {
  quay_db *db;
  quay_model *u, *p;
  quay_err e;
  quay_qs *q, *q2;
  quay_plan *plan;
  quay_load *ld;
  quay_slot_info si;
  CSink k;
  int64_t before;
  ASSERT_OK(setup(&db, &u, &p, &e), e);
  ASSERT_OK(fill(db, u, p, 50, &e), e);
  ASSERT_OK(quay_qs_new(u, &q, &e), e);
  ASSERT_OK(quay_qs_load(q, "posts", QUAY_LOAD_BATCH, NULL, NULL, &q2, &e), e);
  ASSERT_OK(quay_plan_new(q2, &plan, &e), e);
  ASSERT_EQ(quay_plan_nslot(plan), 2);
  quay_plan_slot(plan, 1, &si);
  ASSERT(si.pModel == p);
  memset(&k, 0, sizeof(k));
  before = quay_db_query_count(db);
  ASSERT_OK(quay_load_open(plan, db, 0, &ld, &e), e);
  ASSERT_EQ(quay_load_next(ld, 0, &csink, &k, &e), QUAY_DONE);
  quay_load_free(ld);
  ASSERT_EQ(k.bad, 0);
  ASSERT_EQ(k.anRec[0], 50);
  ASSERT_EQ(k.anRec[1], 150);
  ASSERT_EQ(k.nAttach, 50);           /* every owner, once */
  ASSERT_EQ(k.nChild, 150);
  ASSERT_EQ(quay_db_query_count(db) - before, 2);
  /* The same in chunks of 7 owners: each chunk is a result of its own. */
  memset(&k, 0, sizeof(k));
  {
    int rc, nCall = 0;
    ASSERT_OK(quay_load_open(plan, db, 1, &ld, &e), e);
    do {
      int nBefore = k.anRec[0];
      rc = quay_load_next(ld, 7, &csink, &k, &e);
      ASSERT(rc == QUAY_ROW || rc == QUAY_DONE);
      ASSERT(k.anRec[0] - nBefore <= 7);
      memset(k.anRec, 0, sizeof(k.anRec));   /* slots restart per call */
      nCall++;
    } while (rc == QUAY_ROW);
    quay_load_free(ld);
    ASSERT(nCall >= 8);
    ASSERT_EQ(k.nAttach, 50);
    ASSERT_EQ(k.nChild, 150);
  }
  quay_plan_free(plan);
  quay_qs_free(q2);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

TEST(cascade_counts) {
  quay_db *db;
  quay_model *u, *p;
  quay_err e;
  quay_qs *q;
  quay_counts *c;
  int i;
  int64_t n;
  ASSERT_OK(setup(&db, &u, &p, &e), e);
  ASSERT_OK(fill(db, u, p, 10, &e), e);
  ASSERT_OK(quay_qs_new(u, &q, &e), e);
  ASSERT_OK(quay_qs_delete(q, db, 1, &c, &e), e);     /* dry run */
  for (i = 0; i < quay_counts_n(c); i++) {
    if (strcmp(quay_counts_name(c, i), "Post") == 0) {
      ASSERT_EQ(quay_counts_value(c, i), 30);
    }
  }
  quay_counts_free(c);
  ASSERT_OK(quay_qs_count(q, db, &n, &e), e);
  ASSERT_EQ(n, 10);
  ASSERT_OK(quay_qs_delete(q, db, 0, &c, &e), e);
  ASSERT_EQ(quay_counts_n(c), 2);
  quay_counts_free(c);
  ASSERT_OK(quay_qs_count(q, db, &n, &e), e);
  ASSERT_EQ(n, 0);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

/*
** Delete hooks in plain C: the observer sees the rows of marked models
** only, before then after, and a failing observer undoes the delete.
*/
typedef struct HookLog {
  quay_model *pWatch;
  int nBefore, nAfter, nOther, nFailAt;
  int aiRow[16];
  char azTitle[16][16];
} HookLog;

static int hook_observer(void *pArg, int eWhen, quay_model *m, int iRow,
                         const quay_value *aField) {
  HookLog *h = pArg;
  if (m != h->pWatch) {
    h->nOther++;
    return 0;
  }
  if (eWhen == QUAY_BEFORE_DELETE) {
    if (h->nBefore < 16) {
      h->aiRow[h->nBefore] = iRow;
      snprintf(h->azTitle[h->nBefore], 16, "%.*s", (int)aField[1].n,
               aField[1].u.z);
    }
    h->nBefore++;
  } else {
    /* The same rows, by number, after they are gone. */
    if (iRow < 16 && strncmp(h->azTitle[iRow], aField[1].u.z,
                             aField[1].n) != 0) {
      return 1;
    }
    h->nAfter++;
    if (h->nAfter == h->nFailAt) return 1;
  }
  return 0;
}

TEST(delete_hooks) {
  quay_db *db;
  quay_model *u, *p;
  quay_err e;
  quay_counts *c;
  quay_value k;
  HookLog h;
  int64_t n;
  quay_qs *q;
  memset(&h, 0, sizeof(h));
  ASSERT_OK(setup(&db, &u, &p, &e), e);
  ASSERT_OK(fill(db, u, p, 3, &e), e);
  h.pWatch = p;
  quay_model_set_delete_hooks(p, 1);
  ASSERT_EQ(quay_model_delete_hooks(p), 1);
  ASSERT_EQ(quay_model_delete_hooks(u), 0);
  quay_db_on_delete(db, hook_observer, &h);
  k.type = QUAY_INT;
  k.u.i = 1;
  /* A failing observer (the second after call): nothing is deleted. */
  h.nFailAt = 2;
  ASSERT_EQ(quay_delete_keys(db, u, &k, 1, 0, &c, &e), QUAY_ECALLBACK);
  ASSERT(c == NULL);
  ASSERT_OK(quay_qs_new(p, &q, &e), e);
  ASSERT_OK(quay_qs_count(q, db, &n, &e), e);
  ASSERT_EQ(n, 9);
  /* Then it passes: the user's 3 posts, rows 0..2, before and after. */
  memset(&h, 0, sizeof(h));
  h.pWatch = p;
  ASSERT_OK(quay_delete_keys(db, u, &k, 1, 0, &c, &e), e);
  ASSERT_EQ(h.nBefore, 3);
  ASSERT_EQ(h.nAfter, 3);
  ASSERT_EQ(h.nOther, 0);                  /* User has no hooks */
  ASSERT_EQ(h.aiRow[0], 0);
  ASSERT_EQ(h.aiRow[2], 2);
  ASSERT(quay_counts_deleted_at(c) == NULL);
  quay_counts_free(c);
  ASSERT_OK(quay_qs_count(q, db, &n, &e), e);
  ASSERT_EQ(n, 6);
  /* Dry runs call no hook; unknown flags are misuse. */
  memset(&h, 0, sizeof(h));
  h.pWatch = p;
  ASSERT_OK(quay_qs_delete(q, db, QUAY_DELETE_DRY_RUN, &c, &e), e);
  ASSERT_EQ(h.nBefore, 0);
  quay_counts_free(c);
  ASSERT_EQ(quay_qs_delete(q, db, 0x40, &c, &e), QUAY_EMISUSE);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

TEST(soft_delete_writes) {
  quay_db *db;
  quay_model *m;
  quay_field_spec f;
  quay_writer *w = NULL;
  quay_err e;
  quay_counts *c;
  quay_value v, k;
  quay_qs *q, *qa;
  int64_t n;
  ASSERT_OK(quay_db_open("sqlite::memory:", NULL, &db, &e), e);
  ASSERT_OK(quay_model_new(db, "Note", NULL, NULL, &m, &e), e);
  memset(&f, 0, sizeof(f));
  f.eType = QUAY_T_STRING;
  f.zName = "body";
  ASSERT_OK(quay_model_add_field(m, &f, &e), e);
  ASSERT_OK(quay_model_set_soft_delete(m, &e), e);
  ASSERT_OK(quay_db_create_tables(db, &e), e);
  ASSERT_OK(quay_writer_new(db, m, &w, &e), e);
  v.type = QUAY_TEXT;
  v.u.z = "x";
  v.n = 1;
  ASSERT_OK(quay_writer_set(w, 1, &v, &e), e);
  ASSERT_OK(quay_writer_insert(w, &e), e);
  quay_writer_value(w, 0, &k);
  quay_writer_free(w);
  ASSERT_OK(quay_delete_keys(db, m, &k, 1, 0, &c, &e), e);
  ASSERT_EQ(quay_counts_n(c), 1);
  ASSERT_EQ(quay_counts_value(c, 0), 1);
  ASSERT(quay_counts_deleted_at(c) != NULL);
  ASSERT_EQ(strlen(quay_counts_deleted_at(c)), 19);
  quay_counts_free(c);
  ASSERT_OK(quay_qs_new(m, &q, &e), e);
  ASSERT_OK(quay_qs_count(q, db, &n, &e), e);
  ASSERT_EQ(n, 0);
  ASSERT_OK(quay_qs_with_deleted(q, QUAY_DELETED_INCLUDE, &qa, &e), e);
  ASSERT_OK(quay_qs_count(qa, db, &n, &e), e);
  ASSERT_EQ(n, 1);
  /* Again: nothing to mark. */
  ASSERT_OK(quay_delete_keys(db, m, &k, 1, 0, &c, &e), e);
  ASSERT_EQ(quay_counts_n(c), 0);
  quay_counts_free(c);
  ASSERT_OK(quay_delete_keys(db, m, &k, 1, QUAY_DELETE_HARD, &c, &e), e);
  ASSERT_EQ(quay_counts_n(c), 1);
  ASSERT(quay_counts_deleted_at(c) == NULL);
  quay_counts_free(c);
  ASSERT_OK(quay_qs_count(qa, db, &n, &e), e);
  ASSERT_EQ(n, 0);
  quay_qs_free(qa);
  quay_qs_free(q);
  quay_db_free(db);
  return 0;
}

#ifdef QUAY_TEST
/*
** OOM sweep (libuv test-loop-oom, SQLite faultsim): fail allocation k for
** k = 1, 2, ... over a whole scenario.  Every run must end in QUAY_OK or
** QUAY_ENOMEM, leave no block allocated, and the sweep ends when a run
** completes without reaching the failure point.
*/
static int scenario(quay_err *e) {
  quay_db *db = NULL;
  quay_model *u, *p;
  quay_qs *q = NULL, *q2 = NULL;
  quay_plan *plan = NULL;
  quay_counts *c = NULL;
  int rc = setup(&db, &u, &p, e);
  if (!rc) rc = fill(db, u, p, 5, e);
  if (!rc) rc = quay_qs_new(u, &q, e);
  if (!rc) rc = quay_qs_load(q, "posts", QUAY_LOAD_BATCH, NULL, NULL, &q2, e);
  if (!rc) rc = quay_plan_new(q2, &plan, e);
  if (!rc) {
    quay_load *ld = NULL;
    CSink k;
    memset(&k, 0, sizeof(k));
    rc = quay_load_open(plan, db, 0, &ld, e);
    if (!rc) rc = quay_load_next(ld, 0, &csink, &k, e);
    if (rc == QUAY_DONE) rc = QUAY_OK;
    quay_load_free(ld);
  }
  if (!rc) rc = quay_qs_delete(q, db, 0, &c, e);
  quay_counts_free(c);
  quay_plan_free(plan);
  quay_qs_free(q2);
  quay_qs_free(q);
  quay_db_free(db);
  return rc;
}

TEST(oom_sweep) {
  quay_err e;
  long k;
  long base = quay_test_alloc_live();
  int nFail = 0;
  for (k = 1; k < 100000; k++) {
    int rc;
    quay_test_fail_alloc(k, 1);
    rc = scenario(&e);
    quay_test_fail_alloc(0, 0);
    ASSERT_EQ(quay_test_alloc_live(), base);
    if (rc == QUAY_OK) break;
    /* The engine's own allocations fail with nomem; SQLite's own memory
    ** is not injected here, so other codes would be bugs. */
    if (rc != QUAY_ENOMEM) FAIL("k=%ld: %s (%s)", k, quay_errname(rc), e.zMsg);
    nFail++;
  }
  ASSERT(nFail > 50);
  printf("oom sweep: %d failure points walked\n", nFail);
  return 0;
}
#endif

/* SELECT count(*) FROM posts, or -1. */
static long long count_posts(quay_db *db) {
  quay_cursor *c = NULL;
  quay_err e;
  quay_value v;
  long long n = -1;
  if (quay_db_query(db, "SELECT count(*) FROM posts", NULL, 0, &c, &e) ==
          QUAY_OK &&
      quay_cursor_step(c, &e) == QUAY_ROW) {
    quay_cursor_value(c, 0, &v);
    if (v.type == QUAY_INT) n = v.u.i;
  }
  quay_cursor_close(c);
  return n;
}

/*
** Queue n posts of author *pAuthor (row iBad, if >= 0, gets author 999)
** through a bulk insert (quay_writer_bulk_begin), flushing per
** quay_writer_batch rows; then commit.  Returns the commit's rc (or the
** first failure); *pnStmt gets the statements sent meanwhile.
*/
static int bulk_posts(quay_db *db, quay_model *p, const quay_value *pAuthor,
                      int n, int iBad, int bFreeFirst, long long *pnStmt,
                      quay_err *e) {
  quay_writer *w = NULL;
  int rc, i, bBegun = 0, nBatch;
  long long q0 = quay_db_query_count(db);
  quay_value t, bad;
  t.type = QUAY_TEXT;
  t.u.z = "bulk";
  t.n = 4;
  bad.type = QUAY_INT;
  bad.u.i = 999;
  rc = quay_writer_new(db, p, &w, e);
  if (!rc) rc = quay_writer_bulk_begin(w, n, &bBegun, e);
  if (!rc && !bBegun) rc = QUAY_ESQL;          /* SQLite must take it */
  nBatch = rc ? 1 : quay_writer_batch(w);
  for (i = 0; !rc && i < n; i++) {
    quay_writer_reset(w);
    rc = quay_writer_set(w, 1, &t, e);
    if (!rc) rc = quay_writer_set(w, 2, i == iBad ? &bad : pAuthor, e);
    if (!rc) rc = quay_writer_queue(w, e);
    if (!rc && (quay_writer_queued(w) == nBatch || i == n - 1)) {
      rc = quay_writer_flush(w, e);
    }
  }
  if (!rc && bFreeFirst) {
    quay_writer_free(w);                       /* rolls the rows back */
    w = NULL;
    rc = quay_db_txn_depth(db) == 0 ? QUAY_EMISUSE : QUAY_ESQL;
  }
  if (!rc) {
    rc = quay_db_commit(db, e);
  } else if (quay_db_txn_depth(db)) {
    quay_err e2;
    quay_db_rollback(db, &e2);
  }
  *pnStmt = quay_db_query_count(db) - q0;
  quay_writer_free(w);
  return rc;
}

TEST(bulk_insert) {
  quay_db *db = NULL;
  quay_model *u, *p;
  quay_writer *w = NULL;
  quay_err e;
  quay_value name, author;
  long long nStmt = 0;
  int rc;
  ASSERT_OK(setup(&db, &u, &p, &e), e);
  name.type = QUAY_TEXT;
  name.u.z = "ann";
  name.n = 3;
  ASSERT_OK(quay_writer_new(db, u, &w, &e), e);
  ASSERT_OK(quay_writer_set(w, 1, &name, &e), e);
  ASSERT_OK(quay_writer_insert(w, &e), e);
  quay_writer_value(w, 0, &author);
  quay_writer_free(w);
  /* A row whose author does not exist: integrity at the commit, naming
  ** the relation; nothing written. */
  rc = bulk_posts(db, p, &author, 200, 130, 0, &nStmt, &e);
  ASSERT_EQ(rc, QUAY_EINTEGRITY);
  ASSERT_CONTAINS(e.zMsg, "Post.author refers to a User row");
  ASSERT_CONTAINS(e.zMsg, "posts.author_id = 999");
  ASSERT_EQ(quay_db_txn_depth(db), 0);
  ASSERT_EQ(count_posts(db), 0);
  /* The connection checks keys again. */
  rc = quay_db_execute(db, "INSERT INTO posts (title, author_id) VALUES "
                       "('x', 999)", NULL, 0, NULL, &e);
  ASSERT_EQ(rc, QUAY_EINTEGRITY);
  /* Freeing the writer before the commit rolls its rows back. */
  rc = bulk_posts(db, p, &author, 100, -1, 1, &nStmt, &e);
  ASSERT_EQ(rc, QUAY_EMISUSE);
  ASSERT_EQ(count_posts(db), 0);
  /* Good rows: a few statements for 200 rows, all written. */
  ASSERT_OK(bulk_posts(db, p, &author, 200, -1, 0, &nStmt, &e), e);
  ASSERT_EQ(count_posts(db), 200);
  ASSERT(nStmt < 20);
  rc = quay_db_execute(db, "INSERT INTO posts (title, author_id) VALUES "
                       "('x', 999)", NULL, 0, NULL, &e);
  ASSERT_EQ(rc, QUAY_EINTEGRITY);
  quay_db_free(db);
  return 0;
}
