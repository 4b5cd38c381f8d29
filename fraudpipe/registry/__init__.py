"""fraudpipe's Confluent-compatible Schema Registry for the embedded stack.

`app` holds the REST routes, `service` the registry rules, `storage` the durable SQLite
state, `compatibility` the Avro reader/writer rules and `server` runs it with waitress.
"""
