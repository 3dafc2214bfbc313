"""The human reports of a run: appraisal packs (Excel with live formulas, self-contained
HTML, PDF), the portfolio (xlsx, html) and the evidence request. The report layer reads a
:class:`~greenscreen.run.ScreenResult`; the run layer never imports it at module level."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from greenscreen._outputs import OUTPUT_FILES, atomic_write, folder_lock
from greenscreen.errors import GreenscreenError, did_you_mean
from greenscreen.report._files import confined, safe_stem
from greenscreen.report.excel import write_excel_pack
from greenscreen.report.html import write_html_pack, write_pdf_pack, write_portfolio_html
from greenscreen.report.labels import Lang
from greenscreen.report.portfolio import MAX_ROWS as PORTFOLIO_MAX_ROWS
from greenscreen.report.portfolio import write_portfolio
from greenscreen.requests import evidence_requests, write_requests

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

__all__ = [
    "MANIFEST",
    "PackList",
    "write_excel_pack",
    "write_html_pack",
    "write_packs",
    "write_pdf_pack",
    "write_portfolio_html",
    "write_run_reports",
]


MANIFEST = ".greenscreen-packs.json"


class PackList(list[Path]):
    """The pack files for the requested projects; ``skipped`` counts projects whose packs were
    already written by an earlier run with the same inputs and options (resume)."""

    skipped: int = 0


def write_run_reports(
    result: ScreenResult,
    out: Path,
    *,
    portfolio: bool = True,
    portfolio_max_rows: int = PORTFOLIO_MAX_ROWS,
    lang: Lang = "en",
    packs: bool = False,
    workers: int = 1,
    on_pack: Callable[[str], None] | None = None,
    reuse: Path | None = None,
) -> dict[str, Path]:
    """The human reports of a run, written into a folder (an output set's staging folder).

    Parameters
    ----------
    result : ScreenResult
        The screened run.
    out : pathlib.Path
        The folder to write into.
    portfolio : bool
        Write ``portfolio.xlsx`` (the batch workbook).
    portfolio_max_rows : int
        Above this many projects neither ``portfolio.xlsx`` nor ``requests.xlsx`` is written:
        Excel is the wrong tool there.
    lang : {"en", "zh"}
        The reports' language.
    packs : bool
        Also write every project's pack into ``packs/``.
    workers : int
        Processes writing the packs.
    on_pack : callable, optional
        Called with each project id once its pack is written or found up to date.
    reuse : pathlib.Path, optional
        The previous set's ``packs/``: its up-to-date packs are hard-linked, not written again.

    Returns
    -------
    dict of str to pathlib.Path
        What was written, by key (:data:`greenscreen._outputs.OUTPUT_FILES`): ``portfolio``,
        ``portfolio_html`` (always), ``requests`` (when some evidence is to be asked, below
        Excel's row limit) and ``packs``.
    """
    paths: dict[str, Path] = {}
    if portfolio and result.results.height <= portfolio_max_rows:
        paths["portfolio"] = out / OUTPUT_FILES["portfolio"].name
        atomic_write(
            paths["portfolio"],
            lambda p: write_portfolio(result, p, lang=lang, max_rows=portfolio_max_rows),
        )
    # links point at packs written with --packs, or: greenscreen pack PIPELINE --all
    # --out DIR/packs
    paths["portfolio_html"] = out / OUTPUT_FILES["portfolio_html"].name
    atomic_write(
        paths["portfolio_html"],
        lambda p: write_portfolio_html(result, p, lang=lang, link_prefix="packs/"),
    )
    asked = evidence_requests(result) if result.results.height <= portfolio_max_rows else None
    if asked is not None and 0 < asked.height < 1_048_576:
        paths["requests"] = out / OUTPUT_FILES["requests"].name
        atomic_write(paths["requests"], lambda p: write_requests(asked, p))
    if packs:
        write_packs(
            result, out / "packs", lang=lang, workers=workers, progress=on_pack, reuse=reuse
        )
        paths["packs"] = out / "packs"
    return paths


def write_packs(
    result: ScreenResult,
    out_dir: str | Path,
    project_ids: list[str] | None = None,
    *,
    lang: Lang = "en",
    formats: tuple[str, ...] = ("xlsx", "html"),
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    chunk_size: int = 100,
    reuse: str | Path | None = None,
) -> PackList:
    """Write one pack per project.

    File names come from :func:`~greenscreen.report._files.safe_stem` and cannot leave
    ``out_dir``; each file is written atomically. Resumable: ``out_dir/.greenscreen-packs.json``
    records a fingerprint of the run (version, input hash, rulebooks, options, language) and of
    each project's results row, and packs whose fingerprint matches and whose files exist are
    not written again. Two runs cannot write into one folder at once.

    Parameters
    ----------
    result : ScreenResult
        The screened run.
    out_dir : str or pathlib.Path
        The pack folder (created when missing).
    project_ids : list of str, optional
        The projects; default all accepted projects. An unknown or rejected id is an error.
    lang : {"en", "zh"}
        The packs' language.
    formats : tuple of {"xlsx", "html", "pdf"}
        The pack formats (``pdf`` needs headless Chromium).
    progress : callable, optional
        Called with each project id after its pack is written or skipped.
    workers : int
        With more than 1, chunks of ``chunk_size`` projects are written in that many
        processes.
    chunk_size : int
        Projects per chunk handed to a worker.
    reuse : str or pathlib.Path, optional
        Another pack folder (the one a new output set replaces): its up-to-date packs are
        hard-linked instead of written again.

    Returns
    -------
    PackList
        The pack files of the requested projects; ``skipped`` counts those already up to date.

    Raises
    ------
    GreenscreenError
        Unknown formats or project ids, or a folder that cannot be written.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise GreenscreenError(f"pack formats are xlsx, html and pdf, not {sorted(unknown)}")
    formats = tuple(f for f in FORMATS if f in formats)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GreenscreenError(f"cannot create pack directory {out}: {exc}") from exc
    known = result.results["project_id"].to_list()
    ids = known if project_ids is None else list(dict.fromkeys(project_ids))
    _check_ids(result, ids, known)
    with folder_lock(out):
        return _write_packs(result, out, ids, lang, formats, progress, workers, chunk_size, reuse)


def _write_packs(
    result: ScreenResult,
    out: Path,
    ids: list[str],
    lang: Lang,
    formats: tuple[str, ...],
    progress: Callable[[str], None] | None,
    workers: int,
    chunk_size: int,
    reuse: str | Path | None,
) -> PackList:
    run_key, row_keys = _fingerprints(result, ids, lang, formats)
    files = {pid: [confined(out, f"{safe_stem(pid)}.{fmt}") for fmt in formats] for pid in ids}
    _check_names(files)
    manifest = _read_manifest(out, run_key)
    if reuse is not None:
        manifest.update(_link_packs(Path(reuse), run_key, row_keys, files))
    todo = [
        pid
        for pid in ids
        if manifest.get(pid) != row_keys[pid] or not all(p.exists() for p in files[pid])
    ]
    done = set(ids) - set(todo)
    if progress is not None:
        for pid in ids:
            if pid in done:
                progress(pid)
    for pid in todo:
        manifest.pop(pid, None)

    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    # each pack filters the run for its project: hand the writers a chunk's slice, not the run
    narrowed = result.subset(todo) if len(chunks) > 1 else result
    for chunk in _run_chunks(narrowed, out, chunks, lang, formats, workers):
        for pid in chunk:
            manifest[pid] = row_keys[pid]
            if progress is not None:
                progress(pid)
        _write_manifest(out, run_key, manifest)  # after every chunk: an interruption resumes
    if not chunks and reuse is not None:  # every pack linked from ``reuse``: its manifest too
        _write_manifest(out, run_key, manifest)

    written = PackList(p for pid in ids for p in files[pid])
    written.skipped = len(done)
    if "html" in formats and len(ids) > 1:  # an index linking the packs
        index = confined(out, "index.html")
        packed = result.subset(ids)
        atomic_write(index, lambda tmp: write_portfolio_html(packed, tmp, lang=lang))
        written.append(index)
    return written


def _check_ids(result: ScreenResult, ids: list[str], known: list[str]) -> None:
    known_set = set(known)
    for pid in ids:
        if pid not in known_set:
            rejected = result.rejects.filter(pl.col("project_id") == pid)
            if rejected.height:
                raise GreenscreenError(
                    f"project {pid} was rejected: {'; '.join(rejected['reason'])}"
                )
            raise GreenscreenError(f"no project '{pid}' in the pipeline" + did_you_mean(pid, known))


def _check_names(files: dict[str, list[Path]]) -> None:
    """No two projects share a file, also where case does not count (Windows, macOS)."""
    seen: dict[str, str] = {}
    for pid, paths in files.items():
        name = paths[0].stem.casefold()
        if seen.setdefault(name, pid) != pid:
            raise GreenscreenError(
                f"projects {seen[name]!r} and {pid!r} would share the pack file {paths[0].name}"
            )


def _link_packs(
    previous: Path, run_key: str, row_keys: dict[str, str], files: dict[str, list[Path]]
) -> dict[str, str]:
    """Hard-link the packs in ``previous`` that are up to date (same run key and results row)
    into place; their manifest entries. Never follows a symlink out of ``previous``."""
    if previous.is_symlink() or not previous.is_dir():
        return {}
    manifest = _read_manifest(previous, run_key)
    linked: dict[str, str] = {}
    for pid, key in row_keys.items():
        olds = [previous / path.name for path in files[pid]]
        if manifest.get(pid) != key or not all(o.is_file() and not o.is_symlink() for o in olds):
            continue
        try:
            for old, path in zip(olds, files[pid], strict=True):
                os.link(old, path)
        except OSError:  # no hard links here (FAT, some network drives): write them
            break
        linked[pid] = key
    return linked


def _fingerprints(
    result: ScreenResult, ids: list[str], lang: str, formats: tuple[str, ...]
) -> tuple[str, dict[str, str]]:
    """A key for the run (everything a pack shows that is not in its results row) and one
    per project (its results row)."""
    meta = result.metadata()
    meta.pop("counts", None)
    run = {"meta": meta, "lang": lang, "formats": formats, "polars": pl.__version__}
    run_key = hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()
    rows = result.results.filter(pl.col("project_id").is_in(ids))
    hashes = rows.hash_rows(seed=0).cast(pl.String)
    return run_key, dict(zip(rows["project_id"].to_list(), hashes.to_list(), strict=True))


def _read_manifest(out: Path, run_key: str) -> dict[str, str]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("run") != run_key:
        return {}  # another run, other options: write everything again
    projects = data.get("projects")
    return dict(projects) if isinstance(projects, dict) else {}


def _write_manifest(out: Path, run_key: str, projects: dict[str, str]) -> None:
    text = json.dumps({"run": run_key, "projects": projects}, ensure_ascii=False, sort_keys=True)
    atomic_write(out / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


#: pack formats, in the order they are written, and their writers
FORMATS = ("xlsx", "html", "pdf")
_WRITERS = {"xlsx": write_excel_pack, "html": write_html_pack, "pdf": write_pdf_pack}


def _write_chunk(
    result: ScreenResult, out: Path, ids: list[str], lang: Lang, formats: tuple[str, ...]
) -> list[str]:
    for pid in ids:
        stem = safe_stem(pid)
        for fmt in formats:
            writer = _WRITERS[fmt]
            path = confined(out, f"{stem}.{fmt}")
            atomic_write(path, lambda tmp: writer(result, pid, tmp, lang=lang))  # noqa: B023
    return ids


def _run_chunks(
    result: ScreenResult,
    out: Path,
    chunks: list[list[str]],
    lang: Lang,
    formats: tuple[str, ...],
    workers: int,
) -> Iterator[list[str]]:
    """Yield each chunk of project ids once its packs are written."""
    if len(chunks) <= 1 and len(chunks[0] if chunks else []) == result.results.height:
        for chunk in chunks:
            yield _write_chunk(result, out, chunk, lang, formats)
        return
    if workers <= 1:
        for chunk in chunks:
            yield _write_chunk(result.subset(chunk), out, chunk, lang, formats)
        return
    # spawn, not fork: polars' thread pool does not survive a fork. Each worker receives only
    # its chunk's slice of the run.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {
            pool.submit(_write_chunk, result.subset(chunk), out, chunk, lang, formats)
            for chunk in chunks[: workers * 2]
        }
        queued = iter(chunks[workers * 2 :])
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                chunk = next(queued, [])
                if chunk:
                    pending.add(
                        pool.submit(_write_chunk, result.subset(chunk), out, chunk, lang, formats)
                    )
