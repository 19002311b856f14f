"""Bit-level netlist structure: the screens fault injection uses to leave out no-fault sites."""

import pytest

from lutforge.formal.structure import Structure, constant, signal_bits

WIRES = {"\\a": 4, "\\w": 4, "\\r": 2, "\\dead": 2, "\\k": 2, "\\sign": 1}


def test_signals_read_least_significant_bit_first():
    assert signal_bits("{ \\sign 3'001 }", WIRES) == ["1", "0", "0", ("\\sign", 0)]
    assert signal_bits("\\a [2:1]", WIRES) == [("\\a", 1), ("\\a", 2)]
    assert signal_bits("\\a [3]", WIRES) == [("\\a", 3)]
    assert signal_bits("{ \\a [0] { \\r \\sign } }", WIRES) == [("\\sign", 0), ("\\r", 0), ("\\r", 1), ("\\a", 0)]


def test_a_plain_decimal_constant_is_a_32_bit_twos_complement_value():
    # yosys 0.70 writes wide comparison thresholds this way (fp32's largest finite magnitude).
    assert signal_bits("2139095039", WIRES) == list(reversed(f"{2139095039:032b}"))
    assert signal_bits("-2", WIRES) == ["0"] + ["1"] * 31
    assert signal_bits("{ \\sign 5 }", WIRES)[:3] == ["1", "0", "1"]
    assert constant("5") == "32'" + f"{5:032b}" and constant("3'101") == "3'101" and constant("\\a") is None


def test_an_unknown_token_is_refused_by_name():
    with pytest.raises(ValueError, match=r"RTLIL signal '\\\\a \?' is not one wire, slice, constant"):
        signal_bits("\\a ?", WIRES)
    with pytest.raises(ValueError, match=r"RTLIL signal '\\\\a \\\\r' is not one wire"):
        signal_bits("\\a \\r", WIRES)


def test_only_bits_a_live_reader_sees_are_observed_and_constants_are_followed():
    structure = Structure(
        WIRES,
        cells=[("$add", {"\\A": "\\a", "\\B": "4'0001", "\\Y": "\\w"})],
        # r is the output; it takes the low half of w; dead copies r and is read by nothing;
        # k's top bit is a constant one reached through a second connection.
        connects=[("\\r", "\\w [1:0]"), ("\\dead", "\\r"), ("\\k", "{ \\sign \\a [0] }"), ("\\sign", "1'1")],
        outputs=["\\r"])
    assert structure.observed == {("\\a", i) for i in range(4)} | {("\\w", 0), ("\\w", 1)}
    # The output's own bits are read only into a dead alias: a fault on those reads changes nothing.
    assert ("\\r", 0) not in structure.observed
    assert structure.constant == {("\\sign", 0): "1", ("\\k", 1): "1"}
