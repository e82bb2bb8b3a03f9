/*
** engine/types.c
** The field-type table: one entry per QUAY_T_* type, and the conversions
** and checks of values for a field.
** See LICENSE
**
** Everything that depends on a field's type is read from aType below:
** the contract name, the kinds of values a field takes and stores, the
** SQLite and PostgreSQL column types, the array type of key lists, how a
** value is converted to its stored form (xConform) and checked (xCheck),
** how a read column is typed (eRead), and what the type allows (QUAY_TF_*:
** arithmetic and sum/avg, ordering, text lookups, date parts, keys,
** generated values).  The schema, the condition binder, the expression
** binder, the drivers and the Lua binding (quay_type_flags) ask the table
** instead of listing types, so a new type is one entry here plus its
** conversion function.
**
** Values are converted once, to one form shared by both backends, before
** any SQL: that is how SQLite and PostgreSQL accept and refuse the same
** values with the same `validation` error naming model and field.
**   datetime  "YYYY-MM-DD HH:MM:SS" UTC (ISO 8601 input converted)
**   date      "YYYY-MM-DD", a day of the calendar
**   decimal   QUAY_DECIMAL text with exactly `places` decimals; never
**             rounded: more decimals, too many digits, or a float that is
**             not exact at `places` decimals (string.format("%.2f", v)
**             reads back as another float) are refused
**   uuid      36 characters 8-4-4-4-12, lower case
**   json      QUAY_JSON text: a document the binding encoded (checked
**             with jansson), or a string, number or boolean encoded here
** Decimals are stored as scaled integers on SQLite (the driver binds the
** digits of the text as an integer and formats read integers with the
** places of the read hint) and as NUMERIC(digits, places) on PostgreSQL.
** JSON goes through jansson (Debian libjansson), the C JSON library the
** binding uses too, so both sides parse and write JSON the same way.
*/
#define _DEFAULT_SOURCE
#include "quayInt.h"

#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Digits a scaled decimal holds (int64: 18 always fit). */
#define DECIMAL_MAX_DIGITS 18

void quay__valbuf_free(ValBuf *p) {
  quay__free(p->zHeap);
  p->zHeap = NULL;
}

/* The validation error about field f of m. */
#define FIELD_ERR(m, f, ...) \
  quay__err_field(pErr, QUAY_EVALIDATION, (m)->zName, (f)->zName, __VA_ARGS__)


/*
** {==================================================================
** Conversions
** ===================================================================
*/
static int conform_number(quay_model *m, const Field *f, quay_value *v,
                          ValBuf *pBuf, quay_err *pErr) {
  (void)m; (void)f; (void)pBuf; (void)pErr;
  /* Numbers are doubles on both backends: an integer compares and stores
  ** as the double nearest to it (2^53 + 1 as 2^53). */
  if (v->type == QUAY_INT) {
    v->type = QUAY_REAL;
    v->u.r = (double)v->u.i;
  }
  return QUAY_OK;
}

static int conform_integer(quay_model *m, const Field *f, quay_value *v,
                           ValBuf *pBuf, quay_err *pErr) {
  (void)m; (void)f; (void)pBuf; (void)pErr;
  if (v->type == QUAY_REAL && v->u.r >= -9.2233720368547758e18 &&
      v->u.r < 9.2233720368547758e18 && floor(v->u.r) == v->u.r) {
    v->type = QUAY_INT;
    v->u.i = (int64_t)v->u.r;
  }
  return QUAY_OK;
}

static int conform_datetime(quay_model *m, const Field *f, quay_value *v,
                            ValBuf *pBuf, quay_err *pErr) {
  const char *zWhy;
  if (v->type != QUAY_TEXT) return QUAY_OK;
  zWhy = quay__datetime_norm(v->u.z, v->n, pBuf->z);
  if (zWhy) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a datetime (%s); give "
                     "\"YYYY-MM-DD HH:MM:SS\" in UTC or ISO 8601 with a "
                     "zone (2024-05-01T10:00:00Z)", m->zName, f->zName,
                     v->u.z, zWhy);
  }
  v->u.z = pBuf->z;
  v->n = 19;
  return QUAY_OK;
}

/* "YYYY-MM-DD" naming a day that exists: NULL, or why not. */
static const char *date_why(const char *z, size_t n) {
  int i, y, mo, d;
  if (n != 10 || z[4] != '-' || z[7] != '-') return "expected YYYY-MM-DD";
  for (i = 0; i < 10; i++) {
    if (i != 4 && i != 7 && (z[i] < '0' || z[i] > '9')) {
      return "expected YYYY-MM-DD";
    }
  }
  y = (z[0] - '0') * 1000 + (z[1] - '0') * 100 + (z[2] - '0') * 10 +
      (z[3] - '0');
  mo = (z[5] - '0') * 10 + (z[6] - '0');
  d = (z[8] - '0') * 10 + (z[9] - '0');
  if (y < 1) return "year 0000 does not exist";
  if (mo < 1 || mo > 12) return "the month must be 01 to 12";
  if (!quay__is_date(y, mo, d)) return "that day does not exist";
  return NULL;
}

static int conform_date(quay_model *m, const Field *f, quay_value *v,
                        ValBuf *pBuf, quay_err *pErr) {
  const char *zWhy;
  (void)pBuf;
  if (v->type != QUAY_TEXT) return QUAY_OK;
  zWhy = date_why(v->u.z, v->n);
  if (zWhy) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a date (%s); give "
                     "\"YYYY-MM-DD\"", m->zName, f->zName, v->u.z, zWhy);
  }
  return QUAY_OK;
}

static int check_date(quay_model *m, const Field *f, const quay_value *v,
                      int bStore, quay_err *pErr) {
  (void)bStore;
  if (date_why(v->u.z, v->n)) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a date \"YYYY-MM-DD\"",
                     m->zName, f->zName, v->u.z);
  }
  return QUAY_OK;
}

/* Non-0 when z[n] is a uuid 8-4-4-4-12 of hex digits (any case). */
static int is_uuid(const char *z, size_t n) {
  size_t i;
  if (n != 36) return 0;
  for (i = 0; i < 36; i++) {
    char c = z[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return 0;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                 (c >= 'A' && c <= 'F'))) {
      return 0;
    }
  }
  return 1;
}

static int conform_uuid(quay_model *m, const Field *f, quay_value *v,
                        ValBuf *pBuf, quay_err *pErr) {
  size_t i;
  if (v->type != QUAY_TEXT) return QUAY_OK;
  if (!is_uuid(v->u.z, v->n)) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a UUID (36 characters, "
                     "8-4-4-4-12 hex digits)", m->zName, f->zName, v->u.z);
  }
  for (i = 0; i < 36; i++) {
    char c = v->u.z[i];
    pBuf->z[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
  }
  pBuf->z[36] = 0;
  v->u.z = pBuf->z;
  return QUAY_OK;
}

static int check_uuid(quay_model *m, const Field *f, const quay_value *v,
                      int bStore, quay_err *pErr) {
  size_t i;
  (void)bStore;
  for (i = 0; i < v->n; i++) {
    if (v->u.z[i] >= 'A' && v->u.z[i] <= 'F') break;
  }
  if (!is_uuid(v->u.z, v->n) || i < v->n) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a lower-case UUID",
                     m->zName, f->zName, v->u.z);
  }
  return QUAY_OK;
}

/* Text of a string field: UTF-8 without NUL, at most max code points. */
static int check_text(quay_model *m, const Field *f, const quay_value *v,
                      int bStore, quay_err *pErr) {
  long n;
  if (v->type != QUAY_TEXT) return QUAY_OK;
  if (memchr(v->u.z, 0, v->n) != NULL ||
      (n = quay__utf8_len(v->u.z, v->n)) < 0) {
    return FIELD_ERR(m, f, "%s.%s: text must be valid UTF-8 without NUL "
                     "bytes (store bytes in a quay.blob field)", m->zName,
                     f->zName);
  }
  if (bStore && f->nMax > 0 && n > f->nMax) {
    return FIELD_ERR(m, f, "%s.%s: %ld characters is longer than max = %d",
                     m->zName, f->zName, n, f->nMax);
  }
  return QUAY_OK;
}

static int check_datetime(quay_model *m, const Field *f, const quay_value *v,
                          int bStore, quay_err *pErr) {
  (void)bStore;
  if (!quay__is_datetime(v->u.z, v->n)) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a UTC datetime "
                     "\"YYYY-MM-DD HH:MM:SS\"", m->zName, f->zName, v->u.z);
  }
  return QUAY_OK;
}

static int check_number(quay_model *m, const Field *f, const quay_value *v,
                        int bStore, quay_err *pErr) {
  (void)bStore;
  if (v->type == QUAY_REAL && isnan(v->u.r)) {
    return FIELD_ERR(m, f, "%s.%s: NaN is not a number Quay stores or "
                     "compares", m->zName, f->zName);
  }
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** Decimals
** ===================================================================
** The canonical text: an optional '-' (never on zero), the integer part
** without leading zeros ("0" when it has none), then '.' and exactly
** `places` digits when places > 0.  At most 18 digits in all, so the
** digits are an int64: the scaled integer SQLite stores.
*/
/*
** Parse decimal text z[n] for f into zOut (canonical); NULL, or why not
** (a phrase written to zWhy, 128 bytes).
*/
static const char *decimal_parse(const Field *f, const char *z, size_t n,
                                 char *zOut, char *zWhy) {
  size_t i = 0, iInt, nInt, iFrac = 0, nFrac = 0, k = 0;
  int bNeg = 0, bZero = 1;
  if (i < n && (z[i] == '+' || z[i] == '-')) bNeg = z[i++] == '-';
  iInt = i;
  while (i < n && z[i] >= '0' && z[i] <= '9') i++;
  nInt = i - iInt;
  if (i < n && z[i] == '.') {
    iFrac = ++i;
    while (i < n && z[i] >= '0' && z[i] <= '9') i++;
    nFrac = i - iFrac;
  }
  if (i != n || nInt + nFrac == 0) {
    return "expected digits with an optional sign and decimal point "
           "(\"-12.50\")";
  }
  if ((int)nFrac > f->nPlaces) {
    snprintf(zWhy, 128, "%d decimals, more than places = %d (Quay never "
             "rounds)", (int)nFrac, f->nPlaces);
    return zWhy;
  }
  while (nInt > 0 && z[iInt] == '0') {
    iInt++;
    nInt--;
  }
  if ((int)nInt > f->nDigits - f->nPlaces) {
    snprintf(zWhy, 128, "%d digits before the point, more than digits - "
             "places = %d", (int)nInt, f->nDigits - f->nPlaces);
    return zWhy;
  }
  for (i = 0; i < nInt; i++) bZero &= z[iInt + i] == '0';
  for (i = 0; i < nFrac; i++) bZero &= z[iFrac + i] == '0';
  if (bNeg && !bZero) zOut[k++] = '-';
  if (nInt == 0) zOut[k++] = '0';
  memcpy(zOut + k, z + iInt, nInt);
  k += nInt;
  if (f->nPlaces > 0) {
    zOut[k++] = '.';
    memcpy(zOut + k, z + iFrac, nFrac);
    k += nFrac;
    for (i = nFrac; (int)i < f->nPlaces; i++) zOut[k++] = '0';
  }
  zOut[k] = 0;
  return NULL;
}

static int conform_decimal(quay_model *m, const Field *f, quay_value *v,
                           ValBuf *pBuf, quay_err *pErr) {
  char zNum[400], zWhy[128];
  const char *z, *zErr;
  size_t n;
  switch (v->type) {
    case QUAY_TEXT:
    case QUAY_DECIMAL:
      z = v->u.z;
      n = v->n;
      break;
    case QUAY_INT:
      n = (size_t)snprintf(zNum, sizeof(zNum), "%lld", (long long)v->u.i);
      z = zNum;
      break;
    case QUAY_REAL:
      if (!isfinite(v->u.r)) {
        return FIELD_ERR(m, f, "%s.%s: %s is not a decimal", m->zName,
                         f->zName, isnan(v->u.r) ? "NaN" : "an infinity");
      }
      n = (size_t)snprintf(zNum, sizeof(zNum), "%.*f", f->nPlaces, v->u.r);
      if (n >= sizeof(zNum) - 1 || strtod(zNum, NULL) != v->u.r) {
        return FIELD_ERR(m, f, "%s.%s: the number %.17g is not exact at "
                         "%d decimals (it would read back as %.60s); give "
                         "the value as a string", m->zName, f->zName,
                         v->u.r, f->nPlaces, zNum);
      }
      z = zNum;
      break;
    default:
      return QUAY_OK;                   /* quay__value_fits refuses it */
  }
  zErr = decimal_parse(f, z, n, pBuf->z, zWhy);
  if (zErr) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a decimal(%d, %d): %s",
                     m->zName, f->zName, z, f->nDigits, f->nPlaces, zErr);
  }
  v->type = QUAY_DECIMAL;
  v->u.z = pBuf->z;
  v->n = strlen(pBuf->z);
  return QUAY_OK;
}

static int check_decimal(quay_model *m, const Field *f, const quay_value *v,
                         int bStore, quay_err *pErr) {
  char zOut[64], zWhy[128];
  (void)bStore;
  if (decimal_parse(f, v->u.z, v->n, zOut, zWhy) ||
      strlen(zOut) != v->n || memcmp(zOut, v->u.z, v->n) != 0) {
    return FIELD_ERR(m, f, "%s.%s: '%.40s' is not a decimal(%d, %d) in "
                     "its normal form", m->zName, f->zName, v->u.z,
                     f->nDigits, f->nPlaces);
  }
  return QUAY_OK;
}

int64_t quay__decimal_unscaled(const char *z, size_t n) {
  uint64_t u = 0;
  size_t i;
  int bNeg = n > 0 && z[0] == '-';
  for (i = (size_t)bNeg; i < n; i++) {
    if (z[i] >= '0' && z[i] <= '9') u = u * 10 + (uint64_t)(z[i] - '0');
  }
  return bNeg ? -(int64_t)u : (int64_t)u;
}

size_t quay__decimal_format(int64_t v, int nPlaces, char *zOut) {
  char zDig[48];
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  int nDig = 0, k = 0, i;
  if (nPlaces < 0) nPlaces = 0;
  if (nPlaces > 40) nPlaces = 40;
  do {
    zDig[nDig++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u);
  while (nDig <= nPlaces) zDig[nDig++] = '0';     /* "0.05" has 3 digits */
  if (v < 0) zOut[k++] = '-';
  for (i = nDig - 1; i >= 0; i--) {
    zOut[k++] = zDig[i];
    if (i == nPlaces && i > 0) zOut[k++] = '.';
  }
  zOut[k] = 0;
  return (size_t)k;
}
/* }================================================================== */


/*
** {==================================================================
** JSON
** ===================================================================
** Documents are checked and scalars encoded with jansson.  Numbers are
** written as jansson writes them for the binding: integers exactly,
** floats with 17 significant digits (they read back as the same double),
** so a value compared on PostgreSQL (as jsonb) is written as the stored
** one was.  Strings must be UTF-8 without NUL bytes (PostgreSQL's jsonb
** refuses \u0000), documents must not repeat a key.
*/
#define JSON_DUMP_FLAGS \
  (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))

/* Dump j (a new reference, taken) into pBuf as *v. */
static int json_out(quay_model *m, const Field *f, json_t *j, quay_value *v,
                    ValBuf *pBuf, quay_err *pErr) {
  size_t n;
  char *z;
  if (j == NULL) {
    return FIELD_ERR(m, f, "%s.%s: the value cannot be stored as JSON",
                     m->zName, f->zName);
  }
  n = json_dumpb(j, NULL, 0, JSON_DUMP_FLAGS);
  if (n < sizeof(pBuf->z)) {
    z = pBuf->z;
  } else {
    quay__free(pBuf->zHeap);
    z = pBuf->zHeap = quay__malloc(n + 1);
    if (z == NULL) {
      json_decref(j);
      return quay__oom(pErr);
    }
  }
  if (json_dumpb(j, z, n, JSON_DUMP_FLAGS) != n) {
    json_decref(j);
    return quay__oom(pErr);
  }
  z[n] = 0;
  json_decref(j);
  v->type = QUAY_JSON;
  v->u.z = z;
  v->n = n;
  return QUAY_OK;
}

static int conform_json(quay_model *m, const Field *f, quay_value *v,
                        ValBuf *pBuf, quay_err *pErr) {
  switch (v->type) {
    case QUAY_JSON: {
      json_error_t e;
      json_t *j = json_loadb(v->u.z, v->n,
                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
      if (j == NULL) {
        return FIELD_ERR(m, f, "%s.%s: the document is not JSON Quay "
                         "stores (%.200s, at character %d)", m->zName,
                         f->zName, e.text, e.position);
      }
      json_decref(j);
      return QUAY_OK;
    }
    case QUAY_TEXT:
      if (memchr(v->u.z, 0, v->n) != NULL ||
          quay__utf8_len(v->u.z, v->n) < 0) {
        return FIELD_ERR(m, f, "%s.%s: a JSON string must be valid UTF-8 "
                         "without NUL bytes", m->zName, f->zName);
      }
      return json_out(m, f, json_stringn_nocheck(v->u.z, v->n), v, pBuf,
                      pErr);
    case QUAY_INT:
      return json_out(m, f, json_integer((json_int_t)v->u.i), v, pBuf, pErr);
    case QUAY_REAL:
      if (!isfinite(v->u.r)) {
        return FIELD_ERR(m, f, "%s.%s: %s has no JSON form", m->zName,
                         f->zName, isnan(v->u.r) ? "NaN" : "an infinity");
      }
      return json_out(m, f, json_real(v->u.r), v, pBuf, pErr);
    case QUAY_BOOL:
      return json_out(m, f, json_boolean(v->u.b), v, pBuf, pErr);
  }
  return QUAY_OK;                       /* quay__value_fits refuses it */
}

int quay__json_compare_value(quay_model *m, const Field *f, quay_value *v,
                             quay_err *pErr) {
  switch (v->type) {
    case QUAY_NULL:
      return QUAY_OK;
    case QUAY_TEXT:
      if (memchr(v->u.z, 0, v->n) != NULL ||
          quay__utf8_len(v->u.z, v->n) < 0) {
        return FIELD_ERR(m, f, "%s.%s: a JSON string must be valid UTF-8 "
                         "without NUL bytes", m->zName, f->zName);
      }
      break;
    case QUAY_INT:
    case QUAY_BOOL:
      break;
    case QUAY_REAL:
      if (isnan(v->u.r)) {
        return FIELD_ERR(m, f, "%s.%s: NaN is not a JSON value", m->zName,
                         f->zName);
      }
      break;
    default:
      return FIELD_ERR(m, f, "%s.%s: a value inside JSON compares with a "
                       "string, number, boolean or null, not %s", m->zName,
                       f->zName, quay__value_kind(v));
  }
  if (!m->pDb->pDialect->bJsonDocCompare) {
    /* SQLite's json_extract gives 1 / 0 for true / false: the dialect's
    ** path reads a JSON boolean as the one-byte blob 't' / 'f' instead, and
    ** a boolean compared with it is bound as that blob, so that true never
    ** equals the number 1 (as with PostgreSQL's jsonb). */
    if (v->type == QUAY_BOOL) {
      char *z = quay__malloc(2);
      if (z == NULL) return quay__oom(pErr);
      z[0] = v->u.b ? 't' : 'f';
      z[1] = 0;
      v->type = QUAY_BLOB;
      v->n = 1;
      v->u.z = z;
    }
    return QUAY_OK;
  }
  return quay__value_conform_owned(m, f, v, pErr);
}
/* }================================================================== */


/*
** {==================================================================
** Generated values
** ===================================================================
*/
/*
** A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, a
** 12-bit counter (RFC 9562 method 1) and 62 random bits, with the version
** and variant set.  Within one millisecond the counter (started at a
** random value below 2048) goes up, so the UUIDs a thread makes sort in
** the order they were made (index locality, "newest last"); when it runs
** out the time moves on a millisecond.  Per thread: no shared state.
*/
static _Thread_local uint64_t uuidLastMs;
static _Thread_local unsigned uuidSeq;

static int gen_uuid7(quay_value *pOut, ValBuf *pBuf, quay_err *pErr) {
  static const char aHex[] = "0123456789abcdef";
  unsigned char a[16];
  struct timespec ts;
  uint64_t ms;
  int i, k = 0;
  if (getentropy(a + 6, 10) != 0) {
    return quay__err(pErr, QUAY_EMISUSE, "no random bytes for a UUID "
                     "(getentropy failed)");
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  if (ms <= uuidLastMs) {
    /* the same millisecond (or the clock went back): count on */
    ms = uuidLastMs;
    if (++uuidSeq > 0xfff) {
      ms++;
      uuidSeq = 0;
    }
  } else {
    uuidSeq = ((unsigned)a[6] << 8 | a[7]) & 0x7ff;
  }
  uuidLastMs = ms;
  for (i = 0; i < 6; i++) a[i] = (unsigned char)(ms >> (8 * (5 - i)));
  a[6] = (unsigned char)(0x70 | (uuidSeq >> 8));
  a[7] = (unsigned char)(uuidSeq & 0xff);
  a[8] = (unsigned char)((a[8] & 0x3f) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) pBuf->z[k++] = '-';
    pBuf->z[k++] = aHex[a[i] >> 4];
    pBuf->z[k++] = aHex[a[i] & 15];
  }
  pBuf->z[k] = 0;
  pOut->type = QUAY_TEXT;
  pOut->u.z = pBuf->z;
  pOut->n = 36;
  return QUAY_OK;
}

int quay__type_generate(const Field *f, quay_value *pOut, ValBuf *pBuf,
                        quay_err *pErr) {
  if (QUAY_ALWAYS(f->eType == QUAY_T_UUID)) {
    return gen_uuid7(pOut, pBuf, pErr);
  }
  pOut->type = QUAY_NULL;
  return QUAY_OK;
}
/* }================================================================== */


/*
** {==================================================================
** The table
** ===================================================================
*/
#define K(t) (1u << (t))

static const FieldType aType[] = {
  [0] = { .zName = "?", .zWant = "a value", .eRead = QUAY_NULL,
          .azCol = { "TEXT", "TEXT" }, .zPgArray = "text[]" },
  [QUAY_T_ID] = {
    .zName = "id", .zWant = "an integer",
    .mFlags = QUAY_TF_NUMERIC | QUAY_TF_ORDERED | QUAY_TF_KEY,
    .mStored = K(QUAY_INT), .eRead = QUAY_INT,
    .azCol = { "INTEGER", "BIGINT" }, .zPgArray = "bigint[]",
    .xConform = conform_integer },
  [QUAY_T_INTEGER] = {
    .zName = "integer", .zWant = "an integer",
    .mFlags = QUAY_TF_NUMERIC | QUAY_TF_ORDERED | QUAY_TF_KEY,
    .mStored = K(QUAY_INT), .eRead = QUAY_INT,
    .azCol = { "INTEGER", "BIGINT" }, .zPgArray = "bigint[]",
    .xConform = conform_integer },
  [QUAY_T_NUMBER] = {
    .zName = "number", .zWant = "a number",
    .mFlags = QUAY_TF_NUMERIC | QUAY_TF_ORDERED | QUAY_TF_NORMALIZES,
    .mStored = K(QUAY_INT) | K(QUAY_REAL), .eRead = QUAY_REAL,
    .azCol = { "REAL", "DOUBLE PRECISION" },
    .zPgArray = "double precision[]",
    .xConform = conform_number, .xCheck = check_number },
  [QUAY_T_STRING] = {
    .zName = "string", .zWant = "a string",
    .mFlags = QUAY_TF_ORDERED | QUAY_TF_TEXT | QUAY_TF_KEY,
    .mStored = K(QUAY_TEXT), .eRead = QUAY_TEXT,
    .azCol = { "VARCHAR", "VARCHAR" }, .zPgArray = "text[]",
    .xCheck = check_text },
  [QUAY_T_TEXT] = {
    .zName = "text", .zWant = "a string",
    .mFlags = QUAY_TF_ORDERED | QUAY_TF_TEXT | QUAY_TF_KEY,
    .mStored = K(QUAY_TEXT), .eRead = QUAY_TEXT,
    .azCol = { "TEXT", "TEXT" }, .zPgArray = "text[]",
    .xCheck = check_text },
  [QUAY_T_BOOLEAN] = {
    .zName = "boolean", .zWant = "a boolean",
    .mFlags = QUAY_TF_ORDERED,
    .mStored = K(QUAY_BOOL), .eRead = QUAY_BOOL,
    .azCol = { "BOOLEAN", "BOOLEAN" },
    .zPgArray = "boolean[]" },         /* elements 1/0 read as t/f */
  [QUAY_T_DATETIME] = {
    .zName = "datetime", .zWant = "a \"YYYY-MM-DD HH:MM:SS\" string",
    .mFlags = QUAY_TF_ORDERED | QUAY_TF_DATE | QUAY_TF_KEY |
              QUAY_TF_NORMALIZES,
    .mStored = K(QUAY_TEXT), .eRead = QUAY_TEXT,
    /* SQLite: text (TEXT affinity: the type name holds "TEXT") under a
    ** name of its own, as for date, json and uuid, so that the live
    ** schema tells them apart and a change between them is a step. */
    .azCol = { "DATETIME_TEXT", "TIMESTAMP(0)" }, .zPgArray = "timestamp[]",
    .xConform = conform_datetime, .xCheck = check_datetime },
  [QUAY_T_BLOB] = {
    .zName = "blob", .zWant = "a string",
    .mStored = K(QUAY_TEXT) | K(QUAY_BLOB), .eRead = QUAY_BLOB,
    .azCol = { "BLOB", "BYTEA" }, .zPgArray = "bytea[]" },
  [QUAY_T_DATE] = {
    .zName = "date", .zWant = "a \"YYYY-MM-DD\" string",
    .mFlags = QUAY_TF_ORDERED | QUAY_TF_DATE | QUAY_TF_KEY,
    .mStored = K(QUAY_TEXT), .eRead = QUAY_TEXT,
    .azCol = { "DATE_TEXT", "DATE" }, .zPgArray = "date[]",
    .xConform = conform_date, .xCheck = check_date },
  [QUAY_T_DECIMAL] = {
    .zName = "decimal", .zWant = "a decimal (a string of digits or a number)",
    .mFlags = QUAY_TF_NUMERIC | QUAY_TF_ORDERED | QUAY_TF_NORMALIZES |
              QUAY_TF_PRECISION,
    .mStored = K(QUAY_DECIMAL), .eRead = QUAY_DECIMAL,
    /* SQLite: an integer column (INTEGER affinity: the type name holds
    ** "INT") whose name keeps the precision, so that migrations see a
    ** change of places and rescale the stored integers. */
    .azCol = { "DECIMAL_INT(%d, %d)", "NUMERIC(%d, %d)" },
    .zPgArray = "numeric[]",
    .xConform = conform_decimal, .xCheck = check_decimal },
  [QUAY_T_JSON] = {
    .zName = "json",
    .zWant = "a JSON value (a table, string, number or boolean)",
    .mStored = K(QUAY_JSON), .eRead = QUAY_JSON,
    .azCol = { "JSON_TEXT", "JSONB" }, .zPgArray = "jsonb[]",
    .xConform = conform_json },
  [QUAY_T_UUID] = {
    .zName = "uuid", .zWant = "a UUID string",
    .mFlags = QUAY_TF_ORDERED | QUAY_TF_KEY | QUAY_TF_NORMALIZES |
              QUAY_TF_GENERATED,
    .mStored = K(QUAY_TEXT), .eRead = QUAY_TEXT,
    .azCol = { "UUID_TEXT", "UUID" }, .zPgArray = "uuid[]",
    .xConform = conform_uuid, .xCheck = check_uuid },
};

int quay__type_valid(int eType) {
  return eType >= QUAY_T_ID && eType <= QUAY_T_LAST;
}

const FieldType *quay__ftype(int eType) {
  return quay__type_valid(eType) ? &aType[eType] : &aType[0];
}

const char *quay__type_name(int eType) { return quay__ftype(eType)->zName; }

const char *quay_type_name(int eType) {
  return quay__type_valid(eType) ? aType[eType].zName : NULL;
}

int quay_type_by_name(const char *zName) {
  int i;
  if (zName == NULL) return 0;
  for (i = QUAY_T_ID; i <= QUAY_T_LAST; i++) {
    if (strcmp(aType[i].zName, zName) == 0) return i;
  }
  return 0;
}

unsigned quay_type_flags(int eType) { return quay__ftype(eType)->mFlags; }

void quay__type_sql(Str *p, const Dialect *d, int eType, int nMax,
                    int nDigits, int nPlaces) {
  const char *z = quay__ftype(eType)->azCol[d->iTypeCol];
  if (strchr(z, '%')) {
    quay__str_printf(p, z, nDigits, nPlaces);
  } else {
    quay__str_cat(p, z);
  }
  if (eType == QUAY_T_STRING && nMax > 0) quay__str_printf(p, "(%d)", nMax);
}

int quay__field_hint(const Field *f) {
  return f->eType | (f->nPlaces << QUAY_HINT_PLACES_SHIFT);
}

int quay__expr_hint(const Expr *e) {
  return e->eType | (e->nPlaces << QUAY_HINT_PLACES_SHIFT);
}
/* }================================================================== */


/*
** {==================================================================
** Values for a field
** ===================================================================
*/
int quay__value_conform(quay_model *m, const Field *f, quay_value *v,
                        ValBuf *pBuf, quay_err *pErr) {
  const FieldType *t = quay__ftype(f->eType);
  if (v->type == QUAY_NULL || t->xConform == NULL) return QUAY_OK;
  return t->xConform(m, f, v, pBuf, pErr);
}

int quay__value_conform_owned(quay_model *m, const Field *f, quay_value *v,
                              quay_err *pErr) {
  ValBuf vb;
  quay_value x = *v;
  int rc;
  vb.zHeap = NULL;
  rc = quay__value_conform(m, f, &x, &vb, pErr);
  if (rc == QUAY_OK && QUAY_VALUE_HAS_BYTES(x.type) &&
      (x.u.z == vb.z || (vb.zHeap && x.u.z == vb.zHeap))) {
    char *z = quay__malloc(x.n + 1);
    if (z == NULL) {
      rc = quay__oom(pErr);
    } else {
      memcpy(z, x.u.z, x.n);
      z[x.n] = 0;
      if (QUAY_VALUE_HAS_BYTES(v->type)) quay__free((void *)v->u.z);
      x.u.z = z;
    }
  }
  if (rc == QUAY_OK) *v = x;
  quay__valbuf_free(&vb);
  return rc;
}

int quay__value_fits(quay_model *m, const Field *f, const quay_value *v,
                     int bStore, quay_err *pErr) {
  const FieldType *t = quay__ftype(f->eType);
  if (v->type == QUAY_NULL) return QUAY_OK;
  if (v->type < 0 || v->type > 31 || !(t->mStored & K(v->type))) {
    return FIELD_ERR(m, f, "%s.%s: expected %s, got %s%s", m->zName,
                     f->zName, t->zWant, quay__value_kind(v),
                     v->type == QUAY_REAL && t->mStored == K(QUAY_INT)
                         ? " with a fraction or out of range" : "");
  }
  return t->xCheck ? t->xCheck(m, f, v, bStore, pErr) : QUAY_OK;
}
/* }================================================================== */

/*
** {==================================================================
** Text into another type, as a narrowing migration converts it
** ===================================================================
** SQLite has no casts that refuse: CAST('abc' AS INTEGER) is 0, and a
** text kept in a DATE_TEXT column stays what it was.  A migration from a
** string or text field to another type converts each value here instead
** (drv_sqlite.c quay_conv), taking what PostgreSQL's input functions take
** where Quay's type can hold it, and refuses the rest (migrate.c guards
** the step).  Surrounding white space is ignored, as PostgreSQL ignores
** it (not for uuids and JSON, which keep their own rules).
*/

/* Is z[n] the first n letters of lower-case word w, in any case? */
static int conv_prefix(const char *z, size_t n, const char *w) {
  size_t i;
  for (i = 0; i < n; i++) {
    char c = z[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (w[i] == 0 || c != w[i]) return 0;
  }
  return 1;
}

static int conv_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

/* The digits of decimal text z[n] (sign, digits, '.', exponent) at
** nPlaces places, rounded half away from zero, into *pOut: 0, or 1 when
** it is no number or passes nDigits digits (or an int64). */
static int conv_decimal(const char *z, size_t n, int nPlaces, int nDigits,
                        int64_t *pOut) {
  char aDig[64];
  int nDig = 0, nPoint = -1, bNeg = 0, nExp = 0, bAny = 0, k;
  size_t i = 0;
  uint64_t u = 0;
  if (i < n && (z[i] == '+' || z[i] == '-')) bNeg = z[i++] == '-';
  for (; i < n; i++) {
    if (z[i] >= '0' && z[i] <= '9') {
      bAny = 1;
      if (nDig == 0 && z[i] == '0') {  /* leading zeros: count places */
        if (nPoint >= 0) nPoint++;
        continue;
      }
      if (nDig == (int)sizeof(aDig)) return 1;
      aDig[nDig++] = z[i];
      if (nPoint >= 0) nPoint++;
    } else if (z[i] == '.' && nPoint < 0) {
      nPoint = 0;
    } else {
      break;
    }
  }
  if (!bAny) return 1;
  if (i < n && (z[i] == 'e' || z[i] == 'E')) {
    int bExpNeg = 0, bExpAny = 0;
    i++;
    /* PostgreSQL's numeric input reads the exponent with strtol, which
    ** skips white space first ("4e 1" is 40) */
    while (i < n && conv_space(z[i])) i++;
    if (i < n && (z[i] == '+' || z[i] == '-')) bExpNeg = z[i++] == '-';
    for (; i < n && z[i] >= '0' && z[i] <= '9'; i++) {
      bExpAny = 1;
      if (nExp < 10000) nExp = nExp * 10 + (z[i] - '0');
    }
    if (!bExpAny) return 1;
    if (bExpNeg) nExp = -nExp;
  }
  if (i != n) return 1;
  /* value = digits * 10^(nExp - places written) */
  nExp -= nPoint < 0 ? 0 : nPoint;
  /* scaled = digits * 10^(nExp + nPlaces) */
  k = nExp + nPlaces;
  if (k < 0) {                          /* drop -k digits, rounding */
    int nKeep = nDig + k, bUp = 0;
    if (nKeep < 0) {
      nKeep = 0;
      nDig = 0;
    } else {
      bUp = nKeep < nDig && aDig[nKeep] >= '5';
      nDig = nKeep;
    }
    for (i = 0; (int)i < nDig; i++) {
      if (u > (UINT64_MAX - 9) / 10) return 1;
      u = u * 10 + (uint64_t)(aDig[i] - '0');
    }
    u += (uint64_t)bUp;
  } else if (nDig > 0) {
    if (nDig + k > 19) return 1;
    for (i = 0; (int)i < nDig; i++) u = u * 10 + (uint64_t)(aDig[i] - '0');
    for (i = 0; (int)i < k; i++) u *= 10;
  }
  /* at most nDigits digits in all (10^nDigits > u) */
  {
    uint64_t lim = 1;
    for (k = 0; k < nDigits && k < 19; k++) lim *= 10;
    if (nDigits < 19 && u >= lim) return 1;
    if (u > (uint64_t)INT64_MAX + (uint64_t)bNeg) return 1;  /* -2^63 too */
  }
  *pOut = bNeg ? (int64_t)(0 - u) : (int64_t)u;
  return 0;
}

/* PostgreSQL's boolean input: a prefix of true / false / yes / no, on /
** off (two letters at least), 1 / 0: 1 or 0, else -1. */
static int conv_bool(const char *z, size_t n) {
  static const struct { const char *zWord; size_t nMin; int b; } aWord[] = {
    { "true", 1, 1 }, { "false", 1, 0 }, { "yes", 1, 1 }, { "no", 1, 0 },
    { "on", 2, 1 }, { "off", 2, 0 }, { "1", 1, 1 }, { "0", 1, 0 },
  };
  size_t k;
  for (k = 0; k < sizeof(aWord) / sizeof(aWord[0]); k++) {
    const char *w = aWord[k].zWord;
    if (n >= aWord[k].nMin && conv_prefix(z, n, w)) return aWord[k].b;
  }
  return -1;
}

/* "YYYY-M-D" (one or two digits) or "YYYYMMDD" as "YYYY-MM-DD" in zOut:
** 0, or 1 when it names no day. */
static int conv_date(const char *z, size_t n, char *zOut) {
  int a[3] = { 0, 0, 0 }, nd[3] = { 0, 0, 0 }, p = 0;
  size_t i;
  for (i = 0; i < n && z[i] >= '0' && z[i] <= '9'; i++) {}
  if (n == 8 && i == 8) {
    snprintf(zOut, 11, "%.4s-%.2s-%.2s", z, z + 4, z + 6);
  } else {
    for (i = 0; i < n; i++) {
      if (z[i] == '-' && p < 2 && nd[p] > 0) {
        p++;
      } else if (z[i] >= '0' && z[i] <= '9' && nd[p] < (p ? 2 : 4)) {
        a[p] = a[p] * 10 + (z[i] - '0');
        nd[p]++;
      } else {
        return 1;
      }
    }
    if (p != 2 || nd[0] != 4 || nd[2] == 0) return 1;
    snprintf(zOut, 11, "%04d-%02d-%02d", a[0], a[1], a[2]);
  }
  return date_why(zOut, 10) != NULL;
}

/* PostgreSQL's uuid input (any case, hyphens after groups of four hex
** digits, in braces or not) as the lower-case 8-4-4-4-12 form. */
static int conv_uuid(const char *z, size_t n, char *zOut) {
  int nHex = 0, nGroup = 0;
  size_t i;
  if (n >= 2 && z[0] == '{' && z[n - 1] == '}') {
    z++;
    n -= 2;
  }
  for (i = 0; i < n; i++) {
    char c = z[i];
    if (c == '-' && nHex > 0 && nHex < 32 && nGroup == 4) {
      nGroup = 0;
      continue;
    }
    if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || nHex == 32) {
      return 1;
    }
    if (nGroup == 4) nGroup = 0;
    nGroup++;
    zOut[nHex + (nHex >= 8) + (nHex >= 12) + (nHex >= 16) + (nHex >= 20)] = c;
    nHex++;
  }
  if (nHex != 32) return 1;
  zOut[8] = zOut[13] = zOut[18] = zOut[23] = '-';
  zOut[36] = 0;
  return 0;
}

/* *pOut is the n bytes of text at z: 0. */
static int conv_text(quay_value *pOut, const char *z, size_t n) {
  pOut->type = QUAY_TEXT;
  pOut->u.z = z;
  pOut->n = n;
  return 0;
}

int quay__text_convert(int eType, int nPlaces, int nDigits, const char *z,
                       size_t n, quay_value *pOut, ValBuf *pBuf) {
  size_t a = 0, b = n;
  if (eType != QUAY_T_UUID && eType != QUAY_T_JSON) {
    while (a < b && conv_space(z[a])) a++;
    while (b > a && conv_space(z[b - 1])) b--;
  }
  z += a;
  n = b - a;
  memset(pOut, 0, sizeof(*pOut));
  switch (eType) {
    case QUAY_T_INTEGER:
    case QUAY_T_ID: {
      int64_t v;
      if (n == 0 || memchr(z, '.', n) || memchr(z, 'e', n) ||
          memchr(z, 'E', n) || conv_decimal(z, n, 0, 19, &v)) {
        return 1;
      }
      pOut->type = QUAY_INT;
      pOut->u.i = v;
      return 0;
    }
    case QUAY_T_NUMBER: {
      char zNum[400], *zEnd;
      size_t i, k = 0;
      /* what strtod reads (as PostgreSQL's float8in: hex too), or the
      ** words for the infinities; NaN is no value of a number field */
      if (n == 0 || n >= sizeof(zNum)) return 1;
      if (z[0] == '+' || z[0] == '-') k = 1;
      if ((n - k == 3 || n - k == 8) &&
          conv_prefix(z + k, n - k, "infinity")) {
        pOut->type = QUAY_REAL;
        pOut->u.r = z[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        return 0;
      }
      for (i = 0; i < n; i++) {
        if (z[i] == 0 || conv_space(z[i])) return 1;
      }
      memcpy(zNum, z, n);
      zNum[n] = 0;
      errno = 0;
      pOut->u.r = strtod(zNum, &zEnd);
      /* a NaN, or a number past a double or so small it reads as 0
      ** (PostgreSQL: out of range; a subnormal one it takes) */
      if (*zEnd != 0 || !isfinite(pOut->u.r) ||
          (errno == ERANGE && pOut->u.r == 0)) {
        return 1;
      }
      pOut->type = QUAY_REAL;
      return 0;
    }
    case QUAY_T_DECIMAL: {
      int64_t v;
      if (conv_decimal(z, n, nPlaces, nDigits, &v)) return 1;
      pOut->type = QUAY_INT;            /* the scaled integer */
      pOut->u.i = v;
      return 0;
    }
    case QUAY_T_BOOLEAN: {
      int v = conv_bool(z, n);
      if (v < 0) return 1;
      pOut->type = QUAY_INT;
      pOut->u.i = v;
      return 0;
    }
    case QUAY_T_DATE:
      if (conv_date(z, n, pBuf->z)) return 1;
      return conv_text(pOut, pBuf->z, 10);
    case QUAY_T_DATETIME: {
      /* the date as a date is read, then the time and zone as Quay's
      ** datetime input reads them; a date alone is its midnight */
      char zTmp[64];
      size_t iSep = 0;
      while (iSep < n && z[iSep] != ' ' && z[iSep] != 'T' && z[iSep] != 't') {
        iSep++;
      }
      if (conv_date(z, iSep, pBuf->z)) return 1;
      if (iSep == n) {
        memcpy(pBuf->z + 10, " 00:00:00", 10);
      } else {
        /* one 'T' for the separator (spaces, as PostgreSQL takes them),
        ** so HH:MM reads as ISO 8601 does */
        size_t iTime = iSep + 1;
        if (z[iSep] == ' ') {
          while (iTime < n && z[iTime] == ' ') iTime++;
        }
        if (11 + (n - iTime) >= sizeof(zTmp)) return 1;
        memcpy(zTmp, pBuf->z, 10);
        zTmp[10] = 'T';
        memcpy(zTmp + 11, z + iTime, n - iTime);
        if (quay__datetime_norm(zTmp, 11 + (n - iTime), pBuf->z) != NULL) {
          return 1;
        }
      }
      return conv_text(pOut, pBuf->z, 19);
    }
    case QUAY_T_UUID:
      if (conv_uuid(z, n, pBuf->z)) return 1;
      return conv_text(pOut, pBuf->z, 36);
    case QUAY_T_JSON: {
      json_error_t e;
      json_t *j;
      size_t m;
      char *zOut;
      if (quay__utf8_len(z, n) < 0 || memchr(z, 0, n)) return 1;
      /* a key given twice keeps its last value, as jsonb keeps it */
      j = json_loadb(z, n, JSON_DECODE_ANY, &e);
      if (j == NULL) return 1;
      m = json_dumpb(j, NULL, 0, JSON_DUMP_FLAGS);
      zOut = m < sizeof(pBuf->z) ? pBuf->z
                                 : (pBuf->zHeap = quay__malloc(m + 1));
      if (zOut == NULL || json_dumpb(j, zOut, m, JSON_DUMP_FLAGS) != m) {
        json_decref(j);
        return -1;
      }
      zOut[m] = 0;
      json_decref(j);
      return conv_text(pOut, zOut, m);
    }
    default:
      return 1;
  }
}
/* }================================================================== */
