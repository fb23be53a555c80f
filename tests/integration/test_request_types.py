"""Every field of a chat (and embeddings) request, sent with every JSON type OpenAI's OpenAPI
description does not allow there, is a 400 naming the field: never a 500 from a translation.
JSON nested too deep is a 400 too."""

from __future__ import annotations

import re

import aiohttp
import orjson
import pytest

from ..openai_spec import AVAILABLE, FIELDS_MODULE, JSON_TYPES, field_types, fields_module
from .conftest import table_for

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="OpenAI's OpenAPI description is not available")

SAMPLES = {"null": None, "boolean": True, "integer": 7, "number": 1.5, "string": "x", "array": [], "object": {}}
FAMILIES = ["primary/gpt-sim", "claude/claude-sim", "gem/gemini-sim"]
CHAT_FIELDS = field_types("CreateChatCompletionRequest") if AVAILABLE else {}
EMBEDDING_FIELDS = field_types("CreateEmbeddingRequest") if AVAILABLE else {}


def test_the_routers_field_types_are_the_specs():
    assert FIELDS_MODULE.read_text() == fields_module(), "run `python -m tests.openai_spec`"


def wrong_types(allowed: str) -> list[str]:
    allowed_types = set(allowed.split())
    return [t for t in JSON_TYPES if t not in allowed_types]


def placed(path: str, value: object, base: dict) -> tuple[dict, str]:
    """`base` with `value` at `path` (containers made on the way), and that place's name as the
    router reports it (`messages[0].content`)."""
    steps = re.findall(r"\[\]|\{\}|[^.\[\]{}]+", path)
    node = value
    for step in reversed(steps[1:]):
        node = [node] if step == "[]" else {"k": node} if step == "{}" else {step: node}
    concrete = path.replace("[]", "[0]").replace("{}", ".k")
    return {**base, steps[0]: node}, concrete


@pytest.fixture
async def post(sim, start_router):
    _, url = await start_router(table_for(sim.url))
    async with aiohttp.ClientSession() as http:

        async def send(path: str, body: dict | bytes) -> tuple[int, dict]:
            raw = body if isinstance(body, bytes) else orjson.dumps(body)
            async with http.post(f"{url}{path}", data=raw) as resp:
                return resp.status, orjson.loads(await resp.read())

        yield send


@pytest.mark.parametrize("field", list(CHAT_FIELDS))
async def test_a_chat_field_of_the_wrong_type_is_a_400_naming_it(post, field):
    top_level = "." not in field and "[" not in field and "{" not in field
    for model in FAMILIES if top_level else ["chat"]:
        base = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        for kind in wrong_types(CHAT_FIELDS[field]):
            body, where = placed(field, SAMPLES[kind], base)
            status, answer = await post("/v1/chat/completions", body)
            assert status == 400, (model, where, kind, answer)
            error = answer["error"]
            assert error["param"] == where, (model, where, kind, error)
            assert error["message"].startswith(f"{where}: expected ") and error["message"].endswith(f", got {kind}")


@pytest.mark.parametrize("field", list(EMBEDDING_FIELDS))
async def test_an_embeddings_field_of_the_wrong_type_is_a_400_naming_it(post, field):
    for model in ("primary/embed-sim", "gem/embed-sim"):
        for kind in wrong_types(EMBEDDING_FIELDS[field]):
            body, where = placed(field, SAMPLES[kind], {"model": model, "input": "hi"})
            status, answer = await post("/v1/embeddings", body)
            assert (status, answer["error"]["param"]) == (400, where), (model, where, kind, answer)


def nested(depth: int) -> bytes:
    """JSON `depth` levels deep, written out (encoders refuse such depths themselves)."""
    opens = [b"[" if i % 2 else b'{"a":' for i in range(depth)]
    closes = [b"]" if i % 2 else b"}" for i in reversed(range(depth))]
    return b"".join(opens) + b"1" + b"".join(closes)


# Where deep JSON goes, and how many levels deep that place already is (the body is one).
PLACES = [
    (1, lambda v: {"extra_field": v}),
    (4, lambda v: {"tools": [{"type": "function", "function": {"name": "f", "parameters": v}}]}),
    (2, lambda v: {"metadata": {"k": v}}),
    (3, lambda v: {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": v}}}),
]


@pytest.mark.parametrize("depth", [254, 255, 600, 1000])
@pytest.mark.parametrize("place", range(len(PLACES)))
@pytest.mark.parametrize("model", FAMILIES)
async def test_deep_nesting_is_a_400_never_a_500(post, place, depth, model):
    levels, where = PLACES[place]
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **where("DEEP")}
    raw = orjson.dumps(body).replace(b'"DEEP"', nested(depth - levels))
    status, answer = await post("/v1/chat/completions", raw)
    if depth <= 254:
        assert status != 500 and "nests JSON" not in str(answer)
    else:
        assert status == 400
        assert answer["error"]["message"] == "request body nests JSON deeper than 254 levels"


async def test_the_types_the_review_found_are_400s(post):
    base = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    for field, value in (("stream_options", "yes"), ("stop", 5), ("tools", "x"), ("stop", [1])):
        status, answer = await post("/v1/chat/completions", {**base, field: value})
        assert status == 400 and answer["error"]["param"].startswith(field)
