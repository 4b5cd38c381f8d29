# fraudpipe's one application image: the producer, the dashboard, the topic and
# connector one-shots, KMeans training, and the Spark cluster itself.
#
# Spark master, workers and the stream driver all run from this image (Spark comes
# from the pyspark wheel, `spark-class` / `spark-submit` are on PATH), so driver and
# executors share one Python, one pyspark and one copy of fraudpipe: the Python data
# source and the scoring code that executors unpickle import the same modules.
# Build from the repository root: docker build -f docker/app.Dockerfile .
FROM python:3.11-slim-bookworm

# Java 17 runs Spark; curl serves healthchecks and register-connectors.sh; procps
# gives Spark's launcher scripts `ps`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl procps \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYSPARK_PYTHON=python3 \
    PYSPARK_DRIVER_PYTHON=python3 \
    SPARK_WORKER_DIR=/data/spark-work \
    SPARK_LOCAL_DIRS=/tmp/spark

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
# The production stack stores in Cassandra: the [cassandra] extra is part of the image.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['cassandra']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps -e . \
 && chmod 0755 docker/register-connectors.sh

# spark.kafka_source=jvm: spark-sql-kafka-0-10 and spark-avro at the installed pyspark
# version, with the dependencies Spark does not ship, resolved once by Spark's own Ivy from
# Maven Central, so no container downloads anything at run time.
RUN python -m spark_apps.stream.jvm_source /opt/spark-jars

# Run unprivileged. /app stays root's and read-only to the app: everything written goes
# to /data (models, training datasets, Spark checkpoints and work dirs) or /tmp. Compose
# mounts named volumes on these directories, and a new volume takes the ownership of the
# directory it is mounted on, so each must exist here (tests/unit/test_compose.py checks).
RUN useradd --create-home --uid 10001 fraudpipe \
 && mkdir -p /data/models /data/datasets /data/checkpoints /data/spark-work /tmp/spark \
 && chown -R fraudpipe:fraudpipe /data /tmp/spark
USER fraudpipe

CMD ["fraudpipe", "--help"]
