"""Flask CLI commands for staff work on the knowledge (reports)."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

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


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(import_report_command)
