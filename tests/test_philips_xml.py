"""The Philips XML decoder: sample-exact against the sierraecg package on every real example, the variants
sierraecg cannot read (uncompressed, Plain) read to the same leads, XLI round trips of fuzz/xli_writer.py, and
one clear EcgError for each damaged or unsupported file."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import sierraecg
from fuzz.seeds import short_philips
from fuzz.xli_writer import xli_chunk

from cardiosynth.ecg import EcgError, read_ecg
from cardiosynth.ecg.readers import _common
from cardiosynth.ecg.readers.philips import read_philips, xli_decode
from cardiosynth.paths import REPO_ROOT

ASSET = REPO_ROOT / "assets" / "ecg" / "129DYPRG.XML"


def _read(content: bytes):
    return read_philips(content, _common.parse_xml(content))


def _examples(ecg_root) -> list:
    files = sorted((ecg_root / "formats" / "philips_sierra_xml").glob("*"))
    assert len(files) >= 2
    return files


def test_every_real_example_matches_sierraecg_sample_for_sample(ecg_root):
    for path in _examples(ecg_root):
        content = path.read_bytes()
        ours, reference = _read(content), sierraecg.read_file(io.BytesIO(content))
        assert ours.labels == [lead.label for lead in reference.leads]
        counts = np.stack([np.asarray(lead.samples, dtype=np.float64) for lead in reference.leads])
        assert np.array_equal(ours.signal, counts * ours.metadata["uv_per_lsb"] * 1e-3), path.name
        assert ours.fs == 500 and ours.metadata["compression"] == "XLI"


@pytest.mark.parametrize("n", [3, 4, 7, 200, 5500])
def test_xli_round_trip_through_our_decoder_and_sierraecg(n):
    rng = np.random.default_rng(n)
    leads = [np.cumsum(rng.integers(-40, 40, n)).astype(np.int16) for _ in range(3)]
    data = b"".join(xli_chunk(lead) for lead in leads)
    for decoded in (xli_decode(data, 3, n), sierraecg.xli.xli_decode(data, ["a", "b", "c"])):
        assert all(np.array_equal(a, b) for a, b in zip(decoded, leads)) and len(decoded) == 3


def test_uncompressed_and_plain_files_read_to_the_same_leads_as_xli(ecg_root):
    """sierraecg refuses uncompressed files (it writes into a read-only buffer) and reads no Plain data."""
    for path in _examples(ecg_root):
        xli, uncompressed = short_philips(path.read_bytes())
        expected = _read(xli)
        assert _read(uncompressed).metadata["compression"] == "none"
        assert np.array_equal(_read(uncompressed).signal, expected.signal)
        with pytest.raises(ValueError, match="read-only"):
            sierraecg.read_file(io.BytesIO(uncompressed))
        codec = "utf-16" if uncompressed[:2] == b"\xff\xfe" else "utf-8"
        text = uncompressed.decode(codec)
        match = re.search(r"(<parsedwaveforms[^>]*>)(.*?)(</parsedwaveforms>)", text, flags=re.S)
        values = np.frombuffer(base64.b64decode(match.group(2)), dtype="<i2")
        head = match.group(1).replace('dataencoding="Base64"', 'dataencoding="Plain"')
        plain = text[:match.start()] + head + "\n".join(" ".join(map(str, row)) for row in values.reshape(-1, 25)) \
            + match.group(3) + text[match.end():]
        assert np.array_equal(_read(plain.encode(codec)).signal, expected.signal)


def _edited(pattern: str, replacement: str) -> bytes:
    content = ASSET.read_bytes()
    edited = re.sub(pattern.encode(), replacement.encode(), content, count=1, flags=re.S)
    assert edited != content
    return edited


def _chunk_text(lead_bytes: bytes) -> str:
    return base64.b64encode(lead_bytes).decode()


@pytest.mark.parametrize("pattern, replacement, message", [
    (r"<documentversion>1.03</documentversion>", "<documentversion>2.00</documentversion>", "2.00"),
    (r'durationperchannel="11000"', 'durationperchannel="99999999999"', "samples per lead"),
    (r'durationperchannel="11000"', 'durationperchannel="-5"', "must be positive"),
    (r"<samplingrate>500</samplingrate>", "<samplingrate>fast</samplingrate>", "sampling rate"),
    (r'dataencoding="Base64"', 'dataencoding="Hex"', "'Hex'"),
    (r'compressmethod="XLI"', 'compressmethod="ZIP"', "'ZIP'"),
    (r"<acquisitiontype>STD-12</acquisitiontype>", "<acquisitiontype>EASI</acquisitiontype>", "EASI"),
    (r"(<parsedwaveforms[^>]*>).*?(</parsedwaveforms>)", r"\1@@not base64@@\2", "not valid Base64"),
    # one lead's chunk declares more bytes than follow
    (r"(<parsedwaveforms[^>]*>).*?(</parsedwaveforms>)", r"\g<1>" + _chunk_text(b"\xff\x00\x00\x00\0\0\0\0abc")
     + r"\2", "truncated"),
    # an LZW stream whose second code names a string not yet built
    (r"(<parsedwaveforms[^>]*>).*?(</parsedwaveforms>)", r"\g<1>" + _chunk_text(
        b"\x04\x00\x00\x00\0\0\0\0" + int("0000000001" "1111000000" "0000", 2).to_bytes(3, "big")[:3] + b"\0")
     + r"\2", "names nothing"),
])
def test_damaged_or_unsupported_files_get_one_clear_error(pattern, replacement, message):
    with pytest.raises(EcgError, match=re.escape(message)) as info:
        read_ecg(_edited(pattern, replacement))
    assert "Traceback" not in str(info.value)


def test_a_decompression_bomb_is_refused_before_it_grows():
    """Codes that each add one byte to the longest string decode quadratically; the declared samples bound it."""
    codes = [65] + list(range(256, 1022))
    bits = "".join(format(c, "010b") for c in codes)
    bits += "0" * (-len(bits) % 8)
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
    chunk = len(payload).to_bytes(4, "little") + b"\0\0\0\0" + payload
    with pytest.raises(EcgError, match="more samples than it declares"):
        xli_decode(chunk, 1, 5500)


def test_xli_leads_of_different_lengths_are_refused_before_the_limb_leads_are_rebuilt():
    """Found by the fuzzer: one lead a sample short reached the reconstruction and raised a numpy error."""
    content = ASSET.read_bytes()
    match = re.search(rb"(<parsedwaveforms[^>]*>)(.*?)(</parsedwaveforms>)", content, flags=re.S)
    leads = xli_decode(base64.b64decode(match.group(2)), 12, 5500)
    leads[1] = leads[1][:-1]
    body = base64.b64encode(b"".join(xli_chunk(lead) for lead in leads))
    with pytest.raises(EcgError, match="different lengths"):
        read_ecg(content[:match.start(2)] + body + content[match.end(2):])
