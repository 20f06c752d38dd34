"""Memory and time stay bounded against a hostile server, on both transports.

A 200 MB body (declared or chunked), a gzip bomb (256 MiB of zeros in 260 KB) and an SSE line that
never ends are each a ``ResponseParseError`` naming the bound, reached quickly; the peak RSS growth
of each, measured in a fresh process (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs`` before each case), stays near the bound instead of the body's size. A
control in the same process reads the 200 MB body with the bound lifted, so the measurement is
shown to see a body that is held.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import dsrs
from dsrs.testing import HostileServer
from dsrs.transport import make_transport, set_transport_factory

MIB = 1024 * 1024


@pytest.fixture(params=["aiohttp", "httpx"])
def transport_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    set_transport_factory(lambda: make_transport(name))
    yield name
    set_transport_factory(None)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(give_up_after=10.0) as srv:
        yield srv


@pytest.mark.parametrize("scenario", ["huge-body", "huge-body-chunked", "gzip-bomb"])
async def test_oversized_body_is_a_parse_error_naming_the_bound(
    transport_name: str, server: HostileServer, scenario: str
) -> None:
    lm = dsrs.LM("m", base_url=server.base_url(scenario), timeout=10)
    t0 = time.monotonic()
    with pytest.raises(dsrs.ResponseParseError) as info:
        await lm.acall("hi")
    assert "max_body_bytes=33554432" in str(info.value)
    assert time.monotonic() - t0 < 3.0  # stopped at the bound, not after reading 200-256 MB


@pytest.mark.parametrize(("scenario", "bound"), [("endless-line", "max_line_bytes"), ("gzip-bomb", "max_line_bytes")])
async def test_endless_stream_line_is_a_parse_error_naming_the_bound(
    transport_name: str, server: HostileServer, scenario: str, bound: str
) -> None:
    lm = dsrs.LM("m", base_url=server.base_url(scenario), timeout=10)
    t0 = time.monotonic()
    with pytest.raises(dsrs.ResponseParseError) as info:
        await _drain(lm)
    assert f"{bound}=8388608" in str(info.value)
    assert time.monotonic() - t0 < 3.0


async def test_endless_response_headers_end_quickly_with_a_typed_error(
    transport_name: str, server: HostileServer
) -> None:
    # The HTTP libraries bound a header line (aiohttp 8 KiB, h11 16 KiB): a typed error, at once.
    lm = dsrs.LM("m", base_url=server.base_url("endless-headers"), timeout=10)
    t0 = time.monotonic()
    with pytest.raises(dsrs.LMError) as info:
        await lm.acall("hi")
    assert isinstance(info.value, (dsrs.ProviderUnavailableError, dsrs.ResponseParseError)), repr(info.value)
    assert time.monotonic() - t0 < 2.0
    assert len(str(info.value)) < 700  # aiohttp's text quotes 8 KiB of the header: capped


async def _drain(lm: dsrs.LM) -> None:
    async for _ in lm.astream("hi"):
        pass


# Runs in a fresh interpreter (so no earlier case's freed memory hides this one's growth):
# argv = transport name, server URL, case. Prints one JSON object.
_RSS_PROBE = r"""
import asyncio, gc, json, re, sys
import dsrs
from dsrs.transport import HttpRequest, make_transport, set_transport_factory

name, url = sys.argv[1], sys.argv[2]
set_transport_factory(lambda: make_transport(name))

def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

async def case(fn):
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    before = status("VmRSS")
    try:
        await fn()
        outcome = "ok"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    return {"growth": status("VmHWM") - before, "outcome": outcome}

async def call(scenario):
    # retries=2, a plain LM's default (the suite's DSRS_RETRIES=0 is inherited): a retry must not
    # hold the failed attempt's body while it reads the next one.
    await dsrs.LM("m", base_url=f"{url}/{scenario}/v1", timeout=20, retries=2).acall("hi")

async def stream(scenario):
    async for _ in dsrs.LM("m", base_url=f"{url}/{scenario}/v1", timeout=20).astream("hi"):
        pass

async def unbounded_send():
    from dsrs.transport import get_transport
    req = HttpRequest("POST", f"{url}/huge-body-chunked/v1/chat/completions", {}, b"{}", 20.0, max_body_bytes=300 << 20)
    body = (await get_transport().send(req)).content
    assert len(body) == 200 << 20, len(body)

CASES = {
    "huge-body": lambda: call("huge-body"),
    "huge-body-chunked": lambda: call("huge-body-chunked"),
    "gzip-bomb": lambda: call("gzip-bomb"),
    "gzip-bomb-stream": lambda: stream("gzip-bomb"),
    "endless-line": lambda: stream("endless-line"),
    "control-unbounded-200MB": unbounded_send,
}

async def main():
    await call("ok")  # warm: imports, plugins, the connection pool
    await stream("ok")
    print(json.dumps(await case(CASES[sys.argv[3]])))

asyncio.run(main())
"""


RSS_CASES = (
    "huge-body",
    "huge-body-chunked",
    "gzip-bomb",
    "gzip-bomb-stream",
    "endless-line",
    "control-unbounded-200MB",
)


def measure_rss_growth(transport: str, server: HostileServer, case: str) -> dict[str, object]:
    """Peak RSS growth (``growth``, bytes) and ``outcome`` of one hostile case, in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, transport, server.url, case],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("case", RSS_CASES)
def test_peak_memory_stays_near_the_bound(transport: str, server: HostileServer, case: str) -> None:
    result = measure_rss_growth(transport, server, case)
    growth = int(str(result["growth"]))
    if case.startswith("control"):
        assert result["outcome"] == "ok"
        assert growth > 190 * MIB  # the probe does see a body that is held
        return
    assert str(result["outcome"]).startswith("ResponseParseError"), result
    # The bound is 32 MiB of body (8 MiB per stream line), the rest buffers and allocator slack;
    # two bodies held at once (a retry keeping the failed attempt's) would be 64 MiB or more.
    assert growth < 56 * MIB, result
