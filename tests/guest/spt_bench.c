// SPDX-License-Identifier: MIT
/*
 * Round-trip figures measured in the guest: null job (submit -> out fence
 * signalled) latency percentiles and pipelined jobs per second, and a GEMM
 * job's round trip against its device-side time (TIMESTAMP commands around
 * the GEMM, device clock).  Usage: spt_bench [null_jobs [gemm_jobs [M N K]]]
 */
#include "spt_test.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(int64_t *v, int n, double p)
{
	int i = (int)(p / 100.0 * (n - 1) + 0.5);

	return v[i] / 1000.0;
}

int main(int argc, char **argv)
{
	int nnull = argc > 1 ? atoi(argv[1]) : 1000;
	int ngemm = argc > 2 ? atoi(argv[2]) : 50;
	uint32_t m = argc > 5 ? atoi(argv[3]) : 128, n = argc > 5 ? atoi(argv[4]) : 128;
	uint32_t k = argc > 5 ? atoi(argv[5]) : 256;
	size_t cap_a = spt_ct_bound(m, k), cap_b = spt_ct_bound(n, k), la, lb;
	struct spt_bo cmd, a, b, y, ts;
	struct spt_submit_args sa = { 0 };
	struct spt_cmd_gemm *g;
	int64_t *lat, *glat, *gdev, t0, t1;
	float *xa, *xb;
	struct spt_cs cs;
	uint32_t q, s;
	int fd, i;

	fd = spt_open();
	if (fd < 0 || nnull < 2 || ngemm < 2) {
		fprintf(stderr, "spt_bench: no device or bad arguments\n");
		return 1;
	}
	lat = calloc(nnull, sizeof(*lat));
	glat = calloc(ngemm, sizeof(*glat));
	gdev = calloc(ngemm, sizeof(*gdev));
	xa = malloc(sizeof(float) * m * k);
	xb = malloc(sizeof(float) * n * k);
	if (spt_bo_new(fd, 4096, 0, &cmd) || spt_bo_new(fd, 4096, 0, &ts) ||
	    spt_bo_new(fd, cap_a, 0, &a) || spt_bo_new(fd, cap_b, 0, &b) ||
	    spt_bo_new(fd, sizeof(float) * m * n, 0, &y) ||
	    spt_queue_new(fd, 1, &q) || spt_syncobj_new(fd, false, &s) ||
	    !lat || !glat || !gdev || !xa || !xb)
		return 1;

	/* null job: one NOP */
	cs.buf = cmd.map;
	cs.len = 0;
	cs.cap = 64;
	spt_cs_nop(&cs);
	sa.queue = q;
	sa.cmd_handle = cmd.handle;
	sa.cmd_size = cs.len;
	sa.out_sync = s;
	for (i = 0; i < nnull; i++) {
		t0 = spt_now_ns();
		if (spt_submit(fd, &sa) || spt_syncobj_wait(fd, s, 0, 10000))
			return 2;
		lat[i] = spt_now_ns() - t0;
	}
	qsort(lat, nnull, sizeof(*lat), cmp_i64);
	printf("null job round trip (submit -> fence), %d jobs: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
	       nnull, pct(lat, nnull, 50), pct(lat, nnull, 90), pct(lat, nnull, 99),
	       lat[nnull - 1] / 1000.0);

	t0 = spt_now_ns();
	for (i = 0; i < nnull; i++)
		if (spt_submit(fd, &sa))
			return 3;
	if (spt_syncobj_wait(fd, s, 0, 60000))
		return 4;
	t1 = spt_now_ns();
	printf("null jobs pipelined, one queue: %d jobs in %.1f ms = %.0f jobs/s\n",
	       nnull, (t1 - t0) / 1e6, nnull / ((t1 - t0) / 1e9));

	/* GEMM job: TIMESTAMP, GEMM, TIMESTAMP */
	spt_fill(xa, (size_t)m * k, 11);
	spt_fill(xb, (size_t)n * k, 12);
	if (spt_ct_encode(xa, m, k, NULL, a.map, cap_a, &la, NULL) ||
	    spt_ct_encode(xb, n, k, NULL, b.map, cap_b, &lb, NULL))
		return 5;
	cs.len = 0;
	cs.cap = cmd.size;
	spt_cs_timestamp(&cs, ts.va);
	g = spt_cs_add(&cs, SPT_OP_GEMM, sizeof(*g));
	g->pass = SPT_PASS_FWD;
	g->a_va = a.va;
	g->a_len = la;
	g->b_va = b.va;
	g->b_len = lb;
	g->y_va = y.va;
	spt_cs_timestamp(&cs, ts.va + 8);
	sa.cmd_size = cs.len;
	for (i = 0; i < ngemm; i++) {
		uint64_t *d = ts.map;

		t0 = spt_now_ns();
		if (spt_submit(fd, &sa) || spt_syncobj_wait(fd, s, 0, 60000))
			return 6;
		glat[i] = spt_now_ns() - t0;
		if (spt_syncobj_status(fd, s) != 1)
			return 7;
		gdev[i] = (int64_t)(d[1] - d[0]);
	}
	qsort(glat, ngemm, sizeof(*glat), cmp_i64);
	qsort(gdev, ngemm, sizeof(*gdev), cmp_i64);
	printf("GEMM %ux%ux%u job round trip, %d jobs: p50 %.1f us, p99 %.1f us; device time p50 %.1f us, p99 %.1f us; overhead p50 %.1f us\n",
	       m, n, k, ngemm, pct(glat, ngemm, 50), pct(glat, ngemm, 99),
	       pct(gdev, ngemm, 50), pct(gdev, ngemm, 99),
	       pct(glat, ngemm, 50) - pct(gdev, ngemm, 50));
	close(fd);
	return 0;
}
