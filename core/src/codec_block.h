/* SPDX-License-Identifier: MIT */
/*
 * Block-level helpers shared by the scalar tile loop of codec.c, the AVX2
 * encoder (codec_avx2.c: rng_block) and bfp8_avx2.c (bfp8_stoch_block), as
 * static inline code so that each compiles the same source.  GCC does not
 * reassociate float arithmetic without -ffast-math, so every copy performs
 * the same float operations in the same order.
 */
#ifndef SPT_CODEC_BLOCK_H
#define SPT_CODEC_BLOCK_H

#include <errno.h>

#include "ct_internal.h"

struct enc_state {
	const struct spt_encode_opts *o;
	struct spt_tensor_stats st;
};

static inline uint32_t f2u(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float u2f(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/*
 * Sum of 32 lanes (absent elements are +0) in the fixed order every path
 * uses: eight strided partial sums, then halves folded 4, 2, 1.
 */
static inline float block_sum32(const float v[32])
{
	float s[8];
	int j;

	for (j = 0; j < 8; j++)
		s[j] = ((v[j] + v[j + 8]) + v[j + 16]) + v[j + 24];
	for (j = 0; j < 4; j++)
		s[j] = s[j] + s[j + 4];
	s[0] = s[0] + s[2];
	s[1] = s[1] + s[3];
	return s[0] + s[1];
}

/*
 * u[i] = spt_rng_unit(seed, index + i) for the 32 lanes of a block, keyed
 * once (twice where index + i crosses a multiple of 2^32) so that the lane
 * loop is 32-bit integer work that vectorises.
 */
static inline void rng_block(uint64_t seed, uint64_t index, float u[32])
{
	uint32_t lo0 = (uint32_t)index, hi = (uint32_t)(index >> 32);
	uint64_t k0 = spt_rng_key(seed, hi), k1 = k0;
	unsigned int i;

	if (lo0 > UINT32_MAX - 31)
		k1 = spt_rng_key(seed, hi + 1);
	for (i = 0; i < 32; i++) {
		uint32_t lo = lo0 + i, c = 0u - (uint32_t)(lo < lo0);
		uint32_t kl = ((uint32_t)k0 & ~c) | ((uint32_t)k1 & c);
		uint32_t kh = ((uint32_t)(k0 >> 32) & ~c) | ((uint32_t)(k1 >> 32) & c);

		u[i] = (float)(int32_t)(spt_rng_bits(kl, kh, lo) >> 8) * 0x1p-24f;
	}
}

/*
 * The stochastic branch of spt_bfp8_quantize_known() (u = spt_rng_unit(seed,
 * index + i), k = clamp(round_stochastic(x * s1 * s2, u))) written without
 * branches so that it vectorises; x[n..31] are read as 0, k[n..31] = 0.
 */
static inline void bfp8_stoch_block(const float *x, unsigned int n, float s1, float s2,
				    uint64_t seed, uint64_t index, int8_t k[32])
{
	float xs[32], u[32];
	int32_t r[32];
	unsigned int i;

	for (i = 0; i < 32; i++)
		xs[i] = i < n ? x[i] : 0.0f;
	rng_block(seed, index, u);
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

/*
 * Nearest-even rounding of a block (round_even() of bfp8.c), without
 * branches: k = clamp(round_even(v * s1 * s2)) for all 32 lanes.
 */
static inline void bfp8_even_block(const float v[32], float s1, float s2, int8_t k[32])
{
	int32_t r[32];
	unsigned int i;

	for (i = 0; i < 32; i++) {
		float y = v[i] * s1 * s2;
		int32_t t = (int32_t)y;			/* |y| < 128 */
		int32_t fl = t - (y < (float)t);
		float d = y - (float)fl;		/* exact, in [0, 1) */
		int32_t up = d > 0.5f, tie = d == 0.5f;	/* int: both vectorise */
		int32_t q = fl + (up | (tie & fl));	/* ties to even */

		q = q > SPT_KMAX ? SPT_KMAX : q;
		q = q < -SPT_KMAX ? -SPT_KMAX : q;
		r[i] = q;
	}
	for (i = 0; i < 32; i++)
		k[i] = (int8_t)r[i];
}

/*
 * The scale 2^(6-E) of a block whose largest |x| has the biased float
 * exponent @B (E + 127; 0 for a subnormal maximum, E = -127), as s1 * s2:
 * x * s1 * s2 is x * 2^(6-E) exactly as block_scale() of bfp8.c gives it.
 */
static inline void block_scales(uint32_t B, float *s1, float *s2)
{
	int sh = 6 - ((int)B - 127);

	if (sh > 127) {
		*s1 = 0x1p64f;
		*s2 = u2f((uint32_t)(sh - 64 + 127) << 23);
	} else {
		*s1 = u2f((uint32_t)(sh + 127) << 23);
		*s2 = 1.0f;
	}
}

/*
 * Prune (below @tau, 0: none) and quantise one block without branches on
 * the data, for the scalar tile loop without stochastic pruning.  |x| bit
 * patterns order like the values, so the kept maximum also flags NaN/Inf
 * (never below tau).  Returns its L2 mask (0: absent block) and fills
 * k/exp; -EDOM through *err on NaN/Inf.  Nearest-even rounding is inline,
 * stochastic rounding goes to spt_bfp8_quantize_known.  Every float
 * operation is the one of encode_block/spt_bfp8_quantize_known.
 */
static inline uint32_t encode_block_vec(struct enc_state *s, const float *x, unsigned int n,
					uint64_t index, float tau, int8_t k[32], int *exp,
					int *err)
{
	float v[32], a_all[32], a_kept[32], s1, s2;
	uint32_t xu[32], umax = 0, l2 = 0, B, nz = 0, pruned = 0, under = 0;
	unsigned int i;

	/* a ragged block reads as +0 past n; a full-width loop vectorises */
	memcpy(xu, x, 4 * n);
	memset(xu + n, 0, 4 * (SPT_BLOCK_ELEMS - n));
	for (i = 0; i < SPT_BLOCK_ELEMS; i++) {
		uint32_t xb = xu[i], ab = xb & 0x7fffffffu;
		uint32_t below = 0u - (uint32_t)(u2f(ab) < tau), vb, kb;

		vb = xb & ~below;
		pruned += (ab != 0) & below & 1;
		kb = vb & 0x7fffffffu;
		nz += ab == 0;
		a_all[i] = u2f(ab);
		a_kept[i] = u2f(kb);
		v[i] = u2f(vb);
		umax = kb > umax ? kb : umax;
	}
	if (umax >= 0x7f800000u) {
		*err = -EDOM;
		return 0;
	}
	s->st.natural_zeros += nz - (SPT_BLOCK_ELEMS - n);
	s->st.pruned += pruned;
	s->st.sum_abs += block_sum32(a_all);
	s->st.sum_abs_kept += block_sum32(a_kept);
	if (umax == 0)
		return 0;
	B = umax >> 23;		/* E + 127; 0 for a subnormal maximum (E = -127) */
	*exp = (int)B - 127;
	block_scales(B, &s1, &s2);
	if (s->o->round != SPT_ROUND_STOCHASTIC)
		bfp8_even_block(v, s1, s2, k);
	else
		spt_bfp8_quantize_known(v, n, *exp, SPT_ROUND_STOCHASTIC, s->o->round_seed,
					index, k);
	for (i = 0; i < SPT_BLOCK_ELEMS; i++) {
		l2 |= (uint32_t)(k[i] != 0) << i;
		under += (k[i] == 0) & (v[i] != 0.0f);
	}
	s->st.underflow += under;
	return l2;
}

#endif
