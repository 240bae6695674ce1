"""Verifiers: openWakeWord 0.4.0's idea of a custom verifier, written here with numpy alone. A
verifier is a logistic classifier over the same embedding window the wake model scores, trained
on windows where the wake word scored against negative speech's windows that scored on the same
model. It changes no score: the wake model's stay stock openWakeWord's. There are two kinds:

- the owner's, trained by `guardd tune` on the owner's takes: a run of the model that meets its
  threshold wakes only when the verifier also takes the window as the owner's (wake.verify);
- the ones guardd ships for its built-in models (verifiers/MODEL.npz beside this file), trained
  by `python -m benchmark.realears --write-verifiers` on the tuning part of the real-audio
  evaluation (neural and synthetic voices clean, in real noise, babble and rooms, against real
  speech, near misses and generated talk): a second way to wake, one frame at or above the
  verifier's own threshold (lower than the model's) that the verifier takes for the wake word
  (SecondLook). It only adds wakes: every wake of the model's own rule still happens. Only
  hey_jarvis has one (alexa's never earned its place); wake.shipped_verifiers (on by default)
  turns it on, and a config that loads alexa simply has no look for alexa.

The owner's accepts a window when its probability is at least ACCEPT; a shipped one from its own
level, chosen with its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardd.config.settings import WakeConfig
from guardd.errors import ModelError

ACCEPT = 0.5
L2 = 1.0  # weight decay: a few takes must not be learnt by heart
STEPS = 400
RATE = 0.1


@dataclass(frozen=True)
class Verifier:
    model: str
    mean: np.ndarray  # (d,) of the training windows, for standardising
    scale: np.ndarray  # (d,)
    weights: np.ndarray  # (d,)
    bias: float

    def probability(self, window: np.ndarray) -> float:
        x = (np.asarray(window, np.float64).reshape(-1) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias))))

    def accepts(self, window: np.ndarray) -> bool:
        return self.probability(window) >= ACCEPT

    def save(self, path: Path, **extra: float) -> None:
        from guardd.durable import write_atomically
        import io

        out = io.BytesIO()
        np.savez(out, model=np.array(self.model), mean=self.mean, scale=self.scale, weights=self.weights,
                 bias=np.float64(self.bias), **{k: np.float64(v) for k, v in extra.items()})
        write_atomically(path, out.getvalue())


def train(model: str, positives: np.ndarray, negatives: np.ndarray) -> Verifier:
    """Logistic regression by gradient descent, each class weighted to count as much as the other."""
    x = np.concatenate([positives.reshape(len(positives), -1), negatives.reshape(len(negatives), -1)]).astype(np.float64)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    weight = np.where(y == 1, 0.5 / max(len(positives), 1), 0.5 / max(len(negatives), 1))
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(STEPS):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = weight * (p - y)
        w -= RATE * (z.T @ g + L2 * w / len(y))
        b -= RATE * float(g.sum())
    return Verifier(model, mean, scale, w, b)


def load(path: Path) -> Verifier:
    try:
        with np.load(path) as z:
            return Verifier(str(z["model"]), z["mean"], z["scale"], z["weights"], float(z["bias"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"verifier {path}: cannot be read ({exc}); run guardd tune --write again") from None


@dataclass(frozen=True)
class SecondLook:
    """A shipped verifier, the score (under the model's threshold) from which it is asked, and
    the probability at which it says yes."""

    threshold: float
    verifier: Verifier
    accept: float = ACCEPT

    def accepts(self, window: np.ndarray) -> bool:
        return self.verifier.probability(window) >= self.accept


SHIPPED = Path(__file__).with_name("verifiers")


def write_shipped(path: Path, look: SecondLook) -> None:
    """A shipped second look, readable by everyone (the daemon reads it as its own user)."""
    look.verifier.save(path, threshold=look.threshold, accept=look.accept)
    path.chmod(0o644)


LOOKS_FOR = ("hey_jarvis",)  # the built-in models with a look (alexa's never earned one: docs/ears.md)


def shipped(models: tuple[str, ...]) -> dict[str, SecondLook]:
    """The second looks guardd ships, for those of the built-in `models` that have one
    (LOOKS_FOR); ModelError when one of them is missing or cannot be read."""
    found = {}
    for model in (m for m in models if m in LOOKS_FOR):
        path = SHIPPED / f"{model}.npz"
        try:
            with np.load(path) as z:
                threshold, accept = float(z["threshold"]), float(z["accept"])
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"shipped verifier {path}: cannot be read ({exc}); reinstall guardd") from None
        found[model] = SecondLook(threshold, load(path), accept)
    return found


def configured(wake: WakeConfig) -> dict[str, SecondLook]:
    """The second looks the config asks for: the shipped ones of its built-in models, unless
    wake.shipped_verifiers is false."""
    return shipped(wake.builtin) if wake.shipped_verifiers else {}


def path_for(state_dir: Path, model: str) -> Path:
    """Where `guardd tune --write` keeps a model's verifier: in the state directory."""
    return state_dir / "verifiers" / f"{model}.npz"


def load_all(state_dir: Path, models: tuple[str, ...]) -> dict[str, Verifier]:
    """The verifiers of `models` (wake.verify); ModelError names a missing or bad one."""
    found = {}
    for model in models:
        path = path_for(state_dir, model)
        if not path.is_file():
            raise ModelError(f"wake.verify names {model}, but {path} does not exist: run guardd tune "
                             f"--write, or take {model} out of wake.verify")
        found[model] = load(path)
        if found[model].model != model:
            raise ModelError(f"verifier {path} is for {found[model].model}, not {model}")
    return found
