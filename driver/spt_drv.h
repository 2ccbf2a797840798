/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Copyright (C) 2026 The SPT authors
 */
#ifndef __SPT_DRV_H__
#define __SPT_DRV_H__

#include <linux/atomic.h>
#include <linux/idr.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <drm/drm_device.h>
#include <drm/drm_file.h>
#include <drm/drm_mm.h>
#include <drm/gpu_scheduler.h>

#include "spt_hw.h"

#define SPT_DRIVER_NAME		"spt"
#define SPT_DRIVER_DESC		"SPT sparsity-scaling training processor"

#define SPT_DBG_PROBE		BIT(0)
#define SPT_DBG_JOB		BIT(1)
#define SPT_DBG_MMU		BIT(2)
#define SPT_DBG_IRQ		BIT(3)
#define SPT_DBG_RESET		BIT(4)
#define SPT_DBG_FILE		BIT(5)

extern u32 spt_dbg_mask;
extern unsigned int spt_job_timeout_ms;
extern unsigned int spt_job_max_stalls;
extern unsigned int spt_ring_entries;
extern unsigned int spt_hw_queues;

#define spt_dbg(sdev, type, fmt, ...)					\
	do {								\
		if (unlikely(spt_dbg_mask & SPT_DBG_##type))		\
			drm_info(&(sdev)->drm, "[%s] " fmt, #type,	\
				 ##__VA_ARGS__);			\
	} while (0)

/* Device VA handed out to BOs: page 0..1 MiB stays unmapped (VA 0 = none). */
#define SPT_VA_START		0x100000ull
#define SPT_VA_END		(1ull << (SPT_VA_BITS - 1))
#define SPT_MAX_BO_SIZE		SZ_4G
#define SPT_MAX_QUEUES_PER_FILE	64
#define SPT_MAX_BO_REFS		256
#define SPT_MAX_IN_SYNCS	64

struct spt_device;
struct spt_job;

struct spt_pt {
	__le64 *cpu;
	dma_addr_t dma;
	struct spt_pt **child;
};

struct spt_vm {
	struct spt_device *sdev;
	struct mutex lock;	/* page tables and the VA allocator */
	struct drm_mm mm;
	struct spt_pt root;
	u32 ctx;
	bool enabled;
};

struct spt_ring_slot {
	struct spt_job *job;
	struct dma_fence *fence;
};

struct spt_hwq {
	struct spt_device *sdev;
	u32 id;
	char name[16];
	struct drm_gpu_scheduler sched;
	bool sched_ready;
	void __iomem *doorbell;
	struct spt_job_desc *ring;
	dma_addr_t ring_dma;
	struct spt_job_cpl *cpl;
	dma_addr_t cpl_dma;
	struct spt_ring_slot *slots;
	u32 size;
	spinlock_t lock;	/* ring indices and slots */
	u32 tail;
	u32 head;
	spinlock_t fence_lock;	/* dma_fence lock of this timeline */
	u64 fence_context;
	u64 fence_seqno;
	u32 progress_head;
	unsigned int stalls;
	int irq;
};

struct spt_counters {
	atomic64_t submitted;
	atomic64_t done;
	atomic64_t failed;
	atomic64_t faults;
	atomic64_t timeouts;
	atomic64_t resets;
	atomic64_t busy_ns;
	atomic64_t cycles;
	atomic64_t dense_macs;
	atomic64_t exec_macs;
};

struct spt_device {
	struct drm_device drm;
	struct pci_dev *pdev;
	void __iomem *regs;
	void __iomem *doorbells;

	u32 hw_version;
	u32 caps;
	u32 formats;
	u32 cmd_version;
	u32 hw_num_queues;
	u32 num_contexts;
	u32 mac_array;
	u32 sram_kib;
	u32 clock_mhz;
	u32 dram_mbps;
	u32 cmd_max;

	u32 nr_hwq;
	struct spt_hwq hwq[SPT_MAX_QUEUES];
	struct drm_gpu_scheduler *scheds[SPT_MAX_QUEUES];
	struct workqueue_struct *reset_wq;
	struct mutex reset_lock;	/* serialises device resets */

	struct spt_ctx_entry *ctx_table;
	dma_addr_t ctx_table_dma;
	size_t ctx_table_size;
	struct ida ctx_ida;
	spinlock_t mmu_lock;		/* ctx table entries + TLB_INV */

	int err_irq;
	bool irqs_on;
	struct list_head genl_link;
	atomic64_t job_id;
	struct spt_counters cnt;
	u32 last_err_status;
	u32 last_err_info;
	u64 last_err_va;
};

struct spt_file {
	struct kref ref;
	struct spt_device *sdev;
	struct drm_file *file;
	struct spt_vm vm;
	struct xarray queues;
	struct spt_counters cnt;
	atomic64_t guilty;
	atomic64_t last_fault_va;
	atomic_t hw_inflight;		/* jobs of this file in hardware rings */
	wait_queue_head_t hw_idle;
};

struct spt_queue {
	struct kref ref;
	struct spt_file *sfile;
	struct drm_sched_entity entity;
	struct mutex lock;	/* arm + push order, seqno, last_fence */
	struct dma_fence *last_fence;
	u64 seqno;
	u32 id;
};

static inline struct spt_device *to_spt_device(struct drm_device *drm)
{
	return container_of(drm, struct spt_device, drm);
}

/* uapi/spt_hw.h memory structures are little-endian but typed __u32/__u64. */
static inline u32 spt_le32(u32 v)
{
	return (__force u32)cpu_to_le32(v);
}

static inline u64 spt_le64(u64 v)
{
	return (__force u64)cpu_to_le64(v);
}

static inline u16 spt_cpu16(u16 v)
{
	return le16_to_cpu((__force __le16)v);
}

static inline u32 spt_cpu32(u32 v)
{
	return le32_to_cpu((__force __le32)v);
}

static inline u64 spt_cpu64(u64 v)
{
	return le64_to_cpu((__force __le64)v);
}

static inline u32 spt_rd(struct spt_device *sdev, u32 reg)
{
	return readl(sdev->regs + reg);
}

static inline void spt_wr(struct spt_device *sdev, u32 reg, u32 val)
{
	writel(val, sdev->regs + reg);
}

static inline u64 spt_rd64(struct spt_device *sdev, u32 reg)
{
	return lo_hi_readq(sdev->regs + reg);
}

static inline void spt_wr64(struct spt_device *sdev, u32 reg, u64 val)
{
	lo_hi_writeq(val, sdev->regs + reg);
}

/* spt_device.c */
int spt_device_init(struct spt_device *sdev);
int spt_device_start(struct spt_device *sdev);
void spt_device_stop(struct spt_device *sdev);
int spt_device_hw_reset(struct spt_device *sdev);
int spt_device_reset_hw_locked(struct spt_device *sdev);
int spt_irq_init(struct spt_device *sdev);
void spt_irq_fini(struct spt_device *sdev);
void spt_irq_disable(struct spt_device *sdev);
void spt_irq_enable(struct spt_device *sdev);

/* spt_mmu.c */
int spt_mmu_init(struct spt_device *sdev);
void spt_mmu_fini(struct spt_device *sdev);
void spt_mmu_hw_init(struct spt_device *sdev);
int spt_vm_init(struct spt_device *sdev, struct spt_vm *vm);
void spt_vm_fini(struct spt_vm *vm);
void spt_vm_disable(struct spt_vm *vm);
int spt_vm_map(struct spt_vm *vm, struct drm_mm_node *node, u64 size,
	       struct sg_table *sgt, bool readonly);
void spt_vm_unmap(struct spt_vm *vm, struct drm_mm_node *node);
void spt_mmu_tlb_inv(struct spt_device *sdev, u32 ctx);

/* spt_gem.c */
struct drm_gem_object *spt_gem_create_object(struct drm_device *dev, size_t size);
int spt_bo_va(struct drm_gem_object *obj, struct spt_file *sfile, u64 *va);
int spt_ioctl_bo_create(struct drm_device *dev, void *data, struct drm_file *file);
int spt_ioctl_bo_info(struct drm_device *dev, void *data, struct drm_file *file);
int spt_ioctl_bo_wait(struct drm_device *dev, void *data, struct drm_file *file);

/* spt_job.c */
int spt_job_init(struct spt_device *sdev);
void spt_job_fini(struct spt_device *sdev);
void spt_hwq_hw_init(struct spt_hwq *hwq);
void spt_hwq_process(struct spt_hwq *hwq);
void spt_job_cancel_all(struct spt_device *sdev, int error);
int spt_device_reset(struct spt_device *sdev, struct drm_sched_job *bad, bool hang);
void spt_queues_destroy(struct spt_file *sfile);
long spt_file_wait_hw_idle(struct spt_file *sfile, long timeout);
int spt_ioctl_queue_create(struct drm_device *dev, void *data, struct drm_file *file);
int spt_ioctl_queue_destroy(struct drm_device *dev, void *data, struct drm_file *file);
int spt_ioctl_submit(struct drm_device *dev, void *data, struct drm_file *file);

/* spt_drv.c */
void spt_file_put(struct spt_file *sfile);

/* spt_sysfs.c */
int spt_sysfs_init(struct spt_device *sdev);
void spt_sysfs_fini(struct spt_device *sdev);

/* spt_debugfs.c */
void spt_debugfs_init(struct spt_device *sdev);

/* spt_genl.c */
enum spt_genl_event {
	SPT_EVENT_JOB_DONE,
	SPT_EVENT_JOB_FAILED,
	SPT_EVENT_MMU_FAULT,
	SPT_EVENT_RESET,
};

int spt_genl_init(void);
void spt_genl_fini(void);
void spt_genl_add_device(struct spt_device *sdev);
void spt_genl_remove_device(struct spt_device *sdev);
void spt_genl_event(struct spt_device *sdev, enum spt_genl_event ev,
		    u32 ctx, u64 arg0, u64 arg1);

#endif /* __SPT_DRV_H__ */
