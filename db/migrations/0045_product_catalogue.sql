-- The product catalogue: what Entrega sells, so that a purchase grants access only when its
-- payment matches a product (README, "The product catalogue").

CREATE TABLE products (
    -- The id the checkout puts on the payment: Mercado Pago `additional_info.items[].id`,
    -- AppMax's product sku. Compared exactly.
    product_id text PRIMARY KEY CHECK (product_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name       text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),   -- ISO 4217, e.g. BRL
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every price a product has had or will have. A price is valid at t when
-- valid_from <= t < valid_until (an absent bound is open). Several prices may be valid at once
-- (a promotion beside the regular price): a payment may match any of them.
-- Rows are never deleted: ending a price sets its valid_until, so a payment made while a price
-- was valid still matches it later.
CREATE TABLE product_prices (
    price_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  text NOT NULL REFERENCES products (product_id),
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    valid_from  timestamptz,
    valid_until timestamptz,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX product_prices_product_idx ON product_prices (product_id, price_cents);
