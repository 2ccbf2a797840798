// SPDX-License-Identifier: MIT
/*
 * SIMD dispatch: every path this CPU supports gives the same bits as the
 * scalar reference (y, compressed output, counters), and unsupported paths
 * are refused.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#define TEST_RNG_SEED 0x243f6a8885a308d3ull
#include "test_util.h"

/* zero w.p. s; blocks get random exponents in [lo, hi] */
static float *rand_mat(uint32_t rows, uint32_t cols, double s, int lo, int hi)
{
	float *x = malloc((size_t)rows * cols * sizeof(float));
	uint32_t r, c;

	ck_assert_ptr_nonnull(x);
	for (r = 0; r < rows; r++) {
		int e = 0;

		for (c = 0; c < cols; c++) {
			float v;

			if (c % 32 == 0)
				e = lo + (int)below((uint32_t)(hi - lo + 1));
			v = ldexpf((float)(unit() * 2 - 1), e);
			x[(size_t)r * cols + c] = unit() < s ? 0.0f : v;
		}
	}
	return x;
}

struct result {
	float *y;
	unsigned char *ct;
	size_t ct_len;
	struct spt_counters cnt;
	struct spt_tensor_stats stats;
	int err;
};

/* The pass named to spt_gemm and the compressed output's rounding (tests may change them). */
static enum spt_pass gemm_pass = SPT_PASS_FWD;
static enum spt_round gemm_round = SPT_ROUND_EVEN;

/* Each test starts with the forward pass and nearest rounding (also under CK_FORK=no). */
static void reset_gemm_mode(void)
{
	gemm_pass = SPT_PASS_FWD;
	gemm_round = SPT_ROUND_EVEN;
}

static void run_isa(enum spt_isa isa, const void *a, size_t al, const void *b, size_t bl,
		    uint32_t m, uint32_t n, const struct spt_gemm_epilogue *ep,
		    const struct spt_prune *pr, int want_ct, struct result *r)
{
	struct spt_gemm_out out;
	size_t cap = spt_ct_bound(m, n);

	ck_assert_int_eq(spt_core_set_isa(isa), 0);
	ck_assert_int_eq(spt_core_get_isa(), isa);
	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	if (pr)
		out.enc.prune = *pr;
	out.enc.round = gemm_round;
	out.enc.round_seed = 11;
	r->y = malloc((size_t)m * n * sizeof(float));
	r->ct = malloc(cap);
	out.y = r->y;
	out.ct = want_ct ? r->ct : NULL;
	out.ct_cap = cap;
	r->err = spt_gemm(gemm_pass, a, al, b, bl, ep, &out, &r->cnt);
	r->ct_len = out.ct_len;
	r->stats = out.stats;
}

static void result_free(struct result *r)
{
	free(r->y);
	free(r->ct);
}

static void same(const struct result *ref, const struct result *got, enum spt_isa isa,
		 uint32_t m, uint32_t n, uint32_t k, double s)
{
	size_t i;

	ck_assert_int_eq(got->err, ref->err);
	if (ref->err)
		return;
	for (i = 0; i < (size_t)m * n; i++)
		ck_assert_msg(!memcmp(&ref->y[i], &got->y[i], sizeof(float)),
			      "%s: %ux%ux%u s=%.2f y[%zu] = %a, scalar %a",
			      spt_core_isa_name(isa), m, k, n, s, i, (double)got->y[i],
			      (double)ref->y[i]);
	ck_assert_uint_eq(got->ct_len, ref->ct_len);
	ck_assert_msg(!memcmp(got->ct, ref->ct, ref->ct_len), "%s: compressed output differs",
		      spt_core_isa_name(isa));
	ck_assert_uint_eq(got->cnt.dense_macs, ref->cnt.dense_macs);
	ck_assert_uint_eq(got->cnt.exec_macs, ref->cnt.exec_macs);
	ck_assert_uint_eq(got->cnt.blocks, ref->cnt.blocks);
	ck_assert_uint_eq(got->cnt.bytes_read, ref->cnt.bytes_read);
	ck_assert_uint_eq(got->cnt.bytes_written, ref->cnt.bytes_written);
	ck_assert_uint_eq(got->cnt.dense_fp16_bytes, ref->cnt.dense_fp16_bytes);
	ck_assert_uint_eq(got->cnt.elements_out, ref->cnt.elements_out);
	ck_assert_uint_eq(got->stats.nonzeros, ref->stats.nonzeros);
	ck_assert_uint_eq(got->stats.pruned, ref->stats.pruned);
}

/*
 * with_epilogue: 0 none; 1 scale, bias and a ReLU-gradient mask of element
 * sparsity 0.5 (blocks mostly stored); 2 scale, bias and ReLU; 3 the mask
 * alone at sparsity 0.99 (most blocks absent); 4 bias alone; 5 scale 0.25 and
 * ReLU (tiny negative results become -0 before the ReLU).
 */
static void compare_mats(float *a, float *b, uint32_t m, uint32_t k, uint32_t n, double sa,
			 int with_epilogue, int want_ct)
{
	float *mk = rand_mat(m, n, with_epilogue == 3 ? 0.99 : 0.5, 0, 0);
	float *bias = rand_mat(1, n, 0.0, -2, 2);
	size_t al, bl, ml;
	void *ca = test_encode(a, m, k, &al), *cb = test_encode(b, n, k, &bl), *cm = test_encode(mk, m, n, &ml);
	struct spt_gemm_epilogue ep = { bias, SPT_ACT_RELU_GRAD, cm, ml, 0.5f };

	if (with_epilogue == 2) {
		ep.act = SPT_ACT_RELU;
		ep.scale = 0.75f;
	} else if (with_epilogue == 3) {
		ep.bias = NULL;
		ep.scale = 0.0f;
	} else if (with_epilogue == 4) {
		ep.act = SPT_ACT_NONE;
		ep.scale = 1.0f;
	} else if (with_epilogue == 5) {
		ep.bias = NULL;
		ep.act = SPT_ACT_RELU;
		ep.scale = 0.25f;
	}
	struct spt_prune pr = { SPT_PRUNE_STOCHASTIC, 0.25f, 7 };
	/* pruning would turn a -0 into +0: not with the ReLU of -0 */
	const struct spt_prune *prp = with_epilogue && with_epilogue != 5 ? &pr : NULL;
	enum spt_isa isa;
	struct result ref;

	run_isa(SPT_ISA_SCALAR, ca, al, cb, bl, m, n, with_epilogue ? &ep : NULL,
		prp, want_ct, &ref);
	for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
		struct result got;

		if (!spt_core_isa_supported(isa))
			continue;
		run_isa(isa, ca, al, cb, bl, m, n, with_epilogue ? &ep : NULL,
			prp, want_ct, &got);
		same(&ref, &got, isa, m, n, k, sa);
		result_free(&got);
	}
	result_free(&ref);
	free(a);
	free(b);
	free(mk);
	free(bias);
	free(ca);
	free(cb);
	free(cm);
}

static void compare_case(uint32_t m, uint32_t k, uint32_t n, double sa, double sb,
			 int lo, int hi, int with_epilogue, int want_ct)
{
	compare_mats(rand_mat(m, k, sa, lo, hi), rand_mat(n, k, sb, lo, hi), m, k, n, sa,
		     with_epilogue, want_ct);
}

/*
 * Every block of its own kind: absent, full, one value, all but one, a
 * random half, one in ten, or (kinds = 7) each element zero with
 * probability s.  Values are never zero where kept.
 */
static float *kind_mat(uint32_t rows, uint32_t cols, int kinds, double s)
{
	float *x = rand_mat(rows, cols, 0.0, -4, 4);
	uint32_t r, b, c;

	for (r = 0; r < rows; r++)
		for (b = 0; b * 32 < cols; b++) {
			uint32_t w = cols - b * 32 < 32 ? cols - b * 32 : 32;
			uint32_t kind = below((uint32_t)kinds), one = below(w);
			float *blk = x + (size_t)r * cols + b * 32;

			for (c = 0; c < w; c++) {
				int keep;

				if (blk[c] == 0.0f)
					blk[c] = 1.0f;
				switch (kind) {
				case 0: keep = 0; break;
				case 1: keep = 1; break;
				case 2: keep = c == one; break;
				case 3: keep = c != one; break;
				case 4: keep = unit() < 0.5; break;
				case 5: keep = unit() < 0.1; break;
				default: keep = unit() >= s; break;
				}
				if (!keep)
					blk[c] = 0.0f;
			}
		}
	return x;
}

/*
 * The A operand's re-layout (entries, sorted items) and the per-bit
 * counters behind exec_macs: blocks of every kind side by side, ragged and
 * whole widths (a single column of 16 or fewer elements has its own path),
 * row counts past 255 (the byte counters' flush) on both operands, tensors
 * that end on a partial block, and uniform sparsities from none to
 * everything zero.
 */
START_TEST(test_simd_matches_scalar_on_every_block_kind)
{
	static const uint32_t shp[][3] = {
		{ 300, 9, 16 }, { 700, 40, 300 }, { 520, 144, 32 }, { 260, 64, 260 },
		{ 17, 1000, 9 }, { 9, 33, 600 }, { 1, 31, 1 }, { 63, 95, 65 },
		{ 200, 16, 20 }, { 200, 17, 20 },
	};
	static const double sp[] = { 0.0, 0.5, 0.9, 1.0 };
	size_t i, j;

	for (i = 0; i < sizeof(shp) / sizeof(shp[0]); i++) {
		uint32_t m = shp[i][0], k = shp[i][1], n = shp[i][2];

		compare_mats(kind_mat(m, k, 6, 0.0), kind_mat(n, k, 6, 0.0), m, k, n, -1.0,
			     (int)i % 2, 1);
		for (j = 0; j < sizeof(sp) / sizeof(sp[0]); j++)
			compare_mats(kind_mat(m, k, 7, sp[j]), kind_mat(n, k, 7, sp[(j + 1) % 4]),
				     m, k, n, sp[j], (int)(i + j) % 3 == 0, (int)j % 2);
	}
}
END_TEST

/*
 * The shapes of an im2col-lowered convolution: tall and skinny operands
 * (few blocks per row, mostly ragged ones) in the forward and backward
 * passes, a long K in the weight gradient; every density of A's blocks.
 */
START_TEST(test_simd_matches_scalar_on_lowered_conv_shapes)
{
	static const uint32_t shp[][3] = {
		{ 1500, 9, 16 }, { 600, 144, 32 }, { 700, 16, 144 }, { 16, 1500, 9 },
	};
	static const double sp[] = { 0.0, 0.3, 0.7, 0.9 };
	size_t i, j;

	for (i = 0; i < sizeof(shp) / sizeof(shp[0]); i++)
		for (j = 0; j < sizeof(sp) / sizeof(sp[0]); j++)
			compare_case(shp[i][0], shp[i][1], shp[i][2], sp[j], 0.5, -127, 127,
				     (int)(i + j) % 2, 1);
	/*
	 * the first layer's patch matrix (a single column of 9, straight from
	 * the stream) dense and sparse, every N of one tile: a bit's count
	 * passes 255, so the byte counters must carry
	 */
	for (i = 1; i <= 16; i++)
		for (j = 0; j < 2; j++)
			compare_case(1500 + 7 * (uint32_t)i, 9, (uint32_t)i, sp[j], 0.0, -4, 4,
				     (int)i % 6, (int)j);
}
END_TEST

/* rand_mat() with each block absent (all +0) w.p. @absent. */
static float *blocky_mat(uint32_t rows, uint32_t cols, double absent, double s, int lo, int hi)
{
	float *x = rand_mat(rows, cols, s, lo, hi);
	uint32_t r, b;

	for (r = 0; r < rows; r++)
		for (b = 0; b * 32 < cols; b++)
			if (unit() < absent)
				memset(x + (size_t)r * cols + b * 32, 0,
				       (cols - b * 32 < 32 ? cols - b * 32 : 32) * sizeof(float));
	return x;
}

/*
 * A of at most 32 rows: C is computed as (B A^T)^T, streamed from B, when
 * B has few stored blocks, or when both have at most 32 rows and B fewer
 * stored blocks than A; the same sums in the same block order, so the
 * same bits.  Both sides of each choice, chunked streams (K past 16
 * blocks), every epilogue (applied after the transpose), -0 and subnormal
 * terms, and block exponents past 100, where the transpose could overflow
 * in an intermediate product and C is computed as usual.
 */
START_TEST(test_simd_matches_scalar_as_transpose)
{
	static const uint32_t ms[] = { 1, 9, 16, 32 }, ns[] = { 33, 40, 144, 300, 8, 9, 31 };
	static const uint32_t ks[] = { 17, 64, 600, 3000 };
	static const double absent[] = { 0.0, 0.5, 0.8, 1.0 };
	uint32_t i, j;

	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (j = 0; j < sizeof(ks) / sizeof(ks[0]); j++) {
			uint32_t m = ms[(i + j) % 4], n = ns[i], k = ks[j];
			double ab = absent[(i + j) % 4], aa = absent[(i * 3 + j) % 3];

			compare_mats(blocky_mat(m, k, aa, 0.5, -4, 4), blocky_mat(n, k, ab, 0.7, -4, 4),
				     m, k, n, 0.5, (int)(i + j) % 6, (int)j % 2);
			compare_mats(blocky_mat(m, k, 0.2, 0.3, -126, -60),
				     blocky_mat(n, k, 0.8, 0.3, -126, -60), m, k, n, 0.3,
				     (int)(i + 2 * j) % 6, 1);
			/* one order's first product overflows, the other's not */
			compare_mats(blocky_mat(m, k, 0.2, 0.3, 100, 127),
				     blocky_mat(n, k, 0.8, 0.3, -127, -90), m, k, n, 0.3, 0, 0);
			compare_mats(blocky_mat(m, k, 0.2, 0.3, -127, -90),
				     blocky_mat(n, k, 0.8, 0.3, 100, 127), m, k, n, 0.3, 0, 0);
		}
}
END_TEST

START_TEST(test_simd_matches_scalar_on_random_shapes)
{
	static const double sp[] = { 0.0, 0.5, 0.9, 0.99, 1.0 };
	int it;

	for (it = 0; it < 40; it++) {
		uint32_t m = 1 + below(70), k = 1 + below(300), n = 1 + below(140);
		double sa = sp[below(5)], sb = sp[below(3)];

		compare_case(m, k, n, sa, sb, -4, 4, it % 2, it % 3 != 0);
	}
}
END_TEST

/* Every epilogue kind, column counts around whole 8-lane vectors and 64-column tiles. */
START_TEST(test_simd_matches_scalar_on_every_epilogue)
{
	static const uint32_t ns[] = { 1, 7, 8, 31, 33, 63, 64, 65, 130, 200 };
	int it, kind;

	for (it = 0; it < 10; it++)
		for (kind = 1; kind <= 4; kind++)
			compare_case(1 + below(40), 1 + below(200), ns[it], 0.5, 0.3, -4, 4, kind,
				     kind % 2);
	/* -0 and subnormal products through scale, bias, ReLU and the mask */
	compare_case(9, 96, 40, 0.3, 0.3, -126, -60, 2, 1);
	compare_case(9, 96, 40, 0.3, 0.3, -126, -60, 3, 0);
	compare_case(16, 64, 72, 0.0, 0.0, -77, -75, 5, 0);
}
END_TEST

/*
 * Every column count up to 70 and the CNN's 144 and 288: the AVX2 tiles are
 * as wide as C in whole vectors (at most 64 columns; a last narrower tile),
 * the last vector masked where C ends inside it.  Rows over several row
 * groups, a ragged K over several block chunks (narrower tiles take more
 * blocks per chunk), absent blocks in A and B, every epilogue.
 */
START_TEST(test_simd_matches_scalar_on_every_tile_width)
{
	static const double sp[] = { 0.0, 0.5, 0.9, 0.99, 1.0 };
	uint32_t i;

	for (i = 1; i <= 72; i++) {
		uint32_t n = i <= 70 ? i : i == 71 ? 144 : 288;
		uint32_t m = 1 + below(30), k = 1 + below(i % 4 ? 300 : 1500);

		compare_case(m, k, n, sp[i % 5], sp[(i / 5) % 4], -4, 4, (int)(i % 6), (int)(i % 2));
	}
}
END_TEST

START_TEST(test_simd_matches_scalar_on_aligned_shapes)
{
	compare_case(64, 256, 128, 0.9, 0.0, -3, 3, 0, 1);
	compare_case(32, 1024, 64, 0.0, 0.0, -3, 3, 1, 1);
	compare_case(16, 64, 192, 0.5, 0.5, -3, 3, 0, 0);
}
END_TEST

START_TEST(test_simd_matches_scalar_with_overflow_and_subnormals)
{
	/* block terms that overflow to inf and underflow to subnormals/zero */
	compare_case(9, 96, 40, 0.3, 0.3, 60, 126, 0, 0);
	compare_case(9, 96, 40, 0.3, 0.3, -126, -60, 0, 0);
	compare_case(9, 200, 40, 0.3, 0.3, -126, 126, 0, 0);
	compare_case(9, 96, 40, 0.3, 0.3, -126, -60, 0, 1);
}
END_TEST

/*
 * The AVX2 kernel's fused epilogue (scale, bias, ReLU as the final sums are
 * stored) and its single-block-column path (K <= 32 in a tile of at most 16
 * columns: each row's one term straight to C): the narrow C of the CNN's
 * first layer and of its backward passes (N = 9, 10, 16, 32 and every
 * width to 17), K ragged or whole, rows that end inside a row group,
 * absent blocks up to all-zero operands, products that round to -0 before
 * a ReLU, every epilogue, every pass and both roundings of the output; and
 * the fused epilogue after several block chunks (long K; a tile of 32
 * columns takes chunks of 8 blocks, whose items are ranked in two vectors).
 */
START_TEST(test_simd_fused_epilogue_and_single_block_column)
{
	static const uint32_t ns[] = { 9, 10, 16, 32, 1, 2, 7, 8, 15, 17, 24, 40 };
	static const uint32_t ks[] = { 9, 10, 31, 32, 1, 16, 17 };
	static const double sp[] = { 0.0, 0.5, 0.9, 1.0 };
	uint32_t i, j;

	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (j = 0; j < sizeof(ks) / sizeof(ks[0]); j++) {
			uint32_t m = 1 + below(90), kind = (i + j) % 6;

			gemm_pass = (enum spt_pass)(SPT_PASS_FWD + (i + j) % 3);
			gemm_round = j % 2 ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
			compare_case(m, ks[j], ns[i], sp[(i + j) % 4], sp[(i * 3 + j) % 3], -4, 4,
				     (int)kind, (int)(i + j) % 2 || kind == 0);
		}
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		/* all-zero A and B, -0 products through scale and ReLU */
		compare_case(21, 9, ns[i], 1.0, 0.3, -4, 4, 2, 1);
		compare_case(21, 9, ns[i], 0.3, 1.0, -4, 4, 4, 1);
		compare_case(37, 12, ns[i], 0.2, 0.2, -77, -75, 5, 0);
		compare_case(37, 12, ns[i], 0.2, 0.2, -126, -60, 2, 1);
		compare_case(37, 12, ns[i], 0.2, 0.2, -126, -60, 0, 1);
		compare_case(37, 12, ns[i], 0.2, 0.2, -126, -60, 3, 0);
		/* the same epilogues after several block chunks */
		compare_case(19, 1000 + below(600), ns[i], 0.5, 0.5, -4, 4, (int)i % 6, 1);
		compare_case(19, 100, ns[i], 0.2, 0.2, -77, -75, 5, 0);
	}
	gemm_pass = SPT_PASS_FWD;
	gemm_round = SPT_ROUND_EVEN;
}
END_TEST

/* Stochastic rounding (the weight gradient's encoding): every ISA, the same bytes. */
static void encode_isa(enum spt_isa isa, const float *x, uint32_t m, uint32_t n,
		       const struct spt_encode_opts *o, unsigned char *ct, size_t *len,
		       struct spt_tensor_stats *st)
{
	ck_assert_int_eq(spt_core_set_isa(isa), 0);
	ck_assert_int_eq(spt_ct_encode(x, m, n, o, ct, spt_ct_bound(m, n), len, st), 0);
}

/*
 * Ragged and whole-block widths, pruning below tau and block exponents
 * from the subnormal range (E = -127, two-step scale) to the top (k
 * clamped to 127).
 */
START_TEST(test_stochastic_rounding_matches_scalar)
{
	static const double sp[] = { 0.0, 0.5, 0.9 };
	static const int er[][2] = { { -20, 20 }, { -149, -120 }, { 100, 127 }, { -149, 127 } };
	int it;

	for (it = 0; it < 96; it++) {
		const int *e = er[(it / 12) % 4];
		/* whole blocks too: the AVX2 encoder's 8-block groups and their tail */
		uint32_t m = 1 + below(40), n = it % 2 ? 32 * (1 + below(9)) : 1 + below(200);
		float *x = rand_mat(m, n, sp[it % 3], e[0], e[1]);
		size_t cap = spt_ct_bound(m, n), lr = 0, lg = 0;
		unsigned char *ref = malloc(cap), *got = malloc(cap);
		struct spt_tensor_stats sr, sg;
		struct spt_encode_opts o;
		enum spt_isa isa;

		spt_encode_opts_init(&o);
		o.round = SPT_ROUND_STOCHASTIC;
		o.round_seed = 1000u + (uint64_t)it;
		if ((it / 2) % 2) {
			o.prune.mode = SPT_PRUNE_DETERMINISTIC;
			o.prune.tau = ldexpf(0.5f, (e[0] + e[1]) / 2);
		}
		encode_isa(SPT_ISA_SCALAR, x, m, n, &o, ref, &lr, &sr);
		for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			encode_isa(isa, x, m, n, &o, got, &lg, &sg);
			ck_assert_uint_eq(lg, lr);
			ck_assert_msg(!memcmp(got, ref, lr), "%s: %ux%u stochastic encode differs",
				      spt_core_isa_name(isa), m, n);
			ck_assert_mem_eq(&sg, &sr, sizeof(sr));
		}
		free(ref);
		free(got);
		free(x);
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

/*
 * SGD on a compressed gradient (the BFP8 step's update): ragged and aligned
 * widths, several tiles, absent blocks, pruned and all-zero gradients,
 * exponents from the subnormal range to the top.
 */
START_TEST(test_sgd_ct_matches_scalar)
{
	static const double sp[] = { 0.0, 0.5, 0.9, 0.99, 1.0 };
	static const int er[][2] = { { -20, 20 }, { -149, -120 }, { 100, 127 }, { -149, 127 } };
	int it;

	for (it = 0; it < 40; it++) {
		const int *e = er[it % 4];
		uint32_t m = 1 + below(90), n = it % 3 ? 1 + below(400) : 32 * (1 + below(12));
		size_t elems = (size_t)m * n, cap = spt_ct_bound(m, n), len = 0, i;
		float *x = rand_mat(m, n, sp[it % 5], e[0], e[1]);
		float *w0 = rand_mat(m, n, 0.1, -4, 4), *v0 = rand_mat(m, n, 0.1, -8, 0);
		float *w = malloc(elems * sizeof(float)), *v = malloc(elems * sizeof(float));
		float *wr = malloc(elems * sizeof(float)), *vr = malloc(elems * sizeof(float));
		unsigned char *ct = malloc(cap);
		struct spt_encode_opts o;
		enum spt_isa isa;

		ck_assert_ptr_nonnull(w);
		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(wr);
		ck_assert_ptr_nonnull(vr);
		ck_assert_ptr_nonnull(ct);
		spt_encode_opts_init(&o);
		o.round = SPT_ROUND_STOCHASTIC;
		o.round_seed = 500u + (uint64_t)it;
		if (it % 2) {
			o.prune.mode = SPT_PRUNE_STOCHASTIC;
			o.prune.tau = ldexpf(0.5f, (e[0] + e[1]) / 2);
			o.prune.seed = (uint64_t)it;
		}
		encode_isa(SPT_ISA_SCALAR, x, m, n, &o, ct, &len, NULL);
		memcpy(wr, w0, elems * sizeof(float));
		memcpy(vr, v0, elems * sizeof(float));
		ck_assert_int_eq(spt_sgd_momentum_ct(wr, vr, ct, len, elems, 0.05f, 0.9f, 5e-4f), 0);
		for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			memcpy(w, w0, elems * sizeof(float));
			memcpy(v, v0, elems * sizeof(float));
			ck_assert_int_eq(spt_sgd_momentum_ct(w, v, ct, len, elems, 0.05f, 0.9f, 5e-4f),
					 0);
			for (i = 0; i < elems; i++)
				if (memcmp(&w[i], &wr[i], 4) || memcmp(&v[i], &vr[i], 4))
					ck_abort_msg("%s: %ux%u element %zu: w %a v %a, scalar w %a v %a",
						     spt_core_isa_name(isa), m, n, i, (double)w[i],
						     (double)v[i], (double)wr[i], (double)vr[i]);
			/* and the same verdict on a NaN: nothing changed */
			w[elems - 1] = NAN;
			memcpy(wr, w, elems * sizeof(float));
			ck_assert_int_eq(spt_sgd_momentum_ct(w, v, ct, len, elems, 0.05f, 0.9f, 5e-4f),
					 -EDOM);
			ck_assert_mem_eq(w, wr, elems * sizeof(float));
			ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
			ck_assert_int_eq(spt_sgd_momentum_ct(w, v, ct, len, elems, 0.05f, 0.9f, 5e-4f),
					 -EDOM);
			memcpy(wr, w0, elems * sizeof(float));
			memcpy(vr, v0, elems * sizeof(float));
			ck_assert_int_eq(spt_sgd_momentum_ct(wr, vr, ct, len, elems, 0.05f, 0.9f, 5e-4f),
					 0);
		}
		free(x);
		free(w0);
		free(v0);
		free(w);
		free(v);
		free(wr);
		free(vr);
		free(ct);
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

/* bit for bit, except that a NaN matches a NaN (two NaNs' sum may take either payload) */
static int same_f32(float a, float b)
{
	return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

/*
 * The FP32 lowering's element loops (col2im with and without the ReLU mask,
 * spt_relu_mask): every ISA gives the generic path's bits, for random
 * shapes (channel counts below and above a vector, ragged ones), data with
 * +-0.0f, infinities and NaNs, and masks with +-0.0f and NaNs.
 */
START_TEST(test_lowering_matches_scalar)
{
	static const uint32_t cs[] = { 1, 2, 3, 5, 8, 16, 17, 32 };
	int it;

	for (it = 0; it < 60; it++) {
		struct spt_conv_shape sh = {
			.n = 1 + below(2), .c = cs[below(8)], .k = 1 + below(4),
			.stride = 1 + below(3),
		};
		struct spt_conv_dims d;
		float *col, *y, *dx, *ref, *out;
		size_t i, n;
		enum spt_isa isa;

		sh.pad = below(sh.k);
		sh.h = sh.k + below(12);
		sh.w = sh.k + below(12);
		ck_assert_int_eq(spt_conv_shape_check(&sh, &d), 0);
		n = d.img_elems;
		col = rand_mat(1, (uint32_t)d.col_elems, 0.1, -10, 10);
		y = rand_mat(1, (uint32_t)n, 0.4, -3, 3);
		ref = malloc(n * sizeof(float));
		out = malloc(n * sizeof(float));
		ck_assert_ptr_nonnull(ref);
		ck_assert_ptr_nonnull(out);
		for (i = 0; i < d.col_elems; i++) {
			if (i % 97 == 5)
				col[i] = i % 2 ? INFINITY : -INFINITY;
			else if (i % 89 == 7)
				col[i] = NAN;
			else if (col[i] == 0.0f && i % 2)
				col[i] = -0.0f;
		}
		for (i = 0; i < n; i++) {
			if (y[i] == 0.0f && i % 3 == 0)
				y[i] = -0.0f;
			else if (i % 41 == 3)
				y[i] = NAN;
		}
		for (int masked = 0; masked < 2; masked++) {
			ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
			ck_assert_int_eq(spt_col2im_relu(&sh, col, d.col_elems, masked ? y : NULL, ref,
							 n), 0);
			for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
				if (!spt_core_isa_supported(isa))
					continue;
				ck_assert_int_eq(spt_core_set_isa(isa), 0);
				ck_assert_int_eq(spt_col2im_relu(&sh, col, d.col_elems,
								 masked ? y : NULL, out, n), 0);
				for (i = 0; i < n && same_f32(out[i], ref[i]); i++)
					;
				if (i < n)
					ck_abort_msg("%s: col2im n %u h %u w %u c %u k %u stride %u pad %u masked %d element %zu: %a, scalar %a",
						     spt_core_isa_name(isa), sh.n, sh.h, sh.w, sh.c, sh.k,
						     sh.stride, sh.pad, masked, i, (double)out[i],
						     (double)ref[i]);
			}
		}
		/* relu_mask on a prefix of every length mod 8, exact bits (a bit operation) */
		dx = rand_mat(1, (uint32_t)n, 0.1, -130, 127);
		n -= below((uint32_t)(n < 8 ? n : 8));
		memcpy(ref, dx, n * sizeof(float));
		ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
		ck_assert_int_eq(spt_relu_mask(ref, y, n), 0);
		for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			memcpy(out, dx, n * sizeof(float));
			ck_assert_int_eq(spt_relu_mask(out, y, n), 0);
			ck_assert_mem_eq(out, ref, n * sizeof(float));
		}
		free(col);
		free(y);
		free(dx);
		free(ref);
		free(out);
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

/*
 * Stochastic pruning (the error tensors' encoding) with either rounding:
 * every ISA gives the bytes and statistics of the scalar reference
 * (encode_block: spt_prune_value per element), for ragged widths, -0.0,
 * exponents from the subnormal range to the top and thresholds at the
 * edges: 0 (nothing pruned), the smallest subnormal, equal to elements
 * (kept), 2^100 (|x|/tau underflows: everything below is dropped) and
 * FLT_MAX (survivors are promoted to +-FLT_MAX).  Whole-block widths and
 * tensors of many tiles take the AVX2 encoder's 8-block groups; capacities
 * short of the encoding are -ENOSPC on every ISA.
 */
START_TEST(test_stochastic_pruning_matches_scalar)
{
	static const int er[][2] = { { -20, 20 }, { -149, -120 }, { 100, 127 }, { -149, 127 } };
	int it;

	for (it = 0; it < 144; it++) {
		const int *e = er[(it / 2) % 4];
		uint32_t m = 1 + below(40), n = 1 + below(200), i;
		float *x = rand_mat(m, n, (it % 3) * 0.45, e[0], e[1]);
		size_t cap = spt_ct_bound(m, n), lr = 0, lg = 0;
		unsigned char *ref = malloc(cap), *got = malloc(cap);
		struct spt_tensor_stats sr, sg;
		struct spt_encode_opts o;
		enum spt_isa isa;

		if (it >= 96) {	/* whole blocks: 8-block groups, their tail, many tiles */
			free(x);
			m = it % 8 ? 1 + below(40) : 150 + below(100);
			n = 32 * (1 + below(12));
			x = rand_mat(m, n, (it % 3) * 0.45, e[0], e[1]);
			cap = spt_ct_bound(m, n);
			ref = realloc(ref, cap);
			got = realloc(got, cap);
			ck_assert(ref && got);
		}
		for (i = 0; i < m * n; i += 1 + below(9))
			if (x[i] == 0.0f)
				x[i] = -0.0f;
		spt_encode_opts_init(&o);
		o.round = it % 2 ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
		o.round_seed = 2000u + (uint64_t)it;
		o.prune.mode = SPT_PRUNE_STOCHASTIC;
		o.prune.seed = 3000u + (uint64_t)it;
		switch ((it / 8) % 6) {
		case 0:
		case 1:
			o.prune.tau = ldexpf(0.5f, (e[0] + e[1]) / 2);
			break;
		case 2:
			o.prune.tau = (it / 8) % 12 < 6 ? 0.0f : 0x1p-149f;
			break;
		case 3:
			o.prune.tau = fabsf(x[below(m * n)]);
			break;
		case 4:
			o.prune.tau = 0x1p100f;
			break;
		default:
			o.prune.tau = FLT_MAX;
			break;
		}
		encode_isa(SPT_ISA_SCALAR, x, m, n, &o, ref, &lr, &sr);
		for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			encode_isa(isa, x, m, n, &o, got, &lg, &sg);
			ck_assert_uint_eq(lg, lr);
			ck_assert_msg(!memcmp(got, ref, lr),
				      "%s: %ux%u round %d tau %a: stochastic pruning differs",
				      spt_core_isa_name(isa), m, n, o.round, (double)o.prune.tau);
			ck_assert_mem_eq(&sg, &sr, sizeof(sr));
		}
		for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
			size_t short_cap = it % 4 ? below((uint32_t)lr) : lr - 1;

			if (!spt_core_isa_supported(isa))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			ck_assert_int_eq(spt_ct_encode(x, m, n, &o, got, short_cap, &lg, NULL),
					 -ENOSPC);
		}
		free(ref);
		free(got);
		free(x);
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

/*
 * NaN or Inf anywhere, also below tau's magnitude, in a ragged block or in
 * the 8-block groups and the tail of a whole-block tensor (2 tiles):
 * -EDOM everywhere.
 */
static void non_finite_case(uint32_t m, uint32_t n, const uint32_t *where, size_t nwhere)
{
	static const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
	static const float taus[] = { 0.0f, 0.5f, FLT_MAX };
	size_t cap = spt_ct_bound(m, n), len;
	unsigned char *buf = malloc(cap);
	size_t b, t, w;

	ck_assert_ptr_nonnull(buf);
	for (b = 0; b < 4; b++)
		for (t = 0; t < 3; t++)
			for (w = 0; w < nwhere; w++) {
				float *x = rand_mat(m, n, 0.3, -3, 0);
				struct spt_encode_opts o;
				enum spt_isa isa;

				x[where[w]] = bad[b];
				spt_encode_opts_init(&o);
				o.round = (w & 1) ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
				o.prune.mode = SPT_PRUNE_STOCHASTIC;
				o.prune.tau = taus[t];
				for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
					int ret;

					if (!spt_core_isa_supported(isa))
						continue;
					ck_assert_int_eq(spt_core_set_isa(isa), 0);
					ret = spt_ct_encode(x, m, n, &o, buf, cap, &len, NULL);
					ck_assert_msg(ret == -EDOM,
						      "%s: %a at %u, tau %a: expected -EDOM, got %d",
						      spt_core_isa_name(isa), (double)bad[b], where[w],
						      (double)taus[t], ret);
				}
				free(x);
			}
	free(buf);
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}

START_TEST(test_stochastic_pruning_rejects_non_finite_on_every_isa)
{
	static const uint32_t ragged[] = { 0, 31, 32, 69, 70, 139, 209 };
	static const uint32_t whole[] = { 0, 255, 256, 1000, 2047, 2048, 2079, 2559 };

	non_finite_case(3, 70, ragged, sizeof(ragged) / sizeof(ragged[0]));
	non_finite_case(20, 128, whole, sizeof(whole) / sizeof(whole[0]));
}
END_TEST

/*
 * The lowered convolution's ragged widths (every width 1..33, 9, 16, 144,
 * 288) with rows enough for several tiles and 8-block groups spanning rows:
 * every mode (no pruning, deterministic and stochastic pruning, either
 * rounding) gives the scalar bytes and statistics; a capacity short of the
 * encoding is -ENOSPC and a NaN or Inf anywhere -EDOM on every ISA.
 */
START_TEST(test_ragged_widths_match_scalar)
{
	static const uint32_t wide[] = { 9, 16, 144, 288 };
	static const int er[][2] = { { -20, 20 }, { -149, -120 }, { -149, 127 } };
	uint32_t it;

	for (it = 0; it < 37 * 5; it++) {
		uint32_t w = it / 5, mode = it % 5;
		uint32_t n = w < 33 ? w + 1 : wide[w - 33];
		uint32_t m = it % 3 ? 1 + below(300) : 200 + below(4000 / n + 1);
		const int *e = er[it % 3];
		float *x = rand_mat(m, n, (it % 4) * 0.3, e[0], e[1]);
		size_t cap = spt_ct_bound(m, n), lr = 0, lg = 0, short_cap;
		unsigned char *ref = malloc(cap), *got = malloc(cap);
		struct spt_tensor_stats sr, sg;
		struct spt_encode_opts o;
		enum spt_isa isa;
		int r;

		ck_assert(ref && got);
		spt_encode_opts_init(&o);
		o.round = mode % 2 ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
		o.round_seed = 5000u + it;
		if (mode >= 2) {
			o.prune.mode = mode == 4 ? SPT_PRUNE_DETERMINISTIC : SPT_PRUNE_STOCHASTIC;
			o.prune.seed = 6000u + it;
			o.prune.tau = ldexpf(0.5f, (e[0] + e[1]) / 2);
		}
		encode_isa(SPT_ISA_SCALAR, x, m, n, &o, ref, &lr, &sr);
		short_cap = it % 2 ? lr - 1 : below((uint32_t)lr);
		for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			encode_isa(isa, x, m, n, &o, got, &lg, &sg);
			ck_assert_uint_eq(lg, lr);
			ck_assert_msg(!memcmp(got, ref, lr), "%s: %ux%u mode %u: encode differs",
				      spt_core_isa_name(isa), m, n, mode);
			ck_assert_mem_eq(&sg, &sr, sizeof(sr));
		}
		for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			ck_assert_int_eq(spt_ct_encode(x, m, n, &o, got, short_cap, &lg, NULL),
					 -ENOSPC);
		}
		x[below(m * n)] = it % 2 ? NAN : -INFINITY;
		for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
			if (!spt_core_isa_supported(isa))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			r = spt_ct_encode(x, m, n, &o, got, cap, &lg, NULL);
			ck_assert_msg(r == -EDOM, "%s: %ux%u mode %u: non-finite gave %d",
				      spt_core_isa_name(isa), m, n, mode, r);
		}
		free(ref);
		free(got);
		free(x);
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

START_TEST(test_unsupported_isa_is_enotsup)
{
	enum spt_isa isa;

	ck_assert_int_eq(spt_core_isa_supported(SPT_ISA_SCALAR), 1);
	for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++)
		if (!spt_core_isa_supported(isa))
			ck_assert_int_eq(spt_core_set_isa(isa), -ENOTSUP);
	ck_assert_int_eq(spt_core_set_isa((enum spt_isa)99), -ENOTSUP);
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
	ck_assert_int_eq(spt_core_get_isa(), SPT_ISA_SCALAR);
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
	ck_assert_int_ne(spt_core_get_isa(), SPT_ISA_AUTO);
	ck_assert_int_eq(spt_core_isa_supported(spt_core_get_isa()), 1);
}
END_TEST

START_TEST(test_default_isa_is_the_best_supported)
{
	enum spt_isa best = spt_core_isa_supported(SPT_ISA_AVX512) ? SPT_ISA_AVX512 :
			    spt_core_isa_supported(SPT_ISA_AVX2) ? SPT_ISA_AVX2 : SPT_ISA_SCALAR;

	ck_assert_int_eq(spt_core_get_isa(), best);
}
END_TEST

START_TEST(test_names_and_strerror)
{
	ck_assert_str_eq(spt_core_isa_name(SPT_ISA_SCALAR), "scalar");
	ck_assert_str_eq(spt_core_isa_name(SPT_ISA_AVX2), "avx2");
	ck_assert_str_eq(spt_core_isa_name(SPT_ISA_AVX512), "avx512");
	ck_assert_str_eq(spt_core_isa_name((enum spt_isa)42), "unknown");
	ck_assert_str_eq(spt_core_strerror(-EBADMSG), "malformed compressed tensor");
	ck_assert_str_eq(spt_core_strerror(-ENOTSUP), "not supported by this build or CPU");
	ck_assert_str_eq(spt_core_strerror(-12345), "unknown error");
	ck_assert_str_ne(spt_core_strerror(-EINVAL), spt_core_strerror(-EDOM));
	ck_assert_str_ne(spt_core_strerror(-ENOSPC), spt_core_strerror(-E2BIG));
	ck_assert_str_ne(spt_core_strerror(-ENOMEM), spt_core_strerror(-EINVAL));
}
END_TEST

static Suite *simd_suite(void)
{
	Suite *s = suite_create("simd");
	TCase *same_bits = tcase_create("same_bits");
	TCase *dispatch = tcase_create("dispatch");

	tcase_add_test(dispatch, test_default_isa_is_the_best_supported);
	tcase_add_test(dispatch, test_unsupported_isa_is_enotsup);
	tcase_add_test(dispatch, test_names_and_strerror);
	suite_add_tcase(s, dispatch);

	tcase_add_test(same_bits, test_simd_matches_scalar_on_random_shapes);
	tcase_add_test(same_bits, test_simd_matches_scalar_as_transpose);
	tcase_add_test(same_bits, test_simd_matches_scalar_on_lowered_conv_shapes);
	tcase_add_test(same_bits, test_simd_matches_scalar_on_every_epilogue);
	tcase_add_test(same_bits, test_simd_matches_scalar_on_aligned_shapes);
	tcase_add_test(same_bits, test_simd_matches_scalar_on_every_tile_width);
	tcase_add_test(same_bits, test_simd_fused_epilogue_and_single_block_column);
	tcase_add_test(same_bits, test_simd_matches_scalar_with_overflow_and_subnormals);
	tcase_add_test(same_bits, test_stochastic_rounding_matches_scalar);
	tcase_add_test(same_bits, test_sgd_ct_matches_scalar);
	tcase_add_test(same_bits, test_lowering_matches_scalar);
	tcase_add_test(same_bits, test_stochastic_pruning_matches_scalar);
	tcase_add_test(same_bits, test_stochastic_pruning_rejects_non_finite_on_every_isa);
	tcase_add_test(same_bits, test_simd_matches_scalar_on_every_block_kind);
	tcase_add_test(same_bits, test_ragged_widths_match_scalar);
	tcase_add_checked_fixture(same_bits, reset_gemm_mode, NULL);
	tcase_set_timeout(same_bits, 120);
	suite_add_tcase(s, same_bits);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(simd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
