/* SPDX-License-Identifier: MIT */
/* Internal interfaces of libsptcore shared between its files. */
#ifndef SPT_CT_INTERNAL_H
#define SPT_CT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "spt/core.h"

#define SPT_EXP_ABSENT INT16_MIN

/* Population count without a libgcc call where the target has no popcnt. */
static inline uint32_t ct_pop32(uint32_t v)
{
#ifdef __POPCNT__
	return (uint32_t)__builtin_popcount(v);
#else
	v = v - ((v >> 1) & 0x55555555u);
	v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
	v = (v + (v >> 4)) & 0x0f0f0f0fu;
	return (v * 0x01010101u) >> 24;
#endif
}

/*
 * A compressed tensor unpacked to a dense block grid, for the GEMM kernels:
 * block b = r * bpr + c has exponent exp[b] (SPT_EXP_ABSENT if the L1 bit is
 * clear), L2 mask l2[b] and 32 int8 values k[32 * b] (0 where absent).
 * k is 64-byte aligned.
 */
struct spt_unpacked {
	uint32_t rows, cols, bpr;
	uint64_t nblocks;
	int16_t *exp;
	uint32_t *l2;
	int8_t *k;
	uint64_t nz_blocks, nonzeros, bytes;
};

/* Validate and unpack; on success release with spt_unpacked_free(). */
int spt_ct_unpack(const void *buf, size_t len, struct spt_unpacked *u);
void spt_unpacked_free(struct spt_unpacked *u);

/*
 * Counter-based random numbers, a pure function of (seed, index)
 * (docs/formats.md): a 64-bit key from the seed and the index's high 32
 * bits (two SplitMix64 rounds, once per block in the vector paths), then
 * two rounds of a 32-bit hash of the low 32 bits keyed by it.  32-bit
 * multiplies only per element, so the block loops vectorise on AVX2.
 */
uint64_t spt_rng_key(uint64_t seed, uint32_t index_hi);

/* The "lowbias32" xorshift-multiply hash, a bijection of 32-bit words. */
static inline uint32_t spt_rng_h32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

/* 32 random bits of element index_lo under the key's two halves. */
static inline uint32_t spt_rng_bits(uint32_t key_lo, uint32_t key_hi, uint32_t index_lo)
{
	return spt_rng_h32(spt_rng_h32(index_lo ^ key_lo) ^ key_hi);
}

/* Uniform in [0, 1) with 24 random bits (exact as a float). */
float spt_rng_unit(uint64_t seed, uint64_t index);

/* Stochastic pruning draws from a stream distinct from rounding's. */
#define SPT_PRUNE_SALT 0x70726e65736c7421ull

/* floor(log2(amax)) clamped to [-127, 127]; -127 for 0. */
int spt_bfp8_exponent(float amax);
/* Quantise n (<= 32) finite values with exponent @exp; k[n..31] = 0. */
void spt_bfp8_quantize_known(const float *x, unsigned int n, int exp,
			     enum spt_round round, uint64_t seed,
			     uint64_t index, int8_t k[32]);

/* The stochastic branch of spt_bfp8_quantize_known on AVX2 (bfp8_avx2.c). */
void spt_bfp8_quantize_stoch_avx2(const float *x, unsigned int n, float s1, float s2,
				  uint64_t seed, uint64_t index, int8_t k[32]);

/*
 * The pruning rule applied to element @index of a tensor: |x| < tau becomes
 * 0, or with stochastic pruning sign(x)*tau with probability |x|/tau.  The
 * encoder and the GEMM epilogue share it, so y and the encoding agree.
 */
float spt_prune_value(const struct spt_prune *pr, float x, uint64_t index);

/* Sum of a block's 32 values in the fixed order all paths use. */
float spt_block_sum(const float v[32]);

/* Little-endian field access on unaligned bytes. */
static inline uint32_t spt_ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t spt_ld64(const uint8_t *p)
{
	return (uint64_t)spt_ld32(p) | (uint64_t)spt_ld32(p + 4) << 32;
}

static inline void spt_st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void spt_st64(uint8_t *p, uint64_t v)
{
	spt_st32(p, (uint32_t)v);
	spt_st32(p + 4, (uint32_t)(v >> 32));
}

#endif
