"""tutela: an open, self-hosted security platform.

Importing the package is cheap on purpose: no pillar, model or heavy library is
imported here. Pillars are reached through `tutela.core.registry`.
"""

__version__ = "0.1.0"
