#!/usr/bin/env python3
"""Split-GGUF fixture for Kujira's tests, made by llama.cpp's own gguf-py.

    ~/.cache/kujira-ref/venv/bin/python scripts/make-split-gguf-fixture.py
    ~/.cache/kujira-ref/venv/bin/python scripts/make-split-gguf-fixture.py --check /tmp/out-00001-of-00003.gguf

Default: reads Tests/Fixtures/gguf/qwen2-tiny-q8_0.gguf with gguf.GGUFReader and writes it again with
gguf.GGUFWriter(split_max_tensors=10) — the writer convert_hf_to_gguf.py's --split-max-tensors uses — as
Tests/Fixtures/gguf/split/qwen2-tiny-q8_0-0000{1,2,3}-of-00003.gguf (27 tensors: 10, 10, 7), then checks the shards
it wrote the same way --check does.

--check FIRST_SHARD: reads every shard of a set (for example one `kujira convert --split-max-size` wrote) with
GGUFReader and checks llama.cpp's split layout: names <prefix>-%05d-of-%05d.gguf, split.no (uint16) = the shard's
index, split.count (uint16) = the number of shards, split.tensors.count (int32) = all tensors, model metadata
(general.architecture) only in the first shard, no tensor in two shards. With --source FILE also that the tensors
(names, types, shapes, bytes) are FILE's.
"""
import argparse
import re
import sys
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "Tests/Fixtures/gguf/qwen2-tiny-q8_0.gguf"
OUT = ROOT / "Tests/Fixtures/gguf/split"
SPLIT = gguf.Keys.Split


def write_split(source: Path, out: Path, max_tensors: int) -> None:
    reader = gguf.GGUFReader(source, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess, split_max_tensors=max_tensors)
    # as gguf-py's gguf_new_metadata.py copies a file: every field in order, the architecture (added by the writer) and
    # the GGUF.* pseudo-fields excepted
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()


def fail(message: str) -> None:
    sys.exit(f"check failed: {message}")


def split_key(reader: gguf.GGUFReader, path: Path, key: str, vtype: gguf.GGUFValueType) -> int:
    field = reader.get_field(key)
    if field is None:
        fail(f"{path}: no {key}")
    if field.types != [vtype]:
        fail(f"{path}: {key} has type {[t.name for t in field.types]}, expected {vtype.name}")
    return int(field.contents())


def check(first: Path, source: Path | None) -> None:
    match = re.fullmatch(r"(.*)-(\d{5})-of-(\d{5})\.gguf", first.name)
    if not match or int(match.group(2)) != 1:
        fail(f"{first} is not named <prefix>-00001-of-NNNNN.gguf")
    prefix, count = first.parent / match.group(1), int(match.group(3))
    names: dict[str, Path] = {}
    tensors = []
    for i in range(count):
        path = Path(f"{prefix}-{i + 1:05d}-of-{count:05d}.gguf")
        reader = gguf.GGUFReader(path, "r")
        if split_key(reader, path, SPLIT.LLM_KV_SPLIT_NO, gguf.GGUFValueType.UINT16) != i:
            fail(f"{path}: split.no is not {i}")
        if split_key(reader, path, SPLIT.LLM_KV_SPLIT_COUNT, gguf.GGUFValueType.UINT16) != count:
            fail(f"{path}: split.count is not {count}")
        total = split_key(reader, path, SPLIT.LLM_KV_SPLIT_TENSORS_COUNT, gguf.GGUFValueType.INT32)
        has_model = reader.get_field(gguf.Keys.General.ARCHITECTURE) is not None
        if has_model != (i == 0):
            fail(f"{path}: general.architecture {'present' if has_model else 'missing'} in shard {i + 1}")
        if i > 0 and set(reader.fields) - {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", *gguf.Keys.Split.__dict__.values()}:
            fail(f"{path}: shard {i + 1} carries metadata other than the split keys")
        for t in reader.tensors:
            if t.name in names:
                fail(f"{path}: tensor {t.name} is also in {names[t.name]}")
            names[t.name] = path
            tensors.append(t)
        if i == 0:
            expected_total = total
        print(f"{path.name}: split.no {i} split.count {count} split.tensors.count {total}, {len(reader.tensors)} tensors")
    if expected_total != len(tensors):
        fail(f"split.tensors.count is {expected_total} but the shards hold {len(tensors)} tensors")
    if source is not None:
        reference = gguf.GGUFReader(source, "r")
        if [t.name for t in reference.tensors] != [t.name for t in tensors]:
            fail("tensor names or order differ from the source")
        for a, b in zip(reference.tensors, tensors):
            if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape) or not np.array_equal(a.data.view(np.uint8), b.data.view(np.uint8)):
                fail(f"tensor {a.name} differs from the source")
        print(f"{len(tensors)} tensors equal to {source.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", type=Path, help="first shard of a set to check instead of writing the fixture")
    parser.add_argument("--source", type=Path, help="with --check: the unsplit file the tensors must equal")
    args = parser.parse_args()
    if args.check:
        check(args.check, args.source)
        return
    for old in OUT.glob("qwen2-tiny-q8_0-*.gguf"):
        old.unlink()
    write_split(SOURCE, OUT / "qwen2-tiny-q8_0.gguf", max_tensors=10)
    check(OUT / "qwen2-tiny-q8_0-00001-of-00003.gguf", SOURCE)


if __name__ == "__main__":
    main()
