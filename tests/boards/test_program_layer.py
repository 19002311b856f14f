"""A real SmolLM2 layer, compiled for a board's GEMV core, run on that board's whole SoC in
Verilator over the simulated UART, bit-exact against golden: `lutforge compile` then
`lutforge run --board ulx3s-85f --transport sim --program DIR --layer NAME`. The layer's images are
larger than the SoC's memory, so it goes through it one core run at a time. Each board's
configuration (configs/BOARD.yaml) compiles for the core its SoC carries, and the performance
model's projection for the board is held against its simulated SoC's cycles on that layer."""

import json
from pathlib import Path

import pytest

from lutforge.cli import main
from lutforge.compiler.config import load_config
from lutforge.program.artifact import read_program

LAYER = "layers.0.attn.k"
BOARDS = ("icebreaker", "ulx3s-85f", "orangecrab-25f")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_of(board: str) -> str:
    return str(CONFIGS / f"{board}.yaml")


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """The layer compiled with a board's configuration, once per board: ``programs(board)``."""
    built = {}

    def program(board: str) -> Path:
        if board not in built:
            build = tmp_path_factory.mktemp(board)
            assert main(["compile", "--config", config_of(board), "--layer", LAYER, "--build", str(build)]) == 0
            built[board] = build / "program"
        return built[board]
    return program


@pytest.fixture(scope="module")
def program(programs):
    return programs("ulx3s-85f")


def fast_uart(tmp_path, board: str) -> str:
    """A SoC config with the UART at clk/8 instead of the bitstream's 115200 baud: the same SoC,
    its memory and core, with the tables loaded in seconds (the slow test below runs 115200)."""
    from lutforge.boards.platforms import get_board

    path = tmp_path / "fast-uart.yaml"
    path.write_text(f"baud: {int(get_board(board).soc_config().clk_freq) // 8}\n")
    return str(path)


@pytest.mark.parametrize("board", BOARDS)
def test_the_board_config_compiles_for_the_core_the_board_carries(board):
    from lutforge.boards.platforms import get_board

    cfg = load_config(config_of(board))
    assert cfg.target.preset == board
    built = get_board(board).soc_config().gemv
    assert (cfg.quantization.v, cfg.quantization.c_a, cfg.quantization.c_w, cfg.quantization.table_bits) == (
        built.v, built.c_a, built.c_w, built.table_bits)
    assert (cfg.core.lanes, cfg.core.chains, cfg.core.max_positions, cfg.core.metric) == (
        built.lanes, built.chains, built.max_positions, built.metric)
    # The table engine the compiler chooses for the board's target is the one its SoC carries.
    assert cfg.core.tables == "auto" and cfg.core_params.tables == built.tables == "resident"


def test_a_compiled_layer_runs_bit_exact_on_the_simulated_ulx3s(program, tmp_path, capsys):
    """Through the SoC's SDRAM controller onto the chip's model, every data-sheet timing checked."""
    layer = read_program(program).layers[LAYER]
    assert layer.tab.nbytes > 32768 and len(layer.runs) == 5  # more than block RAM held; the core's 64 positions
    assert main(["run", "--board", "ulx3s-85f", "--transport", "sim", "--program", str(program), "--layer", LAYER,
                 "--soc-config", fast_uart(tmp_path, "ulx3s-85f"), "--tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert f"layer {LAYER} (576 x 192, 5 core runs), 2 tokens" in out
    assert "All results equal the golden model." in out


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f", "orangecrab-25f"])
def test_each_board_target_of_the_performance_model_is_the_soc_that_is_built(name):
    from lutforge.boards.platforms import get_board
    from lutforge.boards.sdram import port_timing
    from lutforge.compiler.perf import TARGETS, BoardPort

    board, target = get_board(name), TARGETS[name]
    soc = board.soc_config()
    assert target.clock_mhz * 1e6 == board.platform().default_clk_frequency == soc.clk_freq
    assert target.lanes == soc.gemv.lanes
    assert target.memory_mib * 2**20 == soc.mem_size
    assert target.bandwidth_gbs * 1e9 == soc.clk_freq * soc.port_bytes  # one port word per cycle
    assert target.port == (port_timing(soc.sdram_chip, soc.clk_freq, soc.port_bytes) if soc.memory == "sdram"
                           else BoardPort(width=soc.port_bytes))


@pytest.mark.parametrize("board, runs", [("icebreaker", 18), ("ulx3s-85f", 5), ("orangecrab-25f", 9)])
def test_the_projection_for_the_board_is_the_simulated_socs_cycles(programs, tmp_path, board, runs):
    """Every board: its configuration's layer runs on its simulated SoC bit-exact, one core run at a
    time through its memory, in the cycles the performance model projects for the board (1 % on
    chip memory; 5 % through the ULX3S's SDRAM, whose rows the channels close for each other:
    3.7 % measured, the goal the issue sets)."""
    from lutforge.compiler.perf import TARGETS, program_cost
    from lutforge.jobs.board import run_program_layer

    program = programs(board)
    assert len(read_program(program).layers[LAYER].runs) == runs
    # The compile's emit step reports the table engine it chose for the board's target.
    emitted = json.loads((program.parent / "reports" / "emit.json").read_text())
    assert emitted["tables"] == "resident" and emitted["table_seconds"]["rows"] > emitted["table_seconds"]["resident"]
    run = run_program_layer(board, "sim", str(program), LAYER, fast_uart(tmp_path, board), tokens=1)
    assert run.passed
    chains = load_config(config_of(board)).core.chains
    projected = program_cost(read_program(program), TARGETS[board], chains=chains)
    # The 16-bit port bounds every run (a cycle per port word, the memory's latency and a cycle per
    # codebook and table word, 1 + 2 L per result tile); what the model leaves out is each run's
    # start and the last cycles of its codebook phase and of each tile, and through the SDRAM the
    # rows the channels close for each other.
    assert projected["bound"] == ["memory"]
    error = projected["cycles_per_token"] / run.core_cycles - 1
    print(f"{LAYER} on the simulated {board} SoC: {run.core_cycles} cycles, projected "
          f"{projected['cycles_per_token']} ({error:+.2%})")
    assert abs(error) <= (0.05 if board == "ulx3s-85f" else 0.01)


# (board, core runs, bound on the projection's error): the iCEBreaker's runs need 69 KB at once
# (18 runs, 0.4 M core cycles), more than any block-RAM SoC holds, within the UP5K's SPRAM; the
# ULX3S's 400 KB each (5 runs, 0.34 M), its whole images (2 MB) loaded once into the SDRAM.
UP_PROJECTION = [("icebreaker", 18, 0.01), ("ulx3s-85f", 5, 0.05)]


@pytest.mark.slow  # tens of megabytes over the simulated UART and millions of core cycles, about a minute
@pytest.mark.parametrize("board, runs, bound", UP_PROJECTION)
def test_a_1536_row_layer_runs_bit_exact_through_the_boards_memory(tmp_path, board, runs, bound):
    """The MLP's up projection (576 -> 1536) on the boards whose memory holds a run of it:
    bit-exact and as many cycles as projected."""
    from lutforge.compiler.perf import TARGETS, program_cost
    from lutforge.jobs.board import run_program_layer

    layer = "layers.0.mlp.up"
    assert main(["compile", "--config", config_of(board), "--layer", layer, "--build", str(tmp_path)]) == 0
    program = tmp_path / "program"
    assert len(read_program(program).layers[layer].runs) == runs
    run = run_program_layer(board, "sim", str(program), layer, fast_uart(tmp_path, board), tokens=1)
    assert run.passed
    chains = load_config(config_of(board)).core.chains
    projected = program_cost(read_program(program), TARGETS[board], chains=chains)["cycles_per_token"]
    print(f"{layer} on the simulated {board} SoC: {run.core_cycles} cycles, projected {projected} "
          f"({projected / run.core_cycles - 1:+.2%})")
    assert abs(projected / run.core_cycles - 1) <= bound


def test_a_layer_the_program_lacks_is_named(program, capsys):
    assert main(["run", "--board", "ulx3s-85f", "--transport", "sim", "--program", str(program),
                 "--layer", "layers.0.attn.q"]) == 2
    assert capsys.readouterr().err == (f"lutforge: The Program in {program} has no layer 'layers.0.attn.q'; it holds "
                                       f"1: {LAYER}; name one of them, or compile the layer with `lutforge compile "
                                       f"--layer layers.0.attn.q`.\n")


@pytest.mark.slow  # the bitstream's 115200 baud: about 150 KB of tables over the simulated UART, minutes
def test_the_acceptance_command_at_the_bitstreams_baud(program, capsys):
    assert main(["run", "--board", "ulx3s-85f", "--transport", "sim", "--program", str(program),
                 "--layer", LAYER]) == 0
    assert "All results equal the golden model." in capsys.readouterr().out
