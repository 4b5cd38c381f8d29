"""`fraudpipe up | status | down`: the whole embedded pipeline on one machine.

Every component runs as its own `fraudpipe <command>` process in its own process
group, with its log under the run directory. `up` starts them in dependency order,
waiting for each to be healthy, supervises them, and on Ctrl-C (or `fraudpipe down`)
stops them in reverse order: SIGTERM to the group, then SIGKILL after a grace period.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from fraudpipe import contracts
from fraudpipe.config import Config, load_config
from fraudpipe.errors import FraudpipeError
from fraudpipe.health import http_ok, kafka_ok
from fraudpipe.process import identity, is_running, spawn, wait_until

STATE_FILE = "state.json"


class StackError(FraudpipeError):
    """A component of the embedded stack failed to start or died."""


class RunActiveError(StackError):
    """`fraudpipe up` while another run is active: refused, and the live run is left alone."""


@dataclass
class Component:
    name: str
    args: list[str]
    url: str
    # Whether the running service answers; that its process is alive is checked beside it.
    ready: Callable[[], bool]
    start_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    identity: dict[str, object] | None = None  # recorded at start: who `down` may signal

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def run_dir(config: Config) -> Path:
    return config.path(config.stack.run_dir)


def _read_state(directory: Path) -> dict | None:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _recorded(state: dict, key: str = "supervisor_process") -> dict | None:
    """The process identity a state entry recorded (see fraudpipe.process.identity)."""
    value = state.get(key)
    return value if isinstance(value, dict) else None


def active_run(directory: Path) -> dict | None:
    """The state of the run in `directory` when its supervisor still runs (the very process recorded)."""
    state = _read_state(directory)
    return state if state and is_running(_recorded(state)) else None


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop_group(pid: int, *, grace: float) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap our own child: a zombie would keep the group "alive" until the grace ends
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Stack:
    """Starts, supervises and stops the embedded components of one run."""

    def __init__(self, config: Config, *, rate: float | None = None, skip: tuple[str, ...] = ()) -> None:
        self.config = config
        self.directory = run_dir(config)
        self.logs = self.directory / "logs"
        self.rate = config.producer.rate if rate is None else rate
        self.skip = set(skip)
        self.started: list[Component] = []
        self._stopping = False
        self._prepared = False
        self._owns_state = False  # set once start() found no active run: only then is state.json ours

    # --- the components, in start order -----------------------------------------
    def components(self) -> list[Component]:
        c = self.config
        # The producer starts before the stream job so the first window fills while Spark
        # starts (the job reads from the earliest offset): the first alert comes sooner.
        # The embedded broker forgets everything when it stops, so offsets kept from an
        # earlier run would point past the end of the new, empty topics: each run gets
        # its own Spark checkpoint and Connect offsets. SQLite and the registry persist.
        run_env = {
            "FRAUDPIPE_SPARK__CHECKPOINT_DIR": str(self.directory / "checkpoint"),
            "FRAUDPIPE_CONNECT__DATA_DIR": str(self.directory / "connect"),
        } if c.kafka.embedded else {}
        parts = []
        if c.kafka.embedded:
            parts.append(Component("broker", ["broker", "--port", str(c.kafka.broker_port)], c.kafka.bootstrap_servers,
                                   lambda: kafka_ok(c.kafka.bootstrap_servers)))
        parts += [
            Component("registry", ["registry", "--port", str(c.schema_registry.port), "--data-dir",
                                   str(c.path(c.schema_registry.data_dir))], c.schema_registry.url,
                      lambda: http_ok(c.schema_registry.url + "/")),
            Component("connect", ["connect", "--port", str(c.connect.port)], c.connect.url,
                      lambda: http_ok(c.connect.url + "/"), env=run_env),
            Component("producer", ["produce", "--rate", str(self.rate)], f"{self.rate:g} tx/s",
                      lambda: True, start_timeout=30),
            Component("stream", ["stream"], "(spark local)", self._stream_started, start_timeout=180, env=run_env),
            Component("dashboard", ["dashboard", "--port", str(c.dashboard.port)],
                      f"http://{c.dashboard.host}:{c.dashboard.port}/",
                      lambda: http_ok(f"http://{c.dashboard.host}:{c.dashboard.port}/api/health")),
        ]
        return [p for p in parts if p.name not in self.skip]

    def _stream_started(self) -> bool:
        # Spark writes the offsets log of the first micro-batch once the query runs.
        return (self.directory / "checkpoint" / "offsets").is_dir()

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        state = active_run(self.directory)
        if state:  # refuse before touching anything of the live run: its state file, checkpoints, logs
            raise RunActiveError(f"a run is already active (pid {state['supervisor']}); "
                                 "use `fraudpipe status` or `fraudpipe down`")
        self._owns_state = True
        self.logs.mkdir(parents=True, exist_ok=True)
        for stale in ("checkpoint", "connect"):
            target = self.directory / stale
            if target.exists() and self.config.kafka.embedded:
                shutil.rmtree(target)
        components = self.components()
        started = {c.name for c in components}
        for component in components:
            if component.name in ("stream", "producer") and not self._prepared:
                self._prepare_pipeline(started)
            self._start_component(component)
        self._write_state("running")

    def _start_component(self, component: Component) -> None:
        component.log_path = self.logs / f"{component.name}.log"
        click.echo(f"  starting {component.name:<10}", nl=False)
        component.process = spawn(
            [sys.executable, "-m", "fraudpipe.cli", *component.args], log_path=component.log_path,
            env={**component.env, "PYTHONUNBUFFERED": "1"}, cwd=contracts.PROJECT_ROOT, start_new_session=True,
        )
        component.identity = identity(component.process.pid)
        self.started.append(component)
        self._write_state("starting")
        try:
            wait_until(component.ready, process=component.process,
                       timeout=component.start_timeout, what=component.name, error=StackError)
        except StackError as exc:
            raise StackError(f"{exc}; last lines of {component.log_path}:\n{_tail(component.log_path)}") from None
        click.echo(f" ok  ({component.url})")

    def _prepare_pipeline(self, started: set[str]) -> None:
        """Topics, schemas, a model and the sink connectors: everything the stream and producer need."""
        from fraudpipe.provisioning import ensure_model, register_connectors, register_schemas
        from fraudpipe.broker import ensure_topics

        c = self.config
        ensure_topics(c.kafka.bootstrap_servers, {
            contracts.TRANSACTIONS_TOPIC: c.kafka.partitions,
            contracts.LABELS_TOPIC: c.kafka.partitions,
            contracts.STREAM_DLQ_TOPIC: 1,
            contracts.CONNECT_DLQ_TOPIC: 1,
        })
        register_schemas(c.schema_registry.url)
        if "stream" in started:
            ensure_model(c, log_path=self.logs / "train.log")
        if "connect" in started:
            register_connectors(c.connect.url, prefix="sqlite", overrides={
                "value.converter.schema.registry.url": c.schema_registry.url,
                "connection.url": f"jdbc:sqlite:{c.path(c.store.sqlite_path)}",
            })
        self._prepared = True

    def supervise(self) -> int:
        """Watch the components until one dies (exit 1) or we are asked to stop (exit 0)."""
        while not self._stopping:
            for component in self.started:
                if not component.alive():
                    click.secho(f"\n{component.name} died (exit code {component.process.returncode}); "
                                f"last lines of {component.log_path}:\n{_tail(component.log_path)}", fg="red", err=True)
                    self.stop()
                    return 1
            time.sleep(1.0)
        return 0

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        for component in reversed(self.started):
            if component.process is not None:
                _stop_group(component.process.pid, grace=self.config.stack.stop_grace_seconds)
                try:
                    component.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
                click.echo(f"  stopped {component.name}")
        self.started.clear()
        self._write_state("stopped")

    def _write_state(self, phase: str) -> None:
        if not self._owns_state:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {
            "supervisor": os.getpid(),
            "supervisor_process": identity(os.getpid()),
            "phase": phase,
            "components": [
                {"name": c.name, "pid": c.process.pid if c.process else None, "process": c.identity, "url": c.url, "log": str(c.log_path)}
                for c in self.started
            ],
        }
        tmp = self.directory / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self.directory / STATE_FILE)

    def summary(self) -> str:
        rows = [f"  {c.name:<10} {'running' if c.alive() else 'DOWN':<8} {c.url}" for c in self.started]
        return "\n".join(["  component  state    address", *rows])


# --- commands -------------------------------------------------------------------
@click.command("up")
@click.option("--rate", type=float, default=None, help="Producer rate in tx/s (default: producer.rate in config.yml).")
@click.option("--detach", is_flag=True, help="Start in the background and return once everything is healthy.")
@click.option("--skip", multiple=True, type=click.Choice(["producer", "dashboard", "stream", "connect", "registry"]),
              help="Leave a component out (repeatable).")
def up_command(rate: float | None, detach: bool, skip: tuple[str, ...]) -> None:
    """Start the whole embedded pipeline on 127.0.0.1; Ctrl-C stops everything."""
    config = load_config()
    if detach:
        _detach(rate, skip, config)
        return
    stack = Stack(config, rate=rate, skip=skip)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    click.echo(f"fraudpipe up: logs under {stack.logs}")
    try:
        stack.start()
    except RunActiveError as exc:  # the live run keeps its state, its processes and its control
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    except (FraudpipeError, KeyboardInterrupt) as exc:
        click.secho(f"\n{exc}" if isinstance(exc, FraudpipeError) else "\ninterrupted", fg="red", err=True)
        stack.stop()
        sys.exit(1)
    if stack._stopping:  # Ctrl-C arrived while the last component started
        stack.stop()
        return
    click.echo("\n" + stack.summary())
    dashboard = next((c for c in stack.started if c.name == "dashboard"), None)
    if dashboard is not None:
        click.echo(f"\nOpen the dashboard: {dashboard.url}")
    click.echo("The embedded broker keeps every record in memory; see README 'Troubleshooting'. Ctrl-C stops all.")
    code = stack.supervise()
    if code == 0:
        click.echo("\nstopping (reverse order)...")
        stack.stop()
    sys.exit(code)


def _detach(rate: float | None, skip: tuple[str, ...], config: Config) -> None:
    directory = run_dir(config)
    state = active_run(directory)
    if state:
        click.secho(f"a run is already active (pid {state['supervisor']}); "
                    "use `fraudpipe status` or `fraudpipe down`", fg="red", err=True)
        sys.exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "fraudpipe.cli", "up", *(["--rate", str(rate)] if rate is not None else []),
            *[f"--skip={s}" for s in skip]]
    with open(directory / "up.log", "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=contracts.PROJECT_ROOT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = _read_state(directory)
        if process.poll() is not None:
            raise StackError(f"background run exited with code {process.returncode}:\n{_tail(directory / 'up.log')}")
        if state and state.get("supervisor") == process.pid and state.get("phase") == "running":
            click.echo(f"running in the background (pid {process.pid}); `fraudpipe status`, `fraudpipe down`")
            return
        time.sleep(1)
    raise StackError("background run did not become healthy within 10 minutes; see .fraudpipe/run/up.log")


@click.command("status")
def status_command() -> None:
    """Report each component of the current run and whether it is healthy."""
    config = load_config()
    state = active_run(run_dir(config))
    if not state:
        click.echo("no fraudpipe run is active")
        sys.exit(3)
    probes = {c.name: c for c in Stack(config).components()}
    click.echo(f"run supervised by pid {state['supervisor']} ({state['phase']})")
    unhealthy = 0
    for entry in state["components"]:
        alive = is_running(_recorded(entry, "process"))
        probe = probes.get(entry["name"])
        healthy = alive and (probe is None or probe.ready())
        unhealthy += not healthy
        click.echo(f"  {entry['name']:<10} {'healthy' if healthy else 'UNHEALTHY':<10} {entry['url']}  log: {entry['log']}")
    sys.exit(1 if unhealthy else 0)


@click.command("down")
def down_command() -> None:
    """Stop a run started with `fraudpipe up --detach` (or in another terminal)."""
    config = load_config()
    directory = run_dir(config)
    state = _read_state(directory)
    if not state:
        click.echo("no fraudpipe run to stop")
        return
    # Only the processes recorded at start are signalled: a pid whose start time or command
    # line differs now belongs to another program that was given the same pid.
    supervisor = _recorded(state)
    if is_running(supervisor):
        os.kill(supervisor["pid"], signal.SIGTERM)
        deadline = time.monotonic() + config.stack.stop_grace_seconds * (len(state.get("components", [])) + 1)
        while is_running(supervisor) and time.monotonic() < deadline:
            time.sleep(0.3)
    left = [entry for entry in state.get("components", []) if is_running(_recorded(entry, "process"))]
    for entry in reversed(left):  # anything the supervisor could not stop
        _stop_group(entry["process"]["pid"], grace=config.stack.stop_grace_seconds)
    click.echo("stopped")
