"""``python -m tests.integration.torn_checkpoint K N run --config FILE``: ``driftline run``
whose checkpoint writer kills the process (SIGKILL) in its K-th partition checkpoint, once
the first N of that checkpoint's chunk records are acknowledged and before its head is
sent: a crash in the middle of a checkpoint write, deterministically (used by
tests/integration/test_state.py; nothing of it is in driftline itself)."""

from __future__ import annotations

import os
import signal
import sys

from driftline import cli
from driftline.service.checkpointer import CheckpointWriter
from driftline.service.publisher import OutgoingRecord


def main() -> int:
    kill_at, acked = int(sys.argv[1]), int(sys.argv[2])
    written = 0

    async def send_chunks(
        self: CheckpointWriter, per_partition: list[list[OutgoingRecord]]
    ) -> None:
        nonlocal written
        sent: list[OutgoingRecord] = []
        for chunks in per_partition:
            written += 1
            if written == kill_at and len(chunks) > acked:
                await self.publisher.send_acked([*sent, *chunks[:acked]], holds_back="test")
                print("test hook: killed in the middle of a checkpoint", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            sent += chunks
        await self.publisher.send_acked(sent, holds_back="checkpoint heads")

    CheckpointWriter.send_chunks = send_chunks  # type: ignore[method-assign]
    return cli.main(sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
