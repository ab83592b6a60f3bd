-- Accounts: the people who sign in with a username and password, each a viewer (reads the
-- dashboards) or an admin (also manages keys, tokens, accounts and alert rules). Every node
-- reads this table every few seconds into memory, so an account created, changed or deleted
-- on one node takes effect on every node within seconds.
--
-- An append-only log like display_tokens (0003): a row per creation or change, with the whole
-- account as it is after it, and a row with deleted = 1 when it is deleted. An account's state
-- is GROUP BY id with argMax(…, version) (version: nanoseconds, so two changes in one second
-- keep their order) and max(deleted): deletion is final. Only the argon2id hash of a password
-- is stored, never the password.
CREATE TABLE IF NOT EXISTS accounts (
    id            String,
    username      String,
    role          String,
    password_hash String,
    created_at    DateTime,
    deleted       UInt8,
    changed_at    DateTime,
    version       UInt64
) ENGINE = MergeTree
ORDER BY (id, version);
