/*-------------------------------------------------------------------------
 *
 * args.h
 *	  Argument checks shared by the SQL-callable functions.
 *
 * Every check raises the SQLSTATEs of README.md, "Errors" (NULL: 22004;
 * empty, blank, too long or malformed: 22023) with a message that names
 * the argument and never echoes its value, which may be personal data.
 *
 * IDENTIFICATION
 *	  src/args.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_ARGS_H
#define LIFECYCLE_ARGS_H

#include "fmgr.h"
#include "utils/jsonb.h"

/* Limits on what a caller may store. */
#define LC_MAX_SUBJECT	256
#define LC_MAX_TENANT	63
#define LC_MAX_REGION	63
#define LC_MAX_EMAIL	254
#define LC_MAX_REASON	1000
#define LC_MAX_ATTRS	8192
#define LC_MAX_KEY		256		/* an instance's key */

extern char *args_text_arg(FunctionCallInfo fcinfo, int argno,
						   const char *name, int maxlen);
extern char *args_opt_text_arg(FunctionCallInfo fcinfo, int argno,
							   const char *name, int maxlen);
extern bool args_email_valid(const char *email);
extern void args_check_email(const char *email);
extern Jsonb *args_attrs_arg(FunctionCallInfo fcinfo, int argno);
extern Jsonb *args_object_arg(FunctionCallInfo fcinfo, int argno,
							  const char *name);

#endif							/* LIFECYCLE_ARGS_H */
