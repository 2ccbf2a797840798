// SPDX-License-Identifier: MIT
/*
 * Training step helpers: softmax cross-entropy, SGD with momentum and the
 * inverse normal CDF used by the pruning threshold formula.
 *
 * Plain scalar code in a fixed order (built with -ffp-contract=off), so the
 * device model and the CPU backend agree bit for bit.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>

#include "spt/core.h"
#include "train_internal.h"

static int xent_check(const float *logits, const uint8_t *labels, uint32_t rows,
		      uint32_t classes)
{
	size_t i, n = (size_t)rows * classes;
	uint32_t r;

	for (r = 0; r < rows; r++)
		if (labels[r] >= classes)
			return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isfinite(logits[i]))
			return -EDOM;
	return 0;
}

int spt_softmax_xent(const float *logits, const uint8_t *labels, uint32_t rows,
		     uint32_t classes, float *loss, uint32_t *correct,
		     float *dlogits)
{
	double total = 0.0;
	uint32_t hits = 0, r, c;
	int ret;

	if (!logits || !labels || !loss || rows == 0 || classes == 0)
		return -EINVAL;
	ret = xent_check(logits, labels, rows, classes);
	if (ret)
		return ret;

	for (r = 0; r < rows; r++) {
		const float *l = logits + (size_t)r * classes;
		uint32_t argmax = 0;
		double m, sum = 1.0, lse;	/* exp(l[argmax] - m) = 1 */

		for (c = 1; c < classes; c++)
			if (l[c] > l[argmax])
				argmax = c;
		m = l[argmax];
		for (c = 0; c < classes; c++)
			if (c != argmax)
				sum += exp((double)l[c] - m);
		lse = log(sum);
		/* -log softmax(label) = log(sum) - (l[label] - m) */
		total += lse - ((double)l[labels[r]] - m);
		if (argmax == labels[r])
			hits++;
		if (dlogits) {
			float *d = dlogits + (size_t)r * classes;

			for (c = 0; c < classes; c++) {
				double p = exp((double)l[c] - m) / sum;

				if (c == labels[r])
					p -= 1.0;
				d[c] = (float)(p / rows);
			}
		}
	}
	*loss = (float)(total / rows);
	if (correct)
		*correct = hits;
	return 0;
}

/*
 * Check everything first (nothing changes on -EDOM), then update; both loops
 * are free of early exits and the arrays do not overlap, so they vectorise.
 * Element-wise, so the result does not depend on the vector width.
 */
static int sgd_update(float *restrict w, float *restrict v, const float *restrict g,
		      size_t n, float lr, float momentum, float weight_decay)
{
	uint32_t bad = 0;
	size_t i;

	for (i = 0; i < n; i++)
		bad |= spt_not_finite(g[i]) | spt_not_finite(w[i]) | spt_not_finite(v[i]);
	if (bad)
		return -EDOM;
	spt_sgd_span(w, v, g, n, lr, momentum, weight_decay);
	return 0;
}

int spt_sgd_momentum(float *w, float *v, const float *g, size_t n, float lr,
		     float momentum, float weight_decay)
{
	if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (!w || !v || !g)
		return -EINVAL;
	return sgd_update(w, v, g, n, lr, momentum, weight_decay);
}

/*
 * P. J. Acklam's rational approximation of the inverse normal CDF (relative
 * error 1.15e-9), refined by one Halley step on erfc for full double accuracy.
 */
static const double ppf_a[6] = {
	-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
	1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00,
};
static const double ppf_b[5] = {
	-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
	6.680131188771972e+01, -1.328068155288572e+01,
};
static const double ppf_c[6] = {
	-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
	-2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00,
};
static const double ppf_d[4] = {
	7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
	3.754408661907416e+00,
};

static double ppf_tail(double q)
{
	const double *c = ppf_c, *d = ppf_d;

	return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
	       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
}

double spt_norm_ppf(double p)
{
	const double p_low = 0.02425, p_high = 1.0 - 0.02425;
	const double *a = ppf_a, *b = ppf_b;
	double x, e, u;

	if (!(p > 0.0 && p < 1.0))
		return NAN;
	if (p < p_low) {
		x = ppf_tail(sqrt(-2.0 * log(p)));
	} else if (p <= p_high) {
		double q = p - 0.5, r = q * q;

		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
	} else {
		x = -ppf_tail(sqrt(-2.0 * log1p(-p)));
	}
	/* Halley refinement: e = Phi(x) - p. */
	e = 0.5 * erfc(-x / sqrt(2.0)) - p;
	u = e * 2.5066282746310002 * exp(x * x / 2.0);	/* sqrt(2 pi) */
	x = x - u / (1.0 + x * u / 2.0);
	return x;
}
