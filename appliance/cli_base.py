"""What every ``appliance`` command group shares: the exit-2 error, settings, an open node.

Kept apart from ``cli.py`` so command groups in their own modules (``cli_model.py``, ...) can use
them without importing the main group (which imports them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from appliance.node import Node, NodeError
from appliance.settings import Settings, SettingsError, load_settings
from ledger import LedgerError

__all__ = ["CLI_ACTOR", "CliError", "echo_json", "echo_table", "node_from", "settings_from"]

CLI_ACTOR = "admin:cli"


class CliError(click.ClickException):
    """Unusable input or state: message on stderr, exit code 2."""

    exit_code = 2


def settings_from(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        overrides: dict[str, Any] = {}
        if obj.get("data_dir"):
            overrides["node"] = {"data_dir": obj["data_dir"]}
        try:
            obj["settings"] = load_settings(obj.get("config"), **overrides)
        except SettingsError as exc:
            raise CliError(str(exc)) from None
    return obj["settings"]


@contextmanager
def node_from(ctx: click.Context, readonly: bool = False) -> Iterator[Node]:
    try:
        node = Node.open(settings_from(ctx), readonly=readonly)
    except (NodeError, LedgerError) as exc:
        raise CliError(str(exc)) from None
    try:
        yield node
    except LedgerError as exc:
        raise CliError(str(exc)) from None
    finally:
        node.close()


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_table(title: str, columns: list[str], rows: list[list[object]], *, width: int = 160) -> None:
    """A rich table on stdout (None shows as empty), at a fixed width so pipes get whole lines."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    Console(file=sys.stdout, width=width).print(table)
