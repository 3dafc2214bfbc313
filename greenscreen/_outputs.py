"""Writing outputs safely: single files atomically, and a run's whole output set at once.

An output folder holds one run's outputs, described by its ``run.json`` (whose ``outputs``
lists the files and folders that run wrote). A run never writes into the folder directly:

1. it locks the folder (an exclusive ``flock`` on the folder itself, released by the kernel
   when the process ends, so a killed run leaves no stale lock) — a second run into the same
   folder stops with "in use by another greenscreen run (pid N)";
2. it writes the whole set into a hidden sibling, ``.NAME.greenscreen-new-PID``, ``run.json``
   last;
3. it carries over what the user put in the folder (anything greenscreen does not write:
   hard links, or copies where the file system has none), then swaps the two folders in one
   atomic rename (``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames) and deletes
   the old set.

So files of an old run never sit beside a new ``run.json`` (a rerun without ``--packs`` or
``--sensitivities`` leaves no old packs or sensitivities), and an interrupted run — Ctrl-C,
SIGTERM, or SIGKILL, which runs no clean-up — leaves the previous set complete (or no set,
for a first run). What a killed run leaves behind is a hidden ``.NAME.greenscreen-*`` sibling,
removed by the next run into that folder.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenscreen.errors import GreenscreenError

if TYPE_CHECKING:
    import polars as pl

#: above this many projects the spreadsheets (portfolio.xlsx, requests.xlsx) are not written:
#: Excel is the wrong tool there, and the Parquet results hold any size
PORTFOLIO_MAX_ROWS = 100_000
#: above this many projects results.csv is not written by default: a CSV is for opening in a
#: spreadsheet, and a million projects' CSV is 1.3 GB that no spreadsheet opens (Excel stops
#: at 1,048,576 rows) and takes longer to write than the whole screening; results.parquet holds
#: any size and every data tool reads it
CSV_MAX_ROWS = 100_000


def writes_csv(projects: int, limit: int) -> bool:
    """Whether results.csv is written for ``projects`` accepted projects under
    ``--csv-max-rows limit`` (0: never; an empty run gets its header-only CSV)."""
    return 0 < limit and projects <= limit


try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs into one folder are not serialised
    fcntl = None  # type: ignore[assignment]

#: names greenscreen writes in an output folder (this version and earlier ones)
OWNED = frozenset(
    {
        "results.parquet",
        "results.csv",
        "decisions.parquet",
        "subsidies.parquet",
        "subsidy_schedule.parquet",
        "sensitivities.parquet",
        "rejects.csv",
        "portfolio.xlsx",
        "portfolio.html",
        "run.json",
        "packs",
        ".greenscreen-parts",
    }
)


@dataclass(frozen=True)
class OutputFile:
    """One file (or folder) of an output set.

    Parameters
    ----------
    key : str
        Its key in the paths :meth:`ScreenResult.write <greenscreen.run.ScreenResult.write>`,
        :func:`~greenscreen.batch.screen_batched` and the register's export return; for a data
        table, also its table name in the run register.
    name : str
        Its name in the output folder.
    format : {"parquet", "csv", "xlsx", "html", "json", "folder"}
    layer : {"data", "report", "record"}
        Who writes it: the data files (:meth:`ScreenResult.write_data
        <greenscreen.run.ScreenResult.write_data>`, batch and Spark runs assemble the same
        from parts), the report layer (:func:`greenscreen.report.write_run_reports`), or the
        output set itself (``run.json``, last).
    description : str
        What it holds (the README's outputs table has the columns).
    """

    key: str
    name: str
    format: Literal["parquet", "csv", "xlsx", "html", "json", "folder"]
    layer: Literal["data", "report", "record"]
    description: str


#: Every output of a screening run, by key, in the order they are written.
OUTPUT_FILES: dict[str, OutputFile] = {
    f.key: f
    for f in (
        OutputFile("results", "results.parquet", "parquet", "data", "one row per project"),
        OutputFile(
            "results_csv",
            "results.csv",
            "csv",
            "data",
            "results as CSV: UTF-8 with a BOM, lists joined with '; ' (csv_compatible)",
        ),
        OutputFile(
            "decisions",
            "decisions.parquet",
            "parquet",
            "data",
            "one row per project × rulebook × criterion evaluated",
        ),
        OutputFile(
            "subsidies",
            "subsidies.parquet",
            "parquet",
            "data",
            "one row per project × programme award in scope",
        ),
        OutputFile(
            "schedule",
            "subsidy_schedule.parquet",
            "parquet",
            "data",
            "payments of eligible subsidies by calendar year",
        ),
        OutputFile(
            "sensitivities",
            "sensitivities.parquet",
            "parquet",
            "data",
            "the tornado table, when sensitivities were computed",
        ),
        OutputFile("rejects", "rejects.csv", "csv", "data", "one row per problem in the input"),
        OutputFile("portfolio", "portfolio.xlsx", "xlsx", "report", "the batch workbook"),
        OutputFile("portfolio_html", "portfolio.html", "html", "report", "the batch report"),
        OutputFile("requests", "requests.xlsx", "xlsx", "report", "the evidence request"),
        OutputFile("packs", "packs", "folder", "report", "every project's pack"),
        OutputFile("run", "run.json", "json", "record", "the run record and its outputs"),
    )
}
#: The keys of the data files, in the order they are written.
DATA_FILES: tuple[str, ...] = tuple(k for k, f in OUTPUT_FILES.items() if f.layer == "data")


def csv_compatible(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as CSV (or a spreadsheet cell) can hold it: list columns joined with ``'; '``.

    Parameters
    ----------
    frame : polars.DataFrame
        A results table (or a part of one).

    Returns
    -------
    polars.DataFrame
        The same frame when it has no list column.
    """
    import polars as pl  # here: the CLI imports this module and starts without polars

    nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    return frame.with_columns(pl.col(nested).list.join("; ")) if nested else frame


#: rows per row group of the Parquet data files written from memory (about polars' default:
#: big enough for fast scans, and several groups per million rows for parallel readers)
ROW_GROUP_ROWS = 131_072
#: the data files' Zstandard level: 1 instead of polars' default 3 took 0.4-0.8 CPU s less per
#: big table at 1M projects (decisions 5.82 -> 5.41, results 6.42 -> 5.63, medians of 3) for
#: files 3-5 % larger (decisions 28.7 -> 30.1 MB, results 62.5 -> 64.4 MB); every Parquet
#: reader reads any level (benchmarks/README.md, issue 23)
ZSTD_LEVEL = 1


def write_parquet(frame: pl.DataFrame, path: str | Path) -> None:
    """Write a data table as Parquet: row groups of :data:`ROW_GROUP_ROWS` rows, Zstandard at
    :data:`ZSTD_LEVEL`, no statistics.

    Each row group's list columns are gathered into arrays of their own first: polars' writer
    encodes a list column held as one array two to four times slower than the same column
    held as one array per row group (measured at 1M projects: results.parquet 7.2-7.4 → 4.9
    CPU s, its 13 list columns being the difference; benchmarks/README.md, issue 23).

    Parameters
    ----------
    frame : polars.DataFrame
    path : str or pathlib.Path
    """
    import polars as pl

    nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
    if nested and frame.height > ROW_GROUP_ROWS:
        frame = pl.concat(
            [
                part.with_columns(part.select(pl.col(nested).gather(pl.int_range(pl.len()))))
                for part in frame.iter_slices(ROW_GROUP_ROWS)
            ],
            rechunk=False,
        )
    frame.write_parquet(
        path, statistics=False, row_group_size=ROW_GROUP_ROWS, compression_level=ZSTD_LEVEL
    )


def sink_parquet(frame: pl.LazyFrame, path: str | Path) -> None:
    """Stream a lazy data table (the decisions) to Parquet as :func:`write_parquet` writes."""
    frame.sink_parquet(path, statistics=False, compression_level=ZSTD_LEVEL)


#: file-manager litter, dropped with the old set rather than carried over
_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write a file so that it is either complete or absent.

    ``write(tmp)`` writes into a hidden temporary file next to ``path``, which is then renamed
    into place: an interrupted write never leaves a half-written file, nor the temporary file.

    Parameters
    ----------
    path : pathlib.Path
        The file to write.
    write : callable
        Called with the temporary file's path (a ``str``); writes the content there.

    Raises
    ------
    GreenscreenError
        The folder cannot be written, or the disk is full (in greenscreen's words, whatever
        the writer called it).
    """
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as exc:
        raise GreenscreenError(f"cannot write {path.name} in {path.parent}: {exc}") from exc
    try:
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException as exc:
        _retrying(lambda: Path(tmp).unlink(missing_ok=True))
        if isinstance(exc, GreenscreenError) or not isinstance(exc, Exception):
            raise
        # writers report a full disk in their own words (polars: "Invalid thrift")
        problem = exc if isinstance(exc, OSError) else _cannot_write(path.parent)
        if problem is None:
            raise  # not the disk: a bug
        raise GreenscreenError(f"cannot write {path.name}: {problem}") from exc


def _cannot_write(folder: Path) -> OSError | None:
    """The error writing 1 MiB into ``folder`` gives (disk full, file size limit), if any."""
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * (1 << 20))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return exc
    return None


def _retrying(clean: Callable[[], object]) -> None:
    """Run an idempotent clean-up to the end: a second Ctrl-C must not skip it."""
    while True:
        try:
            clean()
            return
        except KeyboardInterrupt:
            continue


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (and SIGTERM, which the CLI turns into one) waits until the block ends, so a
    swap or a clean-up is never left half done; it is raised after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):  # a Python handler raising an exception: hold it back
            previous[signum] = handler
            signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            raise KeyboardInterrupt


def _rmtree(path: Path) -> None:
    _retrying(lambda: shutil.rmtree(path, ignore_errors=True))


# --------------------------------------------------------------------------------------------
# Locks
@contextmanager
def folder_lock(folder: Path, *, in_use: str = "") -> Iterator[None]:
    """Hold an exclusive lock on a folder for the duration of the ``with`` block.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to lock (created when missing).
    in_use : str
        Appended to the error when another process holds the lock (e.g. its pid).

    Raises
    ------
    GreenscreenError
        At once, when another process holds the lock. Without ``flock`` (Windows, some
        network file systems) nothing is locked.
    """
    fd = _lock(folder, in_use)
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


def _lock(folder: Path, in_use: str | Callable[[], str]) -> int:
    if fcntl is None:
        return -1
    for _ in range(100):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise GreenscreenError(f"cannot open the output folder {folder}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return -1  # a file system without locks: proceed unlocked
            who = in_use() if callable(in_use) else in_use
            raise GreenscreenError(
                f"{folder} is in use by another greenscreen run{who}: wait for it to finish "
                "or choose another --out"
            ) from None
        # the run that held the lock may have swapped a new folder in: lock that one
        with suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(folder)):
                return fd
        os.close(fd)
    raise GreenscreenError(f"cannot lock {folder}: it keeps being replaced")


# --------------------------------------------------------------------------------------------
# Output sets
class OutputSet:
    """A run's output set being written: write into :attr:`path`, then :meth:`commit`."""

    def __init__(self, final: Path, path: Path, keep: list[str]) -> None:
        self.final = final  #: the output folder (resolved)
        self.path = path  #: the hidden folder the set is written into
        self._keep = keep  # the user's entries in the output folder, carried over
        self.committed = False

    def commit(self, record: dict[str, Any]) -> None:
        """Write ``run.json`` and swap the set in.

        Nothing of the previous set is left; the user's own files in the folder are kept.

        Parameters
        ----------
        record : dict
            The run record (:meth:`ScreenResult.metadata <greenscreen.run.ScreenResult.metadata>`);
            ``outputs`` (the entries this run wrote) is added.
        """
        names = sorted(
            entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "")
            for entry in os.scandir(self.path)
        )
        record = {**record, "outputs": sorted({*names, "run.json"})}
        text = json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n"
        atomic_write(self.path / "run.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
        for name in self._keep:
            if not os.path.lexists(self.path / name):
                try:
                    _carry(self.final / name, self.path / name)
                except OSError as exc:
                    raise GreenscreenError(
                        f"cannot keep {name} (not written by greenscreen) in {self.final}: {exc}"
                    ) from exc
        with _interrupts_deferred():
            try:
                _exchange(self.path, self.final)
            except OSError as exc:
                raise GreenscreenError(
                    f"cannot replace the outputs in {self.final}: {exc}"
                ) from exc
            self.committed = True
            _rmtree(self.path)  # now the previous set


@contextmanager
def output_set(out_dir: str | Path) -> Iterator[OutputSet]:
    """Lock an output folder and give a hidden sibling folder to write a run's outputs into.

    :meth:`OutputSet.commit` swaps it in. Leaving the block without a commit (an error, an
    interrupt) discards it: the folder keeps its previous set.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The output folder.

    Yields
    ------
    OutputSet
        Write into its ``path``, then call its ``commit``.

    Raises
    ------
    GreenscreenError
        The folder is in use by another run, cannot be written, or holds files greenscreen did
        not write and no greenscreen ``run.json``.
    """
    final = _target(Path(out_dir))
    prefix = _sibling_prefix(final)
    _restore(final, prefix)
    created = not final.exists()
    fd = _lock(final, lambda: _holder(final, prefix))
    staging = final.parent / f"{prefix}new-{os.getpid()}"
    outputs: OutputSet | None = None
    try:
        for leftover in _siblings(final, prefix):  # of killed runs
            _rmtree(leftover)
        keep = _foreign(final)
        try:
            staging.mkdir()
            os.chmod(staging, stat.S_IMODE(final.stat().st_mode))  # the folder's own mode
        except OSError as exc:
            raise GreenscreenError(f"cannot write next to {final}: {exc}") from exc
        outputs = OutputSet(final, staging, keep)
        try:
            yield outputs
        except GreenscreenError:
            raise
        except Exception as exc:  # a full disk, in a writer's own words?
            problem = _cannot_write(staging)
            if problem is None:
                raise
            raise GreenscreenError(f"cannot write the outputs to {final}: {problem}") from exc
    finally:
        with _interrupts_deferred():
            if outputs is None or not outputs.committed:
                _rmtree(staging)
                if created:
                    with suppress(OSError):
                        final.rmdir()  # a first run that failed leaves no empty folder
            if fd >= 0:
                os.close(fd)


def _target(out: Path) -> Path:
    """The output folder, resolved, refusing what cannot or must not be replaced."""
    try:
        final = out.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise GreenscreenError(f"cannot use {out} as the output folder: {exc}") from exc
    if final.exists() and not final.is_dir():
        raise GreenscreenError(f"the output folder {out} is a file")
    if (
        final == Path(final.anchor)
        or final in _homes()
        or any(p.is_relative_to(final) for p in _cwd())
    ):
        raise GreenscreenError(
            f"cannot use {out} as the output folder: greenscreen replaces the folder on every "
            "run; give a folder of its own (not the current folder, a parent of it or home)"
        )
    if final.exists() and not os.access(final, os.W_OK | os.X_OK):
        raise GreenscreenError(f"the output folder {out} is read-only")
    parent = final.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise GreenscreenError(f"cannot create the output folder {out}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GreenscreenError(
            f"cannot write to {parent}: greenscreen writes the outputs into a folder next to "
            f"{final.name} and swaps it in"
        )
    return final


def _homes() -> list[Path]:
    with suppress(RuntimeError, OSError):
        return [Path.home().resolve()]
    return []


def _cwd() -> list[Path]:
    with suppress(OSError):
        return [Path.cwd().resolve()]
    return []


def _sibling_prefix(final: Path) -> str:
    """``.NAME.greenscreen-``: hidden, next to the folder, short enough for any name."""
    name = final.name
    if len(name.encode("utf-8")) > 150:
        name = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return f".{name}.greenscreen-"


def _siblings(final: Path, prefix: str) -> list[Path]:
    """The hidden folders of runs into ``final`` (names are not glob patterns: no glob)."""
    try:
        names = os.listdir(final.parent)
    except OSError:
        return []
    return [final.parent / n for n in sorted(names) if n.startswith(prefix)]


def _holder(final: Path, prefix: str) -> str:
    """' (pid N)' of the run writing ``final``, from its hidden folder's name."""
    pids = [p.name.rsplit("-", 1)[-1] for p in _siblings(final, f"{prefix}new-")]
    return f" (pid {', '.join(pids)})" if pids else ""


def _restore(final: Path, prefix: str) -> None:
    """Where a run was killed between the two renames of a swap (systems without an atomic
    exchange), put the previous set back."""
    if os.path.lexists(final):
        return
    for aside in _siblings(final, f"{prefix}old-"):
        with suppress(OSError):
            os.rename(aside, final)
            return


def _foreign(final: Path) -> list[str]:
    """Entries of the output folder greenscreen did not write: carried over to the new set.
    A non-empty folder that is not a greenscreen output folder is refused, not taken over."""
    try:
        names = set(os.listdir(final))
    except OSError as exc:
        raise GreenscreenError(f"cannot read the output folder {final}: {exc}") from exc
    record = _read_record(final / "run.json")
    listed = {str(n).rstrip("/") for n in record.get("outputs", []) if isinstance(n, str)}
    foreign = sorted(n for n in names if not _owned(n, listed))
    if foreign and record.get("tool") != "greenscreen":
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise GreenscreenError(
            f"the output folder {final} holds files greenscreen did not write ({shown}) and no "
            "greenscreen run.json; greenscreen replaces its output folder on every run, so "
            "give a new or empty folder"
        )
    return foreign


def _owned(name: str, listed: set[str]) -> bool:
    if name in OWNED or name in listed or name in _LITTER:
        return True
    # a temporary file an earlier version's atomic write left behind
    return ".tmp" in name and any(name.startswith(f".{o}.") for o in OWNED)


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _carry(source: Path, target: Path) -> None:
    """``source`` at ``target`` without copying data where a hard link will do. Symlinks are
    carried as links, never followed."""
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(source, target)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        if stat.S_ISREG(os.lstat(source).st_mode):  # never read a FIFO or a device
            shutil.copy2(source, target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    return function


_RENAMEAT2 = _renameat2()


def _exchange(new: Path, final: Path) -> None:
    """Swap two folders: afterwards ``final`` holds the new set and ``new`` the old one."""
    if _RENAMEAT2 is not None:
        result = _RENAMEAT2(
            _AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(final), _RENAME_EXCHANGE
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(final))
    # not atomic: a kill between the first two renames leaves the previous set aside, and
    # the next run puts it back (_restore)
    aside = new.with_name(new.name.replace("greenscreen-new-", "greenscreen-old-"))
    os.rename(final, aside)
    os.rename(new, final)
    os.rename(aside, new)
