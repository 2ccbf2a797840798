// SPDX-License-Identifier: MIT
/*
 * libspt API: contexts, backends, error strings, model construction and
 * every bad-argument path of the public functions.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spt/spt.h"

static struct spt_ctx *cpu_ctx(void)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };
	struct spt_ctx *ctx = NULL;

	ck_assert_int_eq(spt_ctx_open(&o, &ctx), 0);
	ck_assert_ptr_nonnull(ctx);
	return ctx;
}

static struct spt_model *small_model(struct spt_ctx *ctx, enum spt_precision p)
{
	struct spt_model *m;
	struct spt_train_opts o;

	spt_train_opts_init(&o, 100);
	o.precision = p;
	o.batch = 8;
	ck_assert_int_eq(spt_model_create(ctx, 1, 4, 4, 3, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 8), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 3), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	return m;
}

START_TEST(test_strerror_names_every_library_code)
{
	int codes[] = { SPT_EBADMAGIC, SPT_ETRUNCATED, SPT_EMISMATCH, SPT_ECHECKSUM,
			SPT_EVERSION, SPT_ENODEVICE, SPT_ENOBACKEND, SPT_EDIVERGED, SPT_EBADFILE };
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = spt_strerror(-codes[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, "unknown error"), "code %d has no message", codes[i]);
	}
	ck_assert_str_eq(spt_strerror(-EINVAL), "invalid argument");
	ck_assert_str_eq(spt_strerror(-99999), "unknown error");
	ck_assert_str_eq(spt_strerror(0), "success");
}
END_TEST

START_TEST(test_version_matches_header)
{
	int a = -1, b = -1, c = -1;

	spt_version(&a, &b, &c);
	ck_assert_int_eq(a, SPT_VERSION_MAJOR);
	ck_assert_int_eq(b, SPT_VERSION_MINOR);
	ck_assert_int_eq(c, SPT_VERSION_PATCH);
	spt_version(NULL, NULL, NULL);
}
END_TEST

START_TEST(test_ctx_open_rejects_bad_arguments)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };
	struct spt_ctx *ctx = (void *)1;

	ck_assert_int_eq(spt_ctx_open(NULL, &ctx), -EINVAL);
	ck_assert_int_eq(spt_ctx_open(&o, NULL), -EINVAL);
	o.flags = 2;
	ck_assert_int_eq(spt_ctx_open(&o, &ctx), -EINVAL);
	o.flags = 0;
	o.backend = 7;
	ck_assert_int_eq(spt_ctx_open(&o, &ctx), -EINVAL);
	ck_assert_ptr_null(ctx);
	spt_ctx_close(NULL);
}
END_TEST

START_TEST(test_cpu_ctx_info_reports_capabilities)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_ctx_info info;

	ck_assert_int_eq(spt_ctx_info(ctx, &info), 0);
	ck_assert_int_eq(info.backend, SPT_BACKEND_CPU);
	ck_assert_str_eq(info.backend_name, "cpu");
	ck_assert(info.has_bfp8 && info.has_fp32);
	ck_assert_uint_eq(info.ct_format_version, SPT_CT_VERSION);
	ck_assert_int_eq(spt_energy_model_check(&info.energy), 0);
	ck_assert_int_eq(spt_ctx_info(NULL, &info), -EINVAL);
	ck_assert_int_eq(spt_ctx_info(ctx, NULL), -EINVAL);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_device_backend_fails_clearly_without_device)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_DEVICE,
				  .device_path = "/nonexistent/accel0" };
	struct spt_ctx *ctx = (void *)1;
	int ret = spt_ctx_open(&o, &ctx);

	ck_assert_msg(ret < 0, "device backend opened a nonexistent node");
	ck_assert_ptr_null(ctx);
	setenv("SPT_DEVICE", "/nonexistent/accel9", 1);
	o.device_path = NULL;
	ck_assert_int_lt(spt_ctx_open(&o, &ctx), 0);
	unsetenv("SPT_DEVICE");
	/* /dev/null is not a DRM node */
	o.device_path = "/dev/null";
	ck_assert_int_eq(spt_ctx_open(&o, &ctx), -SPT_ENODEVICE);
	o.flags = SPT_CTX_QUERY_ONLY;
	ck_assert_int_eq(spt_ctx_open(&o, &ctx), -SPT_ENODEVICE);
}
END_TEST

START_TEST(test_energy_model_override_is_checked)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_energy_model e;

	spt_energy_model_init(&e);
	ck_assert_int_eq(spt_ctx_set_energy_model(ctx, &e), 0);
	e.clock_mhz = -1;
	ck_assert_int_lt(spt_ctx_set_energy_model(ctx, &e), 0);
	ck_assert_int_eq(spt_ctx_set_energy_model(NULL, &e), -EINVAL);
	ck_assert_int_eq(spt_ctx_set_energy_model(ctx, NULL), -EINVAL);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_model_construction_rejects_bad_shapes)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = (void *)1;
	struct spt_train_opts o;

	ck_assert_int_eq(spt_model_create(NULL, 1, 28, 28, 10, &m), -EINVAL);
	ck_assert_int_eq(spt_model_create(ctx, 0, 28, 28, 10, &m), -EINVAL);
	ck_assert_int_eq(spt_model_create(ctx, 1, 28, 28, 1, &m), -EINVAL);
	ck_assert_int_eq(spt_model_create(ctx, 1, 28, 28, 10, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_create(ctx, 1, 28, 28, 10, &m), 0);
	ck_assert_int_eq(spt_model_add_relu(m), -EINVAL);	/* nothing to fuse into */
	ck_assert_int_eq(spt_model_add_linear(m, 0), -EINVAL);
	ck_assert_int_eq(spt_model_add_conv2d(m, 8, 3, 1), -EINVAL);
	ck_assert_int_eq(spt_model_add_conv2d(m, 8, 1, 2), -EINVAL);
	ck_assert_int_eq(spt_model_add_conv2d(m, 0, 1, 1), -EINVAL);
	ck_assert_int_eq(spt_model_add_conv2d(m, 8, 2, 1), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_relu(m), -EINVAL);	/* twice */
	ck_assert_int_eq(spt_model_add_flatten(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 5), 0);
	spt_train_opts_init(&o, 10);
	/* last layer must have `classes` outputs */
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);
	ck_assert_int_eq(spt_model_add_linear(m, 10), 0);
	o.batch = 0;
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);
	spt_train_opts_init(&o, 10);
	o.lr = NAN;
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);
	spt_train_opts_init(&o, 10);
	o.momentum = 1.0f;
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);
	spt_train_opts_init(&o, 10);
	o.flags = 4;
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);
	spt_train_opts_init(&o, 10);
	o.batch = 4;
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), -EINVAL);	/* twice */
	ck_assert_int_eq(spt_model_add_linear(m, 10), -EINVAL);	/* after finalize */
	ck_assert_int_eq(spt_model_num_layers(m), 3);
	ck_assert_int_eq(spt_model_num_layers(NULL), -EINVAL);
	spt_model_free(m);
	spt_model_free(NULL);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_presets_have_the_documented_layers)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m;
	struct spt_layer_info li;
	struct spt_train_opts o;

	ck_assert_int_eq(spt_model_create_preset(ctx, "resnet", &m), -EINVAL);
	ck_assert_int_eq(spt_model_create_preset(ctx, NULL, &m), -EINVAL);
	ck_assert_int_eq(spt_model_create_preset(ctx, "mlp", &m), 0);
	spt_train_opts_init(&o, 10);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	ck_assert_int_eq(spt_model_num_layers(m), 3);
	ck_assert_int_eq(spt_model_layer_info(m, 0, &li), 0);
	ck_assert_str_eq(li.kind, "linear");
	ck_assert_uint_eq(li.gemm_k, 784);
	ck_assert_uint_eq(li.gemm_n, 512);
	ck_assert(li.relu);
	ck_assert_int_eq(spt_model_layer_info(m, 2, &li), 0);
	ck_assert_uint_eq(li.gemm_n, 10);
	ck_assert(!li.relu);
	ck_assert_int_eq(spt_model_layer_info(m, 3, &li), -EINVAL);
	ck_assert_int_eq(spt_model_layer_info(m, -1, &li), -EINVAL);
	ck_assert_int_eq(spt_model_layer_info(m, 0, NULL), -EINVAL);
	spt_model_free(m);
	ck_assert_int_eq(spt_model_create_preset(ctx, "cnn", &m), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	ck_assert_int_eq(spt_model_num_layers(m), 5);
	ck_assert_int_eq(spt_model_layer_info(m, 1, &li), 0);
	ck_assert_str_eq(li.kind, "conv2d");
	ck_assert_uint_eq(li.out_h, 14);
	ck_assert_uint_eq(li.gemm_k, 9 * 16);
	ck_assert_int_eq(spt_model_layer_info(m, 3, &li), 0);
	ck_assert_uint_eq(li.gemm_k, 7 * 7 * 32);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_sparsity_never_prunes_input_or_dlogits)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = small_model(ctx, SPT_PRECISION_BFP8);
	struct spt_sparsity s = { .mode = SPT_SPARSITY_TARGET, .kind = SPT_PRUNE_DETERMINISTIC,
				  .target = 0.9f };
	struct spt_controller_state cs;

	ck_assert_int_eq(spt_model_set_sparsity(m, 0, SPT_CLASS_ACT, &s), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ERR, &s), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(m, -1, SPT_CLASS_ACT, &s), 0);
	ck_assert_int_eq(spt_model_set_sparsity(m, -1, SPT_CLASS_ERR, &s), 0);
	ck_assert_int_eq(spt_model_controller_state(m, 0, SPT_CLASS_ACT, &cs), 0);
	ck_assert_int_eq(cs.mode, SPT_SPARSITY_OFF);
	ck_assert_int_eq(spt_model_controller_state(m, 1, SPT_CLASS_ERR, &cs), 0);
	ck_assert_int_eq(cs.mode, SPT_SPARSITY_OFF);
	ck_assert_int_eq(spt_model_controller_state(m, 1, SPT_CLASS_ACT, &cs), 0);
	ck_assert_int_eq(cs.mode, SPT_SPARSITY_TARGET);
	ck_assert_float_eq(cs.final_target, 0.9f);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_sparsity_rejects_bad_configurations)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = small_model(ctx, SPT_PRECISION_BFP8), *f;
	struct spt_sparsity s = { .mode = SPT_SPARSITY_TARGET, .kind = SPT_PRUNE_STOCHASTIC,
				  .target = 1.5f };
	struct spt_controller_state cs;

	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ACT, &s), -EINVAL);
	s.target = 0.5f;
	s.kind = SPT_PRUNE_OFF;
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ACT, &s), -EINVAL);
	s.kind = SPT_PRUNE_STOCHASTIC;
	s.mode = SPT_SPARSITY_STATIC;
	s.tau = -1;
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ACT, &s), -EINVAL);
	s.tau = 0.1f;
	ck_assert_int_eq(spt_model_set_sparsity(m, 2, SPT_CLASS_ACT, &s), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_COUNT, &s), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ACT, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(NULL, 1, SPT_CLASS_ACT, &s), -EINVAL);
	s.mode = 9;
	ck_assert_int_eq(spt_model_set_sparsity(m, 1, SPT_CLASS_ACT, &s), -EINVAL);
	ck_assert_int_eq(spt_model_controller_state(m, 1, 9, &cs), -EINVAL);
	ck_assert_int_eq(spt_model_controller_state(m, 1, SPT_CLASS_ACT, NULL), -EINVAL);
	/* an FP32 model is the dense baseline */
	f = small_model(ctx, SPT_PRECISION_FP32);
	s.mode = SPT_SPARSITY_STATIC;
	ck_assert_int_eq(spt_model_set_sparsity(f, 1, SPT_CLASS_ACT, &s), -ENOTSUP);
	ck_assert_int_eq(spt_model_set_target_sparsity(f, 0.9f, SPT_PRUNE_DETERMINISTIC), -ENOTSUP);
	ck_assert_int_eq(spt_model_set_target_sparsity(f, 0.0f, SPT_PRUNE_DETERMINISTIC), 0);
	spt_model_free(f);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_train_step_rejects_bad_inputs)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = small_model(ctx, SPT_PRECISION_BFP8);
	float x[9 * 16] = { 0 };
	uint8_t lab[9] = { 0 };
	float w[8 * 16];
	struct spt_step_stats st;

	ck_assert_int_eq(spt_model_train_step(NULL, x, lab, 1, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_train_step(m, NULL, lab, 1, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_train_step(m, x, NULL, 1, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 0, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 9, NULL), -EINVAL);	/* > batch */
	lab[0] = 3;	/* only 3 classes */
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 1, NULL), -EINVAL);
	lab[0] = 0;
	x[5] = NAN;
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 1, NULL), -EDOM);
	x[5] = INFINITY;
	ck_assert_int_eq(spt_model_evaluate(m, x, lab, 1, NULL, NULL, NULL), -EDOM);
	x[5] = 0;
	ck_assert_int_eq(spt_model_steps(m), 0);
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 1, &st), 0);
	ck_assert_int_eq(spt_model_steps(m), 1);
	ck_assert(st.host_seconds > 0);
	ck_assert(st.device_seconds == 0);	/* the CPU backend has no device */
	ck_assert_int_eq(spt_model_evaluate(m, x, NULL, 1, NULL, NULL, NULL), 0);
	{
		double ls;

		ck_assert_int_eq(spt_model_evaluate(m, x, NULL, 1, &ls, NULL, NULL), -EINVAL);
	}
	ck_assert_int_eq(spt_model_get_params(m, 2, w, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_get_params(m, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), 0);
	w[3] = NAN;
	ck_assert_int_eq(spt_model_set_params(m, 0, w, NULL), -EDOM);
	ck_assert_int_eq(spt_model_set_params(m, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_layer_stats(m, 5, NULL), -EINVAL);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_unfinalized_model_refuses_to_train)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m;
	float x[16] = { 0 };
	uint8_t lab[1] = { 0 };
	struct spt_sparsity s = { 0 };

	ck_assert_int_eq(spt_model_create(ctx, 1, 4, 4, 3, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 3), 0);
	ck_assert_int_eq(spt_model_train_step(m, x, lab, 1, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_set_sparsity(m, -1, SPT_CLASS_ACT, &s), -EINVAL);
	ck_assert_int_eq(spt_model_save(m, "/tmp/x", NULL, 0), -EINVAL);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

START_TEST(test_divergence_is_reported_and_weights_kept)
{
	struct spt_ctx *ctx = cpu_ctx();
	struct spt_model *m = small_model(ctx, SPT_PRECISION_FP32);
	float x[16], w[8 * 16], w2[8 * 16];
	uint8_t lab[1] = { 1 };
	int i;

	uint64_t steps;
	int ret = 0;

	for (i = 0; i < 16; i++)
		x[i] = 3e38f;
	/* huge inputs: some step overflows; that step must change nothing */
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(spt_model_get_params(m, 0, w, NULL), 0);
		steps = spt_model_steps(m);
		ret = spt_model_train_step(m, x, lab, 1, NULL);
		if (ret)
			break;
	}
	ck_assert_int_eq(ret, -SPT_EDIVERGED);
	ck_assert_int_eq(spt_model_get_params(m, 0, w2, NULL), 0);
	ck_assert_mem_eq(w, w2, sizeof(w));
	ck_assert_int_eq(spt_model_steps(m), steps);
	spt_model_free(m);
	spt_ctx_close(ctx);
}
END_TEST

static Suite *runtime_suite(void)
{
	Suite *s = suite_create("runtime");
	TCase *api = tcase_create("api"), *model = tcase_create("model");

	tcase_add_test(api, test_strerror_names_every_library_code);
	tcase_add_test(api, test_version_matches_header);
	tcase_add_test(api, test_ctx_open_rejects_bad_arguments);
	tcase_add_test(api, test_cpu_ctx_info_reports_capabilities);
	tcase_add_test(api, test_device_backend_fails_clearly_without_device);
	tcase_add_test(api, test_energy_model_override_is_checked);
	suite_add_tcase(s, api);
	tcase_add_test(model, test_model_construction_rejects_bad_shapes);
	tcase_add_test(model, test_presets_have_the_documented_layers);
	tcase_add_test(model, test_sparsity_never_prunes_input_or_dlogits);
	tcase_add_test(model, test_sparsity_rejects_bad_configurations);
	tcase_add_test(model, test_train_step_rejects_bad_inputs);
	tcase_add_test(model, test_unfinalized_model_refuses_to_train);
	tcase_add_test(model, test_divergence_is_reported_and_weights_kept);
	tcase_set_timeout(model, 30);
	suite_add_tcase(s, model);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(runtime_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
