#!/bin/sh
# build-image.sh BINARY ARCHIVE [IMAGE]: build the temporal-opa image from a
# static temporal-opa BINARY with buildah (no daemon, no registry: FROM scratch)
# and write it to ARCHIVE as an OCI archive (docker load / podman load /
# skopeo copy oci-archive:ARCHIVE ... accept it). IMAGE names it (default
# temporal-opa:latest). BUILDAH_ROOT, when set, keeps buildah's storage there
# instead of /var/lib/containers (the tests use a temporary one).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BINARY ARCHIVE [IMAGE]" >&2; exit 2; }
bin=$1 archive=$2 image=${3:-temporal-opa:latest}
here=$(cd "$(dirname "$0")" && pwd)
certs=/etc/ssl/certs/ca-certificates.crt

command -v buildah >/dev/null || { echo "$0: buildah not found: run 'make deps' (apt-get install buildah)" >&2; exit 1; }
[ -f "$certs" ] || { echo "$0: $certs not found: run 'make deps' (apt-get install ca-certificates)" >&2; exit 1; }
[ -x "$bin" ] || { echo "$0: $bin: not an executable; run 'make build'" >&2; exit 1; }
# A cgo binary needs a dynamic loader, which a scratch image has not; and the
# image ships a release build, as make build links it: no path of the build
# machine (-trimpath), no symbol table or DWARF (-ldflags='-s -w').
if command -v go >/dev/null; then
	info=$(go version -m "$bin")
	if ! printf '%s\n' "$info" | grep -q 'CGO_ENABLED=0'; then
		echo "$0: $bin is not static (built without CGO_ENABLED=0); build it with 'make build'" >&2; exit 1
	fi
	if ! printf '%s\n' "$info" | grep -q 'trimpath=true'; then
		echo "$0: $bin holds the build machine's paths (built without -trimpath); build it with 'make build'" >&2; exit 1
	fi
fi
# The build information does not record -ldflags under -trimpath: look for the
# sections instead (readelf, else go tool nm, which fails without a symbol table).
if command -v readelf >/dev/null; then
	if readelf -S "$bin" | grep -qE '\.(z?debug_|symtab)'; then
		echo "$0: $bin keeps its debug information (a symbol table or DWARF: built without -ldflags='-s -w'); build it with 'make build'" >&2; exit 1
	fi
elif command -v go >/dev/null && go tool nm "$bin" >/dev/null 2>&1; then
	echo "$0: $bin keeps its symbol table (built without -ldflags='-s -w'); build it with 'make build'" >&2; exit 1
fi

set --
if [ -n "${BUILDAH_ROOT:-}" ]; then
	set -- --root "$BUILDAH_ROOT/storage" --runroot "$BUILDAH_ROOT/run"
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/etc/temporal/config" "$ctx/rootfs/tmp" "$ctx/home/temporal"
chmod 1777 "$ctx/rootfs/tmp"
cp "$bin" "$ctx/rootfs/usr/local/bin/temporal-opa"
cp "$certs" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
cp "$here/rootfs/etc/passwd" "$here/rootfs/etc/group" "$ctx/rootfs/etc/"

buildah "$@" --storage-driver vfs bud --isolation chroot --layers=false --quiet -f "$here/Containerfile" -t "$image" "$ctx"
rm -f "$archive"
buildah "$@" --storage-driver vfs push --quiet "$image" "oci-archive:$archive:$image"
buildah "$@" --storage-driver vfs rmi "$image" >/dev/null   # the archive is the product; keep no copy in storage
echo "$archive: $image"
