"""The users table: canonical columns, lossless CSV / Excel files, all-or-nothing imports."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.worksheet.worksheet import Worksheet

from mailkit.columns import USERS_COLUMNS, users_to_frame
from mailkit.errors import ImportFileError
from mailkit.settings import OrgSettings, UserSettings
from mailkit.users import (
    FORMULA_TRIGGERS,
    neutralise_cell,
    neutralise_cells,
    read_users,
    restore_cell,
    restore_cells,
    users_from_frame,
    write_users,
)

USERS = [
    UserSettings(
        user_code="00123", display_name="Zoë Ångström-Łukasiewicz", email="zoe@corp.example"
    ),
    UserSettings(
        user_code="bob",
        display_name='Bob "the builder", Jr.',
        override_enabled=True,
        mode="smtp",
        username="bob@corp.example",
        from_address="bob@corp.example",
        host="smtp.corp.example",
        port=465,
        security="implicit_tls",
        auth="cram_md5",
    ),
    UserSettings(user_code="carol", override_enabled=True, port=2525),  # only a port: inherit rest
    UserSettings(user_code="NA", display_name='=HYPERLINK("http://x.example")'),
    UserSettings(user_code="用户七", display_name="王小明", mode="outlook"),
    UserSettings(user_code="dave"),  # every cell empty but the code
]


def _csv(tmp_path: Path, text: str, *, name: str = "users.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_columns_are_the_user_model_fields() -> None:
    """A field added to UserSettings must be added to the table (and its files) too."""
    assert tuple(UserSettings.model_fields) == USERS_COLUMNS


def test_frame_has_plain_values_and_nullable_types() -> None:
    frame = users_to_frame(USERS)
    assert tuple(frame.columns) == USERS_COLUMNS
    assert str(frame["port"].dtype) == "Int64"
    assert frame["override_enabled"].dtype == bool
    bob = frame.iloc[1]
    assert (bob["mode"], bob["security"], bob["auth"], bob["port"]) == (
        "smtp",
        "implicit_tls",
        "cram_md5",
        465,
    )
    assert type(bob["mode"]) is str  # the enum's value, not the enum
    dave = frame.iloc[5]
    assert all(
        dave[c] is pd.NA for c in USERS_COLUMNS if c not in ("user_code", "override_enabled")
    )


def test_empty_frame_keeps_columns_and_types() -> None:
    frame = users_to_frame([])
    assert tuple(frame.columns) == USERS_COLUMNS
    assert str(frame["port"].dtype) == "Int64"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".CSV"])
def test_file_round_trip_is_lossless(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"users{suffix}"
    write_users(USERS, path)
    assert read_users(path) == USERS


def test_excel_cells_are_text_not_formulas(tmp_path: Path) -> None:
    """A name starting with '=' must not become a formula, and '00123' not the number 123."""
    path = tmp_path / "users.xlsx"
    write_users(USERS, path)
    sheet = openpyxl.load_workbook(path).active
    assert isinstance(sheet, Worksheet)
    assert [c.value for c in sheet[1]] == list(USERS_COLUMNS)
    code, name = sheet["A2"], sheet["B5"]
    assert (code.value, code.data_type, code.number_format) == ("00123", "s", "@")
    assert (name.value, name.data_type) == ('=HYPERLINK("http://x.example")', "s")


def test_csv_with_bom_leading_zeros_and_empty_cells(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "user_code,display_name,override_enabled,port\r\n00123,Zoë,yes,0587\r\nNone,,,\r\n",
        bom=True,
    )
    users = read_users(path)
    assert users == [
        UserSettings(user_code="00123", display_name="Zoë", override_enabled=True, port=587),
        UserSettings(user_code="None"),
    ]


def test_semicolon_csv_from_a_european_excel(tmp_path: Path) -> None:
    path = _csv(tmp_path, "user_code;display_name;port\nmüller;Müller, Hans;2525\n")
    assert read_users(path) == [
        UserSettings(user_code="müller", display_name="Müller, Hans", port=2525)
    ]


def test_mapping_renames_an_applications_columns(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "Login,Full Name,Use own settings,SMTP Port,Security\n"
        "ann,Ann Example,1,465,SSL\n"
        "ben,Ben Example,0,,\n",
    )
    mapping = {
        "Login": "user_code",
        "Full Name": "display_name",
        "Use own settings": "override_enabled",
        "SMTP Port": "port",
        "Security": "security",
    }
    users = read_users(path, mapping=mapping)
    assert users == [
        UserSettings(
            user_code="ann",
            display_name="Ann Example",
            override_enabled=True,
            port=465,
            security="implicit_tls",
        ),
        UserSettings(user_code="ben", display_name="Ben Example"),
    ]


def test_canonical_headers_match_regardless_of_case_and_spaces() -> None:
    frame = pd.DataFrame({" User_Code ": ["ann"], "PORT": ["25"]})
    assert users_from_frame(frame) == [UserSettings(user_code="ann", port=25)]


def test_unknown_columns_are_named_with_the_fix() -> None:
    frame = pd.DataFrame({"user_code": ["ann"], "Password": ["hunter2"], "Dept": ["IT"]})
    with pytest.raises(ImportFileError) as caught:
        users_from_frame(frame)
    message = str(caught.value)
    assert "Password, Dept" in message
    assert "Map each one" in message
    assert "delete it" in message
    assert "hunter2" not in message


def test_bad_mappings_are_refused() -> None:
    frame = pd.DataFrame({"Login": ["ann"]})
    with pytest.raises(ImportFileError, match="not users-table columns"):
        users_from_frame(frame, mapping={"Login": "login_name"})
    with pytest.raises(ImportFileError, match="no such column"):
        users_from_frame(frame, mapping={"User": "user_code"})
    both = pd.DataFrame({"Login": ["ann"], "user_code": ["ann"]})
    with pytest.raises(ImportFileError, match=r"both 'Login' and 'user_code'"):
        users_from_frame(both, mapping={"Login": "user_code"})


def test_missing_user_code_column() -> None:
    with pytest.raises(ImportFileError, match="no user_code column"):
        users_from_frame(pd.DataFrame({"display_name": ["Ann"]}))


def test_every_bad_row_is_reported_at_once_by_spreadsheet_row(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "user_code,email,port,security\n"
        "ann,ann@corp.example,587,starttls\n"  # row 2: fine
        "bob,bob@corp.example,99999,\n"  # row 3: port out of range
        "carol,carol@corp.example,465,starttls\n"  # row 4: port/security conflict
        "\n"  # row 5: blank, skipped but counted
        "dave,not-an-address,,\n",  # row 6: bad email
    )
    with pytest.raises(ImportFileError) as caught:
        read_users(path)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["row 3 (bob).port", "row 4 (carol).security", "row 6 (dave).email"]
    message = str(caught.value)
    assert str(path) in message
    assert "nothing was imported" in message
    assert "3 row(s)" in message


def test_excel_row_numbers_count_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "users.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    for row in (["user_code", "port"], ["ann", 25], [None, None], ["bob", 99999]):
        sheet.append(row)
    workbook.save(path)
    with pytest.raises(ImportFileError) as caught:
        read_users(path)
    assert [p.field for p in caught.value.problems] == ["row 4 (bob).port"]


def test_duplicate_codes_are_found_without_case() -> None:
    frame = pd.DataFrame({"user_code": ["alice", "bob", "ALICE", "Bob"]})
    with pytest.raises(ImportFileError) as caught:
        users_from_frame(frame)
    problems = caught.value.problems
    assert [p.field for p in problems] == ["row 4 (ALICE).user_code", "row 5 (Bob).user_code"]
    assert "row 2" in problems[0].message
    assert "row 3" in problems[1].message


def test_rows_are_checked_against_the_org_when_given() -> None:
    cloud = OrgSettings(edition="cloud")
    frame = pd.DataFrame(
        {
            "user_code": ["ann@corp.example", "bob", "cy@corp.example"],
            "from_address": ["", "", "other@corp.example"],
        }
    )
    assert len(users_from_frame(frame)) == 3  # fine without an org
    with pytest.raises(ImportFileError) as caught:
        users_from_frame(frame, org=cloud)
    assert [p.field for p in caught.value.problems] == [
        "row 3 (bob).user_code",
        "row 4 (cy@corp.example).from_address",
    ]


def test_row_label_does_not_repeat_an_unprintable_code() -> None:
    frame = pd.DataFrame({"user_code": ["ok", "bad\ncode", ""]})
    with pytest.raises(ImportFileError) as caught:
        users_from_frame(frame)
    assert [p.field for p in caught.value.problems] == ["row 3.user_code", "row 4.user_code"]


def test_empty_header_less_columns_are_ignored() -> None:
    frame = pd.DataFrame({"user_code": ["ann"], "Unnamed: 1": [None]})
    assert users_from_frame(frame) == [UserSettings(user_code="ann")]
    frame.loc[0, "Unnamed: 1"] = "stray value"
    with pytest.raises(ImportFileError, match="Unnamed: 1"):
        users_from_frame(frame)


def test_numpy_and_pandas_cells_are_accepted() -> None:
    frame = pd.DataFrame({"user_code": ["ann", "bob"], "port": pd.array([25, None], "Int64")})
    frame["override_enabled"] = [True, False]
    assert users_from_frame(frame) == [
        UserSettings(user_code="ann", port=25, override_enabled=True),
        UserSettings(user_code="bob"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("users.txt", b"user_code\nann\n", "as .csv"),
        ("users.csv", b"", "is empty"),
        ("users.csv", b"user_code\nJos\x81\x8d\n", "neither UTF-8 nor Windows-1252"),
        ("users.csv", b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x01" * 20, "not a text file"),
        ("users.xlsx", b"PK\x03\x04 definitely not a workbook", "cannot be read as a .xlsx"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=expected):
        read_users(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="does not exist"):
        read_users(tmp_path / "nope.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(ImportFileError, match="is a folder"):
        read_users(folder)


def test_write_refuses_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv \(UTF-8\) or \.xlsx"):
        write_users(USERS, tmp_path / "users.json")


def test_canonical_columns_are_the_product_contract() -> None:
    """These names and their order are the users table's contract (import, export, audit);
    applications' exports map onto them."""
    assert USERS_COLUMNS == (
        "user_code",
        "display_name",
        "email",
        "override_enabled",
        "mode",
        "username",
        "from_address",
        "host",
        "port",
        "security",
        "auth",
    )


# --------------------------------------------------------------------------- whole columns


@given(st.lists(st.one_of(st.text(max_size=6), st.none()), max_size=30))
@settings(max_examples=200, deadline=None)
def test_column_helpers_match_the_cell_functions(cells: list[str | None]) -> None:
    """The load path restores, and exports neutralise, whole columns at once (issue 12):
    cell for cell what the one-cell functions do, missing cells left alone."""
    assert all(len(trigger) == 1 for trigger in FORMULA_TRIGGERS)  # the helpers look at one
    column = pd.Series(cells, dtype=object)
    restored = restore_cells(column).tolist()
    neutral = neutralise_cells(column).tolist()
    assert restored == [c if c is None else restore_cell(c) for c in cells]
    assert neutral == [c if c is None else neutralise_cell(c) for c in cells]
    assert restore_cells(neutralise_cells(column)).tolist() == cells


def test_a_csv_in_another_encoding_still_loads_through_its_text(tmp_path: Path) -> None:
    """UTF-8 files are parsed from their bytes; a Windows-1252 export goes through its text."""
    path = tmp_path / "users.csv"
    path.write_bytes("user_code,display_name\njürgen,Jürgen Müller\n".encode("cp1252"))
    (user,) = read_users(path)
    assert (user.user_code, user.display_name) == ("jürgen", "Jürgen Müller")
    path.write_bytes("\ufeffuser_code,display_name\njürgen,'=1+1\n".encode())
    (user,) = read_users(path)
    assert (user.user_code, user.display_name) == ("jürgen", "=1+1")
