-- Citus (issue 21, docs/CITUS.md): every row of a subject carries the
-- subject's bucket, lifecycle._shard(tenant, subject), in its column
-- "shard": its instances, their history, their messages and their
-- evidence of erasure.  This file runs last: it checks every row the
-- suite has written, through every path that writes one (invite, start,
-- adopt, transitions by calls and by ticks, update, export, migration,
-- erasure).

-- The bucket is FNV-1a of the tenant, a zero byte and the subject, modulo
-- 1024: the same on every machine and in every version (fixed values).
SELECT lifecycle._shard('acme', 'alice') AS alice, lifecycle._shard('acme', 'bob') AS bob,
	   lifecycle._shard('', '') AS empty, lifecycle._shard('acmea', 'lice') AS shifted,
	   lifecycle._shard(NULL, 'alice') IS NULL AS strict;
SELECT min(b) AS lowest, max(b) AS highest, count(DISTINCT b) AS buckets_used
  FROM (SELECT lifecycle._shard('t93', 's' || i) AS b FROM generate_series(1, 20000) i) s;

-- Rows of its own, besides what the suite left: 50 subjects invited, 10
-- of them with a data subject request too.
SELECT count(lifecycle_invite('s' || i, 's' || i || '@example.com', 't93'))
  FROM generate_series(1, 50) i;
SELECT count(lifecycle_start('dsar', 's' || i, 't93')) FROM generate_series(1, 10) i;

-- Live instances: their subject's bucket; every instance of a subject the
-- same one.
SELECT count(*) >= 60 AS many_instances,
	   count(*) FILTER (WHERE u.shard <> lifecycle._shard(u.tenant, u.subject)) AS wrong
  FROM lifecycle.users u WHERE u.subject IS NOT NULL;
SELECT count(*) AS subjects_split
  FROM (SELECT 1 FROM lifecycle.users u WHERE u.subject IS NOT NULL
		 GROUP BY u.tenant, u.subject HAVING count(DISTINCT u.shard) > 1) s;

-- History, messages and evidence (erased instances too): their instance's
-- bucket.
SELECT count(*) > 100 AS many_history,
	   count(*) FILTER (WHERE h.shard <> u.shard) AS wrong
  FROM lifecycle.history h JOIN lifecycle.users u ON u.id = h.user_id;
SELECT count(*) > 10 AS many_messages,
	   count(*) FILTER (WHERE o.shard <> u.shard) AS wrong
  FROM lifecycle.outbox o JOIN lifecycle.users u ON u.id = o.user_id;
SELECT count(*) > 10 AS many_erasures,
	   count(*) FILTER (WHERE e.shard <> u.shard) AS wrong
  FROM lifecycle.erasures e JOIN lifecycle.users u ON u.id = e.user_id;

-- Every key names the bucket (Citus wants the distribution column in
-- each): the primary keys and the unique index on the subject.
SELECT c.relname AS index, pg_get_indexdef(i.indexrelid) ~ 'shard' AS has_shard,
	   i.indisprimary AS primary_key
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid IN ('lifecycle.users'::regclass, 'lifecycle.history'::regclass,
					  'lifecycle.outbox'::regclass, 'lifecycle.erasures'::regclass)
   AND i.indisunique
 ORDER BY 1;

-- No trigger on these tables notifies (a Citus shard's transaction could
-- not): the writing calls do.
SELECT t.tgname, t.tgrelid::regclass
  FROM pg_trigger t
 WHERE t.tgrelid IN ('lifecycle.users'::regclass, 'lifecycle.history'::regclass,
					 'lifecycle.outbox'::regclass, 'lifecycle.erasures'::regclass)
   AND t.tgfoid = 'lifecycle._outbox_notify()'::regprocedure;
