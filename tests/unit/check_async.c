// SPDX-License-Identifier: MIT
/*
 * libspt's asynchronous steps on the CPU backend: submit/wait gives exactly
 * the numbers of spt_model_train_step(), in submission order; misuse is
 * refused with the documented codes; a diverged step leaves weights and
 * momentum untouched and does not cancel the next one.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spt/spt.h"
#include "../../runtime/src/internal.h"

#define IN 16
#define BATCH 8
#define STEPS 6

static struct spt_ctx *cpu_ctx(void)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };
	struct spt_ctx *ctx = NULL;

	ck_assert_int_eq(spt_ctx_open(&o, &ctx), 0);
	return ctx;
}

/* A small BFP8 MLP that prunes (so the controller carries state between steps). */
static struct spt_model *model(struct spt_ctx *ctx, enum spt_precision p)
{
	struct spt_model *m;
	struct spt_train_opts o;

	spt_train_opts_init(&o, 20);
	o.precision = p;
	o.batch = BATCH;
	o.ctl.warmup_steps = 1;
	o.ctl.ramp_steps = 2;
	ck_assert_int_eq(spt_model_create(ctx, 1, 4, 4, 3, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 32), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 3), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	if (p == SPT_PRECISION_BFP8)
		ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.6f, SPT_PRUNE_DETERMINISTIC), 0);
	return m;
}

static void batch(int s, float *x, uint8_t *lab)
{
	int i;

	for (i = 0; i < BATCH * IN; i++)
		x[i] = (float)(((i + 1) * (s + 3) * 37) % 101) / 50.0f - 1.0f;
	for (i = 0; i < BATCH; i++)
		lab[i] = (uint8_t)((i + s) % 3);
}

START_TEST(test_async_steps_match_sync_steps)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *a = model(ctx, SPT_PRECISION_BFP8), *b = model(ctx, SPT_PRECISION_BFP8);
	struct spt_step_stats sa[STEPS], sb[STEPS];
	struct spt_layer_stats la[STEPS], lb;
	struct spt_controller_state ca[STEPS], cb;
	float x[BATCH * IN], wa[32 * IN], wb[32 * IN];
	uint8_t lab[BATCH];
	int s, got = 0;

	for (s = 0; s < STEPS; s++) {
		batch(s, x, lab);
		ck_assert_int_eq(spt_model_train_step(a, x, lab, BATCH, &sa[s]), 0);
		ck_assert_int_eq(spt_model_layer_stats(a, 1, &la[s]), 0);
		ck_assert_int_eq(spt_model_controller_state(a, 1, SPT_CLASS_ACT, &ca[s]), 0);
	}
	/* one step ahead: batch s is submitted before step s - 1 is waited for */
	for (s = 0; s < STEPS; s++) {
		batch(s, x, lab);
		ck_assert_int_eq(spt_model_train_step_submit(b, x, lab, BATCH), 0);
		memset(x, 0xff, sizeof(x));	/* the caller may reuse its buffers at once */
		if (s == 0)
			continue;
		ck_assert_int_eq(spt_model_train_step_wait(b, &sb[got]), 0);
		/* step s runs now; the statistics are those of step s - 1 */
		ck_assert_int_eq(spt_model_layer_stats(b, 1, &lb), 0);
		ck_assert_int_eq(spt_model_controller_state(b, 1, SPT_CLASS_ACT, &cb), 0);
		ck_assert_mem_eq(&la[got], &lb, sizeof(lb));
		ck_assert_mem_eq(&ca[got], &cb, sizeof(cb));
		ck_assert_uint_eq(spt_model_steps(b), (uint64_t)got + 1);
		got++;
	}
	ck_assert_int_eq(spt_model_train_step_wait(b, &sb[got++]), 0);
	ck_assert_int_eq(got, STEPS);
	for (s = 0; s < STEPS; s++) {
		ck_assert_uint_eq(sb[s].step, (uint64_t)s + 1);	/* in submission order */
		ck_assert_mem_eq(&sa[s].loss, &sb[s].loss, sizeof(float));
		ck_assert_uint_eq(sa[s].correct, sb[s].correct);
		ck_assert_uint_eq(sa[s].interim_zeros, sb[s].interim_zeros);
		ck_assert_uint_eq(sa[s].total.exec_macs, sb[s].total.exec_macs);
		ck_assert(sb[s].device_seconds == 0);
	}
	ck_assert(sa[STEPS - 1].interim_zeros > 0);	/* the controller pruned */
	ck_assert_int_eq(spt_model_get_params(a, 0, wa, NULL), 0);
	ck_assert_int_eq(spt_model_get_params(b, 0, wb, NULL), 0);
	ck_assert_mem_eq(wa, wb, sizeof(wa));
	ck_assert_uint_eq(spt_model_steps(b), STEPS);
	spt_model_free(a);
	spt_model_free(b);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_async_misuse_is_refused)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = model(ctx, SPT_PRECISION_BFP8);
	struct spt_sparsity off = { 0 };
	struct spt_layer_stats ls;
	struct spt_controller_state cs;
	float x[BATCH * IN], w[32 * IN], gw[32 * IN];
	uint8_t lab[BATCH];
	double loss;

	batch(0, x, lab);
	ck_assert_int_eq(spt_model_train_step_wait(m, NULL), -EINVAL);	/* nothing outstanding */
	ck_assert_int_eq(spt_model_train_step_wait(NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_train_step_submit(NULL, x, lab, BATCH), -EINVAL);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, NULL, BATCH), -EINVAL);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH + 1), -EINVAL);
	x[3] = NAN;
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), -EDOM);
	batch(0, x, lab);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), 0);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), 0);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), -EBUSY);	/* two at most */
	/* nothing else may read or change the model meanwhile */
	ck_assert_int_eq(spt_model_train_step(m, x, lab, BATCH, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_evaluate(m, x, lab, BATCH, &loss, NULL, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_gradients(m, x, lab, BATCH, 0, gw, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_set_params(m, 0, w, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_set_sparsity(m, 0, SPT_CLASS_WGRAD, &off), -EBUSY);
	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.5f, SPT_PRUNE_DETERMINISTIC), -EBUSY);
	ck_assert_int_eq(spt_model_save(m, "/tmp/spt-async-busy.ckpt", NULL, 0), -EBUSY);
	ck_assert_int_eq(spt_model_load(m, "/tmp/spt-async-busy.ckpt", NULL, 0, NULL), -EBUSY);
	ck_assert_int_eq(spt_model_train_step_wait(m, NULL), 0);
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), -EBUSY);	/* one still out */
	ck_assert_int_eq(spt_model_layer_stats(m, 0, &ls), 0);	/* of the step waited for */
	ck_assert_int_eq(spt_model_controller_state(m, 0, SPT_CLASS_ACT, &cs), 0);
	ck_assert_int_eq(spt_model_train_step_wait(m, NULL), 0);
	ck_assert_int_eq(spt_model_train_step_wait(m, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), 0);
	ck_assert_int_eq(spt_model_layer_stats(m, 0, &ls), 0);
	ck_assert_uint_eq(spt_model_steps(m), 2);
	/* freeing with steps outstanding waits for them (ASan: nothing leaks) */
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), 0);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), 0);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_diverged_step_touches_nothing_and_next_runs)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = model(ctx, SPT_PRECISION_FP32);
	struct rt_layer *l0 = &m->layers[0];
	float x[BATCH * IN], big[BATCH * IN], w[32 * IN], w2[32 * IN];
	float *v = malloc(sizeof(w)), *v2 = malloc(sizeof(w));
	uint8_t lab[BATCH];
	struct spt_step_stats st;
	int i;

	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(v2);
	batch(0, x, lab);
	for (i = 0; i < BATCH * IN; i++)
		big[i] = 3e38f;
	ck_assert_int_eq(spt_model_train_step(m, x, lab, BATCH, NULL), 0);	/* momentum != 0 */
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), 0);
	memcpy(v, l0->vw, sizeof(w));
	/* a step that overflows, then a good one behind it */
	ck_assert_int_eq(spt_model_train_step_submit(m, big, lab, BATCH), 0);
	ck_assert_int_eq(spt_model_train_step_submit(m, x, lab, BATCH), 0);
	ck_assert_int_eq(spt_model_train_step_wait(m, &st), -SPT_EDIVERGED);
	ck_assert_uint_eq(spt_model_steps(m), 1);
	ck_assert_int_eq(spt_model_train_step_wait(m, &st), 0);
	ck_assert_uint_eq(st.step, 2);
	ck_assert_uint_eq(spt_model_steps(m), 2);
	/* the diverged step changed neither weights nor momentum: replay without it */
	spt_model_free(m);
	m = model(ctx, SPT_PRECISION_FP32);
	l0 = &m->layers[0];
	ck_assert_int_eq(spt_model_train_step(m, x, lab, BATCH, NULL), 0);
	ck_assert_int_eq(spt_model_get_params(m, 0, w2, NULL), 0);
	ck_assert_mem_eq(w, w2, sizeof(w));
	memcpy(v2, l0->vw, sizeof(w));
	ck_assert_mem_eq(v, v2, sizeof(w));
	ck_assert_int_eq(spt_model_train_step(m, big, lab, BATCH, NULL), -SPT_EDIVERGED);
	ck_assert_int_eq(spt_model_get_params(m, 0, w2, NULL), 0);
	ck_assert_mem_eq(w, w2, sizeof(w));
	ck_assert_mem_eq(v, l0->vw, sizeof(w));
	free(v);
	free(v2);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

static Suite *async_suite(void)
{
	Suite *s = suite_create("async");
	TCase *tc = tcase_create("steps");

	tcase_add_test(tc, test_async_steps_match_sync_steps);
	tcase_add_test(tc, test_async_misuse_is_refused);
	tcase_add_test(tc, test_diverged_step_touches_nothing_and_next_runs);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(async_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
