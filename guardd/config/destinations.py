"""Rules for the owner's destinations: which URLs are allowed, and where header secrets come from.

Promise 7: clients never pick a URL. Addresses live only in the owner's config; a client names a
destination. A URL must be https, or plain http to a loopback address (a local service on this
device). Credentials never sit in the URL or inline in the config: a header value is either a
plain string (for non-secrets such as X-Source) or read at load time from an environment variable
(`{env: NAME}`) or from a file that only the daemon's user can read (`{file: PATH}`).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import yaml

_TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: Any) -> str | None:
    """None when `url` is allowed as a destination, else what is wrong with it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.username or parts.password:
        return "must not carry credentials; put them in a header read from {env: ...} or {file: ...}"
    if not host:
        return f"has no host (got {url!r})"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback(host):
            return None
        return f"must be https, or http only to a loopback address such as 127.0.0.1 (got {url!r})"
    return f"must be an https:// URL (got {url!r})"


def read_secret_file(path: Path) -> str:
    """A secret from a file that only its owner can read; raises ValueError with the fix."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"secret file {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"secret file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ValueError(
            f"secret file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read secret file {path}: {exc}") from None


def read_secret(raw: Any) -> str | None:
    """The secret that `{env: NAME}` or `{file: PATH}` names (ValueError with the fix when it
    cannot be read), or None when `raw` is neither."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return None
    (kind, ref), = raw.items()
    if kind == "env" and isinstance(ref, str):
        if ref not in os.environ:
            raise ValueError(f"environment variable {ref} is not set")
        return os.environ[ref]
    if kind == "file" and isinstance(ref, str):
        return read_secret_file(Path(ref))
    return None


def _header_value(raw: Any) -> str:
    """A header's value: a plain string, or a secret from {env: NAME} or {file: PATH}, either
    with an optional `prefix` put before it (`prefix: "Bearer "` for a token file as Home
    Assistant gives it)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and 1 <= len(raw) <= 2:
        prefix = raw.get("prefix", "")
        refs = {k: v for k, v in raw.items() if k != "prefix"}
        if isinstance(prefix, str) and len(refs) == 1:
            secret = read_secret(refs)
            if secret is not None:
                return prefix + secret
    raise ValueError("must be a string, {env: VARIABLE} or {file: /path/readable/only/by/guardd} "
                     "(either with an optional prefix: \"Bearer \")")


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})


def _looks_secret(name: str, value: str) -> bool:
    scheme = value.split(" ", 1)[0].lower()
    return name.lower() in _SECRET_HEADERS or scheme in ("bearer", "basic", "token") or "token" in name.lower()


def load_headers(
    node: yaml.Node,
    key: str,
    loader: yaml.SafeLoader,
    problem: Callable[[yaml.Node, str, str], None],
    warn: Callable[[yaml.Node, str, str], None],
) -> tuple[tuple[str, str], ...]:
    """Parse a destination's headers mapping, resolving secrets; report each bad entry, and
    warn of a credential written inline (it would sit in a file others may read or copy)."""
    if not isinstance(node, yaml.MappingNode):
        problem(node, key, "must be a mapping of header names to values")
        return ()
    headers: list[tuple[str, str]] = []
    for name_node, value_node in node.value:
        name = name_node.value if isinstance(name_node, yaml.ScalarNode) else ""
        full = f"{key}.{name}"
        if not name or not set(name) <= _TOKEN_CHARS:
            problem(name_node, key, f"{name!r} is not a valid header name")
            continue
        if name.lower() in _FORBIDDEN_HEADERS:
            problem(name_node, full, "is set by guardd itself and cannot be configured")
            continue
        try:
            value = _header_value(loader.construct_object(value_node, deep=True))
        except (ValueError, yaml.YAMLError) as exc:
            problem(value_node, full, str(exc))
            continue
        if "\n" in value or "\r" in value:
            problem(value_node, full, "must be a single line")
            continue
        if isinstance(value_node, yaml.ScalarNode) and _looks_secret(name, value):
            warn(value_node, full, "a credential written inline; read it with {env: VARIABLE} or "
                 "{file: /path/readable/only/by/guardd} instead")
        headers.append((name, value))
    return tuple(headers)
