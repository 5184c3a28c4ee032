/*
 * pktprint.h - one-line and multi-line renderings of decoded packets, for
 * `mqlite decode`, `pub/sub -d` and `spy --decode`.
 */
#ifndef MQLITE_PKTPRINT_H
#define MQLITE_PKTPRINT_H

#include <stdio.h>

#include "mqlite.h"

/* Print `p` on one line: "PUBLISH v4 qos=1 retain=0 dup=0 id=7 topic="a/b" payload=5B ..." */
void pkt_print(FILE *out, const mqlite_packet *p);
/* Print bytes as text when printable UTF-8, else as hex; at most `max` bytes. */
void pkt_print_bytes(FILE *out, const void *data, size_t len, size_t max);
/* Print a property list as " props={name=value, ...}" (nothing when empty). */
void pkt_print_props(FILE *out, const mqlite_props *pr);

#endif
