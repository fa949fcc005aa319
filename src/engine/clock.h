/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  The lifecycle clock: the only source of "now" for lifecycle
 *	  decisions.
 *
 * IDENTIFICATION
 *	  src/clock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_CLOCK_H
#define LIFECYCLE_CLOCK_H

#include "datatype/timestamp.h"

extern TimestampTz clock_now(void);
extern TimestampTz clock_now_precise(void);
extern TimestampTz clock_travel(Interval *by);

#endif							/* LIFECYCLE_CLOCK_H */
