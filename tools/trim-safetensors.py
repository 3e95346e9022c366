#!/usr/bin/env python3
"""Copy chosen tensors of a safetensors file byte for byte into a smaller one (keeps test fixtures lean).

usage: trim-safetensors.py IN OUT NAME [NAME ...]
"""
import json, struct, sys

src, dst, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(src, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    base = 8 + n
    out_header, blobs, offset = {}, [], 0
    for name in names:
        info = header[name]
        start, end = info["data_offsets"]
        f.seek(base + start)
        blob = f.read(end - start)
        out_header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
text = json.dumps(out_header).encode()
text += b" " * (-len(text) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for blob in blobs:
        f.write(blob)
