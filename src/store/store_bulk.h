/*-------------------------------------------------------------------------
 *
 * store_bulk.h
 *	  The SQL of the user-base functions (adopt, update, migrate, export,
 *	  forecast): set-based statements with parameters, saved plans where
 *	  the text is fixed.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/store_bulk.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_BULK_H
#define LIFECYCLE_STORE_BULK_H

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/jsonb.h"

#include "machine.h"

/* One lifecycle_adopt() call. */
typedef struct LcAdoptSpec
{
	Oid			relid;			/* the accounts relation, locked */
	bool		has_region;		/* optional columns present */
	bool		has_attrs;
	bool		has_registered;
	Oid			caller;			/* the statement reads as this role */
	const char *tenant;
	const char *policy;
	int			policy_version;
	TimestampTz now;
	const char *actor;
	const char *active_state;	/* a registered account's state */
	const Interval *dormant_after;	/* its timer: last_seen + this */
	const char *active_event;
	const char *active_deadline_event;
	const char *expired_state;	/* a never registered account's state */
	TimestampTz expired_next_at;	/* its next timer, from the machine */
	const char *expired_event;
	const char *expired_deadline_event;
	const Interval *spread;		/* NULL: due timers fire at once */
} LcAdoptSpec;

typedef struct LcAdoptResult
{
	int64		rows;			/* rows read from the relation */
	int64		adopted;		/* users created */
	int64		first_bad;		/* position of the first bad row, 0: none */
	int			problem;		/* its LcAdoptProblem */
} LcAdoptResult;

/* Why a row of the accounts relation cannot be adopted. */
typedef enum LcAdoptProblem
{
	LC_ADOPT_OK = 0,
	LC_ADOPT_SUBJECT_NULL,
	LC_ADOPT_SUBJECT_EMPTY,
	LC_ADOPT_SUBJECT_LONG,
	LC_ADOPT_EMAIL_NULL,
	LC_ADOPT_EMAIL_BAD,
	LC_ADOPT_REGION_BAD,
	LC_ADOPT_ATTRS_BAD,
	LC_ADOPT_ATTRS_LARGE,
	LC_ADOPT_LAST_SEEN_BAD,
	LC_ADOPT_DUPLICATE = 15		/* highest: the encoding has 4 bits */
} LcAdoptProblem;

/* One lifecycle_update() call: NULL fields stay unchanged. */
typedef struct LcUpdateSpec
{
	int64		id;
	LcState		state;
	const char *email;
	Jsonb	   *attrs;
	const char *region;
	const char *policy;
	int			policy_version;
	TimestampTz next_at;		/* 0: NULL */
	const char *next_event;		/* NULL: none */
	TimestampTz deadline_at;	/* 0: NULL */
	const char *deadline_event;
} LcUpdateSpec;

/*
 * One instance as the forecast simulates it.  The state and timer event
 * are names of the row's workflow version (state_name, event_name: NULL
 * for none) until the forecast resolves them in the graph it runs.
 */
typedef struct LcForecastRow
{
	char	   *tenant;
	char	   *policy;
	int			policy_version;
	char	   *workflow;
	int			workflow_version;
	char	   *state_name;
	char	   *event_name;
	LcUser		user;
	TimestampTz next_at;		/* 0: none */
	LcEvent		next_event;
} LcForecastRow;

/* Which instances the forecast reads. */
typedef enum LcForecastScope
{
	LC_FORECAST_DUE,			/* next timer before the horizon */
	LC_FORECAST_POLICY,			/* every running instance of the policy */
	LC_FORECAST_WORKFLOW		/* every running instance of the workflow */
} LcForecastScope;

extern void store_bulk_adopt(const LcAdoptSpec *spec, LcAdoptResult *res);
extern int	store_bulk_update(const LcUpdateSpec *spec, TimestampTz now,
							  const char *actor);
extern int64 store_bulk_migrate(const char *policy, int to_version,
								TimestampTz now, const char *actor,
								TimestampTz *earliest);
extern Jsonb *store_bulk_export(int64 id, const char *state, TimestampTz now,
								const char *actor);
extern int	store_bulk_update_shared(const int64 *ids, int n, const char *email,
									 Jsonb *attrs, const char *region,
									 TimestampTz now, const char *actor);
extern Jsonb *store_bulk_export_instances(const int64 *ids, int n,
										  const int64 *record,
										  const char *const *states,
										  int nrecord, Jsonb *user_doc,
										  TimestampTz now, const char *actor);
extern Portal store_bulk_forecast_open(TimestampTz until, const char *policy,
									   const char *tenant, const char *workflow,
									   LcForecastScope scope);
extern int	store_bulk_forecast_fetch(Portal portal, int max,
									  LcForecastRow *rows, MemoryContext cxt);

#endif							/* LIFECYCLE_STORE_BULK_H */
