/*
** test/packaging/consumer/main.c
** Built by find_package(quay) against an installed copy: the header and
** the library agree on the version, and the C API works.
** See LICENSE
*/
#include <quay.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  quay_db *db;
  quay_cursor *cur;
  quay_value v;
  quay_err err;
  int ok;
  if (argc < 2) return 2;
  ok = strcmp(quay_libversion(), QUAY_VERSION) == 0 &&
       strcmp(quay_libversion(), argv[1]) == 0 &&
       quay_libversion_number() == QUAY_VERSION_NUMBER;
  if (!ok) {
    fprintf(stderr, "consumer: library %s (%d), header %s (%d), want %s\n",
            quay_libversion(), quay_libversion_number(), QUAY_VERSION,
            QUAY_VERSION_NUMBER, argv[1]);
    return 1;
  }
  if (quay_db_open("sqlite::memory:", NULL, &db, &err) != QUAY_OK ||
      quay_db_query(db, "SELECT 40 + 2", NULL, 0, &cur, &err) != QUAY_OK) {
    fprintf(stderr, "consumer: %s\n", err.zMsg);
    return 1;
  }
  ok = quay_cursor_step(cur, &err) == QUAY_ROW;
  quay_cursor_value(cur, 0, &v);
  ok = ok && v.type == QUAY_INT && v.u.i == 42;
  quay_cursor_close(cur);
  quay_db_free(db);
  printf("consumer: quay %s via find_package: %s\n", quay_libversion(),
         ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
