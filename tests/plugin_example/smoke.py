"""Run by the nox `plugin` session in a venv holding only dsrs-core and this example plugin."""

import sys

import dsrs

spec = dsrs.provider_spec("acme")
assert spec.distribution == "dsrs-acme-example" and spec.version == "1.2.3", spec
assert "dsrs_acme_example.provider" not in sys.modules, "discovery must not import the implementation"
assert dsrs.LM("acme-large").provider_name == "acme"
assert "dsrs_acme_example.provider" not in sys.modules, "resolving a model must not import the implementation"

from dsrs_acme_example.testing import acme_wire_server  # noqa: E402 - after the discovery checks

with acme_wire_server(api_keys=["acme-smoke-key-000000"]) as srv:
    r = dsrs.LM("acme-large", base_url=srv.url, api_key="acme-smoke-key-000000").call("hello plugin world")
assert r.text == "hello plugin world", r.text
assert r.usage.total_tokens == 6 and r.usage.cost_msats == 38, (
    r.usage
)  # (3 x $2.50 + 3 x $10) per million tokens, rounded
print("third-party plugin discovered and usable:", r.text, r.usage.cost_msats, "msats")
