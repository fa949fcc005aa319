-- lifecycle.retention_bounds (issue 17): per (workflow version, policy
-- version) the longest an instance can still exist after entering each
-- state if nobody acts, with the path that attains it; the policy key
-- max_retention refuses a policy, or a workflow version its policies'
-- instances would run, whose bound exceeds it (22023, naming the state
-- and the path).
\set SHOW_CONTEXT never
-- The user workflow at the default policy: active is bounded by
-- 90 + 30 + 365 days.
SELECT workflow, workflow_version, policy, policy_version, state, bound, path
  FROM lifecycle.retention_bounds WHERE policy = 'default' AND policy_version = 1
 ORDER BY state;

-- A policy's own values count.
SELECT lifecycle_define_policy('t15_short', '{"dormant_after": "30 days", "erase_after": "100 days"}') AS version;
SELECT state, bound FROM lifecycle.retention_bounds
 WHERE policy = 't15_short' AND state IN ('active', 'archived') ORDER BY state;

-- max_retention: a policy whose bound exceeds it is refused, naming the
-- state and the path; one within it is defined.
SELECT lifecycle_define_policy('t15_promise', '{"max_retention": "400 days"}');
SELECT lifecycle_define_policy('t15_promise', '{"max_retention": "1 year", "erase_after": "300 days"}');
SELECT lifecycle_define_policy('t15_promise', '{"max_retention": "2 years"}') AS version;
-- Calendar arithmetic: "1 year" promises 365 days, and "12 mons" at
-- their longest are 372 days of bound.
SELECT lifecycle_define_policy('t15_cal', '{"max_retention": "1 year", "dormant_after": "10 days", "archive_after": "10 days", "erase_after": "345 days"}') AS version;
SELECT lifecycle_define_policy('t15_cal', '{"max_retention": "1 year", "dormant_after": "10 days", "archive_after": "10 days", "erase_after": "12 mons"}');
SELECT lifecycle_define_policy('t15_bad', '{"max_retention": "soon"}');
SELECT count(*) AS refused_versions FROM lifecycle.policies WHERE name IN ('t15_bad') OR (name = 't15_promise' AND definition ->> 'max_retention' <> '2 years');

-- A custom workflow and its bounds.
SELECT lifecycle_define_workflow('t15_token', $${
  "params": {"valid_for": "1 day", "keep": "7 days"},
  "states": {
    "issued": {"timer": {"event": "lapse", "after": "valid_for", "from": "entered",
                         "to": "lapsed"}},
    "lapsed": {"timer": {"event": "purge", "after": "keep", "from": "due", "to": "erased"}}
  },
  "events": {"issue": [{"from": ["none"], "to": "issued"}],
             "use": [{"from": ["issued"], "to": "lapsed"}]}
}$$) AS version;
SELECT workflow, workflow_version, policy, policy_version, state, bound, path
  FROM lifecycle.retention_bounds WHERE workflow = 't15_token' ORDER BY policy, state;
SELECT lifecycle_define_policy('t15_token_promise', '{"workflow": "t15_token", "max_retention": "10 days"}') AS version;
-- A new version of the workflow that would keep the promised policy's
-- instances longer (its values stay, the path grows) is refused, and not
-- stored.
SELECT lifecycle_define_workflow('t15_token', $${
  "params": {"valid_for": "1 day", "keep": "7 days"},
  "states": {
    "issued": {"timer": {"event": "lapse", "after": "valid_for", "from": "entered",
                         "to": "lapsed"}},
    "lapsed": {"timer": {"event": "purge", "after": ["keep", "1 mon"], "from": "due",
                         "to": "erased"}}
  },
  "events": {"issue": [{"from": ["none"], "to": "issued"}],
             "use": [{"from": ["issued"], "to": "lapsed"}]}
}$$);
SELECT max(version) AS versions FROM lifecycle.workflows WHERE name = 't15_token';
-- One that keeps the promise is stored; existing policy versions keep
-- the workflow version they were defined with.
SELECT lifecycle_define_workflow('t15_token', $${
  "params": {"valid_for": "2 days", "keep": "7 days"},
  "states": {
    "issued": {"timer": {"event": "lapse", "after": "valid_for", "from": "entered",
                         "to": "lapsed"}},
    "lapsed": {"timer": {"event": "purge", "after": "keep", "from": "due", "to": "erased"}}
  },
  "events": {"issue": [{"from": ["none"], "to": "issued"}],
             "use": [{"from": ["issued"], "to": "lapsed"}]}
}$$) AS version;
SELECT policy, policy_version, workflow_version, state, bound
  FROM lifecycle.retention_bounds WHERE workflow = 't15_token' ORDER BY policy, policy_version, state;

-- Auditors read the bounds; the application does not.
CREATE ROLE t15_auditor IN ROLE lifecycle_auditor;
CREATE ROLE t15_app IN ROLE lifecycle_app;
SET ROLE t15_auditor;
SELECT count(*) > 0 AS auditor_reads FROM lifecycle.retention_bounds;
RESET ROLE;
SET ROLE t15_app;
SELECT count(*) FROM lifecycle.retention_bounds;
RESET ROLE;
