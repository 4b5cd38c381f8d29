"""One root exception for everything fraudpipe raises on purpose, one subclass per domain."""
from __future__ import annotations


class FraudpipeError(Exception):
    """Root of every error fraudpipe raises deliberately."""


class ConfigError(FraudpipeError):
    """config.yml or an environment override is invalid; the message names the key and the file."""


class SchemaError(FraudpipeError):
    """A schema file or a schema text is not valid Avro."""


class SerializationError(FraudpipeError):
    """A record could not be encoded or a frame could not be decoded."""


class UnknownSchemaIdError(SerializationError):
    """A frame names a schema id that the registry does not know."""

    def __init__(self, schema_id: int, detail: str = "") -> None:
        self.schema_id = schema_id
        super().__init__(f"unknown schema id {schema_id}" + (f": {detail}" if detail else ""))


class BrokerError(FraudpipeError):
    """The embedded broker could not be started, reached or stopped."""


class StoreError(FraudpipeError):
    """A read or write against the store failed; retriable says whether retrying may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


class RegistryError(FraudpipeError):
    """A Schema Registry request failed, with the Confluent error code when there is one."""

    def __init__(self, message: str, *, error_code: int = 50001, http_status: int = 500) -> None:
        self.error_code = error_code
        self.http_status = http_status
        super().__init__(message)

    def __str__(self) -> str:  # keep the code visible wherever the error is logged
        return f"{super().__str__()} (error_code {self.error_code})"


class ConnectError(FraudpipeError):
    """A Kafka-Connect-compatible worker request or task failed."""

    def __init__(self, message: str, *, http_status: int = 500) -> None:
        self.http_status = http_status
        super().__init__(message)


class ProducerError(FraudpipeError):
    """The transaction producer could not start or lost records."""


class StreamError(FraudpipeError):
    """The Spark streaming job could not start or run."""


class HistoryStoreError(StreamError):
    """The stream's per-sender history files beside the checkpoint cannot be read or written."""


class ModelError(FraudpipeError):
    """Training failed or a model version is missing or unreadable."""


class JavaNotFoundError(FraudpipeError):
    """Spark needs Java 17+ and it is missing or too old."""


class ConnectorConfigError(ConnectError):
    """A connector config is invalid; `errors` maps each bad key to what is wrong with it."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None) -> None:
        self.errors = dict(errors or {})
        super().__init__(message, http_status=400)


class DashboardError(FraudpipeError):
    """A dashboard request could not be served; http_status says whose fault it was (4xx: the caller's)."""

    def __init__(self, message: str, *, http_status: int = 400) -> None:
        self.http_status = http_status
        super().__init__(message)


class DatasetError(ModelError):
    """An input dataset file (labelled transactions) is missing, unreadable or malformed; the message says what."""


class RealstackError(FraudpipeError):
    """The real-stack bench (Apache Kafka and Cassandra from Maven jars) could not be fetched, started or reached."""
