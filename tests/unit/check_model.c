// SPDX-License-Identifier: MIT
/* The analytic cycle and energy model and counter arithmetic (all modeled). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"

static int close_to(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-12;
}

START_TEST(test_defaults_are_the_documented_constants)
{
	struct spt_energy_model m;

	spt_energy_model_init(&m);
	ck_assert(m.mac_pj == 0.3);
	ck_assert(m.skip_check_pj == 0.03);
	ck_assert(m.exp_add_pj == 1.0);
	ck_assert(m.sram_pj_per_byte == 1.25);
	ck_assert(m.dram_pj_per_byte == 20.0);
	ck_assert(m.static_mw == 50.0);
	ck_assert(m.clock_mhz == 1000.0);
	ck_assert(m.macs_per_cycle == 1024.0);
	ck_assert(m.utilisation == 0.8);
	ck_assert(m.dram_gbytes_per_s == 25.6);
	ck_assert_int_eq(spt_energy_model_check(&m), 0);
}
END_TEST

START_TEST(test_check_rejects_bad_constants)
{
	struct spt_energy_model m, bad;
	double *fields[] = { &bad.mac_pj, &bad.exp_add_pj, &bad.sram_pj_per_byte,
			     &bad.dram_pj_per_byte, &bad.clock_mhz, &bad.macs_per_cycle,
			     &bad.utilisation, &bad.dram_gbytes_per_s };
	size_t i;

	spt_energy_model_init(&m);
	ck_assert_int_eq(spt_energy_model_check(NULL), -EINVAL);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		bad = m;
		*fields[i] = 0.0;
		ck_assert_msg(spt_energy_model_check(&bad) == -EINVAL, "field %zu = 0 accepted", i);
		*fields[i] = -1.0;
		ck_assert_msg(spt_energy_model_check(&bad) == -EINVAL, "field %zu < 0 accepted", i);
		*fields[i] = NAN;
		ck_assert_msg(spt_energy_model_check(&bad) == -EINVAL, "field %zu NaN accepted", i);
		*fields[i] = INFINITY;
		ck_assert_msg(spt_energy_model_check(&bad) == -EINVAL, "field %zu inf accepted", i);
	}
	bad = m;
	bad.utilisation = 1.5;
	ck_assert_int_eq(spt_energy_model_check(&bad), -EINVAL);
	bad = m;
	bad.static_mw = -1;
	ck_assert_int_eq(spt_energy_model_check(&bad), -EINVAL);
	bad.static_mw = NAN;
	ck_assert_int_eq(spt_energy_model_check(&bad), -EINVAL);
	bad = m;
	bad.skip_check_pj = -0.1;
	ck_assert_int_eq(spt_energy_model_check(&bad), -EINVAL);
	/* zero leakage and free skip checks are allowed */
	bad = m;
	bad.static_mw = 0;
	bad.skip_check_pj = 0;
	ck_assert_int_eq(spt_energy_model_check(&bad), 0);
	bad.utilisation = 1.0;
	ck_assert_int_eq(spt_energy_model_check(&bad), 0);
}
END_TEST

START_TEST(test_compute_bound_case_by_hand)
{
	/*
	 * 1024 x 1024 x 1024 dense, 1% executed: exec 10,737,418 MACs.
	 * compute = exec / (1024 * 0.8) = 13107.19... -> 13108 cycles
	 * bytes 100,000 -> memory = 1e5 * 1000 / 25600 = 3906.25 cycles
	 * cycles = 13108 + 64 overhead = 13172, time 13.172 us
	 * energy = exec*0.3 + dense*0.03 + blocks*1.0 + bytes*21.25 + 50 mW * t
	 */
	struct spt_energy_model m;
	struct spt_counters c;
	double e;

	spt_energy_model_init(&m);
	memset(&c, 0, sizeof(c));
	c.dense_macs = 1073741824ull;
	c.exec_macs = 10737418ull;
	c.blocks = 500000;
	c.bytes_read = 80000;
	c.bytes_written = 20000;
	ck_assert_int_eq(spt_model_apply(&m, &c), 0);
	ck_assert_uint_eq(c.cycles, 13172);
	e = 10737418.0 * 0.3 + 1073741824.0 * 0.03 + 500000.0 * 1.0 + 100000.0 * 21.25 +
	    50e-3 * 13172e-9 * 1e12;
	ck_assert_msg(close_to(c.energy_pj, e), "energy %.6f pJ, expected %.6f", c.energy_pj, e);
	ck_assert(close_to(c.eff_tops_per_w, 2.0 * 1073741824.0 / e));
	ck_assert(close_to(c.exec_tops_per_w, 2.0 * 10737418.0 / e));
}
END_TEST

START_TEST(test_memory_bound_case_by_hand)
{
	/* 2,560,000 bytes at 25.6 GB/s = 100 us = 100,000 cycles at 1 GHz, + 64 */
	struct spt_energy_model m;
	struct spt_counters c;
	double e;

	spt_energy_model_init(&m);
	m.static_mw = 0;
	memset(&c, 0, sizeof(c));
	c.dense_macs = 1000;
	c.exec_macs = 1000;
	c.bytes_read = 2560000;
	ck_assert_int_eq(spt_model_apply(&m, &c), 0);
	ck_assert_uint_eq(c.cycles, 100064);
	e = 1000 * 0.3 + 1000 * 0.03 + 2560000.0 * 21.25;
	ck_assert(close_to(c.energy_pj, e));
}
END_TEST

START_TEST(test_static_power_scales_with_time)
{
	/* nothing but the fixed overhead: 64 cycles at 500 MHz = 128 ns at 100 mW */
	struct spt_energy_model m;
	struct spt_counters c;

	spt_energy_model_init(&m);
	m.clock_mhz = 500;
	m.static_mw = 100;
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(spt_model_apply(&m, &c), 0);
	ck_assert_uint_eq(c.cycles, 64);
	ck_assert(close_to(c.energy_pj, 100e-3 * 128e-9 * 1e12));
	ck_assert(c.eff_tops_per_w == 0.0);
	/* and with no static power the energy is 0 and TOPS/W stay 0, not NaN */
	m.static_mw = 0;
	ck_assert_int_eq(spt_model_apply(&m, &c), 0);
	ck_assert(c.energy_pj == 0.0);
	ck_assert(c.eff_tops_per_w == 0.0 && c.exec_tops_per_w == 0.0);
}
END_TEST

START_TEST(test_apply_rejects_bad_arguments)
{
	struct spt_energy_model m;
	struct spt_counters c;

	spt_energy_model_init(&m);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(spt_model_apply(NULL, &c), -EINVAL);
	ck_assert_int_eq(spt_model_apply(&m, NULL), -EINVAL);
	m.utilisation = 0;
	ck_assert_int_eq(spt_model_apply(&m, &c), -EINVAL);
}
END_TEST

START_TEST(test_counters_add_sums_and_recomputes_tops)
{
	struct spt_counters a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.dense_macs = 100;
	a.exec_macs = 10;
	a.bytes_read = 1;
	a.bytes_written = 2;
	a.dense_fp16_bytes = 3;
	a.blocks = 4;
	a.elements_out = 5;
	a.cycles = 6;
	a.energy_pj = 10.0;
	a.eff_tops_per_w = 20.0;
	b = a;
	b.dense_macs = 300;
	b.exec_macs = 30;
	b.energy_pj = 30.0;
	spt_counters_add(&a, &b);
	ck_assert_uint_eq(a.dense_macs, 400);
	ck_assert_uint_eq(a.exec_macs, 40);
	ck_assert_uint_eq(a.bytes_read, 2);
	ck_assert_uint_eq(a.bytes_written, 4);
	ck_assert_uint_eq(a.dense_fp16_bytes, 6);
	ck_assert_uint_eq(a.blocks, 8);
	ck_assert_uint_eq(a.elements_out, 10);
	ck_assert_uint_eq(a.cycles, 12);
	ck_assert(a.energy_pj == 40.0);
	ck_assert(a.eff_tops_per_w == 20.0);	/* 2 * 400 / 40 */
	ck_assert(a.exec_tops_per_w == 2.0);	/* 2 * 40 / 40 */
}
END_TEST

static Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *consts = tcase_create("constants");
	TCase *apply = tcase_create("apply");
	TCase *add = tcase_create("add");

	tcase_add_test(consts, test_defaults_are_the_documented_constants);
	tcase_add_test(consts, test_check_rejects_bad_constants);
	suite_add_tcase(s, consts);

	tcase_add_test(apply, test_compute_bound_case_by_hand);
	tcase_add_test(apply, test_memory_bound_case_by_hand);
	tcase_add_test(apply, test_static_power_scales_with_time);
	tcase_add_test(apply, test_apply_rejects_bad_arguments);
	suite_add_tcase(s, apply);

	tcase_add_test(add, test_counters_add_sums_and_recomputes_tops);
	suite_add_tcase(s, add);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(model_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
