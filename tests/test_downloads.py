"""Published models and datasets by name, against a local HTTP server the tests start and stop
on 127.0.0.1 (no test touches the internet); and a user's own models by name."""

from __future__ import annotations

import errno
import io
import json
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import write_domain

import cyclegan_tool as ct
from cyclegan_tool.cli import cli
from cyclegan_tool.errors import CycleGANError
from cyclegan_tool.models import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator, init_weights


def _weights(net) -> bytes:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


class Server:
    """Serves `files[path]`, with HTTP Range; `/cut/...` sends half, `/slow/...` waits, `/html/...`
    answers a web page, `/err500/...` fails. Counts requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                kind, _, rest = self.path.lstrip("/").partition("/")
                if kind == "err500":
                    return self.send_error(500, "boom")
                if kind == "html":
                    body = b"<!DOCTYPE html><html><body>Not here</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    return self.wfile.write(body)
                data = outer.files.get(rest)
                if data is None:
                    return self.send_error(404, "Not Found")
                if kind == "slow":
                    time.sleep(outer.delay)
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body[: len(body) // 2] if kind == "cut" else body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, kind: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    s = Server()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CYCLEGAN_TOOL_OFFLINE", raising=False)
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", s.url())
    torch.manual_seed(0)
    gen = init_weights(build_generator(GeneratorSpec(name="resnet_6blocks", ngf=4)), "normal", 0.1)
    s.files["style_monet.pth"] = _weights(gen)
    s.files["monet2photo.pth"] = _weights(build_discriminator(DiscriminatorSpec(ndf=4)))  # not a generator
    yield s
    s.close()


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(res, *parts: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    for part in parts:
        assert part in lines[0], lines[0]


def no_file(tmp_path: Path, name: str) -> None:
    found = [p for p in (tmp_path / "cache").rglob(f"{name}*") if not p.name.endswith(".part")]
    assert not found, found


def test_downloads_once_with_progress_then_converts_without_a_request(server, tmp_path):
    write_domain(tmp_path / "photos", 2, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "downloading model 'style_monet'" in res.output  # the progress bar
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    assert server.requests == ["/ok/style_monet.pth"]
    kept = tmp_path / "cache" / "cyclegan-tool" / "models" / "style_monet.pth"
    record = json.loads(kept.with_name("style_monet.pth.json").read_text())
    assert record["url"].endswith("/ok/style_monet.pth") and len(record["sha256"]) == 64
    res = run("convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out2"))
    assert res.exit_code == 0 and len(server.requests) == 1  # the cache, no request
    assert "published model style_monet" in ct.describe_model("style_monet")["what"]
    listing = run("models")
    assert "style_monet" in listing.output and "downloaded" in listing.output and "horse2zebra" in listing.output


def test_offline_never_touches_the_network(server, tmp_path, monkeypatch):
    write_domain(tmp_path / "photos", 1, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("--offline", "convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out"))
    one_line_error(res, "model 'style_monet'", "offline", "style_monet.pth")
    monkeypatch.setenv("CYCLEGAN_TOOL_OFFLINE", "1")
    res = run("convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out"))
    one_line_error(res, "offline")
    assert server.requests == []


def test_a_folder_of_copies_serves_as_the_mirror_of_an_offline_machine(server, tmp_path, monkeypatch):
    """What the offline error suggests: a file:// URL to a folder of .pth files, checked and
    recorded as a download is."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "style_monet.pth").write_bytes(server.files["style_monet.pth"])
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", mirror.as_uri() + "/")
    write_domain(tmp_path / "photos", 1, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    kept = tmp_path / "cache" / "cyclegan-tool" / "models" / "style_monet.pth"
    assert kept.read_bytes() == server.files["style_monet.pth"] and server.requests == []
    assert json.loads(kept.with_name("style_monet.pth.json").read_text())["url"].startswith("file://")


@pytest.mark.parametrize("kind, url_kind, message", [
    ("404", "ok", "HTTP 404"),
    ("500", "err500", "HTTP 500"),
    ("html", "html", "a web page, not weights"),
    ("layout", "ok", "not a generator's weights"),
    ("cut", "cut", "cut short"),
])
def test_each_failure_is_one_line_with_no_file_under_the_final_name(server, tmp_path, monkeypatch, kind, url_kind,
                                                                     message):
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", server.url(url_kind))
    name = {"404": "style_vangogh", "layout": "monet2photo"}.get(kind, "style_monet")
    write_domain(tmp_path / "photos", 1, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("convert", "--model", name, str(tmp_path / "photos"), str(tmp_path / "out"))
    one_line_error(res, f"model '{name}'", message, f"/{url_kind}/{name}.pth")
    no_file(tmp_path, f"{name}.pth")


def test_a_cut_download_resumes(server, tmp_path, monkeypatch):
    from cyclegan_tool import zoo

    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", server.url("cut"))
    with pytest.raises(CycleGANError, match="cut short"):
        zoo.model_file("style_monet")
    part = tmp_path / "cache" / "cyclegan-tool" / "models" / "style_monet.pth.part"
    assert part.stat().st_size == len(server.files["style_monet.pth"]) // 2
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", server.url("ok"))
    path = zoo.model_file("style_monet")
    assert path.read_bytes() == server.files["style_monet.pth"] and not part.exists()


def test_a_timeout_is_one_line(server, tmp_path, monkeypatch):
    from cyclegan_tool.zoo import fetch

    monkeypatch.setattr(fetch, "TIMEOUT_S", 0.3)
    server.delay = 1.5
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", server.url("slow"))
    write_domain(tmp_path / "photos", 1, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("convert", "--model", "style_monet", str(tmp_path / "photos"), str(tmp_path / "out"))
    one_line_error(res, "model 'style_monet'", "no data within", "/slow/style_monet.pth")
    no_file(tmp_path, "style_monet.pth")


def test_no_network_and_no_such_host(server, tmp_path, monkeypatch):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", f"http://127.0.0.1:{closed}/")
    res = run("info", "style_monet")
    one_line_error(res, "model 'style_monet'", "refused")

    def no_dns(*a, **k):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # as without a network; nothing is asked of a resolver
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", "http://models.example.invalid/")
    res = run("info", "style_monet")
    one_line_error(res, "model 'style_monet'", "does not resolve")


def test_a_changed_file_and_a_full_or_unwritable_cache(server, tmp_path, monkeypatch):
    from cyclegan_tool import zoo
    from cyclegan_tool.zoo import fetch

    path = zoo.model_file("style_monet")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    res = run("info", "style_monet")
    one_line_error(res, "model 'style_monet'", "changed since it was downloaded")
    path.unlink()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch.os, "fsync", full)
    res = run("info", "style_monet")
    one_line_error(res, "model 'style_monet'", "the disk is full")
    assert not path.exists()
    monkeypatch.undo()
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_URL", server.url())
    monkeypatch.setenv("CYCLEGAN_TOOL_MODEL_DIR", str(tmp_path / "ro" / "models"))
    (tmp_path / "ro").write_text("a file where the folder would go")  # unwritable, even for root
    res = run("info", "style_monet")
    one_line_error(res, "model 'style_monet'", "ro/models")


def test_an_unknown_name_says_did_you_mean(server):
    res = run("convert", "--model", "style_vangog", "x", "y")
    one_line_error(res, "no model named 'style_vangog'", "did you mean 'style_vangogh'")


def test_a_mirror_from_the_config_file(server, tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLEGAN_TOOL_MODEL_URL")
    config = tmp_path / "config" / "cyclegan-tool" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"model_url": server.url()}))
    res = run("info", "style_monet")
    assert res.exit_code == 0 and "resnet_6blocks" in res.output and server.requests == ["/ok/style_monet.pth"]


def test_your_own_models_by_name(server, tmp_path, tiny_generator, tiny_onnx):
    write_domain(tmp_path / "photos", 2, (40, 48), (0.5, 0.6, 0.7), seed=3)
    res = run("models", "add", "mine", str(tiny_onnx), "--summary", "my horses")
    assert res.exit_code == 0 and "added 'mine'" in res.output, res.output
    assert "mine" in run("models").output and "my horses" in run("models").output
    summary = ct.convert(tmp_path / "photos", tmp_path / "out", model="mine")
    assert summary.converted == 2
    res = run("models", "add", "pth", str(tiny_generator), "--link")
    assert res.exit_code == 0 and (tmp_path / "data" / "cyclegan-tool" / "models" / "pth.pth").is_symlink()
    assert run("convert", "--model", "pth", str(tmp_path / "photos"), str(tmp_path / "out2")).exit_code == 0
    one_line_error(run("models", "add", "mine", str(tiny_onnx)), "exists already")
    one_line_error(run("models", "add", "horse2zebra", str(tiny_onnx)), "shipped or published model's name")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    one_line_error(run("models", "add", "x", str(bad)), "not a model file")
    assert run("models", "remove", "mine").exit_code == 0
    one_line_error(run("convert", "--model", "mine", str(tmp_path / "photos"), str(tmp_path / "o3")),
                   "no model named 'mine'")
    from cyclegan_tool.api import shipped_models

    assert "pth" in shipped_models() and "style_monet" in shipped_models()  # the GUI's list


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a symbolic link
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_datasets_pull_checks_the_archive_and_the_layout(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLEGAN_TOOL_DATASET_URL", server.url())
    good = {f"horse2zebra/{d}/{i}.png": _png() for d in ("trainA", "trainB", "testA", "testB") for i in range(2)}
    server.files["horse2zebra.zip"] = _zip(good)
    server.files["apple2orange.zip"] = _zip({"../evil.txt": b"x", **good})
    server.files["maps.zip"] = _zip(good, links=("horse2zebra/trainA/link.png",))
    res = run("datasets", "pull", "horse2zebra")
    assert res.exit_code == 0 and "trainA 2, trainB 2, testA 2, testB 2" in res.output, res.output
    assert "horse2zebra" in run("datasets").output and "pulled" in run("datasets").output
    for name, message in (("apple2orange", "a path outside its folder"), ("maps", "a link or special file")):
        dest = tmp_path / "pulled" / name
        one_line_error(run("datasets", "pull", name, str(dest)), f"dataset '{name}'", message, "nothing written")
        assert not dest.exists() and not (tmp_path / "evil.txt").exists()
        assert not [p for p in (tmp_path / "pulled").iterdir() if not p.name.endswith(".part")]
    one_line_error(run("datasets", "pull", "cityscapes"), "registration")
    one_line_error(run("datasets", "pull", "horse2zebr"), "did you mean 'horse2zebra'")
    # `train NAME` finds a pulled dataset
    from cyclegan_tool.api import train

    run_dir = train("horse2zebra", name="pulled", checkpoints_dir=str(tmp_path / "runs"), netG="resnet_6blocks",
                    ngf=4, ndf=4, load_size=36, crop_size=32, n_epochs=1, n_epochs_decay=0, workers=0)
    assert (run_dir / "latest.pt").is_file()
