// SPDX-License-Identifier: MIT
/*
 * The closed-loop threshold controller (research/algorithms.md):
 * dense warm-up, cubic ramp of the target s*(k) = s_f + (s_i - s_f)(1 - k/K)^3,
 * tau started from the Gaussian formula corrected for natural zeros, then
 * s_ema <- (1-a) s_ema + a s,  tau <- tau * exp(clamp(eta a (s* - s), +-0.1)) within
 * [1e-3, 100] x mean |x|,
 * and a back-off of the targets when the training loss rises persistently.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define TAU_MIN 1e-30f
#define TAU_MAX_LOG_STEP 0.1	/* tau changes by at most e^0.1 per step */

void rt_ctl_init(struct rt_ctl *c)
{
	memset(c, 0, sizeof(*c));
	c->cfg.mode = SPT_SPARSITY_OFF;
	c->s_ema = -1.0f;
	c->s_nat = -1.0f;
}

float rt_tau_formula(double p, double mean_abs)
{
	double z;

	if (!(mean_abs > 0) || !isfinite(mean_abs))
		return TAU_MIN;
	if (p < 0.01)
		p = 0.01;
	if (p > 0.999)
		p = 0.999;
	z = spt_norm_ppf((1.0 + p) / 2.0);
	return (float)(z * sqrt(M_PI / 2.0) * mean_abs);
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t s = a ^ (b * 0x9e3779b97f4a7c15ULL);

	return rt_rng_next(&s);
}

void rt_ctl_begin(struct rt_ctl *c, const struct spt_train_opts *o, uint64_t step,
		  uint32_t layer, uint32_t cls, struct spt_prune *p)
{
	uint64_t k;

	memset(p, 0, sizeof(*p));
	p->mode = SPT_PRUNE_OFF;
	p->seed = mix(mix(o->seed, step), (uint64_t)layer << 8 | cls);
	switch (c->cfg.mode) {
	case SPT_SPARSITY_OFF:
		c->phase = 0;
		c->target = 0;
		return;
	case SPT_SPARSITY_STATIC:
		c->phase = 3;
		c->tau = c->cfg.tau;
		p->mode = c->cfg.kind;
		p->tau = c->tau;
		return;
	case SPT_SPARSITY_TARGET:
		break;
	}
	if (step < o->ctl.warmup_steps) {
		c->phase = 1;
		c->target = 0;
		c->tau = 0;
		return;
	}
	k = step - o->ctl.warmup_steps;
	if (!c->started) {
		c->started = true;
		c->s_start = c->s_nat > 0 ? c->s_nat : 0;
		if (c->s_start > c->final_target)
			c->s_start = c->final_target;
		c->s_ema = c->s_nat > 0 ? c->s_nat : 0;
	}
	if (k < o->ctl.ramp_steps) {
		double f = 1.0 - (double)k / o->ctl.ramp_steps;

		c->phase = 2;
		c->target = (float)(c->final_target + (c->s_start - c->final_target) * f * f * f);
	} else {
		c->phase = 3;
		c->target = c->final_target;
	}
	if (c->tau <= 0) {
		/* first pruned step: tau from the Gaussian fit of last step's values */
		double s_nat = c->s_nat > 0 ? c->s_nat : 0;

		if (!c->nz_in)
			return;	/* nothing measured yet (no warm-up): prune from the next step */
		double p_eff = s_nat < 1 ? (c->target - s_nat) / (1 - s_nat) : 0;
		double mean_abs = c->sum_abs / (double)c->nz_in;

		c->tau = rt_tau_formula(p_eff, mean_abs);
	}
	p->mode = c->cfg.kind;
	p->tau = c->tau;
}

void rt_ctl_end(struct rt_ctl *c, const struct spt_train_opts *o,
		const struct spt_tensor_stats *ts)
{
	double s, s_nat, a = o->ctl.ema, mean_abs, step;

	c->last.elements = ts->elements;
	c->last.natural_zeros = ts->natural_zeros;
	c->last.pruned = ts->pruned + ts->underflow;
	c->last.nonzeros = ts->nonzeros;
	c->last.tau = c->phase >= 2 ? c->tau : 0;
	if (ts->elements == 0)
		return;
	c->sum_abs = ts->sum_abs;
	c->nz_in = ts->elements - ts->natural_zeros;
	s = 1.0 - (double)ts->nonzeros / (double)ts->elements;
	s_nat = (double)ts->natural_zeros / (double)ts->elements;
	c->s_nat = c->s_nat < 0 ? (float)s_nat : (float)((1 - a) * c->s_nat + a * s_nat);
	if (c->cfg.mode != SPT_SPARSITY_TARGET || !c->started) {
		c->s_ema = c->s_ema < 0 ? (float)s : (float)((1 - a) * c->s_ema + a * s);
		return;
	}
	c->s_ema = (float)((1 - a) * c->s_ema + a * s);
	if (c->tau <= 0)
		return;	/* not pruning yet */
	/*
	 * The loop integrates this step's error with gain eta * a: on average
	 * the same correction as eta * (s* - s_ema), without the EMA's lag,
	 * which let the integrator wind up and overshoot to ~100% sparsity on
	 * fast ramps.  s_ema is kept for the state report.  The per-step change
	 * is bounded as well.
	 */
	step = o->ctl.eta * a * (c->target - s);
	if (step > TAU_MAX_LOG_STEP)
		step = TAU_MAX_LOG_STEP;
	if (step < -TAU_MAX_LOG_STEP)
		step = -TAU_MAX_LOG_STEP;
	c->tau = (float)(c->tau * exp(step));
	/* keep tau within [1e-3, 100] x mean |x| so the loop can always recover */
	mean_abs = c->nz_in ? c->sum_abs / (double)c->nz_in : 0;
	if (mean_abs > 0 && c->tau < 1e-3 * mean_abs)
		c->tau = (float)(1e-3 * mean_abs);
	if (mean_abs > 0 && c->tau > 100.0 * mean_abs)
		c->tau = (float)(100.0 * mean_abs);
	if (!(c->tau >= TAU_MIN))
		c->tau = TAU_MIN;
}

void rt_ctl_loss(struct spt_model *m, float loss)
{
	const struct spt_controller_opts *co = &m->opts.ctl;
	int i, j;

	if (m->steps <= 1) {
		m->loss_fast = m->loss_slow = loss;
		return;
	}
	m->loss_fast = 0.9 * m->loss_fast + 0.1 * loss;
	m->loss_slow = 0.99 * m->loss_slow + 0.01 * loss;
	if (!co->backoff_window || m->steps < (uint64_t)co->warmup_steps + 100)
		return;
	if (m->loss_fast > 1.02 * m->loss_slow)
		m->rising++;
	else
		m->rising = 0;
	if (m->rising < co->backoff_window)
		return;
	m->rising = 0;
	for (i = 0; i < m->nlayers; i++)
		for (j = 0; j < SPT_CLASS_COUNT; j++) {
			struct rt_ctl *c = &m->layers[i].ctl[j];

			if (c->cfg.mode != SPT_SPARSITY_TARGET ||
			    c->final_target <= co->backoff_floor)
				continue;
			c->final_target -= co->backoff_step;
			if (c->final_target < co->backoff_floor)
				c->final_target = co->backoff_floor;
			c->backoffs++;
		}
}

float rt_lr(const struct spt_train_opts *o, uint64_t step)
{
	double t, T = (double)o->total_steps;

	if (o->lr_schedule == SPT_LR_CONSTANT || T <= 0)
		return o->lr;
	t = step < o->total_steps ? (double)step / T : 1.0;
	if (o->lr_schedule == SPT_LR_STEP)
		return o->lr * (t < 0.5 ? 1.0f : t < 0.75 ? 0.1f : 0.01f);
	return (float)(o->lr * (o->lr_min_frac +
				(1 - o->lr_min_frac) * 0.5 * (1 + cos(M_PI * t))));
}
