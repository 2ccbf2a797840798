// SPDX-License-Identifier: MIT
/*
 * Training-step lowering ops of the core: im2col, col2im and col2im fused
 * with the ReLU mask for a general k x k window (over a grid of shapes too), column sums of a compressed tensor, the finite check and
 * the FP32 ReLU mask, each against a straightforward dense reference, bit for bit, and their
 * argument checks.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"

static uint64_t rng_state;

static float rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((int32_t)(rng_state >> 33) % 20001 - 10000) / 997.0f;
}

static float *rnd_array(size_t n)
{
	float *p = malloc(n * sizeof(float) + 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = rnd();
	return p;
}

/* ---- dense references --------------------------------------------------- */

static float ref_pixel(const struct spt_conv_shape *s, const float *img, long b, long y,
		       long x, long ch)
{
	if (y < 0 || x < 0 || y >= (long)s->h || x >= (long)s->w)
		return 0.0f;
	return img[((b * (long)s->h + y) * (long)s->w + x) * (long)s->c + ch];
}

static void ref_im2col(const struct spt_conv_shape *s, long oh, long ow, const float *img,
		       float *col)
{
	long b, oy, ox, ky, kx, ch, r = 0, K = (long)s->k * s->k * s->c;

	for (b = 0; b < (long)s->n; b++)
		for (oy = 0; oy < oh; oy++)
			for (ox = 0; ox < ow; ox++, r++)
				for (ky = 0; ky < (long)s->k; ky++)
					for (kx = 0; kx < (long)s->k; kx++)
						for (ch = 0; ch < (long)s->c; ch++)
							col[r * K + (ky * s->k + kx) * s->c + ch] =
								ref_pixel(s, img, b,
									  oy * s->stride + ky - s->pad,
									  ox * s->stride + kx - s->pad, ch);
}

static void ref_col2im(const struct spt_conv_shape *s, long oh, long ow, const float *col,
		       float *img)
{
	long b, oy, ox, ky, kx, ch, r = 0, K = (long)s->k * s->k * s->c;
	long e = (long)s->n * s->h * s->w * s->c;

	for (b = 0; b < e; b++)
		img[b] = 0.0f;
	for (b = 0; b < (long)s->n; b++)
		for (oy = 0; oy < oh; oy++)
			for (ox = 0; ox < ow; ox++, r++)
				for (ky = 0; ky < (long)s->k; ky++)
					for (kx = 0; kx < (long)s->k; kx++) {
						long y = oy * s->stride + ky - s->pad;
						long x = ox * s->stride + kx - s->pad;

						if (y < 0 || x < 0 || y >= (long)s->h || x >= (long)s->w)
							continue;
						for (ch = 0; ch < (long)s->c; ch++)
							img[((b * (long)s->h + y) * (long)s->w + x) *
							    (long)s->c + ch] +=
								col[r * K + (ky * s->k + kx) * s->c + ch];
					}
}

static const struct spt_conv_shape shapes[] = {
	/* n, h, w, c, k, stride, pad */
	{ 2, 8, 8, 3, 3, 1, 1 },	/* the runtime's 3x3 same convolution */
	{ 3, 9, 7, 5, 3, 2, 1 },	/* strided, odd sizes */
	{ 1, 5, 5, 1, 1, 1, 0 },	/* 1x1 */
	{ 2, 11, 6, 4, 5, 2, 2 },
	{ 1, 4, 4, 2, 4, 3, 3 },	/* pad = k - 1, windows mostly padding */
	{ 1, 7, 9, 3, 3, 4, 0 },	/* stride > k: pixels no window reads */
	{ 1, 16, 16, 1, 16, 16, 0 },	/* k and stride at their maximum */
	{ 2, 3, 2, 33, 2, 1, 1 },
	{ 2, 28, 28, 1, 3, 1, 1 },	/* the CNN preset's layers: one channel, */
	{ 1, 14, 14, 16, 3, 2, 1 },	/* runs of >= 16 floats, */
	{ 1, 3, 2, 2, 3, 1, 2 },	/* windows wider than the image */
};

START_TEST(test_shape_dims)
{
	struct spt_conv_shape s = { 2, 8, 8, 3, 3, 1, 1 };
	struct spt_conv_dims d;

	ck_assert_int_eq(spt_conv_shape_check(&s, &d), 0);
	ck_assert_uint_eq(d.oh, 8);
	ck_assert_uint_eq(d.ow, 8);
	ck_assert_uint_eq(d.rows, 128);
	ck_assert_uint_eq(d.cols, 27);
	ck_assert_uint_eq(d.img_elems, 384);
	ck_assert_uint_eq(d.col_elems, 128 * 27);
	ck_assert_int_eq(spt_conv_shape_check(&s, NULL), 0);
	s = (struct spt_conv_shape){ 3, 9, 7, 5, 3, 2, 1 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), 0);
	ck_assert_uint_eq(d.oh, 5);	/* (9 + 2 - 3) / 2 + 1 */
	ck_assert_uint_eq(d.ow, 4);	/* (7 + 2 - 3) / 2 + 1 */
	s = (struct spt_conv_shape){ 1, 2, 3, 1, 4, 1, 1 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), 0);	/* h + 2 pad == k */
	ck_assert_uint_eq(d.oh, 1);
	ck_assert_uint_eq(d.ow, 2);
}
END_TEST

START_TEST(test_shape_rejects_bad)
{
	const struct spt_conv_shape ok = { 2, 8, 8, 3, 3, 1, 1 };
	struct spt_conv_shape s;
	struct spt_conv_dims d;
	uint32_t *fields[] = { &s.n, &s.h, &s.w, &s.c, &s.k, &s.stride };
	size_t i;

	ck_assert_int_eq(spt_conv_shape_check(NULL, &d), -EINVAL);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		s = ok;
		*fields[i] = 0;
		ck_assert_msg(spt_conv_shape_check(&s, &d) == -EINVAL, "field %zu = 0", i);
	}
	s = ok;
	s.k = 17;
	s.pad = 0;
	s.h = s.w = 32;
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
	s = ok;
	s.stride = 17;
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
	s = ok;
	s.pad = 3;		/* pad == k */
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
	s = ok;
	s.pad = UINT32_MAX;
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
	s = (struct spt_conv_shape){ 1, 2, 8, 1, 5, 1, 1 };	/* h + 2 pad < k */
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
	s = (struct spt_conv_shape){ 1, 8, 2, 1, 5, 1, 1 };	/* w + 2 pad < k */
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -EINVAL);
}
END_TEST

START_TEST(test_shape_overflow)
{
	struct spt_conv_shape s = { UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 1, 1, 0 };
	struct spt_conv_dims d;

	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -E2BIG);
	/* oh beyond 32 bits: h = 2^32 - 1, pad 15, k 16, stride 1 */
	s = (struct spt_conv_shape){ 1, UINT32_MAX, 1, 1, 16, 1, 15 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -E2BIG);
	/* rows * cols beyond 64 bits */
	s = (struct spt_conv_shape){ UINT32_MAX, 1u << 20, 1u << 20, UINT32_MAX, 16, 1, 15 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -E2BIG);
	/* fits in 64 bits, but not as bytes */
	s = (struct spt_conv_shape){ 1u << 31, 1u << 31, 1, 1, 1, 1, 0 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), -E2BIG);
	/* big but representable: only the sizes are computed */
	s = (struct spt_conv_shape){ 1u << 20, 1u << 10, 1u << 10, 1, 1, 1, 0 };
	ck_assert_int_eq(spt_conv_shape_check(&s, &d), 0);
	ck_assert_uint_eq(d.img_elems, 1ull << 40);
}
END_TEST

START_TEST(test_im2col_matches_reference)
{
	size_t i;

	rng_state = 1;
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct spt_conv_shape *s = &shapes[i];
		struct spt_conv_dims d;
		float *img, *col, *ref;

		ck_assert_int_eq(spt_conv_shape_check(s, &d), 0);
		img = rnd_array(d.img_elems);
		col = rnd_array(d.col_elems);	/* garbage: every element is written */
		ref = rnd_array(d.col_elems);
		ref_im2col(s, d.oh, d.ow, img, ref);
		ck_assert_int_eq(spt_im2col(s, img, d.img_elems, col, d.col_elems), 0);
		ck_assert_msg(memcmp(col, ref, d.col_elems * sizeof(float)) == 0, "shape %zu", i);
		free(img);
		free(col);
		free(ref);
	}
}
END_TEST

START_TEST(test_col2im_matches_reference)
{
	size_t i;

	rng_state = 2;
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct spt_conv_shape *s = &shapes[i];
		struct spt_conv_dims d;
		float *img, *col, *ref;

		ck_assert_int_eq(spt_conv_shape_check(s, &d), 0);
		col = rnd_array(d.col_elems);
		img = rnd_array(d.img_elems);	/* garbage: set to zero first */
		ref = rnd_array(d.img_elems);
		ref_col2im(s, d.oh, d.ow, col, ref);
		ck_assert_int_eq(spt_col2im(s, col, d.col_elems, img, d.img_elems), 0);
		ck_assert_msg(memcmp(img, ref, d.img_elems * sizeof(float)) == 0, "shape %zu", i);
		free(img);
		free(col);
		free(ref);
	}
}
END_TEST

/* <im2col(x), y> == <x, col2im(y)>: col2im is the adjoint (up to rounding). */
START_TEST(test_col2im_is_the_adjoint)
{
	size_t i, j;

	rng_state = 3;
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct spt_conv_shape *s = &shapes[i];
		struct spt_conv_dims d;
		float *x, *y, *cx, *ty;
		double a = 0, b = 0, mag = 0;

		ck_assert_int_eq(spt_conv_shape_check(s, &d), 0);
		x = rnd_array(d.img_elems);
		y = rnd_array(d.col_elems);
		cx = rnd_array(d.col_elems);
		ty = rnd_array(d.img_elems);
		ck_assert_int_eq(spt_im2col(s, x, d.img_elems, cx, d.col_elems), 0);
		ck_assert_int_eq(spt_col2im(s, y, d.col_elems, ty, d.img_elems), 0);
		for (j = 0; j < d.col_elems; j++) {
			a += (double)cx[j] * y[j];
			mag += fabs((double)cx[j] * y[j]);
		}
		for (j = 0; j < d.img_elems; j++)
			b += (double)x[j] * ty[j];
		ck_assert_msg(fabs(a - b) <= 1e-5 * mag + 1e-9, "shape %zu: %g vs %g", i, a, b);
		free(x);
		free(y);
		free(cx);
		free(ty);
	}
}
END_TEST

START_TEST(test_lowering_rejects_bad)
{
	struct spt_conv_shape s = { 1, 4, 4, 2, 3, 1, 1 }, bad = s;
	float img[32], col[16 * 18];

	memset(img, 0, sizeof(img));
	memset(col, 0, sizeof(col));
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 16 * 18), 0);
	ck_assert_int_eq(spt_col2im(&s, col, 16 * 18, img, 32), 0);
	ck_assert_int_eq(spt_im2col(NULL, img, 32, col, 16 * 18), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, NULL, 32, col, 16 * 18), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 32, NULL, 16 * 18), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 31, col, 16 * 18), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 16 * 18 + 1), -EINVAL);
	ck_assert_int_eq(spt_col2im(NULL, col, 16 * 18, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im(&s, NULL, 16 * 18, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im(&s, col, 16 * 18, NULL, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im(&s, col, 16 * 18 - 1, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im(&s, col, 16 * 18, img, 33), -EINVAL);
	bad.pad = 3;
	ck_assert_int_eq(spt_im2col(&bad, img, 32, col, 16 * 18), -EINVAL);
	ck_assert_int_eq(spt_col2im(&bad, col, 16 * 18, img, 32), -EINVAL);
	bad = (struct spt_conv_shape){ UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 1, 1, 0 };
	ck_assert_int_eq(spt_im2col(&bad, img, 32, col, 16 * 18), -E2BIG);
	ck_assert_int_eq(spt_col2im(&bad, col, 16 * 18, img, 32), -E2BIG);
}
END_TEST

/* ---- the fast paths against the references, over a grid of shapes -------- */

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

/* bit for bit, except that any NaN matches any NaN (two NaNs' sum takes either payload) */
static int same_float(float a, float b)
{
	return fbits(a) == fbits(b) || (isnan(a) && isnan(b));
}

/*
 * Random data with the specials sprinkled in: -0.0f and +0.0f, and with
 * @nonfinite some NaNs and infinities.
 */
static float *special_array(size_t n, int nonfinite)
{
	float *p = rnd_array(n);
	size_t i;

	for (i = 0; i < n; i++) {
		switch (rng_state >> 60) {
		case 0:
			p[i] = -0.0f;
			break;
		case 1:
			p[i] = 0.0f;
			break;
		case 2:
			if (nonfinite && i % 13 == 0)
				p[i] = i % 2 ? NAN : -INFINITY;
			else if (nonfinite && i % 17 == 0)
				p[i] = INFINITY;
			break;
		}
		(void)rnd();
	}
	return p;
}

/* A ReLU output: about half +0.0f, some -0.0f and with @nonfinite a few NaNs. */
static float *relu_array(size_t n, int nonfinite)
{
	float *p = rnd_array(n);
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] < 0.0f)
			p[i] = i % 5 ? 0.0f : -0.0f;
		if (nonfinite && i % 29 == 0)
			p[i] = NAN;
	}
	return p;
}

/* n in {1, 2}, h, w odd and even, C in {1, 2, 3, 16, 32}, k 3, stride 1/2, pad 0/1 */
static size_t grid_shape(size_t i, struct spt_conv_shape *s)
{
	static const uint32_t cs[] = { 1, 2, 3, 16, 32 };
	static const uint32_t hw[][2] = { { 7, 9 }, { 8, 8 }, { 5, 3 }, { 14, 14 } };
	size_t n = 5 * 4 * 2 * 2;

	if (i >= n)
		return n;
	*s = (struct spt_conv_shape){
		.n = 1 + (uint32_t)(i % 2), .h = hw[i / 20 % 4][0], .w = hw[i / 20 % 4][1],
		.c = cs[i % 5], .k = 3, .stride = 1 + (uint32_t)(i / 5 % 2),
		.pad = (uint32_t)(i / 10 % 2),
	};
	return n;
}

START_TEST(test_im2col_grid_matches_reference)
{
	struct spt_conv_shape sh;
	size_t i, j, n = grid_shape(0, &sh);

	rng_state = 21;
	for (i = 0; i < n; i++) {
		struct spt_conv_dims d;
		float *img, *col, *ref;

		grid_shape(i, &sh);
		ck_assert_int_eq(spt_conv_shape_check(&sh, &d), 0);
		img = special_array(d.img_elems, 1);
		col = rnd_array(d.col_elems);
		ref = rnd_array(d.col_elems);
		ref_im2col(&sh, d.oh, d.ow, img, ref);
		ck_assert_int_eq(spt_im2col(&sh, img, d.img_elems, col, d.col_elems), 0);
		/* a copy: every bit, NaN payloads and zero signs included */
		for (j = 0; j < d.col_elems && fbits(col[j]) == fbits(ref[j]); j++)
			;
		if (j < d.col_elems)
			ck_abort_msg("shape %zu (c %u stride %u pad %u) element %zu: %08x, want %08x",
				     i, sh.c, sh.stride, sh.pad, j, (unsigned)fbits(col[j]),
				     (unsigned)fbits(ref[j]));
		free(img);
		free(col);
		free(ref);
	}
}
END_TEST

/* col2im_relu == col2im then relu_mask, and col2im_relu(NULL) == col2im == the reference */
static void check_col2im_relu(const struct spt_conv_shape *sh, size_t i, int nonfinite)
{
	struct spt_conv_dims d;
	float *col, *y, *img, *ref;
	size_t j, zeroed = 0;

	ck_assert_int_eq(spt_conv_shape_check(sh, &d), 0);
	col = special_array(d.col_elems, nonfinite);
	y = relu_array(d.img_elems, nonfinite);
	img = rnd_array(d.img_elems);	/* garbage: every element is written */
	ref = rnd_array(d.img_elems);
	ref_col2im(sh, d.oh, d.ow, col, ref);
	ck_assert_int_eq(spt_col2im_relu(sh, col, d.col_elems, NULL, img, d.img_elems), 0);
	for (j = 0; j < d.img_elems && same_float(img[j], ref[j]); j++)
		;
	if (j < d.img_elems)
		ck_abort_msg("shape %zu (c %u stride %u pad %u), no mask, element %zu: %08x, want %08x",
			     i, sh->c, sh->stride, sh->pad, j, (unsigned)fbits(img[j]),
			     (unsigned)fbits(ref[j]));
	ck_assert_int_eq(spt_col2im(sh, col, d.col_elems, img, d.img_elems), 0);
	for (j = 0; j < d.img_elems && same_float(img[j], ref[j]); j++)
		;
	ck_assert_uint_eq(j, d.img_elems);
	/* the mask: +0.0f (all bits zero) where y is +-0.0f, else the sum's bits */
	for (j = 0; j < d.img_elems; j++) {
		if (y[j] == 0.0f) {
			zeroed += fbits(ref[j]) != 0;
			ref[j] = 0.0f;
		}
	}
	ck_assert_uint_gt(zeroed, 0);
	ck_assert_int_eq(spt_col2im_relu(sh, col, d.col_elems, y, img, d.img_elems), 0);
	for (j = 0; j < d.img_elems && same_float(img[j], ref[j]); j++)
		;
	if (j < d.img_elems)
		ck_abort_msg("shape %zu (c %u stride %u pad %u), masked, element %zu: %08x, want %08x",
			     i, sh->c, sh->stride, sh->pad, j, (unsigned)fbits(img[j]),
			     (unsigned)fbits(ref[j]));
	/* the same as the two passes */
	ck_assert_int_eq(spt_col2im(sh, col, d.col_elems, ref, d.img_elems), 0);
	ck_assert_int_eq(spt_relu_mask(ref, y, d.img_elems), 0);
	ck_assert(memcmp(img, ref, d.img_elems * sizeof(float)) == 0);
	free(col);
	free(y);
	free(img);
	free(ref);
}

START_TEST(test_col2im_relu_grid_matches_reference)
{
	struct spt_conv_shape sh;
	size_t i, n = grid_shape(0, &sh);

	rng_state = 22;
	for (i = 0; i < n; i++) {
		grid_shape(i, &sh);
		check_col2im_relu(&sh, i, 0);
		check_col2im_relu(&sh, i, 1);
	}
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		check_col2im_relu(&shapes[i], 100 + i, 0);
		check_col2im_relu(&shapes[i], 100 + i, 1);
	}
}
END_TEST

/* a NaN or infinity in one patch element reaches its pixel, unless masked */
START_TEST(test_col2im_relu_nonfinite_passthrough)
{
	const struct spt_conv_shape sh = { 1, 4, 4, 2, 3, 1, 1 };
	struct spt_conv_dims d;
	float col[16 * 18], y[32], img[32];
	size_t j;

	ck_assert_int_eq(spt_conv_shape_check(&sh, &d), 0);
	memset(col, 0, sizeof(col));
	for (j = 0; j < 32; j++)
		y[j] = 1.0f;
	/* patch row 5 = output (1, 1), window centre (ky 1, kx 1) = pixel (1, 1) */
	col[5 * 18 + (1 * 3 + 1) * 2 + 0] = NAN;
	col[5 * 18 + (1 * 3 + 1) * 2 + 1] = -INFINITY;
	ck_assert_int_eq(spt_col2im_relu(&sh, col, d.col_elems, y, img, d.img_elems), 0);
	for (j = 0; j < 32; j++) {
		if (j == (1 * 4 + 1) * 2)
			ck_assert(isnan(img[j]));
		else if (j == (1 * 4 + 1) * 2 + 1)
			ck_assert(isinf(img[j]) && img[j] < 0);
		else	/* +0.0f + +0.0f ... */
			ck_assert_uint_eq(fbits(img[j]), 0);
	}
	y[(1 * 4 + 1) * 2] = -0.0f;
	y[(1 * 4 + 1) * 2 + 1] = 0.0f;
	ck_assert_int_eq(spt_col2im_relu(&sh, col, d.col_elems, y, img, d.img_elems), 0);
	for (j = 0; j < 32; j++)
		ck_assert_uint_eq(fbits(img[j]), 0);
	/* -0.0f everywhere sums to +0.0f (the sum starts at +0.0f), as col2im does */
	for (j = 0; j < 16 * 18; j++)
		col[j] = -0.0f;
	ck_assert_int_eq(spt_col2im_relu(&sh, col, d.col_elems, NULL, img, d.img_elems), 0);
	for (j = 0; j < 32; j++)
		ck_assert_uint_eq(fbits(img[j]), 0);
}
END_TEST

START_TEST(test_lowering_rejects_overlap)
{
	const struct spt_conv_shape s = { 1, 4, 4, 2, 3, 1, 1 };	/* img 32, col 288 */
	float *buf = calloc(32 + 288 + 32, sizeof(float)), *y = calloc(32, sizeof(float));
	float *img, *col;
	size_t j;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(y);
	for (j = 0; j < 32 + 288 + 32; j++)
		buf[j] = (float)j + 0.5f;
	/* img inside col, col overlapping img's end, and the reverse */
	col = buf;
	img = buf + 100;
	ck_assert_int_eq(spt_col2im(&s, col, 288, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, y, img, 32), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 288), -EINVAL);
	img = buf + 287;
	ck_assert_int_eq(spt_col2im(&s, col, 288, img, 32), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 288), -EINVAL);
	img = buf;
	col = buf + 31;
	ck_assert_int_eq(spt_col2im(&s, col, 288, img, 32), -EINVAL);
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 288), -EINVAL);
	/* the mask overlapping the image: the same array, or shifted by one */
	img = buf + 288;
	col = buf;
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, img, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, img + 1, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, img - 1, img, 32), -EINVAL);
	/* nothing was written by a rejected call */
	for (j = 0; j < 32 + 288 + 32; j++)
		ck_assert_msg(buf[j] == (float)j + 0.5f, "element %zu written", j);
	/* adjacent buffers do not overlap */
	ck_assert_int_eq(spt_col2im(&s, col, 288, img, 32), 0);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, img + 32, img, 32), 0);
	ck_assert_int_eq(spt_im2col(&s, img, 32, col, 288), 0);
	free(buf);
	free(y);
}
END_TEST

START_TEST(test_col2im_relu_rejects_bad)
{
	struct spt_conv_shape s = { 1, 4, 4, 2, 3, 1, 1 }, bad = s;
	float img[32], col[16 * 18], y[32];

	memset(col, 0, sizeof(col));
	memset(y, 0, sizeof(y));
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, y, img, 32), 0);
	ck_assert_int_eq(spt_col2im_relu(NULL, col, 288, y, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, NULL, 288, y, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, y, NULL, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 287, y, img, 32), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, y, img, 31), -EINVAL);
	ck_assert_int_eq(spt_col2im_relu(&s, col, 288, y, img, 33), -EINVAL);
	bad.k = 0;
	ck_assert_int_eq(spt_col2im_relu(&bad, col, 288, y, img, 32), -EINVAL);
	bad = (struct spt_conv_shape){ UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 1, 1, 0 };
	ck_assert_int_eq(spt_col2im_relu(&bad, col, 288, y, img, 32), -E2BIG);
}
END_TEST

/* ---- column sums ---------------------------------------------------------- */

static void *encode_pruned(const float *x, uint32_t rows, uint32_t cols, float tau,
			   size_t *len)
{
	struct spt_encode_opts o;
	size_t cap = spt_ct_bound(rows, cols);
	void *ct = malloc(cap);

	ck_assert_ptr_nonnull(ct);
	spt_encode_opts_init(&o);
	o.prune.mode = tau > 0 ? SPT_PRUNE_DETERMINISTIC : SPT_PRUNE_OFF;
	o.prune.tau = tau;
	ck_assert_int_eq(spt_ct_encode(x, rows, cols, &o, ct, cap, len, NULL), 0);
	return ct;
}

static void colsum_case(uint32_t rows, uint32_t cols, float tau)
{
	size_t len, n = (size_t)rows * cols, r, c;
	float *x = rnd_array(n), *dec = malloc(n * sizeof(float)), *ref, *sum;
	void *ct;
	int isa;

	ck_assert_ptr_nonnull(dec);
	ct = encode_pruned(x, rows, cols, tau, &len);
	ck_assert_int_eq(spt_ct_decode(ct, len, dec, n), 0);
	/* the runtime's bias gradient */
	ref = calloc(cols, sizeof(float));
	sum = rnd_array(cols);
	ck_assert_ptr_nonnull(ref);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			ref[c] += dec[r * cols + c];
	for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
		if (!spt_core_isa_supported((enum spt_isa)isa))
			continue;
		ck_assert_int_eq(spt_core_set_isa((enum spt_isa)isa), 0);
		ck_assert_int_eq(spt_ct_colsum(ct, len, sum, cols), 0);
		ck_assert_msg(memcmp(sum, ref, cols * sizeof(float)) == 0,
			      "%ux%u tau %g isa %d", rows, cols, tau, isa);
	}
	spt_core_set_isa(SPT_ISA_AUTO);
	free(x);
	free(dec);
	free(ref);
	free(sum);
	free(ct);
}

START_TEST(test_colsum_matches_decoded_sum)
{
	rng_state = 4;
	colsum_case(1, 1, 0);
	colsum_case(7, 45, 0);		/* ragged last block */
	colsum_case(70, 45, 3.0f);	/* pruned: many blocks and elements absent */
	colsum_case(300, 96, 8.0f);	/* tiles of 64 blocks, mostly empty */
	colsum_case(33, 10, 100.0f);	/* everything pruned: all zero */
	colsum_case(1000, 3, 0.5f);
}
END_TEST

/* Terms that cancel exactly: the sum is +0.0f, as in the decoded sum. */
START_TEST(test_colsum_cancellation_and_signed_zero)
{
	float x[4 * 2] = { 1.5f, -2.0f, -1.5f, 2.0f, 0.0f, -0.0f, 0.0f, 0.0f }, sum[2], ref[2];
	float dec[8];
	size_t len;
	void *ct = encode_pruned(x, 4, 2, 0, &len);
	int r;

	ck_assert_int_eq(spt_ct_decode(ct, len, dec, 8), 0);
	ref[0] = ref[1] = 0.0f;
	for (r = 0; r < 4; r++) {
		ref[0] += dec[2 * r];
		ref[1] += dec[2 * r + 1];
	}
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 2), 0);
	ck_assert(memcmp(sum, ref, sizeof(sum)) == 0);
	ck_assert(sum[0] == 0.0f && !signbit(sum[0]));
	ck_assert(sum[1] == 0.0f && !signbit(sum[1]));
	free(ct);
}
END_TEST

START_TEST(test_colsum_rejects_bad)
{
	float x[6 * 40], sum[40];
	size_t len, i;
	uint8_t *ct;

	rng_state = 5;
	for (i = 0; i < 6 * 40; i++)
		x[i] = rnd();
	ct = encode_pruned(x, 6, 40, 0, &len);
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 40), 0);
	ck_assert_int_eq(spt_ct_colsum(NULL, len, sum, 40), -EINVAL);
	ck_assert_int_eq(spt_ct_colsum(ct, len, NULL, 40), -EINVAL);
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 39), -EINVAL);
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 6), -EINVAL);
	ck_assert_int_eq(spt_ct_colsum(ct, len - 1, sum, 40), -EBADMSG);
	ck_assert_int_eq(spt_ct_colsum(ct, 10, sum, 40), -EBADMSG);
	ck_assert_int_eq(spt_ct_colsum(ct, 0, sum, 40), -EBADMSG);
	ct[0] ^= 1;		/* magic */
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 40), -EBADMSG);
	ct[0] ^= 1;
	ct[len - 1] = 0;	/* a stored value of zero */
	ck_assert_int_eq(spt_ct_colsum(ct, len, sum, 40), -EBADMSG);
	free(ct);
}
END_TEST

/* ---- finite check ---------------------------------------------------------- */

START_TEST(test_check_finite)
{
	float v[37];
	const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
	size_t i, j;

	for (i = 0; i < 37; i++)
		v[i] = (float)i - 18.0f;
	v[3] = -0.0f;
	v[4] = 1e-45f;		/* subnormal */
	v[5] = 3.4028235e38f;	/* FLT_MAX */
	ck_assert_int_eq(spt_check_finite(v, 37), 0);
	ck_assert_int_eq(spt_check_finite(v, 0), 0);
	ck_assert_int_eq(spt_check_finite(NULL, 0), 0);
	ck_assert_int_eq(spt_check_finite(NULL, 1), -EINVAL);
	for (j = 0; j < 4; j++)
		for (i = 0; i < 37; i += 12) {
			float keep = v[i];

			v[i] = bad[j];
			ck_assert_int_eq(spt_check_finite(v, 37), -EDOM);
			ck_assert_int_eq(spt_check_finite(v, i + 1), -EDOM);
			if (i)
				ck_assert_int_eq(spt_check_finite(v, i), 0);
			v[i] = keep;
		}
}
END_TEST

/* ---- ReLU mask ------------------------------------------------------------ */

static uint32_t bits_of(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float float_of(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* the reference on float compares: y == 0 (either sign) passes no gradient */
static uint32_t ref_mask(uint32_t dx, uint32_t y)
{
	return float_of(y) == 0.0f ? 0u : dx;
}

START_TEST(test_relu_mask_matches_reference)
{
	/* y: both zeros, the smallest subnormals, NaNs, infinities, normals */
	static const uint32_t ys[] = {
		0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u, 0x7fc00000u,
		0xffc00000u, 0x7f800001u, 0x7f800000u, 0xff800000u, 0x3f800000u,
		0xbf800000u, 0x00800000u, 0x7f7fffffu, 0x40000000u,
	};
	/* dx: NaN payloads (quiet and signalling), zeros, infinities, normals */
	static const uint32_t dxs[] = {
		0x7fc12345u, 0xffa00001u, 0x7f800001u, 0xffffffffu, 0x80000000u,
		0x00000000u, 0x7f800000u, 0xff800000u, 0x3e99999au, 0xc2f60000u,
		0x00000001u,
	};
	const size_t ny = sizeof(ys) / sizeof(ys[0]), nd = sizeof(dxs) / sizeof(dxs[0]);
	const size_t n = ny * nd + 1000;
	float *dx = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	uint32_t *want = malloc(n * sizeof(uint32_t));
	size_t i, zeros = 0, kept = 0;

	ck_assert_ptr_nonnull(dx);
	ck_assert_ptr_nonnull(y);
	ck_assert_ptr_nonnull(want);
	rng_state = 11;
	for (i = 0; i < n; i++) {
		uint32_t d, v;

		if (i < ny * nd) {
			v = ys[i % ny];
			d = dxs[i / ny];
		} else {
			/* a ReLU output: about half exactly zero, some -0.0f */
			float r = rnd();

			v = bits_of(r > 0.0f ? r : (i % 7 ? 0.0f : -0.0f));
			d = bits_of(rnd());
		}
		y[i] = float_of(v);
		dx[i] = float_of(d);
		want[i] = ref_mask(d, v);
		zeros += want[i] == 0 && d != 0;
		kept += want[i] == d && (v << 1);
	}
	ck_assert_uint_gt(zeros, 300);
	ck_assert_uint_gt(kept, 300);
	ck_assert_int_eq(spt_relu_mask(dx, y, n), 0);
	for (i = 0; i < n; i++)
		ck_assert_msg(bits_of(dx[i]) == want[i], "element %zu: %08x, want %08x", i,
			      (unsigned)bits_of(dx[i]), (unsigned)want[i]);
	/* y unchanged; a second pass changes nothing */
	for (i = 0; i < ny * nd; i++)
		ck_assert_uint_eq(bits_of(y[i]), ys[i % ny]);
	ck_assert_int_eq(spt_relu_mask(dx, y, n), 0);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(bits_of(dx[i]), want[i]);
	/* a prefix touches only the prefix */
	for (i = 0; i < n; i++)
		dx[i] = float_of(0x7fc0beefu);
	ck_assert_int_eq(spt_relu_mask(dx, y, 3), 0);
	ck_assert_uint_eq(bits_of(dx[0]), 0);
	ck_assert_uint_eq(bits_of(dx[1]), 0);
	ck_assert_uint_eq(bits_of(dx[2]), 0x7fc0beefu);
	for (i = 3; i < n; i++)
		ck_assert_uint_eq(bits_of(dx[i]), 0x7fc0beefu);
	free(dx);
	free(y);
	free(want);
}
END_TEST

START_TEST(test_relu_mask_in_place_and_bad_args)
{
	static const uint32_t v[] = {
		0x80000000u, 0x00000000u, 0x7fc00001u, 0x80000001u, 0xbf800000u, 0x80000000u,
	};
	float x[6], dx[8], y[8];
	size_t i;

	/* dx == y: -0.0f becomes +0.0f, everything else keeps its bits */
	for (i = 0; i < 6; i++)
		x[i] = float_of(v[i]);
	ck_assert_int_eq(spt_relu_mask(x, x, 6), 0);
	for (i = 0; i < 6; i++)
		ck_assert_uint_eq(bits_of(x[i]), v[i] == 0x80000000u ? 0u : v[i]);

	for (i = 0; i < 8; i++) {
		dx[i] = (float)i + 1.0f;
		y[i] = 0.0f;
	}
	ck_assert_int_eq(spt_relu_mask(NULL, y, 8), -EINVAL);
	ck_assert_int_eq(spt_relu_mask(dx, NULL, 8), -EINVAL);
	ck_assert_int_eq(spt_relu_mask(NULL, NULL, 0), 0);
	ck_assert_int_eq(spt_relu_mask(dx, y, 0), 0);
	ck_assert_int_eq(spt_relu_mask(dx, y, SIZE_MAX / 2), -EINVAL);
	/* partial overlap either way */
	ck_assert_int_eq(spt_relu_mask(dx + 1, dx, 4), -EINVAL);
	ck_assert_int_eq(spt_relu_mask(dx, dx + 3, 4), -EINVAL);
	/* nothing was written by a rejected call */
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(bits_of(dx[i]), bits_of((float)i + 1.0f));
	/* adjacent is not overlapping */
	ck_assert_int_eq(spt_relu_mask(dx, dx + 4, 4), 0);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(bits_of(dx[i]), bits_of((float)i + 1.0f));
	ck_assert_int_eq(spt_relu_mask(dx, y, 8), 0);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(bits_of(dx[i]), 0);
}
END_TEST

/* ---- im2col in the compressed domain --------------------------------- */

/*
 * Image values whose blocks' exponents spread over 2^-24 .. 2^24 per
 * element (so joined halves differ by 0 to 48 and round, ties included),
 * ReLU zeros, and with @tiny values near the smallest normal, so blocks
 * clamp to E = -127.
 */
static float *wide_array(size_t n, int tiny)
{
	float *p = malloc(n * sizeof(float) + 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++) {
		float r = rnd();
		int e = (int)((rng_state >> 40) % 49) - 24;

		if ((rng_state >> 20) % 3 == 0)
			p[i] = 0.0f;
		else
			p[i] = ldexpf(r, tiny ? -140 + e / 6 : e);
	}
	return p;
}

/* The reference: spt_ct_encode() (raw) of spt_im2col() of the decoded image. */
static void *im2col_ct_ref(const struct spt_conv_shape *sh, const void *img, size_t img_len,
			   size_t *len)
{
	struct spt_conv_dims d;
	float *dec, *col;
	size_t cap;
	void *ct;

	ck_assert_int_eq(spt_conv_shape_check(sh, &d), 0);
	dec = malloc(d.img_elems * sizeof(float));
	col = malloc(d.col_elems * sizeof(float));
	cap = spt_ct_bound((uint32_t)d.rows, (uint32_t)d.cols);
	ct = malloc(cap);
	ck_assert(dec && col && ct);
	ck_assert_int_eq(spt_ct_decode(img, img_len, dec, d.img_elems), 0);
	ck_assert_int_eq(spt_im2col(sh, dec, d.img_elems, col, d.col_elems), 0);
	ck_assert_int_eq(spt_ct_encode(col, (uint32_t)d.rows, (uint32_t)d.cols, NULL, ct, cap,
				       len, NULL), 0);
	free(dec);
	free(col);
	return ct;
}

static void im2col_ct_case(const struct spt_conv_shape *sh, const void *img, size_t img_len,
			   const char *what)
{
	struct spt_conv_dims d;
	size_t len, ref_len, cap;
	void *ref = im2col_ct_ref(sh, img, img_len, &ref_len), *ct;

	ck_assert_int_eq(spt_conv_shape_check(sh, &d), 0);
	cap = spt_ct_bound((uint32_t)d.rows, (uint32_t)d.cols);
	ct = malloc(cap);
	ck_assert_ptr_nonnull(ct);
	memset(ct, 0xa5, cap);
	ck_assert_int_eq(spt_im2col_ct(sh, img, img_len, ct, cap, &len), 0);
	ck_assert_msg(len == ref_len && memcmp(ct, ref, len) == 0,
		      "%s: n %u %ux%u c %u k %u stride %u pad %u: %zu bytes, want %zu%s", what,
		      sh->n, sh->h, sh->w, sh->c, sh->k, sh->stride, sh->pad, len, ref_len,
		      len == ref_len ? " (contents differ)" : "");
	ck_assert_int_eq(spt_ct_validate(ct, len, NULL), 0);
	free(ct);
	free(ref);
}

/*
 * Records the encoder never writes but that are valid: every stored block
 * whose values are all even halved, its exponent one up (the same decoded
 * values), so its largest |k| is under 64.
 */
static int uncanonical(uint8_t *ct, size_t len)
{
	uint32_t tiles, t;
	uint64_t pay;
	int changed = 0;

	memcpy(&tiles, ct + 20, 4);
	pay = 64 + 4 * ((uint64_t)tiles + 1);
	for (t = 0; t < tiles; t++) {
		uint32_t off, l2, n, i;
		uint64_t l1;
		uint8_t *q;

		memcpy(&off, ct + 64 + 4 * t, 4);
		q = ct + pay + off;
		memcpy(&l1, q, 8);
		for (q += 8; l1; l1 &= l1 - 1) {
			int even = 1;

			memcpy(&l2, q, 4);
			n = (uint32_t)__builtin_popcount(l2);
			for (i = 0; i < n; i++)
				even &= ((int8_t)q[5 + i] & 1) == 0;
			if (even && q[4] < 254) {
				for (i = 0; i < n; i++)
					q[5 + i] = (uint8_t)((int8_t)q[5 + i] / 2);
				q[4]++;
				changed++;
			}
			q += 5 + n;
		}
	}
	ck_assert_int_eq(spt_ct_validate(ct, len, NULL), 0);
	return changed;
}

START_TEST(test_im2col_ct_matches_encoded_im2col)
{
	static const uint32_t cs[] = { 16, 32, 64 };
	static const uint32_t hw[][2] = { { 7, 9 }, { 8, 8 }, { 5, 3 }, { 14, 14 } };
	struct spt_encode_opts o;
	size_t i;

	rng_state = 77;
	for (i = 0; i < 3 * 4 * 2 * 3 * 3; i++) {
		struct spt_conv_shape sh = {
			.n = 1 + (uint32_t)(i % 2), .h = hw[i / 3 % 4][0], .w = hw[i / 3 % 4][1],
			.c = cs[i % 3], .k = 1 + 2 * (uint32_t)(i / 12 % 3),
			.stride = 1 + (uint32_t)(i / 36 % 2), .pad = 0,
		};
		uint32_t rows = sh.n * sh.h * sh.w;
		size_t n = (size_t)rows * sh.c, cap = spt_ct_bound(rows, sh.c), len;
		float *x = wide_array(n, i / 72 == 2);
		uint8_t *img = malloc(cap);

		sh.pad = (uint32_t)(i / 24 % sh.k);
		if (sh.h + 2 * sh.pad < sh.k || sh.w + 2 * sh.pad < sh.k) {
			free(x);
			free(img);
			continue;
		}
		ck_assert_ptr_nonnull(img);
		/* the image as the runtime has it: pruned, either rounding */
		spt_encode_opts_init(&o);
		o.prune.mode = i % 4 == 1 ? SPT_PRUNE_STOCHASTIC : SPT_PRUNE_DETERMINISTIC;
		o.prune.tau = i / 72 == 2 ? 0.0f : 0.5f;
		if (o.prune.tau == 0.0f)
			o.prune.mode = SPT_PRUNE_OFF;
		o.round = i % 5 == 2 ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
		ck_assert_int_eq(spt_ct_encode(x, rows, sh.c, &o, img, cap, &len, NULL), 0);
		im2col_ct_case(&sh, img, len, "encoded");
		/* trusted: the encoder's records are taken as canonical */
		ck_assert(!spt_ct_set_trusted(true));
		im2col_ct_case(&sh, img, len, "encoded, trusted");
		ck_assert(spt_ct_set_trusted(false));
		if (uncanonical(img, len))
			im2col_ct_case(&sh, img, len, "uncanonical records");
		free(x);
		free(img);
	}
}
END_TEST

START_TEST(test_im2col_ct_rejects_bad)
{
	struct spt_conv_shape sh = { 1, 4, 4, 16, 3, 1, 1 }, bad;
	size_t n = 16 * 16, cap = spt_ct_bound(16, 16), ocap = spt_ct_bound(16, 144);
	size_t len, olen, rlen, c;
	float *x;
	uint8_t *img = malloc(cap), *out = malloc(ocap), *ref;

	rng_state = 5;
	x = wide_array(n, 0);
	ck_assert(img && out);
	ck_assert_int_eq(spt_ct_encode(x, 16, 16, NULL, img, cap, &len, NULL), 0);
	ck_assert_int_eq(spt_im2col_ct(NULL, img, len, out, ocap, &olen), -EINVAL);
	ck_assert_int_eq(spt_im2col_ct(&sh, NULL, len, out, ocap, &olen), -EINVAL);
	ck_assert_int_eq(spt_im2col_ct(&sh, img, len, NULL, ocap, &olen), -EINVAL);
	ck_assert_int_eq(spt_im2col_ct(&sh, img, len, out, ocap, NULL), -EINVAL);
	bad = sh;
	bad.k = 0;
	ck_assert_int_eq(spt_im2col_ct(&bad, img, len, out, ocap, &olen), -EINVAL);
	/* channels the records do not carry over */
	bad = sh;
	bad.c = 8;
	ck_assert_int_eq(spt_im2col_ct(&bad, img, len, out, ocap, &olen), -EOPNOTSUPP);
	/* an image of another shape */
	bad = sh;
	bad.c = 32;
	ck_assert_int_eq(spt_im2col_ct(&bad, img, len, out, ocap, &olen), -EINVAL);
	bad = sh;
	bad.h = 8;
	ck_assert_int_eq(spt_im2col_ct(&bad, img, len, out, ocap, &olen), -EINVAL);
	/* the image's own faults */
	ck_assert_int_ne(spt_im2col_ct(&sh, img, len - 1, out, ocap, &olen), 0);
	img[0] ^= 1;
	ck_assert_int_ne(spt_im2col_ct(&sh, img, len, out, ocap, &olen), 0);
	img[0] ^= 1;
	/*
	 * records no encoder writes, which trusted mode does not check: the
	 * walk still stays inside the tensor (under ASan, too)
	 */
	{
		uint8_t *bad_img = malloc(len);
		size_t rec = 64 + 8 + 8;	/* header, table of one tile, L1 mask */
		int trusted;

		ck_assert_ptr_nonnull(bad_img);
		for (trusted = 0; trusted < 2; trusted++) {
			spt_ct_set_trusted(trusted);
			/* a mask with values past the 16 columns */
			memcpy(bad_img, img, len);
			bad_img[rec + 2] = 0xff;
			bad_img[rec + 3] = 0xff;
			ck_assert_int_eq(spt_im2col_ct(&sh, bad_img, len, out, ocap, &olen),
					 -EBADMSG);
			/* an L1 bit past the last of the 16 blocks */
			memcpy(bad_img, img, len);
			bad_img[64 + 8 + 2] |= 0x10;
			ck_assert_int_eq(spt_im2col_ct(&sh, bad_img, len, out, ocap, &olen),
					 -EBADMSG);
		}
		spt_ct_set_trusted(false);
		free(bad_img);
	}
	/* every short capacity: the encoder's error there */
	ref = im2col_ct_ref(&sh, img, len, &rlen);
	for (c = 0; c <= rlen; c++) {
		struct spt_conv_dims d;
		float *dec = malloc(n * sizeof(float)), *col;
		size_t elen;
		int want, got;

		ck_assert_int_eq(spt_conv_shape_check(&sh, &d), 0);
		col = malloc(d.col_elems * sizeof(float));
		ck_assert(dec && col);
		ck_assert_int_eq(spt_ct_decode(img, len, dec, n), 0);
		ck_assert_int_eq(spt_im2col(&sh, dec, n, col, d.col_elems), 0);
		want = spt_ct_encode(col, 16, 144, NULL, out, c, &elen, NULL);
		got = spt_im2col_ct(&sh, img, len, out, c, &olen);
		ck_assert_msg(got == want, "cap %zu: %d, want %d", c, got, want);
		ck_assert_int_eq(got, c < rlen ? -ENOSPC : 0);
		free(dec);
		free(col);
	}
	ck_assert_int_eq(memcmp(out, ref, rlen), 0);
	free(ref);
	free(x);
	free(img);
	free(out);
}
END_TEST

static Suite *conv_suite(void)
{
	Suite *s = suite_create("conv");
	TCase *shape = tcase_create("shape");
	TCase *low = tcase_create("lowering");
	TCase *cs = tcase_create("colsum");
	TCase *fin = tcase_create("finite");
	TCase *rm = tcase_create("relu_mask");

	tcase_add_test(shape, test_shape_dims);
	tcase_add_test(shape, test_shape_rejects_bad);
	tcase_add_test(shape, test_shape_overflow);
	suite_add_tcase(s, shape);

	tcase_add_test(low, test_im2col_matches_reference);
	tcase_add_test(low, test_col2im_matches_reference);
	tcase_add_test(low, test_col2im_is_the_adjoint);
	tcase_add_test(low, test_lowering_rejects_bad);
	tcase_add_test(low, test_im2col_grid_matches_reference);
	tcase_add_test(low, test_col2im_relu_grid_matches_reference);
	tcase_add_test(low, test_col2im_relu_nonfinite_passthrough);
	tcase_add_test(low, test_lowering_rejects_overlap);
	tcase_add_test(low, test_col2im_relu_rejects_bad);
	tcase_add_test(low, test_im2col_ct_matches_encoded_im2col);
	tcase_add_test(low, test_im2col_ct_rejects_bad);
	suite_add_tcase(s, low);

	tcase_add_test(cs, test_colsum_matches_decoded_sum);
	tcase_add_test(cs, test_colsum_cancellation_and_signed_zero);
	tcase_add_test(cs, test_colsum_rejects_bad);
	suite_add_tcase(s, cs);

	tcase_add_test(fin, test_check_finite);
	suite_add_tcase(s, fin);

	tcase_add_test(rm, test_relu_mask_matches_reference);
	tcase_add_test(rm, test_relu_mask_in_place_and_bad_args);
	suite_add_tcase(s, rm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
