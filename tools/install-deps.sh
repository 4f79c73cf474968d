#!/usr/bin/env bash
# Installs every package dnd needs to build, test and run, from Debian's repositories only.
# Idempotent: packages already installed are skipped, and apt is not touched when nothing is missing.
# Called by `make test`, `make demo` and `make` (see README.md). Needs root or sudo for a first run.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libtorch-dev            # LibTorch 1.13, CPU
  libopenblas0-pthread    # makes Debian's LibTorch use OpenBLAS instead of the reference BLAS
  libzmq3-dev cppzmq-dev  # ZeroMQ (with CURVE, via libsodium) and its C++ binding
  libcapnp-dev capnproto  # Cap'n Proto library and schema compiler
  libspdlog-dev libcli11-dev nlohmann-json3-dev libeigen3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpng-dev zlib1g-dev  # zlib: Fashion-MNIST IDX files are gzip-compressed
  dataset-fashion-mnist   # IDX files under /usr/share/datasets/fashion-mnist
  clang-14 libclang-rt-14-dev  # libFuzzer for `make fuzz`
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
