package store

// IngestKeysSQL is the query of Store.IngestKeys, for the modern-ClickHouse check.
const IngestKeysSQL = credentialsSelect + "ingest_keys" + credentialsGroup
