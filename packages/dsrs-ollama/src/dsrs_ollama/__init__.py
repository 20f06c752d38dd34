"""dsrs-ollama: Ollama native API provider for dsrs."""

__version__ = "0.1.0"
