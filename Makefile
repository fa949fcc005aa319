# lifecycle: PGXS build
EXTENSION = lifecycle
# The version is written once, in the control file; the C code gets it
# (and the library name) from here (src/store/version.h).
EXTVERSION = $(shell sed -n "s/^default_version = '\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = lifecycle
# src/ is grouped by layer (README.md, "Layout"): the pure core (machine,
# policy language, backoff, templates: no SPI, no I/O), the store (every
# SQL statement, saved plans), the engine (transitions, caches, the
# clock, the acting role), the SQL-callable API, the background workers,
# and the network (libcurl).  lifecycle.c holds _PG_init only.
LAYERS = core store engine api workers net
OBJS = src/lifecycle.o src/guc.o \
	$(patsubst %.c,%.o,$(sort $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))))

# The install script is assembled from sql/src/*.sql (numbered parts) so
# each module's SQL lives beside its peers without one giant file; the
# assembler refuses a part that alters another part's table
# (scripts/assemble-sql.sh).
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*--*.sql))

PG_CONFIG ?= pg_config
# Warnings are errors only where asked for (scripts/test.sh and CI pass
# LIFECYCLE_CFLAGS=-Werror): a packager's compiler may warn differently.
PG_CPPFLAGS = -Isrc $(foreach l,$(LAYERS),-Isrc/$(l)) -DLIFECYCLE_NAME='"$(EXTENSION)"' \
	-DLIFECYCLE_VERSION='"$(EXTVERSION)"' -Wall -Wextra -Wno-unused-parameter \
	-Wno-sign-compare -Wno-missing-field-initializers $(LIFECYCLE_CFLAGS)
SHLIB_LINK = -lcurl $(LIFECYCLE_LDFLAGS)

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --temp-instance=./tmp_check \
	--temp-config=test/regress.conf

ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --temp-instance=./tmp_check_iso \
	--temp-config=test/regress.conf

EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql tmp_check tmp_check_iso \
	results output_iso regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: scripts/assemble-sql.sh $(sort $(wildcard sql/src/*.sql)) \
		$(wildcard sql/workflows/*.json) $(DATA)
	bash scripts/assemble-sql.sh $(sort $(wildcard sql/src/*.sql)) > $@.tmp
	mv $@.tmp $@

# pg_regress and pg_isolation_regress suites separately (PGXS's
# installcheck runs both).
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)

installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

# TAP tests (PostgreSQL::Test::Cluster) against the installed build; each
# test starts its own clusters.
prove_installcheck:
	rm -rf $(CURDIR)/tmp_check_tap
	mkdir -p $(CURDIR)/tmp_check_tap
	cd $(srcdir) && TESTDIR='$(CURDIR)/tmp_check_tap' PATH="$(bindir):$$PATH" \
		PGPORT='6$(DEF_PGPORT)' \
		PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
		$(PROVE) $(PG_PROVE_FLAGS) $(PROVE_FLAGS) \
		-I $(top_builddir)/src/test/perl -I $(srcdir)/test/perl \
		$(or $(PROVE_TESTS),test/t/*.pl)

# The model-based test with any seed and length (test/t/800_model.pl):
#   make check-model SEED=random STEPS=2000
SEED ?= random
STEPS ?= 1000
check-model:
	MODEL_SEED=$(SEED) MODEL_STEPS=$(STEPS) PROVE_TESTS=test/t/800_model.pl \
		SUITES=tap bash scripts/test.sh

# lifecycle on a coordinator and two Citus workers (test/t/930_citus_cluster.pl,
# docs/CITUS.md): scripts/test.sh builds Citus from ../shared/citus/ (or
# CITUS_SRC) once, caches it, and runs the cluster test alone.
check-citus:
	PROVE_TESTS="$(or $(PROVE_TESTS),$(sort $(wildcard test/t/93*.pl)))" \
		SUITES=tap bash scripts/test.sh

# The regression, isolation and red-team suites with the extension built
# with AddressSanitizer and UBSan and the runtimes preloaded into the test
# servers (scripts/sanitize.sh; README "Tests" says how long it takes).
sanitize:
	bash scripts/sanitize.sh

bench:
	bash bench/run.sh

# The whole product at N users over two simulated years (bench/scale.sh);
# N=1000000 make bench-scale.  Not part of the tests.
bench-scale:
	BENCHES=scale bash bench/run.sh

# 0.2.0 (built from history) against this tree, same run, same machine,
# interleaved: the user benchmarks' ratios (bench/compare.sh; N=100000
# make bench-compare for a quick run).  Not part of the tests.
bench-compare:
	bash bench/compare.sh

.PHONY: bench-compare check-citus check-model installcheck-regress installcheck-isolation prove_installcheck bench bench-scale sanitize
