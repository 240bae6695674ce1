"""The ESPHome native API's messages, exactly as Home Assistant's own client defines them: the
protobuf module `api_pb2` that `aioesphomeapi` ships, with each message's type id and direction
read from its options (`api_options.proto`: `id`, `source`).

Importing the `aioesphomeapi` package would load its asyncio client, connection and model code
too (about 14 MB more here); guardd needs only the two generated modules, so they are loaded on
their own, under a private package name, from the installed package's folder. If the package is
already imported (a test that runs the real client beside the server), its own module is used.
Protobuf gives both the same message classes either way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from guardd.errors import GuarddError

PRIVATE = "_guardd_aioesphomeapi"
INSTALL = "pip install 'guardd[esphome]' (it brings aioesphomeapi and PyNaCl)"


class MissingApi(GuarddError, ImportError):
    """The ESPHome API definitions are not installed."""


def _load() -> tuple[types.ModuleType, types.ModuleType]:
    if "aioesphomeapi.api_pb2" in sys.modules:
        return sys.modules["aioesphomeapi.api_pb2"], sys.modules["aioesphomeapi.api_options_pb2"]
    if PRIVATE + ".api_pb2" not in sys.modules:
        spec = importlib.util.find_spec("aioesphomeapi")  # (finds it without running its __init__)
        if spec is None or spec.origin is None:
            raise MissingApi(f"the ESPHome link needs aioesphomeapi's API definitions: {INSTALL}")
        package = types.ModuleType(PRIVATE)
        package.__path__ = [os.path.dirname(spec.origin)]
        sys.modules[PRIVATE] = package
        module_spec = importlib.util.spec_from_file_location(f"{PRIVATE}.api_pb2",
                                                             os.path.join(package.__path__[0], "api_pb2.py"))
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    return sys.modules[PRIVATE + ".api_pb2"], sys.modules[PRIVATE + ".api_options_pb2"]


pb, _options = _load()
SOURCE_SERVER = _options.APISourceType.Value("SOURCE_SERVER")


@dataclass(frozen=True)
class Kind:
    """A message type: its class, its id on the wire, and whether a client may send it."""

    cls: type[Message]
    type_id: int
    from_client: bool


def _kinds() -> dict[int, Kind]:
    found = {}
    for descriptor in pb.DESCRIPTOR.message_types_by_name.values():
        options = descriptor.GetOptions()
        type_id = options.Extensions[_options.id]
        if type_id:
            found[type_id] = Kind(getattr(pb, descriptor.name), type_id,
                                  options.Extensions[_options.source] != SOURCE_SERVER)
    return found


BY_ID = _kinds()
ID_OF = {kind.cls: type_id for type_id, kind in BY_ID.items()}


class BadMessage(Exception):
    """A message the API does not let a client send, or whose bytes do not parse."""


def decode(type_id: int, payload: bytes) -> Message:
    kind = BY_ID.get(type_id)
    if kind is None:
        raise BadMessage(f"message type {type_id}, which the API does not define")
    if not kind.from_client:
        raise BadMessage(f"{kind.cls.__name__}, which only a device sends")
    try:
        return kind.cls.FromString(payload)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadMessage(f"a {kind.cls.__name__} that does not parse ({str(exc)[:80]})") from None


def encode(message: Message) -> tuple[int, bytes]:
    return ID_OF[type(message)], message.SerializeToString()


def make(name: str, **fields: Any) -> Message:
    """A message by its name in api.proto."""
    return getattr(pb, name)(**fields)
