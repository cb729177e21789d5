#!/usr/bin/env bash
# Installs the system tools the build and tests need beyond Rust:
# - `protoc`: the network stack's litep2p compiles protobuf definitions at
#   build time;
# - Node.js (18 or newer) and npm: the Polkadot.js end-to-end tests (e2e/);
# - a C++ compiler: the worker's tests run the CUDA kernels' code on the CPU;
# - python3 with pip: scripts/setup-nvrtc.sh installs NVRTC's PyPI wheel.
# Idempotent; uses apt-get (as root or through passwordless sudo) for what is
# missing, and otherwise says what to install.
set -euo pipefail

log() { printf 'setup-system: %s\n' "$*" >&2; }

missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ]; then
	missing+=(nodejs)
fi
command -v npm >/dev/null || missing+=(npm)
command -v "${CXX:-c++}" >/dev/null || missing+=(g++)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	log "error: missing ${missing[*]}; install protoc (e.g. 'brew install protobuf'), Node.js 18+ with npm, a C++ compiler and python3 with pip"
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	as_root=(sudo)
else
	log "error: missing ${missing[*]} and no root to install them: run 'sudo apt-get install ${missing[*]}'"
	exit 1
fi
log "installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq >&2 || true
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 18 ]; then
	log "error: Node.js $(node --version 2>/dev/null || echo none) is too old for e2e/; install Node.js 18 or newer"
	exit 1
fi
