"""fraudpipe's Confluent-compatible Schema Registry for the embedded stack.

`app` holds the REST routes, `service` the registry rules, `references` schema references
(resolution, referrers), `storage` the durable SQLite state and `migrations` its tables,
`compatibility` the Avro reader/writer rules and `server` runs it with waitress.
"""
