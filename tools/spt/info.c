// SPDX-License-Identifier: MIT
/* spt info: the backend in use, versions, capabilities and model constants. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "spt/spt.h"
#include "spt.h"

static void info_usage(FILE *f)
{
	fprintf(f,
"usage: spt info [--backend auto|cpu|device] [--device PATH] [-j|--json]\n"
"\n"
"Show the SPT device when one is present (auto), else the CPU backend:\n"
"versions, capabilities and the constants of the modeled energy figures.\n");
}

static void print_json(const struct spt_ctx_info *i, const char *device_status)
{
	const struct spt_energy_model *e = &i->energy;

	printf("{\"backend\": \"%s\", \"device\": \"%s\", \"driver\": \"%s\", "
	       "\"device_status\": \"%s\", \"libspt_version\": \"%u.%u.%u\", "
	       "\"ct_format_version\": %u, \"abi_version\": \"%u.%u\", \"hw_version\": \"%u.%u\", "
	       "\"device_caps\": %u, \"isa\": \"%s\", "
	       "\"capabilities\": {\"bfp8\": %s, \"fp32\": %s}, "
	       "\"energy_model\": {\"modeled\": true, \"mac_pj\": %g, \"skip_check_pj\": %g, "
	       "\"exp_add_pj\": %g, \"sram_pj_per_byte\": %g, \"dram_pj_per_byte\": %g, "
	       "\"static_mw\": %g, \"clock_mhz\": %g, \"macs_per_cycle\": %g, "
	       "\"utilisation\": %g, \"dram_gbytes_per_s\": %g}}\n",
	       i->backend_name, i->device, i->driver, device_status, i->lib_major, i->lib_minor,
	       i->lib_patch, i->ct_format_version, i->abi_version >> 16, i->abi_version & 0xffff,
	       i->hw_version >> 16, i->hw_version & 0xffff, i->caps, i->isa,
	       i->has_bfp8 ? "true" : "false", i->has_fp32 ? "true" : "false", e->mac_pj,
	       e->skip_check_pj, e->exp_add_pj, e->sram_pj_per_byte, e->dram_pj_per_byte,
	       e->static_mw, e->clock_mhz, e->macs_per_cycle, e->utilisation,
	       e->dram_gbytes_per_s);
}

static void print_text(const struct spt_ctx_info *i, const char *device_status)
{
	const struct spt_energy_model *e = &i->energy;

	printf("backend          %s\n", i->backend_name);
	printf("device           %s\n", i->device);
	if (i->driver[0])
		printf("driver           %s (ABI %u.%u, hardware interface %u.%u, caps 0x%x)\n",
		       i->driver, i->abi_version >> 16, i->abi_version & 0xffff, i->hw_version >> 16,
		       i->hw_version & 0xffff, i->caps);
	printf("device status    %s\n", device_status);
	printf("libspt           %u.%u.%u\n", i->lib_major, i->lib_minor, i->lib_patch);
	printf("tensor format    v%u (BFP8 MXINT8, 2-level bit-mask)\n", i->ct_format_version);
	printf("core SIMD path   %s\n", i->isa);
	printf("capabilities     bfp8 %s, fp32 %s\n", i->has_bfp8 ? "yes" : "no",
	       i->has_fp32 ? "yes" : "no");
	printf("energy model (modeled, not measured):\n");
	printf("  MAC %.3g pJ, skip check %.3g pJ, exponent add %.3g pJ\n", e->mac_pj,
	       e->skip_check_pj, e->exp_add_pj);
	printf("  SRAM %.3g pJ/B, DRAM %.3g pJ/B, static %.3g mW\n", e->sram_pj_per_byte,
	       e->dram_pj_per_byte, e->static_mw);
	printf("  %.0f MHz, %.0f MACs/cycle, utilisation %.2f, DRAM %.1f GB/s\n", e->clock_mhz,
	       e->macs_per_cycle, e->utilisation, e->dram_gbytes_per_s);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "device", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE, .flags = SPT_CTX_QUERY_ONLY };
	struct spt_ctx_info info;
	struct spt_ctx *ctx = NULL;
	const char *status = "present";
	bool json = false, autoselect = true;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!strcmp(optarg, "cpu")) {
				co.backend = SPT_BACKEND_CPU;
				autoselect = false;
			} else if (!strcmp(optarg, "device")) {
				autoselect = false;
			} else if (strcmp(optarg, "auto")) {
				return spt_err("--backend: expected auto, cpu or device");
			}
			break;
		case 'd': co.device_path = optarg; break;
		case 'j': json = true; break;
		case 'h': info_usage(stdout); return 0;
		default: info_usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return spt_err("unexpected argument '%s'", argv[optind]);
	ret = co.backend == SPT_BACKEND_DEVICE ? spt_ctx_open(&co, &ctx) : -SPT_ENODEVICE;
	if (!ret) {
		status = "present; spt train --backend device trains on it";
	} else if (co.backend == SPT_BACKEND_DEVICE) {
		status = ret == -SPT_ENODEVICE ? "no SPT device found" :
			 ret == -SPT_EVERSION ? "device found with an ABI or format version this "
						"libspt does not know" :
			 spt_strerror(ret);
		if (!autoselect)
			return spt_err("device backend: %s", status);
		co.backend = SPT_BACKEND_CPU;
	} else if (co.backend == SPT_BACKEND_CPU) {
		status = "not probed (--backend cpu)";
	}
	if (!ctx) {
		ret = spt_ctx_open(&co, &ctx);
		if (ret)
			return spt_err("cannot open the cpu backend: %s", spt_strerror(ret));
	}
	ret = spt_ctx_info(ctx, &info);
	spt_ctx_close(ctx);
	if (ret)
		return spt_err("cannot query the backend: %s", spt_strerror(ret));
	if (json)
		print_json(&info, status);
	else
		print_text(&info, status);
	return 0;
}
