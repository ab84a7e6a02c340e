"""Occupancy-grid sampler throughput on this machine, against plain stratified sampling.

Run: ``.venv/bin/python benchmarks/bench_occupancy.py`` (prints; nothing is asserted). Rays from
a sphere of radius 3 through a 64^3 grid that holds a ball of radius 0.3: the occupancy sampler
(:class:`igae.fields.occupancy.OccupancySampler`) marches only the occupied cells. On a shared
machine the numbers are indicative only.
"""

from __future__ import annotations

import time

import torch

from igae.fields.occupancy import OccupancySampler
from igae.fields.sampling import RayBundle, ray_aabb, stratified_samples


def main(n_rays: int = 4096, samples: int = 64, repeats: int = 5) -> None:
    """Sampler throughput on this machine: rays through a grid holding a sphere of radius 0.3."""
    torch.manual_seed(0)
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    sampler = OccupancySampler(aabb, resolution=64, samples_per_ray=samples)
    sampler.update(0, lambda p: 20.0 * (p.norm(dim=-1) < 0.3).float())
    origins = torch.randn(n_rays, 3)
    origins = 3.0 * origins / origins.norm(dim=-1, keepdim=True)
    dirs = -origins + 0.4 * torch.randn(n_rays, 3)
    rays = RayBundle(origins, dirs / dirs.norm(dim=-1, keepdim=True))
    gen = torch.Generator().manual_seed(0)
    for label, fn in [("occupancy", lambda: sampler(rays, None, True, gen)),  # type: ignore[arg-type]
                      ("stratified", lambda: stratified_samples(*ray_aabb(origins, rays.directions, aabb)[:2],
                                                                samples, True, gen))]:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best = min(times)
        print(f"{label:>10}: {n_rays} rays x {samples} samples in {best * 1e3:.1f} ms "
              f"({n_rays / best:,.0f} rays/s, {torch.get_num_threads()} threads)")
    print(f"grid occupancy {sampler.grid.occupancy_fraction():.4f}, step {sampler.grid.step_size:.4f}")



if __name__ == "__main__":
    main()
