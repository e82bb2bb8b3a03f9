/*
** examples/threads.c
** Two Lua states in two threads, each with its own SQLite connection,
** running Quay side by side.  Built and run under ThreadSanitizer by the
** test example.threads.tsan (test/packaging/test-tsan.sh).
** See LICENSE
**
**   threads models.lua [ROUNDS]
**
** The thread rules of include/quay.h: one lua_State and one Quay db per
** thread, never shared.  Worker 0 owns an in-memory sqlite3 connection and
** hands it to Quay with quay_push_sqlite; worker 1 lets Quay open a file
** database under DIR (quay.open "sqlite:DIR/...").  Each worker runs the
** model script of examples/models.lua round after round on a fresh
** database (declare, fill, query, prefetch, roll back, cascade), then a
** bulk insert and a streaming iteration, and checks every result.  The
** workers start together behind a barrier so that their work overlaps.
**
** Exit status: 0 when every check of every round holds, 1 otherwise.
*/
#define _POSIX_C_SOURCE 200809L   /* mkdtemp, pthread_barrier_t */

#include <quay.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NWORKER 2

typedef struct Worker {
  int id;                   /* 0: host-owned handle; 1: quay.open file */
  const char *zScript;      /* examples/models.lua */
  const char *zDir;         /* temporary directory for worker 1's files */
  int nRound;               /* rounds to run */
  pthread_barrier_t *pStart;
  int nDone;                /* rounds completed with every check holding */
  char zErr[600];           /* first failure, "" when none */
} Worker;

/* Bulk insert and stream: returns the sum of the stars of the first book. */
static const char zExtra[] =
  "local db, models = ...\n"
  "local Book, Review = models.Book, models.Review\n"
  "local book = Book:order_by('id'):first()\n"
  "local rows = {}\n"
  "for i = 1, 300 do rows[i] = { book = book, stars = i % 5 + 1 } end\n"
  "Review:bulk_create(rows)\n"
  "local sum = 0\n"
  "for r in Review:filter { book = book }:iter() do sum = sum + r.stars end\n"
  "return sum\n";

/* Opens a file database through Quay itself. */
static const char zOpen[] =
  "local path = ...\n"
  "return require('quay').open('sqlite:' .. path)\n";

static int msghandler(lua_State *L) {
  const char *zMsg = lua_tostring(L, 1);
  if (zMsg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      zMsg = lua_tostring(L, -1);
    } else {
      zMsg = lua_pushfstring(L, "(error object is a %s value)",
                             luaL_typename(L, 1));
    }
  }
  luaL_traceback(L, L, zMsg, 1);
  return 1;
}

/* Raise unless field zKey of the table at idx is the integer iWant. */
static void expect(lua_State *L, int idx, const char *zKey,
                   lua_Integer iWant) {
  int isNum;
  lua_Integer iGot;
  lua_getfield(L, idx, zKey);
  iGot = lua_tointegerx(L, -1, &isNum);
  if (!isNum || iGot != iWant) {
    luaL_error(L, "%s: got %s, want %d", zKey, luaL_tolstring(L, -1, NULL),
               (int)iWant);
  }
  lua_pop(L, 1);
}

/*
** One round, protected.  Stack effect: [worker, handle|nil, path|nil] ->
** [].  With a handle, the db wraps it; else Quay opens the file at path.
*/
static int round_main(lua_State *L) {
  Worker *w = lua_touserdata(L, 1);
  sqlite3 *pHandle = lua_touserdata(L, 2);
  char zLabel[32];
  int iDb, iRes;
  if (pHandle) {
    quay_push_sqlite(L, pHandle);                    /* [.., db] */
  } else {
    if (luaL_loadstring(L, zOpen) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, 3);
    lua_call(L, 1, 1);                               /* [.., db] */
  }
  iDb = lua_gettop(L);
  snprintf(zLabel, sizeof(zLabel), "t%d", w->id);
  if (luaL_loadfile(L, w->zScript) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, iDb);
  lua_pushstring(L, zLabel);
  lua_call(L, 2, 1);                                 /* [.., db, res] */
  iRes = lua_gettop(L);
  luaL_checktype(L, iRes, LUA_TTABLE);
  expect(L, iRes, "authors", 3);
  expect(L, iRes, "books", 5);
  expect(L, iRes, "tagged_lua", 2);
  expect(L, iRes, "prefetch_queries", 3);
  expect(L, iRes, "authors_after_rollback", 3);
  expect(L, iRes, "books_left", 3);
  lua_getfield(L, iRes, "deleted");
  expect(L, -1, "Review", 3);
  expect(L, -1, "books_tags", 2);
  lua_pop(L, 1);
  /* Bulk insert + streaming iteration. */
  if (luaL_loadstring(L, zExtra) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, iDb);
  lua_getfield(L, iRes, "models");
  lua_call(L, 2, 1);                                 /* [.., sum] */
  if (lua_tointeger(L, -1) != 901) {
    return luaL_error(L, "stars: got %s, want 901",
                      luaL_tolstring(L, -1, NULL));
  }
  /* Detach from the connection before the host closes it. */
  lua_getfield(L, iDb, "close");
  lua_pushvalue(L, iDb);
  lua_call(L, 1, 0);
  return 0;
}

static void *worker_main(void *pArg) {
  Worker *w = pArg;
  lua_State *L = luaL_newstate();
  int r;
  pthread_barrier_wait(w->pStart);
  if (L == NULL) {
    snprintf(w->zErr, sizeof(w->zErr), "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  quay_openlibs(L);
  lua_pushcfunction(L, msghandler);                  /* [mh] */
  for (r = 0; r < w->nRound && w->zErr[0] == 0; r++) {
    sqlite3 *pHandle = NULL;
    char zPath[512];
    int rc;
    snprintf(zPath, sizeof(zPath), "%s/worker%d-round%d.db", w->zDir, w->id,
             r);
    if (w->id == 0 &&
        sqlite3_open_v2(":memory:", &pHandle,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
      snprintf(w->zErr, sizeof(w->zErr), "sqlite3_open_v2 failed");
      sqlite3_close(pHandle);
      break;
    }
    lua_pushcfunction(L, round_main);
    lua_pushlightuserdata(L, w);
    if (pHandle) lua_pushlightuserdata(L, pHandle); else lua_pushnil(L);
    lua_pushstring(L, zPath);
    rc = lua_pcall(L, 3, 0, 1);
    if (rc != LUA_OK) {
      snprintf(w->zErr, sizeof(w->zErr), "round %d: %s", r,
               lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_gc(L, LUA_GCCOLLECT);        /* free this round's db and records */
    if (pHandle && sqlite3_close(pHandle) != SQLITE_OK && w->zErr[0] == 0) {
      snprintf(w->zErr, sizeof(w->zErr),
               "round %d: sqlite3_close: a statement is still open", r);
    }
    if (w->id == 1) {
      char zSide[530];
      unlink(zPath);
      snprintf(zSide, sizeof(zSide), "%s-wal", zPath);
      unlink(zSide);
      snprintf(zSide, sizeof(zSide), "%s-shm", zPath);
      unlink(zSide);
    }
    if (w->zErr[0] == 0) w->nDone++;
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  Worker aW[NWORKER];
  pthread_t aT[NWORKER];
  pthread_barrier_t start;
  const char *zTmp = getenv("TMPDIR");
  char zDir[512];
  int i, nRound, status = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s models.lua [ROUNDS]\n", argv[0]);
    return 2;
  }
  nRound = argc > 2 ? atoi(argv[2]) : 10;
  if (!sqlite3_threadsafe()) {
    fprintf(stderr, "threads: SQLite is built without thread support\n");
    return 1;
  }
  snprintf(zDir, sizeof(zDir), "%s/quay-threads-XXXXXX",
           zTmp && zTmp[0] ? zTmp : "/tmp");
  if (mkdtemp(zDir) == NULL) {
    perror("threads: mkdtemp");
    return 1;
  }
  pthread_barrier_init(&start, NULL, NWORKER);
  for (i = 0; i < NWORKER; i++) {
    memset(&aW[i], 0, sizeof(aW[i]));
    aW[i].id = i;
    aW[i].zScript = argv[1];
    aW[i].zDir = zDir;
    aW[i].nRound = nRound;
    aW[i].pStart = &start;
    if (pthread_create(&aT[i], NULL, worker_main, &aW[i]) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      return 1;
    }
  }
  for (i = 0; i < NWORKER; i++) pthread_join(aT[i], NULL);
  pthread_barrier_destroy(&start);
  rmdir(zDir);
  for (i = 0; i < NWORKER; i++) {
    if (aW[i].zErr[0] || aW[i].nDone != nRound) {
      fprintf(stderr, "threads: worker %d: %d/%d rounds: %s\n", i,
              aW[i].nDone, nRound, aW[i].zErr);
      status = 1;
    } else {
      printf("threads: worker %d: %d rounds passed\n", i, nRound);
    }
  }
  return status;
}
