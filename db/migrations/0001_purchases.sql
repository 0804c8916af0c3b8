-- The purchase flow: one order per paid purchase, plus an audit trail of every step and e-mail.

CREATE TABLE orders (
    order_id          text PRIMARY KEY,              -- the purchase workflow id: purchase:<provider>:<id>
    provider          text NOT NULL CHECK (provider IN ('mercadopago', 'appmax')),
    provider_order_id text NOT NULL,
    stage             text NOT NULL,
    customer_email    text,
    customer_name     text,
    amount_cents      bigint,
    currency          text NOT NULL DEFAULT 'BRL',
    payment_method    text,
    lovable_user_id   text,
    -- Fernet token of the generated password; erased once the credentials e-mail is accepted.
    encrypted_password bytea,
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    next_retry_at     timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_order_id)
);
CREATE INDEX orders_stage_idx ON orders (stage, updated_at);

CREATE TABLE integration_logs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id text NOT NULL,                      -- order id, registration:... or checkout:...
    event       text NOT NULL,                      -- e.g. stage_changed, step_failed, compensated
    stage       text,
    attempt     integer,
    error       text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integration_logs_workflow_idx ON integration_logs (workflow_id, id);

CREATE TABLE email_logs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id         text NOT NULL,
    email_type          text NOT NULL,              -- purchase_confirmation, credentials, ...
    recipient           text NOT NULL,
    idempotency_key     text NOT NULL,
    provider_message_id text,
    status              text NOT NULL,              -- sent, failed
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_logs_workflow_idx ON email_logs (workflow_id, id);
