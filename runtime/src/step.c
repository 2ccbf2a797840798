// SPDX-License-Identifier: MIT
/*
 * The training step: forward, loss, backward, weight gradients, update and
 * controller, as a sequence of backend operations.
 *
 * BFP8: every GEMM runs on compressed operands blocked along its reduction
 * axis, exactly as the chip does: forward X*W with W^T encoded N x K,
 * backward dY*W^T with W encoded K x N, weight update X^T*dY with both
 * operands re-blocked by a transpose.  ReLU, bias, pruning and encoding are
 * fused into the producing GEMM wherever the layouts allow; convolutions
 * are lowered with im2col/col2im on the host.  FP32: the same passes on
 * OpenBLAS, dense.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct step {
	struct spt_model *m;
	uint32_t n;
	bool train;
	struct spt_prune prune[64][SPT_CLASS_COUNT];
	struct spt_tensor_stats ts[64][SPT_CLASS_COUNT];
	bool have[64][SPT_CLASS_COUNT];
	const struct spt_buf *a_op[64];	/* forward A operand of each layer (BFP8) */
	const float *a_f32[64];		/* forward A operand of each layer (FP32) */
	struct spt_counters reblock[64];
	struct rt_ctl saved[64][SPT_CLASS_COUNT];	/* controller before a gradients-only step */
};

static inline uint64_t rows_of(const struct rt_layer *l, uint32_t n)
{
	return (uint64_t)n * l->rows_per_sample;
}

static struct spt_buf wrap(const float *p, size_t elems)
{
	struct spt_buf b = { .host = (void *)p, .cap = elems * sizeof(float) };

	return b;
}

/* x: [n, H, W, C] -> col: [n*Ho*Wo, 9*C] with columns ordered (ky, kx, c). */
static void im2col(const struct rt_layer *l, uint32_t n, const float *x, float *col)
{
	uint32_t C = l->in_c, H = l->in_h, W = l->in_w, s, oy, ox, ky, kx;
	size_t K = l->K;

	for (s = 0; s < n; s++)
		for (oy = 0; oy < l->out_h; oy++)
			for (ox = 0; ox < l->out_w; ox++) {
				float *row = col + (((size_t)s * l->out_h + oy) * l->out_w + ox) * K;

				for (ky = 0; ky < 3; ky++)
					for (kx = 0; kx < 3; kx++) {
						int iy = (int)(oy * l->stride + ky) - (int)l->pad;
						int ix = (int)(ox * l->stride + kx) - (int)l->pad;
						float *dst = row + (ky * 3 + kx) * C;

						if (iy < 0 || ix < 0 || iy >= (int)H || ix >= (int)W)
							memset(dst, 0, C * sizeof(float));
						else
							memcpy(dst, x + (((size_t)s * H + iy) * W + ix) * C,
							       C * sizeof(float));
					}
			}
}

static void col2im(const struct rt_layer *l, uint32_t n, const float *col, float *dx)
{
	uint32_t C = l->in_c, H = l->in_h, W = l->in_w, s, oy, ox, ky, kx, c;
	size_t K = l->K;

	memset(dx, 0, (size_t)n * H * W * C * sizeof(float));
	for (s = 0; s < n; s++)
		for (oy = 0; oy < l->out_h; oy++)
			for (ox = 0; ox < l->out_w; ox++) {
				const float *row = col + (((size_t)s * l->out_h + oy) * l->out_w + ox) * K;

				for (ky = 0; ky < 3; ky++)
					for (kx = 0; kx < 3; kx++) {
						int iy = (int)(oy * l->stride + ky) - (int)l->pad;
						int ix = (int)(ox * l->stride + kx) - (int)l->pad;
						const float *src = row + (ky * 3 + kx) * C;
						float *dst;

						if (iy < 0 || ix < 0 || iy >= (int)H || ix >= (int)W)
							continue;
						dst = dx + (((size_t)s * H + iy) * W + ix) * C;
						for (c = 0; c < C; c++)
							dst[c] += src[c];
					}
			}
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

static void note(struct step *s, int l, int cls, const struct spt_tensor_stats *ts)
{
	s->ts[l][cls] = *ts;
	s->have[l][cls] = true;
}

static void reblock_add(struct step *s, int l, const struct spt_buf *in, const struct spt_buf *out)
{
	s->reblock[l].bytes_read += in->len;
	s->reblock[l].bytes_written += out->len;
}

/* ---- BFP8 ----------------------------------------------------------------- */

static int bfp8_wcopy(struct step *s, int i)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct rt_layer *l = &m->layers[i];
	struct spt_buf *w = &l->wb;
	struct spt_encode_opts o, raw;
	struct spt_tensor_stats ts;
	int ret;

	/* master weights are N x K, blocked along K: the forward B operand as is */
	enc_opts(&o, &s->prune[i][SPT_CLASS_WCOPY]);
	ret = ctx->ops->encode(ctx, w, l->N, l->K, &o, &l->wt_ct, &ts);
	if (ret)
		return ret;
	note(s, i, SPT_CLASS_WCOPY, &ts);
	if (i == 0 || !s->train)
		return 0;
	enc_opts(&raw, NULL);
	ret = ctx->ops->transpose(ctx, &l->wt_ct, &raw, &l->w_ct, NULL);
	reblock_add(s, i, &l->wt_ct, &l->w_ct);
	return ret;
}

static bool needs_f32_out(const struct spt_model *m, int i)
{
	return i + 1 < m->nlayers &&
	       (m->layers[i].kind == RT_CONV || m->layers[i + 1].kind == RT_CONV);
}

static int bfp8_forward(struct step *s, const float *x)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct spt_encode_opts raw, o;
	int i, ret;

	enc_opts(&raw, NULL);
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
		bool last = i == m->nlayers - 1;
		uint64_t M = rows_of(l, s->n);
		struct spt_tensor_stats ts;
		struct spt_buf bias = l->bb;

		ret = bfp8_wcopy(s, i);
		if (ret)
			return ret;
		if (!prev || prev->kind == RT_CONV || l->kind == RT_CONV) {
			const float *src = prev ? prev->y.host : x;

			if (!prev)
				memcpy(l->x.host, x, (size_t)s->n * l->in_c * l->in_h * l->in_w * sizeof(float));
			if (l->kind == RT_CONV) {
				im2col(l, s->n, prev ? src : l->x.host, l->col.host);
				ret = ctx->ops->encode(ctx, &l->col, (uint32_t)M, l->K, &raw, &l->a_ct, NULL);
			} else {
				struct spt_buf in = prev ? wrap(src, (size_t)s->n * l->K) : l->x;

				ret = ctx->ops->encode(ctx, &in, s->n, l->K, &raw, &l->a_ct, NULL);
			}
			if (ret)
				return ret;
			s->a_op[i] = &l->a_ct;
		} else {
			s->a_op[i] = &prev->y_ct;
		}
		if (last) {
			ret = ctx->ops->gemm(ctx, SPT_PASS_FWD, s->a_op[i], &l->wt_ct, &bias,
					     SPT_ACT_NONE, NULL, &l->y, NULL, NULL, NULL,
					     &l->st.pass[SPT_PASS_FWD]);
			if (ret)
				return ret;
			continue;
		}
		enc_opts(&o, &s->prune[i + 1][SPT_CLASS_ACT]);
		ret = ctx->ops->gemm(ctx, SPT_PASS_FWD, s->a_op[i], &l->wt_ct, &bias,
				     l->relu ? SPT_ACT_RELU : SPT_ACT_NONE, NULL, NULL, &l->y_ct,
				     &o, &ts, &l->st.pass[SPT_PASS_FWD]);
		if (ret)
			return ret;
		note(s, i + 1, SPT_CLASS_ACT, &ts);
		if (needs_f32_out(m, i)) {
			ret = ctx->ops->decode(ctx, &l->y_ct, &l->y, M * l->N);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int bfp8_backward_layer(struct step *s, int i)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
	struct spt_encode_opts raw, o;
	struct spt_tensor_stats ts;
	uint64_t M = rows_of(l, s->n);
	int ret;

	enc_opts(&raw, NULL);
	if (prev) {
		uint64_t Mp = rows_of(prev, s->n);

		enc_opts(&o, &s->prune[i - 1][SPT_CLASS_ERR]);
		if (l->kind == RT_LINEAR && prev->kind == RT_LINEAR) {
			ret = ctx->ops->gemm(ctx, SPT_PASS_BWD, &l->dy_ct, &l->w_ct, NULL,
					     prev->relu ? SPT_ACT_RELU_GRAD : SPT_ACT_NONE,
					     prev->relu ? &prev->y_ct : NULL, NULL, &prev->dy_ct,
					     &o, &ts, &l->st.pass[SPT_PASS_BWD]);
		} else {
			float *dy = prev->dy.host, *y = prev->y.host;
			size_t j, e = Mp * prev->N;

			ret = ctx->ops->gemm(ctx, SPT_PASS_BWD, &l->dy_ct, &l->w_ct, NULL,
					     SPT_ACT_NONE, NULL, &l->dcol, NULL, NULL, NULL,
					     &l->st.pass[SPT_PASS_BWD]);
			if (ret)
				return ret;
			if (l->kind == RT_CONV)
				col2im(l, s->n, l->dcol.host, dy);
			else
				memcpy(dy, l->dcol.host, e * sizeof(float));
			if (prev->relu)
				for (j = 0; j < e; j++)
					if (y[j] == 0.0f)
						dy[j] = 0.0f;
			ret = ctx->ops->encode(ctx, &prev->dy, (uint32_t)Mp, prev->N, &o,
					       &prev->dy_ct, &ts);
		}
		if (ret)
			return ret;
		note(s, i - 1, SPT_CLASS_ERR, &ts);
	}
	/* weight update pass: dW = X^T dY on re-blocked operands */
	ret = ctx->ops->transpose(ctx, s->a_op[i], &raw, &l->at_ct, NULL);
	if (ret)
		return ret;
	reblock_add(s, i, s->a_op[i], &l->at_ct);
	ret = ctx->ops->transpose(ctx, &l->dy_ct, &raw, &l->dyt_ct, NULL);
	if (ret)
		return ret;
	reblock_add(s, i, &l->dy_ct, &l->dyt_ct);
	if (l->ctl[SPT_CLASS_WGRAD].cfg.mode == SPT_SPARSITY_OFF) {
		ret = ctx->ops->gemm(ctx, SPT_PASS_WG, &l->dyt_ct, &l->at_ct, NULL, SPT_ACT_NONE,
				     NULL, &l->gwt, NULL, NULL, NULL, &l->st.pass[SPT_PASS_WG]);
		if (ret)
			return ret;
	} else {
		/* pruned gradient written compressed; stochastic pruning keeps it unbiased */
		enc_opts(&o, &s->prune[i][SPT_CLASS_WGRAD]);
		ret = ctx->ops->gemm(ctx, SPT_PASS_WG, &l->dyt_ct, &l->at_ct, NULL, SPT_ACT_NONE,
				     NULL, NULL, &l->wg_ct, &o, &ts, &l->st.pass[SPT_PASS_WG]);
		if (ret)
			return ret;
		note(s, i, SPT_CLASS_WGRAD, &ts);
		ret = ctx->ops->decode(ctx, &l->wg_ct, &l->gwt, (size_t)l->N * l->K);
		if (ret)
			return ret;
	}
	/* dY as the chip stored it, for the bias gradient */
	ret = ctx->ops->decode(ctx, &l->dy_ct, &l->dy, M * l->N);
	if (ret)
		return ret;
	(void)M;
	return 0;
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

static void zero_stats(struct spt_tensor_stats *ts, const float *v, size_t e)
{
	size_t j;

	memset(ts, 0, sizeof(*ts));
	ts->elements = e;
	for (j = 0; j < e; j++) {
		if (v[j] == 0.0f)
			ts->natural_zeros++;
		ts->sum_abs += fabsf(v[j]);
	}
	ts->nonzeros = e - ts->natural_zeros;
}

static int f32_forward(struct step *s, const float *x)
{
	struct spt_model *m = s->m;
	struct spt_ctx *ctx = m->ctx;
	int i, ret;

	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i], *prev = i ? &m->layers[i - 1] : NULL;
		uint64_t M = rows_of(l, s->n), r;
		const float *src = prev ? prev->y.host : x;
		float *y = l->y.host;
		uint32_t c;

		if (l->kind == RT_CONV) {
			im2col(l, s->n, src, l->col.host);
			src = l->col.host;
		}
		s->a_f32[i] = src;
		ret = ctx->ops->sgemm(ctx, false, true, (uint32_t)M, l->N, l->K, src, l->w, y, false);
		if (ret)
			return ret;
		count_f32(&l->st.pass[SPT_PASS_FWD], M, l->N, l->K);
		for (r = 0; r < M; r++)
			for (c = 0; c < l->N; c++) {
				float v = y[r * l->N + c] + l->b[c];

				y[r * l->N + c] = l->relu && !(v > 0.0f) ? 0.0f : v;
			}
		if (i + 1 < m->nlayers && s->train) {
			struct spt_tensor_stats ts;

			zero_stats(&ts, y, M * l->N);
			note(s, i + 1, SPT_CLASS_ACT, &ts);
		}
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
		size_t j, e = Mp * prev->N;
		struct spt_tensor_stats ts;

		ret = ctx->ops->sgemm(ctx, false, false, (uint32_t)M, l->K, l->N, l->dy.host, l->w,
				      l->dcol.host, false);
		if (ret)
			return ret;
		count_f32(&l->st.pass[SPT_PASS_BWD], M, l->K, l->N);
		if (l->kind == RT_CONV)
			col2im(l, s->n, l->dcol.host, dy);
		else
			memcpy(dy, l->dcol.host, e * sizeof(float));
		if (prev->relu)
			for (j = 0; j < e; j++)
				if (y[j] == 0.0f)
					dy[j] = 0.0f;
		zero_stats(&ts, dy, e);
		note(s, i - 1, SPT_CLASS_ERR, &ts);
	}
	ret = ctx->ops->sgemm(ctx, true, false, l->N, l->K, (uint32_t)M, l->dy.host, s->a_f32[i],
			      l->gwt.host, false);
	if (ret)
		return ret;
	count_f32(&l->st.pass[SPT_PASS_WG], l->N, l->K, M);
	return 0;
}

/* ---- the step ------------------------------------------------------------- */

/* 0 if every value is finite (x * 0 is NaN exactly for NaN and infinities). */
static int all_finite(const float *v, size_t n)
{
	float acc[8] = { 0 };
	size_t j, k;

	for (j = 0; j + 8 <= n; j += 8)
		for (k = 0; k < 8; k++)
			acc[k] += v[j + k] * 0.0f;
	for (; j < n; j++)
		acc[0] += v[j] * 0.0f;
	for (k = 1; k < 8; k++)
		acc[0] += acc[k];
	return acc[0] == 0.0f ? 0 : -SPT_EDIVERGED;
}

static int bias_grad(struct step *s, int i)
{
	struct rt_layer *l = &s->m->layers[i];
	const float *dy = l->dy.host;
	uint64_t M = rows_of(l, s->n), r;
	uint32_t c;

	for (c = 0; c < l->N; c++)
		l->gb[c] = 0.0f;
	for (r = 0; r < M; r++)
		for (c = 0; c < l->N; c++)
			l->gb[c] += dy[r * l->N + c];
	l->gw = l->gwt.host;
	return all_finite(l->gb, l->N) ?: all_finite(l->gw, (size_t)l->K * l->N);
}

static int check_input(const struct spt_model *m, const float *x, const uint8_t *labels,
		       uint32_t n)
{
	size_t j, e = (size_t)n * m->in_c * m->in_h * m->in_w;

	for (j = 0; j < e; j++)
		if (!isfinite(x[j]))
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
			spt_model_apply(&m->ctx->energy, &s->reblock[i]);
			spt_counters_add(&l->st.total, &s->reblock[i]);
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

static int run_step(struct spt_model *m, const float *x, const uint8_t *labels, uint32_t n,
		    bool update, struct spt_step_stats *st)
{
	struct spt_ctx *ctx = m->ctx;
	bool bfp8 = m->opts.precision == SPT_PRECISION_BFP8;
	struct rt_layer *last = &m->layers[m->nlayers - 1];
	struct step *s;
	struct spt_step_stats local;
	double t0 = rt_now();
	float loss, lr;
	uint32_t correct;
	int i, c, ret;

	s = rt_zalloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->m = m;
	s->n = n;
	s->train = true;
	if (ctx->ops->device_seconds)
		ctx->ops->device_seconds(ctx);	/* start counting at this step */
	for (i = 0; i < m->nlayers; i++) {
		memset(&m->layers[i].st, 0, sizeof(m->layers[i].st));
		if (!update)
			memcpy(s->saved[i], m->layers[i].ctl, sizeof(s->saved[i]));
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			rt_ctl_begin(&m->layers[i].ctl[c], &m->opts, m->steps, (uint32_t)i,
				     (uint32_t)c, &s->prune[i][c]);
	}
	ret = bfp8 ? bfp8_forward(s, x) : f32_forward(s, x);
	if (ret)
		goto out;
	ret = ctx->ops->sync(ctx);
	if (ret)
		goto out;
	ret = ctx->ops->softmax_xent(ctx, &last->y, labels, n, m->classes, &loss, &correct,
				     &last->dy);
	if (ret || !isfinite(loss)) {
		ret = ret == -EDOM || !ret ? -SPT_EDIVERGED : ret;
		goto out;
	}
	if (bfp8) {
		struct spt_encode_opts raw;
		struct spt_tensor_stats ts;

		enc_opts(&raw, NULL);
		ret = ctx->ops->encode(ctx, &last->dy, n, m->classes, &raw, &last->dy_ct, &ts);
		if (ret)
			goto out;
		note(s, m->nlayers - 1, SPT_CLASS_ERR, &ts);
	} else {
		struct spt_tensor_stats ts;

		zero_stats(&ts, last->dy.host, (size_t)n * m->classes);
		note(s, m->nlayers - 1, SPT_CLASS_ERR, &ts);
	}
	for (i = m->nlayers - 1; i >= 0; i--) {
		ret = bfp8 ? bfp8_backward_layer(s, i) : f32_backward_layer(s, i);
		if (ret)
			goto out;
	}
	ret = ctx->ops->sync(ctx);
	if (ret)
		goto out;
	for (i = 0; i < m->nlayers; i++) {
		ret = bias_grad(s, i);
		if (ret)
			goto out;
	}
	if (!update) {
		/* gradients only: leave the controller as it was */
		for (i = 0; i < m->nlayers; i++)
			memcpy(m->layers[i].ctl, s->saved[i], sizeof(m->layers[i].ctl));
		goto out;
	}
	lr = rt_lr(&m->opts, m->steps);
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];

		ret = ctx->ops->sgd(ctx, &l->wb, &l->vwb, &l->gwt, (size_t)l->K * l->N, lr,
				    m->opts.momentum, m->opts.weight_decay) ?:
		      ctx->ops->sgd(ctx, &l->bb, &l->vbb, &l->gbb, l->N, lr, m->opts.momentum,
				    0.0f);
		if (ret) {
			ret = ret == -EDOM ? -SPT_EDIVERGED : ret;
			goto out;
		}
	}
	ret = ctx->ops->sync(ctx);	/* a device backend may batch the updates */
	if (ret) {
		ret = ret == -EDOM ? -SPT_EDIVERGED : ret;
		goto out;
	}
	for (i = 0; i < m->nlayers; i++)
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			if (s->have[i][c])
				rt_ctl_end(&m->layers[i].ctl[c], &m->opts, &s->ts[i][c]);
	m->steps++;
	rt_ctl_loss(m, loss);
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	st->step = m->steps;
	st->samples = n;
	st->correct = correct;
	st->loss = loss;
	st->lr = lr;
	finish_stats(s, st);
	st->host_seconds = rt_now() - t0;
	st->device_seconds = ctx->ops->device_seconds ? ctx->ops->device_seconds(ctx) : 0;
out:
	free(s);
	return ret;
}

static int model_ready(const struct spt_model *m, const float *x, const uint8_t *labels,
		       uint32_t n)
{
	if (!m || !x || !m->finalized || n == 0)
		return -EINVAL;
	return check_input(m, x, labels, n);
}

SPT_API int spt_model_train_step(struct spt_model *m, const float *x,
				 const uint8_t *labels, uint32_t n,
				 struct spt_step_stats *st)
{
	int ret = model_ready(m, x, labels, n);

	if (ret)
		return ret;
	if (!labels || n > m->opts.batch)
		return -EINVAL;
	return run_step(m, x, labels, n, true, st);
}

SPT_API int spt_model_gradients(struct spt_model *m, const float *x, const uint8_t *labels,
				uint32_t n, int layer, float *gw, float *gb)
{
	int ret = model_ready(m, x, labels, n);
	struct rt_layer *l;

	if (ret)
		return ret;
	if (!labels || n > m->opts.batch || layer < 0 || layer >= m->nlayers || (!gw && !gb))
		return -EINVAL;
	ret = run_step(m, x, labels, n, false, NULL);
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
	int i, c, ret;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->n = n;
	s->train = false;
	for (i = 0; i < m->nlayers; i++)
		for (c = 0; c < SPT_CLASS_COUNT; c++) {
			peek_prune(&m->layers[i].ctl[c], &s->prune[i][c],
				   m->opts.seed ^ 0x6576616cULL ^ ((uint64_t)i << 8 | (uint64_t)c));
		}
	ret = m->opts.precision == SPT_PRECISION_BFP8 ? bfp8_forward(s, x) : f32_forward(s, x);
	if (!ret)
		ret = m->ctx->ops->sync(m->ctx);
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
