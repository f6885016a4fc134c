"""Render a run's exported solution (``<run>/<problem>.vti``, or ``--file`` another of its files)
off-screen with pyvista, as ParaView would show it: the domain (``inside`` thresholded), one
array in colour and warped by it (2D), the mesh's edges with ``--edges``.

    python experiments/vtk_screenshot.py <run folder> --array u --out docs/paraview_lshape.png
    python experiments/vtk_screenshot.py <run> --file '*_mesh.vtu' --edges --warp 0.2 --out docs/geometry_channel.png

Needs pyvista (the dev extra) and a VTK that renders off-screen (the PyPI wheel does, through
OSMesa or EGL, without a display).
"""
from __future__ import annotations

import argparse
import glob
import os

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--array", default=None, help="the array to colour by (default: the first unknown)")
    parser.add_argument("--warp", type=float, default=0.5, help="height per unit of the array (0: flat)")
    parser.add_argument("--file", default="*.vti", help="which of the run's files (a glob; default *.vti)")
    parser.add_argument("--edges", action="store_true", help="draw the cells' edges")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import pyvista as pv

    pv.OFF_SCREEN = True
    files = sorted(glob.glob(os.path.join(args.run, args.file)))
    if not files:
        raise SystemExit(f"error: no {args.file} in {args.run}: run train.py with vtk=true, or python -m dinf.export")
    image = pv.read(files[0])
    name = args.array or image.array_names[0]
    domain = image.threshold(0.5, scalars="inside")  # the points in the domain
    surface = domain.extract_surface(algorithm=None)
    flat = float(np.ptp(np.asarray(surface.points)[:, 2])) == 0.0
    if args.warp and flat:
        surface = surface.warp_by_scalar(name, factor=args.warp)
    plotter = pv.Plotter(off_screen=True, window_size=(900, 700))
    plotter.add_mesh(surface, scalars=name, cmap="viridis", show_edges=args.edges,
                     scalar_bar_args={"title": name, "vertical": True})
    plotter.add_text(os.path.basename(files[0]), font_size=10)
    plotter.view_isometric()
    plotter.camera.zoom(1.15)
    plotter.screenshot(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
