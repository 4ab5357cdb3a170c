"""The gallery of enrolled identities: SQLite (truth) + FAISS (search). No HTTP here."""
