/*
** engine/test/t_types.c
** The field-type table through the C API: names and flags, decimals
** (exact text in, scaled integers on SQLite, exact sums out), generated
** uuids, JSON documents.
** See LICENSE
*/
#include "tharness.h"

/* A model "Item" (id, price decimal(10, 2), ref uuid, data json null). */
static int item_db(quay_db **pDb, quay_model **pM, quay_err *e) {
  quay_field_spec s;
  int rc = quay_db_open("sqlite::memory:", NULL, pDb, e);
  if (!rc) rc = quay_model_new(*pDb, "Item", NULL, NULL, pM, e);
  memset(&s, 0, sizeof(s));
  s.zName = "price";
  s.eType = QUAY_T_DECIMAL;
  s.nDigits = 10;
  s.nPlaces = 2;
  s.rSeq = 1;
  if (!rc) rc = quay_model_add_field(*pM, &s, e);
  memset(&s, 0, sizeof(s));
  s.zName = "ref";
  s.eType = QUAY_T_UUID;
  s.rSeq = 2;
  if (!rc) rc = quay_model_add_field(*pM, &s, e);
  memset(&s, 0, sizeof(s));
  s.zName = "data";
  s.eType = QUAY_T_JSON;
  s.mFlags = QUAY_F_NULL;
  s.rSeq = 3;
  if (!rc) rc = quay_model_add_field(*pM, &s, e);
  if (!rc) rc = quay_model_finish(*pM, e);
  if (!rc) rc = quay_db_create_tables(*pDb, e);
  return rc;
}

static quay_value text(const char *z, int type) {
  quay_value v;
  v.type = type;
  v.u.z = z;
  v.n = strlen(z);
  return v;
}

TEST(type_table) {
  int t;
  for (t = QUAY_T_ID; t <= QUAY_T_LAST; t++) {
    ASSERT(quay_type_name(t) != NULL);
    ASSERT_EQ(quay_type_by_name(quay_type_name(t)), t);
  }
  ASSERT(quay_type_name(0) == NULL);
  ASSERT(quay_type_name(QUAY_T_LAST + 1) == NULL);
  ASSERT_EQ(quay_type_by_name("nope"), 0);
  ASSERT(quay_type_flags(QUAY_T_DECIMAL) & QUAY_TF_NUMERIC);
  ASSERT(quay_type_flags(QUAY_T_DECIMAL) & QUAY_TF_PRECISION);
  ASSERT(!(quay_type_flags(QUAY_T_JSON) & QUAY_TF_ORDERED));
  ASSERT(quay_type_flags(QUAY_T_DATE) & QUAY_TF_DATE);
  ASSERT(quay_type_flags(QUAY_T_UUID) & QUAY_TF_GENERATED);
  ASSERT(quay_type_flags(QUAY_T_UUID) & QUAY_TF_KEY);
  return 0;
}

TEST(decimal_values) {
  quay_db *db;
  quay_model *m;
  quay_writer *w = NULL;
  quay_err e;
  quay_value v, got;
  quay_qs *q = NULL;
  quay_expr *pSum = NULL;
  quay_cursor *c = NULL;
  const char *azName[1] = { "s" };
  static const struct { const char *zIn; const char *zOut; } aCase[] = {
    { "12.5", "12.50" }, { "-0.01", "-0.01" }, { "-0", "0.00" },
    { "0099999999.99", "99999999.99" }, { "-.5", "-0.50" },
  };
  static const char *const azBad[] = { "1.005", "1e2", "x", "123456789", "" };
  int i;
  ASSERT_OK(item_db(&db, &m, &e), e);
  ASSERT_OK(quay_writer_new(db, m, &w, &e), e);
  for (i = 0; i < (int)(sizeof(aCase) / sizeof(aCase[0])); i++) {
    quay_writer_reset(w);
    v = text(aCase[i].zIn, QUAY_TEXT);
    ASSERT_OK(quay_writer_set(w, 1, &v, &e), e);
    ASSERT_OK(quay_writer_insert(w, &e), e);
    quay_writer_value(w, 1, &got);
    ASSERT_EQ(got.type, QUAY_DECIMAL);
    ASSERT_EQ(got.n, strlen(aCase[i].zOut));
    ASSERT(memcmp(got.u.z, aCase[i].zOut, got.n) == 0);
  }
  for (i = 0; i < (int)(sizeof(azBad) / sizeof(azBad[0])); i++) {
    v = text(azBad[i], QUAY_TEXT);
    ASSERT_CODE(quay_writer_set(w, 1, &v, &e), QUAY_EVALIDATION);
    ASSERT_STR_EQ(e.zModel, "Item");
    ASSERT_STR_EQ(e.zField, "price");
  }
  v.type = QUAY_REAL;
  v.u.r = 0.1;
  ASSERT_OK(quay_writer_set(w, 1, &v, &e), e);
  v.u.r = 0.125;
  ASSERT_CODE(quay_writer_set(w, 1, &v, &e), QUAY_EVALIDATION);
  /* The exact sum, as decimal text (SQLite sums scaled integers). */
  ASSERT_OK(quay_qs_new(m, &q, &e), e);
  ASSERT_OK(quay_expr_agg(QUAY_AGG_SUM, "price", NULL, 0, NULL, &pSum, &e), e);
  ASSERT_OK(quay_qs_aggregate(q, db, azName, &pSum, 1, &c, &e), e);
  ASSERT_EQ(quay_cursor_step(c, &e), QUAY_ROW);
  quay_cursor_value(c, 0, &got);
  ASSERT_EQ(got.type, QUAY_DECIMAL);
  ASSERT(got.n == 12 && memcmp(got.u.z, "100000011.98", 12) == 0);
  quay_cursor_close(c);
  quay_expr_free(pSum);
  quay_qs_free(q);
  quay_writer_free(w);
  quay_db_free(db);
  return 0;
}

TEST(uuid_and_json) {
  quay_db *db;
  quay_model *m;
  quay_writer *w = NULL;
  quay_err e;
  quay_value v, got;
  ASSERT_OK(item_db(&db, &m, &e), e);
  ASSERT_OK(quay_writer_new(db, m, &w, &e), e);
  v = text("1.00", QUAY_TEXT);
  ASSERT_OK(quay_writer_set(w, 1, &v, &e), e);
  v = text("{\"a\": [1, 2.5, null]}", QUAY_JSON);
  ASSERT_OK(quay_writer_set(w, 3, &v, &e), e);
  ASSERT_OK(quay_writer_insert(w, &e), e);
  quay_writer_value(w, 2, &got);               /* generated: version 7 */
  ASSERT_EQ(got.type, QUAY_TEXT);
  ASSERT_EQ(got.n, 36);
  ASSERT(got.u.z[14] == '7');
  ASSERT(strchr("89ab", got.u.z[19]) != NULL);
  quay_writer_value(w, 3, &got);
  ASSERT_EQ(got.type, QUAY_JSON);
  /* A string becomes a JSON string; a malformed document is refused. */
  v = text("say \"hi\"", QUAY_TEXT);
  ASSERT_OK(quay_writer_set(w, 3, &v, &e), e);
  quay_writer_value(w, 3, &got);
  ASSERT_EQ(got.type, QUAY_JSON);
  ASSERT(got.n == 12 && memcmp(got.u.z, "\"say \\\"hi\\\"\"", 12) == 0);
  v = text("{\"a\": ", QUAY_JSON);
  ASSERT_CODE(quay_writer_set(w, 3, &v, &e), QUAY_EVALIDATION);
  ASSERT_STR_EQ(e.zField, "data");
  v = text("{\"a\": 1, \"a\": 2}", QUAY_JSON);
  ASSERT_CODE(quay_writer_set(w, 3, &v, &e), QUAY_EVALIDATION);
  v = text("0190A3F2-1B2C-7D4E-8F50-0123456789AB", QUAY_TEXT);
  ASSERT_OK(quay_writer_set(w, 2, &v, &e), e);
  quay_writer_value(w, 2, &got);
  ASSERT(memcmp(got.u.z, "0190a3f2-1b2c-7d4e-8f50-0123456789ab", 36) == 0);
  v = text("0190a3f2-1b2c-7d4e-8f50", QUAY_TEXT);
  ASSERT_CODE(quay_writer_set(w, 2, &v, &e), QUAY_EVALIDATION);
  ASSERT_STR_EQ(e.zField, "ref");
  /* A JSON document is not a value of a decimal field. */
  v = text("1", QUAY_JSON);
  ASSERT_OK(quay_writer_set(w, 1, &v, &e), e);
  ASSERT_CODE(quay_writer_insert(w, &e), QUAY_EVALIDATION);
  quay_writer_free(w);
  quay_db_free(db);
  return 0;
}
