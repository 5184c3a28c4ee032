/*
 * event.c - the public accessors of mqlite_event (an mq_event inside).
 */
#include "session.h"

/* mqlite_event is the public name of mq_event. */
#define EV(e) ((const mq_event *)(const void *)(e))

MQLITE_API int32_t mqlite_event_type(const mqlite_event *e)
{
    return e ? EV(e)->type : 0;
}

MQLITE_API int32_t mqlite_event_packet_id(const mqlite_event *e)
{
    return e ? EV(e)->pid : 0;
}

MQLITE_API int32_t mqlite_event_reason(const mqlite_event *e)
{
    return e ? EV(e)->reason : 0;
}

MQLITE_API int32_t mqlite_event_error(const mqlite_event *e)
{
    return e ? EV(e)->error : 0;
}

MQLITE_API const char *mqlite_event_text(const mqlite_event *e)
{
    return e && EV(e)->text ? EV(e)->text : "";
}

MQLITE_API int32_t mqlite_event_session_present(const mqlite_event *e)
{
    return e && EV(e)->type == MQLITE_EVENT_CONNECTED ? EV(e)->session_present : 0;
}

MQLITE_API const char *mqlite_event_topic(const mqlite_event *e, size_t *len)
{
    if (len)
        *len = e && EV(e)->topic ? EV(e)->topic_len : 0;
    return e ? EV(e)->topic : NULL;
}

MQLITE_API const void *mqlite_event_payload(const mqlite_event *e, size_t *len)
{
    if (len)
        *len = e && EV(e)->payload ? EV(e)->payload_len : 0;
    return e ? (const void *)EV(e)->payload : NULL;
}

MQLITE_API int32_t mqlite_event_qos(const mqlite_event *e)
{
    return e ? EV(e)->qos : 0;
}

MQLITE_API int32_t mqlite_event_retain(const mqlite_event *e)
{
    return e ? EV(e)->retain : 0;
}

MQLITE_API int32_t mqlite_event_dup(const mqlite_event *e)
{
    return e ? EV(e)->dup : 0;
}

MQLITE_API const mqlite_props *mqlite_event_props(const mqlite_event *e)
{
    /* Indexing on first use changes only the event's own cache. */
    return e ? mq_event_props((mq_event *)(void *)(uintptr_t)(const void *)e) : NULL;
}

MQLITE_API int32_t mqlite_event_count(const mqlite_event *e)
{
    return e ? (int32_t)EV(e)->count : 0;
}

MQLITE_API int32_t mqlite_event_reason_at(const mqlite_event *e, int32_t i)
{
    if (!e || i < 0 || (uint32_t)i >= EV(e)->count)
        return MQLITE_ERR_RANGE;
    return EV(e)->codes[i];
}

MQLITE_API const char *mqlite_event_type_name(int32_t type)
{
    static const char *const names[] = {"UNKNOWN",   "CONNECTED",    "CONNECT_FAILED",
                                        "DISCONNECTED", "MESSAGE",   "PUBLISHED",
                                        "PUBLISH_LOST", "SUBACK",    "UNSUBACK",
                                        "ERROR",     "TRACE",        "AUTH"};
    return type >= 1 && type <= MQLITE_EVENT_AUTH ? names[type] : names[0];
}
