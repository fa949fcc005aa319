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
#   bash scripts/assemble-sql.sh sql/src/*.sql > sql/lifecycle--VERSION.sql
set -euo pipefail

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
[ "$errors" -eq 0 ] || exit 1

echo "-- lifecycle install script, assembled by scripts/assemble-sql.sh from sql/src/ (do not edit)."
for part in "$@"; do
	printf '\n-- ---- %s ----\n\n' "$part"
	cat "$part"
done
