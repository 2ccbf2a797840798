/* SPDX-License-Identifier: MIT */
/*
 * spt_gemm(): operand checks, counters, the path choice (the SIMD path in
 * gemm_plan_avx2.c, or the reference) and the fused epilogue.  The
 * arithmetic itself is defined by gemm_scalar.c; the SIMD kernels reproduce
 * it bit for bit.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"

static int gemm_prune_check(const struct spt_prune *pr)
{
	switch (pr->mode) {
	case SPT_PRUNE_OFF:
		return 0;
	case SPT_PRUNE_DETERMINISTIC:
	case SPT_PRUNE_STOCHASTIC:
		return isfinite(pr->tau) && pr->tau >= 0.0f ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static int gemm_bits_init(struct gemm_bits *c, uint32_t nb)
{
	c->v = calloc((size_t)nb * GEMM_BITS_STRIDE, sizeof(*c->v));
	return c->v ? 0 : -ENOMEM;
}

/*
 * A mostly full mask counts as full minus its clear bits: v[e] + v[33] is
 * the count of bit e, and u64 arithmetic wraps back to it exactly.
 */
static inline void gemm_bits_add(struct gemm_bits *c, uint32_t col, uint32_t l2)
{
	uint64_t *v = c->v + (size_t)col * GEMM_BITS_STRIDE;

	v[32]++;
	if (l2 == 0xffffffffu) {
		v[33]++;
		return;
	}
	if (ct_pop32(l2) > 16) {
		uint32_t m;

		v[33]++;
		for (m = ~l2; m; m &= m - 1)
			v[__builtin_ctz(m)]--;
		return;
	}
	for (; l2; l2 &= l2 - 1)
		v[__builtin_ctz(l2)]++;
}

static void gemm_bits_finish(const struct gemm_bits *a, const struct gemm_bits *b,
			     uint32_t nb, struct spt_counters *c)
{
	uint32_t col, e;

	for (col = 0; col < nb; col++) {
		const uint64_t *va = a->v + (size_t)col * GEMM_BITS_STRIDE;
		const uint64_t *vb = b->v + (size_t)col * GEMM_BITS_STRIDE;

		for (e = 0; e < 32; e++)
			c->exec_macs += (va[e] + va[33]) * (vb[e] + vb[33]);
		c->blocks += va[32] * vb[32];
	}
}

static void gemm_bits_unpacked(struct gemm_bits *c, const struct spt_unpacked *u)
{
	uint64_t x;

	for (x = 0; x < u->nblocks; x++)
		if (u->exp[x] != SPT_EXP_ABSENT)
			gemm_bits_add(c, (uint32_t)(x % u->bpr), u->l2[x]);
}

/* The reference path: full unpack, then the scalar kernel. */
static int gemm_run_scalar(const void *a, size_t a_len, const void *b, size_t b_len,
			   struct gemm_shape *sh, struct gemm_bits *ba,
			   struct gemm_bits *bb, float **c, float *y_user)
{
	struct spt_unpacked ua, ub;
	int err;

	memset(&ub, 0, sizeof(ub));
	err = spt_ct_unpack(a, a_len, &ua);
	if (err)
		return err;
	err = spt_ct_unpack(b, b_len, &ub);
	if (err)
		goto out;
	err = -EINVAL;
	if (ua.cols != ub.cols)
		goto out;
	sh->m = ua.rows;
	sh->n = ub.rows;
	sh->k = ua.cols;
	sh->nb = ua.bpr;
	err = -ENOMEM;
	if (gemm_bits_init(ba, sh->nb) || gemm_bits_init(bb, sh->nb))
		goto out;
	gemm_bits_unpacked(ba, &ua);
	gemm_bits_unpacked(bb, &ub);
	*c = y_user ? y_user : malloc((size_t)sh->m * sh->n * sizeof(float));
	if (!*c)
		goto out;
	spt_gemm_kernel_scalar(&ua, &ub, *c);
	err = 0;
out:
	spt_unpacked_free(&ua);
	spt_unpacked_free(&ub);
	return err;
}

/* Clear the elements of a run of n <= 32 whose bit in keep is clear. */
static inline void gemm_mask_run(float *y, uint32_t n, uint32_t keep, int simd)
{
	uint32_t clear = ~keep & (n == 32 ? 0xffffffffu : (1u << n) - 1);

#ifndef SPT_NO_SIMD
	if (simd && n == 32) {
		spt_gemm_mask32_avx2(y, keep);
		return;
	}
#else
	(void)simd;
#endif
	for (; clear; clear &= clear - 1)
		y[__builtin_ctz(clear)] = 0.0f;
}

/*
 * ReLU gradient: y is zero wherever the mask's element is not stored.  The
 * mask is read in place; its blocks cover consecutive runs of y in storage
 * order (a ragged block is followed by the next row), so the runs between
 * two stored blocks are cleared whole.
 */
static int gemm_mask_apply(const struct spt_gemm_epilogue *ep, uint32_t m, uint32_t n,
			   float *y, uint64_t *bytes_read, int simd)
{
	struct gemm_cursor it;
	struct gemm_ct c;
	size_t done = 0, total = (size_t)m * n;
	int err = gemm_ct_open(ep->mask, ep->mask_len, &c);

	if (err)
		return err;
	if (c.rows != m || c.cols != n)
		return -EINVAL;
	for (gemm_cursor_init(&it, &c); it.have; gemm_cursor_next(&it)) {
		size_t at = (size_t)it.row * n + (size_t)it.col * SPT_BLOCK_ELEMS;
		uint32_t len = n - it.col * SPT_BLOCK_ELEMS;

		if (len > SPT_BLOCK_ELEMS)
			len = SPT_BLOCK_ELEMS;
		memset(y + done, 0, (at - done) * sizeof(float));
		gemm_mask_run(y + at, len, it.l2, simd);
		done = at + len;
	}
	memset(y + done, 0, (total - done) * sizeof(float));
	*bytes_read += ep->mask_len;
	return 0;
}

/* scale, bias, activation: in that order, per element (unless the kernel has: fused). */
static int gemm_epilogue(const struct spt_gemm_epilogue *ep, uint32_t m, uint32_t n,
			 float *y, uint64_t *bytes_read, int simd, int fused)
{
	int do_scale, relu;
	size_t i, j;

	if (!ep)
		return 0;
	do_scale = ep->scale != 0.0f && ep->scale != 1.0f;
	relu = ep->act == SPT_ACT_RELU;
	if (!fused && (do_scale || ep->bias || relu)) {
#ifndef SPT_NO_SIMD
		if (simd)
			spt_gemm_epilogue_avx2(y, m, n, do_scale, ep->scale, ep->bias, relu);
		else
#endif
		for (i = 0; i < m; i++)
			for (j = 0; j < n; j++) {
				float v = y[i * n + j];

				if (do_scale)
					v *= ep->scale;
				if (ep->bias)
					v += ep->bias[j];
				/* -0 becomes +0; NaN stays NaN (and the encoder rejects it). */
				if (relu && v <= 0.0f)
					v = 0.0f;
				y[i * n + j] = v;
			}
	}
	if (ep->act == SPT_ACT_RELU_GRAD)
		return gemm_mask_apply(ep, m, n, y, bytes_read, simd);
	return 0;
}

static int gemm_args_check(enum spt_pass pass, const void *a, const void *b,
			   const struct spt_gemm_epilogue *ep, const struct spt_gemm_out *out)
{
	if (pass != SPT_PASS_FWD && pass != SPT_PASS_BWD && pass != SPT_PASS_WG)
		return -EINVAL;
	if (!a || !b || !out || (!out->y && !out->ct))
		return -EINVAL;
	if (ep) {
		if (!isfinite(ep->scale))
			return -EINVAL;
		if (ep->act != SPT_ACT_NONE && ep->act != SPT_ACT_RELU &&
		    ep->act != SPT_ACT_RELU_GRAD)
			return -EINVAL;
		if (ep->act == SPT_ACT_RELU_GRAD && !ep->mask)
			return -EINVAL;
	}
	if (out->enc.round != SPT_ROUND_EVEN && out->enc.round != SPT_ROUND_STOCHASTIC)
		return -EINVAL;
	return gemm_prune_check(&out->enc.prune);
}

/*
 * The counters, the epilogue and the outputs of a product @y (m x n, from
 * the SIMD path or the reference, whose bits are @ba and @bb) whose
 * operands were @a_len and @b_len bytes.
 */
static int gemm_finish(const struct gemm_shape *sh, size_t a_len, size_t b_len,
		       uint64_t exec_macs, uint64_t blocks, struct gemm_bits *ba,
		       struct gemm_bits *bb, float *y, int simd, int ep_done,
		       const struct spt_gemm_epilogue *ep, struct spt_gemm_out *out,
		       struct spt_counters *cnt)
{
	size_t total = (size_t)sh->m * sh->n, i;
	struct spt_counters c;
	int err;

	memset(&c, 0, sizeof(c));
	c.dense_macs = (uint64_t)sh->m * sh->n * sh->k;
	c.bytes_read = a_len + b_len;
	c.dense_fp16_bytes = 2 * ((uint64_t)sh->m * sh->k + (uint64_t)sh->n * sh->k + total);
	c.elements_out = total;
	c.exec_macs = exec_macs;
	c.blocks = blocks;
	if (ba->v)	/* the reference path's bits */
		gemm_bits_finish(ba, bb, sh->nb, &c);
	err = gemm_epilogue(ep, sh->m, sh->n, y, &c.bytes_read, simd, ep_done);
	if (err)
		return err;

	out->ct_len = 0;
	memset(&out->stats, 0, sizeof(out->stats));
	if (out->ct) {
		err = spt_ct_encode(y, sh->m, sh->n, &out->enc, out->ct, out->ct_cap,
				    &out->ct_len, &out->stats);
		if (err)
			return err;
		c.bytes_written += out->ct_len;
	}
	if (out->y) {
		/* y holds the values the encoder quantised: after pruning. */
		if (out->enc.prune.mode != SPT_PRUNE_OFF)
			for (i = 0; i < total; i++)
				y[i] = spt_prune_value(&out->enc.prune, y[i], i);
		c.bytes_written += 4 * (uint64_t)total;
	}
	if (cnt)
		*cnt = c;
	return 0;
}

/*
 * out->y, when set, receives the result after the epilogue's scale, bias
 * and activation and after out->enc's pruning (the encoder's rule and random
 * draws, element index = row * N + column), before quantisation; so out->ct
 * decodes to spt_bfp8_quantize() of y.  The pass only names the operation:
 * all three run the same kernel on the operands as given.
 */
int spt_gemm(enum spt_pass pass, const void *a, size_t a_len,
	     const void *b, size_t b_len, const struct spt_gemm_epilogue *ep,
	     struct spt_gemm_out *out, struct spt_counters *cnt)
{
	struct gemm_bits ba = { NULL }, bb = { NULL };
	struct gemm_shape sh = { 0, 0, 0, 0 };
	uint64_t exec_macs = 0, blocks = 0;
	enum spt_isa isa = spt_core_get_isa();
	float *y = NULL;
	void *arena = NULL;
	int err, ep_done = 0;

	err = gemm_args_check(pass, a, b, ep, out);
	if (err)
		return err;
#ifndef SPT_NO_SIMD
	err = isa != SPT_ISA_SCALAR ?
	      spt_gemm_run_simd(isa, a, a_len, b, b_len, ep, &sh, &exec_macs, &blocks, &y,
				out->y, &arena, &ep_done) : 1;
	if (err == 1)
#else
	(void)isa;
#endif
		err = gemm_run_scalar(a, a_len, b, b_len, &sh, &ba, &bb, &y, out->y);
	if (!err)
		err = gemm_finish(&sh, a_len, b_len, exec_macs, blocks, &ba, &bb, y,
				  isa != SPT_ISA_SCALAR, ep_done, ep, out, cnt);
	free(ba.v);
	free(bb.v);
	if (arena)
		free(arena);	/* y, if ours, lived there */
	else if (y != out->y)
		free(y);
	return err;
}

/* spt_gemm_wq(): the two calls it is defined as, through a scratch encoding. */
static int gemm_wq_calls(enum spt_pass pass, const void *a, size_t a_len, const float *w,
			 uint32_t n, uint32_t k, const struct spt_encode_opts *wo,
			 struct spt_tensor_stats *wst, const struct spt_gemm_epilogue *ep,
			 struct spt_gemm_out *out, struct spt_counters *cnt)
{
	size_t cap = spt_ct_bound(n, k), len = 0;
	void *b;
	int err;

	/* a shape past the format's limits: the encoder's error, from its checks */
	b = malloc(cap ? cap : 1);
	if (!b)
		return -ENOMEM;
	err = spt_ct_encode(w, n, k, wo, b, cap, &len, wst) ?:
	      spt_gemm(pass, a, a_len, b, len, ep, out, cnt);
	free(b);
	return err;
}

int spt_gemm_wq(enum spt_pass pass, const void *a, size_t a_len, const float *w, uint32_t n,
		uint32_t k, const struct spt_encode_opts *wo, struct spt_tensor_stats *wst,
		const struct spt_gemm_epilogue *ep, struct spt_gemm_out *out,
		struct spt_counters *cnt)
{
#ifndef SPT_NO_SIMD
	struct gemm_bits ba = { NULL }, bb = { NULL };
	struct gemm_shape sh = { 0, 0, 0, 0 };
	struct spt_encode_opts def;
	struct gemm_wsrc src;
	struct ct_geom g;
	uint64_t exec_macs = 0, blocks = 0, b_len;
	enum spt_isa isa = spt_core_get_isa();
	float *y = NULL;
	void *arena = NULL;
	int err, ep_done = 0;

	if (!wo) {
		spt_encode_opts_init(&def);
		wo = &def;
	}
	/*
	 * The fused path takes what it can: AVX2 or AVX-512, nearest
	 * rounding, no stochastic pruning, a valid shape whose densest
	 * encoding fits the format's u32 offsets, operands and options that
	 * both calls accept.  Anything else, errors included, goes through
	 * the two calls, which give the errors in their order.
	 */
	if (isa < SPT_ISA_AVX2 || !w || ct_out_begin(n, k, SIZE_MAX, &g) ||
	    ct_size(&g, g.nblocks, g.nblocks * SPT_BLOCK_ELEMS) - g.payload_off > UINT32_MAX ||
	    wo->round != SPT_ROUND_EVEN || wo->prune.mode == SPT_PRUNE_STOCHASTIC ||
	    gemm_prune_check(&wo->prune) || gemm_args_check(pass, a, w, ep, out))
		return gemm_wq_calls(pass, a, a_len, w, n, k, wo, wst, ep, out, cnt);
	memset(&src, 0, sizeof(src));
	src.w = w;
	src.n = n;
	src.k = k;
	src.tau = wo->prune.mode == SPT_PRUNE_DETERMINISTIC ? wo->prune.tau : 0.0f;
	err = spt_gemm_run_simd_w(isa, a, a_len, &src, ep, &sh, &exec_macs, &blocks, &y, &arena,
				  &ep_done);
	if (err && err != -EDOM) {	/* A's errors come after the encoder's */
		free(arena);
		return gemm_wq_calls(pass, a, a_len, w, n, k, wo, wst, ep, out, cnt);
	}
	if (err)
		goto out_free;
	/* the encoding's size, as the encoder writes it */
	b_len = ct_size(&g, src.acc.nz_blocks, src.acc.nonzeros);
	if (wst) {	/* as the encoder gives them, whatever the product's fate */
		ct_acc_stats(&src.acc, n, k, wst);
		wst->bytes = b_len;
	}
	if (out->y) {	/* the result went to scratch: nothing is written on -EDOM */
		memcpy(out->y, y, (size_t)sh.m * sh.n * sizeof(float));
		y = out->y;
	}
	err = gemm_finish(&sh, a_len, b_len, exec_macs, blocks, &ba, &bb, y, 1, ep_done, ep,
			  out, cnt);
out_free:
	free(arena);
	return err;
#else
	return gemm_wq_calls(pass, a, a_len, w, n, k, wo, wst, ep, out, cnt);
#endif
}
