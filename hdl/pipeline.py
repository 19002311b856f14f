"""Pipeline registers shared by the pipelined forms of the datapath blocks."""

from amaranth import Signal

__all__ = ["delay"]


def delay(m, values, stages: int, *, name: str):
    """Return ``values`` delayed by ``stages`` clock cycles (``stages == 0`` returns them as-is)."""
    for index in range(stages):
        delayed = []
        for position, value in enumerate(values):
            reg = Signal.like(value, name=f"{name}_s{index}_{position}")
            m.d.sync += reg.eq(value)
            delayed.append(reg)
        values = delayed
    return list(values)
