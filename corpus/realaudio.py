"""Real recordings for the ears (shared/audio's README lists them): what each file is (speech,
music, noise, a near miss), its language group, and whether it is in the tuning part or held out.

The split is by SOURCE (a recording project: a Debian package, or one of its voice casts, a
precise-en word), fixed here in SPLIT before any figure was looked at, so that no speaker,
studio or recording session is on both sides. Debian's packages are fetched once by
shared/audio/get-debian-audio.sh into the cache (about 1.2 GB; the network reaches Debian's
archive); guardd never reads any of this at run time.
"""

from __future__ import annotations

import json
import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

def _shared() -> Path:
    """shared/audio: $GUARDD_SHARED_AUDIO, else ../shared/audio beside the repository (as CI
    lays it), else the workplace's."""
    import os

    if os.environ.get("GUARDD_SHARED_AUDIO"):
        return Path(os.environ["GUARDD_SHARED_AUDIO"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "audio"
    return beside if beside.is_dir() else Path("/work/shared/audio")


SHARED = _shared()
FETCH = SHARED / "get-debian-audio.sh"
PRECISE = SHARED / "real-speech" / "precise-en"
FSDD = SHARED / "real-speech" / "fsdd"
HOUSEHOLD = SHARED / "noise" / "household"

# Language groups: every language heard, by ISO 639-1 code.
GROUPS = {
    "english": ("en",),
    "germanic": ("de", "nl", "da", "nb", "nn", "nds", "sv", "is", "af"),
    "romance": ("fr", "es", "it", "ca", "pt", "ro", "gl", "oc", "eo"),
    "slavic": ("cs", "pl", "ru", "uk", "be", "sk", "sl", "bg", "hr", "sr", "mk"),
}
OTHER = "other"  # Greek, Hebrew, Arabic, Hungarian, Lithuanian, Malayalam, Japanese, ...

# The split, decided before looking at any result: source -> half. A source is named as
# source() names it. Held out: most of the hours and every language group (the report's
# figures); tuning: enough of each group to choose on.
SPLIT = {
    # speech
    "tuxpaint-stamps-default": "held-out",  # descriptions read in ~20 languages
    "hedgewars-data:english": "held-out",  # voice acting, the English casts
    "hedgewars-data:other": "tune",  # its Polish, Russian, Ukrainian, Spanish casts
    "megaglest-data": "held-out",  # voice acting (English)
    "kajongg": "held-out",  # tile names, four English and four German voices
    "klettres-data": "tune",  # letters and syllables, ~20 languages
    "ktuberling-data": "tune",  # words, ~20 languages
    "qabcs-data": "held-out",  # alphabet words, 7 languages
    "precise-en:not-wake-words": "held-out",  # Mycroft's community, English and Spanish
    "fsdd": "tune",  # six people saying digits
    # music and sounds
    "wesnoth-1.16-music": "held-out",
    "hyperrogue-music": "tune",
    "sonic-pi-samples": "held-out",
    "hedgewars-data:music": "tune",
    "megaglest-data:music": "held-out",
    "bucklespring-data": "tune",
    # household noise (mixed under the wake words): by file
    "household:0": "tune",
    "household:1": "held-out",
}

# Each speech source's licence, from its Debian package's copyright file (COPYRIGHT.debian beside
# the converted files) or shared/audio's README and licenses/. The evaluation reads them all; what
# guardd ships derived from them (guardd/listen/real_negatives.npz: scores and embedding windows)
# keeps only SHIPPABLE sources, under CC BY-SA 4.0 (guardd/listen/LICENSES.md).
LICENCES = {
    "tuxpaint-stamps-default": "GPL-2",
    "hedgewars-data:english": "GFDL-1.3",  # share/hedgewars/Data/Sounds/*
    "hedgewars-data:other": "GFDL-1.3",
    "megaglest-data": "CC-BY-SA-3.0",  # the Glest and MegaGlest teams
    "kajongg": "GPL-2+",
    "klettres-data": "GPL-2+",
    "ktuberling-data": "GPL-2+",
    "qabcs-data": "GPL-3+",
    "precise-en:not-wake-words": "public-domain",  # each contributor's waiver in precise-en/licenses/
    "fsdd": "CC-BY-SA-4.0",  # the Free Spoken Digit Dataset's contributors
    **{f"precise-en:{w}": "public-domain" for w in ("amelia", "athena", "computer", "heychatterbox", "heycomputer")},
}
# Licences whose derived data may ship beside Apache-2.0 code: in the public domain, or
# ShareAlike with the file itself under CC BY-SA 4.0 (3.0 adaptations may take 4.0).
SHIPPABLE = ("public-domain", "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0")


# Near misses said by real people (precise-en): other wake words, some close to ours.
NEAR_MISS_WORDS = ("amelia", "athena", "computer", "heychatterbox", "heycomputer")
NEAR_MISS_SPLIT = {"heychatterbox": "held-out", "heycomputer": "held-out", "amelia": "tune", "athena": "tune",
                   "computer": "held-out"}


@dataclass(frozen=True)
class Recording:
    path: Path
    kind: str  # "speech", "music", "noise" or "near_miss"
    source: str  # a key of SPLIT (or precise-en:WORD for a near miss)
    language: str  # ISO 639-1, "" for music and noise
    half: str  # "tune" or "held-out"

    @property
    def group(self) -> str:
        return group_of(self.language)


def group_of(language: str) -> str:
    return next((g for g, codes in GROUPS.items() if language in codes), OTHER if language else "")


def fetch(cache: Path, say: Callable[[str], None] = lambda m: None) -> Path:
    """The converted Debian recordings (OUT/wav16/PACKAGE/), fetched on first use."""
    root = cache / "real-audio"
    if not (root / "wav16" / "wesnoth-1.16-music").is_dir():
        say(f"ears: fetching real speech and music from Debian's archive into {root} (about 10 minutes)")
        subprocess.run(["bash", str(FETCH), str(root)], check=True)
    return root / "wav16"


_LANG = re.compile(r"(?:^|_)([a-z]{2,3})(?:_[A-Z]{2})?(?:_|$)")
_HEDGEWARS_CAST = {"Default_pl": "pl", "Russian_pl": "pl", "Default_ru": "ru", "Default_uk": "uk",
                   "Default_es": "es", "Russian": "ru"}


def classify(package: str, name: str) -> tuple[str, str, str] | None:
    """(kind, source, language) of one converted file of a Debian package; None to leave out."""
    stem = name.rsplit(".", 1)[0]
    if package in ("wesnoth-1.16-music", "hyperrogue-music", "sonic-pi-samples", "bucklespring-data"):
        return "music", package, ""
    if package == "hedgewars-data":
        if "_Music_" in stem:
            return "music", "hedgewars-data:music", ""
        cast = re.search(r"_voices_([A-Za-z]+(?:_[a-z]{2})?)_", stem)
        if cast is None:
            return None  # sound effects
        language = _HEDGEWARS_CAST.get(cast.group(1), "en")
        return "speech", f"hedgewars-data:{'english' if language == 'en' else 'other'}", language
    if package == "megaglest-data":
        if "_music" in stem.lower() or "_menu_" in stem:
            return "music", "megaglest-data:music", ""
        return "speech", package, "en"
    if package == "kajongg":
        return "speech", package, "de" if "_voices_de_" in stem else "en"
    if package == "tuxpaint-stamps-default":
        found = re.search(r"_desc_([a-z]{2,3})(?:_[A-Za-z]+)?$", stem) or re.search(r"_desc$", stem)
        if found is None:
            return None  # sound effects of the stamps, not speech
        return "speech", package, found.group(1) if found.groups() else "en"
    prefix = {"klettres-data": "usr_share_klettres_", "ktuberling-data": "usr_share_ktuberling_sounds_",
              "qabcs-data": "usr_share_qabcs_abcs_"}.get(package)
    if prefix is None or not stem.startswith(prefix):
        return None
    rest = stem[len(prefix):]
    if rest.startswith("all_"):
        return None  # qabcs' animal noises
    language = rest.split("_")[0]
    return ("speech", package, language) if re.fullmatch(r"[a-z]{2,3}", language) else None


def recordings(wav16: Path) -> list[Recording]:
    """Every real recording this evaluation uses, each with its kind, source, language and half."""
    found = []
    for package in sorted(p.name for p in wav16.iterdir() if p.is_dir()):
        for path in sorted((wav16 / package).glob("*.wav")):
            what = classify(package, path.name)
            if what is not None and what[1] in SPLIT:
                found.append(Recording(path, what[0], what[1], what[2], SPLIT[what[1]]))
    for language in ("en", "es"):
        for path in sorted((PRECISE / "not-wake-words" / language).glob("*.flac")):
            found.append(Recording(path, "speech", "precise-en:not-wake-words", language,
                                   SPLIT["precise-en:not-wake-words"]))
    for word in NEAR_MISS_WORDS:
        for path in sorted((PRECISE / word).glob("*/*.flac")):
            language = path.parent.name.split("-")[0]
            found.append(Recording(path, "near_miss", f"precise-en:{word}", language, NEAR_MISS_SPLIT[word]))
    found += [Recording(p, "speech", "fsdd", "en", SPLIT["fsdd"]) for p in sorted(FSDD.glob("*.flac"))]
    for i, path in enumerate(sorted(HOUSEHOLD.glob("*.flac"))):
        found.append(Recording(path, "noise", f"household:{i % 2}", "", SPLIT[f"household:{i % 2}"]))
    return found


def read(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono int16 (FLAC through sox, which the corpus needs anyway)."""
    if path.suffix == ".wav":
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2):
                return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    raw = subprocess.run(["sox", "-q", str(path), "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed",
                          "-L", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2")


def seconds(path: Path) -> float:
    if path.suffix == ".wav":
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    out = subprocess.run(["soxi", "-D", str(path)], check=True, capture_output=True, text=True).stdout
    return float(out)


STREAMS_VERSION = "real-streams-1"
STREAM_S = 600.0  # seconds of audio per stream file
GAP_S = 0.3  # quiet between two recordings in a stream


@dataclass(frozen=True)
class Stream:
    """Recordings of one source and language group one after another, as a talker or a TV goes
    on: many of them are single words, too short for a detector started afresh on each."""

    path: Path
    kind: str
    source: str
    group: str
    half: str
    variant: str  # "as recorded", or "across a room" (the half's simulated rooms, 6 dB quieter)
    seconds: float


def streams(cache: Path, recs: list[Recording], irs: np.ndarray | None = None,
            say: Callable[[str], None] = lambda m: None) -> list[Stream]:
    """The speech and music of `recs` as streams of at most STREAM_S seconds, written once; with
    `irs` (the simulated rooms, even ones the tuning part's, odd ones held out) each also
    across a room."""
    directory = cache / STREAMS_VERSION
    directory.mkdir(parents=True, exist_ok=True)
    keys = sorted({(r.kind, r.source, r.group, r.half) for r in recs if r.kind in ("speech", "music")})
    found = []
    for kind, source, group, half in keys:
        members = [r for r in recs if (r.kind, r.source, r.group, r.half) == (kind, source, group, half)]
        stem = f"{kind}_{source.replace(':', '-')}_{group or 'none'}"
        index = directory / f"{stem}.json"
        if not index.is_file():
            say(f"ears: streams of {stem}")
            written = _write_streams(directory, stem, members, irs, half)
            tmp = index.with_suffix(".tmp")
            tmp.write_text(json.dumps(written))
            tmp.replace(index)
        for name, variant, secs in json.loads(index.read_text()):
            found.append(Stream(directory / name, kind, source, group, half, variant, secs))
    return found


def _write_streams(directory: Path, stem: str, members: list[Recording], irs: np.ndarray | None,
                   half: str) -> list[tuple[str, str, float]]:
    from corpus.rooms import in_room
    from corpus.speech import write_wav

    gap = np.zeros(int(GAP_S * 16000))
    chunks: list[list[np.ndarray]] = [[]]
    length = 0
    for r in members:
        x = read(r.path).astype(np.float64) / 32768.0
        if length and length + len(x) > STREAM_S * 16000:
            chunks.append([])
            length = 0
        chunks[-1] += [x, gap]
        length += len(x) + len(gap)
    written = []
    rng = np.random.default_rng(len(stem))
    rooms = None if irs is None else (irs[0::2] if half == "tune" else irs[1::2])
    for i, parts in enumerate(chunks):
        x = np.concatenate([gap, *parts])
        variants = [("as recorded", x)]
        if rooms is not None:
            y = in_room(x, rooms[i % len(rooms)])
            variants.append(("across a room", y / (np.abs(y).max() or 1.0) * np.abs(x).max() * 0.5))
        for variant, y in variants:
            name = f"{stem}_{i}_{'room' if variant != 'as recorded' else 'rec'}.wav"
            write_wav(directory / name, np.clip(y + rng.standard_normal(len(y)) * 10 ** (-60 / 20), -1, 1))
            written.append((name, variant, len(y) / 16000))
    return written
