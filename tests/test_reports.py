"""Tests for service.reports: the seed report, synthetic reports in three forms, bad input."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from pathlib import Path

import pytest

try:
    from tests import report_samples as samples
except ImportError:  # tests/ is not a package: pytest put it on sys.path instead
    import report_samples as samples  # type: ignore[no-redef]
from service.reports import (
    TABLE2_COLS, TABLE2_ROWS, TABLE3_COLS, TABLE3_GROUP_ROWS, TABLE3_ROWS, TABLE4_COLS, TABLE4_ROWS,
    ReportFormatError, parse_report, parse_text, validate,
)

SEED = Path(__file__).resolve().parents[1] / "knowledge" / "reports" / "nbs-2021-disclosure-report.txt"
FORMS = ("txt", "html", "docx")
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def cells_of(report) -> dict[tuple[str, str, str], float]:
    return {(f.table, f.row_key, f.col_key): f.value for f in report.facts}


def parse_spec(spec, form, tmp_path, **overrides):
    path = samples.write(spec, form, tmp_path / f"report.{form}")
    return parse_report(path.read_bytes(), path.name, **overrides)


# --------------------------------------------------------------------------- the seed


@pytest.fixture(scope="module")
def seed():
    return parse_report(SEED.read_bytes(), SEED.name)


def test_seed_identity(seed):
    assert (seed.agency, seed.year, seed.format) == ("国家统计局", 2021, "2021")
    assert seed.title == "2021年国家统计局政府信息公开工作报告"
    assert seed.problems == []


@pytest.mark.parametrize(("table", "row", "col", "value"), [
    ("三", "new", "total", 152), ("三", "new", "natural", 117), ("三", "new", "business", 13),
    ("三", "new", "research", 7), ("三", "new", "public_interest", 1), ("三", "new", "legal_services", 8),
    ("三", "new", "other", 6), ("三", "carried_in", "total", 0), ("三", "disclosed", "total", 103),
    ("三", "disclosed", "natural", 70), ("三", "partial", "total", 10), ("三", "partial", "business", 1),
    ("三", "withheld_1", "total", 1), ("三", "withheld_2", "natural", 1), ("三", "withheld_5", "total", 3),
    ("三", "unavailable_1", "natural", 24), ("三", "not_processed_2", "total", 4),
    ("三", "not_processed_3", "public_interest", 1), ("三", "not_processed_3", "total", 4),
    ("三", "other_3", "total", 2), ("三", "outcome_total", "total", 152), ("三", "carried_out", "total", 0),
    ("四", "review", "upheld", 7), ("四", "review", "pending", 1), ("四", "review", "total", 8),
    ("四", "litigation_direct", "pending", 1), ("四", "litigation_direct", "total", 1),
    ("四", "litigation_after_review", "pending", 5), ("四", "litigation_after_review", "total", 5),
    ("二", "rules", "issued", 0), ("二", "rules", "in_force", 5), ("二", "normative_docs", "issued", 8),
    ("二", "normative_docs", "repealed", 2), ("二", "normative_docs", "in_force", 28),
    ("二", "licensing", "decisions", 231), ("二", "punishment", "decisions", 141),
    ("二", "enforcement", "decisions", 0), ("二", "fees", "amount", 86.39),
])
def test_seed_cells(seed, table, row, col, value):
    assert cells_of(seed)[(table, row, col)] == value


def test_seed_fact_count(seed):
    # The 2021 format's table 三 has 25 rows: 新收, 上年结转, 22 outcome rows
    # (予以公开, 部分公开, 8 不予公开, 3 无法提供, 5 不予处理, 3 其他处理, 总计) and 结转下年度.
    assert len(TABLE3_ROWS) == 25
    table2 = [f for f in seed.facts if f.table == "二"]
    assert len(table2) == 10
    assert len(seed.facts) == 25 * 7 + 3 * 5 + len(table2)
    assert len(set(cells_of(seed))) == len(seed.facts)


def test_seed_labels_units_and_sections(seed):
    fees = next(f for f in seed.facts if f.row_key == "fees")
    assert (fees.row_label, fees.col_label, fees.unit) == ("行政事业性收费", "本年收费金额", "万元")
    assert fees.section == "二、主动公开政府信息情况"
    secret = next(f for f in seed.facts if f.row_key == "withheld_1" and f.col_key == "natural")
    assert (secret.row_label, secret.col_label, secret.unit) == ("本年度办理结果·不予公开·属于国家秘密", "自然人", "件")
    assert secret.section == "三、收到和处理政府信息公开申请情况"
    review = next(f for f in seed.facts if f.row_key == "review" and f.col_key == "total")
    assert (review.row_label, review.col_label) == ("行政复议", "总计")
    assert review.section == "四、政府信息公开行政复议、行政诉讼情况"
    assert seed.value("in_force", "rules") is None and seed.value("rules", "in_force") == 5


def test_seed_passages(seed):
    users = [p for p in seed.passages if "注册用户量109万" in p.text]
    assert len(users) == 1
    assert "数据发布库" in users[0].context
    assert users[0].section == "一、总体情况 （三）重视拓展平台载体建设"
    assert any("15156" in p.text for p in seed.passages)
    new_users = next(p for p in seed.passages if "注册用户17万" in p.text)
    assert new_users.context == "有序运维数据发布库"
    # A clause closed by "；" in a list is not a topic sentence.
    assert next(p for p in seed.passages if "严重失信企业49家" in p.text).context == ""
    assert any(p.section.startswith("五、") for p in seed.passages)


def test_seed_passages_leave_out_tables_and_markers(seed):
    texts = [p.text for p in seed.passages]
    assert not any("bookmark" in t or "勾稽关系" in t or t.startswith("注") for t in texts)
    assert not any(t in ("行政许可", "自然人", "86.39", "152") for t in texts)
    assert seed.title not in texts


def test_seed_every_sentence_with_a_figure_is_a_passage(seed):
    lines = SEED.read_text(encoding="utf-8").splitlines()[1:]  # after the title
    narrative = [re.sub(r"\[bookmark:[^\]]*\]", "", line).strip() for line in lines
                 if line.strip() and not line.startswith("\t") and not line.startswith("注")]
    sentences = [s.strip(" ，、") for line in narrative for s in re.split("[。！？；]", line)]
    figures = [s for s in sentences if re.search(r"\d", s)]
    assert len(figures) == 35
    assert set(figures) <= {p.text for p in seed.passages}


# --------------------------------------------------------------------------- synthetic reports


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("make", [samples.mof_2022, samples.province_stats_2020])
def test_sample_round_trip(tmp_path, make, form):
    spec = make()
    report = parse_spec(spec, form, tmp_path)
    assert (report.agency, report.year, report.format) == (spec["agency"], spec["year"], spec["format"])
    assert report.title == spec["title"]
    assert cells_of(report) == samples.expected_cells(spec)
    assert report.problems == []


@pytest.mark.parametrize("form", FORMS)
def test_sample_2021_labels_and_passages(tmp_path, form):
    report = parse_spec(samples.mof_2022(), form, tmp_path)
    fees = next(f for f in report.facts if f.row_key == "fees")
    assert (fees.value, fees.unit, fees.col_label) == (12345.67, "万元", "本年收费金额")
    site = next(p for p in report.passages if "3.2亿人次" in p.text)
    assert (site.section, site.context) == ("一、总体情况 （二）平台建设", "优化门户网站")
    # "１２场" is written with full-width digits in the narrative.
    assert next(p for p in report.passages if "召开新闻发布会12场" in p.text).context == "加强政策解读"
    assert any(p.section == "六、其他需要报告的事项" for p in report.passages)
    texts = [p.text for p in report.passages]
    assert not any("首页" in t or t.startswith("注") or "勾稽关系" in t for t in texts)


@pytest.mark.parametrize("form", FORMS)
def test_sample_2019_format(tmp_path, form):
    report = parse_spec(samples.province_stats_2020(), form, tmp_path)
    by_key = {(f.row_key, f.col_key): f for f in report.facts if f.table == "二"}
    assert (by_key["licensing", "change"].value, by_key["licensing", "change"].unit) == (-2, "项")
    assert by_key["licensing", "previous"].col_label == "上一年项目数量"
    assert by_key["other_services", "decisions"].value == 1024
    assert (by_key["procurement", "amount"].value, by_key["procurement", "amount"].unit) == (1389.6, "万元")
    assert by_key["normative_docs", "total_public"].value == 87
    other = next(f for f in report.facts if f.row_key == "other_3" and f.col_key == "total")
    assert (other.value, other.row_label) == (2, "本年度办理结果·其他处理")
    assert not any(f.row_key in ("other_1", "other_2") for f in report.facts)
    assert any("215条" in p.text for p in report.passages)


@pytest.mark.parametrize("path", sorted(p for p in samples.DATA_DIR.glob("*.*") if p.stem in samples.SAMPLES),
                         ids=lambda p: p.name)
def test_stored_samples_parse(path):
    spec = samples.SAMPLES[path.stem]()
    report = parse_report(path.read_bytes(), path.name)
    assert cells_of(report) == samples.expected_cells(spec)
    assert report.problems == []


@pytest.mark.parametrize("form", FORMS)
def test_merged_outcome_group(tmp_path, form):
    spec = samples.merge_group(samples.mof_2022(), "unavailable")
    report = parse_spec(spec, form, tmp_path)
    assert cells_of(report) == samples.expected_cells(spec)
    assert report.value("unavailable", "natural") == 353
    assert next(f for f in report.facts if f.row_key == "unavailable").row_label == TABLE3_GROUP_ROWS["unavailable"]
    assert report.problems == []


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_text_encodings(encoding):
    spec = samples.mof_2022()
    report = parse_report(samples.to_text(spec).encode(encoding), "mof.txt")
    assert report.agency == "财政部"
    assert cells_of(report) == samples.expected_cells(spec)


def test_text_given_as_str_and_html_bytes_in_gb18030():
    spec = samples.province_stats_2020()
    assert cells_of(parse_report(samples.to_text(spec), "a.TXT")) == samples.expected_cells(spec)
    page = samples.to_html(spec, charset="gb18030").encode("gb18030")
    report = parse_report(page, "a.htm")
    assert report.agency == "某省统计局"
    assert cells_of(report) == samples.expected_cells(spec)


def test_html_inside_a_layout_table():
    spec = samples.mof_2022()
    page = samples.to_html(spec).replace('<div class="article">', '<table><tr><td><div class="article">')
    page = page.replace("</div></body>", "</div></td></tr></table></body>")
    report = parse_report(page, "a.html")
    assert cells_of(report) == samples.expected_cells(spec)


def test_html_title_only_in_the_head():
    spec = samples.mof_2022()
    page = re.sub(r"<h1>.*?</h1>", "", samples.to_html(spec))
    report = parse_report(page, "a.html")
    assert (report.agency, report.year) == ("财政部", 2022)
    assert not any("首页" in p.text for p in report.passages)  # page navigation is no narrative
    assert any("2356条" in p.text for p in report.passages)


@pytest.mark.parametrize(("old", "new"), [
    ("一、本年新收政府信息公开申请数量", "一、本年新收 政府信息公开 申请数量"),
    ("1.属于国家秘密", "１．属于国家秘密"),
    ("3.危及“三安全一稳定”", '3.危及"三安全一稳定"'),
    ("2.重复申请", "重复申请"),
    ("4.无正当理由大量反复申请", "4、无正当理由大量反复申请"),
    ("（七）总计", "(七) 总 计"),
    ("四、结转下年度继续办理", "四、结转下年度继续办理的申请"),
    ("商业\n企业", "商业企业"),
    ("第二十条第（八）项", "第二十条第（八）项  "),
])
def test_label_variants(old, new):
    spec = samples.mof_2022()
    text = samples.to_text(spec)
    assert old in text
    report = parse_text(text.replace(old, new))
    assert cells_of(report) == samples.expected_cells(spec)


def tab_separated(spec, extra_rows=()) -> str:
    """Table 三 with one tab-separated line per row and unnumbered labels in their own cells."""
    lines = [spec["title"], "三、收到和处理政府信息公开申请情况", "\t申请人情况"]
    for key, values in [*spec["table3"].items(), *extra_rows]:
        label = (TABLE3_ROWS.get(key) or TABLE3_GROUP_ROWS[key]).split("·")
        lines.append("\t".join([*label, *(samples._number_text(v) for v in values)]))
    return "\n".join(lines)


def test_tab_separated_rows():
    spec = samples.mof_2022()
    report = parse_text(tab_separated(spec))
    assert cells_of(report) == {k: v for k, v in samples.expected_cells(spec).items() if k[0] == "三"}
    assert report.problems == []


def test_table4_with_one_row_per_case_type():
    spec = samples.mof_2022()
    rows = [("行政复议", "review"), ("行政诉讼（未经复议直接起诉）", "litigation_direct"),
            ("行政诉讼（复议后起诉）", "litigation_after_review")]
    text = tab_separated(spec) + "\n四、政府信息公开行政复议、行政诉讼情况\n" + "\n".join(
        "\t".join([label, *map(str, spec["table4"][key])]) for label, key in rows)
    report = parse_text(text)
    assert {k: v for k, v in cells_of(report).items() if k[0] == "四"} == {
        k: v for k, v in samples.expected_cells(spec).items() if k[0] == "四"}


def test_group_subtotal_row_is_not_counted_twice():
    spec = samples.mof_2022()
    t3 = spec["table3"]
    subtotal = [sum(t3[f"withheld_{i}"][c] for i in range(1, 9)) for c in range(7)]
    report = parse_text(tab_separated(spec, [("withheld", subtotal)]))
    assert report.value("withheld", "total") == subtotal[6] == 50
    assert report.problems == []


def test_narrative_may_be_missing():
    spec = samples.mof_2022()
    spec["narrative"] = {"一、总体情况": []}
    report = parse_text(samples.to_text(spec))
    assert cells_of(report) == samples.expected_cells(spec)
    assert [p.text for p in report.passages] == ["本报告所列数据的统计期限自2022年1月1日起至2022年12月31日止"]


# --------------------------------------------------------------------------- agency, year, title


def test_overrides(tmp_path):
    report = parse_spec(samples.mof_2022(), "docx", tmp_path, agency="财政部办公厅", year=2099)
    assert (report.agency, report.year, report.title) == ("财政部办公厅", 2099, "财政部2022年政府信息公开工作年度报告")


@pytest.mark.parametrize(("title", "agency", "year"), [
    ("2022年财政部政府信息公开工作年度报告", "财政部", 2022),
    ("财政部2022年度政府信息公开工作年度报告", "财政部", 2022),
    ("财政部 2022 年政府信息公开工作年度报告", "财政部", 2022),
    ("《财政部2022年政府信息公开工作年度报告》", "财政部", 2022),
    ("二〇二二年财政部政府信息公开工作年度报告", "财政部", 2022),
    ("财政部关于2022年政府信息公开工作的年度报告", "财政部", 2022),
    ("财政部政府信息公开工作年度报告", "财政部", 2022),  # year from the statistics period
])
def test_title_variants(title, agency, year):
    spec = samples.mof_2022()
    spec["title"] = title
    report = parse_text(samples.to_text(spec))
    assert (report.agency, report.year) == (agency, year)


def test_title_over_two_lines():
    spec = samples.mof_2022()
    spec["title"] = "财政部\n2022年政府信息公开工作年度报告"
    assert parse_text(samples.to_text(spec)).agency == "财政部"


def test_missing_agency_needs_the_override():
    spec = samples.mof_2022()
    spec["title"] = "2022年政府信息公开工作年度报告"
    text = samples.to_text(spec)
    with pytest.raises(ReportFormatError, match="机关名称"):
        parse_report(text.encode(), "a.txt")
    assert parse_report(text.encode(), "a.txt", agency="财政部").year == 2022


def test_missing_year_needs_the_override():
    spec = samples.mof_2022()
    spec["title"], spec["intro"] = "财政部政府信息公开工作年度报告", "现予以公布。"
    text = samples.to_text(spec)
    with pytest.raises(ReportFormatError, match="年度"):
        parse_report(text.encode(), "a.txt")
    assert parse_report(text.encode(), "a.txt", year=2022).agency == "财政部"


# --------------------------------------------------------------------------- validation


def broken(mutate) -> tuple[dict, list[str]]:
    spec = samples.mof_2022()
    mutate(spec)
    report = parse_text(samples.to_text(spec))
    assert cells_of(report) == samples.expected_cells(spec)  # still returned in full
    return spec, report.problems


def test_outcome_rows_must_add_up():
    def mutate(spec):
        spec["table3"]["disclosed"][0] += 1
        spec["table3"]["disclosed"][6] += 1
    spec, problems = broken(mutate)
    total = spec["table3"]["outcome_total"]
    assert problems == [
        f"表三“本年度办理结果·总计”的“自然人”列为{int(total[0])}，但各项办理结果相加为{int(total[0]) + 1}。",
        f"表三“本年度办理结果·总计”的“总计”列为{int(total[6])}，但各项办理结果相加为{int(total[6]) + 1}。",
    ]


def test_received_must_equal_handled():
    def mutate(spec):
        spec["table3"]["new"][1] += 2
        spec["table3"]["new"][6] += 2
    spec, problems = broken(mutate)
    t3 = {k: [int(x) for x in v] for k, v in spec["table3"].items()}
    new, cin, tot, cout = (t3[k][1] for k in ("new", "carried_in", "outcome_total", "carried_out"))
    assert problems[0] == (
        f"表三“商业企业”列：本年新收（{new}）与上年结转（{cin}）之和为{new + cin}，"
        f"但本年度办理结果总计（{tot}）与结转下年度继续办理（{cout}）之和为{tot + cout}，两者应相等。")
    assert len(problems) == 2 and problems[1].startswith("表三“总计”列：")


def test_row_must_add_up_to_its_total():
    spec, problems = broken(lambda spec: spec["table3"]["withheld_8"].__setitem__(6, 5))
    assert "表三“本年度办理结果·不予公开·属于行政查询事项”一行：自然人与法人或其他组织各列相加为4，但“总计”列为5。" in problems


def test_table4_row_must_add_up():
    spec, problems = broken(lambda spec: spec["table4"]["review"].__setitem__(4, 17))
    assert problems == ["表四“行政复议”一行：结果维持、结果纠正、其他结果、尚未审结相加为16，但“总计”为17。"]


def test_validate_on_facts(seed):
    facts = [dataclasses.replace(f, value=69.0) if (f.row_key, f.col_key) == ("disclosed", "natural") else f
             for f in seed.facts]
    problems = validate(facts)
    assert "表三“本年度办理结果·总计”的“自然人”列为117，但各项办理结果相加为116。" in problems
    assert "表三“本年度办理结果·予以公开”一行：自然人与法人或其他组织各列相加为102，但“总计”列为103。" in problems
    assert validate([]) == []
    assert validate(seed.facts) == []


# --------------------------------------------------------------------------- not reports


def docx_bytes(build) -> bytes:
    import docx

    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def memo(document) -> None:
    document.add_heading("财政部2022年政府信息公开工作年度报告", level=1)
    document.add_paragraph("一、总体情况")
    document.add_paragraph("本年度主动公开政府信息100条。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "项目", "数量"
    table.cell(1, 0).text, table.cell(1, 1).text = "公开信息", "100"


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(("filename", "data", "message"), [
    ("notes.txt", "今天天气很好。我们去公园散步。\n明天再说。".encode(), "未找到"),
    ("empty.txt", b"", "为空"),
    ("blank.txt", b" \n\n\t\n", "为空"),
    ("binary.txt", bytes(range(256)) * 4, "编码"),
    ("page.html", "<html><body><h1>财政部2022年政府信息公开工作年度报告</h1><p>一、总体情况</p>"
                  "<p>本年度主动公开政府信息100条。</p></body></html>", "未找到"),
    ("numbers.html", "<table><tr><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></table>", "未找到"),
    ("memo.docx", docx_bytes(memo), "未找到"),
    ("broken.docx", b"PK\x03\x04 this is not really a zip archive", "无法打开"),
    ("archive.docx", plain_zip(), "无法打开"),
    ("text.docx", "一段文字", "二进制"),
    ("report.pdf", b"%PDF-1.4", "暂不支持"),
])
def test_not_a_report(filename, data, message):
    with pytest.raises(ReportFormatError, match=message) as raised:
        parse_report(data, filename)
    assert CHINESE.search(str(raised.value))


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary():
    assert list(TABLE3_COLS) == ["natural", "business", "research", "public_interest", "legal_services",
                                 "other", "total"]
    assert list(TABLE4_ROWS) == ["review", "litigation_direct", "litigation_after_review"]
    assert list(TABLE4_COLS) == ["upheld", "corrected", "other", "pending", "total"]
    assert {"rules", "normative_docs", "licensing", "punishment", "enforcement", "fees"} <= set(TABLE2_ROWS)
    assert {"issued", "repealed", "in_force", "decisions", "amount", "made", "published", "total_public",
            "previous", "change"} <= set(TABLE2_COLS)
    assert [k for k in TABLE3_ROWS if k.startswith("withheld_")] == [f"withheld_{i}" for i in range(1, 9)]
    assert TABLE3_ROWS["not_processed_3"] == "本年度办理结果·不予处理·要求提供公开出版物"
    assert TABLE3_GROUP_ROWS == {"withheld": "本年度办理结果·不予公开", "unavailable": "本年度办理结果·无法提供",
                                 "not_processed": "本年度办理结果·不予处理"}
