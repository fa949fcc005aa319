#!/usr/bin/env bash
# make bench-compare: no regression against the previous release, measured.
#
# Builds 0.2.0 from the repository's history (git archive of its commit)
# and this tree, each into its own private copy of the PostgreSQL 15
# installation (as scripts/test.sh makes one: PostgreSQL finds its lib and
# share directories relative to its binaries), starts one throwaway
# cluster of each (bench/cluster.sh's settings, ports 7311 and 7312, as
# the postgres OS user), and runs the user benchmarks against both in the
# same run, interleaved (0.2.0, this tree, 0.2.0, this tree, ... per
# benchmark) so that load from elsewhere on the machine falls on both:
#
#   advance      bench/advance.sh: N due users advanced by the scheduler
#                worker (batch_size 10k), rows/s
#   touch        bench/touch.sh: lifecycle_touch() inside touch_granularity,
#                8 pgbench clients, tps
#   invite       bench/invite.sh: transactional lifecycle_invite(), 8
#                clients, tps
#   bulk_invite  bench/bulk_invite.sh: lifecycle_invite() over
#                generate_series in statements of 1,000, users/s
#   adopt        bench/adopt.sh: lifecycle_adopt() of N accounts, users/s
#   erase        bench/erase.sh: the erasure tick, without and with an
#                erase hook, users/s
#   workflow     bench/workflow.sh, this tree only: N due instances of a
#                custom workflow advanced by the scheduler worker against
#                one set-based statement doing the same writes on a copy
#                of the tables, rows/s (goal: at least 0.7), ROUNDS times
#
# Each line prints the ratio this tree / 0.2.0 (the goal: at least 0.9),
# the median over the rounds' ratios, and the same ratio of the plain-SQL
# baseline each script runs beside the extension on the same cluster: the
# baseline does the same work on both sides, so its ratio (ideally 1.00)
# shows how much noise the run had; "normalised" is the median of each
# round's ratio divided by its baseline's ratio (for erasure the baseline
# is the dormant tick, which is the extension's own work).
#
#   make bench-compare                 # N=1000000, 2 rounds (A B A B)
#   N=100000 make bench-compare        # a smoke run (a few minutes)
#   ROUNDS=3 SECONDS_PER_RUN=10 N=300000 make bench-compare
#   BENCHES="advance touch" make bench-compare
#
# N is the advance and adopt size; touch, bulk invite and erasure use
# N/10 users (their scripts' defaults at N = 1M).  The raw output goes to
# /tmp/lifecycle-compare-results.txt and is copied to
# bench/results-compare.txt (BENCH_RESULTS=... elsewhere); bench/RESULTS.md
# discusses it.  Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD_COMMIT=${OLD_COMMIT:-b2f4a6e817d1a69904efeaa7d92503a08b12b890}
OLD_VERSION=${OLD_VERSION:-0.2.0}
export N=${N:-1000000}
export ROUNDS=${ROUNDS:-2}
export SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
export BENCHES=${BENCHES:-advance touch invite bulk_invite adopt erase workflow}
OUT=${COMPARE_OUT:-/tmp/lifecycle-compare-results.txt}

if [ "$(id -u)" -eq 0 ]; then
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	git cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null || {
		echo "the repository's history lacks $OLD_VERSION's commit $OLD_COMMIT (a shallow clone?)" >&2
		exit 1
	}
	bash scripts/deps.sh
	work=$(mktemp -d /tmp/lifecycle-compare.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	mkdir "$work/old" "$work/new"
	git archive --format=tar "$OLD_COMMIT" | tar -x -C "$work/old"
	rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
		--exclude 'tmp_check*' --exclude results ./ "$work/new/"
	for side in old new; do
		pgroot="$work/pg-$side"
		for d in /usr/lib/postgresql/15 /usr/share/postgresql/15 /usr/include/postgresql; do
			mkdir -p "$pgroot$(dirname "$d")"
			cp -a "$d" "$pgroot$d"
		done
		pgc="$pgroot/usr/lib/postgresql/15/bin/pg_config"
		make -C "$work/$side" -s PG_CONFIG="$pgc" >/dev/null
		make -C "$work/$side" -s PG_CONFIG="$pgc" install >/dev/null
	done
	chown -R postgres: "$work"
	runuser -u postgres -- env N="$N" ROUNDS="$ROUNDS" SECONDS_PER_RUN="$SECONDS_PER_RUN" \
		BENCHES="$BENCHES" COMPARE_OUT="$OUT" OLD_COMMIT="$OLD_COMMIT" \
		OLD_VERSION="$OLD_VERSION" COMPARE_COMMIT="$commit" COMPARE_WORK="$work" \
		bash "$work/new/bench/compare.sh"
	cp "$OUT" "${BENCH_RESULTS:-bench/results-compare.txt}"
	exit 0
fi

# --- as the postgres OS user, in $COMPARE_WORK ----------------------------
work=${COMPARE_WORK:?run bench/compare.sh as root (make bench-compare)}
NEW_VERSION=$(sed -n "s/^default_version = '\([^']*\)'.*/\1/p" lifecycle.control)
: > "$OUT"
say() { echo "$*" | tee -a "$OUT"; }
# One side's environment for bench/lib.sh: its binaries, port, data
# directory, socket directory.
side_env() {
	local side=$1 port
	[ "$side" = old ] && port=7311 || port=7312
	echo "PGBIN=$work/pg-$side/usr/lib/postgresql/15/bin BENCH_PORT=$port" \
		"BENCH_DATA=/tmp/lifecycle-compare-$side-data BENCH_SOCK=/tmp/lifecycle-compare-$side-sock"
}
label() { [ "$1" = old ] && echo "$OLD_VERSION" || echo "$NEW_VERSION"; }
cluster() {			# cluster <side> start|stop
	env $(side_env "$1") bash bench/cluster.sh "$2" >/dev/null
}
stop_all() { cluster old stop; cluster new stop; }

say "lifecycle bench-compare: $NEW_VERSION (this tree, commit ${COMPARE_COMMIT:-unknown}) vs $OLD_VERSION (commit $OLD_COMMIT), $(date -u +%FT%TZ), N=$N, $ROUNDS rounds, ${SECONDS_PER_RUN}s per pgbench run, $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM"
trap stop_all EXIT
cluster old start
cluster new start
for side in old new; do
	v=$(env $(side_env "$side") bash -c '. bench/lib.sh; q "SELECT extversion FROM pg_extension WHERE extname = '"'lifecycle'"'"')
	[ "$v" = "$(label "$side")" ] || { echo "the $side cluster runs lifecycle $v, not $(label "$side")" >&2; exit 1; }
done

# run_bench <bench> <side>: runs the benchmark script once (one round of
# its own) on that side's cluster; prints "figure baseline" from its
# report lines.
run_bench() {
	local b=$1 side=$2 raw
	raw=$(mktemp)
	local tenth=$(( N / 10 ))
	env $(side_env "$side") BENCH_OUT="$raw" \
		ADVANCE_USERS="$N" ADVANCE_BATCHES=10000 ADVANCE_EXPLAIN=0 \
		TOUCH_USERS="$tenth" TOUCH_ROUNDS=1 TOUCH_SECONDS="$SECONDS_PER_RUN" \
		INVITE_ROUNDS=1 INVITE_SECONDS="$SECONDS_PER_RUN" \
		BULK_USERS="$tenth" BULK_ROUNDS=1 \
		ADOPT_ROWS="$N" ADOPT_ROUNDS=1 ADOPT_EXTRAS=0 \
		ERASE_USERS="$tenth" ERASE_ROUNDS=1 \
		bash "bench/$b.sh" >/dev/null
	sed "s/^/  [$(label "$side")] /" "$raw" >> "$OUT"
	case $b in
	advance)	# worker rows/s; the one-statement baseline's rows/s
		awk '/^advance worker/ { for (i = 1; i <= NF; i++) if ($(i+1) == "rows/s,") w = $i }
			/^advance baseline/ { for (i = 1; i <= NF; i++) if ($(i+1) == "rows/s") b = $i }
			END { print w, b }' "$raw" ;;
	touch)		# lifecycle_touch() tps; the unique-key SELECT's tps
		sed -n 's/^touch round 1: lifecycle_touch() \([0-9]*\) tps vs unique-key SELECT \([0-9]*\) tps.*/\1 \2/p' "$raw" ;;
	invite)		# lifecycle_invite() tps; the plain INSERT's tps
		sed -n 's/^invite round 1: lifecycle_invite() \([0-9]*\) tps, plain INSERT \([0-9]*\) tps.*/\1 \2/p' "$raw" ;;
	bulk_invite)	# users/s; the multi-row INSERT's users/s
		sed -n 's/^bulk invite round 1: lifecycle_invite() [0-9.]*s \([0-9]*\)\/s; multi-row INSERT users only [0-9.]*s \([0-9]*\)\/s.*/\1 \2/p' "$raw" ;;
	adopt)		# users/s; the plain INSERT ... SELECT's users/s
		sed -n 's/^adopt round 1: lifecycle_adopt() of \([0-9]*\) accounts \([0-9.]*\)s .*plain INSERT ... SELECT of the same user and history rows \([0-9.]*\)s.*/\1 \2 \3/p' "$raw" |
			awk '{ printf "%.0f %.0f\n", $1 / $2, $1 / $3 }' ;;
	erase)		# erasure users/s; with the hook; the dormant tick (no baseline SQL)
		sed -n 's/^erase round 1: dormant [0-9.]*s \([0-9]*\)\/s; erase [0-9.]*s \([0-9]*\)\/s.*erase+hook [0-9.]*s \([0-9]*\)\/s.*/\2 \1 \3/p' "$raw" ;;
	esac
	rm -f "$raw"
}

med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

declare -A SUMMARY
for b in $BENCHES; do
	[ "$b" != workflow ] || continue	# this tree only: below
	say "== $b"
	ratios=""; bratios=""; nratios=""; hratios=""
	for r in $(seq "$ROUNDS"); do
		read -r fo bo ho < <(run_bench "$b" old)
		read -r fn bn hn < <(run_bench "$b" new)
		[ -n "${fo:-}" ] && [ -n "${fn:-}" ] || { say "$b round $r: no figure parsed (see the raw lines above)"; exit 1; }
		ratios="$ratios $(ratio "$fn" "$fo")"
		bratios="$bratios $(ratio "$bn" "$bo")"
		nratios="$nratios $(ratio "$(ratio "$fn" "$fo")" "$(ratio "$bn" "$bo")")"
		line="$b round $r: $OLD_VERSION $fo, $NEW_VERSION $fn, ratio $(ratio "$fn" "$fo"); baseline $bo / $bn, ratio $(ratio "$bn" "$bo")"
		if [ "$b" = erase ]; then
			hratios="$hratios $(ratio "$hn" "$ho")"
			line="$line; erase with hook $ho / $hn, ratio $(ratio "$hn" "$ho")"
		fi
		say "$line [load $(cut -d' ' -f1 /proc/loadavg)]"
	done
	SUMMARY[$b]="$(med "$ratios")   baseline $(med "$bratios")   normalised $(med "$nratios")"
	[ "$b" != erase ] || SUMMARY[erase_hook]="$(med "$hratios")   (the dormant tick above is its baseline)"
done

# Advancing N due instances of a custom workflow against one set-based
# SQL statement doing the same writes (goal: at least 0.7x).  It needs the
# workflow language (lifecycle_define_workflow(), lifecycle_start()) and
# bench/workflow.sh, which measures it on one cluster as advance.sh does
# (ROUNDS rounds, the median ratio).
case " $BENCHES " in
*" workflow "*)
	say "== workflow"
	missing=$(env $(side_env new) bash -c '. bench/lib.sh; q "SELECT coalesce(string_agg(f || '"'()'"', '"' and '"'), '"''"') FROM unnest('"'{lifecycle_define_workflow,lifecycle_start}'"'::text[]) f WHERE NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = f)"')
	[ -f bench/workflow.sh ] || missing="${missing:+$missing and }bench/workflow.sh"
	if [ -z "$missing" ]; then
		raw=$(mktemp)
		env $(side_env new) BENCH_OUT="$raw" WORKFLOW_INSTANCES="$N" WORKFLOW_BATCHES=10000 \
			WORKFLOW_ROUNDS="$ROUNDS" bash bench/workflow.sh >/dev/null
		sed "s/^/  [$NEW_VERSION] /" "$raw" >> "$OUT"
		wratios=$(sed -n 's/^workflow: .*ratio \([0-9.]*\) x.*/\1/p' "$raw" | tr '\n' ' ')
		[ -n "$wratios" ] || { say "workflow: no figure parsed (see the raw lines above)"; exit 1; }
		say "workflow: worker / one set-based statement, per round: $wratios[load $(cut -d' ' -f1 /proc/loadavg)]"
		SUMMARY[workflow]="$(med "$wratios")   (worker / one set-based statement, this tree; goal >= 0.7)"
		rm -f "$raw"
	else
		say "SKIPPED: custom workflow advance vs one set-based statement: this tree lacks $missing"
		SUMMARY[workflow]="skipped"
	fi ;;
esac

say "== summary: $NEW_VERSION / $OLD_VERSION, median over $ROUNDS rounds (goal >= 0.9; workflow vs SQL >= 0.7); N=$N; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $(echo $BENCHES | tr ' ' '\n' | grep -vx workflow) erase_hook workflow; do
	[ -n "${SUMMARY[$b]:-}" ] || continue
	say "$(printf '%-12s %s' "$b" "${SUMMARY[$b]}")"
done
