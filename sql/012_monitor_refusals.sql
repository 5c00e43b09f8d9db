-- The monitor keeps the machine code each answered error carried (INVALID_KEY, CAP_REACHED,
-- RATE_LIMITED, INVALID_INPUT, INTERNAL, ...) next to its sentence in summary, so a refused
-- call reads as what the client was told and the screen can filter by that code.
-- Rows written before this migration, and rows of calls that succeeded, have no code.
ALTER TABLE gateway_events ADD COLUMN code text;
CREATE INDEX gateway_events_code ON gateway_events (code, id DESC) WHERE code IS NOT NULL;
