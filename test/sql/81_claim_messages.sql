-- Messages for the application: lifecycle_claim_messages() leases unrouted
-- messages oldest first, each hidden from other claimers until its lease
-- ends on the lifecycle clock, then handed out again with attempts + 1;
-- lifecycle_ack_messages() marks them sent; both see only the tenants the
-- acting role may see.  Bad arguments: 22004 / 22023, nothing changed.
-- (The real consumer with LISTEN/NOTIFY and a crash: test/t/710.)
CREATE ROLE t81_ab LOGIN IN ROLE lifecycle_app;
CREATE ROLE t81_a LOGIN IN ROLE lifecycle_app;
CREATE ROLE t81_aud LOGIN IN ROLE lifecycle_auditor;
SELECT lifecycle_grant_tenant('t81_ab', 't81a') AND lifecycle_grant_tenant('t81_ab', 't81b')
	   AND lifecycle_grant_tenant('t81_a', 't81a') AS granted;
SELECT lifecycle_invite('a1', 'a1@example.com', 't81a') > 0 AS a1,
	   lifecycle_invite('b1', 'b1@example.com', 't81b') > 0 AS b1,
	   lifecycle_invite('a2', 'a2@example.com', 't81a') > 0 AS a2,
	   lifecycle_invite('a3', 'a3@example.com', 't81a') > 0 AS a3;
CREATE VIEW t81_box AS
SELECT u.subject, o.status, o.attempts, o.claimed_at IS NOT NULL AS leased,
	   o.next_attempt_at - o.claimed_at AS lease, o.sent_at IS NOT NULL AS has_sent_at
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant IN ('t81a', 't81b');
GRANT SELECT ON t81_box TO PUBLIC;

-- Bad arguments.
\set VERBOSITY terse
SET ROLE t81_a;
SELECT * FROM lifecycle_claim_messages(NULL);
SELECT * FROM lifecycle_claim_messages(10, NULL);
SELECT * FROM lifecycle_claim_messages(0);
SELECT * FROM lifecycle_claim_messages(-5);
SELECT * FROM lifecycle_claim_messages(10001);
SELECT * FROM lifecycle_claim_messages(10, '0');
SELECT * FROM lifecycle_claim_messages(10, '-1 minute');
SELECT * FROM lifecycle_claim_messages(10, '8 days');
SELECT lifecycle_ack_messages(NULL);
SELECT lifecycle_ack_messages(ARRAY[1, NULL]::bigint[]);
RESET ROLE;
\set VERBOSITY default
SELECT subject, status, attempts, leased FROM t81_box ORDER BY subject;

-- Oldest first, at most max, payload and attempts; t81_a sees only t81a.
SET ROLE t81_a;
SELECT message, payload ->> 'email' AS email, payload ->> 'tenant' AS tenant, attempts
  FROM lifecycle_claim_messages(2, '10 minutes');
-- Leased messages are hidden from the next claim.
SELECT message, payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages();
SELECT count(*) AS nothing_left FROM lifecycle_claim_messages();
RESET ROLE;
SET ROLE t81_ab;
SELECT payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages();
RESET ROLE;
SELECT subject, status, attempts, leased, lease FROM t81_box ORDER BY subject;

-- Before the lease ends nothing comes back; after it, with attempts + 1.
-- At 9 minutes, a3's 5-minute lease has ended, a1's and a2's 10 have not.
SELECT lifecycle_travel('9 minutes') IS NOT NULL AS travelled;
SET ROLE t81_a;
SELECT payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages();
RESET ROLE;
SELECT lifecycle_travel('2 minutes') IS NOT NULL AS travelled;
SET ROLE t81_a;
SELECT payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages(10, '1 hour');
RESET ROLE;
-- Acknowledge a1, a2 and (another tenant's) b1: two are marked sent.
SELECT array_agg(o.id) AS ids
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant IN ('t81a', 't81b') AND u.subject IN ('a1', 'a2', 'b1') \gset
SET ROLE t81_a;
SELECT lifecycle_ack_messages(:'ids') AS acked;
RESET ROLE;
SELECT subject, status, attempts, leased, has_sent_at FROM t81_box ORDER BY subject;

-- Acknowledged messages never come back; the others do, after their lease.
SELECT lifecycle_travel('2 hours') IS NOT NULL AS travelled;
SET ROLE t81_ab;
SELECT payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages();
-- A second ack of a sent message, and an ack of a message nobody
-- claimed, change nothing.
SELECT lifecycle_invite('a4', 'a4@example.com', 't81a') > 0 AS a4;
RESET ROLE;
SELECT array_agg(o.id) AS ids
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id
 WHERE u.tenant = 't81a' AND u.subject IN ('a1', 'a4') \gset
SET ROLE t81_ab;
SELECT lifecycle_ack_messages(:'ids') AS acked_again;
RESET ROLE;
-- An erased user's messages are cancelled: never handed out.
SELECT lifecycle_erase('a4', 't81a') > 0 AS erased;
SELECT lifecycle_travel('10 minutes') IS NOT NULL AS travelled;
SET ROLE t81_ab;
SELECT payload ->> 'email' AS email, attempts FROM lifecycle_claim_messages();
RESET ROLE;
SELECT coalesce(subject, '(erased)') AS subject, status, attempts FROM t81_box ORDER BY 1;

-- Auditors may not claim or acknowledge.
SET ROLE t81_aud;
SELECT * FROM lifecycle_claim_messages();
SELECT lifecycle_ack_messages('{}');
RESET ROLE;
DROP VIEW t81_box;
