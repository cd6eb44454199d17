"""SQL for the PostgreSQL search structures, shared by migrations and seed_scale (which rebuilds the indexes)."""

ADD_VECTOR = """
ALTER TABLE catalog_catalogentry ADD COLUMN IF NOT EXISTS search_vector tsvector
  GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, COALESCE(search_text, ''))) STORED;
"""
DROP_VECTOR = "ALTER TABLE catalog_catalogentry DROP COLUMN IF EXISTS search_vector;"
CREATE_INDEXES = """
CREATE INDEX IF NOT EXISTS catalog_entry_fts ON catalog_catalogentry USING gin (search_vector);
CREATE INDEX IF NOT EXISTS catalog_entry_trgm ON catalog_catalogentry USING gin (search_names gin_trgm_ops);
CREATE INDEX IF NOT EXISTS catalog_entry_tags ON catalog_catalogentry USING gin (tags jsonb_path_ops);
"""
DROP_INDEXES = """
DROP INDEX IF EXISTS catalog_entry_fts;
DROP INDEX IF EXISTS catalog_entry_trgm;
DROP INDEX IF EXISTS catalog_entry_tags;
"""
