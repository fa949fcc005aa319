-- Policies name their workflow (issue 17): {"workflow": "trial", ...}
-- sets that workflow's params as top-level keys, validated against its
-- definition (22023 naming the key); without "workflow" a new policy is
-- the user workflow's, as in 0.2.0; defining a workflow creates its
-- same-named policy with the defaults; policies record the workflow
-- version they run.
\set SHOW_CONTEXT never
SELECT lifecycle_define_workflow('t14_trial', $${
  "params": {"trial_length": "14 days", "reminders": ["3 days", "1 day"],
             "keep_after": "30 days"},
  "messages": {"trial_ending": {"subject": "Your trial ends on {{deadline_at}}",
                                "text": "Hello {{attrs.name}}, your trial ends soon."},
               "trial_expired": {"subject": "Your trial has ended",
                                 "text": "Hello {{attrs.name}}, your trial has ended."}},
  "states": {
    "started": {"timer": {"event": "trial_over", "after": "trial_length",
                          "from": "entered", "to": "expired",
                          "message": "trial_expired", "deadline": "trial_end",
                          "reminders": {"before": "reminders",
                                        "event": "trial_reminder",
                                        "message": "trial_ending"}}},
    "converted": {"timer": {"event": "forget", "after": "keep_after",
                            "from": "entered", "to": "erased"}},
    "expired": {"timer": {"event": "purge", "after": "keep_after",
                          "from": "due", "to": "erased", "hook": "purge"}}
  },
  "events": {
    "begin": [{"from": ["none"], "to": "started"}],
    "convert": [{"from": ["started"], "to": "converted"},
                {"from": ["converted"], "effect": "noop"}]
  }
}$$) AS version;

-- The workflow's own policy, with its defaults and the generic keys.
SELECT name, version, workflow, workflow_version, jsonb_pretty(definition)
  FROM lifecycle.policies WHERE name = 't14_trial';

-- 0.2.0's policies belong to the user workflow, version 1.
SELECT name, version, workflow, workflow_version FROM lifecycle.policies
 WHERE name = 'default' ORDER BY version;
SELECT lifecycle_define_policy('t14_user', '{"dormant_after": "10 days"}') AS version;
SELECT workflow, workflow_version, definition ->> 'dormant_after' AS dormant_after
  FROM lifecycle.policies WHERE name = 't14_user';

-- A policy of the trial workflow: params as top-level keys, the rest from
-- the workflow's policy.
SELECT lifecycle_define_policy('t14_short', '{"workflow": "t14_trial", "trial_length": "7 days"}') AS version;
SELECT workflow, workflow_version, definition ->> 'trial_length' AS trial_length,
	   definition -> 'reminders' AS reminders, definition ->> 'keep_after' AS keep_after
  FROM lifecycle.policies WHERE name = 't14_short';
-- A new version without "workflow" keeps the policy's workflow.
SELECT lifecycle_define_policy('t14_short', '{"keep_after": "10 days"}') AS version;
SELECT version, workflow, definition ->> 'keep_after' AS keep_after
  FROM lifecycle.policies WHERE name = 't14_short' ORDER BY version;
-- The graph it runs, with its values.
SELECT from_state, event, kind, to_state, effect, message, hook, interval_key,
	   "interval", reminders, deadline_event
  FROM lifecycle.transitions('t14_short') ORDER BY from_state, event;

-- Refusals: each names the key (22023), or the workflow (42704).
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_trial", "dormant_after": "1 day"}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_trial", "reminders": "1 day"}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_trial", "trial_length": "0 days"}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_trial", "trial_length": "2 days"}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_trial", "hooks": {"archive": "pg_catalog.textcat"}}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": 1}');
SELECT lifecycle_define_policy('t14_bad', '{"workflow": "t14_nope"}');
-- A user policy may not take another workflow's params, nor change workflow.
SELECT lifecycle_define_policy('t14_bad', '{"trial_length": "7 days"}');
SELECT lifecycle_define_policy('t14_short', '{"workflow": "user"}');
SELECT count(*) AS bad_versions FROM lifecycle.policies WHERE name = 't14_bad';

-- The trial's hook key binds like 0.2.0's hooks.
CREATE FUNCTION t14_purge(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
SELECT lifecycle_define_policy('t14_hooked', '{"workflow": "t14_trial", "hooks": {"purge": "t14_purge"}}') AS version;
SELECT definition -> 'hooks' AS hooks, hook_keys, hook_functions, archive_hook, erase_hook
  FROM lifecycle.policies WHERE name = 't14_hooked';
-- A user policy keeps its 0.2.0 hook columns filled.
CREATE FUNCTION t14_on_erase(subject text, tenant text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
SELECT lifecycle_define_policy('t14_user_hooked', '{"hooks": {"erase": "t14_on_erase"}}') AS version;
SELECT hook_keys, hook_functions, archive_hook, restore_hook, erase_hook
  FROM lifecycle.policies WHERE name = 't14_user_hooked';

-- The 0.2.0 functions run the user workflow only.
SELECT lifecycle_invite('t14_someone', 't14@example.com', 'default', 't14_short');
