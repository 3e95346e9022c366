// Float kernels for AVX2 + FMA + F16C (include/CKujiraKernels.h): the same operations in the same order as their Swift
// references in KujiraTensor — a Swift `SIMD16` is two ymm registers here, `addProduct` one FMA per lane, `a += b * c` a
// multiply then an add (contraction is off below), `sum()` the lanes added first to last — so the bits are the same.
#include "CKujiraKernels.h"

#if defined(__x86_64__)
#include <string.h>
#include "avx2.h"

// Swift's `SIMD8<Float>.sum()`: lane 0 + lane 1 + ... + lane 7, in order.
K_INLINE float sum8(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    float s = l[0];
    for (int i = 1; i < 8; i++) s += l[i];
    return s;
}

// `SIMD16<Float>.sum()` of (low, high).
K_INLINE float sum16(__m256 low, __m256 high) {
    float l[16];
    _mm256_storeu_ps(l, low);
    _mm256_storeu_ps(l + 8, high);
    float s = l[0];
    for (int i = 1; i < 16; i++) s += l[i];
    return s;
}

K_INLINE float half_to_float(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16((short)h))); }

K_AVX2 float kujira_dot_f32(const float *a, const float *b, long n) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    float sum = sum16(lo, hi);
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

K_AVX2 float kujira_row_dot_f32(const void *w, const float *x, long count) {
    const float *wf = (const float *)w;
    __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l;
    long i = 0;
    for (; i + 32 <= count; i += 32) {
        a0l = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), a0l);
        a0h = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(x + i + 8), a0h);
        a1l = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 16), _mm256_loadu_ps(x + i + 16), a1l);
        a1h = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 24), _mm256_loadu_ps(x + i + 24), a1h);
    }
    if (i + 16 <= count) {
        a0l = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(x + i), a0l);
        a0h = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(x + i + 8), a0h);
        i += 16;
    }
    float sum = sum16(_mm256_add_ps(a0l, a1l), _mm256_add_ps(a0h, a1h));
    for (; i < count; i++) {
        float wi;
        memcpy(&wi, wf + i, 4);
        sum += wi * x[i];
    }
    return sum;
}

// Swift's `FloatDots.halfToFloat`: the IEEE half in the low 16 bits of each lane, widened exactly by integer operations.
K_INLINE __m256 halves_to_float(__m256i h) {
    const __m256 magnitude = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7FFF)), 13)),
                                           _mm256_set1_ps(0x1p112f));
    const __m256i special = _mm256_srli_epi32(_mm256_sub_epi32(_mm256_and_si256(_mm256_xor_si256(h, _mm256_set1_epi32(-1)), _mm256_set1_epi32(0x7C00)),
                                                               _mm256_set1_epi32(1)), 31);
    __m256i bits = _mm256_or_si256(_mm256_castps_si256(magnitude), _mm256_slli_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x8000)), 16));
    bits = _mm256_or_si256(bits, _mm256_and_si256(_mm256_sub_epi32(_mm256_setzero_si256(), special), _mm256_set1_epi32(0x7F800000)));
    return _mm256_castsi256_ps(bits);
}

// Even (low) and odd (high) halves of 8 lanes of two halves each, as Floats.
K_INLINE void split_halves(__m256i v, int is_f16, __m256 *even, __m256 *odd) {
    if (is_f16) {
        *even = halves_to_float(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)));
        *odd = halves_to_float(_mm256_srli_epi32(v, 16));
    } else {
        *even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        *odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
    }
}

K_INLINE float bf16_to_float(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

K_INLINE float row_dot_half(int is_f16, const void *w, const float *xs, long count) {
    const unsigned char *wb = (const unsigned char *)w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const long chunks = count / 16;
#pragma clang loop unroll_count(4)
    for (long c = 0; c < chunks; c++) {
        __m256 even, odd;
        split_halves(_mm256_loadu_si256((const __m256i *)(wb + 32 * c)), is_f16, &even, &odd);
        acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(even, _mm256_loadu_ps(xs + 16 * c)));
        acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(odd, _mm256_loadu_ps(xs + 16 * c + 8)));
    }
    float sum = sum8(_mm256_add_ps(acc0, acc1));
    for (long i = 16 * chunks; i < count; i++) {
        uint16_t h;
        memcpy(&h, wb + 2 * i, 2);
        sum += (is_f16 ? half_to_float(h) : bf16_to_float(h)) * xs[i];
    }
    return sum;
}

K_AVX2 float kujira_row_dot_half(int is_f16, const void *w, const float *xs, long count) {
    return is_f16 ? row_dot_half(1, w, xs, count) : row_dot_half(0, w, xs, count);
}

K_INLINE void decode_half_row(int is_f16, const void *w, long count, float *out) {
    const unsigned char *wb = (const unsigned char *)w;
    const long chunks = count / 16;
    for (long c = 0; c < chunks; c++) {
        __m256 even, odd;
        split_halves(_mm256_loadu_si256((const __m256i *)(wb + 32 * c)), is_f16, &even, &odd);
        _mm256_storeu_ps(out + 16 * c, even);
        _mm256_storeu_ps(out + 16 * c + 8, odd);
    }
    for (long i = 16 * chunks; i < count; i++) {
        uint16_t h;
        memcpy(&h, wb + 2 * i, 2);
        out[i] = is_f16 ? half_to_float(h) : bf16_to_float(h);
    }
}

K_AVX2 void kujira_decode_half_row(int is_f16, const void *w, long count, float *out) {
    if (is_f16) decode_half_row(1, w, count, out); else decode_half_row(0, w, count, out);
}

K_AVX2 float kujira_split_decoded_dot(const float *w, const float *xs, long count) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const long chunks = count / 16;
#pragma clang loop unroll_count(4)
    for (long c = 0; c < chunks; c++) {
        acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(_mm256_loadu_ps(w + 16 * c), _mm256_loadu_ps(xs + 16 * c)));
        acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(_mm256_loadu_ps(w + 16 * c + 8), _mm256_loadu_ps(xs + 16 * c + 8)));
    }
    float sum = sum8(_mm256_add_ps(acc0, acc1));
    for (long i = 16 * chunks; i < count; i++) sum += w[i] * xs[i];
    return sum;
}

// Swift's 4-lane sum of ((acc0 + acc1) + (acc2 + acc3)).
K_INLINE float sum4(__m128 v) {
    float l[4];
    _mm_storeu_ps(l, v);
    return ((l[0] + l[1]) + l[2]) + l[3];
}

K_AVX2 float kujira_e4m3_dot(const void *w, const float *xs, long start, long end, const float *table) {
    const unsigned char *wb = (const unsigned char *)w;
    __m128 acc0 = _mm_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float sum = 0;
    long i = start;
    const __m128 scale = _mm_set1_ps(0x1p120f);
    const __m128i sign = _mm_set1_epi32((int)0x80000000u), field = _mm_set1_epi32(0x07F00000);
    for (; i + 16 <= end; i += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(wb + i));
        // A NaN code (0x7F/0xFF) or a subnormal (exponent 0) anywhere in the chunk: the scalar path, as the Swift kernel
        // (its zero-byte tests: `inverted` has a 0 byte where a NaN code was, `exponent` where a subnormal was).
        const __m128i ones = _mm_set1_epi32(0x01010101), highs = _mm_set1_epi32((int)0x80808080u);
        const __m128i inverted = _mm_xor_si128(_mm_or_si128(v, highs), _mm_set1_epi32(-1)), exponent = _mm_and_si128(v, _mm_set1_epi32(0x78787878));
        const __m128i special = _mm_and_si128(_mm_or_si128(_mm_andnot_si128(inverted, _mm_sub_epi32(inverted, ones)),
                                                           _mm_andnot_si128(exponent, _mm_sub_epi32(exponent, ones))), highs);
        if (!_mm_testz_si128(special, special)) {
            for (int k = 0; k < 16; k++) sum += table[wb[i + k]] * xs[i + (k % 4) * 4 + k / 4];
            continue;
        }
        const __m128 f0 = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(_mm_slli_epi32(v, 24), sign), _mm_and_si128(_mm_slli_epi32(v, 20), field)));
        const __m128 f1 = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(_mm_slli_epi32(v, 16), sign), _mm_and_si128(_mm_slli_epi32(v, 12), field)));
        const __m128 f2 = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(_mm_slli_epi32(v, 8), sign), _mm_and_si128(_mm_slli_epi32(v, 4), field)));
        const __m128 f3 = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(v, sign), _mm_and_si128(_mm_srli_epi32(v, 4), field)));
        acc0 = _mm_fmadd_ps(_mm_mul_ps(f0, scale), _mm_loadu_ps(xs + i), acc0);
        acc1 = _mm_fmadd_ps(_mm_mul_ps(f1, scale), _mm_loadu_ps(xs + i + 4), acc1);
        acc2 = _mm_fmadd_ps(_mm_mul_ps(f2, scale), _mm_loadu_ps(xs + i + 8), acc2);
        acc3 = _mm_fmadd_ps(_mm_mul_ps(f3, scale), _mm_loadu_ps(xs + i + 12), acc3);
    }
    sum += sum4(_mm_add_ps(_mm_add_ps(acc0, acc1), _mm_add_ps(acc2, acc3)));
    for (; i < end; i++) sum += table[wb[i]] * xs[i];
    return sum;
}

K_AVX2 void kujira_decode_e4m3_row(const void *w, long count, const float *table, float *out, unsigned char *special) {
    const unsigned char *wb = (const unsigned char *)w;
    const long chunks = count / 16;
    for (long c = 0; c < chunks; c++) {
        const unsigned char *chunk = wb + 16 * c;
        unsigned char flag = 0;
        for (int k = 0; k < 16; k++) {
            const unsigned char b = chunk[k];
            flag |= (b & 0x7F) == 0x7F || (b & 0x78) == 0;
            out[16 * c + (k % 4) * 4 + k / 4] = table[b];
        }
        special[c] = flag;
    }
    for (long i = 16 * chunks; i < count; i++) out[i] = table[wb[i]];
}

K_AVX2 float kujira_e4m3_decoded_dot(const float *w, const unsigned char *special, const float *xs, long start, long end) {
    __m128 acc0 = _mm_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float sum = 0;
    long i = start;
    for (; i + 16 <= end; i += 16) {
        if (special[i / 16]) {
            for (int k = 0; k < 16; k++) {
                const long position = i + (k % 4) * 4 + k / 4;
                sum += w[position] * xs[position];
            }
            continue;
        }
        acc0 = _mm_fmadd_ps(_mm_loadu_ps(w + i), _mm_loadu_ps(xs + i), acc0);
        acc1 = _mm_fmadd_ps(_mm_loadu_ps(w + i + 4), _mm_loadu_ps(xs + i + 4), acc1);
        acc2 = _mm_fmadd_ps(_mm_loadu_ps(w + i + 8), _mm_loadu_ps(xs + i + 8), acc2);
        acc3 = _mm_fmadd_ps(_mm_loadu_ps(w + i + 12), _mm_loadu_ps(xs + i + 12), acc3);
    }
    sum += sum4(_mm_add_ps(_mm_add_ps(acc0, acc1), _mm_add_ps(acc2, acc3)));
    for (; i < end; i++) sum += w[i] * xs[i];
    return sum;
}

K_AVX2 void kujira_add_scaled(const float *x, float a, float *out, long n) {
    for (long i = 0; i < n; i++) out[i] += a * x[i];
}

// Four rows' eight lanes transposed: out[i] holds lane i of rows 0..3.
K_INLINE void transpose_lanes4(const __m256 v[4], __m128 out[8]) {
    // Per 128-bit half: t0 = lanes (0, 0, 1, 1) of rows (0, 1, 0, 1), …; then each row quad of a lane.
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 c0 = _mm256_shuffle_ps(t0, t2, 0x44), c1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 c2 = _mm256_shuffle_ps(t1, t3, 0x44), c3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    // c0 = lane 0 (low half) and lane 4 (high half) of rows 0..3; c1 lanes 1 and 5; c2 lanes 2 and 6; c3 lanes 3 and 7.
    out[0] = _mm256_castps256_ps128(c0); out[4] = _mm256_extractf128_ps(c0, 1);
    out[1] = _mm256_castps256_ps128(c1); out[5] = _mm256_extractf128_ps(c1, 1);
    out[2] = _mm256_castps256_ps128(c2); out[6] = _mm256_extractf128_ps(c2, 1);
    out[3] = _mm256_castps256_ps128(c3); out[7] = _mm256_extractf128_ps(c3, 1);
}

// `sum16(lo[k], hi[k])` of four rows at once: the lanes transposed so that one 4-wide register holds lane i of the four
// rows, then the same sequential sum (lane 0 + lane 1 + … + lane 15) as 15 vertical adds.
K_INLINE __m128 sum16x4(const __m256 lo[4], const __m256 hi[4]) {
    __m128 lanes[16];
    transpose_lanes4(lo, lanes);
    transpose_lanes4(hi, lanes + 8);
    __m128 sum = lanes[0];
    for (int i = 1; i < 16; i++) sum = _mm_add_ps(sum, lanes[i]);
    return sum;
}

// `sum8(v[k])` of four rows at once, the same way.
K_INLINE __m128 sum8x4(const __m256 v[4]) {
    __m128 lanes[8];
    transpose_lanes4(v, lanes);
    __m128 sum = lanes[0];
    for (int i = 1; i < 8; i++) sum = _mm_add_ps(sum, lanes[i]);
    return sum;
}

// Rows i < count of `rows` (stride floats apart) · q into out[i] (adding: out[i] + the dot): four rows at a time sharing q's
// loads, with eight independent FMA chains where one `kujira_dot_f32` has two; each row's operations are that function's.
K_AVX2 void kujira_dot_f32_rows(const float *q, const float *rows, long stride, long count, long n, float *out, int adding) {
    long r = 0;
    for (; r + 4 <= count; r += 4) {
        const float *k[4] = {rows + r * stride, rows + (r + 1) * stride, rows + (r + 2) * stride, rows + (r + 3) * stride};
        __m256 lo[4], hi[4];
        for (int j = 0; j < 4; j++) { lo[j] = _mm256_setzero_ps(); hi[j] = _mm256_setzero_ps(); }
        long i = 0;
        for (; i + 16 <= n; i += 16) {
            const __m256 a = _mm256_loadu_ps(q + i), b = _mm256_loadu_ps(q + i + 8);
            for (int j = 0; j < 4; j++) {
                lo[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(k[j] + i), lo[j]);
                hi[j] = _mm256_fmadd_ps(b, _mm256_loadu_ps(k[j] + i + 8), hi[j]);
            }
        }
        float sum[4];
        _mm_storeu_ps(sum, sum16x4(lo, hi));
        for (; i < n; i++)
            for (int j = 0; j < 4; j++) sum[j] += q[i] * k[j][i];
        for (int j = 0; j < 4; j++) out[r + j] = adding ? out[r + j] + sum[j] : sum[j];
    }
    for (; r < count; r++) {
        const float dot = kujira_dot_f32(q, rows + r * stride, n);
        out[r] = adding ? out[r] + dot : dot;
    }
}

// o + w · (8 values of a float (`half` 0) or half row from index `at`), as the single-row kernel combines them:
// `kujira_add_scaled` a multiply then an add, `kujira_half_add_scaled` one FMA.
K_INLINE __m256 add_scaled8(int half, __m256 o, __m256 w, const void *rows, long at) {
    if (half) return _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)rows + at))), w, o);
    return _mm256_add_ps(o, _mm256_mul_ps(w, _mm256_loadu_ps((const float *)rows + at)));
}

// Value `at` of a float (`half` 0) or half row.
K_INLINE float row_value(int half, const void *rows, long at) {
    return half ? half_to_float(((const uint16_t *)rows)[at]) : ((const float *)rows)[at];
}

// out (n,) += weights[i] · row i for i < count, in order, over float (`half` 0) or half rows: per value the single-row
// kernel's operations (`add_scaled8`), row after row, with 64 values of out kept in registers across all the rows
// instead of loaded and stored per row.
K_INLINE void add_scaled_rows(int half, const void *rows, long stride, const float *weights, long count, long n, float *out) {
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 o[8];
        for (int j = 0; j < 8; j++) o[j] = _mm256_loadu_ps(out + i + 8 * j);
        for (long r = 0; r < count; r++) {
            const __m256 w = _mm256_set1_ps(weights[r]);
            for (int j = 0; j < 8; j++) o[j] = add_scaled8(half, o[j], w, rows, r * stride + i + 8 * j);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + i + 8 * j, o[j]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 o = _mm256_loadu_ps(out + i);
        for (long r = 0; r < count; r++) o = add_scaled8(half, o, _mm256_set1_ps(weights[r]), rows, r * stride + i);
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < n; i++) {
        float o = out[i];
        for (long r = 0; r < count; r++) o += weights[r] * row_value(half, rows, r * stride + i);
        out[i] = o;
    }
}

K_AVX2 void kujira_add_scaled_rows(const float *rows, long stride, const float *weights, long count, long n, float *out) {
    add_scaled_rows(0, rows, stride, weights, count, n, out);
}

K_AVX2 void kujira_half_add_scaled_rows(const uint16_t *rows, long stride, const float *weights, long count, long n, float *out) {
    add_scaled_rows(1, rows, stride, weights, count, n, out);
}

K_AVX2 void kujira_half_store(const float *row, long count, uint16_t *out) {
    long i = 0;
    for (; i + 8 <= count; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(row + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < count; i++) out[i] = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(row[i]), _MM_FROUND_TO_NEAREST_INT), 0);
}

K_AVX2 float kujira_half_dot(const float *q, const uint16_t *row, long count) {
    __m256 acc = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= count; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i))), _mm256_loadu_ps(q + i), acc);
    float sum = sum8(acc);
    for (; i < count; i++) sum += q[i] * half_to_float(row[i]);
    return sum;
}

K_AVX2 void kujira_half_add_scaled(const uint16_t *row, long count, float weight, float *out) {
    const __m256 factor = _mm256_set1_ps(weight);
    long i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i))), factor, _mm256_loadu_ps(out + i)));
    for (; i < count; i++) out[i] += weight * half_to_float(row[i]);
}

K_INLINE __m256 int8_to_float(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

K_AVX2 float kujira_int8_dot(const float *q, const int8_t *codes, const float *scales, long group_size, long count) {
    float total = 0;
    for (long start = 0, g = 0; start < count; start += group_size, g++) {
        __m256 acc = _mm256_setzero_ps();
        long i = start;
        const long end = start + group_size;
        for (; i + 8 <= end; i += 8) acc = _mm256_fmadd_ps(int8_to_float(codes + i), _mm256_loadu_ps(q + i), acc);
        float sum = sum8(acc);
        for (; i < end; i++) sum += q[i] * (float)codes[i];
        total += sum * scales[g];
    }
    return total;
}

// `kujira_half_dot` of q with each of `count` half rows `stride` halves apart into out[i] (adding: out[i] + the dot): four
// rows at a time, four FMA chains instead of one, the lane sums transposed (`sum8x4`); each row's operations unchanged.
K_AVX2 void kujira_half_dot_rows(const float *q, const uint16_t *rows, long stride, long count, long n, float *out, int adding) {
    long r = 0;
    for (; r + 4 <= count; r += 4) {
        const uint16_t *k[4] = {rows + r * stride, rows + (r + 1) * stride, rows + (r + 2) * stride, rows + (r + 3) * stride};
        __m256 acc[4];
        for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_ps();
        long i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 a = _mm256_loadu_ps(q + i);
            for (int j = 0; j < 4; j++) acc[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k[j] + i))), a, acc[j]);
        }
        float sum[4];
        _mm_storeu_ps(sum, sum8x4(acc));
        for (; i < n; i++)
            for (int j = 0; j < 4; j++) sum[j] += q[i] * half_to_float(k[j][i]);
        for (int j = 0; j < 4; j++) out[r + j] = adding ? out[r + j] + sum[j] : sum[j];
    }
    for (; r < count; r++) {
        const float dot = kujira_half_dot(q, rows + r * stride, n);
        out[r] = adding ? out[r] + dot : dot;
    }
}

K_AVX2 void kujira_int8_add_scaled(const int8_t *codes, const float *scales, long group_size, long count, float weight, float *out) {
    for (long start = 0, g = 0; start < count; start += group_size, g++) {
        const float a = weight * scales[g];
        const __m256 factor = _mm256_set1_ps(a);
        long i = start;
        const long end = start + group_size;
        for (; i + 8 <= end; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(int8_to_float(codes + i), factor, _mm256_loadu_ps(out + i)));
        for (; i < end; i++) out[i] += a * (float)codes[i];
    }
}

K_AVX2 void kujira_indexer_block_scores(const float *q, int heads, int dim, const float *weights, float scale, const float *tile, float *out) {
    __m256 total = _mm256_setzero_ps();
    const __m256 s = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    int h = 0;
    for (; h + 4 <= heads; h += 4) {
        const float *q0 = q + (long)h * dim, *q1 = q0 + dim, *q2 = q1 + dim, *q3 = q2 + dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < dim; c++) {
            const __m256 t = _mm256_loadu_ps(tile + 8 * (long)c);
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(q0[c]), t, a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(q1[c]), t, a1);
            a2 = _mm256_fmadd_ps(_mm256_set1_ps(q2[c]), t, a2);
            a3 = _mm256_fmadd_ps(_mm256_set1_ps(q3[c]), t, a3);
        }
        // relu as the Swift `replacing(with: 0, where: x < 0)`: −0 and NaN stay.
        total = _mm256_fmadd_ps(_mm256_set1_ps(weights[h]), _mm256_blendv_ps(_mm256_mul_ps(a0, s), zero, _mm256_cmp_ps(_mm256_mul_ps(a0, s), zero, _CMP_LT_OQ)), total);
        total = _mm256_fmadd_ps(_mm256_set1_ps(weights[h + 1]), _mm256_blendv_ps(_mm256_mul_ps(a1, s), zero, _mm256_cmp_ps(_mm256_mul_ps(a1, s), zero, _CMP_LT_OQ)), total);
        total = _mm256_fmadd_ps(_mm256_set1_ps(weights[h + 2]), _mm256_blendv_ps(_mm256_mul_ps(a2, s), zero, _mm256_cmp_ps(_mm256_mul_ps(a2, s), zero, _CMP_LT_OQ)), total);
        total = _mm256_fmadd_ps(_mm256_set1_ps(weights[h + 3]), _mm256_blendv_ps(_mm256_mul_ps(a3, s), zero, _mm256_cmp_ps(_mm256_mul_ps(a3, s), zero, _CMP_LT_OQ)), total);
    }
    for (; h < heads; h++) {
        const float *qh = q + (long)h * dim;
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < dim; c++) a = _mm256_fmadd_ps(_mm256_set1_ps(qh[c]), _mm256_loadu_ps(tile + 8 * (long)c), a);
        const __m256 x = _mm256_mul_ps(a, s);
        total = _mm256_fmadd_ps(_mm256_set1_ps(weights[h]), _mm256_blendv_ps(x, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ)), total);
    }
    _mm256_storeu_ps(out, total);
}

#else

// Off x86-64 `kujira_isa_supported` is 0 and Swift never calls these.
float kujira_dot_f32(const float *a, const float *b, long n) { (void)a; (void)b; (void)n; return 0; }
float kujira_row_dot_f32(const void *w, const float *x, long count) { (void)w; (void)x; (void)count; return 0; }
float kujira_row_dot_half(int is_f16, const void *w, const float *xs, long count) { (void)is_f16; (void)w; (void)xs; (void)count; return 0; }
void kujira_decode_half_row(int is_f16, const void *w, long count, float *out) { (void)is_f16; (void)w; (void)count; (void)out; }
float kujira_split_decoded_dot(const float *w, const float *xs, long count) { (void)w; (void)xs; (void)count; return 0; }
float kujira_e4m3_dot(const void *w, const float *xs, long start, long end, const float *table) {
    (void)w; (void)xs; (void)start; (void)end; (void)table; return 0;
}
void kujira_decode_e4m3_row(const void *w, long count, const float *table, float *out, unsigned char *special) {
    (void)w; (void)count; (void)table; (void)out; (void)special;
}
float kujira_e4m3_decoded_dot(const float *w, const unsigned char *special, const float *xs, long start, long end) {
    (void)w; (void)special; (void)xs; (void)start; (void)end; return 0;
}
void kujira_add_scaled(const float *x, float a, float *out, long n) { (void)x; (void)a; (void)out; (void)n; }
void kujira_dot_f32_rows(const float *q, const float *rows, long stride, long count, long n, float *out, int adding) {
    (void)q; (void)rows; (void)stride; (void)count; (void)n; (void)out; (void)adding;
}
void kujira_add_scaled_rows(const float *rows, long stride, const float *weights, long count, long n, float *out) {
    (void)rows; (void)stride; (void)weights; (void)count; (void)n; (void)out;
}
void kujira_half_store(const float *row, long count, uint16_t *out) { (void)row; (void)count; (void)out; }
float kujira_half_dot(const float *q, const uint16_t *row, long count) { (void)q; (void)row; (void)count; return 0; }
void kujira_half_add_scaled(const uint16_t *row, long count, float weight, float *out) { (void)row; (void)count; (void)weight; (void)out; }
void kujira_half_dot_rows(const float *q, const uint16_t *rows, long stride, long count, long n, float *out, int adding) {
    (void)q; (void)rows; (void)stride; (void)count; (void)n; (void)out; (void)adding;
}
void kujira_half_add_scaled_rows(const uint16_t *rows, long stride, const float *weights, long count, long n, float *out) {
    (void)rows; (void)stride; (void)weights; (void)count; (void)n; (void)out;
}
float kujira_int8_dot(const float *q, const int8_t *codes, const float *scales, long group_size, long count) {
    (void)q; (void)codes; (void)scales; (void)group_size; (void)count; return 0;
}
void kujira_int8_add_scaled(const int8_t *codes, const float *scales, long group_size, long count, float weight, float *out) {
    (void)codes; (void)scales; (void)group_size; (void)count; (void)weight; (void)out;
}
void kujira_indexer_block_scores(const float *q, int heads, int dim, const float *weights, float scale, const float *tile, float *out) {
    (void)q; (void)heads; (void)dim; (void)weights; (void)scale; (void)tile; (void)out;
}

#endif
