#!/usr/bin/env bash
# Renders deploy/k8s with `kubectl kustomize` (offline) and checks what deploy/README.md promises
# (non-root, read-only root, writable volumes only where needed, DND_THREADS, keys from Secrets,
# Service 5555/5556, probes on 0.0.0.0 ports, worker args, one neural worker per shipped expert);
# then breaks a copy to show checks fail.
# Usage: render_test.sh [REPO_ROOT]. Exit 0 pass, 1 fail, 77 skipped (kubectl or jq missing:
# kubectl is not a Debian package).
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
for tool in kubectl jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool not found (needed to render deploy/k8s)"
    exit 77
  fi
done

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# render DIR: prints the rendered objects of the kustomization DIR as one JSON array. kubectl has no
# offline YAML-to-JSON command; `label --local` reads the objects, adds a throw-away label and
# prints them as JSON without contacting a cluster.
render() {
  kubectl kustomize "$1" | kubectl label --local -f - -o json dnd-render-test=1 | jq -s .
}

# expect NAME JSON FILTER: FILTER (a jq program) must print true for JSON.
expect() {
  local name=$1 json=$2 filter=$3 result
  if ! result=$(jq -e "$filter" <<<"$json" 2>&1); then
    fail "$name (jq printed: ${result:-nothing})"
  elif [ "$result" != "true" ]; then
    fail "$name (jq printed: $result)"
  fi
}

# Definitions shared by the filters below.
defs='
  def deployments: map(select(.kind == "Deployment"));
  def containers: deployments | map(.spec.template.spec.containers[]);
  def arg($c; $flag): [$c.args[] | select(startswith($flag + "="))] | first | .[($flag | length) + 1:];
  def has_arg($c; $flag): [$c.args[] | select(. == $flag or startswith($flag + "="))] | length > 0;
  def subset($a; $b): [$a | to_entries[] | $b[.key] == .value] | all;
'

# Checks every overlay must pass. $1: overlay name, $2: rendered JSON.
check_common() {
  local o=$1 j=$2
  expect "$o: has exactly one Deployment" "$j" "$defs deployments | length == 1"
  expect "$o: no Secret is rendered (keys are created out of band)" "$j" \
    '[.[] | select(.kind == "Secret")] | length == 0'
  expect "$o: every Deployment has 1 replica and the Recreate strategy" "$j" \
    "$defs [deployments[] | .spec.replicas == 1 and .spec.strategy.type == \"Recreate\"] | all"
  expect "$o: selectors match the pod labels" "$j" \
    "$defs [deployments[] | subset(.spec.selector.matchLabels; .spec.template.metadata.labels)] | all"
  expect "$o: pods run as non-root (runAsNonRoot true, a non-zero runAsUser)" "$j" \
    "$defs [deployments[] | .spec.template.spec.securityContext |
       .runAsNonRoot == true and (.runAsUser // 0) > 0] | all"
  expect "$o: pods use the RuntimeDefault seccomp profile" "$j" \
    "$defs [deployments[] | .spec.template.spec.securityContext.seccompProfile.type == \"RuntimeDefault\"] | all"
  expect "$o: containers have a read-only root filesystem" "$j" \
    "$defs [containers[] | .securityContext.readOnlyRootFilesystem == true] | all"
  expect "$o: containers cannot escalate privileges and drop ALL capabilities" "$j" \
    "$defs [containers[] | .securityContext | .allowPrivilegeEscalation == false and
       (.capabilities.drop | index(\"ALL\") != null)] | all"
  expect "$o: containers have cpu and memory requests and limits" "$j" \
    "$defs [containers[] | .resources | .requests.cpu and .requests.memory and .limits.cpu and
       .limits.memory] | all"
  expect "$o: DND_THREADS is the container's own CPU limit" "$j" \
    "$defs [containers[] | . as \$c | [.env[] | select(.name == \"DND_THREADS\") |
       .valueFrom.resourceFieldRef | .resource == \"limits.cpu\" and .containerName == \$c.name]
       | length == 1 and all] | all"
  expect "$o: no container runs --plain" "$j" "$defs [containers[] | has_arg(.; \"--plain\") | not] | all"
  expect "$o: every \$(VAR) in args is defined in env" "$j" \
    "$defs [containers[] | (.env | map(.name)) as \$names | .args[] | [scan(\"\\\\$\\\\(([A-Za-z_0-9]+)\\\\)\")[0]] |
       map(. as \$v | \$names | index(\$v) != null) | all] | all"
  expect "$o: env from ConfigMaps names ConfigMaps that are rendered with those keys" "$j" \
    "$defs (map(select(.kind == \"ConfigMap\")) | map({key: .metadata.name, value: .data}) | from_entries) as \$cms |
       [containers[] | .env[] | .valueFrom.configMapKeyRef // empty | \$cms[.name][.key] != null] | all"
  expect "$o: secret volumes are mounted read-only" "$j" \
    "$defs [deployments[] | .spec.template.spec as \$s | (\$s.volumes | map(select(.secret)) | map(.name)) as \$sv |
       \$s.containers[].volumeMounts[] | select(.name as \$n | \$sv | index(\$n) != null) | .readOnly == true] | all"
  expect "$o: the NetworkPolicy selects the pods" "$j" \
    "$defs (deployments[0].spec.template.metadata.labels) as \$l |
       [.[] | select(.kind == \"NetworkPolicy\") | subset(.spec.podSelector.matchLabels; \$l)] | (length == 1 and all)"
}

check_coordinator() {
  local o=$1 j=$2
  expect "$o: writable mounts are only /tmp (emptyDir) and --data-dir (a rendered PVC)" "$j" \
    "$defs (map(select(.kind == \"PersistentVolumeClaim\")) | map(.metadata.name)) as \$pvcs |
       [deployments[] | .spec.template.spec as \$s | \$s.containers[] | arg(.; \"--data-dir\") as \$data |
        .volumeMounts[] | select(.readOnly != true) | .name as \$n | (\$s.volumes[] | select(.name == \$n)) as \$v |
        (.mountPath == \"/tmp\" and \$v.emptyDir != null) or
        (.mountPath == \$data and (\$pvcs | index(\$v.persistentVolumeClaim.claimName) != null))]
       | (length == 2 and all)"
  expect "$o: the Service exposes 5555 (worker) and 5556 (client) on the container's ports" "$j" \
    "$defs (containers[0].ports | map({key: .name, value: .containerPort}) | from_entries) as \$cp |
       [.[] | select(.kind == \"Service\") | .spec.ports | map({key: (.port | tostring), value: \$cp[.targetPort]}) | from_entries]
       | length == 1 and .[0][\"5555\"] == 5555 and .[0][\"5556\"] == 5556"
  expect "$o: the Service selects the coordinator pod" "$j" \
    "$defs (deployments[0].spec.template.metadata.labels) as \$l |
       [.[] | select(.kind == \"Service\") | subset(.spec.selector; \$l)] | all"
  expect "$o: both endpoints bind 0.0.0.0 (probes dial the pod IP, not 127.0.0.1)" "$j" \
    "$defs containers[0] | arg(.; \"--worker-endpoint\") == \"tcp://0.0.0.0:5555\" and
       arg(.; \"--client-endpoint\") == \"tcp://0.0.0.0:5556\""
  expect "$o: startup, readiness and liveness probes are tcpSocket on the container's ports" "$j" \
    "$defs containers[0] | (.ports | map(.name, .containerPort)) as \$ports |
       [.startupProbe, .readinessProbe, .livenessProbe | . != null and (.tcpSocket.port as \$p | \$ports | index(\$p) != null)] | all"
  expect "$o: CURVE keys and the allow-list come from the Secrets" "$j" \
    "$defs deployments[0].spec.template.spec as \$s | \$s.containers[0] as \$c |
       (\$s.volumes | map(select(.secret)) | map({key: .name, value: .secret.secretName}) | from_entries) as \$sv |
       (\$c.volumeMounts | map(select(\$sv[.name])) | map({key: .mountPath, value: \$sv[.name]}) | from_entries) as \$m |
       \$m[arg(\$c; \"--key-dir\")] == \"dnd-coordinator-keys\" and
       \$m[arg(\$c; \"--allow-dir\")] == \"dnd-coordinator-allow\" and arg(\$c; \"--key-name\") != \"\""
  expect "$o: the namespace enforces the restricted Pod Security Standard" "$j" \
    '[.[] | select(.kind == "Namespace") | .metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"] | (length == 1 and all)'
}

check_worker() {
  local o=$1 j=$2 name=$3
  expect "$o: writable mounts are only /tmp (emptyDir)" "$j" \
    "$defs [deployments[] | .spec.template.spec as \$s | \$s.containers[] | .volumeMounts[] | select(.readOnly != true) |
       .name as \$n | .mountPath == \"/tmp\" and ([\$s.volumes[] | select(.name == \$n)][0].emptyDir != null)] | (length == 1 and all)"
  expect "$o: the worker opens no port" "$j" "$defs [containers[] | (.ports // []) | length == 0] | all"
  expect "$o: args have --coordinator, --name, --key-dir, --key-name and --server-key" "$j" \
    "$defs [containers[] | has_arg(.; \"--coordinator\") and has_arg(.; \"--name\") and has_arg(.; \"--key-dir\") and
       has_arg(.; \"--key-name\") and has_arg(.; \"--server-key\")] | all"
  expect "$o: --key-dir and --server-key are in the Secret dnd-worker-$name-keys" "$j" \
    "$defs deployments[0].spec.template.spec as \$s | \$s.containers[0] as \$c |
       ([\$s.volumes[] | select(.secret.secretName == \"dnd-worker-$name-keys\") | .name][0]) as \$v |
       ([\$c.volumeMounts[] | select(.name == \$v) | .mountPath][0]) as \$dir |
       \$dir != null and arg(\$c; \"--key-dir\") == \$dir and (arg(\$c; \"--server-key\") | startswith(\$dir + \"/\"))"
  expect "$o: the ConfigMap names the expert '$name' and a tcp:// coordinator endpoint" "$j" \
    "[.[] | select(.kind == \"ConfigMap\") | .data | .DND_EXPERT_NAME == \"$name\" and
       (.DND_COORDINATOR | test(\"^tcp://[^:]+:[0-9]+\$\"))] | (length == 1 and all)"
  expect "$o: the NetworkPolicy allows no ingress" "$j" \
    '[.[] | select(.kind == "NetworkPolicy") | (.spec.policyTypes | index("Ingress") != null) and ((.spec.ingress // []) | length == 0)] | (length == 1 and all)'
}

# Runs every check on the manifests under $1 (a copy of deploy/k8s, or the real one).
check_all() {
  local k8s=$1 j
  for base in base/coordinator base/worker; do
    kubectl kustomize "$k8s/$base" >/dev/null || fail "$base does not render"
  done
  j=$(render "$k8s/overlays/coordinator") || { fail "overlays/coordinator does not render"; return; }
  check_common coordinator "$j"
  check_coordinator coordinator "$j"
  # One worker per trained expert, each serving the shipped NAME.pt of the worker image.
  for name in footwear tops rest; do
    j=$(render "$k8s/overlays/example-$name") || { fail "overlays/example-$name does not render"; continue; }
    check_common "example-$name" "$j"
    check_worker "example-$name" "$j" "$name"
    expect "example-$name: serves the neural backend from the image's $name.pt" "$j" \
      "$defs containers[0] | arg(.; \"--backend\") == \"neural\" and
         arg(.; \"--model\") == \"/usr/share/dnd/models/$name.pt\""
  done
  # The tops owner serves its expert at guidance scale 10 (docs/method.md decision 16).
  j=$(render "$k8s/overlays/example-tops") &&
    expect "example-tops: declares its guidance scale, 10" "$j" \
      "$defs containers[0] | arg(.; \"--guidance-scale\") == \"10\""
}

check_all "$root/deploy/k8s"
if [ "$failures" -ne 0 ]; then
  echo "render_test: $failures check(s) failed"
  exit 1
fi
echo "render_test: the manifests pass"

# The checks can fail: break a copy of the manifests in four ways and expect each to be caught.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/deploy/k8s" "$tmp/k8s"
sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$tmp/k8s/base/worker/deployment.yaml"
sed -i 's/runAsNonRoot: true/runAsNonRoot: false/' "$tmp/k8s/base/coordinator/deployment.yaml"
sed -i 's/port: 5556/port: 5557/' "$tmp/k8s/base/coordinator/service.yaml"
sed -i 's|tcp://0.0.0.0:5556|tcp://127.0.0.1:5556|' "$tmp/k8s/base/coordinator/deployment.yaml"
broken=$(check_all "$tmp/k8s" || true)
for want in "example-footwear: containers have a read-only root filesystem" \
  "coordinator: pods run as non-root" "coordinator: the Service exposes 5555" \
  "coordinator: both endpoints bind 0.0.0.0"; do
  grep -qF "FAIL: $want" <<<"$broken" || fail "a broken copy passed: $want"
done
if [ "$failures" -ne 0 ]; then
  echo "render_test: $failures check(s) failed"
  exit 1
fi
echo "render_test: broken copies are caught"
