"""`fraudpipe produce`: generate transactions with labelled fraud and send them to Kafka or to files."""
from __future__ import annotations

import dataclasses
import datetime as dt
import sys

import click

from fraudpipe import contracts
from fraudpipe.config import load_config


def _parse_start(value: str | None) -> int | None:
    """--start as epoch milliseconds or an ISO-8601 time (UTC when no zone is given)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is neither epoch milliseconds nor an ISO-8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _not_negative(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A rate as typed, refused when negative whatever the clock (click names the option)."""
    if value is not None and value < 0:
        raise click.BadParameter(f"{value:g} is negative: give transactions per second, or 0 for as fast as "
                                 "possible (simulated clock only)", param=param)
    return value


def _progress(line: str) -> None:
    final = line.startswith(("done", "interrupted"))
    # one line, rewritten in place; the final summary ends it
    click.echo("\r" + line + ("\n" if final else "   "), err=True, nl=False)


@click.command("produce")
@click.option("--rate", type=float, callback=_not_negative, help="Transactions per second (0 = as fast as possible). Default: producer.rate.")
@click.option("--count", type=click.IntRange(min=0), help="Stop after this many transactions.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--seed", type=int, help="Random seed (default producer.seed); same seed + simulated clock = same stream.")
@click.option("--schema-version", type=click.Choice(["1", "2"]), help="2 adds device_id (schema evolution demo).")
@click.option("--clock", type=click.Choice(["realtime", "simulated"]), help="Event-time clock (default producer.clock).")
@click.option("--start", "start", help="Simulated clock start: epoch ms or ISO-8601 (default producer.start_ms, 0 = now).")
@click.option("--event-rate", type=float, callback=_not_negative, help="Simulated clock: transactions per event-time second.")
@click.option("--to-file", "to_file", type=click.Path(dir_okay=False), help="Write Parquet (.parquet) or Avro (.avro) instead of Kafka.")
@click.option("--topic", default=contracts.TRANSACTIONS_TOPIC, show_default=True)
@click.option("--labels-topic", default=contracts.LABELS_TOPIC, show_default=True)
@click.option("--create-topics", is_flag=True, help="Create the topics when they do not exist.")
@click.option("--whole-minutes", is_flag=True,
              help="--to-file: go on past --count until no burst is cut and the last minute is whole.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="Config file (default: config.yml), e.g. benchmarks/detection/shifted.yml.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def produce_command(rate, count, duration, seed, schema_version, clock, start, event_rate, to_file, topic,
                    labels_topic, create_topics, whole_minutes, config_file, quiet) -> None:
    """Generate realistic transactions with labelled fraud patterns and publish them as Avro."""
    from producer.generator import TransactionGenerator

    config = load_config(config_file)
    producer = config.producer
    overrides = {"rate": rate, "seed": seed, "clock": clock, "event_rate": event_rate,
                 "schema_version": int(schema_version) if schema_version else None}
    producer = dataclasses.replace(producer, **{k: v for k, v in overrides.items() if v is not None})
    start_ms = _parse_start(start)

    if to_file:
        from producer.files import write_files

        if count is None:
            raise click.UsageError("--to-file needs --count")
        generator = TransactionGenerator(producer, start_ms=start_ms, clock="simulated")
        summary = write_files(generator.batches(count, whole_minutes=whole_minutes), to_file,
                              schema_version=producer.schema_version)
        click.echo(f"wrote {summary.transactions:,} transactions to {summary.transactions_path} "
                   f"and {summary.labels:,} labels to {summary.labels_path}")
        return

    from producer.publisher import Publisher
    from producer.runner import run

    if whole_minutes:
        raise click.UsageError("--whole-minutes is for --to-file")
    if producer.clock == "realtime" and producer.rate == 0:
        given = f"--rate {rate:g}" if rate is not None else f"producer.rate {producer.rate:g} (config.yml)"
        raise click.UsageError(f"{given} means as fast as possible, which needs --clock simulated")
    generator = TransactionGenerator(producer, start_ms=start_ms)
    publisher = Publisher(config.kafka, producer, registry_url=config.schema_registry.url, topic=topic,
                          labels_topic=labels_topic, create_topics=create_topics)
    progress = None if quiet else _progress
    stats = run(publisher, generator, rate=producer.rate, count=count, duration=duration, progress=progress)
    if quiet:
        click.echo(f"sent {stats.sent:,} transactions and {stats.labels_sent:,} labels, "
                   f"{stats.errors:,} delivery errors", err=True)
    sys.stdout.flush()
