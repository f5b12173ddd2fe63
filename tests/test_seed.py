"""Migrations and seeding: a fresh database is complete; later starts keep staff edits."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ON_POSTGRES
from service import create_app
from service.knowledge import read_faq
from service.migrations import MIGRATIONS
from service.storage import connect

ROOT = Path(__file__).resolve().parent.parent


def test_fresh_database_is_migrated_and_seeded(app) -> None:
    db = connect(app.config["DATABASE"])
    assert {r["name"] for r in db["_migrations"].rows} == {name for name, _ in MIGRATIONS}
    published = db.execute("select count(*) from entries where status = 'published'").fetchone()[0]
    assert published >= 40
    too_few = db.execute("select e.id from entries e left join alternates a on a.entry_id = e.id "
                         "group by e.id having count(a.id) < 4").fetchall()
    assert too_few == []
    assert db.execute("select count(*) from entries where source is null or source = ''").fetchone()[0] == 0
    assert db.execute("select agency, year from reports").fetchall() == [("国家统计局", 2021)]
    assert db.execute("select count(*) from facts").fetchone()[0] > 190
    assert db.execute("select count(*) from passages").fetchone()[0] > 50
    assert db.execute("select count(*) from synonyms").fetchone()[0] > 50
    assert db.execute("select count(*) from lexicon_words").fetchone()[0] > 50
    if not ON_POSTGRES:  # SQLite's write-ahead log (PostgreSQL has its own)
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_entries_have_timestamps_and_status(app) -> None:
    db = connect(app.config["DATABASE"])
    row = db.execute("select created, updated, status, category, source from entries limit 1").fetchone()
    assert row[0] and row[1] and row[2] == "published" and row[3] and row[4]


def test_restart_keeps_staff_changes(tmp_path) -> None:
    config = {"TESTING": True, "DATABASE": str(tmp_path / "keep.db")}
    app = create_app(config)
    db = connect(app.config["DATABASE"])
    db.execute("update entries set answer = '已由工作人员修改。' where id = 1")
    db.execute("delete from alternates where entry_id = 2")
    count = db.execute("select count(*) from entries").fetchone()[0]
    create_app(config)  # a second start
    db = connect(app.config["DATABASE"])
    assert db.execute("select answer from entries where id = 1").fetchone()[0] == "已由工作人员修改。"
    assert db.execute("select count(*) from alternates where entry_id = 2").fetchone()[0] == 0
    assert db.execute("select count(*) from entries").fetchone()[0] == count


def test_faq_file_meets_the_content_bar() -> None:
    entries = read_faq(ROOT / "knowledge")
    assert len(entries) >= 40
    assert all(len(e["alternates"]) >= 4 for e in entries)
    sources = " ".join(e["source"] for e in entries)
    for article in ["第二十七条", "第二十九条", "第三十条", "第三十一条", "第三十二条", "第三十三条",
                    "第三十五条", "第三十六条", "第三十八条", "第三十九条", "第四十二条", "第五十一条",
                    "第十四条", "第十五条", "第十六条", "第二十条"]:
        assert article in sources, article
    alternates = [a for e in entries for a in e["alternates"]]
    assert len(alternates) == len(set(alternates)), "an alternate phrasing belongs to two entries"


def test_knowledge_files_parse() -> None:
    for name in ["language.toml", "chitchat.toml", "report_terms.toml", "site.toml"]:
        with (ROOT / "knowledge" / name).open("rb") as fh:
            assert tomllib.load(fh)


def test_inquiry_db_environment_variable_overrides_default(tmp_path, monkeypatch) -> None:
    target = tmp_path / "from-env.db"
    monkeypatch.setenv("INQUIRY_DB", str(target))
    app = create_app()
    assert app.config["DATABASE"] == str(target)
    assert target.exists()


def test_flask_cli_honours_inquiry_db(tmp_path) -> None:
    target = tmp_path / "cli.db"
    env = dict(os.environ, INQUIRY_DB=str(target))
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "service", "init-db"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert connect(target).execute("select count(*) from entries").fetchone()[0] >= 40


def test_run_py_flags() -> None:
    sys.path.insert(0, str(ROOT))
    import run

    args = run.parse_args(["--host", "0.0.0.0", "--port", "8080", "--db", "x.db", "--workers", "3"])
    assert (args.host, args.port, args.db, args.workers) == ("0.0.0.0", 8080, "x.db", 3)
    assert run.parse_args([]).port == 5000
