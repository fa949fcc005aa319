-- lifecycle: views for DBAs and auditors.  None shows e-mail or attrs;
-- rows of tenants the acting role is not granted are hidden.

-- Per tenant, policy and state: how many, since when, what falls due next.
CREATE VIEW lifecycle.retention_report AS
SELECT u.tenant, u.policy, u.state,
	   count(*) AS users,
	   min(u.state_since) AS oldest_since,
	   min(u.next_at) FILTER (WHERE NOT u.held) AS next_due,
	   count(*) FILTER (WHERE u.held) AS held
  FROM lifecycle.users u
 WHERE lifecycle._tenant_visible(u.tenant)
 GROUP BY u.tenant, u.policy, u.state;

-- Timers due but not fired (worker down or behind, or a transition that
-- keeps failing: see last_error).
CREATE VIEW lifecycle.overdue AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   @extschema@.lifecycle_now() - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT u.held
   AND lifecycle._tenant_visible(u.tenant);

-- Subjects kept past their policy (an archive, erasure or expiry overdue by
-- more than a minute) and not on legal hold.  Empty while the worker is
-- healthy.
CREATE VIEW lifecycle.violations AS
SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
	   u.next_event AS due_event, u.next_at AS due_at,
	   @extschema@.lifecycle_now() - u.next_at AS overdue_by, u.last_error
  FROM lifecycle.users u
 WHERE u.next_event IN ('expire', 'archive', 'erase')
   AND u.next_at < @extschema@.lifecycle_now() - interval '1 minute'
   AND NOT u.held
   AND lifecycle._tenant_visible(u.tenant);

-- lifecycle.erasures (the evidence table: when, why, by whom; not who) is
-- read directly; row-level security hides other tenants' rows.
ALTER TABLE lifecycle.erasures ENABLE ROW LEVEL SECURITY;
CREATE POLICY erasures_tenant ON lifecycle.erasures FOR SELECT
	USING (lifecycle._tenant_visible(tenant));

-- Legal holds in force.
CREATE VIEW lifecycle.holds AS
SELECT u.id, u.tenant, u.subject, u.state, u.hold_reason AS reason,
	   u.hold_until AS until,
	   (SELECT max(h.at) FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold') AS held_since,
	   (SELECT h.actor FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold'
		 ORDER BY h.at DESC, h.id DESC LIMIT 1) AS held_by
  FROM lifecycle.users u
 WHERE u.held AND lifecycle._tenant_visible(u.tenant);

-- The workers, from shared memory (no rows' pids without preloading).
CREATE VIEW lifecycle.worker_stats AS
SELECT s.worker, s.pid, s.started, s.last_wake, s.batches,
	   s.done AS transitions_total, s.failed AS failed_total,
	   s.errors_total, s.last_error, s.last_error_at, s.lag AS current_lag
  FROM lifecycle._worker_stats() s;
