/*
** scripts/benchmark/floor.c
** The benchmark floor: what a careful hand-written program does with the
** sqlite3 C API and the Lua C API, and the fixed-seed data generator.
** See LICENSE
**
**   quay_bench_floor gen FILE SCALE SEED
**       fill FILE (tables already made by Quay's db:create_tables()) with
**       the bench data: 10k users * SCALE, each with a profile; 10 posts
**       per user (authors shuffled), created over 2023-2024 in id order;
**       500 tags * SCALE (at least 50);
**       3 distinct tags per post; 3 comments per post.
**   quay_bench_floor WORKLOAD FILE LOOPS.lua NUSERS QUAYSQL
**       run one workload on FILE and print one line
**       "time=S cpu=S queries=N peak_kb=K base_kb=B check=C".  QUAYSQL is
**       the file `quay_side.lua sql` writes: the statements Quay sends for
**       the read workloads, with their parameters.
**
** Each workload runs the SQL Quay runs (read from QUAYSQL, so the floor
** follows the engine's SQL as it changes; the result columns are checked
** by name), or the hand-written form where the workload says so (W2's
** subquery variant, W4, W5, W6's point queries, W7, W8, W9, W10), builds
** the same Lua values through the Lua C API (one table per record keyed
** by column name, related records attached, shared records deduplicated by
** id
** through an id->table map), then calls the same Lua loop as the Quay side
** (LOOPS.lua).  Keys are pushed once per workload and set with lua_rawset
** on tables created at their final size.  The connection gets the open
** flags and pragmas Quay's SQLite driver sets (NOMUTEX; foreign_keys ON,
** WAL, synchronous NORMAL).
** Time is CLOCK_MONOTONIC from before the first prepare to after the Lua
** loop returns, cpu the process CPU time over the same span; peak_kb is
** VmHWM read at the end, base_kb VmRSS just before the clock starts
** (benchclock reads both alike).  W7 and W8 compute their check string
** after the clock stops (loops.lua w7_check / w8_check, as the Quay side).
*/
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>

#include <math.h>

#include "floor_util.h"

typedef struct Ctx {
  lua_State *L;
  sqlite3 *db;
  int nQuery;          /* statements executed (BEGIN/COMMIT included) */
  int iLoops;          /* stack index of the loops table */
  lua_Integer nUsers;  /* users in the data set (W5 input) */
  char zCheck[256];    /* result summary, compared with the Quay side */
  char *zQuaySql;      /* the file written by `quay_side.lua sql` */
  int iResult;         /* with zCheckFn: the result, checked after the clock */
  const char *zCheckFn;  /* loops[zCheckFn](result) gives the check string */
} Ctx;

/*
** {======================================================
** SQLite helpers
** =======================================================
*/

static sqlite3_stmt *prep(Ctx *c, const char *zSql) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v2(c->db, zSql, -1, &s, NULL) != SQLITE_OK)
    die("prepare: %s\n  %s", sqlite3_errmsg(c->db), zSql);
  return s;
}

static int step(Ctx *c, sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    die("step: %s\n  %s", sqlite3_errmsg(c->db), sqlite3_sql(s));
  return rc;
}

static void exec(Ctx *c, const char *zSql) {
  char *zErr = NULL;
  if (sqlite3_exec(c->db, zSql, NULL, NULL, &zErr) != SQLITE_OK)
    die("exec: %s\n  %s", zErr ? zErr : "?", zSql);
  c->nQuery++;
}

/* Prepare Quay's statement zKey and bind the parameters Quay bound (JSON
** key lists are bound by the caller instead). */
static sqlite3_stmt *prep_quay(Ctx *c, const char *zKey) {
  char zPKey[64];
  size_t n;
  const char *zNext, *zLine;
  const char *zSql = find_line(c->zQuaySql, zKey, &n, &zNext);
  char *zCopy;
  sqlite3_stmt *s;
  int i = 0;
  if (zSql == NULL)
    die("Quay's SQL for %s not recorded (workload shape changed?)", zKey);
  zCopy = malloc(n + 1);
  if (zCopy == NULL) die("out of memory");
  memcpy(zCopy, zSql, n);
  zCopy[n] = 0;
  s = prep(c, zCopy);
  free(zCopy);
  snprintf(zPKey, sizeof zPKey, "%s.param", zKey);
  while ((zLine = find_line(zNext, zPKey, &n, &zNext)) != NULL) {
    char ty = zLine[0];
    const char *zVal = zLine + 2;
    i++;
    if (n < 2) die("bad parameter line for %s", zKey);
    if (ty == 'i') sqlite3_bind_int64(s, i, strtoll(zVal, NULL, 10));
    else if (ty == 'n') sqlite3_bind_double(s, i, strtod(zVal, NULL));
    else sqlite3_bind_text(s, i, zVal, (int)(n - 2), SQLITE_TRANSIENT);
  }
  return s;
}

/* Die unless the result columns start with the given names (the floor
** builds its tables by position). */
static void expect_cols(sqlite3_stmt *s, const char *zKey,
                        const char *const *az, int n) {
  int i;
  if (sqlite3_column_count(s) < n) die("Quay's SQL for %s changed shape", zKey);
  for (i = 0; i < n; i++) {
    const char *zName = sqlite3_column_name(s, i);
    if (zName == NULL || strcmp(zName, az[i]) != 0)
      die("Quay's SQL for %s changed shape: column %d is '%s', expected '%s'",
          zKey, i, zName ? zName : "?", az[i]);
  }
}

/* Bind the keys as one JSON array text, as Quay does for json_each(?). */
static void bind_json_keys(sqlite3_stmt *s, int iParam, const KeyList *k) {
  size_t n;
  char *z = keys_text(k, '[', ']', &n);
  sqlite3_bind_text(s, iParam, z, (int)n, free);
}

/* }====================================================== */

/*
** {======================================================
** Building Lua records
** =======================================================
*/

/* t[keys[k]] = column col0+k for k in 0..n-1 (NULL columns left unset). */
static void set_cols(lua_State *L, int t, int keys, sqlite3_stmt *s,
                     int col0, int n) {
  int k;
  for (k = 0; k < n; k++) {
    int i = col0 + k;
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_NULL: continue;
      case SQLITE_INTEGER:
        lua_pushvalue(L, keys + k);                         /* [.., key] */
        lua_pushinteger(L, sqlite3_column_int64(s, i));     /* [.., key, v] */
        break;
      case SQLITE_FLOAT:
        lua_pushvalue(L, keys + k);
        lua_pushnumber(L, sqlite3_column_double(s, i));
        break;
      default: {
        const char *z = (const char *)sqlite3_column_text(s, i);
        lua_pushvalue(L, keys + k);
        lua_pushlstring(L, z, (size_t)sqlite3_column_bytes(s, i));
      }
    }
    lua_rawset(L, t);                                           /* [..] */
  }
}

/* Call loops[zName](arg) with nRet results left on the stack. */
static void call_loop(Ctx *c, const char *zName, int iArg, int nRet) {
  call_lua_loop(c->L, c->iLoops, zName, iArg, nRet);
}

/* }====================================================== */

/*
** {======================================================
** Workloads
** =======================================================
*/

static const char *const azUserKeys[] = {"id", "name", "email", "posts"};
/* A post record: the columns Quay selects (P_NCOL of them, author_id at
** P_AUTHOR_ID), then the keys of its related records (KP_*). */
enum { P_NCOL = 5, P_AUTHOR_ID = 4, KP_AUTHOR = 5, KP_TAGS = 6, KP_COMMENTS = 7,
       KP_N = 8 };
static const char *const azPostKeys[] = {"id", "title", "views", "created",
                                         "author_id", "author", "tags",
                                         "comments"};
static const char *const azTagKeys[] = {"id", "name"};

/* W1: Quay's select_related("author") statement. */
static void w1(Ctx *c) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, KP_AUTHOR + 1),
      ku = push_keys(L, azUserKeys, 3);
  int res, users;
  lua_Integer n = 0;
  static const char *const azCols[] = {"id", "title", "views", "created",
                                       "author_id", "id", "name", "email"};
  sqlite3_stmt *s = prep_quay(c, "w1.1");
  expect_cols(s, "w1.1", azCols, P_NCOL + 3);
  lua_newtable(L); res = lua_gettop(L);       /* the result array */
  lua_newtable(L); users = lua_gettop(L);     /* id -> user (dedup) */
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    int p;
    lua_createtable(L, 0, P_NCOL + 1); p = lua_gettop(L);   /* [post] */
    set_cols(L, p, kp, s, 0, P_NCOL);
    if (sqlite3_column_type(s, P_NCOL) != SQLITE_NULL) {
      lua_Integer uid = sqlite3_column_int64(s, P_NCOL);
      lua_pushvalue(L, kp + KP_AUTHOR);                  /* [post, "author"] */
      if (lua_rawgeti(L, users, uid) == LUA_TNIL) {      /* [post, k, u?] */
        lua_pop(L, 1);
        lua_createtable(L, 0, 3);
        set_cols(L, lua_gettop(L), ku, s, P_NCOL, 3);
        lua_pushvalue(L, -1);
        lua_rawseti(L, users, uid);
      }
      lua_rawset(L, p);                                  /* [post] */
    }
    lua_rawseti(L, res, ++n);                            /* [] */
  }
  sqlite3_finalize(s);
  call_loop(c, "w1", res, 1);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%lld,sum=%lld", (long long)n,
           (long long)lua_tointeger(L, -1));
}

/* W2: Quay's three statements (users, then posts and posts__tags with keys
** as one JSON array), or the same with keys by subquery (bJson == 0). */
static const char zW2PostsSub[] =
  "SELECT \"t0\".\"id\", \"t0\".\"title\", \"t0\".\"views\", "
  "\"t0\".\"created\", \"t0\".\"author_id\" "
  "FROM \"posts\" AS \"t0\" WHERE \"t0\".\"author_id\" IN "
  "(SELECT \"u\".\"id\" FROM \"users\" AS \"u\")";
static const char zW2TagsSub[] =
  "SELECT \"t1\".\"id\", \"t1\".\"name\", \"t0\".\"post_id\" "
  "FROM \"posts_tags\" AS \"t0\" "
  "JOIN \"tags\" AS \"t1\" ON \"t1\".\"id\" = \"t0\".\"tag_id\" "
  "WHERE \"t0\".\"post_id\" IN (SELECT \"p\".\"id\" FROM \"posts\" AS \"p\" "
  "WHERE \"p\".\"author_id\" IN (SELECT \"u\".\"id\" FROM \"users\" AS \"u\"))";

static void w2(Ctx *c, int bJson) {
  lua_State *L = c->L;
  int ku = push_keys(L, azUserKeys, 4),
      kp = push_keys(L, azPostKeys, KP_TAGS + 1);
  int kt = push_keys(L, azTagKeys, 2);
  int res, umap, pmap, tmap, iOwner;
  lua_Integer n = 0, nPost = 0, nLink = 0;
  KeyList keys = {NULL, 0, 0};
  sqlite3_stmt *s;

  lua_newtable(L); res = lua_gettop(L);
  lua_newtable(L); umap = lua_gettop(L);
  lua_newtable(L); pmap = lua_gettop(L);
  lua_newtable(L); tmap = lua_gettop(L);

  s = prep_quay(c, "w2.1");
  expect_cols(s, "w2.1", azUserKeys, 3);
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    int u;
    sqlite3_int64 id = sqlite3_column_int64(s, 0);
    lua_createtable(L, 0, 4); u = lua_gettop(L);          /* [u] */
    set_cols(L, u, ku, s, 0, 3);
    lua_pushvalue(L, ku + 3); lua_newtable(L); lua_rawset(L, u);  /* u.posts */
    lua_pushvalue(L, u); lua_rawseti(L, umap, id);
    lua_rawseti(L, res, ++n);                             /* [] */
    if (bJson) keys_add(&keys, id);
  }
  sqlite3_finalize(s);

  s = bJson ? prep_quay(c, "w2.2") : prep(c, zW2PostsSub);
  expect_cols(s, "w2.2", azPostKeys, P_NCOL);
  iOwner = sqlite3_column_count(s) - 1;    /* Quay appends the owner key */
  if (bJson) bind_json_keys(s, 1, &keys);
  keys.n = 0;
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    int p;
    sqlite3_int64 id = sqlite3_column_int64(s, 0);
    lua_createtable(L, 0, P_NCOL + 1); p = lua_gettop(L);   /* [p] */
    set_cols(L, p, kp, s, 0, P_NCOL);
    /* p.tags */
    lua_pushvalue(L, kp + KP_TAGS); lua_newtable(L); lua_rawset(L, p);
    lua_pushvalue(L, p); lua_rawseti(L, pmap, id);
    lua_rawgeti(L, umap, sqlite3_column_int64(s, iOwner)); /* [p, owner] */
    lua_insert(L, -2);                                   /* [owner, p] */
    append_to(L, lua_gettop(L) - 1, ku + 3);             /* [owner] */
    lua_pop(L, 1);
    nPost++;
    if (bJson) keys_add(&keys, id);
  }
  sqlite3_finalize(s);

  s = bJson ? prep_quay(c, "w2.3") : prep(c, zW2TagsSub);
  expect_cols(s, "w2.3", azTagKeys, 2);
  iOwner = sqlite3_column_count(s) - 1;
  if (bJson) bind_json_keys(s, 1, &keys);
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    lua_Integer tid = sqlite3_column_int64(s, 0);
    lua_rawgeti(L, pmap, sqlite3_column_int64(s, iOwner)); /* [p] */
    if (lua_rawgeti(L, tmap, tid) == LUA_TNIL) {         /* [p, t?] */
      lua_pop(L, 1);
      lua_createtable(L, 0, 2);
      set_cols(L, lua_gettop(L), kt, s, 0, 2);
      lua_pushvalue(L, -1);
      lua_rawseti(L, tmap, tid);
    }
    append_to(L, lua_gettop(L) - 1, kp + KP_TAGS);       /* [p] */
    lua_pop(L, 1);
    nLink++;
  }
  sqlite3_finalize(s);
  free(keys.a);

  call_loop(c, "w2", res, 1);
  snprintf(c->zCheck, sizeof c->zCheck,
           "users=%lld,posts=%lld,links=%lld,sum=%lld",
           (long long)n, (long long)nPost, (long long)nLink,
           (long long)lua_tointeger(L, -1));
}

/* W3: Quay's statement for filter{author__email__endswith=..., tags__name=...},
** prepared once and run 20 times with Quay's parameters. */
static void w3(Ctx *c) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, P_NCOL);
  int r;
  lua_Integer cnt = 0, sum = 0;
  sqlite3_stmt *s = prep_quay(c, "w3.1");
  expect_cols(s, "w3.1", azPostKeys, P_NCOL);
  for (r = 0; r < 20; r++) {
    int res;
    lua_Integer n = 0;
    sqlite3_reset(s);                  /* bindings stay */
    lua_newtable(L); res = lua_gettop(L);
    c->nQuery++;
    while (step(c, s) == SQLITE_ROW) {
      lua_createtable(L, 0, P_NCOL);
      set_cols(L, lua_gettop(L), kp, s, 0, P_NCOL);
      lua_rawseti(L, res, ++n);
    }
    call_loop(c, "w3", res, 2);
    cnt += lua_tointeger(L, -2);
    sum += lua_tointeger(L, -1);
    lua_settop(L, res - 1);
  }
  sqlite3_finalize(s);
  snprintf(c->zCheck, sizeof c->zCheck, "count=%lld,idsum=%lld",
           (long long)cnt, (long long)sum);
}

/* W4: the minimal set-based delete: children first, keys by subquery. */
static void w4(Ctx *c) {
  static const struct { const char *zName, *zSql; } aDel[] = {
    {"Comment", "DELETE FROM \"comments\" WHERE \"post_id\" IN "
                "(SELECT \"id\" FROM \"posts\" WHERE \"author_id\" IN "
                "(SELECT \"id\" FROM \"users\" WHERE \"id\" <= 1000))"},
    {"posts_tags", "DELETE FROM \"posts_tags\" WHERE \"post_id\" IN "
                   "(SELECT \"id\" FROM \"posts\" WHERE \"author_id\" IN "
                   "(SELECT \"id\" FROM \"users\" WHERE \"id\" <= 1000))"},
    {"Post", "DELETE FROM \"posts\" WHERE \"author_id\" IN (SELECT \"id\" FROM "
             "\"users\" WHERE \"id\" <= 1000)"},
    {"Profile", "DELETE FROM \"profiles\" WHERE \"user_id\" IN (SELECT \"id\" "
                "FROM \"users\" WHERE \"id\" <= 1000)"},
    {"User", "DELETE FROM \"users\" WHERE \"id\" <= 1000"},
  };
  int aN[5], i;
  exec(c, "BEGIN IMMEDIATE");
  for (i = 0; i < 5; i++) {
    exec(c, aDel[i].zSql);
    aN[i] = sqlite3_changes(c->db);
  }
  exec(c, "COMMIT");
  /* Same order as the Quay side prints (model names sorted). */
  snprintf(c->zCheck, sizeof c->zCheck,
           "Comment=%d,Post=%d,Profile=%d,User=%d,posts_tags=%d",
           aN[0], aN[2], aN[3], aN[4], aN[1]);
}

/*
** W12: the documented table rebuild of SQLite ("Making Other Kinds Of
** Table Schema Changes", steps 1-12), by hand: posts gets a NOT NULL
** rating with a default and title becomes TEXT.  Foreign keys off around
** the transaction, the new table, the copy, the drop, the rename, the
** index again, the foreign key check, commit.
*/
static void w12(Ctx *c) {
  sqlite3_stmt *s;
  exec(c, "PRAGMA foreign_keys = OFF");
  exec(c, "BEGIN IMMEDIATE");
  exec(c, "CREATE TABLE \"new_posts\" (\"id\" INTEGER PRIMARY KEY, "
          "\"title\" TEXT NOT NULL, \"views\" INTEGER NOT NULL, "
          "\"author_id\" INTEGER NOT NULL REFERENCES \"users\" (\"id\") "
          "ON DELETE NO ACTION ON UPDATE CASCADE, "
          "\"rating\" REAL NOT NULL DEFAULT 0)");
  exec(c, "INSERT INTO \"new_posts\" (\"id\", \"title\", \"views\", "
          "\"author_id\") SELECT \"id\", \"title\", \"views\", \"author_id\" "
          "FROM \"posts\"");
  exec(c, "DROP TABLE \"posts\"");
  exec(c, "ALTER TABLE \"new_posts\" RENAME TO \"posts\"");
  exec(c, "CREATE INDEX \"posts_author_id_idx\" ON \"posts\" (\"author_id\")");
  s = prep(c, "PRAGMA foreign_key_check(\"posts\")");
  if (step(c, s) == SQLITE_ROW) die("w12: foreign key check failed");
  sqlite3_finalize(s);
  c->nQuery++;
  exec(c, "COMMIT");
  exec(c, "PRAGMA foreign_keys = ON");
}

/* W12's result, computed after the clock as the Quay side does. */
static void w12_check(Ctx *c) {
  sqlite3_stmt *s = prep(c, "SELECT count(*), sum(views), sum(rating), "
                            "(SELECT type FROM pragma_table_info('posts') "
                            "WHERE name = 'title') FROM posts");
  step(c, s);
  {
    char zType[32];
    int i;
    snprintf(zType, sizeof zType, "%s",
             (const char *)sqlite3_column_text(s, 3));
    for (i = 0; zType[i]; i++) {
      if (zType[i] >= 'A' && zType[i] <= 'Z') zType[i] = (char)(zType[i] + 32);
    }
    snprintf(c->zCheck, sizeof c->zCheck,
             "rows=%d,views=%lld,rating=%g,title=%s",
             sqlite3_column_int(s, 0), (long long)sqlite3_column_int64(s, 1),
             sqlite3_column_double(s, 2), zType);
  }
  sqlite3_finalize(s);
}

/*
** W5's input (untimed): the keys title, views, author_id, id pushed from
** *pK on, then the 100k rows at *pRows (*pN of them).
*/
static void w5_input(Ctx *c, int *pK, int *pRows, int *pN) {
  lua_State *L = c->L;
  static const char *const azIn[] = {"title", "views", "author_id", "id"};
  *pK = push_keys(L, azIn, 4);
  lua_getfield(L, c->iLoops, "w5_rows");
  lua_pushinteger(L, 100000);
  lua_pushinteger(L, c->nUsers);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) die("lua: %s", lua_tostring(L, -1));
  *pRows = lua_gettop(L);
  *pN = (int)lua_rawlen(L, *pRows);
  lua_gc(L, LUA_GCCOLLECT);
}

/* W5's clock (from t0, c0) and its check: the rows and the sum of row.id. */
static void w5_done(Ctx *c, int rows, int n, double t0, double c0) {
  lua_State *L = c->L;
  lua_pushnumber(L, now() - t0);
  lua_setglobal(L, "W5_TIME");
  lua_pushnumber(L, cpu_now() - c0);
  lua_setglobal(L, "W5_CPU");
  w5_idsum(L, rows, n, c->zCheck, sizeof c->zCheck);
}

/* W5: one prepared INSERT stepped per row in one transaction. */
static void w5(Ctx *c) {
  lua_State *L = c->L;
  int k, rows, i, n;
  sqlite3_stmt *s;
  double t0, c0;
  w5_input(c, &k, &rows, &n);

  c0 = cpu_now();
  t0 = now();
  exec(c, "BEGIN IMMEDIATE");
  s = prep(c, "INSERT INTO \"posts\" (\"title\", \"views\", \"author_id\") "
              "VALUES (?, ?, ?)");
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *z;
    lua_rawgeti(L, rows, i);                               /* [row] */
    lua_pushvalue(L, k); lua_rawget(L, -2);                /* [row, title] */
    z = lua_tolstring(L, -1, &len);
    sqlite3_bind_text(s, 1, z, (int)len, SQLITE_STATIC);
    lua_pushvalue(L, k + 1); lua_rawget(L, -3);     /* [row, title, views] */
    sqlite3_bind_int64(s, 2, lua_tointeger(L, -1));
    lua_pushvalue(L, k + 2); lua_rawget(L, -4);            /* [.., author_id] */
    sqlite3_bind_int64(s, 3, lua_tointeger(L, -1));
    c->nQuery++;
    step(c, s);
    sqlite3_reset(s);
    lua_pop(L, 3);                                         /* [row] */
    lua_pushvalue(L, k + 3);
    lua_pushinteger(L, sqlite3_last_insert_rowid(c->db));
    lua_rawset(L, -3);                                     /* row.id = rowid */
    lua_pop(L, 1);                                         /* [] */
  }
  sqlite3_finalize(s);
  exec(c, "COMMIT");
  w5_done(c, rows, n, t0, c0);
}

/*
** W5b: the form Quay sends on SQLite since the bulk path (writer.c "Bulk
** inserts"): foreign-key enforcement off for the transaction, a prepared
** 64-row INSERT OR FAIL (and one for the tail), keys from the last rowid,
** then one check that every distinct author id exists (a JSON array
** through json_each); sets row.id.
*/
#define W5B_ROWS 64
static sqlite3_stmt *w5b_prep(Ctx *c, int nRow) {
  char zSql[W5B_ROWS * 12 + 128];
  int i, o;
  o = snprintf(zSql, sizeof zSql, "INSERT OR FAIL INTO \"posts\" (\"title\", "
               "\"views\", \"author_id\") VALUES ");
  for (i = 0; i < nRow; i++) {
    o += snprintf(zSql + o, sizeof zSql - (size_t)o, "%s(?, ?, ?)",
                  i ? ", " : "");
  }
  return prep(c, zSql);
}

static void w5bulk(Ctx *c) {
  lua_State *L = c->L;
  int k, rows, i, j, n, on = 0;
  sqlite3_stmt *s, *sTail = NULL, *chk;
  double t0, c0;
  unsigned char *aSeen;
  char *zJson;
  size_t nJson = 0;
  w5_input(c, &k, &rows, &n);
  aSeen = calloc((size_t)c->nUsers + 2, 1);
  zJson = malloc(((size_t)c->nUsers + 2) * 21 + 2);
  if (aSeen == NULL || zJson == NULL) die("out of memory");

  c0 = cpu_now();
  t0 = now();
  exec(c, "BEGIN IMMEDIATE");
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_FKEY, 0, &on);
  s = w5b_prep(c, W5B_ROWS);
  for (i = 1; i <= n; i += W5B_ROWS) {
    int nRow = n - i + 1 < W5B_ROWS ? n - i + 1 : W5B_ROWS;
    sqlite3_stmt *st = s;
    sqlite3_int64 last;
    if (nRow < W5B_ROWS) st = sTail = w5b_prep(c, nRow);
    for (j = 0; j < nRow; j++) {
      size_t len;
      const char *z;
      lua_Integer a;
      lua_rawgeti(L, rows, i + j);                         /* [row] */
      lua_pushvalue(L, k); lua_rawget(L, -2);              /* [row, title] */
      z = lua_tolstring(L, -1, &len);
      sqlite3_bind_text(st, 3 * j + 1, z, (int)len, SQLITE_STATIC);
      lua_pushvalue(L, k + 1); lua_rawget(L, -3);
      sqlite3_bind_int64(st, 3 * j + 2, lua_tointeger(L, -1));
      lua_pushvalue(L, k + 2); lua_rawget(L, -4);
      a = lua_tointeger(L, -1);
      sqlite3_bind_int64(st, 3 * j + 3, a);
      if (a >= 0 && a <= c->nUsers + 1) aSeen[a] = 1;
      lua_pop(L, 4);
    }
    c->nQuery++;
    step(c, st);
    sqlite3_reset(st);
    last = sqlite3_last_insert_rowid(c->db);
    for (j = 0; j < nRow; j++) {                    /* row.id = rowid */
      lua_rawgeti(L, rows, i + j);
      lua_pushvalue(L, k + 3);
      lua_pushinteger(L, last - (nRow - 1 - j));
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
  }
  sqlite3_finalize(s);
  sqlite3_finalize(sTail);
  zJson[nJson++] = '[';
  for (i = 0; i <= c->nUsers + 1; i++) {
    if (aSeen[i]) {
      nJson += (size_t)sprintf(zJson + nJson, "%s%d", nJson > 1 ? "," : "",
                               i);
    }
  }
  zJson[nJson++] = ']';
  chk = prep(c, "SELECT j.value FROM json_each(?1) AS j WHERE NOT EXISTS "
                "(SELECT 1 FROM \"users\" AS p WHERE p.\"id\" = j.value) "
                "LIMIT 1");
  sqlite3_bind_text(chk, 1, zJson, (int)nJson, SQLITE_STATIC);
  c->nQuery++;
  if (sqlite3_step(chk) != SQLITE_DONE) die("w5bulk: a missing author");
  sqlite3_finalize(chk);
  exec(c, "COMMIT");
  sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &on);
  w5_done(c, rows, n, t0, c0);
  free(aSeen);
  free(zJson);
}

/* Build the input rows of loops[zFn](100000, nUsers) (untimed). */
static int input_rows(Ctx *c, const char *zFn) {
  lua_State *L = c->L;
  lua_getfield(L, c->iLoops, zFn);
  lua_pushinteger(L, 100000);
  lua_pushinteger(L, c->nUsers);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) die("lua: %s", lua_tostring(L, -1));
  lua_gc(L, LUA_GCCOLLECT);
  return lua_gettop(L);
}

/* The clock of a workload whose input is built untimed. */
static void set_clock(Ctx *c, double t0, double c0) {
  lua_pushnumber(c->L, now() - t0);
  lua_setglobal(c->L, "W_TIME");
  lua_pushnumber(c->L, cpu_now() - c0);
  lua_setglobal(c->L, "W_CPU");
}

/*
** W9: upsert 100k posts on their id, half of them existing (scale 1):
** the statement form Quay sends on SQLite, INSERT ... VALUES of 500 rows
** ... ON CONFLICT ("id") DO UPDATE SET title, views ... RETURNING every
** column, prepared once per batch size; each returned row's values are
** set on its input row (found by id).
*/
#define W9_BATCH 500

static void w9_sql(char *z, size_t nz, int nRow) {
  int i, n = snprintf(z, nz, "INSERT INTO \"posts\" (\"id\", \"title\", "
                             "\"views\", \"author_id\") VALUES ");
  for (i = 0; i < nRow; i++) {
    n += snprintf(z + n, nz - (size_t)n, "%s(?, ?, ?, ?)", i ? ", " : "");
  }
  snprintf(z + n, nz - (size_t)n, " ON CONFLICT (\"id\") DO UPDATE SET "
           "\"title\" = excluded.\"title\", \"views\" = excluded.\"views\" "
           "RETURNING \"id\", \"title\", \"views\", \"author_id\"");
}

static void w9(Ctx *c) {
  lua_State *L = c->L;
  static const char *const azIn[] = {"id", "title", "views", "author_id"};
  static char zSql[W9_BATCH * 16 + 400];
  int k, rows, i, j, n, nPrep = 0;
  sqlite3_stmt *s = NULL;
  double t0, c0;
  lua_Integer sum = 0, vsum = 0, base;
  k = push_keys(L, azIn, 4);
  rows = input_rows(c, "w9_rows");
  n = (int)lua_rawlen(L, rows);
  c0 = cpu_now();
  t0 = now();
  exec(c, "BEGIN IMMEDIATE");
  for (i = 1; i <= n; i += W9_BATCH) {
    int m = n - i + 1 < W9_BATCH ? n - i + 1 : W9_BATCH;
    if (m != nPrep) {
      if (s) sqlite3_finalize(s);
      w9_sql(zSql, sizeof zSql, m);
      s = prep(c, zSql);
      nPrep = m;
    }
    for (j = 0; j < m; j++) {
      size_t len;
      const char *z;
      lua_rawgeti(L, rows, i + j);                           /* [row] */
      lua_pushvalue(L, k); lua_rawget(L, -2);
      sqlite3_bind_int64(s, 4 * j + 1, lua_tointeger(L, -1));
      lua_pushvalue(L, k + 1); lua_rawget(L, -3);
      z = lua_tolstring(L, -1, &len);
      /* the row keeps it */
      sqlite3_bind_text(s, 4 * j + 2, z, (int)len, SQLITE_STATIC);
      lua_pushvalue(L, k + 2); lua_rawget(L, -4);
      sqlite3_bind_int64(s, 4 * j + 3, lua_tointeger(L, -1));
      lua_pushvalue(L, k + 3); lua_rawget(L, -5);
      sqlite3_bind_int64(s, 4 * j + 4, lua_tointeger(L, -1));
      lua_pop(L, 5);
    }
    lua_rawgeti(L, rows, i);
    lua_pushvalue(L, k); lua_rawget(L, -2);
    base = lua_tointeger(L, -1) - i;                /* id = base + index */
    lua_pop(L, 2);
    c->nQuery++;
    while (step(c, s) == SQLITE_ROW) {
      lua_Integer id = sqlite3_column_int64(s, 0);
      lua_rawgeti(L, rows, id - base);                       /* [row] */
      lua_pushvalue(L, k); lua_pushinteger(L, id); lua_rawset(L, -3);
      lua_pushvalue(L, k + 1);
      lua_pushlstring(L, (const char *)sqlite3_column_text(s, 1),
                      (size_t)sqlite3_column_bytes(s, 1));
      lua_rawset(L, -3);
      lua_pushvalue(L, k + 2); lua_pushinteger(L, sqlite3_column_int64(s, 2));
      lua_rawset(L, -3);
      lua_pushvalue(L, k + 3); lua_pushinteger(L, sqlite3_column_int64(s, 3));
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
  if (s) sqlite3_finalize(s);
  exec(c, "COMMIT");
  set_clock(c, t0, c0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, rows, i);
    lua_getfield(L, -1, "id");
    sum += lua_tointeger(L, -1);
    lua_getfield(L, -2, "views");
    vsum += lua_tointeger(L, -1);
    lua_pop(L, 3);
  }
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%d,idsum=%lld,views=%lld", n,
           (long long)sum, (long long)vsum);
}

/*
** W10: the views of the first 10,000 posts (ids read untimed), each to its
** own value: Quay's set-based form, UPDATE ... FROM (VALUES (?, ?), ...
** 1,000 rows) AS v WHERE id = v.c0 prepared once and run 10 times
** (bPerRow 0), or one prepared UPDATE ... WHERE id = ? per row (bPerRow 1,
** the W10r floor), in one transaction.
*/
#define W10_BATCH 1000

static void w10(Ctx *c, int bPerRow) {
  sqlite3_stmt *s;
  int64_t *aId = malloc(sizeof(int64_t) * 10000);
  int n = 0, i;
  double t0, c0;
  long long sum = 0;
  if (aId == NULL) die("out of memory");
  s = prep(c, "SELECT \"id\" FROM \"posts\" ORDER BY \"id\" LIMIT 10000");
  while (step(c, s) == SQLITE_ROW) aId[n++] = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  c0 = cpu_now();
  t0 = now();
  exec(c, "BEGIN IMMEDIATE");
  if (bPerRow) {
    s = prep(c, "UPDATE \"posts\" SET \"views\" = ? WHERE \"id\" = ?");
    for (i = 0; i < n; i++) {
      sqlite3_bind_int64(s, 1, (aId[i] * 7919) % 100000);
      sqlite3_bind_int64(s, 2, aId[i]);
      c->nQuery++;
      step(c, s);
      sqlite3_reset(s);
    }
  } else {
    int nPrep = 0, j;
    s = NULL;
    for (i = 0; i < n; i += W10_BATCH) {
      int m = n - i < W10_BATCH ? n - i : W10_BATCH;
      if (m != nPrep) {
        size_t nz = 200 + (size_t)m * 10, k;
        char *z = malloc(nz);
        if (z == NULL) die("out of memory");
        k = (size_t)snprintf(z, nz, "UPDATE \"posts\" SET \"views\" = v.c1 "
                             "FROM (SELECT column1 AS c0, column2 AS c1 "
                             "FROM (VALUES ");
        for (j = 0; j < m; j++)
          k += (size_t)snprintf(z + k, nz - k, "%s(?, ?)", j ? ", " : "");
        snprintf(z + k, nz - k, ")) AS v WHERE \"posts\".\"id\" = v.c0");
        if (s) sqlite3_finalize(s);
        s = prep(c, z);
        free(z);
        nPrep = m;
      }
      for (j = 0; j < m; j++) {
        sqlite3_bind_int64(s, 2 * j + 1, aId[i + j]);
        sqlite3_bind_int64(s, 2 * j + 2, (aId[i + j] * 7919) % 100000);
      }
      c->nQuery++;
      step(c, s);
      sqlite3_reset(s);
    }
  }
  sqlite3_finalize(s);
  exec(c, "COMMIT");
  set_clock(c, t0, c0);
  s = prep(c, "SELECT SUM(views) FROM posts WHERE id <= 10000");
  step(c, s);
  sum = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  free(aId);
  snprintf(c->zCheck, sizeof c->zCheck, "n=%d,viewsum=%lld", n, sum);
}

/* W6: Quay's first statement (2,000 posts), then each post's author: one
** hand-written point query per post, or Quay's batched statement. */
static const char zW6Point[] =
  "SELECT \"t0\".\"id\", \"t0\".\"name\", \"t0\".\"email\" "
  "FROM \"users\" AS \"t0\" WHERE \"t0\".\"id\" = ?";

static void w6(Ctx *c, int bBatch) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, KP_AUTHOR + 1),
      ku = push_keys(L, azUserKeys, 3);
  int res, i;
  lua_Integer n = 0;
  KeyList keys = {NULL, 0, 0};
  sqlite3_stmt *s = prep_quay(c, "w6.1");     /* LIMIT bound as Quay does */

  expect_cols(s, "w6.1", azPostKeys, P_NCOL);
  lua_newtable(L); res = lua_gettop(L);
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    lua_createtable(L, 0, P_NCOL + 1);
    set_cols(L, lua_gettop(L), kp, s, 0, P_NCOL);
    lua_rawseti(L, res, ++n);
    keys_add(&keys, sqlite3_column_int64(s, P_AUTHOR_ID));
  }
  sqlite3_finalize(s);

  if (!bBatch) {
    /* One point query per post, as a naive lazy loader does. */
    s = prep(c, zW6Point);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, res, i);                        /* [p] */
      lua_pushvalue(L, kp + KP_AUTHOR);              /* [p, "author"] */
      sqlite3_reset(s);
      sqlite3_bind_int64(s, 1, keys.a[i - 1]);
      c->nQuery++;
      if (step(c, s) == SQLITE_ROW) {
        lua_createtable(L, 0, 3);
        set_cols(L, lua_gettop(L), ku, s, 0, 3);
        lua_rawset(L, -3);                           /* [p] */
      } else {
        lua_pop(L, 1);
      }
      lua_pop(L, 1);                                 /* [] */
    }
    sqlite3_finalize(s);
  } else {
    /* One query for the distinct author keys, then attach by id. */
    int umap;
    KeyList uniq = {NULL, keys.n, keys.n};
    uniq.a = malloc((keys.n + 1) * sizeof(*uniq.a));
    if (uniq.a == NULL) die("out of memory");
    memcpy(uniq.a, keys.a, keys.n * sizeof(*uniq.a));
    keys_uniq(&uniq);
    lua_newtable(L); umap = lua_gettop(L);
    s = prep_quay(c, "w6.2");
    expect_cols(s, "w6.2", azUserKeys, 3);
    bind_json_keys(s, 1, &uniq);
    c->nQuery++;
    while (step(c, s) == SQLITE_ROW) {
      lua_createtable(L, 0, 3);
      set_cols(L, lua_gettop(L), ku, s, 0, 3);
      lua_rawseti(L, umap, sqlite3_column_int64(s, 0));
    }
    sqlite3_finalize(s);
    free(uniq.a);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, res, i);                        /* [p] */
      lua_pushvalue(L, kp + KP_AUTHOR);
      lua_rawgeti(L, umap, keys.a[i - 1]);           /* [p, "author", u] */
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
  }
  free(keys.a);
  call_loop(c, "w6", res, 1);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%lld,sum=%lld", (long long)n,
           (long long)lua_tointeger(L, -1));
}

/*
** W7: every user with the count, views sum and latest date of their posts
** and the count of the comments on them: one hand-written statement, in
** one of two forms (measured equal in the sqlite3 shell, docs/ENGINE.md
** "Measured facts"; scripts/bench W7 later found the grouped one faster):
**   grouped     the posts' and the comments' aggregates as two grouped
**               subqueries, LEFT JOINed to the users by author key;
**   correlated  one correlated scalar subquery per value.
** Both order by user id, as Quay's annotate does.  The comment count goes
** through the posts (comments belong to posts); a user without posts gets
** 0, 0 and no views or date (nil), as Quay's count and sum read.
*/
static const char zW7Grouped[] =
  "SELECT u.\"id\", u.\"name\", u.\"email\", COALESCE(p.\"n\", 0), "
  "p.\"views\", p.\"last\", COALESCE(c.\"n\", 0) "
  "FROM \"users\" AS u "
  "LEFT JOIN (SELECT \"author_id\", COUNT(*) AS \"n\", "
  "SUM(\"views\") AS \"views\", "
  "MAX(\"created\") AS \"last\" FROM \"posts\" GROUP BY \"author_id\") AS p "
  "ON p.\"author_id\" = u.\"id\" "
  "LEFT JOIN (SELECT p2.\"author_id\", COUNT(*) AS \"n\" FROM \"posts\" AS p2 "
  "JOIN \"comments\" AS cm ON cm.\"post_id\" = p2.\"id\" "
  "GROUP BY p2.\"author_id\") AS c "
  "ON c.\"author_id\" = u.\"id\" "
  "ORDER BY u.\"id\"";
static const char zW7Correlated[] =
  "SELECT u.\"id\", u.\"name\", u.\"email\", "
  "(SELECT COUNT(*) FROM \"posts\" AS p WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT SUM(p.\"views\") FROM \"posts\" AS p "
  "WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT MAX(p.\"created\") FROM \"posts\" AS p "
  "WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT COUNT(*) FROM \"posts\" AS p JOIN \"comments\" AS cm "
  "ON cm.\"post_id\" = p.\"id\" WHERE p.\"author_id\" = u.\"id\") "
  "FROM \"users\" AS u ORDER BY u.\"id\"";
static const char *const azW7Keys[] = {"id", "name", "email", "n_posts",
                                       "views", "last", "n_comments"};

static void w7(Ctx *c, int bCorrelated) {
  lua_State *L = c->L;
  int k = push_keys(L, azW7Keys, 7);
  int res;
  lua_Integer n = 0;
  sqlite3_stmt *s = prep(c, bCorrelated ? zW7Correlated : zW7Grouped);
  lua_newtable(L); res = lua_gettop(L);
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    lua_createtable(L, 0, 7);
    set_cols(L, lua_gettop(L), k, s, 0, 7);
    lua_rawseti(L, res, ++n);
  }
  sqlite3_finalize(s);
  call_loop(c, "w7", res, 1);
  c->iResult = res;
  c->zCheckFn = "w7_check";
}

/*
** W8: the posts grouped by author and month of their creation date, with
** the group's post count and views sum: one hand-written grouped query,
** ordered by the groups as Quay's values + annotate is.  The month is the
** first day of the month at midnight, as quay.trunc("month", ...) gives.
*/
static const char zW8[] =
  "SELECT \"author_id\", "
  "substr(\"created\", 1, 7) || '-01 00:00:00' AS \"month\", "
  "COUNT(*), SUM(\"views\") FROM \"posts\" "
  "GROUP BY \"author_id\", \"month\" ORDER BY \"author_id\", \"month\"";
static const char *const azW8Keys[] = {"author", "month", "n", "total_views"};

static void w8(Ctx *c) {
  lua_State *L = c->L;
  int k = push_keys(L, azW8Keys, 4);
  int res;
  lua_Integer n = 0;
  sqlite3_stmt *s = prep(c, zW8);
  lua_newtable(L); res = lua_gettop(L);
  c->nQuery++;
  while (step(c, s) == SQLITE_ROW) {
    lua_createtable(L, 0, 4);
    set_cols(L, lua_gettop(L), k, s, 0, 4);
    lua_rawseti(L, res, ++n);
  }
  sqlite3_finalize(s);
  call_loop(c, "w8", res, 1);
  c->iResult = res;
  c->zCheckFn = "w8_check";
}

/* DEC: the hand-written sum of the ledger (made by the Quay side's DEC run)
** over the decimal column (bDecimal: DECIMAL_INT(12, 2), cents as integers)
** or the integer cents, 20 times: SQLite's own cost of the two sums. */
static void dec(Ctx *c, int bDecimal) {
  sqlite3_stmt *s = prep(c, bDecimal ? "SELECT sum(\"amount\") FROM \"ledgers\""
                                     : "SELECT sum(\"cents\") FROM \"ledgers\"");
  long long cents = 0;
  int k;
  for (k = 0; k < 20; k++) {
    c->nQuery++;
    if (step(c, s) != SQLITE_ROW) die("dec: no row");
    cents = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%d,cents=%lld", 100000, cents);
}

/* }====================================================== */

/*
** {======================================================
** Data generator
** =======================================================
*/

static uint64_t rng_state;

static uint64_t rnd(void) {              /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static const char *const azWord[] = {
  "lua", "sqlite", "engine", "query", "relation", "cascade", "index", "table",
  "record", "join", "batch", "planner", "schema", "model", "field", "cursor",
  "quick", "notes", "on", "the", "a", "fast", "simple", "embedded", "design",
  "memory", "binding", "driver", "prefetch", "lazy", "eager", "benchmark"};
static const char *const azFirst[] = {
  "Ada", "Brian", "Dennis", "Grace", "Ken", "Barbara", "Edsger", "Frances",
  "Niklaus", "Margaret", "Donald", "Radia", "Leslie", "Hedy", "Alan", "Joan"};
static const char *const azLast[] = {
  "Lovelace", "Kernighan", "Ritchie", "Hopper", "Thompson", "Liskov",
  "Dijkstra", "Allen", "Wirth", "Hamilton", "Knuth", "Perlman", "Lamport",
  "Lamarr", "Turing", "Clarke"};

/* Post i's creation time (of nPost) into z: the posts spread evenly over
** 2023-2024 in id order, each at a random second of its slot.  It has a
** generator of its own, so the other columns stay those of the earlier
** data sets. */
static uint64_t date_state;

static void post_created(char *z, size_t nz, long long i, long long nPost) {
  const time_t base = 1672531200;                 /* 2023-01-01 00:00:00 UTC */
  const long long span = 731LL * 86400,
                  slot = span / nPost > 0 ? span / nPost : 1;
  uint64_t r;
  time_t t;
  struct tm tm;
  r = (date_state += 0x9E3779B97F4A7C15ull);
  r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
  r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
  r ^= r >> 31;
  t = base + (time_t)((i - 1) * span / nPost) + (time_t)(r % (uint64_t)slot);
  gmtime_r(&t, &tm);
  strftime(z, nz, "%Y-%m-%d %H:%M:%S", &tm);
}

/* n random words (lo..hi of them) joined by spaces into z; returns length. */
static int words(char *z, int nMax, int lo, int hi) {
  int i, n = 0, k = lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
  for (i = 0; i < k; i++) {
    n += snprintf(z + n, (size_t)(nMax - n), "%s%s", i ? " " : "",
                  azWord[rnd() % (sizeof azWord / sizeof *azWord)]);
    if (n >= nMax) die("word buffer");
  }
  if (n > 0) z[0] = (char)(z[0] - 'a' + 'A');
  return n;
}

static void gen(const char *zFile, double scale, uint64_t seed) {
  Ctx c;
  sqlite3_stmt *s;
  char z[512];
  long long nUser = llround(10000 * scale), nTag = llround(500 * scale);
  long long nPost, i, j, id;
  long long *aAuthor;
  memset(&c, 0, sizeof c);
  if (nUser < 10) nUser = 10;
  if (nTag < 50) nTag = 50;
  nPost = 10 * nUser;
  rng_state = seed;
  date_state = seed ^ 0x5DEECE66Dull;
  if (sqlite3_open_v2(zFile, &c.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    die("open %s: %s", zFile, sqlite3_errmsg(c.db));
  exec(&c, "PRAGMA synchronous = OFF");
  exec(&c, "PRAGMA cache_size = -65536");
  exec(&c, "BEGIN");

  s = prep(&c, "INSERT INTO \"users\" (\"id\", \"name\", \"email\") "
               "VALUES (?, ?, ?)");
  for (i = 1; i <= nUser; i++) {
    char zMail[64];
    snprintf(z, sizeof z, "%s %s", azFirst[rnd() % 16], azLast[rnd() % 16]);
    snprintf(zMail, sizeof zMail, "user%lld@example.com", i);
    sqlite3_bind_int64(s, 1, i);
    sqlite3_bind_text(s, 2, z, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, zMail, -1, SQLITE_TRANSIENT);
    step(&c, s); sqlite3_reset(s);
  }
  sqlite3_finalize(s);

  s = prep(&c, "INSERT INTO \"profiles\" (\"id\", \"user_id\", \"bio\") "
               "VALUES (?, ?, ?)");
  for (i = 1; i <= nUser; i++) {
    int n = words(z, sizeof z, 4, 12);
    sqlite3_bind_int64(s, 1, i);
    sqlite3_bind_int64(s, 2, i);
    sqlite3_bind_text(s, 3, z, n, SQLITE_TRANSIENT);
    step(&c, s); sqlite3_reset(s);
  }
  sqlite3_finalize(s);

  s = prep(&c, "INSERT INTO \"tags\" (\"id\", \"name\") VALUES (?, ?)");
  for (i = 1; i <= nTag; i++) {
    snprintf(z, sizeof z, "tag%lld", i);
    sqlite3_bind_int64(s, 1, i);
    sqlite3_bind_text(s, 2, z, -1, SQLITE_TRANSIENT);
    step(&c, s); sqlite3_reset(s);
  }
  sqlite3_finalize(s);

  /* Exactly 10 posts per user, authors in a shuffled order. */
  aAuthor = malloc((size_t)nPost * sizeof(*aAuthor));
  if (aAuthor == NULL) die("out of memory");
  for (i = 0; i < nPost; i++) aAuthor[i] = i / 10 + 1;
  for (i = nPost - 1; i > 0; i--) {
    long long t;
    j = (long long)(rnd() % (uint64_t)(i + 1));
    t = aAuthor[i]; aAuthor[i] = aAuthor[j]; aAuthor[j] = t;
  }
  s = prep(&c, "INSERT INTO \"posts\" (\"id\", \"title\", \"views\", "
               "\"author_id\", \"created\") VALUES (?, ?, ?, ?, ?)");
  for (i = 1; i <= nPost; i++) {
    char zDate[32];
    int n = words(z, sizeof z, 3, 8);
    post_created(zDate, sizeof zDate, i, nPost);
    sqlite3_bind_int64(s, 1, i);
    sqlite3_bind_text(s, 2, z, n, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)(rnd() % 10000));
    sqlite3_bind_int64(s, 4, aAuthor[i - 1]);
    sqlite3_bind_text(s, 5, zDate, -1, SQLITE_TRANSIENT);
    step(&c, s); sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  free(aAuthor);

  s = prep(&c, "INSERT INTO \"posts_tags\" (\"id\", \"post_id\", \"tag_id\") "
               "VALUES (?, ?, ?)");
  for (i = 1, id = 1; i <= nPost; i++) {
    long long t[3];
    int k = 0;
    while (k < 3) {
      long long v = (long long)(rnd() % (uint64_t)nTag) + 1;
      if ((k > 0 && t[0] == v) || (k > 1 && t[1] == v)) continue;
      t[k++] = v;
    }
    for (k = 0; k < 3; k++) {
      sqlite3_bind_int64(s, 1, id++);
      sqlite3_bind_int64(s, 2, i);
      sqlite3_bind_int64(s, 3, t[k]);
      step(&c, s); sqlite3_reset(s);
    }
  }
  sqlite3_finalize(s);

  s = prep(&c, "INSERT INTO \"comments\" (\"id\", \"post_id\", \"body\") "
               "VALUES (?, ?, ?)");
  for (i = 1, id = 1; i <= nPost; i++) {
    int k;
    for (k = 0; k < 3; k++) {
      int n = words(z, sizeof z, 5, 16);
      sqlite3_bind_int64(s, 1, id++);
      sqlite3_bind_int64(s, 2, i);
      sqlite3_bind_text(s, 3, z, n, SQLITE_TRANSIENT);
      step(&c, s); sqlite3_reset(s);
    }
  }
  sqlite3_finalize(s);

  exec(&c, "COMMIT");
  exec(&c, "PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(c.db);
  printf("users=%lld profiles=%lld tags=%lld posts=%lld links=%lld "
         "comments=%lld\n"
         "versions: SQLite %s, %s\n",
         nUser, nUser, nTag, nPost, 3 * nPost, 3 * nPost, sqlite3_libversion(),
         LUA_RELEASE);
}

/* }====================================================== */

int main(int argc, char **argv) {
  Ctx c;
  const char *zW;
  double t0, t, c0, tc;
  long nBaseKb;
  if (argc >= 5 && strcmp(argv[1], "gen") == 0) {
    gen(argv[2], atof(argv[3]), strtoull(argv[4], NULL, 10));
    return 0;
  }
  if (argc < 6) {
    fprintf(stderr,
            "usage: quay_bench_floor gen FILE SCALE SEED\n"
            "       quay_bench_floor WORKLOAD FILE LOOPS.lua NUSERS QUAYSQL\n"
            "workloads: w1 w2 w2json w3 w4 w5 w5bulk w6 w6batch w7 w7corr w8 w9\n"
            "           w10 w10row w12 decsum intsum\n");
    return 2;
  }
  memset(&c, 0, sizeof c);
  zW = argv[1];
  c.nUsers = atoll(argv[4]);
  c.zQuaySql = read_file(argv[5]);
  /* The open flags and pragmas of Quay's SQLite driver (engine/drv_sqlite.c):
  ** NOMUTEX, as a single-threaded program does. */
  if (sqlite3_open_v2(argv[2], &c.db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    die("open %s: %s", argv[2], sqlite3_errmsg(c.db));
  sqlite3_busy_timeout(c.db, 5000);
  exec(&c, "PRAGMA foreign_keys = ON");
  exec(&c, "PRAGMA journal_mode = WAL");
  exec(&c, "PRAGMA synchronous = NORMAL");
  c.nQuery = 0;

  c.L = luaL_newstate();
  if (c.L == NULL) die("cannot create a Lua state");
  luaL_openlibs(c.L);
  if (luaL_dofile(c.L, argv[3]) != LUA_OK)
    die("lua: %s", lua_tostring(c.L, -1));
  c.iLoops = lua_gettop(c.L);

  lua_gc(c.L, LUA_GCCOLLECT);         /* as the Quay side does */
  nBaseKb = status_kb("VmRSS:");
  c0 = cpu_now();
  t0 = now();
  if (strcmp(zW, "w1") == 0) w1(&c);
  else if (strcmp(zW, "w2") == 0) w2(&c, 0);
  else if (strcmp(zW, "w2json") == 0) w2(&c, 1);
  else if (strcmp(zW, "w3") == 0) w3(&c);
  else if (strcmp(zW, "w4") == 0) w4(&c);
  else if (strcmp(zW, "w5") == 0) w5(&c);
  else if (strcmp(zW, "w5bulk") == 0) w5bulk(&c);
  else if (strcmp(zW, "w6") == 0) w6(&c, 0);
  else if (strcmp(zW, "w6batch") == 0) w6(&c, 1);
  else if (strcmp(zW, "w7") == 0) w7(&c, 0);
  else if (strcmp(zW, "w7corr") == 0) w7(&c, 1);
  else if (strcmp(zW, "w8") == 0) w8(&c);
  else if (strcmp(zW, "w9") == 0) w9(&c);
  else if (strcmp(zW, "w10") == 0) w10(&c, 0);
  else if (strcmp(zW, "w10row") == 0) w10(&c, 1);
  else if (strcmp(zW, "w12") == 0) w12(&c);
  else if (strcmp(zW, "decsum") == 0) dec(&c, 1);
  else if (strcmp(zW, "intsum") == 0) dec(&c, 0);
  else die("unknown workload '%s'", zW);
  t = now() - t0;
  tc = cpu_now() - c0;
  if (strcmp(zW, "w12") == 0) w12_check(&c);
  if (c.zCheckFn != NULL) {            /* a full check, after the clock */
    call_loop(&c, c.zCheckFn, c.iResult, 1);
    snprintf(c.zCheck, sizeof c.zCheck, "%s", lua_tostring(c.L, -1));
  }
  lua_getglobal(c.L, "W_TIME");        /* input built untimed (W9, W10) */
  if (!lua_isnil(c.L, -1)) {
    t = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W_CPU");
    tc = lua_tonumber(c.L, -1);
  }
  if (strcmp(zW, "w5") == 0 || strcmp(zW, "w5bulk") == 0) {
    /* input rows are built untimed */
    lua_getglobal(c.L, "W5_TIME");
    t = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W5_CPU");
    tc = lua_tonumber(c.L, -1);
  }
  printf("time=%.6f cpu=%.6f queries=%d peak_kb=%ld base_kb=%ld check=%s\n",
         t, tc, c.nQuery, status_kb("VmHWM:"), nBaseKb, c.zCheck);
  /* Peak is read before teardown; closing is not timed on either side. */
  lua_close(c.L);
  sqlite3_close(c.db);
  free(c.zQuaySql);
  return 0;
}
