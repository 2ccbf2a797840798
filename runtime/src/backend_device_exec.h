/* SPDX-License-Identifier: MIT */
/*
 * The device backend's execution half (backend_device_exec.c): buffer
 * objects, one command stream per step, SUBMIT and syncobj waits.  backend_device.c
 * finds and checks the device; this file runs work on it.
 */
#ifndef SPT_RT_BACKEND_DEVICE_EXEC_H
#define SPT_RT_BACKEND_DEVICE_EXEC_H

#include "drm_probe.h"
#include "internal.h"

struct rt_dx;

/* ctx->priv of a device context. */
struct rt_dev_priv {
	struct rt_drm_devinfo di;
	struct rt_dx *dx;	/* NULL when opened with SPT_CTX_QUERY_ONLY */
};

/* Open @path for submission (BO pools, a queue, a timeline syncobj). */
int rt_dx_open(const char *path, struct rt_dx **out);
void rt_dx_close(struct rt_dx *x);

int rt_dx_buf_alloc(struct spt_ctx *ctx, struct spt_buf *b, size_t bytes);
void rt_dx_buf_free(struct spt_ctx *ctx, struct spt_buf *b);
int rt_dx_encode(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		 uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		 struct spt_tensor_stats *st);
int rt_dx_encode_t(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		   uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		   struct spt_tensor_stats *st, struct spt_buf *t);
int rt_dx_transpose(struct spt_ctx *ctx, const struct spt_buf *src,
		    const struct spt_encode_opts *o, struct spt_buf *dst,
		    struct spt_tensor_stats *st);
int rt_dx_decode(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		 size_t elems);
int rt_dx_gemm(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
	       const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
	       const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
	       const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
	       struct spt_counters *cnt);
int rt_dx_gemm_t(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		 const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		 const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		 const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		 struct spt_counters *cnt, struct spt_buf *t);
int rt_dx_softmax_xent(struct spt_ctx *ctx, const struct spt_buf *logits,
		       const struct spt_buf *labels, uint32_t rows, uint32_t classes,
		       struct spt_buf *out, struct spt_buf *dlogits);
int rt_dx_sgd(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
	      const struct spt_buf *g, size_t n, float lr, float momentum,
	      float weight_decay);
/* No SGD command reads a compressed gradient: DECODE into @gtmp, then SGD. */
int rt_dx_sgd_ct(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		 const struct spt_buf *g_ct, struct spt_buf *gtmp, size_t n, float lr,
		 float momentum, float weight_decay);
int rt_dx_im2col(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		 const struct spt_buf *img, struct spt_buf *col);
int rt_dx_col2im(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		 const struct spt_buf *col, struct spt_buf *img, const struct spt_buf *y_mask);
int rt_dx_colsum(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		 uint32_t cols);
int rt_dx_check_finite(struct spt_ctx *ctx, const struct spt_buf *b, size_t n);
int rt_dx_relu_mask(struct spt_ctx *ctx, struct spt_buf *dx, const struct spt_buf *y,
		    size_t n);
int rt_dx_submit(struct spt_ctx *ctx);
int rt_dx_sync(struct spt_ctx *ctx);
double rt_dx_device_seconds(struct spt_ctx *ctx);
/* Jobs submitted so far (tests). */
uint64_t rt_dx_jobs(struct spt_ctx *ctx);

#endif
