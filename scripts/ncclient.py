"""ncclient: a small blocking Python client for nanochatd (msgpack frames over a Unix socket).

For scripts and notebooks that drive the daemon from Python.  Needs only the `msgpack`
package (pip install msgpack).  The wire format is proto/PROTOCOL.md:

    frame    = 4-byte big-endian unsigned length, then that many bytes of one msgpack map
    request  = {"v": 1, "id": <uint>, "cmd": <str>, "args": <map>}
    event    = {"id": id, "event": <str>, "data": <map>}        (zero or more, long commands)
    reply    = {"id": id, "ok": true, "result": <map>}
             | {"id": id, "ok": false, "error": {"code": <str>, "message": <str>}}

Example:

    import sys; sys.path.insert(0, "scripts")
    from ncclient import Client, Daemon

    with Daemon.spawn("build/bin/nanochatd", socket="/tmp/nc.sock") as d, d.client() as c:
        print(c.status())
        res = c.train(depth=4, seq_len=256, batch_size=8, steps=50, device="cpu",
                      on_event=lambda name, data: print(name, data))
        print(c.eval(windows=32)["val_loss"])
        print(c.sample(prompt="ROMEO:", max_new_tokens=100, temperature=0.8)["text"])

`Client(path)` connects to a running daemon (default path: $NANOCHAT_SOCKET, else
$XDG_RUNTIME_DIR/nanochat/nanochatd.sock, else /tmp/nanochat-$UID/nanochatd.sock).
Every command is `client.request(cmd, args, on_event)`; the named methods are thin wrappers
that pass their keyword arguments through unchanged, so new daemon arguments need no client
change.  Errors from the daemon raise `NanochatError` (with .code and .message).  One
request runs at a time per Client; open a second Client to `cancel` a running `train`.
"""

import os
import socket
import struct
import subprocess
import threading
import time

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 << 20  # refuse absurd frames instead of allocating them

__all__ = ["Client", "Daemon", "NanochatError", "ProtocolError", "default_socket_path",
           "encode_frame", "decode_payload", "read_frame", "write_frame"]


class NanochatError(Exception):
    """The daemon answered ok=false."""

    def __init__(self, code, message, reply=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class ProtocolError(Exception):
    """The bytes on the socket do not follow the protocol (or the connection dropped)."""


def default_socket_path():
    env = os.environ.get("NANOCHAT_SOCKET")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "nanochat", "nanochatd.sock")
    return f"/tmp/nanochat-{os.getuid()}/nanochatd.sock"


# ------------------------------------------------------------------------------------------
# framing


def encode_frame(obj):
    payload = msgpack.packb(obj, use_bin_type=True)
    if len(payload) > 0xFFFFFFFF:
        raise ProtocolError("frame too large")
    return struct.pack(">I", len(payload)) + payload


def decode_payload(payload):
    obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame is a {type(obj).__name__}, not a map")
    return obj


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(sock, max_bytes=MAX_FRAME_BYTES):
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > max_bytes:
        raise ProtocolError(f"frame of {n} bytes exceeds the client limit of {max_bytes}")
    return decode_payload(_recv_exact(sock, n))


def write_frame(sock, obj):
    sock.sendall(encode_frame(obj))


# ------------------------------------------------------------------------------------------
# client


class Client:
    """A blocking connection to nanochatd.  Use as a context manager or call close()."""

    def __init__(self, path=None, timeout=None, sock=None):
        self.path = path or default_socket_path()
        self._timeout = timeout
        self._next_id = 1
        self._lock = threading.Lock()
        self.sock = sock
        if self.sock is None:
            self.connect()

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self._timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.sock = s

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the one primitive ----------------------------------------------------------------
    def request(self, cmd, args=None, on_event=None):
        """Send one command; call on_event(name, data) per streamed event; return result.

        Raises NanochatError when the daemon answers ok=false.
        """
        with self._lock:
            if self.sock is None:
                raise ProtocolError("client is closed")
            rid = self._next_id
            self._next_id += 1
            write_frame(self.sock, {"v": PROTOCOL_VERSION, "id": rid, "cmd": cmd,
                                    "args": dict(args or {})})
            while True:
                msg = read_frame(self.sock)
                if msg.get("id") != rid:
                    raise ProtocolError(f"reply id {msg.get('id')!r} does not match request {rid}")
                if "event" in msg:
                    if on_event is not None:
                        on_event(msg["event"], msg.get("data") or {})
                    continue
                if "ok" not in msg:
                    raise ProtocolError(f"frame is neither an event nor a reply: {sorted(msg)}")
                if msg["ok"]:
                    return msg.get("result") or {}
                err = msg.get("error") or {}
                raise NanochatError(err.get("code", "unknown"), err.get("message", ""), msg)

    # -- thin wrappers (arguments pass through unchanged) ----------------------------------
    def status(self):
        return self.request("status")

    def train(self, on_event=None, **args):
        return self.request("train", args, on_event)

    def eval(self, on_event=None, **args):
        return self.request("eval", args, on_event)

    def sample(self, on_event=None, **args):
        return self.request("sample", args, on_event)

    def checkpoint(self, action, path=None, **args):
        if path is not None:
            args["path"] = path
        args["action"] = action
        return self.request("checkpoint", args)

    def cancel(self, **args):
        return self.request("cancel", args)

    def shutdown(self):
        return self.request("shutdown")


# ------------------------------------------------------------------------------------------
# daemon process management


class Daemon:
    """A nanochatd this process started (spawn) or found running (attach)."""

    def __init__(self, socket_path, proc=None, log_path=None):
        self.socket = socket_path
        self.proc = proc
        self.log_path = log_path
        self.spawned_at = None
        self.ready_at = None

    @classmethod
    def spawn(cls, binary, socket=None, results_dir=None, checkpoint_dir=None, data=None,
              extra_args=(), log_path=None, ready_timeout=30.0, env=None):
        """Start `binary --socket PATH ...` in the foreground; return once `status` answers."""
        socket_path = socket or default_socket_path()
        os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
        if os.path.exists(socket_path):
            try:
                with Client(socket_path, timeout=2.0) as c:
                    c.status()
                raise RuntimeError(f"a daemon already answers on {socket_path}; attach to it "
                                   f"or choose another socket")
            except OSError:
                os.unlink(socket_path)  # stale socket file
        cmd = [binary, "--socket", socket_path]
        if results_dir:
            cmd += ["--results-dir", results_dir]
        if checkpoint_dir:
            cmd += ["--checkpoint-dir", checkpoint_dir]
        if data:
            cmd += ["--data", data]
        cmd += list(extra_args)
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        d = cls(socket_path, log_path=log_path)
        d.spawned_at = time.time()
        try:
            d.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      stdin=subprocess.DEVNULL)
        finally:
            if log_path:
                out.close()
        d.wait_ready(ready_timeout)
        return d

    @classmethod
    def attach(cls, socket=None):
        d = cls(socket or default_socket_path())
        with d.client(timeout=5.0) as c:
            c.status()
        return d

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"nanochatd exited with status {self.proc.returncode} before "
                                   f"answering (log: {self.log_path})")
            try:
                with Client(self.socket, timeout=2.0) as c:
                    c.status()
                self.ready_at = time.time()
                return
            except (OSError, ProtocolError) as e:
                last = e
                time.sleep(0.02)
        raise TimeoutError(f"nanochatd did not answer on {self.socket} within {timeout}s: {last}")

    def client(self, timeout=None):
        return Client(self.socket, timeout=timeout)

    def stop(self, timeout=10.0):
        """Ask a daemon we spawned to shut down; terminate it if it does not."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                with self.client(timeout=5.0) as c:
                    c.shutdown()
            except (OSError, ProtocolError, NanochatError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
