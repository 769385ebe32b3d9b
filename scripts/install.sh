#!/bin/sh
# Installs LwMQ for C programs and the `lwmq` command under a prefix:
#
#   PREFIX/include/lwmq/          lwmq.h, api-lwmq-messaging.h, api-lwmq-time.h,
#                                 lwmq-windows-types.h
#   LIBDIR/liblwmq.so.X.Y.Z       the shared library (soname liblwmq.so.X)
#   LIBDIR/liblwmq.so.X           -> liblwmq.so.X.Y.Z (what programs load)
#   LIBDIR/liblwmq.so             -> liblwmq.so.X (what the linker finds)
#   LIBDIR/liblwmq.a              the static library
#   LIBDIR/pkgconfig/lwmq.pc      for `pkg-config --cflags --libs lwmq`
#   PREFIX/bin/lwmq               the command
#   PREFIX/share/man/man1/lwmq.1  its man page
#   PREFIX/share/bash-completion/completions/lwmq, PREFIX/share/zsh/site-functions/_lwmq,
#   PREFIX/share/fish/vendor_completions.d/lwmq.fish
#
# Usage: scripts/install.sh [--prefix DIR] [--libdir DIR] [--profile NAME]
#                           [--target-dir DIR] [--no-build] [--lib-only]
#                           [--destdir DIR]
#   --prefix      where to install (default /usr/local)
#   --libdir      libraries and pkgconfig/ (default PREFIX/lib)
#   --profile     cargo profile to build and install (default release)
#   --target-dir  cargo's target directory (default: the workspace's target/)
#   --no-build    install what is already built
#   --lib-only    the C library, headers and lwmq.pc only (no command)
#   --destdir     staging root for packagers: files go to DESTDIR/PREFIX/...
#                 while lwmq.pc still says PREFIX
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
libdir=
profile=release
target_dir=
build=yes
cli=yes
destdir=

die() { echo "install.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need "$@"; prefix=$2; shift 2 ;;
        --libdir) need "$@"; libdir=$2; shift 2 ;;
        --profile) need "$@"; profile=$2; shift 2 ;;
        --target-dir) need "$@"; target_dir=$2; shift 2 ;;
        --destdir) need "$@"; destdir=$2; shift 2 ;;
        --no-build) build=no; shift ;;
        --lib-only) cli=no; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

case "$prefix" in /*) ;; *) die "--prefix must be an absolute path (got $prefix)" ;; esac
[ -n "$libdir" ] || libdir=$prefix/lib
case "$libdir" in /*) ;; *) die "--libdir must be an absolute path (got $libdir)" ;; esac
[ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-$root/target}

# The version comes from the workspace manifest (one place).
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml")
[ -n "$version" ] || die "no version in $root/Cargo.toml"
major=${version%%.*}

case "$profile" in
    dev|debug) profile_dir=debug; cargo_profile=dev ;;
    *) profile_dir=$profile; cargo_profile=$profile ;;
esac
out=$target_dir/$profile_dir

if [ "$build" = yes ]; then
    packages="-p liblwmq"
    [ "$cli" = yes ] && packages="$packages -p lwmq-cli"
    # shellcheck disable=SC2086
    (cd "$root" && cargo build --profile "$cargo_profile" --target-dir "$target_dir" $packages)
fi

[ -f "$out/liblwmq.so" ] || die "$out/liblwmq.so not found (build it, or drop --no-build)"
if [ "$cli" = yes ] && [ ! -x "$out/lwmq" ]; then
    die "$out/lwmq not found (build it, drop --no-build, or use --lib-only)"
fi

d() { printf '%s%s' "$destdir" "$1"; }
incdir=$prefix/include/lwmq
mkdir -p "$(d "$incdir")" "$(d "$libdir/pkgconfig")"

for h in lwmq.h api-lwmq-messaging.h api-lwmq-time.h lwmq-windows-types.h; do
    install -m 644 "$root/include/$h" "$(d "$incdir")/$h"
done

real=liblwmq.so.$version
install -m 755 "$out/liblwmq.so" "$(d "$libdir")/$real"
ln -sf "$real" "$(d "$libdir")/liblwmq.so.$major"
ln -sf "liblwmq.so.$major" "$(d "$libdir")/liblwmq.so"
if [ -f "$out/liblwmq.a" ]; then
    install -m 644 "$out/liblwmq.a" "$(d "$libdir")/liblwmq.a"
fi

# sed with | as the separator: paths hold slashes, never a newline or |.
case "$prefix$libdir$incdir" in *'|'*) die "paths must not contain |" ;; esac
sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" \
    -e "s|@INCLUDEDIR@|$prefix/include|g" -e "s|@VERSION@|$version|g" \
    "$root/crates/liblwmq/lwmq.pc.in" > "$(d "$libdir/pkgconfig")/lwmq.pc"
chmod 644 "$(d "$libdir/pkgconfig")/lwmq.pc"

if [ "$cli" = yes ]; then
    share=$prefix/share
    mkdir -p "$(d "$prefix/bin")" "$(d "$share/man/man1")" \
        "$(d "$share/bash-completion/completions")" "$(d "$share/zsh/site-functions")" \
        "$(d "$share/fish/vendor_completions.d")"
    install -m 755 "$out/lwmq" "$(d "$prefix/bin")/lwmq"
    "$out/lwmq" generate man > "$(d "$share/man/man1")/lwmq.1"
    "$out/lwmq" generate completions bash > "$(d "$share/bash-completion/completions")/lwmq"
    "$out/lwmq" generate completions zsh > "$(d "$share/zsh/site-functions")/_lwmq"
    "$out/lwmq" generate completions fish > "$(d "$share/fish/vendor_completions.d")/lwmq.fish"
fi

echo "installed lwmq $version under $destdir$prefix (libraries in $destdir$libdir)"
case ":${LD_LIBRARY_PATH:-}:" in
    *":$libdir:"*) ;;
    *) [ -z "$destdir" ] && [ "$libdir" != /usr/lib ] && [ "$libdir" != /usr/local/lib ] &&
        echo "note: $libdir is not on the loader's default path: run ldconfig $libdir, or set LD_LIBRARY_PATH or an rpath" ;;
esac
exit 0
