"""dsrs-gptoss: Local llama.cpp llama-server lane for dsrs: auto-start, JSON Schema to GBNF, Harmony."""

__version__ = "0.1.0"
