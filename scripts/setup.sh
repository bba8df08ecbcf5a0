#!/usr/bin/env bash
# Install locksmith into ./.venv on Python 3.12 (lerobot 0.6.1 needs >= 3.12), with the system
# library for offscreen rendering (OSMesa). Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq libosmesa6) >/dev/null
  else
    echo "warning: libOSMesa not found; camera rendering needs it (apt-get install libosmesa6)" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  PY=""
  for cand in python3.12 "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/3.12.1/bin/python")"; do
    if [ -n "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then PY="$cand"; break; fi
  done
  if [ -z "$PY" ] && command -v pyenv >/dev/null; then
    for v in $(ls "$(pyenv root)/versions" 2>/dev/null | grep '^3\.12\.'); do PY="$(pyenv root)/versions/$v/bin/python"; done
  fi
  [ -n "$PY" ] || { echo "error: Python 3.12 not found (lerobot 0.6.1 needs it)" >&2; exit 2; }
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
