// Writes the ggml quantization fixtures under tests/data/quant/ (format: README.md there).
//
// Linked against ggml's own ggml-quants.c, so the blocks and values in the fixtures are
// what ggml's reference quantizers (quantize_row_*_ref) and dequantizers produce.
// Built by tools/make_quant_fixtures.sh; run as `quant_fixtures OUT_DIR`.

#include "ggml-quants.h"
#include "ggml-impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ggml-quants.c refers to these ggml.c symbols only on paths the reference quantizers
// never take (imatrix quantization, row validation); stubs keep the rest of ggml out.
void ggml_abort(const char * file, int line, const char * fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "ggml_abort at %s:%d: ", file, line);
    vfprintf(stderr, fmt, args);
    va_end(args);
    abort();
}
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void) type; (void) ne; abort(); }
size_t ggml_type_size(enum ggml_type type) { (void) type; abort(); }
const char * ggml_type_name(enum ggml_type type) { (void) type; return "?"; }

// ---- deterministic inputs ---------------------------------------------------------------

static uint64_t rng_state = 0x726f706577616c6bULL;

static uint64_t next_u64(void) {
    // splitmix64
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uniform(float lo, float hi) {
    return lo + (hi - lo) * (float) ((next_u64() >> 40) * 0x1.0p-24);
}

static float normal(void) {
    double u1 = ((next_u64() >> 11) + 1) * 0x1.0p-53;
    double u2 = (next_u64() >> 11) * 0x1.0p-53;
    return (float) (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#define MAX_CASES 32
#define MAX_N 1024

struct input_case {
    const char * name;
    int n;
    float x[MAX_N];
};

static struct input_case cases[MAX_CASES];
static int n_cases = 0;

static struct input_case * new_case(const char * name, int n) {
    if (n_cases == MAX_CASES || n > MAX_N || n % 256 != 0) {
        fprintf(stderr, "bad case %s\n", name);
        exit(1);
    }
    struct input_case * c = &cases[n_cases++];
    c->name = name;
    c->n = n;
    return c;
}

static void make_cases(void) {
    struct input_case * c;

    c = new_case("normal", 512);
    for (int i = 0; i < c->n; i++) c->x[i] = normal();

    c = new_case("uniform", 512);
    for (int i = 0; i < c->n; i++) c->x[i] = uniform(-1.0f, 1.0f);

    // Trained weights: small values with a few large ones.
    c = new_case("outliers", 512);
    for (int i = 0; i < c->n; i++) {
        c->x[i] = 0.02f * normal();
        if (next_u64() % 50 == 0) c->x[i] = (next_u64() & 1 ? 1.0f : -1.0f) * uniform(0.5f, 2.0f);
    }

    // A whole zero super-block, then alternating zero and non-zero 32-blocks, one of
    // which is zero only in its second half (a zero 16-block for Q6_K).
    c = new_case("zero_blocks", 512);
    for (int i = 0; i < 256; i++) c->x[i] = 0.0f;
    for (int i = 256; i < 512; i++) c->x[i] = ((i / 32) % 2) ? normal() : 0.0f;
    for (int i = 256 + 32 + 16; i < 256 + 64; i++) c->x[i] = 0.0f;

    // A constant super-block, then constant 32-blocks of various signs and sizes.
    c = new_case("constant", 512);
    {
        static const float k[8] = {-1.5f, 0.0f, 1e-3f, 2.0f, -2.0f, 0.25f, 7.0f, -0.001f};
        for (int i = 0; i < 256; i++) c->x[i] = 0.37f;
        for (int i = 256; i < 512; i++) c->x[i] = k[(i - 256) / 32];
    }

    // Per-32 scales spread over five decades: the 6-bit sub-block scales of the K-quants
    // round some of them to zero.
    c = new_case("mixed_scale", 512);
    for (int i = 0; i < c->n; i += 16) {
        float s = powf(10.0f, uniform(-4.0f, 1.0f));
        for (int j = 0; j < 16; j++) c->x[i + j] = s * normal();
    }

    // ggml's test-quantize-fns data.
    c = new_case("ggml_cos", 512);
    for (int i = 0; i < c->n; i++) c->x[i] = 0.1f + 2.0f * cosf((float) i);

    // Scales below the smallest f16 subnormal round to zero in the block header.
    c = new_case("tiny", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = 1e-6f * normal();

    // f32 subnormals: reciprocal scales overflow to infinity.
    c = new_case("f32_subnormal", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = 1e-39f * normal();

    c = new_case("large", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = 1e4f * normal();

    // Multiples of 1/2 and 1/4: many products land exactly on rounding ties.
    c = new_case("ties", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = (float) ((int) (next_u64() % 33) - 16) * (i < 128 ? 0.5f : 0.25f);

    c = new_case("sparse", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = (next_u64() % 16 == 0) ? normal() : 0.0f;

    // All positive, so the K-quant minimum is clamped to zero; then all negative.
    c = new_case("positive", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = uniform(0.5f, 1.5f);

    c = new_case("negative", 256);
    for (int i = 0; i < c->n; i++) c->x[i] = uniform(-1.5f, -0.5f);
}

// ---- output -----------------------------------------------------------------------------

static FILE * open_out(const char * dir, const char * name) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE * f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void put(FILE * f, const void * p, size_t n) {
    if (fwrite(p, 1, n, f) != n) {
        perror("write");
        exit(1);
    }
}

static void put_u32(FILE * f, uint32_t v) { put(f, &v, 4); }

static void write_inputs(const char * dir) {
    FILE * f = open_out(dir, "inputs.bin");
    put(f, "RWQI", 4);
    put_u32(f, 1);
    put_u32(f, (uint32_t) n_cases);
    for (int c = 0; c < n_cases; c++) {
        uint8_t len = (uint8_t) strlen(cases[c].name);
        put(f, &len, 1);
        put(f, cases[c].name, len);
        put_u32(f, (uint32_t) cases[c].n);
        put(f, cases[c].x, sizeof(float) * cases[c].n);
    }
    fclose(f);
}

// ggml has no dequantize_row_q8_1: Q8_1 is only ever a dot-product operand. Its values
// are those of Q8_0, q * d; s is a cached d * sum(q).
static void dequantize_row_q8_1(const block_q8_1 * x, float * y, int64_t k) {
    for (int64_t i = 0; i < k / QK8_1; i++) {
        const float d = GGML_FP16_TO_FP32(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[i * QK8_1 + j] = x[i].qs[j] * d;
    }
}

typedef void (*quantize_fn)(const float *, void *, int64_t);
typedef void (*dequantize_fn)(const void *, float *, int64_t);

struct quant_type {
    const char * file;
    uint32_t id;
    int block_len;
    size_t block_bytes;
    quantize_fn quantize;
    dequantize_fn dequantize;
};

#define QT(file, id, qk, block, q, dq) \
    {file, id, qk, sizeof(block), (quantize_fn) q, (dequantize_fn) dq}

static const struct quant_type types[] = {
    QT("q4_0.bin", GGML_TYPE_Q4_0, QK4_0, block_q4_0, quantize_row_q4_0_ref, dequantize_row_q4_0),
    QT("q4_1.bin", GGML_TYPE_Q4_1, QK4_1, block_q4_1, quantize_row_q4_1_ref, dequantize_row_q4_1),
    QT("q5_0.bin", GGML_TYPE_Q5_0, QK5_0, block_q5_0, quantize_row_q5_0_ref, dequantize_row_q5_0),
    QT("q5_1.bin", GGML_TYPE_Q5_1, QK5_1, block_q5_1, quantize_row_q5_1_ref, dequantize_row_q5_1),
    QT("q8_0.bin", GGML_TYPE_Q8_0, QK8_0, block_q8_0, quantize_row_q8_0_ref, dequantize_row_q8_0),
    QT("q8_1.bin", GGML_TYPE_Q8_1, QK8_1, block_q8_1, quantize_row_q8_1_ref, dequantize_row_q8_1),
    QT("q4_k.bin", GGML_TYPE_Q4_K, QK_K, block_q4_K, quantize_row_q4_K_ref, dequantize_row_q4_K),
    QT("q5_k.bin", GGML_TYPE_Q5_K, QK_K, block_q5_K, quantize_row_q5_K_ref, dequantize_row_q5_K),
    QT("q6_k.bin", GGML_TYPE_Q6_K, QK_K, block_q6_K, quantize_row_q6_K_ref, dequantize_row_q6_K),
    QT("q8_k.bin", GGML_TYPE_Q8_K, QK_K, block_q8_K, quantize_row_q8_K_ref, dequantize_row_q8_K),
};

static void write_type(const char * dir, const struct quant_type * t) {
    FILE * f = open_out(dir, t->file);
    put(f, "RWQB", 4);
    put_u32(f, 1);
    put_u32(f, t->id);
    put_u32(f, (uint32_t) n_cases);
    for (int c = 0; c < n_cases; c++) {
        const int n = cases[c].n;
        const size_t nbytes = (size_t) (n / t->block_len) * t->block_bytes;
        // Zeroed, so that bytes a quantizer leaves unwritten (the bsums of an all-zero
        // Q8_K block) read as zero, which is what the Rust port writes.
        uint8_t * blocks = calloc(nbytes, 1);
        float * y = calloc((size_t) n, sizeof(float));
        t->quantize(cases[c].x, blocks, n);
        t->dequantize(blocks, y, n);
        put_u32(f, (uint32_t) nbytes);
        put(f, blocks, nbytes);
        put(f, y, sizeof(float) * n);
        free(blocks);
        free(y);
    }
    fclose(f);
}

// ---- float conversions ------------------------------------------------------------------

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void write_floats(const char * dir) {
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x7f800000, 0xff800000,                     // zeros, infinities
        0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fa00000,         // NaNs, quiet and
        0x7fbfffff, 0x7fffffff, 0xffffffff, 0x7f802000, 0x7fc0ffff,         // signalling
        0x00000001, 0x80000001, 0x007fffff, 0x00800000,                     // f32 subnormals
        0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000,         // f16 max, overflow
        0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x33000001,         // f16 min normal,
        0x32ffffff, 0x33400000, 0x33c00000, 0x34200000, 0x3f801000,         // subnormal, ties
        0x3f803000, 0x3f802fff, 0x3f808000, 0x3f818000, 0x3f80ffff,         // bf16 ties
        0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x3f800000, 0xbf800000,
    };
    const int n_special = (int) (sizeof(special) / sizeof(special[0]));
    const int n_random = 2048;
    const int n_range = 2048;
    const int n = n_special + n_random + n_range;

    FILE * f = open_out(dir, "floats.bin");
    put(f, "RWQF", 4);
    put_u32(f, 1);
    put_u32(f, (uint32_t) n);
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        if (i < n_special) {
            bits = special[i];
        } else if (i < n_special + n_random) {
            bits = (uint32_t) next_u64();
        } else {
            // Values in and around the f16 range, normal and subnormal.
            float mag = powf(2.0f, uniform(-27.0f, 17.0f));
            bits = to_bits((next_u64() & 1) ? -mag : mag);
        }
        const float x = from_bits(bits);
        // What ggml_fp32_to_fp16_row and ggml_fp32_to_bf16_row_ref do per element.
        const ggml_fp16_t h = GGML_FP32_TO_FP16(x);
        const ggml_bf16_t b = GGML_FP32_TO_BF16(x);
        put_u32(f, bits);
        put(f, &h, 2);
        put(f, &b.bits, 2);
    }

    // Every f16 bit pattern decoded, as an FNV-1a hash of the f32 bits.
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t u = to_bits(GGML_FP16_TO_FP32((ggml_fp16_t) h));
        for (int k = 0; k < 4; k++) {
            hash ^= (u >> (8 * k)) & 0xff;
            hash *= 0x100000001b3ULL;
        }
    }
    put(f, &hash, 8);
    fclose(f);
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    make_cases();
    write_inputs(argv[1]);
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) write_type(argv[1], &types[t]);
    write_floats(argv[1]);
    return 0;
}
