/*
** fuzz/fuzz_url.c
** libFuzzer harness: database URL parsing (quay_url_check, which picks a
** driver and lets libpq parse PostgreSQL URLs and keyword strings without
** connecting).
** See LICENSE
**
** Oracles: no crash or leak; a string starting with "sqlite:" is always a
** SQLite URL; any other accepted string is a PostgreSQL one; an error
** always carries the connection code and a message.
*/
#include "quay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *z = malloc(size + 1);
  const char *zBackend = NULL;
  quay_err e;
  int rc;
  if (z == NULL) return 0;
  memcpy(z, data, size);
  z[size] = 0;
  rc = quay_url_check(z, &zBackend, &e);
  if (rc == QUAY_OK) {
    if (zBackend == NULL) abort();
    if (strncmp(z, "sqlite:", 7) == 0) {
      if (strcmp(zBackend, "sqlite") != 0) abort();
    } else if (strcmp(zBackend, "postgresql") != 0) {
      abort();
    }
  } else {
    if (rc != QUAY_ECONNECTION || e.code != QUAY_ECONNECTION ||
        e.zMsg[0] == 0 || zBackend != NULL) {
      abort();
    }
  }
  free(z);
  return 0;
}
