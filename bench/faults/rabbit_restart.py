"""RabbitMQ restart round: 1,000 persistent messages queued, the broker restarted, all arrive.

    python -m bench.faults.rabbit_restart [--events 1000]

It runs a RabbitMQ node of its own (bench/faults/rabbit_node.py: spare ports, data
under a temporary directory) and restarts only that one. The relay publishes the
sign-ups' messages while nothing consumes them; the node is stopped and started
again; then a bridge and two workers deliver what the queue kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from app.jobs.relay import Relay
from bench.faults.harness import emails_per_event, services_round, sign_up, wait_for
from bench.faults.rabbit_node import RabbitNode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledgerly-rabbit-") as base:
        node = RabbitNode(Path(base))
        try:
            started = time.monotonic()
            node.start()
            print(f"private RabbitMQ node {node.name} on 127.0.0.1:{node.port}", end="")
            print(f" (started in {time.monotonic() - started:.0f} s)")
            run(node, args.events)
            node.stop()
        finally:
            node.kill()


def run(node: RabbitNode, events: int) -> None:
    with services_round("restart", rabbitmq_url=node.url) as found:
        recipients = [f"restart{i}@example.com" for i in range(events)]
        for email in recipients:
            sign_up(found.app, email)
        relay = Relay(found.app)
        published = 0
        while published < events:
            published += relay.publish_batch()
        relay._close()
        queued = found.broker_ready()
        started = time.monotonic()
        node.stop()
        node.start()
        restart_seconds = time.monotonic() - started
        kept = found.broker_ready()
        found.start("bridge", "bridge", "--no-relay")
        found.start("worker", "worker")
        found.start("worker2", "worker")
        started = time.monotonic()
        drained = wait_for(
            lambda: found.sink.count() >= events, timeout=900, progress=found.sink.count
        )
        time.sleep(2.0)
        per_event, duplicated, _ = emails_per_event(found.sink, recipients)
        print(f"RabbitMQ restart: {queued} persistent messages queued, node restarted in", end="")
        print(f" {restart_seconds:.0f} s, {kept} still queued after it")
        print(
            f"  delivered in {time.monotonic() - started:.0f} s: {found.sink.count()} emails;",
            end="",
        )
        print(f" events with exactly one: {per_event[1]}, none: {per_event[0]}, more: {duplicated}")
        ok = queued == kept == events and per_event[1] == events and drained
        print("  all arrived, once" if ok else "  GOAL MISSED")


if __name__ == "__main__":
    main()
