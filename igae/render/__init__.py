"""Turning object meshes into multi-view images on the CPU.

- :mod:`igae.render.normalize`: centre and scale an object's parts into a canonical box.
- :mod:`igae.render.cameras`: camera positions/poses on a sphere (random or turntable).
- :mod:`igae.render.raycast`: the embree ray-casting renderer (:class:`MeshRenderer`).

Camera conventions are those of :mod:`igae.geometry`.
"""
