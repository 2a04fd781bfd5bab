/* sampler.h - logits -> token on the host, deterministic for a seed.
 *
 * Order (as llama.cpp's default chain): penalties (repeat/presence/frequency
 * over the last `penalty_last_n` accepted tokens) -> top-k -> top-p -> min-p
 * -> temperature -> softmax -> draw. temp <= 0 means greedy (argmax after
 * penalties; ties go to the lowest id).
 *
 * RNG: xoshiro256** seeded through splitmix64 from the 64-bit seed; a draw
 * uses the top 24 bits of one output as a uniform float in [0,1). The same
 * seed gives the same tokens on every run and backend. */
#ifndef M40_SAMPLER_H
#define M40_SAMPLER_H

#include <stdint.h>

typedef struct SamplerParams {
    float temperature;       /* default 0.8; <= 0 greedy */
    int top_k;               /* default 40; <= 0 off */
    float top_p;             /* default 0.95; >= 1 off */
    float min_p;             /* default 0.05; <= 0 off */
    float repeat_penalty;    /* default 1.0 (off) */
    float presence_penalty;  /* default 0 */
    float frequency_penalty; /* default 0 */
    int penalty_last_n;      /* default 64 */
    uint64_t seed;           /* default 0xFFFFFFFF... means "random from time" at the CLI */
    int want_prob;           /* default 1; 0: greedy skips the softmax over the vocabulary
                                (sampler_last_prob is then 0: the server asks only for logprobs) */
} SamplerParams;

void sampler_params_default(SamplerParams *p);

typedef struct Rng {
    uint64_t s[4];
} Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
float rng_uniform(Rng *r); /* [0, 1) */

typedef struct Sampler Sampler;

Sampler *sampler_create(const SamplerParams *p, int n_vocab);
void sampler_free(Sampler *s);
/* Resets history and reseeds. */
void sampler_reset(Sampler *s, uint64_t seed);
/* Picks a token from logits (n_vocab floats; modified in place). */
int32_t sampler_sample(Sampler *s, float *logits);
/* Records a token (prompt or generated) in the penalty window. */
void sampler_accept(Sampler *s, int32_t token);
/* Probability (after the chain) of the token last returned; for logprobs
 * (0 after a greedy pick with want_prob off). */
float sampler_last_prob(const Sampler *s);

#endif
