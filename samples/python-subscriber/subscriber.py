#!/usr/bin/env python3
"""Follows one batch's outcomes as CloudEvents and validates each event's data against the JSON Schema.

    subscriber.py --batch ID [--url amqp://guest:guest@localhost:5672/] [--exchange mambast.events] [--expect N]

Binds a queue to the topic exchange with the routing keys <type>.<batch id> and prints one line per job
(the worker delivers at least once: the CloudEvent's subject, the job id, is the idempotency key).
With --expect it exits after N distinct jobs: 0 if every event was valid, 1 otherwise.
Needs Debian's python3-pika (1.2) and python3-jsonschema.
"""
import argparse
import json
import os
import pathlib
import sys

import pika

CONTRACTS = pathlib.Path(__file__).resolve().parents[2] / "contracts"
sys.path.insert(0, str(CONTRACTS))
import validate  # noqa: E402  (contracts/validate.py: the schemas and their loader)

TYPES = {"mambast.image.stylized.v1": "ImageStylized", "mambast.image.failed.v1": "ImageStylizationFailed"}
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "data")


def check(event: dict, batch: str, validators: dict) -> list[str]:
    problems = [f"missing attribute {a}" for a in REQUIRED_ATTRIBUTES if a not in event]
    if problems:
        return problems
    if event["specversion"] != "1.0":
        problems.append(f"specversion {event['specversion']!r}, expected '1.0'")
    if event["type"] not in TYPES:
        return problems + [f"unknown type {event['type']!r}"]
    problems += validate.errors(validators[event["type"]], event["data"])
    data = event["data"]
    if data.get("jobId") != event["subject"]:
        problems.append(f"subject {event['subject']} is not data.jobId {data.get('jobId')}")
    if data.get("batchId") != batch:
        problems.append(f"data.batchId {data.get('batchId')!r} is not the batch {batch!r}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--url", default=os.environ.get("Broker__Url", "amqp://guest:guest@localhost:5672/"))
    parser.add_argument("--exchange", default="mambast.events")
    parser.add_argument("--queue", help="default mambast-sample-python-<batch>")
    parser.add_argument("--expect", type=int, help="exit after this many distinct jobs")
    args = parser.parse_args()

    validators = {t: validate.load_validator(name) for t, name in TYPES.items()}
    # Error codes travel as numbers; the schema carries their names.
    code_names = validators["mambast.image.failed.v1"].schema["properties"]["errorCode"]["x-enumNames"]
    queue = args.queue or f"mambast-sample-python-{args.batch}"
    connection = pika.BlockingConnection(pika.URLParameters(args.url.replace("rabbitmq://", "amqp://", 1)))
    channel = connection.channel()
    channel.exchange_declare(args.exchange, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True, arguments={"x-expires": 24 * 3600 * 1000})
    for event_type in TYPES:
        channel.queue_bind(queue, args.exchange, routing_key=f"{event_type}.{args.batch}")
    channel.basic_qos(prefetch_count=32)
    print(f"listening queue={queue} batch={args.batch}", flush=True)

    seen: set[str] = set()
    invalid = 0
    try:
        for method, properties, body in channel.consume(queue):
            content_type = (properties.content_type or "").split(";")[0].strip()
            try:
                event = json.loads(body)
                problems = [] if content_type == "application/cloudevents+json" else [f"content type {content_type!r}"]
                problems += check(event, args.batch, validators)
            except ValueError as e:
                event, problems = {}, [f"not JSON: {e}"]
            if problems:
                invalid += 1
                print(f"invalid {event.get('id', '?')}: {'; '.join(problems)}", file=sys.stderr, flush=True)
                channel.basic_nack(method.delivery_tag, requeue=False)
                continue
            channel.basic_ack(method.delivery_tag)
            if event["subject"] in seen:
                print(f"duplicate {event['subject']} ignored", file=sys.stderr, flush=True)
                continue
            seen.add(event["subject"])
            data = event["data"]
            if event["type"] == "mambast.image.stylized.v1":
                print(f"stylized {event['subject']} {data['width']}x{data['height']} {data['outputRef']}", flush=True)
            else:
                code = data["errorCode"]
                print(f"failed {event['subject']} {code_names[code] if 0 <= code < len(code_names) else code} transient={data['transient']}: {data['message']}", flush=True)
            if args.expect is not None and len(seen) >= args.expect:
                break
    except KeyboardInterrupt:
        pass
    finally:
        channel.cancel()
        connection.close()
    print(f"outcomes={len(seen)} invalid={invalid}", flush=True)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
