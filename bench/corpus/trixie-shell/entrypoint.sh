#!/bin/sh
# Runs its arguments in a loop, each in a child the shell waits for, and a subshell first.
set -eu
uname -s >/dev/null
( cd /tmp && ls >/dev/null )
trap 'exit 0' TERM INT
while :; do
	"$@"
done
