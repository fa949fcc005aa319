#!/usr/bin/env bash
# Diagnostic (not a goal): where lifecycle_touch()'s time goes.  Same users
# as touch.sh (run touch.sh first), 8 pgbench clients, short runs of:
# SELECT 1; the unique-key SELECT; the statement lifecycle_touch() runs
# inside (row + clock + tenant grant, prepared); an empty SECURITY DEFINER
# function with and without SET search_path; lifecycle_touch() itself.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
T=${PARTS_SECONDS:-10}
C=${TOUCH_CLIENTS:-8}
N=${TOUCH_USERS:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
qf <<'SQL' >/dev/null
CREATE OR REPLACE FUNCTION bench_definer_set(s text, t text) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT $1 $$;
CREATE OR REPLACE FUNCTION bench_definer(s text, t text) RETURNS text
LANGUAGE sql SECURITY DEFINER AS $$ SELECT $1 $$;
SQL
hdr="\\set i random(1, $N)"
printf '%s\nSELECT 1;\n' "$hdr" > "$dir/one.sql"
printf '%s\nSELECT state FROM lifecycle.users WHERE tenant = %s AND subject = %s;\n' "$hdr" "'bench-touch'" "'touch-' || :i" > "$dir/select.sql"
printf '%s\n%s\n' "$hdr" "SELECT u.*, (SELECT c.offset_by FROM lifecycle.clock c), NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')) OR EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') AND g.tenant = 'bench-touch') FROM (SELECT 1) AS one LEFT JOIN lifecycle.users u ON u.tenant = 'bench-touch' AND u.subject = 'touch-' || :i;" > "$dir/peek.sql"
# The same statement without the tenant-grant part, without the clock
# part, and with neither: what each part costs.
printf '%s\n%s\n' "$hdr" "SELECT u.*, (SELECT c.offset_by FROM lifecycle.clock c) FROM (SELECT 1) AS one LEFT JOIN lifecycle.users u ON u.tenant = 'bench-touch' AND u.subject = 'touch-' || :i;" > "$dir/peek_clock.sql"
printf '%s\n%s\n' "$hdr" "SELECT u.*, NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')) OR EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') AND g.tenant = 'bench-touch') FROM (SELECT 1) AS one LEFT JOIN lifecycle.users u ON u.tenant = 'bench-touch' AND u.subject = 'touch-' || :i;" > "$dir/peek_grants.sql"
# Proposed: short-circuit the grant check when lifecycle.tenant_grants is
# empty (the usual case); same result, the pg_roles joins never run.
printf '%s\n%s\n' "$hdr" "SELECT u.*, (SELECT c.offset_by FROM lifecycle.clock c), NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants) OR NOT EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')) OR EXISTS (SELECT 1 FROM lifecycle.tenant_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') AND g.tenant = 'bench-touch') FROM (SELECT 1) AS one LEFT JOIN lifecycle.users u ON u.tenant = 'bench-touch' AND u.subject = 'touch-' || :i;" > "$dir/peek_short.sql"
printf '%s\n%s\n' "$hdr" "SELECT u.* FROM (SELECT 1) AS one LEFT JOIN lifecycle.users u ON u.tenant = 'bench-touch' AND u.subject = 'touch-' || :i;" > "$dir/peek_row.sql"
printf '%s\nSELECT bench_definer_set(%s, %s);\n' "$hdr" "'touch-' || :i" "'bench-touch'" > "$dir/definer_set.sql"
printf '%s\nSELECT bench_definer(%s, %s);\n' "$hdr" "'touch-' || :i" "'bench-touch'" > "$dir/definer.sql"
printf '%s\nSELECT lifecycle_touch(%s, %s);\n' "$hdr" "'touch-' || :i" "'bench-touch'" > "$dir/touch.sql"
set_worker lifecycle.enabled off
for s in one select peek_row peek_clock peek_grants peek peek_short definer definer_set touch; do
	tps=$(pgbench -n -M prepared -c "$C" -j 2 -T "$T" -f "$dir/$s.sql" 2>/dev/null |
		awk '/^tps = / { printf "%.0f", $3 }')
	report "touch parts: $s $tps tps"
done
set_worker lifecycle.enabled on
