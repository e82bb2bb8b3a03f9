/*
** engine/err.c
** Error codes, the error setter and the library's version.
** See LICENSE
**
** The code table comes from QUAY_ERRMAP in quay.h, so the C enum and the
** contract's code strings (reference.md "Errors") cannot drift apart.
** The setter formats the message into the caller's fixed buffer (no free
** needed) and returns the code, so callers write
** `return quay__err(e, code, ...)`.
*/
#include "quayInt.h"

#include <stdio.h>
#include <string.h>

static const char *const azErrName[] = {
#define QUAY__ERRSTR(name, str) str,
  QUAY_ERRMAP(QUAY__ERRSTR)
#undef QUAY__ERRSTR
};

/*
** The contract string of an error code; the names of the two stepping
** results; "unknown" for any other number, so a code a caller got wrong
** never reads as a real error ("sql").
*/
const char *quay_errname(int code) {
  if (code >= 0 && code < QUAY_NERRCODE) return azErrName[code];
  if (code == QUAY_ROW) return "row";
  if (code == QUAY_DONE) return "done";
  return "unknown";
}

const char *quay_libversion(void) { return QUAY_VERSION; }

int quay_libversion_number(void) { return QUAY_VERSION_NUMBER; }

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
** Shorten a message that filled zMsg[nMsg] (it was cut wherever the
** buffer ended): cut it again at the last space in its final 60 bytes,
** so no identifier or word is left half, never inside a UTF-8 character,
** and end it with "...".  Messages put what matters (model, field, fix)
** first, so the tail is what goes.
*/
static void msg_shorten(char *zMsg, size_t nMsg) {
  size_t k = nMsg - 4;                  /* room for "..." and the NUL */
  size_t i = k;
  while (i > 0 && i + 60 > k && zMsg[i] != ' ') i--;
  if (zMsg[i] == ' ') k = i;
  while (k > 0 && ((unsigned char)zMsg[k] & 0xc0) == 0x80) k--;
  while (k > 0 && (zMsg[k - 1] == ' ' || zMsg[k - 1] == ',')) k--;
  memcpy(zMsg + k, "...", 4);
}

/*
** Record an error.  pErr may be NULL (the code is still returned).  A
** message longer than the buffer is shortened at a word boundary and ends
** with "...".  An earlier error is overwritten: the latest, most
** specific, failure wins.  The arguments must not point into pErr->zMsg.
*/
int quay__err_at(quay_err *pErr, int code, int line, const char *zFmt, ...) {
  va_list ap;
  int n;
  if (pErr == NULL) return code;
  pErr->code = code;
  pErr->line = line;
  pErr->ext = 0;
  pErr->zState[0] = 0;
  pErr->zModel[0] = 0;
  pErr->zField[0] = 0;
  va_start(ap, zFmt);
  n = vsnprintf(pErr->zMsg, sizeof(pErr->zMsg), zFmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(pErr->zMsg)) {
    msg_shorten(pErr->zMsg, sizeof(pErr->zMsg));
  }
  return code;
}

/*
** Record an error about one field (or relation) zField of model zModel:
** as quay__err_at, and the names go into pErr->zModel / zField, so the
** binding can give them to the user (reference.md: every validation error
** about one field carries err.model and err.field).
*/
int quay__err_field_at(quay_err *pErr, int code, int line, const char *zModel,
                       const char *zField, const char *zFmt, ...) {
  va_list ap;
  int n;
  if (pErr == NULL) return code;
  pErr->code = code;
  pErr->line = line;
  pErr->ext = 0;
  pErr->zState[0] = 0;
  snprintf(pErr->zModel, sizeof(pErr->zModel), "%s", zModel ? zModel : "");
  snprintf(pErr->zField, sizeof(pErr->zField), "%s", zField ? zField : "");
  va_start(ap, zFmt);
  n = vsnprintf(pErr->zMsg, sizeof(pErr->zMsg), zFmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(pErr->zMsg)) {
    msg_shorten(pErr->zMsg, sizeof(pErr->zMsg));
  }
  return code;
}
