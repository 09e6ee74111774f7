"""Record a long run for the crash tests, noting when every step starts.

Run as ``python _record_child.py OUT SIDE KEYFRAME_INTERVAL``.  The child
records the run of :func:`build` into the session file ``OUT``; right after
the recorder's ``before_step`` hook for step ``s`` returns (so step ``s - 1``
is finished and handed to the recorder, and any commit that hook made is
done), it appends the line ``"s wall cpu\\n"`` to ``SIDE``: its
``time.monotonic()`` and its ``time.process_time()`` (CPU seconds used).
Each line is one unbuffered ``os.write`` on an ``O_APPEND`` file, so a
SIGKILL leaves every line written before it, whole.  The run is planned to
take far longer than any test waits; the tests kill it.
"""

from __future__ import annotations

import os
import sys
import time

from engine import Dataset, LayerSpec, NetworkSpec, Trainer, TrainingConfig
from sessions import Recorder
from sessions.datasets import load_dataset


def build() -> tuple[NetworkSpec, TrainingConfig, Dataset]:
    """Return the run the child records: Adam with dropout on 320 moons rows."""
    data = load_dataset("moons", n_samples=400, seed=0)
    spec = NetworkSpec(
        2,
        (
            LayerSpec(24, "tanh", dropout=0.2),
            LayerSpec(24, "relu", dropout=0.1),
            LayerSpec(1, "sigmoid"),
        ),
    )
    config = TrainingConfig(
        loss="bce", optimizer="adam", lr=0.01, epochs=5000, batch_size=16, seed=5
    )
    return spec, config, data


def main(argv: list[str]) -> int:
    """Record the run into ``argv[0]``, noting step starts in ``argv[1]``."""
    out, side, interval = argv[0], argv[1], int(argv[2])
    spec, config, data = build()
    trainer = Trainer(spec, config, data)
    rec = Recorder(out, trainer, keyframe_interval=interval)
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def before_step(t: Trainer) -> None:
        rec.before_step(t)
        line = f"{t.step_index} {time.monotonic():.6f} {time.process_time():.6f}\n"
        os.write(fd, line.encode())

    try:
        trainer.run(before_step=before_step)
    finally:
        rec.close()
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
