// SPDX-License-Identifier: MIT
/*
 * Job submission: fences, syncobj dependencies, timeline points, implicit
 * BO synchronisation, GEMM results checked bit for bit against core/, an
 * MMU fault failing one job only, and several processes at once.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "spt_test.h"

static int fd;

static struct spt_cs cs_of(struct spt_bo *b)
{
	struct spt_cs cs = { .buf = b->map, .cap = b->size };

	return cs;
}

static int submit_cs(int dev_fd, uint32_t queue, struct spt_bo *cmd, uint32_t off,
		     uint32_t len, uint32_t out, uint64_t point,
		     const struct drm_spt_sync *in, uint32_t nin)
{
	struct spt_submit_args a = {
		.queue = queue, .cmd_handle = cmd->handle, .cmd_offset = off,
		.cmd_size = len, .out_sync = out, .out_point = point,
		.in = in, .in_count = nin,
	};

	return spt_submit(dev_fd, &a);
}

static bool nop_job_signals(void)
{
	struct spt_bo cmd;
	uint32_t q, s;
	struct spt_cs cs;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &cmd), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &s), 0);
	cs = cs_of(&cmd);
	spt_cs_nop(&cs);
	spt_cs_nop(&cs);
	CHECK_ERR(submit_cs(fd, q, &cmd, 0, cs.len, s, 0, NULL, 0), 0);
	CHECK_ERR(spt_syncobj_wait(fd, s, 0, 20000), 0);
	CHECK(spt_syncobj_status(fd, s) == 1, "status %d", spt_syncobj_status(fd, s));
	spt_syncobj_del(fd, s);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &cmd);
	return true;
}

static bool many_jobs_in_order(void)
{
	struct spt_bo cmd, data;
	uint32_t q, s;
	uint64_t *d;
	int i;

	CHECK_ERR(spt_bo_new(fd, 512 * 32, 0, &cmd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &data), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &s), 0);
	/* 500 jobs on one queue, each overwriting the same word: last wins. */
	for (i = 0; i < 500; i++) {
		struct spt_cs cs = { .buf = (uint8_t *)cmd.map + i * 32, .cap = 32 };

		spt_cs_fence(&cs, data.va, i + 1);
		spt_cs_nop(&cs);
		CHECK_ERR(submit_cs(fd, q, &cmd, i * 32, cs.len, s, 0, NULL, 0), 0);
	}
	CHECK_ERR(spt_syncobj_wait(fd, s, 0, 60000), 0);
	d = data.map;
	CHECK(d[0] == 500, "last value %llu", (unsigned long long)d[0]);
	spt_syncobj_del(fd, s);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return true;
}

static bool syncobj_dependency_orders_queues(void)
{
	struct spt_bo cmd, data;
	uint32_t q1, q2, s1, s2;
	struct drm_spt_sync dep;
	struct spt_cs cs;
	uint64_t *d;
	int round;

	CHECK_ERR(spt_bo_new(fd, 8192, 0, &cmd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &data), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q1), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q2), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &s1), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &s2), 0);
	d = data.map;
	for (round = 0; round < 20; round++) {
		/* job 1: 100 NOPs then a timestamp; job 2 waits, timestamps */
		int i;

		cs = cs_of(&cmd);
		for (i = 0; i < 100; i++)
			spt_cs_nop(&cs);
		spt_cs_timestamp(&cs, data.va);
		CHECK_ERR(submit_cs(fd, q1, &cmd, 0, cs.len, s1, 0, NULL, 0), 0);
		cs.buf = (uint8_t *)cmd.map + 4096;
		cs.len = 0;
		spt_cs_timestamp(&cs, data.va + 8);
		dep.handle = s1;
		dep.flags = 0;
		dep.point = 0;
		CHECK_ERR(submit_cs(fd, q2, &cmd, 4096, cs.len, s2, 0, &dep, 1), 0);
		CHECK_ERR(spt_syncobj_wait(fd, s2, 0, 20000), 0);
		CHECK(d[0] && d[1] >= d[0], "round %d: job 2 at %llu before job 1 at %llu", round,
		      (unsigned long long)d[1], (unsigned long long)d[0]);
	}
	spt_syncobj_del(fd, s1);
	spt_syncobj_del(fd, s2);
	spt_queue_del(fd, q1);
	spt_queue_del(fd, q2);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return true;
}

static bool timeline_points(void)
{
	struct drm_syncobj_timeline_array qa;
	struct spt_bo cmd, data;
	struct drm_spt_sync dep;
	uint32_t q, t;
	uint64_t value = 0;
	struct spt_cs cs;
	int i;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &cmd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &data), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &t), 0);
	for (i = 1; i <= 8; i++) {
		cs = cs_of(&cmd);
		cs.buf += (i - 1) * 32;
		spt_cs_fence(&cs, data.va + 8 * i, i);
		dep.handle = t;
		dep.flags = 0;
		dep.point = i - 1;
		/* job i waits for point i - 1 (none for the first) and signals point i */
		CHECK_ERR(submit_cs(fd, q, &cmd, (i - 1) * 32, cs.len, t, i,
				    i > 1 ? &dep : NULL, i > 1), 0);
	}
	CHECK_ERR(spt_syncobj_wait(fd, t, 8, 20000), 0);
	memset(&qa, 0, sizeof(qa));
	qa.handles = (uintptr_t)&t;
	qa.points = (uintptr_t)&value;
	qa.count_handles = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SYNCOBJ_QUERY, &qa), 0);
	CHECK(value == 8, "timeline at %llu", (unsigned long long)value);
	for (i = 1; i <= 8; i++)
		CHECK(((uint64_t *)data.map)[i] == (uint64_t)i, "point %d not written", i);
	/* waiting for a point nobody will signal times out */
	CHECK_ERR(spt_syncobj_wait(fd, t, 9, 50), -ETIME);
	spt_syncobj_del(fd, t);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return true;
}

static bool signaled_in_syncobj(void)
{
	struct spt_bo cmd;
	uint32_t q, in, out;
	struct drm_spt_sync dep = { 0 };
	struct spt_cs cs;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &cmd), 0);
	CHECK_ERR(spt_queue_new(fd, 0, &q), 0);
	CHECK_ERR(spt_syncobj_new(fd, true, &in), 0);
	CHECK_ERR(spt_syncobj_new(fd, false, &out), 0);
	cs = cs_of(&cmd);
	spt_cs_nop(&cs);
	dep.handle = in;
	CHECK_ERR(submit_cs(fd, q, &cmd, 0, cs.len, out, 0, &dep, 1), 0);
	CHECK_ERR(spt_syncobj_wait(fd, out, 0, 20000), 0);
	spt_syncobj_del(fd, in);
	spt_syncobj_del(fd, out);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &cmd);
	return true;
}

static bool implicit_sync_and_bo_wait(void)
{
	struct spt_bo cmd, data;
	struct drm_spt_bo_ref ref;
	struct drm_spt_bo_wait w;
	struct spt_submit_args a;
	uint32_t q1, q2;
	struct spt_cs cs;
	uint64_t *d;
	int i;

	CHECK_ERR(spt_bo_new(fd, 8192, 0, &cmd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &data), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q1), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q2), 0);
	cs = cs_of(&cmd);
	for (i = 0; i < 200; i++)
		spt_cs_nop(&cs);
	spt_cs_timestamp(&cs, data.va);
	ref.handle = data.handle;
	ref.flags = DRM_SPT_BO_REF_WRITE;
	memset(&a, 0, sizeof(a));
	a.queue = q1;
	a.cmd_handle = cmd.handle;
	a.cmd_size = cs.len;
	a.bos = &ref;
	a.bo_count = 1;
	CHECK_ERR(spt_submit(fd, &a), 0);
	cs.buf = (uint8_t *)cmd.map + 4096;
	cs.len = 0;
	spt_cs_timestamp(&cs, data.va + 8);
	ref.flags = DRM_SPT_BO_REF_READ | DRM_SPT_BO_REF_WRITE;
	a.queue = q2;
	a.cmd_offset = 4096;
	a.cmd_size = cs.len;
	CHECK_ERR(spt_submit(fd, &a), 0);
	memset(&w, 0, sizeof(w));
	w.handle = data.handle;
	w.timeout_ns = spt_now_ns() + 20000000000ll;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_WAIT, &w), 0);
	d = data.map;
	CHECK(d[0] && d[1] >= d[0], "second writer at %llu ran before first at %llu",
	      (unsigned long long)d[1], (unsigned long long)d[0]);
	spt_queue_del(fd, q1);
	spt_queue_del(fd, q2);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return true;
}

/* One GEMM job vs spt_gemm() on the CPU: outputs must match bit for bit. */
static bool gemm_matches_core(int dev_fd, uint32_t m, uint32_t n, uint32_t k, uint32_t seed)
{
	size_t cap_a = spt_ct_bound(m, k), cap_b = spt_ct_bound(n, k), len_a, len_b;
	struct spt_bo cmd, a, b, y;
	float *xa, *xb, *ref;
	struct spt_gemm_out out;
	struct spt_cmd_gemm *g;
	uint32_t q, s;
	struct spt_cs cs;
	int r;

	xa = malloc(sizeof(float) * m * k);
	xb = malloc(sizeof(float) * n * k);
	ref = calloc((size_t)m * n, sizeof(float));
	CHECK(xa && xb && ref, "malloc");
	spt_fill(xa, (size_t)m * k, seed);
	spt_fill(xb, (size_t)n * k, seed * 7 + 1);
	CHECK_ERR(spt_bo_new(dev_fd, cap_a, 0, &a), 0);
	CHECK_ERR(spt_bo_new(dev_fd, cap_b, 0, &b), 0);
	CHECK_ERR(spt_bo_new(dev_fd, sizeof(float) * m * n, 0, &y), 0);
	CHECK_ERR(spt_bo_new(dev_fd, 4096, 0, &cmd), 0);
	r = spt_ct_encode(xa, m, k, NULL, a.map, cap_a, &len_a, NULL);
	CHECK(!r, "encode A: %d", r);
	r = spt_ct_encode(xb, n, k, NULL, b.map, cap_b, &len_b, NULL);
	CHECK(!r, "encode B: %d", r);

	memset(&out, 0, sizeof(out));
	out.y = ref;
	spt_encode_opts_init(&out.enc);
	r = spt_gemm(SPT_PASS_FWD, a.map, len_a, b.map, len_b, NULL, &out, NULL);
	CHECK(!r, "spt_gemm: %d", r);

	cs = cs_of(&cmd);
	g = spt_cs_add(&cs, SPT_OP_GEMM, sizeof(*g));
	g->pass = SPT_PASS_FWD;
	g->a_va = a.va;
	g->a_len = len_a;
	g->b_va = b.va;
	g->b_len = len_b;
	g->y_va = y.va;
	CHECK_ERR(spt_queue_new(dev_fd, 1, &q), 0);
	CHECK_ERR(spt_syncobj_new(dev_fd, false, &s), 0);
	CHECK_ERR(submit_cs(dev_fd, q, &cmd, 0, cs.len, s, 0, NULL, 0), 0);
	CHECK_ERR(spt_syncobj_wait(dev_fd, s, 0, 60000), 0);
	r = spt_syncobj_status(dev_fd, s);
	CHECK(r == 1, "GEMM job status %d", r);
	CHECK(!memcmp(y.map, ref, sizeof(float) * m * n), "%ux%ux%u GEMM differs from core", m, n, k);

	spt_syncobj_del(dev_fd, s);
	spt_queue_del(dev_fd, q);
	spt_bo_free(dev_fd, &cmd);
	spt_bo_free(dev_fd, &y);
	spt_bo_free(dev_fd, &b);
	spt_bo_free(dev_fd, &a);
	free(xa);
	free(xb);
	free(ref);
	return true;
}

static bool gemm_small(void)
{
	return gemm_matches_core(fd, 8, 16, 64, 1);
}

static bool gemm_ragged(void)
{
	return gemm_matches_core(fd, 33, 17, 100, 2);
}

static bool gemm_medium(void)
{
	return gemm_matches_core(fd, 64, 128, 256, 3);
}

static bool mmu_fault_fails_one_job(void)
{
	struct drm_spt_query_status s0, s1;
	struct spt_bo cmd, data;
	uint32_t q, sy[3];
	struct spt_cs cs;
	int i;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &cmd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &data), 0);
	CHECK_ERR(spt_queue_new(fd, 1, &q), 0);
	CHECK_ERR(spt_query_status(fd, &s0), 0);
	for (i = 0; i < 3; i++) {
		CHECK_ERR(spt_syncobj_new(fd, false, &sy[i]), 0);
		cs = cs_of(&cmd);
		cs.buf += i * 64;
		/* the middle job writes to an unmapped VA, then would write */
		spt_cs_fence(&cs, i == 1 ? 0x7000000000ull : data.va + 8 * i, 10 + i);
		spt_cs_fence(&cs, data.va + 64 + 8 * i, 20 + i);
		CHECK_ERR(submit_cs(fd, q, &cmd, i * 64, cs.len, sy[i], 0, NULL, 0), 0);
	}
	for (i = 0; i < 3; i++)
		CHECK_ERR(spt_syncobj_wait(fd, sy[i], 0, 20000), 0);
	CHECK(spt_syncobj_status(fd, sy[0]) == 1, "job 0: %d", spt_syncobj_status(fd, sy[0]));
	CHECK(spt_syncobj_status(fd, sy[1]) == -EFAULT, "job 1: %d",
	      spt_syncobj_status(fd, sy[1]));
	CHECK(spt_syncobj_status(fd, sy[2]) == 1, "job 2: %d", spt_syncobj_status(fd, sy[2]));
	CHECK(((uint64_t *)data.map)[8 + 1] == 0, "faulting job went on after the fault");
	CHECK(((uint64_t *)data.map)[8 + 2] == 22, "job after the fault did not run");
	CHECK_ERR(spt_query_status(fd, &s1), 0);
	CHECK(s1.faulted_jobs == s0.faulted_jobs + 1 && s1.done_jobs == s0.done_jobs + 2,
	      "faulted %llu done %llu", (unsigned long long)(s1.faulted_jobs - s0.faulted_jobs),
	      (unsigned long long)(s1.done_jobs - s0.done_jobs));
	for (i = 0; i < 3; i++)
		spt_syncobj_del(fd, sy[i]);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return true;
}

static int child_work(int id)
{
	struct spt_bo cmd, data;
	uint32_t q, s;
	int dev_fd, i;

	dev_fd = spt_open();
	if (dev_fd < 0)
		return 10;
	if (spt_bo_new(dev_fd, 64 * 32, 0, &cmd) || spt_bo_new(dev_fd, 4096, 0, &data) ||
	    spt_queue_new(dev_fd, 1, &q) || spt_syncobj_new(dev_fd, false, &s))
		return 11;
	for (i = 0; i < 64; i++) {
		struct spt_cs cs = { .buf = (uint8_t *)cmd.map + i * 32, .cap = 32 };

		spt_cs_fence(&cs, data.va + 8 * i, ((uint64_t)id << 32) | i);
		if (submit_cs(dev_fd, q, &cmd, i * 32, cs.len, s, 0, NULL, 0))
			return 12;
	}
	if (spt_syncobj_wait(dev_fd, s, 0, 60000))
		return 13;
	for (i = 0; i < 64; i++)
		if (((uint64_t *)data.map)[i] != (((uint64_t)id << 32) | i))
			return 14;
	if (!gemm_matches_core(dev_fd, 16, 32, 96, 100 + id))
		return 15;
	close(dev_fd);
	return 0;
}

static bool concurrent_processes(void)
{
	int i, status, bad = 0;
	pid_t pid[6];

	fflush(stdout);
	for (i = 0; i < 6; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0, "fork: %s", strerror(errno));
		if (!pid[i])
			_exit(child_work(i + 1));
	}
	for (i = 0; i < 6; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i], "waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			ktap_diag("child %d: status %#x", i, status);
			bad++;
		}
	}
	CHECK(!bad, "%d of 6 processes failed", bad);
	return true;
}

struct thread_arg {
	int id;
	int ok;
};

static void *thread_work(void *p)
{
	struct thread_arg *t = p;
	struct spt_bo cmd, data;
	uint32_t q, s;
	int i;

	/* threads share the file (and its address space), not queues */
	if (spt_bo_new(fd, 128 * 32, 0, &cmd) || spt_bo_new(fd, 4096, 0, &data) ||
	    spt_queue_new(fd, 1, &q) || spt_syncobj_new(fd, false, &s))
		return NULL;
	for (i = 0; i < 128; i++) {
		struct spt_cs cs = { .buf = (uint8_t *)cmd.map + i * 32, .cap = 32 };

		spt_cs_fence(&cs, data.va + 8 * (i % 512), ((uint64_t)t->id << 32) | i);
		if (submit_cs(fd, q, &cmd, i * 32, cs.len, s, 0, NULL, 0))
			return NULL;
	}
	if (spt_syncobj_wait(fd, s, 0, 60000))
		return NULL;
	for (i = 0; i < 128; i++)
		if (((uint64_t *)data.map)[i] != (((uint64_t)t->id << 32) | i))
			return NULL;
	spt_syncobj_del(fd, s);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	t->ok = 1;
	return NULL;
}

static bool threads_share_file(void)
{
	struct thread_arg args[4];
	pthread_t th[4];
	int i, ok = 0;

	for (i = 0; i < 4; i++) {
		args[i].id = i + 1;
		args[i].ok = 0;
		CHECK(!pthread_create(&th[i], NULL, thread_work, &args[i]), "pthread_create");
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok += args[i].ok;
	}
	CHECK(ok == 4, "%d of 4 threads verified their results", ok);
	return true;
}

static bool fdinfo_reports_engine(void)
{
	char path[64], buf[4096];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	CHECK(f >= 0, "open %s", path);
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	CHECK(n > 0, "read fdinfo");
	buf[n] = 0;
	CHECK(strstr(buf, "drm-driver:\tspt"), "no drm-driver line:\n%s", buf);
	CHECK(strstr(buf, "drm-engine-spt:"), "no drm-engine-spt line:\n%s", buf);
	CHECK(strtoull(strstr(buf, "drm-engine-spt:") + 15, NULL, 10) > 0,
	      "no engine time after jobs:\n%s", buf);
	CHECK(strstr(buf, "drm-total-memory:") || strstr(buf, "drm-resident-memory:") ||
	      strstr(buf, "drm-memory-"), "no memory stats:\n%s", buf);
	return true;
}

static const struct ktap_case cases[] = {
	{ "nop_job_signals_out_syncobj", nop_job_signals },
	{ "many_jobs_one_queue_in_order", many_jobs_in_order },
	{ "syncobj_dependency_orders_queues", syncobj_dependency_orders_queues },
	{ "timeline_points_chain", timeline_points },
	{ "signaled_in_syncobj", signaled_in_syncobj },
	{ "implicit_sync_and_bo_wait", implicit_sync_and_bo_wait },
	{ "gemm_8x16x64_matches_core", gemm_small },
	{ "gemm_33x17x100_matches_core", gemm_ragged },
	{ "gemm_64x128x256_matches_core", gemm_medium },
	{ "mmu_fault_fails_one_job_only", mmu_fault_fails_one_job },
	{ "concurrent_processes", concurrent_processes },
	{ "threads_share_one_file", threads_share_file },
	{ "fdinfo_reports_engine", fdinfo_reports_engine },
};

int main(void)
{
	fd = spt_open();
	if (fd < 0) {
		printf("KTAP version 1\n1..0 # SKIP no spt device: %s\n", strerror(-fd));
		return 1;
	}
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
