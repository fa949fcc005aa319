#!/usr/bin/env bash
# Run every lifecycle test suite: pg_regress, isolation, TAP.
# Installs what is missing, builds with warnings as errors and assertions
# where the server allows, installs, then runs the suites as the postgres
# OS user on temporary clusters of their own (never a running server).
#
#   bash scripts/test.sh            # everything
#   SUITES="regress" bash scripts/test.sh
#   PROVE_TESTS="test/t/010_worker.pl" SUITES=tap bash scripts/test.sh
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
SUITES=${SUITES:-"regress isolation tap"}

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
chown -R postgres: "$work"
status=0

as_pg() { runuser -u postgres -- env PATH="$PGBINDIR:$PATH" PG_CONFIG="$PG_CONFIG" \
	LIFECYCLE_GIT_DIR="${LIFECYCLE_GIT_DIR:-}" LIFECYCLE_PGROOT="$pgroot" "$@"; }

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
	esac
done
exit $status
