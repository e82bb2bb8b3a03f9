/*
** scripts/throughput/raw.c
** The raw sqlite3 C loop of scripts/throughput: insert N rows with one
** prepared INSERT in one transaction, then read them all back (step and
** read every column), printing rows per second for each.
** See LICENSE
*/
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int i, n = argc > 2 ? atoi(argv[2]) : 100000;
  long long sum = 0;
  double t0, t1;
  char title[64];
  if (argc < 2 || sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE |
                                  SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                  NULL) != SQLITE_OK) {
    fprintf(stderr, "usage: raw <db> [n]\n");
    return 2;
  }
  sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
               "PRAGMA foreign_keys = ON;", NULL, NULL, NULL);
  t0 = now();
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO \"items\" (\"title\", \"views\", "
                     "\"score\") VALUES (?, ?, ?)", -1, &st, NULL);
  for (i = 0; i < n; i++) {
    int k = snprintf(title, sizeof(title), "item number %d", i);
    sqlite3_bind_text(st, 1, title, k, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, i % 1000);
    sqlite3_bind_double(st, 3, i * 0.5);
    if (sqlite3_step(st) != SQLITE_DONE) return 1;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  t1 = now();
  printf("raw insert %d rows: %.3f s, %.0f rows/s\n", n, t1 - t0,
         n / (t1 - t0));
  t0 = now();
  sqlite3_prepare_v2(db, "SELECT \"id\", \"title\", \"views\", \"score\" FROM "
                     "\"items\" ORDER BY \"id\"", -1, &st, NULL);
  i = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    sum += sqlite3_column_int64(st, 0) + sqlite3_column_bytes(st, 1) +
           sqlite3_column_int64(st, 2) + (long long)sqlite3_column_double(st, 3);
    i++;
  }
  sqlite3_finalize(st);
  t1 = now();
  printf("raw read   %d rows: %.3f s, %.0f rows/s (checksum %lld)\n", i,
         t1 - t0, i / (t1 - t0), sum);
  sqlite3_close(db);
  return 0;
}
