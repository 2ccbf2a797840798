// SPDX-License-Identifier: MIT
/*
 * Element-wise FP32 helpers of the dense baseline's training step: bias and
 * ReLU, tensor statistics and bias gradients (column sums).  Plain C here;
 * f32_ops_avx2.c does the same operations in the same order per output.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "spt/core.h"
#include "f32_internal.h"
#include "isa_internal.h"
#include "train_internal.h"

static void acc_finish(const struct f32_acc *a, size_t n, struct spt_tensor_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->elements = n;
	st->natural_zeros = a->zeros;
	st->nonzeros = n - a->zeros;
	st->sum_abs = ((a->s[0] + a->s[1]) + (a->s[2] + a->s[3])) +
		      ((a->s[4] + a->s[5]) + (a->s[6] + a->s[7]));
}

int spt_f32_bias_act(float *y, size_t rows, uint32_t cols, const float *bias, int relu,
		     struct spt_tensor_stats *st)
{
	struct f32_acc acc;
	size_t r, e = 0;
	uint32_t c;

	if (!y || !cols || (relu != 0 && relu != 1))
		return -EINVAL;
	if (rows > SIZE_MAX / sizeof(float) / cols)
		return -E2BIG;
	memset(&acc, 0, sizeof(acc));
	if (spt_use_avx2() && cols % 8 == 0) {
		spt_f32_bias_act_avx2(y, rows, cols, bias, relu, st ? &acc : NULL);
	} else {
		for (r = 0; r < rows; r++)
			for (c = 0; c < cols; c++, e++) {
				float v = y[e];

				if (bias)
					v += bias[c];
				if (relu)
					v = f32_relu(v);
				y[e] = v;
				if (st)
					f32_acc_add(&acc, v, e);
			}
	}
	if (st)
		acc_finish(&acc, rows * cols, st);
	return 0;
}

int spt_f32_stats(const float *x, size_t n, struct spt_tensor_stats *st)
{
	struct f32_acc acc;
	size_t e;

	if (!st || (!x && n))
		return -EINVAL;
	memset(&acc, 0, sizeof(acc));
	if (spt_use_avx2())
		spt_f32_stats_avx2(x, n, &acc);
	else
		for (e = 0; e < n; e++)
			f32_acc_add(&acc, x[e], e);
	acc_finish(&acc, n, st);
	return 0;
}

int spt_f32_colsum(const float *x, size_t rows, uint32_t cols, float *out)
{
	size_t r;
	uint32_t c;

	if (!x || !out || !cols)
		return -EINVAL;
	if (rows > SIZE_MAX / sizeof(float) / cols)
		return -E2BIG;
	if (spt_use_avx2() && cols % 8 == 0) {
		spt_f32_colsum_avx2(x, rows, cols, out);
		return 0;
	}
	for (c = 0; c < cols; c++)
		out[c] = 0.0f;
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			out[c] += x[r * cols + c];
	return 0;
}

int spt_check_finite(const float *x, size_t n)
{
	uint32_t bad = 0;
	size_t i = 0;

	if (n == 0)
		return 0;
	if (!x)
		return -EINVAL;
	if (spt_use_avx2()) {
		i = n - n % SPT_F32_LANES;
		bad = spt_f32_nonfinite_avx2(x, i);
	}
	for (; i < n; i++)
		bad |= spt_not_finite(x[i]);
	return bad ? -EDOM : 0;
}
