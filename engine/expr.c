/*
** engine/expr.c
** Expressions: quay.F columns, constants, arithmetic, aggregates over
** relation paths and date truncation; building, freeing and binding them
** to a query set.
** See LICENSE
**
** An expression is built by the binding with no schema knowledge
** (quay_expr_col("author__name")), then bound when a query set takes it
** (annotate, values, order_by, a filter value, aggregate): paths are
** walked from the set's model with the one path walker, names of earlier
** annotations become references, and every misuse is an error here, before
** any SQL: an unknown name (unknown_field / unknown_relation), a to-many
** path where one value per row is needed, sum of a string, arithmetic on a
** non-numeric column (bad_lookup), a value of another kind of type than
** what it is compared with or stored in (bad_lookup).  The SQL builder
** (sqlbuild.c) writes a bound expression per query shape; the forms that
** differ by dialect (decimal scaling, an aggregate's function, a number
** stored in an integer field) are written here.
**
** Trees come from user code, so their depth is bounded at bind time
** (QUAY_MAX_COND_DEPTH) and they are freed without recursion.
*/
#include <stdio.h>

#include "quayInt.h"

/* {======= Building */

static Expr *expr_new(int eOp) {
  Expr *e = quay__calloc(sizeof(*e));
  if (e) e->eOp = eOp;
  return e;
}

int quay_expr_col(const char *zPath, quay_expr **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (zPath == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_col: %s is NULL", zPath ==
        NULL ? "zPath" : "ppExpr");
  }
  Expr *e = expr_new(EX_COL);
  *pp = NULL;
  if (e == NULL || (e->zPath = quay__strdup(zPath ? zPath : "")) == NULL) {
    quay__free(e);
    return quay__oom(pErr);
  }
  *pp = (quay_expr *)e;
  return QUAY_OK;
}

int quay_expr_value(const quay_value *pVal, quay_expr **pp, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pVal == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_value: %s is NULL", pVal
        == NULL ? "pVal" : "ppExpr");
  }
  if (quay__values_check(pErr, "quay_expr_value", pVal, 1)) {
    *pp = NULL;
    return QUAY_EMISUSE;
  }
  Expr *e;
  *pp = NULL;
  if (pVal->type == QUAY_LIST || pVal->type == QUAY_RECORD) {
    return quay__err(pErr, QUAY_EMISUSE, "an expression constant must be a "
                     "number, string or boolean");
  }
  e = expr_new(EX_VALUE);
  if (e == NULL || quay__value_copy(&e->val, pVal)) {
    quay__free(e);
    return quay__oom(pErr);
  }
  *pp = (quay_expr *)e;
  return QUAY_OK;
}

int quay_expr_binary(int eOp, quay_expr *pA, quay_expr *pB, quay_expr **pp,
                     quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pA == NULL || pB == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    quay_expr_free(pA);
    quay_expr_free(pB);
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_binary: %s is NULL", pA ==
        NULL ? "pA" : pB == NULL ? "pB" : "ppExpr");
  }
  static const int aOp[] = { 0, EX_ADD, EX_SUB, EX_MUL, EX_DIV };
  Expr *e;
  *pp = NULL;
  if (eOp < QUAY_X_ADD || eOp > QUAY_X_DIV || pA == NULL || pB == NULL) {
    quay__expr_free((Expr *)pA);
    quay__expr_free((Expr *)pB);
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_binary: bad operator "
                     "or operand");
  }
  e = expr_new(aOp[eOp]);
  if (e == NULL) {
    quay__expr_free((Expr *)pA);
    quay__expr_free((Expr *)pB);
    return quay__oom(pErr);
  }
  e->pA = (Expr *)pA;
  e->pB = (Expr *)pB;
  *pp = (quay_expr *)e;
  return QUAY_OK;
}

int quay_expr_agg(int eFunc, const char *zPath, quay_cond *pFilter,
                  int bDistinct, const quay_value *pDefault, quay_expr **pp,
                  quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pp == NULL) {
    quay_cond_free(pFilter);
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_agg: %s is NULL",
        "ppExpr");
  }
  Expr *e;
  *pp = NULL;
  if (eFunc < QUAY_AGG_COUNT || eFunc > QUAY_AGG_EXISTS) {
    quay__cond_free((Cond *)pFilter);
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_agg: bad function");
  }
  e = expr_new(EX_AGG);
  if (e == NULL || (zPath && (e->zPath = quay__strdup(zPath)) == NULL) ||
      (pDefault && quay__value_copy(&e->dflt, pDefault))) {
    if (e) quay__free(e->zPath);
    quay__free(e);
    quay__cond_free((Cond *)pFilter);
    return quay__oom(pErr);
  }
  e->eFunc = eFunc;
  e->bDistinct = bDistinct != 0;
  e->pFilter = (Cond *)pFilter;
  e->bDefault = pDefault != NULL && pDefault->type != QUAY_NULL;
  *pp = (quay_expr *)e;
  return QUAY_OK;
}

int quay_expr_trunc(int eUnit, const char *zPath, quay_expr **pp,
                    quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (zPath == NULL || pp == NULL) {
    if (pp != NULL) *pp = NULL;
    return quay__err(pErr, QUAY_EMISUSE, "quay_expr_trunc: %s is NULL", zPath
        == NULL ? "zPath" : "ppExpr");
  }
  Expr *e;
  *pp = NULL;
  if (eUnit < QUAY_UNIT_YEAR || eUnit > QUAY_UNIT_DAY) {
    return quay__err(pErr, QUAY_EMISUSE, "quay.trunc: the unit is \"year\", "
                     "\"month\" or \"day\"");
  }
  e = expr_new(EX_TRUNC);
  if (e == NULL || (e->zPath = quay__strdup(zPath ? zPath : "")) == NULL) {
    quay__free(e);
    return quay__oom(pErr);
  }
  e->eUnit = eUnit;
  *pp = (quay_expr *)e;
  return QUAY_OK;
}

void quay_expr_set_desc(quay_expr *p, int bDesc) {
  /* NULL arguments (quay.h "Conventions"). */
  if (p == NULL) {
    return;
  }
  if (p) ((Expr *)p)->bDesc = bDesc != 0;
}

/* Free a tree of any depth: a work list threaded through pA. */
void quay__expr_free(Expr *e) {
  Expr *pList = e;
  if (e == NULL) return;
  e->pNextFree = NULL;
  while (pList) {
    e = pList;
    pList = e->pNextFree;
    if (e->pA) {
      e->pA->pNextFree = pList;
      pList = e->pA;
    }
    if (e->pB) {
      e->pB->pNextFree = pList;
      pList = e->pB;
    }
    quay__free(e->zPath);
    quay__value_clear(&e->val);
    quay__value_clear(&e->dflt);
    quay__cond_free(e->pFilter);
    quay__free(e);
  }
}

void quay_expr_free(quay_expr *p) { quay__expr_free((Expr *)p); }
/* }======= */


/* {======= Binding */

/* Non-0 for a type arithmetic and sum/avg accept (0: not known yet). */
static int type_numeric(int eType) {
  return eType == 0 || (quay_type_flags(eType) & QUAY_TF_NUMERIC) != 0;
}

static int type_of_value(const quay_value *v) {
  switch (v->type) {
    case QUAY_INT: return QUAY_T_INTEGER;
    case QUAY_REAL: return QUAY_T_NUMBER;
    case QUAY_TEXT: return QUAY_T_STRING;
    case QUAY_BOOL: return QUAY_T_BOOLEAN;
    case QUAY_BLOB: return QUAY_T_BLOB;
  }
  return 0;
}

static const char *expr_what(const Expr *e) {
  switch (e->eOp) {
    case EX_AGG: return "aggregate";
    case EX_TRUNC: return "quay.trunc";
    default: return e->zWhat ? e->zWhat : "quay.F";
  }
}

/* A column: an annotation name, or a to-one path ending at a field (or at
** a to-one relation: its key). */
static int bind_col(Expr *e, quay_qs *q, quay_err *pErr) {
  int rc;
  if (e->eOp == EX_COL && strstr(e->zPath, "__") == NULL &&
      quay__model_field(q->pModel, e->zPath) == NULL &&
      quay__model_rel(q->pModel, e->zPath) == NULL) {
    Ann *a = quay__qs_ann(q, e->zPath);
    if (a) {
      e->eOp = EX_REF;
      e->pRef = a;
      e->eType = a->pExpr->eType;
      e->nPlaces = a->pExpr->nPlaces;
      e->bAgg = a->pExpr->bAgg;
      return QUAY_OK;
    }
  }
  rc = quay__path_walk(q->pModel, quay__qs_pivot(q), e->zPath, PATH_TO_ONE,
                       expr_what(e), &e->path, pErr);
  if (rc) return rc;
  if (e->path.pField == NULL) {
    e->path.pField = quay__hop_ident(&e->path.aHop[e->path.nHop - 1]);
  }
  e->eType = e->path.pField->eType == QUAY_T_ID ? QUAY_T_INTEGER
                                                : e->path.pField->eType;
  e->nPlaces = e->path.pField->nPlaces;
  if (e->eOp == EX_TRUNC && !(quay_type_flags(e->eType) & QUAY_TF_DATE)) {
    return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.trunc('%s'): %s is not "
                     "a datetime or date field", e->zPath, e->zPath);
  }
  return QUAY_OK;
}

static int bind_agg(Expr *e, quay_qs *q, quay_err *pErr) {
  static const char *const azFn[] = {
    NULL, "count", "sum", "avg", "min", "max", "exists"
  };
  const char *zFn = azFn[e->eFunc];
  Field *f;
  int rc;
  if (e->zPath == NULL) {
    if (e->eFunc != QUAY_AGG_COUNT) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.%s needs a path",
                       zFn);
    }
    memset(&e->path, 0, sizeof(e->path));
    e->path.pModel = q->pModel;
    e->path.zRest = "";
  } else {
    rc = quay__path_walk(q->pModel, quay__qs_pivot(q), e->zPath, PATH_FIELD,
                         zFn, &e->path, pErr);
    if (rc) return rc;
    if (*e->path.zRest && e->path.pField &&
        e->path.pField->eType == QUAY_T_JSON) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.%s('%s'): %s is a json "
                       "field; paths into a document ('%s') work in "
                       "filters, not in aggregates", zFn, e->zPath,
                       e->path.pField->zName, e->path.zRest);
    }
    if (*e->path.zRest) {
      return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.%s('%s'): '%s' is not "
                       "part of a field path", zFn, e->zPath,
                       e->path.zRest);
    }
  }
  f = e->path.pField;
  switch (e->eFunc) {
    case QUAY_AGG_COUNT:
      e->eType = QUAY_T_INTEGER;
      break;
    case QUAY_AGG_EXISTS:
      if (e->path.nRel == 0) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.exists('%s') needs a "
                         "relation path", e->zPath);
      }
      e->eType = QUAY_T_BOOLEAN;
      break;
    case QUAY_AGG_SUM:
    case QUAY_AGG_AVG:
      if (f == NULL || !type_numeric(f->eType) || f->eType == 0) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.%s('%s'): %s", zFn,
                         e->zPath, f ? "the field is not a number (integer, "
                         "number or decimal)" : "name a numeric field, not "
                         "a relation");
      }
      e->eType = e->eFunc == QUAY_AGG_AVG ? QUAY_T_NUMBER
                 : f->eType == QUAY_T_ID ? QUAY_T_INTEGER : f->eType;
      break;
    default:                            /* min, max */
      if (f == NULL || !(quay_type_flags(f->eType) & QUAY_TF_ORDERED)) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "quay.%s('%s'): %s%s", zFn,
                         e->zPath, f ? quay__type_name(f->eType) : "",
                         f ? " values have no order"
                           : "name a field, not a relation");
      }
      e->eType = f->eType == QUAY_T_ID ? QUAY_T_INTEGER : f->eType;
      break;
  }
  if (e->eType == QUAY_T_DECIMAL) e->nPlaces = f->nPlaces;
  if (e->bDefault &&
      (e->eType == QUAY_T_DECIMAL ||
       ((e->eFunc == QUAY_AGG_MIN || e->eFunc == QUAY_AGG_MAX) &&
        (e->eType == QUAY_T_DATETIME || e->eType == QUAY_T_DATE ||
         e->eType == QUAY_T_UUID)))) {
    /* The default stands for a value of the field (scaled like it; a
    ** datetime in UTC, a uuid in lower case, as the field stores them),
    ** so it reads the same on both backends and a malformed one is
    ** refused before any SQL. */
    rc = quay__value_conform_owned(e->path.pModel, f, &e->dflt, pErr);
    if (rc == QUAY_OK) {
      rc = quay__value_fits(e->path.pModel, f, &e->dflt, 0, pErr);
    }
    if (rc) return rc;
  } else if (e->bDefault && f && e->eFunc != QUAY_AGG_COUNT &&
             e->eFunc != QUAY_AGG_EXISTS) {
    /* Any other default is of the result's kind (a number for numbers,
    ** a string for strings, a boolean for booleans): SQLite would return
    ** whatever it is, PostgreSQL raise on it even for a set with rows. */
    int t = e->dflt.type, ok = 1;
    const char *zKind = NULL;
    if (type_numeric(e->eType)) {
      ok = t == QUAY_INT || t == QUAY_REAL;
      zKind = "a number";
    } else if (e->eType == QUAY_T_STRING || e->eType == QUAY_T_TEXT) {
      ok = t == QUAY_TEXT;
      zKind = "a string";
    } else if (e->eType == QUAY_T_BOOLEAN) {
      ok = t == QUAY_BOOL;
      zKind = "a boolean";
    }
    if (!ok) {
      return quay__err_field(pErr, QUAY_EVALIDATION, e->path.pModel->zName,
                             f->zName, "%s.%s: the default of quay.%s('%s') "
                             "must be %s, as the result it stands for",
                             e->path.pModel->zName, f->zName, zFn, e->zPath,
                             zKind);
    }
  }
  e->bAgg = 1;
  if (e->pFilter) {
    quay_qs *pTmp;
    /* The filter's paths start at the annotated model. */
    rc = quay_qs_filter(q, (quay_cond *)e->pFilter, 0, &pTmp, pErr);
    if (rc) {
      e->pFilter = NULL;                /* freed by quay_qs_filter */
      return rc;
    }
    pTmp->pCond = NULL;                 /* keep the bound tree */
    quay_qs_free(pTmp);
  }
  return QUAY_OK;
}

/*
** The type of arithmetic e on its bound operands.  Numbers (floats) win;
** decimals stay exact where the result is exact: + and - at the larger
** places, * at the sum of places (PostgreSQL's NUMERIC rules, which the
** scaled integers of SQLite follow), / is a number.  Integers alone stay
** integers (integer division truncates on both backends).
*/
static void arith_type(Expr *e) {
  int ta = e->pA->eType, tb = e->pB->eType;
  int pa = ta == QUAY_T_DECIMAL ? e->pA->nPlaces : 0;
  int pb = tb == QUAY_T_DECIMAL ? e->pB->nPlaces : 0;
  e->nPlaces = 0;
  if (ta == QUAY_T_NUMBER || tb == QUAY_T_NUMBER) {
    e->eType = QUAY_T_NUMBER;
  } else if (ta != QUAY_T_DECIMAL && tb != QUAY_T_DECIMAL) {
    e->eType = QUAY_T_INTEGER;
  } else if (e->eOp == EX_DIV) {
    e->eType = QUAY_T_NUMBER;
  } else {
    e->eType = QUAY_T_DECIMAL;
    e->nPlaces = e->eOp == EX_MUL ? pa + pb : (pa > pb ? pa : pb);
  }
}

static int bind_rec(Expr *e, quay_qs *q, int bAllowAgg, int iDepth,
                    quay_err *pErr) {
  int rc;
  if (iDepth > QUAY_MAX_COND_DEPTH * 2) {
    return quay__err(pErr, QUAY_EMISUSE, "an expression is nested more "
                     "than %d levels deep", QUAY_MAX_COND_DEPTH * 2);
  }
  switch (e->eOp) {
    case EX_COL:
    case EX_TRUNC:
      return bind_col(e, q, pErr);
    case EX_VALUE:
      e->eType = type_of_value(&e->val);
      return QUAY_OK;
    case EX_REF:
      e->nPlaces = e->pRef->pExpr->nPlaces;
      return QUAY_OK;
    case EX_AGG:
      if (!bAllowAgg) {
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "an aggregate cannot be "
                         "used here; annotate it first and use its name");
      }
      return bind_agg(e, q, pErr);
    default:
      rc = bind_rec(e->pA, q, bAllowAgg, iDepth + 1, pErr);
      if (rc == QUAY_OK) rc = bind_rec(e->pB, q, bAllowAgg, iDepth + 1, pErr);
      if (rc) return rc;
      if (!type_numeric(e->pA->eType) || !type_numeric(e->pB->eType)) {
        const Expr *x = type_numeric(e->pA->eType) ? e->pB : e->pA;
        return quay__err(pErr, QUAY_EBAD_LOOKUP, "arithmetic needs numbers; "
                         "%s is %s", x->zPath ? x->zPath : "a constant",
                         quay_type_name(x->eType) ? quay_type_name(x->eType)
                                                  : "not a number");
      }
      arith_type(e);
      e->bAgg = e->pA->bAgg || e->pB->bAgg;
      return QUAY_OK;
  }
}

int quay__expr_bind(Expr *e, quay_qs *q, int bAllowAgg, quay_err *pErr) {
  int rc;
  if (e->bound) return QUAY_OK;
  rc = bind_rec(e, q, bAllowAgg, 0, pErr);
  if (rc == QUAY_OK) e->bound = 1;
  return rc;
}
/* }======= */


/* {======= Decimal arithmetic in SQL */

/* A short text of e for messages: paths, numbers, operators. */
static void expr_label(Str *p, const Expr *e, int iDepth) {
  static const char *const azOp[] = { NULL, NULL, NULL, " + ", " - ", " * ",
                                      " / " };
  if (iDepth > 8) {
    quay__str_cat(p, "...");
  } else if (e->eOp >= EX_ADD && e->eOp <= EX_DIV) {
    quay__str_char(p, '(');
    expr_label(p, e->pA, iDepth + 1);
    quay__str_cat(p, azOp[e->eOp]);
    expr_label(p, e->pB, iDepth + 1);
    quay__str_char(p, ')');
  } else if (e->eOp == EX_VALUE && e->val.type == QUAY_INT) {
    quay__str_int(p, e->val.u.i);
  } else if (e->eOp == EX_VALUE && e->val.type == QUAY_DECIMAL) {
    quay__str_append(p, e->val.u.z, e->val.n);
  } else if (e->zPath) {
    quay__str_printf(p, "%s", e->zPath);
  } else {
    quay__str_cat(p, "?");
  }
}

/* zDecArith('<op>', ...: the call's head (scaled decimal arithmetic). */
static void dec_arith_open(Build *b, char cOp) {
  quay__str_printf(&b->sql, "%s('%c', ", b->pDia->zDecArith, cOp);
}

/* ..., '<label of e>'[, 10^nA, 10^nB]): the call's tail, the label bound;
** with nA or nB the call scales its operands up by those powers itself. */
static void pow10_lit(Build *b, int n, int bReal);
static void dec_arith_close(Build *b, const Expr *e, int nA, int nB) {
  Str lab;
  quay_value v;
  quay__str_init(&lab);
  expr_label(&lab, e, 0);
  v.type = QUAY_TEXT;
  v.n = lab.n;
  v.u.z = lab.oom ? NULL : quay__arena_strdup(b->pArena, lab.z ? lab.z : "",
                                              lab.n);
  quay__str_free(&lab);
  if (v.u.z == NULL) {
    b->pArena->oom = 1;
    return;
  }
  quay__str_cat(&b->sql, ", ");
  quay__build_param(b, &v);
  if (nA || nB) {
    quay__str_cat(&b->sql, ", ");
    pow10_lit(b, nA, 0);
    quay__str_cat(&b->sql, ", ");
    pow10_lit(b, nB, 0);
  }
  quay__str_char(&b->sql, ')');
}

/* 10^n as a literal: an integer, or a float when bReal. */
static void pow10_lit(Build *b, int n, int bReal) {
  int i;
  quay__str_char(&b->sql, '1');
  for (i = 0; i < n; i++) quay__str_char(&b->sql, '0');
  if (bReal) quay__str_cat(&b->sql, ".0");
}

/* Write e (type eFrom/nFrom places) as a value of type eTo/nTo. */
static void emit_conv(Build *b, Expr *e, int eFrom, int nFrom, int eTo,
                      int nTo, void (*xEmit)(Build *, void *, Expr *),
                      void *pCtx) {
  int bFrom = eFrom == QUAY_T_DECIMAL, bTo = eTo == QUAY_T_DECIMAL;
  if (!b->pDia->bScaledDecimal || !bFrom) nFrom = 0;
  if (!b->pDia->bScaledDecimal || !bTo) nTo = 0;
  if (nFrom == nTo) {
    xEmit(b, pCtx, e);
    return;
  }
  if (nFrom < nTo && b->pDia->zDecArith && eFrom != QUAY_T_NUMBER) {
    /* exact, or an error past 64 bits (not a float) */
    dec_arith_open(b, '*');
    xEmit(b, pCtx, e);
    quay__str_cat(&b->sql, ", ");
    pow10_lit(b, nTo - nFrom, 0);
    dec_arith_close(b, e, 0, 0);
    return;
  }
  quay__str_char(&b->sql, '(');
  xEmit(b, pCtx, e);
  if (nFrom < nTo) {
    /* Up: exact for integers and decimals, a float times 10^n else. */
    quay__str_cat(&b->sql, " * ");
    pow10_lit(b, nTo - nFrom, 0);
  } else {
    quay__str_cat(&b->sql, " / ");
    pow10_lit(b, nFrom - nTo, 1);
  }
  quay__str_char(&b->sql, ')');
}

void quay__emit_arith(Build *b, Expr *e,
                      void (*xEmit)(Build *, void *, Expr *), void *pCtx) {
  static const char *const azOp[] = { NULL, NULL, NULL, " + ", " - ", " * ",
                                      " / " };
  Expr *aOp[2];
  int i, aShift[2] = { 0, 0 };
  /* SQLite's + - * would make a float of a result past 64 bits, of
  ** integers too (PostgreSQL raises "bigint out of range") */
  int bDec = b->pDia->zDecArith && (e->eType == QUAY_T_DECIMAL ||
                                    e->eType == QUAY_T_INTEGER) &&
             e->eOp != EX_DIV;
  aOp[0] = e->pA;
  aOp[1] = e->pB;
  if (bDec) {
    dec_arith_open(b, azOp[e->eOp][1]);
  } else {
    quay__str_char(&b->sql, '(');
  }
  for (i = 0; i < 2; i++) {
    Expr *x = aOp[i];
    if (i) quay__str_cat(&b->sql, bDec ? ", " : azOp[e->eOp]);
    /* x / 0 is NULL on every backend, as SQLite computes it (PostgreSQL
    ** would raise "division by zero") */
    if (i && e->eOp == EX_DIV) quay__str_cat(&b->sql, "NULLIF(");
    if (e->eType == QUAY_T_DECIMAL && e->eOp == EX_MUL) {
      xEmit(b, pCtx, x);                /* scales add up */
    } else if (bDec && b->pDia->bScaledDecimal &&
               x->eType != QUAY_T_NUMBER) {
      /* + and -: the call scales the operand up itself, after its NULL
      ** test and in 128 bits, so a NULL on the other side is NULL (not
      ** an error) and only the result must fit 64 bits */
      xEmit(b, pCtx, x);
      aShift[i] = e->nPlaces - (x->eType == QUAY_T_DECIMAL ? x->nPlaces : 0);
      if (aShift[i] < 0) aShift[i] = 0;
    } else {
      emit_conv(b, x, x->eType, x->nPlaces, e->eType, e->nPlaces, xEmit,
                pCtx);
    }
    if (i && e->eOp == EX_DIV) quay__str_cat(&b->sql, ", 0)");
  }
  if (bDec) {
    dec_arith_close(b, e, aShift[0], aShift[1]);
  } else {
    quay__str_char(&b->sql, ')');
  }
}

void quay__emit_as(Build *b, Expr *e, int eType, int nPlaces,
                   void (*xEmit)(Build *, void *, Expr *), void *pCtx) {
  emit_conv(b, e, e->eType, e->nPlaces, eType, nPlaces, xEmit, pCtx);
}

void quay__emit_avg_unscale(Build *b, const Expr *e) {
  const Field *f = e->path.pField;
  if (b->pDia->bScaledDecimal && f && f->eType == QUAY_T_DECIMAL &&
      f->nPlaces > 0) {
    quay__str_cat(&b->sql, " / ");
    pow10_lit(b, f->nPlaces, 1);
  }
}

int quay__leaf_type(const Cond *c, int *pnPlaces) {
  *pnPlaces = 0;
  if (c->ePart) return QUAY_T_INTEGER;
  if (c->pAnn) {
    *pnPlaces = c->pAnn->pExpr->nPlaces;
    return c->pAnn->pExpr->eType;
  }
  if (c->pField == NULL) return 0;
  *pnPlaces = c->pField->nPlaces;
  return c->pField->eType;
}
/* }======= */


/* {======= Types and dialect forms of expressions */

/* The class of values type t compares with: numbers, texts, else itself. */
static int type_class(int t) {
  switch (t) {
    case QUAY_T_ID: case QUAY_T_INTEGER: case QUAY_T_NUMBER:
    case QUAY_T_DECIMAL:
      return QUAY_T_NUMBER;
    case QUAY_T_TEXT:
      return QUAY_T_STRING;
  }
  return t;
}

int quay__expr_check_type(const Expr *e, int eType, const char *zModel,
                          const char *zWhat, quay_err *pErr) {
  static const char *const azUnit[] = {"", "year", "month", "day"};
  const char *zE = quay_type_name(e->eType), *zT = quay_type_name(eType);
  char zHead[48];
  int bF = e->zPath && (e->eOp == EX_COL || e->eOp == EX_TRUNC);
  if (eType == 0 || e->eType == 0 ||
      type_class(eType) == type_class(e->eType)) {
    return QUAY_OK;
  }
  /* Name the expression as written: quay.F('p') or quay.trunc('u', 'p'). */
  if (e->eOp == EX_TRUNC && e->eUnit >= QUAY_UNIT_YEAR &&
      e->eUnit <= QUAY_UNIT_DAY) {
    snprintf(zHead, sizeof(zHead), "quay.trunc('%s', '", azUnit[e->eUnit]);
  } else {
    snprintf(zHead, sizeof(zHead), "quay.F('");
  }
  return quay__err(pErr, QUAY_EBAD_LOOKUP, "%s%s%s: %s%s%s (%s) cannot be "
                   "compared with or stored in a value of type %s; use an "
                   "expression of a matching type", zModel ? zModel : "",
                   zModel ? "." : "",
                   zWhat, bF ? zHead : "",
                   bF ? e->zPath : "the expression", bF ? "')" : "",
                   zE ? zE : "?", zT ? zT : "?");
}

void quay__emit_agg_call(Build *b, const Expr *e, int eFn, int bDistinct,
                         const char *zArg) {
  static const char *const azFn[] = {
    NULL, "COUNT", "SUM", "AVG", "MIN", "MAX", "EXISTS"
  };
  const char *zFn = azFn[eFn], *zD = bDistinct ? "DISTINCT " : "";
  const Field *f = e->path.pField;
  if (zArg == NULL) {                   /* the caller's text ran out */
    b->pArena->oom = 1;
    return;
  }
  if (e->eType == QUAY_T_BOOLEAN) {
    if (eFn == QUAY_AGG_MIN) zFn = b->pDia->zBoolMin;
    if (eFn == QUAY_AGG_MAX) zFn = b->pDia->zBoolMax;
  }
  if (eFn == QUAY_AGG_AVG && b->pDia->bAvgSumCount && f &&
      f->eType == QUAY_T_NUMBER) {
    /* Plain sums of doubles (an empty set: NULL / 0, NULL). */
    quay__str_printf(&b->sql, "(SUM(%s%s) / COUNT(%s%s))", zD, zArg, zD,
                     zArg);
    return;
  }
  if (eFn == QUAY_AGG_SUM && e->eType == QUAY_T_DECIMAL && b->pDia->zDecSum) {
    zFn = b->pDia->zDecSum;             /* exact past 64 bits */
  }
  if (eFn == QUAY_AGG_SUM && e->eType == QUAY_T_INTEGER &&
      b->pDia->azIntSum[0]) {
    /* An integer, as on SQLite: "/" truncates, past 64 bits raises. */
    quay__str_printf(&b->sql, "%s%s(%s%s)%s", b->pDia->azIntSum[0], zFn, zD,
                     zArg, b->pDia->azIntSum[1]);
    return;
  }
  if (e->eType == QUAY_T_UUID && b->pDia->zUuidMinMaxArg &&
      (eFn == QUAY_AGG_MIN || eFn == QUAY_AGG_MAX)) {
    quay__str_printf(&b->sql, "%s(%s(%s)%s)", zFn, zD, zArg,
                     b->pDia->zUuidMinMaxArg);
    return;
  }
  quay__str_printf(&b->sql, "%s(%s%s)", zFn, zD, zArg);
}

static void emit_as_stored(Build *b, Expr *e, const Field *pTarget,
                           void (*xEmit)(Build *, void *, Expr *),
                           void *pCtx);

void quay__emit_as_stored(Build *b, Expr *e, const Field *pTarget,
                          void (*xEmit)(Build *, void *, Expr *),
                          void *pCtx) {
  if (pTarget->eType == QUAY_T_DECIMAL && b->pDia->bScaledDecimal &&
      b->pDia->zScaledFit) {
    /* Out of the field's digits raises, as numeric(d, p) does. */
    quay__str_cat(&b->sql, b->pDia->zScaledFit);
    quay__str_char(&b->sql, '(');
    emit_as_stored(b, e, pTarget, xEmit, pCtx);
    quay__str_printf(&b->sql, ", %d)", pTarget->nDigits);
    return;
  }
  emit_as_stored(b, e, pTarget, xEmit, pCtx);
}

static void emit_as_stored(Build *b, Expr *e, const Field *pTarget,
                           void (*xEmit)(Build *, void *, Expr *),
                           void *pCtx) {
  const char *const *az = NULL;
  int eTo = pTarget->eType, nTo = pTarget->nPlaces;
  if (pTarget->eType == QUAY_T_INTEGER || pTarget->eType == QUAY_T_ID) {
    if (e->eType == QUAY_T_NUMBER) az = b->pDia->azRealToInt;
    if (e->eType == QUAY_T_DECIMAL && e->nPlaces > 0) {
      az = b->pDia->azDecToInt;
    }
  }
  if (pTarget->eType == QUAY_T_DECIMAL && b->pDia->bScaledDecimal) {
    /* A scaled integer: a number rounded as PostgreSQL assigns it, a
    ** decimal of more places rounded half away from zero. */
    if (e->eType == QUAY_T_NUMBER && b->pDia->zRealToScaled) {
      quay__str_cat(&b->sql, b->pDia->zRealToScaled);
      quay__str_char(&b->sql, '(');
      xEmit(b, pCtx, e);
      quay__str_printf(&b->sql, ", %d)", pTarget->nPlaces);
      return;
    }
    if (e->eType == QUAY_T_DECIMAL && e->nPlaces > pTarget->nPlaces) {
      az = b->pDia->azDecToInt;
    }
  }
  if (az && eTo != QUAY_T_DECIMAL) {
    /* Into an integer: as a plain number first, then rounded. */
    eTo = QUAY_T_NUMBER;
    nTo = 0;
  }
  if (az) quay__str_cat(&b->sql, az[0]);
  emit_conv(b, e, e->eType, e->nPlaces, eTo, nTo, xEmit, pCtx);
  if (az) quay__str_cat(&b->sql, az[1]);
}

int quay__expr_reads_rows(const Expr *e) {
  /* Depth bounded when bound (QUAY_MAX_COND_DEPTH * 2). */
  if (e == NULL) return 0;
  /* Any hop (also one the SQL writes as the row's own key column). */
  if (e->eOp == EX_COL || e->eOp == EX_TRUNC) return e->path.nHop > 0;
  return quay__expr_reads_rows(e->pA) || quay__expr_reads_rows(e->pB);
}
/* }======= */
