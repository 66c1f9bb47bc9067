-- W3C trace context: the `traceparent` an event arrived with, and the one each of its
-- deliveries sends (the same trace, a new parent id).
ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE deliveries ADD COLUMN traceparent TEXT;
