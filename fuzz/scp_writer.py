"""A small SCP-ECG writer: records built from integer samples as EN 1064 lays them out (not a product
feature: CardioSynth reads SCP-ECG, it does not export it).

Device quirks can be written on purpose, as real devices write them (``first_sample``: section 3 numbering the
first sample 0 instead of 1; ``byte_count_cap``: section 6's 16-bit byte count per lead capped, and only that many
bytes stored, for a lead longer than it can count; ``header_section``'s ``model`` and ``strings``: a device's
name fields as it fills them), so the round-trip tests see valid files that the reader must not refuse.

Two users. The tests check the reader on every encoding it supports (raw, first or second differences, the
default or custom Huffman tables with table switches, reference beat subtraction with sections 4 and 5),
damaging one field at a time and re-sealing the CRCs (``reseal``) so that the check they aim at is reached.
The fuzzer's seeds (:mod:`fuzz.seeds`) are the shared example record rewritten 0.4 s long with it.
"""

from __future__ import annotations

import binascii
import struct

import numpy as np

FILE_ORDER = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"]
LEAD_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8,
              "III": 61, "aVR": 62, "aVL": 63, "aVF": 64}
N_POINTERS = 12  # section 0 lists sections 0-11, present or not

# A Huffman code: (prefix bits as text, value or table to switch to, value bits after the prefix, switch?)
DEFAULT_TABLE = [("0", 0, 0, False)] + [
    (f"{'1' * n}0{sign}", n * (1 - 2 * int(sign)), 0, False) for n in range(1, 9) for sign in "01"
] + [("1111111110", 0, 8, False), ("1111111111", 0, 16, False)]
# Two custom tables that switch to each other; each can code any value through its 16-bit escape.
CUSTOM_TABLES = [
    [("0", 0, 0, False), ("10", 1, 0, False), ("110", -1, 0, False), ("1110", 0, 16, False),
     ("1111", 2, 0, True)],
    [("00", 2, 0, False), ("01", -2, 0, False), ("10", 0, 16, False), ("110", 0, 0, False),
     ("111", 1, 0, True)],
]


def crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def differences(x: np.ndarray, encoding: int) -> np.ndarray:
    """What an encoder stores: amplitudes (0), first (1) or second (2) differences, in 16 bits."""
    x = np.asarray(x, dtype=np.int64)
    d = x.copy()
    if encoding == 1:
        d[1:] = x[1:] - x[:-1]
    elif encoding == 2:
        d[2:] = x[2:] - 2 * x[1:-1] + x[:-2]
    return d.astype(np.int16)


def _code_bits(value: int, table: list) -> str:
    for bits, code_value, extra, switch in table:
        if not switch and not extra and code_value == value:
            return bits
    for bits, _, extra, switch in sorted(table, key=lambda code: code[2]):
        if not switch and extra and -(1 << (extra - 1)) <= value < 1 << (extra - 1):
            return bits + format(value & ((1 << extra) - 1), f"0{extra}b")
    raise ValueError(f"{value} cannot be coded")


def huffman_encode(values: np.ndarray, tables: list, switch_every: int = 0) -> bytes:
    """One lead's bits, starting in table 1; every ``switch_every`` samples, switch to the next table."""
    table, bits = 0, []
    for k, value in enumerate(values.tolist()):
        if switch_every and k and k % switch_every == 0:
            target = (table + 1) % len(tables)
            bits.append(next(b for b, v, _, switch in tables[table] if switch and v == target + 1))
            table = target
        bits.append(_code_bits(value, tables[table]))
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""


def huffman_section(tables: list | None) -> bytes:
    """Section 2: 19999 for the default table, else each table's code structures (code bits reversed)."""
    if tables is None:
        return struct.pack("<H", 19999)
    out = struct.pack("<H", len(tables))
    for table in tables:
        out += struct.pack("<H", len(table))
        for bits, value, extra, switch in table:
            out += struct.pack("<BBBhI", len(bits), len(bits) + extra, 0 if switch else 1, value, int(bits[::-1], 2))
    return out


def coded_section(leads: np.ndarray, avm_nv: int, interval_us: int, encoding: int, tables: list | None,
                  switch_every: int = 0, byte_count_cap: int | None = None) -> bytes:
    """Section 5 or 6 body: AVM, sample interval, encoding, bimodal flag 0, byte counts, the leads' data; with
    ``byte_count_cap``, each lead's data cut to that many bytes (a device whose 16-bit count overflows)."""
    data = [differences(x, encoding) for x in leads]
    if tables is None:
        data = [d.astype("<i2").tobytes() for d in data]
    else:
        data = [huffman_encode(d, tables, switch_every) for d in data]
    if byte_count_cap is not None:
        data = [d[:byte_count_cap] for d in data]
    head = struct.pack("<HHBB", avm_nv, interval_us, encoding, 0) + struct.pack(f"<{len(data)}H", *map(len, data))
    return head + b"".join(data)


def header_section(model: bytes = b"MAC5K\0", strings: tuple[bytes, ...] = (b"v1", b"SN42", b"sw", b"scp",
                                                                           b"Acme Medical")) -> bytes:
    """Section 1: a patient's name and id (which must never reach metadata), device, date and time. Tag 14
    holds the 6-byte ``model`` and five zero-terminated ``strings`` (the last the trade name), the first one's
    length in byte 35."""
    fixed = struct.pack("<HHHBB", 1, 2, 3, 1, 255) + model.ljust(6, b"\0")[:6] + bytes(21)
    device = fixed + bytes([len(strings[0]) + 1]) + b"".join(text + b"\0" for text in strings)
    tags = [(0, b"Doe\0"), (2, b"PATIENT-123\0"), (14, device), (25, struct.pack("<HBB", 2024, 3, 14)),
            (26, bytes([9, 26, 53]))]
    return b"".join(struct.pack("<BH", tag, len(value)) + value for tag, value in tags) + struct.pack("<BH", 255, 0)


def scp_sections(samples: np.ndarray, *, leads: list[str] = FILE_ORDER, avm_nv: int = 2500,
                 interval_us: int = 2000, encoding: int = 2, huffman: str | None = "default",
                 reference_beat: np.ndarray | None = None, beat_fiducial: int = 0,
                 qrs_fiducials: tuple[int, ...] = (), zone: tuple[int, int] = (0, 0), first_sample: int = 1,
                 byte_count_cap: int | None = None, header: bytes | None = None,
                 measured: tuple[int, int] | None = None) -> dict[int, bytes]:
    """Section bodies by id for ``samples`` (leads, n) in counts of ``avm_nv`` nV.

    ``huffman`` is None (no section 2), "default" or "custom" (two tables, switching every 97 samples).
    With a ``reference_beat`` (leads, m), its 1-based ``beat_fiducial`` and the rhythm's QRS fiducials
    (1-based), the beat is subtracted over ``zone`` = (first, last) samples relative to each fiducial.
    ``first_sample`` is the number section 3 gives every lead's first sample (the standard: 1; some devices: 0),
    ``byte_count_cap`` cuts section 6 (see :func:`coded_section`), ``header`` replaces section 1; ``measured``
    = (QRS onset, T end) in ms into the reference beat writes a section 7 whose QT is their difference.
    """
    samples = np.asarray(samples, dtype=np.int64)
    n_leads, n = samples.shape
    tables = {None: None, "default": DEFAULT_TABLE, "custom": CUSTOM_TABLES}[huffman]
    table_list = None if tables is None else ([tables] if huffman == "default" else tables)
    switch_every = 97 if huffman == "custom" else 0
    subtracted = reference_beat is not None
    flags = int(subtracted) | 0x04 | n_leads << 3
    last = max(first_sample, 1) + n - 1  # a device counting from 0 still ends at n
    sections = {1: header_section() if header is None else header,
                3: bytes([n_leads, flags]) + b"".join(struct.pack("<IIB", first_sample, last, LEAD_CODES[lead])
                                                      for lead in leads)}
    if huffman is not None:
        sections[2] = huffman_section(None if huffman == "default" else tables)
    residual = samples.copy()
    if subtracted:
        m = reference_beat.shape[1]
        zones = [(f + zone[0], f, f + zone[1]) for f in qrs_fiducials]
        for start, fiducial, end in zones:
            offset = fiducial - beat_fiducial
            residual[:, start - 1:end] -= reference_beat[:, start - offset - 1:end - offset]
        sections[4] = struct.pack("<HHH", m * interval_us // 1000, beat_fiducial, len(zones)) + b"".join(
            struct.pack("<HIII", 0, *z) for z in zones) + b"".join(struct.pack("<II", s, e) for s, _, e in zones)
        sections[5] = coded_section(reference_beat, avm_nv, interval_us, encoding, table_list, switch_every)
    if measured is not None:  # one measurement block: P onset and end, QRS onset and end, T end, three axes
        block = struct.pack("<8h", 29999, 29999, measured[0], 29999, measured[1], 0, 0, 0)
        sections[7] = struct.pack("<BBHH", 1, 0, 29999, 29999) + block
    sections[6] = coded_section(residual, avm_nv, interval_us, encoding, table_list, switch_every, byte_count_cap)
    return sections


def _section(sid: int, body: bytes, protocol: int) -> bytes:
    body += b"\0" * (len(body) % 2)  # sections have an even length
    reserved = b"SCPECG" if sid == 0 else bytes(6)
    block = struct.pack("<HIBB", sid, 16 + len(body), protocol, protocol) + reserved + body
    return struct.pack("<H", crc(block)) + block


def build_record(sections: dict[int, bytes], protocol: int = 20) -> bytes:
    """A record: section 0 pointing to sections 0-11, then the given sections in id order, every CRC set."""
    blocks = {sid: _section(sid, body, protocol) for sid, body in sorted(sections.items())}
    index = 6 + 16 + 10 * N_POINTERS + 1  # 1-based position of the first section after section 0
    pointers = struct.pack("<HII", 0, 16 + 10 * N_POINTERS, 7)
    for sid in range(1, N_POINTERS):
        length = len(blocks.get(sid, b""))
        pointers += struct.pack("<HII", sid, length, index if length else 0)
        index += length
    rest = _section(0, pointers, protocol) + b"".join(blocks.values())
    tail = struct.pack("<I", 6 + len(rest)) + rest
    return struct.pack("<H", crc(tail)) + tail


def scp_bytes(samples: np.ndarray, **options) -> bytes:
    return build_record(scp_sections(samples, **options))


def pointer_offset(sid: int) -> int:
    """Byte offset of section ``sid``'s (id, length, index) entry in section 0."""
    return 6 + 16 + 10 * sid


def section_offset(record: bytes, sid: int) -> int:
    """Byte offset of section ``sid``'s header, as section 0 says."""
    return struct.unpack_from("<I", record, pointer_offset(sid) + 6)[0] - 1


def reseal(record: bytes | bytearray, *sids: int) -> bytes:
    """The record with the CRCs of sections ``sids`` and of the whole record computed anew."""
    out = bytearray(record)
    for sid in sids:
        start = section_offset(out, sid)
        end = start + struct.unpack_from("<I", out, start + 4)[0]
        struct.pack_into("<H", out, start, crc(out[start + 2:end]))
    struct.pack_into("<H", out, 0, crc(out[2:]))
    return bytes(out)


def patched(record: bytes, offset: int, fmt: str, value: int, *sids: int) -> bytes:
    """The record with ``value`` written at ``offset`` (struct ``fmt``) and the CRCs re-sealed."""
    out = bytearray(record)
    struct.pack_into(fmt, out, offset, value)
    return reseal(out, *sids)
