"""State on PostgreSQL (issue #13): the migrations on an empty database, several control
planes on one database (writers, wakeups, leadership, failover). A private PostgreSQL
server runs for the session (tests/fast/conftest.py `postgres`)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from botocore.config import Config as BotoConfig
from sqlalchemy import create_engine, make_url, select, text

from gureum.store import models
from gureum.store.db import MIGRATIONS, Store
from gureum.testing import wait_for
from gureum.testing_inprocess import FastCloud, state_of, wait_state
from gureum.testing_postgres import SELECTED, PostgresServer

# Run once, in the tier's PostgreSQL pass (make test), not again on SQLite.
pytestmark = pytest.mark.skipif(not SELECTED, reason="GUREUM_TEST_DATABASE=postgres runs these")
_names = (f"pg{n}" for n in itertools.count())


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    """A new empty database on the session's server."""
    return postgres.create_database(next(_names))


@pytest.fixture
def two_clouds(database: str, tmp_path: Path) -> Iterator[tuple[FastCloud, FastCloud]]:
    """Two control planes (API servers) in this process on one database."""
    first = FastCloud(tmp_path / "a", database)
    second = FastCloud(tmp_path / "b", database)
    yield first, second
    second.stop()
    first.stop()


def test_migrations_reach_head_on_postgres_without_drift(database: str) -> None:
    store = Store(database)
    store.migrate()
    store.migrate()  # a second start finds nothing to do
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)  # raises if the models and the migrated schema differ


def test_data_migrations_run_on_postgres(database: str) -> None:
    """0006 gives default VPCs DNS hostnames with an UPDATE on booleans (it was written as
    SQLite's `= 1`, which PostgreSQL refuses)."""
    engine = create_engine(database)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(text("INSERT INTO accounts (account_id, name, created_at) "
                          "VALUES ('111111111111', 'a', now())"))
        conn.execute(text(
            "INSERT INTO vpcs (vpc_id, account_id, cidr, is_default, net_index, created_at) "
            "VALUES ('vpc-1', '111111111111', '10.0.0.0/16', true, 1, now()), "
            "('vpc-2', '111111111111', '10.1.0.0/16', false, 2, now())"))
        command.upgrade(cfg, "head")
        rows = dict(conn.execute(text("SELECT vpc_id, enable_dns_hostnames FROM vpcs")).all())
    assert rows == {"vpc-1": True, "vpc-2": False}


def test_a_commit_in_one_process_is_heard_in_another(database: str) -> None:
    writer, listener = Store(database), Store(database)
    writer.migrate()
    heard: list[set[str]] = []
    listener.on_commit(heard.append)
    feed = listener.change_feed()
    assert feed is not None
    feed.start()
    try:
        assert feed.listening.wait(5)
        with writer.write() as s:
            s.add(models.Account(account_id="123456789012", name="heard"))
        assert wait_for(lambda: {"accounts"} in heard, 5)
        with listener.write() as s:  # its own commit: heard once, in-process, not twice
            s.add(models.Account(account_id="123456789013", name="own"))
        time.sleep(0.3)
        assert heard.count({"accounts"}) == 2
    finally:
        feed.stop()


def test_one_of_two_control_planes_leads(two_clouds: tuple[FastCloud, FastCloud]) -> None:
    first, second = two_clouds
    assert first.running.leadership.leading and first.cloud.controller is not None
    assert not second.running.leadership.leading and second.cloud.controller is None


def test_a_leader_that_loses_its_lock_stops_leading(
        database: str, tmp_path: Path, postgres: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's connection is cut (the database restarted, a network fault): the leader
    stops its controllers, and leadership settles on exactly one control plane."""
    import psycopg

    from gureum.store.postgres import LEADER_LOCK

    monkeypatch.setenv("GUREUM_LEADER_RETRY", "0.3")
    clouds = [FastCloud(tmp_path / "a", database), FastCloud(tmp_path / "b", database)]
    try:
        assert clouds[0].running.leadership.leading
        with psycopg.connect(postgres.dsn(make_url(database).database),
                             autocommit=True) as admin:
            holder = admin.execute(
                "SELECT pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE d.datname = current_database() AND locktype = 'advisory' "
                "AND classid = %s AND objid = %s AND granted", LEADER_LOCK).fetchone()[0]
            admin.execute("SELECT pg_terminate_backend(%s)", (holder,))

        def settled() -> bool:  # a second election, one leader, controllers only there
            leading = [c.running.leadership.leading for c in clouds]
            return sum(c.running.leadership.terms for c in clouds) == 2 and \
                leading.count(True) == 1 and all(
                    (c.cloud.controller is not None) == lead
                    for c, lead in zip(clouds, leading, strict=True))
        assert wait_for(settled, 5)
    finally:
        for cloud in reversed(clouds):
            cloud.stop()


def test_a_writer_stalled_inside_its_transaction_loses_the_write_lock(
        database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process frozen between two statements of a write (SIGSTOP, a paused VM) must not
    hold every other process's writes: the server ends its transaction, and its change is
    rolled back, not half-applied."""
    from gureum.store import postgres as pg

    monkeypatch.setattr(pg, "WRITER_STALL_SECONDS", 1.0, raising=False)
    stalled, other = Store(database), Store(database)
    stalled.migrate()
    holding = threading.Event()
    failures: list[Exception] = []

    def freeze_mid_write() -> None:
        try:
            with stalled.write() as s:
                s.add(models.Account(account_id="123456789012", name="stalled"))
                s.flush()
                holding.set()
                time.sleep(3)  # "frozen": no statement for longer than the stall limit
        except Exception as err:  # noqa: BLE001
            failures.append(err)

    thread = threading.Thread(target=freeze_mid_write)
    thread.start()
    assert holding.wait(10)
    started = time.monotonic()
    with other.write() as s:
        s.add(models.Account(account_id="123456789013", name="other"))
    waited = time.monotonic() - started
    thread.join()
    assert 0.5 < waited < 2.5, waited
    assert failures, "the stalled writer's commit should fail: the server ended it"
    with other.read() as s:
        names = set(s.scalars(select(models.Account.name)))
    assert "other" in names and "stalled" not in names


def test_launches_through_either_api_never_share_an_address_or_slot(
        two_clouds: tuple[FastCloud, FastCloud]) -> None:
    """Writers on two API servers at once: every address and slot picked once (the
    database-wide writer lock; without it, READ COMMITTED lets both pick the same)."""
    clients = [cloud.client() for cloud in two_clouds for _ in range(3)]
    image_id = clients[0].describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
    launched: list[str] = []
    errors: list[Exception] = []

    def launch(ec2) -> None:  # noqa: ANN001
        try:
            for _ in range(3):
                res = ec2.run_instances(ImageId=image_id, MinCount=2, MaxCount=2,
                                        InstanceType="t3.micro")
                launched.extend(i["InstanceId"] for i in res["Instances"])
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=launch, args=(ec2,)) for ec2 in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with two_clouds[0].cloud.store.read() as s:
        rows = list(s.scalars(select(models.Instance).where(
            models.Instance.instance_id.in_(launched))))
    assert len(rows) == len(launched) == 36
    for column in ("slot", "private_ip", "public_ip"):
        values = [getattr(r, column) for r in rows]
        assert len(set(values)) == len(values), column
    # Launched by the leader's controllers, whichever API took the call.
    ec2 = clients[-1]
    assert wait_for(lambda: all(state_of(ec2, i) == "running" for i in launched), 30)
    ec2.terminate_instances(InstanceIds=launched)
    for instance_id in launched:
        wait_state(ec2, instance_id, "terminated", 30)


class ControlPlane:
    """A FastCloud in a process of its own (`python -m gureum.testing_inprocess`)."""

    def __init__(self, data_dir: Path, database: str) -> None:
        env = {"GUREUM_LEADER_RETRY": "0.5", **os.environ}  # a quick test unless told
        self.proc = subprocess.Popen([sys.executable, "-m", "gureum.testing_inprocess",
                                      str(data_dir), database], stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        assert ready and ready[0] == "READY", ready
        self.port, self.access, self.secret = int(ready[1]), ready[2], ready[3]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    @property
    def role(self) -> str | None:
        return self.lines[-1] if self.lines else None

    def client(self):  # noqa: ANN201
        return boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{self.port}",
                            region_name="gureum-1", aws_access_key_id=self.access,
                            aws_secret_access_key=self.secret,
                            config=BotoConfig(retries={"max_attempts": 0}))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def test_killing_the_leader_hands_the_controllers_to_another(
        database: str, tmp_path: Path) -> None:
    """Two control-plane processes on one database; SIGKILL the leader: the other takes
    the lead and launches what the clients ask of it (and what was left pending)."""
    leader = ControlPlane(tmp_path / "a", database)
    try:
        assert wait_for(lambda: leader.role == "LEADER", 10)
        follower = ControlPlane(tmp_path / "b", database)
        try:
            assert wait_for(lambda: follower.role == "FOLLOWER", 10)
            ec2 = follower.client()
            image = ec2.describe_images(Owners=["gureum"])["Images"][0]["ImageId"]
            # Asked of the follower, launched by the leader (woken across processes).
            first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
            first_id = first["Instances"][0]["InstanceId"]
            wait_state(ec2, first_id, "running", 10)

            # Frozen, the leader still holds its lock: what is asked now stays pending.
            leader.proc.send_signal(signal.SIGSTOP)
            pending = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
            pending_id = pending["Instances"][0]["InstanceId"]
            time.sleep(0.5)
            assert state_of(ec2, pending_id) == "pending"
            leader.kill()
            killed = time.monotonic()
            assert wait_for(lambda: follower.role == "LEADER", 10)
            took_over = time.monotonic() - killed
            wait_state(ec2, pending_id, "running", 10)
            launched = time.monotonic() - killed
            print(f"failover: leader in {took_over:.2f} s, pending instance running in "
                  f"{launched:.2f} s after SIGKILL (retry every "
                  f"{os.environ.get('GUREUM_LEADER_RETRY', '0.5')} s)")
            assert state_of(ec2, first_id) == "running"  # nothing lost with the leader
            ec2.terminate_instances(InstanceIds=[first_id, pending_id])
            wait_state(ec2, pending_id, "terminated", 10)
        finally:
            follower.kill()
    finally:
        leader.kill()
