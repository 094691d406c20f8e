#!/usr/bin/env bash
# Builds the Talos system extension image as an OCI archive, without a
# Docker engine: static binary (build-static.sh), the extension tree
# (manifest.yaml at the root, rootfs/ with the service spec and the binary),
# then buildah from scratch, pushed to an oci-archive.
#
#   deploy/talos/build.sh [x86_64|aarch64]   -> deploy/out/tern-extension-<arch>.tar
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-x86_64}
case "$arch" in x86_64) goarch=amd64 ;; aarch64) goarch=arm64 ;; *) echo "arch: x86_64 or aarch64" >&2; exit 2 ;; esac
version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="tern"))')
[ -x "deploy/out/$arch/tern" ] || deploy/build-static.sh
command -v buildah >/dev/null || apt-get install -y buildah

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
sed "s/@VERSION@/v$version/" deploy/talos/manifest.yaml > "$tree/manifest.yaml"
cp -r deploy/talos/rootfs "$tree/rootfs"
install -D -m 0755 "deploy/out/$arch/tern" "$tree/rootfs/usr/local/lib/containers/tern/usr/local/bin/tern"

export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
ctr=$(buildah from --arch "$goarch" scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT
buildah copy "$ctr" "$tree/manifest.yaml" /manifest.yaml >/dev/null
buildah copy "$ctr" "$tree/rootfs" /rootfs >/dev/null
buildah config --label org.opencontainers.image.title=tern \
    --label org.opencontainers.image.version="v$version" "$ctr"
image=$(buildah commit --rm "$ctr" "tern-extension:v$version-$arch")
out="deploy/out/tern-extension-$arch.tar"
rm -f "$out"
buildah push "$image" "oci-archive:$out:tern-extension:v$version"
echo "wrote $out ($(stat -c %s "$out") bytes)"
