// SPDX-License-Identifier: MIT
/* IDX dataset reader: good files (plain and gzip), and every rejection. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "spt/spt.h"

static char dir[64];
static char img[128], lab[128];

static void setup(void)
{
	strcpy(dir, "/tmp/spt-idx-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/images", dir);
	snprintf(lab, sizeof(lab), "%s/labels", dir);
}

static void teardown(void)
{
	unlink(img);
	unlink(lab);
	rmdir(dir);
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void write_bytes(const char *path, const uint8_t *b, size_t n, bool gz)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(gzwrite(f, b, (unsigned int)n), (int)n);
		ck_assert_int_eq(gzclose(f), Z_OK);
	} else {
		FILE *f = fopen(path, "wb");

		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(b, 1, n, f), n);
		fclose(f);
	}
}

/* count images of r x c with pixel value (i + j) % 256, labels i % 10. */
static size_t make_images(uint8_t *b, uint32_t magic, uint32_t count, uint32_t r, uint32_t c)
{
	size_t i, n = (size_t)count * r * c;

	be32(b, magic);
	be32(b + 4, count);
	be32(b + 8, r);
	be32(b + 12, c);
	for (i = 0; i < n; i++)
		b[16 + i] = (uint8_t)(i % 251);
	return 16 + n;
}

static size_t make_labels(uint8_t *b, uint32_t magic, uint32_t count)
{
	uint32_t i;

	be32(b, magic);
	be32(b + 4, count);
	for (i = 0; i < count; i++)
		b[8 + i] = (uint8_t)(i % 10);
	return 8 + count;
}

static uint8_t ib[16 + 20 * 28 * 28 + 64], lb[8 + 20 + 64];

static void write_pair(uint32_t icount, uint32_t lcount, bool gz)
{
	write_bytes(img, ib, make_images(ib, 0x803, icount, 28, 28), gz);
	write_bytes(lab, lb, make_labels(lb, 0x801, lcount), gz);
}

START_TEST(test_reads_plain_idx_files)
{
	struct spt_dataset *ds;
	uint32_t n, r, c, k, idx[2] = { 0, 19 };
	uint8_t l[2];
	float x[2 * 784];

	write_pair(20, 20, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), 0);
	ck_assert_int_eq(spt_dataset_shape(ds, &n, &r, &c, &k), 0);
	ck_assert_uint_eq(n, 20);
	ck_assert_uint_eq(r, 28);
	ck_assert_uint_eq(c, 28);
	ck_assert_uint_eq(k, 10);
	ck_assert_int_eq(spt_dataset_gather(ds, idx, 2, x, l), 0);
	ck_assert_uint_eq(l[1], 9);
	ck_assert_float_eq(x[1], 1.0f / 255.0f);
	ck_assert_float_eq(x[784 + 3], (float)((19 * 784 + 3) % 251) / 255.0f);
	spt_dataset_free(ds);
}
END_TEST

START_TEST(test_reads_gzip_idx_files)
{
	struct spt_dataset *ds;
	uint32_t n;

	write_pair(20, 20, true);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), 0);
	ck_assert_int_eq(spt_dataset_shape(ds, &n, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(n, 20);
	ck_assert_int_eq(spt_dataset_truncate(ds, 5), 0);
	ck_assert_int_eq(spt_dataset_shape(ds, &n, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(spt_dataset_truncate(ds, 6), -EINVAL);
	ck_assert_int_eq(spt_dataset_truncate(ds, 0), -EINVAL);
	spt_dataset_free(ds);
}
END_TEST

START_TEST(test_rejects_bad_image_magic)
{
	struct spt_dataset *ds = (void *)1;

	write_pair(20, 20, false);
	be32(ib, 0x801);	/* a label file's magic */
	write_bytes(img, ib, 16 + 20 * 784, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EBADMAGIC);
	ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_rejects_bad_label_magic)
{
	struct spt_dataset *ds;

	write_pair(20, 20, false);
	be32(lb, 0x803);
	write_bytes(lab, lb, 8 + 20, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EBADMAGIC);
	ck_assert_str_eq(spt_strerror(-SPT_EBADMAGIC),
			 "bad magic number: not a file of the expected type");
}
END_TEST

START_TEST(test_rejects_truncated_images)
{
	struct spt_dataset *ds;
	size_t n;

	write_pair(20, 20, false);
	n = make_images(ib, 0x803, 20, 28, 28);
	write_bytes(img, ib, n - 1, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_ETRUNCATED);
	write_bytes(img, ib, 10, false);	/* inside the header */
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_ETRUNCATED);
	write_bytes(img, ib, 0, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EBADMAGIC);
}
END_TEST

START_TEST(test_rejects_truncated_gzip_stream)
{
	struct spt_dataset *ds;
	uint8_t gzbuf[65536];
	FILE *f;
	size_t n;

	write_pair(20, 20, true);
	f = fopen(img, "rb");
	n = fread(gzbuf, 1, sizeof(gzbuf), f);
	fclose(f);
	ck_assert_uint_gt(n, 100);
	write_bytes(img, gzbuf, n / 2, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_ETRUNCATED);
}
END_TEST

START_TEST(test_rejects_trailing_bytes_and_zero_dims)
{
	struct spt_dataset *ds;
	size_t n;

	write_pair(20, 20, false);
	n = make_images(ib, 0x803, 20, 28, 28);
	write_bytes(img, ib, n + 3, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EBADFILE);
	n = make_images(ib, 0x803, 20, 0, 28);
	write_bytes(img, ib, n, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EBADFILE);
}
END_TEST

START_TEST(test_rejects_count_mismatch)
{
	struct spt_dataset *ds;

	write_pair(20, 19, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), -SPT_EMISMATCH);
}
END_TEST

START_TEST(test_missing_file_and_bad_arguments)
{
	struct spt_dataset *ds;
	uint32_t idx[1] = { 20 };
	float x[784];

	ck_assert_int_eq(spt_dataset_load_idx("/nonexistent/i", "/nonexistent/l", &ds), -ENOENT);
	ck_assert_int_eq(spt_dataset_load_idx(NULL, lab, &ds), -EINVAL);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, NULL), -EINVAL);
	ck_assert_int_eq(spt_dataset_load_fashion_mnist("/nonexistent", true, &ds), -ENOENT);
	ck_assert_int_eq(spt_dataset_shape(NULL, NULL, NULL, NULL, NULL), -EINVAL);
	write_pair(20, 20, false);
	ck_assert_int_eq(spt_dataset_load_idx(img, lab, &ds), 0);
	ck_assert_int_eq(spt_dataset_gather(ds, idx, 1, x, NULL), -EINVAL);	/* index 20 of 20 */
	idx[0] = 0;
	ck_assert_int_eq(spt_dataset_gather(ds, idx, 0, x, NULL), -EINVAL);
	ck_assert_int_eq(spt_dataset_gather(ds, idx, 1, NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_dataset_gather(ds, idx, 1, x, NULL), 0);
	spt_dataset_free(ds);
	spt_dataset_free(NULL);
}
END_TEST

START_TEST(test_reads_installed_fashion_mnist)
{
	struct spt_dataset *ds;
	uint32_t n, r, c, k;
	int ret = spt_dataset_load_fashion_mnist(NULL, false, &ds);

	if (ret == -ENOENT)
		return;	/* package not installed: nothing to check */
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(spt_dataset_shape(ds, &n, &r, &c, &k), 0);
	ck_assert_uint_eq(n, 10000);
	ck_assert_uint_eq(r, 28);
	ck_assert_uint_eq(c, 28);
	ck_assert_uint_eq(k, 10);
	spt_dataset_free(ds);
}
END_TEST

static Suite *idx_suite(void)
{
	Suite *s = suite_create("idx");
	TCase *tc = tcase_create("idx");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reads_plain_idx_files);
	tcase_add_test(tc, test_reads_gzip_idx_files);
	tcase_add_test(tc, test_rejects_bad_image_magic);
	tcase_add_test(tc, test_rejects_bad_label_magic);
	tcase_add_test(tc, test_rejects_truncated_images);
	tcase_add_test(tc, test_rejects_truncated_gzip_stream);
	tcase_add_test(tc, test_rejects_trailing_bytes_and_zero_dims);
	tcase_add_test(tc, test_rejects_count_mismatch);
	tcase_add_test(tc, test_missing_file_and_bad_arguments);
	tcase_add_test(tc, test_reads_installed_fashion_mnist);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(idx_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
