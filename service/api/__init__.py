"""HTTP: routes, schemas, authentication and the one place errors become responses."""
