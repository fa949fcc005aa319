#!/usr/bin/env bash
# The sanitizer run (make sanitize): the extension built with
# -fsanitize=address,undefined (-fno-omit-frame-pointer) and linked with
# gcc 12's libasan and libubsan, every test server started through a
# wrapper of scripts/test.sh's private PostgreSQL copy that sets the
# runtimes' options (and preloads libubsan), and the regression, isolation
# and red-team suites run under it.  Any report fails the run: the
# runtimes log to files (one per process), checked at the end.
#
# libasan is not LD_PRELOADed into postgres: with it preloaded, the
# postgres 15 binary of Debian 12 hangs before main() (glibc's gettext
# lock _nl_state_lock is left corrupted by the constructors, traced with
# gdb to libgpg-error's bindtextdomain() call, and postgres's own
# bindtextdomain() then waits forever; `postgres -V` never returns).  It is
# loaded with the extension instead (verify_asan_link_order=0), and
# scripts/sanitize-longjmp.c (preloaded) tells it about postgres's
# longjmps, which its interceptors cannot see in that mode: every
# memory access of the extension's code is checked (stack, globals, and
# heap blocks that ASan allocated), but memory that postgres or libcurl
# malloc'd is not redzoned, and palloc memory never is (memory contexts
# recycle their chunks).
#
# detect_leaks=0: postgres itself is not instrumented, and what a backend
# still holds at exit (memory contexts, libcurl's global state) is no leak
# worth a report.  An ASan report aborts the process (the test that ran
# into it fails too); UBSan reports are logged and the run continues, so
# that every one of them is seen.
#
#   bash scripts/sanitize.sh                 # regress, isolation, red team
#   SUITES=regress bash scripts/sanitize.sh
#   RED_TEAM="test/t/420_hijack_worker.pl" bash scripts/sanitize.sh
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo -E bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
start=$(date +%s)

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
	[ -e "$lib" ] || { echo "sanitize: $lib not found (gcc 12's libasan/libubsan)" >&2; exit 2; }
done

# The red-team TAP tests: the hijack and security tests (TAP 600-649)
# and the worker hijack test.
if [ -z "${RED_TEAM:-}" ]; then
	RED_TEAM=$(ls test/t/420_*.pl test/t/6[0-4][0-9]_*.pl 2>/dev/null | tr '\n' ' ')
fi

reports=$(mktemp -d /tmp/lifecycle-sanitize.XXXXXX)
chmod 1777 "$reports"
# The longjmp wrappers (see scripts/sanitize-longjmp.c), readable by the
# postgres user.
shimdir=$(mktemp -d /tmp/lifecycle-sanitize-shim.XXXXXX)
chmod 755 "$shimdir"
shim="$shimdir/longjmp.so"
gcc -shared -fPIC -O2 -o "$shim" scripts/sanitize-longjmp.c -ldl
chmod 755 "$shim"
hook=$(mktemp /tmp/lifecycle-sanitize-hook.XXXXXX)
trap 'rm -f "$hook"; rm -rf "$shimdir"' EXIT
cat > "$hook" <<HOOK
#!/usr/bin/env bash
# Wrap the private copy's postgres: the same binary, with the runtimes.
set -euo pipefail
bindir=\$1
# Where scripts/test.sh works (kept: the servers' logs are scanned).
echo "\${bindir%/pg/usr/lib/postgresql/15/bin}" > "$reports/workdir"
mv "\$bindir/postgres" "\$bindir/postgres.bin"
cat > "\$bindir/postgres" <<'WRAP'
#!/bin/sh
LD_PRELOAD="$shim $ubsan" \\
ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:disable_coredump=1:log_path=$reports/asan:detect_odr_violation=0:allow_user_segv_handler=1" \\
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$reports/ubsan" \\
exec "\$(dirname "\$0")/postgres.bin" "\$@"
WRAP
chmod 755 "\$bindir/postgres"
HOOK

SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
status=0
KEEP=1 SUITES="${SUITES:-regress isolation tap}" PROVE_TESTS="$RED_TEAM" \
	LIFECYCLE_CFLAGS="$SAN_FLAGS" LIFECYCLE_LDFLAGS="-lasan -lubsan" \
	LIFECYCLE_PG_HOOK="$hook" \
	bash scripts/test.sh || status=$?

# Reports land in the runtimes' log files or, as ASan does when it is
# loaded with the extension, on the server's stderr: its log.
work=$(cat "$reports/workdir" 2>/dev/null || true)
rm -f "$reports/workdir"
found=$(find "$reports" -type f -size +0 | sort)
if [ -n "$work" ] && [ -d "$work" ]; then
	found="$found $(grep -rlE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error: |SUMMARY: [A-Za-z]*Sanitizer' \
		--include='*.log' "$work" 2>/dev/null | sort || true)"
	found=$(echo $found)
fi
if [ -n "$found" ]; then
	echo "== sanitizer reports"
	for f in $found; do
		echo "--- $f"
		grep -E -A40 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error: |SUMMARY: ' "$f" | head -n 80
	done
	status=1
fi
[ -z "$work" ] || [ -n "${KEEP:-}" ] || rm -rf "$work"
echo "== sanitizer run: $(( $(date +%s) - start )) s, status $status, reports in $reports"
[ -n "$found" ] || rm -rf "$reports"
exit $status
