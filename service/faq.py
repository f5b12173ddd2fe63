"""The FAQ knowledge base as curators edit it: entries and their alternates, synonyms and
dictionary words, and the whole FAQ as a spreadsheet (export; import with a preview).

Pure Python (no Flask). Every write runs in one ``BEGIN IMMEDIATE`` transaction, records
an audit row and bumps the knowledge version, so every worker process rebuilds its
matcher at its next question.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlite_utils

from . import entry_versions
from .accounts import audit
from .audit_text import Change, field_changes
from .knowledge import FAQ_STATUSES, bump_version, now
from .storage import immediate
from .text import clean, is_number
from .uploads import ArchiveRefused, check_archive

STATUS_NAMES = {"published": "发布", "draft": "草稿", "archived": "归档"}
FIELD_NAMES = {"key": "编号", "question": "标准问题", "alternates": "相似问法", "answer": "答案",
               "category": "分类", "source": "来源", "status": "状态"}
COLUMNS = ("key", "question", "alternates", "answer", "category", "source", "status")
HEADERS = tuple(FIELD_NAMES[c] for c in COLUMNS)
EDITABLE = ("question", "answer", "category", "source", "status")
# Longest accepted value of each field (characters); 相似问法 is a whole cell of alternates.
LIMITS = {"key": 64, "question": 200, "alternates": 20_000, "answer": 5_000, "category": 20,
          "source": 200, "status": 10}
REQUIRED = ("key", "question", "answer", "status")
MAX_ALTERNATE = 200
MAX_ROWS = 5_000
MAX_TERM = 20
MAX_FREQ = 10_000_000
PAGE_SIZE = 50
#: Changed entries whose before/after text an import preview shows (the rest by field name).
MAX_PREVIEW_DIFFS = 100

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SPACE_RE = re.compile(r"\s+")
_PUNCT_RE = re.compile(r"[^\w\u4e00-\u9fff]+|_")
_STATUS_WORDS = {**{v: k for k, v in STATUS_NAMES.items()}, **{s: s for s in FAQ_STATUSES}}
# Spreadsheet programs run a CSV cell that starts with one of the first six as a formula
# (some drop a leading tab or CR first). The export puts an apostrophe before such a cell,
# and before a cell that starts with an apostrophe itself, so that the import can take
# exactly one off again and every text comes back as it was.
_CSV_GUARDED = ("=", "+", "-", "@", "\t", "\r", "'")
#: Columns read from an import file (the FAQ has 7; the rest are ignored, however many a
#: spreadsheet declares).
MAX_COLUMNS = 50


class FaqError(Exception):
    """A curator's change was refused; the message is plain Chinese."""


class EntryNotFound(FaqError):
    """No FAQ entry (or alternate) with that id."""

    def __init__(self) -> None:
        super().__init__("该条目不存在。")


class InvalidEntry(FaqError):
    """Field values that cannot be saved, with one message per field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("；".join(errors.values()))
        self.errors = errors


class StaleEdit(FaqError):
    """The form was opened on an older version of the entry; nothing was saved."""

    def __init__(self, current: dict[str, Any]):
        super().__init__("该条目已被他人修改，您的修改未保存。下方是当前内容，请刷新后重新编辑。")
        self.current = current


class ImportFormatError(FaqError):
    """An import file that cannot be applied, naming the row and column at fault."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None):
        where = (f"第{row}行" if row else "") + (f"“{column}”列" if column else "")
        super().__init__(where + message)
        self.row, self.column = row, column


# -- entries ----------------------------------------------------------------------


def _same_key(text: str) -> str:
    """What two phrasings must share to count as the same question (？ and spaces aside)."""
    return _PUNCT_RE.sub("", clean(text))


def _one_line(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def categories(db: sqlite_utils.Database) -> list[str]:
    """The categories in use, for the form's suggestions and the list's filter."""
    return [r[0] for r in db.execute("select distinct category from entries "
                                     "where coalesce(category, '') != '' order by category")]


def list_entries(db: sqlite_utils.Database, *, q: str = "", category: str = "", status: str = "",
                 page: int = 1, per_page: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int]:
    """One page of entries matching a search text (question, alternates, answer) and filters,
    and the number of all matching entries."""
    where, params = ["1 = 1"], []
    if q.strip():
        like = "%" + re.sub(r"([\\%_])", r"\\\1", q.strip()) + "%"
        where.append("(e.question like ? escape '\\' or e.answer like ? escape '\\' or exists "
                     "(select 1 from alternates a where a.entry_id = e.id and a.text like ? escape '\\'))")
        params += [like, like, like]
    if category:
        where.append("e.category = ?")
        params.append(category)
    if status in FAQ_STATUSES:
        where.append("e.status = ?")
        params.append(status)
    clause = " and ".join(where)
    total = db.execute(f"select count(*) from entries e where {clause}", params).fetchone()[0]
    rows = db.query(
        f"select e.id, e.key, e.question, e.category, e.status, e.updated, "
        f"(select count(*) from alternates a where a.entry_id = e.id) as alternates "
        f"from entries e where {clause} order by e.id limit ? offset ?",
        [*params, per_page, (max(page, 1) - 1) * per_page])
    return list(rows), total


def get_entry(db: sqlite_utils.Database, entry_id: int) -> dict[str, Any]:
    """An entry with its alternates (``[{"id", "text"}]``); raise :class:`EntryNotFound`."""
    rows = list(db.query("select * from entries where id = ?", [entry_id]))
    if not rows:
        raise EntryNotFound()
    entry = rows[0]
    entry["alternates"] = list(db.query("select id, text from alternates where entry_id = ? order by id",
                                        [entry_id]))
    return entry


def _snapshot(db: sqlite_utils.Database, entry_id: int) -> dict[str, Any]:
    """The entry as the audit log records it: fields and alternate texts."""
    entry = get_entry(db, entry_id)
    return {**{k: entry[k] for k in ("key", *EDITABLE, "version")},
            "alternates": [a["text"] for a in entry["alternates"]]}


def validate_entry(data: Mapping[str, Any], *, new: bool = False) -> dict[str, str]:
    """The cleaned fields of an entry form; raise :class:`InvalidEntry` with every problem."""
    fields = {name: str(data.get(name) or "").strip() for name in ("key", *EDITABLE)}
    fields["question"] = _one_line(fields["question"])
    fields["answer"] = fields["answer"].replace("\r\n", "\n").replace("\r", "\n")  # browsers send CRLF
    fields["status"] = fields["status"] or "published"
    errors: dict[str, str] = {}
    for name in ("question", "answer"):
        if not fields[name]:
            errors[name] = f"{FIELD_NAMES[name]}不能为空。"
    for name in ("key", *EDITABLE):
        if len(fields[name]) > LIMITS[name]:
            errors[name] = f"{FIELD_NAMES[name]}不能超过{LIMITS[name]}个字。"
    if fields["status"] not in FAQ_STATUSES:
        errors["status"] = "状态无效，应为发布、草稿或归档。"
    if new and fields["key"] and not _KEY_RE.match(fields["key"]):
        errors["key"] = "编号只能由字母、数字和 - _ . 组成（可留空自动生成）。"
    if errors:
        raise InvalidEntry(errors)
    if not new:
        del fields["key"]
    return fields


def _saved(db: sqlite_utils.Database, user: dict[str, Any] | None, action: str, entry_id: int,
           before: dict[str, Any] | None = None, note: str | None = None) -> dict[str, Any]:
    """Keep the entry's new version in its history and return its snapshot."""
    after = _snapshot(db, entry_id)
    entry_versions.record(db, user, entry_id, action, after, before, note)
    return after


def record_version(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int, action: str,
                   before: dict[str, Any] | None = None) -> None:
    """Keep the entry's current content in its history, inside the caller's transaction, for
    code outside this module that writes an entry (e.g. a ticket promoted to a draft entry);
    ``before`` is the entry's :func:`_snapshot` before the write, if it existed."""
    _saved(db, user, action, entry_id, before)


def snapshot(db: sqlite_utils.Database, entry_id: int) -> dict[str, Any]:
    """The entry as its history and the audit log record it (for :func:`record_version`'s ``before``)."""
    return _snapshot(db, entry_id)


def _touch(db: sqlite_utils.Database, entry_id: int, **values: Any) -> None:
    """Write fields of an entry, counting one more version."""
    sets = "".join(f"{name} = ?, " for name in values)
    db.execute(f"update entries set {sets}version = version + 1, updated = ? where id = ?",
               [*values.values(), now(), entry_id])


def create_entry(db: sqlite_utils.Database, user: dict[str, Any] | None, data: Mapping[str, Any]) -> int:
    """Create an entry from form fields and return its id; a blank 编号 becomes ``faq-<id>``."""
    fields = validate_entry(data, new=True)
    with immediate(db):
        if fields["key"] and db.execute("select 1 from entries where key = ?", [fields["key"]]).fetchone():
            raise InvalidEntry({"key": f"编号“{fields['key']}”已被其他条目使用。"})
        stamp = now()
        entry_id = int(db["entries"].insert({**fields, "key": fields["key"] or None, "version": 1,
                                             "created": stamp, "updated": stamp}).last_pk)
        if not fields["key"]:
            key, n = f"faq-{entry_id}", 1
            while db.execute("select 1 from entries where key = ?", [key]).fetchone():
                n += 1
                key = f"faq-{entry_id}-{n}"
            db.execute("update entries set key = ? where id = ?", [key, entry_id])
        audit(db, user, "create_entry", f"entry:{entry_id}", after=_saved(db, user, "create_entry", entry_id))
        bump_version(db, "entries", [entry_id])
    return entry_id


def update_entry(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int,
                 data: Mapping[str, Any], version: Any) -> bool:
    """Save an edit made on ``version`` of the entry; return whether anything changed.

    Raises :class:`StaleEdit` (with the current entry) if someone saved in between, and
    :class:`InvalidEntry` for bad values; in both cases nothing is written.
    """
    with immediate(db):
        current = get_entry(db, entry_id)
        if str(current["version"]) != str(version).strip():
            raise StaleEdit(current)
        fields = validate_entry(data)
        changed = {k: v for k, v in fields.items() if v != (current[k] or "")}
        if not changed:
            return False
        before = _snapshot(db, entry_id)
        _touch(db, entry_id, **changed)
        audit(db, user, "update_entry", f"entry:{entry_id}", before=before,
              after=_saved(db, user, "update_entry", entry_id, before))
        bump_version(db, "entries", [entry_id])
    return True


def set_status(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int, status: str) -> None:
    """Archive an entry (it leaves the chat's answers) or restore it as published."""
    with immediate(db):
        before = _snapshot(db, entry_id)
        if before["status"] == status:
            return
        _touch(db, entry_id, status=status)
        action = "archive_entry" if status == "archived" else "restore_entry"
        audit(db, user, action, f"entry:{entry_id}", before=before, after=_saved(db, user, action, entry_id, before))
        bump_version(db, "entries", [entry_id])


def _alternate_problem(text: str, question: str, others: list[str]) -> str | None:
    if not text:
        return "相似问法不能为空。"
    if len(text) > MAX_ALTERNATE:
        return f"相似问法不能超过{MAX_ALTERNATE}个字。"
    if _same_key(text) == _same_key(question):
        return f"相似问法“{text}”与标准问题相同。"
    if _same_key(text) in {_same_key(o) for o in others}:
        return f"相似问法“{text}”在本条目中重复。"
    return None


def has_phrasing(db: sqlite_utils.Database, entry_id: int, text: str) -> bool:
    """Whether an entry already asks ``text``, as its question or an alternate (？ and spaces aside)."""
    target = _same_key(_one_line(text))
    rows = db.query("select question as text from entries where id = ? union all "
                    "select text from alternates where entry_id = ?", [entry_id, entry_id])
    return any(_same_key(r["text"]) == target for r in rows)


# Bump when ``_same_key`` (or the ``clean`` it relies on) changes: stored keys are then
# worked out again. The converter's version is part of the stamp for the same reason.
SAME_KEY_VERSION = 1
# Keys longer than this are stored as a digest (an index entry has a size limit in PostgreSQL).
MAX_STORED_KEY = 200


def same_key(text: str) -> str:
    """A phrasing's comparison key as stored in ``same_key`` (see :func:`_same_key`)."""
    key = _same_key(text)
    return key if len(key) <= MAX_STORED_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@functools.cache
def _same_key_stamp() -> str:
    """What the stored keys were worked out with: the comparison's version, the Unicode
    data of this Python (NFKC, case folding) and the converter loaded in this process."""
    import unicodedata

    import opencc

    return f"{SAME_KEY_VERSION}/unicode {unicodedata.unidata_version}/opencc {getattr(opencc, '__version__', '?')}"


# Rows written per transaction when keys are filled or reset: at 100,000 entries the first
# fill after an upgrade writes half a million rows, and one transaction would hold every
# citizen's ticket write back for seconds.
FILL_CHUNK = 2_000


def fill_same_keys(db: sqlite_utils.Database) -> int:
    """Work out the comparison keys not stored yet (new or changed phrasings, or all of them
    after ``SAME_KEY_VERSION`` or the converter changed); return how many were written."""
    stamp = _same_key_stamp()
    row = db.execute("select value from meta where key = 'same_key_stamp'").fetchone()
    if row is None or row[0] != stamp:
        # Reset first, stamp last: if this stops half-way the next call starts again.
        for table in ("entries", "alternates"):
            ids = [r[0] for r in db.execute(f"select id from {table} where same_key is not null")]
            for at in range(0, len(ids), FILL_CHUNK):
                part = ids[at:at + FILL_CHUNK]
                with immediate(db):
                    db.execute(f"update {table} set same_key = null where id in ({', '.join('?' * len(part))})", part)
        with immediate(db):
            db.execute("insert or replace into meta (key, value) values ('same_key_stamp', ?)", [stamp])
    written = 0
    for table, column in (("entries", "question"), ("alternates", "text")):
        missing = db.execute(f"select id, {column} from {table} where same_key is null").fetchall()
        for at in range(0, len(missing), FILL_CHUNK):
            keyed = [(same_key(text or ""), rid, text) for rid, text in missing[at:at + FILL_CHUNK]]
            with immediate(db):
                # Only if the text is still the one keyed (a save in between resets it anyway).
                db.conn.executemany(f"update {table} set same_key = ? where id = ? and {column} = ?", keyed)
            written += len(keyed)
    return written


def shared_phrasings(db: sqlite_utils.Database, text: str, entry_id: int | None) -> list[dict[str, Any]]:
    """Other entries that already have this phrasing as question or alternate: an indexed
    lookup of the stored keys (a phrasing not keyed yet is keyed here)."""
    target = same_key(text)
    fill_same_keys(db)
    rows = db.query("select id, key, question as text, question, same_key from entries "
                    "where id != ? and (same_key = ? or same_key is null) union all "
                    "select e.id, e.key, a.text, e.question, a.same_key from alternates a "
                    "join entries e on e.id = a.entry_id where e.id != ? and (a.same_key = ? or a.same_key is null)",
                    [entry_id or 0, target, entry_id or 0, target])
    # A phrasing written since the keys were filled has none yet: compared here.
    found = {r["id"]: {"id": r["id"], "key": r["key"], "question": r["question"]}
             for r in rows if (r["same_key"] if r["same_key"] is not None else same_key(r["text"] or "")) == target}
    return list(found.values())


def add_alternate(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int,
                  text: str) -> list[str]:
    """Add one alternate phrasing; return warnings (the same phrasing on other entries)."""
    text = _one_line(text)
    with immediate(db):
        entry = get_entry(db, entry_id)
        problem = _alternate_problem(text, entry["question"], [a["text"] for a in entry["alternates"]])
        if problem:
            raise FaqError(problem)
        before = _snapshot(db, entry_id)
        alt_id = db["alternates"].insert({"entry_id": entry_id, "text": text, "created": now()}).last_pk
        _touch(db, entry_id)
        _saved(db, user, "add_alternate", entry_id, before)
        audit(db, user, "add_alternate", f"entry:{entry_id}", after={"id": alt_id, "text": text})
        bump_version(db, "entries", [entry_id])
    # After the commit: at 100,000 entries the scan takes seconds, and inside the
    # transaction it held every citizen's ticket write back as long.
    others = shared_phrasings(db, text, entry_id)
    return [f"注意：条目“{o['question']}”（编号 {o['key']}）也有相同的问法“{text}”，"
            "群众这样问时可能得到其中任一条的答案或被要求澄清。" for o in others]


def remove_alternate(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int,
                     alternate_id: int) -> None:
    """Remove one alternate phrasing of an entry."""
    with immediate(db):
        row = db.execute("select text from alternates where id = ? and entry_id = ?",
                         [alternate_id, entry_id]).fetchone()
        if row is None:
            raise EntryNotFound()
        before = _snapshot(db, entry_id)
        db.execute("delete from alternates where id = ?", [alternate_id])
        _touch(db, entry_id)
        _saved(db, user, "remove_alternate", entry_id, before)
        audit(db, user, "remove_alternate", f"entry:{entry_id}", before={"id": alternate_id, "text": row[0]})
        bump_version(db, "entries", [entry_id])


def entry_history(db: sqlite_utils.Database, entry_id: int) -> list[dict[str, Any]]:
    """The entry's kept versions, newest first, with what each changed (see
    :func:`service.entry_versions.history`)."""
    return entry_versions.history(db, entry_id, {"status": STATUS_NAMES})


def restore_version(db: sqlite_utils.Database, user: dict[str, Any] | None, entry_id: int, version: int,
                    current_version: Any) -> int:
    """Make an earlier version the entry's content again, alternates included, as a new
    version; return the new version's number.

    Raises :class:`StaleEdit` if the entry changed since the page showed ``current_version``,
    and :class:`FaqError` for an unknown version or one equal to the current content.
    """
    with immediate(db):
        current = get_entry(db, entry_id)
        if str(current["version"]) != str(current_version).strip():
            raise StaleEdit(current)
        old = entry_versions.get(db, entry_id, version)
        if old is None:
            raise FaqError(f"该条目没有第 {version} 版。")
        before = _snapshot(db, entry_id)
        wanted = entry_versions.content(old)
        if wanted == entry_versions.content(before):
            raise FaqError(f"第 {version} 版与当前内容相同，无需恢复。")
        fields = {k: wanted.get(k) or "" for k in EDITABLE}
        if fields["status"] not in FAQ_STATUSES:
            fields["status"] = "draft"
        _touch(db, entry_id, **fields)
        db.execute("delete from alternates where entry_id = ?", [entry_id])
        stamp = now()
        db["alternates"].insert_all({"entry_id": entry_id, "text": t, "created": stamp}
                                    for t in wanted.get("alternates") or [])
        after = _saved(db, user, "restore_version", entry_id, before, note=f"恢复为第 {version} 版的内容")
        audit(db, user, "restore_version", f"entry:{entry_id}", before=before, after={**after, "restored_from": version})
        bump_version(db, "entries", [entry_id])
    return int(after["version"])


# -- the test pane ----------------------------------------------------------------


def explain_question(desk: Any, question: str) -> dict[str, Any]:
    """What the chat would do with a question, each candidate named by what it refers to.

    ``desk`` is a :class:`service.desk.Desk`; candidates gain ``label``, and ``entry_id``
    (FAQ) or ``report_id`` (report row or passage).
    """
    result = desk.explain(question)
    docs = {d.key: d for d in desk.index.docs}
    for cand in result["candidates"]:
        doc = docs.get(cand["key"])
        cand["label"], cand["entry_id"], cand["report_id"] = "", None, None
        if doc is None:
            continue
        if doc.kind == "faq":
            cand["entry_id"] = doc.ref
            cand["label"] = desk.entries[doc.ref]["question"]
        elif doc.kind == "fact":
            labels = [next(iter(cells.values()))["row_label"]
                      for (_, row), cells in desk.facts.items() if row == doc.ref]
            cand["label"] = "报告表格行：" + (labels[0] if labels else doc.phrasings[0])
        elif doc.kind == "passage":
            passage = desk.passages[doc.ref]
            report = desk.reports_by_id.get(passage["report_id"])
            cand["report_id"] = passage["report_id"]
            cand["label"] = f"{report.name if report else ''}报告正文：{passage['text'][:60]}"
    return result


# -- export -----------------------------------------------------------------------


def export_rows(db: sqlite_utils.Database) -> list[list[str]]:
    """The whole FAQ as a table: the header, then one row per entry in id order."""
    alternates: dict[int, list[str]] = {}
    for row in db.query("select entry_id, text from alternates order by id"):
        alternates.setdefault(row["entry_id"], []).append(row["text"])
    rows = [list(HEADERS)]
    for e in db.query("select * from entries order by id"):
        rows.append([e["key"] or "", e["question"], "\n".join(alternates.get(e["id"], [])), e["answer"],
                     e["category"] or "", e["source"] or "", STATUS_NAMES.get(e["status"], e["status"])])
    return rows


def export_csv(db: sqlite_utils.Database) -> bytes:
    """The FAQ as CSV, UTF-8 with a byte-order mark (so Excel reads the Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in export_rows(db):
        writer.writerow([csv_guard(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_guard(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: an apostrophe before a cell that would start
    a formula, or that starts with an apostrophe (undone by :func:`csv_unguard`)."""
    return "'" + text if text.startswith(_CSV_GUARDED) else text


def csv_unguard(cell: str) -> str:
    """The text of a CSV cell written by :func:`csv_guard`: one apostrophe fewer, only
    where the export put one."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_CSV_GUARDED) else cell


def export_xlsx(db: sqlite_utils.Database) -> bytes:
    """The FAQ as an Excel workbook, one sheet, every cell text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = "常见问题"
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(export_rows(db), 1):
        for c, value in enumerate(row, 1):
            cell = sheet.cell(row=r, column=c, value=value)
            cell.data_type = "s"  # text, even when it starts with "="
            cell.alignment = wrap
            if r == 1:
                cell.font = Font(bold=True)
    for letter, width in zip("ABCDEFG", (22, 36, 36, 60, 12, 30, 8)):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- import -----------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _read_csv(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on Chinese Windows saves CSV as GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFormatError("文件编码无法识别，请保存为 UTF-8 编码的 CSV 文件。")
    rows: list[list[Any]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            rows.append([csv_unguard(cell) for cell in row[:MAX_COLUMNS]])
            if len(rows) > MAX_ROWS + 1:
                break
    except csv.Error as exc:
        raise ImportFormatError(f"CSV 格式错误（{exc}）。", row=len(rows) + 1) from exc
    return rows


def _read_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        check_archive(data)  # before anything is inflated
    except ArchiveRefused as exc:
        raise ImportFormatError(str(exc)) from exc
    rows: list[list[Any]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # style warnings of workbooks from other programs
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                # Explicit bounds, never the sheet's declared <dimension>: "A1:XFD5001" in a
                # 5 KB file would otherwise pad every row to 16,384 cells.
                for row in book.worksheets[0].iter_rows(max_row=MAX_ROWS + 2, max_col=MAX_COLUMNS,
                                                        values_only=True):
                    width = len(row)
                    while width and row[width - 1] is None:
                        width -= 1
                    rows.append(list(row[:width]))
            finally:
                book.close()
    except Exception as exc:  # noqa: BLE001 - any failure to read a workbook is the file's fault
        # (bad zip, malformed XML, missing parts, openpyxl's own errors)
        raise ImportFormatError("无法读取该 Excel 文件，请确认是 .xlsx 格式。") from exc
    return rows


def read_table(data: bytes, filename: str) -> list[list[str]]:
    """The cells of an uploaded .xlsx or .csv file as text, header row first."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        raw = _read_xlsx(data)
    elif name.endswith(".csv"):
        raw = _read_csv(data)
    else:
        raise ImportFormatError("只支持 .xlsx（Excel）或 .csv 格式的文件。")
    return [[_cell_text(v) for v in row] for row in raw]


@dataclass
class ImportRow:
    """One entry as the file states it."""

    row: int
    key: str
    question: str
    alternates: list[str]
    answer: str
    category: str
    source: str
    status: str

    def fields(self) -> dict[str, Any]:
        """The entry's fields, as stored."""
        return {"question": self.question, "answer": self.answer, "category": self.category,
                "source": self.source, "status": self.status}


def parse_import(data: bytes, filename: str) -> list[ImportRow]:
    """Read and check an import file; raise :class:`ImportFormatError` at its first problem."""
    table = read_table(data, filename)
    if not table or not any(table[0]):
        raise ImportFormatError("文件为空，缺少表头。", row=1)
    header = table[0]
    positions: dict[str, int] = {}
    for column, name in FIELD_NAMES.items():
        if name not in header:
            raise ImportFormatError(f"缺少“{name}”列（表头应为：{' | '.join(HEADERS)}）。", row=1)
        if header.count(name) > 1:
            raise ImportFormatError(f"表头中“{name}”列出现了多次。", row=1)
        positions[column] = header.index(name)
    if len(table) - 1 > MAX_ROWS:
        raise ImportFormatError(f"超出上限：一次最多导入{MAX_ROWS}条。", row=MAX_ROWS + 2)
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(table[1:], 2):
        if not any(cells):
            continue  # spreadsheets often end with blank rows
        values = {c: cells[i] if i < len(cells) else "" for c, i in positions.items()}
        for column in COLUMNS:
            name = FIELD_NAMES[column]
            if len(values[column]) > LIMITS[column]:
                raise ImportFormatError(f"超过{LIMITS[column]}个字的上限。", number, name)
            if column in REQUIRED and not values[column]:
                raise ImportFormatError("为空。", number, name)
        key = values["key"]
        if not _KEY_RE.match(key):
            raise ImportFormatError("只能由字母、数字和 - _ . 组成。", number, "编号")
        if key in seen:
            raise ImportFormatError(f"与第{seen[key]}行重复：{key}。", number, "编号")
        seen[key] = number
        status = _STATUS_WORDS.get(values["status"].lower())
        if status is None:
            raise ImportFormatError(f"状态“{values['status']}”无效，应为发布、草稿或归档。", number, "状态")
        question = _one_line(values["question"])
        alternates: list[str] = []
        seen_keys: set[str] = set()
        for line in values["alternates"].split("\n"):
            line = _one_line(line)
            if line:
                line_key = _same_key(line)
                # The earlier lines are compared only for a line known to repeat one:
                # a cell of thousands of short lines stays linear.
                problem = _alternate_problem(line, question, alternates if line_key in seen_keys else [])
                if problem:
                    raise ImportFormatError(problem, number, "相似问法")
                alternates.append(line)
                seen_keys.add(line_key)
        rows.append(ImportRow(number, key, question, alternates, values["answer"], values["category"],
                              values["source"], status))
    return rows


@dataclass
class ImportPlan:
    """What applying a file would do.

    A file merges by default: its rows add or update entries, and the entries it lacks
    (``missing``) are kept. Only with ``archive_missing`` are they archived (``archived``).
    """

    added: list[ImportRow] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], ImportRow, list[str]]] = field(default_factory=list)
    archived: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    #: Each changed entry's fields as before/after text, by entry id.
    diffs: dict[int, list[Change]] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        """Whether applying would change anything."""
        return bool(self.added or self.changed or self.archived)

    @property
    def can_apply(self) -> bool:
        """Whether there is something to confirm: changes, or entries that could be archived."""
        return self.has_changes or bool(self.missing)

    def fingerprint(self) -> str:
        """A digest of the plan, to check that the knowledge did not change since the preview.

        It covers the entries the file lacks whether or not they are to be archived, so a
        preview taken without the option still guards a confirm made with it.
        """
        data = [[r.key for r in self.added], [(e["id"], e["version"], f) for e, _, f in self.changed],
                [(e["id"], e["version"]) for e in self.missing]]
        return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:32]


def _entry_content(entry: Mapping[str, Any], alternates: list[str]) -> dict[str, Any]:
    """An entry's fields as the preview compares them, in the file's column order."""
    return {"question": entry["question"], "alternates": alternates, "answer": entry["answer"],
            "category": entry["category"] or "", "source": entry["source"] or "", "status": entry["status"]}


def plan_import(db: sqlite_utils.Database, rows: list[ImportRow], archive_missing: bool = False) -> ImportPlan:
    """Compare the file with the database: entries to add and change, those the file lacks,
    and (only with ``archive_missing``) those to archive."""
    existing = {e["key"]: e for e in db.query("select * from entries order by id")}
    alternates: dict[int, list[str]] = {}
    for a in db.query("select entry_id, text from alternates order by id"):
        alternates.setdefault(a["entry_id"], []).append(a["text"])
    plan = ImportPlan()
    for row in rows:
        entry = existing.pop(row.key, None)
        if entry is None:
            plan.added.append(row)
            continue
        entry["alternates"] = alternates.get(entry["id"], [])
        changed = [FIELD_NAMES[k] for k, v in row.fields().items() if v != (entry[k] or "")]
        if set(row.alternates) != set(entry["alternates"]):
            changed.insert(1, FIELD_NAMES["alternates"])
        if changed:
            plan.changed.append((entry, row, changed))
        else:
            plan.unchanged += 1
    plan.missing = [e for e in existing.values() if e["status"] != "archived"]
    if archive_missing:
        plan.archived = list(plan.missing)
    return plan


def describe_changes(plan: ImportPlan, limit: int = MAX_PREVIEW_DIFFS) -> None:
    """Fill ``plan.diffs`` with the before/after text of the first ``limit`` changed entries
    (for the preview; never inside the import's transaction)."""
    for entry, row, _ in plan.changed[:limit]:
        old = _entry_content(entry, entry["alternates"])
        new = {**row.fields(), "alternates": row.alternates}
        if set(row.alternates) == set(entry["alternates"]):
            new["alternates"] = entry["alternates"]  # only the order differs: not a change
        plan.diffs[entry["id"]] = field_changes(old, {k: new[k] for k in old}, {"status": STATUS_NAMES})


def apply_import(db: sqlite_utils.Database, user: dict[str, Any] | None, rows: list[ImportRow],
                 expected: str | None = None, filename: str = "", archive_missing: bool = False,
                 archive_count: int | None = None) -> ImportPlan:
    """Apply a parsed file in one transaction: add and update entries; archive (never delete)
    the entries the file lacks only with ``archive_missing``.

    ``expected`` is the fingerprint of the plan the curator saw; if the knowledge changed
    since, nothing is applied and :class:`FaqError` asks for a new preview. ``archive_count``
    is the number of entries to archive the curator confirmed; any other number refuses.
    """
    with immediate(db):
        plan = plan_import(db, rows, archive_missing)
        if expected is not None and plan.fingerprint() != expected:
            raise FaqError("预览之后问答库已有变化，本次导入未执行。请重新上传文件并核对预览。")
        if archive_missing and archive_count is not None and archive_count != len(plan.archived):
            raise FaqError(f"确认归档的条数（{archive_count}条）与文件中没有的条目数（{len(plan.archived)}条）不一致，"
                           "本次导入未执行。请重新上传文件并核对预览。")
        if not plan.has_changes:
            return plan
        stamp = now()

        def audited(action: str, entry_id: int, before: dict[str, Any] | None = None) -> None:
            audit(db, user, action, f"entry:{entry_id}", before=before,
                  after=_saved(db, user, action, entry_id, before))

        touched: list[int] = [entry["id"] for entry, _, _ in plan.changed] + [entry["id"] for entry in plan.archived]
        for row in plan.added:
            entry_id = int(db["entries"].insert({"key": row.key, **row.fields(), "version": 1,
                                                 "created": stamp, "updated": stamp}).last_pk)
            touched.append(entry_id)
            db["alternates"].insert_all({"entry_id": entry_id, "text": t, "created": stamp}
                                        for t in row.alternates)
            audited("import_create", entry_id)
        for entry, row, _ in plan.changed:
            before = _snapshot(db, entry["id"])
            _touch(db, entry["id"], **row.fields())
            for text in set(entry["alternates"]) - set(row.alternates):
                db.execute("delete from alternates where entry_id = ? and text = ?", [entry["id"], text])
            db["alternates"].insert_all({"entry_id": entry["id"], "text": t, "created": stamp}
                                        for t in row.alternates if t not in entry["alternates"])
            audited("import_update", entry["id"], before)
        for entry in plan.archived:
            before = _snapshot(db, entry["id"])
            _touch(db, entry["id"], status="archived")
            audited("import_archive", entry["id"], before)
        counts = {"added": len(plan.added), "changed": len(plan.changed), "archived": len(plan.archived)}
        audit(db, user, "import_faq", "faq", after={"file": filename, **counts})
        bump_version(db, "entries", touched)
    return plan


# -- synonyms and dictionary words --------------------------------------------------


def _term(value: str, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise FaqError(f"{label}不能为空。")
    if _SPACE_RE.search(value):
        raise FaqError(f"{label}不能包含空格。")
    if len(value) > MAX_TERM:
        raise FaqError(f"{label}不能超过{MAX_TERM}个字。")
    return clean(value)  # as questions are cleaned: simplified, half-width, lower case


def list_synonyms(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """All synonym pairs, grouped by canonical term."""
    return list(db.query("select term, canonical, created from synonyms order by canonical, term"))


def list_words(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """All dictionary words."""
    return list(db.query("select word, freq, created from lexicon_words order by word"))


def add_synonym(db: sqlite_utils.Database, user: dict[str, Any] | None, term: str, canonical: str) -> str:
    """Map ``term`` to ``canonical`` in questions and knowledge; return the stored term.

    Mappings are one step (the matcher does not follow chains), so a term may not also be
    a canonical term, and a canonical term may not itself be mapped.
    """
    term, canonical = _term(term, "同义词"), _term(canonical, "标准词")
    if term == canonical:
        raise FaqError("同义词不能映射到自身。")
    with immediate(db):
        mapping = {r["term"]: r["canonical"] for r in db.query("select term, canonical from synonyms")}
        if term in mapping:
            raise FaqError(f"“{term}”已映射到“{mapping[term]}”，如需修改请先删除原映射。")
        if mapping.get(canonical) == term:
            raise FaqError(f"“{canonical}”已映射到“{term}”，再反向映射会形成循环。")
        if canonical in mapping:
            raise FaqError(f"“{canonical}”本身是“{mapping[canonical]}”的同义词，请直接映射到“{mapping[canonical]}”。")
        users = sorted(t for t, c in mapping.items() if c == term)
        if users:
            raise FaqError(f"“{term}”已是其他同义词（{'、'.join(users)}）的标准词，不能再映射到别的词。")
        db["synonyms"].insert({"term": term, "canonical": canonical, "created": now()})
        audit(db, user, "add_synonym", f"synonym:{term}", after={"term": term, "canonical": canonical})
        bump_version(db, "lexicon", [term, canonical])
    return term


def remove_synonym(db: sqlite_utils.Database, user: dict[str, Any] | None, term: str) -> None:
    """Remove a synonym pair."""
    _remove_lexicon_row(db, user, "synonyms", ("term", "canonical"), term, f"同义词“{term}”不存在。",
                        "remove_synonym", f"synonym:{term}")


def _remove_lexicon_row(db: sqlite_utils.Database, user: dict[str, Any] | None, table: str,
                        columns: tuple[str, str], key: str, missing: str, action: str, target: str) -> None:
    """Delete one row of a lexicon table by its key column, audited; ``missing`` if absent."""
    key_col, value_col = columns
    with immediate(db):
        row = db.execute(f"select {value_col} from {table} where {key_col} = ?", [key]).fetchone()
        if row is None:
            raise FaqError(missing)
        db.execute(f"delete from {table} where {key_col} = ?", [key])
        audit(db, user, action, target, before={key_col: key, value_col: row[0]})
        bump_version(db, "lexicon", [key, row[0]])


def list_paraphrases(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """All paraphrases (citizens' wording -> the knowledge's), by section."""
    return list(db.query("select variant, standard, section, created from paraphrases order by section, variant"))


PARAPHRASE_SECTIONS = {"colloquial": "口语说法", "regional": "港澳台用语", "cantonese": "粤语",
                       "english": "英文", "pinyin": "拼音", "dialect": "方言", "abbreviations": "简称缩写",
                       "curated": "馆员添加"}


def add_paraphrase(db: sqlite_utils.Database, user: dict[str, Any] | None, variant: str, standard: str,
                   section: str = "curated") -> str:
    """Rewrite ``variant`` to ``standard`` in citizens' questions before matching; return the variant."""
    variant = _term(variant, "群众说法")
    standard = (standard or "").strip()
    if not standard:
        raise FaqError("标准说法不能为空。")
    if len(standard) > MAX_TERM:
        raise FaqError(f"标准说法不能超过{MAX_TERM}个字。")
    standard = clean(standard)
    if variant == standard:
        raise FaqError("群众说法与标准说法相同，无需添加。")
    if section not in PARAPHRASE_SECTIONS:
        section = "curated"
    with immediate(db):
        row = db.execute("select standard from paraphrases where variant = ?", [variant]).fetchone()
        if row is not None:
            raise FaqError(f"“{variant}”已改写为“{row[0]}”，如需修改请先删除原条目。")
        db["paraphrases"].insert({"variant": variant, "standard": standard, "section": section, "created": now()})
        audit(db, user, "add_paraphrase", f"paraphrase:{variant}", after={"variant": variant, "standard": standard})
        bump_version(db, "lexicon", [variant, standard])
    return variant


def remove_paraphrase(db: sqlite_utils.Database, user: dict[str, Any] | None, variant: str) -> None:
    """Remove a paraphrase."""
    _remove_lexicon_row(db, user, "paraphrases", ("variant", "standard"), variant, f"说法“{variant}”不存在。",
                        "remove_paraphrase", f"paraphrase:{variant}")


def add_word(db: sqlite_utils.Database, user: dict[str, Any] | None, word: str, freq: Any = None) -> str:
    """Add a dictionary word (kept whole by the tokenizer), with an optional frequency."""
    word = _term(word, "词语")
    if len(word) < 2:
        raise FaqError("词典词至少2个字（单字不影响分词）。")
    text = str(freq or "").strip()
    if text and not (is_number(text) and 1 <= int(text) <= MAX_FREQ):
        raise FaqError(f"词频应为1至{MAX_FREQ}之间的整数，或留空自动设定。")
    value = int(text) if text else None
    with immediate(db):
        if db.execute("select 1 from lexicon_words where word = ?", [word]).fetchone():
            raise FaqError(f"“{word}”已在词典中。")
        db["lexicon_words"].insert({"word": word, "freq": value, "created": now()})
        audit(db, user, "add_word", f"word:{word}", after={"word": word, "freq": value})
        bump_version(db, "lexicon", [word])
    return word


def remove_word(db: sqlite_utils.Database, user: dict[str, Any] | None, word: str) -> None:
    """Remove a dictionary word from the database (see the lexicon page about running processes)."""
    _remove_lexicon_row(db, user, "lexicon_words", ("word", "freq"), word, f"词语“{word}”不在词典中。",
                        "remove_word", f"word:{word}")
