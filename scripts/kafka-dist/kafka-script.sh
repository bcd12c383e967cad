#!/bin/sh
# One of Kafka's command-line scripts, served by Samsa's `samsa` tool.
#
# The build copies this file to <repo>/kafka/bin/<script>.sh for every script
# Samsa provides (CMakeLists.txt, SAMSA_KAFKA_SCRIPTS) and `make install` puts
# them in $(PREFIX)/share/samsa/kafka/bin, so the directory is laid out like
# Kafka's distribution and tools that take a Kafka path work. The script's own
# name says which tool to run; its flags are Kafka's (docs/KAFKA_SCRIPTS.md).
#
# The samsa binary is found relative to this file: <repo>/bin/samsa in the
# build tree, <prefix>/bin/samsa once installed; $SAMSA_CLI overrides both.
self=$0
while [ -L "$self" ]; do
    link=$(readlink "$self")
    case $link in
        /*) self=$link ;;
        *) self=$(dirname "$self")/$link ;;
    esac
done
here=$(cd "$(dirname "$self")" && pwd)
name=$(basename "$0")
if [ -n "$SAMSA_CLI" ]; then
    samsa=$SAMSA_CLI
elif [ -x "$here/../../bin/samsa" ]; then
    samsa=$here/../../bin/samsa
elif [ -x "$here/../../../../bin/samsa" ]; then
    samsa=$here/../../../../bin/samsa
elif command -v samsa >/dev/null 2>&1; then
    samsa=samsa
else
    echo "$name: cannot find the samsa binary (looked in $here/../../bin and $here/../../../../bin; set SAMSA_CLI)" >&2
    exit 1
fi
exec "$samsa" kafka "$name" -- "$@"
