/*
** spec/oom/oom_host.c
** Allocation-failure sweep through Lua, the engine and SQLite at once.
** See LICENSE
**
** One counter numbers every allocation made by the Lua state (lua_Alloc),
** by the Quay engine (quay_set_allocator) and by SQLite (sqlite3_config
** SQLITE_CONFIG_MALLOC).  For k = 1, 2, ... the k-th allocation fails
** (once, or from then on: "sticky"), while the scenario of scenario.lua
** runs in a fresh lua_State against a fresh copy of a database file.
** Every run must:
**   - end without crashing: success, or an error (a memory error, or a
**     Quay error of code nomem / sql) raised to the host's pcall;
**   - release everything: after lua_close, the engine's and SQLite's live
**     block counts are back to zero (and LeakSanitizer, in the ASan build,
**     finds nothing at exit);
**   - leave the database in the state after some prefix of the scenario's
**     operations: each operation is all or nothing.
** The sweep visits every k up to a bound, then spreads the rest.  This is
** the test of the binding's rules against longjmp leaks (docs/ENGINE.md
** "Lua binding: rules against longjmp leaks", rules 1-8): every resource
** a Lua error can unwind past is owned by something.
*/
#include "quay.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long nAlloc = 0;           /* allocations since arming */
static long nFailAt = 0;          /* 0: no failure */
static int bSticky = 0;
static int bFailed = 0;           /* a failure was injected this run */
static long nLiveQuay = 0, nLiveSqlite = 0;

static int fail_now(void) {
  nAlloc++;
  if (nFailAt <= 0) return 0;
  if (nAlloc == nFailAt || (bSticky && nAlloc > nFailAt)) {
    bFailed = 1;
    return 1;
  }
  return 0;
}

/* {====== Lua ====== */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* Lua assumes shrinking never fails. */
  if ((ptr == NULL || nsize > osize) && fail_now()) return NULL;
  return realloc(ptr, nsize);
}
/* }====== */

/* {====== Quay ====== */
static void *q_malloc(size_t n) {
  void *p;
  if (fail_now()) return NULL;
  p = malloc(n);
  if (p) nLiveQuay++;
  return p;
}
static void *q_realloc(void *p, size_t n) {
  if (p == NULL) return q_malloc(n);     /* a new block: counted */
  if (fail_now()) return NULL;
  return realloc(p, n);
}
static void q_free(void *p) {
  if (p) nLiveQuay--;
  free(p);
}
/* }====== */

/* {====== SQLite (blocks carry their size in an 8-byte header) ====== */
static void *s_malloc(int n) {
  sqlite3_int64 *p;
  if (fail_now()) return NULL;
  p = malloc((size_t)n + 8);
  if (p == NULL) return NULL;
  p[0] = n;
  nLiveSqlite++;
  return p + 1;
}
static void s_free(void *p) {
  if (p == NULL) return;
  nLiveSqlite--;
  free((sqlite3_int64 *)p - 1);
}
static void *s_realloc(void *p, int n) {
  sqlite3_int64 *q;
  if (p == NULL) return s_malloc(n);
  if (n > ((sqlite3_int64 *)p)[-1] && fail_now()) return NULL;
  q = realloc((sqlite3_int64 *)p - 1, (size_t)n + 8);
  if (q == NULL) return NULL;
  q[0] = n;
  return q + 1;
}
static int s_size(void *p) { return p ? (int)((sqlite3_int64 *)p)[-1] : 0; }
static int s_roundup(int n) { return (n + 7) & ~7; }
static int s_init(void *p) { (void)p; return SQLITE_OK; }
static void s_shutdown(void *p) { (void)p; }
/* }====== */

static const char *zScenarioDir;

/* Remove a database file and its WAL companions. */
static void remove_db(const char *z) {
  char zAux[600];
  remove(z);
  snprintf(zAux, sizeof(zAux), "%s-wal", z);
  remove(zAux);
  snprintf(zAux, sizeof(zAux), "%s-shm", z);
  remove(zAux);
}

/* Copy file zFrom to zTo; 0 on success. */
static int copy_file(const char *zFrom, const char *zTo) {
  FILE *a = fopen(zFrom, "rb"), *b;
  char buf[65536];
  size_t n;
  if (a == NULL) return 1;
  b = fopen(zTo, "wb");
  if (b == NULL) {
    fclose(a);
    return 1;
  }
  while ((n = fread(buf, 1, sizeof(buf), a)) > 0) fwrite(buf, 1, n, b);
  fclose(a);
  return fclose(b) != 0;
}

/*
** Body run under pcall: arg 1 = db path, arg 2 = mode
**   "fill"  declare + fill, return signature
**   "ops"   declare + run ops[1..n]; returns signatures after each (only
**           when arg 3 is true, for the baseline)
**   "sig"   declare, return signature
*/
static const char zDriver[] =
  "local path, mode, record = ...\n"
  "local S = require('scenario')\n"
  "local quay = require('quay')\n"
  "local db <close> = quay.open('sqlite:' .. path)\n"
  "local M = S.declare(db)\n"
  "if mode == 'fill' then S.fill(db, M); return S.signature(db) end\n"
  "if mode == 'sig' then return S.signature(db) end\n"
  "local sigs = {}\n"
  "for i, op in ipairs(S.ops) do\n"
  "  op(db, M)\n"
  "  if record then sigs[i] = S.signature(db) end\n"
  "end\n"
  "return table.unpack(sigs)\n";

/*
** Protected set-up and run (everything that can raise runs in here):
** [path, mode, record] -> driver results.
*/
static int protected_main(lua_State *L) {
  int nOut = (int)lua_tointeger(L, 4);
  const char *zPath = lua_touserdata(L, 1);
  const char *zMode = lua_touserdata(L, 2);
  lua_pushstring(L, zPath);
  lua_replace(L, 1);
  lua_pushstring(L, zMode);
  lua_replace(L, 2);
  lua_settop(L, 3);
  luaL_openlibs(L);
  quay_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;", zScenarioDir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, zDriver, sizeof(zDriver) - 1, "=driver") != LUA_OK) {
    return lua_error(L);
  }
  lua_insert(L, 1);
  lua_call(L, 3, nOut);
  return nOut;
}


/*
** Run the driver in a fresh state.  Returns 0 on success (results left
** in aOut, malloc'd strings), 1 on a Lua error (message in zErr).
*/
static int run(const char *zPath, const char *zMode, int bRecord,
               char **aOut, int nOut, char *zErr, size_t nErr) {
  lua_State *L;
  int rc, i;
  L = lua_newstate(l_alloc, NULL);
  if (L == NULL) {
    snprintf(zErr, nErr, "lua_newstate: no memory");
    return 1;
  }
  /* Only '-' API calls before the protected call (lua.c's main). */
  lua_pushcfunction(L, protected_main);        /* light: no allocation */
  lua_pushlightuserdata(L, (void *)zPath);
  lua_pushlightuserdata(L, (void *)zMode);
  lua_pushboolean(L, bRecord);
  lua_pushinteger(L, nOut);
  rc = lua_pcall(L, 4, nOut, 0);
  if (rc != LUA_OK) {
    const char *z = NULL;
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_getfield(L, -1, "code");
      z = lua_tostring(L, -1);
    } else {
      z = lua_tostring(L, -1);
    }
    snprintf(zErr, nErr, "%s", z ? z : "(error object)");
    lua_close(L);
    return 1;
  }
  for (i = 0; i < nOut; i++) {
    const char *z = lua_tostring(L, -nOut + i);
    aOut[i] = z ? strdup(z) : NULL;
  }
  lua_close(L);
  return 0;
}

#define MAX_OPS 24

int main(int argc, char **argv) {
  sqlite3_mem_methods mem = { s_malloc, s_free, s_realloc, s_size, s_roundup,
                              s_init, s_shutdown, NULL };
  char zBase[512], zWork[512], zErr[512];
  char *aSig[MAX_OPS + 1];
  int nOps, i, sticky;
  long total, k, nRuns = 0, nErrRuns = 0, bound, step;
  long limit = argc > 2 ? atol(argv[2]) : 4000;
  long baseQuay, baseSqlite;
  zScenarioDir = argc > 1 ? argv[1] : ".";
  if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK) {
    fprintf(stderr, "sqlite3_config failed\n");
    return 1;
  }
  quay_set_allocator(q_malloc, q_realloc, q_free);
  snprintf(zBase, sizeof(zBase), "%s/quay_oom_base_%d.db", "/tmp", (int)getpid());
  snprintf(zWork, sizeof(zWork), "%s/quay_oom_work_%d.db", "/tmp", (int)getpid());
  remove_db(zBase);
  /* Baseline: fill, then the signature after each op. */
  if (run(zBase, "fill", 0, aSig, 1, zErr, sizeof(zErr))) {
    fprintf(stderr, "baseline fill failed: %s\n", zErr);
    return 1;
  }
  remove_db(zWork);
  copy_file(zBase, zWork);
  nOps = 0;
  {
    char *aOut[MAX_OPS];
    /* count ops by asking for MAX_OPS results; missing ones are NULL */
    memset(aOut, 0, sizeof(aOut));
    nAlloc = 0;
    if (run(zWork, "ops", 1, aOut, MAX_OPS, zErr, sizeof(zErr))) {
      fprintf(stderr, "baseline ops failed: %s\n", zErr);
      return 1;
    }
    total = nAlloc;
    for (i = 0; i < MAX_OPS && aOut[i]; i++) aSig[1 + nOps++] = aOut[i];
  }
  printf("scenario: %d operations, %ld allocations per clean run\n", nOps,
         total);
  /* SQLite may keep a few process-wide blocks: compare with the count
  ** after a clean run, not with zero. */
  baseQuay = nLiveQuay;
  baseSqlite = nLiveSqlite;
  for (sticky = 0; sticky <= 1; sticky++) {
    long kFrom = 1, kTo = total + 1;
    bound = total < limit ? total : limit;
    step = 1;
    if (getenv("QUAY_OOM_FROM")) {
      /* A window visited in full (hunting a failure the sampled sweep
      ** steps over): QUAY_OOM_FROM=k [QUAY_OOM_TO=k]. */
      kFrom = atol(getenv("QUAY_OOM_FROM"));
      if (getenv("QUAY_OOM_TO")) kTo = atol(getenv("QUAY_OOM_TO"));
      bound = kTo;
    }
    for (k = kFrom; k <= kTo; k += step) {
      int failed, j, ok = 0;
      char *sig = NULL;
      if (k > bound) step = (total - bound) / (limit / 4) + 1;
      remove_db(zWork);
      copy_file(zBase, zWork);
      nAlloc = 0;
      nFailAt = k;
      bSticky = sticky;
      bFailed = 0;
      failed = run(zWork, "ops", 0, NULL, 0, zErr, sizeof(zErr));
      nFailAt = 0;
      nRuns++;
      if (nLiveQuay != baseQuay || nLiveSqlite != baseSqlite) {
        fprintf(stderr, "k=%ld sticky=%d: leaked %ld engine and %ld SQLite "
                "blocks (%s)\n", k, sticky, nLiveQuay - baseQuay,
                nLiveSqlite - baseSqlite, failed ? zErr : "no error");
        return 1;
      }
      if (failed) {
        nErrRuns++;
        if (!bFailed) {
          fprintf(stderr, "k=%ld: error without an injected failure: %s\n",
                  k, zErr);
          return 1;
        }
      }
      /* The database must equal the state after some prefix of ops. */
      if (run(zWork, "sig", 0, &sig, 1, zErr, sizeof(zErr))) {
        fprintf(stderr, "k=%ld: cannot read the database back: %s\n", k,
                zErr);
        return 1;
      }
      for (j = 0; j <= nOps; j++) {
        if (sig && aSig[j] && strcmp(sig, aSig[j]) == 0) ok = 1;
      }
      if (!ok && sig && getenv("QUAY_OOM_DUMP")) {
        /* QUAY_OOM_DUMP=DIR: the database as found, and as after each
        ** prefix of ops (DIR/got, DIR/after<j>), to diff. */
        char zF[600];
        FILE *f;
        snprintf(zF, sizeof(zF), "%s/got", getenv("QUAY_OOM_DUMP"));
        if ((f = fopen(zF, "w")) != NULL) {
          fputs(sig, f);
          fclose(f);
        }
        for (j = 0; j <= nOps; j++) {
          snprintf(zF, sizeof(zF), "%s/after%d", getenv("QUAY_OOM_DUMP"), j);
          if (aSig[j] && (f = fopen(zF, "w")) != NULL) {
            fputs(aSig[j], f);
            fclose(f);
          }
        }
      }
      free(sig);
      if (!ok) {
        fprintf(stderr, "k=%ld sticky=%d: database left half-changed after: "
                "%s\n", k, sticky, failed ? zErr : "success");
        return 1;
      }
      if (!bFailed) break;                 /* ran past every allocation */
    }
  }
  remove_db(zBase);
  remove_db(zWork);
  for (i = 0; i <= nOps; i++) free(aSig[i]);
  printf("oom sweep: %ld runs, %ld ended in an error, 0 leaks, 0 half-changed "
         "databases\n", nRuns, nErrRuns);
  return 0;
}
