// SPDX-License-Identifier: MIT
/*
 * spt_gemm_wq(): B given as FP32 gives exactly what spt_ct_encode() of it
 * followed by spt_gemm() gives (results, compressed output, statistics of
 * both, counters, errors) on every ISA, and writes nothing when it fails.
 */
#include <check.h>
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "test_util.h"

/*
 * rows x cols, zero w.p. @s; each block's exponent in [lo, hi], and w.p.
 * 1/16 a block of tiny values (a subnormal maximum: the two-step scale)
 */
static float *mat(uint32_t rows, uint32_t cols, double s, int lo, int hi)
{
	float *x = malloc((size_t)rows * cols * sizeof(float) + 1);
	uint32_t r, c;

	ck_assert_ptr_nonnull(x);
	for (r = 0; r < rows; r++) {
		int e = 0;

		for (c = 0; c < cols; c++) {
			if (c % 32 == 0)
				e = below(16) == 0 ? -135 - (int)below(10) :
				    lo + (int)below((uint32_t)(hi - lo + 1));
			x[(size_t)r * cols + c] = unit() < s ? 0.0f :
						  ldexpf((float)(unit() * 2 - 1), e);
		}
	}
	return x;
}

/* What one call gave; the buffers start as a fill pattern. */
struct res {
	int err;
	float *y;
	unsigned char *ct;
	size_t ct_len;
	struct spt_tensor_stats ost, wst;
	struct spt_counters cnt;
};

struct wcase {
	enum spt_pass pass;
	const void *a;
	size_t a_len;
	const float *w;
	uint32_t m, n, k;
	struct spt_encode_opts wo;
	const struct spt_gemm_epilogue *ep;
	int want_y, want_ct;
	size_t ct_cap;		/* 0: the bound */
	struct spt_encode_opts oenc;
};

static void res_init(struct res *r, const struct wcase *c)
{
	size_t ny = (size_t)c->m * c->n + 1, nc = spt_ct_bound(c->m, c->n) + 64;

	memset(r, 0xa5, sizeof(*r));
	r->y = malloc(ny * sizeof(float));
	r->ct = malloc(nc);
	ck_assert_ptr_nonnull(r->y);
	ck_assert_ptr_nonnull(r->ct);
	memset(r->y, 0x5a, ny * sizeof(float));
	memset(r->ct, 0x5a, nc);
}

static void res_free(struct res *r)
{
	free(r->y);
	free(r->ct);
}

static void out_of(const struct wcase *c, struct res *r, struct spt_gemm_out *out)
{
	memset(out, 0, sizeof(*out));
	out->enc = c->oenc;
	out->y = c->want_y ? r->y : NULL;
	out->ct = c->want_ct ? r->ct : NULL;
	out->ct_cap = c->ct_cap ? c->ct_cap : spt_ct_bound(c->m, c->n);
}

/* The definition: encode into a buffer of the bound, then the product. */
static void by_two_calls(const struct wcase *c, struct res *r)
{
	size_t cap = spt_ct_bound(c->n, c->k), len = 0;
	void *b = malloc(cap ? cap : 1);
	struct spt_gemm_out out;

	ck_assert_ptr_nonnull(b);
	res_init(r, c);
	out_of(c, r, &out);
	r->err = spt_ct_encode(c->w, c->n, c->k, &c->wo, b, cap, &len, &r->wst);
	if (!r->err)
		r->err = spt_gemm(c->pass, c->a, c->a_len, b, len, c->ep, &out, &r->cnt);
	if (!r->err) {
		r->ct_len = out.ct_len;
		r->ost = out.stats;
	}
	free(b);
}

static void by_wq(const struct wcase *c, struct res *r)
{
	struct spt_gemm_out out;

	res_init(r, c);
	out_of(c, r, &out);
	r->err = spt_gemm_wq(c->pass, c->a, c->a_len, c->w, c->n, c->k, &c->wo, &r->wst, c->ep,
			     &out, &r->cnt);
	if (!r->err) {
		r->ct_len = out.ct_len;
		r->ost = out.stats;
	}
}

/* Every output byte the same, the untouched ones included. */
static void same(const struct wcase *c, const char *what)
{
	size_t ny = ((size_t)c->m * c->n + 1) * sizeof(float);
	size_t nc = spt_ct_bound(c->m, c->n) + 64;
	struct res ref, got;

	by_two_calls(c, &ref);
	by_wq(c, &got);
	ck_assert_msg(got.err == ref.err, "%s %s %ux%ux%u: error %d, two calls %d",
		      spt_core_isa_name(spt_core_get_isa()), what, c->m, c->k, c->n, got.err,
		      ref.err);
	ck_assert_msg(!memcmp(got.y, ref.y, ny), "%s %s %ux%ux%u: y differs",
		      spt_core_isa_name(spt_core_get_isa()), what, c->m, c->k, c->n);
	ck_assert_msg(!memcmp(got.ct, ref.ct, nc), "%s %s %ux%ux%u: compressed output differs",
		      spt_core_isa_name(spt_core_get_isa()), what, c->m, c->k, c->n);
	ck_assert_msg(!memcmp(&got.wst, &ref.wst, sizeof(got.wst)),
		      "%s %s %ux%ux%u: B's statistics differ (nonzeros %llu, %llu)",
		      spt_core_isa_name(spt_core_get_isa()), what, c->m, c->k, c->n,
		      (unsigned long long)got.wst.nonzeros, (unsigned long long)ref.wst.nonzeros);
	ck_assert_msg(!memcmp(&got.cnt, &ref.cnt, sizeof(got.cnt)),
		      "%s %s %ux%ux%u: counters differ (bytes read %llu, %llu)",
		      spt_core_isa_name(spt_core_get_isa()), what, c->m, c->k, c->n,
		      (unsigned long long)got.cnt.bytes_read,
		      (unsigned long long)ref.cnt.bytes_read);
	ck_assert_uint_eq(got.ct_len, ref.ct_len);
	ck_assert(!memcmp(&got.ost, &ref.ost, sizeof(got.ost)));
	res_free(&ref);
	res_free(&got);
}

/* A forward case of A (@a, @al bytes) times @w (@n x @k), both outputs, no options. */
static void wcase_init(struct wcase *c, const void *a, size_t al, const float *w, uint32_t m,
		       uint32_t n, uint32_t k)
{
	memset(c, 0, sizeof(*c));
	c->pass = SPT_PASS_FWD;
	c->a = a;
	c->a_len = al;
	c->w = w;
	c->m = m;
	c->n = n;
	c->k = k;
	c->want_ct = c->want_y = 1;
	spt_encode_opts_init(&c->wo);
	spt_encode_opts_init(&c->oenc);
}

static const enum spt_isa isas[] = { SPT_ISA_SCALAR, SPT_ISA_AVX2, SPT_ISA_AVX512 };

static const uint32_t shapes[][3] = {	/* m, n, k */
	{ 64, 512, 784 }, { 1, 1, 1 }, { 5, 7, 33 }, { 8, 8, 32 }, { 17, 70, 96 },
	{ 3, 130, 300 }, { 40, 64, 31 }, { 33, 9, 64 }, { 64, 72, 100 }, { 2, 200, 257 },
	{ 31, 16, 16 }, { 12, 65, 520 }, { 4, 16, 4100 },
};

/* B's options: 0 none, 1 deterministic, 2 stochastic pruning, 3 stochastic rounding */
static void wopts(struct spt_encode_opts *o, int kind)
{
	spt_encode_opts_init(o);
	if (kind == 1 || kind == 2) {
		o->prune.mode = kind == 1 ? SPT_PRUNE_DETERMINISTIC : SPT_PRUNE_STOCHASTIC;
		o->prune.tau = 0.2f;
		o->prune.seed = 5;
	}
	if (kind == 3) {
		o->round = SPT_ROUND_STOCHASTIC;
		o->round_seed = 9;
	}
}

START_TEST(test_wq_matches_encode_then_gemm)
{
	enum spt_isa old = spt_core_get_isa();
	size_t si, ii;

	for (ii = 0; ii < sizeof(isas) / sizeof(isas[0]); ii++) {
		if (spt_core_set_isa(isas[ii]))
			continue;	/* not on this CPU */
		for (si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
			uint32_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
			float *x = mat(m, k, 0.5, -3, 2), *w = mat(n, k, 0.2, -6, 1);
			float *bias = mat(1, n, 0.0, -2, 0);
			struct spt_gemm_epilogue ep;
			struct wcase c;
			size_t al;
			void *a = test_encode(x, m, k, &al);
			int kind, e;

			wcase_init(&c, a, al, w, m, n, k);
			for (kind = 0; kind < 4; kind++)
				for (e = 0; e < 3; e++) {
					memset(&ep, 0, sizeof(ep));
					if (e == 1) {
						ep.bias = bias;
						ep.act = SPT_ACT_RELU;
					}
					if (e == 2)
						ep.scale = 0.5f;
					wopts(&c.wo, kind);
					c.ep = &ep;
					c.want_ct = e != 2;
					c.want_y = e != 0;
					same(&c, "same results");
				}
			/* B mostly zeros: the zero counts of many blocks */
			free(w);
			w = mat(n, k, 0.97, -6, 1);
			c.w = w;
			c.ep = NULL;
			c.want_y = c.want_ct = 1;
			for (kind = 0; kind < 2; kind++) {
				wopts(&c.wo, kind);
				same(&c, "sparse B");
			}
			/* the output pruned too, and no epilogue at all */
			c.oenc.prune.mode = SPT_PRUNE_DETERMINISTIC;
			c.oenc.prune.tau = 0.05f;
			c.ep = NULL;
			c.want_y = c.want_ct = 1;
			wopts(&c.wo, 1);
			same(&c, "pruned output");
			free(a);
			free(x);
			free(w);
			free(bias);
		}
	}
	ck_assert_int_eq(spt_core_set_isa(old), 0);
}
END_TEST

/* The conversions under a rounding mode other than nearest (the SIMD paths read MXCSR). */
START_TEST(test_wq_matches_under_other_rounding_modes)
{
	static const int modes[] = { FE_UPWARD, FE_TOWARDZERO, FE_DOWNWARD };
	float *x = mat(20, 300, 0.5, -3, 2), *w = mat(90, 300, 0.2, -6, 1);
	struct wcase c;
	size_t al, mi;
	void *a = test_encode(x, 20, 300, &al);

	wcase_init(&c, a, al, w, 20, 90, 300);
	for (mi = 0; mi < sizeof(modes) / sizeof(modes[0]); mi++) {
		ck_assert_int_eq(fesetround(modes[mi]), 0);
		wopts(&c.wo, 0);
		same(&c, "rounding mode");
		wopts(&c.wo, 1);
		same(&c, "rounding mode, pruned");
	}
	fesetround(FE_TONEAREST);
	free(a);
	free(x);
	free(w);
}
END_TEST

/*
 * Bad input: the two calls' error, in their order, and nothing written
 * (same() compares every output byte with the fill pattern the two calls
 * left, and those write nothing before an error either).
 */
START_TEST(test_wq_errors_are_the_two_calls_errors)
{
	const uint32_t m = 9, n = 70, k = 100;
	float *x = mat(m, k, 0.5, -3, 2), *w = mat(n, k, 0.2, -6, 1);
	static const size_t bad_at[] = { 0, 99, 31 * 100 + 96, 69 * 100 + 99, 40 * 100 + 7 };
	struct spt_gemm_epilogue ep;
	struct wcase c;
	size_t al, i;
	void *a = test_encode(x, m, k, &al), *a_bad = malloc(al);
	float keep;

	ck_assert_ptr_nonnull(a_bad);
	memcpy(a_bad, a, al);
	((unsigned char *)a_bad)[0] ^= 0xff;	/* the magic */
	memset(&ep, 0, sizeof(ep));
	wcase_init(&c, a, al, w, m, n, k);
	c.ep = &ep;

	/* a NaN or Inf in B, anywhere (a ragged block, the last row): -EDOM */
	for (i = 0; i < sizeof(bad_at) / sizeof(bad_at[0]); i++) {
		keep = w[bad_at[i]];
		w[bad_at[i]] = i % 2 ? INFINITY : NAN;
		same(&c, "non-finite B");
		w[bad_at[i]] = keep;
	}
	{
		struct res r;

		w[bad_at[2]] = NAN;
		by_wq(&c, &r);
		ck_assert_int_eq(r.err, -EDOM);
		res_free(&r);
		/* with a bad A too: the encoder's error comes first */
		c.a = a_bad;
		by_wq(&c, &r);
		ck_assert_int_eq(r.err, -EDOM);
		res_free(&r);
		w[bad_at[2]] = keep;
		by_wq(&c, &r);
		ck_assert_int_eq(r.err, -EBADMSG);
		res_free(&r);
		same(&c, "bad A");
		c.a = a;
	}
	/* shapes and arguments */
	c.k = k - 1;
	same(&c, "k other than A's");
	c.k = k;
	c.n = 0;
	same(&c, "no rows");
	c.n = n;
	c.w = NULL;
	same(&c, "no B");
	c.w = w;
	c.wo.round = (enum spt_round)7;
	same(&c, "bad rounding");
	wopts(&c.wo, 1);
	c.wo.prune.tau = -1.0f;
	same(&c, "negative tau");
	c.wo.prune.tau = NAN;
	same(&c, "NaN tau");
	wopts(&c.wo, 0);
	ep.act = (enum spt_act)9;
	same(&c, "bad activation");
	ep.act = SPT_ACT_RELU_GRAD;	/* and no mask */
	same(&c, "gradient mask missing");
	ep.act = SPT_ACT_NONE;
	c.want_y = c.want_ct = 0;
	same(&c, "no output");
	c.want_ct = 1;
	c.ct_cap = 100;
	same(&c, "output too small");
	c.ct_cap = 0;
	c.want_y = 1;
	c.a_len = al - 1;
	same(&c, "truncated A");
	c.a_len = al;
	same(&c, "good again");
	free(a);
	free(a_bad);
	free(x);
	free(w);
}
END_TEST

static Suite *wq_suite(void)
{
	Suite *s = suite_create("gemm_wq");
	TCase *tc = tcase_create("same_as_two_calls");

	tcase_add_test(tc, test_wq_matches_encode_then_gemm);
	tcase_add_test(tc, test_wq_matches_under_other_rounding_modes);
	tcase_add_test(tc, test_wq_errors_are_the_two_calls_errors);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wq_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
