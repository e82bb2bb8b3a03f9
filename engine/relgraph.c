/*
** engine/relgraph.c
** The relation graph: resolution of declarations and relation hops.
** See LICENSE
**
** quay__resolve turns the declarations recorded by schema.c into a graph.
** For every declared relation it finds the target model ("self" or a
** name), fixes key columns and their types, checks every rule that needs
** the target (to_field uniqueness, defaults, through models), creates the
** automatic join table of a many_to_many, and registers the reverse
** accessor on the target.  Every declared relation gets a reverse Rel,
** registered under its name unless skip_reverse (or, for has_many/has_one,
** unless a related_name is given); hidden reverses still take part in
** cascades.  quay.through paths are resolved last, since they name
** accessors (reverse ones included) that the first pass registers.
**
** The graph is read by the SQL builder, the loaders and the cascade
** planner through quay__rel_hops, which expands any relation into the
** primitive column-to-column hops of section "Hops" below.
**
** Resolution is incremental: models declared after a first resolve are
** resolved on the next use.  It is also all or nothing: a failing resolve
** undoes what it did for the new models (unresolve), marks the model the
** error is about as failed, so that a new declaration may replace it
** (quay_model_new), and the error repeats on every use until the
** declarations are fixed.
*/
#include "quayInt.h"

#include <stdio.h>


/* Non-0 for a model declared after the last successful resolve. */
#define IS_NEW(m) (!(m)->resolved)

/* Type of a key column that references field f. */
static int key_type(const Field *f) {
  return f->eType == QUAY_T_ID ? QUAY_T_INTEGER : f->eType;
}

static char *cat3(const char *a, const char *b, const char *c) {
  size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
  char *z = quay__malloc(na + nb + nc + 1);
  if (z == NULL) return NULL;
  memcpy(z, a, na);
  memcpy(z + na, b, nb);
  memcpy(z + na + nb, c, nc + 1);
  return z;
}

static int find_target(quay_db *pDb, Rel *r, quay_err *pErr) {
  if (strcmp(r->zTargetName, "self") == 0) {
    r->pTo = r->pFrom;
    return QUAY_OK;
  }
  r->pTo = quay_db_model(pDb, r->zTargetName);
  if (r->pTo == NULL) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s refers to unknown model '%s': "
                     "declare it with db:model or fix the name",
                     r->pFrom->zName, r->zName, r->zTargetName);
  }
  return QUAY_OK;
}

/*
** Register the reverse accessor of r on its target under zName (hidden
** when zName is NULL).  A name clash with a field or another relation of
** the target is a declaration error naming both sides.
*/
static int add_reverse(Rel *r, const char *zName, int toMany,
                       quay_err *pErr) {
  quay_model *t = r->pTo;
  Rel *rev;
  int rc;
  const char *zUse = zName ? zName : r->zName;
  if (zName) {
    const char *z;
    int ok = (zName[0] >= 'a' && zName[0] <= 'z') ||
             (zName[0] >= 'A' && zName[0] <= 'Z') || zName[0] == '_';
    for (z = zName; *z && ok; z++) {
      ok = (*z >= 'a' && *z <= 'z') || (*z >= 'A' && *z <= 'Z') ||
           (*z >= '0' && *z <= '9') || *z == '_';
    }
    if (!ok || strstr(zName, "__") || strlen(zName) > 63) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "%s.%s: related_name '%s' is not a valid name (letters, "
                       "digits and single underscores)", r->pFrom->zName,
                       r->zName, zName);
    }
    Rel *pOther = quay__model_rel(t, zName);
    if (pOther) {
      const Rel *o = pOther->eKind == QUAY_R_REVERSE ? pOther->pFwd : pOther;
      if (pOther->eKind == QUAY_R_REVERSE) {
        return quay__err(pErr, QUAY_EDECLARATION,
                         "reverse name %s.%s is registered by both %s.%s and "
                         "%s.%s: set a distinct related_name on one of them "
                         "(or skip_reverse = true)", t->zName, zName,
                         o->pFrom->zName, o->zName, r->pFrom->zName,
                         r->zName);
      }
      return quay__err(pErr, QUAY_EDECLARATION,
                       "reverse name %s.%s of %s.%s clashes with the relation "
                       "%s.%s: set another related_name", t->zName, zName,
                       r->pFrom->zName, r->zName, t->zName, o->zName);
    }
    if (quay__model_field(t, zName)) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "reverse name %s.%s of %s.%s clashes with the field "
                       "%s.%s: set another related_name", t->zName, zName,
                       r->pFrom->zName, r->zName, t->zName, zName);
    }
  }
  rev = quay__calloc(sizeof(*rev));
  if (rev == NULL) return quay__oom(pErr);
  rev->zName = quay__strdup(zUse);
  if (rev->zName == NULL) {
    quay__free(rev);
    return quay__oom(pErr);
  }
  rev->eKind = QUAY_R_REVERSE;
  rev->pFrom = t;
  rev->pTo = r->pFrom;
  rev->pFwd = r;
  rev->toMany = toMany;
  rev->hidden = zName == NULL;
  rev->rSeq = r->rSeq;
  rev->pFk = r->pFk;
  rev->pKey = r->pKey;
  rev->pJoin = r->pJoin;
  rev->resolved = 1;
  rev->eOnDelete = r->eOnDelete;
  rev->eOnUpdate = r->eOnUpdate;
  rc = quay__model_add_rel_internal(t, rev, pErr);
  if (rc) {
    quay__free(rev->zName);
    quay__free(rev);
    return rc;
  }
  r->pRev = rev;
  return QUAY_OK;
}

/* Default reverse name: related_name, else "<from_snake>_set" (to-many) or
** "<from_snake>" (to-one).  Returns an allocated string (NULL on OOM). */
static char *reverse_name(Rel *r, int toMany) {
  if (r->zRelated) return quay__strdup(r->zRelated);
  return cat3(r->pFrom->zSnake, toMany ? "_set" : "", "");
}

static int resolve_belongs_to(quay_db *pDb, Rel *r, quay_err *pErr) {
  quay_model *t;
  Field *k;
  int rc;
  char *zRev;
  (void)pDb;
  t = r->pTo;
  if (r->zToField) {
    k = quay__model_field(t, r->zToField);
    if (k == NULL || (k->mFlags & QUAY_F_FKCOL)) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: to_field '%s' is not a field "
                       "of %s", r->pFrom->zName, r->zName, r->zToField,
                       t->zName);
    }
    if (!(k->mFlags & (QUAY_F_UNIQUE | QUAY_F_PK))) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: to_field %s.%s must be unique "
                       "(declare it with unique = true)", r->pFrom->zName,
                       r->zName, t->zName, k->zName);
    }
  } else {
    k = t->apField[t->iPk];
  }
  if (!(quay_type_flags(k->eType) & QUAY_TF_KEY)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: %s.%s cannot be referenced (a "
                     "%s field)", r->pFrom->zName, r->zName, t->zName,
                     k->zName, quay__type_name(k->eType));
  }
  r->pKey = k;
  r->pFk->eType = key_type(k);
  if (r->pFk->mFlags & QUAY_F_DEFAULT) {
    quay_value *d = &r->pFk->dflt;
    quay_err e;
    int okType = d->type == QUAY_NULL
                     ? (r->pFk->mFlags & QUAY_F_NULL) != 0
                     : (d->type == QUAY_INT || d->type == QUAY_TEXT) &&
                           quay__value_conform_owned(r->pFrom, r->pFk, d,
                                                     &e) == QUAY_OK &&
                           quay__value_fits(r->pFrom, r->pFk, d, 0, &e) ==
                               QUAY_OK;
    if (!okType) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: default must be a key of %s "
                       "(%s) or a record", r->pFrom->zName, r->zName,
                       t->zName, quay__type_name(r->pFk->eType));
    }
  }
  r->toMany = 0;
  if (r->mFlags & QUAY_F_SKIP_REVERSE) {
    rc = add_reverse(r, NULL, r->eKind == QUAY_R_BELONGS_TO, pErr);
  } else {
    int toMany = r->eKind == QUAY_R_BELONGS_TO;
    zRev = reverse_name(r, toMany);
    if (zRev == NULL) return quay__oom(pErr);
    rc = add_reverse(r, zRev, toMany, pErr);
    quay__free(zRev);
  }
  return rc;
}

static int resolve_has(quay_db *pDb, Rel *r, quay_err *pErr) {
  quay_model *t = r->pTo;
  Field *k, *fk;
  char *zFk = NULL;
  int rc;
  (void)pDb;
  if (r->zLocalKey) {
    k = quay__model_field(r->pFrom, r->zLocalKey);
    if (k == NULL) {
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: local_key '%s' is not a field "
                       "of %s", r->pFrom->zName, r->zName, r->zLocalKey,
                       r->pFrom->zName);
    }
  } else {
    k = r->pFrom->apField[r->pFrom->iPk];
  }
  r->pKey = k;
  if (r->zForeignKey == NULL) {
    zFk = cat3(r->pFrom->zSnake, "_id", "");
    if (zFk == NULL) return quay__oom(pErr);
  }
  fk = quay__model_field(t, r->zForeignKey ? r->zForeignKey : zFk);
  if (fk == NULL && quay__column_taken(t, r->zForeignKey ? r->zForeignKey
                                                        : zFk)) {
    rc = quay__err(pErr, QUAY_EDECLARATION,
                   "model %s: relation %s: foreign key column %s clashes with "
                   "a column of %s that differs only in case; set "
                   "foreign_key", r->pFrom->zName, r->zName,
                   r->zForeignKey ? r->zForeignKey : zFk, t->zName);
    quay__free(zFk);
    return rc;
  }
  if (fk == NULL) {
    rc = quay__model_add_fkcol(t, r->zForeignKey ? r->zForeignKey : zFk,
                               key_type(k), r, &fk, pErr);
    if (rc) {
      quay__free(zFk);
      return rc;
    }
  }
  quay__free(zFk);
  if (fk->mFlags & QUAY_F_PK) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: foreign_key %s.%s is the primary "
                     "key; name the column that holds the %s key",
                     r->pFrom->zName, r->zName, t->zName, fk->zName,
                     r->pFrom->zName);
  }
  r->pFk = fk;
  r->toMany = r->eKind == QUAY_R_HAS_MANY;
  if (r->eOnDelete == QUAY_SET_NULL && !(fk->mFlags & QUAY_F_NULL)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: on_delete = SET_NULL needs "
                     "%s.%s to allow null", r->pFrom->zName, r->zName,
                     t->zName, fk->zName);
  }
  if (r->eOnDelete == QUAY_SET_DEFAULT && !(fk->mFlags & QUAY_F_DEFAULT)) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s: on_delete = SET_DEFAULT needs a "
                     "default on %s.%s", r->pFrom->zName, r->zName, t->zName,
                     fk->zName);
  }
  if (r->mFlags & QUAY_F_SKIP_REVERSE || r->zRelated == NULL) {
    return add_reverse(r, NULL, 0, pErr);
  }
  return add_reverse(r, r->zRelated, 0, pErr);
}

/* Find the belongs_to of the through model that points at pTarget. */
static Rel *through_fk(quay_model *pThrough, quay_model *pTarget,
                       const char *zNamed, Rel *pNot, int *pnFound) {
  int i;
  Rel *pFound = NULL;
  *pnFound = 0;
  for (i = 0; i < pThrough->nDeclRel; i++) {
    Rel *x = pThrough->apRel[i];
    if (x->eKind != QUAY_R_BELONGS_TO && x->eKind != QUAY_R_ONE_TO_ONE) {
      continue;
    }
    if (x == pNot) continue;
    if (zNamed) {
      if (strcmp(x->zName, zNamed) == 0 ||
          (x->zColumn && strcmp(x->zColumn, zNamed) == 0)) {
        *pnFound = 1;
        return x;
      }
      continue;
    }
    if (x->pTo == pTarget) {
      if (pFound == NULL) pFound = x;
      (*pnFound)++;
    }
  }
  return pFound;
}

static int resolve_rel(quay_db *pDb, Rel *r, quay_err *pErr);

static int resolve_m2m(quay_db *pDb, Rel *r, quay_err *pErr) {
  JoinTable *j;
  int rc, isSelf = r->pFrom == r->pTo;
  char *zRev;
  j = quay__calloc(sizeof(*j));
  if (j == NULL) return quay__oom(pErr);
  j->pSrc = r->pFrom;
  j->pDst = r->pTo;
  j->isSelf = isSelf;
  if (r->zThrough) {
    quay_model *th = quay_db_model(pDb, r->zThrough);
    int nSrc, nDst, i;
    Rel *src, *dst;
    if (th == NULL) {
      quay__free(j);
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: through model '%s' is not "
                       "declared", r->pFrom->zName, r->zName, r->zThrough);
    }
    rc = quay__model_finish(th, pErr);
    for (i = 0; rc == QUAY_OK && i < th->nDeclRel; i++) {
      if (th->apRel[i]->eKind == QUAY_R_THROUGH) continue;
      rc = resolve_rel(pDb, th->apRel[i], pErr);
    }
    if (rc) {
      quay__free(j);
      return rc;
    }
    src = through_fk(th, r->pFrom, r->zSourceKey, NULL, &nSrc);
    dst = through_fk(th, r->pTo, r->zTargetKey, src, &nDst);
    if (isSelf && r->zSourceKey == NULL && r->zTargetKey == NULL) {
      /* Two FKs to the same model: the first declared is the source. */
      nSrc = nDst = (src && dst) ? 1 : 0;
    }
    if (src == NULL || dst == NULL || nSrc != 1 || nDst != 1) {
      quay__free(j);
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: through model %s must hold "
                       "exactly one belongs_to to %s and one to %s (name "
                       "them with source_key / target_key)", r->pFrom->zName,
                       r->zName, th->zName, r->pFrom->zName, r->pTo->zName);
    }
    j->pThrough = th;
    j->pThroughSrc = src;
    j->pThroughDst = dst;
    j->zTable = quay__strdup(th->zTable);
    j->zSrcCol = quay__strdup(src->pFk->zCol);
    j->zDstCol = quay__strdup(dst->pFk->zCol);
    j->pSrcKey = src->pKey;
    j->pDstKey = dst->pKey;
  } else {
    const char *zSnakeS = r->pFrom->zSnake, *zSnakeD = r->pTo->zSnake;
    j->zTable = r->zTable ? quay__strdup(r->zTable)
                          : cat3(r->pFrom->zTable, "_", r->pTo->zTable);
    if (j->zTable && strlen(j->zTable) > 63) {
      /* Too long for PostgreSQL: keep 50 bytes and a hash of the rest. */
      char zShort[64];
      snprintf(zShort, sizeof(zShort), "%.50s_%08x", j->zTable,
               (unsigned)(quay__hash_bytes(j->zTable, strlen(j->zTable)) &
                          0xffffffffu));
      quay__free(j->zTable);
      j->zTable = quay__strdup(zShort);
    }
    if (r->zSourceKey) {
      j->zSrcCol = quay__strdup(r->zSourceKey);
    } else {
      j->zSrcCol = isSelf ? cat3("from_", zSnakeS, "_id")
                          : cat3(zSnakeS, "_id", "");
    }
    if (r->zTargetKey) {
      j->zDstCol = quay__strdup(r->zTargetKey);
    } else {
      j->zDstCol = isSelf ? cat3("to_", zSnakeD, "_id")
                          : cat3(zSnakeD, "_id", "");
    }
    j->pSrcKey = r->pFrom->apField[r->pFrom->iPk];
    j->pDstKey = r->pTo->apField[r->pTo->iPk];
  }
  if (j->zTable == NULL || j->zSrcCol == NULL || j->zDstCol == NULL) {
    goto oom;
  }
  if (strcmp(j->zSrcCol, j->zDstCol) == 0) {
    rc = quay__err(pErr, QUAY_EDECLARATION,
                   "model %s: relation %s: join columns are both named %s; "
                   "set source_key / target_key", r->pFrom->zName, r->zName,
                   j->zSrcCol);
    goto fail;
  }
  if (pDb->nJoin == pDb->nJoinAlloc) {
    int nNew = pDb->nJoinAlloc ? pDb->nJoinAlloc * 2 : 8;
    JoinTable **a = quay__realloc(pDb->apJoin, sizeof(*a) * (size_t)nNew);
    if (a == NULL) goto oom;
    pDb->apJoin = a;
    pDb->nJoinAlloc = nNew;
  }
  pDb->apJoin[pDb->nJoin++] = j;
  r->pJoin = j;
  r->toMany = 1;
  if (r->mFlags & QUAY_F_SKIP_REVERSE) return add_reverse(r, NULL, 1, pErr);
  zRev = reverse_name(r, 1);
  if (zRev == NULL) return quay__oom(pErr);
  rc = add_reverse(r, zRev, 1, pErr);
  quay__free(zRev);
  return rc;
oom:
  rc = quay__oom(pErr);
fail:
  quay__free(j->zTable);
  quay__free(j->zSrcCol);
  quay__free(j->zDstCol);
  quay__free(j);
  return rc;
}

static int resolve_through(quay_db *pDb, Rel *r, quay_err *pErr) {
  quay_model *m = r->pFrom;
  int i, toMany = 0, rc;
  Hop aHop[QUAY_MAX_HOPS];
  int nHop = 0;
  r->apPath = quay__calloc(sizeof(Rel *) * (size_t)r->nPath);
  if (r->apPath == NULL) return quay__oom(pErr);
  for (i = 0; i < r->nPath; i++) {
    Rel *h = quay__model_rel(m, r->azPath[i]);
    if (h == NULL) {
      quay__free(r->apPath);
      r->apPath = NULL;
      return quay__err(pErr, QUAY_EUNKNOWN_RELATION,
                       "model %s: relation %s: %s has no relation '%s' (hop "
                       "%d of quay.through)", r->pFrom->zName, r->zName,
                       m->zName, r->azPath[i], i + 1);
    }
    if (h == r) {
      quay__free(r->apPath);
      r->apPath = NULL;
      return quay__err(pErr, QUAY_EDECLARATION,
                       "model %s: relation %s: a quay.through path cannot "
                       "name itself", r->pFrom->zName, r->zName);
    }
    if (!h->resolved || h->resolved == 2) {
      rc = resolve_rel(pDb, h, pErr);
      if (rc) {
        quay__free(r->apPath);
        r->apPath = NULL;
        return rc;
      }
    }
    r->apPath[i] = h;
    if (h->toMany) toMany = 1;
    m = h->pTo;
  }
  r->nPathRel = r->nPath;
  r->pTo = m;
  r->toMany = toMany;
  rc = quay__rel_hops(r, aHop, &nHop, pErr);
  if (rc) {
    quay__free(r->apPath);
    r->apPath = NULL;
    r->nPathRel = 0;
    return rc;
  }
  return QUAY_OK;
}

/* Resolve one declared relation (idempotent).  On failure the innermost
** relation's model is the one the error is about. */
static int resolve_rel_at(quay_db *pDb, Rel *r, quay_err *pErr);
static int resolve_rel(quay_db *pDb, Rel *r, quay_err *pErr) {
  int rc = resolve_rel_at(pDb, r, pErr);
  if (rc && pDb->pResolveFail == NULL) pDb->pResolveFail = r->pFrom;
  return rc;
}

static int resolve_rel_at(quay_db *pDb, Rel *r, quay_err *pErr) {
  int rc;
  if (r->resolved == 1 || r->eKind == QUAY_R_REVERSE) return QUAY_OK;
  if (r->resolved == 2) {
    return quay__err(pErr, QUAY_EDECLARATION,
                     "model %s: relation %s is part of a cycle of "
                     "quay.through paths", r->pFrom->zName, r->zName);
  }
  r->resolved = 2;
  if (r->eKind == QUAY_R_THROUGH) {
    rc = resolve_through(pDb, r, pErr);
  } else {
    rc = find_target(pDb, r, pErr);
    if (rc == QUAY_OK) rc = quay__model_finish(r->pTo, pErr);
    if (rc == QUAY_OK) {
      switch (r->eKind) {
        case QUAY_R_BELONGS_TO:
        case QUAY_R_ONE_TO_ONE:
          rc = resolve_belongs_to(pDb, r, pErr);
          break;
        case QUAY_R_HAS_MANY:
        case QUAY_R_HAS_ONE:
          rc = resolve_has(pDb, r, pErr);
          break;
        case QUAY_R_MANY_TO_MANY:
          rc = resolve_m2m(pDb, r, pErr);
          break;
      }
    }
  }
  r->resolved = rc == QUAY_OK ? 1 : 0;
  return rc;
}

/* Check unique_together and indexes names once fields are final. */
static int check_unique(quay_model *m, quay_err *pErr) {
  int i, k, bIndex;
  for (bIndex = 0; bIndex < 2; bIndex++) {
    int n = bIndex ? m->nIndex : m->nUnique;
    for (i = 0; i < n; i++) {
      int nName = bIndex ? m->anIndex[i] : m->anUnique[i];
      for (k = 0; k < nName; k++) {
        const char *z = bIndex ? m->aaIndex[i][k] : m->aaUnique[i][k];
        Rel *r;
        if (quay__model_field(m, z)) continue;
        r = quay__model_rel(m, z);
        if (r && r->pFk && r->pFrom == m && r->eKind != QUAY_R_REVERSE &&
            (r->eKind == QUAY_R_BELONGS_TO ||
             r->eKind == QUAY_R_ONE_TO_ONE)) {
          continue;
        }
        return quay__err(pErr, QUAY_EDECLARATION,
                         "model %s: %s names '%s', which is not a field or "
                         "belongs_to of %s", m->zName,
                         bIndex ? "indexes" : "unique_together", z,
                         m->zName);
      }
    }
  }
  return QUAY_OK;
}

/*
** Table names must differ in more than case (SQLite compares them without
** case): models and automatic join tables.
*/
static quay_model *table_owner(quay_db *pDb, int i) {
  return i < pDb->nModel ? pDb->apModel[i] : pDb->apJoin[i - pDb->nModel]->pSrc;
}

static int check_tables(quay_db *pDb, quay_err *pErr) {
  int i, k;
  for (i = 0; i < pDb->nModel + pDb->nJoin; i++) {
    const char *a = i < pDb->nModel ? pDb->apModel[i]->zTable
                                    : pDb->apJoin[i - pDb->nModel]->zTable;
    if (i >= pDb->nModel && pDb->apJoin[i - pDb->nModel]->pThrough) continue;
    if (quay__reserved_table(a)) {
      pDb->pResolveFail = table_owner(pDb, i);
      return quay__err(pErr, QUAY_EDECLARATION,
                       "table name %s is reserved (sqlite_...); set another "
                       "table option", a);
    }
    for (k = i + 1; k < pDb->nModel + pDb->nJoin; k++) {
      const char *b = k < pDb->nModel ? pDb->apModel[k]->zTable
                                      : pDb->apJoin[k - pDb->nModel]->zTable;
      if (k >= pDb->nModel && pDb->apJoin[k - pDb->nModel]->pThrough) continue;
      if (quay__reserved_table(b)) {
        pDb->pResolveFail = table_owner(pDb, k);
        return quay__err(pErr, QUAY_EDECLARATION,
                         "table name %s is reserved (sqlite_...); set another "
                         "table option", b);
      }
      if (quay__casecmp(a, b) == 0) {
        /* the later declaration is the one to change */
        pDb->pResolveFail = IS_NEW(table_owner(pDb, k)) ? table_owner(pDb, k)
                                                       : table_owner(pDb, i);
        return quay__err(pErr, QUAY_EDECLARATION,
                         "two tables are named %s%s%s: set the table option "
                         "of a model (or of a many_to_many)", a,
                         strcmp(a, b) ? " / " : "", strcmp(a, b) ? b : "");
      }
    }
  }
  return QUAY_OK;
}

/*
** Undo what a failed resolve did for the models declared since the last
** successful one, so the schema is exactly as declared again: reverse
** accessors and key columns it registered on any model, join tables it
** created, and the resolved state of the new models' relations.  Those
** additions all went at the ends of their lists (earlier resolves' ones
** come first), so they are taken off the ends, allocating nothing.
*/
static void unresolve(quay_db *pDb) {
  int i, k;
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *m = pDb->apModel[i];
    while (m->nRel > m->nDeclRel) {
      Rel *r = m->apRel[m->nRel - 1];
      if (r->eKind != QUAY_R_REVERSE || !IS_NEW(r->pFwd->pFrom)) break;
      if (!r->hidden) quay__smap_del(&m->mRelName, r->zName);
      m->nRel--;
      quay__free(r->zName);
      quay__free(r);
    }
    while (m->nField > 0) {
      Field *f = m->apField[m->nField - 1];
      if (!(f->mFlags & QUAY_F_FKCOL) || f->pRel == NULL ||
          (f->pRel->eKind != QUAY_R_HAS_MANY &&
           f->pRel->eKind != QUAY_R_HAS_ONE) || !IS_NEW(f->pRel->pFrom)) {
        break;
      }
      quay__model_pop_field(m);
    }
  }
  while (pDb->nJoin > 0 && IS_NEW(pDb->apJoin[pDb->nJoin - 1]->pSrc)) {
    JoinTable *j = pDb->apJoin[--pDb->nJoin];
    quay__free(j->zTable);
    quay__free(j->zSrcCol);
    quay__free(j->zDstCol);
    quay__free(j);
  }
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *m = pDb->apModel[i];
    if (!IS_NEW(m)) continue;
    for (k = 0; k < m->nDeclRel; k++) {
      Rel *r = m->apRel[k];
      r->resolved = 0;
      r->toMany = 0;
      r->pTo = NULL;
      r->pRev = NULL;
      r->pJoin = NULL;
      if (r->eKind != QUAY_R_BELONGS_TO && r->eKind != QUAY_R_ONE_TO_ONE) {
        r->pFk = NULL;              /* a column of the target */
      }
      r->pKey = NULL;
      quay__free(r->apPath);
      r->apPath = NULL;
      r->nPathRel = 0;
    }
  }
}

/* The resolve passes; pDb->pResolveFail names the model of a failure. */
static int resolve_all(quay_db *pDb, quay_err *pErr) {
  int i, k, rc;
  for (i = 0; i < pDb->nModel; i++) {
    rc = quay__model_finish(pDb->apModel[i], pErr);
    if (rc) {
      pDb->pResolveFail = pDb->apModel[i];
      return rc;
    }
  }
  /* Pass 1: everything but quay.through paths. */
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *m = pDb->apModel[i];
    for (k = 0; k < m->nDeclRel; k++) {
      Rel *r = m->apRel[k];
      if (r->eKind == QUAY_R_THROUGH) continue;
      rc = resolve_rel(pDb, r, pErr);
      if (rc) return rc;
    }
  }
  /* Pass 2: through paths, which may name reverse accessors. */
  for (i = 0; i < pDb->nModel; i++) {
    quay_model *m = pDb->apModel[i];
    for (k = 0; k < m->nDeclRel; k++) {
      rc = resolve_rel(pDb, m->apRel[k], pErr);
      if (rc) return rc;
    }
  }
  rc = check_tables(pDb, pErr);
  if (rc) return rc;
  for (i = 0; i < pDb->nModel; i++) {
    rc = check_unique(pDb->apModel[i], pErr);
    if (rc) {
      pDb->pResolveFail = pDb->apModel[i];
      return rc;
    }
  }
  return QUAY_OK;
}

/*
** Resolve the whole schema.  Cheap when nothing changed since the last
** successful run.  All or nothing: a failure undoes every change and marks
** the model the error is about (if it is new) as failed, so that it may
** be declared again (quay_model_new replaces it).
*/
int quay__resolve(quay_db *pDb, quay_err *pErr) {
  int i, rc;
  if (pDb->resolved) return QUAY_OK;
  pDb->pResolveFail = NULL;
  rc = resolve_all(pDb, pErr);
  if (rc) {
    quay_model *f = pDb->pResolveFail;
    pDb->pResolveFail = NULL;
    if (f && IS_NEW(f)) f->failed = 1;
    unresolve(pDb);
    return rc;
  }
  for (i = 0; i < pDb->nModel; i++) {
    pDb->apModel[i]->resolved = 1;
    pDb->apModel[i]->failed = 0;
  }
  pDb->resolved = 1;
  pDb->iSchema++;
  return QUAY_OK;
}

/*
** One reference order of the models, for the DDL (referenced tables
** first) and the cascade planner (children first: the reverse).  An
** edge "c refers to p" is a foreign key column held by c that refers to
** p: belongs_to and one_to_one declared on c, has_many and has_one
** declared on p whose key column is c's.  Repeated passes in declaration
** order take every model whose references are all placed, so the order
** is stable; a pass that places nothing means a cycle, and the first
** model left is placed anyway.
*/
int quay__model_order(quay_db *pDb, const unsigned char *aInclude,
                      int *aOrder, int *pn, int *pbCycle) {
  int i, j, k, n = 0, nWant = 0;
  unsigned char *aDone = quay__calloc((size_t)pDb->nModel + 1);
  if (aDone == NULL) return QUAY_ENOMEM;
  if (pbCycle) *pbCycle = 0;
  for (i = 0; i < pDb->nModel; i++) {
    aDone[i] = aInclude != NULL && !aInclude[i];
    nWant += !aDone[i];
  }
  while (n < nWant) {
    int progress = 0;
    for (i = 0; i < pDb->nModel; i++) {
      quay_model *m = pDb->apModel[i];
      int ready = 1;
      if (aDone[i]) continue;
      /* Every model m refers to must be placed (or not included). */
      for (k = 0; k < m->nDeclRel && ready; k++) {
        Rel *r = m->apRel[k];
        if ((r->eKind == QUAY_R_BELONGS_TO || r->eKind == QUAY_R_ONE_TO_ONE) &&
            r->pTo && r->pTo != m && !aDone[r->pTo->iModel]) {
          ready = 0;
        }
      }
      for (j = 0; j < pDb->nModel && ready; j++) {
        quay_model *p = pDb->apModel[j];
        if (p == m || aDone[j]) continue;
        for (k = 0; k < p->nDeclRel && ready; k++) {
          Rel *r = p->apRel[k];
          if ((r->eKind == QUAY_R_HAS_MANY || r->eKind == QUAY_R_HAS_ONE) &&
              r->pTo == m) {
            ready = 0;               /* m holds the key column of r */
          }
        }
      }
      if (ready) {
        aDone[i] = 1;
        aOrder[n++] = i;
        progress = 1;
      }
    }
    if (!progress) {
      if (pbCycle) *pbCycle = 1;
      for (i = 0; i < pDb->nModel; i++) {
        if (!aDone[i]) {
          aDone[i] = 1;
          aOrder[n++] = i;
          break;
        }
      }
    }
  }
  quay__free(aDone);
  *pn = n;
  return QUAY_OK;
}

int quay_db_schema_version(const quay_db *pDb) {
  return pDb ? pDb->iSchema : 0;
}

int quay_db_resolve(quay_db *pDb, quay_err *pErr) {
  /* NULL arguments (quay.h "Conventions"). */
  if (pDb == NULL) {
    return quay__err(pErr, QUAY_EMISUSE, "quay_db_resolve: %s is NULL",
        "pDb");
  }
  return quay__resolve(pDb, pErr);
}

/*
** {==================================================================
** Hops
** ===================================================================
** Expand a relation into primitive hops (see struct Hop).  THROUGH
** relations concatenate the hops of their path.
*/
int quay__rel_hops(Rel *r, Hop *aHop, int *pn, quay_err *pErr) {
  Rel *fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  int isRev = r->eKind == QUAY_R_REVERSE;
  Hop *h;
  if (r->eKind == QUAY_R_THROUGH) {
    int i, rc, n0 = *pn;
    for (i = 0; i < r->nPathRel; i++) {
      rc = quay__rel_hops(r->apPath[i], aHop, pn, pErr);
      if (rc) return rc;
    }
    for (i = n0; i < *pn; i++) aHop[i].pNamed = r;
    return QUAY_OK;
  }
  if (*pn >= QUAY_MAX_HOPS) {
    return quay__err(pErr, QUAY_EBAD_LOOKUP,
                     "path through %s.%s is longer than %d relations (hops "
                     "of quay.through relations count); split the query",
                     r->pFrom->zName, r->zName, QUAY_MAX_HOPS);
  }
  h = &aHop[(*pn)++];
  memset(h, 0, sizeof(*h));
  h->pFrom = r->pFrom;
  h->pTo = r->pTo;
  h->pRel = r;
  h->pNamed = r;
  h->toMany = r->toMany;
  switch (fwd->eKind) {
    case QUAY_R_BELONGS_TO:
    case QUAY_R_ONE_TO_ONE:
      h->pFromKey = isRev ? fwd->pKey : fwd->pFk;
      h->pToKey = isRev ? fwd->pFk : fwd->pKey;
      break;
    case QUAY_R_HAS_MANY:
    case QUAY_R_HAS_ONE:
      h->pFromKey = isRev ? fwd->pFk : fwd->pKey;
      h->pToKey = isRev ? fwd->pKey : fwd->pFk;
      break;
    case QUAY_R_MANY_TO_MANY: {
      JoinTable *j = fwd->pJoin;
      h->zVia = j->zTable;
      h->pFromKey = isRev ? j->pDstKey : j->pSrcKey;
      h->pToKey = isRev ? j->pSrcKey : j->pDstKey;
      h->zViaFrom = isRev ? j->zDstCol : j->zSrcCol;
      h->zViaTo = isRev ? j->zSrcCol : j->zDstCol;
      /* A soft-deleted row of a custom through model hides its pair. */
      h->pViaDeletedAt = j->pThrough ? j->pThrough->pDeletedAt : NULL;
      break;
    }
    default:
      (*pn)--;
      return quay__err(pErr, QUAY_EMISUSE, "relation %s is not resolved",
                       r->zName);
  }
  h->fromNullable = (h->pFromKey->mFlags & QUAY_F_NULL) != 0;
  h->toNullable = h->zVia ? 0 : (h->pToKey->mFlags & QUAY_F_NULL) != 0;
  return QUAY_OK;
}

Field *quay__hop_ident(const Hop *h) {
  Rel *fwd = h->pRel->eKind == QUAY_R_REVERSE ? h->pRel->pFwd : h->pRel;
  int isRev = h->pRel->eKind == QUAY_R_REVERSE;
  int bArrivesAtFk;
  switch (fwd->eKind) {
    case QUAY_R_BELONGS_TO:
    case QUAY_R_ONE_TO_ONE:
      bArrivesAtFk = isRev;       /* reverse: the child's foreign key */
      break;
    case QUAY_R_HAS_MANY:
    case QUAY_R_HAS_ONE:
      bArrivesAtFk = !isRev;      /* forward: the child's foreign key */
      break;
    default:
      bArrivesAtFk = 0;           /* many_to_many: the target's key */
      break;
  }
  if (bArrivesAtFk) return h->pTo->apField[h->pTo->iPk];
  return h->pToKey;
}

int quay__hop_unique(const Hop *h) {
  return h->zVia == NULL && (h->pToKey->mFlags & (QUAY_F_PK | QUAY_F_UNIQUE));
}

/*
** quay_model_relation lives beside the relation graph it reads (the
** hops of a quay.through relation), so schema.c does not call back into
** this file.
*/
int quay_model_relation(const quay_model *m, int i, quay_rel_info *p) {
  /* NULL arguments (quay.h "Conventions"). */
  if (m == NULL || p == NULL) {
    return QUAY_EMISUSE;
  }
  Rel *r, *fwd;
  if (i < 0 || i >= m->nRel) return QUAY_EMISUSE;
  r = m->apRel[i];
  fwd = r->eKind == QUAY_R_REVERSE ? r->pFwd : r;
  memset(p, 0, sizeof(*p));
  p->zName = r->zName;
  p->zDescription = r->zDescr;
  p->zRelatedName = r->eKind == QUAY_R_REVERSE ? NULL
                    : (r->pRev && !r->pRev->hidden ? r->pRev->zName : NULL);
  p->eKind = r->eKind;
  p->eForwardKind = fwd->eKind;
  p->toMany = r->toMany;
  p->pTarget = r->pTo;
  p->iFkField = -1;
  p->iTargetKey = -1;
  p->iOwnerKey = -1;
  p->eOnDelete = fwd->eOnDelete;
  p->eOnUpdate = fwd->eOnUpdate;
  p->readOnly = r->eKind == QUAY_R_THROUGH;
  p->iPeer = -1;
  if (r->eKind == QUAY_R_REVERSE && r->pFwd) {
    p->iPeer = r->pFwd->iRel;
  } else if (r->pRev) {
    p->iPeer = r->pRev->iRel;
  }
  if (fwd->pJoin) {
    JoinTable *j = fwd->pJoin;
    p->zThrough = j->pThrough ? j->pThrough->zName : j->zTable;
    p->hasPivot = j->pThrough != NULL;
    p->pPivot = j->pThrough;
  }
  if (!r->resolved) return QUAY_OK;
  switch (fwd->eKind) {
    case QUAY_R_BELONGS_TO:
    case QUAY_R_ONE_TO_ONE:
      if (r == fwd) {
        p->writable = 1;
        p->zColumn = r->pFk->zCol;
        p->iFkField = r->pFk->iField;
        p->iTargetKey = r->pKey->iField;
        p->iOwnerKey = r->pFk->iField;
        p->nullable = (r->pFk->mFlags & QUAY_F_NULL) != 0;
      } else {
        p->iTargetKey = fwd->pFk->iField;   /* child's FK */
        p->iOwnerKey = fwd->pKey->iField;
        p->nullable = (fwd->pFk->mFlags & QUAY_F_NULL) != 0;
      }
      break;
    case QUAY_R_HAS_MANY:
    case QUAY_R_HAS_ONE:
      if (r == fwd) {
        p->iTargetKey = r->pFk->iField;
        p->iOwnerKey = r->pKey->iField;
        p->nullable = (r->pFk->mFlags & QUAY_F_NULL) != 0;
      } else {
        p->iTargetKey = fwd->pKey->iField;
        p->iOwnerKey = fwd->pFk->iField;
        p->nullable = 1;
      }
      break;
    case QUAY_R_MANY_TO_MANY:
      if (r == fwd) {
        p->iOwnerKey = fwd->pJoin->pSrcKey->iField;
        p->iTargetKey = fwd->pJoin->pDstKey->iField;
      } else {
        p->iOwnerKey = fwd->pJoin->pDstKey->iField;
        p->iTargetKey = fwd->pJoin->pSrcKey->iField;
      }
      break;
    case QUAY_R_THROUGH:
      if (r->nPathRel > 0) {
        Hop aHop[QUAY_MAX_HOPS];
        int n = 0;
        if (quay__rel_hops(r, aHop, &n, NULL) == QUAY_OK && n > 0) {
          p->iOwnerKey = aHop[0].pFromKey->iField;
          p->iTargetKey = aHop[n - 1].pToKey->iField;
        }
      }
      break;
  }
  return QUAY_OK;
}
/* }================================================================== */
