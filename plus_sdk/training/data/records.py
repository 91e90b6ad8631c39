"""The one training record every method and evaluation reads.

A record is one target preference pair of one user together with that user's context (the
input of the summarizer, ICL and VPL) and what is known about the user (type, true
description for the oracle). Stored as JSONL (one record per line) or a Hugging Face
``datasets`` folder (Arrow) with the same fields; in Arrow the nested ``context`` and ``meta``
fields are stored as JSON strings so that every row has the same schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plus_sdk.files import atomic_write_text, staged_dir
from plus_sdk.types import PreferenceExample, UserContext

Split = Literal["train", "test", "ood"]


class TrainingRecord(BaseModel):
    """One (user context, target pair) row."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    dataset: str = Field(description="Dataset name, e.g. 'pets', 'pets-ood', 'uf-p2', 'prism'.")
    split: Split = Field(description="'train', 'test' or 'ood'.")
    user_id: str = Field(min_length=1, description="Stable id of the user.")
    user_type: str | None = Field(default=None, description="Known user type (analysis, oracle), if any.")
    oracle: str | None = Field(default=None, description="True description of the user, for oracle models.")
    context: UserContext = Field(description="What the summarizer / ICL / VPL may see about the user.")
    prompt: str = Field(min_length=1, description="Prompt of the target pair.")
    chosen: str = Field(min_length=1, description="Response this user prefers.")
    rejected: str = Field(min_length=1, description="Response this user does not prefer.")
    controversial: bool = Field(default=False, description="True if user types disagree on this pair.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Builder-specific extras (pair type, ...).")

    @model_validator(mode="after")
    def _target_not_in_context(self) -> TrainingRecord:
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected are identical")
        for example in self.context.examples:
            if example.prompt == self.prompt and {example.chosen, example.rejected} == {self.chosen, self.rejected}:
                raise ValueError("the target pair also appears in its own context (leak)")
        return self

    @property
    def pair(self) -> PreferenceExample:
        return PreferenceExample(prompt=self.prompt, chosen=self.chosen, rejected=self.rejected)


class RecordError(ValueError):
    """A malformed record, with the file and line where it was found."""


def write_jsonl(records: Iterable[TrainingRecord], path: str | os.PathLike[str]) -> int:
    """Write records to a JSONL file atomically; returns the count."""
    lines = [r.model_dump_json() for r in records]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[TrainingRecord]:
    """Records of a JSONL file; a bad line raises ``RecordError`` naming the line number."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield TrainingRecord.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise RecordError(f"{path}:{number}: invalid record: {exc}") from exc


class RowProblem(BaseModel):
    """One problem of one row of a record file: where it is and what to fix."""

    line: int = Field(description="1-based line number in the file.")
    field: str = Field(description="Dotted path of the bad field ('' for the whole row).")
    message: str = Field(description="What is wrong.")

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


#: field named for a row-level rule (a model validator reports no location of its own)
_ROW_RULE_FIELDS = {"chosen and rejected are identical": "chosen, rejected",
                    "the target pair also appears in its own context": "context.examples"}
#: field named for a line that is not one JSON object
WHOLE_LINE = "(whole line)"


def _row_field(loc: tuple[Any, ...], message: str) -> str:
    field = ".".join(str(part) for part in loc)
    if field:
        return field
    return next((name for rule, name in _ROW_RULE_FIELDS.items() if rule in message), WHOLE_LINE)


def validate_jsonl(path: str | os.PathLike[str]) -> tuple[int, list[RowProblem]]:
    """Check every line of a JSONL record file; returns (rows read, every problem found).

    Unlike ``read_jsonl`` it does not stop at the first bad row, so a user can fix a file in one
    pass. Each pydantic error becomes one problem naming the line and the field. A line that is
    not UTF-8 text (a binary file) ends the check with one problem saying so.
    """
    problems: list[RowProblem] = []
    rows = 0
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(RowProblem(line=number, field=WHOLE_LINE, message=(
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}): is this a JSONL "
                    "record file?")))
                break
            if not line.strip():
                continue
            rows += 1
            try:
                data = json.loads(line, parse_constant=_no_constant)
            except ValueError as exc:
                detail = f"{exc.msg}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
                message = f"not valid JSON ({detail}): each line must be one JSON object"
                problems.append(RowProblem(line=number, field=WHOLE_LINE, message=message))
                continue
            if not isinstance(data, dict):
                problems.append(RowProblem(line=number, field=WHOLE_LINE, message="a row must be a JSON object"))
                continue
            try:
                TrainingRecord.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    problems.append(RowProblem(line=number, field=_row_field(tuple(error["loc"]), error["msg"]),
                                               message=error["msg"]))
    return rows, problems


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; use a number or null")


def read_jsonl(path: str | os.PathLike[str]) -> list[TrainingRecord]:
    """All records of a JSONL file."""
    return list(iter_jsonl(path))


#: fields stored as JSON strings in Arrow (their nested shape varies between rows)
_JSON_FIELDS = ("context", "meta")


def to_arrow_row(record: TrainingRecord) -> dict[str, Any]:
    """One record as a flat row: nested fields become JSON strings."""
    row = record.model_dump(mode="json")
    for name in _JSON_FIELDS:
        row[name] = json.dumps(row[name], ensure_ascii=False, sort_keys=True)
    return row


def from_arrow_row(row: dict[str, Any]) -> TrainingRecord:
    """Inverse of ``to_arrow_row``."""
    data = dict(row)
    for name in _JSON_FIELDS:
        if isinstance(data.get(name), str):
            data[name] = json.loads(data[name])
    return TrainingRecord.model_validate(data)


def write_arrow(records: Iterable[TrainingRecord], folder: str | os.PathLike[str]) -> int:
    """Save records as a Hugging Face ``datasets`` folder (``load_from_disk``), atomically."""
    from datasets import Dataset  # optional: datasets (training extra), imported on first use (about 1.4 s)

    rows = [to_arrow_row(r) for r in records]
    names = list(TrainingRecord.model_fields)
    dataset = Dataset.from_dict({name: [row[name] for row in rows] for name in names})
    with staged_dir(folder) as staging:
        dataset.save_to_disk(str(staging))
    return len(rows)


def read_arrow(folder: str | os.PathLike[str]) -> list[TrainingRecord]:
    """Records of a folder written by ``write_arrow``; a bad row raises ``RecordError`` naming it."""
    from datasets import load_from_disk  # optional: datasets (training extra), imported on first use (about 1.4 s)

    state = Path(folder) / "state.json"
    if state.exists() and not json.loads(state.read_text(encoding="utf-8")).get("_data_files"):
        return []  # an empty split: datasets writes no Arrow file for it
    dataset = load_from_disk(str(folder))
    records = []
    for number, row in enumerate(dataset, start=1):
        try:
            records.append(from_arrow_row(row))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise RecordError(f"{folder}: row {number}: invalid record: {exc}") from exc
    return records


def read_records(path: str | os.PathLike[str]) -> list[TrainingRecord]:
    """Records of a JSONL file or of a ``datasets`` folder, whichever ``path`` is."""
    if Path(path).is_dir():
        return read_arrow(path)
    return read_jsonl(path)
