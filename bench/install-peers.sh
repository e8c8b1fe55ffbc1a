#!/usr/bin/env bash
# bench/install-peers.sh - install bench/requirements.txt into .venv, one
# package at a time, so that a peer whose wheel does not install on this
# machine is named (and reported by bench/ann_peers.py as not run) instead of
# stopping the others.  Does nothing when the file has not changed since the
# last complete install (.venv/.bench.stamp).  hnswlib 0.8.0 has no wheel:
# pip builds it from source, so g++ is installed first when missing (as root,
# like bench/run.sh does for redis-server).
set -uo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.bench.stamp
cmp -s bench/requirements.txt "$stamp" && exit 0
if ! command -v g++ >/dev/null && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null ||
    echo "install-peers: g++ did not install; hnswlib will not build" >&2
fi
ok=1
while read -r line; do
  req="${line%%#*}"
  req="${req//[[:space:]]/}"
  [ -n "$req" ] || continue
  if ! .venv/bin/pip install -q --disable-pip-version-check "$req"; then
    echo "install-peers: $req did not install here; the bench reports it as not run" >&2
    ok=0
  fi
done < bench/requirements.txt
[ "$ok" = 1 ] && cp bench/requirements.txt "$stamp"
exit 0
