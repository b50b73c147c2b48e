"""ncclient framing and request/reply handling against a tiny in-process fake server.

The fake server only exercises the client's framing; end-to-end runs use the real daemon.
"""
import socket
import struct
import threading

import msgpack
import pytest

import ncclient
from ncclient import Client, NanochatError, ProtocolError


def _serve(sock, script):
    """Read one request, then send what script(request) returns: a list of frames or bytes."""
    try:
        req = ncclient.read_frame(sock)
        for item in script(req):
            if isinstance(item, bytes):
                for i in range(len(item)):  # byte by byte: the client must reassemble
                    sock.sendall(item[i:i + 1])
            else:
                ncclient.write_frame(sock, item)
    finally:
        sock.close()


def _client_with(script):
    a, b = socket.socketpair()
    t = threading.Thread(target=_serve, args=(b, script), daemon=True)
    t.start()
    return Client(sock=a), t


def test_frame_layout_is_big_endian_length_then_msgpack_map():
    frame = ncclient.encode_frame({"v": 1, "id": 7, "cmd": "status", "args": {}})
    (n,) = struct.unpack(">I", frame[:4])
    assert n == len(frame) - 4
    assert msgpack.unpackb(frame[4:], raw=False) == {"v": 1, "id": 7, "cmd": "status", "args": {}}


def test_request_streams_events_then_returns_result():
    seen = {}

    def script(req):
        seen["req"] = req
        rid = req["id"]
        return [{"id": rid, "event": "progress", "data": {"step": 1, "loss": 4.1}},
                {"id": rid, "event": "eval", "data": {"step": 1, "val_loss": 4.0, "bpb": 5.8}},
                {"id": rid, "ok": True, "result": {"run_id": "r1", "final_val_loss": 4.0}}]

    c, t = _client_with(script)
    events = []
    res = c.train(on_event=lambda n, d: events.append((n, d)), steps=1, depth=2)
    t.join(2)
    assert res == {"run_id": "r1", "final_val_loss": 4.0}
    assert [n for n, _ in events] == ["progress", "eval"]
    assert seen["req"]["v"] == 1 and seen["req"]["cmd"] == "train"
    assert seen["req"]["args"] == {"steps": 1, "depth": 2}
    c.close()


def test_error_reply_raises_nanochat_error_with_code():
    c, t = _client_with(lambda req: [{"id": req["id"], "ok": False,
                                      "error": {"code": "invalid_argument", "message": "bad T"}}])
    with pytest.raises(NanochatError) as ei:
        c.eval(windows=1)
    assert ei.value.code == "invalid_argument" and ei.value.message == "bad T"
    t.join(2)


def test_reply_split_into_single_bytes_is_reassembled():
    def script(req):
        return [ncclient.encode_frame({"id": req["id"], "ok": True, "result": {"text": "ROMEO:"}})]

    c, t = _client_with(script)
    assert c.sample(prompt="ROMEO:")["text"] == "ROMEO:"
    t.join(2)


def test_oversized_frame_is_refused():
    def script(req):
        return [struct.pack(">I", ncclient.MAX_FRAME_BYTES + 1)]

    c, t = _client_with(script)
    with pytest.raises(ProtocolError):
        c.status()
    t.join(2)


def test_mismatched_id_and_closed_connection_are_protocol_errors():
    c, t = _client_with(lambda req: [{"id": req["id"] + 1, "ok": True, "result": {}}])
    with pytest.raises(ProtocolError):
        c.status()
    t.join(2)
    c2, t2 = _client_with(lambda req: [])
    with pytest.raises(ProtocolError):
        c2.status()
    t2.join(2)


def test_checkpoint_wrapper_and_ids_increase():
    reqs = []

    def script(req):
        reqs.append(req)
        return [{"id": req["id"], "ok": True, "result": {"path": req["args"].get("path")}}]

    c, t = _client_with(script)
    assert c.checkpoint("export", path="/tmp/w.safetensors")["path"] == "/tmp/w.safetensors"
    t.join(2)
    assert reqs[0]["args"] == {"action": "export", "path": "/tmp/w.safetensors"}
    assert c._next_id == 2


def test_default_socket_path(monkeypatch):
    monkeypatch.setenv("NANOCHAT_SOCKET", "/x/y.sock")
    assert ncclient.default_socket_path() == "/x/y.sock"
    monkeypatch.delenv("NANOCHAT_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/5")
    assert ncclient.default_socket_path() == "/run/user/5/nanochat/nanochatd.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert ncclient.default_socket_path().endswith("/nanochatd.sock")
