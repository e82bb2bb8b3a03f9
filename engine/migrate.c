/*
** engine/migrate.c
** Schema evolution: the steps from the live schema to the declared models,
** the guards, and running them as one transaction.
** See LICENSE
**
** Comparing.  The live schema (Dialect.xInspect) and the declared one
** (ddl.c) are matched table by table: by name, else through renamed_from
** (a model's old name or table; a field's or relation's old name or
** column; never a guess).  For each matched table, columns are compared by
** type class, NULL, literal default and primary key (inspect.c says what a
** type and a default hold), indexes by columns, order and uniqueness,
** foreign keys by columns, referenced table and columns and ON UPDATE,
** CHECK constraints by expression.  Live indexes and CHECK constraints
** that Quay did not make are left alone (a hand-made index survives a
** migration), as are columns whose type Quay cannot read.
**
** Steps.  Each difference is one step (reference.md: op, model, table, column,
** sql), placed in a phase so that the steps run in an order every backend
** accepts: renames, dropped foreign keys and indexes, column changes, new
** tables, new indexes and constraints, new foreign keys, dropped tables.
** On a dialect whose ALTER TABLE cannot change a column (SQLite), a table
** that needs such a change is rebuilt once, whatever the number of its
** changes: the documented procedure (new table, copy, drop, rename,
** indexes and triggers recreated, foreign keys checked), carried by the
** first of its steps; the other steps of that table carry no statements.
**
** Guards.  Destructive steps (a dropped table or column, a narrowing type
** change) are refused without allow_drop; a step that cannot hold for the
** rows (a NOT NULL column without default on a table with rows, NOT NULL
** on a column with NULLs) carries a query that must return no row.  Both
** are checked before any statement runs, dry runs included.
**
** Running.  One migration is one transaction: under a lock (PostgreSQL's
** advisory lock; SQLite's BEGIN IMMEDIATE), the diff is computed again
** inside the transaction, so a process that waited for another never runs
** a step twice, then guarded and run.  A rebuild needs SQLite's foreign
** keys off, which only takes effect outside a transaction: when the diff
** inside finds one and they are on, the transaction is rolled back and
** begun again with them off; they are turned back on after it ends,
** whatever happened.  Any failure rolls everything back.
**
** Versioned files go through quay_migration_apply: the steps a file holds,
** a data migration callback, and the row in quay_migrations, in one
** transaction under the same lock.
*/
#include "quayInt.h"

#include <stdio.h>
#include <stdlib.h>

/*
** {==================================================================
** Migrations (step lists)
** ===================================================================
*/
enum {                      /* phases, in running order */
  P_RENAME_TABLE = 1, P_RENAME_COLUMN, P_DROP_FK, P_DROP_INDEX, P_ALTER,
  P_CREATE, P_INDEX, P_ADD_FK, P_DROP_TABLE
};

typedef struct Step {
  int eOp;
  const char *zModel, *zTable, *zColumn, *zWhat;
  const char **azSql; int nSql;
  int bDestructive, bRebuild;
  int bNew;                 /* part of creating a table (create_tables) */
  int iPhase, iSeq;
  const char *zGuardSql;    /* must return no row, else zGuardMsg */
  const char *zGuardMsg;
  int bGuardSoft;           /* the guard is skipped with allow_drop */
} Step;

struct quay_migration {
  quay_db *pDb;
  Arena arena;              /* strings and statement lists */
  Step *aStep; int nStep, nStepAlloc;
  int oom;
  const char *zRefuse;      /* migrate refuses with it before any step */
};

static const char *const azOpName[] = {
  NULL, "create_table", "drop_table", "rename_table", "add_column",
  "drop_column", "rename_column", "alter_column", "create_index",
  "drop_index", "add_constraint", "drop_constraint"
};

const char *quay_op_name(int eOp) {
  return (eOp >= 1 && eOp < QUAY_ARRAYSIZE(azOpName)) ? azOpName[eOp] : NULL;
}

int quay_op_code(const char *z) {
  int i;
  for (i = 1; z && i < QUAY_ARRAYSIZE(azOpName); i++) {
    if (strcmp(azOpName[i], z) == 0) return i;
  }
  return 0;
}

static quay_migration *mig_new(quay_db *pDb) {
  quay_migration *p = quay__calloc(sizeof(*p));
  if (p == NULL) return NULL;
  p->pDb = pDb;
  quay__db_hold(pDb);
  quay__arena_init(&p->arena);
  return p;
}

int quay_migration_new(quay_db *pDb, quay_migration **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_migration_new: %s is NULL", pDb
        == NULL ? "pDb" : "ppMig");
  }
  *pp = mig_new(pDb);
  return *pp ? QUAY_OK : quay__oom(pErr);
}

void quay_migration_free(quay_migration *p) {
  if (p == NULL) return;
  quay__free(p->aStep);
  quay__arena_free(&p->arena);
  quay__db_release(p->pDb);
  quay__free(p);
}

static const char *mig_str(quay_migration *p, const char *z) {
  char *r;
  if (z == NULL) return NULL;
  r = quay__arena_strdup(&p->arena, z, strlen(z));
  if (r == NULL) p->oom = 1;
  return r;
}

/* A new step (zeroed but for the given fields); NULL on OOM. */
static Step *mig_step(quay_migration *p, int eOp, int iPhase,
                      const char *zModel, const char *zTable,
                      const char *zColumn) {
  Step *s;
  if (p->oom) return NULL;
  if (p->nStep == p->nStepAlloc) {
    int nNew = p->nStepAlloc ? p->nStepAlloc * 2 : 16;
    Step *a = quay__realloc(p->aStep, sizeof(Step) * (size_t)nNew);
    if (a == NULL) {
      p->oom = 1;
      return NULL;
    }
    p->aStep = a;
    p->nStepAlloc = nNew;
  }
  s = &p->aStep[p->nStep];
  memset(s, 0, sizeof(*s));
  s->eOp = eOp;
  s->iPhase = iPhase;
  s->iSeq = p->nStep;
  s->zModel = mig_str(p, zModel);
  s->zTable = mig_str(p, zTable);
  s->zColumn = mig_str(p, zColumn);
  p->nStep++;
  return s;
}

/* Append a statement (copied) to step s. */
static void step_sql(quay_migration *p, Step *s, const char *zSql) {
  const char **a;
  if (s == NULL || p->oom) return;
  a = quay__arena_alloc(&p->arena, sizeof(char *) * (size_t)(s->nSql + 1));
  if (a == NULL) {
    p->oom = 1;
    return;
  }
  if (s->nSql) memcpy(a, s->azSql, sizeof(char *) * (size_t)s->nSql);
  a[s->nSql] = mig_str(p, zSql);
  s->azSql = a;
  s->nSql++;
}

/* Append the text of a Str as a statement and reset it. */
static void step_str(quay_migration *p, Step *s, Str *q) {
  if (q->oom) p->oom = 1;
  else step_sql(p, s, q->n ? q->z : "");
  quay__str_reset(q);
}

int quay_migration_add(quay_migration *p, const quay_step_info *pInfo,
                       const char *const *azSql, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL || pInfo == NULL || (azSql == NULL && pInfo->nSql > 0)) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_migration_add: %s is NULL", p
        == NULL ? "pMig" : pInfo == NULL ? "pStep" : "azSql");
  }
  Step *s;
  int i;
  if (quay_op_name(pInfo->eOp) == NULL || pInfo->zTable == NULL ||
      pInfo->nSql < 0) {
    return quay__err(pErr, QUAY_EMISUSE, "a migration step needs a known op "
                     "and a table");
  }
  s = mig_step(p, pInfo->eOp, 0, pInfo->zModel, pInfo->zTable,
               pInfo->zColumn);
  if (s) {
    s->zWhat = mig_str(p, pInfo->zWhat);
    s->bDestructive = pInfo->bDestructive;
    s->bRebuild = pInfo->bRebuild;
    for (i = 0; i < pInfo->nSql; i++) step_sql(p, s, azSql[i]);
  }
  return p->oom ? quay__oom(pErr) : QUAY_OK;
}

int quay_migration_count(const quay_migration *p) {
  return p ? p->nStep : 0;
}

int quay_migration_step(const quay_migration *p, int i, quay_step_info *o) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL || o == NULL) {
    return QUAY_EMISUSE;
  }
  const Step *s;
  if (i < 0 || i >= p->nStep) return QUAY_EMISUSE;
  s = &p->aStep[i];
  o->eOp = s->eOp;
  o->zModel = s->zModel;
  o->zTable = s->zTable;
  o->zColumn = s->zColumn;
  o->zWhat = s->zWhat;
  o->nSql = s->nSql;
  o->bDestructive = s->bDestructive;
  o->bRebuild = s->bRebuild;
  return QUAY_OK;
}

const char *quay_migration_sql(const quay_migration *p, int iStep, int i) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return NULL;
  }
  if (iStep < 0 || iStep >= p->nStep || i < 0 || i >= p->aStep[iStep].nSql) {
    return NULL;
  }
  return p->aStep[iStep].azSql[i];
}

static int mig_cmp_step(const void *a, const void *b) {
  const Step *x = a, *y = b;
  if (x->iPhase != y->iPhase) return x->iPhase - y->iPhase;
  return x->iSeq - y->iSeq;
}

void quay_checksum(const void *p, size_t n, char zOut[17]) {
  const unsigned char *z = p;
  uint64_t h = 14695981039346656037ULL;   /* FNV-1a, 64 bits */
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= z[i];
    h *= 1099511628211ULL;
  }
  snprintf(zOut, 17, "%016llx", (unsigned long long)h);
}
/* }================================================================== */


/*
** {==================================================================
** Comparing
** ===================================================================
*/
/* What the diff knows of one declared table. */
typedef struct TabMap {
  STable *pDecl;
  STable *pLive;            /* the live table it is, or NULL: created */
  const char **azFrom;      /* per declared column: its live column */
  unsigned char *abLive;    /* per live column: kept (matched) */
  unsigned char *abIdx;     /* per live index: matched */
  unsigned char *abFk;      /* per live foreign key: matched */
  unsigned char *abCheck;   /* per live check: matched */
  int bRebuild;             /* SQLite: rebuilt */
  int bRenamedCol;          /* a column of it is renamed */
  int iFirst;               /* first step of its changes (-1: none) */
  int bRefKeyChanged;       /* a column other tables refer to changed */
  int bPairKey;             /* a join table keyed by its pair: left alone */
  int bPkDrop;              /* ALTER: its primary key constraint is dropped */
} TabMap;

typedef struct Diff {
  quay_db *pDb;
  const Dialect *d;
  quay_schema *pLive, *pDecl;
  quay_migration *pMig;
  TabMap *aMap;             /* per declared table */
  unsigned char *abLiveUsed;/* per live table: matched */
  Str q;                    /* scratch SQL */
  Str w;                    /* scratch description */
} Diff;

static void *diff_alloc(Diff *x, size_t n) {
  void *p = quay__arena_alloc(&x->pMig->arena, n ? n : 1);
  if (p == NULL) x->pMig->oom = 1;
  else memset(p, 0, n ? n : 1);
  return p;
}

/* The TabMap of the declared table whose live table is zLive, or NULL. */
static TabMap *diff_map_of_live(Diff *x, const char *zLive) {
  int i;
  for (i = 0; i < x->pDecl->nTab; i++) {
    if (x->aMap[i].pLive && strcmp(x->aMap[i].pLive->zName, zLive) == 0) {
      return &x->aMap[i];
    }
  }
  return NULL;
}

static TabMap *diff_map_of_decl(Diff *x, const char *zDecl) {
  int i;
  for (i = 0; i < x->pDecl->nTab; i++) {
    if (strcmp(x->aMap[i].pDecl->zName, zDecl) == 0) return &x->aMap[i];
  }
  return NULL;
}

/* The declared name of live column zCol of m's table, or NULL (dropped). */
static const char *diff_decl_col(const TabMap *m, const char *zCol) {
  int i;
  if (zCol == NULL) return NULL;
  for (i = 0; i < m->pDecl->nCol; i++) {
    if (m->azFrom[i] && strcmp(m->azFrom[i], zCol) == 0) {
      return m->pDecl->aCol[i].zName;
    }
  }
  return NULL;
}

/* The model label of a declared column: "Post.editor". */
static void diff_col_label(Str *p, const STable *t, const SCol *c) {
  Field *f = c ? c->pField : NULL;
  if (t->pModel && f) {
    const char *z = f->zName;
    if (f->pRel && f->pRel->pFk == f && f->pRel->pFrom == t->pModel &&
        (f->pRel->eKind == QUAY_R_BELONGS_TO ||
         f->pRel->eKind == QUAY_R_ONE_TO_ONE)) {
      z = f->pRel->zName;
    }
    quay__str_printf(p, " (%s.%s)", t->pModel->zName, z);
  } else if (t->pJoin) {
    quay__str_printf(p, " (join table of %s and %s)", t->pJoin->pSrc->zName,
                     t->pJoin->pDst->zName);
  }
}

static const char *diff_model_of(const STable *t) {
  if (t->pModel) return t->pModel->zName;
  if (t->pJoin) return t->pJoin->pSrc->zName;
  return NULL;
}

/* Take the description text for a step. */
static const char *diff_take_what(Diff *x) {
  const char *z = x->w.oom ? NULL : mig_str(x->pMig, x->w.n ? x->w.z : "");
  if (x->w.oom) x->pMig->oom = 1;
  quay__str_reset(&x->w);
  return z;
}

/* A comma-separated, quoted list of columns. */
static void diff_ident_list(Str *p, char *const *az, int n) {
  int i;
  for (i = 0; i < n; i++) {
    if (i) quay__str_cat(p, ", ");
    quay__str_ident(p, az[i] ? az[i] : "?");
  }
}

static void diff_plain_list(Str *p, char *const *az, int n) {
  int i;
  for (i = 0; i < n; i++) {
    quay__str_printf(p, "%s%s", i ? ", " : "", az[i] ? az[i] : "(expr)");
  }
}

/* Two type names written alike (case and spaces aside). */
static int type_same_name(const char *a, const char *b) {
  for (;;) {
    while (*a == ' ') a++;
    while (*b == ' ') b++;
    if (*a == 0 || *b == 0) return *a == *b;
    if ((*a | 0x20) != (*b | 0x20)) return 0;
    a++;
    b++;
  }
}

/*
** Do two column descriptions hold the same type?  The same class (and
** max), or the same DDL type (SQLite keeps datetimes as TEXT); a live
** type of no known class is left alone.
*/
static int type_same(const SCol *pLive, const SCol *pDecl) {
  int eL = pLive->eType;
  if (eL == 0) return 1;
  if (pLive->zType && pDecl->zType &&
      type_same_name(pLive->zType, pDecl->zType)) {
    return 1;
  }
  return eL == pDecl->eType && pLive->nMax == pDecl->nMax &&
         pLive->nDigits == pDecl->nDigits && pLive->nPlaces == pDecl->nPlaces;
}

/* Is the type change from a to b a type_widening (reference.md "Narrowing")? */
static int type_widening(const SCol *a, const SCol *b) {
  if (a->eType == QUAY_T_INTEGER && b->eType == QUAY_T_NUMBER) return 1;
  if (a->eType == QUAY_T_STRING && b->eType == QUAY_T_TEXT) return 1;
  if (a->eType == QUAY_T_STRING && b->eType == QUAY_T_STRING) {
    return b->nMax == 0 || (a->nMax > 0 && b->nMax > a->nMax);
  }
  if (a->eType == QUAY_T_DECIMAL && b->eType == QUAY_T_DECIMAL) {
    /* as many places or more, and as many digits before the point */
    return b->nPlaces >= a->nPlaces &&
           b->nDigits - b->nPlaces >= a->nDigits - a->nPlaces;
  }
  if ((a->eType == QUAY_T_INTEGER || a->eType == QUAY_T_NUMBER) &&
      b->eType == QUAY_T_DECIMAL) {
    /* "with enough digits": for the values the column holds, which the
    ** step's guard checks (decimal_guard) */
    return 1;
  }
  /* Nothing else, date -> datetime included: reference.md lists the
  ** widenings, every other change is a narrowing. */
  return 0;
}

/*
** Does a value of column a have a defined form as b (a change the
** migration may make with allow_drop)?  Within the numbers (integer,
** number, decimal, boolean), between a date and a datetime, anything but
** bytes to text, and text to anything but bytes (as PostgreSQL casts it).
** Other changes (a date into an integer, a uuid into a boolean, bytes)
** have no conversion: they run only on a column holding no value.
*/
static int type_converts(const SCol *a, const SCol *b) {
  int eA = a->eType, eB = b->eType;
  int bTextA = eA == QUAY_T_STRING || eA == QUAY_T_TEXT;
  int bTextB = eB == QUAY_T_STRING || eB == QUAY_T_TEXT;
  int bNumA = eA == QUAY_T_INTEGER || eA == QUAY_T_NUMBER ||
              eA == QUAY_T_DECIMAL || eA == QUAY_T_BOOLEAN;
  int bNumB = eB == QUAY_T_INTEGER || eB == QUAY_T_NUMBER ||
              eB == QUAY_T_DECIMAL || eB == QUAY_T_BOOLEAN;
  if (eA == 0 || eB == 0 || eA == eB || type_widening(a, b)) return 1;
  if (bNumA && bNumB) return 1;
  if ((eA == QUAY_T_DATE || eA == QUAY_T_DATETIME) &&
      (eB == QUAY_T_DATE || eB == QUAY_T_DATETIME)) {
    return 1;
  }
  if (bTextB) return eA != QUAY_T_BLOB;
  if (bTextA) return eB != QUAY_T_BLOB;
  return 0;
}

/*
** Is a change of column a into b one whose values SQLite must convert
** from text itself (quay_conv, drv_sqlite.c), refusing what does not
** convert, as PostgreSQL's casts refuse it?  From a string or text into a
** number, boolean, date, datetime, uuid or json.
*/
static int text_conv(const Dialect *d, const SCol *a, const SCol *b) {
  if (d->bAlterColumn || a == NULL) return 0;
  if (a->eType != QUAY_T_STRING && a->eType != QUAY_T_TEXT) return 0;
  switch (b->eType) {
    case QUAY_T_INTEGER: case QUAY_T_NUMBER: case QUAY_T_DECIMAL:
    case QUAY_T_BOOLEAN: case QUAY_T_DATE: case QUAY_T_DATETIME:
    case QUAY_T_UUID: case QUAY_T_JSON:
      return 1;
  }
  return 0;
}

/* quay_conv(<zCol>, type, places, digits) for column b (text_conv). */
static void text_conv_call(Str *q, const char *zCol, const SCol *b) {
  quay__str_cat(q, "quay_conv(");
  quay__str_ident(q, zCol);
  quay__str_printf(q, ", %d, %d, %d)", b->eType, b->nPlaces, b->nDigits);
}

/*
** The condition "column zCol's value (not NULL) does not convert" when
** a into b refuses values the database's own conversion would keep: on
** SQLite every text quay_conv refuses; on PostgreSQL, whose casts refuse
** the rest themselves, a NaN into a number or a decimal (no value Quay
** stores).  0 when there is none; with q NULL only the answer.
*/
static int conv_refused(const Dialect *d, const SCol *a, const SCol *b,
                        const char *zCol, Str *q) {
  if (text_conv(d, a, b)) {
    if (q == NULL) return 1;
    text_conv_call(q, zCol, b);
    quay__str_cat(q, " IS NULL");
    return 1;
  }
  if (d->bAlterColumn && a &&
      (a->eType == QUAY_T_STRING || a->eType == QUAY_T_TEXT) &&
      (b->eType == QUAY_T_NUMBER || b->eType == QUAY_T_DECIMAL)) {
    if (q == NULL) return 1;
    /* ("nan", "-NaN", "nan(1)": no number has these letters) */
    quay__str_cat(q, "lower(");
    quay__str_ident(q, zCol);
    quay__str_cat(q, ") LIKE '%nan%'");
    return 1;
  }
  return 0;
}

/* Are two literal default values the same, for a column of class eType? */
static int dflt_same_value(int eType, const char *a, const char *b) {
  if (eType == QUAY_T_INTEGER || eType == QUAY_T_NUMBER) {
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (*ea == 0 && *eb == 0) return x == y;
  }
  if (eType == QUAY_T_BOOLEAN) {
    int x = strcmp(a, "true") == 0 || strcmp(a, "1") == 0 ||
            strcmp(a, "t") == 0;
    int y = strcmp(b, "true") == 0 || strcmp(b, "1") == 0 ||
            strcmp(b, "t") == 0;
    return x == y;
  }
  return strcmp(a, b) == 0;
}

static int dflt_same(const SCol *pLive, const SCol *pDecl) {
  if (pLive->eDflt == DFLT_EXPR) return pDecl->eDflt == DFLT_NONE;
  if (pLive->eDflt != pDecl->eDflt) return 0;
  if (pLive->eDflt == DFLT_NONE) return 1;
  return dflt_same_value(pDecl->eType, pLive->zDfltVal, pDecl->zDfltVal);
}

/*
** An integer or number column l.lc becoming decimal c: the condition
** (into q) of a row whose value the decimal cannot hold exactly, more
** digits before the point than it has, or for a number more places.
*/
static void decimal_guard(Str *q, const SCol *lc, const SCol *c) {
  int i;
  quay__str_cat(q, "abs(");
  quay__str_ident(q, lc->zName);
  quay__str_cat(q, ") >= 1");
  for (i = 0; i < c->nDigits - c->nPlaces; i++) quay__str_char(q, '0');
  if (lc->eType == QUAY_T_NUMBER) {
    quay__str_cat(q, " OR round(CAST(");
    quay__str_ident(q, lc->zName);
    quay__str_printf(q, " AS NUMERIC), %d) <> CAST(", c->nPlaces);
    quay__str_ident(q, lc->zName);
    quay__str_cat(q, " AS NUMERIC)");
  }
}

/*
** Pass A: match declared tables with live ones (by name, else
** renamed_from), and their columns (by name, else renamed_from).  Makes
** the rename steps.
*/
/*
** Non-0 when live table l is the automatic join table t keyed by its pair:
** its only columns are t's two key columns, which are its primary key.
** Such a table has no single-column primary key, so migrate leaves it
** alone (reference.md "Schema evolution"): the many_to_many reads and
** writes it as it is, and `quay inspect` declares it so.
*/
static int diff_pair_key(const STable *t, const STable *l) {
  const SCol *a, *b;
  if (t->pJoin == NULL || t->pJoin->pThrough || t->nCol != 3 ||
      l->nCol != 2) {
    return 0;
  }
  a = quay__stable_find_col(l, t->aCol[1].zName);
  b = quay__stable_find_col(l, t->aCol[2].zName);
  return a && b && a != b && a->iPk && b->iPk;
}

static void match_tables(Diff *x) {
  quay_schema *pL = x->pLive, *pD = x->pDecl;
  int i, k;
  for (i = 0; i < pD->nTab && !x->pMig->oom; i++) {
    TabMap *m = &x->aMap[i];
    STable *t = &pD->aTab[i];
    STable *l = quay__schema_find(pL, t->zName);
    m->pDecl = t;
    m->iFirst = -1;
    if (l == NULL && (t->zRenamed || t->pJoin)) {
      /* renamed_from: the old table, or the old model's default table. */
      char zOld[160];
      zOld[0] = 0;
      if (t->zRenamed) {
        if (quay__schema_find(pL, t->zRenamed)) {
          snprintf(zOld, sizeof(zOld), "%s", t->zRenamed);
        } else {
          char *zSnake = quay__snake_case(t->zRenamed);
          if (zSnake == NULL) {
            x->pMig->oom = 1;
            return;
          }
          snprintf(zOld, sizeof(zOld), "%ss", zSnake);
          quay__free(zSnake);
        }
      } else if (t->pJoin->pSrc->zRenamed || t->pJoin->pDst->zRenamed) {
        /* An automatic join table of renamed models. */
        TabMap *a = diff_map_of_decl(x, t->pJoin->pSrc->zTable);
        TabMap *b = diff_map_of_decl(x, t->pJoin->pDst->zTable);
        if (a && b && a->pLive && b->pLive) {
          snprintf(zOld, sizeof(zOld), "%s_%s", a->pLive->zName,
                   b->pLive->zName);
        }
      }
      l = zOld[0] ? quay__schema_find(pL, zOld) : NULL;
      if (l && (quay__schema_find(pD, l->zName) ||
                x->abLiveUsed[l - pL->aTab])) {
        l = NULL;                    /* still declared, or taken */
      }
      if (l) {
        Step *s = mig_step(x->pMig, QUAY_OP_RENAME_TABLE, P_RENAME_TABLE,
                           diff_model_of(t), t->zName, NULL);
        quay__str_printf(&x->w, "rename table %s to %s", l->zName, t->zName);
        if (t->pModel) quay__str_printf(&x->w, " (%s renamed_from)",
                                        t->pModel->zName);
        if (s) s->zWhat = diff_take_what(x);
        quay__str_cat(&x->q, "ALTER TABLE ");
        quay__str_ident(&x->q, l->zName);
        quay__str_cat(&x->q, " RENAME TO ");
        quay__str_ident(&x->q, t->zName);
        step_str(x->pMig, s, &x->q);
      }
    }
    m->pLive = l;
    m->azFrom = diff_alloc(x, sizeof(char *) * (size_t)(t->nCol + 1));
    if (m->azFrom == NULL) return;
    if (l == NULL) continue;
    m->bPairKey = diff_pair_key(t, l);
    x->abLiveUsed[l - pL->aTab] = 1;
    m->abLive = diff_alloc(x, (size_t)l->nCol + 1);
    m->abIdx = diff_alloc(x, (size_t)l->nIdx + 1);
    m->abFk = diff_alloc(x, (size_t)l->nFk + 1);
    m->abCheck = diff_alloc(x, (size_t)l->nCheck + 1);
    if (!m->abLive || !m->abIdx || !m->abFk || !m->abCheck) return;
    for (k = 0; k < t->nCol; k++) {
      SCol *c = &t->aCol[k];
      SCol *lc = quay__stable_find_col(l, c->zName);
      if (lc && m->abLive[lc - l->aCol]) lc = NULL;
      if (lc == NULL && (c->zRenamed || t->pJoin)) {
        char zId[160];
        SCol *o = NULL;
        if (c->zRenamed) {
          o = quay__stable_find_col(l, c->zRenamed);
          if (o == NULL) {
            snprintf(zId, sizeof(zId), "%.70s_id", c->zRenamed);
            o = quay__stable_find_col(l, zId);
          }
        } else if (k > 0) {
          /* A join table column of a renamed model: "<old_snake>_id". */
          JoinTable *j = t->pJoin;
          quay_model *pM = k == 1 ? j->pSrc : j->pDst;
          char *zSnake = pM->zRenamed ? quay__snake_case(pM->zRenamed) : NULL;
          if (zSnake) {
            snprintf(zId, sizeof(zId), "%s%.70s_id",
                     j->isSelf ? (k == 1 ? "from_" : "to_") : "", zSnake);
            quay__free(zSnake);
            o = quay__stable_find_col(l, zId);
          }
        }
        if (o && !m->abLive[o - l->aCol] &&
            quay__stable_find_col(t, o->zName) == NULL) {
          Step *s = mig_step(x->pMig, QUAY_OP_RENAME_COLUMN, P_RENAME_COLUMN,
                             diff_model_of(t), t->zName, c->zName);
          quay__str_printf(&x->w, "rename column %s.%s to %s", t->zName,
                           o->zName, c->zName);
          diff_col_label(&x->w, t, c);
          if (s) s->zWhat = diff_take_what(x);
          quay__str_cat(&x->q, "ALTER TABLE ");
          quay__str_ident(&x->q, t->zName);
          quay__str_cat(&x->q, " RENAME COLUMN ");
          quay__str_ident(&x->q, o->zName);
          quay__str_cat(&x->q, " TO ");
          quay__str_ident(&x->q, c->zName);
          step_str(x->pMig, s, &x->q);
          m->bRenamedCol = 1;
          lc = o;
        }
      }
      if (lc) {
        m->abLive[lc - l->aCol] = 1;
        m->azFrom[k] = lc->zName;
      }
    }
  }
}

/* Record that step s changes m's table. */
static Step *diff_tab_step(Diff *x, TabMap *m, int eOp, int iPhase,
                      const char *zColumn) {
  Step *s = mig_step(x->pMig, eOp, iPhase, diff_model_of(m->pDecl),
                     m->pDecl->zName, zColumn);
  if (s && m->iFirst < 0) m->iFirst = (int)(s - x->pMig->aStep);
  return s;
}

/* The declared foreign key of column zCol of t (single column), or NULL. */
static SFk *diff_col_fk(STable *t, const char *zCol) {
  int i;
  for (i = 0; i < t->nFk; i++) {
    if (t->aFk[i].nCol == 1 && strcmp(t->aFk[i].azCol[0], zCol) == 0) {
      return &t->aFk[i];
    }
  }
  return NULL;
}

/* Does live foreign key f of m's table equal declared one g? */
static int diff_same_fk(Diff *x, const TabMap *m, const SFk *f, const SFk *g) {
  TabMap *pT;
  int i;
  if (f->nCol != g->nCol || f->eOnUpdate != g->eOnUpdate) return 0;
  pT = diff_map_of_live(x, f->zTable);
  if (pT == NULL || strcmp(pT->pDecl->zName, g->zTable) != 0) {
    /* A target that is not declared compares by its live name. */
    if (pT != NULL || strcmp(f->zTable, g->zTable) != 0) return 0;
  }
  for (i = 0; i < f->nCol; i++) {
    const char *zc = diff_decl_col(m, f->azCol[i]);
    const char *zt = pT ? diff_decl_col(pT, f->azTo[i]) : f->azTo[i];
    if (zc == NULL || zt == NULL || strcmp(zc, g->azCol[i]) ||
        strcmp(zt, g->azTo[i])) {
      return 0;
    }
  }
  return 1;
}

/* Is the primary key constraint of m's live table dropped (ALTER TABLE
** dialects): a column becomes or stops being the key, or a key column
** goes?  Foreign keys that refer to it are then dropped and made again
** around it (PostgreSQL refuses to drop a key they depend on). */
static int diff_pk_dropped(const Diff *x, const TabMap *m) {
  const STable *t = m->pDecl, *l = m->pLive;
  int k;
  if (!x->d->bAlterColumn || l == NULL || l->zPkName == NULL ||
      m->bPairKey) {
    return 0;
  }
  for (k = 0; k < t->nCol; k++) {
    const SCol *c = &t->aCol[k];
    const SCol *lc = m->azFrom[k] ? quay__stable_find_col(l, m->azFrom[k])
                                  : NULL;
    if (lc == NULL ? c->iPk != 0 : !lc->iPk != !c->iPk) return 1;
  }
  for (k = 0; k < l->nCol; k++) {
    if (l->aCol[k].iPk && !m->abLive[k]) return 1;
  }
  return 0;
}

/* Does live foreign key f refer to a primary key that is dropped? */
static int diff_fk_on_dropped_pk(Diff *x, const SFk *f) {
  TabMap *pT = diff_map_of_live(x, f->zTable);
  const SCol *c;
  if (pT == NULL || !pT->bPkDrop || f->nCol != 1) return 0;
  c = quay__stable_find_col(pT->pLive, f->azTo[0]);
  return c != NULL && c->iPk != 0;
}

/* Does live index l (columns mapped to declared names) equal d? */
static int diff_same_idx(const TabMap *m, const SIdx *l, const SIdx *d) {
  int i;
  if (l->bPartial || !l->bUnique != !d->bUnique || l->nCol != d->nCol) {
    return 0;
  }
  for (i = 0; i < l->nCol; i++) {
    const char *z = diff_decl_col(m, l->azCol[i]);
    if (z == NULL || strcmp(z, d->azCol[i]) != 0) return 0;
  }
  return 1;
}

/* Two CHECK expressions, compared without case, spaces and outer parens. */
static void diff_norm_expr(const char *z, Str *p) {
  size_t n = strlen(z);
  int inStr = 0;
  while (n >= 2 && z[0] == '(' && z[n - 1] == ')') {
    z++;
    n -= 2;
  }
  for (; n > 0; z++, n--) {
    char c = *z;
    if (c == '\'') inStr = !inStr;
    if (!inStr && (c == ' ' || c == '\t' || c == '\n' || c == '"' ||
                   c == '(' || c == ')')) {
      continue;
    }
    if (!inStr && c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    quay__str_char(p, c);
  }
}

static int diff_same_check(const char *a, const char *b) {
  Str x, y;
  int r;
  quay__str_init(&x);
  quay__str_init(&y);
  diff_norm_expr(a, &x);
  diff_norm_expr(b, &y);
  r = !x.oom && !y.oom && x.n == y.n &&
      (x.n == 0 || memcmp(x.z, y.z, x.n) == 0);
  quay__str_free(&x);
  quay__str_free(&y);
  return r;
}

/* Quay made a CHECK constraint when its name starts with "quay_". */
static int diff_owns_check(const SCheck *c) {
  return c->zName && strncmp(c->zName, "quay_", 5) == 0;
}

/* A live column is named in a live CHECK of its table (SQLite). */
static int diff_in_check(const STable *l, const char *zCol) {
  int i;
  for (i = 0; i < l->nCheck; i++) {
    if (strstr(l->aCheck[i].zExpr, zCol)) return 1;
  }
  return 0;
}

/* Can SQLite's ALTER TABLE ADD COLUMN add declared column c? */
static int alter_can_add(const SCol *c, const SFk *f) {
  if (c->iPk) return 0;
  if (!c->bNull && c->zDefault == NULL) return 0;
  if (f && (c->zDefault != NULL || f->nCol != 1)) return 0;
  return 1;
}

/* Can SQLite's ALTER TABLE DROP COLUMN drop live column c of l? */
static int alter_can_drop(const STable *l, const SCol *c) {
  int i, k;
  if (c->iPk) return 0;
  for (i = 0; i < l->nIdx; i++) {
    if (!l->aIdx[i].bConstraint) continue;
    for (k = 0; k < l->aIdx[i].nCol; k++) {
      if (l->aIdx[i].azCol[k] && strcmp(l->aIdx[i].azCol[k], c->zName) == 0) {
        return 0;
      }
    }
  }
  for (i = 0; i < l->nFk; i++) {
    for (k = 0; k < l->aFk[i].nCol; k++) {
      if (strcmp(l->aFk[i].azCol[k], c->zName) == 0) return 0;
    }
  }
  return !diff_in_check(l, c->zName);
}

/* Does a live foreign key refer to column zCol of live table l? */
static int diff_referenced(Diff *x, const STable *l, const char *zCol) {
  int i, k, j;
  for (i = 0; i < x->pLive->nTab; i++) {
    const STable *o = &x->pLive->aTab[i];
    for (k = 0; k < o->nFk; k++) {
      if (strcmp(o->aFk[k].zTable, l->zName) != 0) continue;
      for (j = 0; j < o->aFk[k].nCol; j++) {
        if (o->aFk[k].azTo[j] && strcmp(o->aFk[k].azTo[j], zCol) == 0) {
          return 1;
        }
      }
    }
  }
  return 0;
}

/* "ALTER TABLE t " into x->q. */
static void diff_alter_head(Diff *x, const char *zTable) {
  quay__str_cat(&x->q, "ALTER TABLE ");
  quay__str_ident(&x->q, zTable);
  quay__str_char(&x->q, ' ');
}

/* The column steps of a matched table; sets m->bRebuild when needed. */
/* Drop live table l's primary key constraint in step s, the first step of
** its table that touches the key (a new key column, a kept one that stops
** or starts being the key, a dropped key column): PostgreSQL refuses a
** second primary key, and a constraint is dropped once.  The table is
** named zTable by then (a rename runs first). */
static void diff_drop_pk(Diff *x, const STable *l, const char *zTable,
                         Step *s, int *pbDone) {
  if (*pbDone || l->zPkName == NULL) return;
  *pbDone = 1;
  diff_alter_head(x, zTable);
  quay__str_cat(&x->q, "DROP CONSTRAINT ");
  quay__str_ident(&x->q, l->zPkName);
  step_str(x->pMig, s, &x->q);
}

/*
** The SQL literal of the static default of a NOT NULL json column c of
** declared table t, appended to q: the value migrate gives the rows a
** table already has when it adds c.  A JSON default is Quay's own, never
** a DDL DEFAULT (PostgreSQL rewrites jsonb text, so a live default could
** not be compared), so the column is added with it and left without one.
** 0 (q untouched) when c has no such default.
*/
static int json_once_default(const STable *t, const SCol *c, Str *q) {
  const Field *f = c->pField;
  ValBuf vb;
  quay_value v;
  quay_err err;
  int ok;
  if (f == NULL || t->pModel == NULL || c->bNull ||
      c->eType != QUAY_T_JSON || !(f->mFlags & QUAY_F_DEFAULT) ||
      (f->mFlags & QUAY_F_DYN_DEFAULT) || f->dflt.type == QUAY_NULL) {
    return 0;
  }
  memset(&err, 0, sizeof(err));
  vb.zHeap = NULL;
  v = f->dflt;
  ok = quay__value_conform(t->pModel, f, &v, &vb, &err) == QUAY_OK &&
       v.type == QUAY_JSON;
  if (ok) {
    v.type = QUAY_TEXT;                 /* its text, as a string literal */
    ok = quay__ddl_literal(q, QUAY_T_TEXT, &v);
  }
  quay__valbuf_free(&vb);
  return ok;
}

static void diff_columns(Diff *x, TabMap *m) {
  const Dialect *d = x->d;
  STable *t = m->pDecl, *l = m->pLive;
  int k, i, bPkDropped = 0;
  for (k = 0; k < t->nCol && !x->pMig->oom; k++) {
    SCol *c = &t->aCol[k];
    SCol *lc = m->azFrom[k] ? quay__stable_find_col(l, m->azFrom[k]) : NULL;
    SFk *f = diff_col_fk(t, c->zName);
    if (lc == NULL) {
      Step *s = diff_tab_step(x, m, QUAY_OP_ADD_COLUMN, P_ALTER, c->zName);
      Str once;
      int bOnce;
      if (s == NULL) return;
      quay__str_printf(&x->w, "add column %s.%s", t->zName, c->zName);
      diff_col_label(&x->w, t, c);
      s->zWhat = diff_take_what(x);
      quay__str_init(&once);
      bOnce = json_once_default(t, c, &once);
      if (!c->bNull && c->zDefault == NULL && !c->bAuto && !bOnce) {
        /* Refused when the table has rows. */
        quay__str_cat(&x->q, "SELECT 1 FROM ");
        quay__str_ident(&x->q, l->zName);
        quay__str_cat(&x->q, " LIMIT 1");
        s->zGuardSql = x->q.oom ? NULL : mig_str(x->pMig, x->q.z);
        quay__str_reset(&x->q);
        quay__str_printf(&x->w, "cannot add column %s.%s", t->zName,
                         c->zName);
        diff_col_label(&x->w, t, c);
        if (c->pField &&
            (c->pField->mFlags & (QUAY_F_DEFAULT | QUAY_F_DYN_DEFAULT))) {
          /* A default the DDL cannot write (a function, a JSON
          ** document): the rows there would get no value. */
          quay__str_printf(&x->w, ": it is NOT NULL and its default (%s) "
                           "is not one the database can hold, so the rows "
                           "table %s has would get no value; declare it "
                           "with null = true, or add it nullable, fill it "
                           "(a data migration) and make it NOT NULL in a "
                           "later migration",
                           (c->pField->mFlags & QUAY_F_DYN_DEFAULT)
                               ? "a function"
                               : c->eType == QUAY_T_JSON ? "a JSON document"
                                                         : "bytes",
                           l->zName);
        } else if (c->eType == QUAY_T_UUID) {
          /* Quay makes a uuid per new record; SQL cannot for the rows
          ** already there. */
          quay__str_printf(&x->w, ": it is NOT NULL and table %s has "
                           "rows, which get no generated uuid (Quay makes "
                           "one per new record only); add it with null = "
                           "true, fill it (a data migration giving each "
                           "row a uuid) and make it NOT NULL in a later "
                           "migration", l->zName);
        } else {
          quay__str_printf(&x->w, ": it is NOT NULL without a default and "
                           "table %s has rows; give the field a default, "
                           "declare it with null = true, or add it "
                           "nullable, fill it (a data migration) and make "
                           "it NOT NULL in a later migration", l->zName);
        }
        s->zGuardMsg = diff_take_what(x);
      }
      if (!d->bAlterColumn && !alter_can_add(c, f)) {
        m->bRebuild = 1;                /* the copy writes a JSON default */
        quay__str_free(&once);
        continue;
      }
      if (c->iPk) diff_drop_pk(x, l, t->zName, s, &bPkDropped);
      diff_alter_head(x, t->zName);
      quay__str_cat(&x->q, "ADD COLUMN ");
      quay__ddl_column(d, c, c->iPk != 0, &x->q);
      if (bOnce && once.z) {
        /* The rows there get the JSON default; the column keeps none. */
        quay__str_cat(&x->q, " DEFAULT ");
        quay__str_cat(&x->q, once.z);
      }
      if (!d->bAlterColumn && f) quay__ddl_references(d, f, &x->q);
      step_str(x->pMig, s, &x->q);
      if (bOnce) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_cat(&x->q, " DROP DEFAULT");
        step_str(x->pMig, s, &x->q);
      }
      if (once.oom) x->pMig->oom = 1;
      quay__str_free(&once);
      continue;
    }
    /* A kept column: type, NULL, default, key, identity. */
    {
      int bType = !type_same(lc, c);
      int bNull = !lc->bNull != !c->bNull;
      int bDflt = !dflt_same(lc, c);
      int bPk = !lc->iPk != !c->iPk;
      int bAuto = d->xIdentitySync && c->iPk && lc->iPk &&
                  !lc->bAuto != !c->bAuto;
      int bDecGuard = 0, bNoConv = 0, bConv = 0;
      Step *s;
      if (!bType && !bNull && !bDflt && !bPk && !bAuto) continue;
      s = diff_tab_step(x, m, QUAY_OP_ALTER_COLUMN, P_ALTER, c->zName);
      if (s == NULL) return;
      quay__str_printf(&x->w, "change column %s.%s", t->zName, c->zName);
      diff_col_label(&x->w, t, c);
      quay__str_cat(&x->w, ":");
      if (bType) {
        quay__str_printf(&x->w, " type %s to %s", lc->zType, c->zType);
        if (!type_widening(lc, c)) {
          s->bDestructive = 1;
        } else if (lc->eType != c->eType && c->eType == QUAY_T_DECIMAL) {
          bDecGuard = 1;
        }
      }
      if (bType && !type_converts(lc, c)) {
        /* No conversion: only a column without values changes (any row
        ** when it also becomes NOT NULL); refused even with allow_drop. */
        bNoConv = 1;
        quay__str_cat(&x->q, "SELECT 1 FROM ");
        quay__str_ident(&x->q, l->zName);
        if (c->bNull || !bNull) {
          quay__str_cat(&x->q, " WHERE ");
          quay__str_ident(&x->q, lc->zName);
          quay__str_cat(&x->q, " IS NOT NULL");
        }
        quay__str_cat(&x->q, " LIMIT 1");
        s->zGuardSql = x->q.oom ? NULL : mig_str(x->pMig, x->q.z);
        quay__str_reset(&x->q);
      }
      bConv = bType && !bNoConv && conv_refused(d, lc, c, NULL, NULL);
      if (bNull) {
        quay__str_printf(&x->w, "%s %s to %s", bType ? "," : "",
                         lc->bNull ? "NULL" : "NOT NULL",
                         c->bNull ? "NULL" : "NOT NULL");
        if (!c->bNull && !bNoConv) {
          s->bDestructive = 1;
          quay__str_cat(&x->q, "SELECT 1 FROM ");
          quay__str_ident(&x->q, l->zName);
          quay__str_cat(&x->q, " WHERE ");
          quay__str_ident(&x->q, lc->zName);
          quay__str_cat(&x->q, " IS NULL");
          if (bDecGuard) {
            quay__str_cat(&x->q, " OR ");
            decimal_guard(&x->q, lc, c);
          }
          if (bConv) {
            quay__str_cat(&x->q, " OR ");
            conv_refused(d, lc, c, lc->zName, &x->q);
          }
          quay__str_cat(&x->q, " LIMIT 1");
          s->zGuardSql = x->q.oom ? NULL : mig_str(x->pMig, x->q.z);
          quay__str_reset(&x->q);
        }
      }
      if (bConv && s->zGuardSql == NULL) {
        /* Values that do not convert are refused, as PostgreSQL's casts
        ** refuse them (SQLite's would make them 0 or keep them). */
        quay__str_cat(&x->q, "SELECT 1 FROM ");
        quay__str_ident(&x->q, l->zName);
        quay__str_cat(&x->q, " WHERE ");
        quay__str_ident(&x->q, lc->zName);
        quay__str_cat(&x->q, " IS NOT NULL AND ");
        conv_refused(d, lc, c, lc->zName, &x->q);
        quay__str_cat(&x->q, " LIMIT 1");
        s->zGuardSql = x->q.oom ? NULL : mig_str(x->pMig, x->q.z);
        quay__str_reset(&x->q);
      }
      if (bDecGuard && s->zGuardSql == NULL) {
        /* A number's extra places round away with allow_drop; digits
        ** before the point the decimal lacks are refused either way. */
        quay__str_cat(&x->q, "SELECT 1 FROM ");
        quay__str_ident(&x->q, l->zName);
        quay__str_cat(&x->q, " WHERE ");
        decimal_guard(&x->q, lc, c);
        quay__str_cat(&x->q, " LIMIT 1");
        s->zGuardSql = x->q.oom ? NULL : mig_str(x->pMig, x->q.z);
        s->bGuardSoft = lc->eType == QUAY_T_NUMBER;
        quay__str_reset(&x->q);
      }
      if (bDflt) {
        quay__str_printf(&x->w, "%s default %s to %s",
                         bType || bNull ? "," : "",
                         lc->zDefault ? lc->zDefault : "none",
                         c->zDefault ? c->zDefault : "none");
      }
      if (bPk) {
        quay__str_printf(&x->w, "%s %s the primary key",
                         bType || bNull || bDflt ? "," : "",
                         c->iPk ? "becomes" : "is no longer");
        s->bDestructive = 1;
      }
      if (bAuto) {
        quay__str_printf(&x->w, "%s %s", bType || bNull || bDflt ? "," : "",
                         c->bAuto ? "generated by the database"
                                  : "no longer generated");
      }
      s->zWhat = diff_take_what(x);
      if (s->zGuardSql && bDecGuard) {
        quay__str_printf(&x->w, "cannot change %s.%s to %s%s: a row holds "
                         "a value it cannot hold exactly (more than %d "
                         "digits before the point%s%s); widen the decimal, "
                         "change the rows first (a data migration)%s",
                         t->zName, c->zName, c->zType,
                         bNull && !c->bNull ? " NOT NULL" : "",
                         c->nDigits - c->nPlaces,
                         lc->eType == QUAY_T_NUMBER ? ", or more places" : "",
                         bNull && !c->bNull ? ", or NULL" : "",
                         lc->eType == QUAY_T_NUMBER && !(bNull && !c->bNull)
                             ? " or pass allow_drop = true to round to the "
                               "places" : "");
        s->zGuardMsg = diff_take_what(x);
      } else if (s->zGuardSql && bNoConv) {
        quay__str_printf(&x->w, "cannot change %s.%s from %s to %s: Quay "
                         "has no conversion between them, and the column "
                         "holds values; add a new field, fill it from this "
                         "one in a data migration, then drop this one",
                         t->zName, c->zName, lc->zType, c->zType);
        s->zGuardMsg = diff_take_what(x);
      } else if (s->zGuardSql && bConv) {
        quay__str_printf(&x->w, "cannot change %s.%s from %s to %s: a row "
                         "holds %stext that is no %s value (as "
                         "PostgreSQL's cast refuses it); change those rows "
                         "first in a data migration, or add a new field "
                         "filled from this one", t->zName, c->zName,
                         lc->zType, c->zType,
                         bNull && !c->bNull ? "NULL or " : "",
                         quay__type_name(c->eType));
        s->zGuardMsg = diff_take_what(x);
      } else if (s->zGuardSql) {
        quay__str_printf(&x->w, "cannot make %s.%s NOT NULL: it holds NULL "
                         "values; fill them first (a data migration) or "
                         "keep null = true", t->zName, c->zName);
        s->zGuardMsg = diff_take_what(x);
      }
      if ((bType || bPk) && diff_referenced(x, l, lc->zName)) {
        m->bRefKeyChanged = 1;       /* check the tables that refer to it */
      }
      if (!d->bAlterColumn) {
        m->bRebuild = 1;
        continue;
      }
      if (bPk) diff_drop_pk(x, l, t->zName, s, &bPkDropped);
      if (bAuto && lc->bAuto) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_cat(&x->q,
                      lc->eDflt == DFLT_EXPR ? " DROP DEFAULT"
                                             : " DROP IDENTITY IF EXISTS");
        step_str(x->pMig, s, &x->q);
      }
      if (bType && lc->eDflt == DFLT_VALUE) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_cat(&x->q, " DROP DEFAULT");
        step_str(x->pMig, s, &x->q);
      }
      if (bType) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_printf(&x->q, " TYPE %s", c->zType);
        if ((lc->eType != c->eType || c->eType == QUAY_T_STRING) &&
            !type_widening(lc, c)) {
          /* PostgreSQL has no cast from boolean to bigint, double
          ** precision or numeric, nor back: true is 1, false 0, and a
          ** number is true when it is not 0.  An explicit cast to a
          ** smaller varchar cuts the values (ALTER TYPE alone refuses). */
          int bNumLive = lc->eType == QUAY_T_INTEGER ||
                         lc->eType == QUAY_T_NUMBER ||
                         lc->eType == QUAY_T_DECIMAL;
          int bNumNew = c->eType == QUAY_T_INTEGER ||
                        c->eType == QUAY_T_NUMBER ||
                        c->eType == QUAY_T_DECIMAL;
          quay__str_cat(&x->q, " USING ");
          if (bNoConv) {
            /* the guard saw no value */
            quay__str_printf(&x->q, "NULL::%s", c->zType);
          } else {
            if ((lc->eType == QUAY_T_STRING || lc->eType == QUAY_T_TEXT) &&
                c->eType == QUAY_T_DATETIME) {
              quay__str_cat(&x->q, "date_trunc('second', ");
            }
            quay__str_ident(&x->q, c->zName);
          }
          if (bNoConv) {
            /* (nothing to convert) */
          } else if (lc->eType == QUAY_T_BOOLEAN && bNumNew) {
            quay__str_printf(&x->q, "::int::%s", c->zType);
          } else if (bNumLive && c->eType == QUAY_T_BOOLEAN) {
            quay__str_cat(&x->q, " <> 0");
          } else if ((lc->eType == QUAY_T_STRING ||
                      lc->eType == QUAY_T_TEXT) &&
                     c->eType == QUAY_T_DATETIME) {
            /* as Quay reads a datetime: an offset converts to UTC (a
            ** plain cast would drop it), fractions are cut */
            quay__str_cat(&x->q, "::timestamptz) AT TIME ZONE 'UTC'");
          } else {
            quay__str_printf(&x->q, "::%s", c->zType);
          }
        }
        step_str(x->pMig, s, &x->q);
      }
      if (bNull) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_cat(&x->q, c->bNull ? " DROP NOT NULL" : " SET NOT NULL");
        step_str(x->pMig, s, &x->q);
      }
      if (bDflt || (bType && lc->eDflt == DFLT_VALUE && c->zDefault)) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        if (c->zDefault) {
          quay__str_printf(&x->q, " SET DEFAULT %s", c->zDefault);
        } else {
          quay__str_cat(&x->q, " DROP DEFAULT");
        }
        step_str(x->pMig, s, &x->q);
      }
      if (bPk && c->iPk) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ADD PRIMARY KEY (");
        quay__str_ident(&x->q, c->zName);
        quay__str_char(&x->q, ')');
        step_str(x->pMig, s, &x->q);
      }
      if (bAuto && c->bAuto) {
        diff_alter_head(x, t->zName);
        quay__str_cat(&x->q, "ALTER COLUMN ");
        quay__str_ident(&x->q, c->zName);
        quay__str_cat(&x->q, " ADD GENERATED BY DEFAULT AS IDENTITY");
        step_str(x->pMig, s, &x->q);
        d->xIdentitySync(&x->q, t->zName, c->zName);
        step_str(x->pMig, s, &x->q);
      }
    }
  }
  /* Live columns no field declares. */
  for (i = 0; i < l->nCol && !x->pMig->oom; i++) {
    SCol *lc = &l->aCol[i];
    Step *s;
    if (m->abLive[i]) continue;
    s = diff_tab_step(x, m, QUAY_OP_DROP_COLUMN, P_ALTER, lc->zName);
    if (s == NULL) return;
    s->bDestructive = 1;
    quay__str_printf(&x->w, "drop column %s.%s and its values (no field "
                     "declares it)", t->zName, lc->zName);
    s->zWhat = diff_take_what(x);
    if (diff_referenced(x, l, lc->zName)) m->bRefKeyChanged = 1;
    if (!d->bAlterColumn && !alter_can_drop(l, lc)) {
      m->bRebuild = 1;
      continue;
    }
    if (lc->iPk) diff_drop_pk(x, l, t->zName, s, &bPkDropped);
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "DROP COLUMN ");
    quay__str_ident(&x->q, lc->zName);
    step_str(x->pMig, s, &x->q);
  }
}

/* Index, unique constraint, foreign key and CHECK steps of a matched table. */
static void diff_keys(Diff *x, TabMap *m) {
  const Dialect *d = x->d;
  STable *t = m->pDecl, *l = m->pLive;
  int i, k;
  /* Indexes and UNIQUE constraints. */
  for (k = 0; k < t->nIdx && !x->pMig->oom; k++) {
    SIdx *di = &t->aIdx[k];
    int found = 0;
    Step *s;
    for (i = 0; i < l->nIdx && !found; i++) {
      SIdx *li = &l->aIdx[i];
      if (m->abIdx[i] || !diff_same_idx(m, li, di)) continue;
      /* One of Quay's indexes whose name a rename of its table or of a
      ** column made stale: made again under the declared name (dropped
      ** below), else the next migration would no longer know it for
      ** Quay's and leave it when the models drop it. */
      if (!li->bConstraint && li->zName && di->zName &&
          strcmp(li->zName, di->zName) != 0 && quay__ddl_owns_index(l, li)) {
        continue;
      }
      m->abIdx[i] = 1;
      found = 1;
    }
    if (found) continue;
    if (d->bAlterColumn && di->bConstraint) {
      s = diff_tab_step(x, m, QUAY_OP_ADD_CONSTRAINT, P_INDEX, di->zName);
      if (s == NULL) return;
      quay__str_printf(&x->w, "add unique constraint on %s (", t->zName);
      diff_plain_list(&x->w, di->azCol, di->nCol);
      quay__str_char(&x->w, ')');
      s->zWhat = diff_take_what(x);
      diff_alter_head(x, t->zName);
      quay__str_cat(&x->q, "ADD CONSTRAINT ");
      quay__str_ident(&x->q, di->zName);
      quay__str_cat(&x->q, " UNIQUE (");
      diff_ident_list(&x->q, di->azCol, di->nCol);
      quay__str_char(&x->q, ')');
    } else {
      s = diff_tab_step(x, m, QUAY_OP_CREATE_INDEX, P_INDEX, di->zName);
      if (s == NULL) return;
      quay__str_printf(&x->w, "create %sindex on %s (",
                       di->bUnique ? "unique " : "", t->zName);
      diff_plain_list(&x->w, di->azCol, di->nCol);
      quay__str_char(&x->w, ')');
      s->zWhat = diff_take_what(x);
      quay__ddl_create_index(d, t, di, &x->q);
    }
    step_str(x->pMig, s, &x->q);
  }
  for (i = 0; i < l->nIdx && !x->pMig->oom; i++) {
    SIdx *li = &l->aIdx[i];
    int bDoomed = 0;
    Step *s;
    if (m->abIdx[i]) continue;
    for (k = 0; k < li->nCol; k++) {
      if (li->azCol[k] && diff_decl_col(m, li->azCol[k]) == NULL) bDoomed = 1;
    }
    if (!bDoomed && !quay__ddl_owns_index(l, li)) continue;   /* not ours */
    for (k = 0; k < li->nCol; k++) {
      if (li->bUnique && li->azCol[k] && diff_referenced(x, l, li->azCol[k])) {
        m->bRefKeyChanged = 1;
      }
    }
    if (li->bConstraint) {
      s = diff_tab_step(x, m, QUAY_OP_DROP_CONSTRAINT, P_DROP_INDEX, li->zName);
      if (s == NULL) return;
      quay__str_printf(&x->w, "drop unique constraint %s on %s (", li->zName,
                       l->zName);
      diff_plain_list(&x->w, li->azCol, li->nCol);
      quay__str_char(&x->w, ')');
      s->zWhat = diff_take_what(x);
      if (!d->bAlterColumn) {
        m->bRebuild = 1;
        continue;
      }
      diff_alter_head(x, t->zName);
      quay__str_cat(&x->q, "DROP CONSTRAINT ");
      quay__str_ident(&x->q, li->zName);
    } else {
      s = diff_tab_step(x, m, QUAY_OP_DROP_INDEX, P_DROP_INDEX, li->zName);
      if (s == NULL) return;
      quay__str_printf(&x->w, "drop %sindex %s on %s (",
                       li->bUnique ? "unique " : "", li->zName, l->zName);
      diff_plain_list(&x->w, li->azCol, li->nCol);
      quay__str_char(&x->w, ')');
      s->zWhat = diff_take_what(x);
      quay__str_cat(&x->q, "DROP INDEX ");
      quay__str_ident(&x->q, li->zName);
    }
    step_str(x->pMig, s, &x->q);
  }
  /* Foreign keys. */
  for (k = 0; k < t->nFk && !x->pMig->oom; k++) {
    SFk *df = &t->aFk[k];
    int found = 0;
    Step *s;
    for (i = 0; i < l->nFk && !found; i++) {
      if (!m->abFk[i] && diff_same_fk(x, m, &l->aFk[i], df) &&
          !diff_fk_on_dropped_pk(x, &l->aFk[i])) {
        m->abFk[i] = 1;
        found = 1;
      }
    }
    if (found) continue;
    if (!d->bAlterColumn && df->nCol == 1) {
      /* Added inline with its new column (ADD COLUMN ... REFERENCES)? */
      int j;
      for (j = 0; j < t->nCol; j++) {
        SCol *c = &t->aCol[j];
        if (m->azFrom[j] == NULL && strcmp(c->zName, df->azCol[0]) == 0 &&
            alter_can_add(c, df)) {
          found = 1;
        }
      }
      if (found) continue;
    }
    s = diff_tab_step(x, m, QUAY_OP_ADD_CONSTRAINT, P_ADD_FK, df->zName);
    if (s == NULL) return;
    quay__str_printf(&x->w, "add foreign key %s (", t->zName);
    diff_plain_list(&x->w, df->azCol, df->nCol);
    quay__str_printf(&x->w, ") referring to %s (", df->zTable);
    diff_plain_list(&x->w, df->azTo, df->nCol);
    quay__str_char(&x->w, ')');
    s->zWhat = diff_take_what(x);
    if (!d->bAlterColumn) {
      m->bRebuild = 1;
      continue;
    }
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "ADD CONSTRAINT ");
    quay__str_ident(&x->q, df->zName);
    quay__str_cat(&x->q, " FOREIGN KEY (");
    diff_ident_list(&x->q, df->azCol, df->nCol);
    quay__str_char(&x->q, ')');
    quay__ddl_references(d, df, &x->q);
    step_str(x->pMig, s, &x->q);
  }
  for (i = 0; i < l->nFk && !x->pMig->oom; i++) {
    SFk *lf = &l->aFk[i];
    Step *s;
    if (m->abFk[i]) continue;
    /* Composite keys and keys to tables outside the schema are not ours. */
    if (lf->nCol != 1 || (quay__schema_find(x->pLive, lf->zTable) == NULL &&
                          quay__schema_find(x->pDecl, lf->zTable) == NULL)) {
      continue;
    }
    s = diff_tab_step(x, m, QUAY_OP_DROP_CONSTRAINT, P_DROP_FK,
                 lf->zName ? lf->zName : lf->azCol[0]);
    if (s == NULL) return;
    quay__str_printf(&x->w, "drop foreign key %s (", l->zName);
    diff_plain_list(&x->w, lf->azCol, lf->nCol);
    quay__str_printf(&x->w, ") referring to %s", lf->zTable);
    s->zWhat = diff_take_what(x);
    if (!d->bAlterColumn || lf->zName == NULL) {
      m->bRebuild = 1;
      continue;
    }
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "DROP CONSTRAINT ");
    quay__str_ident(&x->q, lf->zName);
    step_str(x->pMig, s, &x->q);
  }
  /* CHECK constraints. */
  for (k = 0; k < t->nCheck && !x->pMig->oom; k++) {
    SCheck *dc = &t->aCheck[k];
    int found = 0;
    Step *s;
    for (i = 0; i < l->nCheck && !found; i++) {
      /* Quay's own checks by name (it changes with the rule: rules.c),
      ** others by expression. */
      if (!m->abCheck[i] &&
          (diff_owns_check(dc)
               ? (l->aCheck[i].zName &&
                  strcmp(l->aCheck[i].zName, dc->zName) == 0)
               : diff_same_check(l->aCheck[i].zExpr, dc->zExpr))) {
        m->abCheck[i] = 1;
        found = 1;
      }
    }
    if (found) continue;
    s = diff_tab_step(x, m, QUAY_OP_ADD_CONSTRAINT, P_INDEX, dc->zName);
    if (s == NULL) return;
    quay__str_printf(&x->w, "add check on %s: %s", t->zName, dc->zExpr);
    s->zWhat = diff_take_what(x);
    if (!d->bAlterColumn) {
      m->bRebuild = 1;
      continue;
    }
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "ADD CONSTRAINT ");
    quay__str_ident(&x->q, dc->zName ? dc->zName : "quay_check");
    quay__str_printf(&x->q, " CHECK (%s)", dc->zExpr);
    step_str(x->pMig, s, &x->q);
  }
  for (i = 0; i < l->nCheck && !x->pMig->oom; i++) {
    SCheck *lc = &l->aCheck[i];
    Step *s;
    if (m->abCheck[i] || !diff_owns_check(lc)) continue;
    s = diff_tab_step(x, m, QUAY_OP_DROP_CONSTRAINT, P_DROP_FK, lc->zName);
    if (s == NULL) return;
    quay__str_printf(&x->w, "drop check %s on %s", lc->zName, l->zName);
    s->zWhat = diff_take_what(x);
    if (!d->bAlterColumn) {
      m->bRebuild = 1;
      continue;
    }
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "DROP CONSTRAINT ");
    quay__str_ident(&x->q, lc->zName);
    step_str(x->pMig, s, &x->q);
  }
}

/*
** The value a rebuild copies into column pNew from the old column pOld
** (renames ran before, so both have pNew's name).  Where decimals are
** scaled integers (SQLite), a change of places, or a change between a
** decimal and a number or integer, rescales the stored values: 12.50 kept
** as 1250 at 2 places is 12500 at 3, and 12.5 as a number.  Fewer places
** round (the step is destructive, as any narrowing).  A date becomes
** its midnight as a datetime, and a datetime its date, as PostgreSQL's
** casts make them.
*/
static void rebuild_copy_expr(const Dialect *d, const SCol *pOld,
                              const SCol *pNew, Str *q) {
  int nFrom = 0, nTo = 0;
  if (pOld && !type_converts(pOld, pNew)) {
    quay__str_cat(q, "NULL");           /* its guard saw no value */
    return;
  }
  if (pOld && pOld->eType != pNew->eType && text_conv(d, pOld, pNew)) {
    /* text as PostgreSQL's input reads it (the guard saw no other) */
    text_conv_call(q, pNew->zName, pNew);
    return;
  }
  if (pOld && pOld->eType == QUAY_T_NUMBER && !d->bAlterColumn &&
      (pNew->eType == QUAY_T_STRING || pNew->eType == QUAY_T_TEXT)) {
    /* a float as PostgreSQL writes it (SQLite's text keeps 15 digits) */
    quay__str_cat(q, "quay_ftext(");
    quay__str_ident(q, pNew->zName);
    quay__str_char(q, ')');
    return;
  }
  if (pOld && ((pOld->eType == QUAY_T_DATE &&
                pNew->eType == QUAY_T_DATETIME) ||
               (pOld->eType == QUAY_T_DATETIME &&
                pNew->eType == QUAY_T_DATE))) {
    /* As PostgreSQL casts them: a date is its midnight, a datetime's
    ** date is its first ten characters (text in another form stays). */
    int bToDt = pNew->eType == QUAY_T_DATETIME;
    quay__str_cat(q, "CASE WHEN length(");
    quay__str_ident(q, pNew->zName);
    quay__str_printf(q, ") = %d THEN ", bToDt ? 10 : 19);
    if (bToDt) {
      quay__str_ident(q, pNew->zName);
      quay__str_cat(q, " || ' 00:00:00'");
    } else {
      quay__str_cat(q, "substr(");
      quay__str_ident(q, pNew->zName);
      quay__str_cat(q, ", 1, 10)");
    }
    quay__str_cat(q, " ELSE ");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " END");
    return;
  }
  /* Narrowings (allow_drop) convert as PostgreSQL's casts do: a number
  ** into an integer to the nearest (ties to even), a boolean into a
  ** string as "true" / "false" and back, a decimal into a string with
  ** its places, a string cut to a smaller max. */
  if (pOld && pOld->eType == QUAY_T_NUMBER &&
      pNew->eType == QUAY_T_INTEGER) {
    quay__str_cat(q, d->azRealToInt[0]);
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, d->azRealToInt[1]);
    return;
  }
  if (pOld && pOld->eType == QUAY_T_BOOLEAN &&
      (pNew->eType == QUAY_T_STRING || pNew->eType == QUAY_T_TEXT)) {
    quay__str_cat(q, "CASE WHEN ");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " IS NULL THEN NULL WHEN ");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " THEN 'true' ELSE 'false' END");
    return;
  }
  if (pOld && (pOld->eType == QUAY_T_STRING || pOld->eType == QUAY_T_TEXT) &&
      pNew->eType == QUAY_T_BOOLEAN) {
    /* the words PostgreSQL's boolean input takes; any other is NULL */
    quay__str_cat(q, "CASE WHEN lower(trim(");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, ")) IN ('t', 'true', 'y', 'yes', 'on', '1') THEN 1 "
                  "WHEN lower(trim(");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, ")) IN ('f', 'false', 'n', 'no', 'off', '0') THEN 0 "
                  "END");
    return;
  }
  if (d->bScaledDecimal && pOld && pOld->eType == QUAY_T_DECIMAL &&
      pOld->nPlaces > 0 &&
      (pNew->eType == QUAY_T_STRING || pNew->eType == QUAY_T_TEXT)) {
    /* a scaled decimal (1250 at 2 places) as its text, "12.50" */
    int k;
    quay__str_cat(q, "CASE WHEN ");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " IS NULL THEN NULL ELSE (CASE WHEN ");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " < 0 THEN '-' ELSE '' END) || (abs(");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, ") / 1");
    for (k = 0; k < pOld->nPlaces; k++) quay__str_char(q, '0');
    quay__str_cat(q, ") || '.' || substr('");
    for (k = 0; k < pOld->nPlaces; k++) quay__str_char(q, '0');
    quay__str_cat(q, "' || (abs(");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, ") % 1");
    for (k = 0; k < pOld->nPlaces; k++) quay__str_char(q, '0');
    quay__str_printf(q, "), -%d, %d) END", pOld->nPlaces, pOld->nPlaces);
    return;
  }
  if (pOld && (pOld->eType == QUAY_T_STRING || pOld->eType == QUAY_T_TEXT) &&
      pNew->eType == QUAY_T_STRING && pNew->nMax > 0 &&
      (pOld->eType == QUAY_T_TEXT || pOld->nMax == 0 ||
       pOld->nMax > pNew->nMax)) {
    quay__str_cat(q, "substr(");
    quay__str_ident(q, pNew->zName);
    quay__str_printf(q, ", 1, %d)", pNew->nMax);
    return;
  }
  if (d->bScaledDecimal && pOld) {
    if (pOld->eType == QUAY_T_DECIMAL) nFrom = pOld->nPlaces;
    if (pNew->eType == QUAY_T_DECIMAL) nTo = pNew->nPlaces;
  }
  if (nFrom == nTo && !(d->bScaledDecimal && pOld &&
                        pOld->eType == QUAY_T_NUMBER &&
                        pNew->eType == QUAY_T_DECIMAL)) {
    quay__str_ident(q, pNew->zName);
    return;
  }
  if (pNew->eType == QUAY_T_NUMBER) {
    quay__str_cat(q, "(");
    quay__str_ident(q, pNew->zName);
    quay__str_printf(q, " / 1e%d)", nFrom);
  } else if (nTo >= nFrom && pOld->eType == QUAY_T_NUMBER) {
    quay__str_cat(q, "CAST(ROUND(");
    quay__str_ident(q, pNew->zName);
    quay__str_printf(q, " * 1e%d) AS INTEGER)", nTo);
  } else if (nTo > nFrom) {
    /* integers scale exactly */
    quay__str_cat(q, "(");
    quay__str_ident(q, pNew->zName);
    quay__str_cat(q, " * 1");
    for (; nFrom < nTo; nFrom++) quay__str_char(q, '0');
    quay__str_cat(q, ")");
  } else {
    quay__str_cat(q, "CAST(ROUND(");
    quay__str_ident(q, pNew->zName);
    quay__str_printf(q, " / 1e%d) AS INTEGER)", nFrom - nTo);
  }
}

/* Has declared table t a key the database generates (AUTOINCREMENT)? */
static int rebuild_auto_key(const STable *t) {
  int i;
  for (i = 0; i < t->nCol; i++) {
    if (t->aCol[i].iPk && t->aCol[i].bAuto) return 1;
  }
  return 0;
}

/*
** The rebuild of m's table (SQLite's documented procedure): a new table
** as declared, every kept row copied, the automatic key's high-water mark
** carried over (xRebuildSeq), the old table dropped, the new one
** renamed (quietly: views and triggers naming the table are not checked
** while it is gone), its indexes, the live indexes Quay did not make and
** the triggers made again, and its foreign keys checked.  Every step of
** the table is marked; the first carries the statements.
*/
static void diff_rebuild(Diff *x, TabMap *m) {
  const Dialect *d = x->d;
  quay_migration *p = x->pMig;
  STable *t = m->pDecl, *l = m->pLive;
  Step *s;
  STable tNew;
  SCheck *aCheck = NULL;
  char zTmp[96];
  int i, k, n;
  if (m->iFirst < 0 || p->oom) return;
  for (i = m->iFirst; i < p->nStep; i++) {
    Step *o = &p->aStep[i];
    if (o->zTable && strcmp(o->zTable, t->zName) == 0 &&
        o->eOp != QUAY_OP_RENAME_TABLE && o->eOp != QUAY_OP_RENAME_COLUMN) {
      o->bRebuild = 1;
      o->iPhase = P_ALTER;
      o->nSql = 0;
      o->azSql = NULL;
    }
  }
  s = &p->aStep[m->iFirst];
  snprintf(zTmp, sizeof(zTmp), "quay_new_%.80s", t->zName);
  /* Live CHECK constraints Quay did not make stay (at table level). */
  tNew = *t;
  n = 0;
  for (i = 0; i < l->nCheck; i++) {
    n += !m->abCheck[i] && !diff_owns_check(&l->aCheck[i]);
  }
  if (n > 0) {
    aCheck = diff_alloc(x, sizeof(SCheck) * (size_t)(t->nCheck + n));
    if (aCheck == NULL) return;
    if (t->nCheck) {
      memcpy(aCheck, t->aCheck, sizeof(SCheck) * (size_t)t->nCheck);
    }
    for (i = 0, k = t->nCheck; i < l->nCheck; i++) {
      if (!m->abCheck[i] && !diff_owns_check(&l->aCheck[i])) {
        aCheck[k++] = l->aCheck[i];
      }
    }
    tNew.aCheck = aCheck;
    tNew.nCheck = k;
  }
  quay__ddl_create_table(d, &tNew, zTmp, NULL, &x->q);
  step_str(p, s, &x->q);
  /* Copy the kept columns (renames ran before, by ALTER TABLE). */
  quay__str_cat(&x->q, "INSERT INTO ");
  quay__str_ident(&x->q, zTmp);
  quay__str_cat(&x->q, " (");
  {
    /* One pass: the column list into q, the values into sel.  A new
    ** NOT NULL json column gets its default (json_once_default). */
    Str sel;
    quay__str_init(&sel);
    for (i = n = 0; i < t->nCol; i++) {
      size_t nSel = sel.n;
      if (n) quay__str_cat(&sel, ", ");
      if (m->azFrom[i] != NULL) {
        rebuild_copy_expr(d, quay__stable_find_col(l, t->aCol[i].zName),
                          &t->aCol[i], &sel);
      } else if (!json_once_default(t, &t->aCol[i], &sel)) {
        sel.n = nSel;                   /* a new column with no value */
        if (sel.z) sel.z[nSel] = 0;
        continue;
      }
      if (n++) quay__str_cat(&x->q, ", ");
      quay__str_ident(&x->q, t->aCol[i].zName);
    }
    quay__str_cat(&x->q, ") SELECT ");
    if (sel.z) quay__str_cat(&x->q, sel.z);
    if (sel.oom) x->q.oom = 1;
    quay__str_free(&sel);
  }
  quay__str_cat(&x->q, " FROM ");
  quay__str_ident(&x->q, t->zName);
  if (n == 0) quay__str_reset(&x->q);           /* nothing to copy */
  else step_str(p, s, &x->q);
  if (d->xRebuildSeq && rebuild_auto_key(t)) {
    for (i = 0; d->xRebuildSeq(&x->q, t->zName, zTmp, i); i++) {
      step_str(p, s, &x->q);
    }
  }
  quay__str_cat(&x->q, "DROP TABLE ");
  quay__str_ident(&x->q, t->zName);
  step_str(p, s, &x->q);
  if (d->zRenameQuietOn) step_sql(p, s, d->zRenameQuietOn);
  quay__str_cat(&x->q, "ALTER TABLE ");
  quay__str_ident(&x->q, zTmp);
  quay__str_cat(&x->q, " RENAME TO ");
  quay__str_ident(&x->q, t->zName);
  step_str(p, s, &x->q);
  if (d->zRenameQuietOff) step_sql(p, s, d->zRenameQuietOff);
  for (i = 0; i < t->nIdx; i++) {
    if (t->aIdx[i].bConstraint) continue;       /* in CREATE TABLE */
    quay__ddl_create_index(d, t, &t->aIdx[i], &x->q);
    step_str(p, s, &x->q);
  }
  for (i = 0; i < l->nIdx; i++) {
    SIdx *li = &l->aIdx[i];
    int bDoomed = 0;
    if (m->abIdx[i] || li->bConstraint || quay__ddl_owns_index(l, li)) continue;
    for (k = 0; k < li->nCol; k++) {
      if (li->azCol[k] && diff_decl_col(m, li->azCol[k]) == NULL) bDoomed = 1;
    }
    if (bDoomed) continue;
    if (li->zSql && (!m->bRenamedCol || li->bPartial)) {
      step_sql(p, s, li->zSql);
    } else {
      SIdx y = *li;
      char **az = diff_alloc(x, sizeof(char *) * (size_t)(li->nCol + 1));
      if (az == NULL) return;
      for (k = 0; k < li->nCol; k++) {
        az[k] = (char *)diff_decl_col(m, li->azCol[k]);
      }
      y.azCol = az;
      quay__ddl_create_index(d, t, &y, &x->q);
      step_str(p, s, &x->q);
    }
  }
  for (i = 0; i < l->nTrigger; i++) step_sql(p, s, l->azTrigger[i]);
  if (d->zFkCheck) {
    quay__str_printf(&x->q, "%s(", d->zFkCheck);
    quay__str_ident(&x->q, t->zName);
    quay__str_char(&x->q, ')');
    step_str(p, s, &x->q);
    if (m->bRefKeyChanged) {
      /* Tables whose foreign keys refer to this one. */
      for (i = 0; i < x->pLive->nTab; i++) {
        STable *o = &x->pLive->aTab[i];
        TabMap *om;
        if (o == l) continue;
        for (k = 0; k < o->nFk; k++) {
          if (strcmp(o->aFk[k].zTable, l->zName) == 0) break;
        }
        if (k == o->nFk) continue;
        om = diff_map_of_live(x, o->zName);
        quay__str_printf(&x->q, "%s(", d->zFkCheck);
        quay__str_ident(&x->q, om ? om->pDecl->zName : o->zName);
        quay__str_char(&x->q, ')');
        step_str(p, s, &x->q);
      }
    }
  }
}

/* The steps that create declared table m (it has no live table). */
static void diff_create(Diff *x, TabMap *m, const unsigned char *abExists) {
  const Dialect *d = x->d;
  STable *t = m->pDecl;
  unsigned char *abOk = diff_alloc(x, (size_t)t->nFk + 1);
  Step *s;
  int i;
  if (abOk == NULL) return;
  for (i = 0; i < t->nFk; i++) {
    TabMap *pT = diff_map_of_decl(x, t->aFk[i].zTable);
    abOk[i] = d->bForwardFk || strcmp(t->aFk[i].zTable, t->zName) == 0 ||
              (pT && abExists[pT - x->aMap]) ||
              (pT == NULL && quay__schema_find(x->pLive, t->aFk[i].zTable));
  }
  s = diff_tab_step(x, m, QUAY_OP_CREATE_TABLE, P_CREATE, NULL);
  if (s == NULL) return;
  s->bNew = 1;
  quay__str_printf(&x->w, "create table %s", t->zName);
  if (t->pModel) quay__str_printf(&x->w, " (model %s)", t->pModel->zName);
  else if (t->pJoin) diff_col_label(&x->w, t, NULL);
  s->zWhat = diff_take_what(x);
  quay__ddl_create_table(d, t, t->zName, abOk, &x->q);
  step_str(x->pMig, s, &x->q);
  for (i = 0; i < t->nIdx; i++) {
    SIdx *di = &t->aIdx[i];
    if (di->bConstraint) continue;
    s = diff_tab_step(x, m, QUAY_OP_CREATE_INDEX, P_INDEX, di->zName);
    if (s == NULL) return;
    s->bNew = 1;
    quay__str_printf(&x->w, "create index on %s (", t->zName);
    diff_plain_list(&x->w, di->azCol, di->nCol);
    quay__str_char(&x->w, ')');
    s->zWhat = diff_take_what(x);
    quay__ddl_create_index(d, t, di, &x->q);
    step_str(x->pMig, s, &x->q);
  }
  for (i = 0; i < t->nFk; i++) {
    SFk *df = &t->aFk[i];
    if (abOk[i]) continue;
    s = diff_tab_step(x, m, QUAY_OP_ADD_CONSTRAINT, P_ADD_FK, df->zName);
    if (s == NULL) return;
    s->bNew = 1;
    quay__str_printf(&x->w, "add foreign key %s (", t->zName);
    diff_plain_list(&x->w, df->azCol, df->nCol);
    quay__str_printf(&x->w, ") referring to %s (", df->zTable);
    diff_plain_list(&x->w, df->azTo, df->nCol);
    quay__str_char(&x->w, ')');
    s->zWhat = diff_take_what(x);
    diff_alter_head(x, t->zName);
    quay__str_cat(&x->q, "ADD CONSTRAINT ");
    quay__str_ident(&x->q, df->zName);
    quay__str_cat(&x->q, " FOREIGN KEY (");
    diff_ident_list(&x->q, df->azCol, df->nCol);
    quay__str_char(&x->q, ')');
    quay__ddl_references(d, df, &x->q);
    step_str(x->pMig, s, &x->q);
  }
}

/*
** A primary key constraint the migration drops (ALTER dialects) may be
** referred to by a foreign key of a table whose keys migrate does not
** carry over: a table no model declares, or a join table keyed by its
** pair.  PostgreSQL refuses to drop the key under it, halfway through
** the steps; migrate refuses up front instead (x->pMig->zRefuse, checked
** by mig_guard before any statement), naming the table, the constraint
** and the way through.  The first such foreign key is named.
*/
static void diff_foreign_refs(Diff *x) {
  quay_schema *pL = x->pLive;
  int i, k, j, nPk;
  for (i = 0; i < pL->nTab && x->pMig->zRefuse == NULL; i++) {
    const STable *o = &pL->aTab[i];
    const TabMap *pOwn = diff_map_of_live(x, o->zName);
    if (x->abLiveUsed[i] && !(pOwn && pOwn->bPairKey)) continue;
    for (k = 0; k < o->nFk; k++) {
      const SFk *f = &o->aFk[k];
      const TabMap *pT;
      const char *zModel, *zFk = f->zName ? f->zName : "(unnamed)";
      if (!diff_fk_on_dropped_pk(x, f)) continue;
      pT = diff_map_of_live(x, f->zTable);
      zModel = pT && pT->pDecl->pModel ? pT->pDecl->pModel->zName : NULL;
      quay__str_printf(&x->w, "the primary key of table %s", f->zTable);
      if (zModel) quay__str_printf(&x->w, " (model %s)", zModel);
      quay__str_printf(&x->w, " changes, but foreign key %s of table %s "
                       "(%s.%s referring to %s.%s) depends on it and %s, so "
                       "PostgreSQL would refuse to drop the key; nothing "
                       "was changed. Drop that constraint first (ALTER "
                       "TABLE %s DROP CONSTRAINT %s), migrate, then add it "
                       "again referring to the new key if it still "
                       "applies", zFk, o->zName, o->zName,
                       f->azCol[0], f->zTable, f->azTo[0],
                       pOwn ? "migrate leaves that join table as it is"
                            : "no model declares that table",
                       o->zName, zFk);
      for (j = 0, nPk = 0; j < o->nCol; j++) nPk += o->aCol[j].iPk > 0;
      if (!pOwn && nPk == 1) {
        /* a table a model could declare */
        quay__str_printf(&x->w, "; or declare a model for table %s, so "
                         "that migrate carries its foreign key over",
                         o->zName);
      }
      x->pMig->zRefuse = diff_take_what(x);
      break;
    }
  }
}

/* Drop the live tables no model declares, children first. */
static void diff_drops(Diff *x) {
  quay_schema *pL = x->pLive;
  unsigned char *abDone = diff_alloc(x, (size_t)pL->nTab + 1);
  int i, k, j, nLeft = 0;
  if (abDone == NULL) return;
  for (i = 0; i < pL->nTab; i++) {
    /* A table no model could declare (no single-column primary key) is
    ** not Quay's: it is left alone. */
    int nPk = 0;
    for (k = 0; k < pL->aTab[i].nCol; k++) nPk += pL->aTab[i].aCol[k].iPk > 0;
    abDone[i] = x->abLiveUsed[i] || nPk != 1;
    nLeft += !abDone[i];
  }
  while (nLeft > 0 && !x->pMig->oom) {
    int iPick = -1, bCycle = 0;
    Step *s;
    STable *l;
    /* The first table no other table left to drop refers to. */
    for (i = 0; i < pL->nTab && iPick < 0; i++) {
      int ready = 1;
      if (abDone[i]) continue;
      for (j = 0; j < pL->nTab && ready; j++) {
        if (j == i || abDone[j]) continue;
        for (k = 0; k < pL->aTab[j].nFk; k++) {
          if (strcmp(pL->aTab[j].aFk[k].zTable, pL->aTab[i].zName) == 0) {
            ready = 0;
          }
        }
      }
      if (ready) iPick = i;
    }
    if (iPick < 0) {
      /* A cycle: the first one left, its references dropped with it. */
      for (i = 0; i < pL->nTab && iPick < 0; i++) {
        if (!abDone[i]) iPick = i;
      }
      bCycle = 1;
    }
    l = &pL->aTab[iPick];
    abDone[iPick] = 1;
    nLeft--;
    s = mig_step(x->pMig, QUAY_OP_DROP_TABLE, P_DROP_TABLE, NULL, l->zName,
                 NULL);
    if (s == NULL) return;
    s->bDestructive = 1;
    quay__str_printf(&x->w, "drop table %s and its rows (no model declares "
                     "it)", l->zName);
    s->zWhat = diff_take_what(x);
    quay__str_cat(&x->q, "DROP TABLE ");
    quay__str_ident(&x->q, l->zName);
    if (bCycle) quay__str_cat(&x->q, x->d->zDropSuffix);
    step_str(x->pMig, s, &x->q);
  }
}

/*
** The steps from pLive to pDecl into a new migration (*ppMig).  QUAY_OK
** or QUAY_ENOMEM.
*/
static int diff_schemas(quay_db *pDb, quay_schema *pLive, quay_schema *pDecl,
                        quay_migration **ppMig, quay_err *pErr) {
  Diff x;
  unsigned char *abExists;
  int i;
  memset(&x, 0, sizeof(x));
  *ppMig = NULL;
  x.pDb = pDb;
  x.d = pDb->pDialect;
  x.pLive = pLive;
  x.pDecl = pDecl;
  x.pMig = mig_new(pDb);
  if (x.pMig == NULL) return quay__oom(pErr);
  quay__str_init(&x.q);
  quay__str_init(&x.w);
  x.aMap = diff_alloc(&x, sizeof(TabMap) * (size_t)(pDecl->nTab + 1));
  x.abLiveUsed = diff_alloc(&x, (size_t)pLive->nTab + 1);
  abExists = diff_alloc(&x, (size_t)pDecl->nTab + 1);
  if (x.aMap && x.abLiveUsed && abExists) {
    match_tables(&x);
    for (i = 0; i < pDecl->nTab && !x.pMig->oom; i++) {
      x.aMap[i].bPkDrop = diff_pk_dropped(&x, &x.aMap[i]);
    }
    diff_foreign_refs(&x);
    for (i = 0; i < pDecl->nTab && !x.pMig->oom; i++) {
      TabMap *m = &x.aMap[i];
      if (m->pLive == NULL) continue;
      abExists[i] = 1;
      if (m->bPairKey) continue;
      diff_columns(&x, m);
      diff_keys(&x, m);
      abExists[i] = 1;
    }
    for (i = 0; i < pDecl->nTab && !x.pMig->oom; i++) {
      TabMap *m = &x.aMap[i];
      if (m->pLive == NULL) {
        diff_create(&x, m, abExists);
        abExists[i] = 1;
      }
    }
    for (i = 0; i < pDecl->nTab && !x.pMig->oom; i++) {
      if (x.aMap[i].bRebuild) diff_rebuild(&x, &x.aMap[i]);
    }
    diff_drops(&x);
  }
  quay__str_free(&x.q);
  quay__str_free(&x.w);
  if (x.pMig->oom || x.aMap == NULL || x.abLiveUsed == NULL ||
      abExists == NULL) {
    quay_migration_free(x.pMig);
    return quay__oom(pErr);
  }
  if (x.pMig->nStep > 1) {
    qsort(x.pMig->aStep, (size_t)x.pMig->nStep, sizeof(Step), mig_cmp_step);
  }
  *ppMig = x.pMig;
  return QUAY_OK;
}

/* Inspect, declare and compare. */
static int diff_now(quay_db *pDb, quay_migration **ppMig, quay_err *pErr) {
  quay_schema *pLive = NULL, *pDecl = NULL;
  int rc = quay__schema_declared(pDb, &pDecl, pErr);
  if (rc == QUAY_OK) rc = quay_db_inspect(pDb, &pLive, pErr);
  if (rc == QUAY_OK) rc = diff_schemas(pDb, pLive, pDecl, ppMig, pErr);
  quay_schema_free(pLive);
  quay_schema_free(pDecl);
  return rc;
}

int quay_db_schema_diff(quay_db *pDb, quay_migration **ppMig,
                        quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || ppMig == NULL) {
    if (ppMig != NULL) *ppMig = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_schema_diff: %s is NULL",
        pDb == NULL ? "pDb" : "ppMig");
  }
  int rc;
  *ppMig = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  return diff_now(pDb, ppMig, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Guards and running
** ===================================================================
*/
/* Is any step of p a rebuild? */
static int mig_has_rebuild(const quay_migration *p) {
  int i;
  for (i = 0; i < p->nStep; i++) {
    if (p->aStep[i].bRebuild) return 1;
  }
  return 0;
}

/* The checks that come before any statement runs. */
static int mig_guard(quay_db *pDb, quay_migration *p, unsigned mFlags,
                 quay_err *pErr) {
  int i, rc;
  if (p->zRefuse) return quay__err(pErr, QUAY_EMIGRATION, "%s", p->zRefuse);
  if (!(mFlags & QUAY_MIGRATE_ALLOW_DROP)) {
    for (i = 0; i < p->nStep; i++) {
      const Step *s = &p->aStep[i];
      int k, n = 0;
      if (!s->bDestructive) continue;
      for (k = i; k < p->nStep; k++) n += p->aStep[k].bDestructive;
      return quay__err(pErr, QUAY_EMIGRATION,
                       "the migration would %s%s, which loses data: pass "
                       "allow_drop = true to accept it, or declare what it "
                       "removes again (renamed_from if it was renamed)",
                       s->zWhat ? s->zWhat : quay_op_name(s->eOp),
                       n > 1 ? " (and more destructive steps)" : "");
    }
  }
  for (i = 0; i < p->nStep; i++) {
    const Step *s = &p->aStep[i];
    int64_t n = 0;
    quay_cursor *c = NULL;
    if (s->zGuardSql == NULL) continue;
    if (s->bGuardSoft && (mFlags & QUAY_MIGRATE_ALLOW_DROP)) continue;
    rc = quay__db_run(pDb, s->zGuardSql, NULL, 0, NULL, 0, 0, &c, NULL, pErr);
    if (rc == QUAY_OK) {
      rc = quay_cursor_step(c, pErr);
      n = rc == QUAY_ROW;
      if (rc == QUAY_ROW || rc == QUAY_DONE) rc = QUAY_OK;
    }
    quay_cursor_close(c);
    if (rc) return rc;
    if (n) {
      return quay__err(pErr, QUAY_EMIGRATION, "%s",
                       s->zGuardMsg ? s->zGuardMsg : "a step cannot hold for "
                       "the rows of its table");
    }
  }
  return QUAY_OK;
}

/* Run a foreign key check: any row is a violation, raised as integrity
** (as PostgreSQL raises it when the constraint is added, and as a new
** UNIQUE or CHECK that rows break is raised on both backends). */
static int mig_fk_check(quay_db *pDb, const Step *s, const char *zSql,
                    quay_err *pErr) {
  quay_cursor *c = NULL;
  int rc = quay__db_run(pDb, zSql, NULL, 0, NULL, 0, 0, &c, NULL, pErr);
  if (rc == QUAY_OK) {
    rc = quay_cursor_step(c, pErr);
    if (rc == QUAY_ROW) {
      quay_value vT, vR, vP;
      char zRow[32] = "?";
      quay_cursor_value(c, 0, &vT);
      quay_cursor_value(c, 1, &vR);
      quay_cursor_value(c, 2, &vP);
      if (vR.type == QUAY_INT) snprintf(zRow, sizeof(zRow), "%lld",
                                        (long long)vR.u.i);
      rc = quay__err(pErr, QUAY_EINTEGRITY,
                     "the migration (%s) would leave row %s of %.*s "
                     "referring to a %.*s row that does not exist (foreign "
                     "key check); nothing was changed: fix those rows "
                     "first", s->zWhat ? s->zWhat : quay_op_name(s->eOp),
                     zRow, vT.type == QUAY_TEXT ? (int)vT.n : 1,
                     vT.type == QUAY_TEXT ? vT.u.z : "?",
                     vP.type == QUAY_TEXT ? (int)vP.n : 1,
                     vP.type == QUAY_TEXT ? vP.u.z : "?");
    } else if (rc == QUAY_DONE) {
      rc = QUAY_OK;
    }
  }
  quay_cursor_close(c);
  return rc;
}

/*
** A data exception (SQLSTATE class 22) while a column changes type on
** PostgreSQL: a row holds a value the cast refuses ('abc' into a bigint).
** It is the migration's failure, named as SQLite's guard names it
** (text_conv), with the database's message; the SQLSTATE stays.
*/
static int mig_data_err(const Step *s, quay_err *pErr) {
  char zState[sizeof(pErr->zState)];
  char zMsg[sizeof(pErr->zMsg)];
  memcpy(zState, pErr->zState, sizeof(zState));
  memcpy(zMsg, pErr->zMsg, sizeof(zMsg));
  quay__err(pErr, QUAY_EMIGRATION, "cannot %s: a row holds a value that "
            "does not convert (%.200s); change those rows first in a data "
            "migration, or add a new field filled from this one",
            s->zWhat ? s->zWhat : "change the column", zMsg);
  memcpy(pErr->zState, zState, sizeof(zState));
  return QUAY_EMIGRATION;
}

/* Run every statement of every step, in order (inside a transaction). */
static int mig_run_steps(quay_db *pDb, quay_migration *p, quay_err *pErr) {
  const Dialect *d = pDb->pDialect;
  size_t nCheck = d->zFkCheck ? strlen(d->zFkCheck) : 0;
  int i, k, rc = QUAY_OK;
  for (i = 0; i < p->nStep && rc == QUAY_OK; i++) {
    const Step *s = &p->aStep[i];
    for (k = 0; k < s->nSql && rc == QUAY_OK; k++) {
      const char *z = s->azSql[k];
      if (nCheck && strncmp(z, d->zFkCheck, nCheck) == 0) {
        rc = mig_fk_check(pDb, s, z, pErr);
      } else {
        rc = quay__db_run(pDb, z, NULL, 0, NULL, 0, 0, NULL, NULL, pErr);
        if (rc && s->eOp == QUAY_OP_ALTER_COLUMN && pErr &&
            pErr->zState[0] == '2' && pErr->zState[1] == '2') {
          rc = mig_data_err(s, pErr);
        }
      }
    }
  }
  return rc;
}

/* Turn SQLite's foreign keys off for a transaction that rebuilds. */
static int mig_fk_off(quay_db *pDb, quay_err *pErr) {
  if (quay__db_in_txn(pDb)) {
    return quay__err(pErr, QUAY_EMIGRATION,
                     "this migration rebuilds a table, which needs foreign "
                     "keys off, and SQLite cannot turn them off inside a "
                     "transaction: run it outside db:transaction (and "
                     "outside a transaction the host opened on the shared "
                     "connection)");
  }
  return quay__db_simple(pDb, pDb->pDialect->zFkOff, pErr);
}

/* After the transaction: foreign keys and the quiet rename back as they
** were; a failure here is reported only when nothing else failed. */
static int mig_restore(quay_db *pDb, int bFkOff, int rc, quay_err *pErr) {
  const Dialect *d = pDb->pDialect;
  quay_err e;
  quay_err_clear(&e);
  if (pDb->aSrv[0].pConn == NULL || !bFkOff) return rc;
  if (d->zRenameQuietOff && quay__db_cleanup(pDb, d->zRenameQuietOff, &e) &&
      rc == QUAY_OK) {
    rc = e.code;
    if (pErr) *pErr = e;
  }
  if (bFkOff && quay__db_cleanup(pDb, d->zFkOn, &e) && rc == QUAY_OK) {
    rc = quay__err(pErr, e.code, "the migration was applied, but foreign "
                   "keys could not be turned back on (%s): reopen the "
                   "database", e.zMsg);
  }
  return rc;
}

enum { MODE_MIGRATE = 1, MODE_CREATE };

/* db:create_tables: only steps that create what does not exist. */
static int mig_create_only(quay_migration *p, quay_err *pErr) {
  int i, k = 0;
  for (i = 0; i < p->nStep; i++) {
    Step *s = &p->aStep[i];
    if (s->eOp == QUAY_OP_DROP_TABLE) continue;   /* not ours to judge */
    if (!s->bNew) {
      /* A long difference (a CHECK of many choices) is cut, at a UTF-8
      ** character, so that the fix still fits in the message. */
      const char *zW = s->zWhat ? s->zWhat : quay_op_name(s->eOp);
      size_t nW = strlen(zW), n = nW;
      if (n > 200) {
        n = 200;
        while (n > 0 && ((unsigned char)zW[n] & 0xC0) == 0x80) n--;
      }
      return quay__err(pErr, QUAY_EMIGRATION,
                       "the database differs from the models (first "
                       "difference: %.*s%s); db:create_tables() only creates "
                       "missing tables: run db:migrate() to bring the "
                       "database to the models (db:schema_diff() lists "
                       "every step)",
                       (int)n, zW, n < nW ? "..." : "");
    }
    p->aStep[k++] = *s;
  }
  p->nStep = k;
  return QUAY_OK;
}

/*
** Lock, diff inside the lock, check, run: the body of db:migrate and
** db:create_tables.  See the file header for the foreign key dance.
*/
static int migrate_run(quay_db *pDb, int eMode, unsigned mFlags,
                       quay_migration **ppDone, quay_err *pErr) {
  const Dialect *d = pDb->pDialect;
  quay_migration *p = NULL;
  int rc, bFkOff = 0, attempt;
  if (ppDone) *ppDone = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc == QUAY_OK) rc = quay__resolve(pDb, pErr);
  if (rc) return rc;
  if (mFlags & QUAY_MIGRATE_DRY_RUN) {
    rc = diff_now(pDb, &p, pErr);
    if (rc == QUAY_OK && eMode == MODE_CREATE) rc = mig_create_only(p, pErr);
    if (rc == QUAY_OK) rc = mig_guard(pDb, p, mFlags, pErr);
    if (rc == QUAY_OK && ppDone) {
      *ppDone = p;
      p = NULL;
    }
    quay_migration_free(p);
    return rc;
  }
  for (attempt = 0; attempt < 2; attempt++) {
    if (bFkOff) {
      rc = mig_fk_off(pDb, pErr);
      if (rc) break;
    }
    rc = quay__txn_begin(pDb, 1, pErr);
    if (rc) break;
    if (d->zMigrateLock) {
      rc = quay__db_run(pDb, d->zMigrateLock, NULL, 0, NULL, 0, 0, NULL,
                        NULL, pErr);
    }
    if (rc == QUAY_OK) rc = diff_now(pDb, &p, pErr);
    if (rc == QUAY_OK && eMode == MODE_CREATE) rc = mig_create_only(p, pErr);
    if (rc == QUAY_OK && !bFkOff && d->zFkOff && mig_has_rebuild(p)) {
      /* Foreign keys must be off before the transaction begins. */
      quay__txn_rollback(pDb);
      quay_migration_free(p);
      p = NULL;
      bFkOff = 1;
      continue;
    }
    if (rc == QUAY_OK) rc = mig_guard(pDb, p, mFlags, pErr);
    if (rc == QUAY_OK) rc = mig_run_steps(pDb, p, pErr);
    rc = quay__txn_end(pDb, rc, pErr);
    break;
  }
  rc = mig_restore(pDb, bFkOff, rc, pErr);
  if (p && p->nStep > 0) quay__db_cache_drop_idle(pDb);
  if (rc == QUAY_OK && ppDone) {
    *ppDone = p;
    p = NULL;
  }
  quay_migration_free(p);
  return rc;
}

int quay_db_migrate(quay_db *pDb, unsigned mFlags, quay_migration **ppDone,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    if (ppDone != NULL) *ppDone = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_migrate: %s is NULL",
        "pDb");
  }
  if (mFlags & ~(unsigned)(QUAY_MIGRATE_ALLOW_DROP | QUAY_MIGRATE_DRY_RUN)) {
    if (ppDone) *ppDone = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_migrate: unknown flags");
  }
  return migrate_run(pDb, MODE_MIGRATE, mFlags, ppDone, pErr);
}

int quay__migrate_create(quay_db *pDb, quay_err *pErr) {
  return migrate_run(pDb, MODE_CREATE, QUAY_MIGRATE_ALLOW_DROP, NULL, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Versioned migration files
** ===================================================================
*/
/* CREATE TABLE IF NOT EXISTS quay_migrations (...) */
static void mig_journal_ddl(const Dialect *d, Str *p) {
  quay__str_printf(p, "CREATE TABLE IF NOT EXISTS quay_migrations (id %s, "
                   "name %s(255) NOT NULL UNIQUE, checksum %s(64) NOT NULL, "
                   "applied_at %s NOT NULL)", d->zAutoPk,
                   quay__ftype(QUAY_T_STRING)->azCol[d->iTypeCol],
                   quay__ftype(QUAY_T_STRING)->azCol[d->iTypeCol],
                   quay__ftype(QUAY_T_DATETIME)->azCol[d->iTypeCol]);
}

/* Raw SQL in the dialect's placeholder form (caller frees). */
static char *mig_dialect_sql(quay_db *pDb, const char *zSql) {
  if (pDb->pDialect->xRawSql) {
    Str s;
    int n = 0;
    quay__str_init(&s);
    pDb->pDialect->xRawSql(&s, zSql, &n);
    return quay__str_take(&s);
  }
  return quay__strdup(zSql);
}

int quay_migration_apply(quay_db *pDb, quay_migration *p,
                         const quay_apply_opts *o, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || p == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_migration_apply: %s is NULL",
        pDb == NULL ? "pDb" : "pMig");
  }
  const Dialect *d = pDb->pDialect;
  Str s;
  char *zSel = NULL, *zIns = NULL;
  int rc, bFkOff = 0, bDone = 0;
  if (o == NULL || o->zName == NULL || o->zChecksum == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_migration_apply: a name and a "
                     "checksum are needed");
  }
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  zSel = mig_dialect_sql(pDb, "SELECT checksum FROM quay_migrations WHERE name "
                     "= ?");
  zIns = mig_dialect_sql(pDb, "INSERT INTO quay_migrations (name, checksum, "
                     "applied_at) VALUES (?, ?, ?)");
  quay__str_init(&s);
  mig_journal_ddl(d, &s);
  if (zSel == NULL || zIns == NULL || s.oom) {
    rc = quay__oom(pErr);
    goto done;
  }
  if (d->zFkOff && mig_has_rebuild(p)) {
    rc = mig_fk_off(pDb, pErr);
    if (rc) goto done;
    bFkOff = 1;
  }
  rc = quay__txn_begin(pDb, 1, pErr);
  if (rc) goto done;
  if (d->zMigrateLock) {
    rc = quay__db_run(pDb, d->zMigrateLock, NULL, 0, NULL, 0, 0, NULL, NULL,
                      pErr);
  }
  if (rc == QUAY_OK) {
    rc = quay__db_run(pDb, s.z, NULL, 0, NULL, 0, 0, NULL, NULL, pErr);
  }
  if (rc == QUAY_OK) {
    /* Applied meanwhile by another process? */
    quay_cursor *c = NULL;
    quay_value v;
    v.type = QUAY_TEXT;
    v.u.z = o->zName;
    v.n = strlen(o->zName);
    rc = quay__db_run(pDb, zSel, &v, 1, NULL, 0, 0, &c, NULL, pErr);
    if (rc == QUAY_OK) {
      rc = quay_cursor_step(c, pErr);
      if (rc == QUAY_ROW) {
        quay_cursor_value(c, 0, &v);
        if (v.type == QUAY_TEXT && v.n == strlen(o->zChecksum) &&
            memcmp(v.u.z, o->zChecksum, v.n) == 0) {
          bDone = 1;
          rc = QUAY_OK;
        } else {
          rc = quay__err(pErr, QUAY_EMIGRATION,
                         "migration %s is recorded in quay_migrations with "
                         "another checksum: the file changed after it was "
                         "applied; restore it, and put new changes in a new "
                         "migration (quay migrate make)", o->zName);
        }
      } else if (rc == QUAY_DONE) {
        rc = QUAY_OK;
      }
    }
    quay_cursor_close(c);
  }
  if (rc == QUAY_OK && !bDone) rc = mig_run_steps(pDb, p, pErr);
  if (rc == QUAY_OK && !bDone && o->xData) {
    int depth = pDb->txnDepth;
    rc = o->xData(o->pDataArg, pDb, pErr);
    if (rc == QUAY_OK && pDb->txnDepth != depth) {
      rc = quay__err(pErr, QUAY_EMIGRATION, "migration %s: its data "
                     "function left a transaction open or closed one it did "
                     "not open", o->zName);
    }
    if (rc && pErr && pErr->code == QUAY_OK) {
      rc = quay__err(pErr, rc, "migration %s: its data function failed",
                     o->zName);
    }
    /* SQLite: the data function ran with foreign keys off (for the
    ** rebuild), so what it wrote is checked here, over the database, as
    ** PostgreSQL checks every row as it is written. */
    if (rc == QUAY_OK && bFkOff && d->zFkCheck) {
      Step chk;
      char zWhat[300];
      memset(&chk, 0, sizeof(chk));
      snprintf(zWhat, sizeof(zWhat), "%s, its data function", o->zName);
      chk.zWhat = zWhat;
      rc = mig_fk_check(pDb, &chk, d->zFkCheck, pErr);
    }
  }
  if (rc == QUAY_OK && !bDone) {
    quay_value a[3];
    char zNow[20];
    quay__now_utc(zNow);
    a[0].type = a[1].type = a[2].type = QUAY_TEXT;
    a[0].u.z = o->zName;
    a[0].n = strlen(o->zName);
    a[1].u.z = o->zChecksum;
    a[1].n = strlen(o->zChecksum);
    a[2].u.z = zNow;
    a[2].n = strlen(zNow);
    rc = quay__db_run(pDb, zIns, a, 3, NULL, 0, 0, NULL, NULL, pErr);
  }
  if (rc == QUAY_OK && bDone) {
    quay__txn_rollback(pDb);
  } else {
    rc = quay__txn_end(pDb, rc, pErr);
  }
  if (rc == QUAY_OK && !bDone && p->nStep > 0) quay__db_cache_drop_idle(pDb);
done:
  rc = mig_restore(pDb, bFkOff, rc, pErr);
  quay__str_free(&s);
  quay__free(zSel);
  quay__free(zIns);
  return rc == QUAY_OK && bDone ? QUAY_DONE : rc;
}

int quay_db_applied_migrations(quay_db *pDb, quay_cursor **ppCur,
                               quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL || ppCur == NULL) {
    if (ppCur != NULL) *ppCur = NULL;
    return quay__err(pErr, QUAY_EMISUSE,
        "quay_db_applied_migrations: %s is NULL", pDb == NULL ? "pDb" :
            "ppCur");
  }
  quay_value v;
  int64_t n = 0;
  int rc;
  *ppCur = NULL;
  rc = quay__db_check_open(pDb, pErr);
  if (rc) return rc;
  v.type = QUAY_TEXT;
  v.u.z = "quay_migrations";
  v.n = strlen(v.u.z);
  rc = quay__db_scalar(pDb, pDb->pDialect->zTableExists, &v, 1, &n, pErr);
  if (rc) return rc;
  return quay__db_run(pDb, n ? "SELECT name, checksum, applied_at FROM "
                               "quay_migrations ORDER BY id"
                             : "SELECT NULL AS name, NULL AS checksum, NULL "
                               "AS applied_at WHERE 1 = 0",
                      NULL, 0, NULL, 0, 0, ppCur, NULL, pErr);
}
/* }================================================================== */
