-- lifecycle 0.2.0 -> 0.3.0
--
-- Every schema change of 0.3.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- 0.2.0 is commit b2f4a6e (b2f4a6e817d1a69904efeaa7d92503a08b12b890; the upgrade test builds it from
-- the repository's history).  Installs of 0.1.0 reach 0.3.0 through
-- lifecycle--0.1.0--0.2.0.sql and then this script.

\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------
-- Issue 20 (scale): the outbox forgets what it should.
-- An unrouted message that the application had leased and that an
-- erasure then cancelled kept its lease (claimed_at) in 0.2.0, so
-- lifecycle_prune_outbox() never took it.  0.3.0's erasure ends the lease
-- with the cancellation; messages 0.2.0 left behind lose theirs here (an
-- unrouted message has no channel: the sender never claims it).
UPDATE lifecycle.outbox SET claimed_at = NULL
 WHERE status = 'cancelled' AND channel IS NULL AND claimed_at IS NOT NULL;
