"""`switchyard compile -f DIR`: compile LLMProvider/RoutingPolicy manifests without a cluster."""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from .compile import (
    CompileResult,
    Problem,
    Reason,
    compile_policy,
    describe_chains,
    parse_spec,
)
from .endpoints import EndpointError, EndpointPolicy
from .grants import GrantedSecret, granted_secret, opt_in_fix
from .models import API_VERSION, LLMProviderSpec
from .outputs import TABLE_KEY, config_map, dump_yaml

JSON = dict[str, Any]

DESCRIPTION = """\
Compile LLMProvider and RoutingPolicy manifests the way the operator does, without a cluster.

Reads every *.yaml, *.yml and *.json file in each -f DIR (or the file itself), with their
LLMProvider, RoutingPolicy and Secret objects (other kinds are skipped). Prints, for each
RoutingPolicy, the ConfigMap the operator would write and each route's resolved fallback chain.
Exits 1 with one line per problem (resource, field, fix) when anything is invalid.

API keys: a Secret is used only when it opts in, as in a cluster: the label
switchyard.dev/credentials: "true" and the annotation switchyard.dev/allowed-providers naming
the LLMProviders that may use it; a missing grant is an error with the fix. A Secret referenced
by a provider but missing from DIR is satisfied from environment variables named like its keys
(secretKeyRef.key, e.g. OPENAI_API_KEY), so a demo can use .env keys (with a warning that the
cluster's Secret must opt in); --env-file loads such KEY=VALUE lines first. Key values are
never printed.

Endpoints: a provider's baseURL must be its type's official https host or match an allow-list
entry given with --allow-endpoint (the chart's endpoints.allowed), as in a cluster.
"""


class InputError(Exception):
    """A manifest that cannot be read at all."""


def manifest_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix in (".yaml", ".yml", ".json") and child.is_file():
                    yield child
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def load_manifests(paths: list[Path]) -> list[JSON]:
    objects: list[JSON] = []
    for path in manifest_files(paths):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from None
        for i, doc in enumerate(documents):
            if doc is None:
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
                raise InputError(f"{path}: document {i + 1} is not a Kubernetes object")
            doc.setdefault("metadata", {}).setdefault("namespace", "default")
            doc["_source"] = str(path)
            objects.append(doc)
    return objects


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


class Workspace:
    """The objects of the manifests, by namespace and kind."""

    def __init__(self, objects: list[JSON], env: Mapping[str, str]) -> None:
        self.env = env
        # (namespace, Secret, providers) taken from the environment: a cluster needs their grant
        self.env_secrets: set[tuple[str, str, frozenset[str]]] = set()
        self.kinds: dict[tuple[str, str], dict[str, JSON]] = defaultdict(dict)
        for obj in objects:
            kind = str(obj.get("kind"))
            if kind in ("LLMProvider", "RoutingPolicy") and obj.get("apiVersion") != API_VERSION:
                raise InputError(
                    f"{obj['_source']}: {kind} {obj['metadata'].get('name')}: apiVersion must be "
                    f"{API_VERSION}"
                )
            self.kinds[(obj["metadata"]["namespace"], kind)][obj["metadata"].get("name", "")] = obj

    def of(self, namespace: str, kind: str) -> dict[str, JSON]:
        return self.kinds.get((namespace, kind), {})

    def policies(self) -> list[JSON]:
        return [
            policy
            for (_, kind), objs in sorted(self.kinds.items())
            if kind == "RoutingPolicy"
            for policy in objs.values()
        ]

    def secrets(self, namespace: str) -> dict[str, GrantedSecret]:
        """The Secrets in DIR that opted in (as the operator sees them), and for a Secret missing
        from DIR, its keys from the environment, granted to the providers naming it."""
        found: dict[str, GrantedSecret] = {}
        for secret_name, body in self.of(namespace, "Secret").items():
            grant = granted_secret(body)
            if grant is not None:
                found[secret_name] = grant
        from_env: dict[str, dict[str, str]] = defaultdict(dict)
        users: dict[str, set[str]] = defaultdict(set)
        for provider_name, provider in self.of(namespace, "LLMProvider").items():
            for cred in (provider.get("spec") or {}).get("credentials") or []:
                ref = cred.get("secretKeyRef") or {} if isinstance(cred, dict) else {}
                name, key = ref.get("name"), ref.get("key")
                if name and key and name not in self.of(namespace, "Secret") and key in self.env:
                    from_env[name][key] = self.env[key]
                    users[name].add(provider_name)
        for secret_name, values in from_env.items():
            found[secret_name] = GrantedSecret(values, frozenset(users[secret_name]))
            self.env_secrets.add((namespace, secret_name, frozenset(users[secret_name])))
        return found


def check_providers(ws: Workspace, endpoints: EndpointPolicy) -> list[Problem]:
    """Providers no policy references are still checked: a GitOps pipeline wants every error."""
    problems = []
    for (_, kind), objs in sorted(ws.kinds.items()):
        if kind == "LLMProvider":
            for body in objs.values():
                spec, found = parse_spec(LLMProviderSpec, body, "LLMProvider")
                problems.extend(found)
                refused = spec and spec.base_url and endpoints.problem(spec.type, spec.base_url)
                if refused:
                    resource = f"LLMProvider {body['metadata']['namespace']}/{body['metadata'].get('name')}"
                    problems.append(Problem(Reason.ENDPOINT_NOT_ALLOWED, resource, "spec.baseURL", refused))
    return problems


def render(policy: JSON, result: CompileResult) -> str:
    lines = [f"# {result.policy}: routes (fallback chains)"]
    assert result.table is not None
    lines += [f"#   {line}" for line in describe_chains(result.table)]
    body = dump_yaml(config_map(policy, result))
    return "\n".join(lines) + "\n---\n" + body


def write_output(out: Path, result: CompileResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE_KEY).write_text(result.table_yaml(), encoding="utf-8")
    creds = out / "credentials"
    creds.mkdir(exist_ok=True)
    for key, value in sorted(result.credentials.items()):
        path = creds / key
        path.write_text(value, encoding="utf-8")
        path.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchyard compile",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--filename", action="append", required=True, type=Path, metavar="DIR",
        help="directory (or file) of manifests; repeatable",
    )
    parser.add_argument(
        "--output-dir", type=Path, metavar="OUT",
        help=f"write OUT/{TABLE_KEY} and OUT/credentials/<provider>.<credential> (one file per "
        "key, for the router's --credentials-dir)",
    )
    parser.add_argument("--policy", metavar="NAME", help="compile only this RoutingPolicy")
    parser.add_argument(
        "--env-file", type=Path, metavar="FILE",
        help="KEY=VALUE lines (e.g. .env) consulted for keys of Secrets missing from DIR",
    )
    parser.add_argument(
        "--allow-endpoint", action="append", default=[], metavar="URL",
        help="a baseURL prefix the platform allows besides the official hosts (repeatable), as "
        "the chart's endpoints.allowed, e.g. http://127.0.0.1:9100 for the simulator",
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    try:
        endpoints = EndpointPolicy.parse(args.allow_endpoint)
        if args.env_file:
            env = {**read_env_file(args.env_file), **env}
        ws = Workspace(load_manifests(args.filename), env)
    except (InputError, EndpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    policies = [p for p in ws.policies() if args.policy in (None, p["metadata"].get("name"))]
    if not policies:
        wanted = f" named {args.policy!r}" if args.policy else ""
        print(f"error: no RoutingPolicy{wanted} found in {', '.join(map(str, args.filename))}",
              file=sys.stderr)
        return 1
    if args.output_dir and len(policies) > 1:
        names = ", ".join(p["metadata"]["name"] for p in policies)
        print(f"error: --output-dir takes one policy; choose one with --policy ({names})",
              file=sys.stderr)
        return 1

    problems = check_providers(ws, endpoints)
    results: list[tuple[JSON, CompileResult]] = []
    for policy in policies:
        ns = policy["metadata"]["namespace"]
        result = compile_policy(policy, ws.of(ns, "LLMProvider"), ws.secrets(ns), endpoints=endpoints)
        problems.extend(p for p in result.problems if p not in problems)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        results.append((policy, result))

    for namespace, secret, users in sorted(ws.env_secrets, key=lambda t: (t[0], t[1])):
        fix = opt_in_fix(namespace, secret, users, min(users))
        print(f"warning: Secret {namespace}/{secret} is not in {', '.join(map(str, args.filename))}: its "
              f"keys came from the environment. In a cluster it must opt in: {fix}", file=sys.stderr)
    if problems:
        for problem in problems:
            hint = " (or set it as an environment variable)" if problem.reason in (
                Reason.SECRET_NOT_GRANTED, Reason.KEY_MISSING) else ""
            print(f"error: {problem}{hint}", file=sys.stderr)
        print(f"{len(problems)} problem(s); nothing written", file=sys.stderr)
        return 1

    for policy, result in results:
        print(render(policy, result), end="")
        if args.output_dir:
            write_output(args.output_dir, result)
            print(f"# wrote {args.output_dir / TABLE_KEY} and {len(result.credentials)} "
                  f"credential file(s) in {args.output_dir / 'credentials'}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
