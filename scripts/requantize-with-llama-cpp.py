#!/usr/bin/env python3
"""Requantize a GGUF with llama.cpp's own quantizer (llama-cpp-python), for speed benchmarks on other block formats.
usage: ~/.cache/kujira-ref/venv/bin/python scripts/requantize-with-llama-cpp.py IN.gguf OUT.gguf q8_0|q4_k_m|q5_k_m|q6_k|q4_0|iq4_xs|iq4_nl
(iq4_xs / iq4_nl need no importance matrix; llama.cpp falls back to IQ4_NL / Q5_0-class types for rows not divisible by 256)"""
import sys, llama_cpp
src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3].lower()
types = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
         "q6_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
         "q5_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M, "iq4_xs": llama_cpp.LLAMA_FTYPE_MOSTLY_IQ4_XS,
         "iq4_nl": llama_cpp.LLAMA_FTYPE_MOSTLY_IQ4_NL}
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = types[kind]
params.allow_requantize = True
params.nthread = 2
rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
sys.exit(rc)
