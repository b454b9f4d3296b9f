"""Check characters of USCCs (GB 32100-2015) and resident IDs (GB 11643-1999)."""

from __future__ import annotations

import pytest

from consumption_monitor.common.identifiers import (
    USCC_ALPHABET,
    id_check_char,
    is_uscc_well_formed,
    is_valid_resident_id,
    is_valid_uscc,
    uscc_check_char,
)

VALID_USCC = ("91110000600037341L", "91350100M000100Y43")
VALID_ID = "11010519491231002X"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# --- USCC --------------------------------------------------------------------------------


def test_alphabet_has_31_characters_without_i_o_s_v_z() -> None:
    assert len(USCC_ALPHABET) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


@pytest.mark.parametrize(("code", "check"), [(VALID_USCC[0], "L"), (VALID_USCC[1], "3")])
def test_known_codes_have_the_published_check_character(code: str, check: str) -> None:
    assert uscc_check_char(code[:17]) == check
    assert is_uscc_well_formed(code)
    assert is_valid_uscc(code)


@pytest.mark.parametrize("code", VALID_USCC)
def test_any_other_check_character_is_invalid_but_still_well_formed(code: str) -> None:
    others = [ch for ch in USCC_ALPHABET if ch != code[17]]
    assert len(others) == 30
    for ch in others:
        changed = code[:17] + ch
        assert is_uscc_well_formed(changed), changed  # a failed check is only a warning
        assert not is_valid_uscc(changed), changed


@pytest.mark.parametrize("code", VALID_USCC)
def test_a_single_changed_body_character_is_detected(code: str) -> None:
    for position in range(17):
        current = code[position]
        for ch in USCC_ALPHABET:
            if ch == current:
                continue
            changed = code[:position] + ch + code[position + 1 :]
            assert not is_valid_uscc(changed), changed


@pytest.mark.parametrize("letter", list("IOSVZ"))
@pytest.mark.parametrize("position", [0, 8, 17])
def test_excluded_letters_make_a_code_malformed(letter: str, position: int) -> None:
    code = VALID_USCC[0][:position] + letter + VALID_USCC[0][position + 1 :]
    assert len(code) == 18
    assert not is_uscc_well_formed(code)
    assert not is_valid_uscc(code)


@pytest.mark.parametrize(
    "code",
    [
        VALID_USCC[0][:17],  # 17 characters
        VALID_USCC[0] + "0",  # 19 characters
        "",
        VALID_USCC[1].lower(),  # the alphabet is upper case
        " " + VALID_USCC[0][1:],
        VALID_USCC[0][:17] + "-",
    ],
)
def test_malformed_strings_are_not_well_formed(code: str) -> None:
    assert not is_uscc_well_formed(code)
    assert not is_valid_uscc(code)


@pytest.mark.parametrize(
    "value", [None, 91110000600037341, VALID_USCC[0].encode(), list(VALID_USCC[0])]
)
def test_non_strings_are_neither_well_formed_nor_valid(value: object) -> None:
    assert not is_uscc_well_formed(value)
    assert not is_valid_uscc(value)


@pytest.mark.parametrize(
    "body",
    [
        VALID_USCC[0][:16],  # too short
        VALID_USCC[0],  # 18 characters: the body is 17
        "",
        "9111000060003734I",  # I is not in the alphabet
        "9111000060003734o",  # neither is lower case
    ],
)
def test_uscc_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        uscc_check_char(body)


# --- resident ID -------------------------------------------------------------------------


def test_known_resident_id_is_valid() -> None:
    assert id_check_char(VALID_ID[:17]) == "X"
    assert is_valid_resident_id(VALID_ID)


def test_lower_case_x_and_surrounding_spaces_are_accepted() -> None:
    assert is_valid_resident_id(VALID_ID.lower())
    assert is_valid_resident_id(f"  {VALID_ID}\n")


def test_any_other_check_character_is_invalid() -> None:
    for ch in "0123456789":
        assert not is_valid_resident_id(VALID_ID[:17] + ch), ch


def test_a_changed_body_digit_is_detected() -> None:
    for position in range(17):
        digit = int(VALID_ID[position])
        changed = VALID_ID[:position] + str((digit + 1) % 10) + VALID_ID[position + 1 :]
        assert not is_valid_resident_id(changed), changed


def test_a_computed_numeric_check_digit_round_trips() -> None:
    body = "51040319900101123"
    check = id_check_char(body)
    assert check in "10X98765432"
    assert is_valid_resident_id(body + check)


@pytest.mark.parametrize("code", ["110105491231002", " 110105491231002 "])
def test_fifteen_digit_ids_are_accepted_as_digits(code: str) -> None:
    assert is_valid_resident_id(code)


@pytest.mark.parametrize(
    "code",
    [
        "11010549123100X",  # 15 characters, not all digits
        VALID_ID[:17],
        VALID_ID + "1",
        "1101051949123100",  # 16 digits
        "A1010519491231002X",
        "",
        None,
        11010519491231002,
    ],
)
def test_malformed_resident_ids_are_invalid(code: object) -> None:
    assert not is_valid_resident_id(code)


@pytest.mark.parametrize("body", ["1101051949123100", "1101051949123100X", "110105194912310021"])
def test_id_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        id_check_char(body)


# str.isdigit() is true for more than ASCII digits ('²', '１'): only ASCII digits count.


def test_superscript_digit_is_invalid_not_an_exception() -> None:
    assert not is_valid_resident_id("1101051949123100²X")


@pytest.mark.parametrize(
    "code", [VALID_ID.translate(FULL_WIDTH), "110105491231002".translate(FULL_WIDTH)]
)
def test_full_width_digits_are_not_a_valid_id(code: str) -> None:
    assert not is_valid_resident_id(code)


def test_a_list_of_ids_is_checked_as_one_by_one() -> None:
    """``resident_ids_valid`` (one NumPy step for 18-character ASCII codes) agrees with
    ``is_valid_resident_id`` on lists of right and corrupted codes of that length and on
    mixed lists (the per-value path)."""
    import random

    from consumption_monitor.common.identifiers import (
        id_check_char,
        is_valid_resident_id,
        resident_ids_valid,
    )

    draw = random.Random(3)

    def code() -> str:
        body = "".join(draw.choice("0123456789") for _ in range(17))
        text = body + id_check_char(body)
        pick = draw.random()
        if pick < 0.15:
            return text[:17] + draw.choice("0123456789Xx :")
        if pick < 0.25:
            return " " + text[1:]
        if pick < 0.35:
            return text[:5] + draw.choice("a/:٣") + text[6:]
        if pick < 0.4:
            return text.lower()
        return text

    for mixed in (False, True):
        for _ in range(500):
            codes = [code() for _ in range(draw.randint(1, 6))]
            if mixed:
                codes.append(draw.choice(["", "510403900307123", codes[0][:17], "١" * 18]))
            assert resident_ids_valid(codes) == [is_valid_resident_id(c) for c in codes]
