#!/bin/sh
# docker-entrypoint.sh for the dockergate corpus memcached image.
#   docker run IMAGE                 -> memcached with the CMD's options, as user memcache
#   docker run IMAGE -vv -p 11312    -> options only: "memcached" is prepended
#   docker run IMAGE some-command    -> runs some-command as is
set -eu

log() {
	printf '%s docker-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# Re-run this script as the memcache user (memcached refuses to run as root without -u).
drop_privileges() {
	if [ "$(id -u)" = 0 ]; then
		log "dropping privileges to memcache"
		exec gosu memcache "$0" "$@"
	fi
}

case "${1:-}" in
	'') set -- memcached ;;
	-*) set -- memcached "$@" ;;
esac

case "$1" in
	memcached)
		drop_privileges "$@"
		log "starting memcached as $(id -un): $*"
		;;
	*)
		log "running $1"
		;;
esac

exec "$@"
