#!/usr/bin/env bash
# Build (or load from cache) a minimal Debian base image with python3 + venv, for machines where
# base images cannot be pulled from a registry. Prints the image tag on stdout.
#   scripts/container/build-base.sh            # import cached tarball, or debootstrap + cache it
#   LLM2EDGE_BASE_REBUILD=1 scripts/container/build-base.sh   # ignore the cache
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_tools
if [[ -z "${LLM2EDGE_BASE_REBUILD:-}" ]] && podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE already present"
  echo "$BASE_IMAGE"; exit 0
fi

if [[ -n "${LLM2EDGE_BASE_REBUILD:-}" || ! -s "$BASE_CACHE" ]]; then
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root (or provide a cached $BASE_CACHE)"
  mirror="$(debian_mirror)"
  work="$(mktemp -d "${TMPDIR:-/tmp}/llm2edge-base.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "debootstrap $DEBIAN_SUITE from $mirror (a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$DEBIAN_SUITE" "$work/rootfs" "$mirror" >&2
  # Slim it: package lists, caches, docs, locales are not needed at run time.
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/*.bin \
    "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/* \
    "$work/rootfs"/var/log/*.log "$work/rootfs"/tmp/*
  mkdir -p "$(dirname "$BASE_CACHE")"
  tar -C "$work/rootfs" --numeric-owner -cf "$BASE_CACHE.partial" .
  mv "$BASE_CACHE.partial" "$BASE_CACHE"
  log "cached base rootfs at $BASE_CACHE ($(du -h "$BASE_CACHE" | cut -f1))"
fi

log "importing $BASE_CACHE as $BASE_IMAGE"
podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
  "$BASE_CACHE" "$BASE_IMAGE" >&2
echo "$BASE_IMAGE"
