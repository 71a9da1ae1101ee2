#!/usr/bin/env bash
# Install podman and debootstrap (plus uidmap, fuse-overlayfs) with apt-get when they are missing.
# CI runs this as root on a fresh Debian machine; elsewhere install podman yourself.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_tools
podman --version
