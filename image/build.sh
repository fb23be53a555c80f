#!/usr/bin/env bash
# `make image`: build the Dockerfile with buildah, which needs no Docker engine, and print the
# image's size. Without PYTHON_IMAGE the base is made from Debian's packages (debian-base.sh), for
# machines that reach no container registry (CI here); with a registry, build the shipping image
# with `make image PYTHON_IMAGE=python:3.12-slim` (the Dockerfile's default) or `docker build .`.
#
#   IMAGE=localhost/switchyard:dev  the tag to build
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/switchyard:dev}
BUILDAH=(buildah --storage-driver vfs)

base=${PYTHON_IMAGE:-$(image/debian-base.sh)}
started=$(date +%s)
"${BUILDAH[@]}" build --isolation chroot --build-arg PYTHON_IMAGE="$base" -t "$IMAGE" . >&2
# The image this tag named before is dangling now; vfs keeps each image as a full copy.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
echo "built $IMAGE on $base in $(($(date +%s) - started)) s:" \
     "$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE")" >&2
