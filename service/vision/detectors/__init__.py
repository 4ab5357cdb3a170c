"""Face detectors behind one interface (see :mod:`service.vision.detectors.base`)."""
