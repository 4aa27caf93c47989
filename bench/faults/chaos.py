"""Chaos round: sign-ups while the relay, a bridge and a worker are kill -9'd at random.

    python -m bench.faults.chaos [--events 1000] [--seconds 60] [--seed N]

Each event is a sign-up owing one welcome email. While they are made, every
0.5-2.5 s one of `relay` (flask bridge --relay-only), `bridge` (flask bridge
--no-relay) or `worker` (flask worker, two of them) gets SIGKILL and is started
again 0.2-1.5 s later. Then everything runs undisturbed until every email is sent
(or nothing moves for a minute), and the SMTP sink's count per event is printed.
Goal: no event without its email, at least 99 % exactly one, and duplicates carry
the same Message-ID (mail clients show one).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter

from bench.faults.harness import Round, emails_per_event, services_round, sign_up, wait_for

ROLES = {
    "relay": ("bridge", "--relay-only"),
    "bridge": ("bridge", "--no-relay"),
    "worker": ("worker",),
    "worker2": ("worker",),
}


def produce(found: Round, recipients: list[str], seconds: float, done: threading.Event) -> None:
    """Sign the recipients up at an even pace over `seconds`."""
    started = time.monotonic()
    for i, email in enumerate(recipients):
        delay = started + seconds * i / len(recipients) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sign_up(found.app, email)
    done.set()


def chaos(found: Round, done: threading.Event, rng: random.Random) -> Counter[str]:
    """Kill and restart processes at random until the events are all made."""
    kills: Counter[str] = Counter()
    while not done.is_set():
        time.sleep(rng.uniform(0.5, 2.5))
        victim = rng.choice(["relay", "bridge", "worker"])
        found.kill(victim)
        kills[victim] += 1
        time.sleep(rng.uniform(0.2, 1.5))
        found.start(victim, *ROLES[victim])
    return kills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long sign-ups go on")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    with services_round("chaos") as found:
        for role, command in ROLES.items():
            found.start(role, *command)
        recipients = [f"chaos{i}@example.com" for i in range(args.events)]
        done = threading.Event()
        producer = threading.Thread(target=produce, args=(found, recipients, args.seconds, done))
        started = time.monotonic()
        producer.start()
        kills = chaos(found, done, rng)
        producer.join()
        chaos_seconds = time.monotonic() - started
        drained = wait_for(
            lambda: found.deliveries_by_state()["sent"] >= args.events,
            timeout=900,
            idle=300,  # a job a killed worker stranded waits for a maintenance pass, and retries
            progress=found.sink.count,
        )
        time.sleep(2.0)  # a late duplicate would show up now
        report(found, recipients, kills, chaos_seconds, time.monotonic() - started, drained, seed)


def report(
    found: Round,
    recipients: list[str],
    kills: Counter[str],
    chaos_seconds: float,
    total_seconds: float,
    drained: bool,
    seed: int,
) -> None:
    per_event, duplicated, same_id = emails_per_event(found.sink, recipients)
    events = len(recipients)
    exactly_one = per_event[1] / events
    print(f"chaos round (seed {seed}): {events} sign-ups in {chaos_seconds:.0f} s", end="")
    killed = ", ".join(f"{k} {n}" for k, n in sorted(kills.items()))
    print(f" with {sum(kills.values())} kill -9s ({killed})")
    print(f"  drained after {total_seconds:.0f} s in all" + ("" if drained else " (NOT drained)"))
    shown = ", ".join(
        f"{n} email{'s' if n != 1 else ''}: {per_event[n]}" for n in sorted(per_event)
    )
    print(f"  emails per event: {shown}")
    print(f"  exactly one: {exactly_one:.1%} (goal >= 99%); none: {per_event[0]} (goal 0)")
    print(f"  duplicated events: {duplicated}, sharing one Message-ID: {same_id}")
    states = found.deliveries_by_state()
    print(f"  ledger: {dict(sorted(states.items()))}; dead letters: {found.dead_messages()}")
    ok = per_event[0] == 0 and exactly_one >= 0.99 and same_id == duplicated and drained
    print("  goal met" if ok else "  GOAL MISSED")
    for line in found.where_undelivered()[:20]:
        print(f"    {line}")


if __name__ == "__main__":
    main()
