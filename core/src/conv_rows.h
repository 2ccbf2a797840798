/* SPDX-License-Identifier: MIT */
/*
 * The FP32 lowering's element loops, written once for a vector width with
 * GCC's vector extension: conv.c includes this file with CONV_VF 4 (SSE on
 * x86-64, lowered to whatever the target has elsewhere), conv_avx2.c with
 * 8 (built with -mavx2).  Lane-wise these are the IEEE operations of the
 * scalar loops, in the same order per element, so every width gives the
 * same bits.  The includer defines CONV_VF and CONV_NAME(x), the names of
 * its two entry points; included once per file.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spt/core.h"

typedef float conv_vf __attribute__((vector_size(CONV_VF * sizeof(float))));
typedef uint32_t conv_vu __attribute__((vector_size(CONV_VF * sizeof(float))));

void CONV_NAME(mask_run)(float *dx, const float *y, size_t n);
void CONV_NAME(col2im_rows)(const struct spt_conv_shape *s, const struct spt_conv_dims *d,
			    const float *restrict col, const float *restrict y,
			    float *restrict img);

/*
 * The output columns ox in [*lo, *hi) whose window lies inside the image
 * horizontally: ox * stride >= pad and ox * stride - pad + k <= w.
 */
static inline void conv_inner_windows(const struct spt_conv_shape *s,
				      const struct spt_conv_dims *d, uint32_t *lo, uint32_t *hi)
{
	uint64_t w = (uint64_t)s->w + s->pad;

	*hi = w >= s->k ? (uint32_t)((w - s->k) / s->stride + 1) : 0;
	if (*hi > d->ow)
		*hi = d->ow;
	*lo = (s->pad + s->stride - 1) / s->stride;
	if (*lo > *hi)
		*lo = *hi;
}

/* The range of output positions o (o < on) whose window covers e = pixel + pad. */
static inline void conv_covering(uint64_t e, uint32_t k, uint32_t stride, uint32_t on,
				 uint32_t *lo, uint32_t *hi)
{
	uint64_t h = e / stride + 1;

	*lo = e >= k ? (uint32_t)((e - k) / stride + 1) : 0;
	*hi = h < on ? (uint32_t)h : on;
}

/* dst[i] += src[i]: the elements of a run are distinct, each gets one add. */
static inline void conv_add_run(float *restrict dst, const float *restrict src, size_t n)
{
	size_t i = 0;

	for (; i + CONV_VF <= n; i += CONV_VF) {
		conv_vf a, b;

		memcpy(&a, dst + i, sizeof(a));
		memcpy(&b, src + i, sizeof(b));
		a += b;
		memcpy(dst + i, &a, sizeof(a));
	}
	for (; i < n; i++)
		dst[i] += src[i];
}

/*
 * The ReLU mask (spt_relu_mask's rule) on n floats, @dx may be @y:
 * dx[i] &= (y[i] << 1) ? ~0 : 0 on the bits.
 */
void CONV_NAME(mask_run)(float *dx, const float *y, size_t n)
{
	size_t i = 0;

	for (; i + CONV_VF <= n; i += CONV_VF) {
		conv_vu d, v;

		memcpy(&d, dx + i, sizeof(d));
		memcpy(&v, y + i, sizeof(v));
		d &= (conv_vu)((v << 1) != 0);
		memcpy(dx + i, &d, sizeof(d));
	}
	for (; i < n; i++) {
		uint32_t d, v;

		memcpy(&d, &dx[i], sizeof(d));
		memcpy(&v, &y[i], sizeof(v));
		d &= (v << 1) ? 0xffffffffu : 0u;
		memcpy(&dx[i], &d, sizeof(d));
	}
}

/*
 * col2im one image row at a time: the row is set to +0.0f, receives the
 * kernel-row slices of the patches that cover it in patch row order (oy,
 * then ox; a patch holds a pixel at most once), which is each element's
 * order in the definition, and is masked with @y if given, while it is
 * still in the cache.
 */
void CONV_NAME(col2im_rows)(const struct spt_conv_shape *s, const struct spt_conv_dims *d,
			    const float *restrict col, const float *restrict y,
			    float *restrict img)
{
	size_t c = s->c, k = s->k, kc = k * c, cols = d->cols, wc = (size_t)s->w * c;
	uint32_t b, iy, oy, ox, in_lo, in_hi;

	conv_inner_windows(s, d, &in_lo, &in_hi);
	for (b = 0; b < s->n; b++) {
		size_t row0 = (size_t)b * d->oh * d->ow;

		for (iy = 0; iy < s->h; iy++) {
			size_t off = ((size_t)b * s->h + iy) * wc;
			uint64_t ey = (uint64_t)iy + s->pad;
			float *row = img + off;
			uint32_t oy_lo, oy_hi;

			memset(row, 0, wc * sizeof(float));
			conv_covering(ey, s->k, s->stride, d->oh, &oy_lo, &oy_hi);
			for (oy = oy_lo; oy < oy_hi; oy++) {
				size_t ky = (size_t)(ey - (uint64_t)oy * s->stride);
				const float *band = col + (row0 + (size_t)oy * d->ow) * cols + ky * kc;

				for (ox = 0; ox < d->ow; ox++, band += cols) {
					int64_t x0 = (int64_t)ox * s->stride - (int64_t)s->pad;
					size_t lo = 0, hi = k;

					if (ox < in_lo || ox >= in_hi) {
						lo = x0 < 0 ? (size_t)-x0 : 0;
						hi = x0 + (int64_t)k > (int64_t)s->w ?
						     (size_t)((int64_t)s->w - x0) : k;
						if (hi <= lo)
							continue;
					}
					conv_add_run(row + (size_t)(x0 + (int64_t)lo) * c, band + lo * c,
						     (hi - lo) * c);
				}
			}
			if (y)
				CONV_NAME(mask_run)(row, y + off, wc);
		}
	}
}
