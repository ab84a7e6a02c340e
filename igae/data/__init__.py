"""Scene folders on disk (nerfstudio and NeRF-synthetic layouts) and in memory."""

from igae.data.scene import Scene, read_scene, write_scene

__all__ = ["Scene", "read_scene", "write_scene"]
