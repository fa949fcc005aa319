#!/usr/bin/env bash
# bench/dba_ab.sh OLD.sql NEW.sql [ROUNDS]: two definitions of
# lifecycle.violations and lifecycle.overdue (CREATE OR REPLACE VIEW, with
# the extension schema written out) alternated on the users already
# loaded (bench/dba.sh, DBA_TRAVEL for a late set): each round installs
# one, then the other, and prints for each view the best of five EXPLAIN
# ANALYZE execution times in one session (after one warm-up), every run's
# time and how many were compiled (JIT).  bench/RESULTS.md section 13
# took main 25eccba's sql/src/20_views.sql definitions as OLD.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
old=$1 new=$2 rounds=${3:-3}
for round in $(seq "$rounds"); do
	for def in old new; do
		f=$old; [ $def = new ] && f=$new
		qf -q -f "$f" >/dev/null
		for v in violations overdue; do
			r=$(for _ in 1 2 3 4 5 6; do echo "EXPLAIN (ANALYZE) SELECT * FROM lifecycle.$v;"; done | qf |
				awk '/^Execution Time/ { n++; if (n > 1) { a = a " " $3; if (m == "" || $3 + 0 < m + 0) m = $3 } }
					/^JIT/ { j++ } END { printf "best %s of (%s ) ms, %d of 6 with JIT", m, a, j }')
			report "dba_ab round $round $def $v: $r"
		done
	done
done
