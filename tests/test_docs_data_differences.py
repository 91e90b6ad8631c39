"""docs/data.md lists every builder option in its builder's table of differences from VPL, from
PRISM's code and from the paper: a new option without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plus_sdk.training.data.pets import PetsConfig
from plus_sdk.training.data.prism import PrismConfig
from plus_sdk.training.data.ultrafeedback import UltraFeedbackConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "data.md"
TABLES = {"pets": PetsConfig, "ultrafeedback": UltraFeedbackConfig, "prism": PrismConfig}


def difference_tables(text: str) -> dict[str, list[str]]:
    """name -> the first cells of the table right after each ``<!-- differences: name -->`` mark."""
    tables = {}
    for match in re.finditer(r"<!--\s*differences:\s*(\S+)\s*-->\n((?:\|.*\n)+)", text):
        rows = match.group(2).splitlines()[2:]  # past the header and the |---| line
        tables[match.group(1)] = [row.split("|")[1] for row in rows]
    return tables


def options_named(cells: list[str]) -> set[str]:
    """Every `backticked` name in the option cells."""
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def test_difference_tables_are_read_from_their_marks() -> None:
    text = "x\n<!-- differences: demo -->\n| option | a |\n|---|---|\n| `seed`, `n` | b |\n| `k` | c |\n\nafter\n"
    tables = difference_tables(text)
    assert tables == {"demo": [" `seed`, `n` ", " `k` "]}
    assert options_named(tables["demo"]) == {"seed", "n", "k"}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_builder_option_has_a_row_in_its_differences_table(name: str) -> None:
    tables = difference_tables(DOC.read_text(encoding="utf-8"))
    assert name in tables, f"docs/data.md has no <!-- differences: {name} --> table"
    named = options_named(tables[name])
    missing = sorted(set(TABLES[name].model_fields) - named)
    assert not missing, f"docs/data.md, differences table '{name}': no row for {missing}"
    unknown = sorted(named - set(TABLES[name].model_fields))
    assert not unknown, f"docs/data.md, differences table '{name}': rows for options that do not exist: {unknown}"
