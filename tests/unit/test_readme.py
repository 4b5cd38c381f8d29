"""Every shell command in the README exists and accepts the flags the README gives it,
and every curl targets a route the server really has, so the docs cannot drift."""
from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
from click.testing import CliRunner
from werkzeug.exceptions import MethodNotAllowed, NotFound

from fraudpipe.cli import main as fraudpipe_cli
from fraudpipe.contracts import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
SEPARATORS = {"|", "&&", "||", ";"}


def readme_commands() -> list[list[str]]:
    """Each simple command of every ```bash block: comments, variable assignments and
    continuation lines handled; pipelines and && chains split into their commands."""
    text = README.read_text()
    commands: list[list[str]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n", " ", block)
        pending = ""
        for line in joined.splitlines():
            pending += line + "\n"
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:
                continue  # an open quote: the command goes on on the next line
            pending = ""
            current: list[str] = []
            for word in [*words, ";"]:
                if word in SEPARATORS or word.endswith(";"):
                    if word.endswith(";") and word != ";":
                        current.append(word[:-1])
                    while current and re.fullmatch(r"[A-Za-z_]+=.*", current[0]):
                        current.pop(0)
                    if current:
                        commands.append(current)
                    current = []
                elif word not in (">", ">>", "<") and not (current and current[-1] in (">", ">>")):
                    current.append(word)
    return commands


def _by_program(program: str) -> list[list[str]]:
    return [c for c in readme_commands() if c[0] == program]


def test_readme_has_the_two_quickstart_commands():
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quickstart, flags=re.S).group(1)
    assert [shlex.split(line, comments=True) for line in block.strip().splitlines()] == [["./dev", "up"], ["./dev", "test"]]
    assert "./dev test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_dev_script_knows_every_subcommand_used():
    script = (PROJECT_ROOT / "dev").read_text()
    for command in _by_program("./dev"):
        assert re.search(rf"^\s*{re.escape(command[1])}\)", script, flags=re.M), command


def _resolve(args: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """Walk fraudpipe's command groups: (path, leaf command, remaining args)."""
    command: click.Command = fraudpipe_cli
    path = ["fraudpipe"]
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"no command `{' '.join(path)} {rest[0]}`"
        path.append(rest.pop(0))
        command = sub
    return path, command, rest


def fraudpipe_invocations() -> list[list[str]]:
    return [c[1:] for c in _by_program("fraudpipe")]


@pytest.mark.parametrize("args", fraudpipe_invocations(), ids=" ".join)
def test_fraudpipe_command_and_flags_exist(args: list[str]):
    path, command, rest = _resolve(args)
    result = CliRunner().invoke(fraudpipe_cli, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    for word in rest:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", result.output), f"`{' '.join(path)}` has no {flag}"
    # the arguments parse as the README writes them (types, choices), without running anything
    if not isinstance(command, click.Group):
        try:
            command.make_context(path[-1], list(rest)).close()
        except click.BadParameter as exc:
            # a file the workflow creates in an earlier step is fine; any other bad value is not
            assert "does not exist" in str(exc), exc


def test_benchmark_modules_exist():
    modules = [c[2] for c in readme_commands() if c[:2] in (["python", "-m"], [".venv/bin/python", "-m"])]
    assert modules, "the README should show how to run the benchmarks"
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_files_named_by_commands_exist():
    for command in readme_commands():
        for word in command[1:]:
            value = word.split("@", 1)[1] if word.startswith("@") else word
            if re.fullmatch(r"(connectors|spark_apps|cassandra|benchmarks|docker)/[\w./-]+\.(json|py|cql|sh)", value) or value in ("schema.avsc", "config.yml", "docker-compose.yml"):
                assert (PROJECT_ROOT / value).exists(), f"{command}: {value} does not exist"


def test_programs_exist():
    allowed_missing = {"docker"}  # the compose workflow needs a Docker engine, documented as such
    for command in readme_commands():
        program = command[0]
        if program.startswith("./") or program.startswith("$") or program in allowed_missing:
            continue
        on_path = shutil.which(program) or (PROJECT_ROOT / ".venv" / "bin" / program).exists()
        assert on_path, f"README runs `{program}`, which is not installed by ./dev"


def _url_maps(tmp_path: Path) -> dict[str, object]:
    from dashboard.app import create_app as dashboard_app
    from fraudpipe.config import load_config
    from fraudpipe.connect.rest import create_app as connect_app
    from fraudpipe.connect.task import TaskSettings
    from fraudpipe.connect.worker import Worker
    from fraudpipe.registry.app import create_app as registry_app

    config = load_config()
    worker = Worker(data_dir=tmp_path / "connect", settings=TaskSettings(bootstrap_servers="127.0.0.1:1"),
                    registry_url="http://127.0.0.1:1", worker_id="readme-test")
    return {
        str(config.schema_registry.port): registry_app(data_dir=tmp_path / "registry").url_map,
        str(config.connect.port): connect_app(worker).url_map,
        str(config.dashboard.port): dashboard_app(config).url_map,
    }


def test_every_curl_targets_a_real_route(tmp_path: Path):
    text = README.read_text()
    variables = dict(re.findall(r"^([A-Z]+)=(http://\S+)$", text, flags=re.M))
    maps = _url_maps(tmp_path)
    curls = _by_program("curl")
    assert len(curls) >= 10
    for command in curls:
        method = "GET"
        for flag, value in zip(command, command[1:]):
            if flag == "-X":
                method = value
        if "--data" in command or "-d" in command:
            method = method if "-X" in command else "POST"
        expanded = [re.sub(r"\$([A-Z]+)", lambda m: variables.get(m.group(1), m.group(0)), w) for w in command]
        url = next(w if w.startswith("http") else f"http://{w}" for w in expanded[1:]
                   if w.startswith("http") or re.match(r"(localhost|127\.0\.0\.1):\d+", w))
        parts = urlsplit(url)
        assert parts.port is not None and str(parts.port) in maps, f"curl to an unknown service: {command}"
        adapter = maps[str(parts.port)].bind("127.0.0.1")
        try:
            adapter.match(parts.path, method=method)
        except (NotFound, MethodNotAllowed) as exc:
            pytest.fail(f"README curl {method} {parts.path} has no route: {exc}")


def test_config_reference_is_the_loaders():
    from fraudpipe.config_cli import reference_markdown

    text = README.read_text()
    table = text.split("<!-- config-reference:start -->", 1)[1].split("<!-- config-reference:end -->", 1)[0]
    assert table.strip() == reference_markdown().strip(), "run `fraudpipe config reference` and paste it into the README"


def test_readme_registry_v2_is_the_schema_fraudpipe_schema_evolve_registers(tmp_path: Path):
    """The walk-through's v2 body, built as the README builds it, is `fraudpipe schema evolve`'s v2:
    following both must not register a third version."""
    import json
    import subprocess

    from fraudpipe.registry.cli import _schema_text

    section = README.read_text().split("<!-- section:registry -->", 1)[1].split("<!-- section:", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    (builder,) = re.findall(r"^python3 -c '[^']*' > /tmp/v2\.json$", block, flags=re.S | re.M)
    subprocess.run(["bash", "-euo", "pipefail", "-c", builder.replace("/tmp/", f"{tmp_path}/")], cwd=PROJECT_ROOT,
                   check=True, timeout=30)
    readme_v2 = json.loads(json.loads((tmp_path / "v2.json").read_text())["schema"])
    assert readme_v2 == json.loads(_schema_text(None, 2))


def test_files_the_readme_writes_into_the_checkout_are_git_ignored():
    """`fraudpipe produce --to-file data/...` in the training example must not leave untracked files."""
    import subprocess

    outputs = {word for command in readme_commands() for i, word in enumerate(command)
               if i and command[i - 1] == "--to-file" and not word.startswith("/")}
    assert outputs, "the README's --to-file examples were not found"
    for path in sorted(outputs):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=PROJECT_ROOT, timeout=30)
        assert ignored.returncode == 0, f"{path} (written by a README command) is not git-ignored"
