#!/usr/bin/env bash
# Install scenebase into .venv beside this checkout and start `scenebase serve` with the given arguments.
# A stock Debian/Ubuntu Python refuses `pip install` outside a virtual environment (PEP 668), and ships venv's
# pip bootstrap separately (python3-venv): this creates the venv, installing python3-venv first if needed.
# Reinstalls only when pyproject.toml changed since the last install. PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "--- creating .venv" >&2
  if ! "$PY" -m venv .venv; then
    rm -rf .venv
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "cannot create a virtual environment with $PY: install its venv module, then rerun" >&2
      exit 1
    fi
    echo "--- installing python3-venv (apt)" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
STAMP=.venv/.scenebase-installed
if [ ! -x .venv/bin/scenebase ] || [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "--- installing scenebase into .venv" >&2
  .venv/bin/python -m pip install -q -e .
  touch "$STAMP"
fi
# the web app (/app/): built with npm from webapp/package-lock.json when missing or older than its sources
DIST=src/scenebase/webapp_dist/index.html
if [ -f webapp/package-lock.json ] && { [ ! -f "$DIST" ] || [ -n "$(find webapp/src webapp/package-lock.json webapp/index.html -newer "$DIST" 2>/dev/null | head -1)" ]; }; then
  if command -v npm >/dev/null 2>&1; then
    echo "--- building the web app (npm ci && npm run build in webapp/)" >&2
    npm --prefix webapp ci --no-audit --no-fund --loglevel=error >&2
    npm --prefix webapp run build --silent >&2
  else
    echo "--- npm not found: the web app (/app/) is not built; install Node.js 20+ and rerun (the API works)" >&2
  fi
fi
exec .venv/bin/scenebase serve "$@"
