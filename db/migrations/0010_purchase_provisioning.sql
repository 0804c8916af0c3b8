-- What the purchase workflow needs beyond 0001: exactly-once e-mails, revocation, replay defence.

-- Lovable already had a user for the e-mail (its password was left unchanged, so the credentials
-- e-mail must not announce a new one).
ALTER TABLE orders ADD COLUMN user_existed boolean;
ALTER TABLE orders ADD COLUMN revoked_at timestamptz;

-- One accepted e-mail per idempotency key, whatever the number of attempts.
CREATE UNIQUE INDEX email_logs_sent_once ON email_logs (idempotency_key) WHERE status = 'sent';

-- Mercado Pago signatures already accepted: a captured notification replayed within the
-- freshness window is refused. Rows older than the window are pruned by the gateway.
CREATE TABLE webhook_signatures (
    signature text PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_signatures_seen_idx ON webhook_signatures (seen_at);
