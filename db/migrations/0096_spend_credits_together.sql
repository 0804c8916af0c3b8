-- Spends of one profile that arrive together are served in one transaction: one lock, one commit.
--
-- A profile's spends run one after the other (0095: its counter row is the lock, held until the
-- commit), so one busy profile's shipments per second are bounded by how long each holds that
-- lock, and most of that is the commit's flush to disk. When several spends of a profile are
-- waiting at once, the API hands them over together (db/credits.py, SpendCombiner) and this
-- function runs spend_credit for each, in arrival order, inside the one statement: the first takes
-- the lock, the others find it theirs already, and a single commit makes all of them durable.
--
-- Each spend is exactly the spend it would have been alone: the same rules, outcomes and rows.
-- A spend sees those before it in the batch (same transaction), so a key used twice in a batch is
-- answered as a replay of its first use, and a grant spent by the first is not spent again by the
-- second. Nothing is half written: if the statement fails, none of the batch's spends is.

CREATE FUNCTION spend_credits(
    p_auth_user_id uuid,
    p_idempotency_keys text[],
    p_request_hashes text[],
    p_shipment_ids uuid[],
    p_recipient_names text[],
    p_destination_postal_codes text[],
    p_weights_grams integer[],
    p_references text[]
) RETURNS TABLE (
    n integer,          -- the spend's place in the arrays, from 1
    outcome text,
    shipment_id uuid,
    source_type text,
    purchase_id uuid,
    balance jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    spent record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_idempotency_keys, 1), 0) LOOP
        SELECT s.outcome, s.shipment_id, s.source_type, s.purchase_id, s.balance
          INTO spent
          FROM spend_credit(p_auth_user_id, p_idempotency_keys[i], p_request_hashes[i],
                            p_shipment_ids[i], p_recipient_names[i],
                            p_destination_postal_codes[i], p_weights_grams[i],
                            p_references[i]) s;
        n := i;
        outcome := spent.outcome;
        shipment_id := spent.shipment_id;
        source_type := spent.source_type;
        purchase_id := spent.purchase_id;
        balance := spent.balance;
        RETURN NEXT;
    END LOOP;
END $$;
