"""The whole FAQ as a spreadsheet: export (.xlsx, .csv), import with preview and confirm,
and malformed files refused with the row and column at fault, changing nothing."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from service.knowledge import read_faq

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
from openpyxl import Workbook, load_workbook

from conftest import csrf_token, make_app
from service import faq
from service.knowledge import knowledge_version
from service.storage import connect

HEADER = ["编号", "标准问题", "相似问法", "答案", "分类", "来源", "状态"]


@pytest.fixture
def app(tmp_path):  # type: ignore[no-untyped-def]
    """An app whose uploads go to its own instance folder, not the one shared by every test."""
    app = make_app(tmp_path)
    app.instance_path = str(tmp_path / "instance")
    return app


@pytest.fixture
def db(app):  # type: ignore[no-untyped-def]
    return connect(app.config["DATABASE"])


@pytest.fixture
def staff(client, auth):  # type: ignore[no-untyped-def]
    auth.login("curator1", "curator")
    return client


def state(db) -> tuple:  # type: ignore[no-untyped-def]
    """Everything an import may change."""
    return (list(db.query("select * from entries order by id")),
            list(db.query("select * from alternates order by id")),
            knowledge_version(db), db.execute("select count(*) from audit_log").fetchone()[0])


def uploads(app) -> set[Path]:  # type: ignore[no-untyped-def]
    """The previews kept for a confirm."""
    folder = Path(app.instance_path) / "uploads"
    return set(folder.iterdir()) if folder.exists() else set()


def table_of(data: bytes, fmt: str) -> list[list[str]]:
    if fmt == "csv":
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    return [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]


def file_of(rows: list[list[str]], fmt: str) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(client, fmt: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    response = client.get(f"/staff/faq/export.{fmt}")
    assert response.status_code == 200
    return table_of(response.data, fmt)


def upload(client, data: bytes, filename: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/staff/faq/import")
    return client.post("/staff/faq/import", data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def confirm(client, preview: str, archive: bool = False):  # type: ignore[no-untyped-def]
    """Confirm a preview as its form would; ``archive`` ticks the box that archives what the file lacks."""
    fields = dict(re.findall(r'name="(token|suffix|filename|fingerprint|csrf_token)" value="([^"]*)"', preview))
    if archive:
        fields["archive_missing"] = re.search(r'name="archive_missing" value="(\d+)"', preview).group(1)
    return client.post("/staff/faq/import/confirm", data=fields)


# -- export -----------------------------------------------------------------------


def test_csv_export_is_utf8_with_bom_one_row_per_entry(staff, db) -> None:
    response = staff.get("/staff/faq/export.csv")
    assert response.data.startswith(b"\xef\xbb\xbf")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = table_of(response.data, "csv")
    assert rows[0] == HEADER and len(rows) == 1 + 62
    first = next(r for r in rows if r[0] == "who-may-apply")
    assert first[1] == "哪些人可以向国家统计局申请政府信息公开？"
    assert first[2].split("\n")[:2] == ["任何人都可以申请吗", "企业能申请政府信息公开吗"]
    assert len(first[2].split("\n")) == len(next(e for e in read_faq(KNOWLEDGE) if e["key"] == first[0])["alternates"])
    assert first[4:] == ["申请", "《中华人民共和国政府信息公开条例》第二十七条", "发布"]


def test_xlsx_export_has_the_same_table(staff) -> None:
    assert export(staff, "xlsx") == export(staff, "csv")


def test_cells_that_look_like_formulas_stay_text(staff, db) -> None:
    db.execute("update entries set answer = '=HYPERLINK(\"http://x\")' where key = 'working-day'")
    csv_text = staff.get("/staff/faq/export.csv").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text  # a spreadsheet shows it, does not run it
    sheet = load_workbook(io.BytesIO(staff.get("/staff/faq/export.xlsx").data)).worksheets[0]
    cell = next(row[3] for row in sheet.iter_rows() if row[0].value == "working-day")
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    for fmt in ("csv", "xlsx"):  # and both come back unchanged
        rows = faq.parse_import(staff.get(f"/staff/faq/export.{fmt}").data, f"faq.{fmt}")
        assert next(r for r in rows if r.key == "working-day").answer == '=HYPERLINK("http://x")'


# -- round trip -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_unchanged_export_imports_as_no_changes(staff, app, db, fmt: str) -> None:
    before = state(db)
    response = staff.get(f"/staff/faq/export.{fmt}")
    preview = upload(staff, response.data, f"faq.{fmt}")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "没有变化" in page and "确认导入" not in page
    assert state(db) == before and not uploads(app)  # nothing to confirm, nothing kept


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_round_trip_keeps_edits_made_in_the_workspace(staff, db, fmt: str) -> None:
    # Text typed in a browser (CRLF line ends, a draft, a new category) survives a round trip.
    faq.create_entry(db, None, {"question": "新问题？", "answer": "第一行\r\n第二行", "category": "新分类",
                                "status": "draft"})
    data = staff.get(f"/staff/faq/export.{fmt}").data
    assert not faq.plan_import(db, faq.parse_import(data, f"faq.{fmt}")).has_changes


# -- preview, then apply ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_import_preview_then_apply(staff, app, db, client, fmt: str) -> None:
    rows = export(staff, fmt)
    keys = [r[0] for r in rows]
    deadline = rows[keys.index("reply-deadline")]
    deadline[3] = "20个工作日内答复（导入修改）。"
    office = rows[keys.index("disclosure-office")]
    office[2] += "\n统计局里管信息公开的是哪个司局"
    office[6] = "published"  # English status words are accepted too
    rows.remove(rows[keys.index("working-day")])  # missing from the file: kept (merge by default)
    rows.append(["canteen", "国家统计局机关食堂对外开放吗？", "食堂开放吗\n能去统计局食堂吃饭吗",
                 "国家统计局机关食堂不对外开放。", "其他", "", "发布"])
    before = state(db)

    preview = upload(staff, file_of(rows, fmt), f"edited.{fmt}")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r"将新增 <strong>1</strong> 条，修改 <strong>2</strong> 条；59条不变", page)
    assert "国家统计局机关食堂对外开放吗？" in page
    assert re.search(r"reply-deadline</td><td>[^<]+</td><td>答案</td>", page)
    assert re.search(r"disclosure-office</td><td>[^<]+</td><td>相似问法</td>", page)
    assert "working-day" in page and "默认<strong>保留不变</strong>" in page
    # Archiving is offered, unticked, behind a strong warning with the count.
    assert re.search(r'<input type="checkbox" id="archive_missing" name="archive_missing" value="1">', page)
    assert 'role="alert"' in page and "将归档 1 条文件中没有的条目" in page
    assert state(db) == before and len(uploads(app)) == 1  # nothing applied yet

    response = confirm(staff, page)
    assert response.status_code == 302
    assert "导入完成：新增1条，修改2条，归档0条；文件中没有的1条保留不变" in staff.get("/staff/faq").get_data(as_text=True)
    assert not uploads(app)
    entry = {r["key"]: r for r in db.query("select * from entries")}
    assert entry["working-day"]["status"] == "published" and entry["working-day"]["version"] == 1
    assert entry["reply-deadline"]["answer"] == "20个工作日内答复（导入修改）。"
    assert entry["canteen"]["status"] == "published"
    assert db.execute("select count(*) from alternates where entry_id = ?", [entry["canteen"]["id"]]).fetchone()[0] == 2
    assert knowledge_version(db) == before[2] + 1
    actions = [r["action"] for r in db.query("select action from audit_log order by id")][-4:]
    assert sorted(actions[:3]) == ["import_create", "import_update", "import_update"]
    assert json.loads(db.execute("select after from audit_log where action = 'import_faq'").fetchone()[0]) \
        == {"file": f"edited.{fmt}", "added": 1, "changed": 2, "archived": 0}
    # The chat uses it at once.
    assert client.post("/api/ask", json={"question": "统计局里管信息公开的是哪个司局"}).get_json()["entry_id"] == entry["disclosure-office"]["id"]
    assert "不对外开放" in client.post("/api/ask", json={"question": "能去统计局食堂吃饭吗"}).get_json()["answer"]
    # And the same file again is no change.
    assert "没有变化" in upload(staff, file_of(rows, fmt), f"edited.{fmt}").get_data(as_text=True)


def test_archived_entry_restored_by_import(staff, db) -> None:
    faq.set_status(db, None, db.execute("select id from entries where key = 'working-day'").fetchone()[0], "archived")
    rows = export(staff, "csv")
    rows[[r[0] for r in rows].index("working-day")][6] = "发布"
    plan = faq.plan_import(db, faq.parse_import(file_of(rows, "csv"), "x.csv"))
    assert [(e["key"], fields) for e, _, fields in plan.changed] == [("working-day", ["状态"])]
    assert plan.archived == []


def test_confirm_is_refused_if_the_knowledge_changed_since_the_preview(staff, app, db) -> None:
    rows = export(staff, "csv")
    rows[[r[0] for r in rows].index("reply-deadline")][3] = "导入的答案。"
    page = upload(staff, file_of(rows, "csv"), "faq.csv").get_data(as_text=True)
    target = db.execute("select id from entries where key = 'reply-deadline'").fetchone()[0]
    faq.update_entry(db, None, target, {"question": "提交申请后多久能收到答复？", "answer": "他人的答案。",
                                        "status": "published"}, 1)
    before = state(db)
    response = confirm(staff, page)
    assert response.status_code == 400 and "预览之后问答库已有变化" in response.get_data(as_text=True)
    assert state(db) == before and not uploads(app)


def test_confirm_with_an_unknown_token_is_refused(staff) -> None:
    token = csrf_token(staff, "/staff/faq/import")
    response = staff.post("/staff/faq/import/confirm", data={"csrf_token": token, "token": "x" * 32, "suffix": ".csv"})
    assert response.status_code == 400 and "预览已过期或无效" in response.get_data(as_text=True)
    response = staff.post("/staff/faq/import/confirm", data={"csrf_token": token, "token": "../../etc", "suffix": ".csv"})
    assert response.status_code == 400


# -- malformed files --------------------------------------------------------------


def _set(row: int, column: str, value: str):  # type: ignore[no-untyped-def]
    def change(rows: list[list[str]]) -> list[list[str]]:
        rows[row - 1][HEADER.index(column)] = value
        return rows
    return change


def _drop_column(column: str):  # type: ignore[no-untyped-def]
    def change(rows: list[list[str]]) -> list[list[str]]:
        i = HEADER.index(column)
        return [r[:i] + r[i + 1:] for r in rows]
    return change


def _too_many_rows(rows: list[list[str]]) -> list[list[str]]:
    return rows[:1] + [[f"k{i}", "问题", "", "答案", "", "", "发布"] for i in range(5001)]


MALFORMED = [
    (_drop_column("答案"), "第1行缺少“答案”列"),
    (_drop_column("编号"), "第1行缺少“编号”列"),
    (_set(5, "答案", ""), "第5行“答案”列为空"),
    (_set(3, "标准问题", "   "), "第3行“标准问题”列为空"),
    (_set(7, "编号", ""), "第7行“编号”列为空"),
    (_set(4, "状态", "上线"), "第4行“状态”列状态“上线”无效"),
    (_set(4, "编号", "who-may-apply"), "第4行“编号”列与第2行重复：who-may-apply"),
    (_set(6, "编号", "有 空格"), "第6行“编号”列只能由字母"),
    (_set(2, "答案", "答" * 5001), "第2行“答案”列超过5000个字的上限"),
    (_set(3, "分类", "类" * 21), "第3行“分类”列超过20个字的上限"),
    (_set(2, "相似问法", "任何人都可以申请吗\n任何人都可以申请吗？"), "第2行“相似问法”列相似问法“任何人都可以申请吗？”在本条目中重复"),
    (_set(2, "相似问法", "问" * 201), "第2行“相似问法”列相似问法不能超过200个字"),
    (_too_many_rows, "第5002行超出上限：一次最多导入5000条"),
]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_malformed_files_are_refused_naming_row_and_column(  # type: ignore[no-untyped-def]
        staff, app, db, fmt: str, change, message: str) -> None:
    rows = change(export(staff, fmt))
    before = state(db)
    response = upload(staff, file_of(rows, fmt), f"faq.{fmt}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "无法导入，未做任何修改" in page and message in page
    assert state(db) == before and not uploads(app)


@pytest.mark.parametrize(("data", "filename", "message"), [
    (b"anything", "faq.txt", "只支持 .xlsx（Excel）或 .csv 格式"),
    (b"PK\x03\x04 not really a zip", "faq.xlsx", "无法读取该 Excel 文件"),
    ("编号,标准问题".encode("utf-16"), "faq.csv", "文件编码无法识别"),
    (b"", "faq.csv", "第1行文件为空"),
    ("编号,标准问题\n".encode() + b"\x00" * 3, "faq.csv", "第1行缺少“相似问法”列"),
])
def test_files_that_are_not_faq_tables_are_refused(staff, app, db, data: bytes, filename: str, message: str) -> None:
    before = state(db)
    response = upload(staff, data, filename)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert state(db) == before and not uploads(app)


def test_upload_without_a_file(staff) -> None:
    token = csrf_token(staff, "/staff/faq/import")
    response = staff.post("/staff/faq/import", data={"csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 400 and "请选择要导入的文件" in response.get_data(as_text=True)


def test_gbk_csv_from_excel_and_blank_rows_are_read(db) -> None:
    rows = faq.export_rows(db) + [["", "", "", "", "", "", ""]]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    parsed = faq.parse_import(out.getvalue().encode("gb18030"), "faq.csv")
    assert len(parsed) == 62 and not faq.plan_import(db, parsed).has_changes


def test_columns_may_come_in_any_order(db) -> None:
    rows = [list(reversed(r)) for r in faq.export_rows(db)]
    assert not faq.plan_import(db, faq.parse_import(file_of(rows, "xlsx"), "faq.xlsx")).has_changes


# -- merge by default; archiving what the file lacks only when asked ---------------------


def test_a_one_row_file_merges_and_keeps_every_other_entry(staff, app, db) -> None:
    rows = export(staff, "csv")
    total = len(rows) - 1
    deadline = rows[[r[0] for r in rows].index("reply-deadline")]
    deadline[3] = "20个工作日内答复（只改这一条）。"
    page = upload(staff, file_of([rows[0], deadline], "csv"), "one.csv").get_data(as_text=True)
    # The entries the file lacks are named with their count in a strong warning, unticked.
    assert f"将归档 {total - 1} 条文件中没有的条目" in page
    assert re.search(r'<div class="strong-warning" role="alert"', page)
    assert f'name="archive_missing" value="{total - 1}">' in page and "checked" not in page
    assert confirm(staff, page).status_code == 302
    statuses = [r[0] for r in db.execute("select status from entries")]
    assert statuses.count("archived") == 0 and len(statuses) == total
    assert db.execute("select answer from entries where key = 'reply-deadline'").fetchone()[0] \
        == "20个工作日内答复（只改这一条）。"


def test_archiving_what_the_file_lacks_needs_the_explicit_option(staff, app, db, client) -> None:
    rows = export(staff, "csv")
    total = len(rows) - 1
    page = upload(staff, file_of(rows[:3], "csv"), "two.csv").get_data(as_text=True)
    assert f"将归档 {total - 2} 条文件中没有的条目" in page
    assert confirm(staff, page, archive=True).status_code == 302
    assert f"归档{total - 2}条" in staff.get("/staff/faq").get_data(as_text=True)
    kept = {r[0] for r in db.execute("select key from entries where status != 'archived'")}
    assert kept == {rows[1][0], rows[2][0]}
    assert db.execute("select count(*) from audit_log where action = 'import_archive'").fetchone()[0] == total - 2
    # Each archived entry keeps its history and can be restored to the version before.
    entry_id = db.execute("select id from entries where key = 'working-day'").fetchone()[0]
    assert [v["action"] for v in faq.entry_history(db, entry_id)][:1] == ["import_archive"]


def test_a_confirm_naming_another_count_is_refused(staff, app, db) -> None:
    rows = export(staff, "csv")
    page = upload(staff, file_of(rows[:3], "csv"), "two.csv").get_data(as_text=True)
    fields = dict(re.findall(r'name="(token|suffix|filename|fingerprint|csrf_token)" value="([^"]*)"', page))
    before = state(db)
    response = staff.post("/staff/faq/import/confirm", data={**fields, "archive_missing": "1"})
    assert response.status_code == 400 and "不一致" in response.get_data(as_text=True)
    response = staff.post("/staff/faq/import/confirm", data={**fields, "archive_missing": "全部"})
    assert response.status_code == 400
    assert state(db) == before


def test_preview_shows_each_change_as_before_and_after_text(staff, db) -> None:
    rows = export(staff, "csv")
    keys = [r[0] for r in rows]
    deadline = rows[keys.index("reply-deadline")]
    old_answer = deadline[3]
    deadline[3] = old_answer.replace("20个工作日", "15个工作日", 1)
    assert deadline[3] != old_answer
    office = rows[keys.index("disclosure-office")]
    office[2] += "\n统计局里管信息公开的是哪个司局"
    page = upload(staff, file_of(rows, "csv"), "faq.csv").get_data(as_text=True)
    assert "修改前" in page and "修改后" in page
    # Deleted and inserted words are marked up, with words for screen readers.
    assert re.search(r"<del><span class=\"visually-hidden\">〔删去：</span>20<span", page)
    assert re.search(r"<ins><span class=\"visually-hidden\">〔新增：</span>15<span", page)
    assert "<ins><span class=\"visually-hidden\">〔新增：</span>统计局里管信息公开的是哪个司局" in page


def test_reordered_alternates_are_no_change_in_the_preview(db) -> None:
    entry = db.execute("select id from entries where key = 'disclosure-office'").fetchone()[0]
    rows = faq.export_rows(db)
    row = rows[[r[0] for r in rows].index("disclosure-office")]
    row[2] = "\n".join(reversed(row[2].split("\n")))
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    plan = faq.plan_import(db, faq.parse_import(out.getvalue().encode(), "x.csv"))
    faq.describe_changes(plan)
    assert not plan.has_changes and entry not in plan.diffs


def test_preview_shows_the_text_of_the_first_changes_and_names_the_rest(staff, db, monkeypatch) -> None:
    monkeypatch.setattr(faq.describe_changes, "__defaults__", (1,))
    rows = export(staff, "csv")
    for row in rows[1:4]:
        row[3] += "（补充说明）"
    page = upload(staff, file_of(rows, "csv"), "faq.csv").get_data(as_text=True)
    assert page.count('class="import-change"') == 1 and "其余 2 条的修改字段见上表" in page
