"""The inquiry desk: from a citizen's question to an answer, a choice, or an escalation.

Pure Python (no Flask). :meth:`Desk.build` reads the knowledge from the database and
the ``knowledge/`` folder into memory; :meth:`Desk.ask` answers one question:

* small talk gets a short reply;
* a question about report figures is routed to the report it names (agency, year), or
  to the home agency's latest report, and a report the knowledge base does not hold is
  declined plainly, never answered with another report's figure;
* everything else is matched against FAQ entries, report table rows and report
  passages, and the decision is **answered** (one clear winner), **clarify** (close
  candidates) or **escalated** (nothing good enough).
"""
from __future__ import annotations

import copy
import heapq
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import sqlite_utils

from . import reports as report_format
from .knowledge import (REFERRAL_TEXT, Language, lexicon_from_db, read_agencies, read_agency, read_chitchat,
                        read_language, read_other_bodies, read_places, read_referral_text, read_report_terms,
                        read_shape_chars)
from .clauses import (asking_in_context, asking_part, contact_pattern, drop_asides, drop_contact_details,
                      focus_texts, separate_questions)
from .decision import DecisionModel, Question, candidate_features, decision_features, sigmoid
from .names import agency_aliases, expand_years, relative_years, split_name
from . import related
from .smalltalk import SmallTalk
from .conversation import Conversation, covering_rows
from .figures import FigureAnswers
from .replies import (_DIGIT_RE, _PUNCT_RE, _SUM_RE, _YEAR_RE, DERIVED_ALIASES, DERIVED_COLS, DERIVED_ROWS,
                      Analysis, Context, ReportRef, Reply, Scope)
from .replies import FactContext, format_number  # noqa: F401  (part of this module's interface)
from .layered import LayeredMap
from .matcher import STRAY_CHAR_WEIGHT, Candidate, Doc, Index
from .semantic import SentenceEncoder, adopt_vectors, best_similarity, corpus_probability, shared_vectors
from .text import TextPipeline, clean

ANSWER_CACHE_SIZE = 8192
# ... when the server's workers share their replies (service/shared_replies.py): each keeps
# only the most recent, which are the most asked, and reads the rest from the shared file
# (a reply held by every worker is memory every worker makes its own).
LOCAL_ANSWER_CACHE_SIZE = 1024
# Entries an update in place re-reads at most; a change reaching more is left to a full build.
UPDATE_LIMIT = 2_000
# ... or this share of the documents.
REPLACE_SHARE = 0.25
# Phrasing vectors of this many documents are kept (all of them, for a normal knowledge base).
DOC_VECTOR_CACHE = 20_000
# Words of the knowledge that pinyin is read as before everyday words (the commonest).
PINYIN_WORDS = 20_000
_RELATIVE_YEARS = {"今年": 0, "本年度": 0, "去年": -1, "上一年度": -1, "上年度": -1, "前年": -2}
_LOCAL_AGENCY_RE = re.compile(
    r"[\u4e00-\u9fff]{2,7}?(?:省|市|自治区|自治州|地区|盟|县|区)"
    r"[\u4e00-\u9fff]{0,10}?(?:统计局|人民政府|政府|局|厅|委员会|委|办公室|院|署)"
)

_OTHER_BODY_RE = re.compile(r"(?:省|市|县|区|自治区)?[\u4e00-\u9fff]{0,8}?(?:统计局|局|厅|委员会|委|院|署|部|中心|办公室|政府)")


def _place_forms(agency: str) -> list[str]:
    """The place-only names of an agency (广东省, 广东), from its derived aliases."""
    place = split_name(agency)[0]
    return [a for a in agency_aliases(agency) if place and (a == place or place.startswith(a))]


# Texts whose words Desk.tokens remembers (a few MB at most).
TOKEN_CACHE_SIZE = 50_000


@dataclass
class Settings:
    """Decision thresholds and identity, from the app config."""

    home_agency: str = "国家统计局"
    max_suggestions: int = 3
    today: date | None = None  # fixed in tests; None means the real date


# Alternates read per statement while a build streams them (see _alternates_in_chunks).
ALTERNATES_CHUNK = 20_000


def _alternates_in_chunks(db: sqlite_utils.Database, size: int = ALTERNATES_CHUNK) -> Iterator[tuple[int, str]]:
    """Every alternate phrasing as (entry_id, text), in entry order, read ``size`` rows at a
    time, each chunk a statement of its own. One statement left open for a whole build (a
    minute and more in a master that builds below the workers' priority) is a read that
    SQLite's write-ahead log cannot be copied back past: the log grew all along, and the
    first worker to commit after the build copied all of it back, in a citizen's request
    (waits of 150-250 ms). A change saved between two chunks is in the change log after the
    version the build is named by, so the update that follows the build reads it again."""
    after = (-1, -1)
    while True:
        # A row value, which the index on entry_id serves (the same test written with OR made
        # SQLite scan the whole table for every chunk).
        rows = db.execute("select entry_id, id, text from alternates where (entry_id, id) > (?, ?) "
                          "order by entry_id, id limit ?", [after[0], after[1], size]).fetchall()
        for entry_id, _, text in rows:
            yield entry_id, text
        if len(rows) < size:
            return
        after = (rows[-1][0], rows[-1][1])


def _group_by_entry(rows: Any) -> Any:
    """Phrasings of each entry from (entry_id, text) rows sorted by entry id (or a dict of
    lists), asked for in increasing entry id."""
    iterator = iter(rows)
    pending: list[Any] = []

    def texts(entry_id: int) -> list[str]:
        out: list[str] = []
        while True:
            if not pending:
                nxt = next(iterator, None)
                if nxt is None:
                    return out
                pending.append(nxt)
            key, value = pending[0]
            if key < entry_id:
                pending.pop()
            elif key == entry_id:
                pending.pop()
                out.extend(value if isinstance(value, list) else [value])
            else:
                return out

    return texts


def _prefer_named_part(candidates: list[Candidate]) -> None:
    """A sum the table implies (无法提供, the sum of its three items) never wins over one of its
    items that covers clearly more of the question (因本机关不掌握信息无法提供的合计几件 names
    the item): that item moves to the front, taking the sum's score."""
    if not candidates or candidates[0].doc.kind != "fact" or candidates[0].doc.ref not in DERIVED_ROWS:
        return
    top = candidates[0]
    parts = set(DERIVED_ROWS[top.doc.ref][1])
    named = [c for c in candidates[1:] if c.doc.kind == "fact" and c.doc.ref in parts
             and c.coverage >= top.coverage + 0.15]
    if named:
        best = max(named, key=lambda c: c.coverage)
        best.logit, best.score = top.logit, top.score
        candidates.remove(best)
        candidates.insert(0, best)


def _semantic_others(candidates: list[Candidate]) -> float:
    """The highest semantic similarity among all candidates but the best."""
    return max((c.features.get("semantic", 0.0) for c in candidates[1:]), default=0.0)


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    """An answer with the agency's settings put in ({address}, {phone}, {contact} ...)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


class Desk(Conversation, FigureAnswers):
    """The in-memory knowledge and the answering logic. Build once per knowledge version."""

    def __init__(self, *, pipeline: TextPipeline, language: Language, settings: Settings,
                 chitchat: dict[str, Any], agencies: dict[str, str], terms: dict[str, Any],
                 entries: dict[int, dict[str, Any]], alternates: Any, reports: list[ReportRef],
                 facts: dict[tuple[int, str], dict[str, dict[str, Any]]],
                 passages: dict[int, dict[str, Any]], version: int = 0, places: list[str] | None = None,
                 agency: dict[str, str] | None = None, model: DecisionModel | None = None,
                 other_bodies: dict[str, str] | None = None, shapes: dict[str, frozenset[str]] | None = None,
                 referral_text: str = REFERRAL_TEXT):
        self.pipeline = pipeline
        self.referral_text = referral_text
        self.language = language
        self._contact = contact_pattern(language.contact_labels)
        self.settings = settings
        self.agency = agency or {}
        self.model = model or DecisionModel.default()
        self.smalltalk = SmallTalk(chitchat, self.agency)
        self._named_agencies = dict(agencies)
        self._held_reports(reports)
        self.terms = terms
        self.entries = entries
        self.facts = facts
        self.passages = passages
        self.version = version
        # Which knowledge this desk answers, across processes: (version, the database's id and
        # when that version was logged), set by the index keeper. Replies are shared under it
        # (service/shared_replies.py) only while it names this desk's version and the version
        # was logged: a version number alone can come back with other knowledge (a database
        # put back or replaced).
        self.knowledge_key: tuple[int, str] = (-1, "")
        # 上海统计局, 广东省统计局: another place's bureau, whatever the wording.
        self._place_bureau = re.compile(
            "(" + "|".join(map(re.escape, sorted(places or [], key=len, reverse=True))) + ")"
            r"(?:省|市|自治区|特别行政区)?统计局") if places else None
        self._place = re.compile(
            "(?:" + "|".join(map(re.escape, sorted(places or [], key=len, reverse=True))) + ")"
            r"(?:省|市|自治区|特别行政区)?") if places else None
        self._col_aliases = self._column_aliases()
        self._cache: OrderedDict[tuple[str, int], Reply] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._token_cache: dict[str, list[str]] = {}  # the curators' inbox groups thousands of texts
        freq = pipeline.tokenizer.FREQ
        # Segmentation runs without HMM: a token is a dictionary word or a single character.
        vectors = shared_vectors(keep=lambda w: len(w) == 1 or freq.get(w, 0) > 0)
        if vectors is None:
            raise RuntimeError("缺少词向量：请安装依赖包 synonyms（pip install -e .）")
        self.encoder = SentenceEncoder(vectors, corpus_probability(pipeline.tokenizer.FREQ, pipeline.tokenizer.total))
        self._doc_vectors: dict[str, Any] = {}
        self.index = Index(self._documents(alternates), word_rarity=pipeline.word_rarity, shapes=shapes)
        # weishenme bufen gongkai -> 为什么部分公开, the knowledge's commonest words first
        postings = self.index.postings
        pipeline.pinyin.prefer(heapq.nlargest(PINYIN_WORDS, postings, key=lambda t: len(postings[t][0])))
        # Other bodies' business (低保, 公租房, 港澳通行证) that the knowledge's questions never
        # speak of: a question about it is passed on, never answered with an entry that merely
        # shares its other words (申请, 条件, 材料).
        self._faq_docs = np.fromiter((d.kind == "faq" for d in self.index.docs), dtype=bool,
                                     count=len(self.index.docs))
        # A topic an entry's own question names (a curator's 廉租房 entry) is the desk's. One
        # that only some phrasings mention (临时身份证 as a proof of identity) is the other
        # body's when the question says nothing of disclosure (临时身份证怎么开).
        titles = "\n".join(_PUNCT_RE.sub("", clean(e["question"])) for e in self.entries.values())
        self._other_bodies = dict(other_bodies or {})
        # How many entries' own questions name each topic (updated in place by :meth:`updated`).
        self._claims = {t: titles.count(clean(t)) for t in self._other_bodies}
        foreign = {t: b for t, b in self._other_bodies.items() if not self._claims[t]}
        self._foreign = foreign
        self._foreign_covered = {t for t in foreign if self._covered(t)}
        self._foreign_re = re.compile("|".join(map(re.escape, sorted(foreign, key=len, reverse=True)))) if foreign else None

    def _held_reports(self, reports: list[ReportRef]) -> None:
        """The reports held, and every held report's agency under the names people use for
        it (苏州市府办, 安吉县), the more specific agency winning a shared name (苏州市政府:
        the government, not its office)."""
        self.agencies = dict(self._named_agencies)
        derived: dict[str, str] = {}
        for agency in sorted({r.agency for r in reports}, key=len, reverse=True):
            for alias in agency_aliases(agency):
                derived[clean(alias)] = agency
        # 省府办公厅, 省政府 said without the province: the one province-level office held.
        provincial = [a for a in {r.agency for r in reports} if split_name(a)[0].endswith("省")]
        for agency in provincial if len(provincial) == 1 else []:
            for alias in agency_aliases(agency):
                place = split_name(agency)[0]
                if alias.startswith(place) and len(alias) > len(place) + 2:
                    derived.setdefault("省" + alias[len(place):], agency)
        for alias, agency in derived.items():
            self.agencies.setdefault(alias, agency)
        self._place_aliases = {a for a, full in derived.items() if a in {clean(p) for p in _place_forms(full)}}
        self._held_aliases = sorted(((a, full) for a, full in derived.items() if full != self.settings.home_agency),
                                    key=lambda p: len(p[0]), reverse=True)
        self.reports = sorted(reports, key=lambda r: (r.agency != self.settings.home_agency, -r.year))
        self.reports_by_id = {r.id: r for r in reports}

    # -- building -----------------------------------------------------------------
    @classmethod
    def build(cls, db: sqlite_utils.Database, folder: Path, settings: Settings,
              version: int = 0) -> "Desk":
        """Read the knowledge base from ``db`` and the files in ``folder``."""
        language = read_language(folder)
        pipeline = TextPipeline(lexicon_from_db(db, language))
        entries: dict[int, dict[str, Any]] = {}
        agency = read_agency(folder)
        for row in db.query("select id, key, question, answer, category, source from entries "
                            "where status = 'published' order by id"):
            entries[row["id"]] = dict(row, answer=fill_placeholders(row["answer"], agency))
        # Streamed in entry order while the index is built, never all held at once (at 100,000
        # entries the phrasings as read would double the peak memory of a build).
        alternates = _alternates_in_chunks(db)
        reports = [ReportRef(r["id"], r["agency"], r["year"], r["title"] or "")
                   for r in db.query("select id, agency, year, title from reports")]
        facts: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        for row in db.query("select * from facts order by id"):
            facts.setdefault((row["report_id"], row["row_key"]), {})[row["col_key"]] = row
        passages = {row["id"]: row for row in db.query("select * from passages order by report_id, position")}
        return cls(pipeline=pipeline, language=language, settings=settings,
                   chitchat=read_chitchat(folder), agencies=read_agencies(folder),
                   terms=read_report_terms(folder), entries=entries, alternates=alternates, reports=reports,
                   facts=facts, passages=passages, version=version, places=read_places(folder),
                   agency=agency, model=DecisionModel.load(folder / "decision.toml"),
                   other_bodies=read_other_bodies(folder), shapes=read_shape_chars(folder),
                   referral_text=read_referral_text(folder))

    # -- updates in place and snapshots ----------------------------------------------
    def updated(self, db: sqlite_utils.Database, entry_ids: set[int], version: int,
                lexicon_words: set[str] | None = None, report_ids: set[int] | None = None) -> "Desk | None":
        """A new desk for ``version`` that differs from this one by the given entries (saved,
        archived, deleted, their phrasings changed), sharing everything else; this desk
        keeps answering until the caller swaps them.

        ``report_ids``: reports imported, replaced or removed. Their figures and sentences
        are read again (or dropped), with the names of the agencies held; the report rows
        whose documents they change are put in again, and the sentences of a report added
        go in as documents of their own.

        ``lexicon_words``: the words of changed synonyms, paraphrases or dictionary words;
        the text pipeline is rebuilt and every entry and report sentence whose texts use
        one of them (as written, or as the pipeline normalised them) is read again, with
        the report rows.

        Returns None when a change reaches so much of the knowledge that a full build is
        cheaper.
        """
        new = copy.copy(self)
        new.version = version
        ids = set(entry_ids)
        passages: set[int] = set()
        if lexicon_words:
            words = {w for w in lexicon_words if isinstance(w, str) and w}
            # A sentence is indexed with the one before it in its section.
            before_used = False
            for pid, p in self.passages.items():
                used = any(w in f"{p['text']}\n{p['context'] or ''}\n{p['section'] or ''}" for w in words)
                if used or before_used:
                    passages.add(pid)
                before_used = used
            for entry_id, entry in self.entries.items():
                text = f"{entry['question']}\n{entry['answer']}\n{entry.get('category') or ''}"
                if any(w in text for w in words):
                    ids.add(entry_id)
            # Words the text gets only once normalised (資訊公開申請, a dialect wording).
            for doc in self.index.docs:
                if doc.kind == "faq" and any(w in ph for ph in doc.phrasings for w in words):
                    ids.add(doc.ref)
                elif doc.kind == "passage" and any(w in doc.phrasings[0] for w in words):
                    passages.add(doc.ref)
            for w in words:
                like = "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                ids.update(r[0] for r in db.execute(
                    "select distinct entry_id from alternates where text like ? escape '\\'", [like]).fetchall())
            live = len(self.index.docs) - self.index.dead
            if len(ids) + len(passages) > min(UPDATE_LIMIT, REPLACE_SHARE * live):
                # A word much of the knowledge uses: a full build is cheaper, and puts the
                # documents back in their order (equal scores are ranked by it).
                return None
            new.pipeline = TextPipeline(lexicon_from_db(db, self.language))
        fresh: dict[int, dict[str, Any]] = {}
        gone_passages: set[int] = set()
        row_ranks: dict[str, int] | None = None
        if report_ids:
            read = self._reports_read(db, report_ids)
            if read is None:
                return None
            reports, new.facts, new.passages, fresh, gone_passages = read
            new._held_reports(reports)
        agency = self.agency
        rows: dict[int, dict[str, Any]] = {}
        alternates: dict[int, list[str]] = {}
        chunk = sorted(ids)
        for start in range(0, len(chunk), 500):
            part = chunk[start:start + 500]
            marks = ",".join("?" * len(part))
            for row in db.query(f"select id, key, question, answer, category, source from entries "
                                f"where status = 'published' and id in ({marks}) order by id", part):
                rows[row["id"]] = dict(row, answer=fill_placeholders(row["answer"], agency))
            for entry_id, text in db.execute(f"select entry_id, text from alternates where entry_id in ({marks}) "
                                             "order by entry_id, id", part).fetchall():
                alternates.setdefault(entry_id, []).append(text)
        # Never copied (see service/layered.py); an entry published again comes last.
        new.entries = LayeredMap.over(self.entries, rows, ids - set(rows))
        docs = [new._entry_doc(entry_id, rows[entry_id], alternates.get(entry_id, [])) for entry_id in sorted(rows)]
        removed = [f"faq:{i}" for i in ids]
        # The words of the replaced entries' answers, which their documents no longer hold.
        also = {t for i in ids if i in self.entries
                for t in self._tokens(self.entries[i]["answer"]) + self._tokens(self.entries[i].get("category") or "")}
        if lexicon_words or report_ids:
            # The report rows the change reaches (all of them when a column's or a table's
            # name uses a changed word; a row a report adds, drops or gives another column),
            # and the sentences that use the words or come and go with a report. The others
            # keep their place: equal scores are ranked by it.
            words = {w for w in lexicon_words or () if isinstance(w, str) and w}
            old_rows = {d.ref: d for d in self._row_docs()}  # as indexed, with their words
            new_rows = list(new._row_docs())
            names = [alias for alias, _ in self._col_aliases] + [str(r.get("section") or "") for cols in self.facts.values()
                                                                  for r in cols.values()]
            everything = any(w in name for name in names for w in words)
            if [d.ref for d in new_rows] != list(old_rows):
                # A row comes or goes: a build ranks the rows among equals in another order
                # (the sums a table implies after every printed row), so all go in again,
                # each at its place in that order.
                everything = True
                row_ranks = {d.key: i for i, d in enumerate(new_rows)}
            for doc in new_rows:
                before = old_rows.pop(doc.ref, None)
                if everything or before is None or before.phrasing_tokens != doc.phrasing_tokens \
                        or before.primary != doc.primary or before.secondary != doc.secondary \
                        or any(w in ph for ph in doc.phrasings for w in words):
                    removed.append(doc.key)
                    docs.append(doc)
                    if before is not None:
                        also |= before.primary | before.secondary
            for before in old_rows.values():  # rows no report held has any more
                removed.append(before.key)
                also |= before.primary | before.secondary
            # The words of the sentences that go, which their documents no longer hold.
            for before in self._passage_docs(passages | gone_passages):
                also |= before.primary | before.secondary
            removed += [f"passage:{pid}" for pid in passages | gone_passages]
            docs += list(new._passage_docs(passages | set(fresh)))
        new.index = self.index.updated(removed, docs, also, row_ranks)
        if lexicon_words:
            new._fit_pipeline(new.pipeline)
        faq = np.concatenate([self._faq_docs, np.fromiter((d.kind == "faq" for d in docs), dtype=bool, count=len(docs))])
        faq[new.index.groups < 0] = False
        new._faq_docs = faq
        # Which other bodies' topics an entry's own question names (see __init__): counted
        # per topic, so that archiving the entry that named one gives it back.
        claims = dict(self._claims)
        cleaned = new._clean_terms = self._cleaned_terms()  # the next update's too
        for entry_id in ids:
            if entry_id in self.entries:
                title = _PUNCT_RE.sub("", clean(self.entries[entry_id]["question"]))
                for term in claims:
                    claims[term] -= title.count(cleaned[term])
        for row in rows.values():
            title = _PUNCT_RE.sub("", clean(row["question"]))
            for term in claims:
                claims[term] += title.count(cleaned[term])
        new._claims = claims
        new._foreign = {t: b for t, b in self._other_bodies.items() if claims.get(t, 0) <= 0}
        # Only a topic that shares a word with a changed document can change its answer.
        changed_words = {t for d in docs for toks in d.phrasing_tokens for t in toks}
        changed_words |= {t for k in removed if (at := self.index.position(k)) is not None
                          for toks in self.index.docs[at].phrasing_tokens for t in toks}
        terms = new._term_tokens()

        def unchanged(term: str) -> bool:
            return not lexicon_words and term in self._foreign and changed_words.isdisjoint(terms[term])

        new._foreign_covered = {t for t in new._foreign
                                if (t in self._foreign_covered if unchanged(t) else new._covered(t))}
        new._foreign_re = re.compile("|".join(map(re.escape, sorted(new._foreign, key=len, reverse=True)))) \
            if new._foreign else None
        new._cache = OrderedDict()
        new._cache_lock = threading.Lock()
        keys = set(removed)
        if lexicon_words:
            new._token_cache = {}
            new._doc_vectors = {}
        else:
            new._token_cache = self._token_cache  # segmentation did not change
            new._doc_vectors = {k: v for k, v in self._doc_vectors.items() if k not in keys}
        related.carry_over(self, new, ids)
        return new

    def _reports_read(self, db: sqlite_utils.Database, report_ids: set[int]) -> tuple[
            list[ReportRef], dict[tuple[int, str], dict[str, dict[str, Any]]], dict[int, dict[str, Any]],
            dict[int, dict[str, Any]], set[int]] | None:
        """The reports held now, with the figures and sentences a build would read, after the
        reports ``report_ids`` were imported, replaced or removed: the reports, the figures,
        the sentences (in a build's order), the sentences new to this desk and those gone.
        None when so many sentences come and go that a build in full is cheaper."""
        reports = [ReportRef(r["id"], r["agency"], r["year"], r["title"] or "")
                   for r in db.query("select id, agency, year, title from reports")]
        ids = sorted(report_ids)
        marks = ",".join("?" * len(ids))
        gone = {pid for pid, p in self.passages.items() if p["report_id"] in report_ids}
        fresh = {row["id"]: row for row in db.query(
            f"select * from passages where report_id in ({marks}) order by report_id, position", ids)}
        live = len(self.index.docs) - self.index.dead
        if len(gone) + len(fresh) > min(UPDATE_LIMIT, REPLACE_SHARE * live):
            return None
        # Figures by fact id and sentences by report and place, as a build reads them.
        facts: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        rows = [row for cols in self.facts.values() for row in cols.values() if row["report_id"] not in report_ids]
        rows += db.query(f"select * from facts where report_id in ({marks}) order by id", ids)
        for row in sorted(rows, key=lambda r: r["id"]):
            facts.setdefault((row["report_id"], row["row_key"]), {})[row["col_key"]] = row
        kept = {pid: p for pid, p in self.passages.items() if pid not in gone}
        passages = dict(sorted({**kept, **fresh}.items(), key=lambda kv: (kv[1]["report_id"], kv[1]["position"])))
        return reports, facts, passages, fresh, gone

    def _fit_pipeline(self, pipeline: TextPipeline) -> None:
        """Answer with this text pipeline: its word frequencies in the sentence encoder and
        the index's word rarity, the knowledge's words first when reading pinyin."""
        self.pipeline = pipeline
        freq = pipeline.tokenizer.FREQ
        vectors = shared_vectors(keep=lambda w: len(w) == 1 or freq.get(w, 0) > 0)
        if vectors is None:
            raise RuntimeError("缺少词向量：请安装依赖包 synonyms（pip install -e .）")
        self.encoder = SentenceEncoder(vectors, corpus_probability(freq, pipeline.tokenizer.total))
        self.index.word_rarity = pipeline.word_rarity
        postings = self.index.postings
        pipeline.pinyin.prefer(heapq.nlargest(PINYIN_WORDS, postings, key=lambda t: len(postings[t][0])))

    _TRANSIENT = ("pipeline", "encoder", "_cache", "_cache_lock", "_token_cache", "_doc_vectors", "_foreign_tokens",
                  "knowledge_key")

    def snapshot(self) -> dict[str, Any]:
        """What a new process needs to answer without building the index (see :meth:`restore`)."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}
        # The word vectors the desk reads (parsing them from the package's file is most of
        # a start-up otherwise).
        vectors = self.encoder.vectors
        state["_vectors"] = (list(vectors.row), vectors.matrix)
        return state

    @classmethod
    def restore(cls, state: dict[str, Any], db: sqlite_utils.Database) -> "Desk":
        """A desk from :meth:`snapshot`: the text pipeline is rebuilt from the database's
        lexicon and the word vectors are the process's shared ones."""
        desk = cls.__new__(cls)
        state = dict(state)
        kept = state.pop("_vectors", None)
        if kept is not None:
            adopt_vectors(*kept)
        desk.__dict__.update(state)
        desk._fit_pipeline(TextPipeline(lexicon_from_db(db, desk.language)))
        desk._cache = OrderedDict()
        desk._cache_lock = threading.Lock()
        desk._token_cache = {}
        desk._doc_vectors = {}
        desk.knowledge_key = (-1, "")
        return desk

    def _term_tokens(self) -> dict[str, list[str]]:
        """The words of each other body's topic, as this desk's pipeline cuts them."""
        found = self.__dict__.get("_foreign_tokens")
        if found is None or found[0] is not self.pipeline:
            found = (self.pipeline, {t: self._tokens(t) for t in self._other_bodies})
            self._foreign_tokens = found
        return found[1]

    def ready_for_updates(self) -> None:
        """Work out now what the first update in place would (the other bodies' topics cut
        into words and cleaned): a desk restored from a snapshot has neither."""
        self._term_tokens()
        self._cleaned_terms()

    def _cleaned_terms(self) -> dict[str, str]:
        """Each other body's topic as :func:`clean` writes it (worked out once: an update in
        place counts them in the changed entries' questions, some 10 ms a save otherwise)."""
        found = self.__dict__.get("_clean_terms")
        if found is None:
            found = self._clean_terms = {t: clean(t) for t in self._other_bodies}
        return found

    def _covered(self, term: str) -> bool:
        """Whether the FAQ's own questions speak of a term: every word of it is a word of some
        entry's phrasings (not only of an answer, a report row or a report sentence)."""
        toks = self._tokens(term)
        for tok in toks:
            posting = self.index.postings.get(tok)
            if posting is None or not np.any(self._faq_docs[posting[0]] & (posting[1] >= 1.0)):
                return False
        return bool(toks)

    def foreign_topic(self, compact: str, exact: bool = False) -> str | None:
        """The other body whose business a question names, unless the knowledge's questions speak
        of that topic and the question speaks of disclosure or is one of their phrasings
        (``exact``: a curator put it there)."""
        if self._foreign_re is None:
            return None
        speaks_of_disclosure = any(w in compact for w in self.language.disclosure_words)
        if speaks_of_disclosure:
            # The contact details a citizen leaves with a question about disclosure
            # (我的手机号138****5678，申请公开要多久) are no topic: 手机号 there says how to reach
            # them. Without such words (手机号138****5678怎么注销) the number is what they ask about.
            compact = drop_contact_details(compact, self._contact)
        for match in self._foreign_re.finditer(compact):
            term = match.group(0)
            if not self._foreign[term]:
                continue  # a longer word that means something else: 挂号信 is no hospital's 挂号
            if term not in self._foreign_covered or not (speaks_of_disclosure or exact):
                return self._foreign[term]
        return None

    def clear_cache(self) -> None:
        """Forget cached replies (after the decision model changed)."""
        with self._cache_lock:
            self._cache.clear()

    def tokens(self, text: str) -> list[str]:
        """The words of a text as the matcher reads them (normalised, rewritten, segmented);
        remembered for this knowledge version, as the inbox reads the same texts on each view."""
        found = self._token_cache.get(text)
        if found is None:
            found = self._tokens(text)
            if len(self._token_cache) >= TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            self._token_cache[text] = found
        return list(found)

    def _tokens(self, text: str) -> list[str]:
        return self.pipeline.tokens(self.pipeline.normalise(text, pinyin=False))

    def _column_aliases(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        labels = {**report_format.TABLE2_COLS, **report_format.TABLE4_COLS, **report_format.TABLE3_COLS,
                  **{k: v[0] for k, v in DERIVED_COLS.items()}}
        aliases = dict(self.terms.get("cols", {}))
        aliases.setdefault("legal_persons", ["法人或其他组织", "法人", "单位"])
        for key, label in labels.items():
            for alias in [label, *aliases.get(key, [])]:
                pairs.append((_PUNCT_RE.sub("", clean(alias)), key))
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        return pairs

    def _entry_doc(self, entry_id: int, entry: dict[str, Any], alternates: list[str]) -> Doc:
        """The document of one published FAQ entry and its phrasings."""
        # A story-like phrasing is indexed by the clauses that ask: its narrative words (房东,
        # 租房) would otherwise become "known" words and stop marking off-topic questions.
        phrasings = [self.pipeline.normalise(asking_part(q), pinyin=False)
                     for q in [entry["question"], *alternates]]
        tokens = [tuple(self.pipeline.tokens(p)) for p in phrasings]
        primary = {t for toks in tokens for t in toks}
        secondary = set(self._tokens(entry["answer"])) | set(self._tokens(entry.get("category") or ""))
        return Doc(f"faq:{entry_id}", "faq", [p.replace(" ", "") for p in phrasings], primary, secondary,
                   phrasing_tokens=tokens, ref=entry_id)

    def _documents(self, alternates: Any) -> Iterator[Doc]:
        """Every matchable document, one at a time (the index keeps what it needs)."""
        by_entry = _group_by_entry(alternates.items() if isinstance(alternates, dict) else alternates)
        for entry_id, entry in self.entries.items():
            yield self._entry_doc(entry_id, entry, by_entry(entry_id))
        yield from self._row_docs()
        yield from self._passage_docs()

    def _row_docs(self) -> Iterator[Doc]:
        """The documents of the held reports' table rows (one per row, all reports)."""
        rows: dict[str, dict[str, Any]] = {}
        for (_, row_key), cols in self.facts.items():
            any_fact = next(iter(cols.values()))
            rows.setdefault(row_key, {"label": any_fact["row_label"], "tbl": any_fact["tbl"],
                                      "section": any_fact["section"], "cols": set()})
            rows[row_key]["cols"].update(cols)
        for key, (label, parts) in DERIVED_ROWS.items():
            if key not in rows and any(p in rows for p in parts):
                first = rows[next(p for p in parts if p in rows)]
                rows[key] = {"label": DERIVED_ALIASES[key][0], "tbl": first["tbl"],
                             "section": first["section"], "cols": set(first["cols"])}
        row_aliases = self.terms.get("rows", {})
        for row_key, info in rows.items():
            texts = [info["label"], *row_aliases.get(row_key, []), *DERIVED_ALIASES.get(row_key, [])]
            phrasings = [self.pipeline.normalise(t, pinyin=False) for t in texts]
            primary = {t for p in phrasings for t in self.pipeline.tokens(p)}
            for alias, col in self._col_aliases:
                if col in info["cols"] or (col in DERIVED_COLS and "total" in info["cols"] and info["tbl"] == "三"):
                    primary.update(self.pipeline.tokens(alias))
            # The table's heading names what every row counts (政府信息公开行政复议 ...).
            primary |= set(self._tokens(info["section"] or ""))
            yield Doc(f"row:{row_key}", "fact", [p.replace(" ", "") for p in phrasings], primary, set(),
                      phrasing_tokens=[tuple(self.pipeline.tokens(p)) for p in phrasings], ref=row_key)

    def _passage_docs(self, only: set[int] | None = None) -> Iterator[Doc]:
        """The documents of the reports' sentences (``only`` those ids)."""
        previous: dict[str, Any] | None = None
        for pid, p in self.passages.items():
            if only is not None and pid not in only:
                previous = p
                continue
            text = self.pipeline.normalise(p["text"], pinyin=False)
            primary = set(self.pipeline.tokens(text)) | set(self._tokens(p["context"] or ""))
            secondary = set(self._tokens(p["section"] or ""))
            if previous is not None and previous["report_id"] == p["report_id"] and previous["section"] == p["section"]:
                # The sentence before often names what this one counts ("中国统计"微博 ...
                # then "用户达251.7万").
                secondary |= set(self._tokens(previous["text"]))
            previous = p
            yield Doc(f"passage:{pid}", "passage", [text.replace(" ", "")], primary, secondary,
                      group=p["report_id"], ref=pid)

    # -- answering ----------------------------------------------------------------
    def ask(self, question: str, context: Context | None = None, shared: Any = None) -> Reply:
        """Answer one question (already validated as a non-empty string).

        ``context`` is the figure the same session asked about last; a short follow-up
        (那予以公开的呢, 那2020年呢) is answered by changing only what it names.

        Citizens ask the same things again and again: a question asked without context
        (or with one it cannot be reading, see below) is answered from a per-desk cache of
        recent replies (a desk lives as long as its knowledge version, so a staff change
        empties it), and then from ``shared``, the replies of the other worker processes of
        the same server (:class:`service.shared_replies.SharedReplies`), under
        :attr:`knowledge_key`.
        """
        # In the chat every question after the first answer comes with its session's context,
        # yet most are read as if asked first: after an FAQ answer only a question that refers
        # back is read with it (:meth:`_about_previous`), and after a figure only one that
        # could follow it up (``Reply.may_follow_a_figure`` of the reply without context).
        # The rest are answered from the cache, as without context.
        if context is not None and context.entry_id is not None and self.may_refer_back(question):
            return self._ask(question, context)
        alone = self._ask_alone(question, shared)
        if context is not None and context.fact is not None and alone.may_follow_a_figure:
            return self._ask(question, context)
        return replace(alone, suggestions=list(alone.suggestions), candidates=list(alone.candidates),
                       tokens=list(alone.tokens),
                       # as _ask leaves it: the flag is worked out for questions asked alone
                       may_follow_a_figure=alone.may_follow_a_figure and context is None)

    def _ask_alone(self, question: str, shared: Any) -> Reply:
        """The reply to a question asked without context: from this desk's cache, from the
        other workers' (``shared``), or worked out. The caller copies it before changing it."""
        year = (self.settings.today or date.today()).year
        key = (question, year)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            return cached
        limit = ANSWER_CACHE_SIZE if shared is None else LOCAL_ANSWER_CACHE_SIZE
        if shared is not None and (self.knowledge_key[0] != self.version or not self.knowledge_key[1]):
            shared = None  # not known which knowledge this is: nothing shared
        knowledge = f"{self.version}:{self.knowledge_key[1]}"
        reply = shared.get(knowledge, year, question) if shared is not None else None
        if reply is None:
            reply = self._ask(question, None)
            if shared is not None:
                shared.put(knowledge, year, question, reply)
        with self._cache_lock:
            self._cache[key] = reply
            while len(self._cache) > limit:
                self._cache.popitem(last=False)
        return reply

    def _analyse(self, question: str) -> Analysis:
        """Normalise, scope, retrieve and score candidates with the fitted candidate model."""
        question = drop_asides(question)
        normalised, tokens = self.pipeline.analyse(drop_contact_details(question, self._contact))
        rewritten = self.pipeline.rewrite(clean(question))
        compact = expand_years(_PUNCT_RE.sub("", rewritten))
        scope = self._scope(compact)
        target, missing = self._resolve(scope)
        quantity = any(w in compact for w in self.language.quantity_words) and \
            not any(w in compact for w in self.language.not_quantity_words)
        # Naming the home agency (统计局官网) is no sign of a report question; naming another is.
        other_agency = any(a != self.settings.home_agency for a in scope.agencies)
        report_intent = quantity or bool(scope.years) or other_agency or "报告" in compact
        terms = self.index.prepare(tokens, neutral=scope.tokens)
        # A report not held still has its kind of figures searched (in the latest report held),
        # so a figure question about it is recognised and declined.
        fallback = next((r for r in self.reports if r.agency == self.settings.home_agency), None)
        groups = [target.id] if target else ([fallback.id] if fallback and missing else [])
        # The agency a question names (向国家统计局申请……) says nothing of which entry
        # answers it: literal similarity is measured without it.
        literal = normalised
        for name in sorted(scope.typed.values(), key=len, reverse=True):
            literal = literal.replace(name, "")
        candidates = self.index.search(terms, literal if literal.strip() else normalised, groups=groups, limit=12,
                                       typed=normalised)
        total = sum(t.weight for t in terms) or 1.0
        # Words the knowledge never uses (公租房, 居住证) make every candidate less likely.
        unknown = sum(t.weight for t in terms if not t.known and t.weight > STRAY_CHAR_WEIGHT) / total
        domain = any(t.known and t.text in self.index.common and t.text not in self.language.question_words
                     for t in terms)
        unknown_max = max((t.weight for t in terms if not t.known and t.weight > STRAY_CHAR_WEIGHT), default=0.0) / total
        q = Question(quantity=quantity, report_intent=report_intent, unknown=unknown, unknown_max=unknown_max,
                     domain_word=domain,
                     foreign=self.foreign_topic(compact, exact=any(c.fuzzy >= 0.999 for c in candidates[:1])),
                     n_terms=len(terms), repaired=any(t.repaired_from for t in terms))
        model = self.model
        best_chars = max((c.chars for c in candidates if c.doc.kind != "passage"), default=0.0)
        meaning = self.encoder.encode(tokens) if candidates else None
        semantic = [self._semantic(meaning, c.doc) for c in candidates]
        best_semantic = max(semantic, default=0.0)
        for cand, sem in zip(candidates, semantic):
            has_digit = cand.doc.kind == "passage" and bool(_DIGIT_RE.search(cand.doc.phrasings[0]))
            cand.features = candidate_features(cand.doc.kind, cand.coverage, cand.precision, cand.fuzzy,
                                               has_digit, q, cand.chars, cand.chars >= best_chars > 0,
                                               sem, sem >= best_semantic > 0)
            cand.logit = model.candidate_score(cand.features)
            cand.score = sigmoid(cand.logit)
        candidates.sort(key=lambda c: c.logit, reverse=True)
        _prefer_named_part(candidates)
        if candidates:
            second = candidates[1].logit if len(candidates) > 1 else None
            features = decision_features(candidates[0].logit, second, q, candidates[0].features,
                                         semantic_others=_semantic_others(candidates))
            confidence = model.confidence(features)
        else:
            features, confidence = {}, 0.0
        vague = (bool(candidates) and candidates[0].coverage >= 0.999 and all(t.known for t in terms)
                 and any(t.text in self.index.common and t.text not in self.language.question_words
                         for t in terms))
        return Analysis(question, normalised, compact, scope, target, missing, q, terms, candidates,
                        features, confidence, vague, rewritten)

    def _semantic(self, meaning: Any, doc: Doc) -> float:
        """How close in meaning the question is to the FAQ entry's closest phrasing (report
        rows and passages are named by labels and figures, not by meaning: 0)."""
        if meaning is None or doc.kind != "faq":
            return 0.0
        rows = self._doc_vectors.get(doc.key)
        if rows is None:
            rows = self.encoder.encode_many(doc.phrasing_tokens)
            if len(self._doc_vectors) >= DOC_VECTOR_CACHE:
                self._doc_vectors.clear()
            self._doc_vectors[doc.key] = rows
        return best_similarity(meaning, rows)

    def _focus(self, question: str, whole: Analysis) -> tuple[Analysis, list[Analysis]]:
        """For a long message, the question inside it, and the other questions it asks.

        The message is read whole and clause by clause (each asking clause, alone and with
        the clause before it). Two asking clauses that each have a confident answer of their
        own are two questions: the first is answered, the others offered. Otherwise every
        candidate is scored by its mean log-odds over the readings, so a candidate must fit
        both the story's words and the asking clause."""
        rewritten = whole.rewritten
        texts = focus_texts(rewritten)
        questions = [self._analyse(t) for t in separate_questions(rewritten)]
        if questions and questions[0].candidates and not texts:
            # Several short questions: the first is answered (or asked back), the others offered.
            main = questions[0]
            others = [q for q in questions[1:] if q.candidates and q.top_key != main.top_key
                      and q.confidence >= self.model.clarify_threshold]
            return main, others
        if not texts:
            return whole, []
        # A story is read whole and by its asking clauses; an asking sentence of its own that
        # another entry answers confidently is offered beside the answer.
        parts = [self._analyse(t) for t in texts]
        in_context = asking_in_context(rewritten)
        # Another body's business counts when the story asks about it, not when it only
        # narrates it (陪老伴去北京看病 … 可以直接上门提交吗 asks about applying in person).
        if whole.question.foreign:
            asked = self.foreign_topic(_PUNCT_RE.sub("", asking_part(rewritten)))
            # ... but a question that points back at the story (这种情况该怎么办) is about
            # what it narrates: the topic is dropped only when the asking clauses, read with
            # the clause before them, speak of disclosure (把申请交了 … 可以直接上门提交吗).
            asking = "".join(in_context)
            if asked is None and not any(w in asking for w in self.language.disclosure_words):
                asked = whole.question.foreign
            if asked != whole.question.foreign:
                whole = replace(whole, question=replace(whole.question, foreign=asked))
        main = self._merge([whole, *parts], whole, long_message=True)
        if main.candidates and not self.model.answers(main.features, main.confidence):
            # A story's words dilute its reading; an asking clause read with the clause before
            # it is a short question of its own. When the desk would answer that question
            # outright and it is the story's best candidate too, it is the answer.
            backed = [p for t, p in zip(texts, parts) if t in in_context
                      and p.top_key == main.top_key and p.candidates[0].doc.kind == "faq"
                      and not p.question.foreign and self.model.answers(p.features, p.confidence)]
            if backed:
                main = max(backed, key=lambda p: p.confidence)
        others = [q for q in questions if q.candidates and q.top_key != main.top_key
                  and q.confidence >= self.model.clarify_threshold]
        return main, others

    def _ask(self, question: str, context: Context | None) -> Reply:
        chit = self._chitchat(question)
        if chit is not None:
            return chit
        whole = self._analyse(question)
        figure_follow_up = (context is not None and context.fact is not None and
                            self._is_follow_up(whole.compact, whole.scope, whole.candidates, whole.terms))
        if context is not None and context.entry_id is not None and not figure_follow_up:
            whole = self._about_previous(question, whole, context.entry_id)
        a, others = self._focus(question, whole)
        reply = self._decide(context, a, others, whole)
        if context is None:
            # What Desk.ask needs to answer the question from the cache after a figure: the
            # two tests that _decide makes of a figure asked before.
            reply.may_follow_a_figure = self._asks_a_sum(a) or self._is_follow_up(
                a.compact, a.scope, a.candidates, a.terms)
        return reply

    def _asks_a_sum(self, a: Analysis) -> bool:
        """合起来多少, 一共多少: a sum of what was asked before, naming no row or column of its
        own (那行政诉讼一共多少 names one)."""
        return bool(_SUM_RE.search(a.compact) and not self._names_row(a.compact, a.candidates)
                    and self._named_column(_SUM_RE.sub("", a.compact), None) is None)

    def _decide(self, context: Context | None, a: Analysis, others: list[Analysis], whole: Analysis) -> Reply:
        """The reply to the focused reading ``a`` of a question (``others``: the other
        questions of the same message), after the conversation's ``context``."""
        candidates, scope, target = a.candidates, a.scope, a.target
        explained = [c.explain() for c in candidates[:5]]
        base = {"normalised": whole.normalised, "tokens": [t.text for t in a.terms], "candidates": explained}
        top = candidates[0] if candidates else None
        model = self.model

        if context is not None and context.fact is not None:
            if self._asks_a_sum(a):
                summed = self._sum_follow_up(context, base)
                if summed is not None:
                    return summed
            if self._is_follow_up(a.compact, scope, candidates, a.terms):
                return self._follow_up(context.fact, scope, candidates, a.compact, base)
        if a.missing and self._declines_missing(a, top):
            figures = [c for c in candidates[:3] if c.doc.kind != "faq" and c.score >= model.suggestion_floor]
            row = figures[0].doc.ref if figures and figures[0].doc.kind == "fact" else ""
            return self._decline(a.missing, scope, row, None, base)
        if a.question.foreign:
            # Another body's business: say whose and where to go, rather than a ticket a
            # reviewer could only forward (the citizen may still send it to staff).
            body = a.question.foreign
            return Reply("escalated", "referral", self.referral_text.replace("{body}", body),
                         confidence=a.confidence, key=f"referral:{body}",
                         reason=f"属于其他部门的职责（{body}），知识库未涉及", **base)
        offer = model.choice_confidence(a.features) >= model.clarify_threshold if top is not None else False
        # One common word (期限, 投诉) names a topic many entries share: a choice, not a guess
        # (行政复议 with a year or 多少 asks for a figure, which is no guess).
        one_word_topic = (a.vague and len(a.terms) == 1 and top is not None and top.doc.kind == "faq"
                          and not a.question.report_intent)
        answers = top is not None and model.answers(a.features, a.confidence) and not one_word_topic
        if top is None or (not answers and not offer and not a.vague):
            return Reply("escalated", None, "", confidence=a.confidence,
                         reason="没有足够接近的知识", **base)
        if not answers:
            return self._clarify(candidates, target, base, confidence=a.confidence,
                                 floor=0.0 if a.vague else model.suggestion_floor)
        if top.doc.kind == "passage":
            # Close passages of one report are answered together: they are neighbouring
            # figures (总数据量, 访问量, 注册用户量), not rival meanings.
            rivals = [c for c in candidates[1:3] if c.doc.kind == "passage" and c.score >= top.score * 0.9]
            reply = self._answer_passages([top, *rivals], base)
        else:
            reply = self._answer(top, target, scope, a.compact, base)
        reply.confidence = a.confidence
        # Two questions in one message: the other is offered to be asked next.
        for other in others:
            suggestion = self._suggestion(other.candidates[0], other.target)
            if suggestion and len(reply.suggestions) < self.settings.max_suggestions:
                reply.suggestions.append(suggestion)
        if others:
            reply.reason += "；消息中还有其他问题，已作为建议列出"
        return reply

    def _means_something(self, text: str) -> bool:
        """Whether words beside small talk ask or name something: a question or amount word, a
        word of two or more characters the knowledge uses, or another body's topic."""
        compact = _PUNCT_RE.sub("", text)
        if any(w in compact for w in (*self.language.question_words, *self.language.quantity_words)):
            return True
        if self.foreign_topic(compact) is not None:
            return True
        return any(len(tok) > 1 and tok in self.index.postings for tok in self._tokens(text))

    def _chitchat(self, question: str) -> Reply | None:
        intent = self.smalltalk.match(question, knows=self._means_something)
        if intent is None:
            return None
        kind = "handoff" if intent.name == "handoff" else "chitchat"
        return Reply("answered", kind, intent.reply, confidence=1.0, ref=f"chitchat:{intent.name}",
                     key="handoff" if kind == "handoff" else f"chitchat:{intent.name}",
                     normalised=clean(question), reason="寒暄" if kind == "chitchat" else "请求人工服务")

    def _scope(self, compact: str) -> Scope:
        years = [int(m.group(1)) for m in _YEAR_RE.finditer(compact)]
        if not years:  # a year written out wins over 今年/去年/上年度
            years = relative_years(compact, self.settings.today or date.today())
        agencies: list[str] = []
        typed: dict[str, str] = {}
        rest = compact
        # The names people use for the agencies whose reports are held (苏州市府办, 安吉),
        # longest first; then names of other local agencies, so 上海市统计局 is not read as 统计局.
        for alias, full in self._held_aliases:
            at = rest.find(alias)
            if at < 0:
                continue
            if alias in self._place_aliases and _OTHER_BODY_RE.match(rest[at + len(alias):]):
                continue  # 广东省统计局 is not 广东省人民政府办公厅, though both are 广东
            agencies.append(full)
            typed.setdefault(full, alias)
            rest = rest.replace(alias, " ")
        local = list(_LOCAL_AGENCY_RE.finditer(rest))
        if self._place_bureau is not None:
            local += list(self._place_bureau.finditer(compact))
        for m in sorted(local, key=lambda m: len(m.group(0)), reverse=True):
            if m.group(0) not in rest:
                continue
            found = m.group(0).lstrip("年度的")  # 2021年广东省政府: the year's 年 is not the name's
            name = self.agencies.get(found, found)
            typed.setdefault(name, found)
            if m.re is self._place_bureau:
                # 上海统计局 means the held 上海市统计局 report, if there is one.
                held = [a for a in self.agencies.values() if a.startswith(m.group(1)) and a.endswith("统计局")]
                name = held[0] if held else name
            agencies.append(name)
            rest = rest.replace(m.group(0), " ")
        for name in sorted(self.agencies, key=len, reverse=True):
            if name and name in rest:
                agencies.append(self.agencies[name])
                typed.setdefault(self.agencies[name], name)
                rest = rest.replace(name, " ")
        if self._place is not None and any(w in compact for w in self.language.quantity_words):
            # A figure asked of a place (上海市2021年收到多少申请) is that place's, not ours.
            for m in self._place.finditer(rest):
                agencies.append(m.group(0))
        neutral: set[str] = set()
        for y in years:
            neutral.add(str(y))
            neutral.add(str(y)[2:])  # 21年 is tokenised as 21
        for word in _RELATIVE_YEARS:
            neutral.add(word)
        for a in agencies:
            neutral.update(self._tokens(a))
            neutral.add(clean(a))
        for name, full in self.agencies.items():
            if full in agencies:
                neutral.update(self._tokens(name))
        return Scope(sorted(set(years)), list(dict.fromkeys(agencies)), neutral, typed)

    def _resolve(self, scope: Scope) -> tuple[ReportRef | None, str | None]:
        """The report a question is about, or a description of what is missing."""
        agency = scope.agencies[0] if scope.agencies else self.settings.home_agency
        held = [r for r in self.reports if r.agency == agency]
        if scope.years:
            year = scope.years[-1]
            match = [r for r in held if r.year == year]
            if match:
                return match[0], None
            return None, f"{year}年{self._display(scope, agency)}"
        if held:
            return max(held, key=lambda r: r.year), None
        if scope.agencies:
            return None, self._display(scope, agency)
        return None, None

    @staticmethod
    def _display(scope: Scope, agency: str) -> str:
        """An agency's full name, with the name the citizen used when it differs (国家发展和改革委员会（发改委）)."""
        typed = scope.typed.get(agency)
        return f"{agency}（{typed}）" if typed and typed != agency and typed not in agency else agency

    def _decline(self, missing: str, scope: Scope, row: str, col: str | None,
                 base: dict[str, Any]) -> Reply:
        year = scope.years[-1] if scope.years else ""
        agency = scope.agencies[0] if scope.agencies else self.settings.home_agency
        return Reply("answered", "fact", self._decline_text(missing), confidence=1.0,
                     ref=f"decline:{row}:{col or ''}:{year}:{agency}",
                     reason="问题所指的报告不在知识库中", **base)

    def _merge(self, readings: list[Analysis], whole: Analysis, long_message: bool = False) -> Analysis:
        """One reading from several: each candidate scored by its mean log-odds over them (a
        reading that did not retrieve it counts its lowest score)."""
        floor = {id(r): (min(c.logit for c in r.candidates) if r.candidates else -10.0) for r in readings}
        best: dict[str, Candidate] = {}
        total: dict[str, float] = {}
        for r in readings:
            for c in r.candidates:
                total[c.doc.key] = total.get(c.doc.key, 0.0) + c.logit
                if c.doc.key not in best or c.logit > best[c.doc.key].logit:
                    best[c.doc.key] = c
        for key in total:
            for r in readings:
                if not any(c.doc.key == key for c in r.candidates):
                    total[key] += floor[id(r)]
        merged = [replace(cand, logit=total[key] / len(readings), score=sigmoid(total[key] / len(readings)))
                  for key, cand in best.items()]
        merged.sort(key=lambda c: c.logit, reverse=True)
        merged = merged[:12]
        if not merged:
            return whole
        second = merged[1].logit if len(merged) > 1 else None
        agree = sum(1 for r in readings if r.candidates and r.candidates[0].doc.key == merged[0].doc.key)
        features = decision_features(merged[0].logit, second, whole.question, merged[0].features,
                                     long_message=long_message, semantic_others=_semantic_others(merged),
                                     readings_agree=agree / len(readings) if long_message else 0.0,
                                     best_reading=best[merged[0].doc.key].logit if long_message else None)
        return replace(whole, candidates=merged, features=features, confidence=self.model.confidence(features))

    def _declines_missing(self, a: Analysis, top: Candidate | None) -> bool:
        """Whether a question naming a report that is not held asks for one of its figures,
        and so is declined: its kind of figure was found, or an amount is asked of the
        report (2019年度报告里行政复议有几件) whether or not it was found, unless an FAQ
        entry answers the question outright (2022年的年度报告包括几个方面的内容 asks about
        the report, not a figure in it) and no report row covers the question's words."""
        names_report = "报告" in a.compact or "年报" in a.compact
        if not (a.question.quantity or a.scope.years or names_report):
            return False
        if top is not None and top.doc.kind == "faq" and not a.question.quantity:
            return False
        if any(c.doc.kind != "faq" and c.score >= self.model.suggestion_floor for c in a.candidates[:3]):
            return True
        return bool(a.question.quantity and a.scope.years and names_report
                    and (covering_rows(a.candidates)
                         or not (top is not None and top.doc.kind == "faq"
                                 and self.model.answers(a.features, a.confidence))))

    def _answer(self, top: Candidate, target: ReportRef | None, scope: Scope, compact: str,
                base: dict[str, Any]) -> Reply:
        if top.doc.kind == "faq":
            entry = self.entries[top.doc.ref]
            return Reply("answered", "faq", entry["answer"].strip(), source=entry["source"] or None,
                         confidence=top.score, entry_id=entry["id"], ref=top.doc.key,
                         key=f"faq:{entry['key']}", reason="唯一明确的最佳匹配", **base)
        return self._answer_fact(top, target, compact, base)

    def _clarify(self, candidates: list[Candidate], target: ReportRef | None,
                 base: dict[str, Any], confidence: float, floor: float) -> Reply:
        suggestions: list[dict[str, Any]] = []
        for cand in candidates:
            if cand.score < floor or len(suggestions) >= self.settings.max_suggestions:
                break
            suggestion = self._suggestion(cand, target)
            if suggestion and suggestion["question"] not in {s["question"] for s in suggestions}:
                suggestions.append(suggestion)
        if not suggestions:
            return Reply("escalated", None, "", confidence=confidence,
                         reason="候选不足以澄清", **base)
        return Reply("clarify", None, "您是不是想问以下问题？请点击最接近的一项，或换个说法再问。",
                     confidence=confidence, suggestions=suggestions,
                     reason="多个候选接近或把握不足", **base)

    def _suggestion(self, cand: Candidate, target: ReportRef | None) -> dict[str, Any] | None:
        if cand.doc.kind == "faq":
            entry = self.entries[cand.doc.ref]
            return {"id": entry["id"], "key": f"faq:{entry['key']}", "question": entry["question"]}
        if cand.doc.kind == "fact" and target is not None and self._row_cells(target.id, cand.doc.ref):
            label = cand.doc.phrasings[0]
            return {"id": f"fact:{cand.doc.ref}", "key": f"fact:{cand.doc.ref}",
                    "question": f"{target.year}年{target.agency}{label}是多少？"}
        if cand.doc.kind == "passage":
            p = self.passages[cand.doc.ref]
            report = self.reports_by_id[p["report_id"]]
            topic = (p["context"] or p["text"])[:24].rstrip("。；，")
            return {"id": f"passage:{p['id']}", "key": "passage",
                    "question": f"{report.year}年{report.agency}{topic}的情况"}
        return None

    def explain(self, question: str) -> dict[str, Any]:
        """Everything the curators' test pane shows about a question."""
        reply = self.ask(question)
        whole = self._analyse(question)
        reading, _ = self._focus(question, whole)
        top = reading.candidates[0] if reading.candidates else None
        return {"reply": reply.public(), "normalised": reply.normalised, "tokens": reply.tokens,
                "candidates": reply.candidates, "reason": reply.reason,
                "rewrites": self.pipeline.rewrites_in(clean(question)),
                "decision": self.model.contributions(reading.features, "decision") if top else [],
                "choice": self.model.contributions(reading.features, "choice") if top else [],
                "choice_confidence": self.model.choice_confidence(reading.features) if top else 0.0,
                "top_features": self.model.contributions(top.features) if top else [],
                "thresholds": {"answer": self.model.threshold_for(reading.features) if top else self.model.answer_threshold,
                               "clarify": self.model.clarify_threshold},
                "model_confidence": reading.confidence}
