-- A dead letter replayed by re-running the current plugin chain is superseded by the new
-- deliveries that run queued: it stays for the record but is never replayed again.
ALTER TABLE deliveries ADD COLUMN superseded_at INTEGER;
