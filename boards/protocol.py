"""The framed host-link protocol: frames, CRC, sequence numbers, NAK and retry.

Wire format (all multi-byte fields little-endian; the CRC is CRC-16/CCITT-FALSE, polynomial
0x1021, initial value 0xFFFF, over every byte from ``seq`` to the end of the payload)::

    request   A5 | seq | cmd    | addr:u32 | len:u16 | payload (len bytes, writes only) | crc:u16
    response  5A | seq | status | len:u16  | payload (len bytes)                        | crc:u16

=============  ====  ==================================  ================================
command        code  request                             response payload
=============  ====  ==================================  ================================
WRITE_MEM      0x01  addr = first byte, payload = data   none
READ_MEM       0x02  addr = first byte, len = count      ``len`` bytes of memory
WRITE_REG      0x03  addr = register index, 4 bytes      none
READ_REG       0x04  addr = register index, len = 0      4 bytes
=============  ====  ==================================  ================================

Status codes: 0 OK, 1 CRC error (a NAK: the host resends the same frame), 2 unknown command,
3 address or length out of range, 4 memory busy (the core owns it while running). At most
:data:`MAX_PAYLOAD` bytes travel in one frame; :class:`UartTransport` splits longer transfers.

Reliability rules, implemented identically by the RTL (:mod:`lutforge.boards.soc`) and by
:class:`ReferenceDevice`:

* A request whose CRC does not match is answered with status 1 and not executed.
* The device executes nothing until the whole frame has arrived and its CRC matched: a write
  payload is held in a frame buffer and copied to memory only then.
* The device remembers the sequence number of the last executed frame. A write (memory or
  register) repeated with that number — the host's retry after a lost or corrupted answer — is
  answered OK without running it again, so a retried ``start`` does not start twice. Reads are
  repeated, as they change nothing.
* A frame cut short (silence for ``idle_cycles`` clock cycles mid-frame) is dropped; the host's
  response timeout is longer, so its retry meets a device that is hunting for ``A5`` again.
"""

from dataclasses import dataclass, field

from .transport import ByteLink, Transport
from ..support.errors import LutforgeError

__all__ = [
    "REQUEST_SYNC", "RESPONSE_SYNC", "MAX_PAYLOAD", "Command", "Status", "Reg",
    "crc16", "encode_request", "encode_response", "Response",
    "LinkError", "DeviceError", "LinkStats", "UartTransport", "ReferenceDevice", "LoopbackLink",
]

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
MAX_PAYLOAD = 256
REQUEST_HEADER = 9   # sync, seq, cmd, addr (4), len (2)
RESPONSE_HEADER = 5  # sync, seq, status, len (2)


class Command:
    WRITE_MEM = 0x01
    READ_MEM = 0x02
    WRITE_REG = 0x03
    READ_REG = 0x04


class Status:
    OK = 0
    CRC_ERROR = 1
    BAD_COMMAND = 2
    BAD_RANGE = 3
    BUSY = 4

    NAMES = {0: "OK", 1: "CRC error", 2: "unknown command", 3: "address or length out of range",
             4: "memory busy (the core is running)"}


class Reg:
    """Register indices of the SoC (:mod:`lutforge.boards.soc`)."""

    ID = 0x00        # read-only: ID_VALUE
    CTRL = 0x01      # write 1: start the core
    STATUS = 0x02    # bit 0 busy, bit 1 done since the last start
    CYCLES = 0x03    # clock cycles the last run took
    MEM_SIZE = 0x04  # bytes of memory behind WRITE_MEM/READ_MEM
    CORE = 0x05      # which core sits behind the registers (see lutforge.boards.soc.CORES)
    ARG0 = 0x08      # ARG0 .. ARG0 + ARGS - 1: the core's descriptor
    ARGS = 8

    ID_VALUE = 0x4C55_5446  # "LUTF"
    STATUS_BUSY = 1
    STATUS_DONE = 2
    STATUS_ERROR = 4  # the core refused the descriptor or an address was out of range
    COUNT = 16  # register indices 0 .. COUNT - 1 exist


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode_request(seq: int, cmd: int, addr: int, length: int, payload: bytes = b"") -> bytes:
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"Address {addr:#x} does not fit the 32-bit address field; use 0..0xffffffff.")
    if not 0 <= length <= MAX_PAYLOAD:
        raise ValueError(f"Frame length {length} exceeds the {MAX_PAYLOAD}-byte limit; split the transfer.")
    body = (bytes([seq & 0xFF, cmd]) + addr.to_bytes(4, "little") + length.to_bytes(2, "little")
            + bytes(payload))
    return bytes([REQUEST_SYNC]) + body + crc16(body).to_bytes(2, "little")


def encode_response(seq: int, status: int, payload: bytes = b"") -> bytes:
    body = bytes([seq & 0xFF, status]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([RESPONSE_SYNC]) + body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Response:
    seq: int
    status: int
    payload: bytes


class LinkError(LutforgeError, RuntimeError):
    """The link gave no valid answer after every retry."""


class DeviceError(LutforgeError, RuntimeError):
    """The device answered, and refused the request (bad command, range, busy)."""


@dataclass
class LinkStats:
    frames: int = 0           # requests completed
    naks: int = 0             # CRC-error answers from the device (request corrupted on the way)
    bad_responses: int = 0    # answers that failed the CRC or framing checks on the host
    timeouts: int = 0         # requests that got no complete answer in time
    retries: int = 0          # frames sent again, for any of the three reasons above
    events: list = field(default_factory=list)


class UartTransport(Transport):
    """The framed protocol over a :class:`ByteLink`, with up to ``retries`` resends per frame."""

    def __init__(self, link: ByteLink, *, retries: int = 8, first_seq: int = 0):
        self.link = link
        self.retries = retries
        self.seq = first_seq & 0xFF
        self.stats = LinkStats()

    # -- Transport --------------------------------------------------------------------------
    def write_mem(self, addr: int, data: bytes) -> None:
        data = bytes(data)
        for offset in range(0, len(data), MAX_PAYLOAD):
            chunk = data[offset:offset + MAX_PAYLOAD]
            self._transact(Command.WRITE_MEM, addr + offset, len(chunk), chunk, 0)

    def read_mem(self, addr: int, n: int) -> bytes:
        out = bytearray()
        for offset in range(0, n, MAX_PAYLOAD):
            count = min(MAX_PAYLOAD, n - offset)
            out += self._transact(Command.READ_MEM, addr + offset, count, b"", count)
        return bytes(out)

    def write_reg(self, index: int, value: int) -> None:
        if not 0 <= value < 1 << 32:
            raise ValueError(f"Register value {value} does not fit 32 bits; use 0..{(1 << 32) - 1}.")
        self._transact(Command.WRITE_REG, index, 4, value.to_bytes(4, "little"), 0)

    def read_reg(self, index: int) -> int:
        return int.from_bytes(self._transact(Command.READ_REG, index, 0, b"", 4), "little")

    def close(self) -> None:
        self.link.close()

    # -- framing ----------------------------------------------------------------------------
    def _transact(self, cmd: int, addr: int, length: int, payload: bytes, answer_len: int) -> bytes:
        seq = self.seq
        frame = encode_request(seq, cmd, addr, length, payload)
        # The device answers after the whole request arrived and a memory copy or read of at most
        # one frame; both are bounded by the bytes on the wire.
        timeout = (len(frame) + RESPONSE_HEADER + 2 + answer_len) * self.link.byte_time * 2 + self.link.latency
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.link.discard_input()
            self.link.write(frame)
            response, problem = self._read_response(self.link.now() + timeout)
            if response is None:
                self.stats.events.append((seq, problem))
                if problem == "timeout":
                    self.stats.timeouts += 1
                else:
                    self.stats.bad_responses += 1
                continue
            if response.status == Status.CRC_ERROR:
                # The device could not trust the seq it saw either, so any NAK is ours.
                self.stats.naks += 1
                self.stats.events.append((seq, "nak"))
                continue
            if response.seq != seq:
                self.stats.bad_responses += 1
                self.stats.events.append((seq, f"stale answer for seq {response.seq}"))
                continue
            if response.status != Status.OK:
                self.seq = (seq + 1) & 0xFF
                raise DeviceError(
                    f"The device refused command {cmd:#04x} at address {addr:#x} with length {length}: "
                    f"{Status.NAMES.get(response.status, f'status {response.status}')}."
                )
            if len(response.payload) != answer_len:
                raise LinkError(
                    f"The device answered command {cmd:#04x} with {len(response.payload)} bytes where "
                    f"{answer_len} were due; host and bitstream disagree on the protocol: rebuild it."
                )
            self.seq = (seq + 1) & 0xFF
            self.stats.frames += 1
            return response.payload
        raise LinkError(
            f"No valid answer to command {cmd:#04x} (seq {seq}) after {self.retries + 1} attempts "
            f"({self.stats.naks} NAKs, {self.stats.bad_responses} bad answers, {self.stats.timeouts} "
            f"timeouts so far); check the cable, the baud rate and that the bitstream is loaded."
        )

    def _read_exact(self, n: int, deadline: float) -> bytes:
        out = bytearray()
        while len(out) < n:
            left = deadline - self.link.now()
            if left <= 0:
                break
            got = self.link.read(n - len(out), left)
            if not got:
                break  # a link returns nothing only once the timeout has passed
            out += got
        return bytes(out)

    def _read_response(self, deadline: float) -> "tuple[Response | None, str]":
        skipped = 0
        while True:
            sync = self._read_exact(1, deadline)
            if not sync:
                return None, "timeout"
            if sync[0] == RESPONSE_SYNC:
                break
            skipped += 1
            if skipped > MAX_PAYLOAD + 16:
                return None, "no sync byte"
        header = self._read_exact(RESPONSE_HEADER - 1, deadline)
        if len(header) < RESPONSE_HEADER - 1:
            return None, "timeout"
        length = int.from_bytes(header[2:4], "little")
        if length > MAX_PAYLOAD:
            return None, f"length {length} over the limit"
        rest = self._read_exact(length + 2, deadline)
        if len(rest) < length + 2:
            return None, "timeout"
        body = header + rest[:length]
        if crc16(body) != int.from_bytes(rest[length:], "little"):
            return None, "crc error"
        return Response(header[0], header[1], rest[:length]), ""


class ReferenceDevice:
    """The device side of the protocol in Python: what the RTL link engine does, byte for byte.

    It serves unit tests of the host side without a simulator (through :class:`LoopbackLink`) and
    is the reference the RTL's answers are compared with.
    """

    def __init__(self, mem_size: int = 4096):
        self.mem = bytearray(mem_size)
        self.regs = [0] * Reg.COUNT
        self.regs[Reg.ID] = Reg.ID_VALUE
        self.regs[Reg.MEM_SIZE] = mem_size
        self.last_seq = None
        self.executed = []  # (cmd, addr, length) of every executed frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in, bytes of answers out."""
        self._buf += data
        out = bytearray()
        while True:
            start = self._buf.find(REQUEST_SYNC)
            if start < 0:
                self._buf.clear()
                return bytes(out)
            del self._buf[:start]
            if len(self._buf) < REQUEST_HEADER:
                return bytes(out)
            cmd, length = self._buf[2], int.from_bytes(self._buf[7:9], "little")
            paylen = length if cmd in (Command.WRITE_MEM, Command.WRITE_REG) else 0
            total = REQUEST_HEADER + paylen + 2
            if len(self._buf) < total:
                return bytes(out)
            frame, self._buf = bytes(self._buf[:total]), self._buf[total:]
            out += self._execute(frame, paylen)

    def idle(self) -> None:
        """The line went quiet for longer than the idle timeout: a partial frame is dropped."""
        self._buf.clear()

    def _execute(self, frame: bytes, paylen: int) -> bytes:
        seq, cmd = frame[1], frame[2]
        addr = int.from_bytes(frame[3:7], "little")
        length = int.from_bytes(frame[7:9], "little")
        payload = frame[9:9 + paylen]
        if crc16(frame[1:9 + paylen]) != int.from_bytes(frame[9 + paylen:], "little"):
            return encode_response(seq, Status.CRC_ERROR)
        is_write = cmd in (Command.WRITE_MEM, Command.WRITE_REG)
        if is_write and seq == self.last_seq:
            return encode_response(seq, Status.OK)
        answer = b""
        if cmd in (Command.WRITE_MEM, Command.READ_MEM):
            if length > MAX_PAYLOAD or addr + length > len(self.mem):
                return encode_response(seq, Status.BAD_RANGE)
            if cmd == Command.WRITE_MEM:
                self.mem[addr:addr + length] = payload
            else:
                answer = bytes(self.mem[addr:addr + length])
        elif cmd in (Command.WRITE_REG, Command.READ_REG):
            if addr >= Reg.COUNT or length != (4 if is_write else 0):
                return encode_response(seq, Status.BAD_RANGE)
            if is_write:
                self.regs[addr] = int.from_bytes(payload, "little")
            else:
                answer = self.regs[addr].to_bytes(4, "little")
        else:
            return encode_response(seq, Status.BAD_COMMAND)
        if is_write:
            self.last_seq = seq
        self.executed.append((cmd, addr, length))
        return encode_response(seq, Status.OK, answer)


class LoopbackLink(ByteLink):
    """A :class:`ByteLink` whose far end is a :class:`ReferenceDevice`, answering at once."""

    byte_time = 1e-6
    latency = 0.05

    def __init__(self, device: ReferenceDevice):
        self.device = device
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += self.device.feed(data)

    def read(self, n: int, timeout: float) -> bytes:
        if not self._pending:
            # Nothing will come: the device waits for the rest of a frame until its idle timeout.
            self.device.idle()
            return b""
        out, self._pending = bytes(self._pending[:n]), self._pending[n:]
        return out

    def discard_input(self) -> None:
        self._pending.clear()
