"""Centroid search unit: the nearest integer codebook entry of each activation sub-vector.

Bit-exact with :func:`lutforge.golden.centroid_search.search` on int8 operands: integer
``"linf"`` (``max_j |x_j - c_j|``) or ``"l2"`` (``sum_j (x_j - c_j)^2``) distances, the lowest index
among the minimal distances wins.

Elements are signed ``element_bits``-bit integers, 8 (int8) by default. Narrower elements (2 to 7
bits) exist for proofs: the L2 distance squares each difference, and a SAT solver cannot prove an
argmin over 8-bit squares equal to the plain one within minutes, while 3- or 4-bit elements exercise
the same structure (chains, tree, tie rule) in seconds. Values of a narrow unit are the int8 values
that fit in ``element_bits`` bits, so the golden int8 search is its reference too.

Structure (the artifact's ``ccu``): ``chains`` chains of ``chain_length`` distance PEs, then a
binary argmin tree over the chain results. PE ``j`` of chain ``k`` handles centroid
``k * chain_length + j`` (PEs past ``c_a`` are plain registers) and passes ``(best distance, best index)``
to PE ``j + 1`` through a register; a chain replaces its incumbent only on a strictly smaller
distance, and the tree takes its right input only when strictly smaller, so ties keep the lowest
index. Every stage is registered and the pipeline moves as one (it stalls only when the output is
held), so it takes one sub-vector per cycle; latency is ``chain_length + ceil(log2(chains))`` cycles.

Stream ``i`` payload, with ``e = element_bits``: ``x`` (v signed elements, element j at bits
``e j .. e j + e - 1``) and ``codebook`` (c_a * v signed elements, centroid a element j at element
``a * v + j``); the codebook travels with the
sub-vector so that each position can use its own codebook (the GEMV core reads it from memory).
Stream ``o`` payload: the index, ``max(1, ceil(log2 c_a))`` bits.
"""

from amaranth import Module, Signal, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.centroid_search import METRICS
from ..golden.codebooks import check_centroid_count, check_subvector_length

__all__ = ["CentroidSearch", "distance_width", "check_element_bits"]

ELEMENT_BITS = (2, 8)  # narrowest and widest signed element the unit takes


def check_element_bits(element_bits) -> int:
    """``element_bits`` if it is a supported signed element width, else a ValueError saying why."""
    low, high = ELEMENT_BITS
    if isinstance(element_bits, bool) or not isinstance(element_bits, int) or not low <= element_bits <= high:
        raise ValueError(
            f"element_bits={element_bits!r} is not supported: centroid search elements are signed "
            f"integers of {low} to {high} bits; use {high} for int8 operands, or {low} to {high - 1} for a "
            f"narrow unit."
        )
    return element_bits


def distance_width(v: int, metric: str, element_bits: int = 8) -> int:
    """Unsigned bits of the largest distance of ``element_bits``-bit elements.

    A difference of two such elements reaches ``2^e - 1`` in magnitude (255 for int8), so the
    largest distance is that (linf) or ``v * (2^e - 1)^2`` (l2).
    """
    top = (1 << element_bits) - 1
    return element_bits if metric == "linf" else (v * top * top).bit_length()


class CentroidSearch(wiring.Component):
    """The index of the codebook entry nearest to an activation sub-vector, lowest index on ties.

    Equals :func:`lutforge.golden.centroid_search.search` (integer ``"linf"`` or ``"l2"``
    distance) on signed ``element_bits``-bit operands.

    Ports: ``i`` (in: ``x``, v elements, and ``codebook``, ``c_a`` centroids of v elements, one
    transfer per sub-vector) and ``o`` (out: the index, ``index_bits`` wide).

    Parameters: ``v`` (sub-vector length), ``c_a`` (centroids), ``metric``, ``chains`` and
    ``chain_length`` (the PE chains feeding the argmin tree; ``chains * chain_length >= c_a``),
    ``element_bits`` (8 for int8, 2 to 7 for narrow proof builds).

    Throughput and latency: one sub-vector per cycle; ``latency = chain_length +
    ceil(log2(chains))`` cycles. The pipeline stalls as a whole only while ``o`` holds an
    unaccepted result.
    """

    def __init__(self, v: int = 2, c_a: int = 64, *, metric: str = "linf", chains: int = 4,
                 chain_length: "int | None" = None, element_bits: int = 8):
        try:
            self.element_bits = check_element_bits(element_bits)
            self._configure(v, c_a, metric, chains, chain_length)
        except (ValueError, TypeError):
            self._MustUse__silence = True  # a rejected component is not an unused one
            raise
        element = signed(self.element_bits)
        payload = data.StructLayout({
            "x": data.ArrayLayout(element, self.v),
            "codebook": data.ArrayLayout(element, self.c_a * self.v),
        })
        super().__init__({
            "i": In(stream.Signature(payload)),
            "o": Out(stream.Signature(unsigned(self.index_bits))),
        })

    def _configure(self, v, c_a, metric, chains, chain_length):
        self.v = check_subvector_length(v)
        self.c_a = check_centroid_count(c_a, "C_a")
        if metric not in METRICS:
            raise ValueError(f"Distance metric {metric!r} is not supported; use 'linf' or 'l2'.")
        self.metric = metric
        if isinstance(chains, bool) or not isinstance(chains, int) or not 1 <= chains <= self.c_a:
            raise ValueError(
                f"chains={chains!r} is not allowed for C_a={self.c_a}; use 1 to {self.c_a} chains."
            )
        self.chains = chains
        self.chain_length = -(-self.c_a // chains) if chain_length is None else chain_length
        if (isinstance(self.chain_length, bool) or not isinstance(self.chain_length, int)
                or self.chain_length * chains < self.c_a or (chains - 1) * self.chain_length >= self.c_a):
            raise ValueError(
                f"{chains} chains of {self.chain_length!r} PEs do not fit C_a={self.c_a} centroids; "
                f"use chain_length={-(-self.c_a // chains)} (chains * chain_length >= C_a and no "
                f"chain left without a centroid)."
            )
        self.index_bits = max(1, (self.c_a - 1).bit_length())
        self.dist_bits = distance_width(self.v, metric, self.element_bits)
        self.tree_levels = (chains - 1).bit_length()
        self.latency = self.chain_length + self.tree_levels

    def _distance(self, m, x, centroid, name):
        v, e = self.v, self.element_bits
        diffs = []
        for j in range(v):
            d = Signal(signed(e + 1), name=f"{name}_d{j}")
            m.d.comb += d.eq(x[j] - centroid[j])
            diffs.append(d)
        dist = Signal(self.dist_bits, name=f"{name}_dist")
        if self.metric == "linf":
            mags = [Mux(d < 0, -d, d)[:e] for d in diffs]
            best = mags[0]
            for mag in mags[1:]:
                best = Mux(mag > best, mag, best)
            m.d.comb += dist.eq(best)
        else:
            total = sum(d * d for d in diffs)
            m.d.comb += dist.eq(total)
        return dist

    def elaborate(self, platform):
        m = Module()
        self.add_to(m)
        return m

    def add_to(self, m: Module) -> None:
        """Add the unit's logic to ``m`` (flat, so a core that embeds it stays one Verilog module)."""
        s, v = self.chain_length, self.v
        stall = Signal()
        m.d.comb += [stall.eq(self.o.valid & ~self.o.ready), self.i.ready.eq(~stall)]
        move = ~stall

        # Stage registers: valid, x, remaining codebook, and each chain's incumbent.
        valid = self.i.valid
        x = self.i.payload.x
        book = self.i.payload.codebook
        best = [(None, None)] * self.chains
        for j in range(s):
            nvalid = Signal(name=f"v{j}")
            nx = Signal(data.ArrayLayout(signed(self.element_bits), v), name=f"x{j}")
            nbook = Signal(data.ArrayLayout(signed(self.element_bits), self.c_a * v), name=f"cb{j}")
            m.d.sync += nvalid.eq(Mux(move, valid, nvalid))
            with m.If(move):
                m.d.sync += [nx.eq(x), nbook.eq(book)]
            nbest = []
            for k in range(self.chains):
                a = k * s + j
                bd = Signal(self.dist_bits, name=f"bd{k}_{j}")
                bi = Signal(self.index_bits, name=f"bi{k}_{j}")
                if a >= self.c_a:
                    # No PE here: the incumbent still takes one register so the chains stay aligned.
                    with m.If(move):
                        m.d.sync += [bd.eq(best[k][0]), bi.eq(best[k][1])]
                    nbest.append((bd, bi))
                    continue
                centroid = [book[a * v + jj] for jj in range(v)]
                dist = self._distance(m, x, centroid, f"pe{k}_{j}")
                with m.If(move):
                    if best[k][0] is None:
                        m.d.sync += [bd.eq(dist), bi.eq(a)]
                    else:
                        take = dist < best[k][0]
                        m.d.sync += [bd.eq(Mux(take, dist, best[k][0])), bi.eq(Mux(take, a, best[k][1]))]
                nbest.append((bd, bi))
            valid, x, book, best = nvalid, nx, nbook, nbest

        level = 0
        while len(best) > 1:
            nvalid = Signal(name=f"tv{level}")
            m.d.sync += nvalid.eq(Mux(move, valid, nvalid))
            merged = []
            for pair in range(0, len(best), 2):
                if pair + 1 == len(best):
                    left = best[pair]
                    bd = Signal(self.dist_bits, name=f"td{level}_{pair}")
                    bi = Signal(self.index_bits, name=f"ti{level}_{pair}")
                    with m.If(move):
                        m.d.sync += [bd.eq(left[0]), bi.eq(left[1])]
                    merged.append((bd, bi))
                    continue
                (ld, li), (rd, ri) = best[pair], best[pair + 1]
                bd = Signal(self.dist_bits, name=f"td{level}_{pair}")
                bi = Signal(self.index_bits, name=f"ti{level}_{pair}")
                take = rd < ld
                with m.If(move):
                    m.d.sync += [bd.eq(Mux(take, rd, ld)), bi.eq(Mux(take, ri, li))]
                merged.append((bd, bi))
            valid, best, level = nvalid, merged, level + 1

        m.d.comb += [self.o.valid.eq(valid), self.o.payload.eq(best[0][1])]
