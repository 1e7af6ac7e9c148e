#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` and its shared libraries from the llama.cpp source that the
# llama-cpp-python sdist vendors, once per machine: the real-model test tier serves a small model
# with it, and llama-cpp-python's own server loads the same libraries (LLAMA_CPP_LIB_PATH), so
# one build serves both servers. Prints the build's bin folder. About 7-15 minutes on 2 cores.
# `build_llama.sh --where` prints the bin folder without building (tests/realmodel/servers.py).
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
# The binary is built for this CPU (GGML_NATIVE): the cache key names the CPU's flags.
CPU_KEY=$({ grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true; } | md5sum | cut -c1-8)
CACHE="${T2S_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trace2skill}/llama.cpp-$VERSION-$CPU_KEY"
BIN="$CACHE/build/bin"
if [ "${1:-}" = "--where" ]; then
  echo "$BIN"; exit 0
fi
if [ -x "$BIN/llama-server" ] && [ -f "$BIN/libllama.so" ] && [ -f "$CACHE/.done" ]; then
  echo "$BIN"; exit 0
fi
PYTHON="${PYTHON:-python3}"
rm -rf "$CACHE"; mkdir -p "$CACHE"
echo "building llama-server $VERSION into $CACHE (about 15 minutes on 2 cores)" >&2
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$CACHE/sdist" >&2
tar -xzf "$CACHE"/sdist/llama_cpp_python-*.tar.gz -C "$CACHE"
SRC="$CACHE/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$SRC" -B "$CACHE/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=ON >&2
cmake --build "$CACHE/build" --target llama-server mtmd -j "$(nproc)" >&2
find "$CACHE/build" -name '*.o' -delete
rm -rf "$CACHE/sdist"
touch "$CACHE/.done"
echo "$BIN"
