-- Prices in SQL: the worst case ADMIT reserves, and the sell rule in force. The exact cost of
-- a finished call (cache kinds, tiers) is computed by shared/billing/pricing.py from the same
-- price row; these are the bounds, priced the same way.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- The cost of input and output tokens at a price version (cache reads only make a call
-- cheaper; a prompt that may write the cache is priced with kx_cache_writing first), at the
-- long-context tier when the input is above its threshold, plus the per-call fee.
CREATE OR REPLACE FUNCTION kx_cost(p model_prices, p_input bigint, p_output bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p.long_context_threshold IS NOT NULL AND p_input > p.long_context_threshold
                THEN p_input * p.lc_input_nanos + p_output * p.lc_output_nanos
                ELSE p_input * p.input_nanos + p_output * p.output_nanos END + p.request_nanos
$$;

-- A price whose input rate is the dearest way a prompt token may be billed when the request
-- marks blocks for the provider's cache (Anthropic's cache_control: a write costs 1.25x input
-- for five minutes, 2x for an hour), so the bound priced with it still covers the bill. The
-- same for a fixed sell rule's rates; a markup rule (NULL rates) is left as it is.
CREATE OR REPLACE FUNCTION kx_cache_writing(p model_prices) RETURNS model_prices
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    p.input_nanos := greatest(p.input_nanos, p.cache_write_5m_nanos, p.cache_write_1h_nanos);
    p.lc_input_nanos := greatest(p.lc_input_nanos, p.lc_cache_write_5m_nanos, p.lc_cache_write_1h_nanos);
    RETURN p;
END $$;

CREATE OR REPLACE FUNCTION kx_cache_writing(s sell_prices) RETURNS sell_prices
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    s.input_nanos := greatest(s.input_nanos, s.cache_write_5m_nanos, s.cache_write_1h_nanos);
    RETURN s;
END $$;

-- What a call that cost p_cost sells for under rule s: cost x (1 + markup), rounded half up
-- to a whole nano (shared/billing/pricing.py: marked_up); a fixed rule's own rates; no rule
-- (NULL row): at cost.
CREATE OR REPLACE FUNCTION kx_sell(p_cost bigint, s sell_prices, p_input bigint, p_output bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s.kind
        WHEN 'markup' THEN (p_cost * (10000 + s.markup_bp) + 5000) / 10000
        WHEN 'fixed' THEN p_input * s.input_nanos + p_output * s.output_nanos + s.request_nanos
        ELSE p_cost END
$$;

-- The sell rule in force at p_at for a customer on a plan and a model: per scope
-- (customer+model, customer, plan+model, plan) the newest version in force; the first scope
-- whose rule is not 'inherit' wins. NULL (every column) when none applies: sell at cost.
CREATE OR REPLACE FUNCTION kx_sell_rule(p_customer bigint, p_plan bigint, p_model bigint, p_at timestamptz)
RETURNS sell_prices
LANGUAGE sql STABLE AS $$
    SELECT newest.* FROM (
        SELECT DISTINCT ON (s.customer_id IS NOT NULL, s.model_id IS NOT NULL) s.*
        FROM sell_prices s
        WHERE (s.customer_id = p_customer OR s.plan_id = p_plan)
          AND (s.model_id = p_model OR s.model_id IS NULL)
          AND s.effective_from <= p_at
        ORDER BY s.customer_id IS NOT NULL, s.model_id IS NOT NULL, s.effective_from DESC, s.id DESC
    ) newest
    WHERE newest.kind <> 'inherit'
    ORDER BY newest.customer_id IS NOT NULL DESC, newest.model_id IS NOT NULL DESC
    LIMIT 1
$$;
