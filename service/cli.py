"""Flask CLI commands for staff work on the knowledge (reports)."""
from __future__ import annotations

from pathlib import Path

import sqlite3
from datetime import datetime, timedelta, timezone

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import storage
from .db import get_db
from .knowledge import import_report, report_summary
from .reports import ReportFormatError


@click.command("import-report")
@with_appcontext
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
@with_appcontext
def backup_command(path: Path) -> None:
    """Copy the database to PATH while the service keeps running (SQLite's online backup).

    Example: flask --app service backup /var/backups/inquiry-2026-11-25.db
    """
    try:
        pages = storage.backup(current_app.config["DATABASE"], path)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"备份失败：{exc}") from exc
    click.echo(f"已备份到 {path}（{pages} 页，完整性检查通过）。")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="不再询问，直接恢复")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH (checked first; the service may keep running).

    Example: flask --app service restore /var/backups/inquiry-2026-11-25.db --yes
    """
    if not yes:
        click.confirm(f"将用 {path} 覆盖当前数据库 {current_app.config['DATABASE']}，确定吗？", abort=True)
    try:
        storage.restore(path, current_app.config["DATABASE"])
    except (storage.BackupError, sqlite3.Error) as exc:
        raise click.ClickException(f"恢复失败：{exc}") from exc
    click.echo("已恢复。各工作进程会在下一个问题时载入恢复后的知识库。")


@click.command("purge-contacts")
@click.option("--older-than", "days", type=click.IntRange(0, 36500), required=True,
              help="清除关闭超过这么多天的工单中的联系方式")
@with_appcontext
def purge_contacts_command(days: int) -> None:
    """Erase citizens' names, phones and e-mails from tickets closed more than DAYS days ago.

    Example: flask --app service purge-contacts --older-than 180
    """
    cutoff = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    db = get_db()
    cursor = db.execute(
        "update tickets set contact_name = null, contact_phone = null, contact_email = null "
        "where status = 'closed' and coalesce(closed_at, updated) < ? and "
        "(contact_name is not null or contact_phone is not null or contact_email is not null)", [cutoff])
    click.echo(f"已清除 {cursor.rowcount} 张已关闭工单中的联系方式。")


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
    from .migrations import apply_migrations

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
                    fit_decision_command):
        app.cli.add_command(command)
