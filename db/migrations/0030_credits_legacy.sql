-- The credit tables exactly as the previous system had them: purchases that count their own
-- consumption in `consumed_credits`, and shipments that record no credit at all. A database of the
-- old system is a database at this version. 0031 adds the ledger, `entrega credits backfill` turns
-- the legacy numbers into ledger rows, and 0032 drops the counter once the ledger holds them all.

CREATE TABLE credit_purchases (
    purchase_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id       uuid NOT NULL REFERENCES profiles (profile_id),
    credits_amount   integer NOT NULL CHECK (credits_amount > 0),
    consumed_credits integer NOT NULL DEFAULT 0 CHECK (consumed_credits >= 0),
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_purchases_profile_idx ON credit_purchases (profile_id);

CREATE TABLE shipments (
    shipment_id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    profile_id              uuid NOT NULL REFERENCES profiles (profile_id),
    recipient_name          text NOT NULL,
    destination_postal_code text NOT NULL,
    weight_grams            integer NOT NULL,
    reference               text,
    created_at              timestamptz NOT NULL DEFAULT now()
);
