#!/usr/bin/env bash
# Manual check (not in ctest; needs root for unshare): runs the real dnd binaries the way the rendered
# pods would, in a private mount and network namespace: read-only root, tmpfs /tmp, Secrets laid out
# as the kubelet does (..data symlinks, 0440, group 10001), uid 10001, args from deploy/k8s overlays,
# tcpSocket-style probes of a "pod IP". Usage: sudo tests/deploy/pod_sim.sh BIN_DIR (e.g. build/bin)
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
  B=$(cd "${1:?usage: pod_sim.sh BIN_DIR}" && pwd)
  root=$(cd "$(dirname "$0")/../.." && pwd)
  work=$(mktemp -d /var/tmp/dnd-pod-sim.XXXXXX)  # not under /tmp: the namespace mounts a tmpfs there
  trap 'rm -rf "$work"' EXIT
  for n in coordinator footwear admin; do "$B/dnd" keygen --out "$work/kit/$n" --name "$n" >/dev/null; done
  for o in coordinator example-footwear; do
    kubectl kustomize "$root/deploy/k8s/overlays/$o" | kubectl label --local -f - -o json x=1 | jq -s . >"$work/$o.json"
  done
  timeout 150 unshare --mount --net --propagation private "$0" --inside "$B" "$work" "$root"
  exit
fi
B=$2
KIT=$3/kit
MODELS=$4/worker/models/weights  # the images' /usr/share/dnd/models (DND_MODELS_DIR)
COORD_JSON=$3/coordinator.json
WORKER_JSON=$3/example-footwear.json
POD_IP=10.244.0.5
ip link set lo up
ip addr add $POD_IP/32 dev lo
# Volumes live on a tmpfs at /mnt (paths in the rendered args get the prefix /mnt).
mount -t tmpfs tmpfs /mnt
mkvol() {  # DIR NAME=SRC...: a Secret volume as the kubelet lays it out (..data symlinks), 0440 root:10001
  local dir=$1; shift; mkdir -p "$dir/..2026_11_26_sim"; ln -s ..2026_11_26_sim "$dir/..data"
  for kv in "$@"; do cp "${kv#*=}" "$dir/..2026_11_26_sim/${kv%%=*}"; ln -s "..data/${kv%%=*}" "$dir/${kv%%=*}"; done
  chown -R root:10001 "$dir"; chmod 0440 "$dir"/..2026_11_26_sim/*; chmod 0755 "$dir" "$dir/..2026_11_26_sim"
}
mkvol /mnt/etc/dnd/keys coordinator.key=$KIT/coordinator/coordinator.key coordinator.key_secret=$KIT/coordinator/coordinator.key_secret
mkvol /mnt/etc/dnd/allow footwear.key=$KIT/footwear/footwear.key admin.key=$KIT/admin/admin.key
mkvol /mnt/worker/etc/dnd/keys worker.key=$KIT/footwear/footwear.key worker.key_secret=$KIT/footwear/footwear.key_secret coordinator.key=$KIT/coordinator/coordinator.key
mkvol /mnt/client admin.key=$KIT/admin/admin.key admin.key_secret=$KIT/admin/admin.key_secret coordinator.key=$KIT/coordinator/coordinator.key
mkdir -p /mnt/var/lib/dnd /mnt/logs; chown root:10001 /mnt/var/lib/dnd; chmod 2775 /mnt/var/lib/dnd
mount -t tmpfs -o mode=1777 tmpfs /tmp   # the emptyDir (hides the host's /tmp in this namespace)
mount -o remount,bind,ro /               # readOnlyRootFilesystem
as_pod() { setpriv --reuid=10001 --regid=10001 --groups=10001 --no-new-privs env HOME=/tmp "$@"; }
as_pod_exec() { exec setpriv --reuid=10001 --regid=10001 --groups=10001 --no-new-privs env HOME=/tmp "$@"; }  # backgrounded: $! is the process
trap 'kill -TERM $(jobs -p) 2>/dev/null || true' EXIT
echo "root filesystem: $(findmnt -n -o OPTIONS / | cut -d, -f1); uid in pod: $(as_pod id -u)"
as_pod touch /usr/local/podsim-x 2>/dev/null && echo "UNEXPECTED: root fs writable" || echo "root fs write refused (as expected)"

mapfile -t cargs < <(jq -r '.[] | select(.kind=="Deployment") | .spec.template.spec.containers[0].args[]' $COORD_JSON | sed 's|=/etc/dnd|=/mnt/etc/dnd|; s|=/var/lib/dnd|=/mnt/var/lib/dnd|')
echo "coordinator args: ${cargs[*]}"
as_pod_exec env DND_THREADS=2 DND_MODELS_DIR=$MODELS $B/dnd-coordinator "${cargs[@]}" > /mnt/logs/coordinator.log 2>&1 &
CP=$!
# The kubelet's tcpSocket probes dial the pod IP.
ok=0; for i in $(seq 1 50); do (exec 3<>/dev/tcp/$POD_IP/5556) 2>/dev/null && { ok=1; break; }; sleep 0.1; done
echo "startup probe ($POD_IP:5556): $([ $ok = 1 ] && echo passed || echo FAILED)"
for i in 1 2 3 4 5 6 7 8 9 10; do for p in 5555 5556; do (exec 3<>/dev/tcp/$POD_IP/$p) || echo "probe $p FAILED"; done; done
echo "20 tcpSocket probes on $POD_IP:5555/5556 done"

# Worker: its rendered args with $(VAR) filled from the rendered ConfigMap, the endpoint at the pod IP.
declare -A cm; while IFS='=' read -r k v; do cm[$k]=$v; done < <(jq -r '.[] | select(.kind=="ConfigMap") | .data | to_entries[] | "\(.key)=\(.value)"' $WORKER_JSON)
cm[DND_COORDINATOR]=tcp://$POD_IP:5555
mapfile -t wargs < <(jq -r '.[] | select(.kind=="Deployment") | .spec.template.spec.containers[0].args[]' $WORKER_JSON | sed "s|=/etc/dnd|=/mnt/worker/etc/dnd|; s|=/usr/share/dnd/models|=$MODELS|")
for i in "${!wargs[@]}"; do for k in "${!cm[@]}"; do wargs[$i]=${wargs[$i]//\$($k)/${cm[$k]}}; done; done
echo "worker args: ${wargs[*]}"
cd /tmp
as_pod_exec env DND_THREADS=1 OPENBLAS_NUM_THREADS=1 $B/dnd-worker "${wargs[@]}" > /mnt/logs/worker.log 2>&1 &
WP=$!
client=(--coordinator tcp://$POD_IP:5556 --key-dir /mnt/client --key-name admin --server-key /mnt/client/coordinator.key)
for i in $(seq 1 100); do as_pod $B/dnd experts "${client[@]}" 2>/dev/null | grep -q "^footwear .* yes$" && break; sleep 0.2; done
as_pod $B/dnd experts "${client[@]}"
cd /tmp && as_pod $B/dnd submit "${client[@]}" --expert footwear:sneaker --steps 20 --wait --out /tmp/r 2>&1 | tail -6 || true
ls -ln /mnt/var/lib/dnd/jobs/*/ || true
kill -TERM $WP; wait $WP && echo "worker exit: 0" || echo "worker exit: $?"
kill -TERM $CP; wait $CP && echo "coordinator exit: 0" || echo "coordinator exit: $?"
echo "--- coordinator log"; cat /mnt/logs/coordinator.log; echo "--- worker log"; cat /mnt/logs/worker.log

# The failure mode of ANCHORS.md: a server bound to 127.0.0.1 fails every probe of the pod IP.
as_pod_exec $B/dnd-coordinator --plain --worker-endpoint tcp://127.0.0.1:5655 --client-endpoint tcp://127.0.0.1:5656 --data-dir /tmp/d2 > /mnt/logs/c2.log 2>&1 &
C2=$!; sleep 1
(exec 3<>/dev/tcp/127.0.0.1/5656) 2>/dev/null && echo "127.0.0.1-bound: probe of 127.0.0.1:5656 passes"
(exec 3<>/dev/tcp/$POD_IP/5656) 2>/dev/null && echo "UNEXPECTED: pod IP probe passed" || echo "127.0.0.1-bound: probe of $POD_IP:5656 refused (the Flower failure)"
kill -TERM $C2; wait $C2 && echo "127.0.0.1-bound coordinator exit: 0"
