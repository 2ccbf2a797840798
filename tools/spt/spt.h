/* SPDX-License-Identifier: MIT */
/* The spt command: one function per subcommand, listed in main.c. */
#ifndef SPT_TOOL_H
#define SPT_TOOL_H

#include <stdbool.h>
#include <stdio.h>

int cmd_codec(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_top(int argc, char **argv);

/*
 * Training-step benchmark (train.c): milliseconds per step of @model at
 * @batch for the FP32 OpenBLAS dense baseline and for BFP8 at @target
 * interim sparsity (controller in steady state), on the CPU backend.
 * 0 on success, 1 (message printed) on error.
 */
int spt_train_bench(const char *model, unsigned int batch, float target, unsigned int steps,
		    double *fp32_ms, double *bfp8_ms, double *bfp8_sparsity);

/*
 * spt bench device (bench_device.c): null-job and GEMM-job round trips and
 * a training step on the SPT device.  Returns the exit status: 0, 1
 * (message printed) or SPT_EXIT_NO_DEVICE when there is no SPT device here.
 */
#define SPT_EXIT_NO_DEVICE 3
int spt_bench_device(bool json, bool quick);

/* Print "spt: <fmt>" to stderr; returns 1 (the exit status for errors). */
int spt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole file; *len receives its size.  NULL (message printed) on error. */
void *spt_read_file(const char *path, size_t *len);
/* Write a whole file atomically (temp file + rename).  0 or 1 (message printed). */
int spt_write_file(const char *path, const void *buf, size_t len);
/* Parse "R,C" into two positive u32s. 0 on success. */
int spt_parse_shape(const char *s, unsigned int *rows, unsigned int *cols);
/* Parse an unsigned 64-bit integer; 0 on success. */
int spt_parse_u64(const char *s, unsigned long long *v);

#endif
