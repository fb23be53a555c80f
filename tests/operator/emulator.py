"""kmock's KubernetesEmulator with the API-server behaviour the operator relies on filled in.

Stock kmock 0.8 stores objects as plain merged dicts. A real API server also: assigns uid,
resourceVersion, generation and creationTimestamp; refuses stale resourceVersions (409) and
failed JSON-patch tests (422); keeps status apart behind the status subresource; bumps generation
on spec changes only; turns stringData into data; honours generateName and PUT; answers 201 on
create; names the kind in lists; garbage-collects owned objects; filters lists and watches by
label and field selectors (an object leaving a watch's selection arrives as DELETED); starts a
watch after its resourceVersion (objects the client listed are not sent again). This subclass
does that, so kopf and the operator behave here as they would on a cluster. kmock also reads
`/api/v1/namespaces[/NAME]` (the Namespace objects themselves, which kopf lists to find the
namespaces it serves) as a namespace prefix with nothing after it, and answers 500; the path
parser is widened below for exactly that shape. Requests made with a ServiceAccount's token are
authorized by RBAC, and SubjectAccessReviews are answered, as a cluster does (authz.py).
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
from kmock import KubernetesEmulator, KubernetesError, Request, action, method, resource
from kmock._internal import parsing

from . import authz

_parse_path = parsing.parse_path


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:  # the Namespaces themselves
        name = parts[3] if len(parts) == 4 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, None)
    return _parse_path(path)


parsing.parse_path = _parse_path_with_namespaces

JSON = dict[str, Any]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=,()]+)\s*"
    r"(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?:\((?P<set>[^)]*)\)|(?P<value>[^\s,()]*)))?\s*$"
)


def _split_requirements(selector: str) -> list[str]:
    """Commas separate requirements, except inside `in (a,b)` sets."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """Kubernetes label selector syntax: k, !k, k=v, k==v, k!=v, k in (a,b), k notin (a,b)."""
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for requirement in _split_requirements(selector):
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise KubernetesError(status=400, reason="BadRequest", message=f"bad label selector {selector!r}")
        key, op = match["key"], (match["op"] or "").strip()
        values = {v.strip() for v in (match["set"] or match["value"] or "").split(",")}
        if match["neg"]:
            tests.append(lambda labels, key=key: key not in labels)
        elif not op:
            tests.append(lambda labels, key=key: key in labels)
        elif op in ("=", "==", "in"):
            tests.append(lambda labels, key=key, values=values: labels.get(key) in values)
        else:  # != and notin also select objects without the label
            tests.append(lambda labels, key=key, values=values: labels.get(key) not in values)
    return lambda labels: all(test(labels) for test in tests)


def selects(params: Mapping[str, str], obj: Mapping[str, Any]) -> bool:
    """Does this list/watch request's labelSelector and fieldSelector select `obj`?"""
    meta = obj.get("metadata") or {}
    if params.get("labelSelector") and not label_matcher(params["labelSelector"])(meta.get("labels") or {}):
        return False
    fields = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
    for requirement in _split_requirements(params.get("fieldSelector") or ""):
        key, op, value = re.split(r"(==|!=|=)", requirement.strip(), maxsplit=1)
        if key not in fields:
            raise KubernetesError(status=400, reason="BadRequest", message=f"field {key!r} is not supported")
        if (fields[key] == value) != (op != "!="):
            return False
    return True


@attrs.define(kw_only=True)
class Emulator(KubernetesEmulator):
    _rv: int = attrs.field(default=100, init=False)
    # Bearer tokens of ServiceAccounts (token -> "system:serviceaccount:NS:NAME"): requests that
    # carry one are authorized by RBAC over the stored Roles and bindings (authz.py). Requests
    # without a known token (the operator, the tests) are the cluster admin.
    tokens: dict[str, str] = attrs.field(factory=dict)

    # ----------------------------------------------------------------- helpers

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _has_status(self, res: resource) -> bool:
        return res in self.resources and "status" in self.resources[res].subresources

    def _live(self, key: tuple[Any, ...]) -> JSON | None:
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    async def _emit(self, res: resource, kind: str, obj: JSON) -> None:
        await self._buses[res].put({"type": kind, "object": copy.deepcopy(obj)})

    async def _store(self, key: tuple[Any, ...], obj: JSON, event: str) -> None:
        res = key[0]
        if key in self.objects:
            self.objects[key].history.append(obj)
        else:
            self.objects[key] = obj
        await self._emit(res, event, obj)

    async def _delete(self, key: tuple[Any, ...]) -> None:
        obj = self._live(key)
        if obj is None:
            return
        self.objects[key].delete()
        await self._emit(key[0], "DELETED", obj)
        await self._collect_garbage(obj["metadata"].get("uid"))

    async def _collect_garbage(self, uid: str | None) -> None:
        """Background cascading deletion of dependents (owner references by uid)."""
        if not uid:
            return
        for key in list(self.objects):
            obj = self._live(key)
            refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
            if obj is not None and any(ref.get("uid") == uid for ref in refs):
                await self._delete(key)

    def _any_uid(self, uids: set[str | None]) -> bool:
        return any(
            (self._live(key) or {}).get("metadata", {}).get("uid") in uids for key in list(self.objects)
        )

    @staticmethod
    def _normalize_secret(res: resource, obj: JSON) -> None:
        if res.plural == "secrets" and obj.get("stringData"):
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()

    # ----------------------------------------------------------------- verbs

    async def _create(self, request: Request) -> tuple[int, JSON]:
        res = request.resource
        assert res is not None
        obj = copy.deepcopy(request.data)
        meta = obj.setdefault("metadata", {})
        namespace = request.namespace or meta.get("namespace")
        if namespace:
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise KubernetesError(status=422, reason="Invalid", message="name or generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = (res, namespace, meta["name"])
        if self._live(key) is not None:
            raise KubernetesError(status=409, reason="AlreadyExists", message=f"{meta['name']} already exists")
        meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), creationTimestamp=_now())
        if res.group:
            meta["generation"] = 1
        if self._has_status(res):
            obj.pop("status", None)
        self._normalize_secret(res, obj)
        await self._store(key, obj, "ADDED")
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
        if owners and not self._any_uid(owners):
            await self._delete(key)  # the garbage collector removes dependents of absent owners
        return 201, obj

    async def _update(self, request: Request, replace: bool) -> tuple[int, JSON]:
        res = request.resource
        assert res is not None
        key = (res, request.namespace, request.name)
        current = self._live(key)
        if current is None:
            raise KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
        data = request.data
        content_type = request.headers.get("Content-Type", "")
        if replace:
            new = copy.deepcopy(data)
        elif "json-patch" in content_type:
            try:
                new = jsonpatch.apply_patch(current, data)
            except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPatchTestFailed) as exc:
                raise KubernetesError(status=422, reason="Invalid", message=str(exc)) from None
        else:  # merge-patch (strategic merge is treated as merge)
            new = merge_patch(current, data)
        wanted_rv = (data.get("metadata") or {}).get("resourceVersion") if isinstance(data, dict) else None
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise KubernetesError(status=409, reason="Conflict", message="the object has been modified")

        if self._has_status(res):
            if request.subresource == "status":
                new = {**current, "status": new.get("status")}
                if new["status"] is None:
                    del new["status"]
            elif "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "name", "namespace", "generation", "deletionTimestamp"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        self._normalize_secret(res, new)
        if new == current:
            return 200, current
        if res.group and request.subresource != "status":
            essence = {k: v for k, v in new.items() if k not in ("metadata", "status")}
            if essence != {k: v for k, v in current.items() if k not in ("metadata", "status")}:
                meta["generation"] = current["metadata"].get("generation", 0) + 1
        meta["resourceVersion"] = self._next_rv()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.objects[key].history.append(new)
            await self._delete(key)
            return 200, new
        await self._store(key, new, "MODIFIED")
        return 200, new

    async def _remove(self, request: Request) -> tuple[int, JSON]:
        res = request.resource
        assert res is not None
        key = (res, request.namespace, request.name)
        current = self._live(key)
        if current is None:
            raise KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
        meta = current["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["resourceVersion"] = self._next_rv()
                await self._store(key, current, "MODIFIED")
            return 200, current
        await self._delete(key)
        return 200, current

    def _rbac_objects(self) -> list[tuple[str, JSON]]:
        return [
            (key[0].plural, obj)
            for key in list(self.objects)
            if key[0].group == "rbac.authorization.k8s.io" and (obj := self._live(key)) is not None
        ]

    def _attributes(self, request: Request, user: str) -> authz.Attributes:
        res = request.resource
        assert res is not None
        verbs = {action.FETCH: "get", action.LIST: "list", action.WATCH: "watch", action.CREATE: "create",
                 action.DELETE: "delete"}
        verb = verbs.get(request.action) or ("update" if request.method == method.PUT else "patch")
        name = request.name
        if name is None and verb in ("list", "watch"):
            match = re.search(r"(?:^|,)metadata\.name==?([^,]+)", request.params.get("fieldSelector") or "")
            name = match[1] if match else None
        resource = res.plural + (f"/{request.subresource}" if request.subresource else "")
        return authz.Attributes(user, verb, res.group, resource, request.namespace, name)

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        if request.resource is None:
            return await super()._handle(request)
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if token in self.tokens:
            attrs = self._attributes(request, self.tokens[token])
            if not authz.allowed(self._rbac_objects(), attrs):
                return await self._render_error(
                    KubernetesError(status=403, reason="Forbidden", message=f"forbidden: {attrs.describe()}")
                )
        if request.resource.plural == "subjectaccessreviews" and request.action == action.CREATE:
            answer = authz.review(self._rbac_objects(), request.data)
            return aiohttp.web.json_response(answer, status=201, dumps=json.dumps)
        verb: Any = None
        if request.action == action.CREATE:
            verb = self._create(request)
        elif request.action == action.UPDATE and request.name:
            verb = self._update(request, replace=False)
        elif request.method == method.PUT and request.name:
            verb = self._update(request, replace=True)
        elif request.action == action.DELETE and request.name:
            verb = self._remove(request)
        if verb is None:
            return await super()._handle(request)
        try:
            async with self._lock:
                status, body = await verb
        except KubernetesError as exc:
            return await self._render_error(exc)
        return aiohttp.web.json_response(body, status=status, dumps=json.dumps)

    async def _serve_list(self, request: Request) -> Any:
        payload = await super()._serve_list(request)
        payload["items"] = [obj for obj in payload["items"] if selects(request.params, obj)]
        assert request.resource is not None
        res = request.resource
        if res in self.resources and self.resources[res].kind:
            payload["kind"] = f"{self.resources[res].kind}List"
        payload["apiVersion"] = f"{res.group}/{res.version}" if res.group else res.version
        payload["metadata"] = {"resourceVersion": str(self._rv)}
        return payload

    async def _serve_watch(self, request: Request) -> AsyncIterator[Any]:
        selected: set[tuple[Any, Any]] = set()  # objects this stream has shown as present
        since = int(request.params.get("resourceVersion") or 0)
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict):
                yield event
                continue
            meta = event["object"].get("metadata") or {}
            key = (meta.get("namespace"), meta.get("name"))
            if event["type"] == "ADDED" and int(meta.get("resourceVersion") or 0) <= since:
                if selects(request.params, event["object"]):  # listed already: resume after `since`
                    selected.add(key)
                continue
            if selects(request.params, event["object"]):
                if event["type"] == "DELETED":
                    selected.discard(key)
                elif key not in selected:  # it entered the selection: new, for this watcher
                    selected.add(key)
                    event = {"type": "ADDED", "object": event["object"]}
                yield event
            elif key in selected:  # it left the selection: gone, for this watcher
                selected.discard(key)
                yield {"type": "DELETED", "object": event["object"]}
