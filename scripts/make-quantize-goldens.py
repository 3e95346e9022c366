#!/usr/bin/env python3
"""Goldens for Kujira's quantizers (Tests/Fixtures/quantize/quantize-golden.gguf).

Q8_0, F16 and BF16 come from gguf-py's `gguf.quants.quantize`; Q4_K and Q6_K from llama.cpp's own reference quantizer
(`ggml_quantize_chunk` in the libggml that llama-cpp-python ships, which calls `quantize_row_q4_K_ref` / `quantize_row_q6_K_ref` when no
importance matrix is given). The file is written with gguf-py's GGUFWriter: tensor `input` (F32, rows × 512) and one
tensor per type holding the quantized rows.

Run: ~/.cache/kujira-ref/venv/bin/python scripts/make-quantize-goldens.py
"""
import ctypes, glob, os
import numpy as np
import gguf
import llama_cpp

ROWS, COLS = 12, 512
rng = np.random.default_rng(20261129)
x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
x[1] *= 1e-3                                   # small magnitudes
x[2] = np.abs(x[2])                            # all positive (min clamps to 0 in Q4_K)
x[3, :256] = 0                                 # an all-zero super-block
x[4] = np.round(x[4] * 4) / 4                  # many exact ties for the roundings
x[5] = rng.standard_t(2, COLS).astype(np.float32) * 3   # heavy tails / outliers
x[6, ::7] = 40.0                               # spikes
x[7] = -np.abs(x[7])                           # all negative
x[8] = 1.0                                     # a constant row
x[9] = rng.uniform(-65000, 65000, COLS).astype(np.float32)  # near the f16 range
x[10] = (rng.standard_normal(COLS) * 1e-6).astype(np.float32)  # f16 subnormal scales
x[11, :32] = np.float32(1.0000001)             # bf16 rounding edge

lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
ggml = ctypes.CDLL(glob.glob(os.path.join(lib_dir, "libggml-base.so*"))[0])
ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_void_p]

def ggml_quantize(qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    out = np.zeros((ROWS, COLS // block * size), dtype=np.uint8)
    src = np.ascontiguousarray(x)
    n = ggml.ggml_quantize_chunk(int(qtype), src.ctypes.data, out.ctypes.data, 0, ROWS, COLS, None)
    assert n == out.nbytes, (n, out.nbytes)
    return out

out_path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "quantize", "quantize-golden.gguf")
w = gguf.GGUFWriter(out_path, arch="quantize-golden")
w.add_tensor("input", x)
for name, qtype in [("f16", gguf.GGMLQuantizationType.F16), ("bf16", gguf.GGMLQuantizationType.BF16),
                    ("q8_0", gguf.GGMLQuantizationType.Q8_0)]:
    q = gguf.quants.quantize(x, qtype)
    w.add_tensor(name, q, raw_dtype=qtype)
q4k = ggml_quantize(gguf.GGMLQuantizationType.Q4_K)
w.add_tensor("q4_k", q4k, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
w.add_tensor("q6_k", ggml_quantize(gguf.GGMLQuantizationType.Q6_K), raw_dtype=gguf.GGMLQuantizationType.Q6_K)
# Cross-check: ggml's Q8_0 reference agrees with gguf-py's.
assert np.array_equal(ggml_quantize(gguf.GGMLQuantizationType.Q8_0), gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", os.path.normpath(out_path), os.path.getsize(out_path), "bytes")
