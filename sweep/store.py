"""The run store: finished runs in netCDF4 files, one per task, written atomically, checksummed, verified when read.

Layout under ``<out>/<sweep name>/``:

- ``runs/<name>.nc``: the finished runs of one task (``runfile``: several runs in one file; a file
  of one run is named by its key, one of several by the digest of their keys), written to a
  temporary name, then renamed: a file that exists is complete;
- ``index.jsonl``: one line per run file, appended by the driver after its rename: the file's name,
  size and SHA-256 digest, and the keys of the runs it holds. Resume and status trust an indexed
  run whose file is listed (no file is opened); where a file is read (assembly) its bytes must
  match its line, so a damaged file (a bit flip, zeroed blocks) is removed and its runs
  recomputed, never handed to the HDF5 library, which can spin forever on some damaged files;
- ``failed/<key>.json``: a run that raised, with its coordinates, error and traceback;
- ``plan.keys``: the planned run keys in plan order, 32 bytes each (the SHA-256 digests the hex keys
  spell), written by the driver before any compute (the coordinates follow from ``spec.json``);
- ``.lock``: held (``flock``) by the one driver writing the store; it names that driver;
- ``.probe``: a token written by the driver at the start of a sweep; a worker that reads it sees
  the store, and writes its run files there itself (``write_files``), leaving the index to the
  driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from epmsweep.engine import RESULT_FORMAT_VERSION, ParameterError
from epmsweep.engine.files import file_digest

from . import runfile
from .runfile import NETCDF_LOCK, StoredRun, Variables


class StoreError(ParameterError):
    """A store that cannot be used or written (locked, read-only, full, a folder where a file belongs);
    ``field`` is the path, ``reason`` the cause."""


LOW_SPACE = 64 * 2**20  # bytes: a failed write with less free space than this is reported as a full disk


def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before its atomic rename: ``.<name>.tmp<pid>`` beside it."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Write ``path`` atomically: the block writes the yielded temporary path, which is renamed onto
    ``path`` if the block goes through and removed otherwise. A failed write raises StoreError
    naming the file and saying whether the disk is full."""
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # netCDF-C reports a full disk as RuntimeError "HDF error"
        raise write_error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):  # absent after the rename; not removable on a read-only folder
            tmp.unlink()


def write_error(path: Path, exc: BaseException) -> StoreError:
    """StoreError for a write of ``path`` that raised ``exc``: says when the disk is full."""
    if isinstance(exc, IsADirectoryError):
        return StoreError(str(path), "is a folder where a file belongs: remove it")
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < LOW_SPACE):
        return StoreError(str(path), f"cannot write: no space left on the device ({free} bytes free)")
    return StoreError(str(path), f"cannot write: {exc}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with writing(path) as tmp:
        tmp.write_bytes(data)


class IndexEntry(NamedTuple):
    """A stored run as the index knows it: the name of its file (``runs/<file>.nc``), the file's size
    (bytes) and the digest of its bytes."""

    file: str
    size: int
    digest: str


INDEX_LINE = re.compile(
    r'^\{"file": "([0-9a-f]{64})", "size": (\d+), "digest": "([0-9a-f]{64})", '
    r'"runs": \["((?:[0-9a-f]{64}", ")*[0-9a-f]{64})"\]\}$',
    re.MULTILINE,
)
"""A line of ``index.jsonl`` as ``record_runs`` writes it (a JSON object); other lines (torn by an
interruption, or of the one-run-a-file index written before) are ignored. Its groups: the file's
name, size and digest, and the run keys it holds joined by ``", "``."""
KEY_SEPARATOR = '", "'


def file_name(keys: list[str]) -> str:
    """The name of the file holding the runs ``keys``: the key of a single run, else the SHA-256
    digest of the keys."""
    return keys[0] if len(keys) == 1 else hashlib.sha256("".join(keys).encode()).hexdigest()


INDEX_BLOCK = 2**22  # bytes of the index read at a time (longer than any line)

_HELD_LOCKS: dict[Path, list] = {}  # lock file -> [open file, depth]: the locks this process holds


ASSEMBLY_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
"""Compression of the assembled variables, chosen by size against write time in
``benchmarks/encoding.py``: zlib makes the assembled fields 16% smaller at level 1 with shuffle
(levels 4 and 9 gain under 1% more and write no faster). Run files are not compressed: float64
stresses barely compress, and they are written on the workers' hot path."""


def is_temporary(name: str) -> bool:
    """True for the name of a file being written (``temporary_path``)."""
    return name.startswith(".") and ".tmp" in name


def file_names(names: Iterable[str]) -> Iterator[str]:
    """The run files' names (``runs/<name>.nc``) among the names of a runs folder (temporary and
    hidden files left out)."""
    return (n[:-3] for n in names if n.endswith(".nc") and not n.startswith("."))


@dataclass(frozen=True)
class Status:
    planned: int
    done: int
    failed: int

    @property
    def pending(self) -> int:
        return self.planned - self.done - self.failed


class RunStore:
    """The run files, index and failure records of one sweep under ``<out>/<name>``."""

    def __init__(self, out: str | os.PathLike, name: str):
        self.root = Path(out) / name
        self.runs = self.root / "runs"
        self.failed = self.root / "failed"
        self.index_path = self.root / "index.jsonl"
        self.plan_path = self.root / "plan.keys"
        self._old_plan_path = self.root / "plan.json"  # the plan of a store written before plan.keys
        self.assembled = Path(out) / f"{name}.nc"
        self._index: dict[str, str] = {}  # run key -> name of its file
        self._files: dict[str, tuple[str, str]] = {}  # file name -> size and digest as INDEX_LINE matched them
        self._index_read = 0  # bytes of the index file read into _index
        self._last_read: tuple[tuple[str, str], dict[str, StoredRun]] | None = None  # (name, digest), its runs

    @contextlib.contextmanager
    def locked(self) -> Iterator[RunStore]:
        """Hold the store's lock for the block: one driver writes a store at a time.

        A second driver (another process, any host sharing the folder) gets a StoreError naming
        the holder, before it computes anything. Re-entered in the same process, the lock is
        shared. The kernel releases it when the holder dies, even by SIGKILL.
        """
        path = self.root / ".lock"
        held = _HELD_LOCKS.get(path)
        if held is None:
            if self.root.exists() and not self.root.is_dir():
                reason = "is a file where the sweep's folder belongs: remove it or use another --out"
                raise StoreError(str(self.root), reason)
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                handle = open(path, "a+")
            except OSError as exc:
                raise write_error(path, exc) from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise StoreError(
                    str(self.root), f"is in use by another driver ({holder}): wait for it to end, or stop it"
                ) from None
            handle.truncate(0)
            since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}")
            handle.flush()
            held = _HELD_LOCKS[path] = [handle, 0]
        held[1] += 1
        try:
            yield self
        finally:
            held[1] -= 1
            if held[1] == 0:
                del _HELD_LOCKS[path]
                held[0].close()

    def create(self) -> RunStore:
        """Make the folders, check that they are writable, and remove what an interrupted driver left:
        temporary files of the store and of the assembly. Call it holding ``locked``: only the
        lock's holder writes into the store, so any temporary file is the remains of a write that
        never completed.
        """
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            self.failed.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.runs, exc) from None
        names = self.remove_temporaries()
        for path in self.assembled.parent.glob(f".{self.assembled.name}.tmp*"):
            path.unlink(missing_ok=True)
        for folder in (self.root, self.runs, self.failed):
            atomic_write_bytes(folder / ".writable", b"")  # a read-only folder fails here, before any compute
            (folder / ".writable").unlink()
        self.index_unindexed(names)
        return self

    def index_unindexed(self, names: Iterable[str] | None = None) -> None:
        """Index the run files that no driver indexed: written by a worker whose driver stopped
        before the task's result reached it (or by an older store, one run a file). Each is read and
        indexed if it holds runs in the current formats under the name their keys give, else
        removed; a finished run is never computed again. ``names``: the runs folder's listing, if
        made."""
        self._read_index()
        names = os.listdir(self.runs) if names is None else names
        entries = {}
        for name in sorted(n for n in file_names(names) if n not in self._files):
            path = self.file_path(name)
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue
            with NETCDF_LOCK:
                runs = self._decoded(name, data)
            if runs is None or file_name(list(runs)) != name:
                path.unlink(missing_ok=True)
                continue
            entries.update(dict.fromkeys(runs, IndexEntry(name, len(data), file_digest(data))))
        if entries:
            self.record_runs(entries)

    def remove_temporaries(self) -> list[str]:
        """Remove the temporary files of writes that never completed (a writer killed mid-write).
        Only when no write is under way: at ``create``, or when a sweep's tasks are all done.
        Returns the other names of the runs folder."""
        listings = {folder: os.listdir(folder) for folder in (self.root, self.runs, self.failed)}
        for folder, names in listings.items():
            for name in filter(is_temporary, names):
                (folder / name).unlink(missing_ok=True)
        return [n for n in listings[self.runs] if not is_temporary(n)]

    def write_probe(self) -> str:
        """Write a new random token to ``.probe`` and return it (see ``sees_store``)."""
        token = secrets.token_hex(16)
        atomic_write_bytes(self.root / ".probe", token.encode())
        return token

    def file_path(self, name: str) -> Path:
        return self.runs / f"{name}.nc"

    def run_path(self, key: str) -> Path:
        """The file holding run ``key``: its indexed file, else the file of a single run ``key``."""
        return self.file_path(self._read_index().get(key, key))

    def write_spec(self, spec) -> None:
        """Keep the sweep file (as written, and with absolute state paths) for assembly and status."""
        atomic_write_bytes(self.root / "spec.yaml", spec.text.encode())
        atomic_write_bytes(self.root / "spec.json", json.dumps(spec.raw).encode())

    def read_spec(self):
        """The Spec stored by ``write_spec``."""
        from .spec import parse_spec

        path = self.root / "spec.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} holds no sweep (no spec.json)")
        spec = parse_spec(json.loads(path.read_text()), source=str(self.root / "spec.yaml"))
        return dataclasses.replace(spec, text=(self.root / "spec.yaml").read_text())

    def write_plan(self, keys: Iterable[str]) -> None:
        """Record the planned run keys (``plan.keys``); only the driver writes it."""
        atomic_write_bytes(self.plan_path, b"".join(bytes.fromhex(k) for k in keys))
        self._old_plan_path.unlink(missing_ok=True)

    def has_plan(self) -> bool:
        """True if a driver wrote the plan of a sweep here."""
        return self.plan_path.is_file() or self._old_plan_path.is_file()

    def read_plan(self) -> list[str]:
        """The planned run keys in plan order ([] before a plan is written); a store written before
        ``plan.keys`` has its keys in ``plan.json``."""
        if self.plan_path.is_file():
            data = self.plan_path.read_bytes()
            return [data[i : i + 32].hex() for i in range(0, len(data) - len(data) % 32, 32)]
        return list(json.loads(self._old_plan_path.read_text())) if self._old_plan_path.is_file() else []

    def write_runs(self, results: dict[str, runfile.Result]) -> None:
        """Write finished runs (key -> RunRecord or Dataset) atomically and index them (``write_files``)."""
        self.record_runs(self.write_files(results))

    def write_files(self, results: dict[str, runfile.Result]) -> dict[str, IndexEntry]:
        """Write finished runs (key -> RunRecord or Dataset) atomically, one file for the runs of the same
        variables (``runfile``), without indexing them (what a worker does: the driver indexes them
        with ``record_runs``); returns each run's entry."""
        entries = {}
        for group in runfile.by_signature(results):
            name = file_name(list(group))
            with writing(self.file_path(name)) as tmp:
                runfile.write(tmp, group)
                data = tmp.read_bytes()
            entries.update(dict.fromkeys(group, IndexEntry(name, len(data), file_digest(data))))
        return entries

    def record_runs(self, entries: dict[str, IndexEntry]) -> None:
        """Index runs whose files are in place (one append for all, a line per file matching
        ``INDEX_LINE``) and drop their failure records."""
        by_file: dict[IndexEntry, list[str]] = {}
        for key, entry in entries.items():
            by_file.setdefault(entry, []).append(key)
        lines = "".join(
            json.dumps({"file": e.file, "size": e.size, "digest": e.digest, "runs": keys}) + "\n"
            for e, keys in by_file.items()
        )
        try:
            with open(self.index_path, "a") as f:
                f.write(lines)
        except OSError as exc:
            raise write_error(self.index_path, exc) from None
        self._read_index()  # reads these lines too
        records = set(os.listdir(self.failed)) if self.failed.is_dir() else set()
        for record in records.intersection(f"{key}.json" for key in entries):
            (self.failed / record).unlink(missing_ok=True)

    def link_from(self, other: RunStore, key: str) -> bool:
        """Bring the run ``key`` of store ``other`` into this one if its file verifies there (the
        file as a hard link, else a copy, renamed into place, once for the runs it holds) and index
        it; True if it did."""
        entry = other.entry(key)
        if entry is None:
            return False
        self._read_index()
        if self._files.get(entry.file, ("", ""))[1] != entry.digest:
            if other._verified_bytes(entry.file) is None:
                return False
            with writing(self.file_path(entry.file)) as tmp:
                try:
                    os.link(other.file_path(entry.file), tmp)
                except OSError:  # another filesystem, or links not allowed
                    tmp.write_bytes(other.file_path(entry.file).read_bytes())
        self.record_runs({key: entry})
        return True

    def index(self) -> dict[str, IndexEntry]:
        """{key: IndexEntry} of the indexed runs (the last line of a key wins; a line torn by an
        interruption is ignored, its runs recomputed). Lines appended since the last call (by
        another RunStore of the same folder, another process) are read on each call."""
        index = self._read_index()
        entries = {name: IndexEntry(name, int(size), digest) for name, (size, digest) in self._files.items()}
        return {key: entries[name] for key, name in index.items()}

    def entry(self, key: str) -> IndexEntry | None:
        """The index entry of run ``key``, or None if it is not indexed."""
        name = self._read_index().get(key)
        return None if name is None else IndexEntry(name, int(self._files[name][0]), self._files[name][1])

    def _read_index(self) -> dict[str, str]:
        """The index as {run key: file name}, with the lines appended since the last call (the
        files' sizes and digests in ``_files``)."""
        try:
            size = self.index_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < self._index_read:  # the index was replaced
            self._index, self._files, self._index_read = {}, {}, 0
        if size > self._index_read:
            with open(self.index_path, "rb") as f:
                f.seek(self._index_read)
                while self._index_read < size:  # in blocks: memory of one block, not of the whole index
                    block = f.read(min(INDEX_BLOCK, size - self._index_read))
                    complete = block[: block.rfind(b"\n") + 1]  # a line still being written is read next time
                    if not complete and len(block) < INDEX_BLOCK:
                        break
                    complete = complete or block  # a block without an end of line is no line of the index
                    f.seek(self._index_read + len(complete))
                    self._index_read += len(complete)
                    for name, size_of, digest, keys in INDEX_LINE.findall(complete.decode("ascii", "replace")):
                        self._files[name] = (size_of, digest)
                        self._index.update(dict.fromkeys(keys.split(KEY_SEPARATOR), name))
        return self._index

    def write_failure(self, key: str, record: dict) -> None:
        atomic_write_bytes(self.failed / f"{key}.json", json.dumps({"key": key, **record}, indent=1).encode())

    def failures(self) -> dict[str, dict]:
        out = {}
        for path in self.failed.glob("*.json") if self.failed.is_dir() else ():
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                out[path.stem] = {"key": path.stem, "error": "unreadable failure record"}
        return out

    def _verified_bytes(self, name: str) -> bytes | None:
        """The bytes of run file ``name`` if they match its index line, else None; a file that does
        not match (damaged, foreign, unindexed) is removed. A folder at the file's path is a
        StoreError: it is not the store's to remove."""
        path = self.file_path(name)
        if path.is_dir():
            raise StoreError(str(path), "is a folder where a run file belongs: remove it")
        self._read_index()
        size, digest = self._files.get(name, ("-1", ""))
        try:
            data = path.read_bytes() if path.stat().st_size == int(size) else None
        except FileNotFoundError:
            return None
        if data is None or file_digest(data) != digest:
            path.unlink(missing_ok=True)
            return None
        return data

    def _decoded(self, name: str, data: bytes) -> dict[str, StoredRun] | None:
        """The runs of run file ``name`` from its bytes, or None if it is not a run file of the
        current store and result formats. The caller holds ``NETCDF_LOCK``."""
        read = runfile.read(data, name)
        return read[0] if read is not None and read[1] == RESULT_FORMAT_VERSION else None

    def read_run(self, key: str) -> StoredRun | None:
        """Run ``key`` from its verified file, or None if it is not indexed, or its file is missing,
        damaged (its bytes do not match the index), of another format or without the run; such a
        file is removed. The file read last is kept decoded: reading runs in file order reads each
        file once, memory held: one file. In a process with other threads the caller holds
        ``NETCDF_LOCK``."""
        name = self._index.get(key) or self._read_index().get(key)  # the index is re-read for runs not yet known
        if name is None:
            return None
        if self._last_read is None or self._last_read[0] != (name, self._files[name][1]):
            data = self._verified_bytes(name)
            runs = None if data is None else self._decoded(name, data)
            if runs is None:
                self.file_path(name).unlink(missing_ok=True)
                self._last_read = None
                return None
            self._last_read = ((name, self._files[name][1]), runs)
        run = self._last_read[1].get(key)
        if run is None:
            self.file_path(name).unlink(missing_ok=True)
            self._last_read = None
        return run

    def read_variables(self, key: str) -> Variables | None:
        """The variables of run ``key`` (``read_run``), or None."""
        run = self.read_run(key)
        return None if run is None else run.variables

    def verify(self, key: str) -> bool:
        """True if the file of run ``key`` matches its index line, reads, and holds the run in the
        current formats."""
        with NETCDF_LOCK:
            return self.read_run(key) is not None

    def stored_keys(self) -> set[str]:
        """Keys of the indexed runs whose files are present (not verified)."""
        return self.indexed_keys(list(self._read_index()))

    def indexed_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among ``keys`` whose run is indexed and its file present: what resume and status
        count as stored, from the index and one listing of the runs folder, no file opened or
        examined (the bytes are verified where they are read, and a damaged file is then removed).
        A folder at the path of an unindexed single run's file is a StoreError."""
        index, names = self._read_index(), set(os.listdir(self.runs)) if self.runs.is_dir() else set()
        out = set()
        for key in keys:
            name = index.get(key)
            if name is not None and f"{name}.nc" in names:
                out.add(key)
            elif name is None and f"{key}.nc" in names and self.file_path(key).is_dir():
                raise StoreError(str(self.file_path(key)), "is a folder where a run file belongs: remove it")
        return out

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among ``keys`` whose run reads from a verified file; a corrupt or outdated file is
        removed."""
        indexed = self.indexed_keys(keys)
        return {key for key in sorted(indexed, key=self._index.__getitem__) if self.verify(key)}

    def status(self) -> Status:
        plan = set(self.read_plan())
        stored = self.indexed_keys(plan)
        failed = (set(self.failures()) & plan) - stored
        return Status(len(plan), len(stored), len(failed))
