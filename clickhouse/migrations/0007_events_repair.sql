-- Where the rollup audit (internal/audit) keeps one copy of each event it is about to remove
-- duplicates of. ClickHouse 18.16 can only delete rows by a condition (ALTER TABLE … DELETE, a
-- mutation), which takes every copy of an event, so the audit saves one copy here, deletes,
-- and inserts the copy back; after a crash in between, the next audit puts back whatever this
-- table holds that the raw table lacks. It is empty between audits. Same columns as events
-- (and no materialized view reads it): a column added to events must be added here too.
CREATE TABLE IF NOT EXISTS events_repair AS events
