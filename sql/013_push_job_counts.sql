-- What a chunk job received, kept on the job: its staged parts are deleted once it is done
-- (or expired), and the admin list would otherwise show 0 parts and 0 bytes received for
-- every finished file. Kept current as parts arrive (a part sent again replaces its size),
-- reset when the file is re-admitted in a different number of parts, and taken once more
-- from the staged rows just before they are deleted.
ALTER TABLE push_jobs
    ADD COLUMN received_parts int NOT NULL DEFAULT 0 CHECK (received_parts >= 0),
    ADD COLUMN staged_bytes   bigint NOT NULL DEFAULT 0 CHECK (staged_bytes >= 0);

-- Jobs whose parts are still staged start from them; finished ones keep 0 (their parts are gone).
UPDATE push_jobs j SET received_parts = s.n, staged_bytes = s.bytes
FROM (SELECT job_id, count(*)::int AS n, sum(size)::bigint AS bytes FROM push_parts GROUP BY job_id) s
WHERE s.job_id = j.id;
