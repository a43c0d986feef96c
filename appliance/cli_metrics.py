"""``appliance metrics``: the Prometheus scrape token (the metrics themselves are at ``GET /metrics``)."""

from __future__ import annotations

import click

from appliance.cli_base import CLI_ACTOR, CliError, node_from

__all__ = ["metrics_group"]


@click.group("metrics")
def metrics_group() -> None:
    """Prometheus metrics: the token a scraper sends to GET /metrics."""


@metrics_group.command("token")
@click.option("--rotate", is_flag=True, help="Replace the existing token (the old one stops working).")
@click.pass_context
def token(ctx: click.Context, rotate: bool) -> None:
    """Make the scrape token (0600, metrics.token_file or <data_dir>/keys/metrics.token); shown once.

    The running server picks it up at the next scrape; put it in Prometheus's credentials_file.
    """
    from appliance.metrics import MetricsError, issue_token

    with node_from(ctx) as node:
        try:
            issued = issue_token(node, actor=CLI_ACTOR, rotate=rotate)
        except MetricsError as exc:
            raise CliError(str(exc)) from None
    click.echo(f"{'rotated' if issued.rotated else 'made'} {issued.path}; the token (shown once):")
    click.echo(issued.token)
    click.echo(
        "Prometheus: copy it into a file only Prometheus reads and scrape with\n"
        "  authorization: {type: Bearer, credentials_file: /etc/prometheus/appliance-metrics.token}"
    )
