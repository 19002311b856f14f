"""The framed host-link protocol against the reference device: CRC, framing, NAK and retry."""

import binascii

import numpy as np
import pytest

from lutforge.boards.host import Accelerator, AcceleratorError
from lutforge.boards.protocol import (
    MAX_PAYLOAD, Command, DeviceError, LinkError, LoopbackLink, ReferenceDevice, Reg, Status,
    UartTransport, crc16, encode_request, encode_response,
)
from lutforge.boards.transport import FaultyLink


def test_crc16_matches_binascii():
    # binascii.crc_hqx is CRC-CCITT with a chosen initial value: an independent implementation.
    assert crc16(b"123456789") == 0x29B1
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 256, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)


def test_frame_layout():
    frame = encode_request(7, Command.WRITE_MEM, 0x1234, 2, b"\xab\xcd")
    assert frame[:9] == bytes([0xA5, 7, 1, 0x34, 0x12, 0, 0, 2, 0])
    assert frame[9:11] == b"\xab\xcd"
    assert int.from_bytes(frame[11:], "little") == binascii.crc_hqx(frame[1:11], 0xFFFF)
    answer = encode_response(7, Status.OK, b"\x01")
    assert answer[:5] == bytes([0x5A, 7, 0, 1, 0])


def test_frame_limits():
    with pytest.raises(ValueError, match="Frame length 257 exceeds the 256-byte limit"):
        encode_request(0, Command.READ_MEM, 0, 257)
    with pytest.raises(ValueError, match="does not fit the 32-bit address field"):
        encode_request(0, Command.READ_MEM, 1 << 32, 1)


def _link(**faults):
    device = ReferenceDevice(4096)
    inner = LoopbackLink(device)
    return device, (FaultyLink(inner, **faults) if faults else inner)


def test_roundtrip_splits_long_transfers():
    device, link = _link()
    transport = UartTransport(link)
    data = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    transport.write_mem(100, data)
    assert bytes(device.mem[100:1100]) == data
    assert transport.read_mem(100, 1000) == data
    writes = [e for e in device.executed if e[0] == Command.WRITE_MEM]
    assert [length for _, _, length in writes] == [256, 256, 256, 232]
    transport.write_reg(Reg.ARG0 + 1, 0xDEADBEEF)
    assert transport.read_reg(Reg.ARG0 + 1) == 0xDEADBEEF
    assert transport.stats.retries == 0


# Every byte position of the first frame: sync, seq, cmd, address, length, payload, CRC.
@pytest.mark.parametrize("position", range(9 + 8 + 2))
def test_corrupted_request_is_nakked_and_retried(position):
    device, link = _link(tx_faults=[position])
    transport = UartTransport(link)
    data = bytes(range(8))
    transport.write_mem(16, data)
    assert link.injected == 1
    assert bytes(device.mem[16:24]) == data
    assert bytes(device.mem[:16]) == bytes(16) and bytes(device.mem[24:]) == bytes(4096 - 24)
    assert device.executed == [(Command.WRITE_MEM, 16, 8)]
    assert transport.stats.retries == 1
    # A hit on sync or length leaves the device waiting (timeout); a hit elsewhere gets a NAK.
    assert transport.stats.naks + transport.stats.timeouts == 1


@pytest.mark.parametrize("position", range(5 + 2))
def test_corrupted_answer_is_retried_and_the_write_runs_once(position):
    device, link = _link(rx_faults=[position])
    transport = UartTransport(link)
    transport.write_reg(Reg.CTRL, 1)
    assert link.injected == 1
    assert device.executed == [(Command.WRITE_REG, Reg.CTRL, 4)]  # the retry was recognized
    assert transport.stats.retries == 1
    assert transport.stats.bad_responses + transport.stats.timeouts == 1


def test_dropped_answer_byte_times_out_and_read_is_repeated():
    device, link = _link(drop_rx=[3])
    transport = UartTransport(link)
    device.mem[0:4] = b"\x01\x02\x03\x04"
    assert transport.read_mem(0, 4) == b"\x01\x02\x03\x04"
    assert transport.stats.timeouts == 1
    assert [e[0] for e in device.executed] == [Command.READ_MEM, Command.READ_MEM]


def test_every_frame_corrupted_still_loses_nothing():
    # One flipped byte in the first transmission of every frame (offsets found by encoding).
    data = np.random.default_rng(2).integers(0, 256, 600, dtype=np.uint8).tobytes()
    frames = [encode_request(0, 1, 0, min(256, 600 - o), data[o:o + 256]) for o in range(0, 600, 256)]
    faults, offset = [], 0
    for frame in frames:
        faults.append(offset + 9 + 3)  # a payload byte
        offset += 2 * len(frame)  # the frame, then its retry
    device, link = _link(tx_faults=faults)
    transport = UartTransport(link)
    transport.write_mem(0, data)
    assert bytes(device.mem[:600]) == data
    assert transport.stats.naks == 3 and transport.stats.frames == 3


def test_gives_up_after_the_retry_budget():
    device, link = _link(tx_faults=range(0, 10_000, 13))
    transport = UartTransport(link, retries=2)
    with pytest.raises(LinkError, match=r"No valid answer to command 0x03 \(seq 0\) after 3 attempts"):
        transport.write_reg(Reg.ARG0, 5)
    assert device.executed == []


def test_device_refusals_are_errors_not_retries():
    device, link = _link()
    transport = UartTransport(link)
    with pytest.raises(DeviceError, match="address or length out of range"):
        transport.read_mem(4090, 10)
    with pytest.raises(DeviceError, match="address or length out of range"):
        transport.write_reg(Reg.COUNT, 1)
    assert transport.stats.retries == 0


def test_sequence_numbers_wrap():
    device, link = _link()
    transport = UartTransport(link, first_seq=250)
    for k in range(10):
        transport.write_reg(Reg.ARG0, k)
    assert transport.seq == 4 and device.regs[Reg.ARG0] == 9
    assert len(device.executed) == 10


def test_accelerator_checks_identity_and_range():
    device, link = _link()
    acc = Accelerator(UartTransport(link))
    assert acc.mem_size == 4096
    with pytest.raises(ValueError, match="fall outside the device's 4096-byte memory"):
        acc.load_memory(4000, bytes(200))
    with pytest.raises(ValueError, match="Memory images are bytes; got an array of int16"):
        acc.load_memory(0, np.zeros(4, np.int16))
    device.regs[Reg.ID] = 0
    with pytest.raises(AcceleratorError, match="not lutforge's 0x4c555446"):
        Accelerator(UartTransport(link))


def test_max_payload_is_what_the_soc_buffers():
    from lutforge.boards.soc import SocConfig
    with pytest.raises(ValueError, match="must be a power of two of at least 256 bytes"):
        SocConfig.for_sim(mem_size=MAX_PAYLOAD // 2)
    with pytest.raises(ValueError, match="UARTs tolerate about 2%"):
        SocConfig(clk_freq=12e6, baud=2_600_000, mem_size=4096, idle_cycles=100)
