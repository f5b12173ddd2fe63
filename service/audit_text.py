"""Staff-readable differences: before/after text as marked-up segments, field by field,
and the audit log's action codes and targets in Chinese.

Pure Python (no Flask): the FAQ import preview, an entry's history and the audit log page
all show a change the same way, through :func:`field_changes`.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Every action code written to ``audit_log`` (grep ``audit(`` in service/), in Chinese.
ACTION_NAMES: dict[str, str] = {
    # FAQ entries and the knowledge's words
    "create_entry": "新建条目", "update_entry": "修改条目", "archive_entry": "归档条目",
    "restore_entry": "恢复条目", "restore_version": "恢复条目的历史版本",
    "add_alternate": "添加相似问法", "remove_alternate": "删除相似问法",
    "import_create": "导入：新增条目", "import_update": "导入：修改条目", "import_archive": "导入：归档条目",
    "import_faq": "导入问答库文件",
    "add_synonym": "添加同义词", "remove_synonym": "删除同义词",
    "add_paraphrase": "添加群众说法", "remove_paraphrase": "删除群众说法",
    "add_word": "添加词典词", "remove_word": "删除词典词",
    # annual reports
    "import_report": "导入年度报告", "replace_report": "替换年度报告",
    # accounts
    "create_user": "创建账号", "update_user": "修改账号", "end_sessions": "结束登录会话",
    "unlock_user": "解除登录锁定", "change_own_password": "修改本人密码",
    # tickets (service/tickets.py: ``ticket_<action>``)
    "ticket_take": "工单：接手处理", "ticket_assign": "工单：分派", "ticket_reply": "工单：答复",
    "ticket_status": "工单：更改状态", "ticket_close": "工单：关闭",
    # reviewers' canned replies (service/canned.py), review and litigation cases
    # (service/remedies.py), the drafted annual report (service/annual_report.py)
    "canned_create": "新建常用答复", "canned_update": "修改常用答复", "canned_delete": "删除常用答复",
    "remedy_create": "登记复议诉讼案件", "remedy_update": "修改复议诉讼案件",
    "remedy_delete": "删除复议诉讼案件",
    "annual_report_save": "保存年度报告草稿",
    # applications (service/views/staff_review.py: ``application_<action>``)
    "application_mark_inquiry": "申请：标记为一般咨询", "application_convert": "申请：登记为政府信息公开申请",
    "application_supplement_requested": "申请：告知补正", "application_supplement_received": "申请：收到补正",
    "application_extend": "申请：延长答复期限", "application_pause": "申请：暂停计算期限",
    "application_resume": "申请：恢复计算期限", "application_close": "申请：办结",
}

#: Field names of every before/after value the log records, in Chinese.
FIELD_LABELS: dict[str, str] = {
    "key": "编号", "question": "标准问题", "alternates": "相似问法", "answer": "答案", "category": "分类",
    "source": "来源", "status": "状态", "version": "版本", "text": "问法", "id": "编号（内部）",
    "from_ticket": "来自工单", "restored_from": "恢复自版本",
    "file": "文件", "added": "新增条数", "changed": "修改条数", "archived": "归档条数",
    "term": "同义词", "canonical": "标准词", "variant": "群众说法", "standard": "标准说法",
    "word": "词语", "freq": "词频",
    "agency": "机关", "year": "年度", "facts": "表格数据条数", "problems": "发现的问题",
    "username": "用户名", "role": "角色", "active": "启用", "password": "密码", "ended": "结束的会话数",
    "address": "来源地址",
    "code": "工单编号", "assigned_to": "处理人", "reply": "答复内容", "replied_at": "答复时间",
    "replied_by": "答复人", "closed_at": "关闭时间",
    "kind": "类型", "applicant_type": "申请人类型", "channel": "提交方式", "received_on": "收到日期",
    "supplement_requested_on": "告知补正日期", "supplement_received_on": "收到补正日期",
    "extension_days": "延长天数", "extension_reason": "延长理由", "outcome": "办理结果",
    "outcome_on": "办结日期", "pauses": "暂停计算期间", "start_on": "开始日期", "end_on": "结束日期",
    "reason": "理由", "title": "标题", "body": "内容", "figures": "表格数字", "texts": "填写的段落",
    "ticket_id": "工单", "filed_on": "立案日期", "result": "结果", "decided_on": "审结日期", "note": "备注",
}

_TARGET_KINDS = {"entry": "条目", "ticket": "工单", "user": "账号", "report": "年度报告",
                 "synonym": "同义词", "word": "词典词", "paraphrase": "群众说法", "canned": "常用答复",
                 "remedy": "复议诉讼案件", "annual_report": "年度报告草稿"}
_TOKEN_RE = re.compile(r"[A-Za-z0-9_.\-]+|\s+|.", re.S)
#: Changed stretches longer than this (tokens, both sides) that share less than half
#: their words are compared line by line: a word diff of two different texts is slow and
#: no easier to read.
MAX_WORD_DIFF = 3_000
#: Values this short (a role, a date, a count) are shown replaced whole, not word by word.
WHOLE_VALUE = 12
#: Characters after which a value is folded into <details> on the page.
FOLD_AT = 300


@dataclass
class Change:
    """One field's change: its label, the old and new text, and the diff segments.

    ``segments`` is a list of ``(op, text)`` with ``op`` one of ``"same"``, ``"del"``,
    ``"ins"``; ``old``/``new`` are ``None`` when the field is absent on that side.
    """

    name: str
    label: str
    old: str | None
    new: str | None
    segments: list[tuple[str, str]] = field(default_factory=list)

    @property
    def long(self) -> bool:
        """Whether the page should fold this change (a long answer, many alternates)."""
        return max(len(self.old or ""), len(self.new or "")) > FOLD_AT


def action_name(code: str) -> str:
    """The Chinese name of an audit action code (an unknown code is named as such)."""
    return ACTION_NAMES.get(code, f"其他操作（{code}）")


def diff_segments(old: str, new: str) -> list[tuple[str, str]]:
    """Word-level differences of two texts (each Chinese character a word), merged into runs.

    The common beginning and end are set aside first (most edits are local), so a long
    answer with one word changed is compared cheaply; a middle still too long for a word
    diff is compared line by line.
    """
    a, b = _TOKEN_RE.findall(old), _TOKEN_RE.findall(new)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    segments: list[tuple[str, str]] = []

    def put(op: str, text: str) -> None:
        if not text:
            return
        if segments and segments[-1][0] == op:
            segments[-1] = (op, segments[-1][1] + text)
        else:
            segments.append((op, text))

    put("same", "".join(a[:head]))
    mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
    matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
    # Two long stretches that share little (quick_ratio is linear) are shown line by line.
    if len(mid_a) + len(mid_b) > MAX_WORD_DIFF and matcher.quick_ratio() < 0.5:
        mid_a = "".join(mid_a).splitlines(keepends=True)
        mid_b = "".join(mid_b).splitlines(keepends=True)
        matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            put("same", "".join(mid_a[i1:i2]))
        else:
            put("del", "".join(mid_a[i1:i2]))
            put("ins", "".join(mid_b[j1:j2]))
    put("same", "".join(a[len(a) - tail:]))
    return segments


def value_text(value: Any, names: Mapping[str, str] | None = None) -> str:
    """A stored value as a staff member reads it: lists one item a line, 是/否, named codes."""
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "\n".join(value_text(v, names) for v in value) if value else "（无）"
    if isinstance(value, dict):
        return "\n".join(f"{FIELD_LABELS.get(str(k), str(k))}：{value_text(v, names)}"
                         for k, v in value.items()) if value else "（无）"
    text = str(value)
    return names.get(text, text) if names else text


def field_changes(before: Any, after: Any, value_names: Mapping[str, Mapping[str, str]] | None = None,
                  *, only_changed: bool = True) -> list[Change]:
    """The fields of two recorded states, each with its old and new text and their diff.

    ``before``/``after`` are dicts (or ``None`` for a creation or deletion; any other value
    is shown as one field). ``value_names`` names codes per field, e.g. ``{"status":
    {"published": "发布"}}``. Unchanged fields are left out unless ``only_changed`` is false.
    A field recorded only before, when something was recorded after, is context (an
    account's name beside its new role), not a removal, and is left out.
    """
    old = _as_fields(before)
    new = _as_fields(after)
    names = dict.fromkeys([*old, *new])
    changes: list[Change] = []
    for name in names:
        if new and name not in new:
            continue
        mapping = (value_names or {}).get(name)
        old_text = value_text(old[name], mapping) if name in old else None
        new_text = value_text(new[name], mapping) if name in new else None
        if only_changed and old_text == new_text:
            continue
        if old_text is not None and new_text is not None:
            if isinstance(old.get(name), (list, dict)) or isinstance(new.get(name), (list, dict)):
                segments = _line_segments(old_text, new_text)
            elif (mapping and (old[name] in mapping or new[name] in mapping)) \
                    or max(len(old_text), len(new_text)) <= WHOLE_VALUE:
                segments = [("del", old_text), ("ins", new_text)]  # a name or a number: whole
            else:
                segments = diff_segments(old_text, new_text)
        elif old_text is not None:
            segments = [("del", old_text)]
        else:
            segments = [("ins", new_text or "")]
        changes.append(Change(name, FIELD_LABELS.get(name, name), old_text, new_text, segments))
    return changes


def _as_fields(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"value": value}


def _line_segments(old: str, new: str) -> list[tuple[str, str]]:
    """Line-level differences (one list item a line), each line kept whole."""
    a, b = old.split("\n"), new.split("\n")
    segments: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments += [("same", line + "\n") for line in a[i1:i2]]
        else:
            segments += [("del", line + "\n") for line in a[i1:i2]]
            segments += [("ins", line + "\n") for line in b[j1:j2]]
    return segments


def target_label(target: str, titles: Mapping[str, str] | None = None) -> str:
    """``entry:12`` as 条目 12「问题…」 (``titles`` maps targets to their names)."""
    kind, _, ref = (target or "").partition(":")
    if not ref:
        return {"faq": "问答库", "session": "登录会话"}.get(kind, target or "—")
    label = f"{_TARGET_KINDS.get(kind, kind)} {ref}"
    title = (titles or {}).get(target)
    return f"{label}「{title}」" if title else label


def short(text: str, limit: int = 30) -> str:
    """A title cut to ``limit`` characters with an ellipsis (for names, never for values)."""
    return text if len(text) <= limit else text[:limit] + "…"
