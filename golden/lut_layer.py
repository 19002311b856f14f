"""A co-quantized LUT-LLM linear layer: the parameters the compiler packs and the RTL consumes.

``co_quantize`` runs the whole offline flow for y = W x (W: N x K): activation codebooks from
calibration activations, weight codebooks and indices per (position, row block), 2D tables, table
quantization. Padding rules (see :mod:`lutforge.golden.codebooks`): K is zero-padded on the right
to ``P * v`` (``k_pad`` columns); the last row block holds ``last_block_rows`` rows; nothing is
dropped and no output row is invented.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .centroid_search import Metric, check_metric
from .codebooks import (
    check_centroid_count,
    check_group_rows,
    check_subvector_length,
    num_positions,
    train_activation_codebooks,
    train_weight_codebooks,
)
from .lut_tables import (
    ArtifactRounding,
    Granularity,
    QuantizedTables,
    Rounding,
    build_tables,
    check_table_quantization,
    pack_indices,
    quantize_tables,
    quantize_tables_artifact,
)

__all__ = ["LutLayer", "co_quantize"]


@dataclass(frozen=True)
class LutLayer:
    """Parameters of one co-quantized linear layer.

    Shapes (P = ceil(K / v) positions, NG = ceil(N / G) row blocks, Q position groups):

    * ``act_codebooks`` A: (P, c_a, v) float32; ``weight_codebooks`` B: (P, NG, c_w, v) float32;
    * ``widx``: (N, P) uint8, weight index of row n at position p (codebook B[p, n // G]);
    * ``tables``: (P, NG, c_a, c_w) float32, the unquantized 2D tables (reference only);
    * ``rounding``: the rounding of the table codes, "half-away" for scheme "artifact" (see
      :mod:`lutforge.golden.lut_tables`);
    * ``table_codes``: (P, NG, c_a, c_w) uint8 (uint16 above 8 bits), what the RTL looks up;
    * ``scales``: (Q, NG) float32 and ``zero_points``: (Q, NG) int64 (float32 for scheme
      "artifact"), expanded so that every (position group, row block) has its own entry even when
      the granularity shares one value; position group q covers positions
      ``q * positions_per_group .. min(P, (q + 1) * positions_per_group) - 1``.
    """

    in_features: int
    out_features: int
    v: int
    c_a: int
    c_w: int
    group_rows: int
    table_bits: int
    scheme: Literal["asymmetric", "artifact"]
    granularity: Granularity
    rounding: Rounding | ArtifactRounding
    head_rows: int | None
    positions_per_group: int
    metric: Metric
    act_codebooks: np.ndarray
    weight_codebooks: np.ndarray
    widx: np.ndarray
    tables: np.ndarray
    table_codes: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray

    @property
    def num_positions(self) -> int:
        return num_positions(self.in_features, self.v)

    @property
    def num_blocks(self) -> int:
        return num_positions(self.out_features, self.group_rows)

    @property
    def k_pad(self) -> int:
        """Zero columns appended to K so that it is a multiple of v."""
        return self.num_positions * self.v - self.in_features

    @property
    def num_position_groups(self) -> int:
        return num_positions(self.num_positions, self.positions_per_group)

    @property
    def last_block_rows(self) -> int:
        return self.out_features - (self.num_blocks - 1) * self.group_rows

    @property
    def act_index_bits(self) -> int:
        return max(1, (self.c_a - 1).bit_length())

    @property
    def weight_index_bits(self) -> int:
        return max(1, (self.c_w - 1).bit_length())

    def packed_weight_indices(self) -> np.ndarray:
        """widx packed per row with ``weight_index_bits`` bits each (see :func:`pack_indices`)."""
        return pack_indices(self.widx, self.weight_index_bits)

    def quantized_tables(self) -> QuantizedTables:
        return QuantizedTables(
            self.table_codes,
            self.scales,
            self.zero_points,
            self.table_bits,
            self.scheme,
            self.granularity,
            self.rounding,
            self.positions_per_group,
        )


def co_quantize(
    weight: np.ndarray,
    calibration: np.ndarray,
    *,
    v: int = 2,
    c_a: int = 64,
    c_w: int = 16,
    group_rows: int = 512,
    table_bits: int = 8,
    granularity: Granularity = "block",
    rounding: Rounding = "rne",
    head_rows: int | None = None,
    positions_per_group: int = 1,
    scheme: Literal["asymmetric", "artifact"] = "asymmetric",
    metric: Metric = "linf",
    seed: int = 0,
    iterations: int = 20,
    progress: bool = False,
    codebooks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> LutLayer:
    """Co-quantize ``weight`` (N, K) with activation codebooks fitted to ``calibration`` (n, K).

    ``granularity="head"`` needs ``head_rows``, a multiple of ``group_rows`` (a head is a whole
    number of row blocks). ``scheme="artifact"`` is the LUT-LLM authors' per-layer float32 scheme
    (:func:`~lutforge.golden.lut_tables.quantize_tables_artifact`); it rounds its own way (half away
    from zero, recorded as ``rounding="half-away"`` in the layer), needs ``granularity="layer"``
    and takes ``rounding`` only at its default ``"rne"``. ``progress`` shows k-means
    progress bars (on a terminal). ``codebooks`` = ``(act_codebooks, weight_codebooks, widx)`` from
    an earlier call with the same weight, calibration, v, c_a, c_w, group_rows, seed and iterations
    skips the k-means (the compiler caches them so table variants do not retrain).
    """
    v = check_subvector_length(v)
    c_a = check_centroid_count(c_a, "C_a")
    c_w = check_centroid_count(c_w, "C_w")
    group_rows = check_group_rows(group_rows)
    if table_bits not in (4, 8):
        raise ValueError(f"Table entries of {table_bits!r} bits are not supported; use 4 or 8 bits.")
    metric = check_metric(metric)
    if scheme not in ("asymmetric", "artifact"):
        raise ValueError(f"Table scheme {scheme!r} is not supported; use 'asymmetric' or 'artifact'.")
    if scheme == "artifact" and (granularity != "layer" or rounding != "rne"):
        raise ValueError(
            f"The artifact table scheme has one scale per layer and rounds as the LUT-LLM authors do "
            f"(half away from zero, in float32); got granularity={granularity!r}, rounding="
            f"{rounding!r}, so pass granularity='layer' and leave rounding at its default 'rne'."
        )
    weight = np.asarray(weight)
    calibration = np.asarray(calibration)
    if weight.ndim != 2 or calibration.ndim != 2 or weight.shape[1] != calibration.shape[1]:
        raise ValueError(
            f"Weight {weight.shape} and calibration activations {calibration.shape} do not match; "
            f"pass W as (N, K) and activations as (n_samples, K)."
        )
    blocks_per_head = None
    if granularity == "head":
        if (
            isinstance(head_rows, bool)
            or not isinstance(head_rows, (int, np.integer))
            or head_rows < 1
            or head_rows % group_rows
        ):
            raise ValueError(
                f"Granularity 'head' needs head_rows as a positive multiple of G={group_rows} "
                f"output rows; got head_rows={head_rows!r}."
            )
        blocks_per_head = int(head_rows) // group_rows
    elif head_rows is not None:
        raise ValueError(
            f"head_rows={head_rows!r} only applies to granularity 'head', not {granularity!r}; "
            f"drop it or pass granularity='head'."
        )

    check_table_quantization(granularity, rounding, blocks_per_head, positions_per_group)
    if codebooks is None:
        acts = train_activation_codebooks(
            calibration, v, c_a, seed=seed, iterations=iterations, progress=progress
        )
        wcb, widx = train_weight_codebooks(
            weight, v, c_w, group_rows, seed=seed, iterations=iterations, progress=progress
        )
    else:
        acts, wcb, widx = codebooks
        p_count, blocks = num_positions(weight.shape[1], v), num_positions(weight.shape[0], group_rows)
        if (acts.shape != (p_count, c_a, v) or wcb.shape != (p_count, blocks, c_w, v)
                or widx.shape != (weight.shape[0], p_count)):
            raise ValueError(
                f"Precomputed codebooks {acts.shape}, {wcb.shape}, indices {widx.shape} do not fit "
                f"a {weight.shape} weight with v={v}, C_a={c_a}, C_w={c_w}, G={group_rows}; "
                f"train them again (codebooks=None)."
            )
    tables = build_tables(acts, wcb)
    if scheme == "artifact":
        qt = quantize_tables_artifact(tables, table_bits)
    else:
        qt = quantize_tables(
            tables,
            table_bits,
            granularity,
            rounding,
            blocks_per_head=blocks_per_head,
            positions_per_group=positions_per_group,
        )
    return LutLayer(
        in_features=weight.shape[1],
        out_features=weight.shape[0],
        v=v,
        c_a=c_a,
        c_w=c_w,
        group_rows=int(group_rows),
        table_bits=int(table_bits),
        scheme=scheme,
        granularity=granularity,
        rounding=qt.rounding,
        head_rows=None if head_rows is None else int(head_rows),
        positions_per_group=qt.positions_per_group,
        metric=metric,
        act_codebooks=acts,
        weight_codebooks=wcb,
        widx=widx,
        tables=tables,
        table_codes=qt.codes,
        scales=qt.scales,
        zero_points=qt.zero_points,
    )
