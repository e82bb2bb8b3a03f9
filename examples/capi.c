/*
** examples/capi.c
** The engine's C API without Lua: declare three models, write rows by
** field name, run a filtered, ordered, joined query and a two-level
** prefetch, and read the records the engine assembled.
** See LICENSE
**
**   capi
**
** docs/embedding.md shows this program (its ```c block is this file's
** body, checked by the test docs.embedding); example.capi runs it from
** the build tree, and install.capi builds it against an installed copy
** and runs it under valgrind.  Exit status: 0 when every result is the
** expected one, 1 otherwise.
*/
#include <quay.h>

#include <stdio.h>
#include <string.h>

#define CHECK(call) do { if ((call) != QUAY_OK) { fprintf(stderr, \
  "%s: %s (%s)\n", #call, err.zMsg, quay_errname(err.code)); return 1; } \
  } while (0)

/* The models: Author, Book (belongs to an author), Review (to a book). */
static const quay_field_spec author_f[] = {
  {.zName = "name", .eType = QUAY_T_STRING}};
static const quay_field_spec book_f[] = {
  {.zName = "title", .eType = QUAY_T_STRING},
  {.zName = "year", .eType = QUAY_T_INTEGER}};
static const quay_rel_spec book_r[] = {
  {.zName = "author", .eKind = QUAY_R_BELONGS_TO, .zTarget = "Author",
   .zRelatedName = "books"}};
static const quay_field_spec review_f[] = {
  {.zName = "stars", .eType = QUAY_T_INTEGER}};
static const quay_rel_spec review_r[] = {
  {.zName = "book", .eKind = QUAY_R_BELONGS_TO, .zTarget = "Book",
   .zRelatedName = "reviews"}};

static const char *const authors[] = {"Ada", "Roberto", "Richard"};
static const struct { const char *title; int year, author; } books[] = {
  {"Notes", 1843, 0}, {"Programming in Lua", 2016, 1},
  {"Lua Gems", 2008, 1}, {"SQLite Internals", 2021, 2}};

int main(void) {
  quay_db *db;
  quay_model *author, *book, *review;
  quay_writer *w;
  quay_qs *q[4];
  quay_result *res;
  quay_err err;
  quay_value id;
  int64_t author_id[3];
  const char *order[] = {"-year"};
  char line[512] = "";
  int i, j, k;

  CHECK(quay_db_open("sqlite::memory:", NULL, &db, &err));
  CHECK(quay_model_declare(db, "Author", author_f, 1, NULL, 0, &author, &err));
  CHECK(quay_model_declare(db, "Book", book_f, 2, book_r, 1, &book, &err));
  CHECK(quay_model_declare(db, "Review", review_f, 1, review_r, 1, &review,
                           &err));
  CHECK(quay_db_create_tables(db, &err));

  /* Rows by field name; the generated keys come back by name too. */
  CHECK(quay_writer_new(db, author, &w, &err));
  for (i = 0; i < 3; i++) {
    quay_writer_reset(w);
    CHECK(quay_writer_put(w, "name", quay_value_text(authors[i]), &err));
    CHECK(quay_writer_insert(w, &err));
    CHECK(quay_writer_get(w, "id", &id, &err));
    author_id[i] = id.u.i;
  }
  quay_writer_free(w);
  CHECK(quay_writer_new(db, book, &w, &err));
  for (i = 0; i < 4; i++) {
    quay_writer_reset(w);
    CHECK(quay_writer_put(w, "title", quay_value_text(books[i].title), &err));
    CHECK(quay_writer_put(w, "year", quay_value_int(books[i].year), &err));
    CHECK(quay_writer_put(w, "author",
                          quay_value_int(author_id[books[i].author]), &err));
    CHECK(quay_writer_insert(w, &err));
  }
  quay_writer_free(w);
  CHECK(quay_writer_new(db, review, &w, &err));
  for (i = 0; i < 6; i++) {                   /* books 1, 2, 3: 2 reviews */
    quay_writer_reset(w);
    CHECK(quay_writer_put(w, "book", quay_value_int(2 + i / 2), &err));
    CHECK(quay_writer_put(w, "stars", quay_value_int(3 + i % 3), &err));
    CHECK(quay_writer_insert(w, &err));
  }
  quay_writer_free(w);

  /* Books of authors whose name starts with "R", newest first, each with
  ** its author JOINed in: one query. */
  CHECK(quay_qs_new(book, &q[0], &err));
  CHECK(quay_qs_where(q[0], "author__name__startswith", quay_value_text("R"),
                      &q[1], &err));
  CHECK(quay_qs_order_by(q[1], order, 1, &q[2], &err));
  CHECK(quay_qs_load(q[2], "author", QUAY_LOAD_JOIN, NULL, NULL, &q[3], &err));
  CHECK(quay_qs_fetch(q[3], db, &res, &err));
  for (i = 0; i < quay_result_count(res); i++) {
    const quay_rec *b = quay_result_rec(res, i);
    printf("%s (%d) by %s\n", quay_rec_text(b, "title"),
           (int)quay_rec_int(b, "year"),
           quay_rec_text(quay_rec_one(b, "author"), "name"));
  }
  k = quay_result_count(res);
  quay_result_free(res);
  for (i = 3; i >= 0; i--) quay_qs_free(q[i]);

  /* Every author with their books and the books' reviews: a two-level
  ** prefetch, three queries whatever the number of rows. */
  CHECK(quay_qs_new(author, &q[0], &err));
  CHECK(quay_qs_load(q[0], "books__reviews", QUAY_LOAD_BATCH, NULL, NULL,
                     &q[1], &err));
  CHECK(quay_qs_fetch(q[1], db, &res, &err));
  for (i = 0; i < quay_result_count(res); i++) {
    const quay_rec *a = quay_result_rec(res, i), *const *bs, *const *rs;
    int nb, nr;
    CHECK(quay_rec_related(a, "books", &bs, &nb, &err));
    for (j = 0; j < nb; j++) {
      CHECK(quay_rec_related(bs[j], "reviews", &rs, &nr, &err));
      snprintf(line + strlen(line), sizeof line - strlen(line), "%s/%s:%d ",
               quay_rec_text(a, "name"), quay_rec_text(bs[j], "title"), nr);
    }
  }
  quay_result_free(res);
  quay_qs_free(q[1]);
  quay_qs_free(q[0]);
  printf("%s\n", line);
  quay_db_free(db);
  return k == 3 && strcmp(line, "Ada/Notes:0 Roberto/Programming in Lua:2 "
                          "Roberto/Lua Gems:2 Richard/SQLite Internals:2 ")
                       == 0 ? 0 : 1;
}
