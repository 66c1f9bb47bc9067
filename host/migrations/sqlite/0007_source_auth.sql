-- How a source's senders authenticate (sources::auth::SourceAuth as JSON, with its secrets,
-- like `secret`). NULL for standard-webhooks sources, whose `secret` is their signature.
-- Ingest refuses a source of any other format without one, so the API now makes new sources
-- declare it (or opt out with {"type": "none"}).
ALTER TABLE sources ADD COLUMN auth TEXT;

-- Sources declared before this change accepted anyone. They keep doing so, now explicitly, so
-- nothing breaks on upgrade and the API shows them as unauthenticated.
UPDATE sources SET auth = '{"type":"none"}' WHERE format != 'standard-webhooks';
