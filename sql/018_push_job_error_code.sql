-- Why a chunk job last failed, as the gateway's error code (NETLIFY_TOKEN_REJECTED,
-- NETLIFY_REFUSED, NETLIFY_ERROR, PARTS_INCOMPLETE, ...) beside last_error's words, so that a
-- client tells a refusal no retry can fix (Netlify refused the gateway's token) from a failure
-- that may pass, without reading prose. NULL: no failure, or one without a code.
ALTER TABLE push_jobs ADD COLUMN last_error_code text;
