-- Subscription periods start when they start, not when they are paid. A customer may pay the
-- next invoice early: its period (from its due date) is recorded here and only becomes the
-- current one on its first day, so paying early never takes this month's credits away.
--
-- Every paid period is one row, keyed by the Asaas payment that paid it (applying the same
-- payment twice changes nothing). profiles.current_period_* still holds the latest paid period;
-- the current period is whichever recorded period contains now(), the latest starting one when
-- periods overlap, and monthly credits exist only inside it.

CREATE TABLE subscription_periods (
    payment_id      text PRIMARY KEY,
    profile_id      uuid NOT NULL REFERENCES profiles (profile_id) ON DELETE CASCADE,
    subscription_id text NOT NULL,
    plan_id         text REFERENCES plans (plan_id),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end > period_start)
);
CREATE INDEX subscription_periods_profile_idx ON subscription_periods (profile_id, period_start);

-- The profile's period containing now(): the latest paid one (on the profile) or any recorded
-- one; no row when there is none.
CREATE FUNCTION profile_current_period(p_profile_id uuid)
RETURNS TABLE (period_start timestamptz, period_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.period_start, c.period_end
      FROM (SELECT p.current_period_start AS period_start, p.current_period_end AS period_end
              FROM profiles p WHERE p.profile_id = p_profile_id
            UNION ALL
            SELECT s.period_start, s.period_end
              FROM subscription_periods s WHERE s.profile_id = p_profile_id) c
     WHERE c.period_start <= now() AND now() < c.period_end
     ORDER BY c.period_start DESC
     LIMIT 1
$$;

-- As in 0031, with the current period from profile_current_period; with none, the latest paid
-- period is shown (and no monthly credits).
CREATE OR REPLACE VIEW credit_balances AS
SELECT pr.profile_id,
       m.monthly_limit,
       m.monthly_used,
       greatest(m.monthly_limit - m.monthly_used, 0) AS monthly_remaining,
       coalesce(cp.period_start, pr.current_period_start) AS period_start,
       coalesce(cp.period_end, pr.current_period_end) AS period_end,
       x.extra_remaining,
       greatest(m.monthly_limit - m.monthly_used, 0) + x.extra_remaining AS total_remaining
FROM profiles pr
LEFT JOIN plans pl ON pl.plan_id = pr.plan_id
LEFT JOIN LATERAL profile_current_period(pr.profile_id) cp ON true
CROSS JOIN LATERAL (
    SELECT CASE WHEN cp.period_start IS NOT NULL
                THEN coalesce(pl.monthly_credits, 0) ELSE 0 END AS monthly_limit,
           (SELECT count(*)::integer FROM credit_usage c
             WHERE c.profile_id = pr.profile_id AND c.source_type = 'monthly'
               AND c.period_start = cp.period_start
           ) AS monthly_used
) m
CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.remaining), 0)::integer AS extra_remaining
    FROM credit_purchase_balances b
    WHERE b.profile_id = pr.profile_id AND b.spendable
) x;

-- As in 0031, spending from the period profile_current_period gives.
CREATE OR REPLACE FUNCTION spend_credit(
    p_auth_user_id uuid,
    p_idempotency_key text,
    p_request_hash text,
    p_shipment_id uuid,
    p_recipient_name text,
    p_destination_postal_code text,
    p_weight_grams integer,
    p_reference text
) RETURNS TABLE (
    outcome text,
    shipment_id uuid,
    source_type text,
    purchase_id uuid,
    balance jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    v_profile_id uuid;
    cur record;          -- the profile's period and plan, what it spent of them, and the key
    extra record;        -- the purchase to spend and what all live purchases have left
    monthly_limit integer := 0;
    monthly_used integer := 0;
    chosen_purchase uuid;
    chosen_unit integer;
BEGIN
    -- Serialize on the profile (0x63726564 = "cred"). Every statement after this one sees the
    -- spends committed before ours: read committed takes a fresh snapshot per statement.
    SELECT p.profile_id INTO v_profile_id
      FROM profiles p, pg_advisory_xact_lock(x'63726564'::integer, hashtext(p.profile_id::text))
     WHERE p.auth_user_id = p_auth_user_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_profile', NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb;
        RETURN;
    END IF;

    SELECT coalesce(cp.period_start, p.current_period_start) AS period_start,
           coalesce(cp.period_end, p.current_period_end) AS period_end,
           (cp.period_start IS NOT NULL) AS in_period,
           coalesce(pl.monthly_credits, 0) AS monthly_credits,
           (SELECT coalesce(max(c.unit), 0) FROM credit_usage c
             WHERE c.profile_id = p.profile_id AND c.source_type = 'monthly'
               AND c.period_start = cp.period_start) AS monthly_used,
           r.request_hash, r.shipment_id AS prior_shipment_id, r.balance AS prior_balance,
           u.source_type AS prior_source_type, u.purchase_id AS prior_purchase_id
      INTO cur
      FROM profiles p
      LEFT JOIN LATERAL profile_current_period(p.profile_id) cp ON true
      LEFT JOIN plans pl ON pl.plan_id = p.plan_id
      LEFT JOIN shipment_requests r
        ON r.profile_id = p.profile_id AND r.idempotency_key = p_idempotency_key
      LEFT JOIN credit_usage u ON u.shipment_id = r.shipment_id
     WHERE p.profile_id = v_profile_id;

    IF cur.request_hash IS NOT NULL THEN
        IF cur.request_hash <> p_request_hash THEN
            RETURN QUERY SELECT 'key_reused', NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb;
        ELSE
            RETURN QUERY SELECT 'replayed', cur.prior_shipment_id, cur.prior_source_type,
                                cur.prior_purchase_id, cur.prior_balance;
        END IF;
        RETURN;
    END IF;

    -- Purchased credits go in spending order: soonest expiry first, then the oldest; expired
    -- purchases are not spendable. The highest unit of a purchase is how much of it is spent.
    WITH live AS (
        SELECT cp.purchase_id, cp.expires_at, cp.created_at, cp.credits_amount,
               cp.credits_amount - (SELECT coalesce(max(c.unit), 0) FROM credit_usage c
                                     WHERE c.purchase_id = cp.purchase_id
                                       AND c.source_type = 'purchase') AS remaining
          FROM credit_purchases cp
         WHERE cp.profile_id = v_profile_id AND (cp.expires_at IS NULL OR cp.expires_at > now())
    ), first AS (
        SELECT l.purchase_id, l.credits_amount, l.remaining FROM live l WHERE l.remaining > 0
         ORDER BY l.expires_at NULLS LAST, l.created_at, l.purchase_id
         LIMIT 1
    )
    SELECT f.purchase_id, f.credits_amount - f.remaining + 1 AS unit,
           (SELECT coalesce(sum(l.remaining), 0)::integer FROM live l) AS remaining
      INTO extra
      FROM (SELECT 1) one LEFT JOIN first f ON true;

    -- Monthly credits of the current period first, then purchased ones.
    IF cur.in_period THEN
        monthly_limit := cur.monthly_credits;
        monthly_used := cur.monthly_used;
    END IF;
    IF monthly_used < monthly_limit THEN
        monthly_used := monthly_used + 1;
        chosen_unit := monthly_used;
    ELSIF extra.purchase_id IS NOT NULL THEN
        chosen_purchase := extra.purchase_id;
        chosen_unit := extra.unit;
        extra.remaining := extra.remaining - 1;
    ELSE
        RETURN QUERY SELECT 'insufficient', NULL::uuid, NULL::text, NULL::uuid, NULL::jsonb;
        RETURN;
    END IF;

    INSERT INTO shipments (shipment_id, profile_id, recipient_name, destination_postal_code,
                           weight_grams, reference)
    VALUES (p_shipment_id, v_profile_id, p_recipient_name, p_destination_postal_code,
            p_weight_grams, p_reference);

    INSERT INTO credit_usage (shipment_id, profile_id, source_type, purchase_id, period_start,
                              period_end, unit)
    VALUES (p_shipment_id, v_profile_id,
            CASE WHEN chosen_purchase IS NULL THEN 'monthly' ELSE 'purchase' END,
            chosen_purchase,
            CASE WHEN chosen_purchase IS NULL THEN cur.period_start END,
            CASE WHEN chosen_purchase IS NULL THEN cur.period_end END,
            chosen_unit);

    balance := jsonb_build_object(
        'monthly', jsonb_build_object(
            'limit', monthly_limit,
            'used', monthly_used,
            'remaining', greatest(monthly_limit - monthly_used, 0),
            'period_start', cur.period_start,
            'period_end', cur.period_end),
        'extra', jsonb_build_object('remaining', extra.remaining),
        'total_remaining', greatest(monthly_limit - monthly_used, 0) + extra.remaining);

    INSERT INTO shipment_requests (profile_id, idempotency_key, request_hash, shipment_id, balance)
    VALUES (v_profile_id, p_idempotency_key, p_request_hash, p_shipment_id, balance);

    RETURN QUERY SELECT 'created', p_shipment_id,
                        CASE WHEN chosen_purchase IS NULL THEN 'monthly' ELSE 'purchase' END,
                        chosen_purchase, balance;
END $$;
