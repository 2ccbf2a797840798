// SPDX-License-Identifier: MIT
/*
 * Checkpoints: round trip (weights, momentum, controller, steps, user data),
 * corruption and truncation detection, wrong files and architectures, and
 * the atomic write (a failed save leaves the previous file intact).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spt/spt.h"

static char dir[64], path[128];
static struct spt_ctx *ctx;

static void setup(void)
{
	struct spt_ctx_opts o = { .backend = SPT_BACKEND_CPU };

	strcpy(dir, "/tmp/spt-ckpt-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/model.ckpt", dir);
	ck_assert_int_eq(spt_ctx_open(&o, &ctx), 0);
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
	spt_ctx_close(ctx);
}

static struct spt_model *model(uint32_t hidden, uint64_t seed)
{
	struct spt_model *m;
	struct spt_train_opts o;

	spt_train_opts_init(&o, 100);
	o.batch = 8;
	o.seed = seed;
	o.ctl.warmup_steps = 2;
	o.ctl.ramp_steps = 5;
	ck_assert_int_eq(spt_model_create(ctx, 1, 4, 4, 3, &m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, hidden), 0);
	ck_assert_int_eq(spt_model_add_relu(m), 0);
	ck_assert_int_eq(spt_model_add_linear(m, 3), 0);
	ck_assert_int_eq(spt_model_finalize(m, &o), 0);
	ck_assert_int_eq(spt_model_set_target_sparsity(m, 0.7f, SPT_PRUNE_DETERMINISTIC), 0);
	return m;
}

static void train(struct spt_model *m, int steps)
{
	float x[8 * 16];
	uint8_t lab[8];
	int i, j;

	for (i = 0; i < steps; i++) {
		for (j = 0; j < 8 * 16; j++)
			x[j] = (float)((j * 7 + i * 3) % 11) / 11.0f;
		for (j = 0; j < 8; j++)
			lab[j] = (uint8_t)((j + i) % 3);
		ck_assert_int_eq(spt_model_train_step(m, x, lab, 8, NULL), 0);
	}
}

static long file_size(const char *p)
{
	struct stat sb;

	return stat(p, &sb) ? -1 : (long)sb.st_size;
}

static void flip_byte(const char *p, long off)
{
	FILE *f = fopen(p, "r+b");
	int c;

	ck_assert_ptr_nonnull(f);
	fseek(f, off, SEEK_SET);
	c = fgetc(f);
	fseek(f, off, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);
}

START_TEST(test_round_trip_restores_everything)
{
	/*
	 * Same seed (the stochastic draws of a step depend on it, as on
	 * resuming with the same --seed), different state before the load.
	 */
	struct spt_model *a = model(8, 1), *b = model(8, 1);
	float wa[8 * 16], wb[8 * 16], ba[8], bb[8];
	struct spt_controller_state ca, cb;
	char user[32] = "epoch=3", got[32] = { 0 };
	size_t glen = 0;

	train(a, 12);
	train(b, 1);
	spt_model_get_params(a, 0, wa, NULL);
	spt_model_get_params(b, 0, wb, NULL);
	ck_assert(memcmp(wa, wb, sizeof(wa)) != 0);
	ck_assert_int_eq(spt_model_save(a, path, user, strlen(user) + 1), 0);
	ck_assert_int_eq(spt_model_load(b, path, got, sizeof(got), &glen), 0);
	ck_assert_uint_eq(glen, strlen(user) + 1);
	ck_assert_str_eq(got, user);
	ck_assert_uint_eq(spt_model_steps(b), 12);
	spt_model_get_params(a, 0, wa, ba);
	spt_model_get_params(b, 0, wb, bb);
	ck_assert_mem_eq(wa, wb, sizeof(wa));
	ck_assert_mem_eq(ba, bb, sizeof(ba));
	spt_model_controller_state(a, 1, SPT_CLASS_ACT, &ca);
	spt_model_controller_state(b, 1, SPT_CLASS_ACT, &cb);
	ck_assert_mem_eq(&ca, &cb, sizeof(ca));
	/* momentum and controller restored: both continue identically */
	train(a, 3);
	train(b, 3);
	spt_model_get_params(a, 0, wa, NULL);
	spt_model_get_params(b, 0, wb, NULL);
	ck_assert_mem_eq(wa, wb, sizeof(wa));
	spt_model_free(a);
	spt_model_free(b);
}
END_TEST

START_TEST(test_every_flipped_region_is_detected)
{
	struct spt_model *a = model(8, 1), *b = model(8, 2);
	long n, offs[5], i;
	float w0[8 * 16], w1[8 * 16];

	train(a, 3);
	ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
	n = file_size(path);
	offs[0] = 20;		/* header: total size */
	offs[1] = 70;		/* layer descriptors */
	offs[2] = n / 2;	/* weights */
	offs[3] = n - 10;	/* model state */
	offs[4] = n - 2;	/* the checksum itself */
	spt_model_get_params(b, 0, w0, NULL);
	for (i = 0; i < 5; i++) {
		int ret;

		ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
		flip_byte(path, offs[i]);
		ret = spt_model_load(b, path, NULL, 0, NULL);
		ck_assert_msg(ret == -SPT_ECHECKSUM || ret == -SPT_ETRUNCATED ||
			      ret == -SPT_EBADFILE,
			      "flip at %ld of %ld: got %d (%s)", offs[i], n, ret, spt_strerror(ret));
	}
	/* the model is unchanged after failed loads */
	spt_model_get_params(b, 0, w1, NULL);
	ck_assert_mem_eq(w0, w1, sizeof(w0));
	ck_assert_uint_eq(spt_model_steps(b), 0);
	spt_model_free(a);
	spt_model_free(b);
}
END_TEST

START_TEST(test_truncation_is_detected)
{
	struct spt_model *a = model(8, 1);
	long n;

	ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
	n = file_size(path);
	ck_assert_int_eq(truncate(path, n - 1), 0);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), -SPT_ETRUNCATED);
	ck_assert_int_eq(truncate(path, 40), 0);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), -SPT_ETRUNCATED);
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), -SPT_ETRUNCATED);
	spt_model_free(a);
}
END_TEST

START_TEST(test_wrong_magic_and_version)
{
	struct spt_model *a = model(8, 1);
	FILE *f = fopen(path, "wb");

	fputs("this is not a checkpoint at all, just some text long enough to have a header", f);
	fclose(f);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), -SPT_EBADMAGIC);
	ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
	flip_byte(path, 8);	/* version */
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), -SPT_EVERSION);
	ck_assert_int_eq(spt_model_load(a, "/nonexistent/x", NULL, 0, NULL), -ENOENT);
	ck_assert_int_eq(spt_model_load(a, dir, NULL, 0, NULL), -EINVAL);	/* a directory */
	spt_model_free(a);
}
END_TEST

START_TEST(test_other_architecture_is_rejected)
{
	struct spt_model *a = model(8, 1), *b = model(9, 1);

	ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
	ck_assert_int_eq(spt_model_load(b, path, NULL, 0, NULL), -SPT_EMISMATCH);
	spt_model_free(a);
	spt_model_free(b);
}
END_TEST

START_TEST(test_failed_save_keeps_previous_file)
{
	struct spt_model *a = model(8, 1), *b = model(8, 5);
	char bad[160];
	long n;
	DIR *d;
	struct dirent *de;
	int files = 0;

	ck_assert_int_eq(spt_model_save(a, path, NULL, 0), 0);
	n = file_size(path);
	snprintf(bad, sizeof(bad), "%s/missing-dir/model.ckpt", dir);
	ck_assert_int_eq(spt_model_save(b, bad, NULL, 0), -ENOENT);
	/* overwrite through rename: the old file is complete until the new one is */
	train(b, 2);
	ck_assert_int_eq(spt_model_save(b, path, NULL, 0), 0);
	ck_assert_int_eq(file_size(path), n);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 0, NULL), 0);
	ck_assert_uint_eq(spt_model_steps(a), 2);
	/* no temporary files left behind */
	d = opendir(dir);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			files++;
	closedir(d);
	ck_assert_int_eq(files, 1);
	spt_model_free(a);
	spt_model_free(b);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct spt_model *a = model(8, 1);
	char big[5000] = { 0 }, small[2];
	size_t l;

	ck_assert_int_eq(spt_model_save(NULL, path, NULL, 0), -EINVAL);
	ck_assert_int_eq(spt_model_save(a, NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(spt_model_save(a, "", NULL, 0), -EINVAL);
	ck_assert_int_eq(spt_model_save(a, path, NULL, 4), -EINVAL);
	ck_assert_int_eq(spt_model_save(a, path, big, sizeof(big)), -EINVAL);
	ck_assert_int_eq(spt_model_load(NULL, path, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_load(a, NULL, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(spt_model_load(a, path, NULL, 4, NULL), -EINVAL);
	/* user data larger than the caller's buffer: truncated copy, full length */
	ck_assert_int_eq(spt_model_save(a, path, "abcdef", 6), 0);
	ck_assert_int_eq(spt_model_load(a, path, small, sizeof(small), &l), 0);
	ck_assert_uint_eq(l, 6);
	ck_assert_mem_eq(small, "ab", 2);
	spt_model_free(a);
}
END_TEST

static Suite *checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("checkpoint");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip_restores_everything);
	tcase_add_test(tc, test_every_flipped_region_is_detected);
	tcase_add_test(tc, test_truncation_is_detected);
	tcase_add_test(tc, test_wrong_magic_and_version);
	tcase_add_test(tc, test_other_architecture_is_rejected);
	tcase_add_test(tc, test_failed_save_keeps_previous_file);
	tcase_add_test(tc, test_bad_arguments);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(checkpoint_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
