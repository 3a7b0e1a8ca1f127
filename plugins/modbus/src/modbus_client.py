"""A minimal Modbus TCP client, standard library only.

Function codes: read coils (1), read discrete inputs (2), read holding registers (3), read input
registers (4), write single coil (5), write single register (6), write multiple registers (16).
One request at a time per connection (callers serialize); a timeout or a broken connection
closes the socket and the next request reconnects.
"""

import socket
import struct
import threading

EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
MAX_REGISTERS = 125
MAX_COILS = 2000


class ModbusError(Exception):
    """The device could not be reached or answered garbage: it counts as unreachable."""


class ModbusException(Exception):
    """The device answered with a Modbus exception: reachable, but it refused the request."""

    def __init__(self, function, code):
        super().__init__(f"function {function}: {EXCEPTIONS.get(code, f'exception {code}')}")
        self.function, self.code = function, code

    @property
    def gateway(self):
        """A gateway's answer that the device behind it is unreachable (codes 10 and 11)."""
        return self.code in (10, 11)


class Client:
    """One device behind host:port and a unit id."""

    def __init__(self, host, port=502, unit_id=1, timeout=2.0):
        self.host, self.port, self.unit_id, self.timeout = host, int(port), int(unit_id), float(timeout)
        self._sock = None
        self._tid = 0
        self.lock = threading.RLock()

    # ----- function codes -----
    def read_coils(self, address, count):
        return self._read_bits(1, address, count)

    def read_discrete_inputs(self, address, count):
        return self._read_bits(2, address, count)

    def read_holding_registers(self, address, count):
        return self._read_words(3, address, count)

    def read_input_registers(self, address, count):
        return self._read_words(4, address, count)

    def write_single_coil(self, address, on):
        reply = self.request(5, struct.pack(">HH", address, 0xFF00 if on else 0x0000))
        self._echo(5, reply, struct.pack(">HH", address, 0xFF00 if on else 0x0000))

    def write_single_register(self, address, value):
        reply = self.request(6, struct.pack(">HH", address, value & 0xFFFF))
        self._echo(6, reply, struct.pack(">HH", address, value & 0xFFFF))

    def write_multiple_registers(self, address, values):
        if not 1 <= len(values) <= 123:
            raise ValueError("1 to 123 registers per write")
        data = struct.pack(">HHB", address, len(values), 2 * len(values))
        data += b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
        reply = self.request(16, data)
        self._echo(16, reply, struct.pack(">HH", address, len(values)))

    # ----- transport -----
    def close(self):
        with self.lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                except OSError:
                    pass
                self._sock = None

    def request(self, function, data):
        """Sends one PDU and returns the reply's data. Raises ModbusError or ModbusException."""
        with self.lock:
            try:
                if self._sock is None:
                    self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                    self._sock.settimeout(self.timeout)
                self._tid = (self._tid + 1) % 0x10000
                pdu = bytes([function]) + data
                self._sock.sendall(struct.pack(">HHHB", self._tid, 0, len(pdu) + 1, self.unit_id) + pdu)
                while True:
                    tid, protocol, length, unit = struct.unpack(">HHHB", self._recv(7))
                    if protocol != 0 or not 2 <= length <= 254:
                        raise ModbusError(f"malformed reply header (protocol {protocol}, length {length})")
                    body = self._recv(length - 1)
                    if tid == self._tid:
                        break
                    # A late reply to an earlier, timed-out request: skip it.
            except (OSError, ModbusError) as e:
                self.close()
                raise ModbusError(f"{self.host}:{self.port} unit {self.unit_id}: {e or type(e).__name__}") from e
            if body[0] & 0x80:
                raise ModbusException(function, body[1] if len(body) > 1 else 0)
            if body[0] != function:
                self.close()
                raise ModbusError(f"reply to function {body[0]}, expected {function}")
            return body[1:]

    def _recv(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise ModbusError("connection closed by the device")
            out += chunk
        return bytes(out)

    def _read_words(self, function, address, count):
        if not 1 <= count <= MAX_REGISTERS:
            raise ValueError(f"1 to {MAX_REGISTERS} registers per read")
        data = self.request(function, struct.pack(">HH", address, count))
        if len(data) < 1 or data[0] != 2 * count or len(data) != 1 + 2 * count:
            raise ModbusError(f"expected {count} registers, got {len(data) - 1} bytes")
        return list(struct.unpack(f">{count}H", data[1:]))

    def _read_bits(self, function, address, count):
        if not 1 <= count <= MAX_COILS:
            raise ValueError(f"1 to {MAX_COILS} coils per read")
        data = self.request(function, struct.pack(">HH", address, count))
        if len(data) < 1 or data[0] != (count + 7) // 8 or len(data) != 1 + data[0]:
            raise ModbusError(f"expected {count} bits, got {len(data) - 1} bytes")
        return [bool(data[1 + i // 8] >> (i % 8) & 1) for i in range(count)]

    def _echo(self, function, reply, expected):
        if reply[:4] != expected:
            raise ModbusError(f"function {function} reply does not echo the request")
