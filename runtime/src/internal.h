/* SPDX-License-Identifier: MIT */
/* libspt internals shared between its files. */
#ifndef SPT_RT_INTERNAL_H
#define SPT_RT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spt/spt.h"

/*
 * A tensor buffer of a backend.  The CPU backend keeps it in host memory;
 * a device backend keeps a buffer object (sub-allocated from a pool) mapped
 * at @host and addressed by the device at @dev_addr.
 */
struct spt_buf {
	void *host;
	size_t cap;		/* bytes */
	size_t len;		/* bytes of valid compressed data (ct buffers), after sync() */
	uint64_t dev_addr;
	/* shape of the compressed tensor an operation queued (encode, transpose, gemm) */
	uint32_t rows, cols;
};

/*
 * The operations a backend provides.  Every model step is a sequence of
 * these calls; the CPU backend executes each at once, a device backend
 * appends commands to one command stream and executes it at submit() or
 * sync().  Results an operation writes through a pointer (statistics,
 * counters, a compressed output's len, buffer contents read by the host)
 * are valid after sync(), so the pointed-to objects must live until then.
 * Every buffer argument is a struct spt_buf from buf_alloc (device memory
 * on a device backend).  An error an operation returns is about its
 * arguments (or, on the CPU backend, its computation); errors of queued
 * work come back from sync(): -EDOM when check_finite, softmax_xent or
 * sgd met a NaN or infinity.
 */
struct spt_backend_ops {
	const char *name;
	int (*open)(struct spt_ctx *ctx, const struct spt_ctx_opts *o);
	void (*close)(struct spt_ctx *ctx);
	int (*info)(const struct spt_ctx *ctx, struct spt_ctx_info *info);

	int (*buf_alloc)(struct spt_ctx *ctx, struct spt_buf *b, size_t bytes);
	void (*buf_free)(struct spt_ctx *ctx, struct spt_buf *b);

	/* Prune, quantise and encode @rows x @cols FP32 values of @src into @dst. */
	int (*encode)(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		      uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		      struct spt_tensor_stats *st);
	/*
	 * encode, also writing @t: the re-blocked transpose of @dst, exactly
	 * what transpose(@dst, raw options) gives, from the same pass (the
	 * compressed @dst is not read back).
	 */
	int (*encode_t)(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
			uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
			struct spt_tensor_stats *st, struct spt_buf *t);
	/* Re-block for the transposed operand. */
	int (*transpose)(struct spt_ctx *ctx, const struct spt_buf *src,
			 const struct spt_encode_opts *o, struct spt_buf *dst,
			 struct spt_tensor_stats *st);
	/* Decode @src into @elems floats of @dst. */
	int (*decode)(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		      size_t elems);
	/* One sparse GEMM pass with its fused epilogue (see spt_gemm). */
	int (*gemm)(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		    const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		    const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		    const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		    struct spt_counters *cnt);
	/*
	 * gemm with a compressed result @ct, also writing @t: its re-blocked
	 * transpose, exactly what transpose(@ct, raw options) gives, from
	 * the same epilogue (the compressed @ct is not read back).
	 */
	int (*gemm_t)(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		      const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		      const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		      const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		      struct spt_counters *cnt, struct spt_buf *t);
	/*
	 * gemm (gemm_t when @t is set, without a mask) with B the encoding of
	 * the @n x @k FP32 values of @w with @wo, its statistics to @wst:
	 * exactly encode into a scratch buffer, then the product, for a weight
	 * copy that nothing else reads.  NULL if the backend has no such
	 * fusion (the caller then encodes and multiplies).
	 */
	int (*gemm_w)(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		      const struct spt_buf *w, uint32_t n, uint32_t k,
		      const struct spt_encode_opts *wo, struct spt_tensor_stats *wst,
		      const struct spt_buf *bias, enum spt_act act, struct spt_buf *y,
		      struct spt_buf *ct, const struct spt_encode_opts *enc,
		      struct spt_tensor_stats *st, struct spt_counters *cnt, struct spt_buf *t);
	/* Dense FP32 C = op(A) * op(B) (+ C if @accumulate); NULL if unsupported. */
	int (*sgemm)(struct spt_ctx *ctx, bool trans_a, bool trans_b, uint32_t m,
		     uint32_t n, uint32_t k, const float *a, const float *b, float *c,
		     bool accumulate);
	/*
	 * Softmax cross-entropy of @rows x @classes logits (spt_softmax_xent)
	 * against @rows u8 @labels: the mean loss (f32) at byte 0 of @out, the
	 * correct count (u32) at byte 4 and, if @dlogits is not NULL, its
	 * gradient.
	 */
	int (*softmax_xent)(struct spt_ctx *ctx, const struct spt_buf *logits,
			    const struct spt_buf *labels, uint32_t rows, uint32_t classes,
			    struct spt_buf *out, struct spt_buf *dlogits);
	/* Momentum SGD with weight decay on @n FP32 values (spt_sgd_momentum). */
	int (*sgd)(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		   const struct spt_buf *g, size_t n, float lr, float momentum,
		   float weight_decay);
	/*
	 * sgd with the gradient compressed in @g_ct (@n elements): the same
	 * numbers as decode(@g_ct) then sgd.  The CPU backend reads @g_ct
	 * directly (spt_sgd_momentum_ct); the device, which has no such
	 * command, decodes into the FP32 scratch @gtmp (n floats) first, so
	 * @gtmp's contents are undefined afterwards.
	 */
	int (*sgd_ct)(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		      const struct spt_buf *g_ct, struct spt_buf *gtmp, size_t n, float lr,
		      float momentum, float weight_decay);
	/*
	 * Convolution lowering (spt_im2col / spt_col2im) between FP32 buffers.
	 * col2im with @y_mask (the image's ReLU output, as many floats as the
	 * image) also applies the ReLU mask to the image, as relu_mask(img,
	 * y_mask, image elements) right after it would: the CPU backend in the
	 * same pass (spt_col2im_relu), a device as its two commands.
	 */
	int (*im2col)(struct spt_ctx *ctx, const struct spt_conv_shape *s,
		      const struct spt_buf *img, struct spt_buf *col);
	int (*col2im)(struct spt_ctx *ctx, const struct spt_conv_shape *s,
		      const struct spt_buf *col, struct spt_buf *img,
		      const struct spt_buf *y_mask);
	/*
	 * im2col of the compressed image @img_ct straight into the compressed
	 * patch matrix @dst and, if @t is not NULL, its re-blocked transpose
	 * @t: exactly what im2col of decode(@img_ct), then encode_t with raw
	 * options, gives (spt_im2col_ct).  NULL if the backend has no such
	 * operation; -EOPNOTSUPP for channel counts it does not cover.  For
	 * both, the caller takes the FP32 way.
	 */
	int (*im2col_ct)(struct spt_ctx *ctx, const struct spt_conv_shape *s,
			 const struct spt_buf *img_ct, struct spt_buf *dst, struct spt_buf *t);
	/* @cols FP32 column sums of the compressed @src (spt_ct_colsum): the bias gradient. */
	int (*colsum)(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		      uint32_t cols);
	/* Fail (-EDOM, at once or from sync()) if one of @n floats of @b is NaN or infinite. */
	int (*check_finite)(struct spt_ctx *ctx, const struct spt_buf *b, size_t n);
	/*
	 * The ReLU mask of a backward pass on @n FP32 values (spt_relu_mask):
	 * dx[j] := +0.0f where y[j] is +-0.0f, else unchanged.
	 */
	int (*relu_mask)(struct spt_ctx *ctx, struct spt_buf *dx, const struct spt_buf *y,
			 size_t n);
	/* Start executing what is queued without waiting (NULL: nothing to do). */
	int (*submit)(struct spt_ctx *ctx);
	/* Wait until every queued operation has completed. */
	int (*sync)(struct spt_ctx *ctx);
	/*
	 * Device busy time, in seconds, of the work completed since the last
	 * call (and resets it); NULL for a backend without a device.
	 */
	double (*device_seconds)(struct spt_ctx *ctx);
};

extern const struct spt_backend_ops spt_cpu_backend;
extern const struct spt_backend_ops spt_device_backend;

struct spt_ctx {
	const struct spt_backend_ops *ops;
	enum spt_backend kind;
	struct spt_energy_model energy;
	void *priv;		/* backend state */
	char device[64];
	char driver[32];
	uint32_t abi_version;
};

/* Layer kinds as added; only Linear and Conv2d carry a GEMM. */
enum rt_layer_kind { RT_LINEAR, RT_CONV };

struct rt_ctl {
	struct spt_sparsity cfg;
	uint32_t phase;
	float tau;		/* threshold used in the current step */
	float target;		/* s* of the current step */
	float final_target;
	float s_start;		/* s_i of the ramp */
	float s_ema, s_nat;
	bool started;
	uint32_t backoffs;
	struct spt_class_stats last;
	double sum_abs;		/* last step: sum |x| and nonzero inputs, for the formula */
	uint64_t nz_in;
};

struct rt_layer {
	enum rt_layer_kind kind;
	uint32_t in_c, in_h, in_w, out_c, out_h, out_w, stride, pad;
	bool relu;
	uint32_t K, N;		/* master weights N x K (out x in); GEMM rows: batch (* out_h * out_w) */
	uint32_t rows_per_sample;	/* 1 (linear) or out_h * out_w (conv) */
	float *w, *b, *vw, *vb, *gb;	/* host views of wb, bb, vwb, vbb, gbb */
	struct spt_buf wb, bb, vwb, vbb, gbb;	/* master weights, momentum, bias gradient */
	float *gw;		/* points into gwt: the weight gradient, N x K */
	struct rt_ctl ctl[SPT_CLASS_COUNT];
	struct spt_layer_stats st;
	/* both as the last completed step left them, while the next one runs */
	struct rt_ctl ctl_done[SPT_CLASS_COUNT];
	struct spt_layer_stats st_done;

	/* per-step buffers, sized for opts.batch */
	struct spt_buf x;	/* FP32 input as consumed: M0 x in features (NHWC) */
	struct spt_buf col;	/* FP32 im2col M x K (conv) */
	struct spt_buf a_ct;	/* forward A operand (M x K) */
	struct spt_buf at_ct;	/* A^T (K x M) for the weight update */
	struct spt_buf wt_ct;	/* W^T (N x K): the master layout, encoded */
	struct spt_buf wg_ct;	/* compressed weight gradient (WGRAD pruning) */
	struct spt_buf w_ct;	/* W (K x N) */
	struct spt_buf y;	/* FP32 output M x N (logits, or decoded activations) */
	struct spt_buf y_ct;	/* output activations (M x N), pruned by the next ACT */
	struct spt_buf dy;	/* FP32 dL/dY M x N */
	struct spt_buf dy_ct;	/* dL/dY (M x N) */
	struct spt_buf dyt_ct;	/* dY^T (N x M) */
	struct spt_buf dcol;	/* FP32 backward output M x K */
	struct spt_buf gwt;	/* FP32 weight gradient N x K */
};

/* A batch uploaded for a step (x, labels in backend memory). */
struct rt_slot {
	struct spt_buf x;	/* FP32 batch x in features */
	struct spt_buf labels;	/* u8 batch */
	uint32_t n;
	int ret;		/* error of a step that could not start */
};

/* Steps the async API lets a model have outstanding: one running, one uploaded. */
#define RT_MAX_PENDING 2

struct step;

struct spt_model {
	struct spt_ctx *ctx;
	uint32_t in_c, in_h, in_w, classes;
	bool finalized;
	struct spt_train_opts opts;
	struct rt_layer *layers;
	int nlayers;
	uint64_t steps;
	/* loss trend for the back-off rule */
	double loss_fast, loss_slow;
	uint32_t rising;
	float *scratch;		/* FP32 scratch, max over layers of M x max(K, N) */
	size_t scratch_elems;
	uint8_t *labels;
	/* steps: input slots, loss (f32) and correct count (u32), the async queue */
	struct rt_slot slot[RT_MAX_PENDING];
	struct spt_buf lossb;
	struct step *running;	/* queued or in flight on the backend */
	uint32_t head, pending;	/* oldest outstanding slot; steps submitted, not waited for */
};

/* step.c: wait for and drop outstanding steps (before freeing the model). */
void rt_step_drain(struct spt_model *m);

/* Calls that read or change the model refuse while async steps are outstanding. */
static inline bool rt_busy(const struct spt_model *m)
{
	return m && m->pending;
}

/* controller.c */
void rt_ctl_init(struct rt_ctl *c);
/* Threshold and prune options for this step; updates phase and target. */
void rt_ctl_begin(struct rt_ctl *c, const struct spt_train_opts *o, uint64_t step,
		  uint32_t layer, uint32_t cls, struct spt_prune *p);
/* Feed the stats of the tensor produced this step. */
void rt_ctl_end(struct rt_ctl *c, const struct spt_train_opts *o,
		const struct spt_tensor_stats *ts);
void rt_ctl_loss(struct spt_model *m, float loss);
float rt_lr(const struct spt_train_opts *o, uint64_t step);
/* Gaussian-fit threshold for pruning fraction @p of values with mean |x| @mean_abs. */
float rt_tau_formula(double p, double mean_abs);

/* util */
void *rt_zalloc(size_t n);
uint64_t rt_rng_next(uint64_t *s);
double rt_rng_normal(uint64_t *s);
double rt_now(void);

#endif
