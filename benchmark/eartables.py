"""docs/ears.md's tables from benchmark.realears' report: recall by condition, false wakes an
hour by language group and on music with their 95 % intervals, and near misses, held out."""

from __future__ import annotations

from typing import Any

CONDITIONS = ("clean", "noise20", "noise10", "noise5", "babble20", "babble10", "babble5", "room", "room_babble10")
GROUPS = ("english", "germanic", "romance", "slavic", "other")


def _pct(text: str) -> str:
    """"w/n (p %)" -> "p % (w/n)"."""
    counts, _, pct = text.partition(" (")
    return f"{pct.rstrip(')')} ({counts})"


def recall_table(report: dict[str, Any], family: str, part: str = "held_out") -> str:
    head = "| rule | " + " | ".join(CONDITIONS) + " |\n|---|" + "---|" * len(CONDITIONS) + "\n"
    rows = []
    for name, judged in report["rules"].items():
        recall = judged[part]["recall"]
        cells = [_pct(recall[f"{family} {c}"]) if f"{family} {c}" in recall else "" for c in CONDITIONS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def _rate(r: dict[str, Any]) -> str:
    lo, hi = r["interval_95"]
    return f"{r['per_hour']:.2f} [{lo:.2f}, {hi:.2f}] ({r['wakes']} in {r['hours']} h)"


def false_wake_table(report: dict[str, Any], part: str = "held_out_false_wakes") -> str:
    keys = [f"speech {g}" for g in GROUPS] + ["speech, all", "music"]
    head = "| rule | " + " | ".join(k.replace("speech ", "") for k in keys) + " |\n|---|" + "---|" * len(keys) + "\n"
    rows = [f"| {name} | " + " | ".join(_rate(j[part][k]) if k in j[part] else "" for k in keys) + " |"
            for name, j in report["rules"].items()]
    return head + "\n".join(rows) + "\n"


def near_miss_table(report: dict[str, Any], rules: list[str]) -> str:
    names = [r for r in report["rules"] if any(r.startswith(p) for p in rules)]
    keys = sorted(report["rules"][names[0]]["held_out_detail"]["near_misses"])
    head = "| near miss (held out) | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    rows = []
    for k in keys:
        cells = ["{}/{}".format(*report["rules"][n]["held_out_detail"]["near_misses"][k]) for n in names]
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def headline_table(report: dict[str, Any]) -> str:
    """One row a rule: false wakes an hour on all held-out speech, on it as recorded, on music;
    near-miss wakes; recall over both models and all voices, clean, 10 dB noise and babble, room."""
    conditions = ("clean", "noise20", "noise10", "noise5", "babble20", "babble10", "babble5", "room", "room_babble10")
    head = ("| rule | false wakes/h | as recorded | music | near misses | " + " | ".join(conditions)
            + " |\n|---|" + "---|" * (4 + len(conditions)) + "\n")
    rows = []
    for name, j in report["rules"].items():
        fa = j["held_out_false_wakes"]
        cells = [f"{fa['speech, all']['per_hour']:.1f}", f"{fa['speech, all, as recorded']['per_hour']:.1f}",
                 f"{fa['music']['per_hour']:.2f}", j["held_out"]["near_miss_wakes"].split("/")[0]]
        cells += [j["held_out"]["recall"][c].split(" (")[1].rstrip(")") for c in conditions]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def markdown(report: dict[str, Any]) -> str:
    return "\n".join([
        "### Held out, both models (false wakes an hour; near-miss takes woken; recall)\n", headline_table(report),
        "### Recall, held out: neural voices (Piper joe, Kokoro)\n", recall_table(report, "neural"),
        "### Recall, held out: espeak-ng, flite, festival\n", recall_table(report, "classic"),
        "### False wakes an hour, held out (both models), 95 % interval\n", false_wake_table(report),
        "### Near misses, held out\n",
        near_miss_table(report, ["**default", "the same without", "recall first", "stock", "old default"]),
    ])
