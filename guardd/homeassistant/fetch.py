"""A sound Home Assistant asks guardd to fetch from it (an announcement over the ESPHome API
comes as a URL): fetched on a thread of its own, only from the connected Home Assistant's own
address, and handed on as the shared meanings of a sound (said.py) while it arrives, so it plays
as it comes and the rules bound it like any other (playing.py, sound.py).

What guardd will fetch, and nothing else:
- `http` only, to the PEER's address: the connection is made to the address Home Assistant's
  link comes from, never to a name or address in the URL (no DNS, no other host; the URL gives
  only the port and the path, and its host goes as the Host header);
- no proxy (http.client, which reads no proxy settings), no redirect (a 3xx is refused);
- a WAV file of 16-bit PCM (what sound.py plays: 8 to 48 kHz, mono or stereo), at most
  MAX_BYTES, handed on as it comes; or MP3 (Home Assistant makes its text-to-speech MP3 until a
  voice run has asked it for WAV) or FLAC, told by their first bytes, at most COMPRESSED_BYTES,
  read whole and then decoded by soundfile (libsndfile, in guardd[esphome]) block by block, on
  this thread; every read within READ_S and the whole within FETCH_S;
- anything else is Unplayable, said before a sample plays. libsndfile reads some twenty formats
  and Ogg Vorbis among them, whose decoder sizes a stack allocation from the file's own header
  (203 bytes crash the process): only the formats named here ever reach it.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import struct
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator
from urllib.parse import urlsplit

from guardd.homeassistant.said import BadAudio, Meaning, SoundChunk, SoundEnd, SoundStart, Unplayable
from guardd.homeassistant.sound import MAX_S, BadSound, checked_format

if TYPE_CHECKING:
    import http.client

log = logging.getLogger(__name__)

READ_S = 10.0  # one read of the answer
FETCH_S = MAX_S + 30.0  # the whole answer: a text-to-speech that streams speaks about as fast as it plays
MAX_BYTES = int(MAX_S * 48000) * 2 * 2 + 4096  # the longest sound guardd plays, at its widest format
COMPRESSED_BYTES = 1 << 20  # a compressed sound is held whole to be decoded: a minute of MP3 at 128 kbit/s
PIECE = 8192  # bytes handed on at a time (a compressed sound's decoded blocks: frames)
WAV_FORMATS = (1, 0xFFFE)  # PCM, and WAVE_FORMAT_EXTENSIBLE (its subformat is checked too)
PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


class NotFetched(Exception):
    """The URL or the answer is not something guardd fetches or plays; the message says why."""


def target(url: str, peer_host: str) -> tuple[str, int, str, str]:
    """(address to connect to, port, path, Host header) for `url`, which must be http; the address
    is always `peer_host`. NotFetched otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise NotFetched(f"a URL that does not parse ({exc})") from None
    if parts.scheme != "http":
        raise NotFetched(f"a {parts.scheme or 'relative'} URL: guardd fetches only http from Home Assistant's own address")
    if not parts.hostname:
        raise NotFetched("a URL without a host")
    try:
        ipaddress.ip_address(peer_host)
    except ValueError:
        raise NotFetched(f"the peer's address {peer_host!r} is not an address") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return peer_host, port, path, parts.netloc


class WavReader:
    """A WAV file's header as its bytes come, then its samples: `feed` returns the meanings that
    the new bytes complete (the start once the header is read, then pieces of whole frames)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frame = 0  # bytes of one frame, once the format is known
        self._in_data = False
        self._left = 0  # bytes left in the data chunk (a streamed WAV may claim more than comes)

    def feed(self, data: bytes) -> list[Meaning]:
        self._buffer += data
        out: list[Meaning] = []
        if not self._in_data:
            start = self._header()
            if start is None:
                return out
            out.append(start)
        usable = min(len(self._buffer), self._left)
        usable -= usable % self._frame
        if usable:
            out.append(SoundChunk(bytes(self._buffer[:usable])))
            del self._buffer[:usable]
            self._left -= usable
        return out

    def _header(self) -> SoundStart | None:
        buf = self._buffer
        if len(buf) < 12:
            return None
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise NotFetched(f"not a WAV file (it begins {bytes(buf[:4])!r})")
        at, fmt = 12, None
        while True:
            if len(buf) < at + 8:
                if at > 4096:
                    raise NotFetched("a WAV header of over 4 KiB")
                return None
            chunk, size = bytes(buf[at:at + 4]), struct.unpack_from("<I", buf, at + 4)[0]
            if chunk == b"data":
                if fmt is None:
                    raise NotFetched("a WAV file whose samples come before their format")
                del buf[:at + 8]
                self._in_data, self._left = True, size
                return fmt
            if size > 4096 or at > 4096:
                raise NotFetched("a WAV header of over 4 KiB")
            if len(buf) < at + 8 + size:
                return None
            if chunk == b"fmt ":
                fmt = self._format(bytes(buf[at + 8:at + 8 + size]))
            at += 8 + size + (size & 1)

    def _format(self, body: bytes) -> SoundStart:
        if len(body) < 16:
            raise NotFetched("a WAV format chunk that is too short")
        tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
        if tag not in WAV_FORMATS or (tag == 0xFFFE and body[26:40] != PCM_GUID_TAIL):
            raise NotFetched(f"a WAV file of format {tag:#x}, not PCM samples")
        if bits != 16:
            raise NotFetched(f"a WAV file of {bits}-bit samples; guardd plays 16-bit")
        self._frame = 2 * max(channels, 1)
        return SoundStart(rate, 2, channels)


def compressed(head: bytes) -> bool:
    """Whether a sound's first 4 bytes begin MP3 (an ID3 tag, or a frame's sync) or FLAC."""
    return head[:3] == b"ID3" or head[:4] == b"fLaC" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


class CompressedReader:
    """An MP3 or FLAC sound (`compressed`), held whole (decoders need to seek), then decoded block
    by block as 16-bit samples: `finish` yields its start and its pieces, so each can wait its turn."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[Meaning]:
        self._data += data
        return []

    def finish(self) -> Iterator[Meaning]:
        try:
            import soundfile
        except (ImportError, OSError) as exc:  # (OSError: its libsndfile did not load)
            raise NotFetched(f"an MP3 or FLAC sound, and soundfile, which decodes them, is not installed "
                             f"({exc}): pip install 'guardd[esphome]'") from None
        try:
            with soundfile.SoundFile(io.BytesIO(bytes(self._data))) as sound:
                self._data = bytearray()
                try:  # before a block is decoded: a block is PIECE frames of every channel
                    rate, width, channels = checked_format(sound.samplerate, 2, sound.channels)
                except BadSound as exc:
                    raise NotFetched(f"{sound.format} {exc}") from None
                yield SoundStart(rate, width, channels)
                frames, most = 0, int(MAX_S * rate)  # (a megabyte of FLAC can hold hours of silence)
                while len(block := sound.read(PIECE, dtype="int16")):
                    frames += len(block)
                    if frames > most:
                        raise NotFetched(f"a sound of over {MAX_S:g} s")
                    yield SoundChunk(block.astype("<i2", copy=False).tobytes())
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise NotFetched(f"not a sound guardd can decode: {getattr(exc, 'error_string', exc)}") from None


class Fetch:
    """One sound fetched on its own thread; `offer(meaning)` hands each on (it may wait, within
    its own bound, and returns False when the sound must stop). `stop` ends it from any thread."""

    def __init__(self, url: str, peer_host: str, offer: Callable[[Meaning], bool], name: str = "guardd-fetch") -> None:
        self._url = url
        self._peer_host = peer_host
        self._offer = offer
        self._stopped = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.received = 0  # bytes of the answer's body
        self.started = False  # the sound's start was handed on: a failure after it is bad audio
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(2)
            except OSError:
                pass

    def _run(self) -> None:
        import http.client  # (here, not at the top: about 1 MB that only an announcement needs)

        try:
            self._fetch()
        except NotFetched as exc:
            self._offer(BadAudio(str(exc)) if self.started else Unplayable("an announcement", str(exc)))
        except (OSError, http.client.HTTPException) as exc:
            why = f"fetching it failed: {exc}"
            self._offer(BadAudio(why) if self.started else Unplayable("an announcement", why))
        finally:
            with self._lock:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def _fetch(self) -> None:
        """Fetch and hand on."""
        import http.client

        address, port, path, host = target(self._url, self._peer_host)
        deadline = time.monotonic() + FETCH_S
        conn = http.client.HTTPConnection(address, port, timeout=READ_S)
        with self._lock:
            self._conn = conn
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.putheader("Accept", "audio/wav, audio/x-wav, audio/mpeg, audio/flac")
        conn.endheaders()
        answer = conn.getresponse()
        if answer.status != 200:
            raise NotFetched(f"Home Assistant answered {answer.status} {answer.reason}"
                             + (" (a redirect, not followed)" if 300 <= answer.status < 400 else ""))
        reader: WavReader | CompressedReader | None = None
        limit = 0  # bytes of the answer's body: MAX_BYTES for a WAV, COMPRESSED_BYTES for the rest
        head = b""  # the first bytes, until there are enough to tell a WAV
        while not self._stopped.is_set():
            if time.monotonic() > deadline:
                raise NotFetched(f"the sound took over {FETCH_S:g} s to fetch")
            data = answer.read1(PIECE)
            if not data:
                break
            if reader is None:
                head += data
                if len(head) < 4:
                    continue
                wav = head.startswith(b"RIFF")
                if not wav and not compressed(head):
                    raise NotFetched(f"not a sound guardd can decode: WAV, MP3 or FLAC (it begins {head[:4]!r})")
                reader, limit = (WavReader(), MAX_BYTES) if wav else (CompressedReader(), COMPRESSED_BYTES)
                data, head = head, b""
            room = limit - self.received  # what is within the bound is handed on, however the bytes were cut
            self.received += len(data)
            if not self._hand_on(reader.feed(data[:room])):
                return
            if self.received > limit:
                raise NotFetched(f"a sound of over {limit} bytes")
        if self._stopped.is_set():
            return
        if reader is None and head:
            raise NotFetched(f"a sound of only {len(head)} bytes")
        if isinstance(reader, CompressedReader) and not self._hand_on(reader.finish()):
            return
        if not self.started:
            raise NotFetched("a sound without its samples")
        self._offer(SoundEnd("the fetched sound's end"))

    def _hand_on(self, meanings: Iterable[Meaning]) -> bool:
        """Offer each in turn; False when the sound must stop."""
        for meaning in meanings:
            if self._stopped.is_set():
                return False
            self.started = self.started or isinstance(meaning, SoundStart)
            if not self._offer(meaning):
                return False
        return True
