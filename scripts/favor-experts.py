#!/usr/bin/env python3
"""Make a DeepSeek-V3 checkpoint's router use only a few experts: adds +BIAS to `e_score_correction_bias` of
experts 0..K-1 in every MoE layer, so noaux_tc selection (which adds the bias before group and top-k choice)
always picks them. The weights of the chosen experts still come from the unbiased scores.

Used to measure that resident memory stays near the touched experts (docs/benchmarks.md, "DeepSeek economics").

    python3 scripts/favor-experts.py MODEL_DIR --experts 4 [--bias 10]

Rewrites MODEL_DIR/model*.safetensors via a temporary copy + rename (F32 or BF16 bias tensors).
"""
import argparse, json, os, shutil, struct, sys

def bf16_bytes(x):
    return struct.pack("<I", struct.unpack("<I", struct.pack("<f", x))[0])[2:]  # truncation is exact for small ints

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--bias", type=float, default=10.0)
    a = ap.parse_args()
    files = [f for f in sorted(os.listdir(a.model)) if f.endswith(".safetensors")]
    patched = 0
    for name in files:
        path = os.path.join(a.model, name)
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        targets = {k: v for k, v in header.items() if k.endswith("e_score_correction_bias")}
        if not targets:
            continue
        tmp = path + ".tmp"
        shutil.copyfile(path, tmp)
        with open(tmp, "r+b") as f:
            for key, info in targets.items():
                start = 8 + n + info["data_offsets"][0]
                if info["dtype"] == "F32":
                    width, encode = 4, lambda x: struct.pack("<f", x)
                elif info["dtype"] == "BF16":
                    width, encode = 2, bf16_bytes
                else:
                    sys.exit(f"{path}: {key} has dtype {info['dtype']}; expected F32 or BF16")
                count = info["shape"][0]
                if a.experts > count:
                    sys.exit(f"{path}: {key} has {count} experts, fewer than --experts {a.experts}")
                f.seek(start)
                f.write(b"".join(encode(a.bias if e < a.experts else 0.0) for e in range(count)))
                patched += 1
        os.replace(tmp, path)
    print(f"biased experts 0..{a.experts - 1} by +{a.bias} in {patched} MoE layers")

if __name__ == "__main__":
    main()
