"""docker-compose.yml, checked against the project: config keys, CLI commands, files, wiring.

There is no Docker engine here, so the production stack is verified by reading it:
every FRAUDPIPE_* override must be a key the config loader accepts, every address in
the resulting config must name a compose service on the port it listens on, every
file, script and Dockerfile it names must exist, and the operational rules of the
issue (healthchecks, depends_on conditions, memory limits, named volumes, only the UI
ports published) must hold.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from fraudpipe.cli import commands
from fraudpipe.config import Config, load_config
from fraudpipe.contracts import PROJECT_ROOT
from tests.fixtures.app_image import app_image

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ONE_SHOT = "no"  # restart policy of init / registration services
CONDITIONS = {"service_healthy", "service_completed_successfully"}
# Published ports: the dashboard (its port comes from config) and the Spark master UI.
SPARK_MASTER_UI = 8080
UI_SERVICES = {"dashboard", "spark-master"}
REPO_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)+$")


def app_workdir() -> str:
    """Where docker/app.Dockerfile puts the repository inside the image."""
    match = re.search(r"^WORKDIR\s+(\S+)", (PROJECT_ROOT / "docker" / "app.Dockerfile").read_text(), re.M)
    assert match, "docker/app.Dockerfile must set WORKDIR"
    return match.group(1).rstrip("/")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def fraudpipe_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in environment(service).items() if k.startswith("FRAUDPIPE_")}


def argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def command_lines(service: dict[str, Any]) -> list[str]:
    """What the container runs: entrypoint followed by command."""
    return argv(service.get("entrypoint")) + argv(service.get("command"))


def option(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def memory_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmgKMG])?[bB]?", text.strip())
    assert match, f"not a memory size: {text!r}"
    return int(match.group(1)) * 1024 ** " kmg".index((match.group(2) or " ").lower())


def memory_limit(service: dict[str, Any]) -> str | None:
    limits = (((service.get("deploy") or {}).get("resources") or {}).get("limits") or {})
    return limits.get("memory") or service.get("mem_limit")


def depends_on(service: dict[str, Any]) -> dict[str, Any]:
    deps = service.get("depends_on") or {}
    return {name: None for name in deps} if isinstance(deps, list) else deps


@lru_cache(maxsize=None)
def service_config(name: str) -> Config:
    return load_config(environ=fraudpipe_env(SERVICES[name]))


APP_SERVICES = sorted(name for name, service in SERVICES.items() if fraudpipe_env(service))


def test_stack_has_every_part_of_the_pipeline() -> None:
    wanted = {"kafka", "schema-registry", "connect", "cassandra", "cassandra-init", "spark-master",
              "spark-worker", "stream", "producer", "dashboard", "register-connectors"}
    assert wanted <= set(SERVICES), f"missing services: {sorted(wanted - set(SERVICES))}"
    assert "KRaft" in COMPOSE_FILE.read_text() and "broker,controller" in environment(SERVICES["kafka"]).values()
    assert "KAFKA_ZOOKEEPER_CONNECT" not in environment(SERVICES["kafka"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_fraudpipe_overrides_are_real_config_keys(name: str) -> None:
    # load_config raises ConfigError naming the key on an unknown key or a wrong type.
    config = service_config(name)
    assert config.store.backend == "cassandra"
    assert config.kafka.embedded is False


@pytest.mark.parametrize("name", APP_SERVICES)
def test_config_addresses_name_compose_services_on_their_ports(name: str) -> None:
    config = service_config(name)
    kafka_env = environment(SERVICES["kafka"])
    for server in config.kafka.bootstrap_servers.split(","):
        assert f"PLAINTEXT://{server}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","), server

    registry = urlsplit(config.schema_registry.url)
    assert registry.hostname in SERVICES, f"schema_registry.url names no service: {config.schema_registry.url}"
    listeners = environment(SERVICES[registry.hostname])["SCHEMA_REGISTRY_LISTENERS"]
    assert urlsplit(listeners).port == registry.port, f"registry listens on {listeners}"

    connect = urlsplit(config.connect.url)
    assert connect.hostname in SERVICES, f"connect.url names no service: {config.connect.url}"
    rest_port = int(environment(SERVICES[connect.hostname])["CONNECT_REST_PORT"])
    assert rest_port == connect.port, f"Connect listens on {rest_port}, connect.url is {config.connect.url}"

    for host in config.store.cassandra_contact_points:
        assert SERVICES[host]["image"].startswith("cassandra:"), host
    assert config.store.cassandra_port == 9042  # the cassandra image's native port

    master = urlsplit(config.spark.master)
    if master.scheme == "spark":
        master_args = command_lines(SERVICES[master.hostname])
        assert "org.apache.spark.deploy.master.Master" in master_args
        assert int(option(master_args, "--port")) == master.port
    else:
        assert config.spark.master.startswith("local"), config.spark.master


def test_cassandra_init_targets_the_configured_cassandra() -> None:
    args = command_lines(SERVICES["cassandra-init"])
    assert args[:1] == ["cqlsh"] and "-f" in args
    host, port = args[1], int(args[2])
    for name in APP_SERVICES:
        store = service_config(name).store
        assert host in store.cassandra_contact_points and port == store.cassandra_port


def test_referenced_files_exist_in_the_repo() -> None:
    workdir = app_workdir()
    missing: list[str] = []
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = PROJECT_ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (context / dockerfile).is_file():
                missing.append(f"{name}: build {context / dockerfile}")
        for token in command_lines(service):
            relative = token[len(workdir) + 1:] if token.startswith(workdir + "/") else token
            if REPO_PATH.match(relative) and not (PROJECT_ROOT / relative).exists():
                missing.append(f"{name}: runs {token}")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith((".", "/")) and not (PROJECT_ROOT / source).exists():
                missing.append(f"{name}: mounts {source}")
    assert not missing, "docker-compose.yml references files that do not exist:\n" + "\n".join(missing)


def test_dockerfiles_copy_only_existing_files() -> None:
    for dockerfile in (PROJECT_ROOT / "docker").glob("*.Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and "--from" not in line:
                for source in line.split()[1:-1]:
                    assert (PROJECT_ROOT / source).exists(), f"{dockerfile.name}: COPY {source}"


def test_fraudpipe_commands_are_real_cli_commands() -> None:
    run: dict[str, str] = {}
    for name, service in SERVICES.items():
        args = command_lines(service)
        if args[:1] == ["fraudpipe"]:
            # Settings come from config.yml + FRAUDPIPE_* only, so no flags can drift.
            assert len(args) == 2, f"{name}: pass settings as FRAUDPIPE_* variables, not flags: {args}"
            assert args[1] in commands(), f"{name}: `fraudpipe {args[1]}` is not a fraudpipe command"
            run[args[1]] = name
    assert {"produce", "dashboard", "train"} <= set(run)


def test_stream_job_is_submitted_with_the_configured_master_and_memory() -> None:
    args = command_lines(SERVICES["stream"])
    assert args[0] == "spark-submit" and args[-1] == "spark_apps/stream/job.py"
    spark = service_config("stream").spark
    assert option(args, "--master") == spark.master
    # In client mode the driver JVM starts before Python reads config.yml.
    assert option(args, "--driver-memory") == spark.driver_memory, "keep --driver-memory = spark.driver_memory"
    assert option(args, "--driver-java-options") == spark.driver_java_options, "keep it = spark.driver_java_options"
    # The checkpoint (and its state store, written by executors) lives on a volume
    # shared by the driver and every worker.
    checkpoint_volume = next(v.split(":")[0] for v in SERVICES["stream"]["volumes"]
                             if spark.checkpoint_dir.startswith(v.split(":")[1]))
    assert any(v.startswith(checkpoint_volume + ":") for v in SERVICES["spark-worker"]["volumes"])


def test_depends_on_uses_conditions_the_target_can_meet() -> None:
    for name, service in SERVICES.items():
        for target, spec in depends_on(service).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            condition = (spec or {}).get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: depends_on needs a condition, got {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} to be healthy: no healthcheck"
            else:
                assert SERVICES[target].get("restart") == ONE_SHOT, f"{target} is awaited to complete: not one-shot"


def test_every_service_with_dependents_has_a_healthcheck_or_completes() -> None:
    awaited = {target for service in SERVICES.values() for target in depends_on(service)}
    for target in awaited:
        one_shot = SERVICES[target].get("restart") == ONE_SHOT
        assert one_shot or "healthcheck" in SERVICES[target], f"{target} has dependents but no healthcheck"


def test_memory_limits_are_set_and_hold_the_jvm_heaps() -> None:
    for name, service in SERVICES.items():
        limit = memory_limit(service)
        assert limit, f"{name} has no memory limit"
        env, args = environment(service), command_lines(service)
        heaps = [m.group(1) for value in env.values() for m in [re.search(r"-Xmx(\w+)", value)] if m]
        heaps += [env[key] for key in ("MAX_HEAP_SIZE", "SPARK_DAEMON_MEMORY") if key in env]
        if "org.apache.spark.deploy.worker.Worker" in args:
            heaps.append(option(args, "--memory"))  # what the worker hands to executors
        if args[:1] == ["spark-submit"]:
            heaps.append(option(args, "--driver-memory"))
        assert sum(map(memory_bytes, heaps)) < memory_bytes(limit), f"{name}: heaps {heaps} exceed {limit}"
    for name in ("kafka", "schema-registry", "connect", "cassandra"):
        env = environment(SERVICES[name])
        assert any("-Xmx" in value for value in env.values()) or "MAX_HEAP_SIZE" in env, f"{name}: heap unset"
    assert "HEAP_NEWSIZE" in environment(SERVICES["cassandra"])  # cassandra-env.sh wants both


def test_only_ui_ports_are_published() -> None:
    published = {name: service["ports"] for name, service in SERVICES.items() if service.get("ports")}
    assert set(published) <= UI_SERVICES, f"only UIs may be published, not {sorted(set(published) - UI_SERVICES)}"
    dashboard_port = service_config("dashboard").dashboard.port
    assert published["dashboard"] == [f"{dashboard_port}:{dashboard_port}"]
    assert published.get("spark-master", []) in ([], [f"{SPARK_MASTER_UI}:{SPARK_MASTER_UI}"])
    assert service_config("dashboard").dashboard.host == "0.0.0.0"  # reachable through the mapping
    assert str(dashboard_port) in " ".join(SERVICES["dashboard"]["healthcheck"]["test"])


def test_volumes_are_named_and_bind_mounts_are_read_only_repo_files() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used: set[str] = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes") or []:
            assert isinstance(volume, str) and ":" in volume, f"{name}: anonymous volume {volume!r}"
            parts = volume.split(":")
            if parts[0].startswith((".", "/")):
                assert parts[0].startswith("./") and parts[-1] == "ro", f"{name}: bind mount {volume} must be ./repo-file:ro"
            else:
                assert parts[0] in declared, f"{name}: volume {parts[0]} is not declared under volumes:"
                used.add(parts[0])
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"
    for name in ("kafka", "cassandra"):
        assert any(not v.startswith(".") for v in SERVICES[name].get("volumes", [])), f"{name} keeps no data"


def test_images_are_pinned_and_confluent_versions_agree() -> None:
    cp_version = re.search(r"^ARG CP_VERSION=(\S+)", (PROJECT_ROOT / "docker" / "connect.Dockerfile").read_text(), re.M)
    assert cp_version
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        if image.startswith("confluentinc/"):
            assert image.endswith(":" + cp_version.group(1)), f"{name}: {image} vs Connect image {cp_version.group(1)}"


def connector_files() -> list[Path]:
    args = command_lines(SERVICES["register-connectors"])
    return [PROJECT_ROOT / arg for arg in args if arg.endswith(".json")]


def test_registered_connectors_target_the_compose_services() -> None:
    files = connector_files()
    assert files == [PROJECT_ROOT / "connectors" / "cassandra-sink.json"]
    connect_dockerfile = (PROJECT_ROOT / "docker" / "connect.Dockerfile").read_text()
    config = service_config("register-connectors")
    for file in files:
        assert file.is_file(), f"{file.relative_to(PROJECT_ROOT)} is missing"
        connector = json.loads(file.read_text())
        assert set(connector) >= {"name", "config"}, f"{file.name}: want the REST shape {{name, config}}"
        settings = connector["config"]
        assert settings["connector.class"].startswith("com.datastax.")
        assert "datastax/kafka-connect-cassandra-sink" in connect_dockerfile
        contact_points = [host.strip() for host in str(settings["contactPoints"]).split(",")]
        assert set(contact_points) <= set(config.store.cassandra_contact_points), contact_points
        registry = settings.get("value.converter.schema.registry.url")
        if registry is not None:
            assert registry.rstrip("/") == config.schema_registry.url.rstrip("/")


def test_register_script_is_valid_bash_and_uses_the_config_env_name() -> None:
    script = PROJECT_ROOT / "docker" / "register-connectors.sh"
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=10)
    text = script.read_text()
    assert "FRAUDPIPE_CONNECT__URL" in text and "/connectors/" in text
    assert "FRAUDPIPE_CONNECT__URL" in environment(SERVICES["register-connectors"])


# What each app service's command writes, as config keys (section, key) holding paths. The
# image runs as an unprivileged user and /app belongs to root, so every one of them must
# resolve into a named volume mounted on a directory the image made for that user (a new
# volume takes the ownership of its mount point; a mount point Docker has to create is root's).
WRITES: dict[str, tuple[tuple[str, str], ...]] = {
    "fraudpipe train": (("model", "dir"), ("model", "dataset_dir")),
    "spark_apps/stream/job.py": (("spark", "checkpoint_dir"),),
    "org.apache.spark.deploy.worker.Worker": (("spark", "checkpoint_dir"),),  # executors write the state store
}


def written_paths(name: str) -> list[tuple[str, str]]:
    """(config key, absolute path inside the container) of what service `name` writes."""
    args = " ".join(command_lines(SERVICES[name]))
    config = service_config(name)
    workdir = PurePosixPath(app_image().workdir)
    found = []
    for marker, keys in WRITES.items():
        if marker in args:
            for section, key in keys:
                value = getattr(getattr(config, section), key)
                found.append((f"{section}.{key}", str(workdir / value)))  # an absolute value stays as it is
    return found


def named_volume_targets(service: dict[str, Any]) -> list[str]:
    return [v.split(":")[1] for v in service.get("volumes") or [] if not v.startswith((".", "/"))]


def test_every_service_that_writes_a_configured_path_is_covered() -> None:
    commands = {name: " ".join(command_lines(service)) for name, service in SERVICES.items()}
    assert {name for name, args in commands.items() if "fraudpipe train" in args} == {"trainer"}
    for marker in WRITES:
        assert any(marker in args for args in commands.values()), f"no service runs {marker}: update WRITES"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_what_a_service_writes_lands_in_a_volume_the_app_user_owns(name: str) -> None:
    image = app_image()
    targets = named_volume_targets(SERVICES[name])
    for target in targets:
        assert target in image.app_owned_dirs, (
            f"{name}: volume on {target}, which docker/app.Dockerfile does not create for uid {image.uid}; "
            f"the volume would belong to root ({', '.join(image.app_owned_dirs)} are the app's)")
    for key, path in written_paths(name):
        assert not PurePosixPath(path).is_relative_to(image.workdir), (
            f"{name}: {key} resolves to {path}, inside {image.workdir} (root's, read-only to uid {image.uid}); "
            "set it to a path under /data in x-fraudpipe-env")
        assert any(PurePosixPath(path).is_relative_to(t) for t in targets), (
            f"{name}: {key} = {path} is in no volume of the service ({', '.join(targets) or 'none'}): lost on restart")


def test_the_image_installs_the_driver_of_the_configured_store() -> None:
    # the Dockerfile's own requirements step, run here: what it would pip install
    text = re.sub(r"\\\n\s*", " ", (PROJECT_ROOT / "docker" / "app.Dockerfile").read_text())
    match = re.search(r"RUN (python -c \"[^\"]*tomllib[^\"]*\")", text)
    assert match, "docker/app.Dockerfile: no requirements step read from pyproject.toml"
    listed = subprocess.run(shlex.split(match.group(1)), cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True, timeout=30).stdout.split()
    names = {re.split(r"[<>=~!\[ ;]", line, maxsplit=1)[0].lower() for line in listed}
    if any(service_config(name).store.backend == "cassandra" for name in APP_SERVICES):
        assert "cassandra-driver" in names, "the stack stores in Cassandra: install the [cassandra] extra in the image"


def test_the_stream_runs_spark_kafka_source_with_the_image_jars() -> None:
    spark = service_config("stream").spark
    assert spark.kafka_source == "jvm", "the production stream uses Spark's own Kafka source"
    args = command_lines(SERVICES["stream"])
    # the driver JVM starts before Python reads config.yml: the jars must be on the command line
    assert option(args, "--jars") == f"{spark.kafka_jars_dir.rstrip('/')}/*.jar"
    dockerfile = (PROJECT_ROOT / "docker" / "app.Dockerfile").read_text()
    fetch = re.search(r"^RUN python -m spark_apps\.stream\.jvm_source (\S+)$", dockerfile, re.M)
    assert fetch, "docker/app.Dockerfile must fetch the Kafka source's jars at build time"
    assert fetch.group(1).rstrip("/") == spark.kafka_jars_dir.rstrip("/")
    assert (PROJECT_ROOT / "spark_apps" / "stream" / "jvm_source.py").is_file()
