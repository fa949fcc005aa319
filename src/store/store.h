/*-------------------------------------------------------------------------
 *
 * store.h
 *	  All SQL the extension runs on users, history, policies and the clock,
 *	  as saved plans with parameters.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/store.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_H
#define LIFECYCLE_STORE_H

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "storage/itemptr.h"
#include "utils/jsonb.h"

#include "machine.h"

/* A user row as the state machine and the API need it. */
typedef struct LcUserRow
{
	int64		id;
	int16		shard;			/* with id, the row's key (docs/CITUS.md) */
	char	   *tenant;
	char	   *subject;
	char	   *policy;
	int			policy_version;
	char	   *workflow;		/* the instance's workflow version */
	int			workflow_version;
	char	   *key;			/* '' but for a subject's repeated runs */
	const LcGraph *graph;		/* that version's graph: ids below */
	LcUser		user;
	TimestampTz next_at;		/* 0: none */
	LcEvent		next_event;
	char	   *hold_reason;
	int			retries;
} LcUserRow;

/* One change to one user: the row update, its history row, its message. */
typedef struct LcChange
{
	int64		id;
	int16		shard;			/* with id, the locked row's key */
	const LcGraph *graph;		/* names the ids below */
	LcState		from;			/* LC_STATE_NONE for a new user */
	LcState		to;
	TimestampTz state_since;
	TimestampTz state_due_at;	/* 0: NULL */
	TimestampTz last_seen;		/* 0: NULL */
	int			step;
	bool		held;
	const char *hold_reason;
	TimestampTz hold_until;		/* 0: NULL */
	TimestampTz next_at;		/* 0: NULL */
	LcEvent		next_event;
	TimestampTz deadline_at;	/* 0: NULL */
	const char *deadline_event;
	const char *event;			/* history event; NULL: no history row */
	TimestampTz due_at;			/* 0: NULL (calls) */
	LcMessage	message;
	const char *channel;		/* NULL: unrouted */
	TimestampTz archive_at;		/* 0: NULL */
	const char *detail;			/* jsonb text or NULL */
} LcChange;

/* One row of lifecycle.tenant_grants, its role resolved. */
typedef struct LcTenantGrant
{
	Oid			roleid;
	char	   *tenant;
} LcTenantGrant;

/* A new invitation. */
typedef struct LcInvite
{
	const char *tenant;
	const char *subject;
	const char *email;
	Jsonb	   *attrs;
	const char *region;
	const char *policy;
	int			policy_version;
	const char *channel;
	TimestampTz next_at;
	const char *next_event;
	TimestampTz deadline_at;
	const char *deadline_event;
	const char *state;			/* the state the start event enters */
	const char *event;			/* the start event */
	const char *message;		/* its message, or NULL */
	const char *workflow;		/* NULL: the user workflow */
	int			workflow_version;	/* 0: 1 */
	const char *key;			/* NULL: '' */
	Jsonb	   *data;			/* the instance's data; NULL: {} */
	TimestampTz archive_at;		/* the start message's deadline; 0: none */
} LcInvite;

/* A stored policy version (store_policy_load()). */
typedef struct LcPolicyRow
{
	Jsonb	   *def;
	char	   *workflow;
	int			workflow_version;
	int			n_hooks;
	char	  **hook_keys;
	Oid		   *hook_oids;
} LcPolicyRow;

extern void store_run(SPIPlanPtr *slot, const char *sql, int nargs,
					  const Oid *argtypes, Datum *values, const char *nulls,
					  bool read_only, long count, int expected);
extern MemoryContext store_result_cxt(void);
extern void store_text_param(const char *s, Datum *val, char *null);
extern Datum store_array(Datum *vals, bool *nulls, int n, Oid elemtype);
extern char *store_getstr(HeapTuple tup, TupleDesc desc, int col,
						  MemoryContext cxt);

extern Oid	store_policies_relid(void);
extern bool store_policy_load(const char *name, int version,
							  LcPolicyRow *row);
extern int	store_policy_latest(const char *name, Jsonb **def);
extern char *store_policy_workflow(const char *name);
extern int	store_policies_of_workflow(const char *workflow, char ***names,
									   Jsonb ***defs);
extern int	store_policy_versions(char ***names, int **versions);
extern int	store_policy_insert(const char *name, Jsonb *def, TimestampTz now,
								const LcPolicy *p);
extern bool store_channel_exists(const char *name);

extern Interval *store_clock_offset(void);
extern void store_clock_set(Interval *offset);

extern bool store_user_lookup(const char *tenant, const char *subject,
							  bool for_update, LcUserRow *row);
extern bool store_instance_lookup(const char *tenant, const char *subject,
								  const char *workflow, const char *key,
								  bool for_update, LcUserRow *row);
extern int	store_subject_instances(const char *tenant, const char *subject,
									LcUserRow **rows);
extern int64 store_user_insert(const LcInvite *inv, TimestampTz now,
							   const char *actor, bool *subject_others);
extern void store_user_reinvite(LcUserRow *row, const LcInvite *inv);
extern int	store_due_users(TimestampTz now, int limit, LcUserRow **rows);
extern void store_apply(const LcChange *changes, int n, TimestampTz now,
						const char *actor);
extern int64 store_erase(int64 id, const char *before, const char *reason,
						 const char *actor, TimestampTz now);
extern int64 store_erase_batch(const int64 *ids, const char *const *before,
							   int n, const char *reason, const char *actor,
							   TimestampTz now);
extern void store_record_failure(int64 id, TimestampTz retry_at,
								 const char *error);
extern TimestampTz store_next_due(void);
extern int	store_users_page(int64 after_id, int limit, LcUserRow **rows);
extern void store_set_deadlines(const int64 *ids, const TimestampTz *at,
								const char *const *event, int n);
extern int64 store_prune_history(int max_rows);
extern int64 store_counts_fold(void);
extern void store_counts_self(bool on);
extern void store_counts_add(const char *family, const char *tenant,
							 const char *k1, const char *k2, int64 n,
							 int64 held);
extern int	store_tenant_grants(MemoryContext cxt, LcTenantGrant **grants);

#endif							/* LIFECYCLE_STORE_H */
