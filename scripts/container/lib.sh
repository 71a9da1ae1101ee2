# Shared helpers for scripts/container/*.sh (sourced, not run).
# Settings (environment):
#   LLM2EDGE_BASE_IMAGE   local base image tag        (default localhost/llm2edge-base:bookworm)
#   LLM2EDGE_BASE_CACHE   cached base rootfs tarball  (default $HOME/.cache/llm2edge-ci/base.tar)
#   LLM2EDGE_DEBIAN_MIRROR  Debian mirror for debootstrap (default: first URI in apt's sources)
#   LLM2EDGE_DEBIAN_SUITE   Debian suite                  (default bookworm)

set -euo pipefail

BASE_IMAGE="${LLM2EDGE_BASE_IMAGE:-localhost/llm2edge-base:bookworm}"
BASE_CACHE="${LLM2EDGE_BASE_CACHE:-${HOME:-/root}/.cache/llm2edge-ci/base.tar}"
DEBIAN_SUITE="${LLM2EDGE_DEBIAN_SUITE:-bookworm}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[container] %s\n' "$*" >&2; }
die() { printf '[container] error: %s\n' "$*" >&2; exit 2; }

# The Debian mirror apt already uses (deb822 "URIs:" or one-line "deb URL suite"), else deb.debian.org.
debian_mirror() {
  if [[ -n "${LLM2EDGE_DEBIAN_MIRROR:-}" ]]; then echo "$LLM2EDGE_DEBIAN_MIRROR"; return; fi
  local f url
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r "$f" ]] || continue
    url="$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+/debian/?([[:space:]]|$)' "$f" \
      | grep -oE '[a-z]+://[^[:space:]]+' | head -n1 || true)"
    if [[ -n "$url" ]]; then echo "${url%/}"; return; fi
  done
  echo "http://deb.debian.org/debian"
}

# Install podman (and debootstrap) with apt-get when missing; needs root on Debian/Ubuntu.
ensure_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v debootstrap >/dev/null 2>&1 || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}: run as root or install them first"
    log "installing ${missing[*]} uidmap fuse-overlayfs with apt-get"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      "${missing[@]}" uidmap fuse-overlayfs ca-certificates >&2
  fi
}

# Podman's settings for this machine: build with chroot isolation (no runc/rlimit trouble).
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

# pip settings of this machine that a build must see, as --build-arg/--volume flags.
# Only what is set is passed; file:// indexes/find-links are mounted at the same path.
pip_build_flags() {
  local flags=() v path
  local cert="${PIP_CERT:-$(pip_conf cert)}"
  if [[ -n "$cert" && -r "$cert" ]]; then
    flags+=(--build-arg "PIP_CERT=$cert" --volume "$(dirname "$cert"):$(dirname "$cert"):ro")
  fi
  v="${PIP_INDEX_URL:-$(pip_conf index-url)}"
  [[ -n "$v" ]] && flags+=(--build-arg "PIP_INDEX_URL=$v")
  v="${PIP_EXTRA_INDEX_URL:-$(pip_conf extra-index-url)}"
  if [[ -n "$v" ]]; then
    flags+=(--build-arg "PIP_EXTRA_INDEX_URL=$v")
    for path in $v; do
      # a file:// index's pages point at files beside it (../files/...): mount its parent folder
      if [[ "$path" == file://* && -d "${path#file://}" ]]; then
        local dir; dir="$(dirname "${path#file://}")"
        flags+=(--volume "$dir:$dir:ro")
      fi
    done
  fi
  v="${PIP_FIND_LINKS:-$(pip_conf find-links)}"
  if [[ -n "$v" ]]; then
    flags+=(--build-arg "PIP_FIND_LINKS=$v")
    for path in $v; do
      [[ -d "$path" ]] && flags+=(--volume "$path:$path:ro")
    done
  fi
  v="${PIP_DEFAULT_TIMEOUT:-}"
  [[ -n "$v" ]] && flags+=(--build-arg "PIP_DEFAULT_TIMEOUT=$v")
  printf '%s\n' "${flags[@]}"
}

# One pip config value (global/env scopes), empty when unset or pip is absent.
pip_conf() {
  local py
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || return 0
  "$py" -m pip config list 2>/dev/null | sed -nE "s/^(global|:env:)\.$1='(.*)'$/\2/p" | head -n1
}
