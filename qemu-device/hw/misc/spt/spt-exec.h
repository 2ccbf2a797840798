/*
 * SPT command-stream interpreter: runs one job descriptor's command stream
 * through the MMU and the golden model (core/).
 *
 * QEMU-independent: guest memory is reached through SptExecOps callbacks,
 * so the interpreter is fuzzed and tested outside QEMU.  Callbacks may be
 * called from any thread; the caller decides the locking (see spt.c).
 * The host must be little-endian (as all SPT structures are).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_MISC_SPT_EXEC_H
#define HW_MISC_SPT_EXEC_H

#include "spt-mmu.h"
#include "spt_hw.h"

typedef struct SptExecOps {
    /* guest-physical access: 0 on success, -1 on a bus error */
    int (*read)(void *opaque, uint64_t pa, void *buf, size_t len);
    int (*write)(void *opaque, uint64_t pa, const void *buf, size_t len);
    /* device time in ns */
    uint64_t (*now_ns)(void *opaque);
    /* true when the job must be abandoned (reset); may be NULL */
    bool (*cancelled)(void *opaque);
} SptExecOps;

/* The modeled chip (see struct spt_energy_model in core/). */
typedef struct SptModelParams {
    double mac_pj;
    double skip_check_pj;
    double exp_add_pj;
    double sram_pj_per_byte;
    double dram_pj_per_byte;
    double static_mw;
    double clock_mhz;
    double macs_per_cycle;
    double dram_gbytes_per_s;
} SptModelParams;

/*
 * Opaque, so that users need not include core/'s headers (QEMU's
 * <linux/types.h> and spt_format.h's own __u64 typedef do not mix).
 */
typedef struct SptExec SptExec;

/* @model may be NULL (core/ defaults); NULL if the parameters are invalid. */
SptExec *spt_exec_new(const SptExecOps *ops, void *opaque,
                      const SptModelParams *model);
void spt_exec_free(SptExec *e);
/* Where the context table is; takes effect at the next job. */
void spt_exec_set_contexts(SptExec *e, uint64_t ctx_table, uint32_t num_contexts);

/*
 * Run the job @d (fields little-endian as in guest memory) and fill @cpl
 * (host order; little-endian host).  Returns false if the job was
 * cancelled before it finished (then @cpl must not be written).
 */
bool spt_exec_job(SptExec *e, const struct spt_job_desc *d,
                  struct spt_job_cpl *cpl);

/* Write the job's fence through its context; an SPT_ERR_* code. */
int spt_exec_fence(SptExec *e, const struct spt_job_desc *d);

/* The MMU fault of the last failed access (VA, SPT_ACCESS_*). */
void spt_exec_last_fault(SptExec *e, uint64_t *va, unsigned *access);

/*
 * Why the last job failed, for the guest-error log: a static string (NULL
 * when the interpreter gave no reason), and the opcode of the command it
 * stopped at in *opcode.
 */
const char *spt_exec_last_error(SptExec *e, uint8_t *opcode);

/* Access device virtual memory of the current context; SPT_ERR_* codes. */
int spt_exec_va_read(SptExec *e, uint64_t va, void *buf, size_t len);
int spt_exec_va_write(SptExec *e, uint64_t va, const void *buf, size_t len);

#endif
