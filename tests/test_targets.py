"""Tests for workflows_app.targets: reading pasted and uploaded targets (no database needed)."""

import json
import math
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows_app.targets import (
    MAX_ERRORS,
    MAX_TARGETS_PER_RUN,
    SID_PATTERN,
    UPN_PATTERN,
    UUID_PATTERN,
    ParsedTargets,
    Target,
    TargetError,
    TargetKind,
    api_version,
    batches,
    check_dependency,
    classify,
    execution_request,
    fits_v1,
    from_row,
    from_session_text,
    parse_csv,
    parse_text,
    parse_upload,
    to_row,
    to_session_text,
)

K = TargetKind
UUID_A = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
UUID_B = "0b6e1c2a-9d4f-4e8a-a1b2-c3d4e5f60718"
SID_A = "S-1-5-21-1004336348-1177238915-682003330-512"
SPEC = Path(__file__).resolve().parent.parent / "workflows_app/simulator/openapi"


def pairs(parsed: ParsedTargets) -> list[tuple[TargetKind, str]]:
    """The (kind, value) of each parsed target, in order."""
    return [(t.kind, t.value) for t in parsed.targets]


def only_error(parsed: ParsedTargets) -> str:
    """The reason of the single error a parse produced."""
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0].reason


# --- the patterns are the spec's ---------------------------------------------------------------


def test_patterns_are_exactly_the_specs() -> None:
    schemas = json.loads((SPEC / "nexthink-workflows-openapi.json").read_text())["components"][
        "schemas"
    ]
    device, user = schemas["DeviceData"]["properties"], schemas["UserData"]["properties"]
    assert device["uid"]["pattern"] == device["collectorUid"]["pattern"] == UUID_PATTERN
    assert user["uid"]["pattern"] == UUID_PATTERN
    assert user["sid"]["pattern"] == SID_PATTERN
    assert user["upn"]["pattern"] == UPN_PATTERN


# --- recognising each kind by shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "value"),
    [
        (UUID_A.upper(), K.DEVICE_COLLECTOR, UUID_A),
        ("{" + UUID_A + "}", K.DEVICE_COLLECTOR, UUID_A),
        (SID_A, K.USER_SID, SID_A),
        ("s-1-5-18", K.USER_SID, "S-1-5-18"),
        ("Jane.Doe@Example.COM", K.USER_UPN, "jane.doe@example.com"),
        ("DESKTOP-4F2K9QX", K.DEVICE_NAME, "DESKTOP-4F2K9QX"),
        ("lab_pc.corp.example.com", K.DEVICE_NAME, "lab_pc.corp.example.com"),
        ("Mac-de-Zoé", K.DEVICE_NAME, "Mac-de-Zoé"),
        ("S-100-PC", K.DEVICE_NAME, "S-100-PC"),
        ("0", K.DEVICE_NAME, "0"),
    ],
)
def test_bare_line_is_recognised_by_its_shape(line: str, kind: TargetKind, value: str) -> None:
    assert classify(line) == (kind, value)
    assert pairs(parse_text(f"  {line}\t\n")) == [(kind, value)]


@pytest.mark.parametrize(
    ("line", "kind", "value"),
    [
        (f"collector:{UUID_A}", K.DEVICE_COLLECTOR, UUID_A),
        (f"Collector-UID: {UUID_A.upper()}", K.DEVICE_COLLECTOR, UUID_A),
        (f"uid:{UUID_A}", K.DEVICE_UID, UUID_A),
        (f"DEVICE-UID:{UUID_A}", K.DEVICE_UID, UUID_A),
        (f"device_uid:{UUID_A}", K.DEVICE_UID, UUID_A),
        (f"user-uid:{UUID_A}", K.USER_UID, UUID_A),
        (f"User_UID:{UUID_A.upper()}", K.USER_UID, UUID_A),
        ("name:PC-01", K.DEVICE_NAME, "PC-01"),
        ("device-name:PC-01", K.DEVICE_NAME, "PC-01"),
        (f"SID:{SID_A}", K.USER_SID, SID_A),
        ("sid:0", K.USER_SID, "0"),
        ("upn: John@Example.org ", K.USER_UPN, "john@example.org"),
    ],
)
def test_prefix_says_what_the_value_is(line: str, kind: TargetKind, value: str) -> None:
    assert pairs(parse_text(line)) == [(kind, value)]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (f"name:{UUID_A}", UUID_A),  # would be a Collector UUID without the prefix
        (f"name:{SID_A}", SID_A),  # would be a SID
        ("name:Jane's MacBook Pro", "Jane's MacBook Pro"),  # a space is refused on a bare line
        ("name:S-1", "S-1"),  # would be a broken SID
    ],
)
def test_name_prefix_settles_ambiguity(line: str, value: str) -> None:
    assert pairs(parse_text(line)) == [(K.DEVICE_NAME, value)]


def test_same_uuid_can_be_collector_device_uid_and_user_uid() -> None:
    parsed = parse_text(f"{UUID_A}\nuid:{UUID_A}\nuser-uid:{UUID_A}\n")
    assert pairs(parsed) == [
        (K.DEVICE_COLLECTOR, UUID_A),
        (K.DEVICE_UID, UUID_A),
        (K.USER_UID, UUID_A),
    ]
    assert parsed.duplicates == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("collector:PC-01", "after 'collector:': not a valid UUID"),
        (f"uid:{UUID_A[:-1]}", "8-4-4-4-12"),
        ("sid:jane", "not a valid SID"),
        ("upn:jane", "not a valid UPN"),
        ("user-uid:", "no value; expected a user UID"),
        ("name:PC\u200b01", "U+200B"),
    ],
)
def test_prefixed_value_of_the_wrong_form_names_the_expected_form(line: str, expected: str) -> None:
    parsed = parse_text(line)
    assert parsed.targets == []
    assert expected in only_error(parsed)
    assert parsed.errors[0].line == 1 and parsed.errors[0].text == line


def test_unknown_prefix_is_an_error_listing_the_known_ones() -> None:
    reason = only_error(parse_text("foo:bar"))
    assert "unknown prefix 'foo:'" in reason
    for prefix in ("collector:", "device-uid:", "name:", "sid:", "upn:", "user-uid:"):
        assert prefix in reason


def test_colon_without_a_word_before_it_is_not_a_device_name() -> None:
    reason = only_error(parse_text("00:1a:2b:3c:4d:5e"))
    assert "':' is not allowed in a device name" in reason


# --- malformed lines -----------------------------------------------------------------------------


def test_malformed_lines_are_all_reported_with_line_numbers_and_reasons() -> None:
    text = "\n".join(
        [
            "# header comment",
            UUID_A,
            "3fa85f64-5717-4562-b3fc",  # 3: truncated UUID
            "3fa85f6457174562b3fc2c963f66afa6",  # 4: hyphens missing
            "3fa85f64-5717-4562-b3fc-2c963f66afaz",  # 5: not hex
            "S-1",  # 6: too few numbers
            "S-1-5-21-x",  # 7: not a number
            "S-1-2-3-4-5-6-7-8-9-10-11",  # 8: too many numbers
            "jane@@example.com",  # 9
            "jane@example",  # 10
            "jane doe@example.com",  # 11
            "PC 01",  # 12
            "PC1,PC2",  # 13
            "PC1;PC2",  # 14
            "PC|01",  # 15
            "x" * 256,  # 16
            "PC\x0701",  # 17
            "PC-01",
        ]
    )
    parsed = parse_text(text)
    assert pairs(parsed) == [(K.DEVICE_COLLECTOR, UUID_A), (K.DEVICE_NAME, "PC-01")]
    reasons = {e.line: e.reason for e in parsed.errors}
    assert sorted(reasons) == list(range(3, 18))
    assert "not a valid UUID: it has 8-4-4-4 digits" in reasons[3]
    assert "hyphens are missing" in reasons[4]
    assert "'z' is not a hexadecimal digit" in reasons[5]
    assert "write name: before it" in reasons[5]
    assert "it has 1 number, not 2 to 10" in reasons[6]
    assert "'x' is not a number" in reasons[7]
    assert "it has 11 numbers" in reasons[8]
    assert "2 '@' signs" in reasons[9]
    assert "'example' does not end with" in reasons[10]
    assert "' ' is not allowed before '@'" in reasons[11]
    assert "contains a space: put one target per line" in reasons[12]
    assert "contains a comma" in reasons[13]
    assert "contains a semicolon" in reasons[14]
    assert "'|' is not allowed in a device name" in reasons[15]
    assert "too long for a device name (256 characters" in reasons[16]
    assert "U+0007" in reasons[17]


def test_error_text_is_cut_to_100_characters() -> None:
    parsed = parse_text("x y" * 1000)
    assert len(parsed.errors[0].text) == 100


def test_classify_raises_target_error_with_reason() -> None:
    with pytest.raises(TargetError) as caught:
        classify("S-1")
    assert "not a valid SID" in caught.value.reason


def test_errors_beyond_the_cap_are_counted_not_listed() -> None:
    parsed = parse_text("\n".join(f"bad line {i}" for i in range(MAX_ERRORS + 250)))
    assert len(parsed.errors) == MAX_ERRORS
    assert parsed.errors_truncated == 250
    assert parsed.error_count == MAX_ERRORS + 250
    assert not parsed.ok


# --- blank lines, comments, whitespace, duplicates -----------------------------------------------


def test_blank_lines_comments_and_invisible_characters_are_skipped() -> None:
    text = (
        "\ufeff# list for ticket 42\r\n\r\n   \r\n\u200bPC-01\u200b\r\n\t# indented comment\rPC-02"
    )
    parsed = parse_text(text)
    assert [(t.value, t.line) for t in parsed.targets] == [("PC-01", 4), ("PC-02", 6)]
    assert parsed.total_lines == 6
    assert parsed.ok


def test_duplicates_are_dropped_and_counted_case_insensitively() -> None:
    text = "\n".join(
        [
            "PC-01",
            "pc-01",
            UUID_A,
            UUID_A.upper(),
            "{" + UUID_A + "}",
            f"collector:{UUID_A}",
            "jane@example.com",
            "JANE@EXAMPLE.COM",
            "s-1-5-18",
            "S-1-5-18",
            "name:PC-01",
        ]
    )
    parsed = parse_text(text)
    assert pairs(parsed) == [
        (K.DEVICE_NAME, "PC-01"),
        (K.DEVICE_COLLECTOR, UUID_A),
        (K.USER_UPN, "jane@example.com"),
        (K.USER_SID, "S-1-5-18"),
    ]
    assert [t.line for t in parsed.targets] == [1, 3, 7, 9]
    assert parsed.duplicates == 7
    assert parsed.ok


def test_device_name_keeps_the_case_first_typed() -> None:
    assert pairs(parse_text("Lab-PC\nLAB-PC")) == [(K.DEVICE_NAME, "Lab-PC")]


# --- whole-input errors --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only a comment\n"])
def test_no_targets_is_an_error(text: str) -> None:
    parsed = parse_text(text)
    assert parsed.targets == []
    assert only_error(parsed).startswith("No targets")
    assert parsed.errors[0].line is None


def test_more_than_the_limit_is_an_error_saying_how_many_and_the_limit() -> None:
    parsed = parse_text("\n".join(f"PC-{i}" for i in range(MAX_TARGETS_PER_RUN + 1)))
    reason = only_error(parsed)
    assert "100,001 targets" in reason and "100,000" in reason
    assert parsed.errors[0].line is None
    assert not parsed.ok


def test_the_limit_itself_is_fine_and_duplicates_do_not_count() -> None:
    lines = [f"PC-{i}" for i in range(MAX_TARGETS_PER_RUN)] + ["pc-0", "PC-1"]
    parsed = parse_text("\n".join(lines))
    assert parsed.ok
    assert len(parsed.targets) == MAX_TARGETS_PER_RUN
    assert parsed.duplicates == 2


def test_hundred_thousand_mixed_lines_give_as_many_targets_of_each_kind() -> None:
    # How fast is measured by `manage.py benchmark` (its parse_text figure), not here.
    kinds = [lambda i: str(uuid.UUID(int=i)), lambda i: f"S-1-5-21-{i}-500", lambda i: f"PC-{i}"]
    text = "\n".join(kinds[i % 3](i) for i in range(MAX_TARGETS_PER_RUN))
    parsed = parse_text(text)
    assert parsed.ok and len(parsed.targets) == MAX_TARGETS_PER_RUN
    assert Counter(t.kind for t in parsed.targets) == {
        K.DEVICE_COLLECTOR: 33_334,
        K.USER_SID: 33_333,
        K.DEVICE_NAME: 33_333,
    }
    assert [t.line for t in parsed.targets] == list(range(1, MAX_TARGETS_PER_RUN + 1))
    assert parsed.targets[-1] == Target(K.DEVICE_COLLECTOR, str(uuid.UUID(int=99_999)), 100_000)


# --- CSV uploads ---------------------------------------------------------------------------------


def test_csv_with_header_and_several_columns() -> None:
    data = (
        "Device Name;SID;upn;target\r\n"
        "# a comment row\r\n"
        f"PC-01;{SID_A};;\r\n"
        '"PC-02";;Jane@Example.com;uid:' + UUID_A + "\r\n"
        "\r\n"
        "pc-01;;;\r\n"
        "PC 03;s-1-5-18;;\r\n"
    ).encode()
    parsed = parse_csv(data)
    assert [(t.kind, t.value, t.line) for t in parsed.targets] == [
        (K.DEVICE_NAME, "PC-01", 3),
        (K.USER_SID, SID_A, 3),
        (K.DEVICE_NAME, "PC-02", 4),
        (K.USER_UPN, "jane@example.com", 4),
        (K.DEVICE_UID, UUID_A, 4),
        (K.DEVICE_NAME, "PC 03", 7),  # a device_name column may hold a space
        (K.USER_SID, "S-1-5-18", 7),
    ]
    assert parsed.duplicates == 1
    assert parsed.total_lines == 7
    assert parsed.ok


def test_csv_typed_column_rejects_values_of_another_kind_with_the_file_line_number() -> None:
    parsed = parse_csv(b"collector_uid,user_uid\n" + f"{UUID_A},{UUID_B}\nPC-01,\n".encode())
    assert pairs(parsed) == [(K.DEVICE_COLLECTOR, UUID_A), (K.USER_UID, UUID_B)]
    assert parsed.errors[0].line == 3
    assert "not a valid UUID" in parsed.errors[0].reason


def test_csv_with_a_wrong_column_lists_unknown_and_accepted_columns() -> None:
    parsed = parse_csv(b"device_name,OS,last seen\nPC-01,Windows,today\n")
    reason = only_error(parsed)
    assert parsed.targets == []
    assert parsed.errors[0].line == 1
    assert "'OS', 'last seen'" in reason
    for name in ("target", "device_name", "collector_uid", "device_uid", "sid", "upn", "user_uid"):
        assert name in reason


def test_csv_with_several_columns_and_no_header_asks_for_one() -> None:
    reason = only_error(parse_csv(f"PC-01,{SID_A}\n".encode()))
    assert "needs a first row naming them" in reason


def test_csv_row_with_more_values_than_columns_is_an_error() -> None:
    parsed = parse_csv(b"device_name,sid\nPC-01,S-1-5-18,extra\nPC-02\n")
    assert pairs(parsed) == [(K.DEVICE_NAME, "PC-02")]
    assert parsed.errors[0].line == 2
    assert "3 values but the first row names 2 columns" in parsed.errors[0].reason


def test_csv_single_column_without_header_reads_like_pasted_lines() -> None:
    parsed = parse_csv(f"PC-01\n{UUID_A}\nsid:{SID_A}\nbad name\n".encode())
    assert pairs(parsed) == [
        (K.DEVICE_NAME, "PC-01"),
        (K.DEVICE_COLLECTOR, UUID_A),
        (K.USER_SID, SID_A),
    ]
    assert parsed.errors[0].line == 4


@pytest.mark.parametrize(
    ("header", "kind"), [("Target", K.DEVICE_NAME), ("device_name", K.DEVICE_NAME)]
)
def test_csv_single_column_header_is_skipped(header: str, kind: TargetKind) -> None:
    parsed = parse_csv(f"{header}\nPC-01\n".encode())
    assert [(t.kind, t.value, t.line) for t in parsed.targets] == [(kind, "PC-01", 2)]


def test_csv_single_upn_column_checks_every_value_as_a_upn() -> None:
    parsed = parse_csv(b"UPN\nA@B.example\nPC-01\n")
    assert pairs(parsed) == [(K.USER_UPN, "a@b.example")]
    assert parsed.errors[0].line == 3 and "no '@'" in parsed.errors[0].reason


def test_csv_with_utf8_bom_is_read() -> None:
    parsed = parse_csv(b"\xef\xbb\xbfdevice_name,sid\r\nMac-de-Zo\xc3\xa9,S-1-5-18\r\n")
    assert pairs(parsed) == [(K.DEVICE_NAME, "Mac-de-Zoé"), (K.USER_SID, "S-1-5-18")]


@pytest.mark.parametrize(("bom", "position"), [(b"", 9), (b"\xef\xbb\xbf", 12)])
def test_non_utf8_upload_says_which_byte_and_where(bom: bytes, position: int) -> None:
    parsed = parse_csv(bom + b"target\nZo\xe9-PC\n")  # Latin-1 "é"
    assert parsed.targets == []
    assert only_error(parsed) == (
        f"The file is not UTF-8 text (byte 0xE9 at position {position}); save it as UTF-8 CSV"
    )
    assert parsed.errors[0].line == 2


def test_spreadsheet_saved_as_csv_name_is_refused() -> None:
    assert "spreadsheet" in only_error(parse_csv(b"PK\x03\x04\x14\x00binary"))


def test_upload_dispatches_on_the_extension() -> None:
    assert pairs(parse_upload(b"device_name,sid\nPC-01,\n", "targets.CSV")) == [
        (K.DEVICE_NAME, "PC-01")
    ]
    assert pairs(parse_upload(b"PC-01\r\n", r"C:\Users\agent\list.txt")) == [
        (K.DEVICE_NAME, "PC-01")
    ]
    assert "save it as UTF-8 text" in only_error(parse_upload(b"\xff\xfeP\x00", "list.txt"))
    assert "CSV UTF-8" in only_error(parse_upload(b"PK\x03\x04", "list.xlsx"))
    assert "'.pdf'" in only_error(parse_upload(b"%PDF", "list.pdf"))


# --- helpers for the pipeline --------------------------------------------------------------------


def targets_of(text: str) -> list[Target]:
    """Parse text that is known to be valid."""
    parsed = parse_text(text)
    assert parsed.ok, parsed.errors
    return parsed.targets


def test_v1_takes_only_collector_uuids_and_sids() -> None:
    v1 = targets_of(f"{UUID_A}\n{SID_A}\n{UUID_B}")
    assert fits_v1(v1) and api_version(v1) == "v1"
    assert execution_request("#w", v1, None, "v1").payload() == {
        "workflowId": "#w",
        "devices": [UUID_A, UUID_B],
        "users": [SID_A],
    }
    v2_only = targets_of(f"{UUID_A}\nPC-01")
    assert not fits_v1(v2_only) and api_version(v2_only) == "v2"
    with pytest.raises(ValueError, match="v1"):
        execution_request("#w", v2_only, None, "v1")


def test_v2_request_uses_the_specs_keys() -> None:
    targets = targets_of(
        f"{UUID_A}\nuid:{UUID_B}\nPC-01\n{SID_A}\njane@example.com\nuser-uid:{UUID_A}"
    )
    assert execution_request("#w", targets, {"Reason": "INC1"}, "v2").payload() == {
        "workflowId": "#w",
        "devices": [{"collectorUid": UUID_A}, {"uid": UUID_B}, {"name": "PC-01"}],
        "users": [{"sid": SID_A}, {"upn": "jane@example.com"}, {"uid": UUID_A}],
        "params": {"Reason": "INC1"},
    }
    assert [t.is_device for t in targets] == [True, True, True, False, False, False]
    assert [t.is_user for t in targets] == [False, False, False, True, True, True]


def test_a_request_keeps_each_list_in_the_order_given_whatever_the_mix() -> None:
    targets = targets_of(f"{SID_A}\n{UUID_B}\nS-1-5-21-1-2\n{UUID_A}")
    request = execution_request("#w", targets, None, "v1").payload()
    assert (request["devices"], request["users"]) == ([UUID_B, UUID_A], [SID_A, "S-1-5-21-1-2"])


def test_a_request_refuses_what_the_spec_refuses() -> None:
    with pytest.raises(ValueError, match="at least one device or user"):
        execution_request("#w", [], None, "v2")
    with pytest.raises(ValueError):
        execution_request("#w", [Target(K.USER_UPN, "not a upn", 1)], None, "v2")


def test_dependency_checks() -> None:
    devices, users = targets_of("PC-01\nPC-02"), targets_of(f"\n{SID_A}")
    both = devices + users
    assert check_dependency(devices, "DEVICE") == []
    assert check_dependency(users, "USER") == []
    assert check_dependency(both, "USER_AND_DEVICE") == []
    assert check_dependency([], "NONE") == []
    assert check_dependency(both, "DEVICE") == [
        "This workflow runs on devices only: remove the 1 user (the first is on line 2)."
    ]
    assert check_dependency(both, "user") == [
        "This workflow runs on users only: remove the 2 devices (the first is on line 1)."
    ]
    assert check_dependency(users, "DEVICE") == [
        "This workflow runs on devices only: remove the 1 user (the first is on line 2).",
        "This workflow needs at least one device.",
    ]
    assert check_dependency(devices, "USER_AND_DEVICE") == [
        "This workflow needs at least one user."
    ]
    assert check_dependency(devices, "NONE") == [
        "This workflow takes no targets: remove the 2 targets."
    ]
    assert "unknown" in check_dependency(devices, "SOMETHING_NEW")[0]


def test_batches_respect_the_per_request_limit_of_each_list() -> None:
    targets = [Target(K.DEVICE_NAME, f"PC-{i}", i) for i in range(25_000)]
    targets += [Target(K.USER_SID, f"S-1-5-{i}", 25_000 + i) for i in range(3)]
    chunks = batches(targets)
    assert [len(c) for c in chunks] == [10_003, 10_000, 5_000]
    assert sum(chunks, []) != targets  # users ride along in the first request
    assert sorted(sum(chunks, []), key=lambda t: t.line) == targets


@pytest.mark.parametrize("size", [0, 10_001])
def test_batch_size_outside_the_api_limit_is_refused(size: int) -> None:
    with pytest.raises(ValueError):
        batches([], size=size)


# --- properties ----------------------------------------------------------------------------------


def mixed_case(text: str, flips: list[bool]) -> str:
    """Upper-case the letters whose flip is set, to test case-insensitive handling."""
    return "".join(c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(text))


flips = st.lists(st.booleans(), min_size=1, max_size=8)
uuids = st.builds(lambda u, f: (mixed_case(str(u), f), str(u)), st.uuids(), flips)
sids = st.builds(
    lambda first, numbers: (
        f"{first}-" + "-".join(map(str, numbers)),
        "S-" + "-".join(map(str, numbers)),
    ),
    st.sampled_from("Ss"),
    st.lists(st.integers(0, 2**64), min_size=2, max_size=10),
)
_local = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-", min_size=1, max_size=20
)
_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_tld = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=6)
upns = st.builds(
    lambda local, labels, tld: (
        f"{local}@{'.'.join(labels)}.{tld}",
        f"{local}@{'.'.join(labels)}.{tld}".lower(),
    ),
    _local,
    st.lists(_label, min_size=1, max_size=3),
    _tld,
)
# Names that cannot be mistaken for a UUID or a SID: they start with a letter that is neither a
# hexadecimal digit nor 's', and are too short for the 36-character UUID shape.
device_names = st.builds(
    lambda first, rest: (first + rest, first + rest),
    st.sampled_from("ghijklmnopqrtuvwxyzGHIJKLMNOPQRTUVWXYZ"),
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", max_size=30),
)
BY_KIND = {
    K.DEVICE_COLLECTOR: uuids,
    K.USER_SID: sids,
    K.USER_UPN: upns,
    K.DEVICE_NAME: device_names,
}


@given(st.sampled_from(list(BY_KIND)).flatmap(lambda k: st.tuples(st.just(k), BY_KIND[k])))
def test_generated_values_are_recognised_as_their_kind(
    case: tuple[TargetKind, tuple[str, str]],
) -> None:
    kind, (raw, normalised) = case
    assert classify(raw) == (kind, normalised)
    assert classify(normalised) == (kind, normalised)  # normalising is idempotent


@given(uuids, st.sampled_from([K.DEVICE_COLLECTOR, K.DEVICE_UID, K.USER_UID]))
def test_uuid_prefixes_round_trip_lowercased(value: tuple[str, str], kind: TargetKind) -> None:
    raw, normalised = value
    prefix = {K.DEVICE_COLLECTOR: "collector", K.DEVICE_UID: "uid", K.USER_UID: "user-uid"}[kind]
    assert pairs(parse_text(f"{prefix}:{raw}")) == [(kind, normalised)]


# A line as an agent might paste it: bare or prefixed, with stray whitespace around it.
any_value = st.sampled_from(list(BY_KIND)).flatmap(lambda k: st.tuples(st.just(k), BY_KIND[k]))
lines = st.lists(
    st.tuples(any_value, st.booleans(), st.sampled_from(["", " ", "\t", "  "])),
    min_size=1,
    max_size=40,
)
PREFIX = {
    K.DEVICE_COLLECTOR: "collector:",
    K.USER_SID: "sid:",
    K.USER_UPN: "UPN: ",
    K.DEVICE_NAME: "name:",
}


def dedup_key(kind: TargetKind, value: str) -> tuple[TargetKind, str]:
    """The identity under which two targets are duplicates."""
    return (kind, value.casefold() if kind is K.DEVICE_NAME else value)


@given(lines, st.data())
def test_parsing_preserves_order_and_dedup_is_idempotent(
    generated: list[tuple[tuple[TargetKind, tuple[str, str]], bool, str]], data: st.DataObject
) -> None:
    # Repeat some lines so that duplicates occur.
    repeats = data.draw(st.lists(st.sampled_from(generated), max_size=10))
    generated = generated + repeats
    text = "\n".join(
        f"{pad}{PREFIX[kind] if prefixed else ''}{raw}{pad}"
        for (kind, (raw, _)), prefixed, pad in generated
    )
    parsed = parse_text(text)
    assert parsed.ok, parsed.errors

    expected: list[tuple[TargetKind, str]] = []
    seen: set[tuple[TargetKind, str]] = set()
    for (kind, (_, normalised)), _prefixed, _pad in generated:
        if dedup_key(kind, normalised) not in seen:
            seen.add(dedup_key(kind, normalised))
            expected.append((kind, normalised))
    assert [dedup_key(k, v) for k, v in pairs(parsed)] == [dedup_key(k, v) for k, v in expected]
    assert parsed.duplicates == len(generated) - len(expected)
    assert [t.line for t in parsed.targets] == sorted(t.line for t in parsed.targets)

    again = parse_text("\n".join(f"{PREFIX[t.kind]}{t.value}" for t in parsed.targets))
    assert pairs(again) == pairs(parsed)
    assert again.duplicates == 0 and again.ok

    # What the session and the database keep of each target reads back as the same target.
    from_session = from_session_text(to_session_text(parsed.targets))
    assert [(t.kind, t.value) for t in from_session] == pairs(parsed)
    assert [t.line for t in from_session] == list(range(1, len(parsed.targets) + 1))
    from_rows = [from_row(*to_row(t), t.line) for t in parsed.targets]
    assert from_rows == parsed.targets


targets_strategy = st.lists(st.sampled_from(list(TargetKind)), max_size=200).map(
    lambda kinds: [Target(kind, f"v{i}", i) for i, kind in enumerate(kinds)]
)


@given(targets_strategy, st.integers(1, 30))
def test_batches_never_exceed_the_size_and_lose_nothing(targets: list[Target], size: int) -> None:
    chunks = batches(targets, size=size)
    for chunk in chunks:
        assert chunk
        assert sum(t.is_device for t in chunk) <= size
        assert sum(t.is_user for t in chunk) <= size
        assert [t.line for t in chunk] == sorted(t.line for t in chunk)  # order kept
    flat = [t for chunk in chunks for t in chunk]
    assert sorted(flat, key=lambda t: t.line) == targets
    devices = sum(t.is_device for t in targets)
    users = len(targets) - devices
    assert len(chunks) == max(math.ceil(devices / size), math.ceil(users / size))


@given(st.text(max_size=300))
def test_any_text_gives_one_outcome_per_line_and_never_raises(text: str) -> None:
    parsed = parse_text(text)
    line_numbers = [t.line for t in parsed.targets] + [e.line for e in parsed.errors if e.line]
    assert len(line_numbers) == len(set(line_numbers))
    assert all(1 <= n <= parsed.total_lines for n in line_numbers)
    assert len(parsed.targets) + parsed.duplicates + parsed.error_count >= 1


csv_bytes = st.lists(
    st.sampled_from(
        [
            b"a",
            b"PC-1",
            b",",
            b";",
            b"\t",
            b'"',
            b"\n",
            b"\r\n",
            b"\r",
            b" ",
            b"#",
            b":",
            b"@",
            b"sid",
            b"target",
            b"device_name",
            b"S-1-5-18",
            UUID_A.encode(),
            b"\xef\xbb\xbf",
            b"\xc3\xa9",
            b"\xe9",
            b"\x00",
        ]
    ),
    max_size=60,
).map(b"".join)


@given(csv_bytes)
def test_any_upload_is_read_without_raising_and_reports_lines_within_the_file(data: bytes) -> None:
    parsed = parse_csv(data)
    assert all(t.line >= 1 for t in parsed.targets)
    assert all(e.line is None or 1 <= e.line <= max(parsed.total_lines, 1) for e in parsed.errors)
    assert parsed.targets or parsed.errors


def test_csv_unclosed_quote_is_reported_on_its_line() -> None:
    parsed = parse_csv(b'device_name,sid\n"PC-01,S-1-5-18\nPC-02,\n')
    assert parsed.targets == []
    assert parsed.errors[0].line == 2
    assert "unclosed" in parsed.errors[0].reason


def test_csv_field_too_large_for_the_reader_is_an_error_not_a_crash() -> None:
    parsed = parse_csv(b'device_name,sid\n"' + b"x" * 200_000 + b'",S-1-5-18\n')
    assert "could not be read as CSV" in only_error(parsed)


def test_csv_header_after_comments_and_blank_lines_keeps_file_line_numbers() -> None:
    parsed = parse_csv(b'# exported "today\r\n\r\ndevice_name,sid\r\nPC-01,S-1-5-18\r\n,bad\r\n')
    assert [(t.value, t.line) for t in parsed.targets] == [("PC-01", 4), ("S-1-5-18", 4)]
    assert parsed.errors[0].line == 5
