"""An on-disk cache of the rulebook and programme files that loaded and passed their checks.

Reading the bundled rulebooks (about 1 MB of YAML, some 900 SQL conditions checked by sqlglot)
took about 1.4 s in every process, the largest constant cost of a screen: libyaml plus PyYAML's
Python constructors about 0.55 s, the YAML event walk 0.2 s, sqlglot's parse and checks of the
conditions 0.8 s. Why a cache rather than a faster first read, measured: a memoised scalar
resolver saved nothing measurable, a leaner event walk 0.03 s and one tree copy fewer per
condition 0.05 s (kept, in _sql.parse); checking conditions lazily would refuse a bad file
later than today. Unpickling the loaded, checked objects takes 0.05–0.1 s and rebuilds them
exactly (floats, dates, unset fields; a JSON round trip would turn ``inf`` into null).

An entry is keyed by a SHA-256 of the file's bytes and path and of everything that interprets
them: greenscreen's own ``.py`` and data files and the versions of Python, polars, pydantic,
sqlglot and PyYAML. A changed file, a changed greenscreen or another library is a miss, never a
stale object. Only files that loaded cleanly are stored, so a bad file is read and refused with
the same message every time. Each entry also carries what the checks learnt about its
conditions (:data:`known_sql`, :data:`known_types`), so that the engine compiles a cached
file's conditions without sqlglot. A missing, unreadable, corrupt, foreign or truncated entry is
a miss (it is parsed as before), and a cache that cannot be written is no cache, never an error.

``GREENSCREEN_CACHE_DIR`` chooses the folder (``off`` disables it); else
``$XDG_CACHE_HOME/greenscreen``, else ``~/.cache/greenscreen``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import pickle
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

ENV = "GREENSCREEN_CACHE_DIR"
_MAGIC = b"greenscreen load cache 1\n"
_PACKAGE = Path(__file__).resolve().parent
#: an entry not used for this long is removed when another is written (temporary folders'
#: files, such as ``rulebooks build`` validates, would otherwise pile up)
_MAX_AGE_S = 30 * 24 * 3600

T = TypeVar("T")
#: what a successful check of a condition established: (condition, the kinds of the inputs it
#: reads, the result it must give, the SQL polars reads, the names it reads)
Fact = tuple[str, tuple[tuple[str, str], ...], str, str, tuple[str, ...]]

#: accepted conditions learnt from cache entries: the SQL polars reads and the names it reads
known_sql: dict[str, tuple[str, tuple[str, ...]]] = {}
#: type checks passed, learnt from cache entries: (condition, input kinds, result)
known_types: set[tuple[str, tuple[tuple[str, str], ...], str]] = set()
#: the facts of the file being loaded, while it is (see :func:`note`)
_journal: ContextVar[list[Fact] | None] = ContextVar("greenscreen_cache_journal", default=None)


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off (``GREENSCREEN_CACHE_DIR=off``, or no
    home folder to put it in)."""
    chosen = os.environ.get(ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home folder
            return None
    return Path(base) / "greenscreen"


def note(fact: Fact) -> None:
    """Record a condition check of the file being loaded (a no-op outside :func:`load_checked`)."""
    journal = _journal.get()
    if journal is not None:
        journal.append(fact)


def load_checked(kind: str, path: Path, data: bytes, build: Callable[[], T], model: type[T]) -> T:
    """The object ``build()`` makes of a file, from the cache when an entry for exactly these
    bytes and this code exists, else built (and stored when it loads cleanly).

    Parameters
    ----------
    kind : str
        ``rulebook`` or ``programme`` (part of the key).
    path : pathlib.Path
        The file as given (its text is stored in the object it makes).
    data : bytes
        The file's bytes, as read for ``build``.
    build : callable
        Parses and checks the file; its errors propagate and nothing is stored.
    model : type
        The type ``build`` returns: an entry holding anything else is a miss.

    Returns
    -------
    object
    """
    entry = _entry(kind, path, data)
    if entry is not None:
        found = _read(*entry)
        if (
            isinstance(found, tuple)
            and len(found) == 2
            and isinstance(found[0], model)
            and isinstance(found[1], list)
        ):
            _learn(found[1])
            return found[0]
    token = _journal.set([])
    try:
        value = build()
        facts = _journal.get() or []
    finally:
        _journal.reset(token)
    if entry is not None:
        _write(*entry, (value, facts))
    return value


def _learn(facts: list[Fact]) -> None:
    for condition, inputs, result, sql, roots in facts:
        known_sql[condition] = (sql, roots)
        known_types.add((condition, inputs, result))


@cache
def _code_digest() -> bytes:
    """SHA-256 of greenscreen's files (code and data; not the bundled rulebooks, which are keyed
    by their own bytes) and of the versions of Python and the libraries that read or check a
    file (about 10 ms; once per process)."""
    import polars
    import pydantic
    import pydantic_core

    digest = hashlib.sha256(_MAGIC)
    versions = (
        sys.version,
        polars.__version__,
        pydantic.VERSION,
        pydantic_core.__version__,
        # sqlglot and PyYAML from their metadata, not imported: a hit needs neither, and
        # importing them cost about 0.25 s of every command (about 5 ms this way)
        importlib.metadata.version("sqlglot"),
        importlib.metadata.version("PyYAML"),
        str(_has_libyaml()),
    )
    digest.update("\0".join(versions).encode())
    for folder, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "_bundled"))
        for name in sorted(files):
            file = Path(folder, name)
            content = file.read_bytes()
            rel = file.relative_to(_PACKAGE).as_posix().encode()
            digest.update(b"%d:%s:%d:" % (len(rel), rel, len(content)))
            digest.update(content)
    return digest.digest()


def _has_libyaml() -> bool:
    """Whether PyYAML can use libyaml (``yaml.__with_libyaml__``: its ``yaml._yaml`` binding is
    installed), found without importing yaml."""
    spec = importlib.util.find_spec("yaml")
    if spec is None or spec.submodule_search_locations is None:
        return False
    found = importlib.machinery.PathFinder.find_spec("yaml._yaml", spec.submodule_search_locations)
    return found is not None


def _entry(kind: str, path: Path, data: bytes) -> tuple[Path, bytes] | None:
    """The entry's file and key; None when the cache is off or the code cannot be read. One
    file per source path (a changed file replaces its entry), named after the path."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        code = _code_digest()
    except OSError:
        return None
    given = str(path).encode("utf-8", "surrogateescape")
    key = hashlib.sha256(code)
    key.update(b"%s\0%d:%s\0" % (kind.encode(), len(given), given))
    key.update(data)
    where = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape") + given)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:40]
    return folder / f"{kind}-{stem}-{where.hexdigest()[:16]}.pickle", key.digest()


def _read(file: Path, key: bytes) -> Any:
    """The entry's object, or None: missing, not ours, not for this key, or damaged."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        # a regular file this user wrote and nobody else can change: unpickling runs code
        if not stat.S_ISREG(info.st_mode) or not _own(info):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            blob = handle.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    head = _MAGIC + key
    body = blob[len(head) + 32 :]
    if not blob.startswith(head) or blob[len(head) : len(head) + 32] != _sha(body):
        return None
    with contextlib.suppress(OSError):
        os.utime(file)  # used: not pruned
    try:
        return pickle.loads(body)
    except Exception:  # a damaged or incompatible entry (the digest makes this unlikely)
        return None


def _own(info: os.stat_result) -> bool:
    if not hasattr(os, "geteuid"):  # Windows: the folder's ACL protects it
        return True
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _write(file: Path, key: bytes, value: object) -> None:
    """Store an entry atomically (a temporary file, then os.replace); any failure is silent."""
    try:
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_MAGIC + key + _sha(body) + body)
            os.replace(temp, file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _prune(file.parent, keep=file)
    except Exception:  # not writable, full, not picklable: run without the cache
        return


def _prune(folder: Path, keep: Path) -> None:
    """Remove entries (and temporary files of crashed writers) unused for ``_MAX_AGE_S``."""
    cutoff = time.time() - _MAX_AGE_S
    for entry in folder.glob("*.pickle"):
        with contextlib.suppress(OSError):
            if entry != keep and entry.stat().st_mtime < cutoff:
                entry.unlink()
