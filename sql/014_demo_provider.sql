-- The demo provider: a deterministic local model that only the dev server enables (see
-- shared/providers/demo.py). Its models sit in the price book like any provider's, so caps,
-- allowlists, usage, the monitor and invoices treat its calls as they treat a real one. The
-- dev server adds its model at start; a production database never gets one by itself.
ALTER TABLE models DROP CONSTRAINT models_provider_check;
ALTER TABLE models ADD CONSTRAINT models_provider_check
    CHECK (provider IN ('openai', 'anthropic', 'gemini', 'demo'));
