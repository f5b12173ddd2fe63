"""Tests for the citizens' report pages: /reports and /reports/<id>, and their shaping helpers."""
from __future__ import annotations

import json
import re

import pytest
from bs4 import BeautifulSoup

from service.report_pages import (
    TABLE2_COL_ORDER, chart_svg, narrative, outcomes, share_sentence, table3, text_width, wrap,
)
from service.reports import TABLE2_COLS
from service.storage import connect


def soup_of(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def cell_texts(table) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.get_text(strip=True) for c in table.find_all(["th", "td"])]


@pytest.fixture
def page(client) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return soup_of(client.get("/reports/1"))


# --------------------------------------------------------------------------- the list


def test_list_shows_the_seed_report(client):
    soup = soup_of(client.get("/reports"))
    main = soup.find("main")
    link = main.find("a", href="/reports/1")
    assert link is not None
    assert "2021" in link.get_text() and "国家统计局" in link.get_text()
    assert "国家统计局" in main.find("h2").get_text()
    summary = link.find_parent("li").find(class_="report-summary").get_text(" ", strip=True)
    assert re.search(r"申请\s*152\s*件", summary)


def test_list_puts_the_home_agency_first_and_newest_years_first(app, client):
    db = connect(app.config["DATABASE"])
    db["reports"].insert_all([
        {"agency": "财政部", "year": 2023, "title": "财政部2023年政府信息公开工作年度报告", "problems": "[]"},
        {"agency": "国家统计局", "year": 2020, "title": "", "problems": "[]"},
    ])
    db.close()
    main = soup_of(client.get("/reports")).find("main")
    groups = [h.get_text(strip=True) for h in main.find_all("h2")]
    assert groups == ["国家统计局", "财政部"]
    years = [a.find(class_="report-year").get_text() for a in main.find_all("a", class_="report-link")]
    assert years == ["2021年", "2020年", "2023年"]
    # A report without table 三 says so instead of showing a number; a missing title is made up.
    text = main.get_text()
    assert "报告未载明本年新收申请数量" in text
    assert "2020年国家统计局政府信息公开工作年度报告" in text


def test_list_empty_state(app, client):
    db = connect(app.config["DATABASE"])
    for table in ("facts", "passages", "reports"):
        db.execute(f"delete from {table}")
    db.close()
    main = soup_of(client.get("/reports")).find("main")
    assert "暂未收录政府信息公开工作年度报告" in main.get_text()
    assert main.find("a", href=re.compile(r"^/reports/\d")) is None


# --------------------------------------------------------------------------- the report page


def test_report_page_has_title_agency_and_year(page):
    assert page.find("h1").get_text(strip=True) == "2021年国家统计局政府信息公开工作报告"
    meta = page.find(class_="report-meta").get_text()
    assert "国家统计局" in meta and "2021年" in meta
    assert page.title.get_text().startswith("2021年国家统计局政府信息公开工作报告")


def test_tables_are_accessible_tables_with_link_targets(page):
    for table_id in ("table-2", "table-3", "table-4"):
        table = page.find("table", id=table_id)
        assert table is not None, table_id
        assert table.find("caption").get_text(strip=True)
        assert table.find("thead") is not None
        assert table.find("th", scope="col") is not None
        wrapper = table.find_parent("div", class_="table-scroll")
        assert wrapper["tabindex"] == "0" and wrapper.get("aria-labelledby") == f"{table_id}-caption"
        # Every figure is right-aligned by class and tied to its headers.
        for td in table.find_all("td", class_="num"):
            assert td.get("headers"), td
        headers = {th.get("id") for th in table.find_all("th")}
        for td in table.find_all("td", headers=True):
            ids = td["headers"]  # bs4 splits this multi-valued attribute itself
            assert set(ids.split() if isinstance(ids, str) else ids) <= headers, ids


@pytest.mark.parametrize(("table_id", "figure"), [
    ("table-2", "231"), ("table-2", "141"), ("table-2", "86.39"),
    ("table-3", "152"), ("table-3", "117"), ("table-3", "103"),
])
def test_key_figures_are_in_their_tables(page, table_id, figure):
    cells = [td.get_text(strip=True) for td in page.find("table", id=table_id).find_all("td", class_="num")]
    assert figure in cells


def test_table3_has_the_national_grouped_headers(page):
    table = page.find("table", id="table-3")
    head = table.find("thead")
    assert head.find("th", string="自然人")["rowspan"] == "2"
    assert head.find("th", string="法人或其他组织")["colspan"] == "5"
    assert head.find("th", string="总计")["rowspan"] == "2"
    org = [th.get_text() for th in head.find_all("tr")[2].find_all("th")]
    assert org == ["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]
    body = table.find("tbody")
    assert body.find("th", string="三、本年度办理结果")["rowspan"] == "22"
    for group, rows in (("（三）不予公开", 8), ("（四）无法提供", 3), ("（五）不予处理", 5), ("（六）其他处理", 3)):
        assert body.find("th", string=group)["rowspan"] == str(rows), group
    # Row 新收 reads 117 (自然人) … 152 (总计) in column order.
    new = body.find("th", id="t3-r-new").find_parent("tr")
    assert [td.get_text() for td in new.find_all("td")] == ["117", "13", "7", "1", "8", "6", "152"]


def test_table2_blocks_and_table4_groups(page):
    t2 = cell_texts(page.find("table", id="table-2"))
    for block in ("第二十条第（一）项", "第二十条第（五）项", "第二十条第（六）项", "第二十条第（八）项"):
        assert block in t2
    assert "本年收费金额（单位：万元）" in t2
    t4 = page.find("table", id="table-4")
    assert t4.find("th", string="行政复议")["colspan"] == "5"
    assert t4.find("th", string="行政诉讼")["colspan"] == "10"
    assert t4.find("th", string="未经复议直接起诉") is not None
    assert t4.find("th", string="复议后起诉") is not None
    assert [td.get_text() for td in t4.find("tbody").find_all("td")][:5] == ["7", "0", "0", "1", "8"]


def test_outcome_chart_is_an_svg_image_with_labelled_bars(page):
    svg = page.find("svg", attrs={"role": "img"})
    assert svg is not None
    assert "予以公开 103 件" in svg["aria-label"]
    labels = [t.get_text() for t in svg.find_all("text", class_="chart-label")]
    assert "予以公开" in labels
    assert any("本机关不掌握相关政府信息" in label for label in labels)
    # One bar per non-zero outcome row of the seed: 予以公开, 部分公开, three 不予公开 reasons,
    # 本机关不掌握, 重复申请, 要求提供公开出版物, 其他.
    assert len(svg.find_all("rect")) == 9
    values = [t.get_text() for t in svg.find_all("text", class_="chart-value")]
    assert "103 件 · 67.8%" in values and "24 件 · 15.8%" in values
    # The zero rows are listed under the chart, not drawn.
    assert "危及“三安全一稳定”" in page.find(class_="chart-zero-list").get_text()


def test_share_disclosed_sentence(page):
    share = page.find(class_="share").get_text()
    assert "113" in share and "74.3%" in share and "152" in share


def test_narrative_passages_grouped_by_section(page):
    narrative_section = page.find(id="narrative")
    assert narrative_section.find("h3", string="一、总体情况") is not None
    sub = narrative_section.find("h4", string="（三）重视拓展平台载体建设")
    assert sub is not None
    paragraph = sub.find_next_sibling("p")
    assert "注册用户量109万" in narrative_section.get_text()
    assert paragraph.find("strong").get_text() == "加强门户网站建设。"


def test_passage_html_is_escaped(app, client):
    db = connect(app.config["DATABASE"])
    db["passages"].insert({"report_id": 1, "position": 999, "section": "六、其他需要报告的事项",
                           "context": "", "text": "<script>alert(1)</script>"})
    db.close()
    html = client.get("/reports/1").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_problems_notice(app, client, page):
    assert "数据校验提示" not in page.get_text()
    db = connect(app.config["DATABASE"])
    db["reports"].update(1, {"problems": json.dumps(["表三第1列：合计不一致。", "<b>x</b>"], ensure_ascii=False)})
    db.close()
    notice = soup_of(client.get("/reports/1")).find(class_="notice")
    assert notice.find("h2").get_text() == "数据校验提示"
    assert [li.get_text() for li in notice.find_all("li")] == ["表三第1列：合计不一致。", "<b>x</b>"]


@pytest.mark.parametrize("path", ["/reports/999", "/reports/0", "/reports/abc"])
def test_unknown_report_is_a_chinese_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "您访问的页面不存在" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/reports", "/reports/1"])
def test_pages_obey_the_content_security_policy(client, path):
    html = client.get(path).get_data(as_text=True)
    assert 'style="' not in html and "style='" not in html
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # only external scripts
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    assert "/static/reports.css" in html


def test_a_2019_format_report_with_merged_groups_renders(app, client):
    """Rows given as a whole group (no sub-rows) get one colspan row and one bar."""
    db = connect(app.config["DATABASE"])
    report_id = db["reports"].insert({"agency": "某省统计局", "year": 2020, "title": "", "problems": "[]"}).last_pk
    rows = {"new": 10, "disclosed": 6, "unavailable": 3, "other_3": 1, "outcome_total": 10}
    db["facts"].insert_all({"report_id": report_id, "tbl": "三", "row_key": key, "row_label": key,
                            "col_key": "total", "col_label": "总计", "value": value, "unit": "件",
                            "section": ""} for key, value in rows.items())
    db.close()
    soup = soup_of(client.get(f"/reports/{report_id}"))
    table = soup.find("table", id="table-3")
    assert table.find("th", string="（四）无法提供")["colspan"] == "2"
    assert table.find("th", string="（六）其他处理")["colspan"] == "2"
    assert soup.find("table", id="table-2") is None and soup.find("table", id="table-4") is None
    labels = [t.get_text() for t in soup.find("svg").find_all("text", class_="chart-label")]
    assert labels == ["予以公开", "无法提供", "其他处理"]
    assert "占办理结果总计的 60.0%" in soup.find(class_="share").get_text()


# --------------------------------------------------------------------------- helpers


def test_table2_column_order_covers_every_column():
    assert sorted(TABLE2_COL_ORDER) == sorted(TABLE2_COLS)


def test_narrative_turns_topic_sentences_into_leads():
    passages = [
        {"section": "", "context": "", "text": "本报告所列数据的统计期限自2021年1月1日起"},
        {"section": "一、总体情况 （一）主动公开", "context": "", "text": "及时发布统计数据"},
        {"section": "一、总体情况 （一）主动公开", "context": "及时发布统计数据", "text": "发布新闻稿221篇"},
        {"section": "一、总体情况 （一）主动公开", "context": "及时发布统计数据", "text": "召开发布会11场"},
        {"section": "一、总体情况 （二）平台建设", "context": "", "text": "一是公开28项制度"},
        {"section": "一、总体情况 （二）平台建设", "context": "", "text": "二是做好以下工作："},
    ]
    parts = narrative(passages)
    assert [(p.section, p.sub) for p in parts] == [
        ("", ""), ("一、总体情况", "（一）主动公开"), ("一、总体情况", "（二）平台建设")]
    (lead,) = parts[1].paragraphs
    assert (lead.lead_text, lead.body) == ("及时发布统计数据。", "发布新闻稿221篇。召开发布会11场。")
    (run_on,) = parts[2].paragraphs
    assert run_on.lead is None and run_on.body == "一是公开28项制度。二是做好以下工作："


def test_share_sentence_without_any_outcome():
    values = {("三", "disclosed", "total"): 0.0, ("三", "outcome_total", "total"): 0.0}
    result = outcomes(values)
    assert result is not None and result.bars == [] and result.share is None
    assert share_sentence(result) == "本年度没有办结的政府信息公开申请。"


def test_outcomes_split_bars_and_zero_rows():
    values = {("三", "disclosed", "total"): 5.0, ("三", "withheld_1", "total"): 0.0,
              ("三", "withheld_2", "total"): 2.0, ("三", "outcome_total", "total"): 7.0}
    result = outcomes(values)
    assert [b.label for b in result.bars] == ["予以公开", "不予公开：其他法律行政法规禁止公开"]
    assert result.zero_groups == [("不予公开", ["属于国家秘密"])]
    svg = str(chart_svg(result))
    assert svg.startswith("<svg") and 'role="img"' in svg and "style" not in svg


def test_table3_leaves_out_rows_the_report_does_not_have():
    table = table3({("三", "new", "total"): 4.0}, "三、收到和处理政府信息公开申请情况")
    body = table.sections[1].rows
    assert len(body) == 1 and body[0][0].text == "一、本年新收政府信息公开申请数量"
    missing = [c for c in body[0] if c.hidden_note]
    assert len(missing) == 6 and all(c.text == "—" for c in missing)


@pytest.mark.parametrize("label", [
    "其他处理：申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
    "不予处理：要求行政机关确认或重新出具已获取信息",
    "予以公开",
])
def test_wrap_keeps_every_line_within_the_width(label):
    lines = wrap(label, 12)
    assert "".join(lines) == label
    assert all(text_width(line) <= 12 for line in lines)
