"""Downloads of benchmark files (pooch), against a local HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from r2dn.data import DownloadError
from r2dn.data._fetch import Remote, default_cache, fetch

CONTENT = {"a.csv": b'"u","y",\n1,2,\n', "b.csv": b'"u","y",\n3,4,\n'}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A folder served over HTTP on 127.0.0.1: `(folder, base URL)`."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def archive(server) -> tuple[Path, str]:
    """`data.zip` on the server, holding CONTENT under `Data/Files/`: (its path, its URL)."""
    folder, url = server
    path = folder / "data.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in CONTENT.items():
            zf.writestr(f"Data/Files/{name}", data)
        zf.writestr("Data/other.txt", "not wanted")
    return path, f"{url}/data.zip"


def remote(url: str, sha256_of_archive: str | None = None, **changes) -> Remote:
    fields = dict(
        url=url,
        fname="data.zip",
        sha256=sha256_of_archive,
        members={name: sha256(data) for name, data in CONTENT.items()},
        paths={name: f"Data/Files/{name}" for name in CONTENT},
    )
    return Remote(**(fields | changes))


def test_fetch_downloads_extracts_verifies_and_caches(archive, tmp_path):
    path, url = archive
    cache = tmp_path / "cache"
    found = fetch(remote(url, sha256(path.read_bytes())), cache)
    assert {name: p.read_bytes() for name, p in found.items()} == CONTENT
    assert sorted(p.name for p in cache.iterdir()) == sorted(CONTENT)  # archive, rest removed
    path.unlink()  # a second call reads the cache and does not download
    assert fetch(remote(url), cache, download=False) == found
    assert fetch(remote(url), cache) == found


def test_fetch_a_plain_file(server, tmp_path):
    folder, url = server
    (folder / "a.csv").write_bytes(CONTENT["a.csv"])
    plain = Remote(f"{url}/a.csv", "a.csv", sha256(CONTENT["a.csv"]), {"a.csv": None})
    assert fetch(plain, tmp_path / "cache")["a.csv"].read_bytes() == CONTENT["a.csv"]


def test_fetch_rejects_a_download_with_the_wrong_checksum(archive, tmp_path):
    _, url = archive
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=r"has the wrong checksum .* not kept\. To supply"):
        fetch(remote(url, "0" * 64), cache)
    assert list(cache.iterdir()) == []


def test_fetch_deletes_a_member_with_the_wrong_checksum(archive, tmp_path):
    _, url = archive
    cache = tmp_path / "cache"
    bad = remote(url, members={"a.csv": "0" * 64, "b.csv": None})
    with pytest.raises(ValueError, match=r"a\.csv is corrupted .* has been deleted"):
        fetch(bad, cache)
    assert not (cache / "a.csv").exists()
    cache.joinpath("b.csv").write_text("tampered")  # a corrupted file already in the cache
    with pytest.raises(ValueError, match=r"b\.csv is corrupted"):
        fetch(remote(url), cache)
    assert not (cache / "b.csv").exists()


def test_fetch_from_an_unreachable_server_says_how_to_supply_the_files(tmp_path):
    with socket.socket() as sock:  # a port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as caught:
        fetch(remote(f"http://127.0.0.1:{port}/data.zip"), cache)
    message = str(caught.value)
    assert f"Downloading data.zip from http://127.0.0.1:{port}/data.zip failed" in message
    assert "pass root= the folder holding ['a.csv', 'b.csv']" in message
    assert f"or place them in {cache}" in message
    assert "Data/Files/a.csv" in message  # where they lie in the archive
    assert not cache.exists() or list(cache.iterdir()) == []


def test_fetch_reports_a_missing_page(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match="404"):
        fetch(remote(f"{url}/nothing.zip"), tmp_path / "cache")


def test_fetch_rejects_a_download_that_is_not_a_zip_archive(server, tmp_path):
    folder, url = server
    (folder / "data.zip").write_text("<html>moved</html>")
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="is not the zip archive data.zip .* deleted"):
        fetch(remote(f"{url}/data.zip"), cache)
    assert list(cache.iterdir()) == []


def test_fetch_names_members_missing_from_the_archive(archive, tmp_path):
    _, url = archive
    cache = tmp_path / "cache"
    wrong = remote(url, paths={"a.csv": "Data/Files/a.csv", "b.csv": "Elsewhere/b.csv"})
    with pytest.raises(DownloadError, match=r"does not contain \['Elsewhere/b\.csv'\]"):
        fetch(wrong, cache)
    assert list(cache.iterdir()) == []


def test_fetch_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\['a\.csv', 'b\.csv'\] are not in the cache"):
        fetch(remote("http://127.0.0.1:9/data.zip"), tmp_path, download=False)


def test_default_cache_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("R2DN_CACHE", str(tmp_path))
    assert default_cache("silverbox") == tmp_path / "silverbox"
    monkeypatch.delenv("R2DN_CACHE")
    assert default_cache("f16gvt") == Path.home() / ".cache" / "r2dn" / "f16gvt"
