// SPDX-License-Identifier: MIT
/*
 * Convolution lowering (im2col and its adjoint col2im) on FP32 NHWC tensors,
 * the finite check and the FP32 ReLU mask of a training step.  Plain scalar
 * code in a fixed order, so the device model and the CPU backend agree bit
 * for bit.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spt/core.h"
#include "train_internal.h"

/* a * b into *r; 1 on overflow of 64 bits. */
static int mul_ovf(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

int spt_conv_shape_check(const struct spt_conv_shape *s, struct spt_conv_dims *d)
{
	struct spt_conv_dims o;
	uint64_t eh, ew, t;

	if (!s)
		return -EINVAL;
	if (!s->n || !s->h || !s->w || !s->c)
		return -EINVAL;
	if (s->k < 1 || s->k > SPT_CONV_K_MAX || s->stride < 1 ||
	    s->stride > SPT_CONV_STRIDE_MAX || s->pad >= s->k)
		return -EINVAL;
	eh = (uint64_t)s->h + 2 * (uint64_t)s->pad;	/* no overflow: < 2^34 */
	ew = (uint64_t)s->w + 2 * (uint64_t)s->pad;
	if (eh < s->k || ew < s->k)
		return -EINVAL;
	/* with stride 1 and padding, oh can exceed 32 bits */
	eh = (eh - s->k) / s->stride + 1;
	ew = (ew - s->k) / s->stride + 1;
	if (eh > UINT32_MAX || ew > UINT32_MAX)
		return -E2BIG;
	o.oh = (uint32_t)eh;
	o.ow = (uint32_t)ew;
	o.cols = (uint64_t)s->k * s->k * s->c;	/* <= 2^8 * 2^32 */
	if (mul_ovf(s->n, o.oh, &t) || mul_ovf(t, o.ow, &o.rows) ||
	    mul_ovf(o.rows, o.cols, &o.col_elems) ||
	    mul_ovf(s->n, s->h, &t) || mul_ovf(t, s->w, &t) || mul_ovf(t, s->c, &o.img_elems))
		return -E2BIG;
	if (o.col_elems > SIZE_MAX / sizeof(float) || o.img_elems > SIZE_MAX / sizeof(float) ||
	    o.col_elems > UINT64_MAX / sizeof(float) || o.img_elems > UINT64_MAX / sizeof(float))
		return -E2BIG;
	if (d)
		*d = o;
	return 0;
}

/*
 * Walk the patch matrix in row order, one kernel row ky at a time: the
 * window's pixels kx = 0..k-1 of that kernel row are consecutive in the
 * image and their slices consecutive in the patch row, so the in-image ones
 * (kx in [lo, hi)) form one run of (hi - lo) * c floats.  The body sees
 * row (the patch row), ky, iy (-1: the kernel row is in the padding), lo,
 * hi, px (the image index of pixel kx = lo's first channel) and cx (the
 * patch index of kernel row ky's first column).
 */
#define FOR_EACH_PATCH_RUN(s, d, ...)						\
	do {									\
		uint64_t row = 0;						\
		uint32_t b_, oy_, ox_, ky;					\
		for (b_ = 0; b_ < (s)->n; b_++)					\
			for (oy_ = 0; oy_ < (d)->oh; oy_++)			\
				for (ox_ = 0; ox_ < (d)->ow; ox_++, row++) {	\
					int64_t ix0_ = (int64_t)ox_ * (s)->stride - (int64_t)(s)->pad; \
					uint32_t lo = ix0_ < 0 ? (uint32_t)-ix0_ : 0; \
					uint32_t hi = ix0_ + (int64_t)(s)->k > (int64_t)(s)->w ? \
						(uint32_t)((int64_t)(s)->w - ix0_) : (s)->k; \
					if (hi < lo)					\
						hi = lo;				\
					for (ky = 0; ky < (s)->k; ky++) {		\
						int64_t iy = (int64_t)oy_ * (s)->stride + ky - (int64_t)(s)->pad; \
						size_t cx = (size_t)row * (size_t)(d)->cols + \
							(size_t)ky * (s)->k * (s)->c;	\
						size_t px = iy < 0 || iy >= (int64_t)(s)->h ? 0 : \
							(((size_t)b_ * (s)->h + (size_t)iy) * (s)->w + \
							 (size_t)(ix0_ + lo)) * (s)->c;	\
						if (iy >= (int64_t)(s)->h)		\
							iy = -1;			\
						__VA_ARGS__					\
					}						\
				}							\
	} while (0)

/* Short runs (one channel: k floats): an inline loop beats a library call. */
static inline void copy_run(float *dst, const float *src, size_t n)
{
	size_t i;

	if (n >= 16) {
		memcpy(dst, src, n * sizeof(float));
		return;
	}
	for (i = 0; i < n; i++)
		dst[i] = src[i];
}

static inline void zero_run(float *dst, size_t n)
{
	size_t i;

	if (n >= 16) {
		memset(dst, 0, n * sizeof(float));
		return;
	}
	for (i = 0; i < n; i++)
		dst[i] = 0.0f;
}

int spt_im2col(const struct spt_conv_shape *s, const float *img, size_t img_elems,
	       float *col, size_t col_elems)
{
	struct spt_conv_dims d;
	int err;

	if (!img || !col)
		return -EINVAL;
	err = spt_conv_shape_check(s, &d);
	if (err)
		return err;
	if (img_elems != d.img_elems || col_elems != d.col_elems)
		return -EINVAL;
	FOR_EACH_PATCH_RUN(s, &d, {
		size_t c = s->c, kc = (size_t)s->k * c;

		if (iy < 0) {
			zero_run(col + cx, kc);
		} else {
			zero_run(col + cx, lo * c);
			copy_run(col + cx + lo * c, img + px, (hi - lo) * c);
			zero_run(col + cx + hi * c, kc - hi * c);
		}
	});
	return 0;
}

/* dst[i] += src[i]: the elements of a run are distinct, each gets one add. */
static inline void add_run(float *dst, const float *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] += src[i];
}

/*
 * Every image element receives its patch elements in patch row order, then
 * (ky, kx) order, as the plain definition does: a run adds one term to each
 * of its distinct elements, and the runs are visited in that order.
 */
int spt_col2im(const struct spt_conv_shape *s, const float *col, size_t col_elems,
	       float *img, size_t img_elems)
{
	struct spt_conv_dims d;
	int err;

	if (!img || !col)
		return -EINVAL;
	err = spt_conv_shape_check(s, &d);
	if (err)
		return err;
	if (img_elems != d.img_elems || col_elems != d.col_elems)
		return -EINVAL;
	memset(img, 0, img_elems * sizeof(float));
	FOR_EACH_PATCH_RUN(s, &d, {
		if (iy >= 0)
			add_run(img + px, col + cx + (size_t)lo * s->c, (size_t)(hi - lo) * s->c);
	});
	return 0;
}

int spt_check_finite(const float *x, size_t n)
{
	uint32_t bad = 0;
	size_t i;

	if (n == 0)
		return 0;
	if (!x)
		return -EINVAL;
	for (i = 0; i < n; i++)
		bad |= spt_not_finite(x[i]);
	return bad ? -EDOM : 0;
}

int spt_relu_mask(float *dx, const float *y, size_t n)
{
	uintptr_t a, b;
	size_t i;

	if (n == 0)
		return 0;
	if (!dx || !y || n > SIZE_MAX / sizeof(float))
		return -EINVAL;
	a = (uintptr_t)dx;
	b = (uintptr_t)y;
	/* the same array, or two that do not overlap */
	if (a != b && a < b + n * sizeof(float) && b < a + n * sizeof(float))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint32_t d, v;

		memcpy(&v, &y[i], sizeof(v));
		memcpy(&d, &dx[i], sizeof(d));
		d &= (v << 1) ? 0xffffffffu : 0u;
		memcpy(&dx[i], &d, sizeof(d));
	}
	return 0;
}
