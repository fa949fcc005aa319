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
      "subject": "We received your request",
      "text": "Hello {{attrs.name}},\n\nWe received your request and will answer it by {{deadline_at}}.\nIf we need more time, we will tell you before then and why.\n"
    },
    "request_reminder": {
      "subject": "Reminder: a data subject request is due on {{deadline_at}}",
      "text": "A data subject request is still open (state: {{state}}).\nIt must be answered by {{deadline_at}}.\n"
    },
    "request_extended": {
      "subject": "We need more time to answer your request",
      "text": "Hello {{attrs.name}},\n\nYour request needs more time than usual to answer.\nWe will answer it by {{deadline_at}} at the latest.\n"
    },
    "request_answered": {
      "subject": "We answered your request",
      "text": "Hello {{attrs.name}},\n\nWe have answered your request.\n"
    },
    "request_refused": {
      "subject": "We cannot act on your request",
      "text": "Hello {{attrs.name}},\n\nWe cannot act on your request; our answer explains why and how you can lodge a complaint with a supervisory authority.\n"
    },
    "request_overdue": {
      "subject": "A data subject request is overdue",
      "text": "A data subject request was not answered within its deadline (state: {{state}}).\nAnswer it now: it can be answered, not extended.\n"
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
