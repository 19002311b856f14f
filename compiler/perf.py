"""Performance model of the GEMV core: cycles and bytes per layer, tokens/s for a target.

**Cycles** of one core run (one position group of P_r positions, N rows in T = ceil(N / L) tiles):

    cycles = T * P_r + search_latency + 3 + 2 * memory_latency

The core reads one table row per cycle (``tiles * P_r`` rows); the first tile waits for the first
descriptor-to-codebook round trip, the centroid pipeline (``search_latency = ceil(C_a / chains) +
ceil(log2 chains)`` cycles, :class:`lutforge.hdl.centroid_search.CentroidSearch`) and the first
table/index round trip, and three cycles of control. The constant was read off the RTL's
simulated cycles and is pinned by ``tests/compiler/test_backends.py`` against simulated cycles.

With resident tables (``tables="resident"``, :mod:`lutforge.hdl.gemv_core`) each of the run's
``B = ceil(T / (G / L))`` row blocks first writes its P selected rows into the banks, ``C_w``
cycles a row, plus a cycle to turn from loading to lookups::

    cycles = B * (P_r * C_w + 1) + T * P_r + search_latency + 4 + 2 * memory_latency

and reads ``B * P_r`` table words instead of ``T * P_r``. :func:`choose_tables` picks the engine
whose layers take fewer cycles on a target.

**Bytes** moved from external memory per run: codebooks ``P_r * C_a * v`` (int8), table rows
``T * P_r * C_w * b / 8`` (each tile re-reads the row it needs), indices ``T * P_r * L * wb / 8``,
activations ``P_r * v`` and results ``T * L * W / 8``.

**Weight-only LUT core** (:mod:`lutforge.hdl.tmac_core`), one run of P_r positions and NG row
blocks: it first builds the NG * P_r table rows from the codebook words (one per cycle), then
looks up one row per cycle per tile::

    cycles = NG * P_r + T * P_r + TMAC_OVERHEAD + memory_latency

Bytes: codebook words ``NG * P_r * C_w * v * cb_bits / 8`` (read once: the tables are built on
chip), indices as above, activations and results.

A layer's time on a target is ``max(cycles / clock, bytes / bandwidth)`` (the core overlaps its
memory requests with its work); a token here is the sum over the linear layers (the whole token,
with the decoder units, the host and the LM head: :mod:`lutforge.compiler.estimate`). Target
presets give clock, memory bandwidth and lanes.

**Board targets** describe the SoC that ``lutforge bitstream`` builds for the board
(:mod:`lutforge.boards.platforms`; ``tests/boards/test_program_layer.py`` holds them equal): its
clock, its GEMV core's lanes, its memory (the UP5K's SPRAM, the ULX3S's SDR SDRAM, the OrangeCrab's
block RAM), and that memory's port (a :class:`BoardPort`, :class:`lutforge.boards.soc.GemvShell`)
of ``width``-byte words (a byte, or the SDRAM's and SPRAM's 16 bits), which streams the channels'
words a request a cycle, word after word (``ceil(s / width)`` cycles for a word of ``s`` bytes,
only the bytes the core uses); a codebook or table word is the only one its channel may hold, so
the next of its channel waits for the core to take it, ``1 + read_latency`` cycles (latency 1 on
chip, CL + 2 through the SDRAM controller); index words stream (their channel holds enough to
cover the latency); a result tile takes ``1 + 4 L / width`` (a port word a cycle); an SDRAM's
refresh takes ``refresh_lost`` of every ``refresh_period`` cycles. A LUT run on such a target
takes ``max(core cycles, port cycles)``, except that the resident engine's table loads between two
row blocks, where the core is the slower, are a phase of their own. Each board's simulated SoC's
cycles on SmolLM2 layers are within 1 % of it on chip memory (what is left: the codebook phase's
and the tiles' last few cycles, each run's start) and within 4 % through the SDRAM (rows the
channels close for each other). The OrangeCrab's DDR3 is not served (docs/memory_engines.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..golden.gemv_core import TABLE_ENGINES
from ..program.core import GemvCoreParams

__all__ = ["Target", "TARGETS", "LayerShape", "LayerCost", "run_cycles", "run_requests", "layer_cost", "model_cost",
           "block_layer_cost", "program_cost", "program_layer_costs", "board_port_cycles", "BoardPort", "tmac_run_cycles", "tmac_layer_cost",
           "MODEL_SHAPES", "PUBLISHED", "resolve_target", "method_layer_cost", "TokenCost", "method_token_cost",
           "choose_tables", "TableChoice", "program_table_choice"]


@dataclass(frozen=True)
class Target:
    name: str
    clock_mhz: float
    bandwidth_gbs: float
    lanes: int
    memory_latency: int
    memory_mib: float | None
    note: str
    # "stream": memory words arrive at ``bandwidth_gbs``; a BoardPort: the board SoC's memory port
    # (module docstring), whose cycles bound each run.
    port: "str | BoardPort" = "stream"


@dataclass(frozen=True)
class BoardPort:
    """A board SoC's memory port as the performance model counts it: a request moves a word of
    ``width`` bytes (:data:`lutforge.boards.memory_port.PORT_WIDTHS`), a read's word arrives
    ``read_latency`` cycles after the port took its address (1 for block RAM and SPRAM), and an
    SDRAM behind it takes no request for ``refresh_lost`` cycles of every ``refresh_period``
    (:func:`lutforge.boards.sdram.port_timing`; 0: no refresh)."""

    read_latency: int = 1
    refresh_period: int = 0
    refresh_lost: int = 0
    width: int = 1


ON_CHIP_PORT = BoardPort()  # a byte a request, the answer the next cycle
WORD_PORT = BoardPort(width=2)  # the same with 16-bit words


TARGETS = {
    "sim": Target("sim", 100.0, math.inf, 16, 4, None,
                  "the simulated core: 16 lanes, an always-ready memory of 4 cycles latency"),
    # The board SoCs as built: clock, lanes, memory (SPRAM, SDRAM or block RAM), one 16-bit word
    # per cycle at most (the SDRAM's timing: its controller's, at 25 MHz, tests/boards/test_program_layer.py).
    "icebreaker": Target("icebreaker", 12.0, 2 * 12e6 / 1e9, 2, 1, 131072 / 2**20,
                         "iCE40UP5K SoC: 12 MHz, 2 lanes, 128 KiB SPRAM on a 16-bit port", WORD_PORT),
    "ulx3s-85f": Target("ulx3s-85f", 25.0, 2 * 25e6 / 1e9, 4, 1, 32.0,
                        "ECP5-85F SoC: 25 MHz, 4 lanes, 32 MiB SDR SDRAM on a 16-bit port",
                        BoardPort(read_latency=4, refresh_period=195, refresh_lost=10, width=2)),
    "orangecrab-25f": Target("orangecrab-25f", 48.0, 2 * 48e6 / 1e9, 4, 1, 16384 / 2**20,
                             "ECP5-25F SoC: 48 MHz, 4 lanes, 16 KiB block RAM on a 16-bit port", WORD_PORT),
    "v80": Target("v80", 250.0, 820.0, 1024, 64, 32768.0,
                  "V80-class: 250 MHz, 820 GB/s HBM, 1024 lanes (our choice), 32 GiB"),
}


def resolve_target(cfg) -> Target:
    """A :class:`Target` from a ``target`` config section (preset plus overrides)."""
    base = TARGETS[cfg.preset]
    return Target(base.name, cfg.clock_mhz or base.clock_mhz, cfg.bandwidth_gbs or base.bandwidth_gbs,
                  cfg.lanes or base.lanes, base.memory_latency, base.memory_mib, base.note, base.port)


@dataclass(frozen=True)
class LayerShape:
    name: str
    in_features: int
    out_features: int


@dataclass(frozen=True)
class LayerCost:
    name: str
    cycles: int
    bytes: int
    seconds: float
    bound: str  # "compute" or "memory"


def search_latency(c_a: int, chains: int) -> int:
    return -(-c_a // chains) + max(0, (chains - 1).bit_length())


def _blocks(tiles: int, tiles_per_block: int) -> int:
    """Row blocks of a run of ``tiles`` tiles (``tiles_per_block`` 0: one block)."""
    return -(-tiles // (tiles_per_block or tiles))


def run_cycles(positions: int, out_features: int, *, lanes: int, c_a: int, chains: int,
               memory_latency: int, tables: str = "rows", c_w: int = 16, tiles_per_block: int = 0) -> int:
    tiles = -(-out_features // lanes)
    cycles = tiles * positions + search_latency(c_a, chains) + 3 + 2 * memory_latency
    if tables == "resident":
        cycles += _blocks(tiles, tiles_per_block) * (positions * c_w + 1) + 1
    return cycles


def run_requests(positions: int, out_features: int, lanes: int, *, tables: str = "rows",
                 tiles_per_block: int = 0) -> dict[str, int]:
    """Memory words one core run reads per channel: each tile re-reads its table rows, or with
    resident tables each row block reads them once."""
    tiles = -(-out_features // lanes)
    tab = _blocks(tiles, tiles_per_block) * positions if tables == "resident" else tiles * positions
    return {"cb": positions, "tab": tab, "idx": tiles * positions}


def board_port_cycles(positions: int, out_features: int, core: GemvCoreParams, port: BoardPort = ON_CHIP_PORT,
                      tiles_per_block: int = 0) -> int:
    """Cycles the board SoC's memory port (module docstring) spends on one core run's words,
    refresh left out (:func:`layer_cost` adds it over a whole layer)."""
    words = dict(run_requests(positions, out_features, core.lanes, tables=core.tables,
                              tiles_per_block=tiles_per_block), x=positions)
    tiles = -(-out_features // core.lanes)
    # A request a cycle, word after word; a codebook or table word is the only one its channel may
    # hold, so the next waits for the core to take it: the memory's latency and a cycle. Index
    # words stream. A result tile: a port word a cycle and one.
    return (sum(n * -(-core.word_bytes[k] // port.width) for k, n in words.items())
            + (words["cb"] + words["tab"]) * (1 + port.read_latency)
            + tiles * (1 + 4 * core.lanes // port.width))


def _refreshed(cycles: int, port: BoardPort) -> int:
    """``cycles`` of port work stretched by the refreshes, between which alone the port serves."""
    if not port.refresh_period:
        return cycles
    return math.ceil(cycles * port.refresh_period / (port.refresh_period - port.refresh_lost))


def _table_loads(positions: int, out_features: int, core: GemvCoreParams, port: BoardPort,
                 tiles_per_block: int) -> tuple[int, int]:
    """The resident engine's table loads in one run on a board that are a phase of their own: (the
    core's cycles, the port's). Per row block the core writes the P selected rows into its banks,
    ``C_w`` cycles a row, while the port fetches the next row (its channel holds one). The first
    block's rows go in as the centroid search chooses them, while the port streams the codebooks
    (counted with the rest of the run); every later block's come between two blocks' lookups, with
    little else for the port to do. The multiplexer engine has no such phase."""
    if core.tables != "resident":
        return 0, 0
    blocks = _blocks(-(-out_features // core.lanes), tiles_per_block) - 1
    row = -(-core.word_bytes["tab"] // port.width) + 1 + port.read_latency
    return blocks * (positions * core.c_w + 1), _refreshed(blocks * positions * row, port)


def layer_cost(shape: LayerShape, core: GemvCoreParams, *, memory_latency: int, clock_mhz: float,
               bandwidth_gbs: float, positions_per_run: int = 0, port: "str | BoardPort" = "stream",
               group_rows: int = 0) -> LayerCost:
    """One GEMV of ``shape`` on ``core`` (its quantization sizes, lanes, chains and table engine),
    in runs of at most ``positions_per_run`` positions (0: one run), row blocks of ``group_rows``
    rows (0: one block), its words served by ``port`` (module docstring)."""
    v, c_a, c_w, b = core.v, core.c_a, core.c_w, core.table_bits
    lanes, chains = core.lanes, core.chains
    p_total = -(-shape.in_features // v)
    per_run = positions_per_run or p_total
    runs = [min(per_run, p_total - p0) for p0 in range(0, p_total, per_run)]
    tiles = -(-shape.out_features // lanes)
    wb = max(1, (c_w - 1).bit_length())
    acc_w = (max(runs) * ((1 << b) - 1)).bit_length()
    per_block = -(-group_rows // lanes)
    engine = dict(tables=core.tables, tiles_per_block=per_block)
    cycles = sum(run_cycles(p, shape.out_features, lanes=lanes, c_a=c_a, chains=chains,
                            memory_latency=memory_latency, c_w=c_w, **engine) for p in runs)
    if isinstance(port, BoardPort):
        total = served = 0
        for p in runs:
            compute = run_cycles(p, shape.out_features, lanes=lanes, c_a=c_a, chains=chains,
                                 memory_latency=memory_latency, c_w=c_w, **engine)
            words = _refreshed(board_port_cycles(p, shape.out_features, core, port, per_block), port)
            load_core, load_port = _table_loads(p, shape.out_features, core, port, per_block)
            # Table loads between blocks, then the rest: each takes the longer of the core's and the port's cycles.
            total += max(load_core, load_port) + max(compute - load_core, words - load_port)
            served += words
        bound = "memory" if served > cycles else "compute"
        cycles = total
    nbytes = 0
    for p in runs:
        words = run_requests(p, shape.out_features, lanes, **engine)
        nbytes += (words["cb"] * c_a * v * 8 + words["tab"] * c_w * b + words["idx"] * lanes * wb
                   + p * v * 8 + tiles * lanes * acc_w) // 8
    t_compute = cycles / (clock_mhz * 1e6)
    if isinstance(port, BoardPort):
        return LayerCost(shape.name, cycles, nbytes, t_compute, bound)
    t_memory = nbytes / (bandwidth_gbs * 1e9)
    return LayerCost(shape.name, cycles, nbytes, max(t_compute, t_memory),
                     "compute" if t_compute >= t_memory else "memory")


# Control cycles of a weight-only core run besides its rows and the first codebook round trip (the
# index requests of the lookups are issued while the last table rows are built); read off the
# simulated RTL and pinned by tests/compiler/test_tmac_layers.py.
TMAC_OVERHEAD = 3


def tmac_run_cycles(positions: int, blocks: int, out_features: int, *, lanes: int, memory_latency: int) -> int:
    tiles = -(-out_features // lanes)
    return blocks * positions + tiles * positions + TMAC_OVERHEAD + memory_latency


def tmac_layer_cost(shape: LayerShape, *, v: int, c_w: int, cb_bits: int, group_rows: int, lanes: int,
                    memory_latency: int, clock_mhz: float, bandwidth_gbs: float) -> LayerCost:
    """One run of the weight-only core over ``shape`` (all its positions): row blocks of
    ``group_rows`` rows (0: one block). A layer cut into K runs is the sum of its runs' costs."""
    from ..golden.tmac import tmac_table_bits

    blocks = -(-shape.out_features // (group_rows or shape.out_features))
    p = -(-shape.in_features // v)
    tiles = -(-shape.out_features // lanes)
    wb = max(1, (c_w - 1).bit_length())
    acc_w = (p * ((1 << tmac_table_bits(v, cb_bits)) - 1)).bit_length()
    cycles = tmac_run_cycles(p, blocks, shape.out_features, lanes=lanes, memory_latency=memory_latency)
    nbytes = (blocks * p * c_w * v * cb_bits + tiles * p * lanes * wb + p * v * 8 + tiles * lanes * acc_w) // 8
    t_compute = cycles / (clock_mhz * 1e6)
    t_memory = nbytes / (bandwidth_gbs * 1e9)
    return LayerCost(shape.name, cycles, nbytes, max(t_compute, t_memory),
                     "compute" if t_compute >= t_memory else "memory")


def _block(d: int, ff: int, q_out: int, kv_out: int) -> list[tuple[str, int, int]]:
    return [("attn.q", d, q_out), ("attn.k", d, kv_out), ("attn.v", d, kv_out), ("attn.o", q_out, d),
            ("mlp.gate", d, ff), ("mlp.up", d, ff), ("mlp.down", ff, d)]


# Decoder linears only (lm_head excluded): (layers, per-block shapes).
MODEL_SHAPES = {
    "SmolLM2-135M": (30, _block(576, 1536, 576, 192)),
    "Qwen3-1.7B": (28, _block(2048, 6144, 2048, 1024)),
}

# LUT-LLM (arXiv 2511.06174) and its artifact: 128-token prefill + 256 decoded tokens of a
# customised Qwen3-1.7B at 250 MHz on the V80 in 1.410 s (so >= 256 / 1.410 tokens/s decoding).
PUBLISHED = {"Qwen3-1.7B": {"seconds_128_prefill_256_decode": 1.410,
                            "decode_tokens_per_s_lower_bound": round(256 / 1.410, 1),
                            "source": "LUT-LLM artifact latency check (V80, 250 MHz)"}}


def model_cost(model: str, core: GemvCoreParams, target: Target, *, group_rows: int,
               positions_per_run: int = 0) -> dict:
    """Per-token decode cost of a model's decoder linears on ``target``: ``core`` with the target's
    lanes, weight-codebook row blocks of ``group_rows`` rows."""
    n_layers, block = MODEL_SHAPES[model]
    core = dataclasses.replace(core, lanes=target.lanes)
    costs = [layer_cost(LayerShape(n, k, o), core, memory_latency=target.memory_latency,
                        clock_mhz=target.clock_mhz, bandwidth_gbs=target.bandwidth_gbs,
                        positions_per_run=positions_per_run, port=target.port)
             for n, k, o in block]
    seconds = n_layers * sum(c.seconds for c in costs)
    nbytes = n_layers * sum(c.bytes for c in costs)
    weights = n_layers * sum(k * o for _, k, o in block)
    stored = n_layers * sum(
        o * k * core.widx_bits / core.v / 8                            # weight indices
        + -(-k // core.v) * -(-o // group_rows) * core.c_a * core.c_w * core.table_bits / 8
        + -(-k // core.v) * core.c_a * core.v                          # int8 activation codebooks
        for _, k, o in block)
    return {"model": model, "target": target.name, "cycles_per_token": n_layers * sum(c.cycles for c in costs),
            "bytes_per_token": nbytes, "seconds_per_token": seconds, "tokens_per_s": 1.0 / seconds,
            "bound": sorted({c.bound for c in costs}), "weights": weights,
            "image_mib": stored / 2**20,
            "fits_memory": None if target.memory_mib is None else stored / 2**20 < target.memory_mib,
            "published": PUBLISHED.get(model)}


def block_layer_cost(shape: LayerShape, fmt, *, lanes: int, memory_latency: int, clock_mhz: float,
                     bandwidth_gbs: float) -> LayerCost:
    """One GEMV of ``shape`` on the block-format core (:mod:`lutforge.golden.block_gemv` format
    ``fmt``, ``lanes`` lanes): one run over K padded to whole 32-element blocks. Bytes: the weight
    elements and scales, the activation elements and scales, and one fp32 accumulator per row."""
    k = -(-shape.in_features // 32) * 32
    chunks = k // fmt.chunk
    tiles = -(-shape.out_features // lanes)
    cycles = block_run_cycles(chunks, shape.out_features, lanes, memory_latency)
    nbytes = (tiles * lanes * (k * fmt.weight_bits + chunks * 8) + k * fmt.act_bits + (k // fmt.act_block) * 8
              + tiles * lanes * 32) // 8
    t_compute = cycles / (clock_mhz * 1e6)
    t_memory = nbytes / (bandwidth_gbs * 1e9)
    return LayerCost(shape.name, cycles, nbytes, max(t_compute, t_memory),
                     "compute" if t_compute >= t_memory else "memory")


def program_layer_costs(program, target: Target, *, lanes: int | None = None, chains: int = 4,
                        tables: str = "rows") -> tuple[list, float]:
    """The :class:`LayerCost` of every run of every layer of a Program for one token on ``target``
    (each layer on its core, with ``lanes`` lanes, default: the target's; LUT layers on the
    ``tables`` engine), and the bytes its images occupy."""
    lanes = lanes or target.lanes
    clock = dict(memory_latency=target.memory_latency, clock_mhz=target.clock_mhz, bandwidth_gbs=target.bandwidth_gbs)
    costs, stored = [], 0.0
    for layer in program.layers.values():
        shape = LayerShape(layer.name, layer.in_features, layer.out_features)
        if layer.kind == "block":
            fmt = layer.format
            costs.append(block_layer_cost(shape, fmt, lanes=lanes, **clock))
            stored += layer.out_features * layer.chunks * fmt.chunk * (fmt.weight_bits + 8 / fmt.chunk) / 8
            continue
        if layer.kind == "tmac":
            for run in layer.runs:
                costs.append(tmac_layer_cost(
                    LayerShape(layer.name, run.positions * layer.v, layer.out_features), v=layer.v, c_w=layer.c_w,
                    cb_bits=layer.cb_bits, group_rows=layer.group_rows, lanes=lanes, **clock))
            stored += sum(words.size * 4 for words in (layer.cb, layer.idx))
            continue
        core = GemvCoreParams(v=layer.v, c_a=layer.c_a, c_w=layer.c_w, table_bits=layer.table_bits,
                              lanes=lanes, chains=chains, tables=tables)
        for run in layer.runs:
            costs.append(layer_cost(LayerShape(layer.name, run.positions * layer.v, layer.out_features), core,
                                    port=target.port, group_rows=layer.group_rows, **clock))
        stored += sum(words.size * 4 for words in (layer.cb, layer.tab, layer.idx))
    return costs, stored


def program_table_choice(program, target: Target, *, lanes: int | None = None, chains: int = 4) -> "TableChoice":
    """The table engine on which a Program's layers take less time on ``target``
    (:func:`choose_tables` over :func:`program_layer_costs`)."""
    return choose_tables(lambda engine: sum(
        c.seconds for c in program_layer_costs(program, target, lanes=lanes, chains=chains, tables=engine)[0]))


def program_cost(program, target: Target, *, chains: int = 4, model: str = "SmolLM2-135M",
                 tables: str | None = None) -> dict:
    """Per-token decode cost of a Program's layers on ``target`` (each layer on its core, with the
    target's lanes): the projection of what was compiled, whatever mix of LUT and block layers.
    LUT layers run on the ``tables`` engine, by default the one :func:`choose_tables` picks."""
    if tables is None:
        tables = program_table_choice(program, target, chains=chains).tables
    costs, stored = program_layer_costs(program, target, chains=chains, tables=tables)
    seconds = sum(c.seconds for c in costs)
    return {"model": model, "target": target.name, "tables": tables,
            "cycles_per_token": sum(c.cycles for c in costs),
            "bytes_per_token": sum(c.bytes for c in costs), "seconds_per_token": seconds,
            "tokens_per_s": 1.0 / seconds, "bound": sorted({c.bound for c in costs}),
            "weights": sum(layer.in_features * layer.out_features for layer in program.layers.values()),
            "image_mib": stored / 2**20,
            "fits_memory": None if target.memory_mib is None else stored / 2**20 < target.memory_mib,
            "published": PUBLISHED.get(model)}


@dataclass(frozen=True)
class TableChoice:
    """The GEMV core's table engine the compiler builds for a target (the one whose layers take
    less time there), with the seconds of one token's layers on each engine."""
    tables: str
    seconds: dict[str, float]

    def __str__(self) -> str:
        times = ", ".join(f"{engine} {self.seconds[engine] * 1e3:.3f} ms" for engine in TABLE_ENGINES)
        return f"table engine {self.tables} (one token's LUT layers: {times})"


def choose_tables(seconds_of) -> TableChoice:
    """The table engine with the lower ``seconds_of(engine)`` (the first listed on a tie): a
    narrow memory port or long row blocks favour resident tables, a wide memory and short blocks
    the multiplexers (:mod:`lutforge.hdl.gemv_core`)."""
    seconds = {engine: seconds_of(engine) for engine in TABLE_ENGINES}
    return TableChoice(min(TABLE_ENGINES, key=lambda engine: seconds[engine]), seconds)


def block_run_cycles(chunks: int, out_features: int, lanes: int, memory_latency: int) -> int:
    """Cycles of one run of the block-format GEMV core (:mod:`lutforge.hdl.block_gemv`).

    One (tile, chunk) weight word per cycle once the first answer is back: ``tiles * chunks`` plus
    the first memory round trip and four cycles of descriptor, pipeline (three stages) and output
    register, with activations and results never stalling. Read off the simulated RTL and pinned by
    ``tests/hdl/test_block_gemv.py``.
    """
    tiles = -(-out_features // lanes)
    return tiles * chunks + memory_latency + 4


def method_layer_cost(m, shape: LayerShape, target: Target, *, lanes: int, chains: int = 4,
                      tables: str = "rows") -> LayerCost:
    """One GEMV of ``shape`` quantized by the layer method ``m`` (``compiler.lut_methods.LayerMethod``)
    on the core that runs it, with ``lanes`` lanes: the co-quantized LUT core (a residual method is
    two runs of the same shape; ``tables``: its table engine), the weight-only core, or the
    block-format core."""
    clock = dict(memory_latency=target.memory_latency, clock_mhz=target.clock_mhz,
                 bandwidth_gbs=target.bandwidth_gbs)
    if m.kind == "tmac":
        return tmac_layer_cost(shape, v=m.v, c_w=m.c_w, cb_bits=m.cb_bits, group_rows=m.group_rows, lanes=lanes,
                               **clock)
    if m.kind == "lut":
        core = GemvCoreParams(v=m.v, c_a=m.c_a, c_w=m.c_w, table_bits=m.table_bits, lanes=lanes, chains=chains,
                              tables=tables)
        one = layer_cost(shape, core, positions_per_run=m.scale_positions if m.scales == "block" else 0,
                         port=target.port, group_rows=m.group_rows, **clock)
        stages = 2 if m.residual else 1
        return LayerCost(shape.name, stages * one.cycles, stages * one.bytes, stages * one.seconds, one.bound)
    from ..golden.block_gemv import BlockGemvFormat

    try:
        fmt = BlockGemvFormat(m.kind, m.act)
    except ValueError as error:
        raise ValueError(f"Layer kind {m.kind!r} runs on no core, so it has no cost: {error}") from None
    return block_layer_cost(shape, fmt, lanes=lanes, **clock)


@dataclass(frozen=True)
class TokenCost:
    """One decoded token's decoder linears on a target, each layer on the core of its method."""
    model: str
    target: str
    lanes: int
    cycles: int
    bytes: int
    seconds: float
    bound: tuple[str, ...]
    tables: str = "rows"  # the LUT core's table engine the cost was taken on

    @property
    def tokens_per_s(self) -> float:
        return 1.0 / self.seconds


def method_token_cost(methods, model: str, target: Target, *, lanes: int | None = None, chains: int = 4,
                      tables: str | None = None) -> TokenCost:
    """:func:`method_layer_cost` summed over one token's decoder linears of ``model`` (a key of
    :data:`MODEL_SHAPES`), each layer quantized by ``methods``: one method for every layer, or a
    function of the layer's name (``layers.3.attn.q``) such as ``MethodConfig.method``. The
    target's lanes unless ``lanes`` is given; LUT layers on the ``tables`` engine, by default the
    one :func:`choose_tables` picks for these layers on the target."""
    n_layers, block = MODEL_SHAPES[model]
    lanes = lanes or target.lanes
    method_of = methods if callable(methods) else (lambda name: methods)

    def costs_on(engine: str) -> list[LayerCost]:
        return [method_layer_cost(method_of(f"layers.{i}.{n}"), LayerShape(f"layers.{i}.{n}", k, o), target,
                                  lanes=lanes, chains=chains, tables=engine)
                for i in range(n_layers) for n, k, o in block]

    if tables is None:
        tables = choose_tables(lambda engine: sum(c.seconds for c in costs_on(engine))).tables
    costs = costs_on(tables)
    return TokenCost(model, target.name, lanes, sum(c.cycles for c in costs), sum(c.bytes for c in costs),
                     sum(c.seconds for c in costs), tuple(sorted({c.bound for c in costs})), tables)
