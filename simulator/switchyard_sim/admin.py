"""The admin API under /_sim: faults and counters, changed at run time over HTTP.

    GET    /_sim/health               {"status": "ok"}
    GET    /_sim/faults               {name: faults, ...}
    DELETE /_sim/faults               clear all faults
    GET    /_sim/faults/{name}        faults (404 when none are set)
    PUT    /_sim/faults/{name}        replace: fields left out take their defaults
    PATCH  /_sim/faults/{name}        update: fields left out keep their value
    DELETE /_sim/faults/{name}        clear one provider's faults
    GET    /_sim/stats                {name: counters, ...}
    GET    /_sim/stats/{name}         one provider's counters
    POST   /_sim/reset                clear faults, counters and recorded requests

Errors are {"error": "..."} with 400 (bad faults), 404 (unknown path) or 405 (wrong method).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .faults import Faults

if TYPE_CHECKING:
    from .server import Simulator


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), headers={"Content-Type": "application/json"})


class AdminApi:
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    async def handle(self, request: web.BaseRequest) -> web.Response:
        parts = request.path.split("/")[2:]  # "", "_sim", ...
        method = request.method
        sim = self._sim
        if len(parts) == 1 and parts[0] in _ALLOWED:
            if method not in _ALLOWED[parts[0]]:
                return _json({"error": f"{method} not allowed here"}, 405)
            if parts[0] == "health":
                return _json({"status": "ok"})
            if parts[0] == "stats":
                return _json(sim.stats())
            if parts[0] == "reset":
                sim.reset()
                return _json({"ok": True})
            if method == "DELETE":
                sim.clear_faults()
                return _json({"ok": True})
            return _json({name: faults.to_json() for name, faults in sim.all_faults().items()})
        if len(parts) == 2 and parts[1] and parts[0] in ("faults", "stats"):
            name = parts[1]
            if parts[0] == "stats":
                return _json(sim.stats(name)) if method == "GET" else _json({"error": "GET only"}, 405)
            return await self._faults(request, name)
        return _json({"error": f"no admin endpoint {request.path}"}, 404)

    async def _faults(self, request: web.BaseRequest, name: str) -> web.Response:
        sim = self._sim
        if request.method == "GET":
            faults = sim.get_faults(name)
            return _json(faults.to_json()) if faults else _json({"error": "no faults set"}, 404)
        if request.method == "DELETE":
            sim.clear_faults(name)
            return _json({"ok": True})
        if request.method not in ("PUT", "PATCH"):
            return _json({"error": f"{request.method} not allowed here"}, 405)
        try:
            data = orjson.loads(await request.read() or b"{}")
            base = sim.get_faults(name) if request.method == "PATCH" else None
            faults = sim.set_faults(name, Faults.from_mapping(data, base=base))
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(faults.to_json())


_ALLOWED = {
    "health": ("GET",),
    "faults": ("GET", "DELETE"),
    "stats": ("GET",),
    "reset": ("POST",),
}
