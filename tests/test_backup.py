"""backup, restore and purge-contacts from the Flask CLI."""
from __future__ import annotations

import threading
import time

from conftest import sqlite_only
from service.storage import connect
from service.tickets import open_ticket


@sqlite_only  # PostgreSQL is backed up with pg_dump: the command refuses it (test_postgres.py)
def test_backup_while_writing_then_restore(app, runner, tmp_path) -> None:
    db_path = app.config["DATABASE"]
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        db = connect(db_path)
        n = 0
        while not stop.is_set():
            open_ticket(db, question=f"并发写入{n}", normalised=f"并发写入{n}", session=None, candidates=[])
            written.append(n)
            n += 1
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not written and time.monotonic() < deadline:  # a ticket is written before the backup starts
            time.sleep(0.01)
        target = tmp_path / "backups" / "copy.db"
        result = runner.invoke(args=["backup", str(target)])
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    assert "完整性检查通过" in result.output
    copy = connect(target)
    assert copy.execute("pragma integrity_check").fetchone()[0] == "ok"
    in_copy = copy.execute("select count(*) from tickets").fetchone()[0]
    assert 0 < in_copy <= len(written)
    copy.close()
    live = connect(db_path)
    live.execute("delete from alternates")
    version = live.execute("select value from meta where key = 'kb_version'").fetchone()[0]
    result = runner.invoke(args=["restore", str(target), "--yes"])
    assert result.exit_code == 0, result.output
    assert live.execute("select count(*) from alternates").fetchone()[0] > 100
    assert live.execute("select count(*) from tickets").fetchone()[0] == in_copy
    assert int(live.execute("select value from meta where key = 'kb_version'").fetchone()[0]) > int(version)


@sqlite_only  # restore copies a SQLite file; PostgreSQL is restored with pg_restore
def test_restore_refuses_a_file_that_is_not_a_backup(app, runner, tmp_path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(args=["restore", str(junk), "--yes"])
    assert result.exit_code != 0 and "恢复失败" in result.output
    other = tmp_path / "other.db"
    connect(other).execute("create table x (a)")
    result = runner.invoke(args=["restore", str(other), "--yes"])
    assert result.exit_code != 0 and "不是本服务" in result.output
    assert connect(app.config["DATABASE"]).execute("select count(*) from entries").fetchone()[0] >= 40


def test_purge_contacts_of_old_tickets_whatever_their_status(app, runner) -> None:
    db = connect(app.config["DATABASE"])
    ids = [open_ticket(db, question=f"问题{i}", normalised=f"问题{i}", session=None, candidates=[])["id"] for i in range(4)]
    db.execute("update tickets set contact_name = '张三', contact_phone = '13800000000', contact_email = 'a@b.cn'")
    db.execute("update tickets set status = 'closed', closed_at = '2020-01-01T00:00:00+00:00' where id = ?", [ids[0]])
    db.execute("update tickets set status = 'closed', closed_at = '2099-01-01T00:00:00+00:00' where id = ?", [ids[1]])
    # Answered long ago and never closed: it was skipped once, and kept the phone forever.
    db.execute("update tickets set status = 'answered', updated = '2020-02-01T00:00:00+00:00' where id = ?", [ids[3]])
    result = runner.invoke(args=["purge-contacts", "--older-than", "30"])
    assert result.exit_code == 0 and "2 张" in result.output
    rows = {r[0]: r[1:] for r in db.execute("select id, contact_name, contact_phone, contact_email from tickets")}
    assert rows[ids[0]] == (None, None, None) and rows[ids[3]] == (None, None, None)
    assert rows[ids[1]][0] == "张三" and rows[ids[2]][0] == "张三"  # recent
