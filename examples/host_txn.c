/*
** examples/host_txn.c
** A host that shares its SQLite connection with Quay and keeps control
** of its own transactions.
** See LICENSE
**
**   host_txn DIR
**
** The host opens a file database under DIR and hands the connection to
** Quay (quay_push_sqlite_opts, keeping its own busy handler).  It then
**   1. opens a transaction of its own (BEGIN), lets a script create the
**      tables and write through every multi-statement path of Quay
**      (bulk_create, db:transaction, a cascading delete), and ROLLS
**      BACK: nothing stays, not even the tables;
**   2. does the same and COMMITs: everything stays;
**   3. commits its transaction from inside a db:transaction of the
**      script (a C function the script calls): db:transaction raises
**      "misuse" saying the transaction was ended outside Quay, instead
**      of reporting success;
**   4. tries to wrap a connection while a transaction is open on it:
**      refused ("misuse"), since foreign keys cannot be turned on there;
**   5. lets a second connection hold the write lock: Quay's write waits
**      through the host's busy handler, which is still installed.
** Errors are read with quay_tostring, in the message handler too.
** Exit status: 0 when every check holds, 1 otherwise.
*/
#include <quay.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

typedef struct Host {
  sqlite3 *db;              /* the host's connection */
  sqlite3 *other;           /* a second connection (the lock holder) */
  int nBusy;                /* calls of the host's busy handler */
  int nFail;                /* checks failed */
} Host;

static void check(Host *h, int ok, const char *zWhat) {
  if (!ok) {
    h->nFail++;
    fprintf(stderr, "host_txn: FAIL %s\n", zWhat);
  }
}

/* One integer from SQL on a connection, or -1 (no table, say). */
static long long sql_int(sqlite3 *db, const char *zSql) {
  sqlite3_stmt *pStmt = NULL;
  long long n = -1;
  if (sqlite3_prepare_v2(db, zSql, -1, &pStmt, NULL) == SQLITE_OK &&
      sqlite3_step(pStmt) == SQLITE_ROW) {
    n = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return n;
}

/* The host's busy handler: counts, waits up to 20 tries of 1 ms. */
static int busy(void *p, int nTry) {
  Host *h = p;
  h->nBusy++;
  sqlite3_sleep(1);
  return nTry < 20;
}

/* Message handler: any error value as text (Quay's are tables), with a
** traceback. */
static int msghandler(lua_State *L) {
  luaL_traceback(L, L, quay_tostring(L, 1), 1);
  return 1;
}

/* host_commit(): the host's own COMMIT, called from the script. */
static int host_commit(lua_State *L) {
  Host *h = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushboolean(L, sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) ==
                         SQLITE_OK);
  return 1;
}

/* Wrap the second connection.  Stack: [host] -> [db]. */
static int push_other(lua_State *L) {
  Host *h = lua_touserdata(L, 1);
  return quay_push_sqlite(L, h->other);
}

/* The models (declared once; their tables are made by zWork). */
static const char zDeclare[] =
  "local quay = require('quay')\n"
  "local db = ...\n"
  "db:model('Rack', { name = quay.string() })\n"
  "db:model('Book', { title = quay.string(),\n"
  "  rack = quay.belongs_to('Rack', { on_delete = quay.CASCADE,\n"
  "                                    related_name = 'books' }) })\n";

/* The script: creates the tables, writes through every path that opens
** a transaction level of Quay's, returns the counts it sees. */
static const char zWork[] =
  "local db = ...\n"
  "local Rack, Book = db:model('Rack'), db:model('Book')\n"
  "db:create_tables()\n"
  "local a = Rack:create { name = 'a' }\n"
  "local b = Rack:create { name = 'b' }\n"
  "Book:bulk_create { { title = 'x', rack = a }, { title = 'y', rack = a },\n"
  "                   { title = 'z', rack = b } }\n"
  "db:transaction(function() Book:create { title = 'w', rack = b } end)\n"
  "assert(not pcall(db.transaction, db, function()\n"
  "  Book:create { title = 'gone', rack = b }; error('undo') end))\n"
  "b:delete()                          -- cascades to 2 books\n"
  "return Rack:count(), Book:count()\n";

/* Step 3: the host commits inside db:transaction. */
static const char zCommitInside[] =
  "local db, host_commit = ...\n"
  "local Rack = db:model('Rack')\n"
  "local ok, err = pcall(db.transaction, db, function()\n"
  "  Rack:create { name = 'c' }\n"
  "  assert(host_commit())\n"
  "  Rack:create { name = 'd' }     -- autocommit now: stays\n"
  "  error('and then something fails')\n"
  "end)\n"
  "assert(not ok)\n"
  "return err\n";

/* Step 5: a write while another connection holds the lock. */
static const char zLocked[] =
  "local db = ...\n"
  "local ok, err = pcall(db.model(db, 'Rack').create, db:model('Rack'),\n"
  "                      { name = 'locked' })\n"
  "return ok, err and err.code\n";

/* Run chunk z with the values on top of the stack as its arguments (n of
** them); leaves its nRes results.  Raises on error. */
static void run(lua_State *L, const char *z, const char *zName, int n,
                int nRes) {
  if (luaL_loadbuffer(L, z, strlen(z), zName) != LUA_OK) lua_error(L);
  lua_insert(L, -1 - n);
  lua_call(L, n, nRes);
}

/* Protected main.  Stack: [host] -> []. */
static int pmain(lua_State *L) {
  Host *h = lua_touserdata(L, 1);
  quay_open_opts opts;
  const char *z;
  int iDb;

  luaL_openlibs(L);
  quay_openlibs(L);
  memset(&opts, 0, sizeof(opts));
  opts.busy_timeout_ms = QUAY_BUSY_KEEP;      /* keep the host's handler */
  opts.sticky_ms = -1;
  quay_push_sqlite_opts(L, h->db, &opts);     /* [host, db] */
  iDb = lua_gettop(L);
  lua_pushvalue(L, iDb);
  run(L, zDeclare, "=declare", 1, 0);

  /* 1. The host's transaction, rolled back: nothing of Quay's stays. */
  sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
  lua_pushvalue(L, iDb);
  run(L, zWork, "=work", 1, 2);               /* [.., racks, books] */
  check(h, lua_tointeger(L, -2) == 1 && lua_tointeger(L, -1) == 2,
        "counts inside the host's transaction (1 rack, 2 books)");
  lua_pop(L, 2);
  check(h, sqlite3_get_autocommit(h->db) == 0,
        "the host's transaction is still open after Quay's work");
  sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
  check(h, sql_int(h->db, "SELECT count(*) FROM books") == -1,
        "ROLLBACK undid the tables and rows Quay made");

  /* 2. The same, committed: it all stays. */
  sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
  lua_pushvalue(L, iDb);
  run(L, zWork, "=work", 1, 2);
  lua_pop(L, 2);
  sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
  check(h, sql_int(h->db, "SELECT count(*) FROM books") == 2 &&
           sql_int(h->db, "SELECT count(*) FROM racks") == 1,
        "COMMIT kept Quay's rows (1 rack, 2 books)");

  /* 3. The host commits from inside db:transaction: misuse, not success. */
  sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
  lua_pushvalue(L, iDb);
  lua_pushlightuserdata(L, h);
  lua_pushcclosure(L, host_commit, 1);
  run(L, zCommitInside, "=inside", 2, 1);     /* [.., err] */
  lua_getfield(L, -1, "code");
  check(h, lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "misuse") == 0,
        "db:transaction raises misuse when the host commits inside it");
  lua_pop(L, 1);
  z = quay_tostring(L, -1);                   /* [.., err, text] */
  check(h, strstr(z, "ended outside Quay") != NULL &&
           strstr(z, "(misuse)") != NULL,
        "the error names what happened (quay_tostring)");
  lua_pop(L, 2);
  check(h, sql_int(h->db, "SELECT count(*) FROM racks") == 3,
        "the rows written around the host's COMMIT stayed (c and d)");

  /* 4. Wrapping a connection inside a transaction is refused: foreign
  ** keys cannot be turned on there (h->other never had them on). */
  sqlite3_exec(h->other, "BEGIN", NULL, NULL, NULL);
  lua_pushcfunction(L, push_other);
  lua_pushlightuserdata(L, h);
  check(h, lua_pcall(L, 1, 1, 0) != LUA_OK, "quay_push_sqlite inside the "
        "host's transaction raises");
  z = quay_tostring(L, -1);                   /* [.., err, text] */
  check(h, strstr(z, "inside a transaction") != NULL &&
           strstr(z, "(misuse)") != NULL,
        "and says why: foreign keys cannot be turned on there (misuse)");
  lua_pop(L, 2);
  check(h, sql_int(h->other, "PRAGMA foreign_keys") == 0,
        "(foreign keys are still off on that connection)");
  sqlite3_exec(h->other, "ROLLBACK", NULL, NULL, NULL);

  /* 5. Another connection holds the write lock: the host's busy handler
  ** is what waits (QUAY_BUSY_KEEP), and then Quay reports busy. */
  sqlite3_exec(h->other, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  lua_pushvalue(L, iDb);
  run(L, zLocked, "=locked", 1, 2);           /* [.., ok, code] */
  check(h, !lua_toboolean(L, -2) && lua_isstring(L, -1) &&
           strcmp(lua_tostring(L, -1), "busy") == 0,
        "a write under another connection's lock fails with busy");
  check(h, h->nBusy > 0, "the host's busy handler was called");
  lua_pop(L, 2);
  sqlite3_exec(h->other, "ROLLBACK", NULL, NULL, NULL);
  return 0;
}

int main(int argc, char **argv) {
  Host h;
  lua_State *L;
  char zPath[4096];
  int rc;
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  memset(&h, 0, sizeof(h));
  snprintf(zPath, sizeof(zPath), "%s/host_txn.db", argv[1]);
  remove(zPath);
  if (sqlite3_open(zPath, &h.db) != SQLITE_OK ||
      sqlite3_open(zPath, &h.other) != SQLITE_OK) {
    fprintf(stderr, "host_txn: cannot open %s\n", zPath);
    return 1;
  }
  sqlite3_busy_handler(h.db, busy, &h);
  L = luaL_newstate();
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &h);
  rc = lua_pcall(L, 1, 0, 1);
  if (rc != LUA_OK) {
    fprintf(stderr, "host_txn: %s\n", lua_tostring(L, -1));
    h.nFail++;
  }
  lua_close(L);                      /* frees the Quay db, not h.db */
  check(&h, sqlite3_close(h.db) == SQLITE_OK, "sqlite3_close of the host's "
        "connection (Quay left no statement open)");
  sqlite3_close(h.other);
  remove(zPath);
  if (h.nFail) return 1;
  printf("host_txn: every check passed\n");
  return 0;
}
