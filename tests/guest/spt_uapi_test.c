// SPDX-License-Identifier: MIT
/*
 * Every spt ioctl with valid and invalid arguments: each invalid case gets
 * the errno uapi/drm/spt_accel.h documents.
 */
#include <sys/wait.h>

#include "spt_test.h"

static int fd;
static struct drm_spt_query_device dev;

/* A command BO with one NOP and a queue, shared by the SUBMIT cases. */
static struct spt_bo cmd;
static uint32_t queue;

static struct spt_submit_args nop_submit(void)
{
	struct spt_submit_args a = {
		.queue = queue,
		.cmd_handle = cmd.handle,
		.cmd_size = 8,
	};
	return a;
}

static bool query_size_only(void)
{
	struct drm_spt_dev_query q = { .type = DRM_SPT_QUERY_DEVICE };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q), 0);
	CHECK(q.size == sizeof(struct drm_spt_query_device), "size %u", q.size);
	q.type = DRM_SPT_QUERY_STATUS;
	q.size = 0;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q), 0);
	CHECK(q.size == sizeof(struct drm_spt_query_status), "size %u", q.size);
	return true;
}

static bool query_device(void)
{
	CHECK_ERR(spt_query_device(fd, &dev), 0);
	CHECK(dev.abi_major == DRM_SPT_ABI_VERSION_MAJOR, "abi %u", dev.abi_major);
	CHECK(dev.hw_version >> 16 == SPT_HW_VERSION_MAJOR, "hw %#x", dev.hw_version);
	CHECK(dev.caps & DRM_SPT_CAP_MMU, "caps %#x", dev.caps);
	CHECK(dev.num_hw_queues >= 1 && dev.num_contexts >= 2, "q %u ctx %u",
	      dev.num_hw_queues, dev.num_contexts);
	CHECK(dev.va_start && dev.va_start < dev.va_end, "va %#llx..%#llx",
	      (unsigned long long)dev.va_start, (unsigned long long)dev.va_end);
	CHECK(dev.max_cmd_size >= 8 && dev.max_bo_refs && dev.max_in_syncs, "limits");
	ktap_diag("hw %u.%u caps %#x queues %u contexts %u mac %u clock %u MHz",
		  dev.hw_version >> 16, dev.hw_version & 0xffff, dev.caps,
		  dev.num_hw_queues, dev.num_contexts, dev.mac_array, dev.clock_mhz);
	return true;
}

static bool query_short_buffer(void)
{
	uint8_t buf[16];
	struct drm_spt_dev_query q = {
		.type = DRM_SPT_QUERY_DEVICE, .size = 4, .pointer = (uintptr_t)buf,
	};

	memset(buf, 0xa5, sizeof(buf));
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q), 0);
	CHECK(q.size == 4, "size %u", q.size);
	CHECK(buf[4] == 0xa5, "wrote past the size");
	CHECK(buf[0] == DRM_SPT_ABI_VERSION_MAJOR, "prefix %u", buf[0]);
	return true;
}

static bool query_bad_type(void)
{
	struct drm_spt_dev_query q = { .type = 77 };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q), -EINVAL);
	return true;
}

static bool query_bad_pointer(void)
{
	struct drm_spt_dev_query q = {
		.type = DRM_SPT_QUERY_DEVICE, .size = 64, .pointer = 8,
	};

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q), -EFAULT);
	return true;
}

static bool query_status(void)
{
	struct drm_spt_query_status s;

	CHECK_ERR(spt_query_status(fd, &s), 0);
	CHECK(s.ctx < dev.num_contexts, "ctx %u", s.ctx);
	CHECK(!s.failed_jobs && !s.faulted_jobs && !s.guilty_jobs, "fresh file has failures");
	return true;
}

static bool bo_create_invalid(void)
{
	struct drm_spt_bo_create c = { 0 };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_CREATE, &c), -EINVAL);
	c.size = 4096;
	c.flags = 1u << 7;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_CREATE, &c), -EINVAL);
	c.flags = 0;
	c.size = dev.max_bo_size + 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_CREATE, &c), -EINVAL);
	return true;
}

static bool bo_create_va(void)
{
	struct spt_bo a, b;

	CHECK_ERR(spt_bo_new(fd, 100, 0, &a), 0);
	CHECK_ERR(spt_bo_new(fd, 3 * 4096, 0, &b), 0);
	CHECK(a.handle && b.handle && a.handle != b.handle, "handles %u %u", a.handle, b.handle);
	CHECK(a.size == 4096 && b.size == 3 * 4096, "sizes %llu %llu",
	      (unsigned long long)a.size, (unsigned long long)b.size);
	CHECK(!(a.va & 4095) && !(b.va & 4095), "unaligned VA");
	CHECK(a.va >= dev.va_start && b.va + b.size <= dev.va_end, "VA outside range");
	CHECK(a.va + a.size <= b.va || b.va + b.size <= a.va, "overlapping VAs");
	CHECK(((uint8_t *)a.map)[0] == 0 && ((uint8_t *)b.map)[b.size - 1] == 0, "not zeroed");
	spt_bo_free(fd, &a);
	spt_bo_free(fd, &b);
	return true;
}

static bool bo_info_invalid(void)
{
	struct drm_spt_bo_info i = { .handle = 9999 };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_INFO, &i), -ENOENT);
	i.handle = cmd.handle;
	i.flags = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_INFO, &i), -EINVAL);
	i.flags = 0;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_INFO, &i), 0);
	CHECK(i.va == cmd.va && i.size == cmd.size, "info differs from create");
	return true;
}

static bool bo_wait(void)
{
	struct drm_spt_bo_wait w = { .handle = cmd.handle };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_WAIT, &w), 0);
	w.timeout_ns = spt_now_ns() + 1000000;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_WAIT, &w), 0);
	w.pad = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_WAIT, &w), -EINVAL);
	w.pad = 0;
	w.handle = 4242;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_BO_WAIT, &w), -ENOENT);
	return true;
}

static bool gem_close_invalid(void)
{
	CHECK_ERR(spt_gem_close(fd, 4242), -EINVAL);
	return true;
}

static bool queue_create_invalid(void)
{
	struct drm_spt_queue_create c = { .priority = 3 };

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_CREATE, &c), -EINVAL);
	c.priority = DRM_SPT_QUEUE_PRIORITY_NORMAL;
	c.flags = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_CREATE, &c), -EINVAL);
	c.flags = 0;
	c.pad = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_CREATE, &c), -EINVAL);
	return true;
}

static bool queue_priorities(void)
{
	uint32_t id[3], p;

	for (p = 0; p < 3; p++)
		CHECK_ERR(spt_queue_new(fd, p, &id[p]), 0);
	CHECK(id[0] && id[0] != id[1] && id[1] != id[2], "ids %u %u %u", id[0], id[1], id[2]);
	for (p = 0; p < 3; p++)
		CHECK_ERR(spt_queue_del(fd, id[p]), 0);
	return true;
}

static bool queue_high_priority_needs_cap(void)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		uint32_t id;

		/* a non-root uid has no CAP_SYS_NICE; the fd stays usable */
		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (spt_queue_new(fd, DRM_SPT_QUEUE_PRIORITY_HIGH, &id) != -EPERM)
			_exit(11);
		if (spt_queue_new(fd, DRM_SPT_QUEUE_PRIORITY_NORMAL, &id))
			_exit(12);
		_exit(spt_queue_del(fd, id) ? 13 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child status %#x", status);
	return true;
}

static bool queue_limit(void)
{
	uint32_t ids[256], n = 0, i;
	int r = 0;

	while (n < 256 && !(r = spt_queue_new(fd, 1, &ids[n])))
		n++;
	CHECK(r == -ENOSPC, "ended with %d after %u queues", r, n);
	CHECK(n + 1 == dev.max_queues, "%u queues, max_queues %u", n, dev.max_queues);
	for (i = 0; i < n; i++)
		CHECK_ERR(spt_queue_del(fd, ids[i]), 0);
	return true;
}

static bool queue_destroy_invalid(void)
{
	struct drm_spt_queue_destroy d = { .queue_id = 999 };
	uint32_t id;

	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_DESTROY, &d), -ENOENT);
	CHECK_ERR(spt_queue_new(fd, 1, &id), 0);
	d.queue_id = id;
	d.pad = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_DESTROY, &d), -EINVAL);
	CHECK_ERR(spt_queue_del(fd, id), 0);
	CHECK_ERR(spt_queue_del(fd, id), -ENOENT);
	return true;
}

static bool submit_bad_header(void)
{
	struct drm_spt_submit s = {
		.queue_id = queue, .cmd_handle = cmd.handle, .cmd_size = 8,
	};

	s.flags = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_SUBMIT, &s), -EINVAL);
	s.flags = 0;
	s.pad = 1;
	CHECK_ERR(spt_ioc(fd, DRM_IOCTL_SPT_SUBMIT, &s), -EINVAL);
	return true;
}

static bool submit_bad_stream(void)
{
	struct spt_submit_args a = nop_submit();

	a.cmd_offset = 4;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_offset = 0;
	a.cmd_size = 0;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_size = 12;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_size = dev.max_cmd_size + 8;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_size = 8;
	a.cmd_offset = cmd.size;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_offset = cmd.size - 8;
	a.cmd_size = 16;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.cmd_offset = ~0ull & ~7ull;
	a.cmd_size = 8;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	return true;
}

static bool submit_bad_handles(void)
{
	struct spt_submit_args a = nop_submit();
	struct drm_spt_bo_ref ref = { .handle = 4242, .flags = DRM_SPT_BO_REF_READ };

	a.queue = 999;
	CHECK_ERR(spt_submit(fd, &a), -ENOENT);
	a = nop_submit();
	a.cmd_handle = 4242;
	CHECK_ERR(spt_submit(fd, &a), -ENOENT);
	a = nop_submit();
	a.bos = &ref;
	a.bo_count = 1;
	CHECK_ERR(spt_submit(fd, &a), -ENOENT);
	a = nop_submit();
	a.out_sync = 4242;
	CHECK_ERR(spt_submit(fd, &a), -ENOENT);
	return true;
}

static bool submit_bad_bo_refs(void)
{
	struct spt_submit_args a = nop_submit();
	struct spt_bo x;
	struct drm_spt_bo_ref refs[2];

	CHECK_ERR(spt_bo_new(fd, 4096, 0, &x), 0);
	refs[0].handle = x.handle;
	refs[0].flags = 0;
	a.bos = refs;
	a.bo_count = 1;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	refs[0].flags = 1u << 5;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	refs[0].flags = DRM_SPT_BO_REF_WRITE;
	refs[1] = refs[0];
	a.bo_count = 2;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.bo_count = dev.max_bo_refs + 1;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.bo_count = 1;
	a.bos = (const void *)8;
	CHECK_ERR(spt_submit(fd, &a), -EFAULT);
	spt_bo_free(fd, &x);
	return true;
}

static bool submit_bad_syncs(void)
{
	struct spt_submit_args a = nop_submit();
	struct drm_spt_sync in = { .handle = 4242 };
	uint32_t empty;

	a.in = &in;
	a.in_count = 1;
	CHECK_ERR(spt_submit(fd, &a), -ENOENT);
	CHECK_ERR(spt_syncobj_new(fd, false, &empty), 0);
	in.handle = empty;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	in.flags = 1;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	in.flags = 0;
	a.in_count = dev.max_in_syncs + 1;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	a.in_count = 1;
	a.in = (const void *)8;
	CHECK_ERR(spt_submit(fd, &a), -EFAULT);
	a = nop_submit();
	a.out_point = 3;
	CHECK_ERR(spt_submit(fd, &a), -EINVAL);
	spt_syncobj_del(fd, empty);
	return true;
}

static bool submit_nop_seqno(void)
{
	struct spt_submit_args a = nop_submit();
	uint32_t out;

	CHECK_ERR(spt_syncobj_new(fd, false, &out), 0);
	a.out_sync = out;
	CHECK_ERR(spt_submit(fd, &a), 0);
	CHECK(a.seqno == 1, "first seqno %llu", (unsigned long long)a.seqno);
	CHECK_ERR(spt_submit(fd, &a), 0);
	CHECK(a.seqno == 2, "second seqno %llu", (unsigned long long)a.seqno);
	CHECK_ERR(spt_syncobj_wait(fd, out, 0, 10000), 0);
	CHECK(spt_syncobj_status(fd, out) == 1, "status %d", spt_syncobj_status(fd, out));
	spt_syncobj_del(fd, out);
	return true;
}

static bool close_with_queues(void)
{
	int fd2 = spt_open();
	uint32_t q;
	struct spt_bo b;

	CHECK(fd2 >= 0, "open: %d", fd2);
	CHECK_ERR(spt_queue_new(fd2, 1, &q), 0);
	CHECK_ERR(spt_bo_new(fd2, 8192, 0, &b), 0);
	munmap(b.map, b.size);
	close(fd2);
	return true;
}

static const struct ktap_case cases[] = {
	{ "dev_query_size_only", query_size_only },
	{ "dev_query_device", query_device },
	{ "dev_query_short_buffer", query_short_buffer },
	{ "dev_query_bad_type_einval", query_bad_type },
	{ "dev_query_bad_pointer_efault", query_bad_pointer },
	{ "dev_query_status", query_status },
	{ "bo_create_invalid_einval", bo_create_invalid },
	{ "bo_create_va_size_zeroed", bo_create_va },
	{ "bo_info_invalid", bo_info_invalid },
	{ "bo_wait_idle_and_invalid", bo_wait },
	{ "gem_close_bad_handle_einval", gem_close_invalid },
	{ "queue_create_invalid_einval", queue_create_invalid },
	{ "queue_create_priorities", queue_priorities },
	{ "queue_create_high_needs_cap_sys_nice", queue_high_priority_needs_cap },
	{ "queue_create_limit_enospc", queue_limit },
	{ "queue_destroy_invalid", queue_destroy_invalid },
	{ "submit_flags_pad_einval", submit_bad_header },
	{ "submit_bad_stream_einval", submit_bad_stream },
	{ "submit_bad_handles_enoent", submit_bad_handles },
	{ "submit_bad_bo_refs", submit_bad_bo_refs },
	{ "submit_bad_syncs", submit_bad_syncs },
	{ "submit_nop_seqno_fence", submit_nop_seqno },
	{ "close_with_queues_and_bos", close_with_queues },
};

int main(void)
{
	struct spt_cs cs;

	fd = spt_open();
	if (fd < 0) {
		printf("KTAP version 1\n1..0 # SKIP no spt device: %s\n", strerror(-fd));
		return 1;
	}
	if (spt_query_device(fd, &dev) || spt_bo_new(fd, 4096, 0, &cmd) ||
	    spt_queue_new(fd, DRM_SPT_QUEUE_PRIORITY_NORMAL, &queue)) {
		printf("KTAP version 1\n1..0 # SKIP setup failed\n");
		return 1;
	}
	cs.buf = cmd.map;
	cs.len = 0;
	cs.cap = cmd.size;
	spt_cs_nop(&cs);
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
