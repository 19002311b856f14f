"""Bitstreams with the YoWASP tools: the iCEBreaker in the default suite, the ECP5 boards slow."""

import json

import pytest

from lutforge.boards.bitstream import BitstreamReport, TimingError, build_bitstream, format_table
from lutforge.cli import build_parser, main
from lutforge.jobs.board import load_soc_config
from lutforge.boards.platforms import BOARDS, get_board

# Bitstream sizes the packers write for these devices (uncompressed iCE40; ECP5 sizes vary with
# --compress, so only a lower bound).
ICE40_UP5K_BIN = 104090


def _check(report: BitstreamReport, logic_cell: str):
    used, available = report.utilization[logic_cell]
    assert 0 < used < available
    assert report.fmax and report.timing_met
    assert report.bitstream.exists()
    assert report.board in format_table([report])


def test_icebreaker_bitstream():
    # The L-Mul vector SoC: the whole flow in about a minute; the board's GEMV SoC (92% of the
    # logic cells, several minutes of place and route) is built by the slow test below.
    config = BOARDS["icebreaker"].soc_config(core="lmul-vector")
    report = build_bitstream("icebreaker", config, show_progress=False)
    _check(report, "ICESTORM_LC")
    assert report.bitstream.stat().st_size == ICE40_UP5K_BIN
    assert report.utilization["ICESTORM_SPRAM"] == (4, 4)  # the SoC memory: the UP5K's 128 KiB of SPRAM
    assert report.utilization["ICESTORM_RAM"][0] >= 1  # the frame buffer
    again = build_bitstream("icebreaker", config, show_progress=False)
    assert again.cached and again.bitstream == report.bitstream


@pytest.mark.slow
@pytest.mark.parametrize("board", list(BOARDS))
def test_board_bitstream(board):
    report = build_bitstream(board, show_progress=False)
    assert BOARDS[board].soc_config().core == "gemv"
    if BOARDS[board].family == "ice40":
        _check(report, "ICESTORM_LC")
        assert report.bitstream.stat().st_size == ICE40_UP5K_BIN
        return
    _check(report, "TRELLIS_COMB")
    assert report.utilization["DP16KD"][0] >= 1
    data = report.bitstream.read_bytes()
    assert len(data) > 10_000
    if board.startswith("orangecrab"):
        assert data[-16:-4][6:] == b"\x00\x01UFD\x10"  # bcdDFU 1.0, signature, suffix length


def test_timing_failure_names_the_numbers():
    report = BitstreamReport("icebreaker", None, {}, {"cd_sync.clk": (20.5, 48.0)}, False, 0.0)
    with pytest.raises(TimingError, match=r"clock cd_sync.clk reaches 20.50 MHz but 48.00 MHz was requested"):
        report.check_timing()


def test_unknown_board_and_settings(tmp_path):
    with pytest.raises(ValueError, match="Unknown board 'de0'; supported boards are icebreaker, ulx3s-85f, orangecrab-25f"):
        get_board("de0")
    config = tmp_path / "soc.yaml"
    config.write_text("baud: 57600\nmemsize: 1024\n")
    with pytest.raises(ValueError, match="unknown SoC setting memsize"):
        load_soc_config(BOARDS["icebreaker"], str(config))
    config.write_text("baud: 57600\nmemory: bram\nmem_size: 2048\n")
    assert load_soc_config(BOARDS["icebreaker"], str(config)).mem_size == 2048


def test_cli_registers_both_commands():
    parser = build_parser()
    args = parser.parse_args(["bitstream", "--board", "icebreaker"])
    assert args.func.__name__ == "cmd_bitstream"
    args = parser.parse_args(["run", "--board", "ulx3s-85f", "--transport", "sim"])
    assert args.func.__name__ == "cmd_run" and args.board == "ulx3s-85f"


def test_bitstream_json_has_one_entry_per_board(tmp_path, capsys):
    # The report the iCEBreaker test above built (cached by content), with the L-Mul SoC.
    config = tmp_path / "soc.yaml"
    config.write_text("core: lmul-vector\n")
    out = tmp_path / "out" / "bitstreams.json"
    assert main(["bitstream", "--board", "icebreaker", "--config", str(config), "--json", str(out)]) == 0
    (entry,) = json.loads(out.read_text())
    report = build_bitstream("icebreaker", BOARDS["icebreaker"].soc_config(core="lmul-vector"), show_progress=False)
    assert entry == json.loads(json.dumps(report.to_json()))
    assert set(entry) == {"board", "bitstream", "cached", "utilization", "fmax_mhz", "steps_s"}
    assert entry["board"] == "icebreaker" and entry["fmax_mhz"] and entry["utilization"]["ICESTORM_LC"][0] > 0
    assert "icebreaker" in capsys.readouterr().out


def test_bitstream_needs_a_board_or_all(capsys):
    assert main(["bitstream"]) == 2
    assert capsys.readouterr().err == (
        "lutforge: Name a board with --board (one of icebreaker, ulx3s-85f, orangecrab-25f) or pass --all.\n")


def test_overfull_design_is_named_with_the_numbers():
    from lutforge.boards.bitstream import _overfull
    log = ("Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    7104/   5280   134%\n"
           "Info: \t        ICESTORM_RAM:       9/     30    30%\n")
    assert _overfull(log) == "7104 of 5280 ICESTORM_LC"


@pytest.mark.slow
@pytest.mark.parametrize("board", ["icebreaker", "orangecrab-25f"])
def test_run_command_on_the_simulated_board(board, capsys):
    assert main(["run", "--board", board, "--transport", "sim"]) == 0
    assert "All results equal the golden model." in capsys.readouterr().out
