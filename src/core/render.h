/*-------------------------------------------------------------------------
 *
 * render.h
 *	  E-mail of a message: templates with {{placeholders}}, headers.
 *
 * IDENTIFICATION
 *	  src/core/render.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_RENDER_H
#define LIFECYCLE_RENDER_H

#include "utils/jsonb.h"

extern char *render_mail(const char *message, int64 id, Jsonb *payload,
						 Jsonb *options, const char *wf_subject,
						 const char *wf_text, const char *from, size_t *len);
extern const char *render_check_templates(Jsonb *templates, bool by_policy,
										  bool (*known) (const char *message));
extern const char *render_check_template(const char *tpl, bool subject);
extern const char *render_check_address(const char *address);

#endif							/* LIFECYCLE_RENDER_H */
