#!/usr/bin/env bash
# Installs what Tincture needs to build, run and test on Debian/Ubuntu.
# Idempotent: each step checks first and says what it does.
#   scripts/setup.sh          system packages + ONNX Runtime
#   scripts/setup.sh --gui    also the X/Vulkan libraries for running the GUI
#   scripts/setup.sh --bench  also OpenCV for Python, for the flow bench (where python3 is)
#   scripts/setup.sh --farm   also the render-farm engines the farm tests run: OpenJD's local
#                             runner (PyPI openjd-cli, in .venv-openjd), and Slurm with munge
#                             (Debian slurm-wlm, munge; scripts/slurm-local.sh runs them)
set -euo pipefail

cd "$(dirname "$0")/.."
ORT_VERSION="${TINCTURE_ORT_VERSION:-1.31.1}"
ORT_DIR="third_party/onnxruntime"

say() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@";
    elif command -v sudo >/dev/null 2>&1; then sudo "$@";
    else say "need root for: $*  (run as root or install sudo)"; exit 1; fi
}

BUILD_PKGS=(pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev
    libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev ffmpeg unzip)
GUI_PKGS=(xvfb xauth mesa-vulkan-drivers libvulkan1 libgl1-mesa-dri libegl1 libegl-mesa0 libgl1
    libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 x11-utils imagemagick)

pkgs=("${BUILD_PKGS[@]}")
python3 -m pip --version >/dev/null 2>&1 || pkgs+=(python3 python3-pip)
GUI=0
BENCH=0
FARM=0
for arg in "$@"; do
    case "$arg" in
        --gui) GUI=1 ;;
        --bench) BENCH=1 ;;
        --farm) FARM=1 ;;
    esac
done
if [ "$GUI" = 1 ]; then pkgs+=("${GUI_PKGS[@]}"); fi
# The Slurm farm test starts its own one-node cluster from these (scripts/slurm-local.sh); the
# packages' own services are left alone (without systemd they are not started at all).
FARM_PKGS=(slurm-wlm munge)
if [ "$FARM" = 1 ]; then pkgs+=("${FARM_PKGS[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: installing the Rust toolchain with rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

if ls "$ORT_DIR"/libonnxruntime.so* >/dev/null 2>&1; then
    say "ONNX Runtime present in $ORT_DIR"
else
    say "fetching ONNX Runtime $ORT_VERSION from the PyPI onnxruntime wheel into $ORT_DIR"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    python3 -m pip download -q --no-deps --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --python-version "$pyver" -d "$tmp" "onnxruntime==$ORT_VERSION"
    mkdir -p "$ORT_DIR"
    (cd "$tmp" && unzip -q -o ./*.whl 'onnxruntime/capi/libonnxruntime.so*')
    cp "$tmp"/onnxruntime/capi/libonnxruntime.so* "$ORT_DIR"/
    say "ONNX Runtime installed: $(ls "$ORT_DIR")"
fi

# The metric cross-checks (tests/tests/metrics_crosscheck.rs) compare Tincture with an independent
# numpy/scikit-image implementation on the shared colour clips. They need that data, so the
# Python environment is made only where ../shared is present; elsewhere the check skips.
PYENV=tests/python/.venv
if [ -d ../shared/data/video/color ]; then
    if [ -x "$PYENV/bin/python" ] && cmp -s tests/python/requirements.txt "$PYENV/requirements.txt"; then
        say "Python environment for the metric cross-checks present"
    else
        say "creating $PYENV for the metric cross-checks (numpy, scikit-image from PyPI)"
        if python3 -m venv "$PYENV" && "$PYENV/bin/pip" install -q -r tests/python/requirements.txt; then
            cp tests/python/requirements.txt "$PYENV/requirements.txt"
        else
            say "could not create $PYENV: the metric cross-checks will be skipped"
        fi
    fi
fi

# The flow bench (crates/tincture-engine/benches/flow.rs) compares Tincture's optical flow with
# OpenCV's DIS, run by a Python helper; that needs OpenCV for Python, made only on request
# (--bench) and where python3 is. Without it the bench skips the comparison and says so.
BENCH_ENV=target/bench-venv
if [ "$BENCH" = 1 ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        say "no python3: the flow bench will skip its OpenCV comparison"
    elif [ -x "$BENCH_ENV/bin/python" ] && cmp -s tests/python/requirements-bench.txt "$BENCH_ENV/requirements.txt"; then
        say "Python environment for the flow bench present"
    else
        say "creating $BENCH_ENV for the flow bench (numpy, opencv-python-headless from PyPI)"
        if python3 -m venv "$BENCH_ENV" && "$BENCH_ENV/bin/pip" install -q -r tests/python/requirements-bench.txt; then
            cp tests/python/requirements-bench.txt "$BENCH_ENV/requirements.txt"
        else
            say "could not create $BENCH_ENV: the flow bench will skip its OpenCV comparison"
        fi
    fi
fi

# The farm tests (tests/tests/farm.rs) run a planned job bundle under OpenJD's own local runner,
# `openjd run` from PyPI's openjd-cli, installed only on request (--farm; CI asks for it), and
# on a one-node Slurm cluster (the Debian packages above).
FARM_ENV=.venv-openjd
if [ "$FARM" = 1 ]; then
    if [ -x "$FARM_ENV/bin/openjd" ] && cmp -s tests/python/requirements-farm.txt "$FARM_ENV/requirements.txt"; then
        say "OpenJD runner present in $FARM_ENV"
    else
        say "creating $FARM_ENV with openjd-cli from PyPI, for the farm tests"
        if python3 -m venv "$FARM_ENV" && "$FARM_ENV/bin/pip" install -q -r tests/python/requirements-farm.txt; then
            cp tests/python/requirements-farm.txt "$FARM_ENV/requirements.txt"
        else
            say "could not create $FARM_ENV: the OpenJD test will skip (and fail under CI)"
        fi
    fi
fi
