"""Tessera plugin SDK for Python: one file, standard library only.

A plugin subclasses `Plugin`, overrides the lifecycle methods it needs and calls `run(MyPlugin())`.
The SDK speaks the plugin protocol (schemas/protocol.md): JSON-RPC 2.0, one object per line on
stdio. `emit` may be called from any thread; writes to stdout are serialized. Each request is
handled on its own thread, so heartbeats are answered while an `invoke` blocks on a device.

A plugin that cannot go on should die rather than limp: an exception escaping a plugin thread,
or a `MemoryError` anywhere, ends the process (exit code 70, the traceback on stderr), and the host
restarts it with backoff.

    class Lamp(Plugin):
        def discover(self):
            return [self.observation("lamp-1", "acme.State", {"id": "lamp-1", "on": False})]
        def invoke(self, external_id, action, params, dry_run):
            ...
    run(Lamp())
"""

import json
import os
import sys
import threading
import time
import traceback

PROTOCOL_VERSION = 1

# Error codes of the protocol.
UNKNOWN_DEVICE = 1001
UNSUPPORTED_ACTION = 1002
DEVICE_UNREACHABLE = 1003
INVALID_CONFIG = 1004


class PluginError(Exception):
    """An error answered to the host with a protocol error code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Plugin:
    """Base class of a plugin. Override what you need."""

    def __init__(self):
        self._out_lock = threading.Lock()
        self.config = {}
        self.secrets = {}
        self.state_dir = None
        self.plugin_id = None
        self.stopping = threading.Event()

    # ----- lifecycle, called by the host -----
    def initialize(self, config, secrets, state_dir):
        """Receives the configuration and secrets. Raise PluginError(INVALID_CONFIG, ...) to refuse."""

    def discover(self):
        """Returns a list of observations (see `observation`), one per device found."""
        return []

    def start(self):
        """Starts streaming; the default does nothing. Spawn threads here that call `emit`."""

    def invoke(self, external_id, action, params, dry_run):
        """Runs a normalized action. Returns an optional detail string; raises PluginError."""
        raise PluginError(UNSUPPORTED_ACTION, f"action {action} is not supported")

    def shutdown(self):
        """Stops streaming before the process exits."""

    # ----- helpers for plugin code -----
    @staticmethod
    def observation(external_id, record, payload, observed_at_ms=None):
        """Builds an observation: `record` is the full name of a contract record type."""
        obs = {"external_id": external_id, "record": record, "payload": payload}
        if observed_at_ms is not None:
            obs["observed_at_ms"] = observed_at_ms
        return obs

    def emit(self, external_id, record, payload, observed_at_ms=None):
        """Sends an observation to the host."""
        if observed_at_ms is None:
            observed_at_ms = int(time.time() * 1000)
        self._send({"jsonrpc": "2.0", "method": "observe",
                    "params": self.observation(external_id, record, payload, observed_at_ms)})

    def log(self, level, message):
        """Sends a log line to the host (`error`, `warn`, `info`, `debug`)."""
        self._send({"jsonrpc": "2.0", "method": "log", "params": {"level": level, "message": str(message)}})

    # ----- protocol -----
    def _send(self, message):
        line = json.dumps(message, separators=(",", ":")) + "\n"
        with self._out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def _answer(self, request_id, result=None, error=None):
        message = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result if result is not None else {}
        self._send(message)

    def _dispatch(self, method, params):
        if method == "initialize":
            self.plugin_id = params.get("plugin_id")
            self.config = params.get("config") or {}
            self.secrets = params.get("secrets") or {}
            self.state_dir = params.get("state_dir")
            self.initialize(self.config, self.secrets, self.state_dir)
            return {"protocol_version": PROTOCOL_VERSION}
        if method == "discover":
            return {"observations": list(self.discover() or [])}
        if method == "start":
            self.start()
            return {}
        if method == "invoke":
            detail = self.invoke(params.get("external_id"), params.get("action"),
                                 params.get("params") or {}, bool(params.get("dry_run")))
            return {"detail": detail} if detail else {}
        if method == "ping":
            return {}
        if method == "shutdown":
            self.stopping.set()
            self.shutdown()
            return {}
        raise PluginError(-32601, f"method not found: {method}")

    def _handle(self, line):
        try:
            message = json.loads(line)
        except ValueError as e:
            self._answer(None, error={"code": -32700, "message": f"parse error: {e}"})
            return
        request_id = message.get("id")
        try:
            result = self._dispatch(message.get("method"), message.get("params") or {})
            self._answer(request_id, result)
        except PluginError as e:
            self._answer(request_id, error={"code": e.code, "message": e.message})
        except MemoryError:
            traceback.print_exc(file=sys.stderr)
            _die("out of memory")
        except Exception as e:  # a bug in the plugin: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            self._answer(request_id, error={"code": -32603, "message": f"internal error: {e}"})


def _die(why):
    """Ends the process at once: the host sees the exit and restarts the plugin with backoff."""
    try:
        sys.stderr.write(f"tessera_plugin: {why}; exiting\n")
        sys.stderr.flush()
    finally:
        os._exit(70)


def _thread_died(args):
    # A plugin thread that dies (a bug, MemoryError) would leave a half-alive plugin that still
    # answers heartbeats but no longer streams: crash instead, so that the host restarts it.
    if args.exc_type is SystemExit:
        return
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=sys.stderr)
    _die(f"uncaught {args.exc_type.__name__} in thread {args.thread.name if args.thread else '?'}")


def run(plugin):
    """Serves the protocol on stdio until the host closes stdin or asks for shutdown."""
    threading.excepthook = _thread_died
    # Invoke calls may block on device I/O: handle each request on its own thread so that
    # heartbeats are answered meanwhile.
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if '"shutdown"' in line:
            plugin._handle(line)
            break
        threading.Thread(target=plugin._handle, args=(line,), daemon=True).start()
    plugin.stopping.set()
