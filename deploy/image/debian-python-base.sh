#!/usr/bin/env bash
# A slim Python 3.11 base image made from Debian's own packages, for a machine that reaches Debian's mirror but not
# Docker Hub (where the Dockerfile's default base, python:3.11-slim, lives). It is what that image is, from another
# source: Debian 12 (bookworm), the minimal variant, with Debian's Python 3.11 in a virtual environment at
# /usr/local/python, first on PATH, so that `python` and `pip` are what the Dockerfile expects. It trusts the CA
# certificates of the machine that builds it (a machine behind a TLS-inspecting proxy trusts its proxy), so pip in the
# build reaches the package index as this machine does.
#
# Needs root, debootstrap and podman (or docker; BUILDER=docker). Then:
#   podman build --build-arg BASE=localhost/mlcicd-python:3.11-slim -t mlcicd:0.1.0 .
# Usage: deploy/image/debian-python-base.sh [TAG]      (default: localhost/mlcicd-python:3.11-slim)
set -euo pipefail
TAG=${1:-localhost/mlcicd-python:3.11-slim}
BUILDER=${BUILDER:-podman}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$MIRROR" >"$work/log" 2>&1; then
  tail -20 "$work/log" >&2
  echo "debootstrap of Debian bookworm from $MIRROR failed (the lines above are its log)" >&2
  exit 1
fi
chroot "$root" python3 -m venv /usr/local/python
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -cf "$work/root.tar" .
"$BUILDER" import \
  --change "ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change 'CMD ["python3"]' \
  "$work/root.tar" "$TAG" >/dev/null
echo "$TAG"
