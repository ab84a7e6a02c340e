"""Mesh normalisation and the embree CPU renderer (igae.render.normalize, igae.render.raycast)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from igae.errors import InputError
from igae.geometry import look_at, project_points
from igae.render import raycast
from igae.render.normalize import normalize_parts
from igae.render.raycast import MeshRenderer, render_views


def _c2w(eye, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(4, 4) float64 camera-to-world looking from ``eye`` at ``target`` (Z-up)."""
    e = torch.tensor(np.asarray(eye, dtype=np.float64)[None])
    return look_at(e, torch.tensor(target, dtype=torch.float64))[0].numpy()


@pytest.fixture(scope="module")
def sphere() -> MeshRenderer:
    return MeshRenderer([trimesh.creation.icosphere(subdivisions=4, radius=1.0)])


def _quad(image: Image.Image | None = None, material=None) -> trimesh.Trimesh:
    """A unit square in the XZ plane (facing -Y), UV (0,0) at bottom-left, (1,1) at top-right."""
    v = np.array([[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]], dtype=float)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    mesh = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)
    if material is None:
        material = trimesh.visual.material.SimpleMaterial(image=image)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return mesh


def _front_view(renderer: MeshRenderer, size: int = 32, **kw):
    """The quad seen from -Y filling most of the frame: screen right = +X, up = +Z."""
    f = size * 0.8 * 2.0  # the unit quad at distance 2 spans 0.8 of the image
    k = np.array([f, f, size / 2, size / 2])
    return renderer.render(_c2w((0.0, -2.0, 0.0)), k, size, size, **kw)


def test_normalize_parts_centres_and_scales_copies():
    a = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    a.apply_translation((5.0, 0.0, 0.0))
    b = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    b.apply_translation((7.0, 3.0, 1.0))
    before = a.vertices.copy()
    out = normalize_parts([a, b], 1.5)
    assert len(out) == 2 and out[0] is not a
    np.testing.assert_array_equal(a.vertices, before)  # input untouched
    allv = np.concatenate([m.vertices for m in out])
    lo, hi = allv.min(0), allv.max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-12)
    assert (hi - lo).max() == pytest.approx(1.5)
    # Uniform scale: the aspect ratio of the union's box (3.5 x 4 x 2) is preserved.
    np.testing.assert_allclose((hi - lo) / (hi - lo).max(), np.array([3.5, 4.0, 2.0]) / 4.0, atol=1e-12)
    with pytest.raises(InputError):
        normalize_parts([], 1.0)


def test_sphere_silhouette_matches_analytic_disc(sphere):
    w, h, f, d = 64, 56, 50.0, 3.0
    k = np.array([f, f, 30.0, 26.5])  # deliberately off-centre principal point
    eye = np.array([1.0, -2.0, 1.5])
    eye = eye / np.linalg.norm(eye) * d
    rgb, alpha = sphere.render(_c2w(eye), k, w, h, supersample=3)
    assert rgb.shape == (h, w, 3) and alpha.shape == (h, w)
    assert rgb.dtype == np.float32 and alpha.dtype == np.float32
    radius_px = f * 1.0 / math.sqrt(d * d - 1.0)
    vv, uu = np.mgrid[0:h, 0:w] + 0.5
    disc = (uu - k[2]) ** 2 + (vv - k[3]) ** 2 < radius_px**2
    mask = alpha > 0.5
    iou = (mask & disc).sum() / (mask | disc).sum()
    assert iou > 0.98, iou
    # Coverage integrates to the disc's area (anti-aliased alpha is an area estimate).
    assert alpha.sum() == pytest.approx(math.pi * radius_px**2, rel=0.01)


def test_projected_visible_points_land_on_the_object():
    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    occluder = trimesh.creation.box(extents=(0.3, 0.3, 1.2))
    occluder.apply_translation((0.2, -0.7, 0.1))
    parts = [box, occluder]
    renderer = MeshRenderer(parts, smooth_angle_deg=None)
    # Points on a grid over every face of both boxes, inset from the edges.
    points, normals = [], []
    for part in parts:
        lo, hi = part.bounds
        g = np.linspace(0.15, 0.85, 6)
        for axis in range(3):
            a, b = [i for i in range(3) if i != axis]
            for sign, side in ((-1.0, lo[axis]), (1.0, hi[axis])):
                p = np.zeros((36, 3))
                p[:, axis] = side
                p[:, a] = lo[a] + np.repeat(g, 6) * (hi[a] - lo[a])
                p[:, b] = lo[b] + np.tile(g, 6) * (hi[b] - lo[b])
                points.append(p)
                normals.append(np.tile(np.eye(3)[axis] * sign, (36, 1)))
    points, normals = np.concatenate(points), np.concatenate(normals)
    size, f = 96, 110.0
    k = np.array([f, f, size / 2, size / 2])
    n_tested = 0
    for eye in ([0.5, -2.5, 1.2], [-2.0, -1.0, 0.8], [1.5, 1.5, 2.0]):
        eye = np.asarray(eye)
        c2w = _c2w(eye)
        _, alpha = renderer.render(c2w, k, size, size)
        # Independent visibility: analytic ray / axis-aligned-box (slab) test on both boxes.
        dirs = points - eye
        dist = np.linalg.norm(dirs, axis=1)
        first = np.min([_ray_aabb_entry(eye, dirs / dist[:, None], *p.bounds) for p in parts], axis=0)
        visible = first >= dist - 1e-6
        # Skip faces seen at grazing angles: they project to slivers thinner than a pixel.
        facing = np.einsum("ij,ij->i", normals, -dirs / dist[:, None]) > 0.3
        visible &= facing
        uv, depth = project_points(torch.from_numpy(points[visible]), torch.from_numpy(c2w), torch.from_numpy(k))
        assert (depth > 0).all()
        px = np.floor(uv.numpy()).astype(int)
        assert ((px >= 0) & (px < size)).all()
        assert (alpha[px[:, 1], px[:, 0]] > 0.5).all()
        n_tested += int(visible.sum())
        # Some points must be hidden (behind the object or the occluder) for this to be a test.
        assert 0 < visible.sum() < len(points)
    assert n_tested > 100


def _ray_aabb_entry(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance ``(R,)`` along unit ``dirs`` to where each ray enters the box (inf on a miss)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - origin) / dirs, (hi - origin) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((t_near <= t_far) & (t_far > 0), t_near, np.inf)


def _quadrant_image(mode: str = "RGB") -> Image.Image:
    """8x8 texture: top-left red, top-right blue, bottom-left green, bottom-right yellow."""
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:4, :4] = (255, 0, 0)
    img[:4, 4:] = (0, 0, 255)
    img[4:, :4] = (0, 255, 0)
    img[4:, 4:] = (255, 255, 0)
    pil = Image.fromarray(img)
    return pil.convert(mode) if mode != "RGB" else pil


def _quadrant_colours(rgb: np.ndarray) -> dict[str, np.ndarray]:
    s = rgb.shape[0]
    q = s // 4  # centres of the quad's quadrants (the quad spans 0.1..0.9 of the image)
    lo, hi = s // 2 - q, s // 2 + q - 1
    return {"tl": rgb[lo, lo], "tr": rgb[lo, hi], "bl": rgb[hi, lo], "br": rgb[hi, hi]}


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_texture_lookup_orientation(mode):
    rgb, alpha = _front_view(MeshRenderer([_quad(_quadrant_image(mode))]))
    c = _quadrant_colours(rgb)
    assert alpha[16, 16] == 1.0
    assert c["tl"][0] > 3 * max(c["tl"][1], c["tl"][2])  # red top-left (catches U and V flips)
    assert c["tr"][2] > 3 * max(c["tr"][0], c["tr"][1])  # blue top-right
    assert c["bl"][1] > 3 * max(c["bl"][0], c["bl"][2])  # green bottom-left
    assert min(c["br"][0], c["br"][1]) > 3 * c["br"][2]  # yellow bottom-right


def test_texture_left_red_right_blue_and_repeat_wrap():
    img = np.zeros((4, 8, 3), dtype=np.uint8)
    img[:, :4] = (255, 0, 0)
    img[:, 4:] = (0, 0, 255)
    quad = _quad(Image.fromarray(img))
    rgb, _ = _front_view(MeshRenderer([quad]))
    assert rgb[16, 8, 0] > 3 * rgb[16, 8, 2] and rgb[16, 23, 2] > 3 * rgb[16, 23, 0]
    # UVs in [1, 2] repeat the texture: same picture.
    quad.visual.uv = quad.visual.uv + 1.0
    rgb2, _ = _front_view(MeshRenderer([quad]))
    np.testing.assert_allclose(rgb2, rgb, atol=1e-5)


def test_greyscale_texture_and_pbr_factor():
    grey = Image.fromarray(np.full((4, 4), 200, dtype=np.uint8), mode="L")
    rgb, _ = _front_view(MeshRenderer([_quad(grey)]))
    centre = rgb[16, 16]
    assert centre[0] == centre[1] == centre[2] and centre[0] > 0.2
    pbr = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(np.full((4, 4, 3), 255, dtype=np.uint8)), baseColorFactor=(255, 0, 0, 255)
    )
    rgb_pbr, _ = _front_view(MeshRenderer([_quad(material=pbr)]))
    assert rgb_pbr[16, 16, 0] > 0.3 and rgb_pbr[16, 16, 1] == 0.0 and rgb_pbr[16, 16, 2] == 0.0


def test_obj_diffuse_only_multiplies_when_asked():
    white = Image.fromarray(np.full((4, 4, 3), 255, dtype=np.uint8))
    material = trimesh.visual.material.SimpleMaterial(image=white, diffuse=(255, 0, 0, 255))
    plain, _ = _front_view(MeshRenderer([_quad(material=material)]))
    tinted, _ = _front_view(MeshRenderer([_quad(material=material)], obj_diffuse_times_texture=True))
    assert plain[16, 16, 0] == plain[16, 16, 1] > 0.3
    assert tinted[16, 16, 0] == plain[16, 16, 0] and tinted[16, 16, 1] == 0.0


def test_vertex_face_and_flat_colours():
    quad = _quad()
    quad.visual = trimesh.visual.ColorVisuals(quad, face_colors=[[255, 0, 0, 255], [0, 255, 0, 255]])
    rgb, _ = _front_view(MeshRenderer([quad]))
    # Face 0 (vertices 0,1,2) is the lower-right triangle, face 1 the upper-left.
    assert rgb[26, 26, 0] > 0.3 and rgb[26, 26, 1] == 0.0
    assert rgb[5, 5, 1] > 0.3 and rgb[5, 5, 0] == 0.0
    quad.visual = trimesh.visual.ColorVisuals(
        quad, vertex_colors=[[255, 0, 0, 255], [255, 0, 0, 255], [0, 0, 255, 255], [0, 0, 255, 255]]
    )
    rgb, _ = _front_view(MeshRenderer([quad]))
    # Red at the bottom, blue at the top, interpolated in between.
    assert rgb[28, 16, 0] > 4 * rgb[28, 16, 2] and rgb[3, 16, 2] > 4 * rgb[3, 16, 0]
    mid = rgb[16, 16]
    assert mid[0] == pytest.approx(mid[2], rel=0.15)
    flat = _quad(material=trimesh.visual.material.SimpleMaterial(diffuse=(0, 255, 0, 255)))
    rgb, _ = _front_view(MeshRenderer([flat]))
    assert rgb[16, 16, 1] > 0.3 and rgb[16, 16, 0] == rgb[16, 16, 2] == 0.0


def test_shading_shows_shape_and_background_is_exact(sphere):
    key = np.array(raycast._LIGHTS[0][0], dtype=float)
    key /= np.linalg.norm(key)
    k = np.array([40.0, 40.0, 16.0, 16.0])
    bg = (0.2, 0.4, 0.6)
    lit, a_lit = sphere.render(_c2w(3.0 * key), k, 32, 32, background=bg)
    dark, a_dark = sphere.render(_c2w(-3.0 * key), k, 32, 32, background=bg)
    inside = (a_lit == 1.0) & (a_dark == 1.0)
    assert inside.sum() > 200
    assert lit[inside].mean() > 1.6 * dark[inside].mean()
    # Within one view, seen side-on, brightness grows towards the key light's side of the disc.
    side = np.cross(key, [0.0, 0.0, 1.0])
    c2w = _c2w(3.0 * side / np.linalg.norm(side))
    rgb, alpha = sphere.render(c2w, k, 32, 32, supersample=1)
    towards = np.array([c2w[:3, 0] @ key, -(c2w[:3, 1] @ key)])  # key direction on screen (u right, v down)
    vv, uu = np.nonzero(alpha == 1.0)
    along = (uu + 0.5 - 16.0) * towards[0] + (vv + 0.5 - 16.0) * towards[1]
    assert np.corrcoef(along, rgb[vv, uu, 0])[0, 1] > 0.8
    # Background pixels are exactly the background colour.
    for img, a in ((lit, a_lit), (dark, a_dark)):
        assert (a == 0).sum() > 100
        assert (img[a == 0] == np.array(bg, dtype=np.float32)).all()


def test_render_is_deterministic_and_batch_independent(sphere):
    parts = [trimesh.creation.icosphere(subdivisions=3), trimesh.creation.box(extents=(0.5, 2.0, 0.5))]
    colours = np.random.default_rng(0).integers(0, 255, (642, 4))
    parts[0].visual = trimesh.visual.ColorVisuals(parts[0], vertex_colors=colours)
    r1, r2 = MeshRenderer(parts), MeshRenderer(parts)
    k = np.array([30.0, 30.0, 12.0, 12.0])
    c2ws = np.stack([_c2w(e) for e in ([3.0, -1.0, 1.0], [0.0, 0.5, -3.0], [-2.0, 2.0, 0.5])])
    a = r1.render(c2ws[0], k, 24, 24)
    b = r1.render(c2ws[0], k, 24, 24)
    c = r2.render(c2ws[0], k, 24, 24)
    for x, y in ((a, b), (a, c)):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    rgb, alpha = render_views(r1, c2ws, k, 24, 24, views_per_batch=2, threads=2)
    for i in range(3):
        single = r1.render(c2ws[i], k, 24, 24)
        np.testing.assert_array_equal(rgb[i], single[0])
        np.testing.assert_array_equal(alpha[i], single[1])


def test_supersampling_gives_fractional_edge_alpha(sphere):
    k = np.array([30.0, 30.0, 12.0, 12.0])
    c2w = _c2w((0.3, -3.0, 0.4))
    _, a1 = sphere.render(c2w, k, 24, 24, supersample=1)
    assert set(np.unique(a1)) <= {0.0, 1.0}
    _, a2 = sphere.render(c2w, k, 24, 24, supersample=2)
    levels = set(np.unique(a2).tolist())
    assert levels <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert len(levels & {0.25, 0.5, 0.75}) >= 2  # edges blend


def test_empty_view_and_bad_arguments(sphere):
    k = np.array([30.0, 30.0, 12.0, 12.0])
    # Camera looking away from the sphere: everything is background.
    away = _c2w((0.0, -3.0, 0.0), target=(0.0, -6.0, 0.0))
    rgb, alpha = sphere.render(away, k, 8, 8, background=(0.0, 1.0, 0.0))
    assert (alpha == 0).all() and (rgb == np.array([0, 1, 0], dtype=np.float32)).all()
    with pytest.raises(ValueError, match="intrinsics"):
        sphere.render(away, np.array([0.0, 30.0, 4.0, 4.0]), 8, 8)
    with pytest.raises(ValueError, match="supersample"):
        sphere.render(away, k, 8, 8, supersample=0)
    with pytest.raises(InputError):
        MeshRenderer([])


def test_inward_facing_mesh_shades_like_outward():
    # Meshes are often inconsistently wound: normals are flipped to face the camera.
    inverted = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    inverted.invert()
    k = np.array([30.0, 30.0, 12.0, 12.0])
    c2w = _c2w((1.0, -2.5, 1.0))
    outward = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    for smooth in (30.0, None):
        expected, _ = MeshRenderer([outward], smooth_angle_deg=smooth).render(c2w, k, 24, 24)
        rgb, _ = MeshRenderer([inverted], smooth_angle_deg=smooth).render(c2w, k, 24, 24)
        np.testing.assert_allclose(rgb, expected, atol=1e-5)


def test_smooth_normals_follow_the_surface_and_keep_creases():
    ico = trimesh.creation.icosphere(subdivisions=3)
    ico.unmerge_vertices()  # split like a UV seam: welding by position must still smooth
    r = MeshRenderer([ico])
    corners = ico.vertices[ico.faces]  # (F, 3, 3), unit sphere: the true normal is the position
    assert np.abs(r._corner_normals - corners).max() < 0.02
    box = MeshRenderer([trimesh.creation.box()])  # 90 degree creases stay sharp
    np.testing.assert_allclose(box._corner_normals, np.repeat(box._face_normals[:, None], 3, axis=1), atol=1e-6)
    cone = MeshRenderer([trimesh.creation.cone(1.0, 1.0, sections=400)])  # apex valence 400: not smoothed
    assert np.isfinite(cone._corner_normals).all()
