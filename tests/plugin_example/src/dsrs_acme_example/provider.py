"""The implementation, imported only when an LM uses it."""

from __future__ import annotations

from dsrs import LMRequest, LMResponse, LmUsage, Provider


class AcmeProvider(Provider):
    async def acomplete(self, request: LMRequest) -> LMResponse:
        prompt = request.messages[-1].content or ""
        text = prompt[::-1]
        return LMResponse(text=text, usage=LmUsage.from_tokens(len(prompt.split()), len(text.split())))
