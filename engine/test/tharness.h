/*
** engine/test/tharness.h
** A tiny in-tree test harness (libuv's test/task.h style).
** See LICENSE
**
** Tests are listed once in TEST_LIST (tmain.c); each is registered with
** ctest as its own test (engine.<name>), run by `quay_engine_tests <name>`.
** Assertions print the expression and both values, then fail the test.
*/
#ifndef THARNESS_H
#define THARNESS_H

#include "quay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name) int test_##name(void); int test_##name(void)

#define FAIL(...)                                                        \
  do {                                                                   \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                      \
    fprintf(stderr, __VA_ARGS__);                                        \
    fprintf(stderr, "\n");                                               \
    return 1;                                                            \
  } while (0)

#define ASSERT(expr)                                                     \
  do {                                                                   \
    if (!(expr)) FAIL("assertion failed: %s", #expr);                    \
  } while (0)

#define ASSERT_EQ(a, b)                                                  \
  do {                                                                   \
    long long a_ = (long long)(a), b_ = (long long)(b);                  \
    if (a_ != b_) FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);        \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                              \
  do {                                                                   \
    const char *a_ = (a), *b_ = (b);                                     \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                 \
      FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",     \
           b_ ? b_ : "(null)");                                          \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                     \
  do {                                                                   \
    const char *h_ = (hay), *n_ = (needle);                              \
    if (h_ == NULL || strstr(h_, n_) == NULL)                            \
      FAIL("%s contains \"%s\": got \"%s\"", #hay, n_, h_ ? h_ : "(null)"); \
  } while (0)

/* rc must be QUAY_OK; prints the engine's message otherwise. */
#define ASSERT_OK(rc, err)                                               \
  do {                                                                   \
    int r_ = (rc);                                                       \
    if (r_ != QUAY_OK)                                                   \
      FAIL("%s: %s (%s)", #rc, quay_errname(r_), (err).zMsg);            \
  } while (0)

#define ASSERT_CODE(rc, code)                                            \
  do {                                                                   \
    int r_ = (rc);                                                       \
    if (r_ != (code))                                                    \
      FAIL("%s: expected %s, got %s", #rc, quay_errname(code),           \
           quay_errname(r_));                                            \
  } while (0)

#endif
