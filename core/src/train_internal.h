/* SPDX-License-Identifier: MIT */
/*
 * Element-wise helpers of the training operations: the finite test of
 * spt_check_finite() and the SGD checks, and the arithmetic of momentum SGD
 * shared by spt_sgd_momentum() (train_ops.c) and the scalar path of
 * spt_sgd_momentum_ct() (sgd_ct.c), so the two give the same bits by
 * construction (-ffp-contract=off is global).
 */
#ifndef SPT_TRAIN_INTERNAL_H
#define SPT_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t spt_not_finite(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof(u));
	return (u & 0x7f800000u) == 0x7f800000u;
}

/* One pass over both arrays, no early exit (it vectorises): 1 if all finite. */
static inline int spt_wv_finite(const float *restrict w, const float *restrict v, size_t n)
{
	uint32_t bad = 0;
	size_t i;

	for (i = 0; i < n; i++)
		bad |= spt_not_finite(w[i]) | spt_not_finite(v[i]);
	return !bad;
}

/* gd = wd*w, gp = g+gd, vn = mom*v + gp, w -= lr*vn, in this order. */
static inline void spt_sgd_span(float *restrict w, float *restrict v, const float *restrict g,
				size_t n, float lr, float momentum, float weight_decay)
{
	size_t i;

	for (i = 0; i < n; i++) {
		float gd = weight_decay * w[i];
		float gp = g[i] + gd;
		float mv = momentum * v[i];
		float vn = mv + gp;

		v[i] = vn;
		w[i] = w[i] - lr * vn;
	}
}

#endif
