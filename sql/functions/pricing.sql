-- Prices in SQL: the worst case ADMIT reserves, and the sell rule in force. The exact cost of
-- a finished call (cache kinds, tiers) is computed by shared/billing/pricing.py from the same
-- price row; these are the bounds, priced the same way.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- The cost of input and output tokens at a price version (no cache reads or writes: the
-- gateway sends no cache_control, and reads only make a call cheaper), at the long-context
-- tier when the input is above its threshold, plus the per-call fee.
CREATE OR REPLACE FUNCTION kx_cost(p model_prices, p_input bigint, p_output bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p.long_context_threshold IS NOT NULL AND p_input > p.long_context_threshold
                THEN p_input * p.lc_input_nanos + p_output * p.lc_output_nanos
                ELSE p_input * p.input_nanos + p_output * p.output_nanos END + p.request_nanos
$$;

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
