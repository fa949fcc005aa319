-- lifecycle: exact counts kept as they change (src/store/counts.c).
--
-- lifecycle.metrics and lifecycle.retention_report read these instead of
-- counting every instance, history row and message.  A statement that
-- inserts, updates or deletes users, history or outbox rows appends, in
-- its own transaction, one row per group whose count it changed to
-- lifecycle.count_deltas (AFTER ... FOR EACH ROW triggers add up the rows'
-- deltas in memory, an AFTER ... FOR EACH STATEMENT trigger writes them; an
-- update that leaves every row in its group writes nothing).  Appending, not updating a counter row, so
-- that no hot row serialises the application's writes.  The scheduler
-- (every pass) and lifecycle_tick() fold the deltas into lifecycle.counts;
-- a reader adds the deltas not folded yet, so what it reads is exact.
--
-- Families and their keys:
--   users     tenant, key1 = policy, key2 = state; n instances, held those
--             with the held flag (a hold whose until passed is subtracted
--             when read, from users_hold_until)
--   events    tenant of the user, key1 = event, key2 = the user's workflow
--             (its instance's); n history rows
--   messages  tenant of the user, key1 = channel ('' for none),
--             key2 = status; n outbox rows
--   lateness  tenant of the user, key1 = the least bucket of the histogram
--             lifecycle_timer_lateness_seconds (1, 10, 60, 300, 3600,
--             86400, +Inf) that holds at - due_at of a timer's history
--             row; n rows, held the sum of their lateness in microseconds
-- A history or outbox row whose user is not there (while a dump is
-- restored: pg_restore loads history and outbox before users) counts
-- under tenant '', which only roles limited to no tenant see.
-- The group key includes the policy: a dimension derived from it (the
-- workflow) is a join with lifecycle.policies away.  The tables,
-- lifecycle.counts and lifecycle.count_deltas, are in 00_schema.sql
-- (lifecycle.retention_report reads them).

-- The trigger (argument: the family).  SECURITY DEFINER: the deltas are
-- written as the owner whoever changes the rows.  Row-level: each row's
-- delta is added to its group in memory (an update that leaves the row in
-- its group is skipped by WHEN); statement-level: the groups are written.
-- The triggers are in 77_count_triggers.sql.
CREATE FUNCTION lifecycle._count_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_count_trigger'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION lifecycle._count_trigger() FROM PUBLIC;
