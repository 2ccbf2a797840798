// SPDX-License-Identifier: MIT
/*
 * The CPU backend's convolution lowering ops: col2im with a ReLU mask gives
 * the bits of col2im followed by relu_mask, without a mask the bits of
 * col2im, and bad buffers are refused before anything is written.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/spt.h"
#include "../../runtime/src/internal.h"

/* the runtime's conv2: 16 -> 32 channels, 3 x 3, stride 2, pad 1, on 2 samples */
static const struct spt_conv_shape shape = { 2, 12, 11, 16, 3, 2, 1 };

struct bufs {
	struct spt_ctx *ctx;
	struct spt_buf col, y, a, b;
	struct spt_conv_dims d;
};

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static void setup(struct bufs *t)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };
	float *col, *y, *a, *b;
	uint64_t r = 5;
	size_t i;

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(spt_ctx_open(&o, &t->ctx), 0);
	ck_assert_int_eq(spt_conv_shape_check(&shape, &t->d), 0);
	ck_assert_int_eq(t->ctx->ops->buf_alloc(t->ctx, &t->col, t->d.col_elems * sizeof(float)), 0);
	ck_assert_int_eq(t->ctx->ops->buf_alloc(t->ctx, &t->y, t->d.img_elems * sizeof(float)), 0);
	ck_assert_int_eq(t->ctx->ops->buf_alloc(t->ctx, &t->a, t->d.img_elems * sizeof(float)), 0);
	ck_assert_int_eq(t->ctx->ops->buf_alloc(t->ctx, &t->b, t->d.img_elems * sizeof(float)), 0);
	col = t->col.host;
	y = t->y.host;
	a = t->a.host;
	b = t->b.host;
	for (i = 0; i < t->d.col_elems; i++) {
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		col[i] = (float)((int32_t)(r >> 33) % 2001 - 1000) / 64.0f;
	}
	for (i = 0; i < t->d.img_elems; i++) {
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		y[i] = r >> 63 ? (float)(r >> 40 & 255) + 1.0f : (i % 3 ? 0.0f : -0.0f);
		a[i] = 7.0f;	/* garbage to be overwritten */
		b[i] = 9.0f;
	}
}

static void teardown(struct bufs *t)
{
	t->ctx->ops->buf_free(t->ctx, &t->col);
	t->ctx->ops->buf_free(t->ctx, &t->y);
	t->ctx->ops->buf_free(t->ctx, &t->a);
	t->ctx->ops->buf_free(t->ctx, &t->b);
	spt_ctx_close(t->ctx);
}

START_TEST(test_col2im_mask_is_col2im_then_relu_mask)
{
	const struct spt_backend_ops *ops;
	struct bufs t;
	const float *a, *b, *y;
	size_t i, zeroed = 0;

	setup(&t);
	ops = t.ctx->ops;
	a = t.a.host;
	b = t.b.host;
	y = t.y.host;
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, &t.a, &t.y), 0);
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, &t.b, NULL), 0);
	for (i = 0; i < t.d.img_elems; i++)
		zeroed += y[i] == 0.0f && fbits(b[i]) != 0;
	ck_assert_uint_gt(zeroed, 100);
	ck_assert_int_eq(ops->relu_mask(t.ctx, &t.b, &t.y, t.d.img_elems), 0);
	ck_assert_int_eq(ops->sync(t.ctx), 0);
	ck_assert(memcmp(a, b, t.d.img_elems * sizeof(float)) == 0);
	/* without a mask: spt_col2im's bits */
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, &t.a, NULL), 0);
	ck_assert_int_eq(spt_col2im(&shape, t.col.host, t.d.col_elems, t.b.host, t.d.img_elems), 0);
	ck_assert(memcmp(a, b, t.d.img_elems * sizeof(float)) == 0);
	teardown(&t);
}
END_TEST

START_TEST(test_col2im_mask_rejects_bad_buffers)
{
	const struct spt_backend_ops *ops;
	struct spt_buf small;
	struct bufs t;
	const float *a;
	size_t i;

	setup(&t);
	ops = t.ctx->ops;
	a = t.a.host;
	small = t.y;
	small.cap -= sizeof(float);	/* one float short of the image */
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, &t.a, &small), -EINVAL);
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, NULL, &t.y), -EINVAL);
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, NULL, &t.a, &t.y), -EINVAL);
	ck_assert_int_eq(ops->col2im(t.ctx, NULL, &t.col, &t.a, &t.y), -EINVAL);
	/* the mask is the image itself */
	ck_assert_int_eq(ops->col2im(t.ctx, &shape, &t.col, &t.a, &t.a), -EINVAL);
	for (i = 0; i < t.d.img_elems && a[i] == 7.0f; i++)
		;
	ck_assert_uint_eq(i, t.d.img_elems);
	teardown(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backend_lowering");
	TCase *tc = tcase_create("cpu");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_col2im_mask_is_col2im_then_relu_mask);
	tcase_add_test(tc, test_col2im_mask_rejects_bad_buffers);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
