#!/usr/bin/env bash
# make bench: build and install lifecycle (as test.sh does, in a temp copy),
# start a throwaway cluster on port 7301 as the postgres OS user, run every
# benchmark, stop the cluster.  Results are appended to
# /tmp/lifecycle-bench-results.txt and copied to bench/results-latest.txt;
# bench/RESULTS.md discusses them.
#
#   make bench                      # everything (about 15 minutes on 2 cores)
#   BENCHES="touch lag" make bench  # a subset: advance invite touch touch_parts lag
#                                   # erase bulk_invite scale dba adopt otel workflow
#   BENCH_RESULTS=bench/results-scale.txt make bench  # where the raw output goes
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
	BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
	bash scripts/deps.sh
	work=$(mktemp -d /tmp/lifecycle-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
		--exclude 'tmp_check*' --exclude results ./ "$work/"
	make -C "$work" -s >/dev/null
	make -C "$work" -s install >/dev/null
	chown -R postgres: "$work"
	# The benchmarks' own settings (N=..., ERASE_USERS=..., ...) pass through.
	vars=()
	for v in $(compgen -v | grep -E '^(BENCH_PORT|BENCH_DATA|BENCH_SOCK|BENCH_OUT|N|STEPS|STEP_DAYS|VACUUM_EVERY|DBA_USERS|ERASE_[A-Z_]+|INVITE_[A-Z_]+|BULK_[A-Z_]+|ADVANCE_[A-Z_]+|TOUCH_[A-Z_]+|LAG_[A-Z_]+|ADOPT_[A-Z_]+|WORKFLOW_[A-Z_]+)$'); do
		vars+=("$v=${!v}")
	done
	runuser -u postgres -- env "${vars[@]}" BENCHES="${BENCHES:-}" BENCH_COMMIT="$BENCH_COMMIT" bash "$work/bench/run.sh"
	cp "${BENCH_OUT:-/tmp/lifecycle-bench-results.txt}" "${BENCH_RESULTS:-bench/results-latest.txt}"
	exit 0
fi
. bench/lib.sh
: > "$BENCH_OUT"
report "lifecycle benchmarks, commit ${BENCH_COMMIT:-unknown}, $(date -u +%FT%TZ), $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(postgres --version)"
bash bench/cluster.sh start
trap 'bash bench/cluster.sh stop' EXIT
for b in ${BENCHES:-advance invite touch lag adopt workflow}; do
	bash "bench/$b.sh"
done
