"""Flask CLI commands for staff work on the knowledge (reports)."""
from __future__ import annotations

from pathlib import Path

import sqlite3
from datetime import datetime, timedelta, timezone

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import keys, storage
from .accounts import end_all_sessions
from .db import get_db, private, with_database
from .knowledge import import_report, report_summary
from .migrations import apply_migrations
from .reports import ReportFormatError


@click.command("import-report")
@with_database
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agency", help="机关名称，覆盖从报告标题识别的结果")
@click.option("--year", type=click.IntRange(1990, 2100), help="报告年度，覆盖从报告识别的结果")
def import_report_command(path: Path, agency: str | None, year: int | None) -> None:
    """Import an annual disclosure report (.txt, .html or .docx).

    Re-importing the same agency and year replaces that report in one transaction.

    Example: flask --app service import-report mof-2022.docx --agency 财政部 --year 2022
    """
    try:
        report, report_id, replaced = import_report(get_db(), path.read_bytes(), path.name,
                                                    agency=agency, year=year)
    except ReportFormatError as exc:
        raise click.ClickException(f"未导入：{exc}") from exc
    click.echo(("已替换" if replaced else "已导入") + f"（编号 {report_id}）：")
    for line in report_summary(report):
        click.echo(line)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_database
def backup_command(path: Path) -> None:
    """Copy the database to PATH while the service keeps running (SQLite's online backup),
    and the secret keys to PATH.keys: citizens' query passwords are checked with them.

    Both files are readable by their owner only. Keep them together and keep them safe.

    Example: flask --app service backup /var/backups/inquiry-2026-11-25.db
    """
    if storage.is_url(current_app.config["DATABASE"]):
        raise click.ClickException("PostgreSQL 数据库请用 pg_dump 备份（例如 pg_dump -Fc -f 备份文件 数据库地址），"
                                   "并另行保存实例目录中的密钥文件 secret_key。")
    try:
        pages = storage.backup(current_app.config["DATABASE"], path)
        keys_path = keys.write_backup_keys(path, Path(current_app.instance_path))
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"备份失败：{exc}") from exc
    click.echo(f"已备份到 {path}（{pages} 页，完整性检查通过）；密钥已备份到 {keys_path}。")


@click.command("rotate-secret")
@with_database
def rotate_secret_command() -> None:
    """Make a new secret key; the old one is kept only to check query passwords made with it.

    Every staff session ends now (staff sign in again); citizens' query passwords keep
    working (each is re-hashed under the new key the next time it is used). Restart the
    service afterwards.

    Example: flask --app service rotate-secret
    """
    old_id, new_id = keys.rotate(Path(current_app.instance_path))
    ended = end_all_sessions(get_db(), "rotate")
    click.echo(f"已生成新密钥（{new_id}），旧密钥（{old_id}）仅用于核验已有的查询密码；已结束 {ended} 个工作人员登录会话。"
               "请重启服务使其生效。")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="不再询问，直接恢复")
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="备份的密钥文件（默认：备份文件旁的 PATH.keys）")
@with_database(create=True)
def restore_command(path: Path, yes: bool, keys_file: Path | None) -> None:
    """Replace the database with the backup at PATH (checked first; the service may keep
    running), and keep the keys of PATH.keys for checking query passwords.

    Example: flask --app service restore /var/backups/inquiry-2026-11-25.db --yes
    """
    if storage.is_url(current_app.config["DATABASE"]):
        raise click.ClickException("PostgreSQL 数据库请用 pg_restore 恢复 pg_dump 的备份，"
                                   "然后运行本服务的任一命令以应用新的迁移。")
    if not yes:
        click.confirm(f"将用 {path} 覆盖当前数据库 {current_app.config['DATABASE']}，确定吗？", abort=True)
    keys_path = keys_file or path.with_name(path.name + ".keys")
    try:
        storage.restore(path, current_app.config["DATABASE"])
        private(current_app.config["DATABASE"])
        restored = storage.connect(current_app.config["DATABASE"])
        try:
            # A backup from before a migration gets it now, not at the workers' next restart.
            apply_migrations(restored)
            # Sessions ended since the backup was taken must not come back to life, nor
            # locks lifted since return.
            end_all_sessions(restored, "restore")
            restored.execute("delete from login_failures")
        finally:
            restored.close()
        added = keys.merge(Path(current_app.instance_path), keys_path.read_text()) if keys_path.exists() else None
    except (storage.BackupError, sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"恢复失败：{exc}") from exc
    click.echo("已恢复。各工作进程会在下一个问题时载入恢复后的知识库。")
    if added is None:
        click.echo(f"未找到密钥文件 {keys_path}：若备份来自另一台服务器或密钥已更换，"
                   "备份中工单的查询密码将无法核验。", err=True)
    elif added:
        click.echo(f"已保留备份中的 {added} 个旧密钥用于核验查询密码；请重启服务使其生效。")


@click.command("purge-contacts")
@click.option("--older-than", "days", type=click.IntRange(0, 36500), required=True,
              help="清除最后处理时间早于这么多天的工单中的联系方式（不论状态）")
@with_database
def purge_contacts_command(days: int) -> None:
    """Erase citizens' names, phones and e-mails from tickets untouched for more than DAYS
    days, whatever their status; then checkpoint the log so no copy of them stays on disk.

    Example: flask --app service purge-contacts --older-than 180
    """
    cutoff = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    db = get_db()
    erased, clean = storage.purge_contacts(db, cutoff)
    click.echo(f"已清除 {erased} 张工单中的联系方式。")
    if not clean:
        click.echo("提示：有其他连接正在读取数据库，日志文件未能完全清空；服务空闲时请再运行一次本命令。", err=True)


@click.command("migrate-to")
@click.argument("url")
@with_database
def migrate_to_command(url: str) -> None:
    """Copy the SQLite database (--db) into a new, empty PostgreSQL database at URL, then
    check that every table has as many rows there as here.

    Stop the service first (what it writes during the copy would be left behind); then
    start every host with INQUIRY_DATABASE_URL=URL.

    Example: flask --app service migrate-to postgresql://inquiry@db.internal/inquiry --db instance/inquiry.db
    """
    from .transfer import TransferError, copy_to_postgres

    if not storage.is_url(url):
        raise click.ClickException("URL 必须是 postgresql:// 地址")
    source = get_db()
    if storage.is_postgres(source):
        raise click.ClickException("源数据库必须是 SQLite 文件（用 --db 指定）")
    try:
        target = storage.connect(url)
    except storage.Error as exc:
        raise click.ClickException(f"无法连接 {url}：{exc}") from exc
    try:
        counts = copy_to_postgres(source, target)
    except (TransferError, *storage.Error) as exc:
        raise click.ClickException(f"未迁移：{exc}") from exc
    finally:
        target.close()
    rows = sum(a for a, _ in counts.values())
    click.echo(f"已复制 {len(counts)} 张表、共 {rows} 行到 {url}，各表行数核对一致。")


@click.command("roll-up")
@with_database
def roll_up_command() -> None:
    """Add the questions and feedback logged since the last rollup to the analytics' daily
    tables, so that the next view of the analytics page does not wait for it (at ten
    million new questions the first view otherwise takes about 20 s). Run it after an
    import of an old log, or nightly from cron.

    Example: flask --app service roll-up
    """
    from . import analytics

    db = get_db()
    asks = analytics.roll_up(db)
    rated = analytics.roll_up_feedback(db)
    click.echo(f"已汇总 {asks} 条提问记录、{rated} 条评价。")


ROOT = Path(__file__).resolve().parent.parent


@click.command("fit-decision")
@with_appcontext
@click.option("--cases", "cases_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=ROOT / "tests" / "data" / "eval", show_default=True,
              help="folder of labelled question sets (part_*.jsonl, calibration*.jsonl); their tune split "
                   "fits the model, their calibration split the answer thresholds; holdout is never read")
@click.option("--reports", "reports_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=ROOT / "tests" / "data" / "reports", show_default=True,
              help="folder of other agencies' reports with *.questions.jsonl checks")
@click.option("--max-wrong", type=click.FloatRange(0.0, 0.2), default=0.003, show_default=True,
              help="the largest share of wrong answers the answer threshold may allow on the tune split")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="where to write the model (default: decision.toml in the knowledge folder)")
def fit_decision_command(cases_dir: Path, reports_dir: Path, max_wrong: float, out: Path | None) -> None:
    """Fit the desk's decision model on the tune split of the labelled questions.

    Builds the shipped knowledge (and the reports that have checks) in a temporary
    database, fits the candidate and decision weights on the tune split and the thresholds
    on the tune and calibration splits, and writes them to knowledge/decision.toml. The
    holdout split is never read.

    Example: flask --app service fit-decision --max-wrong 0.003
    """
    import tempfile

    from .desk import Desk
    from .evaluation import load_cases
    from .fitting import fit
    from .knowledge import seed, seed_paraphrases

    folder = Path(current_app.config["KNOWLEDGE_DIR"])
    with tempfile.TemporaryDirectory() as tmp:
        db = storage.connect(str(Path(tmp) / "fit.db"))
        apply_migrations(db)
        seed(db, folder, current_app.config["HOME_AGENCY"])
        seed_paraphrases(db, folder)
        checks = sorted(reports_dir.glob("*.questions.jsonl"))
        for path in checks:
            stem = path.name[: -len(".questions.jsonl")]
            for report in reports_dir.glob(stem + ".*"):
                if report.suffix in (".docx", ".html", ".txt"):
                    import_report(db, report.read_bytes(), report.name)
        from .db import desk_settings
        desk = Desk.build(db, folder, desk_settings(current_app))
        cases = load_cases(sorted(cases_dir.glob("part_*.jsonl")) + sorted(cases_dir.glob("calibration*.jsonl"))
                           + checks)
        result = fit(desk, cases, max_wrong=max_wrong)
        db.close()
    target = out or folder / "decision.toml"
    target.write_text(result.model.dump(), encoding="utf-8")
    click.echo(f"已拟合：{result.cases} 个问题、{result.candidates} 个候选；调参集上回答 {result.answered} 个，"
               f"其中正确 {result.right} 个、错误 {result.wrong} 个。")
    if result.calibration:
        click.echo(f"校准集 {result.calibration} 个问题（只用于定阈值）：回答 {result.calibration_answered} 个，"
                   f"其中错误 {result.calibration_wrong} 个。")
    click.echo(f"回答阈值 {result.model.answer_threshold:.3f}，澄清阈值 {result.model.clarify_threshold:.3f}；"
               f"已写入 {target}")


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (import_report_command, backup_command, restore_command, purge_contacts_command,
                    fit_decision_command, rotate_secret_command, roll_up_command, migrate_to_command):
        app.cli.add_command(command)
