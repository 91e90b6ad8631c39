"""The pages agree with the code and with each other: one name for the default bundle (from the one
constant), one spelling of the custom-data setting, every page reachable from the README, no repeated bullet."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from plus_sdk.bundle import DEFAULT_BUNDLE

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", REPO / "adapters" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CURRENTLY = re.compile(r"default bundle \(currently `([^`]+)`")


def test_the_readme_links_every_page_in_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted((REPO / "docs").glob("*.md")) if f"(docs/{p.name})" not in readme]
    assert not missing, f"README.md links no {missing}"


def test_every_page_that_names_the_default_bundle_names_the_one_constant() -> None:
    named = {p.relative_to(REPO): CURRENTLY.findall(p.read_text(encoding="utf-8")) for p in PAGES}
    for page in ("README.md", "adapters/README.md", "docs/guide.md", "docs/own_users.md"):
        assert named[Path(page)], f"{page} does not say 'the default bundle (currently `{DEFAULT_BUNDLE}`)'"
    assert {name for names in named.values() for name in names} == {DEFAULT_BUNDLE}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "from_pretrained()          # embedded default" not in text, page


def test_plus_judge_help_names_the_default_bundle_from_the_constant(capsys: pytest.CaptureFixture[str]) -> None:
    from plus_sdk.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["judge", "--help"])
    assert f"currently {DEFAULT_BUNDLE}" in " ".join(capsys.readouterr().out.split())


def test_the_custom_data_setting_has_one_spelling_in_the_pages() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"data\.dataset[=:]\s*jsonl", text), f"{page}: write data.dataset=files"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_repeats_a_bullet(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    bullets = Counter(line.strip() for line in text.splitlines() if re.match(r"\s*[-*] \S", line))
    assert not [b for b, n in bullets.items() if n > 1 and len(b) > 20]
