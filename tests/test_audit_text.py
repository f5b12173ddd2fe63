"""The audit log reads in Chinese: action names for every code written, readable targets,
before/after as a field-by-field difference (never JSON, never cut off), Beijing time."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import csrf_token
from service import faq
from service.audit_text import ACTION_NAMES, action_name, diff_segments, field_changes, target_label
from service.storage import connect

SERVICE = Path(__file__).resolve().parent.parent / "service"


def written_action_codes() -> set[str]:
    """Every action code the service writes to the audit log, read from its source."""
    codes: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r"\baudit(?:ed)?\([^\"\n]*?\"([a-z_]+)\"", text))
        codes |= set(re.findall(r"\b_saved\([^\"\n]*?\"([a-z_]+)\"", text))
        codes |= {"ticket_" + c for c in re.findall(r"\b_update\(db, user, \"([a-z_]+)\"", text)}
        codes |= {"application_" + c for c in re.findall(r"\b_change\(ticket_id, \"([a-z_]+)\"", text)}
    # Actions named in a variable: faq.set_status, tickets.set_status, the report import.
    codes |= {"archive_entry", "restore_entry", "ticket_close", "ticket_status", "import_report", "replace_report"}
    return codes


def test_every_action_code_written_has_a_chinese_name() -> None:
    codes = written_action_codes()
    assert {"create_entry", "import_archive", "ticket_take", "application_convert"} <= codes
    missing = sorted(c for c in codes if c not in ACTION_NAMES)
    assert not missing, f"add Chinese names for {missing} to service/audit_text.py"


@pytest.mark.parametrize(("target", "titles", "expected"), [
    ("entry:12", {"entry:12": "提交申请后多久能收到答复？"}, "条目 12「提交申请后多久能收到答复？」"),
    ("entry:13", {}, "条目 13"),
    ("ticket:3", {"ticket:3": "GK0000000001"}, "工单 3「GK0000000001」"),
    ("synonym:答复", {}, "同义词 答复"),
    ("faq", {}, "问答库"),
])
def test_targets_are_named(target: str, titles: dict, expected: str) -> None:
    assert target_label(target, titles) == expected


def test_unknown_codes_are_marked_as_such() -> None:
    assert action_name("create_entry") == "新建条目" and action_name("frobnicate") == "其他操作（frobnicate）"


def test_word_diff_keeps_the_text_and_marks_the_change() -> None:
    segments = diff_segments("自收到申请之日起20个工作日内答复", "自收到申请之日起15个工作日内答复")
    assert segments == [("same", "自收到申请之日起"), ("del", "20"), ("ins", "15"), ("same", "个工作日内答复")]
    assert "".join(t for op, t in segments if op != "ins") == "自收到申请之日起20个工作日内答复"


def test_field_changes_name_fields_values_and_skip_context() -> None:
    changes = field_changes({"username": "zhou", "role": "reviewer", "active": True},
                            {"role": "curator", "active": False},
                            {"role": {"reviewer": "答复审核员", "curator": "知识维护员"}})
    assert [(c.label, c.old, c.new) for c in changes] == [("角色", "答复审核员", "知识维护员"), ("启用", "是", "否")]
    [alts] = field_changes({"alternates": ["甲", "乙"]}, {"alternates": ["甲", "丙"]})
    assert alts.segments == [("same", "甲\n"), ("del", "乙\n"), ("ins", "丙\n")]


def test_audit_page_is_chinese_readable_and_never_cut(app, client, auth) -> None:
    db = connect(app.config["DATABASE"])
    target = db.execute("select id from entries where key = 'reply-deadline'").fetchone()[0]
    long_answer = "这是一段很长的答案。" * 80 + "END-OF-ANSWER-42"
    faq.update_entry(db, None, target, {"question": "提交申请后多久能收到答复？", "answer": long_answer,
                                        "status": "published"}, 1)
    faq.add_synonym(db, None, "回音信", "答复")
    db.execute("update audit_log set at = '2024-05-01T06:03:00+00:00' where action = 'add_synonym'")
    auth.login("boss", "admin")
    page = client.get("/staff/admin/audit").get_data(as_text=True)
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert "修改条目" in body and "添加同义词" in body and "update_entry" not in body
    assert f"条目 {target}「提交申请后多久能收到答复？」" in body
    assert "{" not in body and "}" not in body and '"answer"' not in body  # no JSON
    assert "END-OF-ANSWER-42" in body  # the whole value, folded, not cut
    assert "<details><summary>展开“答案”的修改前后（较长）</summary>" in body
    assert "<dt>标准词</dt>" in body and "2024-05-01 14:03" in body  # Beijing time
    # The filter offers the actions by their Chinese names.
    assert '<option value="update_entry">修改条目</option>' in page
    filtered = client.get("/staff/admin/audit?action=add_synonym").get_data(as_text=True)
    assert "修改条目" not in filtered.split("<tbody>")[1]


def test_a_restore_and_an_import_read_in_chinese(app, client, auth) -> None:
    auth.login("cur", "curator")
    db = connect(app.config["DATABASE"])
    target = db.execute("select id from entries where key = 'reply-deadline'").fetchone()[0]
    token = csrf_token(client, "/staff/faq")
    form = dict(next(db.query("select question, answer, category, source, status, version from entries "
                              "where id = ?", [target])))
    client.post(f"/staff/faq/{target}", data={**form, "answer": "改了。", "csrf_token": token})
    client.post(f"/staff/faq/{target}/versions/1/restore", data={"version": "2", "csrf_token": token})
    db.execute("update users set role = 'admin' where username = 'cur'")
    body = client.get("/staff/admin/audit").get_data(as_text=True).split("<tbody>")[1]
    assert "恢复条目的历史版本" in body and "<dt>恢复自版本</dt>" in body
    assert "〔删去：</span>改了" in body


def test_old_rows_with_plain_text_values_still_show(app, client, auth) -> None:
    db = connect(app.config["DATABASE"])
    db["audit_log"].insert({"at": "2024-01-01T00:00:00", "username": "旧系统", "action": "legacy_thing",
                            "target": "faq", "before": "not json", "after": None})
    auth.login("boss", "admin")
    response = client.get("/staff/admin/audit")
    assert response.status_code == 200 and "其他操作（legacy_thing）" in response.get_data(as_text=True)


def test_the_audit_page_survives_a_dictionary_word_that_looks_like_a_number(app, client, auth) -> None:
    """str.isdigit takes ² (and int refuses it): an audit target word:² must not break the page."""
    from service.accounts import audit
    from service.storage import connect

    audit(connect(app.config["DATABASE"]), None, "add_word", "word:²", after={"word": "²", "freq": None})
    auth.login("admin1", "admin")
    assert client.get("/staff/admin/audit").status_code == 200
