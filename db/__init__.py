"""PostgreSQL: forward-only SQL migrations and the queries that use them (psycopg 3)."""
