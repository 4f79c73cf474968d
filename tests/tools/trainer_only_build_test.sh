#!/bin/bash
# The trainer-only build (cmake -DDND_TRAINER_ONLY=ON, docs/models.md "Training on a GPU"):
# configures with every service dependency's CMake package switched off (so it cannot need one),
# takes CLI11 and nlohmann_json from their headers alone, builds dnd-train, and runs it: help,
# a refused --device cuda on a machine without one, and two training steps of a tiny expert.
# Usage: trainer_only_build_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

off=()
for pkg in CapnProto cppzmq spdlog Eigen3 PNG GTest benchmark CLI11 nlohmann_json; do
  off+=("-DCMAKE_DISABLE_FIND_PACKAGE_${pkg}=ON")
done
cmake -S "$src" -B "$build" -G Ninja -DDND_TRAINER_ONLY=ON -DCMAKE_BUILD_TYPE=Release "${off[@]}" \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; fail "configure"; }
grep -q "trainer-only build against LibTorch" "$build.configure.log" || fail "no trainer-only line"

targets=$(ninja -C "$build" -t targets all)
grep -q "bin/dnd-train:" <<<"$targets" || fail "no dnd-train target"
for other in bin/dnd: bin/dnd-worker: bin/dnd-coordinator:; do
  if grep -q "$other" <<<"$targets"; then fail "the trainer-only build also makes $other"; fi
done

ninja -C "$build" dnd-train >"$build.build.log" 2>&1 || { tail -50 "$build.build.log"; fail "build"; }
train=$build/bin/dnd-train

help=$("$train" --help)
for sub in autoencoder expert detector; do
  grep -q "$sub" <<<"$help" || fail "--help does not list $sub"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/tiny.json" <<JSON
{"model": "expert", "name": "tiny", "concepts": ["sandal", "bag"],
 "autoencoder": "$src/worker/models/weights/autoencoder.pt", "seed": 3, "steps": 100,
 "batch_size": 4, "learning_rate": 0.001, "warmup_steps": 2, "checkpoint_every": 50,
 "channels": 8, "heads": 2, "token_dim": 8, "pool_canvases": 32}
JSON

set +e
out=$("$train" expert --config "$work/tiny.json" --out "$work/tiny.pt" --device cuda --stop-after 1 2>&1)
code=$?
set -e
if [[ $code == 0 ]]; then
  echo "note: this LibTorch has a CUDA device; the refusal is not checked"
else
  [[ $code == 64 ]] || fail "--device cuda without a GPU: exit $code, want 64 ($out)"
  grep -q "no CUDA device" <<<"$out" || fail "--device cuda: unclear message: $out"
fi

out=$("$train" expert --config "$work/tiny.json" --out "$work/tiny.pt" --device cpu --stop-after 2 2>&1) \
  || fail "two steps: $out"
grep -q "stopped after 2 steps" <<<"$out" || fail "two steps: $out"
[[ -s "$work/tiny.pt.ckpt" ]] || fail "no checkpoint after --stop-after"
echo "PASS: dnd-train built alone and trained two steps"
