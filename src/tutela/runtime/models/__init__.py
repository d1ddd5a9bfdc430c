"""Trained artefacts of the runtime pillar (JSON), pinned by sha256 in the detectors that load them."""
