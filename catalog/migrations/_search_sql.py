"""SQL for the PostgreSQL search indexes, shared by migration 0002 and seed_scale (which rebuilds them)."""

CREATE_INDEXES = """
CREATE INDEX IF NOT EXISTS catalog_entry_fts ON catalog_catalogentry
  USING gin (to_tsvector('simple'::regconfig, COALESCE(search_text, '')));
CREATE INDEX IF NOT EXISTS catalog_entry_trgm ON catalog_catalogentry USING gin (search_names gin_trgm_ops);
CREATE INDEX IF NOT EXISTS catalog_entry_tags ON catalog_catalogentry USING gin (tags jsonb_path_ops);
"""
DROP_INDEXES = """
DROP INDEX IF EXISTS catalog_entry_fts;
DROP INDEX IF EXISTS catalog_entry_trgm;
DROP INDEX IF EXISTS catalog_entry_tags;
"""
