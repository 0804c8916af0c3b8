-- An order's stage is one of the purchase stages the workflow moves through (contracts/
-- purchases.py, `Stage`; docs/interfaces.md, "Purchase stages"). Anything else is a bug
-- that the database now refuses instead of storing a stage no listing, retry or search knows.
ALTER TABLE orders ADD CONSTRAINT orders_stage_check CHECK (stage IN (
    'awaiting_payment',
    'queued',
    'creating_user',
    'failed_at_user',
    'sending_credentials',
    'failed_at_email',
    'completed',
    'failed_permanent',
    'cancelled',
    'revoked'
));
