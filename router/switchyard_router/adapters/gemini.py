"""Google's Gemini API (generativelanguage, v1beta): OpenAI chat completions and embeddings.

Requests become `generateContent` / `streamGenerateContent?alt=sse` / `embedContent` /
`batchEmbedContents` bodies; answers become OpenAI shapes. The key travels only in the
`x-goog-api-key` header: a key in the URL would end up in access logs and error messages.

Thought signatures (Gemini 3 rejects a replayed function call without one) ride along in OpenAI
tool calls as `extra_content.google.thought_signature`, the convention of Google's own
OpenAI-compatible endpoint, and come back from there; a history without them (another
provider's, or a client that dropped the field) gets Google's documented placeholder signature.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import orjson

from .. import clock
from ..errors import ErrorKind, UpstreamError, kind_from_status, parse_retry_after
from ..table import Provider
from .base import (
    JSON,
    SSE_DONE,
    ProviderAdapter,
    StreamState,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    error_message,
    sse_frame,
)
from .reasoning import gemini_thinking

_VERSION = "v1beta"

# Documented stand-in for a missing thought signature (ai.google.dev, "Thought signatures").
_PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
# Models from before strict signature validation: no placeholder is sent to them.
_UNSIGNED_MODELS = ("gemini-1", "gemini-2", "gemma")


def _bad(field: str, problem: str) -> UpstreamError:
    """A client error naming the field, so the caller can fix the request."""
    return UpstreamError(ErrorKind.BAD_REQUEST, f"{field}: {problem}", status=400)


_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _model_path(model: str) -> str:
    """`models/x` or `tunedModels/x` as given; a bare name is a base model. The name becomes one
    path segment: letters, digits, '.', '-' and '_' only, so it cannot leave the model's URL."""
    collection, _, name = model.rpartition("/")
    if collection not in ("", "models", "tunedModels") or not _MODEL_ID.fullmatch(name):
        raise _bad("model", f"{model!r} is not a Gemini model name such as gemini-2.5-flash or tunedModels/x")
    return f"{collection or 'models'}/{quote(name, safe='')}"


def _headers(provider: Provider, key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(provider.headers)
    if key:
        headers["x-goog-api-key"] = key
    return headers


def _url(provider: Provider, model: str, method: str) -> str:
    return f"{provider.base_url}/{_VERSION}/{_model_path(model)}:{method}"


# --- request: messages --------------------------------------------------------------------


def _contents(messages: Any, model: str) -> tuple[list[JSON], list[JSON]]:
    """(systemInstruction parts, contents) from OpenAI messages."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty list")
    system: list[JSON] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the tool results after it
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", "must be an object")
        role = message.get("role")
        field = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), f"{field}.content"))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), f"{field}.content"))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, field, names, model))
        elif role == "tool":
            _append(contents, "user", [_function_response(message, field, names)])
        else:
            raise _bad(f"{field}.role", f"unsupported role {role!r}")
    if not contents and system:
        contents, system = [{"role": "user", "parts": system}], []  # Gemini needs one turn
    return system, contents


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    """Gemini wants alternating turns: consecutive same-role messages share one."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_parts(content: Any, field: str) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise _bad(field, "must be a string or a list of content parts")
    parts = []
    for j, part in enumerate(content):
        text = _part_text(part, f"{field}[{j}]")
        if text:
            parts.append({"text": text})
    return parts


def _part_text(part: Any, field: str) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return str(part.get("text") or "")
    if kind == "refusal":  # an assistant's earlier refusal is still what it said
        return str(part.get("refusal") or "")
    raise _bad(field, f"unsupported content part type {kind!r} here")


def _user_parts(content: Any, field: str) -> list[JSON]:
    if not isinstance(content, list):
        return _text_parts(content, field)
    parts = (_user_part(part, f"{field}[{j}]") for j, part in enumerate(content))
    return [part for part in parts if part.get("text") != ""]  # Gemini refuses empty text


def _user_part(part: Any, field: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return _media(url, f"{field}.image_url.url")
    if kind == "input_audio":
        audio = _object(part.get("input_audio"))
        mime = f"audio/{audio.get('format') or 'wav'}"
        return {"inlineData": {"mimeType": mime, "data": audio.get("data") or ""}}
    if kind == "file":
        data = _object(part.get("file")).get("file_data")
        if not isinstance(data, str) or not data.startswith("data:"):
            raise _bad(f"{field}.file", "only inline file_data (a data: URL) can go to Gemini")
        return _inline(data, f"{field}.file.file_data")
    return {"text": _part_text(part, field)}


def _object(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _media(url: Any, field: str) -> JSON:
    if not isinstance(url, str):
        raise _bad(field, "must be a URL")
    if url.startswith("data:"):
        return _inline(url, field)
    if url.startswith(("https://", "http://")):
        return {"fileData": {"fileUri": url, "mimeType": _guess_mime(url)}}
    raise _bad(field, "must be an http(s) or data: URL")


def _inline(url: str, field: str) -> JSON:
    header, comma, data = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise _bad(field, "a data: URL must be base64, e.g. data:image/png;base64,...")
    mime = header[5:].split(";", 1)[0] or "application/octet-stream"
    return {"inlineData": {"mimeType": mime, "data": data}}


# Gemini wants a MIME type with a fileUri; image_url carries none, so guess from the suffix.
_MIME_BY_SUFFIX = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}


def _guess_mime(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _MIME_BY_SUFFIX.get(suffix, "image/jpeg")


def _assistant_parts(message: JSON, field: str, names: dict[str, str], model: str) -> list[JSON]:
    parts = _text_parts(message.get("content"), f"{field}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _bad(f"{field}.tool_calls", "must be a list")
    signed = False
    first_call = len(parts)
    for j, call in enumerate(calls):
        part, name = _function_call(call, f"{field}.tool_calls[{j}]")
        signed = signed or "thoughtSignature" in part
        parts.append(part)
        if isinstance(call.get("id"), str):
            names[call["id"]] = name
    if calls and not signed and _wants_signature(model):
        parts[first_call]["thoughtSignature"] = _PLACEHOLDER_SIGNATURE
    return parts


def _function_call(call: Any, field: str) -> tuple[JSON, str]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise _bad(f"{field}.function.name", "is required")
    name = str(function["name"])
    part: JSON = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), field)}}
    signature = _object(_object(call.get("extra_content")).get("google")).get("thought_signature")
    if signature:
        part["thoughtSignature"] = signature
    return part, name


def _arguments(raw: Any, field: str) -> JSON:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        args = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise _bad(f"{field}.function.arguments", "is not valid JSON") from None
    if not isinstance(args, dict):
        raise _bad(f"{field}.function.arguments", "must be a JSON object")
    return args


def _wants_signature(model: str) -> bool:
    return not model.rsplit("/", 1)[-1].startswith(_UNSIGNED_MODELS)


def _function_response(message: JSON, field: str, names: dict[str, str]) -> JSON:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    name = name or message.get("name")
    if not name:
        raise _bad(f"{field}.tool_call_id", f"{call_id!r} matches no earlier assistant tool call")
    text = "".join(p["text"] for p in _text_parts(message.get("content"), f"{field}.content"))
    return {"functionResponse": {"name": name, "response": _response_object(text)}}


def _response_object(text: str) -> JSON:
    """A JSON object result goes as is (the model reads its fields); anything else as text."""
    if text.lstrip().startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"result": text}


# --- request: tools and JSON schemas ------------------------------------------------------


def _tools(tools: Any) -> list[JSON] | None:
    if not tools:
        return None
    if not isinstance(tools, list):
        raise _bad("tools", "must be a list")
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    return [{"functionDeclarations": declarations}]


def _declaration(tool: Any, field: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise _bad(f"{field}.type", "Gemini takes function tools only")
    function = tool.get("function")
    if not isinstance(function, dict) or not function.get("name"):
        raise _bad(f"{field}.function.name", "is required")
    declaration: JSON = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = _schema(function.get("parameters"))
    # Gemini refuses an OBJECT without properties ("should be non-empty for OBJECT type").
    if parameters.get("properties"):
        declaration["parameters"] = parameters
    return declaration


# Gemini's Schema is a subset of OpenAPI 3.0; unknown keys (additionalProperties, $schema,
# strict, exclusiveMinimum, const, ...) make it answer 400. These pass as they are.
_SCHEMA_COPY = frozenset(
    {
        "title",
        "description",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "example",
        "default",
        "propertyOrdering",
    }
)
# The Gemini API accepts few formats; an unknown one is a 400, a dropped one only a lost hint.
_SCHEMA_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})


def _schema(node: Any, defs: JSON | None = None, seen: frozenset[str] = frozenset()) -> JSON:
    """A JSON Schema as Gemini's Schema: refs inlined, nulls as `nullable`, unknown keys gone."""
    if not isinstance(node, dict):
        return {}
    if defs is None:
        defs = {**(node.get("definitions") or {}), **(node.get("$defs") or {})}
    if isinstance(node.get("allOf"), list):
        return _schema(_merge_all_of(node), defs, seen)
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _resolve(node, ref, defs, seen)
    out: JSON = {k: v for k, v in node.items() if k in _SCHEMA_COPY}
    nullable = _schema_type(node, out) | _schema_enum(node, out)
    if node.get("format") in _SCHEMA_FORMATS:
        out["format"] = node["format"]
    _schema_children(node, out, defs, seen)
    nullable |= _schema_any_of(node, out, defs, seen)
    if nullable or node.get("nullable") is True:
        out["nullable"] = True
    return out


def _merge_all_of(node: JSON) -> JSON:
    """A shallow merge: enough for the single-entry allOf that schema generators emit."""
    merged: JSON = {}
    for part in node["allOf"]:
        if isinstance(part, dict):
            merged.update(part)
    merged.update((k, v) for k, v in node.items() if k != "allOf")
    return merged


def _resolve(node: JSON, ref: str, defs: JSON, seen: frozenset[str]) -> JSON:
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name)
    if not isinstance(target, dict) or name in seen:
        return {"type": "OBJECT"}  # unknown or recursive: Gemini has no references
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return _schema(merged, defs, seen | {name})


def _schema_type(node: JSON, out: JSON) -> bool:
    """Set out["type"] (upper case); True when null is one of the types."""
    kind = node.get("type")
    nullable = False
    if isinstance(kind, list):
        nullable = "null" in kind
        rest = [t for t in kind if t != "null" and isinstance(t, str)]
        kind = rest[0] if len(rest) == 1 else None
        if len(rest) > 1:
            out["anyOf"] = [{"type": t.upper()} for t in rest]
    elif kind == "null":
        return True
    if isinstance(kind, str):
        out["type"] = kind.upper()
    elif "properties" in node:
        out["type"] = "OBJECT"
    elif "items" in node:
        out["type"] = "ARRAY"
    return nullable


def _schema_enum(node: JSON, out: JSON) -> bool:
    """Gemini's enum holds strings only; a `const` is a one-value enum. True when null is in it."""
    values = node.get("enum")
    if values is None and "const" in node:
        values = [node["const"]]
    if not isinstance(values, list):
        return False
    kept = [v for v in values if v is not None]
    if kept and all(isinstance(v, str) for v in kept):
        out["enum"] = kept
    return len(kept) < len(values)


def _schema_children(node: JSON, out: JSON, defs: JSON, seen: frozenset[str]) -> None:
    properties = node.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _schema(sub, defs, seen) for name, sub in properties.items()}
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = [name for name in required if name in properties]
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _schema(items, defs, seen)


def _schema_any_of(node: JSON, out: JSON, defs: JSON, seen: frozenset[str]) -> bool:
    """anyOf (and oneOf, its nearest Gemini form); a null branch becomes `nullable`."""
    branches = node.get("anyOf", node.get("oneOf"))
    if not isinstance(branches, list):
        return False
    kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
    if len(kept) == 1:
        single = _schema(kept[0], defs, seen)
        single.update(out)  # the node's own description and limits win over the branch's
        out.clear()
        out.update(single)
    elif kept:
        out["anyOf"] = [_schema(b, defs, seen) for b in kept]
    return len(kept) < len(branches)


def _tool_config(choice: Any) -> JSON | None:
    if choice is None:
        return None
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and function.get("name"):
        config = {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
        return {"functionCallingConfig": config}
    raise _bad("tool_choice", "must be auto, none, required or a named function")


# --- request: generation config -----------------------------------------------------------

_GENERATION_FIELDS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def _generation_config(body: JSON) -> JSON:
    config = {gemini: body[name] for name, gemini in _GENERATION_FIELDS if body.get(name) is not None}
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = list(stop)
    _response_format(body.get("response_format"), config)
    return config


def _response_format(fmt: Any, config: JSON) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        return  # "text", or nothing asked
    config["responseMimeType"] = "application/json"
    spec = fmt.get("json_schema")
    schema = _schema(spec.get("schema")) if isinstance(spec, dict) else {}
    if schema:
        config["responseSchema"] = schema


def _generate_request(body: JSON, model: str) -> JSON:
    system, contents = _contents(body.get("messages"), model)
    payload: JSON = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": system}
    tools = _tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"))
    if tools and tool_config:  # a toolConfig without tools means nothing to Gemini
        payload["toolConfig"] = tool_config
    config = _generation_config(body)
    if config:
        payload["generationConfig"] = config
    return payload


# --- responses ----------------------------------------------------------------------------

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)


def _finish_reason(reason: str, has_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    # STOP, and reasons OpenAI has no word for (OTHER, MALFORMED_FUNCTION_CALL, ...).
    return "tool_calls" if has_calls else "stop"


def _usage(meta: Any) -> Usage:
    if not isinstance(meta, dict):
        return Usage()
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,  # billed as output, so counted in completion tokens too
        reported=True,
    )


def _tool_call(part: JSON) -> JSON:
    call = part["functionCall"]
    out: JSON = {
        "id": f"call_{uuid4().hex[:24]}",
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if part.get("thoughtSignature"):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def _read_parts(candidate: JSON) -> tuple[list[str], list[JSON]]:
    """(answer texts, tool calls); thought summaries are not part of the answer."""
    texts: list[str] = []
    calls: list[JSON] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part))
        elif part.get("text") and not part.get("thought"):
            texts.append(part["text"])
    return texts, calls


def _choice(candidate: JSON, position: int) -> JSON:
    texts, calls = _read_parts(candidate)
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "index": candidate.get("index", position),
        "message": message,
        "logprobs": None,
        "finish_reason": _finish_reason(str(candidate.get("finishReason") or "STOP"), bool(calls)),
    }


def _no_candidates(data: JSON) -> UpstreamError:
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    if reason:
        return UpstreamError(ErrorKind.CONTENT_FILTERED, f"Gemini blocked the prompt (blockReason {reason})")
    return UpstreamError(ErrorKind.SERVER_ERROR, "Gemini answered without candidates")


# --- errors -------------------------------------------------------------------------------

_STATUS_KINDS = {
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "INTERNAL": ErrorKind.SERVER_ERROR,
    "UNKNOWN": ErrorKind.SERVER_ERROR,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "UNAUTHENTICATED": ErrorKind.UNAUTHORIZED,
    "PERMISSION_DENIED": ErrorKind.UNAUTHORIZED,
    # Documented as "free tier not available in your country / enable billing": the account
    # cannot serve this request, but another provider can, so it is not the client's error.
    "FAILED_PRECONDITION": ErrorKind.UNAUTHORIZED,
    "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST,
}
_BAD_KEY = re.compile(r"api key (not valid|not found|expired)", re.IGNORECASE)
_TOO_LONG = re.compile(r"input token count.*exceeds the maximum", re.IGNORECASE | re.DOTALL)


def _error_object(body: bytes) -> JSON:
    """The `error` object of a Gemini error body, bare or wrapped in a list."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def _details(err: JSON, suffix: str) -> list[JSON]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(suffix)]


def _retry_delay(err: JSON) -> float | None:
    """google.rpc.RetryInfo's retryDelay, a protobuf Duration such as "2s" or "1.5s"."""
    for info in _details(err, "google.rpc.RetryInfo"):
        try:
            return max(float(str(info.get("retryDelay", "")).removesuffix("s")), 0.0)
        except ValueError:
            continue
    return None


def _refine(kind: ErrorKind, err: JSON, message: str) -> ErrorKind:
    if kind is not ErrorKind.BAD_REQUEST:
        return kind
    reasons = {str(d.get("reason", "")) for d in _details(err, "google.rpc.ErrorInfo")}
    if any(r.startswith("API_KEY_") for r in reasons) or _BAD_KEY.search(message):
        return ErrorKind.UNAUTHORIZED
    if _TOO_LONG.search(message):
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    return kind


def _classify(status: int, headers: Mapping[str, str], err: JSON, raw: bytes) -> UpstreamError:
    message = str(err.get("message") or "") or error_message(raw) or f"upstream answered HTTP {status}"
    kind = _STATUS_KINDS.get(str(err.get("status") or "")) or kind_from_status(status)
    retry_after = _retry_delay(err)
    if retry_after is None:
        retry_after = parse_retry_after(headers.get("retry-after"))
    return UpstreamError(_refine(kind, err, message), message, status=status, retry_after=retry_after)


# --- stream -------------------------------------------------------------------------------


class GeminiStream(StreamTranslator):
    """Each SSE event is a whole GenerateContentResponse; there is no terminator event."""

    def __init__(self, state: StreamState) -> None:
        super().__init__(state)
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent so far

    def feed(self, event: str | None, data: bytes) -> bytes:
        chunk = self._parse(data)
        if "usageMetadata" in chunk:
            self.usage = _usage(chunk["usageMetadata"])
        candidates = chunk.get("candidates")
        if not candidates:  # a usage-only event, or the prompt was blocked
            if (chunk.get("promptFeedback") or {}).get("blockReason"):
                raise _no_candidates(chunk)
            return b""
        return b"".join(self._candidate(c, i) for i, c in enumerate(candidates))

    def _parse(self, data: bytes) -> JSON:
        try:
            chunk = self.load(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                ErrorKind.SERVER_ERROR, "Gemini sent a stream event that is not JSON"
            ) from None
        if not isinstance(chunk, dict):
            raise UpstreamError(ErrorKind.SERVER_ERROR, "Gemini sent a stream event that is not an object")
        err = chunk.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            raise _classify(code if isinstance(code, int) else 500, {}, err, data)
        return chunk

    def _candidate(self, candidate: JSON, position: int) -> bytes:
        index = int(candidate.get("index", position))
        frames = []
        if index not in self._started:
            self._started.add(index)
            frames.append(self._frame(index, {"role": "assistant", "content": ""}))
        texts, calls = _read_parts(candidate)
        if texts:
            frames.append(self._frame(index, {"content": "".join(texts)}))
        if calls:
            frames.append(self._frame(index, {"tool_calls": self._indexed(index, calls)}))
        reason = candidate.get("finishReason")
        if reason:
            self._finished.add(index)
            has_calls = self._calls.get(index, 0) > 0
            frames.append(self._frame(index, {}, _finish_reason(str(reason), has_calls)))
        return b"".join(frames)

    def _indexed(self, index: int, calls: list[JSON]) -> list[JSON]:
        """Gemini sends each call whole: one delta carries its id, name and all arguments."""
        first = self._calls.get(index, 0)
        self._calls[index] = first + len(calls)
        return [{"index": first + n, **call} for n, call in enumerate(calls)]

    def _frame(self, index: int, delta: JSON, finish_reason: str | None = None) -> bytes:
        chunk = self.chunk(delta, finish_reason)
        chunk["choices"][0]["index"] = index
        return sse_frame(chunk)

    def finish(self) -> bytes:
        if not self._finished or self._started - self._finished:
            raise UpstreamError(
                ErrorKind.CONNECTION_ERROR, "Gemini stream ended before a finishReason (cut stream)"
            )
        return self.usage_chunk() + SSE_DONE


# --- the adapter --------------------------------------------------------------------------


class GeminiAdapter(ProviderAdapter):
    def chat_request(
        self, provider: Provider, key: str | None, model: str, body: JSON, stream: bool
    ) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        payload = _generate_request(body, model)
        config = payload.get("generationConfig") or {}
        gemini_thinking(provider, model, body, config)
        if config:
            payload["generationConfig"] = config
        return UpstreamRequest(_url(provider, model, method), _headers(provider, key), orjson.dumps(payload))

    def chat_response(self, body: bytes, model: str) -> tuple[bytes, Usage]:
        data = self.answer(body)
        candidates = data.get("candidates")
        if not candidates:
            raise _no_candidates(data)
        usage = _usage(data.get("usageMetadata"))
        response_id = data.get("responseId")
        completion = {
            "id": f"chatcmpl-{response_id or uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(clock.time()),
            "model": data.get("modelVersion") or model,
            "choices": [_choice(c, i) for i, c in enumerate(candidates)],
            "usage": usage.to_openai(),
        }
        return orjson.dumps(completion), usage

    def stream(self, state: StreamState) -> StreamTranslator:
        return GeminiStream(state)

    def embeddings_request(
        self, provider: Provider, key: str | None, model: str, body: JSON
    ) -> UpstreamRequest:
        texts = body.get("input")
        extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
        headers = _headers(provider, key)
        if isinstance(texts, str):
            payload: JSON = {"content": {"parts": [{"text": texts}]}, **extra}
            return UpstreamRequest(_url(provider, model, "embedContent"), headers, orjson.dumps(payload))
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise _bad("input", "Gemini embeds text only: a string or a non-empty list of strings")
        path = _model_path(model)
        requests = [{"model": path, "content": {"parts": [{"text": t}]}, **extra} for t in texts]
        return UpstreamRequest(
            _url(provider, model, "batchEmbedContents"), headers, orjson.dumps({"requests": requests})
        )

    def embeddings_response(self, body: bytes, model: str, request: JSON) -> tuple[bytes, Usage]:
        data = self.answer(body)
        if isinstance(data.get("embeddings"), list):  # batchEmbedContents
            vectors = [(e or {}).get("values") or [] for e in data["embeddings"]]
        elif isinstance(data.get("embedding"), dict):  # embedContent
            vectors = [data["embedding"].get("values") or []]
        else:
            raise UpstreamError(ErrorKind.SERVER_ERROR, "Gemini answered without embeddings")
        # Only newer models report usageMetadata; without it the request stays unpriced.
        usage = _usage(data.get("usageMetadata"))
        out = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encoded(v, request)}
                for i, v in enumerate(vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
        }
        return orjson.dumps(out), usage

    def models_request(self, provider: Provider, key: str | None) -> UpstreamRequest:
        return UpstreamRequest(
            f"{provider.base_url}/{_VERSION}/models", _headers(provider, key), method="GET"
        )

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return _classify(status, headers, _error_object(body), body)


def _encoded(vector: list[float], request: JSON) -> list[float] | str:
    """OpenAI's `encoding_format: "base64"`: the vector as little-endian float32 bytes in
    base64 (what the openai SDK asks for by default and decodes); Gemini only sends floats."""
    if request.get("encoding_format") != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
