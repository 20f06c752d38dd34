"""Adapters turn a signature plus inputs into messages, and the model's answer back into values.

* :class:`ChatAdapter` (the default): field markers (``[[ ## answer ## ]]``) in plain chat text;
  works with every model.
* :class:`JSONAdapter`: asks for one JSON object and, where the provider supports it
  (``Provider.supports_response_format``), sends the signature's JSON schema as ``response_format``.

Writing another adapter: subclass :class:`Adapter` and implement :meth:`Adapter.format` (returns a
:class:`FormattedCall`) and :meth:`Adapter.parse` (returns ``{output name: value}`` coerced to the
declared types, or raises :class:`AdapterParseError`).
"""

from __future__ import annotations

from dsrs._adapters.base import Adapter, AdapterParseError, FormattedCall, format_value
from dsrs._adapters.chat import ChatAdapter
from dsrs._adapters.json_adapter import JSONAdapter

__all__ = ["Adapter", "AdapterParseError", "ChatAdapter", "FormattedCall", "JSONAdapter", "format_value"]
