"""The driver JVM flags: how they combine, and that the configured ones start this machine's Java."""
from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from fraudpipe.config import SparkConfig, load_config
from spark_apps.session import driver_java_options


def test_training_flags_follow_the_driver_flags_and_blank_parts_are_dropped() -> None:
    config = SparkConfig(driver_java_options="-XX:+UseParallelGC", train_java_options="-XX:FreqInlineSize=50")
    assert driver_java_options(config) == "-XX:+UseParallelGC"
    assert driver_java_options(config, config.train_java_options) == "-XX:+UseParallelGC -XX:FreqInlineSize=50"
    # nothing at all: build_session then sets no flags, so spark-defaults.conf keeps its own
    assert driver_java_options(SparkConfig(driver_java_options="  "), " ") == ""
    assert driver_java_options(SparkConfig(driver_java_options=""), "-Xss4m") == "-Xss4m"


@pytest.mark.parametrize("training", [False, True], ids=["stream", "train"])
def test_the_configured_flags_start_the_jvm(training: bool) -> None:
    # Spark starts its driver with -XX:+IgnoreUnrecognizedVMOptions, so a misspelt flag would
    # silently do nothing there; a plain JVM refuses it.
    spark = load_config().spark
    flags = driver_java_options(spark, spark.train_java_options if training else spark.stream_java_options)
    java = shutil.which("java")
    assert java, "Java 17+ is required (README)"
    result = subprocess.run([java, *shlex.split(flags), "-version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "-XX:+UseParallelGC" in flags and ("InlineSmallCode" in flags) == training
    assert ("MaxNewSize" in flags) == (not training)  # the stream's small young generation (docs/memory.md)
