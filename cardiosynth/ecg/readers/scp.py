"""SCP-ECG records (EN 1064 / ISO 11073-91064), decoded here from the bytes.

Read here rather than with a library: the one Python package that decodes SCP-ECG's Huffman data
(ecgdatakit) reads only from a path and merely warns on a bad CRC, while an upload must be read from
memory, and a damaged one refused. A record is a CRC and a length, then sections that each start with a 16-byte header (CRC, id,
length, section version, protocol version, 6 reserved bytes); section 0 says where the others are. The
rhythm (section 6) may be Huffman coded (tables in section 2) and stored as first or second differences,
and a reference beat (section 5) may have been subtracted around each QRS complex listed in section 4;
it is added back here. Every declared length and index is checked against the record before anything is
sliced or allocated, so a damaged or hostile file fails fast, with one EcgError naming the section.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..standardise import Recording
from ..types import EcgError
from ._common import SCP_LEAD_CODES, damaged, device_qt_ms

_PREAMBLE = 6  # record CRC (2 bytes) and record length (4 bytes)
_HEADER = 16  # every section's header
_DEFAULT_HUFFMAN = 19999  # "number of tables" that means the table the standard defines
_MAX_TABLES = 16  # each table gets a lookup array; real files have one or two tables
_MAX_PREFIX_BITS = 16  # keeps each lookup array at most 2**16 entries
_WINDOW_BITS = 32  # bits looked at per code: a prefix and the value bits after it
#: A resting ECG holds well under a million samples in all (12 leads x 60 s x 1 kHz = 720 000); the cap
#: keeps a hostile file from making the reader decode and allocate gigabytes.
_MAX_SAMPLES = 4_000_000
#: The largest even value of section 6's 16-bit byte count per lead. A device that stores a longer lead caps the
#: count there and stores that many bytes: the lead is cut, not damaged.
_CAPPED_BYTES = 65534
ENCODINGS = {0: "none", 1: "first difference", 2: "second difference"}

#: SCP-ECG lead codes: the standard 12 and the other leads a device may store, so that those are named
#: (and left out by standardisation, which keeps the standard 12) rather than reported as unknown.
SCP_LEAD_NAMES = {
    **SCP_LEAD_CODES, 0: "unspecified", 9: "V7", 10: "V2R", 11: "V3R", 12: "V4R", 13: "V5R", 14: "V6R",
    15: "V7R", 16: "X", 17: "Y", 18: "Z", 19: "CC5", 20: "CM5", 21: "LA", 22: "RA", 23: "LL",
    65: "inverted aVR", 66: "V8", 67: "V9", 68: "V8R", 69: "V9R", 70: "D", 71: "A", 72: "J",
}


def _error(section: int, problem: str) -> EcgError:
    return EcgError(f"SCP-ECG section {section}: {problem}.")


def _crc(data) -> int:
    """CRC-CCITT (polynomial 0x1021) from 0xFFFF, the checksum EN 1064 puts on the record and each section."""
    return binascii.crc_hqx(data, 0xFFFF)


# --- record and sections -------------------------------------------------------------------------------

def _record(content: bytes) -> memoryview:
    """The record's bytes after checking its declared length and CRC."""
    if len(content) < _PREAMBLE + _HEADER:
        raise EcgError("This SCP-ECG file is too short to hold an ECG; it is truncated or damaged.")
    stored_crc, length = struct.unpack_from("<HI", content)
    if length > len(content):
        raise EcgError(f"This SCP-ECG file is truncated: it declares {length} bytes but holds {len(content)}.")
    if length < _PREAMBLE + _HEADER:
        raise EcgError(f"This SCP-ECG file is damaged: its declared length ({length} bytes) cannot hold an ECG.")
    record = memoryview(content)[:length]
    if _crc(record[2:]) != stored_crc:
        raise EcgError("This SCP-ECG file is damaged: the record CRC does not match its content.")
    return record


def _section(record: memoryview, sid: int, start: int, length: int) -> tuple[memoryview, int]:
    """Body and protocol version of the section said to lie at ``start``, after checking where it lies,
    that its header agrees, and its CRC."""
    if length < _HEADER:
        raise _error(sid, f"its declared length ({length} bytes) is shorter than a section header")
    if start < _PREAMBLE or start + length > len(record):
        raise _error(sid, f"it is declared at bytes {start + 1} to {start + length}, outside the "
                          f"{len(record)}-byte record; the file is damaged")
    stored_crc, header_id, header_length = struct.unpack_from("<HHI", record, start)
    if header_id != sid or header_length != length:
        raise _error(sid, f"its header (section {header_id}, {header_length} bytes) disagrees with the "
                          f"section index ({length} bytes); the file is damaged")
    block = record[start:start + length]
    if _crc(block[2:]) != stored_crc:
        raise _error(sid, "the section CRC does not match its content; the file is damaged")
    return block[_HEADER:], block[9]


def _sections(record: memoryview) -> tuple[dict[int, memoryview], int]:
    """Bodies of the standard sections 1-11 by id, each checked, and the protocol version (20 = 2.0).

    Section 0 lists (id, length, 1-based index) for each section; length 0 means absent. Sections above
    11 are the manufacturer's own and are not read.
    """
    pointers, protocol = _section(record, 0, _PREAMBLE, struct.unpack_from("<I", record, _PREAMBLE + 4)[0])
    sections = {}
    for at in range(0, len(pointers) - 9, 10):
        sid, length, index = struct.unpack_from("<HII", pointers, at)
        if 0 < sid <= 11 and length:
            sections[sid] = _section(record, sid, index - 1, length)[0]
    return sections, protocol


# --- section 1: header tags --------------------------------------------------------------------------

def _header_metadata(body: memoryview) -> dict:
    """Acquisition date and time (tags 25, 26) and the acquiring device (tag 14). Patient tags are skipped
    unread: metadata never holds patient data."""
    tags, at = {}, 0
    while at + 3 <= len(body) and body[at] != 255:
        tag, length = struct.unpack_from("<BH", body, at)
        if at + 3 + length > len(body):
            raise _error(1, f"header field {tag} runs past the end of the section; the file is damaged")
        tags[tag] = bytes(body[at + 3:at + 3 + length])
        at += 3 + length
    meta = {}
    date, time = tags.get(25, b""), tags.get(26, b"")
    if len(date) == 4:
        hour, minute, second = time if len(time) == 3 else (0, 0, 0)
        try:
            meta["acquired"] = datetime(*struct.unpack("<HBB", date), hour, minute, second).isoformat()
        except ValueError:  # an unset or impossible date is not reported
            pass
    device = tags.get(14, b"")
    if len(device) >= 14:  # ids (8 bytes), model (6), ... (36 bytes in all), then five strings
        trade_name = _device_strings(device)[4] if len(device) > 36 else b""
        name = " ".join(part for part in (_printable(trade_name), _printable(device[8:14])) if part)
        if name:
            meta["device"] = name
    return meta


def _device_strings(device: bytes) -> list[bytes]:
    """Tag 14's five strings after its 36 fixed bytes: analysing program revision (its length, with the
    terminating zero, in byte 35), serial number, system software, SCP implementation, manufacturer's trade
    name. Five empty strings stand in for any that are missing."""
    first = device[35]
    if first and 36 + first <= len(device):
        strings = [device[36:36 + first]] + device[36 + first:].split(b"\0")
    else:  # length not given: the strings are read by their terminating zeros alone
        strings = device[36:].split(b"\0")
    return (strings + [b""] * 5)[:5]


def _printable(raw: bytes) -> str:
    """A device string up to its first zero, kept only if it is printable text: a device that fills a field
    with control bytes (a name read as "\\x01") gives no name rather than noise."""
    text = raw.split(b"\0")[0].decode("latin-1").strip()
    return text if text and text.isprintable() else ""


# --- section 7: the device's global measurements --------------------------------------------------------

_NOT_MEASURED = (29998, 29999)  # "rejected" and "not computed" in section 7


def _measured_qt(body: memoryview) -> dict:
    """The device's QT (ms) from section 7: the first reference beat's T-wave end minus its QRS onset. Section
    7 begins with the number of measurement blocks, the number of pacemaker spikes, the mean RR and PP intervals,
    then per block the P onset and end, QRS onset and end and T end (ms into the reference beat) and three
    axes."""
    if len(body) < 16 or body[0] == 0:
        return {}
    qrs_onset, _, t_end = struct.unpack_from("<HHH", body, 10)
    if qrs_onset in _NOT_MEASURED or t_end in _NOT_MEASURED or t_end <= qrs_onset:
        return {}
    return device_qt_ms(str(t_end - qrs_onset))


# --- section 2: Huffman tables -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Code:
    """``prefix_bits`` bits spelling ``code`` (first bit most significant) stand for ``value``, or, with
    ``extra_bits``, are followed by the value as a two's-complement number of that many bits. A switch
    code stands for no sample: it makes table number ``value`` the one to decode with from then on."""

    prefix_bits: int
    code: int
    value: int
    extra_bits: int = 0
    switch: bool = False


@dataclass(frozen=True)
class _Table:
    codes: tuple[_Code, ...]
    width: int  # the longest prefix
    lookup: np.ndarray  # the next `width` bits -> index into codes, -1 where no code starts so


def _table(codes: list[_Code], number: int) -> _Table:
    width = max(code.prefix_bits for code in codes)
    lookup = np.full(1 << width, -1, dtype=np.int32)
    for index, code in enumerate(codes):
        first = code.code << (width - code.prefix_bits)
        span = slice(first, first + (1 << (width - code.prefix_bits)))
        if (lookup[span] >= 0).any():
            raise _error(2, f"Huffman table {number} has codes that begin alike, so it cannot be decoded")
        lookup[span] = index
    return _Table(tuple(codes), width, lookup)


def _default_table() -> _Table:
    """The standard's table 19999: 0 is "0"; +-n (n = 1..8) is n ones, a zero and the sign bit; any other
    value follows "1111111110" as 8 bits or "1111111111" as 16 bits."""
    codes = [_Code(1, 0b0, 0)]
    for n in range(1, 9):
        ones = (1 << n) - 1
        codes += [_Code(n + 2, ones << 2, n), _Code(n + 2, ones << 2 | 1, -n)]
    codes += [_Code(10, 0b1111111110, 0, extra_bits=8), _Code(10, 0b1111111111, 0, extra_bits=16)]
    return _table(codes, 1)


_DEFAULT_TABLE = _default_table()


def _stored_code(body: memoryview, at: int, number: int, n_tables: int) -> _Code:
    """One 9-byte code structure: prefix bits, total bits, mode (0 = switch table), value, code."""
    prefix_bits, total_bits, mode, value, stored = struct.unpack_from("<BBBhI", body, at)
    extra_bits = total_bits - prefix_bits
    if not 1 <= prefix_bits <= _MAX_PREFIX_BITS or not 0 <= extra_bits <= 16:
        raise _error(2, f"Huffman table {number} has a code of {prefix_bits} + {extra_bits} bits; codes of "
                        f"1 to {_MAX_PREFIX_BITS} bits followed by at most 16 value bits are supported")
    if mode == 0 and not (1 <= value <= n_tables and extra_bits == 0):
        raise _error(2, f"Huffman table {number} switches to table {value}, which does not exist")
    # the code is stored with its first bit in the least significant place
    code = int(format(stored & ((1 << prefix_bits) - 1), f"0{prefix_bits}b")[::-1], 2)
    return _Code(prefix_bits, code, value, extra_bits, switch=mode == 0)


def _huffman_tables(body: memoryview) -> tuple[list[_Table], str]:
    if len(body) < 2:
        raise _error(2, "it is too short to say which Huffman tables are used")
    n_tables = struct.unpack_from("<H", body)[0]
    if n_tables == _DEFAULT_HUFFMAN:
        return [_DEFAULT_TABLE], "default"
    if not 1 <= n_tables <= _MAX_TABLES:
        raise _error(2, f"{n_tables} Huffman tables are declared; 1 to {_MAX_TABLES} are supported")
    tables, at = [], 2
    for number in range(1, n_tables + 1):
        n_codes = struct.unpack_from("<H", body, at)[0] if at + 2 <= len(body) else 0
        if n_codes == 0 or at + 2 + 9 * n_codes > len(body):
            raise _error(2, f"Huffman table {number} is empty or runs past the end of the section")
        codes = [_stored_code(body, at + 2 + 9 * k, number, n_tables) for k in range(n_codes)]
        tables.append(_table(codes, number))
        at += 2 + 9 * n_codes
    return tables, "custom"


def _huffman_decode(data: memoryview, n_samples: int, tables: list[_Table], where: str,
                    cut: bool = False) -> list[int]:
    """``n_samples`` values from one lead's bits (most significant bit first), starting with table 1; with
    ``cut`` (the byte count was capped), as many whole values as the bits hold, at most ``n_samples``.

    Every bit position is looked up in every table at once with NumPy; only the walk from one code to
    the next, sequential by nature, is a Python loop, over plain ints.
    """
    n_bits = 8 * len(data)
    if n_samples > n_bits and not cut:  # every sample takes at least one bit
        raise EcgError(f"SCP-ECG {where} holds {len(data)} bytes, too few for {n_samples} samples.")
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.uint64)
    padded = np.concatenate([bits, np.zeros(_WINDOW_BITS, dtype=np.uint64)])
    windows = np.zeros(n_bits, dtype=np.uint64)  # the 32 bits starting at each position
    for k in range(_WINDOW_BITS):
        windows |= padded[k:k + n_bits] << np.uint64(_WINDOW_BITS - 1 - k)
    code_at = [t.lookup[(windows >> np.uint64(_WINDOW_BITS - t.width)).astype(np.intp)].tolist() for t in tables]
    window_at = windows.tolist()
    values: list[int] = []
    table, at = 0, 0
    while len(values) < n_samples:
        if at >= n_bits and cut:
            break
        if at >= n_bits:
            raise EcgError(f"SCP-ECG {where} ends after {len(values)} of {n_samples} samples; "
                           "the file is truncated or damaged.")
        index = code_at[table][at]
        if index < 0:
            raise EcgError(f"SCP-ECG {where} holds a bit pattern that is no code of Huffman table {table + 1}; "
                           "the file is damaged.")
        code = tables[table].codes[index]
        total_bits = code.prefix_bits + code.extra_bits
        if code.switch:
            table = code.value - 1
        elif code.extra_bits:
            raw = window_at[at] >> (_WINDOW_BITS - total_bits) & ((1 << code.extra_bits) - 1)
            values.append(raw - (raw >> (code.extra_bits - 1) << code.extra_bits))
        else:
            values.append(code.value)
        at += total_bits
    if at > n_bits and cut:
        values.pop()  # the cut fell inside it
    elif at > n_bits:
        raise EcgError(f"SCP-ECG {where} ends inside its last sample; the file is truncated or damaged.")
    return values


# --- sections 3 to 6: leads, QRS zones, reference beat, rhythm -----------------------------------------

@dataclass(frozen=True)
class _Leads:
    labels: list[str]
    first_sample: int  # 1-based sample number of every lead's first sample
    n_samples: int
    reference_beat_subtracted: bool
    simultaneous: bool
    warnings: tuple[str, ...] = ()


def _lead_definitions(body: memoryview) -> _Leads:
    """Section 3: number of leads, flags (bit 0: reference beat subtracted, bit 2: all leads recorded
    at once), then per lead its first and last sample number and its lead code."""
    n_leads = body[0] if len(body) >= 2 else 0
    if n_leads == 0 or 2 + 9 * n_leads > len(body):
        raise _error(3, "it defines no leads, or more than it holds; the file is damaged")
    flags = body[1]
    leads = [struct.unpack_from("<IIB", body, 2 + 9 * k) for k in range(n_leads)]
    labels = [SCP_LEAD_NAMES.get(code, f"lead {code}") for _, _, code in leads]
    warnings = ()
    if any(start == 0 < end for start, end, _ in leads):  # devices that count from 0, as programmers do
        leads = [(max(start, 1), end, code) for start, end, code in leads]
        warnings = (("The SCP-ECG file numbers its first sample 0 (the standard numbers from 1); it was read "
                     "as sample 1."),)
    for (start, end, _), label in zip(leads, labels):
        if not 1 <= start <= end:
            raise _error(3, f"lead {label} has the impossible sample range {start} to {end}")
    if len({(start, end) for start, end, _ in leads}) > 1:
        raise _error(3, "the leads cover different sample ranges (they were not recorded at the same time); "
                        "only leads recorded together can be read")
    start, end, _ = leads[0]
    return _Leads(labels, start, end - start + 1, bool(flags & 0x01), bool(flags & 0x04), warnings)


@dataclass(frozen=True)
class _Coded:
    """Sections 5 and 6 alike: amplitude per count (nV), sample interval (µs), difference encoding, then
    a flag (section 6: bimodal compression), a byte count per lead and the leads' data."""

    avm_nv: int
    interval_us: int
    encoding: int
    flag: int
    body: memoryview


def _coded(body: memoryview, section: int, n_leads: int) -> _Coded:
    if len(body) < 6 + 2 * n_leads:
        raise _error(section, "it is too short for its header and per-lead byte counts; the file is damaged")
    avm_nv, interval_us, encoding, flag = struct.unpack_from("<HHBB", body)
    if encoding not in ENCODINGS:
        raise _error(section, f"the difference encoding {encoding} is unknown (0 none, 1 first difference, "
                              "2 second difference)")
    if avm_nv == 0 or interval_us == 0:
        raise _error(section, "the amplitude multiplier or the sample interval is zero; the file is damaged")
    return _Coded(avm_nv, interval_us, encoding, flag, body)


def _undo_differences(values, encoding: int) -> np.ndarray:
    """Amplitudes from first or second differences (whose first one or two values are amplitudes). The
    result is taken modulo 2**16, as 16-bit encoders compute, so that differences that wrapped around
    decode exactly."""
    x = np.asarray(values, dtype=np.int64)
    if encoding == 1:
        x = np.cumsum(x)
    elif encoding == 2 and x.size > 1:
        slopes = np.cumsum(np.concatenate(([x[1] - x[0]], x[2:])))
        x = np.concatenate(([x[0]], x[0] + np.cumsum(slopes)))
    return x.astype(np.int16)


def _samples(coded: _Coded, section: int, labels: list[str], n_samples: int, tables: list[_Table],
             may_be_cut: bool = False) -> np.ndarray:
    """(leads, samples) in counts: each lead's bytes, Huffman-decoded (or raw 16-bit) and undifferenced.

    With ``may_be_cut`` (the rhythm), a lead whose byte count sits at the 16-bit cap (:data:`_CAPPED_BYTES`)
    and holds fewer samples than declared is read as far as it goes, and every lead is cut to the shortest:
    the caller says so. Too few bytes under the cap are damage, refused as before."""
    sizes = struct.unpack_from(f"<{len(labels)}H", coded.body, 6)
    at = 6 + 2 * len(labels)
    if at + sum(sizes) > len(coded.body):
        raise _error(section, "its per-lead byte counts add up to more than the section holds; the file is damaged")
    leads = []
    for label, size in zip(labels, sizes):
        data = coded.body[at:at + size]
        at += size
        cut = may_be_cut and size >= _CAPPED_BYTES
        if tables:
            values = _huffman_decode(data, n_samples, tables, f"section {section}, lead {label},", cut)
        elif 2 * n_samples > size and not cut:
            raise _error(section, f"lead {label} holds {size} bytes, too few for {n_samples} samples")
        else:
            values = np.frombuffer(data, dtype="<i2", count=min(n_samples, size // 2))
        leads.append(_undo_differences(values, coded.encoding))
    shortest = min(lead.size for lead in leads)
    return np.stack([lead[:shortest] for lead in leads])


def _reference_beat_nv(sections: dict[int, memoryview], leads: _Leads, rhythm: _Coded,
                       tables: list[_Table]) -> np.ndarray:
    """The reference beat (section 5) in nV where section 4 says it was subtracted, zero elsewhere:
    over each zone of a type-0 QRS complex, placed so that its fiducial point meets the complex's."""
    for sid in (4, 5):
        if sid not in sections:
            raise _error(sid, "it is missing, but section 3 says a reference beat was subtracted from the "
                              "rhythm, which cannot be restored without it")
    zones_body = sections[4]
    length_ms, beat_fiducial, n_qrs = struct.unpack_from("<HHH", zones_body) if len(zones_body) >= 6 else (0, 0, 0)
    if length_ms == 0 or 6 + 14 * n_qrs > len(zones_body):
        raise _error(4, "the reference beat length or the QRS zones are missing or truncated; the file is damaged")
    beat = _coded(sections[5], 5, len(leads.labels))
    if beat.interval_us != rhythm.interval_us:
        raise _error(5, "the reference beat is sampled at another rate than the rhythm (bimodal compression), "
                        "which is not supported")
    n_beat = round(length_ms * 1000 / beat.interval_us)
    beat_nv = _samples(beat, 5, leads.labels, n_beat, tables).astype(np.int64) * beat.avm_nv
    added = np.zeros((len(leads.labels), leads.n_samples), dtype=np.int64)
    first, last = leads.first_sample, leads.first_sample + leads.n_samples - 1
    for k in range(n_qrs):
        beat_type, start, fiducial, end = struct.unpack_from("<HIII", zones_body, 6 + 14 * k)
        offset = fiducial - beat_fiducial  # beat sample j (1-based) lies at rhythm sample j + offset
        lo, hi = max(start, first, 1 + offset), min(end, last, n_beat + offset)
        if beat_type == 0 and lo <= hi:
            added[:, lo - first:hi - first + 1] += beat_nv[:, lo - offset - 1:hi - offset]
    return added


def _read(content: bytes) -> Recording:
    sections, protocol = _sections(_record(content))
    if 6 not in sections:
        raise EcgError("This SCP-ECG file has no rhythm data (section 6 is missing); it may hold only an "
                       "averaged beat, which is not a recording.")
    if 3 not in sections:
        raise _error(3, "the lead definitions are missing, so the leads cannot be told apart")
    leads = _lead_definitions(sections[3])
    if len(leads.labels) * leads.n_samples > _MAX_SAMPLES:
        raise _error(3, f"{len(leads.labels)} leads of {leads.n_samples} samples are declared, far more than "
                        "a resting ECG holds; long-term (Holter) recordings are not supported")
    tables, huffman = _huffman_tables(sections[2]) if 2 in sections else ([], "none")
    rhythm = _coded(sections[6], 6, len(leads.labels))
    if rhythm.flag and protocol < 30:  # from version 3.0 the byte is reserved
        raise _error(6, "bimodal compression is not supported")
    signal_nv = _samples(rhythm, 6, leads.labels, leads.n_samples, tables, may_be_cut=True).astype(np.int64)
    signal_nv *= rhythm.avm_nv
    warnings = list(leads.warnings)
    n_read = signal_nv.shape[1]
    if n_read < leads.n_samples:
        fs = 1e6 / rhythm.interval_us
        warnings.append(f"The recording was cut: the SCP-ECG file declares {leads.n_samples:,} samples per lead "
                        f"({leads.n_samples / fs:.1f} s) but its 16-bit byte counts stop at {_CAPPED_BYTES:,} "
                        f"bytes, which hold {n_read:,} ({n_read / fs:.1f} s); those were read.")
    if leads.reference_beat_subtracted:
        signal_nv += _reference_beat_nv(sections, leads, rhythm, tables)[:, :n_read]
    metadata = {
        "scp_version": f"{protocol / 10:.1f}" if protocol else "unknown",
        "encoding": ENCODINGS[rhythm.encoding],
        "huffman": huffman,
        "reference_beat_subtracted": leads.reference_beat_subtracted,
        "simultaneous_leads": leads.simultaneous,
        "amplitude_nv_per_count": rhythm.avm_nv,
        **(_header_metadata(sections[1]) if 1 in sections else {}),
        **(_measured_qt(sections[7]) if 7 in sections else {}),
    }
    if warnings:
        metadata["warnings"] = warnings
    return Recording(leads.labels, signal_nv / 1e6, 1e6 / rhythm.interval_us, "scp_ecg", True, metadata)


def read_scp(content: bytes) -> Recording:
    """The rhythm of every lead of an SCP-ECG record, in mV; any damage raises one :class:`EcgError`."""
    with damaged("SCP-ECG"):
        return _read(content)
