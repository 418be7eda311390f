"""Every relative link in the README and in docs/*.md points at a file or folder of the repository."""

from __future__ import annotations

import re

from cardiosynth.paths import REPO_ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_relative_links_resolve():
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^([a-z][a-z0-9+.-]*:|#)", target):  # http(s)://, mailto:, in-page anchors
                continue
            if not (page.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target}")
    assert len(pages) > 1
    assert broken == [], "\n".join(broken)
