from switchyard_router.sse import SSEDecoder

STREAM = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"b":2}\n\n'
    b"event: multi\r\ndata: line1\r\ndata:line2\r\n\r\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [("message_start", b'{"a":1}'), (None, b'{"b":2}'), ("multi", b"line1\nline2"), (None, b"[DONE]")]


def test_whole_stream():
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) == EXPECTED
    assert decoder.flush() == []


def test_every_split_point_gives_the_same_events():
    for cut in range(1, len(STREAM)):
        decoder = SSEDecoder()
        events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
        assert events == EXPECTED, cut


def test_byte_at_a_time():
    decoder = SSEDecoder()
    events = []
    for i in range(len(STREAM)):
        events += decoder.feed(STREAM[i : i + 1])
    assert events == EXPECTED


def test_flush_returns_an_unterminated_last_event():
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"x":1}\n') == []
    assert decoder.flush() == [(None, b'{"x":1}')]
    assert decoder.flush() == []
