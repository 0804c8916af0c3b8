-- Refunds are final for their order, across workflow runs and re-sent notifications; a Lovable
-- user shared by several orders is deactivated only when none of them still grants access.

-- When Entrega first saw a refund or chargeback for the order. Once set, the order never enters
-- a provisioning stage again, whatever a later run or notification says.
ALTER TABLE orders ADD COLUMN refunded_at timestamptz;
UPDATE orders SET refunded_at = COALESCE(revoked_at, updated_at)
WHERE stage = 'revoked'
   OR (stage = 'cancelled' AND last_error = 'pagamento estornado antes do acesso');

-- A cancelled or revoked order never sends its credentials e-mail: its password goes.
UPDATE orders SET encrypted_password = NULL
WHERE stage IN ('cancelled', 'revoked') AND encrypted_password IS NOT NULL;

-- AppMax Apphooks already handed off to their order's workflow, deduplicated on (event, order id)
-- with no expiry: a re-sent Apphook is acknowledged and not delivered again.
CREATE TABLE appmax_events (
    event    text NOT NULL,
    order_id text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event, order_id)
);

-- The other orders that share a Lovable user (Lovable keeps one user per e-mail).
CREATE INDEX orders_customer_email_idx ON orders (lower(customer_email));
CREATE INDEX orders_lovable_user_idx ON orders (lovable_user_id) WHERE lovable_user_id IS NOT NULL;
