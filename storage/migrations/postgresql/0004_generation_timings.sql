-- 0004 for PostgreSQL: as ../0004_generation_timings.sql. SQLite's json_valid() is defined here (PostgreSQL
-- 15 has no IS JSON), so a malformed state is refused by the same CHECK, not by a cast error.

CREATE FUNCTION json_valid(doc TEXT) RETURNS BOOLEAN LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM doc::json;
    RETURN TRUE;
EXCEPTION WHEN others THEN
    RETURN FALSE;
END;
$$;

CREATE TABLE generation_timings (
    bucket     TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (json_valid(state)),
    updated_at DOUBLE PRECISION NOT NULL
);
