"""Command line: ``scenebase serve``, ``scenebase worker``, ``scenebase docs``."""
