-- What the request that numbered a checkout attempt asked for, so that any request may start
-- that attempt's one workflow (Temporal's workflow id decides which one does) instead of
-- guessing from the clock that the first request died. NULL on attempts numbered before this.
ALTER TABLE checkout_attempts ADD COLUMN billing_type text;
