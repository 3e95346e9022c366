#!/usr/bin/env python3
"""Renders Qwen3's chat template (Tests/Fixtures/chat-templates/qwen3/template.jinja: the chat_template of Qwen/Qwen3-8B's
tokenizer_config.json, as vendored verbatim by huggingface/trl `trl/chat_templates/qwen3.jinja` and guidance-ai/guidance)
with transformers' own `render_jinja_template` over conversations that exercise its thinking handling:
`enable_thinking` true / false / absent, assistant turns with `reasoning_content` or an inline `<think>` block (kept only
after the last user query), tool definitions, tool calls with dict arguments, tool responses, and the generation prompt.

Writes Tests/Fixtures/chat-templates/qwen3/golden.json in the format of the other template goldens.
Run:  ~/.cache/kujira-ref/venv/bin/python scripts/make-qwen3-template-golden.py
"""
import json, os
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "chat-templates", "qwen3")
template = open(os.path.join(ROOT, "template.jinja")).read()

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
conversations = {
    "single": [{"role": "user", "content": "What is 17 * 23?"}],
    "system": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime."}],
    "reasoning-history": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
        {"role": "user", "content": "And 3+3?"},
    ],
    "inline-think": [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "<think>\nIt is Paris.\n</think>\n\nParis."},
        {"role": "user", "content": "Of Japan?"},
        {"role": "assistant", "content": "<think>\nTokyo.\n</think>\n\nTokyo."},
    ],
    "tools": [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "{\"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21°C and clear.", "reasoning_content": "The tool says 21."},
        {"role": "user", "content": "Thanks!"},
    ],
    "multilingual": [{"role": "user", "content": "日本語で答えて: 1+1は?"}],
}
cases = []
for name, messages in conversations.items():
    for agp in [True, False]:
        for thinking in [None, True, False]:
            if not agp and thinking is not None:
                continue
            extra = {} if thinking is None else {"enable_thinking": thinking}
            tools = [WEATHER] if name == "tools" else None
            rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, tools=tools, add_generation_prompt=agp,
                                                **extra)
            case = {"conversation": name, "messages": messages, "add_generation_prompt": agp, "tools": tools, "rendered": rendered[0]}
            if extra:
                case["extra"] = extra
            cases.append(case)
json.dump({"bos_token": "", "eos_token": "<|im_end|>", "renderer": "transformers render_jinja_template", "cases": cases},
          open(os.path.join(ROOT, "golden.json"), "w"), ensure_ascii=False, indent=1)
print(len(cases), "cases")
