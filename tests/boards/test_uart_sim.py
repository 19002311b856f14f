"""The board SoC in Verilator behind a simulated UART: the host driver end to end, bit-exact
against golden; the RTL link engine byte for byte against the reference device; corrupted frames
NAKed and retried with nothing lost."""

import numpy as np
import pytest

from lutforge.boards.host import Accelerator
from lutforge.boards.protocol import Command, DeviceError, ReferenceDevice, Reg, Status, encode_request
from lutforge.boards.sim_transport import open_sim
from lutforge.boards.soc import SocConfig
from lutforge.boards.transport import FaultyLink
from lutforge.golden.lmul import LMulPolicy, lmul

N = 1024
A, B, R = 0x000, 0x400, 0x800
# Zeros, the largest finite values, NaN patterns and subnormals of e4m3 first, then random codes.
CORNERS = np.array([0x00, 0x80, 0x7E, 0xFE, 0x7F, 0xFF, 0x01, 0x81, 0x07, 0x08, 0x38, 0xB8], np.uint8)


def _operands(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, N, dtype=np.uint8)
    b = rng.integers(0, 256, N, dtype=np.uint8)
    grid = np.array(np.meshgrid(CORNERS, CORNERS)).reshape(2, -1)
    a[:grid.shape[1]], b[:grid.shape[1]] = grid
    return a, b


def test_layer_end_to_end_bit_exact():
    a, b = _operands(0)
    with open_sim() as transport:
        acc = Accelerator(transport)
        assert acc.mem_size == 4096 and acc.core == 1
        acc.load_memory(A, a)
        acc.load_memory(B, b)
        cycles = acc.run([A, B, R, N])
        result = np.frombuffer(acc.read_results(R, N), np.uint8)
        assert acc.read_results(A, N) == a.tobytes()  # inputs untouched
        stats = transport.stats
    expected = lmul(a, b, "e4m3", LMulPolicy())
    bad = np.flatnonzero(result != expected)
    assert bad.size == 0, (
        f"{bad.size} mismatches; first: a={a[bad[0]]:#04x} b={b[bad[0]]:#04x} "
        f"expected {expected[bad[0]]:#04x} got {result[bad[0]]:#04x}")
    assert cycles == 5 * N  # read a, its byte, read b, its byte, write r
    assert stats.retries == 0


def test_corrupted_frames_are_nakked_and_retried_with_nothing_lost():
    a, b = _operands(1)
    # Flip bytes going to the device (in the first frames: NAKs) and coming back (bad answers),
    # and drop one answer byte (a timeout).
    faults = dict(tx_faults=[12, 300, 700, 1500], rx_faults=[2, 40, 90], drop_rx=[130])
    with open_sim(wrap=lambda link: FaultyLink(link, **faults)) as transport:
        acc = Accelerator(transport)
        acc.load_memory(A, a)
        acc.load_memory(B, b)
        # In place: if the retried start ran the core twice, r would be lmul(lmul(a, b), b).
        acc.run([A, B, A, N])
        result = np.frombuffer(acc.read_results(A, N), np.uint8)
        assert acc.read_results(B, N) == b.tobytes()
        stats, injected = transport.stats, transport.link.injected
    assert injected == 8
    # A flipped length or sync byte in an answer shows up as a timeout rather than a CRC error.
    assert stats.naks >= 2 and stats.bad_responses >= 1 and stats.timeouts >= 1
    assert stats.retries == stats.naks + stats.bad_responses + stats.timeouts == injected
    np.testing.assert_array_equal(result, lmul(a, b, "e4m3", LMulPolicy()))


def test_retried_start_runs_the_core_once():
    a, b = _operands(2)
    with open_sim() as transport:
        acc = Accelerator(transport)
        acc.load_memory(A, a)
        acc.load_memory(B, b)
        acc.write_args([A, B, A, N])
        # Corrupt the answer to the start command only: the host resends it with the same seq.
        link = transport.link
        transport.link = FaultyLink(link, rx_faults=[4])
        acc.start()
        assert transport.stats.bad_responses == 1
        transport.link = link
        acc.wait_done()
        result = np.frombuffer(acc.read_results(A, N), np.uint8)
    np.testing.assert_array_equal(result, lmul(a, b, "e4m3", LMulPolicy()))


def test_rtl_link_answers_like_the_reference_device():
    config = SocConfig.for_sim()
    reference = ReferenceDevice(config.mem_size)
    good = encode_request(1, Command.WRITE_MEM, 0x10, 3, b"\x01\x02\x03")
    bad_crc = bytearray(encode_request(2, Command.WRITE_MEM, 0x20, 2, b"\x09\x09"))
    bad_crc[-1] ^= 1
    frames = [
        good,
        bytes(bad_crc),
        encode_request(2, Command.READ_MEM, 0x0E, 6),
        encode_request(1, Command.WRITE_MEM, 0x10, 3, b"\x07\x07\x07"),  # repeated seq: skipped
        encode_request(3, Command.READ_MEM, 0x10, 3),
        encode_request(4, 0x09, 0, 0),  # unknown command
        encode_request(5, Command.READ_MEM, config.mem_size - 2, 4),  # out of range
        encode_request(6, Command.READ_REG, Reg.ID, 0),
        encode_request(7, Command.WRITE_REG, Reg.ARG0 + 2, 4, (0x12345678).to_bytes(4, "little")),
        encode_request(8, Command.READ_REG, Reg.ARG0 + 2, 0),
        encode_request(9, Command.READ_REG, Reg.MEM_SIZE, 0),
        encode_request(10, Command.WRITE_REG, Reg.COUNT, 4, bytes(4)),  # no such register
        b"\x00\x13\x37" + encode_request(11, Command.READ_MEM, 0x11, 1),  # line noise before sync
    ]
    answers = []
    with open_sim(config) as transport:
        link = transport.link
        for frame in frames:
            expected = reference.feed(frame)
            answers.append(expected)
            link.write(frame)
            answer = link.read(len(expected), 64 * link.byte_time * len(expected) + link.latency)
            assert answer == expected, f"frame {frame.hex()}: RTL {answer.hex()}, reference {expected.hex()}"
    statuses = [Status.OK, Status.CRC_ERROR, Status.OK, Status.OK, Status.OK, Status.BAD_COMMAND,
                Status.BAD_RANGE, Status.OK, Status.OK, Status.OK, Status.OK, Status.BAD_RANGE, Status.OK]
    assert [answer[2] for answer in answers] == statuses


def test_cut_frame_is_dropped_after_the_idle_timeout():
    with open_sim() as transport:
        link = transport.link
        frame = encode_request(1, Command.WRITE_MEM, 0, 4, b"\xaa\xbb\xcc\xdd")
        link.write(frame[:8])
        assert link.read(1, 3 * link.latency) == b""  # silence: the device dropped the half frame
        transport.write_mem(0, b"\x01\x02\x03\x04")
        assert transport.read_mem(0, 4) == b"\x01\x02\x03\x04"
        assert transport.stats.retries == 0


def test_memory_is_busy_while_the_core_runs():
    with open_sim() as transport:
        acc = Accelerator(transport)
        acc.write_args([A, B, R, N])
        acc.start()
        with pytest.raises(DeviceError, match="memory busy"):
            acc.read_results(R, 4)
        acc.wait_done()
        assert transport.read_reg(Reg.STATUS) == Reg.STATUS_DONE
