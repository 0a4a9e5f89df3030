"""The text files of a bundle: the Dockerfile, the Kubernetes manifests, and the YAML they are written in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shipyard.store.entities import ModelVersion

USER_ID = 10001  # a high, fixed uid: runAsNonRoot can check it without reading /etc/passwd
LIVE, READY = "/v2/health/live", "/v2/health/ready"  # the Open Inference Protocol's health routes
RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}}


def dockerfile(ref: str, *, python: str, port: int) -> str:
    """A Dockerfile serving ``ref`` from the bundled store: slim Python, non-root, HEALTHCHECK on readiness."""
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}{READY}', timeout=2).status != 200)"
    )
    return f"""# Built by `shipyard build`: serves {ref} from the model store bundled in model/.
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN groupadd --system --gid {USER_ID} shipyard \\
    && useradd --system --no-log-init --uid {USER_ID} --gid shipyard --home-dir /app shipyard

COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt

# shipyard.toml points shipyard at model/ (a SQLite store and its artifacts); prediction
# logs are written there too, so the service user owns it.
COPY --chown=shipyard:shipyard shipyard.toml ./
COPY --chown=shipyard:shipyard model/ ./model/

USER {USER_ID}
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
    CMD ["python", "-c", {json.dumps(probe)}]
ENTRYPOINT ["shipyard", "serve"]
CMD [{json.dumps(ref)}, "--host", "0.0.0.0", "--port", "{port}", "--poll-interval", "0"]
"""


def dns_name(name: str) -> str:
    """A model name as a Kubernetes object name (RFC 1123 label: lowercase, digits, '-', at most 63)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return cleaned or "model"


def k8s_manifests(version: ModelVersion, *, image: str, port: int, replicas: int) -> dict[str, dict[str, Any]]:
    """``deployment.yaml``, ``service.yaml`` and ``hpa.yaml`` for one served version, as data."""
    name = dns_name(version.name)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shipyard"}
    meta = {"name": name, "labels": {**labels, "shipyard.dev/model-version": str(version.version)}}

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        get = {"path": path, "port": "http"}
        return {"httpGet": get, "initialDelaySeconds": 5, "periodSeconds": period, "failureThreshold": failures}

    container = {
        "name": "model",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "livenessProbe": probe(LIVE, 10, 3),
        "readinessProbe": probe(READY, 5, 2),
        "startupProbe": probe(LIVE, 2, 30),
        "resources": RESOURCES,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID},
            "terminationGracePeriodSeconds": 30,
            "containers": [container],
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": pod},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max(replicas, 10),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    return {"deployment.yaml": deployment, "service.yaml": service, "hpa.yaml": hpa}


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for mappings, lists and scalars (strings written as JSON strings, which YAML reads)."""
    return "\n".join(_lines(data, indent)) + "\n"


def _lines(data: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(data, Mapping):
        out = []
        for key, value in data.items():
            if _scalar(value):
                out.append(f"{pad}{key}: {_plain(value)}")
            else:
                out.append(f"{pad}{key}:")
                out.extend(_lines(value, indent + 2))
        return out
    if isinstance(data, list | tuple):
        out = []
        for item in data:
            if _scalar(item):
                out.append(f"{pad}- {_plain(item)}")
                continue
            nested = _lines(item, indent + 2)
            out.append(f"{pad}- {nested[0].lstrip()}")
            out.extend(nested[1:])
        return out
    return [f"{pad}{_plain(data)}"]


def _scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple) or not value


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(str(value))
