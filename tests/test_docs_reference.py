"""Code cites facts in the repository's docs/reference.md, by sections that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "reference.md"
# docs/reference.md (optionally in ``...``), then optionally a quoted section name
CITATION = re.compile(r"docs/reference\.md`{0,2}\)?,?\s*\(?\"([^\"]+)\"")


def _sources() -> list[Path]:
    files = [REPO / "README.md", REPO / "DESIGN.md"]
    for top in ("src", "tests", "benchmarks"):
        files += sorted((REPO / top).rglob("*.py"))
    return [f for f in files if f.is_file()]


def test_no_citation_of_a_file_outside_the_repository() -> None:
    outside = [f"{f.relative_to(REPO)}:{i}"
               for f in _sources() if f.name != "test_docs_reference.py"
               for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
               if "REFERENCE.md" in line]
    assert not outside, f"cite docs/reference.md instead: {outside}"


def test_cited_sections_exist() -> None:
    headings = set(re.findall(r"^#+ (.+)$", REFERENCE.read_text(encoding="utf-8"), re.M))
    cited = {(m.group(1), str(f.relative_to(REPO)))
             for f in _sources()
             for m in CITATION.finditer(" ".join(f.read_text(encoding="utf-8").split()))}
    assert len(cited) >= 5  # unet, losses, quality, hpf_params, pansharpen, demo
    missing = sorted(c for c in cited if c[0] not in headings)
    assert not missing, f"sections cited but absent from docs/reference.md: {missing}"
