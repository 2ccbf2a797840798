// SPDX-License-Identifier: MIT
/*
 * The training step: forward, loss, backward, weight gradients, update and
 * controller, as a sequence of backend operations.
 *
 * BFP8: every GEMM runs on compressed operands blocked along its reduction
 * axis, exactly as the chip does: forward X*W with W^T encoded N x K,
 * backward dY*W^T with W encoded K x N, weight update X^T*dY with both
 * operands re-blocked by a transpose.  ReLU, bias, pruning and encoding are
 * fused into the producing GEMM wherever the layouts allow; when training,
 * the producer of every re-blocked operand (the weight copy's and the
 * input's encode, the forward and backward GEMMs' epilogues) writes the
 * transposed blocking too (encode_t, gemm_t), so no compressed tensor is
 * read back to be re-blocked; convolutions
 * are lowered with the backend's im2col/col2im, the bias gradient is the
 * backend's column sum of the compressed dY, and finite checks of the loss
 * and the gradients come before the update, so on a device the whole step
 * is one command stream, the ReLU mask before a convolution's backward
 * included.  FP32: the same passes on OpenBLAS, dense.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct step {
	struct spt_model *m;
	uint32_t n;
	bool train, update;
	struct rt_slot *in;		/* the uploaded batch */
	struct spt_prune prune[64][SPT_CLASS_COUNT];
	struct spt_tensor_stats ts[64][SPT_CLASS_COUNT];	/* valid after sync() */
	bool have[64][SPT_CLASS_COUNT];
	const struct spt_buf *a_op[64];	/* forward A operand of each layer (BFP8) */
	const float *a_f32[64];		/* forward A operand of each layer (FP32) */
	/*
	 * re-blocked copies of each layer (their lengths are known after
	 * sync()): written by their producers with the tensors themselves,
	 * so they count as written and nothing is read back for them
	 */
	const struct spt_buf *rb_out[64][3];
	int nrb[64];
	struct rt_ctl saved[64][SPT_CLASS_COUNT];	/* controller before a gradients-only step */
	float lr;
	double t0;
};

static inline uint64_t rows_of(const struct rt_layer *l, uint32_t n)
{
	return (uint64_t)n * l->rows_per_sample;
}

static struct spt_conv_shape conv_shape(const struct rt_layer *l, uint32_t n)
{
	struct spt_conv_shape cs = {
		.n = n, .h = l->in_h, .w = l->in_w, .c = l->in_c,
		.k = 3, .stride = l->stride, .pad = l->pad,
	};

	return cs;
}

/* x: [n, H, W, C] -> col: [n*Ho*Wo, 9*C] with columns ordered (ky, kx, c). */
static void im2col(const struct rt_layer *l, uint32_t n, const float *x, float *col)
{
	struct spt_conv_shape cs = conv_shape(l, n);
	size_t img = (size_t)n * l->in_c * l->in_h * l->in_w;

	spt_im2col(&cs, x, img, col, rows_of(l, n) * l->K);
}

/* col2im, then the ReLU mask of @y_mask (NULL: none) in the same pass */
static int col2im(const struct rt_layer *l, uint32_t n, const float *col, const float *y_mask,
		  float *dx)
{
	struct spt_conv_shape cs = conv_shape(l, n);
	size_t img = (size_t)n * l->in_c * l->in_h * l->in_w;

	return spt_col2im_relu(&cs, col, rows_of(l, n) * l->K, y_mask, dx, img);
}

/* Prune options for evaluation: the current thresholds, no controller update. */
static void peek_prune(const struct rt_ctl *c, struct spt_prune *p, uint64_t seed)
{
	memset(p, 0, sizeof(*p));
	p->seed = seed;
	if (c->cfg.mode == SPT_SPARSITY_STATIC || (c->cfg.mode == SPT_SPARSITY_TARGET &&
						   c->started && c->tau > 0)) {
		p->mode = c->cfg.kind;
		p->tau = c->tau;
	}
}

static void enc_opts(struct spt_encode_opts *o, const struct spt_prune *p)
{
	spt_encode_opts_init(o);
	if (p)
		o->prune = *p;
}

/* Where the statistics of class @cls of layer @l go (valid after sync()). */
static struct spt_tensor_stats *note(struct step *s, int l, int cls)
{
	s->have[l][cls] = true;
	return &s->ts[l][cls];
}

static void reblock_add(struct step *s, int l, const struct spt_buf *out)
{
	s->rb_out[l][s->nrb[l]++] = out;
}

/* ---- BFP8 ----------------------------------------------------------------- */

/*
 * Whether layer @i's weight copy is quantised inside its forward GEMM
 * (gemm_w): when the backend can and nothing else reads the copy, in
 * inference and in the first layer, which has no backward GEMM.
 */
static bool wcopy_fused(const struct step *s, int i)
{
	return s->m->ctx->ops->gemm_w && (i == 0 || !s->train);
}

static int bfp8_wcopy(struct step *s, int i)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct rt_layer *l = &m->layers[i];
	struct spt_encode_opts o;

	if (wcopy_fused(s, i))
		return 0;	/* fwd_gemm() */

	/*
	 * master weights are N x K, blocked along K: the forward B operand as
	 * is; the backward pass's K x N blocking comes out of the same encode
	 */
	enc_opts(&o, &s->prune[i][SPT_CLASS_WCOPY]);
	if (i == 0 || !s->train)
		return ctx->ops->encode(ctx, &l->wb, l->N, l->K, &o, &l->wt_ct,
					note(s, i, SPT_CLASS_WCOPY));
	reblock_add(s, i, &l->w_ct);
	return ctx->ops->encode_t(ctx, &l->wb, l->N, l->K, &o, &l->wt_ct,
				  note(s, i, SPT_CLASS_WCOPY), &l->w_ct);
}

/* Encode @src into @dst and, when training, its transposed blocking into @t too. */
static int encode_maybe_t(struct step *s, int i, const struct spt_buf *src, uint32_t rows,
			  uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
			  struct spt_tensor_stats *ts, struct spt_buf *t)
{
	struct spt_ctx *ctx = s->m->ctx;

	if (!s->train)
		return ctx->ops->encode(ctx, src, rows, cols, o, dst, ts);
	reblock_add(s, i, t);
	return ctx->ops->encode_t(ctx, src, rows, cols, o, dst, ts, t);
}

static bool needs_f32_out(const struct spt_model *m, int i)
{
	return i + 1 < m->nlayers &&
	       (m->layers[i].kind == RT_CONV || m->layers[i + 1].kind == RT_CONV);
}

/*
 * Layer @i's forward GEMM of A operand @a with the weight copy: gemm, or
 * gemm_t with @t; through gemm_w when the copy is fused (wcopy_fused()).
 */
static int fwd_gemm(struct step *s, int i, const struct spt_buf *a, enum spt_act act,
		    struct spt_buf *y, struct spt_buf *ct, const struct spt_encode_opts *enc,
		    struct spt_tensor_stats *st, struct spt_buf *t)
{
	struct spt_ctx *ctx = s->m->ctx;
	struct rt_layer *l = &s->m->layers[i];
	struct spt_counters *cnt = &l->st.pass[SPT_PASS_FWD];
	struct spt_encode_opts wo;

	if (wcopy_fused(s, i)) {
		enc_opts(&wo, &s->prune[i][SPT_CLASS_WCOPY]);
		return ctx->ops->gemm_w(ctx, SPT_PASS_FWD, a, &l->wb, l->N, l->K, &wo,
					note(s, i, SPT_CLASS_WCOPY), &l->bb, act, y, ct, enc, st,
					cnt, t);
	}
	if (t)
		return ctx->ops->gemm_t(ctx, SPT_PASS_FWD, a, &l->wt_ct, &l->bb, act, NULL, y,
					ct, enc, st, cnt, t);
	return ctx->ops->gemm(ctx, SPT_PASS_FWD, a, &l->wt_ct, &l->bb, act, NULL, y, ct, enc,
			      st, cnt);
}

/* The forward pass on the batch in @x (a backend buffer). */
static int bfp8_forward(struct step *s, const struct spt_buf *x)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct spt_encode_opts raw, o;
	struct spt_buf *t;
	int i, ret;

	enc_opts(&raw, NULL);
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
		uint64_t M = rows_of(l, s->n);

		ret = bfp8_wcopy(s, i);
		if (ret)
			return ret;
		if (!prev || prev->kind == RT_CONV || l->kind == RT_CONV) {
			const struct spt_buf *src = prev ? &prev->y : x;

			if (l->kind == RT_CONV) {
				struct spt_conv_shape cs = conv_shape(l, s->n);

				ret = -EOPNOTSUPP;
				if (prev && ctx->ops->im2col_ct) {
					/* prev->y is decode(prev->y_ct): the same bytes */
					ret = ctx->ops->im2col_ct(ctx, &cs, &prev->y_ct, &l->a_ct,
								  s->train ? &l->at_ct : NULL);
					if (!ret && s->train)
						reblock_add(s, i, &l->at_ct);
				}
				if (ret == -EOPNOTSUPP)
					ret = ctx->ops->im2col(ctx, &cs, src, &l->col) ?:
					      encode_maybe_t(s, i, &l->col, (uint32_t)M, l->K,
							     &raw, &l->a_ct, NULL, &l->at_ct);
			} else {
				ret = encode_maybe_t(s, i, src, s->n, l->K, &raw, &l->a_ct, NULL,
						     &l->at_ct);
			}
			if (ret)
				return ret;
			s->a_op[i] = &l->a_ct;
		} else {
			s->a_op[i] = &prev->y_ct;
		}
		if (i == m->nlayers - 1) {
			ret = fwd_gemm(s, i, s->a_op[i], SPT_ACT_NONE, &l->y, NULL, NULL, NULL,
				       NULL);
			if (ret)
				return ret;
			continue;
		}
		enc_opts(&o, &s->prune[i + 1][SPT_CLASS_ACT]);
		t = NULL;
		if (s->train && l->kind != RT_CONV && m->layers[i + 1].kind != RT_CONV) {
			/* y_ct is the next layer's A operand: its transpose too */
			t = &m->layers[i + 1].at_ct;
			reblock_add(s, i + 1, t);
		}
		ret = fwd_gemm(s, i, s->a_op[i], l->relu ? SPT_ACT_RELU : SPT_ACT_NONE, NULL,
			       &l->y_ct, &o, note(s, i + 1, SPT_CLASS_ACT), t);
		if (ret)
			return ret;
		if (needs_f32_out(m, i)) {
			ret = ctx->ops->decode(ctx, &l->y_ct, &l->y, M * l->N);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * dL/dY of @prev (a layer next to a convolution): the backward GEMM of @l
 * into FP32, col2im for a convolution, the ReLU mask (for a convolution
 * part of the backend's col2im), then encoded.
 */
static int bfp8_backward_f32(struct step *s, struct rt_layer *l, struct rt_layer *prev,
			     const struct spt_encode_opts *o, struct spt_tensor_stats *ts)
{
	struct spt_ctx *ctx = s->m->ctx;
	uint64_t Mp = rows_of(prev, s->n);
	size_t e = Mp * prev->N;
	int ret;

	if (l->kind == RT_CONV) {
		struct spt_conv_shape cs = conv_shape(l, s->n);

		ret = ctx->ops->gemm(ctx, SPT_PASS_BWD, &l->dy_ct, &l->w_ct, NULL, SPT_ACT_NONE,
				     NULL, &l->dcol, NULL, NULL, NULL, &l->st.pass[SPT_PASS_BWD]) ?:
		      ctx->ops->col2im(ctx, &cs, &l->dcol, &prev->dy, prev->relu ? &prev->y : NULL);
	} else {
		/* a Linear layer's input is its predecessor's output, flattened */
		ret = ctx->ops->gemm(ctx, SPT_PASS_BWD, &l->dy_ct, &l->w_ct, NULL, SPT_ACT_NONE,
				     NULL, &prev->dy, NULL, NULL, NULL, &l->st.pass[SPT_PASS_BWD]);
		/* the ReLU mask on the FP32 bits: dy := +0.0f where y is +-0.0f */
		if (!ret && prev->relu)
			ret = ctx->ops->relu_mask(ctx, &prev->dy, &prev->y, e);
	}
	if (ret)
		return ret;
	reblock_add(s, (int)(prev - s->m->layers), &prev->dyt_ct);
	return ctx->ops->encode_t(ctx, &prev->dy, (uint32_t)Mp, prev->N, o, &prev->dy_ct, ts,
				  &prev->dyt_ct);
}

static int bfp8_backward_layer(struct step *s, int i)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
	struct spt_encode_opts o;
	int ret;

	if (prev) {
		struct spt_tensor_stats *ts = note(s, i - 1, SPT_CLASS_ERR);

		enc_opts(&o, &s->prune[i - 1][SPT_CLASS_ERR]);
		if (l->kind == RT_LINEAR && prev->kind == RT_LINEAR) {
			/* dY of prev and, for prev's weight update, its transpose */
			reblock_add(s, i - 1, &prev->dyt_ct);
			ret = ctx->ops->gemm_t(ctx, SPT_PASS_BWD, &l->dy_ct, &l->w_ct, NULL,
					       prev->relu ? SPT_ACT_RELU_GRAD : SPT_ACT_NONE,
					       prev->relu ? &prev->y_ct : NULL, NULL, &prev->dy_ct,
					       &o, ts, &l->st.pass[SPT_PASS_BWD], &prev->dyt_ct);
		} else {
			ret = bfp8_backward_f32(s, l, prev, &o, ts);
		}
		if (ret)
			return ret;
	}
	/*
	 * weight update pass: dW = X^T dY on the re-blocked operands at_ct and
	 * dyt_ct, which their producers wrote with X and dY.
	 */
	/*
	 * The gradient leaves the GEMM compressed, as the chip writes it: BFP8,
	 * pruned when WGRAD is on.  Both the pruning and the rounding are
	 * stochastic, so the gradient stays unbiased: nearest rounding would
	 * flush the entries far below their block's largest to zero (a third
	 * to a half of a convolution's gradient).  The update reads it
	 * compressed (sgd_ct); only a gradients-only step decodes it, for
	 * the caller.
	 */
	enc_opts(&o, &s->prune[i][SPT_CLASS_WGRAD]);
	o.round = SPT_ROUND_STOCHASTIC;
	o.round_seed = s->prune[i][SPT_CLASS_WGRAD].seed ^ 0x7767726eULL;	/* "wgrn" */
	ret = ctx->ops->gemm(ctx, SPT_PASS_WG, &l->dyt_ct, &l->at_ct, NULL, SPT_ACT_NONE, NULL,
			     NULL, &l->wg_ct, &o, note(s, i, SPT_CLASS_WGRAD),
			     &l->st.pass[SPT_PASS_WG]);
	if (!ret && !s->update)
		ret = ctx->ops->decode(ctx, &l->wg_ct, &l->gwt, (size_t)l->N * l->K);
	if (ret)
		return ret;
	/* the bias gradient: column sums of dY as the chip stored it */
	return ctx->ops->colsum(ctx, &l->dy_ct, &l->gbb, l->N);
}

/* ---- FP32 ------------------------------------------------------------------ */

static void count_f32(struct spt_counters *c, uint64_t M, uint64_t N, uint64_t K)
{
	c->dense_macs += M * N * K;
	c->exec_macs += M * N * K;
	c->bytes_read += 4 * (M * K + N * K);
	c->bytes_written += 4 * M * N;
	c->dense_fp16_bytes += 2 * (M * K + N * K + M * N);
	c->elements_out += M * N;
}

static int f32_forward(struct step *s, const float *x)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	int i, ret;

	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
		uint64_t M = rows_of(l, s->n);
		const float *src = prev ? prev->y.host : x;
		float *y = l->y.host;

		if (l->kind == RT_CONV) {
			im2col(l, s->n, src, l->col.host);
			src = l->col.host;
		}
		s->a_f32[i] = src;
		ret = ctx->ops->sgemm(ctx, false, true, (uint32_t)M, l->N, l->K, src, l->w, y, false);
		if (ret)
			return ret;
		count_f32(&l->st.pass[SPT_PASS_FWD], M, l->N, l->K);
		ret = spt_f32_bias_act(y, M, l->N, l->b, l->relu,
				       i + 1 < m->nlayers && s->train ?
				       note(s, i + 1, SPT_CLASS_ACT) : NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int f32_backward_layer(struct step *s, int i)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
	uint64_t M = rows_of(l, s->n);
	int ret;

	if (prev) {
		uint64_t Mp = rows_of(prev, s->n);
		float *dy = prev->dy.host, *y = prev->y.host;
		size_t e = Mp * prev->N;

		ret = ctx->ops->sgemm(ctx, false, false, (uint32_t)M, l->K, l->N, l->dy.host, l->w,
				      l->dcol.host, false);
		if (ret)
			return ret;
		count_f32(&l->st.pass[SPT_PASS_BWD], M, l->K, l->N);
		/* the ReLU mask, dy := +0.0f where y == 0.0f, with the BFP8 step's helpers */
		if (l->kind == RT_CONV) {
			ret = col2im(l, s->n, l->dcol.host, prev->relu ? y : NULL, dy);
		} else {
			memcpy(dy, l->dcol.host, e * sizeof(float));
			ret = prev->relu ? spt_relu_mask(dy, y, e) : 0;
		}
		if (ret)
			return ret;
		ret = spt_f32_stats(dy, e, note(s, i - 1, SPT_CLASS_ERR));
		if (ret)
			return ret;
	}
	ret = ctx->ops->sgemm(ctx, true, false, l->N, l->K, (uint32_t)M, l->dy.host, s->a_f32[i],
			      l->gwt.host, false);
	if (ret)
		return ret;
	count_f32(&l->st.pass[SPT_PASS_WG], l->N, l->K, M);
	return 0;
}

/* ---- the step ------------------------------------------------------------- */

/* FP32 precision: the bias gradient over the FP32 dY (the CPU backend). */
static int f32_bias_grad(struct step *s, int i)
{
	struct rt_layer *l = &s->m->layers[i];

	return spt_f32_colsum(l->dy.host, rows_of(l, s->n), l->N, l->gb);
}

static int check_input(const struct spt_model *m, const float *x, const uint8_t *labels,
		       uint32_t n)
{
	size_t j, e = (size_t)n * m->in_c * m->in_h * m->in_w;

	if (spt_check_finite(x, e))
		return -EDOM;
	for (j = 0; labels && j < n; j++)
		if (labels[j] >= m->classes)
			return -EINVAL;
	return 0;
}

static void finish_stats(struct step *s, struct spt_step_stats *st)
{
	struct spt_model *m = s->m;
	bool bfp8 = m->opts.precision == SPT_PRECISION_BFP8;
	int i, c;

	memset(&st->total, 0, sizeof(st->total));
	st->interim_elements = st->interim_zeros = 0;
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];

		memset(&l->st.total, 0, sizeof(l->st.total));
		for (c = 0; c < 3; c++) {
			if (bfp8)
				spt_model_apply(&m->ctx->energy, &l->st.pass[c]);
			spt_counters_add(&l->st.total, &l->st.pass[c]);
		}
		if (bfp8) {
			struct spt_counters rb = { 0 };
			int k;

			for (k = 0; k < s->nrb[i]; k++)
				rb.bytes_written += s->rb_out[i][k]->len;
			spt_model_apply(&m->ctx->energy, &rb);
			spt_counters_add(&l->st.total, &rb);
		}
		spt_counters_add(&st->total, &l->st.total);
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			l->st.cls[c] = l->ctl[c].last;
		if (i > 0) {
			st->interim_elements += l->ctl[SPT_CLASS_ACT].last.elements;
			st->interim_zeros += l->ctl[SPT_CLASS_ACT].last.elements -
					     l->ctl[SPT_CLASS_ACT].last.nonzeros;
		}
		st->interim_elements += l->ctl[SPT_CLASS_ERR].last.elements;
		st->interim_zeros += l->ctl[SPT_CLASS_ERR].last.elements -
				     l->ctl[SPT_CLASS_ERR].last.nonzeros;
	}
	if (bfp8) {
		st->total.eff_tops_per_w = st->total.energy_pj > 0 ?
			2.0 * (double)st->total.dense_macs / st->total.energy_pj : 0;
		st->total.exec_tops_per_w = st->total.energy_pj > 0 ?
			2.0 * (double)st->total.exec_macs / st->total.energy_pj : 0;
	}
	st->interim_sparsity = st->interim_elements ?
		(double)st->interim_zeros / (double)st->interim_elements : 0;
	st->bytes_vs_fp16 = st->total.dense_fp16_bytes ?
		(double)(st->total.bytes_read + st->total.bytes_written) /
		(double)st->total.dense_fp16_bytes : 0;
}

/* Queue the whole step on the batch of s->in: forward to update, checks before the update. */
static int step_queue(struct step *s)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	bool bfp8 = m->opts.precision == SPT_PRECISION_BFP8;
	struct rt_layer *last = &m->layers[m->nlayers - 1];
	int i, ret;

	ret = bfp8 ? bfp8_forward(s, &s->in->x) : f32_forward(s, s->in->x.host);
	ret = ret ?: ctx->ops->softmax_xent(ctx, &last->y, &s->in->labels, s->n, m->classes,
					    &m->lossb, &last->dy) ?:
	      ctx->ops->check_finite(ctx, &m->lossb, 1);
	if (ret)
		return ret;
	if (bfp8) {
		struct spt_encode_opts raw;

		enc_opts(&raw, NULL);
		reblock_add(s, m->nlayers - 1, &last->dyt_ct);
		ret = ctx->ops->encode_t(ctx, &last->dy, s->n, m->classes, &raw, &last->dy_ct,
					 note(s, m->nlayers - 1, SPT_CLASS_ERR), &last->dyt_ct);
	} else {
		ret = spt_f32_stats(last->dy.host, (size_t)s->n * m->classes,
				    note(s, m->nlayers - 1, SPT_CLASS_ERR));
	}
	for (i = m->nlayers - 1; !ret && i >= 0; i--) {
		ret = bfp8 ? bfp8_backward_layer(s, i) : f32_backward_layer(s, i);
		if (!ret && !bfp8)
			ret = f32_bias_grad(s, i);
	}
	/*
	 * A non-finite gradient fails the step before any weight is touched.
	 * In BFP8 the weight gradient is a compressed tensor, and every value
	 * the format can hold is finite (|k| <= 127, E <= 127), so only the
	 * bias gradient, an FP32 sum that may overflow, is checked.
	 */
	for (i = 0; !ret && i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];

		ret = ctx->ops->check_finite(ctx, &l->gbb, l->N);
		if (!ret && !bfp8)
			ret = ctx->ops->check_finite(ctx, &l->gwt, (size_t)l->K * l->N);
	}
	if (ret || !s->update)
		return ret;
	s->lr = rt_lr(&m->opts, m->steps);
	for (i = 0; !ret && i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];

		size_t kn = (size_t)l->K * l->N;

		/* BFP8: the weight gradient decoded block by block inside the update */
		ret = bfp8 ? ctx->ops->sgd_ct(ctx, &l->wb, &l->vwb, &l->wg_ct, &l->gwt, kn, s->lr,
					      m->opts.momentum, m->opts.weight_decay) :
			     ctx->ops->sgd(ctx, &l->wb, &l->vwb, &l->gwt, kn, s->lr,
					   m->opts.momentum, m->opts.weight_decay);
		ret = ret ?: ctx->ops->sgd(ctx, &l->bb, &l->vbb, &l->gbb, l->N, s->lr,
					   m->opts.momentum, 0.0f);
	}
	return ret;
}

/* The input was checked finite: a NaN or infinity found later is divergence. */
static int diverged(int ret)
{
	return ret == -EDOM ? -SPT_EDIVERGED : ret;
}

/*
 * Start the step on the batch in @in: controller thresholds, then every
 * operation queued and, on a device backend, submitted.  @t0 is when the
 * caller's request began.
 */
static int step_start(struct spt_model *m, struct rt_slot *in, bool update, double t0)
{
	struct spt_ctx *ctx = m->ctx;
	struct step *s = rt_zalloc(sizeof(*s));
	int i, c, ret;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->n = in->n;
	s->in = in;
	s->train = true;
	s->update = update;
	s->t0 = t0;
	if (ctx->ops->device_seconds)
		ctx->ops->device_seconds(ctx);	/* start counting at this step */
	for (i = 0; i < m->nlayers; i++) {
		m->layers[i].st_done = m->layers[i].st;
		memcpy(m->layers[i].ctl_done, m->layers[i].ctl, sizeof(m->layers[i].ctl));
		memset(&m->layers[i].st, 0, sizeof(m->layers[i].st));
		if (!update)
			memcpy(s->saved[i], m->layers[i].ctl, sizeof(s->saved[i]));
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			rt_ctl_begin(&m->layers[i].ctl[c], &m->opts, m->steps, (uint32_t)i,
				     (uint32_t)c, &s->prune[i][c]);
	}
	ret = step_queue(s);
	if (!ret && ctx->ops->submit)
		ret = ctx->ops->submit(ctx);
	if (ret) {
		ctx->ops->sync(ctx);	/* drop what was queued: no update was */
		free(s);
		return diverged(ret);
	}
	m->running = s;
	return 0;
}

/* Wait for the running step, then feed the controller and fill @st (may be NULL). */
static int step_finish(struct spt_model *m, struct spt_step_stats *st)
{
	struct spt_ctx *ctx = m->ctx;
	struct step *s = m->running;
	const uint8_t *res = m->lossb.host;
	float loss;
	uint32_t correct;
	int i, c, ret;

	m->running = NULL;
	ret = diverged(ctx->ops->sync(ctx));
	if (ret || !s->update) {
		/* gradients only: leave the controller as it was */
		for (i = 0; !s->update && i < m->nlayers; i++)
			memcpy(m->layers[i].ctl, s->saved[i], sizeof(m->layers[i].ctl));
		free(s);
		return ret;
	}
	memcpy(&loss, res, sizeof(loss));
	memcpy(&correct, res + 4, sizeof(correct));
	for (i = 0; i < m->nlayers; i++)
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			if (s->have[i][c])
				rt_ctl_end(&m->layers[i].ctl[c], &m->opts, &s->ts[i][c]);
	m->steps++;
	rt_ctl_loss(m, loss);
	if (st) {
		memset(st, 0, sizeof(*st));
		st->step = m->steps;
		st->samples = s->n;
		st->correct = correct;
		st->loss = loss;
		st->lr = s->lr;
		finish_stats(s, st);
		st->host_seconds = rt_now() - s->t0;
		st->device_seconds = ctx->ops->device_seconds ? ctx->ops->device_seconds(ctx) : 0;
	} else {
		struct spt_step_stats local;

		finish_stats(s, &local);	/* the layer statistics */
	}
	free(s);
	return 0;
}

/* Copy a batch into @in (backend memory: on a device, its upload). */
static void upload(struct spt_model *m, struct rt_slot *in, const float *x,
		   const uint8_t *labels, uint32_t n)
{
	memcpy(in->x.host, x, (size_t)n * m->in_c * m->in_h * m->in_w * sizeof(float));
	if (labels)
		memcpy(in->labels.host, labels, n);
	in->n = n;
	in->ret = 0;
}

static int model_ready(const struct spt_model *m, const float *x, const uint8_t *labels,
		       uint32_t n)
{
	if (!m || !x || !m->finalized || n == 0)
		return -EINVAL;
	return check_input(m, x, labels, n);
}

SPT_API int spt_model_train_step_submit(struct spt_model *m, const float *x,
					const uint8_t *labels, uint32_t n)
{
	double t0 = rt_now();
	struct rt_slot *in;
	int ret;

	if (!m || !labels || !m->finalized || n > m->opts.batch)
		return -EINVAL;
	ret = model_ready(m, x, labels, n);
	if (ret)
		return ret;
	if (m->pending == RT_MAX_PENDING)
		return -EBUSY;
	in = &m->slot[(m->head + m->pending) % RT_MAX_PENDING];
	upload(m, in, x, labels, n);
	if (m->pending++ == 0)
		in->ret = step_start(m, in, true, t0);
	return 0;
}

SPT_API int spt_model_train_step_wait(struct spt_model *m, struct spt_step_stats *st)
{
	struct rt_slot *in;
	int ret;

	if (!m || !m->finalized || !m->pending)
		return -EINVAL;
	in = &m->slot[m->head];
	ret = m->running ? step_finish(m, st) : in->ret;
	m->head = (m->head + 1) % RT_MAX_PENDING;
	if (--m->pending) {
		/* the next step's thresholds depend on this one's statistics: start it now */
		in = &m->slot[m->head];
		in->ret = step_start(m, in, true, rt_now());
	}
	return ret;
}

SPT_API int spt_model_train_step(struct spt_model *m, const float *x,
				 const uint8_t *labels, uint32_t n,
				 struct spt_step_stats *st)
{
	int ret;

	if (m && m->pending)
		return -EBUSY;
	ret = spt_model_train_step_submit(m, x, labels, n);
	return ret ?: spt_model_train_step_wait(m, st);
}

void rt_step_drain(struct spt_model *m)
{
	if (m->running) {
		m->ctx->ops->sync(m->ctx);
		free(m->running);
		m->running = NULL;
	}
	m->pending = 0;
}

SPT_API int spt_model_gradients(struct spt_model *m, const float *x, const uint8_t *labels,
				uint32_t n, int layer, float *gw, float *gb)
{
	struct rt_slot *in;
	struct rt_layer *l;
	int ret;

	if (!m || !labels || !m->finalized || n > m->opts.batch || layer < 0 ||
	    layer >= m->nlayers || (!gw && !gb))
		return -EINVAL;
	ret = model_ready(m, x, labels, n);
	if (ret)
		return ret;
	if (m->pending)
		return -EBUSY;
	in = &m->slot[m->head];
	upload(m, in, x, labels, n);
	ret = step_start(m, in, false, rt_now()) ?: step_finish(m, NULL);
	if (ret)
		return ret;
	l = &m->layers[layer];
	if (gw)
		memcpy(gw, l->gw, (size_t)l->K * l->N * sizeof(float));
	if (gb)
		memcpy(gb, l->gb, l->N * sizeof(float));
	return 0;
}

static int eval_chunk(struct spt_model *m, const float *x, uint32_t n)
{
	struct step *s = rt_zalloc(sizeof(*s));
	struct rt_slot *in = &m->slot[m->head];
	int i, c, ret;

	if (!s)
		return -ENOMEM;
	upload(m, in, x, NULL, n);
	s->m = m;
	s->n = n;
	s->in = in;
	s->train = false;
	for (i = 0; i < m->nlayers; i++)
		for (c = 0; c < SPT_CLASS_COUNT; c++) {
			peek_prune(&m->layers[i].ctl[c], &s->prune[i][c],
				   m->opts.seed ^ 0x6576616cULL ^ ((uint64_t)i << 8 | (uint64_t)c));
		}
	ret = m->opts.precision == SPT_PRECISION_BFP8 ? bfp8_forward(s, &in->x) :
							f32_forward(s, in->x.host);
	c = m->ctx->ops->sync(m->ctx);
	ret = ret ?: c;
	free(s);
	return ret;
}

SPT_API int spt_model_evaluate(struct spt_model *m, const float *x,
			       const uint8_t *labels, uint32_t n,
			       double *loss_sum, uint32_t *correct, float *logits)
{
	size_t in = m ? (size_t)m->in_c * m->in_h * m->in_w : 0;
	struct rt_layer *last;
	double lsum = 0;
	uint32_t hits = 0, off = 0;
	int ret = model_ready(m, x, labels, n);

	if (ret)
		return ret;
	if ((loss_sum || correct) && !labels)
		return -EINVAL;
	if (m->pending)
		return -EBUSY;
	last = &m->layers[m->nlayers - 1];
	while (off < n) {
		uint32_t k = n - off < m->opts.batch ? n - off : m->opts.batch, h = 0;
		float loss;

		ret = eval_chunk(m, x + off * in, k);
		if (ret)
			return ret;
		if (labels) {
			ret = spt_softmax_xent(last->y.host, labels + off, k, m->classes, &loss, &h, NULL);
			if (ret)
				return ret == -EDOM ? -SPT_EDIVERGED : ret;
			lsum += (double)loss * k;
			hits += h;
		}
		if (logits)
			memcpy(logits + (size_t)off * m->classes, last->y.host,
			       (size_t)k * m->classes * sizeof(float));
		off += k;
	}
	if (loss_sum)
		*loss_sum = lsum;
	if (correct)
		*correct = hits;
	return 0;
}
