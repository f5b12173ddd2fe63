"""Reading the curator-editable files in ``knowledge/`` and seeding a new database.

Pure Python (no Flask). The files are the source of truth for a fresh installation;
after the first start, staff edit FAQ entries, synonyms and dictionary words in the
database, and later starts keep those edits.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from . import reports
from .storage import immediate
from .text import Lexicon, clean, parse_synonym_lines, parse_word_lines

FAQ_STATUSES = ("published", "draft", "archived")


class KnowledgeError(Exception):
    """A knowledge file is missing or malformed."""


def now() -> str:
    """The current time as an ISO 8601 string in UTC, as stored in the database."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise KnowledgeError(f"缺少知识文件：{path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"知识文件格式错误：{path}：{exc}") from exc


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise KnowledgeError(f"缺少知识文件：{path}") from exc


@dataclass
class Language:
    """Fillers, particles, stop words and quantity words from ``language.toml``."""

    fillers: list[str]
    particles: str
    stopwords: set[str]
    quantity_words: list[str]
    stop_prefixes: tuple[str, ...]
    question_words: set[str]
    not_quantity_words: list[str]
    disclosure_words: tuple[str, ...] = ()
    contact_labels: tuple[str, ...] = ()


def read_language(folder: Path) -> Language:
    """Load ``language.toml``."""
    data = _read_toml(folder / "language.toml")
    return Language(
        fillers=list(data.get("fillers", [])),
        particles=str(data.get("particles", "")),
        stopwords={clean(w) for w in data.get("stopwords", [])},
        quantity_words=[clean(w) for w in data.get("quantity_words", [])],
        stop_prefixes=tuple(clean(w) for w in data.get("stop_prefixes", [])),
        question_words={clean(w) for w in data.get("question_words", [])},
        not_quantity_words=[clean(w) for w in data.get("not_quantity_words", [])],
        disclosure_words=tuple(clean(w) for w in data.get("disclosure_words", [])),
        contact_labels=tuple(str(w) for w in data.get("contact_labels", []) if str(w).strip()),
    )


def read_chitchat(folder: Path) -> dict[str, Any]:
    """Load the small-talk intents and soft words from ``chitchat.toml``."""
    return _read_toml(folder / "chitchat.toml")


CONTACT_FIELDS = {"address": "地址", "postcode": "邮编", "phone": "咨询电话", "hours": "受理时间",
                  "email": "电子邮箱", "fax": "传真", "website": "网站"}


def read_agency(folder: Path) -> dict[str, str]:
    """The agency's settings from ``agency.toml``, as the placeholders answers may use:
    {address}, {phone}, {hours}, {email}, {fax}, {website}, {postcode}, {contact}, {published_in}.

    A value the agency has not filled in becomes a pointer to where it is published, never
    a guess; {contact} lists the values that are known.
    """
    path = folder / "agency.toml"
    data = _read_toml(path) if path.exists() else {}
    agency = data.get("agency", {})
    contact = data.get("contact", {})
    published_in = str(agency.get("published_in", "") or "本机关政府信息公开指南")
    fill = {"published_in": published_in, "agency": str(agency.get("name", ""))}
    known = []
    for key, label in CONTACT_FIELDS.items():
        value = str(contact.get(key, "") or "").strip()
        fill[key] = value or f"以{published_in}公布的为准"
        if value:
            known.append(f"{label}：{value}")
    missing = [label for key, label in CONTACT_FIELDS.items() if not str(contact.get(key, "") or "").strip()]
    fill["contact"] = "；".join(known) + "。" if known else ""
    if missing:
        fill["contact"] += f"{'、'.join(missing)}以{published_in}公布的为准。"
    fill["missing"] = "、".join(missing)
    return fill


def read_agencies(folder: Path) -> dict[str, str]:
    """Map every known name of an agency (cleaned) to its full name."""
    names: dict[str, str] = {}
    for line in _lines(folder / "agencies.txt"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [clean(p) for p in line.replace("，", ",").split(",") if p.strip()]
        for part in parts:
            names[part] = parts[0]
    return names


def read_shape_chars(folder: Path) -> dict[str, frozenset[str]]:
    """Look-alike characters (``shape_chars.txt``: a character of the knowledge, a tab, the
    characters typed by mistake for it), as a map from each mistyped character to the
    characters it may stand for."""
    path = folder / "shape_chars.txt"
    if not path.exists():
        return {}
    intended: dict[str, set[str]] = {}
    for line in _lines(path):
        chars = [c for c in line.lstrip("\ufeff").split("#", 1)[0].split() if len(c) == 1]
        if len(chars) < 2:
            continue
        for alike in chars[1:]:
            if alike != chars[0]:
                intended.setdefault(alike, set()).add(chars[0])
    return {c: frozenset(words) for c, words in intended.items()}


def read_places(folder: Path) -> list[str]:
    """Place names whose statistics bureaus are not the home agency (``places.txt``)."""
    path = folder / "places.txt"
    if not path.exists():
        return []
    return [w for line in _lines(path) for w in line.split("#", 1)[0].split()]


def read_other_bodies(folder: Path) -> dict[str, str]:
    """Everyday topics that belong to other government bodies (``other_bodies.toml``), each
    mapped (cleaned) to the kind of body that handles it."""
    data = _read_toml(folder / "other_bodies.toml")
    topics: dict[str, str] = {}
    for body, terms in data.get("bodies", {}).items():
        for term in terms:
            if clean(term).strip():
                topics[clean(term).strip()] = body
    # Words that contain a topic but mean something else (挂号信 is registered post, not a
    # hospital's 挂号): mapped to no body, so the longer word is read first and names none.
    not_topics = data.get("not_topics", {})
    for word in (not_topics.get("words", []) if isinstance(not_topics, dict) else not_topics):
        if clean(word).strip():
            topics[clean(word).strip()] = ""
    return topics


REFERRAL_TEXT = "您问的事项属于{body}的职责，不在政府信息公开的范围内，建议向{body}咨询。"


def read_referral_text(folder: Path) -> str:
    """How a question about another body's business is answered (``{body}`` names it),
    from ``other_bodies.toml``'s ``[referral]``."""
    referral = _read_toml(folder / "other_bodies.toml").get("referral", {})
    text = referral.get("text") if isinstance(referral, dict) else None
    if not isinstance(text, str) or "{body}" not in text:
        return REFERRAL_TEXT
    return text


def read_report_terms(folder: Path) -> dict[str, Any]:
    """Row and column aliases for report questions, from ``report_terms.toml``."""
    return _read_toml(folder / "report_terms.toml")


def read_faq(folder: Path) -> list[dict[str, Any]]:
    """Load and check ``faq.toml``; raise :class:`KnowledgeError` naming the bad entry."""
    entries = _read_toml(folder / "faq.toml").get("entry", [])
    seen: set[str] = set()
    for i, entry in enumerate(entries, 1):
        for key in ("key", "question", "answer"):
            if not str(entry.get(key, "")).strip():
                raise KnowledgeError(f"faq.toml 第{i}条缺少 {key}")
        if entry["key"] in seen:
            raise KnowledgeError(f"faq.toml 中 key 重复：{entry['key']}")
        seen.add(entry["key"])
        if entry.get("status", "published") not in FAQ_STATUSES:
            raise KnowledgeError(f"faq.toml 第{i}条状态无效：{entry.get('status')}")
    return entries


def read_paraphrases(folder: Path) -> list[tuple[str, str, str]]:
    """(variant, standard, section) from ``paraphrases.toml``: citizens' wordings (colloquial,
    regional, Cantonese, English, pinyin, dialect, abbreviations) and the knowledge's words."""
    path = folder / "paraphrases.toml"
    if not path.exists():
        return []
    out: list[tuple[str, str, str]] = []
    for section, pairs in _read_toml(path).items():
        if not isinstance(pairs, dict):
            raise KnowledgeError(f"paraphrases.toml 的 [{section}] 应为“说法 = 标准说法”的列表")
        for variant, standard in pairs.items():
            if not isinstance(standard, str):
                raise KnowledgeError(f"paraphrases.toml 中“{variant}”的标准说法应为文字")
            if clean(variant) and clean(standard):
                out.append((clean(variant), clean(standard), section))
    return out


def seed_paraphrases(db: sqlite_utils.Database, folder: Path) -> None:
    """Load ``paraphrases.toml`` once into a database that has none yet (new, or older than
    the table); from then on curators edit them at ``/staff/lexicon``."""
    with immediate(db):
        if db.execute("select value from meta where key = 'paraphrases_seeded'").fetchone():
            return
        db["paraphrases"].insert_all(
            ({"variant": v, "standard": s, "section": sec, "created": now()} for v, s, sec in read_paraphrases(folder)),
            replace=True)
        db["meta"].insert({"key": "paraphrases_seeded", "value": now()}, replace=True)
        bump_version(db)


def lexicon_from_db(db: sqlite_utils.Database, language: Language) -> Lexicon:
    """The text pipeline's data: words, synonyms and paraphrases from the database, the rest from files."""
    words = [(r["word"], r["freq"]) for r in db.query("select word, freq from lexicon_words")]
    synonyms = {r["term"]: r["canonical"] for r in db.query("select term, canonical from synonyms")}
    paraphrases = [(r["variant"], r["standard"]) for r in db.query("select variant, standard from paraphrases")] \
        if "paraphrases" in db.table_names() else []
    return Lexicon(words=words, synonyms=synonyms, fillers=language.fillers,
                   particles=language.particles, stopwords=language.stopwords,
                   stop_prefixes=language.stop_prefixes, paraphrases=paraphrases)


def seed(db: sqlite_utils.Database, folder: Path, home_agency: str) -> bool:
    """Fill a new database from ``knowledge/``; do nothing if it was seeded before.

    Runs in one transaction, so a crash leaves either nothing or everything.
    Returns whether it seeded.
    """
    with immediate(db):
        if db.execute("select value from meta where key = 'seeded'").fetchone():
            return False
        stamp = now()
        for entry in read_faq(folder):
            entry_id = db["entries"].insert({
                "key": entry["key"], "question": entry["question"].strip(),
                "answer": entry["answer"].strip(), "category": entry.get("category", ""),
                "source": entry.get("source", ""), "status": entry.get("status", "published"),
                "version": 1, "created": stamp, "updated": stamp,
            }).last_pk
            db["alternates"].insert_all(
                {"entry_id": entry_id, "text": alt.strip(), "created": stamp}
                for alt in entry.get("alternates", []) if alt.strip()
            )
        db["lexicon_words"].insert_all(
            ({"word": w, "freq": f, "created": stamp} for w, f in parse_word_lines(_lines(folder / "userdict.txt"))),
            replace=True,
        )
        db["synonyms"].insert_all(
            ({"term": t, "canonical": c, "created": stamp}
             for t, c in parse_synonym_lines(_lines(folder / "synonyms.txt")).items()),
            replace=True,
        )
        for path in sorted((folder / "reports").glob("*")):
            if path.suffix.lower() in (".txt", ".html", ".htm", ".docx"):
                report = reports.parse_report(path.read_bytes(), path.name)
                store_report(db, report, path.name)
        db["meta"].insert({"key": "seeded", "value": stamp}, replace=True)
        bump_version(db)
    return True


def store_report(db: sqlite_utils.Database, report: reports.Report, source_name: str) -> int:
    """Write a parsed report, replacing the same agency and year; return its id.

    Callers run it inside a transaction so the replacement is atomic.
    """
    old = db.execute("select id from reports where agency = ? and year = ?",
                     [report.agency, report.year]).fetchone()
    if old:
        db.execute("delete from facts where report_id = ?", [old[0]])
        db.execute("delete from passages where report_id = ?", [old[0]])
        db.execute("delete from reports where id = ?", [old[0]])
    report_id = db["reports"].insert({
        "agency": report.agency, "year": report.year, "title": report.title,
        "format": report.format, "source_name": source_name,
        "problems": json.dumps(report.problems, ensure_ascii=False), "imported_at": now(),
    }).last_pk
    db["facts"].insert_all({
        "report_id": report_id, "tbl": f.table, "row_key": f.row_key, "row_label": f.row_label,
        "col_key": f.col_key, "col_label": f.col_label, "value": f.value, "unit": f.unit,
        "section": f.section, "blank": int(f.blank),
    } for f in report.facts)
    db["passages"].insert_all({
        "report_id": report_id, "position": i, "section": p.section, "context": p.context,
        "text": p.text,
    } for i, p in enumerate(report.passages))
    return int(report_id)


def bump_version(db: sqlite_utils.Database, kind: str = "all", ref: Any = None) -> int:
    """Mark the knowledge as changed and log what changed, so every worker updates its index.

    ``kind``: ``"entries"`` (``ref`` the ids of the entries saved, archived or deleted, or
    whose phrasings changed), ``"lexicon"`` (``ref`` the words of a synonym, paraphrase or
    dictionary word added or removed), ``"reports"`` (``ref`` the ids of reports imported or
    replaced), or ``"all"`` (anything else: a full build).
    """
    with immediate(db):
        db.execute(
            "insert into meta (key, value) values ('kb_version', '1') "
            "on conflict(key) do update set value = cast(cast(meta.value as integer) + 1 as text)"
        )
        version = knowledge_version(db)
        db.execute("insert into knowledge_changes (version, kind, ref, created) values (?, ?, ?, ?)",
                   [version, kind, json.dumps(ref, ensure_ascii=False), now()])
    return version


def changes_since(db: sqlite_utils.Database, version: int, limit: int = 500) -> list[tuple[int, str, Any]] | None:
    """The logged changes after ``version`` in order, or None when the log does not tell
    them all (a version bumped without a log row, or more than ``limit`` of them)."""
    current = knowledge_version(db)
    if current - version > limit or current < version:
        return None
    rows = db.execute("select version, kind, ref from knowledge_changes where version > ? and version <= ? "
                      "order by version", [version, current]).fetchall()
    if [r[0] for r in rows] != list(range(version + 1, current + 1)):
        return None
    return [(int(v), k, json.loads(r) if r else None) for v, k, r in rows]


def knowledge_version(db: sqlite_utils.Database) -> int:
    """The current knowledge version (0 before seeding)."""
    row = db.execute("select value from meta where key = 'kb_version'").fetchone()
    return int(row[0]) if row else 0


def import_report(db: sqlite_utils.Database, data: bytes | str, filename: str, *,
                  agency: str | None = None, year: int | None = None) -> tuple[reports.Report, int, bool]:
    """Parse and store a report; return it, its id and whether it replaced an older copy.

    The file is parsed completely before anything is written (a file that is not a
    report raises :class:`reports.ReportFormatError` and changes nothing), and outside any
    transaction: parsing a large report takes seconds, and while a write transaction is
    open no citizen's question can open a ticket. (The staff upload pages parse in a
    limited child process, :func:`uploads.parse_report`, and then call :func:`save_report`.)
    """
    if db.conn.in_transaction:
        raise RuntimeError("import_report parses the file: call it outside a transaction, "
                           "or parse first and write with save_report")
    report = reports.parse_report(data, filename, agency=agency, year=year)
    report_id, replaced = save_report(db, report, filename)
    return report, report_id, replaced


def save_report(db: sqlite_utils.Database, report: reports.Report, source_name: str) -> tuple[int, bool]:
    """Write a parsed report in one short transaction (a savepoint of the caller's, if any),
    replacing the same agency and year; return its id and whether it replaced a copy."""
    with immediate(db):
        old = db.execute("select id from reports where agency = ? and year = ?",
                         [report.agency, report.year]).fetchone()
        report_id = store_report(db, report, source_name)
        bump_version(db, "reports", [report_id, *([old[0]] if old else [])])
    return report_id, old is not None


def report_summary(report: reports.Report) -> list[str]:
    """What a staff member sees before and after an import, one line each."""
    tables: dict[str, int] = {}
    for fact in report.facts:
        tables[fact.table] = tables.get(fact.table, 0) + 1
    counts = "，".join(f"表{t} {n} 项" for t, n in sorted(tables.items(), key=lambda x: "二三四".find(x[0])))
    received = report.value("new", "total", "三")
    lines = [f"{report.year}年{report.agency}（{report.title or '政府信息公开工作年度报告'}）",
             f"格式：{report.format}年版；数据 {len(report.facts)} 项（{counts}）；正文段落 {len(report.passages)} 条"]
    if received is not None:
        lines.append(f"本年新收政府信息公开申请 {received:g} 件")
    if report.problems:
        lines.append(f"发现 {len(report.problems)} 处数据不一致（仍会导入，请核对原报告）：")
        lines += [f"  - {p}" for p in report.problems]
    else:
        lines.append("数据校验通过，未发现不一致。")
    return lines
