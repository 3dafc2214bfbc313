"""The run register: every screening run recorded in an embedded DuckDB file, any two compared.

Model-risk and audit functions ask which decision was made, with which rules, data and tool
version, and what changed since the last run and why. ``run.json`` answers the first question
for one folder; the register connects runs. It is one DuckDB file (no server), by default
``$GREENSCREEN_HOME/runs.duckdb`` (``~/.greenscreen/runs.duckdb``), holding per run: who, when,
where, the tool version, the input (name, SHA-256, and its bytes up to
:data:`STORE_INPUT_MAX`), every rulebook, programme and factor file with its SHA-256 (their
bytes, deduplicated, so a run can be explained and re-exported after the files changed), all
options, counts, and the results, decisions (with the rulebook version on every row), rejects,
subsidies and sensitivities tables. Those tables are Parquet files in ``runs.duckdb.tables/``
next to the database (the run's output files, copied byte for byte), queried by DuckDB in
place: DuckDB's own storage re-encoded them at a cost of 40–60 % of the run's time, against
the 20 % the register may add. Wall-clock times and users live here, never in the output
files, so those stay byte-identical across reruns.

Safety:

- **One writer at a time.** DuckDB lets one process write a file. Every access takes an
  advisory lock on ``runs.duckdb.lock`` (shared to read, exclusive to write) and waits for it,
  so two ``greenscreen screen`` processes finishing together both register, one after the
  other, and a reader never meets a writer's lock error.
- **All or nothing.** A run is registered in one transaction, its table files written first:
  an error or Ctrl-C part-way leaves no trace of it; SIGKILL leaves a table folder of no run
  (DuckDB discards the uncommitted transaction on reopening), removed by the next write.
- **Schema versions.** ``meta.schema_version`` says which layout a file has; an older one is
  migrated (:data:`_MIGRATIONS`) in a transaction, a newer or unknown one is refused with a
  message, never written to.

Scale: no row-by-row work anywhere: tables are files copied (or frames written) once; the
diff is SQL over the two runs' Parquet files.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from greenscreen import __version__
from greenscreen._outputs import (
    CSV_MAX_ROWS,
    DATA_FILES,
    OUTPUT_FILES,
    atomic_write,
    csv_compatible,
    output_set,
    sink_parquet,
    write_parquet,
)
from greenscreen.emissions import FACTOR_FILES
from greenscreen.engine import DECISION_SCHEMA, decisions_file, decisions_frame
from greenscreen.errors import GreenscreenError
from greenscreen.run import ScreenResult

if TYPE_CHECKING:
    import duckdb

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; DuckDB's own lock refuses a second writer
    fcntl = None  # type: ignore[assignment]

#: layout of the register file; bump it with an entry in _MIGRATIONS
SCHEMA_VERSION = 1
#: statements that take a register from version N to N + 1 (none yet: version 1 is the first)
_MIGRATIONS: dict[int, list[str]] = {}
#: inputs up to this size are stored in the register (rescreen needs no file); larger ones are
#: referenced by path and SHA-256, and a changed file is refused
STORE_INPUT_MAX = 64 * 1024 * 1024
#: how long a run waits for another process's registration to finish
LOCK_TIMEOUT_S = 600.0

#: per-run tables (name in the register → output file)
TABLES = {key: OUTPUT_FILES[key].name for key in DATA_FILES if key != "results_csv"}
#: per rulebook R the diff compares R__status, R__item and R__applies (R governs the loan)
_PER_RULEBOOK = ("status", "item", "applies")
#: and these
NUMERIC_OUTPUTS = ("avoided_tco2e_per_year", "avoided_tco2e_lifetime", "subsidy_total")
CREDIT_OUTPUTS = ("npv", "project_irr", "equity_irr", "min_dscr", "lcoe")
#: options that change how outputs look, not what they say: never a cause of a change
_PRESENTATION = frozenset(
    {
        "lang",
        "portfolio_max_rows",
        "csv_max_rows",
        "packs",
        "workers",
        "batch_rows",
        "strict",
        "quiet",
        "rulebooks",
    }
)

_DDL = [
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, started_utc TIMESTAMP, finished_utc TIMESTAMP,
        registered_utc TIMESTAMP, analyst VARCHAR, host VARCHAR, version VARCHAR,
        input_name VARCHAR, input_path VARCHAR, input_sha256 VARCHAR, input_stored BOOLEAN,
        out_dir VARCHAR, parent_run VARCHAR, projects BIGINT, rejected BIGINT,
        decisions BIGINT, counts VARCHAR, options VARCHAR, record VARCHAR,
        input_columns VARCHAR)""",
    """CREATE TABLE run_sources (
        run_id VARCHAR, kind VARCHAR, id VARCHAR, version VARCHAR, file VARCHAR,
        sha256 VARCHAR, depends_on VARCHAR[])""",
    """CREATE TABLE run_tables (
        run_id VARCHAR, name VARCHAR, file VARCHAR, rows BIGINT, schema BLOB)""",
    "CREATE TABLE files (sha256 VARCHAR PRIMARY KEY, name VARCHAR, size BIGINT, content BLOB)",
]


def default_path() -> Path:
    """``$GREENSCREEN_HOME/runs.duckdb``, else ``~/.greenscreen/runs.duckdb``.

    Returns
    -------
    pathlib.Path
    """
    home = os.environ.get("GREENSCREEN_HOME")
    return Path(home or Path("~/.greenscreen").expanduser()) / "runs.duckdb"


def open(path: str | Path | None = None) -> Register:  # noqa: A001 - gs.runs.open(path)
    """The run register at a path; the file is created on first write.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        The register file; default :func:`default_path`.

    Returns
    -------
    Register
    """
    return Register(Path(path) if path is not None else default_path())


@dataclass(frozen=True)
class Diff:
    """Two runs compared: ``changes`` one row per project whose status, item, avoided tCO2e,
    subsidy or key credit metric changed, or that was added or removed, with its causes;
    ``matrix`` per rulebook status in A × status in B (projects, loan amounts); ``causes``
    the run-level differences (rulebooks, programmes, factors, options, tool version)."""

    run_a: str
    run_b: str
    changes: pl.DataFrame
    matrix: pl.DataFrame
    causes: pl.DataFrame

    def summary(self) -> str:
        """What a person reads first: counts by kind of change and by cause.

        Returns
        -------
        str
        """
        kinds = dict(self.changes.group_by("change").len().iter_rows())
        lines = [
            f"{self.run_a} → {self.run_b}: {kinds.get('changed', 0):,} projects changed, "
            f"{kinds.get('added', 0):,} added, {kinds.get('removed', 0):,} removed"
        ]
        if self.causes.height:
            lines.append("run-level differences:")
            lines += [f"  {row['cause']}" for row in self.causes.iter_rows(named=True)]
        by_cause = (
            self.changes.select(pl.col("causes").explode().alias("cause"))
            .drop_nulls()
            .group_by("cause")
            .len()
            .sort(["len", "cause"], descending=[True, False])
        )
        if by_cause.height:
            lines.append("projects by cause:")
            lines += [f"  {n:>9,}  {cause}" for cause, n in by_cause.head(20).iter_rows()]
        moved = self.matrix.filter(pl.col("status_a") != pl.col("status_b"))
        if moved.height:
            lines.append("status migrations (rulebook: A → B, projects, loan amount):")
            for row in moved.iter_rows(named=True):
                lines.append(
                    f"  {row['rulebook']}: {row['status_a']} → {row['status_b']}  "
                    f"{row['projects']:,}  {row['loan_amount'] or 0:,.0f}"
                )
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the diff as an output set (:mod:`greenscreen._outputs`).

        ``diff.parquet`` (the changes), ``diff.xlsx`` (matrix, changes, causes) and ``diff.html``,
        atomically, with a ``run.json`` naming the two runs.

        Parameters
        ----------
        out_dir : str or pathlib.Path
            The output folder (replaced as a whole, the user's own files kept).

        Returns
        -------
        dict of str to pathlib.Path
            ``parquet``, ``xlsx`` and ``html`` → the files.
        """
        out = Path(out_dir)
        with output_set(out) as staged:
            base = staged.path
            changes = self.changes
            atomic_write(base / "diff.parquet", lambda p: changes.write_parquet(p))
            atomic_write(base / "diff.xlsx", lambda p: _diff_xlsx(self, p))
            atomic_write(
                base / "diff.html", lambda p: Path(p).write_text(_diff_html(self), "utf-8")
            )
            staged.commit({"tool": "greenscreen", "kind": "diff", "runs": [self.run_a, self.run_b]})
        return {name: out / f"diff.{name}" for name in ("parquet", "xlsx", "html")}


class Register:
    """A run register file. Every method opens the file, does its work and closes it, so
    many processes can use one register (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Register({str(self.path)!r})"

    @property
    def tables_dir(self) -> Path:
        """``runs.duckdb.tables/``: each run's tables as Parquet files, ``RUN_ID/NAME.parquet``
        (the output files themselves, copied: DuckDB's own storage re-encoded them at 40 % of
        a run's time; DuckDB queries the files directly). Keep it next to the register file."""
        return self.path.with_name(self.path.name + ".tables")

    # ----------------------------------------------------------------------------------------
    # reading
    def list(
        self,
        *,
        input: str | None = None,  # noqa: A002 - the CLI's --input
        since: dt.date | None = None,
        until: dt.date | None = None,
        analyst: str | None = None,
    ) -> pl.DataFrame:
        """The registered runs, newest first.

        Parameters
        ----------
        input : str, optional
            Runs whose input file name contains it, or whose input SHA-256 starts with it.
        since, until : datetime.date, optional
            Runs finished on or after / on or before the date (inclusive, UTC).
        analyst : str, optional
            Runs registered by this analyst.

        Returns
        -------
        polars.DataFrame
            One row per run: run_id, started_utc, finished_utc, analyst, host, version,
            input_name, input_sha256, projects, rejected, decisions, parent_run, out_dir. Empty
            when the register does not exist yet.
        """
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if input:
            where.append("(input_name ILIKE ? OR input_sha256 LIKE ?)")
            params += [f"%{input}%", f"{input.lower()}%"]
        if since:
            where.append("CAST(finished_utc AS DATE) >= ?")
            params.append(since)
        if until:
            where.append("CAST(finished_utc AS DATE) <= ?")
            params.append(until)
        if analyst:
            where.append("analyst = ?")
            params.append(analyst)
        with self._connect() as con:
            if con is None:
                return _empty_list()
            return _frame(
                con,
                f"""SELECT run_id, started_utc, finished_utc, analyst, host, version,
                    input_name, input_sha256, projects, rejected, decisions, parent_run, out_dir
                FROM runs WHERE {" AND ".join(where)}
                ORDER BY finished_utc DESC, run_id DESC""",
                params,
            )

    def resolve(self, ref: str) -> str:
        """The run id a reference names.

        Parameters
        ----------
        ref : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.

        Returns
        -------
        str

        Raises
        ------
        GreenscreenError
            No run, or several, match.
        """
        with self._connect() as con:
            return self._resolve(con, ref)

    def get(self, run: str) -> pl.DataFrame:
        """A run's record.

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.

        Returns
        -------
        polars.DataFrame
            One row: ids, times, who, input, counts, options and the ``run.json`` record as JSON
            text.
        """
        with self._connect() as con:
            run_id = self._resolve(con, run)
            assert con is not None
            return _frame(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])

    def sources(self, run: str) -> pl.DataFrame:
        """A run's rulebooks, programmes and factor files.

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.

        Returns
        -------
        polars.DataFrame
            kind, id, version, file, sha256, depends_on.
        """
        with self._connect() as con:
            run_id = self._resolve(con, run)
            assert con is not None
            return _frame(
                con,
                "SELECT kind, id, version, file, sha256, depends_on FROM run_sources "
                "WHERE run_id = ? ORDER BY kind DESC, id",
                [run_id],
            )

    def table(self, run: str, name: str) -> pl.DataFrame:
        """One of a run's tables, with the types it was registered with.

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.
        name : str
            A key of :data:`TABLES`: ``results``, ``decisions`` (with ``rulebook_version``),
            ``subsidies``, ``schedule``, ``sensitivities`` or ``rejects``.

        Returns
        -------
        polars.DataFrame

        Raises
        ------
        GreenscreenError
            The run has no such table (e.g. no sensitivities were computed).
        """
        with self._connect() as con:
            run_id = self._resolve(con, run)
            assert con is not None
            frame = _read_table(con, self.tables_dir, run_id, name)
        if frame is None:
            raise GreenscreenError(f"run {run_id} has no {name} table")
        # labels as text, whichever types the run stored them in
        return decisions_frame(frame) if name == "decisions" else frame

    def results(self, run: str) -> pl.DataFrame:
        """A run's results table (:meth:`table` ``results``).

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.

        Returns
        -------
        polars.DataFrame
        """
        return self.table(run, "results")

    def decisions(self, run: str) -> pl.DataFrame:
        """A run's decisions table (:meth:`table` ``decisions``).

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.

        Returns
        -------
        polars.DataFrame
        """
        return self.table(run, "decisions")

    def input_file(self, run: str, target_dir: Path) -> Path:
        """A run's input file.

        Parameters
        ----------
        run : str
            A run id, a unique prefix of one, ``latest`` or ``latest~N``.
        target_dir : pathlib.Path
            Where to write the input when the register stored it.

        Returns
        -------
        pathlib.Path
            The file written into ``target_dir``, or the original path when the input was too
            large to store (:data:`STORE_INPUT_MAX`).

        Raises
        ------
        GreenscreenError
            The input was not stored and its file is gone or has changed (SHA-256).
        """
        info = self.get(run).row(0, named=True)
        with self._connect() as con:
            assert con is not None
            row = _one(con, "SELECT content FROM files WHERE sha256 = ?", [info["input_sha256"]])
        if info["input_stored"] and row is not None:
            target = target_dir / (info["input_name"] or "input")
            target.write_bytes(row[0])
            return target
        path = Path(info["input_path"] or "")
        if not info["input_path"] or not path.is_file():
            raise GreenscreenError(
                f"run {info['run_id']}'s input {info['input_path'] or info['input_name']} is "
                "not in the register and no longer exists"
            )
        if _sha256(path) != info["input_sha256"]:
            raise GreenscreenError(
                f"{path} has changed since run {info['run_id']} (SHA-256 differs): rescreen "
                "re-runs the same input; screen the new file instead"
            )
        return path

    # ----------------------------------------------------------------------------------------
    # writing
    def register(
        self,
        result: ScreenResult,
        *,
        out_dir: str | Path | None = None,
        input_path: str | Path | None = None,
        analyst: str | None = None,
        options: dict[str, Any] | None = None,
        started: dt.datetime | None = None,
        parent: str | None = None,
    ) -> str:
        """Record a run and return its run id (see :func:`register_run`).

        Parameters
        ----------
        result : ScreenResult
            The run.
        out_dir : str or pathlib.Path, optional
            The folder :meth:`ScreenResult.write` or batch mode just wrote: the tables are read
            from its Parquet files and ``run.json`` (fast; the decisions need not be computed
            again). Default: from the result's frames.
        input_path : str or pathlib.Path, optional
            The input file, stored when small enough.
        analyst : str, optional
            Who ran it; default the login name.
        options : dict, optional
            The caller's options (the CLI's), for diffs and ``rescreen``.
        started : datetime.datetime, optional
            When the run started [UTC]; default now.
        parent : str, optional
            The run this one re-screens.

        Returns
        -------
        str
            The new run id (``YYYYMMDD-HHMMSS-xxxxxx``).
        """
        return register_run(
            result,
            self,
            out_dir=out_dir,
            input_path=input_path,
            analyst=analyst,
            options=options,
            started=started,
            parent=parent,
        )

    def diff(self, a: str, b: str) -> Diff:
        """Compare two runs (see :func:`diff`).

        Parameters
        ----------
        a, b : str
            Run references (ids, prefixes, ``latest``, ``latest~N``).

        Returns
        -------
        Diff
        """
        return diff(self, a, b)

    def export(self, run: str, out_dir: str | Path) -> dict[str, Path]:
        """Rewrite a run's outputs from the register (see :func:`export`).

        Parameters
        ----------
        run : str
            A run reference.
        out_dir : str or pathlib.Path
            The output folder.

        Returns
        -------
        dict of str to pathlib.Path
            The files written, by key.
        """
        return export(self, run, out_dir)

    # ----------------------------------------------------------------------------------------
    # connections
    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A connection under the register's lock; ``None`` when reading a register that does
        not exist yet. The schema version is checked (and an older one migrated) first."""
        import duckdb

        if not write and not self.path.exists():
            yield None
            return
        if write:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GreenscreenError(f"cannot create the register {self.path}: {exc}") from exc
        with _file_lock(self.path, exclusive=write):
            if not write and _schema_version(self.path) not in (SCHEMA_VERSION, None):
                write = True  # an older layout: migrate it first (refused if it cannot be)
            try:
                con = duckdb.connect(str(self.path), read_only=not write)
            except duckdb.Error as exc:
                raise GreenscreenError(
                    f"cannot open the run register {self.path}: {str(exc).splitlines()[0]}"
                ) from exc
            try:
                _check_schema(con, self.path, write)
                yield con
            finally:
                con.close()

    def _resolve(self, con: duckdb.DuckDBPyConnection | None, ref: str) -> str:
        if con is None:
            raise GreenscreenError(f"no runs registered in {self.path}")
        ref = ref.strip()
        if ref == "latest" or ref.startswith("latest~"):
            back = ref.partition("~")[2] or "0"
            if not back.isdigit():
                raise GreenscreenError(f"'{ref}': expected latest or latest~N")
            row = _one(
                con,
                "SELECT run_id FROM runs ORDER BY finished_utc DESC, run_id DESC LIMIT 1 OFFSET ?",
                [int(back)],
            )
            if row is None:
                raise GreenscreenError(f"no run {ref} in {self.path}")
            return str(row[0])
        rows = con.execute(
            "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 6", [ref]
        ).fetchall()
        if not rows or not ref:
            raise GreenscreenError(f"no run '{ref}' in {self.path} (greenscreen runs list)")
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:5])
            raise GreenscreenError(f"'{ref}' names several runs ({shown}…): give more of the id")
        return str(rows[0][0])


# --------------------------------------------------------------------------------------------
# locks and schema
@contextmanager
def _file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """An advisory lock on ``PATH.lock`` (a separate file: DuckDB replaces nothing, but its
    WAL and checkpoint must not race another process), waiting up to LOCK_TIMEOUT_S."""
    if fcntl is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if not exclusive and exc.errno in (13, 30):  # read-only place: read without the lock
            yield
            return
        raise GreenscreenError(f"cannot lock the run register {path}: {exc}") from exc
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise GreenscreenError(
                        f"the run register {path} has been in use by another process for "
                        f"{LOCK_TIMEOUT_S:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _schema_version(path: Path) -> int | None:
    """The file's schema version without opening it for writing (``None``: unknown here)."""
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        return _version_of(con)
    finally:
        con.close()


def _version_of(con: duckdb.DuckDBPyConnection) -> int | None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not tables:
        return None  # a new, empty file
    if "meta" not in tables:
        return -1
    row = _one(con, "SELECT value FROM meta WHERE key = 'schema_version'")
    return int(row[0]) if row and str(row[0]).isdigit() else -1


def _check_schema(con: duckdb.DuckDBPyConnection, path: Path, write: bool) -> None:
    """Create the layout in a new file, migrate an older one, refuse a newer or foreign one."""
    version = _version_of(con)
    if version is None:
        if not write:
            return
        con.execute("BEGIN")
        for statement in _DDL:
            con.execute(statement)
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        con.execute("INSERT INTO meta VALUES ('created_by', ?)", [f"greenscreen {__version__}"])
        con.execute("COMMIT")
        return
    if version == SCHEMA_VERSION:
        return
    if version < 0:
        raise GreenscreenError(
            f"{path} is a DuckDB file but not a greenscreen run register (no schema version); "
            "give another --register"
        )
    if version > SCHEMA_VERSION:
        raise GreenscreenError(
            f"the run register {path} was written by a newer greenscreen (register schema "
            f"{version}; this greenscreen {__version__} reads {SCHEMA_VERSION}): upgrade "
            "greenscreen, or give another --register"
        )
    steps = [_MIGRATIONS.get(v) for v in range(version, SCHEMA_VERSION)]
    if any(step is None for step in steps):
        raise GreenscreenError(
            f"the run register {path} has schema {version}, which greenscreen {__version__} "
            f"cannot migrate to {SCHEMA_VERSION}: keep it with the greenscreen that wrote it "
            "and give another --register"
        )
    con.execute("BEGIN")
    for step in steps:
        for statement in step or []:
            con.execute(statement)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
    con.execute("COMMIT")


# --------------------------------------------------------------------------------------------
# registering
def _before_commit() -> None:
    """Called inside the registration transaction just before it commits: a seam for the
    test that kills a process there (nothing of the run may be left)."""


def register_run(
    result: ScreenResult,
    register: Register | str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    input_path: str | Path | None = None,
    analyst: str | None = None,
    options: dict[str, Any] | None = None,
    started: dt.datetime | None = None,
    parent: str | None = None,
    input_location: str | None = None,
) -> str:
    """Record one run in a register and return its run id.

    Parameters
    ----------
    result : ScreenResult
        The rulebooks, programmes, configuration and (without ``out_dir``) the tables.
    register : Register, str or pathlib.Path, optional
        The register; default :func:`default_path`.
    out_dir : str or pathlib.Path, optional
        The output folder this run wrote: the tables are read from its files and the exact
        ``run.json`` record (batch mode has no whole result in memory).
    input_path : str or pathlib.Path, optional
        The input file, stored up to :data:`STORE_INPUT_MAX` bytes, else referenced by path
        and SHA-256.
    analyst : str, optional
        Who ran it; default the login name.
    options : dict, optional
        The caller's options (the CLI's), recorded with the configuration so that a diff can
        name an option as the cause of a change and ``rescreen`` can repeat the run.
    started : datetime.datetime, optional
        When the run started [UTC]; default now.
    parent : str, optional
        The run this one re-screens.
    input_location : str, optional
        The path recorded for the input when ``input_path`` is a copy.

    Returns
    -------
    str
        The new run id.
    """
    reg = register if isinstance(register, Register) else open(register)
    now = _utc_now()
    started = started or now
    run_id = f"{started:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    out = Path(out_dir) if out_dir is not None else None
    record = _read_json(out / "run.json") if out is not None else result.metadata()
    counts = record.get("counts", {})
    all_options = _flat_options(result, options or {})
    sources = _sources(result)
    path = Path(input_path) if input_path is not None else None
    input_sha = record.get("input", {}).get("sha256")
    stored_input: tuple[str, str, bytes] | None = None
    if path is not None and path.is_file() and path.stat().st_size <= STORE_INPUT_MAX:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        input_sha = input_sha or digest
        if digest == input_sha:
            stored_input = (digest, path.name, data)
    tables = _table_sources(result, out)

    with reg._connect(write=True) as con:
        assert con is not None
        store = reg.tables_dir
        _remove_orphans(con, store)  # of registrations killed before their commit
        folder = store / run_id
        con.execute("BEGIN")
        try:
            folder.mkdir(parents=True)
            for name, (kind, source, schema) in tables.items():
                target = folder / f"{name}.parquet"
                if kind == "parquet":  # the output file itself, byte for byte: no re-encoding
                    assert isinstance(source, Path)
                    shutil.copyfile(source, target)
                elif kind == "frame":
                    assert isinstance(source, pl.DataFrame)
                    source.write_parquet(target, statistics=False)
                else:  # a CSV written by greenscreen (rejects): read back with its own types
                    assert isinstance(source, Path)
                    pl.read_csv(source, schema=schema).write_parquet(target, statistics=False)
                rows = pl.scan_parquet(target).select(pl.len()).collect().item()
                con.execute(
                    "INSERT INTO run_tables VALUES (?, ?, ?, ?, ?)",
                    [run_id, name, f"{run_id}/{target.name}", rows, _schema_blob(schema)],
                )
            for blob in _source_blobs(sources, stored_input):
                con.execute("INSERT OR IGNORE INTO files VALUES (?, ?, ?, ?)", list(blob))
            for s in sources:
                con.execute(
                    "INSERT INTO run_sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, s["kind"], s["id"], s["version"], s["file"], s["sha256"], s["deps"]],
                )
            n_decisions = _one(
                con, "SELECT rows FROM run_tables WHERE run_id = ? AND name = 'decisions'", [run_id]
            )
            input_columns = [c for c in result.pipeline.projects.columns if c != "source_row"]
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                [
                    run_id,
                    started.replace(tzinfo=None),
                    now.replace(tzinfo=None),
                    _utc_now().replace(tzinfo=None),
                    analyst or _os_user(),
                    socket.gethostname(),
                    record.get("version", __version__),
                    record.get("input", {}).get("name"),
                    input_location or (str(path.resolve()) if path is not None else None),
                    input_sha,
                    stored_input is not None,
                    str(out.resolve()) if out is not None else None,
                    parent,
                    counts.get("accepted"),
                    counts.get("rejected"),
                    n_decisions[0] if n_decisions else None,
                    json.dumps(counts),
                    json.dumps(all_options, default=str, sort_keys=True),
                    json.dumps(record, ensure_ascii=False, default=str),
                    json.dumps(input_columns),
                ],
            )
            _before_commit()
            con.execute("COMMIT")
        except BaseException:
            with suppress(Exception):
                con.execute("ROLLBACK")
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return run_id


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _remove_orphans(con: duckdb.DuckDBPyConnection, store: Path) -> None:
    """Table folders of no registered run: a registration killed before its commit (SIGKILL,
    power cut) leaves one; the next writer, holding the lock, removes it."""
    if not store.is_dir():
        return
    known = {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
    for entry in store.iterdir():
        if entry.is_dir() and entry.name not in known:
            shutil.rmtree(entry, ignore_errors=True)


def _schema_blob(schema: pl.Schema) -> bytes:
    """The polars schema as an empty Arrow IPC file: exact types for an export (a column of
    nulls, an Int8, a date) whatever DuckDB's own types are."""
    buffer = io.BytesIO()
    pl.DataFrame(schema=schema).write_ipc(buffer)
    return buffer.getvalue()


def _table_sources(
    result: ScreenResult, out: Path | None
) -> dict[str, tuple[str, pl.DataFrame | Path, pl.Schema]]:
    """Per table: where to read it (a frame, a Parquet file, rejects.csv) and its schema."""
    found: dict[str, tuple[str, pl.DataFrame | Path, pl.Schema]] = {}
    if out is not None:
        for name, file in TABLES.items():
            path = out / file
            if not path.is_file():
                continue
            if file.endswith(".parquet"):
                found[name] = ("parquet", path, pl.Schema(pl.read_parquet_schema(path)))
            else:
                found[name] = ("csv", path, result.rejects.schema)
        return found
    frames: dict[str, pl.DataFrame] = {
        "results": result.results,
        "decisions": result.decisions,
        "rejects": result.rejects,
    }
    if result.subsidies is not None:
        frames["subsidies"] = result.subsidies.awards
        frames["schedule"] = result.subsidies.schedule
    if result.appraisal is not None and result.appraisal.sensitivities.height:
        frames["sensitivities"] = result.appraisal.sensitivities
    return {name: ("frame", frame, frame.schema) for name, frame in frames.items()}


def _flat_options(result: ScreenResult, options: dict[str, Any]) -> dict[str, Any]:
    """The run's configuration and the caller's options as one flat JSON-safe dict."""
    flat: dict[str, Any] = {}
    emissions = asdict(result.emissions_config)
    emissions.pop("plausible_hours", None)
    for key, value in emissions.items():
        flat[f"emissions.{key}"] = value
    for key, value in asdict(result.appraisal_config).items():
        flat[f"appraisal.{key}"] = value
    for key, value in options.items():
        flat[key] = str(value) if isinstance(value, Path) else value
    return json.loads(json.dumps(flat, default=str))


def _sources(result: ScreenResult) -> list[dict[str, Any]]:
    """Rulebooks, programmes and factor files with their SHA-256 (and the path to store)."""
    from greenscreen._resources import data_file

    found: list[dict[str, Any]] = []
    for book in result.rulebooks:
        found.append(
            _source("rulebook", book.id, book.version, book.path, list(book.depends_on or []))
        )
    for programme in result.programmes:
        deps = list(getattr(programme, "depends_on", []) or [])
        found.append(_source("programme", programme.id, programme.version, programme.path, deps))
    factors_dir = result.emissions_config.factors_dir
    for name in FACTOR_FILES:
        path = Path(factors_dir) / name if factors_dir else None
        if path is None or not path.is_file():
            path = data_file(f"factors/{name}")
        found.append(_source("factors", name.removesuffix(".csv"), "", str(path), []))
    return found


def _source(kind: str, id_: str, version: str, path: str | None, deps: list[str]) -> dict[str, Any]:
    file = Path(path) if path else None
    data = file.read_bytes() if file is not None and file.is_file() else None
    return {
        "kind": kind,
        "id": id_,
        "version": version,
        "file": file.name if file is not None else None,
        "path": file,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        "data": data,
        "deps": deps,
    }


def _source_blobs(
    sources: list[dict[str, Any]], stored_input: tuple[str, str, bytes] | None
) -> Iterator[tuple[str, str, int, bytes]]:
    for s in sources:
        if s["data"] is not None:
            yield s["sha256"], s["file"], len(s["data"]), s["data"]
    if stored_input is not None:
        digest, name, data = stored_input
        yield digest, name, len(data), data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GreenscreenError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_table(
    con: duckdb.DuckDBPyConnection, store: Path, run_id: str, name: str
) -> pl.DataFrame | None:
    """A run's table with the polars types it was registered with (decisions' labels as
    stored: an export writes them back unconverted); decisions gain ``rulebook_version``
    (from the run's rulebooks: one value per rulebook, not stored per row, so the registered
    file stays the output file)."""
    row = _one(
        con, "SELECT file, schema FROM run_tables WHERE run_id = ? AND name = ?", [run_id, name]
    )
    if row is None:
        return None
    path = store / row[0]
    if not path.is_file():
        raise GreenscreenError(
            f"the register's table file {path} is missing (keep {store.name}/ next to the "
            "register file)"
        )
    schema = pl.read_ipc(io.BytesIO(row[1])).schema
    frame = pl.read_parquet(path).cast(dict(schema))  # type: ignore[arg-type]
    if name == "decisions":
        versions = dict(
            con.execute(
                "SELECT id, version FROM run_sources WHERE run_id = ? AND kind = 'rulebook'",
                [run_id],
            ).fetchall()
        )
        version = pl.col("rulebook").replace_strict(versions, default=None, return_dtype=pl.String)
        frame = frame.with_columns(rulebook_version=version)
    return frame


def _one(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, or None. Fetches every row: DuckDB 2 refuses the next
    statement while a result is unfinished (``fetchone`` leaves it so)."""
    rows = con.execute(query, params).fetchall()
    return rows[0] if rows else None


def _frame(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """A query's result as a polars frame, through Arrow (no row-by-row conversion)."""
    return con.sql(query, params=params).pl()


def _empty_list() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "run_id": pl.String,
            "started_utc": pl.Datetime,
            "finished_utc": pl.Datetime,
            "analyst": pl.String,
            "host": pl.String,
            "version": pl.String,
            "input_name": pl.String,
            "input_sha256": pl.String,
            "projects": pl.Int64,
            "rejected": pl.Int64,
            "decisions": pl.Int64,
            "parent_run": pl.String,
            "out_dir": pl.String,
        }
    )


# --------------------------------------------------------------------------------------------
# diff
def diff(register: Register, a: str, b: str) -> Diff:
    """Compare two registered runs.

    In SQL over their results tables (a full outer join on project_id): per rulebook the
    migration matrix, and one row per project whose status, item, avoided tCO2e, subsidy or
    key credit metric changed (or that was added or removed) with the causes that can
    explain it.

    Parameters
    ----------
    register : Register
    a, b : str
        Run references (ids, prefixes, ``latest``, ``latest~N``): A is compared with B.

    Returns
    -------
    Diff
    """
    with register._connect() as con:
        id_a, id_b = register._resolve(con, a), register._resolve(con, b)
        assert con is not None
        runs = {
            r["run_id"]: r
            for r in _frame(
                con, "SELECT * FROM runs WHERE run_id IN (?, ?)", [id_a, id_b]
            ).iter_rows(named=True)
        }
        src = _frame(
            con,
            "SELECT run_id, kind, id, version, sha256, depends_on FROM run_sources "
            "WHERE run_id IN (?, ?)",
            [id_a, id_b],
        )
        table_a = _results_table(con, register.tables_dir, id_a)
        table_b = _results_table(con, register.tables_dir, id_b)
        cols_a, cols_b = _columns(con, table_a), _columns(con, table_b)
        books = sorted(
            set(src.filter(pl.col("kind") == "rulebook")["id"].to_list())
            | {c.removesuffix("__status") for c in {*cols_a, *cols_b} if c.endswith("__status")}
        )
        outputs = [f"{b}__{s}" for b in books for s in _PER_RULEBOOK]
        numeric = [c for c in (*NUMERIC_OUTPUTS, *CREDIT_OUTPUTS) if c in cols_a or c in cols_b]
        inputs_a = json.loads(runs[id_a]["input_columns"] or "[]")
        inputs_b = json.loads(runs[id_b]["input_columns"] or "[]")
        inputs = [c for c in inputs_a if c in inputs_b and c != "project_id"]
        if any(json.loads(runs[i]["options"] or "{}").get("as_of") for i in (id_a, id_b)):
            inputs = [c for c in inputs if c != "approval_date"]  # set by the option

        def side(alias: str, cols: dict[str, str], column: str) -> str:
            return f'{alias}."{column}"' if column in cols else "NULL"

        def differs(column: str, numeric_: bool) -> str:
            x, y = side("a", cols_a, column), side("b", cols_b, column)
            if numeric_:
                return (
                    f"NOT ({x} IS NOT DISTINCT FROM {y} OR abs({x} - {y}) <= "
                    f"1e-9 * greatest(abs({x}), abs({y}), 1))"
                )
            if column in cols_a and column in cols_b and cols_a[column] != cols_b[column]:
                x, y = f"CAST({x} AS VARCHAR)", f"CAST({y} AS VARCHAR)"
            return f"{x} IS DISTINCT FROM {y}"

        def shown(expr: str) -> str:
            return f"coalesce(CAST({expr} AS VARCHAR), '∅')"

        changed = [
            f"CASE WHEN {differs(c, c in numeric)} THEN {_literal(c)} END"
            for c in [*outputs, *numeric]
        ]
        details = [
            f"CASE WHEN {differs(c, c in numeric)} THEN {_literal(c + ': ')} || "
            f"{shown(side('a', cols_a, c))} || ' → ' || {shown(side('b', cols_b, c))} END"
            for c in [*outputs, *numeric]
        ]
        fields = [f"CASE WHEN {differs(c, False)} THEN {_literal(c)} END" for c in inputs]
        loan_a, loan_b = side("a", cols_a, "loan_amount"), side("b", cols_b, "loan_amount")

        def nonnull(items: list[str]) -> str:
            if not items:
                return "CAST([] AS VARCHAR[])"
            return f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)"

        query = f"""
            WITH j AS (
                SELECT coalesce(a.project_id, b.project_id) AS project_id,
                    CASE WHEN a.project_id IS NULL THEN 'added'
                         WHEN b.project_id IS NULL THEN 'removed' ELSE 'changed' END AS change,
                    {nonnull(changed)} AS outputs_changed,
                    {nonnull(details)} AS details,
                    {nonnull(fields)} AS input_fields,
                    CAST({loan_a} AS DOUBLE) AS loan_amount_a,
                    CAST({loan_b} AS DOUBLE) AS loan_amount_b
                FROM {table_a} a FULL OUTER JOIN {table_b} b ON a.project_id = b.project_id
            )
            SELECT * FROM j WHERE change <> 'changed' OR len(outputs_changed) > 0
            ORDER BY project_id"""
        changes = _frame(con, query)
        matrix_parts = []
        for book in books:
            sa, sb = side("a", cols_a, f"{book}__status"), side("b", cols_b, f"{book}__status")
            matrix_parts.append(
                f"""SELECT {_literal(book)} AS rulebook,
                    CASE WHEN a.project_id IS NULL THEN '(added)'
                         ELSE coalesce(CAST({sa} AS VARCHAR), '(not screened)') END AS status_a,
                    CASE WHEN b.project_id IS NULL THEN '(removed)'
                         ELSE coalesce(CAST({sb} AS VARCHAR), '(not screened)') END AS status_b,
                    count(*) AS projects,
                    sum(CAST(coalesce({loan_b}, {loan_a}) AS DOUBLE)) AS loan_amount
                FROM {table_a} a FULL OUTER JOIN {table_b} b ON a.project_id = b.project_id
                GROUP BY ALL"""
            )
        matrix = (
            _frame(con, " UNION ALL ".join(matrix_parts) + " ORDER BY 1, 2, 3")
            if matrix_parts
            else pl.DataFrame(
                schema={
                    "rulebook": pl.String,
                    "status_a": pl.String,
                    "status_b": pl.String,
                    "projects": pl.Int64,
                    "loan_amount": pl.Float64,
                }
            )
        )
    causes = _run_causes(runs[id_a], runs[id_b], src, id_a, id_b, inputs_a, inputs_b)
    changes = _attach_causes(changes, causes)
    return Diff(id_a, id_b, changes, matrix, causes.select("category", "cause", "affects"))


def _results_table(con: duckdb.DuckDBPyConnection, store: Path, run_id: str) -> str:
    """``read_parquet('…')`` of a run's results: DuckDB scans the file in parallel."""
    row = _one(con, "SELECT file FROM run_tables WHERE run_id = ? AND name = 'results'", [run_id])
    if row is None or not (store / row[0]).is_file():
        raise GreenscreenError(f"run {run_id} has no results table in {store}")
    return f"read_parquet({_literal(str(store / row[0]))})"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def _run_causes(
    run_a: dict[str, Any],
    run_b: dict[str, Any],
    sources: pl.DataFrame,
    id_a: str,
    id_b: str,
    inputs_a: Sequence[str],
    inputs_b: Sequence[str],
) -> pl.DataFrame:
    """Run-level differences, each with the outputs it can change (``affects``; ``*`` all).

    A rulebook's change reaches its own status and item, rulebooks that read them
    (``depends_on``), subsidies (programmes read statuses) and so the credit metrics (subsidy
    payments are cash flows); a factor table reaches avoided tCO2e and the credit metrics
    (carbon revenue); a programme the subsidy and the credit metrics.
    """
    money = [*NUMERIC_OUTPUTS[2:], *CREDIT_OUTPUTS]
    rows: list[tuple[str, str, list[str]]] = []

    def by_key(run_id: str, kind: str) -> dict[str, dict[str, Any]]:
        part = sources.filter((pl.col("run_id") == run_id) & (pl.col("kind") == kind))
        return {r["id"]: r for r in part.iter_rows(named=True)}

    books_a, books_b = by_key(id_a, "rulebook"), by_key(id_b, "rulebook")
    dependants: dict[str, set[str]] = {}
    for book in {**books_a, **books_b}.values():
        for dep in book["depends_on"] or []:
            dependants.setdefault(dep, set()).add(book["id"])
    for kind, label in (("rulebook", "rulebook"), ("programme", "programme"), ("factors", "")):
        old, new = by_key(id_a, kind), by_key(id_b, kind)
        for key in sorted(set(old) | set(new)):
            x, y = old.get(key), new.get(key)
            if x is not None and y is not None and x["sha256"] == y["sha256"]:
                continue
            if kind == "rulebook":
                reach = {key} | dependants.get(key, set())
                affects = [
                    f"{b}__{s}" for b in sorted(reach) for s in ("status", "item", "applies")
                ]
                affects += money
            elif kind == "programme":
                affects = money
            else:
                affects = ["avoided_tco2e_per_year", "avoided_tco2e_lifetime", *CREDIT_OUTPUTS]
            if x is None or y is None:
                what = "added" if x is None else "removed"
                text = f"{label or 'factor table'} {key} {what}"
            elif x["version"] != y["version"]:
                text = f"{label} {key} version changed: {x['version']} → {y['version']}"
            elif kind == "factors":
                text = f"factor table {key}.csv changed (SHA-256 {y['sha256'][:12]})"
            else:
                text = f"{label} {key} changed, same version {y['version']} (file SHA-256 differs)"
            rows.append((kind if kind != "factors" else "factor table", text.strip(), affects))
    if run_a["version"] != run_b["version"]:
        rows.append(("tool", f"greenscreen {run_a['version']} → {run_b['version']}", ["*"]))
    opts_a = json.loads(run_a["options"] or "{}")
    opts_b = json.loads(run_b["options"] or "{}")
    for key in sorted(set(opts_a) | set(opts_b)):
        if key in _PRESENTATION or opts_a.get(key) == opts_b.get(key):
            continue
        if key.startswith("emissions."):
            affects = ["avoided_tco2e_per_year", "avoided_tco2e_lifetime", *CREDIT_OUTPUTS]
        elif key.startswith("appraisal.") or key == "sensitivities":
            affects = list(CREDIT_OUTPUTS)
        else:
            affects = ["*"]
        text = f"option {key}: {opts_a.get(key)} → {opts_b.get(key)}"
        rows.append(("option", text, affects))
    added, gone = set(inputs_b) - set(inputs_a), set(inputs_a) - set(inputs_b)
    if added or gone:
        text = "input columns changed: " + ", ".join(
            [f"+{c}" for c in sorted(added)] + [f"-{c}" for c in sorted(gone)]
        )
        rows.append(("input", text, ["*"]))
    return pl.DataFrame(
        rows,
        schema={"category": pl.String, "cause": pl.String, "affects": pl.List(pl.String)},
        orient="row",
    )


def _attach_causes(changes: pl.DataFrame, causes: pl.DataFrame) -> pl.DataFrame:
    """Per changed project, the causes that can explain it: its own input fields, and every
    run-level difference whose ``affects`` meets the outputs that changed. Vectorised: one
    expression per run-level cause, however many projects."""
    parts = [
        pl.when(pl.col("input_fields").list.len() > 0)
        .then(pl.concat_str(pl.lit("input row changed: "), pl.col("input_fields").list.join(", ")))
        .otherwise(None)
    ]
    for cause, affects in causes.select("cause", "affects").iter_rows():
        if "*" in affects:
            hit: pl.Expr = pl.lit(True)
        else:
            wanted = pl.lit(pl.Series([affects], dtype=pl.List(pl.String)))
            hit = pl.col("outputs_changed").list.set_intersection(wanted).list.len() > 0
        parts.append(pl.when(hit).then(pl.lit(cause)).otherwise(None))
    listed = pl.concat_list(parts).list.drop_nulls()
    kind = pl.col("change")
    return changes.with_columns(
        causes=pl.when(kind == "added")
        .then(pl.lit(["project added"], dtype=pl.List(pl.String)))
        .when(kind == "removed")
        .then(pl.lit(["project removed"], dtype=pl.List(pl.String)))
        .when(listed.list.len() > 0)
        .then(listed)
        .otherwise(pl.lit(["unexplained"], dtype=pl.List(pl.String)))
    ).select(
        "project_id",
        "change",
        "causes",
        "outputs_changed",
        "details",
        "input_fields",
        "loan_amount_a",
        "loan_amount_b",
    )


#: rows of the changes sheet in diff.xlsx (all of them are in diff.parquet)
XLSX_MAX_CHANGES = 100_000


def _diff_xlsx(d: Diff, path: str) -> None:
    """Matrix (per rulebook A × B), changes with causes, run-level causes. Text is never a
    formula or a link (project ids come from pipelines)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties({"created": dt.datetime(2000, 1, 1)})  # reproducible files
    bold = book.add_format({"bold": True})
    sheet = book.add_worksheet("matrix")
    sheet.write_string(0, 0, f"status in run {d.run_a} (rows) × run {d.run_b} (columns)", bold)
    row = 2
    for (rulebook,), part in d.matrix.group_by("rulebook", maintain_order=True):
        statuses_a = sorted(set(part["status_a"]))
        statuses_b = sorted(set(part["status_b"]))
        cells = {(r["status_a"], r["status_b"]): r for r in part.iter_rows(named=True)}
        for label, key in (("projects", "projects"), ("loan amount", "loan_amount")):
            sheet.write_string(row, 0, f"{rulebook}: {label}", bold)
            for j, status in enumerate(statuses_b):
                sheet.write_string(row, j + 1, status, bold)
            for i, status_a in enumerate(statuses_a):
                sheet.write_string(row + 1 + i, 0, status_a, bold)
                for j, status_b in enumerate(statuses_b):
                    cell = cells.get((status_a, status_b))
                    sheet.write_number(row + 1 + i, j + 1, (cell or {}).get(key) or 0)
            row += len(statuses_a) + 2
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 12, 18)
    changes = csv_compatible(d.changes.head(XLSX_MAX_CHANGES))
    changes.write_excel(book, "changes", autofit=False, column_widths=30)
    if d.changes.height > XLSX_MAX_CHANGES:
        book.get_worksheet_by_name("changes").write_string(
            changes.height + 2,
            0,
            f"first {XLSX_MAX_CHANGES:,} of {d.changes.height:,} changes; all in diff.parquet",
        )
    csv_compatible(d.causes).write_excel(book, "causes", autofit=False, column_widths=60)
    book.close()


_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>greenscreen runs diff {{ a }} → {{ b }}</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#eef5ee;text-align:left}td.n{text-align:right}td.diag{background:#f4f4f4}
</style></head><body>
<h1>Runs compared: {{ a }} → {{ b }}</h1>
<pre>{{ summary }}</pre>
<h2>Migration matrices (rows: status in {{ a }}; columns: in {{ b }}; projects / loan amount)</h2>
{% for book, rows, cols, cells in matrices %}<h3>{{ book }}</h3><table><tr><th></th>
{% for c in cols %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr><th>{{ r }}</th>{% for c in cols %}{% set cell = cells.get((r, c)) %}
<td class="n{{ ' diag' if r == c else '' }}">{% if cell %}{{ "{:,}".format(cell.projects) }} /
{{ "{:,.0f}".format(cell.loan_amount or 0) }}{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>{% endfor %}
<h2>Changes ({{ shown }} of {{ total }}; all in diff.parquet)</h2>
<table><tr><th>project</th><th>change</th><th>causes</th><th>what changed</th></tr>
{% for c in changes %}<tr><td>{{ c.project_id }}</td><td>{{ c.change }}</td>
<td>{{ c.causes | join("; ") }}</td><td>{{ c.details | join("; ") }}</td></tr>{% endfor %}
</table></body></html>
"""


def _diff_html(d: Diff, limit: int = 2_000) -> str:
    """A self-contained page, everything escaped (jinja2 autoescape), no script."""
    import jinja2

    matrices = []
    for (rulebook,), part in d.matrix.group_by("rulebook", maintain_order=True):
        cells = {(r["status_a"], r["status_b"]): r for r in part.iter_rows(named=True)}
        matrices.append(
            (rulebook, sorted(set(part["status_a"])), sorted(set(part["status_b"])), cells)
        )
    template = jinja2.Environment(autoescape=True).from_string(_HTML)
    return template.render(
        a=d.run_a,
        b=d.run_b,
        summary=d.summary(),
        matrices=matrices,
        changes=d.changes.head(limit).iter_rows(named=True),
        shown=min(limit, d.changes.height),
        total=d.changes.height,
    )


# --------------------------------------------------------------------------------------------
# export and rescreen
def export(register: Register, run: str, out_dir: str | Path) -> dict[str, Path]:
    """Rewrite a registered run's outputs from the register alone.

    The tables are read with the types they were registered with and written as ``screen``
    writes them, the portfolio workbook, report and evidence requests are rebuilt from them
    and the run's own rulebook files (stored in the register), and ``run.json`` is the
    registered record: for a run of this greenscreen version the files equal the original
    outputs byte for byte. Packs are not rebuilt (``greenscreen pack``).

    Parameters
    ----------
    register : Register
    run : str
        A run reference.
    out_dir : str or pathlib.Path
        The output folder (written as an output set).

    Returns
    -------
    dict of str to pathlib.Path
        The files written, by key (:data:`greenscreen._outputs.OUTPUT_FILES`).
    """
    info = register.get(run).row(0, named=True)
    run_id = info["run_id"]
    record = json.loads(info["record"])
    listed = {str(n).rstrip("/") for n in record.get("outputs", [])}
    with register._connect() as con:
        assert con is not None
        frames = {name: _read_table(con, register.tables_dir, run_id, name) for name in TABLES}
        blobs = con.execute(
            "SELECT s.kind, s.id, s.file, f.content FROM run_sources s "
            "JOIN files f ON s.sha256 = f.sha256 WHERE s.run_id = ? AND s.kind <> 'factors'",
            [run_id],
        ).fetchall()
    if frames["results"] is None:
        raise GreenscreenError(f"run {run_id} has no results table")
    options = json.loads(info["options"] or "{}")
    out = Path(out_dir)
    temporary = tempfile.TemporaryDirectory(prefix="greenscreen-export-")
    with temporary as tmp, output_set(out) as staged:
        result = _rebuilt(record, frames, blobs, Path(tmp), options)
        from greenscreen.report import write_run_reports

        # the files the run wrote, results.csv included when it did
        csv_rows = max(result.results.height, 1) if "results.csv" in listed else 0
        paths = result.write_data(staged.path, csv_max_rows=csv_rows) | write_run_reports(
            result,
            staged.path,
            portfolio=OUTPUT_FILES["portfolio"].name in listed,
            portfolio_max_rows=result.results.height
            if listed & {OUTPUT_FILES["portfolio"].name, OUTPUT_FILES["requests"].name}
            else -1,
            lang=options.get("lang") or "en",
        )
        decisions = frames["decisions"]
        if decisions is not None:  # streamed as screen streams it (same Parquet layout)
            table = decisions.drop("rulebook_version", strict=False)
            atomic_write(
                staged.path / OUTPUT_FILES["decisions"].name,
                partial(sink_parquet, decisions_file(table, result.rulebooks)),
            )
        for key, path in list(paths.items()):
            if path.name not in listed:
                path.unlink(missing_ok=True)
                del paths[key]
        staged.commit({k: v for k, v in record.items() if k != "outputs"})
    return {key: out / path.name for key, path in {**paths, "run": out / "run.json"}.items()}


def _rebuilt(
    record: dict[str, Any],
    frames: dict[str, pl.DataFrame | None],
    blobs: list[tuple[Any, ...]],
    tmp: Path,
    options: dict[str, Any],
) -> ScreenResult:
    """A ScreenResult from registered tables and rulebook files, enough to write outputs."""
    from greenscreen.appraisal import AppraisalConfig
    from greenscreen.emissions import EmissionsConfig
    from greenscreen.io import Pipeline, SourceInfo
    from greenscreen.rulebook import load_rulebook
    from greenscreen.subsidy import Subsidies, load_programmes

    books, programmes_dir = {}, tmp / "programmes"
    programmes_dir.mkdir()
    for kind, id_, file, content in blobs:
        if kind == "rulebook":
            target = tmp / f"{id_}-{file}"
            target.write_bytes(content)
            books[id_] = load_rulebook(target)
        else:  # one folder, the original names: loaded as a programmes directory
            (programmes_dir / file).write_bytes(content)
    order = [b["id"] for b in record.get("rulebooks", [])]
    rulebooks = tuple(books[i] for i in order if i in books)
    loaded = {p.id: p for p in load_programmes(programmes_dir, extra=False)}
    programmes = tuple(loaded[p["id"]] for p in record.get("programmes", []) if p["id"] in loaded)
    counts = record.get("counts", {})
    results = frames["results"]
    assert results is not None
    rejects = frames["rejects"]
    source = record.get("input", {})
    pipeline = Pipeline(
        results,
        rejects if rejects is not None else pl.DataFrame(),
        SourceInfo(name=source.get("name") or "", format=source.get("format") or ""),
        counts.get("input_rows", results.height),
        counts.get("blank_rows_ignored", 0),
        # run.json before issue 17 wrote the reader's notes as unit_conversions
        tuple(source.get("notes", source.get("unit_conversions", []))),
    )
    decisions = frames["decisions"]
    subsidies = None
    if frames["subsidies"] is not None:
        schedule = frames["schedule"]
        subsidies = Subsidies(
            frames["subsidies"],
            schedule if schedule is not None else pl.DataFrame(),
            pl.DataFrame(),
        )
    emissions = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("emissions.")}
    appraisal = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("appraisal.")}
    if decisions is None:
        decisions = DECISION_SCHEMA.to_frame()
    return _Registered(
        results,
        pipeline,
        decisions_file(decisions.drop("rulebook_version", strict=False), rulebooks),
        rulebooks,
        _config(EmissionsConfig, emissions),
        subsidies,
        programmes,
        None,
        _config(AppraisalConfig, appraisal),
        record=record,
        sensitivities_frame=frames["sensitivities"],
    )


def _config(kind: Any, values: dict[str, Any]) -> Any:
    """A config dataclass from recorded values (JSON lists back to tuples where needed)."""
    known = {k: v for k, v in values.items() if k in kind.__dataclass_fields__}
    try:
        return kind(**known)
    except (TypeError, ValueError):
        return kind()


@dataclass(frozen=True)
class _Registered(ScreenResult):
    """A run rebuilt from the register: its metadata is the registered record, and its
    sensitivities the registered table (there is no appraisal to recompute them from)."""

    record: dict[str, Any] = field(default_factory=dict)
    sensitivities_frame: pl.DataFrame | None = None

    def metadata(
        self, *, sha256: str | None = None, counts: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """The registered run record (without its ``outputs``), ``sha256`` and ``counts``
        replaced when given, as :meth:`ScreenResult.metadata`."""
        record = {k: v for k, v in self.record.items() if k != "outputs"}
        if sha256 is not None:
            record["input"] = {**record.get("input", {}), "sha256": sha256}
        if counts is not None:
            record["counts"] = dict(counts)
        return record

    def write_data(
        self,
        out: Path,
        *,
        csv_max_rows: int = CSV_MAX_ROWS,
        alongside: Callable[[], dict[str, Path]] | None = None,
    ) -> dict[str, Path]:
        paths = super().write_data(out, csv_max_rows=csv_max_rows, alongside=alongside)
        table = self.sensitivities_frame
        if table is not None and table.height:
            paths["sensitivities"] = out / OUTPUT_FILES["sensitivities"].name
            atomic_write(paths["sensitivities"], partial(write_parquet, table))
        return paths


def rescreen(
    register: Register,
    run: str,
    out_dir: str | Path,
    *,
    rulebooks: str | Path | None = None,
    as_of: dt.date | None = None,
    analyst: str | None = None,
    diff_out: str | Path | None = None,
) -> tuple[ScreenResult, str, Diff]:
    """Screen a registered run's input again, with other rules or as of another date.

    The run's other options are kept. The new run is registered (its parent is the original)
    and its diff against the original written. The input comes from the register, or from
    its path when it was too large to store, and is refused if that file has changed.

    Parameters
    ----------
    register : Register
    run : str
        The run to repeat (a reference).
    out_dir : str or pathlib.Path
        The new run's output folder.
    rulebooks : str or pathlib.Path, optional
        A rulebook directory; default the run's rulebook directory as it is now, else the
        bundled rulebooks.
    as_of : datetime.date, optional
        Replaces every project's ``approval_date`` (a rescreen of a rescreen keeps its date).
    analyst : str, optional
        Who ran it.
    diff_out : str or pathlib.Path, optional
        Where to write the diff; default ``OUT-diff`` next to ``out_dir``.

    Returns
    -------
    result : ScreenResult
        The new run.
    run_id : str
        Its id in the register.
    diff : Diff
        Original → new.
    """
    from greenscreen.appraisal import AppraisalConfig
    from greenscreen.emissions import EmissionsConfig
    from greenscreen.io import read_pipeline
    from greenscreen.run import screen
    from greenscreen.subsidy import SubsidyConfig

    info = register.get(run).row(0, named=True)
    original = info["run_id"]
    options = json.loads(info["options"] or "{}")
    folder = rulebooks if rulebooks is not None else options.get("rulebooks")
    if as_of is None and options.get("as_of"):  # a rescreen of a rescreen keeps its date
        as_of = dt.date.fromisoformat(options["as_of"])
    if folder is not None and rulebooks is None and not Path(folder).is_dir():
        raise GreenscreenError(
            f"run {original} used the rulebook directory {folder}, which no longer exists: "
            "give --rulebooks"
        )
    emissions = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("emissions.")}
    appraisal = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("appraisal.")}
    read_options = {k: options[k] for k in ("sheet", "encoding") if options.get(k)}
    with tempfile.TemporaryDirectory(prefix="greenscreen-rescreen-") as tmp:
        source = register.input_file(original, Path(tmp))
        started = _utc_now()
        pipeline = read_pipeline(source, **read_options)
        if as_of is not None:
            dated = pipeline.projects.with_columns(approval_date=pl.lit(as_of, dtype=pl.Date))
            pipeline = replace(pipeline, projects=dated)
        result = screen(
            pipeline,
            rulebooks=folder,
            emissions=_config(EmissionsConfig, emissions),
            subsidies=SubsidyConfig(funding_cost=options.get("funding_cost")),
            appraisal=_config(AppraisalConfig, appraisal),
            sensitivities=bool(options.get("sensitivities")),
        )
        max_rows = options.get("portfolio_max_rows")
        result.write(
            out_dir,
            portfolio=max_rows is None or max_rows > 0,
            portfolio_max_rows=100_000 if max_rows is None else max(max_rows, 0),
            csv_max_rows=options.get("csv_max_rows", CSV_MAX_ROWS),
            lang=options.get("lang") or "en",
        )
        new_options = {k: v for k, v in options.items() if "." not in k}
        new_options.update(
            rulebooks=str(folder) if folder is not None else None,
            as_of=str(as_of) if as_of is not None else None,
        )
        new = register_run(
            result,
            register,
            out_dir=out_dir,
            input_path=source,
            analyst=analyst,
            options=new_options,
            started=started,
            parent=original,
            input_location=info["input_path"],
        )
    compared = diff(register, original, new)
    out = Path(out_dir)
    compared.write(Path(diff_out) if diff_out else out.with_name(f"{out.name}-diff"))
    return result, new, compared
