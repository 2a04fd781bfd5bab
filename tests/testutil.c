#include "testutil.h"

#include "base/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

int g_tests_skipped = 0;

int test_finish(int failures, int n_tests) {
    if (failures) return failures;
    if (n_tests > 0 && g_tests_skipped >= n_tests) return TEST_SKIP_RC;
    return 0;
}

const char *testdata_dir(void) {
    static char buf[4096];
    const char *d = getenv("M40LLM_TESTDATA");
    if (!d || !*d) {
        const char *src = getenv("M40LLM_SOURCE_DIR");
        snprintf(buf, sizeof buf, "%s/../shared/testdata", src ? src : ".");
        d = buf;
    }
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return d;
}

int testdata_file(char *buf, size_t n, const char *rel) {
    const char *d = testdata_dir();
    const int w = snprintf(buf, n, "%s/%s", d ? d : "(no testdata)", rel);
    if (!d || w < 0 || (size_t)w >= n) return -1; /* no data, or the path did not fit */
    struct stat st;
    return stat(buf, &st) == 0 ? 0 : -1;
}

int testdata_tokens(const char *rel, int32_t *out, int cap) {
    char path[4096];
    if (testdata_file(path, sizeof path, rel) != 0) return -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    long v = 0;
    int in_num = 0;
    while ((c = fgetc(f)) != EOF) { /* digits separated by anything else */
        if (c >= '0' && c <= '9') {
            v = v * 10 + (c - '0');
            in_num = 1;
        } else if (in_num) {
            if (n < cap) out[n++] = (int32_t)v;
            v = 0;
            in_num = 0;
        }
    }
    if (in_num && n < cap) out[n++] = (int32_t)v;
    fclose(f);
    return n;
}

Model *testdata_model(const char *rel) {
    char path[4096];
    if (testdata_file(path, sizeof path, rel) != 0) return NULL;
    return test_model_load(path);
}

Model *test_model_load(const char *path) {
    Err e = {0};
    Model *m = model_load(path, &e);
    if (!m) fail_msg("model_load %s: %s", path, e.msg);
    return m;
}

char **testdata_names(const char *dir_rel, const char *suffix, size_t *n) {
    char dir[4096];
    *n = 0;
    if (testdata_file(dir, sizeof dir, dir_rel) != 0) return NULL;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    const size_t ls = strlen(suffix);
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        const size_t l = strlen(de->d_name);
        if (l > ls && !strcmp(de->d_name + l - ls, suffix)) {
            names = xrealloc(names, (*n + 1) * sizeof *names);
            names[(*n)++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    return names;
}

void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

const char *test_bin(void) {
    const char *b = getenv("M40LLM_BIN");
    return (b && *b) ? b : NULL;
}

double rel_l2(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

double rel_max(const float *a, const float *ref, size_t n) {
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        if (fabs(ref[i]) > r) r = fabs(ref[i]);
    }
    return r == 0 ? m : m / r;
}

float *read_f32(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0 || sz % 4) {
        fclose(f);
        return NULL;
    }
    float *x = malloc((size_t)sz ? (size_t)sz : 4);
    if (fread(x, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(x);
        return NULL;
    }
    fclose(f);
    *n = (size_t)sz / 4;
    return x;
}

char *test_tmp_path(const char *suffix) {
    static int counter = 0;
    const char *tmp = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/m40test-%d-%d%s", tmp && *tmp ? tmp : "/tmp", (int)getpid(), counter++,
             suffix ? suffix : "");
    return p;
}

void fill_random(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = scale * (2.0f * (float)(s >> 40) / (float)(1ull << 24) - 1.0f);
    }
}
