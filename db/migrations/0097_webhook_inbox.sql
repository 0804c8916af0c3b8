-- The intake inbox: payment notices acknowledged before Temporal has them.
--
-- A notice is acknowledged once it is durable. Normally that is its signal-with-start in
-- Temporal's history; when the hand-off takes longer than the gateway's budget (a sale's burst
-- keeping Temporal busy) or other notices are already waiting here, the notice is written here
-- instead, in the transaction that claims its signature or AppMax event, and the answer is 200
-- at once. Each API process forwards what is here to Temporal (oldest first, taking rows with
-- SKIP LOCKED so processes share the work) and deletes a row only once its hand-off is in
-- Temporal; a row whose process died is taken by another. A notice forwarded twice is harmless:
-- the order's workflow is joined (USE_EXISTING) and a notice only ever makes it look again.
CREATE TABLE webhook_inbox (
    id                bigserial PRIMARY KEY,
    provider          text NOT NULL CHECK (provider IN ('mercadopago', 'appmax')),
    provider_order_id text NOT NULL,
    notice            jsonb NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (next_attempt_at, id);
