-- lifecycle 0.1.0 -> 0.2.0
--
-- Every schema change of 0.2.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- The last 0.1.0 commit is 220c1ab38be7a866411ebe06866c6dd1be674bb7.

\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.2.0'" to load this file. \quit
