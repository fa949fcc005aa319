-- lifecycle 0.2.0 -> 0.3.0
--
-- Every schema change of 0.3.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- 0.2.0 is commit b2f4a6e (b2f4a6e817d1a69904efeaa7d92503a08b12b890; the upgrade test builds it from
-- the repository's history).  Installs of 0.1.0 reach 0.3.0 through
-- lifecycle--0.1.0--0.2.0.sql and then this script.

\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.3.0'" to load this file. \quit
