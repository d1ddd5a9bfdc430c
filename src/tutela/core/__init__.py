"""The shared core: findings, detectors, policy, registry, config, models and the event store.

Core imports no pillar. Pillars plug in through entry points read by `tutela.core.registry`.
"""
