// SPDX-License-Identifier: MIT
/*
 * spt_gemm: the three training passes against an FP64 reference on the
 * decoded BFP8 operands and against the original FP32 data, the fused
 * epilogue, exact counters, edge shapes and argument errors.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------ */

/* zero with probability s, else +-[0.1, 1.1) * scale */
static float *rand_mat(size_t rows, size_t cols, double s, float scale)
{
	float *x = malloc(rows * cols * sizeof(float));
	size_t i;

	ck_assert_ptr_nonnull(x);
	for (i = 0; i < rows * cols; i++) {
		float v = (float)(0.1 + unit()) * scale;

		x[i] = unit() < s ? 0.0f : unit() < 0.5 ? -v : v;
	}
	return x;
}

struct ct {
	void *buf;
	size_t len;
	uint32_t rows, cols;
};

static struct ct enc(const float *x, uint32_t rows, uint32_t cols)
{
	struct ct c = { NULL, 0, rows, cols };
	size_t cap = spt_ct_bound(rows, cols);
	int err;

	c.buf = malloc(cap);
	ck_assert_ptr_nonnull(c.buf);
	err = spt_ct_encode(x, rows, cols, NULL, c.buf, cap, &c.len, NULL);
	ck_assert_msg(err == 0, "encode %ux%u: %s", rows, cols, spt_core_strerror(err));
	return c;
}

static struct ct transposed(const struct ct *in)
{
	struct ct c = { NULL, 0, in->cols, in->rows };
	size_t cap = spt_ct_bound(in->cols, in->rows);
	int err;

	c.buf = malloc(cap);
	ck_assert_ptr_nonnull(c.buf);
	err = spt_ct_transpose(in->buf, in->len, NULL, c.buf, cap, &c.len, NULL);
	ck_assert_msg(err == 0, "transpose: %s", spt_core_strerror(err));
	return c;
}

static float *dec(const struct ct *c)
{
	float *x = malloc((size_t)c->rows * c->cols * sizeof(float));
	int err;

	ck_assert_ptr_nonnull(x);
	err = spt_ct_decode(c->buf, c->len, x, (size_t)c->rows * c->cols);
	ck_assert_msg(err == 0, "decode: %s", spt_core_strerror(err));
	return x;
}

static int run(const struct ct *a, const struct ct *b, const struct spt_gemm_epilogue *ep,
	       float *y, struct spt_counters *cnt)
{
	struct spt_gemm_out out;

	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.y = y;
	return spt_gemm(SPT_PASS_FWD, a->buf, a->len, b->buf, b->len, ep, &out, cnt);
}

/*
 * y[M x N] against sum_k a(i,k) b(j,k) over the decoded operands in FP64:
 * FP32 accumulation across nb block terms errs by at most nb * eps/2 *
 * sum |a||b| (each term itself is exact unless it underflows).
 */
static void check_vs_decoded(const float *y, const float *ad, const float *bd,
			     size_t m, size_t n, size_t k)
{
	size_t i, j, e, nb = (k + 31) / 32;

	for (i = 0; i < m; i++)
		for (j = 0; j < n; j++) {
			double ref = 0, mag = 0, tol;

			for (e = 0; e < k; e++) {
				ref += (double)ad[i * k + e] * bd[j * k + e];
				mag += fabs((double)ad[i * k + e] * bd[j * k + e]);
			}
			tol = (double)nb * FLT_EPSILON * mag + 1e-35;
			ck_assert_msg(fabs(y[i * n + j] - ref) <= tol,
				      "y[%zu][%zu] = %.9g, FP64 reference on decoded operands %.9g (tol %.3g)",
				      i, j, (double)y[i * n + j], ref, tol);
		}
}

/*
 * y against the original FP32 operands: within the actual quantisation
 * error sum |a-a^||b| + |a^||b-b^| plus the accumulation error.  This ties
 * each pass to the right original matrices (a wrong transpose fails).
 */
static void check_vs_original(const float *y, const float *ao, const float *ad,
			      const float *bo, const float *bd, size_t m, size_t n, size_t k)
{
	size_t i, j, e, nb = (k + 31) / 32;

	for (i = 0; i < m; i++)
		for (j = 0; j < n; j++) {
			double ref = 0, qerr = 0, mag = 0, tol;

			for (e = 0; e < k; e++) {
				double a = ao[i * k + e], b = bo[j * k + e];
				double ah = ad[i * k + e], bh = bd[j * k + e];

				ref += a * b;
				qerr += fabs(a - ah) * fabs(b) + fabs(ah) * fabs(b - bh);
				mag += fabs(a * b);
			}
			tol = qerr + (double)nb * FLT_EPSILON * 2 * mag + 1e-35;
			ck_assert_msg(fabs(y[i * n + j] - ref) <= tol,
				      "y[%zu][%zu] = %.9g, FP32-data product %.9g (tol %.3g)",
				      i, j, (double)y[i * n + j], ref, tol);
		}
}

/* out[c][r] = in[r][c] */
static float *transpose_f(const float *in, size_t rows, size_t cols)
{
	float *o = malloc(rows * cols * sizeof(float));
	size_t r, c;

	ck_assert_ptr_nonnull(o);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			o[c * rows + r] = in[r * cols + c];
	return o;
}

static void gemm_case(const struct ct *a, const struct ct *b, const float *ao,
		      const float *bo)
{
	float *ad = dec(a), *bd = dec(b);
	float *y = malloc((size_t)a->rows * b->rows * sizeof(float));
	int err;

	ck_assert_ptr_nonnull(y);
	err = run(a, b, NULL, y, NULL);
	ck_assert_msg(err == 0, "spt_gemm: %s", spt_core_strerror(err));
	check_vs_decoded(y, ad, bd, a->rows, b->rows, a->cols);
	if (ao && bo)
		check_vs_original(y, ao, ad, bo, bd, a->rows, b->rows, a->cols);
	free(ad);
	free(bd);
	free(y);
}

static void ct_free(struct ct *c)
{
	free(c->buf);
	c->buf = NULL;
}

/* ---- the three passes --------------------------------------------------- */

/* X: M x K, W: K x N, dY: M x N. */
static void three_passes(uint32_t M, uint32_t K, uint32_t N, double sx, double sdy)
{
	float *x = rand_mat(M, K, sx, 1.0f), *w = rand_mat(K, N, 0.0, 0.5f);
	float *dy = rand_mat(M, N, sdy, 0.01f);
	float *xt = transpose_f(x, M, K), *wt = transpose_f(w, K, N), *dyt = transpose_f(dy, M, N);
	struct ct cx = enc(x, M, K), cw = enc(w, K, N), cdy = enc(dy, M, N);
	struct ct cxt = transposed(&cx), cwt = transposed(&cw), cdyt = transposed(&cdy);

	/* forward Y = X W: A = X (M x K), B = W^T (N x K) */
	gemm_case(&cx, &cwt, x, wt);
	/* backward dX = dY W^T: A = dY (M x N), B = W (K x N) */
	gemm_case(&cdy, &cw, dy, w);
	/* weight update dW = X^T dY: A = X^T (K x M), B = dY^T (N x M) */
	gemm_case(&cxt, &cdyt, xt, dyt);

	ct_free(&cx);
	ct_free(&cw);
	ct_free(&cdy);
	ct_free(&cxt);
	ct_free(&cwt);
	ct_free(&cdyt);
	free(x);
	free(w);
	free(dy);
	free(xt);
	free(wt);
	free(dyt);
}

START_TEST(test_three_passes_dense)
{
	three_passes(24, 96, 40, 0.0, 0.0);
}
END_TEST

START_TEST(test_three_passes_sparse)
{
	three_passes(33, 128, 72, 0.9, 0.9);
}
END_TEST

START_TEST(test_three_passes_ragged_k33_k70)
{
	three_passes(7, 33, 70, 0.5, 0.3);
	three_passes(70, 70, 33, 0.2, 0.95);
}
END_TEST

START_TEST(test_wide_exponent_range_matches_reference)
{
	/* blocks scaled from 2^-120 to 2^60: terms far apart in magnitude */
	const uint32_t M = 9, K = 160, N = 11;
	float *a = rand_mat(M, K, 0.3, 1.0f), *b = rand_mat(N, K, 0.3, 1.0f);
	struct ct ca, cb;
	size_t i;

	for (i = 0; i < (size_t)M * K; i++)
		a[i] = ldexpf(a[i], (int)((i / 32) % 5) * 30 - 120 + 60);
	for (i = 0; i < (size_t)N * K; i++)
		b[i] = ldexpf(b[i], (int)((i / 32) % 3) * 20 - 20);
	ca = enc(a, M, K);
	cb = enc(b, N, K);
	gemm_case(&ca, &cb, NULL, NULL);
	ct_free(&ca);
	ct_free(&cb);
	free(a);
	free(b);
}
END_TEST

/* ---- edge shapes -------------------------------------------------------- */

START_TEST(test_all_zero_operand_gives_zero_and_no_work)
{
	const uint32_t M = 5, K = 64, N = 6;
	float *a = calloc((size_t)M * K, sizeof(float)), *b = rand_mat(N, K, 0.0, 1.0f);
	float y[5 * 6];
	struct ct ca = enc(a, M, K), cb = enc(b, N, K);
	struct spt_counters c;
	size_t i;

	memset(y, 0xff, sizeof(y));
	ck_assert_int_eq(run(&ca, &cb, NULL, y, &c), 0);
	for (i = 0; i < M * N; i++)
		ck_assert_msg(y[i] == 0.0f && !signbit(y[i]), "y[%zu] = %g, expected +0", i, (double)y[i]);
	ck_assert_uint_eq(c.exec_macs, 0);
	ck_assert_uint_eq(c.blocks, 0);
	ck_assert_uint_eq(c.dense_macs, (uint64_t)M * N * K);
	ct_free(&ca);
	ct_free(&cb);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_one_by_one)
{
	float a = 3.0f, b = -0.5f, y = 0;
	struct ct ca = enc(&a, 1, 1), cb = enc(&b, 1, 1);

	ck_assert_int_eq(run(&ca, &cb, NULL, &y, NULL), 0);
	ck_assert_float_eq(y, -1.5f);
	ct_free(&ca);
	ct_free(&cb);
}
END_TEST

START_TEST(test_disjoint_masks_skip_every_mac)
{
	/* A nonzero only in even columns, B only in odd ones */
	const uint32_t M = 3, K = 64, N = 4;
	float a[3 * 64], b[4 * 64], y[12];
	struct ct ca, cb;
	struct spt_counters c;
	size_t i;

	for (i = 0; i < M * K; i++)
		a[i] = (i % K) % 2 ? 0.0f : 1.0f;
	for (i = 0; i < N * K; i++)
		b[i] = (i % K) % 2 ? 2.0f : 0.0f;
	ca = enc(a, M, K);
	cb = enc(b, N, K);
	ck_assert_int_eq(run(&ca, &cb, NULL, y, &c), 0);
	for (i = 0; i < M * N; i++)
		ck_assert_float_eq(y[i], 0.0f);
	ck_assert_uint_eq(c.exec_macs, 0);
	ck_assert_uint_eq(c.blocks, (uint64_t)M * N * 2);
	ct_free(&ca);
	ct_free(&cb);
}
END_TEST

/* ---- counters ----------------------------------------------------------- */

START_TEST(test_counters_exact_on_hand_made_masks)
{
	/*
	 * K = 64 (2 blocks).  A row 0: block 0 bits {0,1,2}, block 1 absent.
	 * A row 1: block 0 absent, block 1 bits {32, 40}.
	 * B row 0: block 0 bits {1,2,3}, block 1 bits {40}.
	 * B row 1: block 0 absent, block 1 bits {32, 33, 40}.
	 * B row 2: all 64.
	 * Pairs (both present): (0,0,b0) (0,2,b0) (1,0,b1) (1,1,b1) (1,2,b1) = 5
	 * exec: |{0,1,2}&{1,2,3}| = 2, |{0,1,2}&all| = 3, |{32,40}&{40}| = 1,
	 *       |{32,40}&{32,33,40}| = 2, |{32,40}&all| = 2   -> 10
	 */
	const uint32_t M = 2, K = 64, N = 3;
	float a[2 * 64] = { 0 }, b[3 * 64] = { 0 }, y[6];
	struct ct ca, cb;
	struct spt_counters c;
	size_t i;

	a[0] = a[1] = a[2] = 1.0f;
	a[64 + 32] = a[64 + 40] = 1.0f;
	b[1] = b[2] = b[3] = 1.0f;
	b[40] = 1.0f;
	b[64 + 32] = b[64 + 33] = b[64 + 40] = 1.0f;
	for (i = 0; i < 64; i++)
		b[128 + i] = 1.0f;
	ca = enc(a, M, K);
	cb = enc(b, N, K);
	memset(&c, 0xaa, sizeof(c));
	ck_assert_int_eq(run(&ca, &cb, NULL, y, &c), 0);
	ck_assert_uint_eq(c.dense_macs, 2 * 3 * 64);
	ck_assert_uint_eq(c.exec_macs, 10);
	ck_assert_uint_eq(c.blocks, 5);
	ck_assert_uint_eq(c.bytes_read, ca.len + cb.len);
	ck_assert_uint_eq(c.bytes_written, 4 * M * N);
	ck_assert_uint_eq(c.dense_fp16_bytes, 2 * (M * K + N * K + M * N));
	ck_assert_uint_eq(c.elements_out, M * N);
	ck_assert_uint_eq(c.cycles, 0);
	ck_assert(c.energy_pj == 0.0);
	/* and the values: y[i][j] = exec count per pair, all ones */
	ck_assert_float_eq(y[0], 2.0f);
	ck_assert_float_eq(y[1], 0.0f);
	ck_assert_float_eq(y[2], 3.0f);
	ck_assert_float_eq(y[3], 1.0f);
	ck_assert_float_eq(y[4], 2.0f);
	ck_assert_float_eq(y[5], 2.0f);
	ct_free(&ca);
	ct_free(&cb);
}
END_TEST

START_TEST(test_counters_count_mask_and_compressed_output)
{
	const uint32_t M = 4, K = 32, N = 5;
	float *a = rand_mat(M, K, 0.0, 1.0f), *b = rand_mat(N, K, 0.0, 1.0f);
	float *mk = rand_mat(M, N, 0.5, 1.0f);
	struct ct ca = enc(a, M, K), cb = enc(b, N, K), cm = enc(mk, M, N);
	struct spt_gemm_epilogue ep = { NULL, SPT_ACT_RELU_GRAD, cm.buf, cm.len, 0.0f };
	struct spt_gemm_out out;
	struct spt_counters c;
	unsigned char ct[4096];

	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.ct = ct;
	out.ct_cap = sizeof(ct);
	ck_assert_int_eq(spt_gemm(SPT_PASS_BWD, ca.buf, ca.len, cb.buf, cb.len, &ep, &out, &c), 0);
	ck_assert_uint_eq(c.bytes_read, ca.len + cb.len + cm.len);
	ck_assert_uint_eq(c.bytes_written, out.ct_len);
	ck_assert_uint_eq(out.stats.bytes, out.ct_len);
	ck_assert_uint_eq(out.stats.elements, M * N);
	ct_free(&ca);
	ct_free(&cb);
	ct_free(&cm);
	free(a);
	free(b);
	free(mk);
}
END_TEST

/* ---- epilogue ----------------------------------------------------------- */

struct epi_fixture {
	uint32_t m, k, n;
	float *a, *b, *y0;
	struct ct ca, cb;
};

static void epi_setup(struct epi_fixture *f, uint32_t m, uint32_t k, uint32_t n)
{
	f->m = m;
	f->k = k;
	f->n = n;
	f->a = rand_mat(m, k, 0.3, 1.0f);
	f->b = rand_mat(n, k, 0.3, 1.0f);
	f->ca = enc(f->a, m, k);
	f->cb = enc(f->b, n, k);
	f->y0 = malloc((size_t)m * n * sizeof(float));
	ck_assert_int_eq(run(&f->ca, &f->cb, NULL, f->y0, NULL), 0);
}

static void epi_teardown(struct epi_fixture *f)
{
	ct_free(&f->ca);
	ct_free(&f->cb);
	free(f->a);
	free(f->b);
	free(f->y0);
}

START_TEST(test_epilogue_scale_bias_relu_in_order)
{
	struct epi_fixture f;
	float bias[37], *y;
	struct spt_gemm_epilogue ep = { bias, SPT_ACT_RELU, NULL, 0, 0.25f };
	size_t i, j;

	epi_setup(&f, 13, 70, 37);
	for (j = 0; j < 37; j++)
		bias[j] = (float)(unit() - 0.5);
	y = malloc((size_t)13 * 37 * sizeof(float));
	ck_assert_int_eq(run(&f.ca, &f.cb, &ep, y, NULL), 0);
	for (i = 0; i < 13; i++)
		for (j = 0; j < 37; j++) {
			float v = f.y0[i * 37 + j] * 0.25f + bias[j];

			v = v > 0.0f ? v : 0.0f;
			ck_assert_msg(y[i * 37 + j] == v, "y[%zu][%zu] = %.9g, expected %.9g",
				      i, j, (double)y[i * 37 + j], (double)v);
		}
	free(y);
	epi_teardown(&f);
}
END_TEST

START_TEST(test_epilogue_scale_zero_means_one)
{
	struct epi_fixture f;
	struct spt_gemm_epilogue ep = { NULL, SPT_ACT_NONE, NULL, 0, 0.0f };
	float *y;

	epi_setup(&f, 6, 64, 9);
	y = malloc(6 * 9 * sizeof(float));
	ck_assert_int_eq(run(&f.ca, &f.cb, &ep, y, NULL), 0);
	ck_assert_int_eq(memcmp(y, f.y0, 6 * 9 * sizeof(float)), 0);
	free(y);
	epi_teardown(&f);
}
END_TEST

START_TEST(test_epilogue_relu_grad_zeroes_where_mask_is_zero)
{
	struct epi_fixture f;
	float *mk, *y;
	struct ct cm;
	struct spt_gemm_epilogue ep = { NULL, SPT_ACT_RELU_GRAD, NULL, 0, 0.0f };
	size_t i;

	epi_setup(&f, 10, 40, 45);
	mk = rand_mat(10, 45, 0.5, 1.0f);
	cm = enc(mk, 10, 45);
	ep.mask = cm.buf;
	ep.mask_len = cm.len;
	y = malloc(10 * 45 * sizeof(float));
	ck_assert_int_eq(run(&f.ca, &f.cb, &ep, y, NULL), 0);
	for (i = 0; i < 10 * 45; i++) {
		float want = mk[i] != 0.0f ? f.y0[i] : 0.0f;

		ck_assert_msg(y[i] == want, "y[%zu] = %g, mask %g, expected %g", i,
			      (double)y[i], (double)mk[i], (double)want);
	}
	/* a mask of the wrong shape */
	ct_free(&cm);
	cm = enc(mk, 45, 10);
	ep.mask = cm.buf;
	ep.mask_len = cm.len;
	ck_assert_int_eq(run(&f.ca, &f.cb, &ep, y, NULL), -EINVAL);
	/* a malformed mask */
	ep.mask_len = cm.len - 1;
	ck_assert_int_eq(run(&f.ca, &f.cb, &ep, y, NULL), -EBADMSG);
	ct_free(&cm);
	free(mk);
	free(y);
	epi_teardown(&f);
}
END_TEST

/* The compressed output is the encoding of y (pruned values, quantised). */
static void compressed_case(enum spt_prune_mode mode, float tau)
{
	struct epi_fixture f;
	struct spt_gemm_out out;
	size_t cap, i, n;
	float *y, *q, *d;
	uint64_t kept_tau = 0;
	int err;

	epi_setup(&f, 17, 96, 50);
	n = (size_t)17 * 50;
	cap = spt_ct_bound(17, 50);
	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.enc.prune.mode = mode;
	out.enc.prune.tau = tau;
	out.enc.prune.seed = 42;
	out.y = y = malloc(n * sizeof(float));
	out.ct = malloc(cap);
	out.ct_cap = cap;
	q = malloc(n * sizeof(float));
	d = malloc(n * sizeof(float));
	err = spt_gemm(SPT_PASS_FWD, f.ca.buf, f.ca.len, f.cb.buf, f.cb.len, NULL, &out, NULL);
	ck_assert_msg(err == 0, "spt_gemm: %s", spt_core_strerror(err));
	/* y: the pruning rule applied to the unpruned result */
	for (i = 0; i < n; i++) {
		float x = f.y0[i];

		if (mode == SPT_PRUNE_OFF || fabsf(x) >= tau) {
			ck_assert_msg(y[i] == x, "y[%zu] = %g, kept value %g", i, (double)y[i], (double)x);
		} else if (y[i] != 0.0f) {
			ck_assert_msg(mode == SPT_PRUNE_STOCHASTIC && y[i] == copysignf(tau, x),
				      "y[%zu] = %g for pruned %g (tau %g)", i, (double)y[i],
				      (double)x, (double)tau);
			kept_tau++;
		}
	}
	if (mode == SPT_PRUNE_STOCHASTIC)
		ck_assert_msg(kept_tau > 0, "stochastic pruning kept nothing at tau");
	if (mode != SPT_PRUNE_OFF)
		ck_assert_msg(out.stats.pruned > 0, "nothing pruned at tau %g", (double)tau);
	/* ct decodes to y quantised */
	ck_assert_int_eq(spt_bfp8_quantize(y, q, 17, 50, SPT_ROUND_EVEN, 0), 0);
	ck_assert_int_eq(spt_ct_decode(out.ct, out.ct_len, d, n), 0);
	for (i = 0; i < n; i++)
		ck_assert_msg(q[i] == d[i], "decoded output [%zu] = %g, quantised y %g", i,
			      (double)d[i], (double)q[i]);
	ck_assert_uint_eq(out.stats.elements, n);
	free(y);
	free(out.ct);
	free(q);
	free(d);
	epi_teardown(&f);
}

START_TEST(test_compressed_output_decodes_to_quantised_y)
{
	compressed_case(SPT_PRUNE_OFF, 0.0f);
}
END_TEST

START_TEST(test_deterministic_pruning_of_output)
{
	compressed_case(SPT_PRUNE_DETERMINISTIC, 1.0f);
}
END_TEST

START_TEST(test_stochastic_pruning_matches_encoder)
{
	compressed_case(SPT_PRUNE_STOCHASTIC, 1.0f);
}
END_TEST

START_TEST(test_compressed_output_only)
{
	struct epi_fixture f;
	struct spt_gemm_out out;
	unsigned char ct[8192];
	float *d, *q;

	epi_setup(&f, 8, 64, 24);
	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.ct = ct;
	out.ct_cap = sizeof(ct);
	ck_assert_int_eq(spt_gemm(SPT_PASS_WG, f.ca.buf, f.ca.len, f.cb.buf, f.cb.len, NULL, &out, NULL), 0);
	d = malloc(8 * 24 * sizeof(float));
	q = malloc(8 * 24 * sizeof(float));
	ck_assert_int_eq(spt_ct_decode(ct, out.ct_len, d, 8 * 24), 0);
	ck_assert_int_eq(spt_bfp8_quantize(f.y0, q, 8, 24, SPT_ROUND_EVEN, 0), 0);
	ck_assert_int_eq(memcmp(d, q, 8 * 24 * sizeof(float)), 0);
	/* too small an output buffer */
	out.ct_cap = 70;
	ck_assert_int_eq(spt_gemm(SPT_PASS_WG, f.ca.buf, f.ca.len, f.cb.buf, f.cb.len, NULL, &out, NULL), -ENOSPC);
	free(d);
	free(q);
	epi_teardown(&f);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(test_k_mismatch_is_einval)
{
	float *a = rand_mat(4, 64, 0.0, 1.0f), *b = rand_mat(4, 65, 0.0, 1.0f), y[16];
	struct ct ca = enc(a, 4, 64), cb = enc(b, 4, 65);

	ck_assert_int_eq(run(&ca, &cb, NULL, y, NULL), -EINVAL);
	ct_free(&ca);
	ct_free(&cb);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_bad_arguments_are_einval)
{
	float *a = rand_mat(4, 32, 0.0, 1.0f), y[16];
	struct ct ca = enc(a, 4, 32);
	struct spt_gemm_out out;
	struct spt_gemm_epilogue ep = { NULL, SPT_ACT_NONE, NULL, 0, 0.0f };

	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	/* neither y nor ct */
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, NULL, &out, NULL), -EINVAL);
	out.y = y;
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, NULL, &out, NULL), 0);
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, NULL, ca.len, ca.buf, ca.len, NULL, &out, NULL), -EINVAL);
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, NULL, ca.len, NULL, &out, NULL), -EINVAL);
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_gemm((enum spt_pass)3, ca.buf, ca.len, ca.buf, ca.len, NULL, &out, NULL), -EINVAL);
	ep.act = (enum spt_act)7;
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, &ep, &out, NULL), -EINVAL);
	ep.act = SPT_ACT_RELU_GRAD;	/* no mask */
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, &ep, &out, NULL), -EINVAL);
	ep.act = SPT_ACT_NONE;
	ep.scale = NAN;
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, &ep, &out, NULL), -EINVAL);
	ep.scale = 1.0f;
	out.enc.prune.mode = SPT_PRUNE_DETERMINISTIC;
	out.enc.prune.tau = -1.0f;
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, &ep, &out, NULL), -EINVAL);
	out.enc.prune.mode = (enum spt_prune_mode)9;
	out.enc.prune.tau = 1.0f;
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, ca.buf, ca.len, &ep, &out, NULL), -EINVAL);
	ct_free(&ca);
	free(a);
}
END_TEST

START_TEST(test_malformed_operand_is_ebadmsg)
{
	float *a = rand_mat(4, 64, 0.2, 1.0f), y[16];
	struct ct ca = enc(a, 4, 64);
	unsigned char *bad = malloc(ca.len);

	memcpy(bad, ca.buf, ca.len);
	bad[0] ^= 1;	/* magic */
	{
		struct spt_gemm_out out;

		memset(&out, 0, sizeof(out));
		spt_encode_opts_init(&out.enc);
		out.y = y;
		ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, bad, ca.len, ca.buf, ca.len, NULL, &out, NULL), -EBADMSG);
		ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, bad, ca.len, NULL, &out, NULL), -EBADMSG);
		ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len - 1, ca.buf, ca.len, NULL, &out, NULL), -EBADMSG);
		ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, 10, ca.buf, ca.len, NULL, &out, NULL), -EBADMSG);
	}
	free(bad);
	ct_free(&ca);
	free(a);
}
END_TEST

START_TEST(test_nan_after_epilogue_is_edom_for_compressed_output)
{
	float a = 1.0f, b = 1.0f, bias = INFINITY;
	struct ct ca = enc(&a, 1, 1), cb = enc(&b, 1, 1);
	struct spt_gemm_epilogue ep = { &bias, SPT_ACT_NONE, NULL, 0, 0.0f };
	struct spt_gemm_out out;
	unsigned char ct[256];

	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.ct = ct;
	out.ct_cap = sizeof(ct);
	ck_assert_int_eq(spt_gemm(SPT_PASS_FWD, ca.buf, ca.len, cb.buf, cb.len, &ep, &out, NULL), -EDOM);
	ct_free(&ca);
	ct_free(&cb);
}
END_TEST

static Suite *gemm_suite(void)
{
	Suite *s = suite_create("gemm");
	TCase *passes = tcase_create("passes");
	TCase *edges = tcase_create("edges");
	TCase *counters = tcase_create("counters");
	TCase *epilogue = tcase_create("epilogue");
	TCase *errors = tcase_create("errors");

	tcase_add_test(passes, test_three_passes_dense);
	tcase_add_test(passes, test_three_passes_sparse);
	tcase_add_test(passes, test_three_passes_ragged_k33_k70);
	tcase_add_test(passes, test_wide_exponent_range_matches_reference);
	tcase_set_timeout(passes, 60);
	suite_add_tcase(s, passes);

	tcase_add_test(edges, test_all_zero_operand_gives_zero_and_no_work);
	tcase_add_test(edges, test_one_by_one);
	tcase_add_test(edges, test_disjoint_masks_skip_every_mac);
	suite_add_tcase(s, edges);

	tcase_add_test(counters, test_counters_exact_on_hand_made_masks);
	tcase_add_test(counters, test_counters_count_mask_and_compressed_output);
	suite_add_tcase(s, counters);

	tcase_add_test(epilogue, test_epilogue_scale_bias_relu_in_order);
	tcase_add_test(epilogue, test_epilogue_scale_zero_means_one);
	tcase_add_test(epilogue, test_epilogue_relu_grad_zeroes_where_mask_is_zero);
	tcase_add_test(epilogue, test_compressed_output_decodes_to_quantised_y);
	tcase_add_test(epilogue, test_deterministic_pruning_of_output);
	tcase_add_test(epilogue, test_stochastic_pruning_matches_encoder);
	tcase_add_test(epilogue, test_compressed_output_only);
	suite_add_tcase(s, epilogue);

	tcase_add_test(errors, test_k_mismatch_is_einval);
	tcase_add_test(errors, test_bad_arguments_are_einval);
	tcase_add_test(errors, test_malformed_operand_is_ebadmsg);
	tcase_add_test(errors, test_nan_after_epilogue_is_edom_for_compressed_output);
	suite_add_tcase(s, errors);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gemm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
