/* SPDX-License-Identifier: MIT */
/*
 * AVX2 paths of the codec.  Each computes exactly what the scalar code in
 * codec.c and bfp8.c computes (same float operations, same order), so the
 * encoded bytes and decoded floats are identical; check_codec tests that.
 */
#include <immintrin.h>

#include "codec_lut.h"
#include "codec_simd.h"

static inline uint32_t mask32(__m256 m0, __m256 m1, __m256 m2, __m256 m3)
{
	return (uint32_t)_mm256_movemask_ps(m0) |
	       (uint32_t)_mm256_movemask_ps(m1) << 8 |
	       (uint32_t)_mm256_movemask_ps(m2) << 16 |
	       (uint32_t)_mm256_movemask_ps(m3) << 24;
}

/* The fixed summation order of spt_block_sum(). */
static inline float block_sum(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v0, v1), v2), v3);
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));

	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
	return _mm_cvtss_f32(h);
}

static inline float pow2f(int e)
{
	union {
		uint32_t u;
		float f;
	} v = { .u = (uint32_t)(e + 127) << 23 };

	return v.f;
}

uint32_t spt_encode_block32_avx2(const float *x, float tau, int8_t k[32],
				 int *exp, struct spt_blk_stats *bs)
{
	const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
	const __m256 inf = _mm256_set1_ps(__builtin_inff()), vtau = _mm256_set1_ps(tau);
	__m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
	__m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
	__m256 a0 = _mm256_andnot_ps(sign, x0), a1 = _mm256_andnot_ps(sign, x1);
	__m256 a2 = _mm256_andnot_ps(sign, x2), a3 = _mm256_andnot_ps(sign, x3);
	__m256 z0, z1, z2, z3, p0, p1, p2, p3, m;
	__m128 h;
	__m256i k0, k1, k2, k3, b, lim = _mm256_set1_epi32(127);
	uint32_t zm, pm, l2, vnz;
	float amax, s1, s2;
	int e, sh;

	if (mask32(_mm256_cmp_ps(a0, inf, _CMP_NLT_UQ), _mm256_cmp_ps(a1, inf, _CMP_NLT_UQ),
		   _mm256_cmp_ps(a2, inf, _CMP_NLT_UQ), _mm256_cmp_ps(a3, inf, _CMP_NLT_UQ))) {
		bs->bad = 1;
		return 0;
	}
	z0 = _mm256_cmp_ps(x0, zero, _CMP_EQ_OQ);
	z1 = _mm256_cmp_ps(x1, zero, _CMP_EQ_OQ);
	z2 = _mm256_cmp_ps(x2, zero, _CMP_EQ_OQ);
	z3 = _mm256_cmp_ps(x3, zero, _CMP_EQ_OQ);
	zm = mask32(z0, z1, z2, z3);
	p0 = _mm256_andnot_ps(z0, _mm256_cmp_ps(a0, vtau, _CMP_LT_OQ));
	p1 = _mm256_andnot_ps(z1, _mm256_cmp_ps(a1, vtau, _CMP_LT_OQ));
	p2 = _mm256_andnot_ps(z2, _mm256_cmp_ps(a2, vtau, _CMP_LT_OQ));
	p3 = _mm256_andnot_ps(z3, _mm256_cmp_ps(a3, vtau, _CMP_LT_OQ));
	pm = mask32(p0, p1, p2, p3);
	bs->natural_zeros = (unsigned int)__builtin_popcount(zm);
	bs->pruned = (unsigned int)__builtin_popcount(pm);
	bs->sum_abs = block_sum(a0, a1, a2, a3);
	/* survivors: pruned lanes (and natural zeros) become +0 */
	p0 = _mm256_or_ps(p0, z0);
	p1 = _mm256_or_ps(p1, z1);
	p2 = _mm256_or_ps(p2, z2);
	p3 = _mm256_or_ps(p3, z3);
	x0 = _mm256_andnot_ps(p0, x0);
	x1 = _mm256_andnot_ps(p1, x1);
	x2 = _mm256_andnot_ps(p2, x2);
	x3 = _mm256_andnot_ps(p3, x3);
	a0 = _mm256_andnot_ps(p0, a0);
	a1 = _mm256_andnot_ps(p1, a1);
	a2 = _mm256_andnot_ps(p2, a2);
	a3 = _mm256_andnot_ps(p3, a3);
	bs->sum_kept = block_sum(a0, a1, a2, a3);
	bs->underflow = 0;
	m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
	h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	h = _mm_max_ps(h, _mm_movehl_ps(h, h));
	h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
	amax = _mm_cvtss_f32(h);
	if (amax == 0.0f)
		return 0;
	{
		union {
			float f;
			uint32_t u;
		} v = { .f = amax };

		e = (int)(v.u >> 23) - 127;
		if (e < SPT_EXP_MIN)
			e = SPT_EXP_MIN;
	}
	*exp = e;
	sh = 6 - e;
	if (sh > 127) {
		s1 = pow2f(64);
		s2 = pow2f(sh - 64);
	} else {
		s1 = pow2f(sh);
		s2 = 1.0f;
	}
#define QUANT(xv) _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(			\
		_mm256_round_ps(_mm256_mul_ps(_mm256_mul_ps(xv, _mm256_set1_ps(s1)),	\
					      _mm256_set1_ps(s2)),			\
				_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), lim),		\
		_mm256_sub_epi32(_mm256_setzero_si256(), lim))
	k0 = QUANT(x0);
	k1 = QUANT(x1);
	k2 = QUANT(x2);
	k3 = QUANT(x3);
#undef QUANT
	b = _mm256_packs_epi16(_mm256_packs_epi32(k0, k1), _mm256_packs_epi32(k2, k3));
	b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	_mm256_storeu_si256((__m256i *)k, b);
	l2 = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, _mm256_setzero_si256()));
	vnz = ~(zm | pm);
	bs->underflow = (unsigned int)__builtin_popcount(vnz & ~l2);
	return l2;
}

unsigned int spt_pack_avx2(const int8_t k[32], uint32_t l2, uint8_t *dst)
{
	unsigned int n = 0, c;

	for (c = 0; c < 4; c++) {
		unsigned int m = (l2 >> (8 * c)) & 0xff;
		__m128i v = _mm_loadl_epi64((const __m128i *)(k + 8 * c));
		__m128i s = _mm_loadl_epi64((const __m128i *)spt_lut_compress8[m]);

		_mm_storel_epi64((__m128i *)(dst + n), _mm_shuffle_epi8(v, s));
		n += (unsigned int)__builtin_popcount(m);
	}
	return n;
}

void spt_expand_block_avx2(const int8_t *vals, uint32_t l2, float s, float *dst)
{
	__m256 vs = _mm256_set1_ps(s);
	unsigned int off = 0, c;

	for (c = 0; c < 4; c++) {
		unsigned int m = (l2 >> (8 * c)) & 0xff;
		__m128i v = _mm_loadl_epi64((const __m128i *)(vals + off));
		__m128i e = _mm_shuffle_epi8(v, _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m]));

		_mm256_storeu_ps(dst + 8 * c,
				 _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(e)), vs));
		off += (unsigned int)__builtin_popcount(m);
	}
}

void spt_zero_block_avx2(float *dst)
{
	__m256 z = _mm256_setzero_ps();

	_mm256_storeu_ps(dst, z);
	_mm256_storeu_ps(dst + 8, z);
	_mm256_storeu_ps(dst + 16, z);
	_mm256_storeu_ps(dst + 24, z);
}
