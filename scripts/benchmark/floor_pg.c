/*
** scripts/benchmark/floor_pg.c
** The benchmark floor on PostgreSQL: what a careful hand-written program
** does with libpq and the Lua C API; and the bench's database chores.
** See LICENSE
**
**   quay_bench_floor_pg load URL SQLITEFILE
**       copy the data set that `quay_bench_floor gen` wrote into SQLITEFILE
**       into URL's database (tables already made by Quay's
**       db:create_tables()): one COPY ... FROM STDIN per table in one
**       transaction (foreign-key triggers off when the role may), identity
**       sequences moved past the loaded ids, then VACUUM (FREEZE, ANALYZE),
**       so every run reads settled, analyzed tables.  Prints the row
**       counts and the versions.
**   quay_bench_floor_pg admin URL SQL...
**       run each SQL (CREATE/DROP DATABASE ...) outside a transaction.
**   quay_bench_floor_pg WORKLOAD URL LOOPS.lua NUSERS QUAYSQL
**       run one workload and print one line "time=S cpu=S srv_cpu=S
**       queries=N peak_kb=K base_kb=B rt=N check=C" (see floor.c; srv_cpu
**       is the CPU time of the server process serving the connection over
**       the same span, rt the round trips counted by netcount.so, -1 when
**       not preloaded).  QUAYSQL is the file `quay_side.lua sql` writes
**       from a PostgreSQL database: Quay's statements, placeholders $n and
**       key lists `= ANY($1::bigint[])` as Quay sends them.
**
** As floor.c, each workload runs Quay's SQL text (checked by column name)
** or the hand-written form where the workload says so (W7 and W8 are
** hand-written; their check runs after the clock), builds the same
** Lua values through the Lua C API (one table per record, created at its
** final size, keys pushed once and set with lua_rawset; related records
** attached; shared ones deduplicated by id), then calls the same Lua loop.
** On the wire it does what Quay's driver does, the way a careful program
** would: the session settings of engine/drv_pg.c; parameters as text,
** integers typed int8, strings and the key-array literal "{1,2,...}"
** untyped (the SQL casts it); one PQexecParams per statement run once,
** PQprepare + PQexecPrepared for a statement run many times; results in
** text format, one PGresult per query, read with PQgetvalue and converted
** by the column's known type (integers with strtoll, the rest strings),
** PQgetisnull only where a column can be NULL (the LEFT JOIN side).  The
** PGresult is cleared before the Lua loop runs.
*/
#define _GNU_SOURCE                /* RTLD_DEFAULT */

#include <dlfcn.h>
#include <lauxlib.h>
#include <libpq-fe.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>

#include <unistd.h>

#define FLOOR_NAME "quay_bench_floor_pg"
#include "floor_util.h"

#define OID_INT8   20
#define OID_FLOAT8 701

typedef struct Ctx {
  lua_State *L;
  PGconn *pg;
  int nQuery;          /* statements executed (BEGIN/COMMIT included) */
  int iLoops;          /* stack index of the loops table */
  lua_Integer nUsers;  /* users in the data set (W5 input) */
  char zCheck[256];    /* result summary, compared with the Quay side */
  char *zQuaySql;      /* the file written by `quay_side.lua sql` */
  long nBackend;       /* pid of the server process of the connection */
  int iResult;         /* with zCheckFn: the result, checked after the clock */
  const char *zCheckFn;  /* loops[zCheckFn](result) gives the check string */
} Ctx;

/* One of Quay's recorded statements with its parameters. */
#define QMAX_PARAM 8
typedef struct QStmt {
  char *zSql;
  int nParam;
  Oid aType[QMAX_PARAM];
  char *azVal[QMAX_PARAM];
} QStmt;

/*
** {======================================================
** libpq helpers
** =======================================================
*/

static PGconn *connect_db(const char *zUrl) {
  PGconn *pg = PQconnectdb(zUrl);
  PGresult *r;
  if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
    die("cannot connect to %s: %s", zUrl,
        pg ? PQerrorMessage(pg) : "out of memory");
  /* The session settings of Quay's driver (engine/drv_pg.c pg_open). */
  r = PQexec(pg, "SET client_encoding = 'UTF8'; "
                 "SET datestyle = 'ISO, YMD'; SET timezone = 'UTC'; "
                 "SET bytea_output = 'hex'; "
                 "SET client_min_messages = 'warning'");
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    die("session setup: %s", PQerrorMessage(pg));
  PQclear(r);
  return pg;
}

/* Die unless r has status TUPLES_OK or COMMAND_OK; returns r. */
static PGresult *check(Ctx *c, PGresult *r, const char *zSql) {
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    die("%s\n  %.300s", r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg),
        zSql);
  return r;
}

/* A statement without parameters that returns no rows (BEGIN, DELETE...);
** returns the rows it changed. */
static long long run_cmd(Ctx *c, const char *zSql) {
  PGresult *r = check(c, PQexec(c->pg, zSql), zSql);
  const char *z = PQcmdTuples(r);
  long long n = (z && *z) ? strtoll(z, NULL, 10) : 0;
  PQclear(r);
  c->nQuery++;
  return n;
}

/* Run zSql once with text parameters (Parse, Bind, Execute: one round
** trip), text results. */
static PGresult *run_params(Ctx *c, const char *zSql, int n, const Oid *aType,
                            const char *const *azVal) {
  c->nQuery++;
  return check(c, PQexecParams(c->pg, zSql, n, aType, azVal, NULL, NULL, 0),
               zSql);
}

static void prepare(Ctx *c, const char *zName, const char *zSql, int n,
                    const Oid *aType) {
  PQclear(check(c, PQprepare(c->pg, zName, zSql, n, aType), zSql));
}

static PGresult *run_prepared(Ctx *c, const char *zName, int n,
                              const char *const *azVal) {
  c->nQuery++;
  return check(c, PQexecPrepared(c->pg, zName, n, azVal, NULL, NULL, 0), zName);
}

/* Quay's statement zKey and its recorded parameters ('i' -> int8, 'n' ->
** float8, 's' -> untyped text, as Quay's driver types them). */
static void quay_stmt(Ctx *c, const char *zKey, QStmt *q) {
  char zPKey[64];
  size_t n;
  const char *zNext, *zLine;
  const char *zSql = find_line(c->zQuaySql, zKey, &n, &zNext);
  memset(q, 0, sizeof *q);
  if (zSql == NULL)
    die("Quay's SQL for %s not recorded (workload shape changed?)", zKey);
  q->zSql = strndup(zSql, n);
  snprintf(zPKey, sizeof zPKey, "%s.param", zKey);
  while ((zLine = find_line(zNext, zPKey, &n, &zNext)) != NULL) {
    if (n < 2) die("bad parameter line for %s", zKey);
    if (q->nParam == QMAX_PARAM) die("too many parameters for %s", zKey);
    q->aType[q->nParam] = zLine[0] == 'i' ? OID_INT8
                        : zLine[0] == 'n' ? OID_FLOAT8 : 0;
    q->azVal[q->nParam] = strndup(zLine + 2, n - 2);
    q->nParam++;
  }
}

static void quay_stmt_free(QStmt *q) {
  int i;
  free(q->zSql);
  for (i = 0; i < q->nParam; i++) free(q->azVal[i]);
}

/* Die unless the result columns start with the given names (the floor
** builds its tables by position). */
static void expect_cols(const PGresult *r, const char *zKey,
                        const char *const *az, int n) {
  int i;
  if (PQnfields(r) < n) die("Quay's SQL for %s changed shape", zKey);
  for (i = 0; i < n; i++) {
    const char *zName = PQfname(r, i);
    if (zName == NULL || strcmp(zName, az[i]) != 0)
      die("Quay's SQL for %s changed shape: column %d is '%s', expected '%s'",
          zKey, i, zName ? zName : "?", az[i]);
  }
}

static int64_t int_at(const PGresult *r, int row, int col) {
  return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Round trips so far (netcount.so), or -1 without it. */
static long long net_trips(void) {
  void (*f)(long long *) =
      (void (*)(long long *))dlsym(RTLD_DEFAULT, "quay_bench_net");
  long long a[5];
  if (f == NULL) return -1;
  f(a);
  return a[2];
}

/* }====================================================== */

/*
** {======================================================
** Building Lua records
** =======================================================
*/

/* t[keys[k]] = column col0+k of row for k in 0..n-1, converted by
** zKinds[k]: 'i' integer, 's' string (NOT NULL columns); 'j' integer or
** NULL, 'z' string or NULL (a NULL is left unset). */
static void set_cols(lua_State *L, int t, int keys, const PGresult *r, int row,
                     int col0, const char *zKinds) {
  int k;
  for (k = 0; zKinds[k]; k++) {
    int i = col0 + k;
    if ((zKinds[k] == 'z' || zKinds[k] == 'j') && PQgetisnull(r, row, i))
      continue;
    lua_pushvalue(L, keys + k);                             /* [.., key] */
    if (zKinds[k] == 'i' || zKinds[k] == 'j') {
      lua_pushinteger(L, strtoll(PQgetvalue(r, row, i), NULL, 10));
    } else {
      lua_pushlstring(L, PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i));
    }
    lua_rawset(L, t);                                       /* [..] */
  }
}

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
#define POST_KINDS "isizi"   /* set_cols kinds of the P_NCOL columns */
static const char *const azPostKeys[] = {"id", "title", "views", "created",
                                         "author_id", "author", "tags",
                                         "comments"};
static const char *const azTagKeys[] = {"id", "name"};
static const char *const azCommentKeys[] = {"id", "post_id", "body"};

/* W1: Quay's select_related("author") statement. */
static void w1(Ctx *c) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, KP_AUTHOR + 1),
      ku = push_keys(L, azUserKeys, 3);
  int res, users, i, n;
  static const char *const azCols[] = {"id", "title", "views", "created",
                                       "author_id", "id", "name", "email"};
  QStmt q;
  PGresult *r;
  quay_stmt(c, "w1.1", &q);
  r = run_params(c, q.zSql, q.nParam, q.aType, (const char *const *)q.azVal);
  expect_cols(r, "w1.1", azCols, P_NCOL + 3);
  n = PQntuples(r);
  lua_createtable(L, n, 0); res = lua_gettop(L);   /* the result array */
  lua_newtable(L); users = lua_gettop(L);          /* id -> user (dedup) */
  for (i = 0; i < n; i++) {
    int p;
    lua_createtable(L, 0, P_NCOL + 1); p = lua_gettop(L);   /* [post] */
    set_cols(L, p, kp, r, i, 0, POST_KINDS);
    if (!PQgetisnull(r, i, P_NCOL)) {
      lua_Integer uid = int_at(r, i, P_NCOL);
      lua_pushvalue(L, kp + KP_AUTHOR);                  /* [post, "author"] */
      if (lua_rawgeti(L, users, uid) == LUA_TNIL) {      /* [post, k, u?] */
        lua_pop(L, 1);
        lua_createtable(L, 0, 3);
        set_cols(L, lua_gettop(L), ku, r, i, P_NCOL, "iss");
        lua_pushvalue(L, -1);
        lua_rawseti(L, users, uid);
      }
      lua_rawset(L, p);                                  /* [post] */
    }
    lua_rawseti(L, res, i + 1);                          /* [] */
  }
  PQclear(r);
  quay_stmt_free(&q);
  call_loop(c, "w1", res, 1);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%d,sum=%lld", n,
           (long long)lua_tointeger(L, -1));
}

/* W2: Quay's three statements (users, then posts and posts__tags with the
** keys as one array parameter, = ANY($1::bigint[])), or the same with the
** keys by subquery (bArray == 0). */
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

/* Run statement zKey (bArray: Quay's, with the keys as its one array
** parameter) or zSub (the subquery form, no parameters). */
static PGresult *run_keyed(Ctx *c, int bArray, const char *zKey,
                           const char *zSub, const KeyList *keys) {
  QStmt q;
  PGresult *r;
  if (!bArray) return run_params(c, zSub, 0, NULL, NULL);
  quay_stmt(c, zKey, &q);
  if (q.nParam != 1)
    die("Quay's SQL for %s: expected one key-array parameter", zKey);
  free(q.azVal[0]);
  q.azVal[0] = keys_text(keys, '{', '}', &(size_t){0});
  r = run_params(c, q.zSql, 1, q.aType, (const char *const *)q.azVal);
  quay_stmt_free(&q);
  return r;
}

static void w2(Ctx *c, int bArray) {
  lua_State *L = c->L;
  int ku = push_keys(L, azUserKeys, 4),
      kp = push_keys(L, azPostKeys, KP_TAGS + 1);
  int kt = push_keys(L, azTagKeys, 2);
  int res, umap, pmap, tmap, iOwner, i, n;
  lua_Integer nUser, nPost, nLink;
  KeyList keys = {NULL, 0, 0};
  QStmt q;
  PGresult *r;

  quay_stmt(c, "w2.1", &q);
  r = run_params(c, q.zSql, q.nParam, q.aType, (const char *const *)q.azVal);
  quay_stmt_free(&q);
  expect_cols(r, "w2.1", azUserKeys, 3);
  nUser = n = PQntuples(r);
  lua_createtable(L, n, 0); res = lua_gettop(L);
  lua_newtable(L); umap = lua_gettop(L);
  lua_newtable(L); pmap = lua_gettop(L);
  lua_newtable(L); tmap = lua_gettop(L);
  for (i = 0; i < n; i++) {
    int u;
    int64_t id = int_at(r, i, 0);
    lua_createtable(L, 0, 4); u = lua_gettop(L);          /* [u] */
    set_cols(L, u, ku, r, i, 0, "iss");
    lua_pushvalue(L, ku + 3); lua_newtable(L); lua_rawset(L, u);  /* u.posts */
    lua_pushvalue(L, u); lua_rawseti(L, umap, id);
    lua_rawseti(L, res, i + 1);                           /* [] */
    if (bArray) keys_add(&keys, id);
  }
  PQclear(r);

  r = run_keyed(c, bArray, "w2.2", zW2PostsSub, &keys);
  expect_cols(r, "w2.2", azPostKeys, P_NCOL);
  iOwner = PQnfields(r) - 1;               /* Quay appends the owner key */
  keys.n = 0;
  nPost = n = PQntuples(r);
  for (i = 0; i < n; i++) {
    int p;
    int64_t id = int_at(r, i, 0);
    lua_createtable(L, 0, P_NCOL + 1); p = lua_gettop(L);   /* [p] */
    set_cols(L, p, kp, r, i, 0, POST_KINDS);
    /* p.tags */
    lua_pushvalue(L, kp + KP_TAGS); lua_newtable(L); lua_rawset(L, p);
    lua_pushvalue(L, p); lua_rawseti(L, pmap, id);
    lua_rawgeti(L, umap, int_at(r, i, iOwner));           /* [p, owner] */
    lua_insert(L, -2);                                    /* [owner, p] */
    append_to(L, lua_gettop(L) - 1, ku + 3);              /* [owner] */
    lua_pop(L, 1);
    if (bArray) keys_add(&keys, id);
  }
  PQclear(r);

  r = run_keyed(c, bArray, "w2.3", zW2TagsSub, &keys);
  expect_cols(r, "w2.3", azTagKeys, 2);
  iOwner = PQnfields(r) - 1;
  nLink = n = PQntuples(r);
  for (i = 0; i < n; i++) {
    lua_Integer tid = int_at(r, i, 0);
    lua_rawgeti(L, pmap, int_at(r, i, iOwner));           /* [p] */
    if (lua_rawgeti(L, tmap, tid) == LUA_TNIL) {          /* [p, t?] */
      lua_pop(L, 1);
      lua_createtable(L, 0, 2);
      set_cols(L, lua_gettop(L), kt, r, i, 0, "is");
      lua_pushvalue(L, -1);
      lua_rawseti(L, tmap, tid);
    }
    append_to(L, lua_gettop(L) - 1, kp + KP_TAGS);       /* [p] */
    lua_pop(L, 1);
  }
  PQclear(r);
  free(keys.a);

  call_loop(c, "w2", res, 1);
  snprintf(c->zCheck, sizeof c->zCheck,
           "users=%lld,posts=%lld,links=%lld,sum=%lld",
           (long long)nUser, (long long)nPost, (long long)nLink,
           (long long)lua_tointeger(L, -1));
}

/* W3: Quay's statement for filter{author__email__endswith=..., tags__name=...},
** prepared once and run 20 times with Quay's parameters. */
static void w3(Ctx *c) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, P_NCOL);
  int k;
  lua_Integer cnt = 0, sum = 0;
  QStmt q;
  quay_stmt(c, "w3.1", &q);
  prepare(c, "w3", q.zSql, q.nParam, q.aType);
  for (k = 0; k < 20; k++) {
    int res, i, n;
    PGresult *r = run_prepared(c, "w3", q.nParam, (const char *const *)q.azVal);
    if (k == 0) expect_cols(r, "w3.1", azPostKeys, P_NCOL);
    n = PQntuples(r);
    lua_createtable(L, n, 0); res = lua_gettop(L);
    for (i = 0; i < n; i++) {
      lua_createtable(L, 0, P_NCOL);
      set_cols(L, lua_gettop(L), kp, r, i, 0, POST_KINDS);
      lua_rawseti(L, res, i + 1);
    }
    PQclear(r);
    call_loop(c, "w3", res, 2);
    cnt += lua_tointeger(L, -2);
    sum += lua_tointeger(L, -1);
    lua_settop(L, res - 1);
  }
  quay_stmt_free(&q);
  snprintf(c->zCheck, sizeof c->zCheck, "count=%lld,idsum=%lld",
           (long long)cnt, (long long)sum);
}

/* W4: the minimal set-based delete: children first, keys by subquery. */
static void w4(Ctx *c) {
  static const char *const azDel[] = {
    /* Comment */
    "DELETE FROM \"comments\" WHERE \"post_id\" IN (SELECT \"id\" FROM "
    "\"posts\" WHERE \"author_id\" IN (SELECT \"id\" FROM \"users\" "
    "WHERE \"id\" <= 1000))",
    /* posts_tags */
    "DELETE FROM \"posts_tags\" WHERE \"post_id\" IN (SELECT \"id\" "
    "FROM \"posts\" WHERE \"author_id\" IN (SELECT \"id\" FROM "
    "\"users\" WHERE \"id\" <= 1000))",
    /* Post */
    "DELETE FROM \"posts\" WHERE \"author_id\" IN (SELECT \"id\" FROM "
    "\"users\" WHERE \"id\" <= 1000)",
    /* Profile */
    "DELETE FROM \"profiles\" WHERE \"user_id\" IN (SELECT \"id\" "
    "FROM \"users\" WHERE \"id\" <= 1000)",
    /* User */
    "DELETE FROM \"users\" WHERE \"id\" <= 1000",
  };
  long long aN[5];
  int i;
  run_cmd(c, "BEGIN");
  for (i = 0; i < 5; i++) aN[i] = run_cmd(c, azDel[i]);
  run_cmd(c, "COMMIT");
  snprintf(c->zCheck, sizeof c->zCheck,
           "Comment=%lld,Post=%lld,Profile=%lld,User=%lld,posts_tags=%lld",
           aN[0], aN[2], aN[3], aN[4], aN[1]);
}

/*
** W12 on PostgreSQL: the same change by hand, in one transaction.  A
** varchar -> text change is binary-compatible and a constant default
** needs no rewrite, so neither touches the rows.
*/
static void w12(Ctx *c) {
  run_cmd(c, "BEGIN");
  run_cmd(c, "ALTER TABLE \"posts\" ALTER COLUMN \"title\" TYPE TEXT");
  run_cmd(c, "ALTER TABLE \"posts\" ADD COLUMN \"rating\" DOUBLE PRECISION NOT "
             "NULL DEFAULT 0");
  run_cmd(c, "COMMIT");
}

/* W12's result, computed after the clock as the Quay side does. */
static void w12_check(Ctx *c) {
  static const char zSql[] =
    "SELECT count(*), sum(views), sum(rating), (SELECT format_type(a.atttypid, "
    "a.atttypmod) FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid "
    "WHERE k.relname = 'posts' AND a.attname = 'title') FROM posts";
  PGresult *r = check(c, PQexec(c->pg, zSql), zSql);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%s,views=%s,rating=%g,title=%s",
           PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), atof(PQgetvalue(r, 0, 2)),
           PQgetvalue(r, 0, 3));
  PQclear(r);
}

/*
** W5: insert the 100k rows in one transaction and set row.id from the
** server's RETURNING.  eHow (2 is the fastest measured, the `w5` floor;
** 0 is the form Quay sends, `w5values`; 1 is `w5pipe`):
**   0  multi-row INSERT ... VALUES (...), ... RETURNING "id" of 500 rows
**      (1,500 parameters), prepared once and executed per batch;
**   1  one prepared single-row INSERT ... RETURNING "id" per row, sent in
**      libpq pipeline mode, a sync (and the batch's results read) every
**      500 rows;
**   2  one INSERT ... SELECT FROM unnest($1::varchar[], $2::bigint[],
**      $3::bigint[]) RETURNING "id" of all the rows, arrays as text.
*/
#define W5_BATCH 500

static void w5_values_sql(char *z, size_t nz, int nRow) {
  int i, n = snprintf(z, nz, "INSERT INTO \"posts\" (\"title\", \"views\", "
                             "\"author_id\") VALUES ");
  for (i = 0; i < nRow; i++) {
    n += snprintf(z + n, nz - (size_t)n, "%s($%d, $%d, $%d)", i ? ", " : "",
                  3 * i + 1, 3 * i + 2, 3 * i + 3);
  }
  snprintf(z + n, nz - (size_t)n, " RETURNING \"id\"");
}

static void w5(Ctx *c, int eHow) {
  lua_State *L = c->L;
  static const char *const azIn[] = {"title", "views", "author_id", "id"};
  static char zSql[W5_BATCH * 24 + 200];
  static char azNum[2 * W5_BATCH][24];
  static const char *azVal[3 * W5_BATCH];
  static Oid aType[3 * W5_BATCH];
  int k, rows, i, n, j;
  double t0, c0, s0 = 0;
  k = push_keys(L, azIn, 4);
  lua_getfield(L, c->iLoops, "w5_rows");
  lua_pushinteger(L, 100000);
  lua_pushinteger(L, c->nUsers);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) die("lua: %s", lua_tostring(L, -1));
  rows = lua_gettop(L);
  n = (int)lua_rawlen(L, rows);
  lua_gc(L, LUA_GCCOLLECT);
  for (j = 0; j < 3 * W5_BATCH; j++) aType[j] = (j % 3 == 0) ? 0 : OID_INT8;

  if (c->nBackend > 0) s0 = proc_cpu(c->nBackend);
  c0 = cpu_now();
  t0 = now();
  run_cmd(c, "BEGIN");
  if (eHow == 0) {
    int nPrep = 0;                     /* rows of the prepared statement */
    for (i = 1; i <= n; i += W5_BATCH) {
      int m = n - i + 1 < W5_BATCH ? n - i + 1 : W5_BATCH;
      PGresult *r;
      const char *zName = m == W5_BATCH ? "w5full" : "w5tail";
      if ((m == W5_BATCH && nPrep != W5_BATCH) || m != W5_BATCH) {
        w5_values_sql(zSql, sizeof zSql, m);
        prepare(c, zName, zSql, 3 * m, aType);
        nPrep = m;
      }
      lua_settop(L, rows);
      luaL_checkstack(L, 3 * m + 8, "w5");
      for (j = 0; j < m; j++) {
        lua_rawgeti(L, rows, i + j);                    /* [.., row] */
        lua_pushvalue(L, k); lua_rawget(L, -2);         /* [.., row, title] */
        azVal[3 * j] = lua_tostring(L, -1);             /* kept on the stack */
        lua_pushvalue(L, k + 1); lua_rawget(L, -3);
        snprintf(azNum[2 * j], 24, "%lld", (long long)lua_tointeger(L, -1));
        lua_pushvalue(L, k + 2); lua_rawget(L, -4);
        snprintf(azNum[2 * j + 1], 24, "%lld", (long long)lua_tointeger(L, -1));
        lua_pop(L, 2);                                  /* [.., row, title] */
        lua_remove(L, -2);                              /* [.., title] */
        azVal[3 * j + 1] = azNum[2 * j];
        azVal[3 * j + 2] = azNum[2 * j + 1];
      }
      r = run_prepared(c, zName, 3 * m, azVal);
      if (PQntuples(r) != m)
        die("w5: %d ids returned for %d rows", PQntuples(r), m);
      for (j = 0; j < m; j++) {
        lua_rawgeti(L, rows, i + j);
        lua_pushvalue(L, k + 3);
        lua_pushinteger(L, int_at(r, j, 0));
        lua_rawset(L, -3);                                   /* row.id = id */
        lua_pop(L, 1);
      }
      PQclear(r);
    }
    lua_settop(L, rows);
  } else if (eHow == 2) {
    /* Three array literals: {"title",...} {views,...} {author_id,...}. */
    size_t na = 0, nAlloc = 64 * (size_t)n + 16;
    char *z = malloc(nAlloc), *zv, *za;
    KeyList kv = {NULL, 0, 0}, ka = {NULL, 0, 0};
    const char *az[3];
    PGresult *r;
    static const Oid aType3[3] = {0, 0, 0};
    if (z == NULL) die("out of memory");
    z[na++] = '{';
    for (i = 1; i <= n; i++) {
      size_t len, m;
      const char *zt;
      lua_rawgeti(L, rows, i);                               /* [row] */
      lua_pushvalue(L, k); lua_rawget(L, -2);                /* [row, title] */
      zt = lua_tolstring(L, -1, &len);
      if (na + 2 * len + 8 > nAlloc) {
        nAlloc = 2 * nAlloc + 2 * len;
        if ((z = realloc(z, nAlloc)) == NULL) die("out of memory");
      }
      if (i > 1) z[na++] = ',';
      z[na++] = '"';
      for (m = 0; m < len; m++) {
        if (zt[m] == '"' || zt[m] == '\\') z[na++] = '\\';
        z[na++] = zt[m];
      }
      z[na++] = '"';
      lua_pushvalue(L, k + 1); lua_rawget(L, -3);
      keys_add(&kv, lua_tointeger(L, -1));
      lua_pushvalue(L, k + 2); lua_rawget(L, -4);
      keys_add(&ka, lua_tointeger(L, -1));
      lua_pop(L, 4);                                         /* [] */
    }
    z[na++] = '}';
    z[na] = 0;
    zv = keys_text(&kv, '{', '}', &(size_t){0});
    za = keys_text(&ka, '{', '}', &(size_t){0});
    az[0] = z; az[1] = zv; az[2] = za;
    r = run_params(c, "INSERT INTO \"posts\" (\"title\", \"views\", "
                      "\"author_id\") SELECT * FROM unnest($1::varchar[], "
                      "$2::bigint[], $3::bigint[]) RETURNING \"id\"",
                   3, aType3, az);
    if (PQntuples(r) != n)
      die("w5: %d ids returned for %d rows", PQntuples(r), n);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, rows, i);
      lua_pushvalue(L, k + 3);
      lua_pushinteger(L, int_at(r, i - 1, 0));
      lua_rawset(L, -3);
      lua_pop(L, 1);
    }
    PQclear(r);
    free(z); free(zv); free(za); free(kv.a); free(ka.a);
  } else {
    prepare(c, "w5one", "INSERT INTO \"posts\" (\"title\", \"views\", "
                        "\"author_id\") VALUES ($1, $2, $3) RETURNING \"id\"",
            3, aType);
    for (i = 1; i <= n; i += W5_BATCH) {
      int m = n - i + 1 < W5_BATCH ? n - i + 1 : W5_BATCH;
      PGresult *r;
      if (!PQenterPipelineMode(c->pg))
        die("pipeline: %s", PQerrorMessage(c->pg));
      for (j = 0; j < m; j++) {
        const char *az[3];
        char zV[24], zA[24];
        lua_rawgeti(L, rows, i + j);                         /* [row] */
        lua_pushvalue(L, k); lua_rawget(L, -2);              /* [row, title] */
        az[0] = lua_tostring(L, -1);
        lua_pushvalue(L, k + 1); lua_rawget(L, -3);
        snprintf(zV, sizeof zV, "%lld", (long long)lua_tointeger(L, -1));
        lua_pushvalue(L, k + 2); lua_rawget(L, -4);
        snprintf(zA, sizeof zA, "%lld", (long long)lua_tointeger(L, -1));
        az[1] = zV;
        az[2] = zA;
        if (!PQsendQueryPrepared(c->pg, "w5one", 3, az, NULL, NULL, 0))
          die("send: %s", PQerrorMessage(c->pg));
        c->nQuery++;
        lua_pop(L, 4);                                       /* [] */
      }
      if (!PQpipelineSync(c->pg)) die("sync: %s", PQerrorMessage(c->pg));
      for (j = 0; j < m; j++) {
        r = check(c, PQgetResult(c->pg), "INSERT (pipelined)");
        lua_rawgeti(L, rows, i + j);
        lua_pushvalue(L, k + 3);
        lua_pushinteger(L, int_at(r, 0, 0));
        lua_rawset(L, -3);
        lua_pop(L, 1);
        PQclear(r);
        if ((r = PQgetResult(c->pg)) != NULL) die("pipeline: extra result");
      }
      r = PQgetResult(c->pg);
      if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        die("pipeline: no sync");
      PQclear(r);
      if (!PQexitPipelineMode(c->pg))
        die("pipeline: %s", PQerrorMessage(c->pg));
    }
  }
  run_cmd(c, "COMMIT");
  lua_pushnumber(L, now() - t0);
  lua_setglobal(L, "W5_TIME");
  lua_pushnumber(L, cpu_now() - c0);
  lua_setglobal(L, "W5_CPU");
  lua_pushnumber(L, c->nBackend > 0 ? proc_cpu(c->nBackend) - s0 : -1);
  lua_setglobal(L, "W5_SRV");
  w5_idsum(L, rows, n, c->zCheck, sizeof c->zCheck);
}

/* Append Lua string z (n bytes) to the array literal being built in
** *pz as a quoted element. */
static void arr_text(char **pz, size_t *pn, size_t *pAlloc, const char *z,
                     size_t n) {
  size_t m;
  if (*pn + 2 * n + 8 > *pAlloc) {
    *pAlloc = 2 * *pAlloc + 2 * n + 64;
    if ((*pz = realloc(*pz, *pAlloc)) == NULL) die("out of memory");
  }
  (*pz)[(*pn)++] = '"';
  for (m = 0; m < n; m++) {
    if (z[m] == '"' || z[m] == '\\') (*pz)[(*pn)++] = '\\';
    (*pz)[(*pn)++] = z[m];
  }
  (*pz)[(*pn)++] = '"';
}

/* Set the input rows' fields from the text results of W9 (id, title,
** views, author_id), each row found by its id (id - base). */
static void w9_rows_from(lua_State *L, int rows, int k, PGresult *r,
                         lua_Integer base) {
  int i, n = PQntuples(r);
  for (i = 0; i < n; i++) {
    lua_Integer id = int_at(r, i, 0);
    lua_rawgeti(L, rows, id - base);                           /* [row] */
    lua_pushvalue(L, k); lua_pushinteger(L, id); lua_rawset(L, -3);
    lua_pushvalue(L, k + 1);
    lua_pushlstring(L, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    lua_rawset(L, -3);
    lua_pushvalue(L, k + 2); lua_pushinteger(L, int_at(r, i, 2));
    lua_rawset(L, -3);
    lua_pushvalue(L, k + 3); lua_pushinteger(L, int_at(r, i, 3));
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

/*
** W9: upsert 100k posts on their id, half of them existing (scale 1), in
** the statement form Quay sends on PostgreSQL: INSERT ... SELECT * FROM
** unnest of four arrays (10,000 rows a statement) ON CONFLICT ("id") DO
** UPDATE SET title, views RETURNING every column; each returned row's
** values are set on its input row (found by id).
*/
#define W9_BATCH 10000

static void w9(Ctx *c) {
  lua_State *L = c->L;
  static const char *const azIn[] = {"id", "title", "views", "author_id"};
  static const char zSql[] =
    "INSERT INTO \"posts\" (\"id\", \"title\", \"views\", \"author_id\") "
    "SELECT * FROM (SELECT * FROM unnest($1::bigint[], $2::text[], "
    "$3::bigint[], $4::bigint[]) AS u(c0, c1, c2, c3)) AS v "
    "ON CONFLICT (\"id\") DO UPDATE SET \"title\" = excluded.\"title\", "
    "\"views\" = excluded.\"views\" "
    "RETURNING \"id\", \"title\", \"views\", \"author_id\"";
  static const Oid aType[4] = {0, 0, 0, 0};
  int k, rows, i, j, n;
  double t0, c0, s0 = 0;
  lua_Integer sum = 0, vsum = 0;
  k = push_keys(L, azIn, 4);
  lua_getfield(L, c->iLoops, "w9_rows");
  lua_pushinteger(L, 100000);
  lua_pushinteger(L, c->nUsers);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) die("lua: %s", lua_tostring(L, -1));
  rows = lua_gettop(L);
  n = (int)lua_rawlen(L, rows);
  lua_gc(L, LUA_GCCOLLECT);
  if (c->nBackend > 0) s0 = proc_cpu(c->nBackend);
  c0 = cpu_now();
  t0 = now();
  run_cmd(c, "BEGIN");
  for (i = 1; i <= n; i += W9_BATCH) {
    int m = n - i + 1 < W9_BATCH ? n - i + 1 : W9_BATCH;
    size_t nt = 0, nAlloc = 64 * (size_t)m + 16;
    char *zt = malloc(nAlloc), *zi, *zv, *za;
    KeyList ki = {NULL, 0, 0}, kv = {NULL, 0, 0}, ka = {NULL, 0, 0};
    const char *az[4];
    lua_Integer base = 0;
    PGresult *r;
    if (zt == NULL) die("out of memory");
    zt[nt++] = '{';
    for (j = 0; j < m; j++) {
      size_t len;
      const char *z;
      lua_rawgeti(L, rows, i + j);                             /* [row] */
      lua_pushvalue(L, k); lua_rawget(L, -2);
      keys_add(&ki, lua_tointeger(L, -1));
      if (j == 0) base = lua_tointeger(L, -1) - i;
      lua_pushvalue(L, k + 1); lua_rawget(L, -3);
      z = lua_tolstring(L, -1, &len);
      if (j) zt[nt++] = ',';
      arr_text(&zt, &nt, &nAlloc, z, len);
      lua_pushvalue(L, k + 2); lua_rawget(L, -4);
      keys_add(&kv, lua_tointeger(L, -1));
      lua_pushvalue(L, k + 3); lua_rawget(L, -5);
      keys_add(&ka, lua_tointeger(L, -1));
      lua_pop(L, 5);
    }
    zt[nt++] = '}';
    zt[nt] = 0;
    zi = keys_text(&ki, '{', '}', &(size_t){0});
    zv = keys_text(&kv, '{', '}', &(size_t){0});
    za = keys_text(&ka, '{', '}', &(size_t){0});
    az[0] = zi; az[1] = zt; az[2] = zv; az[3] = za;
    r = run_params(c, zSql, 4, aType, az);
    if (PQntuples(r) != m) die("w9: %d rows returned for %d", PQntuples(r), m);
    w9_rows_from(L, rows, k, r, base);
    PQclear(r);
    free(zt); free(zi); free(zv); free(za); free(ki.a); free(kv.a); free(ka.a);
  }
  run_cmd(c, "COMMIT");
  lua_pushnumber(L, now() - t0);
  lua_setglobal(L, "W_TIME");
  lua_pushnumber(L, cpu_now() - c0);
  lua_setglobal(L, "W_CPU");
  lua_pushnumber(L, c->nBackend > 0 ? proc_cpu(c->nBackend) - s0 : -1);
  lua_setglobal(L, "W_SRV");
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
** own value: Quay's set-based form, one UPDATE ... FROM unnest of two
** arrays AS v WHERE id = v.c0 (bPerRow 0), or one prepared UPDATE ...
** WHERE id = $2 per row (bPerRow 1, the W10r floor), in one transaction.
*/
static void w10(Ctx *c, int bPerRow) {
  static const Oid aType2[2] = {OID_INT8, OID_INT8};
  PGresult *r = check(c, PQexec(c->pg, "SELECT \"id\" FROM \"posts\" "
                                       "ORDER BY \"id\" LIMIT 10000"),
                      "w10 ids");
  int n = PQntuples(r), i;
  int64_t *aId = malloc(sizeof(int64_t) * (size_t)(n + 1));
  double t0, c0, s0 = 0;
  if (aId == NULL) die("out of memory");
  for (i = 0; i < n; i++) aId[i] = int_at(r, i, 0);
  PQclear(r);
  if (c->nBackend > 0) s0 = proc_cpu(c->nBackend);
  c0 = cpu_now();
  t0 = now();
  run_cmd(c, "BEGIN");
  if (bPerRow) {
    prepare(c, "w10one",
            "UPDATE \"posts\" SET \"views\" = $1 WHERE \"id\" = $2", 2,
            aType2);
    for (i = 0; i < n; i++) {
      char zV[24], zI[24];
      const char *az[2];
      snprintf(zV, sizeof zV, "%lld", (long long)((aId[i] * 7919) % 100000));
      snprintf(zI, sizeof zI, "%lld", (long long)aId[i]);
      az[0] = zV;
      az[1] = zI;
      PQclear(run_prepared(c, "w10one", 2, az));
    }
  } else {
    KeyList ki = {NULL, 0, 0}, kv = {NULL, 0, 0};
    const char *az[2];
    static const Oid aType[2] = {0, 0};
    char *zi, *zv;
    for (i = 0; i < n; i++) {
      keys_add(&ki, aId[i]);
      keys_add(&kv, (aId[i] * 7919) % 100000);
    }
    zi = keys_text(&ki, '{', '}', &(size_t){0});
    zv = keys_text(&kv, '{', '}', &(size_t){0});
    az[0] = zi;
    az[1] = zv;
    PQclear(run_params(c, "UPDATE \"posts\" SET \"views\" = v.c1 "
                          "FROM (SELECT * FROM unnest($1::bigint[], "
                          "$2::bigint[]) AS u(c0, c1)) AS v "
                          "WHERE \"posts\".\"id\" = v.c0", 2, aType, az));
    free(zi); free(zv); free(ki.a); free(kv.a);
  }
  run_cmd(c, "COMMIT");
  lua_pushnumber(c->L, now() - t0);
  lua_setglobal(c->L, "W_TIME");
  lua_pushnumber(c->L, cpu_now() - c0);
  lua_setglobal(c->L, "W_CPU");
  lua_pushnumber(c->L, c->nBackend > 0 ? proc_cpu(c->nBackend) - s0 : -1);
  lua_setglobal(c->L, "W_SRV");
  r = check(c, PQexec(c->pg, "SELECT SUM(views) FROM posts WHERE id <= 10000"),
            "w10 sum");
  snprintf(c->zCheck, sizeof c->zCheck, "n=%d,viewsum=%lld", n,
           (long long)int_at(r, 0, 0));
  PQclear(r);
  free(aId);
}

/* W6: Quay's first statement (2,000 posts), then each post's author: one
** hand-written point query per post (prepared once), or Quay's batched
** statement with the distinct keys as its array parameter. */
static const char zW6Point[] =
  "SELECT \"t0\".\"id\", \"t0\".\"name\", \"t0\".\"email\" "
  "FROM \"users\" AS \"t0\" WHERE \"t0\".\"id\" = $1";

static void w6(Ctx *c, int bBatch) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, KP_AUTHOR + 1),
      ku = push_keys(L, azUserKeys, 3);
  int res, i, n;
  KeyList keys = {NULL, 0, 0};
  QStmt q;
  PGresult *r;

  quay_stmt(c, "w6.1", &q);                  /* LIMIT bound as Quay does */
  r = run_params(c, q.zSql, q.nParam, q.aType, (const char *const *)q.azVal);
  quay_stmt_free(&q);
  expect_cols(r, "w6.1", azPostKeys, P_NCOL);
  n = PQntuples(r);
  lua_createtable(L, n, 0); res = lua_gettop(L);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, P_NCOL + 1);
    set_cols(L, lua_gettop(L), kp, r, i, 0, POST_KINDS);
    lua_rawseti(L, res, i + 1);
    keys_add(&keys, int_at(r, i, P_AUTHOR_ID));
  }
  PQclear(r);

  if (!bBatch) {
    /* One point query per post, as a naive lazy loader does. */
    static const Oid aType[1] = {OID_INT8};
    prepare(c, "w6point", zW6Point, 1, aType);
    for (i = 1; i <= n; i++) {
      char zId[24];
      const char *az[1] = {zId};
      snprintf(zId, sizeof zId, "%lld", (long long)keys.a[i - 1]);
      r = run_prepared(c, "w6point", 1, az);
      lua_rawgeti(L, res, i);                        /* [p] */
      if (PQntuples(r) == 1) {
        lua_pushvalue(L, kp + KP_AUTHOR);            /* [p, "author"] */
        lua_createtable(L, 0, 3);
        set_cols(L, lua_gettop(L), ku, r, 0, 0, "iss");
        lua_rawset(L, -3);                           /* [p] */
      }
      lua_pop(L, 1);                                 /* [] */
      PQclear(r);
    }
  } else {
    /* One query for the distinct author keys, then attach by id. */
    int umap, m;
    KeyList uniq = {NULL, keys.n, keys.n};
    uniq.a = malloc((keys.n + 1) * sizeof(*uniq.a));
    if (uniq.a == NULL) die("out of memory");
    memcpy(uniq.a, keys.a, keys.n * sizeof(*uniq.a));
    keys_uniq(&uniq);
    lua_newtable(L); umap = lua_gettop(L);
    r = run_keyed(c, 1, "w6.2", NULL, &uniq);
    expect_cols(r, "w6.2", azUserKeys, 3);
    m = PQntuples(r);
    for (i = 0; i < m; i++) {
      lua_createtable(L, 0, 3);
      set_cols(L, lua_gettop(L), ku, r, i, 0, "iss");
      lua_rawseti(L, umap, int_at(r, i, 0));
    }
    PQclear(r);
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
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%d,sum=%lld", n,
           (long long)lua_tointeger(L, -1));
}

/*
** W7: every user with the count, views sum and latest date of their posts
** and the count of the comments on them: one hand-written statement, run
** with PQexecParams (no parameters), in one of two forms (both measured):
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
  "LEFT JOIN (SELECT \"author_id\", count(*) AS \"n\", "
  "sum(\"views\") AS \"views\", "
  "max(\"created\") AS \"last\" FROM \"posts\" GROUP BY \"author_id\") AS p "
  "ON p.\"author_id\" = u.\"id\" "
  "LEFT JOIN (SELECT p2.\"author_id\", count(*) AS \"n\" FROM \"posts\" AS p2 "
  "JOIN \"comments\" AS cm ON cm.\"post_id\" = p2.\"id\" "
  "GROUP BY p2.\"author_id\") AS c "
  "ON c.\"author_id\" = u.\"id\" "
  "ORDER BY u.\"id\"";
static const char zW7Correlated[] =
  "SELECT u.\"id\", u.\"name\", u.\"email\", "
  "(SELECT count(*) FROM \"posts\" AS p WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT sum(p.\"views\") FROM \"posts\" AS p "
  "WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT max(p.\"created\") FROM \"posts\" AS p "
  "WHERE p.\"author_id\" = u.\"id\"), "
  "(SELECT count(*) FROM \"posts\" AS p JOIN \"comments\" AS cm "
  "ON cm.\"post_id\" = p.\"id\" WHERE p.\"author_id\" = u.\"id\") "
  "FROM \"users\" AS u ORDER BY u.\"id\"";
static const char *const azW7Keys[] = {"id", "name", "email", "n_posts",
                                       "views", "last", "n_comments"};

/* The rows of r as a list of tables (kinds zKinds, keys k) on the stack;
** returns its index. */
static int push_rows(lua_State *L, const PGresult *r, int k,
                     const char *zKinds) {
  int i, res, n = PQntuples(r), nCol = (int)strlen(zKinds);
  if (PQnfields(r) != nCol)
    die("expected %d columns, got %d", nCol, PQnfields(r));
  lua_createtable(L, n, 0); res = lua_gettop(L);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, nCol);
    set_cols(L, lua_gettop(L), k, r, i, 0, zKinds);
    lua_rawseti(L, res, i + 1);
  }
  return res;
}

static void w7(Ctx *c, int bCorrelated) {
  lua_State *L = c->L;
  int k = push_keys(L, azW7Keys, 7);
  const char *zSql = bCorrelated ? zW7Correlated : zW7Grouped;
  PGresult *r = run_params(c, zSql, 0, NULL, NULL);
  int res = push_rows(L, r, k, "issijzi");
  PQclear(r);
  call_loop(c, "w7", res, 1);
  c->iResult = res;
  c->zCheckFn = "w7_check";
}

/*
** W8: the posts grouped by author and month of their creation date, with
** the group's post count and views sum: one hand-written grouped query,
** ordered by the groups as Quay's values + annotate is.
*/
static const char zW8[] =
  "SELECT \"author_id\", date_trunc('month', \"created\") AS \"month\", "
  "count(*), sum(\"views\") FROM \"posts\" "
  "GROUP BY \"author_id\", \"month\" ORDER BY \"author_id\", \"month\"";
static const char *const azW8Keys[] = {"author", "month", "n", "total_views"};

static void w8(Ctx *c) {
  lua_State *L = c->L;
  int k = push_keys(L, azW8Keys, 4);
  PGresult *r = run_params(c, zW8, 0, NULL, NULL);
  int res = push_rows(L, r, k, "izij");
  PQclear(r);
  call_loop(c, "w8", res, 1);
  c->iResult = res;
  c->zCheckFn = "w8_check";
}

/*
** PIPE: 200 times Quay's statements for Post:limit(50):with("author",
** "tags", "comments"): the posts JOINed to their author, then the tags and
** the comments of those posts, keys as array parameters; each statement
** prepared once.  bPipe 0 runs the two key queries one after the other
** (three round trips per iteration); bPipe 1 sends them together in libpq
** pipeline mode (two round trips per iteration), what sibling prefetches
** could cost.
*/
#define PIPE_ITER 200

static void pipe_bench(Ctx *c, int bPipe) {
  lua_State *L = c->L;
  int kp = push_keys(L, azPostKeys, KP_N), ku = push_keys(L, azUserKeys, 3);
  int kt = push_keys(L, azTagKeys, 2), kc = push_keys(L, azCommentKeys, 3);
  static const char *const azMain[] = {"id", "title", "views", "created",
                                       "author_id", "id", "name", "email"};
  static const char *const azSub[] = {"pipe.2", "pipe.3"};
  QStmt q[3];
  int it, s, iTags = -1, iComments = -1;
  lua_Integer nRow = 0, sum = 0;

  quay_stmt(c, "pipe.1", &q[0]);
  quay_stmt(c, "pipe.2", &q[1]);
  quay_stmt(c, "pipe.3", &q[2]);
  /* Which of the two key statements is the tags one (Quay's order). */
  if (strstr(q[1].zSql, "\"tags\"") && strstr(q[2].zSql, "\"comments\"")) {
    iTags = 1; iComments = 2;
  } else if (strstr(q[2].zSql, "\"tags\"") &&
             strstr(q[1].zSql, "\"comments\"")) {
    iTags = 2; iComments = 1;
  } else {
    die("Quay's SQL for pipe changed shape "
        "(expected the tags and comments queries)");
  }
  prepare(c, "pipe1", q[0].zSql, q[0].nParam, q[0].aType);
  prepare(c, "pipe2", q[1].zSql, q[1].nParam, q[1].aType);
  prepare(c, "pipe3", q[2].zSql, q[2].nParam, q[2].aType);
  for (it = 0; it < PIPE_ITER; it++) {
    int res, pmap, tmap, i, n, iOwner;
    KeyList keys = {NULL, 0, 0};
    size_t nk;
    char *zKeys;
    const char *az[1];
    PGresult *r, *ar[3] = {NULL, NULL, NULL};
    r = run_prepared(c, "pipe1", q[0].nParam, (const char *const *)q[0].azVal);
    if (it == 0) expect_cols(r, "pipe.1", azMain, P_NCOL + 3);
    n = PQntuples(r);
    lua_createtable(L, n, 0); res = lua_gettop(L);
    lua_newtable(L); pmap = lua_gettop(L);
    lua_newtable(L); tmap = lua_gettop(L);
    lua_newtable(L);                                 /* users (dedup) */
    for (i = 0; i < n; i++) {
      int p;
      int64_t id = int_at(r, i, 0);
      lua_createtable(L, 0, KP_N); p = lua_gettop(L);
      set_cols(L, p, kp, r, i, 0, POST_KINDS);
      if (!PQgetisnull(r, i, P_NCOL)) {
        lua_Integer uid = int_at(r, i, P_NCOL);
        lua_pushvalue(L, kp + KP_AUTHOR);
        if (lua_rawgeti(L, tmap + 1, uid) == LUA_TNIL) {
          lua_pop(L, 1);
          lua_createtable(L, 0, 3);
          set_cols(L, lua_gettop(L), ku, r, i, P_NCOL, "iss");
          lua_pushvalue(L, -1);
          lua_rawseti(L, tmap + 1, uid);
        }
        lua_rawset(L, p);
      }
      /* tags */
      lua_pushvalue(L, kp + KP_TAGS); lua_newtable(L); lua_rawset(L, p);
      lua_pushvalue(L, kp + KP_COMMENTS); lua_newtable(L); lua_rawset(L, p);
      lua_pushvalue(L, p); lua_rawseti(L, pmap, id);
      lua_rawseti(L, res, i + 1);
      keys_add(&keys, id);
    }
    PQclear(r);
    zKeys = keys_text(&keys, '{', '}', &nk);
    az[0] = zKeys;
    if (bPipe) {
      if (!PQenterPipelineMode(c->pg))
        die("pipeline: %s", PQerrorMessage(c->pg));
      for (s = 1; s <= 2; s++) {
        if (!PQsendQueryPrepared(c->pg, s == 1 ? "pipe2" : "pipe3", 1, az, NULL,
                                 NULL, 0))
          die("send: %s", PQerrorMessage(c->pg));
        c->nQuery++;
      }
      if (!PQpipelineSync(c->pg)) die("sync: %s", PQerrorMessage(c->pg));
      for (s = 1; s <= 2; s++) {
        ar[s] = check(c, PQgetResult(c->pg), azSub[s - 1]);
        if (PQgetResult(c->pg) != NULL) die("pipeline: extra result");
      }
      r = PQgetResult(c->pg);
      if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        die("pipeline: no sync");
      PQclear(r);
      if (!PQexitPipelineMode(c->pg))
        die("pipeline: %s", PQerrorMessage(c->pg));
    } else {
      ar[1] = run_prepared(c, "pipe2", 1, az);
      ar[2] = run_prepared(c, "pipe3", 1, az);
    }
    free(zKeys);
    free(keys.a);
    /* tags: id, name, owner */
    r = ar[iTags];
    if (it == 0) expect_cols(r, "pipe tags", azTagKeys, 2);
    iOwner = PQnfields(r) - 1;
    for (i = 0; i < PQntuples(r); i++) {
      lua_Integer tid = int_at(r, i, 0);
      lua_rawgeti(L, pmap, int_at(r, i, iOwner));      /* [p] */
      if (lua_rawgeti(L, tmap, tid) == LUA_TNIL) {     /* [p, t?] */
        lua_pop(L, 1);
        lua_createtable(L, 0, 2);
        set_cols(L, lua_gettop(L), kt, r, i, 0, "is");
        lua_pushvalue(L, -1);
        lua_rawseti(L, tmap, tid);
      }
      append_to(L, lua_gettop(L) - 1, kp + KP_TAGS);
      lua_pop(L, 1);
    }
    /* comments: id, post_id, body, owner */
    r = ar[iComments];
    if (it == 0) expect_cols(r, "pipe comments", azCommentKeys, 3);
    iOwner = PQnfields(r) - 1;
    for (i = 0; i < PQntuples(r); i++) {
      lua_rawgeti(L, pmap, int_at(r, i, iOwner));      /* [p] */
      lua_createtable(L, 0, 3);
      set_cols(L, lua_gettop(L), kc, r, i, 0, "iis");
      append_to(L, lua_gettop(L) - 1, kp + KP_COMMENTS);
      lua_pop(L, 1);
    }
    PQclear(ar[1]);
    PQclear(ar[2]);
    call_loop(c, "pipe", res, 1);
    sum += lua_tointeger(L, -1);
    nRow += n;
    lua_settop(L, res - 1);
  }
  for (s = 0; s < 3; s++) quay_stmt_free(&q[s]);
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%lld,sum=%lld", (long long)nRow,
           (long long)sum);
}

/* }====================================================== */

/*
** {======================================================
** Loading the data set, admin statements
** =======================================================
*/

/* The COPY text being built. */
typedef struct Buf {
  char *z;
  size_t n, nAlloc;
} Buf;

static void buf_reserve(Buf *b, size_t n) {
  if (b->n + n > b->nAlloc) {
    b->nAlloc = 2 * (b->nAlloc + n);
    b->z = realloc(b->z, b->nAlloc);
    if (b->z == NULL) die("out of memory");
  }
}

static void buf_char(Buf *b, char ch) {
  buf_reserve(b, 1);
  b->z[b->n++] = ch;
}

/* Append z[n], escaped for COPY's text format. */
static void buf_escaped(Buf *b, const char *z, size_t n) {
  size_t i;
  buf_reserve(b, 2 * n);
  for (i = 0; i < n; i++) {
    char ch = z[i];
    switch (ch) {
      case '\\': b->z[b->n++] = '\\'; b->z[b->n++] = '\\'; break;
      case '\t': b->z[b->n++] = '\\'; b->z[b->n++] = 't'; break;
      case '\n': b->z[b->n++] = '\\'; b->z[b->n++] = 'n'; break;
      case '\r': b->z[b->n++] = '\\'; b->z[b->n++] = 'r'; break;
      default: b->z[b->n++] = ch;
    }
  }
}

static void load(const char *zUrl, const char *zFile) {
  static const char *const azTable[] = {"users", "profiles", "tags", "posts",
                                        "posts_tags", "comments"};
  Ctx c;
  sqlite3 *db;
  size_t t;
  char zSql[512];
  Buf b = {NULL, 0, 0};
  PGresult *r;
  memset(&c, 0, sizeof c);
  if (sqlite3_open_v2(zFile, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    die("open %s: %s", zFile, sqlite3_errmsg(db));
  c.pg = connect_db(zUrl);
  /* The data comes consistent from the generator: where the role may
  ** (a superuser, as on the throwaway server), skip the foreign-key
  ** triggers during the COPYs (twice as fast); else they run. */
  PQclear(PQexec(c.pg, "SET session_replication_role = replica"));
  run_cmd(&c, "BEGIN");
  for (t = 0; t < sizeof azTable / sizeof *azTable; t++) {
    sqlite3_stmt *s;
    int i, nCol, nz0 = 0;
    long long nRow = 0;
    snprintf(zSql, sizeof zSql, "SELECT * FROM \"%s\" ORDER BY \"id\"",
             azTable[t]);
    if (sqlite3_prepare_v2(db, zSql, -1, &s, NULL) != SQLITE_OK)
      die("%s: %s", zSql, sqlite3_errmsg(db));
    nCol = sqlite3_column_count(s);
    nz0 = snprintf(zSql, sizeof zSql, "COPY \"%s\" (", azTable[t]);
    for (i = 0; i < nCol; i++)
      nz0 += snprintf(zSql + nz0, sizeof zSql - (size_t)nz0, "%s\"%s\"",
                      i ? ", " : "", sqlite3_column_name(s, i));
    snprintf(zSql + nz0, sizeof zSql - (size_t)nz0, ") FROM STDIN");
    r = PQexec(c.pg, zSql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
      die("%s: %s", zSql, PQerrorMessage(c.pg));
    PQclear(r);
    while (sqlite3_step(s) == SQLITE_ROW) {
      for (i = 0; i < nCol; i++) {
        if (i) buf_char(&b, '\t');
        if (sqlite3_column_type(s, i) == SQLITE_NULL) {
          buf_char(&b, '\\');
          buf_char(&b, 'N');
        } else {
          buf_escaped(&b, (const char *)sqlite3_column_text(s, i),
                      (size_t)sqlite3_column_bytes(s, i));
        }
      }
      buf_char(&b, '\n');
      nRow++;
      if (b.n > 1 << 16) {
        if (PQputCopyData(c.pg, b.z, (int)b.n) != 1)
          die("COPY: %s", PQerrorMessage(c.pg));
        b.n = 0;
      }
    }
    sqlite3_finalize(s);
    if (b.n && PQputCopyData(c.pg, b.z, (int)b.n) != 1)
      die("COPY: %s", PQerrorMessage(c.pg));
    b.n = 0;
    if (PQputCopyEnd(c.pg, NULL) != 1) die("COPY: %s", PQerrorMessage(c.pg));
    r = PQgetResult(c.pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die("COPY %s: %s", azTable[t],
                                                   PQerrorMessage(c.pg));
    PQclear(r);
    while ((r = PQgetResult(c.pg)) != NULL) PQclear(r);
    /* Identity columns: the next generated id follows the loaded ones. */
    snprintf(zSql, sizeof zSql,
             "SELECT setval(pg_get_serial_sequence('\"%s\"', 'id'), "
             "(SELECT max(\"id\") FROM \"%s\"))", azTable[t], azTable[t]);
    PQclear(check(&c, PQexec(c.pg, zSql), zSql));
    printf("%s%s=%lld", t ? " " : "", azTable[t], nRow);
  }
  run_cmd(&c, "COMMIT");
  PQclear(PQexec(c.pg, "RESET session_replication_role"));
  run_cmd(&c, "VACUUM (FREEZE, ANALYZE)");
  r = check(&c, PQexec(c.pg, "SHOW server_version"), "SHOW server_version");
  printf("\nversions: PostgreSQL %s (libpq %d.%d), %s\n", PQgetvalue(r, 0, 0),
         PQlibVersion() / 10000, PQlibVersion() % 100, LUA_RELEASE);
  PQclear(r);
  free(b.z);
  PQfinish(c.pg);
  sqlite3_close(db);
}

static void admin(const char *zUrl, int n, char **azSql) {
  Ctx c;
  int i;
  memset(&c, 0, sizeof c);
  c.pg = connect_db(zUrl);
  for (i = 0; i < n; i++) {
    PGresult *r = PQexec(c.pg, azSql[i]);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      die("%s\n  %s", PQresultErrorMessage(r), azSql[i]);
    PQclear(r);
  }
  PQfinish(c.pg);
}

/* DEC: the hand-written sum of the ledger (made by the Quay side's DEC run)
** over the decimal column (bDecimal: numeric(12, 2)) or the integer cents,
** 20 times, one statement each: PostgreSQL's own cost of the two sums. */
static void dec(Ctx *c, int bDecimal) {
  const char *zSql = bDecimal ? "SELECT sum(\"amount\") FROM \"ledgers\""
                              : "SELECT sum(\"cents\") FROM \"ledgers\"";
  long long cents = 0;
  int k;
  for (k = 0; k < 20; k++) {
    PGresult *r = run_params(c, zSql, 0, NULL, NULL);
    const char *z = PQgetvalue(r, 0, 0);
    char zDigits[64];
    size_t n = 0;
    for (; *z && n + 1 < sizeof zDigits; z++) {   /* "-12.34" -> "-1234" */
      if (*z != '.') zDigits[n++] = *z;
    }
    zDigits[n] = 0;
    cents = strtoll(zDigits, NULL, 10);
    PQclear(r);
  }
  snprintf(c->zCheck, sizeof c->zCheck, "rows=%d,cents=%lld", 100000, cents);
}

/* }====================================================== */

int main(int argc, char **argv) {
  Ctx c;
  const char *zW;
  double t0, t, c0, tc, s0 = 0, ts = -1;
  long long rt0;
  long nBaseKb;
  PGresult *r;
  if (argc >= 4 && strcmp(argv[1], "load") == 0) {
    load(argv[2], argv[3]);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "admin") == 0) {
    admin(argv[2], argc - 3, argv + 3);
    return 0;
  }
  if (argc < 6) {
    fprintf(stderr,
            "usage: quay_bench_floor_pg load URL SQLITEFILE\n"
            "       quay_bench_floor_pg admin URL SQL...\n"
            "       quay_bench_floor_pg WORKLOAD URL LOOPS.lua NUSERS QUAYSQL\n"
            "workloads: w1 w2 w2array w3 w4 w5 w5values w5pipe w6 w6batch w7 "
            "w7corr\n"
            "           w8 pipeseq pipeline w9 w10 w10row w12 decsum intsum\n");
    return 2;
  }
  memset(&c, 0, sizeof c);
  zW = argv[1];
  c.nUsers = atoll(argv[4]);
  c.zQuaySql = read_file(argv[5]);
  c.pg = connect_db(argv[2]);
  r = check(&c, PQexec(c.pg, "SELECT pg_backend_pid()"), "pg_backend_pid");
  c.nBackend = atol(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (proc_cpu(c.nBackend) < 0) c.nBackend = 0;    /* not on this host */

  c.L = luaL_newstate();
  if (c.L == NULL) die("cannot create a Lua state");
  luaL_openlibs(c.L);
  if (luaL_dofile(c.L, argv[3]) != LUA_OK)
    die("lua: %s", lua_tostring(c.L, -1));
  c.iLoops = lua_gettop(c.L);

  /* W7's grouped form gets parallel plans, whose workers' CPU time the
  ** bench cannot see (it reads the connection's server process only):
  ** run it serially, so its cpu counts all of its work (measured: no
  ** slower in wall time on 2 cores).  Untimed, as Quay's session setup. */
  if (strncmp(zW, "w7", 2) == 0)
    PQclear(check(&c, PQexec(c.pg, "SET max_parallel_workers_per_gather = 0"),
                  "SET"));
  lua_gc(c.L, LUA_GCCOLLECT);         /* as the Quay side does */
  nBaseKb = status_kb("VmRSS:");
  rt0 = net_trips();
  if (c.nBackend) s0 = proc_cpu(c.nBackend);
  c0 = cpu_now();
  t0 = now();
  if (strcmp(zW, "w1") == 0) w1(&c);
  else if (strcmp(zW, "w2") == 0) w2(&c, 0);
  else if (strcmp(zW, "w2array") == 0) w2(&c, 1);
  else if (strcmp(zW, "w3") == 0) w3(&c);
  else if (strcmp(zW, "w4") == 0) w4(&c);
  else if (strcmp(zW, "w5") == 0) w5(&c, 2);
  else if (strcmp(zW, "w5values") == 0) w5(&c, 0);
  else if (strcmp(zW, "w5pipe") == 0) w5(&c, 1);
  else if (strcmp(zW, "w6") == 0) w6(&c, 0);
  else if (strcmp(zW, "w6batch") == 0) w6(&c, 1);
  else if (strcmp(zW, "w7") == 0) w7(&c, 0);
  else if (strcmp(zW, "w7corr") == 0) w7(&c, 1);
  else if (strcmp(zW, "w8") == 0) w8(&c);
  else if (strcmp(zW, "pipeseq") == 0) pipe_bench(&c, 0);
  else if (strcmp(zW, "pipeline") == 0) pipe_bench(&c, 1);
  else if (strcmp(zW, "w9") == 0) w9(&c);
  else if (strcmp(zW, "w10") == 0) w10(&c, 0);
  else if (strcmp(zW, "w10row") == 0) w10(&c, 1);
  else if (strcmp(zW, "w12") == 0) w12(&c);
  else if (strcmp(zW, "decsum") == 0) dec(&c, 1);
  else if (strcmp(zW, "intsum") == 0) dec(&c, 0);
  else die("unknown workload '%s'", zW);
  t = now() - t0;
  tc = cpu_now() - c0;
  if (c.nBackend) ts = proc_cpu(c.nBackend) - s0;
  if (strcmp(zW, "w12") == 0) w12_check(&c);
  if (c.zCheckFn != NULL) {            /* a full check, after the clock */
    call_loop(&c, c.zCheckFn, c.iResult, 1);
    snprintf(c.zCheck, sizeof c.zCheck, "%s", lua_tostring(c.L, -1));
  }
  if (strncmp(zW, "w5", 2) == 0) {     /* input rows are built untimed */
    lua_getglobal(c.L, "W5_TIME");
    t = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W5_CPU");
    tc = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W5_SRV");
    ts = lua_tonumber(c.L, -1);
  }
  lua_getglobal(c.L, "W_TIME");        /* input built untimed (W9, W10) */
  if (!lua_isnil(c.L, -1)) {
    t = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W_CPU");
    tc = lua_tonumber(c.L, -1);
    lua_getglobal(c.L, "W_SRV");
    ts = lua_tonumber(c.L, -1);
  }
  printf("time=%.6f cpu=%.6f srv_cpu=%.6f queries=%d peak_kb=%ld base_kb=%ld "
         "rt=%lld check=%s\n", t, tc, ts, c.nQuery, status_kb("VmHWM:"),
         nBaseKb, rt0 < 0 ? -1 : net_trips() - rt0, c.zCheck);
  /* Peak is read before teardown; closing is not timed on either side. */
  lua_close(c.L);
  PQfinish(c.pg);
  free(c.zQuaySql);
  return 0;
}
