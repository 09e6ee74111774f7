"""Train the benchmark nets in PyTorch, in a worker process of its own.

PyTorch runs in a separate process so that its OpenMP thread pool and NumPy's
OpenBLAS pool never spin against each other on the same few CPUs, and so that
the engine's process never loads torch at all.  The worker is started once and
then asked for one timed run at a time, which keeps the rounds interleaved.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

__all__ = ["TorchWorker"]


class TorchWorker:
    """A PyTorch process that trains the jobs it is given, on request."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()
        child.close()

    def _ask(self, *request: Any) -> Any:
        self._conn.send(request)
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"the PyTorch worker failed:\n{value}")
        return value

    def info(self) -> dict[str, Any]:
        """Return torch's version, default thread counts and thread pools."""
        return self._ask("info")

    def prepare(self, job: dict[str, Any]) -> None:
        """Hand over one net's job (see ``bench_nets.torch_job``)."""
        self._ask("prepare", job)

    def run(self, key: str, threads: int | None) -> tuple[float, int]:
        """Return (seconds, steps) of one run; None threads keeps torch's default."""
        return self._ask("run", key, threads)

    def check(self, key: str, n_steps: int = 200) -> float:
        """Return the largest relative loss difference from the engine (not timed)."""
        return self._ask("check", key, n_steps)

    def close(self) -> None:
        """Stop the worker."""
        if self._proc.is_alive():
            self._conn.send(("stop",))
            self._proc.join(timeout=10)
        self._conn.close()


# -- the worker side ----------------------------------------------------------


@dataclass
class _Run:
    """One net prepared in torch: tensors, batches and the model's recipe."""

    job: dict[str, Any]
    X: Any
    y: Any
    batches: list[Any]

    def model(self) -> tuple[Any, Any, Any]:
        """Return a float64 model holding the engine's initial weights, loss, SGD."""
        import torch

        acts = self.job["activations"]
        modules: list[torch.nn.Module] = []
        for i, (p, act) in enumerate(zip(self.job["initial"], acts, strict=True)):
            n_in, n_out = p["W"].shape
            linear = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
            with torch.no_grad():
                # Torch keeps the weight as (n_out, n_in); the engine as (n_in, n_out).
                linear.weight.copy_(torch.from_numpy(p["W"].T.copy()))
                linear.bias.copy_(torch.from_numpy(p["b"].copy()))
            modules.append(linear)
            if i < len(acts) - 1:
                modules.append(torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU())
        # NOTE: the output sigmoid / softmax is fused into the loss, as the engine
        # fuses it (loss from the logits z, dz = y_hat - y).
        if self.job["loss"] == "binary_cross_entropy":
            loss_fn: torch.nn.Module = torch.nn.BCEWithLogitsLoss()
        else:
            loss_fn = torch.nn.CrossEntropyLoss()
        model = torch.nn.Sequential(*modules)
        opt = torch.optim.SGD(model.parameters(), lr=self.job["lr"])
        return model, loss_fn, opt


def _prepare(job: dict[str, Any]) -> _Run:
    import torch

    X = torch.from_numpy(np.ascontiguousarray(job["X"]))
    if job["loss"] == "binary_cross_entropy":
        y = torch.from_numpy(np.ascontiguousarray(job["y"]))
    else:
        y = torch.from_numpy(job["y"].argmax(axis=1).astype(np.int64))
    batches = [None if b is None else torch.from_numpy(b) for b in job["batches"]]
    return _Run(job, X, y, batches)


def _train(run: _Run, threads: int | None, default: int) -> tuple[float, int]:
    """Time a plain loop: zero_grad, forward, loss, backward, step."""
    import torch

    torch.set_num_threads(default if threads is None else threads)
    X, y = run.X, run.y
    t0 = time.perf_counter()
    model, loss_fn, opt = run.model()
    for idx in run.batches:
        opt.zero_grad()
        if idx is None:
            loss = loss_fn(model(X), y)
        else:
            loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return seconds, len(run.batches)


def _check(run: _Run, n_steps: int) -> float:
    model, loss_fn, opt = run.model()
    worst = 0.0
    for step, idx in enumerate(run.batches[:n_steps]):
        opt.zero_grad()
        if idx is None:
            loss = loss_fn(model(run.X), run.y)
        else:
            loss = loss_fn(model(run.X[idx]), run.y[idx])
        loss.backward()
        opt.step()
        ours = run.job["engine_losses"][step]
        worst = max(worst, abs(loss.item() - ours) / abs(ours))
    return worst


def _info(default: int) -> dict[str, Any]:
    import torch
    from threadpoolctl import threadpool_info

    return {
        "torch": torch.__version__,
        "threads": default,
        "interop_threads": torch.get_num_interop_threads(),
        "pools": threadpool_info(),
    }


def _serve(conn: Connection) -> None:
    import traceback

    import torch

    default = torch.get_num_threads()
    runs: dict[str, _Run] = {}
    while True:
        request = conn.recv()
        what = request[0]
        if what == "stop":
            return
        try:
            if what == "info":
                value: Any = _info(default)
            elif what == "prepare":
                job = request[1]
                runs[job["key"]] = _prepare(job)
                value = None
            elif what == "run":
                value = _train(runs[request[1]], request[2], default)
            elif what == "check":
                value = _check(runs[request[1]], request[2])
            else:
                raise ValueError(f"unknown request {what!r}")
        except Exception:  # noqa: BLE001 - sent back to the parent, which raises
            conn.send((False, traceback.format_exc()))
        else:
            conn.send((True, value))
