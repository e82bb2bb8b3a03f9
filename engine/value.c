/*
** engine/value.c
** quay_value helpers, UTF-8 counting, UTC timestamps and the datetime
** parser, key sets.  The conversions and checks of values for a field
** are in types.c, with the field-type table.
** See LICENSE
**
** Values cross the engine boundary borrowed; whatever the engine keeps
** (condition values, defaults, scope keys) is deep-copied here.  Key sets
** map owner keys to dense indexes for the batched loaders: the loader
** collects each owner's key once, and each child row finds its owner group
** by one hash probe, with no per-row work in the binding's language.
*/
#define _POSIX_C_SOURCE 200809L
#include "quayInt.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

int quay__value_copy(quay_value *pDst, const quay_value *pSrc) {
  *pDst = *pSrc;
  if (QUAY_VALUE_HAS_BYTES(pSrc->type)) {
    char *z = quay__malloc(pSrc->n + 1);
    if (z == NULL) {
      pDst->type = QUAY_NULL;
      return QUAY_ENOMEM;
    }
    if (pSrc->n) memcpy(z, pSrc->u.z, pSrc->n);
    z[pSrc->n] = 0;
    pDst->u.z = z;
  } else if (pSrc->type == QUAY_LIST) {
    quay_value *a = quay__calloc(sizeof(quay_value) * (pSrc->n + 1));
    size_t i;
    if (a == NULL) {
      pDst->type = QUAY_NULL;
      return QUAY_ENOMEM;
    }
    for (i = 0; i < pSrc->n; i++) {
      if (quay__value_copy(&a[i], &pSrc->u.a[i])) {
        size_t j;
        for (j = 0; j < i; j++) quay__value_clear(&a[j]);
        quay__free(a);
        pDst->type = QUAY_NULL;
        return QUAY_ENOMEM;
      }
    }
    pDst->u.a = a;
  }
  return QUAY_OK;
}

/* Why value p is not one a host may pass, or NULL when it is fine. */
static const char *value_flaw(const quay_value *p, int bInList) {
  size_t i;
  if (p->type < QUAY_NULL || p->type > QUAY_JSON) return "an unknown type";
  if (QUAY_VALUE_HAS_BYTES(p->type) && p->n > 0 && p->u.z == NULL) {
    return "n bytes at a NULL pointer";
  }
  if (p->type == QUAY_RECORD &&
      (p->u.rec.xGet == NULL || p->u.rec.pModel == NULL)) {
    return "a record without its model or xGet";
  }
  if (p->type == QUAY_LIST) {
    if (bInList) return "a list inside a list";
    if (p->n > 0 && p->u.a == NULL) return "n items at a NULL pointer";
    for (i = 0; i < p->n; i++) {
      const char *z = value_flaw(&p->u.a[i], 1);
      if (z) return z;
    }
  }
  return NULL;
}

/*
** Check the n values a host passed to zFn (a may be NULL when n is 0):
** a known type, bytes and list items present, no list in a list, a
** record with its model and xGet.  QUAY_EMISUSE naming zFn, the value
** and the flaw otherwise.
*/
int quay__values_check(quay_err *pErr, const char *zFn, const quay_value *a,
                       size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    const char *z = value_flaw(&a[i], 0);
    if (z) {
      return quay__err(pErr, QUAY_EMISUSE, "%s: value %d is not a valid "
                       "quay_value (%s)", zFn, (int)i + 1, z);
    }
  }
  return QUAY_OK;
}

void quay__value_clear(quay_value *p) {
  if (QUAY_VALUE_HAS_BYTES(p->type)) {
    quay__free((void *)p->u.z);
  } else if (p->type == QUAY_LIST) {
    size_t i;
    for (i = 0; i < p->n; i++) quay__value_clear((quay_value *)&p->u.a[i]);
    quay__free((void *)p->u.a);
  }
  p->type = QUAY_NULL;
  p->n = 0;
}

int quay__value_eq(const quay_value *a, const quay_value *b) {
  if (a->type == QUAY_INT && b->type == QUAY_REAL) {
    return (double)a->u.i == b->u.r;
  }
  if (a->type == QUAY_REAL && b->type == QUAY_INT) {
    return a->u.r == (double)b->u.i;
  }
  if (a->type != b->type) return 0;
  switch (a->type) {
    case QUAY_NULL: return 1;
    case QUAY_INT: return a->u.i == b->u.i;
    case QUAY_REAL: return a->u.r == b->u.r;
    case QUAY_BOOL: return (a->u.b != 0) == (b->u.b != 0);
    case QUAY_TEXT:
    case QUAY_BLOB:
    case QUAY_DECIMAL:
    case QUAY_JSON:
      return a->n == b->n && (a->n == 0 || memcmp(a->u.z, b->u.z, a->n) == 0);
    default: return 0;
  }
}

/* What a value is, for messages ("a string", "nil"). */
const char *quay__value_kind(const quay_value *p) {
  switch (p->type) {
    case QUAY_NULL: return "null";
    case QUAY_INT: return "an integer";
    case QUAY_REAL: return "a number";
    case QUAY_TEXT: return "a string";
    case QUAY_BLOB: return "a blob";
    case QUAY_BOOL: return "a boolean";
    case QUAY_RECORD: return "a record";
    case QUAY_LIST: return "a list";
    case QUAY_DECIMAL: return "a decimal";
    case QUAY_JSON: return "a JSON document (a table)";
  }
  return "a value";
}

/*
** Count code points of well-formed UTF-8 (no overlongs, no surrogates, at
** most U+10FFFF); -1 for anything else.
*/
long quay__utf8_len(const char *z, size_t n) {
  const unsigned char *s = (const unsigned char *)z;
  size_t i = 0;
  long nCp = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
    } else {
      int nCont;
      unsigned cp;
      size_t k;
      if (c >= 0xC2 && c <= 0xDF) { nCont = 1; cp = c & 0x1F; }
      else if (c >= 0xE0 && c <= 0xEF) { nCont = 2; cp = c & 0x0F; }
      else if (c >= 0xF0 && c <= 0xF4) { nCont = 3; cp = c & 0x07; }
      else return -1;
      if (i + (size_t)nCont >= n) return -1;
      for (k = 1; k <= (size_t)nCont; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i + k] & 0x3F);
      }
      if ((nCont == 2 && cp < 0x800) || (nCont == 3 && cp < 0x10000) ||
          cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -1;
      }
      i += (size_t)nCont + 1;
    }
    nCp++;
  }
  return nCp;
}

void quay__now_utc(char *z) {
  time_t t = time(NULL);
  struct tm tm;
  char zBuf[80];
  gmtime_r(&t, &tm);
  snprintf(zBuf, sizeof(zBuf), "%04d-%02d-%02d %02d:%02d:%02d",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec);
  memcpy(z, zBuf, 19);
  z[19] = 0;
}

/*
** {==================================================================
** Datetimes
** ===================================================================
** One parser serves stored values, filter values and declared defaults,
** so every backend sees the same normal form: UTC text "YYYY-MM-DD
** HH:MM:SS" (SQLite compares it as text, PostgreSQL reads it into
** TIMESTAMP(0)).  Accepted input:
**   YYYY-MM-DD HH:MM:SS          the normal form itself
**   YYYY-MM-DDTHH:MM:SS          ISO 8601 / RFC 3339 ('T' or 't')
** each optionally followed by fractional seconds (".fff" or ",fff",
** truncated to the second, never rounded up) and by a zone: "Z" (or
** "z"), "+hh:mm", "-hh:mm", "+hhmm" or "+hh", converted to UTC.
** Years run from 0001 to 9999 (also after the conversion to UTC); a date
** must exist in the (proleptic Gregorian) calendar, so 2023-02-29,
** 2024-02-30, month 13 and hour 24 are refused on both backends, where
** SQLite alone would store them and PostgreSQL would fail with a bare sql
** error.  Leap seconds (:60) are refused.  quay__is_date checks a
** calendar date on its own, for a date-only type.
*/
static int leap_year(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Non-0 when y-mo-d is a day of the calendar (years 1 to 9999). */
int quay__is_date(int y, int mo, int d) {
  static const unsigned char aDays[12] = {
    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
  };
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1) return 0;
  if (mo == 2 && leap_year(y)) return d <= 29;
  return d <= aDays[mo - 1];
}

/* The n-digit decimal number at z, or -1 when z holds a non-digit. */
static int dec(const char *z, int n) {
  int i, v = 0;
  for (i = 0; i < n; i++) {
    if (z[i] < '0' || z[i] > '9') return -1;
    v = v * 10 + (z[i] - '0');
  }
  return v;
}

/*
** Days from 1970-01-01 to y-m-d, and back (the civil calendar algorithms
** of H. Hinnant, valid for every year Quay accepts).
*/
static int64_t days_from_civil(int y, int m, int d) {
  int64_t yy = y - (m <= 2), era, yoe, doy, doe;
  era = (yy >= 0 ? yy : yy - 399) / 400;
  yoe = yy - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *py, int *pm, int *pd) {
  int64_t era, doe, yoe, doy, mp, y;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *pd = (int)(doy - (153 * mp + 2) / 5 + 1);
  *pm = (int)(mp < 10 ? mp + 3 : mp - 9);
  *py = (int)(y + (*pm <= 2));
}

/*
** "YYYY-MM-DD" at the start of z (n bytes): *py, *pm, *pd.  Returns NULL,
** or why the text is not a date.
*/
static const char *parse_date(const char *z, size_t n, int *py, int *pm,
                              int *pd) {
  if (n < 10 || z[4] != '-' || z[7] != '-' || (*py = dec(z, 4)) < 0 ||
      (*pm = dec(z + 5, 2)) < 0 || (*pd = dec(z + 8, 2)) < 0) {
    return "expected YYYY-MM-DD";
  }
  if (*py < 1) return "year 0000 does not exist";
  if (*pm < 1 || *pm > 12) return "the month must be 01 to 12";
  if (!quay__is_date(*py, *pm, *pd)) return "that day does not exist";
  return NULL;
}

/*
** Normalize datetime text z (n bytes, not NUL-terminated) into zOut (20
** bytes, NUL-terminated): NULL on success, else a static phrase saying
** why z is not a datetime (zOut is then unspecified).
*/
const char *quay__datetime_norm(const char *z, size_t n, char *zOut) {
  int y, mo, d, h, mi, sec, offset = 0;     /* offset in minutes */
  size_t i;
  const char *zWhy = parse_date(z, n, &y, &mo, &d);
  if (zWhy) return zWhy;
  if (n < 16 || (z[10] != ' ' && z[10] != 'T' && z[10] != 't') ||
      z[13] != ':' || (h = dec(z + 11, 2)) < 0 ||
      (mi = dec(z + 14, 2)) < 0) {
    return "expected a time HH:MM:SS after the date";
  }
  if (n > 16 && z[16] == ':') {
    if (n < 19 || (sec = dec(z + 17, 2)) < 0) {
      return "expected a time HH:MM:SS after the date";
    }
    i = 19;
  } else if (z[10] != ' ') {
    sec = 0;                  /* ISO 8601 (T) lets the seconds out: HH:MM */
    i = 16;
  } else {
    /* Quay's own form ("YYYY-MM-DD HH:MM:SS") always has them */
    return "expected a time HH:MM:SS after the date";
  }
  if (h > 23 || mi > 59 || sec > 59) {
    return "the time must be 00:00:00 to 23:59:59";
  }
  if (i == 19 && i < n && (z[i] == '.' || z[i] == ',')) {
    size_t k = ++i;
    while (i < n && z[i] >= '0' && z[i] <= '9') i++;
    if (i == k) return "expected digits after the decimal separator";
  }
  if (i < n && (z[i] == 'Z' || z[i] == 'z')) {
    i++;
  } else if (i < n && (z[i] == '+' || z[i] == '-')) {
    int sign = z[i] == '-' ? -1 : 1, oh, om = 0;
    i++;
    if (n - i < 2 || (oh = dec(z + i, 2)) < 0) {
      return "expected a zone offset +hh:mm, +hhmm or +hh";
    }
    i += 2;
    if (i < n && z[i] == ':') i++;
    if (i < n) {
      if (n - i < 2 || (om = dec(z + i, 2)) < 0) {
        return "expected a zone offset +hh:mm, +hhmm or +hh";
      }
      i += 2;
    } else if (z[i - 1] == ':') {
      return "expected a zone offset +hh:mm, +hhmm or +hh";
    }
    if (oh > 23 || om > 59) return "the zone offset must be below 24:00";
    offset = sign * (oh * 60 + om);
  }
  if (i != n) return "unexpected text after the time";
  if (offset) {
    int64_t t = days_from_civil(y, mo, d) * 1440 + h * 60 + mi - offset;
    int64_t day = t >= 0 ? t / 1440 : -((-t + 1439) / 1440);
    int64_t m = t - day * 1440;
    civil_from_days(day, &y, &mo, &d);
    h = (int)(m / 60);
    mi = (int)(m % 60);
    if (y < 1 || y > 9999) return "the UTC time is outside years 0001-9999";
  }
  {
    char zBuf[32];
    snprintf(zBuf, sizeof(zBuf), "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h,
             mi, sec);
    memcpy(zOut, zBuf, 20);
  }
  return NULL;
}

/* "YYYY-MM-DD HH:MM:SS" exactly, naming a time that exists. */
int quay__is_datetime(const char *z, size_t n) {
  char zNorm[20];
  return n == 19 && quay__datetime_norm(z, n, zNorm) == NULL &&
         memcmp(zNorm, z, 19) == 0;
}
/* }================================================================== */




/*
** {==================================================================
** Key sets
** ===================================================================
** Open addressing, linear probing.  Integer keys (the common case) live
** in the slot itself, so a probe touches one cache line; text keys keep
** their hash in the slot and their bytes in one growing pool.  Entries
** are dense, in insertion order (the dense index), for quay_keyset_values.
*/
typedef struct KsSlot {
  int64_t k;                /* INT: the key; TEXT: its hash */
  int32_t idx;              /* entry index + 1; 0 = empty */
  int32_t isText;
} KsSlot;

typedef struct KsEntry {
  int type;                 /* QUAY_INT or QUAY_TEXT */
  int64_t i;                /* INT value, or offset into the pool */
  size_t n;                 /* TEXT length */
} KsEntry;

struct quay_keyset {
  KsEntry *aEntry;          /* dense, in insertion order */
  int nEntry, nEntryAlloc;
  KsSlot *aSlot;
  int nSlot;                /* power of two, at most half full */
  char *zPool; size_t nPool, nPoolAlloc;
};

int quay_keyset_new(quay_keyset **ppKs, quay_err *pErr) {
  *ppKs = quay__calloc(sizeof(quay_keyset));
  if (*ppKs == NULL) return quay__oom(pErr);
  return QUAY_OK;
}

void quay_keyset_free(quay_keyset *pKs) {
  if (pKs == NULL) return;
  quay__free(pKs->aEntry);
  quay__free(pKs->aSlot);
  quay__free(pKs->zPool);
  quay__free(pKs);
}

int quay_keyset_count(const quay_keyset *pKs) {
  return pKs ? pKs->nEntry : 0;
}

/* Normalize a key: integral reals become ints, bools ints, blobs text.
** 0 if the value cannot be a key (NULL, non-integral real). */
static int ks_norm(const quay_value *p, quay_value *pOut) {
  *pOut = *p;
  switch (p->type) {
    case QUAY_INT: case QUAY_TEXT: return 1;
    case QUAY_BLOB: pOut->type = QUAY_TEXT; return 1;
    case QUAY_REAL:
      if (p->u.r >= -9.2e18 && p->u.r <= 9.2e18 &&
          (double)(int64_t)p->u.r == p->u.r) {
        pOut->type = QUAY_INT;
        pOut->u.i = (int64_t)p->u.r;
        return 1;
      }
      return 0;
    case QUAY_BOOL:
      pOut->type = QUAY_INT;
      pOut->u.i = p->u.b ? 1 : 0;
      return 1;
  }
  return 0;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* The slot holding key k (normalized), or the empty slot where it goes. */
static int ks_probe(const quay_keyset *pKs, const quay_value *k,
                    int64_t *pKey) {
  int mask = pKs->nSlot - 1, i;
  if (k->type == QUAY_INT) {
    *pKey = k->u.i;
    i = (int)(mix64((uint64_t)k->u.i) & (uint64_t)mask);
    while (pKs->aSlot[i].idx) {
      const KsSlot *s = &pKs->aSlot[i];
      if (!s->isText && s->k == k->u.i) return i;
      i = (i + 1) & mask;
    }
    return i;
  }
  *pKey = (int64_t)quay__hash_bytes(k->u.z, k->n);
  i = (int)(mix64((uint64_t)*pKey) & (uint64_t)mask);
  while (pKs->aSlot[i].idx) {
    const KsSlot *s = &pKs->aSlot[i];
    if (s->isText && s->k == *pKey) {
      const KsEntry *e = &pKs->aEntry[s->idx - 1];
      if (e->n == k->n && memcmp(pKs->zPool + e->i, k->u.z, k->n) == 0) {
        return i;
      }
    }
    i = (i + 1) & mask;
  }
  return i;
}

static int ks_rehash(quay_keyset *pKs) {
  int nNew = pKs->nSlot ? pKs->nSlot * 2 : 64, j;
  KsSlot *aNew = quay__calloc(sizeof(KsSlot) * (size_t)nNew);
  KsSlot *aOld = pKs->aSlot;
  if (aNew == NULL) return QUAY_ENOMEM;
  for (j = 0; j < pKs->nSlot; j++) {
    if (aOld[j].idx) {
      int i = (int)(mix64((uint64_t)aOld[j].k) & (uint64_t)(nNew - 1));
      while (aNew[i].idx) i = (i + 1) & (nNew - 1);
      aNew[i] = aOld[j];
    }
  }
  quay__free(aOld);
  pKs->aSlot = aNew;
  pKs->nSlot = nNew;
  return QUAY_OK;
}

int quay_keyset_add(quay_keyset *pKs, const quay_value *pKey, int *piIndex,
                    quay_err *pErr) {
  quay_value k;
  int64_t key;
  int i;
  KsEntry *e;
  *piIndex = -1;
  if (!ks_norm(pKey, &k)) return QUAY_OK;
  if ((pKs->nEntry + 1) * 2 > pKs->nSlot) {
    if (ks_rehash(pKs)) return quay__oom(pErr);
  }
  i = ks_probe(pKs, &k, &key);
  if (pKs->aSlot[i].idx) {
    *piIndex = pKs->aSlot[i].idx - 1;
    return QUAY_OK;
  }
  if (pKs->nEntry == pKs->nEntryAlloc) {
    int nNew = pKs->nEntryAlloc ? pKs->nEntryAlloc * 2 : 64;
    KsEntry *aNew = quay__realloc(pKs->aEntry, sizeof(KsEntry) * (size_t)nNew);
    if (aNew == NULL) return quay__oom(pErr);
    pKs->aEntry = aNew;
    pKs->nEntryAlloc = nNew;
  }
  e = &pKs->aEntry[pKs->nEntry];
  e->type = k.type;
  e->n = 0;
  if (k.type == QUAY_INT) {
    e->i = k.u.i;
  } else {
    if (pKs->nPool + k.n + 1 > pKs->nPoolAlloc) {
      size_t nNew = pKs->nPoolAlloc ? pKs->nPoolAlloc * 2 : 1024;
      char *zNew;
      while (nNew < pKs->nPool + k.n + 1) nNew *= 2;
      zNew = quay__realloc(pKs->zPool, nNew);
      if (zNew == NULL) return quay__oom(pErr);
      pKs->zPool = zNew;
      pKs->nPoolAlloc = nNew;
    }
    if (k.n) memcpy(pKs->zPool + pKs->nPool, k.u.z, k.n);
    pKs->zPool[pKs->nPool + k.n] = 0;
    e->i = (int64_t)pKs->nPool;
    e->n = k.n;
    pKs->nPool += k.n + 1;
  }
  pKs->aSlot[i].k = key;
  pKs->aSlot[i].isText = k.type != QUAY_INT;
  pKs->aSlot[i].idx = ++pKs->nEntry;
  *piIndex = pKs->nEntry - 1;
  return QUAY_OK;
}

int quay_keyset_find(const quay_keyset *pKs, const quay_value *pKey) {
  quay_value k;
  int64_t key;
  int i;
  if (pKs->nSlot == 0 || !ks_norm(pKey, &k)) return -1;
  i = ks_probe(pKs, &k, &key);
  return pKs->aSlot[i].idx - 1;
}

/*
** The keys as a value list (borrowed; valid until the next add).  Used by
** the loader to bind the key array.  Returns QUAY_ENOMEM on failure.
*/
int quay__keyset_values(const quay_keyset *pKs, Arena *pArena,
                        quay_value **paOut) {
  quay_value *a;
  int i;
  a = quay__arena_alloc(pArena, sizeof(quay_value) * (size_t)(pKs->nEntry + 1));
  *paOut = a;
  if (a == NULL) return QUAY_ENOMEM;
  for (i = 0; i < pKs->nEntry; i++) {
    const KsEntry *e = &pKs->aEntry[i];
    if (e->type == QUAY_INT) {
      a[i].type = QUAY_INT;
      a[i].u.i = e->i;
    } else {
      a[i].type = QUAY_TEXT;
      a[i].u.z = pKs->zPool + e->i;
      a[i].n = e->n;
    }
  }
  return QUAY_OK;
}
/* }================================================================== */
