/*
** fuzz/fuzz_decl.c
** libFuzzer harness: the declaration checker and the DDL builder.
** See LICENSE
**
** The input is a small program: each record of 4 bytes plus a name picks
** a model to create, or a field or relation to add with a type/kind,
** flags, a target and an on_delete rule.  Names come from the input
** (arbitrary bytes).  Oracles: no crash, no leak (ASan/LSan); when the
** schema resolves, create_tables must succeed (valid, quoted DDL), every
** table must be queryable, and a cascade delete over every model must
** not fail with a SQL error.
*/
#include "quay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *z, const quay_err *e) {
  fprintf(stderr, "%s: %s\n", z, e ? e->zMsg : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *azBuiltin[] = {"A", "B", "self", "C", "Nope"};
  quay_db *db;
  quay_model *aM[16];
  char aName[16][24];
  int nM = 0, i;
  size_t pos = 0;
  quay_err e;
  if (quay_db_open("sqlite::memory:", NULL, &db, &e)) die("open", &e);
  while (pos + 5 <= size && nM < 16) {
    uint8_t op = data[pos], a = data[pos + 1], b = data[pos + 2],
            c = data[pos + 3];
    size_t nName = data[pos + 4] % 12;
    char zName[24];
    pos += 5;
    if (pos + nName > size) nName = size - pos;
    memcpy(zName, data + pos, nName);
    zName[nName] = 0;
    pos += nName;
    switch (op % 4) {
      case 0: {                             /* model */
        quay_model *m;
        const char *z = (a & 1) ? zName : azBuiltin[nM % 4];
        if (quay_model_new(db, z, (b & 1) ? zName : NULL, NULL, &m, &e) == 0) {
          snprintf(aName[nM], sizeof(aName[nM]), "%s", z);
          aM[nM++] = m;
        }
        break;
      }
      case 1: {                             /* field */
        quay_field_spec s;
        if (nM == 0) break;
        memset(&s, 0, sizeof(s));
        s.zName = zName;
        s.eType = 1 + a % 9;                /* 9 is out of range */
        s.mFlags = b;
        s.zColumn = (c & 1) ? zName : NULL;
        s.nMax = (c >> 1) % 3 == 0 ? 0 : c % 50;
        s.rSeq = pos;
        if (s.mFlags & QUAY_F_DEFAULT) {
          s.dflt.type = (c >> 2) % 3 == 0 ? QUAY_INT : QUAY_TEXT;
          s.dflt.u.i = 5;
          if (s.dflt.type == QUAY_TEXT) {
            s.dflt.u.z = zName;
            s.dflt.n = strlen(zName);
          }
        }
        quay_model_add_field(aM[a % nM], &s, &e);
        break;
      }
      default: {                            /* relation */
        quay_rel_spec s;
        const char *azPath[2];
        if (nM == 0) break;
        memset(&s, 0, sizeof(s));
        s.zName = zName;
        s.eKind = 1 + b % 7;
        s.zTarget = (c & 1) ? aName[c % nM] : azBuiltin[c % 5];
        s.mFlags = (c & 2 ? QUAY_F_NULL : 0) | (c & 4 ? QUAY_F_SKIP_REVERSE : 0);
        s.eOnDelete = a % 7;
        s.eOnUpdate = (a >> 3) % 7;
        s.zRelatedName = (a & 0x80) ? zName : NULL;
        s.zForeignKey = (c & 8) ? "fk_id" : NULL;
        if (s.eKind == QUAY_R_THROUGH) {
          azPath[0] = aName[a % nM];
          azPath[1] = zName;
          s.azPath = azPath;
          s.nPath = 1 + (c & 1);
        }
        if (s.eKind == QUAY_R_MANY_TO_MANY && (c & 16)) s.zThrough = aName[0];
        quay_model_add_relation(aM[a % nM], &s, &e);
        break;
      }
    }
  }
  if (quay_db_resolve(db, &e) == QUAY_OK) {
    if (quay_db_create_tables(db, &e)) die("create_tables", &e);
    for (i = 0; i < quay_db_model_count(db); i++) {
      quay_model *m = quay_db_model_at(db, i);
      quay_qs *q;
      int64_t n;
      quay_counts *pc = NULL;
      if (quay_qs_new(m, &q, &e)) die("qs", &e);
      if (quay_qs_count(q, db, &n, &e)) die("count", &e);
      if (quay_qs_delete(q, db, 0, &pc, &e) && e.code == QUAY_ESQL) {
        die("delete", &e);
      }
      quay_counts_free(pc);
      quay_qs_free(q);
    }
    if (quay_db_drop_tables(db, &e)) die("drop_tables", &e);
  } else if (e.code != QUAY_EDECLARATION && e.code != QUAY_EUNKNOWN_RELATION &&
             e.code != QUAY_EBAD_LOOKUP) {
    die("resolve", &e);
  }
  quay_db_free(db);
  return 0;
}
