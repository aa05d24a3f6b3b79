"""Static validation of the deployment artefacts: Helm chart, docker-compose.yml, Dockerfiles.

Runs without Helm, Docker or a cluster (see docs/deploy.md, "What is validated here"). Needs python3-yaml
and python3-jsonschema (Debian packages).
"""
from __future__ import annotations

import copy
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mambast-batch"
TEMPLATES = CHART / "templates"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
DOCKERFILES = {"worker": DEPLOY / "worker.Dockerfile", "submitter": DEPLOY / "submitter.Dockerfile"}

# Azurite's documented, public development account key: the only key-like literal allowed, and only in
# deploy/.env.example and docs/deploy.md.
AZURITE_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# The worker's configuration contract (env var names, double underscore).
WORKER_SETTINGS = {
    "ASPNETCORE_HTTP_PORTS",
    "Broker__Url", "Broker__Username", "Broker__Password",
    "Storage__ConnectionString", "Storage__SasUrl", "Storage__AccountUrl",
    "Inference__ModelDirectory", "Inference__ExecutionProvider", "Inference__DeviceId", "Inference__CudaFallback",
    "Inference__GpuMemoryLimitMb", "Inference__IntraOpThreads", "Inference__MaxSide", "Inference__Scan",
    "Worker__QueueName", "Worker__BatchMessageLimit", "Worker__BatchTimeLimitMs", "Worker__PrefetchCount",
    "Worker__ConcurrentBatches", "Worker__WorkerId", "Worker__StopTimeoutSeconds",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
    "SSL_CERT_DIR",

    "ORT_DISABLE_TELEMETRY", "MASSTRANSIT_USAGE_TELEMETRY",  # library switches, not worker settings
}
# List settings rendered one key per item (Storage:AllowedAccounts:0 -> Storage__AllowedAccounts__0).
WORKER_LIST_SETTINGS = re.compile(r"^Storage__Allowed(Accounts|Hosts|LocalRoots)__\d+$")


# ---------------------------------------------------------------------------------------------- helpers

def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def schema():
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def defaults():
    return load_yaml(CHART / "values.yaml")


def coalesce(base, override):
    """Helm's values merge: maps merge recursively, a null in the override deletes the key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def schema_errors(values):
    validator = jsonschema.Draft7Validator(schema())
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


def with_override(override):
    return coalesce(defaults(), override)


def template_files():
    return sorted(p for p in TEMPLATES.iterdir() if p.suffix in (".yaml", ".tpl", ".txt"))


ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)


def actions(text: str):
    return [m.group(1).strip() for m in ACTION.finditer(text)]


# ------------------------------------------------------------------------------------------ values schema

def test_schema_is_valid_draft7():
    s = schema()
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(s)
    assert s["additionalProperties"] is False


def test_default_values_validate():
    assert schema_errors(defaults()) == []


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"values-gpu.yaml", "values-cpu.yaml", "values-scale-to-zero.yaml"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_merged_onto_defaults(example):
    # Helm validates the schema against defaults coalesced with the user's files.
    assert schema_errors(with_override(load_yaml(example))) == []


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"replicaCount": -1}, "replicaCount: -1 is less than the minimum of 0"),
        ({"replicas": 3}, "Additional properties are not allowed ('replicas' was unexpected)"),
        ({"worker": {"batchSize": 8}}, "Additional properties are not allowed ('batchSize' was unexpected)"),
        ({"autoscaling": {"maxReplicaCount": 0}}, "autoscaling/maxReplicaCount: 0 is less than the minimum of 1"),
        ({"autoscaling": {"idleReplicaCount": 1}}, "autoscaling/idleReplicaCount"),
        ({"autoscaling": {"auth": "inline"}}, "autoscaling/auth: 'inline' is not one of"),
        ({"autoscaling": {"protocol": "auto"}}, "autoscaling/protocol: 'auto' is not one of"),
        ({"worker": {"stopTimeoutSeconds": 0}}, "worker/stopTimeoutSeconds: 0 is less than the minimum of 1"),
        ({"terminationGracePeriodSeconds": 0}, "terminationGracePeriodSeconds: 0 is less than the minimum of 1"),
        ({"image": {"tag": "latest"}}, "image/tag"),
        ({"image": {"digest": "sha256:abc"}}, "image/digest: 'sha256:abc' does not match"),
        ({"gpu": {"enabled": False}, "inference": {"executionProvider": "Cuda"}}, "inference/executionProvider: 'Cuda' is not one of"),
        ({"inference": {"cudaFallback": "Ignore"}}, "inference/cudaFallback: 'Ignore' is not one of"),
        ({"storage": {"mode": "workloadIdentity", "accountUrl": ""}}, "storage/accountUrl"),
        ({"storage": {"mode": "accountKey"}}, "storage/mode: 'accountKey' is not one of"),
        ({"broker": {"url": "http://rabbitmq:15672/"}}, "broker/url: 'http://rabbitmq:15672/' does not match"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "podSecurityContext/runAsNonRoot: True was expected"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "securityContext/allowPrivilegeEscalation: False was expected"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "podDisruptionBudget: "),
        ({"resources": {"limits": {"memory": "lots"}}}, "resources/limits/memory: 'lots' does not match"),
        ({"extraEnv": [{"name": "A", "secretValue": "x"}]}, "extraEnv/0: Additional properties are not allowed"),
        ({"serviceMonitor": {"interval": "often"}}, "serviceMonitor/interval: 'often' does not match"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_schema_rejects_invalid_values(override, expected):
    errors = schema_errors(with_override(override))
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_schema_rejects_every_unknown_key_where_closed():
    """Every object the schema closes rejects an extra key at that spot in the default values."""
    checked = 0

    def walk(node_schema, values, path):
        nonlocal checked
        if not isinstance(values, dict) or node_schema.get("additionalProperties") is not False:
            return
        bad = copy.deepcopy(defaults())
        target = bad
        for key in path:
            target = target[key]
        target["notARealSetting"] = 1
        assert any("notARealSetting" in e for e in schema_errors(bad)), "/".join(path)
        checked += 1
        for key, sub in node_schema.get("properties", {}).items():
            if key in values:
                walk(sub, values[key], path + [key])

    walk(schema(), defaults(), [])
    assert checked >= 15


# ---------------------------------------------------------------- the rule the template enforces

# The worker's host shutdown timeout is Worker__StopTimeoutSeconds + 10 s (src/Worker/WorkerHostExtensions.cs);
# the grace period covers that plus 5 s for the process to exit.
GRACE_HEADROOM_SECONDS = 15


def grace_rule_holds(values) -> bool:
    return values["terminationGracePeriodSeconds"] >= values["worker"]["stopTimeoutSeconds"] + GRACE_HEADROOM_SECONDS


def test_grace_headroom_covers_the_worker_host_shutdown_timeout():
    source = (ROOT / "src" / "Worker" / "WorkerHostExtensions.cs").read_text(encoding="utf-8")
    m = re.search(r"ShutdownTimeout = stopTimeout \+ TimeSpan\.FromSeconds\((\d+)\)", source)
    assert m, "the host shutdown timeout is no longer stopTimeout + N s: revisit GRACE_HEADROOM_SECONDS"
    assert GRACE_HEADROOM_SECONDS > int(m.group(1))


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda p: p.name if p else "values.yaml")
def test_defaults_and_examples_keep_grace_period_above_stop_timeout(example):
    values = with_override(load_yaml(example)) if example else defaults()
    assert grace_rule_holds(values)
    if values["autoscaling"].get("idleReplicaCount") is not None:
        assert values["autoscaling"]["minReplicaCount"] >= 1
    assert values["autoscaling"]["minReplicaCount"] <= values["autoscaling"]["maxReplicaCount"]


def test_template_fails_when_grace_period_is_below_stop_timeout():
    helpers = (TEMPLATES / "_helpers.tpl").read_text(encoding="utf-8")
    rule = re.search(
        r"\{\{-? \$minGrace := add \(int \.Values\.worker\.stopTimeoutSeconds\) (\d+) \}\}\s*"
        r"\{\{-? if lt \(int \.Values\.terminationGracePeriodSeconds\) \(int \$minGrace\) \}\}"
        r"\s*\{\{-? fail ", helpers)
    assert rule, "the grace-period rule is missing from mambast-batch.validate"
    assert int(rule.group(1)) == GRACE_HEADROOM_SECONDS
    deployment = (TEMPLATES / "deployment.yaml").read_text(encoding="utf-8")
    assert deployment.lstrip().startswith('{{- include "mambast-batch.validate" . }}')
    # The rule rejects what the schema alone would accept.
    bad = with_override({"terminationGracePeriodSeconds": 120, "worker": {"stopTimeoutSeconds": 120}})
    assert schema_errors(bad) == [] and not grace_rule_holds(bad)


# ------------------------------------------------------------------------------- templates, structurally

@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.name)
def test_template_actions_are_balanced(path):
    text = path.read_text(encoding="utf-8")
    assert text.count("{{") == text.count("}}"), "unbalanced {{ }}"
    for m in ACTION.finditer(text):
        assert "{{" not in m.group(1), f"nested action near offset {m.start()}"
    stack = []
    for act in actions(text):
        if act.startswith("/*"):
            assert act.endswith("*/"), act
            continue
        word = act.split()[0] if act else ""
        if word in ("if", "with", "range", "define", "block"):
            stack.append(word)
        elif word == "else":
            assert stack and stack[-1] in ("if", "with", "range"), f"stray else: {act}"
        elif word == "end":
            assert stack, "end without a block"
            stack.pop()
    assert stack == [], f"unclosed blocks: {stack}"


def test_template_values_paths_exist_in_values_yaml():
    values = defaults()
    missing = []
    for path in template_files():
        text = path.read_text(encoding="utf-8")
        guarded = {f"{m.group(1)}.{m.group(2)}" for m in re.finditer(r'hasKey \.Values\.([\w.]+) "(\w+)"', text)}
        for m in re.finditer(r"\.Values((?:\.\w+)+)", text):
            dotted = m.group(1)[1:]
            node, ok = values, True
            for key in dotted.split("."):
                if isinstance(node, dict) and key in node:
                    node = node[key]
                else:
                    ok = False
                    break
            if not ok and dotted not in guarded:
                missing.append(f"{path.name}: .Values.{dotted}")
    assert missing == []


def test_template_includes_are_defined():
    defined = set()
    used = []
    for path in template_files():
        text = path.read_text(encoding="utf-8")
        defined |= set(re.findall(r'define "([^"]+)"', text))
        used += [(path.name, n) for n in re.findall(r'include "([^"]+)"', text)]
    assert used
    assert [u for u in used if u[1] not in defined] == []


def test_chart_metadata():
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "mambast-batch" == CHART.name
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    names = {p.name for p in TEMPLATES.iterdir()}
    assert {"deployment.yaml", "configmap.yaml", "secret.yaml", "pdb.yaml", "scaledobject.yaml", "servicemonitor.yaml",
            "serviceaccount.yaml", "service.yaml", "NOTES.txt", "_helpers.tpl"} <= names


def test_deployment_wires_gpu_probes_secrets_and_security():
    text = (TEMPLATES / "deployment.yaml").read_text(encoding="utf-8")
    for needle in [
        "set $limits .Values.gpu.resourceName",            # nvidia.com/gpu limit when gpu.enabled
        "{{- if .Values.gpu.enabled }}",
        "nodeSelector:", "tolerations:", "affinity:",
        "startupProbe:", "livenessProbe:", "readinessProbe:",
        "path: /health/live", "path: /health/ready",
        "terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}",
        "configMapRef:", "secretKeyRef:", "fieldPath: metadata.name",
        "securityContext:", "resources:",
    ]:
        assert needle in text, needle
    assert text.index("livenessProbe") > text.index("startupProbe")
    # No credential is ever a plain env value: the secret-bearing variables come through secretKeyRef.
    for name in ("Broker__Username", "Broker__Password", "Storage__ConnectionString", "Storage__SasUrl"):
        block = text.split(f"- name: {name}", 1)[1].split("- name:", 1)[0]
        assert "secretKeyRef" in block and "value:" not in block, name


def test_configmap_sets_only_contract_settings_and_no_credentials():
    text = (TEMPLATES / "configmap.yaml").read_text(encoding="utf-8")
    keys = set(re.findall(r"^\s+([A-Za-z_][A-Za-z0-9_]*):", text.split("\ndata:", 1)[1], re.M))
    assert keys, "no data keys"
    assert keys - WORKER_SETTINGS == set()
    assert not keys & {"Broker__Username", "Broker__Password", "Storage__ConnectionString", "Storage__SasUrl"}


def test_scaledobject_uses_rabbitmq_queue_length_with_secret_auth():
    text = (TEMPLATES / "scaledobject.yaml").read_text(encoding="utf-8")
    for needle in [
        "kind: ScaledObject", "kind: TriggerAuthentication", "type: rabbitmq", "mode: QueueLength",
        "value: {{ $.Values.autoscaling.messagesPerReplica | quote }}",
        "queueName: {{ $queue | quote }}",
        "minReplicaCount:", "maxReplicaCount:", "idleReplicaCount:", "cooldownPeriod:",
        "hostFromEnv: KEDA_RABBITMQ_HOST", "authenticationRef:", "secretTargetRef:",
        "protocol: {{ $.Values.autoscaling.protocol }}", 'key: {{ include "mambast-batch.kedaHostKey" . }}',
    ]:
        assert needle in text, needle
    assert not re.search(r"^\s+host:\s", text, re.M), "the broker URI must not be written into the ScaledObject"
    deployment = (TEMPLATES / "deployment.yaml").read_text(encoding="utf-8")
    assert "- name: KEDA_RABBITMQ_HOST" in deployment


def test_secret_template_is_opt_in():
    text = (TEMPLATES / "secret.yaml").read_text(encoding="utf-8")
    assert actions(text)[1] == "if .Values.secret.create"
    assert defaults()["secret"]["create"] is False
    for example in EXAMPLES:
        assert load_yaml(example).get("secret", {}).get("create", False) is False, example.name


# ------------------------------------------------------------------------------------------- compose

def compose():
    return load_yaml(COMPOSE)


def test_compose_services_and_health():
    services = compose()["services"]
    assert {"rabbitmq", "azurite", "worker", "worker-gpu", "submitter"} <= set(services)
    for name, svc in services.items():
        one_shot = svc.get("profiles") == ["submit"] and svc.get("restart") == "no"
        assert "healthcheck" in svc or one_shot, f"{name}: no healthcheck and not the one-shot"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}: {cond}"
    assert "profiles" not in services["worker"]
    assert services["worker"]["build"]["target"] == "cpu"
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    assert services["worker-gpu"]["build"]["target"] == "gpu"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["submitter"]["profiles"] == ["submit"]


def test_compose_images_are_pinned():
    for name, svc in compose()["services"].items():
        image = svc.get("image", "")
        assert image, name
        if "build" in svc:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest" and re.match(r"\d+\.\d+\.\d+", tag), f"{name}: {image}"
    assert compose()["services"]["rabbitmq"]["image"].startswith("rabbitmq:3.13.")
    assert compose()["services"]["rabbitmq"]["image"].endswith("-management")


def test_compose_reads_settings_from_the_documented_env_file():
    env_example = DEPLOY / ".env.example"
    assert env_example.is_file()
    for name, svc in compose()["services"].items():
        if name == "azurite":
            continue
        files = [e["path"] if isinstance(e, dict) else e for e in svc.get("env_file", [])]
        assert "deploy/.env.example" in files, name
    documented = set(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", env_example.read_text(encoding="utf-8"), re.M))
    for needed in ("Broker__Url", "Broker__Username", "Broker__Password", "Storage__ConnectionString", "Storage__SasUrl",
                   "Storage__AccountUrl", "Worker__QueueName", "Worker__StopTimeoutSeconds", "OTEL_EXPORTER_OTLP_ENDPOINT",
                   "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"):
        assert needed in documented, needed
    settings = {k for k in documented if "__" in k or k.startswith("OTEL_")}
    assert settings - WORKER_SETTINGS == set()
    grace = int(compose()["services"]["worker"]["stop_grace_period"].rstrip("s"))
    stop = int(re.search(r"^Worker__StopTimeoutSeconds=(\d+)", env_example.read_text(encoding="utf-8"), re.M).group(1))
    assert grace >= stop + GRACE_HEADROOM_SECONDS


# -------------------------------------------------------------------------------- no secrets inline

SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|pass|secret|token|accountkey|apikey|api_key|sas)[\w.-]*)\b[ \t]*[:=][ \t]*"
    r"[\"']?([^\s\"'#,}]+)")
ALLOWED_SECRET_VALUES = re.compile(
    r"""^(""|''|\{\{.*|\$\{.*|<.*|change-me-local-only|password|username|sasUrl|amqpUri|connectionString|
         secretKeyRef|true|false|\[\]|\{\}|\.\.\.|mambast-broker|mambast-broker-ca|mambast-storage|Opaque|/.*|\||
         Exists|NoSchedule)$""", re.X)


def files_to_scan():
    files = [COMPOSE, *DOCKERFILES.values(), CHART / "values.yaml", *EXAMPLES, *template_files(),
             ROOT / "docs" / "deploy.md"]
    return files


@pytest.mark.parametrize("path", files_to_scan(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_inline_secrets(path):
    text = path.read_text(encoding="utf-8")
    assert AZURITE_DEV_KEY not in text
    assert not re.search(r"AccountKey=[A-Za-z0-9+/=]{20,}", text)
    assert not re.search(r"[a-z][a-z0-9+.-]*://(?!<)[^/\s:@<]+:(?!<)[^/\s@{}<]+@", text), "credentials inside a URI"
    assert not re.search(r"[?&]sig=[A-Za-z0-9%+/=]{10,}", text), "SAS signature"
    if path.suffix == ".md":
        return  # prose: the checks above only
    for m in SECRET_ASSIGNMENT.finditer(text):
        value = m.group(2).rstrip(";.,)`")
        if not value:
            continue  # "..." placeholder
        assert ALLOWED_SECRET_VALUES.match(value) or value.lower() == m.group(1).lower(), f"{m.group(0)!r}"


def test_env_example_holds_only_the_public_azurite_key():
    text = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    keys = re.findall(r"AccountKey=([^;]+);", text)
    assert keys == [AZURITE_DEV_KEY]
    assert "AccountName=devstoreaccount1" in text and "well-known" in text


# ------------------------------------------------------------------------------------------ Dockerfiles

def dockerfile_stages(path: Path):
    """[(stage name, base image with ARG defaults resolved, [instructions])] for one Dockerfile."""
    args, stages = {}, []
    lines = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8")).splitlines()
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif op == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            stages.append((name, image, []))
        else:
            stages[-1][2].append((op, rest))
    return stages


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_bases_are_pinned(name):
    stage_names = set()
    for stage, image, _ in dockerfile_stages(DOCKERFILES[name]):
        if image == "scratch" or image in stage_names:
            stage_names.add(stage)
            continue
        stage_names.add(stage)
        repo, sep, tag = image.split("@")[0].rpartition(":")
        assert sep and "/" not in tag, f"{stage}: {image} has no tag"
        assert tag != "latest" and re.match(r"\d+\.\d+(\.\d+)?", tag), f"{stage}: {image} is not a pinned version"


@pytest.mark.parametrize("name, target, entry", [
    ("worker", "cpu", "MambaSt.Batch.Worker.dll"),
    ("worker", "gpu", "MambaSt.Batch.Worker.dll"),
    ("submitter", "submitter", "mambast.dll"),
])
def test_dockerfile_final_stages(name, target, entry):
    stages = {s: (image, ins) for s, image, ins in dockerfile_stages(DOCKERFILES[name])}
    image, ins = stages[target]
    ops = dict()
    for op, rest in ins:
        ops.setdefault(op, []).append(rest)
    user = ops["USER"][-1].split(":")[0]
    assert user not in ("0", "root") and (user.isdigit() and int(user) >= 1000 or not user.isdigit()), user
    assert "HEALTHCHECK" in ops
    if name == "worker":
        assert "/health/ready" in ops["HEALTHCHECK"][-1] and "--start-period" in ops["HEALTHCHECK"][-1]
        assert ops["EXPOSE"] == ["8080"]
        assert any("ASPNETCORE_HTTP_PORTS=8080" in e for e in ops["ENV"])
    else:
        assert ops["HEALTHCHECK"] == ["NONE"]
    assert entry in ops["ENTRYPOINT"][-1]
    assert any("/models/default/ /app/models/default/" in c for c in ops["COPY"])
    build = "build-gpu" if target == "gpu" else "build"
    assert any(f"--from={build} /out/ /app/" in c for c in ops["COPY"])
    if target == "gpu":
        assert image.startswith("nvidia/cuda:13.") and "cudnn-runtime-ubuntu24.04" in image
        assert any("Inference__ExecutionProvider=Cuda" in e for e in ops["ENV"])
    if target == "cpu":
        assert image.startswith("mcr.microsoft.com/dotnet/aspnet:10.0.")


def test_gpu_image_takes_a_cuda_enabled_onnxruntime_core_and_checks_it():
    """The CPU package's libonnxruntime.so has no CUDA provider. The gpu image publishes with
    -p:OnnxRuntimeFlavor=Cuda (Managed + Gpu.Linux: core, shared and CUDA provider from one build, never the
    .Gpu meta-package) and a check stage fails the build unless that core reports CUDA."""
    stages = {s: (image, ins) for s, image, ins in dockerfile_stages(DOCKERFILES["worker"])}
    text = DOCKERFILES["worker"].read_text(encoding="utf-8")
    assert "npm" not in "".join(rest for _, (_, ins) in stages.items() for _, rest in ins), "anything from npm"
    assert "Microsoft.ML.OnnxRuntime.Gpu " not in text and "OnnxRuntimeFromNuGet" not in text

    image, ins = stages["build-gpu"]
    assert image.startswith("mcr.microsoft.com/dotnet/sdk:10.0.")
    (publish,) = [r for op, r in ins if op == "RUN" and "dotnet publish" in r]
    assert "-p:OnnxRuntimeFlavor=Cuda" in publish and "--runtime linux-x64" in publish
    assert "libmambast_ops.so" in publish, "the gpu image ships the fused-scan op library"
    assert "--self-contained false" in publish

    image, ins = stages["ort-check"]
    assert image.startswith("python:3.")
    copies = [r for op, r in ins if op == "COPY"]
    assert any(r.startswith("--from=build-gpu /out/ ") for r in copies)
    assert any("deploy/check-onnxruntime-cuda.py" in r for r in copies)
    assert any("check-onnxruntime-cuda" in r for op, r in ins if op == "RUN")

    _, ins = stages["gpu"]
    copies = [r for op, r in ins if op == "COPY"]
    assert "--from=build-gpu /out/ /app/" in copies
    assert not any(r.startswith("--from=build ") for r in copies), "the gpu image must not take the CPU core"
    assert any(r.startswith("--from=ort-check ") for r in copies), "the gpu stage must depend on the check"
    runs = [r for op, r in ins if op == "RUN"]
    assert not any("providers_cuda" in r and ("cp " in r or "npm" in r or "curl" in r) for r in runs), "CUDA provider fetched by hand"
    (ldd,) = [r for r in runs if "ldd /app/libonnxruntime_providers_cuda.so" in r]
    assert "not found" in ldd and "exit 1" in ldd, "the gpu build must fail when the CUDA provider's libraries are missing"


FAKE_ORT = r"""
static const char *names[] = { PROVIDERS };
static void *get_available(const char ***out, int *n) { *out = names; *n = sizeof names / sizeof *names; return 0; }
static void *release(const char **p, int n) { (void)p; (void)n; return 0; }
static void *table[200];
static const void *get_api(unsigned v) { (void)v; table[125] = (void *)get_available; table[126] = (void *)release; return table; }
static const char *version(void) { return "1.99.0"; }
static struct { const void *(*get_api)(unsigned); const char *(*version)(void); } base = { get_api, version };
const void *OrtGetApiBase(void) { return &base; }
"""


@pytest.mark.parametrize("providers, beside, ok, message", [
    ('"CPUExecutionProvider"', ["cuda", "shared"], False, "NOT BUILT WITH CUDAExecutionProvider"),
    ('"CUDAExecutionProvider", "CPUExecutionProvider"', ["shared"], False,
     "missing beside it: libonnxruntime_providers_cuda.so"),
    ('"CUDAExecutionProvider", "CPUExecutionProvider"', ["cuda", "shared"], True,
     "providers CUDAExecutionProvider, CPUExecutionProvider"),
], ids=["cpu-core", "no-cuda-provider", "cuda-core"])
def test_onnxruntime_cuda_check_asks_the_library(providers, beside, ok, message, tmp_path):
    import shutil
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("needs a C compiler to build a stand-in libonnxruntime.so")
    source = tmp_path / "fake_ort.c"
    source.write_text(FAKE_ORT, encoding="utf-8")
    native = tmp_path / "out" / "runtimes" / "native"
    native.mkdir(parents=True)
    subprocess.run([cc, "-shared", "-fPIC", f"-DPROVIDERS={providers}", "-o", str(native / "libonnxruntime.so"),
                    str(source)], check=True, timeout=60)
    for name in beside:
        (native / f"libonnxruntime_providers_{name}.so").write_bytes(b"")
    report = tmp_path / "report.txt"
    result = subprocess.run([sys.executable, str(DEPLOY / "check-onnxruntime-cuda.py"), str(tmp_path / "out"),
                             str(report)], capture_output=True, text=True, timeout=60)
    assert (result.returncode == 0) == ok, result.stderr
    assert message in result.stdout + result.stderr
    assert report.is_file() == ok


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_builds_in_an_sdk_stage_without_npm(name):
    """Native libraries come from NuGet (ONNX Runtime, NetVips.Native): the images need no npm stage."""
    stages = dockerfile_stages(DOCKERFILES[name])
    images = {s: image for s, image, _ in stages}
    assert images["build"].startswith("mcr.microsoft.com/dotnet/sdk:10.0.")
    assert not any(image.startswith("node:") for image in images.values())
    runs = [rest for s, _, ins in stages for op, rest in ins if op == "RUN"]
    assert not any("npm " in r for r in runs)
    assert any("dotnet publish" in r for r in runs)
    header = DOCKERFILES[name].read_text(encoding="utf-8").split("FROM", 1)[0]
    assert "digest" in header.lower()


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerignore_lets_every_copied_path_in(name):
    allowed = [l[1:].rstrip("/") for l in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if l.startswith("!")]
    args = {}
    for line in DOCKERFILES[name].read_text(encoding="utf-8").splitlines():
        m = re.match(r"ARG (\w+)=(\S+)", line)
        if m:
            args[m.group(1)] = m.group(2)
    for _, _, ins in dockerfile_stages(DOCKERFILES[name]):
        for op, rest in ins:
            if op != "COPY" or "--from=" in rest:
                continue
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            for src in sources:
                src = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], src).rstrip("/")
                assert any(src == a or src.startswith(a + "/") for a in allowed), f"{src} is excluded by .dockerignore"


# ------------------------------------------------------------------------------- the health probe itself

class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health/ready" else 503)
        self.end_headers()
        self.wfile.write(b"Healthy")

    def log_message(self, *args):
        pass


def test_healthcheck_script_reports_http_status():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = str(server.server_address[1])
    probe = [str(DEPLOY / "healthcheck.sh")]
    try:
        assert subprocess.run(probe + ["/health/ready", port], timeout=10).returncode == 0
        assert subprocess.run(probe + ["/health/live", port], timeout=10).returncode == 1
    finally:
        server.shutdown()
        server.server_close()
    # Nothing listening any more.
    assert subprocess.run(probe + ["/health/ready", port], timeout=10, capture_output=True).returncode == 1


# ------------------------------------------- rendering with Go text/template + sprig (Helm's engine)

RENDERER_SRC = Path(__file__).resolve().parent / "render" / "main.go"
GOPATH_DEBIAN = Path("/usr/share/gocode")


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    """Builds tests/deploy/render once; skipped (with the reason) where Go or Debian's sprig is missing."""
    import os
    import shutil
    go = shutil.which("go")
    if not go or not (GOPATH_DEBIAN / "src/github.com/Masterminds/sprig").is_dir() \
            or not (GOPATH_DEBIAN / "src/gopkg.in/yaml.v3").is_dir():
        pytest.skip("render check needs golang-go, golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v3-dev")
    work = tmp_path_factory.mktemp("render")
    shutil.copy(RENDERER_SRC, work / "main.go")
    env = dict(os.environ, GO111MODULE="off", GOPATH=f"{work / 'gopath'}:{GOPATH_DEBIAN}", GOFLAGS="")
    build = subprocess.run([go, "build", "-o", str(work / "render"), "."], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    return work / "render"


def render(renderer, *overrides, tmp_path=None):
    files = []
    for i, o in enumerate(overrides):
        if isinstance(o, Path):
            files.append(str(o))
        else:
            p = tmp_path / f"override-{i}.yaml"
            p.write_text(yaml.safe_dump(o), encoding="utf-8")
            files.append(str(p))
    return subprocess.run([str(renderer), str(CHART), *files], capture_output=True, text=True, timeout=30)


def manifests(result):
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda p: p.name if p else "values.yaml")
def test_chart_renders_valid_manifests(renderer, example, tmp_path):
    values = with_override(load_yaml(example)) if example else defaults()
    result = render(renderer, *([example] if example else []), tmp_path=tmp_path)
    objs = manifests(result)
    kinds = {k for k, _ in objs}
    assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount", "ScaledObject"} <= kinds
    assert "Secret" not in kinds
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert "replicas" not in deploy["spec"]  # KEDA owns it
    assert pod["terminationGracePeriodSeconds"] == values["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["startupProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    limits = container["resources"].get("limits", {})
    assert ("nvidia.com/gpu" in limits) == values["gpu"]["enabled"]
    env = {e["name"]: e for e in container["env"]}
    assert env["Broker__Password"]["valueFrom"]["secretKeyRef"]["name"] == values["broker"]["existingSecret"]
    assert all("value" not in e for e in env.values() if e["name"] != "Worker__WorkerId")
    cm = next(d for (k, _), d in objs.items() if k == "ConfigMap")
    assert cm["data"]["Inference__ExecutionProvider"] == ("Cuda" if values["gpu"]["enabled"] else "Cpu")
    assert cm["data"]["Worker__StopTimeoutSeconds"] == str(values["worker"]["stopTimeoutSeconds"])
    assert {k for k in cm["data"] if not WORKER_LIST_SETTINGS.match(k)} <= WORKER_SETTINGS
    so = next(d for (k, _), d in objs.items() if k == "ScaledObject")
    trigger, isolation = so["spec"]["triggers"]
    assert isolation["metadata"]["queueName"] == values["worker"]["queueName"] + "_isolation"
    assert {k: v for k, v in isolation.items() if k != "metadata"} == {k: v for k, v in trigger.items() if k != "metadata"}
    assert {k: v for k, v in isolation["metadata"].items() if k != "queueName"} == {k: v for k, v in trigger["metadata"].items() if k != "queueName"}
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["value"] == str(values["autoscaling"]["messagesPerReplica"])
    assert trigger["metadata"]["queueName"] == values["worker"]["queueName"]
    assert so["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert so["spec"].get("idleReplicaCount") == values["autoscaling"].get("idleReplicaCount")
    protocol = values["autoscaling"]["protocol"]
    assert trigger["metadata"]["protocol"] == protocol
    host_key = values["broker"]["uriKey" if protocol == "amqp" else "managementUriKey"]
    if values["autoscaling"]["auth"] == "hostFromEnv":
        assert trigger["metadata"]["hostFromEnv"] == "KEDA_RABBITMQ_HOST"
        assert env["KEDA_RABBITMQ_HOST"]["valueFrom"]["secretKeyRef"]["key"] == host_key
    else:
        ta = objs[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
        assert ta["spec"]["secretTargetRef"] == [{"parameter": "host", "name": values["broker"]["existingSecret"],
                                                  "key": host_key}]


@pytest.mark.parametrize("override, message", [
    ({"terminationGracePeriodSeconds": 60}, "terminationGracePeriodSeconds (60) must be >= worker.stopTimeoutSeconds + 15 (135)"),
    ({"terminationGracePeriodSeconds": 120, "worker": {"stopTimeoutSeconds": 120}},
     "terminationGracePeriodSeconds (120) must be >= worker.stopTimeoutSeconds + 15 (135)"),
    ({"terminationGracePeriodSeconds": 134, "worker": {"stopTimeoutSeconds": 120}}, "its host up to 10 s more"),
    ({"autoscaling": {"minReplicaCount": 0, "idleReplicaCount": 0}}, "needs autoscaling.minReplicaCount >= 1"),
    ({"autoscaling": {"minReplicaCount": 9, "maxReplicaCount": 8}}, "minReplicaCount must be <= autoscaling.maxReplicaCount"),
    ({"gpu": {"enabled": False}, "inference": {"executionProvider": "Cuda"}}, "needs gpu.enabled=true"),
    ({"broker": {"existingSecret": ""}}, "set broker.existingSecret"),
    ({"serviceMonitor": {"enabled": True}}, "needs serviceMonitor.selector"),
    ({"secret": {"create": True}}, "no secret.* value is set"),
    ({"secret": {"create": True, "brokerUsername": "u", "brokerPassword": "p"}}, "secret.brokerManagementUri is required"),
    ({"secret": {"create": True, "brokerUsername": "u", "brokerPassword": "p", "brokerManagementUri": "http://h:15672/"},
      "autoscaling": {"protocol": "amqp"}}, "secret.brokerUri is required"),
    ({"secret": {"create": True, "brokerUsername": "u", "brokerUri": "amqp://h/"}},
     "set both secret.brokerUsername and secret.brokerPassword"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else "")
def test_chart_render_rules_fail_with_a_clear_message(renderer, override, message, tmp_path):
    result = render(renderer, override, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_chart_renders_optional_objects(renderer, tmp_path):
    objs = manifests(render(renderer, {
        "secret": {"create": True, "brokerUsername": "u", "brokerPassword": "p", "brokerUri": "amqp://u:p@h/"},
        "broker": {"existingSecret": ""},
        "autoscaling": {"enabled": False},
        "replicaCount": 3,
        "gpu": {"enabled": False},
        "serviceMonitor": {"enabled": True, "selector": {"app": "otel-collector"}},
        "telemetry": {"otlpEndpoint": "http://otel:4317"},
    }, tmp_path=tmp_path))
    kinds = {k for k, _ in objs}
    assert "ScaledObject" not in kinds and "TriggerAuthentication" not in kinds
    secret = next(d for (k, _), d in objs.items() if k == "Secret")
    assert secret["stringData"] == {"username": "u", "password": "p", "amqpUri": "amqp://u:p@h/"}
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    assert deploy["spec"]["replicas"] == 3
    assert "checksum/secret" in deploy["spec"]["template"]["metadata"]["annotations"]
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["Broker__Username"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert "nvidia.com/gpu" not in deploy["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    sm = next(d for (k, _), d in objs.items() if k == "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"] == {"app": "otel-collector"}
    cm = next(d for (k, _), d in objs.items() if k == "ConfigMap")
    assert cm["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel:4317"


def test_chart_secret_wins_over_the_default_existing_secret(renderer, tmp_path):
    """secret.create=true with broker credentials: every reference names the chart's Secret, although
    broker.existingSecret keeps its default (mambast-broker), which nobody created."""
    objs = manifests(render(renderer, {
        "secret": {"create": True, "brokerUsername": "u", "brokerPassword": "p", "brokerManagementUri": "http://h:15672/"},
        "autoscaling": {"auth": "hostFromEnv"},
    }, tmp_path=tmp_path))
    secret = next(d for (k, _), d in objs.items() if k == "Secret")
    name = secret["metadata"]["name"]
    assert name != defaults()["broker"]["existingSecret"]
    assert set(secret["stringData"]) == {"username", "password", "managementUri"}
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    for var in ("Broker__Username", "Broker__Password", "KEDA_RABBITMQ_HOST"):
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == name, var
    # The storage credential is not in the chart's Secret: it still comes from storage.existingSecret.
    assert env["Storage__ConnectionString"]["valueFrom"]["secretKeyRef"]["name"] == defaults()["storage"]["existingSecret"]

    objs = manifests(render(renderer, {
        "secret": {"create": True, "brokerUsername": "u", "brokerPassword": "p", "brokerUri": "amqp://h:5672/",
                   "storageConnectionString": "UseDevelopmentStorage=true"},
        "autoscaling": {"protocol": "amqp"},
    }, tmp_path=tmp_path))
    name = next(d for (k, _), d in objs.items() if k == "Secret")["metadata"]["name"]
    (ta,) = [d for (k, _), d in objs.items() if k == "TriggerAuthentication"]
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "host", "name": name, "key": "amqpUri"}]
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["Storage__ConnectionString"]["valueFrom"]["secretKeyRef"]["name"] == name


def test_chart_secret_with_storage_only_leaves_broker_on_its_existing_secret(renderer, tmp_path):
    objs = manifests(render(renderer, {
        "secret": {"create": True, "storageConnectionString": "UseDevelopmentStorage=true"},
    }, tmp_path=tmp_path))
    name = next(d for (k, _), d in objs.items() if k == "Secret")["metadata"]["name"]
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["Broker__Password"]["valueFrom"]["secretKeyRef"]["name"] == defaults()["broker"]["existingSecret"]
    assert env["Storage__ConnectionString"]["valueFrom"]["secretKeyRef"]["name"] == name


def test_chart_renders_with_grace_period_at_stop_timeout_plus_15(renderer, tmp_path):
    objs = manifests(render(renderer, {"terminationGracePeriodSeconds": 135, "worker": {"stopTimeoutSeconds": 120}},
                            tmp_path=tmp_path))
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 135


@pytest.mark.parametrize("auth", ["triggerAuthentication", "hostFromEnv"])
def test_keda_counts_unacknowledged_messages_by_default(renderer, auth, tmp_path):
    """protocol http (management API) counts ready + unacknowledged messages: the jobs each worker has
    prefetched (worker.prefetchCount) keep their pods. amqp counts ready messages only."""
    assert defaults()["autoscaling"]["protocol"] == "http"
    for protocol, key in (("http", "managementUri"), ("amqp", "amqpUri")):
        result = render(renderer, {"autoscaling": {"auth": auth, "protocol": protocol}}, tmp_path=tmp_path)
        objs = manifests(result)
        so = next(d for (k, _), d in objs.items() if k == "ScaledObject")
        for trigger in so["spec"]["triggers"]:
            assert trigger["metadata"]["protocol"] == protocol and trigger["metadata"]["mode"] == "QueueLength"
        if auth == "hostFromEnv":
            deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
            env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env["KEDA_RABBITMQ_HOST"]["valueFrom"]["secretKeyRef"] == {"name": "mambast-broker", "key": key}
        else:
            (ta,) = [d for (k, _), d in objs.items() if k == "TriggerAuthentication"]
            assert ta["spec"]["secretTargetRef"] == [{"parameter": "host", "name": "mambast-broker", "key": key}]
        assert ("protocol amqp counts ready messages only" in result.stderr) == (protocol == "amqp")


# ------------------------------------------------------------- trust boundaries (issue 22, docs/security.md)

def test_network_policy_allows_only_health_ingress_and_broker_storage_dns_egress(renderer, tmp_path):
    objs = manifests(render(renderer, tmp_path=tmp_path))
    (np,) = [d for (k, _), d in objs.items() if k == "NetworkPolicy"]
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    assert np["spec"]["podSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = np["spec"]["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {}}]
    container_ports = {p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert container_ports == {8080}
    egress_ports = sorted((p["port"], p["protocol"]) for rule in np["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP"), (5671, "TCP")]
    assert all(rule.get("to") for rule in np["spec"]["egress"]), "an egress rule without 'to' allows every destination"
    storage = next(r for r in np["spec"]["egress"] if r["ports"] == [{"port": 443, "protocol": "TCP"}])
    assert "169.254.0.0/16" in storage["to"][0]["ipBlock"]["except"]  # no instance metadata
    assert "10.0.0.0/8" in storage["to"][0]["ipBlock"]["except"]

    objs = manifests(render(renderer, {"telemetry": {"otlpEndpoint": "http://otel.observability:4317"}}, tmp_path=tmp_path))
    (np,) = [d for (k, _), d in objs.items() if k == "NetworkPolicy"]
    ports = {p["port"] for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert {4317, 4318} <= ports


def test_worker_has_cpu_and_ephemeral_storage_limits(renderer, tmp_path):
    for example in [None, *EXAMPLES]:
        objs = manifests(render(renderer, *([example] if example else []), tmp_path=tmp_path))
        deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
        limits = deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert "cpu" in limits and "ephemeral-storage" in limits, example
    result = render(renderer, {"resources": {"limits": {"cpu": None}}}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "resources.limits.cpu and resources.limits.ephemeral-storage are required" in result.stderr
    result = render(renderer, {"resources": {"limits": {"ephemeral-storage": None}}}, tmp_path=tmp_path)
    assert result.returncode != 0


def test_image_by_digest_wins_over_the_tag(renderer, tmp_path):
    digest = "sha256:" + "ab" * 32
    objs = manifests(render(renderer, {"image": {"digest": digest, "tag": "1.2.3"}}, tmp_path=tmp_path))
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/example/mambast-batch-worker@{digest}"
    assert schema_errors(with_override({"image": {"digest": "sha256:short"}}))
    assert "digest" in (CHART / "values.yaml").read_text(encoding="utf-8")
    assert "repository@digest" in (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def test_broker_defaults_to_amqps_with_a_ca_secret(renderer, tmp_path):
    assert defaults()["broker"]["url"].startswith("amqps://")
    objs = manifests(render(renderer, tmp_path=tmp_path))
    deploy = next(d for (k, _), d in objs.items() if k == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (ca,) = [v for v in pod["volumes"] if v["name"] == "broker-ca"]
    assert ca["secret"]["secretName"] == defaults()["broker"]["tls"]["caSecret"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["broker-ca"]["readOnly"] is True
    cm = next(d for (k, _), d in objs.items() if k == "ConfigMap")
    assert mounts["broker-ca"]["mountPath"] in cm["data"]["SSL_CERT_DIR"].split(":")
    assert cm["data"]["Broker__Url"].startswith("amqps://")

    refused = render(renderer, {"broker": {"url": "amqp://rabbitmq:5672/"}}, tmp_path=tmp_path)
    assert refused.returncode != 0 and "broker.tls.enabled=true: use amqps://" in refused.stderr
    plain = manifests(render(renderer, {"broker": {"url": "amqp://rabbitmq:5672/", "tls": {"enabled": False}}}, tmp_path=tmp_path))
    deploy = next(d for (k, _), d in plain.items() if k == "Deployment")
    assert all(v["name"] != "broker-ca" for v in deploy["spec"]["template"]["spec"]["volumes"])
    assert schema_errors(with_override({"storage": {"mode": "workloadIdentity", "accountUrl": "http://acct.blob.core.windows.net/"}}))


def test_chart_renders_the_storage_allow_list(renderer, tmp_path):
    objs = manifests(render(renderer, {"storage": {"allowedAccounts": ["prod/inputs", "prod/out-*"],
                                                   "allowedHosts": ["prod.blob.core.windows.net"]}}, tmp_path=tmp_path))
    cm = next(d for (k, _), d in objs.items() if k == "ConfigMap")
    assert cm["data"]["Storage__AllowedAccounts__0"] == "prod/inputs"
    assert cm["data"]["Storage__AllowedAccounts__1"] == "prod/out-*"
    assert cm["data"]["Storage__AllowedHosts__0"] == "prod.blob.core.windows.net"


def test_compose_services_use_one_broker_user_per_role_never_the_admin():
    services = compose()["services"]
    admin = re.search(r"^RABBITMQ_DEFAULT_USER=(\S+)", (DEPLOY / ".env.example").read_text(encoding="utf-8"), re.M).group(1)
    env_example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    assert not re.search(r"^Broker__(Username|Password)=", env_example, re.M), "a broker credential shared by every service"
    users = {}
    for name in ("worker", "worker-gpu", "submitter"):
        env = services[name]["environment"]
        assert env["Broker__Username"] != admin, name
        assert env["Broker__Password"].startswith("${"), name
        users[name] = env["Broker__Username"]
    assert users == {"worker": "mambast-worker", "worker-gpu": "mambast-worker", "submitter": "mambast-submitter"}
    rabbit = services["rabbitmq"]
    assert "/opt/mambast/broker-roles.sh" in " ".join(rabbit["command"])
    assert any(v.startswith("./scripts/broker-roles.sh:") for v in rabbit["volumes"])
    assert "mambast-worker" in " ".join(rabbit["healthcheck"]["test"])

def test_images_and_chart_switch_usage_telemetry_off():
    """ONNX Runtime 1.32 queues usage events under ~/.cache unless ORT_DISABLE_TELEMETRY=1; MassTransit reports
    usage unless MASSTRANSIT_USAGE_TELEMETRY=false."""
    for target in ("cpu", "gpu"):
        stages = {s: ins for s, _, ins in dockerfile_stages(DOCKERFILES["worker"])}
        env = " ".join(r for op, r in stages[target] if op == "ENV")
        assert "ORT_DISABLE_TELEMETRY=1" in env and "MASSTRANSIT_USAGE_TELEMETRY=false" in env, target
    configmap = (ROOT / "charts" / "mambast-batch" / "templates" / "configmap.yaml").read_text(encoding="utf-8")
    assert 'ORT_DISABLE_TELEMETRY: "1"' in configmap and 'MASSTRANSIT_USAGE_TELEMETRY: "false"' in configmap
