"""The fast tier: the whole control plane (API, handlers, store, controllers) in this
process, against the in-memory FakeAgent. No root, no kernel objects, no image build."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gureum.api import xml_serializer
from gureum.testing_inprocess import FastCloud
from gureum.testing_postgres import SELECTED as ON_POSTGRES
from gureum.testing_postgres import PostgresServer

os.environ.setdefault("GUREUM_STRICT_SERIALIZER", "1")
xml_serializer.STRICT = True  # already imported above: the variable alone is too late


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the session (unix socket only, stopped by PID)."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The fast cloud's store: empty for SQLite in its data directory. On PostgreSQL the
    environment names it too, for the `gureum` commands tests run beside the cloud."""
    if not ON_POSTGRES:
        yield ""
        return
    url = request.getfixturevalue("postgres").create_database("fast")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GUREUM_DATABASE_URL", url)
        yield url


@pytest.fixture(scope="session")
def fast(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[FastCloud]:
    cloud = FastCloud(tmp_path_factory.mktemp("fast"), database_url)
    yield cloud
    cloud.stop()


@pytest.fixture(scope="session")
def server(fast: FastCloud) -> FastCloud:
    """The real tier's `server`, played by the in-process cloud (API-only tests)."""
    return fast


@pytest.fixture(scope="session")
def ec2(fast: FastCloud):  # noqa: ANN201
    return fast.client()


@pytest.fixture(scope="session")
def image_id(ec2) -> str:  # noqa: ANN001
    return ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]


@pytest.fixture(scope="session")
def key_pair(fast: FastCloud, ec2) -> tuple[str, Path]:  # noqa: ANN001
    """Overrides the real tier's session fixture, so neither tier caches the other's key."""
    material = ec2.create_key_pair(KeyName="fast-key", KeyType="ed25519")["KeyMaterial"]
    path = fast.data_dir / "fast-key.pem"
    path.write_text(material)
    path.chmod(0o600)
    return "fast-key", path
