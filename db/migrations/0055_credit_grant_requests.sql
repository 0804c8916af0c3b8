-- Admin grants take an optional Idempotency-Key (issue 9, item 10): two identical grants sent
-- after a timeout granted twice. A key is remembered with the hash of the request it answered
-- and the purchase it created; the same key again answers that purchase, another body is refused.
CREATE TABLE credit_grant_requests (
    idempotency_key text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash    text NOT NULL,
    purchase_id     uuid NOT NULL,
    profile_id      uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (purchase_id, profile_id) REFERENCES credit_purchases (purchase_id, profile_id)
);
