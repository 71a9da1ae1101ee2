#!/usr/bin/env bash
# Build Dockerfile.edge or Dockerfile.hub with podman on a machine that cannot pull base images:
# the base is the local debootstrap image from build-base.sh, and this machine's pip settings
# (index, find-links, CA certificate) are passed in as build args with their folders mounted.
#   scripts/container/build-image.sh edge [TAG] [-- extra podman build args]
#   scripts/container/build-image.sh hub  [TAG] [-- extra podman build args]
# Env: LLM2EDGE_BASE_IMAGE=... to use another base (e.g. python:3.11-slim where pulls work),
#      LLM2EDGE_PULL_BASE=1 to use the Dockerfile's own default base (no local base).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kind="${1:-}"; shift || true
case "$kind" in
  edge|hub) ;;
  *) die "usage: build-image.sh edge|hub [TAG] [-- podman build args]" ;;
esac
tag="localhost/llm2edge-$kind:dev"
if [[ $# -gt 0 && "$1" != "--" ]]; then tag="$1"; shift; fi
[[ "${1:-}" == "--" ]] && shift

ensure_tools
args=(--isolation=chroot --layers --format docker --network=host -f "$REPO_ROOT/Dockerfile.$kind" -t "$tag")
if [[ -z "${LLM2EDGE_PULL_BASE:-}" ]]; then
  base="$("$REPO_ROOT/scripts/container/build-base.sh")"
  args+=(--build-arg "BASE_IMAGE=$base")
fi
mapfile -t pipflags < <(pip_build_flags)
args+=("${pipflags[@]}")

log "podman build ${args[*]} $* $REPO_ROOT"
t0=$(date +%s)
podman build "${args[@]}" "$@" "$REPO_ROOT" >&2
log "built $tag in $(( $(date +%s) - t0 )) s, $(podman image inspect --format '{{.Size}}' "$tag") bytes"
echo "$tag"
