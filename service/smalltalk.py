"""Small talk by intent: greetings, thanks, farewells, acknowledgements, praise, complaints
about the desk, questions about the desk itself, and requests for a person.

Pure Python (no Flask). A message is small talk when, with punctuation and emoji set
aside, it is made only of one or more intents' phrases and "soft" words (particles,
pronouns, intensifiers): 你好呀, 谢谢啦🙏, 好的收到, 在吗在吗, 晚安. Anything left over
that is not soft (申请, 收费) makes it a question, and the desk answers it as one.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from .text import clean

# Order in which intents win when a message mixes several (好的谢谢 is thanks; 你好，转人工
# is a request for a person).
PRIORITY = ["handoff", "complaint", "thanks", "goodbye", "identity", "praise", "greeting", "acknowledge"]
_ASCII_WORD = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")
_NON_WORD = re.compile(r"[^\w\u4e00-\u9fff]+|_")
MAX_CHARS = 30
MAX_REMAINDER = 6  # characters beside the phrases that may be tolerated


def _longest_first(word: str) -> tuple[int, str]:
    """Soft words are taken away longest first (equals in a fixed order)."""
    return -len(word), word


@dataclass
class Intent:
    """One kind of small talk and its reply."""

    name: str
    reply: str
    phrases: list[str]
    soft: list[str]


class SmallTalk:
    """Recognises small-talk intents in a message."""

    def __init__(self, data: dict[str, Any], fill: dict[str, str] | None = None):
        fill = fill or {}
        common_soft = [clean(w) for w in data.get("soft", [])]
        self.intents: list[Intent] = []
        for raw in data.get("intent", []):
            reply = str(raw.get("reply", "")).strip()
            for name, value in fill.items():
                reply = reply.replace("{" + name + "}", value)
            self.intents.append(Intent(str(raw["name"]), reply, [clean(p) for p in raw.get("phrases", []) if clean(p)],
                                       [clean(w) for w in raw.get("soft", [])] + common_soft))
        self.by_name = {i.name: i for i in self.intents}
        # Prepared once: phrases longest first; English ones as whole-word patterns.
        self._phrases = sorted(((p, i) for i in self.intents for p in i.phrases), key=lambda x: len(x[0]), reverse=True)
        self._word_patterns = {p: re.compile(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])")
                               for p, _ in self._phrases if p.isascii()}
        soft_words = {w for i in self.intents for w in i.soft}
        self._word_patterns.update({w: re.compile(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])")
                                    for w in soft_words if w.isascii()})
        self._soft_sorted = {i.name: sorted(set(i.soft), key=len, reverse=True) for i in self.intents}
        self._chars = set("".join(p for p, _ in self._phrases if not p.isascii()))
        # The same phrases split by script, each with its place in the longest-first order
        # (a message in Chinese alone never visits the English ones).
        self._ascii_phrases = [(n, p, i) for n, (p, i) in enumerate(self._phrases) if p.isascii()]
        self._cjk_phrases = [(n, p, i) for n, (p, i) in enumerate(self._phrases) if not p.isascii()]
        # Each Chinese phrase under its first character: a message visits only the phrases
        # that begin with one of its characters (removing a phrase brings no new character,
        # so no other phrase can appear), some tens of them rather than all 775.
        self._cjk_by_first: dict[str, list[int]] = {}
        for k, (_, phrase, _) in enumerate(self._cjk_phrases):
            self._cjk_by_first.setdefault(phrase[0], []).append(k)
        # Characters that neither a phrase nor a soft word can take away: a message with more
        # than MAX_REMAINDER of them is more than small talk, whatever else it holds.
        self._removable = self._chars | set("".join(w for w in soft_words if not w.isascii()))
        self._soft_of: dict[tuple[str, ...], tuple[list[str], dict[str, list[str]]]] = {}

    def _soft_words(self, found: list[Intent]) -> tuple[list[str], dict[str, list[str]]]:
        """The soft words of the intents ``found``, longest first: the English ones, and the
        Chinese ones under their first character; worked out once per set of intents."""
        key = tuple(sorted({i.name for i in found}))
        kept = self._soft_of.get(key)
        if kept is None:
            words = sorted({w for intent in found for w in self._soft_sorted[intent.name]}, key=_longest_first)
            by_first: dict[str, list[str]] = {}
            for w in words:
                if not w.isascii():
                    by_first.setdefault(w[0], []).append(w)
            kept = self._soft_of[key] = ([w for w in words if w.isascii()], by_first)
        return kept

    def match(self, question: str, knows: Callable[[str], bool] | None = None) -> Intent | None:
        """The intent a message is made of, or None when it says more than small talk.

        With ``knows`` (whether some words mean something to the knowledge: a topic, a
        question word), a short remainder that means nothing to it is tolerated beside the
        phrases (烦死了，直接给我转人工; 谢谢你今天帮了大忙), as long as the phrases make up
        at least as much of the message as the remainder does."""
        text = clean(question)
        if len(_NON_WORD.sub("", text)) > MAX_CHARS:
            return None
        if not _NON_WORD.sub("", text):
            # Emoji or punctuation alone (👍, 🙏, ？): a reaction, not a question.
            has_symbol = any(unicodedata.category(ch) == "So" for ch in text)
            return self.by_name.get("acknowledge") if has_symbol else None
        # English words match whole (hi is not in shi); Chinese phrases anywhere, longest first.
        ascii_words = " ".join(_ASCII_WORD.findall(_NON_WORD.sub(" ", text)))
        rest = _NON_WORD.sub("", re.sub(r"[a-z0-9]+", "", text))
        if rest and not (set(rest) & self._chars) and not ascii_words:
            return None  # no character of any phrase: not small talk
        removable = self._removable
        if sum(ch not in removable for ch in rest) > MAX_REMAINDER:
            return None  # these stay, and leave too much beside the phrases (see below)
        placed: list[tuple[int, Intent]] = []
        if ascii_words:
            for n, phrase, intent in self._ascii_phrases:
                if phrase in ascii_words:
                    pattern = self._word_patterns[phrase]
                    if pattern.search(ascii_words):
                        ascii_words = pattern.sub(" ", ascii_words)
                        placed.append((n, intent))
        if rest:
            by_first, phrases = self._cjk_by_first, self._cjk_phrases
            for k in sorted({k for ch in set(rest) for k in by_first.get(ch, ())}):
                n, phrase, intent = phrases[k]
                if phrase in rest:
                    rest = rest.replace(phrase, "")
                    placed.append((n, intent))
        if not placed:
            return None
        found = [intent for _, intent in sorted(placed, key=lambda p: p[0])]
        ascii_soft, cjk_soft = self._soft_words(found)
        for word in ascii_soft:
            if word in ascii_words:
                ascii_words = self._word_patterns[word].sub(" ", ascii_words)
        # Longest first (the English words never touch ``rest``): only the words beginning
        # with a character of the message, as for the phrases.
        for word in sorted({w for ch in set(rest) for w in cjk_soft.get(ch, ())}, key=_longest_first):
            rest = rest.replace(word, "")
        left = rest + "".join(ascii_words.split())
        if left:
            said = len(_NON_WORD.sub("", text).replace(" ", ""))
            if knows is None or len(left) > MAX_REMAINDER or 2 * len(left) > said or knows(rest + " " + ascii_words):
                return None
        return min(found, key=lambda i: PRIORITY.index(i.name) if i.name in PRIORITY else len(PRIORITY))
