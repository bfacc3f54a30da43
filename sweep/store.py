"""The run store: one netCDF4 file per finished run, written atomically, checksummed, verified when read.

Layout under ``<out>/<sweep name>/``:

- ``runs/<key>.nc``: a finished run (written to a temporary name, then renamed: a file that
  exists is complete);
- ``index.jsonl``: one line per stored run, appended by the driver after its rename: key, size and
  SHA-256 digest of the file's bytes. Resume and status trust an indexed run whose file is listed
  (no file is opened); where the file is read (assembly) its bytes must match its line, so a
  damaged file (a bit flip, zeroed blocks) is removed and recomputed, never handed to the HDF5
  library, which can spin forever on some damaged files;
- ``failed/<key>.json``: a run that raised, with its coordinates, error and traceback;
- ``plan.keys``: the planned run keys in plan order, 32 bytes each (the SHA-256 digests the hex keys
  spell), written by the driver before any compute (the coordinates follow from ``spec.json``);
- ``.lock``: held (``flock``) by the one driver writing the store; it names that driver;
- ``.probe``: a token written by the driver at the start of a sweep; a worker that reads it sees
  the store, and writes its run files there itself (``write_run_file``), leaving the index to the
  driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
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

import netCDF4
import numpy as np
import xarray as xr
from epmsweep.engine import RESULT_FORMAT_VERSION, ParameterError
from epmsweep.engine.files import file_digest
from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK as NETCDF_LOCK

# The HDF5 library is not thread-safe. xarray serialises its own netCDF4 calls with this lock; the
# direct calls here hold it too, so that a file xarray closes in another thread (a DataTree
# collected by the garbage collector in Dask's event-loop thread, say) never runs alongside them.


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
    """A stored run file as the index knows it: size (bytes) and digest of its bytes (a tuple, the
    cheapest record to make 10^6 of when the index is read)."""

    size: int
    digest: str


INDEX_LINE = re.compile(r'^\{"key": "([0-9a-f]{64})", "size": (\d+, "digest": "[0-9a-f]{64})"\}$', re.MULTILINE)
"""A line of ``index.jsonl`` as ``record_runs`` writes it (a JSON object); other lines (torn by an
interruption) are ignored. Its groups: the key, and its size and digest as the line spells them,
kept as matched until the entry is needed (``_entry``): a status or resume check of 10^6 runs
needs only the keys."""


def _entry(spelled: str) -> IndexEntry:
    """The IndexEntry that ``INDEX_LINE`` matched as ``<size>, "digest": "<digest>"``."""
    return IndexEntry(int(spelled[: spelled.index(",")]), spelled[-64:])


INDEX_BLOCK = 2**22  # bytes of the index read at a time (longer than any line)

_HELD_LOCKS: dict[Path, list] = {}  # lock file -> [open file, depth]: the locks this process holds


RUN_COMPRESSION: dict = {}
ASSEMBLY_COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
"""Compression of run files (none) and of the assembled variables, chosen by size against write time
in ``benchmarks/encoding.py``: zlib makes a run file 15% larger (float64 stresses barely compress,
and each compressed variable is chunked), while it makes the assembled fields 16% smaller at level
1 with shuffle (levels 4 and 9 gain under 1% more and write no faster). Run files are written once
per run on the driver's hot path; the assembled file is written once and kept."""


def netcdf_values(values: np.ndarray, attrs: dict) -> tuple[np.ndarray, dict]:
    """Values and attributes as netCDF stores them: booleans as int8 with ``dtype: bool``, which
    xarray decodes back to booleans."""
    if values.dtype == bool:
        return values.astype(np.int8), {**attrs, "dtype": "bool"}
    return values, attrs


def auxiliary_coordinates(ds: xr.Dataset, dims: tuple[str, ...]) -> str:
    """The CF ``coordinates`` attribute of a variable on ``dims``: the non-index coordinates of
    ``ds`` whose dims it has."""
    return " ".join(c for c in ds.coords if c not in ds.dims and set(ds[c].dims) <= set(dims))


def write_netcdf(ds: xr.Dataset, path: Path, compression: dict = RUN_COMPRESSION) -> None:
    """Write a Dataset of plain numeric variables with the netCDF4 library directly.

    ``Dataset.to_netcdf`` takes a cluster-wide lock through the scheduler whenever a Dask client
    is active (tens of ms per file); the driver is the only writer of its files and needs none.
    """
    with NETCDF_LOCK, netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for dim, size in ds.sizes.items():
            nc.createDimension(dim, size)
        for name, var in ds.variables.items():
            values, attrs = netcdf_values(var.values, var.attrs)
            out = nc.createVariable(name, values.dtype, var.dims, **(compression if var.size > 1 else {}))
            aux = "" if name in ds.coords else auxiliary_coordinates(ds, var.dims)
            out.setncatts({**attrs, **({"coordinates": aux} if aux else {})})
            out[...] = values
        nc.setncatts(ds.attrs)


def is_temporary(name: str) -> bool:
    """True for the name of a file being written (``temporary_path``)."""
    return name.startswith(".") and ".tmp" in name


def run_keys(names: Iterable[str]) -> Iterator[str]:
    """The run keys of the names of a runs folder (temporary and hidden files left out)."""
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
    """Per-run files of one sweep under ``<out>/<name>``."""

    def __init__(self, out: str | os.PathLike, name: str):
        self.root = Path(out) / name
        self.runs = self.root / "runs"
        self.failed = self.root / "failed"
        self.index_path = self.root / "index.jsonl"
        self.plan_path = self.root / "plan.keys"
        self._old_plan_path = self.root / "plan.json"  # the plan of a store written before plan.keys
        self.assembled = Path(out) / f"{name}.nc"
        self._index: dict[str, str] | None = None  # key -> its size and digest as INDEX_LINE matched them
        self._index_read = 0  # bytes of the index file read into _index

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
        before the task's result reached it (or by a store without an index). Each is opened and
        indexed if it holds the run of its name in the current result format, else removed; a
        finished run is never computed again. ``names``: the runs folder's listing, if made."""
        index, entries = self._read_index(), {}
        names = os.listdir(self.runs) if names is None else names
        for key in sorted(k for k in run_keys(names) if k not in index):
            path = self.run_path(key)
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue
            with NETCDF_LOCK:
                nc = self._open_run(key, data)
            if nc is None:
                continue
            nc.close()
            entries[key] = IndexEntry(len(data), file_digest(data))
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

    def run_path(self, key: str) -> Path:
        return self.runs / f"{key}.nc"

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

    def write_run(self, key: str, ds: xr.Dataset) -> Path:
        """Write a finished run atomically and index it; the file records its key and result format."""
        self.record_runs({key: self.write_run_file(key, ds)})
        return self.run_path(key)

    def write_run_file(self, key: str, ds: xr.Dataset) -> IndexEntry:
        """Write a finished run's file atomically, without indexing it (what a worker does: the
        driver indexes it with ``record_runs``); returns its size and digest."""
        with writing(self.run_path(key)) as tmp:
            write_netcdf(ds.assign_attrs(run_key=key), tmp)
            data = tmp.read_bytes()
        return IndexEntry(len(data), file_digest(data))

    def record_runs(self, entries: dict[str, IndexEntry]) -> None:
        """Index run files already in place (one append for all, lines matching ``INDEX_LINE``) and
        drop their failure records."""
        lines = "".join(json.dumps({"key": k, "size": e.size, "digest": e.digest}) + "\n" for k, e in entries.items())
        try:
            with open(self.index_path, "a") as f:
                f.write(lines)
        except OSError as exc:
            raise write_error(self.index_path, exc) from None
        self._read_index()  # reads these lines too
        for key in entries:
            (self.failed / f"{key}.json").unlink(missing_ok=True)

    def link_from(self, other: RunStore, key: str) -> bool:
        """Bring the run ``key`` of store ``other`` into this one if its file verifies there (a hard
        link, else a copy, renamed into place) and index it; True if it did."""
        data = other.verified_bytes(key)
        if data is None:
            return False
        with writing(self.run_path(key)) as tmp:
            try:
                os.link(other.run_path(key), tmp)
            except OSError:  # another filesystem, or links not allowed
                tmp.write_bytes(data)
        self.record_runs({key: IndexEntry(len(data), file_digest(data))})
        return True

    def index(self) -> dict[str, IndexEntry]:
        """{key: IndexEntry} of the indexed run files (the last line of a key wins; a line torn by
        an interruption is ignored, its run recomputed). Lines appended since the last call (by
        another RunStore of the same folder, another process) are read on each call."""
        return {key: _entry(spelled) for key, spelled in self._read_index().items()}

    def entry(self, key: str) -> IndexEntry | None:
        """The index entry of run ``key``, or None if it is not indexed."""
        spelled = self._read_index().get(key)
        return None if spelled is None else _entry(spelled)

    def _read_index(self) -> dict[str, str]:
        """The index as ``INDEX_LINE`` matched it ({key: size and digest}), with the lines appended
        since the last call."""
        try:
            size = self.index_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if self._index is None or size < self._index_read:  # first call, or the index was replaced
            self._index, self._index_read = {}, 0
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
                    self._index.update(INDEX_LINE.findall(complete.decode("ascii", "replace")))
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

    def stored_keys(self) -> set[str]:
        """Keys with a run file (not verified); temporary files are ignored."""
        return set(run_keys(os.listdir(self.runs))) if self.runs.is_dir() else set()

    def verified_bytes(self, key: str) -> bytes | None:
        """The bytes of the run file of ``key`` if they match its index line, else None; a file that
        does not match (damaged, foreign, unindexed) is removed. A folder at the run's path is a
        StoreError: it is not the store's to remove."""
        path = self.run_path(key)
        entry = self.entry(key)
        if path.is_dir():
            raise StoreError(str(path), "is a folder where a run file belongs: remove it")
        try:
            data = path.read_bytes() if entry is not None and path.stat().st_size == entry.size else None
        except FileNotFoundError:
            return None
        if data is None or file_digest(data) != entry.digest:
            path.unlink(missing_ok=True)
            return None
        return data

    def open_verified(self, key: str) -> netCDF4.Dataset | None:
        """The run file of ``key`` opened for reading (masking off), or None if it is missing,
        damaged (its bytes do not match the index), of another run or of an older result format;
        such a file is removed.

        The caller holds ``NETCDF_LOCK`` while it uses the file."""
        data = self.verified_bytes(key)
        return None if data is None else self._open_run(key, data)

    def _open_run(self, key: str, data: bytes) -> netCDF4.Dataset | None:
        """``data`` opened (masking off) if it is the run ``key`` in the current result format; else
        None and the run file is removed. The caller holds ``NETCDF_LOCK``."""
        path = self.run_path(key)
        try:
            nc = netCDF4.Dataset(path.name, memory=data)
        except (OSError, RuntimeError):
            path.unlink(missing_ok=True)
            return None
        try:
            ok = nc.getncattr("run_key") == key and int(nc.getncattr("result_format")) == RESULT_FORMAT_VERSION
        except (AttributeError, ValueError):
            ok = False
        if not ok:
            nc.close()
            path.unlink(missing_ok=True)
            return None
        nc.set_auto_mask(False)
        return nc

    def verify(self, key: str) -> bool:
        """True if the run file matches its index line, opens, and belongs to ``key`` in the current
        result format."""
        with NETCDF_LOCK:
            nc = self.open_verified(key)
            if nc is not None:
                nc.close()
        return nc is not None

    def indexed_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among ``keys`` whose run file is indexed and present: what resume and status count as
        stored, from the index and one listing of the runs folder, no file opened or examined (the
        bytes are verified where they are read, and a damaged file is then removed). A folder at the
        path of an unindexed run is a StoreError."""
        index, names = self._read_index(), set(os.listdir(self.runs)) if self.runs.is_dir() else set()
        out = set()
        for key in keys:
            if f"{key}.nc" not in names:
                continue
            if key in index:
                out.add(key)
            elif self.run_path(key).is_dir():
                raise StoreError(str(self.run_path(key)), "is a folder where a run file belongs: remove it")
        return out

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Keys among ``keys`` whose file verifies; a corrupt or outdated file is removed."""
        stored = self.stored_keys()
        return {key for key in keys if key in stored and self.verify(key)}

    def status(self) -> Status:
        plan = set(self.read_plan())
        stored = self.indexed_keys(plan)
        failed = (set(self.failures()) & plan) - stored
        return Status(len(plan), len(stored), len(failed))
