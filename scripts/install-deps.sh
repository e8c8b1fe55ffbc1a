#!/usr/bin/env bash
# install-deps.sh build|test|bench - install what is missing, nothing else.
#
# build: a C compiler, make, pkg-config and the libraries we link (cJSON, zstd, snappy, libcurl,
#        OpenSSL).
# test:  build + cmocka, redis-cli, cppcheck, clang-format, doxygen, clang
#        with its libFuzzer/sanitizer runtimes and llvm (symbolizer) for the
#        fuzz harnesses, the arm64 cross compiler and qemu-user (NEON
#        kernel tests), a Python venv in .venv with tests/requirements.txt
#        (pinned).
# bench: build + redis-server (the peer of bench/resp_bench.sh) and redis-tools.
# Debian packages are installed with apt-get when we are root; otherwise
# the exact command to run is printed and we stop.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-build}
pkgs_build=(gcc make pkg-config libcjson-dev libzstd-dev libsnappy-dev libssl-dev libcurl4-openssl-dev)
pkgs_test=(libcmocka-dev redis-tools cppcheck clang-format doxygen python3 python3-venv)
pkgs_test+=(clang libclang-rt-14-dev llvm)
pkgs_test+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
pkgs_bench=(redis-server redis-tools)

missing=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || missing+=("$1"); }
for p in "${pkgs_build[@]}"; do need "$p"; done
if [ "$want" = test ]; then
  for p in "${pkgs_test[@]}"; do
    # A python3 from elsewhere (pyenv) with a working venv module is fine.
    if [ "$p" = python3 ] || [ "$p" = python3-venv ]; then
      command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null && continue
    fi
    need "$p"
  done
fi

if [ "$want" = bench ]; then
  for p in "${pkgs_bench[@]}"; do need "$p"; done
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install-deps: missing packages; run:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ "$want" = test ]; then
  stamp=.venv/.requirements.stamp
  if [ ! -x .venv/bin/python ] || ! cmp -s tests/requirements.txt "$stamp"; then
    echo "install-deps: preparing .venv from tests/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt "$stamp"
  fi
fi
