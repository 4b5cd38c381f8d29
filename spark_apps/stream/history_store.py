"""The stream's per-sender history on disk, beside Spark's checkpoint, versioned by batch id.

Like Spark's own state store: batch B writes `delta-B.arrow` (the senders B changed, Arrow
IPC, written to a temp file, fsynced and renamed, so a file either exists whole or not at
all), and every `snapshot_every` batches `snapshot-B.arrow` (every sender) instead. When
batch B runs (the first batch after a start, or B again after a crash) the state is rebuilt
as of B-1: the newest snapshot <= B-1, then the deltas after it up to B-1. Files for B or
later can only be left by an attempt that crashed before Spark committed B: they are
deleted, and the rerun writes them again. Since a batch's windows are the same on a rerun,
the rerun's features, alerts and history are the same too (exactly-once effects).

On disk: the two newest snapshots and the deltas after the older one, so a rerun of the
snapshot batch still finds its base; older files are removed when a snapshot is written.
Why files and not Spark state or the Store: docs/detection.md.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

import numpy as np

from fraudpipe.errors import HistoryStoreError
from spark_apps.history import HistoryParams, SenderHistory

HISTORY_DIR: Final = "sender_history"  # under the query's checkpoint directory
_FILE = re.compile(r"^(delta|snapshot)-(\d{12})\.arrow$")
_EVICT_KEY: Final = b"fraudpipe.evict_before"  # delta metadata: the batch's eviction cutoff (ms), if any


def history_dir(checkpoint: str | Path) -> Path:
    """Where the history of the query checkpointed at `checkpoint` lives."""
    return Path(checkpoint) / HISTORY_DIR


class HistoryStore:
    """Restore a SenderHistory as of a batch, and record what each batch changed."""

    def __init__(self, directory: str | Path, *, snapshot_every: int, params: HistoryParams | None = None) -> None:
        self.directory = Path(directory)
        self.snapshot_every = snapshot_every
        self.params = params or HistoryParams()

    # --- reading ------------------------------------------------------------------------
    def files(self) -> dict[tuple[str, int], Path]:
        """(kind, batch id) -> path of every complete file."""
        if not self.directory.is_dir():
            return {}
        out = {}
        for path in self.directory.iterdir():
            match = _FILE.match(path.name)
            if match:
                out[(match.group(1), int(match.group(2)))] = path
        return out

    def restore(self, batch_id: int) -> SenderHistory:
        """The history as of batch `batch_id - 1`; files of `batch_id` and later are removed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob(".*.tmp*"):  # an attempt killed mid-write
            path.unlink(missing_ok=True)
        files = self.files()
        for (kind, batch), path in files.items():
            if batch >= batch_id:  # left by a crashed attempt of this batch or a later one
                path.unlink(missing_ok=True)
        history = SenderHistory(self.params)
        snapshots = [b for kind, b in files if kind == "snapshot" and b < batch_id]
        base = max(snapshots, default=-1)
        if base >= 0:
            history.load(self._read(files[("snapshot", base)]))
        for batch in sorted(b for kind, b in files if kind == "delta" and base < b < batch_id):
            table = self._read(files[("delta", batch)])
            cutoff = (table.schema.metadata or {}).get(_EVICT_KEY)
            if cutoff is not None:
                history.evict_idle(int(cutoff))
            history.load(table)
        return history

    def _read(self, path: Path) -> "pa.Table":  # noqa: F821 - pyarrow imported lazily
        import pyarrow as pa

        try:
            with pa.memory_map(str(path)) as source:
                return pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise HistoryStoreError(f"sender history file {path} is unreadable ({exc}); it belongs to a batch Spark "
                                    f"committed, so the history cannot be rebuilt: delete {self.directory} together "
                                    f"with the checkpoint to start over") from exc

    # --- writing ------------------------------------------------------------------------
    def commit(self, batch_id: int, history: SenderHistory, changed: np.ndarray, *,
               evict_before: int | None = None) -> None:
        """Record batch `batch_id`: the senders in `changed` (slots), or every sender on a snapshot batch.

        `evict_before` is the newest window start the batch evicted idle senders from
        (SenderHistory.evict_idle's argument), replayed before the rows on restore.
        """
        if batch_id % self.snapshot_every == 0:
            self._write(f"snapshot-{batch_id:012d}.arrow", history.export(history.live_slots()), None)
            self._prune(batch_id)
        elif len(changed) or evict_before is not None:
            self._write(f"delta-{batch_id:012d}.arrow", history.export(np.unique(changed)), evict_before)

    def _write(self, name: str, table: "pa.Table", evict_before: int | None) -> None:  # noqa: F821
        import pyarrow as pa

        if evict_before is not None:
            table = table.replace_schema_metadata({_EVICT_KEY: str(int(evict_before)).encode()})
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / name
        temp = self.directory / f".{name}.tmp{os.getpid()}"
        try:
            with pa.OSFile(str(temp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            with open(temp, "rb+") as handle:  # durable before it becomes visible
                os.fsync(handle.fileno())
            os.replace(temp, target)
            _fsync_dir(self.directory)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise HistoryStoreError(f"cannot write sender history file {target}: {exc}") from exc

    def _prune(self, snapshot: int) -> None:
        """Keep this snapshot, the one before it and the deltas after that one; remove the rest."""
        files = self.files()
        previous = max((b for kind, b in files if kind == "snapshot" and b < snapshot), default=-1)
        for (kind, batch), path in files.items():
            if batch < previous or (kind == "delta" and batch <= previous):
                path.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
