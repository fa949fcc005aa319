/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  The scheduler background worker: fires due timers.
 *
 * IDENTIFICATION
 *	  src/scheduler.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SCHEDULER_H
#define LIFECYCLE_SCHEDULER_H

extern void scheduler_register(void);
extern PGDLLEXPORT void lifecycle_scheduler_main(Datum arg);

#endif							/* LIFECYCLE_SCHEDULER_H */
