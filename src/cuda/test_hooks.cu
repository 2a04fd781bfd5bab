/* test_hooks.cu - extern "C" hooks for tests and benchmarks
 * (cuda_test_hooks_core.h). */
#include <cstring>
#include <vector>

#include "cuda/cuda_common.cuh"
#include "cuda/cuda_test_hooks_core.h"

int cuda_test_attention(const float *q, const uint16_t *k, const uint16_t *v, const int *pos,
                        int n_items, int n_ctx, int n_heads, int n_kv_heads, int head_dim, int span,
                        float *out) {
    char why[256];
    if (!backend_cuda_available(why, sizeof why)) return -1;
    if (n_items <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim > 256 ||
        (n_heads / n_kv_heads) * head_dim > CUDA_ATTN_MAX_GROUP_DIMS || span <= 0)
        return -1;
    const int kvd = n_kv_heads * head_dim, qd = n_heads * head_dim;
    const int n_split = (n_ctx + span - 1) / span;
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreate(&s));
    __half *kv;
    float *dq, *dout, *po, *pml;
    int *dpos, *dseq, *dcnt;
    CUDA_CHECK(cudaMalloc(&kv, sizeof(__half) * 2 * (size_t)n_ctx * kvd));
    CUDA_CHECK(cudaMemcpy(kv, k, 2 * (size_t)n_ctx * kvd, cudaMemcpyHostToDevice));
    CUDA_CHECK(
        cudaMemcpy(kv + (size_t)n_ctx * kvd, v, 2 * (size_t)n_ctx * kvd, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&dq, sizeof(float) * n_items * qd));
    CUDA_CHECK(cudaMemcpy(dq, q, sizeof(float) * n_items * qd, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&dout, sizeof(float) * n_items * qd));
    CUDA_CHECK(cudaMemset(dout, 0xff, sizeof(float) * n_items * qd)); /* NaN poison */
    CUDA_CHECK(cudaMalloc(&po, sizeof(float) * n_items * n_heads * n_split * head_dim));
    CUDA_CHECK(cudaMalloc(&pml, sizeof(float) * n_items * n_heads * n_split * 2));
    CUDA_CHECK(cudaMalloc(&dpos, sizeof(int) * n_items));
    CUDA_CHECK(cudaMalloc(&dseq, sizeof(int) * n_items));
    CUDA_CHECK(cudaMemcpy(dpos, pos, sizeof(int) * n_items, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(dseq, 0, sizeof(int) * n_items));
    CUDA_CHECK(cudaMalloc(&dcnt, sizeof(int) * n_items * n_kv_heads));
    CUDA_CHECK(cudaMemset(dcnt, 0, sizeof(int) * n_items * n_kv_heads));
    CudaAttnArgs a;
    a.q = dq;
    a.kv.kv_l = kv;
    a.kv.n_ctx = n_ctx;
    a.kv.kvd = kvd;
    a.d_pos = dpos;
    a.d_seq = dseq;
    a.n_items = n_items;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = head_dim;
    a.span = span;
    a.n_split = n_split;
    a.split_target = 0;
    a.part_o = po;
    a.part_ml = pml;
    a.out = dout;
    a.counters = dcnt;
    a.fuse_rope = 0;
    a.early = 0;
    memset(&a.rope, 0, sizeof a.rope);
    a.k_new = a.v_new = NULL;
    a.qkv_stride = 0;
    cuda_attention(&a, s);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(out, dout, sizeof(float) * n_items * qd, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    cudaFree(kv);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(po);
    cudaFree(pml);
    cudaFree(dpos);
    cudaFree(dseq);
    cudaFree(dcnt);
    cudaStreamDestroy(s);
    return 0;
}
