/*
 * acl.c - ACL rules and decisions (see acl.h for format and semantics).
 */
#define _POSIX_C_SOURCE 200809L
#include "acl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "topic.h"

typedef struct rule {
    struct rule *next;
    uint8_t access;    /* MQ_ACL_* bits; 0 = deny */
    uint8_t subst;     /* pattern containing %c or %u */
    uint8_t has_u;     /* pattern containing %u */
    uint32_t len;
    char filter[];
} rule;

typedef struct auser {
    struct auser *next;
    char *name;        /* NULL: clients without a user name */
    rule *rules;       /* deny rules first, then the others in file order */
    rule *tail;
} auser;

struct mq_acl {
    mq_alloc a;
    auser *users;
    rule *patterns, *ptail;
};

mq_acl *mq_acl_new(const mq_alloc *a)
{
    mq_acl *acl = mq_calloc(a, sizeof *acl);
    if (acl)
        acl->a = *a;
    return acl;
}

static void free_rules(const mq_alloc *a, rule *r)
{
    while (r) {
        rule *n = r->next;
        mq_free(a, r);
        r = n;
    }
}

void mq_acl_free(mq_acl *acl)
{
    if (!acl)
        return;
    mq_alloc a = acl->a;
    for (auser *u = acl->users; u;) {
        auser *n = u->next;
        free_rules(&a, u->rules);
        mq_free(&a, u->name);
        mq_free(&a, u);
        u = n;
    }
    free_rules(&a, acl->patterns);
    mq_free(&a, acl);
}

/* mosquitto puts deny rules at the front, the rest in order. */
static void link_rule(rule **head, rule **tail, rule *r)
{
    if (r->access == MQ_ACL_NONE) {
        r->next = *head;
        *head = r;
        if (!*tail)
            *tail = r;
        return;
    }
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static auser *find_user(const mq_acl *acl, const char *name)
{
    for (auser *u = acl->users; u; u = u->next)
        if ((!u->name && !name) || (u->name && name && strcmp(u->name, name) == 0))
            return u;
    return NULL;
}

int mq_acl_add(mq_acl *acl, const char *user, int pattern, int access, const char *filter,
               mq_err *err)
{
    const char *why = NULL;
    size_t len = filter ? strlen(filter) : 0;
    if (access < 0 || access > (MQ_ACL_READ | MQ_ACL_WRITE))
        return mq_err_set(err, MQLITE_ERR_INVALID, "bad ACL access %d", access);
    if (!filter || len > 65535 || mq_topic_check_filter(mq_view_make(filter, len), &why))
        return mq_err_set(err, MQLITE_ERR_INVALID, "invalid ACL topic filter \"%s\"%s%s",
                          filter ? filter : "", why ? ": " : "", why ? why : "");
    rule *r = mq_calloc(&acl->a, sizeof *r + len + 1);
    if (!r)
        return mq_err_code(err, MQLITE_ERR_NOMEM);
    memcpy(r->filter, filter, len);
    r->len = (uint32_t)len;
    r->access = (uint8_t)access;
    if (pattern) {
        r->has_u = strstr(filter, "%u") != NULL;
        r->subst = r->has_u || strstr(filter, "%c") != NULL;
        link_rule(&acl->patterns, &acl->ptail, r);
        return 0;
    }
    auser *u = find_user(acl, user);
    if (!u) {
        u = mq_calloc(&acl->a, sizeof *u);
        if (!u || (user && !(u->name = mq_memdup0(&acl->a, user, strlen(user))))) {
            mq_free(&acl->a, u);
            mq_free(&acl->a, r);
            return mq_err_code(err, MQLITE_ERR_NOMEM);
        }
        /* Appended: the order of users does not matter for decisions. */
        auser **pp = &acl->users;
        while (*pp)
            pp = &(*pp)->next;
        *pp = u;
    }
    link_rule(&u->rules, &u->tail, r);
    return 0;
}

/* ---- the file ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int access_word(const char *w)
{
    return strcmp(w, "read") == 0        ? MQ_ACL_READ
           : strcmp(w, "write") == 0     ? MQ_ACL_WRITE
           : strcmp(w, "readwrite") == 0 ? MQ_ACL_READ | MQ_ACL_WRITE
           : strcmp(w, "deny") == 0      ? MQ_ACL_NONE
                                         : -1;
}

typedef struct aparse {
    mq_acl *acl;
    const char *path;
    int line;
    char *user;
    mq_err *err;
} aparse;

static int pfail(aparse *p, const char *msg, const char *what)
{
    return mq_err_set(p->err, MQLITE_ERR_CONFIG, "%s:%d: %s%s%s%s", p->path, p->line, msg,
                      what ? " \"" : "", what ? what : "", what ? "\"" : "");
}

/* "topic|pattern [access] FILTER" with `rest` after the keyword. */
static int rule_line(aparse *p, char *rest, int pattern)
{
    rest = trim(rest);
    if (!*rest)
        return pfail(p, "missing topic", NULL);
    char *sp = strpbrk(rest, " \t");
    int access = MQ_ACL_READ | MQ_ACL_WRITE;
    char *filter = rest;
    if (sp) {
        /* The first word is the access type, the rest the filter (which may
         * hold spaces), as mosquitto reads it. */
        *sp = '\0';
        access = access_word(rest);
        if (access < 0)
            return pfail(p, "invalid topic access type", rest);
        filter = trim(sp + 1);
    }
    mq_err e;
    if (mq_acl_add(p->acl, p->user, pattern, access, filter, &e))
        return e.code == MQLITE_ERR_NOMEM ? mq_err_code(p->err, MQLITE_ERR_NOMEM)
                                          : pfail(p, e.msg, NULL);
    return 0;
}

static int acl_line(aparse *p, char *line)
{
    line = trim(line);
    if (!*line || *line == '#')
        return 0;
    char *sp = strpbrk(line, " \t");
    char *rest = sp ? sp + 1 : line + strlen(line);
    if (sp)
        *sp = '\0';
    if (strcmp(line, "topic") == 0 || strcmp(line, "pattern") == 0)
        return rule_line(p, rest, line[0] == 'p');
    if (strcmp(line, "user") == 0) {
        rest = trim(rest);
        if (!*rest)
            return pfail(p, "missing user name", NULL);
        mq_free(&p->acl->a, p->user);
        p->user = mq_memdup0(&p->acl->a, rest, strlen(rest));
        return p->user ? 0 : mq_err_code(p->err, MQLITE_ERR_NOMEM);
    }
    return pfail(p, "invalid line: expected topic, pattern or user, not", line);
}

int mq_acl_load(const mq_alloc *a, const char *path, mq_acl **out, mq_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return mq_err_set(err, MQLITE_ERR_IO, "ACL file %s: %s", path, strerror(errno));
    aparse p;
    memset(&p, 0, sizeof p);
    p.acl = mq_acl_new(a);
    p.path = path;
    p.err = err;
    int rc = p.acl ? 0 : mq_err_code(err, MQLITE_ERR_NOMEM);
    char *line = NULL;
    size_t cap = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        p.line++;
        rc = acl_line(&p, line);
    }
    free(line);
    if (!rc && ferror(f))
        rc = mq_err_set(err, MQLITE_ERR_IO, "%s: read error", path);
    fclose(f);
    if (p.acl)
        mq_free(&p.acl->a, p.user);
    if (rc) {
        mq_acl_free(p.acl);
        return rc;
    }
    *out = p.acl;
    return 0;
}

/* ---- filter relations, level by level ---- */

typedef struct lv {
    const uint8_t *p, *e; /* the whole string */
    const uint8_t *s;     /* current level start */
    uint32_t n;           /* current level length */
    int at_end;           /* no current level */
    int first;
} lv;

static void lv_init(lv *l, mq_view v)
{
    l->p = l->s = v.p;
    l->e = v.p + v.len;
    l->first = 1;
    l->at_end = 0;
    const uint8_t *q = l->s;
    while (q < l->e && *q != '/')
        q++;
    l->n = (uint32_t)(q - l->s);
}

static void lv_next(lv *l)
{
    const uint8_t *q = l->s + l->n;
    l->first = 0;
    if (q >= l->e) {
        l->at_end = 1;
        return;
    }
    l->s = q + 1;
    q = l->s;
    while (q < l->e && *q != '/')
        q++;
    l->n = (uint32_t)(q - l->s);
}

static int lv_is(const lv *l, char c)
{
    return !l->at_end && l->n == 1 && l->s[0] == (uint8_t)c;
}

static int lv_wild(const lv *l)
{
    return lv_is(l, '+') || lv_is(l, '#');
}

static int lv_dollar(const lv *l)
{
    return !l->at_end && l->n > 0 && l->s[0] == '$' && !lv_wild(l);
}

static int lv_eq(const lv *a, const lv *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->s, b->s, a->n) == 0);
}

/* Some topic name matches both filters. */
static int intersects(mq_view x, mq_view y)
{
    lv a, b;
    lv_init(&a, x);
    lv_init(&b, y);
    /* [MQTT-4.7.2-1]: a wildcard first level never matches "$..." */
    if ((lv_wild(&a) && lv_dollar(&b)) || (lv_wild(&b) && lv_dollar(&a)))
        return 0;
    for (;;) {
        if (lv_is(&a, '#') || lv_is(&b, '#'))
            return 1;
        if (a.at_end || b.at_end)
            return a.at_end && b.at_end;
        if (!lv_is(&a, '+') && !lv_is(&b, '+') && !lv_eq(&a, &b))
            return 0;
        lv_next(&a);
        lv_next(&b);
    }
}

/* Every topic name the filter f matches is matched by d. */
static int covers(mq_view d, mq_view f)
{
    lv a, b;
    lv_init(&a, d);
    lv_init(&b, f);
    if (lv_wild(&a) && lv_dollar(&b))
        return 0;
    for (;;) {
        if (lv_is(&a, '#'))
            return 1;
        if (b.at_end)
            return a.at_end;
        if (a.at_end || lv_is(&b, '#'))
            return 0;
        if (!lv_is(&a, '+') && (lv_is(&b, '+') || !lv_eq(&a, &b)))
            return 0;
        lv_next(&a);
        lv_next(&b);
    }
}

/* ---- decisions ---- */

typedef struct who {
    const char *id;
    const char *user;
    size_t idlen, ulen;
} who;

/* The rule's filter with %c / %u substituted, in buf (or a new allocation
 * in *heap when it does not fit). 0 when the rule does not apply. */
static int expand(const mq_acl *acl, const rule *r, const who *w, char *buf, size_t cap,
                  char **heap, mq_view *out)
{
    if (!r->subst) {
        *out = mq_view_make(r->filter, r->len);
        return 1;
    }
    if (r->has_u && !w->user)
        return 0;
    size_t need = r->len + 1;
    for (uint32_t i = 0; i + 1 < r->len; i++)
        if (r->filter[i] == '%' && (r->filter[i + 1] == 'c' || r->filter[i + 1] == 'u'))
            need += r->filter[i + 1] == 'c' ? w->idlen : w->ulen;
    char *d = buf;
    if (need > cap) {
        *heap = mq_malloc(&acl->a, need);
        if (!*heap)
            return 0;
        d = *heap;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < r->len; i++) {
        if (i + 1 < r->len && r->filter[i] == '%' && r->filter[i + 1] == 'c') {
            memcpy(d + k, w->id, w->idlen);
            k += w->idlen;
            i++;
        } else if (i + 1 < r->len && r->filter[i] == '%' && r->filter[i + 1] == 'u' && w->user) {
            memcpy(d + k, w->user, w->ulen);
            k += w->ulen;
            i++;
        } else {
            d[k++] = r->filter[i];
        }
    }
    *out = mq_view_make(d, k);
    return 1;
}

#define CHECK_TOPIC 0
#define CHECK_SUBSCRIBE 1

/* One rule list: 1 allow, -1 deny, 0 no decision. */
static int walk_rules(const mq_acl *acl, const rule *r, const who *w, mq_view t, int access,
                      int mode)
{
    char buf[256];
    for (; r; r = r->next) {
        char *heap = NULL;
        mq_view f;
        if (!expand(acl, r, w, buf, sizeof buf, &heap, &f))
            continue;
        int verdict = 0;
        if (mode == CHECK_TOPIC) {
            if (mq_topic_match(f, t))
                verdict = r->access == MQ_ACL_NONE ? -1 : (r->access & access) ? 1 : 0;
        } else if (r->access == MQ_ACL_NONE) {
            verdict = covers(f, t) ? -1 : 0;
        } else if ((r->access & MQ_ACL_READ) && intersects(f, t)) {
            verdict = 1;
        }
        mq_free(&acl->a, heap);
        if (verdict)
            return verdict;
    }
    return 0;
}

static int decide(const mq_acl *acl, const char *id, const char *user, mq_view t, int access,
                  int mode)
{
    if (!acl)
        return 1;
    who w = {id ? id : "", user, id ? strlen(id) : 0, user ? strlen(user) : 0};
    const auser *u = find_user(acl, user);
    int v = u ? walk_rules(acl, u->rules, &w, t, access, mode) : 0;
    if (v)
        return v > 0;
    if (!acl->patterns)
        return 0;
    /* mosquitto: with patterns in force, '+' or '#' in the client id or
     * user name could widen a pattern; such clients get nothing. */
    if (strpbrk(w.id, "+#") || (user && strpbrk(user, "+#")))
        return 0;
    return walk_rules(acl, acl->patterns, &w, t, access, mode) > 0;
}

int mq_acl_check(const mq_acl *acl, const char *client_id, const char *username, mq_view topic,
                 int access)
{
    return decide(acl, client_id, username, topic, access, CHECK_TOPIC);
}

int mq_acl_check_subscribe(const mq_acl *acl, const char *client_id, const char *username,
                           mq_view filter)
{
    return decide(acl, client_id, username, filter, MQ_ACL_READ, CHECK_SUBSCRIBE);
}
