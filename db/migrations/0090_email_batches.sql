-- E-mails go out through Resend's batch endpoint, up to 100 per request (issue 15). A batch is
-- written here, with the exact bodies and its own Idempotency-Key, before it is sent, and each
-- e-mail in it is claimed for it (an e-mail's key is claimed by one batch at a time). A retry of
-- an e-mail whose batch answer was lost re-sends that same batch under the same key, so Resend
-- answers the first ids instead of sending again (docs/providers.md).
CREATE TABLE email_batches (
    batch_key   text PRIMARY KEY,
    -- One entry per e-mail, in request order: {idempotency_key, workflow_id, email_type,
    -- recipient, sealed_payload}: the request body sealed with the credentials key (a credentials
    -- e-mail carries the password). `json`, not `jsonb`: kept as written, so a re-send of the
    -- batch is the same bytes under the same key.
    items       json NOT NULL,
    -- Resend's answer, one per item: its e-mail id, or NULL when it refused that e-mail.
    message_ids text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz
);

CREATE TABLE email_claims (
    idempotency_key text PRIMARY KEY,  -- the e-mail's own key, as in email_logs
    batch_key       text NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_claims_batch_idx ON email_claims (batch_key);

-- Request slots of a provider's rate limit shared by every worker process: the next free start.
CREATE TABLE provider_request_slots (
    service text PRIMARY KEY,
    next_at timestamptz NOT NULL
);
