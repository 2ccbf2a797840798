// SPDX-License-Identifier: MIT
/*
 * AVX2 paths of f32_ops.c, for rows that are a whole number of vectors
 * (f32_ops.c takes the others).  The |x| sums stay in
 * eight double lanes, element e in lane e % 8, as f32_internal.h defines.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "f32_internal.h"

struct acc_v {
	__m256d lo, hi;		/* lanes 0-3 and 4-7 */
	uint64_t zeros;
};

static inline void accv_add(struct acc_v *a, __m256 v)
{
	__m256 mag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);

	a->zeros += (uint64_t)_mm_popcnt_u32((uint32_t)_mm256_movemask_ps(
		_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_EQ_OQ)));
	a->lo = _mm256_add_pd(a->lo, _mm256_cvtps_pd(_mm256_castps256_ps128(mag)));
	a->hi = _mm256_add_pd(a->hi, _mm256_cvtps_pd(_mm256_extractf128_ps(mag, 1)));
}

static inline void accv_load(struct acc_v *a, const struct f32_acc *s)
{
	a->lo = _mm256_loadu_pd(s->s);
	a->hi = _mm256_loadu_pd(s->s + 4);
	a->zeros = s->zeros;
}

static inline void accv_store(const struct acc_v *a, struct f32_acc *s)
{
	_mm256_storeu_pd(s->s, a->lo);
	_mm256_storeu_pd(s->s + 4, a->hi);
	s->zeros = a->zeros;
}

void spt_f32_bias_act_avx2(float *y, size_t rows, uint32_t cols, const float *bias, int relu,
			   struct f32_acc *acc)
{
	__m256 zero = _mm256_setzero_ps();
	struct acc_v a;
	size_t r;
	uint32_t c;

	memset(&a, 0, sizeof(a));
	if (acc)
		accv_load(&a, acc);
	for (r = 0; r < rows; r++, y += cols)
		for (c = 0; c < cols; c += 8) {
			__m256 v = _mm256_loadu_ps(y + c);

			if (bias)
				v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
			if (relu)	/* v > 0 ? v : +0: NaN and -0 give +0 */
				v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
			_mm256_storeu_ps(y + c, v);
			if (acc)
				accv_add(&a, v);
		}
	if (acc)
		accv_store(&a, acc);
}

void spt_f32_stats_avx2(const float *x, size_t n, struct f32_acc *acc)
{
	struct acc_v a;
	size_t e;

	accv_load(&a, acc);
	for (e = 0; e + 8 <= n; e += 8)
		accv_add(&a, _mm256_loadu_ps(x + e));
	accv_store(&a, acc);
	for (; e < n; e++)
		f32_acc_add(acc, x[e], e);
}

void spt_f32_colsum_avx2(const float *x, size_t rows, uint32_t cols, float *out)
{
	uint32_t c0, k, nv;
	size_t r;

	/* four vectors of columns per pass over the rows, each column summed in row order */
	for (c0 = 0; c0 < cols; c0 += 8 * nv) {
		__m256 s[4];
		const float *p = x + c0;

		nv = (cols - c0) / 8 < 4 ? (cols - c0) / 8 : 4;
		for (k = 0; k < 4; k++)
			s[k] = _mm256_setzero_ps();
		for (r = 0; r < rows; r++, p += cols)
			for (k = 0; k < nv; k++)
				s[k] = _mm256_add_ps(s[k], _mm256_loadu_ps(p + 8 * k));
		for (k = 0; k < nv; k++)
			_mm256_storeu_ps(out + c0 + 8 * k, s[k]);
	}
}

/* An exponent field of all ones is NaN or infinity; 32 floats per round. */
uint32_t spt_f32_nonfinite_avx2(const float *x, size_t n)
{
	const __m256i ex = _mm256_set1_epi32(0x7f800000);
	__m256i b0 = _mm256_setzero_si256(), b1 = b0;
	size_t i = 0;

#define NONFINITE(p) _mm256_cmpeq_epi32(_mm256_and_si256( \
	_mm256_loadu_si256((const __m256i *)(p)), ex), ex)
	for (; i + 32 <= n; i += 32) {
		b0 = _mm256_or_si256(b0, _mm256_or_si256(NONFINITE(x + i), NONFINITE(x + i + 8)));
		b1 = _mm256_or_si256(b1, _mm256_or_si256(NONFINITE(x + i + 16),
							 NONFINITE(x + i + 24)));
	}
	for (; i < n; i += 8)
		b0 = _mm256_or_si256(b0, NONFINITE(x + i));
#undef NONFINITE
	b0 = _mm256_or_si256(b0, b1);
	return !_mm256_testz_si256(b0, b0);
}
