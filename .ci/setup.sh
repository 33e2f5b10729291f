#!/usr/bin/env bash
# Set up everything StillMotion needs on a fresh Debian machine, then run one job:
#   bash .ci/setup.sh demo   -> render the bundled demo timeline and print where the results are
#   bash .ci/setup.sh test   -> run the whole test suite
# Creates or reuses .venv/ at the repo root; installs Debian packages with apt when they are missing; installs
# torch==2.13.0 (a CPU wheel) before the project so nothing pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-demo}"
shift || true

APT_PACKAGES=(python3-venv ffmpeg fluidsynth fluid-soundfont-gm melt blender libsndfile1
              libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 xvfb xauth
              libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1))" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# Reinstall only when the project's declared dependencies change.
stamp=".venv/.stillmotion-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[diffusion,ui,dev,ray]"
  echo "$want" > "$stamp"
fi

case "$mode" in
  demo) exec .venv/bin/stillmotion demo "$@" ;;
  test) exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: bash .ci/setup.sh demo|test" >&2; exit 2 ;;
esac
