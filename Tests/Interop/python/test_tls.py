"""TLS: `serve --tls-cert --tls-key` with an openssl self-signed certificate; pymongo connects
with `tls=True, tlsCAFile=…`; plaintext clients are refused; mutual TLS with `--tls-ca`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from conftest import ServerProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make test certificates")


def make_certificate(directory, name, *, ca=None):
    key, cert = directory / f"{name}.key.pem", directory / f"{name}.pem"
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    else:
        request = directory / f"{name}.csr"
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                        "-CAcreateserial", "-out", str(cert), "-days", "2"], check=True, capture_output=True)
    return cert, key


def test_tls_connections_work_and_plaintext_is_refused(tmp_path):
    cert, key = make_certificate(tmp_path, "node")
    srv = ServerProcess(tmp_path / "data", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    srv.start()
    try:
        user, password = srv.login
        client = MongoClient(f"mongodb://{user}:{password}@127.0.0.1:{srv.port}/", tls=True, tlsCAFile=str(cert),
                             serverSelectionTimeoutMS=5000)
        srv._clients.append(client)
        client.profile.users.insert_one({"_id": 1, "secret": "over TLS"})
        assert client.profile.users.find_one() == {"_id": 1, "secret": "over TLS"}
        # The ready line tells drivers to use TLS, and so do the URIs the CLI prints.
        assert "?tls=true" in srv.output()
        token_uri = subprocess.run([str(srv.binary), "token", "--key", "owner", "--data-dir", str(srv.data_dir)],
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert token_uri.endswith("&tls=true")
        token_client = MongoClient(token_uri, tlsCAFile=str(cert), serverSelectionTimeoutMS=5000)
        srv._clients.append(token_client)
        assert token_client.profile.users.find_one() == {"_id": 1, "secret": "over TLS"}
        # Grants work while a TLS node runs (the CLI has no TLS client: through the catalog).
        cli = lambda *args: subprocess.run([str(srv.binary), *args, "--data-dir", str(srv.data_dir)], capture_output=True, text=True)
        app = cli("key", "new", "--name", "app").stdout.strip()
        granted = cli("grant", "--key", "owner", "--space", "profile", "--to", app, "--actions", "read")
        assert granted.returncode == 0 and granted.stdout.strip().startswith("g"), granted.stderr
        assert granted.stdout.strip() in cli("grant", "list", "--key", "owner", "--space", "profile").stdout
        plaintext = MongoClient(f"mongodb://{user}:{password}@127.0.0.1:{srv.port}/", serverSelectionTimeoutMS=1500)
        with pytest.raises(PyMongoError):
            plaintext.admin.command("ping")
        plaintext.close()
        # A client that does not trust the certificate refuses the server.
        untrusting = MongoClient(f"mongodb://127.0.0.1:{srv.port}/", tls=True, serverSelectionTimeoutMS=1500)
        with pytest.raises(PyMongoError):
            untrusting.admin.command("ping")
        untrusting.close()
    finally:
        srv.stop()


def test_mutual_tls_requires_a_client_certificate(tmp_path):
    ca_cert, ca_key = make_certificate(tmp_path, "ca")
    node_cert, node_key = make_certificate(tmp_path, "node")
    client_cert, client_key = make_certificate(tmp_path, "client", ca=(ca_cert, ca_key))
    bundle = tmp_path / "client-bundle.pem"
    bundle.write_text(client_cert.read_text() + client_key.read_text())
    srv = ServerProcess(tmp_path / "data", extra_args=["--tls-cert", str(node_cert), "--tls-key", str(node_key), "--tls-ca", str(ca_cert)])
    srv.start()
    try:
        user, password = srv.login
        uri = f"mongodb://{user}:{password}@127.0.0.1:{srv.port}/"
        good = MongoClient(uri, tls=True, tlsCAFile=str(node_cert), tlsCertificateKeyFile=str(bundle), serverSelectionTimeoutMS=5000)
        srv._clients.append(good)
        assert good.admin.command("ping")["ok"] == 1
        without = MongoClient(uri, tls=True, tlsCAFile=str(node_cert), serverSelectionTimeoutMS=1500)
        with pytest.raises(PyMongoError):
            without.admin.command("ping")
        without.close()
    finally:
        srv.stop()


def test_bad_tls_files_stop_the_node_with_the_reason(tmp_path):
    (tmp_path / "empty.pem").write_text("")
    result = subprocess.run([str(ServerProcess(tmp_path / "d").binary), "serve", "--data-dir", str(tmp_path / "d"), "--port", "0",
                             "--tls-cert", str(tmp_path / "empty.pem"), "--tls-key", str(tmp_path / "empty.pem")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "TLS" in result.stderr
    lone = subprocess.run([str(ServerProcess(tmp_path / "d").binary), "serve", "--data-dir", str(tmp_path / "d"), "--port", "0",
                           "--tls-cert", str(tmp_path / "empty.pem")], capture_output=True, text=True, timeout=30)
    assert lone.returncode != 0 and "go together" in lone.stderr
