// SPDX-License-Identifier: MIT
/*
 * Recovery: an injected hang is detected by the job timeout, the device is
 * reset, the guilty job fails with -ETIMEDOUT, innocent jobs complete and
 * later jobs succeed.  Injected DMA errors and corrupt completion records
 * fail one job with -EIO.  Needs -device spt,debug=on.
 */
#include <sys/stat.h>

#include "spt_test.h"

static int fd;
static char dbgdir[256];
static struct drm_spt_query_device dev;

static int write_knob(const char *name, const char *val)
{
	char path[400];
	int f, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dbgdir, name);
	f = open(path, O_WRONLY);
	if (f < 0)
		return -errno;
	if (write(f, val, strlen(val)) < 0)
		r = -errno;
	close(f);
	return r;
}

static long read_sysfs_counter(const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/sys/class/accel/accel%d/device/spt/%s",
		 spt_accel_index(), name);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

struct env {
	int fd;
	uint32_t q, s;
	struct spt_bo cmd, data;
};

static int env_init(struct env *e, int dev_fd)
{
	memset(e, 0, sizeof(*e));
	e->fd = dev_fd;
	if (spt_bo_new(dev_fd, 4096, 0, &e->cmd) || spt_bo_new(dev_fd, 4096, 0, &e->data) ||
	    spt_queue_new(dev_fd, 1, &e->q) || spt_syncobj_new(dev_fd, false, &e->s))
		return -1;
	return 0;
}

static void env_fini(struct env *e)
{
	spt_syncobj_del(e->fd, e->s);
	spt_queue_del(e->fd, e->q);
	spt_bo_free(e->fd, &e->data);
	spt_bo_free(e->fd, &e->cmd);
}

/* Submit one FENCE job writing @value; do not wait. */
static int env_submit(struct env *e, uint64_t value)
{
	struct spt_cs cs = { .buf = e->cmd.map, .cap = 64 };
	struct spt_submit_args a = {
		.queue = e->q, .cmd_handle = e->cmd.handle, .out_sync = e->s,
	};

	spt_cs_fence(&cs, e->data.va, value);
	a.cmd_size = cs.len;
	return spt_submit(e->fd, &a);
}

static int env_wait_status(struct env *e)
{
	int ms = 20 * (int)dev.job_timeout_ms + 20000;
	int r = spt_syncobj_wait(e->fd, e->s, 0, ms);

	return r ? r : spt_syncobj_status(e->fd, e->s);
}

static bool hang_reset_recovers(void)
{
	struct drm_spt_query_status s0, s1;
	struct env e;
	int64_t t0;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(spt_query_status(fd, &s0), 0);
	CHECK_ERR(write_knob("fi_hang_after", "1"), 0);
	t0 = spt_now_ns();
	CHECK_ERR(env_submit(&e, 1), 0);
	CHECK_ERR(env_wait_status(&e), -ETIMEDOUT);
	ktap_diag("hang detected and reset after %lld ms (job_timeout_ms %u)",
		  (long long)(spt_now_ns() - t0) / 1000000, dev.job_timeout_ms);
	CHECK_ERR(spt_query_status(fd, &s1), 0);
	CHECK(s1.resets == s0.resets + 1, "resets %llu -> %llu",
	      (unsigned long long)s0.resets, (unsigned long long)s1.resets);
	CHECK(s1.guilty_jobs == s0.guilty_jobs + 1, "guilty %llu",
	      (unsigned long long)s1.guilty_jobs);
	CHECK(read_sysfs_counter("reset_count") == (long)s1.resets, "sysfs reset_count %ld",
	      read_sysfs_counter("reset_count"));
	CHECK_ERR(env_submit(&e, 2), 0);
	CHECK_ERR(env_wait_status(&e), 1);
	CHECK(((uint64_t *)e.data.map)[0] == 2, "job after reset wrote %llu",
	      (unsigned long long)((uint64_t *)e.data.map)[0]);
	env_fini(&e);
	return true;
}

/* Device jobs started since its last reset, from debugfs "rings". */
static long jobs_started(void)
{
	char path[400], buf[2048], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "%s/rings", dbgdir);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "jobs_started ");
	return p ? strtol(p + 13, NULL, 10) : -1;
}

static bool hang_innocent_completes(void)
{
	struct drm_spt_query_status sa, sb;
	struct env a, b;
	long started;
	int fd2 = spt_open(), i, ra, rb;

	CHECK(fd2 >= 0, "open: %d", fd2);
	CHECK_ERR(env_init(&a, fd), 0);
	CHECK_ERR(env_init(&b, fd2), 0);
	CHECK_ERR(write_knob("fi_hang_after", "1"), 0);
	started = jobs_started();
	CHECK(started >= 0, "no jobs_started in debugfs rings");
	CHECK_ERR(env_submit(&a, 1), 0);
	/* B goes in only once A runs (and hangs) on the device */
	for (i = 0; i < 2000 && jobs_started() == started; i++)
		usleep(5000);
	CHECK(jobs_started() > started, "job A never started");
	ktap_diag("jobs started before A %ld, after %ld", started, jobs_started());
	CHECK_ERR(env_submit(&b, 7), 0);
	ra = env_wait_status(&a);
	rb = env_wait_status(&b);
	CHECK(ra == -ETIMEDOUT && rb == 1, "guilty job A: %d (want %d), innocent B: %d (want 1)",
	      ra, -ETIMEDOUT, rb);
	CHECK(((uint64_t *)b.data.map)[0] == 7, "innocent job wrote %llu",
	      (unsigned long long)((uint64_t *)b.data.map)[0]);
	CHECK_ERR(spt_query_status(fd2, &sb), 0);
	CHECK_ERR(spt_query_status(fd, &sa), 0);
	CHECK(sb.guilty_jobs == 0, "innocent file marked guilty");
	env_fini(&b);
	env_fini(&a);
	close(fd2);
	return true;
}

/*
 * Closing a BO does not wait for jobs that are not on the device yet: job 2
 * of file A depends on job 1 of file B, which hangs.  A closes the BO job 2
 * writes; the close returns at once, and job 2 later cannot write it.
 */
static bool bo_close_skips_blocked_jobs(void)
{
	struct drm_syncobj_handle exp = { .fd = -1 };
	struct drm_spt_sync dep = { 0 };
	struct spt_submit_args sa = { 0 };
	struct env a, b;
	struct spt_bo x;
	struct spt_cs cs;
	long started;
	int64_t t0, ms;
	int fd2 = spt_open(), i, r1, r2;

	CHECK(fd2 >= 0, "open: %d", fd2);
	CHECK_ERR(env_init(&a, fd), 0);
	CHECK_ERR(env_init(&b, fd2), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &x), 0);

	CHECK_ERR(write_knob("fi_hang_after", "1"), 0);
	started = jobs_started();
	CHECK_ERR(env_submit(&b, 1), 0);
	for (i = 0; i < 2000 && jobs_started() == started; i++)
		usleep(5000);
	CHECK(jobs_started() > started, "job 1 never started");

	/* B's out-syncobj, as a dependency of A's job */
	exp.handle = b.s;
	CHECK_ERR(spt_ioc(fd2, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &exp), 0);
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &exp), 0);
	close(exp.fd);
	dep.handle = exp.handle;
	cs.buf = a.cmd.map;
	cs.len = 0;
	cs.cap = 64;
	spt_cs_fence(&cs, x.va, 0x77);
	sa.queue = a.q;
	sa.cmd_handle = a.cmd.handle;
	sa.cmd_size = cs.len;
	sa.in = &dep;
	sa.in_count = 1;
	sa.out_sync = a.s;
	CHECK_ERR(spt_submit(fd, &sa), 0);

	t0 = spt_now_ns();
	spt_bo_free(fd, &x);
	ms = (spt_now_ns() - t0) / 1000000;
	CHECK(ms < 1000, "BO close waited %lld ms for a job not on the device", (long long)ms);

	r1 = env_wait_status(&b);
	r2 = env_wait_status(&a);
	CHECK(r1 == -ETIMEDOUT, "job 1: %d", r1);
	CHECK(r2 < 0, "job 2 wrote through a closed BO's VA: status %d", r2);
	ktap_diag("BO close took %lld ms; dependent job ended with %d", (long long)ms, r2);
	spt_syncobj_del(fd, exp.handle);
	env_fini(&b);
	env_fini(&a);
	close(fd2);
	return true;
}

static bool dma_error_fails_one_job(void)
{
	struct env e;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(write_knob("fi_dma_err_after", "1"), 0);
	CHECK_ERR(env_submit(&e, 1), 0);
	CHECK_ERR(env_wait_status(&e), -EIO);
	CHECK_ERR(env_submit(&e, 2), 0);
	CHECK_ERR(env_wait_status(&e), 1);
	env_fini(&e);
	return true;
}

static bool corrupt_completion_fails_one_job(void)
{
	struct env e;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(write_knob("fi_corrupt_after", "1"), 0);
	CHECK_ERR(env_submit(&e, 1), 0);
	CHECK_ERR(env_wait_status(&e), -EIO);
	CHECK_ERR(env_submit(&e, 2), 0);
	CHECK_ERR(env_wait_status(&e), 1);
	env_fini(&e);
	return true;
}

static bool debugfs_reset_idle(void)
{
	struct drm_spt_query_status s0, s1;
	struct env e;

	CHECK_ERR(spt_query_status(fd, &s0), 0);
	CHECK_ERR(write_knob("reset", "1"), 0);
	CHECK_ERR(spt_query_status(fd, &s1), 0);
	CHECK(s1.resets == s0.resets + 1, "resets %llu", (unsigned long long)s1.resets);
	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(env_submit(&e, 3), 0);
	CHECK_ERR(env_wait_status(&e), 1);
	env_fini(&e);
	return true;
}

static bool debugfs_views(void)
{
	static const char *const names[] = { "rings", "contexts", "page_tables" };
	char path[400], buf[256];
	unsigned int i;
	ssize_t n;
	int f;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dbgdir, names[i]);
		f = open(path, O_RDONLY);
		CHECK(f >= 0, "open %s: %s", path, strerror(errno));
		n = read(f, buf, sizeof(buf));
		close(f);
		CHECK(n > 0, "%s is empty", names[i]);
	}
	return true;
}

static const struct ktap_case cases[] = {
	{ "hang_timeout_reset_recovers", hang_reset_recovers },
	{ "hang_innocent_job_completes", hang_innocent_completes },
	{ "bo_close_skips_blocked_jobs", bo_close_skips_blocked_jobs },
	{ "dma_error_fails_one_job", dma_error_fails_one_job },
	{ "corrupt_completion_fails_one_job", corrupt_completion_fails_one_job },
	{ "debugfs_reset_idle_device", debugfs_reset_idle },
	{ "debugfs_views_readable", debugfs_views },
};

int main(void)
{
	struct stat st;

	fd = spt_open();
	if (fd < 0 || spt_query_device(fd, &dev)) {
		printf("KTAP version 1\n1..0 # SKIP no spt device\n");
		return 1;
	}
	/* debugfs names the directory after the PCI device */
	{
		char link[96], target[200];
		ssize_t n;

		snprintf(link, sizeof(link), "/sys/class/accel/accel%d/device", spt_accel_index());
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		snprintf(dbgdir, sizeof(dbgdir), "/sys/kernel/debug/accel/%s",
			 strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
	}
	if (stat(dbgdir, &st) || !(dev.caps & DRM_SPT_CAP_DEBUG)) {
		printf("KTAP version 1\n1..0 # SKIP needs debugfs and -device spt,debug=on\n");
		return 1;
	}
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
