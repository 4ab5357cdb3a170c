"""Images in, aligned face crops out: decode, detect, align. No HTTP here."""
