/*
** engine/err.c
** Error codes and the error setter.
** See LICENSE
**
** The code table comes from QUAY_ERRMAP in quay.h, so the C enum and the
** contract's code strings (API.md "Errors") cannot drift apart.  The setter
** formats the message into the caller's fixed buffer (no free needed) and
** returns the code, so callers write `return quay__err(e, code, ...)`.
*/
#include "quayInt.h"

#include <stdio.h>

static const char *const azErrName[] = {
#define QUAY__ERRSTR(name, str) str,
  QUAY_ERRMAP(QUAY__ERRSTR)
#undef QUAY__ERRSTR
};

/*
** The contract string of an error code; "sql" for codes out of range
** (driver codes leaking through would be a bug, but must not crash).
*/
const char *quay_errname(int code) {
  if (code >= 0 && code < QUAY_NERRCODE) return azErrName[code];
  return "sql";
}

void quay_err_clear(quay_err *pErr) {
  if (pErr == NULL) return;
  pErr->code = QUAY_OK;
  pErr->line = 0;
  pErr->ext = 0;
  pErr->zState[0] = 0;
  pErr->zMsg[0] = 0;
  pErr->zModel[0] = 0;
  pErr->zField[0] = 0;
}

/*
** Record an error.  pErr may be NULL (the code is still returned).  The
** message is truncated to the buffer.  An earlier error is overwritten:
** the latest, most specific, failure wins.
*/
int quay__err_at(quay_err *pErr, int code, int line, const char *zFmt, ...) {
  va_list ap;
  if (pErr == NULL) return code;
  pErr->code = code;
  pErr->line = line;
  pErr->ext = 0;
  pErr->zState[0] = 0;
  pErr->zModel[0] = 0;
  pErr->zField[0] = 0;
  va_start(ap, zFmt);
  vsnprintf(pErr->zMsg, sizeof(pErr->zMsg), zFmt, ap);
  va_end(ap);
  return code;
}

/*
** Record an error about one field (or relation) zField of model zModel:
** as quay__err_at, and the names go into pErr->zModel / zField, so the
** binding can give them to the user (API.md: every validation error
** about one field carries err.model and err.field).
*/
int quay__err_field_at(quay_err *pErr, int code, int line, const char *zModel,
                       const char *zField, const char *zFmt, ...) {
  va_list ap;
  if (pErr == NULL) return code;
  pErr->code = code;
  pErr->line = line;
  pErr->ext = 0;
  pErr->zState[0] = 0;
  snprintf(pErr->zModel, sizeof(pErr->zModel), "%s", zModel ? zModel : "");
  snprintf(pErr->zField, sizeof(pErr->zField), "%s", zField ? zField : "");
  va_start(ap, zFmt);
  vsnprintf(pErr->zMsg, sizeof(pErr->zMsg), zFmt, ap);
  va_end(ap);
  return code;
}
