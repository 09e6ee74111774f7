"""Run glassnet from a terminal: record, inspect and verify session files."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from engine import ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS
from engine import events as ev
from engine.config import TRAIN_METRICS, TrainingConfig
from engine.data import Dataset
from engine.errors import GlassnetError
from engine.network import LayerSpec, NetworkSpec
from engine.trainer import Trainer
from sessions import Session, record, verify
from sessions.csv_import import CsvOptions, import_csv
from sessions.datasets import DATASETS, TASK_DEFAULTS, load_dataset
from sessions.export import (
    array_field,
    array_file_name,
    find_event,
    metrics_file_name,
    notebook_file_name,
    write_array,
    write_metrics_csv,
    write_notebook,
)
from sessions.users import add_user, check_user_name, read_users, remove_user
from sessions.workspace import LIBRARY_DIR, USERS_DIR, ClassAccess, class_folder

__all__ = ["DEFAULT_LR", "build_run", "main"]

logger = logging.getLogger(__name__)

DEFAULT_LR = {
    "gd": 0.5,
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "rmsprop": 0.01,
    "adam": 0.01,
}
"""Learning rates that train the built-in datasets well with standardized inputs."""

DEMO = {"dataset": "iris", "epochs": 30, "seed": 0, "optimizer": "adam"}
"""The built-in demo run: a small network on the real Iris data."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``glassnet`` command and return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except GlassnetError as err:
        print(f"glassnet: {err}", file=sys.stderr)
        return 1
    except IndexError as err:
        print(f"glassnet: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (head, less) went away; that is not an error of ours.
        sys.stderr.close()
        return 0


# -- building a run from flags ---------------------------------------------


def build_run(args: argparse.Namespace) -> tuple[NetworkSpec, TrainingConfig, Dataset]:
    """Return the network, settings and data the flags describe, with defaults.

    Whatever is not given follows the dataset: its suggested hidden layers,
    the output activation and loss that fit its task, and a learning rate
    that suits the optimizer.
    """
    if args.csv:
        options = CsvOptions(
            target=args.target,
            task=args.task,
            delimiter=_delimiter(args.delimiter),
            header=args.header,
            test_fraction=args.test_fraction,
            standardize=not args.no_standardize,
            seed=args.seed,
            missing=args.missing or "error",
            drop_duplicates=args.drop_duplicates,
        )
        data, report = import_csv(Path(args.csv), options)
        for notice in report.notices:
            print(f"note: {notice}", file=sys.stderr)
        hidden: tuple[int, ...] = (16,)
        hidden_act = "relu"
    else:
        _refuse_csv_flags(args)
        name = args.dataset or "iris"
        data = load_dataset(
            name,
            test_fraction=args.test_fraction,
            standardize=not args.no_standardize,
            seed=args.seed,
            n_samples=args.n_samples,
            noise=args.noise,
        )
        info = DATASETS[name]
        hidden = info.hidden_sizes
        hidden_act = info.hidden_activation
    out_act, loss = TASK_DEFAULTS[data.task]
    if args.hidden is not None:
        hidden = _sizes(args.hidden)
    hidden_act = args.activation or hidden_act
    layers = [LayerSpec(n, hidden_act, args.init, dropout=args.dropout) for n in hidden]
    layers.append(
        LayerSpec(data.n_outputs, args.output_activation or out_act, args.init)
    )
    spec = NetworkSpec(data.n_features, tuple(layers))
    optimizer = args.optimizer
    batch = None if args.batch_size in (None, "full") else _whole(args.batch_size)
    if batch is None and args.batch_size is None and optimizer != "gd":
        batch = min(32, data.n_train)
    settings: dict[str, Any] = {
        "loss": args.loss or loss,
        "optimizer": optimizer,
        "lr": DEFAULT_LR[optimizer] if args.lr is None else args.lr,
        "epochs": args.epochs,
        "batch_size": batch,
        "seed": args.seed,
        "l2": args.l2,
        "train_metrics": args.train_metrics,
    }
    for key in ("momentum", "rho", "beta1", "beta2", "eps"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return spec, TrainingConfig(**settings), data


def _refuse_csv_flags(args: argparse.Namespace) -> None:
    """Refuse CSV-only flags given for a built-in dataset instead of ignoring them."""
    given = [
        flag
        for flag, value in (
            ("--target", args.target),
            ("--task", args.task),
            ("--delimiter", args.delimiter),
            ("--missing", args.missing),
            ("--drop-duplicates", args.drop_duplicates or None),
            ("--header" if args.header else "--no-header", args.header),
        )
        if value is not None
    ]
    if given:
        flag = given[0]
        what = {
            "--target": "built-in datasets have their own target",
            "--task": "built-in datasets have their own task",
        }.get(flag, "it sets how a CSV file is read")
        msg = (
            f"{flag} is for --csv; {what}. Remove {flag}, or train on a CSV file "
            "with --csv PATH."
        )
        raise GlassnetError(msg)


def _delimiter(text: str | None) -> str | None:
    """Return the delimiter of ``--delimiter``; the word ``tab`` means a tab."""
    if text is None:
        return None
    return "\t" if text.lower() in ("tab", "\\t") else text


def _cmd_record(args: argparse.Namespace) -> int:
    spec, config, data = build_run(args)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        msg = (
            f"{out} already exists; choose another --out, or add --overwrite to "
            "replace it."
        )
        raise GlassnetError(msg)
    # The recorder creates missing folders; say which, so a typo is noticed.
    created = _first_missing_folder(out)
    steps = Trainer(spec, config, data).total_steps
    bars: list[tqdm] = []

    def progress(trainer: Trainer) -> None:
        # The bar appears with the first step, after every check has passed.
        if not bars:
            bars.append(
                tqdm(total=steps, unit="step", disable=args.quiet, file=sys.stderr)
            )
        bar = bars[0]
        done = trainer.step_index
        if done - bar.n >= 50 or done == steps - 1:
            bar.update(done - bar.n)

    reason = record(
        spec,
        config,
        data,
        out,
        title=args.title or "",
        description=args.description or "",
        keyframe_interval=args.keyframe_interval,
        overwrite=args.overwrite,
        progress=progress,
    )
    if bars:
        bars[0].update(bars[0].total - bars[0].n if reason == "completed" else 0)
        bars[0].close()
    with Session(out) as session:
        print(_summary(session))
        if session.divergence is not None:
            print(f"\n{session.divergence.message}")
    made = ""
    if created == out.parent:
        made = f" (created the folder {created} for it)"
    elif created is not None:
        made = f" (created the folders {created} down to {out.parent} for it)"
    print(f"\nSaved {out}{made}. Inspect it with:")
    print(f"  glassnet info {out}")
    print(f"  glassnet events {out} --step 0")
    print(f"  glassnet verify {out}")
    return 0 if reason != "diverged" else 3


def _first_missing_folder(path: Path) -> Path | None:
    """Return the outermost folder above ``path`` that does not exist yet, if any."""
    missing = None
    for folder in path.parents:
        if folder.exists():
            break
        missing = folder
    return missing


def _cmd_demo(args: argparse.Namespace) -> int:
    ns = _parser().parse_args(
        [
            "record",
            "--dataset",
            str(DEMO["dataset"]),
            "--epochs",
            str(DEMO["epochs"]),
            "--seed",
            str(DEMO["seed"]),
            "--optimizer",
            str(DEMO["optimizer"]),
            "--out",
            args.out,
            "--title",
            "Demo: Iris flowers, 4-16-3, Adam",
            "--overwrite",
        ]
    )
    return _cmd_record(ns)


def _cmd_serve(args: argparse.Namespace) -> int:
    # NOTE: imported here so that the other commands start without Panel.
    import panel as pn
    from tornado import process
    from tornado.ioloop import PeriodicCallback
    from tornado.netutil import bind_sockets

    from ui.app import create_app, ensure_demo
    from ui.upload import WEBSOCKET_MAX_MESSAGE_BYTES

    if not 0 < args.port < 65536:
        raise GlassnetError(f"--port takes 1 to 65535; got {args.port}.")
    folder = Path(args.sessions)
    folder.mkdir(parents=True, exist_ok=True)
    auth = _serve_auth(args, folder)
    proxy = _serve_proxy(args)
    if auth["access"] is None:
        ensure_demo(folder)
    else:
        class_folder(folder, USERS_DIR)
        ensure_demo(class_folder(folder, LIBRARY_DIR))
    host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
    origins = [f"{host}:{args.port}", f"{args.address}:{args.port}"]
    if args.address in ("127.0.0.1", "localhost"):
        origins += [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    origins += args.allow_websocket_origin or []
    process_ports = proxy.pop("process_ports")
    origins += [f"{host}:{p}" for p in process_ports]
    where = f"http://{host}:{args.port}{proxy['prefix']}/app"
    print(f"glassnet app on {where} (Ctrl+C stops it)")
    if args.num_procs != 1:
        count = args.num_procs or os.cpu_count() or 1
        print(f"  in {count} processes; no browser tab is opened")
    if process_ports:
        print(f"  process i also on port {process_ports[0]} + i, up to "
              f"{process_ports[-1]}")  # fmt: skip
    if auth["access"] is not None:
        print(f"  {auth['how']}; workspaces in {folder / USERS_DIR}, class library "
              f"in {folder / LIBRARY_DIR}")  # fmt: skip
    sys.stdout.flush()
    access = auth.pop("access")
    auth.pop("how")
    parent = os.getpid()
    try:
        server = pn.serve(
            {"app": lambda: create_app(folder, access=access)},
            port=args.port,
            address=args.address,
            websocket_origin=sorted(set(origins)),
            show=args.show and args.num_procs == 1,
            title="glassnet",
            liveness=True,
            # An upload travels as one base64 message: room for the largest.
            websocket_max_message_size=WEBSOCKET_MAX_MESSAGE_BYTES,
            start=False,
            **proxy,
            **auth,
        )
    except KeyboardInterrupt:
        # With --num-procs the first process waits here on its workers (and
        # restarts any that crash); Ctrl+C stops them all.
        return 0
    # Past this point each of --num-procs processes runs on its own (forked above).
    task = process.task_id()
    if task is not None:
        # A worker whose first process was stopped alone (kill PID) stops too.
        def stop_if_orphaned() -> None:
            if os.getppid() != parent:
                server.io_loop.stop()

        PeriodicCallback(stop_if_orphaned, 1000).start()
    if process_ports:
        # NOTE: Bokeh keeps its HTTPServer private; a proxy pins each browser to
        # one process through this second socket (docs/deploy.md says why).
        server._http.add_sockets(bind_sockets(process_ports[task or 0], args.address))
    server.start()
    server.io_loop.start()
    return 0


def _serve_proxy(args: argparse.Namespace) -> dict[str, Any]:
    """Return the process and proxy settings of ``serve``'s flags for ``pn.serve``.

    ``num_procs`` forks that many server processes sharing the port (Bokeh's
    multi-process serving); ``prefix`` serves every page under a path, as a
    proxy forwards it unchanged; ``use_xheaders`` trusts the proxy's
    ``X-Forwarded-For``/``X-Real-Ip`` and ``X-Forwarded-Proto`` headers.
    """
    if args.num_procs < 0:
        msg = (
            f"--num-procs takes 1 or more processes (0: one per CPU core); "
            f"got {args.num_procs}."
        )
        raise GlassnetError(msg)
    if args.num_procs != 1 and not hasattr(os, "fork"):
        msg = "--num-procs needs fork(), which this system lacks; use --num-procs 1."
        raise GlassnetError(msg)
    prefix = (args.prefix or "").strip("/")
    parts = prefix.split("/")
    if prefix and (
        not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*", prefix)
        or "." in parts
        or ".." in parts
    ):
        msg = (
            f"--prefix takes a URL path of letters, digits and . _ ~ - between "
            f"slashes (no . or .. parts), like /glassnet; got {args.prefix!r}."
        )
        raise GlassnetError(msg)
    process_ports: list[int] = []
    if args.process_ports is not None:
        if args.num_procs < 2:
            msg = "--process-ports needs --num-procs 2 or more (one port each)."
            raise GlassnetError(msg)
        process_ports = list(
            range(args.process_ports, args.process_ports + args.num_procs)
        )
        if not 0 < process_ports[0] <= process_ports[-1] < 65536:
            msg = (
                f"--process-ports {args.process_ports} with --num-procs "
                f"{args.num_procs} needs ports 1 to 65535; got {process_ports[0]} "
                f"to {process_ports[-1]}."
            )
            raise GlassnetError(msg)
        if args.port in process_ports:
            msg = (
                f"--process-ports {process_ports[0]} to {process_ports[-1]} "
                f"include --port {args.port}; give ports outside it."
            )
            raise GlassnetError(msg)
    return {
        "process_ports": process_ports,
        "num_procs": args.num_procs,
        "prefix": f"/{prefix}" if prefix else "",
        "use_xheaders": args.use_xheaders,
    }


def _serve_auth(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Return the sign-in settings of ``serve``'s flags, as ``pn.serve`` takes them.

    ``access`` is None without accounts (one person, one folder); ``how``
    says how people sign in.
    """
    # NOTE: imported here so that the other commands start without Panel.
    from ui.auth import PasswordAuthProvider, new_secret

    instructors = frozenset(
        check_user_name(n) for n in (args.instructors or "").split(",") if n.strip()
    )
    if args.users and args.oauth_provider:
        msg = "Give either --users (passwords) or --oauth-provider, not both."
        raise GlassnetError(msg)
    if instructors and not (args.users or args.oauth_provider):
        msg = "--instructors needs accounts: add --users FILE or --oauth-provider."
        raise GlassnetError(msg)
    if not (args.users or args.oauth_provider):
        return {"access": None, "how": ""}
    # NOTE: a secret made here signs cookies until the server stops; set
    # PANEL_COOKIE_SECRET to keep people signed in across restarts.
    secret = args.cookie_secret or os.environ.get("PANEL_COOKIE_SECRET") or ""
    settings: dict[str, Any] = {"cookie_secret": secret or new_secret()}
    if args.users:
        users = Path(args.users)
        if not read_users(users):
            msg = (
                f"{users} holds no accounts; add some with glassnet users add NAME "
                f"--file {users}."
            )
            raise GlassnetError(msg)
        access = ClassAccess(root.resolve(), users.resolve(), instructors)
        settings["auth_provider"] = PasswordAuthProvider(users.resolve())
        how = f"sign-in with the passwords of {users}"
    else:
        access = ClassAccess(root.resolve(), None, instructors)
        settings["oauth_provider"] = args.oauth_provider
        for key in ("oauth_key", "oauth_secret", "oauth_redirect_uri"):
            if getattr(args, key):
                settings[key] = getattr(args, key)
        if args.oauth_extra_params:
            settings["oauth_extra_params"] = _json_object(
                args.oauth_extra_params, "--oauth-extra-params"
            )
        if args.oauth_encryption_key:
            settings["oauth_encryption_key"] = args.oauth_encryption_key
        how = f"sign-in through {args.oauth_provider}"
    return {"access": access, "how": how, **settings}


def _json_object(text: str, flag: str) -> dict[str, Any]:
    """Return the JSON object ``text`` of ``flag``, or raise a clear error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise GlassnetError(f"{flag} takes a JSON object; {err}.") from None
    if not isinstance(value, dict):
        raise GlassnetError(f'{flag} takes a JSON object like {{"tenant": "..."}}.')
    return value


def _cmd_users(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if args.action == "list":
        accounts = read_users(path)
        if not accounts:
            print(f"{path} holds no accounts.")
        for name, entry in sorted(accounts.items()):
            print(f"{name:30} {entry['role']}")
        return 0
    if args.action == "remove":
        remove_user(path, args.name)
        print(f"Removed {check_user_name(args.name)} from {path}; their workspace "
              "folder stays on disk.")  # fmt: skip
        return 0
    password = _read_password(args.password_stdin)
    user = add_user(path, args.name, password, instructor=args.instructor)
    print(f"Saved {user.name} ({user.role}) in {path}.")
    return 0


def _read_password(from_stdin: bool) -> str:
    """Return a new password: one line of standard input, or typed twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise GlassnetError("The two passwords differ; run the command again.")
    return first


# -- inspecting ----------------------------------------------------------------


def _cmd_info(args: argparse.Namespace) -> int:
    with Session(args.file) as session:
        print(_summary(session, full=True))
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    with Session(args.file) as session:
        if args.seq is not None:
            events = [session.event(args.seq)]
        else:
            events = session.step_events(args.step)
        if args.kind:
            events = [e for e in events if e.kind in args.kind]
        for event in events:
            print(format_event(event, full=args.full))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(
                tqdm(total=total, unit="step", disable=args.quiet, file=sys.stderr)
            )
        bars[0].update(done - bars[0].n)

    report = verify(args.file, progress=progress)
    if bars:
        bars[0].close()
    print(report.summary())
    # Non-zero when the file was edited after recording or does not reproduce.
    return 0 if report.passed else 1


def _cmd_export(args: argparse.Namespace) -> int:
    if not (args.csv or args.npy or args.notebook):
        msg = "Say what to export: --csv OUT, --npy OUT and/or --notebook OUT."
        raise GlassnetError(msg)
    if args.npy and (args.step is None or args.event is None):
        msg = (
            "--npy needs --step N and --event KIND (and --layer, --name, --field "
            "to pick one array), e.g. --step 40 --event parameters_updated "
            "--layer 2 --name W --field after."
        )
        raise GlassnetError(msg)
    picks = [f"--{k}" for k in ("event", "layer", "name", "field") if getattr(args, k)]
    if picks and not args.npy:
        msg = (
            f"{picks[0]} picks the array of --npy; add --npy OUT, or leave "
            f"{picks[0]} out."
        )
        raise GlassnetError(msg)
    with Session(args.file) as session:
        # Check everything before writing anything.
        jobs: list[tuple[str, Path]] = []
        if args.csv:
            jobs.append(("csv", _export_path(args.csv, metrics_file_name(session))))
        event = None
        if args.npy:
            event = find_event(session, args.step, args.event, args.layer, args.name)
            field = array_field(event, args.field)
            name = array_file_name(session, event, field)
            jobs.append(("npy", _export_path(args.npy, name)))
        step = session.last_step if args.step is None else args.step
        if args.notebook:
            name = notebook_file_name(session, step)
            jobs.append(("notebook", _export_path(args.notebook, name)))
        for _, path in jobs:
            if path.exists() and not args.overwrite:
                msg = (
                    f"{path} already exists; choose another path, or add --overwrite "
                    "to replace it."
                )
                raise GlassnetError(msg)
        for kind, path in jobs:
            if kind == "csv":
                write_metrics_csv(session, path)
            elif kind == "npy" and event is not None:
                write_array(session, path, event, args.field)
            else:
                write_notebook(session, path, step)
            print(f"Saved {path}")
    return 0


def _export_path(out: str, default_name: str) -> Path:
    """Return ``out``, or ``out/default_name`` when ``out`` is a folder.

    ``out`` ending in ``/`` names a folder, created if missing.
    """
    path = Path(out)
    if out.endswith("/") and not path.is_dir():
        path.mkdir(parents=True)
        print(f"Created the folder {path}")
    return path / default_name if path.is_dir() else path


def _cmd_datasets(args: argparse.Namespace) -> int:
    for info in DATASETS.values():
        kind = "generated" if info.synthetic else "real"
        print(f"{info.name:14} {info.task:10} {kind:9} {info.description}")
    return 0


def _summary(session: Session, full: bool = False) -> str:
    """Return a readable overview of a session."""
    meta = session.meta
    spec, config = session.spec, session.config
    data = meta["dataset"]
    acts = ", ".join(f"{layer.n_out} {layer.activation}" for layer in spec.layers)
    lines = [
        f"{session.title}",
        f"  network    {'-'.join(map(str, spec.sizes))} ({acts}); "
        f"{spec.n_params} parameters",
        f"  dataset    {data['name']} ({data['task']}): {data['n_train']} train / "
        f"{_count(data['n_test'], 'test row')}, "
        f"{_count(data['n_features'], 'feature')}",
        f"  training   {config.loss}, {config.optimizer} lr={config.lr:g}, "
        f"batch {meta['batch_size']}, {_count(config.epochs, 'epoch')}, "
        f"seed {config.seed}" + (f", l2={config.l2:g}" if config.l2 else ""),
        f"  recorded   {session.n_recorded} of {_count(meta['total_steps'], 'step')}, "
        f"{_count(session.n_events, 'event')}; status: {session.status}",
    ]
    epochs = session.epochs()
    if epochs.epoch.size:
        parts = [f"epoch {int(epochs.epoch[-1]) + 1}"]
        for part, values in (("train", epochs.train), ("test", epochs.test)):
            for key, column in values.items():
                parts.append(f"{part} {key} {column[-1]:.4g}")
        lines.append("  last       " + ", ".join(parts))
    if full:
        size = session.path.stat().st_size
        lines += [
            f"  file       {session.path} ({size / 1e6:.2f} MB, format "
            f"{session.format_version}, keyframe every {session.keyframe_interval} "
            "steps)",
            f"  created    {meta['created_at']} with glassnet "
            f"{meta['glassnet_version']}, NumPy {meta['numpy_version']}, Python "
            f"{meta['python_version']} on {meta['platform']}",
        ]
        if meta.get("description"):
            lines.append(f"  notes      {meta['description']}")
        if data.get("class_names"):
            lines.append(f"  classes    {', '.join(data['class_names'])}")
        for notice in meta.get("notices", []):
            lines.append(f"  notice     {notice}")
        if session.divergence is not None:
            lines.append(f"  diverged   {session.divergence.message}")
    return "\n".join(lines)


def _count(n: int, word: str) -> str:
    """Return '1 epoch' or '3 epochs'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_event(event: ev.Event, full: bool = False) -> str:
    """Return one event as readable lines: header, then each field."""
    layer = "" if event.layer is None else f" layer {event.layer}"
    where = f"step {event.step}, epoch {event.epoch + 1}{layer}"
    head = f"#{event.seq} {event.kind} ({where})"
    lines = [head]
    for f in dataclasses.fields(event):
        if f.name in ("seq", "step", "epoch", "layer"):
            continue
        lines.append(_field(f.name, getattr(event, f.name), full))
    return "\n".join(lines)


def _field(name: str, value: Any, full: bool) -> str:
    if isinstance(value, np.ndarray):
        opts: dict[str, Any] = {"precision": 6, "suppress_small": True}
        if not full:
            opts["threshold"] = 20
            opts["edgeitems"] = 3
        text = np.array2string(value, separator=", ", **opts)
        body = text.replace("\n", "\n      ")
        return f"    {name} {value.shape}:\n      {body}"
    if isinstance(value, dict) and any(
        isinstance(v, np.ndarray) for v in value.values()
    ):
        return "\n".join(_field(f"{name}.{k}", v, full) for k, v in value.items())
    if isinstance(value, float):
        return f"    {name} = {value!r}"
    return f"    {name} = {value}"


def _sizes(text: str) -> tuple[int, ...]:
    """Return the hidden layer sizes of ``--hidden``; ``none`` means no hidden layer."""
    if text.strip().lower() == "none":
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        msg = (
            f"--hidden takes sizes separated by commas, like 16,8, or --hidden none "
            f"for no hidden layer; got {text!r}."
        )
        raise GlassnetError(msg) from None
    for i, size in enumerate(sizes):
        if size < 1:
            msg = (
                f"Hidden layer {i + 1} has {size} units (--hidden {text}). Give every "
                "hidden layer at least 1 unit, or use --hidden none for no hidden "
                "layer."
            )
            raise GlassnetError(msg)
    return sizes


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"--batch-size takes a whole number or 'full'; got {text!r}."
        raise GlassnetError(msg) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description="Train neural networks with every computation recorded.",
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    rec = sub.add_parser("record", help="train a network and record a session file")
    src = rec.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=sorted(DATASETS), help="built-in dataset")
    src.add_argument("--csv", metavar="PATH", help="train on your own CSV file")
    rec.add_argument("--target", help="target column of the CSV (default: last)")
    rec.add_argument(
        "--task",
        choices=["binary", "multiclass", "regression", "classification"],
        help="CSV task (default: detected from the target column)",
    )
    rec.add_argument(
        "--delimiter",
        help="CSV delimiter: one character, or 'tab' (default: detected)",
    )
    rec.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the CSV's first row holds column names (default: detected)",
    )
    rec.add_argument(
        "--missing",
        choices=["error", "drop", "impute_mean"],
        help="what to do with missing or infinite CSV values (default: error)",
    )
    rec.add_argument(
        "--drop-duplicates", action="store_true", help="drop repeated CSV rows"
    )
    rec.add_argument("--n-samples", type=int, help="rows of a generated dataset")
    rec.add_argument("--noise", type=float, help="noise of a generated dataset")
    rec.add_argument("--test-fraction", type=float, default=0.2)
    rec.add_argument("--no-standardize", action="store_true")
    rec.add_argument(
        "--hidden",
        help="hidden layer sizes, e.g. 16,8; 'none' for no hidden layer "
        "(default: the dataset's suggestion)",
    )
    rec.add_argument("--activation", choices=sorted(ACTIVATIONS) + ["linear"])
    rec.add_argument("--output-activation", choices=sorted(ACTIVATIONS) + ["linear"])
    rec.add_argument("--init", choices=sorted(INITIALIZERS))
    rec.add_argument("--dropout", type=float, default=0.0, help="on hidden layers")
    rec.add_argument("--loss", choices=sorted(LOSSES) + ["bce", "cce"])
    rec.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    rec.add_argument("--lr", type=float, help="learning rate")
    rec.add_argument("--momentum", type=float)
    rec.add_argument("--rho", type=float, help="RMSprop decay")
    rec.add_argument("--beta1", type=float)
    rec.add_argument("--beta2", type=float)
    rec.add_argument("--eps", type=float)
    rec.add_argument("--l2", type=float, default=0.0)
    rec.add_argument("--epochs", type=int, default=30)
    rec.add_argument("--batch-size", help="samples per step, or 'full'")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument(
        "--train-metrics",
        choices=TRAIN_METRICS,
        default="batches",
        help="an epoch's training metrics: the mean over its batches (free), or "
        "one more pass over the training set after it (exact, slower)",
    )
    rec.add_argument("--out", default="runs/session.session", help="session file")
    rec.add_argument("--title")
    rec.add_argument("--description")
    rec.add_argument("--keyframe-interval", type=int, default=10)
    rec.add_argument("--overwrite", action="store_true")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    rec.set_defaults(func=_cmd_record)

    demo = sub.add_parser("demo", help="record the built-in demo session")
    demo.add_argument("--out", default="runs/demo.session")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="summarize a session file")
    info.add_argument("file")
    info.set_defaults(func=_cmd_info)

    events = sub.add_parser("events", help="print the events of one step")
    events.add_argument("file")
    which = events.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, default=0)
    which.add_argument("--seq", type=int, help="one event by sequence number")
    events.add_argument("--kind", action="append", help="only events of this kind")
    events.add_argument("--full", action="store_true", help="print whole arrays")
    events.set_defaults(func=_cmd_events)

    ver = sub.add_parser(
        "verify",
        help="check a session's hash chain, re-run it and compare every value",
    )
    ver.add_argument("file")
    ver.add_argument("--quiet", action="store_true")
    ver.set_defaults(func=_cmd_verify)

    srv = sub.add_parser("serve", help="open the app in a browser")
    srv.add_argument(
        "--sessions",
        default="runs",
        metavar="DIR",
        help="folder of session files (with accounts: the class folder, holding "
        "users/NAME/ and library/)",
    )
    srv.add_argument("--port", type=int, default=5006)
    srv.add_argument("--address", default="127.0.0.1", help="address to listen on")
    srv.add_argument(
        "--show",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="open a browser tab on the app",
    )
    srv.add_argument(
        "--allow-websocket-origin",
        action="append",
        metavar="HOST[:PORT]",
        help="another address browsers reach the app by (e.g. behind a proxy: "
        "glassnet.school.edu); repeatable",
    )
    scale = srv.add_argument_group("processes and proxies (see docs/deploy.md)")
    scale.add_argument(
        "--num-procs",
        type=int,
        default=1,
        metavar="N",
        help="fork N server processes sharing the port (0: one per CPU core; "
        "implies --no-show)",
    )
    scale.add_argument(
        "--process-ports",
        type=int,
        metavar="FIRST",
        help="with --num-procs N: process i also listens on port FIRST + i, so a "
        "proxy can keep each browser on one process",
    )
    scale.add_argument(
        "--prefix",
        default="",
        metavar="PATH",
        help="serve under this URL path, e.g. /glassnet (a proxy forwarding "
        "/glassnet/ unchanged)",
    )
    scale.add_argument(
        "--use-xheaders",
        action="store_true",
        help="trust a proxy's X-Forwarded-For/X-Real-Ip and X-Forwarded-Proto "
        "headers (only behind one)",
    )
    auth = srv.add_argument_group("accounts (see docs/deploy.md)")
    auth.add_argument(
        "--users", metavar="FILE", help="sign in with the passwords of this users file"
    )
    auth.add_argument(
        "--oauth-provider",
        metavar="NAME",
        help="sign in through Panel's OAuth provider NAME (github, google, azure, "
        "gitlab, okta, generic, ...)",
    )
    auth.add_argument("--oauth-key", help="OAuth client id (or PANEL_OAUTH_KEY)")
    auth.add_argument(
        "--oauth-secret", help="OAuth client secret (better: PANEL_OAUTH_SECRET)"
    )
    auth.add_argument("--oauth-redirect-uri", help="the app's address after sign-in")
    auth.add_argument(
        "--oauth-extra-params", metavar="JSON", help="provider settings, a JSON object"
    )
    auth.add_argument(
        "--oauth-encryption-key", help="key that encrypts OAuth tokens in cookies"
    )
    auth.add_argument(
        "--cookie-secret",
        help="secret that signs sign-in cookies (default: PANEL_COOKIE_SECRET, or a "
        "new one at each start)",
    )
    auth.add_argument(
        "--instructors",
        metavar="NAMES",
        help="comma-separated user names who may change the class library",
    )
    srv.set_defaults(func=_cmd_serve)

    usr = sub.add_parser("users", help="manage the accounts of a class")
    usr_sub = usr.add_subparsers(metavar="ACTION", dest="action", required=True)
    usr_add = usr_sub.add_parser(
        "add", help="add a user, or give one a new password and role"
    )
    usr_add.add_argument("name", help="user name: lower-case letters, digits, ._-+@")
    usr_add.add_argument(
        "--instructor", action="store_true", help="may change the class library"
    )
    usr_add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input",
    )
    usr_remove = usr_sub.add_parser("remove", help="remove a user")
    usr_remove.add_argument("name")
    usr_list = usr_sub.add_parser("list", help="list the users and their roles")
    for action in (usr_add, usr_remove, usr_list):
        action.add_argument(
            "--file", default="users.json", help="users file (default users.json)"
        )
    usr.set_defaults(func=_cmd_users)

    exp = sub.add_parser(
        "export",
        help="export metrics to CSV, a recorded array to .npy, or a notebook",
        description="Export from a session file. OUT may be an existing folder: "
        "the file is then named after the session and step.",
    )
    exp.add_argument("file")
    exp.add_argument("--csv", metavar="OUT", help="every step's metrics, as CSV")
    exp.add_argument(
        "--npy", metavar="OUT", help="one recorded array (pick it with the flags below)"
    )
    exp.add_argument(
        "--notebook", metavar="OUT", help="a Jupyter notebook with the main plots"
    )
    exp.add_argument(
        "--step", type=int, help="the step, from 0 (notebook default: the last)"
    )
    exp.add_argument(
        "--event",
        metavar="KIND",
        help="event kind, as `glassnet events` prints it, e.g. parameters_updated",
    )
    exp.add_argument(
        "--layer",
        type=int,
        help="layer counted from 1, as in the app (`glassnet events` prints it from 0)",
    )
    exp.add_argument(
        "--name", help="gradient or parameter name: dW, db, dz, da_prev, dy_hat, W, b"
    )
    exp.add_argument(
        "--field",
        help="the event's array, e.g. z, a, W, after, before, grad, state.m "
        "(default: a gradient's value)",
    )
    exp.add_argument("--overwrite", action="store_true")
    exp.set_defaults(func=_cmd_export)

    ds = sub.add_parser("datasets", help="list the built-in datasets")
    ds.set_defaults(func=_cmd_datasets)
    return parser


if __name__ == "__main__":
    sys.exit(main())
