/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * SPT hardware interface, version 1.0.
 *
 * The contract between the chip (QEMU device model, qemu-device/), the
 * kernel driver (driver/) and the runtime (runtime/): PCI identity, BAR
 * layout, registers, submission and completion rings, the command stream
 * and the MMU page-table format.  docs/hw.md explains it in prose; this
 * header is the source of truth.
 *
 * Rules:
 *  - every multi-byte field in memory and in registers is little-endian;
 *  - every structure has a fixed size (checked below) and explicit padding;
 *    reserved/pad fields must be zero: the device rejects non-zero ones;
 *  - floating-point values in memory are IEEE-754 binary32 ("f32 bits" in a
 *    __u32) or binary64 ("f64 bits" in a __u64), so the kernel never needs
 *    floating point;
 *  - device virtual addresses (VA) are 48 bits; VA 0 means "none" in every
 *    command field that is optional, so VA page 0 is never used for data.
 *
 * Changes are additive: new registers, capability bits, opcodes or command
 * versions; SPT_HW_VERSION_MINOR grows.  A change to an existing layout bumps
 * SPT_HW_VERSION_MAJOR and the driver refuses a major it does not know.
 */
#ifndef SPT_HW_H
#define SPT_HW_H

#if defined(__KERNEL__) || defined(__linux__)
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define SPT_HW_VERSION_MAJOR	1u
#define SPT_HW_VERSION_MINOR	0u
#define SPT_HW_VERSION		((SPT_HW_VERSION_MAJOR << 16) | SPT_HW_VERSION_MINOR)

/* ---- PCI identity -------------------------------------------------------- */

#define SPT_PCI_VENDOR_ID	0x1234u	/* QEMU's test vendor */
#define SPT_PCI_DEVICE_ID	0x5350u	/* "SP"; unused by any QEMU device */
#define SPT_PCI_REVISION	0x01u
#define SPT_PCI_CLASS		0x1200u	/* processing accelerator */
#define SPT_PCI_SUBSYS_VENDOR	0x1af4u
#define SPT_PCI_SUBSYS_ID	0x1100u

#define SPT_BAR_REGS		0	/* 64-bit, non-prefetchable, SPT_REGS_SIZE */
#define SPT_BAR_DOORBELL	2	/* 64-bit, one 4 KiB page per queue */
#define SPT_BAR_MSIX		4	/* MSI-X table and PBA, exclusive BAR */

#define SPT_REGS_SIZE		0x4000u
#define SPT_DOORBELL_STRIDE	0x1000u	/* doorbell of queue q at q * stride */

/* MSI-X: vector q signals queue q completions, vector num_queues errors. */
#define SPT_MSIX_VECTOR_QUEUE(q)	(q)
#define SPT_MSIX_VECTOR_ERROR(nq)	(nq)

/* ---- device limits (fixed by this version) ------------------------------ */

#define SPT_MAX_QUEUES		16u
#define SPT_MAX_CONTEXTS	256u
#define SPT_RING_MIN_ENTRIES	2u
#define SPT_RING_MAX_ENTRIES	4096u	/* power of two in between */
#define SPT_CMD_MAX_LEN		(1u << 20)	/* bytes in one command stream */
#define SPT_XFER_MAX		(256u << 20)	/* bytes in one operand or result */
#define SPT_VA_BITS		48u
#define SPT_PAGE_SHIFT		12u
#define SPT_PAGE_SIZE		(1u << SPT_PAGE_SHIFT)

/* ---- BAR0 registers ------------------------------------------------------
 *
 * 32-bit registers allow 4-byte access; 64-bit registers (suffix _LO at the
 * offset, high half at offset + 4) allow one 8-byte access or two 4-byte
 * accesses (low half first when writing).  Unknown offsets read as zero and
 * ignore writes.
 */

/* identity and capabilities (read-only) */
#define SPT_REG_ID		0x0000u	/* SPT_ID_MAGIC */
#define SPT_REG_VERSION		0x0004u	/* SPT_HW_VERSION */
#define SPT_REG_CAPS		0x0008u	/* SPT_CAP_* */
#define SPT_REG_NUM_QUEUES	0x000cu	/* 1..SPT_MAX_QUEUES */
#define SPT_REG_NUM_CONTEXTS	0x0010u	/* 1..SPT_MAX_CONTEXTS */
#define SPT_REG_MAC_ARRAY	0x0014u	/* MACs per cycle */
#define SPT_REG_SRAM_KIB	0x0018u	/* on-chip SRAM */
#define SPT_REG_FORMATS		0x001cu	/* SPT_FMT_* */
#define SPT_REG_CMD_VERSION	0x0020u	/* highest command version: SPT_CMD_VERSION */
#define SPT_REG_CLOCK_MHZ	0x0024u	/* modeled clock */
#define SPT_REG_DRAM_MBPS	0x0028u	/* modeled DRAM bandwidth, MB/s */
#define SPT_REG_VA_BITS		0x002cu	/* SPT_VA_BITS */
#define SPT_REG_RING_MAX	0x0030u	/* SPT_RING_MAX_ENTRIES */
#define SPT_REG_CMD_MAX		0x0034u	/* SPT_CMD_MAX_LEN */
#define SPT_REG_XFER_MAX	0x0038u	/* SPT_XFER_MAX */

#define SPT_ID_MAGIC		0x31545053u	/* "SPT1" little-endian */

#define SPT_CAP_MMU		(1u << 0)	/* per-context page tables */
#define SPT_CAP_MSIX		(1u << 1)
#define SPT_CAP_FENCE		(1u << 2)	/* job fence writes */
#define SPT_CAP_COUNTERS	(1u << 3)	/* per-job and global counters */
#define SPT_CAP_STOCHASTIC	(1u << 4)	/* stochastic rounding and pruning */
#define SPT_CAP_TRAIN_OPS	(1u << 5)	/* SOFTMAX_XENT and SGD opcodes */
#define SPT_CAP_DEBUG		(1u << 31)	/* debug/fault-injection registers */

#define SPT_FMT_CT_V1		(1u << 0)	/* spt_format.h version 1 */
#define SPT_FMT_FP32		(1u << 1)

/* control and status */
#define SPT_REG_CONTROL		0x0040u
#define   SPT_CONTROL_ENABLE	(1u << 0)	/* process doorbells */
#define   SPT_CONTROL_RESET	(1u << 1)	/* write 1: soft reset, self-clearing */
#define SPT_REG_STATUS		0x0044u	/* read-only */
#define   SPT_STATUS_READY	(1u << 0)	/* out of reset, enabled */
#define   SPT_STATUS_BUSY	(1u << 1)	/* a job is executing */
#define   SPT_STATUS_HUNG	(1u << 2)	/* stopped (fault injection) until reset */
#define   SPT_STATUS_ERROR	(1u << 3)	/* ERR_STATUS is non-zero */

/* interrupts: bit q = queue q has new completions, SPT_INT_ERROR = error */
#define SPT_REG_INT_STATUS	0x0048u	/* read-only, pending causes */
#define SPT_REG_INT_MASK	0x004cu	/* 1 = masked (INTx only; MSI-X uses its own masks) */
#define SPT_REG_INT_ACK		0x0050u	/* write 1 to clear INT_STATUS bits */
#define   SPT_INT_QUEUE(q)	(1u << (q))
#define   SPT_INT_ERROR		(1u << 31)

/* errors: sticky, write 1 to clear; the last one is described below */
#define SPT_REG_ERR_STATUS	0x0058u
#define   SPT_ERRS_MMU_FAULT	(1u << 0)	/* a job faulted (see ERR_*) */
#define   SPT_ERRS_DMA		(1u << 1)	/* a DMA transaction failed */
#define   SPT_ERRS_RING		(1u << 2)	/* bad ring configuration or overflow */
#define   SPT_ERRS_DESC		(1u << 3)	/* malformed job descriptor */
#define   SPT_ERRS_CMD		(1u << 4)	/* malformed command stream */
#define   SPT_ERRS_CPL_WRITE	(1u << 5)	/* completion/fence write failed: queue stopped */
#define SPT_REG_ERR_INFO	0x005cu	/* SPT_ERR_INFO_* of the last error */
#define   SPT_ERR_INFO_QUEUE(v)	((v) & 0xffu)
#define   SPT_ERR_INFO_CTX(v)	(((v) >> 8) & 0xffffu)
#define   SPT_ERR_INFO_ACCESS(v)	(((v) >> 24) & 0x3u)	/* SPT_ACCESS_* */
#define SPT_REG_ERR_VA_LO	0x0060u	/* 64-bit: faulting VA of the last MMU fault */
#define SPT_REG_ERR_CODE	0x0068u	/* SPT_ERR_* of the last failed job */

/* MMU */
#define SPT_REG_MMU_CTX_TABLE_LO 0x0080u	/* 64-bit guest-physical, 4 KiB aligned; 0: none */
#define SPT_REG_MMU_TLB_INV	0x0088u	/* write context id, or SPT_TLB_INV_ALL */
#define   SPT_TLB_INV_ALL	0xffffffffu

/* global counters, 64-bit, read-only, cleared by reset */
#define SPT_REG_CNT_BASE	0x0100u
#define SPT_REG_CNT_JOBS_DONE	0x0100u
#define SPT_REG_CNT_JOBS_FAILED	0x0108u
#define SPT_REG_CNT_DENSE_MACS	0x0110u
#define SPT_REG_CNT_EXEC_MACS	0x0118u
#define SPT_REG_CNT_BYTES_READ	0x0120u
#define SPT_REG_CNT_BYTES_WRITTEN 0x0128u
#define SPT_REG_CNT_CYCLES	0x0130u	/* modeled */
#define SPT_REG_CNT_ENERGY_FJ	0x0138u	/* modeled, femtojoules */
#define SPT_REG_CNT_MMU_FAULTS	0x0140u
#define SPT_REG_CNT_TIMESTAMP	0x0148u	/* device time, ns (QEMU virtual clock) */

/*
 * Debug and fault-injection registers: present only when the device
 * advertises SPT_CAP_DEBUG (property debug=on); otherwise they read as zero
 * and ignore writes.  A value N > 0 arms the fault for the N-th job started
 * since the last reset (counting from 1); 0 disarms.  Reset reloads them
 * from the device's fi-* properties (0 unless set).
 */
#define SPT_REG_DBG_HANG_AFTER	0x0200u	/* device hangs instead of finishing job N */
#define SPT_REG_DBG_DMA_ERR_AFTER 0x0204u	/* job N fails with SPT_ERR_DMA */
#define SPT_REG_DBG_CORRUPT_AFTER 0x0208u	/* job N's completion record is garbage */
#define SPT_REG_DBG_JOBS_STARTED 0x020cu	/* read-only: jobs started since reset */

/* per-queue registers at SPT_REG_QUEUE(q) + offset */
#define SPT_REG_QUEUE(q)	(0x1000u + (q) * 0x40u)
#define SPT_QREG_RING_BASE_LO	0x00u	/* 64-bit guest-physical, 64-byte aligned */
#define SPT_QREG_CPL_BASE_LO	0x08u	/* 64-bit guest-physical, 64-byte aligned */
#define SPT_QREG_RING_SIZE	0x10u	/* entries, power of two */
#define SPT_QREG_CONTROL	0x14u
#define   SPT_QCTRL_ENABLE	(1u << 0)
#define SPT_QREG_STATUS		0x18u	/* read-only */
#define   SPT_QSTAT_ENABLED	(1u << 0)
#define   SPT_QSTAT_BUSY	(1u << 1)	/* head != tail */
#define   SPT_QSTAT_STOPPED	(1u << 2)	/* ring error: disable, fix, enable */
#define SPT_QREG_HEAD		0x1cu	/* read-only: jobs completed (free-running) */
#define SPT_QREG_TAIL		0x20u	/* read-only: last accepted doorbell value */

/* ---- rings ---------------------------------------------------------------
 *
 * Each queue has a submission ring of RING_SIZE job descriptors at
 * RING_BASE and a completion ring of RING_SIZE completion records at
 * CPL_BASE, both in guest-physical memory (the driver's DMA addresses).
 * Indices are free-running 32-bit counters; slot = index & (size - 1).
 * The driver fills descriptors, then writes the new tail to the queue's
 * doorbell (BAR2 + q * SPT_DOORBELL_STRIDE, 32-bit).  A tail with
 * tail - head > size is a ring overflow: ignored, SPT_ERRS_RING.
 * Jobs of one queue run in order.  For job at index i the device writes,
 * in this order: completion record slot i, the fence (if
 * SPT_JOB_FENCE: fence_value as a 64-bit store at fence_va, through the
 * job's context MMU), HEAD = i + 1, then INT_STATUS bit q and MSI-X vector q
 * (unless SPT_JOB_NO_IRQ).  Failed jobs also raise SPT_INT_ERROR and the
 * error vector.  Queue configuration registers are writable only while the
 * queue is disabled; enabling resets HEAD and TAIL to 0.
 */

#define SPT_JOB_FENCE		(1u << 0)	/* write fence_value to fence_va */
#define SPT_JOB_NO_IRQ		(1u << 1)	/* no completion interrupt */
#define SPT_JOB_FLAGS_MASK	0x3u

struct spt_job_desc {
	__u32 ctx;		/* MMU context, < NUM_CONTEXTS */
	__u32 flags;		/* SPT_JOB_* */
	__u64 cmd_va;		/* command stream, 8-byte aligned */
	__u32 cmd_len;		/* bytes, multiple of 8, 8..SPT_CMD_MAX_LEN */
	__u32 pad0;
	__u64 fence_va;		/* 8-byte aligned, if SPT_JOB_FENCE */
	__u64 fence_value;
	__u64 job_id;		/* opaque, copied to the completion record */
	__u64 reserved[2];
};

enum spt_job_status {
	SPT_JOB_OK = 0,
	SPT_JOB_ERROR = 1,	/* error_code says why */
	SPT_JOB_CANCELED = 2,	/* never written: reset drops in-flight jobs */
};

/* error codes (completion error_code, REG_ERR_CODE) */
enum spt_err {
	SPT_ERR_NONE = 0,
	SPT_ERR_MMU_FAULT = 1,		/* unmapped VA or permission: fault_* */
	SPT_ERR_DMA = 2,		/* bus error on a translated address */
	SPT_ERR_BAD_CONTEXT = 3,	/* ctx out of range or context not valid */
	SPT_ERR_BAD_DESC = 4,		/* descriptor flags/pads/lengths */
	SPT_ERR_BAD_OPCODE = 5,		/* unknown opcode or version */
	SPT_ERR_BAD_CMD = 6,		/* bad size, pad or field in a command */
	SPT_ERR_BAD_TENSOR = 7,		/* malformed compressed tensor */
	SPT_ERR_SHAPE = 8,		/* operand shapes do not match */
	SPT_ERR_NO_SPACE = 9,		/* output capacity too small */
	SPT_ERR_TOO_BIG = 10,		/* beyond SPT_XFER_MAX */
	SPT_ERR_NUMERIC = 11,		/* NaN/Inf input */
	SPT_ERR_INTERNAL = 12,
};

#define SPT_ACCESS_READ		1u
#define SPT_ACCESS_WRITE	2u

struct spt_job_cpl {
	__u64 job_id;		/* from the descriptor */
	__u32 status;		/* enum spt_job_status */
	__u32 error_code;	/* enum spt_err */
	__u32 error_offset;	/* byte offset of the failing command in the stream */
	__u16 fault_ctx;	/* MMU fault: context */
	__u16 fault_access;	/* MMU fault: SPT_ACCESS_* */
	__u64 fault_va;		/* MMU fault: device VA */
	__u32 cmds_done;	/* commands completed successfully */
	__u32 out_sparsity_ppm;	/* zeros per million in compressed outputs */
	/* per-job counters; cycles and energy are modeled */
	__u64 dense_macs;
	__u64 exec_macs;
	__u64 bytes_read;	/* compressed/FP32 bytes the commands read */
	__u64 bytes_written;
	__u64 cycles;
	__u64 energy_fj;	/* femtojoules */
	__u64 out_elements;	/* elements of compressed outputs */
	__u64 out_zeros;	/* of which zero (pruned, natural, underflow) */
	__u64 t_start_ns;	/* device timestamps */
	__u64 t_end_ns;
	__u64 reserved;
};

/* ---- MMU -----------------------------------------------------------------
 *
 * MMU_CTX_TABLE points to NUM_CONTEXTS entries of struct spt_ctx_entry in
 * guest-physical memory.  A valid context's root is a 4 KiB level-4 table.
 * Four levels of 512 eight-byte entries translate a 48-bit VA (bits 63..48
 * must be zero) like x86-64: index at level l (4..1) is
 * VA[12 + 9*l - 1 : 12 + 9*(l-1)].  Level 4..2 entries point to the next
 * table (VALID set, address in bits 51..12); level 1 entries map a 4 KiB
 * page and need READ and/or WRITE for the access.  The device may cache
 * translations and context entries until the driver writes MMU_TLB_INV.
 */
#define SPT_PT_LEVELS		4u
#define SPT_PT_ENTRIES		512u
#define SPT_PTE_VALID		(1ull << 0)
#define SPT_PTE_READ		(1ull << 1)
#define SPT_PTE_WRITE		(1ull << 2)
#define SPT_PTE_ADDR_MASK	0x000ffffffffff000ull
#define SPT_CTX_VALID		(1ull << 0)

struct spt_ctx_entry {
	__u64 root;		/* level-4 table address | SPT_CTX_VALID */
	__u64 reserved;		/* must be zero */
};

/* ---- command stream -------------------------------------------------------
 *
 * A job's command stream is a sequence of commands, each starting with
 * struct spt_cmd_hdr and exactly `size` bytes long (sizeof the struct of its
 * opcode and version).  Commands run in order; the first failing command
 * ends the job (error_offset tells which).  All addresses are device VAs of
 * the job's context.  Optional VAs are 0 when absent.  Pads must be zero.
 *
 * Version 2 (SPT_REG_CMD_VERSION >= 2) keeps every version-1 struct and
 * accepts hdr.version 1 or 2 for every opcode.  A version-2 command may set
 * SPT_CMD_F_LEN_HDR in hdr.flags (version 1: flags must be zero); ENCODE and
 * GEMM have longer version-2 structs (struct spt_cmd_encode_v2,
 * struct spt_cmd_gemm_v2: a second, transposed output); the opcodes IM2COL,
 * COL2IM, COLSUM, CHECK_FINITE and RELU_MASK exist only as version 2.  With
 * these a whole training step, whose compressed intermediates have sizes
 * only the device knows, is one command stream.  A version other than 1 and 2, or a
 * version-2-only opcode with version 1, is SPT_ERR_BAD_OPCODE; a size that
 * is not the struct of the opcode and version, SPT_ERR_BAD_CMD.
 */
#define SPT_CMD_VERSION		2u

/*
 * hdr.flags, version 2: every compressed *input* length field of the command
 * (decode and transpose src_len, gemm a_len, b_len, mask_len, colsum
 * src_len) is the capacity of its buffer, not the tensor's size.  The device
 * reads the tensor's 64-byte header first and uses its total_bytes, which
 * must be >= SPT_CT_HEADER_SIZE and <= the capacity (else SPT_ERR_BAD_TENSOR);
 * the tensor is then validated as if its length had been given exactly.
 * Only total_bytes are read, so the rest of the capacity need not be mapped.
 * Allowed on DECODE, TRANSPOSE, GEMM and COLSUM only; any other flag bit, or
 * this one on another opcode, is SPT_ERR_BAD_CMD.
 */
#define SPT_CMD_F_LEN_HDR	(1u << 0)

enum spt_opcode {
	SPT_OP_NOP = 0x01,
	SPT_OP_FENCE = 0x02,		/* 64-bit store of value at va */
	SPT_OP_TIMESTAMP = 0x03,	/* 64-bit device time (ns) at va */
	SPT_OP_ENCODE = 0x10,		/* FP32 -> compressed */
	SPT_OP_DECODE = 0x11,		/* compressed -> FP32 */
	SPT_OP_TRANSPOSE = 0x12,	/* compressed -> compressed transpose */
	SPT_OP_GEMM = 0x20,		/* one training pass + fused epilogue */
	SPT_OP_SOFTMAX_XENT = 0x30,
	SPT_OP_SGD = 0x31,
	SPT_OP_IM2COL = 0x40,		/* v2: FP32 NHWC -> FP32 patch rows */
	SPT_OP_COL2IM = 0x41,		/* v2: FP32 patch rows -> FP32 NHWC (sum) */
	SPT_OP_COLSUM = 0x42,		/* v2: compressed -> FP32 column sums */
	SPT_OP_CHECK_FINITE = 0x43,	/* v2: SPT_ERR_NUMERIC on NaN/Inf */
	SPT_OP_RELU_MASK = 0x44,	/* v2: FP32 dx := 0 where y is +-0 */
};

struct spt_cmd_hdr {
	__u8 opcode;		/* enum spt_opcode */
	__u8 version;		/* 1, or 2 on a version-2 device */
	__u16 size;		/* bytes including this header */
	__u32 flags;		/* must be zero in version 1 */
};

/* rounding and pruning of a compressed output (mirrors spt_encode_opts) */
struct spt_hw_encode {
	__u32 round;		/* 0 nearest-even, 1 stochastic */
	__u32 prune_mode;	/* 0 off, 1 deterministic, 2 stochastic */
	__u32 tau;		/* f32 bits, >= 0, finite */
	__u32 pad;
	__u64 round_seed;
	__u64 prune_seed;
};

/* statistics of a compressed output, written at stats_va (mirrors spt_tensor_stats) */
struct spt_hw_stats {
	__u64 elements;
	__u64 natural_zeros;
	__u64 pruned;
	__u64 underflow;
	__u64 nonzeros;
	__u64 nz_blocks;
	__u64 sum_abs;		/* f64 bits: sum |x| over all inputs */
	__u64 sum_abs_kept;	/* f64 bits: after pruning */
	__u64 bytes;		/* encoded size */
	__u64 reserved;
};

struct spt_cmd_nop {
	struct spt_cmd_hdr hdr;
};

struct spt_cmd_fence {
	struct spt_cmd_hdr hdr;
	__u64 va;		/* 8-byte aligned */
	__u64 value;
};

struct spt_cmd_timestamp {
	struct spt_cmd_hdr hdr;
	__u64 va;		/* 8-byte aligned */
};

/* FP32 rows x cols at src_va -> compressed at dst_va (<= dst_cap bytes) */
struct spt_cmd_encode {
	struct spt_cmd_hdr hdr;
	__u64 src_va;
	__u32 rows;
	__u32 cols;
	__u64 dst_va;
	__u64 dst_cap;
	__u64 len_va;		/* optional: u64 encoded length */
	__u64 stats_va;		/* optional: struct spt_hw_stats */
	struct spt_hw_encode enc;
};

/*
 * Version 2: ENCODE that also writes the re-blocked transpose of its result
 * (the compressed cols x rows tensor blocked along the old rows, exactly
 * what TRANSPOSE of dst with raw options (spt_hw_encode all zero) gives) at
 * t_va, from the same pass: the weight copy in both blockings, the network
 * input and its transpose for the weight-update pass.  t_va == 0: no
 * transposed copy, t_cap and t_len_va must be 0.  t_va != 0 needs
 * t_cap != 0 (else SPT_ERR_BAD_CMD); t_cap beyond SPT_XFER_MAX is
 * SPT_ERR_TOO_BIG; a transpose larger than t_cap, SPT_ERR_NO_SPACE.  The
 * device counts the transposed copy's bytes as written; nothing is read
 * back for it.
 */
struct spt_cmd_encode_v2 {
	struct spt_cmd_encode v1;	/* v1.hdr.version == 2, size == sizeof(v2) */
	__u64 t_va;		/* optional: compressed cols x rows transpose */
	__u64 t_cap;
	__u64 t_len_va;		/* optional: u64 length of the transpose */
};

/* compressed at src_va (src_len bytes) -> FP32 rows x cols at dst_va */
struct spt_cmd_decode {
	struct spt_cmd_hdr hdr;
	__u64 src_va;
	__u64 src_len;
	__u64 dst_va;
	__u64 dst_elems;	/* must equal rows * cols of the source */
};

/* compressed rows x cols -> compressed cols x rows (re-blocked) */
struct spt_cmd_transpose {
	struct spt_cmd_hdr hdr;
	__u64 src_va;
	__u64 src_len;
	__u64 dst_va;
	__u64 dst_cap;
	__u64 len_va;		/* optional */
	__u64 stats_va;		/* optional */
	struct spt_hw_encode enc;
};

/*
 * C[M x N] = A[M x K] * B[N x K]^T (spt_gemm), M from A's header, N from
 * B's.  Epilogue per output: scale (0 means 1), bias (N floats), act (mask:
 * compressed M x N for RELU_GRAD), prune + encode.  At least one of y_va
 * and ct_va.
 */
struct spt_cmd_gemm {
	struct spt_cmd_hdr hdr;
	__u32 pass;		/* enum spt_pass: 0 fwd, 1 bwd, 2 weight gradient */
	__u32 act;		/* enum spt_act: 0 none, 1 relu, 2 relu-grad */
	__u64 a_va;
	__u64 a_len;
	__u64 b_va;
	__u64 b_len;
	__u64 bias_va;		/* optional */
	__u64 mask_va;		/* act == RELU_GRAD */
	__u64 mask_len;
	__u32 scale;		/* f32 bits */
	__u32 pad;
	__u64 y_va;		/* optional: FP32 M x N */
	__u64 ct_va;		/* optional: compressed result */
	__u64 ct_cap;
	__u64 len_va;		/* optional: u64 compressed length */
	__u64 stats_va;		/* optional: struct spt_hw_stats */
	struct spt_hw_encode enc;
};

/*
 * Per-command counters of a version-2 GEMM: the first fields of core's
 * struct spt_counters for this command, as spt_gemm() returns them
 * (bytes_read: compressed A and B; bytes_written: the outputs).  Written
 * after the command's outputs; the job's completion counters add up the
 * same values (the record itself is not counted).
 */
struct spt_hw_counters {
	__u64 dense_macs;
	__u64 exec_macs;
	__u64 bytes_read;
	__u64 bytes_written;
	__u64 dense_fp16_bytes;
	__u64 blocks;
	__u64 elements_out;
	__u64 reserved;		/* written as zero */
};

/*
 * version 2: struct spt_cmd_gemm followed by an optional counters address
 * and an optional second compressed output: the re-blocked transpose of the
 * compressed result (N x M, blocked along M; exactly what TRANSPOSE of
 * ct_va with raw options gives), written by the same epilogue, as
 * ENCODE v2's t_va (same rules; t_va also needs ct_va, else
 * SPT_ERR_BAD_CMD).  The counters record stays spt_gemm()'s (A and B read,
 * y and ct written); the job's completion counters add the transposed
 * copy's bytes as written.
 */
struct spt_cmd_gemm_v2 {
	struct spt_cmd_gemm v1;	/* v1.hdr.version == 2, size == sizeof(v2) */
	__u64 cnt_va;		/* optional: struct spt_hw_counters, 8-byte aligned
				 * (else SPT_ERR_BAD_CMD) */
	__u64 t_va;		/* optional: compressed N x M transpose of ct */
	__u64 t_cap;
	__u64 t_len_va;		/* optional: u64 length of the transpose */
};

/*
 * Version 2.  Convolution lowering, both ways, on FP32 NHWC tensors
 * (batch n, height h, width w, channels c; k x k window, stride, zero
 * padding pad).  Output size oh = (h + 2*pad - k) / stride + 1, likewise
 * ow.  The patch matrix has n*oh*ow rows of k*k*c columns, ordered
 * (ky, kx, channel).  IM2COL writes it at col_va; COL2IM sets the image at
 * img_va to zero and adds every patch element back to its pixel, patches in
 * row order, so the result does not depend on anything but the inputs.
 * n, h, w, c >= 1, 1 <= k <= 16, 1 <= stride <= 16, pad < k, oh >= 1,
 * ow >= 1 (h + 2*pad >= k, w + 2*pad >= k), else SPT_ERR_BAD_CMD; both
 * VAs nonzero and 4-byte aligned (SPT_ERR_BAD_CMD); image or patch matrix
 * beyond SPT_XFER_MAX bytes, SPT_ERR_TOO_BIG.  The same struct serves both
 * opcodes (core: spt_im2col, spt_col2im).
 */
struct spt_cmd_im2col {
	struct spt_cmd_hdr hdr;
	__u64 img_va;		/* FP32 n x h x w x c */
	__u64 col_va;		/* FP32 (n*oh*ow) x (k*k*c) */
	__u32 n, h, w, c;
	__u32 k, stride, pad, pad2;	/* pad2 must be zero */
};

/*
 * Version 2.  dst[j] = sum over rows r, in row order starting from +0.0f,
 * of the decoded value (r, j) of the compressed tensor at src_va (FP32
 * adds; an element not stored adds nothing).  dst_elems must equal its
 * cols (else SPT_ERR_SHAPE); dst_va nonzero and 4-byte aligned.  Used for
 * the bias gradient (core: spt_ct_colsum).
 */
struct spt_cmd_colsum {
	struct spt_cmd_hdr hdr;
	__u64 src_va;
	__u64 src_len;		/* exact length, or capacity with SPT_CMD_F_LEN_HDR */
	__u64 dst_va;		/* FP32 cols */
	__u64 dst_elems;
};

/*
 * Version 2.  Fails the job with SPT_ERR_NUMERIC if any of n FP32 values is
 * NaN or Inf (core: spt_check_finite).  Reads only; n * 4 <= SPT_XFER_MAX.
 */
struct spt_cmd_check_finite {
	struct spt_cmd_hdr hdr;
	__u64 va;		/* nonzero, 4-byte aligned */
	__u64 n;		/* >= 1 */
};

/*
 * Version 2.  The ReLU mask of a backward pass on FP32 bits, in place: for
 * each j < n, dx[j] becomes +0.0f (bits 0x00000000) if y[j] is +0.0f or
 * -0.0f (bits with all but the sign bit zero), and keeps its bits
 * otherwise (NaN payloads included):
 *	dx[j] &= (y[j] << 1) ? 0xffffffff : 0
 * on the u32 bits.  y is the ReLU's output, so y[j] == +-0 exactly where the
 * ReLU passed no gradient.  Both VAs nonzero and 4-byte aligned, n >= 1
 * (else SPT_ERR_BAD_CMD); n * 4 <= SPT_XFER_MAX (else SPT_ERR_TOO_BIG).
 * All of y and dx are read before dx is written, so dx_va == y_va turns
 * -0.0f into +0.0f and leaves all else, and overlapping arrays give the
 * result of the arrays as they were.  core: spt_relu_mask.
 */
struct spt_cmd_relu_mask {
	struct spt_cmd_hdr hdr;
	__u64 dx_va;		/* FP32 n, read and written */
	__u64 y_va;		/* FP32 n, read */
	__u64 n;		/* >= 1 */
};

/* mean loss (f32) at loss_va, u32 correct count at correct_va, dlogits FP32 */
struct spt_cmd_softmax_xent {
	struct spt_cmd_hdr hdr;
	__u64 logits_va;	/* FP32 rows x classes */
	__u64 labels_va;	/* u8 rows */
	__u32 rows;
	__u32 classes;
	__u64 loss_va;		/* f32 */
	__u64 correct_va;	/* optional: u32 */
	__u64 dlogits_va;	/* optional: FP32 rows x classes */
};

/* per element: g' = g + wd*w; v = momentum*v + g'; w -= lr*v */
struct spt_cmd_sgd {
	struct spt_cmd_hdr hdr;
	__u64 w_va;		/* FP32 n, read and written */
	__u64 v_va;		/* FP32 n, read and written */
	__u64 g_va;		/* FP32 n */
	__u64 n;
	__u32 lr;		/* f32 bits */
	__u32 momentum;		/* f32 bits */
	__u32 weight_decay;	/* f32 bits */
	__u32 pad;
};

/* ---- layout checks ------------------------------------------------------- */

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L || defined(__KERNEL__)
#define SPT_HW_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " size")
SPT_HW_ASSERT_SIZE(struct spt_job_desc, 64);
SPT_HW_ASSERT_SIZE(struct spt_job_cpl, 128);
SPT_HW_ASSERT_SIZE(struct spt_ctx_entry, 16);
SPT_HW_ASSERT_SIZE(struct spt_cmd_hdr, 8);
SPT_HW_ASSERT_SIZE(struct spt_hw_encode, 32);
SPT_HW_ASSERT_SIZE(struct spt_hw_stats, 80);
SPT_HW_ASSERT_SIZE(struct spt_cmd_nop, 8);
SPT_HW_ASSERT_SIZE(struct spt_cmd_fence, 24);
SPT_HW_ASSERT_SIZE(struct spt_cmd_timestamp, 16);
SPT_HW_ASSERT_SIZE(struct spt_cmd_encode, 88);
SPT_HW_ASSERT_SIZE(struct spt_cmd_encode_v2, 112);
SPT_HW_ASSERT_SIZE(struct spt_cmd_decode, 40);
SPT_HW_ASSERT_SIZE(struct spt_cmd_transpose, 88);
SPT_HW_ASSERT_SIZE(struct spt_cmd_gemm, 152);
SPT_HW_ASSERT_SIZE(struct spt_cmd_softmax_xent, 56);
SPT_HW_ASSERT_SIZE(struct spt_cmd_sgd, 56);
SPT_HW_ASSERT_SIZE(struct spt_hw_counters, 64);
SPT_HW_ASSERT_SIZE(struct spt_cmd_gemm_v2, 184);
SPT_HW_ASSERT_SIZE(struct spt_cmd_im2col, 56);
SPT_HW_ASSERT_SIZE(struct spt_cmd_colsum, 40);
SPT_HW_ASSERT_SIZE(struct spt_cmd_check_finite, 24);
SPT_HW_ASSERT_SIZE(struct spt_cmd_relu_mask, 32);
#undef SPT_HW_ASSERT_SIZE
#endif

#endif /* SPT_HW_H */
