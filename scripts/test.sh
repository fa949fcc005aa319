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

# pg_regress, initdb and postgres refuse root: build and test in a copy the
# postgres user owns (the source tree stays clean).
work=$(mktemp -d /tmp/lifecycle-test.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
rsync -a --exclude .git --exclude '*.o' --exclude '*.so' --exclude '*.bc' \
	--exclude 'tmp_check*' --exclude results ./ "$work/"
make -C "$work" -s LIFECYCLE_CFLAGS="${LIFECYCLE_CFLAGS:-}" >/dev/null
make -C "$work" -s install >/dev/null
chown -R postgres: "$work"
status=0

as_pg() { runuser -u postgres -- env PATH="/usr/lib/postgresql/15/bin:$PATH" "$@"; }

for suite in $SUITES; do
	case $suite in
	regress)
		echo "== pg_regress"
		if ! as_pg make -C "$work" -s installcheck-regress; then
			cat "$work/regression.diffs" 2>/dev/null || true
			status=1
		fi ;;
	isolation)
		echo "== isolation"
		if ! as_pg make -C "$work" -s installcheck-isolation; then
			cat "$work/output_iso/regression.diffs" 2>/dev/null || true
			status=1
		fi ;;
	tap)
		echo "== TAP"
		if ! as_pg make -C "$work" -s prove_installcheck PROVE_TESTS="${PROVE_TESTS:-}"; then
			for f in "$work"/tmp_check_tap/log/regress_log_*; do
				[ -f "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }
			done
			status=1
		fi ;;
	esac
done
exit $status
