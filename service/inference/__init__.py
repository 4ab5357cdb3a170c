"""Run models: one runtime interface, the embedder on top, and a cross-request batcher."""
