"""``facerec bench``: measured figures, each with the machine it came from."""
