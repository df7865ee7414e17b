"""The curation document: its schema, and reading a document into data plus every error.

Nothing here writes to the database; `services.curation` applies what passes. Errors are strings
`path: message` with JSON paths (`workflows[3].parameters[1].type: ...`): the schema's (pydantic)
and the curation rules' (`services.curation_rules`, the same ones the edit form applies).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflows_app.models import ParameterDefinition, WorkflowCuration
from workflows_app.services.curation_rules import (
    Problem,
    approver_role_problems,
    curation_problems,
    parameter_count_problems,
    parameter_problems,
    parameter_set_problems,
    resume_role_problems,
)

FORMAT = "nexthink-portal-curation"
VERSION = 1
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
ParameterType = Literal["text", "choice", "boolean", "number"]


def _max(model: type[Any], name: str) -> int:
    """The database column's length limit, so the document refuses what the table would."""
    return int(model._meta.get_field(name).max_length)


class _Strict(BaseModel):
    """No coercion ("yes" is not a boolean) and no unknown keys (a typo is an error)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ParameterDoc(_Strict):
    """One parameter definition in the document; its position is its place in the list."""

    name: str = Field(max_length=_max(ParameterDefinition, "name"))
    label: str = Field("", max_length=_max(ParameterDefinition, "label"))
    help_text: str = Field("", max_length=_max(ParameterDefinition, "help_text"))
    type: ParameterType = "text"
    required: bool = False
    default: str = Field("", max_length=_max(ParameterDefinition, "default"))
    choices: list[str] = Field(default_factory=list)
    pattern: str = Field("", max_length=_max(ParameterDefinition, "pattern"))
    secret: bool = False


class WorkflowCurationDoc(_Strict):
    """One workflow's curation, keyed by its NQL id."""

    nql_id: str
    self_service: bool = False
    title: str = Field("", max_length=_max(WorkflowCuration, "title"))
    description: str = ""
    category: str = Field("", max_length=_max(WorkflowCuration, "category"))
    confirmation_text: str = ""
    allowed_roles: list[str] = Field(default_factory=list)
    resume_roles: list[str] = Field(default_factory=list)
    # Four-eyes: its runs wait for an approver ("" admins, or "Helpdesk": helpdesk and admins).
    requires_approval: bool = False
    approver_role: str = Field("", max_length=_max(WorkflowCuration, "approver_role"))
    parameters: list[ParameterDoc] = Field(default_factory=list)


class RemoteActionDoc(_Strict):
    """A registered remote action of the classic platform (its curation is a `workflows` entry
    keyed by its UID, like a workflow's by its NQL id)."""

    uid: str = Field(max_length=64)
    name: str = Field(max_length=255)
    description: str = ""


class CurationDocument(_Strict):
    """The whole exported curation of a portal."""

    format: Literal["nexthink-portal-curation"]
    version: Literal[1]
    exported_at: Annotated[datetime | None, Field(strict=False)] = None
    # Registered before the workflows' entries apply, in the same transaction (optional).
    remote_actions: list[RemoteActionDoc] = Field(default_factory=list)
    workflows: list[WorkflowCurationDoc]
    # Remediation flows (flow inputs), checked by the flow rules once the workflows' part is
    # applied, in the same transaction (services/flows.py).
    flows: list[dict[str, Any]] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True == 1 in Python; a boolean is still not a version
            raise ValueError("Input should be 1")
        return value


class _WhoMayRun(BaseModel):
    """The two fields the role rules read, validated alone so other broken fields hide nothing."""

    model_config = ConfigDict(extra="ignore", strict=True)
    self_service: bool = False
    allowed_roles: list[str] = Field(default_factory=list)


class _WhoMayResume(BaseModel):
    """The field the resume rule reads, validated alone like `_WhoMayRun`."""

    model_config = ConfigDict(extra="ignore", strict=True)
    resume_roles: list[str] = Field(default_factory=list)


class CurationImportError(Exception):
    """The document was refused; `errors` lists every problem as `path: message`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the curation document; nothing was applied.")


def parse_document(doc: dict[str, Any] | str | bytes) -> tuple[Any, list[str]]:
    """Read a document: (Python data, keys given twice); raises saying where broken text is."""
    if isinstance(doc, dict):
        _refuse_nul(doc)
        return doc, []
    if len(doc) > MAX_DOCUMENT_BYTES:
        raise CurationImportError([f"document: larger than {MAX_DOCUMENT_BYTES // 2**20} MB."])
    if isinstance(doc, bytes | bytearray):
        try:
            doc = bytes(doc).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CurationImportError(
                [
                    f"document: not UTF-8 text (byte 0x{doc[exc.start]:02x} at offset "
                    f"{exc.start}); save the file as UTF-8 JSON, as the portal's export writes it."
                ]
            ) from None
    text = doc.removeprefix("\ufeff")
    if not text.strip():
        raise CurationImportError(["document: empty; upload or paste an exported curation."])
    duplicates: list[str] = []
    try:
        data = json.loads(text, object_pairs_hook=lambda pairs: _object(pairs, duplicates))
    except json.JSONDecodeError as exc:
        raise CurationImportError(
            [f"document: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."]
        ) from None
    except RecursionError:
        raise CurationImportError(["document: nested too deeply to be a curation."]) from None
    except ValueError:  # a number past Python's int-string limit (4,300 digits)
        raise CurationImportError(
            [
                f"document: a number has more than {sys.get_int_max_str_digits():,} digits; no "
                "curation field takes a number, so remove it (or write it as a string)."
            ]
        ) from None
    _refuse_nul(data)
    return data, duplicates


def _refuse_nul(data: Any) -> None:
    """Refuse text holding NUL (JSON's \\u0000): PostgreSQL cannot store it, nor look it up."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("document", data)]  # a loop: the data may nest deeply
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(f"{path}: contains a NUL character (\\u0000), which cannot be stored.")
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key).replace("\x00", "\\u0000")
                where = name if path == "document" else f"{path}.{name}"
                if "\x00" in str(key):
                    found.append(f"{where}: the key contains a NUL character (\\u0000).")
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    if found:
        raise CurationImportError(sorted(found))


def _object(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    """Build a JSON object, noting keys given twice (json would silently keep the last)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            duplicates.append(f"document: the key '{key}' appears twice in one object.")
        result[key] = value
    return result


def listed_remote_actions(data: Any) -> list[tuple[int, RemoteActionDoc]]:
    """The well-formed remote action entries, by index (the schema reports the others)."""
    entries = data.get("remote_actions") if isinstance(data, dict) else None
    found: list[tuple[int, RemoteActionDoc]] = []
    for index, raw in enumerate(entries if isinstance(entries, list) else []):
        try:
            found.append((index, RemoteActionDoc.model_validate(raw)))
        except ValidationError:
            continue
    return found


def listed_nql_ids(data: Any) -> set[str]:
    """The NQL ids the document names, however broken the rest of it is."""
    workflows = data.get("workflows") if isinstance(data, dict) else None
    if not isinstance(workflows, list):
        return set()
    ids = (w.get("nql_id") for w in workflows if isinstance(w, dict))
    return {nql_id for nql_id in ids if isinstance(nql_id, str)}


def validate_document(
    data: Any, known: Collection[str]
) -> tuple[CurationDocument | None, list[str]]:
    """The typed document and every error: the schema's first, then the curation rules'."""
    found: list[tuple[tuple[int, int], str]] = []
    document: CurationDocument | None = None
    try:
        document = CurationDocument.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            found.append((_order(error["loc"]), f"{_path(error['loc'])}: {error['msg']}"))
    workflows = data.get("workflows") if isinstance(data, dict) else None
    first_at: dict[str, int] = {}
    for index, raw in enumerate(workflows if isinstance(workflows, list) else []):
        if isinstance(raw, dict):
            for message in _workflow_errors(raw, index, known, first_at):
                found.append(((index, -1), message))
            for position, message in _parameter_errors(raw, index):
                found.append(((index, position), message))
    found.sort(key=lambda pair: pair[0])  # stable: document order, schema errors first
    return document, [message for _, message in found]


def _workflow_errors(
    raw: dict[str, Any], index: int, known: Collection[str], first_at: dict[str, int]
) -> list[str]:
    """A workflow entry's own problems: unknown or repeated NQL id, the role rules."""
    at = f"workflows[{index}]"
    errors: list[str] = []
    nql_id = raw.get("nql_id")
    if isinstance(nql_id, str):
        if nql_id not in known:
            errors.append(f"{at}.nql_id: no workflow '{nql_id}' in the catalogue")
        if nql_id in first_at:
            errors.append(
                f"{at}.nql_id: '{nql_id}' is already listed at workflows[{first_at[nql_id]}]"
            )
        else:
            first_at[nql_id] = index
    problems: list[Problem] = []
    # The schema errors already say what is wrong with these fields when they do not validate.
    try:
        who = _WhoMayRun.model_validate(raw)
    except ValidationError:
        pass
    else:
        problems += curation_problems(
            self_service=who.self_service, allowed_roles=who.allowed_roles
        )
    try:
        resumers = _WhoMayResume.model_validate(raw)
    except ValidationError:
        pass
    else:
        problems += resume_role_problems(resumers.resume_roles)
    approver = raw.get("approver_role", "")
    if isinstance(approver, str):  # the schema error says what else is wrong with it
        problems += approver_role_problems(approver)
    return errors + [_message(at, problem) for problem in problems]


def _parameter_errors(raw: dict[str, Any], index: int) -> list[tuple[int, str]]:
    """Rule errors of each parameter that passed the schema, and repeated names, by position."""
    parameters = raw.get("parameters")
    if not isinstance(parameters, list):
        return []
    at = f"workflows[{index}]"
    errors = [(-1, _message(at, problem)) for problem in parameter_count_problems(len(parameters))]
    names: list[str] = []
    for position, item in enumerate(parameters):
        name = item.get("name") if isinstance(item, dict) else None
        names.append(name if isinstance(name, str) else "")
        try:
            parameter = ParameterDoc.model_validate(item)
        except ValidationError:
            continue
        at = f"workflows[{index}].parameters[{position}]"
        errors += [(position, _message(at, problem)) for problem in parameter_problems(parameter)]
    for position, problem in parameter_set_problems(names):
        errors.append((position, _message(f"workflows[{index}].parameters[{position}]", problem)))
    errors.sort(key=lambda pair: pair[0])
    return errors


def _message(at: str, problem: Problem) -> str:
    return f"{at}.{problem.path}: {problem.message}"


def _path(loc: Sequence[str | int]) -> str:
    """A pydantic location as a JSON path: ('workflows', 3, 'type') -> 'workflows[3].type'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "document"


def _order(loc: Sequence[str | int]) -> tuple[int, int]:
    """Where in the document an error sits: (workflow index, parameter index), -1 for none."""
    workflow = loc[1] if len(loc) > 1 and loc[0] == "workflows" else -1
    parameter = loc[3] if len(loc) > 3 and loc[2] == "parameters" else -1
    return (
        workflow if isinstance(workflow, int) else -1,
        parameter if isinstance(parameter, int) else -1,
    )
