"""dsrs-anthropic: Claude through the Anthropic Messages API, spoken directly (no anthropic SDK).

>>> import dsrs
>>> lm = dsrs.LM("claude-sonnet-4-5", max_tokens=1024)  # doctest: +SKIP
"""

__version__ = "0.1.0"
