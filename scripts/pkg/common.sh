# Sourced by scripts/pkg/*: what each supported architecture is called by
# Rust, Debian, RPM, gcc and qemu, and the cargo environment that builds for
# it with Debian's Rust 1.85 and a static libsodium.
#
#   pkg_arch ARCH   sets, for ARCH in x86_64 | i686 | armv7:
#     RUST_TARGET  x86_64-unknown-linux-gnu | i686-unknown-linux-gnu | armv7-unknown-linux-gnueabihf
#     DEB_ARCH     amd64 | i386 | armhf
#     RPM_ARCH     x86_64 | i686 | armv7hl
#     GNU_TRIPLE   x86_64-linux-gnu | i686-linux-gnu | arm-linux-gnueabihf  (gcc, binutils)
#     MULTIARCH    x86_64-linux-gnu | i386-linux-gnu | arm-linux-gnueabihf  (/usr/lib/<this>)
#     QEMU         "" (native) | qemu-i386 ... | qemu-arm -cpu cortex-a7 ...
#   pkg_cargo_env   exports the variables cargo needs (after pkg_arch)
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts sourcing this

PKG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKG_CACHE=${ONIONS_PKG_CACHE:-$PKG_ROOT/target/pkg-cache}
# Debian's cargo 1.85 keeps its own build tree: artifacts of the rustup
# toolchain in target/ are not mixed with these.
PKG_BUILD_DIR=${ONIONS_PKG_BUILD_DIR:-$PKG_ROOT/target/pkg-build}
PKG_OUT=${ONIONS_PKG_OUT:-$PKG_ROOT/target/pkg}
PKG_PROGRAMS=(onions-server onions-client onions-hs)
# Debian 12's rustc-web / cargo-web, installed by scripts/pkg/toolchain.
PKG_RUSTC=/usr/bin/rustc
PKG_CARGO=/usr/bin/cargo

pkg_die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
pkg_say() { echo "$(basename "$0"): $*" >&2; }

pkg_arch() {
  case "${1:-}" in
    x86_64|amd64)
      ARCH=x86_64 RUST_TARGET=x86_64-unknown-linux-gnu DEB_ARCH=amd64 RPM_ARCH=x86_64
      GNU_TRIPLE=x86_64-linux-gnu MULTIARCH=x86_64-linux-gnu
      QEMU="" ;;
    i686|i386)
      ARCH=i686 RUST_TARGET=i686-unknown-linux-gnu DEB_ARCH=i386 RPM_ARCH=i686
      GNU_TRIPLE=i686-linux-gnu MULTIARCH=i386-linux-gnu
      QEMU="qemu-i386 -L /usr/i686-linux-gnu -E LD_LIBRARY_PATH=/usr/i686-linux-gnu/lib" ;;
    armv7|armhf|armv7hl)
      ARCH=armv7 RUST_TARGET=armv7-unknown-linux-gnueabihf DEB_ARCH=armhf RPM_ARCH=armv7hl
      GNU_TRIPLE=arm-linux-gnueabihf MULTIARCH=arm-linux-gnueabihf
      # cortex-a7: the Raspberry Pi 2, the oldest board Debian's armhf runs on.
      QEMU="qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf -E LD_LIBRARY_PATH=/usr/arm-linux-gnueabihf/lib" ;;
    *) pkg_die "unknown architecture '${1:-}' (x86_64 | i686 | armv7)" ;;
  esac
  PKG_ARCH_OUT=$PKG_OUT/$ARCH
}

# Where libsodium.a for DEB_ARCH comes from: the host's libsodium-dev for
# amd64, the unpacked libsodium-dev:<arch> that scripts/pkg/toolchain
# fetched otherwise.
pkg_sodium_a() {
  if [ "$DEB_ARCH" = amd64 ]; then
    echo "/usr/lib/$MULTIARCH/libsodium.a"
  else
    echo "$PKG_CACHE/sysroot-$DEB_ARCH/usr/lib/$MULTIARCH/libsodium.a"
  fi
}

pkg_check_toolchain() {
  if [ ! -x "$PKG_CARGO" ] || [ ! -x "$PKG_RUSTC" ]; then
    pkg_die "Debian's cargo/rustc 1.85 are not installed: run scripts/pkg/toolchain"
  fi
  case "$("$PKG_RUSTC" --version)" in
    "rustc 1.85."*) ;;
    *) pkg_die "$PKG_RUSTC is not Rust 1.85: run scripts/pkg/toolchain" ;;
  esac
  if [ "$DEB_ARCH" != amd64 ]; then
    [ -d "$PKG_CACHE/sysroot-$DEB_ARCH/usr/lib/rustlib/$RUST_TARGET/lib" ] \
      || pkg_die "no Rust std for $RUST_TARGET in $PKG_CACHE/sysroot-$DEB_ARCH: run scripts/pkg/toolchain"
    command -v "$GNU_TRIPLE-gcc" >/dev/null || pkg_die "$GNU_TRIPLE-gcc missing: run scripts/pkg/toolchain"
  fi
  [ -f "$(pkg_sodium_a)" ] || pkg_die "$(pkg_sodium_a) missing: run scripts/pkg/toolchain"
}

# libsodium, statically. .cargo/config.toml sets SODIUM_USE_PKG_CONFIG=1, so
# libsodium-sys asks pkg-config. The pkg-config crate links a library
# statically only when asked (LIBSODIUM_STATIC) AND its libsodium.a lies
# outside the "system roots" (/usr, or PKG_CONFIG_SYSROOT_DIR when set);
# otherwise it emits a plain -lsodium and the linker takes libsodium.so. So
# PKG_CONFIG_SYSROOT_DIR cannot be used: each architecture gets a private
# prefix holding a copy of its libsodium.a and a libsodium.pc naming it,
# found through PKG_CONFIG_LIBDIR alone (nothing of the host's leaks in).
pkg_sodium_prefix() {
  local prefix=$PKG_CACHE/sodium-static-$DEB_ARCH src
  src=$(pkg_sodium_a)
  mkdir -p "$prefix/lib/pkgconfig"
  if ! cmp -s "$src" "$prefix/lib/libsodium.a"; then
    cp "$src" "$prefix/lib/libsodium.a"
  fi
  local version
  version=$(sed -n 's/^Version: *//p' "$(dirname "$src")/pkgconfig/libsodium.pc" 2>/dev/null || true)
  cat >"$prefix/lib/pkgconfig/libsodium.pc.new" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libsodium
Version: ${version:-1.0.18}
Description: libsodium for $DEB_ARCH, static, for onions' packages
Libs: -L\${libdir} -lsodium
Libs.private: -pthread
Cflags: -I\${includedir}
EOF
  mv "$prefix/lib/pkgconfig/libsodium.pc.new" "$prefix/lib/pkgconfig/libsodium.pc"
  echo "$prefix"
}

pkg_cargo_env() {
  local up prefix
  up=$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')
  prefix=$(pkg_sodium_prefix)
  # Debian's toolchain, not a rustup proxy that may come first on PATH.
  export RUSTC=$PKG_RUSTC
  export CARGO=$PKG_CARGO
  export RUSTDOC=/usr/bin/rustdoc
  export CARGO_TARGET_DIR=$PKG_BUILD_DIR
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS SODIUM_LIB_DIR SODIUM_SHARED
  export SODIUM_USE_PKG_CONFIG=1
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig
  export PKG_CONFIG_PATH=
  unset PKG_CONFIG_SYSROOT_DIR SYSROOT
  export LIBSODIUM_STATIC=1
  if [ "$DEB_ARCH" != amd64 ]; then
    export "CARGO_TARGET_${up}_LINKER=$GNU_TRIPLE-gcc"
    export "CARGO_TARGET_${up}_RUSTFLAGS=--sysroot $PKG_CACHE/sysroot-$DEB_ARCH/usr"
    export "CARGO_TARGET_${up}_RUNNER=$QEMU"
    export "CC_${RUST_TARGET//-/_}=$GNU_TRIPLE-gcc"
    export "AR_${RUST_TARGET//-/_}=$GNU_TRIPLE-ar"
  fi
}

# --- package contents ----------------------------------------------------------
# The version every package carries: Cargo.toml's.
pkg_version() {
  sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$PKG_ROOT/Cargo.toml" | head -1
}

# Reproducible timestamps: the last commit's time (or now, outside git).
pkg_source_date_epoch() {
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then echo "$SOURCE_DATE_EPOCH"; return; fi
  git -C "$PKG_ROOT" log -1 --format=%ct 2>/dev/null || date +%s
}

# Where non-binary sources are looked up: ONIONS_PKG_SRC, a colon-separated
# list of directories, first match wins (default: the repository). Tests
# may append a directory of stand-ins for files other people still write.
pkg_find_source() {
  local rel=$1 dir
  IFS=: read -r -a _dirs <<<"${ONIONS_PKG_SRC:-$PKG_ROOT}"
  for dir in "${_dirs[@]}"; do
    if [ -e "$dir/$rel" ]; then echo "$dir/$rel"; return 0; fi
  done
  return 1
}

# pkg_manifest PACKAGE: the manifest's lines for PACKAGE, "kind source dest".
pkg_manifest() {
  awk -v p="$1" '$1 == p && $0 !~ /^[[:space:]]*#/ { print $2, $3, $4 }' "$PKG_ROOT/scripts/pkg/manifest"
}

# pkg_check_sources PACKAGE...: every file the packages need exists, or stop
# with the list of those missing.
pkg_check_sources() {
  local pkg kind src dest missing=()
  for pkg in "$@"; do
    while read -r kind src dest; do
      case "$kind" in
        bin) [ -f "$PKG_ARCH_OUT/$src" ] || missing+=("$PKG_ARCH_OUT/$src (run scripts/pkg/build $ARCH)") ;;
        link) ;;
        *) pkg_find_source "$src" >/dev/null || missing+=("$src") ;;
      esac
    done < <(pkg_manifest "$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$(basename "$0"): error: missing files needed by the packages:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

# pkg_stage PACKAGE ROOT UNITDIR: installs PACKAGE's files under ROOT (a
# fresh directory) as the manifest says. Prints "kind /destination" lines.
pkg_stage() {
  local pkg=$1 root=$2 unitdir=$3 kind src dest to
  pkg_check_sources "$pkg"
  while read -r kind src dest; do
    case "$kind" in
      unit) to=$root$unitdir/$dest ;;
      zsh)  to=$root${PKG_ZSH_DIR:-/usr/share/zsh/vendor-completions}/$dest ;;
      doc)  to=$root/usr/share/doc/$pkg/$dest ;;
      *)    to=$root$dest ;;
    esac
    mkdir -p "$(dirname "$to")"
    case "$kind" in
      bin)    install -m 0755 "$PKG_ARCH_OUT/$src" "$to" ;;
      # Distributions want a fixed interpreter path, not /usr/bin/env
      # (PKG_BASH: /bin/bash for Debian, /usr/bin/bash for Fedora).
      script) sed "1s|^#! */usr/bin/env bash\$|#!${PKG_BASH:-/bin/bash}|" "$(pkg_find_source "$src")" >"$to"
              chmod 0755 "$to" ;;
      man)    gzip -9n <"$(pkg_find_source "$src")" >"$to"; chmod 0644 "$to" ;;
      link)   ln -sfn "$src" "$to" ;;
      *)      install -m 0644 "$(pkg_find_source "$src")" "$to" ;;
    esac
    echo "$kind ${to#"$root"}"
  done < <(pkg_manifest "$pkg")
}

# The crates statically linked into ARCH's programs, " name version (license)"
# a line, and Rust's std.
pkg_static_components() {
  echo " Rust standard library $("$PKG_RUSTC" --version | cut -d' ' -f2) (MIT OR Apache-2.0)"
  (cd "$PKG_ROOT" && CARGO_TARGET_DIR=$PKG_BUILD_DIR "$PKG_CARGO" tree --locked --offline \
      -e normal,no-proc-macro --prefix none --format '{p} ({l})' --target "$RUST_TARGET") \
    | sed -e 's/ (\*)$//' -e 's/ v\([0-9]\)/ \1/' | grep -v '^onions ' | sort -u | sed 's/^/ /'
}

# deb/copyright with the static components filled in (for both formats).
pkg_copyright() {
  local components
  components=$(pkg_static_components) || pkg_die "cargo tree failed (run scripts/pkg/build $ARCH first)"
  awk -v comp="$components" '$0 == "@STATIC_COMPONENTS@" { print comp; next } { print }' \
    "$PKG_ROOT/deb/copyright"
}

# An SPDX expression of every license in the programs, for RPM's License:.
pkg_spdx_license() {
  local components
  components=$(pkg_static_components) || pkg_die "cargo tree failed (run scripts/pkg/build $ARCH first)"
  { echo "BSD-3-Clause"; echo "ISC"
    echo "$components" | sed -n 's/.*(\(.*\))$/\1/p' | sed 's/^Apache-2.0 OR MIT$/MIT OR Apache-2.0/'
  } | awk '!seen[$0]++ { if (/ /) $0 = "(" $0 ")"; out = out (n++ ? " AND " : "") $0 } END { print out }'
}
