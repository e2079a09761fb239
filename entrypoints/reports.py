"""What the CLI and the demo print: progress while a file runs, a table of counts after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.logging import mask_value


@contextmanager
def row_progress(
    console: Console,
    *,
    enabled: bool,
    description: str = "scoring and scrubbing",
    unit: str = "rows",
) -> Iterator[Callable[[int], None]]:
    """A live "rows done" counter on a terminal; a no-op callback elsewhere (logs, CI)."""
    if not enabled:
        yield lambda _rows: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} " + unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda rows: progress.update(task, completed=rows)


def _counts_table(title: str, count: dict[str, Any], seconds: float | None) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("rows", justify="right")
    for label, key in (("in", "in"), ("out (streamed)", "out"), ("rejected", "rejected")):
        table.add_row(label, f"{count.get(key, 0):,}")
    table.add_row("tagged (streamed with tags)", f"{count.get('tagged', 0):,}")
    if count.get("stranded"):
        table.add_row("[red]stranded (not delivered)[/]", f"{count['stranded']:,}")
    for reason, n in sorted(count.get("rejectedByReason", {}).items(), key=lambda kv: -kv[1]):
        table.add_row(f"  rejected: {reason}", f"{n:,}")
    for tag, n in sorted(count.get("byTag", {}).items(), key=lambda kv: -kv[1]):
        table.add_row(f"  tag: {tag}", f"{n:,}")
    for band, n in sorted(count.get("byBand", {}).items()):
        table.add_row(f"  band: {band}", f"{n:,}")
    if seconds:
        table.add_row("rows/s through the handler", f"{count.get('in', 0) / seconds:,.0f}")
    return table


def print_handler_response(
    console: Console, response: dict[str, Any], *, seconds: float | None = None
) -> int:
    """Prints every file's result; the exit code is 1 when any file failed."""
    code = 0
    for file in response["files"]:
        if file["status"] != "ok":
            code = 1
            console.print(f"[red]failed[/] {file['source']}: {file['error']['message']}")
        if file.get("alreadyProcessed"):
            console.print(f"{file['source']} was processed before; nothing done again")
        elif "resumedAtLine" in file:
            console.print(f"{file['source']}: resumed at line {file['resumedAtLine']:,}")
        if "count" in file:
            console.print(_counts_table(file["source"], file["count"], seconds))
    return code


def print_scored_outcome(console: Console, outcome: Any) -> int:
    """One file's worker outcome, printed as the Lambda handler would report it."""
    from entrypoints.lambda_handlers import file_result

    return print_handler_response(console, {"files": [file_result(outcome)]})


def masked(record: dict[str, Any]) -> Any:
    return mask_value(record)
