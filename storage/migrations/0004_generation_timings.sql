-- 0004: learned generation times (the poll schedule's model), one row per kind of request, so that a
-- restart polls as well as the run before it. `state` is api_client's own JSON for one bucket, which
-- storage keeps without reading it. A few rows in all (sizes x fast mode x steps).

CREATE TABLE generation_timings (
    bucket     TEXT PRIMARY KEY,                     -- e.g. '1.00mp/full/s18'
    state      TEXT NOT NULL CHECK (json_valid(state)),
    updated_at REAL NOT NULL
);
