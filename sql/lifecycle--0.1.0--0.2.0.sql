-- lifecycle 0.1.0 -> 0.2.0
--
-- Every schema change of 0.2.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- The last 0.1.0 commit is 220c1ab38be7a866411ebe06866c6dd1be674bb7.

\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.2.0'" to load this file. \quit

-- security (issue 11.3): the acting role and tenant limits are decided in
-- C (src/acting.c) for the SQL helpers too.
CREATE OR REPLACE FUNCTION lifecycle._actor()
RETURNS name
AS 'MODULE_PATHNAME', 'lifecycle_actor'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION lifecycle._check_unlimited(what text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_check_unlimited'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
