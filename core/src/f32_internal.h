/* SPDX-License-Identifier: MIT */
/*
 * The dense FP32 helpers (f32_ops.c) and their AVX2 paths (f32_ops_avx2.c).
 * Both take the same elements in the same order per output, so they agree
 * bit for bit; the statistics' sum of |x| is defined over eight partial sums
 * (element e of the flat array into sum e % 8, in increasing e) so that a
 * vector path can keep them in lanes.
 */
#ifndef SPT_F32_INTERNAL_H
#define SPT_F32_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define SPT_F32_LANES 8

/* Partial statistics of a flat array: zeros and the eight |x| sums. */
struct f32_acc {
	uint64_t zeros;
	double s[SPT_F32_LANES];
};

/* Element @e of a flat array, value @v, into the partial statistics. */
static inline void f32_acc_add(struct f32_acc *a, float v, size_t e)
{
	a->zeros += v == 0.0f;
	a->s[e % SPT_F32_LANES] += fabsf(v);
}

/* The relu of the baseline: +0.0f unless v > 0 (NaN and -0.0f become +0.0f). */
static inline float f32_relu(float v)
{
	return v > 0.0f ? v : 0.0f;
}

/* The AVX2 paths take rows of whole vectors only: @cols a multiple of 8. */
void spt_f32_bias_act_avx2(float *y, size_t rows, uint32_t cols, const float *bias, int relu,
			   struct f32_acc *acc);
void spt_f32_stats_avx2(const float *x, size_t n, struct f32_acc *acc);
void spt_f32_colsum_avx2(const float *x, size_t rows, uint32_t cols, float *out);
/* Nonzero if one of the @n floats (a multiple of 8) is NaN or infinite. */
uint32_t spt_f32_nonfinite_avx2(const float *x, size_t n);

#endif
