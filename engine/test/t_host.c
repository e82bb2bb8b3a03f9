/*
** engine/test/t_host.c
** The embedding entries of include/quay.h as a host program uses them
** (quay_openlibs, quay_push_sqlite, quay_push_sqlite_opts,
** quay_tostring, luaopen_quay_core): a fresh lua_State with no Lua
** files on any path, a host-owned sqlite3* that Quay never closes and
** that sqlite3_close accepts after db:close() or a collection, also when
** a Lua error left a streaming query open, misuse errors for a NULL
** handle, and two threads each with its own state and db at once.  The
** ASan build (LeakSanitizer) checks that nothing leaks.
**
**   quay_host_tests <name>
** See LICENSE
*/
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

#define FAIL(...)                                                        \
  do {                                                                   \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                      \
    fprintf(stderr, __VA_ARGS__);                                        \
    fprintf(stderr, "\n");                                               \
    return 1;                                                            \
  } while (0)
#define ASSERT(expr)                                                     \
  do { if (!(expr)) FAIL("assertion failed: %s", #expr); } while (0)

/* A state with the standard libraries and Quay preloaded, and no path
** on which a Lua file or C module of Quay could be found. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  quay_openlibs(L);
  (void)luaL_dostring(L, "package.path = '' package.cpath = ''");
  return L;
}

static int msgh(lua_State *L) {
  luaL_traceback(L, L, quay_tostring(L, 1), 1);
  return 1;
}

/* Run zCode as a function of the values pushed by xPush (protected);
** the error text goes to zErr.  Returns the lua_pcall status. */
typedef struct Run {
  sqlite3 *h;               /* handed to quay_push_sqlite, or NULL */
  const quay_open_opts *pOpts;
  const char *zCode;
  char zErr[1024];
} Run;

static int run_body(lua_State *L) {
  Run *r = (Run *)lua_touserdata(L, 1);
  if (luaL_loadstring(L, r->zCode) != LUA_OK) return lua_error(L);
  if (r->pOpts) quay_push_sqlite_opts(L, r->h, r->pOpts);
  else quay_push_sqlite(L, r->h);
  lua_call(L, 1, 0);
  return 0;
}

/* run() must succeed; else fail the test with the Lua error. */
#define RUN_OK(L, pr)                                                    \
  do { if (run((L), (pr)) != LUA_OK) FAIL("%s", (pr)->zErr); } while (0)

static int run(lua_State *L, Run *r) {
  int rc;
  r->zErr[0] = 0;
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, run_body);
  lua_pushlightuserdata(L, r);
  rc = lua_pcall(L, 1, 0, -3);
  if (rc != LUA_OK) {
    const char *z = lua_tostring(L, -1);
    snprintf(r->zErr, sizeof(r->zErr), "%s", z ? z : "(no message)");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);                       /* msgh */
  return rc;
}

static const char *zModels =
  "local db = ...\n"
  "local quay = require 'quay'\n"
  "local Item = db:model('Item', { name = quay.string() })\n"
  "db:create_tables()\n"
  "for i = 1, 50 do Item:create { name = 'n' .. i } end\n";

/* quay_openlibs in a fresh state: require works with empty paths, and
** gives the same module table each time. */
static int test_openlibs_fresh(void) {
  lua_State *L = new_state();
  ASSERT(L != NULL);
  ASSERT(luaL_dostring(L,
    "local quay = require 'quay'\n"
    "assert(type(quay.open) == 'function')\n"
    "assert(require('quay') == quay)\n"
    "assert(type(require('quay.core')) == 'table')\n"
    "local db = quay.open('sqlite::memory:')\n"
    "local T = db:model('T', { x = quay.integer() })\n"
    "db:create_tables() T:create { x = 1 }\n"
    "assert(T:count() == 1)\n"
    "db:close()") == LUA_OK);
  lua_close(L);
  /* luaopen_quay_core by luaL_requiref, without quay_openlibs. */
  L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  luaL_requiref(L, "quay.core", luaopen_quay_core, 0);
  ASSERT(lua_istable(L, -1));
  lua_pop(L, 1);
  lua_close(L);
  return 0;
}

/* The host's handle survives db:close(), a collection and lua_close;
** sqlite3_close succeeds after each, also when a Lua error left a
** streaming iteration open. */
static int test_push_sqlite_handle(void) {
  static const char *azClose[] = {
    /* db:close() from Lua, the state still open (every run() pushes
    ** one more db on the handle: this one and the one kept) */
    "local db = ... db:close() keep:close()",
    /* an error in the middle of a streaming iteration, then close */
    "local Item = keep:model('Item') local n = 0\n"
    "for r in Item:query():order_by('id'):iter() do\n"
    "  n = n + 1 if n == 3 then error('host error at 3') end end",
    /* a Quay error object through the host's lua_pcall */
    "local Item = keep:model('Item')\n"
    "local f, s, c = Item:query():iter() assert(f(s, c))\n"
    "Item:filter { nope = 1 }:all()",
  };
  int i;
  for (i = 0; i < 3; i++) {
    sqlite3 *h = NULL;
    lua_State *L = new_state();
    Run r;
    ASSERT(L != NULL);
    ASSERT(sqlite3_open(":memory:", &h) == SQLITE_OK);
    memset(&r, 0, sizeof r);
    r.h = h;
    r.zCode = zModels;
    RUN_OK(L, &r);
    lua_gc(L, LUA_GCCOLLECT);          /* that db is garbage now */
    r.zCode = "local db = ...\n"
              "local quay = require 'quay'\n"
              "db:model('Item', { name = quay.string() })\n"
              "assert(db:model('Item'):count() == 50)\n"
              "_G.keep = db\n";
    RUN_OK(L, &r);
    r.zCode = azClose[i];
    if (i == 0) {
      RUN_OK(L, &r);
    } else {
      ASSERT(run(L, &r) != LUA_OK);
      if (strstr(r.zErr, i == 1 ? "host error at 3" : "nope") == NULL)
        FAIL("case %d: %s", i, r.zErr);
      if (i == 2) ASSERT(strstr(r.zErr, "(unknown_field)") != NULL);
      (void)luaL_dostring(L, "_G.keep = nil");
      lua_gc(L, LUA_GCCOLLECT);
      lua_gc(L, LUA_GCCOLLECT);
    }
    /* The handle is the host's: open, usable, and closable now while the
    ** state lives on (i = 0: closed db; 1, 2: collected). */
    ASSERT(sqlite3_exec(h, "SELECT count(*) FROM items", NULL, NULL, NULL) ==
           SQLITE_OK);
    if (i == 0) {
      ASSERT(sqlite3_close(h) == SQLITE_OK);
      (void)luaL_dostring(L, "_G.keep = nil");
      lua_close(L);
    } else {
      ASSERT(sqlite3_close(h) == SQLITE_OK);
      lua_close(L);
    }
  }
  return 0;
}

/* A NULL handle: a Quay error object with code misuse, which
** quay_tostring turns into "message (misuse)". */
static int test_push_sqlite_null(void) {
  lua_State *L = new_state();
  Run r;
  ASSERT(L != NULL);
  memset(&r, 0, sizeof r);
  r.h = NULL;
  r.zCode = "error('not reached')";
  ASSERT(run(L, &r) != LUA_OK);
  ASSERT(strstr(r.zErr, "(misuse)") != NULL);
  ASSERT(strstr(r.zErr, "not reached") == NULL);
  /* quay_tostring of a non-Quay value is luaL_tolstring's. */
  lua_pushinteger(L, 42);
  ASSERT(strcmp(quay_tostring(L, -1), "42") == 0);
  lua_pop(L, 2);
  lua_close(L);
  return 0;
}

/* quay_push_sqlite_opts: QUAY_BUSY_KEEP leaves the host's busy handler
** in place (a lock held by another connection makes it run, and Quay
** raises busy at once instead of waiting 5 s); strict makes lazy loads
** raise lazy_load. */
static int nBusyCalls;
static int host_busy(void *p, int n) {
  (void)p; (void)n;
  nBusyCalls++;
  return 0;                            /* give up: SQLITE_BUSY */
}

static int test_push_sqlite_opts(void) {
  sqlite3 *h = NULL, *h2 = NULL;
  lua_State *L = new_state();
  quay_open_opts o;
  Run r;
  char zPath[64];
  snprintf(zPath, sizeof zPath, "/tmp/quay_host_busy_%ld.db",
           (long)getpid());
  remove(zPath);
  ASSERT(L != NULL);
  ASSERT(sqlite3_open(zPath, &h) == SQLITE_OK);
  ASSERT(sqlite3_open(zPath, &h2) == SQLITE_OK);
  sqlite3_busy_handler(h, host_busy, NULL);
  memset(&o, 0, sizeof o);
  o.busy_timeout_ms = QUAY_BUSY_KEEP;
  o.strict = 1;
  memset(&r, 0, sizeof r);
  r.h = h;
  r.pOpts = &o;
  r.zCode =
    "local db = ...\n"
    "local quay = require 'quay'\n"
    "local A = db:model('A', { name = quay.string() })\n"
    "local B = db:model('B', { a = quay.belongs_to('A') })\n"
    "db:create_tables()\n"
    "local a = A:create { name = 'x' } B:create { a = a }\n"
    "local b = B:first()\n"
    "local ok, err = pcall(function() return b.a end)\n"
    "assert(not ok and err.code == 'lazy_load', tostring(err))\n"
    "_G.keepA = A\n";
  RUN_OK(L, &r);
  ASSERT(sqlite3_exec(h2, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
  ASSERT(luaL_dostring(L,
    "local ok, err = pcall(keepA.create, keepA, { name = 'y' })\n"
    "assert(not ok and err.code == 'busy', tostring(err))\n"
    "keepA = nil") == LUA_OK);
  ASSERT(nBusyCalls > 0);
  ASSERT(sqlite3_exec(h2, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
  lua_close(L);
  ASSERT(sqlite3_close(h) == SQLITE_OK);
  ASSERT(sqlite3_close(h2) == SQLITE_OK);
  remove(zPath);
  return 0;
}

/*
** Two threads, each with its own lua_State and db, at the same time: one
** on a host-owned SQLite handle (quay_push_sqlite), one on PostgreSQL
** when QUAY_PG_URL is set (else on a second SQLite handle).  Each writes
** and reads its own rows in transactions; both must finish clean, and
** the handles close.  example.threads runs the SQLite case under TSan.
*/
typedef struct Worker {
  int iThread;
  const char *zPgUrl;       /* NULL: SQLite */
  char zErr[1024];
} Worker;

static void *worker_main(void *pArg) {
  Worker *w = (Worker *)pArg;
  sqlite3 *h = NULL;
  lua_State *L = new_state();
  Run r;
  char zCode[1200];
  w->zErr[0] = 0;
  if (L == NULL) {
    snprintf(w->zErr, sizeof w->zErr, "no state");
    return NULL;
  }
  snprintf(zCode, sizeof zCode,
    "local db = ...\n"
    "local quay = require 'quay'\n"
    "if %d == 1 then db = quay.open(%s) end\n"
    "local T = db:model('HostThread%d', { n = quay.integer() })\n"
    "db:drop_tables() db:create_tables()\n"
    "for round = 1, 20 do\n"
    "  db:transaction(function()\n"
    "    for i = 1, 10 do T:create { n = round * 100 + i } end\n"
    "  end)\n"
    "  assert(T:count() == round * 10)\n"
    "  assert(T:filter { n__gt = round * 100 }:count() == 10)\n"
    "end\n"
    "db:drop_tables()\n"
    "db:close()\n",
    w->zPgUrl ? 1 : 0, w->zPgUrl ? "os.getenv('QUAY_PG_URL')" : "nil",
    w->iThread);
  if (sqlite3_open(":memory:", &h) != SQLITE_OK) {
    snprintf(w->zErr, sizeof w->zErr, "sqlite3_open");
  } else {
    memset(&r, 0, sizeof r);
    r.h = h;
    r.zCode = zCode;
    if (run(L, &r) != LUA_OK) snprintf(w->zErr, sizeof w->zErr, "%s", r.zErr);
  }
  lua_close(L);
  if (h && sqlite3_close(h) != SQLITE_OK && w->zErr[0] == 0) {
    snprintf(w->zErr, sizeof w->zErr, "sqlite3_close: statement left open");
  }
  return NULL;
}

static int test_two_threads(void) {
  Worker aW[2];
  pthread_t aT[2];
  const char *zPg = getenv("QUAY_PG_URL");
  int i;
  for (i = 0; i < 2; i++) {
    aW[i].iThread = i + 1;
    aW[i].zPgUrl = (i == 1 && zPg && *zPg) ? zPg : NULL;
    ASSERT(pthread_create(&aT[i], NULL, worker_main, &aW[i]) == 0);
  }
  for (i = 0; i < 2; i++) ASSERT(pthread_join(aT[i], NULL) == 0);
  for (i = 0; i < 2; i++) {
    if (aW[i].zErr[0]) FAIL("thread %d: %s", i + 1, aW[i].zErr);
  }
  if (!(zPg && *zPg)) {
    printf("two_threads: QUAY_PG_URL not set, SQLite twice\n");
  }
  return 0;
}

typedef struct Entry {
  const char *zName;
  int (*xRun)(void);
} Entry;

static const Entry aTest[] = {
  {"openlibs_fresh", test_openlibs_fresh},
  {"push_sqlite_handle", test_push_sqlite_handle},
  {"push_sqlite_null", test_push_sqlite_null},
  {"push_sqlite_opts", test_push_sqlite_opts},
  {"two_threads", test_two_threads},
  {NULL, NULL}};

int main(int argc, char **argv) {
  int i, nFail = 0, nRun = 0;
  for (i = 0; aTest[i].zName; i++) {
    if (argc > 1 && strcmp(argv[1], aTest[i].zName) != 0) continue;
    nRun++;
    if (aTest[i].xRun() != 0) {
      fprintf(stderr, "FAIL %s\n", aTest[i].zName);
      nFail++;
    } else {
      printf("ok %s\n", aTest[i].zName);
    }
  }
  if (nRun == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  return nFail ? 1 : 0;
}
