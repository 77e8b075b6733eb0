#!/usr/bin/env python3
"""Renders random conversations with the real Jinja chat templates (Jinja2, set
up as Hugging Face's apply_chat_template sets it up) and writes the cases as
JSON for jinja_compare, which renders them natively and compares.

usage: jinja_crosscheck.py TEMPLATES_DIR R1_VOCAB_GGUF OUT_JSON [N_PER_FAMILY]
"""
import json
import random
import struct
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def gguf_chat_template(path):
    """The string value of tokenizer.chat_template in a GGUF file."""
    with open(path, "rb") as f:
        data = f.read()
    key = b"tokenizer.chat_template"
    at = data.index(key) + len(key)
    (vtype, n) = struct.unpack_from("<IQ", data, at)
    assert vtype == 8, "tokenizer.chat_template is not a string"
    return data[at + 12 : at + 12 + n].decode("utf-8")


def raise_exception(message):
    raise TemplateError(message)


def main():
    templates_dir, r1_vocab, out_path = sys.argv[1:4]
    n_cases = int(sys.argv[4]) if len(sys.argv) > 4 else 300

    def read(name):
        with open(f"{templates_dir}/{name}", encoding="utf-8") as f:
            return f.read()

    # family name (as template_from_name takes it) -> (source, bos_token, eos_token)
    families = {
        "deepseek-r1": (gguf_chat_template(r1_vocab), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
        "chatml": (read("openhermes-2.5-chatml.jinja"), "", "<|im_end|>"),
        "qwen3": (read("qwen3-235b-a22b.jinja"), "", "<|im_end|>"),
        "llama3": (read("llama-3-8b-instruct.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
        "llama2": (read("llama-2-7b-chat.jinja"), "<s>", "</s>"),
        "gemma": (read("gemma-7b-it.jinja"), "<bos>", "<eos>"),
        "phi3": (read("phi-3.5-mini-instruct.jinja"), "<s>", "<|endoftext|>"),
    }
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception

    rng = random.Random(20250126)
    # Pieces that exercise stripping (ASCII and Unicode whitespace), reasoning
    # tags and Qwen3's tool-response test.
    pieces = ["hi", " ", " \n", "\n\n", "\n", "<think>", "</think>", "x", "\t", "é", "\u3000", "\u00a0",
              "A b", "<tool_response>", "</tool_response>", "答"]
    cases = []
    for family, (source, bos, eos) in families.items():
        template = env.from_string(source)
        for i in range(n_cases):
            n = rng.randint(1, 6)
            messages = []
            for k in range(n):
                if i % 2 == 0:  # half the cases alternate user/assistant after an optional system
                    role = "user" if k % 2 == 0 else "assistant"
                else:
                    role = rng.choice(["system", "user", "user", "assistant", "assistant"])
                content = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
                messages.append({"role": role, "content": content})
            if i % 4 == 0 and family != "gemma":
                messages.insert(0, {"role": "system", "content": "".join(rng.choice(pieces) for _ in range(3))})
            gen = rng.random() < 0.5
            try:
                out = template.render(messages=messages, add_generation_prompt=gen, bos_token=bos, eos_token=eos)
                ok = True
                if bos and out.startswith(bos):
                    out = out[len(bos):]  # the native renderer leaves BOS to the tokenizer
            except TemplateError as e:
                out, ok = str(e), False
            cases.append({"family": family, "messages": messages, "gen": gen, "ok": ok, "out": out})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
