/*
** scripts/benchmark/floor_util.h
** Helpers shared by the two floor programs (floor.c for SQLite, floor_pg.c
** for PostgreSQL): errors, clocks, /proc readings, the file of Quay's
** recorded SQL, key lists and the Lua-building primitives.  Every function
** is static: each program includes this once.  See LICENSE
*/
#ifndef QUAY_BENCH_FLOOR_UTIL_H
#define QUAY_BENCH_FLOOR_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_UNUSED __attribute__((unused))
#ifndef FLOOR_NAME
#define FLOOR_NAME "quay_bench_floor"      /* prefix of error messages */
#endif

/* A growable array of keys. */
typedef struct KeyList {
  int64_t *a;
  size_t n, nAlloc;
} KeyList;

static FLOOR_UNUSED void die(const char *zFmt, ...) {
  va_list ap;
  va_start(ap, zFmt);
  fputs(FLOOR_NAME ": ", stderr);
  vfprintf(stderr, zFmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static FLOOR_UNUSED double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds used by this process (less disturbed by other load). */
static FLOOR_UNUSED double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The "Vm...:" line zKey of /proc/self/status, in KiB (-1 if absent):
** VmHWM is the peak resident set, VmRSS the current one. */
static FLOOR_UNUSED long status_kb(const char *zKey) {
  char line[256];
  long kb = -1;
  size_t n = strlen(zKey);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, zKey, n) == 0) {
      sscanf(line + n, "%ld", &kb);
      break;
    }
  }
  fclose(f);
  return kb;
}

/* CPU seconds used by process pid: /proc/PID/schedstat's first field
** (nanoseconds on CPU), else utime + stime of /proc/PID/stat (ticks);
** -1 if neither can be read. */
static FLOOR_UNUSED double proc_cpu(long pid) {
  char zPath[64], line[1024];
  FILE *f;
  snprintf(zPath, sizeof zPath, "/proc/%ld/schedstat", pid);
  f = fopen(zPath, "r");
  if (f != NULL) {
    unsigned long long ns;
    int ok = fscanf(f, "%llu", &ns) == 1;
    fclose(f);
    if (ok) return (double)ns * 1e-9;
  }
  snprintf(zPath, sizeof zPath, "/proc/%ld/stat", pid);
  f = fopen(zPath, "r");
  if (f != NULL && fgets(line, sizeof line, f) != NULL) {
    const char *z = strrchr(line, ')');
    unsigned long ut, st;
    fclose(f);
    if (z && sscanf(z + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                    &ut, &st) == 2)
      return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return -1;
  }
  if (f) fclose(f);
  return -1;
}

static FLOOR_UNUSED char *read_file(const char *zPath) {
  FILE *f = fopen(zPath, "rb");
  long n;
  char *z;
  if (f == NULL) die("cannot read %s", zPath);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  z = malloc((size_t)n + 1);
  if (z == NULL || fread(z, 1, (size_t)n, f) != (size_t)n) die("cannot read %s", zPath);
  z[n] = 0;
  fclose(f);
  return z;
}

/*
** Quay's own SQL.  `quay_side.lua sql FILE` records every statement Quay
** sends for the read workloads as "key<TAB>sql" lines (keys w1.1, w2.1,
** w2.2, ...), each followed by "key.param<TAB>type<TAB>value" lines.
** find_line finds the line "zKey<TAB>..." at or after z; returns the text
** after the tab (up to the newline, length in *pn), or NULL.
*/
static FLOOR_UNUSED const char *find_line(const char *z, const char *zKey, size_t *pn,
                                          const char **pzNext) {
  size_t nKey = strlen(zKey);
  while (z && *z) {
    const char *zEnd = strchr(z, '\n');
    if (zEnd == NULL) zEnd = z + strlen(z);
    if (strncmp(z, zKey, nKey) == 0 && z[nKey] == '\t') {
      *pn = (size_t)(zEnd - (z + nKey + 1));
      if (pzNext) *pzNext = *zEnd ? zEnd + 1 : zEnd;
      return z + nKey + 1;
    }
    z = *zEnd ? zEnd + 1 : NULL;
  }
  return NULL;
}

static FLOOR_UNUSED void keys_add(KeyList *k, int64_t v) {
  if (k->n == k->nAlloc) {
    k->nAlloc = k->nAlloc ? 2 * k->nAlloc : 1024;
    k->a = realloc(k->a, k->nAlloc * sizeof(*k->a));
    if (k->a == NULL) die("out of memory");
  }
  k->a[k->n++] = v;
}

/* The keys as text between zOpen and zClose, comma-separated ("[1,2]" for
** SQLite's json_each, "{1,2}" for a PostgreSQL array); malloc'ed, length
** in *pn. */
static FLOOR_UNUSED char *keys_text(const KeyList *k, char cOpen, char cClose, size_t *pn) {
  size_t i, n = 0, nAlloc = 3 + k->n * 21;
  char *z = malloc(nAlloc);
  if (z == NULL) die("out of memory");
  z[n++] = cOpen;
  for (i = 0; i < k->n; i++) {
    char tmp[24];
    int m = 0;
    int64_t v = k->a[i];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (i) z[n++] = ',';
    if (v < 0) z[n++] = '-';
    do { tmp[m++] = (char)('0' + u % 10); u /= 10; } while (u);
    while (m) z[n++] = tmp[--m];
  }
  z[n++] = cClose;
  z[n] = 0;
  *pn = n;
  return z;
}

/* W5's check of the rows at index rows (n of them), into z: their count
** and the sum of their row.id. */
static FLOOR_UNUSED void w5_idsum(lua_State *L, int rows, int n, char *z,
                                  size_t nz) {
  lua_Integer sum = 0;
  int i;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, rows, i);
    lua_getfield(L, -1, "id");
    sum += lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  snprintf(z, nz, "rows=%d,idsum=%lld", n, (long long)sum);
}

static FLOOR_UNUSED int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sort k and drop duplicates, in place. */
static FLOOR_UNUSED void keys_uniq(KeyList *k) {
  size_t j, m = 0;
  qsort(k->a, k->n, sizeof(*k->a), cmp_i64);
  for (j = 0; j < k->n; j++) if (m == 0 || k->a[m - 1] != k->a[j]) k->a[m++] = k->a[j];
  k->n = m;
}

/* Push the n key strings once; returns the stack index of the first. */
static FLOOR_UNUSED int push_keys(lua_State *L, const char *const *az, int n) {
  int i;
  luaL_checkstack(L, n + 8, "keys");
  for (i = 0; i < n; i++) lua_pushstring(L, az[i]);
  return lua_gettop(L) - n + 1;
}

/* Append the value on top to the list t[key]; pops it. */
static FLOOR_UNUSED void append_to(lua_State *L, int t, int key) {
  lua_pushvalue(L, key);              /* [.., v, key] */
  lua_rawget(L, t);                   /* [.., v, list] */
  lua_insert(L, -2);                  /* [.., list, v] */
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);  /* [.., list] */
  lua_pop(L, 1);                      /* [..] */
}

/* Call loops[zName](arg) (the loops table at iLoops) with nRet results
** left on the stack. */
static FLOOR_UNUSED void call_lua_loop(lua_State *L, int iLoops, const char *zName,
                                       int iArg, int nRet) {
  lua_getfield(L, iLoops, zName);
  lua_pushvalue(L, iArg);
  if (lua_pcall(L, 1, nRet, 0) != LUA_OK) die("lua: %s", lua_tostring(L, -1));
}

#endif
