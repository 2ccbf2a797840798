/* SPDX-License-Identifier: MIT */
/* BFP8 (OCP MXINT8) quantisation and the counter-based random numbers. */
#include <errno.h>
#include <math.h>

#include "ct_internal.h"

static uint64_t mix64(uint64_t z)
{
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ull;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z;
}

uint64_t spt_rng_key(uint64_t seed, uint32_t index_hi)
{
	return mix64(mix64(index_hi + 0x9e3779b97f4a7c15ull) ^
		     (seed * 0xd1b54a32d192ed03ull + 0x2545f4914f6cdd1dull));
}

float spt_rng_unit(uint64_t seed, uint64_t index)
{
	uint64_t key = spt_rng_key(seed, (uint32_t)(index >> 32));
	uint32_t x = spt_rng_bits((uint32_t)key, (uint32_t)(key >> 32), (uint32_t)index);

	return (float)(x >> 8) * 0x1p-24f;
}

/* 2^e for e in [-126, 127], built exactly. */
static float pow2f(int e)
{
	union {
		uint32_t u;
		float f;
	} v = { .u = (uint32_t)(e + 127) << 23 };

	return v.f;
}

int spt_bfp8_exponent(float amax)
{
	int e;

	if (amax == 0.0f)
		return SPT_EXP_MIN;
	(void)frexpf(amax, &e);
	e -= 1;
	if (e < SPT_EXP_MIN)
		e = SPT_EXP_MIN;
	if (e > SPT_EXP_MAX)
		e = SPT_EXP_MAX;
	return e;
}

/* x * 2^(6-E) exactly as ldexpf would give it; |result| < 128. */
static inline void block_scale(int exp, float *s1, float *s2)
{
	int sh = 6 - exp;	/* -121 .. 133 */

	if (sh > 127) {
		*s1 = pow2f(64);
		*s2 = pow2f(sh - 64);
	} else {
		*s1 = pow2f(sh);
		*s2 = 1.0f;
	}
}

static inline int round_even(float y)
{
	int t = (int)y;			/* toward zero; |y| < 128 */
	int fl = t - (y < (float)t);
	float d = y - (float)fl;	/* exact, in [0, 1) */

	if (d > 0.5f || (d == 0.5f && (fl & 1)))
		return fl + 1;
	return fl;
}

static inline int round_stochastic(float y, float u)
{
	int t = (int)y;
	int fl = t - (y < (float)t);
	float d = y - (float)fl;

	return fl + (u < d);
}

static inline int8_t clamp_k(int r)
{
	if (r > SPT_KMAX)
		r = SPT_KMAX;
	if (r < -SPT_KMAX)
		r = -SPT_KMAX;
	return (int8_t)r;
}

/* Quantise n finite values (checked by the caller) with a known exponent. */
void spt_bfp8_quantize_known(const float *x, unsigned int n, int exp,
			     enum spt_round round, uint64_t seed,
			     uint64_t index, int8_t k[32])
{
	float s1, s2;
	unsigned int i;

	block_scale(exp, &s1, &s2);
#ifndef SPT_NO_SIMD
	if (round == SPT_ROUND_STOCHASTIC && spt_core_get_isa() >= SPT_ISA_AVX2) {
		spt_bfp8_quantize_stoch_avx2(x, n, s1, s2, seed, index, k);
		return;
	}
#endif
	if (round == SPT_ROUND_STOCHASTIC) {
		for (i = 0; i < n; i++)
			k[i] = clamp_k(round_stochastic(x[i] * s1 * s2,
							spt_rng_unit(seed, index + i)));
	} else {
		for (i = 0; i < n; i++)
			k[i] = clamp_k(round_even(x[i] * s1 * s2));
	}
	for (; i < SPT_BLOCK_ELEMS; i++)
		k[i] = 0;
}

int spt_bfp8_quantize_block(const float *x, unsigned int n, enum spt_round round,
			    uint64_t seed, uint64_t index, int8_t k[32], int *exp)
{
	float amax = 0.0f;
	unsigned int i;

	if (!x || !k || !exp || n == 0 || n > SPT_BLOCK_ELEMS ||
	    (round != SPT_ROUND_EVEN && round != SPT_ROUND_STOCHASTIC))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		float a = fabsf(x[i]);

		if (!isfinite(a))
			return -EDOM;
		if (a > amax)
			amax = a;
	}
	*exp = spt_bfp8_exponent(amax);
	spt_bfp8_quantize_known(x, n, *exp, round, seed, index, k);
	return 0;
}

float spt_bfp8_value(int8_t k, int exp)
{
	if (exp < SPT_EXP_MIN || exp > SPT_EXP_MAX)
		return NAN;
	/* k * 2^(exp-6): the inverse of block_scale's shift. */
	if (exp - 6 < -126)
		return (float)k * pow2f(-64) * pow2f(exp - 6 + 64);
	return (float)k * pow2f(exp - 6);
}

int spt_bfp8_quantize(const float *in, float *out, size_t rows, size_t cols,
		      enum spt_round round, uint64_t seed)
{
	size_t r, c;
	int8_t k[32];

	if (!in || !out || rows == 0 || cols == 0 || rows > SIZE_MAX / 4 / cols ||
	    (round != SPT_ROUND_EVEN && round != SPT_ROUND_STOCHASTIC))
		return -EINVAL;
	/* Check everything first so that an error leaves @out untouched. */
	for (r = 0; r < rows * cols; r++)
		if (!isfinite(in[r]))
			return -EDOM;
	for (r = 0; r < rows; r++) {
		for (c = 0; c < cols; c += SPT_BLOCK_ELEMS) {
			unsigned int n = (unsigned int)(cols - c < SPT_BLOCK_ELEMS ? cols - c : SPT_BLOCK_ELEMS);
			const float *x = in + r * cols + c;
			unsigned int i;
			int e;

			spt_bfp8_quantize_block(x, n, round, seed, r * cols + c, k, &e);
			for (i = 0; i < n; i++)
				out[r * cols + c + i] = spt_bfp8_value(k[i], e);
		}
	}
	return 0;
}
