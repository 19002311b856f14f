"""Bad inputs to the hardware-side commands (``blocks``, ``verilog``, ``sim``, ``prove``,
``bitstream``, ``run --board``): each is refused before any build or proof, on one line naming the
value, the limit and the fix, with exit status 2. A traceback or a success fails the case."""

import pytest
from bad_input import Case, check_case
from matplotlib.backend_bases import FigureCanvasBase

from lutforge.blocks import catalogue, get_block
from lutforge.blocks.selfcheck import SelfCheck, self_check
from lutforge.boards.platforms import BOARDS
from lutforge.boards.soc import SocConfig
from lutforge.cli import main
from lutforge.formal.campaign import mutation_targets
from lutforge.formal.engines import SOLVERS
from lutforge.formal.suite import run_proofs
from lutforge.support.errors import UsageError

BLOCKS = ", ".join(catalogue())
BOARD_NAMES = ", ".join(repr(b) for b in BOARDS)
IMAGE_SUFFIXES = ", ".join("." + f for f in sorted(FigureCanvasBase.get_supported_filetypes()))
TARGETS = ", ".join(mutation_targets())
SETTINGS = "baud, mem_size, memory, idle_cycles, core, port_bytes"


def _limit(block, name, value, low, high):
    return (f"lutforge: Block {block!r} parameter {name}={value} is above its limit of {high}; give {name} from "
            f"{low} to {high} (`lutforge blocks` shows every limit).")


def _below(block, name, value, low, high):
    return (f"lutforge: Block {block!r} parameter {name}={value} is below its minimum of {low}; give {name} from "
            f"{low} to {high}.")


def _argparse(command, text):
    return f"lutforge {command}: {text}; see `lutforge {command} --help`."


BLOCK_CASES = [
    Case("blocks-extra-argument", ("blocks", "lmul"),
         "lutforge: unrecognized arguments: lmul; see `lutforge --help`."),
    Case("verilog-top-is-a-keyword", ("verilog", "lmul", "--top", "module"),
         "lutforge: The top module name 'module' is a Verilog keyword; choose another name."),
    Case("verilog-no-block", ("verilog",),
         _argparse("verilog", "the following arguments are required: block")),
    Case("verilog-unknown-block", ("verilog", "lmull"),
         f"lutforge: No block named 'lmull'; the registered blocks are {BLOCKS}."),
    Case("verilog-unknown-param", ("verilog", "lmul", "-p", "lanes=4"),
         "lutforge: Block 'lmul' has no parameter lanes; its parameters are format, latency, policy, overflow."),
    Case("verilog-malformed-param", ("verilog", "lmul", "-p", "format"),
         "lutforge: --param takes NAME=VALUE, not 'format'."),
    Case("verilog-param-without-name", ("verilog", "lmul", "-p", "=3"),
         "lutforge: --param takes NAME=VALUE, not '=3'."),
    Case("verilog-repeated-param", ("verilog", "lmul", "-p", "latency=1", "-p", "latency=2"),
         "lutforge: --param sets latency twice (latency=1 and latency=2); give it once."),
    Case("verilog-bad-choice", ("verilog", "lmul", "-p", "format=e9m9"),
         "lutforge: Block 'lmul' parameter format='e9m9' is not allowed; use one of fp32, fp16, bf16, e4m3, e5m2, "
         "e3m2, e2m3, e2m1."),
    Case("verilog-latency-not-integer", ("verilog", "lmul", "-p", "latency=1.5"),
         "lutforge: Block 'lmul' parameter latency='1.5' is not an integer; give one from 0 to 32."),
    Case("verilog-latency-negative", ("verilog", "lmul", "-p", "latency=-1"), _below("lmul", "latency", -1, 0, 32)),
    Case("verilog-latency-huge", ("verilog", "lmul", "-p", "latency=100000"),
         _limit("lmul", "latency", 100000, 0, 32)),
    Case("verilog-fp-fma-latency", ("verilog", "fp_fma", "-p", "latency=33"), _limit("fp_fma", "latency", 33, 0, 32)),
    Case("verilog-lut-gemv-lanes-huge", ("verilog", "lut_gemv", "-p", "lanes=100000"),
         _limit("lut_gemv", "lanes", 100000, 1, 128)),
    Case("verilog-lut-gemv-no-lanes", ("verilog", "lut_gemv", "-p", "lanes=0"), _below("lut_gemv", "lanes", 0, 1, 128)),
    Case("verilog-lut-gemv-positions", ("verilog", "lut_gemv", "-p", "max_positions=70000"),
         _limit("lut_gemv", "max_positions", 70000, 1, 65535)),
    Case("verilog-lut-gemv-centroids", ("verilog", "lut_gemv", "-p", "c_w=1000"),
         _limit("lut_gemv", "c_w", 1000, 1, 256)),
    Case("verilog-centroid-codebook", ("verilog", "centroid_search", "-p", "c_a=256", "-p", "v=2"),
         "lutforge: Block 'centroid_search' parameters c_a=256 and v=2 make a codebook of 512 elements, above the "
         "limit of 256 (larger ones take minutes to generate); lower c_a or v."),
    Case("verilog-centroid-no-centroids", ("verilog", "centroid_search", "-p", "c_a=0"),
         _below("centroid_search", "c_a", 0, 1, 256)),
    Case("verilog-centroid-v-choice", ("verilog", "centroid_search", "-p", "v=3"),
         "lutforge: Block 'centroid_search' parameter v='3' is not allowed; use one of 1, 2, 4, 8."),
    Case("verilog-centroid-chains-over-c-a", ("verilog", "centroid_search", "-p", "c_a=8", "-p", "chains=16"),
         "lutforge: chains=16 is not allowed for C_a=8; use 1 to 8 chains."),
    Case("verilog-gemv-core-codebook", ("verilog", "gemv_core", "-p", "c_a=128", "-p", "v=4"),
         "lutforge: Block 'gemv_core' parameters c_a=128 and v=4 make a codebook of 512 elements, above the limit "
         "of 256 (larger ones take minutes to generate); lower c_a or v."),
    Case("verilog-gemv-core-lanes", ("verilog", "gemv_core", "-p", "lanes=129"),
         _limit("gemv_core", "lanes", 129, 1, 128)),
    Case("verilog-gemv-core-positions", ("verilog", "gemv_core", "-p", "max_positions=65536"),
         _limit("gemv_core", "max_positions", 65536, 1, 65535)),
    Case("verilog-gemv-core-table-bits", ("verilog", "gemv_core", "-p", "table_bits=6"),
         "lutforge: Block 'gemv_core' parameter table_bits='6' is not allowed; use one of 4, 8."),
    Case("verilog-tmac-core-code-bits", ("verilog", "tmac_core", "-p", "cb_bits=17"),
         _limit("tmac_core", "cb_bits", 17, 2, 16)),
    Case("verilog-tmac-core-rows-below-positions", ("verilog", "tmac_core", "-p", "max_table_rows=512"),
         "lutforge: Block 'tmac_core' parameter max_table_rows=512 is below max_positions=1024: one row block of "
         "1024 positions needs 1024 table rows; raise max_table_rows or lower max_positions."),
    Case("verilog-tmac-core-table-size", ("verilog", "tmac_core", "-p", "max_table_rows=8192", "-p", "c_w=64"),
         "lutforge: Block 'tmac_core' parameters max_table_rows=8192, c_w=64, v=2 and cb_bits=8 make an on-chip "
         "table of 8388608 bits, above the limit of 4194304 (larger ones take minutes to generate); lower "
         "max_table_rows, c_w, v or cb_bits."),
    Case("verilog-lmul-ignored-overflow", ("verilog", "lmul", "-p", "policy=wrap", "-p", "overflow=inf"),
         "lutforge: Block 'lmul' parameter overflow=inf has no effect with policy=wrap; leave overflow out, or change "
         "policy."),
    Case("verilog-lmul-inf-without-inf", ("verilog", "lmul", "-p", "format=e2m1", "-p", "overflow=inf"),
         "lutforge: Block 'lmul' parameter overflow=inf needs a format with Inf or NaN, and e2m1 has neither; use "
         "overflow=saturate or another format."),
    Case("verilog-fp-inf-without-inf", ("verilog", "fp_mul", "-p", "format=e2m1", "-p", "overflow=inf"),
         "lutforge: Format 'e2m1' has no Inf or NaN encoding, so overflow='inf' cannot be honoured; saturate is the "
         "only option: pass overflow='saturate'."),
    Case("verilog-sim-only-beats", ("verilog", "lmul_dot", "-p", "beats=8"),
         "lutforge: Block 'lmul_dot' parameter beats only sets the vectors `lutforge sim` draws; the design does not "
         "depend on it, so leave it out here."),
    Case("verilog-sim-only-keys", ("verilog", "lmul_attention", "-p", "keys=3"),
         "lutforge: Block 'lmul_attention' parameter keys only sets the vectors `lutforge sim` draws; the design "
         "does not depend on it, so leave it out here."),
    Case("verilog-lmul-dot-lanes", ("verilog", "lmul_dot", "-p", "lanes=65"), _limit("lmul_dot", "lanes", 65, 1, 64)),
    Case("verilog-attention-dim", ("verilog", "lmul_attention", "-p", "dim=2048"),
         _limit("lmul_attention", "dim", 2048, 1, 1024)),
    Case("verilog-attention-dim-not-multiple", ("verilog", "lmul_attention", "-p", "dim=6"),
         "lutforge: Attention head dimension 6 is not a positive multiple of lanes=4; choose lanes dividing the head "
         "dimension."),
    Case("verilog-mx-dot-levels", ("verilog", "mx_dot", "-p", "max_levels=31"),
         _limit("mx_dot", "max_levels", 31, 1, 30)),
    Case("verilog-mx-dot-integer-format", ("verilog", "mx_dot", "-p", "format=mxint8"),
         "lutforge: Block 'mx_dot' parameter format='mxint8' is not allowed; use one of mxfp8_e4m3, mxfp8_e5m2, "
         "mxfp6_e3m2, mxfp6_e2m3, mxfp4, nvfp4."),
    Case("verilog-top-with-space", ("verilog", "lmul", "--top", "my top"),
         _argparse("verilog", "argument --top: 'my top' is not a Verilog identifier (a letter or _, then letters, "
                              "digits or _)")),
    Case("verilog-top-leading-digit", ("verilog", "lmul", "--top", "1top"),
         _argparse("verilog", "argument --top: '1top' is not a Verilog identifier (a letter or _, then letters, "
                              "digits or _)")),
    Case("verilog-output-is-folder", ("verilog", "lmul", "-o", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("verilog-output-under-file", ("verilog", "lmul", "-o", "{tmp}/file/lmul.v"),
         "lutforge: Output {tmp}/file/lmul.v cannot be written: {tmp}/file is a file, not a directory; choose "
         "another path.", files={"file": ""}),
]

SIM_CASES = [
    Case("sim-no-vectors", ("sim", "lmul", "--vectors", "0"),
         _argparse("sim", "argument --vectors: 0 is not from 1 to 10000000")),
    Case("sim-negative-vectors", ("sim", "lmul", "--vectors", "-5"),
         _argparse("sim", "argument --vectors: -5 is not from 1 to 10000000")),
    Case("sim-too-many-vectors", ("sim", "lmul", "--vectors", "10000001"),
         _argparse("sim", "argument --vectors: 10000001 is not from 1 to 10000000")),
    Case("sim-fractional-vectors", ("sim", "lmul", "--vectors", "1.5"),
         _argparse("sim", "argument --vectors: '1.5' is not an integer from 1 to 10000000")),
    Case("sim-negative-seed", ("sim", "lmul", "--seed", "-1"),
         _argparse("sim", "argument --seed: -1 is not 0 or more")),
    Case("sim-seed-not-a-number", ("sim", "lmul", "--seed", "x"),
         _argparse("sim", "argument --seed: 'x' is not an integer 0 or more")),
    Case("sim-seed-of-an-exhaustive-check", ("sim", "lmul", "-p", "format=e2m1", "--seed", "3"),
         "lutforge: seed=3 has no effect: the self-check of lmul runs all 256 inputs; leave the seed out, or give a "
         "count of random vectors (--vectors N) to draw with it."),
    Case("sim-unknown-simulator", ("sim", "lmul", "--simulator", "modelsim"),
         _argparse("sim", "argument --simulator: invalid choice: 'modelsim' (choose from 'amaranth', 'verilator', "
                          "'icarus')")),
    Case("sim-cocotb-on-amaranth", ("sim", "lmul", "--simulator", "amaranth", "--cocotb"),
         "lutforge: --cocotb drives Verilator or Icarus; --simulator amaranth runs without it, so leave --cocotb out "
         "or pick --simulator verilator."),
    Case("sim-waves-on-batch", ("sim", "lmul", "--waves", "vcd"),
         "lutforge: The batch harness cannot honour waves='vcd'; use the amaranth, cocotb-verilator or cocotb-icarus "
         "harnesses for it."),
    Case("sim-unknown-block", ("sim", "nonesuch"),
         f"lutforge: No block named 'nonesuch'; the registered blocks are {BLOCKS}."),
    Case("sim-unknown-param", ("sim", "fp_add", "-p", "lanes=2"),
         "lutforge: Block 'fp_add' has no parameter lanes; its parameters are format, latency, rounding, overflow, "
         "subnormals."),
    Case("sim-repeated-param", ("sim", "lmul", "-p", "format=bf16", "-p", "format=e4m3"),
         "lutforge: --param sets format twice (format=bf16 and format=e4m3); give it once."),
    Case("sim-param-out-of-range", ("sim", "centroid_search", "-p", "c_a=300"),
         _limit("centroid_search", "c_a", 300, 1, 256)),
    Case("sim-no-lanes", ("sim", "lmul_dot", "-p", "lanes=0"), _below("lmul_dot", "lanes", 0, 1, 64)),
    Case("sim-too-many-keys", ("sim", "lmul_attention", "-p", "keys=5000"),
         _limit("lmul_attention", "keys", 5000, 1, 1024)),
    Case("sim-json-is-folder", ("sim", "lmul", "--json", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("sim-json-under-file", ("sim", "lmul", "--json", "{tmp}/file/r.json"),
         "lutforge: Output {tmp}/file/r.json cannot be written: {tmp}/file is a file, not a directory; choose "
         "another path.", files={"file": ""}),
]

PROVE_CASES = [
    Case("prove-nothing", ("prove",),
         "lutforge: Name a catalogue block or a registered proof to prove, or pass --all, --fast or --list; "
         "`lutforge prove --list` shows the proof names."),
    Case("prove-list-with-block", ("prove", "--list", "lmul"),
         "lutforge: --list only lists the registered proofs; give it alone, or drop it to run proofs."),
    Case("prove-list-with-json", ("prove", "--list", "--json", "{tmp}/p.json"),
         "lutforge: --list only lists the registered proofs; give it alone, or drop it to run proofs."),
    Case("prove-all-and-fast", ("prove", "--all", "--fast"),
         "lutforge: --all runs every registered proof and --fast the fast ones; give one of them."),
    Case("prove-all-with-block", ("prove", "--all", "lmul"),
         "lutforge: --all selects registered proofs, so lmul would be ignored; name a proof or block, or pass --all, "
         "not both."),
    Case("prove-fast-with-proof", ("prove", "--fast", "lmul-spec-e4m3-default"),
         "lutforge: --fast selects registered proofs, so lmul-spec-e4m3-default would be ignored; name a proof or "
         "block, or pass --fast, not both."),
    Case("prove-unknown-name", ("prove", "lmul-spec-e9m9"),
         f"lutforge: 'lmul-spec-e9m9' is neither a registered proof nor a catalogue block; the blocks are {BLOCKS}, "
         f"and `lutforge prove --list` shows the proofs."),
    Case("prove-registered-with-params", ("prove", "lmul-spec-e4m3-default", "format=bf16"),
         "lutforge: lmul-spec-e4m3-default is a registered proof, which takes no NAME=VALUE parameters (format=bf16); "
         "name a catalogue block to prove it with parameters."),
    Case("prove-unknown-param", ("prove", "lmul", "colour=red"),
         "lutforge: Block 'lmul' has no parameter colour; its parameters are format, latency, policy, overflow."),
    Case("prove-malformed-param", ("prove", "lmul", "format"),
         "lutforge: NAME=VALUE takes NAME=VALUE, not 'format'."),
    Case("prove-repeated-param", ("prove", "lmul", "latency=1", "latency=2"),
         "lutforge: NAME=VALUE sets latency twice (latency=1 and latency=2); give it once."),
    Case("prove-latency-huge", ("prove", "lmul", "latency=99"), _limit("lmul", "latency", 99, 0, 32)),
    Case("prove-ignored-param", ("prove", "lmul", "policy=wrap", "overflow=inf"),
         "lutforge: Block 'lmul' parameter overflow=inf has no effect with policy=wrap; leave overflow out, or change "
         "policy."),
    Case("prove-sim-only-param", ("prove", "lmul_dot", "beats=3"),
         "lutforge: Block 'lmul_dot' parameter beats only sets the vectors `lutforge sim` draws; the design does not "
         "depend on it, so leave it out here."),
    Case("prove-block-without-reference", ("prove", "lmul_dot"),
         "lutforge: Block 'lmul_dot' has no reference to prove it against: use one of the blocks with a spec: lmul."),
    Case("prove-combinational-fp-block", ("prove", "fp_add"),
         "lutforge: Block 'fp_add' has no reference to prove it against: give it a latency above 0 to prove the "
         "pipelined form, or use one of the blocks with a spec: lmul."),
    Case("prove-zero-timeout", ("prove", "lmul", "--timeout", "0"),
         _argparse("prove", "argument --timeout: 0 is not from 1 to 86400")),
    Case("prove-timeout-not-a-number", ("prove", "lmul", "--timeout", "soon"),
         _argparse("prove", "argument --timeout: 'soon' is not a number from 1 to 86400")),
    Case("prove-negative-mutants", ("prove", "lmul", "--mutants", "-1"),
         _argparse("prove", "argument --mutants: -1 is not from 0 to 200")),
    Case("prove-too-many-mutants", ("prove", "lmul", "--mutants", "201"),
         _argparse("prove", "argument --mutants: 201 is not from 0 to 200")),
    Case("prove-mutants-without-target", ("prove", "lmul", "--mutants", "3"),
         f"lutforge: --mutants needs a proof with a fault-injection target, and lmul-spec has none; the targets are "
         f"{TARGETS}."),
    Case("prove-unknown-solver", ("prove", "lmul", "--solver", "z4"),
         _argparse("prove", "argument --solver: invalid choice: 'z4' (choose from "
                            + ", ".join(repr(s) for s in SOLVERS) + ")")),
    Case("prove-json-under-file", ("prove", "lmul", "--json", "{tmp}/file/p.json"),
         "lutforge: Output {tmp}/file/p.json cannot be written: {tmp}/file is a file, not a directory; choose "
         "another path.", files={"file": ""}),
]


def _soc(id, yaml_text, first_line, board="icebreaker"):
    """A bitstream build refused for the SoC configuration ``yaml_text`` (``{path}`` in ``first_line``)."""
    path = "{tmp}/soc.yaml"
    return Case(f"soc-{id}", ("bitstream", "--board", board, "--config", path),
                "lutforge: " + first_line.replace("{path}", path), files={"soc.yaml": yaml_text})


BITSTREAM_CASES = [
    Case("bitstream-no-board", ("bitstream",),
         f"lutforge: Name a board with --board (one of {', '.join(BOARDS)}) or pass --all."),
    Case("bitstream-unknown-board", ("bitstream", "--board", "de0"),
         _argparse("bitstream", f"argument --board: invalid choice: 'de0' (choose from {BOARD_NAMES})")),
    Case("bitstream-all-and-board", ("bitstream", "--all", "--board", "icebreaker"),
         "lutforge: --all builds every board, so --board icebreaker would be ignored; give one of them."),
    Case("bitstream-all-and-output", ("bitstream", "--all", "-o", "{tmp}/top.bin"),
         "lutforge: -o copies one board's bitstream, and --all builds several; pick a board with --board, or leave "
         "-o out (the table names each bitstream)."),
    Case("bitstream-output-is-folder", ("bitstream", "--board", "icebreaker", "-o", "{tmp}"),
         "lutforge: Output {tmp} is a directory; give a file path."),
    Case("bitstream-json-under-file", ("bitstream", "--board", "icebreaker", "--json", "{tmp}/file/b.json"),
         "lutforge: Output {tmp}/file/b.json cannot be written: {tmp}/file is a file, not a directory; choose "
         "another path.", files={"file": ""}),
    Case("bitstream-plot-not-an-image", ("bitstream", "--board", "icebreaker", "--plot", "{tmp}/plot.txt"),
         f"lutforge: The plot {{tmp}}/plot.txt has the suffix .txt, which names no image format; end it in one of "
         f"{IMAGE_SUFFIXES}."),
    Case("bitstream-plot-without-suffix", ("bitstream", "--board", "icebreaker", "--plot", "{tmp}/plot"),
         f"lutforge: The plot {{tmp}}/plot has no suffix, which names no image format; end it in one of "
         f"{IMAGE_SUFFIXES}."),
    Case("soc-missing-file", ("bitstream", "--board", "icebreaker", "--config", "{tmp}/soc.yaml"),
         "lutforge: The SoC configuration file {tmp}/soc.yaml does not exist; check the path."),
    Case("soc-folder", ("bitstream", "--board", "icebreaker", "--config", "{tmp}"),
         "lutforge: The SoC configuration file {tmp} is a directory; give a YAML file."),
    Case("soc-not-utf8", ("bitstream", "--board", "icebreaker", "--config", "{tmp}/soc.yaml"),
         "lutforge: The SoC configuration file {tmp}/soc.yaml is not UTF-8 text (byte 6); give a YAML file.",
         files={"soc.yaml": b"baud: \xff\xfe\n"}),
    _soc("list-key", "? [baud]\n: 9600\n", "{path}, line 1: a key must be a plain value, not list ['baud']; write "
                                           "the key as text."),
    _soc("empty-file", "", "The SoC configuration file {path} is empty; write the settings it should hold, or leave "
                           "the option out to use the defaults."),
    _soc("comments-only", "# baud: 9600\n", "The SoC configuration file {path} is empty; write the settings it should "
                                             "hold, or leave the option out to use the defaults."),
    _soc("empty-mapping", "{}\n", "{path} changes no SoC setting; set one of " + SETTINGS + ", or leave the option out "
                                  "to use the board's settings."),
    _soc("list", "- baud: 9600\n", "{path} holds list data, not SoC settings; write one `name: value` line for each of "
                                   + SETTINGS + " to change."),
    _soc("scalar", "115200\n", "{path} holds int data, not SoC settings; write one `name: value` line for each of "
                               + SETTINGS + " to change."),
    _soc("syntax-error", "baud: [115200\n", "{path}, line 2, column 1 is not valid YAML: expected ',' or ']', but got "
                                            "'<stream end>'; fix the file."),
    _soc("duplicate-key", "baud: 9600\nbaud: 115200\n",
         "{path}, line 2: key 'baud' is given twice (first on line 1); keep one of them."),
    _soc("unknown-key", "buad: 9600\n", "{path}: unknown SoC setting buad; the settings are " + SETTINGS
                                        + " (the clock and the GEMV core's sizes are the board's)."),
    _soc("clock", "clk_freq: 24000000\n", "{path}: unknown SoC setting clk_freq; the settings are " + SETTINGS
                                          + " (the clock and the GEMV core's sizes are the board's)."),
    _soc("gemv-sizes", "gemv: {lanes: 8}\n", "{path}: unknown SoC setting gemv; the settings are " + SETTINGS
                                             + " (the clock and the GEMV core's sizes are the board's)."),
    _soc("baud-zero", "baud: 0\n",
         "{path}: SoC baud=0 is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-negative", "baud: -9600\n",
         "{path}: SoC baud=-9600 is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-too-slow", "baud: 300\n",
         "{path}: SoC baud=300 is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-text", "baud: fast\n",
         "{path}: SoC baud='fast' is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-float", "baud: 115200.5\n",
         "{path}: SoC baud=115200.5 is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-boolean", "baud: yes\n",
         "{path}: SoC baud=True is not an integer 1200 or more; the UART runs at a standard rate such as 115200."),
    _soc("baud-too-fast", "baud: 4000000\n",
         "{path}: Baud rate 4000000 is too fast for a 12 MHz clock: the UART needs at least 4 clock cycles per bit; "
         "use 3000000 baud or less."),
    _soc("baud-off-the-clock", "baud: 2600000\n",
         "{path}: Baud rate 2600000 is 7.7% off at 12 MHz (divisor 5); UARTs tolerate about 2%: pick a baud rate "
         "closer to a divisor of the clock."),
    _soc("mem-not-power-of-two", "mem_size: 3000\n",
         "{path}: SoC mem_size 3000 must be a power of two of at least 256 bytes and at most 1048576 with memory: "
         "spram; pick one such as 4096."),
    _soc("mem-too-small", "mem_size: 128\n",
         "{path}: SoC mem_size 128 must be a power of two of at least 256 bytes and at most 1048576 with memory: "
         "spram; pick one such as 4096."),
    _soc("mem-huge", "mem_size: 4194304\n",
         "{path}: SoC mem_size 4194304 must be a power of two of at least 256 bytes and at most 1048576 with "
         "memory: spram; pick one such as 4096."),
    _soc("mem-text", "mem_size: 4k\n",
         "{path}: SoC mem_size '4k' must be a power of two of at least 256 bytes and at most 1048576 with memory: "
         "spram; pick one such as 4096."),
    _soc("mem-past-block-ram", "memory: bram\nmem_size: 16384\n",
         "{path}: SoC mem_size 16384 does not fit the icebreaker's block RAM (15360 bytes on its FPGA); use 8192 or "
         "less."),
    _soc("mem-not-whole-spram", "mem_size: 16384\n",
         "{path}: SoC mem_size 16384 cannot be built from the UP5K's SPRAM (four blocks of 32768 bytes); with "
         "memory: spram use 32768, 65536, 131072."),
    _soc("unknown-memory", "memory: dram\n", "{path}: Unknown SoC memory 'dram'; use one of bram, spram, sdram."),
    _soc("sdram-without-chip", "memory: sdram\n",
         "{path}: The orangecrab-25f has no SDR SDRAM the SoC can use; use memory: bram.", board="orangecrab-25f"),
    _soc("mem-past-sdram", "mem_size: 67108864\n",
         "{path}: SoC mem_size 67108864 must be a power of two of at least 256 bytes and at most 33554432 with "
         "memory: sdram; pick one such as 4096.", board="ulx3s-85f"),
    _soc("bram-left-at-sdram-size", "memory: bram\n",
         "{path}: SoC mem_size 33554432 must be a power of two of at least 256 bytes and at most 1048576 with "
         "memory: bram; pick one such as 4096.", board="ulx3s-85f"),
    _soc("spram-on-ecp5", "memory: spram\nmem_size: 32768\n",
         "{path}: The ulx3s-85f has no SPRAM (single-port RAM blocks are an iCE40 UP5K's); use memory: bram.",
         board="ulx3s-85f"),
    _soc("mem-past-block-ram-ecp5", "mem_size: 131072\n",
         "{path}: SoC mem_size 131072 does not fit the orangecrab-25f's block RAM (114688 bytes on its FPGA); use "
         "65536 or less.", board="orangecrab-25f"),
    _soc("idle-too-short", "idle_cycles: 10\n",
         "{path}: SoC idle_cycles=10 is not an integer from 2080 to 600000; at 115200 baud and 12 MHz the device must "
         "wait two byte times and give up within 50 ms."),
    _soc("idle-too-long", "idle_cycles: 10000000\n",
         "{path}: SoC idle_cycles=10000000 is not an integer from 2080 to 600000; at 115200 baud and 12 MHz the "
         "device must wait two byte times and give up within 50 ms."),
    _soc("idle-too-short-for-baud", "baud: 1200\n",
         "{path}: SoC idle_cycles=120000 is not an integer from 200000 to 600000; at 1200 baud and 12 MHz the device "
         "must wait two byte times and give up within 50 ms."),
    _soc("unknown-core", "core: gpu\n", "{path}: Unknown core 'gpu'; the SoC supports lmul-vector, gemv."),
    _soc("port-three-bytes", "port_bytes: 3\n",
         "{path}: SoC port_bytes 3 is not a memory port width; use one of 1, 2 (bytes a request moves)."),
    _soc("port-boolean", "port_bytes: yes\n",
         "{path}: SoC port_bytes True is not a memory port width; use one of 1, 2 (bytes a request moves)."),
    _soc("core-list", "core: [gemv]\n", "{path}: Unknown core ['gemv']; the SoC supports lmul-vector, gemv."),
    Case("soc-checked-for-every-board", ("bitstream", "--all", "--config", "{tmp}/soc.yaml"),
         "lutforge: {tmp}/soc.yaml: SoC mem_size 16384 does not fit the icebreaker's block RAM (15360 bytes on its "
         "FPGA); use 8192 or less.", files={"soc.yaml": "memory: bram\nmem_size: 16384\n"}),
]

RUN_BOARD_CASES = [
    Case("run-board-without-port", ("run", "--board", "icebreaker"),
         "lutforge: Running on board 'icebreaker' needs --port DEVICE (its serial port) or --transport sim (its SoC "
         "in Verilator)."),
    Case("run-board-unknown", ("run", "--board", "de0", "--transport", "sim"),
         _argparse("run", f"argument --board: invalid choice: 'de0' (choose from {BOARD_NAMES})")),
    Case("run-board-missing-serial-port", ("run", "--board", "icebreaker", "--port", "{tmp}/ttyUSB9"),
         "lutforge: Serial port {tmp}/ttyUSB9 does not exist; plug in the board and check the device name (e.g. "
         "/dev/ttyUSB1), or pass --transport sim to run its simulation."),
    Case("run-board-negative-seed", ("run", "--board", "icebreaker", "--transport", "sim", "--seed", "-3"),
         _argparse("run", "argument --seed: -3 is not 0 or more")),
    Case("run-board-soc-missing", ("run", "--board", "icebreaker", "--transport", "sim", "--soc-config", "{tmp}/soc.yaml"),
         "lutforge: The SoC configuration file {tmp}/soc.yaml does not exist; check the path."),
    Case("run-board-soc-baud-zero", ("run", "--board", "icebreaker", "--transport", "sim", "--soc-config", "{tmp}/soc.yaml"),
         "lutforge: {tmp}/soc.yaml: SoC baud=0 is not an integer 1200 or more; the UART runs at a standard rate such "
         "as 115200.", files={"soc.yaml": "baud: 0\n"}),
    Case("run-board-soc-duplicate-key", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--soc-config",
                                         "{tmp}/soc.yaml"),
         "lutforge: {tmp}/soc.yaml, line 2: key 'mem_size' is given twice (first on line 1); keep one of them.",
         files={"soc.yaml": "mem_size: 4096\nmem_size: 8192\n"}),
    Case("run-board-sim-and-port", ("run", "--board", "icebreaker", "--transport", "sim", "--port", "/dev/ttyUSB1"),
         "lutforge: --transport sim runs the board's SoC in Verilator and opens no serial port, so --port "
         "/dev/ttyUSB1 would be ignored; remove one of them."),
    Case("run-board-program-without-layer", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--program",
                                             "{tmp}"),
         "lutforge: --program needs --layer: a board runs one layer of a compiled Program (--program DIR --layer "
         "NAME), or its own check layer when both are left out."),
    Case("run-board-layer-without-program", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--layer", "x"),
         "lutforge: --layer needs --program: a board runs one layer of a compiled Program (--program DIR --layer "
         "NAME), or its own check layer when both are left out."),
    Case("run-board-tokens-without-program", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--tokens", "2"),
         "lutforge: --tokens applies to a Program's layer (--program DIR --layer NAME); the check layer always runs "
         "2 tokens. Remove it or name a layer."),
    Case("run-board-tokens-too-many", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--tokens", "65"),
         _argparse("run", "argument --tokens: 65 is not from 1 to 64")),
    Case("run-board-program-missing", ("run", "--board", "ulx3s-85f", "--transport", "sim", "--program",
                                       "{tmp}/nothing", "--layer", "x"),
         "lutforge: Program directory {tmp}/nothing does not exist; compile one with `lutforge compile`."),
    Case("run-board-json-under-file", ("run", "--board", "icebreaker", "--transport", "sim", "--json",
                                       "{tmp}/file/r.json"),
         "lutforge: Output {tmp}/file/r.json cannot be written: {tmp}/file is a file, not a directory; choose "
         "another path.", files={"file": ""}),
]

CASES = BLOCK_CASES + SIM_CASES + PROVE_CASES + BITSTREAM_CASES + RUN_BOARD_CASES


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 55
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_on_one_line(case, tmp_path, capsys):
    err = check_case(case, tmp_path, capsys)
    assert err.count("\n") == 1, err


def test_blocks_lists_every_limit(capsys):
    assert main(["blocks"]) == 0
    out = capsys.readouterr().out
    assert "    latency=0: pipeline stages (0: combinational) [0 to 32]\n" in out
    assert "    lanes=16: output lanes L [1 to 128]\n" in out
    assert ("    overflow=saturate (saturate|inf): overflow policy (the bare adder wraps) [unused with policy=wrap]\n"
            in out)
    assert "    beats=4: beats per vector drawn by the vector generator [1 to 1024; `lutforge sim` only]\n" in out


def test_every_integer_parameter_has_a_range():
    for name, block in catalogue().items():
        for pname, p in block.params.items():
            if p.parse is int and p.choices is None:
                assert p.low is not None and p.high is not None, f"{name}.{pname} has no documented limit"


def test_a_limit_is_inclusive():
    block = get_block("lut_gemv")
    assert block.resolve({"lanes": "128", "max_positions": "65535"})["lanes"] == 128


def test_a_sim_only_parameter_is_taken_by_the_self_check():
    assert get_block("lmul_dot").resolve({"beats": "3"})["beats"] == 3


def test_the_api_raises_usage_errors():
    with pytest.raises(UsageError, match=r"^Block 'lmul' parameter latency=40 is above its limit of 32; "):
        get_block("lmul").resolve({"latency": "40"})
    with pytest.raises(UsageError, match=r"^No block named 'lmull'"):
        get_block("lmull")
    with pytest.raises(UsageError, match=r"^SoC baud=0 is not an integer 1200 or more"):
        SocConfig.for_sim(baud=0)
    with pytest.raises(UsageError, match=r"^SoC idle_cycles=1 is not an integer from 160 to 400000"):
        SocConfig.for_sim(idle_cycles=1)


def test_proving_nothing_is_refused():
    with pytest.raises(UsageError, match=r"^No proofs were selected, and proving nothing proves nothing; "):
        run_proofs([])


def test_a_self_check_of_no_vectors_is_refused_and_never_passes():
    block = get_block("lmul")
    with pytest.raises(UsageError, match=r"^count=0 is not an integer 1 or more; a self-check of no vectors "
                                         r"checks nothing\.$"):
        self_check(block, block.resolve({}), "batch", count=0)
    empty = SelfCheck("lmul", {}, "batch", 0, False, 0, None, 0.0, False, 0.0)
    assert not empty.passed
