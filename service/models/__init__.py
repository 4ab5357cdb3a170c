"""Model packs: a folder with a detector, a recognizer and ``manifest.json``."""
