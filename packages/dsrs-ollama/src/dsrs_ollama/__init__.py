"""dsrs-ollama: Ollama's native chat API (``/api/chat``) as a dsrs provider.

>>> import dsrs
>>> lm = dsrs.LM("ollama/llama2").with_num_ctx(8192)  # doctest: +SKIP
"""

__version__ = "0.1.0"
