-- spend_credit holds its profile's lock for less time, and the lock is a row update. Spends of one
-- profile run one after the other, so the time a spend holds its lock (until its commit) bounds a
-- busy profile's shipments per second, as the row lock bounds PostgreSQL's own single-row UPDATE.
--
-- What does not depend on the spends before this one now runs before the lock, in parallel with
-- them: finding the profile, its current period and plan, and the answer of a replayed key; and
-- inserting the shipment row (taken back with DELETE when no credit is left). The lock is the
-- UPDATE of the profile's row in credit_spend_counters (the advisory lock of 0031 was slower to
-- hand over under load than a row lock). Under it remain the reads that spends change (the key
-- again, the units spent of the period and of the purchases, through the unique unit indexes)
-- and the two inserts that depend on them. The rules, the outcomes and the rows written are
-- those of 0050; credit_usage stays the only record of what was spent and of every balance.
--
-- The period and plan are read before the lock: a spend whose period changes while it waits
-- takes its credit as of the moment it read them, as if it had been served just before the
-- change (monthly credits of a period only ever get used, so "monthly first" holds for the period
-- it read).

-- One row per profile that has spent: the row spend_credit updates to serialize the profile's
-- spends, counting them. `spent` always equals the profile's credit_usage rows (the counter moves
-- in the transaction that inserts the row, and back when it inserts none); the view
-- credit_spend_counter_drift lists any profile where it does not, and is empty.
CREATE TABLE credit_spend_counters (
    profile_id uuid PRIMARY KEY REFERENCES profiles (profile_id) ON DELETE CASCADE,
    spent      bigint NOT NULL CHECK (spent >= 0)
);
INSERT INTO credit_spend_counters (profile_id, spent)
SELECT profile_id, count(*) FROM credit_usage GROUP BY profile_id;

CREATE VIEW credit_spend_counter_drift AS
SELECT coalesce(c.profile_id, u.profile_id) AS profile_id,
       coalesce(c.spent, 0) AS counted,
       coalesce(u.spent, 0) AS in_credit_usage
FROM credit_spend_counters c
FULL JOIN (SELECT profile_id, count(*) AS spent FROM credit_usage GROUP BY profile_id) u
  ON u.profile_id = c.profile_id
WHERE coalesce(c.spent, 0) <> coalesce(u.spent, 0);

-- A shipment that spend_credit inserted and took back in the same transaction is gone at commit;
-- only a shipment still there must have its credit. The usage check comes first, so a normal
-- commit pays for one index probe as before.
CREATE OR REPLACE FUNCTION shipments_have_credit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM credit_usage u WHERE u.shipment_id = NEW.shipment_id)
       AND EXISTS (SELECT 1 FROM shipments s WHERE s.shipment_id = NEW.shipment_id) THEN
        RAISE EXCEPTION 'shipment % has no credit_usage row', NEW.shipment_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- One row out instead of a set: the same columns, without a tuplestore per call.
DROP FUNCTION spend_credit(uuid, text, text, uuid, text, text, integer, text);

-- Outcomes as in 0031: created, replayed, key_reused, insufficient, no_profile.
CREATE FUNCTION spend_credit(
    p_auth_user_id uuid,
    p_idempotency_key text,
    p_request_hash text,
    p_shipment_id uuid,
    p_recipient_name text,
    p_destination_postal_code text,
    p_weight_grams integer,
    p_reference text,
    OUT outcome text,
    OUT shipment_id uuid,
    OUT source_type text,
    OUT purchase_id uuid,
    OUT balance jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    cur record;          -- the profile, its period and plan, and what the key answered before
    fresh record;        -- under the lock: the key again, and what the grants have left
    prior record;        -- the answer of a key that raced us
    monthly_limit integer := 0;
    monthly_used integer := 0;
    extra_remaining integer;
    chosen_purchase uuid;
    chosen_unit integer;
BEGIN
    SELECT p.profile_id,
           cp.period_start AS current_start,
           coalesce(cp.period_start, p.current_period_start) AS period_start,
           coalesce(cp.period_end, p.current_period_end) AS period_end,
           coalesce(pl.monthly_credits, 0) AS monthly_credits,
           r.request_hash, r.shipment_id AS prior_shipment_id, r.balance AS prior_balance,
           u.source_type AS prior_source_type, u.purchase_id AS prior_purchase_id
      INTO cur
      FROM profiles p
      LEFT JOIN LATERAL profile_current_period(p.profile_id) cp ON true
      LEFT JOIN plans pl ON pl.plan_id = p.plan_id
      LEFT JOIN shipment_requests r
        ON r.profile_id = p.profile_id AND r.idempotency_key = p_idempotency_key
      LEFT JOIN credit_usage u ON u.shipment_id = r.shipment_id
     WHERE p.auth_user_id = p_auth_user_id;
    IF NOT FOUND THEN
        outcome := 'no_profile';
        RETURN;
    END IF;
    -- A key answered before is final (its spend committed): no lock needed to replay it.
    IF cur.request_hash IS NOT NULL THEN
        IF cur.request_hash <> p_request_hash THEN
            outcome := 'key_reused';
        ELSE
            outcome := 'replayed';
            shipment_id := cur.prior_shipment_id;
            source_type := cur.prior_source_type;
            purchase_id := cur.prior_purchase_id;
            balance := cur.prior_balance;
        END IF;
        RETURN;
    END IF;

    -- Its foreign key also locks the profile against deletion (FOR KEY SHARE) until we commit.
    INSERT INTO shipments (shipment_id, profile_id, recipient_name, destination_postal_code,
                           weight_grams, reference)
    VALUES (p_shipment_id, cur.profile_id, p_recipient_name, p_destination_postal_code,
            p_weight_grams, p_reference);

    -- Serialize on the profile: its counter row stays locked until we commit or roll back, and
    -- every statement after this one sees the spends committed before ours (read committed takes
    -- a fresh snapshot per statement). A profile's first spend creates the row.
    UPDATE credit_spend_counters c SET spent = c.spent + 1 WHERE c.profile_id = cur.profile_id;
    IF NOT FOUND THEN
        INSERT INTO credit_spend_counters AS c (profile_id, spent) VALUES (cur.profile_id, 1)
        ON CONFLICT (profile_id) DO UPDATE SET spent = c.spent + 1;
    END IF;

    -- Purchased credits go in spending order: soonest expiry first, then the oldest; expired
    -- purchases are not spendable. The highest unit of a grant is how much of it is spent.
    WITH live AS (
        SELECT cp.purchase_id, cp.expires_at, cp.created_at, cp.credits_amount,
               cp.credits_amount - (SELECT coalesce(max(c.unit), 0) FROM credit_usage c
                                     WHERE c.purchase_id = cp.purchase_id
                                       AND c.source_type = 'purchase') AS remaining
          FROM credit_purchases cp
         WHERE cp.profile_id = cur.profile_id
           AND (cp.expires_at IS NULL OR cp.expires_at > now())
    ), first AS (
        SELECT l.purchase_id, l.credits_amount, l.remaining FROM live l WHERE l.remaining > 0
         ORDER BY l.expires_at NULLS LAST, l.created_at, l.purchase_id
         LIMIT 1
    )
    SELECT (SELECT r.request_hash FROM shipment_requests r
             WHERE r.profile_id = cur.profile_id
               AND r.idempotency_key = p_idempotency_key) AS request_hash,
           (SELECT coalesce(max(c.unit), 0) FROM credit_usage c
             WHERE c.profile_id = cur.profile_id AND c.source_type = 'monthly'
               AND c.period_start = cur.current_start) AS monthly_used,
           f.purchase_id, f.credits_amount - f.remaining + 1 AS unit,
           (SELECT coalesce(sum(l.remaining), 0)::integer FROM live l) AS extra_remaining
      INTO fresh
      FROM (SELECT 1) one LEFT JOIN first f ON true;

    -- The same key raced us and was answered while we waited: answer as it did, take ours back.
    IF fresh.request_hash IS NOT NULL THEN
        DELETE FROM shipments s WHERE s.shipment_id = p_shipment_id;
        UPDATE credit_spend_counters c SET spent = c.spent - 1 WHERE c.profile_id = cur.profile_id;
        SELECT r.request_hash, r.shipment_id, r.balance, u.source_type, u.purchase_id
          INTO prior
          FROM shipment_requests r LEFT JOIN credit_usage u ON u.shipment_id = r.shipment_id
         WHERE r.profile_id = cur.profile_id AND r.idempotency_key = p_idempotency_key;
        IF prior.request_hash <> p_request_hash THEN
            outcome := 'key_reused';
        ELSE
            outcome := 'replayed';
            shipment_id := prior.shipment_id;
            source_type := prior.source_type;
            purchase_id := prior.purchase_id;
            balance := prior.balance;
        END IF;
        RETURN;
    END IF;

    -- Monthly credits of the current period first, then purchased ones.
    IF cur.current_start IS NOT NULL THEN
        monthly_limit := cur.monthly_credits;
        monthly_used := fresh.monthly_used;
    END IF;
    extra_remaining := fresh.extra_remaining;
    IF monthly_used < monthly_limit THEN
        monthly_used := monthly_used + 1;
        chosen_unit := monthly_used;
    ELSIF fresh.purchase_id IS NOT NULL THEN
        chosen_purchase := fresh.purchase_id;
        chosen_unit := fresh.unit;
        extra_remaining := extra_remaining - 1;
    ELSE
        DELETE FROM shipments s WHERE s.shipment_id = p_shipment_id;
        UPDATE credit_spend_counters c SET spent = c.spent - 1 WHERE c.profile_id = cur.profile_id;
        outcome := 'insufficient';
        RETURN;
    END IF;

    source_type := CASE WHEN chosen_purchase IS NULL THEN 'monthly' ELSE 'purchase' END;
    balance := jsonb_build_object(
        'monthly', jsonb_build_object(
            'limit', monthly_limit,
            'used', monthly_used,
            'remaining', greatest(monthly_limit - monthly_used, 0),
            'period_start', cur.period_start,
            'period_end', cur.period_end),
        'extra', jsonb_build_object('remaining', extra_remaining),
        'total_remaining', greatest(monthly_limit - monthly_used, 0) + extra_remaining);

    -- Both rows in one statement: the usage row (its unit indexes refuse a credit spent twice,
    -- whatever the code above did) and the answer a replay of the key will return.
    WITH used AS (
        INSERT INTO credit_usage (shipment_id, profile_id, source_type, purchase_id,
                                  period_start, period_end, unit)
        VALUES (p_shipment_id, cur.profile_id, source_type, chosen_purchase,
                CASE WHEN chosen_purchase IS NULL THEN cur.period_start END,
                CASE WHEN chosen_purchase IS NULL THEN cur.period_end END,
                chosen_unit)
    )
    INSERT INTO shipment_requests (profile_id, idempotency_key, request_hash, shipment_id,
                                   balance)
    VALUES (cur.profile_id, p_idempotency_key, p_request_hash, p_shipment_id, balance);

    outcome := 'created';
    shipment_id := p_shipment_id;
    purchase_id := chosen_purchase;
END $$;
