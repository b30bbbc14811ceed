#!/bin/bash
# infra/setup/test-env.sh — prepare everything the dockergate test suite needs.
#
# Called by `npm test` (as `sh infra/setup/test-env.sh`) on a fresh machine and
# on every rerun, as root, usually with CI=true. It is idempotent: every step
# first checks whether its result is already there, and heavy artefacts are
# cached under /var/cache/dockergate/, so a rerun takes seconds.
#
# Steps (one function each):
#   1. apt packages            (docker.io skopeo docker-registry debootstrap ...)
#   2. radare2                 (Debian sid's build in a private prefix: install-radare2.sh)
#   3. dockerd                 (no bridge, no iptables; overlay2, else vfs)
#   4. loopback registry       (Debian's docker-registry on 127.0.0.1:5000)
#   5. test images             (base from debootstrap, app and whiteout built on it)
#   6. push to the registry    (skopeo, skipped when the registry is up to date)
#   7. trixie root             (debootstrap trixie + gcc, musl-tools, strace: glibc 2.41 and
#                                musl 1.2.5 for the ground-truth tests, used by chroot)
#   8. summary                 (one line per component)
#
# Network rules this script obeys: it only talks to the Debian archive (apt,
# debootstrap) and to 127.0.0.1. No public container registry is ever used,
# dockerd never gets a bridge, and builds run with --network host so no
# bridge is needed.
set -eu

# npm runs us with `sh` (dash on Debian), which has no pipefail: re-run under
# bash (Essential on Debian, always present).
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -o pipefail
shopt -s inherit_errexit

# ---------------------------------------------------------------- settings
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE_DIR=/var/cache/dockergate
LOG_DIR=$CACHE_DIR/logs
ROOTFS_TAR=$CACHE_DIR/rootfs/bookworm-minbase.tar
# Debian 13's libcs for the ground-truth tests (test/helpers/libc-roots.ts reads the same path).
TRIXIE_ROOT=$CACHE_DIR/rootfs/trixie
TRIXIE_PACKAGES=gcc,libc6-dev,musl-tools,strace
TRIXIE_IMAGE=dockergate-test/base:trixie
REGISTRY_DIR=$CACHE_DIR/registry
# radare2 is not packaged for bookworm: a private install, found there by worker/radare2/locate.ts.
RADARE2_PREFIX=$CACHE_DIR/radare2
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_URL=http://$REGISTRY_ADDR
DOCKERD_LOG=/var/log/dockergate-dockerd.log
REGISTRY_LOG=/var/log/dockergate-registry.log

BASE_IMAGE=dockergate-test/base:bookworm
APP_IMAGE=dockergate-test/app:1
WHITEOUT_IMAGE=dockergate-test/whiteout:1
ALL_IMAGES="$BASE_IMAGE $APP_IMAGE $WHITEOUT_IMAGE"

APT_PACKAGES="docker.io skopeo docker-registry debootstrap musl-tools strace zstd golang-go curl time"

# The docker 28 CLI in /usr/local/bin has no buildx plugin; the classic builder
# is what we want anyway: one layer per RUN, and layer diffs made by the
# daemon's graph driver (that is where overlay2's opaque whiteouts come from).
export DOCKER_BUILDKIT=0
export DEBIAN_FRONTEND=noninteractive

STEP="init"
START_TIME=$(date +%s)
STEP_START=$START_TIME
SUMMARY=""
LAST_BUILD=""

# ---------------------------------------------------------------- helpers
log() { printf 'test-env: %s\n' "$*" >&2; }

die() {
	printf 'test-env: ERROR in step "%s": %s\n' "$STEP" "$*" >&2
	exit 1
}

# Any unexpected failure (set -e) still names the step it happened in.
on_exit() {
	rc=$?
	if [ "$rc" -ne 0 ]; then
		printf 'test-env: FAILED (exit %s) in step "%s" after %ss\n' \
			"$rc" "$STEP" "$(($(date +%s) - START_TIME))" >&2
	fi
}
trap on_exit EXIT

step() {
	STEP=$1
	STEP_START=$(date +%s)
	log "== $STEP"
}

step_done() { log "   done in $(($(date +%s) - STEP_START))s"; }

summary() { SUMMARY="$SUMMARY$*"$'\n'; }

registry_answers() { curl -fsS -o /dev/null --max-time 2 "$REGISTRY_URL/v2/" 2>/dev/null; }

# ---------------------------------------------------------------- 1. packages
# Install only what is missing. policy-rc.d keeps the packages' maintainer
# scripts from starting docker (which would create the docker0 bridge and
# iptables rules) or a registry listening on all interfaces.
install_packages() {
	step "1/8 apt packages"
	missing=""
	for p in $APT_PACKAGES; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		if [ "$status" != "install ok installed" ]; then
			missing="$missing $p"
		fi
	done
	if [ -z "$missing" ]; then
		log "   all present"
		step_done
		return
	fi
	log "   installing:$missing"
	policy_created=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy_created=1
	fi
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	if ! apt-get install -y --no-install-recommends $missing; then
		# The package lists may be stale or absent on a fresh machine.
		log "   install failed; running apt-get update and retrying"
		ok=""
		# shellcheck disable=SC2086
		apt-get update && apt-get install -y --no-install-recommends $missing && ok=1
		if [ -z "$ok" ]; then
			[ -z "$policy_created" ] || rm -f /usr/sbin/policy-rc.d
			die "apt-get update + install of$missing failed"
		fi
	fi
	[ -z "$policy_created" ] || rm -f /usr/sbin/policy-rc.d
	step_done
}

# ---------------------------------------------------------------- 2. radare2
ensure_radare2() {
	step "2/8 radare2"
	R2_PREFIX=$RADARE2_PREFIX sh "$REPO_ROOT/infra/setup/install-radare2.sh" >"$LOG_DIR/radare2.log" 2>&1 ||
		die "install-radare2.sh failed (log: $LOG_DIR/radare2.log): $(tail -n 3 "$LOG_DIR/radare2.log")"
	summary "radare2:  $("$RADARE2_PREFIX/bin/radare2" -v | head -n 1) in $RADARE2_PREFIX"
	step_done
}

# ---------------------------------------------------------------- 3. dockerd
# Start dockerd ourselves (there is no systemd here). --bridge=none with
# iptables and ip forwarding off means no docker0 bridge and no NAT: containers
# and builds get either no network or the host's loopback (--network host).
start_dockerd_with() {
	driver=$1
	log "   starting dockerd (storage driver $driver), log in $DOCKERD_LOG"
	printf '\n==== %s test-env.sh: dockerd --storage-driver=%s\n' "$(date -Is)" "$driver" >>"$DOCKERD_LOG"
	# setsid + nohup + redirected fds: dockerd outlives this script, never
	# holds npm's stdout open, and does not inherit the lock on fd 9 (else
	# the next run would wait on flock forever).
	setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false \
		--ip-masq=false --storage-driver="$driver" \
		</dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
	pid=$!
	for _ in $(seq 1 60); do
		if docker info >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "   dockerd exited early with storage driver $driver"
			return 1
		fi
		sleep 1
	done
	log "   dockerd did not answer within 60s with storage driver $driver"
	kill "$pid" 2>/dev/null || true
	sleep 2
	return 1
}

ensure_dockerd() {
	step "3/8 dockerd"
	if docker info >/dev/null 2>&1; then
		log "   already running"
	elif start_dockerd_with overlay2; then
		:
	else
		# overlay2 needs a kernel/filesystem that supports it as upper dir
		# (not the case e.g. on some overlay-on-overlay setups); vfs always
		# works, at the price of disk space and speed.
		log "   falling back to vfs; tail of $DOCKERD_LOG:"
		tail -n 5 "$DOCKERD_LOG" >&2 || true
		start_dockerd_with vfs || {
			tail -n 20 "$DOCKERD_LOG" >&2 || true
			die "dockerd did not start with overlay2 nor vfs (see $DOCKERD_LOG)"
		}
	fi
	server_version=$(docker version -f '{{.Server.Version}}') || die "docker version failed"
	driver=$(docker info -f '{{.Driver}}') || die "docker info failed"
	native_diff=$(docker info -f '{{range .DriverStatus}}{{if eq (index . 0) "Native Overlay Diff"}}{{index . 1}}{{end}}{{end}}' 2>/dev/null || true)
	log "   docker server $server_version, storage driver $driver${native_diff:+, native overlay diff $native_diff}"
	summary "docker:   server $server_version (client $(docker version -f '{{.Client.Version}}' 2>/dev/null || echo '?')), storage driver $driver${native_diff:+ (native overlay diff: $native_diff)}"
	step_done
}

# ---------------------------------------------------------------- 4. registry
# Debian's docker-registry (distribution v2), bound to loopback only, data
# kept under the cache dir so pushed blobs survive reruns.
ensure_registry() {
	step "4/8 registry"
	if registry_answers; then
		log "   $REGISTRY_URL/v2/ already answers"
	else
		mkdir -p "$REGISTRY_DIR/data"
		cat >"$REGISTRY_DIR/config.yml" <<-EOF
			# Written by infra/setup/test-env.sh — loopback-only registry for tests.
			version: 0.1
			log:
			  level: warn
			  fields:
			    service: registry
			storage:
			  filesystem:
			    rootdirectory: $REGISTRY_DIR/data
			  delete:
			    enabled: true
			  cache:
			    blobdescriptor: inmemory
			http:
			  addr: $REGISTRY_ADDR
			  headers:
			    X-Content-Type-Options: [nosniff]
		EOF
		log "   starting docker-registry on $REGISTRY_ADDR, log in $REGISTRY_LOG"
		printf '\n==== %s test-env.sh: docker-registry serve\n' "$(date -Is)" >>"$REGISTRY_LOG"
		# Same detaching as dockerd, including closing the lock fd 9.
		setsid nohup /usr/bin/docker-registry serve "$REGISTRY_DIR/config.yml" \
			</dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &
		pid=$!
		ok=""
		for _ in $(seq 1 60); do
			if registry_answers; then ok=1; break; fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if [ -z "$ok" ]; then
			tail -n 20 "$REGISTRY_LOG" >&2 || true
			die "docker-registry did not answer on $REGISTRY_URL/v2/ (see $REGISTRY_LOG)"
		fi
	fi
	summary "registry: $REGISTRY_URL (docker-registry, data in $REGISTRY_DIR/data)"
	step_done
}

# ---------------------------------------------------------------- 5. images
# The Debian mirror apt already uses (deb822 .sources or one-line .list).
debian_mirror() {
	{
		grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):\/\//) { print $i; break } }'
		grep -hiE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
			sed 's/^[^:]*:[[:space:]]*//' | tr ' \t' '\n\n'
	} | grep -E '^(https?|file)://' | grep -v -e security -e nodesource -e google | grep -E '/debian/?$' | head -n 1 || true
}

# Hash of a build context (file names + contents) and of the base image ID, so
# an image is rebuilt when its Dockerfile changes or when the base is re-imported.
context_sha() {
	dir=$1
	{
		docker image inspect -f '{{.Id}}' "$BASE_IMAGE"
		(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-64
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

build_base_image() {
	if [ -s "$ROOTFS_TAR" ]; then
		log "   rootfs tar cached: $ROOTFS_TAR"
	else
		mirror=$(debian_mirror)
		mirror=${mirror:-http://deb.debian.org/debian}
		mkdir -p "$(dirname "$ROOTFS_TAR")"
		# A run killed mid-debootstrap leaves its target behind (we hold the
		# lock, so no other run is using it): unmount and remove it.
		for stale in "$CACHE_DIR"/rootfs/debootstrap.*; do
			[ -d "$stale" ] || continue
			umount -R "$stale/proc" "$stale/sys" 2>/dev/null || true
			rm -rf --one-file-system "$stale"
		done
		target=$(mktemp -d "$CACHE_DIR/rootfs/debootstrap.XXXXXX")
		log "   debootstrap --variant=minbase bookworm from $mirror (log $LOG_DIR/debootstrap.log)"
		if ! debootstrap --variant=minbase bookworm "$target" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1; then
			tail -n 20 "$LOG_DIR/debootstrap.log" >&2 || true
			# debootstrap may leave /proc or /sys mounted in the target.
			umount -R "$target/proc" "$target/sys" 2>/dev/null || true
			rm -rf --one-file-system "$target"
			die "debootstrap failed (see $LOG_DIR/debootstrap.log)"
		fi
		[ -x "$target/bin/bash" ] || die "debootstrap produced no /bin/bash in $target"
		# Numeric owners: the image must not depend on this host's passwd.
		# --one-file-system: never pick up a leftover /proc or /sys mount.
		# The downloaded .debs and apt's package lists (~100 MB, as in the
		# official debian images) are dropped; dpkg's status database stays.
		tar --numeric-owner --one-file-system \
			--exclude='./var/cache/apt/archives/*.deb' \
			--exclude='./var/lib/apt/lists/*_*' \
			-C "$target" -cf "$ROOTFS_TAR.tmp" . ||
			die "tar of $target failed"
		mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
		rm -rf --one-file-system "$target"
		log "   rootfs tar written: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
	fi
	if image_id "$BASE_IMAGE" >/dev/null; then
		log "   $BASE_IMAGE present"
	else
		log "   docker import $ROOTFS_TAR as $BASE_IMAGE"
		docker import \
			--change 'CMD ["/bin/bash"]' \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			"$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null || die "docker import of $ROOTFS_TAR failed"
	fi
}

# build_fixture_image IMAGE CONTEXT_DIR: build unless the image carries the
# label of the current context hash. Sets LAST_BUILD to "built" or "cached".
build_fixture_image() {
	image=$1
	dir=$2
	[ -f "$dir/Dockerfile" ] || die "missing $dir/Dockerfile"
	sha=$(context_sha "$dir")
	old_id=$(image_id "$image" || true)
	if [ -n "$old_id" ]; then
		have=$(docker image inspect -f '{{index .Config.Labels "dockergate.context-sha"}}' "$image" 2>/dev/null || true)
		if [ "$have" = "$sha" ]; then
			log "   $image up to date (context $sha)"
			LAST_BUILD=cached
			return
		fi
	fi
	name=$(printf '%s' "$image" | tr '/:' '__')
	log "   docker build $image from ${dir#"$REPO_ROOT"/} (log $LOG_DIR/build-$name.log)"
	# --network host: dockerd has no bridge. The base image is local, so
	# nothing is ever pulled.
	if ! docker build --network host --label "dockergate.context-sha=$sha" \
		-t "$image" "$dir" >"$LOG_DIR/build-$name.log" 2>&1; then
		tail -n 30 "$LOG_DIR/build-$name.log" >&2 || true
		die "docker build of $image failed (see $LOG_DIR/build-$name.log)"
	fi
	new_id=$(image_id "$image")
	# Drop the superseded image so reruns do not pile up dangling images.
	if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
		docker rmi "$old_id" >/dev/null 2>&1 || true
	fi
	LAST_BUILD=built
}

# The whiteout fixture is only useful if its top layer really has both kinds of
# whiteout. With overlay2 and native diff the daemon turns the opaque xattr into
# `.wh..wh..opq`; with vfs or naive diff it may not, so check, and remove a bad
# image so the next run does not mistake it for a good cached one.
verify_whiteout_image() {
	tmp=$(mktemp -d)
	docker save -o "$tmp/image.tar" "$WHITEOUT_IMAGE" || { rm -rf "$tmp"; die "docker save $WHITEOUT_IMAGE failed"; }
	# manifest.json lists layers bottom to top, in both the legacy and the
	# OCI docker-save layouts.
	top=$(tar -xOf "$tmp/image.tar" manifest.json |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const l=JSON.parse(s)[0].Layers;console.log(l[l.length-1])})') ||
		{ rm -rf "$tmp"; die "cannot read manifest.json of $WHITEOUT_IMAGE"; }
	tar -xOf "$tmp/image.tar" "$top" | tar -t >"$tmp/top-layer.txt" ||
		{ rm -rf "$tmp"; die "cannot list top layer $top of $WHITEOUT_IMAGE"; }
	rm -f "$tmp/image.tar"
	log "   whiteout top layer entries: $(grep -c '' "$tmp/top-layer.txt"); whiteouts:" \
		"$(grep -E '(^|/)\.wh\.' "$tmp/top-layer.txt" | tr '\n' ' ')"
	bad=""
	grep -qxE 'data/replace-dir/\.wh\.\.wh\.\.opq' "$tmp/top-layer.txt" || bad="$bad data/replace-dir/.wh..wh..opq"
	grep -qxE 'data/\.wh\.gone' "$tmp/top-layer.txt" || bad="$bad data/.wh.gone"
	rm -rf "$tmp"
	if [ -n "$bad" ]; then
		docker rmi -f "$WHITEOUT_IMAGE" >/dev/null 2>&1 || true
		die "$WHITEOUT_IMAGE top layer lacks:$bad (storage driver $(docker info -f '{{.Driver}}'); overlay2 with native diff is needed)"
	fi
}

build_images() {
	step "5/8 test images"
	mkdir -p "$LOG_DIR" "$CACHE_DIR/rootfs"
	build_base_image
	build_fixture_image "$APP_IMAGE" "$REPO_ROOT/test/fixtures/images/app"
	build_fixture_image "$WHITEOUT_IMAGE" "$REPO_ROOT/test/fixtures/images/whiteout"
	if [ "$LAST_BUILD" = built ]; then
		verify_whiteout_image
	fi
	step_done
}

# ---------------------------------------------------------------- 6. push
# Push to the loopback registry unless it already serves the same config blob
# (its sha256 is the local image ID, since skopeo copies the config verbatim).
push_images() {
	step "6/8 push to $REGISTRY_ADDR"
	for image in $ALL_IMAGES; do
		local_id=$(image_id "$image") || die "$image missing locally"
		remote=$(skopeo inspect --tls-verify=false --config --raw "docker://$REGISTRY_ADDR/$image" 2>/dev/null |
			sha256sum | cut -c1-64) || remote=""
		if [ "sha256:$remote" = "$local_id" ]; then
			log "   $REGISTRY_ADDR/$image up to date"
			continue
		fi
		log "   skopeo copy $image -> $REGISTRY_ADDR/$image"
		skopeo copy --quiet --dest-tls-verify=false \
			"docker-daemon:$image" "docker://$REGISTRY_ADDR/$image" ||
			die "skopeo copy of $image to $REGISTRY_ADDR failed"
	done
	step_done
}

# ---------------------------------------------------------------- 7. trixie root
# A chroot of Debian 13 (glibc 2.41, musl 1.2.5, gcc 14, strace): the ground-truth tests compile
# their C fixtures there and run them under its strace. Complete once the marker file exists; a
# run killed midway leaves only a .tmp directory, removed by the next run.
ensure_trixie_root() {
	step "7/8 trixie root"
	marker="$TRIXIE_ROOT/.dockergate-packages"
	if [ -f "$marker" ] && [ "$(cat "$marker")" = "$TRIXIE_PACKAGES" ]; then
		log "   $TRIXIE_ROOT cached"
	else
		mirror=$(debian_mirror)
		mirror=${mirror:-http://deb.debian.org/debian}
		tmp="$TRIXIE_ROOT.tmp"
		umount -R "$tmp/proc" "$tmp/sys" 2>/dev/null || true
		rm -rf --one-file-system "$tmp" "$TRIXIE_ROOT"
		log "   debootstrap --variant=minbase --include=$TRIXIE_PACKAGES trixie from $mirror (log $LOG_DIR/debootstrap-trixie.log)"
		if ! debootstrap --variant=minbase --include="$TRIXIE_PACKAGES" trixie "$tmp" "$mirror" >"$LOG_DIR/debootstrap-trixie.log" 2>&1; then
			tail -n 20 "$LOG_DIR/debootstrap-trixie.log" >&2 || true
			umount -R "$tmp/proc" "$tmp/sys" 2>/dev/null || true
			rm -rf --one-file-system "$tmp"
			die "debootstrap trixie failed (see $LOG_DIR/debootstrap-trixie.log)"
		fi
		rm -f "$tmp"/var/cache/apt/archives/*.deb
		printf '%s' "$TRIXIE_PACKAGES" >"$tmp/.dockergate-packages"
		mv "$tmp" "$TRIXIE_ROOT"
	fi
	# The same root as a Docker base image for the Debian 13 corpus images (bench/corpus/trixie-*).
	if image_id "$TRIXIE_IMAGE" >/dev/null && [ "$(docker image inspect -f '{{index .Config.Labels "dockergate.packages"}}' "$TRIXIE_IMAGE" 2>/dev/null)" = "$TRIXIE_PACKAGES" ]; then
		log "   $TRIXIE_IMAGE present"
	else
		log "   docker import $TRIXIE_ROOT as $TRIXIE_IMAGE"
		tar --numeric-owner --one-file-system -C "$TRIXIE_ROOT" --exclude=./.dockergate-packages -c . |
			docker import \
				--change 'CMD ["/bin/bash"]' \
				--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
				--change "LABEL dockergate.packages=$TRIXIE_PACKAGES" \
				- "$TRIXIE_IMAGE" >/dev/null || die "docker import of $TRIXIE_ROOT failed"
	fi
	summary "trixie:   $TRIXIE_ROOT ($(chroot "$TRIXIE_ROOT" ldd --version | head -n 1), musl $(chroot "$TRIXIE_ROOT" dpkg-query -W -f='${Version}' musl))"
	step_done
}

# ---------------------------------------------------------------- 8. summary
print_summary() {
	step "8/8 summary"
	for image in $ALL_IMAGES; do
		summary "image:    $image $(image_id "$image") (also $REGISTRY_ADDR/$image)"
	done
	printf '%s' "$SUMMARY" | sed 's/^/test-env: /'
	log "ready in $(($(date +%s) - START_TIME))s"
}

main() {
	[ "$(id -u)" = 0 ] || die "must run as root (apt-get, dockerd, debootstrap)"
	mkdir -p "$CACHE_DIR" "$LOG_DIR"
	# Two concurrent runs (e.g. two npm test) must not race on dockerd or builds.
	# Background services close fd 9 so they never keep holding the lock.
	exec 9>"$CACHE_DIR/.lock"
	flock -w 900 9 || die "another test-env.sh still holds $CACHE_DIR/.lock after 15 min"
	install_packages
	ensure_radare2
	ensure_dockerd
	ensure_registry
	build_images
	push_images
	ensure_trixie_root
	print_summary
}

main "$@"
