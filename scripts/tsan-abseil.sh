#!/usr/bin/env bash
# Builds Debian's own Abseil source, at the installed version and with Debian's patches,
# as shared libraries instrumented with ThreadSanitizer: Debian's binaries are not, so
# TSan would not see absl::Mutex (normd's and gRPC's locks) and would report false races.
# Usage: scripts/tsan-abseil.sh OUT_DIR  (the libraries end up in OUT_DIR/lib; a no-op
# when they are already there). Needs the Debian archive's source packages, which it
# reaches through the machine's own apt sources, and dpkg-dev.
set -euo pipefail
out=$(realpath -m "$1")
if [[ -e "$out/lib/libabsl_synchronization.so.20220623" ]]; then
  exit 0
fi
version=$(dpkg-query -W -f='${source:Version}' libabsl-dev)
work="$out/src"
rm -rf "$work" && mkdir -p "$work/apt/lists/partial"

# A private apt configuration that adds deb-src entries mirroring the machine's deb ones.
{
  for list in /etc/apt/sources.list.d/*.sources; do
    [[ -e "$list" ]] && sed 's/^Types: *deb$/Types: deb-src/' "$list"
    echo
  done
} > "$work/apt/src.sources"
{
  if [[ -e /etc/apt/sources.list ]]; then grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /'; fi
} > "$work/apt/src.list"
apt_options=(-o Dir::Etc::SourceList="$work/apt/src.list" -o Dir::Etc::SourceParts="$work/apt"
             -o Dir::State::Lists="$work/apt/lists" -o APT::Sandbox::User=root)
apt-get "${apt_options[@]}" update -qq
(cd "$work" && apt-get "${apt_options[@]}" source -qq --download-only "abseil=$version")
dpkg-source -x "$work"/abseil_*.dsc "$work/abseil" >/dev/null

# Line tables (-g1) are all TSan's stack traces need, as in normd's own builds.
cmake -S "$work/abseil" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$work/build"
mkdir -p "$out/lib"
find "$work/build/absl" -name 'libabsl_*.so.20220623' -exec cp -L {} "$out/lib/" \;
rm -rf "$work"
