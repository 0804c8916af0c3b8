-- The ledger now holds every spent credit, so the legacy counter goes: nothing is left that could
-- disagree with credit_usage. On a database of the old system this refuses (and changes nothing)
-- until `entrega credits backfill` has written the ledger rows the legacy data implies.

-- The RAISE below is all an operator sees of this (`entrega migrate` prints it verbatim), so it
-- says what is wrong, that nothing changed, and what to run.
DO $$
DECLARE
    shipments_missing integer;
    purchases_missing integer;
    profiles text[];
BEGIN
    WITH shipments_without_usage AS (
        SELECT s.profile_id FROM shipments s
         WHERE NOT EXISTS (SELECT 1 FROM credit_usage u WHERE u.shipment_id = s.shipment_id)
    ), purchases_beyond_ledger AS (
        SELECT p.profile_id FROM credit_purchases p
         WHERE p.consumed_credits > (SELECT count(*) FROM credit_usage u
                                      WHERE u.purchase_id = p.purchase_id
                                        AND u.source_type = 'purchase')
    )
    SELECT (SELECT count(*) FROM shipments_without_usage),
           (SELECT count(*) FROM purchases_beyond_ledger),
           (SELECT array_agg(DISTINCT profile_id::text ORDER BY profile_id::text)
              FROM (SELECT profile_id FROM shipments_without_usage
                    UNION SELECT profile_id FROM purchases_beyond_ledger) x)
      INTO shipments_missing, purchases_missing, profiles;
    IF shipments_missing > 0 OR purchases_missing > 0 THEN
        RAISE EXCEPTION USING MESSAGE = format(
            'The credit ledger does not hold the legacy credit data yet, so '
            'credit_purchases.consumed_credits cannot be dropped (nothing was changed): %s '
            'shipment(s) without a credit_usage row and %s purchase(s) whose consumed_credits '
            'the ledger does not cover, in %s profile(s): %s%s. To fix it: run `entrega credits '
            'backfill --dry-run` to see what it will write, then `entrega credits backfill`, then '
            '`entrega migrate` again. If the backfill refuses a profile, it says why; correct that '
            'profile''s data and run the backfill again.',
            shipments_missing, purchases_missing, cardinality(profiles),
            array_to_string(profiles[1:5], ', '),
            CASE WHEN cardinality(profiles) > 5
                 THEN format(' and %s more', cardinality(profiles) - 5) ELSE '' END);
    END IF;
END $$;

ALTER TABLE credit_purchases DROP COLUMN consumed_credits;

-- From here on no transaction can commit a shipment without its credit, whatever code inserts it.
CREATE FUNCTION shipments_have_credit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM credit_usage u WHERE u.shipment_id = NEW.shipment_id) THEN
        RAISE EXCEPTION 'shipment % has no credit_usage row', NEW.shipment_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER shipments_have_credit AFTER INSERT ON shipments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION shipments_have_credit();
