"""A process that appends audit entries as fast as it can until it is killed.

``python -m tests.integration.audit.crash_writer DB KEY_FILE STATE_FILE`` runs 16
concurrent producers through one ``BatchingWriter`` and prints ``ack <seq>`` (flushed)
for every entry only after ``submit`` returned, i.e. after the entry is durable. The
crash test kills it with SIGKILL and checks every acknowledged entry survived.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from audit.log import AuditLog
from audit.note import SigningKey
from audit.writer import BatchingWriter
from tests.integration.audit.helpers import draft


async def _produce(writer: BatchingWriter, who: int) -> None:
    i = 0
    while True:
        receipt = await writer.submit(draft(who * 1_000_000 + i))
        sys.stdout.write(f"ack {receipt.sequence}\n")
        sys.stdout.flush()
        i += 1


async def _main(db: str, key_file: Path, state: Path) -> None:
    key = SigningKey.from_text(key_file.read_text().strip())
    log = AuditLog.open(
        db, origin=key.name, log_key=key.verifier(), key=key, trusted_path=state, create=True
    )
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    async with BatchingWriter(log.append, max_batch=200) as writer:
        await asyncio.gather(*(_produce(writer, n) for n in range(16)))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
