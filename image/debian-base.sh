#!/usr/bin/env bash
# Build (or reuse) a Debian base image with Python for the Dockerfile's PYTHON_IMAGE, and print
# its name. For machines that reach Debian's package mirror but no container registry (CI here):
# debootstrap makes the root filesystem from Debian's packages, buildah turns it into an image.
#
#   image/debian-base.sh            -> localhost/switchyard-base:<release>-<key>
#
# It stands in for python:3.12-slim with what the Dockerfile uses: `python` (python-is-python3),
# `python -m venv` with pip (python3-venv), groupadd/useradd (passwd, in every Debian base).
# Its Python is the release's (3.11 on bookworm), which the project supports. The machine's CA
# bundle replaces Debian's, so that pip in the build stage reaches PyPI through this machine's
# egress proxy; that bundle is therefore in the image, which is for tests, not for shipping.
#
# Cached twice: the trimmed debootstrap tree as a tarball under $SWITCHYARD_IMAGE_CACHE (default
# /var/cache/switchyard), keyed by the release and the package list, and the image in buildah's
# storage, keyed by that and the CA bundle. Needs root, debootstrap and buildah.
set -euo pipefail

RELEASE=${DEBIAN_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
PACKAGES=python3,python3-venv,python-is-python3
CACHE=${SWITCHYARD_IMAGE_CACHE:-/var/cache/switchyard}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BUILDAH=(buildah --storage-driver vfs)

# The mirror apt uses here (deb822 .sources or one-line .list), unless DEBIAN_MIRROR says.
mirror() {
    if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local found
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
              2>/dev/null | awk '
        /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }
        /^URIs:/    { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }')
    echo "${found:-http://deb.debian.org/debian}"
}

key=$(printf '%s %s' "$RELEASE" "$PACKAGES" | sha256sum | cut -c1-12)
tarball="$CACHE/debian-$RELEASE-$key.tar"
tag="localhost/switchyard-base:$RELEASE-$(cat - "$CA_BUNDLE" <<<"$key" | sha256sum | cut -c1-12)"

scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

if "${BUILDAH[@]}" inspect --type image "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

if [[ ! -f $tarball ]]; then
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
    scratch+=("$work")
    echo "debootstrap $RELEASE from $(mirror) (cached as $tarball)" >&2
    debootstrap --variant=minbase --include="$PACKAGES" "$RELEASE" "$work/root" "$(mirror)" >&2
    # What slim images leave out: package lists and downloads, documentation, translations.
    rm -rf "$work"/root/var/cache/apt/* "$work"/root/var/lib/apt/lists/* "$work"/root/var/log/* \
           "$work"/root/usr/share/{doc,man,info,locale}/*
    tar -C "$work/root" --numeric-owner -cf "$work/base.tar" .
    mv "$work/base.tar" "$tarball"
fi

# FROM scratch + ADD unpacks the tarball as the image's one layer; the CA bundle goes on top.
context=$(mktemp -d)
scratch+=("$context")
ln "$tarball" "$context/base.tar" 2>/dev/null || cp "$tarball" "$context/base.tar"
cp "$CA_BUNDLE" "$context/ca-certificates.crt"
cat >"$context/Containerfile" <<'EOF'
FROM scratch
ADD base.tar /
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8
CMD ["python3"]
EOF
"${BUILDAH[@]}" build --isolation chroot --quiet -t "$tag" "$context" >&2
echo "$tag"
