-- Rate limits of registration and checkout (issue 9, item 11), counted here so that every API
-- process shares them: one row per bucket (a hash of "what:who", never the e-mail or address
-- itself) and fixed window; old windows are deleted as requests come in.
CREATE TABLE rate_limit_hits (
    bucket       text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_hits_window_idx ON rate_limit_hits (window_start);
