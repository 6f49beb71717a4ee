"""A small ``kustomize build`` for deploy/k8s, since kustomize itself is not installed here.

It supports exactly what deploy/k8s uses, and refuses anything else (so a new feature in a
kustomization fails the tests instead of being silently ignored):

* ``resources``: YAML files, or directories holding a ``kustomization.yaml`` (built first);
* ``namespace``: set on every namespaced object (not on ``Namespace`` itself);
* ``images``: ``name`` → ``newName:newTag`` on every container;
* ``patches`` with a ``path`` only: a strategic-merge patch matched by kind and name, merged
  as kubectl does for what our patches touch: maps merge key by key, lists of maps with a
  ``name`` merge item by item on it, any other value is replaced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
CLUSTER_SCOPED = {"Namespace"}


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge of ``patch`` into ``base`` (pure: returns a new value)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        by_name = {item["name"]: item for item in base}
        merged = [merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in patch]
        patched = {i["name"] for i in patch}
        return [i for i in base if i["name"] not in patched] + merged
    return copy.deepcopy(patch)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def build(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build directory`` would print, in resource order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise ValueError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs += build(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path:` is supported")
        for patch in yaml.safe_load_all((directory / entry["path"]).read_text()):
            key = (patch["kind"], patch["metadata"]["name"])
            targets = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == key]
            if len(targets) != 1:
                raise ValueError(f"{directory}/{entry['path']}: patch target {key} not found")
            docs[targets[0]] = merge(docs[targets[0]], patch)
    namespace = kustomization.get("namespace")
    for doc in docs:
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace
        for image in kustomization.get("images", []):
            for container in _containers(doc):
                if container["image"] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    return docs
