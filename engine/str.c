/*
** engine/str.c
** Growable strings, identifier quoting, the string map and the hash.
** See LICENSE
**
** Str is the SQL builder's buffer.  It is sticky on OOM: after a failed
** allocation every append is a no-op and `oom` stays set, so a builder
** checks once at the end instead of after every append.  Identifiers are
** always written through quay__str_ident, which double-quotes and doubles
** embedded quotes, so even a hostile declared name cannot break out.
*/
#include "quayInt.h"

#include <stdio.h>

void quay__str_init(Str *p) {
  p->z = NULL;
  p->n = 0;
  p->nAlloc = 0;
  p->oom = 0;
}

void quay__str_free(Str *p) {
  quay__free(p->z);
  quay__str_init(p);
}

/* Empty the string, keeping its memory. */
void quay__str_reset(Str *p) {
  p->n = 0;
  if (p->z) p->z[0] = 0;
}

/* Make room for n more bytes plus a NUL.  0 on failure. */
static int str_grow(Str *p, size_t n) {
  size_t nNeed, nNew;
  char *zNew;
  if (p->oom) return 0;
  nNeed = p->n + n + 1;
  if (nNeed <= p->nAlloc) return 1;
  nNew = p->nAlloc ? p->nAlloc * 2 : 128;
  while (nNew < nNeed) nNew *= 2;
  zNew = quay__realloc(p->z, nNew);
  if (zNew == NULL) {
    p->oom = 1;
    return 0;
  }
  p->z = zNew;
  p->nAlloc = nNew;
  return 1;
}

void quay__str_append(Str *p, const char *z, size_t n) {
  if (!str_grow(p, n)) return;
  if (n) memcpy(p->z + p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}

void quay__str_cat(Str *p, const char *z) {
  quay__str_append(p, z, strlen(z));
}

void quay__str_char(Str *p, char c) {
  if (!str_grow(p, 1)) return;
  p->z[p->n++] = c;
  p->z[p->n] = 0;
}

/*
** Append a decimal 64-bit integer (no printf: key lists of 100k keys are
** built this way, scripts/bench W2).
*/
void quay__str_int(Str *p, int64_t v) {
  char z[24];
  int i = (int)sizeof(z);
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    z[--i] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u);
  if (v < 0) z[--i] = '-';
  quay__str_append(p, z + i, sizeof(z) - (size_t)i);
}

void quay__str_printf(Str *p, const char *zFmt, ...) {
  va_list ap;
  int n;
  char aBuf[256];
  va_start(ap, zFmt);
  n = vsnprintf(aBuf, sizeof(aBuf), zFmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof(aBuf)) {
    quay__str_append(p, aBuf, (size_t)n);
    return;
  }
  if (!str_grow(p, (size_t)n)) return;
  va_start(ap, zFmt);
  vsnprintf(p->z + p->n, (size_t)n + 1, zFmt, ap);
  va_end(ap);
  p->n += (size_t)n;
}

/*
** Append a quoted identifier.  Embedded double quotes are doubled, so the
** result is one identifier whatever the name holds.
*/
void quay__str_ident(Str *p, const char *zId) {
  const char *z;
  quay__str_char(p, '"');
  for (z = zId; *z; z++) {
    if (*z == '"') quay__str_char(p, '"');
    quay__str_char(p, *z);
  }
  quay__str_char(p, '"');
}

void quay__str_col(Str *p, const char *zAlias, const char *zCol) {
  if (zAlias) {
    quay__str_ident(p, zAlias);
    quay__str_char(p, '.');
  }
  quay__str_ident(p, zCol);
}

char *quay__str_take(Str *p) {
  char *z;
  if (p->oom) {
    quay__str_free(p);
    return NULL;
  }
  if (p->z == NULL) {
    return quay__strdup("");
  }
  z = p->z;
  quay__str_init(p);
  return z;
}

/*
** {==================================================================
** Hash and string map
** ===================================================================
*/
/* FNV-1a, 64 bit. */
uint64_t quay__hash_bytes(const void *p, size_t n) {
  const unsigned char *z = p;
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= z[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

void quay__smap_init(Smap *p) {
  p->azKey = NULL;
  p->aVal = NULL;
  p->nSlot = 0;
  p->nUsed = 0;
}

void quay__smap_free(Smap *p) {
  quay__free((void *)p->azKey);
  quay__free(p->aVal);
  quay__smap_init(p);
}

static int smap_slot(const Smap *p, const char *zKey) {
  uint64_t h = quay__hash_bytes(zKey, strlen(zKey));
  int mask = p->nSlot - 1;
  int i = (int)(h & (uint64_t)mask);
  while (p->azKey[i] && strcmp(p->azKey[i], zKey) != 0) {
    i = (i + 1) & mask;
  }
  return i;
}

/* Insert or replace.  Keys are borrowed and must outlive the map. */
int quay__smap_put(Smap *p, const char *zKey, int v) {
  int i;
  if (p->nUsed * 2 + 2 > p->nSlot) {
    int nNew = p->nSlot ? p->nSlot * 2 : 16;
    Smap m;
    int j;
    m.azKey = quay__calloc(sizeof(char *) * (size_t)nNew);
    m.aVal = quay__malloc(sizeof(int) * (size_t)nNew);
    if (m.azKey == NULL || m.aVal == NULL) {
      quay__free((void *)m.azKey);
      quay__free(m.aVal);
      return QUAY_ENOMEM;
    }
    m.nSlot = nNew;
    m.nUsed = p->nUsed;
    for (j = 0; j < p->nSlot; j++) {
      if (p->azKey[j]) {
        int k = smap_slot(&m, p->azKey[j]);
        m.azKey[k] = p->azKey[j];
        m.aVal[k] = p->aVal[j];
      }
    }
    quay__smap_free(p);
    *p = m;
  }
  i = smap_slot(p, zKey);
  if (p->azKey[i] == NULL) {
    p->azKey[i] = zKey;
    p->nUsed++;
  }
  p->aVal[i] = v;
  return QUAY_OK;
}

/*
** Remove zKey (if present) without allocating: linear-probing deletion,
** re-placing the rest of the probe cluster.
*/
void quay__smap_del(Smap *p, const char *zKey) {
  int i, j, mask;
  if (p->nSlot == 0) return;
  mask = p->nSlot - 1;
  i = smap_slot(p, zKey);
  if (p->azKey[i] == NULL) return;
  p->azKey[i] = NULL;
  p->nUsed--;
  for (j = (i + 1) & mask; p->azKey[j]; j = (j + 1) & mask) {
    const char *z = p->azKey[j];
    int v = p->aVal[j], k;
    p->azKey[j] = NULL;
    k = smap_slot(p, z);
    p->azKey[k] = z;
    p->aVal[k] = v;
  }
}

int quay__smap_get(const Smap *p, const char *zKey) {
  int i;
  if (p->nSlot == 0) return -1;
  i = smap_slot(p, zKey);
  return p->azKey[i] ? p->aVal[i] : -1;
}
/* }================================================================== */
