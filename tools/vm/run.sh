#!/usr/bin/env bash
# Boot the Debian 6.12 kernel in QEMU (q35, qboot, PVH vmlinux, TCG) with
# -device spt, run a command in the guest and exit with its status.
#
# Usage: tools/vm/run.sh [options] [-- CMD...]
#   -i DIR      image dir with vmlinux and initramfs.cpio.gz (build/vm)
#   -q QEMU     qemu-system-x86_64 (default: the project's, see tools/qemu)
#   -t SECS     timeout for the whole guest run (default 600)
#   -p PARAMS   spt.ko module parameters ("job_timeout_ms=200 ...")
#   -d PROPS    extra -device spt properties (",queues=2,..."; always
#               id=spt0,debug=on)
#   -l LOG      full console log (default IMAGE/console.log)
#   -m SOCK     QEMU monitor on a unix socket (for device_del tests)
#   -n          do not load spt.ko
#   -N          no -device spt (harness development with a stock QEMU)
#   -H          put the device behind a PCIe root port (hot-unpluggable)
#   -a ARGS     extra kernel command line arguments
#   CMD         shell command run in the guest (default /tests/run-all)
#
# KTAP and other guest output stream to stdout; dmesg is checked for
# BUG/WARNING/Oops/Call Trace/hung task and taint & ~0x3000 must be 0.
# Exit status: the guest command's status, 124 on timeout, 125 on a kernel
# splat or missing result.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
img=$top/build/vm
qemu=${SPT_QEMU:-}
timeout=600
params=""
devprops=""
log=""
mon=""
noload=0
nodev=0
hotplug=0
extra=""
while getopts "i:q:t:p:d:l:m:nNHa:" o; do
	case $o in
	i) img=$OPTARG ;;
	q) qemu=$OPTARG ;;
	t) timeout=$OPTARG ;;
	p) params=$OPTARG ;;
	d) devprops=$OPTARG ;;
	l) log=$OPTARG ;;
	m) mon=$OPTARG ;;
	n) noload=1 ;;
	N) nodev=1 ;;
	H) hotplug=1 ;;
	a) extra=$OPTARG ;;
	*) sed -n '2,23p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
cmd="${*:-/tests/run-all}"
[ -n "$log" ] || log=$img/console.log

if [ -z "$qemu" ]; then
	qemu=$(bash "$top/tools/qemu/build.sh" --print-path 2>/dev/null)
	[ -n "$qemu" ] && [ "${qemu#/}" = "$qemu" ] && qemu=$top/$qemu
	[ -n "$qemu" ] || qemu=$top/build/qemu/qemu-system-x86_64
fi
[ -x "$qemu" ] || { echo "run.sh: no QEMU at $qemu (make qemu, or -q)" >&2; exit 125; }
for f in vmlinux initramfs.cpio.gz; do
	[ -r "$img/$f" ] || { echo "run.sh: $img/$f missing (make image)" >&2; exit 125; }
done

append="console=ttyS0 quiet loglevel=4 oops=panic panic=-1 panic_on_warn=0"
append+=" hung_task_timeout_secs=30 sptvm.cmd=$(printf '%s' "$cmd" | base64 -w0)"
[ -n "$params" ] && append+=" sptvm.params=$(printf '%s' "$params" | base64 -w0)"
[ "$noload" = 1 ] && append+=" sptvm.noload"
[ -n "$extra" ] && append+=" $extra"

# shellcheck disable=SC2054  # commas are QEMU option syntax
args=(-M q35 -accel tcg -m 1G -smp 2 -nodefaults -no-user-config
      -display none -no-reboot -serial stdio
      -L /usr/share/qemu -L /usr/share/seabios
      -bios /usr/share/qemu/qboot.rom
      -kernel "$img/vmlinux" -initrd "$img/initramfs.cpio.gz" -append "$append"
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -device pvpanic-pci -action panic=exit-failure)
if [ "$hotplug" = 1 ]; then
	# shellcheck disable=SC2054
	args+=(-device pcie-root-port,id=rp0,chassis=1,slot=1)
	devprops=",bus=rp0$devprops"
fi
[ "$nodev" = 1 ] || args+=(-device "spt,id=spt0,debug=on${devprops}")
[ -n "$mon" ] && args+=(-monitor "unix:$mon,server,nowait")

# Console goes to the log; KTAP/guest lines stream to stdout, the dmesg
# dump stays in the log.
timeout --foreground -k 5 "$timeout" "$qemu" "${args[@]}" </dev/null 2>&1 |
	stdbuf -o0 tr -d '\r' | tee "$log" |
	awk '/^SPT-DMESG-BEGIN/ { d = 1 } !d && !/^SPT-/ { print; fflush() } /^SPT-DMESG-END/ { d = 0 }'
qrc=${PIPESTATUS[0]}

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "run.sh: guest timed out after ${timeout}s" >&2
	exit 124
fi
status=125
res=$(sed -n 's/^SPT-RESULT \([0-9]*\).*/\1/p' "$log" | tail -1)
taint=$(sed -n 's/^SPT-TAINT \([0-9]*\).*/\1/p' "$log" | tail -1)
if [ -z "$res" ]; then
	echo "run.sh: no result from the guest (qemu exit $qrc)" >&2
elif [ -z "$taint" ] || [ $((taint & ~0x3000)) -ne 0 ]; then
	echo "run.sh: kernel tainted: ${taint:-?}" >&2
else
	status=$res
fi
if grep -nE 'BUG:|WARNING:|Oops|Call Trace|KASAN:|possible circular locking|hung task|Kernel panic|general protection' "$log" >&2; then
	echo "run.sh: kernel splat in the console log ($log)" >&2
	status=125
fi
exit "$status"
