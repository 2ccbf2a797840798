/* SPDX-License-Identifier: MIT */
/*
 * Stochastic rounding of a block for CPUs with AVX2: the loop of
 * spt_bfp8_quantize_known() written so GCC vectorises it (this file is built
 * with -mavx2 at -O3).  Every operation is the scalar one (64-bit integer
 * mixing, float multiply, compare, convert), so the results are identical
 * bit for bit; check_bfp8 compares both paths.
 */
#include "ct_internal.h"

#ifndef SPT_NO_SIMD

static inline uint64_t mix64_v(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ull;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z;
}

void spt_bfp8_quantize_stoch_avx2(const float *x, unsigned int n, float s1, float s2,
				  uint64_t seed, uint64_t index, int8_t k[32])
{
	uint64_t sm = seed * 0xd1b54a32d192ed03ull + 0x2545f4914f6cdd1dull;
	float xs[32], u[32];
	int32_t r[32];
	unsigned int i;

	for (i = 0; i < 32; i++)
		xs[i] = i < n ? x[i] : 0.0f;
	/* u = spt_rng_unit(seed, index + i) */
	for (i = 0; i < 32; i++) {
		uint64_t z = mix64_v(mix64_v(index + i + 0x9e3779b97f4a7c15ull) ^ sm);

		u[i] = (float)(int32_t)(z >> 40) * 0x1p-24f;
	}
	/* round_stochastic(x * s1 * s2, u), clamped to [-127, 127] */
	for (i = 0; i < 32; i++) {
		float y = xs[i] * s1 * s2;
		int32_t t = (int32_t)y;
		int32_t fl = t - (y < (float)t);
		float d = y - (float)fl;
		int32_t v = fl + (u[i] < d);

		v = v > SPT_KMAX ? SPT_KMAX : v;
		v = v < -SPT_KMAX ? -SPT_KMAX : v;
		r[i] = v;
	}
	for (i = 0; i < 32; i++)
		k[i] = i < n ? (int8_t)r[i] : 0;
}

#endif
