-- Signup sagas: numbered checkout attempts per profile, and Asaas subscription events.

-- One row per checkout attempt; its number is part of the workflow id checkout:<profile>:<n>.
CREATE TABLE checkout_attempts (
    profile_id  uuid NOT NULL REFERENCES profiles (profile_id) ON DELETE CASCADE,
    attempt     integer NOT NULL CHECK (attempt > 0),
    workflow_id text NOT NULL UNIQUE,
    plan_id     text NOT NULL REFERENCES plans (plan_id),
    -- The subscription this attempt created: Asaas payment events find their plan through it.
    subscription_id text UNIQUE,
    outcome     text CHECK (outcome IN ('completed', 'rolled_back')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (profile_id, attempt)
);
-- At most one attempt in flight per profile: a concurrent second one is refused by this index.
CREATE UNIQUE INDEX checkout_attempts_one_running ON checkout_attempts (profile_id)
    WHERE outcome IS NULL;

-- Every Asaas webhook event ever accepted, keyed by its id (deduplication with no expiry).
CREATE TABLE asaas_events (
    event_id        text PRIMARY KEY,
    event           text NOT NULL,
    payment_id      text,
    subscription_id text,
    customer_id     text,
    profile_id      uuid,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX asaas_events_subscription_idx ON asaas_events (subscription_id, received_at);
