// SPDX-License-Identifier: MIT
/*
 * The closed-loop threshold controller: warm-up, cubic ramp, the Gaussian
 * starting threshold, convergence to the target, back-off on rising loss,
 * and the state a trained model reports.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/src/internal.h"

static void opts(struct spt_train_opts *o)
{
	spt_train_opts_init(o, 1000);
	o->ctl.warmup_steps = 10;
	o->ctl.ramp_steps = 100;
}

static struct rt_ctl target_ctl(float target, enum spt_prune_mode kind)
{
	struct rt_ctl c;

	rt_ctl_init(&c);
	c.cfg.mode = SPT_SPARSITY_TARGET;
	c.cfg.kind = kind;
	c.cfg.target = target;
	c.final_target = target;
	return c;
}

/*
 * A synthetic tensor: a fraction s_nat of exact zeros, the rest |x| half-normal
 * with scale sigma; pruning below tau zeroes a fraction erf(tau/(sigma sqrt 2)).
 */
static void synth_stats(struct spt_tensor_stats *ts, double s_nat, double sigma, double tau)
{
	const uint64_t n = 100000;
	double nz = (1 - s_nat) * n, pruned = tau > 0 ? nz * erf(tau / (sigma * sqrt(2.0))) : 0;

	memset(ts, 0, sizeof(*ts));
	ts->elements = n;
	ts->natural_zeros = (uint64_t)(s_nat * n);
	ts->pruned = (uint64_t)pruned;
	ts->nonzeros = n - ts->natural_zeros - ts->pruned;
	ts->sum_abs = nz * sigma * sqrt(2.0 / M_PI);
}

START_TEST(test_gaussian_formula_matches_table)
{
	/* tau = ppf((1+p)/2) * sqrt(pi/2) * mean|g| */
	double k = sqrt(M_PI / 2.0);

	ck_assert_double_eq_tol(rt_tau_formula(0.5, 1.0), 0.674 * k, 2e-3);
	ck_assert_double_eq_tol(rt_tau_formula(0.8, 1.0), 1.282 * k, 2e-3);
	ck_assert_double_eq_tol(rt_tau_formula(0.9, 2.0), 2 * 1.645 * k, 4e-3);
	ck_assert_double_eq_tol(rt_tau_formula(0.95, 1.0), 1.960 * k, 2e-3);
	ck_assert(rt_tau_formula(0.9, 0.0) > 0);	/* never zero: the loop could not recover */
}
END_TEST

START_TEST(test_no_pruning_during_warmup)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	uint64_t s;

	opts(&o);
	for (s = 0; s < 10; s++) {
		rt_ctl_begin(&c, &o, s, 1, SPT_CLASS_ACT, &p);
		ck_assert_int_eq(p.mode, SPT_PRUNE_OFF);
		ck_assert_uint_eq(c.phase, 1);
		synth_stats(&ts, 0.5, 1.0, 0);
		rt_ctl_end(&c, &o, &ts);
	}
	rt_ctl_begin(&c, &o, 10, 1, SPT_CLASS_ACT, &p);
	ck_assert_int_eq(p.mode, SPT_PRUNE_DETERMINISTIC);
	ck_assert_uint_eq(c.phase, 2);
	ck_assert_float_eq_tol(c.s_nat, 0.5f, 1e-4f);
}
END_TEST

START_TEST(test_ramp_is_cubic_from_natural_sparsity)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	float prev = 0;
	uint64_t s;

	opts(&o);
	for (s = 0; s < 200; s++) {
		rt_ctl_begin(&c, &o, s, 1, SPT_CLASS_ACT, &p);
		if (s == 10)
			ck_assert_float_eq_tol(c.target, 0.5f, 1e-4f);	/* s_i = natural */
		if (s == 60)	/* halfway: s_f + (s_i - s_f) / 8 */
			ck_assert_float_eq_tol(c.target, 0.9f - 0.4f / 8, 1e-4f);
		if (s >= 110) {
			ck_assert_float_eq(c.target, 0.9f);
			ck_assert_uint_eq(c.phase, 3);
		}
		if (s >= 10)
			ck_assert_msg(c.target >= prev, "target fell at step %llu",
				      (unsigned long long)s);
		prev = c.target;
		synth_stats(&ts, 0.5, 1.0, p.mode ? p.tau : 0);
		rt_ctl_end(&c, &o, &ts);
	}
}
END_TEST

START_TEST(test_first_threshold_comes_from_the_formula)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	double mean_abs = sqrt(2.0 / M_PI) * 2.0, p_eff;

	opts(&o);
	o.ctl.warmup_steps = 1;
	o.ctl.ramp_steps = 0;
	rt_ctl_begin(&c, &o, 0, 1, SPT_CLASS_ACT, &p);
	synth_stats(&ts, 0.5, 2.0, 0);
	rt_ctl_end(&c, &o, &ts);
	rt_ctl_begin(&c, &o, 1, 1, SPT_CLASS_ACT, &p);
	p_eff = (0.9 - 0.5) / (1 - 0.5);
	ck_assert_double_eq_tol(p.tau, rt_tau_formula(p_eff, mean_abs), 1e-4);
	/* for a true half-normal the formula is exact: sparsity lands on target */
	synth_stats(&ts, 0.5, 2.0, p.tau);
	ck_assert_double_eq_tol(1.0 - (double)ts.nonzeros / ts.elements, 0.9, 2e-3);
}
END_TEST

START_TEST(test_closed_loop_converges_to_target)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_STOCHASTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	uint64_t s;
	double sigma = 1.0;

	opts(&o);
	for (s = 0; s < 600; s++) {
		/* the distribution drifts (sigma x3): the loop must follow */
		sigma = 1.0 + 2.0 * (double)s / 600;
		rt_ctl_begin(&c, &o, s, 1, SPT_CLASS_ERR, &p);
		synth_stats(&ts, 0.3, sigma, p.mode ? p.tau : 0);
		rt_ctl_end(&c, &o, &ts);
	}
	ck_assert_msg(fabs(c.s_ema - 0.9) < 0.01, "s_ema %g, target 0.9", c.s_ema);
	ck_assert_msg(fabs(1.0 - (double)ts.nonzeros / ts.elements - 0.9) < 0.02,
		      "sparsity %g", 1.0 - (double)ts.nonzeros / ts.elements);
}
END_TEST

/* Without warm-up the first step only measures; tau then starts from the data. */
START_TEST(test_no_warmup_starts_from_measured_values)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	uint64_t s;

	opts(&o);
	o.ctl.warmup_steps = 0;
	o.ctl.ramp_steps = 20;
	rt_ctl_begin(&c, &o, 0, 1, SPT_CLASS_ACT, &p);
	ck_assert_int_eq(p.mode, SPT_PRUNE_OFF);
	synth_stats(&ts, 0.5, 1.0, 0);
	rt_ctl_end(&c, &o, &ts);
	for (s = 1; s < 200; s++) {
		rt_ctl_begin(&c, &o, s, 1, SPT_CLASS_ACT, &p);
		ck_assert_int_eq(p.mode, SPT_PRUNE_DETERMINISTIC);
		ck_assert_msg(p.tau >= 1e-3f * 0.79f, "step %llu: tau %g collapsed",
			      (unsigned long long)s, p.tau);
		synth_stats(&ts, 0.5, 1.0, p.tau);
		rt_ctl_end(&c, &o, &ts);
	}
	ck_assert_msg(fabs(c.s_ema - 0.9) < 0.01, "s_ema %g after 200 steps", c.s_ema);
}
END_TEST

/* A fast ramp must not wind the loop up into pruning everything. */
START_TEST(test_fast_ramp_does_not_overshoot)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	double smax = 0;
	uint64_t s;

	opts(&o);
	o.ctl.warmup_steps = 2;
	o.ctl.ramp_steps = 10;
	for (s = 0; s < 150; s++) {
		rt_ctl_begin(&c, &o, s, 1, SPT_CLASS_ACT, &p);
		synth_stats(&ts, 0.5, 1.0, p.mode ? p.tau : 0);
		rt_ctl_end(&c, &o, &ts);
		smax = fmax(smax, 1.0 - (double)ts.nonzeros / ts.elements);
	}
	ck_assert_msg(smax < 0.97, "sparsity overshot to %g (target 0.9)", smax);
	ck_assert_msg(fabs(c.s_ema - 0.9) < 0.01, "s_ema %g", c.s_ema);
}
END_TEST

START_TEST(test_tau_moves_toward_the_target)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.9f, SPT_PRUNE_DETERMINISTIC);
	struct spt_prune p;
	struct spt_tensor_stats ts;
	float t0;

	opts(&o);
	o.ctl.warmup_steps = 0;
	o.ctl.ramp_steps = 0;
	rt_ctl_begin(&c, &o, 0, 1, SPT_CLASS_ACT, &p);
	c.tau = 0.5f;
	c.s_ema = 0.9f;
	t0 = c.tau;
	synth_stats(&ts, 0.0, 1.0, 0.1);	/* far too dense */
	rt_ctl_end(&c, &o, &ts);
	ck_assert_float_gt(c.tau, t0);
	c.s_ema = 0.9f;
	t0 = c.tau;
	synth_stats(&ts, 0.0, 1.0, 5.0);	/* far too sparse */
	rt_ctl_end(&c, &o, &ts);
	ck_assert_float_lt(c.tau, t0);
}
END_TEST

START_TEST(test_static_threshold_stays_fixed)
{
	struct spt_train_opts o;
	struct rt_ctl c;
	struct spt_prune p;
	struct spt_tensor_stats ts;
	uint64_t s;

	opts(&o);
	rt_ctl_init(&c);
	c.cfg.mode = SPT_SPARSITY_STATIC;
	c.cfg.kind = SPT_PRUNE_STOCHASTIC;
	c.cfg.tau = 0.25f;
	for (s = 0; s < 50; s++) {
		rt_ctl_begin(&c, &o, s, 0, SPT_CLASS_WCOPY, &p);
		ck_assert_int_eq(p.mode, SPT_PRUNE_STOCHASTIC);
		ck_assert_float_eq(p.tau, 0.25f);
		synth_stats(&ts, 0.0, 1.0, 0.25);
		rt_ctl_end(&c, &o, &ts);
	}
}
END_TEST

START_TEST(test_stochastic_seeds_differ_per_step_layer_and_class)
{
	struct spt_train_opts o;
	struct rt_ctl c = target_ctl(0.5f, SPT_PRUNE_STOCHASTIC);
	struct spt_prune a, b, d, e;

	opts(&o);
	rt_ctl_begin(&c, &o, 20, 1, SPT_CLASS_ERR, &a);
	rt_ctl_begin(&c, &o, 21, 1, SPT_CLASS_ERR, &b);
	rt_ctl_begin(&c, &o, 21, 2, SPT_CLASS_ERR, &d);
	rt_ctl_begin(&c, &o, 21, 2, SPT_CLASS_ACT, &e);
	ck_assert(a.seed != b.seed && b.seed != d.seed && d.seed != e.seed);
}
END_TEST

static struct spt_model *small(struct spt_ctx **ctx, uint32_t warmup, uint32_t ramp)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_CPU };
	struct spt_model *m;
	struct spt_train_opts o;

	ck_assert_int_eq(spt_ctx_open(&co, ctx), 0);
	spt_train_opts_init(&o, 400);
	o.batch = 32;
	o.ctl.warmup_steps = warmup;
	o.ctl.ramp_steps = ramp;
	o.ctl.backoff_window = 20;
	ck_assert_int_eq(spt_model_create(*ctx, 1, 8, 8, 4, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 96), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 64), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 4), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	return m;
}

START_TEST(test_backoff_lowers_targets_on_rising_loss)
{
	struct spt_ctx *ctx;
	struct spt_model *m = small(&ctx, 0, 0);
	struct spt_controller_state cs;
	int i;

	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.9f, SPT_PRUNE_DETERMINISTIC), 0);
	for (i = 0; i < 300; i++) {
		m->steps++;
		rt_ctl_loss(m, i < 150 ? 1.0f : 1.0f + 0.05f * (i - 150));
	}
	ck_assert_int_eq(spt_model_controller_state(m, 1, SPT_CLASS_ACT, &cs), 0);
	ck_assert_uint_gt(cs.backoffs, 0);
	ck_assert_float_lt(cs.final_target, 0.9f);
	ck_assert_float_ge(cs.final_target, m->opts.ctl.backoff_floor);
	/* steady loss: no back-off */
	spt_model_free(m);
	spt_ctx_close(ctx);
	m = small(&ctx, 0, 0);
	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.9f, SPT_PRUNE_DETERMINISTIC), 0);
	for (i = 0; i < 300; i++) {
		m->steps++;
		rt_ctl_loss(m, 1.0f - 0.001f * i);
	}
	ck_assert_int_eq(spt_model_controller_state(m, 1, SPT_CLASS_ACT, &cs), 0);
	ck_assert_uint_eq(cs.backoffs, 0);
	ck_assert_float_eq(cs.final_target, 0.9f);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

/* End to end: a trained model reaches its activation target and reports it. */
START_TEST(test_model_reaches_activation_target)
{
	struct spt_ctx *ctx;
	struct spt_model *m = small(&ctx, 10, 60);
	struct spt_controller_state cs;
	struct spt_layer_stats ls;
	struct spt_step_stats st;
	float x[32 * 64];
	uint8_t lab[32];
	uint64_t r = 99;
	double s_sum = 0;
	int i, j, l;

	m->opts.ctl.backoff_window = 0;
	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.85f, SPT_PRUNE_DETERMINISTIC), 0);
	for (i = 0; i < 200; i++) {
		for (j = 0; j < 32 * 64; j++)
			x[j] = (float)((rt_rng_next(&r) >> 40) * 0x1.0p-24);
		for (j = 0; j < 32; j++)
			lab[j] = (uint8_t)((x[j * 64] > 0.5f) + 2 * (x[j * 64 + 1] > 0.5f));
		ck_assert_int_eq(spt_model_train_step(m, x, lab, 32, &st), 0);
		if (i == 5) {
			spt_model_controller_state(m, 1, SPT_CLASS_ACT, &cs);
			ck_assert_uint_eq(cs.phase, 1);
		}
		if (i >= 150)
			s_sum += st.interim_sparsity;
	}
	for (l = 1; l <= 2; l++) {
		ck_assert_int_eq(spt_model_controller_state(m, l, SPT_CLASS_ACT, &cs), 0);
		ck_assert_uint_eq(cs.phase, 3);
		ck_assert_msg(fabs(cs.s_ema - 0.85) < 0.03, "layer %d ACT s_ema %g, target 0.85", l,
			      cs.s_ema);
		ck_assert_int_eq(spt_model_layer_stats(m, l, &ls), 0);
		ck_assert_uint_gt(ls.cls[SPT_CLASS_ACT].pruned, 0);
		ck_assert_float_gt(ls.cls[SPT_CLASS_ACT].tau, 0);
	}
	/* the network input is never pruned */
	ck_assert_int_eq(spt_model_controller_state(m, 0, SPT_CLASS_ACT, &cs), 0);
	ck_assert_uint_eq(cs.phase, 0);
	ck_assert_msg(s_sum / 50 > 0.8, "mean interim sparsity %g", s_sum / 50);
	ck_assert_uint_lt(st.total.exec_macs, st.total.dense_macs / 2);
	ck_assert(st.total.energy_pj > 0 && st.total.eff_tops_per_w > 0);
	ck_assert(st.bytes_vs_fp16 > 0);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_lr_schedules)
{
	struct spt_train_opts o;

	spt_train_opts_init(&o, 100);
	o.lr = 1.0f;
	ck_assert_float_eq_tol(rt_lr(&o, 0), 1.0f, 1e-6f);
	ck_assert_float_eq_tol(rt_lr(&o, 50), 0.5f, 1e-6f);
	ck_assert_float_eq_tol(rt_lr(&o, 100), 0.0f, 1e-6f);
	o.lr_min_frac = 0.1f;
	ck_assert_float_eq_tol(rt_lr(&o, 100), 0.1f, 1e-6f);
	o.lr_schedule = SPT_LR_STEP;
	ck_assert_float_eq_tol(rt_lr(&o, 60), 0.1f, 1e-6f);
	ck_assert_float_eq_tol(rt_lr(&o, 80), 0.01f, 1e-6f);
	o.lr_schedule = SPT_LR_CONSTANT;
	ck_assert_float_eq(rt_lr(&o, 99), 1.0f);
}
END_TEST

static Suite *controller_suite(void)
{
	Suite *s = suite_create("controller");
	TCase *unit = tcase_create("unit"), *model = tcase_create("model");

	tcase_add_test(unit, test_gaussian_formula_matches_table);
	tcase_add_test(unit, test_no_pruning_during_warmup);
	tcase_add_test(unit, test_ramp_is_cubic_from_natural_sparsity);
	tcase_add_test(unit, test_first_threshold_comes_from_the_formula);
	tcase_add_test(unit, test_closed_loop_converges_to_target);
	tcase_add_test(unit, test_no_warmup_starts_from_measured_values);
	tcase_add_test(unit, test_fast_ramp_does_not_overshoot);
	tcase_add_test(unit, test_tau_moves_toward_the_target);
	tcase_add_test(unit, test_static_threshold_stays_fixed);
	tcase_add_test(unit, test_stochastic_seeds_differ_per_step_layer_and_class);
	tcase_add_test(unit, test_lr_schedules);
	suite_add_tcase(s, unit);
	tcase_add_test(model, test_backoff_lowers_targets_on_rising_loss);
	tcase_add_test(model, test_model_reaches_activation_target);
	tcase_set_timeout(model, 60);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(controller_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
