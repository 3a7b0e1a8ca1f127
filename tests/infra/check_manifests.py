"""Validates infra/: the compose file and the Kubernetes manifests parse and say what we rely on.

No Docker engine or cluster is available in CI, so this checks structure and invariants: every
role exists, runs `tessera run <role>`, probes /readyz and /healthz, runs as non-root, scales
mapper and projector no further than the partition count the roles create data topics with
(TESSERA_PARTITIONS), and the image builds as non-root. Then the schemas: the Kubernetes
manifests against the Kubernetes API's JSON schemas (kubernetes-validate, strict, for the oldest
and newest versions we support) and compose.yaml against the Compose specification
(check-jsonschema), and the Dockerfile with hadolint; scripts/install.d/06-manifest-linters.sh
installs them.
Exits non-zero with one line per problem.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2] / "infra"
ROLES = ["plugin-host", "mapper", "projector", "api"]
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def k8s_documents():
    docs = []
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def check_kubernetes():
    docs = k8s_documents()
    config = next((d for _, d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "tessera"), {})
    partitions = int(config.get("data", {}).get("TESSERA_PARTITIONS", "1"))
    check(partitions > 1, "k8s: the tessera ConfigMap must set TESSERA_PARTITIONS > 1, or scaling has nothing to divide")
    for name, doc in docs:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in doc, f"{name}: {doc.get('kind')} lacks {key}")
    deployments = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "Deployment"}
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for _, d in docs if d.get("kind") == "HorizontalPodAutoscaler"}
    for role in ROLES:
        dep = deployments.get(f"tessera-{role}")
        check(dep is not None, f"k8s: no Deployment for {role}")
        if dep is None:
            continue
        spec = dep["spec"]["template"]["spec"]
        container = spec["containers"][0]
        check(container.get("args") == ["run", role], f"k8s {role}: args must be ['run', '{role}']")
        check(container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"k8s {role}: readiness must be /readyz")
        check(container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"k8s {role}: liveness must be /healthz")
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"k8s {role}: must run as non-root")
        check(dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
              f"k8s {role}: selector does not match the pod labels")
    for role in ("mapper", "projector"):
        hpa = hpas.get(f"tessera-{role}")
        check(hpa is not None, f"k8s: no HorizontalPodAutoscaler for {role}")
        if hpa:
            check(hpa["spec"]["maxReplicas"] <= partitions, f"k8s {role}: maxReplicas beyond the {partitions} partitions")
        dep = deployments.get(f"tessera-{role}")
        env = {e.get("name"): e.get("value") for e in (dep or {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("env", [])}
        check(env.get("TESSERA_GROUP_MEMBERSHIP") == "kafka",
              f"k8s {role}: replicas must divide partitions through a Kafka group (TESSERA_GROUP_MEMBERSHIP=kafka)")
    check("tessera-plugin-host" not in hpas, "k8s: plugin-host must not autoscale (each plugin runs once)")
    services = [d for _, d in docs if d.get("kind") == "Service"]
    check(any(s["metadata"]["name"] == "tessera-api" for s in services), "k8s: no Service for the API")


def check_compose():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose.get("services", {})
    for name in ["kafka", "postgres", *ROLES]:
        check(name in services, f"compose: no service {name}")
    kafka_env = services.get("kafka", {}).get("environment", {})
    check("broker" in str(kafka_env.get("KAFKA_PROCESS_ROLES", "")) and "controller" in str(kafka_env.get("KAFKA_PROCESS_ROLES", "")),
          "compose: Kafka must run in KRaft mode (broker,controller)")
    for name, service in services.items():
        check("healthcheck" in service, f"compose {name}: no health check")
    for role in ROLES:
        service = services.get(role, {})
        check(service.get("command") == ["run", role], f"compose {role}: command must be ['run', '{role}']")
        env = service.get("environment", {})
        check(str(env.get("TESSERA_LOG_URL", "")).startswith("kafka://"), f"compose {role}: must use Kafka")
        check(int(env.get("TESSERA_PARTITIONS", "1")) > 1, f"compose {role}: TESSERA_PARTITIONS must be > 1 to scale")
        if role in ("mapper", "projector"):
            check(env.get("TESSERA_GROUP_MEMBERSHIP") == "kafka",
                  f"compose {role}: scaled instances must divide partitions through a Kafka group (TESSERA_GROUP_MEMBERSHIP=kafka)")


def check_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    check(text.count("FROM ") >= 2, "Dockerfile: must be multi-stage")
    check("\nUSER " in text and "USER root" not in text, "Dockerfile: must run as a non-root user")
    check("ENTRYPOINT" in text, "Dockerfile: no ENTRYPOINT")


# Kubernetes versions the manifests must be valid for.
KUBERNETES_VERSIONS = ["1.31.0", "1.37.0"]
LINT_VENV = pathlib.Path(os.environ.get("TESSERA_MANIFEST_LINT_VENV", "/opt/tessera-tools/manifest-lint"))


def linter(name):
    found = LINT_VENV / "bin" / name
    return str(found) if found.is_file() else shutil.which(name)


def check_schemas():
    kubernetes_validate, check_jsonschema = linter("kubernetes-validate"), linter("check-jsonschema")
    hadolint = linter("hadolint")
    if not kubernetes_validate or not check_jsonschema or not hadolint:
        problems.append(f"schema linters missing (looked in {LINT_VENV} and PATH): run scripts/install.d/06-manifest-linters.sh")
        return
    manifests = [str(p) for p in sorted((ROOT / "k8s").glob("*.yaml"))]
    for version in KUBERNETES_VERSIONS:
        run = subprocess.run([kubernetes_validate, "--strict", "--quiet", "-k", version, *manifests],
                             capture_output=True, text=True)
        check(run.returncode == 0, f"k8s: invalid for Kubernetes {version}:\n{run.stdout}{run.stderr}")
    run = subprocess.run([check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
                         capture_output=True, text=True)
    check(run.returncode == 0, f"compose: invalid against the Compose specification:\n{run.stdout}{run.stderr}")
    run = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    check(run.returncode == 0, f"Dockerfile: hadolint:\n{run.stdout}{run.stderr}")


check_kubernetes()
check_compose()
check_dockerfile()
check_schemas()
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
