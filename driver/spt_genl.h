/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Generic netlink family "spt" (docs/spt-genl.yaml).
 *
 * Copyright (C) 2026 The SPT authors
 */
#ifndef __SPT_GENL_H__
#define __SPT_GENL_H__

#define SPT_GENL_NAME		"spt"
#define SPT_GENL_VERSION	1
#define SPT_GENL_MCGRP_EVENTS	"events"

enum spt_genl_cmd {
	SPT_CMD_UNSPEC,
	SPT_CMD_GET,		/* request: [DEV]; reply: counters */
	SPT_CMD_JOB_DONE,	/* event: DEV, CTX, JOB */
	SPT_CMD_JOB_FAILED,	/* event: DEV, CTX, JOB, ERRNO */
	SPT_CMD_MMU_FAULT,	/* event: DEV, CTX, FAULT_VA, FAULT_ACCESS */
	SPT_CMD_RESET,		/* event: DEV, RESETS, ERRNO */
	__SPT_CMD_MAX,
};

#define SPT_CMD_MAX (__SPT_CMD_MAX - 1)

enum spt_genl_attr {
	SPT_A_UNSPEC,
	SPT_A_PAD,
	SPT_A_DEV,		/* u32: accel minor index */
	SPT_A_PCI,		/* string: PCI address */
	SPT_A_JOBS_SUBMITTED,	/* u64 */
	SPT_A_JOBS_DONE,	/* u64 */
	SPT_A_JOBS_FAILED,	/* u64 */
	SPT_A_MMU_FAULTS,	/* u64 */
	SPT_A_TIMEOUTS,		/* u64 */
	SPT_A_RESETS,		/* u64 */
	SPT_A_BUSY_NS,		/* u64 */
	SPT_A_CYCLES,		/* u64 */
	SPT_A_DENSE_MACS,	/* u64 */
	SPT_A_EXEC_MACS,	/* u64 */
	SPT_A_CTX,		/* u32 */
	SPT_A_JOB,		/* u64: job id */
	SPT_A_ERRNO,		/* u32: positive errno */
	SPT_A_FAULT_VA,		/* u64 */
	SPT_A_FAULT_ACCESS,	/* u32: SPT_ACCESS_* */
	__SPT_A_MAX,
};

#define SPT_A_MAX (__SPT_A_MAX - 1)

#endif /* __SPT_GENL_H__ */
