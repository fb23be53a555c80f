"""The deterministic model behaviour, without sockets."""

from __future__ import annotations

import pytest
from switchyard_sim.content import (
    IdMaker,
    Prompt,
    answer,
    arguments_for,
    choose_tool,
    embedding,
    embedding_bytes,
    estimate_tokens,
    reply_text,
)


def test_reply_text_quotes_forty_characters() -> None:
    said = "a" * 50
    assert reply_text("p", "m", said) == f"Hello from p (m). You said: {'a' * 40}"


def test_answer_chunks_join_back_to_the_text() -> None:
    ans = answer("p", "m", Prompt(chars=10, last_user_text="two  spaces\nand a newline "))
    assert "".join(ans.chunks) == ans.text
    assert ans.completion_tokens == len(ans.chunks) == len(ans.text.split())
    assert not ans.text.endswith(" ")
    assert ans.prompt_tokens == 2


def test_truncation_to_zero_and_beyond_length() -> None:
    assert answer("p", "m", Prompt(last_user_text="x", max_tokens=0)).text == ""
    full = answer("p", "m", Prompt(last_user_text="x", max_tokens=1000))
    assert not full.truncated and full.text.endswith("x")


def test_tool_answer() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    ans = answer("p", "m", Prompt(tool_name="search", tool_schema=schema))
    assert (ans.tool_name, ans.tool_args, ans.completion_tokens, ans.text) == ("search", {"q": "sim"}, 10, "")


def test_estimate_tokens() -> None:
    assert [estimate_tokens(n) for n in (0, 3, 4, 9, 400)] == [1, 1, 1, 2, 100]


def test_choose_tool() -> None:
    tools = [("a", None), ("b", {"type": "object"})]
    assert choose_tool([], "a") == (None, None)
    assert choose_tool(tools, None) == ("a", None)
    assert choose_tool(tools, "b") == ("b", {"type": "object"})
    assert choose_tool(tools, "missing") == ("a", None)


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ({"type": "string"}, "sim"),
        ({"type": "integer"}, 1),
        ({"type": "number"}, 1),
        ({"type": "boolean"}, True),
        ({"type": "BOOLEAN"}, True),
        ({"enum": [3, 4]}, 3),
        ({"type": "string", "enum": []}, "sim"),
        ({"type": ["null", "integer"]}, 1),
        ({"type": "array", "items": {"type": "string"}}, []),
        ({"type": "null"}, None),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({}, "sim"),
        ("not a schema", "sim"),
        (
            {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "string"}},
                "required": ["x"],
            },
            {"x": 1},
        ),
    ],
)
def test_arguments_follow_the_schema(prop: object, value: object) -> None:
    schema = {"type": "object", "properties": {"field": prop}, "required": ["field"]}
    assert arguments_for(schema) == {"field": value}


def test_arguments_for_odd_schemas() -> None:
    assert arguments_for(None) == {}
    assert arguments_for({"type": "object"}) == {}
    assert arguments_for({"properties": {"a": {}}, "required": ["a", "b", 3]}) == {"a": "sim"}


def test_embeddings_are_deterministic_unit_float32() -> None:
    first = embedding("text", 12)
    assert first == embedding("text", 12) and len(first) == 12
    assert first != embedding("other", 12)
    assert abs(sum(v * v for v in first) - 1.0) < 1e-5
    assert len(embedding_bytes(first)) == 48
    assert len(embedding("big", 3072)) == 3072


def test_ids_repeat_for_a_seed() -> None:
    a, b, c = IdMaker(1), IdMaker(1), IdMaker(2)
    first = a.make("msg_01", 22)
    assert first == b.make("msg_01", 22) != c.make("msg_01", 22)
    assert first.startswith("msg_01") and len(first) == 28
