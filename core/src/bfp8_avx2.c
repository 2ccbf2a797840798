/* SPDX-License-Identifier: MIT */
/*
 * Stochastic rounding of a block for CPUs with AVX2: the loop of
 * spt_bfp8_quantize_known() written so GCC vectorises it (bfp8_stoch_block()
 * of codec_block.h; this file is built with -mavx2 at -O3).  Every operation is the scalar one (the key once per
 * block, 32-bit hashing per element, float multiply, compare, convert), so
 * the results are identical bit for bit; check_bfp8 compares both paths.
 */
#include "codec_block.h"

#ifndef SPT_NO_SIMD

void spt_bfp8_quantize_stoch_avx2(const float *x, unsigned int n, float s1, float s2,
				  uint64_t seed, uint64_t index, int8_t k[32])
{
	bfp8_stoch_block(x, n, s1, s2, seed, index, k);
}

#endif
