"""The fast tier: the whole control plane (API, handlers, store, controllers) in this
process, against the in-memory FakeAgent. No root, no kernel objects, no image build."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gureum.api import xml_serializer
from gureum.testing_inprocess import FastCloud

os.environ.setdefault("GUREUM_STRICT_SERIALIZER", "1")
xml_serializer.STRICT = True  # already imported above: the variable alone is too late


@pytest.fixture(scope="session")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastCloud]:
    cloud = FastCloud(tmp_path_factory.mktemp("fast"))
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
