// SPDX-License-Identifier: MIT
/*
 * SGD with momentum reading the weight gradient compressed: the update
 * decodes each block where it uses it instead of decoding the whole tensor
 * into an FP32 buffer first.  Per element it does exactly the float
 * operations of spt_sgd_momentum() on exactly the values spt_ct_decode()
 * gives (k * 2^(E-6), and +0.0f where nothing is stored), so the two ways
 * agree bit for bit (built with -ffp-contract=off).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec_lut.h"
#include "codec_simd.h"
#include "train_internal.h"
#include "isa_internal.h"

/* sgd_update() of train_ops.c on one block's span. */
static inline void upd(float *restrict w, float *restrict v, const float *restrict g,
		       unsigned int n, const struct sgd_params *sp)
{
	spt_sgd_span(w, v, g, n, sp->lr, sp->momentum, sp->weight_decay);
}

/* Blocks in storage order cover consecutive elements, as in decode_scalar(). */
static void sgd_ct_scalar(float *w, float *v, const uint8_t *p, const struct ct_hdr *h,
			  const struct sgd_params *sp)
{
	static const float zero[SPT_BLOCK_ELEMS];
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	uint32_t ragged = g->cols % SPT_BLOCK_ELEMS, c = 0;
	size_t off = 0;
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + spt_ld32(tab + 4 * t);
		uint64_t l1 = spt_ld64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, i;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (i = 0; i < nb; i++, l1 >>= 1) {
			unsigned int n = ragged && c == g->bpr - 1 ? ragged : SPT_BLOCK_ELEMS;

			if (++c == g->bpr)
				c = 0;
			if (l1 & 1) {
				uint32_t l2 = spt_ld32(q), m;
				float s = spt_lut_e8m0_scale[q[4]], gv[SPT_BLOCK_ELEMS];
				const int8_t *k = (const int8_t *)(q + 5);

				memset(gv, 0, sizeof(gv));
				for (m = l2; m; m &= m - 1)
					gv[__builtin_ctz(m)] = (float)*k++ * s;
				if (n == SPT_BLOCK_ELEMS)	/* a constant count: it vectorises */
					upd(w + off, v + off, gv, SPT_BLOCK_ELEMS, sp);
				else
					upd(w + off, v + off, gv, n, sp);
				q = (const uint8_t *)k;
			} else if (n == SPT_BLOCK_ELEMS) {
				upd(w + off, v + off, zero, SPT_BLOCK_ELEMS, sp);
			} else {
				upd(w + off, v + off, zero, n, sp);
			}
			off += n;
		}
	}
}

int spt_sgd_momentum_ct(float *w, float *v, const void *g_ct, size_t g_len, size_t n,
			float lr, float momentum, float weight_decay)
{
	struct sgd_params sp = { lr, momentum, weight_decay };
	struct ct_hdr h;
	int err;

	if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
		return -EINVAL;
	if (!w || !v || !g_ct)
		return -EINVAL;
	err = spt_ct_open(g_ct, g_len, &h);
	if (err)
		return err;
	if (n != (uint64_t)h.g.rows * h.g.cols)
		return -EINVAL;
#ifndef SPT_NO_SIMD
	if (spt_use_avx2())
		return spt_sgd_ct_avx2(w, v, g_ct, &h, &sp);
#endif
	if (!spt_wv_finite(w, v, n))
		return -EDOM;
	sgd_ct_scalar(w, v, g_ct, &h, &sp);
	return 0;
}
