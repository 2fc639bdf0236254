"""Bad input never gives a 5xx; cross-site and rebinding requests are refused.

SPEC.md section 9, [A1] [A2] [A3]. Every test talks to a real `snowmux serve`;
the raw-socket ones send bytes an HTTP client library would refuse to build.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .node_helpers import NodeProcess, call

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def open_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """Loopback, no token: the Host/Origin guard is on."""
    with NodeProcess(tmp_path_factory.mktemp("open"), "--max-sessions", "4") as node:
        yield node


@pytest.fixture(scope="module")
def token_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(
        tmp_path_factory.mktemp("token"), "--max-sessions", "4", env={"SNOWMUX_TOKEN": TOKEN}
    ) as node:
        yield node


async def raw(node: NodeProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one HTTP/1.1 response."""
    host, port = node.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
        }
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        return status, headers, body
    finally:
        writer.close()


def post(path: str, body: bytes, *headers: str, host: str = "127.0.0.1") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *headers,
    ]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> str:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    reply = json.loads(body)
    assert reply["status"] == "error" and isinstance(reply["message"], str) and reply["message"]
    return str(reply["message"])


@pytest.mark.spec("A1")
@pytest.mark.parametrize("digits", [4_000, 5_000])
async def test_huge_numbers_are_400(open_node: NodeProcess, digits: int) -> None:
    body = b'{"url":"tone:440","start_at":' + b"9" * digits + b"}"
    status, headers, reply = await raw(
        open_node, post("/session/n/play", body, "Content-Type: application/json")
    )
    assert_json_error(status, headers, reply, 400)


@pytest.mark.spec("A1")
async def test_a_body_nested_30000_deep_is_400(open_node: NodeProcess) -> None:
    body = b'{"url":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    status, headers, reply = await raw(
        open_node, post("/session/n/play", body, "Content-Type: application/json")
    )
    message = assert_json_error(status, headers, reply, 400)
    assert "nested" in message


@pytest.mark.spec("A1", "A2")
async def test_a_bogus_charset_is_415(open_node: NodeProcess) -> None:
    status, headers, reply = await raw(
        open_node,
        post(
            "/session/n/play",
            b'{"url":"tone:440"}',
            "Content-Type: application/json; charset=bogus",
        ),
    )
    assert "charset" in assert_json_error(status, headers, reply, 415)


@pytest.mark.spec("A1")
async def test_a_non_ascii_authorization_byte_is_401(token_node: NodeProcess) -> None:
    request = post("/session/n/stop", b"", "Authorization: Bearer s3cr\xe9t-token")
    status, headers, reply = await raw(token_node, request)
    assert_json_error(status, headers, reply, 401)
    request = "\r\n".join(
        ["GET /health HTTP/1.1", "Host: 127.0.0.1", "Authorization: \xff\xfe", "", ""]
    ).encode("latin-1")
    status, headers, reply = await raw(token_node, request)
    assert_json_error(status, headers, reply, 401)


@pytest.mark.spec("A1")
@pytest.mark.parametrize(
    "body",
    [
        {"url": "tone:440", "format": {}},
        {"url": "tone:440", "format": 0},
        {"url": "tone:440", "format": ""},
        {"url": "tone:440", "format": ["pcm"]},
        {"url": "tone:440", "format": False},
    ],
)
async def test_a_format_that_is_not_a_known_string_is_400(
    open_node: NodeProcess, body: dict[str, object]
) -> None:
    status, reply = await call(open_node.url, "POST", "/session/f/play", body)
    assert status == 400 and reply["status"] == "error" and "format" in reply["message"]


@pytest.mark.spec("A1")
@pytest.mark.parametrize(
    "body",
    [
        b'{"url":"tone:440","url":"x.wav"}',  # duplicate keys: two parsers, two URLs
        b'{"url":"\\ud800.wav"}',  # a lone surrogate cannot name a file
        b'{"url":"tone:440","volume":NaN}',
        b'{"url":"tone:440","start_at":1e999}',
        b'{"url":"tone:440"}\xff',
        b"",
    ],
)
async def test_json_the_stdlib_would_accept_or_choke_on_is_400(
    open_node: NodeProcess, body: bytes
) -> None:
    status, headers, reply = await raw(
        open_node, post("/session/j/play", body, "Content-Type: application/json")
    )
    assert_json_error(status, headers, reply, 400)


@pytest.mark.spec("A2")
@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/json-patch+json",
        None,
    ],
)
async def test_a_post_that_is_not_json_is_415(
    open_node: NodeProcess, token_node: NodeProcess, content_type: str | None
) -> None:
    headers = () if content_type is None else (f"Content-Type: {content_type}",)
    for node, auth in ((open_node, ()), (token_node, (f"Authorization: Bearer {TOKEN}",))):
        for path in ("/session/x/play", "/session/x/stop"):
            status, head, reply = await raw(
                node, post(path, b'{"url":"tone:440"}', *headers, *auth)
            )
            assert_json_error(status, head, reply, 415)


@pytest.mark.spec("A2")
async def test_a_bare_post_without_body_still_stops(open_node: NodeProcess) -> None:
    status, _head, reply = await raw(open_node, post("/session/x/stop", b""))
    assert status == 200 and json.loads(reply)["status"] == "stopped"


@pytest.mark.spec("A3")
@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        ("127.0.0.1:{port}", None, True),
        ("localhost:{port}", None, True),
        ("[::1]:{port}", None, True),
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}", True),
        ("evil.example:{port}", None, False),  # a rebound name
        ("evil.example", None, False),
        ("127.0.0.1.evil.example:{port}", None, False),
        ("127.0.0.1:{port}", "http://evil.example", False),
        ("127.0.0.1:{port}", "null", False),
        ("127.0.0.1:{port}", "http://localhost:{port}", False),  # another origin, same machine
    ],
)
async def test_loopback_without_token_refuses_foreign_host_and_origin(
    open_node: NodeProcess, host: str, origin: str | None, allowed: bool
) -> None:
    port = open_node.url.rsplit(":", 1)[1]
    host = host.format(port=port)
    extra = () if origin is None else (f"Origin: {origin.format(port=port)}",)
    get = "\r\n".join(["GET /health HTTP/1.1", f"Host: {host}", *extra, "", ""]).encode()
    status, head, reply = await raw(open_node, get)
    if allowed:
        assert status == 200, reply
    else:
        assert "refused" in assert_json_error(status, head, reply, 403)
    status, head, reply = await raw(
        open_node,
        post("/session/h/stop", b"", "Content-Type: application/json", *extra, host=host),
    )
    assert (status == 200) if allowed else status == 403


@pytest.mark.spec("A3")
async def test_a_node_with_a_token_does_not_check_host(token_node: NodeProcess) -> None:
    get = (
        f"GET /health HTTP/1.1\r\nHost: node.example\r\nOrigin: https://bot.example\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    status, _head, _reply = await raw(token_node, get)
    assert status == 200


# -- property: whatever arrives, a 4xx is JSON and nothing is 5xx -------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(
        st.sampled_from(["url", "format", "start_at", "duration", "bitrate", "volume", "x"]),
        _json_values | st.sampled_from(["tone:440?seconds=0.05", "pcm", "opus", "nope.wav"]),
    ).map(lambda d: json.dumps(d, allow_nan=True).encode()),
)
_ids = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=30
).map(lambda s: "".join(f"%{b:02X}" for b in s.encode()))
_header_values = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c not in b"\r\n").decode("latin-1")
)


@pytest.mark.spec("A1")
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    with_token=st.booleans(),
    session_id=_ids,
    action=st.sampled_from(["play", "stop", "pause", "resume", "status"]),
    body=_bodies,
    content_type=st.one_of(
        st.sampled_from(["application/json", "application/json; charset=utf-8", None]),
        st.sampled_from(["application/json", "text/plain", "application/json; charset=x"]),
        _header_values,
    ),
    authorization=st.one_of(st.just(f"Bearer {TOKEN}"), st.none(), _header_values),
    origin=st.one_of(st.none(), st.none(), _header_values),
)
def test_generated_requests_never_get_a_5xx_and_errors_are_json(
    open_node: NodeProcess,
    token_node: NodeProcess,
    with_token: bool,
    session_id: str,
    action: str,
    body: bytes,
    content_type: str | None,
    authorization: str | None,
    origin: str | None,
) -> None:
    node = token_node if with_token else open_node
    headers = [
        f"{name}: {value}"
        for name, value in (
            ("Content-Type", content_type),
            ("Authorization", authorization),
            ("Origin", origin),
        )
        if value is not None
    ]
    method = "GET" if action == "status" else "POST"
    request = post(f"/session/{session_id or '%20'}/{action}", body, *headers)
    request = request.replace(b"POST ", method.encode() + b" ", 1)
    status, head, reply = asyncio.run(raw(node, request))
    assert status < 500, (status, reply[:300])
    parser_level = status == 400 and head.get("content-type", "").startswith("text/plain")
    if status >= 400 and not parser_level:  # aiohttp's own header-parser 400s stay text
        parsed = json.loads(reply)
        assert parsed["status"] == "error" and parsed["message"], parsed
    if status == 200 and action == "play":
        token = TOKEN if with_token else None
        asyncio.run(call(node.url, "POST", f"/session/{session_id}/stop", token=token))


def test_the_property_nodes_are_still_healthy(
    open_node: NodeProcess, token_node: NodeProcess
) -> None:
    for node, token in ((open_node, None), (token_node, TOKEN)):
        status, reply = asyncio.run(call(node.url, "GET", "/health", token=token))
        assert status == 200 and reply["status"] == "ok"
