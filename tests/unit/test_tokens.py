import logging
import sys

import tiktoken
from switchyard_router.tokens import TokenCounter, prompt_text

# A real tiktoken Encoding with a byte-level vocabulary: one token per byte, built offline.
BYTES = tiktoken.Encoding(
    name="bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)}, special_tokens={}
)


def test_prompt_text_reads_strings_and_text_parts():
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}]},
            {"role": "assistant", "content": None},
            "junk",
        ]
    }
    assert prompt_text(body) == ("be brief\nhi", 4)


def test_exact_count_uses_the_models_encoding():
    counter = TokenCounter({"gpt-test": BYTES})
    body = {"messages": [{"role": "user", "content": "hello"}]}
    assert counter.exact("gpt-test", body) == 5 + 4
    assert counter.exact("unknown-model", body) is None


def test_preload_keeps_estimates_for_unknown_models_and_offline(monkeypatch, caplog):
    counter = TokenCounter()
    calls = []

    def encoding_for_model(model):
        calls.append(model)
        if model == "llama":
            raise KeyError(model)
        if model == "gpt-offline":
            raise OSError("network unreachable")
        return BYTES

    monkeypatch.setattr(tiktoken, "encoding_for_model", encoding_for_model)
    with caplog.at_level(logging.WARNING):
        counter.preload(["llama", "gpt-offline", "gpt-4o"])
    assert sorted(calls) == ["gpt-4o", "gpt-offline", "llama"]
    assert set(counter.encodings) == {"gpt-4o"}
    assert "no tiktoken encoding for gpt-offline" in caplog.text


def test_preload_without_tiktoken_says_so(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    with caplog.at_level(logging.WARNING):
        TokenCounter().preload(["gpt-4o"])
    assert "needs tiktoken" in caplog.text


def _table():
    from switchyard_router.table import load_table

    return load_table(
        {
            "providers": [{"name": "oa", "type": "openai", "models": [{"name": "gpt-4o", "contextWindow": 128000}]}],
            "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "gpt-4o"}, {"provider": "oa", "model": "m"}]}],
        }
    )


def test_exact_tokens_preloads_the_windowed_models_at_start(monkeypatch):
    from switchyard_router.credentials import CredentialStore
    from switchyard_router.server import Router

    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda model: BYTES)
    router = Router(exact_tokens=True)
    router.load(_table(), CredentialStore())
    assert set(router.dispatcher.token_counter.encodings) == {"gpt-4o"}


async def test_exact_tokens_preloads_off_the_loop_on_reload(monkeypatch):
    import asyncio
    import threading

    from switchyard_router.credentials import CredentialStore
    from switchyard_router.server import Router

    threads = []
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda model: threads.append(threading.current_thread()) or BYTES)
    router = Router(exact_tokens=True)
    router.load(_table(), CredentialStore())
    for _ in range(100):
        if router.dispatcher.token_counter.encodings:
            break
        await asyncio.sleep(0.01)
    assert threads and threads[0] is not threading.main_thread()
