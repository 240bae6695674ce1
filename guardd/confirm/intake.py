"""Taking a request in: checked against the owner's destinations, the payload copied into the
outbox (never a path the client gave), and the `request` record written before anything waits.
The id is r<seq of that record>; the payload is spooled under a temporary name until it is known.
Its announcement is made then, from the payload in hand.

Home Assistant's links (home_assistant_link) take only guardd's own kept utterances: what
arrives there starts a pipeline run as if the wake word had been heard, so a local program may
not send to them (`reserved`), whatever it calls its bytes.
"""

from __future__ import annotations

import errno
from pathlib import Path

from guardd.audioformat import PCM_TYPE
from guardd.config.settings import ESPHOME, WYOMING, Config
from guardd.confirm.outbox import Caller, Outbox, Reply, Request
from guardd.errors import Refused
from guardd.journal import Recorder
from guardd.speak.sentence import announcement

CONTENT_TYPES = {"message": "text/plain; charset=utf-8", "upload": "application/octet-stream"}

HOME_ASSISTANT_LINKS = frozenset({WYOMING, ESPHOME})  # destinations that are a link to Home Assistant's voice pipeline

# Why a payload could not be copied in, by errno: the refusal's code. Anything else: spool_failed.
SPOOL_ERRORS = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EFBIG: "too_large"}


def home_assistant_link(destination: str) -> bool:
    """Whether `destination` names a link to Home Assistant's voice pipeline (the Wyoming
    satellite link, the ESPHome API), where only kept utterances may go."""
    return destination in HOME_ASSISTANT_LINKS


def refuse_at_links(destination: str, kind: str, content_type: str | None, kept: bool) -> None:
    """Refused unless a request to a Home Assistant link is guardd's own kept utterance (and,
    for the Wyoming link, bare samples: what its audio chunks carry)."""
    if home_assistant_link(destination) and not kept:
        raise Refused("reserved", f"{destination} is Home Assistant's voice pipeline: only guardd's own "
                                  "recordings after a wake word go there, never a local program's; "
                                  "name another destination")
    if destination == WYOMING and (kind != "upload" or content_type != PCM_TYPE):
        raise Refused("wrong_kind", f"the {destination} destination takes only uploads of {PCM_TYPE}")


def copy_in(config: Config, outbox: Outbox, record: Recorder, kind: str, destination: str, payload: bytes,
            caller: Caller, *, queue_full: bool) -> tuple[str, str, Path, str]:
    """(request id, destination name, spooled path, SHA-256), or Refused saying why not."""
    dest = config.destination(destination)
    if dest is None:
        names = ", ".join(d.name for d in config.destinations) or "none are configured"
        raise Refused("unknown_destination", f"no destination named {destination!r} (configured: {names})")
    if len(payload) > dest.max_bytes:
        raise Refused("too_large", f"{len(payload)} bytes is over {dest.name}'s max_bytes of {dest.max_bytes}")
    if queue_full:
        raise Refused("busy", "another request is being confirmed and the queue is full; try again later")
    incoming = outbox.incoming_name()  # the id comes from the request record's seq
    try:
        spool, digest = outbox.spool(incoming, payload)
    except OSError as exc:
        code = SPOOL_ERRORS.get(exc.errno or 0, "spool_failed")
        raise Refused(code, f"cannot copy the {len(payload)}-byte payload into the outbox: "
                            f"{exc.strerror or exc}") from None
    seq = record(
        "request", id=lambda seq: f"r{seq}", kind=kind, destination=dest.name, sha256=digest,
        bytes=len(payload), **caller.fields(),
    )
    if seq is None:
        outbox.discard(incoming)
        raise Refused("log_unavailable", "the audit log cannot be written, so nothing can be sent")
    request_id = f"r{seq}"
    try:
        spool = outbox.claim(incoming, request_id)
    except OSError as exc:
        outbox.discard(incoming)
        record("decision", id=request_id, decision="denied", reason="spool_failed")
        raise Refused("spool_failed", f"cannot name the spooled payload {request_id}: "
                                      f"{exc.strerror or exc}") from None
    return request_id, dest.name, spool, digest


def take_in(config: Config, outbox: Outbox, record: Recorder, kind: str, destination: str, payload: bytes,
            caller: Caller, *, queue_full: bool, reply: Reply | None, client: int | None,
            content_type: str | None, kept: bool, now: float) -> Request:
    """The request, copied in and logged; or Refused, logged as `refused`. `kept`: the payload
    is guardd's own kept utterance (after a wake word), not a client's bytes."""
    try:
        refuse_at_links(destination, kind, content_type, kept)
        request_id, dest_name, spool, digest = copy_in(
            config, outbox, record, kind, destination, payload, caller, queue_full=queue_full)
    except Refused as exc:
        record("refused", kind=kind, destination=destination[:64], bytes=len(payload), code=exc.code,
               **caller.fields())
        raise
    dest = config.destination(dest_name)
    assert dest is not None
    content_type = content_type or CONTENT_TYPES[kind]
    said = announcement(request_id, kind, dest.spoken_name, payload, spool, digest, config.announce, content_type,
                        kept)
    return Request(request_id, kind, dest_name, digest, len(payload), content_type, spool, caller, reply,
                   client, now, said)
