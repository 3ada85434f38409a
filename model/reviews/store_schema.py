"""The review store's tables (`store.ReviewStore`), for SQLite and PostgreSQL, and the columns
added since the first schema, which an existing store gets when opened."""

SCHEMA = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS predictions (
    task_id TEXT PRIMARY KEY, model_version TEXT NOT NULL, regions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    annotation_id TEXT NOT NULL, task_id TEXT NOT NULL, model_version TEXT, label TEXT NOT NULL,
    score REAL, matched INTEGER NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outcomes_annotation ON outcomes (annotation_id);
CREATE INDEX IF NOT EXISTS outcomes_task ON outcomes (task_id);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failed_events (id INTEGER PRIMARY KEY, body TEXT NOT NULL, error TEXT NOT NULL);
""",
    # the same tables; `seq` orders rows by insertion as SQLite's rowid does, REAL is float4 in PostgreSQL
    "postgresql": """
CREATE TABLE IF NOT EXISTS predictions (
    seq BIGSERIAL, task_id TEXT PRIMARY KEY, model_version TEXT NOT NULL, regions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    seq BIGSERIAL PRIMARY KEY, annotation_id TEXT NOT NULL, task_id TEXT NOT NULL, model_version TEXT,
    label TEXT NOT NULL, score DOUBLE PRECISION, matched INTEGER NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outcomes_annotation ON outcomes (annotation_id);
CREATE INDEX IF NOT EXISTS outcomes_task ON outcomes (task_id);
CREATE TABLE IF NOT EXISTS events (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, received DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS failed_events (id BIGINT PRIMARY KEY, body TEXT NOT NULL, error TEXT NOT NULL);
"""}

# columns added since the first schema: an existing store gets them on open
ADDED_COLUMNS = {"predictions": [("near_misses", "TEXT NOT NULL DEFAULT '[]'"), ("task_score", "{real}"),
                                 ("audited", "INTEGER NOT NULL DEFAULT 0"), ("project", "TEXT"), ("result", "TEXT"),
                                 ("second_misses", "TEXT"), ("width", "INTEGER"), ("height", "INTEGER"),
                                 ("sending", "TEXT")],
                 "outcomes": [("raw_score", "{real}"), ("agreement", "{real}"), ("project", "TEXT")],
                 "refits": [("project", "TEXT")]}
UPSERT_PREDICTION = {
    "sqlite": "INSERT OR REPLACE INTO predictions (task_id, model_version, regions, near_misses, task_score, audited, "
              "project, result, second_misses, width, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "postgresql": "INSERT INTO predictions (task_id, model_version, regions, near_misses, task_score, audited, "
                  "project, result, second_misses, width, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (task_id) DO UPDATE SET "
                  "model_version = EXCLUDED.model_version, regions = EXCLUDED.regions, "
                  "near_misses = EXCLUDED.near_misses, task_score = EXCLUDED.task_score, audited = EXCLUDED.audited, "
                  "project = EXCLUDED.project, result = EXCLUDED.result, second_misses = EXCLUDED.second_misses, "
                  "width = EXCLUDED.width, height = EXCLUDED.height"}
UPSERT_FAILED = {"sqlite": "INSERT OR REPLACE INTO failed_events VALUES (?, ?, ?)",
                 "postgresql": "INSERT INTO failed_events VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                               "body = EXCLUDED.body, error = EXCLUDED.error"}

