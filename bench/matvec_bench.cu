/* matvec_bench.cu - workbench for the matvec family (llm.c dev/cuda style).
 *
 * For each weight type and Llama-2-7B shape: quantizes a slab of random rows
 * on the CPU (src/quant), replicates it over the full matrix on the GPU,
 * checks cuda_matvec against quant_matvec (max |y-ref| / max |ref|), then
 * times it with CUDA events, rotating through enough weight copies that
 * every launch streams from DRAM (> 3x L2). Reports GB/s of weight bytes and
 * % of the measured device-to-device copy bandwidth (read + write).
 *
 * usage: matvec_bench [--quick] [--nscale] [--grp] [--dp] [--types q4_0,q8_0,...] [--vars n1_def,...]
 *                     [--log FILE]
 * (--grp: n = 8 and 16 with each mv_grp configuration of the sweep, 4096-column shapes)
 * (--nscale: n = 1, 2, 4, 8, 16 on every shape, new kernel against the previous one) */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/cuda_common.cuh"
extern "C" {
#include "gguf/gguf.h"
#include "quant/quant.h"
}

void cuda_matvec_variant(uint32_t type, const void *W, int64_t rows, int64_t cols, const float *X,
                         int n, float *Y, const float *bias, int accumulate, cudaStream_t s,
                         int r1);

/* defined in norm_rope.cu in the library; the bench links matvec.cu alone.
 * MV_PDL=1: matvec launches use programmatic dependent launch (sm_90+), as
 * in the backend's decode, so back-to-back launches overlap. */
int cuda_pdl_on = 0;

static FILE *g_log = nullptr;
#define LOG(...)                                                                                   \
    do {                                                                                           \
        printf(__VA_ARGS__);                                                                       \
        if (g_log) fprintf(g_log, __VA_ARGS__);                                                    \
        fflush(stdout);                                                                            \
    } while (0)

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand() { /* [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / (1ull << 24))) * 2.0f - 1.0f;
}

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

static double copy_bandwidth() {
    const size_t bytes = 1ull << 30;
    void *a, *b;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&b, bytes));
    CUDA_CHECK(cudaMemset(a, 1, bytes));
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    std::vector<float> t;
    for (int i = 0; i < 12; i++) {
        CUDA_CHECK(cudaEventRecord(e0));
        CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaEventRecord(e1));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 2) t.push_back(ms);
    }
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    return 2.0 * bytes / (median(t) * 1e-3) / 1e9;
}

struct Result {
    std::string type, shape, variant;
    int n;
    double us, gbs, pct, err;
};

int main(int argc, char **argv) {
    bool quick = false, nscale = false, grp = false, dpv = false;
    std::string only, only_vars;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            only = std::string(",") + argv[++i] + ",";
        else if (!strcmp(argv[i], "--nscale"))
            nscale = true;
        else if (!strcmp(argv[i], "--dp"))
            dpv = true;
        else if (!strcmp(argv[i], "--grp"))
            grp = true;
        else if (!strcmp(argv[i], "--vars") && i + 1 < argc)
            only_vars = std::string(",") + argv[++i] + ",";
        else if (!strcmp(argv[i], "--log") && i + 1 < argc)
            g_log = fopen(argv[++i], "w");
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const size_t l2 = (size_t)prop.l2CacheSize;
    LOG("device: %s, sm_%d%d, %d SMs, L2 %zu MB\n", prop.name, prop.major, prop.minor,
        prop.multiProcessorCount, l2 >> 20);
    cuda_pdl_on = getenv("MV_PDL") && atoi(getenv("MV_PDL")) && prop.major >= 9;
    LOG("PDL launches: %s\n", cuda_pdl_on ? "on" : "off");
    const double copy_gbs = copy_bandwidth();
    LOG("device-to-device copy: %.0f GB/s (read + write)\n", copy_gbs);

    const uint32_t types[] = {GGML_TYPE_F16,  GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K,
                              GGML_TYPE_BF16, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                              GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    struct Shp {
        int rows, cols;
        const char *name;
    };
    const Shp shapes[] = {{4096, 4096, "4096x4096"},
                          {11008, 4096, "11008x4096"},
                          {4096, 11008, "4096x11008"},
                          {32000, 4096, "32000x4096"}};
    const int SLAB = 256; /* quantized rows, replicated */
    std::vector<Result> res;
    int failures = 0;

    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));

    for (uint32_t type : types) {
        const char *tname = ggml_type_name(type);
        std::string lname = tname; /* --types is case-insensitive (q4_k = q4_K) */
        for (auto &ch : lname) ch = (char)tolower((unsigned char)ch);
        for (auto &ch : only) ch = (char)tolower((unsigned char)ch);
        if (!only.empty() && only.find(std::string(",") + lname + ",") == std::string::npos)
            continue;
        const bool main_type = type == GGML_TYPE_F16 || type == GGML_TYPE_Q8_0 ||
                               type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_K;
        for (const Shp &sh : shapes) {
            if (quick && !main_type && sh.rows != 11008) continue;
            if (grp && sh.cols != 4096) continue;
            const size_t rb = ggml_row_size(type, (uint64_t)sh.cols);
            const size_t wbytes = rb * (size_t)sh.rows;
            /* CPU slab */
            std::vector<uint8_t> slab(rb * SLAB);
            std::vector<float> f(sh.cols);
            for (int r = 0; r < SLAB; r++) {
                for (int c = 0; c < sh.cols; c++) f[c] = frand() * (r % 7 == 3 ? 4.0f : 1.0f);
                quant_quantize_row(type, f.data(), slab.data() + rb * r, sh.cols);
            }
            /* uploaded as the backend stores it (device layout, e.g. split Q8_0/Q4_0) */
            const uint32_t dtype = cuda_upload_type(type, sh.cols);
            std::vector<uint8_t> up(slab.size());
            cuda_repack_rows(dtype, sh.cols, SLAB, slab.data(), up.data());
            /* GPU copies: enough that the rotation exceeds 3x L2 */
            int ncopies = (int)std::max<size_t>(1, (3 * l2 + wbytes - 1) / wbytes + 1);
            ncopies = std::min(ncopies, 64);
            std::vector<uint8_t *> dW(ncopies);
            for (int k = 0; k < ncopies; k++) {
                CUDA_CHECK(cudaMalloc(&dW[k], wbytes));
                if (k > 0) {
                    CUDA_CHECK(cudaMemcpy(dW[k], dW[0], wbytes, cudaMemcpyDeviceToDevice));
                    continue;
                }
                for (int r = 0; r < sh.rows; r += SLAB) {
                    const int cnt = std::min(SLAB, sh.rows - r);
                    CUDA_CHECK(
                        cudaMemcpy(dW[k] + rb * r, up.data(), rb * cnt, cudaMemcpyHostToDevice));
                }
            }
            const int NMAX = 16;
            std::vector<float> X((size_t)NMAX * sh.cols);
            for (auto &x : X) x = frand();
            float *dX, *dY;
            CUDA_CHECK(cudaMalloc(&dX, sizeof(float) * X.size()));
            CUDA_CHECK(cudaMalloc(&dY, sizeof(float) * (size_t)NMAX * sh.rows));
            CUDA_CHECK(cudaMemcpy(dX, X.data(), sizeof(float) * X.size(), cudaMemcpyHostToDevice));

            struct Var {
                int n, r1;
                const char *name;
            };
            /* r1 (see cuda_matvec_variant): 0 default, 1/2 rows per warp of the fast
             * path (2 = default), 102 = the staged v3 kernel (before) */
            std::vector<Var> vars = {{1, 0, "n1_def"}, {1, 102, "n1_o2"}, {1, 1, "n1_r1"},
                                     {1, 2, "n1_r2"},  {1, 4, "n1_r4"},   {4, 0, "n4"},
                                     {8, 0, "n8"}};
            if (grp) { /* mv_grp configurations (grp_variant in matvec.cu), n = 8 and 16 */
                static const char *nm8[] = {"n8",    "n8_g1", "n8_g2", "n8_g3",
                                            "n8_g4", "n8_g5", "n8_g6"};
                static const char *nm16[] = {"n16",    "n16_g1", "n16_g2", "n16_g3",
                                             "n16_g4", "n16_g5", "n16_g6"};
                vars.clear();
                vars.push_back({1, 0, "n1_def"});
                for (int k = 0; k <= 6; k++) vars.push_back({8, k ? 300 + k : 0, nm8[k]});
                for (int k = 0; k <= 6; k++) vars.push_back({16, k ? 300 + k : 0, nm16[k]});
            } else if (dpv) /* integer dot products (sm_61+) against the FP32 kernels */
                vars = {{1, 0, "n1_def"},    {1, 600, "n1_f32"},   {1, 501, "n1_dp1"},
                        {1, 502, "n1_dp2"},  {1, 504, "n1_dp4"},   {1, 511, "n1_dp8r1"},
                        {1, 512, "n1_dp8r2"}, {1, 514, "n1_dp8r4"}, {1, 521, "n1_dp16r1"},
                        {1, 522, "n1_dp16r2"}, {2, 0, "n2"},
                        {4, 0, "n4"},        {8, 0, "n8"},         {8, 600, "n8_f32"}};
            else if (nscale) /* n-scaling: new kernel (nN) against the previous one (nN_old) */
                vars = {{1, 0, "n1_def"},   {2, 0, "n2"},       {2, 200, "n2_old"},
                        {4, 0, "n4"},       {4, 200, "n4_old"}, {8, 0, "n8"},
                        {8, 200, "n8_old"}, {16, 0, "n16"},     {16, 200, "n16_old"}};
            else if (sh.rows == 4096 && sh.cols == 4096) {
                vars.push_back({2, 0, "n2"});
                vars.push_back({4, 104, "n4_o"});
                vars.push_back({16, 0, "n16"});
            }
            if (!only_vars.empty()) { /* --vars n1_def,n8: only these variants */
                std::vector<Var> keep;
                for (const Var &v : vars)
                    if (only_vars.find(std::string(",") + v.name + ",") != std::string::npos)
                        keep.push_back(v);
                vars = keep;
            }
            for (const Var &v : vars) {
                /* validate (slab rows replicate, so ref row r = slab row r % SLAB) */
                std::vector<float> ref((size_t)v.n * SLAB), y((size_t)v.n * sh.rows);
                for (int i = 0; i < v.n; i++)
                    quant_matvec(type, slab.data(), sh.cols, 0, SLAB,
                                 X.data() + (size_t)i * sh.cols, ref.data() + (size_t)i * SLAB);
                CUDA_CHECK(cudaMemset(dY, 0xff, sizeof(float) * y.size())); /* NaN poison */
                cuda_matvec_variant(dtype, dW[0], sh.rows, sh.cols, dX, v.n, dY, nullptr, 0, 0,
                                    v.r1);
                CUDA_CHECK(cudaGetLastError());
                CUDA_CHECK(
                    cudaMemcpy(y.data(), dY, sizeof(float) * y.size(), cudaMemcpyDeviceToHost));
                double scale = 1e-6, err = 0;
                for (float r : ref) scale = std::max(scale, (double)std::fabs(r));
                for (int i = 0; i < v.n; i++)
                    for (int r = 0; r < sh.rows; r++) {
                        const double a = y[(size_t)i * sh.rows + r],
                                     b = ref[(size_t)i * SLAB + r % SLAB];
                        const double e = std::isfinite(a) ? std::fabs(a - b) / scale : 1e30;
                        err = std::max(err, e);
                    }
                if (err > 1e-3) failures++;
                /* time */
                for (int k = 0; k < 3; k++)
                    cuda_matvec_variant(dtype, dW[k % ncopies], sh.rows, sh.cols, dX, v.n, dY,
                                        nullptr, 0, 0, v.r1);
                std::vector<float> t;
                const int reps = 7;
                const int per = std::max(ncopies, 20);
                for (int rep = 0; rep < reps; rep++) {
                    CUDA_CHECK(cudaEventRecord(e0));
                    for (int k = 0; k < per; k++)
                        cuda_matvec_variant(dtype, dW[k % ncopies], sh.rows, sh.cols, dX, v.n, dY,
                                            nullptr, 0, 0, v.r1);
                    CUDA_CHECK(cudaEventRecord(e1));
                    CUDA_CHECK(cudaEventSynchronize(e1));
                    float ms;
                    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                    t.push_back(ms * 1000.0f / per);
                }
                CUDA_CHECK(cudaGetLastError());
                const double us = median(t);
                const double gbs = wbytes / (us * 1e-6) / 1e9;
                Result rr{tname, sh.name, v.name, v.n, us, gbs, 100.0 * gbs / copy_gbs, err};
                res.push_back(rr);
                LOG("%-5s %-11s %-6s %8.2f us %7.0f GB/s %5.1f%%  err %.2e%s\n", tname, sh.name,
                    v.name, us, gbs, rr.pct, err, err > 1e-3 ? "  FAIL" : "");
            }
            /* dequant_rows throughput (read weights + write FP32) on the first shape */
            if (sh.rows == 4096 && sh.cols == 4096) {
                float *dF;
                CUDA_CHECK(cudaMalloc(&dF, sizeof(float) * (size_t)sh.rows * sh.cols));
                cuda_dequant_rows(dtype, dW[0], 0, sh.rows, sh.cols, dF, 0);
                std::vector<float> t;
                for (int rep = 0; rep < 5; rep++) {
                    CUDA_CHECK(cudaEventRecord(e0));
                    for (int k = 0; k < 10; k++)
                        cuda_dequant_rows(dtype, dW[k % ncopies], 0, sh.rows, sh.cols, dF, 0);
                    CUDA_CHECK(cudaEventRecord(e1));
                    CUDA_CHECK(cudaEventSynchronize(e1));
                    float ms;
                    CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                    t.push_back(ms * 100.0f);
                }
                const double us = median(t);
                const double bytes = (double)wbytes + 4.0 * sh.rows * sh.cols;
                LOG("%-5s dequant_rows 4096x4096: %8.2f us %7.0f GB/s (read+write) %5.1f%%\n",
                    tname, us, bytes / (us * 1e-6) / 1e9,
                    100.0 * bytes / (us * 1e-6) / 1e9 / copy_gbs);
                CUDA_CHECK(cudaFree(dF));
            }
            for (auto p : dW) CUDA_CHECK(cudaFree(p));
            CUDA_CHECK(cudaFree(dX));
            CUDA_CHECK(cudaFree(dY));
        }
    }

    /* summary: best variant per type/shape at n=1, and the default (n1_def) */
    LOG("\n== summary n=1 (copy %.0f GB/s): GB/s and %% of copy, default variant [best variant] "
        "==\n",
        copy_gbs);
    LOG("%-5s", "type");
    for (const Shp &sh : shapes) LOG(" %22s", sh.name);
    LOG("\n");
    std::vector<std::string> seen;
    for (const Result &r : res) {
        if (std::find(seen.begin(), seen.end(), r.type) != seen.end()) continue;
        seen.push_back(r.type);
        LOG("%-5s", r.type.c_str());
        for (const Shp &sh : shapes) {
            const Result *def = nullptr, *best = nullptr;
            for (const Result &q : res)
                if (q.type == r.type && q.shape == sh.name && q.n == 1) {
                    if (q.variant == "n1_def") def = &q;
                    if (!best || q.gbs > best->gbs) best = &q;
                }
            if (def)
                LOG(" %5.0f %4.1f%% [%s %4.1f%%]", def->gbs, def->pct, best->variant.c_str() + 3,
                    best->pct);
            else
                LOG(" %22s", "-");
        }
        LOG("\n");
    }
    LOG("validation failures: %d\n", failures);
    if (g_log) fclose(g_log);
    return failures ? 1 : 0;
}
