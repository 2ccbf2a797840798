/* SPDX-License-Identifier: MIT */
/* SIMD kernels of the codec (codec_avx2.c); see codec.c for the contracts. */
#ifndef SPT_CODEC_SIMD_H
#define SPT_CODEC_SIMD_H

#include "ct_internal.h"

struct spt_blk_stats {
	unsigned int natural_zeros, pruned, underflow;
	int bad;		/* a NaN or infinity was seen */
	float sum_abs, sum_kept;
};

/*
 * One full block, nearest-even rounding, deterministic pruning below @tau
 * (0: none).  Returns the L2 mask (0: absent block) and fills k/exp/bs.
 */
uint32_t spt_encode_block32_avx2(const float *x, float tau, int8_t k[32],
				 int *exp, struct spt_blk_stats *bs);
/* Write the nonzero k in order; may write 8 bytes past the returned count. */
unsigned int spt_pack_avx2(const int8_t k[32], uint32_t l2, uint8_t *dst);
/* Expand packed values by mask into 32 floats; may read 8 bytes past them. */
void spt_expand_block_avx2(const int8_t *vals, uint32_t l2, float s, float *dst);
void spt_zero_block_avx2(float *dst);

#endif
