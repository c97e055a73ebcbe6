#!/usr/bin/env bash
# Build the image with podman (no registry: a debootstrapped Debian stands in for the official
# python:3.11-slim base, as docs/development.md describes), run it inside a private network
# namespace, ask it with dig over UDP and TCP, stop it with SIGTERM, and check that it exited
# 0 within 5 s; then run it as deploy/kubernetes/deployment.yaml does (read-only, the cache
# directory as the only writable path, every capability dropped but NET_BIND_SERVICE, no new
# privileges, the ConfigMap's TOML as its settings). Run as root. Leaves its work in
# ${WORK:-/tmp/rootwalk-container}.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
WORK=${WORK:-/tmp/rootwalk-container}
mkdir -p "$WORK"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need debootstrap || ! need runc || ! need dig; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap bind9-dnsutils >/dev/null
fi

cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

if ! podman image exists docker.io/library/python:3.11-slim; then
  if ! podman image exists localhost/debian-base; then
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" >/dev/null
    tar -C "$WORK/rootfs" -c . | podman import - localhost/debian-base >/dev/null
  fi
  mkdir -p "$WORK/base-standin"
  cat > "$WORK/base-standin/Dockerfile" <<'BASE'
FROM localhost/debian-base
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && ln -sf /usr/bin/python3 /usr/local/bin/python && ln -sf /usr/bin/python3.11 /usr/local/bin/python3.11 \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip && rm -rf /var/lib/apt/lists/*
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
BASE
  podman build -q --pull=never --network=host -t docker.io/library/python:3.11-slim "$WORK/base-standin" >/dev/null
fi

podman build -q --pull=never --network=host --format docker \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -t localhost/rootwalk "$REPO" >/dev/null
echo "container: image built"

# The ConfigMap's TOML, as the pod sees it (tests/deploy/test_kubernetes.py checks that this
# cut equals what a YAML parser reads).
CONFIGMAP_TOML_AWK='/^  rootwalk\.toml: \|$/ { inside = 1; next } inside && /^[^ ]/ { inside = 0 } inside { sub(/^    /, ""); print }'
mkdir -p "$WORK/kubernetes-config"
awk "$CONFIGMAP_TOML_AWK" deploy/kubernetes/configmap.yaml > "$WORK/kubernetes-config/rootwalk.toml"
export KUBERNETES_CONFIG="$WORK/kubernetes-config"

# Everything that talks to the container happens in a namespace with only loopback.
unshare --net --mount bash -euo pipefail -c '
  ip link set lo up
  check() { echo "container: $1"; }
  answer() {  # the answer lines, once the container answers (dig prints ";" lines on errors)
    for _ in $(seq 1 60); do
      out=$(dig @127.0.0.1 -p "$1" "$2" "${@:3}" +time=1 +tries=1 +short | grep -v "^;" || true)
      [ -n "$out" ] && { echo "$out"; return 0; }
    done
    return 1
  }
  expect() { [ "$1" = "$2" ] || { echo "container: FAILED: $3 (got: $1)"; exit 1; }; echo "container: $3"; }

  # 1. serve with the container defaults: localhost. is answered without any upstream.
  cid=$(podman run -d --log-level=error -p 127.0.0.1:5353:53/udp -p 127.0.0.1:5353:53/tcp localhost/rootwalk)
  trap "podman rm -f $cid >/dev/null 2>&1 || true" EXIT
  expect "$(answer 5353 localhost. A)" 127.0.0.1 "serve answers localhost. over UDP"
  expect "$(answer 5353 localhost. A +tcp)" 127.0.0.1 "serve answers localhost. over TCP"
  expect "$(podman exec "$cid" id -u)" 10053 "runs as the non-root user rootwalk"
  podman healthcheck run "$cid" >/dev/null 2>&1 && check "the image HEALTHCHECK passes" \
    || { echo "container: FAILED: HEALTHCHECK"; exit 1; }
  started=$(date +%s.%N)
  podman stop -t 5 "$cid" >/dev/null
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  code=$(podman inspect --format "{{.State.ExitCode}}" "$cid")
  [ "$code" = "0" ] || { echo "container: exit code $code after SIGTERM"; exit 1; }
  awk -v e="$elapsed" "BEGIN { exit !(e < 5) }" || { echo "container: took ${elapsed}s to stop"; exit 1; }
  check "SIGTERM: exit 0 in ${elapsed}s"
  podman rm "$cid" >/dev/null

  # 2. the demo lab inside the container.
  cid=$(podman run -d -p 127.0.0.1:5300:5300/udp -p 127.0.0.1:5300:5300/tcp localhost/rootwalk lab --listen 0.0.0.0:5300)
  trap "podman rm -f $cid >/dev/null 2>&1 || true" EXIT
  expect "$(answer 5300 www.example.lab A)" 192.0.2.10 "lab: www.example.lab over UDP"
  expect "$(answer 5300 chain.example.lab A +tcp | tail -1)" 192.0.2.60 "lab: chain.example.lab over TCP"
  podman stop -t 5 "$cid" >/dev/null
  expect "$(podman inspect --format "{{.State.ExitCode}}" "$cid")" 0 "lab: exit 0 after SIGTERM"
  podman rm "$cid" >/dev/null

  # 3. as the Kubernetes Deployment runs it (its probes, not the image'"'"'s HEALTHCHECK): its
  # user, a read-only root with only the cache directory writable (no tmpfs of podman'"'"'s own:
  # --read-only-tmpfs=false), capabilities as its securityContext (dropping NET_BIND_SERVICE
  # as well would stop the interpreter from starting), unprivileged ports from 1024 as on a
  # node without sysctls, and the ConfigMap'"'"'s TOML.
  pod=(--no-healthcheck --read-only --read-only-tmpfs=false --tmpfs /var/lib/rootwalk:rw,mode=1777
       --user 10053:10053 --cap-drop=ALL --cap-add=NET_BIND_SERVICE
       --security-opt=no-new-privileges --sysctl net.ipv4.ip_unprivileged_port_start=1024
       -v "$KUBERNETES_CONFIG:/etc/rootwalk:ro")
  podman run --rm --log-level=error "${pod[@]}" localhost/rootwalk check-config --config /etc/rootwalk/rootwalk.toml >/dev/null \
    && check "kubernetes: the ConfigMap passes check-config in the image" \
    || { echo "container: FAILED: check-config on the ConfigMap"; exit 1; }
  cid=$(podman run -d --log-level=error "${pod[@]}" -p 127.0.0.1:5354:53/udp -p 127.0.0.1:5354:53/tcp \
    localhost/rootwalk serve --config /etc/rootwalk/rootwalk.toml)
  trap "podman rm -f $cid >/dev/null 2>&1 || true" EXIT
  expect "$(answer 5354 localhost. A)" 127.0.0.1 "kubernetes: read-only, non-root, answers over UDP"
  expect "$(answer 5354 localhost. A +tcp)" 127.0.0.1 "kubernetes: answers over TCP"
  podman exec "$cid" rootwalk query localhost. --server 127.0.0.1:53 --timeout 2 >/dev/null \
    && check "kubernetes: the probes'"'"' command passes" \
    || { echo "container: FAILED: the probe command"; exit 1; }
  podman exec "$cid" sh -c "touch /probe-root 2>/dev/null" \
    && { echo "container: FAILED: the root file system is writable"; exit 1; }
  check "kubernetes: the root file system is read-only"
  podman stop -t 5 "$cid" >/dev/null
  expect "$(podman inspect --format "{{.State.ExitCode}}" "$cid")" 0 "kubernetes: exit 0 after SIGTERM"
  logs=$(podman logs "$cid" 2>&1)
  grep -q "saved [0-9]* cache entries to /var/lib/rootwalk/cache.json" <<< "$logs" \
    && check "kubernetes: the cache file saved on the writable directory" \
    || { echo "container: FAILED: the cache file was not saved"; tail -5 <<< "$logs"; exit 1; }
'
echo "container: all checks passed"
