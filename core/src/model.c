/* SPDX-License-Identifier: MIT */
/*
 * Counters and the analytic cycle and energy model.  Everything computed
 * here is modeled, not measured.  Defaults and their sources are in
 * research/algorithms.md (Horowitz, ISSCC 2014, 45 nm).
 *
 * Units: energies in pJ, clock in MHz, bandwidth in GB/s (1e9 bytes/s),
 * static power in mW.  Useful identities:
 *   modeled time [s]        = cycles / (clock_mhz * 1e6)
 *   static energy [pJ]      = static_mw * 1e-3 [W] * time [s] * 1e12
 *   TOPS/W = 1e12 ops/s / W = 1e12 ops / J   = ops / pJ
 */
#include <errno.h>
#include <math.h>

#include "spt/core.h"

#define SPT_MODEL_MAC_PJ		0.3	/* 8b mult 0.2 + 32b add 0.1 */
#define SPT_MODEL_SKIP_CHECK_PJ		0.03	/* one mask-bit test, ~8b add */
#define SPT_MODEL_EXP_ADD_PJ		1.0	/* exponent add 0.1 + FP32 add 0.9 */
#define SPT_MODEL_SRAM_PJ_PER_BYTE	1.25	/* 10 pJ per 64-bit read, 8 KB */
/*
 * 20 pJ/byte (2.5 pJ/bit, LPDDR4-class) as chosen for the project.  Note that
 * Horowitz's 45 nm figure, 1.3-2.6 nJ per 64-bit access, would be 160-325
 * pJ/byte; set dram_pj_per_byte to that to model the older DRAM.
 */
#define SPT_MODEL_DRAM_PJ_PER_BYTE	20.0
#define SPT_MODEL_STATIC_MW		50.0
#define SPT_MODEL_CLOCK_MHZ		1000.0
#define SPT_MODEL_MACS_PER_CYCLE	1024.0
#define SPT_MODEL_UTILISATION		0.8
#define SPT_MODEL_DRAM_GBYTES_PER_S	25.6
/* Fixed cost of one operation: command decode, pipeline fill and drain. */
#define SPT_MODEL_OP_OVERHEAD_CYCLES	64.0

static double spt_tops_per_w(uint64_t macs, double energy_pj)
{
	/* 2 ops per MAC; ops / pJ == TOPS/W. */
	return energy_pj > 0 ? 2.0 * (double)macs / energy_pj : 0.0;
}

void spt_counters_add(struct spt_counters *a, const struct spt_counters *b)
{
	if (!a || !b)
		return;
	a->dense_macs += b->dense_macs;
	a->exec_macs += b->exec_macs;
	a->bytes_read += b->bytes_read;
	a->bytes_written += b->bytes_written;
	a->dense_fp16_bytes += b->dense_fp16_bytes;
	a->blocks += b->blocks;
	a->elements_out += b->elements_out;
	a->cycles += b->cycles;
	a->energy_pj += b->energy_pj;
	a->eff_tops_per_w = spt_tops_per_w(a->dense_macs, a->energy_pj);
	a->exec_tops_per_w = spt_tops_per_w(a->exec_macs, a->energy_pj);
}

void spt_energy_model_init(struct spt_energy_model *m)
{
	if (!m)
		return;
	m->mac_pj = SPT_MODEL_MAC_PJ;
	m->skip_check_pj = SPT_MODEL_SKIP_CHECK_PJ;
	m->exp_add_pj = SPT_MODEL_EXP_ADD_PJ;
	m->sram_pj_per_byte = SPT_MODEL_SRAM_PJ_PER_BYTE;
	m->dram_pj_per_byte = SPT_MODEL_DRAM_PJ_PER_BYTE;
	m->static_mw = SPT_MODEL_STATIC_MW;
	m->clock_mhz = SPT_MODEL_CLOCK_MHZ;
	m->macs_per_cycle = SPT_MODEL_MACS_PER_CYCLE;
	m->utilisation = SPT_MODEL_UTILISATION;
	m->dram_gbytes_per_s = SPT_MODEL_DRAM_GBYTES_PER_S;
}

static int spt_positive(double v)
{
	return isfinite(v) && v > 0;
}

static int spt_non_negative(double v)
{
	return isfinite(v) && v >= 0;
}

int spt_energy_model_check(const struct spt_energy_model *m)
{
	if (!m)
		return -EINVAL;
	if (!spt_positive(m->mac_pj) || !spt_non_negative(m->skip_check_pj) ||
	    !spt_positive(m->exp_add_pj) || !spt_positive(m->sram_pj_per_byte) ||
	    !spt_positive(m->dram_pj_per_byte) || !spt_non_negative(m->static_mw) ||
	    !spt_positive(m->clock_mhz) || !spt_positive(m->macs_per_cycle) ||
	    !spt_positive(m->utilisation) || m->utilisation > 1.0 ||
	    !spt_positive(m->dram_gbytes_per_s))
		return -EINVAL;
	return 0;
}

/*
 * cycles = ceil(max(compute, memory)) + SPT_MODEL_OP_OVERHEAD_CYCLES with
 *   compute = exec_macs / (macs_per_cycle * utilisation)
 *   memory  = dram bytes / (GB/s * 1e9) [s] * clock_mhz * 1e6 [cycles/s]
 * where every byte read and written crosses DRAM once and SRAM once.
 * energy [pJ] = exec_macs * mac + dense_macs * skip_check + blocks * exp_add
 *             + bytes * (sram + dram) + static power * modeled time.
 */
int spt_model_apply(const struct spt_energy_model *m, struct spt_counters *c)
{
	double bytes, compute, memory, cycles, seconds, energy;
	int ret;

	if (!c)
		return -EINVAL;
	ret = spt_energy_model_check(m);
	if (ret)
		return ret;
	bytes = (double)c->bytes_read + (double)c->bytes_written;
	compute = (double)c->exec_macs / (m->macs_per_cycle * m->utilisation);
	memory = bytes * m->clock_mhz / (m->dram_gbytes_per_s * 1e3);
	cycles = ceil(fmax(compute, memory)) + SPT_MODEL_OP_OVERHEAD_CYCLES;
	seconds = cycles / (m->clock_mhz * 1e6);
	energy = (double)c->exec_macs * m->mac_pj +
		 (double)c->dense_macs * m->skip_check_pj +
		 (double)c->blocks * m->exp_add_pj +
		 bytes * (m->sram_pj_per_byte + m->dram_pj_per_byte) +
		 m->static_mw * 1e-3 * seconds * 1e12;
	c->cycles = (uint64_t)cycles;
	c->energy_pj = energy;
	c->eff_tops_per_w = spt_tops_per_w(c->dense_macs, energy);
	c->exec_tops_per_w = spt_tops_per_w(c->exec_macs, energy);
	return 0;
}
