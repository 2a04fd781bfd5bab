/* test_sampler.c - RNG reference values, determinism, and the sampled
 * distributions (chi-square over 100k draws) for temperature, top-k, top-p
 * and min-p; penalties; greedy ties; top-k over a 150k vocabulary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler/sampler.h"
#include "testutil.h"

#define NV 8
#define DRAWS 100000
static const double P[NV] = {0.30, 0.20, 0.15, 0.10, 0.10, 0.08, 0.05, 0.02};

static SamplerParams plain(float temp) {
    SamplerParams p;
    sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    return p;
}

/* Draws DRAWS tokens from logits log(P) and checks the histogram against
 * `expect` (probabilities; 0 entries must never be drawn) by chi-square. */
static void check_dist(const SamplerParams *sp, const double *expect) {
    Sampler *s = sampler_create(sp, NV);
    assert_non_null(s);
    long hist[NV] = {0};
    float logits[NV];
    for (int d = 0; d < DRAWS; d++) {
        for (int i = 0; i < NV; i++) logits[i] = (float)log(P[i]);
        int32_t t = sampler_sample(s, logits);
        assert_true(t >= 0 && t < NV);
        hist[t]++;
    }
    double chi2 = 0;
    int df = -1;
    for (int i = 0; i < NV; i++) {
        if (expect[i] == 0) {
            assert_int_equal(hist[i], 0);
            continue;
        }
        double e = expect[i] * DRAWS;
        chi2 += (hist[i] - e) * (hist[i] - e) / e;
        df++;
    }
    /* 99.99% quantiles of chi-square for df 1..7 */
    static const double crit[8] = {0, 15.14, 18.42, 21.11, 23.51, 25.74, 27.86, 29.88};
    fprintf(stderr, "chi2 = %.2f (df %d, limit %.2f)\n", chi2, df, crit[df]);
    assert_true(df >= 1);
    assert_true(chi2 < crit[df]);
    sampler_free(s);
}

/* Probabilities of P at temperature t, restricted to keep[i] != 0. */
static void expected(double t, const int *keep, double *out) {
    double sum = 0;
    for (int i = 0; i < NV; i++) {
        out[i] = keep[i] ? pow(P[i], 1.0 / t) : 0;
        sum += out[i];
    }
    for (int i = 0; i < NV; i++) out[i] /= sum;
}

static void test_rng_reference(void **st) {
    (void)st;
    Rng r;
    rng_seed(&r, 0);
    /* splitmix64's first output from state 0 is the published 0xe220a8397b1dcdaf */
    assert_true(r.s[0] == 0xe220a8397b1dcdafULL);
    rng_seed(&r, 42);
    assert_true(rng_next(&r) == 0x15780b2e0c2ec716ULL);
    assert_true(rng_next(&r) == 0x6104d9866d113a7eULL);
    assert_true(rng_next(&r) == 0xae17533239e499a1ULL);
    for (int i = 0; i < 1000; i++) {
        float u = rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
    }
}

static void test_determinism(void **st) {
    (void)st;
    SamplerParams sp = plain(1.0f);
    int32_t a[200], b[200], c[200];
    float logits[NV];
    for (int run = 0; run < 3; run++) {
        sp.seed = run == 2 ? 99 : 7;
        Sampler *s = sampler_create(&sp, NV);
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 200; i++) {
            for (int j = 0; j < NV; j++) logits[j] = (float)log(P[j]);
            out[i] = sampler_sample(s, logits);
        }
        /* reset reproduces the same sequence */
        sampler_reset(s, sp.seed);
        for (int i = 0; i < 200; i++) {
            for (int j = 0; j < NV; j++) logits[j] = (float)log(P[j]);
            assert_int_equal(sampler_sample(s, logits), out[i]);
        }
        sampler_free(s);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
}

static void test_temperature_dist(void **st) {
    (void)st;
    int all[NV] = {1, 1, 1, 1, 1, 1, 1, 1};
    double ex[NV];
    SamplerParams sp = plain(1.0f);
    expected(1.0, all, ex);
    check_dist(&sp, ex);
    sp = plain(0.7f);
    expected(0.7, all, ex);
    check_dist(&sp, ex);
    sp = plain(1.6f);
    expected(1.6, all, ex);
    check_dist(&sp, ex);
}

static void test_top_k_dist(void **st) {
    (void)st;
    int keep[NV] = {1, 1, 1, 0, 0, 0, 0, 0};
    double ex[NV];
    SamplerParams sp = plain(1.3f);
    sp.top_k = 3;
    expected(1.3, keep, ex);
    check_dist(&sp, ex);
}

static void test_top_p_dist(void **st) {
    (void)st;
    /* cumulative 0.30, 0.50, 0.65 -> top_p 0.6 keeps 3 tokens (at temp 1),
     * then temperature 0.8 applies to the survivors */
    int keep3[NV] = {1, 1, 1, 0, 0, 0, 0, 0};
    double ex[NV];
    SamplerParams sp = plain(0.8f);
    sp.top_p = 0.6f;
    expected(0.8, keep3, ex);
    check_dist(&sp, ex);
    /* top-k 5 then top-p 0.9 of the renormalized top 5 (0.3,.2,.15,.1,.1)/0.85:
     * cumulative .353 .588 .765 .882 1.0 -> keeps all 5 */
    int keep5[NV] = {1, 1, 1, 1, 1, 0, 0, 0};
    sp = plain(1.0f);
    sp.top_k = 5;
    sp.top_p = 0.9f;
    expected(1.0, keep5, ex);
    check_dist(&sp, ex);
}

static void test_min_p_dist(void **st) {
    (void)st;
    /* min_p 0.4: keep p >= 0.12 -> 0.30, 0.20, 0.15 */
    int keep[NV] = {1, 1, 1, 0, 0, 0, 0, 0};
    double ex[NV];
    SamplerParams sp = plain(1.0f);
    sp.min_p = 0.4f;
    expected(1.0, keep, ex);
    check_dist(&sp, ex);
}

static void test_greedy_and_penalties(void **st) {
    (void)st;
    SamplerParams sp = plain(0.0f);
    Sampler *s = sampler_create(&sp, 4);
    float l1[4] = {1.0f, 3.0f, 3.0f, -1.0f};
    assert_int_equal(sampler_sample(s, l1), 1); /* tie -> lowest id */
    double z = exp(-2.0) + 1 + 1 + exp(-4.0);
    assert_float_equal(sampler_last_prob(s), 1.0 / z, 1e-6);
    sampler_free(s);

    /* want_prob off (the server without logprobs): same pick, no softmax */
    sp.want_prob = 0;
    s = sampler_create(&sp, 4);
    assert_int_equal(sampler_sample(s, l1), 1);
    assert_float_equal(sampler_last_prob(s), 0.0, 0.0);
    sampler_free(s);
    sp.want_prob = 1;

    sp.repeat_penalty = 2.0f;
    sp.frequency_penalty = 0.5f;
    sp.presence_penalty = 0.25f;
    sp.penalty_last_n = 3;
    s = sampler_create(&sp, 4);
    sampler_accept(s, 3); /* falls out of the window of 3 */
    sampler_accept(s, 0);
    sampler_accept(s, 1);
    sampler_accept(s, 0);
    float l2[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    int32_t t = sampler_sample(s, l2);
    assert_float_equal(l2[0], 2.0f / 2 - 2 * 0.5f - 0.25f, 1e-6); /* -0.25 */
    assert_float_equal(l2[1], -2.0f * 2 - 0.5f - 0.25f, 1e-6);
    assert_float_equal(l2[2], 1.0f, 0);
    assert_float_equal(l2[3], 0.5f, 0);
    assert_int_equal(t, 2);
    sampler_free(s);
}

static void test_big_vocab_top_k(void **st) {
    (void)st;
    enum { N = 150000, K = 40 };
    float *base = malloc(sizeof(float) * N), *l = malloc(sizeof(float) * N);
    fill_random(base, N, 5, 8.0f);
    base[777] = base[778] = 20.0f; /* a tie at the top */
    /* the K-th largest value: the threshold of the top-k set */
    float *sorted = malloc(sizeof(float) * N);
    memcpy(sorted, base, sizeof(float) * N);
    for (int i = 0; i < K; i++) { /* partial selection sort, test-only */
        int m = i;
        for (int j = i + 1; j < N; j++)
            if (sorted[j] > sorted[m]) m = j;
        float tmp = sorted[i];
        sorted[i] = sorted[m];
        sorted[m] = tmp;
    }
    float kth = sorted[K - 1];
    SamplerParams sp = plain(3.0f);
    sp.top_k = K;
    Sampler *s = sampler_create(&sp, N);
    int hit_tie[2] = {0, 0};
    for (int d = 0; d < 2000; d++) {
        memcpy(l, base, sizeof(float) * N);
        int32_t t = sampler_sample(s, l);
        assert_true(base[t] >= kth);
        if (t == 777) hit_tie[0]++;
        if (t == 778) hit_tie[1]++;
    }
    assert_true(hit_tie[0] > 0 && hit_tie[1] > 0);
    sampler_free(s);
    /* top_k 1 == greedy */
    sp.top_k = 1;
    s = sampler_create(&sp, N);
    memcpy(l, base, sizeof(float) * N);
    assert_int_equal(sampler_sample(s, l), 777);
    sampler_free(s);
    free(base);
    free(l);
    free(sorted);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference),        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_temperature_dist),     cmocka_unit_test(test_top_k_dist),
        cmocka_unit_test(test_top_p_dist),           cmocka_unit_test(test_min_p_dist),
        cmocka_unit_test(test_greedy_and_penalties), cmocka_unit_test(test_big_vocab_top_k),
    };
    return TEST_MAIN(tests);
}
