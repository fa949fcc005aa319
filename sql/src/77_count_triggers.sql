-- lifecycle: the count triggers (67_counts.sql, src/store/counts.c).
--
-- Row-level AFTER triggers add each row's delta to its group in memory
-- (an update that leaves the row in its group is skipped by WHEN); a
-- statement-level AFTER trigger writes the groups to
-- lifecycle.count_deltas.  lifecycle._counting() is false while a
-- statement of the store that writes its own deltas runs (a batch of
-- transitions, an invitation, an adoption): its rows cost no trigger call.
-- Defined after 75_userbase.sql, as the upgrade from 0.2.0 defines it
-- after every 0.2.0 function (52_hijack lists functions in OID order).

CREATE FUNCTION lifecycle._counting()
RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_counting'
LANGUAGE C STABLE PARALLEL SAFE;
-- A WHEN clause's function is called as the role writing the rows:
-- lifecycle_adopt() writes as its caller (lifecycle_app, or an admin).
REVOKE ALL ON FUNCTION lifecycle._counting() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._counting() TO lifecycle_app;

CREATE TRIGGER count_insert AFTER INSERT ON lifecycle.users
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('users');
CREATE TRIGGER count_update AFTER UPDATE ON lifecycle.users
	FOR EACH ROW WHEN (lifecycle._counting() AND
		(OLD.tenant, OLD.policy, OLD.state, OLD.held) IS DISTINCT FROM
		(NEW.tenant, NEW.policy, NEW.state, NEW.held))
	EXECUTE FUNCTION lifecycle._count_trigger('users');
CREATE TRIGGER count_delete AFTER DELETE ON lifecycle.users
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('users');
CREATE TRIGGER count_write AFTER INSERT OR UPDATE OR DELETE ON lifecycle.users
	FOR EACH STATEMENT WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('users');
CREATE TRIGGER count_truncate AFTER TRUNCATE ON lifecycle.users
	FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._count_trigger('users');

CREATE TRIGGER count_insert AFTER INSERT ON lifecycle.history
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('events');
CREATE TRIGGER count_update AFTER UPDATE ON lifecycle.history
	FOR EACH ROW WHEN (lifecycle._counting() AND
		(OLD.user_id, OLD.event, OLD.at, OLD.due_at) IS DISTINCT FROM
		(NEW.user_id, NEW.event, NEW.at, NEW.due_at))
	EXECUTE FUNCTION lifecycle._count_trigger('events');
CREATE TRIGGER count_delete AFTER DELETE ON lifecycle.history
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('events');
CREATE TRIGGER count_write AFTER INSERT OR UPDATE OR DELETE ON lifecycle.history
	FOR EACH STATEMENT WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('events');
CREATE TRIGGER count_truncate AFTER TRUNCATE ON lifecycle.history
	FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._count_trigger('events');

CREATE TRIGGER count_insert AFTER INSERT ON lifecycle.outbox
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('messages');
CREATE TRIGGER count_update AFTER UPDATE ON lifecycle.outbox
	FOR EACH ROW WHEN (lifecycle._counting() AND
		(OLD.user_id, OLD.channel, OLD.status) IS DISTINCT FROM
		(NEW.user_id, NEW.channel, NEW.status))
	EXECUTE FUNCTION lifecycle._count_trigger('messages');
CREATE TRIGGER count_delete AFTER DELETE ON lifecycle.outbox
	FOR EACH ROW WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('messages');
CREATE TRIGGER count_write AFTER INSERT OR UPDATE OR DELETE ON lifecycle.outbox
	FOR EACH STATEMENT WHEN (lifecycle._counting())
	EXECUTE FUNCTION lifecycle._count_trigger('messages');
CREATE TRIGGER count_truncate AFTER TRUNCATE ON lifecycle.outbox
	FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._count_trigger('messages');
