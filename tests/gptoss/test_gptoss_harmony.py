"""Harmony rendering and parsing, checked against the examples in openai/harmony docs/format.md."""

from __future__ import annotations

from dsrs import Message, Tool, ToolCall
from dsrs_gptoss import harmony
from dsrs_gptoss.harmony import HarmonyMessage, parse_completion, parse_messages, render_message

# --- documented examples (docs/format.md) ---------------------------------------------------------

DOC_OUTPUT = (
    '<|channel|>analysis<|message|>User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.<|end|>'
    "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>"
)

DOC_SYSTEM = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
    "Current date: 2025-06-28\n\n"
    "Reasoning: high\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.\n"
    "Calls to these tools must go to the commentary channel: 'functions'.<|end|>"
)

DOC_DEVELOPER_WITH_TOOLS = (
    "<|start|>developer<|message|># Instructions\n\n"
    "Use a friendly tone.\n\n"
    "# Tools\n\n"
    "## functions\n\n"
    "namespace functions {\n\n"
    "// Gets the location of the user.\n"
    "type get_location = () => any;\n\n"
    "// Gets the current weather in the provided location.\n"
    "type get_current_weather = (_: {\n"
    "// The city and state, e.g. San Francisco, CA\n"
    "location: string,\n"
    'format?: "celsius" | "fahrenheit", // default: celsius\n'
    "}) => any;\n\n"
    "// Gets the current weather in the provided list of locations.\n"
    "type get_multiple_weathers = (_: {\n"
    '// List of city and state, e.g. ["San Francisco, CA", "New York, NY"]\n'
    "locations: string[],\n"
    'format?: "celsius" | "fahrenheit", // default: celsius\n'
    "}) => any;\n\n"
    "} // namespace functions<|end|>"
)

DOC_TOOL_CALL_OUTPUT = (
    "<|channel|>analysis<|message|>Need to use function get_weather.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
    '{"location":"San Francisco"}<|call|>'
)

DOC_TOOL_RESULT = (
    "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"
    '{"sunny": true, "temperature": 20}<|end|>'
)

DOC_PREAMBLE_OUTPUT = (
    "<|channel|>analysis<|message|>{long chain of thought}<|end|>"
    "<|start|>assistant<|channel|>commentary<|message|>**Action plan**:\n1. Generate an HTML file\n"
    "2. Generate a JavaScript for the Node.js server\n3. Start the server\n---\n"
    "Will start executing the plan step by step<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.generate_file<|constrain|>json<|message|>"
    '{"template": "basic_html", "path": "index.html"}<|call|>'
)

WEATHER_TOOLS = [
    Tool("get_location", "Gets the location of the user.", {"type": "object", "properties": {}}),
    Tool(
        "get_current_weather",
        "Gets the current weather in the provided location.",
        {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            },
            "required": ["location"],
        },
    ),
    Tool(
        "get_multiple_weathers",
        "Gets the current weather in the provided list of locations.",
        {
            "type": "object",
            "properties": {
                "locations": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": 'List of city and state, e.g. ["San Francisco, CA", "New York, NY"]',
                },
                "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            },
            "required": ["locations"],
        },
    ),
]


def test_documented_output_splits_reasoning_from_answer() -> None:
    parsed = parse_completion(DOC_OUTPUT)
    assert parsed.final == "2 + 2 = 4."
    assert parsed.reasoning == 'User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.'
    assert "2 + 2 = 4" not in parsed.reasoning and "Simple arithmetic" not in parsed.final
    assert [m.channel for m in parsed.messages] == ["analysis", "final"]
    assert [m.terminator for m in parsed.messages] == [harmony.END, harmony.RETURN]


def test_documented_output_round_trips() -> None:
    msgs = parse_messages(DOC_OUTPUT)
    rendered = "".join(render_message(m) for m in msgs)
    # The completion starts after "<|start|>assistant", so the first header's role is implied.
    assert rendered == "<|start|>assistant" + DOC_OUTPUT
    assert parse_messages(rendered, role=None) == msgs


def test_documented_system_message_renders_exactly() -> None:
    rendered = harmony.render_system(reasoning="high", current_date="2025-06-28", function_tools=True)
    assert rendered == DOC_SYSTEM
    (msg,) = parse_messages(rendered, role=None)
    assert msg.role == "system" and msg.content.startswith("You are ChatGPT")


def test_documented_developer_message_with_tools_renders_exactly() -> None:
    rendered = harmony.render_developer("Use a friendly tone.", tools=WEATHER_TOOLS)
    assert rendered == DOC_DEVELOPER_WITH_TOOLS


def test_documented_tool_call_parses_to_a_tool_call() -> None:
    parsed = parse_completion(DOC_TOOL_CALL_OUTPUT)
    assert parsed.reasoning == "Need to use function get_weather."
    assert parsed.final == ""
    (call,) = parsed.tool_calls
    assert call.name == "get_weather" and call.parsed_arguments() == {"location": "San Francisco"}
    last = parsed.messages[-1]
    assert (last.channel, last.recipient, last.content_type, last.terminator) == (
        "commentary",
        "functions.get_weather",
        "json",
        harmony.CALL,
    )
    assert "".join(render_message(m) for m in parsed.messages) == "<|start|>assistant" + DOC_TOOL_CALL_OUTPUT


def test_documented_tool_result_round_trips() -> None:
    (msg,) = parse_messages(DOC_TOOL_RESULT, role=None)
    assert msg.role == "functions.get_weather to=assistant"
    assert msg.channel == "commentary"
    assert render_message(msg) == DOC_TOOL_RESULT


def test_documented_preamble_goes_to_commentary_not_answer() -> None:
    parsed = parse_completion(DOC_PREAMBLE_OUTPUT)
    assert parsed.commentary.startswith("**Action plan**")
    assert parsed.reasoning == "{long chain of thought}"
    assert parsed.final == ""
    assert parsed.tool_calls[0].name == "generate_file"


def test_full_conversation_matches_documented_prompt() -> None:
    """The documented function-calling prompt, rebuilt from dsrs messages."""
    messages = [
        Message("system", "Use a friendly tone."),
        Message("user", "What is the weather like in SF?"),
    ]
    prompt = harmony.render_conversation(messages, tools=WEATHER_TOOLS, reasoning="high", current_date="2025-06-28")
    expected = (
        DOC_SYSTEM
        + DOC_DEVELOPER_WITH_TOOLS
        + ("<|start|>user<|message|>What is the weather like in SF?<|end|><|start|>assistant")
    )
    assert prompt == expected


def test_conversation_with_tool_call_and_result() -> None:
    call = ToolCall("c1", "get_weather", '{"location":"San Francisco"}')
    messages = [
        Message("user", "What is the weather like in SF?"),
        Message("assistant", None, tool_calls=(call,)),
        Message("tool", '{"sunny": true, "temperature": 20}', tool_call_id="c1"),
    ]
    prompt = harmony.render_conversation(messages, reasoning=None, knowledge_cutoff=None)
    assert (
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
        '{"location":"San Francisco"}<|call|>' + DOC_TOOL_RESULT + "<|start|>assistant"
    ) in prompt
    # Every rendered message parses back with its role.
    roles = [m.role for m in parse_messages(prompt.removesuffix("<|start|>assistant"), role=None)]
    assert roles == ["system", "user", "assistant", "functions.get_weather to=assistant"]


def test_developer_and_user_roles_and_response_format() -> None:
    prompt = harmony.render_conversation(
        [Message("developer", "Answer tersely."), Message("user", "hi"), Message("assistant", "hello")],
        response_format=("reply", {"type": "object"}),
    )
    msgs = parse_messages(prompt.removesuffix("<|start|>assistant"), role=None)
    assert [m.role for m in msgs] == ["system", "developer", "user", "assistant"]
    assert "# Instructions\n\nAnswer tersely." in msgs[1].content
    assert '# Response Formats\n\n## reply\n\n{"type":"object"}' in msgs[1].content
    assert msgs[3].channel == "final"


def test_truncated_output_keeps_what_was_generated() -> None:
    parsed = parse_completion("<|channel|>analysis<|message|>thinking about it")
    assert parsed.reasoning == "thinking about it" and parsed.final == ""
    assert parsed.messages[0].terminator == ""


def test_plain_text_is_not_harmony() -> None:
    assert not harmony.looks_like_harmony("just an answer")
    assert harmony.looks_like_harmony(DOC_OUTPUT)
    assert parse_completion("just an answer").final == "just an answer"


def test_harmony_message_header_fields() -> None:
    msg = HarmonyMessage("assistant", "{}", channel="commentary", recipient="functions.f", content_type="json")
    assert msg.header() == "assistant<|channel|>commentary to=functions.f <|constrain|>json"


def _split_in_pieces(text: str, size: int) -> tuple[str, str]:
    splitter = harmony.HarmonyStreamSplitter()
    answer, reasoning = [], []
    for i in range(0, len(text), size):
        a, r = splitter.feed(text[i : i + size])
        answer.append(a)
        reasoning.append(r)
        assert "<|" not in a and "|>" not in a and "<|" not in r
    a, r = splitter.close()
    return "".join([*answer, a]), "".join([*reasoning, r])


def test_stream_splitter_matches_whole_parse_for_every_piece_size() -> None:
    for text in (DOC_OUTPUT, DOC_PREAMBLE_OUTPUT, DOC_TOOL_CALL_OUTPUT, "<|channel|>analysis<|message|>cut off"):
        whole = parse_completion(text)
        for size in (1, 2, 3, 5, 7, 11, 64, 10_000):
            assert _split_in_pieces(text, size) == (whole.final, whole.reasoning), (text[:30], size)


def test_stream_splitter_never_emits_reasoning_as_answer() -> None:
    splitter = harmony.HarmonyStreamSplitter()
    seen = ""
    for ch in DOC_OUTPUT:
        answer, _ = splitter.feed(ch)
        seen += answer
        assert "Simple arithmetic" not in seen
    assert seen + splitter.close()[0] == "2 + 2 = 4."
