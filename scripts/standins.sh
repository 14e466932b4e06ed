#!/usr/bin/env bash
# Builds local stand-ins for the public base images that imgopt's
# Dockerfiles use (node:18, node:18-alpine, alpine:3) and for the services
# that `imgopt verify` starts beside them (postgres:15, redis:7), from
# Debian's packages, for machines that cannot reach Docker Hub. Then writes
# imgopt.local.toml so the Rust tool uses them.
#
# Usage: scripts/standins.sh [--force]
#   --force  rebuild every image even if it already exists
#
# Needs: root (debootstrap), a running Docker engine, Debian's apt mirror.
# Safe to run twice: images that exist are skipped.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STANDINS_DIR="$REPO_ROOT/scripts/standins"
SUITE=bookworm

BASE_IMAGE=imgopt-standin/debian:bookworm-minbase
NODE_IMAGE=imgopt-standin/node:18
NODE_ALPINE_IMAGE=imgopt-standin/node:18-alpine
ALPINE_IMAGE=imgopt-standin/alpine:3
POSTGRES_IMAGE=imgopt-standin/postgres:15
REDIS_IMAGE=imgopt-standin/redis:7

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "standins: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "[standins] $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

SCRIPT_START="$(now)"
WORK_DIRS=()

# debootstrap mounts /proc and /sys inside its target; if it dies half-way
# they may still be mounted, and rm -rf must never walk into the host's.
remove_tree() {
    local dir="$1" mnt
    [ -d "$dir" ] || return 0
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done
    rm -rf --one-file-system "$dir"
}
cleanup() {
    local d
    for d in "${WORK_DIRS[@]+"${WORK_DIRS[@]}"}"; do remove_tree "$d"; done
}
trap cleanup EXIT

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The first http(s) URI of the host's apt sources that serves SUITE (or
# SUITE-security when $2 is "security"): the mirror the machine is known to
# reach. Reads deb822 *.sources files and one-line *.list files.
host_mirror() {
    local want="$1" files=() f
    for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && files+=("$f"); done
    if [ "${#files[@]}" -gt 0 ]; then
        awk -v want="$want" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""; types = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
                    if ($i ~ /^Suites:/) { suites = " " $i " " }
                    if ($i ~ /^Types:/)  { types = $i }
                }
                if (types !~ /deb( |$)/ || uris == "") next
                if (suites ~ (" " want "[ \n]")) { split(uris, u, /[ \t]+/); print u[1]; exit }
            }' "${files[@]}"
    fi
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$want" '
            $1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) { print $i; exit }
            }' "$f"
    done
}

first_line() { head -n 1 | tr -d '[:space:]'; }

build_base() {
    local t0 mirror security rootfs
    t0="$(now)"
    if [ "$(id -u)" -ne 0 ]; then
        log "debootstrap needs root: run this script as root"; exit 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
    fi
    mirror="$(host_mirror "$SUITE" | first_line || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    security="$(host_mirror "$SUITE-security" | first_line || true)"
    security="${security:-http://deb.debian.org/debian-security}"
    log "debootstrap $SUITE from $mirror"

    rootfs="$(mktemp -d /tmp/imgopt-rootfs.XXXXXX)"
    WORK_DIRS+=("$rootfs")
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >&2

    # Same suites as the host, so containers get security updates too.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
EOF
    # Slim the root before import, as debian:*-slim does: files removed in a
    # later layer would still count in every image built on top.
    # (${rootfs:?}: an empty variable must never turn these into host paths.)
    rm -rf "${rootfs:?}"/usr/share/doc/* "${rootfs:?}"/usr/share/man/* \
        "${rootfs:?}"/usr/share/info/* "${rootfs:?}"/usr/share/locale/* \
        "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/* \
        "${rootfs:?}"/var/log/* "${rootfs:?}"/dev/* "${rootfs:?}"/tmp/* "${rootfs:?}"/run/*
    chmod 1777 "$rootfs/tmp"

    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE (imgopt stand-in root)" \
        - "$BASE_IMAGE" >/dev/null
    remove_tree "$rootfs"
    log "imported $BASE_IMAGE in $(elapsed "$t0") s"
}

# build_standin IMAGE DOCKERFILE [docker build options...]
build_standin() {
    local image="$1" dockerfile="$2" t0 ctx extra=()
    shift 2
    extra+=("$@")
    t0="$(now)"
    # A throwaway context: the Dockerfile plus the machine's extra CAs, so
    # nothing else of the repository travels to the engine.
    ctx="$(mktemp -d /tmp/imgopt-standin-ctx.XXXXXX)"
    WORK_DIRS+=("$ctx")
    cp "$STANDINS_DIR/$dockerfile" "$ctx/Dockerfile"
    cp "$STANDINS_DIR/dpkg-slim.cfg" "$STANDINS_DIR"/*.sh "$ctx/"
    mkdir "$ctx/extra-ca"
    if [ -d /usr/local/share/ca-certificates ]; then
        cp -r /usr/local/share/ca-certificates/. "$ctx/extra-ca/"
    fi
    # Never an empty folder to COPY; update-ca-certificates only reads *.crt.
    echo "Extra CA certificates copied from the build machine." >"$ctx/extra-ca/README"
    [ "$FORCE" -eq 1 ] && extra+=(--no-cache)
    log "building $image from scripts/standins/$dockerfile"
    # --force-rm: a failed step leaves no stopped container behind.
    docker build --force-rm "${extra[@]+"${extra[@]}"}" --build-arg "DEBIAN_IMAGE=$BASE_IMAGE" \
        -t "$image" "$ctx" >&2
    remove_tree "$ctx"
    log "built $image in $(elapsed "$t0") s"
}

ensure() {
    local image="$1"; shift
    if [ "$FORCE" -eq 0 ] && image_exists "$image"; then
        log "$image exists, skipped (use --force to rebuild)"
        return 0
    fi
    "$@"
}

if ! docker info >/dev/null 2>&1; then
    log "cannot reach the Docker engine (is dockerd running? DOCKER_HOST?)"
    exit 1
fi

ensure "$BASE_IMAGE" build_base
ensure "$NODE_IMAGE" build_standin "$NODE_IMAGE" Dockerfile.node18
# node:18-alpine's npm is installed by the full stand-in's npm, so order matters.
ensure "$NODE_ALPINE_IMAGE" build_standin "$NODE_ALPINE_IMAGE" Dockerfile.node18-alpine \
    --build-arg "NPM_BUILDER_IMAGE=$NODE_IMAGE"
ensure "$ALPINE_IMAGE" build_standin "$ALPINE_IMAGE" Dockerfile.alpine3
# The services `imgopt verify` starts beside the app.
ensure "$POSTGRES_IMAGE" build_standin "$POSTGRES_IMAGE" Dockerfile.postgres
ensure "$REDIS_IMAGE" build_standin "$REDIS_IMAGE" Dockerfile.redis

# Written through a temp file so a crash never leaves half a config.
cat >"$REPO_ROOT/imgopt.local.toml.tmp" <<EOF
# Written by scripts/standins.sh: stand-in base images for a machine
# without Docker Hub. Not committed.
[build_args]
NODE_IMAGE = "$NODE_IMAGE"
NODE_ALPINE_IMAGE = "$NODE_ALPINE_IMAGE"
ALPINE_IMAGE = "$ALPINE_IMAGE"

[verify]
postgres_image = "$POSTGRES_IMAGE"
redis_image = "$REDIS_IMAGE"
EOF
mv "$REPO_ROOT/imgopt.local.toml.tmp" "$REPO_ROOT/imgopt.local.toml"
log "wrote $REPO_ROOT/imgopt.local.toml"
log "done in $(elapsed "$SCRIPT_START") s"
