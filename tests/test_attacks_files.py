"""Attack tour on commands that write a folder: they never delete what they did not write.

``plus export`` and ``plus data build`` refuse a non-empty output folder unless given ``--force``,
never replace the current folder (or one holding it), and build in a staged sibling that is
swapped in at the end, so a failure leaves the old folder as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plus_sdk.cli import main as plus_main
from plus_sdk.files import TargetFolderError, staged_dir

SMALL_PETS = ["--n-train", "4", "--n-test", "2", "--n-ood", "2"]


def keep_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "a.txt"
    kept.write_text("keep\n", encoding="utf-8")
    return kept


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def test_export_refuses_a_non_empty_folder_and_keeps_its_files(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    kept = keep_file(tmp_path / "v")
    assert plus_main(["export", str(tmp_path / "RUN"), str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err and "a.txt" in err, err
    assert kept.read_text(encoding="utf-8") == "keep\n"
    assert siblings(tmp_path / "v") == ["v"]


@pytest.mark.parametrize("out", [".", "..", "./"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_never_replaces_the_current_folder_even_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str], out: str,
                                                                   force: list[str]) -> None:
    here = tmp_path / "work"
    kept = keep_file(here)
    monkeypatch.chdir(here)
    assert plus_main(["export", "../RUN", out, *force]) == 2
    err = capsys.readouterr().err
    assert "current folder" in err and "Traceback" not in err, err
    assert kept.read_text(encoding="utf-8") == "keep\n" and sorted(p.name for p in here.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_export_to_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "bundle"
    target.write_text("not a folder", encoding="utf-8")
    assert plus_main(["export", str(tmp_path / "RUN"), str(target), "--force"]) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text(encoding="utf-8") == "not a folder"


def test_data_build_refuses_a_non_empty_folder_then_replaces_it_with_force(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v"
    kept = keep_file(out)
    assert plus_main(["data", "build", "pets", "--out", str(out), *SMALL_PETS]) == 2
    assert "--force" in capsys.readouterr().err and kept.exists()
    assert plus_main(["data", "build", "pets", "--out", str(out), *SMALL_PETS, "--force"]) == 0
    assert not kept.exists() and (out / "train.jsonl").exists() and (out / "build.json").exists()
    assert siblings(out) == ["v"]  # no staging or replaced folder is left behind


def test_data_build_writes_into_an_empty_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert plus_main(["data", "build", "pets", "--out", str(out), *SMALL_PETS]) == 0
    assert (out / "train.jsonl").exists() and siblings(out) == ["empty"]


def test_a_failed_write_leaves_the_old_folder_and_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    kept = keep_file(target)
    with pytest.raises(RuntimeError, match="halfway"), staged_dir(target, force=True) as staging:
        (staging / "card.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("halfway")
    assert kept.exists() and sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert siblings(target) == ["bundle"]


def test_a_forced_write_swaps_in_the_new_folder_whole(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    keep_file(target)
    with staged_dir(target, force=True) as staging:
        (staging / "card.json").write_text("{}", encoding="utf-8")
        assert (target / "a.txt").exists()  # readers see the old folder until the swap
    assert sorted(p.name for p in target.iterdir()) == ["card.json"] and siblings(target) == ["bundle"]


def test_a_folder_that_fills_while_staging_is_not_replaced_without_force(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with pytest.raises(TargetFolderError, match="not empty"), staged_dir(target) as staging:
        (staging / "card.json").write_text("{}", encoding="utf-8")
        keep_file(target)  # another program wrote there meanwhile
    assert (target / "a.txt").exists() and siblings(target) == ["bundle"]
