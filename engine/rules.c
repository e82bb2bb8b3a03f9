/*
** engine/rules.c
** Field rules: choices, min and max (reference.md "Model behaviour").
** See LICENSE
**
** A field may declare the values it holds: `choices` (a list) and, on a
** numeric field, `min` / `max` (inclusive).  This file is their one home:
**
**   - quay__rules_set checks the declaration (values that fit the field,
**     min <= max, a static default that keeps the rules) and keeps copies
**     in the field's own form (quay__value_conform);
**   - quay__rules_check holds every stored value to them before any SQL
**     (the writer's quay__validate calls it), with a `validation` error
**     naming the model and the field;
**   - quay__rules_ddl emits them as CHECK constraints, so rows written by
**     raw SQL are held to the same rules (the database refuses them with
**     `integrity`);
**   - quay__rules_inspect reads such constraints of a live table back into
**     a field spec, for the models `quay inspect` prints.
**
** Constraint names.  Quay names its checks "quay_<table>_<column>_<kind>_
** <hash>" (kind "choices" or "range"; the hash covers the column and the
** expression), cut to PostgreSQL's 63 bytes.  The "quay_" prefix tells
** migrate.c which checks Quay owns (it adds and drops only those), and
** since the name changes with the rule, migrate.c matches Quay's checks by
** name: a backend may print the expression in its own words (PostgreSQL
** turns IN into = ANY (ARRAY[...]) with casts), the name stays.
*/
#include "quayInt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/*
** {==================================================================
** Declaring and checking
** ===================================================================
*/
/* Non-0 when a field of type eType may declare choices / min and max. */
static int rules_take_choices(int eType) {
  return eType == QUAY_T_INTEGER || eType == QUAY_T_NUMBER ||
         eType == QUAY_T_STRING || eType == QUAY_T_TEXT ||
         eType == QUAY_T_DATETIME || eType == QUAY_T_DATE ||
         eType == QUAY_T_DECIMAL || eType == QUAY_T_UUID;
}

static int rules_take_range(int eType) {
  return eType == QUAY_T_INTEGER || eType == QUAY_T_NUMBER ||
         eType == QUAY_T_DECIMAL;
}

/* A value as short text for messages: 12, 0.5, 'draft'. */
static void rules_value_text(const quay_value *v, char *z, size_t n) {
  switch (v->type) {
    case QUAY_INT: snprintf(z, n, "%lld", (long long)v->u.i); break;
    case QUAY_REAL: snprintf(z, n, "%.17g", v->u.r); break;
    case QUAY_TEXT:
      snprintf(z, n, "'%.*s'", (int)(v->n > 40 ? 40 : v->n), v->u.z);
      break;
    case QUAY_DECIMAL:
      snprintf(z, n, "%.*s", (int)(v->n > 40 ? 40 : v->n), v->u.z);
      break;
    default: snprintf(z, n, "%s", quay__value_kind(v)); break;
  }
}

/* -1, 0, 1: a against b, both numbers of one numeric field (decimals in
** their canonical text, so with the same places). */
static int rules_cmp(const quay_value *a, const quay_value *b) {
  if (a->type == QUAY_DECIMAL && b->type == QUAY_DECIMAL) {
    int64_t x = quay__decimal_unscaled(a->u.z, a->n);
    int64_t y = quay__decimal_unscaled(b->u.z, b->n);
    return x < y ? -1 : x > y;
  }
  if (a->type == QUAY_INT && b->type == QUAY_INT) {
    return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
  } else {
    double x = a->type == QUAY_INT ? (double)a->u.i : a->u.r;
    double y = b->type == QUAY_INT ? (double)b->u.i : b->u.r;
    return x < y ? -1 : x > y;
  }
}

/*
** *pOut = v in field f's stored form, owned (text copied); QUAY_OK, or a
** declaration error naming zWhat.
*/
static int rules_copy(quay_model *m, Field *f, const quay_value *v,
                      const char *zWhat, quay_value *pOut, quay_err *pErr) {
  quay_value x;
  quay_err e;
  pOut->type = QUAY_NULL;
  if (v->type == QUAY_NULL || v->type == QUAY_LIST ||
      v->type == QUAY_RECORD) {
    x.type = QUAY_NULL;
  } else if (quay__value_copy(&x, v)) {
    return quay__oom(pErr);
  } else if (quay__value_conform_owned(m, f, &x, &e) ||
             quay__value_fits(m, f, &x, 1, &e)) {
    if (e.code == QUAY_ENOMEM) {
      quay__value_clear(&x);
      return quay__oom(pErr);
    }
    quay__value_clear(&x);
    x.type = QUAY_NULL;
  }
  if (x.type == QUAY_NULL) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: %s must "
                     "be a value of the field (%s), not %s", m->zName,
                     f->zName, zWhat, quay__type_name(f->eType),
                     quay__value_kind(v));
  }
  *pOut = x;
  return QUAY_OK;
}

/* A number for min / max: finite, integral on an integer field. */
static int rules_bound(quay_model *m, Field *f, const quay_value *v,
                       const char *zWhat, quay_value **ppOut,
                       quay_err *pErr) {
  quay_value x = *v;
  int rc;
  if (x.type == QUAY_REAL && !isfinite(x.u.r)) x.type = QUAY_NULL;
  if (x.type != QUAY_INT && x.type != QUAY_REAL &&
      !(x.type == QUAY_TEXT && f->eType == QUAY_T_DECIMAL) &&
      x.type != QUAY_DECIMAL) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: %s must "
                     "be a finite number, not %s", m->zName, f->zName, zWhat,
                     quay__value_kind(v));
  }
  *ppOut = quay__calloc(sizeof(quay_value));
  if (*ppOut == NULL) return quay__oom(pErr);
  rc = rules_copy(m, f, &x, zWhat, *ppOut, pErr);
  if (rc == QUAY_OK && f->eType == QUAY_T_INTEGER &&
      (*ppOut)->type != QUAY_INT) {
    rc = quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: %s of an "
                   "integer field must be an integer", m->zName, f->zName,
                   zWhat);
  }
  return rc;
}

/* Release the rules of f (copies made by quay__rules_set); f has none
** after.  Allocates nothing. */
void quay__rules_free(Field *f) {
  int i;
  for (i = 0; i < f->nChoice; i++) quay__value_clear(&f->aChoice[i]);
  quay__free(f->aChoice);
  if (f->pMin) quay__value_clear(f->pMin);
  if (f->pMax) quay__value_clear(f->pMax);
  quay__free(f->pMin);
  quay__free(f->pMax);
  f->aChoice = NULL;
  f->nChoice = 0;
  f->pMin = f->pMax = NULL;
}

/*
** The rules of spec s into field f of m (declared, not yet inserted; its
** default already in stored form): each value converted to the field's
** form and copied.  QUAY_EDECLARATION names the model, the field and
** what is wrong (a type that takes no such rule, a value of the wrong
** kind, min > max, a default outside the rules); QUAY_ENOMEM.  On
** failure f may hold part of the rules; the caller frees f.
*/
int quay__rules_set(quay_model *m, Field *f, const quay_field_spec *s,
                    quay_err *pErr) {
  int i, rc;
  if (s->nChoice < 0 || (s->nChoice > 0 && s->aChoice == NULL)) {
    return quay__err(pErr, QUAY_EMISUSE, "model %s: field %s: nChoice "
                     "without aChoice", m->zName, f->zName);
  }
  if (s->nChoice > 0 && (!rules_take_choices(f->eType) ||
                         (f->mFlags & QUAY_F_PK))) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: choices "
                     "apply to integer, number, string, text and datetime "
                     "fields that are not the primary key", m->zName,
                     f->zName);
  }
  if ((s->pMin || s->pMax) && !rules_take_range(f->eType)) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: min and "
                     "max apply to integer and number fields (a string's "
                     "length is max on quay.string)", m->zName, f->zName);
  }
  if (s->nChoice > 0) {
    f->aChoice = quay__calloc(sizeof(quay_value) * (size_t)s->nChoice);
    if (f->aChoice == NULL) return quay__oom(pErr);
    for (i = 0; i < s->nChoice; i++) {
      char zWhat[32];
      snprintf(zWhat, sizeof(zWhat), "choice %d", i + 1);
      rc = rules_copy(m, f, &s->aChoice[i], zWhat, &f->aChoice[i], pErr);
      if (rc) return rc;
      f->nChoice = i + 1;
    }
  }
  if (s->pMin && (rc = rules_bound(m, f, s->pMin, "min", &f->pMin, pErr))) {
    return rc;
  }
  if (s->pMax && (rc = rules_bound(m, f, s->pMax, "max", &f->pMax, pErr))) {
    return rc;
  }
  if (f->pMin && f->pMax && rules_cmp(f->pMin, f->pMax) > 0) {
    return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: min is "
                     "greater than max", m->zName, f->zName);
  }
  if ((f->mFlags & QUAY_F_DEFAULT) && f->dflt.type != QUAY_NULL) {
    quay_err e;
    quay_err_clear(&e);
    if (quay__rules_check(m, f, &f->dflt, &e)) {
      return quay__err(pErr, QUAY_EDECLARATION, "model %s: field %s: the "
                       "default breaks the field's own rules (%s)", m->zName,
                       f->zName, e.zMsg);
    }
  }
  return QUAY_OK;
}

/*
** QUAY_OK when the stored-form value v (NULL passes) keeps the rules of
** f; else QUAY_EVALIDATION naming m and f (err.model, err.field), the
** value and the rule.
*/
int quay__rules_check(const quay_model *m, const Field *f,
                      const quay_value *v, quay_err *pErr) {
  char zV[64], zB[64];
  int i;
  if (v->type == QUAY_NULL) return QUAY_OK;
  if (f->nChoice > 0) {
    for (i = 0; i < f->nChoice; i++) {
      if (quay__value_eq(v, &f->aChoice[i])) break;
    }
    if (i == f->nChoice) {
      Str s;
      quay__str_init(&s);
      for (i = 0; i < f->nChoice && i < 10; i++) {
        rules_value_text(&f->aChoice[i], zB, sizeof(zB));
        quay__str_printf(&s, "%s%s", i ? ", " : "", zB);
      }
      if (f->nChoice > 10) quay__str_cat(&s, ", ...");
      rules_value_text(v, zV, sizeof(zV));
      quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                      "%s.%s: %s is not one of the choices (%s)", m->zName,
                      f->zName, zV, s.oom ? "..." : s.z);
      quay__str_free(&s);
      return QUAY_EVALIDATION;
    }
  }
  if ((f->pMin || f->pMax) &&
      (v->type == QUAY_INT || v->type == QUAY_REAL ||
       v->type == QUAY_DECIMAL)) {
    const quay_value *b = NULL;
    const char *zRel = NULL;
    if (f->pMin && rules_cmp(v, f->pMin) < 0) {
      b = f->pMin;
      zRel = "less than min";
    } else if (f->pMax && rules_cmp(v, f->pMax) > 0) {
      b = f->pMax;
      zRel = "greater than max";
    }
    if (b) {
      rules_value_text(v, zV, sizeof(zV));
      rules_value_text(b, zB, sizeof(zB));
      return quay__err_field(pErr, QUAY_EVALIDATION, m->zName, f->zName,
                             "%s.%s: %s is %s = %s", m->zName, f->zName, zV,
                             zRel, zB);
    }
  }
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** CHECK constraints
** ===================================================================
*/
/* "quay_<table>_<col>_<kind>_<hash>" of expression zExpr, in zOut[64]. */
static void rules_name(char *zOut, const char *zTable, const char *zCol,
                       const char *zKind, const char *zExpr) {
  Str s;
  unsigned h;
  quay__str_init(&s);
  quay__str_cat(&s, zCol);
  quay__str_char(&s, ' ');
  quay__str_cat(&s, zExpr);
  h = s.oom ? 0u : (unsigned)(quay__hash_bytes(s.z, s.n) & 0xffffffffu);
  quay__str_reset(&s);
  quay__str_printf(&s, "quay_%s_%s_%s_%08x", zTable, zCol, zKind, h);
  if (s.oom || s.n > 63) {
    /* Keep the prefix, the kind and the hash: 5 + 40 + 1 + 7 + 1 + 8. */
    snprintf(zOut, 64, "quay_%.40s_%s_%08x", s.oom ? zTable : s.z + 5,
             zKind, h);
  } else {
    memcpy(zOut, s.z, s.n + 1);
  }
  quay__str_free(&s);
}

/* The SQL literal of rule value v of field f: decimals as the dialect
** stores them (scaled integers, or their text). */
static int rules_literal(const quay_schema *pS, const Field *f, Str *p,
                         const quay_value *v) {
  if (v->type == QUAY_DECIMAL) {
    if (pS->pDia->bScaledDecimal) {
      quay__str_printf(p, "%lld", (long long)quay__decimal_unscaled(v->u.z,
                                                                     v->n));
    } else {
      quay__str_append(p, v->u.z, v->n);
    }
    return 1;
  }
  if (v->type == QUAY_TEXT && f->eType == QUAY_T_UUID) {
    return quay__ddl_literal(p, QUAY_T_TEXT, v);
  }
  return quay__ddl_literal(p, f->eType, v);
}

static void rules_add_check(quay_schema *pS, STable *t, const Field *f,
                            const char *zKind, Str *pExpr) {
  char zName[64];
  char *zExpr;
  if (pExpr->oom) {
    pS->oom = 1;
    return;
  }
  rules_name(zName, t->zName, f->zCol, zKind, pExpr->z);
  zExpr = quay__schema_str(pS, pExpr->z);
  if (zExpr == NULL) return;
  quay__stable_add_check(pS, t, zName, zExpr);
}

/*
** The CHECK constraints of the rules of m's fields, added to table t of
** the declared schema pS: "col" IN (...) for choices, "col" >= min AND
** "col" <= max for bounds, literals as the dialect stores the values.
** Out of memory sets pS->oom.
*/
void quay__rules_ddl(quay_schema *pS, STable *t, const quay_model *m) {
  Str e;
  int k, i;
  quay__str_init(&e);
  for (k = 0; k < m->nField && !pS->oom; k++) {
    const Field *f = m->apField[k];
    if (f->nChoice > 0) {
      quay__str_reset(&e);
      quay__str_ident(&e, f->zCol);
      quay__str_cat(&e, " IN (");
      for (i = 0; i < f->nChoice; i++) {
        if (i) quay__str_cat(&e, ", ");
        if (!rules_literal(pS, f, &e, &f->aChoice[i])) e.oom = 1;
      }
      quay__str_char(&e, ')');
      rules_add_check(pS, t, f, "choices", &e);
    }
    if (f->pMin || f->pMax) {
      quay__str_reset(&e);
      if (f->pMin) {
        quay__str_ident(&e, f->zCol);
        quay__str_cat(&e, " >= ");
        if (!rules_literal(pS, f, &e, f->pMin)) e.oom = 1;
      }
      if (f->pMax) {
        if (f->pMin) quay__str_cat(&e, " AND ");
        quay__str_ident(&e, f->zCol);
        quay__str_cat(&e, " <= ");
        if (!rules_literal(pS, f, &e, f->pMax)) e.oom = 1;
      }
      rules_add_check(pS, t, f, "range", &e);
    }
  }
  quay__str_free(&e);
}
/* }================================================================== */


/*
** {==================================================================
** Reading Quay's checks back (quay inspect)
** ===================================================================
** The expression of a live check is Quay's own text (SQLite keeps it as
** written) or the backend's rendering of it (PostgreSQL: "(views >=
** 0)", "((state)::text = ANY ((ARRAY['a'::character varying, ...])::
** text[]))", negative numbers as '-5'::integer).  A small scanner reads
** the column it is about, then the literals in order: each one after >=
** or <= is a bound, the others are choices.  Casts are skipped.
*/
typedef struct RuleScan {
  const char *z;            /* the expression */
  size_t i;
  char aLit[64][80];        /* literals read (truncated ones refused) */
  int aLitOp[64];           /* 0 none, 1 min (>=), 2 max (<=) */
  int nLit;
  int bBad;                 /* something the scanner does not read */
  int bList;                /* IN or ANY seen: choices */
} RuleScan;

static int rs_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (c >= '0' && c <= '9') || c == '$';
}

/* A word at the scanner (letters first); its length, 0 if none. */
static size_t rs_word(const RuleScan *x) {
  size_t n = 0;
  char c = x->z[x->i];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) {
    return 0;
  }
  while (rs_ident_char(x->z[x->i + n])) n++;
  return n;
}

static int rs_word_is(const RuleScan *x, size_t n, const char *zWord) {
  size_t k;
  if (strlen(zWord) != n) return 0;
  for (k = 0; k < n; k++) {
    char c = x->z[x->i + k];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    if (c != zWord[k]) return 0;
  }
  return 1;
}

/* Skip a cast's type after "::": words, "(n, m)", "[]". */
static void rs_skip_cast(RuleScan *x) {
  for (;;) {
    size_t n;
    while (x->z[x->i] == ' ') x->i++;
    n = rs_word(x);
    if (n == 0 || rs_word_is(x, n, "AND") || rs_word_is(x, n, "OR") ||
        rs_word_is(x, n, "ANY") || rs_word_is(x, n, "IN")) {
      break;
    }
    x->i += n;
  }
  if (x->z[x->i] == '(') {
    while (x->z[x->i] && x->z[x->i] != ')') x->i++;
    if (x->z[x->i]) x->i++;
  }
  while (x->z[x->i] == '[' || x->z[x->i] == ']') x->i++;
}

static void rs_add(RuleScan *x, const char *z, size_t n, int *pOp) {
  if (x->nLit == 64 || n >= sizeof(x->aLit[0])) {
    x->bBad = 1;
    return;
  }
  memcpy(x->aLit[x->nLit], z, n);
  x->aLit[x->nLit][n] = 0;
  x->aLitOp[x->nLit++] = *pOp;
  *pOp = 0;
}

/* Scan x->z: the first identifier into zCol[64], then the literals. */
static void rs_scan(RuleScan *x, char *zCol) {
  int op = 0;
  zCol[0] = 0;
  while (x->z[x->i] && !x->bBad) {
    char c = x->z[x->i];
    size_t n;
    if (c == '\'') {                         /* a string literal */
      char zBuf[80];
      size_t k = 0;
      x->i++;
      for (;;) {
        if (x->z[x->i] == 0) {
          x->bBad = 1;
          break;
        }
        if (x->z[x->i] == '\'') {
          if (x->z[x->i + 1] != '\'') {
            x->i++;
            break;
          }
          x->i++;
        }
        if (k + 1 >= sizeof(zBuf)) x->bBad = 1;
        else zBuf[k++] = x->z[x->i];
        x->i++;
      }
      if (!x->bBad) rs_add(x, zBuf, k, &op);
    } else if (c == '"') {                   /* a quoted identifier */
      char zId[64];
      size_t k = 0;
      x->i++;
      while (x->z[x->i] && !(x->z[x->i] == '"' && x->z[x->i + 1] != '"')) {
        if (x->z[x->i] == '"') x->i++;   /* "" inside */
        if (k < sizeof(zId) - 1) zId[k++] = x->z[x->i];
        else x->bBad = 1;
        x->i++;
      }
      if (x->z[x->i]) x->i++;
      zId[k] = 0;
      if (zCol[0] == 0) memcpy(zCol, zId, k + 1);
    } else if (c == ':' && x->z[x->i + 1] == ':') {
      x->i += 2;
      rs_skip_cast(x);
    } else if ((n = rs_word(x)) > 0) {
      if (rs_word_is(x, n, "IN") || rs_word_is(x, n, "ANY")) x->bList = 1;
      if (zCol[0] == 0) {
        if (n > 63) x->bBad = 1;
        else {
          memcpy(zCol, x->z + x->i, n);
          zCol[n] = 0;
        }
      }
      x->i += n;
    } else if ((c >= '0' && c <= '9') ||
               (c == '-' && x->z[x->i + 1] >= '0' && x->z[x->i + 1] <= '9')) {
      size_t k = x->i + 1;
      while ((x->z[k] >= '0' && x->z[k] <= '9') || x->z[k] == '.' ||
             x->z[k] == 'e' || x->z[k] == 'E' ||
             ((x->z[k] == '+' || x->z[k] == '-') &&
              (x->z[k - 1] == 'e' || x->z[k - 1] == 'E'))) {
        k++;
      }
      rs_add(x, x->z + x->i, k - x->i, &op);
      x->i = k;
    } else if ((c == '>' || c == '<') && x->z[x->i + 1] == '=') {
      op = c == '>' ? 1 : 2;
      x->i += 2;
    } else {
      x->i++;
    }
  }
}

/* Literal z as a value of live column c (type class eType) into *v
** (arena text). */
static int rules_lit_value(quay_schema *pS, const SCol *c, const char *z,
                           int eType, quay_value *v) {
  char *zEnd;
  switch (eType) {
    case QUAY_T_DECIMAL: {
      char zOut[64];
      size_t n;
      if (quay__decimal_scaled_type(c->zType)) {
        long long x = strtoll(z, &zEnd, 10);     /* stored scaled */
        if (*z == 0 || *zEnd) return 0;
        n = quay__decimal_format((int64_t)x, c->nPlaces, zOut);
      } else {
        const char *zDot = strchr(z, '.');
        int k = zDot ? (int)strlen(zDot + 1) : 0;
        if (k > c->nPlaces || strlen(z) + (size_t)c->nPlaces + 2 > 60) {
          return 0;
        }
        n = (size_t)snprintf(zOut, sizeof(zOut), "%s%s", z,
                             zDot || c->nPlaces == 0 ? "" : ".");
        for (; k < c->nPlaces; k++) zOut[n++] = '0';
        zOut[n] = 0;
      }
      v->type = QUAY_DECIMAL;
      v->u.z = quay__schema_str(pS, zOut);
      v->n = n;
      return v->u.z != NULL;
    }
    case QUAY_T_INTEGER: {
      long long x = strtoll(z, &zEnd, 10);
      if (*z == 0 || *zEnd) return 0;
      v->type = QUAY_INT;
      v->u.i = x;
      return 1;
    }
    case QUAY_T_NUMBER: {
      double r = strtod(z, &zEnd);
      if (*z == 0 || *zEnd || !isfinite(r)) return 0;
      v->type = QUAY_REAL;
      v->u.r = r;
      return 1;
    }
    case QUAY_T_STRING: case QUAY_T_TEXT: case QUAY_T_DATETIME:
    case QUAY_T_DATE: case QUAY_T_UUID:
      v->type = QUAY_TEXT;
      v->u.z = quay__schema_str(pS, z);
      v->n = strlen(z);
      return v->u.z != NULL;
  }
  return 0;
}

/*
** The rules Quay's checks of live table t hold for column c (type class
** eType) into the field spec s of `quay inspect`'s model: a check named
** "quay_..." whose expression is about c gives its literals as choices,
** or as min / max after >= / <=.  A check the scanner cannot read gives
** nothing (the diff then drops it: the fixpoint shows it).  Values live
** in pS's arena; out of memory sets pS->oom.
*/
void quay__rules_inspect(quay_schema *pS, const STable *t, const SCol *c,
                         int eType, quay_field_spec *s) {
  int i, k;
  for (i = 0; i < t->nCheck && !pS->oom; i++) {
    const SCheck *ck = &t->aCheck[i];
    RuleScan *x;
    char zCol[64];
    if (ck->zName == NULL || strncmp(ck->zName, "quay_", 5) != 0) continue;
    x = quay__calloc(sizeof(RuleScan));
    if (x == NULL) {
      pS->oom = 1;
      return;
    }
    x->z = ck->zExpr;
    rs_scan(x, zCol);
    if (!x->bBad && strcmp(zCol, c->zName) == 0 && x->nLit > 0) {
      if (x->bList && s->nChoice == 0 && rules_take_choices(eType)) {
        quay_value *a = quay__arena_alloc(&pS->arena, sizeof(quay_value) *
                                                          (size_t)x->nLit);
        for (k = 0; a && k < x->nLit; k++) {
          if (!rules_lit_value(pS, c, x->aLit[k], eType, &a[k])) break;
        }
        if (a == NULL) pS->oom = 1;
        else if (k == x->nLit) {
          s->aChoice = a;
          s->nChoice = x->nLit;
        }
      } else if (!x->bList && rules_take_range(eType)) {
        for (k = 0; k < x->nLit; k++) {
          quay_value *v;
          if (x->aLitOp[k] == 0) continue;
          v = quay__arena_alloc(&pS->arena, sizeof(quay_value));
          if (v == NULL) {
            pS->oom = 1;
            break;
          }
          if (!rules_lit_value(pS, c, x->aLit[k], eType, v)) continue;
          if (x->aLitOp[k] == 1) s->pMin = v;
          else s->pMax = v;
        }
      }
    }
    quay__free(x);
  }
}
/* }================================================================== */
