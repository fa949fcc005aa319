-- lifecycle: OpenTelemetry traces (0.3.0; src/workers/exporter.c,
-- src/store/store_otel.c, src/net/otlp.c).
--
-- The exporter makes one span per history row after commit: it reads the
-- rows past its cursor from lifecycle._otel_transitions and moves the
-- cursor once they are exported (or dropped and counted).  Nothing here
-- holds a subject, e-mail, attrs or instance data: instances are named by
-- id.  The hot path writes nothing for it but history.traceparent, which
-- is NULL unless the application set lifecycle.traceparent.

-- The last history id the exporter is done with (one row; none: the
-- exporter starts at the end of history when export is first turned on).
CREATE TABLE lifecycle.otel_cursor (
	one			boolean PRIMARY KEY DEFAULT true CHECK (one),
	history_id	bigint NOT NULL,
	updated_at	timestamptz NOT NULL
);
REVOKE ALL ON lifecycle.otel_cursor FROM PUBLIC;

-- What a transition's span shows, per history row, with the workflow of
-- its instance.  trace_id: the instance's trace (32 hex digits).
CREATE VIEW lifecycle._otel_transitions AS
SELECT h.id, u.workflow, h.user_id AS instance_id,
	   u.tenant, h.event, h.from_state::text AS from_state,
	   h.to_state::text AS to_state, h.actor, u.policy, u.policy_version,
	   h.at, h.due_at, h.traceparent,
	   pg_catalog.replace(u.trace_id::text, '-', '') AS trace_id
  FROM lifecycle.history h
  LEFT JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) h.user_id;
REVOKE ALL ON lifecycle._otel_transitions FROM PUBLIC;
