-- Stored ingest keys: API keys for POST /v1/events that an admin adds and revokes while the
-- servers run, beside the keys configured in TRUTHBOARD_INGEST_KEYS or secrets.json. Every node
-- reads this table every few seconds into memory (like display_tokens), so a key added or
-- revoked on one node works or is refused on every node within seconds.
--
-- The same append-only log as display_tokens (see 0003_display_tokens.sql): a row with
-- revoked = 0 when a key is created, a copy with revoked = 1 when it is revoked, read with
-- GROUP BY id and max(revoked). Only the SHA-256 of the key's secret is stored, never the key.
CREATE TABLE IF NOT EXISTS ingest_keys (
    id            String,
    name          String,
    secret_sha256 String,
    created_at    DateTime,
    revoked       UInt8,
    changed_at    DateTime
) ENGINE = MergeTree
ORDER BY (id, changed_at)
