// SPDX-License-Identifier: MIT
/*
 * Buffer objects: lifecycle, mmap, PRIME round trip, and the isolation of
 * per-file device address spaces (a VA of one file faults in another).
 */
#include "spt_test.h"

static int fd;

struct job_env {
	int fd;
	uint32_t queue;
	uint32_t sync;
	struct spt_bo cmd;
};

static int env_init(struct job_env *e, int dev_fd)
{
	int r;

	memset(e, 0, sizeof(*e));
	e->fd = dev_fd;
	r = spt_bo_new(dev_fd, 4096, 0, &e->cmd);
	if (!r)
		r = spt_queue_new(dev_fd, DRM_SPT_QUEUE_PRIORITY_NORMAL, &e->queue);
	if (!r)
		r = spt_syncobj_new(dev_fd, false, &e->sync);
	return r;
}

static void env_fini(struct job_env *e)
{
	spt_syncobj_del(e->fd, e->sync);
	spt_queue_del(e->fd, e->queue);
	spt_bo_free(e->fd, &e->cmd);
}

/* Runs one FENCE command (value at va); returns the fence status. */
static int env_fence(struct job_env *e, uint64_t va, uint64_t value)
{
	struct spt_cs cs = { .buf = e->cmd.map, .cap = e->cmd.size };
	struct spt_submit_args a = {
		.queue = e->queue, .cmd_handle = e->cmd.handle, .out_sync = e->sync,
	};
	int r;

	spt_cs_fence(&cs, va, value);
	a.cmd_size = cs.len;
	r = spt_submit(e->fd, &a);
	if (r)
		return r;
	r = spt_syncobj_wait(e->fd, e->sync, 0, 20000);
	if (r)
		return r;
	return spt_syncobj_status(e->fd, e->sync);
}

static bool bo_mmap_roundtrip(void)
{
	struct spt_bo b;
	uint32_t *p;
	size_t i;

	CHECK_ERR(spt_bo_new(fd, 64 * 1024, 0, &b), 0);
	p = b.map;
	for (i = 0; i < b.size / 4; i++)
		p[i] = (uint32_t)i * 2654435761u;
	munmap(b.map, b.size);
	{
		struct drm_spt_bo_info info = { .handle = b.handle };

		CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_INFO, &info), 0);
		p = mmap(NULL, b.size, PROT_READ, MAP_SHARED, fd, info.mmap_offset);
		CHECK(p != MAP_FAILED, "second mmap: %s", strerror(errno));
	}
	for (i = 0; i < b.size / 4; i++)
		CHECK(p[i] == (uint32_t)i * 2654435761u, "word %zu differs", i);
	b.map = p;
	spt_bo_free(fd, &b);
	return true;
}

static bool bo_mmap_outlives_handle(void)
{
	struct spt_bo b;
	uint64_t *p;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &b), 0);
	p = b.map;
	p[3] = 0x1234;
	CHECK_ERR(spt_gem_close(fd, b.handle), 0);
	CHECK(p[3] == 0x1234, "mapping lost its data");
	p[4] = 5;
	munmap(b.map, b.size);
	return true;
}

static bool bo_many(void)
{
	struct spt_bo b[64];
	int i;

	for (i = 0; i < 64; i++)
		CHECK_ERR(spt_bo_new(fd, 4096 * (1 + i % 5), 0, &b[i]), 0);
	for (i = 0; i < 64; i += 2)
		spt_bo_free(fd, &b[i]);
	for (i = 0; i < 64; i += 2)
		CHECK_ERR(spt_bo_new(fd, 4096, 0, &b[i]), 0);
	for (i = 0; i < 64; i++)
		spt_bo_free(fd, &b[i]);
	return true;
}

static bool bo_device_write(void)
{
	struct job_env e;
	struct spt_bo b;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(spt_bo_new(fd, 8192, 0, &b), 0);
	CHECK_ERR(env_fence(&e, b.va + 4096 + 16, 0xfeedface12345678ull), 1);
	CHECK(((uint64_t *)b.map)[514] == 0xfeedface12345678ull, "device write not visible: %#llx",
	      (unsigned long long)((uint64_t *)b.map)[514]);
	spt_bo_free(fd, &b);
	env_fini(&e);
	return true;
}

static bool bo_guard_page_faults(void)
{
	struct drm_spt_query_status s0, s1;
	struct job_env e;
	struct spt_bo b;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &b), 0);
	CHECK_ERR(spt_query_status(fd, &s0), 0);
	CHECK_ERR(env_fence(&e, b.va + b.size, 1), -EFAULT);
	CHECK_ERR(spt_query_status(fd, &s1), 0);
	CHECK(s1.faulted_jobs == s0.faulted_jobs + 1, "faulted %llu -> %llu",
	      (unsigned long long)s0.faulted_jobs, (unsigned long long)s1.faulted_jobs);
	CHECK(s1.last_fault_va == b.va + b.size, "fault va %#llx",
	      (unsigned long long)s1.last_fault_va);
	CHECK_ERR(env_fence(&e, b.va, 2), 1);
	spt_bo_free(fd, &b);
	env_fini(&e);
	return true;
}

static bool bo_readonly_faults_on_write(void)
{
	struct job_env e;
	struct spt_bo b;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, DRM_SPT_BO_DEVICE_READONLY, &b), 0);
	((uint64_t *)b.map)[0] = 7;
	CHECK_ERR(env_fence(&e, b.va, 99), -EFAULT);
	CHECK(((uint64_t *)b.map)[0] == 7, "read-only BO was written");
	spt_bo_free(fd, &b);
	env_fini(&e);
	return true;
}

static bool bo_closed_va_faults(void)
{
	struct job_env e;
	struct spt_bo b;
	uint64_t va;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(spt_bo_new(fd, 4096, 0, &b), 0);
	va = b.va;
	spt_bo_free(fd, &b);
	CHECK_ERR(env_fence(&e, va, 1), -EFAULT);
	env_fini(&e);
	return true;
}

static bool unmapped_low_va_faults(void)
{
	struct job_env e;

	CHECK_ERR(env_init(&e, fd), 0);
	CHECK_ERR(env_fence(&e, 0x1000, 1), -EFAULT);
	env_fini(&e);
	return true;
}

static bool prime_roundtrip(void)
{
	struct drm_prime_handle exp = { .flags = DRM_CLOEXEC | DRM_RDWR };
	struct drm_prime_handle imp = { 0 };
	struct drm_spt_bo_info info;
	struct job_env e;
	struct spt_bo a;
	uint64_t *p;
	int fd2;

	fd2 = spt_open();
	CHECK(fd2 >= 0, "open: %d", fd2);
	CHECK_ERR(spt_bo_new(fd, 8192, 0, &a), 0);
	((uint64_t *)a.map)[1] = 0xabcdef;

	exp.handle = a.handle;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp), 0);
	imp.fd = exp.fd;
	CHECK_ERR(spt_ioc(fd2, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp), 0);
	close(exp.fd);

	memset(&info, 0, sizeof(info));
	info.handle = imp.handle;
	CHECK_ERR(spt_ioc(fd2, DRM_IOCTL_SPT_BO_INFO, &info), 0);
	CHECK(info.size == a.size, "imported size %llu", (unsigned long long)info.size);
	CHECK(info.va >= 0x100000, "imported VA %#llx", (unsigned long long)info.va);
	p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, info.mmap_offset);
	CHECK(p != MAP_FAILED, "mmap of import: %s", strerror(errno));
	CHECK(p[1] == 0xabcdef, "import sees %#llx", (unsigned long long)p[1]);

	/* The importer's device writes land in the exporter's pages. */
	CHECK_ERR(env_init(&e, fd2), 0);
	CHECK_ERR(env_fence(&e, info.va + 64, 0x5151), 1);
	CHECK(((uint64_t *)a.map)[8] == 0x5151, "exporter sees %#llx",
	      (unsigned long long)((uint64_t *)a.map)[8]);
	env_fini(&e);
	munmap(p, info.size);
	spt_gem_close(fd2, imp.handle);
	close(fd2);
	spt_bo_free(fd, &a);
	return true;
}

static bool prime_self_import_same_handle(void)
{
	struct drm_prime_handle exp = { .flags = DRM_CLOEXEC | DRM_RDWR };
	struct drm_prime_handle imp = { 0 };
	struct spt_bo a;

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &a), 0);
	exp.handle = a.handle;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &exp), 0);
	imp.fd = exp.fd;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp), 0);
	close(exp.fd);
	CHECK(imp.handle == a.handle, "self import gave handle %u, not %u", imp.handle, a.handle);
	spt_bo_free(fd, &a);
	return true;
}

static bool cross_fd_isolation(void)
{
	struct drm_spt_query_status sa, sb;
	struct spt_bo pad, target;
	struct job_env eb;
	int fd_b;

	/*
	 * File A maps two BOs; file B maps only its command BO, so A's second
	 * VA is unmapped in B's address space.
	 */
	int fd_a = spt_open();

	CHECK(fd_a >= 0, "open A: %d", fd_a);
	fd_b = spt_open();
	CHECK(fd_b >= 0, "open B: %d", fd_b);
	CHECK_ERR(spt_bo_new(fd_a, 4096, 0, &pad), 0);
	CHECK_ERR(spt_bo_new(fd_a, 4096, 0, &target), 0);
	CHECK_ERR(env_init(&eb, fd_b), 0);
	CHECK(eb.cmd.va + eb.cmd.size <= target.va || target.va + target.size <= eb.cmd.va,
	      "B's command BO sits on A's target VA");

	CHECK_ERR(env_fence(&eb, target.va, 0xbad), -EFAULT);
	CHECK(((uint64_t *)target.map)[0] == 0, "B wrote into A's BO");
	CHECK_ERR(spt_query_status(fd_b, &sb), 0);
	CHECK_ERR(spt_query_status(fd_a, &sa), 0);
	CHECK(sb.faulted_jobs == 1 && sa.faulted_jobs == 0, "faults A %llu B %llu",
	      (unsigned long long)sa.faulted_jobs, (unsigned long long)sb.faulted_jobs);
	CHECK(sa.ctx != sb.ctx, "same context %u", sa.ctx);

	env_fini(&eb);
	spt_bo_free(fd_a, &pad);
	spt_bo_free(fd_a, &target);
	close(fd_a);
	close(fd_b);
	return true;
}

static bool contexts_exhaust_ebusy(void)
{
	struct drm_spt_query_device dev;
	int fds[300], n = 0, r = 0, i;

	CHECK_ERR(spt_query_device(fd, &dev), 0);
	while (n < 300) {
		r = spt_open();
		if (r < 0)
			break;
		fds[n++] = r;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	CHECK(r == -EBUSY, "open ended with %d after %d files", r, n);
	CHECK((unsigned int)n < dev.num_contexts, "%d files for %u contexts", n, dev.num_contexts);
	r = spt_open();
	CHECK(r >= 0, "reopen after close: %d", r);
	close(r);
	return true;
}

static const struct ktap_case cases[] = {
	{ "bo_mmap_roundtrip", bo_mmap_roundtrip },
	{ "bo_mmap_outlives_handle", bo_mmap_outlives_handle },
	{ "bo_create_free_many", bo_many },
	{ "bo_device_write_visible_to_cpu", bo_device_write },
	{ "bo_guard_page_faults", bo_guard_page_faults },
	{ "bo_readonly_faults_on_write", bo_readonly_faults_on_write },
	{ "bo_closed_va_faults", bo_closed_va_faults },
	{ "unmapped_low_va_faults", unmapped_low_va_faults },
	{ "prime_roundtrip_two_files", prime_roundtrip },
	{ "prime_self_import_same_handle", prime_self_import_same_handle },
	{ "cross_fd_va_isolation", cross_fd_isolation },
	{ "contexts_exhaust_ebusy", contexts_exhaust_ebusy },
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
