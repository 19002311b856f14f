"""cocotb test module: drive every stream of the DUT from a job file, with seeded stalls.

Run through :meth:`lutforge.sim.cocotb_run.CocotbSim.run_streams`.
"""

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from lutforge.sim.cocotb_streams import CocotbStreamSink, CocotbStreamSource


@cocotb.test()
async def drive_streams(dut):
    with open(os.environ["LUTFORGE_STREAM_JOB"], "rb") as f:
        job = pickle.load(f)
    Clock(dut.clk, 10, unit="ns").start()
    for name, value in job["constants"].items():
        getattr(dut, name).value = value
    sources = [CocotbStreamSource(dut, name, dut.clk, stall=job["input_stall"], seed=job["seed"] + 2 * i)
               for i, name in enumerate(job["sources"])]
    sinks = {name: CocotbStreamSink(dut, name, dut.clk, stall=job["output_stall"], seed=job["seed"] + 2 * i + 1)
             for i, name in enumerate(job["expect"])}
    if hasattr(dut, "rst"):
        dut.rst.value = 1
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        dut.rst.value = 0
    for source, payloads in zip(sources, job["sources"].values()):
        cocotb.start_soon(source.send(payloads))
    results = {name: await sink.receive(job["expect"][name], timeout=job["max_cycles"])
               for name, sink in sinks.items()}
    with open(os.environ["LUTFORGE_RESULTS"], "wb") as f:
        pickle.dump(results, f)
