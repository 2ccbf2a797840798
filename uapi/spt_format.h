/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * SPT compressed tensor format, version 1.
 *
 * The byte-exact layout shared by the chip (device model), the driver's
 * users and the runtime.  docs/formats.md explains it with examples.
 * All multi-byte fields are little-endian.  Nothing in this header depends
 * on the host's alignment: readers copy fields out with memcpy.
 *
 *   offset  size  field
 *   0       64    struct spt_ct_header
 *   64      4*(tiles+1)  tile offset table: u32 byte offsets of each tile,
 *                 relative to the start of the payload; entry [tiles] is the
 *                 payload size.  Offsets are non-decreasing.
 *   ...     payload: tiles back to back, tile t covering blocks
 *                 [64t, 64t+64) of the row-major block grid
 *                 (rows x blocks_per_row, blocks_per_row = ceil(cols/32)).
 *
 * A tile: u64 L1 mask (bit i set: block 64t+i holds a nonzero), then for
 * every set bit in increasing order a block record:
 *   u32 L2 mask (bit j set: element j of the block is nonzero),
 *   u8  exponent, E8M0 biased by 127 (0..254; 255 is NaN and invalid),
 *   popcount(L2) x s8 values k (nonzero, in [-127, 127]), element order.
 * Element j of a block in row r, block column c is column 32c+j; in a ragged
 * last block, bits for columns >= cols must be clear.  An element's value
 * is k * 2^(E-6).  A tile with an empty L1 mask is the 8-byte mask alone.
 */
#ifndef SPT_FORMAT_H
#define SPT_FORMAT_H

#if defined(__KERNEL__) || defined(__linux__)
#include <linux/types.h>
#else
/* Elsewhere (the core is portable C11): the same names from <stdint.h>. */
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define SPT_CT_MAGIC		0x54435053u	/* "SPCT" little-endian */
#define SPT_CT_VERSION		1u
#define SPT_BLOCK_ELEMS		32u
#define SPT_TILE_BLOCKS		64u
#define SPT_CT_HEADER_SIZE	64u
#define SPT_E8M0_BIAS		127
#define SPT_E8M0_NAN		0xffu
#define SPT_EXP_MIN		(-127)
#define SPT_EXP_MAX		127
#define SPT_KMAX		127
/* Largest tensor the format describes: payload offsets are u32. */
#define SPT_CT_MAX_DIM		(1u << 24)

struct spt_ct_header {
	__u32 magic;		/* SPT_CT_MAGIC */
	__u16 version;		/* SPT_CT_VERSION */
	__u16 flags;		/* must be zero */
	__u32 rows;		/* >= 1 */
	__u32 cols;		/* >= 1, elements along the blocked axis */
	__u32 blocks_per_row;	/* ceil(cols / 32) */
	__u32 tiles;		/* ceil(rows * blocks_per_row / 64) */
	__u64 nz_blocks;	/* number of set L1 bits */
	__u64 nonzeros;		/* number of set L2 bits */
	__u32 payload_bytes;	/* == tile offset table [tiles] */
	__u32 reserved0;	/* must be zero */
	__u64 total_bytes;	/* 64 + 4 * (tiles + 1) + payload_bytes */
	__u32 reserved1[2];	/* must be zero */
};

#endif /* SPT_FORMAT_H */
