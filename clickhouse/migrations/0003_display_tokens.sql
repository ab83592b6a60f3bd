-- Display tokens: read-only credentials for unattended screens (TV walls), created and revoked
-- by an admin. Every node reads this table every few seconds into memory, so a revocation
-- reaches every node behind the load balancer within seconds.
--
-- An append-only log of events: a row with revoked = 0 when a token is created, a copy of it
-- with revoked = 1 when it is revoked. A token's state is GROUP BY id with max(revoked):
-- revocation is final, so the result does not depend on merges or on the order of rows, and
-- it reads the same through a Distributed table (ReplacingMergeTree would need FINAL, and
-- LIMIT BY needs a total order that a one-second changed_at does not give).
-- Only the SHA-256 of the token's secret is stored, never the secret.
CREATE TABLE IF NOT EXISTS display_tokens (
    id            String,
    name          String,
    secret_sha256 String,
    created_at    DateTime,
    revoked       UInt8,
    changed_at    DateTime
) ENGINE = MergeTree
ORDER BY (id, changed_at)
