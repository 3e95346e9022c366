#!/usr/bin/env python3
"""Goldens for Kujira's IQ dequantizers (Tests/Fixtures/quantize/iq-golden.gguf).

For each GGUF "IQ" type (IQ4_NL, IQ4_XS, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) the file holds a tensor
`<type>` of random-but-valid blocks (every quant bit random, the f16 super-block scale set to a finite value: mostly
±[1e-3, 0.1], plus one block each with a subnormal scale, -0 and a large scale) stored raw in that type, and
`<type>.dequant` (F32), gguf-py's `gguf.quants.dequantize` of it — llama.cpp's own Python reference.
Written with gguf-py's GGUFWriter, so the test also checks that Kujira's GGUF reader accepts the types.

Run: ~/.cache/kujira-ref/venv/bin/python scripts/make-iq-goldens.py
"""
import os
import numpy as np
import gguf

T = gguf.GGMLQuantizationType
TYPES = [("iq4_nl", T.IQ4_NL), ("iq4_xs", T.IQ4_XS), ("iq2_xxs", T.IQ2_XXS), ("iq2_xs", T.IQ2_XS), ("iq2_s", T.IQ2_S),
         ("iq3_xxs", T.IQ3_XXS), ("iq3_s", T.IQ3_S), ("iq1_s", T.IQ1_S), ("iq1_m", T.IQ1_M)]
# The ids Kujira maps (GGMLType.swift), checked against gguf-py.
IDS = {"iq2_xxs": 16, "iq2_xs": 17, "iq3_xxs": 18, "iq1_s": 19, "iq4_nl": 20, "iq3_s": 21, "iq2_s": 22, "iq4_xs": 23, "iq1_m": 29}
ROWS = 3
rng = np.random.default_rng(20261206)


def set_scale(block: np.ndarray, qtype, bits: int):
    """Stores the f16 super-block scale `bits` in `block` (IQ1_M spreads it over the top nibbles of its 4 scale words)."""
    if qtype == T.IQ1_M:
        words = block[48:56].view(np.uint16)
        for i in range(4):
            words[i] = (int(words[i]) & 0x0FFF) | (((bits >> (4 * i)) & 0xF) << 12)
    else:
        block[0:2] = np.frombuffer(np.uint16(bits).tobytes(), dtype=np.uint8)


w = gguf.GGUFWriter(os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "quantize", "iq-golden.gguf"),
                    arch="iq-golden")
for name, qtype in TYPES:
    assert int(qtype) == IDS[name], (name, int(qtype))
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    cols = 2 * 256                               # 2 super-blocks per row (16 IQ4_NL blocks)
    blocks_per_row = cols // block_elems
    raw = rng.integers(0, 256, size=(ROWS * blocks_per_row, block_bytes), dtype=np.uint8)
    for b in range(raw.shape[0]):
        value = np.float16(rng.uniform(1e-3, 0.1) * rng.choice([-1, 1]))
        bits = int(value.view(np.uint16))
        if b == 1: bits = 0x0003                 # subnormal half
        if b == 2: bits = 0x8000                 # -0
        if b == 3: bits = int(np.float16(3.5).view(np.uint16))
        set_scale(raw[b], qtype, bits)
    data = raw.reshape(ROWS, blocks_per_row * block_bytes)
    deq = gguf.quants.dequantize(data, qtype)
    assert deq.shape == (ROWS, cols) and deq.dtype == np.float32 and np.all(np.isfinite(deq)), name
    w.add_tensor(name, data, raw_dtype=qtype)
    w.add_tensor(name + ".dequant", deq)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "quantize", "iq-golden.gguf")))
