#!/usr/bin/env bash
# Run every lifecycle test suite: pg_regress, isolation, TAP, and a short
# run of the demo (scripts/demo.sh) whose output is checked.
# Installs what is missing, builds with warnings as errors and assertions
# where the server allows, installs, then runs the suites as the postgres
# OS user on temporary clusters of their own (never a running server).
#
#   bash scripts/test.sh            # everything
#   SUITES="regress" bash scripts/test.sh
#   PROVE_TESTS="test/t/010_worker.pl" SUITES=tap bash scripts/test.sh
#   SUITES=demo bash scripts/test.sh
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
SUITES=${SUITES:-"regress isolation tap demo"}

bash scripts/deps.sh

# Every document the tree cites (a name ending in .md) is in the tree
# (the tracked files in a clone, else every file but build output).
cited() {
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git grep -IhoE '[A-Za-z0-9_-]+\.md\b' || true
	else
		grep -rIhoE --exclude-dir=results --exclude-dir='tmp_check*' \
			--exclude-dir=output_iso --exclude='lifecycle--[0-9]*.[0-9]*.[0-9]*.sql' \
			'[A-Za-z0-9_-]+\.md\b' . || true
	fi
}
missing=$(cited | sort -u | while read -r doc; do
	[ -n "$(find . -path ./.git -prune -o -name "$doc" -print -quit)" ] || echo "$doc"
done)
if [ -n "$missing" ]; then
	echo "cited but not in the tree: $missing (point to README.md or docs/ instead)" >&2
	exit 1
fi

# The update scripts chain from 0.1.0, the first release, to the control
# file's default_version: one sql/lifecycle--A--B.sql from each version
# on the way, none missing, none forked, none left over; and each one's
# first statement is its \echo guard naming B (psql must not run it).  A
# forgotten or misnamed script fails here, before the suites (the upgrade
# tests, test/t/50N_*.pl, then run the chain).
update_scripts() {
	local target v next f first n=0 total
	target=$(sed -n "s/^default_version = '\([^']*\)'.*/\1/p" lifecycle.control)
	[ -n "$target" ] || { echo "lifecycle.control has no default_version" >&2; return 1; }
	v=0.1.0
	while [ "$v" != "$target" ]; do
		set -- sql/lifecycle--"$v"--*.sql
		[ -e "$1" ] || { echo "no update script from $v on the way to $target (sql/lifecycle--$v--*.sql)" >&2; return 1; }
		[ $# -eq 1 ] || { echo "more than one update script from $v: $*" >&2; return 1; }
		f=$1
		next=${f#sql/lifecycle--"$v"--}
		next=${next%.sql}
		first=$(grep -v -E '^[[:space:]]*(--.*)?$' "$f" | head -n 1 || true)
		if [ "$first" != "\\echo Use \"ALTER EXTENSION lifecycle UPDATE TO '$next'\" to load this file. \\quit" ]; then
			echo "$f: its first statement is not its guard: \\echo Use \"ALTER EXTENSION lifecycle UPDATE TO '$next'\" to load this file. \\quit" >&2
			return 1
		fi
		n=$((n + 1))
		v=$next
		[ "$n" -le 100 ] || { echo "the update scripts loop at $v" >&2; return 1; }
	done
	total=$(find sql -maxdepth 1 -name 'lifecycle--*--*.sql' | wc -l)
	if [ "$total" -ne "$n" ]; then
		echo "update scripts off the chain 0.1.0 -> $target:" \
			"$(find sql -maxdepth 1 -name 'lifecycle--*--*.sql' | sort | tr '\n' ' ')" >&2
		return 1
	fi
}
update_scripts || exit 1

# pg_regress, initdb and postgres refuse root: build and test in a copy the
# postgres user owns (the source tree stays clean).
work=$(mktemp -d /tmp/lifecycle-test.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
	--exclude 'tmp_check*' --exclude results ./ "$work/"

# A private copy of the PostgreSQL 15 installation (PostgreSQL finds its
# share and lib directories relative to its binaries): the extension is
# installed there, never into the system's, so test runs side by side
# do not replace each other's library, and the upgrade test may install
# an older version.
pgroot="$work/pg"
for d in /usr/lib/postgresql/15 /usr/share/postgresql/15 /usr/include/postgresql; do
	mkdir -p "$pgroot$(dirname "$d")"
	cp -a "$d" "$pgroot$d"
done
export PG_CONFIG="$pgroot/usr/lib/postgresql/15/bin/pg_config"
PGBINDIR="$pgroot/usr/lib/postgresql/15/bin"
# A hook that may change the private copy before anything runs (the
# sanitizer run wraps the postgres binary: scripts/sanitize.sh).
[ -z "${LIFECYCLE_PG_HOOK:-}" ] || bash "$LIFECYCLE_PG_HOOK" "$PGBINDIR"

# The commit of the source tree, for tests that build older versions from
# the repository's history (test/t/500_upgrade.pl).
if git rev-parse --git-dir >/dev/null 2>&1; then
	git_dir=$(cd "$(git rev-parse --git-dir)" && pwd)
	export LIFECYCLE_GIT_DIR="$git_dir"
fi

make -C "$work" -s PG_CONFIG="$PG_CONFIG" LIFECYCLE_CFLAGS="-Werror ${LIFECYCLE_CFLAGS:-}" >/dev/null
make -C "$work" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
# Citus, for the scale-out test (test/t/930_citus_cluster.pl): built once
# from its source tarball and cached (scripts/citus.sh), installed into the
# private copy; when it cannot be built the test skips with the reason.
citus_skip=""
case " $SUITES " in *" tap "*)
	case "${PROVE_TESTS:-test/t/93}" in *test/t/93*)
		if ! bash scripts/citus.sh "$pgroot" 2>&1 | tee "$work/citus.err" >&2; then
			citus_skip=$(tail -n 1 "$work/citus.err")
			echo "$citus_skip (the Citus test skips)" >&2
		fi ;;
	esac ;;
esac
chown -R postgres: "$work"
status=0

as_pg() { runuser -u postgres -- env PATH="$PGBINDIR:$PATH" PG_CONFIG="$PG_CONFIG" \
	LIFECYCLE_GIT_DIR="${LIFECYCLE_GIT_DIR:-}" LIFECYCLE_PGROOT="$pgroot" \
	LIFECYCLE_CITUS_SKIP="$citus_skip" "$@"; }

# The demo, short (1,000 users, 20 weeks: the requests, the outage and the
# migration all happen), with the extension installed above, its sinks on
# free ports, its pictures in the work directory; then its output must
# show what README says it shows, and its own checks must pass.
demo_suite() {
	local log="$work/demo.log" out="$work/demo-out" ports missing=0
	mkdir -p "$out"
	ports=$(python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	read -r sink_port smtp_port exporter_port <<<"$ports"
	if ! env DEMO_USERS=1000 DEMO_WEEKS=20 DEMO_MIGRATE_WEEK=4 DEMO_OUT="$out" \
		DEMO_INSTALLED=1 PG_CONFIG="$PG_CONFIG" DEMO_SINK_PORT="$sink_port" \
		DEMO_SMTP_PORT="$smtp_port" DEMO_EXPORTER_PORT="$exporter_port" \
		bash "$work/scripts/demo.sh" >"$log" 2>&1; then
		echo "the demo failed (exit status); the end of its output:"
		tail -n 80 "$log"
		return 1
	fi
	expect() {
		grep -Eq -- "$2" "$log" || { echo "the demo's output lacks $1 (/$2/)"; missing=1; }
	}
	expect "the announced outage" 'worker down for 14 days'
	expect "the unanswered request in lifecycle.violations while the worker is down" \
		'\| ticket-[0-9]+ +\| received +\| respond +\|'
	expect "its skipped reminders" '^ *dsar +\| +[1-9][0-9]* *$'
	expect "the overdue request in lifecycle.instances" '\| dsar +\| ticket-[0-9]+ +\| overdue +\| .*\| close +\|'
	expect "the overdue request in lifecycle.retention_report" '\| dsar +\| overdue +\| +1 \|'
	expect "the user workflow's retention bounds" '^ *user +\| saas +\| +2 \| active +\| 254 days +\|'
	expect "the dsar workflow's retention bounds" '^ *dsar +\| dsar +\| +[0-9]+ \| extended +\| 823 days +\| extended > respond_due > overdue'
	expect "the requests' outcomes" \
		'^requests: [0-9]+ filed, [1-9][0-9]* answered in time, [1-9][0-9]* extended then answered, 1 refused, 1 overdue \(ticket-[0-9]+, left unanswered on purpose\), 0 still open$'
	expect "the request e-mails at the SMTP sink" '^ok: every request message written reached the SMTP sink once'
	expect "its checks passed" '^demo checks: [0-9]+ passed, 0 failed$'
	expect "the user graph" "^  $out/lifecycle-demo-graph.png: "
	expect "the dsar graph" "^  $out/lifecycle-demo-graph-dsar.png: "
	for f in lifecycle-demo-graph.png lifecycle-demo-graph-dsar.png lifecycle-demo-forecast.png; do
		[ "$(head -c 4 "$out/$f" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG' ] ||
			{ echo "the demo wrote no PNG $out/$f"; missing=1; }
	done
	if [ "$missing" -ne 0 ]; then
		echo "--- the demo's output (log $log)"
		sed 's/\r/\n/g' "$log" | tail -n 150
		return 1
	fi
	grep -E '^(requests:|demo checks:|simulation )' "$log"
}

for suite in $SUITES; do
	case $suite in
	regress)
		echo "== pg_regress"
		if ! as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" installcheck-regress; then
			cat "$work/regression.diffs" 2>/dev/null || true
			status=1
		fi ;;
	isolation)
		echo "== isolation"
		if ! as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" installcheck-isolation; then
			cat "$work/output_iso/regression.diffs" 2>/dev/null || true
			status=1
		fi ;;
	tap)
		echo "== TAP"
		if ! as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" prove_installcheck PROVE_TESTS="${PROVE_TESTS:-}"; then
			for f in "$work"/tmp_check_tap/tmp_check/log/regress_log_*; do
				[ -f "$f" ] || continue
				echo "--- $f"; tail -n 60 "$f"
			done
			status=1
		fi ;;
	demo)
		echo "== demo"
		demo_suite || status=1 ;;
	esac
done
exit $status
