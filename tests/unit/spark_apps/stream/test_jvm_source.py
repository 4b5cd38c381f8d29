"""spark.kafka_source=jvm without Spark: which jars, which writer schemas, which watermark, which failure re-plans."""
from __future__ import annotations

import json
import tomllib
import uuid
from pathlib import Path

import pyspark
import pytest
import requests

from fraudpipe import contracts
from fraudpipe.config import SparkConfig
from fraudpipe.contracts import PROJECT_ROOT
from fraudpipe.errors import StreamError
from spark_apps.stream import jvm_source
from spark_apps.stream.jvm_supervisor import unknown_schema_id


def test_the_jars_are_those_of_the_pinned_pyspark() -> None:
    pins = [d for d in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
            if d.startswith("pyspark")]
    assert pins == [f"pyspark=={pyspark.__version__}"]
    assert jvm_source.packages() == [f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}",
                                     f"org.apache.spark:spark-avro_2.13:{pyspark.__version__}"]


def make_jars(directory: Path, names: list[str]) -> Path:
    directory.mkdir()
    for name in names:
        (directory / name).write_bytes(b"PK")
    return directory


def test_a_jar_directory_gives_what_spark_lacks(tmp_path: Path) -> None:
    v = pyspark.__version__
    directory = make_jars(tmp_path / "jars", [f"spark-sql-kafka-0-10_2.13-{v}.jar", f"spark-avro_2.13-{v}.jar",
                                              "kafka-clients-3.9.2.jar", "commons-pool2-2.13.1.jar",
                                              "scala-library-2.13.15.jar", "hadoop-client-api-3.5.0.jar"])
    names = {j.name for j in jvm_source.jar_files(directory)}
    # scala and hadoop come with pyspark; a second copy on the classpath only invites conflicts
    assert names == {f"spark-sql-kafka-0-10_2.13-{v}.jar", f"spark-avro_2.13-{v}.jar", "kafka-clients-3.9.2.jar",
                     "commons-pool2-2.13.1.jar"}
    options = jvm_source.session_options(SparkConfig(kafka_source="jvm", kafka_jars_dir=str(directory)))
    assert set(options) == {"spark.jars"} and len(options["spark.jars"].split(",")) == 4
    assert jvm_source.session_options(SparkConfig(kafka_source="python", kafka_jars_dir=str(directory))) == {}
    assert jvm_source.session_options(SparkConfig(kafka_source="jvm")) == {
        "spark.jars.packages": ",".join(jvm_source.packages())}


def test_jars_of_another_spark_version_are_refused(tmp_path: Path) -> None:
    directory = make_jars(tmp_path / "jars", ["spark-sql-kafka-0-10_2.13-3.5.1.jar", "spark-avro_2.13-3.5.1.jar"])
    with pytest.raises(StreamError, match=f"spark-sql-kafka-0-10_2.13-{pyspark.__version__}.jar"):
        jvm_source.jar_files(directory)


def write_offsets(checkpoint: Path, batch: int, watermark_ms: int, *, complete: bool = True) -> None:
    offsets = checkpoint / "offsets"
    offsets.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"batchWatermarkMs": watermark_ms, "batchTimestampMs": 1, "conf": {}})
    lines = ["v1", meta, json.dumps({"t": {"0": 10, "1": 12}})] if complete else ["v1"]
    (offsets / str(batch)).write_text("\n".join(lines))


def test_the_watermark_is_the_newest_batch_of_the_offsets_log(tmp_path: Path) -> None:
    assert jvm_source.newest_batch_watermark(str(tmp_path / "none")) == 0
    write_offsets(tmp_path, 0, 0)
    write_offsets(tmp_path, 1, 61_000)
    assert jvm_source.newest_batch_watermark(str(tmp_path)) == 61_000
    write_offsets(tmp_path, 2, 0, complete=False)  # being written: the batch before it is still the one running
    assert jvm_source.newest_batch_watermark(str(tmp_path)) == 61_000


def test_only_the_marked_failure_re_plans() -> None:
    assert unknown_schema_id(RuntimeError(f"[USER_RAISED_EXCEPTION] {jvm_source.UNKNOWN_ID_MARKER}32767 SQLSTATE")) == 32767
    assert unknown_schema_id(RuntimeError("Job aborted: OutOfMemoryError")) is None


def register(url: str, subject: str, schema: str) -> int:
    response = requests.post(f"{url}/subjects/{subject}/versions", json={"schema": schema}, timeout=10)
    response.raise_for_status()
    return response.json()["id"]


@pytest.mark.integration
def test_writer_schemas_come_from_the_topic_subject_and_new_ids_are_classified(registry) -> None:
    topic = f"jvm-{uuid.uuid4().hex[:8]}"
    v1 = register(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(1))
    planned = jvm_source.plan_writer_schemas(registry.url, 1, topic=topic)
    assert set(planned.decodable) == {v1} and not planned.undecodable
    v2 = register(registry.url, contracts.value_subject(topic), contracts.transaction_schema_str(2))
    label = register(registry.url, f"{topic}-labels-value", contracts.label_schema_str())
    replanned = jvm_source.plan_writer_schemas(registry.url, 1, topic=topic, previous=planned,
                                               new_ids=(v2, label, 987_654))
    assert set(replanned.decodable) == {v1, v2}  # v2 resolves to the v1 reader schema
    assert replanned.undecodable == {label, 987_654}  # a label is no transaction; an unknown id is garbage
