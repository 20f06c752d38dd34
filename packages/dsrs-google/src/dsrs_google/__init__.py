"""dsrs-google: the Gemini API as a dsrs provider, spoken directly (no google-genai SDK).

>>> import dsrs
>>> lm = dsrs.LM("gemini-2.5-flash", temperature=0.2)  # doctest: +SKIP
"""

__version__ = "0.1.0"
