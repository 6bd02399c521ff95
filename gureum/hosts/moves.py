"""Moving a volume's or snapshot's file from one host to another, through the control
plane: it reads the source agent's data (holes skipped) and writes it to the target
agent, in pieces small enough for one agent call each. Neither agent trusts the other;
both already trust the control plane.

The order makes a crash safe: copy (a retry starts the copy over), then the caller
records the new host, then `drop_source` removes the old file (a crash before that
leaves a stray file on the old host, never a row pointing at a missing one)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gureum.errors import HostError

if TYPE_CHECKING:
    from gureum.cloud import Cloud

log = logging.getLogger("gureum.hosts")
PIECE = 4 * 1024 * 1024  # base64 in JSON on the wire: ~5.3 MB a call


def move_stored(cloud: Cloud, name: str, from_host: str | None, to_host: str | None) -> int:
    """Copies the file `name` (a volume or snapshot id) to `to_host`; returns the bytes of
    data sent. The source keeps its copy until `drop_source`."""
    if cloud.agents.key(from_host) == cloud.agents.key(to_host):
        return 0
    source, target = cloud.agent_for(from_host), cloud.agent_for(to_host)
    offset, first, sent = 0, True, 0
    while True:
        chunk = source.read_stored(name, offset, PIECE)
        target.write_stored(name, chunk, first)
        first, sent = False, sent + len(chunk.data)
        if chunk.end:
            break
        offset = chunk.offset + len(chunk.data)
    log.info("moved %s from host %s to host %s (%d bytes of data)", name,
             cloud.agents.key(from_host), cloud.agents.key(to_host), sent)
    return sent


def drop_source(cloud: Cloud, name: str, from_host: str | None) -> None:
    """The old copy goes, once the store names the new host."""
    agent = cloud.agent_for(from_host)
    try:
        if name.startswith("snap-"):
            agent.delete_snapshot(name)
        else:
            agent.delete_volume(name)
    except HostError as err:  # a stray file on the old host, not a lost volume
        log.warning("the old copy of %s on host %s stays: %s", name,
                    cloud.agents.key(from_host), err)
