/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * SPT accelerator driver uAPI, version 1.0.
 *
 * Copyright (C) 2026 The SPT authors
 */
#ifndef __SPT_ACCEL_H__
#define __SPT_ACCEL_H__

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

/**
 * DOC: overview
 *
 * The spt driver exposes one ``/dev/accel/accelN`` node per device.  Find it
 * by driver name (``drmGetVersion()`` reports "spt") rather than by path.
 *
 * Every open file descriptor owns a device address space: a hardware MMU
 * context with its own page tables.  Buffer objects (BOs) are GEM shmem
 * objects; each handle a file holds is mapped into that file's address
 * space and has a device virtual address (VA) there.  Command streams
 * (``uapi/spt_hw.h``) address memory only by VA, so a job can reach only
 * the BOs its own file holds; any other address ends the job with -EFAULT.
 *
 * Work is submitted to user queues (QUEUE_CREATE).  A submitted job runs
 * after its input syncobjs and the implicit fences of the BOs it lists have
 * signalled; its completion signals an optional output syncobj (binary, or
 * a timeline point) and is added to the BOs' reservation objects.
 *
 * The DRM core ioctls are used as they are: ``DRM_IOCTL_GEM_CLOSE`` frees a
 * handle (and its VA), ``DRM_IOCTL_PRIME_HANDLE_TO_FD`` /
 * ``DRM_IOCTL_PRIME_FD_TO_HANDLE`` share BOs (an imported BO gets a VA in
 * the importing file's space), and the ``DRM_IOCTL_SYNCOBJ_*`` family
 * (binary and timeline) creates and waits on syncobjs.
 */

/**
 * DOC: conventions
 *
 * - All structures have a fixed layout with explicit padding; every
 *   ``pad`` field and every flag bit not defined here must be zero, or the
 *   ioctl fails with -EINVAL.
 * - Structures grow only at their end.  The DRM core zero-extends a
 *   shorter structure passed by older userspace and truncates the copy-out,
 *   so old binaries keep working; a new field's zero value means "old
 *   behaviour".
 * - Pointers to user memory are passed as __u64.
 * - Timeouts are absolute CLOCK_MONOTONIC times in nanoseconds, as for
 *   ``DRM_IOCTL_SYNCOBJ_WAIT``.
 * - Errors: -EINVAL malformed argument, -ENOENT unknown BO, syncobj or
 *   queue handle, -EFAULT bad user pointer, -ENOMEM out of memory or device
 *   address space, -ENOSPC too many queues, -ETIMEDOUT a wait timed out,
 *   -ENODEV the device was unplugged, -EINTR/-ERESTARTSYS interrupted.
 */

#define DRM_SPT_ABI_VERSION_MAJOR	1
#define DRM_SPT_ABI_VERSION_MINOR	0

#define DRM_SPT_DEV_QUERY		0x00
#define DRM_SPT_BO_CREATE		0x01
#define DRM_SPT_BO_INFO			0x02
#define DRM_SPT_BO_WAIT			0x03
#define DRM_SPT_QUEUE_CREATE		0x04
#define DRM_SPT_QUEUE_DESTROY		0x05
#define DRM_SPT_SUBMIT			0x06

#define DRM_IOCTL_SPT_DEV_QUERY \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_SPT_DEV_QUERY, struct drm_spt_dev_query)
#define DRM_IOCTL_SPT_BO_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_SPT_BO_CREATE, struct drm_spt_bo_create)
#define DRM_IOCTL_SPT_BO_INFO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_SPT_BO_INFO, struct drm_spt_bo_info)
#define DRM_IOCTL_SPT_BO_WAIT \
	DRM_IOW(DRM_COMMAND_BASE + DRM_SPT_BO_WAIT, struct drm_spt_bo_wait)
#define DRM_IOCTL_SPT_QUEUE_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_SPT_QUEUE_CREATE, struct drm_spt_queue_create)
#define DRM_IOCTL_SPT_QUEUE_DESTROY \
	DRM_IOW(DRM_COMMAND_BASE + DRM_SPT_QUEUE_DESTROY, struct drm_spt_queue_destroy)
#define DRM_IOCTL_SPT_SUBMIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_SPT_SUBMIT, struct drm_spt_submit)

/**
 * DOC: DEV_QUERY
 *
 * Ethos-U style extensible query: userspace names a @type, passes a buffer
 * of @size bytes at @pointer, and the kernel fills it.
 *
 * - @pointer == 0: the kernel sets @size to the full size of the answer
 *   and returns 0.
 * - otherwise the kernel copies min(@size, full size) bytes and sets @size
 *   to the number of bytes written.  A smaller (older) structure gets its
 *   prefix; a larger (newer) one keeps its tail untouched, so zero it first.
 *
 * Errors: -EINVAL unknown @type or non-zero @pad; -EFAULT bad @pointer.
 */
enum drm_spt_query_type {
	/** @DRM_SPT_QUERY_DEVICE: &struct drm_spt_query_device */
	DRM_SPT_QUERY_DEVICE = 0,
	/** @DRM_SPT_QUERY_STATUS: &struct drm_spt_query_status of this file */
	DRM_SPT_QUERY_STATUS = 1,
};

/**
 * struct drm_spt_dev_query - argument of DRM_IOCTL_SPT_DEV_QUERY
 */
struct drm_spt_dev_query {
	/** @type: in, &enum drm_spt_query_type */
	__u32 type;
	/** @size: in: bytes at @pointer; out: bytes written or needed */
	__u32 size;
	/** @pointer: in, user address of the answer buffer, or 0 */
	__u64 pointer;
};

/* Capabilities in &drm_spt_query_device.caps (hardware SPT_CAP_* bits). */
#define DRM_SPT_CAP_MMU		(1u << 0)
#define DRM_SPT_CAP_MSIX	(1u << 1)
#define DRM_SPT_CAP_FENCE	(1u << 2)
#define DRM_SPT_CAP_COUNTERS	(1u << 3)
#define DRM_SPT_CAP_STOCHASTIC	(1u << 4)
#define DRM_SPT_CAP_TRAIN_OPS	(1u << 5)
#define DRM_SPT_CAP_DEBUG	(1u << 31)

/**
 * struct drm_spt_query_device - device identity and limits
 */
struct drm_spt_query_device {
	/** @abi_major: DRM_SPT_ABI_VERSION_MAJOR of the running driver */
	__u16 abi_major;
	/** @abi_minor: DRM_SPT_ABI_VERSION_MINOR of the running driver */
	__u16 abi_minor;
	/** @hw_version: hardware interface version, SPT_HW_VERSION layout */
	__u32 hw_version;
	/** @caps: DRM_SPT_CAP_* (hardware SPT_CAP_*) */
	__u32 caps;
	/** @formats: SPT_FMT_* tensor formats the device reads and writes */
	__u32 formats;
	/** @cmd_version: highest command-stream version (SPT_CMD_VERSION) */
	__u32 cmd_version;
	/** @num_hw_queues: hardware queues the driver schedules on */
	__u32 num_hw_queues;
	/** @num_contexts: hardware MMU contexts (= open files at most) */
	__u32 num_contexts;
	/** @max_queues: user queues one file may create */
	__u32 max_queues;
	/** @mac_array: MACs per cycle (modeled) */
	__u32 mac_array;
	/** @sram_kib: on-chip SRAM in KiB */
	__u32 sram_kib;
	/** @clock_mhz: modeled clock in MHz */
	__u32 clock_mhz;
	/** @dram_mbps: modeled DRAM bandwidth in MB/s */
	__u32 dram_mbps;
	/** @va_start: first device VA handed out to BOs */
	__u64 va_start;
	/** @va_end: one past the last device VA handed out to BOs */
	__u64 va_end;
	/** @max_bo_size: largest BO_CREATE size */
	__u64 max_bo_size;
	/** @max_cmd_size: largest command stream of one SUBMIT, in bytes */
	__u32 max_cmd_size;
	/** @max_bo_refs: largest &drm_spt_submit.bo_count */
	__u32 max_bo_refs;
	/** @max_in_syncs: largest &drm_spt_submit.in_sync_count */
	__u32 max_in_syncs;
	/** @job_timeout_ms: time a job may run without progress before reset */
	__u32 job_timeout_ms;
};

/**
 * struct drm_spt_query_status - reset and fault state seen by this file
 */
struct drm_spt_query_status {
	/** @resets: device resets since the driver bound the device */
	__u64 resets;
	/** @guilty_jobs: jobs of this file that hung and were reset */
	__u64 guilty_jobs;
	/** @faulted_jobs: jobs of this file that ended with an MMU fault */
	__u64 faulted_jobs;
	/** @failed_jobs: jobs of this file that failed for any reason */
	__u64 failed_jobs;
	/** @done_jobs: jobs of this file that completed successfully */
	__u64 done_jobs;
	/** @last_fault_va: VA of this file's last MMU fault, 0 if none */
	__u64 last_fault_va;
	/** @ctx: hardware MMU context id of this file */
	__u32 ctx;
	/** @pad: zero */
	__u32 pad;
};

/**
 * DOC: BO_CREATE
 *
 * Creates a zero-filled BO of @size bytes (rounded up to the page size) and
 * maps it into the calling file's address space.  Returns the GEM handle
 * and the device VA.  Free it with ``DRM_IOCTL_GEM_CLOSE``; the VA stays
 * valid until the last handle of the file to this BO is closed.  Closing it
 * unmaps the VA at once (jobs that reach the device later fault on it) and
 * waits only for this file's jobs already in the hardware rings, which the
 * job timeout and reset bound, so the device never touches freed memory.
 *
 * Errors: -EINVAL @size 0 or above &drm_spt_query_device.max_bo_size,
 * or unknown @flags; -ENOMEM no memory or no VA space left.
 */

/* The device may read but not write the BO (PTE without WRITE). */
#define DRM_SPT_BO_DEVICE_READONLY	(1u << 0)
#define DRM_SPT_BO_FLAGS		DRM_SPT_BO_DEVICE_READONLY

/**
 * struct drm_spt_bo_create - argument of DRM_IOCTL_SPT_BO_CREATE
 */
struct drm_spt_bo_create {
	/** @size: in, bytes, rounded up to a multiple of the page size */
	__u64 size;
	/** @flags: in, DRM_SPT_BO_* */
	__u32 flags;
	/** @handle: out, GEM handle */
	__u32 handle;
	/** @va: out, device VA in this file's address space */
	__u64 va;
};

/**
 * DOC: BO_INFO
 *
 * Returns the mmap offset, device VA and size of a BO handle of this file,
 * including imported (PRIME) BOs.  Map the BO with
 * ``mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)``.
 *
 * Errors: -ENOENT unknown @handle; -EINVAL non-zero @flags.
 */
struct drm_spt_bo_info {
	/** @handle: in, GEM handle */
	__u32 handle;
	/** @flags: in, must be zero; out: DRM_SPT_BO_* of the BO */
	__u32 flags;
	/** @mmap_offset: out, offset for mmap() on the device fd */
	__u64 mmap_offset;
	/** @va: out, device VA in this file's address space */
	__u64 va;
	/** @size: out, BO size in bytes */
	__u64 size;
};

/**
 * DOC: BO_WAIT
 *
 * Waits until every job that listed the BO in &drm_spt_submit.bos has
 * finished.  @timeout_ns is an absolute CLOCK_MONOTONIC time; 0 polls.
 *
 * Errors: -ENOENT unknown @handle; -EINVAL non-zero @pad; -ETIMEDOUT jobs
 * still running at @timeout_ns; -ERESTARTSYS interrupted.
 */
struct drm_spt_bo_wait {
	/** @handle: in, GEM handle */
	__u32 handle;
	/** @pad: zero */
	__u32 pad;
	/** @timeout_ns: in, absolute CLOCK_MONOTONIC deadline */
	__s64 timeout_ns;
};

/**
 * DOC: QUEUE_CREATE and QUEUE_DESTROY
 *
 * A user queue is an ordered stream of jobs with a priority; jobs of one
 * queue run in submission order, jobs of different queues (and files) may
 * run concurrently on different hardware queues.  Destroying a queue (or
 * closing the file, which destroys its queues) waits up to one second for
 * its submitted jobs to reach the device; jobs still waiting then are
 * cancelled, their fences signalled with -ESRCH.
 *
 * Errors: -EINVAL unknown @priority, non-zero @flags or @pad;
 * -EPERM DRM_SPT_QUEUE_PRIORITY_HIGH without CAP_SYS_NICE;
 * -ENOSPC &drm_spt_query_device.max_queues reached; -ENOENT (destroy)
 * unknown @queue_id.
 */
enum drm_spt_queue_priority {
	DRM_SPT_QUEUE_PRIORITY_LOW = 0,
	DRM_SPT_QUEUE_PRIORITY_NORMAL = 1,
	DRM_SPT_QUEUE_PRIORITY_HIGH = 2,
};

/**
 * struct drm_spt_queue_create - argument of DRM_IOCTL_SPT_QUEUE_CREATE
 */
struct drm_spt_queue_create {
	/** @priority: in, &enum drm_spt_queue_priority */
	__u32 priority;
	/** @flags: in, must be zero */
	__u32 flags;
	/** @queue_id: out, non-zero id for SUBMIT and QUEUE_DESTROY */
	__u32 queue_id;
	/** @pad: zero */
	__u32 pad;
};

/**
 * struct drm_spt_queue_destroy - argument of DRM_IOCTL_SPT_QUEUE_DESTROY
 */
struct drm_spt_queue_destroy {
	/** @queue_id: in, from QUEUE_CREATE */
	__u32 queue_id;
	/** @pad: zero */
	__u32 pad;
};

/**
 * DOC: SUBMIT
 *
 * Queues one job: the command stream of @cmd_size bytes at @cmd_offset in
 * the BO @cmd_handle (``uapi/spt_hw.h``, run in this file's MMU context).
 *
 * - @bos lists the BOs the job reads or writes (&struct drm_spt_bo_ref).
 *   The job waits for their implicit fences (writers, and readers too for
 *   a written BO) and adds its own fence to them, which is what BO_WAIT
 *   and PRIME importers see.  The command BO is always an implicit read.
 *   Command streams may address any BO of the file, but only listed ones
 *   are synchronised.
 * - @in_syncs lists syncobjs (&struct drm_spt_sync) to wait for first;
 *   point 0 means a binary syncobj, else a timeline point.
 * - @out_sync, if non-zero, is a syncobj signalled when the job ends: the
 *   fence replaces its fence (@out_point 0) or is added at timeline point
 *   @out_point.
 * - The fence's error is 0 on success, -EFAULT when the job hit an MMU
 *   fault, -EIO for another device error (including a corrupt completion
 *   record), -ETIMEDOUT when it hung and the device was reset, -ECANCELED
 *   or -ENODEV when the device went away, -ESRCH when its queue was
 *   destroyed before it ran.  Innocent jobs caught in a reset run again.
 *   ``DRM_IOCTL_SYNCOBJ_WAIT`` does not report the error; export the
 *   syncobj as a sync_file (``SYNC_IOC_FILE_INFO`` status) to read it, and
 *   DRM_SPT_QUERY_STATUS counts the outcomes per file.
 *
 * @seqno returns the job's sequence number in its queue (1, 2, ...).
 *
 * Errors: -EINVAL non-zero @flags or @pad, @cmd_offset not 8-byte aligned,
 * @cmd_size not a multiple of 8 or outside 8..max_cmd_size, the stream not
 * inside the BO, counts above the limits in &struct drm_spt_query_device,
 * a BO listed twice, unknown bo_ref/sync flags, @out_point without
 * @out_sync, an input syncobj without a fence or a timeline point not
 * submitted yet; -ENOENT unknown @queue_id, BO or syncobj handle;
 * -EFAULT bad user pointers; -ECANCELED the file's context was disabled
 * (a BO was closed while jobs of the file stayed stuck on the device).
 */

/* &drm_spt_bo_ref.flags */
#define DRM_SPT_BO_REF_READ	(1u << 0)
#define DRM_SPT_BO_REF_WRITE	(1u << 1)
#define DRM_SPT_BO_REF_FLAGS	(DRM_SPT_BO_REF_READ | DRM_SPT_BO_REF_WRITE)

/**
 * struct drm_spt_bo_ref - one BO a job uses
 */
struct drm_spt_bo_ref {
	/** @handle: GEM handle */
	__u32 handle;
	/** @flags: DRM_SPT_BO_REF_READ and/or DRM_SPT_BO_REF_WRITE, not 0 */
	__u32 flags;
};

/**
 * struct drm_spt_sync - one syncobj a job waits for
 */
struct drm_spt_sync {
	/** @handle: syncobj handle */
	__u32 handle;
	/** @flags: must be zero */
	__u32 flags;
	/** @point: timeline point, 0 for a binary syncobj */
	__u64 point;
};

/**
 * struct drm_spt_submit - argument of DRM_IOCTL_SPT_SUBMIT
 */
struct drm_spt_submit {
	/** @queue_id: in, from QUEUE_CREATE */
	__u32 queue_id;
	/** @cmd_handle: in, BO holding the command stream */
	__u32 cmd_handle;
	/** @cmd_offset: in, byte offset of the stream in the BO, 8-aligned */
	__u64 cmd_offset;
	/** @cmd_size: in, bytes, multiple of 8 */
	__u32 cmd_size;
	/** @bo_count: in, entries at @bos */
	__u32 bo_count;
	/** @bos: in, user pointer to &struct drm_spt_bo_ref[@bo_count] */
	__u64 bos;
	/** @in_syncs: in, user pointer to &struct drm_spt_sync[@in_sync_count] */
	__u64 in_syncs;
	/** @in_sync_count: in, entries at @in_syncs */
	__u32 in_sync_count;
	/** @out_sync: in, syncobj handle to signal, or 0 */
	__u32 out_sync;
	/** @out_point: in, timeline point of @out_sync, 0 for binary */
	__u64 out_point;
	/** @flags: in, must be zero */
	__u32 flags;
	/** @pad: zero */
	__u32 pad;
	/** @seqno: out, sequence number of the job in its queue */
	__u64 seqno;
};

#if defined(__cplusplus)
}
#endif

#endif /* __SPT_ACCEL_H__ */
