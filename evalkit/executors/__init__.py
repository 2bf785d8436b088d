"""Executors: where the backend calls of a run are served (`--executor local|ray`).

The Ray executor (extra `[ray]`) is imported lazily: `import evalkit.executors` never imports ray.
"""

from evalkit.executors._ray import RayBackend, RaySettings, ray_backend, shard

__all__ = ["RayBackend", "RaySettings", "ray_backend", "shard"]
