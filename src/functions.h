/*-------------------------------------------------------------------------
 *
 * functions.h
 *	  Argument checks shared by the SQL-callable functions.
 *
 * IDENTIFICATION
 *	  src/functions.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_FUNCTIONS_H
#define LIFECYCLE_FUNCTIONS_H

#include "fmgr.h"

extern char *fn_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
						 int maxlen);

#endif							/* LIFECYCLE_FUNCTIONS_H */
