// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/interrupt.h>
#include <linux/iopoll.h>
#include <linux/pci.h>
#include <drm/drm_drv.h>
#include <drm/drm_print.h>

#include "spt_drv.h"

#define SPT_READY_TIMEOUT_US	100000

static int spt_wait_status(struct spt_device *sdev, u32 mask, u32 want)
{
	u32 val;

	return readl_poll_timeout(sdev->regs + SPT_REG_STATUS, val,
				  (val & mask) == want, 10, SPT_READY_TIMEOUT_US);
}

int spt_device_hw_reset(struct spt_device *sdev)
{
	int ret;

	spt_wr(sdev, SPT_REG_CONTROL, SPT_CONTROL_RESET);
	ret = spt_wait_status(sdev, SPT_STATUS_READY, 0);
	if (ret) {
		drm_err(&sdev->drm, "device did not leave READY on reset\n");
		return ret;
	}

	spt_wr(sdev, SPT_REG_CONTROL, SPT_CONTROL_ENABLE);
	ret = spt_wait_status(sdev, SPT_STATUS_READY, SPT_STATUS_READY);
	if (ret)
		drm_err(&sdev->drm, "device not READY after enable\n");
	return ret;
}

int spt_device_init(struct spt_device *sdev)
{
	u32 id, nq;

	id = spt_rd(sdev, SPT_REG_ID);
	if (id != SPT_ID_MAGIC) {
		drm_err(&sdev->drm, "bad ID register %#x\n", id);
		return -ENODEV;
	}

	sdev->hw_version = spt_rd(sdev, SPT_REG_VERSION);
	if ((sdev->hw_version >> 16) != SPT_HW_VERSION_MAJOR) {
		drm_err(&sdev->drm, "unsupported hardware version %u.%u\n",
			sdev->hw_version >> 16, sdev->hw_version & 0xffff);
		return -ENODEV;
	}

	sdev->caps = spt_rd(sdev, SPT_REG_CAPS);
	sdev->formats = spt_rd(sdev, SPT_REG_FORMATS);
	sdev->cmd_version = spt_rd(sdev, SPT_REG_CMD_VERSION);
	sdev->mac_array = spt_rd(sdev, SPT_REG_MAC_ARRAY);
	sdev->sram_kib = spt_rd(sdev, SPT_REG_SRAM_KIB);
	sdev->clock_mhz = spt_rd(sdev, SPT_REG_CLOCK_MHZ);
	sdev->dram_mbps = spt_rd(sdev, SPT_REG_DRAM_MBPS);
	sdev->cmd_max = min(spt_rd(sdev, SPT_REG_CMD_MAX), SPT_CMD_MAX_LEN);
	sdev->num_contexts = min(spt_rd(sdev, SPT_REG_NUM_CONTEXTS), SPT_MAX_CONTEXTS);
	sdev->hw_num_queues = min(spt_rd(sdev, SPT_REG_NUM_QUEUES), SPT_MAX_QUEUES);
	if (!(sdev->caps & SPT_CAP_MMU) || !sdev->num_contexts ||
	    !sdev->hw_num_queues || sdev->cmd_max < 8) {
		drm_err(&sdev->drm, "device lacks MMU, contexts or queues\n");
		return -ENODEV;
	}

	nq = sdev->hw_num_queues;
	if (spt_hw_queues && spt_hw_queues < nq)
		nq = spt_hw_queues;
	sdev->nr_hwq = nq;

	if (!is_power_of_2(spt_ring_entries) ||
	    spt_ring_entries < SPT_RING_MIN_ENTRIES ||
	    spt_ring_entries > min(spt_rd(sdev, SPT_REG_RING_MAX), SPT_RING_MAX_ENTRIES)) {
		drm_err(&sdev->drm, "ring_entries=%u not supported\n", spt_ring_entries);
		return -EINVAL;
	}

	mutex_init(&sdev->reset_lock);
	return spt_device_hw_reset(sdev);
}

/* Program everything a reset clears; the caller has reset the device. */
static void spt_device_hw_setup(struct spt_device *sdev)
{
	u32 q;

	spt_wr(sdev, SPT_REG_ERR_STATUS, ~0u);
	spt_wr(sdev, SPT_REG_INT_ACK, ~0u);
	spt_mmu_hw_init(sdev);
	for (q = 0; q < sdev->nr_hwq; q++)
		spt_hwq_hw_init(&sdev->hwq[q]);
	spt_wr(sdev, SPT_REG_INT_MASK, 0);
}

int spt_device_start(struct spt_device *sdev)
{
	spt_device_hw_setup(sdev);
	return 0;
}

void spt_device_stop(struct spt_device *sdev)
{
	int idx;

	/* After unplug the BARs may be gone; a surprise removal skips this. */
	if (!drm_dev_enter(&sdev->drm, &idx)) {
		if (pci_device_is_present(sdev->pdev))
			spt_wr(sdev, SPT_REG_CONTROL, SPT_CONTROL_RESET);
		return;
	}
	spt_wr(sdev, SPT_REG_CONTROL, SPT_CONTROL_RESET);
	drm_dev_exit(idx);
}

static void spt_err_handle(struct spt_device *sdev)
{
	u32 status = spt_rd(sdev, SPT_REG_ERR_STATUS);

	if (!status)
		return;

	sdev->last_err_status = status;
	sdev->last_err_info = spt_rd(sdev, SPT_REG_ERR_INFO);
	sdev->last_err_va = spt_rd64(sdev, SPT_REG_ERR_VA_LO);
	spt_wr(sdev, SPT_REG_ERR_STATUS, status);
	spt_dbg(sdev, IRQ, "error status %#x info %#x va %#llx\n",
		status, sdev->last_err_info, sdev->last_err_va);
	if (status & (SPT_ERRS_RING | SPT_ERRS_CPL_WRITE))
		dev_warn_ratelimited(sdev->drm.dev, "queue error %#x info %#x\n",
				     status, sdev->last_err_info);
}

static irqreturn_t spt_irq_queue(int irq, void *arg)
{
	struct spt_hwq *hwq = arg;

	spt_wr(hwq->sdev, SPT_REG_INT_ACK, SPT_INT_QUEUE(hwq->id));
	spt_hwq_process(hwq);
	return IRQ_HANDLED;
}

static irqreturn_t spt_irq_error(int irq, void *arg)
{
	struct spt_device *sdev = arg;

	spt_wr(sdev, SPT_REG_INT_ACK, SPT_INT_ERROR);
	spt_err_handle(sdev);
	return IRQ_HANDLED;
}

int spt_irq_init(struct spt_device *sdev)
{
	struct pci_dev *pdev = sdev->pdev;
	u32 nvec = sdev->hw_num_queues + 1;
	int ret, q;

	ret = pci_alloc_irq_vectors(pdev, nvec, nvec, PCI_IRQ_MSIX);
	if (ret < 0) {
		drm_err(&sdev->drm, "cannot allocate %u MSI-X vectors: %d\n", nvec, ret);
		return ret;
	}

	for (q = 0; q < sdev->nr_hwq; q++) {
		struct spt_hwq *hwq = &sdev->hwq[q];

		hwq->irq = pci_irq_vector(pdev, SPT_MSIX_VECTOR_QUEUE(q));
		ret = request_irq(hwq->irq, spt_irq_queue, 0, hwq->name, hwq);
		if (ret)
			goto err_free;
	}

	sdev->err_irq = pci_irq_vector(pdev, SPT_MSIX_VECTOR_ERROR(sdev->hw_num_queues));
	ret = request_irq(sdev->err_irq, spt_irq_error, 0, "spt-error", sdev);
	if (ret)
		goto err_free;

	sdev->irqs_on = true;
	return 0;

err_free:
	while (--q >= 0)
		free_irq(sdev->hwq[q].irq, &sdev->hwq[q]);
	pci_free_irq_vectors(pdev);
	return ret;
}

void spt_irq_fini(struct spt_device *sdev)
{
	u32 q;

	if (!sdev->irqs_on)
		return;

	free_irq(sdev->err_irq, sdev);
	for (q = 0; q < sdev->nr_hwq; q++)
		free_irq(sdev->hwq[q].irq, &sdev->hwq[q]);
	pci_free_irq_vectors(sdev->pdev);
	sdev->irqs_on = false;
}

void spt_irq_disable(struct spt_device *sdev)
{
	u32 q;

	for (q = 0; q < sdev->nr_hwq; q++)
		disable_irq(sdev->hwq[q].irq);
	disable_irq(sdev->err_irq);
}

void spt_irq_enable(struct spt_device *sdev)
{
	u32 q;

	enable_irq(sdev->err_irq);
	for (q = 0; q < sdev->nr_hwq; q++)
		enable_irq(sdev->hwq[q].irq);
}

/* Called with interrupts disabled and the schedulers stopped. */
int spt_device_reset_hw_locked(struct spt_device *sdev)
{
	int ret;

	ret = spt_device_hw_reset(sdev);
	if (ret)
		return ret;

	spt_device_hw_setup(sdev);
	return 0;
}
