/*
** engine/test/tmain.c
** The engine test runner: `quay_engine_tests <name>` runs one test,
** no argument runs them all.
** See LICENSE
*/
#include "tharness.h"

#ifdef QUAY_TEST
#  define TEST_LIST_TEST(X) X(oom_sweep) X(migrate_oom_sweep)
#else
#  define TEST_LIST_TEST(X)
#endif

#define TEST_LIST(X)            \
  X(snake_case_tables)          \
  X(declaration_errors)         \
  X(reverse_name_collision)     \
  X(implicit_id_and_order)      \
  X(to_many_semi_join)          \
  X(bad_names)                  \
  X(deep_conditions)            \
  X(keyset)                     \
  X(grouped_soft_delete)        \
  X(write_read_prefetch)        \
  X(cascade_counts)             \
  X(delete_hooks)               \
  X(soft_delete_writes)         \
  X(bulk_insert)                \
  X(wrapped_no_dqs)             \
  X(url_schemes)                \
  X(migrate_api)                \
  X(type_table)                 \
  X(decimal_values)             \
  X(uuid_and_json)              \
  X(host_transaction)           \
  X(transaction_closed_under_levels) \
  X(host_ends_transaction)      \
  X(transaction_lost_by_error)  \
  X(wrap_in_transaction)        \
  X(free_before_children)       \
  X(error_detail)               \
  X(capi_by_name)               \
  X(null_arguments)             \
  X(bad_indexes)                \
  X(negative_counts)            \
  X(declaration_specs)          \
  X(bad_values)                 \
  X(ownership_on_failure)       \
  X(capi_roundtrip)             \
  X(custom_allocator)           \
  X(out_params_on_failure)      \
  TEST_LIST_TEST(X)

#define DECLARE(name) int test_##name(void);
TEST_LIST(DECLARE)

typedef struct Entry {
  const char *zName;
  int (*xRun)(void);
} Entry;

#define ENTRY(name) {#name, test_##name},
static const Entry aTest[] = { TEST_LIST(ENTRY) {NULL, NULL} };

int main(int argc, char **argv) {
  int i, nFail = 0, nRun = 0;
  for (i = 0; aTest[i].zName; i++) {
    if (argc > 1 && strcmp(argv[1], aTest[i].zName) != 0) continue;
    nRun++;
    if (aTest[i].xRun() != 0) {
      fprintf(stderr, "FAIL %s\n", aTest[i].zName);
      nFail++;
    } else {
      printf("ok %s\n", aTest[i].zName);
    }
  }
  if (nRun == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  return nFail ? 1 : 0;
}
