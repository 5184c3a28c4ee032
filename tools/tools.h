/*
 * tools.h - the sub-commands of the `mqlite` command line tool. Each lives
 * in cmd_<name>.c and takes the arguments after its name (argv[0] is the
 * sub-command name). Return value: the process exit status.
 */
#ifndef MQLITE_TOOLS_H
#define MQLITE_TOOLS_H

int cmd_broker(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_spy(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
