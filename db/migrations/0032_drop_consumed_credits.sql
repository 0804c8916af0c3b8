-- The ledger now holds every spent credit, so the legacy counter goes: nothing is left that could
-- disagree with credit_usage. On a database of the old system this refuses (and changes nothing)
-- until `entrega credits backfill` has written the ledger rows the legacy data implies.

DO $$
DECLARE
    unbacked text;
BEGIN
    SELECT string_agg(DISTINCT s.profile_id::text, ', ') INTO unbacked
      FROM shipments s
     WHERE NOT EXISTS (SELECT 1 FROM credit_usage u WHERE u.shipment_id = s.shipment_id);
    IF unbacked IS NOT NULL THEN
        RAISE EXCEPTION 'shipments without credit_usage (profiles %): run `entrega credits backfill`, then `entrega migrate` again', unbacked;
    END IF;
    SELECT string_agg(DISTINCT p.profile_id::text, ', ') INTO unbacked
      FROM credit_purchases p
     WHERE p.consumed_credits > (SELECT count(*) FROM credit_usage u
                                  WHERE u.purchase_id = p.purchase_id
                                    AND u.source_type = 'purchase');
    IF unbacked IS NOT NULL THEN
        RAISE EXCEPTION 'consumed_credits exceeds the ledger (profiles %): run `entrega credits backfill`, then `entrega migrate` again', unbacked;
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
