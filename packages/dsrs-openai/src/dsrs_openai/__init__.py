"""dsrs-openai: OpenAI Chat Completions and Responses, OpenAI-compatible vendors (Groq, Cerebras, ...), and the Codex CLI, for dsrs."""

__version__ = "0.1.0"
