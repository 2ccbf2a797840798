/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the in-guest KTAP tests of the spt driver: KTAP output, device
 * discovery, thin ioctl wrappers and command-stream builders.  Header-only;
 * every test program is one .c file linked statically.
 */
#ifndef SPT_TEST_H
#define SPT_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "spt/core.h"
#include "spt_hw.h"

#include <linux/sync_file.h>
#include "drm.h"
#include "drm/spt_accel.h"

/* ---- KTAP ---------------------------------------------------------------- */

static int ktap_n, ktap_failed;

static inline void ktap_plan(int n)
{
	printf("KTAP version 1\n1..%d\n", n);
	fflush(stdout);
}

static inline void ktap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void ktap_result(bool ok, const char *name)
{
	printf("%sok %d %s\n", ok ? "" : "not ", ++ktap_n, name);
	fflush(stdout);
	if (!ok)
		ktap_failed++;
}

static inline int ktap_finish(void)
{
	return ktap_failed ? 1 : 0;
}

/* Evaluate a condition inside a test function; report and fail on false. */
#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			ktap_diag("%s:%d: %s", __func__, __LINE__, #cond); \
			ktap_diag(__VA_ARGS__);				\
			return false;					\
		}							\
	} while (0)

/* Expect an ioctl wrapper result (0 or -errno). */
#define CHECK_ERR(expr, want)						\
	do {								\
		int __r = (expr);					\
		if (__r != (want)) {					\
			ktap_diag("%s:%d: %s: expected %d (%s), got %d (%s)", \
				  __func__, __LINE__, #expr, (want),	\
				  strerror(-(want)), __r, strerror(-__r)); \
			return false;					\
		}							\
	} while (0)

struct ktap_case {
	const char *name;
	bool (*fn)(void);
};

static inline int ktap_run(const struct ktap_case *cases, int n)
{
	int i;

	ktap_plan(n);
	for (i = 0; i < n; i++)
		ktap_result(cases[i].fn(), cases[i].name);
	return ktap_finish();
}

/* ---- device ---------------------------------------------------------------- */

static inline int spt_ioc(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r == -1 && (errno == EINTR || errno == EAGAIN));
	return r ? -errno : 0;
}

/* The first /dev/accel/accelN whose driver is "spt"; -errno on failure. */
static inline int spt_open(void)
{
	char path[64], name[16];
	int i, fd;

	for (i = 0; i < 64; i++) {
		struct drm_version v;

		snprintf(path, sizeof(path), "/dev/accel/accel%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		memset(&v, 0, sizeof(v));
		memset(name, 0, sizeof(name));
		v.name = name;
		v.name_len = sizeof(name) - 1;
		if (!spt_ioc(fd, DRM_IOCTL_VERSION, &v) && !strcmp(name, "spt"))
			return fd;
		close(fd);
	}
	return -ENODEV;
}

static inline int spt_accel_index(void)
{
	char path[64];
	int i;

	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/sys/class/accel/accel%d/device/spt", i);
		if (!access(path, F_OK))
			return i;
	}
	return -1;
}

static inline int spt_query_device(int fd, struct drm_spt_query_device *d)
{
	struct drm_spt_dev_query q = {
		.type = DRM_SPT_QUERY_DEVICE,
		.size = sizeof(*d),
		.pointer = (uintptr_t)d,
	};

	memset(d, 0, sizeof(*d));
	return spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q);
}

static inline int spt_query_status(int fd, struct drm_spt_query_status *s)
{
	struct drm_spt_dev_query q = {
		.type = DRM_SPT_QUERY_STATUS,
		.size = sizeof(*s),
		.pointer = (uintptr_t)s,
	};

	memset(s, 0, sizeof(*s));
	return spt_ioc(fd, DRM_IOCTL_SPT_DEV_QUERY, &q);
}

struct spt_bo {
	uint32_t handle;
	uint64_t va;
	uint64_t size;
	void *map;
};

static inline int spt_bo_new(int fd, uint64_t size, uint32_t flags, struct spt_bo *bo)
{
	struct drm_spt_bo_create c = { .size = size, .flags = flags };
	struct drm_spt_bo_info info;
	int r;

	memset(bo, 0, sizeof(*bo));
	r = spt_ioc(fd, DRM_IOCTL_SPT_BO_CREATE, &c);
	if (r)
		return r;
	memset(&info, 0, sizeof(info));
	info.handle = c.handle;
	r = spt_ioc(fd, DRM_IOCTL_SPT_BO_INFO, &info);
	if (r)
		return r;
	bo->handle = c.handle;
	bo->va = c.va;
	bo->size = info.size;
	bo->map = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       info.mmap_offset);
	if (bo->map == MAP_FAILED) {
		bo->map = NULL;
		return -errno;
	}
	return 0;
}

static inline int spt_gem_close(int fd, uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	return spt_ioc(fd, DRM_IOCTL_GEM_CLOSE, &c);
}

static inline void spt_bo_free(int fd, struct spt_bo *bo)
{
	if (bo->map)
		munmap(bo->map, bo->size);
	if (bo->handle)
		spt_gem_close(fd, bo->handle);
	memset(bo, 0, sizeof(*bo));
}

static inline int spt_queue_new(int fd, uint32_t prio, uint32_t *id)
{
	struct drm_spt_queue_create c = { .priority = prio };
	int r = spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_CREATE, &c);

	*id = c.queue_id;
	return r;
}

static inline int spt_queue_del(int fd, uint32_t id)
{
	struct drm_spt_queue_destroy d = { .queue_id = id };

	return spt_ioc(fd, DRM_IOCTL_SPT_QUEUE_DESTROY, &d);
}

static inline int spt_syncobj_new(int fd, bool signaled, uint32_t *handle)
{
	struct drm_syncobj_create c = {
		.flags = signaled ? DRM_SYNCOBJ_CREATE_SIGNALED : 0,
	};
	int r = spt_ioc(fd, DRM_IOCTL_SYNCOBJ_CREATE, &c);

	*handle = c.handle;
	return r;
}

static inline void spt_syncobj_del(int fd, uint32_t handle)
{
	struct drm_syncobj_destroy d = { .handle = handle };

	spt_ioc(fd, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
}

static inline int64_t spt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait for a timeline point (0: binary) for up to @ms milliseconds. */
static inline int spt_syncobj_wait(int fd, uint32_t handle, uint64_t point, int ms)
{
	struct drm_syncobj_timeline_wait w = {
		.handles = (uintptr_t)&handle,
		.points = (uintptr_t)&point,
		.timeout_nsec = spt_now_ns() + (int64_t)ms * 1000000,
		.count_handles = 1,
		.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
	};

	return spt_ioc(fd, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
}

/* sync_file status of a binary syncobj's fence: 1 ok, 0 busy, <0 the error. */
static inline int spt_syncobj_status(int fd, uint32_t handle)
{
	struct drm_syncobj_handle h = {
		.handle = handle,
		.flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
		.fd = -1,
	};
	struct sync_file_info info;
	int r;

	r = spt_ioc(fd, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);
	if (r)
		return r;
	memset(&info, 0, sizeof(info));
	r = spt_ioc(h.fd, SYNC_IOC_FILE_INFO, &info);
	close(h.fd);
	return r ? r : info.status;
}

struct spt_submit_args {
	uint32_t queue;
	uint32_t cmd_handle;
	uint64_t cmd_offset;
	uint32_t cmd_size;
	const struct drm_spt_bo_ref *bos;
	uint32_t bo_count;
	const struct drm_spt_sync *in;
	uint32_t in_count;
	uint32_t out_sync;
	uint64_t out_point;
	uint64_t seqno;
};

static inline int spt_submit(int fd, struct spt_submit_args *a)
{
	struct drm_spt_submit s = {
		.queue_id = a->queue,
		.cmd_handle = a->cmd_handle,
		.cmd_offset = a->cmd_offset,
		.cmd_size = a->cmd_size,
		.bo_count = a->bo_count,
		.bos = (uintptr_t)a->bos,
		.in_syncs = (uintptr_t)a->in,
		.in_sync_count = a->in_count,
		.out_sync = a->out_sync,
		.out_point = a->out_point,
	};
	int r = spt_ioc(fd, DRM_IOCTL_SPT_SUBMIT, &s);

	a->seqno = s.seqno;
	return r;
}

/* ---- command streams --------------------------------------------------------- */

struct spt_cs {
	uint8_t *buf;
	uint32_t len;
	uint32_t cap;
};

static inline void *spt_cs_add(struct spt_cs *cs, uint8_t op, uint16_t size)
{
	struct spt_cmd_hdr *h = (struct spt_cmd_hdr *)(cs->buf + cs->len);

	if (cs->len + size > cs->cap)
		abort();
	memset(h, 0, size);
	h->opcode = op;
	h->version = 1;	/* version-1 structs (valid on a version-2 device too) */
	h->size = size;
	cs->len += size;
	return h;
}

static inline void spt_cs_nop(struct spt_cs *cs)
{
	spt_cs_add(cs, SPT_OP_NOP, sizeof(struct spt_cmd_nop));
}

static inline void spt_cs_fence(struct spt_cs *cs, uint64_t va, uint64_t value)
{
	struct spt_cmd_fence *c = spt_cs_add(cs, SPT_OP_FENCE, sizeof(*c));

	c->va = va;
	c->value = value;
}

static inline void spt_cs_timestamp(struct spt_cs *cs, uint64_t va)
{
	struct spt_cmd_timestamp *c = spt_cs_add(cs, SPT_OP_TIMESTAMP, sizeof(*c));

	c->va = va;
}

/* Fills @n floats with a deterministic pseudo-random sequence in (-1, 1). */
static inline void spt_fill(float *x, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = ((int32_t)(seed >> 8) - (1 << 23)) / (float)(1 << 23);
	}
}

/*
 * One job that writes a fence to a fresh BO, or to @va_override (an
 * unmapped VA makes it fault); waits up to 20 s.  0 or a negative errno.
 */
static inline int spt_run_fence_job(int fd, uint64_t va_override)
{
	struct spt_bo cmd, data;
	struct spt_submit_args a = { 0 };
	struct spt_cs cs;
	uint32_t q, s;
	int r;

	if (spt_bo_new(fd, 4096, 0, &cmd) || spt_bo_new(fd, 4096, 0, &data) ||
	    spt_queue_new(fd, 1, &q) || spt_syncobj_new(fd, false, &s))
		return -1;
	cs.buf = cmd.map;
	cs.len = 0;
	cs.cap = cmd.size;
	spt_cs_fence(&cs, va_override ? va_override : data.va, 1);
	a.queue = q;
	a.cmd_handle = cmd.handle;
	a.cmd_size = cs.len;
	a.out_sync = s;
	r = spt_submit(fd, &a);
	if (!r)
		r = spt_syncobj_wait(fd, s, 0, 20000);
	spt_syncobj_del(fd, s);
	spt_queue_del(fd, q);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	return r;
}

#endif /* SPT_TEST_H */
