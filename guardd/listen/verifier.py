"""A verifier for one owner's voice: openWakeWord 0.4.0's idea of a custom verifier, written here
with numpy alone. It is a logistic classifier over the same embedding window the wake model
scores, trained by `guardd tune` on the owner's takes (the windows where the wake word scored)
against negative speech's windows (the ones that scored on the same model). A wake model's run
that meets its threshold wakes only when the verifier also takes the window as the owner's
(probability at least ACCEPT). It changes no score: the wake model's stay stock openWakeWord's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    def save(self, path: Path) -> None:
        from guardd.durable import write_atomically
        import io

        out = io.BytesIO()
        np.savez(out, model=np.array(self.model), mean=self.mean, scale=self.scale, weights=self.weights,
                 bias=np.float64(self.bias))
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
