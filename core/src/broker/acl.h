/*
 * acl.h - topic access control in mosquitto's ACL file format and
 * semantics, plus rules added through the API (mqlite_broker_acl_add).
 *
 * File format (mosquitto's acl_file):
 *   # comment
 *   topic [read|write|readwrite|deny] FILTER    rule for the current user
 *   user NAME                                    following `topic` lines are NAME's
 *   pattern [read|write|readwrite|deny] FILTER   rule for everyone; %c is the
 *                                                client id, %u the user name
 * `topic` lines before the first `user` line apply to clients without a user
 * name. Without an access word the rule is readwrite. FILTER may contain
 * spaces (the rest of the line, trimmed) and wildcards.
 *
 * Decisions (mosquitto 2.0's default ACL check):
 *  - the user's own rules, deny rules first: a matching deny denies; a
 *    matching rule with the wanted access allows;
 *  - then the patterns the same way, with %c / %u substituted; patterns with
 *    %u are skipped for clients without a user name; a client whose id or
 *    user name contains '+' or '#' is denied whenever patterns exist (it
 *    could otherwise widen a pattern);
 *  - anything else is denied: once an ACL is in force, only what it grants
 *    is allowed (an empty file denies everything).
 * Wildcards at the first level never match topics starting with '$'
 * ([MQTT-4.7.2-1]), so `topic #` does not grant $SYS.
 *
 * SUBSCRIBE (mqlite's rule; mosquitto 2.0 grants every subscription and
 * filters on delivery only): a filter is refused when a deny rule covers
 * every topic it can match, or when no rule with read access can match any
 * topic it matches; otherwise granted, and each message is still checked
 * for read access on delivery.
 */
#ifndef MQ_BROKER_ACL_H
#define MQ_BROKER_ACL_H

#include "common.h"

#define MQ_ACL_NONE 0  /* deny */
#define MQ_ACL_READ 1
#define MQ_ACL_WRITE 2

typedef struct mq_acl mq_acl;

/* An empty rule set (denies everything). NULL on OOM. */
MQ_HIDDEN mq_acl *mq_acl_new(const mq_alloc *a);
MQ_HIDDEN void mq_acl_free(mq_acl *acl);

/* Read an ACL file into a new rule set: 0; MQLITE_ERR_IO (unreadable),
 * MQLITE_ERR_CONFIG ("file:line: message": bad line, bad access word,
 * invalid filter) or MQLITE_ERR_NOMEM; message in err. */
MQ_HIDDEN int mq_acl_load(const mq_alloc *a, const char *path, mq_acl **out, mq_err *err);

/* Add one rule: user NULL = clients without a user name; pattern 1 = a
 * `pattern` rule (user ignored). access MQ_ACL_*. 0; MQLITE_ERR_INVALID
 * (bad filter / access, message in err) or MQLITE_ERR_NOMEM. */
MQ_HIDDEN int mq_acl_add(mq_acl *acl, const char *user, int pattern, int access,
                         const char *filter, mq_err *err);

/* 1 if the client (id, user name or NULL) may read / write (MQ_ACL_READ or
 * MQ_ACL_WRITE) the topic name, else 0. */
MQ_HIDDEN int mq_acl_check(const mq_acl *acl, const char *client_id, const char *username,
                           mq_view topic, int access);

/* 1 if the client may subscribe to the (valid, non-shared) filter. */
MQ_HIDDEN int mq_acl_check_subscribe(const mq_acl *acl, const char *client_id,
                                     const char *username, mq_view filter);

#endif
