"""cocotb test module: apply a vector file to the DUT one cycle at a time and record the outputs.

Run through :meth:`lutforge.sim.cocotb_run.CocotbSim.run_vectors`; the vector and result paths come in
through the environment, so one module serves every block and simulator.
"""

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer


@cocotb.test()
async def apply_vectors(dut):
    job = np.load(os.environ["LUTFORGE_VECTORS"], allow_pickle=False)
    latency = int(job["latency"])
    inputs = {name[3:]: job[name].tolist() for name in job.files if name.startswith("in_")}
    outputs = os.environ["LUTFORGE_OUTPUTS"].split(",")
    n = len(next(iter(inputs.values())))
    handles_in = {name: getattr(dut, name) for name in inputs}
    handles_out = {name: getattr(dut, name) for name in outputs}
    results = {name: [] for name in outputs}
    clocked = hasattr(dut, "clk")
    if clocked:
        Clock(dut.clk, 10, unit="ns").start()
        if hasattr(dut, "rst"):
            dut.rst.value = 1
            await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
            dut.rst.value = 0
    for t in range(n + latency):
        for name, handle in handles_in.items():
            handle.value = inputs[name][t] if t < n else 0
        await Timer(1, unit="ns")
        if t >= latency:
            for name, handle in handles_out.items():
                results[name].append(handle.value.to_unsigned())
        if clocked:
            await RisingEdge(dut.clk)
    with open(os.environ["LUTFORGE_RESULTS"], "wb") as f:
        np.savez(f, **{name: np.array(v, dtype=np.uint64) for name, v in results.items()})
