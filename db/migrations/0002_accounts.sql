-- Customers of the subscription product: plans and profiles (one per Supabase auth user).

CREATE TABLE plans (
    plan_id         text PRIMARY KEY,
    name            text NOT NULL,
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    cycle           text NOT NULL DEFAULT 'MONTHLY',
    monthly_credits integer NOT NULL CHECK (monthly_credits >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE profiles (
    profile_id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_user_id         uuid NOT NULL UNIQUE,
    name                 text NOT NULL,
    email                text NOT NULL,
    phone                text NOT NULL,
    cpf_cnpj             text NOT NULL,
    asaas_customer_id    text UNIQUE,
    subscription_id      text UNIQUE,
    plan_id              text REFERENCES plans (plan_id),
    current_period_start timestamptz,
    current_period_end   timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (current_period_end IS NULL OR current_period_end > current_period_start)
);
-- Duplicates are decided by these constraints, never by a check-then-insert.
CREATE UNIQUE INDEX profiles_email_key ON profiles (lower(email));
CREATE UNIQUE INDEX profiles_phone_key ON profiles (phone);
CREATE UNIQUE INDEX profiles_cpf_cnpj_key ON profiles (cpf_cnpj);
