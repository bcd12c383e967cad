#include "cli.h"
int cli_cmd_dump_log(int argc, char **argv) { return cli_fail("not yet"); }
int cli_cmd_perf(int argc, char **argv) { return cli_fail("not yet"); }
