/* testutil.h - helpers shared by the cmocka tests.
 *
 * Skipping: a test that lacks its data or a GPU calls TEST_SKIP(); when every
 * test of an executable skipped, test_finish() returns 77, which CTest shows
 * as "skipped" (never "passed"). */
#ifndef M40_TESTUTIL_H
#define M40_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/model.h"

#define TEST_SKIP_RC 77

extern int g_tests_skipped;

#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "skipped: " __VA_ARGS__);                                                  \
        fprintf(stderr, "\n");                                                                     \
        g_tests_skipped++;                                                                         \
        skip();                                                                                    \
    } while (0)

/* Runs a group and maps "all skipped" to 77. */
#define TEST_MAIN(tests)                                                                           \
    test_finish(cmocka_run_group_tests(tests, NULL, NULL), (int)(sizeof(tests) / sizeof(tests[0])))
int test_finish(int failures, int n_tests);

/* $M40LLM_TESTDATA (default ../shared/testdata from the source dir); NULL
 * when the directory does not exist. */
const char *testdata_dir(void);
/* Writes "<testdata>/<rel>" into buf; returns 0 if that file exists, -1
 * otherwise (buf still filled when the dir is known). */
int testdata_file(char *buf, size_t n, const char *rel);
/* Reads the integers of a token-id file under the test data ("1, 403, 407")
 * into out (at most cap); returns the count, or -1 when the file is absent. */
int testdata_tokens(const char *rel, int32_t *out, int cap);
/* Loads "<testdata>/<rel>" as a Model; NULL when the file is absent (the
 * caller skips), a test failure when it is present but does not load. */
Model *testdata_model(const char *rel);
/* Loads the GGUF file at `path` (e.g. one written by the test) as a Model;
 * a test failure naming the file and the error when it does not load. */
Model *test_model_load(const char *path);
/* Names of the entries of "<testdata>/<dir_rel>" ending in `suffix`, in
 * readdir order (malloc'd, free with free_names); NULL + *n = 0 when the
 * directory is absent. */
char **testdata_names(const char *dir_rel, const char *suffix, size_t *n);
void free_names(char **names, size_t n);
/* Path of the m40llm binary ($M40LLM_BIN) or NULL. */
const char *test_bin(void);

/* ||a - ref||_2 / ||ref||_2 in double precision. */
double rel_l2(const float *a, const float *ref, size_t n);
/* max |a-ref| / max |ref| */
double rel_max(const float *a, const float *ref, size_t n);
/* Reads a raw little-endian float32 file; NULL on error. */
float *read_f32(const char *path, size_t *n);
/* A fresh temporary file path (malloc'd) ending in suffix. */
char *test_tmp_path(const char *suffix);
/* Fills with deterministic pseudo-random values in [-scale, scale). */
void fill_random(float *x, size_t n, uint64_t seed, float scale);

#endif
