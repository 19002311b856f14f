"""Several components side by side behind shared inputs: one Verilator build for a whole policy sweep.

Each build costs seconds, each vector nanoseconds; testing every (format, policy) variant of a block
through one wrapper keeps the exhaustive suites fast.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Variants"]


class Variants(wiring.Component):
    """Inputs shared by every variant; output ``o`` of variant ``name`` becomes port ``name_o``.

    All variants must have the same input members (name and shape).
    """

    def __init__(self, variants: dict):
        if not variants:
            raise ValueError("Variants needs at least one component; got none.")
        self.variants = dict(variants)
        first_name, first = next(iter(self.variants.items()))
        inputs = {n: m for n, m in first.signature.members.items() if m.flow == In}
        members = dict(inputs)
        for name, component in self.variants.items():
            own = {n: m for n, m in component.signature.members.items() if m.flow == In}
            if own != inputs:
                raise ValueError(
                    f"Variant {name!r} has inputs {sorted(own)} but {first_name!r} has {sorted(inputs)}; "
                    f"Variants needs identical inputs."
                )
            for n, m in component.signature.members.items():
                if m.flow == Out:
                    members[f"{name}_{n}"] = Out(m.shape)
        self._inputs = list(inputs)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for name, component in self.variants.items():
            m.submodules[name] = component
            for n, member in component.signature.members.items():
                if member.flow == In:
                    m.d.comb += getattr(component, n).eq(getattr(self, n))
                else:
                    m.d.comb += getattr(self, f"{name}_{n}").eq(getattr(component, n))
        return m
