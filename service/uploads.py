"""Parsing the files staff upload, so that a hostile file costs the citizens nothing.

A report (.docx, .html, .txt) or an FAQ table (.xlsx, .csv) of a few kilobytes can ask a
parser for gigabytes of memory and minutes of CPU: a zip member that inflates a
thousandfold, a spreadsheet that declares 16,384 columns, a page of half a million
inline tags. Three defences, outermost first:

* :func:`check_archive` reads a .docx/.xlsx zip's central directory, which states every
  member's size, and refuses the file before anything is inflated when a member, or all
  of them together, would inflate beyond :data:`MAX_MEMBER_BYTES` / :data:`MAX_TOTAL_BYTES`
  or a large member is compressed more than :data:`MAX_RATIO` times (real Office files stay
  well under 50). The readers (python-docx, openpyxl) read through :mod:`zipfile`, which
  never inflates a member past its declared size, so the checked sizes hold.
* Every parse runs in a fresh interpreter (a subprocess of ``sys.executable``) under
  :class:`Limits`: address space (``RLIMIT_AS``) beyond what the interpreter and its parsing
  libraries take, CPU seconds (``RLIMIT_CPU``), a wall-clock deadline (the parent kills the
  child; the child also arms ``alarm()`` in case its parent dies), a bounded output file and
  a lower priority. A fresh interpreter rather than ``fork``: a gunicorn worker holds a
  ~450 MB index and threads, and a forked child would inherit both, so a memory limit
  could not be set on the parse alone. The result comes back as JSON on the child's
  standard output, never as a pickle: the child has read hostile bytes.
* One parse at a time per host: a lock file, taken without waiting. A second upload is
  refused at once with :class:`ParserBusy` (HTTP 429) instead of queueing, because a
  worker waiting in a queue is a worker the citizens do not have.

A child that runs out of memory, time or CPU, or dies of a signal, becomes the Chinese
:data:`LIMIT_MESSAGE`; the callers raise it as the format error of what was uploaded, so
the upload pages answer 400 and nothing is written.

Pure Python (no Flask) and POSIX only: the views pass the lock file and the limits.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # the parsers are imported where they run, so the child loads only its own
    from .faq import ImportRow
    from .reports import Report

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)
MB = 1024 * 1024

#: Most members a .docx/.xlsx may have (Word and Excel write 10 to 30).
MAX_MEMBERS = 1_000
#: Largest inflated size of one member (the text of a 100-page report is about 5 MB).
MAX_MEMBER_BYTES = 32 * MB
#: Largest inflated size of all members together.
MAX_TOTAL_BYTES = 100 * MB
#: Highest compression ratio of a member above RATIO_FLOOR_BYTES (Word's own parts: 10 to 35).
MAX_RATIO = 100
#: Members smaller than this may compress as well as they like: they cannot hurt.
RATIO_FLOOR_BYTES = 1 * MB

LIMIT_MESSAGE = ("文件过大或过于复杂，无法在限定资源内解析（内存上限{memory}MB、计算时间上限{seconds}秒）。"
                 "请确认上传的是正常的文件；文件确实很大时，请删去其中的图片或无关内容后重新上传。")
UNREADABLE_MESSAGE = "无法解析该文件，文件可能已损坏，或其格式不受支持。"
BUSY_MESSAGE = "另一份上传的文件正在解析，为保证群众咨询不受影响，同一时间只解析一份。请稍等半分钟后重试。"


class ArchiveRefused(ValueError):
    """A .docx/.xlsx whose zip members would inflate too far; the message is plain Chinese."""


class ParserBusy(Exception):
    """Another upload is being parsed on this host; try again shortly."""

    def __init__(self) -> None:
        super().__init__(BUSY_MESSAGE)


class ParseFailed(Exception):
    """The parse child could not run at all (the server's fault, not the file's)."""


@dataclass(frozen=True)
class Limits:
    """What one parse may use.

    ``memory_mb`` is address space on top of the interpreter with its parsing libraries
    loaded. A valid 3.5 MB report in Word's HTML parses in about 2 s with a peak of 113 MB
    resident (it still parses with 100 MB of address space to spare); the FAQ's libraries
    alone take 120 MB. The defaults leave several times that, and keep ``wall_seconds``
    well inside gunicorn's 60 s worker timeout (preview and confirm parse once each).
    """

    memory_mb: int = 512
    cpu_seconds: int = 20
    wall_seconds: float = 30.0
    output_mb: int = 64

    @property
    def message(self) -> str:
        """The Chinese message for a parse that went over these limits."""
        return LIMIT_MESSAGE.format(memory=self.memory_mb, seconds=self.cpu_seconds)


@dataclass
class ParseStats:
    """What the last parse child cost: for logs and the benchmark."""

    seconds: float = 0.0
    peak_mb: float = 0.0  # the child's own peak resident set, or 0 when it was killed
    outcome: str = ""  # "ok", "refused" (the file's fault, said in words), "limits", "busy"


#: The cost of the last parse in this process.
LAST = ParseStats()


# -- archives --------------------------------------------------------------------------


def check_archive(data: bytes) -> None:
    """Refuse a zip whose members would inflate too far, before any member is inflated.

    Reads only the central directory. Data that is not a zip passes: the format's own
    reader then says in its words that the file is broken.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # BytesIO shares the bytes, no copy
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return
    if len(members) > MAX_MEMBERS:
        raise ArchiveRefused(f"文件中的部件过多（{len(members)}个，上限{MAX_MEMBERS}个），"
                             "不像正常的 Office 文档，已拒绝解析。")
    total = 0
    for member in members:
        size = member.file_size
        total += size
        if size > MAX_MEMBER_BYTES:
            raise ArchiveRefused(f"文件中的“{member.filename[:60]}”解压后有{_mb(size)}MB，超过单个部件"
                                 f"{_mb(MAX_MEMBER_BYTES)}MB的上限，已拒绝解析。")
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(member.compress_size, 1):
            ratio = size // max(member.compress_size, 1)
            raise ArchiveRefused(f"文件中的“{member.filename[:60]}”压缩比异常（{ratio}倍，上限{MAX_RATIO}倍），"
                                 "可能是恶意构造的“压缩炸弹”，已拒绝解析。")
    if total > MAX_TOTAL_BYTES:
        raise ArchiveRefused(f"文件解压后共有{_mb(total)}MB，超过{_mb(MAX_TOTAL_BYTES)}MB的上限，已拒绝解析。")


def _mb(size: int) -> str:
    return f"{size / MB:.0f}" if size >= 10 * MB else f"{size / MB:.1f}"


# -- the public entry points -------------------------------------------------------------


def parse_report(data: bytes, filename: str, *, agency: str | None = None, year: int | None = None,
                 lock_path: str | Path, limits: Limits = Limits()) -> Report:
    """:func:`reports.parse_report` in a limited child process.

    Raises :class:`reports.ReportFormatError` for a file that is not a report, is refused
    by :func:`check_archive`, or goes over ``limits``; :class:`ParserBusy` when another
    parse is running on this host.
    """
    from .reports import Report, ReportFormatError

    if PurePath(filename).suffix.lower() == ".docx":
        try:
            check_archive(data)
        except ArchiveRefused as exc:
            _set_stats(0.0, 0.0, "refused")
            raise ReportFormatError(str(exc)) from exc
    reply = _run("report", data, {"filename": filename, "agency": agency, "year": year}, lock_path, limits)
    if "report" in reply:
        try:
            return Report.from_dict(reply["report"])
        except (TypeError, KeyError) as exc:  # not what a parse child writes
            raise ReportFormatError(UNREADABLE_MESSAGE) from exc
    raise ReportFormatError(reply.get("message") or limits.message)


def parse_faq(data: bytes, filename: str, *, lock_path: str | Path, limits: Limits = Limits()) -> list[ImportRow]:
    """:func:`faq.parse_import` in a limited child process.

    Raises :class:`faq.ImportFormatError` (with the row and column at fault where the
    file has one) or :class:`ParserBusy`, like :func:`parse_report`.
    """
    from .faq import ImportFormatError, ImportRow

    if filename.lower().endswith(".xlsx"):
        try:
            check_archive(data)
        except ArchiveRefused as exc:
            _set_stats(0.0, 0.0, "refused")
            raise ImportFormatError(str(exc)) from exc
    reply = _run("faq", data, {"filename": filename}, lock_path, limits)
    if "rows" in reply:
        try:
            return [ImportRow(**row) for row in reply["rows"]]
        except TypeError as exc:  # not what a parse child writes
            raise ImportFormatError(UNREADABLE_MESSAGE) from exc
    error = ImportFormatError(reply.get("message") or limits.message)
    error.row, error.column = reply.get("row"), reply.get("column")
    raise error


# -- the parent's side -------------------------------------------------------------------


@contextmanager
def parse_slot(lock_path: str | Path) -> Iterator[int]:
    """Hold this host's one parse slot, or raise :class:`ParserBusy` at once.

    ``flock`` on a lock file: released when the holder (or the child it passed the lock
    to) exits, however it exits, so a killed worker never leaves the slot taken.
    """
    import fcntl

    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParserBusy() from None
        yield fd
    finally:
        os.close(fd)


_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from service.uploads import child_main; child_main()"
_READY = b"ready\n"  # written by the child once its libraries are loaded and its limits set


def _run(kind: str, data: bytes, job: dict[str, Any], lock_path: str | Path, limits: Limits) -> dict[str, Any]:
    """Run one job in a fresh limited interpreter; its JSON reply, or ``{}`` when it went
    over its limits."""
    started = time.monotonic()
    params = {"kind": kind, **job, "memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds,
              "wall_seconds": limits.wall_seconds, "output_mb": limits.output_mb}
    try:
        with parse_slot(lock_path) as lock_fd, tempfile.TemporaryFile() as fin, \
                tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(data)
            fin.flush()
            fin.seek(0)
            # The child inherits the slot's lock, so the slot stays taken while it lives.
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOTSTRAP, str(ROOT), json.dumps(params)],
                stdin=fin, stdout=fout, stderr=ferr, pass_fds=(lock_fd,),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"})
            try:
                proc.wait(timeout=limits.wall_seconds)
                timed_out = False
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                timed_out = True
            fout.seek(0)
            output = fout.read(limits.output_mb * MB + 1)
            ferr.seek(0)
            errors = ferr.read(64 * 1024)
    except ParserBusy:
        _set_stats(0.0, 0.0, "busy")
        raise
    elapsed = time.monotonic() - started
    if errors.strip() != _READY.strip():
        log.warning("parse child (%s, %s) wrote: %s", kind, job.get("filename"),
                    errors.decode("utf-8", "replace")[-4000:])
    reply: dict[str, Any] | None = None
    if not timed_out and proc.returncode == 0:
        try:
            reply = json.loads(output)
        except ValueError:
            reply = None
    if reply is None and not timed_out and not errors.startswith(_READY):
        # It died before it read the file: a broken installation, not a hostile file.
        raise ParseFailed(f"parse child failed to start (exit status {proc.returncode})")
    if reply is None or reply.get("error") == "limits":
        _set_stats(elapsed, 0.0, "limits")
        log.info("parse child (%s) went over its limits after %.1f s (exit status %s)",
                 kind, elapsed, proc.returncode)
        return {}
    _set_stats(elapsed, float(reply.get("peak_mb") or 0), "refused" if "error" in reply else "ok")
    return reply


def _set_stats(seconds: float, peak_mb: float, outcome: str) -> None:
    LAST.seconds, LAST.peak_mb, LAST.outcome = seconds, peak_mb, outcome


# -- the child's side ------------------------------------------------------------------


def child_main() -> None:
    """Entry point of the parse child: read the file on stdin, write a JSON reply on stdout."""
    params = json.loads(sys.argv[2])
    kind = params["kind"]
    # Load the libraries first (only the file type's), so the memory limit is the parse's own.
    if kind == "report":
        from . import reports  # noqa: F401

        suffix = PurePath(params["filename"]).suffix.lower()
        if suffix == ".docx":
            import docx  # noqa: F401
        elif suffix in (".html", ".htm"):
            import bs4  # noqa: F401
            import lxml.etree  # noqa: F401
    else:
        import openpyxl  # noqa: F401

        from . import faq  # noqa: F401
    _limit_self(params)
    os.write(2, _READY)
    data = sys.stdin.buffer.read()
    try:
        reply = _child_job(kind, data, params)
    except MemoryError:
        reply = {"error": "limits"}
    reply["peak_mb"] = _peak_mb()
    sys.stdout.buffer.write(json.dumps(reply, ensure_ascii=False).encode("utf-8"))
    sys.stdout.buffer.flush()


def _child_job(kind: str, data: bytes, params: dict[str, Any]) -> dict[str, Any]:
    if kind == "report":
        from .reports import ReportFormatError as FormatError
        from .reports import parse_report
    else:
        from .faq import ImportFormatError as FormatError  # type: ignore[assignment]
        from .faq import parse_import
    try:
        if kind == "report":
            report = parse_report(data, params["filename"], agency=params.get("agency"), year=params.get("year"))
            return {"report": report.to_dict()}
        return {"rows": [vars(row) for row in parse_import(data, params["filename"])]}
    except FormatError as exc:
        if _out_of_memory(exc):  # a reader that put its own words on an allocation failure
            return {"error": "limits"}
        return {"error": "format", "message": str(exc), "row": getattr(exc, "row", None),
                "column": getattr(exc, "column", None)}
    except Exception as exc:  # noqa: BLE001 - whatever a library raised, the file caused it
        if _out_of_memory(exc):
            return {"error": "limits"}
        traceback.print_exc()
        return {"error": "format", "message": UNREADABLE_MESSAGE}


def _out_of_memory(exc: BaseException) -> bool:
    """Whether an exception, or one it was raised from, is an allocation failure."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, MemoryError) or "memory allocation failed" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _limit_self(params: dict[str, Any]) -> None:
    """Set the child's own limits (after its imports, before it reads the file)."""
    import resource

    budget = int(params["memory_mb"]) * MB
    address_space = _status_kb("VmSize") * 1024
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space + budget, address_space + budget))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + max(1, int(params["cpu_seconds"]))  # after the imports
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    output = int(params["output_mb"]) * MB
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Should the parent die, the child still ends (SIGALRM's default action terminates).
    signal.alarm(int(float(params["wall_seconds"])) + 5)
    os.nice(10)  # the citizens' workers come first


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in kB (0 where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _peak_mb() -> float:
    """The child's peak resident set in MB (VmHWM; ru_maxrss would count the parent's pages
    the child briefly mapped before it became a new program)."""
    import resource

    kb = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024, 1)
