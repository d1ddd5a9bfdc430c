"""DNS detectors, registered through the `tutela.detectors` entry points (id == entry-point name)."""
