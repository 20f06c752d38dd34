"""Wire formats (sans-IO codecs) and the HTTP provider base classes provider packages build on.

* :mod:`dsrs.wire.openai_chat` — the OpenAI Chat Completions codec (request body, response,
  stream decoder, error classification), shared by every OpenAI-compatible server;
* :mod:`dsrs.wire._sse` — incremental SSE and NDJSON decoders;
* :class:`HttpProvider`, :class:`OpenAICompatibleProvider` — providers over the dsrs transport.
"""

from __future__ import annotations

from dsrs._failures import classify_by_status, classify_failure, parse_duration, retry_after_from_headers
from dsrs._json import JSONDecodeError
from dsrs._json import dumps as json_dumps
from dsrs._json import loads as json_loads
from dsrs.wire import openai_chat
from dsrs.wire._codec import DEFAULT_MAX_TOKENS, Codec, Endpoint, StreamDecoder, StreamFormat
from dsrs.wire._http_provider import SECRET_HEADERS, HttpProvider, OpenAICompatibleProvider, env_first, header_secrets
from dsrs.wire._sse import NDJSONDecoder, SSEDecoder, SSEEvent
from dsrs.wire.openai_chat import OpenAIChatCodec, WireOptions

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "SECRET_HEADERS",
    "Codec",
    "Endpoint",
    "HttpProvider",
    "JSONDecodeError",
    "OpenAIChatCodec",
    "StreamDecoder",
    "StreamFormat",
    "header_secrets",
    "json_dumps",
    "json_loads",
    "NDJSONDecoder",
    "OpenAICompatibleProvider",
    "SSEDecoder",
    "SSEEvent",
    "WireOptions",
    "classify_by_status",
    "classify_failure",
    "env_first",
    "openai_chat",
    "parse_duration",
    "retry_after_from_headers",
]
