#!/usr/bin/env bash
# Assemble the install script (sql/lifecycle--X.Y.Z.sql) from its parts,
# sql/src/NN_name.sql, in the order given (the Makefile sorts them), each
# under a comment naming its file.
#
# Each object is defined once, in one place: the build fails if a part
# alters a table or view it does not create itself (put the column,
# default, option or index into the table's own CREATE instead), or if two
# parts create the same table, view, type or index.
#
# The built-in workflows, sql/workflows/NAME.json, are embedded where a
# part has the line "-- @builtin-workflows@" (the extension's DATA is the
# assembled script alone): one lifecycle._install_workflow() call each.
# An upgrade script that installs them holds the same calls between
# "-- @builtin-workflows begin" and "-- @builtin-workflows end"; the build
# fails when they differ from the JSON files (print them with
# --workflows).
#
#   bash scripts/assemble-sql.sh sql/src/*.sql > sql/lifecycle--VERSION.sql
#   bash scripts/assemble-sql.sh --workflows
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

# The install calls of the built-in workflows, in name order.
builtin_workflows() {
	local f name
	for f in $(ls "$root"/sql/workflows/*.json | LC_ALL=C sort); do
		name=$(basename "$f" .json)
		if ! grep -Eqx '[a-z][a-z0-9_]*' <<<"$name" || grep -q '\$wf\$' "$f"; then
			echo "$f: a built-in workflow is named [a-z][a-z0-9_]*.json and holds no \$wf\$" >&2
			return 1
		fi
		printf "SELECT lifecycle._install_workflow('%s', \$wf\$\n" "$name"
		cat "$f"
		printf '$wf$::jsonb);\n'
	done
}

if [ "${1:-}" = "--workflows" ]; then
	builtin_workflows
	exit 0
fi

# Names of the tables, views, types and indexes a part creates.
created_in() {
	sed -nE 's/^CREATE (UNIQUE )?(TABLE|VIEW|TYPE|INDEX) (IF NOT EXISTS )?((@extschema@|lifecycle)\.)?([a-z_0-9]+).*/\6/p' "$1"
}

# Names of the tables and views a part alters.
altered_in() {
	sed -nE 's/^ALTER (TABLE|VIEW) (ONLY )?(IF EXISTS )?(@extschema@|lifecycle)\.([a-z_0-9]+).*/\5/p' "$1"
}

declare -A owner=()
errors=0
for part in "$@"; do
	mine=$(created_in "$part")
	for name in $mine; do
		if [ -n "${owner[$name]:-}" ]; then
			echo "$part: creates $name, already created in ${owner[$name]}" >&2
			errors=$((errors + 1))
		fi
		owner[$name]=$part
	done
	for name in $(altered_in "$part"); do
		if ! grep -qx "$name" <<<"$mine"; then
			echo "$part: alters lifecycle.$name, defined in ${owner[$name]:-another part}: define it in its own CREATE" >&2
			errors=$((errors + 1))
		fi
	done
done

wf=$(builtin_workflows)
for up in "$root"/sql/lifecycle--*--*.sql; do
	grep -qx -- '-- @builtin-workflows begin' "$up" || continue
	if [ "$(sed -n '/^-- @builtin-workflows begin$/,/^-- @builtin-workflows end$/p' "$up" | sed '1d;$d')" != "$wf" ]; then
		echo "$up: the built-in workflows differ from sql/workflows/*.json: paste the output of scripts/assemble-sql.sh --workflows between its @builtin-workflows lines" >&2
		errors=$((errors + 1))
	fi
done
[ "$errors" -eq 0 ] || exit 1

echo "-- lifecycle install script, assembled by scripts/assemble-sql.sh from sql/src/ (do not edit)."
for part in "$@"; do
	printf '\n-- ---- %s ----\n\n' "$part"
	while IFS= read -r line || [ -n "$line" ]; do
		if [ "$line" = "-- @builtin-workflows@" ]; then
			printf '%s\n' "$wf"
		else
			printf '%s\n' "$line"
		fi
	done <"$part"
done
