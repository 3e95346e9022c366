#!/usr/bin/env python3
"""Regenerates the Jinja reference renders used by KujiraTokenizerTests.

Renders with Python Jinja2 configured exactly like transformers' `render_jinja_template`
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its `tojson`,
`raise_exception`, `strftime_now`), and writes:

  Tests/Fixtures/chat-templates/deepseek-v3-config/golden.json
      the chat_template of DeepSeek-V3's tokenizer_config.json over several conversations
  Tests/Fixtures/chat-templates/jinja-features/golden.json
      small templates exercising every construct the Swift engine claims to support

Usage: python3 scripts/render_chat_template_goldens.py   (needs only `pip install jinja2`)
"""
import json
import os
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "chat-templates")


def make_environment():
    # Mirrors transformers/utils/chat_template_utils.py::_compile_jinja_template.
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, template, context):
    return env.from_string(template).render(**context)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
    ],
    "two-systems": [
        {"role": "system", "content": "Rule one."},
        {"role": "system", "content": "Rule two."},
        {"role": "user", "content": "Go."},
    ],
    "multi-turn-with-think": [
        {"role": "user", "content": "What is 7*6?"},
        {"role": "assistant", "content": "<think>\n7*6 = 42\n</think>\n\n42"},
        {"role": "user", "content": "日本語で？"},
    ],
    "tools": [
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "id": "call_1",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "{\"humidity\": 40}"},
        {"role": "assistant", "content": "21 °C."},
    ],
}


def deepseek_v3_config_goldens(env):
    path = os.path.join(ROOT, "deepseek-v3-config", "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    template = config["chat_template"]
    cases = []
    for name, messages in CONVERSATIONS.items():
        for add_generation_prompt in (True, False):
            context = {
                "messages": messages, "tools": None, "documents": None,
                "add_generation_prompt": add_generation_prompt,
                "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
            }
            cases.append({
                "conversation": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                "tools": None, "rendered": render(env, template, context),
            })
    return {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
            "renderer": "jinja2 %s, transformers settings" % jinja2.__version__, "cases": cases}


# (name, template, context). Contexts are JSON so the Swift test can load them.
FEATURES = [
    ("literals", "{{ '\\101\\x41\\u0041\\0end' }}|{{ 'a\\tb\\n' }}|{{ \"q'uote\" }}|{{ 1_000 }}|{{ 2.50 }}|{{ 1e3 }}|{{ true }}|{{ none }}|{{ True }}", {}),
    ("python-repr", "{{ [1, 'two', none, true, 2.0] }} {{ {'k': 'v', 'n': [1]} }} {{ (1, 2) | list }} {{ \"it's\" | list | length }} {{ [\"it's\"] }}", {}),
    ("float-repr", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 3 }}", {}),
    ("arithmetic", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'x' ~ 1 ~ none }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 10 - 2 - 3 }}", {}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'ell' in 'hello' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }} {{ not 0 }} {{ 1 and 'x' }} {{ 0 or 'y' }} {{ [] or none }}", {}),
    ("conditional-expr", "{{ 'yes' if flag else 'no' }}|{{ 'only-if' if not flag }}|{{ x if x is defined else 'undef' }}", {"flag": True}),
    ("if-elif-else", "{% for n in [1, 2, 3, 4] %}{% if n == 1 %}one{% elif n is even %}even{% else %}odd{% endif %},{% endfor %}", {}),
    ("loop-vars", "{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }} {% endfor %}", {"items": ["a", "b", "c"]}),
    ("loop-filter-else", "{% for x in items if x > 1 %}{{ x }}{{ ',' if not loop.last }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", {"items": [1, 2, 3, 0, 5]}),
    ("loop-unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}{% for key in d %}{{ key }}{% endfor %}", {"d": {"z": 1, "a": 2, "m": 3}}),
    ("loop-controls", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %} {{ range(2, 9, 3) | list }}", {}),
    ("loop-cycle", "{% for x in range(5) %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {}),
    ("scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}{% set ns = namespace(total=0, seen=[]) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% endfor %}|{{ ns.total }}", {}),
    ("set-block", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]{% set shout | upper %}quiet{% endset %}{{ shout }}{% set a, b = 1, 2 %}{{ a }}{{ b }}", {"name": "Kujira"}),
    ("macros", "{% macro tag(name, body='-', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}{{ tag('b') }}{{ tag('i', 'x') }}{{ tag('br', close=false) }}{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}", {}),
    ("filter-block", "{% filter upper %}shout {{ word }}{% endfilter %}", {"word": "this"}),
    ("strings", "{{ s.split(',') }} {{ s.split(',')[-1] }} {{ '  a b  c '.split() }} {{ s.startswith('a') }} {{ s.endswith(('x', 'c')) }} {{ '  pad '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' l'.lstrip() }}|{{ 'r '.rstrip() }}|{{ s.upper() }} {{ 'Hello World'.lower() }} {{ 'a-b-c'.replace('-', '+') }} {{ 'hello world'.title() }} {{ 'hello'.capitalize() }} {{ '{} and {}'.format(1, 'two') }} {{ s.rsplit(',', 1) }} {{ 'abcabc'.find('c') }} {{ 'a b'.split(' ', 1) }}", {"s": "a,b,c"}),
    ("slices", "{{ s[::-1] }} {{ s[1:] }} {{ s[:2] }} {{ s[-2:] }} {{ items[::-1] }} {{ items[1:3] }} {{ items[::2] }} {{ s[0] }} {{ items[-1] }}", {"s": "héllo", "items": [1, 2, 3, 4, 5]}),
    ("dict-access", "{{ m.role }} {{ m['content'] }} {{ m.get('missing', 'dflt') }} {{ m.get('role') }} {{ m.keys() | list }} {{ m.values() | list }} {{ m.missing is defined }} {{ m['missing'] is undefined }} {{ m.nested.deep }} {{ m.nested['deep'] }}", {"m": {"role": "user", "content": "hi", "nested": {"deep": 42}}}),
    ("undefined", "[{{ nothing }}]{{ nothing | default('d') }}{{ none_value | default('not used') }}{{ '' | default('empty', true) }}{{ nothing is defined }}{{ nothing | length }}{% for x in nothing %}never{% endfor %}{{ nothing ~ 'x' }}{{ 'no' if nothing else 'falsy' }}", {"none_value": None}),
    ("undefined-soft", "[{{ none.y }}{{ [1][5] }}{{ {'a': 1}.b }}{{ 'abc'.nope }}{{ undefined_thing ~ 'a' }}{{ 1 if x }}{{ x | list }}{{ 'a' in x }}{{ x is iterable }}]", {}),
    ("tests", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'x' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}{{ 1 is number }}{{ 1.5 is number }}{{ 1 is integer }}{{ 1.0 is integer }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ none is none }}{{ 1 is none }}{{ 2 is equalto 2 }}{{ 2 is eq 3 }}{{ x is not none }}{{ 'abc' is lower }}{{ 1 is float }}{{ 1.5 is float }}", {"x": 1}),
    ("filters-text", "{{ '  t  ' | trim }}|{{ 'AbC' | lower }}|{{ 'abc' | upper }}|{{ 'hello there' | capitalize }}|{{ 'hello there' | title }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ '<a href=\"x\">&\\'</a>' | e }}|{{ 'x' | safe }}|{{ 12 | string }}{{ '42' | int + 1 }}|{{ '4.5' | float }}|{{ 'abc' | reverse }}|{{ 'one two  three' | wordcount }}", {}),
    ("filters-lists", "{{ items | join(', ') }}|{{ items | first }}|{{ items | last }}|{{ items | length }}|{{ items | count }}|{{ items | reverse | list }}|{{ items | sort }}|{{ items | sort(reverse=true) }}|{{ [3, 1, 3, 2, 1] | unique | list }}|{{ items | min }}|{{ items | max }}|{{ items | sum }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}|{{ [1, 2, 3] | batch(2, 0) | list }}", {"items": [3, 1, 2]}),
    ("filters-objects", "{{ users | map(attribute='name') | join(',') }}|{{ users | selectattr('admin') | map(attribute='name') | list }}|{{ users | rejectattr('admin') | map(attribute='name') | list }}|{{ users | selectattr('name', 'equalto', 'bo') | list | length }}|{{ users | sort(attribute='name') | map(attribute='name') | list }}|{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d | dictsort %}{{ k }}{{ v }}{% endfor %}|{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ users | map(attribute='missing', default='?') | list }}", {"users": [{"name": "cy", "admin": True}, {"name": "al", "admin": False}, {"name": "bo", "admin": True}], "d": {"b": 2, "a": 1}}),
    ("tojson", "{{ tools | tojson }}\n{{ tools[0] | tojson(indent=2) }}\n{{ {'u': 'ünï', 'q': '\"', 'nl': '\\n', 'f': 1.0, 'n': none, 'b': false, 'e': [], 'o': {}} | tojson }}\n{{ 'plain' | tojson }}{{ [1, [2, {'a': []}]] | tojson(indent=4) }}{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}{{ {'a': 1} | tojson(separators=(',', ':')) }}", {"tools": [WEATHER_TOOL]}),
    ("indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(width='> ', blank=true) }}", {}),
    ("whitespace-control", "<ul>\n  {%- for x in items %}\n    <li>{{ x }}</li>\n  {%- endfor %}\n</ul>\n{{- ' trimmed ' -}}\n\n  end", {"items": [1, 2]}),
    ("trim-and-lstrip-blocks", "start\n    {% if true %}\n        inside\n    {% endif %}\n  {# a comment #}\nafter\n{%+ if true %}kept-indent{% endif %}\n{% if true +%}\nkept-newline{% endif %}\n", {}),
    ("raw-and-comments", "{% raw %}{{ not rendered }}{% endraw %}|{# hidden #}|{#- stripped -#}  |", {}),
    ("string-concat-precedence", "{{ 'a' + x | tojson + 'b' }} {{ -1 | abs }} {{ 'n' ~ (1 + 2) }} {{ 'n' ~ 1 * 2 }}", {"x": "q"}),
    ("nested-data", "{% for m in messages %}{{ m.role }}:{{ m.content if m.content is string else m.content | map(attribute='text') | join('+') }}\n{% endfor %}", {"messages": [{"role": "user", "content": "plain"}, {"role": "user", "content": [{"type": "text", "text": "p1"}, {"type": "text", "text": "p2"}]}]}),
    ("dict-literals", "{% set d = {'a': 1, 'b': [1, 2], 'c': {'d': none}} %}{{ d }} {{ d.b[1] }} {{ d | length }} {{ dict(x=1, y=2) }}", {}),
]


COMPOSITE_TEMPLATE = """{#- A template written for these tests: it combines what modern reasoning/tool templates do. -#}
{%- macro render_content(content) -%}
    {%- if content is string -%}
        {{- content -}}
    {%- elif content is iterable and content is not mapping -%}
        {%- for part in content -%}
            {%- if part.type == 'text' %}{{ part.text }}{% elif part.type == 'image' %}<image>{% else %}{{ raise_exception('unknown part type ' ~ part.type) }}{% endif -%}
        {%- endfor -%}
    {%- elif content is none -%}
    {%- else -%}
        {{- raise_exception('bad content') -}}
    {%- endif -%}
{%- endmacro -%}
{%- set date_string = date_string if date_string is defined else '26 Jul 2024' %}
{%- if messages[0].role == 'system' %}
    {%- set system_message = render_content(messages[0].content) | trim %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_message = '' %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}<|system|>
Today: {{ date_string }}
{%- if system_message %}

{{ system_message }}
{%- endif %}
{%- if tools is not none and tools | length > 0 %}

Tools available ({{ tools | length }}):
{%- for tool in tools %}
{{ tool | tojson(indent=2) }}
{%- endfor %}
{%- endif %}
<|end|>
{%- set ns = namespace(last_user=-1, multi_step=true) %}
{%- for message in loop_messages[::-1] %}
    {%- set index = (loop_messages | length - 1) - loop.index0 %}
    {%- if ns.multi_step and message.role == 'user' %}
        {%- set ns.multi_step = false %}
        {%- set ns.last_user = index %}
    {%- endif %}
{%- endfor %}
{%- for message in loop_messages %}
    {%- set content = render_content(message.content) %}
    {%- if message.role == 'user' %}
<|user|>
{{ content }}<|end|>
    {%- elif message.role == 'assistant' %}
        {%- set reasoning = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
<|assistant|>
        {%- if loop.index0 > ns.last_user and reasoning %}
<think>
{{ reasoning.strip() }}
</think>
        {%- endif %}
{{ content }}
        {%- for call in message.tool_calls | default([]) %}
            {%- set call = call.function if call.function is defined else call %}
<call name="{{ call.name }}">{{ call.arguments if call.arguments is string else call.arguments | tojson }}</call>
        {%- endfor %}
<|end|>{{ eos_token if loop.last and not add_generation_prompt else '' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or loop.previtem.role != 'tool' %}
<|tool|>
        {%- endif %}
[{{ loop.index }}] {{ content }}
        {%- if loop.last or loop.nextitem.role != 'tool' %}
<|end|>
        {%- endif %}
    {%- else %}
        {{- raise_exception('Unknown role: ' + message.role) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
<|assistant|>
{% if enable_thinking is defined and not enable_thinking %}<think>

</think>

{% endif %}
{%- endif %}
"""

COMPOSITE_CONVERSATIONS = {
    "plain": ([{"role": "user", "content": "Hi there"}], None, {}),
    "system-parts": ([
        {"role": "system", "content": [{"type": "text", "text": "  Be brief.  "}]},
        {"role": "user", "content": [{"type": "text", "text": "Look: "}, {"type": "image"}, {"type": "text", "text": "!"}]},
    ], None, {"date_string": "1 Jan 2026"}),
    "reasoning-history": ([
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "<think>\nold thoughts\n</think>\n\nFirst answer."},
        {"role": "user", "content": "Second?"},
        {"role": "assistant", "content": "Second answer.", "reasoning_content": "  new thoughts  "},
    ], None, {"enable_thinking": False}),
    "tools": ([
        {"role": "user", "content": "Weather in Tokyo and Osaka?"},
        {"role": "assistant", "content": "<think>need two calls</think>Calling.", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "°C"}}},
            {"name": "get_weather", "arguments": "{\"city\": \"Osaka\"}"}]},
        {"role": "tool", "content": "21"},
        {"role": "tool", "content": "23"},
        {"role": "assistant", "content": "Tokyo 21, Osaka 23."},
    ], [WEATHER_TOOL], {}),
}


def composite_goldens(env):
    cases = []
    for name, (messages, tools, extra) in COMPOSITE_CONVERSATIONS.items():
        for add_generation_prompt in (True, False):
            context = {"messages": messages, "tools": tools, "documents": None,
                       "add_generation_prompt": add_generation_prompt, "bos_token": "<s>", "eos_token": "</s>"}
            context.update(extra)
            cases.append({"conversation": name, "messages": messages, "tools": tools, "extra": extra,
                          "add_generation_prompt": add_generation_prompt,
                          "rendered": render(env, COMPOSITE_TEMPLATE, context)})
    return {"bos_token": "<s>", "eos_token": "</s>", "template": COMPOSITE_TEMPLATE,
            "renderer": "jinja2 %s, transformers settings" % jinja2.__version__, "cases": cases}


SMOLLM2_GGUF = os.environ.get("SMOLLM2_GGUF", os.path.expanduser("~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf"))


def read_gguf_chat_template(path):
    """Reads `tokenizer.chat_template` from GGUF metadata (a minimal reader: header + key/values only)."""
    import struct
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8")

        def value(kind):
            if kind == 8:
                return string()
            if kind == 9:
                item_kind, count = read("<I"), read("<Q")
                return [value(item_kind) for _ in range(count)]
            return read(scalar[kind])

        assert f.read(4) == b"GGUF"
        read("<I")
        read("<Q")
        metadata = {}
        for _ in range(read("<Q")):
            key = string()
            metadata[key] = value(read("<I"))
    tokens = metadata["tokenizer.ggml.tokens"]
    return (metadata["tokenizer.chat_template"], tokens[metadata["tokenizer.ggml.bos_token_id"]],
            tokens[metadata["tokenizer.ggml.eos_token_id"]])


def smollm2_goldens(env):
    """SmolLM2-135M-Instruct's template, as its GGUF carries it (the project's real test model)."""
    directory = os.path.join(ROOT, "smollm2-gguf")
    template_path = os.path.join(directory, "template.jinja")
    if os.path.exists(SMOLLM2_GGUF):
        template, bos, eos = read_gguf_chat_template(SMOLLM2_GGUF)
        os.makedirs(directory, exist_ok=True)
        with open(template_path, "w", encoding="utf-8") as f:
            f.write(template)
    else:
        print("note: %s not found; reusing the committed template.jinja" % SMOLLM2_GGUF)
        with open(template_path, encoding="utf-8") as f:
            template = f.read()
        bos, eos = "<|im_start|>", "<|im_end|>"
    cases = []
    for name in ("single", "system", "two-systems", "multi-turn-with-think"):
        for add_generation_prompt in (True, False):
            messages = CONVERSATIONS[name]
            context = {"messages": messages, "tools": None, "documents": None,
                       "add_generation_prompt": add_generation_prompt, "bos_token": bos, "eos_token": eos}
            cases.append({"conversation": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                          "tools": None, "rendered": render(env, template, context)})
    return {"bos_token": bos, "eos_token": eos, "renderer": "jinja2 %s, transformers settings" % jinja2.__version__,
            "source": "tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf", "cases": cases}


def feature_goldens(env):
    cases = []
    for name, template, context in FEATURES:
        cases.append({"name": name, "template": template, "context": context,
                      "rendered": render(env, template, context)})
    return {"renderer": "jinja2 %s, transformers settings" % jinja2.__version__, "cases": cases}


def write(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    env = make_environment()
    write(os.path.join(ROOT, "deepseek-v3-config", "golden.json"), deepseek_v3_config_goldens(env))
    write(os.path.join(ROOT, "jinja-features", "golden.json"), feature_goldens(env))
    write(os.path.join(ROOT, "composite", "golden.json"), composite_goldens(env))
    write(os.path.join(ROOT, "smollm2-gguf", "golden.json"), smollm2_goldens(env))
