// SPDX-License-Identifier: MIT
/*
 * The CPU backend: every operation runs at once, in-process, on libsptcore
 * (the chip's golden model) or, for the FP32 baseline, on OpenBLAS.
 */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Every compressed tensor this backend reads was written by libsptcore's
 * encoders or GEMMs in this process, into the runtime's own buffers, which
 * no application can reach; so its readers check only headers, lengths and
 * tile tables, not every tile record (spt_ct_set_trusted()), for the span
 * of one call.
 */
#define CT_TRUSTED(ret, call)						\
	do {								\
		bool old_ = spt_ct_set_trusted(true);			\
		(ret) = (call);						\
		spt_ct_set_trusted(old_);				\
	} while (0)

static int cpu_open(struct spt_ctx *ctx, const struct spt_ctx_opts *o)
{
	(void)o;
	snprintf(ctx->device, sizeof(ctx->device), "cpu (libsptcore %s, OpenBLAS)",
		 spt_core_isa_name(spt_core_get_isa()));
	ctx->driver[0] = '\0';
	ctx->abi_version = 0;
	return 0;
}

static void cpu_close(struct spt_ctx *ctx)
{
	(void)ctx;
}

static int cpu_info(const struct spt_ctx *ctx, struct spt_ctx_info *info)
{
	(void)ctx;
	info->has_fp32 = true;
	info->has_bfp8 = true;
	return 0;
}

static int cpu_buf_alloc(struct spt_ctx *ctx, struct spt_buf *b, size_t bytes)
{
	size_t sz = (bytes + 63) & ~(size_t)63;

	(void)ctx;
	b->host = aligned_alloc(64, sz ? sz : 64);
	if (!b->host)
		return -ENOMEM;
	memset(b->host, 0, sz ? sz : 64);
	b->cap = bytes;
	b->len = 0;
	b->dev_addr = 0;
	return 0;
}

static void cpu_buf_free(struct spt_ctx *ctx, struct spt_buf *b)
{
	(void)ctx;
	free(b->host);
	memset(b, 0, sizeof(*b));
}

/* @src holds rows x cols floats: -EINVAL otherwise; @dst gets the dimensions. */
static int enc_dims(const struct spt_buf *src, uint32_t rows, uint32_t cols, struct spt_buf *dst)
{
	if ((size_t)rows * cols * sizeof(float) > src->cap)
		return -EINVAL;
	dst->rows = rows;
	dst->cols = cols;
	return 0;
}

static int cpu_encode(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		      uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		      struct spt_tensor_stats *st)
{
	(void)ctx;
	return enc_dims(src, rows, cols, dst) ?:
	       spt_ct_encode(src->host, rows, cols, o, dst->host, dst->cap, &dst->len, st);
}

static int cpu_transpose(struct spt_ctx *ctx, const struct spt_buf *src,
			 const struct spt_encode_opts *o, struct spt_buf *dst,
			 struct spt_tensor_stats *st)
{
	int ret;

	(void)ctx;
	dst->rows = src->cols;
	dst->cols = src->rows;
	CT_TRUSTED(ret, spt_ct_transpose(src->host, src->len, o, dst->host, dst->cap, &dst->len,
					 st));
	return ret;
}

/* The transposed copy of a compressed result @ct just written (raw options, no statistics). */
static int cpu_reblock(const struct spt_buf *ct, struct spt_buf *t)
{
	struct spt_encode_opts raw;
	int ret;

	spt_encode_opts_init(&raw);
	t->rows = ct->cols;
	t->cols = ct->rows;
	CT_TRUSTED(ret, spt_ct_transpose(ct->host, ct->len, &raw, t->host, t->cap, &t->len, NULL));
	return ret;
}

static int cpu_encode_t(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
			uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
			struct spt_tensor_stats *st, struct spt_buf *t)
{
	(void)ctx;
	if (!t || t == dst || enc_dims(src, rows, cols, dst))
		return -EINVAL;
	t->rows = cols;
	t->cols = rows;
	/* spt_ct_encode, then the re-blocked transpose (spt_ct_transpose, raw) */
	return spt_ct_encode_t(src->host, rows, cols, o, dst->host, dst->cap, &dst->len, st,
			       t->host, t->cap, &t->len);
}

static int cpu_decode(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		      size_t elems)
{
	int ret;

	(void)ctx;
	if (elems * sizeof(float) > dst->cap)
		return -EINVAL;
	CT_TRUSTED(ret, spt_ct_decode(src->host, src->len, dst->host, elems));
	return ret;
}

/* The epilogue and outputs of a GEMM op in spt_gemm()'s terms. */
static void gemm_io(const struct spt_buf *bias, enum spt_act act, const struct spt_buf *mask,
		    struct spt_buf *y, struct spt_buf *ct, const struct spt_encode_opts *enc,
		    struct spt_gemm_epilogue *ep, struct spt_gemm_out *out)
{
	memset(ep, 0, sizeof(*ep));
	memset(out, 0, sizeof(*out));
	ep->bias = bias ? bias->host : NULL;
	ep->act = act;
	if (mask) {
		ep->mask = mask->host;
		ep->mask_len = mask->len;
	}
	out->y = y ? y->host : NULL;
	if (ct) {
		out->ct = ct->host;
		out->ct_cap = ct->cap;
	}
	if (enc)
		out->enc = *enc;
	else
		spt_encode_opts_init(&out->enc);
}

/* A GEMM op's results: @ct (@m x @n) and its statistics. */
static void gemm_done(const struct spt_gemm_out *out, uint32_t m, uint32_t n, struct spt_buf *ct,
		      struct spt_tensor_stats *st)
{
	if (ct) {
		ct->len = out->ct_len;
		ct->rows = m;
		ct->cols = n;
	}
	if (st)
		*st = out->stats;
}

static int cpu_gemm(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		    const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		    const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		    const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		    struct spt_counters *cnt)
{
	struct spt_gemm_epilogue ep;
	struct spt_gemm_out out;
	int ret;

	(void)ctx;
	gemm_io(bias, act, mask, y, ct, enc, &ep, &out);
	CT_TRUSTED(ret, spt_gemm(pass, a->host, a->len, b->host, b->len, &ep, &out, cnt));
	if (ret)
		return ret;
	gemm_done(&out, a->rows, b->rows, ct, st);
	return 0;
}

/* B quantised inside the GEMM (spt_gemm_wq): the same bits as encode, then gemm. */
static int cpu_gemm_w(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		      const struct spt_buf *w, uint32_t n, uint32_t k,
		      const struct spt_encode_opts *wo, struct spt_tensor_stats *wst,
		      const struct spt_buf *bias, enum spt_act act, struct spt_buf *y,
		      struct spt_buf *ct, const struct spt_encode_opts *enc,
		      struct spt_tensor_stats *st, struct spt_counters *cnt, struct spt_buf *t)
{
	struct spt_gemm_epilogue ep;
	struct spt_gemm_out out;
	int ret;

	(void)ctx;
	if ((size_t)n * k * sizeof(float) > w->cap || (t && (!ct || t == ct)))
		return -EINVAL;
	gemm_io(bias, act, NULL, y, ct, enc, &ep, &out);
	CT_TRUSTED(ret, spt_gemm_wq(pass, a->host, a->len, w->host, n, k, wo, wst, &ep, &out,
				    cnt));
	if (ret)
		return ret;
	gemm_done(&out, a->rows, n, ct, st);
	return t ? cpu_reblock(ct, t) : 0;
}

static int cpu_gemm_t(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		      const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		      const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		      const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		      struct spt_counters *cnt, struct spt_buf *t)
{
	if (!ct || !t || t == ct)
		return -EINVAL;
	return cpu_gemm(ctx, pass, a, b, bias, act, mask, y, ct, enc, st, cnt) ?:
	       cpu_reblock(ct, t);
}

static int cpu_sgemm(struct spt_ctx *ctx, bool trans_a, bool trans_b, uint32_t m,
		     uint32_t n, uint32_t k, const float *a, const float *b, float *c,
		     bool accumulate)
{
	(void)ctx;
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
		    trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
		    a, trans_a ? (int)m : (int)k, b, trans_b ? (int)k : (int)n,
		    accumulate ? 1.0f : 0.0f, c, (int)n);
	return 0;
}

static int cpu_softmax_xent(struct spt_ctx *ctx, const struct spt_buf *logits,
			    const struct spt_buf *labels, uint32_t rows, uint32_t classes,
			    struct spt_buf *out, struct spt_buf *dlogits)
{
	size_t bytes = (size_t)rows * classes * sizeof(float);
	uint8_t *res = out ? out->host : NULL;
	uint32_t correct;
	float loss;
	int ret;

	(void)ctx;
	if (!logits || !labels || !res || bytes > logits->cap || rows > labels->cap ||
	    out->cap < 8 || (dlogits && bytes > dlogits->cap))
		return -EINVAL;
	ret = spt_softmax_xent(logits->host, labels->host, rows, classes, &loss, &correct,
			       dlogits ? dlogits->host : NULL);
	if (ret)
		return ret;
	memcpy(res, &loss, sizeof(loss));
	memcpy(res + 4, &correct, sizeof(correct));
	return 0;
}

static int cpu_sgd(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		   const struct spt_buf *g, size_t n, float lr, float momentum,
		   float weight_decay)
{
	(void)ctx;
	if (!w || !v || !g || n * sizeof(float) > w->cap || n * sizeof(float) > v->cap ||
	    n * sizeof(float) > g->cap)
		return -EINVAL;
	return spt_sgd_momentum(w->host, v->host, g->host, n, lr, momentum, weight_decay);
}

static int cpu_sgd_ct(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		      const struct spt_buf *g_ct, struct spt_buf *gtmp, size_t n, float lr,
		      float momentum, float weight_decay)
{
	int ret;

	(void)ctx;
	(void)gtmp;
	if (!w || !v || !g_ct || n * sizeof(float) > w->cap || n * sizeof(float) > v->cap)
		return -EINVAL;
	CT_TRUSTED(ret, spt_sgd_momentum_ct(w->host, v->host, g_ct->host, g_ct->len, n, lr,
					    momentum, weight_decay));
	return ret;
}

/* The lowering's shape, checked against both buffers' capacities. */
static int conv_dims(const struct spt_conv_shape *cs, const struct spt_buf *img,
		     const struct spt_buf *col, struct spt_conv_dims *d)
{
	int ret;

	if (!img || !col)
		return -EINVAL;
	ret = spt_conv_shape_check(cs, d);
	if (ret)
		return ret;
	if (d->img_elems * sizeof(float) > img->cap || d->col_elems * sizeof(float) > col->cap)
		return -EINVAL;
	return 0;
}

static int cpu_im2col(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		      const struct spt_buf *img, struct spt_buf *col)
{
	struct spt_conv_dims d;

	(void)ctx;
	return conv_dims(cs, img, col, &d) ?:
	       spt_im2col(cs, img->host, d.img_elems, col->host, d.col_elems);
}

static int cpu_col2im(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		      const struct spt_buf *col, struct spt_buf *img,
		      const struct spt_buf *y_mask)
{
	struct spt_conv_dims d;
	int ret;

	(void)ctx;
	ret = conv_dims(cs, img, col, &d);
	if (ret)
		return ret;
	if (y_mask && d.img_elems * sizeof(float) > y_mask->cap)
		return -EINVAL;
	return spt_col2im_relu(cs, col->host, d.col_elems, y_mask ? y_mask->host : NULL,
			       img->host, d.img_elems);
}

static int cpu_im2col_ct(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
			 const struct spt_buf *img, struct spt_buf *dst, struct spt_buf *t)
{
	struct spt_conv_dims d;
	int ret;

	(void)ctx;
	if (!img || !dst || t == dst)
		return -EINVAL;
	/* spt_im2col_ct checks the shape and that its dimensions fit a tensor */
	CT_TRUSTED(ret, spt_im2col_ct(cs, img->host, img->len, dst->host, dst->cap, &dst->len));
	if (ret)
		return ret;
	spt_conv_shape_check(cs, &d);
	dst->rows = (uint32_t)d.rows;
	dst->cols = (uint32_t)d.cols;
	return t ? cpu_reblock(dst, t) : 0;
}

static int cpu_colsum(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		      uint32_t cols)
{
	int ret;

	(void)ctx;
	if (!src || !dst || (size_t)cols * sizeof(float) > dst->cap)
		return -EINVAL;
	CT_TRUSTED(ret, spt_ct_colsum(src->host, src->len, dst->host, cols));
	return ret;
}

static int cpu_check_finite(struct spt_ctx *ctx, const struct spt_buf *b, size_t n)
{
	(void)ctx;
	if (!b || !n || n * sizeof(float) > b->cap)
		return -EINVAL;
	return spt_check_finite(b->host, n);
}

static int cpu_relu_mask(struct spt_ctx *ctx, struct spt_buf *dx, const struct spt_buf *y,
			 size_t n)
{
	(void)ctx;
	if (!dx || !y || !n || n > dx->cap / sizeof(float) || n > y->cap / sizeof(float))
		return -EINVAL;
	return spt_relu_mask(dx->host, y->host, n);
}

static int cpu_sync(struct spt_ctx *ctx)
{
	(void)ctx;
	return 0;
}

const struct spt_backend_ops spt_cpu_backend = {
	.name = "cpu",
	.open = cpu_open,
	.close = cpu_close,
	.info = cpu_info,
	.buf_alloc = cpu_buf_alloc,
	.buf_free = cpu_buf_free,
	.encode = cpu_encode,
	.encode_t = cpu_encode_t,
	.transpose = cpu_transpose,
	.decode = cpu_decode,
	.gemm = cpu_gemm,
	.gemm_t = cpu_gemm_t,
	.gemm_w = cpu_gemm_w,
	.sgemm = cpu_sgemm,
	.softmax_xent = cpu_softmax_xent,
	.sgd = cpu_sgd,
	.sgd_ct = cpu_sgd_ct,
	.im2col = cpu_im2col,
	.col2im = cpu_col2im,
	.im2col_ct = cpu_im2col_ct,
	.colsum = cpu_colsum,
	.check_finite = cpu_check_finite,
	.relu_mask = cpu_relu_mask,
	.sync = cpu_sync,
};
