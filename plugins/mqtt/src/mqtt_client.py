"""A minimal MQTT 3.1.1 client over plain TCP, standard library only.

Covers what a device bridge needs: CONNECT/CONNACK (clean session, username/password),
SUBSCRIBE/SUBACK with wildcards, incoming PUBLISH at QoS 0/1/2 (retained messages included),
outgoing PUBLISH at QoS 0/1 (QoS 1 waits for PUBACK), PINGREQ keepalive, and reconnection with
exponential backoff and jitter. Every subscription is renewed after a reconnect, so the broker
sends its retained messages again and no later data is lost.
"""

import random
import socket
import threading
import time
from urllib.parse import urlsplit

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

# Retained bridge messages (a large Zigbee network's device list) can be big; anything larger
# than this is a broker or peer bug and drops the connection rather than the process.
MAX_PACKET_BYTES = 16 * 1024 * 1024

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class MqttError(Exception):
    """A protocol or connection failure."""


def parse_url(url):
    """`mqtt://host:port` → (host, port). TLS (`mqtts://`) is not supported by this client."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported broker URL scheme {parts.scheme!r} (use mqtt://host:port)")
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host")
    return parts.hostname, parts.port or 1883


def encode_length(n):
    """The variable-length 'remaining length' encoding."""
    if n < 0 or n > 268_435_455:
        raise ValueError("packet too large")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(text):
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(data) > 65535:
        raise ValueError("string too long")
    return len(data).to_bytes(2, "big") + data


def packet(kind, flags, body):
    return bytes([(kind << 4) | flags]) + encode_length(len(body)) + body


def take_packet(buf):
    """Removes one whole packet from the front of `buf`: (type, flags, body), or None if incomplete."""
    if len(buf) < 2:
        return None
    length, multiplier, i = 0, 1, 1
    while True:
        if i >= len(buf):
            return None
        byte = buf[i]
        length += (byte & 0x7F) * multiplier
        i += 1
        if not byte & 0x80:
            break
        multiplier *= 128
        if i > 4:
            raise MqttError("malformed remaining length")
    if length > MAX_PACKET_BYTES:
        raise MqttError(f"packet of {length} bytes exceeds the {MAX_PACKET_BYTES} byte limit")
    if len(buf) < i + length:
        return None
    header = buf[0]
    body = bytes(buf[i:i + length])
    del buf[:i + length]
    return header >> 4, header & 0x0F, body


def topic_matches(pattern, topic):
    """Whether `topic` matches the subscription filter `pattern` (`+` one level, `#` the rest)."""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False
    p_levels, t_levels = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(p_levels) == len(t_levels)


def connect_packet(client_id, keepalive, username=None, password=None):
    flags = 0x02  # clean session: subscriptions are renewed by the client on every connect
    payload = encode_string(client_id)
    if username is not None:
        flags |= 0x80
        payload += encode_string(username)
        if password is not None:
            flags |= 0x40
            payload += encode_string(password)
    body = encode_string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + payload
    return packet(CONNECT, 0, body)


def parse_publish(flags, body):
    """(topic, payload, qos, retain, packet_id) of a PUBLISH body."""
    qos = (flags >> 1) & 0x03
    if len(body) < 2:
        raise MqttError("truncated PUBLISH")
    n = int.from_bytes(body[:2], "big")
    topic = body[2:2 + n].decode("utf-8", errors="replace")
    rest = body[2 + n:]
    packet_id = None
    if qos:
        if len(rest) < 2:
            raise MqttError("truncated PUBLISH packet id")
        packet_id, rest = int.from_bytes(rest[:2], "big"), rest[2:]
    return topic, rest, qos, bool(flags & 0x01), packet_id


class Client:
    """One broker connection kept alive by a background thread.

    `on_message(topic, payload: bytes, retained)` and `on_connection(connected: bool)` run on that
    thread; they must not call `publish` with QoS 1 (its PUBACK is read by the same thread).
    """

    def __init__(self, host, port, client_id, username=None, password=None, keepalive=30,
                 on_message=None, on_connection=None, log=None, connect_timeout=5.0,
                 min_backoff=0.5, max_backoff=30.0):
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password = username, password
        self.keepalive = max(5, int(keepalive))
        self.on_message = on_message or (lambda topic, payload, retained: None)
        self.on_connection = on_connection or (lambda connected: None)
        self.log = log or (lambda level, message: None)
        self.connect_timeout = connect_timeout
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self._subscriptions = {}  # filter -> qos
        self._sock = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending = {}  # packet id -> [event, ok]
        self._next_id = 0
        self._qos2_inflight = set()
        self._stopping = threading.Event()
        # Up once every subscription is acknowledged, so "connected" means "receiving".
        self._connected = threading.Event()
        self._session = False  # the broker accepted CONNECT: subscriptions can be sent
        self._awaiting_subacks = set()
        self._thread = None
        self._last_tx = self._last_rx = time.monotonic()
        self.connections = 0  # successful connects so far, for logs and tests

    # ----- public API -----
    @property
    def connected(self):
        return self._connected.is_set()

    def wait_connected(self, timeout):
        return self._connected.wait(timeout)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        sock = self._sock
        if sock is not None:
            try:
                with self._send_lock:
                    sock.sendall(packet(DISCONNECT, 0, b""))
            except OSError:
                pass
            self._close(sock)
        if self._thread is not None:
            self._thread.join(timeout=3)

    def subscribe(self, topic_filter, qos=1):
        """Subscribes now if connected, and again after every reconnect."""
        with self._state_lock:
            if self._subscriptions.get(topic_filter) == qos:
                return
            self._subscriptions[topic_filter] = qos
        if self._session:
            try:
                self._send_subscribe([(topic_filter, qos)])
            except (OSError, MqttError) as e:
                self.log("warn", f"subscribe {topic_filter} failed, retried on reconnect: {e}")

    def unsubscribe(self, topic_filter):
        with self._state_lock:
            if self._subscriptions.pop(topic_filter, None) is None:
                return
        if self._session:
            try:
                body = self._new_id().to_bytes(2, "big") + encode_string(topic_filter)
                self._send(packet(UNSUBSCRIBE, 0x02, body))
            except (OSError, MqttError):
                pass

    def publish(self, topic, payload, qos=0, retain=False, timeout=5.0):
        """Publishes; with QoS 1 returns only once the broker acknowledged. Raises MqttError."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        qos = 1 if qos else 0
        if not self.connected:
            raise MqttError("not connected to the broker")
        body = encode_string(topic)
        waiter = None
        if qos:
            waiter = [threading.Event(), False]
            packet_id = self._new_id(waiter)
            body += packet_id.to_bytes(2, "big")
        body += payload
        try:
            self._send(packet(PUBLISH, (qos << 1) | (1 if retain else 0), body))
        except OSError as e:
            raise MqttError(f"publish failed: {e}") from e
        if waiter is None:
            return
        try:
            if not waiter[0].wait(timeout):
                raise MqttError("broker did not acknowledge the publication in time")
            if not waiter[1]:
                raise MqttError("connection lost before the broker acknowledged the publication")
        finally:
            with self._state_lock:
                self._pending.pop(packet_id, None)

    # ----- connection loop -----
    def _run(self):
        backoff = self.min_backoff
        while not self._stopping.is_set():
            try:
                self._connect()
            except (OSError, MqttError) as e:
                self.log("warn", f"cannot connect to mqtt://{self.host}:{self.port}: {e}; retrying in {backoff:.1f} s")
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.min_backoff
            try:
                self._after_connect()
                self._read_loop()
            except (OSError, MqttError) as e:
                if not self._stopping.is_set():
                    self.log("warn", f"connection to the broker lost: {e}")
            finally:
                self._drop()
            if not self._stopping.is_set():
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.sendall(connect_packet(self.client_id, self.keepalive, self.username, self.password))
            buf = bytearray()
            deadline = time.monotonic() + self.connect_timeout
            while True:
                got = take_packet(buf)
                if got is not None:
                    break
                if time.monotonic() > deadline:
                    raise MqttError("no CONNACK in time")
                chunk = sock.recv(4096)
                if not chunk:
                    raise MqttError("broker closed the connection during CONNECT")
                buf += chunk
            kind, _, body = got
            if kind != CONNACK or len(body) < 2:
                raise MqttError(f"expected CONNACK, got packet type {kind}")
            if body[1] != 0:
                raise MqttError(f"connection refused: {CONNACK_REASONS.get(body[1], body[1])}")
        except BaseException:
            self._close(sock)
            raise
        sock.settimeout(1.0)
        self._sock = sock
        self._buf = buf
        self._last_tx = self._last_rx = time.monotonic()
        self.connections += 1

    def _after_connect(self):
        self._session = True
        with self._state_lock:
            subs = list(self._subscriptions.items())
        self._awaiting_subacks = {self._send_subscribe(subs[i:i + 32]) for i in range(0, len(subs), 32)}
        if not self._awaiting_subacks:
            self._mark_connected()

    def _mark_connected(self):
        self._connected.set()
        self.log("info", f"connected to mqtt://{self.host}:{self.port} as {self.client_id}")
        self._callback(self.on_connection, True)

    def _read_loop(self):
        buf = self._buf
        while not self._stopping.is_set():
            try:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise MqttError("broker closed the connection")
                buf += chunk
                self._last_rx = time.monotonic()
            except socket.timeout:
                pass
            while True:
                got = take_packet(buf)
                if got is None:
                    break
                self._handle(*got)
            self._keep_alive()

    def _keep_alive(self):
        now = time.monotonic()
        if now - self._last_rx > self.keepalive * 1.5:
            raise MqttError("broker silent for longer than the keepalive")
        if now - self._last_tx >= self.keepalive / 2:
            self._send(packet(PINGREQ, 0, b""))

    def _handle(self, kind, flags, body):
        if kind == PUBLISH:
            topic, payload, qos, retained, packet_id = parse_publish(flags, body)
            if qos == 1:
                self._send(packet(PUBACK, 0, packet_id.to_bytes(2, "big")))
            elif qos == 2:
                self._send(packet(PUBREC, 0, packet_id.to_bytes(2, "big")))
                if packet_id in self._qos2_inflight:
                    return  # a redelivery of a message already handed over
                self._qos2_inflight.add(packet_id)
            self._callback(self.on_message, topic, payload, retained)
        elif kind == PUBACK and len(body) >= 2:
            with self._state_lock:
                waiter = self._pending.get(int.from_bytes(body[:2], "big"))
            if waiter is not None:
                waiter[1] = True
                waiter[0].set()
        elif kind == PUBREL and len(body) >= 2:
            self._qos2_inflight.discard(int.from_bytes(body[:2], "big"))
            self._send(packet(PUBCOMP, 0, body[:2]))
        elif kind == SUBACK and len(body) >= 2:
            if any(code == 0x80 for code in body[2:]):
                self.log("warn", "the broker refused a subscription")
            packet_id = int.from_bytes(body[:2], "big")
            if packet_id in self._awaiting_subacks:
                self._awaiting_subacks.discard(packet_id)
                if not self._awaiting_subacks:
                    self._mark_connected()
        elif kind in (PINGRESP, UNSUBACK, PUBREC, PUBCOMP):
            pass
        else:
            raise MqttError(f"unexpected packet type {kind}")

    def _drop(self):
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._session = False
        self._awaiting_subacks = set()
        sock, self._sock = self._sock, None
        if sock is not None:
            self._close(sock)
        self._qos2_inflight.clear()
        with self._state_lock:
            for waiter in self._pending.values():
                waiter[0].set()
        if was_connected and not self._stopping.is_set():
            # A deliberate stop says nothing about the devices behind the broker.
            self._callback(self.on_connection, False)

    # ----- helpers -----
    def _callback(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # a bug in a handler must not take the connection down
            self.log("error", f"message handler failed: {e!r}")

    def _send_subscribe(self, subs):
        """Sends one SUBSCRIBE; returns its packet id."""
        packet_id = self._new_id()
        body = packet_id.to_bytes(2, "big")
        for topic_filter, qos in subs:
            body += encode_string(topic_filter) + bytes([qos])
        self._send(packet(SUBSCRIBE, 0x02, body))
        return packet_id

    def _send(self, data):
        sock = self._sock
        if sock is None:
            raise MqttError("not connected")
        with self._send_lock:
            sock.sendall(data)
            self._last_tx = time.monotonic()

    def _new_id(self, waiter=None):
        """A free packet id; with `waiter`, registered for its acknowledgement in the same step."""
        with self._state_lock:
            for _ in range(65535):
                self._next_id = self._next_id % 65535 + 1
                if self._next_id not in self._pending:
                    if waiter is not None:
                        self._pending[self._next_id] = waiter
                    return self._next_id
        raise MqttError("no free packet id")

    @staticmethod
    def _close(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
