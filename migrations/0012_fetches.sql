-- The fetcher's ledger (docs/fetch.md): one row per attempt to download a window's feed file.

CREATE TABLE raw.fetches (
  fetch_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  window_start   timestamptz NOT NULL,            -- the 15-minute UTC window the download is for
  source         text        NOT NULL,            -- host and path of the URL (never its query: it holds the key)
  worker         text        NOT NULL,            -- host:pid of the daemon or command that fetched
  started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at    timestamptz,                     -- NULL while in flight
  outcome        text CHECK (outcome IN ('downloaded', 'unchanged', 'not_modified', 'blocked', 'failed')),
  http_status    integer,                         -- of the last response
  requests       integer     NOT NULL DEFAULT 0,  -- HTTP requests made (retries included)
  bytes          bigint,                          -- body bytes received (after Content-Encoding)
  sha256         text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  etag           text,
  last_modified  text,
  path           text,                            -- the file written (downloaded only)
  error          text,                            -- why it failed or was blocked
  body_head      text,                            -- blocked: the first KB of the answer, for the operator
  CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
-- One attempt per window in flight or done; a failed one may be tried again in the same window.
CREATE UNIQUE INDEX fetches_window_idx ON raw.fetches (window_start) WHERE outcome IS DISTINCT FROM 'failed';
CREATE INDEX fetches_finished_idx ON raw.fetches (finished_at DESC) WHERE outcome IS NOT NULL;
COMMENT ON TABLE raw.fetches IS 'Every attempt of the fetcher: outcome, HTTP status, bytes, sha256, validators, the file written';
