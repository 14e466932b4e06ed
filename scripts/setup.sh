#!/usr/bin/env bash
# Gets a machine ready to build and test imgopt's images: a Docker engine
# that answers, and base images to build on.
#
# - Engine: uses the one DOCKER_HOST (or the default socket) points at. If
#   none answers and this is a Debian machine where we are root, installs
#   Debian's docker.io if needed and starts dockerd in the background.
# - Base images: if Docker Hub is reachable, the real images are used and
#   nothing is done. Otherwise scripts/standins.sh builds local stand-ins
#   from Debian's packages and writes imgopt.local.toml. The same goes for
#   the Postgres and Redis images `imgopt verify` starts.
#
# - Registry: the push tests start Debian's docker-registry on loopback
#   with an htpasswd login (htpasswd from apache2-utils); both are
#   installed here when missing (with --tests only). The tests start and stop it themselves.
#
# Safe to run any number of times. IMGOPT_STANDINS=1 forces stand-ins,
# IMGOPT_STANDINS=0 never builds them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'setup: %s\n' "$*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_engine() {
    if ! command -v docker >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing Debian's docker.io (the scripts use the docker CLI)"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
        else
            log "these scripts need the docker CLI (imgopt itself does not): install Docker"
            exit 2
        fi
    fi
    if engine_answers; then
        return
    fi
    if [ -n "${DOCKER_HOST:-}" ]; then
        log "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
        exit 2
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "no Docker engine answers: start Docker (or set DOCKER_HOST) and retry"
        exit 2
    fi
    if ! command -v dockerd >/dev/null; then
        log "installing Debian's docker.io"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    if ! pgrep -x dockerd >/dev/null; then
        log "starting dockerd (log: /var/log/imgopt-dockerd.log)"
        nohup dockerd >/var/log/imgopt-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 1
    done
    if ! engine_answers; then
        log "dockerd did not answer within 60 s; see /var/log/imgopt-dockerd.log"
        exit 2
    fi
}

hub_reachable() {
    # A pull of the smallest base image either works quickly or fails on DNS.
    local alpine
    alpine=$(sed -n 's/^ALPINE_IMAGE *= *"\(.*\)"/\1/p' "$ROOT/imgopt.toml")
    docker image inspect "$alpine" >/dev/null 2>&1 ||
        timeout 60 docker pull -q "$alpine" >/dev/null 2>&1
}

install_registry() {
    if command -v docker-registry >/dev/null && command -v htpasswd >/dev/null; then
        return
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "the push tests need docker-registry and htpasswd: install Debian's docker-registry and apache2-utils"
        exit 2
    fi
    log "installing Debian's docker-registry and apache2-utils"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >/dev/null
}

start_engine
# Only the tests push to a registry; the main job does not need one.
if [ "${1:-}" = "--tests" ]; then
    install_registry
fi
log "engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

case "${IMGOPT_STANDINS:-auto}" in
    0) log "IMGOPT_STANDINS=0: using the configured base images" ;;
    1) "$ROOT/scripts/standins.sh" ;;
    *)
        if [ -f "$ROOT/imgopt.local.toml" ] || ! hub_reachable; then
            log "Docker Hub unreachable or stand-ins in use: building missing stand-ins"
            "$ROOT/scripts/standins.sh"
        else
            log "Docker Hub reachable: using the real base images"
            # imgopt verify does not pull: fetch its service images now.
            for image in $(sed -n 's/^\(postgres\|redis\)_image *= *"\(.*\)"/\2/p' "$ROOT/imgopt.toml"); do
                docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null
            done
        fi
        ;;
esac
