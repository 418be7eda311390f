"""Small helpers shared by the readers: unit conversion, safe XML parsing, wrapping library errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..types import EcgError

_UNIT_TO_MV = {
    "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "nv": 1e-6, "nanovolt": 1e-6, "nanovolts": 1e-6,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
}

# SCP-ECG lead codes (also used by DICOM as "5.6.3-9-<code>").
SCP_LEAD_CODES = {1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6",
                  61: "III", 62: "aVR", 63: "aVL", 64: "aVF"}


def mv_per_unit(unit: str | None) -> float | None:
    """Factor from a unit string ("uV", "MICROVOLTS", "mV", ...) to millivolts; None if unknown."""
    if unit is None:
        return None
    key = re.sub(r"[\s_]", "", str(unit)).lower().replace("pertick", "").replace("perlsb", "")
    return _UNIT_TO_MV.get(key)


def local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(content: bytes) -> Element:
    """Parse untrusted XML safely (no entity expansion, no external resources)."""
    try:
        return fromstring(content)
    except DefusedXmlException:
        raise EcgError("This XML file declares entities or external references, which are refused for "
                       "security reasons; it is not a plain ECG export.") from None
    except LookupError as err:  # an encoding in the XML declaration that Python does not know
        raise EcgError(f"This XML file declares a character encoding that cannot be read ({err}).") from None
    except (ParseError, ValueError) as err:
        raise EcgError(f"This XML file is damaged or incomplete and cannot be read ({err}).") from None


def find_all(root: Element, name: str) -> Iterator[Element]:
    """All descendants with local tag ``name``, whatever their namespace."""
    return (el for el in root.iter() if local(el.tag) == name)


def find_first(root: Element, name: str) -> Element | None:
    return next(find_all(root, name), None)


def child(el: Element, name: str) -> Element | None:
    return next((c for c in el if local(c.tag) == name), None)


def child_text(el: Element, name: str) -> str | None:
    c = child(el, name)
    return None if c is None or c.text is None else c.text.strip()


def device_qt_ms(text: str | None) -> dict:
    """``{"device_qt_ms": QT}`` from the QT a device measured and stored in the file (ms), if it is a plausible
    number; else nothing. Kept so that our QT can be checked against the device's own."""
    try:
        value = float(text) if text else float("nan")
    except ValueError:
        return {}
    return {"device_qt_ms": value} if 150 <= value <= 800 else {}


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/]+){2,}")


def without_paths(text: str) -> str:
    """Library error text with every absolute path cut to its file name: an upload's server-side
    temporary folder means nothing to the uploader and is not theirs to see."""
    return _ABSOLUTE_PATH.sub(lambda m: re.split(r"[\\/]", m.group())[-1], text)


@contextlib.contextmanager
def damaged(format_name: str) -> Iterator[None]:
    """Turn any library failure while decoding a file into one clinician-readable :class:`EcgError`."""
    try:
        yield
    except EcgError:
        raise
    except MemoryError:
        raise EcgError(f"This {format_name} file is too large to read.") from None
    except Exception as err:  # noqa: BLE001 - libraries raise anything on damaged files
        raise EcgError(
            f"This {format_name} file could not be read; it may be truncated or damaged "
            f"({type(err).__name__}: {without_paths(str(err)[:1000])[:200]})."
        ) from None
