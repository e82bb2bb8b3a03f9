/*
** examples/host.c
** An example host program: a C application that owns its SQLite
** connection and lets Quay (through Lua) work on it.
** See LICENSE
**
**   host models.lua
**
** The host opens its own sqlite3 connection and writes a row with the
** plain SQLite API, then creates a Lua state, preloads Quay into it
** (quay_openlibs: the Lua layer is compiled into libquay, so no Lua files
** are needed on disk), wraps the connection as a Quay db
** (quay_push_sqlite), and runs the model script with that db.  It reads
** the script's results back through the Lua C API, drives one more query
** from C, and checks every value.  Then it closes the Lua state and, with
** the plain SQLite API again, reads what Quay wrote through the same
** connection before closing it: Quay never closes a borrowed handle, and
** must leave no statement open on it (sqlite3_close would say SQLITE_BUSY).
**
** Everything that can raise a Lua error runs inside one lua_pcall (lua.c's
** pmain pattern), so the host never unwinds through its own frames.
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
  const char *zScript;      /* path of the model script */
  sqlite3 *db;              /* the host's connection (host-owned) */
  int nCheck;               /* checks made */
  int nFail;                /* checks failed */
} Host;

/* Record one check; print the failing ones. */
static void check(Host *h, int ok, const char *zWhat, const char *zGot,
                  const char *zWant) {
  h->nCheck++;
  if (!ok) {
    h->nFail++;
    fprintf(stderr, "host: FAIL %s: got %s, want %s\n", zWhat, zGot, zWant);
  }
}

/* Check that field zKey of the table at idx is the integer iWant. */
static void check_int(Host *h, lua_State *L, int idx, const char *zKey,
                      lua_Integer iWant) {
  char zGot[32], zWant[32];
  int isNum;
  lua_Integer iGot;
  lua_getfield(L, idx, zKey);                        /* [.., v] */
  iGot = lua_tointegerx(L, -1, &isNum);
  snprintf(zGot, sizeof(zGot), isNum ? "%lld" : "(not an integer)",
           (long long)iGot);
  snprintf(zWant, sizeof(zWant), "%lld", (long long)iWant);
  check(h, isNum && iGot == iWant, zKey, zGot, zWant);
  lua_pop(L, 1);                                     /* [..] */
}

/* Check that the value on top of the stack is the string zWant; pops it. */
static void check_str(Host *h, lua_State *L, const char *zWhat,
                      const char *zWant) {
  const char *zGot = lua_tostring(L, -1);
  check(h, zGot != NULL && strcmp(zGot, zWant) == 0, zWhat,
        zGot ? zGot : "(not a string)", zWant);
  lua_pop(L, 1);
}

/* One integer from a SQL query on the host's own connection, or -1. */
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

/* Message handler: the error text (Quay errors have __tostring) and a
** traceback. */
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

/* Lua chunk the host runs with the db: reads the row the host wrote with
** the plain SQLite API before Quay was involved. */
static const char zReadHostRow[] =
  "local db = ...\n"
  "local rows = db:rows('SELECT value FROM host_settings WHERE key = ?',"
  " { 'greeting' })\n"
  "return rows[1] and rows[1].value\n";

/*
** Protected main.  Stack effect: [host] -> [].  Everything that may raise
** is here.
*/
static int pmain(lua_State *L) {
  Host *h = lua_touserdata(L, 1);
  int iDb, iRes, iSet, i;
  lua_Integer n;
  static const char *const azShelf[] = {
    "Ada host: Notes/1",
    "Richard host: Draft/0, SQLite Internals/2",
    "Roberto host: Lua Gems/2, Programming in Lua/1",
  };

  luaL_openlibs(L);
  quay_openlibs(L);                  /* package.preload.quay, quay.core */

  quay_push_sqlite(L, h->db);                        /* [host, db] */
  iDb = lua_gettop(L);

  /* Lua reads what C wrote. */
  if (luaL_loadstring(L, zReadHostRow) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, iDb);
  lua_call(L, 1, 1);                                 /* [host, db, value] */
  check_str(h, L, "host_settings.greeting", "hello from C");

  /* Run the model script: script(db, "host") -> result table. */
  if (luaL_loadfile(L, h->zScript) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, iDb);
  lua_pushliteral(L, "host");
  lua_call(L, 2, 1);                                 /* [host, db, res] */
  iRes = lua_gettop(L);
  luaL_checktype(L, iRes, LUA_TTABLE);

  check_int(h, L, iRes, "authors", 3);
  check_int(h, L, iRes, "books", 5);
  check_int(h, L, iRes, "tagged_lua", 2);
  check_int(h, L, iRes, "tagged_c_or_sql", 3);
  check_int(h, L, iRes, "prefetch_queries", 3);
  check_int(h, L, iRes, "authors_after_rollback", 3);
  check_int(h, L, iRes, "books_left", 3);
  lua_getfield(L, iRes, "rollback_code");
  check_str(h, L, "rollback_code", "integrity");

  /* Deletion counts per model (join tables by table name). */
  lua_getfield(L, iRes, "deleted");                  /* [.., deleted] */
  check_int(h, L, -1, "Author", 1);
  check_int(h, L, -1, "Book", 2);
  check_int(h, L, -1, "Review", 3);
  check_int(h, L, -1, "books_tags", 2);
  lua_pop(L, 1);

  /* The shelf: an array of strings. */
  lua_getfield(L, iRes, "shelf");                    /* [.., shelf] */
  n = luaL_len(L, -1);
  check(h, n == 3, "#shelf", n == 3 ? "3" : "other", "3");
  for (i = 0; i < 3 && i < n; i++) {
    lua_geti(L, -1, i + 1);
    check_str(h, L, "shelf entry", azShelf[i]);
  }
  lua_pop(L, 1);                                     /* [host, db, res] */

  /*
  ** Drive a query from C through the Lua API:
  **   local a = Author:filter { name__startswith = "Rob" }:first()
  ** then read a.name and walk a.books (a related set: #set, set[i]).
  */
  lua_getfield(L, iRes, "models");
  lua_getfield(L, -1, "Author");                     /* [.., models, A] */
  lua_getfield(L, -1, "filter");
  lua_insert(L, -2);                                 /* [.., filter, A] */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "Rob");
  lua_setfield(L, -2, "name__startswith");           /* [.., filter, A, c] */
  lua_call(L, 2, 1);                                 /* [.., models, qs] */
  lua_getfield(L, -1, "first");
  lua_insert(L, -2);
  lua_call(L, 1, 1);                                 /* [.., models, rec] */
  check(h, lua_istable(L, -1), "Author:first()", luaL_typename(L, -1),
        "a record");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "name");
    check_str(h, L, "author name", "Roberto host");
    lua_getfield(L, -1, "books");                    /* [.., rec, set] */
    iSet = lua_gettop(L);
    n = luaL_len(L, iSet);                           /* loads the set */
    check(h, n == 2, "#author.books", n == 2 ? "2" : "other", "2");
    for (i = 1; i <= n; i++) {
      lua_geti(L, iSet, i);                          /* [.., set, book] */
      lua_getfield(L, -1, "year");
      check(h, lua_tointeger(L, -1) >= 2003, "book.year", "<2003", ">=2003");
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, iRes);                               /* [host, db, res] */

  /* db:close() detaches Quay from the handle; the handle stays open. */
  lua_getfield(L, iDb, "close");
  lua_pushvalue(L, iDb);
  lua_call(L, 1, 0);
  check(h, sql_int(h->db, "SELECT count(*) FROM authors") == 2,
        "authors via the host's handle after db:close()", "other", "2");
  return 0;
}

int main(int argc, char **argv) {
  Host h;
  lua_State *L;
  int rc, status = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s models.lua\n", argv[0]);
    return 2;
  }
  memset(&h, 0, sizeof(h));
  h.zScript = argv[1];

  /* The host's own connection, with a table of its own. */
  if (sqlite3_open_v2(":memory:", &h.db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      NULL) != SQLITE_OK ||
      sqlite3_exec(h.db,
                   "CREATE TABLE host_settings (key TEXT PRIMARY KEY, value);"
                   "INSERT INTO host_settings VALUES ('greeting',"
                   " 'hello from C');", NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "host: sqlite: %s\n",
            h.db ? sqlite3_errmsg(h.db) : "out of memory");
    sqlite3_close(h.db);
    return 1;
  }

  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "host: cannot create a Lua state\n");
    sqlite3_close(h.db);
    return 1;
  }
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &h);
  rc = lua_pcall(L, 1, 0, 1);
  if (rc != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  lua_close(L);                      /* frees the Quay db; h.db stays open */

  /* Quay is gone; the data it wrote is in the host's connection. */
  if (status == 0) {
    check(&h, sql_int(h.db, "SELECT count(*) FROM books") == 3,
          "books after lua_close", "other", "3");
    check(&h, sql_int(h.db, "SELECT count(*) FROM reviews") == 9,
          "reviews after lua_close", "other", "9");
    check(&h, sql_int(h.db, "PRAGMA foreign_keys") == 1,
          "foreign_keys turned on by Quay", "0", "1");
  }
  rc = sqlite3_close(h.db);          /* SQLITE_BUSY if a statement leaked */
  check(&h, rc == SQLITE_OK, "sqlite3_close", sqlite3_errstr(rc),
        "not an error");

  if (status == 0 && h.nFail == 0) {
    printf("host: %d checks passed\n", h.nCheck);
    return 0;
  }
  fprintf(stderr, "host: %d of %d checks failed\n", h.nFail, h.nCheck);
  return 1;
}
