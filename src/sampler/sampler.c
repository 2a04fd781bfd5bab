/* sampler.c - logits -> token (see sampler.h for the chain and the RNG).
 *
 * Candidates are (id, logit) pairs. top-k uses a size-k min-heap over the
 * vocabulary (O(n log k), no full sort); top-p sorts the candidates (only the
 * k survivors when top-k is on, else all of them). Candidate order is always
 * deterministic: by logit descending, ties by lower id; or by id when no
 * truncation needed an order. */
#include "sampler/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct Sampler {
    SamplerParams p;
    int n_vocab;
    Rng rng;
    int32_t *hist; /* (penalty_last_n) ring of accepted tokens */
    int n_hist, hist_pos;
    int32_t *count; /* (n_vocab) scratch: occurrences in the window, kept at 0 */
    int32_t *cid;   /* (n_vocab) candidate ids */
    float *cval;    /* (n_vocab) candidate logits, then probabilities */
    float last_prob;
};

void sampler_params_default(SamplerParams *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->penalty_last_n = 64;
    p->seed = UINT64_MAX;
    p->want_prob = 1;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rng_uniform(Rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }

Sampler *sampler_create(const SamplerParams *p, int n_vocab) {
    if (!p || n_vocab <= 0) return NULL;
    Sampler *s = xcalloc(1, sizeof *s);
    s->p = *p;
    if (s->p.penalty_last_n < 0) s->p.penalty_last_n = 0;
    s->n_vocab = n_vocab;
    s->hist = xmalloc(sizeof(int32_t) * (size_t)(s->p.penalty_last_n ? s->p.penalty_last_n : 1));
    s->count = xcalloc((size_t)n_vocab, sizeof(int32_t));
    s->cid = xmalloc(sizeof(int32_t) * (size_t)n_vocab);
    s->cval = xmalloc(sizeof(float) * (size_t)n_vocab);
    rng_seed(&s->rng, p->seed);
    return s;
}

void sampler_free(Sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->count);
    free(s->cid);
    free(s->cval);
    free(s);
}

void sampler_reset(Sampler *s, uint64_t seed) {
    s->n_hist = s->hist_pos = 0;
    s->p.seed = seed;
    rng_seed(&s->rng, seed);
    s->last_prob = 0;
}

void sampler_accept(Sampler *s, int32_t token) {
    int n = s->p.penalty_last_n;
    if (n <= 0 || token < 0 || token >= s->n_vocab) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % n;
    if (s->n_hist < n) s->n_hist++;
}

float sampler_last_prob(const Sampler *s) { return s->last_prob; }

/* llama.cpp's penalties: divide positive / multiply negative logits by the
 * repeat penalty, subtract count * frequency + presence. */
static void apply_penalties(Sampler *s, float *logits) {
    const SamplerParams *p = &s->p;
    if (s->n_hist == 0 ||
        (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    for (int i = 0; i < s->n_hist; i++) s->count[s->hist[i]]++;
    for (int i = 0; i < s->n_hist; i++) {
        int32_t t = s->hist[i];
        int c = s->count[t];
        if (c == 0) continue; /* already handled */
        float l = logits[t];
        l = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        logits[t] = l;
        s->count[t] = 0;
    }
}

/* a ranks before b: larger logit, then lower id. */
static inline int before(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

typedef struct Cand {
    float v;
    int32_t id;
} Cand;

static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (before(x->v, x->id, y->v, y->id)) return -1;
    if (before(y->v, y->id, x->v, x->id)) return 1;
    return 0;
}

/* Sorts candidates [0, n) into rank order. */
static void sort_cands(Sampler *s, int n) {
    Cand *c = xmalloc(sizeof(Cand) * (size_t)n);
    for (int i = 0; i < n; i++) c[i] = (Cand){s->cval[i], s->cid[i]};
    qsort(c, (size_t)n, sizeof(Cand), cand_cmp);
    for (int i = 0; i < n; i++) {
        s->cval[i] = c[i].v;
        s->cid[i] = c[i].id;
    }
    free(c);
}

/* The k best of the vocabulary into cid/cval[0, k), in rank order. Heap:
 * a min-heap by rank (root = worst kept). */
static void top_k_select(Sampler *s, const float *logits, int k) {
    int32_t *hid = s->cid;
    float *hv = s->cval;
    int n = 0;
    for (int32_t t = 0; t < s->n_vocab; t++) {
        float v = logits[t];
        if (n < k) { /* sift up */
            int i = n++;
            while (i > 0) {
                int par = (i - 1) / 2;
                if (!before(hv[par], hid[par], v, t)) break; /* parent worse-or-equal: stop */
                hv[i] = hv[par];
                hid[i] = hid[par];
                i = par;
            }
            hv[i] = v;
            hid[i] = t;
        } else if (before(v, t, hv[0], hid[0])) { /* replace root, sift down */
            int i = 0;
            for (;;) {
                int l = 2 * i + 1, r = l + 1, w = i;
                float wv = v;
                int32_t wi = t;
                if (l < n && before(wv, wi, hv[l], hid[l])) w = l, wv = hv[l], wi = hid[l];
                if (r < n && before(wv, wi, hv[r], hid[r])) w = r, wv = hv[r], wi = hid[r];
                if (w == i) break;
                hv[i] = hv[w];
                hid[i] = hid[w];
                i = w;
            }
            hv[i] = v;
            hid[i] = t;
        }
    }
    sort_cands(s, n);
}

int32_t sampler_sample(Sampler *s, float *logits) {
    const SamplerParams *p = &s->p;
    int nv = s->n_vocab;
    apply_penalties(s, logits);

    if (p->temperature <= 0) { /* greedy: argmax, ties to the lowest id */
        int32_t best = 0;
        for (int32_t t = 1; t < nv; t++)
            if (logits[t] > logits[best]) best = t;
        s->last_prob = 0;
        if (!p->want_prob) return best; /* 32k exp() per token: ~0.4 ms of every decode step */
        double sum = 0;
        float mx = logits[best];
        for (int32_t t = 0; t < nv; t++) sum += exp((double)(logits[t] - mx));
        s->last_prob = (float)(1.0 / sum);
        return best;
    }

    int n; /* candidates in cid/cval */
    int sorted = 0;
    if (p->top_k > 0 && p->top_k < nv) {
        n = p->top_k;
        top_k_select(s, logits, n);
        sorted = 1;
    } else {
        n = nv;
        for (int32_t t = 0; t < nv; t++) {
            s->cid[t] = t;
            s->cval[t] = logits[t];
        }
    }
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (s->cval[i] > mx) mx = s->cval[i];

    if (p->top_p < 1.0f && n > 1) { /* smallest prefix whose probability reaches top_p */
        if (!sorted) sort_cands(s, n);
        sorted = 1;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += exp((double)(s->cval[i] - mx));
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += exp((double)(s->cval[i] - mx)) / sum;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }

    if (p->min_p > 0.0f && n > 1) { /* keep p >= min_p * p_max, i.e. logit >= max + log(min_p) */
        float thr = mx + logf(p->min_p);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (s->cval[i] >= thr) {
                s->cval[m] = s->cval[i];
                s->cid[m] = s->cid[i];
                m++;
            }
        n = m > 0 ? m : 1;
    }

    /* temperature + softmax (in place: cval becomes probabilities) */
    double sum = 0;
    float inv_t = 1.0f / p->temperature;
    float mxt = mx * inv_t;
    for (int i = 0; i < n; i++) {
        float e = expf(s->cval[i] * inv_t - mxt);
        s->cval[i] = e;
        sum += e;
    }
    double r = (double)rng_uniform(&s->rng) * sum, cum = 0;
    int pick = n - 1;
    for (int i = 0; i < n; i++) {
        cum += s->cval[i];
        if (r < cum) {
            pick = i;
            break;
        }
    }
    /* never pick a zero-probability candidate (r at the very end of the sum) */
    while (pick > 0 && s->cval[pick] == 0.0f) pick--;
    s->last_prob = (float)(s->cval[pick] / sum);
    return s->cid[pick];
}
