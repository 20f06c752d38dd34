"""Run by the nox `plugin` session in a venv holding only dsrs-core and this example plugin."""

import sys

import dsrs

spec = next(s for s in dsrs.providers() if s.name == "acme")
assert spec.distribution == "dsrs-acme-example" and spec.version == "1.2.3", spec
assert "dsrs_acme_example.provider" not in sys.modules, "discovery must not import the implementation"
r = dsrs.LM("acme:reverse").call("hello plugin world")
assert r.text == "dlrow nigulp olleh", r.text
assert r.usage.total_tokens == 6 and r.usage.cost_usd is not None and r.usage.cost_msats == 6, r.usage
assert dsrs.LM("acme-large").provider_name == "acme"
print("third-party plugin discovered and usable:", r.text, r.usage.cost_msats, "msats")
