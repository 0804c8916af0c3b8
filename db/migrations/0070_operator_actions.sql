-- Every operator action (retry, cancel, grant) on the record: who did it, to what, and why.
-- `actor` is the name of the operator's credential (ADMIN_TOKENS; "admin" for ADMIN_TOKEN) or,
-- from the CLI, the operating-system user. Append-only.
CREATE TABLE operator_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action      text NOT NULL,                       -- retry, cancel, grant
    target      text NOT NULL,                       -- an order id or a profile id
    actor       text NOT NULL,
    via         text NOT NULL,                       -- api or cli
    reason      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_actions_target_idx ON operator_actions (target, id);
