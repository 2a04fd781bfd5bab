#!/usr/bin/env python3
"""gguf_crosscheck.py - compares `m40llm inspect --json` with the gguf Python
package (gguf.GGUFReader, an independent implementation) on every .gguf under
the test data (models/, stories/, tokenizer/), and round-trips files written by
`m40llm mkmodel` (--mkmodel DIR): every key, type and value (floats exactly,
arrays element by element), version, alignment, data offset, and every tensor's
name, type, shape, offset, size and bytes.

Exit 0 when everything matches, 1 on any mismatch (details printed)."""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType

errors = []


def err(msg):
    errors.append(msg)
    print("MISMATCH: " + msg, file=sys.stderr)


def inspect_json(binary, path):
    p = subprocess.run([binary, "inspect", "--json", path], capture_output=True)
    if p.returncode != 0:
        err(f"{path}: m40llm inspect --json exited {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
        return None
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        err(f"{path}: inspect --json output is not JSON: {e}")
        return None


def json_scalar(v, vtype):
    """inspect --json value of GGUF type vtype -> comparable Python value
    (strings as bytes; non-finite floats are the strings nan/inf/-inf; uint64
    above INT64_MAX is a decimal string)."""
    if vtype == "string":
        if isinstance(v, dict) and "invalid_utf8_hex" in v:
            return bytes.fromhex(v["invalid_utf8_hex"])
        return v.encode("utf-8", "surrogatepass")
    if vtype in ("float32", "float64") and isinstance(v, str):
        return float(v)
    if vtype == "uint64" and isinstance(v, str):
        return int(v)
    return v


def json_value(entry, vtype):
    v = entry["value"]
    if vtype == "array":
        et = entry["elem_type"]
        return [json_scalar(x, et) for x in v]
    return json_scalar(v, vtype)


def reader_value(field):
    """GGUFReader field -> (type name, elem type name or None, value)."""
    t = field.types[0]
    if t == GGUFValueType.STRING:
        return "string", None, bytes(field.parts[-1])
    if t == GGUFValueType.ARRAY:
        et = field.types[1] if len(field.types) > 1 else None
        if et is None:  # empty array: element type from the raw part
            et = GGUFValueType(int(field.parts[0][0]))
        if et == GGUFValueType.STRING:
            return "array", "string", [bytes(field.parts[i]) for i in field.data]
        if et == GGUFValueType.ARRAY:
            return "array", "array", None  # gguf-py flattens nested arrays
        return "array", et.name.lower(), [pv for i in field.data for pv in field.parts[i].tolist()]
    return t.name.lower(), None, field.parts[-1].tolist()[0]


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if math.isnan(a) and math.isnan(b):
                return True
            return a == b and type(a) is type(b)
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def compare_file(binary, path, check_bytes=False):
    j = inspect_json(binary, path)
    if j is None:
        return None
    try:
        r = GGUFReader(path)
    except Exception as e:  # noqa: BLE001
        err(f"{path}: GGUFReader failed: {e}")
        return None
    nerr = len(errors)
    version = r.fields["GGUF.version"].parts[-1].tolist()[0]
    if j["version"] != version:
        err(f"{path}: version {j['version']} != {version}")
    if j["alignment"] != r.alignment:
        err(f"{path}: alignment {j['alignment']} != {r.alignment}")
    if r.tensors and j["data_offset"] != r.data_offset:
        err(f"{path}: data_offset {j['data_offset']} != {r.data_offset}")
    fields = [(k, f) for k, f in r.fields.items() if not k.startswith("GGUF.")]
    md = j["metadata"]
    if [k for k, _ in fields] != list(md.keys()):
        err(f"{path}: keys differ: {[k for k, _ in fields]} vs {list(md.keys())}")
    nvals = 0
    for k, f in fields:
        if k not in md:
            continue
        e = md[k]
        t, et, v = reader_value(f)
        if e["type"] != t:
            err(f"{path}: key {k}: type {e['type']} != {t}")
            continue
        if t == "array":
            if e["elem_type"] != et:
                err(f"{path}: key {k}: element type {e['elem_type']} != {et}")
                continue
            if v is None:  # nested: compare the flattened element count only
                continue
            mine = json_value(e, t)
            if len(mine) != len(v) or e["n"] != len(v):
                err(f"{path}: key {k}: {len(mine)} elements != {len(v)}")
                continue
            for i, (a, b) in enumerate(zip(mine, v)):
                if not same(a, b):
                    err(f"{path}: key {k}[{i}]: {a!r} != {b!r}")
                    break
            nvals += len(v)
        else:
            mine = json_value(e, t)
            if not same(mine, v):
                err(f"{path}: key {k}: {mine!r} != {v!r}")
            nvals += 1
    jt = j["tensors"]
    if len(jt) != len(r.tensors):
        err(f"{path}: {len(jt)} tensors != {len(r.tensors)}")
    raw = None
    if check_bytes:
        with open(path, "rb") as fh:
            raw = fh.read()
    for a, b in zip(jt, r.tensors):
        where = f"{path}: tensor {b.name}"
        if a["name"] != b.name:
            err(f"{path}: tensor name {a['name']!r} != {b.name!r}")
            continue
        if a["type_id"] != int(b.tensor_type) or a["type"].lower() != b.tensor_type.name.lower():
            err(f"{where}: type {a['type']}({a['type_id']}) != {b.tensor_type.name}({int(b.tensor_type)})")
        shape = [int(x) for x in b.shape]
        if a["shape"] != shape:
            err(f"{where}: shape {a['shape']} != {shape}")
        if j["data_offset"] + a["offset"] != b.data_offset:
            err(f"{where}: offset {j['data_offset']}+{a['offset']} != {b.data_offset}")
        if a["nbytes"] != int(b.n_bytes):
            err(f"{where}: nbytes {a['nbytes']} != {int(b.n_bytes)}")
        if raw is not None:
            start = j["data_offset"] + a["offset"]
            mine = raw[start:start + a["nbytes"]]
            theirs = np.ascontiguousarray(b.data).tobytes()
            if mine != theirs:
                err(f"{where}: tensor bytes differ")
    ok = len(errors) == nerr
    print(f"{'ok' if ok else 'FAIL'}: {path}: {len(fields)} keys ({nvals} values), {len(jt)} tensors")
    return j


def crosscheck_testdata(binary, testdata):
    n = 0
    for sub in ("models", "stories", "tokenizer"):
        d = os.path.join(testdata, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".gguf"):
                compare_file(binary, os.path.join(d, name))
                n += 1
    return n


def mkmodel_roundtrip(binary, outdir):
    """Files written by `m40llm mkmodel` read back identically by gguf-py."""
    base = ["--arch", "llama", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--ffn", "128", "--vocab", "300", "--seed", "1"]
    variants = [("f32", []), ("f16", []), ("bf16", []), ("f32", ["--tied"])]
    for typ, extra in variants:
        out = os.path.join(outdir, f"mk-{typ}{'-tied' if extra else ''}.gguf")
        cmd = [binary, "mkmodel", out] + base + ["--type", typ] + extra
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode != 0:
            err(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode(errors='replace').strip()}")
            continue
        j = compare_file(binary, out, check_bytes=True)
        if j is None:
            continue
        md = j["metadata"]
        checks = {"general.architecture": "llama", "llama.block_count": 2,
                  "llama.embedding_length": 64, "llama.attention.head_count": 4,
                  "llama.attention.head_count_kv": 2, "llama.feed_forward_length": 128}
        for k, want in checks.items():
            got = md.get(k, {}).get("value")
            if got != want:
                err(f"{out}: {k} = {got!r}, expected {want!r}")
        names = [t["name"] for t in j["tensors"]]
        if extra and "output.weight" in names:
            err(f"{out}: --tied but output.weight present")
        if not any(t["type"].lower() == typ for t in j["tensors"]):
            err(f"{out}: no tensor of type {typ}")
        os.remove(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--testdata")
    ap.add_argument("--mkmodel-dir", help="run the mkmodel round trip, writing files here")
    a = ap.parse_args()
    n = 0
    if a.testdata:
        n = crosscheck_testdata(a.bin, a.testdata)
        print(f"compared {n} test-data files")
    if a.mkmodel_dir:
        os.makedirs(a.mkmodel_dir, exist_ok=True)
        mkmodel_roundtrip(a.bin, a.mkmodel_dir)
    if errors:
        print(f"{len(errors)} mismatch(es)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
