from __future__ import annotations

import io
import json
import logging

import structlog

from bridge.logging import configure_logging, get_logger, register_secrets


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_terminal_with_bound_ids() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "auto", stream=stream)
    with structlog.contextvars.bound_contextvars(event_id=17, command_id=3):
        get_logger("t").info("outbox.retry_scheduled", attempt=3, wait_s=12.5)
    (line,) = _lines(stream)
    assert line["event"] == "outbox.retry_scheduled"
    assert line["event_id"] == 17
    assert line["command_id"] == 3
    assert line["attempt"] == 3
    assert line["level"] == "info"


def test_library_logs_go_through_the_same_pipeline() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 123)
    (line,) = _lines(stream)
    assert line["event"] == "Started server process [123]"
    assert line["logger"] == "uvicorn.error"


def test_secrets_api_keys_and_signatures_are_never_logged() -> None:
    secret, api_key, signature = "whsec_s3cr3t_value", "fp-api-key-123456", "t=1,v1=deadbeefcafe"
    register_secrets([secret, api_key])
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    log = get_logger("t")
    log.info("webhook.rejected", signature=signature, headers={"Stripe-Signature": signature})
    log.info("client.request", authorization="Basic abc", api_key=api_key)
    log.warning("config.echo", detail=f"using secret {secret} and key {api_key}")
    logging.getLogger("httpx").warning("sent %s", api_key)
    output = stream.getvalue()
    for value in (secret, api_key, signature, "Basic abc"):
        assert value not in output
    assert output.count("[redacted]") >= 5


def test_bound_ids_do_not_leak_past_their_block() -> None:
    from bridge.logging import bound

    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")
    with bound(command_id=7, key="stripe:invoice:in_1"):
        log.info("delivery.done")
    log.info("stage.mapped")
    inside, after = _lines(stream)
    assert inside["command_id"] == 7
    assert inside["key"] == "stripe:invoice:in_1"
    assert "command_id" not in after
    assert "key" not in after
