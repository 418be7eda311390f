"""Philips XLI compression, written the way the reader (and ``sierraecg.xli``) decodes it: the inverse, for short seeds.

A Philips XML stores each lead as one XLI chunk: an 8-byte header (payload size, two unused bytes, a signed
16-bit "first" value), then a 10-bit LZW code stream of the lead's bytes. The bytes are the high bytes of
every stored value, then the low bytes; the stored values are second differences of the samples (offset by
64), with the first two samples kept as they are. Shortening a shared example means decoding, cutting and
encoding again, so this module only has to agree with the decoder (a test checks the round trip through both).
"""

from __future__ import annotations

import numpy as np

LZW_BITS = 10
_MAX_CODE = (1 << LZW_BITS) - 2  # the decoder stops at the all-ones code and adds no entry beyond this one


def lzw_encode(data: bytes) -> bytes:
    """Codes packed most significant bit first, the dictionary growing until ``_MAX_CODE`` (no reset)."""
    table = {bytes([k]): k for k in range(256)}
    next_code, word, codes = 256, b"", []
    for value in data:
        candidate = word + bytes([value])
        if candidate in table:
            word = candidate
            continue
        codes.append(table[word])
        if next_code <= _MAX_CODE:
            table[candidate] = next_code
            next_code += 1
        word = bytes([value])
    if word:
        codes.append(table[word])
    bits = "".join(format(code, f"0{LZW_BITS}b") for code in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def xli_chunk(samples: np.ndarray) -> bytes:
    """One lead (int16 values, at least 3) as an XLI chunk that decodes back to them."""
    x = np.asarray(samples, dtype=np.int64)
    stored = np.empty_like(x)
    stored[:2] = x[:2]
    stored[2:-1] = 2 * x[2:-1] - x[1:-2] - x[3:] + 64  # the decoder's x[i+1] = 2 x[i] - x[i-1] - (s[i] - 64)
    stored[-1] = 64
    first = 2 * x[1] - x[0] - x[2]
    values = stored.astype(np.int16).view(np.uint16)
    payload = lzw_encode(bytes((values >> 8).astype(np.uint8)) + bytes((values & 0xFF).astype(np.uint8)))
    return (len(payload).to_bytes(4, "little", signed=True) + b"\x00\x00"
            + int(first).to_bytes(2, "little", signed=True) + payload)
