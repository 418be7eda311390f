"""Recognise an ECG file by its content (magic bytes, XML root element), not by its extension.

Uploads arrive renamed ("ecg.txt", "export.dat", no extension at all); the bytes are the only thing we can
trust. The extension is used only to tell apart formats whose content does not identify them (WFDB).
"""

from __future__ import annotations

import re

from ..types import EcgError

#: Every format read_ecg reads, as a clinician names them: the one list the app and the error messages show.
SUPPORTED_FORMATS = ("WFDB", "EDF/EDF+", "DICOM ECG and hemodynamic waveforms", "SCP-ECG", "HL7 aECG",
                     "Philips Sierra XML", "GE MUSE XML", "GE CardioSoft / UK Biobank XML", "CSV with lead names",
                     "NumPy arrays")

XML_ROOTS = {
    "restingecg": "ge_muse_xml",
    "restingecgdata": "philips_xml",
    "annotatedecg": "hl7_aecg",
    "cardiologyxml": "cardiosoft_xml",
}
_WFDB_HEADER = re.compile(rb"^[^\s#/][^\s]*(/\d+)?\s+\d+(\s+[\d.]+(/[\d.]+)?(\([^)]*\))?)?(\s+\d+)?", re.M)
_XML_START = re.compile(rb"<([^?!/\s>][^\s>/]*)")


def _utf8_head(content: bytes, size: int = 65536) -> bytes:
    """The start of the content as UTF-8 (exports from Windows tools are often UTF-16 with a BOM)."""
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return content[: 2 * size].decode("utf-16", errors="replace").encode("utf-8")
    return content[:size]


def xml_root_name(content: bytes) -> str | None:
    """Local name of the root element of an XML document, from its first start tag."""
    text = _utf8_head(content).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return None
    # skip comments, which may contain anything
    text = re.sub(rb"<!--.*?-->", b"", text, flags=re.S)
    match = _XML_START.search(text)
    if not match:
        return None
    return match.group(1).decode("ascii", errors="replace").rsplit(":", 1)[-1]


def _looks_like_text(content: bytes) -> bool:
    head = _utf8_head(content, 4096)
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as err:
        if err.start > len(head) - 4:  # a multi-byte character cut at the end of the window
            return True
        try:
            head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
            return False
        return sum(b < 9 or 13 < b < 32 for b in head) == 0


def sniff(content: bytes) -> str:
    """The format of ``content``: one of the reader keys, or an :class:`EcgError` saying what it is not."""
    if not content or not content.strip(b"\x00 \t\r\n"):
        raise EcgError("The file is empty.")
    if content[128:132] == b"DICM":
        return "dicom"
    if content[:8] == b"0       " or content[:8] == b"\xffBIOSEMI":
        return "edf"
    if content[16:22] == b"SCPECG":
        return "scp_ecg"
    if content[:6] == b"\x93NUMPY":
        return "npy"
    if content[:4] in (b"PK\x03\x04",):
        raise EcgError("This is a ZIP archive; please extract the ECG file and upload it on its own.")
    if content[:4] == b"%PDF":
        raise EcgError("This is a PDF (a printed ECG): please upload the digital ECG file from the device "
                       "or archive (e.g. XML, DICOM, EDF), not a PDF or image.")
    if content[:3] == b"\xff\xd8\xff" or content[:8] == b"\x89PNG\r\n\x1a\n":
        raise EcgError("This is an image, not ECG data: please upload the digital ECG file from the device "
                       "or archive (e.g. XML, DICOM, EDF).")
    root = xml_root_name(content)
    if root is not None:
        fmt = XML_ROOTS.get(root.lower())
        if fmt is None:
            raise EcgError(
                f"This XML file is not an ECG export we can read (its content is <{root}>); supported XML: "
                "GE MUSE, Philips Sierra, HL7 aECG and GE CardioSoft / UK Biobank."
            )
        return fmt
    if _looks_like_text(content):
        first = content.lstrip().split(b"\n", 1)[0]
        if _WFDB_HEADER.match(first) and re.search(rb"\.(dat|mat)\s", content):
            return "wfdb_header"
        return "text"
    raise EcgError(f"This file is not a recognised ECG format; CardioSynth reads {', '.join(SUPPORTED_FORMATS)}.")
