-- lifecycle 0.2.0 -> 0.3.0
--
-- Every schema change of 0.3.0 lands here as it lands in sql/src/, so that
-- ALTER EXTENSION lifecycle UPDATE gives the same schema as a fresh
-- install (test/t/500_upgrade.pl compares pg_dump --schema-only of both).
-- 0.2.0 is commit b2f4a6e (b2f4a6e817d1a69904efeaa7d92503a08b12b890; the upgrade test builds it from
-- the repository's history).  Installs of 0.1.0 reach 0.3.0 through
-- lifecycle--0.1.0--0.2.0.sql and then this script.  test/t/501_upgrade_0.2.0.pl
-- (and 500 from 0.1.0) checks that every 0.2.0 row comes through unchanged:
-- a section here that changes existing rows on purpose says so in
-- test/perl/LifecycleUpgrade.pm, %MIGRATIONS{'0.2.0--0.3.0'}.

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

-- ---- workflows (issue 17: the workflow language; sql/src/05_workflows.sql) ----

CREATE TABLE lifecycle.workflows (
	name		text NOT NULL,
	version		int NOT NULL CHECK (version > 0),
	-- as stored: validated, proved, defaults filled in
	definition	jsonb NOT NULL,
	created_at	timestamptz NOT NULL,
	built_in	boolean NOT NULL DEFAULT false,
	PRIMARY KEY (name, version)
);

-- Versions are immutable: nobody, the extension's own functions included,
-- may change or remove one (instances and evidence name them).
CREATE FUNCTION lifecycle._workflows_immutable()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'workflow versions cannot be changed or removed'
		USING ERRCODE = '55000',
			  HINT = 'Define a new version with lifecycle_define_workflow().';
END
$$;

CREATE TRIGGER workflows_immutable BEFORE UPDATE OR DELETE ON lifecycle.workflows
	FOR EACH ROW EXECUTE FUNCTION lifecycle._workflows_immutable();
CREATE TRIGGER workflows_no_truncate BEFORE TRUNCATE ON lifecycle.workflows
	FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._workflows_immutable();

-- The built-in versions come with the extension; dumps keep the others.
SELECT pg_catalog.pg_extension_config_dump('lifecycle.workflows', 'WHERE NOT built_in');

GRANT SELECT ON lifecycle.workflows TO lifecycle_auditor;

-- The loader of the built-in definitions below (granted to nobody).
CREATE FUNCTION lifecycle._install_workflow(name text, definition jsonb)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_install_workflow'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_define_workflow(name text, definition jsonb)
RETURNS int
AS 'MODULE_PATHNAME', 'lifecycle_define_workflow'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_workflow(name text, version int = NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'lifecycle_workflow'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- For tests: the retention bound of each state of a definition at its
-- defaults overridden by params, before any policy names the workflow.
CREATE FUNCTION lifecycle._workflow_bounds(definition jsonb, params jsonb = NULL)
RETURNS TABLE (state text, bound interval, path text[])
AS 'MODULE_PATHNAME', 'lifecycle_workflow_bounds'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION lifecycle._workflows_immutable(),
	lifecycle._install_workflow(text, jsonb),
	@extschema@.lifecycle_define_workflow(text, jsonb),
	@extschema@.lifecycle_workflow(text, int),
	lifecycle._workflow_bounds(jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_define_workflow(text, jsonb),
	lifecycle._workflow_bounds(jsonb, jsonb)
TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_workflow(text, int)
TO lifecycle_auditor;

-- The built-in workflows, version 1: sql/workflows/*.json, embedded here
-- by scripts/assemble-sql.sh.
-- @builtin-workflows begin
SELECT lifecycle._install_workflow('dsar', $wf$
{
  "description": "Data subject requests (GDPR Art. 12(3), 12(4)): answered within one month of receipt, extendable once by two further months, the subject told of the extension; closed requests are kept as evidence, then erased.",
  "params": {
    "respond_within": "1 mon",
    "extend_by": "2 mons",
    "reminders": [
      "7 days",
      "1 day"
    ],
    "keep_after_close": "2 years"
  },
  "messages": {
    "request_received": {
      "subject": "We have received your data protection request",
      "text": "Hello,\n\nWe have received your request concerning your personal data.\nWe will answer it without undue delay, and at the latest by {{deadline_date}}.\nIf we need more time, we will tell you before that date and explain why.\n\nData Protection Officer\n"
    },
    "request_reminder": {
      "subject": "Your data protection request: our answer is due by {{deadline_date}}",
      "text": "Hello,\n\nWe are still working on your request concerning your personal data.\nWe will answer it at the latest by {{deadline_date}}.\n\nData Protection Officer\n"
    },
    "request_extended": {
      "subject": "We need more time to answer your data protection request",
      "text": "Hello,\n\nYour request concerning your personal data needs more time than the\nusual one month, because of its complexity or the number of requests we\nhave received. As Article 12(3) of the GDPR allows, we are extending the\ntime to answer by up to two further months.\nWe will answer it at the latest by {{deadline_date}}.\n\nData Protection Officer\n"
    },
    "request_answered": {
      "subject": "We have answered your data protection request",
      "text": "Hello,\n\nWe have answered your request concerning your personal data.\nIf you are not satisfied with our answer, you have the right to lodge a\ncomplaint with a supervisory authority.\n\nData Protection Officer\n"
    },
    "request_refused": {
      "subject": "We cannot act on your data protection request",
      "text": "Hello,\n\nWe are not able to act on your request concerning your personal data.\nOur answer explains why. You have the right to lodge a complaint with a\nsupervisory authority and to seek a judicial remedy.\n\nData Protection Officer\n"
    },
    "request_overdue": {
      "subject": "Our answer to your data protection request is late",
      "text": "Hello,\n\nWe have not answered your request concerning your personal data within\nthe time the law allows: one month from its receipt, or three months where\nwe told you that we needed longer. We apologise for the delay.\nWe will answer it as soon as possible. You have the right to lodge a\ncomplaint with a supervisory authority.\n\nData Protection Officer\n"
    }
  },
  "states": {
    "received": {
      "timer": {
        "event": "respond_due",
        "after": "respond_within",
        "from": "started",
        "to": "overdue",
        "message": "request_overdue",
        "deadline": "respond",
        "reminders": {
          "before": "reminders",
          "event": "respond_reminder",
          "message": "request_reminder"
        }
      }
    },
    "extended": {
      "hint": "A request can be extended once: answer or refuse it.",
      "timer": {
        "event": "respond_due",
        "after": [
          "respond_within",
          "extend_by"
        ],
        "from": "started",
        "to": "overdue",
        "message": "request_overdue",
        "deadline": "respond",
        "reminders": {
          "before": "reminders",
          "event": "respond_reminder",
          "message": "request_reminder"
        }
      }
    },
    "answered": {
      "timer": {
        "event": "close_due",
        "after": "keep_after_close",
        "from": "due",
        "to": "erased",
        "deadline": "close"
      }
    },
    "refused": {
      "timer": {
        "event": "close_due",
        "after": "keep_after_close",
        "from": "due",
        "to": "erased",
        "deadline": "close"
      }
    },
    "overdue": {
      "hint": "An overdue request can be answered or refused, not extended.",
      "timer": {
        "event": "close_due",
        "after": "keep_after_close",
        "from": "due",
        "to": "erased",
        "deadline": "close"
      }
    }
  },
  "events": {
    "request": [
      {
        "from": [
          "none"
        ],
        "to": "received",
        "message": "request_received"
      }
    ],
    "extend": [
      {
        "from": [
          "received"
        ],
        "to": "extended",
        "message": "request_extended"
      },
      {
        "from": [
          "extended"
        ],
        "effect": "refuse",
        "hint": "A request can be extended once."
      },
      {
        "from": [
          "overdue"
        ],
        "effect": "refuse",
        "hint": "An overdue request can be answered, not extended."
      }
    ],
    "answer": [
      {
        "from": [
          "received",
          "extended",
          "overdue"
        ],
        "to": "answered",
        "message": "request_answered",
        "hook": "answer"
      },
      {
        "from": [
          "answered"
        ],
        "effect": "noop"
      }
    ],
    "refuse": [
      {
        "from": [
          "received",
          "extended",
          "overdue"
        ],
        "to": "refused",
        "message": "request_refused",
        "hook": "refuse"
      },
      {
        "from": [
          "refused"
        ],
        "effect": "noop"
      }
    ]
  }
}
$wf$::jsonb);
SELECT lifecycle._install_workflow('user', $wf$
{
  "description": "The user lifecycle of 0.2.0: invited, active, dormant, completed, archived, expired, erased (README.md, \"The lifecycle\").",
  "params": {
    "invite_reminders": [
      "3 days",
      "7 days"
    ],
    "invite_expires_after": "14 days",
    "dormant_after": "90 days",
    "archive_after": "30 days",
    "archive_reminders": [
      "7 days",
      "1 day"
    ],
    "erase_after": "365 days",
    "expired_erase_after": "30 days"
  },
  "messages": {
    "invite": {
      "subject": "You are invited to {{tenant}}",
      "text": "Hello,\n\nYou have been invited to open an account with {{tenant}}.\nTo accept, register with this e-mail address: {{link_base}}\n"
    },
    "invite_reminder": {
      "subject": "Reminder: your invitation to {{tenant}} is waiting",
      "text": "Hello,\n\nYou were invited to open an account with {{tenant}} and have not registered yet.\nTo accept, register with this e-mail address: {{link_base}}\n"
    },
    "archive_notice": {
      "subject": "Your {{tenant}} account will be archived on {{archive_date}}",
      "text": "Hello,\n\nYour account {{subject}} with {{tenant}} has not been used for a while.\nFollowing our retention policy it will be archived on {{archive_date}}.\nTo keep it, simply sign in before then: {{link_base}}\n"
    },
    "archive_reminder": {
      "subject": "Reminder: your {{tenant}} account will be archived on {{archive_date}}",
      "text": "Hello,\n\nThis is a reminder that your account {{subject}} with {{tenant}} will be archived on {{archive_date}}.\nTo keep it, simply sign in before then: {{link_base}}\n"
    },
    "archived": {
      "subject": "Your {{tenant}} account has been archived",
      "text": "Hello,\n\nYour account {{subject}} with {{tenant}} has been archived following our retention policy.\nIf you want to come back, you can ask for it to be restored: {{link_base}}\n"
    },
    "restored": {
      "subject": "Welcome back to {{tenant}}",
      "text": "Hello,\n\nYour account {{subject}} with {{tenant}} has been restored.\nFor your security, set a new password before you sign in: {{link_base}}\n"
    }
  },
  "states": {
    "invited": {
      "hint": "Use lifecycle_register() first.",
      "timer": {
        "event": "expire",
        "after": "invite_expires_after",
        "from": "entered",
        "to": "expired",
        "deadline": "expire",
        "reminders": {
          "after": "invite_reminders",
          "event": "invite_reminder",
          "message": "invite_reminder"
        }
      }
    },
    "active": {
      "hint": "Use lifecycle_complete() or lifecycle_archive().",
      "timer": {
        "event": "dormant",
        "after": "dormant_after",
        "from": "last_seen",
        "to": "dormant",
        "message": "archive_notice",
        "deadline": "dormant"
      }
    },
    "dormant": {
      "hint": "Use lifecycle_touch() to reactivate the account.",
      "timer": {
        "event": "archive_due",
        "after": "archive_after",
        "from": "entered",
        "to": "archived",
        "message": "archived",
        "hook": "archive",
        "deadline": "archive",
        "reminders": {
          "before": "archive_reminders",
          "event": "archive_reminder",
          "message": "archive_reminder"
        }
      }
    },
    "completed": {
      "hint": "Use lifecycle_touch() to reactivate the account.",
      "timer": {
        "event": "archive_due",
        "after": "archive_after",
        "from": "entered",
        "to": "archived",
        "message": "archived",
        "hook": "archive",
        "deadline": "archive",
        "reminders": {
          "before": "archive_reminders",
          "event": "archive_reminder",
          "message": "archive_reminder"
        }
      }
    },
    "archived": {
      "hint": "Use lifecycle_restore() to bring the account back.",
      "timer": {
        "event": "erase_due",
        "after": "erase_after",
        "from": "due",
        "to": "erased",
        "hook": "erase",
        "deadline": "erase"
      }
    },
    "expired": {
      "hint": "Use lifecycle_invite() to invite the subject again.",
      "timer": {
        "event": "erase_due",
        "after": "expired_erase_after",
        "from": "due",
        "to": "erased",
        "hook": "erase",
        "deadline": "erase"
      }
    }
  },
  "events": {
    "invite": [
      {
        "from": [
          "none",
          "expired"
        ],
        "to": "invited",
        "message": "invite"
      },
      {
        "from": [
          "invited",
          "active",
          "dormant",
          "completed"
        ],
        "effect": "noop"
      }
    ],
    "register": [
      {
        "from": [
          "invited"
        ],
        "to": "active"
      },
      {
        "from": [
          "active"
        ],
        "effect": "noop"
      }
    ],
    "touch": [
      {
        "from": [
          "active"
        ],
        "effect": "touch"
      },
      {
        "from": [
          "dormant",
          "completed"
        ],
        "to": "active"
      }
    ],
    "complete": [
      {
        "from": [
          "active",
          "dormant"
        ],
        "to": "completed",
        "message": "archive_notice"
      },
      {
        "from": [
          "completed"
        ],
        "effect": "noop"
      }
    ],
    "archive": [
      {
        "from": [
          "active",
          "dormant",
          "completed",
          "invited"
        ],
        "to": "archived",
        "message": "archived",
        "hook": "archive",
        "role": "admin"
      },
      {
        "from": [
          "archived"
        ],
        "effect": "noop",
        "role": "admin"
      },
      {
        "from": [
          "expired"
        ],
        "effect": "refuse",
        "hint": "Use lifecycle_erase() to remove an expired invitation.",
        "role": "admin"
      }
    ],
    "restore": [
      {
        "from": [
          "archived",
          "dormant",
          "completed"
        ],
        "to": "active",
        "message": "restored",
        "hook": "restore"
      },
      {
        "from": [
          "active"
        ],
        "effect": "noop"
      }
    ]
  }
}
$wf$::jsonb);
-- @builtin-workflows end

-- ---------------------------------------------------------------------
-- Telemetry (issue 19): OpenTelemetry traces and counters.
-- ---------------------------------------------------------------------

-- A random trace id per instance; every existing row gets its own.
ALTER TABLE lifecycle.users
	ADD COLUMN trace_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
-- The application's traceparent of the transaction that wrote the row.
ALTER TABLE lifecycle.history
	ADD COLUMN traceparent text DEFAULT NULLIF(pg_catalog.current_setting('lifecycle.traceparent', true), '');

CREATE FUNCTION lifecycle._otel_stats(
	OUT spans_exported bigint, OUT spans_dropped bigint,
	OUT failed_requests bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'lifecycle_otel_stats'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION lifecycle._otel_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._otel_stats() TO lifecycle_auditor;

CREATE OR REPLACE VIEW lifecycle.worker_stats AS
SELECT s.worker, s.pid, s.started, s.last_wake, s.batches,
	   s.done AS transitions_total, s.failed AS failed_total,
	   s.errors_total, s.last_error, s.last_error_at, s.lag AS current_lag,
	   o.spans_exported AS spans_exported_total,
	   o.spans_dropped AS spans_dropped_total,
	   o.failed_requests AS export_failed_requests_total
  FROM lifecycle._worker_stats() s
  LEFT JOIN lifecycle._otel_stats() o ON s.worker = 'exporter';

CREATE TABLE lifecycle.otel_cursor (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	history_id	bigint NOT NULL,
	updated_at	timestamptz NOT NULL
);
REVOKE ALL ON lifecycle.otel_cursor FROM PUBLIC;

CREATE VIEW lifecycle._otel_transitions AS
SELECT h.id, 'user'::text AS workflow, h.user_id AS instance_id,
	   u.tenant, h.event, h.from_state::text AS from_state,
	   h.to_state::text AS to_state, h.actor, u.policy, u.policy_version,
	   h.at, h.due_at, h.traceparent,
	   pg_catalog.replace(u.trace_id::text, '-', '') AS trace_id
  FROM lifecycle.history h
  LEFT JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) h.user_id;
REVOKE ALL ON lifecycle._otel_transitions FROM PUBLIC;

-- ---------------------------------------------------------------------
-- Issue 20 (scale): exact counts kept as they change (67_counts.sql,
-- src/store/counts.c); lifecycle.metrics and lifecycle.retention_report
-- read them, and the report's earliest times come from three indexes
-- probed per group.  The triggers are created before the counts are
-- initialised: CREATE TRIGGER locks users, history and outbox against
-- writes until this transaction commits, so the full count below is
-- exact, and every later statement of this script is counted.
CREATE TABLE lifecycle.counts (
	family		text NOT NULL CHECK (family IN ('users', 'events', 'messages', 'lateness')),
	tenant		text NOT NULL,
	key1		text NOT NULL,
	key2		text NOT NULL,
	n			bigint NOT NULL,
	held		bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (family, tenant, key1, key2)
);

-- Deltas not folded yet: appended by the triggers, deleted by the fold.
CREATE TABLE lifecycle.count_deltas (
	family		text NOT NULL,
	tenant		text NOT NULL,
	key1		text NOT NULL,
	key2		text NOT NULL,
	n			bigint NOT NULL,
	held		bigint NOT NULL DEFAULT 0
);
REVOKE ALL ON lifecycle.counts, lifecycle.count_deltas FROM PUBLIC;

CREATE INDEX users_group_since ON lifecycle.users (tenant, policy, state, state_since)
	WHERE state IS NOT NULL;
CREATE INDEX users_group_next_at ON lifecycle.users (tenant, policy, state, next_at)
	WHERE next_at IS NOT NULL AND NOT held AND state IS NOT NULL;
CREATE INDEX users_group_deadline_at ON lifecycle.users (tenant, policy, state, deadline_at)
	INCLUDE (held, hold_until) WHERE deadline_at IS NOT NULL AND state IS NOT NULL;

-- The trigger (argument: the family).  SECURITY DEFINER: the deltas are
-- written as the owner whoever changes the rows.  Row-level: each row's
-- delta is added to its group in memory (an update that leaves the row in
-- its group is skipped by WHEN); statement-level: the groups are written.
-- lifecycle._counting() is false while a statement of the store that
-- writes its own deltas runs (a batch of transitions, an invitation, an
-- adoption): its rows cost no trigger call (src/store/counts.c,
-- 77_count_triggers.sql).
CREATE FUNCTION lifecycle._count_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_count_trigger'
LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION lifecycle._count_trigger() FROM PUBLIC;

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

-- The counts from a full count.
INSERT INTO lifecycle.counts (family, tenant, key1, key2, n, held)
SELECT 'users', u.tenant, u.policy, u.state::text, count(*),
	   count(*) FILTER (WHERE u.held)
  FROM lifecycle.users u
 GROUP BY u.tenant, u.policy, u.state
UNION ALL
SELECT 'events', coalesce(u.tenant, ''), h.event, '', count(*), 0
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 GROUP BY 2, h.event
UNION ALL
SELECT 'messages', coalesce(u.tenant, ''), coalesce(o.channel, ''), o.status,
	   count(*), 0
  FROM lifecycle.outbox o LEFT JOIN lifecycle.users u ON u.id = o.user_id
 GROUP BY 2, 3, o.status
UNION ALL
SELECT 'lateness', coalesce(u.tenant, ''),
	   CASE WHEN h.at - h.due_at <= interval '1 second' THEN '1'
			WHEN h.at - h.due_at <= interval '10 seconds' THEN '10'
			WHEN h.at - h.due_at <= interval '1 minute' THEN '60'
			WHEN h.at - h.due_at <= interval '5 minutes' THEN '300'
			WHEN h.at - h.due_at <= interval '1 hour' THEN '3600'
			WHEN h.at - h.due_at <= interval '1 day' THEN '86400'
			ELSE '+Inf' END, '', count(*),
	   sum((extract(epoch FROM h.at - h.due_at) * 1000000)::bigint)
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 WHERE h.due_at IS NOT NULL
 GROUP BY 2, 3;

-- (retention_report, overdue and metrics read the counts from the instances
-- section on: it drops and creates them again for the state domain.)

-- Issue 20 (scale): users_tenant_subject is partial, so an erased user
-- (subject NULL) leaves the index instead of keeping a (tenant, NULL) key.
DROP INDEX lifecycle.users_tenant_subject;
CREATE UNIQUE INDEX users_tenant_subject ON lifecycle.users (tenant, subject)
	WHERE subject IS NOT NULL;

-- engine (issue 17): policies name their workflow version and keep their
-- hooks as a map from hook key to function; every 0.2.0 policy belongs to
-- the user workflow, version 1.  The 0.2.0 hook columns stay, filled from
-- the map for the user workflow.
-- (Columns added without a default and filled, so that no "missing
-- value" is left in the catalog: the schema equals a fresh install's.)
ALTER TABLE lifecycle.policies
	ADD COLUMN workflow text,
	ADD COLUMN workflow_version int,
	ADD COLUMN hook_keys text[],
	ADD COLUMN hook_functions regprocedure[];
UPDATE lifecycle.policies p SET
	workflow = 'user',
	workflow_version = 1,
	hook_keys = ARRAY(SELECT k FROM (VALUES (1, 'archive', p.archive_hook),
		(2, 'restore', p.restore_hook), (3, 'erase', p.erase_hook)) h(o, k, f)
		WHERE f IS NOT NULL ORDER BY o),
	hook_functions = ARRAY(SELECT f FROM (VALUES (1, 'archive', p.archive_hook),
		(2, 'restore', p.restore_hook), (3, 'erase', p.erase_hook)) h(o, k, f)
		WHERE f IS NOT NULL ORDER BY o);
ALTER TABLE lifecycle.policies
	ALTER COLUMN workflow SET DEFAULT 'user',
	ALTER COLUMN workflow SET NOT NULL,
	ALTER COLUMN workflow_version SET DEFAULT 1,
	ALTER COLUMN workflow_version SET NOT NULL,
	ALTER COLUMN hook_keys SET DEFAULT '{}',
	ALTER COLUMN hook_keys SET NOT NULL,
	ALTER COLUMN hook_functions SET DEFAULT '{}',
	ALTER COLUMN hook_functions SET NOT NULL;

-- engine (issue 17): compiled workflow versions are cached per backend;
-- lifecycle.retention_bounds (sql/src/66_bounds.sql).
CREATE TRIGGER cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON lifecycle.workflows FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._cache_invalidate();

CREATE FUNCTION lifecycle._retention_bounds()
RETURNS TABLE (workflow text, workflow_version int, policy text,
			   policy_version int, state text, bound interval, path text[])
AS 'MODULE_PATHNAME', 'lifecycle_retention_bounds'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE VIEW lifecycle.retention_bounds AS
	SELECT workflow, workflow_version, policy, policy_version, state, bound, path
	  FROM lifecycle._retention_bounds();

REVOKE ALL ON FUNCTION lifecycle._retention_bounds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._retention_bounds() TO lifecycle_auditor;
GRANT SELECT ON lifecycle.retention_bounds TO lifecycle_auditor;

-- ---------------------------------------------------------------------
-- engine (issue 17): instances of any workflow (sql/src/15_instances.sql).
-- lifecycle.users holds every instance: workflow, workflow_version, key and
-- data are new; created_at is the "started" anchor.  Any workflow's
-- states must fit: lifecycle.state, 0.2.0's enum of the user lifecycle's
-- states, becomes a domain over text of the same name, so the columns
-- (users.state, history.from_state and to_state, erasures.state_before)
-- and the functions typed with it keep their types' name.  The views
-- that read those columns and the functions that return the type are
-- created again.  Every existing row is an instance of the user
-- workflow, version 1, key ''.
ALTER TYPE lifecycle.state RENAME TO _state_0_2_0;
CREATE DOMAIN lifecycle.state AS text COLLATE "C";
DROP VIEW lifecycle.retention_report, lifecycle.overdue, lifecycle.violations,
	lifecycle.holds, lifecycle.audit_trail, lifecycle.metrics,
	lifecycle._otel_transitions;
DROP FUNCTION @extschema@.lifecycle_register(text, text),
	@extschema@.lifecycle_touch(text, text),
	@extschema@.lifecycle_complete(text, text),
	@extschema@.lifecycle_restore(text, text),
	@extschema@.lifecycle_archive(text, text),
	@extschema@.lifecycle_status(text, text),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text);
-- (perf, 0.3.0 no regression) A column a trigger's WHEN reads cannot
-- change type: the users' count_update trigger (77_count_triggers.sql) is
-- dropped for the ALTER and created again below, in the same transaction
-- (the table stays locked: no row goes uncounted).
DROP TRIGGER count_update ON lifecycle.users;
ALTER TABLE lifecycle.users
	ALTER COLUMN state TYPE lifecycle.state USING state::text,
	ADD COLUMN workflow text COLLATE "C" NOT NULL DEFAULT 'user',
	ADD COLUMN workflow_version int NOT NULL DEFAULT 1,
	ADD COLUMN key text NOT NULL DEFAULT '',
	ADD COLUMN data jsonb NOT NULL DEFAULT '{}';
ALTER TABLE lifecycle.history
	ALTER COLUMN from_state TYPE lifecycle.state USING from_state::text,
	ALTER COLUMN to_state TYPE lifecycle.state USING to_state::text;
ALTER TABLE lifecycle.erasures
	ALTER COLUMN state_before TYPE lifecycle.state USING state_before::text;
CREATE TRIGGER count_update AFTER UPDATE ON lifecycle.users
	FOR EACH ROW WHEN (lifecycle._counting() AND
		(OLD.tenant, OLD.policy, OLD.state, OLD.held) IS DISTINCT FROM
		(NEW.tenant, NEW.policy, NEW.state, NEW.held))
	EXECUTE FUNCTION lifecycle._count_trigger('users');
DROP TYPE lifecycle._state_0_2_0;
DROP INDEX lifecycle.users_tenant_subject;
CREATE UNIQUE INDEX users_tenant_subject ON lifecycle.users (tenant, subject, workflow, key)
	WHERE subject IS NOT NULL;

CREATE FUNCTION @extschema@.lifecycle_register(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_register'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_touch(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_touch'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_complete(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_complete'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_restore(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_restore'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_archive(subject text, tenant text = 'default')
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_archive'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_status(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, state lifecycle.state, since timestamptz,
	next_event text, next_at timestamptz, held boolean, policy text,
	policy_version int, deadline_event text, deadline_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.state, u.state_since, u.next_event, u.next_at,
			   -- a hold whose until has passed is lapsed, written or not
			   u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()),
			   u.policy, u.policy_version, u.deadline_event, u.deadline_at
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_status.tenant
		   AND u.subject = lifecycle_status.subject AND u.workflow = 'user' AND u.key = '';
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
END
$$;

CREATE FUNCTION @extschema@.lifecycle_update(subject text, tenant text = 'default',
	email text = NULL, attrs jsonb = NULL, region text = NULL, policy text = NULL)
RETURNS lifecycle.state
AS 'MODULE_PATHNAME', 'lifecycle_update'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION @extschema@.lifecycle_register(text, text),
	@extschema@.lifecycle_touch(text, text),
	@extschema@.lifecycle_complete(text, text),
	@extschema@.lifecycle_restore(text, text),
	@extschema@.lifecycle_archive(text, text),
	@extschema@.lifecycle_status(text, text),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_register(text, text),
	@extschema@.lifecycle_touch(text, text),
	@extschema@.lifecycle_complete(text, text),
	@extschema@.lifecycle_restore(text, text),
	@extschema@.lifecycle_update(text, text, text, jsonb, text, text)
TO lifecycle_app;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_status(text, text)
TO lifecycle_app, lifecycle_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_archive(text, text) TO lifecycle_admin;

CREATE VIEW lifecycle.retention_report WITH (security_barrier) AS
WITH lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed: not held for every column below.
	SELECT u.tenant, u.policy, u.state, count(*) AS users,
		   min(u.next_at) AS next_due
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
)
SELECT g.tenant, g.policy, g.state, g.users,
	   (SELECT min(u.state_since) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state) AS oldest_since,
	   LEAST((SELECT min(u.next_at) FROM lifecycle.users u
			   WHERE u.tenant = g.tenant AND u.policy = g.policy
				 AND u.state = g.state AND u.next_at IS NOT NULL AND NOT u.held),
			 l.next_due) AS next_due,
	   g.held - coalesce(l.users, 0) AS held,
	   (SELECT min(u.deadline_at) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state AND u.deadline_at IS NOT NULL) AS next_deadline,
	   (SELECT count(*) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy AND u.state = g.state
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) AS violations
  FROM (SELECT c.tenant, c.key1 AS policy, c.key2 AS state,
			   sum(c.n)::bigint AS users, sum(c.held)::bigint AS held
		  FROM (SELECT k.tenant, k.key1, k.key2, k.n, k.held
				  FROM lifecycle.counts k WHERE k.family = 'users'
				UNION ALL
				SELECT d.tenant, d.key1, d.key2, d.n, d.held
				  FROM lifecycle.count_deltas d WHERE d.family = 'users') c
		 GROUP BY c.tenant, c.key1, c.key2
		HAVING sum(c.n) <> 0
		OFFSET 0) g
  LEFT JOIN lapsed l
	ON l.tenant = g.tenant AND l.policy = g.policy AND l.state = g.state
 WHERE lifecycle._tenant_visible(g.tenant);

CREATE VIEW lifecycle.overdue WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   (SELECT @extschema@.lifecycle_now()) - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL
			OR u.hold_until > (SELECT @extschema@.lifecycle_now())))
   AND lifecycle._tenant_visible(u.tenant);

CREATE VIEW lifecycle.violations WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
	   u.deadline_event, u.deadline_at,
	   @extschema@.lifecycle_now() - u.deadline_at AS overdue_by,
	   u.next_event, u.next_at, u.last_error
  FROM lifecycle.users u
 WHERE ((NOT u.held
		 AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute')
		OR (u.held AND u.hold_until <= @extschema@.lifecycle_now()
			AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'))
   AND lifecycle._tenant_visible(u.tenant);

CREATE VIEW lifecycle.holds WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.hold_reason AS reason,
	   u.hold_until AS until,
	   (SELECT max(h.at) FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold') AS held_since,
	   (SELECT h.actor FROM lifecycle.history h
		 WHERE h.user_id = u.id AND h.event = 'hold'
		 ORDER BY h.at DESC, h.id DESC LIMIT 1) AS held_by
  FROM lifecycle.users u
 WHERE u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now())
   AND lifecycle._tenant_visible(u.tenant);

CREATE VIEW lifecycle.audit_trail WITH (security_barrier) AS
SELECT h.id, h.user_id, u.tenant, u.policy, u.state AS current_state,
	   h.at, h.due_at, h.from_state, h.to_state, h.event, h.actor, h.detail
  FROM lifecycle.history h
  JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) h.user_id
 WHERE lifecycle._tenant_visible(u.tenant);

CREATE VIEW lifecycle.metrics AS
WITH counted AS MATERIALIZED (
	-- lifecycle.counts and the deltas not folded yet (67_counts.sql).
	SELECT c.family, c.tenant, c.key1, c.key2,
		   sum(c.n)::bigint AS n, sum(c.held)::bigint AS held
	  FROM (SELECT k.family, k.tenant, k.key1, k.key2, k.n, k.held
			  FROM lifecycle.counts k
			UNION ALL
			SELECT d.family, d.tenant, d.key1, d.key2, d.n, d.held
			  FROM lifecycle.count_deltas d) c
	 GROUP BY c.family, c.tenant, c.key1, c.key2
	HAVING sum(c.n) <> 0
), visible AS MATERIALIZED (
	SELECT c.* FROM counted c WHERE lifecycle._tenant_visible(c.tenant)
), lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed (users_hold_until): not held.
	SELECT u.tenant, u.policy, u.state::text AS state, count(*) AS users
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
), visible_states AS MATERIALIZED (
	SELECT c.tenant, c.key1 AS policy, c.key2 AS state, c.n AS users,
		   c.held - coalesce(l.users, 0) AS held
	  FROM visible c
	  LEFT JOIN lapsed l
		ON l.tenant = c.tenant AND l.policy = c.key1 AND l.state = c.key2
	 WHERE c.family = 'users'
), transitions AS MATERIALIZED (
	SELECT c.key1 AS event, sum(c.n) AS n
	  FROM visible c
	 WHERE c.family = 'events'
	 GROUP BY c.key1
	HAVING sum(c.n) <> 0
), late AS MATERIALIZED (
	-- The lateness of timers (at - due_at) counted per bucket as history
	-- rows are written (family "lateness": key1 the least bucket that
	-- holds it, held the sum in microseconds).
	SELECT c.key1 AS le, sum(c.n) AS n, sum(c.held) AS us
	  FROM visible c
	 WHERE c.family = 'lateness'
	 GROUP BY c.key1
), lateness AS MATERIALIZED (
	SELECT coalesce(sum(l.n), 0) AS timers,
		   coalesce(sum(l.us), 0) / 1000000.0 AS late_sum,
		   coalesce(sum(l.n) FILTER (WHERE l.le = '1'), 0) AS le_1,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10')), 0) AS le_10,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60')), 0) AS le_60,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300')), 0) AS le_300,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600')), 0) AS le_3600,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600', '86400')), 0) AS le_86400
	  FROM late l
), group_timers AS MATERIALIZED (
	-- Per group of visible users (from the counts), index-only counts:
	-- due timers of users not on hold (users_group_next_at) and users past
	-- their deadline by over a minute under no hold in force, the set of
	-- lifecycle.violations (users_group_deadline_at, which includes held
	-- and hold_until): work in proportion to the late users, not to all.
	-- The clock is an index condition (read once per probe; the planner
	-- sees its value, so it expects few rows and plans no JIT).
	SELECT c.tenant, t.due, t.oldest, v.violations
	  FROM visible c
	 CROSS JOIN LATERAL (
		SELECT count(*) AS due, min(u.next_at) AS oldest
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.next_at <= @extschema@.lifecycle_now() AND NOT u.held) t
	 CROSS JOIN LATERAL (
		SELECT count(*) AS violations
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) v
	 WHERE c.family = 'users'
), lapsed_due AS MATERIALIZED (
	-- Held users whose hold has lapsed and whose timer is due (few:
	-- users_hold_until).
	SELECT u.tenant, count(*) AS due, min(u.next_at) AS oldest
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.next_at <= @extschema@.lifecycle_now()
	   AND lifecycle._tenant_visible(u.tenant)
	 GROUP BY u.tenant
), visible_due AS MATERIALIZED (
	SELECT g.tenant, g.due AS overdue, g.oldest FROM group_timers g
	UNION ALL
	SELECT l.tenant, l.due, l.oldest FROM lapsed_due l
), outbox AS MATERIALIZED (
	SELECT c.key1 AS channel, c.key2 AS status, sum(c.n) AS messages
	  FROM visible c
	 WHERE c.family = 'messages'
	 GROUP BY c.key1, c.key2
	HAVING sum(c.n) <> 0
), workers AS MATERIALIZED (
	SELECT w.* FROM lifecycle._worker_stats() w
), otel AS MATERIALIZED (
	SELECT o.* FROM lifecycle._otel_stats() o
)
SELECT 'lifecycle_state_users'::text AS name,
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state) AS labels,
	   s.users::float8 AS value
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_state_held',
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state),
	   s.held::float8
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_transitions_total',
	   pg_catalog.jsonb_build_object('event', t.event),
	   t.n::float8
  FROM transitions t
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_bucket',
	   pg_catalog.jsonb_build_object('le', b.le), b.n::float8
  FROM lateness l
 CROSS JOIN LATERAL (VALUES ('1', l.le_1), ('10', l.le_10), ('60', l.le_60),
							('300', l.le_300), ('3600', l.le_3600),
							('86400', l.le_86400), ('+Inf', l.timers)) b(le, n)
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_sum', '{}'::jsonb, l.late_sum::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_count', '{}'::jsonb, l.timers::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timers_overdue', '{}'::jsonb,
	   coalesce(sum(d.overdue), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_lag_seconds', '{}'::jsonb,
	   coalesce(extract(epoch FROM @extschema@.lifecycle_now() - min(d.oldest)), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_violations', '{}'::jsonb,
	   coalesce(sum(g.violations), 0)::float8
  FROM group_timers g
UNION ALL
SELECT 'lifecycle_outbox_messages',
	   pg_catalog.jsonb_build_object('channel', o.channel, 'status', o.status),
	   o.messages::float8
  FROM outbox o
UNION ALL
SELECT 'lifecycle_dead_letters',
	   pg_catalog.jsonb_build_object('channel', o.channel),
	   o.messages::float8
  FROM outbox o
 WHERE o.status = 'dead'
UNION ALL
SELECT 'lifecycle_worker_up', pg_catalog.jsonb_build_object('worker', w.worker),
	   (w.pid IS NOT NULL)::int::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_pid', pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(w.pid, 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_batches_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.batches::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_transitions_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.done::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_failed_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.failed::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_errors_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.errors_total::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_lag_seconds',
	   pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(extract(epoch FROM w.lag), 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_otel_spans_exported_total', '{}'::jsonb, o.spans_exported::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_spans_dropped_total', '{}'::jsonb, o.spans_dropped::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_failed_requests_total', '{}'::jsonb, o.failed_requests::float8
  FROM otel o;


COMMENT ON VIEW lifecycle.metrics IS
	'One row per Prometheus sample (name, labels, value); see contrib/prometheus-postgres-exporter/.';

CREATE VIEW lifecycle._otel_transitions AS
SELECT h.id, u.workflow, h.user_id AS instance_id,
	   u.tenant, h.event, h.from_state::text AS from_state,
	   h.to_state::text AS to_state, h.actor, u.policy, u.policy_version,
	   h.at, h.due_at, h.traceparent,
	   pg_catalog.replace(u.trace_id::text, '-', '') AS trace_id
  FROM lifecycle.history h
  LEFT JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) h.user_id;

REVOKE ALL ON lifecycle._otel_transitions FROM PUBLIC;
GRANT SELECT ON lifecycle.retention_report, lifecycle.overdue, lifecycle.violations,
	lifecycle.holds, lifecycle.audit_trail, lifecycle.metrics TO lifecycle_auditor;

CREATE OR REPLACE FUNCTION @extschema@.lifecycle_history(subject text, tenant text = 'default')
RETURNS SETOF lifecycle.history
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	uid bigint;
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	SELECT u.id INTO uid FROM lifecycle.users u
	 WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject
	   AND u.workflow = 'user' AND u.key = '';
	IF uid IS NULL THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
	RETURN QUERY SELECT h.* FROM lifecycle.history h WHERE h.user_id = uid
		ORDER BY h.at, h.id;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.lifecycle_graph(policy text = 'default')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n jsonb;
	out text;
	st text;
	e record;
BEGIN
	IF policy IS NULL THEN
		RAISE EXCEPTION 'policy must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM lifecycle.policies p WHERE p.name = lifecycle_graph.policy) THEN
		RAISE EXCEPTION 'policy "%" does not exist', policy USING ERRCODE = '42704';
	END IF;
	-- Group by tenant first: the visibility check runs once per tenant.
	WITH g AS MATERIALIZED (
		SELECT u.state::text AS s, u.tenant AS t, count(*) AS c FROM lifecycle.users u
		 WHERE u.policy = lifecycle_graph.policy
		 GROUP BY u.state, u.tenant)
	SELECT coalesce(jsonb_object_agg(x.s, x.c), '{}') INTO n FROM (
		SELECT g.s, sum(g.c) AS c FROM g WHERE lifecycle._tenant_visible(g.t)
		 GROUP BY g.s) x;
	-- DOT string: escape backslashes and double quotes of the name.
	out := format(E'digraph lifecycle {\n  label="%s";\n  rankdir=LR;\n  node [shape=box, style=rounded];\n',
				  replace(replace('policy ' || policy, E'\\', E'\\\\'), '"', E'\\"'));
	-- The states in the order of their distance from the start (then of
	-- the edges that first enter them), "erased" last.
	FOR st IN
		WITH RECURSIVE ge AS MATERIALIZED (
			SELECT x.from_state, x.to_state, x.ord
			  FROM lifecycle.transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
					from_state, event, kind, role, to_state, effect, message, hook,
					erases, stopped_by_hold, anchor, interval_key, "interval",
					reminders, reminders_before_deadline, deadline_event, hint, ord)
			 WHERE x.to_state <> 'erased'),
		r(state, depth) AS (
			SELECT ge.to_state, 1 FROM ge WHERE ge.from_state = 'none'
			UNION
			SELECT ge.to_state, r.depth + 1 FROM r JOIN ge ON ge.from_state = r.state
			 WHERE r.depth < 70)
		SELECT f.state FROM (
			SELECT r.state, min(r.depth) AS depth,
				   (SELECT min(ge.ord) FROM ge WHERE ge.to_state = r.state) AS first
			  FROM r GROUP BY r.state
			UNION ALL
			SELECT 'erased', NULL, NULL) f
		 ORDER BY f.depth NULLS LAST, f.first
	LOOP
		out := out || format(E'  %s [label="%s\\n%s"];\n', st, st, coalesce(n ->> st, '0'));
	END LOOP;
	FOR e IN
		SELECT t.from_state, t.to_state, t.dashed,
			   string_agg(t.label, ', ' ORDER BY t.ord) AS label
		  FROM (SELECT x.from_state, x.to_state, x.ord,
					   x.kind = 'call' AND (x.role = 'admin' OR x.erases) AS dashed,
					   CASE WHEN x."interval" IS NOT NULL
							THEN format('%s after %s', x.event, x."interval")
							WHEN x.reminders IS NOT NULL
							THEN format('%s %s%s', x.event, array_to_string(x.reminders, ', '),
										CASE WHEN x.reminders_before_deadline THEN ' before' ELSE '' END)
							WHEN x.role = 'admin' THEN x.event || ' (admin)'
							ELSE x.event END AS label
				  FROM lifecycle.transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
						from_state, event, kind, role, to_state, effect, message, hook,
						erases, stopped_by_hold, anchor, interval_key, "interval",
						reminders, reminders_before_deadline, deadline_event, hint, ord)
				 WHERE x.effect IN ('transition', 'reminder', 'touch')
				   AND x.from_state <> 'none'
				   AND coalesce(cardinality(x.reminders), 1) > 0) t
		 GROUP BY t.from_state, t.to_state, t.dashed
		 ORDER BY min(t.ord)
	LOOP
		out := out || format(E'  %s -> %s [label="%s"%s];\n', e.from_state, e.to_state,
							 e.label, CASE WHEN e.dashed THEN ', style=dashed' ELSE '' END);
	END LOOP;
	RETURN out || E'}\n';
END
$$;

CREATE OR REPLACE FUNCTION lifecycle._prune_history(max_rows int = NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	now_ timestamptz := @extschema@.lifecycle_now();
	n bigint;
BEGIN
	IF max_rows OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'max_rows must not be negative' USING ERRCODE = '22023';
	END IF;
	-- The cutoff is computed as now - retention (not erased_at + retention)
	-- and guarded, so an extreme clock cannot overflow the comparison.
	-- One cutoff per policy version.
	WITH c AS MATERIALIZED (
		SELECT p.name, p.version,
			   lifecycle._minus(now_, (p.definition OPERATOR(pg_catalog.->>)
						'history_retention')::pg_catalog.interval) AS cutoff
		  FROM lifecycle.policies p),
	due AS (
		SELECT h.id
		  FROM lifecycle.history h
		  JOIN lifecycle.users u ON h.user_id OPERATOR(pg_catalog.=) u.id
		  JOIN c ON c.name OPERATOR(pg_catalog.=) u.policy
				AND c.version OPERATOR(pg_catalog.=) u.policy_version
		 WHERE u.state OPERATOR(pg_catalog.=) 'erased'
		   AND u.state_since OPERATOR(pg_catalog.<=) c.cutoff
		   AND lifecycle._tenant_visible(u.tenant)
		 LIMIT max_rows)
	DELETE FROM lifecycle.history h
	 USING due
	 WHERE h.id OPERATOR(pg_catalog.=) due.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION lifecycle._prune_outbox(max_rows int = NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	now_ timestamptz := @extschema@.lifecycle_now();
	n bigint;
BEGIN
	IF max_rows OPERATOR(pg_catalog.<) 0 THEN
		RAISE EXCEPTION 'max_rows must not be negative' USING ERRCODE = '22023';
	END IF;
	-- One cutoff per policy version; versions stored by 0.1.0 have no
	-- outbox_retention and keep the built-in 30 days.
	WITH c AS MATERIALIZED (
		SELECT p.name, p.version,
			   lifecycle._minus(now_, coalesce(p.definition OPERATOR(pg_catalog.->>)
						'outbox_retention', '30 days')::pg_catalog.interval) AS cutoff
		  FROM lifecycle.policies p),
	due AS (
		SELECT o.id
		  FROM lifecycle.outbox o
		  JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) o.user_id
		  JOIN c ON c.name OPERATOR(pg_catalog.=) u.policy
				AND c.version OPERATOR(pg_catalog.=) u.policy_version
		 WHERE o.status IN ('sent', 'dead', 'cancelled', 'blocked', 'unrouted')
		   AND (o.claimed_at IS NULL OR o.status OPERATOR(pg_catalog.=) 'unrouted')
		   AND GREATEST(o.created_at, o.last_attempt_at, o.sent_at, o.next_attempt_at,
						CASE WHEN o.status OPERATOR(pg_catalog.=) 'cancelled'
								  AND u.state OPERATOR(pg_catalog.=) 'erased'
							 THEN u.state_since END)
			   OPERATOR(pg_catalog.<=) c.cutoff
		   AND lifecycle._tenant_visible(u.tenant)
		 LIMIT max_rows
		   FOR UPDATE OF o SKIP LOCKED)
	DELETE FROM lifecycle.outbox o
	 USING due
	 WHERE o.id OPERATOR(pg_catalog.=) due.id;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- The instances' own functions and view (15_instances.sql).
-- Application (lifecycle_app) ---------------------------------------------

CREATE FUNCTION @extschema@.lifecycle_start(workflow text, subject text,
	tenant text = 'default', key text = '', policy text = NULL,
	email text = NULL, region text = NULL, attrs jsonb = NULL,
	data jsonb = '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_start'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.lifecycle_signal(workflow text, subject text,
	event text, tenant text = 'default', key text = '')
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_signal'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The subject's instances that are not erased, oldest first.  Once the
-- subject's personal data is erased the subject is unknown (42704).
CREATE FUNCTION @extschema@.lifecycle_instances(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, workflow text, key text, state text,
	since timestamptz, next_event text, next_at timestamptz,
	deadline_event text, deadline_at timestamptz, held boolean,
	policy text, policy_version int, workflow_version int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.workflow::text, u.key, u.state::text, u.state_since,
			   u.next_event, u.next_at, u.deadline_event, u.deadline_at,
			   -- a hold whose until has passed is lapsed, written or not
			   u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()),
			   u.policy, u.policy_version, u.workflow_version
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_instances.tenant
		   AND u.subject = lifecycle_instances.subject
		 ORDER BY u.id;
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_start() to start a workflow.';
	END IF;
END
$$;

-- Auditors (lifecycle_auditor) --------------------------------------------

-- Every instance of every workflow, erased ones included (their subject is
-- NULL), without e-mail, region, attrs or data; rows of tenants the
-- acting role may not see are hidden.  held: a hold in force.
CREATE VIEW lifecycle.instances WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.workflow, u.workflow_version, u.key,
	   u.policy, u.policy_version, u.state, u.state_since, u.next_event,
	   u.next_at, u.deadline_event, u.deadline_at,
	   u.held AND (u.hold_until IS NULL
				   OR u.hold_until > @extschema@.lifecycle_now()) AS held
  FROM lifecycle.users u
 WHERE lifecycle._tenant_visible(u.tenant);

REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_start(text, text, text, text, text, text, text, jsonb, jsonb),
	@extschema@.lifecycle_signal(text, text, text, text, text),
	@extschema@.lifecycle_instances(text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.lifecycle_start(text, text, text, text, text, text, text, jsonb, jsonb),
	@extschema@.lifecycle_signal(text, text, text, text, text),
	@extschema@.lifecycle_instances(text, text)
TO lifecycle_app;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_instances(text, text)
TO lifecycle_auditor;
GRANT SELECT ON lifecycle.instances TO lifecycle_auditor;

-- dsar (issue 18): the built-in dsar workflow's same-named policy at its
-- defaults, as a fresh install defines it (90_grants.sql), unless a 0.2.0
-- policy already has the name; a dump leaves its first version out, as
-- the default policy's (00_schema.sql).
DO $dsar_policy$
BEGIN
	IF NOT EXISTS (SELECT FROM lifecycle.policies WHERE name = 'dsar') THEN
		PERFORM lifecycle._define_policy('dsar', '{"workflow": "dsar"}', '{}');
	END IF;
END
$dsar_policy$;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.policies',
	'WHERE NOT (version = 1 AND (name = ''default'' OR (name = ''dsar'' AND workflow = ''dsar'')))');

-- ---------------------------------------------------------------------
-- Issue 20 (views): lifecycle.overdue and lifecycle.violations call no
-- function per row (the clock as an index condition and an InitPlan, the
-- tenant filter through _tenants_unlimited() once); violations reads its
-- two partial indexes as two ranges (sql/src/20_views.sql).
CREATE FUNCTION lifecycle._tenants_unlimited()
RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_tenants_unlimited'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION lifecycle._tenants_unlimited() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._tenants_unlimited() TO lifecycle_app, lifecycle_auditor;

CREATE OR REPLACE VIEW lifecycle.overdue WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   (SELECT @extschema@.lifecycle_now()) - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL
			OR u.hold_until > (SELECT @extschema@.lifecycle_now())))
   AND ((SELECT lifecycle._tenants_unlimited())
		OR lifecycle._tenant_visible(u.tenant));

-- Subjects kept past their policy: the retention deadline of their state
-- (users.deadline_at, whatever reminder is pending) passed more than a
-- minute ago, and no hold in force.  Empty while the worker is healthy.
-- Two ranges, each read whole by its partial index and nothing else:
-- users_deadline_at for users not on hold (its predicate is the first
-- branch's "NOT held", its range the deadline), users_hold_until for held
-- users whose hold has lapsed.  No function call per row, as in
-- lifecycle.overdue: the work is one heap visit per row listed.
CREATE OR REPLACE VIEW lifecycle.violations WITH (security_barrier) AS
SELECT v.* FROM (
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error
	  FROM lifecycle.users u
	 WHERE NOT u.held
	   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))
	UNION ALL
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.deadline_at < (SELECT @extschema@.lifecycle_now()) - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))) v;


-- ---- message templates (issue 17: templates from the workflow; sql/src/80_messages.sql) ----
-- The e-mail of a message rendered over its workflow's own template.
CREATE FUNCTION lifecycle._render_mail(workflow text, message text,
	payload jsonb, options jsonb = '{}', version int = NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_render_mail'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION lifecycle._render_mail(text, text, jsonb, jsonb, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._render_mail(text, text, jsonb, jsonb, int) TO lifecycle_admin;

-- ---- transitions and graph of any workflow (sql/src/10_api.sql) ----
-- lifecycle.transitions() takes a workflow name (0.2.0's policy names
-- still resolve, as a fallback): its parameter is renamed, so it is
-- dropped and created again with its grants.
DROP FUNCTION lifecycle.transitions(text, int);
-- A workflow's compiled graph as rows (src/api/graph.c), the version given
-- (the latest when NULL) with the numbers of the workflow's own policy
-- (its same-named one, "default" for user) or its defaults.  A name that
-- is no workflow's is taken as a policy's, as in 0.2.0 (version: the
-- policy's).
CREATE FUNCTION lifecycle.transitions(workflow text = 'user', version int = NULL)
RETURNS TABLE (from_state text, event text, kind text, role text,
	to_state text, effect text, message text, hook text, erases boolean,
	stopped_by_hold boolean, anchor text, interval_key text,
	"interval" interval, reminders interval[], reminders_before_deadline boolean,
	deadline_event text, hint text)
AS 'MODULE_PATHNAME', 'lifecycle_transitions'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- The same rows for the graph a policy version runs, with its numbers
-- (lifecycle_graph() draws them).
CREATE FUNCTION lifecycle._policy_transitions(policy text, version int = NULL)
RETURNS TABLE (from_state text, event text, kind text, role text,
	to_state text, effect text, message text, hook text, erases boolean,
	stopped_by_hold boolean, anchor text, interval_key text,
	"interval" interval, reminders interval[], reminders_before_deadline boolean,
	deadline_event text, hint text)
AS 'MODULE_PATHNAME', 'lifecycle_policy_transitions'
LANGUAGE C STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Graphviz DOT of the policy's state graph (of any workflow) with live
-- counts per state.  The edges are lifecycle._policy_transitions(): every
-- transition, reminder self-loops, admin and erasure calls dashed (holds
-- are orthogonal to state and not drawn), for any workflow's policy.
CREATE OR REPLACE FUNCTION @extschema@.lifecycle_graph(policy text = 'default')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n jsonb;
	out text;
	st record;
	e record;
BEGIN
	IF policy IS NULL THEN
		RAISE EXCEPTION 'policy must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM lifecycle.policies p WHERE p.name = lifecycle_graph.policy) THEN
		RAISE EXCEPTION 'policy "%" does not exist', policy USING ERRCODE = '42704';
	END IF;
	-- Group by tenant first: the visibility check runs once per tenant.
	WITH g AS MATERIALIZED (
		SELECT u.state::text AS s, u.tenant AS t, count(*) AS c FROM lifecycle.users u
		 WHERE u.policy = lifecycle_graph.policy
		 GROUP BY u.state, u.tenant)
	SELECT coalesce(jsonb_object_agg(x.s, x.c), '{}') INTO n FROM (
		SELECT g.s, sum(g.c) AS c FROM g WHERE lifecycle._tenant_visible(g.t)
		 GROUP BY g.s) x;
	-- DOT string: escape backslashes and double quotes of the name.
	out := format(E'digraph lifecycle {\n  label="%s";\n  rankdir=LR;\n  node [shape=box, style=rounded];\n',
				  replace(replace('policy ' || policy, E'\\', E'\\\\'), '"', E'\\"'));
	-- The states in the order of their distance from the start (then of
	-- the edges that first enter them), "erased" last; a state named like
	-- a DOT keyword is quoted.
	FOR st IN
		WITH RECURSIVE ge AS MATERIALIZED (
			SELECT x.from_state, x.to_state, x.ord
			  FROM lifecycle._policy_transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
					from_state, event, kind, role, to_state, effect, message, hook,
					erases, stopped_by_hold, anchor, interval_key, "interval",
					reminders, reminders_before_deadline, deadline_event, hint, ord)
			 WHERE x.to_state <> 'erased'),
		r(state, depth) AS (
			SELECT ge.to_state, 1 FROM ge WHERE ge.from_state = 'none'
			UNION
			SELECT ge.to_state, r.depth + 1 FROM r JOIN ge ON ge.from_state = r.state
			 WHERE r.depth < 70)
		SELECT r.state AS s,
			   CASE WHEN r.state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
					THEN '"' || r.state || '"' ELSE r.state END AS id
		  FROM r GROUP BY r.state
		 ORDER BY min(r.depth), (SELECT min(ge.ord) FROM ge WHERE ge.to_state = r.state)
	LOOP
		out := out || format(E'  %s [label="%s\\n%s"];\n', st.id, st.s,
							 coalesce(n ->> st.s, '0'));
	END LOOP;
	out := out || format(E'  erased [label="erased\\n%s"];\n', coalesce(n ->> 'erased', '0'));
	FOR e IN
		SELECT t.from_state, t.to_state, t.dashed,
			   string_agg(t.label, ', ' ORDER BY t.ord) AS label
		  FROM (SELECT x.from_state, x.to_state, x.ord,
					   x.kind = 'call' AND (x.role = 'admin' OR x.erases) AS dashed,
					   CASE WHEN x."interval" IS NOT NULL
							THEN format('%s after %s', x.event, x."interval")
							WHEN x.reminders IS NOT NULL
							THEN format('%s %s%s', x.event, array_to_string(x.reminders, ', '),
										CASE WHEN x.reminders_before_deadline THEN ' before' ELSE '' END)
							WHEN x.role = 'admin' THEN x.event || ' (admin)'
							ELSE x.event END AS label
				  FROM lifecycle._policy_transitions(lifecycle_graph.policy) WITH ORDINALITY AS x(
						from_state, event, kind, role, to_state, effect, message, hook,
						erases, stopped_by_hold, anchor, interval_key, "interval",
						reminders, reminders_before_deadline, deadline_event, hint, ord)
				 WHERE x.effect IN ('transition', 'reminder', 'touch')
				   AND x.from_state <> 'none'
				   AND coalesce(cardinality(x.reminders), 1) > 0) t
		 GROUP BY t.from_state, t.to_state, t.dashed
		 ORDER BY min(t.ord)
	LOOP
		out := out || format(E'  %s -> %s [label="%s"%s];\n',
							 CASE WHEN e.from_state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
								  THEN '"' || e.from_state || '"' ELSE e.from_state END,
							 CASE WHEN e.to_state IN ('node', 'edge', 'graph', 'digraph', 'subgraph', 'strict')
								  THEN '"' || e.to_state || '"' ELSE e.to_state END,
							 e.label, CASE WHEN e.dashed THEN ', style=dashed' ELSE '' END);
	END LOOP;
	RETURN out || E'}\n';
END
$$;

REVOKE ALL ON FUNCTION lifecycle.transitions(text, int),
	lifecycle._policy_transitions(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle.transitions(text, int) TO lifecycle_auditor;

-- every view names the workflow (issue 18): violations, overdue,
-- retention_report, metrics and comms gain a workflow column (a label in
-- metrics) after their 0.2.0 columns; holds stays one row per held subject
-- and names the workflows of their held instances (workflows text[]).
-- The same definitions as sql/src/20_views.sql, 70_metrics.sql and
-- 80_messages.sql.
CREATE OR REPLACE VIEW lifecycle.retention_report WITH (security_barrier) AS
WITH lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed: not held for every column below.
	SELECT u.tenant, u.policy, u.state, count(*) AS users,
		   min(u.next_at) AS next_due
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
)
SELECT g.tenant, g.policy, g.state, g.users,
	   (SELECT min(u.state_since) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state) AS oldest_since,
	   LEAST((SELECT min(u.next_at) FROM lifecycle.users u
			   WHERE u.tenant = g.tenant AND u.policy = g.policy
				 AND u.state = g.state AND u.next_at IS NOT NULL AND NOT u.held),
			 l.next_due) AS next_due,
	   g.held - coalesce(l.users, 0) AS held,
	   (SELECT min(u.deadline_at) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy
		   AND u.state = g.state AND u.deadline_at IS NOT NULL) AS next_deadline,
	   (SELECT count(*) FROM lifecycle.users u
		 WHERE u.tenant = g.tenant AND u.policy = g.policy AND u.state = g.state
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) AS violations,
	   (SELECT p.workflow FROM lifecycle.policies p
		 WHERE p.name = g.policy
		 ORDER BY p.version DESC LIMIT 1) AS workflow
  FROM (SELECT c.tenant, c.key1 AS policy, c.key2 AS state,
			   sum(c.n)::bigint AS users, sum(c.held)::bigint AS held
		  FROM (SELECT k.tenant, k.key1, k.key2, k.n, k.held
				  FROM lifecycle.counts k WHERE k.family = 'users'
				UNION ALL
				SELECT d.tenant, d.key1, d.key2, d.n, d.held
				  FROM lifecycle.count_deltas d WHERE d.family = 'users') c
		 GROUP BY c.tenant, c.key1, c.key2
		HAVING sum(c.n) <> 0
		OFFSET 0) g
  LEFT JOIN lapsed l
	ON l.tenant = g.tenant AND l.policy = g.policy AND l.state = g.state
 WHERE lifecycle._tenant_visible(g.tenant);

CREATE OR REPLACE VIEW lifecycle.overdue WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.next_event, u.next_at AS due_at,
	   (SELECT @extschema@.lifecycle_now()) - u.next_at AS overdue_by,
	   u.retries, u.retry_at, u.last_error, u.workflow
  FROM lifecycle.users u
 WHERE u.next_at <= @extschema@.lifecycle_now()
   AND NOT (u.held AND (u.hold_until IS NULL
			OR u.hold_until > (SELECT @extschema@.lifecycle_now())))
   AND ((SELECT lifecycle._tenants_unlimited())
		OR lifecycle._tenant_visible(u.tenant));

CREATE OR REPLACE VIEW lifecycle.violations WITH (security_barrier) AS
SELECT v.* FROM (
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error, u.workflow
	  FROM lifecycle.users u
	 WHERE NOT u.held
	   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))
	UNION ALL
	SELECT u.id, u.tenant, u.subject, u.policy, u.policy_version, u.state,
		   u.deadline_event, u.deadline_at,
		   (SELECT @extschema@.lifecycle_now()) - u.deadline_at AS overdue_by,
		   u.next_event, u.next_at, u.last_error, u.workflow
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.deadline_at < (SELECT @extschema@.lifecycle_now()) - interval '1 minute'
	   AND ((SELECT lifecycle._tenants_unlimited())
			OR lifecycle._tenant_visible(u.tenant))) v;

CREATE OR REPLACE VIEW lifecycle.comms WITH (security_barrier) AS
SELECT o.channel, c.kind, c.enabled, c.disabled_reason, o.status,
	   count(*) AS messages,
	   count(*) FILTER (WHERE o.claimed_at IS NOT NULL) AS in_flight,
	   min(o.created_at) AS oldest,
	   min(o.created_at) FILTER (WHERE o.status = 'pending') AS oldest_pending,
	   min(o.next_attempt_at) FILTER (WHERE o.status = 'pending') AS next_attempt_at,
	   max(o.sent_at) AS last_sent_at,
	   max(o.last_attempt_at) AS last_attempt_at,
	   sum(o.attempts) AS attempts,
	   (pg_catalog.array_agg(o.last_error
			ORDER BY o.last_attempt_at DESC NULLS LAST, o.id DESC)
		 FILTER (WHERE o.last_error IS NOT NULL))[1] AS last_error,
	   u.workflow
  FROM lifecycle.outbox o
  JOIN lifecycle.users u ON u.id = o.user_id
  LEFT JOIN lifecycle.channels c ON c.name = o.channel
 WHERE lifecycle._tenant_visible(u.tenant)
 GROUP BY o.channel, c.kind, c.enabled, c.disabled_reason, o.status, u.workflow;


-- versions in flight (issue 18): lifecycle_migrate_workflow(); the forecast
-- covers every workflow, names it, and forecasts a proposed workflow
-- definition (sql/src/75_userbase.sql).
CREATE FUNCTION @extschema@.lifecycle_migrate_workflow(workflow text,
	to_version int = NULL, state_map jsonb = '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_migrate_workflow'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
DROP FUNCTION @extschema@.lifecycle_forecast(interval, text, text, jsonb);
DROP FUNCTION lifecycle._forecast(interval, text, text, jsonb, name[]);
CREATE FUNCTION lifecycle._forecast(horizon interval, policy text, tenant text,
	definition jsonb, search_schemas name[], workflow text,
	workflow_definition jsonb)
RETURNS TABLE (day date, event text, users bigint, workflow text)
AS 'MODULE_PATHNAME', 'lifecycle_forecast_internal'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION @extschema@.lifecycle_forecast(horizon interval = '90 days',
	policy text = NULL, tenant text = NULL, definition jsonb = NULL,
	workflow text = NULL, workflow_definition jsonb = NULL)
RETURNS TABLE (day date, event text, users bigint, workflow text)
LANGUAGE sql STABLE
AS $$ SELECT f.day, f.event, f.users, f.workflow
	FROM lifecycle._forecast($1, $2, $3, $4, pg_catalog.current_schemas(false),
							 $5, $6) AS f $$;
REVOKE ALL ON FUNCTION
	@extschema@.lifecycle_migrate_workflow(text, int, jsonb),
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.lifecycle_migrate_workflow(text, int, jsonb)
TO lifecycle_admin;
GRANT EXECUTE ON FUNCTION
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb)
TO lifecycle_auditor;

-- ---------------------------------------------------------------------
-- No regression (issue 17): the trace id of a new instance from a
-- generator seeded once per process, not gen_random_uuid() per row
-- (sql/src/85_otel.sql).
-- ---------------------------------------------------------------------
CREATE FUNCTION lifecycle._trace_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'lifecycle_trace_id'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION lifecycle._trace_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._trace_id() TO lifecycle_app;
ALTER TABLE lifecycle.users ALTER COLUMN trace_id SET DEFAULT lifecycle._trace_id();

-- ---- a subject's history and status (issue 18; sql/src/10_api.sql) ----
-- lifecycle_history() returns the history of every live instance of the
-- subject (rows carry user_id, the instance), oldest first; a subject
-- without a user lifecycle is found.  lifecycle_status() stays the user
-- lifecycle's; for a subject that runs other workflows only, its 42704
-- says to use lifecycle_instances().
CREATE OR REPLACE FUNCTION @extschema@.lifecycle_status(subject text, tenant text = 'default')
RETURNS TABLE (id bigint, state lifecycle.state, since timestamptz,
	next_event text, next_at timestamptz, held boolean, policy text,
	policy_version int, deadline_event text, deadline_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	RETURN QUERY
		SELECT u.id, u.state, u.state_since, u.next_event, u.next_at,
			   -- a hold whose until has passed is lapsed, written or not
			   u.held AND (u.hold_until IS NULL OR u.hold_until > @extschema@.lifecycle_now()),
			   u.policy, u.policy_version, u.deadline_event, u.deadline_at
		  FROM lifecycle.users u
		 WHERE u.tenant = lifecycle_status.tenant
		   AND u.subject = lifecycle_status.subject AND u.workflow = 'user' AND u.key = '';
	IF NOT FOUND THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION USING ERRCODE = '42704',
			-- (0.2.0's line numbers kept.)  A subject that runs other
			-- workflows only has no user lifecycle to show: the HINT names
			-- lifecycle_instances(), which lists what it runs.
			MESSAGE = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN 'subject has no user lifecycle' ELSE 'subject does not exist' END,
			DETAIL = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN pg_catalog.format('Tenant "%s" has a live subject of that name in other workflows only.', tenant)
				ELSE pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant) END,
			HINT = CASE WHEN EXISTS (SELECT 1 FROM lifecycle.users u
					WHERE u.tenant = lifecycle_status.tenant AND u.subject = lifecycle_status.subject)
				THEN 'Use lifecycle_instances() to list its instances.'
				ELSE 'Use lifecycle_invite() to start a lifecycle.' END;
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.lifecycle_history(subject text, tenant text = 'default')
RETURNS SETOF lifecycle.history
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	live boolean;
BEGIN
	IF subject IS NULL OR tenant IS NULL THEN
		RAISE EXCEPTION 'subject and tenant must not be null' USING ERRCODE = '22004';
	END IF;
	PERFORM lifecycle._check_tenant(tenant);
	SELECT EXISTS (SELECT 1 FROM lifecycle.users u
	 WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject)
	  INTO live;	-- a live instance of the subject, of any workflow
	IF NOT live THEN
		-- The subject is personal data: name the argument, not its value.
		RAISE EXCEPTION 'subject does not exist'
			USING ERRCODE = '42704',
				  DETAIL = pg_catalog.format('Tenant "%s" has no live subject of that name.', tenant),
				  HINT = 'Use lifecycle_invite() to start a lifecycle.';
	END IF;
	-- Every live instance of the subject, of every workflow (user_id names
	-- the instance), oldest first.
	RETURN QUERY SELECT h.* FROM lifecycle.users u
		JOIN lifecycle.history h ON h.user_id = u.id
	   WHERE u.tenant = lifecycle_history.tenant AND u.subject = lifecycle_history.subject
	   ORDER BY h.at, h.id;
END
$$;

-- ---- lifecycle_transitions_total names the workflow (issue 18; sql/src/70_metrics.sql) ----
-- The events family of the counts is keyed by the workflow of the
-- instance (key2, '' before): counted again from history (the count
-- triggers' CREATE TRIGGER above keeps history locked against writes
-- until this transaction commits), and the metric gets the label.
DELETE FROM lifecycle.count_deltas WHERE family = 'events';
DELETE FROM lifecycle.counts WHERE family = 'events';
INSERT INTO lifecycle.counts (family, tenant, key1, key2, n, held)
SELECT 'events', coalesce(u.tenant, ''), h.event, coalesce(u.workflow, ''), count(*), 0
  FROM lifecycle.history h LEFT JOIN lifecycle.users u ON u.id = h.user_id
 GROUP BY 2, 3, 4;
CREATE OR REPLACE VIEW lifecycle.metrics AS
WITH counted AS MATERIALIZED (
	-- lifecycle.counts and the deltas not folded yet (67_counts.sql).
	SELECT c.family, c.tenant, c.key1, c.key2,
		   sum(c.n)::bigint AS n, sum(c.held)::bigint AS held
	  FROM (SELECT k.family, k.tenant, k.key1, k.key2, k.n, k.held
			  FROM lifecycle.counts k
			UNION ALL
			SELECT d.family, d.tenant, d.key1, d.key2, d.n, d.held
			  FROM lifecycle.count_deltas d) c
	 GROUP BY c.family, c.tenant, c.key1, c.key2
	HAVING sum(c.n) <> 0
), visible AS MATERIALIZED (
	SELECT c.* FROM counted c WHERE lifecycle._tenant_visible(c.tenant)
), policy_workflows AS MATERIALIZED (
	-- Each policy's workflow (one per policy, whatever the version).
	SELECT DISTINCT ON (p.name) p.name AS policy, p.workflow
	  FROM lifecycle.policies p
	 ORDER BY p.name, p.version DESC
), lapsed AS MATERIALIZED (
	-- Held users whose hold has lapsed (users_hold_until): not held.
	SELECT u.tenant, u.policy, u.state::text AS state, count(*) AS users
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	 GROUP BY u.tenant, u.policy, u.state
), visible_states AS MATERIALIZED (
	SELECT c.tenant, c.key1 AS policy, c.key2 AS state, c.n AS users,
		   c.held - coalesce(l.users, 0) AS held,
		   coalesce(pw.workflow, '') AS workflow
	  FROM visible c
	  LEFT JOIN lapsed l
		ON l.tenant = c.tenant AND l.policy = c.key1 AND l.state = c.key2
	  LEFT JOIN policy_workflows pw ON pw.policy = c.key1
	 WHERE c.family = 'users'
), transitions AS MATERIALIZED (
	-- key2: the workflow of the instance that wrote the history rows
	SELECT c.key1 AS event, c.key2 AS workflow, sum(c.n) AS n
	  FROM visible c
	 WHERE c.family = 'events'
	 GROUP BY c.key1, c.key2
	HAVING sum(c.n) <> 0
), late AS MATERIALIZED (
	-- The lateness of timers (at - due_at) counted per bucket as history
	-- rows are written (family "lateness": key1 the least bucket that
	-- holds it, held the sum in microseconds).
	SELECT c.key1 AS le, sum(c.n) AS n, sum(c.held) AS us
	  FROM visible c
	 WHERE c.family = 'lateness'
	 GROUP BY c.key1
), lateness AS MATERIALIZED (
	SELECT coalesce(sum(l.n), 0) AS timers,
		   coalesce(sum(l.us), 0) / 1000000.0 AS late_sum,
		   coalesce(sum(l.n) FILTER (WHERE l.le = '1'), 0) AS le_1,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10')), 0) AS le_10,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60')), 0) AS le_60,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300')), 0) AS le_300,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600')), 0) AS le_3600,
		   coalesce(sum(l.n) FILTER (WHERE l.le IN ('1', '10', '60', '300',
				'3600', '86400')), 0) AS le_86400
	  FROM late l
), group_timers AS MATERIALIZED (
	-- Per group of visible users (from the counts), index-only counts:
	-- due timers of users not on hold (users_group_next_at) and users past
	-- their deadline by over a minute under no hold in force, the set of
	-- lifecycle.violations (users_group_deadline_at, which includes held
	-- and hold_until): work in proportion to the late users, not to all.
	-- The clock is an index condition (read once per probe; the planner
	-- sees its value, so it expects few rows and plans no JIT).
	SELECT c.tenant, coalesce(pw.workflow, '') AS workflow, t.due, t.oldest,
		   v.violations
	  FROM visible c
	  LEFT JOIN policy_workflows pw ON pw.policy = c.key1
	 CROSS JOIN LATERAL (
		SELECT count(*) AS due, min(u.next_at) AS oldest
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.next_at <= @extschema@.lifecycle_now() AND NOT u.held) t
	 CROSS JOIN LATERAL (
		SELECT count(*) AS violations
		  FROM lifecycle.users u
		 WHERE u.tenant = c.tenant AND u.policy = c.key1
		   AND u.state = c.key2
		   AND u.deadline_at < @extschema@.lifecycle_now() - interval '1 minute'
		   AND NOT (u.held AND (u.hold_until IS NULL
				OR u.hold_until > @extschema@.lifecycle_now()))) v
	 WHERE c.family = 'users'
), lapsed_due AS MATERIALIZED (
	-- Held users whose hold has lapsed and whose timer is due (few:
	-- users_hold_until).
	SELECT u.tenant, u.workflow, count(*) AS due, min(u.next_at) AS oldest
	  FROM lifecycle.users u
	 WHERE u.held AND u.hold_until <= @extschema@.lifecycle_now()
	   AND u.next_at <= @extschema@.lifecycle_now()
	   AND lifecycle._tenant_visible(u.tenant)
	 GROUP BY u.tenant, u.workflow
), visible_due AS MATERIALIZED (
	SELECT g.tenant, g.workflow, g.due AS overdue, g.oldest FROM group_timers g
	UNION ALL
	SELECT l.tenant, l.workflow, l.due, l.oldest FROM lapsed_due l
), workflow_timers AS MATERIALIZED (
	-- Per workflow of a visible group: due timers and violations.
	SELECT w.workflow, sum(w.overdue) AS overdue, sum(w.violations) AS violations
	  FROM (SELECT d.workflow, d.overdue, 0 AS violations FROM visible_due d
			UNION ALL
			SELECT g.workflow, 0, g.violations FROM group_timers g) w
	 GROUP BY w.workflow
), outbox AS MATERIALIZED (
	SELECT c.key1 AS channel, c.key2 AS status, sum(c.n) AS messages
	  FROM visible c
	 WHERE c.family = 'messages'
	 GROUP BY c.key1, c.key2
	HAVING sum(c.n) <> 0
), workers AS MATERIALIZED (
	SELECT w.* FROM lifecycle._worker_stats() w
), otel AS MATERIALIZED (
	SELECT o.* FROM lifecycle._otel_stats() o
)
SELECT 'lifecycle_state_users'::text AS name,
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state,
									 'workflow', s.workflow) AS labels,
	   s.users::float8 AS value
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_state_held',
	   pg_catalog.jsonb_build_object('tenant', s.tenant, 'policy', s.policy,
									 'state', s.state, 'workflow', s.workflow),
	   s.held::float8
  FROM visible_states s
UNION ALL
SELECT 'lifecycle_transitions_total',
	   pg_catalog.jsonb_build_object('event', t.event, 'workflow', t.workflow),
	   t.n::float8
  FROM transitions t
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_bucket',
	   pg_catalog.jsonb_build_object('le', b.le), b.n::float8
  FROM lateness l
 CROSS JOIN LATERAL (VALUES ('1', l.le_1), ('10', l.le_10), ('60', l.le_60),
							('300', l.le_300), ('3600', l.le_3600),
							('86400', l.le_86400), ('+Inf', l.timers)) b(le, n)
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_sum', '{}'::jsonb, l.late_sum::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timer_lateness_seconds_count', '{}'::jsonb, l.timers::float8
  FROM lateness l
UNION ALL
SELECT 'lifecycle_timers_overdue', '{}'::jsonb,
	   coalesce(sum(d.overdue), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_lag_seconds', '{}'::jsonb,
	   coalesce(extract(epoch FROM @extschema@.lifecycle_now() - min(d.oldest)), 0)::float8
  FROM visible_due d
UNION ALL
SELECT 'lifecycle_timers_violations', '{}'::jsonb,
	   coalesce(sum(g.violations), 0)::float8
  FROM group_timers g
UNION ALL
SELECT 'lifecycle_workflow_timers_overdue',
	   pg_catalog.jsonb_build_object('workflow', w.workflow), w.overdue::float8
  FROM workflow_timers w
UNION ALL
SELECT 'lifecycle_workflow_timers_violations',
	   pg_catalog.jsonb_build_object('workflow', w.workflow), w.violations::float8
  FROM workflow_timers w
UNION ALL
SELECT 'lifecycle_outbox_messages',
	   pg_catalog.jsonb_build_object('channel', o.channel, 'status', o.status),
	   o.messages::float8
  FROM outbox o
UNION ALL
SELECT 'lifecycle_dead_letters',
	   pg_catalog.jsonb_build_object('channel', o.channel),
	   o.messages::float8
  FROM outbox o
 WHERE o.status = 'dead'
UNION ALL
SELECT 'lifecycle_worker_up', pg_catalog.jsonb_build_object('worker', w.worker),
	   (w.pid IS NOT NULL)::int::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_pid', pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(w.pid, 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_batches_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.batches::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_transitions_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.done::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_failed_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.failed::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_errors_total',
	   pg_catalog.jsonb_build_object('worker', w.worker), w.errors_total::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_worker_lag_seconds',
	   pg_catalog.jsonb_build_object('worker', w.worker),
	   coalesce(extract(epoch FROM w.lag), 0)::float8
  FROM workers w
UNION ALL
SELECT 'lifecycle_otel_spans_exported_total', '{}'::jsonb, o.spans_exported::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_spans_dropped_total', '{}'::jsonb, o.spans_dropped::float8
  FROM otel o
UNION ALL
SELECT 'lifecycle_otel_failed_requests_total', '{}'::jsonb, o.failed_requests::float8
  FROM otel o;

-- ---- the what-if takes a state_map (issue 18; sql/src/75_userbase.sql) ----
-- lifecycle_forecast(..., workflow, workflow_definition, state_map): the
-- forecast of a migration that renames states, state_map as
-- lifecycle_migrate_workflow() takes it.  The signature changes: dropped
-- and created again with its grants.
DROP FUNCTION @extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb);
DROP FUNCTION lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb);
CREATE FUNCTION lifecycle._forecast(horizon interval, policy text, tenant text,
	definition jsonb, search_schemas name[], workflow text,
	workflow_definition jsonb, state_map jsonb)
RETURNS TABLE (day date, event text, users bigint, workflow text)
AS 'MODULE_PATHNAME', 'lifecycle_forecast_internal'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Not SECURITY DEFINER on purpose, as lifecycle_define_policy(): a hook
-- named in a proposed definition resolves as the caller would resolve it.
-- 0.3.0: every workflow's instances, rows naming the workflow; workflow
-- limits it to one workflow, workflow_definition forecasts that
-- workflow's running instances as if migrated to the proposed definition
-- (state_map as lifecycle_migrate_workflow() takes it).
CREATE FUNCTION @extschema@.lifecycle_forecast(horizon interval = '90 days',
	policy text = NULL, tenant text = NULL, definition jsonb = NULL,
	workflow text = NULL, workflow_definition jsonb = NULL,
	state_map jsonb = '{}')
RETURNS TABLE (day date, event text, users bigint, workflow text)
LANGUAGE sql STABLE
AS $$ SELECT f.day, f.event, f.users, f.workflow
	FROM lifecycle._forecast($1, $2, $3, $4, pg_catalog.current_schemas(false),
							 $5, $6, $7) AS f $$;
REVOKE ALL ON FUNCTION
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	lifecycle._forecast(interval, text, text, jsonb, name[], text, jsonb, jsonb),
	@extschema@.lifecycle_forecast(interval, text, text, jsonb, text, jsonb, jsonb)
TO lifecycle_auditor;

-- ---- lifecycle.holds: when and by whom the subject's hold was placed (issue 18; sql/src/20_views.sql) ----
-- An instance started while its subject was held takes the hold from the
-- call that starts it: held_since and held_by are the earliest of the
-- held instances' latest hold rows (one instance: as before).  The view
-- (with the workflows of the every-view section above) is defined once,
-- in the Citus section below, after the shard column it reads.
-- ---------------------------------------------------------------------
-- Citus (issue 21, docs/CITUS.md): the schema made distributable.
-- ---------------------------------------------------------------------
-- The NOTIFY lifecycle_messages of an unrouted message comes from the
-- statement that writes it (src/store/store_outbox.c), not from a trigger
-- on the outbox: on Citus the trigger would run on a shard, whose
-- two-phase commit refuses NOTIFY.  The function stays (unused).
DROP TRIGGER outbox_notify ON lifecycle.outbox;

-- The bucket of a subject (src/core/shard.c), and the column "shard" on
-- every per-subject table, last: the users row's bucket from its tenant
-- and subject (an erased row, whose subject is gone, from its id: it is
-- never looked up by subject), its history, messages and evidence the
-- bucket of their users row.  Keys include it (Citus wants the
-- distribution column in every unique key); rows are addressed by
-- (id, shard), never by ctid.  (Added without a default and filled, so
-- that no "missing value" is left in the catalog.)
CREATE FUNCTION lifecycle._shard(tenant text, subject text)
RETURNS smallint
AS 'MODULE_PATHNAME', 'lifecycle_shard'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION lifecycle._shard(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._shard(text, text) TO lifecycle_app;

ALTER TABLE lifecycle.users ADD COLUMN shard smallint;
UPDATE lifecycle.users
   SET shard = COALESCE(lifecycle._shard(tenant, subject), lifecycle._shard(tenant, id::text));
ALTER TABLE lifecycle.users
	ALTER COLUMN shard SET DEFAULT 0, ALTER COLUMN shard SET NOT NULL,
	DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (id, shard);
DROP INDEX lifecycle.users_tenant_subject;
CREATE UNIQUE INDEX users_tenant_subject ON lifecycle.users (tenant, subject, workflow, key, shard)
	WHERE subject IS NOT NULL;

-- lifecycle.holds reads u.* of its held rows (20_views.sql): defined again,
-- so that it has the new column at its end, as a fresh install's.
CREATE OR REPLACE VIEW lifecycle.holds WITH (security_barrier) AS
SELECT u.id, u.tenant, u.subject, u.state, u.hold_reason AS reason,
	   u.hold_until AS until, p.at AS held_since, p.actor AS held_by,
	   CASE WHEN u.subject IS NULL THEN ARRAY[u.workflow]
	   ELSE ARRAY(SELECT DISTINCT w.workflow FROM lifecycle.users w
				   WHERE w.tenant = u.tenant AND w.subject = u.subject
					 AND w.held AND (w.hold_until IS NULL
						 OR w.hold_until > @extschema@.lifecycle_now())
				   ORDER BY w.workflow) END AS workflows
  FROM (SELECT DISTINCT ON (h.tenant, h.subject,
							CASE WHEN h.subject IS NULL THEN h.id END) h.*
		  FROM lifecycle.users h
		 WHERE h.held AND (h.hold_until IS NULL
			   OR h.hold_until > @extschema@.lifecycle_now())
		   AND lifecycle._tenant_visible(h.tenant)
		 ORDER BY h.tenant, h.subject,
				  CASE WHEN h.subject IS NULL THEN h.id END,
				  h.workflow <> 'user', h.id) u
  -- When and by whom the subject's hold was placed: of the latest hold
  -- row of each of its held instances, the earliest (an instance started
  -- while the subject was held took the hold later, from the call that
  -- started it).  One instance: its latest hold row, as in 0.2.0.
  LEFT JOIN LATERAL (
	SELECT l.at, l.actor
	  FROM lifecycle.users w
	 CROSS JOIN LATERAL (SELECT h.at, h.id, h.actor FROM lifecycle.history h
						  WHERE h.user_id = w.id AND h.event = 'hold'
						  ORDER BY h.at DESC, h.id DESC LIMIT 1) l
	 WHERE w.id = u.id
		OR (u.subject IS NOT NULL AND w.tenant = u.tenant AND w.subject = u.subject
			AND w.held AND (w.hold_until IS NULL
				OR w.hold_until > @extschema@.lifecycle_now()))
	 ORDER BY l.at, l.id LIMIT 1) p ON true;

ALTER TABLE lifecycle.history ADD COLUMN shard smallint;
UPDATE lifecycle.history AS h
   SET shard = COALESCE((SELECT u.shard FROM lifecycle.users AS u WHERE u.id = h.user_id), 0);
ALTER TABLE lifecycle.history
	ALTER COLUMN shard SET DEFAULT 0, ALTER COLUMN shard SET NOT NULL,
	DROP CONSTRAINT history_pkey, ADD PRIMARY KEY (id, shard);

ALTER TABLE lifecycle.outbox ADD COLUMN shard smallint;
UPDATE lifecycle.outbox AS o
   SET shard = COALESCE((SELECT u.shard FROM lifecycle.users AS u WHERE u.id = o.user_id), 0);
ALTER TABLE lifecycle.outbox
	ALTER COLUMN shard SET DEFAULT 0, ALTER COLUMN shard SET NOT NULL,
	DROP CONSTRAINT outbox_pkey, ADD PRIMARY KEY (id, shard);

ALTER TABLE lifecycle.erasures ADD COLUMN shard smallint;
UPDATE lifecycle.erasures AS e
   SET shard = COALESCE((SELECT u.shard FROM lifecycle.users AS u WHERE u.id = e.user_id), 0);
ALTER TABLE lifecycle.erasures
	ALTER COLUMN shard SET DEFAULT 0, ALTER COLUMN shard SET NOT NULL,
	DROP CONSTRAINT erasures_pkey, ADD PRIMARY KEY (id, shard);

-- engine (issue 17): the retention deadlines again, from the compiled user
-- workflow (an install coming from 0.1.0 skipped them in the 0.1.0 ->
-- 0.2.0 script, whose schema the 0.3.0 library cannot read).  Keep this
-- last.
SELECT lifecycle._refresh_deadlines();
