/* SPDX-License-Identifier: MIT */
/*
 * libsptcore: the golden model of the SPT chip's arithmetic.
 *
 * BFP8 (OCP MXINT8), the hierarchical bit-mask compressed tensor format
 * (uapi/spt_format.h, docs/formats.md), threshold pruning, sparse GEMMs for
 * the three training passes with fused epilogues, per-operation counters and
 * an analytic cycle and energy model.  The QEMU device model and the
 * runtime's CPU backend both link this library: its results define the chip.
 *
 * Conventions:
 *  - every function validates its arguments and returns 0 or a negative
 *    errno value (-EINVAL bad argument, -EDOM NaN/Inf input, -ENOSPC output
 *    buffer too small, -EBADMSG malformed compressed data, -E2BIG size beyond
 *    the format's limits, -ENOMEM);
 *  - matrices are row-major; BFP8 blocks run along the last axis (columns),
 *    which is always the reduction axis of the GEMM that consumes them;
 *  - results are bit-identical across the scalar, AVX2 and AVX-512 paths and
 *    independent of thread count: accumulation order is fixed (docs/formats.md).
 *  - the library keeps no state except the selected SIMD path.
 */
#ifndef SPT_CORE_H
#define SPT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spt_format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors and SIMD dispatch ------------------------------------------ */

/* A static message for a (negative) error code returned by this library. */
const char *spt_core_strerror(int err);

enum spt_isa {
	SPT_ISA_AUTO = 0,	/* best the CPU supports */
	SPT_ISA_SCALAR = 1,
	SPT_ISA_AVX2 = 2,
	SPT_ISA_AVX512 = 3,	/* AVX-512 F/BW/VL, VNNI where present */
};

/* 1 if this build and this CPU can run @isa, else 0. */
int spt_core_isa_supported(enum spt_isa isa);
/* Select the path used by later calls (process-wide); -ENOTSUP if unsupported. */
int spt_core_set_isa(enum spt_isa isa);
/* The path in use (never SPT_ISA_AUTO). */
enum spt_isa spt_core_get_isa(void);
const char *spt_core_isa_name(enum spt_isa isa);

/* ---- BFP8 (MXINT8) ------------------------------------------------------ */

enum spt_round {
	SPT_ROUND_EVEN = 0,		/* round to nearest, ties to even */
	SPT_ROUND_STOCHASTIC = 1,	/* unbiased, deterministic in the seed */
};

/*
 * Quantise one block of @n (1..32) values: E = floor(log2(max|x|)) clamped to
 * [-127, 127] (all-zero block: E = -127), k = clamp(round(x * 2^(6-E)),
 * -127, 127).  @index is the global element index of x[0]; with stochastic
 * rounding the random draw for element i depends only on (seed, index + i).
 * Elements n..31 of @k are set to 0.  -EDOM if any x is NaN or infinite.
 */
int spt_bfp8_quantize_block(const float *x, unsigned int n, enum spt_round round,
			    uint64_t seed, uint64_t index, int8_t k[32], int *exp);

/* Value of element @k of a block with exponent @exp: k * 2^(exp-6). */
float spt_bfp8_value(int8_t k, int exp);

/*
 * Quantise a rows x cols matrix block-wise along its columns and write the
 * dequantised values to @out (which may equal @in).
 */
int spt_bfp8_quantize(const float *in, float *out, size_t rows, size_t cols,
		      enum spt_round round, uint64_t seed);

/* ---- threshold pruning -------------------------------------------------- */

enum spt_prune_mode {
	SPT_PRUNE_OFF = 0,
	SPT_PRUNE_DETERMINISTIC = 1,	/* |x| < tau -> 0 */
	SPT_PRUNE_STOCHASTIC = 2,	/* |x| < tau -> sign(x)*tau w.p. |x|/tau, else 0 */
};

struct spt_prune {
	enum spt_prune_mode mode;
	float tau;		/* >= 0 and finite */
	uint64_t seed;		/* stochastic draws depend on (seed, element index) */
};

/* ---- compressed tensors ------------------------------------------------- */

struct spt_encode_opts {
	enum spt_round round;
	uint64_t round_seed;
	struct spt_prune prune;
};

/* Default options: nearest-even, no pruning. */
void spt_encode_opts_init(struct spt_encode_opts *o);

struct spt_tensor_stats {
	uint64_t elements;	/* rows * cols */
	uint64_t natural_zeros;	/* inputs exactly zero */
	uint64_t pruned;	/* nonzero inputs zeroed by the threshold */
	uint64_t underflow;	/* survivors that quantised to zero */
	uint64_t nonzeros;	/* elements stored (set L2 bits) */
	uint64_t nz_blocks;	/* blocks stored (set L1 bits) */
	double sum_abs;		/* sum |x| over all inputs */
	double sum_abs_kept;	/* sum |x| over survivors, after pruning */
	uint64_t bytes;		/* encoded size */
};

/* Upper bound of the encoded size of a rows x cols tensor; 0 if too large. */
size_t spt_ct_bound(uint32_t rows, uint32_t cols);

/*
 * Prune (o->prune), quantise and encode a rows x cols FP32 matrix into @out
 * (@cap bytes).  @o may be NULL for defaults, @stats may be NULL.  The sums
 * in @stats are deterministic: each block's 32 values are summed in float in
 * a fixed tree order (docs/formats.md), block sums are added in double in
 * row-major block order.
 */
int spt_ct_encode(const float *in, uint32_t rows, uint32_t cols,
		  const struct spt_encode_opts *o, void *out, size_t cap,
		  size_t *out_len, struct spt_tensor_stats *stats);

struct spt_ct_info {
	uint32_t rows, cols, blocks_per_row, tiles;
	uint64_t nz_blocks, nonzeros, total_bytes;
};

/*
 * Fully validate @len bytes of untrusted data as a compressed tensor (every
 * header field, offset, mask and value) without reading outside them.
 * On success fill @info (may be NULL).  -EBADMSG on any inconsistency.
 */
int spt_ct_validate(const void *buf, size_t len, struct spt_ct_info *info);

/*
 * Trusted operands, for a caller whose compressed tensors are all written by
 * this library's encoders and GEMMs and never modified afterwards (the
 * runtime's CPU backend, whose tensors no application can reach).  While
 * it is on, on the calling thread only, the readers (spt_ct_decode,
 * spt_ct_transpose, spt_ct_colsum, spt_gemm, spt_sgd_momentum_ct) check an
 * operand's header, length and tile offset table, but not its tile records
 * (the O(size) part of spt_ct_validate()).  spt_ct_validate() itself always
 * checks everything.  Off by default; returns the previous setting, for
 * restoring it.  Never turn it on for data from a file, a device or a guest.
 */
bool spt_ct_set_trusted(bool on);

/* Validate and decode into @out, which holds exactly @elems = rows*cols floats. */
int spt_ct_decode(const void *buf, size_t len, float *out, size_t elems);

/*
 * Re-block for the transposed operand: decode a rows x cols tensor and
 * encode its cols x rows transpose (blocks now along the old rows) with @o.
 */
int spt_ct_transpose(const void *in, size_t in_len,
		     const struct spt_encode_opts *o, void *out, size_t cap,
		     size_t *out_len, struct spt_tensor_stats *stats);

/*
 * spt_ct_encode() of @in into @out, then its re-blocked transpose with raw
 * options into @t (@t_cap bytes, *@t_len its length): exactly
 *	spt_ct_encode(in, rows, cols, o, out, cap, out_len, stats);
 *	spt_ct_transpose(out, *out_len, NULL, t, t_cap, t_len, NULL);
 * with their errors, in that order.  A tensor of one block per row (cols
 * <= 32) of many rows puts each row's values into the transpose as it
 * encodes it, instead of reading the records back.  -EINVAL also if @t or
 * @t_len is NULL or @t is @out.
 */
int spt_ct_encode_t(const float *in, uint32_t rows, uint32_t cols,
		    const struct spt_encode_opts *o, void *out, size_t cap, size_t *out_len,
		    struct spt_tensor_stats *stats, void *t, size_t t_cap, size_t *t_len);

/*
 * Column sums of a compressed tensor: validate @len bytes at @buf as the
 * readers do (spt_ct_set_trusted()), then sum[j] = sum over rows r in
 * increasing order, starting from +0.0f, of the decoded element (r, j) (FP32
 * adds).  @cols must equal the tensor's cols (-EINVAL otherwise).  Bit-identical
 * to decoding the tensor and running for r: for c: sum[c] += x[r * cols + c]
 * from 0.0f (elements not stored decode to +0.0f, and adding +0.0f to a sum
 * that starts at +0.0f changes nothing), which is the bias gradient of a
 * training step.
 */
int spt_ct_colsum(const void *buf, size_t len, float *sum, size_t cols);

/* ---- convolution lowering (NHWC, FP32) ---------------------------------- */

/*
 * A k x k convolution window over a batch of n images of h x w pixels with c
 * channels, stored NHWC; stride and zero padding pad on every side.
 * Output oh = (h + 2*pad - k) / stride + 1, likewise ow.  The patch matrix
 * has rows = n*oh*ow rows of cols = k*k*c columns ordered (ky, kx, channel).
 * Valid shapes: n, h, w, c >= 1, 1 <= k <= SPT_CONV_K_MAX,
 * 1 <= stride <= SPT_CONV_STRIDE_MAX, pad < k, h + 2*pad >= k and
 * w + 2*pad >= k (so oh, ow >= 1).
 */
#define SPT_CONV_K_MAX		16u
#define SPT_CONV_STRIDE_MAX	16u

struct spt_conv_shape {
	uint32_t n, h, w, c;
	uint32_t k, stride, pad;
};

struct spt_conv_dims {
	uint32_t oh, ow;
	uint64_t rows;		/* n * oh * ow */
	uint64_t cols;		/* k * k * c */
	uint64_t img_elems;	/* n * h * w * c */
	uint64_t col_elems;	/* rows * cols */
};

/*
 * Check @s and compute its sizes into @d (may be NULL).  -EINVAL for an
 * invalid shape, -E2BIG if an element count, or its size in bytes, does not
 * fit in 64 bits or in size_t.
 */
int spt_conv_shape_check(const struct spt_conv_shape *s, struct spt_conv_dims *d);

/*
 * im2col: write the patch matrix of the image @img (@img_elems floats) to
 * @col (@col_elems floats); padding reads as +0.0f.  Both counts must equal
 * the shape's (-EINVAL).  The buffers must not overlap (-EINVAL).
 */
int spt_im2col(const struct spt_conv_shape *s, const float *img, size_t img_elems,
	       float *col, size_t col_elems);

/*
 * im2col in the compressed domain: @img (@img_len bytes) is a compressed
 * image of n * h * w rows (pixels) of c columns (channels); @out (@cap
 * bytes) gets the compressed patch matrix, *@out_len its length: exactly
 * the bytes spt_ct_encode() with default options (no pruning, nearest
 * even) gives on spt_im2col() of spt_ct_decode(@img), without either FP32
 * tensor.  For c a multiple of 32 a patch block is one pixel's block; for
 * c = 16 it joins two pixels' halves, the one with the smaller exponent
 * rounded to the larger's (nearest even, as the encoder rounds).
 * -EOPNOTSUPP for any other c; -EINVAL for a bad shape, a NULL pointer or
 * an image whose dimensions are not the shape's; the image's own errors
 * (as spt_ct_validate(), or as in trusted mode, see spt_ct_set_trusted());
 * -ENOSPC and -E2BIG where spt_ct_encode() gives them; -ENOMEM.
 */
int spt_im2col_ct(const struct spt_conv_shape *s, const void *img, size_t img_len,
		  void *out, size_t cap, size_t *out_len);

/*
 * col2im, the adjoint: set @img to +0.0f, then add every element of @col
 * that does not fall into the padding to its pixel, patches in row order and
 * within a patch in (ky, kx, channel) order (FP32 adds; the result depends
 * on nothing but the inputs).  Counts as for spt_im2col; -EINVAL if @img
 * and @col overlap.
 */
int spt_col2im(const struct spt_conv_shape *s, const float *col, size_t col_elems,
	       float *img, size_t img_elems);

/*
 * col2im fused with the ReLU mask of the image: the same sums as
 * spt_col2im, then for each j < @img_elems img[j] becomes +0.0f if y[j] is
 * +0.0f or -0.0f and keeps its bits otherwise (spt_relu_mask's rule), so
 *	spt_col2im(s, col, cn, img, n); spt_relu_mask(img, y, n);
 * in one pass.  @y (the ReLU's output, @img_elems floats) may be NULL: no
 * mask, exactly spt_col2im.  -EINVAL as for spt_col2im, or if @img
 * overlaps @col or @y.
 */
int spt_col2im_relu(const struct spt_conv_shape *s, const float *col, size_t col_elems,
		    const float *y, float *img, size_t img_elems);

/* 0 if all @n floats at @x are finite, -EDOM if one is NaN or infinite. */
int spt_check_finite(const float *x, size_t n);

/*
 * The ReLU mask of a backward pass, on the FP32 bits: for each j < @n,
 * dx[j] becomes +0.0f (all bits zero) if y[j] is +0.0f or -0.0f, and keeps
 * its bits otherwise, NaN payloads included; on the u32 bits
 *	dx[j] &= (y[j] << 1) ? 0xffffffff : 0.
 * @y is the ReLU's output.  @dx and @y may be the same array; -EINVAL if
 * either is NULL (with @n >= 1) or if they overlap otherwise.  @n == 0 does
 * nothing.
 */
int spt_relu_mask(float *dx, const float *y, size_t n);

/*
 * The dense FP32 step's element-wise helpers (the baseline the chip's
 * arithmetic is compared with).  Each validates its arguments: -EINVAL for
 * NULL pointers or zero @cols, -E2BIG if rows * cols floats do not fit in
 * size_t.  Results do not depend on the ISA path taken.
 *
 * Statistics (@st) count elements, natural_zeros (== 0.0f, either sign) and
 * nonzeros (the rest, NaN included); sum_abs is the sum of |x| in double,
 * over eight partial sums (element e of the flat array into sum e % 8, in
 * increasing e), combined as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
 * every other field is zero.
 */

/*
 * In place on a rows x @cols row-major matrix: y += bias[column] (@bias may
 * be NULL), then with @relu (0 or 1) y = y > 0 ? y : +0.0f (NaN and -0.0f
 * become +0.0f).  @st (may be NULL) receives the result's statistics.
 */
int spt_f32_bias_act(float *y, size_t rows, uint32_t cols, const float *bias, int relu,
		     struct spt_tensor_stats *st);

/* Statistics of @n floats at @x (see above). */
int spt_f32_stats(const float *x, size_t n, struct spt_tensor_stats *st);

/*
 * Column sums of a rows x @cols row-major matrix: out[c] = +0.0f plus
 * x[r][c] for r = 0, 1, ... in order (FP32 adds).  @out must not overlap @x.
 */
int spt_f32_colsum(const float *x, size_t rows, uint32_t cols, float *out);

/* ---- counters and the analytic cycle/energy model (modeled) ------------ */

struct spt_counters {
	uint64_t dense_macs;		/* M*N*K of the operation */
	uint64_t exec_macs;		/* MACs with both operands nonzero */
	uint64_t bytes_read;		/* compressed operand bytes read */
	uint64_t bytes_written;		/* output bytes written */
	uint64_t dense_fp16_bytes;	/* what dense FP16 operands and output would move */
	uint64_t blocks;		/* block pairs processed (exponent adds) */
	uint64_t elements_out;		/* outputs produced */
	/* filled by spt_model_apply(); all modeled, not measured */
	uint64_t cycles;
	double energy_pj;
	double eff_tops_per_w;		/* 2 * dense_macs / energy */
	double exec_tops_per_w;		/* 2 * exec_macs / energy */
};

/* Add @b into @a (cycles and energy too; TOPS/W recomputed). */
void spt_counters_add(struct spt_counters *a, const struct spt_counters *b);

/* Every constant of the model; defaults in research/algorithms.md. */
struct spt_energy_model {
	double mac_pj;			/* one executed BFP8 MAC (8b mult + 32b add) */
	double skip_check_pj;		/* mask test per dense MAC position */
	double exp_add_pj;		/* per block pair: exponent add and FP32 accumulate */
	double sram_pj_per_byte;
	double dram_pj_per_byte;
	double static_mw;		/* leakage and clock, per second of modeled time */
	double clock_mhz;
	double macs_per_cycle;		/* MAC array size */
	double utilisation;		/* 0 < u <= 1 */
	double dram_gbytes_per_s;
};

void spt_energy_model_init(struct spt_energy_model *m);
/* -EINVAL unless every field is finite, positive (static_mw, skip_check_pj >= 0). */
int spt_energy_model_check(const struct spt_energy_model *m);
/* Fill c->cycles, energy_pj and the TOPS/W figures from the other counters. */
int spt_model_apply(const struct spt_energy_model *m, struct spt_counters *c);

/* ---- sparse GEMMs ------------------------------------------------------- */

/*
 * One kernel serves the three training passes: C[M x N] = A[M x K] * B[N x K]^T
 * where A and B are compressed tensors blocked along their K columns.
 *
 *   forward        Y  = X  * W   : A = X  (M x K),      B = W^T (N x K)
 *   backward       dX = dY * W^T : A = dY (M x N),      B = W   (K x N)
 *   weight update  dW = X^T * dY : A = X^T (K x M),     B = dY^T (N x M)
 *
 * (the transposed operands come from spt_ct_transpose).  Inside a block the
 * products are summed exactly in int32; across blocks each block's sum is
 * scaled, t = ((float)isum * 2^(Ea-6)) * 2^(Eb-6), and added to an FP32
 * accumulator starting at 0 in increasing block order.  Blocks where either
 * operand is zero are skipped (adding them would add +0.0).
 */
enum spt_pass { SPT_PASS_FWD = 0, SPT_PASS_BWD = 1, SPT_PASS_WG = 2 };

enum spt_act {
	SPT_ACT_NONE = 0,
	SPT_ACT_RELU = 1,	/* y = max(y, 0) */
	SPT_ACT_RELU_GRAD = 2,	/* y = 0 where the mask tensor is zero */
};

/* Fused epilogue, applied per output in this order: bias, act, prune, encode. */
struct spt_gemm_epilogue {
	const float *bias;		/* N floats added per row, or NULL */
	enum spt_act act;
	const void *mask;		/* RELU_GRAD: compressed M x N tensor */
	size_t mask_len;
	float scale;			/* multiply before bias (0 means 1) */
};

struct spt_gemm_out {
	float *y;			/* M x N FP32 result, or NULL: after scale, bias,
					 * act and pruning, before quantisation (the
					 * compressed result decodes to y quantised) */
	void *ct;			/* compressed result, or NULL */
	size_t ct_cap;
	size_t ct_len;			/* out */
	struct spt_encode_opts enc;	/* pruning and rounding of the compressed result */
	struct spt_tensor_stats stats;	/* out: statistics of the compressed result */
};

/*
 * Run one pass.  @ep may be NULL (no epilogue).  At least one of out->y and
 * out->ct must be set.  @cnt (may be NULL) receives the operation's counters
 * (cycles and energy left zero: see spt_model_apply).
 */
int spt_gemm(enum spt_pass pass, const void *a, size_t a_len,
	     const void *b, size_t b_len, const struct spt_gemm_epilogue *ep,
	     struct spt_gemm_out *out, struct spt_counters *cnt);

/*
 * spt_gemm() with B given as FP32: exactly
 *
 *	spt_ct_encode(w, n, k, wo, b, spt_ct_bound(n, k), &b_len, wst);
 *	spt_gemm(pass, a, a_len, b, b_len, ep, out, cnt);
 *
 * (the n x k matrix @w quantised with @wo, NULL for defaults, then the
 * product): the same results, counters, statistics and errors, in that
 * order, and nothing written when either call would fail before writing.
 * On AVX2 or AVX-512, with nearest rounding and no stochastic pruning, B is
 * quantised tile by tile straight into the kernel's layout, without the
 * encoding (a weight copy read by nothing else).
 */
int spt_gemm_wq(enum spt_pass pass, const void *a, size_t a_len, const float *w, uint32_t n,
		uint32_t k, const struct spt_encode_opts *wo, struct spt_tensor_stats *wst,
		const struct spt_gemm_epilogue *ep, struct spt_gemm_out *out,
		struct spt_counters *cnt);

/* ---- training step helpers (run on the chip too) ----------------------- */

/*
 * Softmax cross-entropy over @rows rows of @classes logits with integer
 * labels.  Writes the mean loss to @loss, the number of rows whose argmax
 * equals the label to @correct (may be NULL), and, if @dlogits is not NULL,
 * the gradient of the mean loss (softmax - onehot) / rows.
 */
int spt_softmax_xent(const float *logits, const uint8_t *labels, uint32_t rows,
		     uint32_t classes, float *loss, uint32_t *correct,
		     float *dlogits);

/*
 * SGD with momentum and weight decay on FP32 master weights, per element:
 * g' = g + wd*w; v = momentum*v + g'; w = w - lr*v.  The three arrays must
 * not overlap.  -EDOM (nothing changed) if any element is NaN or infinite.
 */
int spt_sgd_momentum(float *w, float *v, const float *g, size_t n, float lr,
		     float momentum, float weight_decay);

/*
 * spt_sgd_momentum() with the gradient given compressed (@g_ct, @g_len bytes,
 * validated as the readers do, see spt_ct_set_trusted()): the same update, bit
 * for bit, as spt_ct_decode() into an FP32 buffer followed by
 * spt_sgd_momentum(), each block decoded where it is used; absent blocks and
 * elements are g = +0.0f, so weight decay and momentum still apply there.  @n
 * must be the tensor's element count (rows * cols, in its row-major order),
 * else -EINVAL; a malformed tensor gives its validation error (-EBADMSG).  Only
 * w and v are checked for NaN and infinity (-EDOM, nothing changed): every
 * value the format holds is finite (|k| <= 127 and E <= 127: |g| <= 127 *
 * 2^121, below FLT_MAX).  -EINVAL for NULL pointers or a non-finite @lr,
 * @momentum or @weight_decay.  w and v must not overlap each other or @g_ct.
 */
int spt_sgd_momentum_ct(float *w, float *v, const void *g_ct, size_t g_len, size_t n,
			float lr, float momentum, float weight_decay);

/* Inverse normal CDF (for the pruning threshold formula); p in (0, 1). */
double spt_norm_ppf(double p);

#ifdef __cplusplus
}
#endif

#endif /* SPT_CORE_H */
