"""The safetensors format with numpy alone (the fake's Python may lack the ``safetensors`` package):
8 bytes little-endian header length, the JSON header (``{name: {dtype, shape, data_offsets}}``
plus ``__metadata__`` of strings), padded with spaces to 8 bytes, then the raw little-endian data."""

from __future__ import annotations

import json
import struct

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": None, "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


class SafetensorError(Exception):
    pass


SafetensorError.__module__ = "safetensors_rust"  # its traceback line reads as the real one's


def save_file(tensors: dict[str, np.ndarray], path: str, metadata: dict[str, str] | None = None) -> None:
    header: dict[str, object] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        code = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64"}[array.dtype]
        data = array.astype(DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def load_file(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SafetensorError("Error while deserializing header: HeaderTooSmall")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100_000_000:
        raise SafetensorError("Error while deserializing header: HeaderTooLarge")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        raise SafetensorError("Error while deserializing header: InvalidHeaderDeserialization") from None
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    base = 8 + n
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise SafetensorError(f"unsupported dtype {info['dtype']}")
        tensors[name] = np.frombuffer(data[base + start:base + end], dtype=dtype).reshape(info["shape"]).astype(np.float32)
    return tensors, metadata
