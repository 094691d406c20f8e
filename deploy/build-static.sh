#!/usr/bin/env bash
# Builds static (musl) release binaries of tern for x86_64 and aarch64 into
# deploy/out/<arch>/tern and prints their sizes. Adds the rustup targets
# when missing; aarch64 is linked with the toolchain's rust-lld, so no cross
# compiler is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=deploy/out
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
for t in "${targets[@]}"; do
    cargo build --release --locked -p tern --target "$t"
    arch=${t%%-*}
    mkdir -p "$out/$arch"
    cp "target/$t/release/tern" "$out/$arch/tern"
done
printf '%-10s %10s  %s\n' arch bytes file
for t in "${targets[@]}"; do
    arch=${t%%-*}
    f="$out/$arch/tern"
    printf '%-10s %10s  %s\n' "$arch" "$(stat -c %s "$f")" "$(file -b "$f" 2>/dev/null | cut -c1-70)"
done
