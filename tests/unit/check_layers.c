// SPDX-License-Identifier: MIT
/*
 * Layers against FP64 references: Linear, Conv2d (stride, padding), ReLU,
 * softmax cross-entropy; gradients by finite differences (FP32 path); the
 * BFP8 path against the same references and against spt_gemm called by hand.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spt/spt.h"

#define MAXW 4096

static uint64_t rng_state;

static double urand(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng_state >> 11) * 0x1.0p-53;
}

static struct spt_ctx *cpu_ctx(void)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };
	struct spt_ctx *ctx;

	ck_assert_int_eq(spt_ctx_open(&o, &ctx), 0);
	return ctx;
}

/* 2 x 6 x 6 input: conv 2->4 s1 p1, relu, conv 4->3 s2 p1, relu, linear 27->5. */
static struct spt_model *conv_model(struct spt_ctx *ctx, enum spt_precision p, uint32_t batch)
{
	struct spt_model *m;
	struct spt_train_opts o;

	spt_train_opts_init(&o, 1000);
	o.precision = p;
	o.batch = batch;
	o.seed = 7;
	ck_assert_int_eq(spt_model_create(ctx, 2, 6, 6, 5, &m), 0);
	ck_assert_int_eq(spt_model_add_conv2d(m, 4, 1, 1), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_conv2d(m, 3, 2, 1), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_flatten(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 5), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	return m;
}

/* 12 -> 16 relu -> 8 relu -> 4 */
static struct spt_model *mlp_model(struct spt_ctx *ctx, enum spt_precision p, uint32_t batch)
{
	struct spt_model *m;
	struct spt_train_opts o;

	spt_train_opts_init(&o, 1000);
	o.precision = p;
	o.batch = batch;
	o.seed = 3;
	ck_assert_int_eq(spt_model_create(ctx, 3, 2, 2, 4, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 16), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 8), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 4), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	return m;
}

/* FP64 forward of any model built from the public layer descriptions. */
static void ref_forward(struct spt_model *m, const float *x, uint32_t n, double *logits)
{
	int nl = spt_model_num_layers(m), l;
	size_t cap = 4096;
	double *a = calloc(n * cap, sizeof(double)), *b = calloc(n * cap, sizeof(double));
	float *w = malloc(MAXW * sizeof(float)), *bias = malloc(256 * sizeof(float));
	struct spt_layer_info li;
	uint32_t s, i, o;

	ck_assert_int_eq(spt_model_layer_info(m, 0, &li), 0);
	for (s = 0; s < n; s++)
		for (i = 0; i < li.in_c * li.in_h * li.in_w; i++)
			a[s * cap + i] = x[s * li.in_c * li.in_h * li.in_w + i];
	for (l = 0; l < nl; l++) {
		ck_assert_int_eq(spt_model_layer_info(m, l, &li), 0);
		ck_assert_uint_le((uint64_t)li.gemm_k * li.gemm_n, MAXW);
		ck_assert_int_eq(spt_model_get_params(m, l, w, bias), 0);
		for (s = 0; s < n; s++) {
			const double *in = a + s * cap;
			double *out = b + s * cap;

			if (!strcmp(li.kind, "linear")) {
				for (o = 0; o < li.gemm_n; o++) {
					double acc = bias[o];

					for (i = 0; i < li.gemm_k; i++)
						acc += (double)w[o * li.gemm_k + i] * in[i];
					out[o] = li.relu && acc < 0 ? 0 : acc;
				}
				continue;
			}
			/* direct convolution, NHWC, weights [oc][ky][kx][ic] */
			for (uint32_t oy = 0; oy < li.out_h; oy++)
				for (uint32_t ox = 0; ox < li.out_w; ox++)
					for (o = 0; o < li.out_c; o++) {
						double acc = bias[o];

						for (int ky = 0; ky < 3; ky++)
							for (int kx = 0; kx < 3; kx++) {
								int iy = (int)(oy * li.stride) + ky - (int)li.padding;
								int ix = (int)(ox * li.stride) + kx - (int)li.padding;

								if (iy < 0 || ix < 0 || iy >= (int)li.in_h ||
								    ix >= (int)li.in_w)
									continue;
								for (uint32_t c = 0; c < li.in_c; c++)
									acc += (double)w[o * li.gemm_k +
											 (ky * 3 + kx) * li.in_c + c] *
									       in[(iy * li.in_w + ix) * li.in_c + c];
							}
						out[(oy * li.out_w + ox) * li.out_c + o] =
							li.relu && acc < 0 ? 0 : acc;
					}
		}
		{
			double *t = a;

			a = b;
			b = t;
		}
	}
	for (s = 0; s < n; s++)
		for (o = 0; o < li.gemm_n; o++)
			logits[s * li.gemm_n + o] = a[s * cap + o];
	free(a);
	free(b);
	free(w);
	free(bias);
}

static void random_input(float *x, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		x[i] = (float)urand();
}

static void check_forward(struct spt_model *m, uint32_t in, uint32_t classes, double tol)
{
	enum { N = 6 };
	float x[N * 72], logits[N * 8];
	double ref[N * 8], scale = 0;
	uint32_t i;

	random_input(x, (size_t)N * in);
	ck_assert_int_eq(spt_model_evaluate(m, x, NULL, N, NULL, NULL, logits), 0);
	ref_forward(m, x, N, ref);
	for (i = 0; i < N * classes; i++)
		scale = fmax(scale, fabs(ref[i]));
	for (i = 0; i < N * classes; i++)
		ck_assert_msg(fabs(logits[i] - ref[i]) <= tol * scale,
			      "logit %u: got %g, FP64 reference %g (tolerance %g)", i, logits[i],
			      ref[i], tol * scale);
}

START_TEST(test_fp32_linear_relu_matches_fp64)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = mlp_model(ctx, SPT_PRECISION_FP32, 8);

	rng_state = 1;
	check_forward(m, 12, 4, 1e-5);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_fp32_conv_stride_padding_matches_fp64)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = conv_model(ctx, SPT_PRECISION_FP32, 8);

	rng_state = 2;
	check_forward(m, 72, 5, 1e-5);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_bfp8_linear_relu_close_to_fp64)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = mlp_model(ctx, SPT_PRECISION_BFP8, 8);

	rng_state = 3;
	check_forward(m, 12, 4, 0.05);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_bfp8_conv_close_to_fp64)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = conv_model(ctx, SPT_PRECISION_BFP8, 8);

	rng_state = 4;
	check_forward(m, 72, 5, 0.05);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

/* The BFP8 forward of a one-layer model is exactly spt_gemm on encoded operands. */
START_TEST(test_bfp8_forward_is_exactly_the_chip_gemm)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m;
	struct spt_train_opts o;
	float x[4 * 40], w[10 * 40], b[10], logits[40], y[40];
	size_t xcap = spt_ct_bound(4, 40), wcap = spt_ct_bound(10, 40), xl, wl;
	void *xc = malloc(xcap), *wc = malloc(wcap);
	struct spt_gemm_epilogue ep = { 0 };
	struct spt_gemm_out out = { 0 };
	int i;

	spt_train_opts_init(&o, 10);
	o.batch = 4;
	ck_assert_int_eq(spt_model_create(ctx, 1, 1, 40, 10, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 10), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	rng_state = 5;
	random_input(x, 160);
	for (i = 0; i < 10; i++)
		b[i] = (float)(urand() - 0.5);
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), 0);
	ck_assert_int_eq(spt_model_set_params(m, 0, NULL, b), 0);
	ck_assert_int_eq(spt_model_evaluate(m, x, NULL, 4, NULL, NULL, logits), 0);
	ck_assert_int_eq(spt_ct_encode(x, 4, 40, NULL, xc, xcap, &xl, NULL), 0);
	ck_assert_int_eq(spt_ct_encode(w, 10, 40, NULL, wc, wcap, &wl, NULL), 0);
	ep.bias = b;
	out.y = y;
	spt_encode_opts_init(&out.enc);
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, xc, xl, wc, wl, &ep, &out, NULL), 0);
	ck_assert_mem_eq(logits, y, sizeof(y));
	free(xc);
	free(wc);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

/* Mean loss of the model on (x, labels) in FP64 from the FP32 logits. */
static double model_loss(struct spt_model *m, const float *x, const uint8_t *lab, uint32_t n)
{
	double ls;

	ck_assert_int_eq(spt_model_evaluate(m, x, lab, n, &ls, NULL, NULL), 0);
	return ls / n;
}

static void check_gradients(struct spt_model *m, uint32_t in, uint32_t classes)
{
	enum { N = 4 };
	float x[N * 72], w[MAXW], b[64], gw[MAXW], gb[64];
	uint8_t lab[N];
	int nl = spt_model_num_layers(m), l, t, checked = 0;

	random_input(x, (size_t)N * in);
	for (t = 0; t < N; t++)
		lab[t] = (uint8_t)(t % classes);
	for (l = 0; l < nl; l++) {
		struct spt_layer_info li;

		ck_assert_int_eq(spt_model_layer_info(m, l, &li), 0);
		ck_assert_int_eq(spt_model_gradients(m, x, lab, N, l, gw, gb), 0);
		ck_assert_int_eq(spt_model_get_params(m, l, w, b), 0);
		for (t = 0; t < 8; t++) {
			uint32_t j = (uint32_t)(urand() * li.gemm_k * li.gemm_n);
			float keep = w[j], h = 1e-2f;
			double lp, lm, fd;

			w[j] = keep + h;
			spt_model_set_params(m, l, w, NULL);
			lp = model_loss(m, x, lab, N);
			w[j] = keep - h;
			spt_model_set_params(m, l, w, NULL);
			lm = model_loss(m, x, lab, N);
			w[j] = keep;
			spt_model_set_params(m, l, w, NULL);
			fd = (lp - lm) / (2.0 * h);
			ck_assert_msg(fabs(fd - gw[j]) <= 2e-3 + 0.05 * fabs(fd),
				      "layer %d weight %u: gradient %g, finite difference %g", l, j,
				      gw[j], fd);
			checked++;
		}
		for (t = 0; t < 2; t++) {
			uint32_t j = (uint32_t)(urand() * li.gemm_n);
			float keep = b[j], h = 1e-2f;
			double lp, lm, fd;

			b[j] = keep + h;
			spt_model_set_params(m, l, NULL, b);
			lp = model_loss(m, x, lab, N);
			b[j] = keep - h;
			spt_model_set_params(m, l, NULL, b);
			lm = model_loss(m, x, lab, N);
			b[j] = keep;
			spt_model_set_params(m, l, NULL, b);
			fd = (lp - lm) / (2.0 * h);
			ck_assert_msg(fabs(fd - gb[j]) <= 2e-3 + 0.05 * fabs(fd),
				      "layer %d bias %u: gradient %g, finite difference %g", l, j,
				      gb[j], fd);
		}
	}
	ck_assert_int_gt(checked, 0);
}

START_TEST(test_fp32_mlp_gradients_match_finite_differences)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = mlp_model(ctx, SPT_PRECISION_FP32, 4);

	rng_state = 11;
	check_gradients(m, 12, 4);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_fp32_conv_gradients_match_finite_differences)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = conv_model(ctx, SPT_PRECISION_FP32, 4);

	rng_state = 12;
	check_gradients(m, 72, 5);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

static double cosine(const float *a, const float *b, size_t n)
{
	double ab = 0, aa = 0, bb = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Same weights: the BFP8 passes give nearly the FP32 gradients. */
static void check_bfp8_grads(struct spt_model *(*mk)(struct spt_ctx *, enum spt_precision,
						      uint32_t), uint32_t in, uint32_t classes)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *f = mk(ctx, SPT_PRECISION_FP32, 8), *q = mk(ctx, SPT_PRECISION_BFP8, 8);
	float x[8 * 72], g1[MAXW], g2[MAXW], b1[64], b2[64];
	uint8_t lab[8];
	int l, i;

	random_input(x, 8 * (size_t)in);
	for (i = 0; i < 8; i++)
		lab[i] = (uint8_t)(i % classes);
	for (l = 0; l < spt_model_num_layers(f); l++) {
		struct spt_layer_info li;

		spt_model_layer_info(f, l, &li);
		ck_assert_int_eq(spt_model_gradients(f, x, lab, 8, l, g1, b1), 0);
		ck_assert_int_eq(spt_model_gradients(q, x, lab, 8, l, g2, b2), 0);
		ck_assert_msg(cosine(g1, g2, (size_t)li.gemm_k * li.gemm_n) > 0.97,
			      "layer %d: cosine(FP32 grad, BFP8 grad) = %g", l,
			      cosine(g1, g2, (size_t)li.gemm_k * li.gemm_n));
		ck_assert_msg(cosine(b1, b2, li.gemm_n) > 0.97, "layer %d bias: cosine %g", l,
			      cosine(b1, b2, li.gemm_n));
	}
	spt_model_free(f);
	spt_model_free(q);
	spt_ctx_close(ctx);
}

START_TEST(test_bfp8_mlp_gradients_close_to_fp32)
{
	rng_state = 21;
	check_bfp8_grads(mlp_model, 12, 4);
}
END_TEST

START_TEST(test_bfp8_conv_gradients_close_to_fp32)
{
	rng_state = 22;
	check_bfp8_grads(conv_model, 72, 5);
}
END_TEST

/*
 * With no WGRAD pruning the weight gradient still leaves the weight-update
 * GEMM as the chip writes it: compressed BFP8.  Every block of 32 along K
 * is then a multiple of 2^(E-6) with |k| <= 127, E the exponent of the
 * block's largest magnitude, and the pass writes fewer bytes than the FP32
 * gradient would take (beyond a few hundred elements).
 */
START_TEST(test_bfp8_weight_gradient_is_written_as_bfp8)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *q = mlp_model(ctx, SPT_PRECISION_BFP8, 8);
	float x[8 * 12], g[MAXW], gb[64];
	uint8_t lab[8];
	int l, i;

	rng_state = 23;
	random_input(x, 8 * 12);
	for (i = 0; i < 8; i++)
		lab[i] = (uint8_t)(i % 4);
	for (l = 0; l < spt_model_num_layers(q); l++) {
		struct spt_layer_info li;
		struct spt_layer_stats st;
		size_t r, k0, k, nonzero = 0;

		ck_assert_int_eq(spt_model_gradients(q, x, lab, 8, l, g, gb), 0);
		ck_assert_int_eq(spt_model_layer_info(q, l, &li), 0);
		ck_assert_int_eq(spt_model_layer_stats(q, l, &st), 0);
		ck_assert_uint_gt(st.pass[SPT_PASS_WG].bytes_written, 0);
		if (li.gemm_n * li.gemm_k >= 128)	/* the header outweighs a tiny tensor */
			ck_assert_uint_lt(st.pass[SPT_PASS_WG].bytes_written,
					  4 * (uint64_t)li.gemm_n * li.gemm_k);
		for (r = 0; r < li.gemm_n; r++)
			for (k0 = 0; k0 < li.gemm_k; k0 += 32) {
				const float *v = g + r * li.gemm_k + k0;
				size_t len = li.gemm_k - k0 < 32 ? li.gemm_k - k0 : 32;
				float top = 0;

				for (k = 0; k < len; k++)
					top = fabsf(v[k]) > top ? fabsf(v[k]) : top;
				if (top == 0)
					continue;
				for (k = 0; k < len; k++) {
					double q8 = ldexp(v[k], 6 - ilogbf(top));

					ck_assert_msg(q8 == nearbyint(q8) && fabs(q8) <= 127,
						      "layer %d: gradient [%zu][%zu] = %g is not BFP8", l,
						      r, k0 + k, v[k]);
					nonzero += v[k] != 0;
				}
			}
		ck_assert_uint_gt(nonzero, 0);
	}
	spt_model_free(q);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_training_reduces_loss_on_a_fixed_batch)
{
	struct spt_ctx *ctx = cpu_ctx();
	enum spt_precision p = _i ? SPT_PRECISION_BFP8 : SPT_PRECISION_FP32;
	struct spt_model *m = conv_model(ctx, p, 8);
	float x[8 * 72];
	uint8_t lab[8];
	struct spt_step_stats st;
	double l0, l1;
	int i;

	rng_state = 31;
	random_input(x, sizeof(x) / sizeof(x[0]));
	for (i = 0; i < 8; i++)
		lab[i] = (uint8_t)(i % 5);
	l0 = model_loss(m, x, lab, 8);
	for (i = 0; i < 60; i++)
		ck_assert_int_eq(spt_model_train_step(m, x, lab, 8, &st), 0);
	l1 = model_loss(m, x, lab, 8);
	ck_assert_msg(l1 < 0.5 * l0, "loss %g -> %g after 60 steps", l0, l1);
	ck_assert_uint_eq(st.step, 60);
	ck_assert_uint_eq(st.samples, 8);
	ck_assert_uint_gt(st.total.dense_macs, 0);
	ck_assert_uint_le(st.total.exec_macs, st.total.dense_macs);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_same_seed_gives_identical_training)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *a = mlp_model(ctx, SPT_PRECISION_BFP8, 8), *b = mlp_model(ctx, SPT_PRECISION_BFP8, 8);
	float x[8 * 12], wa[16 * 12], wb[16 * 12];
	uint8_t lab[8];
	int i;

	rng_state = 41;
	random_input(x, 96);
	for (i = 0; i < 8; i++)
		lab[i] = (uint8_t)(i % 4);
	ck_assert_int_eq(spt_model_set_target_sparsity(a, 0.8f, SPT_PRUNE_STOCHASTIC), 0);
	ck_assert_int_eq(spt_model_set_target_sparsity(b, 0.8f, SPT_PRUNE_STOCHASTIC), 0);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(spt_model_train_step(a, x, lab, 8, NULL), 0);
		ck_assert_int_eq(spt_model_train_step(b, x, lab, 8, NULL), 0);
	}
	spt_model_get_params(a, 0, wa, NULL);
	spt_model_get_params(b, 0, wb, NULL);
	ck_assert_mem_eq(wa, wb, sizeof(wa));
	spt_model_free(a);
	spt_model_free(b);
	spt_ctx_close(ctx);
}
END_TEST

/*
 * The BFP8 step's update reads the weight gradient compressed; it must be
 * exactly momentum SGD on the gradient spt_model_gradients() decodes for
 * the same batch at the same step, weights and biases bit for bit.
 */
START_TEST(test_bfp8_update_is_sgd_on_the_decoded_gradient)
{
	const float mom = 0.9f, wd = 5e-4f;	/* spt_train_opts_init's defaults */
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = _i ? conv_model(ctx, SPT_PRECISION_BFP8, 8) :
				   mlp_model(ctx, SPT_PRECISION_BFP8, 8);
	int nl = spt_model_num_layers(m), l, step;
	uint32_t in = _i ? 72 : 12;
	float x[8 * 72], *w[8], *b[8], *vw[8], *vb[8], g[MAXW], gb[64], got[MAXW], gotb[64];
	struct spt_layer_info li[8];
	struct spt_step_stats st;
	uint8_t lab[8];
	size_t i;

	ck_assert_int_le(nl, 8);
	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.5f, SPT_PRUNE_STOCHASTIC), 0);
	for (l = 0; l < nl; l++) {
		ck_assert_int_eq(spt_model_layer_info(m, l, &li[l]), 0);
		ck_assert_uint_le((uint64_t)li[l].gemm_n * li[l].gemm_k, MAXW);
		w[l] = malloc(MAXW * sizeof(float));
		vw[l] = calloc(MAXW, sizeof(float));
		b[l] = malloc(64 * sizeof(float));
		vb[l] = calloc(64, sizeof(float));
		ck_assert(w[l] && vw[l] && b[l] && vb[l]);
		ck_assert_int_eq(spt_model_get_params(m, l, w[l], b[l]), 0);
	}
	rng_state = 57;
	for (step = 0; step < 4; step++) {
		random_input(x, (size_t)8 * in);
		for (i = 0; i < 8; i++)
			lab[i] = (uint8_t)((i + (size_t)step) % (_i ? 5 : 4));
		/* the expected update, from the decoded gradients of this batch */
		for (l = 0; l < nl; l++) {
			size_t kn = (size_t)li[l].gemm_n * li[l].gemm_k;

			ck_assert_int_eq(spt_model_gradients(m, x, lab, 8, l, g, gb), 0);
			for (i = 0; i < kn; i++)	/* w -= lr * v once the step gave lr */
				vw[l][i] = mom * vw[l][i] + (g[i] + wd * w[l][i]);
			for (i = 0; i < li[l].gemm_n; i++)	/* no weight decay on biases */
				vb[l][i] = mom * vb[l][i] + (gb[i] + 0.0f * b[l][i]);
		}
		ck_assert_int_eq(spt_model_train_step(m, x, lab, 8, &st), 0);
		for (l = 0; l < nl; l++) {
			size_t kn = (size_t)li[l].gemm_n * li[l].gemm_k;

			for (i = 0; i < kn; i++)
				w[l][i] = w[l][i] - st.lr * vw[l][i];
			for (i = 0; i < li[l].gemm_n; i++)
				b[l][i] = b[l][i] - st.lr * vb[l][i];
			ck_assert_int_eq(spt_model_get_params(m, l, got, gotb), 0);
			for (i = 0; i < kn; i++)
				ck_assert_msg(!memcmp(&got[i], &w[l][i], sizeof(float)),
					      "step %d layer %d w[%zu]: expected %a, got %a", step, l,
					      i, (double)w[l][i], (double)got[i]);
			ck_assert_mem_eq(gotb, b[l], li[l].gemm_n * sizeof(float));
		}
	}
	for (l = 0; l < nl; l++) {
		free(w[l]);
		free(vw[l]);
		free(b[l]);
		free(vb[l]);
	}
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

static Suite *layers_suite(void)
{
	Suite *s = suite_create("layers");
	TCase *fwd = tcase_create("forward"), *grad = tcase_create("gradients");

	tcase_add_test(fwd, test_fp32_linear_relu_matches_fp64);
	tcase_add_test(fwd, test_fp32_conv_stride_padding_matches_fp64);
	tcase_add_test(fwd, test_bfp8_linear_relu_close_to_fp64);
	tcase_add_test(fwd, test_bfp8_conv_close_to_fp64);
	tcase_add_test(fwd, test_bfp8_forward_is_exactly_the_chip_gemm);
	suite_add_tcase(s, fwd);
	tcase_add_test(grad, test_fp32_mlp_gradients_match_finite_differences);
	tcase_add_test(grad, test_fp32_conv_gradients_match_finite_differences);
	tcase_add_test(grad, test_bfp8_mlp_gradients_close_to_fp32);
	tcase_add_test(grad, test_bfp8_conv_gradients_close_to_fp32);
	tcase_add_test(grad, test_bfp8_weight_gradient_is_written_as_bfp8);
	tcase_add_loop_test(grad, test_training_reduces_loss_on_a_fixed_batch, 0, 2);
	tcase_add_test(grad, test_same_seed_gives_identical_training);
	tcase_add_loop_test(grad, test_bfp8_update_is_sgd_on_the_decoded_gradient, 0, 2);
	tcase_set_timeout(grad, 60);
	suite_add_tcase(s, grad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(layers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
