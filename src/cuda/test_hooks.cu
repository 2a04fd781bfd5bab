/* test_hooks.cu - extern "C" hooks for tests and benchmarks
 * (cuda_test_hooks_core.h). */
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/util.h"
#include "cuda/cuda_common.cuh"
#include "cuda/cuda_test_hooks_core.h"

int cuda_test_attention(const float *q, const uint16_t *k, const uint16_t *v, const int *pos,
                        int n_items, int n_ctx, int n_heads, int n_kv_heads, int head_dim, int span,
                        int decode, float *out) {
    char why[256];
    if (!backend_cuda_available(why, sizeof why)) return -1;
    if (n_items <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim > 256 ||
        (n_heads / n_kv_heads) * head_dim > CUDA_ATTN_MAX_GROUP_DIMS || span <= 0 || decode < 0 ||
        decode > 2)
        return -1;
    const int kvd = n_kv_heads * head_dim, qd = n_heads * head_dim;
    const int n_split = (n_ctx + span - 1) / span;
    const int n_seq = decode ? n_items : 1;
    const size_t rows = (size_t)n_ctx * kvd; /* halves of one K or V */
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreate(&s));
    __half *kv;
    float *dq, *dout, *po, *pml, *dkn = NULL, *dvn = NULL;
    int *dpos, *dseq, *dcnt;
    CUDA_CHECK(cudaMalloc(&kv, sizeof(__half) * 2 * rows * n_seq));
    std::vector<uint16_t> kh(k, k + rows), vh(v, v + rows);
    std::vector<float> kn, vn;
    for (int sq = 0; sq < n_seq; sq++) {
        if (decode) { /* row pos[sq] is garbage until the kernel stores the new k, v */
            std::copy(k, k + rows, kh.begin());
            std::copy(v, v + rows, vh.begin());
            for (int d = 0; d < kvd; d++) {
                kn.push_back(fp16_to_f32(k[(size_t)pos[sq] * kvd + d]));
                vn.push_back(fp16_to_f32(v[(size_t)pos[sq] * kvd + d]));
                kh[(size_t)pos[sq] * kvd + d] = 0x7bff; /* 65504 */
                vh[(size_t)pos[sq] * kvd + d] = 0xfbff;
            }
        }
        CUDA_CHECK(cudaMemcpy(kv + 2 * sq * rows, kh.data(), 2 * rows, cudaMemcpyHostToDevice));
        CUDA_CHECK(
            cudaMemcpy(kv + (2 * sq + 1) * rows, vh.data(), 2 * rows, cudaMemcpyHostToDevice));
    }
    if (decode) {
        CUDA_CHECK(cudaMalloc(&dkn, sizeof(float) * kn.size()));
        CUDA_CHECK(cudaMalloc(&dvn, sizeof(float) * vn.size()));
        CUDA_CHECK(cudaMemcpy(dkn, kn.data(), sizeof(float) * kn.size(), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(dvn, vn.data(), sizeof(float) * vn.size(), cudaMemcpyHostToDevice));
    }
    CUDA_CHECK(cudaMalloc(&dq, sizeof(float) * n_items * qd));
    CUDA_CHECK(cudaMemcpy(dq, q, sizeof(float) * n_items * qd, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&dout, sizeof(float) * n_items * qd));
    CUDA_CHECK(cudaMemset(dout, 0xff, sizeof(float) * n_items * qd)); /* NaN poison */
    CUDA_CHECK(cudaMalloc(&po, sizeof(float) * n_items * n_heads * n_split * head_dim));
    CUDA_CHECK(cudaMalloc(&pml, sizeof(float) * n_items * n_heads * n_split * 2));
    CUDA_CHECK(cudaMalloc(&dpos, sizeof(int) * n_items));
    CUDA_CHECK(cudaMalloc(&dseq, sizeof(int) * n_items));
    CUDA_CHECK(cudaMemcpy(dpos, pos, sizeof(int) * n_items, cudaMemcpyHostToDevice));
    std::vector<int> seqs(n_items, 0);
    for (int i = 0; decode && i < n_items; i++) seqs[i] = i;
    CUDA_CHECK(cudaMemcpy(dseq, seqs.data(), sizeof(int) * n_items, cudaMemcpyHostToDevice));
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
    a.split_target = decode ? n_split : 0;
    a.part_o = po;
    a.part_ml = pml;
    a.out = dout;
    a.counters = dcnt;
    a.fuse_rope = decode != 0;
    a.early = decode == 1;
    memset(&a.rope, 0, sizeof a.rope); /* rope_dim 0: no rotation */
    a.rope.n_heads = n_heads;
    a.rope.n_kv_heads = n_kv_heads;
    a.rope.head_dim = head_dim;
    a.rope.theta_scale = a.rope.pos_scale = 1.0f;
    a.k_new = dkn;
    a.v_new = dvn;
    a.qkv_stride = 0;
    cuda_attention(&a, s);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(out, dout, sizeof(float) * n_items * qd, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    int rc = 0;
    for (int sq = 0; decode && sq < n_items; sq++) { /* the stored rows */
        std::vector<uint16_t> kr(kvd), vr(kvd);
        CUDA_CHECK(cudaMemcpy(kr.data(), kv + 2 * sq * rows + (size_t)pos[sq] * kvd, 2 * kvd,
                              cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(vr.data(), kv + (2 * sq + 1) * rows + (size_t)pos[sq] * kvd, 2 * kvd,
                              cudaMemcpyDeviceToHost));
        for (int d = 0; d < kvd; d++)
            if (kr[d] != k[(size_t)pos[sq] * kvd + d] || vr[d] != v[(size_t)pos[sq] * kvd + d])
                rc = -2;
    }
    cudaFree(dkn);
    cudaFree(dvn);
    cudaFree(kv);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(po);
    cudaFree(pml);
    cudaFree(dpos);
    cudaFree(dseq);
    cudaFree(dcnt);
    cudaStreamDestroy(s);
    return rc;
}
