-- The credit ledger. credit_usage is the only record of what was spent: one row per shipment. The
-- grants are plans.monthly_credits (per subscription period, read from the profile) and
-- credit_purchases.credits_amount (until expires_at). Balances are views over these; there is no
-- counter to keep in step.

-- Rows the old system wrote are kept as they were; every new row is checked.
ALTER TABLE shipments
    ADD CONSTRAINT shipments_recipient_name_check CHECK (btrim(recipient_name) <> '') NOT VALID,
    ADD CONSTRAINT shipments_postal_code_check
        CHECK (destination_postal_code ~ '^[0-9]{8}$') NOT VALID,
    ADD CONSTRAINT shipments_weight_check CHECK (weight_grams BETWEEN 1 AND 30000) NOT VALID,
    -- Targets of the composite keys below: a usage row belongs to its shipment's profile.
    ADD CONSTRAINT shipments_profile_key UNIQUE (shipment_id, profile_id);
ALTER TABLE credit_purchases
    ADD CONSTRAINT credit_purchases_profile_key UNIQUE (purchase_id, profile_id);

CREATE TABLE credit_usage (
    shipment_id  uuid PRIMARY KEY,
    profile_id   uuid NOT NULL,
    source_type  text NOT NULL CHECK (source_type IN ('monthly', 'purchase')),
    purchase_id  uuid,
    -- The subscription period the credit counted against (monthly credits only).
    period_start timestamptz,
    period_end   timestamptz,
    -- Which credit of its grant this is, 1..limit. The unique indexes below make it impossible for
    -- two shipments to spend the same credit, whatever the application does; and the highest unit
    -- of a grant is how many of its credits are gone, found through an index instead of a count.
    unit         integer NOT NULL CHECK (unit >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (shipment_id, profile_id) REFERENCES shipments (shipment_id, profile_id),
    FOREIGN KEY (purchase_id, profile_id) REFERENCES credit_purchases (purchase_id, profile_id),
    CHECK ((source_type = 'purchase') = (purchase_id IS NOT NULL)),
    CHECK ((source_type = 'monthly') = (period_start IS NOT NULL AND period_end IS NOT NULL))
);
CREATE UNIQUE INDEX credit_usage_monthly_unit_key
    ON credit_usage (profile_id, period_start, unit) WHERE source_type = 'monthly';
CREATE UNIQUE INDEX credit_usage_purchase_unit_key
    ON credit_usage (purchase_id, unit) WHERE source_type = 'purchase';

-- The ledger is append-only: a spent credit is never edited or taken back.
CREATE FUNCTION credit_usage_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_usage is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER credit_usage_append_only BEFORE UPDATE OR DELETE ON credit_usage
    FOR EACH STATEMENT EXECUTE FUNCTION credit_usage_append_only();

-- Idempotency records: the first 201 answer to (profile, Idempotency-Key), kept with the request's
-- hash so the same key with another body can be refused.
CREATE TABLE shipment_requests (
    profile_id      uuid NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    shipment_id     uuid NOT NULL,
    balance         jsonb NOT NULL,     -- the balance the first answer reported
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- No foreign key to shipments: spend_credit writes both in one transaction and an answer is
    -- a copy of what was sent, not a fact of the ledger (it saves a key check per shipment).
    PRIMARY KEY (profile_id, idempotency_key)
);

-- Per purchase: how much of it is spent and whether what is left can still be spent.
CREATE VIEW credit_purchase_balances AS
SELECT p.purchase_id,
       p.profile_id,
       p.credits_amount,
       p.expires_at,
       p.created_at,
       u.used,
       p.credits_amount - u.used AS remaining,
       (p.expires_at IS NULL OR p.expires_at > now()) AS spendable
FROM credit_purchases p
CROSS JOIN LATERAL (
    -- (source_type spelled out so the partial index on purchase units serves the count)
    SELECT count(*)::integer AS used FROM credit_usage c
    WHERE c.purchase_id = p.purchase_id AND c.source_type = 'purchase'
) u;

-- Per profile: the monthly credits of the current period and the spendable purchased credits.
-- Monthly credits exist only while now() is inside the profile's subscription period; a plan
-- changed to fewer credits than already used mid-period leaves none (never a negative balance).
CREATE VIEW credit_balances AS
SELECT pr.profile_id,
       m.monthly_limit,
       m.monthly_used,
       greatest(m.monthly_limit - m.monthly_used, 0) AS monthly_remaining,
       pr.current_period_start AS period_start,
       pr.current_period_end AS period_end,
       x.extra_remaining,
       greatest(m.monthly_limit - m.monthly_used, 0) + x.extra_remaining AS total_remaining
FROM profiles pr
LEFT JOIN plans pl ON pl.plan_id = pr.plan_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN pr.current_period_start <= now() AND now() < pr.current_period_end
                THEN coalesce(pl.monthly_credits, 0) ELSE 0 END AS monthly_limit,
           (SELECT count(*)::integer FROM credit_usage c
             WHERE c.profile_id = pr.profile_id AND c.source_type = 'monthly'
               AND c.period_start = pr.current_period_start
               AND pr.current_period_start <= now() AND now() < pr.current_period_end
           ) AS monthly_used
) m
CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.remaining), 0)::integer AS extra_remaining
    FROM credit_purchase_balances b
    WHERE b.profile_id = pr.profile_id AND b.spendable
) x;

-- Spend one credit on a new shipment for the profile of `p_auth_user_id`, or say why not. It holds
-- the profile's advisory lock until the transaction ends, so the spends of one profile happen one
-- after the other while other profiles proceed in parallel; everything the lock covers is three
-- reads and three inserts. Outcomes:
--   created       the shipment, its credit_usage row and the idempotency record were inserted
--   replayed      the key was used before with the same request: the first answer, nothing spent
--   key_reused    the key was used before with another request: nothing written
--   insufficient  no credit left: nothing written
--   no_profile    the user has no profile: nothing written
CREATE FUNCTION spend_credit(
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

    SELECT p.current_period_start AS period_start, p.current_period_end AS period_end,
           (p.current_period_start <= now() AND now() < p.current_period_end) AS in_period,
           coalesce(pl.monthly_credits, 0) AS monthly_credits,
           (SELECT coalesce(max(c.unit), 0) FROM credit_usage c
             WHERE c.profile_id = p.profile_id AND c.source_type = 'monthly'
               AND c.period_start = p.current_period_start) AS monthly_used,
           r.request_hash, r.shipment_id AS prior_shipment_id, r.balance AS prior_balance,
           u.source_type AS prior_source_type, u.purchase_id AS prior_purchase_id
      INTO cur
      FROM profiles p
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
