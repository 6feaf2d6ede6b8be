"""HTTP layer: routers, schemas, auth dependencies, error envelope. HTTP exists only here."""
