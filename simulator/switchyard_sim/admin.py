"""The admin API under /_sim: faults and counters, changed at run time over HTTP.

GET    /_sim/health               {"status": "ok"}
GET    /_sim/faults               {name: faults, ...}
GET    /_sim/faults/{name}        faults (404 when none are set)
PUT    /_sim/faults/{name}        replace: fields left out take their defaults
PATCH  /_sim/faults/{name}        update: fields left out keep their value
DELETE /_sim/faults/{name}        clear one provider's faults
DELETE /_sim/faults               clear all faults
GET    /_sim/stats                {name: counters, ...}
GET    /_sim/stats/{name}         one provider's counters
POST   /_sim/reset                clear faults, counters and recorded requests
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .faults import Faults

if TYPE_CHECKING:
    from .server import Simulator


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def _faults_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValueError("body is not valid JSON") from exc


def admin_routes(sim: Simulator) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def list_faults(request: web.Request) -> web.Response:
        return _json({name: faults.to_json() for name, faults in sim.all_faults().items()})

    async def get_faults(request: web.Request) -> web.Response:
        faults = sim.get_faults(request.match_info["name"])
        if faults is None:
            return _json({"error": "no faults set"}, 404)
        return _json(faults.to_json())

    async def put_faults(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            data = await _faults_body(request)
            if request.method == "PATCH":
                current = sim.get_faults(name)
                faults = sim.set_faults(name, Faults.from_mapping(data, base=current))
            else:
                faults = sim.set_faults(name, Faults.from_mapping(data))
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(faults.to_json())

    async def delete_faults(request: web.Request) -> web.Response:
        sim.clear_faults(request.match_info.get("name"))
        return _json({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        name = request.match_info.get("name")
        return _json(sim.stats(name))

    async def reset(request: web.Request) -> web.Response:
        sim.reset()
        return _json({"ok": True})

    return [
        web.get("/_sim/health", health),
        web.get("/_sim/faults", list_faults),
        web.delete("/_sim/faults", delete_faults),
        web.get("/_sim/faults/{name}", get_faults),
        web.put("/_sim/faults/{name}", put_faults),
        web.patch("/_sim/faults/{name}", put_faults),
        web.delete("/_sim/faults/{name}", delete_faults),
        web.get("/_sim/stats", stats),
        web.get("/_sim/stats/{name}", stats),
        web.post("/_sim/reset", reset),
    ]
